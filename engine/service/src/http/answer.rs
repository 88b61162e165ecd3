//! What handlers answer: the [`List`] shape of every listing, and answers bounded in
//! size: `max_answer_bytes`.
//!
//! A JSON answer is serialised once, into a buffer that refuses to grow past the
//! service's `max_answer_bytes`; an answer that would is never built whole and gets a
//! 422 `limit_exceeded` naming the limit instead. Records that a mapping failed because
//! of a limit (`max_record_bytes`, a JSONPath budget in strict mode, or the records
//! before them filling `max_answer_bytes`) get the same code, with the limit in their
//! `details`.

use std::io;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Value, json};

use super::ApiError;
use super::error::ErrorCode;
use crosswalk_core::mapping::RecordError;
use crosswalk_core::path::Limit;

/// A list answer.
#[derive(Serialize, JsonSchema)]
pub struct List<T> {
    /// The items.
    pub data: Vec<T>,
}

/// 422 `limit_exceeded` for `limit`, with `message` saying what broke it.
pub fn limit_exceeded(limit: Limit, message: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::LimitExceeded,
        message,
    )
    .details(json!({"limit": limit.name, "max": limit.max}))
}

/// The answer of a record that failed to map on its own (a one-record transform or
/// read): 422, `limit_exceeded` when a limit failed it, else `record_failed`.
pub fn record_failed(e: &RecordError) -> ApiError {
    match e.limit() {
        Some(limit) => limit_exceeded(limit, e.to_string()),
        None => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::RecordFailed,
            e.to_string(),
        ),
    }
}

/// A record of a batch that failed, in the API's error shape, at its index.
pub fn record_error(e: &RecordError, index: usize) -> Value {
    match e.limit() {
        Some(limit) => json!({"error": {
            "code": ErrorCode::LimitExceeded,
            "message": e.to_string(),
            "details": {"index": index, "limit": limit.name, "max": limit.max},
        }}),
        None => {
            json!({"error": {"code": ErrorCode::RecordFailed, "message": e.to_string(), "details": {"index": index}}})
        }
    }
}

/// The first record of a batch that the records before it pushed past
/// `max_answer_bytes`, as the answer's error: the whole answer cannot be given.
pub fn answer_full<'a>(
    mut records: impl Iterator<Item = &'a Result<Value, RecordError>>,
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
    let mut out = Capped {
        bytes: Vec::with_capacity(1024),
        cap: usize::try_from(limit.max).unwrap_or(usize::MAX),
    };
    match serde_json::to_writer(&mut out, value) {
        Ok(()) => Ok((
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            out.bytes,
        )
            .into_response()),
        Err(e) if e.is_io() => Err(too_large(limit)),
        Err(e) => Err(ApiError::internal(&e)),
    }
}

/// One NDJSON line of `value`, appended to `out`: an error line naming `limit` instead
/// when it would be larger than the limit.
pub fn ndjson_line(out: &mut Vec<u8>, value: &Value, limit: Limit, line: usize) {
    let start = out.len();
    let mut capped = Capped {
        bytes: std::mem::take(out),
        cap: start.saturating_add(usize::try_from(limit.max).unwrap_or(usize::MAX)),
    };
    let fits = serde_json::to_writer(&mut capped, value).is_ok();
    *out = capped.bytes;
    if !fits {
        out.truncate(start);
        let error = json!({"error": {
            "code": ErrorCode::LimitExceeded,
            "message": format!(
                "the answer line would be larger than {} bytes (limit `{}`)",
                limit.max, limit.name
            ),
            "details": {"line": line, "limit": limit.name, "max": limit.max},
        }});
        serde_json::to_writer(&mut *out, &error).expect("a JSON value serializes");
    }
    out.push(b'\n');
}

/// A buffer that fails a write that would take it past its cap.
struct Capped {
    bytes: Vec<u8>,
    cap: usize,
}

impl io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes.len() + buf.len() > self.cap {
            return Err(io::Error::other("over the answer limit"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn an_ndjson_line_over_the_limit_becomes_an_error_line() {
        let mut out = b"{}\n".to_vec();
        ndjson_line(&mut out, &json!({"a": 1}), LIMIT, 2);
        ndjson_line(&mut out, &json!({"a": "x".repeat(100)}), LIMIT, 3);
        let lines: Vec<Value> = out
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines[1], json!({"a": 1}));
        assert_eq!(lines[2]["error"]["code"], "limit_exceeded");
        assert_eq!(lines[2]["error"]["details"]["line"], 3);
        assert_eq!(lines[2]["error"]["details"]["limit"], "max_answer_bytes");
    }
}
