//! A model ready to serve: the champion's (or any run's) model with the schema needed to turn
//! JSON rows into features: kinds checked per field, categories coded as in training, unseen
//! categories treated as missing and reported.

use crate::request_row::{FieldName, FieldValue, RequestRow};
use crate::{App, AppError};
use gyre_core::{ColumnKind, ContentHash, Task};
use gyre_learn::{Column, Features, Model};
use gyre_store::StoreError;
use rustc_hash::FxHashMap;
use serde::Serialize;

/// One feature as the server (and `gyre predict`) reads it from a request.
pub(crate) struct Field {
    pub(crate) name: FieldName,
    pub(crate) kind: ColumnKind,
    /// Category -> code, for categorical features.
    pub(crate) codes: FxHashMap<String, u32>,
}

pub struct ServingModel {
    pub run: String,
    pub task: Task,
    pub classes: Vec<String>,
    pub(crate) fields: Vec<Field>,
    /// The fields' names, shared with every request's feature table.
    pub(crate) names: std::sync::Arc<[String]>,
    pub(crate) model: Box<dyn Model>,
    /// The training distributions the served inputs are watched against.
    pub reference: crate::DriftReference,
}

/// A request row that does not fit the schema: the field and what is wrong.
#[derive(Debug, Serialize)]
pub struct FieldError {
    pub row: usize,
    pub field: String,
    pub error: String,
}

#[derive(Debug, Serialize, Clone)]
pub struct ServedPrediction {
    pub label: String,
    pub scores: Vec<f64>,
    /// Categorical fields whose value was never seen in training (treated as missing).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unseen: Vec<String>,
    /// Fields sent that are not features of the model (the target, an id, a dropped feature, a
    /// typo), sorted: not used, and said so.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<String>,
}

impl App {
    /// Loads a run's model and the schema of its version for serving.
    pub fn serving_model(&mut self, run: &str) -> Result<ServingModel, AppError> {
        let record = self.resolve_run(run)?;
        let loaded = self.load_version(&record.dataset, Some(&record.version))?;
        let object = ContentHash::parse(&record.model)
            .ok_or_else(|| StoreError::Corrupt(format!("bad model id in run {}", record.id)))?;
        let model = gyre_learn::load_model(&self.store.objects().get(&object)?)?;
        let fields = loaded
            .schema
            .features()
            .filter(|c| loaded.data.is_feature(&c.name))
            .map(|c| Field {
                name: FieldName::new(&c.name),
                kind: c.kind,
                codes: c
                    .categories
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (v.clone(), i as u32))
                    .collect(),
            })
            .collect::<Vec<Field>>();
        let names = fields.iter().map(|f| f.name.name.clone()).collect();
        let reference = self.drift_reference(&record.id)?;
        Ok(ServingModel {
            run: record.id,
            task: loaded.schema.task,
            classes: loaded.schema.classes.clone(),
            fields,
            names,
            model,
            reference,
        })
    }

    /// The run a reference (alias, id or unique prefix) names now.
    pub fn run_id(&mut self, reference: &str) -> Result<String, AppError> {
        Ok(self.resolve_run(reference)?.id)
    }
}

impl ServingModel {
    /// A feedback label in the form the log keeps: a known class, or a number for regression.
    pub fn check_label(&self, label: &serde_json::Value) -> Result<String, String> {
        match (self.task, label) {
            (Task::Regression, serde_json::Value::Number(x)) => Ok(x.to_string()),
            (Task::Regression, serde_json::Value::String(s)) if s.trim().parse::<f64>().is_ok() => {
                Ok(s.trim().to_string())
            }
            (Task::Regression, _) => Err("expected a number".into()),
            (_, serde_json::Value::String(s)) if self.classes.contains(s) => Ok(s.clone()),
            (_, serde_json::Value::String(s)) => Err(format!(
                "unknown class {s:?}; the classes are {}",
                self.classes.join(", ")
            )),
            (_, _) => Err(format!("expected one of {}", self.classes.join(", "))),
        }
    }

    /// Predicts JSON rows: every feature must be present (null means missing), with a value of
    /// its kind: a number, a string (categorical) or a boolean.
    pub fn predict(&self, rows: &[RequestRow]) -> Result<Vec<ServedPrediction>, FieldError> {
        let n = rows.len();
        let mut columns = Vec::with_capacity(self.fields.len());
        let mut unseen: Vec<Vec<String>> = vec![Vec::new(); n];
        for f in &self.fields {
            let mut nums = Vec::new();
            let mut codes = Vec::new();
            for (r, row) in rows.iter().enumerate() {
                let bad = |error: &str| FieldError {
                    row: r,
                    field: f.name.name.clone(),
                    error: error.to_string(),
                };
                let v = row
                    .get_named(&f.name)
                    .ok_or_else(|| bad("missing (send null for a missing value)"))?;
                match (f.kind, v) {
                    (ColumnKind::Categorical, FieldValue::Null) => codes.push(u32::MAX),
                    (ColumnKind::Categorical, FieldValue::Text(s)) => match f.codes.get(&**s) {
                        Some(&c) => codes.push(c),
                        None => {
                            unseen[r].push(f.name.name.clone());
                            codes.push(u32::MAX);
                        }
                    },
                    (ColumnKind::Categorical, _) => return Err(bad("expected a string or null")),
                    (ColumnKind::Boolean, FieldValue::Bool(b)) => {
                        nums.push(f64::from(u8::from(*b)))
                    }
                    (ColumnKind::Boolean, FieldValue::Null) => nums.push(f64::NAN),
                    (ColumnKind::Boolean, _) => return Err(bad("expected true, false or null")),
                    (_, FieldValue::Number(x)) => nums.push(*x),
                    (_, FieldValue::Null) => nums.push(f64::NAN),
                    (_, _) => return Err(bad("expected a number or null")),
                }
            }
            columns.push(if f.kind == ColumnKind::Categorical {
                Column::Categorical {
                    codes: codes.into(),
                    cardinality: f.codes.len() as u32,
                }
            } else {
                Column::Numeric(nums.into())
            });
        }
        let features = Features {
            names: self.names.clone(),
            columns,
            rows: n,
        };
        let all: Vec<u32> = (0..n as u32).collect();
        let scores = self.model.predict(&features, &all);
        let k = self.outputs();
        Ok((0..n)
            .map(|r| {
                let (label, scores) = self.answer(&scores[r * k..(r + 1) * k]);
                ServedPrediction {
                    label,
                    scores,
                    unseen: std::mem::take(&mut unseen[r]),
                    ignored: self.ignored(&rows[r]),
                }
            })
            .collect())
    }

    /// How many values the model gives per row.
    pub(crate) fn outputs(&self) -> usize {
        crate::suites::outputs(self.task, self.classes.len())
    }

    /// A row's answer from the model's outputs `s`: the label and the scores (per class, in the
    /// classes' order; the value for regression). Serving and `gyre predict` both answer here.
    pub(crate) fn answer(&self, s: &[f64]) -> (String, Vec<f64>) {
        match self.task {
            Task::Regression => (gyre_data::infer::format_number(s[0]), vec![s[0]]),
            Task::Binary => (
                self.classes[usize::from(s[0] >= 0.5)].clone(),
                crate::monitor::served_scores(self.task, s),
            ),
            Task::Multiclass => {
                let c = gyre_eval::metrics::predicted_classes(self.task, s.len(), s)[0];
                (self.classes[c as usize].clone(), s.to_vec())
            }
        }
    }

    /// A row's fields that are not features. Every feature was found in the row, so a row with
    /// as many fields as there are features has none (the common case, checked first).
    fn ignored(&self, row: &RequestRow) -> Vec<String> {
        if row.field_count() == self.fields.len() {
            return Vec::new();
        }
        let mut extra: Vec<String> = row
            .names()
            .filter(|n| !self.names.iter().any(|f| f == n))
            .map(String::from)
            .collect();
        extra.sort_unstable();
        extra
    }
}
