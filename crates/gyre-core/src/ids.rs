//! Newtypes for the ids that cross crate boundaries, so a row id is never confused with a count.

use crate::ContentHash;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A stable row id: the first source's rows are 0..n-1 in file order, later sources continue the count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RowId(pub u64);

/// An imported table, named by the content hash of its input bytes and import options.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SourceId(pub ContentHash);

/// A dataset version: the content hash of its sources plus its edits.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Version(pub ContentHash);

/// A dataset's name within a project (by default the imported file's stem).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DatasetName(String);

impl DatasetName {
    /// Names are what people type: letters, digits, `-`, `_`, `.`; 1 to 64 characters.
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !s.starts_with('.');
        if ok {
            Ok(DatasetName(s.to_string()))
        } else {
            Err(format!(
                "invalid dataset name \"{s}\": use 1 to 64 letters, digits, '-', '_' or '.'"
            ))
        }
    }

    /// A usable name derived from a file stem (`adult.csv.gz` -> `adult`).
    pub fn from_file_name(file_name: &str) -> Self {
        let stem = file_name
            .trim_end_matches(".gz")
            .trim_end_matches(".csv")
            .trim_end_matches(".parquet")
            .trim_end_matches(".pq");
        let cleaned: String = stem
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .take(64)
            .collect();
        let cleaned = cleaned.trim_start_matches('.').to_string();
        DatasetName(if cleaned.is_empty() {
            "data".to_string()
        } else {
            cleaned
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_names() {
        assert_eq!(
            DatasetName::from_file_name("adult.csv.gz").as_str(),
            "adult"
        );
        assert_eq!(
            DatasetName::from_file_name("my data.parquet").as_str(),
            "my_data"
        );
        assert!(DatasetName::parse("ok-name_1").is_ok());
        assert!(DatasetName::parse("bad name").is_err());
        assert!(DatasetName::parse("").is_err());
    }
}
