//! Druid's basic-security user routes (`/druid-ext/basic-security/authentication/…`), served by
//! the leader: list, create and delete users and set their passwords. Users live in
//! `druid_config` under one key (a JSON map from name to salted hash), written through the
//! leader's fenced store with an audit row; every overlord reads them to authenticate requests.
//! There is no authorization yet: every authenticated user may call these routes.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use drover_metadata::{AuditRecord, MetadataStore};
use drover_service::auth::{Authenticator, Credentials, UserLookup, UserStore, ADMIN_USER};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{audit, ApiError, AppState};

/// The `druid_config` key of the users map.
const USERS_KEY: &str = "basic.authentication.users";

type Users = BTreeMap<String, Credentials>;

async fn read_users(store: &MetadataStore) -> Result<Users, String> {
    match store
        .get_config(USERS_KEY)
        .await
        .map_err(|e| e.to_string())?
    {
        None => Ok(Users::new()),
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| format!("stored users: {e}")),
    }
}

/// The overlord's user store: the metadata store, read as it is now.
pub struct StoredUsers(pub MetadataStore);

impl UserStore for StoredUsers {
    fn credentials<'a>(&'a self, user: &'a str) -> UserLookup<'a> {
        Box::pin(async move { Ok(read_users(&self.0).await?.remove(user)) })
    }
}

fn authenticator_checked(s: &AppState, name: &str) -> Result<Arc<Authenticator>, ApiError> {
    let auth = s.authenticator.clone();
    if name != auth.config().authenticator_name {
        return Err(ApiError::BadRequest(format!(
            "Basic authenticator with name [{name}] does not exist."
        )));
    }
    Ok(auth)
}

async fn users_now(s: &AppState) -> Result<Users, ApiError> {
    read_users(&s.leader()?.store)
        .await
        .map_err(ApiError::Internal)
}

async fn save(
    s: &AppState,
    users: &Users,
    headers: &HeaderMap,
    what: String,
) -> Result<(), ApiError> {
    let payload = serde_json::to_vec(users).expect("users serialize");
    let record = AuditRecord {
        key: USERS_KEY.into(),
        audit_type: "basic.authentication".into(),
        info: audit::info(headers),
        payload: what,
        created_date: drover_core::time::now_iso(),
    };
    s.leader()?
        .store
        .set_config(USERS_KEY, &payload, &record)
        .await
        .map_err(ApiError::internal)?;
    // A changed or deleted password stops working at once here; other overlords forget
    // verified passwords within a minute.
    s.authenticator.forget_verified();
    Ok(())
}

/// `GET /loadStatus`: Druid answers whether each authenticator has loaded its users.
pub async fn load_status(State(s): State<AppState>) -> Response {
    Json(json!({ s.authenticator.config().authenticator_name.clone(): true })).into_response()
}

/// `POST /refreshAll`: users are read from the store on use; nothing to refresh.
pub async fn refresh_all() -> Response {
    Json(json!({})).into_response()
}

pub async fn list(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let auth = authenticator_checked(&s, &name)?;
    let mut names: Vec<String> = users_now(&s).await?.into_keys().collect();
    let config = auth.config();
    if config.initial_admin_password.is_some() && !names.iter().any(|n| n == ADMIN_USER) {
        names.push(ADMIN_USER.into());
    }
    names.push(config.internal_client_username.clone());
    names.sort();
    names.dedup();
    Ok(Json(names).into_response())
}

pub async fn get(
    State(s): State<AppState>,
    Path((name, user)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    authenticator_checked(&s, &name)?;
    if !users_now(&s).await?.contains_key(&user) {
        return Err(ApiError::BadRequest(format!(
            "User [{user}] does not exist."
        )));
    }
    Ok(Json(json!({ "name": user })).into_response())
}

pub async fn create(
    State(s): State<AppState>,
    Path((name, user)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let auth = authenticator_checked(&s, &name)?;
    drover_core::ids::validate_id("userName", &user)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if user == auth.config().internal_client_username {
        return Err(ApiError::BadRequest(format!(
            "User [{user}] is the internal client; its password is a setting \
             (security.internal_client_password)"
        )));
    }
    let mut users = users_now(&s).await?;
    if users.contains_key(&user) {
        return Err(ApiError::BadRequest(format!(
            "User [{user}] already exists."
        )));
    }
    // Without a password nobody can log in as it: a random one until one is set.
    let unusable: [u8; 32] = rand::random();
    let placeholder: String = unusable.iter().map(|b| format!("{b:02x}")).collect();
    users.insert(
        user.clone(),
        Credentials::new(&placeholder, auth.config().credential_iterations),
    );
    save(&s, &users, &headers, format!("created user [{user}]")).await?;
    Ok(Json(json!({})).into_response())
}

pub async fn delete(
    State(s): State<AppState>,
    Path((name, user)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authenticator_checked(&s, &name)?;
    let mut users = users_now(&s).await?;
    if users.remove(&user).is_none() {
        return Err(ApiError::BadRequest(format!(
            "User [{user}] does not exist."
        )));
    }
    save(&s, &users, &headers, format!("deleted user [{user}]")).await?;
    Ok(Json(json!({})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    password: String,
}

pub async fn set_credentials(
    State(s): State<AppState>,
    Path((name, user)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let auth = authenticator_checked(&s, &name)?;
    let update: NewPassword = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!("the body must be {{\"password\": \"...\"}}: {e}"))
    })?;
    if update.password.is_empty() {
        return Err(ApiError::BadRequest("[password] must not be empty".into()));
    }
    let mut users = users_now(&s).await?;
    // `admin` exists (with the initial password) before anyone stores it.
    let implicit_admin = user == ADMIN_USER && auth.config().initial_admin_password.is_some();
    if !users.contains_key(&user) && !implicit_admin {
        return Err(ApiError::BadRequest(format!(
            "User [{user}] does not exist."
        )));
    }
    users.insert(
        user.clone(),
        Credentials::new(&update.password, auth.config().credential_iterations),
    );
    save(
        &s,
        &users,
        &headers,
        format!("set the password of user [{user}]"),
    )
    .await?;
    Ok(Json(Value::Object(Default::default())).into_response())
}
