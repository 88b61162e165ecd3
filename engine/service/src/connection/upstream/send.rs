//! How [`Upstream`] sends one request: within the connection's limit on concurrent
//! calls and its timeout, with its credentials (once more with a fresh OAuth token
//! after a 401), reading the answer as JSON; and SAP Gateway's CSRF token, fetched with
//! a GET before a write that needs one. Which requests to send is the
//! [`wire`](super::wire) protocol's business.

use serde_json::Value;
use url::Url;

use super::Upstream;
use super::credentials::Credentials;
use super::error::{UpstreamError, answer_error, send_error, transport};
use super::oauth;
use crate::connection::health::ErrorKind;

/// An upstream's answer: a success, or a 404 (without a body).
pub(super) struct Answer {
    /// The status.
    pub status: u16,
    /// The headers (the CSRF token and cookies of a fetch).
    pub headers: reqwest::header::HeaderMap,
    /// The JSON body; `None` when it is empty, and for a 404.
    pub body: Option<Value>,
}

impl Upstream {
    /// GETs JSON with the connection's credentials: `None` for a 404.
    pub(super) async fn get_json(&self, url: Url) -> Result<Option<Value>, UpstreamError> {
        let answer = self.send(reqwest::Method::GET, url, None, &[]).await?;
        Ok(match answer.status {
            404 => None,
            _ => answer.body,
        })
    }

    /// Sends a request with the connection's credentials (once more with a fresh
    /// OAuth token after a 401), within the connection's limit on concurrent calls.
    /// A 404 comes back as it is; any other failure is an error.
    pub(super) async fn send(
        &self,
        method: reqwest::Method,
        url: Url,
        body: Option<&Value>,
        headers: &[(&str, String)],
    ) -> Result<Answer, UpstreamError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        // The OAuth token that got a 401, once one did: it is replaced once.
        let mut refused: Option<String> = None;
        loop {
            let mut request = self
                .client
                .request(method.clone(), url.clone())
                .header("accept", "application/json")
                .timeout(self.timeout);
            for (name, value) in headers {
                request = request.header(*name, value.as_str());
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let (request, token) = self.authorize(request, refused.as_deref()).await?;
            let response = self
                .client
                .send(request)
                .await
                .map_err(|e| send_error(&e, self.timeout))?;
            let status = response.status();
            if status == reqwest::StatusCode::UNAUTHORIZED
                && refused.is_none()
                && let Some(token) = token
            {
                // The token may have expired early or been revoked: get a new one once.
                refused = Some(token);
                continue;
            }
            if status == reqwest::StatusCode::NOT_FOUND {
                return Ok(Answer {
                    status: 404,
                    headers: response.headers().clone(),
                    body: None,
                });
            }
            if !status.is_success() {
                return Err(answer_error(response).await);
            }
            let headers = response.headers().clone();
            let bytes = response
                .bytes()
                .await
                .map_err(|e| transport(&e, self.timeout))?;
            let body = if bytes.is_empty() {
                None
            } else {
                Some(serde_json::from_slice(&bytes).map_err(|e| {
                    UpstreamError::new(
                        ErrorKind::BadResponse,
                        Some(status.as_u16()),
                        format!("the upstream's answer is not JSON: {e}"),
                    )
                })?)
            };
            return Ok(Answer {
                status: status.as_u16(),
                headers,
                body,
            });
        }
    }

    /// Adds the credentials to `request`; with OAuth, also answers the access token it
    /// used, and takes a new one if the current one is `refused`.
    async fn authorize(
        &self,
        request: reqwest::RequestBuilder,
        refused: Option<&str>,
    ) -> Result<(reqwest::RequestBuilder, Option<String>), UpstreamError> {
        Ok(match &self.credentials {
            Credentials::Basic { username, password } => {
                (request.basic_auth(username, Some(password)), None)
            }
            Credentials::Bearer { token } => (request.bearer_auth(token), None),
            Credentials::ApiKey { header, key } => {
                (request.header(header.as_str(), key.as_str()), None)
            }
            Credentials::Oauth2 {
                token_url,
                client_id,
                client_secret,
                scope,
            } => {
                let client = oauth::Client {
                    token_url,
                    client_id,
                    client_secret,
                    scope: scope.as_deref(),
                };
                let token = self
                    .token
                    .get(&self.client, self.timeout, client, refused)
                    .await?;
                (request.bearer_auth(&token), Some(token))
            }
        })
    }

    /// SAP Gateway's CSRF token and session cookies, fetched with a GET of `url`, for
    /// a modifying request.
    pub(super) async fn csrf(
        &self,
        url: &Url,
    ) -> Result<Vec<(&'static str, String)>, UpstreamError> {
        let answer = self
            .send(
                reqwest::Method::GET,
                url.clone(),
                None,
                &[("x-csrf-token", "fetch".into())],
            )
            .await?;
        let token = answer
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| {
                UpstreamError::new(
                    ErrorKind::BadResponse,
                    Some(answer.status),
                    "SAP gave no x-csrf-token for the write",
                )
            })?;
        let cookies: Vec<String> = answer
            .headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|c| c.split(';').next())
            .map(str::to_owned)
            .collect();
        let mut headers = vec![("x-csrf-token", token)];
        if !cookies.is_empty() {
            headers.push(("cookie", cookies.join("; ")));
        }
        Ok(headers)
    }
}
