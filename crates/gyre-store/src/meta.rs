//! Typed records of the metadata store and the queries over them. No SQL leaves this crate.

use crate::sql::{Row, Value, vals};
use crate::wire::{JournalLine, Op, on_server};
use crate::{StoreError, Tx};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DatasetRecord {
    pub name: String,
    /// The dataset schema as JSON (gyre_core::DatasetSchema).
    pub schema: String,
    pub created_at: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SourceRecord {
    pub id: String,
    pub dataset: String,
    pub seq: i64,
    pub file_name: String,
    /// Import options as JSON.
    pub options: String,
    /// The stored table's object id.
    pub object: String,
    pub rows: u64,
    pub first_row_id: u64,
    /// Table statistics as JSON.
    pub stats: String,
    pub created_at: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VersionRecord {
    pub id: String,
    pub dataset: String,
    pub seq: i64,
    /// The edit that made this version (none for the import).
    pub edit: Option<i64>,
    pub description: String,
    pub created_at: String,
}

/// An edit as stored; `body` is the JSON of gyre_core::EditKind.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EditRecord {
    pub id: i64,
    pub dataset: String,
    pub body: String,
    pub why: String,
    pub author: String,
    pub time: String,
    pub rows_affected: u64,
}

/// One training of a learner on one dataset version with one seed, and where its results live.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: String,
    pub dataset: String,
    pub version: String,
    pub learner: String,
    /// Validated params with defaults, as JSON.
    pub params: String,
    pub seed: u64,
    /// Object id of the saved model.
    pub model: String,
    /// Object id of the per-example predictions (Parquet).
    pub predictions: String,
    /// `{suite: {metric: value}}` as JSON.
    pub metrics: String,
    /// `{stage_s: seconds}` as JSON.
    pub timings: String,
    /// Everything else worth keeping (row counts, gyre version, git commit) as JSON.
    pub info: String,
    pub seed_group: Option<String>,
    pub created_at: String,
    pub created_by: String,
}

/// A set of runs that differ only in their seed, and the flips between them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeedGroupRecord {
    pub id: String,
    /// The group's summary (runs, flip rates) as JSON.
    pub summary: String,
    pub created_at: String,
}

/// A named evaluation set; `definition` is JSON (predicate or rows, and requirements).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SuiteRecord {
    pub name: String,
    pub dataset: String,
    pub definition: String,
    pub created_at: String,
    pub author: String,
}

/// One move of an alias.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AliasEvent {
    pub seq: i64,
    pub alias: String,
    pub run: String,
    pub previous: Option<String>,
    /// `promote` or `rollback`.
    pub action: String,
    pub who: String,
    pub time: String,
    pub why: String,
    pub forced: bool,
    /// The gate's report (JSON) when one ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
}

/// A failure worth a decision, as first found.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FindingRecord {
    pub id: i64,
    /// `slice`, `suite` or `label-issues`.
    pub kind: String,
    /// What makes two findings the same (a slice's predicate, a suite's name).
    pub key: String,
    pub title: String,
    /// Kind-specific JSON.
    pub detail: String,
    pub run: String,
    pub created_at: String,
}

/// A change of a finding's state: open, accepted, fixing, fixed (or an edit linked while fixing).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FindingEvent {
    pub seq: i64,
    pub finding: i64,
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    pub who: String,
    pub time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edit: Option<i64>,
}

/// One line of the journal, as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub seq: i64,
    pub time: String,
    pub user: String,
    pub command: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    pub objects: Vec<String>,
}

/// A journal entry to append.
pub struct NewJournalEntry<'a> {
    pub time: &'a str,
    pub user: &'a str,
    pub command: &'a str,
    pub why: Option<&'a str>,
    pub objects: &'a [String],
}

/// The run_values rows of one JSON object's entries: numbers and booleans by value, anything
/// else by its text (a string as itself, an array or object as JSON), as SQLite's `json_each`
/// gave them to migration 7.
fn json_fields(prefix: &str, json: &str, path: Option<&str>) -> Vec<(String, Value, Value)> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else {
        return Vec::new();
    };
    let obj = match path {
        Some(p) => v.get(p),
        None => Some(&v),
    };
    let Some(serde_json::Value::Object(m)) = obj else {
        return Vec::new();
    };
    m.iter()
        .map(|(k, v)| {
            let (num, text) = match v {
                serde_json::Value::Number(n) => (
                    n.as_i64()
                        .map(Value::Int)
                        .or_else(|| n.as_f64().map(Value::Real))
                        .unwrap_or(Value::Null),
                    Value::Null,
                ),
                serde_json::Value::Bool(b) => (Value::Int(*b as i64), Value::Null),
                serde_json::Value::Null => (Value::Null, Value::Null),
                serde_json::Value::String(s) => (Value::Null, Value::Text(s.clone())),
                other => (Value::Null, Value::Text(other.to_string())),
            };
            (format!("{prefix}{k}"), num, text)
        })
        .collect()
}

fn dataset_row(r: Row) -> Result<DatasetRecord, StoreError> {
    Ok(DatasetRecord {
        name: r.text(0)?,
        schema: r.text(1)?,
        created_at: r.text(2)?,
    })
}

pub(crate) fn journal_row(r: Row) -> Result<JournalEntry, StoreError> {
    let seq = r.int(0)?;
    let objects = r.text(5)?;
    Ok(JournalEntry {
        seq,
        time: r.text(1)?,
        user: r.text(2)?,
        command: r.text(3)?,
        why: r.opt_text(4)?,
        objects: serde_json::from_str(&objects)
            .map_err(|err| StoreError::Corrupt(format!("journal entry {seq}: {err}")))?,
    })
}

impl Tx<'_> {
    pub fn insert_dataset(&self, d: &DatasetRecord) -> Result<(), StoreError> {
        on_server!(self, Op::InsertDataset(d.clone()));
        self.0.exec(
            "INSERT INTO datasets (name, schema, created_at) VALUES (?1, ?2, ?3)",
            vals![&d.name, &d.schema, &d.created_at],
        )?;
        Ok(())
    }

    pub fn dataset(&self, name: &str) -> Result<Option<DatasetRecord>, StoreError> {
        on_server!(self, Op::Dataset(name.to_string()));
        self.0
            .query_opt(
                "SELECT name, schema, created_at FROM datasets WHERE name = ?1",
                vals![name],
            )?
            .map(dataset_row)
            .transpose()
    }

    pub fn datasets(&self) -> Result<Vec<DatasetRecord>, StoreError> {
        on_server!(self, Op::Datasets);
        self.0
            .query(
                "SELECT name, schema, created_at FROM datasets ORDER BY created_at, name",
                &[],
            )?
            .into_iter()
            .map(dataset_row)
            .collect()
    }

    pub fn insert_source(&self, s: &SourceRecord) -> Result<(), StoreError> {
        on_server!(self, Op::InsertSource(s.clone()));
        self.0.exec(
            "INSERT INTO sources (id, dataset, seq, file_name, options, object, rows, first_row_id, stats, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            vals![
                &s.id,
                &s.dataset,
                s.seq,
                &s.file_name,
                &s.options,
                &s.object,
                s.rows,
                s.first_row_id,
                &s.stats,
                &s.created_at
            ],
        )?;
        Ok(())
    }

    const SOURCE_COLS: &'static str =
        "id, dataset, seq, file_name, options, object, rows, first_row_id, stats, created_at";

    fn source_row(r: Row) -> Result<SourceRecord, StoreError> {
        Ok(SourceRecord {
            id: r.text(0)?,
            dataset: r.text(1)?,
            seq: r.int(2)?,
            file_name: r.text(3)?,
            options: r.text(4)?,
            object: r.text(5)?,
            rows: r.int(6)? as u64,
            first_row_id: r.int(7)? as u64,
            stats: r.text(8)?,
            created_at: r.text(9)?,
        })
    }

    pub fn source(&self, id: &str) -> Result<Option<SourceRecord>, StoreError> {
        on_server!(self, Op::Source(id.to_string()));
        let sql = format!("SELECT {} FROM sources WHERE id = ?1", Self::SOURCE_COLS);
        self.0
            .query_opt(&sql, vals![id])?
            .map(Self::source_row)
            .transpose()
    }

    pub fn sources(&self, dataset: &str) -> Result<Vec<SourceRecord>, StoreError> {
        on_server!(self, Op::Sources(dataset.to_string()));
        let sql = format!(
            "SELECT {} FROM sources WHERE dataset = ?1 ORDER BY seq",
            Self::SOURCE_COLS
        );
        self.0
            .query(&sql, vals![dataset])?
            .into_iter()
            .map(Self::source_row)
            .collect()
    }

    pub fn insert_version(&self, v: &VersionRecord) -> Result<(), StoreError> {
        on_server!(self, Op::InsertVersion(v.clone()));
        self.0.exec(
            "INSERT INTO versions (id, dataset, seq, edit, description, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            vals![
                &v.id,
                &v.dataset,
                v.seq,
                v.edit,
                &v.description,
                &v.created_at
            ],
        )?;
        Ok(())
    }

    fn version_row(r: Row) -> Result<VersionRecord, StoreError> {
        Ok(VersionRecord {
            id: r.text(0)?,
            dataset: r.text(1)?,
            seq: r.int(2)?,
            edit: r.opt_int(3)?,
            description: r.text(4)?,
            created_at: r.text(5)?,
        })
    }

    /// Appends an edit and returns its number.
    pub fn insert_edit(&self, e: &EditRecord) -> Result<i64, StoreError> {
        on_server!(self, Op::InsertEdit(e.clone()));
        self.0
            .query_one(
                "INSERT INTO edits (dataset, body, why, author, time, rows_affected)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
                vals![
                    &e.dataset,
                    &e.body,
                    &e.why,
                    &e.author,
                    &e.time,
                    e.rows_affected
                ],
            )?
            .int(0)
    }

    fn edit_row(r: Row) -> Result<EditRecord, StoreError> {
        Ok(EditRecord {
            id: r.int(0)?,
            dataset: r.text(1)?,
            body: r.text(2)?,
            why: r.text(3)?,
            author: r.text(4)?,
            time: r.text(5)?,
            rows_affected: r.int(6)? as u64,
        })
    }

    /// A dataset's edits, oldest first.
    pub fn edits(&self, dataset: &str) -> Result<Vec<EditRecord>, StoreError> {
        on_server!(self, Op::Edits(dataset.to_string()));
        self.0
            .query(
                "SELECT id, dataset, body, why, author, time, rows_affected FROM edits
                 WHERE dataset = ?1 ORDER BY id",
                vals![dataset],
            )?
            .into_iter()
            .map(Self::edit_row)
            .collect()
    }

    /// The number of a dataset's newest edit (none before its first). A writer that decided
    /// on a change from what it read earlier checks this inside its transaction: another
    /// writer's edit in between makes its version id wrong, and it must read again.
    pub fn last_edit_id(&self, dataset: &str) -> Result<Option<i64>, StoreError> {
        on_server!(self, Op::LastEditId(dataset.to_string()));
        self.0
            .query_one(
                "SELECT max(id) FROM edits WHERE dataset = ?1",
                vals![dataset],
            )?
            .opt_int(0)
    }

    /// A dataset's versions, oldest first.
    pub fn versions(&self, dataset: &str) -> Result<Vec<VersionRecord>, StoreError> {
        on_server!(self, Op::Versions(dataset.to_string()));
        self.0
            .query(
                "SELECT id, dataset, seq, edit, description, created_at FROM versions
                 WHERE dataset = ?1 ORDER BY seq",
                vals![dataset],
            )?
            .into_iter()
            .map(Self::version_row)
            .collect()
    }

    /// How many versions `dataset` has had (the next one's `seq`).
    pub fn version_count(&self, dataset: &str) -> Result<i64, StoreError> {
        on_server!(self, Op::VersionCount(dataset.to_string()));
        self.0
            .query_one(
                "SELECT COUNT(*) FROM versions WHERE dataset = ?1",
                vals![dataset],
            )?
            .int(0)
    }

    pub fn insert_seed_group(&self, g: &SeedGroupRecord) -> Result<(), StoreError> {
        on_server!(self, Op::InsertSeedGroup(g.clone()));
        self.0.exec(
            "INSERT INTO seed_groups (id, summary, created_at) VALUES (?1, ?2, ?3)",
            vals![&g.id, &g.summary, &g.created_at],
        )?;
        Ok(())
    }

    pub fn seed_group(&self, id: &str) -> Result<Option<SeedGroupRecord>, StoreError> {
        on_server!(self, Op::SeedGroup(id.to_string()));
        self.0
            .query_opt(
                "SELECT id, summary, created_at FROM seed_groups WHERE id = ?1",
                vals![id],
            )?
            .map(|r| {
                Ok(SeedGroupRecord {
                    id: r.text(0)?,
                    summary: r.text(1)?,
                    created_at: r.text(2)?,
                })
            })
            .transpose()
    }

    pub fn insert_run(&self, r: &RunRecord) -> Result<(), StoreError> {
        on_server!(self, Op::InsertRun(r.clone()));
        self.0.exec(
            "INSERT INTO runs (id, dataset, version, learner, params, seed, model, predictions,
                               metrics, timings, info, seed_group, created_at, created_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            vals![
                &r.id,
                &r.dataset,
                &r.version,
                &r.learner,
                &r.params,
                r.seed,
                &r.model,
                &r.predictions,
                &r.metrics,
                &r.timings,
                &r.info,
                r.seed_group.as_deref(),
                &r.created_at,
                &r.created_by
            ],
        )?;
        // The metrics and params the runs table sorts and filters by (see migration 7).
        let mut fields = json_fields("metrics.", &r.metrics, Some("holdout"));
        fields.extend(json_fields("params.", &r.params, None));
        fields.extend([
            ("run.dataset".into(), Value::Null, Value::from(&r.dataset)),
            ("run.version".into(), Value::Null, Value::from(&r.version)),
            ("run.learner".into(), Value::Null, Value::from(&r.learner)),
            ("run.who".into(), Value::Null, Value::from(&r.created_by)),
            ("run.seed".into(), Value::from(r.seed), Value::Null),
        ]);
        for (field, num, text) in fields {
            self.0.exec(
                "INSERT INTO run_values (run, field, num, text) VALUES (?1, ?2, ?3, ?4)",
                &[Value::from(&r.id), Value::Text(field), num, text],
            )?;
        }
        Ok(())
    }

    pub(crate) const RUN_COLS: &'static str = "id, dataset, version, learner, params, seed, model, predictions, \
         metrics, timings, info, seed_group, created_at, created_by";

    pub(crate) fn run_row(r: Row) -> Result<RunRecord, StoreError> {
        Ok(RunRecord {
            id: r.text(0)?,
            dataset: r.text(1)?,
            version: r.text(2)?,
            learner: r.text(3)?,
            params: r.text(4)?,
            seed: r.int(5)? as u64,
            model: r.text(6)?,
            predictions: r.text(7)?,
            metrics: r.text(8)?,
            timings: r.text(9)?,
            info: r.text(10)?,
            seed_group: r.opt_text(11)?,
            created_at: r.text(12)?,
            created_by: r.text(13)?,
        })
    }

    /// Every run, oldest first.
    pub fn runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        on_server!(self, Op::Runs);
        let sql = format!(
            "SELECT {} FROM runs ORDER BY created_at, rowid",
            Self::RUN_COLS
        );
        self.0
            .query(&sql, &[])?
            .into_iter()
            .map(Self::run_row)
            .collect()
    }

    /// The newest run (the last of [`Tx::runs`]), read alone.
    pub fn latest_run(&self) -> Result<Option<RunRecord>, StoreError> {
        on_server!(self, Op::LatestRun);
        let sql = format!(
            "SELECT {} FROM runs ORDER BY created_at DESC, rowid DESC LIMIT 1",
            Self::RUN_COLS
        );
        self.0.query_opt(&sql, &[])?.map(Self::run_row).transpose()
    }

    /// Runs whose id starts with `prefix`.
    pub fn runs_with_prefix(&self, prefix: &str) -> Result<Vec<RunRecord>, StoreError> {
        on_server!(self, Op::RunsWithPrefix(prefix.to_string()));
        let sql = format!(
            "SELECT {} FROM runs WHERE substr(id, 1, length(CAST(?1 AS TEXT))) = ?1 \
             ORDER BY created_at, rowid",
            Self::RUN_COLS
        );
        self.0
            .query(&sql, vals![prefix])?
            .into_iter()
            .map(Self::run_row)
            .collect()
    }

    pub fn insert_suite(&self, s: &SuiteRecord) -> Result<(), StoreError> {
        on_server!(self, Op::InsertSuite(s.clone()));
        self.0.exec(
            "INSERT INTO suites (name, dataset, definition, created_at, author) VALUES (?1, ?2, ?3, ?4, ?5)",
            vals![&s.name, &s.dataset, &s.definition, &s.created_at, &s.author],
        )?;
        Ok(())
    }

    /// Every suite, oldest first.
    pub fn suites(&self) -> Result<Vec<SuiteRecord>, StoreError> {
        on_server!(self, Op::Suites);
        self.0
            .query(
                "SELECT name, dataset, definition, created_at, author FROM suites ORDER BY created_at, name",
                &[],
            )?
            .into_iter()
            .map(|r| {
                Ok(SuiteRecord {
                    name: r.text(0)?,
                    dataset: r.text(1)?,
                    definition: r.text(2)?,
                    created_at: r.text(3)?,
                    author: r.text(4)?,
                })
            })
            .collect()
    }

    pub fn insert_alias_event(&self, e: &AliasEvent) -> Result<i64, StoreError> {
        on_server!(self, Op::InsertAliasEvent(e.clone()));
        self.0
            .query_one(
                "INSERT INTO alias_events (alias, run, previous, action, who, time, why, forced, gate)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING seq",
                vals![
                    &e.alias,
                    &e.run,
                    e.previous.as_deref(),
                    &e.action,
                    &e.who,
                    &e.time,
                    &e.why,
                    e.forced,
                    e.gate.as_deref()
                ],
            )?
            .int(0)
    }

    /// Every alias move, oldest first.
    pub fn alias_events(&self) -> Result<Vec<AliasEvent>, StoreError> {
        on_server!(self, Op::AliasEvents);
        self.0
            .query(
                "SELECT seq, alias, run, previous, action, who, time, why, forced, gate
                 FROM alias_events ORDER BY seq",
                &[],
            )?
            .into_iter()
            .map(|r| {
                Ok(AliasEvent {
                    seq: r.int(0)?,
                    alias: r.text(1)?,
                    run: r.text(2)?,
                    previous: r.opt_text(3)?,
                    action: r.text(4)?,
                    who: r.text(5)?,
                    time: r.text(6)?,
                    why: r.text(7)?,
                    forced: r.bool(8)?,
                    gate: r.opt_text(9)?,
                })
            })
            .collect()
    }

    /// A cached object for `key`, if computed before.
    pub fn cache(&self, key: &str) -> Result<Option<String>, StoreError> {
        on_server!(self, Op::Cache(key.to_string()));
        self.0
            .query_opt("SELECT object FROM caches WHERE key = ?1", vals![key])?
            .map(|r| r.text(0))
            .transpose()
    }

    /// Every cache entry of a kind, oldest first: (key, object, created_at).
    pub fn caches_of_kind(&self, kind: &str) -> Result<Vec<(String, String, String)>, StoreError> {
        on_server!(self, Op::CachesOfKind(kind.to_string()));
        self.0
            .query(
                "SELECT key, object, created_at FROM caches WHERE kind = ?1 ORDER BY created_at, key",
                vals![kind],
            )?
            .into_iter()
            .map(|r| Ok((r.text(0)?, r.text(1)?, r.text(2)?)))
            .collect()
    }

    pub fn put_cache(
        &self,
        key: &str,
        kind: &str,
        object: &str,
        time: &str,
    ) -> Result<(), StoreError> {
        on_server!(
            self,
            Op::PutCache {
                key: key.into(),
                kind: kind.into(),
                object: object.into(),
                time: time.into()
            }
        );
        self.0.exec(
            "INSERT INTO caches (key, kind, object, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT DO NOTHING",
            vals![key, kind, object, time],
        )?;
        Ok(())
    }

    /// Inserts a finding unless one with the same key exists; returns its id and whether it is new.
    pub fn upsert_finding(&self, f: &FindingRecord) -> Result<(i64, bool), StoreError> {
        on_server!(self, Op::UpsertFinding(f.clone()));
        if let Some(r) = self
            .0
            .query_opt("SELECT id FROM findings WHERE key = ?1", vals![&f.key])?
        {
            return Ok((r.int(0)?, false));
        }
        let id = self
            .0
            .query_one(
                "INSERT INTO findings (kind, key, title, detail, run, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
                vals![&f.kind, &f.key, &f.title, &f.detail, &f.run, &f.created_at],
            )?
            .int(0)?;
        Ok((id, true))
    }

    pub fn findings(&self) -> Result<Vec<FindingRecord>, StoreError> {
        on_server!(self, Op::Findings);
        self.0
            .query(
                "SELECT id, kind, key, title, detail, run, created_at FROM findings ORDER BY id",
                &[],
            )?
            .into_iter()
            .map(|r| {
                Ok(FindingRecord {
                    id: r.int(0)?,
                    kind: r.text(1)?,
                    key: r.text(2)?,
                    title: r.text(3)?,
                    detail: r.text(4)?,
                    run: r.text(5)?,
                    created_at: r.text(6)?,
                })
            })
            .collect()
    }

    pub fn insert_finding_event(&self, e: &FindingEvent) -> Result<(), StoreError> {
        on_server!(self, Op::InsertFindingEvent(e.clone()));
        self.0.exec(
            "INSERT INTO finding_events (finding, state, why, who, time, run, edit) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            vals![
                e.finding,
                &e.state,
                e.why.as_deref(),
                &e.who,
                &e.time,
                e.run.as_deref(),
                e.edit
            ],
        )?;
        Ok(())
    }

    pub fn finding_events(&self) -> Result<Vec<FindingEvent>, StoreError> {
        on_server!(self, Op::FindingEvents);
        self.0
            .query(
                "SELECT seq, finding, state, why, who, time, run, edit FROM finding_events ORDER BY seq",
                &[],
            )?
            .into_iter()
            .map(|r| {
                Ok(FindingEvent {
                    seq: r.int(0)?,
                    finding: r.int(1)?,
                    state: r.text(2)?,
                    why: r.opt_text(3)?,
                    who: r.text(4)?,
                    time: r.text(5)?,
                    run: r.opt_text(6)?,
                    edit: r.opt_int(7)?,
                })
            })
            .collect()
    }

    pub fn append_journal(&self, e: &NewJournalEntry<'_>) -> Result<i64, StoreError> {
        on_server!(
            self,
            Op::AppendJournal(JournalLine {
                time: e.time.into(),
                user: e.user.into(),
                command: e.command.into(),
                why: e.why.map(String::from),
                objects: e.objects.to_vec()
            })
        );
        let objects = serde_json::to_string(e.objects).expect("strings serialize");
        self.0
            .query_one(
                "INSERT INTO journal (time, \"user\", command, why, objects) VALUES (?1, ?2, ?3, ?4, ?5)
                 RETURNING seq",
                vals![e.time, e.user, e.command, e.why, objects],
            )?
            .int(0)
    }

    /// The journal, oldest first.
    pub fn journal(&self) -> Result<Vec<JournalEntry>, StoreError> {
        on_server!(self, Op::Journal);
        self.0
            .query(
                "SELECT seq, time, \"user\", command, why, objects FROM journal ORDER BY seq",
                &[],
            )?
            .into_iter()
            .map(journal_row)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::Store;

    #[test]
    fn journal_is_append_only_in_a_real_sqlite_file() {
        for t in crate::testing::backends() {
            let (root, mut store) = (t.root, t.store);
            store
                .write(|tx| {
                    tx.append_journal(&crate::NewJournalEntry {
                        time: "t",
                        user: "u",
                        command: "gyre init",
                        why: Some("start"),
                        objects: &["x".to_string()],
                    })
                })
                .unwrap();
            let mut changes = vec!["DELETE FROM journal", "UPDATE journal SET why = 'changed'"];
            if t.backend == "team" {
                changes.push("TRUNCATE journal");
            }
            for sql in changes {
                let err = store.write(|tx| tx.0.exec(sql, &[])).unwrap_err();
                assert!(
                    err.to_string().contains("append-only"),
                    "{}: {sql}: {err}",
                    t.backend
                );
            }
            let j = store.read(|tx| tx.journal()).unwrap();
            assert_eq!(j.len(), 1);
            assert_eq!(j[0].objects, vec!["x"]);
            // Reopening keeps it, and a second init is refused.
            drop(store);
            let mut store = Store::open(&root).unwrap();
            assert_eq!(store.read(|tx| tx.journal()).unwrap().len(), 1);
            assert!(Store::init(&root, "").is_err());
        }
    }

    /// Each commit is synced (FULL), and a command's end does not checkpoint: the log it wrote
    /// stays beside the database, and the next connection reads its commits from it.
    #[test]
    fn commits_are_synced_and_outlive_the_connection_in_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let root = Store::init(dir.path(), "").unwrap();
        let mut store = Store::open(&root).unwrap();
        let synchronous: i64 = store
            .read(|tx| tx.0.query_one("PRAGMA synchronous", &[])?.int(0))
            .unwrap();
        assert_eq!(synchronous, 2, "FULL");
        store
            .write(|tx| {
                tx.append_journal(&crate::NewJournalEntry {
                    time: "t",
                    user: "u",
                    command: "gyre edit",
                    why: Some("w"),
                    objects: &[],
                })
            })
            .unwrap();
        drop(store);
        let wal = root.join(crate::STATE_DIR).join("gyre.db-wal");
        assert!(
            std::fs::metadata(&wal).unwrap().len() > 0,
            "the log is kept"
        );
        let mut store = Store::open(&root).unwrap();
        assert_eq!(store.read(|tx| tx.journal()).unwrap().len(), 1);
    }

    /// The newest run read alone is the last of all runs in order: by time, then by insertion
    /// for runs of the same time.
    #[test]
    fn the_latest_run_is_the_last_of_all_runs() {
        for mut t in crate::testing::backends() {
            let store = &mut t.store;
            assert!(store.read(|tx| tx.latest_run()).unwrap().is_none());
            let run = |id: &str, at: &str| crate::RunRecord {
                id: id.into(),
                dataset: "d".into(),
                version: "v".into(),
                learner: "gbdt".into(),
                params: "{}".into(),
                seed: 0,
                model: "m".into(),
                predictions: "p".into(),
                metrics: "{}".into(),
                timings: "{}".into(),
                info: "{}".into(),
                seed_group: None,
                created_at: at.into(),
                created_by: "u".into(),
            };
            store
                .write(|tx| {
                    tx.insert_dataset(&crate::DatasetRecord {
                        name: "d".into(),
                        schema: "{}".into(),
                        created_at: "t0".into(),
                    })?;
                    for (id, at) in [("b", "t2"), ("a", "t1"), ("c", "t2"), ("d", "t0")] {
                        tx.insert_run(&run(id, at))?;
                    }
                    Ok::<_, crate::StoreError>(())
                })
                .unwrap();
            let all = store.read(|tx| tx.runs()).unwrap();
            let latest = store.read(|tx| tx.latest_run()).unwrap().unwrap();
            assert_eq!(latest.id, "c");
            assert_eq!(latest.id, all.last().unwrap().id);
        }
    }

    #[test]
    fn objects_are_content_addressed_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let root = Store::init(dir.path(), "").unwrap();
        let store = Store::open(&root).unwrap();
        let a = store.objects().put(b"hello").unwrap();
        let b = store.objects().put(b"hello").unwrap();
        assert_eq!(a, b);
        assert_eq!(store.objects().get(&a).unwrap(), b"hello");
        assert_eq!(
            std::fs::read_dir(root.join(".gyre/tmp")).unwrap().count(),
            0,
            "no temp files left"
        );
    }

    #[test]
    fn abandoned_temp_files_are_swept_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let root = Store::init(dir.path(), "").unwrap();
        // No process has this pid: its file is abandoned.
        let stale = root.join(".gyre/tmp/999999999-0.tmp");
        std::fs::write(&stale, b"partial").unwrap();
        let _ = Store::open(&root).unwrap();
        assert!(!stale.exists());
    }
}
