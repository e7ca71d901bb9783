//! `gyre label-issues RUN`: out-of-fold probabilities for every training row from K folds of the
//! run's own learner, params and seed (folds train in parallel), then confident learning
//! (gyre_eval::label_issues). Fold predictions are cached per version and learner spec. Each
//! result says whether its suspects can be told from hard rows (gyre_eval::label_reliability):
//! an unreliable one lists rows only when asked (`--top`) and opens no finding.

use crate::units::Unit;
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
                let task = loaded.learn_task();
                let out = match self.executor.clone() {
                    crate::units::Executor::Remote(remote) => {
                        let units: Vec<Unit> = (0..folds)
                            .map(|fold| Unit::Fold {
                                run: record.id.clone(),
                                folds,
                                fold,
                            })
                            .collect();
                        let label = format!("label-issues of run {}", &record.id[..12]);
                        self.run_remote(
                            remote.as_ref(),
                            &label,
                            &units,
                            &*self.unit_progress.clone(),
                        )?
                        .iter()
                        .zip(&units)
                        .map(|(b, u)| decode_fold(b, &u.describe()))
                        .collect::<Result<Vec<_>, _>>()?
                    }
                    crate::units::Executor::Local => {
                        let params =
                            params_of(&serde_json::from_str(&record.params).unwrap_or_default());
                        let (learner, _) =
                            self.learner(&record.learner, &params, &loaded.schema)?;
                        let features = loaded.features();
                        let fold_of = fold_assignment(&rows, &labels, k, folds, record.seed);
                        // A command learner's folds are processes of their own: at most one per
                        // core at a time. Built-in learners run every fold at once, each on one
                        // thread.
                        let limit = if learner.name() == "command" {
                            std::thread::available_parallelism().map_or(1, |n| n.get())
                        } else {
                            folds
                        };
                        let slots = (std::sync::Mutex::new(limit), std::sync::Condvar::new());
                        std::thread::scope(|s| {
                            let handles: Vec<_> = (0..folds)
                                .map(|f| {
                                    let fold = FoldInputs {
                                        learner: learner.as_ref(),
                                        task,
                                        features: &features,
                                        rows: &rows,
                                        fold_of: &fold_of,
                                        labels: &labels,
                                        weights: loaded.weights(),
                                        seed: record.seed,
                                    };
                                    let slots = &slots;
                                    s.spawn(move || {
                                        let mut free = slots.0.lock().expect("fold slots");
                                        while *free == 0 {
                                            free = slots.1.wait(free).expect("fold slots");
                                        }
                                        *free -= 1;
                                        drop(free);
                                        let result = fold.fit(f);
                                        *slots.0.lock().expect("fold slots") += 1;
                                        slots.1.notify_one();
                                        result
                                    })
                                })
                                .collect();
                            handles
                                .into_iter()
                                .map(|h| h.join().expect("a fold does not panic"))
                                .collect::<Result<Vec<_>, _>>()
                        })?
                    }
                };
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

/// Stratified folds from the run's seed: the fold of each training row (by its position in
/// `rows`).
pub(crate) fn fold_assignment(
    rows: &[u32],
    labels: &[f64],
    classes: usize,
    folds: usize,
    seed: u64,
) -> Vec<usize> {
    let mut fold_of = vec![0usize; rows.len()];
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, &r) in rows.iter().enumerate() {
        by_class[labels[r as usize] as usize].push(i);
    }
    let mut rng = SplitMix64::new(seed ^ 0x6C62_272E_07BB_0142);
    for members in &mut by_class {
        rng.shuffle(members);
        for (j, &i) in members.iter().enumerate() {
            fold_of[i] = j % folds;
        }
    }
    fold_of
}

/// What every fold's fit reads.
#[derive(Clone, Copy)]
pub(crate) struct FoldInputs<'a> {
    pub learner: &'a dyn gyre_learn::Learner,
    pub task: gyre_learn::Task,
    pub features: &'a gyre_learn::Features,
    pub rows: &'a [u32],
    pub fold_of: &'a [usize],
    pub labels: &'a [f64],
    pub weights: Option<&'a [f64]>,
    pub seed: u64,
}

impl FoldInputs<'_> {
    /// Fits on every fold but `f`, on one thread of its own (see ablate), and scores fold `f`:
    /// the positions in `rows` of its rows, and their scores.
    pub(crate) fn fit(&self, f: usize) -> Result<(Vec<usize>, Vec<f64>), gyre_learn::LearnError> {
        gyre_learn::on_own_threads(1, || {
            let train: Vec<u32> = self
                .rows
                .iter()
                .zip(self.fold_of)
                .filter(|(_, g)| **g != f)
                .map(|(r, _)| *r)
                .collect();
            let held: Vec<usize> = (0..self.rows.len())
                .filter(|&i| self.fold_of[i] == f)
                .collect();
            let held_rows: Vec<u32> = held.iter().map(|&i| self.rows[i]).collect();
            let (_, scores) = self.learner.fit_predict(
                self.task,
                &TrainSet {
                    features: self.features,
                    rows: &train,
                    labels: self.labels,
                    weights: self.weights,
                },
                self.seed,
                &held_rows,
                &NoProgress,
            )?;
            Ok((held, scores))
        })
    }
}

/// A fold's result as a unit stores it: the count of held rows (u64), their positions (u64
/// each), then their scores (f64 each), little-endian.
pub(crate) fn encode_fold(held: &[usize], scores: &[f64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + held.len() * 8 + scores.len() * 8);
    out.extend((held.len() as u64).to_le_bytes());
    for &i in held {
        out.extend((i as u64).to_le_bytes());
    }
    for s in scores {
        out.extend(s.to_le_bytes());
    }
    out
}

fn decode_fold(bytes: &[u8], what: &str) -> Result<(Vec<usize>, Vec<f64>), AppError> {
    let bad = || AppError::invalid(format!("the stored result of {what} is malformed"));
    let words: Vec<[u8; 8]> = bytes
        .chunks(8)
        .map(|c| c.try_into().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let n = u64::from_le_bytes(*words.first().ok_or_else(bad)?) as usize;
    if words.len() < 1 + n {
        return Err(bad());
    }
    let held = words[1..1 + n]
        .iter()
        .map(|w| u64::from_le_bytes(*w) as usize)
        .collect();
    let scores = words[1 + n..]
        .iter()
        .map(|w| f64::from_le_bytes(*w))
        .collect();
    Ok((held, scores))
}

impl App {
    /// A `label-issues` fold as a unit of its own (`gyre worker`).
    pub(crate) fn fold_unit(
        &mut self,
        run: &str,
        folds: usize,
        fold: usize,
    ) -> Result<Vec<u8>, AppError> {
        let record = self.resolve_run(run)?;
        if fold >= folds {
            return Err(AppError::invalid(format!(
                "fold {fold} of {folds} does not exist"
            )));
        }
        let loaded = self.load_version(&record.dataset, Some(&record.version))?;
        let k = loaded.schema.classes.len();
        let rows = loaded.train_rows();
        let labels = loaded.labels();
        let params = params_of(&serde_json::from_str(&record.params).unwrap_or_default());
        let (learner, _) = self.learner(&record.learner, &params, &loaded.schema)?;
        let features = loaded.features();
        let fold_of = fold_assignment(&rows, &labels, k, folds, record.seed);
        let (held, scores) = FoldInputs {
            learner: learner.as_ref(),
            task: loaded.learn_task(),
            features: &features,
            rows: &rows,
            fold_of: &fold_of,
            labels: &labels,
            weights: loaded.weights(),
            seed: record.seed,
        }
        .fit(fold)?;
        Ok(encode_fold(&held, &scores))
    }
}
