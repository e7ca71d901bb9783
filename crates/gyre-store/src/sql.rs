//! One SQL surface over the two metadata databases: SQLite (the embedded store, a file beside
//! the project) and PostgreSQL (the team store). The store's operations are written once, as
//! SQL both databases run, with `?N` parameters; for PostgreSQL the few spellings that differ
//! are rewritten here ([`to_postgres`]) and nowhere else.
//!
//! Values cross the boundary as [`Value`]s: bound leniently by the type PostgreSQL infers for
//! each parameter (SQLite takes any value anywhere), and read back into [`Row`]s whose
//! accessors accept what either database returns for the same column (a boolean is an
//! integer in SQLite, `count(*)` a `bigint` in PostgreSQL).

use crate::StoreError;
use std::cell::RefCell;
use std::collections::HashMap;

/// A value bound to a parameter or read from a column.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Bool(bool),
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_string())
    }
}
impl From<&String> for Value {
    fn from(s: &String) -> Self {
        Value::Text(s.clone())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<&i64> for Value {
    fn from(i: &i64) -> Self {
        Value::Int(*i)
    }
}
/// Stored as SQL's signed 64-bit integers (row ids and seeds fit; what does not wraps the
/// same way on the way in and out).
impl From<u64> for Value {
    fn from(i: u64) -> Self {
        Value::Int(i as i64)
    }
}
impl From<f64> for Value {
    fn from(x: f64) -> Self {
        Value::Real(x)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// `vals![a, b]`: a parameter list of [`Value`]s.
macro_rules! vals {
    ($($e:expr),* $(,)?) => { &[$($crate::sql::Value::from($e)),*][..] };
}
pub(crate) use vals;

/// One row read from either database.
#[derive(Debug)]
pub(crate) struct Row(Vec<Value>);

impl Row {
    fn bad(&self, i: usize, want: &str) -> StoreError {
        StoreError::Corrupt(format!(
            "column {i} should be {want}, found {:?}",
            self.0.get(i)
        ))
    }

    pub(crate) fn value(&self, i: usize) -> &Value {
        self.0.get(i).unwrap_or(&Value::Null)
    }

    pub(crate) fn text(&self, i: usize) -> Result<String, StoreError> {
        self.opt_text(i)?.ok_or_else(|| self.bad(i, "text"))
    }

    pub(crate) fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        match self.value(i) {
            Value::Null => Ok(None),
            Value::Text(s) => Ok(Some(s.clone())),
            _ => Err(self.bad(i, "text")),
        }
    }

    pub(crate) fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.opt_int(i)?.ok_or_else(|| self.bad(i, "an integer"))
    }

    pub(crate) fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.value(i) {
            Value::Null => Ok(None),
            Value::Int(n) => Ok(Some(*n)),
            Value::Bool(b) => Ok(Some(*b as i64)),
            _ => Err(self.bad(i, "an integer")),
        }
    }

    pub(crate) fn bool(&self, i: usize) -> Result<bool, StoreError> {
        match self.value(i) {
            Value::Bool(b) => Ok(*b),
            Value::Int(n) => Ok(*n != 0),
            _ => Err(self.bad(i, "a boolean")),
        }
    }

    fn from_sqlite(r: &rusqlite::Row<'_>) -> Result<Row, StoreError> {
        use rusqlite::types::ValueRef;
        let n = r.as_ref().column_count();
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            out.push(match r.get_ref(i)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(n) => Value::Int(n),
                ValueRef::Real(x) => Value::Real(x),
                ValueRef::Text(t) | ValueRef::Blob(t) => Value::Text(
                    std::str::from_utf8(t)
                        .map_err(|e| StoreError::Corrupt(format!("column {i}: {e}")))?
                        .to_string(),
                ),
            });
        }
        Ok(Row(out))
    }

    fn from_postgres(r: &postgres::Row) -> Result<Row, StoreError> {
        use postgres::types::Type;
        let mut out = Vec::with_capacity(r.len());
        for (i, c) in r.columns().iter().enumerate() {
            let t = c.type_();
            let v = if *t == Type::INT8 {
                r.try_get::<_, Option<i64>>(i)?.map(Value::Int)
            } else if *t == Type::INT4 {
                r.try_get::<_, Option<i32>>(i)?
                    .map(|n| Value::Int(n.into()))
            } else if *t == Type::INT2 {
                r.try_get::<_, Option<i16>>(i)?
                    .map(|n| Value::Int(n.into()))
            } else if *t == Type::FLOAT8 {
                r.try_get::<_, Option<f64>>(i)?.map(Value::Real)
            } else if *t == Type::FLOAT4 {
                r.try_get::<_, Option<f32>>(i)?
                    .map(|x| Value::Real(x.into()))
            } else if *t == Type::BOOL {
                r.try_get::<_, Option<bool>>(i)?.map(Value::Bool)
            } else if [Type::TEXT, Type::VARCHAR, Type::NAME, Type::BPCHAR].contains(t) {
                r.try_get::<_, Option<String>>(i)?.map(Value::Text)
            } else {
                return Err(StoreError::Corrupt(format!(
                    "column {} has type {t}, which the store does not read",
                    c.name()
                )));
            };
            out.push(v.unwrap_or(Value::Null));
        }
        Ok(Row(out))
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(n) => ToSqlOutput::Borrowed(ValueRef::Integer(*n)),
            Value::Real(x) => ToSqlOutput::Borrowed(ValueRef::Real(*x)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::Bool(b) => ToSqlOutput::Borrowed(ValueRef::Integer(*b as i64)),
        })
    }
}

impl postgres::types::ToSql for Value {
    /// Binds by the type PostgreSQL inferred for the parameter: an integer into a `double
    /// precision` column, a boolean into an integer one, anything into text.
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::{IsNull, Type};
        let text = [
            Type::TEXT,
            Type::VARCHAR,
            Type::NAME,
            Type::BPCHAR,
            Type::UNKNOWN,
        ];
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Text(s) => s.as_str().to_sql(ty, out),
            Value::Int(n) if *ty == Type::INT8 => n.to_sql(ty, out),
            Value::Int(n) if *ty == Type::INT4 => i32::try_from(*n)?.to_sql(ty, out),
            Value::Int(n) if *ty == Type::INT2 => i16::try_from(*n)?.to_sql(ty, out),
            Value::Int(n) if *ty == Type::FLOAT8 => (*n as f64).to_sql(ty, out),
            Value::Int(n) if *ty == Type::BOOL => (*n != 0).to_sql(ty, out),
            Value::Int(n) if text.contains(ty) => n.to_string().as_str().to_sql(ty, out),
            Value::Real(x) if *ty == Type::FLOAT8 => x.to_sql(ty, out),
            Value::Real(x) if *ty == Type::FLOAT4 => (*x as f32).to_sql(ty, out),
            Value::Real(x) if text.contains(ty) => x.to_string().as_str().to_sql(ty, out),
            Value::Bool(b) if *ty == Type::BOOL => b.to_sql(ty, out),
            Value::Bool(b) if *ty == Type::INT8 => (*b as i64).to_sql(ty, out),
            v => Err(format!("cannot bind {v:?} to a parameter of type {ty}").into()),
        }
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// The store's SQL in PostgreSQL's spelling: `?N` parameters become `$N`, `instr(` becomes
/// `strpos(` (same arguments, same result), and SQLite's implicit `rowid` of `runs` becomes its
/// explicit `ord` column (insertion order; see the PostgreSQL schema).
pub(crate) fn to_postgres(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let b = sql.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let word_start = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        if b[i] == b'?' && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            out.push('$');
            i += 1;
        } else if word_start && sql[i..].starts_with("instr(") {
            out.push_str("strpos(");
            i += "instr(".len();
        } else if word_start
            && sql[i..].starts_with("rowid")
            && !b
                .get(i + 5)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            out.push_str("ord");
            i += "rowid".len();
        } else {
            let c = sql[i..].chars().next().expect("in bounds");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// The database behind a transaction.
pub(crate) enum Conn<'a> {
    Lite(rusqlite::Transaction<'a>),
    Pg {
        tx: RefCell<postgres::Transaction<'a>>,
        /// Prepared statements by the store's SQL text, kept for the connection's life.
        statements: RefCell<&'a mut HashMap<String, postgres::Statement>>,
    },
    /// A transaction held by a team server for this client: every operation is sent to the
    /// server (see `wire`), none runs SQL here.
    Server(crate::client::ServerTx<'a>),
}

/// SQL reached on a server transaction: an operation of `Tx` that does not forward itself.
fn not_on_server() -> StoreError {
    StoreError::Invalid(
        "internal: this store operation has no server form (a remote project cannot run it)".into(),
    )
}

/// Rows fetched per round trip when a PostgreSQL read streams (see [`Conn::each`]).
const STREAM_CHUNK: usize = 512;

impl Conn<'_> {
    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self, Conn::Pg { .. })
    }

    fn statement(&self, sql: &str) -> Result<postgres::Statement, StoreError> {
        let Conn::Pg { tx, statements } = self else {
            unreachable!("PostgreSQL statements only")
        };
        if let Some(s) = statements.borrow().get(sql) {
            return Ok(s.clone());
        }
        let st = tx.borrow_mut().prepare(&to_postgres(sql))?;
        statements.borrow_mut().insert(sql.to_string(), st.clone());
        Ok(st)
    }

    fn pg_params(params: &[Value]) -> Vec<&(dyn postgres::types::ToSql + Sync)> {
        params.iter().map(|v| v as _).collect()
    }

    /// Runs a statement; returns how many rows it changed.
    pub(crate) fn exec(&self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        match self {
            Conn::Lite(tx) => Ok(tx
                .prepare_cached(sql)?
                .execute(rusqlite::params_from_iter(params.iter()))?
                as u64),
            Conn::Pg { tx, .. } => {
                let st = self.statement(sql)?;
                Ok(tx.borrow_mut().execute(&st, &Self::pg_params(params))?)
            }
            Conn::Server(_) => Err(not_on_server()),
        }
    }

    /// Appends rows (each a value per column of `cols`) to `table`: PostgreSQL's binary COPY,
    /// SQLite's multi-row INSERTs of 200 rows. For `gyre store copy`.
    pub(crate) fn append_rows(
        &self,
        table: &str,
        cols: &str,
        rows: &[Row],
    ) -> Result<(), StoreError> {
        const CHUNK: usize = 200;
        let n = cols.split(',').count();
        match self {
            Conn::Pg { tx, .. } => {
                let types: Vec<postgres::types::Type> = self
                    .statement(&format!("SELECT {cols} FROM {table} LIMIT 0"))?
                    .columns()
                    .iter()
                    .map(|c| c.type_().clone())
                    .collect();
                let mut tx = tx.borrow_mut();
                let sink = tx.copy_in(&format!("COPY {table} ({cols}) FROM STDIN BINARY"))?;
                let mut w = postgres::binary_copy::BinaryCopyInWriter::new(sink, &types);
                for r in rows {
                    let values: Vec<&(dyn postgres::types::ToSql + Sync)> =
                        (0..n).map(|c| r.value(c) as _).collect();
                    w.write(&values)?;
                }
                w.finish()?;
                Ok(())
            }
            Conn::Lite(_) => {
                for chunk in rows.chunks(CHUNK) {
                    let mut params = Vec::with_capacity(chunk.len() * n);
                    let mut groups = Vec::with_capacity(chunk.len());
                    for r in chunk {
                        let first = params.len();
                        params.extend((0..n).map(|c| r.value(c).clone()));
                        groups.push(format!(
                            "({})",
                            (first + 1..=first + n)
                                .map(|p| format!("?{p}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                    }
                    self.exec(
                        &format!("INSERT INTO {table} ({cols}) VALUES {}", groups.join(", ")),
                        &params,
                    )?;
                }
                Ok(())
            }
            Conn::Server(_) => Err(not_on_server()),
        }
    }

    /// Every row of a query.
    pub(crate) fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        match self {
            Conn::Lite(_) => {
                let mut out = Vec::new();
                self.each(sql, params, |r| {
                    out.push(r);
                    Ok(true)
                })?;
                Ok(out)
            }
            Conn::Pg { tx, .. } => {
                let st = self.statement(sql)?;
                let rows = tx.borrow_mut().query(&st, &Self::pg_params(params))?;
                rows.iter().map(Row::from_postgres).collect()
            }
            Conn::Server(_) => Err(not_on_server()),
        }
    }

    /// The first row of a query, if any.
    pub(crate) fn query_opt(&self, sql: &str, params: &[Value]) -> Result<Option<Row>, StoreError> {
        match self {
            Conn::Lite(tx) => {
                let mut st = tx.prepare_cached(sql)?;
                let mut rows = st.query(rusqlite::params_from_iter(params.iter()))?;
                rows.next()?.map(Row::from_sqlite).transpose()
            }
            Conn::Pg { tx, .. } => {
                let st = self.statement(sql)?;
                let rows = tx.borrow_mut().query(&st, &Self::pg_params(params))?;
                rows.first().map(Row::from_postgres).transpose()
            }
            Conn::Server(_) => Err(not_on_server()),
        }
    }

    /// The first row of a query that always returns one (an aggregate).
    pub(crate) fn query_one(&self, sql: &str, params: &[Value]) -> Result<Row, StoreError> {
        self.query_opt(sql, params)?
            .ok_or_else(|| StoreError::Corrupt(format!("no row from: {sql}")))
    }

    /// Streams a query's rows to `f` until it returns false: SQLite steps its cursor, and
    /// PostgreSQL reads a declared cursor a chunk at a time, so a walk that stops early reads
    /// little of a long result. A declared cursor, not a protocol portal: PostgreSQL plans a
    /// cursor for its first rows (an index walk in order), a portal for all of them (a scan
    /// and a sort of 100,000 runs to list 50 of them: 200 ms against 10).
    pub(crate) fn each(
        &self,
        sql: &str,
        params: &[Value],
        mut f: impl FnMut(Row) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        match self {
            Conn::Lite(tx) => {
                let mut st = tx.prepare_cached(sql)?;
                let mut rows = st.query(rusqlite::params_from_iter(params.iter()))?;
                while let Some(r) = rows.next()? {
                    if !f(Row::from_sqlite(r)?)? {
                        break;
                    }
                }
                Ok(())
            }
            Conn::Pg { tx, .. } => {
                // Named by its query, so its statements are prepared once; closed however the
                // walk ends (a walk never runs inside another of the same query).
                let name = format!(
                    "gyre_walk_{}",
                    &gyre_core::ContentHash::of(sql.as_bytes()).as_str()[..16]
                );
                let declare =
                    self.statement(&format!("DECLARE {name} NO SCROLL CURSOR FOR {sql}"))?;
                tx.borrow_mut()
                    .execute(&declare, &Self::pg_params(params))?;
                // Prepared once the cursor exists: its description is the cursor's columns.
                let fetch = self.statement(&format!("FETCH {STREAM_CHUNK} FROM {name}"))?;
                let mut walk = || -> Result<(), StoreError> {
                    loop {
                        // The borrow ends before `f` runs, so `f` may query too.
                        let rows = tx.borrow_mut().query(&fetch, &[])?;
                        let last = rows.len() < STREAM_CHUNK;
                        for r in &rows {
                            if !f(Row::from_postgres(r)?)? {
                                return Ok(());
                            }
                        }
                        if last {
                            return Ok(());
                        }
                    }
                };
                let walked = walk();
                let closed = tx.borrow_mut().batch_execute(&format!("CLOSE {name}"));
                walked?;
                Ok(closed?)
            }
            Conn::Server(_) => Err(not_on_server()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_spelling_rewrites_parameters_instr_and_rowid_only() {
        assert_eq!(
            to_postgres(
                "SELECT r.id FROM runs r WHERE instr(x, ?12) > 0 AND a = ?1 ORDER BY r.rowid DESC, rowids"
            ),
            "SELECT r.id FROM runs r WHERE strpos(x, $12) > 0 AND a = $1 ORDER BY r.ord DESC, rowids"
        );
        assert_eq!(
            to_postgres("SELECT minstr(a) -- é?"),
            "SELECT minstr(a) -- é?"
        );
    }
}
