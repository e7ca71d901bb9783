//! gyre's evaluation: metrics computed from per-example predictions, so that any run can be
//! scored again later (on a new suite, against fixed labels) without retraining.
//!
//! Pure: no I/O, no clock, no randomness.

// Numeric code here indexes several parallel arrays (rows, classes) at once.
#![allow(clippy::needless_range_loop)]

pub mod compare;
pub mod curves;
pub mod drift;
pub mod label_issues;
pub mod label_reliability;
pub mod metrics;
pub mod online;
pub mod slice_groups;
pub mod slices;

pub use metrics::{Metrics, Scores, classification_metrics, regression_metrics};
