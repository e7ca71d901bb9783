//! Per-example predictions of a run: `row_id, label, prediction, score_<class>...` for every
//! holdout row, stored as Parquet so any two runs can be compared row by row without retraining.

use crate::{App, AppError};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, UInt64Type};
use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use gyre_core::{ContentHash, DatasetSchema, Task};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Predictions for some rows: class index or value as labels, row-major scores as the model gave them.
pub struct Predictions {
    pub row_ids: Vec<u64>,
    pub labels: Vec<f64>,
    /// Binary: P(second class) per row; multiclass: one probability per class; regression: the value.
    pub scores: Vec<f64>,
}

fn batch(p: &Predictions, schema: &DatasetSchema) -> RecordBatch {
    let mut fields = vec![Field::new("row_id", DataType::UInt64, false)];
    let mut arrays: Vec<ArrayRef> = vec![Arc::new(UInt64Array::from(p.row_ids.clone()))];
    match schema.task {
        Task::Regression => {
            fields.push(Field::new("label", DataType::Float64, false));
            fields.push(Field::new("prediction", DataType::Float64, false));
            arrays.push(Arc::new(Float64Array::from(p.labels.clone())));
            arrays.push(Arc::new(Float64Array::from(p.scores.clone())));
        }
        task => {
            let classes = &schema.classes;
            let k = classes.len();
            let pred = gyre_eval::metrics::predicted_classes(
                task,
                if task == Task::Binary { 2 } else { k },
                &p.scores,
            );
            fields.push(Field::new("label", DataType::Utf8, false));
            fields.push(Field::new("prediction", DataType::Utf8, false));
            arrays.push(Arc::new(StringArray::from_iter_values(
                p.labels.iter().map(|&l| classes[l as usize].as_str()),
            )));
            arrays.push(Arc::new(StringArray::from_iter_values(
                pred.iter().map(|&c| classes[c as usize].as_str()),
            )));
            for (c, name) in classes.iter().enumerate() {
                fields.push(Field::new(
                    format!("score_{name}"),
                    DataType::Float64,
                    false,
                ));
                let col: Float64Array = if task == Task::Binary {
                    p.scores
                        .iter()
                        .map(|&s| if c == 1 { s } else { 1.0 - s })
                        .collect()
                } else {
                    p.scores.chunks(k).map(|row| row[c]).collect()
                };
                arrays.push(Arc::new(col));
            }
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("columns match fields")
}

pub fn to_parquet(p: &Predictions, schema: &DatasetSchema) -> Result<Vec<u8>, AppError> {
    Ok(gyre_data::table::to_parquet_numbers(&batch(p, schema))?)
}

/// Reads stored predictions back (labels as class indices for classification).
pub fn from_parquet(bytes: Vec<u8>, schema: &DatasetSchema) -> Result<Predictions, AppError> {
    read(bytes.into(), schema, true)
}

/// Reads stored predictions back; with `labels` false, the stored labels are not decoded and
/// `labels` is left empty (a diff scores both runs against the newest labels instead). Only
/// the columns needed are decoded: never the predicted classes, which the scores give, nor a
/// binary task's first score column, one minus the second.
pub fn read(
    bytes: bytes::Bytes,
    schema: &DatasetSchema,
    labels: bool,
) -> Result<Predictions, AppError> {
    fn score(name: &str) -> Option<&str> {
        name.strip_prefix("score_")
    }
    let wanted = |name: &str| match schema.task {
        _ if name == "row_id" => true,
        _ if name == "label" => labels,
        Task::Regression => name == "prediction",
        Task::Binary => score(name) == schema.classes.get(1).map(String::as_str),
        Task::Multiclass => score(name).is_some(),
    };
    let b = gyre_data::table::from_parquet_columns(bytes, wanted)?;
    let bad = |what: &str| {
        AppError::from(gyre_store::StoreError::Corrupt(format!(
            "stored predictions lack {what}"
        )))
    };
    let f64s = |name: &str| -> Result<&Float64Array, AppError> {
        b.column_by_name(name)
            .and_then(|c| c.as_primitive_opt::<Float64Type>())
            .ok_or_else(|| bad(name))
    };
    let row_ids = b
        .column_by_name("row_id")
        .and_then(|c| c.as_primitive_opt::<UInt64Type>())
        .ok_or_else(|| bad("row_id"))?
        .values()
        .to_vec();
    let labels = if !labels {
        Vec::new()
    } else if schema.task == Task::Regression {
        f64s("label")?.values().to_vec()
    } else {
        let index = |s: &str| {
            schema
                .classes
                .iter()
                .position(|c| c == s)
                .map_or(f64::NAN, |i| i as f64)
        };
        b.column_by_name("label")
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| bad("label"))?
            .iter()
            .map(|v| index(v.unwrap_or("")))
            .collect()
    };
    let scores = match schema.task {
        Task::Regression => f64s("prediction")?.values().to_vec(),
        Task::Binary => f64s(&format!("score_{}", schema.classes[1]))?
            .values()
            .to_vec(),
        Task::Multiclass => {
            let cols = schema
                .classes
                .iter()
                .map(|c| f64s(&format!("score_{c}")))
                .collect::<Result<Vec<_>, _>>()?;
            let mut s = Vec::with_capacity(b.num_rows() * cols.len());
            for r in 0..b.num_rows() {
                for col in &cols {
                    s.push(col.value(r));
                }
            }
            s
        }
    };
    Ok(Predictions {
        row_ids,
        labels,
        scores,
    })
}

#[derive(Serialize)]
pub struct PredictionsReport {
    pub run: String,
    pub suite: String,
    pub rows: usize,
    pub out: PathBuf,
    pub format: &'static str,
}

impl App {
    /// Writes a run's predictions on a suite to `out` (.csv or .parquet), atomically.
    pub fn export_predictions(
        &mut self,
        run: &str,
        suite: Option<&str>,
        out: &Path,
    ) -> Result<PredictionsReport, AppError> {
        let suite = suite.unwrap_or("holdout");
        if suite != "holdout" {
            return Err(AppError::NotFound {
                what: "suite",
                name: suite.to_string(),
                suggestion: gyre_core::closest(suite, ["holdout"]).map(String::from),
            });
        }
        let name = out
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let format = if name.ends_with(".csv") {
            "csv"
        } else if name.ends_with(".parquet") || name.ends_with(".pq") {
            "parquet"
        } else {
            return Err(AppError::Invalid {
                message: format!("{}: unknown output type", out.display()),
                hint: Some("name the file .csv or .parquet".into()),
            });
        };
        let record = self.resolve_run(run)?;
        let object = ContentHash::parse(&record.predictions).ok_or_else(|| {
            gyre_store::StoreError::Corrupt(format!("bad predictions id in run {}", record.id))
        })?;
        let bytes = self.store.objects().get(&object)?;
        let b = gyre_data::table::from_parquet(bytes.clone().into())?;
        let data = if format == "parquet" {
            bytes
        } else {
            let mut buf = Vec::new();
            {
                let mut w = arrow_csv::WriterBuilder::new()
                    .with_header(true)
                    .build(&mut buf);
                w.write(&b)
                    .map_err(|e| AppError::invalid(format!("cannot write CSV: {e}")))?;
            }
            buf
        };
        gyre_store::write_atomic(out, &data)?;
        Ok(PredictionsReport {
            run: record.id,
            suite: suite.to_string(),
            rows: b.num_rows(),
            out: out.to_path_buf(),
            format,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gyre_core::{ColumnKind, ColumnRole, ColumnSchema};

    fn schema(task: Task, classes: &[&str]) -> DatasetSchema {
        DatasetSchema {
            columns: vec![ColumnSchema {
                name: "y".into(),
                kind: ColumnKind::Categorical,
                role: ColumnRole::Target,
                categories: vec![],
            }],
            target: "y".into(),
            task,
            classes: classes.iter().map(|s| s.to_string()).collect(),
            id_column: None,
            time_column: None,
            positive: None,
        }
    }

    /// Stored predictions that lack a column the schema asks for (here: scores for other
    /// classes) are an error naming the column, not a panic.
    #[test]
    fn predictions_without_a_needed_column_are_named_as_corrupt() {
        let p = Predictions {
            row_ids: vec![7],
            labels: vec![1.0],
            scores: vec![0.75],
        };
        let bytes = to_parquet(&p, &schema(Task::Binary, &["a", "b"])).unwrap();
        let err = read(bytes.into(), &schema(Task::Binary, &["a", "z"]), false)
            .err()
            .expect("no score_z column");
        assert!(err.to_string().contains("lack score_z"), "{err}");
    }

    #[test]
    fn predictions_round_trip_through_parquet() {
        for (task, classes, scores) in [
            (Task::Binary, vec!["a", "b"], vec![0.25, 0.75]),
            (
                Task::Multiclass,
                vec!["a", "b", "c"],
                vec![0.2, 0.3, 0.5, 0.6, 0.3, 0.1],
            ),
            (Task::Regression, vec![], vec![1.5, -2.0]),
        ] {
            let s = schema(task, &classes);
            let p = Predictions {
                row_ids: vec![7, 9],
                labels: if task == Task::Regression {
                    vec![1.0, -1.0]
                } else {
                    vec![1.0, 0.0]
                },
                scores,
            };
            let bytes = to_parquet(&p, &s).unwrap();
            let back = from_parquet(bytes.clone(), &s).unwrap();
            assert_eq!(back.row_ids, p.row_ids);
            assert_eq!(back.labels, p.labels);
            assert_eq!(back.scores, p.scores, "{task}");
            // Without labels: the same rows and scores, the labels not read.
            let scores_only = read(bytes.into(), &s, false).unwrap();
            assert_eq!(scores_only.row_ids, p.row_ids);
            assert!(scores_only.labels.is_empty());
            assert_eq!(scores_only.scores, p.scores, "{task}");
        }
    }
}
