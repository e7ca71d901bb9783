//! Evaluating a derived feature's expression (gyre-core's `Expr`) over a table's columns, a
//! column at a time, with SQL's NULL rules: an operation on NULL gives NULL, division by zero
//! and LN of a value <= 0 give NULL, a CAST that does not convert gives NULL, AND/OR are
//! three-valued, CASE skips a WHEN that is NULL. Training (`Materialized::apply`), serving and
//! `gyre predict` all derive features here, so a feature is computed the same way offline and
//! online.

use crate::DataError;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, TimestampNanosecondType};
use arrow_array::{Array, ArrayRef, BooleanArray, DictionaryArray, Float64Array, RecordBatch};
use gyre_core::expr::{ArithOp, Func, TimePart};
use gyre_core::predicate::{CmpOp, Literal, like_matches};
use gyre_core::{ColumnKind, Expr, ExprKind};
use std::sync::Arc;

/// A column of values as the evaluator holds them.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    Num(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
    Text(Vec<Option<Arc<str>>>),
    /// Nanoseconds since the Unix epoch (UTC).
    Time(Vec<Option<i64>>),
    /// A NULL literal: no kind of its own.
    Null,
}

/// Evaluates `e` over `batch` (`n` rows). Columns are read by name; their Arrow types decide
/// how: Float64 numbers, booleans, dictionary or plain strings as text, timestamps as times.
pub fn evaluate(e: &Expr, batch: &RecordBatch) -> Result<Values, DataError> {
    Evaluator {
        batch,
        n: batch.num_rows(),
    }
    .eval(e)
}

/// The derived column to store: its Arrow array, kind and (for text) sorted categories.
pub fn to_column(values: Values, n: usize) -> (ArrayRef, ColumnKind, Vec<String>) {
    match values {
        Values::Num(v) => (
            Arc::new(Float64Array::from_iter(
                v.into_iter().map(|x| x.filter(|x| !x.is_nan())),
            )),
            ColumnKind::Numeric,
            Vec::new(),
        ),
        Values::Bool(v) => (
            Arc::new(BooleanArray::from(v)),
            ColumnKind::Boolean,
            Vec::new(),
        ),
        Values::Text(v) => {
            let mut categories: Vec<&str> = v.iter().flatten().map(|s| &**s).collect();
            categories.sort_unstable();
            categories.dedup();
            let keys: arrow_array::Int32Array = v
                .iter()
                .map(|s| {
                    s.as_ref().map(|s| {
                        categories
                            .binary_search(&&**s)
                            .expect("every value is a category") as i32
                    })
                })
                .collect();
            let categories: Vec<String> = categories.into_iter().map(String::from).collect();
            let dict = DictionaryArray::<Int32Type>::try_new(
                keys,
                Arc::new(arrow_array::StringArray::from_iter_values(&categories)),
            )
            .expect("keys index the categories");
            (Arc::new(dict), ColumnKind::Categorical, categories)
        }
        Values::Time(_) | Values::Null => (
            Arc::new(Float64Array::from(vec![None; n])),
            ColumnKind::Numeric,
            Vec::new(),
        ),
    }
}

/// `batch` with `array` added as a nullable column `name`; the row count is kept even for a
/// batch with no columns (a request's inputs can be none).
pub fn with_column(
    batch: &RecordBatch,
    name: &str,
    array: ArrayRef,
) -> Result<RecordBatch, DataError> {
    let mut fields: Vec<arrow_schema::Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(arrow_schema::Field::new(
        name,
        array.data_type().clone(),
        true,
    ));
    let mut columns = batch.columns().to_vec();
    columns.push(array);
    RecordBatch::try_new_with_options(
        Arc::new(arrow_schema::Schema::new(fields)),
        columns,
        &arrow_array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
    .map_err(|e| bad(e.to_string()))
}

/// The kind (and, for text, the categories) of a column [`to_column`] made; `None` for any
/// other array.
pub fn kind_of(array: &ArrayRef) -> Option<(ColumnKind, Vec<String>)> {
    match array.data_type() {
        arrow_schema::DataType::Float64 => Some((ColumnKind::Numeric, Vec::new())),
        arrow_schema::DataType::Boolean => Some((ColumnKind::Boolean, Vec::new())),
        arrow_schema::DataType::Dictionary(_, _) => {
            let d = array.as_dictionary_opt::<Int32Type>()?;
            let values = d.values().as_string_opt::<i32>()?;
            Some((
                ColumnKind::Categorical,
                values.iter().map(|v| v.unwrap_or("").to_string()).collect(),
            ))
        }
        _ => None,
    }
}

struct Evaluator<'a> {
    batch: &'a RecordBatch,
    n: usize,
}

fn bad(message: impl Into<String>) -> DataError {
    DataError::Invalid {
        path: "expression".into(),
        message: message.into(),
    }
}

impl Evaluator<'_> {
    fn eval(&self, e: &Expr) -> Result<Values, DataError> {
        let n = self.n;
        Ok(match e {
            Expr::Column(name) => self.column(name)?,
            Expr::Null => Values::Null,
            Expr::Literal(Literal::Number(x)) => Values::Num(vec![Some(*x); n]),
            Expr::Literal(Literal::Bool(b)) => Values::Bool(vec![Some(*b); n]),
            Expr::Literal(Literal::Text(s)) => Values::Text(vec![Some(Arc::from(s.as_str())); n]),
            Expr::Neg(x) => Values::Num(self.num(x)?.into_iter().map(|v| v.map(|v| -v)).collect()),
            Expr::Arith { op, left, right } => {
                let (l, r) = (self.num(left)?, self.num(right)?);
                Values::Num(
                    l.into_iter()
                        .zip(r)
                        .map(|(a, b)| match (a, b) {
                            (Some(a), Some(b)) => match op {
                                ArithOp::Add => Some(a + b),
                                ArithOp::Sub => Some(a - b),
                                ArithOp::Mul => Some(a * b),
                                ArithOp::Div => (b != 0.0).then(|| a / b),
                            },
                            _ => None,
                        })
                        .collect(),
                )
            }
            Expr::Compare { op, left, right } => {
                let (l, r) = (self.eval(left)?, self.eval(right)?);
                Values::Bool(compare(*op, &l, &r, n))
            }
            Expr::And(l, r) | Expr::Or(l, r) => {
                let and = matches!(e, Expr::And(..));
                let (l, r) = (self.boolean(l)?, self.boolean(r)?);
                Values::Bool(
                    l.into_iter()
                        .zip(r)
                        .map(|(a, b)| match (and, a, b) {
                            (true, Some(false), _) | (true, _, Some(false)) => Some(false),
                            (true, Some(true), Some(true)) => Some(true),
                            (false, Some(true), _) | (false, _, Some(true)) => Some(true),
                            (false, Some(false), Some(false)) => Some(false),
                            _ => None,
                        })
                        .collect(),
                )
            }
            Expr::Not(x) => Values::Bool(
                self.boolean(x)?
                    .into_iter()
                    .map(|v| v.map(|b| !b))
                    .collect(),
            ),
            Expr::IsNull { expr, negated } => {
                let v = self.eval(expr)?;
                Values::Bool((0..n).map(|i| Some(is_null(&v, i) != *negated)).collect())
            }
            Expr::In {
                expr,
                list,
                negated,
            } => {
                let v = self.eval(expr)?;
                let mut out: Vec<Option<bool>> = vec![Some(false); n];
                for item in list {
                    let eq = compare(CmpOp::Eq, &v, &self.eval(item)?, n);
                    for (o, x) in out.iter_mut().zip(eq) {
                        *o = match (*o, x) {
                            (Some(true), _) | (_, Some(true)) => Some(true),
                            (Some(false), Some(false)) => Some(false),
                            _ => None,
                        };
                    }
                }
                Values::Bool(out.into_iter().map(|o| o.map(|b| b != *negated)).collect())
            }
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => {
                let v = self.eval(expr)?;
                let ge = compare(CmpOp::Ge, &v, &self.eval(low)?, n);
                let le = compare(CmpOp::Le, &v, &self.eval(high)?, n);
                Values::Bool(
                    ge.into_iter()
                        .zip(le)
                        .map(|(a, b)| match (a, b) {
                            (Some(a), Some(b)) => Some((a && b) != *negated),
                            (Some(false), None) | (None, Some(false)) => Some(*negated),
                            _ => None,
                        })
                        .collect(),
                )
            }
            Expr::Like {
                expr,
                pattern,
                negated,
            } => Values::Bool(
                self.text(expr)?
                    .into_iter()
                    .map(|s| s.map(|s| like_matches(pattern, &s) != *negated))
                    .collect(),
            ),
            Expr::Case {
                operand,
                whens,
                otherwise,
            } => {
                let op = operand.as_ref().map(|o| self.eval(o)).transpose()?;
                let mut out = match otherwise {
                    Some(o) => self.eval(o)?,
                    None => Values::Null,
                };
                // The last WHEN first, so an earlier one that also holds overwrites it.
                for (w, t) in whens.iter().rev() {
                    let holds = match &op {
                        Some(o) => compare(CmpOp::Eq, o, &self.eval(w)?, n),
                        None => self.boolean(w)?,
                    };
                    let then = self.eval(t)?;
                    out = choose(&holds, then, out, n);
                }
                out
            }
            Expr::Call { func, args } => self.call(*func, args)?,
            Expr::Cast { expr, to } => cast(self.eval(expr)?, *to, n),
            Expr::Extract { part, expr } => match self.eval(expr)? {
                Values::Time(t) => Values::Num(
                    t.into_iter()
                        .map(|t| t.map(|ns| time_part(*part, ns)))
                        .collect(),
                ),
                Values::Null => Values::Num(vec![None; n]),
                _ => {
                    return Err(bad(format!(
                        "EXTRACT needs timestamps; {expr} holds numbers (import the time column \
                         as text such as 2001-01-31T06:30)"
                    )));
                }
            },
        })
    }

    fn column(&self, name: &str) -> Result<Values, DataError> {
        let a = self
            .batch
            .column_by_name(name)
            .ok_or_else(|| bad(format!("column \"{name}\" not found")))?;
        Ok(match a.data_type() {
            arrow_schema::DataType::Float64 => {
                Values::Num(a.as_primitive::<Float64Type>().iter().collect())
            }
            arrow_schema::DataType::Boolean => Values::Bool(a.as_boolean().iter().collect()),
            arrow_schema::DataType::Timestamp(arrow_schema::TimeUnit::Nanosecond, _) => {
                Values::Time(a.as_primitive::<TimestampNanosecondType>().iter().collect())
            }
            arrow_schema::DataType::Dictionary(_, _) => {
                let d = a.as_dictionary::<Int32Type>();
                let values = d.values().as_string::<i32>();
                let shared: Vec<Arc<str>> =
                    values.iter().map(|v| Arc::from(v.unwrap_or(""))).collect();
                Values::Text(
                    d.keys()
                        .iter()
                        .map(|k| k.map(|k| shared[k as usize].clone()))
                        .collect(),
                )
            }
            arrow_schema::DataType::Utf8 => Values::Text(
                a.as_string::<i32>()
                    .iter()
                    .map(|v| v.map(Arc::from))
                    .collect(),
            ),
            other => return Err(bad(format!("column \"{name}\" has type {other}"))),
        })
    }

    fn num(&self, e: &Expr) -> Result<Vec<Option<f64>>, DataError> {
        match self.eval(e)? {
            Values::Num(v) => Ok(v),
            Values::Null => Ok(vec![None; self.n]),
            other => Err(bad(format!("{e} is not numeric ({})", kind_name(&other)))),
        }
    }

    fn boolean(&self, e: &Expr) -> Result<Vec<Option<bool>>, DataError> {
        match self.eval(e)? {
            Values::Bool(v) => Ok(v),
            Values::Null => Ok(vec![None; self.n]),
            other => Err(bad(format!(
                "{e} is not true/false ({})",
                kind_name(&other)
            ))),
        }
    }

    fn text(&self, e: &Expr) -> Result<Vec<Option<Arc<str>>>, DataError> {
        match self.eval(e)? {
            Values::Text(v) => Ok(v),
            Values::Null => Ok(vec![None; self.n]),
            other => Err(bad(format!("{e} is not text ({})", kind_name(&other)))),
        }
    }

    fn call(&self, func: Func, args: &[Expr]) -> Result<Values, DataError> {
        let n = self.n;
        let unary = |f: &dyn Fn(f64) -> Option<f64>| -> Result<Values, DataError> {
            Ok(Values::Num(
                self.num(&args[0])?
                    .into_iter()
                    .map(|v| v.and_then(f))
                    .collect(),
            ))
        };
        Ok(match func {
            Func::Coalesce => {
                let mut out = Values::Null;
                for a in args.iter().rev() {
                    let v = self.eval(a)?;
                    let present: Vec<Option<bool>> =
                        (0..n).map(|i| Some(!is_null(&v, i))).collect();
                    out = choose(&present, v, out, n);
                }
                out
            }
            Func::Abs => unary(&|v| Some(v.abs()))?,
            Func::Ln => unary(&|v| (v > 0.0).then(|| v.ln()))?,
            Func::Floor => unary(&|v| Some(v.floor()))?,
            Func::Round => {
                let x = self.num(&args[0])?;
                let digits = match args.get(1) {
                    Some(d) => self.num(d)?,
                    None => vec![Some(0.0); n],
                };
                Values::Num(
                    x.into_iter()
                        .zip(digits)
                        .map(|(x, d)| {
                            let (x, d) = (x?, d?);
                            let scale = 10f64.powi(d.round() as i32);
                            Some((x * scale).round() / scale)
                        })
                        .collect(),
                )
            }
            Func::Least | Func::Greatest => {
                let mut out: Vec<Option<f64>> = vec![None; n];
                for a in args {
                    for (o, v) in out.iter_mut().zip(self.num(a)?) {
                        // NULLs are skipped, as PostgreSQL does; all NULL gives NULL.
                        *o = match (*o, v) {
                            (Some(o), Some(v)) => Some(if func == Func::Least {
                                o.min(v)
                            } else {
                                o.max(v)
                            }),
                            (o, v) => o.or(v),
                        };
                    }
                }
                Values::Num(out)
            }
            Func::Lower => Values::Text(
                self.text(&args[0])?
                    .into_iter()
                    .map(|s| s.map(|s| Arc::from(s.to_lowercase())))
                    .collect(),
            ),
            Func::Length => Values::Num(
                self.text(&args[0])?
                    .into_iter()
                    .map(|s| s.map(|s| s.chars().count() as f64))
                    .collect(),
            ),
            Func::Substr => {
                let s = self.text(&args[0])?;
                let start = self.num(&args[1])?;
                let len = match args.get(2) {
                    Some(l) => self.num(l)?,
                    None => vec![Some(f64::INFINITY); n],
                };
                Values::Text(
                    s.into_iter()
                        .zip(start)
                        .zip(len)
                        .map(|((s, a), l)| {
                            let (s, a, l) = (s?, a?, l?);
                            // SQL counts from 1; positions before 1 shorten the length.
                            let from = a.round() as i64;
                            let to = if l.is_infinite() {
                                i64::MAX
                            } else {
                                from.saturating_add(l.round().max(0.0) as i64)
                            };
                            let text: String = s
                                .chars()
                                .enumerate()
                                .filter(|(i, _)| {
                                    let pos = *i as i64 + 1;
                                    pos >= from && pos < to
                                })
                                .map(|(_, c)| c)
                                .collect();
                            Some(Arc::from(text))
                        })
                        .collect(),
                )
            }
        })
    }
}

fn kind_name(v: &Values) -> &'static str {
    match v {
        Values::Num(_) => "numeric",
        Values::Bool(_) => "boolean",
        Values::Text(_) => "text",
        Values::Time(_) => "a time",
        Values::Null => "null",
    }
}

fn is_null(v: &Values, i: usize) -> bool {
    match v {
        Values::Num(x) => x[i].is_none_or(f64::is_nan),
        Values::Bool(x) => x[i].is_none(),
        Values::Text(x) => x[i].is_none(),
        Values::Time(x) => x[i].is_none(),
        Values::Null => true,
    }
}

/// Row by row, `then` where `holds` is true, else `otherwise` (kinds unified: NULL takes the
/// other side's kind).
fn choose(holds: &[Option<bool>], then: Values, otherwise: Values, n: usize) -> Values {
    fn pick<T: Clone>(
        holds: &[Option<bool>],
        a: Vec<Option<T>>,
        b: Vec<Option<T>>,
    ) -> Vec<Option<T>> {
        a.into_iter()
            .zip(b)
            .zip(holds)
            .map(|((a, b), h)| if *h == Some(true) { a } else { b })
            .collect()
    }
    match (then, otherwise) {
        (Values::Num(a), Values::Num(b)) => Values::Num(pick(holds, a, b)),
        (Values::Num(a), Values::Null) => Values::Num(pick(holds, a, vec![None; n])),
        (Values::Null, Values::Num(b)) => Values::Num(pick(holds, vec![None; n], b)),
        (Values::Bool(a), Values::Bool(b)) => Values::Bool(pick(holds, a, b)),
        (Values::Bool(a), Values::Null) => Values::Bool(pick(holds, a, vec![None; n])),
        (Values::Null, Values::Bool(b)) => Values::Bool(pick(holds, vec![None; n], b)),
        (Values::Text(a), Values::Text(b)) => Values::Text(pick(holds, a, b)),
        (Values::Text(a), Values::Null) => Values::Text(pick(holds, a, vec![None; n])),
        (Values::Null, Values::Text(b)) => Values::Text(pick(holds, vec![None; n], b)),
        (Values::Time(a), Values::Time(b)) => Values::Time(pick(holds, a, b)),
        (Values::Time(a), Values::Null) => Values::Time(pick(holds, a, vec![None; n])),
        (Values::Null, Values::Time(b)) => Values::Time(pick(holds, vec![None; n], b)),
        // Kinds are checked before evaluation; mixed kinds cannot meet here.
        (a, _) => a,
    }
}

/// Three-valued comparison, row by row.
fn compare(op: CmpOp, l: &Values, r: &Values, n: usize) -> Vec<Option<bool>> {
    fn by<T>(
        op: CmpOp,
        a: &[Option<T>],
        b: &[Option<T>],
        cmp: impl Fn(&T, &T) -> Option<std::cmp::Ordering>,
    ) -> Vec<Option<bool>> {
        a.iter()
            .zip(b)
            .map(|(a, b)| match (a, b) {
                (Some(a), Some(b)) => cmp(a, b).map(|o| op.holds(o)),
                _ => None,
            })
            .collect()
    }
    match (l, r) {
        (Values::Num(a), Values::Num(b)) => by(op, a, b, |x, y| x.partial_cmp(y)),
        (Values::Bool(a), Values::Bool(b)) => by(op, a, b, |x, y| Some(x.cmp(y))),
        (Values::Text(a), Values::Text(b)) => by(op, a, b, |x, y| Some(x.cmp(y))),
        (Values::Time(a), Values::Time(b)) => by(op, a, b, |x, y| Some(x.cmp(y))),
        _ => vec![None; n],
    }
}

fn cast(v: Values, to: ExprKind, n: usize) -> Values {
    match (v, to) {
        (Values::Null, _) => Values::Null,
        (Values::Num(x), ExprKind::Numeric) => Values::Num(x),
        (Values::Num(x), ExprKind::Text) => Values::Text(
            x.into_iter()
                .map(|v| v.map(|v| Arc::from(crate::infer::format_number(v))))
                .collect(),
        ),
        (Values::Num(x), ExprKind::Boolean) => {
            Values::Bool(x.into_iter().map(|v| v.map(|v| v != 0.0)).collect())
        }
        (Values::Bool(x), ExprKind::Numeric) => Values::Num(
            x.into_iter()
                .map(|v| v.map(|b| f64::from(u8::from(b))))
                .collect(),
        ),
        (Values::Bool(x), ExprKind::Text) => Values::Text(
            x.into_iter()
                .map(|v| v.map(|b| Arc::from(if b { "true" } else { "false" })))
                .collect(),
        ),
        (Values::Bool(x), _) => Values::Bool(x),
        (Values::Text(x), ExprKind::Numeric) => Values::Num(
            x.into_iter()
                .map(|s| s.and_then(|s| s.trim().parse::<f64>().ok()))
                .collect(),
        ),
        (Values::Text(x), ExprKind::Boolean) => Values::Bool(
            x.into_iter()
                .map(|s| {
                    s.and_then(|s| match s.trim().to_ascii_lowercase().as_str() {
                        "true" | "t" | "yes" | "1" => Some(true),
                        "false" | "f" | "no" | "0" => Some(false),
                        _ => None,
                    })
                })
                .collect(),
        ),
        (Values::Text(x), _) => Values::Text(x),
        (Values::Time(_), _) => Values::Num(vec![None; n]),
        (v, _) => v,
    }
}

/// A part of a UTC time given in nanoseconds since the epoch.
pub fn time_part(part: TimePart, ns: i64) -> f64 {
    const DAY: i64 = 86_400_000_000_000;
    let days = ns.div_euclid(DAY);
    let within = ns.rem_euclid(DAY);
    match part {
        TimePart::Hour => (within / 3_600_000_000_000) as f64,
        // 1970-01-01 was a Thursday (4 with Sunday as 0).
        TimePart::Dow => (days + 4).rem_euclid(7) as f64,
        TimePart::Day | TimePart::Month | TimePart::Year => {
            // Civil date from days (Howard Hinnant's algorithm).
            let z = days + 719_468;
            let era = z.div_euclid(146_097);
            let doe = z - era * 146_097;
            let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
            let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
            let mp = (5 * doy + 2) / 153;
            let d = doy - (153 * mp + 2) / 5 + 1;
            let m = if mp < 10 { mp + 3 } else { mp - 9 };
            let y = yoe + era * 400 + i64::from(m <= 2);
            match part {
                TimePart::Day => d as f64,
                TimePart::Month => m as f64,
                _ => y as f64,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{StringArray, TimestampNanosecondArray};

    /// Four rows with NULLs in every column: x, y numbers, s text (a dictionary, as stored),
    /// b booleans, t times.
    fn table() -> RecordBatch {
        let s: DictionaryArray<Int32Type> = vec![Some("Male"), None, Some("female"), Some("Male")]
            .into_iter()
            .collect();
        let t = TimestampNanosecondArray::from(vec![
            Some(crate::infer::parse_timestamp("2001-01-01T06:30").unwrap()),
            Some(crate::infer::parse_timestamp("1996-05-11T23:59").unwrap()),
            None,
            Some(crate::infer::parse_timestamp("2024-02-29T00:00").unwrap()),
        ]);
        RecordBatch::try_from_iter([
            (
                "x",
                Arc::new(Float64Array::from(vec![
                    Some(4.0),
                    Some(-2.0),
                    None,
                    Some(0.0),
                ])) as ArrayRef,
            ),
            (
                "y",
                Arc::new(Float64Array::from(vec![
                    Some(2.0),
                    Some(0.0),
                    Some(1.0),
                    None,
                ])) as ArrayRef,
            ),
            ("s", Arc::new(s) as ArrayRef),
            (
                "b",
                Arc::new(BooleanArray::from(vec![
                    Some(true),
                    Some(false),
                    None,
                    Some(true),
                ])) as ArrayRef,
            ),
            ("t", Arc::new(t) as ArrayRef),
            (
                "u",
                Arc::new(StringArray::from(vec![
                    Some(" 3.5"),
                    Some("x"),
                    None,
                    Some("1e400"),
                ])) as ArrayRef,
            ),
        ])
        .unwrap()
    }

    fn eval(text: &str) -> Values {
        evaluate(&Expr::parse(text).unwrap(), &table()).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn nums(v: &[Option<f64>]) -> Values {
        Values::Num(v.to_vec())
    }

    fn texts(v: &[Option<&str>]) -> Values {
        Values::Text(v.iter().map(|s| s.map(Arc::from)).collect())
    }

    fn bools(v: &[Option<bool>]) -> Values {
        Values::Bool(v.to_vec())
    }

    #[test]
    fn arithmetic_propagates_null_and_division_by_zero_is_null() {
        assert_eq!(eval("x + y"), nums(&[Some(6.0), Some(-2.0), None, None]));
        assert_eq!(
            eval("x - y * 2"),
            nums(&[Some(0.0), Some(-2.0), None, None])
        );
        assert_eq!(eval("x / y"), nums(&[Some(2.0), None, None, None]));
        assert_eq!(eval("-x"), nums(&[Some(-4.0), Some(2.0), None, Some(-0.0)]));
        assert_eq!(eval("x + NULL"), nums(&[None, None, None, None]));
    }

    #[test]
    fn functions_follow_sql() {
        assert_eq!(
            eval("ABS(x)"),
            nums(&[Some(4.0), Some(2.0), None, Some(0.0)])
        );
        assert_eq!(eval("LN(x)"), nums(&[Some(4f64.ln()), None, None, None]));
        assert_eq!(
            eval("ROUND(x / 3, 2)"),
            nums(&[Some(1.33), Some(-0.67), None, Some(0.0)])
        );
        assert_eq!(eval("ROUND(2.5)"), nums(&[Some(3.0); 4]));
        assert_eq!(
            eval("FLOOR(x / 3)"),
            nums(&[Some(1.0), Some(-1.0), None, Some(0.0)])
        );
        assert_eq!(
            eval("LEAST(x, y)"),
            nums(&[Some(2.0), Some(-2.0), Some(1.0), Some(0.0)])
        );
        assert_eq!(
            eval("GREATEST(x, y, 3)"),
            nums(&[Some(4.0), Some(3.0), Some(3.0), Some(3.0)])
        );
        assert_eq!(
            eval("COALESCE(x, y, 9)"),
            nums(&[Some(4.0), Some(-2.0), Some(1.0), Some(0.0)])
        );
        assert_eq!(
            eval("COALESCE(y, x)"),
            nums(&[Some(2.0), Some(0.0), Some(1.0), Some(0.0)])
        );
        assert_eq!(
            eval("LOWER(s)"),
            texts(&[Some("male"), None, Some("female"), Some("male")])
        );
        assert_eq!(
            eval("LENGTH(s)"),
            nums(&[Some(4.0), None, Some(6.0), Some(4.0)])
        );
        assert_eq!(
            eval("SUBSTR(s, 2, 3)"),
            texts(&[Some("ale"), None, Some("ema"), Some("ale")])
        );
        assert_eq!(
            eval("SUBSTR(s, 3)"),
            texts(&[Some("le"), None, Some("male"), Some("le")])
        );
        assert_eq!(
            eval("SUBSTR(s, 0, 2)"),
            texts(&[Some("M"), None, Some("f"), Some("M")])
        );
    }

    #[test]
    fn casts_that_do_not_convert_give_null() {
        assert_eq!(
            eval("CAST(u AS DOUBLE)"),
            nums(&[Some(3.5), None, None, Some(f64::INFINITY)])
        );
        assert_eq!(
            eval("CAST(x AS VARCHAR)"),
            texts(&[Some("4"), Some("-2"), None, Some("0")])
        );
        assert_eq!(
            eval("CAST(b AS DOUBLE)"),
            nums(&[Some(1.0), Some(0.0), None, Some(1.0)])
        );
        assert_eq!(
            eval("CAST(x AS BOOLEAN)"),
            bools(&[Some(true), Some(true), None, Some(false)])
        );
        assert_eq!(eval("CAST(u AS BOOLEAN)"), bools(&[None, None, None, None]));
    }

    #[test]
    fn logic_is_three_valued_and_case_skips_null_conditions() {
        assert_eq!(
            eval("x > 1"),
            bools(&[Some(true), Some(false), None, Some(false)])
        );
        assert_eq!(
            eval("x > 1 OR b"),
            bools(&[Some(true), Some(false), None, Some(true)])
        );
        assert_eq!(
            eval("x > 1 AND b"),
            bools(&[Some(true), Some(false), None, Some(false)])
        );
        assert_eq!(
            eval("NOT b"),
            bools(&[Some(false), Some(true), None, Some(false)])
        );
        assert_eq!(
            eval("x IS NULL"),
            bools(&[Some(false), Some(false), Some(true), Some(false)])
        );
        assert_eq!(
            eval("x IN (4, 0)"),
            bools(&[Some(true), Some(false), None, Some(true)])
        );
        assert_eq!(
            eval("x BETWEEN -2 AND 1"),
            bools(&[Some(false), Some(true), None, Some(true)])
        );
        assert_eq!(
            eval("s LIKE 'M%'"),
            bools(&[Some(true), None, Some(false), Some(true)])
        );
        assert_eq!(
            eval("CASE WHEN x > 1 THEN 'big' WHEN x < 0 THEN 'neg' ELSE 'other' END"),
            texts(&[Some("big"), Some("neg"), Some("other"), Some("other")])
        );
        assert_eq!(
            eval("CASE s WHEN 'Male' THEN 1 END"),
            nums(&[Some(1.0), None, None, Some(1.0)])
        );
    }

    #[test]
    fn time_parts_are_utc_calendar_parts() {
        assert_eq!(
            eval("EXTRACT(hour FROM t)"),
            nums(&[Some(6.0), Some(23.0), None, Some(0.0)])
        );
        // 2001-01-01 was a Monday, 1996-05-11 a Saturday, 2024-02-29 a Thursday.
        assert_eq!(
            eval("EXTRACT(dow FROM t)"),
            nums(&[Some(1.0), Some(6.0), None, Some(4.0)])
        );
        assert_eq!(
            eval("EXTRACT(day FROM t)"),
            nums(&[Some(1.0), Some(11.0), None, Some(29.0)])
        );
        assert_eq!(
            eval("EXTRACT(month FROM t)"),
            nums(&[Some(1.0), Some(5.0), None, Some(2.0)])
        );
        assert_eq!(
            eval("EXTRACT(year FROM t)"),
            nums(&[Some(2001.0), Some(1996.0), None, Some(2024.0)])
        );
        assert_eq!(time_part(TimePart::Year, -1), 1969.0);
        assert_eq!(time_part(TimePart::Dow, -1), 3.0);
    }

    #[test]
    fn columns_are_stored_by_kind() {
        let (a, kind, cats) = to_column(eval("LOWER(s)"), 4);
        assert_eq!(
            (kind, cats),
            (
                ColumnKind::Categorical,
                vec!["female".to_string(), "male".into()]
            )
        );
        assert_eq!(a.null_count(), 1);
        let (a, kind, _) = to_column(eval("x / y"), 4);
        assert_eq!((kind, a.null_count()), (ColumnKind::Numeric, 3));
        let (_, kind, _) = to_column(eval("x > 1"), 4);
        assert_eq!(kind, ColumnKind::Boolean);
    }
}
