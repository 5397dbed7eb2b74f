//! A small client for the overlord's HTTP API, as a test or benchmark uses it.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::Value;

#[derive(Clone)]
pub struct ApiClient {
    pub base: String,
    http: reqwest::Client,
}

#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub body: String,
    pub location: Option<String>,
    /// The `WWW-Authenticate` challenge of a 401.
    pub www_authenticate: Option<String>,
}

impl RawResponse {
    async fn read(r: reqwest::Response) -> reqwest::Result<RawResponse> {
        let header = |name: &str| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let location = header("location");
        let www_authenticate = header("www-authenticate");
        Ok(RawResponse {
            status: r.status().as_u16(),
            location,
            www_authenticate,
            body: r.text().await?,
        })
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

impl ApiClient {
    /// A client that follows a follower's 307 to the leader, as `curl -L` does.
    pub fn new(base: impl Into<String>) -> Self {
        Self::with_redirects(base, reqwest::redirect::Policy::limited(5))
    }

    /// A client that shows redirects instead of following them.
    pub fn no_redirects(base: impl Into<String>) -> Self {
        Self::with_redirects(base, reqwest::redirect::Policy::none())
    }

    fn with_redirects(base: impl Into<String>, policy: reqwest::redirect::Policy) -> Self {
        Self::build(base, policy, None, None)
    }

    /// A client for a cluster with `credentials` (HTTP Basic) and/or a private CA (PEM) that
    /// its HTTPS certificates are signed by; `follow` redirects or show them.
    pub fn configured(
        base: impl Into<String>,
        credentials: Option<&str>,
        ca_pem: Option<&[u8]>,
        follow: bool,
    ) -> Self {
        let policy = if follow {
            reqwest::redirect::Policy::limited(5)
        } else {
            reqwest::redirect::Policy::none()
        };
        Self::build(base, policy, credentials, ca_pem)
    }

    /// A client that sends `user:password` with HTTP Basic on every request. It follows
    /// redirects, but (as curl without `--location-trusted`) does not resend the credentials
    /// to another host or port: point it at the leader.
    pub fn authenticated(base: impl Into<String>, credentials: &str) -> Self {
        Self::configured(base, Some(credentials), None, true)
    }

    fn build(
        base: impl Into<String>,
        policy: reqwest::redirect::Policy,
        credentials: Option<&str>,
        ca_pem: Option<&[u8]>,
    ) -> Self {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(c) = credentials {
            use base64::Engine;
            let value = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(c)
            );
            headers.insert(
                reqwest::header::AUTHORIZATION,
                reqwest::header::HeaderValue::from_str(&value).unwrap(),
            );
        }
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(policy)
            .default_headers(headers);
        if let Some(pem) = ca_pem {
            builder = builder
                .add_root_certificate(reqwest::Certificate::from_pem(pem).expect("a PEM CA"));
        }
        let http = builder.build().unwrap();
        ApiClient {
            base: base.into(),
            http,
        }
    }

    /// Whether this overlord leads (`/isLeader` answers 200).
    pub async fn is_leader(&self) -> bool {
        matches!(self.get("/isLeader").await, Ok(r) if r.status == 200)
    }

    fn url(&self, path: &str) -> String {
        format!("{}/druid/indexer/v1{path}", self.base)
    }

    /// GET a path from the server's root (e.g. `/druid/coordinator/v1/...`).
    pub async fn get_root(&self, path: &str) -> anyhow::Result<RawResponse> {
        let r = self.http.get(format!("{}{path}", self.base)).send().await?;
        Ok(RawResponse::read(r).await?)
    }

    /// A request to a path from the server's root (not under `/druid/indexer/v1`), with an
    /// optional JSON body and extra headers (Druid's `X-Druid-Author`, …).
    fn root_request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> reqwest::RequestBuilder {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(serde_json::to_vec(body).expect("JSON"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
    }

    /// Any method on a path from the server's root, with an optional JSON body.
    pub async fn send_root(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<RawResponse> {
        let response = self.root_request(method, path, body, &[]).send().await?;
        Ok(RawResponse::read(response).await?)
    }

    /// `send_root` with extra headers; panics on a transport error.
    pub async fn http_with_headers(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> RawResponse {
        let response = self
            .root_request(method, path, Some(body), headers)
            .send()
            .await
            .expect("the request is answered");
        RawResponse::read(response)
            .await
            .expect("the answer is read")
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<RawResponse> {
        let r = self.http.get(self.url(path)).send().await?;
        Ok(RawResponse::read(r).await?)
    }

    pub async fn post(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
    ) -> anyhow::Result<RawResponse> {
        let r = self
            .http
            .post(self.url(path))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await?;
        Ok(RawResponse::read(r).await?)
    }

    /// Submits a task and returns its id.
    pub async fn submit(&self, task: &Value) -> anyhow::Result<String> {
        let r = self.post("/task", serde_json::to_vec(task)?).await?;
        if r.status != 200 {
            bail!("submit answered {}: {}", r.status, r.body);
        }
        r.json()["task"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("no task id in {}", r.body))
    }

    /// The TaskStatusPlus of a task, `None` on 404.
    pub async fn status(&self, id: &str) -> anyhow::Result<Option<Value>> {
        let r = self.get(&format!("/task/{id}/status")).await?;
        match r.status {
            200 => Ok(Some(r.json()["status"].clone())),
            404 => Ok(None),
            s => bail!("status of {id} answered {s}: {}", r.body),
        }
    }

    /// Polls until `accept` says yes, or fails after `timeout`.
    pub async fn wait_status(
        &self,
        id: &str,
        timeout: Duration,
        accept: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        let mut last = Value::Null;
        while Instant::now() < deadline {
            // A 503 or a refused connection while overlords elect a leader is not an answer yet.
            match self.status(id).await {
                Ok(Some(s)) if accept(&s) => return Ok(s),
                Ok(Some(s)) => last = s,
                Ok(None) => {}
                Err(e) => last = Value::String(e.to_string()),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("task {id} did not reach the expected status in {timeout:?}; last: {last}")
    }

    /// Waits for SUCCESS or FAILED.
    pub async fn wait_complete(&self, id: &str, timeout: Duration) -> anyhow::Result<Value> {
        self.wait_status(id, timeout, |s| {
            s["statusCode"] == "SUCCESS" || s["statusCode"] == "FAILED"
        })
        .await
    }

    /// Waits until the runner has the task on a worker.
    pub async fn wait_running(&self, id: &str, timeout: Duration) -> anyhow::Result<Value> {
        self.wait_status(id, timeout, |s| {
            s["runnerStatusCode"] == "RUNNING" && s["location"]["host"].is_string()
        })
        .await
    }

    pub async fn tasks(&self, query: &str) -> anyhow::Result<Vec<Value>> {
        let r = self.get(&format!("/tasks{query}")).await?;
        if r.status != 200 {
            bail!("/tasks{query} answered {}: {}", r.status, r.body);
        }
        serde_json::from_str(&r.body).context("tasks list")
    }

    pub async fn log(&self, id: &str) -> anyhow::Result<Option<String>> {
        let r = self.get(&format!("/task/{id}/log")).await?;
        Ok((r.status == 200).then_some(r.body))
    }

    pub async fn shutdown(&self, id: &str) -> anyhow::Result<RawResponse> {
        self.post(&format!("/task/{id}/shutdown"), "").await
    }

    pub async fn workers(&self) -> anyhow::Result<Vec<Value>> {
        Ok(serde_json::from_str(&self.get("/workers").await?.body)?)
    }

    /// Waits until the overlord answers health checks.
    pub async fn wait_healthy(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(r) = self
                .http
                .get(format!("{}/status/health", self.base))
                .send()
                .await
            {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("{} not healthy after {timeout:?}", self.base)
    }
}
