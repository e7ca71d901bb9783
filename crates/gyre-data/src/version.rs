//! Materializing a dataset version: the base table with the edits in effect applied in order.
//! Edits never copy or drop evaluation rows: exclude/include/weight change which training rows are
//! used and how much; relabel rewrites the target everywhere; drop-feature hides a column.

use crate::DataError;
use crate::filter;
use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type};
use arrow_array::{ArrayRef, DictionaryArray, Float64Array, Int32Array, RecordBatch, StringArray};
use gyre_core::{ColumnRole, DatasetSchema, EditKind, Predicate, Split, Task};
use std::sync::Arc;

/// A dataset version as training and evaluation see it. Cloning shares the Arrow columns and the
/// per-row vectors (each copied only when a clone is edited).
#[derive(Clone)]
pub struct Materialized {
    /// Every row of the dataset, the target column with relabels applied.
    pub batch: RecordBatch,
    /// The schema (relabels may have added classes); `dropped` lists features no longer used.
    pub schema: DatasetSchema,
    /// Whether each row is used for training (train or valid split, and not excluded).
    pub train_mask: Arc<Vec<bool>>,
    /// Row weights; `None` until a weight edit (every row weighs 1).
    weights: Option<Arc<Vec<f64>>>,
    pub dropped: Vec<String>,
    /// The derived features, in the order their edits made them, with their expressions: what
    /// serving and `gyre predict` compute from a request's raw fields.
    pub derived: Vec<(String, gyre_core::Expr)>,
    /// Derived feature columns computed before (a version's cached ones), used by name instead
    /// of evaluating again.
    pub precomputed: Option<RecordBatch>,
    splits: Arc<Vec<Split>>,
}

impl Materialized {
    /// The version with no edits.
    pub fn base(batch: RecordBatch, schema: DatasetSchema) -> Materialized {
        let splits = crate::table::splits(&batch);
        Materialized {
            train_mask: Arc::new(splits.iter().map(|&s| s != Split::Holdout).collect()),
            weights: None,
            dropped: Vec::new(),
            derived: Vec::new(),
            precomputed: None,
            batch,
            schema,
            splits: Arc::new(splits),
        }
    }

    pub fn splits(&self) -> &[Split] {
        &self.splits
    }

    /// Row `r`'s weight.
    pub fn weight(&self, r: usize) -> f64 {
        self.weights.as_ref().map_or(1.0, |w| w[r])
    }

    /// Every row's weight, or `None` when every weight is 1.
    pub fn weights(&self) -> Option<&[f64]> {
        self.weights
            .as_deref()
            .filter(|w| w.iter().any(|&x| x != 1.0))
            .map(Vec::as_slice)
    }

    /// Feature columns in use (schema features minus dropped ones).
    pub fn feature_names(&self) -> Vec<&str> {
        self.schema
            .features()
            .map(|c| c.name.as_str())
            .filter(|n| !self.dropped.iter().any(|d| d == n))
            .collect()
    }

    /// The columns failure slices are described by: the features in use and the columns left
    /// out of the features at import (`--ignore`), which a team still wants to see slices of.
    pub fn slice_columns(&self) -> Vec<&str> {
        let mut names = self.feature_names();
        names.extend(
            self.schema
                .columns
                .iter()
                .filter(|c| c.role == ColumnRole::Ignored)
                .map(|c| c.name.as_str()),
        );
        names
    }

    /// Rows matching a checked predicate.
    pub fn matching(&self, p: &Predicate) -> Vec<bool> {
        filter::evaluate(p, &self.batch)
    }

    /// Whether each of `rows` (table rows) matches a checked predicate, in their order.
    pub fn matching_rows(&self, p: &Predicate, rows: &[usize]) -> Vec<bool> {
        filter::evaluate_rows(p, &self.batch, rows)
    }

    /// Applies one edit in place; returns how many rows it changed.
    pub fn apply(&mut self, kind: &EditKind) -> Result<u64, DataError> {
        match kind {
            EditKind::Exclude { predicate } | EditKind::Include { predicate } => {
                let keep = matches!(kind, EditKind::Include { .. });
                let m = self.matching(predicate);
                let mut changed = 0;
                let mask = Arc::make_mut(&mut self.train_mask);
                for (r, _) in m.iter().enumerate().filter(|(_, hit)| **hit) {
                    if self.splits[r] != Split::Holdout && mask[r] != keep {
                        mask[r] = keep;
                        changed += 1;
                    }
                }
                Ok(changed)
            }
            EditKind::Weight { predicate, by } => {
                let m = self.matching(predicate);
                let mut changed = 0;
                let n = self.batch.num_rows();
                let weights =
                    Arc::make_mut(self.weights.get_or_insert_with(|| Arc::new(vec![1.0; n])));
                for (r, _) in m.iter().enumerate().filter(|(_, hit)| **hit) {
                    if self.splits[r] != Split::Holdout {
                        weights[r] *= by;
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
                            let i = all.binary_search(id).map_err(|_| {
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
            // The rows come from another stored table: the caller loads it and calls `append`.
            EditKind::AddSource { .. } => Err(DataError::Parquet(
                "add-source needs its table: use Materialized::append".into(),
            )),
            EditKind::AddFeature { name, expr } => self.add_feature(name, expr),
            EditKind::Revert { .. } => Ok(0),
        }
    }

    /// Another table's rows with this version's derived features added (those it lacks), in
    /// the order their edits made them.
    fn derive_for(
        &self,
        other: &RecordBatch,
        other_schema: &DatasetSchema,
    ) -> Result<(RecordBatch, DatasetSchema), SchemaMismatch> {
        // A column of the new file named as a derived feature is replaced: derived features are
        // always computed, never taken as given.
        let derived = |n: &str| self.derived.iter().any(|(d, _)| d == n);
        let keep: Vec<usize> = (0..other.num_columns())
            .filter(|&i| !derived(other.schema().field(i).name()))
            .collect();
        let mut batch = other
            .project(&keep)
            .map_err(|e| SchemaMismatch(e.to_string()))?;
        let mut schema = other_schema.clone();
        schema.columns.retain(|c| !derived(&c.name));
        let n = batch.num_rows();
        for (name, expr) in &self.derived {
            let values = crate::derive::evaluate(expr, &batch).map_err(|e| {
                SchemaMismatch(format!("cannot derive \"{name}\" for the new rows: {e}"))
            })?;
            let (array, kind, categories) = crate::derive::to_column(values, n);
            schema.columns.push(gyre_core::ColumnSchema {
                name: name.clone(),
                kind,
                role: ColumnRole::Feature,
                categories,
            });
            batch = crate::derive::with_column(&batch, name, array)
                .map_err(|e| SchemaMismatch(e.to_string()))?;
        }
        Ok((batch, schema))
    }

    /// Computes a derived feature over every row and adds it as a column of its inferred kind;
    /// returns the rows where it is not NULL.
    fn add_feature(&mut self, name: &str, expr: &gyre_core::Expr) -> Result<u64, DataError> {
        if self.schema.column(name).is_some() {
            return Err(DataError::Invalid {
                path: name.into(),
                message: format!("column \"{name}\" already exists"),
            });
        }
        let n = self.batch.num_rows();
        let kept = self
            .precomputed
            .as_ref()
            .and_then(|p| p.column_by_name(name))
            .filter(|a| a.len() == n)
            .and_then(|a| crate::derive::kind_of(a).map(|(k, c)| (a.clone(), k, c)));
        let (array, kind, categories) = match kept {
            Some(found) => found,
            None => {
                let values = crate::derive::evaluate(expr, &self.batch)?;
                crate::derive::to_column(values, n)
            }
        };
        let present = (n - array.null_count()) as u64;
        self.schema.columns.push(gyre_core::ColumnSchema {
            name: name.to_string(),
            kind,
            role: ColumnRole::Feature,
            categories,
        });
        self.batch = crate::derive::with_column(&self.batch, name, array)?;
        self.derived.push((name.to_string(), expr.clone()));
        Ok(present)
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

/// Why a new source does not fit the dataset.
#[derive(Debug)]
pub struct SchemaMismatch(pub String);

impl Materialized {
    /// Appends the rows of another imported table with the same columns. Categorical values new
    /// to the dataset extend its category lists at the end, so existing codes never change.
    pub fn append(
        &mut self,
        other: &RecordBatch,
        other_schema: &DatasetSchema,
    ) -> Result<u64, SchemaMismatch> {
        // The new rows get this version's derived features, computed as for the others.
        let (derived_batch, derived_schema);
        let (other, other_schema) = if self.derived.is_empty() {
            (other, other_schema)
        } else {
            (derived_batch, derived_schema) = self.derive_for(other, other_schema)?;
            (&derived_batch, &derived_schema)
        };
        let mine: Vec<&str> = self.schema.column_names().collect();
        let theirs: Vec<&str> = other_schema.column_names().collect();
        let missing: Vec<&str> = mine
            .iter()
            .filter(|c| !theirs.contains(c))
            .copied()
            .collect();
        let extra: Vec<&str> = theirs
            .iter()
            .filter(|c| !mine.contains(c))
            .copied()
            .collect();
        let mut kinds = Vec::new();
        for c in &self.schema.columns {
            if let Some(o) = other_schema.column(&c.name)
                && o.kind != c.kind
            {
                kinds.push(format!(
                    "{} is {} here but {} in the new file",
                    c.name,
                    c.kind.as_str(),
                    o.kind.as_str()
                ));
            }
        }
        if !missing.is_empty() || !extra.is_empty() || !kinds.is_empty() {
            let mut parts = Vec::new();
            if !missing.is_empty() {
                parts.push(format!("missing from the new file: {}", missing.join(", ")));
            }
            if !extra.is_empty() {
                parts.push(format!("not in the dataset: {}", extra.join(", ")));
            }
            parts.extend(kinds);
            return Err(SchemaMismatch(format!(
                "the columns differ ({})",
                parts.join("; ")
            )));
        }
        if self.schema.task != other_schema.task {
            return Err(SchemaMismatch(format!(
                "the new file's target makes a {} task, the dataset's is {}",
                other_schema.task, self.schema.task
            )));
        }
        for c in &other_schema.classes {
            if !self.schema.classes.contains(c) {
                return Err(SchemaMismatch(format!(
                    "the new file has the label '{c}', which is not a class of the dataset ({})",
                    self.schema.classes.join(", ")
                )));
            }
        }
        let n_new = other.num_rows();
        let mut columns = Vec::with_capacity(self.batch.num_columns());
        let fields = self.batch.schema().fields().clone();
        for f in fields.iter() {
            let name = f.name().as_str();
            let a = self.batch.column_by_name(name).expect("own column");
            let b = other
                .column_by_name(name)
                .ok_or_else(|| SchemaMismatch(format!("the new file lacks {name}")))?;
            let merged: ArrayRef = if let Some(da) = a.as_dictionary_opt::<Int32Type>() {
                let db = b.as_dictionary::<Int32Type>();
                // The dataset's order: for features the schema's categories, for the target its classes.
                let is_target = name == self.schema.target;
                let mut values: Vec<String> = if is_target {
                    self.schema.classes.clone()
                } else if let Some(c) = self.schema.columns.iter().find(|c| c.name == name) {
                    if c.categories.is_empty() {
                        let v = da.values().as_string::<i32>();
                        (0..v.len()).map(|i| v.value(i).to_string()).collect()
                    } else {
                        c.categories.clone()
                    }
                } else {
                    let v = da.values().as_string::<i32>();
                    (0..v.len()).map(|i| v.value(i).to_string()).collect()
                };
                let own_values = da.values().as_string::<i32>();
                let own_map: Vec<i32> = (0..own_values.len())
                    .map(|i| {
                        values
                            .iter()
                            .position(|v| v == own_values.value(i))
                            .unwrap_or(0) as i32
                    })
                    .collect();
                let their_values = db.values().as_string::<i32>();
                let mut their_map = Vec::with_capacity(their_values.len());
                for i in 0..their_values.len() {
                    let v = their_values.value(i);
                    let code = match values.iter().position(|x| x == v) {
                        Some(c) => c,
                        None => {
                            values.push(v.to_string());
                            values.len() - 1
                        }
                    };
                    their_map.push(code as i32);
                }
                let keys: Int32Array = da
                    .keys()
                    .iter()
                    .map(|k| k.map(|k| own_map[k as usize]))
                    .chain(db.keys().iter().map(|k| k.map(|k| their_map[k as usize])))
                    .collect();
                if !is_target
                    && let Some(c) = self.schema.columns.iter_mut().find(|c| c.name == name)
                    && !c.categories.is_empty()
                {
                    c.categories = values.clone();
                }
                Arc::new(
                    DictionaryArray::<Int32Type>::try_new(
                        keys,
                        Arc::new(StringArray::from_iter_values(values.iter())),
                    )
                    .map_err(|e| SchemaMismatch(e.to_string()))?,
                )
            } else {
                let b = if b.data_type() != a.data_type() {
                    arrow_cast::cast(b, a.data_type())
                        .map_err(|e| SchemaMismatch(format!("{name}: {e}")))?
                } else {
                    b.clone()
                };
                arrow_select::concat::concat(&[a.as_ref(), b.as_ref()])
                    .map_err(|e| SchemaMismatch(e.to_string()))?
            };
            columns.push(merged);
        }
        let fields: Vec<arrow_schema::Field> = fields
            .iter()
            .zip(&columns)
            .map(|(f, c)| f.as_ref().clone().with_data_type(c.data_type().clone()))
            .collect();
        self.batch = RecordBatch::try_new(Arc::new(arrow_schema::Schema::new(fields)), columns)
            .map_err(|e| SchemaMismatch(e.to_string()))?;
        let new_splits = crate::table::splits(other);
        Arc::make_mut(&mut self.train_mask).extend(new_splits.iter().map(|&s| s != Split::Holdout));
        if let Some(w) = &mut self.weights {
            Arc::make_mut(w).extend(std::iter::repeat_n(1.0, n_new));
        }
        Arc::make_mut(&mut self.splits).extend(new_splits);
        Ok(n_new as u64)
    }
}

impl Materialized {
    /// Joins new feature columns on a key column: each row gets the values of the `other` row
    /// with the same key (as text), or missing values when there is none. Returns the rows matched.
    pub fn join(&mut self, other: &RecordBatch, key: &str) -> Result<u64, SchemaMismatch> {
        // A key of several columns (`origin,time_hour`) matches on all of them.
        let parts: Vec<&str> = key.split(',').map(str::trim).collect();
        let mut own = Vec::with_capacity(parts.len());
        let mut theirs = Vec::with_capacity(parts.len());
        for part in &parts {
            own.push(
                self.batch.column_by_name(part).ok_or_else(|| {
                    SchemaMismatch(format!("the dataset has no column \"{part}\""))
                })?,
            );
            theirs.push(
                other.column_by_name(part).ok_or_else(|| {
                    SchemaMismatch(format!("the new file has no column \"{part}\""))
                })?,
            );
        }
        // A row's key as text, the parts joined by the unit separator (no CSV value has one).
        let key_of = |cols: &[&ArrayRef], r: usize| -> String {
            let mut k = String::new();
            for (i, c) in cols.iter().enumerate() {
                if i > 0 {
                    k.push('\u{1f}');
                }
                k.push_str(&crate::table::display_value(c.as_ref(), r));
            }
            k
        };
        let shown = |k: &str| k.replace('\u{1f}', ", ");
        let mut index = std::collections::HashMap::new();
        for r in 0..other.num_rows() {
            let k = key_of(&theirs, r);
            if index.insert(k.clone(), r).is_some() {
                return Err(SchemaMismatch(format!(
                    "the key ({}) appears twice in the new file's column{} {key}: a key must name \
                     one row",
                    shown(&k),
                    if parts.len() > 1 { "s" } else { "" }
                )));
            }
        }
        let take: Vec<Option<u32>> = (0..self.batch.num_rows())
            .map(|r| index.get(&key_of(&own, r)).map(|&i| i as u32))
            .collect();
        let matched = take.iter().filter(|t| t.is_some()).count() as u64;
        let indices = arrow_array::UInt32Array::from(take);
        let mut fields: Vec<arrow_schema::Field> = self
            .batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        let mut columns = self.batch.columns().to_vec();
        for (f, col) in other.schema().fields().iter().zip(other.columns()) {
            let name = f.name();
            if parts.contains(&name.as_str())
                || name == gyre_core::ROW_ID
                || name == gyre_core::SPLIT
            {
                continue;
            }
            if self.schema.column(name).is_some() {
                return Err(SchemaMismatch(format!(
                    "column \"{name}\" is already in the dataset; a join adds new columns"
                )));
            }
            let taken = arrow_select::take::take(col.as_ref(), &indices, None)
                .map_err(|e| SchemaMismatch(e.to_string()))?;
            let (kind, categories) = match taken.data_type() {
                arrow_schema::DataType::Float64 => (gyre_core::ColumnKind::Numeric, Vec::new()),
                arrow_schema::DataType::Boolean => (gyre_core::ColumnKind::Boolean, Vec::new()),
                arrow_schema::DataType::Dictionary(_, _) => {
                    let v = taken
                        .as_dictionary::<Int32Type>()
                        .values()
                        .as_string::<i32>()
                        .clone();
                    (
                        gyre_core::ColumnKind::Categorical,
                        (0..v.len()).map(|i| v.value(i).to_string()).collect(),
                    )
                }
                other => {
                    return Err(SchemaMismatch(format!(
                        "column \"{name}\" has type {other}, which cannot be a feature"
                    )));
                }
            };
            self.schema.columns.push(gyre_core::ColumnSchema {
                name: name.clone(),
                kind,
                role: ColumnRole::Feature,
                categories,
            });
            fields.push(arrow_schema::Field::new(
                name,
                taken.data_type().clone(),
                true,
            ));
            columns.push(taken);
        }
        self.batch = RecordBatch::try_new(Arc::new(arrow_schema::Schema::new(fields)), columns)
            .map_err(|e| SchemaMismatch(e.to_string()))?;
        Ok(matched)
    }
}

/// Reads a file's columns, typed, for a join: no target, no splits. Row ids are 0..n-1.
pub fn read_for_join(
    path: &std::path::Path,
    na: &crate::infer::NaTokens,
) -> Result<RecordBatch, DataError> {
    let raw = crate::input::read(path, &|_| {})?;
    let mut cols = Vec::new();
    for (i, name) in raw.names.iter().enumerate() {
        let c = crate::infer::infer(&raw.chunks[i], na);
        cols.push((name.clone(), c.array));
    }
    let ids: Vec<u64> = (0..raw.rows as u64).collect();
    crate::table::assemble(&ids, &vec![Split::Train; raw.rows], cols)
}
