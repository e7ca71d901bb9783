//! Why a model scored a row as it did: each feature's contribution to the row's raw score
//! (TreeSHAP, in gyre-learn) for `gyre why` and for served predictions asked to `explain`, and,
//! averaged in magnitude over a run's holdout, the global importance `gyre show` lists.

use crate::table_view::LoadedVersion;
use crate::{App, AppError};
use gyre_core::{ContentHash, Split, Task};
use gyre_learn::{Contributions, Model};
use gyre_store::{RunRecord, StoreError};
use serde::{Deserialize, Serialize};

/// Holdout rows past which importance is averaged over a sample of this many.
pub const IMPORTANCE_ROWS: usize = 2000;
/// The sample's seed: the same run always lists the same importance.
pub const IMPORTANCE_SEED: u64 = 20;

/// One feature's part in a row's raw score.
#[derive(Clone, Debug, Serialize)]
pub struct FeatureContribution {
    pub feature: String,
    /// The row's value, as stored (absent in served answers: the request holds it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub contribution: f64,
}

/// One row's raw score broken down by feature: `base` plus every contribution is `raw_score`.
#[derive(Clone, Debug, Serialize)]
pub struct RowContributions {
    /// The class whose score is broken down: the positive class (binary) or the predicted one
    /// (multiclass); absent for regression.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// What the numbers are in: "log-odds", "logit" or "value".
    pub scale: &'static str,
    /// The expected raw score over the training rows: where every row starts.
    pub base: f64,
    pub raw_score: f64,
    /// Every feature, largest |contribution| first.
    pub features: Vec<FeatureContribution>,
}

/// `gyre why`'s answer to "why this prediction": a run's breakdown of the row's score.
#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    pub run: String,
    /// The run's answer for the row: a class or a value.
    pub prediction: String,
    /// The probability of `prediction` (classification).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    #[serde(flatten)]
    pub contributions: RowContributions,
}

/// A feature's mean |contribution| over the rows averaged.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FeatureImportance {
    pub feature: String,
    pub mean_abs_contribution: f64,
}

/// Global importance: per feature, the mean |contribution| to the raw score over a run's
/// holdout rows (for multiclass, each row's |contributions| summed over the classes).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Importance {
    pub scale: String,
    /// Holdout rows averaged over: all of them, or a sample drawn with `sample_seed`.
    pub rows: usize,
    pub holdout_rows: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_seed: Option<u64>,
    /// Largest first.
    pub features: Vec<FeatureImportance>,
}

fn scale(task: Task) -> &'static str {
    match task {
        Task::Binary => "log-odds",
        Task::Multiclass => "logit",
        Task::Regression => "value",
    }
}

/// Row `i`'s breakdown of one output: the positive class for binary, the class with the
/// largest raw score for multiclass. `value(f)` is the row's value of feature `f`, if shown.
pub(crate) fn row_contributions(
    c: &Contributions,
    i: usize,
    names: &[String],
    task: Task,
    classes: &[String],
    value: impl Fn(usize) -> Option<String>,
) -> RowContributions {
    let raw: Vec<f64> = (0..c.outputs)
        .map(|o| c.base[o] + c.row(i, o).iter().sum::<f64>())
        .collect();
    let (output, class) = match task {
        Task::Regression => (0, None),
        Task::Binary => (0, classes.get(1).cloned()),
        Task::Multiclass => {
            let o = (0..raw.len()).fold(0, |b, o| if raw[o] > raw[b] { o } else { b });
            (o, classes.get(o).cloned())
        }
    };
    let mut features: Vec<FeatureContribution> = c
        .row(i, output)
        .iter()
        .enumerate()
        .map(|(f, &contribution)| FeatureContribution {
            feature: names[f].clone(),
            value: value(f),
            contribution,
        })
        .collect();
    features.sort_by(|a, b| b.contribution.abs().total_cmp(&a.contribution.abs()));
    RowContributions {
        class,
        scale: scale(task),
        base: c.base[output],
        raw_score: raw[output],
        features,
    }
}

impl App {
    /// A run's fitted model, read from its object.
    pub(crate) fn run_model(&mut self, record: &RunRecord) -> Result<Box<dyn Model>, AppError> {
        let object = ContentHash::parse(&record.model)
            .ok_or_else(|| StoreError::Corrupt(format!("bad model id in run {}", record.id)))?;
        Ok(crate::external_model::load_model(
            &self.store.objects().get(&object)?,
        )?)
    }

    /// A run's breakdown of one row's score (the row by id, in the run's own version).
    pub(crate) fn explain_row(
        &mut self,
        record: &RunRecord,
        row: u64,
    ) -> Result<Explanation, AppError> {
        let loaded = self.load_version(&record.dataset, Some(&record.version))?;
        let r = loaded.row_ids().binary_search(&row).map_err(|_| {
            AppError::invalid(format!(
                "row {row} is not in the version run {} trained on",
                &record.id
            ))
        })?;
        let model = self.run_model(record)?;
        let features = loaded.features();
        let c = model.contributions(&features, &[r as u32])?;
        let scores = model.predict(&features, &[r as u32]);
        let task = loaded.schema.task;
        let classes = &loaded.schema.classes;
        let batch = &loaded.data.batch;
        let value = |f: usize| {
            let a = batch.column_by_name(&features.names[f])?;
            Some(gyre_data::table::display_value(a.as_ref(), r))
        };
        let contributions = row_contributions(&c, 0, &features.names, task, classes, value);
        let (prediction, probability) = match task {
            Task::Regression => (gyre_data::infer::format_number(scores[0]), None),
            Task::Binary => {
                let positive = scores[0] >= 0.5;
                let p = if positive { scores[0] } else { 1.0 - scores[0] };
                (classes[usize::from(positive)].clone(), Some(p))
            }
            Task::Multiclass => {
                let c = classes
                    .iter()
                    .position(|x| Some(x) == contributions.class.as_ref())
                    .unwrap_or(0);
                (classes[c].clone(), Some(scores[c]))
            }
        };
        Ok(Explanation {
            run: record.id.clone(),
            prediction,
            probability,
            contributions,
        })
    }

    /// Mean |contribution| per feature over the run's holdout rows, or over a fixed sample of
    /// [`IMPORTANCE_ROWS`] of them when there are more (TreeSHAP costs about a thousand
    /// predictions a row).
    pub(crate) fn importance(&mut self, record: &RunRecord) -> Result<Importance, AppError> {
        // A run never changes, so neither does its importance: computed once, then read back
        // (the web UI's run page shows it on every visit).
        let key = format!(
            "importance:v1:{}:{IMPORTANCE_ROWS}:{IMPORTANCE_SEED}",
            record.id
        );
        if let Some(object) = self.store.read(|tx| tx.cache(&key))?
            && let Some(id) = ContentHash::parse(&object)
            && let Ok(bytes) = self.store.objects().get(&id)
            && let Ok(cached) = serde_json::from_slice::<Importance>(&bytes)
        {
            return Ok(cached);
        }
        let importance = self.compute_importance(record)?;
        let bytes = serde_json::to_vec(&importance).expect("importance serializes");
        self.keep_cache(&key, "importance", &bytes)?;
        Ok(importance)
    }

    fn compute_importance(&mut self, record: &RunRecord) -> Result<Importance, AppError> {
        let model = self.run_model(record)?;
        let loaded = self.load_version(&record.dataset, Some(&record.version))?;
        let (rows, holdout_rows, sample_seed) = importance_rows(&loaded);
        let features = loaded.features();
        let c = model.contributions(&features, &rows)?;
        let mut sums = vec![0.0; c.features];
        for i in 0..rows.len() {
            for o in 0..c.outputs {
                for (s, v) in sums.iter_mut().zip(c.row(i, o)) {
                    *s += v.abs();
                }
            }
        }
        let n = rows.len().max(1) as f64;
        let mut features: Vec<FeatureImportance> = sums
            .iter()
            .zip(features.names.iter())
            .map(|(s, name)| FeatureImportance {
                feature: name.clone(),
                mean_abs_contribution: s / n,
            })
            .collect();
        features.sort_by(|a, b| b.mean_abs_contribution.total_cmp(&a.mean_abs_contribution));
        Ok(Importance {
            scale: scale(loaded.schema.task).to_string(),
            rows: rows.len(),
            holdout_rows,
            sample_seed,
            features,
        })
    }
}

/// The holdout rows importance averages over (in table order), how many holdout rows there
/// are, and the sample's seed when they are a sample.
fn importance_rows(loaded: &LoadedVersion) -> (Vec<u32>, usize, Option<u64>) {
    let mut rows: Vec<u32> = (0..loaded.splits().len() as u32)
        .filter(|&r| loaded.splits()[r as usize] == Split::Holdout)
        .collect();
    let all = rows.len();
    if all <= IMPORTANCE_ROWS {
        return (rows, all, None);
    }
    gyre_core::rng::SplitMix64::new(IMPORTANCE_SEED).shuffle(&mut rows);
    rows.truncate(IMPORTANCE_ROWS);
    rows.sort_unstable();
    (rows, all, Some(IMPORTANCE_SEED))
}
