//! The HTTP API: axum routes over the store and the hot-swapped pipelines.
//!
//! [`app`] builds the router from an [`AppState`], apart from any socket, so that tests
//! drive it with `oneshot`. Every request carries `Authorization: Bearer <key>`; a
//! tenant sees only its own connections, and another tenant's id answers 404 as if it
//! did not exist. Errors have one shape ([`ApiError`]).
//!
//! Endpoints that take JSON read a body without a `Content-Type` as JSON (so a plain
//! `curl -d` works) and answer any other content type than JSON (`application/json`,
//! `application/*+json`; NDJSON where the endpoint streams) with 415
//! `unsupported_media_type`. What a tenant stores is bounded by the [`Quotas`]: a
//! request over one answers 422 `limit_exceeded`, naming it.

mod answer;
mod connections;
mod content_type;
mod error;
pub mod metrics;
pub mod ndjson;
mod observe;
pub mod openapi;
mod webhooks;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, State};
use axum::http::Method;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};
use axum::{Json, Router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use error::{ApiError, ErrorBody, ErrorCode, ErrorDetail};
pub use metrics::Metrics;
pub use observe::REQUEST_ID_HEADER;
pub use openapi::Route;

use crate::connection::secrets::Sealer;
use crate::connection::{Credentials, Monitor, Pipelines, Proposal, Records, UpstreamConfig};
use crate::quota::Quotas;
use crate::store::{
    ApiKey, Connection, MappingVersion, Mode, PluginBinding, PluginRecord, Role, Store, Tenant, now,
};
use crate::webhook::{EventType, Webhooks};
use crosswalk_core::mapping::{
    MapLimits, MapOptions, OverrideRule, OverrideSpec, Payload, ResolvedMapping,
};
use crosswalk_core::model::Entity;
use crosswalk_plugin_host::{Demand, FunctionInfo, Grant, Limits, Plugin as _, PluginHost};
use crosswalk_systems::SystemId;

/// Transform bodies up to this size, under a mapping without plugins, are mapped on the
/// async worker that received them instead of on the blocking pool.
const INLINE_BYTES: usize = 64 * 1024;

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
    metrics: Arc<Metrics>,
    records: Arc<Records>,
    webhooks: Arc<Webhooks>,
    /// Where outbound calls may go: URLs are checked against it when they are stored.
    egress: crate::egress::Policy,
    /// The limits on what tenants store.
    quotas: Quotas,
    /// Held while a tenant's count of something is checked and one more is stored, so
    /// that concurrent creations cannot pass a quota together. Creations are rare: one
    /// lock for all is enough.
    counting: std::sync::Mutex<()>,
    /// The OpenAPI document, with these quotas, serialized on first use.
    openapi: std::sync::OnceLock<Bytes>,
    /// What mapping may take, and `max_answer_bytes` for every JSON answer of records.
    map_limits: MapLimits,
    /// The body of `POST /bench/floor`, when the server runs for benchmarks.
    floor: Option<Bytes>,
}

/// How the service runs beyond its store and plugin host.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// Seals live connections' credentials (`CROSSWALK_SECRET_KEY`); without it, only
    /// sandbox connections work.
    pub sealer: Option<Sealer>,
    /// The first wait before a failed webhook delivery is retried; it doubles with
    /// each attempt.
    pub webhook_backoff: std::time::Duration,
    /// Where webhooks, live upstreams and token endpoints may be reached: by default
    /// no loopback, private, link-local or metadata address (`--allow-upstream`).
    pub egress: crate::egress::Policy,
    /// The limits on what tenants store.
    pub quotas: Quotas,
    /// What mapping may take (JSONPath budgets, `max_record_bytes`), and the largest
    /// answer of records (`max_answer_bytes`).
    pub map_limits: MapLimits,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            sealer: None,
            webhook_backoff: std::time::Duration::from_secs(5),
            egress: crate::egress::Policy::deny_internal(),
            quotas: Quotas::DEFAULT,
            map_limits: MapLimits::DEFAULT,
        }
    }
}

/// The request id, for handlers (set by the request observer).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl AppState {
    /// State over a store, the plugin host, and the pipelines built on both, with
    /// the default [`ServiceOptions`].
    pub fn new(store: Arc<dyn Store>, host: Arc<PluginHost>, body_limit: usize) -> AppState {
        AppState::with_options(store, host, body_limit, ServiceOptions::default())
    }

    /// State with options.
    pub fn with_options(
        store: Arc<dyn Store>,
        host: Arc<PluginHost>,
        body_limit: usize,
        options: ServiceOptions,
    ) -> AppState {
        let pipelines = Arc::new(
            Pipelines::new(Arc::clone(&store), Arc::clone(&host))
                .with_quotas(options.quotas)
                .with_limits(options.map_limits),
        );
        let webhooks = Arc::new(Webhooks::new(
            Arc::clone(&store),
            options.webhook_backoff,
            options.sealer.clone(),
            options.egress.clone(),
        ));
        let monitor = Arc::new(Monitor::new(Arc::clone(&store), Arc::clone(&webhooks)));
        let records = Arc::new(Records::new(
            Arc::clone(&store),
            Arc::clone(&pipelines),
            monitor,
            options.sealer,
            crate::connection::upstream::client(options.egress.clone()),
        ));
        AppState {
            inner: Arc::new(Shared {
                store,
                pipelines,
                host,
                body_limit,
                metrics: Arc::new(Metrics::new()),
                records,
                webhooks,
                egress: options.egress,
                quotas: options.quotas,
                counting: std::sync::Mutex::new(()),
                openapi: std::sync::OnceLock::new(),
                map_limits: options.map_limits,
                floor: None,
            }),
        }
    }

    /// Starts delivering the webhook outbox on the current tokio runtime: what a
    /// previous run left undelivered first. Call once per process.
    pub fn start_webhooks(&self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(Arc::clone(&self.inner.webhooks).run())
    }

    /// Adds `POST /bench/floor` for benchmarks: it authenticates the caller and reads
    /// the body as a transform does, then answers a fixed JSON body of `bytes` bytes
    /// (at least 12) without parsing or mapping anything: the HTTP floor that
    /// transforms are measured against. It is not part of the API nor of its document.
    pub fn with_floor(mut self, bytes: usize) -> AppState {
        let pad = bytes.saturating_sub(r#"{"data":""}"#.len());
        let body = format!(r#"{{"data":"{}"}}"#, "x".repeat(pad));
        Arc::get_mut(&mut self.inner)
            .expect("the state is not shared yet")
            .floor = Some(Bytes::from(body));
        self
    }

    /// The service's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The limits on what tenants store.
    pub fn quotas(&self) -> &Quotas {
        &self.inner.quotas
    }

    /// Runs `store` while holding the lock that orders creations counted against a
    /// quota: count, then store, with no other creation in between.
    fn counted<T>(&self, store: impl FnOnce() -> Result<T, ApiError>) -> Result<T, ApiError> {
        let _held = self
            .inner
            .counting
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        store()
    }

    /// `max_answer_bytes`, as errors name it.
    fn answer_limit(&self) -> crosswalk_core::path::Limit {
        self.inner.map_limits.answer_bytes()
    }
}

/// The router: every endpoint of [`routes`], the fallbacks for unknown paths and
/// methods, the body limit, and the request observer.
pub fn app(state: AppState) -> Router {
    let limit = state.inner.body_limit;
    let mut router = Router::new();
    for route in routes() {
        let handler = match route.input {
            openapi::Input::Json(_) => route
                .handler
                .layer(axum::middleware::from_fn(content_type::json)),
            openapi::Input::Records => route
                .handler
                .layer(axum::middleware::from_fn(content_type::records)),
            openapi::Input::None | openapi::Input::Wasm => route.handler,
        };
        router = router.route(route.path, handler);
    }
    if state.inner.floor.is_some() {
        router = router.route("/bench/floor", post(floor));
    }
    let router = router
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::NotFound,
                "no such endpoint",
            )
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorCode::MethodNotAllowed,
                "this endpoint does not take that method",
            )
        })
        .layer(DefaultBodyLimit::max(limit));
    observe::install(router, state.clone()).with_state(state)
}

/// Every endpoint, served and documented from this one table (see [`openapi`]).
pub fn routes() -> Vec<Route> {
    use Method as M;
    use openapi::{Access, Input, Output, schema};
    const REMOTE_DATA: (&str, &str) = (
        "remote_data",
        "Add each source record to its unified record as `remote_data`.",
    );
    const STRICT: (&str, &str) = (
        "strict",
        "A field that fails fails its whole record, instead of giving `null` and an entry in the record's `errors`.",
    );
    let mapping = Output::Json(schema::<MappingAnswer<'static>>);
    vec![
        Route::new(M::GET, "/healthz", get(|| async { "ok" }), "healthz", "Liveness: answers `ok`.")
            .access(Access::Public)
            .answers(200, Output::Text("text/plain")),
        Route::new(M::GET, "/openapi.json", get(serve_openapi), "openapi", "This document: OpenAPI 3.1.")
            .access(Access::Public)
            .answers(
                200,
                Output::Json(|_| {
                    schemars::json_schema!({"type": "object", "description": "An OpenAPI 3.1 document."})
                }),
            ),
        Route::new(M::GET, "/metrics", get(metrics), "metrics", "Metrics in Prometheus' text format.")
            .access(Access::Admin)
            .answers(200, Output::Text("text/plain; version=0.0.4")),
        Route::new(M::POST, "/v1/tenants", post(create_tenant), "createTenant", "Create a tenant and its first API key (the secret is shown once).")
            .access(Access::Admin)
            .input(Input::Json(schema::<NewTenant>))
            .answers(201, Output::Json(schema::<TenantCreated>))
            .errors(&[422]),
        Route::new(M::POST, "/v1/connections", post(create_connection), "createConnection", "Create a connection to a source system.")
            .input(Input::Json(schema::<NewConnection>))
            .answers(201, Output::Json(schema::<Connection>))
            .errors(&[422, 503]),
        Route::new(M::GET, "/v1/connections", get(list_connections), "listConnections", "The tenant's connections.")
            .answers(200, Output::Json(schema::<List<Connection>>)),
        Route::new(M::GET, "/v1/connections/{id}", get(get_connection), "getConnection", "A connection.")
            .answers(200, Output::Json(schema::<Connection>)),
        Route::new(M::DELETE, "/v1/connections/{id}", delete(delete_connection), "deleteConnection", "Delete a connection.")
            .answers(204, Output::Empty),
        Route::new(M::GET, "/v1/connections/{id}/mappings/{entity}", get(get_mapping), "getMapping", "The connection's resolved mapping of an entity, with the origin of each rule.")
            .answers(200, mapping)
            .versioned()
            .tagged(),
        Route::new(M::PUT, "/v1/connections/{id}/mappings/{entity}", put(put_mapping), "putMapping", "Replace the connection's overrides: validated, stored, then used by the next request.")
            .input(Input::Json(schema::<OverrideSpec>))
            .answers(200, mapping)
            .errors(&[422])
            .versioned()
            .conditional(),
        Route::new(M::PATCH, "/v1/connections/{id}/mappings/{entity}", patch(patch_mapping), "patchMapping", "Merge overrides into the current ones: an entry replaces the one for the same target, or is added.")
            .input(Input::Json(schema::<OverrideSpec>))
            .answers(200, mapping)
            .errors(&[422])
            .versioned()
            .conditional(),
        Route::new(M::POST, "/v1/connections/{id}/mappings/{entity}/preview", post(preview_mapping), "previewMapping", "Run proposed overrides on a payload without applying them: the output, the current output and what differs.")
            .input(Input::Json(schema::<Preview>))
            .answers(200, Output::Json(schema::<PreviewAnswer>))
            .errors(&[422, 503]),
        Route::new(M::PUT, "/v1/connections/{id}/mappings/{entity}/plugins", put(bind_plugins), "bindPlugins", "Bind plugin versions, with their limits, to the connection's mapping of an entity.")
            .input(Input::Json(schema::<Vec<PluginBinding>>))
            .answers(200, mapping)
            .errors(&[422])
            .versioned()
            .conditional(),
        Route::new(M::GET, "/v1/connections/{id}/mappings/{entity}/history", get(mapping_history), "mappingHistory", "Every version of the connection's mapping of an entity, oldest first.")
            .answers(200, Output::Json(schema::<History>)),
        Route::new(M::POST, "/v1/connections/{id}/mappings/{entity}/rollback", post(rollback_mapping), "rollbackMapping", "Restore an earlier version (0: the system's default), as a new version; restoring the current mapping stores nothing.")
            .input(Input::Json(schema::<Rollback>))
            .answers(200, mapping)
            .errors(&[422])
            .versioned()
            .conditional(),
        // Components are larger than request bodies: their own limit is the plugin
        // host's size cap, which the loader enforces with a clear error.
        Route::new(M::POST, "/v1/plugins", post(upload_plugin).layer(DefaultBodyLimit::max(crosswalk_plugin_host::MAX_COMPONENT_BYTES + 1)), "uploadPlugin", "Upload a plugin version: checked and described as `crosswalk plugin check` does.")
            .input(Input::Wasm)
            .answers(201, Output::Json(schema::<PluginAnswer<'static>>))
            .errors(&[422]),
        Route::new(M::GET, "/v1/plugins", get(list_plugins), "listPlugins", "The tenant's plugin versions.")
            .answers(200, Output::Json(schema::<List<PluginRecord>>)),
        Route::new(M::GET, "/v1/plugins/{sha256}", get(describe_plugin), "describePlugin", "A plugin version and its functions.")
            .answers(200, Output::Json(schema::<PluginAnswer<'static>>)),
        Route::new(M::DELETE, "/v1/plugins/{sha256}", delete(delete_plugin), "deletePlugin", "Delete a plugin version, unless a connection's current mapping binds it.")
            .answers(204, Output::Empty)
            .errors(&[409]),
        Route::new(M::GET, "/v1/connections/{id}/status", get(connections::connection_status), "connectionStatus", "The connection's status (healthy, degraded, needs_reauth, rate_limited, unreachable, circuit_open), breaker, last success and error, and error counts per entity and kind.")
            .answers(200, Output::Json(schema::<connections::StatusAnswer>)),
        Route::new(M::GET, "/v1/connections/{id}/errors", get(connections::connection_errors), "connectionErrors", "The connection's error log (upstream, mapping and plugin errors, with request ids), newest first.")
            .query(&[
                ("entity", "entity", "Only errors of this entity (`purchase_order`, …)."),
                ("kind", "error_kind", "Only errors of this kind: auth, permission, rate_limit, timeout, network, upstream_5xx, bad_response, mapping, plugin."),
                ("limit", "integer:1:500", "At most this many entries (1 to 500; 100 by default)."),
            ])
            .answers(200, Output::Json(schema::<List<crate::connection::ErrorEntry>>))
            .errors(&[400]),
        Route::new(M::POST, "/v1/connections/{id}/reauthorize", post(connections::reauthorize), "reauthorizeConnection", "Replace a live connection's credentials: verified against the upstream first; issues a new connection token and restores the connection.")
            .input(Input::Json(schema::<connections::Reauthorize>))
            .answers(200, Output::Json(schema::<Connection>))
            .errors(&[422, 503]),
        Route::new(M::POST, "/v1/webhooks", post(webhooks::subscribe), "createWebhook", "Subscribe a URL to events; the signing secret is shown once.")
            .input(Input::Json(schema::<webhooks::NewSubscription>))
            .answers(201, Output::Json(schema::<webhooks::SubscriptionCreated>))
            .errors(&[422]),
        Route::new(M::GET, "/v1/webhooks", get(webhooks::list), "listWebhooks", "The tenant's webhook subscriptions.")
            .answers(200, Output::Json(schema::<List<crate::webhook::Subscription>>)),
        Route::new(M::GET, "/v1/webhooks/{webhook_id}", get(webhooks::get), "getWebhook", "A webhook subscription.")
            .answers(200, Output::Json(schema::<crate::webhook::Subscription>)),
        Route::new(M::DELETE, "/v1/webhooks/{webhook_id}", delete(webhooks::unsubscribe), "deleteWebhook", "Unsubscribe; deliveries still in the outbox are dropped.")
            .answers(204, Output::Empty),
        Route::new(M::GET, "/v1/webhooks/{webhook_id}/deliveries", get(webhooks::deliveries), "webhookDeliveries", "The subscription's delivery log, newest first: every attempt and how it went.")
            .answers(200, Output::Json(schema::<List<crate::webhook::DeliveryAttempt>>)),
        Route::new(M::POST, "/v1/connections/{id}/transform/{entity}", post(transform), "transform", "Map source records with the connection's current mapping: JSON in, JSON out; or NDJSON in, NDJSON out, streamed.")
            .input(Input::Records)
            .answers(200, Output::Records)
            .errors(&[422, 503])
            .flags(&[REMOTE_DATA, STRICT])
            .versioned(),
    ]
    .into_iter()
    .chain(connections::RESOURCES.iter().flat_map(resource_routes))
    .collect()
}

/// The four routes of a unified resource: list, get, create and update.
fn resource_routes(r: &'static connections::Resource) -> [Route; 5] {
    use openapi::{Input, Output, schema};
    const REMOTE_DATA: (&str, &str) = (
        "remote_data",
        "Add each source record to its unified record as `remote_data`.",
    );
    let entity = r.entity;
    let [list_op, get_op, create_op, update_op, preview_op] = r.operations;
    let list = move |State(state): State<AppState>,
                     caller: Caller,
                     Path(id): Path<String>,
                     params,
                     request_id: Option<axum::Extension<RequestId>>| async move {
        connections::list_records(state, caller, id, entity, params, request_id.map(|e| e.0)).await
    };
    let one = move |State(state): State<AppState>,
                    caller: Caller,
                    Path(ids): Path<(String, String)>,
                    params,
                    request_id: Option<axum::Extension<RequestId>>| async move {
        connections::get_record(state, caller, ids, entity, params, request_id.map(|e| e.0)).await
    };
    let create = move |State(state): State<AppState>,
                       caller: Caller,
                       Path(id): Path<String>,
                       request_id: Option<axum::Extension<RequestId>>,
                       body: Result<Bytes, BytesRejection>| async move {
        connections::write_record(
            state,
            caller,
            (id, None),
            entity,
            body,
            request_id.map(|e| e.0),
        )
        .await
    };
    let update = move |State(state): State<AppState>,
                       caller: Caller,
                       Path((id, record_id)): Path<(String, String)>,
                       request_id: Option<axum::Extension<RequestId>>,
                       body: Result<Bytes, BytesRejection>| async move {
        connections::write_record(
            state,
            caller,
            (id, Some(record_id)),
            entity,
            body,
            request_id.map(|e| e.0),
        )
        .await
    };
    let preview = move |State(state): State<AppState>,
                        caller: Caller,
                        Path(id): Path<String>,
                        request_id: Option<axum::Extension<RequestId>>,
                        body: Result<Bytes, BytesRejection>| async move {
        connections::preview_write(state, caller, id, entity, body, request_id.map(|e| e.0)).await
    };
    let record_schema: openapi::SchemaFn = match entity {
        Entity::PurchaseOrder => openapi::entity_schema::<0>,
        Entity::WorkOrder => openapi::entity_schema::<1>,
        Entity::Asset => openapi::entity_schema::<2>,
        Entity::Vendor => openapi::entity_schema::<3>,
        Entity::Part => openapi::entity_schema::<4>,
    };
    [
        Route::new(Method::GET, r.collection, get(list), list_op, "A page of the connection's records of this entity, mapped with its current mapping (sandbox data or the live system).")
            .query(&[
                ("cursor", "token", "The `next_cursor` of the previous page."),
                ("page_size", "integer:1:500", "Records per page (1 to 500; 50 by default). A live connection asks its upstream for this many."),
                ("updated_since", "date-time", "Only records changed at or after this instant (RFC 3339)."),
            ])
            .flags(&[REMOTE_DATA])
            .answers(200, Output::Json(schema::<connections::RecordsPage>))
            .errors(&[400, 409, 422, 429, 502, 503, 504])
            .versioned(),
        Route::new(Method::GET, r.item, get(one), get_op, "One record by its id, mapped with the connection's current mapping.")
            .flags(&[REMOTE_DATA])
            .answers(200, Output::Json(schema::<connections::RecordAnswer>))
            .errors(&[400, 409, 422, 429, 502, 503, 504])
            .versioned(),
        Route::new(Method::POST, r.collection, post(create), create_op, "Create a record: validated, reverse-mapped with the connection's current mapping, sent to the system in its own format and read back. A sandbox connection accepts it and changes nothing.")
            .input(Input::Json(record_schema))
            .answers(201, Output::Json(schema::<connections::WriteAnswer>))
            .errors(&[409, 422, 429, 502, 503, 504]),
        Route::new(Method::PATCH, r.item, patch(update), update_op, "Update the given fields of a record, as a create does. A sandbox connection accepts it and changes nothing.")
            .input(Input::Json(record_schema))
            .answers(200, Output::Json(schema::<connections::WriteAnswer>))
            .errors(&[409, 422, 429, 502, 503, 504]),
        Route::new(Method::POST, r.preview, post(preview), preview_op, "The system's own payload that a write of this record (or of these fields) would send, through the connection's current mapping; nothing is sent.")
            .input(Input::Json(record_schema))
            .answers(200, Output::Json(schema::<connections::WritePreview>))
            .errors(&[422, 503])
            .versioned(),
    ]
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
                ErrorCode::Unauthorized,
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
                ErrorCode::PayloadTooLarge,
                e.body_text(),
            )
        } else {
            ApiError::bad_request(e.body_text())
        }
    })?;
    from_json(&bytes).map_err(|e| {
        ApiError::bad_request(format!("the body is not valid: {e}"))
            .details(json!({"line": e.line(), "column": e.column()}))
    })
}

/// Reads JSON as `T`. A whole number written as a float (`50.0`, `5e1`) where `T`
/// takes an integer is read as that integer, as JSON Schema counts it one (Python
/// clients write a float that holds a whole number so); a number with a fraction
/// is still refused. Only the numbers that `T` refused are rewritten, one at a time,
/// so that numbers elsewhere (a payload, a constant) keep how they were written.
fn from_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    let first = match serde_json::from_slice(bytes) {
        Ok(value) => return Ok(value),
        Err(e) => e,
    };
    let mut text = std::borrow::Cow::Borrowed(bytes);
    let mut error = first;
    // A body has few integer fields; each pass fixes one.
    for _ in 0..64 {
        if !error
            .to_string()
            .starts_with("invalid type: floating point")
        {
            break;
        }
        let Some(fixed) = whole_number_at(&text, error.line(), error.column()) else {
            break;
        };
        text = std::borrow::Cow::Owned(fixed);
        match serde_json::from_slice(&text) {
            Ok(value) => return Ok(value),
            Err(e) => error = e,
        }
    }
    Err(error)
}

/// `text` with the number literal that ends at `line`:`column` (where serde_json
/// reports a number of the wrong type: 1-based line, byte column after the literal)
/// written as an integer, if it is a whole number.
fn whole_number_at(text: &[u8], line: usize, column: usize) -> Option<Vec<u8>> {
    let line_start = if line <= 1 {
        0
    } else {
        text.iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(line - 2)
            .map(|(i, _)| i + 1)?
    };
    let end = line_start.checked_add(column)?;
    let is_number = |b: &u8| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E');
    let start = end
        - text
            .get(..end)?
            .iter()
            .rev()
            .take_while(|b| is_number(b))
            .count();
    let literal = std::str::from_utf8(&text[start..end]).ok()?;
    let integer = whole_number(literal)?;
    let mut fixed = Vec::with_capacity(text.len());
    fixed.extend_from_slice(&text[..start]);
    fixed.extend_from_slice(integer.as_bytes());
    fixed.extend_from_slice(&text[end..]);
    Some(fixed)
}

/// A JSON number literal as an integer literal, if it is a whole number of at most
/// 40 digits: `50.0` → `50`, `5e1` → `50`, `-2.50e1` → `-25`; `2.5` → none.
fn whole_number(literal: &str) -> Option<String> {
    let (sign, unsigned) = match literal.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", literal),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.strip_prefix('+').unwrap_or(e).parse::<i64>().ok()?),
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() || !(whole.bytes().chain(fraction.bytes())).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = format!("{whole}{fraction}");
    // The value is `digits` × 10^shift.
    let shift = exponent.checked_sub(i64::try_from(fraction.len()).ok()?)?;
    let digits = if shift >= 0 {
        if shift > 40 {
            return None;
        }
        format!("{digits}{}", "0".repeat(shift as usize))
    } else {
        let cut = digits.len().checked_sub(usize::try_from(-shift).ok()?)?;
        if !digits[cut..].bytes().all(|b| b == b'0') {
            return None;
        }
        digits[..cut].to_owned()
    };
    let digits = digits.trim_start_matches('0');
    match digits {
        "" => Some("0".to_owned()),
        d if d.len() > 40 => None,
        d => Some(format!("{sign}{d}")),
    }
}

/// A URL that the service will call (a webhook, a live upstream, a token endpoint),
/// checked as it is stored: 422 `address_not_allowed` when its address is refused
/// (details: the field, the address, the rule and its range), else 422 with
/// `invalid_code` when it is not an http or https URL without a user or password.
fn outbound_url(
    state: &AppState,
    field: &'static str,
    url: &str,
    hint: &'static str,
    invalid_code: ErrorCode,
) -> Result<url::Url, ApiError> {
    use crate::egress::UrlError;
    state
        .inner
        .egress
        .check_url(field, url, hint)
        .map_err(|e| match &e {
            UrlError::Refused { refusal, .. } => {
                let mut details = refusal.details();
                details["field"] = json!(field);
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorCode::AddressNotAllowed,
                    e.to_string(),
                )
                .details(details)
            }
            _ => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                invalid_code,
                e.to_string(),
            )
            .details(json!({"field": field})),
        })
}

/// The OpenAPI document, with this server's quotas in its schemas.
async fn serve_openapi(State(state): State<AppState>) -> Response {
    let body = state.inner.openapi.get_or_init(|| {
        let document = openapi::document(&routes(), &state.inner.quotas);
        Bytes::from(serde_json::to_vec(&document).expect("the document serializes"))
    });
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.clone(),
    )
        .into_response()
}

/// The metrics in Prometheus' text format; for admin keys, since the labels name
/// every tenant's connections and plugins.
async fn metrics(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    if caller.0.role != Role::Admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "only an admin key reads the metrics",
        ));
    }
    let text = state.inner.metrics.render(state.inner.host.compilations());
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// The HTTP floor of the benchmarks (see [`AppState::with_floor`]).
async fn floor(
    State(state): State<AppState>,
    _caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    body.map_err(|e| ApiError::new(e.status(), ErrorCode::BadBody, e.body_text()))?;
    let body = state.inner.floor.clone().unwrap_or_default();
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

/// An entity that the connection's system maps; any other answers 404.
fn entity(c: &Connection, name: &str) -> Result<Entity, ApiError> {
    let entity: Entity = name
        .parse()
        .map_err(|_| ApiError::not_found("entity", name))?;
    let system = c.system.system();
    if !system.entities().any(|e| e == entity) {
        let mapped: Vec<&str> = system.entities().map(Entity::as_str).collect();
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!(
                "connection `{}` is to {}, which has no {entity} mapping; it maps {}",
                c.id,
                system.id,
                mapped.join(", ")
            ),
        ));
    }
    Ok(entity)
}

fn connection(state: &AppState, caller: &Caller, id: &str) -> Result<Connection, ApiError> {
    state
        .inner
        .store
        .connection(&caller.0.tenant_id, id)?
        .ok_or_else(|| ApiError::not_found("connection", id))
}

/// A list answer.
#[derive(Serialize, JsonSchema)]
pub struct List<T> {
    /// The items.
    pub data: Vec<T>,
}

/// A new tenant.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// A name for people.
    pub name: String,
}

/// The systems a connection can be to.
fn system_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let ids: Vec<&str> = crosswalk_systems::SYSTEMS
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    schemars::json_schema!({"type": "string", "enum": ids})
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

async fn create_tenant(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    if caller.0.role != Role::Admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "only an admin key creates tenants",
        ));
    }
    let NewTenant { name } = json_body(body)?;
    state.inner.quotas.name("name", &name)?;
    let tenant = state.inner.store.create_tenant(&name)?;
    let (key, secret) = state.inner.store.create_key(&tenant.id, Role::Tenant)?;
    let answer = TenantCreated {
        tenant,
        api_key: NewKey { id: key.id, secret },
    };
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// A new connection.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
// A live connection needs its upstream and credentials; a sandbox takes neither.
#[schemars(extend(
    "if" = {"properties": {"mode": {"const": "live"}}},
    "then" = {
        "required": ["upstream", "credentials"],
        "properties": {"upstream": {"type": "object"}, "credentials": {"type": "object"}}
    },
    "else" = {"properties": {"upstream": {"type": "null"}, "credentials": {"type": "null"}}}
))]
pub struct NewConnection {
    /// The source system.
    #[schemars(schema_with = "system_schema")]
    pub system: String,
    /// A name for people.
    pub name: String,
    /// Sandbox or live.
    pub mode: Mode,
    /// For a live connection: how to reach the system.
    #[serde(default)]
    pub upstream: Option<UpstreamConfig>,
    /// For a live connection: its credentials, stored sealed and never shown.
    #[serde(default)]
    pub credentials: Option<Credentials>,
}

async fn create_connection(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let NewConnection {
        system,
        name,
        mode,
        upstream,
        credentials,
    } = json_body(body)?;
    let system: SystemId = system
        .parse()
        .map_err(|e: crosswalk_core::mapping::SpecError| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::UnknownSystem,
                e.to_string(),
            )
        })?;
    let quotas = &state.inner.quotas;
    quotas.name("name", &name)?;
    if let Some(upstream) = &upstream {
        quotas.url("upstream.base_url", &upstream.base_url)?;
    }
    if let Some(credentials) = &credentials {
        quotas.credentials(credentials)?;
    }
    let live = connections::live_settings(&state, mode, upstream, credentials)?;
    let (upstream, credentials) = live.unzip();
    let tenant = &caller.0.tenant_id;
    let c = state.counted(|| {
        let held = state.inner.store.connections(tenant)?.len();
        Quotas::one_more(
            "max_connections",
            quotas.max_connections,
            held,
            "connections",
        )?;
        Ok(state
            .inner
            .store
            .create_connection(tenant, system, &name, mode, upstream)?)
    })?;
    if let (Some(credentials), Some(sealer)) = (credentials, state.inner.records.sealer()) {
        // Sealed for this connection's id, which the store has just chosen.
        let plain = serde_json::to_vec(&credentials).expect("credentials serialize");
        state
            .inner
            .store
            .update_connection(&c, Some(&sealer.seal(&c.id, &plain)))?;
    }
    Ok((StatusCode::CREATED, Json(c)).into_response())
}

async fn list_connections(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<List<Connection>>, ApiError> {
    Ok(Json(List {
        data: state.inner.store.connections(&caller.0.tenant_id)?,
    }))
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
    state.inner.records.forget(&id);
    Ok(StatusCode::NO_CONTENT)
}

async fn get_mapping(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let c = connection(&state, &caller, &id)?;
    let pipeline = state
        .inner
        .pipelines
        .current_async(&c, entity(&c, &name)?)
        .await?;
    Ok(mapping_response(&pipeline))
}

async fn put_mapping(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let c = connection(&state, &caller, &id)?;
    let entity = entity(&c, &name)?;
    let overrides: OverrideSpec = json_body(body)?;
    let expected = expected_version(&state, &c, entity, &headers)?;
    publish(&state, &caller, c, entity, expected, move |current| {
        Ok(Proposal {
            overrides: overrides.clone(),
            plugins: current.plugins.clone(),
            rollback_of: None,
        })
    })
    .await
}

/// Merges override entries into the current ones: an entry replaces the current entry
/// for the same target, or is added. The merge is made on the latest version, under
/// the connection's change lock, so that concurrent patches all apply.
async fn patch_mapping(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let c = connection(&state, &caller, &id)?;
    let entity = entity(&c, &name)?;
    let patch: OverrideSpec = json_body(body)?;
    // Before merging: the merge compares every entry with every current one.
    state.inner.quotas.overrides(&patch)?;
    let expected = expected_version(&state, &c, entity, &headers)?;
    publish(&state, &caller, c, entity, expected, move |current| {
        let mut overrides = current.overrides.clone();
        // A patch that names its system or entity is checked as a PUT is: the
        // merged document names them, and resolving refuses one that does not match.
        if patch.system.is_some() {
            overrides.system.clone_from(&patch.system);
        }
        if patch.entity.is_some() {
            overrides.entity = patch.entity;
        }
        for entry in &patch.overrides {
            match overrides
                .overrides
                .iter_mut()
                .find(|o: &&mut OverrideRule| o.target == entry.target)
            {
                Some(existing) => *existing = entry.clone(),
                None => overrides.overrides.push(entry.clone()),
            }
        }
        if patch.pre.is_some() {
            overrides.pre.clone_from(&patch.pre);
        }
        if patch.post.is_some() {
            overrides.post.clone_from(&patch.post);
        }
        Ok(Proposal {
            overrides,
            plugins: current.plugins.clone(),
            rollback_of: None,
        })
    })
    .await
}

/// Binds plugin versions (and their limits) to a connection's mapping of an entity.
async fn bind_plugins(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let c = connection(&state, &caller, &id)?;
    let entity = entity(&c, &name)?;
    let plugins: Vec<PluginBinding> = json_body(body)?;
    for binding in &plugins {
        Limits::with(&binding.limits).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidLimits,
                e.to_string(),
            )
        })?;
    }
    let expected = expected_version(&state, &c, entity, &headers)?;
    publish(&state, &caller, c, entity, expected, move |current| {
        Ok(Proposal {
            overrides: current.overrides.clone(),
            plugins: plugins.clone(),
            rollback_of: None,
        })
    })
    .await
}

/// The version a change must apply to, from its `If-Match` header (RFC 9110): `None`
/// without the header or with `*`. A mapping's entity tag is its version in quotes
/// (`"3"`); a bare version (`3`) is taken as that tag. A list matches when one of its
/// tags is the current version; weak tags (`W/"3"`) and tags that are not a version
/// never match (strong comparison), which is a 412 like a version that moved.
fn expected_version(
    state: &AppState,
    c: &Connection,
    entity: Entity,
    headers: &HeaderMap,
) -> Result<Option<u64>, ApiError> {
    let Some(versions) = if_match(headers)? else {
        return Ok(None);
    };
    if let [version] = versions.as_slice() {
        return Ok(Some(*version));
    }
    // Several tags, or none that can match: the current version decides. The change
    // itself is still conditional on it, so a version that moves meanwhile is a 412.
    let current = state.inner.pipelines.current(c, entity)?.version;
    if versions.contains(&current) {
        return Ok(Some(current));
    }
    let named: Vec<String> = versions.iter().map(|v| format!("\"{v}\"")).collect();
    Err(ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        ErrorCode::VersionMismatch,
        format!(
            "the mapping is at version {current}, which `If-Match` does not name ({}): read it again and make the change on version {current}",
            if named.is_empty() {
                "it names no version".to_owned()
            } else {
                named.join(", ")
            }
        ),
    )
    .details(json!({"expected": versions, "current": current})))
}

/// The versions an `If-Match` header names: `None` without the header or with `*`;
/// weak tags and tags that are not a version are left out (they never match). A
/// value that is not a list of entity tags is a 400.
fn if_match(headers: &HeaderMap) -> Result<Option<Vec<u64>>, ApiError> {
    let Some(value) = headers.get(axum::http::header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::bad_request("`If-Match` is not text"))?
        .trim();
    if text == "*" {
        return Ok(None);
    }
    let refused = || {
        ApiError::bad_request(format!(
            "`If-Match: {text}` is not a list of entity tags: a mapping's is its version in quotes, as its `ETag` gives it (`\"3\"`), or `*`"
        ))
    };
    // A bare version, as a client may send it without the quotes.
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map(|v| Some(vec![v])).map_err(|_| refused());
    }
    let mut versions = Vec::new();
    let mut rest = text;
    loop {
        let (weak, tag) = match rest.strip_prefix("W/") {
            Some(tag) => (true, tag),
            None => (false, rest),
        };
        // An opaque tag is quoted and holds no quote (it may hold a comma).
        let (opaque, after) = tag
            .strip_prefix('"')
            .and_then(|t| t.split_once('"'))
            .ok_or_else(refused)?;
        if let (false, Ok(version)) = (weak, opaque.parse::<u64>()) {
            versions.push(version);
        }
        let after = after.trim_start_matches([' ', '\t']);
        if after.is_empty() {
            break;
        }
        rest = after
            .strip_prefix(',')
            .ok_or_else(refused)?
            .trim_start_matches([' ', '\t']);
    }
    Ok(Some(versions))
}

/// Validates, persists and publishes a change off the async workers (compiling may
/// load plugins); answers once the next request sees it. `edit` is applied to the
/// latest version (see [`Pipelines::change`]).
async fn publish(
    state: &AppState,
    caller: &Caller,
    c: Connection,
    entity: Entity,
    expected: Option<u64>,
    edit: impl Fn(&crate::connection::Base) -> Result<Proposal, crate::connection::ChangeError>
    + Send
    + 'static,
) -> Result<Response, ApiError> {
    let author = caller.0.id.clone();
    let pipelines = Arc::clone(&state.inner.pipelines);
    let id = c.id.clone();
    let tenant = c.tenant_id.clone();
    let changed = blocking(move || pipelines.change(&c, entity, expected, &author, edit)).await?;
    if changed.stored {
        state.inner.metrics.change(&id, entity);
        mapping_updated(state, &tenant, &id, entity, &changed.pipeline, None);
    }
    Ok(mapping_response(&changed.pipeline))
}

/// Emits `mapping.updated` for a published change.
fn mapping_updated(
    state: &AppState,
    tenant: &str,
    connection: &str,
    entity: Entity,
    pipeline: &crate::connection::Pipeline,
    rollback_of: Option<u64>,
) {
    let data = json!({
        "connection_id": connection,
        "entity": entity,
        "version": pipeline.version,
        "rollback_of": rollback_of,
    });
    if let Err(e) = state
        .inner
        .webhooks
        .emit(tenant, EventType::MappingUpdated, data)
    {
        tracing::error!(connection, error = %e, "mapping.updated was not queued");
    }
}

/// Proposed overrides and a payload to run them on.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Preview {
    /// The overrides, as `PUT …/mappings/{entity}` takes them.
    pub overrides: OverrideSpec,
    /// Source records: one, an array, or the system's collection envelope.
    pub payload: Value,
}

/// What proposed overrides would change.
#[derive(Serialize, JsonSchema)]
pub struct PreviewAnswer {
    /// The version the comparison is made against.
    pub current_version: u64,
    /// The records under the proposed overrides (or why each failed).
    pub output: Vec<Value>,
    /// The records under the current mapping.
    pub current_output: Vec<Value>,
    /// Every leaf that differs.
    pub changes: Vec<Change>,
}

/// One leaf that differs between the current and the proposed output.
#[derive(Serialize, JsonSchema)]
pub struct Change {
    /// Where: `[0].custom_fields.cost_center`.
    pub path: String,
    /// Its current value.
    pub before: Value,
    /// Its proposed value.
    pub after: Value,
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
    let entity = entity(&c, &name)?;
    let Preview { overrides, payload } = json_body(body)?;
    let current = state.inner.pipelines.current_async(&c, entity).await?;
    let pipelines = Arc::clone(&state.inner.pipelines);
    let proposed = {
        let (c, current) = (c.clone(), Arc::clone(&current));
        blocking(move || pipelines.preview(&c, entity, &overrides, &current.plugins)).await?
    };
    // The two runs are one after the other: the larger of their needs is leased.
    let (a, b) = (proposed.plan.plugin_demand(), current.plan.plugin_demand());
    let demand = Demand {
        instances: a.instances.max(b.instances),
        memory_bytes: a.memory_bytes.max(b.memory_bytes),
    };
    let grant = plugin_grant(&state, &c.tenant_id, demand).await?;
    let _cancel = grant.cancel_on_drop();
    let limit = state.answer_limit();
    tokio::task::spawn_blocking(move || -> Result<Response, ApiError> {
        let records = Payload::unwrap(payload).into_records();
        let run = |plan: &crosswalk_core::mapping::Plan| -> Result<Vec<Value>, ApiError> {
            let batch = plan.map_batch_granted(&records, MapOptions::default(), &grant);
            answer::answer_full(batch.records.iter())?;
            Ok(batch
                .records
                .into_iter()
                .enumerate()
                .map(|(i, r)| r.unwrap_or_else(|e| record_error(&e, i)))
                .collect())
        };
        let (after, before) = (run(&proposed.plan)?, run(&current.plan)?);
        let mut changes = Vec::new();
        for (i, (b, a)) in before.iter().zip(&after).enumerate() {
            diff(&format!("[{i}]"), b, a, &mut changes);
        }
        let preview = PreviewAnswer {
            current_version: current.version,
            output: after,
            current_output: before,
            changes,
        };
        answer::json(&preview, limit)
    })
    .await
    .map_err(|e| ApiError::internal(&e))?
}

/// The leaves that differ between two records.
fn diff(at: &str, before: &Value, after: &Value, out: &mut Vec<Change>) {
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
        (b, a) if b != a => out.push(Change {
            path: at.to_owned(),
            before: b.clone(),
            after: a.clone(),
        }),
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
    let bytes = body.map_err(|e| ApiError::new(e.status(), ErrorCode::BadBody, e.body_text()))?;
    let tenant = caller.0.tenant_id.clone();
    // Before compiling: a tenant at its quota does not get the CPU of a compilation.
    plugin_quota(&state, &tenant, &bytes)?;
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
    state.counted(|| {
        plugin_quota(&state, &tenant, &bytes)?;
        Ok(state.inner.store.put_plugin(&record, &bytes)?)
    })?;
    let answer = PluginAnswer {
        plugin: record,
        interface: plugin.interface(),
        functions: plugin.functions(),
    };
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// Whether a tenant may store one more plugin version of these bytes: within its count
/// and its bytes. Uploading a version it has already stored again is always allowed.
fn plugin_quota(state: &AppState, tenant: &str, bytes: &[u8]) -> Result<(), ApiError> {
    let quotas = &state.inner.quotas;
    let sha256 = PluginHost::sha256(bytes);
    let held = state.inner.store.plugins(tenant)?;
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

async fn list_plugins(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<List<PluginRecord>>, ApiError> {
    Ok(Json(List {
        data: state.inner.store.plugins(&caller.0.tenant_id)?,
    }))
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
        serde_json::to_value(PluginAnswer {
            plugin: record,
            interface: plugin.interface(),
            functions: plugin.functions(),
        })
        .map_err(|e| ApiError::internal(&e))?,
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
                    ErrorCode::PluginBound,
                    format!(
                        "plugin {sha256} is bound to the {entity} mapping of connection `{}`; unbind it first",
                        c.id
                    ),
                ));
            }
        }
    }
    state.inner.store.delete_plugin(tenant, &sha256)?;
    // Its compiled code goes too (another tenant's upload of the same bytes, if any,
    // is compiled again when a pipeline next loads it).
    state.inner.host.forget(&sha256);
    Ok(StatusCode::NO_CONTENT)
}

/// The author of version 0 in a mapping's history: the mapping Crosswalk ships.
pub const DEFAULT_AUTHOR: &str = "crosswalk";

/// The versions kept of a mapping.
#[derive(Serialize, JsonSchema)]
pub struct History {
    /// Version 0 (the system's default, as the connection was created with it), then
    /// the versions kept, oldest first; the last is the current one.
    pub data: Vec<MappingVersion>,
    /// The versions before this one were pruned (beyond `max_versions_kept` or
    /// `max_history_bytes`); `null` when none were.
    pub pruned_before: Option<u64>,
}

async fn mapping_history(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
) -> Result<Json<History>, ApiError> {
    let c = connection(&state, &caller, &id)?;
    let entity = entity(&c, &name)?;
    let stored = state.inner.store.mapping_history(&c.id, entity)?;
    // Versions count from 1 and only pruning removes them: a history that starts
    // later was pruned.
    let pruned_before = stored.first().map(|v| v.version).filter(|&first| first > 1);
    // Version 0, the system's shipped default, comes first: it is never pruned, and
    // `POST …/rollback {"version": 0}` restores it.
    let default = MappingVersion {
        connection_id: c.id.clone(),
        entity,
        version: 0,
        overrides: OverrideSpec::default(),
        plugins: Vec::new(),
        author: DEFAULT_AUTHOR.to_owned(),
        created_at: c.created_at.clone(),
        rollback_of: None,
    };
    let data = std::iter::once(default).chain(stored).collect();
    Ok(Json(History {
        data,
        pruned_before,
    }))
}

/// The version to restore.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    /// An earlier version of the mapping.
    pub version: u64,
}

async fn rollback_mapping(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let c = connection(&state, &caller, &id)?;
    let entity = entity(&c, &name)?;
    let Rollback { version } = json_body(body)?;
    let expected = expected_version(&state, &c, entity, &headers)?;
    let author = caller.0.id.clone();
    let pipelines = Arc::clone(&state.inner.pipelines);
    let id = c.id.clone();
    let tenant = c.tenant_id.clone();
    let changed =
        blocking(move || pipelines.rollback(&c, entity, version, expected, &author)).await?;
    if changed.stored {
        state.inner.metrics.change(&id, entity);
        mapping_updated(
            &state,
            &tenant,
            &id,
            entity,
            &changed.pipeline,
            Some(version),
        );
    }
    Ok(mapping_response(&changed.pipeline))
}

/// The flags of a transform.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TransformQuery {
    #[serde(default)]
    remote_data: bool,
    #[serde(default)]
    strict: bool,
}

/// Maps source records: one record, an array or a collection envelope in a JSON
/// body, or one record per line in an NDJSON body (streamed, see [`ndjson`]).
async fn transform(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
    query: Result<Query<TransformQuery>, axum::extract::rejection::QueryRejection>,
    request_id: Option<axum::Extension<RequestId>>,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let c = connection(&state, &caller, &id)?;
    let entity = entity(&c, &name)?;
    let pipeline = state.inner.pipelines.current_async(&c, entity).await?;
    let options = MapOptions {
        strict: query.strict,
        remote_data: query.remote_data,
    };
    let version = pipeline.version;
    let streamed = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(ndjson::is_ndjson);
    // Plugin instances are leased from the tenant's share before anything runs: a
    // busy share is a 503 now, not fields nulled later.
    let grant = if pipeline.plan.calls_plugins() {
        Some(plugin_grant(&state, &c.tenant_id, pipeline.plan.plugin_demand()).await?)
    } else {
        None
    };
    if streamed {
        let target = ndjson::Target {
            connection: c,
            entity,
            metrics: Arc::clone(&state.inner.metrics),
            monitor: Arc::clone(state.inner.records.monitor()),
            request_id: request_id.map(|r| r.0.0),
            answer_limit: state.answer_limit(),
        };
        // A client that asked to be told to go on (`Expect: 100-continue`) is told so
        // before the answer's head goes out; others may send as the answers come.
        let expects_continue = request
            .headers()
            .get(axum::http::header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let body = request.into_body();
        let body = if expects_continue {
            ndjson::started(body).await
        } else {
            body
        };
        let body = ndjson::transform(
            body,
            pipeline,
            options,
            state.inner.body_limit,
            target,
            grant,
        );
        let response = (
            [(axum::http::header::CONTENT_TYPE, ndjson::CONTENT_TYPE)],
            body,
        )
            .into_response();
        return Ok(with_version(response, version));
    }
    let body = Bytes::from_request(request, &state).await;
    let small = body.as_ref().is_ok_and(|b| b.len() <= INLINE_BYTES);
    let pipeline_calls_plugins = pipeline.plan.calls_plugins();
    let payload: Value = json_body(body)?;
    let metrics = Arc::clone(&state.inner.metrics);
    let monitor = Arc::clone(state.inner.records.monitor());
    let request_id = request_id.map(|r| r.0.0);
    // Dropped with this future when the client goes away: the plugin work stops.
    let _cancel = grant.as_ref().map(Grant::cancel_on_drop);
    let limit = state.answer_limit();
    let work = move || {
        let (one, records) = match Payload::unwrap(payload) {
            Payload::One(r) => (true, vec![r]),
            Payload::Many(rs) => (false, rs),
        };
        let batch = match &grant {
            Some(grant) => pipeline.plan.map_batch_granted(&records, options, grant),
            None => pipeline.plan.map_batch(&records, options),
        };
        metrics.batch(&c.id, entity, &batch);
        // Nobody reads the answer of a cancelled request, and what cancelling did to
        // its records is not the connection's problem.
        if !grant.as_ref().is_some_and(|g| g.cancel().is_cancelled()) {
            monitor.mapped(&c, entity, &batch, &[], request_id.as_deref());
        }
        // Serialised once, within `max_answer_bytes`.
        if one {
            let record = batch.records.into_iter().next().expect("one record");
            return match record {
                Ok(record) => answer::json(&json!({"data": record}), limit),
                Err(e) => Err(answer::record_failed(&e)),
            };
        }
        answer::answer_full(batch.records.iter())?;
        let results: Vec<Value> = batch
            .records
            .into_iter()
            .enumerate()
            .map(|(i, r)| r.unwrap_or_else(|e| record_error(&e, i)))
            .collect();
        answer::json(&json!({"data": results}), limit)
    };
    // Built-in transforms take microseconds a record: a small payload is mapped right
    // here. Plugins (which may run up to their time limit) and large batches are
    // mapped off the async workers.
    let answer = if !pipeline_calls_plugins && small {
        work()?
    } else {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| ApiError::internal(&e))??
    };
    Ok(with_version(answer, version))
}

/// Leases what `demand` asks of the plugin pool from `tenant`'s share: a busy share
/// is 503 `busy` with `Retry-After`, a demand over the share 422 `limit_exceeded`.
pub(crate) async fn plugin_grant(
    state: &AppState,
    tenant: &str,
    demand: Demand,
) -> Result<Grant, ApiError> {
    Ok(state.inner.host.pool().grant(tenant, demand).await?)
}

/// A record of a batch that failed, in the API's error shape, at its index
/// (`limit_exceeded` with the limit when a limit failed it).
fn record_error(e: &crosswalk_core::mapping::RecordError, index: usize) -> Value {
    answer::record_error(e, index)
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

/// A connection's mapping of an entity.
#[derive(Serialize, JsonSchema)]
pub struct MappingAnswer<'a> {
    /// Its version (0: the system's default, never changed).
    pub version: u64,
    /// The mapping with the overrides applied, each rule with its origin.
    pub mapping: &'a ResolvedMapping,
    /// The plugin versions bound to it, with their limits.
    pub plugins: &'a [PluginBinding],
    /// The targets that writes cannot set through this mapping, and why.
    pub read_only: &'a [crosswalk_core::mapping::ReadOnly],
    /// Why no record of the entity can be written through this mapping, when a `pre`
    /// or `post` plugin step has no inverse; absent when writes work.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_refused: Option<&'a str>,
}

/// A mapping as the mapping endpoints answer it, with its version in the header too,
/// and as its entity tag (`ETag: "3"`), which `If-Match` takes back.
fn mapping_response(pipeline: &crate::connection::Pipeline) -> Response {
    let body = MappingAnswer {
        version: pipeline.version,
        mapping: &pipeline.resolved,
        plugins: &pipeline.plugins,
        read_only: pipeline.write.read_only(),
        write_refused: pipeline.write.refused(),
    };
    let mut response = with_version(Json(body).into_response(), pipeline.version);
    response.headers_mut().insert(
        axum::http::header::ETAG,
        HeaderValue::from_str(&format!("\"{}\"", pipeline.version)).expect("digits"),
    );
    response
}

fn with_version(mut response: Response, version: u64) -> Response {
    let headers: &mut HeaderMap = response.headers_mut();
    headers.insert(VERSION_HEADER, HeaderValue::from(version));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_written_as_floats_are_integers() {
        for (literal, integer) in [
            ("50.0", Some("50")),
            ("5e1", Some("50")),
            ("5E+1", Some("50")),
            ("-2.50e1", Some("-25")),
            ("0.0", Some("0")),
            ("1200e-2", Some("12")),
            ("2.5", None),
            ("5e-3", None),
            ("1e41", None),
            (".5", None),
        ] {
            assert_eq!(whole_number(literal).as_deref(), integer, "{literal}");
        }
    }

    #[test]
    fn a_body_reads_whole_floats_into_integer_fields_and_nothing_else() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Body {
            size: u32,
            limit: Option<u64>,
            payload: Value,
        }
        let body: Body =
            from_json(b"{\"payload\": {\"x\": 1.0},\n \"size\": 50.0, \"limit\": 2e3}").unwrap();
        assert_eq!((body.size, body.limit), (50, Some(2000)));
        // The payload's number keeps how it was written.
        assert_eq!(body.payload["x"].to_string(), "1.0");
        let refused = from_json::<Body>(b"{\"payload\": null, \"size\": 50.5}").unwrap_err();
        assert!(
            refused.to_string().contains("floating point `50.5`"),
            "{refused}"
        );
    }
}
