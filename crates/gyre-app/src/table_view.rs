//! A dataset version as a learner sees it: feature columns without copying more than once,
//! labels as class indices or values, and which rows train and which are held out.

use crate::{App, AppError};
use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type};
use arrow_buffer::ScalarBuffer;
use gyre_core::{ColumnKind, DatasetSchema, Split, Task, closest};
use gyre_core::{Edit, EditKind};
use gyre_data::version::Materialized;
use gyre_learn::{Column, Features, Values};
use gyre_store::{StoreError, VersionRecord};

/// One dataset version, materialized. Cloning shares the Arrow columns.
#[derive(Clone)]
pub struct LoadedVersion {
    pub version: String,
    pub schema: DatasetSchema,
    pub data: Materialized,
}

impl App {
    /// The dataset to act on: the one named, else the project's only dataset.
    pub(crate) fn resolve_dataset(&mut self, name: Option<&str>) -> Result<String, AppError> {
        if let Some(n) = name {
            self.dataset_record(n)?;
            return Ok(n.to_string());
        }
        let all = self.store.read(|tx| tx.datasets())?;
        match all.len() {
            0 => Err(AppError::Invalid {
                message: "the project has no dataset yet".into(),
                hint: Some("import one: gyre import FILE --target COLUMN".into()),
            }),
            1 => Ok(all[0].name.clone()),
            _ => Err(AppError::Invalid {
                message: format!(
                    "the project has {} datasets; say which one with --dataset ({})",
                    all.len(),
                    all.iter()
                        .map(|d| d.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                hint: None,
            }),
        }
    }

    /// The version entry named by a unique id prefix, or the latest.
    pub(crate) fn version_entry(
        &mut self,
        dataset: &str,
        version: Option<&str>,
    ) -> Result<VersionRecord, AppError> {
        let versions = self.store.read(|tx| tx.versions(dataset))?;
        match version {
            None => versions.last().cloned().ok_or_else(|| {
                StoreError::Corrupt(format!("dataset {dataset} has no version")).into()
            }),
            Some(v) => {
                let matches: Vec<&VersionRecord> =
                    versions.iter().filter(|r| r.id.starts_with(v)).collect();
                let distinct: std::collections::BTreeSet<&str> =
                    matches.iter().map(|r| r.id.as_str()).collect();
                match distinct.len() {
                    // The same version can recur (edit then revert); take its latest entry.
                    1 => Ok((*matches.last().expect("one match")).clone()),
                    0 => Err(AppError::NotFound {
                        what: "version",
                        name: v.to_string(),
                        suggestion: closest(v, versions.iter().map(|r| &r.id[..12]))
                            .map(String::from),
                    }),
                    _ => Err(AppError::invalid(format!(
                        "version prefix \"{v}\" is ambiguous; give more characters"
                    ))),
                }
            }
        }
    }

    /// The dataset's edits up to and including `upto` (all when `None`), parsed.
    pub(crate) fn edits_upto(
        &mut self,
        dataset: &str,
        upto: Option<i64>,
    ) -> Result<Vec<Edit>, AppError> {
        let records = self.store.read(|tx| tx.edits(dataset))?;
        records
            .into_iter()
            .filter(|e| upto.is_none_or(|u| e.id <= u))
            .map(|e| {
                let kind: EditKind = serde_json::from_str(&e.body)
                    .map_err(|err| StoreError::Corrupt(format!("edit {}: {err}", e.id)))?;
                Ok(Edit {
                    id: e.id,
                    dataset: e.dataset,
                    kind,
                    why: e.why,
                    author: e.author,
                    time: e.time,
                    rows_affected: e.rows_affected,
                })
            })
            .collect()
    }

    /// The base table of a dataset (its first source), as imported.
    pub(crate) fn base_table(&mut self, dataset: &str) -> Result<Materialized, AppError> {
        let schema = self.dataset_record(dataset)?;
        let sources = self.store.read(|tx| tx.sources(dataset))?;
        let source = sources
            .first()
            .ok_or_else(|| StoreError::Corrupt(format!("dataset {dataset} has no source")))?;
        let object = gyre_core::ContentHash::parse(&source.object)
            .ok_or_else(|| StoreError::Corrupt(format!("bad object id {}", source.object)))?;
        let batch = self.stored_table(&object)?;
        Ok(Materialized::base(batch, schema))
    }

    /// A stored table (zstd Parquet, the object of record), decoded. The decoded form is kept
    /// beside the object as an Arrow IPC file with a checksum (`derived/table-ipc-v2/<object>`;
    /// the kind's version must change when `from_parquet`'s output does): every later command
    /// that loads the table reads it without decoding, which is most of what an edit or a diff
    /// of a small dataset spends. A missing or damaged file is a miss (a damaged one is
    /// replaced), and a failure to keep it fails nothing. Each stored table has one, about 8x
    /// its compressed size; past 4 GiB of them the least recently used go
    /// (`Objects::put_derived`).
    pub(crate) fn stored_table(
        &self,
        object: &gyre_core::ContentHash,
    ) -> Result<arrow_array::RecordBatch, AppError> {
        const KIND: &str = "table-ipc-v2";
        let objects = self.store.objects();
        if let Some(bytes) = objects.get_derived(KIND, object) {
            match gyre_data::table::from_ipc(bytes) {
                Ok(batch) => return Ok(batch),
                Err(_) => objects.remove_derived(KIND, object),
            }
        }
        let bytes = objects.get(object)?;
        let batch = gyre_data::table::from_parquet(bytes.into())?;
        if let Ok(ipc) = gyre_data::table::to_ipc(&batch) {
            let _ = objects.put_derived(KIND, object, &ipc);
        }
        Ok(batch)
    }

    /// Applies one edit to a materialized version; add-source loads the added table.
    pub(crate) fn apply_edit(
        &mut self,
        data: &mut Materialized,
        kind: &EditKind,
    ) -> Result<u64, AppError> {
        let mut tables = SourceTables::new();
        self.load_source_tables(std::slice::from_ref(kind), &mut tables)?;
        apply_loaded(data, kind, &tables)
    }

    /// Loads the tables the add-source edits among `kinds` add, into `tables` (by source id), so
    /// that [`apply_loaded`] can apply the edits without the store (on other threads).
    pub(crate) fn load_source_tables<'a>(
        &mut self,
        kinds: impl IntoIterator<Item = &'a EditKind>,
        tables: &mut SourceTables,
    ) -> Result<(), AppError> {
        for kind in kinds {
            if let EditKind::AddSource { source, .. } = kind
                && !tables.contains_key(source)
            {
                let batch = self.source_table(source)?;
                tables.insert(source.clone(), batch);
            }
        }
        Ok(())
    }

    /// A stored source's table.
    pub(crate) fn source_table(
        &mut self,
        source: &str,
    ) -> Result<arrow_array::RecordBatch, AppError> {
        let rec = self
            .store
            .read(|tx| tx.source(source))?
            .ok_or_else(|| StoreError::Corrupt(format!("source {source} is missing")))?;
        let object = gyre_core::ContentHash::parse(&rec.object)
            .ok_or_else(|| StoreError::Corrupt(format!("bad object id {}", rec.object)))?;
        self.stored_table(&object)
    }

    /// The dataset's sources in order, and the import options of its first one (which later
    /// sources follow).
    pub(crate) fn sources_and_options(
        &mut self,
        dataset: &str,
    ) -> Result<(Vec<gyre_store::SourceRecord>, gyre_data::ImportOptions), AppError> {
        let sources = self.store.read(|tx| tx.sources(dataset))?;
        let first = sources
            .first()
            .ok_or_else(|| StoreError::Corrupt(format!("dataset {dataset} has no source")))?;
        let opts = serde_json::from_str(&first.options)
            .map_err(|e| StoreError::Corrupt(format!("import options of {dataset}: {e}")))?;
        Ok((sources, opts))
    }

    /// Materializes a version (a unique prefix of its id), or the dataset's latest.
    pub(crate) fn load_version(
        &mut self,
        dataset: &str,
        version: Option<&str>,
    ) -> Result<LoadedVersion, AppError> {
        let entry = self.version_entry(dataset, version)?;
        // A version is named by its content, so one materialized earlier in this command (train
        // evaluates suites and findings on the version it just trained on) is reused as it is.
        if let Some((d, cached)) = &self.loaded
            && d == dataset
            && cached.version == entry.id
        {
            return Ok(cached.clone());
        }
        let mut base = self.base_table(dataset)?;
        let edits = match entry.edit {
            Some(upto) => self.edits_upto(dataset, Some(upto))?,
            None => Vec::new(),
        };
        let effective = gyre_core::edit::effective(&edits);
        let mut tables = SourceTables::new();
        self.load_source_tables(effective.iter().map(|e| &e.kind), &mut tables)?;
        // A version's derived features depend on its content alone, which its id names: they
        // are kept, decoded, beside the base table's decoded form and reused.
        let derives = effective
            .iter()
            .any(|e| matches!(e.kind, EditKind::AddFeature { .. }));
        let key = gyre_core::ContentHash::parse(&entry.id).filter(|_| derives);
        if let Some(key) = &key
            && let Some(bytes) = self.store.objects().get_derived(DERIVED_FEATURES, key)
        {
            match gyre_data::table::from_ipc(bytes) {
                Ok(batch) => base.precomputed = Some(batch),
                Err(_) => self.store.objects().remove_derived(DERIVED_FEATURES, key),
            }
        }
        let cached = base.precomputed.is_some();
        let mut loaded = build_version(base, entry.id, effective, &tables)?;
        loaded.data.precomputed = None;
        if let (Some(key), false) = (&key, cached) {
            let names: Vec<usize> = loaded
                .data
                .derived
                .iter()
                .filter_map(|(n, _)| loaded.data.batch.schema().index_of(n).ok())
                .collect();
            if let Ok(columns) = loaded.data.batch.project(&names)
                && let Ok(ipc) = gyre_data::table::to_ipc(&columns)
            {
                let _ = self
                    .store
                    .objects()
                    .put_derived(DERIVED_FEATURES, key, &ipc);
            }
        }
        self.loaded = Some((dataset.to_string(), loaded.clone()));
        Ok(loaded)
    }
}

/// The kind of derived file that keeps a version's derived feature columns (Arrow IPC).
const DERIVED_FEATURES: &str = "features-ipc-v1";

/// Added tables by source id, loaded by [`App::load_source_tables`].
pub(crate) type SourceTables = std::collections::HashMap<String, arrow_array::RecordBatch>;

/// A version: `base` (the decoded base table) with `edits` applied in order; the tables of any
/// add-source edits must be in `tables`.
pub(crate) fn build_version<'a>(
    mut data: Materialized,
    version: String,
    edits: impl IntoIterator<Item = &'a Edit>,
    tables: &SourceTables,
) -> Result<LoadedVersion, AppError> {
    for e in edits {
        apply_loaded(&mut data, &e.kind, tables)?;
    }
    Ok(LoadedVersion {
        version,
        schema: data.schema.clone(),
        data,
    })
}

/// Applies one edit to a materialized version; an add-source edit's table must be in `tables`.
pub(crate) fn apply_loaded(
    data: &mut Materialized,
    kind: &EditKind,
    tables: &SourceTables,
) -> Result<u64, AppError> {
    match kind {
        EditKind::AddSource { source, key, .. } => {
            let batch = tables
                .get(source)
                .ok_or_else(|| StoreError::Corrupt(format!("source {source} is not loaded")))?;
            let schema = data.schema.clone();
            match key {
                Some(k) => data.join(batch, k),
                None => data.append(batch, &schema),
            }
            .map_err(|e| StoreError::Corrupt(format!("source {source}: {}", e.0)).into())
        }
        k => Ok(data.apply(k)?),
    }
}

impl LoadedVersion {
    /// The feature columns, in schema order, as the learners take them.
    pub fn features(&self) -> Features {
        let mut names = Vec::new();
        let mut columns = Vec::new();
        for c in self.schema.features() {
            if !self.data.is_feature(&c.name) {
                continue;
            }
            let array = self
                .data
                .batch
                .column_by_name(&c.name)
                .expect("schema columns are in the table");
            let column = match c.kind {
                ColumnKind::Categorical => {
                    let keys = array.as_dictionary::<Int32Type>().keys();
                    Column::Categorical {
                        codes: if keys.null_count() == 0 {
                            // A dictionary's keys index its values, so none is negative: as
                            // u32 they are the same codes, read in place (the same buffer).
                            let buffer = keys.values().inner().clone();
                            Values::shared(ScalarBuffer::<u32>::new(buffer, 0, keys.len()))
                        } else {
                            keys.iter()
                                .map(|k| k.map_or(u32::MAX, |k| k as u32))
                                .collect()
                        },
                        cardinality: c.categories.len() as u32,
                    }
                }
                ColumnKind::Boolean => Column::Numeric(
                    array
                        .as_boolean()
                        .iter()
                        .map(|v| v.map_or(f64::NAN, |b| f64::from(u8::from(b))))
                        .collect(),
                ),
                ColumnKind::Numeric | ColumnKind::Time => {
                    let f = array.as_primitive::<Float64Type>();
                    if f.null_count() == 0 {
                        // Read in place: the table's own buffer (for a cached table, mapped).
                        Column::Numeric(Values::shared(f.values().clone()))
                    } else {
                        Column::Numeric(f.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
                    }
                }
            };
            names.push(c.name.clone());
            columns.push(column);
        }
        Features {
            names: names.into(),
            columns,
            rows: self.data.batch.num_rows(),
        }
    }

    /// Class index (classification) or value (regression) of every row.
    pub fn labels(&self) -> Vec<f64> {
        self.labels_at(0..self.data.batch.num_rows())
    }

    /// [`Self::labels`] of the given table rows only, in their order.
    pub fn labels_of(&self, rows: &[usize]) -> Vec<f64> {
        self.labels_at(rows.iter().copied())
    }

    fn labels_at(&self, rows: impl Iterator<Item = usize>) -> Vec<f64> {
        let t = self
            .data
            .batch
            .column_by_name(&self.schema.target)
            .expect("target in table");
        if self.schema.task == Task::Regression {
            let v = t.as_primitive::<Float64Type>().values();
            rows.map(|r| v[r]).collect()
        } else {
            let keys = t.as_dictionary::<Int32Type>().keys().values();
            rows.map(|r| f64::from(keys[r])).collect()
        }
    }

    pub fn splits(&self) -> &[Split] {
        self.data.splits()
    }

    pub fn row_ids(&self) -> &[u64] {
        gyre_data::table::row_ids(&self.data.batch)
    }

    /// Rows used for training: train or valid split, not excluded.
    pub fn train_rows(&self) -> Vec<u32> {
        (0..self.data.train_mask.len() as u32)
            .filter(|&r| self.data.train_mask[r as usize])
            .collect()
    }

    /// Row weights, or `None` when every weight is 1.
    pub fn weights(&self) -> Option<&[f64]> {
        self.data.weights()
    }

    /// The learner's view of the task.
    pub fn learn_task(&self) -> gyre_learn::Task {
        match self.schema.task {
            Task::Binary => gyre_learn::Task::Binary,
            Task::Multiclass => gyre_learn::Task::Multiclass {
                classes: self.schema.classes.len(),
            },
            Task::Regression => gyre_learn::Task::Regression,
        }
    }
}
