//! `gyre slices`: SliceLine over a run's per-example errors on a suite. Features are discretized
//! into readable values (categories as they are, numbers by quantile bins with rounded edges,
//! missing as its own value), and every slice prints as a gyre predicate that selects exactly
//! its rows, so it can be pasted into `gyre suite add --where`. Slices whose rows mostly overlap a
//! better one's (Jaccard >= `overlap`, 0.5 by default; `gyre_eval::slice_groups` states the rule)
//! are reported under it as other descriptions of the same rows (`also`), not as slices.

use crate::{App, AppError};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type};
use arrow_array::{Array, RecordBatch};
use gyre_core::predicate::{Literal, ident_sql, literal_sql};
use gyre_core::{ColumnKind, DatasetSchema, Task};
use gyre_eval::slice_groups::find_slice_groups;
use gyre_eval::slices::{Slice, SliceFeature, SliceParams};
use serde::{Deserialize, Serialize};

/// Quantile bins per numeric feature.
const NUMERIC_BINS: usize = 5;

/// A discretized feature: the codes and the predicate text of each code.
pub(crate) struct Discrete {
    pub feature: SliceFeature,
    pub predicates: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SliceRow {
    pub predicate: String,
    pub size: usize,
    /// Mean error inside the slice.
    pub error: f64,
    /// The slice's error over the suite's average error.
    pub error_ratio: f64,
    pub score: f64,
    /// Other descriptions of (mostly) the same rows, best first: slices whose rows overlap
    /// this one's by a Jaccard similarity of at least the search's `overlap`.
    #[serde(default)]
    pub also: Vec<SliceAlso>,
}

/// Another description of a reported slice's rows.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SliceAlso {
    pub predicate: String,
    pub size: usize,
    pub error: f64,
    pub score: f64,
    /// Rows in both over rows in either (1: exactly the same rows).
    pub jaccard: f64,
}

#[derive(Serialize)]
pub struct SlicesReport {
    pub run: String,
    pub suite: String,
    /// Read from the cache of slice results (runs never change, so neither do their slices).
    pub cached: bool,
    /// What the error is: `error` (0/1, classification) or `squared_error` (regression).
    pub error_metric: &'static str,
    pub rows: usize,
    pub average_error: f64,
    pub slices: Vec<SliceRow>,
    /// Seconds in this process: loading the run and its version, and finding the slices.
    pub timings: std::collections::BTreeMap<String, f64>,
}

/// A slice search's result as the cache keeps it.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredSlices {
    pub error_metric: String,
    pub rows: usize,
    pub average_error: f64,
    pub slices: Vec<SliceRow>,
}

/// The cache key of a slice search: the run, the suite's name and definition, the error and the
/// parameters. (A run's predictions and version never change.)
pub(crate) fn slices_cache_key(
    run: &str,
    suite: Option<&crate::suites::Suite>,
    error: &str,
    p: &SliceParams,
) -> String {
    let definition = suite.map_or_else(String::new, |s| {
        serde_json::to_string(&(&s.predicate, &s.rows)).expect("a suite serializes")
    });
    gyre_core::ContentHash::of_parts(&[
        // v2: slices grouped by their rows, with `also`.
        b"gyre-slices-v2",
        run.as_bytes(),
        suite
            .map_or(crate::suites::HOLDOUT, |s| s.name.as_str())
            .as_bytes(),
        definition.as_bytes(),
        error.as_bytes(),
        &(p.k as u64).to_le_bytes(),
        &(p.max_level as u64).to_le_bytes(),
        &(p.min_support as u64).to_le_bytes(),
        &p.alpha.to_bits().to_le_bytes(),
        &p.overlap.to_bits().to_le_bytes(),
    ])
    .to_string()
}

/// What the default per-example error is: 0/1 for classification, squared for regression.
pub(crate) fn error_name(task: Task) -> &'static str {
    if task == Task::Regression {
        "squared_error"
    } else {
        "error"
    }
}

impl StoredSlices {
    /// A search over `errs`, the run's errors of kind `error_metric`, as the cache keeps it.
    pub(crate) fn new(error_metric: &str, errs: &[f64], slices: Vec<SliceRow>) -> StoredSlices {
        StoredSlices {
            error_metric: error_metric.to_string(),
            rows: errs.len(),
            average_error: errs.iter().sum::<f64>() / errs.len().max(1) as f64,
            slices,
        }
    }
}

fn error_metric_name(name: &str) -> &'static str {
    match name {
        "squared_error" => "squared_error",
        "log_loss" => "log_loss",
        _ => "error",
    }
}

/// Rounds to two significant digits, so that bin edges read like numbers people write.
fn readable(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let mag = 10f64.powf(x.abs().log10().floor() - 1.0);
    (x / mag).round() * mag
}

fn num_text(x: f64) -> String {
    literal_sql(&Literal::Number((x * 1e9).round() / 1e9))
}

/// A numeric feature's bin edges over its present values: the values themselves when there
/// are at most [`NUMERIC_BINS`] of them (`true`: one bin per value), else the readable
/// quantiles at `q / NUMERIC_BINS` of the sorted values, those above the minimum and at most the
/// maximum, or the second smallest value when none is (heavy ties at the minimum, as
/// `capital_gain`'s zeros). Found by selection, not by sorting every value (the sorts were
/// half of the discretization's samples in a `perf` profile of `gyre diff`): the same edges.
fn numeric_edges(mut vals: Vec<f64>) -> (Vec<f64>, bool) {
    let mut few: Vec<f64> = Vec::with_capacity(NUMERIC_BINS + 1);
    // Distinct as `==` has it (0.0 and -0.0 are one value), each kept as its least in the
    // total order, as the first of its run in a sorted list.
    for &v in &vals {
        match few.iter_mut().find(|x| **x == v) {
            Some(x) => {
                if v.total_cmp(x).is_lt() {
                    *x = v;
                }
            }
            None => {
                few.push(v);
                if few.len() > NUMERIC_BINS {
                    break;
                }
            }
        }
    }
    if few.len() <= NUMERIC_BINS {
        few.sort_by(f64::total_cmp);
        return (few, true);
    }
    let n = vals.len();
    let min = vals.iter().copied().min_by(f64::total_cmp).expect("values");
    let max = vals.iter().copied().max_by(f64::total_cmp).expect("values");
    // The k-th smallest values, from the highest k down, each selected within the part left of
    // the previous one.
    let mut quantiles = [0.0; NUMERIC_BINS - 1];
    let mut upto = n;
    for q in (1..NUMERIC_BINS).rev() {
        let k = q * n / NUMERIC_BINS;
        let (_, v, _) = vals[..upto].select_nth_unstable_by(k, f64::total_cmp);
        quantiles[q - 1] = *v;
        upto = k;
    }
    let mut e: Vec<f64> = quantiles.iter().map(|&v| readable(v)).collect();
    e.dedup();
    e.retain(|&x| x > min && x <= max);
    if e.is_empty() {
        let second = vals
            .iter()
            .copied()
            .filter(|&v| v > min)
            .min_by(f64::total_cmp)
            .expect("more than one distinct value");
        e.push(second);
    }
    (e, false)
}

/// Discretizes the given feature columns over the given rows.
pub(crate) fn discretize(
    batch: &RecordBatch,
    schema: &DatasetSchema,
    features: &[&str],
    rows: &[usize],
) -> Vec<Discrete> {
    let mut out = Vec::new();
    for &name in features {
        let col = schema.column(name).expect("features are schema columns");
        let a = batch.column_by_name(name).expect("feature in table");
        let id = ident_sql(name);
        match col.kind {
            ColumnKind::Categorical => {
                let d = a.as_dictionary::<Int32Type>();
                let values = d.values().as_string::<i32>();
                let missing = values.len() as u32;
                let codes = rows
                    .iter()
                    .map(|&r| {
                        if d.is_null(r) {
                            missing
                        } else {
                            d.keys().value(r) as u32
                        }
                    })
                    .collect();
                let mut predicates: Vec<String> = (0..values.len())
                    .map(|i| {
                        format!(
                            "{id} = {}",
                            literal_sql(&Literal::Text(values.value(i).into()))
                        )
                    })
                    .collect();
                predicates.push(format!("{id} IS NULL"));
                out.push(Discrete {
                    feature: SliceFeature {
                        codes,
                        values: missing + 1,
                    },
                    predicates,
                });
            }
            ColumnKind::Boolean => {
                let b = a.as_boolean();
                let codes = rows
                    .iter()
                    .map(|&r| {
                        if b.is_null(r) {
                            2
                        } else {
                            u32::from(b.value(r))
                        }
                    })
                    .collect();
                out.push(Discrete {
                    feature: SliceFeature { codes, values: 3 },
                    predicates: vec![
                        format!("{id} = FALSE"),
                        format!("{id} = TRUE"),
                        format!("{id} IS NULL"),
                    ],
                });
            }
            ColumnKind::Numeric => {
                let f = a.as_primitive::<Float64Type>();
                let present = |r: usize| !f.is_null(r) && f.value(r).is_finite();
                let vals: Vec<f64> = rows
                    .iter()
                    .filter(|&&r| present(r))
                    .map(|&r| f.value(r))
                    .collect();
                let (edges, equal) = numeric_edges(vals);
                let (codes, mut predicates): (Vec<u32>, Vec<String>) = if equal {
                    let codes = rows
                        .iter()
                        .map(|&r| {
                            if present(r) {
                                edges.iter().position(|&e| e == f.value(r)).unwrap_or(0) as u32
                            } else {
                                edges.len() as u32
                            }
                        })
                        .collect();
                    (
                        codes,
                        edges
                            .iter()
                            .map(|&e| format!("{id} = {}", num_text(e)))
                            .collect(),
                    )
                } else {
                    let codes = rows
                        .iter()
                        .map(|&r| {
                            if present(r) {
                                edges.partition_point(|&e| e <= f.value(r)) as u32
                            } else {
                                edges.len() as u32 + 1
                            }
                        })
                        .collect();
                    let mut p = Vec::new();
                    for i in 0..=edges.len() {
                        p.push(match (i, i == edges.len()) {
                            (0, _) if edges.is_empty() => format!("{id} IS NOT NULL"),
                            (0, _) => format!("{id} < {}", num_text(edges[0])),
                            (_, true) => format!("{id} >= {}", num_text(edges[i - 1])),
                            _ => format!(
                                "{id} >= {} AND {id} < {}",
                                num_text(edges[i - 1]),
                                num_text(edges[i])
                            ),
                        });
                    }
                    (codes, p)
                };
                predicates.push(format!("{id} IS NULL"));
                out.push(Discrete {
                    feature: SliceFeature {
                        codes,
                        values: predicates.len() as u32,
                    },
                    predicates,
                });
            }
            ColumnKind::Time => {}
        }
    }
    out
}

/// Per-example errors: 0/1 for classification, squared error for regression.
pub(crate) fn errors(task: Task, classes: usize, labels: &[f64], scores: &[f64]) -> Vec<f64> {
    match task {
        Task::Regression => labels
            .iter()
            .zip(scores)
            .map(|(y, p)| (y - p).powi(2))
            .collect(),
        _ => {
            let k = if task == Task::Binary { 2 } else { classes };
            gyre_eval::metrics::predicted_classes(task, k, scores)
                .iter()
                .zip(labels)
                .map(|(&p, &y)| f64::from(u8::from(f64::from(p) != y)))
                .collect()
        }
    }
}

/// SliceLine over discretized features and an error vector, grouped into distinct slices, as
/// reportable rows.
pub(crate) fn top_slices(
    discrete: &[Discrete],
    errors: &[f64],
    params: &SliceParams,
) -> Vec<SliceRow> {
    let feats: Vec<SliceFeature> = discrete
        .iter()
        .map(|d| SliceFeature {
            codes: d.feature.codes.clone(),
            values: d.feature.values,
        })
        .collect();
    let mean = errors.iter().sum::<f64>() / errors.len().max(1) as f64;
    let text = |s: &Slice| {
        s.predicates
            .iter()
            .map(|&(f, v)| discrete[f].predicates[v as usize].clone())
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    find_slice_groups(&feats, errors, params)
        .into_iter()
        .map(|g| SliceRow {
            predicate: text(&g.slice),
            size: g.slice.size,
            error: g.slice.error,
            error_ratio: if mean > 0.0 {
                g.slice.error / mean
            } else {
                0.0
            },
            score: g.slice.score,
            also: g
                .also
                .iter()
                .map(|a| SliceAlso {
                    predicate: text(&a.slice),
                    size: a.slice.size,
                    error: a.slice.error,
                    score: a.slice.score,
                    jaccard: a.jaccard,
                })
                .collect(),
        })
        .collect()
}

/// What `gyre slices` was asked.
#[derive(Clone, Debug)]
pub struct SlicesRequest {
    pub run: String,
    pub suite: Option<String>,
    pub params: SliceParams,
    /// The per-example error to slice: `error` (0/1; squared error for regression) or `log_loss`.
    pub error: Option<String>,
}

/// Per-example log loss of classification outputs.
fn log_losses(task: Task, classes: usize, labels: &[f64], scores: &[f64]) -> Vec<f64> {
    let k = if task == Task::Binary { 1 } else { classes };
    labels
        .iter()
        .enumerate()
        .map(|(i, &y)| {
            let p = if task == Task::Binary {
                if y == 1.0 { scores[i] } else { 1.0 - scores[i] }
            } else {
                scores[i * k + y as usize]
            };
            -p.clamp(1e-15, 1.0 - 1e-15).ln()
        })
        .collect()
}

impl App {
    pub fn slices(&mut self, req: &SlicesRequest) -> Result<SlicesReport, AppError> {
        if req.params.k == 0 {
            return Err(AppError::invalid("--k must be at least 1"));
        }
        if req.params.max_level == 0 {
            return Err(AppError::invalid("--max-level must be at least 1"));
        }
        if !(req.params.alpha > 0.0 && req.params.alpha <= 1.0) {
            return Err(AppError::invalid(format!(
                "--alpha must be in (0, 1], got {}",
                req.params.alpha
            )));
        }
        if !(req.params.overlap > 0.0 && req.params.overlap <= 1.0) {
            return Err(AppError::invalid(format!(
                "--overlap must be in (0, 1], got {}",
                req.params.overlap
            )));
        }
        let t0 = std::time::Instant::now();
        let error = req.error.as_deref().unwrap_or("error");
        let record = self.resolve_run(&req.run)?;
        let suite_name = req.suite.as_deref().unwrap_or(crate::suites::HOLDOUT);
        let suite = self.suite_named(suite_name)?;
        let key = slices_cache_key(&record.id, suite.as_ref(), error, &req.params);
        // A cache entry that cannot be read (its object gone, say) is a miss: the search runs.
        if let Some(obj) = self.store.read(|tx| tx.cache(&key))?
            && let Some(hash) = gyre_core::ContentHash::parse(&obj)
            && let Ok(bytes) = self.store.objects().get(&hash)
            && let Ok(stored) = serde_json::from_slice::<StoredSlices>(&bytes)
        {
            let mut timings = std::collections::BTreeMap::new();
            timings.insert("load_s".to_string(), t0.elapsed().as_secs_f64());
            timings.insert("slices_s".to_string(), 0.0);
            return Ok(SlicesReport {
                run: record.id,
                suite: suite_name.to_string(),
                cached: true,
                error_metric: error_metric_name(&stored.error_metric),
                rows: stored.rows,
                average_error: stored.average_error,
                slices: stored.slices,
                timings,
            });
        }
        let scored = self.scored_run(&record, suite_name, suite.as_ref())?;
        let load_s = t0.elapsed().as_secs_f64();
        let t1 = std::time::Instant::now();
        let (errs, error_metric) = match error {
            "error" => (
                errors(scored.task, scored.classes, &scored.labels, &scored.scores),
                error_name(scored.task),
            ),
            "log_loss" if scored.task.is_classification() => (
                log_losses(scored.task, scored.classes, &scored.labels, &scored.scores),
                "log_loss",
            ),
            other => {
                return Err(AppError::invalid(format!(
                    "--error {other}: choose error (0/1, or squared error for regression) or log_loss (classification)"
                )));
            }
        };
        let features = scored.loaded.data.slice_columns();
        let discrete = discretize(
            &scored.loaded.data.batch,
            &scored.loaded.schema,
            &features,
            &scored.table_rows,
        );
        let slices = top_slices(&discrete, &errs, &req.params);
        let mut timings = std::collections::BTreeMap::new();
        timings.insert("load_s".to_string(), load_s);
        timings.insert("slices_s".to_string(), t1.elapsed().as_secs_f64());
        let stored = StoredSlices::new(error_metric, &errs, slices);
        // Keeping the result is a convenience: a store that cannot take it now (busy, read-only)
        // does not fail a command that reads.
        let _ = self.cache_slices(&key, &stored);
        Ok(SlicesReport {
            timings,
            run: scored.run,
            suite: scored.suite,
            cached: false,
            error_metric,
            rows: stored.rows,
            average_error: stored.average_error,
            slices: stored.slices,
        })
    }
}

impl App {
    /// Keeps a slice search's result under `key` (an object and a cache row).
    pub(crate) fn cache_slices(
        &mut self,
        key: &str,
        stored: &StoredSlices,
    ) -> Result<(), AppError> {
        self.keep_cache(
            key,
            "slices",
            &serde_json::to_vec(stored).expect("slices serialize"),
        )
    }

    /// Keeps a computed result in the cache (an object and a cache row). On a team server a
    /// viewer may not write, and a cache is not worth refusing a look for: there it is skipped.
    pub(crate) fn keep_cache(
        &mut self,
        key: &str,
        kind: &str,
        bytes: &[u8],
    ) -> Result<(), AppError> {
        let kept = (|| -> Result<(), AppError> {
            let obj = self.store.objects().put(bytes)?;
            let time = crate::now();
            self.store
                .write(|tx| tx.put_cache(key, kind, obj.as_str(), &time))?;
            Ok(())
        })();
        match kept {
            Err(AppError::Store(gyre_store::StoreError::Denied { status: 403, .. })) => Ok(()),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The edges as first written: sort every value, then read them off.
    fn edges_by_sorting(mut vals: Vec<f64>) -> (Vec<f64>, bool) {
        vals.sort_by(f64::total_cmp);
        let mut distinct = vals.clone();
        distinct.dedup();
        if distinct.len() <= NUMERIC_BINS {
            return (distinct, true);
        }
        let mut e: Vec<f64> = (1..NUMERIC_BINS)
            .map(|q| readable(vals[q * vals.len() / NUMERIC_BINS]))
            .collect();
        e.dedup();
        e.retain(|&x| x > vals[0] && x <= vals[vals.len() - 1]);
        if e.is_empty() {
            e.push(distinct[1]);
        }
        (e, false)
    }

    #[test]
    fn numeric_edges_by_selection_equal_those_by_sorting() {
        let mut rng = gyre_core::rng::SplitMix64::new(5);
        let bits =
            |(e, eq): (Vec<f64>, bool)| (e.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), eq);
        for case in 0..400 {
            let n = (rng.below(300) + 1) as usize;
            let distinct = [1, 2, 5, 6, 7, 40, 1000][case % 7];
            let vals: Vec<f64> = (0..n)
                .map(|_| match case % 4 {
                    // Heavy ties at the minimum, as capital_gain's zeros.
                    // Zeros of both signs: one value to `==`, two to the total order.
                    0 if rng.below(10) < 9 => [-0.0, 0.0][rng.below(2) as usize],
                    1 => match rng.below(distinct) {
                        0 => [-0.0, 0.0][rng.below(2) as usize],
                        v => v as f64,
                    },
                    _ => rng.below(distinct) as f64 * 1.37 - 20.0,
                })
                .collect();
            assert_eq!(
                bits(numeric_edges(vals.clone())),
                bits(edges_by_sorting(vals.clone())),
                "case {case}: {vals:?}"
            );
        }
        assert_eq!(numeric_edges(Vec::new()), (Vec::new(), true));
    }
}
