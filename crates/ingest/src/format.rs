//! Reading records: newline-delimited JSON objects, or CSV/TSV lines mapped onto columns. A
//! line becomes a `Record` of the fields the task reads.

use std::borrow::Cow;

use crate::record::{Cell, Fields, Record, RowError};
use crate::spec::InputFormat;

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

    /// Reads `line` into `record` (which must be fresh): `Ok(false)` for lines that carry no
    /// record (blank, skipped, the header).
    pub fn read<'a>(
        &mut self,
        line: &'a str,
        fields: &mut Fields,
        record: &mut Record<'a>,
    ) -> Result<bool, RowError> {
        self.lines_seen += 1;
        let line = line.trim_end_matches(['\r', '\n']);
        match &self.format {
            InputFormat::Json => {
                if line.trim().is_empty() {
                    return Ok(false);
                }
                record.read_json(line, fields).map(|()| true)
            }
            InputFormat::Delimited {
                delimiter,
                find_columns_from_header,
                skip_header_rows,
                list_delimiter,
                ..
            } => {
                if self.lines_seen <= *skip_header_rows || line.is_empty() {
                    return Ok(false);
                }
                let values = split(line, *delimiter)?;
                let Some(columns) = &self.header else {
                    debug_assert!(find_columns_from_header);
                    self.header = Some(values);
                    return Ok(false);
                };
                for (i, column) in columns.iter().enumerate() {
                    let Some(slot) = fields.slot_for(column) else {
                        continue;
                    };
                    let cell = match values.get(i) {
                        None => Cell::Null,
                        Some(v) if v.is_empty() => Cell::Null,
                        Some(v) => match list_delimiter {
                            Some(d) if v.contains(d.as_str()) => Cell::List(
                                v.split(d.as_str())
                                    .map(|p| Cell::Str(Cow::Owned(p.to_string())))
                                    .collect(),
                            ),
                            _ => Cell::Str(Cow::Owned(v.clone())),
                        },
                    };
                    record.set(slot, cell);
                }
                Ok(true)
            }
        }
    }
}

fn split(line: &str, delimiter: u8) -> Result<Vec<String>, RowError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delimiter)
        // TSV has no quoting in Druid.
        .quoting(delimiter == b',')
        .from_reader(line.as_bytes());
    match reader.records().next() {
        Some(Ok(record)) => Ok(record.iter().map(str::to_string).collect()),
        Some(Err(e)) => Err(format!("malformed line: {e}").into()),
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

    fn read(r: &mut RecordReader, fields: &mut Fields, line: &str) -> Option<serde_json::Value> {
        let mut rec = Record::new(fields);
        let got = r.read(line, fields, &mut rec).unwrap();
        got.then(|| {
            let mut o = serde_json::Map::new();
            for (i, name) in fields.names().iter().enumerate() {
                if !matches!(rec.get(i), Cell::Missing) {
                    o.insert(name.clone(), rec.get(i).to_json());
                }
            }
            serde_json::Value::Object(o)
        })
    }

    #[test]
    fn json_lines() {
        let mut r = RecordReader::new(InputFormat::Json);
        let mut f = Fields::new(true);
        assert_eq!(read(&mut r, &mut f, r#"{"a":1}"#).unwrap()["a"], 1);
        assert_eq!(read(&mut r, &mut f, "   "), None);
        let mut rec = Record::new(&f);
        assert!(r.read("[1]", &mut f, &mut rec).is_err());
        assert!(r
            .read("{oops", &mut f, &mut rec)
            .unwrap_err()
            .0
            .contains("invalid JSON"));
    }

    #[test]
    fn csv_with_header_quotes_and_lists() {
        let mut r = RecordReader::new(csv(&[], true, 1));
        let mut f = Fields::new(true);
        assert_eq!(read(&mut r, &mut f, "# a comment line to skip"), None);
        assert_eq!(read(&mut r, &mut f, "time,page,tags"), None);
        let row = read(&mut r, &mut f, r#"2018-01-01T00:00:00Z,"Main, Page",a|b"#).unwrap();
        assert_eq!(row["page"], "Main, Page");
        assert_eq!(row["tags"], serde_json::json!(["a", "b"]));
        let mut t = RecordReader::new(InputFormat::Delimited {
            delimiter: b'\t',
            columns: vec!["time".into(), "page".into()],
            find_columns_from_header: false,
            skip_header_rows: 0,
            list_delimiter: None,
        });
        let mut closed = Fields::new(false);
        closed.register("page");
        let row = read(&mut t, &mut closed, "2018-01-01\t\"quoted\"").unwrap();
        assert_eq!(row["page"], "\"quoted\"", "no quoting in TSV");
        assert!(
            row.get("time").is_none(),
            "columns nothing reads are skipped"
        );
    }
}
