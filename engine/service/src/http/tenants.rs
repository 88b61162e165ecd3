//! Tenants and keys: an admin key creates a tenant and its first API key, whose secret
//! is shown once (only its hash is stored), and lists the tenants; any key reads what
//! it is (its tenant and role), which is how a client such as the console checks a key
//! and learns what it may show.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::body::json_body;
use super::{ApiError, AppState, Caller, ErrorCode, List};
use crate::store::{ApiKey, Role, Tenant};

/// A new tenant.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// A name for people.
    pub name: String,
}

/// A created tenant and its first key.
#[derive(Serialize, JsonSchema)]
pub struct TenantCreated {
    /// The tenant.
    pub tenant: Tenant,
    /// Its key: the secret is shown this once (only its hash is stored).
    pub api_key: NewKey,
}

/// A new API key.
#[derive(Serialize, JsonSchema)]
pub struct NewKey {
    /// `key_…`.
    pub id: String,
    /// The secret to send as `Authorization: Bearer <secret>`.
    pub secret: String,
}

/// 403 `forbidden` unless the caller holds the admin key.
fn admin_only(caller: &Caller, what: &str) -> Result<(), ApiError> {
    if caller.0.role == Role::Admin {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        ErrorCode::Forbidden,
        format!("only an admin key {what}"),
    ))
}

pub(super) async fn create_tenant(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    admin_only(&caller, "creates tenants")?;
    let NewTenant { name } = json_body(body)?;
    state.inner.quotas.name("name", &name)?;
    let tenant = state.inner.store.create_tenant(&name).await?;
    let (key, secret) = state
        .inner
        .store
        .create_key(&tenant.id, Role::Tenant)
        .await?;
    let answer = TenantCreated {
        tenant,
        api_key: NewKey { id: key.id, secret },
    };
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// Every tenant, oldest first.
pub(super) async fn list_tenants(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<List<Tenant>>, ApiError> {
    admin_only(&caller, "lists tenants")?;
    let mut data = state.inner.store.tenants().await?;
    data.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
    Ok(Json(List { data }))
}

/// The calling key: its id, its tenant and its role (never its secret).
pub(super) async fn calling_key(caller: Caller) -> Json<ApiKey> {
    Json(caller.0)
}
