//! `gyre diff BASE CANDIDATE`: two runs compared example by example on the rows both predicted,
//! scored against the newest labels (relabels apply): metric deltas with paired bootstrap
//! intervals, flips and McNemar's exact test, the same per suite, and the slices where the
//! candidate got worse (SliceLine on the negative-flip indicator).

use crate::config::gate_config;
use crate::slicing::{self, SliceRow};
use crate::suites::{masked, outputs, suite_mask};
use crate::{App, AppError};
use gyre_core::Task;
use gyre_eval::compare::{self, Flips, MetricDelta, Prepared};
use gyre_eval::slices::SliceParams;
use gyre_store::RunRecord;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
pub struct DiffRequest {
    pub base: String,
    pub candidate: String,
    /// Only this suite (default: every suite).
    pub suite: Option<String>,
    pub rows: bool,
    /// Overrides the `[gate]` bootstrap settings.
    pub resamples: Option<usize>,
    pub seed: Option<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SuiteDiff {
    pub name: String,
    pub rows: usize,
    pub metrics: BTreeMap<String, MetricDelta>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flips: Option<Flips>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcnemar_p: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct FlippedRow {
    pub row: u64,
    pub label: String,
    pub base: String,
    pub candidate: String,
    /// `negative` (the candidate broke it) or `positive` (the candidate fixed it).
    pub kind: &'static str,
}

#[derive(Clone, Debug, Serialize)]
pub struct DiffReport {
    pub base: String,
    pub candidate: String,
    pub dataset: String,
    /// The version whose labels both runs were scored against.
    pub labels_version: String,
    pub task: Task,
    pub rows: usize,
    pub primary_metric: String,
    /// A binary task's positive class: precision, recall, F1 and average precision are its.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub positive_class: Option<String>,
    pub metrics: BTreeMap<String, MetricDelta>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flips: Option<Flips>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcnemar_p: Option<f64>,
    /// Mean seed-to-seed flip rate of either run's seed group, when one was trained.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed_floor: Option<f64>,
    pub suites: Vec<SuiteDiff>,
    pub regressed_slices: Vec<SliceRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flipped_rows: Option<Vec<FlippedRow>>,
    pub bootstrap_resamples: usize,
    /// Seconds in this process: loading both runs and the labels, and comparing.
    pub timings: BTreeMap<String, f64>,
}

impl App {
    pub fn diff(&mut self, req: &DiffRequest) -> Result<DiffReport, AppError> {
        let base = self.resolve_run(&req.base)?;
        let cand = self.resolve_run(&req.candidate)?;
        self.diff_runs(&base, &cand, req)
    }

    pub(crate) fn diff_runs(
        &mut self,
        base: &RunRecord,
        cand: &RunRecord,
        req: &DiffRequest,
    ) -> Result<DiffReport, AppError> {
        if base.id == cand.id {
            return Err(AppError::invalid(format!(
                "both names refer to run {}; diff needs two different runs",
                base.id
            )));
        }
        if base.dataset != cand.dataset {
            return Err(AppError::invalid(format!(
                "run {} is on dataset {} and run {} on dataset {}; diff compares runs on the same dataset",
                base.id, base.dataset, cand.id, cand.dataset
            )));
        }
        let t0 = std::time::Instant::now();
        let gate = gate_config(&self.store.config_path())?;
        // Average precision's interval costs more than all others: only when it is wanted.
        let wants_average_precision = |schema: &gyre_core::DatasetSchema| {
            schema.positive.is_some() || gate.primary_metric.as_deref() == Some("average_precision")
        };
        let resamples = req.resamples.unwrap_or(gate.bootstrap_resamples);
        let seed = req.seed.unwrap_or(gate.bootstrap_seed);
        let latest = self.load_version(&base.dataset, None)?;
        let schema = latest.schema.clone();
        let task = schema.task;
        let classes = schema.classes.len();
        let k = outputs(task, classes);
        // Scored against the newest labels, not those stored with each run.
        let pb = self.run_scores(base, &latest)?;
        let pc = self.run_scores(cand, &latest)?;
        // Rows both runs predicted, labelled from the newest version. Runs on the same holdout
        // list the same rows in the same order: then a row's place is its place in both.
        let ids = gyre_data::table::row_ids(&latest.data.batch);
        let pos_c: Option<rustc_hash::FxHashMap<u64, usize>> =
            (pb.row_ids != pc.row_ids).then(|| {
                pc.row_ids
                    .iter()
                    .enumerate()
                    .map(|(i, &r)| (r, i))
                    .collect()
            });
        let mut row_ids = Vec::new();
        let mut table_rows = Vec::new();
        let (mut sb, mut sc) = (Vec::new(), Vec::new());
        // Both lists are in row id order, so a predicted row is usually the table row after the
        // last one found; else it is searched for.
        let mut next = 0;
        for (i, &r) in pb.row_ids.iter().enumerate() {
            let j = match &pos_c {
                None => Some(i),
                Some(pos) => pos.get(&r).copied(),
            };
            let t = if ids.get(next) == Some(&r) {
                Some(next)
            } else {
                ids.binary_search(&r).ok()
            };
            let (Some(j), Some(t)) = (j, t) else {
                continue;
            };
            next = t + 1;
            row_ids.push(r);
            table_rows.push(t);
            sb.extend_from_slice(&pb.scores[i * k..(i + 1) * k]);
            sc.extend_from_slice(&pc.scores[j * k..(j + 1) * k]);
        }
        if row_ids.is_empty() {
            return Err(AppError::invalid(format!(
                "runs {} and {} share no predicted rows",
                base.id, cand.id
            )));
        }
        let labels = latest.labels_of(&table_rows);
        let load_s = t0.elapsed().as_secs_f64();
        let t1 = std::time::Instant::now();
        let suites_all = self.suites()?.suites;
        let mut suite_list: Vec<Option<crate::suites::Suite>> = vec![None];
        suite_list.extend(
            suites_all
                .into_iter()
                .filter(|s| s.dataset == base.dataset)
                .map(Some),
        );
        if let Some(only) = &req.suite {
            let s = self.suite_named(only)?;
            suite_list = vec![s];
        }
        // Where the candidate got worse: slices of the negative-flip indicator (classification),
        // or of the increase in squared error (regression). Found on a thread of its own while
        // the bootstrap runs on the pool.
        // Predicted classes of both runs (classification), for the flips indicator and --rows.
        let (predb, predc) = if task.is_classification() {
            let kb = if task == Task::Binary { 2 } else { classes };
            (
                gyre_eval::metrics::predicted_classes(task, kb, &sb),
                gyre_eval::metrics::predicted_classes(task, kb, &sc),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        let worse: Vec<f64> = if task.is_classification() {
            (0..labels.len())
                .map(|i| {
                    let (b, c) = (
                        f64::from(predb[i]) == labels[i],
                        f64::from(predc[i]) == labels[i],
                    );
                    f64::from(u8::from(b && !c))
                })
                .collect()
        } else {
            (0..labels.len())
                .map(|i| ((sc[i] - labels[i]).powi(2) - (sb[i] - labels[i]).powi(2)).max(0.0))
                .collect()
        };
        let find_regressed = || {
            let ts = std::time::Instant::now();
            let names = latest.data.slice_columns();
            let discrete = slicing::discretize(&latest.data.batch, &schema, &names, &table_rows);
            let slices = slicing::top_slices(
                &discrete,
                &worse,
                &SliceParams {
                    k: 5,
                    min_support: 16,
                    ..Default::default()
                },
            );
            (slices, ts.elapsed().as_secs_f64())
        };
        let compare_suites = || {
            let mut suites = Vec::new();
            let mut bootstrap_s = 0.0;
            for s in &suite_list {
                let mask = suite_mask(s.as_ref(), &latest, &row_ids);
                let l = masked(&mask, &labels, 1);
                let positive = latest.schema.positive_index();
                let with_average_precision = wants_average_precision(&latest.schema);
                let prepared_b =
                    Prepared::for_positive(task, classes, positive, &l, &masked(&mask, &sb, k));
                let prepared_c =
                    Prepared::for_positive(task, classes, positive, &l, &masked(&mask, &sc, k));
                let tb = std::time::Instant::now();
                let metrics = compare::compare_metrics_with(
                    &prepared_b,
                    &prepared_c,
                    resamples,
                    seed,
                    with_average_precision,
                );
                bootstrap_s += tb.elapsed().as_secs_f64();
                let (flips, p) = if task.is_classification() {
                    let f = compare::flips(&prepared_b.right(), &prepared_c.right());
                    let p = compare::mcnemar_exact(f.negative, f.positive);
                    (Some(f), Some(p))
                } else {
                    (None, None)
                };
                let name = s.as_ref().map_or("holdout".to_string(), |s| s.name.clone());
                suites.push(SuiteDiff {
                    name,
                    rows: l.len(),
                    metrics,
                    flips,
                    mcnemar_p: p,
                });
            }
            (suites, bootstrap_s)
        };
        let ((suites, bootstrap_s), (regressed_slices, slices_s)) = std::thread::scope(|scope| {
            let slicer = scope.spawn(find_regressed);
            let compared = compare_suites();
            (
                compared,
                slicer.join().expect("slice finding does not panic"),
            )
        });
        // The headline numbers: holdout's, or the one suite asked for.
        let first = suites[0].clone();
        let (metrics, flips, mcnemar_p, rows) =
            (first.metrics, first.flips, first.mcnemar_p, first.rows);
        let flipped_rows = (req.rows && task.is_classification()).then(|| {
            (0..labels.len())
                .filter(|&i| {
                    predb[i] != predc[i]
                        && (f64::from(predb[i]) == labels[i]) != (f64::from(predc[i]) == labels[i])
                })
                .map(|i| FlippedRow {
                    row: row_ids[i],
                    label: schema.classes[labels[i] as usize].clone(),
                    base: schema.classes[predb[i] as usize].clone(),
                    candidate: schema.classes[predc[i] as usize].clone(),
                    kind: if f64::from(predb[i]) == labels[i] {
                        "negative"
                    } else {
                        "positive"
                    },
                })
                .collect()
        });
        let seed_floor = self.seed_floor_of(base).or(self.seed_floor_of(cand));
        let mut timings = BTreeMap::new();
        timings.insert("load_s".to_string(), load_s);
        timings.insert("compare_s".to_string(), t1.elapsed().as_secs_f64());
        timings.insert("bootstrap_s".to_string(), bootstrap_s);
        timings.insert("slices_s".to_string(), slices_s);
        Ok(DiffReport {
            timings,
            base: base.id.clone(),
            candidate: cand.id.clone(),
            dataset: base.dataset.clone(),
            labels_version: latest.version.clone(),
            positive_class: latest.schema.positive_class().map(|(_, c)| c.to_string()),
            task,
            rows,
            primary_metric: gate
                .primary_metric
                .clone()
                .unwrap_or_else(|| gyre_eval::metrics::primary(task).name.to_string()),
            metrics,
            flips,
            mcnemar_p,
            seed_floor,
            suites,
            regressed_slices,
            flipped_rows,
            bootstrap_resamples: resamples,
        })
    }

    /// The mean seed-to-seed flip rate of the run's seed group, if it has one.
    fn seed_floor_of(&mut self, run: &RunRecord) -> Option<f64> {
        let g = run.seed_group.as_ref()?;
        let rec = self.store.read(|tx| tx.seed_group(g)).ok()??;
        let floor: crate::train::SeedFloor = serde_json::from_str(&rec.summary).ok()?;
        floor.mean_flip_rate
    }
}
