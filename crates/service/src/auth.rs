//! Authentication as HTTP middleware, compatible with Druid's `druid-basic-security`: HTTP Basic
//! on every route but `/status/health`, checked against the internal client's credentials (the
//! "escalator" every Drover process uses to call another) and, on the overlord, against the
//! users stored in the metadata store (salted PBKDF2-HMAC-SHA512, 10,000 iterations by default,
//! as Druid). A missing or wrong password gets 401 with `WWW-Authenticate`. Off by default, as
//! in Druid; `[security] basic_auth = true` on every server turns it on.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};

/// Druid's default `credentialIterations`.
pub const DEFAULT_ITERATIONS: u32 = 10_000;
/// Druid's default internal client user.
pub const INTERNAL_USER: &str = "druid_system";
/// The user `initial_admin_password` is for.
pub const ADMIN_USER: &str = "admin";
/// How long a verified password is taken as good without hashing it again.
const VERIFIED_FOR: Duration = Duration::from_secs(60);
/// The environment variable a middle manager hands a peon its task's credentials in
/// (`taskId:token`): the peon acts for its own task only, and never holds the internal password.
pub const TASK_CREDENTIALS_ENV: &str = "DROVER_TASK_CREDENTIALS";

/// A task's token: HMAC-SHA256 of its id under the internal client's password, hex. The
/// overlord and the task's middle manager can make it; the task's peon is handed it; nobody
/// else (another peon included) can.
pub fn task_token(internal_password: &str, task_id: &str) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(internal_password.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(task_id.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `[security]` table of every server's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    /// HTTP Basic authentication on every route but `/status/health`.
    pub basic_auth: bool,
    /// The authenticator name in `/druid-ext/basic-security/authentication/db/{name}/…`.
    pub authenticator_name: String,
    /// The authorizer name in `/druid-ext/basic-security/authorization/db/{name}/…`.
    pub authorizer_name: String,
    /// The `admin` user's password until one is set through the API (overlord).
    pub initial_admin_password: Option<String>,
    pub internal_client_username: String,
    /// What Drover's processes use to call each other; required with `basic_auth`.
    pub internal_client_password: Option<String>,
    pub credential_iterations: u32,
    /// Methods allowed besides the ones Drover's APIs use (GET, HEAD, POST, PUT, DELETE), as
    /// Druid's `druid.server.http.allowedHttpMethods`; any other is answered 405.
    pub allowed_http_methods: Vec<String>,
    /// Druid's `druid.auth.enableInputSourceSecurity`: an ingestion also needs READ on the
    /// `EXTERNAL` resource named by each input source type (`local`, `http`, `inline`, `kafka`),
    /// and READ on the data source a `druid` input source reads.
    pub input_source_security: bool,
}

/// The methods Drover's APIs answer.
const API_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "DELETE"];

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            basic_auth: false,
            authenticator_name: "MyBasicMetadataAuthenticator".into(),
            authorizer_name: "MyBasicMetadataAuthorizer".into(),
            initial_admin_password: None,
            internal_client_username: INTERNAL_USER.into(),
            internal_client_password: None,
            credential_iterations: DEFAULT_ITERATIONS,
            allowed_http_methods: Vec::new(),
            input_source_security: false,
        }
    }
}

impl SecurityConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.basic_auth {
            anyhow::ensure!(
                self.internal_client_password
                    .as_deref()
                    .is_some_and(|p| !p.is_empty()),
                "security.basic_auth needs security.internal_client_password (the password Drover's \
                 processes call each other with)"
            );
            anyhow::ensure!(
                self.credential_iterations >= 1,
                "security.credential_iterations must be at least 1"
            );
        }
        Ok(())
    }

    /// The key tasks' tokens are made with (the internal password), when authentication is on.
    pub fn task_token_secret(&self) -> Option<String> {
        self.internal_client_password
            .clone()
            .filter(|_| self.basic_auth)
    }

    /// `user:password` of the internal client, when authentication is on.
    pub fn internal_credentials(&self) -> Option<String> {
        let password = self.internal_client_password.as_ref()?;
        self.basic_auth
            .then(|| format!("{}:{password}", self.internal_client_username))
    }
}

/// The `Authorization` header for `user:password`.
pub fn basic_header(credentials: &str) -> HeaderValue {
    let mut v = HeaderValue::from_str(&format!("Basic {}", B64.encode(credentials)))
        .expect("base64 is a valid header value");
    v.set_sensitive(true);
    v
}

/// Default headers for an HTTP client that calls other Drover processes: the internal
/// credentials when there are any.
pub fn internal_headers(credentials: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(c) = credentials {
        h.insert(header::AUTHORIZATION, basic_header(c));
    }
    h
}

/// A stored password: Druid's `BasicAuthenticatorCredentials`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// Base64.
    pub salt: String,
    /// Base64 of PBKDF2-HMAC-SHA512 (64 bytes).
    pub hash: String,
    pub iterations: u32,
}

impl Credentials {
    pub fn new(password: &str, iterations: u32) -> Credentials {
        let salt: [u8; 32] = rand::random();
        Credentials {
            salt: B64.encode(salt),
            hash: B64.encode(hash(password, &salt, iterations)),
            iterations,
        }
    }

    pub fn verify(&self, password: &str) -> bool {
        let (Ok(salt), Ok(expected)) = (B64.decode(&self.salt), B64.decode(&self.hash)) else {
            return false;
        };
        constant_time_eq(&hash(password, &salt, self.iterations), &expected)
    }
}

fn hash(password: &str, salt: &[u8], iterations: u32) -> [u8; 64] {
    let mut out = [0u8; 64];
    pbkdf2::pbkdf2_hmac::<Sha512>(password.as_bytes(), salt, iterations, &mut out);
    out
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub type UserLookup<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Credentials>, String>> + Send + 'a>>;

/// Where users' credentials are kept (the overlord's metadata store).
pub trait UserStore: Send + Sync {
    fn credentials<'a>(&'a self, user: &'a str) -> UserLookup<'a>;
}

/// The middleware's state: the settings, the user store if this server has one, and the
/// passwords verified lately (keyed by a SHA-256 of `user:password`, never the password).
#[derive(Clone)]
pub struct Authenticator {
    config: Arc<SecurityConfig>,
    users: Option<Arc<dyn UserStore>>,
    verified: Arc<Mutex<Verified>>,
    /// Whether task tokens are taken (the overlord, for task actions).
    accepts_tasks: bool,
}

/// SHA-256 of `user:password` → the user, and when its password was verified.
type Verified = HashMap<[u8; 32], (String, Instant)>;

/// Who a request was authenticated as (a request extension, for handlers and audit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity(pub String);

/// A request authenticated with a task's credentials (its peon): it may act for that task only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskIdentity(pub String);

/// What good credentials are.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Authenticated {
    User(String),
    Task(String),
}

impl Authenticator {
    pub fn new(config: SecurityConfig, users: Option<Arc<dyn UserStore>>) -> Authenticator {
        Authenticator {
            config: Arc::new(config),
            users,
            verified: Arc::default(),
            accepts_tasks: false,
        }
    }

    /// Also takes a task's peon, authenticated by its task token (the overlord does).
    pub fn accepting_tasks(mut self) -> Authenticator {
        self.accepts_tasks = true;
        self
    }

    pub fn config(&self) -> &SecurityConfig {
        &self.config
    }

    /// Forgets every verified password (a user was changed or deleted).
    pub fn forget_verified(&self) {
        self.verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Who `header` authenticates: the internal client, a user, or (on a server with the
    /// internal password) a task's peon with its task token.
    async fn authenticate_any(
        &self,
        header: Option<&HeaderValue>,
    ) -> Result<Option<Authenticated>, String> {
        let Some((user, password)) = header.and_then(parse_basic) else {
            return Ok(None);
        };
        let internal = self.config.internal_client_password.as_deref();
        if user == self.config.internal_client_username {
            let ok = internal.is_some_and(|p| constant_time_eq(p.as_bytes(), password.as_bytes()));
            return Ok(ok.then_some(Authenticated::User(user)));
        }
        if let Some(secret) = internal.filter(|_| self.accepts_tasks) {
            // Task ids may hold ':' (their creation time) and tokens never do: the token is
            // after the last one.
            let joined = format!("{user}:{password}");
            if let Some((task, token)) = joined.rsplit_once(':') {
                if constant_time_eq(task_token(secret, task).as_bytes(), token.as_bytes()) {
                    return Ok(Some(Authenticated::Task(task.to_string())));
                }
            }
        }
        let key: [u8; 32] = Sha256::digest(format!("{user}:{password}")).into();
        if let Some((who, at)) = self
            .verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            if at.elapsed() < VERIFIED_FOR {
                return Ok(Some(Authenticated::User(who.clone())));
            }
        }
        let Some(store) = &self.users else {
            return Ok(None);
        };
        let stored = store.credentials(&user).await?;
        let ok = match stored {
            Some(c) => c.verify(&password),
            // Until its password is set through the API, `admin` has the initial one.
            None if user == ADMIN_USER => self
                .config
                .initial_admin_password
                .as_deref()
                .is_some_and(|p| constant_time_eq(p.as_bytes(), password.as_bytes())),
            None => {
                // As slow as a wrong password: how long a refusal takes tells no user names.
                Credentials::new(&password, self.config.credential_iterations);
                false
            }
        };
        if ok {
            self.verified
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key, (user.clone(), Instant::now()));
        }
        Ok(ok.then_some(Authenticated::User(user)))
    }
}

fn parse_basic(value: &HeaderValue) -> Option<(String, String)> {
    let text = value.to_str().ok()?;
    let (scheme, encoded) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(B64.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Routes anyone may call: load balancers and the overlords' leader probe check health.
fn unsecured(path: &str) -> bool {
    path == "/status/health"
}

/// The middleware: refuses methods no API uses (405, as Druid's `allowedHttpMethods`), then
/// lets a request through when authentication is off, the route is unsecured, or its
/// credentials are good; answers 401 otherwise.
pub async fn require_auth(
    State(auth): State<Authenticator>,
    mut request: Request,
    next: Next,
) -> Response {
    let method = request.method().as_str();
    let allowed = API_METHODS.contains(&method)
        || auth
            .config
            .allowed_http_methods
            .iter()
            .any(|m| m.eq_ignore_ascii_case(method));
    if !allowed {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, API_METHODS.join(", "))],
            axum::Json(serde_json::json!({
                "error": format!("method [{method}] is not allowed (security.allowed_http_methods)")
            })),
        )
            .into_response();
    }
    if !auth.config.basic_auth || unsecured(request.uri().path()) {
        return next.run(request).await;
    }
    match auth
        .authenticate_any(request.headers().get(header::AUTHORIZATION))
        .await
    {
        Ok(Some(Authenticated::Task(task))) => {
            request.extensions_mut().insert(TaskIdentity(task.clone()));
            request
                .extensions_mut()
                .insert(Identity(format!("task [{task}]")));
            next.run(request).await
        }
        Ok(Some(Authenticated::User(user))) => {
            // Audit rows name who changed a config: the authenticated user, not whatever the
            // request's `X-Druid-Author` claims.
            if let Ok(v) = HeaderValue::from_str(&user) {
                request.headers_mut().insert("X-Druid-Author", v);
            }
            request.extensions_mut().insert(Identity(user));
            next.run(request).await
        }
        Ok(None) => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, r#"Basic realm="druid""#)],
            axum::Json(serde_json::json!({
                "error": "Unauthorized: give a user and password with HTTP Basic authentication"
            })),
        )
            .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"error": format!("cannot check the credentials: {e}")})),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_salted_and_verified() {
        let a = Credentials::new("secret", 1_000);
        let b = Credentials::new("secret", 1_000);
        assert_ne!(a.salt, b.salt);
        assert_ne!(a.hash, b.hash);
        assert!(a.verify("secret"));
        assert!(!a.verify("Secret"));
        assert_eq!(B64.decode(&a.hash).unwrap().len(), 64);
    }

    #[test]
    fn basic_headers_round_trip() {
        let h = basic_header("druid_system:pa:ss");
        assert_eq!(
            parse_basic(&h),
            Some(("druid_system".into(), "pa:ss".into()))
        );
        assert_eq!(parse_basic(&HeaderValue::from_static("Bearer x")), None);
    }

    struct OneUser(Credentials);

    impl UserStore for OneUser {
        fn credentials<'a>(&'a self, user: &'a str) -> UserLookup<'a> {
            let found = (user == "alice").then(|| self.0.clone());
            Box::pin(async move { Ok(found) })
        }
    }

    #[tokio::test]
    async fn internal_stored_and_initial_admin_credentials() {
        let config = SecurityConfig {
            basic_auth: true,
            initial_admin_password: Some("first".into()),
            internal_client_password: Some("inner".into()),
            ..SecurityConfig::default()
        };
        let auth = Authenticator::new(
            config,
            Some(Arc::new(OneUser(Credentials::new("wonder", 10)))),
        );
        let check = |c: &str| {
            let h = basic_header(c);
            let auth = auth.clone();
            async move {
                match auth.authenticate_any(Some(&h)).await.unwrap() {
                    Some(Authenticated::User(u)) => Some(u),
                    Some(Authenticated::Task(t)) => Some(format!("task {t}")),
                    None => None,
                }
            }
        };
        assert_eq!(
            check("druid_system:inner").await.as_deref(),
            Some("druid_system")
        );
        assert_eq!(check("druid_system:outer").await, None);
        assert_eq!(check("alice:wonder").await.as_deref(), Some("alice"));
        assert_eq!(
            check("alice:wonder").await.as_deref(),
            Some("alice"),
            "cached"
        );
        assert_eq!(check("alice:blunder").await, None);
        assert_eq!(check("admin:first").await.as_deref(), Some("admin"));
        assert_eq!(check("bob:first").await, None);
        assert_eq!(auth.authenticate_any(None).await.unwrap(), None);
        // Task tokens count only where tasks are taken (the overlord).
        let token = task_token("inner", "index_wiki_1");
        assert_eq!(check(&format!("index_wiki_1:{token}")).await, None);
        let overlord = auth.clone().accepting_tasks();
        let h = basic_header(&format!("index_wiki_1:{token}"));
        assert_eq!(
            overlord.authenticate_any(Some(&h)).await.unwrap(),
            Some(Authenticated::Task("index_wiki_1".into()))
        );
        let other = basic_header(&format!("index_wiki_2:{token}"));
        assert_eq!(overlord.authenticate_any(Some(&other)).await.unwrap(), None);
        // A generated id holds its creation time, colons and all.
        let id = "index_wiki_abcdefgh_2026-12-02T05:44:54.204Z";
        let h = basic_header(&format!("{id}:{}", task_token("inner", id)));
        assert_eq!(
            overlord.authenticate_any(Some(&h)).await.unwrap(),
            Some(Authenticated::Task(id.into()))
        );
    }
}

/// `[security]` as flags and environment variables, shared by every server (one setting for
/// the whole cluster: the variables have no server prefix).
#[derive(Debug, Default, clap::Args, Serialize)]
pub struct SecurityOverrides {
    /// HTTP Basic authentication on every route but /status/health.
    #[arg(long = "security-basic-auth", env = "DROVER_SECURITY_BASIC_AUTH")]
    #[serde(rename = "basic_auth", skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<bool>,
    #[arg(
        long = "security-initial-admin-password",
        env = "DROVER_SECURITY_INITIAL_ADMIN_PASSWORD",
        hide_env_values = true
    )]
    #[serde(
        rename = "initial_admin_password",
        skip_serializing_if = "Option::is_none"
    )]
    pub initial_admin_password: Option<String>,
    #[arg(
        long = "security-internal-client-password",
        env = "DROVER_SECURITY_INTERNAL_CLIENT_PASSWORD",
        hide_env_values = true
    )]
    #[serde(
        rename = "internal_client_password",
        skip_serializing_if = "Option::is_none"
    )]
    pub internal_client_password: Option<String>,
    /// READ on `EXTERNAL` input source types for ingestion (Druid's enableInputSourceSecurity).
    #[arg(
        long = "security-input-source-security",
        env = "DROVER_SECURITY_INPUT_SOURCE_SECURITY"
    )]
    #[serde(
        rename = "input_source_security",
        skip_serializing_if = "Option::is_none"
    )]
    pub input_source_security: Option<bool>,
    /// Methods to allow besides GET, HEAD, POST, PUT, DELETE, comma-separated.
    #[arg(
        long = "security-allowed-http-methods",
        env = "DROVER_SECURITY_ALLOWED_HTTP_METHODS",
        value_delimiter = ','
    )]
    #[serde(
        rename = "allowed_http_methods",
        skip_serializing_if = "Option::is_none"
    )]
    pub allowed_http_methods: Option<Vec<String>>,
}

/// The `taskId:token` a middle manager handed its peon, if authentication is on: what the peon
/// calls the overlord with, and what its chat API takes (the overlord's supervisor, which can
/// make the token, is its one caller).
pub fn task_credentials_from_env() -> Option<String> {
    std::env::var(TASK_CREDENTIALS_ENV)
        .ok()
        .filter(|c| !c.is_empty())
}

/// A peon's authenticator: its chat API takes its task's credentials only, and is open when
/// its middle manager runs without authentication.
pub fn peon_authenticator() -> Authenticator {
    let config = match task_credentials_from_env().and_then(|c| {
        c.split_once(':')
            .map(|(u, p)| (u.to_string(), p.to_string()))
    }) {
        Some((task, token)) => SecurityConfig {
            basic_auth: true,
            internal_client_username: task,
            internal_client_password: Some(token),
            ..SecurityConfig::default()
        },
        None => SecurityConfig::default(),
    };
    Authenticator::new(config, None)
}
