//! The one error type of gyre-learn, with structured fields so callers can act on them.

/// Everything that can go wrong when choosing, fitting or loading a model.
#[derive(thiserror::Error, Debug)]
pub enum LearnError {
    #[error("unknown learner \"{name}\"; valid learners: {}", .valid.join(", "))]
    UnknownLearner { name: String, valid: Vec<String> },
    #[error("unknown param \"{param}\" for learner \"{learner}\"; valid params: {}", .valid.join(", "))]
    UnknownParam {
        learner: &'static str,
        param: String,
        valid: Vec<String>,
    },
    #[error("invalid value \"{value}\" for param \"{param}\" of learner \"{learner}\": {reason}")]
    InvalidParam {
        learner: &'static str,
        param: String,
        value: String,
        reason: String,
    },
    #[error("no training rows")]
    NoTrainingRows,
    #[error("invalid label {value} at row {row}: {reason}")]
    InvalidLabel {
        row: usize,
        value: f64,
        reason: String,
    },
    #[error("invalid weight {value} at row {row}: weights must be finite and non-negative")]
    InvalidWeight { row: usize, value: f64 },
    #[error("training row {row} is out of range for a table of {rows} rows")]
    RowOutOfRange { row: usize, rows: usize },
    #[error("{what} has length {found}, expected {expected}")]
    ShapeMismatch {
        what: &'static str,
        expected: usize,
        found: usize,
    },
    #[error("column \"{column}\" has {found} values, expected {expected}")]
    ColumnLength {
        column: String,
        expected: usize,
        found: usize,
    },
    #[error("binned features do not match the table: {0}")]
    BinnedMismatch(String),
    #[error("invalid task: {0}")]
    InvalidTask(String),
    #[error("this {learner} model gives no contributions: {reason}")]
    NoContributions {
        learner: &'static str,
        reason: String,
    },
    /// A learner outside gyre (a command) failed or gave output that breaks its contract.
    #[error("{0}")]
    External(String),
    #[error("corrupt model: {0}")]
    CorruptModel(String),
    #[error(
        "model format version {version} is not supported; this build reads version {supported}"
    )]
    UnsupportedModelVersion { version: u32, supported: u32 },
}
