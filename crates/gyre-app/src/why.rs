//! `gyre why ROW`: a row's story: its values, every edit that touched it and why, its label
//! history, its predictions across runs (where they flipped), and why the champion (or a
//! run asked for) scored it as it did: each feature's contribution (`explain`).

use crate::explain::Explanation;
use crate::{App, AppError};
use gyre_core::{EditKind, Split};
use serde::Serialize;

#[derive(Serialize)]
pub struct RowEdit {
    pub edit: i64,
    pub kind: &'static str,
    pub description: String,
    pub effect: String,
    pub why: String,
    pub author: String,
    pub time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reverted_by: Option<i64>,
}

#[derive(Serialize)]
pub struct RowPrediction {
    pub run: String,
    pub created_at: String,
    pub learner: String,
    pub prediction: String,
    pub correct: Option<bool>,
    /// Right under the previous run and wrong under this one (negative), or the reverse.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flip: Option<&'static str>,
}

#[derive(Serialize)]
pub struct WhyReport {
    pub row: u64,
    pub dataset: String,
    pub split: Split,
    pub values: Vec<(String, String)>,
    pub label_history: Vec<String>,
    pub in_training: bool,
    pub weight: f64,
    pub edits: Vec<RowEdit>,
    pub predictions: Vec<RowPrediction>,
    /// The champion's (or the run asked for) breakdown of the row's score by feature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Explanation>,
    /// Why there is no explanation, when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation_note: Option<String>,
}

impl App {
    /// `run` names the run whose score is explained; by default the champion, or the latest
    /// run when the champion is on another dataset or there is none.
    pub fn why(
        &mut self,
        row: &str,
        dataset: Option<&str>,
        run: Option<&str>,
    ) -> Result<WhyReport, AppError> {
        let dataset = self.resolve_dataset(dataset)?;
        let latest = self.load_version(&dataset, None)?;
        let id = self.resolve_rows(&latest.data, &latest.schema, &[row.to_string()])?[0];
        let ids = latest.row_ids();
        let r = ids
            .binary_search(&id)
            .map_err(|_| AppError::invalid(format!("row {id} does not exist")))?;
        let batch = &latest.data.batch;
        let values: Vec<(String, String)> = latest
            .schema
            .columns
            .iter()
            .map(|c| {
                let a = batch
                    .column_by_name(&c.name)
                    .expect("schema column in table");
                (
                    c.name.clone(),
                    gyre_data::table::display_value(a.as_ref(), r),
                )
            })
            .collect();
        // The row may not exist yet early in the chain (an add-source brings it).
        let label_of = |d: &gyre_data::version::Materialized| {
            let a = d.batch.column_by_name(&d.schema.target).expect("target");
            (r < a.len()).then(|| gyre_data::table::display_value(a.as_ref(), r))
        };
        let state_of = |d: &gyre_data::version::Materialized| {
            (r < d.train_mask.len()).then(|| (d.train_mask[r], d.weight(r), label_of(d)))
        };

        // Replay every edit in order, noting what each did to this row.
        let all = self.edits_upto(&dataset, None)?;
        let mut state = self.base_table(&dataset)?;
        let mut label_history: Vec<String> = label_of(&state).into_iter().collect();
        let mut edits = Vec::new();
        for (i, e) in all.iter().enumerate() {
            let before = state_of(&state);
            if let EditKind::Revert { .. } = e.kind {
                let mut fresh = self.base_table(&dataset)?;
                for x in gyre_core::edit::effective(&all[..=i]) {
                    self.apply_edit(&mut fresh, &x.kind)?;
                }
                state = fresh;
            } else {
                self.apply_edit(&mut state, &e.kind)?;
            }
            let after = state_of(&state);
            let mut effect = Vec::new();
            match (before, after) {
                (None, Some((_, _, label))) => {
                    effect.push("added the row".to_string());
                    label_history.extend(label);
                }
                (Some(_), None) => effect.push("removed the row".to_string()),
                (Some(b), Some(a)) => {
                    if b.0 != a.0 {
                        effect.push(
                            if a.0 {
                                "back in training"
                            } else {
                                "left out of training"
                            }
                            .to_string(),
                        );
                    }
                    if b.1 != a.1 {
                        effect.push(format!("weight {} -> {}", b.1, a.1));
                    }
                    if b.2 != a.2 {
                        let (from, to) = (b.2.unwrap_or_default(), a.2.unwrap_or_default());
                        effect.push(format!("label {from} -> {to}"));
                        label_history.push(to);
                    }
                }
                (None, None) => {}
            }
            if effect.is_empty() {
                continue;
            }
            edits.push(RowEdit {
                edit: e.id,
                kind: e.kind.name(),
                description: e.kind.describe(),
                effect: effect.join("; "),
                why: e.why.clone(),
                author: e.author.clone(),
                time: e.time.clone(),
                reverted_by: all.iter().find_map(|x| match x.kind {
                    EditKind::Revert { edit } if edit == e.id => Some(x.id),
                    _ => None,
                }),
            });
        }

        // Predictions of every run on this dataset that predicted the row.
        let runs: Vec<_> = self
            .store
            .read(|tx| tx.runs())?
            .into_iter()
            .filter(|x| x.dataset == dataset)
            .collect();
        let classes = latest.schema.classes.clone();
        let truth = latest.labels()[r];
        let mut predictions: Vec<RowPrediction> = Vec::new();
        for run in &runs {
            let preds = self.run_predictions(run, &latest)?;
            let Some(i) = preds.row_ids.iter().position(|&x| x == id) else {
                continue;
            };
            let task = latest.schema.task;
            let k = crate::suites::outputs(task, classes.len());
            let s = &preds.scores[i * k..(i + 1) * k];
            let (prediction, correct) = if task.is_classification() {
                let kk = if task == gyre_core::Task::Binary {
                    2
                } else {
                    classes.len()
                };
                let c = gyre_eval::metrics::predicted_classes(task, kk, s)[0];
                (classes[c as usize].clone(), Some(f64::from(c) == truth))
            } else {
                (gyre_data::infer::format_number(s[0]), None)
            };
            let flip = match (predictions.last().and_then(|p| p.correct), correct) {
                (Some(true), Some(false)) => Some("negative"),
                (Some(false), Some(true)) => Some("positive"),
                _ => None,
            };
            predictions.push(RowPrediction {
                run: run.id.clone(),
                created_at: run.created_at.clone(),
                learner: run.learner.clone(),
                prediction,
                correct,
                flip,
            });
        }
        let (explanation, explanation_note) = match run {
            Some(name) => {
                let record = self.resolve_run(name)?;
                if record.dataset != dataset {
                    return Err(AppError::invalid(format!(
                        "run {} is on dataset {}, not {dataset}",
                        record.id, record.dataset
                    )));
                }
                (Some(self.explain_row(&record, id)?), None)
            }
            None => self.explain_by_default(&runs, id)?,
        };
        Ok(WhyReport {
            row: id,
            dataset,
            split: latest.splits()[r],
            values,
            label_history,
            in_training: latest.data.train_mask[r],
            weight: latest.data.weight(r),
            edits,
            predictions,
            explanation,
            explanation_note,
        })
    }

    /// The champion's explanation of a row, else the latest run's on the dataset (`runs`);
    /// a note instead when there is no run, or it cannot explain or does not hold the row.
    fn explain_by_default(
        &mut self,
        runs: &[gyre_store::RunRecord],
        row: u64,
    ) -> Result<(Option<Explanation>, Option<String>), AppError> {
        let champion = self.alias_target(crate::ship::CHAMPION)?;
        let record = runs
            .iter()
            .find(|x| Some(&x.id) == champion.as_ref())
            .or_else(|| runs.iter().max_by(|a, b| a.created_at.cmp(&b.created_at)));
        let Some(record) = record else {
            return Ok((None, Some("no run to explain the row yet".into())));
        };
        match self.explain_row(record, row) {
            Ok(e) => Ok((Some(e), None)),
            Err(AppError::Learn(e)) => Ok((None, Some(format!("run {}: {e}", record.id)))),
            Err(AppError::Invalid { message, .. }) => Ok((None, Some(message))),
            Err(e) => Err(e),
        }
    }
}
