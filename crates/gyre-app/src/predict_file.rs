//! `gyre predict RUN FILE --out FILE`: scores a CSV or Parquet file offline with any run, a
//! batch at a time, so a file larger than memory works. Rows are read with the checks serving
//! makes (every feature present, a value of its kind, unseen categories treated as missing and
//! counted) and answered by the same rule ([`ServingModel::answer`]), so a file scored here and
//! the same rows sent to `gyre serve` give the same numbers.

use crate::serving::{Field, ServingModel};
use crate::{App, AppError};
use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field as ArrowField, Schema};
use gyre_core::{ColumnKind, Task};
use gyre_data::infer::NaTokens;
use gyre_data::output::{OutputFormat, TableWriter};
use gyre_data::{DataError, input};
use gyre_learn::{Column, Features};
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
        let mut features = Vec::with_capacity(model.fields.len());
        let mut missing = Vec::new();
        for f in &model.fields {
            match column_of(&f.name.name) {
                Some(i) => features.push(i),
                None => missing.push(f.name.name.clone()),
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
            .filter(|(i, _)| !features.contains(i) && !kept.contains(i))
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
            let mut columns = Vec::with_capacity(features.len());
            for (f, &i) in model.fields.iter().zip(&features) {
                let (column, new) = code(f, batch.column(i), &na).map_err(|e| {
                    AppError::from(DataError::BadValue {
                        path: req.input.into(),
                        location: format!("{}, column \"{}\"", at(e.row), f.name.name),
                        what: e.what,
                    })
                })?;
                if new > 0 {
                    *unseen.entry(f.name.name.clone()).or_default() += new;
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

/// A cell that does not fit its feature: its row in the batch and what is wrong.
struct BadCell {
    row: usize,
    what: String,
}

/// One input column as the model's feature, and how many of its values were unseen categories.
fn code(f: &Field, array: &ArrayRef, na: &NaTokens) -> Result<(Column, usize), BadCell> {
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
            let mut unseen = 0;
            let codes: Vec<u32> = keys
                .iter()
                .map(|k| match k {
                    None => u32::MAX,
                    Some(k) => {
                        let code = to_model[k as usize];
                        unseen += usize::from(code == u32::MAX);
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
        ColumnKind::Boolean => Ok((Column::Numeric(booleans(array, na)?.into()), 0)),
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
                0,
            ))
        }
    }
}

/// A boolean feature: `true`/`false` (any case) or 1/0, as serving reads JSON booleans.
fn booleans(array: &ArrayRef, na: &NaTokens) -> Result<Vec<f64>, BadCell> {
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
