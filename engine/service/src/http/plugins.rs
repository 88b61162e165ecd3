//! Plugin versions, by the sha256 of their component: upload one (checked and described
//! as `crosswalk plugin check` does, within the tenant's quotas), list, describe, and
//! delete one that no connection's current mapping binds.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use super::{ApiError, AppState, Caller, ErrorCode, List};
use crate::quota::Quotas;
use crate::store::{PluginRecord, now};
use crosswalk_plugin_host::{FunctionInfo, Plugin as _, PluginHost};

/// Uploads a plugin: the raw component bytes. It is checked and described as
/// `crosswalk plugin check` does; versions are identified by sha256.
pub(super) async fn upload_plugin(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let bytes = body.map_err(|e| ApiError::new(e.status(), ErrorCode::BadBody, e.body_text()))?;
    let tenant = caller.0.tenant_id.clone();
    // Before compiling: a tenant at its quota does not get the CPU of a compilation.
    plugin_quota(&state, &tenant, &bytes).await?;
    let host = Arc::clone(&state.inner.host);
    let plugin_bytes = bytes.clone();
    let plugin = tokio::task::spawn_blocking(move || host.load(&plugin_bytes))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidPlugin,
                e.to_string(),
            )
        })?;
    state.inner.quotas.name("name", plugin.name())?;
    state.inner.quotas.name("version", plugin.version())?;
    let record = PluginRecord {
        tenant_id: tenant.clone(),
        sha256: plugin.sha256().to_owned(),
        name: plugin.name().to_owned(),
        version: plugin.version().to_owned(),
        size: bytes.len() as u64,
        uploaded_at: now(),
    };
    {
        let _counting = state.counting(&tenant).await?;
        plugin_quota(&state, &tenant, &bytes).await?;
        state.inner.store.put_plugin(&record, &bytes).await?;
    }
    let answer = PluginAnswer {
        plugin: record,
        interface: plugin.interface(),
        functions: plugin.functions(),
    };
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// Whether a tenant may store one more plugin version of these bytes: within its count
/// and its bytes. Uploading a version it has already stored again is always allowed.
async fn plugin_quota(state: &AppState, tenant: &str, bytes: &[u8]) -> Result<(), ApiError> {
    let quotas = &state.inner.quotas;
    let sha256 = PluginHost::sha256(bytes);
    let held = state.inner.store.plugins(tenant).await?;
    if held.iter().any(|p| p.sha256 == sha256) {
        return Ok(());
    }
    Quotas::one_more(
        "max_plugins",
        quotas.max_plugins,
        held.len(),
        "plugin versions",
    )?;
    let stored: u64 = held.iter().map(|p| p.size).sum();
    let total = stored + bytes.len() as u64;
    if total > quotas.max_plugin_bytes {
        return Err(crate::quota::LimitExceeded {
            limit: "max_plugin_bytes",
            max: quotas.max_plugin_bytes,
            actual: total,
            field: None,
            message: format!(
                "the tenant's plugin versions take {stored} bytes, and this one {} more; the limit `max_plugin_bytes` is {} bytes; delete a version first",
                bytes.len(),
                quotas.max_plugin_bytes
            ),
        }
        .into());
    }
    Ok(())
}

/// A plugin version and its functions.
#[derive(Serialize, JsonSchema)]
pub struct PluginAnswer<'a> {
    /// The version.
    pub plugin: PluginRecord,
    /// The version of the plugin interface it implements: `crosswalk:plugin@0.2.0`,
    /// or `@0.1.0` (whose functions have no inverse).
    pub interface: &'static str,
    /// Its functions, as it describes them.
    pub functions: &'a [FunctionInfo],
}

pub(super) async fn list_plugins(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<List<PluginRecord>>, ApiError> {
    Ok(Json(List {
        data: state.inner.store.plugins(&caller.0.tenant_id).await?,
    }))
}

pub(super) async fn describe_plugin(
    State(state): State<AppState>,
    caller: Caller,
    Path(sha256): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (record, bytes) = state
        .inner
        .store
        .plugin(&caller.0.tenant_id, &sha256)
        .await?
        .ok_or_else(|| ApiError::not_found("plugin", &sha256))?;
    let host = Arc::clone(&state.inner.host);
    let plugin = tokio::task::spawn_blocking(move || host.load(&bytes))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| ApiError::internal(&e))?;
    Ok(Json(
        serde_json::to_value(PluginAnswer {
            plugin: record,
            interface: plugin.interface(),
            functions: plugin.functions(),
        })
        .map_err(|e| ApiError::internal(&e))?,
    ))
}

/// Deletes a plugin version, unless a connection's current mapping binds it.
pub(super) async fn delete_plugin(
    State(state): State<AppState>,
    caller: Caller,
    Path(sha256): Path<String>,
) -> Result<StatusCode, ApiError> {
    let tenant = &caller.0.tenant_id;
    if state.inner.store.plugin(tenant, &sha256).await?.is_none() {
        return Err(ApiError::not_found("plugin", &sha256));
    }
    if let Some(used) = state.inner.store.plugin_use(tenant, &sha256).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::PluginBound,
            format!(
                "plugin {sha256} is bound to the {} mapping of connection `{}`; unbind it first",
                used.entity, used.connection_id
            ),
        ));
    }
    state.inner.store.delete_plugin(tenant, &sha256).await?;
    // Its compiled code goes too (another tenant's upload of the same bytes, if any,
    // is compiled again when a pipeline next loads it).
    state.inner.host.forget(&sha256);
    Ok(StatusCode::NO_CONTENT)
}
