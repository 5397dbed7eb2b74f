//! Druid's RedirectFilter: a follower answers every route but `/leader`, `/isLeader` (and the
//! health check) with 307 to the same path on the leader, or 503 when no leader is known.
//!
//! Unlike Druid, a follower first makes sure the leader answers at all: a frozen or cut-off
//! leader keeps its ZooKeeper latch until its session expires (tens of seconds), and clients
//! sent there would hang. Such a leader gets a 503 "leader does not answer" instead. The
//! probe's outcome is kept for a moment, so a burst of requests costs one probe.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use drover_zk::LatchState;

use super::ApiError;
use crate::leader::Leadership;

/// How long a probe's outcome is trusted.
const PROBE_KEPT: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct RedirectState {
    pub leadership: Leadership,
    pub probe: LeaderProbe,
}

/// Asks the leader's health route, within `timeout`, and remembers the answer briefly.
#[derive(Clone)]
pub struct LeaderProbe {
    http: reqwest::Client,
    timeout: Duration,
    /// The leader probed last, when, and whether it answered.
    last: Arc<Mutex<Option<(String, Instant, bool)>>>,
}

impl LeaderProbe {
    pub fn new(timeout: Duration, client: &drover_service::client::InternalClient) -> LeaderProbe {
        LeaderProbe {
            http: client
                .builder()
                .timeout(timeout)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("HTTP client"),
            timeout,
            last: Arc::new(Mutex::new(None)),
        }
    }

    async fn answers(&self, leader: &str) -> bool {
        let kept = {
            let last = self.last.lock().expect("probe lock");
            match &*last {
                Some((url, at, ok)) if url == leader && at.elapsed() < PROBE_KEPT => Some(*ok),
                _ => None,
            }
        };
        if let Some(ok) = kept {
            return ok;
        }
        let url = format!("{}/status/health", leader.trim_end_matches('/'));
        let ok = matches!(self.http.get(&url).send().await, Ok(r) if r.status().is_success());
        if !ok {
            tracing::warn!(%leader, timeout = ?self.timeout, "the leader does not answer; answering 503 instead of redirecting");
        }
        *self.last.lock().expect("probe lock") = Some((leader.to_string(), Instant::now(), ok));
        ok
    }
}

fn always_local(path: &str) -> bool {
    matches!(
        path,
        "/druid/indexer/v1/leader" | "/druid/indexer/v1/isLeader" | "/status/health"
    )
}

pub async fn to_leader(State(s): State<RedirectState>, request: Request, next: Next) -> Response {
    if always_local(request.uri().path()) {
        return next.run(request).await;
    }
    match s.leadership.latch() {
        LatchState::Leader => next.run(request).await,
        LatchState::Follower { leader } if leader != s.leadership.own_url => {
            if !s.probe.answers(&leader).await {
                return ApiError::Unavailable(format!(
                    "the leader {leader} does not answer within {:?} (leader_probe_timeout); \
                     try again shortly",
                    s.probe.timeout
                ))
                .into_response();
            }
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
