//! A dataset's schema: each column's kind and role, the target, the task and its classes.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What kind of values a column holds, as inferred at import.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnKind {
    Numeric,
    Categorical,
    Boolean,
    /// An ordering column (`--time-column`), stored as given and not used as a feature.
    Time,
}

impl ColumnKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnKind::Numeric => "numeric",
            ColumnKind::Categorical => "categorical",
            ColumnKind::Boolean => "boolean",
            ColumnKind::Time => "time",
        }
    }
}

/// What a column is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnRole {
    Feature,
    Target,
    /// The `--id-column` key, accepted wherever a row id is; never a feature.
    Id,
    /// The `--time-column`; never a feature.
    Time,
    /// Left out of the features at import (`--ignore`, or read by `--target-expr`): still a
    /// column for predicates, suites, slices and `why`.
    Ignored,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColumnSchema {
    pub name: String,
    pub kind: ColumnKind,
    pub role: ColumnRole,
    /// Sorted distinct values of a categorical column; a category's code is its index here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
}

/// The learning task, inferred from the target or given with `--task`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    Binary,
    Multiclass,
    Regression,
}

impl Task {
    pub fn parse(s: &str) -> Option<Task> {
        match s.to_ascii_lowercase().as_str() {
            "binary" => Some(Task::Binary),
            "multiclass" => Some(Task::Multiclass),
            "regression" => Some(Task::Regression),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Task::Binary => "binary",
            Task::Multiclass => "multiclass",
            Task::Regression => "regression",
        }
    }

    pub fn is_classification(self) -> bool {
        !matches!(self, Task::Regression)
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which part of the data a row belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    /// Rows set aside for validation by the input's own split column.
    Valid,
    Holdout,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Valid, Split::Holdout];

    /// Split-column values, case-insensitive: train, valid/validation, test/holdout.
    pub fn parse(s: &str) -> Option<Split> {
        match s.trim().to_ascii_lowercase().as_str() {
            "train" | "training" => Some(Split::Train),
            "valid" | "validation" | "val" => Some(Split::Valid),
            "test" | "holdout" => Some(Split::Holdout),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Valid => "valid",
            Split::Holdout => "holdout",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetSchema {
    /// The stored columns in table order, without gyre's own `row_id` and `_split`.
    pub columns: Vec<ColumnSchema>,
    pub target: String,
    pub task: Task,
    /// Class labels, sorted, for classification; a label's index here is its class index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_column: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_column: Option<String>,
    /// A binary task's positive class, chosen at import (`--positive`); by default the second
    /// class in sorted order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positive: Option<String>,
}

impl DatasetSchema {
    /// A binary task's positive class and its index (the default: the second class); `None`
    /// for other tasks.
    pub fn positive_class(&self) -> Option<(usize, &str)> {
        if self.task != Task::Binary || self.classes.len() != 2 {
            return None;
        }
        let i = self
            .positive
            .as_ref()
            .and_then(|p| self.classes.iter().position(|c| c == p))
            .unwrap_or(1);
        Some((i, self.classes[i].as_str()))
    }

    /// The index metrics treat as positive (1 unless a binary task chose class 0).
    pub fn positive_index(&self) -> usize {
        self.positive_class().map_or(1, |(i, _)| i)
    }

    pub fn column(&self, name: &str) -> Option<&ColumnSchema> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn features(&self) -> impl Iterator<Item = &ColumnSchema> {
        self.columns
            .iter()
            .filter(|c| c.role == ColumnRole::Feature)
    }

    pub fn column_names(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|c| c.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_values_are_case_insensitive() {
        assert_eq!(Split::parse("TEST"), Some(Split::Holdout));
        assert_eq!(Split::parse(" Train "), Some(Split::Train));
        assert_eq!(Split::parse("Validation"), Some(Split::Valid));
        assert_eq!(Split::parse("dev"), None);
    }

    #[test]
    fn schema_round_trips_as_json() {
        let s = DatasetSchema {
            columns: vec![ColumnSchema {
                name: "sex".into(),
                kind: ColumnKind::Categorical,
                role: ColumnRole::Feature,
                categories: vec!["Female".into(), "Male".into()],
            }],
            target: "income".into(),
            task: Task::Binary,
            classes: vec!["<=50K".into(), ">50K".into()],
            id_column: None,
            time_column: None,
            positive: None,
        };
        let back: DatasetSchema =
            serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }
}
