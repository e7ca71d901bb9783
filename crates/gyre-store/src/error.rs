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
    /// A PostgreSQL error with its causes (the server's message), never the connection string.
    #[error("team metadata store (PostgreSQL): {0}")]
    Postgres(String),
    /// The S3-compatible object server refused or failed a request.
    #[error("team object store: {0}")]
    Remote(String),
    /// The `[store]` section of gyre.toml, or a store URL given to `gyre init`, is unusable.
    #[error("{0}")]
    Config(String),
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
    /// The team server refused the token (401) or the person's role (403).
    #[error("team server {url}: {message}")]
    Denied {
        url: String,
        status: u16,
        message: String,
    },
    /// The team server could not be reached, or refused or failed a request.
    #[error("team server {url}: {message}")]
    Server { url: String, message: String },
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        use std::error::Error;
        let mut text = e.to_string();
        let mut cause = e.source();
        while let Some(c) = cause {
            text.push_str(": ");
            text.push_str(c.to_string().trim());
            cause = c.source();
        }
        StoreError::Postgres(text)
    }
}

impl StoreError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }

    /// Whether the store refused a write because it breaks a constraint (a duplicate id, a
    /// reference to nothing): the request's conflict with what the store holds.
    pub fn is_conflict(&self) -> bool {
        match self {
            StoreError::Sql(rusqlite::Error::SqliteFailure(f, _)) => {
                f.code == rusqlite::ErrorCode::ConstraintViolation
            }
            StoreError::Postgres(m) => m.contains("violates"),
            _ => false,
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
            StoreError::Postgres(m) if m.contains("connecting") || m.contains("password") => Some(
                "check that the server runs and the URL in gyre.toml's [store] names it; the \
                 password comes from PGPASSWORD or ~/.pgpass"
                    .into(),
            ),
            StoreError::Remote(_) => Some(
                "check the bucket exists, the endpoint ([store] endpoint or AWS_ENDPOINT_URL) and \
                 the credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or \
                 ~/.aws/credentials)"
                    .into(),
            ),
            StoreError::Denied { status: 401, url, .. } => Some(format!(
                "ask a maintainer for a token (gyre server user add / gyre server token create) \
                 and set GYRE_TOKEN, or put it in ~/.config/gyre/config.toml as \
                 [servers.\"{url}\"] token = \"...\""
            )),
            StoreError::Denied { .. } => {
                Some("ask a maintainer of the project for a role that may do this".into())
            }
            StoreError::Server { url, .. } => Some(format!(
                "check that `gyre server` runs at {url} and this machine reaches it"
            )),
            StoreError::TooNew { .. } => {
                Some("install the newer gyre that wrote it (gyre --version)".into())
            }
            _ => None,
        }
    }
}
