//! HTTP error answers: [`ApiError`], a status with the API's one error shape
//! ([`ErrorBody`], from [`crate::error_body`]), and the conversions from the service's
//! error types.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::connection::ChangeError;
pub use crate::error_body::{ErrorBody, ErrorCode, ErrorDetail};
use crate::quota::LimitExceeded;
use crate::store::StoreError;
use crosswalk_core::mapping::SpecErrors;
use crosswalk_plugin_host::PoolError;

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

    /// 422 with `body`: a request that is well formed but refused.
    pub fn unprocessable(body: ErrorBody) -> ApiError {
        let ErrorDetail {
            code,
            message,
            details,
        } = body.error;
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message).details(details)
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

    /// 422 for a mapping that does not validate, listing every problem, and beside
    /// each (`targets`, index for index) the target it concerns and, for a JSONPath
    /// that does not parse, the position where it stops being valid.
    pub fn invalid(errors: &SpecErrors) -> ApiError {
        let targets: Vec<Value> = errors
            .0
            .iter()
            .map(|e| json!({"target": e.target(), "position": e.position()}))
            .collect();
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidMapping,
            errors.to_string(),
        )
        .details(json!({
            "problems": errors.0.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "targets": targets,
        }))
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

/// A store that cannot be reached is 503 `store_unavailable` with `Retry-After`: the
/// request changed nothing and may be tried again. Any other store failure is a 500.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::StoreUnavailable,
                format!("{e}; try again shortly"),
            )
            .retry_after(STORE_RETRY_AFTER),
            e => ApiError::internal(&e),
        }
    }
}

/// The wait a 503 `store_unavailable` asks for.
const STORE_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

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
            ChangeError::Store(e) => e.into(),
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
        let body = ErrorBody::new(self.code, self.message, self.details);
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
