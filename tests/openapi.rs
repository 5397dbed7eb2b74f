//! `/openapi.json` on the overlord and the middle manager, checked against the running servers:
//! every route described is called (parameters filled in) and must reach a handler — not the
//! router's "no such route" 404 nor a 405. (That every route served is described is checked
//! against the routers' source by unit tests in each crate.)

use drover_scenarios::{Cluster, ClusterSpec};
use serde_json::Value;

fn fill(path: &str) -> String {
    path.split('/')
        .map(|segment| match segment {
            "{id}" => "openapi-probe",
            "{ds}" => "openapi_ds",
            "{segment}" => "openapi_ds_2024-01-01T00:00:00.000Z_2024-01-02T00:00:00.000Z_v1",
            "{interval}" => "2024-01-01_2024-01-02",
            "{host}" => "127.0.0.1:1",
            "{name}" => "basic",
            "{user}" => "openapi-user",
            "{role}" => "openapi-role",
            other if other.starts_with('{') => {
                panic!("no value for the parameter {other} of {path}")
            }
            other => other,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Calls every route `base`'s description lists; answers the ones that did not reach a handler.
async fn unrouted(base: &str) -> (usize, Vec<String>) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let doc: Value = http
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.0.3", "{doc}");
    let mut calls = 0;
    let mut bad = Vec::new();
    for (path, methods) in doc["paths"].as_object().unwrap() {
        for method in methods.as_object().unwrap().keys() {
            let url = format!("{base}{}", fill(path));
            let method: reqwest::Method = method.to_uppercase().parse().unwrap();
            let mut request = http.request(method.clone(), &url);
            if method == reqwest::Method::POST {
                request = request
                    .header("Content-Type", "application/json")
                    .body("{}");
            }
            let r = request.send().await.unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap_or_default();
            calls += 1;
            let fallback = status == 404 && (body.is_empty() || body.contains("no such route"));
            if status == 405 || fallback {
                bad.push(format!("{method} {path}: {status} {body}"));
            }
        }
    }
    (calls, bad)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_described_route_is_served() {
    let cluster = Cluster::start(ClusterSpec::workers(&[1])).await;
    let leader = cluster
        .wait_for_leader(std::time::Duration::from_secs(30))
        .await;
    let (calls, bad) = unrouted(&cluster.overlords[leader].url).await;
    assert!(calls > 100, "only {calls} routes described");
    assert!(
        bad.is_empty(),
        "described but not served by the overlord: {bad:#?}"
    );
    let mm = &cluster.middle_managers[0].url;
    let (calls, bad) = unrouted(mm).await;
    assert!(calls >= 12, "only {calls} routes described");
    assert!(
        bad.is_empty(),
        "described but not served by the middle manager: {bad:#?}"
    );
    // The probe disabled the worker on its way; it takes tasks again.
    reqwest::Client::new()
        .post(format!("{mm}/druid/worker/v1/enable"))
        .send()
        .await
        .unwrap();
}
