//! A failed upstream call: [`UpstreamError`], with the [`ErrorKind`] that the
//! connection's health and breaker count, and how it is made from what went wrong — an
//! address the egress policy refused, a transport failure (timeout, no connection), or
//! a non-success answer (its kind from the status, its message from the body, and a
//! 429's `Retry-After`, [`parse_retry_after`]).

use std::time::Duration;

use crate::connection::health::ErrorKind;
use crate::egress::{Refusal, SendError};

/// A failed upstream call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct UpstreamError {
    /// What kind of failure, for health and the breaker.
    pub kind: ErrorKind,
    /// The upstream's HTTP status, when it answered.
    pub status: Option<u16>,
    /// What happened, without credentials.
    pub message: String,
    /// How long the upstream asked us to wait (429 `Retry-After`).
    pub retry_after: Option<Duration>,
}

impl UpstreamError {
    /// An error without `Retry-After`.
    pub(super) fn new(
        kind: ErrorKind,
        status: Option<u16>,
        message: impl Into<String>,
    ) -> UpstreamError {
        UpstreamError {
            kind,
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// An answer that is not what the protocol promises (a missing array, a link that
    /// is not a URL): [`ErrorKind::BadResponse`], without a status.
    pub(super) fn bad_response(message: impl Into<String>) -> UpstreamError {
        UpstreamError::new(ErrorKind::BadResponse, None, message)
    }
}

/// The error of a call whose address is refused: nothing was sent.
fn refused(refusal: &Refusal) -> UpstreamError {
    UpstreamError::new(
        ErrorKind::Network,
        None,
        format!(
            "the upstream is unreachable: its address is refused: {refusal}; outbound calls do not go to loopback, private, link-local or metadata addresses unless the operator allows the range (crosswalk serve --allow-upstream CIDR)"
        ),
    )
}

/// The error of a call that failed or was refused.
pub(super) fn send_error(e: &SendError, timeout: Duration) -> UpstreamError {
    match e {
        SendError::Refused(refusal) => refused(refusal),
        SendError::Http(e) => transport(e, timeout),
    }
}

/// A failure before any answer: a timeout or no connection.
pub(super) fn transport(e: &reqwest::Error, timeout: Duration) -> UpstreamError {
    if e.is_timeout() {
        UpstreamError::new(
            ErrorKind::Timeout,
            None,
            format!(
                "the upstream did not answer within {} ms",
                timeout.as_millis()
            ),
        )
    } else {
        // reqwest's message names the URL (no credentials: those are in headers).
        let mut source: Option<&dyn std::error::Error> = Some(e);
        let mut chain = Vec::new();
        while let Some(s) = source {
            chain.push(s.to_string());
            source = s.source();
        }
        UpstreamError::new(
            ErrorKind::Network,
            None,
            format!("the upstream is unreachable: {}", chain.join(": ")),
        )
    }
}

/// The error of a non-success answer: its kind from the status, its message from the
/// body (the first 300 characters).
pub(super) async fn answer_error(response: reqwest::Response) -> UpstreamError {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let body = response.text().await.unwrap_or_default();
    let snippet: String = body.chars().take(300).collect();
    UpstreamError {
        kind: status_kind(status),
        status: Some(status),
        message: format!("the upstream answered {status}: {snippet}"),
        retry_after,
    }
}

/// The kind of failure a non-success status is.
fn status_kind(status: u16) -> ErrorKind {
    match status {
        401 => ErrorKind::Auth,
        403 => ErrorKind::Permission,
        408 | 504 => ErrorKind::Timeout,
        429 => ErrorKind::RateLimit,
        400 | 409 | 412 | 422 => ErrorKind::Rejected,
        500..=599 => ErrorKind::Upstream5xx,
        _ => ErrorKind::BadResponse,
    }
}

/// `Retry-After`: seconds, or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("soon"), None);
        // A date in the past is no wait at all.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let later = (chrono::Utc::now() + chrono::Duration::seconds(120)).to_rfc2822();
        let wait = parse_retry_after(&later).unwrap();
        assert!(wait > Duration::from_secs(100) && wait <= Duration::from_secs(120));
    }

    #[test]
    fn a_status_says_what_kind_of_failure_it_is() {
        assert_eq!(status_kind(401), ErrorKind::Auth);
        assert_eq!(status_kind(403), ErrorKind::Permission);
        assert_eq!(status_kind(504), ErrorKind::Timeout);
        assert_eq!(status_kind(429), ErrorKind::RateLimit);
        assert_eq!(status_kind(422), ErrorKind::Rejected);
        assert_eq!(status_kind(503), ErrorKind::Upstream5xx);
        assert_eq!(status_kind(302), ErrorKind::BadResponse);
    }
}
