//! What the service records of each request: a request id, a span with a log line
//! (tracing), and the request metrics.
//!
//! tower-http's layers do the work, installed after routing by [`install`], so that the
//! route is the matched template (`/v1/connections/{id}`), never the ids in the path.
//! The request id is the client's `x-request-id` when it sends a usable one (short and
//! plain), or a new one ([`NewRequestId`]); it is answered in the same header, is the
//! [`RequestId`] extension that handlers read, and is a field of the span, and so of
//! every log line of the request.

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tower::ServiceBuilder;
use tower_http::request_id::{self, MakeRequestId, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

use super::{AppState, RequestId};

/// The header that carries the request id, both ways.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The longest request id taken from a client.
const MAX_REQUEST_ID: usize = 64;

/// `router` with the request's layers, outermost first: a client's id that is not
/// usable is dropped; a request without one gets a new one (`SetRequestIdLayer`); the
/// response answers it (`PropagateRequestIdLayer`); `TraceLayer` opens the request's
/// span and logs the answer; and [`record`] hands the id to handlers and counts the
/// request. `Router::layer` puts them after routing, around each route and fallback.
pub(super) fn install(router: Router<AppState>, state: AppState) -> Router<AppState> {
    let header = HeaderName::from_static(REQUEST_ID_HEADER);
    router.layer(
        ServiceBuilder::new()
            .map_request(drop_unusable_id)
            .layer(SetRequestIdLayer::new(header.clone(), NewRequestId))
            .layer(PropagateRequestIdLayer::new(header))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(span)
                    .on_request(())
                    .on_response(answered)
                    .on_body_chunk(())
                    .on_eos(())
                    .on_failure(()),
            )
            .layer(axum::middleware::from_fn_with_state(state, record)),
    )
}

/// Makes the ids of requests that come without a usable one: 16 random hex digits.
#[derive(Debug, Clone, Copy)]
struct NewRequestId;

impl MakeRequestId for NewRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<request_id::RequestId> {
        HeaderValue::try_from(new_request_id())
            .ok()
            .map(request_id::RequestId::new)
    }
}

fn new_request_id() -> String {
    hex::encode(crate::ids::random_bytes::<8>())
}

/// A client's request id is kept when it is short and plain.
fn usable(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Removes the client's request id when it is not usable, so that the request gets a
/// new one.
fn drop_unusable_id(mut request: Request) -> Request {
    let keep = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .is_none_or(|id| id.to_str().is_ok_and(usable));
    if !keep {
        request.headers_mut().remove(REQUEST_ID_HEADER);
    }
    request
}

/// The request's id (set by `SetRequestIdLayer`, so always there).
fn id_of(request: &Request) -> Option<&str> {
    request
        .extensions()
        .get::<request_id::RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
}

/// The matched route template, or `unmatched` for the fallbacks.
fn route_of(request: &Request) -> &str {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
}

/// The request's span: every log line of the request carries its fields.
fn span(request: &Request) -> Span {
    let id = id_of(request).unwrap_or_default();
    let route = route_of(request);
    tracing::info_span!("request", request_id = %id, method = %request.method(), route = %route)
}

/// The log line of an answer, in the request's span: an error for a 5xx.
fn answered(response: &Response, took: Duration, _: &Span) {
    let status = response.status().as_u16();
    let took_ms = took.as_secs_f64() * 1e3;
    if status >= 500 {
        tracing::error!(status, took_ms, "answered");
    } else {
        tracing::info!(status, took_ms, "answered");
    }
}

/// Gives handlers the request id ([`RequestId`]) and counts the request in the
/// metrics, by method, route template and status.
async fn record(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    if let Some(id) = id_of(&request).map(str::to_owned) {
        request.extensions_mut().insert(RequestId(id));
    }
    let response = next.run(request).await;
    state.metrics().request(
        method.as_str(),
        route.as_ref().map_or("unmatched", MatchedPath::as_str),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
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

    #[test]
    fn unusable_ids_are_dropped_and_usable_ones_kept() {
        let with = |id: &str| {
            Request::builder()
                .header(REQUEST_ID_HEADER, id)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let kept = drop_unusable_id(with("req-7"));
        assert_eq!(kept.headers()[REQUEST_ID_HEADER], "req-7");
        for bad in ["has space", "é", &"x".repeat(MAX_REQUEST_ID + 1)] {
            let dropped = drop_unusable_id(with(bad));
            assert!(dropped.headers().get(REQUEST_ID_HEADER).is_none(), "{bad}");
        }
    }
}
