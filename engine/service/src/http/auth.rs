//! Who calls: the [`Caller`] extractor takes the key of `Authorization: Bearer <key>`
//! and finds it in the store (by the hash of its secret); a request without a known
//! key answers 401 `unauthorized`. What a caller may then do is its key's role and
//! tenant, checked by each handler.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::{ApiError, AppState, ErrorCode};
use crate::store::ApiKey;

/// The caller: the key that authenticated the request.
pub struct Caller(pub ApiKey);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let unauthorized = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthorized,
                "send `Authorization: Bearer <api key>`",
            )
        };
        let header = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(unauthorized)?;
        let secret = header.strip_prefix("Bearer ").ok_or_else(unauthorized)?;
        let key = state
            .inner
            .store
            .key_by_secret(secret.trim())
            .await?
            .ok_or_else(unauthorized)?;
        Ok(Caller(key))
    }
}
