//! `--output table` (aligned columns, for people) or `--output json` (the overlord's own JSON,
//! for scripts).

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
}

/// A cell of a table: strings as they are, null as `-`, anything else as JSON.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Prints `rows` under `headers`, each column as wide as its widest cell.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// The JSON, pretty.
pub fn json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// Either `json(v)` or a table of `columns` (header, JSON pointer) over the array `v`.
pub fn list(output: Output, v: &Value, columns: &[(&str, &str)]) {
    if output == Output::Json {
        return json(v);
    }
    let headers: Vec<&str> = columns.iter().map(|(h, _)| *h).collect();
    let rows: Vec<Vec<String>> = v
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|item| {
            columns
                .iter()
                .map(|(_, pointer)| cell(item.pointer(pointer).unwrap_or(&Value::Null)))
                .collect()
        })
        .collect();
    table(&headers, &rows);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_read_like_values() {
        assert_eq!(cell(&Value::Null), "-");
        assert_eq!(cell(&serde_json::json!("a")), "a");
        assert_eq!(cell(&serde_json::json!(3)), "3");
    }
}
