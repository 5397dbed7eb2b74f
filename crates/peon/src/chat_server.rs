//! The peon's chat API server (`/druid/worker/v1/chat/{taskId}/…`) on `DROVER_PEON_PORT`, on a
//! thread and runtime of its own so that it answers while the task's own thread is busy
//! parsing. HTTPS when the middle manager serves it (with its certificate), with the limits on
//! slow and idle clients every Drover server has; only the task's token gets in when
//! authentication is on. It lives until the process exits.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::failure::TaskFailure;
use crate::live::LiveReport;

/// Serves `app` (plus `/status/health`) if the middle manager gave us a port; says where.
pub fn start(app: Router) -> Result<(), TaskFailure> {
    let Some(port) = std::env::var("DROVER_PEON_PORT")
        .ok()
        .and_then(|p| p.parse::<u16>().ok())
    else {
        println!("DROVER_PEON_PORT is not set: no chat API");
        return Ok(());
    };
    let address = std::env::var("DROVER_PEON_BIND_ADDRESS").unwrap_or_else(|_| "127.0.0.1".into());
    let listener = std::net::TcpListener::bind((address.as_str(), port))
        .map_err(|e| fail!("cannot listen on {address}:{port} for the chat API: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| fail!("cannot set up the chat API's socket: {e}"))?;
    let tls = drover_service::tls::TlsConfig::from_env()
        .acceptor()
        .map_err(|e| fail!("cannot set up TLS for the chat API: {e}"))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let app = app
        .route("/status/health", get(|| async { Json(true) }))
        .layer(axum::middleware::from_fn_with_state(
            drover_service::auth::peon_authenticator(),
            drover_service::auth::require_auth,
        ));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail!("cannot start the chat API's runtime: {e}"))?;
    std::thread::Builder::new()
        .name("chat-api".into())
        .spawn(move || {
            rt.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => return eprintln!("chat API: {e}"),
                };
                if let Err(e) = drover_service::http_server::serve(
                    listener,
                    app,
                    drover_service::http_server::ServerLimits::default(),
                    tls,
                    std::future::pending(),
                )
                .await
                {
                    eprintln!("chat API stopped: {e}");
                }
            })
        })
        .map_err(|e| fail!("cannot start the chat API's thread: {e}"))?;
    println!("chat API on {scheme}://{address}:{port}");
    Ok(())
}

/// The routes every ingestion task answers, as Druid's batch tasks do: `rowStats`,
/// `unparseableEvents` (by phase) and `liveReports`.
pub fn report_routes(live: Arc<LiveReport>) -> Router {
    use drover_kafka::chat::{self as route, server_path};
    Router::new()
        .route(&server_path(route::ROW_STATS), get(row_stats))
        .route(
            &server_path(route::UNPARSEABLE_EVENTS),
            get(
                |State(l): State<Arc<LiveReport>>, Path(id): Path<String>| async move {
                    for_task(&l, &id, |l| json!({"buildSegments": l.errors()}))
                },
            ),
        )
        .route(&server_path(route::LIVE_REPORTS), get(live_reports))
        .with_state(live)
}

async fn row_stats(State(l): State<Arc<LiveReport>>, Path(id): Path<String>) -> Response {
    for_task(&l, &id, LiveReport::row_stats)
}

async fn live_reports(State(l): State<Arc<LiveReport>>, Path(id): Path<String>) -> Response {
    for_task(&l, &id, LiveReport::live_reports)
}

/// Druid's answer for a chat handler that is not this task's.
pub fn not_this_task(id: &str) -> Response {
    (
        axum::http::StatusCode::NOT_FOUND,
        Json(json!({"error": format!("Can't find chatHandler for handler[{id}]")})),
    )
        .into_response()
}

fn for_task(
    live: &LiveReport,
    id: &str,
    answer: impl Fn(&LiveReport) -> serde_json::Value,
) -> Response {
    if id != live.task_id() {
        return not_this_task(id);
    }
    Json(answer(live)).into_response()
}
