//! The API's error vocabulary, in one place for every writer of errors: HTTP error
//! answers ([`crate::http::ApiError`]), the error lines of an NDJSON answer, the failed
//! records of a batch, and `crosswalk map --ndjson`. One [`ErrorCode`] enum, one
//! [`ErrorBody`] shape, `{"error": {"code", "message", "details"}}`, and one rule for a
//! record that failed ([`ErrorBody::record`]): `limit_exceeded` with the limit when a
//! limit failed it, else `record_failed`.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

use crosswalk_core::mapping::RecordError;
use crosswalk_core::path::Limit;

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
    /// A JSONPath that is not valid RFC 9535 (`details.position`: where it stops being
    /// valid), or one refused as too costly (`details.refused`) (422).
    InvalidJsonpath,
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
    /// A webhook test asked for while the subscription's last one is still in the
    /// outbox (409).
    TestPending,
    /// The store cannot be reached now: a shared database that is down or whose pool
    /// stayed busy (503, with `Retry-After`). Nothing was changed.
    StoreUnavailable,
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
    /// A live connection's credentials, checked at its creation (`verify`), were refused
    /// or could not be checked; nothing was created (422).
    VerificationFailed,
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

/// Where in a batch an error is: the record's index in a JSON batch, or its line in
/// an NDJSON body (1-based). It is written in `details` as `index` or `line`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// The record's 0-based index in the batch.
    Index(usize),
    /// The record's 1-based line in the NDJSON body.
    Line(usize),
}

impl At {
    fn details(self) -> Map<String, Value> {
        let mut details = Map::new();
        match self {
            At::Index(i) => details.insert("index".into(), i.into()),
            At::Line(n) => details.insert("line".into(), n.into()),
        };
        details
    }
}

impl ErrorBody {
    /// An error with `details` (`null` for none).
    pub fn new(code: ErrorCode, message: impl Into<String>, details: Value) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code,
                message: message.into(),
                details,
            },
        }
    }

    /// An error at a place of a batch: `details` holds the place.
    pub fn at(at: At, code: ErrorCode, message: impl Into<String>) -> ErrorBody {
        ErrorBody::new(code, message, Value::Object(at.details()))
    }

    /// A broken limit, at a place of a batch when it is one record's: `limit_exceeded`
    /// with the place, the limit's name (`limit`) and its value (`max`) in `details`.
    pub fn limit(limit: Limit, message: impl Into<String>, at: Option<At>) -> ErrorBody {
        let mut details = at.map(At::details).unwrap_or_default();
        details.insert("limit".into(), limit.name.into());
        details.insert("max".into(), limit.max.into());
        ErrorBody::new(ErrorCode::LimitExceeded, message, Value::Object(details))
    }

    /// A record that failed to map, at its place: `limit_exceeded` naming the limit when
    /// a limit failed it, else `record_failed`.
    pub fn record(e: &RecordError, at: Option<At>) -> ErrorBody {
        match e.limit() {
            Some(limit) => ErrorBody::limit(limit, e.to_string(), at),
            None => ErrorBody::new(
                ErrorCode::RecordFailed,
                e.to_string(),
                at.map_or(Value::Null, |at| Value::Object(at.details())),
            ),
        }
    }

    /// As a JSON value, for an answer that mixes records and errors.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("an error body serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_failed_record_names_its_place_and_the_limit_that_failed_it() {
        let limit = Limit {
            name: "max_record_bytes",
            max: 10,
        };
        assert_eq!(
            ErrorBody::record(&RecordError::TooLarge(limit), Some(At::Line(3))).to_value(),
            json!({"error": {
                "code": "limit_exceeded",
                "message": "the mapped record is larger than 10 bytes (limit `max_record_bytes`)",
                "details": {"line": 3, "limit": "max_record_bytes", "max": 10},
            }})
        );
        let not_an_object = RecordError::NotAnObject { found: "a string" };
        assert_eq!(
            ErrorBody::record(&not_an_object, Some(At::Index(1))).to_value(),
            json!({"error": {
                "code": "record_failed",
                "message": "a source record must be a JSON object, not a string",
                "details": {"index": 1},
            }})
        );
        assert_eq!(
            ErrorBody::record(&not_an_object, None).to_value()["error"]["details"],
            Value::Null
        );
    }
}
