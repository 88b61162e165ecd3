//! The route table. [`routes`] lists every endpoint once (method, path, handler,
//! operation id, summary, input, answers and errors); the router ([`app`]) and the
//! OpenAPI document are both built from it. The handlers live in one module per
//! resource.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{Method, StatusCode};
use axum::routing::{delete, get, patch, post, put};

use super::connections::{
    ConnectionCreated, NewConnection, create_connection, delete_connection, get_connection,
    list_connections,
};
use super::language::{
    Evaluate, Evaluated, SystemInfo, TransformInfo, evaluate, list_systems, list_transforms,
    model_schema,
};
use super::mappings::AtVersion;
use super::mappings::{
    History, MappingAnswer, Preview, PreviewAnswer, Rollback, bind_plugins, get_mapping,
    mapping_history, patch_mapping, preview_mapping, put_mapping, rollback_mapping,
};
use super::mappings::{VersionDiff, mapping_diff};
use super::ops::{floor, metrics, serve_openapi};
use super::plugins::{PluginAnswer, delete_plugin, describe_plugin, list_plugins, upload_plugin};
use super::tenants::{NewTenant, TenantCreated, calling_key, create_tenant, list_tenants};
use super::transform::transform;
use super::{
    ApiError, AppState, Caller, ErrorCode, List, RequestId, Route, connections, content_type,
    observe, openapi, records, webhooks,
};
use crate::store::{Connection, PluginBinding, PluginRecord};
use crosswalk_core::mapping::OverrideSpec;
use crosswalk_core::model::Entity;

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
    let router = router.merge(super::console::routes());
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

// `uploadPlugin`'s summary and `serve --help` name the upload bound in words.
const _: () = assert!(
    crosswalk_plugin_host::MAX_COMPONENT_BYTES == 64 << 20,
    "uploadPlugin's summary says 64 MiB"
);

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
        Route::new(M::GET, "/v1/tenants", get(list_tenants), "listTenants", "Every tenant, oldest first.")
            .access(Access::Admin)
            .answers(200, Output::Json(schema::<List<crate::store::Tenant>>)),
        Route::new(M::GET, "/v1/key", get(calling_key), "callingKey", "The key that sends the request: its id, tenant and role (`tenant` or `admin`); how a client checks a key.")
            .answers(200, Output::Json(schema::<crate::store::ApiKey>)),
        Route::new(M::GET, "/v1/systems", get(list_systems), "listSystems", "The source systems Crosswalk maps, and the entities each has a default mapping of.")
            .answers(200, Output::Json(schema::<List<SystemInfo>>)),
        Route::new(M::GET, "/v1/transforms", get(list_transforms), "listTransforms", "The built-in transforms: name, what each does, its arguments and an example step.")
            .answers(200, Output::Json(schema::<List<TransformInfo>>)),
        Route::new(M::GET, "/v1/model/{entity}", get(model_schema), "getModel", "The unified model's JSON Schema (draft 2020-12) of an entity: its fields, their types and which are required.")
            .answers(200, Output::Json(|_| schemars::json_schema!({"type": "object", "description": "A JSON Schema (draft 2020-12)."}))),
        Route::new(M::POST, "/v1/jsonpath", post(evaluate), "evaluateJsonpath", "Evaluate an RFC 9535 JSONPath on a document, as a rule would: the values it selects, or where it stops being valid.")
            .input(Input::Json(schema::<Evaluate>))
            .answers(200, Output::Json(schema::<Evaluated>))
            .errors(&[422]),
        Route::new(M::POST, "/v1/connections", post(create_connection), "createConnection", "Create a connection to a source system.")
            .input(Input::Json(schema::<NewConnection>))
            .answers(201, Output::Json(schema::<ConnectionCreated>))
            .errors(&[422, 503]),
        Route::new(M::GET, "/v1/connections", get(list_connections), "listConnections", "The tenant's connections.")
            .answers(200, Output::Json(schema::<List<Connection>>)),
        Route::new(M::GET, "/v1/connections/{id}", get(get_connection), "getConnection", "A connection.")
            .answers(200, Output::Json(schema::<Connection>)),
        Route::new(M::DELETE, "/v1/connections/{id}", delete(delete_connection), "deleteConnection", "Delete a connection.")
            .answers(204, Output::Empty),
        Route::new(M::GET, "/v1/connections/{id}/mappings/{entity}", get(get_mapping), "getMapping", "The connection's resolved mapping of an entity, with the origin of each rule.")
            .at_version()
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
        Route::new(M::GET, "/v1/connections/{id}/mappings/{entity}/diff", get(mapping_diff), "mappingDiff", "What changed between two kept versions of the mapping (`from`, `to`; 0 is the system's default; by default the current version and the one before): override entries by target, record steps and plugin bindings.")
            .query(&[
                ("from", "integer:0:18446744073709551615", "The older version (0: the system's default); by default the kept version before `to`."),
                ("to", "integer:0:18446744073709551615", "The newer version; by default the current one."),
            ])
            .answers(200, Output::Json(schema::<VersionDiff>))
            .errors(&[400]),
        Route::new(M::POST, "/v1/connections/{id}/mappings/{entity}/rollback", post(rollback_mapping), "rollbackMapping", "Restore an earlier version (0: the system's default), as a new version; restoring the current mapping stores nothing.")
            .input(Input::Json(schema::<Rollback>))
            .answers(200, mapping)
            .errors(&[422])
            .versioned()
            .conditional(),
        // Components are larger than request bodies: their own limit is the plugin
        // host's size cap, which the loader enforces with a clear error.
        Route::new(M::POST, "/v1/plugins", post(upload_plugin).layer(DefaultBodyLimit::max(crosswalk_plugin_host::MAX_COMPONENT_BYTES + 1)), "uploadPlugin", "Upload a plugin version (a component of at most 64 MiB, whatever the server's body limit): checked and described as `crosswalk plugin check` does.")
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
        Route::new(M::GET, "/v1/connections/{id}/plugin-log", get(connections::connection_plugin_log), "connectionPluginLog", "What the connection's plugins wrote while mapping its records (host.log calls, stdout, stderr), with level, plugin, function and request id, newest first; the newest 1,000 lines are kept.")
            .query(&[
                ("plugin", "string", "Only lines of this plugin."),
                ("level", "log_level", "Only lines of this level or above: debug, info, warn, error."),
                ("request_id", "string", "Only lines of this request (`x-request-id`)."),
                ("limit", "integer:1:1000", "At most this many lines (1 to 1,000; 100 by default)."),
            ])
            .answers(200, Output::Json(schema::<List<crate::connection::PluginLogEntry>>))
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
        Route::new(M::POST, "/v1/webhooks/{webhook_id}/test", post(webhooks::test), "testWebhook", "Queue a `webhook.test` event for this subscription (whatever events it receives): delivered, signed and logged as any other; one at a time (409 while the last is in the outbox).")
            .answers(202, Output::Json(schema::<webhooks::TestQueued>))
            .errors(&[409]),
        Route::new(M::GET, "/v1/webhooks/{webhook_id}/deliveries", get(webhooks::deliveries), "webhookDeliveries", "The subscription's delivery log, newest first: every attempt and how it went.")
            .answers(200, Output::Json(schema::<List<crate::webhook::DeliveryAttempt>>)),
        Route::new(M::POST, "/v1/connections/{id}/transform/{entity}", post(transform), "transform", "Map source records with the connection's current mapping: JSON in, JSON out; or NDJSON in, NDJSON out, streamed.")
            .at_version()
            .input(Input::Records)
            .answers(200, Output::Records)
            .errors(&[422, 503])
            .flags(&[REMOTE_DATA, STRICT])
            .versioned(),
    ]
    .into_iter()
    .chain(records::RESOURCES.iter().flat_map(resource_routes))
    .collect()
}

/// The four routes of a unified resource: list, get, create and update.
fn resource_routes(r: &'static records::Resource) -> [Route; 5] {
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
                     request_id: Option<axum::Extension<RequestId>>,
                     at: AtVersion| async move {
        let request_id = request_id.map(|e| e.0);
        records::list_records(state, caller, id, entity, params, request_id, at).await
    };
    let one = move |State(state): State<AppState>,
                    caller: Caller,
                    Path(ids): Path<(String, String)>,
                    params,
                    request_id: Option<axum::Extension<RequestId>>,
                    at: AtVersion| async move {
        let request_id = request_id.map(|e| e.0);
        records::get_record(state, caller, ids, entity, params, request_id, at).await
    };
    let create = move |State(state): State<AppState>,
                       caller: Caller,
                       Path(id): Path<String>,
                       request_id: Option<axum::Extension<RequestId>>,
                       at: AtVersion,
                       body: Result<Bytes, BytesRejection>| async move {
        let request_id = request_id.map(|e| e.0);
        records::write_record(state, caller, (id, None), entity, body, request_id, at).await
    };
    let update = move |State(state): State<AppState>,
                       caller: Caller,
                       Path((id, record_id)): Path<(String, String)>,
                       request_id: Option<axum::Extension<RequestId>>,
                       at: AtVersion,
                       body: Result<Bytes, BytesRejection>| async move {
        let ids = (id, Some(record_id));
        let request_id = request_id.map(|e| e.0);
        records::write_record(state, caller, ids, entity, body, request_id, at).await
    };
    let preview = move |State(state): State<AppState>,
                        caller: Caller,
                        Path(id): Path<String>,
                        request_id: Option<axum::Extension<RequestId>>,
                        at: AtVersion,
                        body: Result<Bytes, BytesRejection>| async move {
        let request_id = request_id.map(|e| e.0);
        records::preview_write(state, caller, id, entity, body, request_id, at).await
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
            .at_version()
            .query(&[
                ("cursor", "token", "The `next_cursor` of the previous page."),
                ("page_size", "integer:1:500", "Records per page (1 to 500; 50 by default). A live connection asks its upstream for this many."),
                ("updated_since", "date-time", "Only records changed at or after this instant (RFC 3339)."),
            ])
            .flags(&[REMOTE_DATA])
            .answers(200, Output::Json(schema::<records::RecordsPage>))
            .errors(&[400, 409, 422, 429, 502, 503, 504])
            .versioned(),
        Route::new(Method::GET, r.item, get(one), get_op, "One record by its id, mapped with the connection's current mapping.")
            .at_version()
            .flags(&[REMOTE_DATA])
            .answers(200, Output::Json(schema::<records::RecordAnswer>))
            .errors(&[400, 409, 422, 429, 502, 503, 504])
            .versioned(),
        Route::new(Method::POST, r.collection, post(create), create_op, "Create a record: validated, reverse-mapped with the connection's current mapping, sent to the system in its own format and read back. A sandbox connection accepts it and changes nothing.")
            .at_version()
            .input(Input::Json(record_schema))
            .answers(201, Output::Json(schema::<records::WriteAnswer>))
            .errors(&[409, 422, 429, 502, 503, 504]),
        Route::new(Method::PATCH, r.item, patch(update), update_op, "Update the given fields of a record, as a create does. A sandbox connection accepts it and changes nothing.")
            .at_version()
            .input(Input::Json(record_schema))
            .answers(200, Output::Json(schema::<records::WriteAnswer>))
            .errors(&[409, 422, 429, 502, 503, 504]),
        Route::new(Method::POST, r.preview, post(preview), preview_op, "The system's own payload that a write of this record (or of these fields) would send, through the connection's current mapping; nothing is sent.")
            .at_version()
            .input(Input::Json(record_schema))
            .answers(200, Output::Json(schema::<records::WritePreview>))
            .errors(&[422, 503])
            .versioned(),
    ]
}
