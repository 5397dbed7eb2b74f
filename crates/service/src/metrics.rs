//! Prometheus metrics (`GET /metrics`), named after Druid's metrics the way Druid's
//! prometheus-emitter names them: the `druid` namespace, `/` turned into `_`
//! (`task/success/count` is `druid_task_success_count`, a counter exposed with `_total`).
//! One registry per process (each Drover server is one process); every server adds its HTTP
//! request counts and latencies with `track_http`, and its own metrics with the helpers here.

use std::sync::{LazyLock, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Metric, Registry};

/// Label pairs, e.g. `[("dataSource", "wiki"), ("taskType", "index")]`.
pub type Labels = Vec<(String, String)>;
pub type Counters = Family<Labels, Counter>;
pub type Gauges = Family<Labels, Gauge>;
pub type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

static REGISTRY: LazyLock<Mutex<Registry>> =
    LazyLock::new(|| Mutex::new(Registry::with_prefix("druid")));

fn register(name: &str, help: &str, metric: impl Metric) {
    REGISTRY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .register(name, help, metric);
}

pub fn counters(name: &str, help: &str) -> Counters {
    let family = Counters::default();
    register(name, help, family.clone());
    family
}

pub fn gauges(name: &str, help: &str) -> Gauges {
    let family = Gauges::default();
    register(name, help, family.clone());
    family
}

/// Seconds, from 1 ms to about 9 hours.
fn seconds_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 25))
}

pub fn seconds_histograms(name: &str, help: &str) -> Histograms {
    let family = Histograms::new_with_constructor(seconds_histogram as fn() -> Histogram);
    register(name, help, family.clone());
    family
}

/// `[(k, v)…]` as owned labels.
pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

struct HttpMetrics {
    requests: Counters,
    seconds: Histograms,
}

static HTTP: LazyLock<HttpMetrics> = LazyLock::new(|| HttpMetrics {
    requests: counters(
        "http_requests",
        "HTTP requests answered, by method, route and status",
    ),
    seconds: seconds_histograms(
        "http_request_time_seconds",
        "Seconds taken to answer an HTTP request, by method and route",
    ),
});

/// Middleware: counts each request and times it, labelled by its route's pattern (not its path:
/// task ids would make a series each).
pub async fn track_http(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_string();
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    HTTP.requests
        .get_or_create(&labels(&[
            ("method", &method),
            ("route", &route),
            ("status", &status),
        ]))
        .inc();
    HTTP.seconds
        .get_or_create(&labels(&[("method", &method), ("route", &route)]))
        .observe(started.elapsed().as_secs_f64());
    response
}

/// The registry in the text exposition format.
pub fn render() -> String {
    LazyLock::force(&HTTP);
    let mut out = String::new();
    let registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    prometheus_client::encoding::text::encode(&mut out, &registry)
        .expect("writing to a String cannot fail");
    out
}

/// `GET /metrics`, as Prometheus scrapes it.
pub fn response() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_druids_prometheus_emitter() {
        let c = counters("task_success_count", "Tasks that succeeded");
        c.get_or_create(&labels(&[("dataSource", "wiki"), ("taskType", "index")]))
            .inc();
        let text = render();
        assert!(
            text.contains(
                r#"druid_task_success_count_total{dataSource="wiki",taskType="index"} 1"#
            ),
            "{text}"
        );
    }
}
