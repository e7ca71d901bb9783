//! `gyre ablate RUN`: what each edit is worth. For every edit in effect in the run's version,
//! retrain the same learner, params and seed on the version without that edit (in parallel), and
//! compare with the run on the primary metric and every suite, with paired bootstrap intervals.
//! Retrained predictions are cached per (version, learner spec, seed, edit).

use crate::config::gate_config;
use crate::label_issues::params_of;
use crate::predictions::{self, Predictions};
use crate::suites::{masked, outputs, suite_mask};
use crate::table_view::{SourceTables, build_version};
use crate::units::Unit;
use crate::{App, AppError, now};
use gyre_core::{ContentHash, Split};
use gyre_data::version::Materialized;
use gyre_eval::compare::{MetricDelta, Prepared, compare_metric};
use gyre_learn::{NoProgress, TrainSet};
use gyre_store::NewJournalEntry;
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
pub struct SuiteEffect {
    pub suite: String,
    pub rows: usize,
    /// The primary metric without the edit minus with it.
    pub delta_without: MetricDelta,
}

#[derive(Serialize)]
pub struct EditEffect {
    pub edit: i64,
    pub kind: &'static str,
    pub description: String,
    pub why: String,
    /// The primary metric on the holdout without the edit minus with it (negative: the edit helps).
    pub metric_delta_without: MetricDelta,
    pub suites: Vec<SuiteEffect>,
    pub cached: bool,
    /// Later edits retrained without too, because they read a feature this edit adds.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also_without: Vec<i64>,
}

/// The cache kind of a stored ablation report.
const ABLATION_REPORT: &str = "ablation-report";

/// What an ablation said one edit was worth.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct EditWorth {
    pub edit: i64,
    pub run: String,
    pub primary_metric: String,
    /// The primary metric without the edit minus with it (negative: the edit helps).
    pub delta_without: MetricDelta,
    pub time: String,
}

#[derive(Serialize, Deserialize)]
struct StoredAblation {
    run: String,
    primary_metric: String,
    edits: Vec<StoredEffect>,
}

#[derive(Serialize, Deserialize)]
struct StoredEffect {
    edit: i64,
    metric_delta_without: MetricDelta,
}

#[derive(Serialize)]
pub struct AblateReport {
    pub run: String,
    pub version: String,
    pub primary_metric: String,
    pub edits: Vec<EditEffect>,
}

/// One retrain's outcome: the variant's index, its holdout predictions and their Parquet bytes.
type Retrained = Result<(usize, Predictions, Vec<u8>), AppError>;

impl App {
    /// Every stored ablation's verdict on each edit, oldest first.
    pub fn ablation_worth(&mut self) -> Result<Vec<EditWorth>, AppError> {
        let entries = self.store.read(|tx| tx.caches_of_kind(ABLATION_REPORT))?;
        let mut out = Vec::new();
        for (_, object, time) in entries {
            let Some(id) = ContentHash::parse(&object) else {
                continue;
            };
            // A missing or damaged report is as if the ablation had not run.
            let Ok(bytes) = self.store.objects().get(&id) else {
                continue;
            };
            let Ok(r) = serde_json::from_slice::<StoredAblation>(&bytes) else {
                continue;
            };
            out.extend(r.edits.into_iter().map(|e| EditWorth {
                edit: e.edit,
                run: r.run.clone(),
                primary_metric: r.primary_metric.clone(),
                delta_without: e.metric_delta_without,
                time: time.clone(),
            }));
        }
        Ok(out)
    }

    pub fn ablate(&mut self, run: &str, jobs: Option<usize>) -> Result<AblateReport, AppError> {
        if jobs == Some(0) {
            return Err(AppError::invalid("--jobs must be at least 1"));
        }
        let AblationInputs {
            record,
            effective,
            base_table,
            tables,
            with,
            learner,
        } = self.ablation_inputs(run)?;
        let schema = with.schema.clone();
        let task = schema.task;
        let classes = schema.classes.len();
        let k = outputs(task, classes);

        // Cached predictions of the versions without each edit, where they exist.
        let mut variants = Vec::new();
        for e in &effective {
            let key = ContentHash::of_parts(&[
                b"gyre-ablate-v1",
                record.version.as_bytes(),
                record.learner.as_bytes(),
                record.params.as_bytes(),
                &record.seed.to_le_bytes(),
                &e.id.to_le_bytes(),
            ])
            .to_string();
            let cached = self.store.read(|tx| tx.cache(&key))?;
            let cached = match cached.and_then(|o| ContentHash::parse(&o)) {
                Some(obj) => Some(predictions::from_parquet(
                    self.store.objects().get(&obj)?,
                    &schema,
                )?),
                None => None,
            };
            variants.push((e, key, cached));
        }
        let todo: Vec<usize> = (0..variants.len())
            .filter(|&i| variants[i].2.is_none())
            .collect();
        // A command learner's retrains are processes of their own: by default one per core.
        let default_jobs = if learner.name() == "command" {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            todo.len()
        };
        let jobs = jobs.unwrap_or(default_jobs).clamp(1, todo.len().max(1));
        let learn_task = with.learn_task();
        let seed = record.seed;

        // What can fail is read before any retrain starts, so a bad config or a missing object
        // is reported at once instead of after the fits.
        let gate = gate_config(&self.store.config_path())?;
        let primary = gate
            .primary_metric
            .clone()
            .unwrap_or_else(|| gyre_eval::metrics::primary(task).name.to_string());
        let base_preds = self.run_predictions(&record, &with)?;
        let suites_all = self.suites()?.suites;

        // On a remote executor the retrains are units of their own, run (and stored) there;
        // the comparisons stay here.
        let remote_done: Vec<(usize, Predictions, Vec<u8>)> = match self.executor.clone() {
            crate::units::Executor::Remote(remote) if !todo.is_empty() => {
                let units: Vec<Unit> = todo
                    .iter()
                    .map(|&i| Unit::Ablation {
                        run: record.id.clone(),
                        edit: variants[i].0.id,
                    })
                    .collect();
                let label = format!("ablate run {}", &record.id[..12]);
                let out = self.run_remote(
                    remote.as_ref(),
                    &label,
                    &units,
                    &*self.unit_progress.clone(),
                )?;
                todo.iter()
                    .zip(out)
                    .map(|(&i, bytes)| {
                        let p = predictions::from_parquet(bytes.clone(), &schema)?;
                        Ok((i, p, bytes))
                    })
                    .collect::<Result<_, AppError>>()?
            }
            _ => Vec::new(),
        };
        let local_todo: Vec<usize> = if remote_done.is_empty() {
            todo.clone()
        } else {
            Vec::new()
        };
        let todo = &local_todo;
        let next = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| -> Result<AblateReport, AppError> {
            // `jobs` workers take the variants still to retrain in turn; each builds its version
            // from the base table, fits on one thread of its own (the OS shares the cores) and
            // predicts the holdout on the shared pool (the last retrain to finish would otherwise
            // predict on one core while the other idles). Meanwhile this thread prepares the
            // run's side of the comparisons, and compares each retrain as it arrives (so the
            // comparisons' bootstrap runs beside the fits even with `--jobs 1`).
            let (tx, rx) = std::sync::mpsc::channel::<Retrained>();
            for _ in 0..if todo.is_empty() { 0 } else { jobs } {
                let tx = tx.clone();
                let (next, todo, variants) = (&next, &todo, &variants);
                let (base_table, effective, tables) = (&base_table, &effective, &tables);
                let (learner, schema) = (&learner, &schema);
                s.spawn(move || {
                    loop {
                        let at = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&i) = todo.get(at) else { break };
                        let without = crate::edit::with_dependents(effective, variants[i].0.id);
                        let out = retrain(
                            base_table,
                            effective.iter().filter(|x| !without.contains(&x.id)),
                            tables,
                            learner.as_ref(),
                            learn_task,
                            seed,
                            schema,
                        )
                        .map(|(p, bytes)| (i, p, bytes));
                        let failed = out.is_err();
                        if tx.send(out).is_err() || failed {
                            break;
                        }
                    }
                });
            }
            drop(tx);

            // Per suite (None: the whole holdout), its rows and the run's own side of each
            // comparison, prepared once for all variants; variants are scored against the
            // run's own labels.
            let mut all_suites: Vec<Option<&crate::suites::Suite>> = vec![None];
            all_suites.extend(
                suites_all
                    .iter()
                    .filter(|s| s.dataset == record.dataset)
                    .map(Some),
            );
            let sides: Vec<_> = all_suites
                .into_iter()
                .map(|s| {
                    let mask = suite_mask(s, &with, &base_preds.row_ids);
                    let labels = masked(&mask, &base_preds.labels, 1);
                    let base = Prepared::for_positive(
                        task,
                        classes,
                        schema.positive_index(),
                        &labels,
                        &masked(&mask, &base_preds.scores, k),
                    );
                    (s, mask, labels, base)
                })
                .collect();
            let effect = |i: usize, without: &Predictions| -> Result<EditEffect, AppError> {
                let e = variants[i].0;
                let mut suites = Vec::new();
                let mut holdout_delta = None;
                for (s, mask, labels, base) in &sides {
                    let b = Prepared::for_positive(
                        task,
                        classes,
                        schema.positive_index(),
                        labels,
                        &masked(mask, &without.scores, k),
                    );
                    let Some(d) = compare_metric(
                        base,
                        &b,
                        &primary,
                        gate.bootstrap_resamples,
                        gate.bootstrap_seed,
                    ) else {
                        continue;
                    };
                    match s {
                        None => holdout_delta = Some(d),
                        Some(s) => suites.push(SuiteEffect {
                            suite: s.name.clone(),
                            rows: labels.len(),
                            delta_without: d,
                        }),
                    }
                }
                Ok(EditEffect {
                    edit: e.id,
                    kind: e.kind.name(),
                    description: e.kind.describe(),
                    why: e.why.clone(),
                    metric_delta_without: holdout_delta.ok_or_else(|| {
                        AppError::invalid(format!("{primary} is undefined on this run's holdout"))
                    })?,
                    suites,
                    cached: variants[i].2.is_some(),
                    also_without: crate::edit::with_dependents(&effective, e.id)[1..].to_vec(),
                })
            };
            let mut effects: Vec<Option<EditEffect>> = (0..variants.len()).map(|_| None).collect();
            for (i, v) in variants.iter().enumerate() {
                if let Some(c) = &v.2 {
                    effects[i] = Some(effect(i, c)?);
                }
            }
            let mut new_cache = Vec::new();
            for (i, p, bytes) in remote_done {
                effects[i] = Some(effect(i, &p)?);
                new_cache.push((variants[i].1.clone(), bytes));
            }
            for _ in 0..todo.len() {
                let (i, p, bytes) = rx
                    .recv()
                    .map_err(|_| AppError::invalid("a retrain ended without a result"))??;
                effects[i] = Some(effect(i, &p)?);
                new_cache.push((variants[i].1.clone(), bytes));
            }
            let effects: Vec<EditEffect> = effects.into_iter().flatten().collect();
            if !new_cache.is_empty() {
                let mut stored = Vec::new();
                for (key, bytes) in &new_cache {
                    stored.push((key.clone(), self.store.objects().put(bytes)?));
                }
                let time = now();
                let (user, command) = (self.user.clone(), self.command.clone());
                self.store.write(|tx| {
                    for (key, obj) in &stored {
                        tx.put_cache(key, "ablation", obj.as_str(), &time)?;
                    }
                    tx.append_journal(&NewJournalEntry {
                        time: &time,
                        user: &user,
                        command: &command,
                        why: None,
                        objects: &[format!("run:{}", record.id)],
                    })
                })?;
            }
            let report = AblateReport {
                run: record.id.clone(),
                version: record.version.clone(),
                primary_metric: primary,
                edits: effects,
            };
            // What each edit was worth, kept for the data view (the first ablation of a run).
            let bytes = serde_json::to_vec(&report).expect("report serializes");
            let obj = self.store.objects().put(&bytes)?;
            let time = now();
            let key = format!("{ABLATION_REPORT}:{}", record.id);
            self.store
                .write(|tx| tx.put_cache(&key, ABLATION_REPORT, obj.as_str(), &time))?;
            Ok(report)
        })
    }
}

/// Fits the learner on the base table with `edits` applied, on one thread of its own, and
/// predicts the version's holdout rows.
fn retrain<'a>(
    base_table: &Materialized,
    edits: impl Iterator<Item = &'a gyre_core::Edit>,
    tables: &SourceTables,
    learner: &dyn gyre_learn::Learner,
    learn_task: gyre_learn::Task,
    seed: u64,
    schema: &gyre_core::DatasetSchema,
) -> Result<(Predictions, Vec<u8>), AppError> {
    let lv = build_version(base_table.clone(), String::new(), edits, tables)?;
    let features = lv.features();
    let labels = lv.labels();
    let train = lv.train_rows();
    let holdout: Vec<u32> = (0..lv.splits().len() as u32)
        .filter(|&r| lv.splits()[r as usize] == Split::Holdout)
        .collect();
    let (_, scores) = gyre_learn::on_own_threads(1, || {
        learner.fit_predict(
            learn_task,
            &TrainSet {
                features: &features,
                rows: &train,
                labels: &labels,
                weights: lv.weights(),
            },
            seed,
            &holdout,
            &NoProgress,
        )
    })?;
    let ids = lv.row_ids();
    let p = Predictions {
        row_ids: holdout.iter().map(|&r| ids[r as usize]).collect(),
        labels: holdout.iter().map(|&r| labels[r as usize]).collect(),
        scores,
    };
    let bytes = predictions::to_parquet(&p, schema)?;
    Ok((p, bytes))
}

/// What every retrain of an ablation reads: the run, the edits in effect in its version, the
/// dataset's base table (decoded once: the run's version and every variant start from a copy)
/// with the source tables the edits add, the run's version, and its learner.
struct AblationInputs {
    record: gyre_store::RunRecord,
    effective: Vec<gyre_core::Edit>,
    base_table: Materialized,
    tables: SourceTables,
    with: crate::table_view::LoadedVersion,
    learner: Box<dyn gyre_learn::Learner>,
}

impl App {
    fn ablation_inputs(&mut self, run: &str) -> Result<AblationInputs, AppError> {
        let record = self.resolve_run(run)?;
        let entry = self.version_entry(&record.dataset, Some(&record.version))?;
        let edits = match entry.edit {
            Some(upto) => self.edits_upto(&record.dataset, Some(upto))?,
            None => Vec::new(),
        };
        let effective: Vec<gyre_core::Edit> = gyre_core::edit::effective(&edits)
            .into_iter()
            .cloned()
            .collect();
        let base_table = self.base_table(&record.dataset)?;
        let mut tables = SourceTables::new();
        self.load_source_tables(effective.iter().map(|e| &e.kind), &mut tables)?;
        let with = build_version(base_table.clone(), entry.id.clone(), &effective, &tables)?;
        let params = params_of(&serde_json::from_str(&record.params).unwrap_or_default());
        let (learner, _) = self.learner(&record.learner, &params, &with.schema)?;
        Ok(AblationInputs {
            record,
            effective,
            base_table,
            tables,
            with,
            learner,
        })
    }

    /// An `ablate` retrain as a unit of its own (`gyre worker`): the run's version without
    /// `edit` and the edits that depend on it, its holdout predictions as Parquet.
    pub(crate) fn ablation_unit(&mut self, run: &str, edit: i64) -> Result<Vec<u8>, AppError> {
        let AblationInputs {
            record,
            effective,
            base_table,
            tables,
            with,
            learner,
        } = self.ablation_inputs(run)?;
        if !effective.iter().any(|e| e.id == edit) {
            return Err(AppError::invalid(format!(
                "edit #{edit} is not among the edits of run {}'s version",
                record.id
            )));
        }
        let without = crate::edit::with_dependents(&effective, edit);
        let (_, bytes) = retrain(
            &base_table,
            effective.iter().filter(|x| !without.contains(&x.id)),
            &tables,
            learner.as_ref(),
            with.learn_task(),
            record.seed,
            &with.schema,
        )?;
        Ok(bytes)
    }
}
