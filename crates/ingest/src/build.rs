//! Reading every input of a spec into segment partitions: records parsed, filtered, rolled up,
//! counted, and cut by `segmentGranularity` and `maxRowsPerSegment`. Parse errors past
//! `maxParseExceptions` stop the build with Druid's message.

use std::io::BufRead;

use crate::format::RecordReader;
use crate::input::Input;
use crate::rollup::{Rollup, RowStats};
use crate::segment::{partition, Partition};
use crate::spec::{Dimension, IngestionSpec};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BuildError {
    #[error("cannot read {input}: {message}")]
    Input { input: String, message: String },
    #[error("Max parse exceptions[{0}] exceeded")]
    TooManyParseExceptions(u64),
}

#[derive(Debug)]
pub struct Built {
    pub partitions: Vec<Partition>,
    /// The segment's dimensions (discovered ones included).
    pub dimensions: Vec<Dimension>,
    pub stats: RowStats,
}

/// Reads `inputs` in order. `on_parse_error` hears each unusable record (for
/// `logParseExceptions`).
pub fn build(
    spec: &IngestionSpec,
    inputs: &[Input],
    on_parse_error: &mut dyn FnMut(&str),
) -> Result<Built, BuildError> {
    let mut rollup = Rollup::new(spec);
    let max = spec.tuning.max_parse_exceptions;
    for input in inputs {
        let fail = |e: std::io::Error| BuildError::Input {
            input: input.describe(),
            message: e.to_string(),
        };
        let mut reader = input.open().map_err(fail)?;
        let mut records = RecordReader::new(spec.input_format.clone());
        let mut buf = Vec::with_capacity(1024);
        let mut line_no = 0u64;
        loop {
            buf.clear();
            if reader.read_until(b'\n', &mut buf).map_err(fail)? == 0 {
                break;
            }
            line_no += 1;
            let errors_before = rollup.stats.unparseable + rollup.stats.processed_with_error;
            let problem = match std::str::from_utf8(&buf) {
                Err(_) => {
                    rollup.unparseable();
                    Some("the line is not valid UTF-8".to_string())
                }
                Ok(line) => match records.read(line) {
                    Err(e) => {
                        rollup.unparseable();
                        Some(e)
                    }
                    Ok(None) => None,
                    Ok(Some(row)) => rollup.add(&row).err(),
                },
            };
            let errors = rollup.stats.unparseable + rollup.stats.processed_with_error;
            if errors > errors_before {
                let why = problem.unwrap_or_else(|| "a field could not be read as its type".into());
                on_parse_error(&format!("{} line {line_no}: {why}", input.describe()));
                if errors > max {
                    return Err(BuildError::TooManyParseExceptions(max));
                }
            }
        }
    }
    let dimensions = rollup.dimensions().to_vec();
    let stats = rollup.stats;
    let rows = rollup.finish();
    Ok(Built {
        partitions: partition(
            rows,
            spec.granularity.segment,
            spec.tuning.max_rows_per_segment,
        ),
        dimensions,
        stats,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(max_parse_exceptions: Option<u64>) -> IngestionSpec {
        let mut tuning = json!({"type":"index"});
        if let Some(m) = max_parse_exceptions {
            tuning["maxParseExceptions"] = json!(m);
        }
        IngestionSpec::from_task(&json!({"type":"index","spec":{
            "dataSchema":{"dataSource":"t","timestampSpec":{"column":"ts","format":"iso"},
                "dimensionsSpec":{"dimensions":["page"]},
                "metricsSpec":[{"type":"count","name":"count"},{"type":"longSum","name":"n","fieldName":"n"}],
                "granularitySpec":{"segmentGranularity":"day","queryGranularity":"hour","rollup":true}},
            "ioConfig":{"type":"index","inputSource":{"type":"inline","data":""},"inputFormat":{"type":"json"}},
            "tuningConfig":tuning}}))
        .unwrap()
    }

    const DATA: &str = r#"{"ts":"2024-01-01T01:10:00Z","page":"a","n":1}
{"ts":"2024-01-01T01:20:00Z","page":"a","n":2}
not json
{"ts":"2024-01-02T00:00:00Z","page":"b","n":"x"}
{"page":"c"}
"#;

    #[test]
    fn rolls_up_counts_and_partitions_by_day() {
        let mut errors = Vec::new();
        let built = build(&spec(None), &[Input::Inline(DATA.into())], &mut |e| {
            errors.push(e.to_string())
        })
        .unwrap();
        assert_eq!(built.partitions.len(), 2);
        assert_eq!(
            built.partitions[0].rows.len(),
            1,
            "two rows rolled into one"
        );
        assert_eq!(
            built.stats,
            RowStats {
                processed: 3,
                processed_with_error: 1,
                thrown_away: 0,
                unparseable: 2
            }
        );
        assert_eq!(errors.len(), 3);
        assert!(errors[0].contains("line 3"), "{errors:?}");
    }

    #[test]
    fn too_many_parse_errors_stop_the_build() {
        let r = build(&spec(Some(2)), &[Input::Inline(DATA.into())], &mut |_| {});
        assert_eq!(r.unwrap_err(), BuildError::TooManyParseExceptions(2));
        assert!(build(&spec(Some(3)), &[Input::Inline(DATA.into())], &mut |_| {}).is_ok());
    }
}
