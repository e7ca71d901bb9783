//! `gyre label-issues RUN`: out-of-fold probabilities for every training row from K folds of the
//! run's own learner, params and seed (folds train in parallel), then confident learning
//! (gyre_eval::label_issues). Fold predictions are cached per version and learner spec. Each
//! result says whether its suspects can be told from hard rows (gyre_eval::label_reliability):
//! an unreliable one lists rows only when asked (`--top`) and opens no finding.

use crate::{App, AppError, now};
use gyre_core::rng::SplitMix64;
use gyre_core::{ContentHash, Task};
use gyre_eval::label_issues::find_label_issues;
use gyre_eval::label_reliability::{OofQuality, assess};
use gyre_learn::{NoProgress, TrainSet};
use gyre_store::NewJournalEntry;
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct LabelIssueRow {
    pub row: u64,
    pub given: String,
    pub suggested: String,
    pub confidence: f64,
    pub self_confidence: f64,
}

#[derive(Serialize)]
pub struct LabelIssuesReport {
    pub run: String,
    pub version: String,
    pub folds: usize,
    /// Training rows checked.
    pub rows: usize,
    /// How many rows confident learning flags (before `--top`).
    pub flagged: usize,
    /// Whether the flagged rows are likely label errors rather than rows the out-of-fold model
    /// is unsure of. When false, `issues` lists rows only when `--top` asks, and no finding
    /// is opened.
    pub reliable: bool,
    /// How many rows confident learning flags when every label is right and only as uncertain
    /// as the out-of-fold model believes (labels drawn from its probabilities; mean of three
    /// seeded draws).
    pub expected_issues: f64,
    /// Why the result is not reliable, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The out-of-fold model's quality, which the reliability check reads.
    pub oof_quality: Option<OofQuality>,
    /// True when the out-of-fold predictions came from the cache.
    pub cached: bool,
    pub issues: Vec<LabelIssueRow>,
    /// Findings this check opened or closed.
    pub findings: crate::findings::FindingChanges,
}

/// Learner params as stored (JSON with defaults) back to `name=value` pairs.
pub(crate) fn params_of(json: &serde_json::Value) -> Vec<(String, String)> {
    json.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let v = match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), v)
                })
                .collect()
        })
        .unwrap_or_default()
}

impl App {
    pub fn label_issues(
        &mut self,
        run: &str,
        folds: usize,
        top: Option<usize>,
    ) -> Result<LabelIssuesReport, AppError> {
        if folds < 2 {
            return Err(AppError::invalid(format!(
                "--folds must be at least 2 (cross-validation needs a held-out fold), got {folds}"
            )));
        }
        let record = self.resolve_run(run)?;
        let loaded = self.load_version(&record.dataset, Some(&record.version))?;
        if loaded.schema.task == Task::Regression {
            return Err(AppError::Invalid {
                message: format!(
                    "run {} is a regression; label issues need classes (confident learning compares class probabilities)",
                    record.id
                ),
                hint: Some("for regression, look at the largest errors: gyre slices RUN".into()),
            });
        }
        let k = loaded.schema.classes.len();
        let rows = loaded.train_rows();
        let labels = loaded.labels();
        let key = ContentHash::of_parts(&[
            b"gyre-oof-v1",
            record.version.as_bytes(),
            record.learner.as_bytes(),
            record.params.as_bytes(),
            &record.seed.to_le_bytes(),
            &(folds as u64).to_le_bytes(),
        ])
        .to_string();
        let cached = self.store.read(|tx| tx.cache(&key))?;
        let (probs, was_cached) = match cached.and_then(|o| ContentHash::parse(&o)) {
            Some(obj) => {
                let bytes = self.store.objects().get(&obj)?;
                let probs: Vec<f64> = bytes
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                    .collect();
                (probs, true)
            }
            None => {
                let params = params_of(&serde_json::from_str(&record.params).unwrap_or_default());
                let (learner, _) = self.learner(&record.learner, &params, &loaded.schema)?;
                let features = loaded.features();
                let task = loaded.learn_task();
                // Stratified folds from the run's seed.
                let mut fold_of = vec![0usize; rows.len()];
                let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); k];
                for (i, &r) in rows.iter().enumerate() {
                    by_class[labels[r as usize] as usize].push(i);
                }
                let mut rng = SplitMix64::new(record.seed ^ 0x6C62_272E_07BB_0142);
                for members in &mut by_class {
                    rng.shuffle(members);
                    for (j, &i) in members.iter().enumerate() {
                        fold_of[i] = j % folds;
                    }
                }
                // A command learner's folds are processes of their own: at most one per core
                // at a time. Built-in learners run every fold at once, each on one thread.
                let limit = if learner.name() == "command" {
                    std::thread::available_parallelism().map_or(1, |n| n.get())
                } else {
                    folds
                };
                let slots = (std::sync::Mutex::new(limit), std::sync::Condvar::new());
                let out = std::thread::scope(|s| {
                    let handles: Vec<_> = (0..folds)
                        .map(|f| {
                            let (rows, fold_of, features, labels) =
                                (&rows, &fold_of, &features, &labels);
                            let learner = &learner;
                            let weights = loaded.weights();
                            let slots = &slots;
                            // Each fold on a one-thread pool of its own (see ablate).
                            s.spawn(move || {
                                let mut free = slots.0.lock().expect("fold slots");
                                while *free == 0 {
                                    free = slots.1.wait(free).expect("fold slots");
                                }
                                *free -= 1;
                                drop(free);
                                let done = || {
                                    *slots.0.lock().expect("fold slots") += 1;
                                    slots.1.notify_one();
                                };
                                let result = gyre_learn::on_own_threads(1, || {
                                    let train: Vec<u32> = rows
                                        .iter()
                                        .zip(fold_of)
                                        .filter(|(_, g)| **g != f)
                                        .map(|(r, _)| *r)
                                        .collect();
                                    let held: Vec<usize> =
                                        (0..rows.len()).filter(|&i| fold_of[i] == f).collect();
                                    let held_rows: Vec<u32> =
                                        held.iter().map(|&i| rows[i]).collect();
                                    let (_, scores) = learner.fit_predict(
                                        task,
                                        &TrainSet {
                                            features,
                                            rows: &train,
                                            labels,
                                            weights,
                                        },
                                        record.seed,
                                        &held_rows,
                                        &NoProgress,
                                    )?;
                                    Ok::<_, gyre_learn::LearnError>((held, scores))
                                });
                                done();
                                result
                            })
                        })
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().expect("a fold does not panic"))
                        .collect::<Result<Vec<_>, _>>()
                })?;
                let mut probs = vec![0.0; rows.len() * k];
                for (held, scores) in out {
                    for (j, &i) in held.iter().enumerate() {
                        if task == gyre_learn::Task::Binary {
                            probs[i * k] = 1.0 - scores[j];
                            probs[i * k + 1] = scores[j];
                        } else {
                            probs[i * k..(i + 1) * k].copy_from_slice(&scores[j * k..(j + 1) * k]);
                        }
                    }
                }
                let bytes: Vec<u8> = probs.iter().flat_map(|p| p.to_le_bytes()).collect();
                let obj = self.store.objects().put(&bytes)?;
                let time = now();
                let (user, command) = (self.user.clone(), self.command.clone());
                self.store.write(|tx| {
                    tx.put_cache(&key, "out-of-fold", obj.as_str(), &time)?;
                    tx.append_journal(&NewJournalEntry {
                        time: &time,
                        user: &user,
                        command: &command,
                        why: None,
                        objects: &[format!("run:{}", record.id), format!("out-of-fold:{obj}")],
                    })
                })?;
                (probs, false)
            }
        };
        let given: Vec<usize> = rows.iter().map(|&r| labels[r as usize] as usize).collect();
        let est = find_label_issues(&given, &probs, k);
        let ids = loaded.row_ids();
        let flagged = est.issues.len();
        let mut flagged_rows: Vec<u64> = est
            .issues
            .iter()
            .map(|x| ids[rows[x.index] as usize])
            .collect();
        flagged_rows.sort_unstable();
        let judged = assess(&given, &probs, k, record.seed ^ 0x9E6C_63D0_676A_9A99);
        // Suspects that cannot be told from hard rows open no finding (and, being mostly hard
        // rows, say nothing about whether earlier findings were fixed).
        let findings = if judged.reliable {
            self.findings_after_label_issues(&record, &flagged_rows)?
        } else {
            Default::default()
        };
        let shown = match (judged.reliable, top) {
            (_, Some(n)) => n,
            (true, None) => usize::MAX,
            (false, None) => 0,
        };
        let classes = &loaded.schema.classes;
        let issues = est
            .issues
            .iter()
            .take(shown)
            .map(|x| LabelIssueRow {
                row: ids[rows[x.index] as usize],
                given: classes[x.given].clone(),
                suggested: classes[x.suggested].clone(),
                confidence: x.confidence,
                self_confidence: x.self_confidence,
            })
            .collect();
        Ok(LabelIssuesReport {
            run: record.id,
            version: record.version,
            folds,
            rows: rows.len(),
            flagged,
            reliable: judged.reliable,
            expected_issues: judged.expected_issues,
            reason: (!judged.reasons.is_empty()).then(|| judged.reasons.join("; ")),
            oof_quality: judged.quality,
            cached: was_cached,
            issues,
            findings,
        })
    }
}
