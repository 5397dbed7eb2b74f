//! Task actions over HTTP to the leading overlord (Druid's remote `TaskActionClient`): the peon
//! knows every overlord's URL (its middle manager passes them in `DROVER_OVERLORD_URLS` and keeps
//! them current in the file named by `DROVER_OVERLORDS_FILE`); followers redirect to the leader. Connection failures and 5xx (no leader yet, a failover)
//! are retried with backoff; a 4xx is final.

use std::time::Duration;

use crate::failure::TaskFailure;
use serde_json::{json, Value};

/// Druid retries a task action for minutes (`druid.peon.taskActionClient.retry`).
const RETRY_FOR: Duration = Duration::from_secs(120);

pub struct OverlordClient {
    urls: Vec<String>,
    file: Option<std::path::PathBuf>,
    http: reqwest::Client,
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
        let http = client
            .builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(600))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(OverlordClient {
            urls,
            file,
            http,
            task,
        })
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
        let started = tokio::time::Instant::now();
        let mut backoff = Duration::from_millis(250);
        loop {
            let mut last_error = "no overlord is known yet".to_string();
            for url in &self.current_urls() {
                let sent = self
                    .http
                    .post(format!("{url}/druid/indexer/v1/action"))
                    .header("Content-Type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => {
                        let v: Value = r
                            .json()
                            .await
                            .map_err(|e| fail!("task action [{kind}]: bad answer: {e}"))?;
                        return Ok(v.get("result").cloned().unwrap_or(Value::Null));
                    }
                    Ok(r) if r.status().is_client_error() => {
                        let status = r.status();
                        let text = r.text().await.unwrap_or_default();
                        return Err(fail!("task action [{kind}] refused ({status}): {text}"));
                    }
                    Ok(r) => last_error = format!("{url}: HTTP {}", r.status()),
                    Err(e) => last_error = format!("{url}: {e}"),
                }
            }
            if started.elapsed() > RETRY_FOR {
                return Err(fail!(
                    "task action [{kind}] failed for {RETRY_FOR:?}; last error: {last_error}"
                ));
            }
            println!("task action [{kind}] not answered ({last_error}); retrying in {backoff:?}");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}

fn parse_urls(text: &str) -> Vec<String> {
    text.split([',', '\n'])
        .map(|u| u.trim().trim_end_matches('/').to_string())
        .filter(|u| !u.is_empty())
        .collect()
}
