//! Paged, sorted and filtered reads for views that must not load everything: the runs table
//! (a project may hold 100,000 runs) and the journal.
//!
//! The query is structured (fields, operators, values), never SQL text from a caller: field
//! names become JSON paths only after they pass `is_identifier`, and values are bound.

use crate::meta::{JournalEntry, RunRecord, journal_row};
use crate::sql::{Value, vals};
use crate::wire::{Op, on_server};
use crate::{StoreError, Tx};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// A field of a run to sort or filter on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RunField {
    Created,
    Id,
    Dataset,
    Version,
    Learner,
    Seed,
    CreatedBy,
    /// A holdout metric (`auc`, `rmse`, ...).
    Metric(String),
    /// A learner param (`num_leaves`, ...).
    Param(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// Text contains (case-sensitive).
    Contains,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunFilter {
    pub field: RunField,
    pub op: CompareOp,
    pub value: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunsQuery {
    pub sort: RunField,
    pub descending: bool,
    pub filters: Vec<RunFilter>,
    pub limit: usize,
    pub offset: usize,
}

/// One page of runs and how many match in all.
#[derive(Serialize, Deserialize)]
pub struct RunsPage {
    pub runs: Vec<RunRecord>,
    pub total: usize,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct JournalQuery {
    /// Entries by this user only.
    pub user: Option<String>,
    /// Entries whose command line contains this text.
    pub command: Option<String>,
    /// Entries at or after this RFC 3339 time.
    pub since: Option<String>,
    /// Entries before this RFC 3339 time.
    pub until: Option<String>,
    pub limit: usize,
    pub offset: usize,
}

#[derive(Serialize, Deserialize)]
pub struct JournalPage {
    /// Newest first.
    pub entries: Vec<JournalEntry>,
    pub total: usize,
}

/// Whether looking up each of `kept` runs (about 30 times the cost of one step of an index
/// walk, measured) is cheaper than walking the sort index until `wanted` of them are found
/// (about `wanted * total / kept` steps when they are spread evenly).
fn few_enough(kept: usize, wanted: usize, total: usize) -> bool {
    (kept as u128).pow(2) * 32 <= wanted as u128 * total as u128
}

/// SQLite's order of two values of a column: numbers by value, text by bytes.
fn compare_values(a: &Value, b: &Value) -> std::cmp::Ordering {
    let number = |v: &Value| match v {
        Value::Int(i) => Some(*i as f64),
        Value::Real(x) => Some(*x),
        _ => None,
    };
    match (a, b) {
        (Value::Text(x), Value::Text(y)) => x.cmp(y),
        _ => match (number(a), number(b)) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            // Numbers before text, as SQLite sorts them.
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        },
    }
}

/// Letters, digits and `_`: the only names that become part of a JSON path.
pub fn is_identifier(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A column of `runs` that sorts through an index of its own (`None` for the other fields,
/// which sort and filter through `run_values`).
fn run_column(field: &RunField) -> Option<&'static str> {
    match field {
        RunField::Created => Some("r.created_at"),
        RunField::Id => Some("r.id"),
        _ => None,
    }
}

/// The `run_values` field of a metric, a param or one of the run's own columns (see
/// migration 7 and `Tx::insert_run`).
fn value_field(field: &RunField) -> Result<Option<String>, StoreError> {
    Ok(Some(match field {
        RunField::Metric(m) | RunField::Param(m) if !is_identifier(m) => {
            return Err(StoreError::Invalid(format!(
                "\"{m}\" is not a metric or param name (letters, digits and _ only)"
            )));
        }
        RunField::Metric(m) => format!("metrics.{m}"),
        RunField::Param(p) => format!("params.{p}"),
        RunField::Dataset => "run.dataset".into(),
        RunField::Version => "run.version".into(),
        RunField::Learner => "run.learner".into(),
        RunField::Seed => "run.seed".into(),
        RunField::CreatedBy => "run.who".into(),
        RunField::Created | RunField::Id => return Ok(None),
    }))
}

fn op_sql(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Eq => "=",
        CompareOp::Ne => "<>",
        CompareOp::Lt => "<",
        CompareOp::Le => "<=",
        CompareOp::Gt => ">",
        CompareOp::Ge => ">=",
        CompareOp::Contains => "",
    }
}

/// The ids of the runs that pass every filter, as a SQL query (an intersection of index
/// scans: each metric or param filter reads only its matching entries of `run_values`), with
/// its bound values; `None` when there is no filter.
fn kept_runs(filters: &[RunFilter], values: &mut Vec<Value>) -> Result<Option<String>, StoreError> {
    let mut parts = Vec::new();
    for f in filters {
        let number = f.value.trim().parse::<f64>().ok();
        match (run_column(&f.field), value_field(&f.field)?) {
            (Some(col), _) => {
                // The run's own columns (time, id) are text, compared as text.
                values.push(Value::Text(f.value.clone()));
                let n = values.len();
                let test = match f.op {
                    CompareOp::Contains => format!("instr(CAST({col} AS TEXT), ?{n}) > 0"),
                    op => format!("{col} {} ?{n}", op_sql(op)),
                };
                parts.push(format!("SELECT r.id FROM runs r WHERE {test}"));
            }
            (None, Some(field)) => {
                values.push(Value::Text(field));
                let nf = values.len();
                // Numbers compare as numbers (through the index), anything else as text.
                let test = match (f.op, number) {
                    (CompareOp::Contains, _) => {
                        values.push(Value::Text(f.value.clone()));
                        format!(
                            "instr(coalesce(v.text, CAST(v.num AS TEXT)), ?{}) > 0",
                            values.len()
                        )
                    }
                    (op, Some(x)) => {
                        values.push(Value::Real(x));
                        format!("v.num {} ?{}", op_sql(op), values.len())
                    }
                    (op, None) => {
                        values.push(Value::Text(f.value.clone()));
                        format!("v.text {} ?{}", op_sql(op), values.len())
                    }
                };
                let within =
                    format!("SELECT v.run FROM run_values v WHERE v.field = ?{nf} AND {test}");
                // A run without the field does not match, except under `!=`.
                parts.push(if f.op == CompareOp::Ne {
                    format!(
                        "SELECT * FROM ({within} UNION SELECT r.id FROM runs r WHERE r.id NOT IN \
                         (SELECT v.run FROM run_values v WHERE v.field = ?{nf})) ne"
                    )
                } else {
                    within
                });
            }
            (None, None) => unreachable!("every field is a column or a value"),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join(" INTERSECT ")))
}

impl Tx<'_> {
    /// The runs matching every filter, sorted, one page of them. The filters' runs are found
    /// once (index range scans, intersected); the page then walks the sort field's index in
    /// order, keeping matching runs and stopping at the page's end. Metrics and params live in
    /// `run_values`; runs without the sort field come last, newest first.
    pub fn runs_page(&self, q: &RunsQuery) -> Result<RunsPage, StoreError> {
        on_server!(self, Op::RunsPage(q.clone()));
        let mut values = Vec::new();
        let kept: Option<HashSet<String>> = match kept_runs(&q.filters, &mut values)? {
            Some(sql) => Some(
                self.0
                    .query(&sql, &values)?
                    .into_iter()
                    .map(|r| r.text(0))
                    .collect::<Result<_, _>>()?,
            ),
            None => None,
        };
        let total_runs = self.0.query_one("SELECT count(*) FROM runs", &[])?.int(0)? as usize;
        // A filter that keeps every run filters nothing.
        let kept = kept.filter(|k| k.len() < total_runs);
        let total = match &kept {
            Some(k) => k.len(),
            None => total_runs,
        };
        let ids = match &kept {
            // A filter that keeps few runs: their sort keys are looked up one by one and
            // sorted here, instead of walking much of the sort index for a few matches.
            Some(k) if few_enough(k.len(), q.offset + q.limit, total_runs) => {
                self.page_of_few(k, q)?
            }
            _ => self.page_by_walk(kept.as_ref(), q)?,
        };
        let one = format!("SELECT {} FROM runs WHERE id = ?1", Self::RUN_COLS);
        let runs = ids
            .iter()
            .map(|id| Self::run_row(self.0.query_one(&one, vals![id])?))
            .collect::<Result<_, _>>()?;
        Ok(RunsPage { runs, total })
    }

    /// A page by walking the sort field's index in order, keeping the filters' runs.
    fn page_by_walk(
        &self,
        kept: Option<&HashSet<String>>,
        q: &RunsQuery,
    ) -> Result<Vec<String>, StoreError> {
        let dir = if q.descending { "DESC" } else { "ASC" };
        // Ordered streams of run ids, read one after the other until the page is full.
        let mut streams: Vec<(String, Vec<Value>)> = Vec::new();
        match (run_column(&q.sort), value_field(&q.sort)?) {
            (Some(col), _) => streams.push((
                format!("SELECT r.id FROM runs r ORDER BY {col} {dir}, r.rowid {dir}"),
                Vec::new(),
            )),
            (None, Some(field)) => {
                // A field with numbers sorts by them, one with only text by its text: either
                // way one walk of an index in order.
                let key = if self.numeric_field(&field)? {
                    "num"
                } else {
                    "text"
                };
                streams.push((
                    format!(
                        "SELECT run FROM run_values WHERE field = ?1 ORDER BY {key} {dir}, run {dir}"
                    ),
                    vec![Value::Text(field.clone())],
                ));
                streams.push((
                    "SELECT r.id FROM runs r WHERE r.id NOT IN \
                     (SELECT run FROM run_values WHERE field = ?1) \
                     ORDER BY r.created_at DESC, r.rowid DESC"
                        .into(),
                    vec![Value::Text(field)],
                ));
            }
            (None, None) => unreachable!("every field is a column or a value"),
        }
        let mut ids = Vec::with_capacity(q.limit);
        let mut skip = q.offset;
        for (sql, params) in &streams {
            if ids.len() == q.limit {
                break;
            }
            self.0.each(sql, params, |row| {
                let id = row.text(0)?;
                if kept.is_some_and(|k| !k.contains(&id)) {
                    return Ok(true);
                }
                if skip > 0 {
                    skip -= 1;
                    return Ok(true);
                }
                ids.push(id);
                Ok(ids.len() < q.limit)
            })?;
        }
        Ok(ids)
    }

    /// A page of a few kept runs: each one's sort key read by id and sorted here in the order
    /// the index walk gives (runs without the field last, newest first).
    fn page_of_few(
        &self,
        kept: &HashSet<String>,
        q: &RunsQuery,
    ) -> Result<Vec<String>, StoreError> {
        let field = value_field(&q.sort)?;
        let sql = match (run_column(&q.sort), &field) {
            (Some(col), _) => {
                format!("SELECT {col}, r.created_at, r.rowid FROM runs r WHERE r.id = ?1")
            }
            (None, Some(f)) => {
                let key = if self.numeric_field(f)? {
                    "v.num"
                } else {
                    "v.text"
                };
                format!(
                    "SELECT (SELECT {key} FROM run_values v WHERE v.run = ?1 AND v.field = ?2), \
                     r.created_at, r.rowid FROM runs r WHERE r.id = ?1"
                )
            }
            (None, None) => unreachable!("every field is a column or a value"),
        };
        let mut keyed: Vec<(Value, String, i64, &String)> = Vec::with_capacity(kept.len());
        for id in kept {
            let r = match &field {
                None => self.0.query_one(&sql, vals![id])?,
                Some(f) => self.0.query_one(&sql, vals![id, f])?,
            };
            keyed.push((r.value(0).clone(), r.text(1)?, r.int(2)?, id));
        }
        keyed.sort_by(|a, b| match (a.0 == Value::Null, b.0 == Value::Null) {
            // Without the field: last, newest first.
            (true, true) => (&b.1, b.2).cmp(&(&a.1, a.2)),
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
            (false, false) => {
                // Ties as the index walk breaks them: by run id for a metric or param, by
                // insertion for a column.
                let tie = if field.is_some() {
                    a.3.cmp(b.3)
                } else {
                    a.2.cmp(&b.2)
                };
                let o = compare_values(&a.0, &b.0).then(tie);
                if q.descending { o.reverse() } else { o }
            }
        });
        Ok(keyed
            .into_iter()
            .skip(q.offset)
            .take(q.limit)
            .map(|k| k.3.clone())
            .collect())
    }

    fn numeric_field(&self, field: &str) -> Result<bool, StoreError> {
        self.0
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM run_values WHERE field = ?1 AND num IS NOT NULL)",
                vals![field],
            )?
            .bool(0)
    }

    /// Journal entries matching the query, newest first, one page of them.
    pub fn journal_page(&self, q: &JournalQuery) -> Result<JournalPage, StoreError> {
        on_server!(self, Op::JournalPage(q.clone()));
        let mut conditions = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        let mut add = |cond: &str, v: &Option<String>| {
            if let Some(v) = v {
                values.push(Value::Text(v.clone()));
                conditions.push(cond.replace('?', &format!("?{}", values.len())));
            }
        };
        add("\"user\" = ?", &q.user);
        add("instr(command, ?) > 0", &q.command);
        add("time >= ?", &q.since);
        add("time < ?", &q.until);
        let wheres = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let total = self
            .0
            .query_one(&format!("SELECT count(*) FROM journal {wheres}"), &values)?
            .int(0)?;
        let sql = format!(
            "SELECT seq, time, \"user\", command, why, objects FROM journal {wheres} \
             ORDER BY seq DESC LIMIT {} OFFSET {}",
            q.limit, q.offset
        );
        let entries = self
            .0
            .query(&sql, &values)?
            .into_iter()
            .map(journal_row)
            .collect::<Result<_, _>>()?;
        Ok(JournalPage {
            entries,
            total: total as usize,
        })
    }

    /// The objects named by journal entries that start with `prefix` (e.g. `kept-label:`),
    /// oldest first.
    pub fn journal_objects(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        on_server!(self, Op::JournalObjects(prefix.to_string()));
        let mut out = Vec::new();
        for r in self.0.query(
            "SELECT seq, objects FROM journal WHERE instr(objects, ?1) > 0 ORDER BY seq",
            vals![prefix],
        )? {
            let objects: Vec<String> = serde_json::from_str(&r.text(1)?).map_err(|err| {
                StoreError::Corrupt(format!("journal entry {}: {err}", r.int(0).unwrap_or(-1)))
            })?;
            out.extend(objects.into_iter().filter(|o| o.starts_with(prefix)));
        }
        Ok(out)
    }

    /// Distinct journal users, for the journal page's filter.
    pub fn journal_users(&self) -> Result<Vec<String>, StoreError> {
        on_server!(self, Op::JournalUsers);
        self.0
            .query(
                "SELECT DISTINCT \"user\" FROM journal ORDER BY \"user\"",
                &[],
            )?
            .into_iter()
            .map(|r| r.text(0))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DatasetRecord, Store};

    fn run(id: &str, metrics: &str, params: &str, created: &str) -> RunRecord {
        RunRecord {
            id: id.into(),
            dataset: "d".into(),
            version: "v".into(),
            learner: if id == "c" { "linear" } else { "gbdt" }.into(),
            params: params.into(),
            seed: 0,
            model: "m".into(),
            predictions: "p".into(),
            metrics: metrics.into(),
            timings: "{}".into(),
            info: "{}".into(),
            seed_group: None,
            created_at: created.into(),
            created_by: "u".into(),
        }
    }

    fn page(
        store: &mut Store,
        sort: RunField,
        desc: bool,
        filters: Vec<RunFilter>,
        limit: usize,
        offset: usize,
    ) -> (Vec<String>, usize) {
        let q = RunsQuery {
            sort,
            descending: desc,
            filters,
            limit,
            offset,
        };
        let p = store.read(|tx| tx.runs_page(&q)).unwrap();
        (p.runs.into_iter().map(|r| r.id).collect(), p.total)
    }

    #[test]
    fn runs_sort_and_filter_by_metrics_and_params_in_a_real_sqlite_file() {
        for mut t in crate::testing::backends() {
            let store = &mut t.store;
            store
                .write(|tx| {
                    tx.insert_dataset(&DatasetRecord {
                        name: "d".into(),
                        schema: "{}".into(),
                        created_at: "t".into(),
                    })?;
                    tx.insert_run(&run(
                        "a",
                        r#"{"holdout":{"auc":0.8}}"#,
                        r#"{"num_leaves":31,"mode":"auto"}"#,
                        "2026-01-01",
                    ))?;
                    tx.insert_run(&run(
                        "b",
                        r#"{"holdout":{"auc":0.9}}"#,
                        r#"{"num_leaves":7,"mode":"fast"}"#,
                        "2026-01-02",
                    ))?;
                    // A run without auc (a regression run, say) and without num_leaves.
                    tx.insert_run(&run(
                        "c",
                        r#"{"holdout":{"rmse":1.5}}"#,
                        r#"{"l2":1.0}"#,
                        "2026-01-03",
                    ))?;
                    Ok::<_, StoreError>(())
                })
                .unwrap();
            let auc = || RunField::Metric("auc".into());
            let f = |field: RunField, op, value: &str| RunFilter {
                field,
                op,
                value: value.into(),
            };
            assert_eq!(
                page(store, auc(), true, vec![], 10, 0),
                (vec!["b".into(), "a".into(), "c".into()], 3)
            );
            // Runs without the field come last in either direction.
            assert_eq!(
                page(store, auc(), false, vec![], 10, 0).0,
                vec!["a", "b", "c"]
            );
            // Pages across the boundary between runs with and without the field.
            assert_eq!(page(store, auc(), true, vec![], 1, 1).0, vec!["a"]);
            assert_eq!(page(store, auc(), true, vec![], 2, 1).0, vec!["a", "c"]);
            assert_eq!(page(store, auc(), true, vec![], 2, 2).0, vec!["c"]);
            // Newest first by default field; filters on a param (number and text) and a column.
            assert_eq!(
                page(store, RunField::Created, true, vec![], 10, 0).0,
                vec!["c", "b", "a"]
            );
            let leaves = RunField::Param("num_leaves".into());
            assert_eq!(
                page(
                    store,
                    auc(),
                    true,
                    vec![f(leaves.clone(), CompareOp::Ge, "10")],
                    10,
                    0
                ),
                (vec!["a".into()], 1)
            );
            // `!=` keeps the runs that have no such param.
            assert_eq!(
                page(
                    store,
                    RunField::Created,
                    false,
                    vec![f(leaves, CompareOp::Ne, "31")],
                    10,
                    0
                )
                .0,
                vec!["b", "c"]
            );
            assert_eq!(
                page(
                    store,
                    RunField::Created,
                    false,
                    vec![f(RunField::Param("mode".into()), CompareOp::Eq, "fast")],
                    10,
                    0
                )
                .0,
                vec!["b"]
            );
            assert_eq!(
                page(
                    store,
                    RunField::Created,
                    false,
                    vec![
                        f(RunField::Learner, CompareOp::Eq, "gbdt"),
                        f(auc(), CompareOp::Gt, "0.85")
                    ],
                    10,
                    0
                )
                .0,
                vec!["b"]
            );
            assert_eq!(
                page(store, RunField::Param("mode".into()), false, vec![], 10, 0).0,
                vec!["a", "b", "c"]
            );
        }
    }

    #[test]
    fn names_that_are_not_identifiers_are_refused() {
        assert!(is_identifier("num_leaves"));
        assert!(!is_identifier("a') OR 1=1 --"));
        let err = value_field(&RunField::Metric("x'); DROP TABLE runs; --".into())).unwrap_err();
        assert!(err.to_string().contains("not a metric or param name"));
    }

    #[test]
    fn the_few_kept_runs_sort_as_the_index_walk_does() {
        for mut t in crate::testing::backends() {
            let store = &mut t.store;
            store
                .write(|tx| {
                    tx.insert_dataset(&DatasetRecord {
                        name: "d".into(),
                        schema: "{}".into(),
                        created_at: "t".into(),
                    })?;
                    for i in 0..60u32 {
                        // Repeated aucs (ties), some runs without auc, a text param.
                        let metrics = if i % 7 == 3 {
                            r#"{"holdout":{"rmse":1.0}}"#.to_string()
                        } else {
                            format!(r#"{{"holdout":{{"auc":0.{}}}}}"#, 5 + (i * 13) % 4)
                        };
                        let params = format!(
                            r#"{{"num_leaves":{},"mode":"{}"}}"#,
                            [7, 15, 31][i as usize % 3],
                            ["auto", "fast", "slow"][(i as usize / 3) % 3]
                        );
                        tx.insert_run(&run(
                            &format!("r{i:02}"),
                            &metrics,
                            &params,
                            &format!("2026-01-{:02}", 1 + (i * 7) % 28),
                        ))?;
                    }
                    Ok::<_, StoreError>(())
                })
                .unwrap();
            let sorts = [
                RunField::Metric("auc".into()),
                RunField::Param("mode".into()),
                RunField::Param("num_leaves".into()),
                RunField::Created,
                RunField::Id,
            ];
            store
                .read(|tx| {
                    let kept: HashSet<String> = (0..60)
                        .filter(|i| i % 5 == 0 || i % 7 == 3)
                        .map(|i| format!("r{i:02}"))
                        .collect();
                    for sort in &sorts {
                        for descending in [false, true] {
                            for (offset, limit) in [(0, 5), (3, 4), (9, 10), (0, 100)] {
                                let q = RunsQuery {
                                    sort: sort.clone(),
                                    descending,
                                    filters: Vec::new(),
                                    limit,
                                    offset,
                                };
                                assert_eq!(
                                    tx.page_of_few(&kept, &q)?,
                                    tx.page_by_walk(Some(&kept), &q)?,
                                    "{sort:?} descending {descending} offset {offset} limit {limit}"
                                );
                            }
                        }
                    }
                    Ok::<_, StoreError>(())
                })
                .unwrap();
        }
    }
}
