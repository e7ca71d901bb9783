//! `gyre ablate RUN`: what each edit is worth. For every edit in effect in the run's version,
//! retrain the same learner, params and seed on the version without that edit (in parallel), and
//! compare with the run on the primary metric and every suite, with paired bootstrap intervals.
//! Retrained predictions are cached per (version, learner spec, seed, edit).

use crate::config::gate_config;
use crate::label_issues::params_of;
use crate::predictions::{self, Predictions};
use crate::suites::{masked, outputs, suite_mask};
use crate::{App, AppError, now};
use gyre_core::{ContentHash, Split};
use gyre_eval::compare::{MetricDelta, Prepared, compare_metric};
use gyre_learn::{NoProgress, TrainSet};
use gyre_store::NewJournalEntry;
use serde::Serialize;

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
}

#[derive(Serialize)]
pub struct AblateReport {
    pub run: String,
    pub version: String,
    pub primary_metric: String,
    pub edits: Vec<EditEffect>,
}

impl App {
    pub fn ablate(&mut self, run: &str, jobs: Option<usize>) -> Result<AblateReport, AppError> {
        if jobs == Some(0) {
            return Err(AppError::invalid("--jobs must be at least 1"));
        }
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
        let with = self.load_version(&record.dataset, Some(&record.version))?;
        let schema = with.schema.clone();
        let task = schema.task;
        let classes = schema.classes.len();
        let k = outputs(task, classes);
        let base_preds = self.run_predictions(&record, &with)?;
        let gate = gate_config(&self.store.config_path())?;
        let primary = gate
            .primary_metric
            .clone()
            .unwrap_or_else(|| gyre_eval::metrics::primary(task).name.to_string());
        let params = params_of(&serde_json::from_str(&record.params).unwrap_or_default());
        let learner = gyre_learn::learner(&record.learner, &params)?;

        // Versions without each edit, and cached predictions where they exist.
        let mut variants = Vec::new();
        // Decoded once; each variant starts from a copy.
        let base_table = self.base_table(&record.dataset)?;
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
            let mut data = base_table.clone();
            for x in &effective {
                if x.id != e.id {
                    self.apply_edit(&mut data, &x.kind)?;
                }
            }
            variants.push((e, key, data, cached));
        }
        let features_of = |d: &gyre_data::version::Materialized| crate::table_view::LoadedVersion {
            version: String::new(),
            schema: d.schema.clone(),
            data: d.clone(),
        };
        let jobs = jobs.unwrap_or(variants.len().max(1));
        let learn_task = with.learn_task();
        let seed = record.seed;
        // Retrain what is not cached, `jobs` at a time; fits share one thread pool.
        let mut fresh: Vec<Option<(Predictions, Vec<u8>)>> =
            (0..variants.len()).map(|_| None).collect();
        let todo: Vec<usize> = (0..variants.len())
            .filter(|&i| variants[i].3.is_none())
            .collect();
        for chunk in todo.chunks(jobs) {
            let out = std::thread::scope(|s| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|&i| {
                        let lv = features_of(&variants[i].2);
                        let learner = &learner;
                        // Each retrain on a thread of its own; the OS shares the cores.
                        let schema = &schema;
                        s.spawn(move || {
                            let features = lv.features();
                            let labels = lv.labels();
                            let train = lv.train_rows();
                            let holdout: Vec<u32> = (0..lv.splits().len() as u32)
                                .filter(|&r| lv.splits()[r as usize] == Split::Holdout)
                                .collect();
                            let model = gyre_learn::on_own_threads(1, || {
                                learner.fit(
                                    learn_task,
                                    &TrainSet {
                                        features: &features,
                                        rows: &train,
                                        labels: &labels,
                                        weights: lv.weights(),
                                    },
                                    seed,
                                    &NoProgress,
                                )
                            })?;
                            // The holdout prediction goes to the shared pool: the last retrain to
                            // finish would otherwise predict on one core while the other idles.
                            let ids = lv.row_ids();
                            let p = Predictions {
                                row_ids: holdout.iter().map(|&r| ids[r as usize].0).collect(),
                                labels: holdout.iter().map(|&r| labels[r as usize]).collect(),
                                scores: model.predict(&features, &holdout),
                            };
                            let bytes = predictions::to_parquet(&p, schema)?;
                            Ok::<_, AppError>((i, p, bytes))
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("a retrain does not panic"))
                    .collect::<Result<Vec<_>, _>>()
            })?;
            for (i, p, bytes) in out {
                fresh[i] = Some((p, bytes));
            }
        }

        // Compare each variant with the run, scored against the run's own labels.
        // Per suite (None: the whole holdout), its rows and the run's own side of each comparison,
        // prepared once for all variants.
        let suites_all = self.suites()?.suites;
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
                let base = Prepared::new(
                    task,
                    classes,
                    &labels,
                    &masked(&mask, &base_preds.scores, k),
                );
                (s, mask, labels, base)
            })
            .collect();
        let mut effects = Vec::new();
        let mut new_cache = Vec::new();
        for (i, (e, key, _, cached)) in variants.iter().enumerate() {
            let was_cached = cached.is_some();
            let without = match (cached, fresh[i].take()) {
                (Some(c), _) => Predictions {
                    row_ids: c.row_ids.clone(),
                    labels: c.labels.clone(),
                    scores: c.scores.clone(),
                },
                (None, Some((p, bytes))) => {
                    new_cache.push((key.clone(), bytes));
                    p
                }
                (None, None) => unreachable!("every variant is cached or retrained"),
            };
            let mut suites = Vec::new();
            let mut holdout_delta = None;
            for (s, mask, labels, base) in &sides {
                let b = Prepared::new(task, classes, labels, &masked(mask, &without.scores, k));
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
            effects.push(EditEffect {
                edit: e.id,
                kind: e.kind.name(),
                description: e.kind.describe(),
                why: e.why.clone(),
                metric_delta_without: holdout_delta.ok_or_else(|| {
                    AppError::invalid(format!("{primary} is undefined on this run's holdout"))
                })?,
                suites,
                cached: was_cached,
            });
        }
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
        Ok(AblateReport {
            run: record.id,
            version: record.version,
            primary_metric: primary,
            edits: effects,
        })
    }
}
