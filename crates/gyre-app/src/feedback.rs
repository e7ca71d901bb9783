//! Feedback becomes data: `gyre feedback import` turns the served rows that received a true
//! label into a new source of the champion's dataset (an `add-source` edit with its reason), ready
//! for the next `gyre train`. Each import takes the feedback that arrived since the last one; the
//! journal entry of the edit names the last feedback number it took (`feedback:N`).

use crate::edit::{EditReport, EditSpec};
use crate::{App, AppError};
use gyre_data::SplitSpec;
use serde::Serialize;
use std::collections::HashMap;

#[derive(Serialize)]
pub struct FeedbackImportReport {
    pub dataset: String,
    /// Feedback labels read (the latest label per prediction counts).
    pub feedback: usize,
    /// Rows added to the dataset.
    pub rows: usize,
    /// Feedback whose prediction is not in the log (lost in a crash, or from another project).
    pub unmatched: usize,
    pub edit: EditReport,
}

impl App {
    /// The last feedback number an earlier import took.
    fn feedback_imported_through(&mut self) -> Result<i64, AppError> {
        Ok(self
            .store
            .read(|tx| tx.journal())?
            .iter()
            .flat_map(|e| e.objects.iter())
            .filter_map(|o| o.strip_prefix("feedback:")?.parse::<i64>().ok())
            .max()
            .unwrap_or(0))
    }

    pub fn feedback_import(&mut self, why: Option<&str>) -> Result<FeedbackImportReport, AppError> {
        let why = crate::require_why(why, "a feedback import", None)?;
        let champion = self
            .alias_target(crate::ship::CHAMPION)?
            .ok_or_else(|| AppError::invalid("no champion yet: nothing was served"))?;
        let dataset = self.resolve_run(&champion)?.dataset;
        let after = self.feedback_imported_through()?;
        let log = self.log_to_read()?;
        let feedback = log.feedback(after)?;
        if feedback.is_empty() {
            return Err(AppError::invalid(
                "no new feedback since the last import (POST /v1/feedback sends labels)",
            ));
        }
        let through = feedback.last().map_or(after, |f| f.seq);
        // The latest label per prediction, in order of first arrival.
        let mut order = Vec::new();
        let mut latest: HashMap<gyre_store::PredictionId, &str> = HashMap::new();
        for f in &feedback {
            if latest.insert(f.id, f.label.as_str()).is_none() {
                order.push(f.id);
            }
        }
        // The labelled answers by id: only the log batches that can hold them are read.
        let served = log.answers(&order)?;
        drop(log);
        let current = self.load_version(&dataset, None)?;
        let schema = &current.schema;
        let (_, opts) = self.sources_and_options(&dataset)?;
        let split_column = match &opts.split {
            SplitSpec::Column { column } => Some(column.clone()),
            _ => None,
        };
        let missing = opts
            .na
            .as_ref()
            .and_then(|na| na.first().cloned())
            .unwrap_or_default();

        let path = self
            .store
            .objects()
            .temp_path()
            .with_extension("feedback.csv");
        let mut header: Vec<String> = schema.columns.iter().map(|c| c.name.clone()).collect();
        header.extend(split_column.iter().cloned());
        let mut out = csv::Writer::from_path(&path)
            .map_err(|e| AppError::invalid(format!("{}: {e}", path.display())))?;
        let csv_err = |e: csv::Error| AppError::invalid(format!("{}: {e}", path.display()));
        out.write_record(&header).map_err(csv_err)?;
        let (mut rows, mut unmatched) = (0, 0);
        for id in &order {
            let Some(record) = served.get(id) else {
                unmatched += 1;
                continue;
            };
            let values: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(record.features.get()).unwrap_or_default();
            let mut fields = Vec::with_capacity(header.len());
            for c in &schema.columns {
                let text = if c.name == schema.target {
                    latest[id].to_string()
                } else {
                    match values.get(&c.name) {
                        Some(serde_json::Value::String(s)) => s.clone(),
                        Some(serde_json::Value::Number(n)) => n.to_string(),
                        Some(serde_json::Value::Bool(b)) => b.to_string(),
                        _ if Some(&c.name) == schema.time_column.as_ref() => record.time.clone(),
                        _ if Some(&c.name) == schema.id_column.as_ref() => record.id.to_string(),
                        _ => missing.clone(),
                    }
                };
                fields.push(text);
            }
            if split_column.is_some() {
                fields.push("train".into());
            }
            out.write_record(&fields).map_err(csv_err)?;
            rows += 1;
        }
        out.flush()
            .map_err(|e| AppError::invalid(format!("{}: {e}", path.display())))?;
        drop(out);
        if rows == 0 {
            let _ = std::fs::remove_file(&path);
            return Err(AppError::invalid(format!(
                "none of the {} new feedback labels matches a logged prediction",
                order.len()
            )));
        }
        let edit = self.edit_noting(
            Some(&dataset),
            &EditSpec::AddSource {
                path: path.clone(),
                key: None,
            },
            Some(why),
            &[format!("feedback:{through}")],
        );
        let _ = std::fs::remove_file(&path);
        Ok(FeedbackImportReport {
            dataset,
            feedback: order.len(),
            rows,
            unmatched,
            edit: edit?,
        })
    }
}
