//! Native batch ingestion, the pure part: Druid's ingestion spec (modern and legacy shapes),
//! input formats, timestamp parsing, and rollup into time-bucketed rows.

pub mod format;
pub mod rollup;
pub mod segment;
pub mod spec;
pub mod timestamp;
#[cfg(test)]
pub(crate) mod tutorial;

pub use spec::{IngestionSpec, SpecError};
