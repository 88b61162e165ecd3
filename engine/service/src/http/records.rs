//! A connection's unified records, one set of endpoints per resource of [`RESOURCES`]:
//! a page of records, one record, a write (live, or accepted and dropped by a sandbox)
//! and the preview of a write; and how a failure of the records service answers.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::Query;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::body::json_body;
use super::connections::connection;
use super::error::{ErrorBody, ErrorCode};
use super::mappings::with_version;
use super::mappings::{AtVersion, pipeline_at};
use super::work::plugin_grant;
use super::{ApiError, AppState, Caller, RequestId};
use crate::connection::{ErrorKind, ListQuery, RecordsError};
use crate::store::{Connection, Mode};
use crosswalk_core::model::Entity;
use crosswalk_systems::sandbox::Scenario;

/// A unified resource: its entity and its paths.
pub struct Resource {
    /// The entity.
    pub entity: Entity,
    /// `/v1/connections/{id}/purchase-orders`.
    pub collection: &'static str,
    /// `/v1/connections/{id}/purchase-orders/{record_id}`.
    pub item: &'static str,
    /// `/v1/connections/{id}/purchase-orders/preview-write`.
    pub preview: &'static str,
    /// The operation ids: list, get, create, update, preview a write.
    pub operations: [&'static str; 5],
}

/// The unified resources, by plural name.
pub const RESOURCES: [Resource; 5] = [
    Resource {
        entity: Entity::PurchaseOrder,
        collection: "/v1/connections/{id}/purchase-orders",
        item: "/v1/connections/{id}/purchase-orders/{record_id}",
        preview: "/v1/connections/{id}/purchase-orders/preview-write",
        operations: [
            "listPurchaseOrders",
            "getPurchaseOrder",
            "createPurchaseOrder",
            "updatePurchaseOrder",
            "previewPurchaseOrderWrite",
        ],
    },
    Resource {
        entity: Entity::WorkOrder,
        collection: "/v1/connections/{id}/work-orders",
        item: "/v1/connections/{id}/work-orders/{record_id}",
        preview: "/v1/connections/{id}/work-orders/preview-write",
        operations: [
            "listWorkOrders",
            "getWorkOrder",
            "createWorkOrder",
            "updateWorkOrder",
            "previewWorkOrderWrite",
        ],
    },
    Resource {
        entity: Entity::Asset,
        collection: "/v1/connections/{id}/assets",
        item: "/v1/connections/{id}/assets/{record_id}",
        preview: "/v1/connections/{id}/assets/preview-write",
        operations: [
            "listAssets",
            "getAsset",
            "createAsset",
            "updateAsset",
            "previewAssetWrite",
        ],
    },
    Resource {
        entity: Entity::Vendor,
        collection: "/v1/connections/{id}/vendors",
        item: "/v1/connections/{id}/vendors/{record_id}",
        preview: "/v1/connections/{id}/vendors/preview-write",
        operations: [
            "listVendors",
            "getVendor",
            "createVendor",
            "updateVendor",
            "previewVendorWrite",
        ],
    },
    Resource {
        entity: Entity::Part,
        collection: "/v1/connections/{id}/parts",
        item: "/v1/connections/{id}/parts/{record_id}",
        preview: "/v1/connections/{id}/parts/preview-write",
        operations: [
            "listParts",
            "getPart",
            "createPart",
            "updatePart",
            "previewPartWrite",
        ],
    },
];

impl From<RecordsError> for ApiError {
    fn from(e: RecordsError) -> Self {
        let message = e.to_string();
        match e {
            RecordsError::BadCursor(_) | RecordsError::BadQuery(_) => {
                ApiError::bad_request(message)
            }
            RecordsError::NotFound { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
            }
            RecordsError::NeedsReauth(_) => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::NeedsReauth, message)
            }
            RecordsError::CircuitOpen { wait, .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::CircuitOpen,
                message,
            )
            .retry_after(wait),
            RecordsError::RateLimited { wait, .. } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                message,
            )
            .retry_after(wait),
            RecordsError::Upstream { entity, error } => {
                let (status, code) = match error.kind {
                    ErrorKind::Auth => (StatusCode::CONFLICT, ErrorCode::NeedsReauth),
                    ErrorKind::Permission => {
                        (StatusCode::BAD_GATEWAY, ErrorCode::UpstreamPermission)
                    }
                    ErrorKind::RateLimit => (StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited),
                    ErrorKind::Timeout => (StatusCode::GATEWAY_TIMEOUT, ErrorCode::UpstreamTimeout),
                    ErrorKind::Network => (StatusCode::BAD_GATEWAY, ErrorCode::UpstreamUnreachable),
                    _ => (StatusCode::BAD_GATEWAY, ErrorCode::UpstreamError),
                };
                let details =
                    json!({"entity": entity, "kind": error.kind, "upstream_status": error.status});
                let mut api = ApiError::new(status, code, message).details(details);
                if let Some(wait) = error.retry_after {
                    api = api.retry_after(wait);
                }
                api
            }
            RecordsError::Rejected { entity, error } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::UpstreamRejected,
                message,
            )
            .details(json!({"entity": entity, "upstream_status": error.status})),
            RecordsError::NoSecretKey => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::NoSecretKey,
                message,
            ),
            RecordsError::Record { ref error, .. } => {
                let ErrorBody { error: detail } = ErrorBody::record(error, None);
                ApiError::unprocessable(ErrorBody::new(detail.code, message, detail.details))
            }
            RecordsError::Pipeline(e) => e.into(),
            RecordsError::Plugins(e) => e.into(),
            RecordsError::Store(e) => e.into(),
            RecordsError::Secret(_)
            | RecordsError::NotConfigured(_)
            | RecordsError::Task { .. } => ApiError::internal(&message),
        }
    }
}

/// The entity, if the connection's system maps it; else a 404 that says which it maps.
fn mapped(c: &Connection, entity: Entity) -> Result<Entity, ApiError> {
    super::connections::entity(c, entity.as_str())
}

/// The query of a listing.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    cursor: Option<String>,
    page_size: Option<u32>,
    updated_since: Option<String>,
    #[serde(default)]
    remote_data: bool,
}

/// A page of unified records.
#[derive(Serialize, JsonSchema)]
pub struct RecordsPage {
    /// The records, in the source system's order; a record that could not be mapped
    /// is an error in the API's shape with `details.index`.
    pub data: Vec<Value>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
    /// Sandbox connections only: what each record is there to show, in the same
    /// order as `data` (error cases carry their `problem`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<Vec<Scenario>>,
}

/// One unified record.
#[derive(Serialize, JsonSchema)]
pub struct RecordAnswer {
    /// The record.
    pub data: Value,
    /// Sandbox connections only: what the record is there to show.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<Scenario>,
}

pub(super) fn query<T: Default>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|e| ApiError::bad_request(e.body_text()))
}

pub(super) async fn list_records(
    state: AppState,
    caller: Caller,
    id: String,
    entity: Entity,
    params: Result<Query<ListParams>, QueryRejection>,
    request_id: Option<RequestId>,
    at: AtVersion,
) -> Result<Response, ApiError> {
    let params = query(params)?;
    let c = connection(&state, &caller, &id).await?;
    let entity = mapped(&c, entity)?;
    let updated_since = params
        .updated_since
        .as_deref()
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|d| d.with_timezone(&chrono::Utc))
                .map_err(|e| {
                    ApiError::bad_request(format!(
                        "updated_since `{s}` is not an RFC 3339 date-time: {e}"
                    ))
                })
        })
        .transpose()?;
    let list = ListQuery {
        cursor: params.cursor,
        page_size: params.page_size,
        updated_since,
        remote_data: params.remote_data,
    };
    // The query first, then a later version asked for is loaded before the read maps
    // with it: a malformed query is a 400 whatever version it asks for.
    list.check(entity).map_err(ApiError::from)?;
    pipeline_at(&state, &c, entity, at).await?;
    let listed = state
        .inner
        .records
        .list(&c, entity, list, request_id.as_ref().map(|r| r.0.as_str()))
        .await?;
    let failed = listed.records.iter().filter(|r| r.is_err()).count() as u64;
    let ok = listed.records.len() as u64 - failed;
    state.inner.metrics.records(&c.id, entity, ok, failed);
    super::answer::answer_full(listed.records.iter())?;
    let page = RecordsPage {
        data: listed
            .records
            .into_iter()
            .enumerate()
            .map(|(i, r)| r.unwrap_or_else(|e| super::answer::record_error(&e, i)))
            .collect(),
        next_cursor: listed.next_cursor,
        sandbox: listed.scenarios,
    };
    let answer = super::answer::json(&page, state.answer_limit())?;
    Ok(with_version(answer, listed.version))
}

/// The query of a one-record read.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct GetParams {
    #[serde(default)]
    remote_data: bool,
}

pub(super) async fn get_record(
    state: AppState,
    caller: Caller,
    (id, record_id): (String, String),
    entity: Entity,
    params: Result<Query<GetParams>, QueryRejection>,
    request_id: Option<RequestId>,
    at: AtVersion,
) -> Result<Response, ApiError> {
    let params = query(params)?;
    let c = connection(&state, &caller, &id).await?;
    let entity = mapped(&c, entity)?;
    // A later version asked for is loaded before the read maps with it.
    pipeline_at(&state, &c, entity, at).await?;
    let fetched = state
        .inner
        .records
        .get(
            &c,
            entity,
            &record_id,
            params.remote_data,
            request_id.as_ref().map(|r| r.0.as_str()),
        )
        .await?;
    state.inner.metrics.records(&c.id, entity, 1, 0);
    let answer = RecordAnswer {
        data: fetched.record,
        sandbox: fetched.scenario,
    };
    let answer = super::answer::json(&answer, state.answer_limit())?;
    Ok(with_version(answer, fetched.version))
}

/// What a write did.
#[derive(Serialize, JsonSchema)]
pub struct WriteAnswer {
    /// Whether the source system was changed: always `false` for a sandbox.
    pub applied: bool,
    /// Live: the record as the system holds it after the write, read back and mapped.
    /// Sandbox: the unified record as sent (for an update, the fields given).
    pub data: Value,
    /// The system's own payload that the write sends (or, for a sandbox, would send).
    pub native_payload: Value,
    /// What happened.
    pub message: String,
}

/// What a write would send.
#[derive(Serialize, JsonSchema)]
pub struct WritePreview {
    /// The system's own payload for the unified record or fields given.
    pub native_payload: Value,
    /// The mapping version it was made with.
    pub version: u64,
}

/// The native payload of a unified record through the connection's current mapping,
/// or a 422 that names every field that cannot be written and why. Plugin inverses
/// (which may run up to their time limit) are called off the async workers, and how
/// their calls ended goes to the connection's health and error log, as for reads.
async fn native_payload(
    state: &AppState,
    c: &Connection,
    pipeline: &Arc<crate::connection::Pipeline>,
    entity: Entity,
    record: &Value,
    request_id: Option<&RequestId>,
) -> Result<Value, ApiError> {
    if !pipeline.write().calls_plugins() {
        return pipeline
            .write()
            .to_native(record)
            .map_err(|errors| unwritable(entity, &errors));
    }
    let grant = plugin_grant(state, &c.tenant_id, pipeline.write().plugin_demand()).await?;
    let _cancel = grant.cancel_on_drop();
    let (pipeline, record) = (Arc::clone(pipeline), record.clone());
    let written =
        tokio::task::spawn_blocking(move || pipeline.write().write_granted(&record, &grant))
            .await
            .map_err(|e| ApiError::internal(&e))?;
    // A plugin's own error is the write's 422 (a value it cannot take, from the
    // caller); traps, timeouts and broken limits are the plugin's failures and count
    // for the connection's health as in reads.
    let calls = crosswalk_core::mapping::Batch::<Value> {
        records: Vec::new(),
        field_errors: Vec::new(),
        log: written.log,
        plugin_calls: written
            .plugin_calls
            .into_iter()
            .map(|(plugin, counts)| {
                (
                    plugin,
                    counts.without(crosswalk_plugin_host::CallOutcome::Error),
                )
            })
            .collect(),
    };
    state
        .inner
        .records
        .monitor()
        .mapped(c, entity, &calls, &[], request_id.map(|r| r.0.as_str()));
    written.native.map_err(|errors| unwritable(entity, &errors))
}

/// The 422 of a record that cannot be written, naming every field and why.
fn unwritable(entity: Entity, errors: &[crosswalk_core::mapping::WriteError]) -> ApiError {
    let listed: Vec<String> = errors.iter().map(ToString::to_string).collect();
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::UnwritableFields,
        format!("this {entity} cannot be written: {}", listed.join("; ")),
    )
    .details(json!({"errors": errors}))
}

/// What both writes and previews do first: the connection, its current mapping of the
/// entity, the unified record in the body (checked against the model), and its native
/// payload through the mapping.
async fn prepare_write(
    state: &AppState,
    caller: &Caller,
    id: &str,
    entity: Entity,
    body: Result<Bytes, BytesRejection>,
    request_id: Option<&RequestId>,
    at: AtVersion,
) -> Result<(Connection, Arc<crate::connection::Pipeline>, Value, Value), ApiError> {
    let c = connection(state, caller, id).await?;
    let entity = mapped(&c, entity)?;
    let record: Value = json_body(body)?;
    check_unified(entity, &record)?;
    let pipeline = pipeline_at(state, &c, entity, at).await?;
    let native = native_payload(state, &c, &pipeline, entity, &record, request_id).await?;
    Ok((c, pipeline, record, native))
}

pub(super) async fn preview_write(
    state: AppState,
    caller: Caller,
    id: String,
    entity: Entity,
    body: Result<Bytes, BytesRejection>,
    request_id: Option<RequestId>,
    at: AtVersion,
) -> Result<Response, ApiError> {
    let (_, pipeline, _, native_payload) =
        prepare_write(&state, &caller, &id, entity, body, request_id.as_ref(), at).await?;
    let answer = WritePreview {
        native_payload,
        version: pipeline.version,
    };
    Ok(with_version(Json(answer).into_response(), pipeline.version))
}

/// Checks a unified record (or the fields of an update) against the entity's model:
/// an object, whose every field the model has.
fn check_unified(entity: Entity, body: &Value) -> Result<(), ApiError> {
    let Value::Object(fields) = body else {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidRecord,
            format!(
                "a {entity} must be a JSON object, not {}",
                crosswalk_core::mapping::error::type_name(body)
            ),
        ));
    };
    let model = entity.record_type();
    for name in fields.keys() {
        if model.field(name).is_none() {
            let known = model.field_names();
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidRecord,
                format!(
                    "{entity} has no field `{name}`{}",
                    crosswalk_core::mapping::error::did_you_mean(name, known.iter().copied())
                ),
            )
            .details(json!({"field": name})));
        }
    }
    // Every value as the document says: the write schema of the entity.
    static VALIDATORS: std::sync::OnceLock<Vec<jsonschema::Validator>> = std::sync::OnceLock::new();
    let validators = VALIDATORS.get_or_init(|| {
        Entity::ALL
            .iter()
            .map(|e| {
                jsonschema::validator_for(e.write_schema())
                    .unwrap_or_else(|err| panic!("the write schema of {e} compiles: {err}"))
            })
            .collect()
    });
    if let Some(error) = validators[entity as usize].iter_errors(body).next() {
        let field = error.instance_path.to_string();
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidRecord,
            format!("{entity} field `{field}` is not valid: {error}"),
        )
        .details(json!({"field": field})));
    }
    Ok(())
}

pub(super) async fn write_record(
    state: AppState,
    caller: Caller,
    (id, record_id): (String, Option<String>),
    entity: Entity,
    body: Result<Bytes, BytesRejection>,
    request_id: Option<RequestId>,
    at: AtVersion,
) -> Result<Response, ApiError> {
    let (c, _, record, native_payload) =
        prepare_write(&state, &caller, &id, entity, body, request_id.as_ref(), at).await?;
    if c.mode == Mode::Live {
        let fetched = state
            .inner
            .records
            .write(
                &c,
                entity,
                record_id.as_deref(),
                &native_payload,
                request_id.as_ref().map(|r| r.0.as_str()),
            )
            .await?;
        let status = if record_id.is_some() {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        let answer = WriteAnswer {
            applied: true,
            data: fetched.record,
            native_payload,
            message: format!("the {entity} was written to {} and read back", c.system),
        };
        return Ok(with_version(
            (status, Json(answer)).into_response(),
            fetched.version,
        ));
    }
    if let Some(record_id) = &record_id {
        // An update names a record that exists.
        state
            .inner
            .records
            .get(
                &c,
                entity,
                record_id,
                false,
                request_id.as_ref().map(|r| r.0.as_str()),
            )
            .await?;
    }
    let (status, verb) = if record_id.is_some() {
        (StatusCode::OK, "updated")
    } else {
        (StatusCode::CREATED, "created")
    };
    let answer = WriteAnswer {
        applied: false,
        data: record,
        native_payload,
        message: format!(
            "sandbox connection: the {entity} was accepted as if {verb}, and the sandbox data is unchanged"
        ),
    };
    Ok((status, Json(answer)).into_response())
}
