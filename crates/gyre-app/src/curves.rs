//! A run's pictures (ROC, precision-recall, reliability, confusion; regression: predicted against
//! actual and residuals), from its stored holdout predictions and the labels stored with them,
//! so they agree with the run's own metrics.

use crate::{App, AppError};
use gyre_core::Task;
use gyre_eval::curves::RunCurves;
use serde::Serialize;

#[derive(Serialize)]
pub struct CurvesReport {
    pub run: String,
    pub task: Task,
    /// Class names in order (the confusion matrix's rows and columns).
    pub classes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub positive_class: Option<String>,
    pub rows: usize,
    #[serde(flatten)]
    pub curves: RunCurves,
}

impl App {
    pub fn run_curves(&mut self, run: &str) -> Result<CurvesReport, AppError> {
        let record = self.resolve_run(run)?;
        let loaded = self.load_version(&record.dataset, Some(&record.version))?;
        let p = self.run_predictions(&record, &loaded)?;
        let schema = &loaded.schema;
        let classes = schema.classes.len();
        let scores = gyre_eval::Scores {
            task: schema.task,
            classes,
            labels: &p.labels,
            scores: &p.scores,
            weights: None,
        };
        Ok(CurvesReport {
            run: record.id.clone(),
            task: schema.task,
            classes: schema.classes.clone(),
            positive_class: (schema.task == Task::Binary)
                .then(|| schema.classes.get(schema.positive_index()).cloned())
                .flatten(),
            rows: p.row_ids.len(),
            curves: gyre_eval::curves::run_curves(&scores, schema.positive_index()),
        })
    }
}
