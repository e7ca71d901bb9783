//! Evaluating a predicate over a stored table, with SQL's three-valued logic: a comparison with a
//! missing value is unknown, `NOT unknown` is unknown, and a row matches only when the whole
//! predicate is true. Categorical columns are decided once per category, then looked up per row.

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, TimestampNanosecondType, UInt64Type};
use arrow_array::{Array, RecordBatch};
use gyre_core::Predicate;
use gyre_core::predicate::{CmpOp, Literal, like_matches};
use std::cmp::Ordering;

/// Three-valued truth: 0 false, 1 true, 2 unknown.
type Tri = u8;
const F: Tri = 0;
const T: Tri = 1;
const U: Tri = 2;

/// Which rows of `batch` satisfy `pred`. The predicate must have been checked against the schema.
pub fn evaluate(pred: &Predicate, batch: &RecordBatch) -> Vec<bool> {
    let all = Rows::All(batch.num_rows());
    eval(pred, batch, all).into_iter().map(|t| t == T).collect()
}

/// Whether each of `rows` (row indices of `batch`) satisfies `pred`, in their order: the same
/// answers as [`evaluate`]'s for those rows, with only those rows read (a holdout's, say).
pub fn evaluate_rows(pred: &Predicate, batch: &RecordBatch, rows: &[usize]) -> Vec<bool> {
    eval(pred, batch, Rows::Some(rows))
        .into_iter()
        .map(|t| t == T)
        .collect()
}

/// The rows a predicate is evaluated on: all of a table's, or some, by index.
#[derive(Clone, Copy)]
enum Rows<'a> {
    All(usize),
    Some(&'a [usize]),
}

impl Rows<'_> {
    fn len(self) -> usize {
        match self {
            Rows::All(n) => n,
            Rows::Some(r) => r.len(),
        }
    }

    /// `f` of each row, in order.
    #[inline(always)]
    fn map<X>(self, f: impl FnMut(usize) -> X) -> Vec<X> {
        match self {
            Rows::All(n) => (0..n).map(f).collect(),
            Rows::Some(r) => r.iter().copied().map(f).collect(),
        }
    }

    /// `f` of each value of `values` the rows pick (a column without nulls).
    #[inline(always)]
    fn map_values<V: Copy, X>(self, values: &[V], mut f: impl FnMut(V) -> X) -> Vec<X> {
        match self {
            Rows::All(_) => values.iter().map(|&v| f(v)).collect(),
            Rows::Some(r) => r.iter().map(|&i| f(values[i])).collect(),
        }
    }
}

fn eval(pred: &Predicate, batch: &RecordBatch, rows: Rows<'_>) -> Vec<Tri> {
    let n = rows.len();
    match pred {
        Predicate::Const(b) => vec![Tri::from(*b); n],
        Predicate::Not(p) => eval(p, batch, rows)
            .into_iter()
            .map(|t| match t {
                T => F,
                F => T,
                _ => U,
            })
            .collect(),
        Predicate::And(ps) | Predicate::Or(ps) => {
            // Kleene AND / OR by table lookup (index a * 3 + b): no branches per row.
            const AND: [Tri; 9] = [F, F, F, F, T, U, F, U, U];
            const OR: [Tri; 9] = [F, T, U, T, T, T, U, T, U];
            let (table, start) = if matches!(pred, Predicate::And(_)) {
                (&AND, T)
            } else {
                (&OR, F)
            };
            let mut acc = vec![start; n];
            for p in ps {
                for (a, b) in acc.iter_mut().zip(eval(p, batch, rows)) {
                    *a = table[(*a * 3 + b) as usize];
                }
            }
            acc
        }
        Predicate::IsNull { column, negated } => {
            let a = column_array(batch, column);
            rows.map(|r| {
                let missing = crate::table::is_missing(a, r);
                Tri::from(missing != *negated)
            })
        }
        Predicate::Compare { column, op, value } => {
            if let Literal::Number(b) = value
                && let Some(out) = numeric_leaf(batch, rows, column, |x| {
                    x.partial_cmp(b).is_some_and(|o| op.holds(o))
                })
            {
                return out;
            }
            leaf(batch, rows, column, &|v| compare(v, *op, value))
        }
        Predicate::In {
            column,
            values,
            negated,
        } => leaf(batch, rows, column, &|v| {
            let hit = values
                .iter()
                .any(|l| cmp_value(v, l) == Some(Ordering::Equal));
            hit != *negated
        }),
        Predicate::Between {
            column,
            low,
            high,
            negated,
        } => {
            if let (Literal::Number(lo), Literal::Number(hi)) = (low, high)
                && let Some(out) =
                    numeric_leaf(batch, rows, column, |x| (x >= *lo && x <= *hi) != *negated)
            {
                return out;
            }
            leaf(batch, rows, column, &|v| {
                let inside = matches!(cmp_value(v, low), Some(Ordering::Greater | Ordering::Equal))
                    && matches!(cmp_value(v, high), Some(Ordering::Less | Ordering::Equal));
                inside != *negated
            })
        }
        Predicate::Like {
            column,
            pattern,
            negated,
        } => leaf(batch, rows, column, &|v| match v {
            Val::Text(s) => like_matches(pattern, s) != *negated,
            _ => false,
        }),
    }
}

/// A present cell's value, borrowed.
enum Val<'a> {
    Num(f64),
    Text(&'a str),
    Bool(bool),
}

fn cmp_value(v: &Val<'_>, l: &Literal) -> Option<Ordering> {
    match (v, l) {
        (Val::Num(a), Literal::Number(b)) => a.partial_cmp(b),
        (Val::Text(a), Literal::Text(b)) => Some((*a).cmp(b.as_str())),
        (Val::Bool(a), Literal::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

fn compare(v: &Val<'_>, op: CmpOp, l: &Literal) -> bool {
    cmp_value(v, l).is_some_and(|o| op.holds(o))
}

fn column_array<'a>(batch: &'a RecordBatch, name: &str) -> &'a dyn Array {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("predicate column {name} was checked against the schema"))
        .as_ref()
}

/// Applies a test to every present cell of a column; missing cells are unknown.
/// A numeric column against number literals, with the test inlined (the general `leaf` calls
/// its test through a pointer per row); `None` when the column is not Float64.
fn numeric_leaf(
    batch: &RecordBatch,
    rows: Rows<'_>,
    column: &str,
    test: impl Fn(f64) -> bool,
) -> Option<Vec<Tri>> {
    let f = column_array(batch, column).as_primitive_opt::<Float64Type>()?;
    let one = |x: f64| if x.is_finite() { Tri::from(test(x)) } else { U };
    Some(if f.null_count() == 0 {
        rows.map_values(f.values(), one)
    } else {
        rows.map(|r| if f.is_null(r) { U } else { one(f.value(r)) })
    })
}

fn leaf(
    batch: &RecordBatch,
    rows: Rows<'_>,
    column: &str,
    test: &dyn Fn(&Val<'_>) -> bool,
) -> Vec<Tri> {
    let a = column_array(batch, column);
    if let Some(d) = a.as_dictionary_opt::<Int32Type>() {
        let values = d.values().as_string::<i32>();
        let per_code: Vec<Tri> = (0..values.len())
            .map(|i| Tri::from(test(&Val::Text(values.value(i)))))
            .collect();
        let keys = d.keys();
        if keys.null_count() == 0 {
            return rows.map_values(keys.values(), |k| per_code[k as usize]);
        }
        return rows.map(|r| {
            if keys.is_null(r) {
                U
            } else {
                per_code[keys.value(r) as usize]
            }
        });
    }
    if let Some(f) = a.as_primitive_opt::<Float64Type>() {
        // Numeric columns are tested by value; the common case has no nulls and reads the slice.
        let one = |x: f64| {
            if x.is_finite() {
                Tri::from(test(&Val::Num(x)))
            } else {
                U
            }
        };
        if f.null_count() == 0 {
            return rows.map_values(f.values(), one);
        }
        return rows.map(|r| if f.is_null(r) { U } else { one(f.value(r)) });
    }
    if let Some(u) = a.as_primitive_opt::<UInt64Type>() {
        return rows.map(|r| {
            if u.is_null(r) {
                U
            } else {
                Tri::from(test(&Val::Num(u.value(r) as f64)))
            }
        });
    }
    if let Some(t) = a.as_primitive_opt::<TimestampNanosecondType>() {
        return rows.map(|r| {
            if t.is_null(r) {
                U
            } else {
                Tri::from(test(&Val::Num(t.value(r) as f64)))
            }
        });
    }
    if let Some(b) = a.as_boolean_opt() {
        return rows.map(|r| {
            if b.is_null(r) {
                U
            } else {
                Tri::from(test(&Val::Bool(b.value(r))))
            }
        });
    }
    vec![U; rows.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{
        ArrayRef, BooleanArray, DictionaryArray, Float64Array, Int32Array, StringArray,
    };
    use gyre_core::Split;
    use std::sync::Arc;

    /// Rows 10-13: `age` (numeric), `work` (categorical), `flag` (boolean).
    fn batch_of(work: Int32Array, age: Float64Array, flag: BooleanArray) -> RecordBatch {
        let dict = DictionaryArray::<Int32Type>::try_new(
            work,
            Arc::new(StringArray::from(vec!["Private", "Self-emp"])),
        )
        .unwrap();
        crate::table::assemble(
            &[10, 11, 12, 13],
            &[Split::Train; 4],
            vec![
                ("age".into(), Arc::new(age) as ArrayRef),
                ("work".into(), Arc::new(dict) as ArrayRef),
                ("flag".into(), Arc::new(flag) as ArrayRef),
            ],
        )
        .unwrap()
    }

    fn batch() -> RecordBatch {
        batch_of(
            Int32Array::from(vec![Some(0), Some(1), None, Some(1)]),
            Float64Array::from(vec![Some(20.0), None, Some(40.0), Some(60.0)]),
            BooleanArray::from(vec![Some(true), Some(false), None, Some(true)]),
        )
    }

    /// [`batch`]'s columns without missing cells (the leaves' paths for columns without nulls).
    fn batch_without_nulls() -> RecordBatch {
        batch_of(
            Int32Array::from(vec![0, 1, 1, 0]),
            Float64Array::from(vec![20.0, 35.0, 40.0, 60.0]),
            BooleanArray::from(vec![true, false, false, true]),
        )
    }

    fn rows(text: &str) -> Vec<usize> {
        let p = Predicate::parse(text).unwrap();
        evaluate(&p, &batch())
            .iter()
            .enumerate()
            .filter(|(_, m)| **m)
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn three_valued_logic() {
        assert_eq!(rows("age < 50"), vec![0, 2]);
        assert_eq!(rows("NOT (age < 50)"), vec![3], "missing age is neither");
        assert_eq!(rows("age < 50 OR work = 'Self-emp'"), vec![0, 1, 2, 3]);
        assert_eq!(rows("age IS NULL"), vec![1]);
        assert_eq!(rows("work IS NULL OR flag IS NULL"), vec![2]);
        assert_eq!(rows("work != 'Private'"), vec![1, 3]);
        assert_eq!(rows("work NOT IN ('Private')"), vec![1, 3]);
        assert_eq!(rows("work LIKE 'Self%' AND flag = TRUE"), vec![3]);
        assert_eq!(rows("age BETWEEN 20 AND 40"), vec![0, 2]);
        assert_eq!(rows("row_id >= 12"), vec![2, 3]);
        assert_eq!(rows("TRUE"), vec![0, 1, 2, 3]);
    }

    /// Evaluated on some rows (in any order, repeated), every kind of leaf answers as it does
    /// on the whole table: nulls, dictionaries, numbers, booleans, row ids, NOT, AND, OR.
    #[test]
    fn some_rows_answer_as_all_rows_do() {
        for b in [batch(), batch_without_nulls()] {
            some_rows_answer_as_all_rows_do_on(&b);
        }
    }

    fn some_rows_answer_as_all_rows_do_on(b: &RecordBatch) {
        let picks: [&[usize]; 4] = [&[], &[3, 1], &[2, 2, 0], &[0, 1, 2, 3]];
        for text in [
            "age < 50",
            "NOT (age < 50)",
            "age < 50 OR work = 'Self-emp'",
            "age IS NULL",
            "work IS NULL OR flag IS NULL",
            "work != 'Private'",
            "work NOT IN ('Private')",
            "work LIKE 'Self%' AND flag = TRUE",
            "age BETWEEN 20 AND 40",
            "NOT (age BETWEEN 20 AND 40)",
            "row_id >= 12",
            "flag = FALSE OR age > 30",
            "TRUE",
        ] {
            let p = Predicate::parse(text).unwrap();
            let all = evaluate(&p, b);
            for rows in picks {
                let want: Vec<bool> = rows.iter().map(|&r| all[r]).collect();
                assert_eq!(evaluate_rows(&p, b, rows), want, "{text} on rows {rows:?}");
            }
        }
    }
}
