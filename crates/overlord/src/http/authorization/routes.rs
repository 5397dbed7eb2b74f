//! Druid's basic-security authorization routes
//! (`/druid-ext/basic-security/authorization/db/{authorizer}/…`): users and their roles, roles
//! and their permissions. The policy lives in `druid_config` (one JSON document), written by the
//! leader with an audit row.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use drover_metadata::AuditRecord;
use serde::Deserialize;
use serde_json::{json, Value};

use super::policy::{is_builtin_admin, Permission, Policy, ADMIN_ROLE};
use super::{read_policy, POLICY_KEY};
use crate::http::{audit, ApiError, AppState};

fn checked_name(s: &AppState, name: &str) -> Result<(), ApiError> {
    if name != s.authenticator.config().authorizer_name {
        return Err(ApiError::BadRequest(format!(
            "Basic authorizer with name [{name}] does not exist."
        )));
    }
    Ok(())
}

async fn policy_now(s: &AppState) -> Result<Policy, ApiError> {
    read_policy(&s.leader()?.store).await
}

async fn save(
    s: &AppState,
    policy: &Policy,
    headers: &HeaderMap,
    what: String,
) -> Result<Response, ApiError> {
    let record = AuditRecord {
        key: POLICY_KEY.into(),
        audit_type: "basic.authorization".into(),
        info: audit::info(headers),
        payload: what,
        created_date: drover_core::time::now_iso(),
    };
    let payload = serde_json::to_vec(policy).expect("the policy serializes");
    s.leader()?
        .store
        .set_config(POLICY_KEY, &payload, &record)
        .await
        .map_err(ApiError::internal)?;
    s.policies.forget();
    Ok(Json(json!({})).into_response())
}

/// One change of the policy: read it as stored, `edit` it (refusing with a 400), store it.
async fn change(
    s: &AppState,
    name: &str,
    headers: &HeaderMap,
    what: String,
    edit: impl FnOnce(&mut Policy) -> Result<(), ApiError>,
) -> Result<Response, ApiError> {
    checked_name(s, name)?;
    let mut policy = policy_now(s).await?;
    edit(&mut policy)?;
    save(s, &policy, headers, what).await
}

fn bad(message: String) -> ApiError {
    ApiError::BadRequest(message)
}

fn no_user(user: &str) -> ApiError {
    bad(format!("User [{user}] does not exist."))
}

fn no_role(role: &str) -> ApiError {
    bad(format!("Role [{role}] does not exist."))
}

fn not_admin_role(role: &str) -> Result<(), ApiError> {
    if role == ADMIN_ROLE {
        return Err(bad("the [admin] role is built in".into()));
    }
    Ok(())
}

fn internal_user(s: &AppState) -> String {
    s.authenticator.config().internal_client_username.clone()
}

/// Stored users and the built-in ones.
fn user_names(s: &AppState, policy: &Policy) -> Vec<String> {
    let mut names: Vec<String> = policy.users.keys().cloned().collect();
    names.push(drover_service::auth::ADMIN_USER.into());
    names.push(internal_user(s));
    names.sort();
    names.dedup();
    names
}

fn user_exists(s: &AppState, policy: &Policy, user: &str) -> bool {
    policy.users.contains_key(user) || is_builtin_admin(user, &internal_user(s))
}

pub async fn load_status(State(s): State<AppState>) -> Response {
    Json(json!({ s.authenticator.config().authorizer_name.clone(): true })).into_response()
}

#[derive(Deserialize)]
pub struct FullQuery {
    full: Option<String>,
}

pub async fn list_users(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    checked_name(&s, &name)?;
    let policy = policy_now(&s).await?;
    Ok(Json(user_names(&s, &policy)).into_response())
}

pub async fn get_user(
    State(s): State<AppState>,
    Path((name, user)): Path<(String, String)>,
    Query(q): Query<FullQuery>,
) -> Result<Response, ApiError> {
    checked_name(&s, &name)?;
    let policy = policy_now(&s).await?;
    if !user_exists(&s, &policy, &user) {
        return Err(no_user(&user));
    }
    let roles = policy.roles_of(&user, &internal_user(&s));
    if q.full.is_none() {
        return Ok(Json(json!({"name": user, "roles": roles})).into_response());
    }
    let full: Vec<Value> = roles
        .iter()
        .map(|r| json!({"name": r, "permissions": permissions_of(&policy, r)}))
        .collect();
    Ok(Json(json!({"name": user, "roles": full})).into_response())
}

fn permissions_of(policy: &Policy, role: &str) -> Value {
    if role == ADMIN_ROLE {
        let all: Vec<Value> = ["DATASOURCE", "STATE", "CONFIG", "EXTERNAL"]
            .iter()
            .flat_map(|t| {
                ["READ", "WRITE"]
                    .map(|a| json!({"resource": {"name": ".*", "type": t}, "action": a}))
            })
            .collect();
        return Value::Array(all);
    }
    json!(policy.roles.get(role).cloned().unwrap_or_default())
}

pub async fn create_user(
    State(s): State<AppState>,
    Path((name, user)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    drover_core::ids::validate_id("userName", &user)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let what = format!("created authorizer user [{user}]");
    change(&s, &name, &headers, what, |policy| {
        if user_exists(&s, policy, &user) {
            return Err(bad(format!("User [{user}] already exists.")));
        }
        policy.users.insert(user.clone(), Vec::new());
        Ok(())
    })
    .await
}

pub async fn delete_user(
    State(s): State<AppState>,
    Path((name, user)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let what = format!("deleted authorizer user [{user}]");
    change(&s, &name, &headers, what, |policy| {
        policy
            .users
            .remove(&user)
            .map(|_| ())
            .ok_or_else(|| no_user(&user))
    })
    .await
}

pub async fn list_roles(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    checked_name(&s, &name)?;
    let policy = policy_now(&s).await?;
    let mut names: Vec<String> = policy.roles.keys().cloned().collect();
    names.push(ADMIN_ROLE.into());
    names.sort();
    names.dedup();
    Ok(Json(names).into_response())
}

pub async fn get_role(
    State(s): State<AppState>,
    Path((name, role)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    checked_name(&s, &name)?;
    let policy = policy_now(&s).await?;
    if !policy.role_exists(&role) {
        return Err(no_role(&role));
    }
    let users: Vec<String> = user_names(&s, &policy)
        .into_iter()
        .filter(|u| policy.roles_of(u, &internal_user(&s)).contains(&role))
        .collect();
    Ok(
        Json(json!({"name": role, "users": users, "permissions": permissions_of(&policy, &role)}))
            .into_response(),
    )
}

pub async fn create_role(
    State(s): State<AppState>,
    Path((name, role)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    drover_core::ids::validate_id("roleName", &role)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    change(
        &s,
        &name,
        &headers,
        format!("created role [{role}]"),
        |policy| {
            if policy.role_exists(&role) {
                return Err(bad(format!("Role [{role}] already exists.")));
            }
            policy.roles.insert(role.clone(), Vec::new());
            Ok(())
        },
    )
    .await
}

pub async fn delete_role(
    State(s): State<AppState>,
    Path((name, role)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    not_admin_role(&role)?;
    change(
        &s,
        &name,
        &headers,
        format!("deleted role [{role}]"),
        |policy| {
            policy.roles.remove(&role).ok_or_else(|| no_role(&role))?;
            for roles in policy.users.values_mut() {
                roles.retain(|r| *r != role);
            }
            Ok(())
        },
    )
    .await
}

pub async fn assign_role(
    State(s): State<AppState>,
    Path((name, user, role)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let what = format!("assigned role [{role}] to [{user}]");
    change(&s, &name, &headers, what, |policy| {
        if !user_exists(&s, policy, &user) {
            return Err(no_user(&user));
        }
        if !policy.role_exists(&role) {
            return Err(no_role(&role));
        }
        let roles = policy.users.entry(user.clone()).or_default();
        if roles.contains(&role) {
            return Err(bad(format!("User [{user}] already has role [{role}].")));
        }
        roles.push(role.clone());
        Ok(())
    })
    .await
}

pub async fn unassign_role(
    State(s): State<AppState>,
    Path((name, user, role)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let what = format!("unassigned role [{role}] from [{user}]");
    change(&s, &name, &headers, what, |policy| {
        let roles = policy.users.get_mut(&user);
        match roles.and_then(|r| r.iter().position(|x| *x == role).map(|i| (r, i))) {
            Some((roles, i)) => {
                roles.remove(i);
                Ok(())
            }
            None => Err(bad(format!("User [{user}] does not have role [{role}]."))),
        }
    })
    .await
}

pub async fn set_permissions(
    State(s): State<AppState>,
    Path((name, role)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let perms: Vec<Permission> = serde_path_to_error::deserialize(
        &mut serde_json::Deserializer::from_slice(&body),
    )
    .map_err(|e| {
        bad(format!(
            "permissions must be [{{\"resource\": {{\"name\", \"type\": DATASOURCE|STATE|CONFIG|EXTERNAL}}, \
             \"action\": READ|WRITE}}]: at [{}]: {}",
            e.path(),
            e.inner()
        ))
    })?;
    if let Some(p) = perms
        .iter()
        .find(|p| regex::Regex::new(&p.resource.name).is_err())
    {
        return Err(bad(format!(
            "resource name [{}] is not a regular expression",
            p.resource.name
        )));
    }
    not_admin_role(&role)?;
    let what = format!("set the permissions of role [{role}]");
    change(&s, &name, &headers, what, |policy| {
        *policy.roles.get_mut(&role).ok_or_else(|| no_role(&role))? = perms;
        Ok(())
    })
    .await
}

pub async fn get_permissions(
    State(s): State<AppState>,
    Path((name, role)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    checked_name(&s, &name)?;
    let policy = policy_now(&s).await?;
    if !policy.role_exists(&role) {
        return Err(no_role(&role));
    }
    Ok(Json(permissions_of(&policy, &role)).into_response())
}
