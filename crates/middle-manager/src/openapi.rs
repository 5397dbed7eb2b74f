//! `GET /openapi.json`: the OpenAPI description of every route a middle manager answers, kept
//! true by the test below (compared with the routes its source declares, both ways).

use axum::Json;
use drover_service::openapi::{document, Route};
use serde_json::Value;

pub async fn openapi() -> Json<Value> {
    Json(document(
        "Drover middle manager",
        "Druid's worker API: what the overlord calls on a middle manager; see docs/api.md.",
        &[ROUTES, drover_service::status::OPENAPI_ROUTES],
    ))
}

pub const ROUTES: &[Route] = &[
    ("POST", "/druid/worker/v1/enable", "Take new tasks again"),
    (
        "POST",
        "/druid/worker/v1/disable",
        "Take no new tasks (running ones go on)",
    ),
    (
        "GET",
        "/druid/worker/v1/enabled",
        "{\"<host>\": true|false}",
    ),
    (
        "GET",
        "/druid/worker/v1/tasks",
        "Ids of the tasks this worker runs",
    ),
    (
        "POST",
        "/druid/worker/v1/task/{id}/shutdown",
        "Stop a task's peon",
    ),
    (
        "GET",
        "/druid/worker/v1/task/{id}/log",
        "A running task's log (?offset=N)",
    ),
    ("GET", "/status/health", "true while the server runs"),
    ("GET", "/metrics", "Prometheus metrics of this server"),
    ("GET", "/openapi.json", "This description"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use drover_service::openapi::declared_routes;
    use std::collections::BTreeSet;

    #[test]
    fn describes_every_served_route_and_nothing_else() {
        let mut served = declared_routes(include_str!("http.rs"), "");
        served.extend(declared_routes(include_str!("lib.rs"), ""));
        served.extend(declared_routes(
            include_str!("../../service/src/status.rs"),
            "",
        ));
        let served: BTreeSet<_> = served.into_iter().collect();
        let described: BTreeSet<_> = ROUTES
            .iter()
            .chain(drover_service::status::OPENAPI_ROUTES)
            .map(|(m, p, _)| (m.to_string(), p.to_string()))
            .collect();
        assert_eq!(served, described);
    }
}
