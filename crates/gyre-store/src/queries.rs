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

fn column(field: &RunField) -> Result<String, StoreError> {
    Ok(match field {
        RunField::Created => "created_at".into(),
        RunField::Id => "id".into(),
        RunField::Dataset => "dataset".into(),
        RunField::Version => "version".into(),
        RunField::Learner => "learner".into(),
        RunField::Seed => "seed".into(),
        RunField::CreatedBy => "created_by".into(),
        RunField::Metric(m) | RunField::Param(m) if !is_identifier(m) => {
            return Err(StoreError::Invalid(format!(
                "\"{m}\" is not a metric or param name (letters, digits and _ only)"
            )));
        }
        RunField::Metric(m) => format!("json_extract(metrics, '$.holdout.{m}')"),
        RunField::Param(p) => format!("json_extract(params, '$.{p}')"),
    })
}

impl Tx<'_> {
    /// The runs matching every filter, sorted, one page of them.
    pub fn runs_page(&self, q: &RunsQuery) -> Result<RunsPage, StoreError> {
        let mut conditions = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        for f in &q.filters {
            let col = column(&f.field)?;
            values.push(match f.value.trim().parse::<f64>() {
                Ok(x) if f.op != CompareOp::Contains => Value::Real(x),
                _ => Value::Text(f.value.clone()),
            });
            let n = values.len();
            conditions.push(match f.op {
                CompareOp::Eq => format!("{col} = ?{n}"),
                CompareOp::Ne => format!("({col} IS NULL OR {col} <> ?{n})"),
                CompareOp::Lt => format!("{col} < ?{n}"),
                CompareOp::Le => format!("{col} <= ?{n}"),
                CompareOp::Gt => format!("{col} > ?{n}"),
                CompareOp::Ge => format!("{col} >= ?{n}"),
                CompareOp::Contains => format!("instr(CAST({col} AS TEXT), ?{n}) > 0"),
            });
        }
        let wheres = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let total: i64 = self.0.query_row(
            &format!("SELECT count(*) FROM runs {wheres}"),
            rusqlite::params_from_iter(values.iter()),
            |r| r.get(0),
        )?;
        let dir = if q.descending { "DESC" } else { "ASC" };
        // Runs without the field sort last either way; ties keep creation order.
        let sort = column(&q.sort)?;
        let sql = format!(
            "SELECT {} FROM runs {wheres} ORDER BY ({sort}) IS NULL, {sort} {dir}, rowid {dir} LIMIT {} OFFSET {}",
            Self::RUN_COLS,
            q.limit,
            q.offset
        );
        let mut st = self.0.prepare(&sql)?;
        let rows = st.query_map(rusqlite::params_from_iter(values.iter()), Self::run_row)?;
        Ok(RunsPage {
            runs: rows.collect::<Result<_, _>>()?,
            total: total as usize,
        })
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

    #[test]
    fn names_that_are_not_identifiers_are_refused() {
        assert!(is_identifier("num_leaves"));
        assert!(!is_identifier("a') OR 1=1 --"));
        let err = column(&RunField::Metric("x'); DROP TABLE runs; --".into())).unwrap_err();
        assert!(err.to_string().contains("not a metric or param name"));
    }
}
