//! `gyre import`: a file becomes a dataset's first source and first version.
//!
//! Order of writes: the table object is written (temp file, rename), then the dataset, source,
//! version and journal entry commit in one transaction. A crash before the commit leaves at most an
//! unreferenced temp file, swept by the next command.

use crate::{App, AppError, now};
use gyre_core::hash::Hasher;
use gyre_core::{ColumnKind, ColumnRole, ContentHash, DatasetName, Task};
use gyre_data::{ImportOptions, SplitSpec};
use gyre_store::{DatasetRecord, NewJournalEntry, SourceRecord, VersionRecord};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// What `gyre import` was asked.
#[derive(Clone, Debug, Default)]
pub struct ImportRequest {
    pub path: PathBuf,
    pub target: String,
    pub name: Option<String>,
    pub split_column: Option<String>,
    pub holdout: Option<f64>,
    pub seed: Option<u64>,
    pub time_column: Option<String>,
    pub id_column: Option<String>,
    pub na: Option<Vec<String>>,
    pub task: Option<Task>,
    /// The label as a SQL expression over the file's columns (`--target-expr`).
    pub target_expr: Option<String>,
    /// `--missing-target drop`: leave rows without a target out instead of refusing the file.
    pub drop_missing_target: bool,
    /// Columns left out of the features.
    pub ignore: Vec<String>,
    /// A binary task's positive class (default: the second class in sorted order).
    pub positive: Option<String>,
}

#[derive(Serialize)]
pub struct ImportColumn {
    pub name: String,
    pub kind: ColumnKind,
    pub role: ColumnRole,
    pub missing: usize,
}

#[derive(Serialize)]
pub struct ImportReport {
    pub dataset: String,
    pub version: String,
    pub source: String,
    pub rows: u64,
    pub task: Task,
    pub target: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
    pub columns: Vec<ImportColumn>,
    pub splits: BTreeMap<String, usize>,
    /// True when these bytes were imported before with the same options: nothing was written.
    pub already_imported: bool,
    /// Rows of the file left out because their target was missing (`--missing-target drop`).
    pub dropped_rows: usize,
    /// A binary task's positive class, and whether it was chosen (else the default: the second
    /// class in sorted order).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub positive_class: Option<String>,
    /// Columns that are no features (`--ignore`, and the columns `--target-expr` reads).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<String>,
}

const DEFAULT_HOLDOUT: f64 = 0.2;

impl ImportRequest {
    fn options(&self) -> Result<ImportOptions, AppError> {
        if self.split_column.is_some() && self.holdout.is_some() {
            return Err(AppError::invalid(
                "--split-column and --holdout cannot be used together",
            ));
        }
        let split = match (&self.split_column, &self.time_column) {
            (Some(column), _) => SplitSpec::Column {
                column: column.clone(),
            },
            (None, Some(column)) => SplitSpec::Time {
                column: column.clone(),
                fraction: self.holdout.unwrap_or(DEFAULT_HOLDOUT),
            },
            (None, None) => SplitSpec::Holdout {
                fraction: self.holdout.unwrap_or(DEFAULT_HOLDOUT),
                seed: self.seed.unwrap_or(0),
            },
        };
        Ok(ImportOptions {
            target: self.target.clone(),
            split,
            time_column: self.time_column.clone(),
            id_column: self.id_column.clone(),
            na: self.na.clone(),
            task: self.task,
            first_row_id: 0,
            appending: false,
            target_expr: self
                .target_expr
                .as_deref()
                .map(gyre_core::Expr::parse)
                .transpose()
                .map_err(|e| AppError::Invalid {
                    message: format!("--target-expr: {e}"),
                    hint: e.hint(),
                })?,
            missing_target: if self.drop_missing_target {
                gyre_data::import::MissingTarget::Drop
            } else {
                gyre_data::import::MissingTarget::Fail
            },
            ignore: self.ignore.clone(),
            positive: self.positive.clone(),
        })
    }
}

pub(crate) fn hash_file(path: &Path) -> Result<ContentHash, AppError> {
    // Let the data crate produce its precise errors (missing, directory, unknown type) first.
    gyre_data::input::detect(path)?;
    let mut f = std::fs::File::open(path).map_err(|e| gyre_store::StoreError::io(path, e))?;
    let mut h = Hasher::default();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| gyre_store::StoreError::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finish())
}

impl App {
    pub fn import(
        &mut self,
        req: &ImportRequest,
        on_rows: &dyn Fn(usize),
    ) -> Result<ImportReport, AppError> {
        let opts = req.options()?;
        let options_json = serde_json::to_string(&opts).expect("options serialize");
        let file_hash = hash_file(&req.path)?;
        let source_id = ContentHash::of_parts(&[
            b"gyre-source-v1",
            file_hash.as_str().as_bytes(),
            options_json.as_bytes(),
        ]);
        if let Some(existing) = self.store.read(|tx| tx.source(source_id.as_str()))? {
            return self.report_existing(&existing, true);
        }
        let file_name = req
            .path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let name = match &req.name {
            Some(n) => DatasetName::parse(n).map_err(AppError::invalid)?,
            None => DatasetName::from_file_name(&file_name),
        };
        if self.store.read(|tx| tx.dataset(name.as_str()))?.is_some() {
            return Err(AppError::Invalid {
                message: format!("dataset \"{name}\" already exists with other data or options"),
                hint: Some(
                    "import it under another name with --name NAME; adding rows to a dataset is an edit (add-source)"
                        .into(),
                ),
            });
        }

        let imported = gyre_data::import(&req.path, &opts, on_rows)?;
        let bytes = gyre_data::table::to_parquet(&imported.batch)?;
        let object = self.store.objects().put(&bytes)?;
        drop(bytes);

        let version = gyre_core::edit::version_id(source_id.as_str(), &[]);
        let created_at = now();
        let schema_json = serde_json::to_string(&imported.schema).expect("schema serializes");
        let stats_json = serde_json::to_string(&imported.stats).expect("stats serialize");
        let source = SourceRecord {
            id: source_id.to_string(),
            dataset: name.to_string(),
            seq: 0,
            file_name: file_name.clone(),
            options: options_json,
            object: object.to_string(),
            rows: imported.batch.num_rows() as u64,
            first_row_id: 0,
            stats: stats_json,
            created_at: created_at.clone(),
        };
        let (user, command) = (self.user.clone(), self.command.clone());
        self.store.write(|tx| {
            tx.insert_dataset(&DatasetRecord {
                name: name.to_string(),
                schema: schema_json,
                created_at: created_at.clone(),
            })?;
            tx.insert_source(&source)?;
            tx.insert_version(&VersionRecord {
                id: version.to_string(),
                dataset: name.to_string(),
                seq: 0,
                edit: None,
                description: format!("import {file_name}"),
                created_at: created_at.clone(),
            })?;
            tx.append_journal(&NewJournalEntry {
                time: &created_at,
                user: &user,
                command: &command,
                why: None,
                objects: &[
                    format!("dataset:{name}"),
                    format!("source:{source_id}"),
                    format!("version:{version}"),
                    format!("object:{object}"),
                ],
            })
            .map_err(AppError::from)
        })?;
        // The decoded table goes into the cache now, so the commands that follow read it
        // without decoding (and a command that fails later writes no cache entry of its own).
        // Decoded from the stored Parquet, as every reader sees it; the imported copy is
        // dropped first, so the two are not held at once.
        drop(imported);
        let _ = self.stored_table(&object);
        self.report_existing(&source, false)
    }

    fn report_existing(
        &mut self,
        source: &SourceRecord,
        already_imported: bool,
    ) -> Result<ImportReport, AppError> {
        let dataset = self.dataset_record(&source.dataset)?;
        let stats: gyre_data::TableStats = serde_json::from_str(&source.stats)
            .map_err(|e| gyre_store::StoreError::Corrupt(format!("source stats: {e}")))?;
        let version = self
            .store
            .read(|tx| tx.versions(&source.dataset))?
            .into_iter()
            .find(|v| v.seq == 0)
            .map(|v| v.id)
            .unwrap_or_default();
        Ok(ImportReport {
            dataset: source.dataset.clone(),
            version,
            source: source.id.clone(),
            rows: source.rows,
            task: dataset.task,
            target: dataset.target.clone(),
            classes: dataset.classes.clone(),
            columns: stats
                .columns
                .iter()
                .map(|c| ImportColumn {
                    name: c.name.clone(),
                    kind: c.kind,
                    role: c.role,
                    missing: c.missing,
                })
                .collect(),
            ignored: stats
                .columns
                .iter()
                .filter(|c| c.role == ColumnRole::Ignored)
                .map(|c| c.name.clone())
                .collect(),
            positive_class: dataset.positive_class().map(|(_, c)| c.to_string()),
            splits: stats.splits,
            already_imported,
            dropped_rows: stats.dropped_rows,
        })
    }
}
