//! OAuth 2.0 client credentials (RFC 6749 §4.4): the connection's [`AccessToken`],
//! taken from the token endpoint, kept while it has more than 30 s left, and replaced
//! once when the upstream refuses it. Its refresh is single flight: requests that find
//! the token expired together wait for one fetch and share its token.

use std::time::{Duration, Instant};

use serde::Deserialize;

use super::error::{UpstreamError, answer_error, send_error};
use crate::connection::health::ErrorKind;
use crate::egress::Outbound;

/// How long before its expiry a token is no longer used.
const MARGIN: Duration = Duration::from_secs(30);

/// How long a token lives when the token endpoint does not say.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// The client that asks for tokens: borrowed from the connection's
/// [`Credentials::Oauth2`](super::Credentials::Oauth2).
pub(super) struct Client<'a> {
    /// The token endpoint.
    pub token_url: &'a str,
    /// The client id.
    pub client_id: &'a str,
    /// The client secret.
    pub client_secret: &'a str,
    /// The scope to ask for.
    pub scope: Option<&'a str>,
}

/// A connection's current access token and when it expires.
#[derive(Default)]
pub(super) struct AccessToken {
    /// Held while a new token is fetched (single flight): a tokio lock, because it is
    /// held across the token endpoint's call.
    cached: tokio::sync::Mutex<Option<(String, Instant)>>,
}

impl AccessToken {
    /// The access token: the cached one while it has more than 30 s left (and is not
    /// the one that was `refused`), else a new one from `client`'s token endpoint,
    /// called through `http` within `timeout`.
    pub(super) async fn get(
        &self,
        http: &Outbound,
        timeout: Duration,
        client: Client<'_>,
        refused: Option<&str>,
    ) -> Result<String, UpstreamError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, expires)) = cached.as_ref()
            && *expires > Instant::now() + MARGIN
            && Some(token.as_str()) != refused
        {
            return Ok(token.clone());
        }
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = client.scope {
            form.push(("scope", scope));
        }
        let request = http
            .request(reqwest::Method::POST, client.token_url)
            .basic_auth(client.client_id, Some(client.client_secret))
            .form(&form)
            .timeout(timeout);
        let response = http
            .send(request)
            .await
            .map_err(|e| send_error(&e, timeout))?;
        let status = response.status();
        if !status.is_success() {
            let mut e = answer_error(response).await;
            // invalid_client answers 400 or 401: either way the credentials are wrong.
            if matches!(status.as_u16(), 400 | 401) {
                e.kind = ErrorKind::Auth;
            }
            e.message = format!("the token endpoint refused the client: {}", e.message);
            return Err(e);
        }
        #[derive(Deserialize)]
        struct TokenAnswer {
            access_token: String,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let answer: TokenAnswer = response.json().await.map_err(|e| {
            UpstreamError::new(
                ErrorKind::BadResponse,
                Some(status.as_u16()),
                format!("the token endpoint's answer has no access_token: {e}"),
            )
        })?;
        let lifetime = answer
            .expires_in
            .map_or(DEFAULT_LIFETIME, Duration::from_secs);
        *cached = Some((answer.access_token.clone(), Instant::now() + lifetime));
        Ok(answer.access_token)
    }
}
