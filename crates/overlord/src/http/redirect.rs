//! Druid's RedirectFilter: a follower answers every route but `/leader`, `/isLeader` (and the
//! health check) with 307 to the same path on the leader, or 503 when no leader is known.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use drover_zk::LatchState;

use crate::leader::Leadership;

fn always_local(path: &str) -> bool {
    matches!(
        path,
        "/druid/indexer/v1/leader" | "/druid/indexer/v1/isLeader" | "/status/health"
    )
}

pub async fn to_leader(
    State(leadership): State<Leadership>,
    request: Request,
    next: Next,
) -> Response {
    if always_local(request.uri().path()) {
        return next.run(request).await;
    }
    match leadership.latch() {
        LatchState::Leader => next.run(request).await,
        LatchState::Follower { leader } if leader != leadership.own_url => {
            let path = request
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let location = format!("{}{path}", leader.trim_end_matches('/'));
            (
                StatusCode::TEMPORARY_REDIRECT,
                [(header::LOCATION, location)],
            )
                .into_response()
        }
        _ => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}
