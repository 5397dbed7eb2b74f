//! Authorization as HTTP middleware, with Druid's basic authorizer model (`policy`): once a
//! request is authenticated, `authorize` works out the permission its route needs — an action
//! on a data source (the one in the path, or the task's or supervisor's), on `STATE` (the
//! cluster's state: workers, task lists, status) or on `CONFIG` (worker and compaction
//! configs; `security` for the user routes) — and answers 403 when the user's roles do not
//! grant it. Routes whose resource is in the body (`POST /task`, `POST /supervisor`) check in
//! their handler with the `Access` left in the request. `/action` is for the internal client
//! alone: only Drover's own peons act for tasks.

pub mod policy;
pub mod routes;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use drover_core::TaskId;
use drover_metadata::MetadataStore;
use drover_service::auth::{Identity, TaskIdentity};

use self::policy::{Action, Policy, ResourceType};
use super::{ApiError, AppState};

/// The `druid_config` key of the authorization policy.
pub const POLICY_KEY: &str = "basic.authorization";
/// How long an overlord uses a policy it read before reading it again.
const POLICY_TTL: Duration = Duration::from_secs(5);

/// The stored policy, read at most every `POLICY_TTL` (at once after a change made here).
pub struct PolicyCache {
    store: MetadataStore,
    cached: Mutex<Option<(Instant, Arc<Policy>)>>,
}

impl PolicyCache {
    pub fn new(store: MetadataStore) -> PolicyCache {
        PolicyCache {
            store,
            cached: Mutex::new(None),
        }
    }

    pub async fn current(&self) -> Result<Arc<Policy>, ApiError> {
        if let Some((at, p)) = self
            .cached
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            if at.elapsed() < POLICY_TTL {
                return Ok(p.clone());
            }
        }
        let policy = Arc::new(read_policy(&self.store).await?);
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), policy.clone()));
        Ok(policy)
    }

    pub fn forget(&self) {
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

pub async fn read_policy(store: &MetadataStore) -> Result<Policy, ApiError> {
    match store
        .get_config(POLICY_KEY)
        .await
        .map_err(|e| ApiError::Unavailable(format!("cannot read the authorization policy: {e}")))?
    {
        None => Ok(Policy::default()),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::Internal(format!("the stored authorization policy: {e}"))),
    }
}

/// Who is asking and what their roles let them do.
#[derive(Clone)]
pub struct Access {
    pub user: String,
    internal_user: String,
    policy: Arc<Policy>,
    /// A task's peon (authenticated by its task token) and its task's data source: it may
    /// read and write that data source (an `index_parallel` task runs its sub-tasks), nothing
    /// else the policy does not grant its id.
    pub acting_task: Option<(TaskId, String)>,
}

impl Access {
    pub fn allows(&self, resource_type: ResourceType, name: &str, action: Action) -> bool {
        if let Some((_, data_source)) = &self.acting_task {
            if resource_type == ResourceType::Datasource && name == data_source {
                return true;
            }
        }
        self.policy
            .allows(&self.user, &self.internal_user, resource_type, name, action)
    }
}

/// With input-source security on, READ on what an ingestion reads: the `EXTERNAL` resource of
/// each input source type, the data source of a `druid` source.
pub fn check_inputs(
    s: &AppState,
    access: Option<&Access>,
    source: &drover_ingest::spec::InputSource,
) -> Result<(), ApiError> {
    use drover_ingest::spec::InputSource;
    if !s.authenticator.config().input_source_security {
        return Ok(());
    }
    let external = |name: &str| check(access, ResourceType::External, name, Action::Read);
    match source {
        InputSource::Inline { .. } => external("inline"),
        InputSource::Local { .. } => external("local"),
        InputSource::Http { .. } => external("http"),
        InputSource::S3(_) => external("s3"),
        InputSource::Stream => external("kafka"),
        InputSource::Druid { data_source, .. } => check(
            access,
            ResourceType::Datasource,
            data_source.as_str(),
            Action::Read,
        ),
        InputSource::Combining(delegates) => delegates
            .iter()
            .try_for_each(|d| check_inputs(s, access, d)),
    }
}

/// 403 unless `access` (absent when authentication is off) allows `action` on the resource.
pub fn check(
    access: Option<&Access>,
    resource_type: ResourceType,
    name: &str,
    action: Action,
) -> Result<(), ApiError> {
    match access {
        Some(a) if !a.allows(resource_type, name, action) => {
            Err(forbidden(&a.user, resource_type, name, action))
        }
        _ => Ok(()),
    }
}

fn forbidden(user: &str, resource_type: ResourceType, name: &str, action: Action) -> ApiError {
    // Druid's names: `WRITE` on `DATASOURCE`.
    let shown = |v: serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let (action, resource_type) = (
        shown(serde_json::json!(action)),
        shown(serde_json::json!(resource_type)),
    );
    ApiError::Forbidden(format!(
        "user [{user}] is not allowed {action} on {resource_type} [{name}]"
    ))
}

/// What a route needs.
enum Required {
    Nothing,
    /// The handler checks (the resource is in the body).
    InHandler,
    /// Only the internal client (task actions).
    Internal,
    Permission(ResourceType, String, Action),
}

fn read_or_write(method: &Method) -> Action {
    if method == Method::GET || method == Method::HEAD {
        Action::Read
    } else {
        Action::Write
    }
}

/// The permission `route` (its pattern) needs for `method`, with the path's `params`.
async fn required(
    s: &AppState,
    method: &Method,
    route: &str,
    params: &HashMap<String, String>,
) -> Result<Required, ApiError> {
    use Required::*;
    use ResourceType::*;
    let rw = read_or_write(method);
    let param = |name: &str| params.get(name).cloned().unwrap_or_default();
    let state = |a| Permission(State, "STATE".into(), a);
    let v1 = route.strip_prefix("/druid/indexer/v1");
    Ok(match (v1, route) {
        (Some("/action"), _) => Internal,
        (Some("/task"), _) if method == Method::POST => InHandler,
        (Some("/supervisor"), _) if method == Method::POST => InHandler,
        (Some(r), _) if r.starts_with("/task/{id}") => {
            // The task's data source, read where it is stored; a task that does not exist is
            // the handler's 404.
            let Ok(id) = TaskId::new(param("id")) else {
                return Ok(Nothing);
            };
            match s.policies.store.get_task_info(&id).await {
                Ok(Some(info)) => Permission(Datasource, info.datasource, rw),
                Ok(None) => Nothing,
                Err(e) => return Err(ApiError::Unavailable(e.to_string())),
            }
        }
        (Some(r), _) if r.starts_with("/supervisor/{id}") => {
            // Answered by the leader: a follower only redirects, and the leader checks.
            let Ok(leader) = s.leader() else {
                return Ok(Nothing);
            };
            match leader.supervisors.get(&param("id")).await {
                Ok(Some(h)) => Permission(Datasource, h.spec.data_source.to_string(), rw),
                _ => Nothing,
            }
        }
        (Some("/worker" | "/worker/history"), _) => Permission(Config, "CONFIG".into(), rw),
        (Some(r), _) if r.starts_with("/worker/{host}") => state(Action::Write),
        (
            Some("/supervisor/suspendAll" | "/supervisor/resumeAll" | "/supervisor/terminateAll"),
            _,
        ) => state(Action::Write),
        (Some("/taskStatus" | "/lockedIntervals" | "/lockedIntervals/v2"), _) => {
            state(Action::Read)
        }
        (Some(_), _) => state(rw),
        (None, r) if r.starts_with("/druid-ext/basic-security/") => {
            Permission(Config, "security".into(), rw)
        }
        (None, r) if r.starts_with("/druid/coordinator/v1/config/compaction") => {
            Permission(Config, "CONFIG".into(), rw)
        }
        (None, "/druid/coordinator/v1/rules/{ds}" | "/druid/coordinator/v1/rules/{ds}/history")
            if param("ds") == drover_metadata::DEFAULT_RULES_KEY =>
        {
            Permission(Config, "CONFIG".into(), rw)
        }
        (None, r) if params.contains_key("ds") && r.starts_with("/dr") => {
            Permission(Datasource, param("ds"), rw)
        }
        (None, _) => state(rw),
    })
}

/// The middleware (inside authentication): 403 when the user may not do what the route does.
pub async fn authorize(
    State(s): State<AppState>,
    matched: Option<MatchedPath>,
    params: Result<RawPathParams, axum::extract::rejection::RawPathParamsRejection>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(Identity(user)) = request.extensions().get::<Identity>().cloned() else {
        // Authentication is off, or the route is open.
        return next.run(request).await;
    };
    let Some(route) = matched.map(|m| m.as_str().to_string()) else {
        return next.run(request).await;
    };
    let params: HashMap<String, String> = params
        .map(|p| {
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default();
    let method = request.method().clone();
    let task_identity = request
        .extensions()
        .get::<TaskIdentity>()
        .map(|t| t.0.clone());
    let request_is_task = task_identity.is_some();
    let result = async {
        let policy = s.policies.current().await?;
        let internal_user = s.authenticator.config().internal_client_username.clone();
        let required = required(&s, &method, &route, &params).await?;
        // A peon's data source is looked up only where a permission is checked: task actions,
        // its everyday calls, need none.
        let checked = matches!(required, Required::Permission(..) | Required::InHandler);
        let acting_task = match task_identity.filter(|_| checked).map(TaskId::new) {
            Some(Ok(id)) => match s.policies.store.get_task_info(&id).await {
                Ok(Some(info)) => Some((id, info.datasource)),
                Ok(None) => None,
                Err(e) => return Err(ApiError::Unavailable(e.to_string())),
            },
            _ => None,
        };
        let access = Access {
            user: user.clone(),
            internal_user: internal_user.clone(),
            policy,
            acting_task,
        };
        match required {
            Required::Nothing | Required::InHandler => {}
            // The internal client, or a task's peon (the handler checks it acts for its task).
            Required::Internal if user == internal_user || request_is_task => {}
            Required::Internal => {
                return Err(ApiError::Forbidden(format!(
                    "task actions are for Drover's peons (the internal client), not user [{user}]"
                )))
            }
            Required::Permission(t, name, action) => check(Some(&access), t, &name, action)?,
        }
        Ok(access)
    }
    .await;
    match result {
        Ok(access) => {
            request.extensions_mut().insert(access);
            next.run(request).await
        }
        Err(e) => e.into_response(),
    }
}
