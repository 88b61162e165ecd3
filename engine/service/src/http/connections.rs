//! The connection resource: create one (a sandbox, or a live system with its upstream
//! and its credentials, sealed), list, get and delete; its status, its error log and
//! its reauthorization; and the lookups that every handler under
//! `/v1/connections/{id}` starts with (the tenant's connection by id, an entity its
//! system maps).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::body::json_body;
use super::outbound::outbound_url;
use super::records::query;
use super::{ApiError, AppState, Caller, ErrorCode, List};
use crate::connection::{
    Credentials, ErrorEntry, ErrorKind, HealthReport, PLUGIN_LOG_KEEP, PluginLogEntry,
    RecordsError, Status, UpstreamConfig,
};
use crate::quota::Quotas;
use crate::store::{Connection, Mode};
use crosswalk_core::model::Entity;
use crosswalk_plugin_host::LogLevel;
use crosswalk_systems::SystemId;

/// An entity that the connection's system maps; any other answers 404.
pub(super) fn entity(c: &Connection, name: &str) -> Result<Entity, ApiError> {
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

/// The caller's connection `id`: another tenant's answers 404, as one that does not
/// exist.
pub(super) async fn connection(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<Connection, ApiError> {
    state
        .inner
        .store
        .connection(&caller.0.tenant_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("connection", id))
}

/// The systems a connection can be to.
fn system_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let ids: Vec<&str> = crosswalk_systems::SYSTEMS
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    schemars::json_schema!({"type": "string", "enum": ids})
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
    "else" = {"properties": {"upstream": {"type": "null"}, "credentials": {"type": "null"}, "verify": {"const": false}}}
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
    /// For a live connection: check the credentials against the source system first,
    /// with the smallest read it allows; credentials it refuses, or a system that
    /// cannot be reached, create nothing (422 `verification_failed`). Without it the
    /// connection is created unchecked, and the answer says so.
    #[serde(default)]
    pub verify: bool,
}

/// A connection just created.
#[derive(Serialize, JsonSchema)]
pub struct ConnectionCreated {
    /// The connection.
    #[serde(flatten)]
    pub connection: Connection,
    /// For a live connection: whether its credentials were checked against the source
    /// system before it was created (`verify`). Absent for a sandbox.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials_verified: Option<bool>,
}

pub(super) async fn create_connection(
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
        verify,
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
    if verify && mode == Mode::Sandbox {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidConnection,
            "`verify` checks a live connection's credentials; a sandbox has none",
        ));
    }
    let live = live_settings(&state, mode, upstream, credentials)?;
    if let (true, Some((upstream, credentials))) = (verify, &live) {
        state
            .inner
            .records
            .verify(system, upstream, credentials)
            .await
            .map_err(|e| match e {
                RecordsError::Upstream { error, .. } => ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorCode::VerificationFailed,
                    format!(
                        "the credentials could not be verified, and nothing was created: {error}"
                    ),
                )
                .details(json!({"kind": error.kind, "upstream_status": error.status})),
                RecordsError::BadQuery(message) => ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorCode::InvalidConnection,
                    message,
                ),
                other => other.into(),
            })?;
    }
    let credentials_verified = (mode == Mode::Live).then_some(verify);
    let (upstream, credentials) = live.unzip();
    let tenant = &caller.0.tenant_id;
    let c = {
        let _counting = state.counting(tenant).await?;
        let held = state.inner.store.connections(tenant).await?.len();
        Quotas::one_more(
            "max_connections",
            quotas.max_connections,
            held,
            "connections",
        )?;
        state
            .inner
            .store
            .create_connection(tenant, system, &name, mode, upstream)
            .await?
    };
    if let (Some(credentials), Some(sealer)) = (credentials, state.inner.records.sealer()) {
        // Sealed for this connection's id, which the store has just chosen.
        let plain = serde_json::to_vec(&credentials).expect("credentials serialize");
        state
            .inner
            .store
            .update_connection(&c, Some(&sealer.seal(&c.id, &plain)))
            .await?;
    }
    let created = ConnectionCreated {
        connection: c,
        credentials_verified,
    };
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

pub(super) async fn list_connections(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<List<Connection>>, ApiError> {
    Ok(Json(List {
        data: state.inner.store.connections(&caller.0.tenant_id).await?,
    }))
}

pub(super) async fn get_connection(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Connection>, ApiError> {
    Ok(Json(connection(&state, &caller, &id).await?))
}

pub(super) async fn delete_connection(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state
        .inner
        .store
        .delete_connection(&caller.0.tenant_id, &id)
        .await?
    {
        return Err(ApiError::not_found("connection", &id));
    }
    state.inner.pipelines.forget(&id);
    state.inner.records.forget(&id);
    Ok(StatusCode::NO_CONTENT)
}

/// A connection's status.
#[derive(Serialize, JsonSchema)]
pub struct StatusAnswer {
    /// The connection.
    pub connection_id: String,
    /// Sandbox or live.
    pub mode: Mode,
    /// The connection token in use.
    pub token: String,
    /// Since when the credentials have been refused, while they are.
    pub needs_reauth_since: Option<String>,
    /// The health.
    #[serde(flatten)]
    pub health: HealthReport,
}

pub(super) async fn connection_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<StatusAnswer>, ApiError> {
    let c = connection(&state, &caller, &id).await?;
    let health = state.inner.records.monitor().report(&c);
    debug_assert!(c.needs_reauth_since.is_none() || health.status == Status::NeedsReauth);
    Ok(Json(StatusAnswer {
        connection_id: c.id,
        mode: c.mode,
        token: c.token,
        needs_reauth_since: c.needs_reauth_since,
        health,
    }))
}

/// The filters of the error log.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ErrorParams {
    entity: Option<String>,
    kind: Option<String>,
    limit: Option<usize>,
}

pub(super) async fn connection_errors(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    params: Result<Query<ErrorParams>, QueryRejection>,
) -> Result<Json<List<ErrorEntry>>, ApiError> {
    let params = query(params)?;
    let c = connection(&state, &caller, &id).await?;
    let entity: Option<Entity> = params
        .entity
        .as_deref()
        .map(|e| {
            e.parse::<Entity>()
                .map_err(|err| ApiError::bad_request(format!("entity: {err}")))
        })
        .transpose()?;
    let kind: Option<ErrorKind> = params
        .kind
        .as_deref()
        .map(|k| {
            k.parse::<ErrorKind>()
                .map_err(|err| ApiError::bad_request(format!("kind: {err}")))
        })
        .transpose()?;
    let limit = params.limit.unwrap_or(100);
    if !(1..=crate::connection::ERROR_LOG_KEEP).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit is {limit}; it must be between 1 and {}",
            crate::connection::ERROR_LOG_KEEP
        )));
    }
    // What the monitor found before this request is in the log.
    state.inner.records.monitor().settled().await;
    let data = state
        .inner
        .store
        .errors(&c.id)
        .await?
        .into_iter()
        .filter(|e| entity.is_none_or(|want| e.entity == Some(want)))
        .filter(|e| kind.is_none_or(|want| e.kind == want))
        .take(limit)
        .collect();
    Ok(Json(List { data }))
}

/// The filters of the plugin log.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PluginLogParams {
    plugin: Option<String>,
    level: Option<String>,
    request_id: Option<String>,
    limit: Option<usize>,
}

pub(super) async fn connection_plugin_log(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    params: Result<Query<PluginLogParams>, QueryRejection>,
) -> Result<Json<List<PluginLogEntry>>, ApiError> {
    let params = query(params)?;
    let c = connection(&state, &caller, &id).await?;
    let at_least = params
        .level
        .as_deref()
        .map(|l| {
            serde_json::from_value::<LogLevel>(Value::String(l.to_owned())).map_err(|_| {
                ApiError::bad_request(format!(
                    "level: `{l}` is not a log level; it is one of debug, info, warn, error"
                ))
            })
        })
        .transpose()?;
    let limit = params.limit.unwrap_or(100);
    if !(1..=PLUGIN_LOG_KEEP).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit is {limit}; it must be between 1 and {PLUGIN_LOG_KEEP}"
        )));
    }
    // What the monitor found before this request is in the log.
    state.inner.records.monitor().settled().await;
    let data = state
        .inner
        .store
        .plugin_log(&c.id)
        .await?
        .into_iter()
        .filter(|l| params.plugin.as_ref().is_none_or(|p| &l.plugin == p))
        .filter(|l| at_least.is_none_or(|min| l.level >= min))
        .filter(|l| {
            params
                .request_id
                .as_ref()
                .is_none_or(|r| l.request_id.as_ref() == Some(r))
        })
        .take(limit)
        .collect();
    Ok(Json(List { data }))
}

/// New credentials for a connection.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reauthorize {
    /// The credentials; verified against the upstream before they are stored.
    pub credentials: Credentials,
}

pub(super) async fn reauthorize(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Connection>, ApiError> {
    let c = connection(&state, &caller, &id).await?;
    let Reauthorize { credentials } = json_body(body)?;
    state.quotas().credentials(&credentials)?;
    if c.mode == Mode::Sandbox {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::SandboxConnection,
            format!("connection `{}` is a sandbox: it has no credentials", c.id),
        ));
    }
    // The stored base URL too: the operator may have narrowed what is allowed since.
    credentials.validate().map_err(|message| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidCredentials,
            message,
        )
    })?;
    outbound_addresses(
        &state,
        c.upstream.as_ref().map(|u| u.base_url.as_str()),
        &credentials,
    )?;
    let updated = state
        .inner
        .records
        .reauthorize(&c, credentials)
        .await
        .map_err(|e| match e {
            RecordsError::Upstream { error, .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::ReauthorizationFailed,
                format!("the new credentials were not accepted, and nothing was changed: {error}"),
            )
            .details(json!({"kind": error.kind, "upstream_status": error.status})),
            RecordsError::BadQuery(message) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidCredentials,
                message,
            ),
            other => other.into(),
        })?;
    Ok(Json(updated))
}

/// Checks the addresses a live connection will call against the outbound policy: its
/// base URL and, for OAuth, its token endpoint.
fn outbound_addresses(
    state: &AppState,
    base_url: Option<&str>,
    credentials: &Credentials,
) -> Result<(), ApiError> {
    if let Some(base_url) = base_url {
        outbound_url(
            state,
            "upstream.base_url",
            base_url,
            "; put them in `credentials`",
            ErrorCode::InvalidConnection,
        )?;
    }
    if let Credentials::Oauth2 { token_url, .. } = credentials {
        outbound_url(
            state,
            "credentials.token_url",
            token_url,
            "; put them in `client_id` and `client_secret`",
            ErrorCode::InvalidCredentials,
        )?;
    }
    Ok(())
}

/// Checks a new connection's upstream settings and credentials.
fn live_settings(
    state: &AppState,
    mode: Mode,
    upstream: Option<crate::connection::UpstreamConfig>,
    credentials: Option<Credentials>,
) -> Result<Option<(crate::connection::UpstreamConfig, Credentials)>, ApiError> {
    let invalid = |message: String| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidConnection,
            message,
        )
    };
    match (mode, upstream, credentials) {
        (Mode::Sandbox, None, None) => Ok(None),
        (Mode::Sandbox, _, _) => Err(invalid(
            "a sandbox connection takes no `upstream` nor `credentials`: it serves built-in data"
                .into(),
        )),
        (Mode::Live, Some(mut upstream), Some(credentials)) => {
            upstream.validate().map_err(invalid)?;
            credentials.validate().map_err(invalid)?;
            outbound_addresses(state, Some(&upstream.base_url), &credentials)?;
            if state.inner.records.sealer().is_none() {
                return Err(RecordsError::NoSecretKey.into());
            }
            upstream.auth = Some(credentials.kind());
            Ok(Some((upstream, credentials)))
        }
        (Mode::Live, None, _) => Err(invalid(
            "a live connection needs `upstream` (at least its `base_url`)".into(),
        )),
        (Mode::Live, _, None) => Err(invalid(
            "a live connection needs `credentials` (basic, bearer, oauth2 or api_key)".into(),
        )),
    }
}
