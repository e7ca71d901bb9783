//! `gyre predict RUN FILE --out FILE`: scores a CSV or Parquet file offline with any run, a
//! batch at a time, so a file larger than memory works. Rows are read with the checks serving
//! makes (every feature present, a value of its kind, unseen categories treated as missing and
//! counted) and answered by the same rule ([`ServingModel::answer`]), so a file scored here and
//! the same rows sent to `gyre serve` give the same numbers.

use crate::serving::{BadCell, ServingModel, booleans, code_column};
use crate::{App, AppError};
use arrow_array::{ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field as ArrowField, Schema};
use gyre_core::{ColumnKind, Task};
use gyre_data::infer::NaTokens;
use gyre_data::output::{OutputFormat, TableWriter};
use gyre_data::{DataError, input};
use gyre_learn::Features;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What to score and where to write it.
pub struct PredictFileRequest<'a> {
    /// A run: id, unique prefix, alias or `latest`.
    pub run: &'a str,
    pub input: &'a Path,
    /// `.csv` or `.parquet`.
    pub out: &'a Path,
    /// Input columns copied into the output before the predictions (an id, say).
    pub keep: &'a [String],
}

#[derive(Debug, Serialize)]
pub struct PredictFileReport {
    pub run: String,
    pub input: PathBuf,
    pub out: PathBuf,
    pub format: &'static str,
    pub rows: usize,
    /// The classes, in the order of the output's `score_<class>` columns (empty for regression).
    pub classes: Vec<String>,
    /// How many rows got each label (classification).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub predicted: BTreeMap<String, usize>,
    /// Per categorical feature, the rows whose value was never seen in training (read as missing).
    pub unseen: BTreeMap<String, usize>,
    /// Input columns that are not features of the run's model (the target, an id...): not used.
    pub ignored: Vec<String>,
    pub kept: Vec<String>,
    pub seconds: f64,
}

impl App {
    /// Scores `req.input` with a run's model into `req.out`, written whole or not at all.
    /// `on_rows` hears the running count of rows scored.
    pub fn predict_file(
        &mut self,
        req: &PredictFileRequest<'_>,
        on_rows: &dyn Fn(usize),
    ) -> Result<PredictFileReport, AppError> {
        let t0 = std::time::Instant::now();
        let format = OutputFormat::of(req.out)?;
        let model = self.serving_model(req.run)?;
        let batches = input::batches(req.input)?;
        let column_of = |name: &str| batches.names.iter().position(|n| n == name);
        // Each feature's column in the file; derived features are computed from their inputs.
        let mut features: Vec<Option<usize>> = Vec::with_capacity(model.fields.len());
        let mut missing = Vec::new();
        for f in &model.fields {
            match column_of(&f.name.name) {
                _ if f.derived => features.push(None),
                Some(i) => features.push(Some(i)),
                None => missing.push(f.name.name.clone()),
            }
        }
        let mut inputs = Vec::with_capacity(model.inputs.len());
        for input in &model.inputs {
            match column_of(&input.name.name) {
                Some(i) => inputs.push(i),
                None => missing.push(input.name.name.clone()),
            }
        }
        if !missing.is_empty() {
            let suggestion = gyre_core::closest(&missing[0], batches.names.iter().map(|s| &**s))
                .map(String::from);
            return Err(AppError::Invalid {
                message: format!(
                    "{}: the run's model needs the feature{} {} (not in the file{})",
                    req.input.display(),
                    if missing.len() > 1 { "s" } else { "" },
                    missing
                        .iter()
                        .map(|m| format!("\"{m}\""))
                        .collect::<Vec<_>>()
                        .join(", "),
                    suggestion
                        .map(|s| format!("; did you mean \"{s}\"?"))
                        .unwrap_or_default()
                ),
                hint: Some(
                    "a missing value is an empty cell (CSV) or a null (Parquet); every feature \
                     needs its column"
                        .into(),
                ),
            });
        }
        let mut kept = Vec::with_capacity(req.keep.len());
        for k in req.keep {
            let i = column_of(k).ok_or_else(|| {
                AppError::from(DataError::UnknownColumn {
                    path: req.input.into(),
                    name: k.clone(),
                    suggestion: gyre_core::closest(k, batches.names.iter().map(|s| &**s))
                        .map(String::from),
                })
            })?;
            kept.push(i);
        }
        let ignored: Vec<String> = batches
            .names
            .iter()
            .enumerate()
            .filter(|(i, _)| {
                !features.contains(&Some(*i)) && !inputs.contains(i) && !kept.contains(i)
            })
            .map(|(_, n)| n.clone())
            .collect();

        let na = NaTokens::default();
        let mut writer: Option<TableWriter> = None;
        let mut rows = 0usize;
        let mut unseen: BTreeMap<String, usize> = BTreeMap::new();
        let mut predicted: BTreeMap<String, usize> = BTreeMap::new();
        let format_of = batches.format;
        for batch in batches {
            let batch = batch?;
            let n = batch.num_rows();
            let at = |row: usize| input::location_of(format_of, rows + row);
            let derived = if model.derivations.is_empty() {
                None
            } else {
                let raw = file_inputs(&model, &batch, &inputs, &na).map_err(|(name, e)| {
                    AppError::from(DataError::BadValue {
                        path: req.input.into(),
                        location: format!("{}, column \"{name}\"", at(e.row)),
                        what: e.what,
                    })
                })?;
                Some(model.derive(raw).map_err(|(name, e)| AppError::Invalid {
                    message: format!("{}: feature \"{name}\": {e}", req.input.display()),
                    hint: None,
                })?)
            };
            let mut columns = Vec::with_capacity(features.len());
            for (f, i) in model.fields.iter().zip(&features) {
                let array = match i {
                    Some(i) => batch.column(*i),
                    None => derived
                        .as_ref()
                        .and_then(|d| d.column_by_name(&f.name.name))
                        .expect("derived features were derived"),
                };
                let (column, new) = code_column(f, array, &na).map_err(|e| {
                    AppError::from(DataError::BadValue {
                        path: req.input.into(),
                        location: format!("{}, column \"{}\"", at(e.row), f.name.name),
                        what: e.what,
                    })
                })?;
                if !new.is_empty() {
                    *unseen.entry(f.name.name.clone()).or_default() += new.len();
                }
                columns.push(column);
            }
            let table = Features {
                names: model.names.clone(),
                columns,
                rows: n,
            };
            let all: Vec<u32> = (0..n as u32).collect();
            let scores = model.model.predict(&table, &all);
            let out = answers(&model, &batch, &kept, &scores, &mut predicted);
            if writer.is_none() {
                writer = Some(TableWriter::create(req.out, out.schema())?);
            }
            writer.as_mut().expect("created above").write(&out)?;
            rows += n;
            on_rows(rows);
        }
        writer
            .ok_or_else(|| DataError::HeaderOnly {
                path: req.input.into(),
            })?
            .finish()?;
        let classes = if model.task == Task::Regression {
            Vec::new()
        } else {
            model.classes.clone()
        };
        Ok(PredictFileReport {
            run: model.run.clone(),
            input: req.input.into(),
            out: req.out.into(),
            format: format.as_str(),
            rows,
            classes,
            predicted,
            unseen,
            ignored,
            kept: req.keep.to_vec(),
            seconds: t0.elapsed().as_secs_f64(),
        })
    }
}

/// The derivations' raw inputs from a file's batch, typed as the dataset stores them.
fn file_inputs(
    model: &ServingModel,
    batch: &RecordBatch,
    columns: &[usize],
    na: &NaTokens,
) -> Result<RecordBatch, (String, BadCell)> {
    let mut fields = Vec::with_capacity(columns.len());
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len());
    for (input, &i) in model.inputs.iter().zip(columns) {
        let raw = std::slice::from_ref(batch.column(i));
        let name = &input.name.name;
        let fail = |e: BadCell| (name.clone(), e);
        let array: ArrayRef = match input.kind {
            ColumnKind::Numeric => {
                gyre_data::infer::to_numeric(raw, na)
                    .map_err(|b| {
                        fail(BadCell {
                            row: b.row,
                            what: format!("{:?} is not a number", b.value),
                        })
                    })?
                    .array
            }
            ColumnKind::Categorical => gyre_data::infer::to_categorical(raw, na).array,
            ColumnKind::Boolean => Arc::new(BooleanArray::from(
                booleans(&raw[0], na)
                    .map_err(fail)?
                    .into_iter()
                    .map(|v| (!v.is_nan()).then_some(v != 0.0))
                    .collect::<Vec<_>>(),
            )),
            ColumnKind::Time => {
                gyre_data::infer::time_keys(raw, na)
                    .map_err(|b| {
                        fail(BadCell {
                            row: b.row,
                            what: format!("{:?} is not a time", b.value),
                        })
                    })?
                    .1
            }
        };
        fields.push(ArrowField::new(name, array.data_type().clone(), true));
        arrays.push(array);
    }
    RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        arrays,
        &arrow_array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
    .map_err(|e| {
        (
            String::new(),
            BadCell {
                row: 0,
                what: e.to_string(),
            },
        )
    })
}

/// The output batch: the kept columns, `prediction`, and `score_<class>` per class.
fn answers(
    model: &ServingModel,
    batch: &RecordBatch,
    kept: &[usize],
    scores: &[f64],
    predicted: &mut BTreeMap<String, usize>,
) -> RecordBatch {
    let schema = batch.schema();
    let mut fields: Vec<ArrowField> = kept
        .iter()
        .map(|&i| schema.field(i).as_ref().clone().with_nullable(true))
        .collect();
    let mut arrays: Vec<ArrayRef> = kept.iter().map(|&i| batch.column(i).clone()).collect();
    let k = model.outputs();
    let n = batch.num_rows();
    if model.task == Task::Regression {
        fields.push(ArrowField::new("prediction", DataType::Float64, false));
        arrays.push(Arc::new(Float64Array::from(scores.to_vec())));
    } else {
        let mut labels = Vec::with_capacity(n);
        let mut per_class: Vec<Vec<f64>> = vec![Vec::with_capacity(n); model.classes.len()];
        for r in 0..n {
            let (label, s) = model.answer(&scores[r * k..(r + 1) * k]);
            *predicted.entry(label.clone()).or_default() += 1;
            labels.push(label);
            for (c, v) in s.into_iter().enumerate() {
                per_class[c].push(v);
            }
        }
        fields.push(ArrowField::new("prediction", DataType::Utf8, false));
        arrays.push(Arc::new(StringArray::from(labels)));
        for (name, values) in model.classes.iter().zip(per_class) {
            fields.push(ArrowField::new(
                format!("score_{name}"),
                DataType::Float64,
                false,
            ));
            arrays.push(Arc::new(Float64Array::from(values)));
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("columns match fields")
}
