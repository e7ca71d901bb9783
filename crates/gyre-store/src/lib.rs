//! gyre's only SQL and its object files. A project is a directory with `gyre.toml` and `.gyre/`:
//! `.gyre/gyre.db` (SQLite, WAL, foreign keys on, versioned migrations) holds the metadata, and
//! `.gyre/objects/` holds immutable content-addressed files (tables, models, predictions).
//!
//! Invariants: objects are written to `.gyre/tmp/` and renamed into place, so an object either is
//! whole or is absent; metadata changes happen in one transaction together with their journal entry.

mod client;
#[cfg(test)]
mod conformance;
mod copy;
mod error;
mod log;
mod log_sync;
mod meta;
mod migrations;
mod objects;
mod people;
mod pg;
mod project;
mod queries;
mod remote;
mod sql;
#[cfg(test)]
mod testing;
mod wire;

pub use client::{ServerClient, WhoAmI};
pub use copy::CopyReport;
pub use error::StoreError;
pub use log::{
    EncodedRecord, ErrorRecord, FeedbackRecord, LogBatch, PredictionId, PredictionLog, Served,
    ServedRecord,
};
pub use log_sync::{LogCursor, RawLog};
pub use meta::{
    AliasEvent, DatasetRecord, EditRecord, FindingEvent, FindingRecord, JournalEntry,
    NewJournalEntry, RunRecord, SeedGroupRecord, SourceRecord, SuiteRecord, VersionRecord,
};
pub use objects::Objects;
pub use people::{
    PersonRecord, Role, TokenRecord, check_person_name, hex, new_token, random_bytes, token_hash,
};
pub use project::{
    CONFIG_FILE, STATE_DIR, Store, StoreConfig, Tx, discover, server_url, write_atomic,
};
pub use queries::{
    CompareOp, JournalPage, JournalQuery, RunField, RunFilter, RunsPage, RunsQuery, is_identifier,
};
pub use wire::{JournalLine, Op};
