//! The overlord's HTTP API as the CLI uses it: credentials on every request, the CA when given,
//! redirects to the leader followed by hand (so that the credentials go along to another port,
//! which an HTTP client does not do by itself), and error answers turned into readable errors.

use std::time::Duration;

use anyhow::{bail, Context};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::settings::Settings;

/// Enough hops for follower → leader, not enough for a loop.
const MAX_REDIRECTS: usize = 5;

pub struct Overlord {
    http: reqwest::Client,
    base: String,
    credentials: Option<(String, Option<String>)>,
}

/// An answer: its status and body.
pub struct Answer {
    pub status: StatusCode,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_str(&self.body).with_context(|| {
            format!(
                "the overlord answered something that is not JSON: {}",
                self.body
            )
        })
    }
}

impl Overlord {
    pub fn new(settings: &Settings) -> anyhow::Result<Overlord> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60));
        if let Some(ca) = &settings.ca_file {
            let pem = std::fs::read(ca).with_context(|| format!("cannot read {}", ca.display()))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .with_context(|| format!("{} is not a PEM certificate", ca.display()))?;
            builder = builder.add_root_certificate(cert);
        }
        Ok(Overlord {
            http: builder.build()?,
            base: settings.url.trim_end_matches('/').to_string(),
            credentials: settings
                .user
                .clone()
                .map(|u| (u, settings.password.clone())),
        })
    }

    /// `method path` with an optional JSON body, following redirects; any status is returned.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Answer> {
        let mut url = format!("{}{path}", self.base);
        for _ in 0..=MAX_REDIRECTS {
            let mut request = self.http.request(method.clone(), &url);
            if let Some((user, password)) = &self.credentials {
                request = request.basic_auth(user, password.as_deref());
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request
                .send()
                .await
                .with_context(|| format!("cannot reach the overlord at {url}"))?;
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .context("a redirect without a Location")?;
                url = reqwest::Url::parse(&url)?.join(location)?.to_string();
                continue;
            }
            let body = response.text().await.unwrap_or_default();
            return Ok(Answer { status, body });
        }
        bail!("more than {MAX_REDIRECTS} redirects from {path}")
    }

    /// The JSON answer of a request that must succeed.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let answer = self.send(method, path, body).await?;
        if !answer.status.is_success() {
            bail!("{}", failure(&answer));
        }
        if answer.body.trim().is_empty() {
            return Ok(Value::Null);
        }
        answer.json()
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        self.call(Method::POST, path, body).await
    }
}

/// `HTTP 400: <the error's text>`, with Druid's `{"error": …}` unwrapped.
fn failure(answer: &Answer) -> String {
    let message = serde_json::from_str::<Value>(&answer.body)
        .ok()
        .and_then(|v| {
            v.get("error")
                .or_else(|| v.get("errorMessage"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| answer.body.trim().to_string());
    let hint = match answer.status {
        StatusCode::UNAUTHORIZED => {
            " (give --user and --password, or DROVER_USER and DROVER_PASSWORD)"
        }
        _ => "",
    };
    format!("HTTP {}: {message}{hint}", answer.status.as_u16())
}

/// A path segment: ids may hold characters that mean something in a URL.
pub fn segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
