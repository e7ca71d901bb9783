//! gyre's shared vocabulary: the ids, schema and task types every other crate speaks.
//!
//! Pure: no I/O, no clock, no randomness.

pub mod edit;
pub mod expr;
pub mod hash;
pub mod ids;
pub mod predicate;
pub mod schema;
pub mod suggest;

pub use edit::{Edit, EditKind};
pub use expr::{Expr, ExprError, ExprKind};
pub use hash::ContentHash;
pub use ids::{DatasetName, RowId, SourceId, Version};
pub use predicate::{Predicate, PredicateError};
pub use schema::{ColumnKind, ColumnRole, ColumnSchema, DatasetSchema, Split, Task};
pub use suggest::closest;

/// Columns gyre adds to every stored table. Users may not import columns with these names.
pub const ROW_ID: &str = "row_id";
/// The split each row belongs to (`train`, `valid` or `holdout`).
pub const SPLIT: &str = "_split";
pub mod rng;
