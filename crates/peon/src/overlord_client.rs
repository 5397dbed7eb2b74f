//! Task actions over HTTP to the leading overlord (Druid's remote `TaskActionClient`): the peon
//! knows every overlord's URL (its middle manager passes them in `DROVER_OVERLORD_URLS` and keeps
//! them current in the file named by `DROVER_OVERLORDS_FILE`); followers redirect to the leader. Connection failures and 5xx (no leader yet, a failover)
//! are retried with backoff; a 4xx is final.

use std::time::Duration;

use crate::failure::TaskFailure;
use serde_json::{json, Value};

/// The timeouts and redirect policy every overlord call has.
fn finish(builder: reqwest::ClientBuilder) -> Result<reqwest::Client, TaskFailure> {
    builder
        .connect_timeout(Duration::from_secs(5))
        // A follower's redirect is not followed (it would drop the credentials on the way
        // to another port): the next overlord in the list is asked instead.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(600))
        .build()
        .map_err(|e| TaskFailure::from(e.to_string()))
}

/// Druid retries a task action for minutes (`druid.peon.taskActionClient.retry`).
const RETRY_FOR: Duration = Duration::from_secs(120);

pub struct OverlordClient {
    urls: Vec<String>,
    file: Option<std::path::PathBuf>,
    client: drover_service::client::InternalClient,
    /// For `http://` overlords: made without the system's root certificates, whose loading
    /// would add milliseconds to every task's start, for a cluster that does not use them.
    plain: reqwest::Client,
    /// For `https://` overlords, made when one is first called (at once, and as `plain`, when
    /// this process has TLS settings).
    verifying: std::sync::OnceLock<Result<reqwest::Client, String>>,
    task: Value,
}

impl OverlordClient {
    pub fn from_env(task: Value) -> Result<OverlordClient, TaskFailure> {
        let urls = parse_urls(&std::env::var("DROVER_OVERLORD_URLS").unwrap_or_default());
        let file = std::env::var_os("DROVER_OVERLORDS_FILE").map(std::path::PathBuf::from);
        if urls.is_empty() && file.is_none() {
            return Err("no overlord is known: neither DROVER_OVERLORD_URLS nor DROVER_OVERLORDS_FILE is set".into());
        }
        let client = drover_service::client::InternalClient {
            tls: drover_service::tls::TlsConfig::from_env(),
            credentials: drover_service::auth::task_credentials_from_env(),
        };
        let verifying = std::sync::OnceLock::new();
        let plain = if client.speaks_tls() {
            let full = finish(client.builder())?;
            verifying.get_or_init(|| Ok(full.clone()));
            full
        } else {
            finish(client.plain_builder())?
        };
        Ok(OverlordClient {
            urls,
            file,
            client,
            plain,
            verifying,
            task,
        })
    }

    /// The client for `url`: the verifying one, made now if need be, for `https://`.
    fn http_for(&self, url: &str) -> Result<&reqwest::Client, String> {
        if !url.starts_with("https://") {
            return Ok(&self.plain);
        }
        self.verifying
            .get_or_init(|| finish(self.client.builder()).map_err(|e| e.0))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The middle manager's current list, else the one given at start.
    fn current_urls(&self) -> Vec<String> {
        let from_file = self
            .file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .map(|text| parse_urls(&text))
            .unwrap_or_default();
        if from_file.is_empty() {
            self.urls.clone()
        } else {
            from_file
        }
    }

    /// Runs `action` and returns its `result`.
    pub async fn submit(&self, action: Value) -> Result<Value, TaskFailure> {
        let body = serde_json::to_vec(&json!({ "task": self.task, "action": action }))
            .expect("actions serialize");
        let kind = action["type"].as_str().unwrap_or("?").to_string();
        let v = self
            .call(
                reqwest::Method::POST,
                "/druid/indexer/v1/action",
                Some(body),
                &format!("task action [{kind}]"),
            )
            .await
            .map_err(TaskFailure::from)?;
        Ok(v.get("result").cloned().unwrap_or(Value::Null))
    }

    /// GETs one of the overlord's API routes (`path` from `/druid/…`) as this task; `None`
    /// for a 404.
    pub async fn get(&self, path: &str) -> Result<Option<Value>, TaskFailure> {
        match self
            .call(reqwest::Method::GET, path, None, &format!("GET {path}"))
            .await
        {
            Err(Refusal::NotFound(_)) => Ok(None),
            other => other.map(Some).map_err(TaskFailure::from),
        }
    }

    /// POSTs JSON to one of the overlord's API routes as this task.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, TaskFailure> {
        let bytes = serde_json::to_vec(body).expect("JSON values serialize");
        self.call(
            reqwest::Method::POST,
            path,
            Some(bytes),
            &format!("POST {path}"),
        )
        .await
        .map_err(TaskFailure::from)
    }

    /// Asks the leading overlord (trying each known one; followers redirect), retrying
    /// connection failures and 5xx with backoff for [`RETRY_FOR`]; a 4xx is final.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
        what: &str,
    ) -> Result<Value, Refusal> {
        let started = tokio::time::Instant::now();
        let mut backoff = Duration::from_millis(250);
        loop {
            let mut last_error = "no overlord is known yet".to_string();
            for url in &self.current_urls() {
                let http = match self.http_for(url) {
                    Ok(http) => http,
                    Err(e) => {
                        last_error = format!("{url}: cannot make an HTTPS client: {e}");
                        continue;
                    }
                };
                let mut request = http.request(method.clone(), format!("{url}{path}"));
                if let Some(body) = &body {
                    request = request
                        .header("Content-Type", "application/json")
                        .body(body.clone());
                }
                match request.send().await {
                    Ok(r) if r.status().is_success() => {
                        let text = r
                            .bytes()
                            .await
                            .map_err(|e| Refusal::Failed(fail!("{what}: bad answer: {e}")))?;
                        if text.is_empty() {
                            return Ok(Value::Null);
                        }
                        return serde_json::from_slice(&text)
                            .map_err(|e| Refusal::Failed(fail!("{what}: bad answer: {e}")));
                    }
                    Ok(r) if r.status().is_client_error() => {
                        let status = r.status();
                        let text = r.text().await.unwrap_or_default();
                        let failure = fail!("{what} refused ({status}): {text}");
                        return Err(if status == reqwest::StatusCode::NOT_FOUND {
                            Refusal::NotFound(failure)
                        } else {
                            Refusal::Failed(failure)
                        });
                    }
                    Ok(r) => last_error = format!("{url}: HTTP {}", r.status()),
                    Err(e) => last_error = format!("{url}: {e}"),
                }
            }
            if started.elapsed() > RETRY_FOR {
                return Err(Refusal::Failed(fail!(
                    "{what} failed for {RETRY_FOR:?}; last error: {last_error}"
                )));
            }
            println!("{what} not answered ({last_error}); retrying in {backoff:?}");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}

/// Why a call to the overlord did not answer: a 404 is told apart, as some callers expect it.
enum Refusal {
    NotFound(TaskFailure),
    Failed(TaskFailure),
}

impl From<Refusal> for TaskFailure {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::NotFound(f) | Refusal::Failed(f) => f,
        }
    }
}

fn parse_urls(text: &str) -> Vec<String> {
    text.split([',', '\n'])
        .map(|u| u.trim().trim_end_matches('/').to_string())
        .filter(|u| !u.is_empty())
        .collect()
}
