//! `GET /openapi.json`: the OpenAPI description of every route an overlord answers. The table
//! is kept true by the test below, which compares it with the routes the router's source
//! declares, both ways; a scenario test calls each described route on a running overlord.

use axum::Json;
use drover_service::openapi::{document, Route};
use serde_json::Value;

pub async fn openapi() -> Json<Value> {
    Json(document(
        "Drover overlord",
        "Druid's overlord API (tasks, supervisors, workers), the Coordinator routes for segments, \
         rules and compaction, Druid's basic-security routes, and Drover's console; see docs/api.md.",
        &[ROUTES, drover_service::status::OPENAPI_ROUTES],
    ))
}

pub const ROUTES: &[Route] = &[
    (
        "POST",
        "/druid/indexer/v1/task",
        "Submit a task (Druid task JSON); answers {\"task\": id}",
    ),
    ("GET", "/druid/indexer/v1/task/{id}", "A task's spec"),
    (
        "GET",
        "/druid/indexer/v1/task/{id}/status",
        "A task's status (TaskStatusPlus)",
    ),
    (
        "POST",
        "/druid/indexer/v1/task/{id}/shutdown",
        "Ask a task to stop",
    ),
    (
        "GET",
        "/druid/indexer/v1/task/{id}/log",
        "A task's log (?offset=N)",
    ),
    (
        "GET",
        "/druid/indexer/v1/task/{id}/reports",
        "A task's report: live while it runs, final once it ended",
    ),
    (
        "GET",
        "/druid/indexer/v1/task/{id}/segments",
        "Deprecated in Druid: always 404",
    ),
    (
        "POST",
        "/druid/indexer/v1/taskStatus",
        "Statuses of the task ids in the body",
    ),
    (
        "GET",
        "/druid/indexer/v1/tasks",
        "Tasks (?state, datasource, type, max, createdTimeInterval)",
    ),
    (
        "GET",
        "/druid/indexer/v1/tasks/",
        "Tasks (?state, datasource, type, max, createdTimeInterval)",
    ),
    (
        "POST",
        "/druid/indexer/v1/datasources/{ds}/shutdownAllTasks",
        "Shut down every task of a data source",
    ),
    (
        "POST",
        "/druid/indexer/v1/datasources/{ds}",
        "Mark every unused segment of a data source used",
    ),
    (
        "DELETE",
        "/druid/indexer/v1/datasources/{ds}",
        "Mark every segment of a data source unused (?kill=true&interval submits a kill task)",
    ),
    (
        "POST",
        "/druid/indexer/v1/datasources/{ds}/markUnused",
        "Mark segments unused by interval (and versions) or ids",
    ),
    (
        "POST",
        "/druid/indexer/v1/datasources/{ds}/markUsed",
        "Mark segments used by interval (and versions) or ids",
    ),
    (
        "POST",
        "/druid/indexer/v1/datasources/{ds}/segments/{segment}",
        "Mark one segment used",
    ),
    (
        "DELETE",
        "/druid/indexer/v1/datasources/{ds}/segments/{segment}",
        "Mark one segment unused",
    ),
    (
        "POST",
        "/druid/indexer/v1/lockedIntervals",
        "Locked intervals by data source (minimum priority in the body)",
    ),
    (
        "POST",
        "/druid/indexer/v1/lockedIntervals/v2",
        "Locked intervals matching lock filter policies",
    ),
    ("GET", "/druid/indexer/v1/runningTasks", "Running tasks"),
    ("GET", "/druid/indexer/v1/pendingTasks", "Pending tasks"),
    ("GET", "/druid/indexer/v1/waitingTasks", "Waiting tasks"),
    (
        "GET",
        "/druid/indexer/v1/completeTasks",
        "Recently completed tasks",
    ),
    (
        "GET",
        "/druid/indexer/v1/workers",
        "Middle managers with their capacity and tasks",
    ),
    (
        "GET",
        "/druid/indexer/v1/worker",
        "The dynamic worker config",
    ),
    (
        "POST",
        "/druid/indexer/v1/worker",
        "Set the dynamic worker config",
    ),
    (
        "GET",
        "/druid/indexer/v1/worker/history",
        "The worker config's audit history",
    ),
    (
        "POST",
        "/druid/indexer/v1/worker/{host}/enable",
        "Enable a middle manager",
    ),
    (
        "POST",
        "/druid/indexer/v1/worker/{host}/disable",
        "Disable a middle manager",
    ),
    (
        "GET",
        "/druid/indexer/v1/totalWorkerCapacity",
        "Total worker capacity",
    ),
    (
        "POST",
        "/druid/indexer/v1/action",
        "Task actions (for peons)",
    ),
    (
        "GET",
        "/druid/indexer/v1/supervisor",
        "Supervisor ids (?full, ?state=true, ?system)",
    ),
    (
        "POST",
        "/druid/indexer/v1/supervisor",
        "Create or replace a supervisor",
    ),
    (
        "GET",
        "/druid/indexer/v1/supervisor/history",
        "Spec history of every supervisor",
    ),
    (
        "POST",
        "/druid/indexer/v1/supervisor/suspendAll",
        "Suspend every supervisor",
    ),
    (
        "POST",
        "/druid/indexer/v1/supervisor/resumeAll",
        "Resume every supervisor",
    ),
    (
        "POST",
        "/druid/indexer/v1/supervisor/terminateAll",
        "Terminate every supervisor",
    ),
    (
        "GET",
        "/druid/indexer/v1/supervisor/{id}",
        "A supervisor's spec",
    ),
    (
        "GET",
        "/druid/indexer/v1/supervisor/{id}/status",
        "A supervisor's status report (tasks, offsets, lag)",
    ),
    (
        "GET",
        "/druid/indexer/v1/supervisor/{id}/health",
        "A supervisor's health (200 healthy, 503 not)",
    ),
    (
        "GET",
        "/druid/indexer/v1/supervisor/{id}/stats",
        "Row stats of a supervisor's reading tasks",
    ),
    (
        "GET",
        "/druid/indexer/v1/supervisor/{id}/parseErrors",
        "Recent parse errors of a supervisor's tasks",
    ),
    (
        "GET",
        "/druid/indexer/v1/supervisor/{id}/history",
        "A supervisor's spec history",
    ),
    (
        "POST",
        "/druid/indexer/v1/supervisor/{id}/suspend",
        "Suspend a supervisor",
    ),
    (
        "POST",
        "/druid/indexer/v1/supervisor/{id}/resume",
        "Resume a supervisor",
    ),
    (
        "POST",
        "/druid/indexer/v1/supervisor/{id}/terminate",
        "Terminate a supervisor",
    ),
    (
        "POST",
        "/druid/indexer/v1/supervisor/{id}/shutdown",
        "Terminate a supervisor",
    ),
    (
        "POST",
        "/druid/indexer/v1/supervisor/{id}/reset",
        "Forget a supervisor's stored offsets",
    ),
    (
        "POST",
        "/druid/indexer/v1/supervisor/{id}/resetOffsets",
        "Store offsets for some partitions of a supervisor",
    ),
    (
        "GET",
        "/druid/indexer/v1/leader",
        "The leading overlord's URL",
    ),
    (
        "GET",
        "/druid/indexer/v1/isLeader",
        "200 on the leader, 404 elsewhere",
    ),
    ("GET", "/metrics", "Prometheus metrics of this server"),
    (
        "GET",
        "/druid/coordinator/v1/metadata/datasources",
        "Data sources with used segments",
    ),
    (
        "GET",
        "/druid/coordinator/v1/metadata/datasources/{ds}/segments",
        "A data source's used segments (?full)",
    ),
    (
        "GET",
        "/druid/coordinator/v1/datasources",
        "Data sources (?simple, ?full)",
    ),
    (
        "GET",
        "/druid/coordinator/v1/isLeader",
        "200 on the leader, 404 elsewhere",
    ),
    (
        "GET",
        "/druid/coordinator/v1/leader",
        "The leading overlord's URL",
    ),
    (
        "GET",
        "/druid/coordinator/v1/servers",
        "Servers (none: no historicals)",
    ),
    (
        "GET",
        "/druid/coordinator/v1/loadstatus",
        "Segments left to load by data source (none: no historicals)",
    ),
    (
        "GET",
        "/druid/coordinator/v1/datasources/{ds}",
        "A data source's segment summary",
    ),
    (
        "POST",
        "/druid/coordinator/v1/datasources/{ds}",
        "Mark every unused segment of a data source used",
    ),
    (
        "DELETE",
        "/druid/coordinator/v1/datasources/{ds}",
        "Mark every segment of a data source unused (?kill=true&interval submits a kill task)",
    ),
    (
        "POST",
        "/druid/coordinator/v1/datasources/{ds}/markUnused",
        "Mark segments unused by interval (and versions) or ids",
    ),
    (
        "POST",
        "/druid/coordinator/v1/datasources/{ds}/markUsed",
        "Mark segments used by interval (and versions) or ids",
    ),
    (
        "GET",
        "/druid/coordinator/v1/datasources/{ds}/intervals",
        "Intervals of a data source's used segments",
    ),
    (
        "DELETE",
        "/druid/coordinator/v1/datasources/{ds}/intervals/{interval}",
        "Submit a kill task for the unused segments of an interval",
    ),
    (
        "GET",
        "/druid/coordinator/v1/datasources/{ds}/segments",
        "A data source's used segments (?full)",
    ),
    (
        "GET",
        "/druid/coordinator/v1/datasources/{ds}/segments/{segment}",
        "One used segment",
    ),
    (
        "POST",
        "/druid/coordinator/v1/datasources/{ds}/segments/{segment}",
        "Mark one segment used",
    ),
    (
        "DELETE",
        "/druid/coordinator/v1/datasources/{ds}/segments/{segment}",
        "Mark one segment unused",
    ),
    (
        "GET",
        "/druid/coordinator/v1/config/compaction",
        "Automatic compaction config",
    ),
    (
        "POST",
        "/druid/coordinator/v1/config/compaction",
        "Set a data source's automatic compaction config",
    ),
    (
        "POST",
        "/druid/coordinator/v1/config/compaction/taskslots",
        "Task slots for automatic compaction",
    ),
    (
        "GET",
        "/druid/coordinator/v1/config/compaction/{ds}",
        "A data source's automatic compaction config",
    ),
    (
        "DELETE",
        "/druid/coordinator/v1/config/compaction/{ds}",
        "Remove a data source's automatic compaction config",
    ),
    (
        "GET",
        "/druid/coordinator/v1/compaction/status",
        "Automatic compaction status by data source",
    ),
    (
        "GET",
        "/druid/coordinator/v1/compaction/progress",
        "Bytes awaiting compaction",
    ),
    (
        "GET",
        "/drover/v1/datasources/{ds}/current",
        "The files and replaced time ranges of the current data (?format=duckdb)",
    ),
    (
        "GET",
        "/druid/coordinator/v1/rules",
        "Retention rules of every data source",
    ),
    (
        "GET",
        "/druid/coordinator/v1/rules/{ds}",
        "A data source's retention rules",
    ),
    (
        "POST",
        "/druid/coordinator/v1/rules/{ds}",
        "Set a data source's retention rules",
    ),
    (
        "GET",
        "/druid/coordinator/v1/rules/{ds}/history",
        "Retention rule history",
    ),
    (
        "GET",
        "/druid-ext/basic-security/authentication/loadStatus",
        "Authenticator load status",
    ),
    (
        "POST",
        "/druid-ext/basic-security/authentication/refreshAll",
        "Refresh user caches",
    ),
    (
        "GET",
        "/druid-ext/basic-security/authentication/db/{name}/users",
        "Users",
    ),
    (
        "GET",
        "/druid-ext/basic-security/authentication/db/{name}/users/{user}",
        "A user",
    ),
    (
        "POST",
        "/druid-ext/basic-security/authentication/db/{name}/users/{user}",
        "Create a user",
    ),
    (
        "DELETE",
        "/druid-ext/basic-security/authentication/db/{name}/users/{user}",
        "Delete a user",
    ),
    (
        "POST",
        "/druid-ext/basic-security/authentication/db/{name}/users/{user}/credentials",
        "Set a user's password",
    ),
    (
        "GET",
        "/druid-ext/basic-security/authorization/loadStatus",
        "Authorizer load status",
    ),
    (
        "GET",
        "/druid-ext/basic-security/authorization/db/{name}/users",
        "Authorization users",
    ),
    (
        "GET",
        "/druid-ext/basic-security/authorization/db/{name}/users/{user}",
        "A user's roles",
    ),
    (
        "POST",
        "/druid-ext/basic-security/authorization/db/{name}/users/{user}",
        "Create an authorization user",
    ),
    (
        "DELETE",
        "/druid-ext/basic-security/authorization/db/{name}/users/{user}",
        "Delete an authorization user",
    ),
    (
        "POST",
        "/druid-ext/basic-security/authorization/db/{name}/users/{user}/roles/{role}",
        "Assign a role to a user",
    ),
    (
        "DELETE",
        "/druid-ext/basic-security/authorization/db/{name}/users/{user}/roles/{role}",
        "Take a role from a user",
    ),
    (
        "GET",
        "/druid-ext/basic-security/authorization/db/{name}/roles",
        "Roles",
    ),
    (
        "GET",
        "/druid-ext/basic-security/authorization/db/{name}/roles/{role}",
        "A role",
    ),
    (
        "POST",
        "/druid-ext/basic-security/authorization/db/{name}/roles/{role}",
        "Create a role",
    ),
    (
        "DELETE",
        "/druid-ext/basic-security/authorization/db/{name}/roles/{role}",
        "Delete a role",
    ),
    (
        "GET",
        "/druid-ext/basic-security/authorization/db/{name}/roles/{role}/permissions",
        "A role's permissions",
    ),
    (
        "POST",
        "/druid-ext/basic-security/authorization/db/{name}/roles/{role}/permissions",
        "Set a role's permissions",
    ),
    ("GET", "/status/health", "true while the server runs"),
    ("GET", "/console", "Console: overview"),
    ("GET", "/console/", "Console: overview"),
    (
        "GET",
        "/console/tasks",
        "Console: tasks (?state, datasource)",
    ),
    ("GET", "/console/tasks/{id}", "Console: one task"),
    ("GET", "/console/workers", "Console: workers"),
    ("GET", "/console/supervisors", "Console: supervisors"),
    ("GET", "/console/datasources", "Console: data sources"),
    ("GET", "/console/console.css", "Console's style sheet"),
    ("GET", "/console/console.js", "Console's script"),
    ("GET", "/openapi.json", "This description"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use drover_service::openapi::declared_routes;
    use std::collections::BTreeSet;

    /// Every route the overlord's routers declare (`http/mod.rs` with its `/druid/indexer/v1`
    /// part nested, the console, the status routes every server shares).
    fn served() -> BTreeSet<(String, String)> {
        let http = include_str!("mod.rs");
        let v1_start = http.find("let v1 = Router::new()").expect("the v1 router");
        let v1_end = v1_start + http[v1_start..].find(';').expect("its end");
        let mut routes = declared_routes(&http[v1_start..v1_end], "/druid/indexer/v1");
        routes.extend(declared_routes(&http[..v1_start], ""));
        routes.extend(declared_routes(&http[v1_end..], ""));
        routes.extend(declared_routes(include_str!("console/mod.rs"), ""));
        routes.extend(declared_routes(
            include_str!("../../../service/src/status.rs"),
            "",
        ));
        routes.into_iter().collect()
    }

    #[test]
    fn describes_every_served_route_and_nothing_else() {
        let described: BTreeSet<(String, String)> = ROUTES
            .iter()
            .chain(drover_service::status::OPENAPI_ROUTES)
            .map(|(m, p, _)| (m.to_string(), p.to_string()))
            .collect();
        assert_eq!(
            described.len(),
            ROUTES.len() + drover_service::status::OPENAPI_ROUTES.len(),
            "a route is described twice"
        );
        let served = served();
        let missing: Vec<_> = served.difference(&described).collect();
        let extra: Vec<_> = described.difference(&served).collect();
        assert!(missing.is_empty(), "served but not described: {missing:?}");
        assert!(extra.is_empty(), "described but not served: {extra:?}");
        assert!(
            served.len() > 100,
            "the source scan found too few routes: {}",
            served.len()
        );
    }
}
