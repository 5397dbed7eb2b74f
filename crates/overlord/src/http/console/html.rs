//! The console's HTML: escaping, the page frame, and tables over JSON values.

use serde_json::Value;

/// Text made safe to put in HTML, in an element or an attribute.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A path segment for a link.
pub fn url_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// A value as a cell's text: strings as they are, null as `-`, anything else as JSON.
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Sizes as people read them.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

pub const PAGES: [(&str, &str); 5] = [
    ("/console", "Overview"),
    ("/console/tasks", "Tasks"),
    ("/console/workers", "Workers"),
    ("/console/supervisors", "Supervisors"),
    ("/console/datasources", "Data sources"),
];

/// The whole page: navigation, a title, `body` (already HTML).
pub fn page(title: &str, current: &str, body: &str) -> String {
    let nav: String = PAGES
        .iter()
        .map(|(href, name)| {
            let class = if *href == current {
                " class=\"current\""
            } else {
                ""
            };
            format!("<a href=\"{href}\"{class}>{name}</a>")
        })
        .collect();
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · Drover</title><link rel=\"stylesheet\" href=\"/console/console.css\">\
         <script src=\"/console/console.js\" defer></script></head>\
         <body><header><span class=\"brand\">Drover</span><nav>{nav}</nav>\
         <label class=\"refresh\"><input type=\"checkbox\" id=\"auto-refresh\"> refresh every 5 s</label>\
         </header><main><h1>{title}</h1>{body}</main></body></html>\n",
        title = escape(title)
    )
}

/// One column: its header, and how a row's cell is made (HTML).
pub struct Column<'a> {
    pub header: &'a str,
    pub cell: Box<dyn Fn(&Value) -> String + 'a>,
}

/// A column showing the value at a JSON pointer, escaped.
pub fn at<'a>(header: &'a str, pointer: &'a str) -> Column<'a> {
    Column {
        header,
        cell: Box::new(move |row| escape(&text(row.pointer(pointer).unwrap_or(&Value::Null)))),
    }
}

/// A column made by `f` (which returns HTML).
pub fn with<'a>(header: &'a str, f: impl Fn(&Value) -> String + 'a) -> Column<'a> {
    Column {
        header,
        cell: Box::new(f),
    }
}

/// A table of `rows`; `empty` (text) when there are none.
pub fn table(id: &str, columns: &[Column<'_>], rows: &[Value], empty: &str) -> String {
    if rows.is_empty() {
        return format!("<p class=\"empty\" id=\"{id}\">{}</p>", escape(empty));
    }
    let head: String = columns
        .iter()
        .map(|c| format!("<th>{}</th>", escape(c.header)))
        .collect();
    let body: String = rows
        .iter()
        .map(|row| {
            let cells: String = columns
                .iter()
                .map(|c| format!("<td>{}</td>", (c.cell)(row)))
                .collect();
            format!("<tr>{cells}</tr>")
        })
        .collect();
    format!("<table id=\"{id}\"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escapes_what_html_would_read() {
        assert_eq!(
            escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }

    #[test]
    fn tables_escape_their_cells_and_say_when_empty() {
        let rows = vec![json!({"id": "<b>t</b>", "n": 3})];
        let html = table(
            "t",
            &[at("ID", "/id"), at("N", "/n"), at("X", "/missing")],
            &rows,
            "none",
        );
        assert!(
            html.contains("<td>&lt;b&gt;t&lt;/b&gt;</td><td>3</td><td>-</td>"),
            "{html}"
        );
        assert_eq!(
            table("t", &[at("ID", "/id")], &[], "no tasks"),
            "<p class=\"empty\" id=\"t\">no tasks</p>"
        );
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
    }
}
