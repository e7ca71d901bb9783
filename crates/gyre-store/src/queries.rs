//! Paged, sorted and filtered reads for views that must not load everything: the runs table
//! (a project may hold 100,000 runs) and the journal.
//!
//! The query is structured (fields, operators, values), never SQL text from a caller: field
//! names become JSON paths only after they pass `is_identifier`, and values are bound.

use crate::meta::{JournalEntry, RunRecord};
use crate::{StoreError, Tx};
use rusqlite::types::Value;

/// A field of a run to sort or filter on.
#[derive(Clone, Debug, PartialEq)]
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

#[derive(Clone, Copy, Debug, PartialEq)]
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

#[derive(Clone, Debug, PartialEq)]
pub struct RunFilter {
    pub field: RunField,
    pub op: CompareOp,
    pub value: String,
}

#[derive(Clone, Debug)]
pub struct RunsQuery {
    pub sort: RunField,
    pub descending: bool,
    pub filters: Vec<RunFilter>,
    pub limit: usize,
    pub offset: usize,
}

/// One page of runs and how many match in all.
pub struct RunsPage {
    pub runs: Vec<RunRecord>,
    pub total: usize,
}

#[derive(Clone, Debug, Default)]
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

pub struct JournalPage {
    /// Newest first.
    pub entries: Vec<JournalEntry>,
    pub total: usize,
}

/// Letters, digits and `_`: the only names that become part of a JSON path.
pub fn is_identifier(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A column of `runs` (`None` for a metric or param, which live in `run_values`).
fn run_column(field: &RunField) -> Option<&'static str> {
    Some(match field {
        RunField::Created => "r.created_at",
        RunField::Id => "r.id",
        RunField::Dataset => "r.dataset",
        RunField::Version => "r.version",
        RunField::Learner => "r.learner",
        RunField::Seed => "r.seed",
        RunField::CreatedBy => "r.created_by",
        RunField::Metric(_) | RunField::Param(_) => return None,
    })
}

/// The `run_values` field of a metric or param.
fn value_field(field: &RunField) -> Result<Option<String>, StoreError> {
    match field {
        RunField::Metric(m) | RunField::Param(m) if !is_identifier(m) => Err(StoreError::Invalid(
            format!("\"{m}\" is not a metric or param name (letters, digits and _ only)"),
        )),
        RunField::Metric(m) => Ok(Some(format!("metrics.{m}"))),
        RunField::Param(p) => Ok(Some(format!("params.{p}"))),
        _ => Ok(None),
    }
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

/// The WHERE conditions of `filters` over `runs r`, with their bound values.
fn run_conditions(filters: &[RunFilter]) -> Result<(Vec<String>, Vec<Value>), StoreError> {
    let mut conditions = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    for f in filters {
        let number = f.value.trim().parse::<f64>().ok();
        match (run_column(&f.field), value_field(&f.field)?) {
            (Some(col), _) => {
                values.push(match number {
                    Some(x) if f.op != CompareOp::Contains => Value::Real(x),
                    _ => Value::Text(f.value.clone()),
                });
                let n = values.len();
                conditions.push(match f.op {
                    CompareOp::Contains => format!("instr(CAST({col} AS TEXT), ?{n}) > 0"),
                    op => format!("{col} {} ?{n}", op_sql(op)),
                });
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
                // A run without the field does not match, except under `!=`.
                let within = format!(
                    "r.id IN (SELECT v.run FROM run_values v WHERE v.field = ?{nf} AND {test})"
                );
                conditions.push(if f.op == CompareOp::Ne {
                    format!(
                        "({within} OR r.id NOT IN (SELECT v.run FROM run_values v WHERE v.field = ?{nf}))"
                    )
                } else {
                    within
                });
            }
            (None, None) => unreachable!("every field is a column or a value"),
        }
    }
    Ok((conditions, values))
}

fn and(conditions: &[String], extra: Option<String>) -> String {
    let all: Vec<&str> = conditions
        .iter()
        .map(String::as_str)
        .chain(extra.as_deref())
        .collect();
    if all.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", all.join(" AND "))
    }
}

impl Tx<'_> {
    /// The runs matching every filter, sorted, one page of them. Metrics and params sort and
    /// filter through `run_values` and its indexes; runs without the sort field come last.
    pub fn runs_page(&self, q: &RunsQuery) -> Result<RunsPage, StoreError> {
        let (conditions, values) = run_conditions(&q.filters)?;
        let count = |extra: Option<String>, vals: &[Value]| -> Result<usize, StoreError> {
            let n: i64 = self.0.query_row(
                &format!("SELECT count(*) FROM runs r {}", and(&conditions, extra)),
                rusqlite::params_from_iter(vals.iter()),
                |r| r.get(0),
            )?;
            Ok(n as usize)
        };
        let total = count(None, &values)?;
        let dir = if q.descending { "DESC" } else { "ASC" };
        let cols: Vec<String> = Self::RUN_COLS
            .split(',')
            .map(|c| format!("r.{}", c.trim()))
            .collect();
        let cols = cols.join(", ");
        let select = |sql: String, vals: &[Value]| -> Result<Vec<RunRecord>, StoreError> {
            let mut st = self.0.prepare(&sql)?;
            let rows = st.query_map(rusqlite::params_from_iter(vals.iter()), Self::run_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        };
        let runs = match (run_column(&q.sort), value_field(&q.sort)?) {
            (Some(col), _) => select(
                format!(
                    "SELECT {cols} FROM runs r {} ORDER BY {col} {dir}, r.rowid {dir} LIMIT {} OFFSET {}",
                    and(&conditions, None),
                    q.limit,
                    q.offset
                ),
                &values,
            )?,
            (None, Some(field)) => {
                let mut vals = values.clone();
                vals.push(Value::Text(field));
                let nf = vals.len();
                let mut runs = select(
                    format!(
                        "SELECT {cols} FROM run_values s JOIN runs r ON r.id = s.run {} \
                         ORDER BY s.num {dir}, s.text {dir}, r.rowid {dir} LIMIT {} OFFSET {}",
                        and(&conditions, Some(format!("s.field = ?{nf}"))),
                        q.limit,
                        q.offset
                    ),
                    &vals,
                )?;
                if runs.len() < q.limit {
                    // The page reaches past the runs with the field: those without it follow,
                    // newest first.
                    let without = Some(format!(
                        "r.id NOT IN (SELECT s.run FROM run_values s WHERE s.field = ?{nf})"
                    ));
                    let with = count(
                        Some(format!(
                            "r.id IN (SELECT s.run FROM run_values s WHERE s.field = ?{nf})"
                        )),
                        &vals,
                    )?;
                    let skip = q.offset.saturating_sub(with);
                    runs.extend(select(
                        format!(
                            "SELECT {cols} FROM runs r {} ORDER BY r.created_at DESC, r.rowid DESC LIMIT {} OFFSET {skip}",
                            and(&conditions, without),
                            q.limit - runs.len()
                        ),
                        &vals,
                    )?);
                }
                runs
            }
            (None, None) => unreachable!("every field is a column or a value"),
        };
        Ok(RunsPage { runs, total })
    }

    /// Journal entries matching the query, newest first, one page of them.
    pub fn journal_page(&self, q: &JournalQuery) -> Result<JournalPage, StoreError> {
        let mut conditions = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        let mut add = |cond: &str, v: &Option<String>| {
            if let Some(v) = v {
                values.push(Value::Text(v.clone()));
                conditions.push(cond.replace('?', &format!("?{}", values.len())));
            }
        };
        add("user = ?", &q.user);
        add("instr(command, ?) > 0", &q.command);
        add("time >= ?", &q.since);
        add("time < ?", &q.until);
        let wheres = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let total: i64 = self.0.query_row(
            &format!("SELECT count(*) FROM journal {wheres}"),
            rusqlite::params_from_iter(values.iter()),
            |r| r.get(0),
        )?;
        let sql = format!(
            "SELECT seq, time, user, command, why, objects FROM journal {wheres} ORDER BY seq DESC LIMIT {} OFFSET {}",
            q.limit, q.offset
        );
        let mut st = self.0.prepare(&sql)?;
        let rows = st.query_map(rusqlite::params_from_iter(values.iter()), |r| {
            Ok((
                JournalEntry {
                    seq: r.get(0)?,
                    time: r.get(1)?,
                    user: r.get(2)?,
                    command: r.get(3)?,
                    why: r.get(4)?,
                    objects: Vec::new(),
                },
                r.get::<_, String>(5)?,
            ))
        })?;
        let mut entries = Vec::new();
        for row in rows {
            let (mut e, objects) = row?;
            e.objects = serde_json::from_str(&objects)
                .map_err(|err| StoreError::Corrupt(format!("journal entry {}: {err}", e.seq)))?;
            entries.push(e);
        }
        Ok(JournalPage {
            entries,
            total: total as usize,
        })
    }

    /// Distinct journal users, for the journal page's filter.
    pub fn journal_users(&self) -> Result<Vec<String>, StoreError> {
        let mut st = self
            .0
            .prepare("SELECT DISTINCT user FROM journal ORDER BY user")?;
        let rows = st.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
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
        let dir = tempfile::tempdir().unwrap();
        let root = Store::init(dir.path(), "").unwrap();
        let mut store = Store::open(&root).unwrap();
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
            page(&mut store, auc(), true, vec![], 10, 0),
            (vec!["b".into(), "a".into(), "c".into()], 3)
        );
        // Runs without the field come last in either direction.
        assert_eq!(
            page(&mut store, auc(), false, vec![], 10, 0).0,
            vec!["a", "b", "c"]
        );
        // Pages across the boundary between runs with and without the field.
        assert_eq!(page(&mut store, auc(), true, vec![], 1, 1).0, vec!["a"]);
        assert_eq!(
            page(&mut store, auc(), true, vec![], 2, 1).0,
            vec!["a", "c"]
        );
        assert_eq!(page(&mut store, auc(), true, vec![], 2, 2).0, vec!["c"]);
        // Newest first by default field; filters on a param (number and text) and a column.
        assert_eq!(
            page(&mut store, RunField::Created, true, vec![], 10, 0).0,
            vec!["c", "b", "a"]
        );
        let leaves = RunField::Param("num_leaves".into());
        assert_eq!(
            page(
                &mut store,
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
                &mut store,
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
                &mut store,
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
                &mut store,
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
            page(
                &mut store,
                RunField::Param("mode".into()),
                false,
                vec![],
                10,
                0
            )
            .0,
            vec!["a", "b", "c"]
        );
    }

    #[test]
    fn names_that_are_not_identifiers_are_refused() {
        assert!(is_identifier("num_leaves"));
        assert!(!is_identifier("a') OR 1=1 --"));
        let err = value_field(&RunField::Metric("x'); DROP TABLE runs; --".into())).unwrap_err();
        assert!(err.to_string().contains("not a metric or param name"));
    }
}
