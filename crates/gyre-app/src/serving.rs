//! A model ready to serve: the champion's (or any run's) model with the schema needed to turn
//! JSON rows into features: kinds checked per field, categories coded as in training, unseen
//! categories treated as missing and reported.

use crate::request_row::{FieldName, FieldValue, RequestRow};
use crate::{App, AppError};
use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray,
};
use arrow_schema::DataType;
use gyre_core::{ColumnKind, ContentHash, Task};
use gyre_data::infer::NaTokens;
use gyre_learn::{Column, Features, Model};
use gyre_store::StoreError;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::sync::Arc;

/// One feature as the server (and `gyre predict`) reads it from a request.
pub(crate) struct Field {
    pub(crate) name: FieldName,
    pub(crate) kind: ColumnKind,
    /// Category -> code, for categorical features.
    pub(crate) codes: FxHashMap<String, u32>,
    /// Derived by an add-feature edit: computed from the raw fields, never read from a request.
    pub(crate) derived: bool,
}

/// A raw column that derived features read: asked of every request (and every scored file)
/// with a value of its kind, whether or not it is a feature itself.
pub(crate) struct Input {
    pub(crate) name: FieldName,
    pub(crate) kind: ColumnKind,
}

pub struct ServingModel {
    pub run: String,
    pub task: Task,
    pub classes: Vec<String>,
    pub(crate) fields: Vec<Field>,
    /// The fields' names, shared with every request's feature table.
    pub(crate) names: std::sync::Arc<[String]>,
    pub(crate) model: Box<dyn Model>,
    /// The derived features of the run's version, in the order their edits made them.
    pub(crate) derivations: Vec<(String, gyre_core::Expr)>,
    /// The raw columns the derivations read.
    pub(crate) inputs: Vec<Input>,
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
    /// Derived features sent as fields: the server derives them from the raw fields itself, so
    /// the values sent were not used.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub derived: Vec<String>,
    /// Each feature's part in the score, when the request asked to `explain`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contributions: Option<crate::RowContributions>,
}

impl App {
    /// Loads a run's model and the schema of its version for serving.
    pub fn serving_model(&mut self, run: &str) -> Result<ServingModel, AppError> {
        let record = self.resolve_run(run)?;
        self.check_servable(&record)?;
        let loaded = self.load_version(&record.dataset, Some(&record.version))?;
        let object = ContentHash::parse(&record.model)
            .ok_or_else(|| StoreError::Corrupt(format!("bad model id in run {}", record.id)))?;
        let model = crate::external_model::load_model(&self.store.objects().get(&object)?)?;
        let derivations = loaded.data.derived.clone();
        let is_derived = |name: &str| derivations.iter().any(|(d, _)| d == name);
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
                derived: is_derived(&c.name),
            })
            .collect::<Vec<Field>>();
        let mut inputs: Vec<Input> = Vec::new();
        for (_, expr) in &derivations {
            for c in expr.columns() {
                if !is_derived(c) && !inputs.iter().any(|i| i.name.name == c) {
                    let kind = loaded
                        .schema
                        .column(c)
                        .map_or(ColumnKind::Numeric, |s| s.kind);
                    inputs.push(Input {
                        name: FieldName::new(c),
                        kind,
                    });
                }
            }
        }
        let names = fields.iter().map(|f| f.name.name.clone()).collect();
        let reference = self.drift_reference(&record.id)?;
        Ok(ServingModel {
            run: record.id,
            task: loaded.schema.task,
            classes: loaded.schema.classes.clone(),
            fields,
            names,
            model,
            derivations,
            inputs,
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
        self.predict_explained(rows, false)
    }

    /// [`Self::predict`], each answer with its features' contributions when `explain` (an
    /// error naming `explain` when the model cannot give them).
    pub fn predict_explained(
        &self,
        rows: &[RequestRow],
        explain: bool,
    ) -> Result<Vec<ServedPrediction>, FieldError> {
        let n = rows.len();
        let mut columns = Vec::with_capacity(self.fields.len());
        let mut unseen: Vec<Vec<String>> = vec![Vec::new(); n];
        let derived = if self.derivations.is_empty() {
            None
        } else {
            Some(
                self.derive(self.request_inputs(rows)?)
                    .map_err(|e| FieldError {
                        row: 0,
                        field: e.0,
                        error: e.1,
                    })?,
            )
        };
        for f in &self.fields {
            if f.derived {
                let batch = derived.as_ref().expect("derived features were derived");
                let array = batch.column_by_name(&f.name.name).expect("derived above");
                let (column, new) = code_column(f, array, &gyre_data::infer::NaTokens::default())
                    .map_err(|e| FieldError {
                    row: e.row,
                    field: f.name.name.clone(),
                    error: e.what,
                })?;
                for r in new {
                    unseen[r].push(f.name.name.clone());
                }
                columns.push(column);
                continue;
            }
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
        let mut contributions = self.contributions(&features, &all, explain)?;
        let k = self.outputs();
        Ok((0..n)
            .map(|r| {
                let (label, scores) = self.answer(&scores[r * k..(r + 1) * k]);
                ServedPrediction {
                    label,
                    scores,
                    unseen: std::mem::take(&mut unseen[r]),
                    ignored: self.ignored(&rows[r]),
                    derived: self.derived_sent(&rows[r]),
                    contributions: contributions.as_mut().and_then(|c| c[r].take()),
                }
            })
            .collect())
    }

    /// The raw inputs of the derivations, read from JSON rows into a table of their kinds.
    fn request_inputs(&self, rows: &[RequestRow]) -> Result<RecordBatch, FieldError> {
        let mut fields = Vec::with_capacity(self.inputs.len());
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.inputs.len());
        for input in &self.inputs {
            let bad = |r: usize, error: &str| FieldError {
                row: r,
                field: input.name.name.clone(),
                error: error.to_string(),
            };
            let mut values = Vec::with_capacity(rows.len());
            for (r, row) in rows.iter().enumerate() {
                values.push(row.get_named(&input.name).ok_or_else(|| {
                    bad(
                        r,
                        "missing (derived features are computed from it; send null for a \
                         missing value)",
                    )
                })?);
            }
            let array: ArrayRef = match input.kind {
                ColumnKind::Numeric => Arc::new(
                    values
                        .iter()
                        .enumerate()
                        .map(|(r, v)| match v {
                            FieldValue::Number(x) => Ok(Some(*x)),
                            FieldValue::Null => Ok(None),
                            _ => Err(bad(r, "expected a number or null")),
                        })
                        .collect::<Result<Float64Array, _>>()?,
                ),
                ColumnKind::Boolean => Arc::new(
                    values
                        .iter()
                        .enumerate()
                        .map(|(r, v)| match v {
                            FieldValue::Bool(b) => Ok(Some(*b)),
                            FieldValue::Null => Ok(None),
                            _ => Err(bad(r, "expected true, false or null")),
                        })
                        .collect::<Result<BooleanArray, _>>()?,
                ),
                ColumnKind::Categorical => Arc::new(
                    values
                        .iter()
                        .enumerate()
                        .map(|(r, v)| match v {
                            FieldValue::Text(s) => Ok(Some(s.to_string())),
                            FieldValue::Null => Ok(None),
                            _ => Err(bad(r, "expected a string or null")),
                        })
                        .collect::<Result<StringArray, _>>()?,
                ),
                ColumnKind::Time => Arc::new(
                    values
                        .iter()
                        .enumerate()
                        .map(|(r, v)| match v {
                            FieldValue::Text(s) => gyre_data::infer::parse_timestamp(s.trim())
                                .map(Some)
                                .ok_or_else(|| {
                                    bad(r, "expected a time such as \"2001-01-31T06:30\"")
                                }),
                            FieldValue::Null => Ok(None),
                            _ => Err(bad(r, "expected a time such as \"2001-01-31T06:30\"")),
                        })
                        .collect::<Result<TimestampNanosecondArray, _>>()?,
                ),
            };
            fields.push(arrow_schema::Field::new(
                &input.name.name,
                array.data_type().clone(),
                true,
            ));
            arrays.push(array);
        }
        RecordBatch::try_new_with_options(
            Arc::new(arrow_schema::Schema::new(fields)),
            arrays,
            &arrow_array::RecordBatchOptions::new().with_row_count(Some(rows.len())),
        )
        .map_err(|e| FieldError {
            row: 0,
            field: String::new(),
            error: e.to_string(),
        })
    }

    /// Adds the derived features to a table of their raw inputs, in edit order (a derived
    /// feature may read an earlier one), with gyre-data's evaluator, as training did. An error
    /// names the feature.
    pub(crate) fn derive(&self, mut batch: RecordBatch) -> Result<RecordBatch, (String, String)> {
        let n = batch.num_rows();
        for (name, expr) in &self.derivations {
            let values = gyre_data::derive::evaluate(expr, &batch)
                .map_err(|e| (name.clone(), format!("cannot derive it: {e}")))?;
            let (array, _, _) = gyre_data::derive::to_column(values, n);
            batch = gyre_data::derive::with_column(&batch, name, array)
                .map_err(|e| (name.clone(), e.to_string()))?;
        }
        Ok(batch)
    }

    /// Derived features a row sent as fields, sorted.
    fn derived_sent(&self, row: &RequestRow) -> Vec<String> {
        if self.derivations.is_empty() {
            return Vec::new();
        }
        let mut sent: Vec<String> = self
            .derivations
            .iter()
            .filter(|(d, _)| row.get(d).is_some())
            .map(|(d, _)| d.clone())
            .collect();
        sent.sort_unstable();
        sent
    }

    /// Every row's breakdown of its score, when asked to `explain`.
    fn contributions(
        &self,
        features: &Features,
        rows: &[u32],
        explain: bool,
    ) -> Result<Option<Vec<Option<crate::RowContributions>>>, FieldError> {
        if !explain {
            return Ok(None);
        }
        let c = self
            .model
            .contributions(features, rows)
            .map_err(|e| FieldError {
                row: 0,
                field: "explain".into(),
                error: e.to_string(),
            })?;
        let no_value = |_| None;
        Ok(Some(
            (0..rows.len())
                .map(|i| {
                    Some(crate::explain::row_contributions(
                        &c,
                        i,
                        &self.names,
                        self.task,
                        &self.classes,
                        no_value,
                    ))
                })
                .collect(),
        ))
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
        if self.derivations.is_empty() && row.field_count() == self.fields.len() {
            return Vec::new();
        }
        let mut extra: Vec<String> = row
            .names()
            .filter(|n| {
                !self.names.iter().any(|f| f == n) && !self.inputs.iter().any(|i| i.name.name == *n)
            })
            .map(String::from)
            .collect();
        extra.sort_unstable();
        extra
    }
}

/// A cell that does not fit its feature: its row in the batch and what is wrong.
pub(crate) struct BadCell {
    pub(crate) row: usize,
    pub(crate) what: String,
}

/// One column (of a file, or derived) as the model's feature, and the rows whose value was a
/// category never seen in training (read as missing).
pub(crate) fn code_column(
    f: &Field,
    array: &ArrayRef,
    na: &NaTokens,
) -> Result<(Column, Vec<usize>), BadCell> {
    let chunk = std::slice::from_ref(array);
    match f.kind {
        ColumnKind::Categorical => {
            let c = gyre_data::infer::to_categorical(chunk, na);
            let to_model: Vec<u32> = c
                .categories
                .iter()
                .map(|v| f.codes.get(v).copied().unwrap_or(u32::MAX))
                .collect();
            let keys = c
                .array
                .as_dictionary::<arrow_array::types::Int32Type>()
                .keys();
            let mut unseen = Vec::new();
            let codes: Vec<u32> = keys
                .iter()
                .enumerate()
                .map(|(r, k)| match k {
                    None => u32::MAX,
                    Some(k) => {
                        let code = to_model[k as usize];
                        if code == u32::MAX {
                            unseen.push(r);
                        }
                        code
                    }
                })
                .collect();
            Ok((
                Column::Categorical {
                    codes: codes.into(),
                    cardinality: f.codes.len() as u32,
                },
                unseen,
            ))
        }
        ColumnKind::Boolean => Ok((Column::Numeric(booleans(array, na)?.into()), Vec::new())),
        _ => {
            let c = gyre_data::infer::to_numeric(chunk, na).map_err(|b| BadCell {
                row: b.row,
                what: if b.row == 0 && b.value.starts_with("a ") {
                    format!("{} where the model expects numbers", b.value)
                } else {
                    format!("{:?} is not a number", b.value)
                },
            })?;
            let x = c.array.as_primitive::<Float64Type>();
            Ok((
                Column::Numeric(x.iter().map(|v| v.unwrap_or(f64::NAN)).collect()),
                Vec::new(),
            ))
        }
    }
}

/// A boolean feature: `true`/`false` (any case) or 1/0, as serving reads JSON booleans.
pub(crate) fn booleans(array: &ArrayRef, na: &NaTokens) -> Result<Vec<f64>, BadCell> {
    if let Some(b) = array.as_boolean_opt() {
        return Ok(b
            .iter()
            .map(|v| v.map_or(f64::NAN, |b| f64::from(u8::from(b))))
            .collect());
    }
    let text = arrow_cast::cast(array, &DataType::Utf8).map_err(|e| BadCell {
        row: 0,
        what: format!("cannot read as true or false: {e}"),
    })?;
    text.as_string::<i32>()
        .iter()
        .enumerate()
        .map(|(row, v)| match v.map(str::trim) {
            None => Ok(f64::NAN),
            Some(v) if na.is_missing(v) => Ok(f64::NAN),
            Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => Ok(1.0),
            Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => Ok(0.0),
            Some(v) => Err(BadCell {
                row,
                what: format!("{v:?} is not true or false"),
            }),
        })
        .collect()
}
