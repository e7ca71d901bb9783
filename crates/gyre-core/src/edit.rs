//! Edits: the levers a team pulls on its data, as values. Each is stored with its author, time,
//! reason and the rows it affected; a dataset version is the hash of its sources plus the edits in
//! effect, so an edit followed by its revert gives back the original version.

use crate::{ContentHash, Predicate};
use serde::{Deserialize, Serialize};

/// What an edit does. Closed: a new kind must be handled everywhere edits are interpreted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum EditKind {
    /// Leave matching training rows out of training (evaluation rows are never dropped).
    Exclude { predicate: Predicate },
    /// Bring back matching training rows that an earlier exclude removed.
    Include { predicate: Predicate },
    /// Fix the ground truth of the listed rows or of matching rows, in every split.
    Relabel {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rows: Option<Vec<u64>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        predicate: Option<Predicate>,
        to: String,
    },
    /// Multiply the training weight of matching training rows.
    Weight { predicate: Predicate, by: f64 },
    /// Append the rows of another imported source (new row ids continue the count), or with
    /// `key`, join its other columns onto the rows with the same key.
    AddSource {
        source: String,
        rows: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
    /// Stop using a column as a feature.
    DropFeature { column: String },
    /// A feature computed from each row's columns (stored as its canonical SQL text).
    AddFeature { name: String, expr: crate::Expr },
    /// Undo an earlier edit (by its number).
    Revert { edit: i64 },
}

impl EditKind {
    pub fn name(&self) -> &'static str {
        match self {
            EditKind::Exclude { .. } => "exclude",
            EditKind::Include { .. } => "include",
            EditKind::Relabel { .. } => "relabel",
            EditKind::Weight { .. } => "weight",
            EditKind::AddSource { .. } => "add-source",
            EditKind::DropFeature { .. } => "drop-feature",
            EditKind::AddFeature { .. } => "add-feature",
            EditKind::Revert { .. } => "revert",
        }
    }

    /// A short readable description (`exclude where age < 25`).
    pub fn describe(&self) -> String {
        match self {
            EditKind::Exclude { predicate } => format!("exclude where {predicate}"),
            EditKind::Include { predicate } => format!("include where {predicate}"),
            EditKind::Relabel {
                rows,
                predicate,
                to,
            } => match (rows, predicate) {
                (Some(r), _) => format!("relabel {} row(s) to '{to}'", r.len()),
                (_, Some(p)) => format!("relabel where {p} to '{to}'"),
                _ => format!("relabel to '{to}'"),
            },
            EditKind::Weight { predicate, by } => format!("weight where {predicate} by {by}"),
            EditKind::AddSource { source, rows, key } => {
                let short = &source[..source.len().min(12)];
                match key {
                    Some(k) => format!("join source {short} on {k} ({rows} rows matched)"),
                    None => format!("add source {short} ({rows} rows)"),
                }
            }
            EditKind::DropFeature { column } => format!("drop feature {column}"),
            EditKind::AddFeature { name, expr } => format!("add feature {name} = {expr}"),
            EditKind::Revert { edit } => format!("revert edit #{edit}"),
        }
    }
}

/// An edit as stored: its number within the project, what it does, and who did it and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Edit {
    pub id: i64,
    pub dataset: String,
    #[serde(flatten)]
    pub kind: EditKind,
    pub why: String,
    pub author: String,
    pub time: String,
    pub rows_affected: u64,
}

/// The edits in effect after `edits` (in order): reverts and the edits they undo drop out.
pub fn effective(edits: &[Edit]) -> Vec<&Edit> {
    let reverted: Vec<i64> = edits
        .iter()
        .filter_map(|e| match e.kind {
            EditKind::Revert { edit } => Some(edit),
            _ => None,
        })
        .collect();
    edits
        .iter()
        .filter(|e| !matches!(e.kind, EditKind::Revert { .. }) && !reverted.contains(&e.id))
        .collect()
}

/// A version id: the hash of the dataset's first source and the kinds of the edits in effect.
pub fn version_id(first_source: &str, effective_edits: &[&EditKind]) -> ContentHash {
    let doc = serde_json::json!({ "sources": [first_source], "edits": effective_edits });
    ContentHash::of_parts(&[b"gyre-version-v1", doc.to_string().as_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(id: i64, kind: EditKind) -> Edit {
        Edit {
            id,
            dataset: "d".into(),
            kind,
            why: "w".into(),
            author: "a".into(),
            time: "t".into(),
            rows_affected: 0,
        }
    }

    #[test]
    fn revert_restores_the_version() {
        let base = version_id("s", &[]);
        let ex = EditKind::Exclude {
            predicate: Predicate::parse("age < 25").unwrap(),
        };
        let edits = vec![edit(1, ex.clone())];
        let eff: Vec<&EditKind> = effective(&edits).iter().map(|e| &e.kind).collect();
        assert_ne!(version_id("s", &eff), base);
        let edits = vec![edit(1, ex), edit(2, EditKind::Revert { edit: 1 })];
        let eff: Vec<&EditKind> = effective(&edits).iter().map(|e| &e.kind).collect();
        assert!(eff.is_empty());
        assert_eq!(version_id("s", &eff), base);
    }

    #[test]
    fn edits_serialize_with_their_kind() {
        let e = edit(
            3,
            EditKind::DropFeature {
                column: "fnlwgt".into(),
            },
        );
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["kind"], "drop-feature");
        assert_eq!(v["column"], "fnlwgt");
        let back: Edit = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }
}
