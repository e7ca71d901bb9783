//! Errors of reading and importing data; each names the file and, where known, the line, column or value.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: no such file")]
    NotFound { path: PathBuf },
    #[error("{path}: is a directory, not a data file")]
    IsDirectory { path: PathBuf },
    #[error("{path}: cannot read: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: unknown file type; gyre reads CSV (.csv), gzipped CSV (.csv.gz) and Parquet (.parquet)"
    )]
    UnknownFileType { path: PathBuf },
    #[error("{path}: the file is empty")]
    Empty { path: PathBuf },
    #[error("{path}: the file has a header but no data rows")]
    HeaderOnly { path: PathBuf },
    #[error("{path}: column {column} has an empty name in the header")]
    EmptyColumnName { path: PathBuf, column: usize },
    #[error("{path}: duplicate column name \"{name}\" (columns {first} and {second})")]
    DuplicateColumn {
        path: PathBuf,
        name: String,
        first: usize,
        second: usize,
    },
    #[error("{path}: column name \"{name}\" is reserved by gyre")]
    ReservedColumn { path: PathBuf, name: String },
    #[error("{path}: line {line}: expected {expected} fields, found {found}")]
    Ragged {
        path: PathBuf,
        line: u64,
        expected: usize,
        found: usize,
    },
    #[error("{path}: line {line}: invalid UTF-8{}", field.map(|f| format!(" in field {f}")).unwrap_or_default())]
    InvalidUtf8 {
        path: PathBuf,
        line: u64,
        field: Option<usize>,
    },
    #[error("{path}: {message}")]
    Malformed { path: PathBuf, message: String },
    #[error("{path}: column \"{name}\" not found{}", suggestion.as_ref().map(|s| format!("; did you mean \"{s}\"?")).unwrap_or_default())]
    UnknownColumn {
        path: PathBuf,
        name: String,
        suggestion: Option<String>,
    },
    #[error("{path}: {location}: {what}")]
    BadValue {
        path: PathBuf,
        location: String,
        what: String,
    },
    #[error("{path}: target column \"{target}\" {why}")]
    BadTarget {
        path: PathBuf,
        target: String,
        why: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("parquet: {0}")]
    Parquet(String),
    #[error("arrow ipc: {0}")]
    Ipc(String),
}

impl DataError {
    /// A short hint a person can act on, where there is one.
    pub fn hint(&self) -> Option<String> {
        match self {
            DataError::UnknownFileType { .. } => {
                Some("name the file with a .csv, .csv.gz or .parquet extension".into())
            }
            DataError::BadTarget { why, .. } if why.contains("missing a value") => Some(
                "--missing-target drop leaves rows without a target out (and counts them)".into(),
            ),
            DataError::ReservedColumn { name, .. } if name == gyre_core::ROW_ID => {
                Some("to keep your own ids, rename the column and pass it with --id-column".into())
            }
            _ => None,
        }
    }
}
