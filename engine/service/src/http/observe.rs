//! What the service records of each request: a request id, a structured log line
//! (tracing), and the request metrics.
//!
//! The middleware runs after routing, so the route is the matched template
//! (`/v1/connections/{id}`), never the ids in the path. The request id is the
//! client's `x-request-id` when it sends a usable one, or a new one; it is answered in
//! the same header and is a field of every log line of the request.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use super::AppState;

/// The header that carries the request id, both ways.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The longest request id taken from a client.
const MAX_REQUEST_ID: usize = 64;

/// Times, logs and counts one request.
pub(super) async fn observe(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| usable(v))
        .map_or_else(new_request_id, str::to_owned);
    request
        .extensions_mut()
        .insert(super::RequestId(id.clone()));
    let span = tracing::info_span!("request", request_id = %id, method = %method, route = %route);
    let mut response = next.run(request).instrument(span.clone()).await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    state
        .metrics()
        .request(method.as_str(), &route, status, took);
    span.in_scope(|| {
        let took_ms = took.as_secs_f64() * 1e3;
        if status >= 500 {
            tracing::error!(status, took_ms, "answered");
        } else {
            tracing::info!(status, took_ms, "answered");
        }
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// A client's request id is kept when it is short and plain.
fn usable(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// 16 random hex digits.
fn new_request_id() -> String {
    let mut bytes = [0u8; 8];
    // Without randomness the id is still unique enough per process: the clock.
    if getrandom::fill(&mut bytes).is_err() {
        bytes = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64)
            .to_be_bytes();
    }
    crate::ids::hex(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_from_clients_are_kept_only_when_plain() {
        assert!(usable("req-42_a.b:c"));
        assert!(!usable(""));
        assert!(!usable("has space"));
        assert!(!usable(&"x".repeat(MAX_REQUEST_ID + 1)));
        let id = new_request_id();
        assert_eq!(id.len(), 16);
        assert!(usable(&id));
        assert_ne!(id, new_request_id());
    }
}
