//! `gyre train`: fit a learner on a version's training rows, predict every holdout row, score it,
//! and store the run (model, per-example predictions, metrics, timings) with a journal entry.

use crate::predictions::{self, Predictions};
use crate::slicing::{self, SliceRow};
use crate::suites::SuiteResult;
use crate::{App, AppError, now};
use gyre_core::{ContentHash, Split, Task};
use gyre_eval::metrics::{self, Scores};
use gyre_learn::{Progress, SeedEffect, TrainSet};
use gyre_store::{NewJournalEntry, RunRecord, SeedGroupRecord};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Instant;

/// What `gyre train` was asked.
#[derive(Clone, Debug)]
pub struct TrainRequest {
    pub dataset: Option<String>,
    pub version: Option<String>,
    pub learner: String,
    pub params: Vec<(String, String)>,
    pub seed: u64,
    /// Train this many runs, seeds `seed..seed+seeds`, and measure the flips between them.
    pub seeds: usize,
}

impl Default for TrainRequest {
    fn default() -> Self {
        TrainRequest {
            dataset: None,
            version: None,
            learner: "gbdt".into(),
            params: Vec::new(),
            seed: 0,
            seeds: 1,
        }
    }
}

/// A stored run, as reported by `train` and `show`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunReport {
    pub run: String,
    pub dataset: String,
    pub version: String,
    pub learner: String,
    pub params: serde_json::Value,
    pub seed: u64,
    pub task: Task,
    /// A binary task's positive class: precision, recall, F1 and average precision are its.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub positive_class: Option<String>,
    pub primary_metric: String,
    /// `{suite: {metric: value}}`.
    pub metrics: BTreeMap<String, BTreeMap<String, f64>>,
    pub suites: Vec<SuiteResult>,
    pub timings: BTreeMap<String, f64>,
    pub rows: RowCounts,
    pub created_at: String,
    pub created_by: String,
    pub gyre_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed_group: Option<String>,
    /// The worst holdout slices (SliceLine on 0/1 or squared error), when just trained.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slices: Vec<SliceRow>,
    /// A command learner's run: the command and the hash of its files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<crate::CommandInfo>,
    /// An imported run: the predictions file it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported: Option<crate::runs_import::ImportedFrom>,
    /// A finished sweep trial: its sweep (`gyre sweep show ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<String>,
}

impl RunReport {
    /// Whether every suite's requirements hold.
    pub fn passed(&self) -> bool {
        self.suites.iter().all(|s| s.passed)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RowCounts {
    pub train: usize,
    pub holdout: usize,
}

/// Flips between two runs of a seed group.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeedPair {
    pub a: String,
    pub b: String,
    /// Rows right under one run and wrong under the other.
    pub flips: usize,
    pub flip_rate: f64,
}

/// The seed noise floor: how much runs of one recipe disagree from the seed alone.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeedFloor {
    pub group: String,
    pub runs: Vec<String>,
    pub seeds: Vec<u64>,
    /// Classification only; `None` for regression, where right/wrong is undefined.
    pub mean_flip_rate: Option<f64>,
    pub pairs: Vec<SeedPair>,
    /// What the seed chose in these runs (bagging, feature sampling, ...).
    #[serde(default)]
    pub seed_drives: Vec<String>,
}

#[derive(Serialize)]
pub struct TrainReport {
    /// Findings this training opened or closed.
    pub findings: crate::findings::FindingChanges,
    #[serde(flatten)]
    pub run: RunReport,
    /// Every run of `--seeds K` (the first is also flattened above).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<RunReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed_floor: Option<SeedFloor>,
    /// With `--seeds K` where the seed chooses nothing: why one run was trained, not K.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seeds_note: Option<SeedsNote>,
    /// Skew between the training and holdout rows, and features that leak the label.
    pub checks: crate::findings::DataChecks,
}

/// `--seeds K` asked of a learner whose seed, with these params, changes nothing.
#[derive(Clone, Debug, Serialize)]
pub struct SeedsNote {
    pub requested: usize,
    pub trained: usize,
    pub note: String,
}

/// The part of a run's record kept as JSON `info`.
#[derive(Serialize, Deserialize)]
pub(crate) struct RunInfo {
    pub task: Task,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positive_class: Option<String>,
    pub primary_metric: String,
    pub suites: Vec<SuiteResult>,
    pub rows: RowCounts,
    pub gyre_version: String,
    pub git_commit: Option<String>,
    /// A command learner's command and the hash of its files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<crate::CommandInfo>,
    /// Where an imported run's predictions came from (`gyre runs import`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported: Option<crate::runs_import::ImportedFrom>,
    /// The sweep whose trial this run finished (`gyre sweep`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<String>,
}

/// Where a run's fit comes from.
pub(crate) enum Source<'a> {
    /// Fit here (`gyre train`).
    Fit,
    /// Predictions (and a model) made elsewhere (`gyre runs import`).
    Import(&'a crate::runs_import::ImportRunRequest),
    /// Fits made by units (a sweep trial's, or `train --seeds K` on a cluster).
    Units(crate::sweep::Prefit),
}

impl App {
    pub fn train(
        &mut self,
        req: &TrainRequest,
        progress: &dyn Progress,
    ) -> Result<TrainReport, AppError> {
        // Several seeds on a cluster: each seed's fit is a unit there.
        if let crate::units::Executor::Remote(remote) = self.executor.clone()
            && req.seeds > 1
            && let Some(prefit) = self.fit_seeds_remotely(remote.as_ref(), req, progress)?
        {
            return self.train_from(req, Source::Units(prefit), progress);
        }
        self.train_from(req, Source::Fit, progress)
    }

    /// `train`, or with `import`, a run whose holdout predictions (and model) were made
    /// elsewhere (`gyre runs import`): recorded through the same path.
    pub(crate) fn train_from(
        &mut self,
        req: &TrainRequest,
        source: Source<'_>,
        progress: &dyn Progress,
    ) -> Result<TrainReport, AppError> {
        let import = match &source {
            Source::Import(i) => Some(*i),
            _ => None,
        };
        if req.seeds == 0 {
            return Err(AppError::invalid("--seeds must be at least 1"));
        }
        // A built-in learner's params are checked before the data is loaded; a command learner
        // needs the version's schema first.
        if gyre_learn::LEARNERS.contains(&req.learner.as_str()) {
            gyre_learn::learner(&req.learner, &req.params)?;
        }
        let t0 = Instant::now();
        let dataset = self.resolve_dataset(req.dataset.as_deref())?;
        let loaded = self.load_version(&dataset, req.version.as_deref())?;
        let mut sweep = None;
        let prefit = matches!(source, Source::Units(_));
        let (learner, command_info, imported) = match source {
            Source::Fit => {
                let (l, c) = self.learner(&req.learner, &req.params, &loaded.schema)?;
                (l, c, None)
            }
            Source::Import(i) => {
                let (l, from) = crate::runs_import::imported_learner(i, &loaded)?;
                (l, None, Some(from))
            }
            Source::Units(prefit) => {
                sweep = prefit.sweep.clone();
                let c = prefit.command.clone();
                (Box::new(prefit) as Box<dyn gyre_learn::Learner>, c, None)
            }
        };
        // K fits that differ only in a seed that chooses nothing are one fit K times: train
        // one and say why.
        let (seeds, seeds_note, seed_drives) = match learner.seed_effect() {
            SeedEffect::Nothing { advice } if req.seeds > 1 => (
                1,
                Some(SeedsNote {
                    requested: req.seeds,
                    trained: 1,
                    note: format!(
                        "with these params the {} seed changes nothing: runs with seeds {}..{} \
                         would be identical (no flips, a noise floor of 0 that says nothing), so \
                         one run was trained; {advice}",
                        learner.name(),
                        req.seed,
                        req.seed + req.seeds as u64 - 1
                    ),
                }),
                Vec::new(),
            ),
            SeedEffect::Nothing { .. } => (req.seeds, None, Vec::new()),
            SeedEffect::Drives(d) => (req.seeds, None, d),
        };
        let features = loaded.features();
        let labels = loaded.labels();
        let splits = loaded.splits();
        let train_rows = loaded.train_rows();
        let holdout_rows: Vec<u32> = (0..splits.len() as u32)
            .filter(|&r| splits[r as usize] == Split::Holdout)
            .collect();
        if train_rows.is_empty() {
            return Err(AppError::invalid(format!(
                "version {} of {dataset} has no training rows",
                &loaded.version[..12]
            )));
        }
        let load_s = t0.elapsed().as_secs_f64();
        let task = loaded.schema.task;
        // `git rev-parse` is a process of its own (a few ms): asked on a thread while we fit.
        let root = self.root().to_path_buf();
        let mut asking_git = Some(std::thread::spawn(move || git_commit(&root)));
        let mut git_commit = None;
        let group_id = (seeds > 1).then(|| new_id(&format!("group {}", req.seed)));

        let mut reports = Vec::new();
        let mut first_slices = Vec::new();
        let mut slices_s = 0.0;
        let mut holdout_correct: Vec<Vec<bool>> = Vec::new();
        // Each run's holdout predictions, kept for its report (not read back from the store).
        let mut all_preds: Vec<Predictions> = Vec::new();
        // Each run's holdout metrics, for its report (not computed again).
        let mut holdout_of_runs = Vec::new();
        // The cached object of the first run's slice search, once stored.
        let mut slices_obj = None;
        for k in 0..seeds {
            let seed = req.seed + k as u64;
            let t1 = Instant::now();
            let set = TrainSet {
                features: &features,
                rows: &train_rows,
                labels: &labels,
                weights: loaded.weights(),
            };
            // A command learner predicts the holdout in the run that trains it; a built-in
            // model predicts it while it is being stored (`evaluate_on_holdout`).
            let (model, scores) = if command_info.is_some() || imported.is_some() || prefit {
                let (m, s) = learner.fit_predict(
                    loaded.learn_task(),
                    &set,
                    seed,
                    &holdout_rows,
                    progress,
                )?;
                (m, Some(s))
            } else {
                (
                    learner.fit(loaded.learn_task(), &set, seed, progress)?,
                    None,
                )
            };
            let train_s = t1.elapsed().as_secs_f64();
            let fit_timings = model.fit_timings();
            let t2 = Instant::now();
            let evaluated = evaluate_on_holdout(
                Fitted {
                    model: &*model,
                    scores,
                },
                &loaded,
                &features,
                &labels,
                &holdout_rows,
                self.store.objects(),
                k == 0,
            )?;
            // Prediction, metrics, the slice search and both objects stored.
            let evaluate_s = t2.elapsed().as_secs_f64();
            let predict_s = evaluated.predict_s;
            let (model_obj, pred_obj) = (evaluated.model_obj, evaluated.pred_obj);
            let holdout_metrics = evaluated.metrics;
            holdout_correct.extend(evaluated.correct);
            all_preds.push(evaluated.preds);
            if let Some(found) = evaluated.slices {
                first_slices = found.stored.slices.iter().take(3).cloned().collect();
                slices_obj = found.object.map(|o| o.to_string());
                slices_s = found.seconds;
            }
            let created_at = now();
            let id = new_id(&format!(
                "{} {} {seed} {created_at}",
                loaded.version, req.learner
            ));
            let mut all_metrics = BTreeMap::new();
            holdout_of_runs.push(holdout_metrics.clone());
            all_metrics.insert("holdout".to_string(), holdout_metrics);
            let mut timings = BTreeMap::new();
            timings.insert("load_s".to_string(), if k == 0 { load_s } else { 0.0 });
            timings.insert("train_s".to_string(), train_s);
            timings.insert("evaluate_s".to_string(), evaluate_s);
            timings.insert("predict_s".to_string(), predict_s);
            for (k, v) in fit_timings {
                timings.insert(k.to_string(), v);
            }
            if k == 0 {
                timings.insert("slices_s".to_string(), slices_s);
            }
            if let Some(h) = asking_git.take() {
                git_commit = h.join().unwrap_or(None);
            }
            let info = RunInfo {
                task,
                positive_class: loaded.schema.positive_class().map(|(_, c)| c.to_string()),
                primary_metric: metrics::primary(task).name.to_string(),
                suites: vec![SuiteResult {
                    name: "holdout".into(),
                    passed: true,
                    rows: holdout_rows.len(),
                    failures: Vec::new(),
                }],
                rows: RowCounts {
                    train: train_rows.len(),
                    holdout: holdout_rows.len(),
                },
                gyre_version: env!("CARGO_PKG_VERSION").into(),
                git_commit: git_commit.clone(),
                command: command_info.clone(),
                imported: imported.clone(),
                sweep: sweep.clone(),
            };
            let record = RunRecord {
                id: id.clone(),
                dataset: dataset.clone(),
                version: loaded.version.clone(),
                learner: req.learner.clone(),
                params: learner.params().to_string(),
                seed,
                model: model_obj.to_string(),
                predictions: pred_obj.to_string(),
                metrics: serde_json::to_string(&all_metrics).expect("metrics serialize"),
                timings: serde_json::to_string(&timings).expect("timings serialize"),
                info: serde_json::to_string(&info).expect("info serializes"),
                seed_group: None,
                created_at,
                created_by: self.user.clone(),
            };
            reports.push(record);
        }

        let floor = group_id
            .as_ref()
            .map(|g| seed_floor(g, &reports, &holdout_correct, &seed_drives));
        for r in &mut reports {
            r.seed_group = group_id.clone();
        }
        let mut runs: Vec<RunReport> = Vec::new();
        for ((r, p), m) in reports.iter().zip(&all_preds).zip(&holdout_of_runs) {
            let mut report = run_report(r)?;
            (report.metrics, report.suites) = self.evaluate_suites_of(r, &loaded, p, Some(m))?;
            runs.push(report);
        }
        runs[0].slices = first_slices;
        let first = all_preds.swap_remove(0);
        let scored = crate::suites::ScoredRun {
            run: reports[0].id.clone(),
            suite: crate::suites::HOLDOUT.to_string(),
            task,
            classes: loaded.schema.classes.len(),
            table_rows: holdout_rows.iter().map(|&r| r as usize).collect(),
            labels: first.labels,
            scores: first.scores,
            loaded,
        };
        let checks = crate::findings::DataChecks {
            skew: crate::skew::skew(&scored.loaded.data, &train_rows, &holdout_rows),
            leaks: crate::skew::leaks(
                &scored.loaded.data,
                task,
                scored.loaded.schema.classes.len(),
                &labels,
                &train_rows,
            ),
        };
        let (opened, fixed) = self.findings_of_run(
            &reports[0],
            &runs[0].slices,
            &runs[0].suites,
            &checks,
            Some(scored),
        )?;
        // The runs, their journal entry, the slice search's cache entry and the findings they
        // open or fix: one transaction (one commit's fsync), after every object it names is
        // durable.
        let slices_key =
            slicing::slices_cache_key(&reports[0].id, None, "error", &Default::default());
        let (user, command, time) = (self.user.clone(), self.command.clone(), now());
        let findings = self.store.write(|tx| {
            if let (Some(g), Some(f)) = (&group_id, &floor) {
                tx.insert_seed_group(&SeedGroupRecord {
                    id: g.clone(),
                    summary: serde_json::to_string(f).expect("floor serializes"),
                    created_at: time.clone(),
                })?;
            }
            let mut objects = Vec::new();
            for r in &reports {
                tx.insert_run(r)?;
                objects.push(format!("run:{}", r.id));
                objects.push(format!("model:{}", r.model));
                objects.push(format!("predictions:{}", r.predictions));
            }
            tx.append_journal(&NewJournalEntry {
                time: &time,
                user: &user,
                command: &command,
                why: import.map(|i| i.why.as_str()),
                objects: &objects,
            })?;
            if let Some(obj) = &slices_obj {
                // `INSERT OR IGNORE`: it fails only when the database does, and then the
                // transaction cannot be trusted to go on (SQLite may have rolled it back).
                tx.put_cache(&slices_key, "slices", obj, &time)?;
            }
            crate::findings::record_findings(tx, &reports[0], &opened, &fixed, &user, &time)
        })?;
        Ok(TrainReport {
            findings,
            run: runs[0].clone(),
            runs: if runs.len() > 1 { runs } else { Vec::new() },
            seed_floor: floor,
            seeds_note,
            checks,
        })
    }
}

/// What predicting and evaluating one fitted model on the holdout gives.
struct HoldoutEvaluation {
    model_obj: ContentHash,
    predict_s: f64,
    preds: Predictions,
    metrics: metrics::Metrics,
    /// Whether each holdout row is predicted right (classification).
    correct: Option<Vec<bool>>,
    pred_obj: ContentHash,
    /// The default slice search, when asked for.
    slices: Option<FoundSlices>,
}

/// The default slice search of a run, its cached object (if it could be stored) and its time.
struct FoundSlices {
    stored: slicing::StoredSlices,
    object: Option<ContentHash>,
    seconds: f64,
}

/// Predicts the holdout rows with `model`, scores them, and stores the model and the
/// predictions, with the default slice search when `search_slices`. The model is stored (its
/// bytes, their hash, the write and two fsyncs: mostly waiting on the disk) on a thread of its
/// own while the holdout is predicted. Then two more pieces of work side by side: the slice
/// search, and the metrics, the predictions' Parquet and its storing. Both objects are durable
/// when this returns, before any record names them.
/// A fitted model, with its holdout scores when the learner gave them as it fit.
struct Fitted<'a> {
    model: &'a dyn gyre_learn::Model,
    scores: Option<Vec<f64>>,
}

fn evaluate_on_holdout(
    fitted: Fitted<'_>,
    loaded: &crate::table_view::LoadedVersion,
    features: &gyre_learn::Features,
    labels: &[f64],
    holdout_rows: &[u32],
    objects: &gyre_store::Objects,
    search_slices: bool,
) -> Result<HoldoutEvaluation, AppError> {
    let t0 = Instant::now();
    let (model, scores) = (fitted.model, fitted.scores);
    let task = loaded.schema.task;
    let classes = loaded.schema.classes.len();
    let row_ids = loaded.row_ids();
    let (model_obj, predict_s, preds, slices, scored) = std::thread::scope(|outer| {
        let storing_model = outer.spawn(|| objects.put(&model.save()));
        let scores = scores.unwrap_or_else(|| model.predict(features, holdout_rows));
        let predict_s = t0.elapsed().as_secs_f64();
        let preds = Predictions {
            row_ids: holdout_rows.iter().map(|&r| row_ids[r as usize]).collect(),
            labels: holdout_rows.iter().map(|&r| labels[r as usize]).collect(),
            scores,
        };
        let (holdout_labels, scores) = (&preds.labels, &preds.scores);
        let (slices, scored) = std::thread::scope(|scope| {
            let searching = search_slices.then(|| {
                scope.spawn(|| {
                    let t1 = Instant::now();
                    let table_rows: Vec<usize> = holdout_rows.iter().map(|&r| r as usize).collect();
                    let names = loaded.data.slice_columns();
                    let discrete = slicing::discretize(
                        &loaded.data.batch,
                        &loaded.schema,
                        &names,
                        &table_rows,
                    );
                    let errs = slicing::errors(task, classes, holdout_labels, scores);
                    // The search `gyre slices RUN` makes by default, kept for it in the cache;
                    // the run's report and its findings take the top three.
                    let found = slicing::top_slices(&discrete, &errs, &Default::default());
                    let stored =
                        slicing::StoredSlices::new(slicing::error_name(task), &errs, found);
                    // A cache that cannot take it fails nothing.
                    let object = objects
                        .put(&serde_json::to_vec(&stored).expect("slices serialize"))
                        .ok();
                    FoundSlices {
                        stored,
                        object,
                        seconds: t1.elapsed().as_secs_f64(),
                    }
                })
            });
            let scored = (|| -> Result<_, AppError> {
                let holdout_metrics = metrics::metrics_for(
                    loaded.schema.positive_index(),
                    &Scores {
                        task,
                        classes,
                        labels: holdout_labels,
                        scores,
                        weights: None,
                    },
                );
                let correct: Option<Vec<bool>> = task.is_classification().then(|| {
                    metrics::predicted_classes(task, classes, scores)
                        .iter()
                        .zip(holdout_labels)
                        .map(|(&p, &y)| f64::from(p) == y)
                        .collect()
                });
                let pred_obj = objects.put(&predictions::to_parquet(&preds, &loaded.schema)?)?;
                Ok((holdout_metrics, correct, pred_obj))
            })();
            (
                searching.map(|h| h.join().expect("the slice search does not panic")),
                scored,
            )
        });
        (
            storing_model
                .join()
                .expect("storing a model does not panic"),
            predict_s,
            preds,
            slices,
            scored,
        )
    });
    let (metrics, correct, pred_obj) = scored?;
    Ok(HoldoutEvaluation {
        model_obj: model_obj?,
        predict_s,
        preds,
        metrics,
        correct,
        pred_obj,
        slices,
    })
}

/// Pairwise flips (right under one run, wrong under the other) on the holdout.
fn seed_floor(
    group: &str,
    runs: &[RunRecord],
    correct: &[Vec<bool>],
    drives: &[&str],
) -> SeedFloor {
    let mut pairs = Vec::new();
    for i in 0..correct.len() {
        for j in i + 1..correct.len() {
            let flips = correct[i]
                .iter()
                .zip(&correct[j])
                .filter(|(a, b)| a != b)
                .count();
            pairs.push(SeedPair {
                a: runs[i].id.clone(),
                b: runs[j].id.clone(),
                flips,
                flip_rate: flips as f64 / correct[i].len().max(1) as f64,
            });
        }
    }
    SeedFloor {
        group: group.to_string(),
        runs: runs.iter().map(|r| r.id.clone()).collect(),
        seeds: runs.iter().map(|r| r.seed).collect(),
        mean_flip_rate: (!pairs.is_empty())
            .then(|| pairs.iter().map(|p| p.flip_rate).sum::<f64>() / pairs.len() as f64),
        pairs,
        seed_drives: drives.iter().map(|d| d.to_string()).collect(),
    }
}

pub(crate) fn run_report(r: &RunRecord) -> Result<RunReport, AppError> {
    let corrupt = |what: &str, e: serde_json::Error| {
        AppError::from(gyre_store::StoreError::Corrupt(format!(
            "run {} {what}: {e}",
            r.id
        )))
    };
    let info: RunInfo = serde_json::from_str(&r.info).map_err(|e| corrupt("info", e))?;
    Ok(RunReport {
        run: r.id.clone(),
        dataset: r.dataset.clone(),
        version: r.version.clone(),
        learner: r.learner.clone(),
        params: serde_json::from_str(&r.params).map_err(|e| corrupt("params", e))?,
        seed: r.seed,
        task: info.task,
        positive_class: info.positive_class.clone(),
        primary_metric: info.primary_metric,
        metrics: serde_json::from_str(&r.metrics).map_err(|e| corrupt("metrics", e))?,
        suites: info.suites,
        timings: serde_json::from_str(&r.timings).map_err(|e| corrupt("timings", e))?,
        rows: info.rows,
        created_at: r.created_at.clone(),
        created_by: r.created_by.clone(),
        gyre_version: info.gyre_version,
        git_commit: info.git_commit,
        seed_group: r.seed_group.clone(),
        slices: Vec::new(),
        command: info.command,
        imported: info.imported,
        sweep: info.sweep,
    })
}

impl App {
    /// A run's report with every suite evaluated now from its stored predictions.
    pub(crate) fn run_report_with_suites(&mut self, r: &RunRecord) -> Result<RunReport, AppError> {
        let mut report = run_report(r)?;
        let (metrics, suites) = self.evaluate_suites(r)?;
        report.metrics = metrics;
        report.suites = suites;
        Ok(report)
    }
}

/// A fresh run id: 12 hex characters, unique with overwhelming probability.
fn new_id(salt: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let h = ContentHash::of_parts(&[
        salt.as_bytes(),
        &nanos.to_le_bytes(),
        &std::process::id().to_le_bytes(),
        &N.fetch_add(1, Ordering::Relaxed).to_le_bytes(),
    ]);
    h.as_str()[..12].to_string()
}

/// The project directory's git commit, when it is in a repository.
fn git_commit(root: &std::path::Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(root)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}
