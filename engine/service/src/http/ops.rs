//! The endpoints about the service itself rather than a tenant's resources: the
//! OpenAPI document, the metrics (for admin keys), and the HTTP floor that benchmarks
//! measure transforms against.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState, Caller, ErrorCode, openapi, routes};
use crate::store::Role;

/// The OpenAPI document, with this server's quotas in its schemas.
pub(super) async fn serve_openapi(State(state): State<AppState>) -> Response {
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
pub(super) async fn metrics(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    if caller.0.role != Role::Admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "only an admin key reads the metrics",
        ));
    }
    let text = state.inner.metrics.render(
        state.inner.host.compilations(),
        &state.inner.records.monitor().plugin_log_counts(),
    );
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
pub(super) async fn floor(
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
