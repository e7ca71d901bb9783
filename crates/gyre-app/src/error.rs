//! The API's error: what went wrong, in words that name the thing, with a hint where one helps.

use gyre_data::DataError;
use gyre_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Learn(#[from] gyre_learn::LearnError),
    #[error("{message}")]
    Invalid {
        message: String,
        hint: Option<String>,
    },
    #[error("{what} \"{name}\" not found{}", suggestion.as_ref().map(|s| format!("; did you mean \"{s}\"?")).unwrap_or_default())]
    NotFound {
        what: &'static str,
        name: String,
        suggestion: Option<String>,
    },
}

impl AppError {
    pub fn invalid(message: impl Into<String>) -> Self {
        AppError::Invalid {
            message: message.into(),
            hint: None,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            AppError::Store(e) => e.hint(),
            AppError::Data(e) => e.hint(),
            AppError::Learn(_) => None,
            AppError::Invalid { hint, .. } => hint.clone(),
            AppError::NotFound { .. } => None,
        }
    }
}
