//! The HTTP API: axum routes over the store and the hot-swapped pipelines.
//!
//! [`app`] builds the router from an [`AppState`], apart from any socket, so that tests
//! drive it with `oneshot`. Every request carries `Authorization: Bearer <key>`; a
//! tenant sees only its own connections, and another tenant's id answers 404 as if it
//! did not exist. Errors have one shape ([`ApiError`]).

mod error;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

pub use error::ApiError;

use crate::connection::Pipelines;
use crate::mapping::{MapOptions, OverrideRule, OverrideSpec, Payload, System};
use crate::model::Entity;
use crate::plugin::{Limits, PluginHost};
use crate::store::{ApiKey, Connection, Mode, PluginBinding, PluginRecord, Role, Store, now};

/// The header that says which mapping version produced a response.
pub const VERSION_HEADER: &str = "crosswalk-mapping-version";

/// What every handler shares: a cheap handle.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

struct Shared {
    store: Arc<dyn Store>,
    pipelines: Arc<Pipelines>,
    host: Arc<PluginHost>,
    body_limit: usize,
}

impl AppState {
    /// State over a store, the plugin host, and the pipelines built on both.
    pub fn new(store: Arc<dyn Store>, host: Arc<PluginHost>, body_limit: usize) -> AppState {
        let pipelines = Arc::new(Pipelines::new(Arc::clone(&store), Arc::clone(&host)));
        AppState {
            inner: Arc::new(Shared {
                store,
                pipelines,
                host,
                body_limit,
            }),
        }
    }
}

/// The router.
pub fn app(state: AppState) -> Router {
    let limit = state.inner.body_limit;
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/tenants", post(create_tenant))
        .route(
            "/v1/connections",
            post(create_connection).get(list_connections),
        )
        .route(
            "/v1/connections/{id}",
            get(get_connection).delete(delete_connection),
        )
        .route(
            "/v1/connections/{id}/mappings/{entity}",
            get(get_mapping).put(put_mapping).patch(patch_mapping),
        )
        .route(
            "/v1/connections/{id}/mappings/{entity}/preview",
            post(preview_mapping),
        )
        .route(
            "/v1/connections/{id}/mappings/{entity}/plugins",
            axum::routing::put(bind_plugins),
        )
        // Components are larger than request bodies: their own limit is the plugin
        // host's size cap, which the loader enforces with a clear error.
        .route(
            "/v1/plugins",
            post(upload_plugin)
                .layer(DefaultBodyLimit::max(
                    crate::plugin::MAX_COMPONENT_BYTES + 1,
                ))
                .get(list_plugins),
        )
        .route(
            "/v1/plugins/{sha256}",
            get(describe_plugin).delete(delete_plugin),
        )
        .route(
            "/v1/connections/{id}/mappings/{entity}/history",
            get(mapping_history),
        )
        .route(
            "/v1/connections/{id}/mappings/{entity}/rollback",
            post(rollback_mapping),
        )
        .route("/v1/connections/{id}/transform/{entity}", post(transform))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method",
            )
        })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// The caller: the key that authenticated the request.
pub struct Caller(pub ApiKey);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let unauthorized = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send `Authorization: Bearer <api key>`",
            )
        };
        let header = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(unauthorized)?;
        let secret = header.strip_prefix("Bearer ").ok_or_else(unauthorized)?;
        let key = state
            .inner
            .store
            .key_by_secret(secret.trim())?
            .ok_or_else(unauthorized)?;
        Ok(Caller(key))
    }
}

/// A JSON body, parsed here so that a malformed one gets the API's error shape with
/// its position, and a too large one a 413.
fn json_body<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let bytes = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                e.body_text(),
            )
        } else {
            ApiError::bad_request(e.body_text())
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(format!("the body is not valid: {e}"))
            .details(json!({"line": e.line(), "column": e.column()}))
    })
}

fn entity(name: &str) -> Result<Entity, ApiError> {
    name.parse()
        .map_err(|_| ApiError::not_found("entity", name))
}

fn connection(state: &AppState, caller: &Caller, id: &str) -> Result<Connection, ApiError> {
    state
        .inner
        .store
        .connection(&caller.0.tenant_id, id)?
        .ok_or_else(|| ApiError::not_found("connection", id))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTenant {
    name: String,
}

async fn create_tenant(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    if caller.0.role != Role::Admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only an admin key creates tenants",
        ));
    }
    let NewTenant { name } = json_body(body)?;
    let tenant = state.inner.store.create_tenant(&name)?;
    let (key, secret) = state.inner.store.create_key(&tenant.id, Role::Tenant)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"tenant": tenant, "api_key": {"id": key.id, "secret": secret}})),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewConnection {
    system: String,
    name: String,
    mode: Mode,
}

async fn create_connection(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let NewConnection { system, name, mode } = json_body(body)?;
    System::get(&system).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_system",
            e.to_string(),
        )
    })?;
    let c = state
        .inner
        .store
        .create_connection(&caller.0.tenant_id, &system, &name, mode)?;
    Ok((StatusCode::CREATED, Json(c)).into_response())
}

async fn list_connections(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({"data": state.inner.store.connections(&caller.0.tenant_id)?}),
    ))
}

async fn get_connection(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Connection>, ApiError> {
    Ok(Json(connection(&state, &caller, &id)?))
}

async fn delete_connection(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state
        .inner
        .store
        .delete_connection(&caller.0.tenant_id, &id)?
    {
        return Err(ApiError::not_found("connection", &id));
    }
    state.inner.pipelines.forget(&id);
    Ok(StatusCode::NO_CONTENT)
}

async fn get_mapping(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let c = connection(&state, &caller, &id)?;
    let pipeline = state.inner.pipelines.current(&c, entity(&name)?)?;
    Ok(mapping_response(&pipeline))
}

async fn put_mapping(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let c = connection(&state, &caller, &id)?;
    let entity = entity(&name)?;
    let overrides: OverrideSpec = json_body(body)?;
    let plugins = state.inner.pipelines.current(&c, entity)?.plugins.clone();
    publish(&state, &caller, c, entity, overrides, plugins).await
}

/// Merges override entries into the current ones: an entry replaces the current entry
/// for the same target, or is added.
async fn patch_mapping(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let c = connection(&state, &caller, &id)?;
    let entity = entity(&name)?;
    let patch: OverrideSpec = json_body(body)?;
    let current = state.inner.pipelines.current(&c, entity)?;
    let mut overrides = current.overrides.clone();
    for entry in patch.overrides {
        match overrides
            .overrides
            .iter_mut()
            .find(|o: &&mut OverrideRule| o.target == entry.target)
        {
            Some(existing) => *existing = entry,
            None => overrides.overrides.push(entry),
        }
    }
    if patch.pre.is_some() {
        overrides.pre = patch.pre;
    }
    if patch.post.is_some() {
        overrides.post = patch.post;
    }
    publish(
        &state,
        &caller,
        c,
        entity,
        overrides,
        current.plugins.clone(),
    )
    .await
}

/// Binds plugin versions (and their limits) to a connection's mapping of an entity.
async fn bind_plugins(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let c = connection(&state, &caller, &id)?;
    let entity = entity(&name)?;
    let plugins: Vec<PluginBinding> = json_body(body)?;
    for binding in &plugins {
        Limits::with(&binding.limits).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_limits",
                e.to_string(),
            )
        })?;
    }
    let overrides = state.inner.pipelines.current(&c, entity)?.overrides.clone();
    publish(&state, &caller, c, entity, overrides, plugins).await
}

/// Validates, persists and publishes a change off the async workers (compiling may
/// load plugins); answers once the next request sees it.
async fn publish(
    state: &AppState,
    caller: &Caller,
    c: Connection,
    entity: Entity,
    overrides: OverrideSpec,
    plugins: Vec<PluginBinding>,
) -> Result<Response, ApiError> {
    let author = caller.0.id.clone();
    let pipelines = Arc::clone(&state.inner.pipelines);
    let pipeline =
        blocking(move || pipelines.change(&c, entity, overrides, plugins, &author)).await?;
    Ok(mapping_response(&pipeline))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Preview {
    overrides: OverrideSpec,
    payload: Value,
}

/// Runs proposed overrides on a payload without applying them: the output, the output
/// of the current mapping, and what differs.
async fn preview_mapping(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let c = connection(&state, &caller, &id)?;
    let entity = entity(&name)?;
    let Preview { overrides, payload } = json_body(body)?;
    let current = state.inner.pipelines.current(&c, entity)?;
    let pipelines = Arc::clone(&state.inner.pipelines);
    let answer = tokio::task::spawn_blocking(move || -> Result<Value, ApiError> {
        let proposed = pipelines.preview(&c, entity, &overrides, &current.plugins)?;
        let records = Payload::unwrap(payload).into_records();
        let run = |plan: &crate::mapping::Plan| -> Vec<Value> {
            plan.map_batch(&records, MapOptions::default())
                .records
                .into_iter()
                .map(|r| r.unwrap_or_else(|e| json!({"error": {"code": "record_failed", "message": e.to_string()}})))
                .collect()
        };
        let (after, before) = (run(&proposed.plan), run(&current.plan));
        let mut changes = Vec::new();
        for (i, (b, a)) in before.iter().zip(&after).enumerate() {
            diff(&format!("[{i}]"), b, a, &mut changes);
        }
        Ok(json!({"current_version": current.version, "output": after, "current_output": before, "changes": changes}))
    })
    .await
    .map_err(|e| ApiError::internal(&e))??;
    Ok(Json(answer).into_response())
}

/// The leaves that differ between two records, as `{path, before, after}`.
fn diff(at: &str, before: &Value, after: &Value, out: &mut Vec<Value>) {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            let keys: std::collections::BTreeSet<&String> = b.keys().chain(a.keys()).collect();
            for k in keys {
                let null = Value::Null;
                diff(
                    &format!("{at}.{k}"),
                    b.get(k).unwrap_or(&null),
                    a.get(k).unwrap_or(&null),
                    out,
                );
            }
        }
        (Value::Array(b), Value::Array(a)) if b.len() == a.len() => {
            for (i, (x, y)) in b.iter().zip(a).enumerate() {
                diff(&format!("{at}[{i}]"), x, y, out);
            }
        }
        (b, a) if b != a => out.push(json!({"path": at, "before": b, "after": a})),
        _ => {}
    }
}

/// Uploads a plugin: the raw component bytes. It is checked and described as
/// `crosswalk plugin check` does; versions are identified by sha256.
async fn upload_plugin(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let bytes = body.map_err(|e| ApiError::new(e.status(), "bad_body", e.body_text()))?;
    let host = Arc::clone(&state.inner.host);
    let plugin_bytes = bytes.clone();
    let plugin = tokio::task::spawn_blocking(move || host.load(&plugin_bytes))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_plugin",
                e.to_string(),
            )
        })?;
    let record = PluginRecord {
        tenant_id: caller.0.tenant_id.clone(),
        sha256: plugin.sha256().to_owned(),
        name: plugin.name().to_owned(),
        version: plugin.version().to_owned(),
        size: bytes.len() as u64,
        uploaded_at: now(),
    };
    state.inner.store.put_plugin(&record, &bytes)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"plugin": record, "functions": plugin.functions()})),
    )
        .into_response())
}

async fn list_plugins(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({"data": state.inner.store.plugins(&caller.0.tenant_id)?}),
    ))
}

async fn describe_plugin(
    State(state): State<AppState>,
    caller: Caller,
    Path(sha256): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (record, bytes) = state
        .inner
        .store
        .plugin(&caller.0.tenant_id, &sha256)?
        .ok_or_else(|| ApiError::not_found("plugin", &sha256))?;
    let host = Arc::clone(&state.inner.host);
    let plugin = tokio::task::spawn_blocking(move || host.load(&bytes))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| ApiError::internal(&e))?;
    Ok(Json(
        json!({"plugin": record, "functions": plugin.functions()}),
    ))
}

/// Deletes a plugin version, unless a connection's current mapping binds it.
async fn delete_plugin(
    State(state): State<AppState>,
    caller: Caller,
    Path(sha256): Path<String>,
) -> Result<StatusCode, ApiError> {
    let tenant = &caller.0.tenant_id;
    if state.inner.store.plugin(tenant, &sha256)?.is_none() {
        return Err(ApiError::not_found("plugin", &sha256));
    }
    for c in state.inner.store.connections(tenant)? {
        for entity in Entity::ALL {
            let bound = state
                .inner
                .store
                .mapping_history(&c.id, entity)?
                .last()
                .is_some_and(|v| v.plugins.iter().any(|b| b.sha256 == sha256));
            if bound {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "plugin_bound",
                    format!(
                        "plugin {sha256} is bound to the {entity} mapping of connection `{}`; unbind it first",
                        c.id
                    ),
                ));
            }
        }
    }
    state.inner.store.delete_plugin(tenant, &sha256)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn mapping_history(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let c = connection(&state, &caller, &id)?;
    Ok(Json(
        json!({"data": state.inner.store.mapping_history(&c.id, entity(&name)?)?}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rollback {
    version: u64,
}

async fn rollback_mapping(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let c = connection(&state, &caller, &id)?;
    let entity = entity(&name)?;
    let Rollback { version } = json_body(body)?;
    let author = caller.0.id.clone();
    let pipelines = Arc::clone(&state.inner.pipelines);
    let pipeline = blocking(move || pipelines.rollback(&c, entity, version, &author)).await?;
    Ok(mapping_response(&pipeline))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TransformQuery {
    #[serde(default)]
    remote_data: bool,
    #[serde(default)]
    strict: bool,
}

async fn transform(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
    query: Result<Query<TransformQuery>, axum::extract::rejection::QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let c = connection(&state, &caller, &id)?;
    let pipeline = state.inner.pipelines.current(&c, entity(&name)?)?;
    let payload: Value = json_body(body)?;
    let options = MapOptions {
        strict: query.strict,
        remote_data: query.remote_data,
    };
    let version = pipeline.version;
    let answer = tokio::task::spawn_blocking(move || {
        let (one, records) = match Payload::unwrap(payload) {
            Payload::One(r) => (true, vec![r]),
            Payload::Many(rs) => (false, rs),
        };
        let batch = pipeline.plan.map_batch(&records, options);
        let results: Vec<Value> = batch
            .records
            .into_iter()
            .map(|r| match r {
                Ok(record) => record,
                Err(e) => json!({"error": {"code": "record_failed", "message": e.to_string()}}),
            })
            .collect();
        if one {
            let record = results.into_iter().next().expect("one record");
            match record.get("error") {
                Some(_) => Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "record_failed",
                    record["error"]["message"].as_str().unwrap_or_default(),
                )),
                None => Ok(json!({"data": record})),
            }
        } else {
            Ok(json!({"data": results}))
        }
    })
    .await
    .map_err(|e| ApiError::internal(&e))??;
    Ok(with_version(Json(answer).into_response(), version))
}

/// Runs work that may compile or call plugins off the async workers.
async fn blocking<T, E>(work: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, ApiError>
where
    T: Send + 'static,
    E: Into<ApiError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(Into::into)
}

/// A mapping as the mapping endpoints answer it, with its version in the header too.
fn mapping_response(pipeline: &crate::connection::Pipeline) -> Response {
    let body = json!({"version": pipeline.version, "mapping": pipeline.resolved, "plugins": pipeline.plugins});
    with_version(Json(body).into_response(), pipeline.version)
}

fn with_version(mut response: Response, version: u64) -> Response {
    let headers: &mut HeaderMap = response.headers_mut();
    headers.insert(VERSION_HEADER, HeaderValue::from(version));
    response
}
