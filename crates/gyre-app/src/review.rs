//! Label review: decisions on suspected label errors, one row at a time, applied as the same
//! edits the CLI makes (`edit relabel --rows`, `edit exclude`), each with the reviewer's reason.
//! Keeping a given label changes no data; it is recorded in the journal with the rows it names,
//! so a later reviewer sees that somebody looked.

use crate::edit::{EditReport, EditSpec};
use crate::{App, AppError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The journal object that records a kept label: `kept-label:DATASET:row N`.
const KEPT_LABEL: &str = "kept-label:";

/// What the reviewer decided for one row.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "snake_case", tag = "decision")]
pub enum LabelDecision {
    /// The label is wrong: it should be `to` (the suggestion or a class picked by hand).
    Relabel { to: String },
    /// The given label is right.
    Keep,
    /// The row should not be trained on.
    Exclude,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct RowDecision {
    pub row: u64,
    #[serde(flatten)]
    pub decision: LabelDecision,
}

#[derive(Serialize)]
pub struct ReviewReport {
    pub dataset: String,
    /// One edit per target class, then one exclude.
    pub edits: Vec<EditReport>,
    /// Rows whose given label was kept (recorded in the journal only).
    pub kept: Vec<u64>,
}

impl App {
    /// Applies a batch of decisions: relabels grouped by class (one edit each), excludes as one
    /// edit, keeps as one journal entry. Every decision needs the batch's reason.
    pub fn review_labels(
        &mut self,
        dataset: Option<&str>,
        decisions: &[RowDecision],
        why: Option<&str>,
    ) -> Result<ReviewReport, AppError> {
        let why = crate::require_why(why, "a label review decision", None)?;
        if decisions.is_empty() {
            return Err(AppError::invalid("no decisions to apply"));
        }
        let dataset = self.resolve_dataset(dataset)?;
        let schema = self.dataset_record(&dataset)?;
        // The last decision on a row counts (a reviewer may change their mind before applying).
        let mut last: BTreeMap<u64, &LabelDecision> = BTreeMap::new();
        for d in decisions {
            last.insert(d.row, &d.decision);
        }
        let mut relabels: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let (mut excluded, mut kept) = (Vec::new(), Vec::new());
        for (&row, &d) in &last {
            match d {
                LabelDecision::Relabel { to } => {
                    if !schema.classes.iter().any(|c| c == to) {
                        return Err(AppError::invalid(format!(
                            "row {row}: \"{to}\" is not a class of dataset {dataset} (classes: {})",
                            schema.classes.join(", ")
                        )));
                    }
                    relabels
                        .entry(to.as_str())
                        .or_default()
                        .push(row.to_string());
                }
                LabelDecision::Exclude => excluded.push(row),
                LabelDecision::Keep => kept.push(row),
            }
        }
        let mut edits = Vec::new();
        for (to, rows) in relabels {
            let spec = EditSpec::Relabel {
                rows: Some(rows),
                predicate: None,
                to: to.to_string(),
                new_class: false,
            };
            edits.push(self.edit(Some(&dataset), &spec, Some(why))?);
        }
        if !excluded.is_empty() {
            let list: Vec<String> = excluded.iter().map(u64::to_string).collect();
            let spec = EditSpec::Exclude {
                predicate: format!("row_id IN ({})", list.join(", ")),
            };
            edits.push(self.edit(Some(&dataset), &spec, Some(why))?);
        }
        if !kept.is_empty() {
            let objects: Vec<String> = kept
                .iter()
                .map(|r| format!("{KEPT_LABEL}{dataset}:row {r}"))
                .collect();
            self.record(Some(why), &objects)?;
        }
        Ok(ReviewReport {
            dataset,
            edits,
            kept,
        })
    }
}

/// Some rows of a dataset's newest version, as shown: every column's value, the current label
/// and whether the row is trained on (the label review shows each suspect this way).
#[derive(Serialize)]
pub struct RowsTable {
    pub dataset: String,
    pub version: String,
    pub columns: Vec<String>,
    pub target: String,
    pub rows: Vec<ShownRow>,
}

#[derive(Serialize)]
pub struct ShownRow {
    pub row: u64,
    /// In `columns` order.
    pub values: Vec<String>,
    pub label: String,
    pub in_training: bool,
}

impl App {
    /// Rows of `dataset` whose given label a reviewer kept (from the journal).
    pub fn kept_labels(&mut self, dataset: &str) -> Result<Vec<u64>, AppError> {
        let prefix = format!("{KEPT_LABEL}{dataset}:row ");
        let objects = self.store.read(|tx| tx.journal_objects(&prefix))?;
        let mut rows: Vec<u64> = objects
            .iter()
            .filter_map(|o| o.strip_prefix(&prefix)?.parse().ok())
            .collect();
        rows.sort_unstable();
        rows.dedup();
        Ok(rows)
    }

    /// The rows with these ids in the newest version; ids it does not hold are left out.
    pub fn rows_table(
        &mut self,
        dataset: Option<&str>,
        rows: &[u64],
    ) -> Result<RowsTable, AppError> {
        let dataset = self.resolve_dataset(dataset)?;
        let latest = self.load_version(&dataset, None)?;
        let ids = latest.row_ids();
        let batch = &latest.data.batch;
        let schema = &latest.schema;
        let columns: Vec<String> = schema
            .columns
            .iter()
            .filter(|c| c.name != schema.target)
            .map(|c| c.name.clone())
            .collect();
        let arrays: Vec<_> = columns
            .iter()
            .map(|c| batch.column_by_name(c).expect("schema column in table"))
            .collect();
        let target = batch
            .column_by_name(&schema.target)
            .expect("target column in table");
        let shown = rows
            .iter()
            .filter_map(|&id| ids.binary_search(&id).ok().map(|r| (id, r)))
            .map(|(row, r)| ShownRow {
                row,
                values: arrays
                    .iter()
                    .map(|a| gyre_data::table::display_value(a.as_ref(), r))
                    .collect(),
                label: gyre_data::table::display_value(target.as_ref(), r),
                in_training: latest.data.train_mask[r],
            })
            .collect();
        Ok(RowsTable {
            dataset,
            version: latest.version.clone(),
            columns,
            target: schema.target.clone(),
            rows: shown,
        })
    }
}
