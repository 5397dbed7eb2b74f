//! Druid's `ParseExceptionReport`, the shape of each entry in `unparseableEvents` (task reports,
//! a task's chat API, `GET /supervisor/{id}/parseErrors`).

use serde_json::{json, Value};

/// Longest raw input kept in a report: enough to recognise the row, not a megabyte line.
const MAX_INPUT_CHARS: usize = 1024;

/// Which count an unusable row went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// Not readable at all (`unparseable`).
    Unparseable,
    /// Read, but a field could not be read as its type (`processedWithError`).
    ProcessedWithError,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::Unparseable => "unparseable",
            ErrorType::ProcessedWithError => "processedWithError",
        }
    }
}

/// `{"input", "errorType", "details": [detail], "timeOfExceptionMillis"}`.
pub fn parse_exception_report(
    input: &str,
    error_type: ErrorType,
    detail: &str,
    time_millis: i64,
) -> Value {
    let input = input.trim_end_matches(['\n', '\r']);
    let input = match input.char_indices().nth(MAX_INPUT_CHARS) {
        Some((cut, _)) => format!("{}…", &input[..cut]),
        None => input.to_string(),
    };
    json!({
        "input": input,
        "errorType": error_type.as_str(),
        "details": [detail],
        "timeOfExceptionMillis": time_millis,
    })
}

/// Now, in milliseconds since the epoch.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_druids_fields_and_cuts_long_input() {
        let r = parse_exception_report("not json\n", ErrorType::Unparseable, "line 3: bad", 7);
        assert_eq!(
            r,
            json!({"input": "not json", "errorType": "unparseable",
                "details": ["line 3: bad"], "timeOfExceptionMillis": 7})
        );
        let long = "é".repeat(5000);
        let r = parse_exception_report(&long, ErrorType::ProcessedWithError, "x", 0);
        assert_eq!(
            r["input"].as_str().unwrap().chars().count(),
            MAX_INPUT_CHARS + 1
        );
        assert_eq!(r["errorType"], "processedWithError");
    }
}
