//! The content types that endpoints with a body accept: JSON, and NDJSON where records
//! are streamed. Anything else is refused with 415 before the body is read, instead of
//! being read as JSON whatever it says it is.
//!
//! A request without a `Content-Type` is read as JSON: `curl -d @file.json` sends
//! `application/x-www-form-urlencoded`, which is refused, but a client that sends no
//! type at all gets the benefit of the doubt.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::ErrorCode;
use super::{ApiError, ndjson};

/// Whether a media type is JSON: `application/json` or `application/<x>+json`, with
/// any parameters (`; charset=utf-8`), in any case.
pub fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}

/// Lets through requests whose body is JSON (or has no type).
pub async fn json(request: Request, next: Next) -> Response {
    match refused(&request, &["application/json"], is_json) {
        Some(refusal) => refusal.into_response(),
        None => next.run(request).await,
    }
}

/// Lets through requests whose body is JSON or NDJSON (or has no type).
pub async fn records(request: Request, next: Next) -> Response {
    let accepted = ["application/json", ndjson::CONTENT_TYPE];
    match refused(&request, &accepted, |t| is_json(t) || ndjson::is_ndjson(t)) {
        Some(refusal) => refusal.into_response(),
        None => next.run(request).await,
    }
}

/// The 415 for a request whose content type is not accepted.
fn refused(request: &Request, accepted: &[&str], ok: impl Fn(&str) -> bool) -> Option<ApiError> {
    let value = request.headers().get(CONTENT_TYPE)?;
    let text = String::from_utf8_lossy(value.as_bytes());
    if ok(&text) {
        return None;
    }
    Some(
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            format!(
                "this endpoint takes {}, not `{text}`; send `Content-Type: application/json`",
                accepted
                    .iter()
                    .map(|t| format!("`{t}`"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        )
        .details(json!({"content_type": text, "accepted": accepted})),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_types_with_parameters_and_suffixes_are_json() {
        for t in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/merge-patch+json",
            "application/vnd.api+json;charset=UTF-8",
        ] {
            assert!(is_json(t), "{t}");
        }
        for t in [
            "text/plain",
            "multipart/form-data; boundary=x",
            "application/x-www-form-urlencoded",
            "application/jsonx",
            "text/json+plain",
            "",
        ] {
            assert!(!is_json(t), "{t}");
        }
    }
}
