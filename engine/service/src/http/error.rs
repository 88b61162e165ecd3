//! The one error shape of the API: `{"error": {"code", "message", "details"}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Value, json};

use crate::connection::ChangeError;
use crate::quota::LimitExceeded;
use crate::store::StoreError;
use crosswalk_core::mapping::SpecErrors;
use crosswalk_plugin_host::PoolError;

/// Every `code` the API answers, in one place: HTTP error bodies, NDJSON error lines and
/// a batch's failed records all take theirs from here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// An outbound address the operator's policy does not allow (422).
    AddressNotAllowed,
    /// An NDJSON line that is not a JSON record.
    BadBody,
    /// A malformed request: its JSON, query or headers (400).
    BadRequest,
    /// The tenant's share of the plugin pool stayed full (503, with `Retry-After`).
    Busy,
    /// The connection's breaker fails calls fast (503, with `Retry-After`).
    CircuitOpen,
    /// The key may not do this: an admin-only endpoint (403).
    Forbidden,
    /// The service failed (500); its log has the request id.
    Internal,
    /// A mapping change that cannot apply: an unknown or pruned version, a plugin not uploaded (422).
    InvalidChange,
    /// A connection's settings that do not fit its mode (422).
    InvalidConnection,
    /// Credentials that are not well formed (422).
    InvalidCredentials,
    /// A plugin binding's limits out of range (422).
    InvalidLimits,
    /// A mapping that does not validate; `details` lists every problem (422).
    InvalidMapping,
    /// An upload that is not a loadable plugin (422).
    InvalidPlugin,
    /// A record to write that does not fit the entity's write schema (422).
    InvalidRecord,
    /// A webhook subscription that is not valid (422).
    InvalidSubscription,
    /// A limit or quota was reached; `details` names it and its value (422).
    LimitExceeded,
    /// The endpoint does not take that method (405).
    MethodNotAllowed,
    /// The upstream refused the connection's credentials: reauthorize it.
    NeedsReauth,
    /// Live connections need `CROSSWALK_SECRET_KEY`, which the service was started without.
    NoSecretKey,
    /// Nothing of that id that the caller can see (404).
    NotFound,
    /// The body is over the service's body limit (413).
    PayloadTooLarge,
    /// A plugin still bound to a mapping cannot be deleted (409).
    PluginBound,
    /// The upstream asked to wait (429, with `Retry-After`).
    RateLimited,
    /// The upstream did not accept the new credentials; nothing changed (422).
    ReauthorizationFailed,
    /// A record that could not be mapped (422, or an error line or entry in a batch).
    RecordFailed,
    /// A sandbox connection has no credentials to change (422).
    SandboxConnection,
    /// No key, or one that is not valid (401).
    Unauthorized,
    /// A source system Crosswalk does not know (422).
    UnknownSystem,
    /// A body in a media type the endpoint does not read (415).
    UnsupportedMediaType,
    /// A write that sets fields the mapping cannot write back (422).
    UnwritableFields,
    /// The source system refused a write or a read (its answer is in `details`).
    UpstreamRejected,
    /// `If-Match` names another version than the current one (412).
    VersionMismatch,
    /// The source system refused this entity to the connection's credentials (502).
    UpstreamPermission,
    /// The source system did not answer in time (504).
    UpstreamTimeout,
    /// The source system could not be reached (502).
    UpstreamUnreachable,
    /// The source system failed: a 5xx, or an answer its API does not give (502).
    UpstreamError,
}

/// The body of every error answer.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ErrorDetail {
    /// A stable code, for programs: `not_found`, `invalid_mapping`, `record_failed`, …
    pub code: ErrorCode,
    /// What went wrong, for people: it names the field, path, plugin or limit.
    pub message: String,
    /// More, by code: the line and column of malformed JSON, the problems of an
    /// invalid mapping, the index or line of a failed record; `null` when there is
    /// nothing more.
    pub details: Value,
}

/// An error answer: a status, a stable code, a message for people and details.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    message: String,
    details: Value,
    /// `Retry-After` in seconds, for 429 and 503 (0: none; a `u32` beside the status
    /// keeps errors small).
    retry_after: u32,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Value::Null,
            retry_after: 0,
        }
    }

    /// Its code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// With details.
    pub fn details(mut self, details: Value) -> ApiError {
        self.details = details;
        self
    }

    /// 404 for something the caller cannot see (including another tenant's).
    pub fn not_found(what: &str, id: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("no {what} `{id}`"),
        )
    }

    /// 400 for a malformed request.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
    }

    /// 422 for a mapping that does not validate, listing every problem.
    pub fn invalid(errors: &SpecErrors) -> ApiError {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidMapping,
            errors.to_string(),
        )
        .details(json!({"problems": errors.0.iter().map(ToString::to_string).collect::<Vec<_>>()}))
    }

    /// 500: the cause is logged, the client sees a clean message.
    pub fn internal(cause: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(%cause, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "internal error; the server's log has the cause",
        )
    }

    /// Adds `Retry-After` (whole seconds, at least 1).
    pub fn retry_after(mut self, wait: std::time::Duration) -> ApiError {
        let seconds = wait.as_millis().div_ceil(1000).max(1);
        self.retry_after = u32::try_from(seconds).unwrap_or(u32::MAX);
        self
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::internal(&e)
    }
}

/// A share of the plugin pool: a mapping that needs more than a tenant's share is
/// 422 `limit_exceeded`; a share that stayed busy is 503 `busy` with `Retry-After`.
impl From<PoolError> for ApiError {
    fn from(e: PoolError) -> Self {
        let message = e.to_string();
        match e {
            PoolError::OverShare {
                limit, max, actual, ..
            } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::LimitExceeded,
                message,
            )
            .details(json!({"limit": limit, "max": max, "actual": actual})),
            PoolError::Busy {
                limit,
                max,
                waited_ms,
                retry_after,
                ..
            } => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Busy, message)
                .details(json!({"limit": limit, "max": max, "waited_ms": waited_ms}))
                .retry_after(retry_after),
        }
    }
}

impl From<ChangeError> for ApiError {
    fn from(e: ChangeError) -> Self {
        match e {
            ChangeError::Invalid(errors) => ApiError::invalid(&errors),
            ChangeError::Limit(e) => e.into(),
            ChangeError::Store(e) => ApiError::internal(&e),
            e @ ChangeError::Interrupted { .. } => ApiError::internal(&e),
            ChangeError::VersionMismatch { expected, current } => ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                ErrorCode::VersionMismatch,
                ChangeError::VersionMismatch { expected, current }.to_string(),
            )
            .details(json!({"expected": expected, "current": current})),
            ChangeError::Share(e) => e.into(),
            other => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidChange,
                other.to_string(),
            ),
        }
    }
}

/// 422 `limit_exceeded`: the limit, its value and what the request came to.
impl From<LimitExceeded> for ApiError {
    fn from(e: LimitExceeded) -> Self {
        let details = e.details();
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::LimitExceeded,
            e.message,
        )
        .details(details)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                details: self.details,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.retry_after > 0 {
            response.headers_mut().insert(
                "retry-after",
                axum::http::HeaderValue::from(self.retry_after),
            );
        }
        response
    }
}
