//! Outbound URLs: a URL the service will call (a webhook, a live upstream, a token
//! endpoint) is checked against the egress policy as it is stored, and a refused one
//! answers 422 with what was refused and why.

use axum::http::StatusCode;
use serde_json::json;

use super::{ApiError, AppState, ErrorCode};

/// A URL that the service will call (a webhook, a live upstream, a token endpoint),
/// checked as it is stored: 422 `address_not_allowed` when its address is refused
/// (details: the field, the address, the rule and its range), else 422 with
/// `invalid_code` when it is not an http or https URL without a user or password.
pub(super) fn outbound_url(
    state: &AppState,
    field: &'static str,
    url: &str,
    hint: &'static str,
    invalid_code: ErrorCode,
) -> Result<url::Url, ApiError> {
    use crate::egress::UrlError;
    state
        .inner
        .egress
        .check_url(field, url, hint)
        .map_err(|e| match &e {
            UrlError::Refused { refusal, .. } => {
                let mut details = refusal.details();
                details["field"] = json!(field);
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorCode::AddressNotAllowed,
                    e.to_string(),
                )
                .details(details)
            }
            _ => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                invalid_code,
                e.to_string(),
            )
            .details(json!({"field": field})),
        })
}
