//! OpenAPI 3 descriptions of a server's routes, served at `/openapi.json`, and the check that
//! keeps them true: [`declared_routes`] reads the routes a router declares from its source, so a
//! test can compare the two both ways (no route missing, none described that is not served).

use serde_json::{json, Map, Value};

/// One route: method, path (axum's `{param}` syntax, which is OpenAPI's too), summary.
pub type Route = (&'static str, &'static str, &'static str);

/// The description of `routes` (in parts: the server's own, shared ones) for the server called
/// `title`.
pub fn document(title: &str, description: &str, routes: &[&[Route]]) -> Value {
    let mut paths = Map::new();
    for (method, path, summary) in routes.iter().copied().flatten() {
        let parameters: Vec<Value> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let tag = tag_of(path);
        let mut operation = json!({
            "summary": summary,
            "tags": [tag],
            "responses": {
                "200": {"description": "success"},
                "400": {"description": "bad input, naming the field and the problem"},
                "401": {"description": "authentication is on and the request has no valid credentials"},
                "403": {"description": "the user's roles do not allow it"},
            },
        });
        if !parameters.is_empty() {
            operation["parameters"] = Value::Array(parameters);
        }
        let entry = paths
            .entry(path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        entry[method.to_ascii_lowercase()] = operation;
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": title, "version": env!("CARGO_PKG_VERSION"), "description": description},
        "components": {"securitySchemes": {"basic": {"type": "http", "scheme": "basic"}}},
        "security": [{}, {"basic": []}],
        "paths": paths,
    })
}

/// A tag per family of routes, for the reader's table of contents.
fn tag_of(path: &str) -> &'static str {
    const TAGS: [(&str, &str); 12] = [
        ("/druid/indexer/v1/supervisor", "supervisors"),
        ("/druid/indexer/v1/worker", "workers"),
        ("/druid/indexer/v1/datasources", "data management"),
        ("/druid/indexer/v1/action", "task actions"),
        ("/druid/indexer/v1", "tasks"),
        ("/druid/coordinator/v1/rules", "retention rules"),
        ("/druid/coordinator/v1/config/compaction", "compaction"),
        ("/druid/coordinator/v1/compaction", "compaction"),
        ("/druid/coordinator/v1", "data sources"),
        ("/druid-ext/basic-security", "security"),
        ("/druid/worker/v1", "worker"),
        ("/console", "console"),
    ];
    TAGS.iter()
        .find(|(prefix, _)| path.starts_with(prefix))
        .map_or("status", |(_, tag)| tag)
}

/// The `(METHOD, path)` pairs of every `.route("path", get(…).post(…))` in a router's `source`,
/// with `prefix` before each path (for a router nested under it).
pub fn declared_routes(source: &str, prefix: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(start) = rest.find(".route(") {
        let body = &rest[start + ".route(".len()..];
        let mut depth = 1;
        let mut end = body.len();
        for (i, c) in body.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let call = &body[..end];
        rest = &body[end..];
        let Some(open) = call.find('"') else { continue };
        let Some(len) = call[open + 1..].find('"') else {
            continue;
        };
        let path = &call[open + 1..open + 1 + len];
        let handlers = &call[open + 1 + len + 1..];
        for method in ["get", "post", "put", "delete", "patch"] {
            let mut from = 0;
            while let Some(at) = handlers[from..].find(&format!("{method}(")) {
                let at = from + at;
                let before = handlers[..at].chars().last();
                // `get(…)`, `axum::routing::get(…)` or `.post(…)` in the chain, not `x.get(…)` inside a
                // closure.
                let chained = handlers[..at.saturating_sub(1)].trim_end().ends_with(')');
                let qualified = handlers[..at].ends_with("routing::");
                if matches!(before, None | Some(' ' | '\n' | ',' | '('))
                    || (before == Some('.') && chained)
                    || qualified
                {
                    out.push((method.to_ascii_uppercase(), format!("{prefix}{path}")));
                }
                from = at + method.len();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_routes_and_their_methods_from_source() {
        let source = r#"Router::new()
            .route("/task", axum::routing::post(tasks::submit))
            .route(
                "/worker",
                get(workers::get_config).post(workers::set_config),
            )
            .route("/p", get(move || { let v = properties.get("x"); async move { v } }))"#;
        assert_eq!(
            declared_routes(source, "/v1"),
            vec![
                ("POST".to_string(), "/v1/task".to_string()),
                ("GET".to_string(), "/v1/worker".to_string()),
                ("POST".to_string(), "/v1/worker".to_string()),
                ("GET".to_string(), "/v1/p".to_string()),
            ]
        );
    }

    #[test]
    fn documents_paths_methods_and_parameters() {
        let doc = document(
            "t",
            "d",
            &[
                &[("GET", "/task/{id}/log", "a log")],
                &[("POST", "/task/{id}/log", "x")],
            ],
        );
        let op = &doc["paths"]["/task/{id}/log"]["get"];
        assert_eq!(op["summary"], "a log");
        assert_eq!(op["parameters"][0]["name"], "id");
        assert!(doc["paths"]["/task/{id}/log"]["post"].is_object());
        assert_eq!(doc["openapi"], "3.0.3");
    }
}
