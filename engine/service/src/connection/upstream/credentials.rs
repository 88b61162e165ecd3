//! A live connection's credentials: [`Credentials`] (basic, bearer, OAuth 2.0 client
//! credentials, API key), their [`AuthKind`], and the checks they pass before they are
//! sealed ([`crate::connection::secrets`]). Their `Debug` shows the kind only, so that
//! no log line carries a secret. How they go onto a request is
//! [`Upstream`](super::Upstream)'s business (`send`, and `oauth` for tokens).

use base64::Engine as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use url::Url;

/// The kind of credentials a connection uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    /// HTTP basic.
    Basic,
    /// A fixed bearer token.
    Bearer,
    /// OAuth 2.0 client credentials, with the token fetched and refreshed as needed.
    Oauth2,
    /// An API key in a header (Maximo's `apikey`).
    ApiKey,
}

/// A connection's credentials. Stored sealed ([`crate::connection::secrets`]); their
/// `Debug` shows the kind only.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Credentials {
    /// HTTP basic.
    Basic {
        /// The user.
        username: String,
        /// The password.
        password: String,
    },
    /// A fixed bearer token.
    Bearer {
        /// The token.
        token: String,
    },
    /// OAuth 2.0 client credentials (RFC 6749 §4.4).
    Oauth2 {
        /// The token endpoint.
        token_url: String,
        /// The client id.
        client_id: String,
        /// The client secret.
        client_secret: String,
        /// The scope to ask for, if the server wants one.
        #[serde(default)]
        scope: Option<String>,
    },
    /// An API key sent in a header.
    ApiKey {
        /// The header (Maximo: `apikey`).
        header: String,
        /// The key.
        key: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials::{:?}(redacted)", self.kind())
    }
}

impl Credentials {
    /// Their kind.
    pub fn kind(&self) -> AuthKind {
        match self {
            Credentials::Basic { .. } => AuthKind::Basic,
            Credentials::Bearer { .. } => AuthKind::Bearer,
            Credentials::Oauth2 { .. } => AuthKind::Oauth2,
            Credentials::ApiKey { .. } => AuthKind::ApiKey,
        }
    }

    /// Checks that nothing is empty and that a token URL is an http or https URL
    /// without a user or password (its address is checked apart, against the
    /// [`Policy`](crate::egress::Policy)).
    pub fn validate(&self) -> Result<(), String> {
        let empty = |field: &str, v: &str| {
            if v.trim().is_empty() {
                Err(format!("credentials.{field} is empty"))
            } else {
                Ok(())
            }
        };
        // What goes into a header as it is; the secret is not repeated.
        let header_value = |field: &str, v: &str| {
            axum::http::HeaderValue::from_str(v).map(|_| ()).map_err(|_| {
                format!(
                    "credentials.{field} cannot be sent in an HTTP header: it holds a control character"
                )
            })
        };
        match self {
            Credentials::Basic { username, password } => {
                empty("username", username)?;
                empty("password", password)?;
                if username.contains(':') {
                    return Err(
                        "credentials.username holds `:`, which HTTP basic authentication cannot send (RFC 7617)"
                            .into(),
                    );
                }
                Ok(())
            }
            Credentials::Bearer { token } => {
                empty("token", token)?;
                header_value("token", token)
            }
            Credentials::Oauth2 {
                token_url,
                client_id,
                client_secret,
                ..
            } => {
                empty("client_id", client_id)?;
                empty("client_secret", client_secret)?;
                match Url::parse(token_url) {
                    Ok(u) if !u.username().is_empty() || u.password().is_some() => Err(
                        "credentials.token_url must not carry a user or password; put them in `client_id` and `client_secret`"
                            .into(),
                    ),
                    Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                        Ok(())
                    }
                    _ => Err(format!(
                        "credentials.token_url `{token_url}` is not an http or https URL with a host"
                    )),
                }
            }
            Credentials::ApiKey { header, key } => {
                empty("key", key)?;
                header_value("key", key)?;
                axum::http::HeaderName::from_bytes(header.as_bytes())
                    .map(|_| ())
                    .map_err(|_| format!("credentials.header `{header}` is not a header name"))
            }
        }
    }
}

/// Basic credentials as a header value (for tests and the mock system).
pub fn basic_header(username: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_checked_and_never_printed() {
        let c = Credentials::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(format!("{c:?}"), "Credentials::Basic(redacted)");
        let empty = Credentials::Bearer { token: " ".into() };
        assert_eq!(empty.validate().unwrap_err(), "credentials.token is empty");
        let colon = Credentials::Basic {
            username: "a:b".into(),
            password: "p".into(),
        };
        assert!(colon.validate().unwrap_err().contains("RFC 7617"));
        let oauth = Credentials::Oauth2 {
            token_url: "https://id:pw@login.example.com/token".into(),
            client_id: "c".into(),
            client_secret: "s".into(),
            scope: None,
        };
        assert!(
            oauth
                .validate()
                .unwrap_err()
                .contains("credentials.token_url must not carry a user or password")
        );
        let key = Credentials::ApiKey {
            header: "api key".into(),
            key: "k".into(),
        };
        assert_eq!(
            key.validate().unwrap_err(),
            "credentials.header `api key` is not a header name"
        );
    }

    #[test]
    fn a_basic_header_is_the_base64_of_user_and_password() {
        assert_eq!(
            basic_header("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }
}
