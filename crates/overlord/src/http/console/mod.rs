//! A built-in console at `/console` for people without a Druid installation: tasks (filter,
//! status, log tail, report), workers and their slots, supervisors with their lag, data sources
//! with their segments' count and size. Server-rendered HTML from the same state the API
//! answers from, with a little plain JavaScript (`console.js`) and no build step. Served by the
//! leader (a follower redirects) behind the same authentication and authorization as the API
//! (`STATE` read).

mod html;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use self::html::{at, bytes, escape, page, table, text, url_segment, with};
use super::error::ApiError;
use super::tasks::{status_of, task_list, ListQuery};
use super::AppState;
use drover_core::TaskId;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(overview))
        .route("/console/", get(overview))
        .route("/console/tasks", get(tasks))
        .route("/console/tasks/{id}", get(task))
        .route("/console/workers", get(workers))
        .route("/console/supervisors", get(supervisors))
        .route("/console/datasources", get(datasources))
        .route("/console/console.css", get(css))
        .route("/console/console.js", get(js))
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("console.css"),
    )
        .into_response()
}

async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("console.js"),
    )
        .into_response()
}

fn as_values<T: serde::Serialize>(items: &[T]) -> Vec<Value> {
    items
        .iter()
        .map(|i| serde_json::to_value(i).unwrap_or(Value::Null))
        .collect()
}

/// A cell with the value as text and as a CSS class (states are coloured).
fn state_cell(pointer: &'static str) -> impl Fn(&Value) -> String {
    move |row| {
        let s = escape(&text(row.pointer(pointer).unwrap_or(&Value::Null)));
        format!("<span class=\"{s}\">{s}</span>")
    }
}

fn task_link(row: &Value) -> String {
    let id = text(&row["id"]);
    format!(
        "<a href=\"/console/tasks/{}\">{}</a>",
        url_segment(&id),
        escape(&id)
    )
}

fn card(label: &str, value: impl std::fmt::Display, href: &str) -> String {
    format!(
        "<a class=\"card\" href=\"{href}\"><div class=\"n\">{}</div>{}</a>",
        escape(&value.to_string()),
        escape(label)
    )
}

async fn overview(State(s): State<AppState>) -> Result<Html<String>, ApiError> {
    let snapshot = s.runner_snapshot().await?;
    let leader = s.leader()?;
    let count = |state: drover_core::RunnerTaskState| {
        snapshot.tasks.iter().filter(|t| t.state == state).count()
    };
    use drover_core::RunnerTaskState as R;
    let capacity: i64 = snapshot
        .workers
        .iter()
        .map(|w| i64::from(w.worker.capacity))
        .sum();
    let used: i64 = snapshot
        .workers
        .iter()
        .map(|w| i64::from(w.curr_capacity_used))
        .sum();
    let supervisors = leader.supervisors.list().await.unwrap_or_default().len();
    let data_sources = leader.store.data_sources().await?.len();
    let body = format!(
        "<div class=\"cards\">{}{}{}{}{}{}</div>",
        card(
            "running tasks",
            count(R::Running),
            "/console/tasks?state=running"
        ),
        card(
            "pending tasks",
            count(R::Pending),
            "/console/tasks?state=pending"
        ),
        card("workers", snapshot.workers.len(), "/console/workers"),
        card(
            "slots used",
            format!("{used} / {capacity}"),
            "/console/workers"
        ),
        card("supervisors", supervisors, "/console/supervisors"),
        card("data sources", data_sources, "/console/datasources"),
    );
    Ok(Html(page("Overview", "/console", &body)))
}

#[derive(Deserialize)]
struct TaskFilter {
    state: Option<String>,
    datasource: Option<String>,
}

async fn tasks(
    State(s): State<AppState>,
    Query(f): Query<TaskFilter>,
) -> Result<Html<String>, ApiError> {
    let state = f.state.filter(|s| !s.is_empty());
    let datasource = f.datasource.filter(|d| !d.is_empty());
    let list = task_list(
        &s,
        ListQuery {
            state: state.clone(),
            datasource: datasource.clone(),
            max: Some(500),
            ..ListQuery::default()
        },
    )
    .await?;
    let options: String = ["", "running", "pending", "waiting", "complete"]
        .iter()
        .map(|o| {
            let selected = if state.as_deref() == Some(*o) {
                " selected"
            } else {
                ""
            };
            let label = if o.is_empty() { "any state" } else { o };
            format!("<option value=\"{o}\"{selected}>{label}</option>")
        })
        .collect();
    let form = format!(
        "<form class=\"filter\" method=\"get\"><select name=\"state\">{options}</select>\
         <input name=\"datasource\" placeholder=\"data source\" value=\"{}\">\
         <button>Filter</button></form>",
        escape(datasource.as_deref().unwrap_or(""))
    );
    let rows = as_values(&list);
    let columns = [
        with("ID", task_link),
        at("Type", "/type"),
        at("Data source", "/dataSource"),
        with("Status", state_cell("/statusCode")),
        with("Runner", state_cell("/runnerStatusCode")),
        at("Created", "/createdTime"),
        at("Duration (ms)", "/duration"),
        at("Host", "/location/host"),
        at("Error", "/errorMsg"),
    ];
    let body = format!(
        "{form}{}",
        table("tasks", &columns, &rows, "No tasks match.")
    );
    Ok(Html(page("Tasks", "/console/tasks", &body)))
}

async fn task(State(s): State<AppState>, Path(id): Path<String>) -> Result<Html<String>, ApiError> {
    let id = TaskId::new(id).map_err(|e| ApiError::BadRequest(format!("task id: {e}")))?;
    let Some(status) = status_of(&s, &id).await? else {
        return Err(ApiError::NotFound(
            json!({"error": format!("no task [{id}]")}),
        ));
    };
    let status = serde_json::to_value(&status).unwrap_or(Value::Null);
    let api = format!("/druid/indexer/v1/task/{}", url_segment(id.as_str()));
    let fields = [
        ("Type", "/type"),
        ("Data source", "/dataSource"),
        ("Status", "/statusCode"),
        ("Runner", "/runnerStatusCode"),
        ("Created", "/createdTime"),
        ("Duration (ms)", "/duration"),
        ("Host", "/location/host"),
        ("Port", "/location/port"),
        ("Error", "/errorMsg"),
    ];
    let rows: String = fields
        .iter()
        .map(|(name, pointer)| {
            let v = escape(&text(status.pointer(pointer).unwrap_or(&Value::Null)));
            format!("<tr><th>{name}</th><td><span class=\"{v}\">{v}</span></td></tr>")
        })
        .collect();
    let body = format!(
        "<table id=\"task-status\">{rows}</table>\
         <p>API: <a href=\"{api}\">spec</a> · <a href=\"{api}/status\">status</a> · \
         <a href=\"{api}/log\">whole log</a> · <a href=\"{api}/reports\">report</a></p>\
         <h2>Rows</h2><p id=\"task-rows\" class=\"empty\">no report</p>\
         <h2>Log (last 200 lines)</h2><pre id=\"task-log\" data-src=\"{api}/log\">loading…</pre>\
         <h2>Report</h2><pre id=\"task-report\" data-src=\"{api}/reports\">loading…</pre>"
    );
    Ok(Html(page(id.as_str(), "/console/tasks", &body)))
}

async fn workers(State(s): State<AppState>) -> Result<Html<String>, ApiError> {
    let snapshot = s.runner_snapshot().await?;
    let rows = as_values(&snapshot.workers);
    let columns = [
        at("Host", "/worker/host"),
        at("Category", "/worker/category"),
        at("Version", "/worker/version"),
        with("Slots used", |w| {
            format!(
                "{} / {}",
                text(&w["currCapacityUsed"]),
                text(&w["worker"]["capacity"])
            )
        }),
        with("Running tasks", |w| {
            w["runningTasks"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| task_link(&json!({"id": t})))
                .collect::<Vec<_>>()
                .join(" ")
        }),
        at("Last task completed", "/lastCompletedTaskTime"),
        at("Blacklisted until", "/blacklistedUntil"),
    ];
    let body = table(
        "workers",
        &columns,
        &rows,
        "No middle manager is announced.",
    );
    Ok(Html(page("Workers", "/console/workers", &body)))
}

async fn supervisors(State(s): State<AppState>) -> Result<Html<String>, ApiError> {
    let handles = s
        .leader()?
        .supervisors
        .list()
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let rows: Vec<Value> = handles
        .iter()
        .map(|h| {
            let mut report = h.published().report.clone();
            report["payload"]["id"] = json!(h.spec.id.to_string());
            report["payload"].clone()
        })
        .collect();
    let columns = [
        at("Id", "/id"),
        at("Data source", "/dataSource"),
        at("Topic", "/stream"),
        with("State", state_cell("/state")),
        at("Healthy", "/healthy"),
        at("Partitions", "/partitions"),
        at("Aggregate lag", "/aggregateLag"),
        with("Lag by partition", |p| {
            p["minimumLag"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(part, lag)| format!("{}: {}", escape(part), escape(&text(lag))))
                .collect::<Vec<_>>()
                .join(", ")
        }),
        with("Tasks", |p| {
            p["activeTasks"]
                .as_array()
                .into_iter()
                .flatten()
                .map(task_link)
                .collect::<Vec<_>>()
                .join(" ")
        }),
        at("Offsets updated", "/offsetsLastUpdated"),
    ];
    let body = table("supervisors", &columns, &rows, "No supervisor is running.");
    Ok(Html(page("Supervisors", "/console/supervisors", &body)))
}

async fn datasources(State(s): State<AppState>) -> Result<Html<String>, ApiError> {
    let store = &s.leader()?.store;
    let mut rows = Vec::new();
    for name in store.data_sources().await? {
        let used = store.used_segments(&name, None).await?;
        let mut row = super::datasources::summary(&used);
        row["name"] = json!(name);
        rows.push(row);
    }
    let columns = [
        at("Name", "/name"),
        at("Segments", "/segments/count"),
        with("Size", |r| {
            escape(&bytes(r["segments"]["size"].as_u64().unwrap_or(0)))
        }),
        at("From", "/segments/minTime"),
        at("To", "/segments/maxTime"),
    ];
    let body = table(
        "datasources",
        &columns,
        &rows,
        "No data source has used segments.",
    );
    Ok(Html(page("Data sources", "/console/datasources", &body)))
}
