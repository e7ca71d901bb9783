//! `gyre data`: datasets described back to their owners: schema, statistics, labels, splits, versions.

use crate::{App, AppError};
use gyre_core::{DatasetSchema, closest};
use gyre_data::TableStats;
use gyre_store::StoreError;
use serde::Serialize;

#[derive(Serialize)]
pub struct DataReport {
    pub datasets: Vec<DatasetReport>,
}

#[derive(Serialize)]
pub struct VersionSummary {
    pub version: String,
    pub seq: i64,
    pub description: String,
    pub created_at: String,
}

#[derive(Serialize)]
pub struct SourceSummary {
    pub source: String,
    pub file_name: String,
    pub rows: u64,
    pub first_row_id: u64,
    pub created_at: String,
}

#[derive(Serialize)]
pub struct DatasetReport {
    pub name: String,
    pub task: gyre_core::Task,
    pub target: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
    /// The latest version: what `gyre train` uses unless told otherwise.
    pub version: String,
    pub versions: Vec<VersionSummary>,
    pub sources: Vec<SourceSummary>,
    #[serde(flatten)]
    pub stats: TableStats,
}

impl App {
    pub(crate) fn dataset_record(&mut self, name: &str) -> Result<DatasetSchema, AppError> {
        let rec = self.store.read(|tx| tx.dataset(name))?;
        match rec {
            Some(r) => serde_json::from_str(&r.schema)
                .map_err(|e| StoreError::Corrupt(format!("schema of {name}: {e}")).into()),
            None => {
                let names: Vec<String> = self
                    .store
                    .read(|tx| tx.datasets())?
                    .into_iter()
                    .map(|d| d.name)
                    .collect();
                Err(AppError::NotFound {
                    what: "dataset",
                    name: name.to_string(),
                    suggestion: closest(name, names.iter().map(String::as_str)).map(String::from),
                })
            }
        }
    }

    /// Every dataset, or only `name`.
    pub fn data(&mut self, name: Option<&str>) -> Result<DataReport, AppError> {
        let names: Vec<String> = match name {
            Some(n) => {
                self.dataset_record(n)?;
                vec![n.to_string()]
            }
            None => self
                .store
                .read(|tx| tx.datasets())?
                .into_iter()
                .map(|d| d.name)
                .collect(),
        };
        let mut datasets = Vec::new();
        for n in names {
            let schema = self.dataset_record(&n)?;
            let (sources, versions) = self
                .store
                .read(|tx| Ok::<_, StoreError>((tx.sources(&n)?, tx.versions(&n)?)))?;
            let first = sources
                .first()
                .ok_or_else(|| StoreError::Corrupt(format!("dataset {n} has no source")))?;
            let stats: TableStats = serde_json::from_str(&first.stats)
                .map_err(|e| StoreError::Corrupt(format!("source stats: {e}")))?;
            datasets.push(DatasetReport {
                name: n.clone(),
                task: schema.task,
                target: schema.target.clone(),
                classes: schema.classes.clone(),
                version: versions.last().map(|v| v.id.clone()).unwrap_or_default(),
                versions: versions
                    .into_iter()
                    .map(|v| VersionSummary {
                        version: v.id,
                        seq: v.seq,
                        description: v.description,
                        created_at: v.created_at,
                    })
                    .collect(),
                sources: sources
                    .iter()
                    .map(|s| SourceSummary {
                        source: s.id.clone(),
                        file_name: s.file_name.clone(),
                        rows: s.rows,
                        first_row_id: s.first_row_id,
                        created_at: s.created_at.clone(),
                    })
                    .collect(),
                stats,
            });
        }
        Ok(DataReport { datasets })
    }
}
