//! gyre's tables: reading CSV, CSV.gz and Parquet into Arrow, inferring column kinds and the task,
//! assigning row ids and splits, describing columns, and writing the stored Parquet form.
//!
//! Pure apart from reading the input file: no SQL, no clock, no global RNG.

pub mod derive;
pub mod error;
pub mod filter;
pub mod import;
pub mod infer;
pub mod input;
pub mod output;
pub mod split;
pub mod stats;
pub mod table;
pub mod version;

pub use error::DataError;
pub use import::{ImportOptions, Imported, import};
pub use split::SplitSpec;
pub use stats::{ColumnStats, TableStats};
