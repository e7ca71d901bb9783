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
    /// For a source joined on a key (`add-source --key`): the key; its rows add columns, not rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub joined_on: Option<String>,
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
                        joined_on: serde_json::from_str::<serde_json::Value>(&s.options)
                            .ok()
                            .and_then(|o| {
                                o.get("join_key").and_then(|k| k.as_str()).map(String::from)
                            }),
                    })
                    .collect(),
                stats,
            });
        }
        Ok(DataReport { datasets })
    }
}

/// One step of a dataset's version chain.
#[derive(Serialize)]
pub struct VersionStep {
    pub seq: i64,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edit: Option<i64>,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub created_at: String,
    pub rows_affected: u64,
    /// What this step changed, in the version it made.
    pub change: VersionChange,
}

#[derive(Serialize, Default, Clone, PartialEq)]
pub struct VersionChange {
    pub training_rows: usize,
    pub training_rows_delta: i64,
    pub labels_changed: u64,
    pub weighted_rows: usize,
    pub dropped_features: Vec<String>,
}

#[derive(Serialize)]
pub struct VersionsReport {
    pub dataset: String,
    pub versions: Vec<VersionStep>,
}

/// A past (or the current) version, materialized and described.
#[derive(Serialize)]
pub struct VersionReport {
    pub dataset: String,
    pub version: String,
    pub training_rows: usize,
    pub excluded_rows: usize,
    pub weighted_rows: usize,
    pub dropped_features: Vec<String>,
    #[serde(flatten)]
    pub stats: TableStats,
}

impl App {
    /// The chain of versions with each edit, its reason and what it changed.
    pub fn versions(&mut self, dataset: Option<&str>) -> Result<VersionsReport, AppError> {
        let dataset = self.resolve_dataset(dataset)?;
        let entries = self.store.read(|tx| tx.versions(&dataset))?;
        let edits = self.edits_upto(&dataset, None)?;
        let mut data = self.base_table(&dataset)?;
        let mut steps = Vec::new();
        let mut previous: Option<VersionChange> = None;
        for v in entries {
            // Walk the chain: apply each edit in turn; a revert replays the edits still in effect.
            if let Some(upto) = v.edit {
                let edit = edits.iter().find(|e| e.id == upto);
                match edit.map(|e| &e.kind) {
                    Some(gyre_core::EditKind::Revert { .. }) | None => {
                        let so_far: Vec<gyre_core::Edit> =
                            edits.iter().filter(|e| e.id <= upto).cloned().collect();
                        let mut d = self.base_table(&dataset)?;
                        for e in gyre_core::edit::effective(&so_far) {
                            self.apply_edit(&mut d, &e.kind)?;
                        }
                        data = d;
                    }
                    Some(kind) => {
                        self.apply_edit(&mut data, kind)?;
                    }
                }
            }
            let training_rows = data.train_mask.iter().filter(|&&m| m).count();
            let change = VersionChange {
                training_rows,
                training_rows_delta: previous
                    .as_ref()
                    .map_or(0, |p| training_rows as i64 - p.training_rows as i64),
                labels_changed: 0,
                weighted_rows: data
                    .weights()
                    .map_or(0, |w| w.iter().filter(|&&w| w != 1.0).count()),
                dropped_features: data.dropped.clone(),
            };
            let edit = v.edit.and_then(|id| edits.iter().find(|e| e.id == id));
            let mut change = change;
            if let Some(e) = edit
                && matches!(e.kind, gyre_core::EditKind::Relabel { .. })
            {
                change.labels_changed = e.rows_affected;
            }
            previous = Some(change.clone());
            steps.push(VersionStep {
                seq: v.seq,
                version: v.id,
                edit: v.edit,
                description: v.description,
                why: edit.map(|e| e.why.clone()),
                author: edit.map(|e| e.author.clone()),
                created_at: v.created_at,
                rows_affected: edit.map_or(0, |e| e.rows_affected),
                change,
            });
        }
        Ok(VersionsReport {
            dataset,
            versions: steps,
        })
    }

    /// Materializes a version exactly and describes it.
    pub fn version(
        &mut self,
        dataset: Option<&str>,
        version: &str,
    ) -> Result<VersionReport, AppError> {
        let dataset = self.resolve_dataset(dataset)?;
        let loaded = self.load_version(&dataset, Some(version))?;
        let d = &loaded.data;
        let training_rows = d.train_mask.iter().filter(|&&m| m).count();
        let eligible = d
            .splits()
            .iter()
            .filter(|&&s| s != gyre_core::Split::Holdout)
            .count();
        Ok(VersionReport {
            dataset,
            version: loaded.version.clone(),
            training_rows,
            excluded_rows: eligible - training_rows,
            weighted_rows: d
                .weights()
                .map_or(0, |w| w.iter().filter(|&&w| w != 1.0).count()),
            dropped_features: d.dropped.clone(),
            stats: gyre_data::stats::describe(&d.batch, &loaded.schema),
        })
    }
}

/// A column of the newest version as bars: equal-width bins of a numeric column, or the most
/// frequent values of a categorical or boolean one (the rest summed as "other").
#[derive(Serialize)]
pub struct ColumnHistogram {
    pub column: String,
    pub kind: gyre_core::ColumnKind,
    pub bins: Vec<(String, usize)>,
    pub missing: usize,
}

/// Bins of a numeric column's histogram; categories shown before "other".
const HISTOGRAM_BINS: usize = 20;

impl App {
    pub fn column_histograms(
        &mut self,
        dataset: Option<&str>,
    ) -> Result<Vec<ColumnHistogram>, AppError> {
        use arrow_array::cast::AsArray;
        let dataset = self.resolve_dataset(dataset)?;
        let latest = self.load_version(&dataset, None)?;
        let batch = &latest.data.batch;
        let mut out = Vec::new();
        for c in &latest.schema.columns {
            let Some(array) = batch.column_by_name(&c.name) else {
                continue;
            };
            let missing = array.null_count();
            let bins = match c.kind {
                gyre_core::ColumnKind::Numeric => {
                    let Ok(f) = arrow_cast::cast(array, &arrow_schema::DataType::Float64) else {
                        continue;
                    };
                    let values: Vec<f64> = f
                        .as_primitive::<arrow_array::types::Float64Type>()
                        .iter()
                        .flatten()
                        .collect();
                    gyre_eval::curves::histogram(&values, HISTOGRAM_BINS)
                        .into_iter()
                        .map(|b| (format!("{:.4}..{:.4}", b.lower, b.upper), b.rows))
                        .collect()
                }
                _ => {
                    let mut counts: std::collections::HashMap<String, usize> = Default::default();
                    if let Some(dict) = array.as_dictionary_opt::<arrow_array::types::Int32Type>() {
                        // By code: one name per category, not one string per row.
                        let mut by_code = vec![0usize; dict.values().len()];
                        for k in dict.keys().iter().flatten() {
                            by_code[k as usize] += 1;
                        }
                        for (code, n) in by_code.into_iter().enumerate().filter(|x| x.1 > 0) {
                            let name =
                                gyre_data::table::display_value(dict.values().as_ref(), code);
                            *counts.entry(name).or_default() += n;
                        }
                    } else {
                        for r in 0..array.len() {
                            if array.is_valid(r) {
                                *counts
                                    .entry(gyre_data::table::display_value(array.as_ref(), r))
                                    .or_default() += 1;
                            }
                        }
                    }
                    let mut v: Vec<(String, usize)> = counts.into_iter().collect();
                    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                    if v.len() > HISTOGRAM_BINS {
                        let other: usize = v[HISTOGRAM_BINS - 1..].iter().map(|x| x.1).sum();
                        v.truncate(HISTOGRAM_BINS - 1);
                        v.push(("other".into(), other));
                    }
                    v
                }
            };
            out.push(ColumnHistogram {
                column: c.name.clone(),
                kind: c.kind,
                bins,
                missing,
            });
        }
        Ok(out)
    }
}
