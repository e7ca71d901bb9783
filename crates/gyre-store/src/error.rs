//! Errors of the project store.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path} is already a gyre project")]
    AlreadyProject { path: PathBuf },
    #[error("not inside a gyre project (no gyre.toml in {start} or any directory above it)")]
    NoProject { start: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("metadata store: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error(
        "the project at {path} was written by a newer gyre (schema {found}, this gyre knows up to {known})"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("object {id} is missing from the object store")]
    MissingObject { id: String },
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    /// A query a caller built that the store cannot run (a bad field name).
    #[error("{0}")]
    Invalid(String),
}

impl StoreError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            StoreError::NoProject { .. } => Some(
                "run `gyre init` to create a project here, or pass --project DIR (or set GYRE_PROJECT)"
                    .into(),
            ),
            StoreError::AlreadyProject { .. } => {
                Some("use the existing project, or choose another directory".into())
            }
            _ => None,
        }
    }
}
