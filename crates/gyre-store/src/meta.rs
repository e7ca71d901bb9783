//! Typed records of the metadata store and the queries over them. No SQL leaves this crate.

use crate::{StoreError, Tx};
use rusqlite::{OptionalExtension, params};
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

impl Tx<'_> {
    pub fn insert_dataset(&self, d: &DatasetRecord) -> Result<(), StoreError> {
        self.0.execute(
            "INSERT INTO datasets (name, schema, created_at) VALUES (?1, ?2, ?3)",
            params![d.name, d.schema, d.created_at],
        )?;
        Ok(())
    }

    pub fn dataset(&self, name: &str) -> Result<Option<DatasetRecord>, StoreError> {
        Ok(self
            .0
            .query_row(
                "SELECT name, schema, created_at FROM datasets WHERE name = ?1",
                [name],
                |r| {
                    Ok(DatasetRecord {
                        name: r.get(0)?,
                        schema: r.get(1)?,
                        created_at: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn datasets(&self) -> Result<Vec<DatasetRecord>, StoreError> {
        let mut st = self
            .0
            .prepare("SELECT name, schema, created_at FROM datasets ORDER BY created_at, name")?;
        let rows = st.query_map([], |r| {
            Ok(DatasetRecord {
                name: r.get(0)?,
                schema: r.get(1)?,
                created_at: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn insert_source(&self, s: &SourceRecord) -> Result<(), StoreError> {
        self.0.execute(
            "INSERT INTO sources (id, dataset, seq, file_name, options, object, rows, first_row_id, stats, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                s.id,
                s.dataset,
                s.seq,
                s.file_name,
                s.options,
                s.object,
                s.rows as i64,
                s.first_row_id as i64,
                s.stats,
                s.created_at
            ],
        )?;
        Ok(())
    }

    const SOURCE_COLS: &'static str =
        "id, dataset, seq, file_name, options, object, rows, first_row_id, stats, created_at";

    fn source_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SourceRecord> {
        Ok(SourceRecord {
            id: r.get(0)?,
            dataset: r.get(1)?,
            seq: r.get(2)?,
            file_name: r.get(3)?,
            options: r.get(4)?,
            object: r.get(5)?,
            rows: r.get::<_, i64>(6)? as u64,
            first_row_id: r.get::<_, i64>(7)? as u64,
            stats: r.get(8)?,
            created_at: r.get(9)?,
        })
    }

    pub fn source(&self, id: &str) -> Result<Option<SourceRecord>, StoreError> {
        let sql = format!("SELECT {} FROM sources WHERE id = ?1", Self::SOURCE_COLS);
        Ok(self.0.query_row(&sql, [id], Self::source_row).optional()?)
    }

    pub fn sources(&self, dataset: &str) -> Result<Vec<SourceRecord>, StoreError> {
        let sql = format!(
            "SELECT {} FROM sources WHERE dataset = ?1 ORDER BY seq",
            Self::SOURCE_COLS
        );
        let mut st = self.0.prepare(&sql)?;
        let rows = st.query_map([dataset], Self::source_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn insert_version(&self, v: &VersionRecord) -> Result<(), StoreError> {
        self.0.execute(
            "INSERT INTO versions (id, dataset, seq, edit, description, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![v.id, v.dataset, v.seq, v.edit, v.description, v.created_at],
        )?;
        Ok(())
    }

    fn version_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<VersionRecord> {
        Ok(VersionRecord {
            id: r.get(0)?,
            dataset: r.get(1)?,
            seq: r.get(2)?,
            edit: r.get(3)?,
            description: r.get(4)?,
            created_at: r.get(5)?,
        })
    }

    /// Appends an edit and returns its number.
    pub fn insert_edit(&self, e: &EditRecord) -> Result<i64, StoreError> {
        self.0.execute(
            "INSERT INTO edits (dataset, body, why, author, time, rows_affected)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                e.dataset,
                e.body,
                e.why,
                e.author,
                e.time,
                e.rows_affected as i64
            ],
        )?;
        Ok(self.0.last_insert_rowid())
    }

    /// A dataset's edits, oldest first.
    pub fn edits(&self, dataset: &str) -> Result<Vec<EditRecord>, StoreError> {
        let mut st = self.0.prepare(
            "SELECT id, dataset, body, why, author, time, rows_affected FROM edits
             WHERE dataset = ?1 ORDER BY id",
        )?;
        let rows = st.query_map([dataset], |r| {
            Ok(EditRecord {
                id: r.get(0)?,
                dataset: r.get(1)?,
                body: r.get(2)?,
                why: r.get(3)?,
                author: r.get(4)?,
                time: r.get(5)?,
                rows_affected: r.get::<_, i64>(6)? as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A dataset's versions, oldest first.
    pub fn versions(&self, dataset: &str) -> Result<Vec<VersionRecord>, StoreError> {
        let mut st = self.0.prepare(
            "SELECT id, dataset, seq, edit, description, created_at FROM versions
             WHERE dataset = ?1 ORDER BY seq",
        )?;
        let rows = st.query_map([dataset], Self::version_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many versions `dataset` has had (the next one's `seq`).
    pub fn version_count(&self, dataset: &str) -> Result<i64, StoreError> {
        Ok(self.0.query_row(
            "SELECT COUNT(*) FROM versions WHERE dataset = ?1",
            [dataset],
            |r| r.get(0),
        )?)
    }

    pub fn insert_seed_group(&self, g: &SeedGroupRecord) -> Result<(), StoreError> {
        self.0.execute(
            "INSERT INTO seed_groups (id, summary, created_at) VALUES (?1, ?2, ?3)",
            params![g.id, g.summary, g.created_at],
        )?;
        Ok(())
    }

    pub fn seed_group(&self, id: &str) -> Result<Option<SeedGroupRecord>, StoreError> {
        Ok(self
            .0
            .query_row(
                "SELECT id, summary, created_at FROM seed_groups WHERE id = ?1",
                [id],
                |r| {
                    Ok(SeedGroupRecord {
                        id: r.get(0)?,
                        summary: r.get(1)?,
                        created_at: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn insert_run(&self, r: &RunRecord) -> Result<(), StoreError> {
        self.0.execute(
            "INSERT INTO runs (id, dataset, version, learner, params, seed, model, predictions,
                               metrics, timings, info, seed_group, created_at, created_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                r.id,
                r.dataset,
                r.version,
                r.learner,
                r.params,
                r.seed as i64,
                r.model,
                r.predictions,
                r.metrics,
                r.timings,
                r.info,
                r.seed_group,
                r.created_at,
                r.created_by
            ],
        )?;
        // The metrics and params the runs table sorts and filters by (see migration 7).
        for (prefix, json, path) in [
            ("metrics.", &r.metrics, "$.holdout"),
            ("params.", &r.params, "$"),
        ] {
            self.0.execute(
                "INSERT INTO run_values (run, field, num, text)
                 SELECT ?1, ?2 || j.key,
                        CASE WHEN j.type IN ('integer', 'real', 'true', 'false') THEN j.value END,
                        CASE WHEN j.type NOT IN ('integer', 'real', 'true', 'false') THEN j.value END
                 FROM json_each(?3, ?4) j",
                params![r.id, prefix, json, path],
            )?;
        }
        self.0.execute(
            "INSERT INTO run_values (run, field, num, text) VALUES
                 (?1, 'run.dataset', NULL, ?2), (?1, 'run.version', NULL, ?3),
                 (?1, 'run.learner', NULL, ?4), (?1, 'run.who', NULL, ?5), (?1, 'run.seed', ?6, NULL)",
            params![r.id, r.dataset, r.version, r.learner, r.created_by, r.seed as i64],
        )?;
        Ok(())
    }

    pub(crate) const RUN_COLS: &'static str = "id, dataset, version, learner, params, seed, model, predictions, \
         metrics, timings, info, seed_group, created_at, created_by";

    pub(crate) fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
        Ok(RunRecord {
            id: r.get(0)?,
            dataset: r.get(1)?,
            version: r.get(2)?,
            learner: r.get(3)?,
            params: r.get(4)?,
            seed: r.get::<_, i64>(5)? as u64,
            model: r.get(6)?,
            predictions: r.get(7)?,
            metrics: r.get(8)?,
            timings: r.get(9)?,
            info: r.get(10)?,
            seed_group: r.get(11)?,
            created_at: r.get(12)?,
            created_by: r.get(13)?,
        })
    }

    /// Every run, oldest first.
    pub fn runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        let sql = format!(
            "SELECT {} FROM runs ORDER BY created_at, rowid",
            Self::RUN_COLS
        );
        let mut st = self.0.prepare(&sql)?;
        let rows = st.query_map([], Self::run_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The newest run (the last of [`Tx::runs`]), read alone.
    pub fn latest_run(&self) -> Result<Option<RunRecord>, StoreError> {
        let sql = format!(
            "SELECT {} FROM runs ORDER BY created_at DESC, rowid DESC LIMIT 1",
            Self::RUN_COLS
        );
        Ok(self.0.query_row(&sql, [], Self::run_row).optional()?)
    }

    /// Runs whose id starts with `prefix`.
    pub fn runs_with_prefix(&self, prefix: &str) -> Result<Vec<RunRecord>, StoreError> {
        let sql = format!(
            "SELECT {} FROM runs WHERE substr(id, 1, length(?1)) = ?1 ORDER BY created_at, rowid",
            Self::RUN_COLS
        );
        let mut st = self.0.prepare(&sql)?;
        let rows = st.query_map([prefix], Self::run_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn insert_suite(&self, s: &SuiteRecord) -> Result<(), StoreError> {
        self.0.execute(
            "INSERT INTO suites (name, dataset, definition, created_at, author) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![s.name, s.dataset, s.definition, s.created_at, s.author],
        )?;
        Ok(())
    }

    /// Every suite, oldest first.
    pub fn suites(&self) -> Result<Vec<SuiteRecord>, StoreError> {
        let mut st = self.0.prepare(
            "SELECT name, dataset, definition, created_at, author FROM suites ORDER BY created_at, name",
        )?;
        let rows = st.query_map([], |r| {
            Ok(SuiteRecord {
                name: r.get(0)?,
                dataset: r.get(1)?,
                definition: r.get(2)?,
                created_at: r.get(3)?,
                author: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn insert_alias_event(&self, e: &AliasEvent) -> Result<i64, StoreError> {
        self.0.execute(
            "INSERT INTO alias_events (alias, run, previous, action, who, time, why, forced, gate)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                e.alias, e.run, e.previous, e.action, e.who, e.time, e.why, e.forced, e.gate
            ],
        )?;
        Ok(self.0.last_insert_rowid())
    }

    /// Every alias move, oldest first.
    pub fn alias_events(&self) -> Result<Vec<AliasEvent>, StoreError> {
        let mut st = self.0.prepare(
            "SELECT seq, alias, run, previous, action, who, time, why, forced, gate
             FROM alias_events ORDER BY seq",
        )?;
        let rows = st.query_map([], |r| {
            Ok(AliasEvent {
                seq: r.get(0)?,
                alias: r.get(1)?,
                run: r.get(2)?,
                previous: r.get(3)?,
                action: r.get(4)?,
                who: r.get(5)?,
                time: r.get(6)?,
                why: r.get(7)?,
                forced: r.get(8)?,
                gate: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A cached object for `key`, if computed before.
    pub fn cache(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .0
            .query_row("SELECT object FROM caches WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Every cache entry of a kind, oldest first: (key, object, created_at).
    pub fn caches_of_kind(&self, kind: &str) -> Result<Vec<(String, String, String)>, StoreError> {
        let mut st = self.0.prepare(
            "SELECT key, object, created_at FROM caches WHERE kind = ?1 ORDER BY created_at, key",
        )?;
        let rows = st.query_map([kind], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn put_cache(
        &self,
        key: &str,
        kind: &str,
        object: &str,
        time: &str,
    ) -> Result<(), StoreError> {
        self.0.execute(
            "INSERT OR IGNORE INTO caches (key, kind, object, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![key, kind, object, time],
        )?;
        Ok(())
    }

    /// Inserts a finding unless one with the same key exists; returns its id and whether it is new.
    pub fn upsert_finding(&self, f: &FindingRecord) -> Result<(i64, bool), StoreError> {
        if let Some(id) = self
            .0
            .query_row("SELECT id FROM findings WHERE key = ?1", [&f.key], |r| {
                r.get(0)
            })
            .optional()?
        {
            return Ok((id, false));
        }
        self.0.execute(
            "INSERT INTO findings (kind, key, title, detail, run, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![f.kind, f.key, f.title, f.detail, f.run, f.created_at],
        )?;
        Ok((self.0.last_insert_rowid(), true))
    }

    pub fn findings(&self) -> Result<Vec<FindingRecord>, StoreError> {
        let mut st = self.0.prepare(
            "SELECT id, kind, key, title, detail, run, created_at FROM findings ORDER BY id",
        )?;
        let rows = st.query_map([], |r| {
            Ok(FindingRecord {
                id: r.get(0)?,
                kind: r.get(1)?,
                key: r.get(2)?,
                title: r.get(3)?,
                detail: r.get(4)?,
                run: r.get(5)?,
                created_at: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn insert_finding_event(&self, e: &FindingEvent) -> Result<(), StoreError> {
        self.0.execute(
            "INSERT INTO finding_events (finding, state, why, who, time, run, edit) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![e.finding, e.state, e.why, e.who, e.time, e.run, e.edit],
        )?;
        Ok(())
    }

    pub fn finding_events(&self) -> Result<Vec<FindingEvent>, StoreError> {
        let mut st = self.0.prepare(
            "SELECT seq, finding, state, why, who, time, run, edit FROM finding_events ORDER BY seq",
        )?;
        let rows = st.query_map([], |r| {
            Ok(FindingEvent {
                seq: r.get(0)?,
                finding: r.get(1)?,
                state: r.get(2)?,
                why: r.get(3)?,
                who: r.get(4)?,
                time: r.get(5)?,
                run: r.get(6)?,
                edit: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn append_journal(&self, e: &NewJournalEntry<'_>) -> Result<i64, StoreError> {
        let objects = serde_json::to_string(e.objects).expect("strings serialize");
        self.0.execute(
            "INSERT INTO journal (time, user, command, why, objects) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![e.time, e.user, e.command, e.why, objects],
        )?;
        Ok(self.0.last_insert_rowid())
    }

    /// The journal, oldest first.
    pub fn journal(&self) -> Result<Vec<JournalEntry>, StoreError> {
        let mut st = self
            .0
            .prepare("SELECT seq, time, user, command, why, objects FROM journal ORDER BY seq")?;
        let rows = st.query_map([], |r| {
            let objects: String = r.get(5)?;
            Ok((
                JournalEntry {
                    seq: r.get(0)?,
                    time: r.get(1)?,
                    user: r.get(2)?,
                    command: r.get(3)?,
                    why: r.get(4)?,
                    objects: Vec::new(),
                },
                objects,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (mut e, objects) = row?;
            e.objects = serde_json::from_str(&objects)
                .map_err(|err| StoreError::Corrupt(format!("journal entry {}: {err}", e.seq)))?;
            out.push(e);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::Store;

    #[test]
    fn journal_is_append_only_in_a_real_sqlite_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = Store::init(dir.path(), "").unwrap();
        let mut store = Store::open(&root).unwrap();
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
        let err = store
            .write(|tx| {
                tx.0.execute("DELETE FROM journal", [])
                    .map_err(crate::StoreError::from)
            })
            .unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
        let j = store.read(|tx| tx.journal()).unwrap();
        assert_eq!(j.len(), 1);
        assert_eq!(j[0].objects, vec!["x"]);
        // Reopening keeps it, and a second init is refused.
        drop(store);
        let mut store = Store::open(&root).unwrap();
        assert_eq!(store.read(|tx| tx.journal()).unwrap().len(), 1);
        assert!(Store::init(&root, "").is_err());
    }

    /// Each commit is synced (FULL), and a command's end does not checkpoint: the log it wrote
    /// stays beside the database, and the next connection reads its commits from it.
    #[test]
    fn commits_are_synced_and_outlive_the_connection_in_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let root = Store::init(dir.path(), "").unwrap();
        let mut store = Store::open(&root).unwrap();
        let synchronous: i64 = store
            .read(|tx| {
                tx.0.query_row("PRAGMA synchronous", [], |r| r.get(0))
                    .map_err(crate::StoreError::from)
            })
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
        let dir = tempfile::tempdir().unwrap();
        let root = Store::init(dir.path(), "").unwrap();
        let mut store = Store::open(&root).unwrap();
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
