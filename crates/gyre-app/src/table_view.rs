//! A dataset version as a learner sees it: feature columns without copying more than once,
//! labels as class indices or values, and which rows train and which are held out.

use crate::{App, AppError};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type};
use arrow_array::{Array, RecordBatch};
use gyre_core::{ColumnKind, DatasetSchema, RowId, Split, Task, closest};
use gyre_learn::{Column, Features};
use gyre_store::StoreError;

/// One dataset version, loaded.
pub struct LoadedVersion {
    pub version: String,
    pub schema: DatasetSchema,
    pub batch: RecordBatch,
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

    /// Loads a version (a unique prefix of its id), or the dataset's latest.
    pub(crate) fn load_version(
        &mut self,
        dataset: &str,
        version: Option<&str>,
    ) -> Result<LoadedVersion, AppError> {
        let schema = self.dataset_record(dataset)?;
        let (versions, sources) = self
            .store
            .read(|tx| Ok::<_, StoreError>((tx.versions(dataset)?, tx.sources(dataset)?)))?;
        let chosen = match version {
            None => versions.last().cloned(),
            Some(v) => {
                let matches: Vec<_> = versions.iter().filter(|r| r.id.starts_with(v)).collect();
                match matches.len() {
                    1 => Some(matches[0].clone()),
                    0 => {
                        return Err(AppError::NotFound {
                            what: "version",
                            name: v.to_string(),
                            suggestion: closest(v, versions.iter().map(|r| &r.id[..12]))
                                .map(String::from),
                        });
                    }
                    _ => {
                        return Err(AppError::invalid(format!(
                            "version prefix \"{v}\" is ambiguous; give more characters"
                        )));
                    }
                }
            }
        }
        .ok_or_else(|| StoreError::Corrupt(format!("dataset {dataset} has no version")))?;
        let source = sources
            .first()
            .ok_or_else(|| StoreError::Corrupt(format!("dataset {dataset} has no source")))?;
        let object = gyre_core::ContentHash::parse(&source.object)
            .ok_or_else(|| StoreError::Corrupt(format!("bad object id {}", source.object)))?;
        let bytes = self.store.objects().get(&object)?;
        let batch = gyre_data::table::from_parquet(bytes.into())?;
        Ok(LoadedVersion {
            version: chosen.id,
            schema,
            batch,
        })
    }
}

impl LoadedVersion {
    /// The feature columns, in schema order, as the learners take them.
    pub fn features(&self) -> Features {
        let mut names = Vec::new();
        let mut columns = Vec::new();
        for c in self.schema.features() {
            let array = self
                .batch
                .column_by_name(&c.name)
                .expect("schema columns are in the table");
            let column = match c.kind {
                ColumnKind::Categorical => {
                    let d = array.as_dictionary::<Int32Type>();
                    Column::Categorical {
                        codes: d
                            .keys()
                            .iter()
                            .map(|k| k.map_or(u32::MAX, |k| k as u32))
                            .collect(),
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
                        Column::Numeric(f.values().to_vec())
                    } else {
                        Column::Numeric(f.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
                    }
                }
            };
            names.push(c.name.clone());
            columns.push(column);
        }
        Features {
            names,
            columns,
            rows: self.batch.num_rows(),
        }
    }

    /// Class index (classification) or value (regression) of every row.
    pub fn labels(&self) -> Vec<f64> {
        let t = self
            .batch
            .column_by_name(&self.schema.target)
            .expect("target in table");
        if self.schema.task == Task::Regression {
            t.as_primitive::<Float64Type>().values().to_vec()
        } else {
            t.as_dictionary::<Int32Type>()
                .keys()
                .values()
                .iter()
                .map(|&k| f64::from(k))
                .collect()
        }
    }

    pub fn splits(&self) -> Vec<Split> {
        gyre_data::table::splits(&self.batch)
    }

    pub fn row_ids(&self) -> Vec<RowId> {
        gyre_data::table::row_ids(&self.batch)
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
