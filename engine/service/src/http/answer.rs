//! What handlers answer: the [`List`] shape of every listing, and answers bounded in
//! size: `max_answer_bytes`.
//!
//! A JSON answer is serialised once, into a buffer that refuses to grow past the
//! service's `max_answer_bytes`; an answer that would is never built whole and gets a
//! 422 `limit_exceeded` naming the limit instead. Records that a mapping failed because
//! of a limit (`max_record_bytes`, a JSONPath budget in strict mode, or the records
//! before them filling `max_answer_bytes`) get the same code, with the limit in their
//! `details`.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use super::ApiError;
use crate::error_body::{At, ErrorBody};
use crosswalk_core::mapping::RecordError;
use crosswalk_core::mapping::limits::write_json_within;
use crosswalk_core::path::Limit;

/// A list answer.
#[derive(Serialize, JsonSchema)]
pub struct List<T> {
    /// The items.
    pub data: Vec<T>,
}

/// 422 `limit_exceeded` for `limit`, with `message` saying what broke it.
pub fn limit_exceeded(limit: Limit, message: impl Into<String>) -> ApiError {
    ApiError::unprocessable(ErrorBody::limit(limit, message, None))
}

/// The answer of a record that failed to map on its own (a one-record transform or
/// read): 422, `limit_exceeded` when a limit failed it, else `record_failed`.
pub fn record_failed(e: &RecordError) -> ApiError {
    ApiError::unprocessable(ErrorBody::record(e, None))
}

/// A record of a batch that failed, in the API's error shape, at its index.
pub fn record_error(e: &RecordError, index: usize) -> Value {
    ErrorBody::record(e, Some(At::Index(index))).to_value()
}

/// The first record of a batch that the records before it pushed past
/// `max_answer_bytes`, as the answer's error: the whole answer cannot be given.
pub fn answer_full<'a, R: 'a>(
    mut records: impl Iterator<Item = &'a Result<R, RecordError>>,
) -> Result<(), ApiError> {
    match records.find_map(|r| match r {
        Err(e @ RecordError::AnswerFull(_)) => Some(e),
        _ => None,
    }) {
        Some(RecordError::AnswerFull(limit)) => Err(too_large(*limit)),
        _ => Ok(()),
    }
}

fn too_large(limit: Limit) -> ApiError {
    limit_exceeded(
        limit,
        format!(
            "the answer would be larger than {} bytes (limit `{}`): ask for fewer records at a time",
            limit.max, limit.name
        ),
    )
}

/// `value` as a JSON answer, serialised once: a 422 naming `limit` instead when it
/// would be larger.
pub fn json(value: &impl Serialize, limit: Limit) -> Result<Response, ApiError> {
    let mut out = Vec::with_capacity(1024);
    match write_json_within(&mut out, value, limit.max) {
        Ok(()) => Ok((
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            out,
        )
            .into_response()),
        Err(e) if e.is_io() => Err(too_large(limit)),
        Err(e) => Err(ApiError::internal(&e)),
    }
}

/// A JSON answer that `write` writes as text (records already JSON, copied in): a 422
/// naming `limit` instead when it is larger.
pub fn json_text(limit: Limit, write: impl FnOnce(&mut Vec<u8>)) -> Result<Response, ApiError> {
    let mut out = Vec::with_capacity(1024);
    write(&mut out);
    if out.len() as u64 > limit.max {
        return Err(too_large(limit));
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        out,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error_body::ErrorCode;
    use serde_json::json;

    const LIMIT: Limit = Limit {
        name: "max_answer_bytes",
        max: 20,
    };

    #[test]
    fn an_answer_over_the_limit_is_refused_naming_it() {
        assert!(json(&json!({"data": [1, 2]}), LIMIT).is_ok());
        let e = json(&json!({"data": "x".repeat(100)}), LIMIT).unwrap_err();
        assert_eq!(e.code(), ErrorCode::LimitExceeded, "{e:?}");
        let body = format!("{e:?}");
        assert!(body.contains("max_answer_bytes"), "{body}");
    }
}
