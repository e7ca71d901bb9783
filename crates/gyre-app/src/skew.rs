//! Skew and leaks: what `gyre train` checks in the data itself, beside the model's errors.
//!
//! **Skew** (Breck et al., "The ML Test Score", 2017: training/serving skew; here between the
//! rows a run trains on and the rows it is evaluated on): per feature, holdout rows whose value
//! the training rows never had. A categorical value never seen in training; for a number with
//! few distinct values (at most [`DISCRETE_MAX`], as months, hours or day-of-week derived from a
//! time are), a value never seen in training; for other numbers, a value outside the training
//! range. The model can only guess there, and a failure slice made of such rows (`month = 12`
//! when no December was trained on) is skew, not a weakness to fix with weights or labels.
//!
//! **Leak**: a feature that alone predicts the label almost perfectly on the training rows (a
//! column computed from the label, or recorded after it): binary, the AUC of the value as a
//! score (or of its category's label rate) at least [`LEAK_AUC`]; multiclass, the accuracy of
//! each category's (or value's) majority label at least [`LEAK_PURITY`] where the majority
//! class alone is below it; regression, |Pearson r| at least [`LEAK_CORRELATION`].

use gyre_core::{ColumnKind, Task};
use gyre_data::version::Materialized;
use serde::{Deserialize, Serialize};

/// A number column with at most this many distinct training values is checked value by value.
pub const DISCRETE_MAX: usize = 32;
/// Skew is reported when at least this share of the evaluated rows has it (or [`SKEW_MIN_ROWS`]).
pub const SKEW_MIN_SHARE: f64 = 0.005;
pub const SKEW_MIN_ROWS: usize = 10;
pub const LEAK_AUC: f64 = 0.99;
pub const LEAK_PURITY: f64 = 0.99;
pub const LEAK_CORRELATION: f64 = 0.99;
/// The most training rows the leak check reads (every k-th).
pub const LEAK_SAMPLE: usize = 4096;

/// One feature's skew between training and evaluated rows.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Skew {
    pub column: String,
    /// `unseen categories`, `unseen values` or `out of range`.
    pub what: String,
    /// Evaluated rows with such a value.
    pub rows: usize,
    pub share: f64,
    /// A few of the values (most frequent first), as text.
    pub values: Vec<String>,
    /// The rows as a pasteable predicate.
    pub predicate: String,
}

impl Skew {
    /// What the rows have, in words: "workclass categories never seen in training (Astronaut)".
    pub fn describe(&self) -> String {
        match self.what.as_str() {
            "out of range" => format!(
                "{} outside its {}",
                self.column,
                self.values
                    .first()
                    .map(String::as_str)
                    .unwrap_or("training range")
            ),
            "unseen categories" => format!(
                "{} categories never seen in training ({})",
                self.column,
                self.values.join(", ")
            ),
            _ => format!(
                "{} values never seen in training ({})",
                self.column,
                self.values.join(", ")
            ),
        }
    }
}

/// A feature that alone predicts the label almost perfectly on the training rows.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Leak {
    pub column: String,
    /// `auc`, `purity` or `correlation`.
    pub measure: String,
    pub value: f64,
}

/// What values of one feature training had, and the evaluated values it did not have: the one
/// rule both `train` (holdout rows) and `monitor` (served rows) apply.
pub(crate) struct SkewWatch {
    column: String,
    support: Support,
    /// Unseen values (text, or a discrete number's bits) with their counts.
    unseen: rustc_hash::FxHashMap<String, usize>,
    below: usize,
    above: usize,
}

enum Support {
    Categories(rustc_hash::FxHashSet<String>),
    /// At most [`DISCRETE_MAX`] distinct numbers (by bits).
    Discrete(Vec<u64>),
    Range(f64, f64),
}

impl SkewWatch {
    /// From a categorical feature's training values.
    pub(crate) fn categories<'a>(column: &str, trained: impl Iterator<Item = &'a str>) -> Self {
        Self::new(
            column,
            Support::Categories(trained.map(String::from).collect()),
        )
    }

    /// From a numeric feature's training values (NaN and missing skipped); `None` without any.
    pub(crate) fn numbers(column: &str, trained: impl Iterator<Item = f64>) -> Option<Self> {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        let mut seen: Vec<u64> = Vec::new();
        let mut discrete = true;
        for v in trained.filter(|v| !v.is_nan()) {
            lo = lo.min(v);
            hi = hi.max(v);
            if discrete && !seen.contains(&v.to_bits()) {
                seen.push(v.to_bits());
                discrete = seen.len() <= DISCRETE_MAX;
            }
        }
        (lo <= hi).then(|| {
            Self::new(
                column,
                if discrete {
                    Support::Discrete(seen)
                } else {
                    Support::Range(lo, hi)
                },
            )
        })
    }

    fn new(column: &str, support: Support) -> Self {
        SkewWatch {
            column: column.into(),
            support,
            unseen: Default::default(),
            below: 0,
            above: 0,
        }
    }

    /// An evaluated categorical value (`None`: missing, which is no skew).
    pub(crate) fn text(&mut self, v: Option<&str>) {
        if let (Support::Categories(known), Some(v)) = (&self.support, v)
            && !known.contains(v)
        {
            *self.unseen.entry(v.to_string()).or_default() += 1;
        }
    }

    /// An evaluated number (NaN: missing).
    pub(crate) fn number(&mut self, v: f64) {
        if v.is_nan() {
            return;
        }
        match &self.support {
            Support::Discrete(seen) if !seen.contains(&v.to_bits()) => {
                *self
                    .unseen
                    .entry(gyre_data::infer::format_number(v))
                    .or_default() += 1;
            }
            Support::Range(lo, _) if v < *lo => self.below += 1,
            Support::Range(_, hi) if v > *hi => self.above += 1,
            _ => {}
        }
    }

    /// The skew among `n` evaluated rows, when it reaches the reporting bar.
    pub(crate) fn finish(self, n: usize) -> Option<Skew> {
        let min_rows = SKEW_MIN_ROWS.max((SKEW_MIN_SHARE * n as f64).ceil() as usize);
        let col = gyre_core::predicate::ident_sql(&self.column);
        let num = gyre_data::infer::format_number;
        let skew = |what: &str, rows: usize, values: Vec<String>, predicate: String| Skew {
            column: self.column.clone(),
            what: what.into(),
            rows,
            share: rows as f64 / n.max(1) as f64,
            values,
            predicate,
        };
        let found = match &self.support {
            Support::Range(lo, hi) => {
                let rows = self.below + self.above;
                let predicate = match (self.below > 0, self.above > 0) {
                    (true, true) => format!("{col} < {} OR {col} > {}", num(*lo), num(*hi)),
                    (true, false) => format!("{col} < {}", num(*lo)),
                    _ => format!("{col} > {}", num(*hi)),
                };
                let range = vec![format!("training range {} to {}", num(*lo), num(*hi))];
                skew("out of range", rows, range, predicate)
            }
            support => {
                let mut values: Vec<(&String, &usize)> = self.unseen.iter().collect();
                values.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                let rows = values.iter().map(|(_, n)| **n).sum();
                let shown: Vec<String> = values.iter().take(5).map(|(v, _)| (*v).clone()).collect();
                let (what, predicate) = if let Support::Categories(_) = support {
                    let mut literals: Vec<String> = values
                        .iter()
                        .map(|(v, _)| {
                            gyre_core::predicate::literal_sql(&gyre_core::predicate::Literal::Text(
                                (*v).clone(),
                            ))
                        })
                        .collect();
                    literals.sort();
                    (
                        "unseen categories",
                        format!("{col} IN ({})", literals.join(", ")),
                    )
                } else {
                    let mut numbers: Vec<f64> =
                        values.iter().filter_map(|(v, _)| v.parse().ok()).collect();
                    numbers.sort_by(f64::total_cmp);
                    let listed: Vec<String> = numbers.iter().map(|v| num(*v)).collect();
                    ("unseen values", format!("{col} IN ({})", listed.join(", ")))
                };
                skew(what, rows, shown, predicate)
            }
        };
        (found.rows >= min_rows && found.rows > 0).then_some(found)
    }
}

/// Skew of every feature between `train` and `evaluated` rows (table rows).
pub fn skew(data: &Materialized, train: &[u32], evaluated: &[u32]) -> Vec<Skew> {
    let n = evaluated.len();
    if n == 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    for name in data.feature_names() {
        let (Some(col), Some(array)) = (data.schema.column(name), data.batch.column_by_name(name))
        else {
            continue;
        };
        let found = match col.kind {
            ColumnKind::Categorical => {
                // By code: the categories training had are named once, and only the evaluated
                // rows with another code are looked at by name.
                let c = codes(array);
                let mut trained = vec![false; col.categories.len()];
                for &r in train {
                    if let Some(k) = c[r as usize] {
                        trained[k as usize] = true;
                    }
                }
                let mut watch = SkewWatch::categories(
                    name,
                    (0..trained.len())
                        .filter(|&k| trained[k])
                        .map(|k| col.categories[k].as_str()),
                );
                for &r in evaluated {
                    if let Some(k) = c[r as usize]
                        && !trained[k as usize]
                    {
                        watch.text(Some(col.categories[k as usize].as_str()));
                    }
                }
                watch.finish(n)
            }
            ColumnKind::Numeric => {
                let x = numbers_of(array);
                let value = |r: &u32| x[*r as usize].unwrap_or(f64::NAN);
                SkewWatch::numbers(name, train.iter().map(value)).and_then(|mut watch| {
                    for r in evaluated {
                        watch.number(value(r));
                    }
                    watch.finish(n)
                })
            }
            _ => None,
        };
        out.extend(found);
    }
    out.sort_by(|a, b| b.rows.cmp(&a.rows).then(a.column.cmp(&b.column)));
    out
}

fn codes(array: &arrow_array::ArrayRef) -> Vec<Option<u32>> {
    use arrow_array::cast::AsArray;
    array
        .as_dictionary::<arrow_array::types::Int32Type>()
        .keys()
        .iter()
        .map(|k| k.map(|k| k as u32))
        .collect()
}

fn numbers_of(array: &arrow_array::ArrayRef) -> Vec<Option<f64>> {
    use arrow_array::cast::AsArray;
    array
        .as_primitive::<arrow_array::types::Float64Type>()
        .iter()
        .map(|v| v.filter(|v| !v.is_nan()))
        .collect()
}

/// Features that alone predict `labels` (table rows' labels: class index, or value) almost
/// perfectly on the training rows.
pub fn leaks(
    data: &Materialized,
    task: Task,
    classes: usize,
    labels: &[f64],
    train: &[u32],
) -> Vec<Leak> {
    let mut out = Vec::new();
    if train.len() < 20 {
        return out;
    }
    // A feature that predicts the label almost perfectly does so on any few thousand rows:
    // every k-th training row, at most [`LEAK_SAMPLE`] of them (the check then costs a
    // fraction of a millisecond per feature on Adult, not a sort of every training row).
    let step = train.len().div_ceil(LEAK_SAMPLE).max(1);
    let sampled: Vec<u32> = train.iter().step_by(step).copied().collect();
    let train = &sampled[..];
    let y: Vec<f64> = train.iter().map(|&r| labels[r as usize]).collect();
    for name in data.feature_names() {
        let (Some(col), Some(array)) = (data.schema.column(name), data.batch.column_by_name(name))
        else {
            continue;
        };
        // Each training row's value as a group key (categories, discrete numbers) or a number.
        let found = match (task, col.kind) {
            (Task::Regression, ColumnKind::Numeric | ColumnKind::Boolean) => {
                let x = as_numbers(col.kind, array);
                let pairs: Vec<(f64, f64)> = train
                    .iter()
                    .zip(&y)
                    .filter_map(|(&r, &t)| x[r as usize].map(|v| (v, t)))
                    .collect();
                pearson(&pairs)
                    .filter(|r| r.abs() >= LEAK_CORRELATION)
                    .map(|r| ("correlation", r))
            }
            (Task::Regression, _) => None,
            (Task::Binary, ColumnKind::Numeric | ColumnKind::Boolean) => {
                let x = as_numbers(col.kind, array);
                let scores: Vec<f64> = train
                    .iter()
                    .map(|&r| x[r as usize].unwrap_or(f64::NAN))
                    .collect();
                let keep: Vec<usize> = (0..scores.len()).filter(|&i| !scores[i].is_nan()).collect();
                let s: Vec<f64> = keep.iter().map(|&i| scores[i]).collect();
                let p: Vec<bool> = keep.iter().map(|&i| y[i] == 1.0).collect();
                gyre_eval::metrics::auc_binary(&s, &p, None)
                    .map(|a| a.max(1.0 - a))
                    .filter(|a| *a >= LEAK_AUC)
                    .map(|a| ("auc", a))
            }
            (_, ColumnKind::Categorical) | (Task::Multiclass, _) => {
                let keys: Vec<Option<u64>> = match col.kind {
                    ColumnKind::Categorical => {
                        codes(array).into_iter().map(|c| c.map(u64::from)).collect()
                    }
                    _ => as_numbers(col.kind, array)
                        .into_iter()
                        .map(|v| v.map(f64::to_bits))
                        .collect(),
                };
                purity(&keys, train, &y, classes.max(2))
                    .filter(|(p, base)| *p >= LEAK_PURITY && *base < LEAK_PURITY)
                    .map(|(p, _)| ("purity", p))
            }
            _ => None,
        };
        if let Some((measure, value)) = found {
            out.push(Leak {
                column: name.into(),
                measure: measure.into(),
                value,
            });
        }
    }
    out
}

fn as_numbers(kind: ColumnKind, array: &arrow_array::ArrayRef) -> Vec<Option<f64>> {
    use arrow_array::cast::AsArray;
    if kind == ColumnKind::Boolean {
        array
            .as_boolean()
            .iter()
            .map(|b| b.map(|b| f64::from(u8::from(b))))
            .collect()
    } else {
        numbers_of(array)
    }
}

/// The accuracy of predicting each group's majority class (rows with a key), and the accuracy of
/// the overall majority class on the same rows; `None` with too many groups to mean anything
/// (more than a tenth of the rows: a unique key is trivially "pure").
fn purity(keys: &[Option<u64>], train: &[u32], y: &[f64], classes: usize) -> Option<(f64, f64)> {
    let mut groups: rustc_hash::FxHashMap<u64, Vec<usize>> = Default::default();
    let mut overall = vec![0usize; classes];
    let mut n = 0usize;
    for (&r, &t) in train.iter().zip(y) {
        if let Some(k) = keys[r as usize] {
            let counts = groups.entry(k).or_insert_with(|| vec![0; classes]);
            counts[t as usize] += 1;
            overall[t as usize] += 1;
            n += 1;
        }
    }
    if n == 0 || groups.len() * 10 > n {
        return None;
    }
    let right: usize = groups.values().map(|c| *c.iter().max().unwrap_or(&0)).sum();
    let base = *overall.iter().max().unwrap_or(&0) as f64 / n as f64;
    Some((right as f64 / n as f64, base))
}

fn pearson(pairs: &[(f64, f64)]) -> Option<f64> {
    let n = pairs.len() as f64;
    if n < 3.0 {
        return None;
    }
    let (mx, my) = pairs
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (mx / n, my / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in pairs {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}
