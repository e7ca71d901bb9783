//! Moving a project between backends (`gyre store copy`): every object, then every row of
//! every table with its ids, in one transaction on the destination, then a check that both
//! sides hold the same rows.

use crate::sql::{Row, Value};
use crate::{Store, StoreError, Tx};
use std::collections::BTreeMap;

/// The metadata tables in an order that respects their references, each with its columns and
/// the order its rows are copied in (ids as they were; runs in insertion order, which breaks
/// ties of their creation times).
const TABLES: &[(&str, &str, &str)] = &[
    ("datasets", "name, schema, created_at", "name"),
    (
        "sources",
        "id, dataset, seq, file_name, options, object, rows, first_row_id, stats, created_at",
        "dataset, seq",
    ),
    (
        "edits",
        "id, dataset, body, why, author, time, rows_affected",
        "id",
    ),
    (
        "versions",
        "dataset, seq, id, edit, description, created_at",
        "dataset, seq",
    ),
    ("seed_groups", "id, summary, created_at", "id"),
    (
        "runs",
        "id, dataset, version, learner, params, seed, model, predictions, metrics, timings, \
         info, seed_group, created_at, created_by",
        "rowid",
    ),
    (
        "suites",
        "name, dataset, definition, created_at, author",
        "name",
    ),
    (
        "alias_events",
        "seq, alias, run, previous, action, who, time, why, forced, gate",
        "seq",
    ),
    ("caches", "key, kind, object, created_at", "key"),
    (
        "findings",
        "id, kind, key, title, detail, run, created_at",
        "id",
    ),
    (
        "finding_events",
        "seq, finding, state, why, who, time, run, edit",
        "seq",
    ),
    (
        "journal",
        "seq, time, \"user\", command, why, objects",
        "seq",
    ),
    ("run_values", "run, field, num, text", "run, field"),
    ("people", "name, role, created_at, created_by", "name"),
    (
        "tokens",
        "id, person, hash, label, created_at, revoked_at",
        "id",
    ),
];

/// Identity columns whose next value follows the copied ids (PostgreSQL; SQLite's
/// AUTOINCREMENT follows explicit ids by itself).
const IDENTITIES: &[(&str, &str)] = &[
    ("edits", "id"),
    ("alias_events", "seq"),
    ("findings", "id"),
    ("finding_events", "seq"),
    ("journal", "seq"),
];

/// What a copy moved.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct CopyReport {
    pub objects: usize,
    pub object_bytes: u64,
    /// Rows per table.
    pub rows: BTreeMap<String, usize>,
}

/// A canonical form of a value for comparing two backends (a boolean is the integer SQLite
/// stores for it).
fn canonical(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Int(n) => format!("i{n}"),
        Value::Bool(b) => format!("i{}", *b as i64),
        Value::Real(x) => format!("r{x:?}"),
        Value::Text(s) => format!("t{s:?}"),
    }
}

impl Tx<'_> {
    fn table_rows(&self, table: &str, cols: &str, order: &str) -> Result<Vec<Row>, StoreError> {
        self.0
            .query(&format!("SELECT {cols} FROM {table} ORDER BY {order}"), &[])
    }

    /// Every table's rows in a canonical, sorted form: two stores with the same contents give
    /// the same map, whatever their backends (runs keep their insertion order as a column).
    pub fn contents(&self) -> Result<BTreeMap<String, Vec<String>>, StoreError> {
        let mut out = BTreeMap::new();
        for (table, cols, order) in TABLES {
            let rows = self.table_rows(table, cols, order)?;
            let mut lines: Vec<String> = rows
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let n = cols.split(',').count();
                    let mut line: Vec<String> = (0..n).map(|c| canonical(r.value(c))).collect();
                    if *table == "runs" {
                        line.push(format!("#{i}"));
                    }
                    line.join("|")
                })
                .collect();
            lines.sort();
            out.insert(table.to_string(), lines);
        }
        Ok(out)
    }

    /// Whether no table holds a row (a fresh project, before its first journal entry).
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        for (table, _, _) in TABLES {
            if self
                .0
                .query_opt(&format!("SELECT 1 FROM {table} LIMIT 1"), &[])?
                .is_some()
            {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

impl Store {
    /// Copies this project's objects and metadata into `dest`, which must be empty (made by
    /// [`Store::init`] and not yet used). Objects go first, so the destination's metadata
    /// never points at a missing object; the metadata goes in one transaction, so a failed
    /// copy leaves the destination's tables empty. Ends by checking that both sides hold the
    /// same rows. `progress` hears (done, total) of objects.
    pub fn copy_into(
        &mut self,
        dest: &mut Store,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<CopyReport, StoreError> {
        if !dest.read(|tx| tx.is_empty())? {
            return Err(StoreError::Invalid(format!(
                "the destination {} already holds a project; copy into an empty one",
                dest.root().display()
            )));
        }
        let mut report = CopyReport::default();
        let ids = self.objects().list()?;
        for (i, id) in ids.iter().enumerate() {
            let hash = gyre_core::ContentHash::parse(id)
                .ok_or_else(|| StoreError::Corrupt(format!("object name {id}")))?;
            let bytes = self.objects().get_mapped(&hash)?;
            let stored = dest.objects().put(&bytes)?;
            if stored != hash {
                return Err(StoreError::Corrupt(format!(
                    "object {id} hashes to {stored}: the source's copy is damaged"
                )));
            }
            report.object_bytes += bytes.len() as u64;
            progress(i + 1, ids.len());
        }
        report.objects = ids.len();
        let tables: Vec<(&str, &str, Vec<Row>)> = self.read(|tx| {
            TABLES
                .iter()
                .map(|(t, cols, order)| Ok((*t, *cols, tx.table_rows(t, cols, order)?)))
                .collect::<Result<_, StoreError>>()
        })?;
        dest.write(|tx| {
            if tx.is_team() {
                // The per-row check of run_values' reference to runs is most of a bulk load's
                // time on PostgreSQL; the constraint is dropped and added back in this
                // transaction, which checks every row at once (a join) before it commits.
                tx.0.exec(
                    "ALTER TABLE run_values DROP CONSTRAINT run_values_run_fkey",
                    &[],
                )?;
            }
            for (table, cols, rows) in &tables {
                tx.0.append_rows(table, cols, rows)?;
                report.rows.insert(table.to_string(), rows.len());
            }
            if tx.is_team() {
                tx.0.exec(
                    "ALTER TABLE run_values ADD CONSTRAINT run_values_run_fkey \
                     FOREIGN KEY (run) REFERENCES runs(id)",
                    &[],
                )?;
                for (table, col) in IDENTITIES {
                    tx.0.query_one(
                        &format!(
                            "SELECT setval(pg_get_serial_sequence('{table}', '{col}'), \
                             coalesce(max({col}), 0) + 1, false) FROM {table}"
                        ),
                        &[],
                    )?;
                }
            }
            Ok::<_, StoreError>(())
        })?;
        if dest.is_team() {
            // Fresh planner statistics and visibility for the tables just filled: without
            // them the first queries plan as if the tables were empty and index-only scans
            // read the table too (a 100,000-run listing took 250 ms instead of 30).
            dest.vacuum_analyze()?;
        }
        let (ours, theirs) = (
            self.read(|tx| tx.contents())?,
            dest.read(|tx| tx.contents())?,
        );
        if let Some((table, _)) = ours.iter().find(|(t, rows)| theirs.get(*t) != Some(rows)) {
            return Err(StoreError::Corrupt(format!(
                "after the copy, table {table} differs between the two stores"
            )));
        }
        Ok(report)
    }
}
