//! The store's operations as values, for a project whose store is a team server: the client
//! sends each [`Tx`] operation as an [`Op`] inside a transaction the server holds, and the
//! server runs it on its own store ([`Op::apply`]) after checking the caller's role
//! ([`Op::needs`]), writing the caller's name over any name the op claims ([`Op::stamp`]),
//! and checking the objects the op points at ([`Op::objects`]).
//!
//! One enum for both sides, so the client and the server can never disagree on an operation.
//! The people and tokens of the server (`people`) and the copy of a project have no op: no
//! client reaches them.

use crate::meta::{
    AliasEvent, DatasetRecord, EditRecord, FindingEvent, FindingRecord, NewJournalEntry, RunRecord,
    SeedGroupRecord, SourceRecord, SuiteRecord, VersionRecord,
};
use crate::people::Role;
use crate::queries::{JournalQuery, RunsQuery};
use crate::{StoreError, Tx};
use serde::{Deserialize, Serialize};

/// A journal entry to append, owned (see [`NewJournalEntry`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JournalLine {
    pub time: String,
    pub user: String,
    pub command: String,
    pub why: Option<String>,
    pub objects: Vec<String>,
}

/// One operation of [`Tx`], with its arguments.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", content = "args", rename_all = "snake_case")]
pub enum Op {
    InsertDataset(DatasetRecord),
    Dataset(String),
    Datasets,
    InsertSource(SourceRecord),
    Source(String),
    Sources(String),
    InsertVersion(VersionRecord),
    InsertEdit(EditRecord),
    Edits(String),
    LastEditId(String),
    Versions(String),
    VersionCount(String),
    InsertSeedGroup(SeedGroupRecord),
    SeedGroup(String),
    InsertRun(RunRecord),
    Runs,
    LatestRun,
    RunsWithPrefix(String),
    InsertSuite(SuiteRecord),
    Suites,
    InsertAliasEvent(AliasEvent),
    AliasEvents,
    Cache(String),
    CachesOfKind(String),
    PutCache {
        key: String,
        kind: String,
        object: String,
        time: String,
    },
    UpsertFinding(FindingRecord),
    Findings,
    InsertFindingEvent(FindingEvent),
    FindingEvents,
    AppendJournal(JournalLine),
    Journal,
    RunsPage(RunsQuery),
    JournalPage(JournalQuery),
    JournalObjects(String),
    JournalUsers,
}

impl Op {
    /// The least role that may run this op.
    pub fn needs(&self) -> Role {
        match self {
            Op::InsertAliasEvent(_) => Role::Maintainer,
            Op::InsertDataset(_)
            | Op::InsertSource(_)
            | Op::InsertVersion(_)
            | Op::InsertEdit(_)
            | Op::InsertSeedGroup(_)
            | Op::InsertRun(_)
            | Op::InsertSuite(_)
            | Op::PutCache { .. }
            | Op::UpsertFinding(_)
            | Op::InsertFindingEvent(_)
            | Op::AppendJournal(_) => Role::Member,
            _ => Role::Viewer,
        }
    }

    /// What the op does, in the words of a refusal ("may not ...").
    pub fn action(&self) -> String {
        match self.needs() {
            Role::Maintainer => "move an alias (promote, roll back)".into(),
            Role::Member => format!("change the project ({})", self.name()),
            Role::Viewer => format!("read the project ({})", self.name()),
        }
    }

    /// Whether the op changes the store (and so needs a write transaction).
    pub fn writes(&self) -> bool {
        self.needs() > Role::Viewer
    }

    /// Writes `person` over every name of who acted that the op carries: the server records
    /// the person it authenticated, never a name a client claims.
    pub fn stamp(&mut self, person: &str) {
        let who = match self {
            Op::InsertEdit(e) => &mut e.author,
            Op::InsertRun(r) => &mut r.created_by,
            Op::InsertSuite(s) => &mut s.author,
            Op::InsertAliasEvent(e) => &mut e.who,
            Op::InsertFindingEvent(e) => &mut e.who,
            Op::AppendJournal(j) => &mut j.user,
            _ => return,
        };
        *who = person.to_string();
    }

    /// The objects the op records a reference to: the server has each (checked against its
    /// hash when it was uploaded) before it records the op.
    pub fn objects(&self) -> Vec<&str> {
        match self {
            Op::InsertSource(s) => vec![s.object.as_str()],
            Op::InsertRun(r) => vec![r.model.as_str(), r.predictions.as_str()],
            Op::PutCache { object, .. } => vec![object.as_str()],
            _ => Vec::new(),
        }
    }

    /// A short name for messages and logs (never the op's arguments).
    pub fn name(&self) -> String {
        let json = serde_json::to_value(self).unwrap_or_default();
        json.get("op")
            .and_then(|v| v.as_str())
            .map(String::from)
            .unwrap_or_else(|| "op".into())
    }

    /// Runs the op on the server's store; the answer is the op's result as JSON.
    pub fn apply(self, tx: &Tx<'_>) -> Result<serde_json::Value, StoreError> {
        fn json<T: Serialize>(v: T) -> Result<serde_json::Value, StoreError> {
            serde_json::to_value(v).map_err(|e| StoreError::Corrupt(format!("an answer: {e}")))
        }
        match self {
            Op::InsertDataset(d) => json(tx.insert_dataset(&d)?),
            Op::Dataset(n) => json(tx.dataset(&n)?),
            Op::Datasets => json(tx.datasets()?),
            Op::InsertSource(s) => json(tx.insert_source(&s)?),
            Op::Source(id) => json(tx.source(&id)?),
            Op::Sources(d) => json(tx.sources(&d)?),
            Op::InsertVersion(v) => json(tx.insert_version(&v)?),
            Op::InsertEdit(e) => json(tx.insert_edit(&e)?),
            Op::Edits(d) => json(tx.edits(&d)?),
            Op::LastEditId(d) => json(tx.last_edit_id(&d)?),
            Op::Versions(d) => json(tx.versions(&d)?),
            Op::VersionCount(d) => json(tx.version_count(&d)?),
            Op::InsertSeedGroup(g) => json(tx.insert_seed_group(&g)?),
            Op::SeedGroup(id) => json(tx.seed_group(&id)?),
            Op::InsertRun(r) => {
                // A run names a version of its dataset that exists (a clear refusal, not a
                // foreign key's message).
                if !tx.versions(&r.dataset)?.iter().any(|v| v.id == r.version) {
                    return Err(StoreError::Invalid(format!(
                        "run {} names version {} of dataset {:?}, which the project does not hold",
                        r.id, r.version, r.dataset
                    )));
                }
                json(tx.insert_run(&r)?)
            }
            Op::Runs => json(tx.runs()?),
            Op::LatestRun => json(tx.latest_run()?),
            Op::RunsWithPrefix(p) => json(tx.runs_with_prefix(&p)?),
            Op::InsertSuite(s) => json(tx.insert_suite(&s)?),
            Op::Suites => json(tx.suites()?),
            Op::InsertAliasEvent(e) => json(tx.insert_alias_event(&e)?),
            Op::AliasEvents => json(tx.alias_events()?),
            Op::Cache(k) => json(tx.cache(&k)?),
            Op::CachesOfKind(k) => json(tx.caches_of_kind(&k)?),
            Op::PutCache {
                key,
                kind,
                object,
                time,
            } => json(tx.put_cache(&key, &kind, &object, &time)?),
            Op::UpsertFinding(f) => json(tx.upsert_finding(&f)?),
            Op::Findings => json(tx.findings()?),
            Op::InsertFindingEvent(e) => json(tx.insert_finding_event(&e)?),
            Op::FindingEvents => json(tx.finding_events()?),
            Op::AppendJournal(j) => json(tx.append_journal(&NewJournalEntry {
                time: &j.time,
                user: &j.user,
                command: &j.command,
                why: j.why.as_deref(),
                objects: &j.objects,
            })?),
            Op::Journal => json(tx.journal()?),
            Op::RunsPage(q) => json(tx.runs_page(&q)?),
            Op::JournalPage(q) => json(tx.journal_page(&q)?),
            Op::JournalObjects(p) => json(tx.journal_objects(&p)?),
            Op::JournalUsers => json(tx.journal_users()?),
        }
    }
}

/// Sends the op to the server when `tx` is a server transaction (and returns its answer);
/// otherwise the operation goes on to its SQL.
macro_rules! on_server {
    ($tx:expr, $op:expr) => {
        if let $crate::sql::Conn::Server(server) = &$tx.0 {
            return server.call($op);
        }
    };
}
pub(crate) use on_server;
