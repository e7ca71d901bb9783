//! Materializing a dataset version: the base table with the edits in effect applied in order.
//! Edits never copy or drop evaluation rows: exclude/include/weight change which training rows are
//! used and how much; relabel rewrites the target everywhere; drop-feature hides a column.

use crate::DataError;
use crate::filter;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type};
use arrow_array::{ArrayRef, DictionaryArray, Float64Array, Int32Array, RecordBatch, StringArray};
use gyre_core::{ColumnRole, DatasetSchema, EditKind, Predicate, Split, Task};
use std::sync::Arc;

/// A dataset version as training and evaluation see it.
#[derive(Clone)]
pub struct Materialized {
    /// Every row of the dataset, the target column with relabels applied.
    pub batch: RecordBatch,
    /// The schema (relabels may have added classes); `dropped` lists features no longer used.
    pub schema: DatasetSchema,
    /// Whether each row is used for training (train or valid split, and not excluded).
    pub train_mask: Vec<bool>,
    pub weights: Vec<f64>,
    pub dropped: Vec<String>,
    splits: Vec<Split>,
}

impl Materialized {
    /// The version with no edits.
    pub fn base(batch: RecordBatch, schema: DatasetSchema) -> Materialized {
        let splits = crate::table::splits(&batch);
        let n = batch.num_rows();
        Materialized {
            train_mask: splits.iter().map(|&s| s != Split::Holdout).collect(),
            weights: vec![1.0; n],
            dropped: Vec::new(),
            batch,
            schema,
            splits,
        }
    }

    pub fn splits(&self) -> &[Split] {
        &self.splits
    }

    /// Feature columns in use (schema features minus dropped ones).
    pub fn feature_names(&self) -> Vec<&str> {
        self.schema
            .features()
            .map(|c| c.name.as_str())
            .filter(|n| !self.dropped.iter().any(|d| d == n))
            .collect()
    }

    /// Rows matching a checked predicate.
    pub fn matching(&self, p: &Predicate) -> Vec<bool> {
        filter::evaluate(p, &self.batch)
    }

    /// Applies one edit in place; returns how many rows it changed.
    pub fn apply(&mut self, kind: &EditKind) -> Result<u64, DataError> {
        match kind {
            EditKind::Exclude { predicate } | EditKind::Include { predicate } => {
                let keep = matches!(kind, EditKind::Include { .. });
                let m = self.matching(predicate);
                let mut changed = 0;
                for (r, _) in m.iter().enumerate().filter(|(_, hit)| **hit) {
                    if self.splits[r] != Split::Holdout && self.train_mask[r] != keep {
                        self.train_mask[r] = keep;
                        changed += 1;
                    }
                }
                Ok(changed)
            }
            EditKind::Weight { predicate, by } => {
                let m = self.matching(predicate);
                let mut changed = 0;
                for (r, _) in m.iter().enumerate().filter(|(_, hit)| **hit) {
                    if self.splits[r] != Split::Holdout {
                        self.weights[r] *= by;
                        changed += 1;
                    }
                }
                Ok(changed)
            }
            EditKind::DropFeature { column } => {
                if !self.dropped.contains(column) {
                    self.dropped.push(column.clone());
                }
                Ok(0)
            }
            EditKind::Relabel {
                rows,
                predicate,
                to,
            } => {
                let selected: Vec<bool> = match (rows, predicate) {
                    (Some(ids), _) => {
                        let all = crate::table::row_ids(&self.batch);
                        let mut sel = vec![false; all.len()];
                        for id in ids {
                            let i = all.binary_search_by_key(id, |r| r.0).map_err(|_| {
                                DataError::Parquet(format!("row {id} does not exist"))
                            })?;
                            sel[i] = true;
                        }
                        sel
                    }
                    (_, Some(p)) => self.matching(p),
                    _ => return Ok(0),
                };
                self.relabel(&selected, to)
            }
            EditKind::AddSource { .. } => Err(DataError::Parquet(
                "add-source is not supported by this gyre yet".into(),
            )),
            EditKind::Revert { .. } => Ok(0),
        }
    }

    fn relabel(&mut self, selected: &[bool], to: &str) -> Result<u64, DataError> {
        let idx = self
            .batch
            .schema()
            .index_of(&self.schema.target)
            .map_err(|e| DataError::Parquet(e.to_string()))?;
        let col = self.batch.column(idx);
        let mut changed = 0;
        let new: ArrayRef = if self.schema.task == Task::Regression {
            let v: f64 = to
                .parse()
                .map_err(|_| DataError::Parquet(format!("label '{to}' is not a number")))?;
            let old = col.as_primitive::<Float64Type>();
            let vals: Float64Array = old
                .values()
                .iter()
                .zip(selected)
                .map(|(&x, &s)| {
                    if s && x != v {
                        changed += 1;
                        v
                    } else {
                        x
                    }
                })
                .collect();
            Arc::new(vals)
        } else {
            let code = match self.schema.classes.iter().position(|c| c == to) {
                Some(c) => c,
                None => {
                    self.schema.classes.push(to.to_string());
                    self.schema.classes.len() - 1
                }
            } as i32;
            let old = col.as_dictionary::<Int32Type>();
            let keys: Int32Array = old
                .keys()
                .values()
                .iter()
                .zip(selected)
                .map(|(&k, &s)| {
                    if s && k != code {
                        changed += 1;
                        code
                    } else {
                        k
                    }
                })
                .collect();
            let values = StringArray::from_iter_values(self.schema.classes.iter());
            Arc::new(
                DictionaryArray::<Int32Type>::try_new(keys, Arc::new(values))
                    .map_err(|e| DataError::Parquet(e.to_string()))?,
            )
        };
        let mut cols = self.batch.columns().to_vec();
        cols[idx] = new;
        let fields: Vec<arrow_schema::Field> = self
            .batch
            .schema()
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                f.as_ref()
                    .clone()
                    .with_data_type(cols[i].data_type().clone())
            })
            .collect();
        self.batch = RecordBatch::try_new(Arc::new(arrow_schema::Schema::new(fields)), cols)
            .map_err(|e| DataError::Parquet(e.to_string()))?;
        Ok(changed)
    }

    /// Whether a column is a feature still in use.
    pub fn is_feature(&self, name: &str) -> bool {
        self.schema
            .column(name)
            .is_some_and(|c| c.role == ColumnRole::Feature)
            && !self.dropped.iter().any(|d| d == name)
    }
}
