//! Druid's common status routes, served by every Drover server on its own (never redirected to
//! the leader): `/status` (version, modules, memory), `/status/properties`,
//! `/status/selfDiscovered` and `/status/selfDiscovered/status`. Druid's web console and
//! monitoring probes use them to find out what a server is.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

/// How `/openapi.json` describes these routes.
pub const OPENAPI_ROUTES: &[crate::openapi::Route] = &[
    (
        "GET",
        "/status",
        "Version, modules and memory of this server",
    ),
    (
        "GET",
        "/status/properties",
        "Effective settings of this server (secrets redacted)",
    ),
    (
        "GET",
        "/status/selfDiscovered",
        "200 once the server is discoverable",
    ),
    (
        "GET",
        "/status/selfDiscovered/status",
        "{\"selfDiscovered\": true}",
    ),
];

/// The routes for a server called `name` whose effective settings are `properties` (secrets
/// already redacted by the caller).
pub fn routes(name: &'static str, properties: Map<String, Value>) -> Router {
    let properties = Value::Object(properties);
    Router::new()
        .route("/status", get(move || async move { Json(status(name)) }))
        .route(
            "/status/properties",
            get(move || {
                let properties = properties.clone();
                async move { Json(properties) }
            }),
        )
        // A Drover server is discoverable as soon as it serves: it announces itself (worker or
        // leader latch) from its first moments, and this route answers only then.
        .route("/status/selfDiscovered", get(|| async {}))
        .route(
            "/status/selfDiscovered/status",
            get(|| async { Json(json!({ "selfDiscovered": true })) }),
        )
}

/// `GET /status`: Druid's shape, with a native process's memory in place of a JVM heap.
fn status(name: &str) -> Value {
    let version = env!("CARGO_PKG_VERSION");
    let used = proc_kib("/proc/self/status", "VmRSS:").unwrap_or(0) * 1024;
    let physical = proc_kib("/proc/meminfo", "MemTotal:").unwrap_or(0) * 1024;
    json!({
        "version": version,
        "modules": [{"name": name, "artifact": name, "version": version}],
        "memory": {
            "maxMemory": physical,
            "totalMemory": used,
            "freeMemory": 0,
            "usedMemory": used,
            "directMemory": 0,
        },
    })
}

/// A `key:   123 kB` line of a /proc file, in KiB.
fn proc_kib(file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A config (any serializable settings) as the string map `/status/properties` shows, Druid
/// style: every value a string.
pub fn properties_of(config: &impl serde::Serialize) -> Map<String, Value> {
    let Ok(Value::Object(mut map)) = serde_json::to_value(config) else {
        return Map::new();
    };
    for v in map.values_mut() {
        redact_passwords(v);
    }
    map.into_iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (k, Value::String(text))
        })
        .collect()
}

/// Every `*password*` field inside `v`, shown as set or not, never as it is.
fn redact_passwords(v: &mut Value) {
    if let Value::Object(m) = v {
        for (k, inner) in m.iter_mut() {
            if k.contains("password") {
                if !inner.is_null() {
                    *inner = Value::String("<redacted>".into());
                }
            } else {
                redact_passwords(inner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_has_druids_fields_and_real_memory() {
        let s = status("drover-test");
        assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(s["modules"][0]["name"], "drover-test");
        assert!(s["memory"]["usedMemory"].as_u64().unwrap() > 0);
        assert!(
            s["memory"]["maxMemory"].as_u64().unwrap()
                >= s["memory"]["usedMemory"].as_u64().unwrap()
        );
    }

    #[test]
    fn properties_are_strings() {
        let p = properties_of(&json!({"port": 8090, "host": "h", "log_json": false}));
        assert_eq!(p["port"], "8090");
        assert_eq!(p["host"], "h");
        assert_eq!(p["log_json"], "false");
    }
}
