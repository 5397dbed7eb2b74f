//! The supervisor's side of the chat API with its reading tasks: one typed call per route
//! (the routes themselves are `drover_kafka::chat`, shared with the peon's server), each
//! answering what the task said in Rust types rather than JSON.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use drover_core::time::parse_iso;
use drover_core::TaskId;
use drover_kafka::chat as route;
use drover_kafka::task::parse_offset_map;
use drover_kafka::Offsets;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// 202: the task took the request but is not there yet (a pause under way).
    #[error("the task has not finished the request yet")]
    Later,
    /// No answer, or an error status.
    #[error("{0}")]
    Failed(String),
    /// An answer that does not mean what the route promises.
    #[error("unexpected answer from [{route}]: {answer}")]
    BadAnswer { route: &'static str, answer: String },
}

#[derive(Clone)]
pub struct ChatClient {
    http: reqwest::Client,
    timeout: Duration,
    /// Makes each task's token when authentication is on (its chat API takes nothing else).
    token_secret: Option<String>,
}

impl ChatClient {
    pub fn new(
        http: reqwest::Client,
        timeout: Duration,
        token_secret: Option<String>,
    ) -> ChatClient {
        ChatClient {
            http,
            timeout,
            token_secret,
        }
    }

    async fn call(
        &self,
        location: &str,
        task: &TaskId,
        route: &'static str,
        post: Option<(&str, Option<Value>)>,
    ) -> Result<Value, ChatError> {
        let url = route::url(location, task.as_str(), route);
        let request = match post {
            None => self.http.get(&url),
            Some((query, None)) => self.http.post(format!("{url}{query}")),
            Some((query, Some(body))) => self.http.post(format!("{url}{query}")).json(&body),
        };
        let request = match &self.token_secret {
            Some(secret) => request.basic_auth(
                task.as_str(),
                Some(drover_service::auth::task_token(secret, task.as_str())),
            ),
            None => request,
        };
        let response = request
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| ChatError::Failed(e.to_string()))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status == reqwest::StatusCode::ACCEPTED {
            return Err(ChatError::Later);
        }
        if !status.is_success() {
            return Err(ChatError::Failed(format!("{status}: {text}")));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn offsets(route: &'static str, answer: Value) -> Result<Offsets, ChatError> {
        answer
            .as_object()
            .and_then(|m| parse_offset_map(route, m).ok())
            .ok_or_else(|| ChatError::BadAnswer {
                route,
                answer: answer.to_string(),
            })
    }

    /// The task runner's status (`READING`, `PAUSED`, `PUBLISHING`, …).
    pub async fn status(&self, location: &str, task: &TaskId) -> Result<String, ChatError> {
        match self.call(location, task, route::STATUS, None).await? {
            Value::String(s) => Ok(s),
            other => Err(ChatError::BadAnswer {
                route: route::STATUS,
                answer: other.to_string(),
            }),
        }
    }

    pub async fn current_offsets(
        &self,
        location: &str,
        task: &TaskId,
    ) -> Result<Offsets, ChatError> {
        let answer = self
            .call(location, task, route::OFFSETS_CURRENT, None)
            .await?;
        Self::offsets(route::OFFSETS_CURRENT, answer)
    }

    pub async fn end_offsets(&self, location: &str, task: &TaskId) -> Result<Offsets, ChatError> {
        let answer = self.call(location, task, route::OFFSETS_END, None).await?;
        Self::offsets(route::OFFSETS_END, answer)
    }

    /// Sequence id → its start offsets.
    pub async fn checkpoints(
        &self,
        location: &str,
        task: &TaskId,
    ) -> Result<BTreeMap<u32, Offsets>, ChatError> {
        let answer = self.call(location, task, route::CHECKPOINTS, None).await?;
        let bad = || ChatError::BadAnswer {
            route: route::CHECKPOINTS,
            answer: answer.to_string(),
        };
        let map = answer.as_object().ok_or_else(bad)?;
        map.iter()
            .map(|(sequence, start)| {
                let sequence: u32 = sequence.parse().map_err(|_| bad())?;
                let start = start.as_object().ok_or_else(bad)?;
                let start = parse_offset_map(route::CHECKPOINTS, start).map_err(|_| bad())?;
                Ok((sequence, start))
            })
            .collect()
    }

    pub async fn start_time(
        &self,
        location: &str,
        task: &TaskId,
    ) -> Result<DateTime<Utc>, ChatError> {
        let answer = self.call(location, task, route::TIME_START, None).await?;
        answer
            .as_str()
            .and_then(parse_iso)
            .ok_or_else(|| ChatError::BadAnswer {
                route: route::TIME_START,
                answer: answer.to_string(),
            })
    }

    /// Pauses the task; its current offsets once paused (`Later` while it gets there).
    pub async fn pause(&self, location: &str, task: &TaskId) -> Result<Offsets, ChatError> {
        let answer = self
            .call(location, task, route::PAUSE, Some(("", None)))
            .await?;
        Self::offsets(route::PAUSE, answer)
    }

    /// Ends the open sequence at `end`: the task's last one with `finish`, else a checkpoint.
    pub async fn set_end_offsets(
        &self,
        location: &str,
        task: &TaskId,
        end: &Offsets,
        finish: bool,
    ) -> Result<(), ChatError> {
        let query = format!("?finish={finish}");
        self.call(
            location,
            task,
            route::OFFSETS_END,
            Some((&query, Some(serde_json::json!(end)))),
        )
        .await
        .map(drop)
    }

    /// Ends the task without publishing.
    pub async fn stop(&self, location: &str, task: &TaskId) -> Result<(), ChatError> {
        self.call(location, task, route::STOP, Some(("", None)))
            .await
            .map(drop)
    }

    pub async fn row_stats(&self, location: &str, task: &TaskId) -> Result<Value, ChatError> {
        self.call(location, task, route::ROW_STATS, None).await
    }

    /// Tells the `index_parallel` task `supervisor` that its sub-task `sub_task` has ended.
    pub async fn sub_task_ended(
        &self,
        location: &str,
        supervisor: &TaskId,
        sub_task: &TaskId,
    ) -> Result<(), ChatError> {
        let body = serde_json::json!({ "id": sub_task });
        self.call(
            location,
            supervisor,
            route::SUB_TASK_ENDED,
            Some(("", Some(body))),
        )
        .await
        .map(drop)
    }

    /// Druid's `ingestionStatsAndErrors` report as of now.
    pub async fn live_reports(&self, location: &str, task: &TaskId) -> Result<Value, ChatError> {
        self.call(location, task, route::LIVE_REPORTS, None).await
    }

    /// A streaming task's recent `ParseExceptionReport`s.
    pub async fn unparseable_events(
        &self,
        location: &str,
        task: &TaskId,
    ) -> Result<Vec<Value>, ChatError> {
        match self
            .call(location, task, route::UNPARSEABLE_EVENTS, None)
            .await?
        {
            Value::Array(reports) => Ok(reports),
            Value::Null => Ok(Vec::new()),
            other => Err(ChatError::BadAnswer {
                route: route::UNPARSEABLE_EVENTS,
                answer: other.to_string(),
            }),
        }
    }
}

/// The base URL of the chat API of a task at `location` (`https://` on its TLS port when it has
/// one); `None` while it has no port.
pub fn chat_base(location: &drover_core::TaskLocation) -> Option<String> {
    let host = location.host.as_ref()?;
    match (location.tls_port, location.port) {
        (tls, _) if tls > 0 => Some(format!("https://{host}:{tls}")),
        (_, port) if port > 0 => Some(format!("http://{host}:{port}")),
        _ => None,
    }
}
