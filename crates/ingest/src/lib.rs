//! Native batch ingestion, the pure part: Druid's ingestion spec (modern and legacy shapes),
//! input formats, timestamp parsing, and rollup into time-bucketed rows.

pub mod build;
pub mod format;
pub mod input;
pub mod rollup;
pub mod segment;
pub mod spec;
pub mod timestamp;
/// Test support: where Druid's tutorial files are (used by this crate's and the scenarios' tests).
#[doc(hidden)]
pub mod tutorial;

pub use spec::{IngestionSpec, SpecError};
