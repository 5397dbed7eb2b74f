//! Reading records: newline-delimited JSON objects, or CSV/TSV lines mapped onto columns. A
//! record becomes a map of field name to JSON value.

use serde_json::{Map, Value};

use crate::spec::InputFormat;

pub type RawRow = Map<String, Value>;

pub struct RecordReader {
    format: InputFormat,
    header: Option<Vec<String>>,
    lines_seen: usize,
}

impl RecordReader {
    pub fn new(format: InputFormat) -> Self {
        let header = match &format {
            InputFormat::Delimited {
                columns,
                find_columns_from_header: false,
                ..
            } => Some(columns.clone()),
            _ => None,
        };
        RecordReader {
            format,
            header,
            lines_seen: 0,
        }
    }

    /// The record on `line`: `Ok(None)` for lines that carry none (blank, skipped, the header).
    pub fn read(&mut self, line: &str) -> Result<Option<RawRow>, String> {
        self.lines_seen += 1;
        let line = line.trim_end_matches(['\r', '\n']);
        match &self.format {
            InputFormat::Json => {
                if line.trim().is_empty() {
                    return Ok(None);
                }
                match serde_json::from_str::<Value>(line) {
                    Ok(Value::Object(o)) => Ok(Some(o)),
                    Ok(_) => Err("the line is JSON but not an object".into()),
                    Err(e) => Err(format!("invalid JSON: {e}")),
                }
            }
            InputFormat::Delimited {
                delimiter,
                find_columns_from_header,
                skip_header_rows,
                list_delimiter,
                ..
            } => {
                if self.lines_seen <= *skip_header_rows || line.is_empty() {
                    return Ok(None);
                }
                let fields = split(line, *delimiter)?;
                let Some(columns) = &self.header else {
                    debug_assert!(find_columns_from_header);
                    self.header = Some(fields);
                    return Ok(None);
                };
                let mut row = Map::new();
                for (i, column) in columns.iter().enumerate() {
                    let value = match fields.get(i) {
                        None => Value::Null,
                        Some(v) if v.is_empty() => Value::Null,
                        Some(v) => match list_delimiter {
                            Some(d) if v.contains(d.as_str()) => Value::Array(
                                v.split(d.as_str())
                                    .map(|p| Value::String(p.to_string()))
                                    .collect(),
                            ),
                            _ => Value::String(v.clone()),
                        },
                    };
                    row.insert(column.clone(), value);
                }
                Ok(Some(row))
            }
        }
    }
}

fn split(line: &str, delimiter: u8) -> Result<Vec<String>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delimiter)
        // TSV has no quoting in Druid.
        .quoting(delimiter == b',')
        .from_reader(line.as_bytes());
    match reader.records().next() {
        Some(Ok(record)) => Ok(record.iter().map(str::to_string).collect()),
        Some(Err(e)) => Err(format!("malformed line: {e}")),
        None => Ok(vec![]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(columns: &[&str], find: bool, skip: usize) -> InputFormat {
        InputFormat::Delimited {
            delimiter: b',',
            columns: columns.iter().map(|c| c.to_string()).collect(),
            find_columns_from_header: find,
            skip_header_rows: skip,
            list_delimiter: Some("|".into()),
        }
    }

    #[test]
    fn json_lines() {
        let mut r = RecordReader::new(InputFormat::Json);
        assert_eq!(r.read(r#"{"a":1}"#).unwrap().unwrap()["a"], 1);
        assert_eq!(r.read("   ").unwrap(), None);
        assert!(r.read("[1]").is_err());
        assert!(r.read("{oops").unwrap_err().contains("invalid JSON"));
    }

    #[test]
    fn csv_with_header_quotes_and_lists() {
        let mut r = RecordReader::new(csv(&[], true, 1));
        assert_eq!(r.read("# a comment line to skip").unwrap(), None);
        assert_eq!(r.read("time,page,tags").unwrap(), None);
        let row = r
            .read(r#"2018-01-01T00:00:00Z,"Main, Page",a|b"#)
            .unwrap()
            .unwrap();
        assert_eq!(row["page"], "Main, Page");
        assert_eq!(row["tags"], serde_json::json!(["a", "b"]));
        let mut t = RecordReader::new(InputFormat::Delimited {
            delimiter: b'\t',
            columns: vec!["time".into(), "page".into()],
            find_columns_from_header: false,
            skip_header_rows: 0,
            list_delimiter: None,
        });
        let row = t.read("2018-01-01\t\"quoted\"").unwrap().unwrap();
        assert_eq!(row["page"], "\"quoted\"", "no quoting in TSV");
    }
}
