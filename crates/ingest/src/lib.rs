//! Native batch ingestion, the pure part: Druid's ingestion spec (modern and legacy shapes),
//! input formats, timestamp parsing, transforms, rollup with spilling, and Parquet segment files.

pub mod aggregate;
pub mod build;
mod bytes;
mod dict_column;
pub mod dictionary;
pub mod expr;
pub mod filter;
mod flat_json;
pub mod format;
mod hash_index;
pub mod input;
pub mod input_policy;
mod lines;
mod metric_words;
pub mod moving_average;
pub mod parse_report;
pub mod partitioning;
mod radix;
pub mod record;
pub mod row_builder;
pub mod row_store;
pub mod segment;
pub mod spec;
pub mod timestamp;
/// Test support: where Druid's tutorial files are (used by this crate's and the scenarios' tests).
#[doc(hidden)]
pub mod tutorial;

pub use spec::{IngestionSpec, SpecError};
