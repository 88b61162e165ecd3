//! Live connections: reading a source system's own API over HTTP.
//!
//! An [`Upstream`] is one connection's client: its base URL, its credentials (opened
//! from the store only here, never logged: their `Debug` is redacted), a timeout, a
//! limit on concurrent calls, and the [`Dialect`] of its system — which paths hold
//! which entity, how a page is asked for and where the next one is:
//!
//! | system | collection | paging | changed since |
//! | --- | --- | --- | --- |
//! | SAP S/4HANA (OData V2) | `d.results` | `$top`/`$skip`, or the server's `d.__next` | `$filter=<field> ge datetime'…'` |
//! | IBM Maximo (JSON API, lean) | `member` | `oslc.pageSize`, then `responseInfo.nextPage.href` | `oslc.where=changedate>="…"` |
//! | Dynamics 365 F&O (OData V4) | `value` | `$top`, then `@odata.nextLink` | `$filter=<field> ge …` |
//!
//! Every failure is an [`UpstreamError`] with a [`ErrorKind`], which is what the
//! connection's health and breaker count. A next-page link from the upstream is only
//! followed on the upstream's own origin, so that a forged cursor cannot send the
//! connection's credentials elsewhere. Every call goes through an [`Outbound`] client,
//! which refuses internal addresses unless the operator allows them
//! ([`crate::egress`]); a refused address is a [`ErrorKind::Network`] error that
//! names the address and the rule.

use std::time::{Duration, Instant};

use base64::Engine as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Semaphore;
use url::Url;

use super::health::ErrorKind;
use crate::egress::{Outbound, Policy, Refusal, SendError};
use crosswalk_core::model::Entity;
use crosswalk_systems::{Dialect, Protocol, Resource, SystemId};

/// How to reach a live connection's system (everything but the secrets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// The system's base URL: `https://my-s4.example.com`, without the service path.
    pub base_url: String,
    /// How the connection authenticates: set from its credentials (whose secrets are
    /// stored sealed and never shown).
    #[serde(default)]
    pub auth: Option<AuthKind>,
    /// How long one upstream call may take, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    #[schemars(range(min = 1, max = 600_000))]
    pub timeout_ms: u64,
    /// How many upstream calls the connection makes at once; others wait their turn.
    #[serde(default = "default_concurrency")]
    #[schemars(range(min = 1, max = 64))]
    pub max_concurrency: u32,
    /// Records asked for per upstream page.
    #[serde(default = "default_page_size")]
    #[schemars(range(min = 1, max = MAX_PAGE_SIZE))]
    pub page_size: u32,
    /// When the circuit breaker opens and for how long.
    #[serde(default)]
    pub breaker: super::health::BreakerConfig,
}

fn default_timeout_ms() -> u64 {
    10_000
}
fn default_concurrency() -> u32 {
    4
}
fn default_page_size() -> u32 {
    100
}

/// The largest page asked of an upstream.
pub const MAX_PAGE_SIZE: u32 = 1000;

impl UpstreamConfig {
    /// Checks the settings; names the first one that is wrong. The base URL's address
    /// is checked apart, against the [`Policy`].
    pub fn validate(&self) -> Result<Url, String> {
        let url = Url::parse(&self.base_url)
            .map_err(|e| format!("upstream.base_url `{}` is not a URL: {e}", self.base_url))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(format!(
                "upstream.base_url `{}` must be an http or https URL with a host",
                self.base_url
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            // It would be stored and shown in clear: credentials go in `credentials`.
            return Err(
                "upstream.base_url must not carry a user or password; put them in `credentials`"
                    .into(),
            );
        }
        if !(1..=600_000).contains(&self.timeout_ms) {
            return Err(format!(
                "upstream.timeout_ms is {}; it must be between 1 and 600000",
                self.timeout_ms
            ));
        }
        if !(1..=64).contains(&self.max_concurrency) {
            return Err(format!(
                "upstream.max_concurrency is {}; it must be between 1 and 64",
                self.max_concurrency
            ));
        }
        if !(1..=MAX_PAGE_SIZE).contains(&self.page_size) {
            return Err(format!(
                "upstream.page_size is {}; it must be between 1 and {MAX_PAGE_SIZE}",
                self.page_size
            ));
        }
        self.breaker.validate()?;
        Ok(url)
    }
}

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

/// A connection's credentials. Stored sealed ([`super::secrets`]); their `Debug`
/// shows the kind only.
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
    /// [`Policy`]).
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
    fn new(kind: ErrorKind, status: Option<u16>, message: impl Into<String>) -> UpstreamError {
        UpstreamError {
            kind,
            status,
            message: message.into(),
            retry_after: None,
        }
    }
}

/// Which record a read or an update is about: the value of the entity's key field,
/// and the other fields that tell it apart when a connection's id is made of several
/// (Maximo's `siteid`, Dynamics' `dataAreaId`).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordKey {
    /// The key field's value.
    pub key: String,
    /// Other fields and the values they must have: text or numbers, as the write plan
    /// gives them.
    pub also: Vec<(String, Value)>,
}

/// A value in Maximo's `oslc.where`: a number as it is, text in double quotes with
/// `\` and `"` escaped.
fn maximo_literal(value: &Value) -> String {
    match value {
        Value::Number(n) => n.to_string(),
        other => {
            let text = key_text(other).unwrap_or_default();
            format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
        }
    }
}

/// A value in an OData `$filter`: a number as it is, text in single quotes doubled.
fn odata_literal(value: &Value) -> String {
    match value {
        Value::Number(n) => n.to_string(),
        other => format!(
            "'{}'",
            key_text(other).unwrap_or_default().replace('\'', "''")
        ),
    }
}

/// The text of a key value: a string as it is, a number as JSON writes it.
fn key_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl RecordKey {
    /// The key alone.
    pub fn plain(key: &str) -> RecordKey {
        RecordKey {
            key: key.to_owned(),
            also: Vec::new(),
        }
    }

    /// Whether a native record has the other fields' values.
    fn matches(&self, record: &Value) -> bool {
        self.also.iter().all(|(field, value)| {
            record
                .get(field)
                .and_then(key_text)
                .is_some_and(|t| Some(t) == key_text(value))
        })
    }

    /// Whether a native record is this one: its key field is the key, exactly, and it
    /// has the other fields' values. A query's answer is checked with it, so that a
    /// pattern the upstream reads into a value (Maximo's `%`) finds nothing else.
    fn is(&self, key_field: &str, record: &Value) -> bool {
        record.get(key_field).and_then(key_text).as_deref() == Some(self.key.as_str())
            && self.matches(record)
    }
}

/// Where `dialect`'s system keeps `entity`. A dialect lists exactly the entities its
/// system's mappings map, and requests are checked against those first; this is a
/// guard, not a path.
fn resource(
    system: SystemId,
    dialect: &'static Dialect,
    entity: Entity,
) -> Result<&'static Resource, UpstreamError> {
    dialect.resource(entity).ok_or_else(|| {
        UpstreamError::new(
            ErrorKind::BadResponse,
            None,
            format!("{system} has no {entity} resource"),
        )
    })
}

/// Where to continue a listing: the upstream's own next link, or an offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Next {
    /// A URL the upstream gave (same origin as the base URL).
    Link(String),
    /// `$skip` for OData V2 without server paging.
    Skip(u64),
}

/// An upstream's answer.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Option<Value>,
}

/// One page of native records.
#[derive(Debug)]
pub struct Page {
    /// The records, as the system returns one.
    pub records: Vec<Value>,
    /// Where the next page starts, if there is one.
    pub next: Option<Next>,
}

/// One live connection's client.
pub struct Upstream {
    client: Outbound,
    system: SystemId,
    dialect: &'static Dialect,
    base: Url,
    credentials: Credentials,
    permits: Semaphore,
    page_size: u32,
    timeout: Duration,
    /// The current OAuth access token and when it expires; held while a new one is
    /// fetched (single flight).
    token: tokio::sync::Mutex<Option<(String, Instant)>>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("system", &self.system)
            .field("base", &self.base.as_str())
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// Makes ring the process's TLS provider (rustls needs one chosen before any HTTP
/// client is built); harmless when one is chosen already.
pub fn install_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The HTTP client for upstreams and their token endpoints, under the outbound
/// address policy: build it once and share it (one connection pool, TLS through
/// rustls, no redirects followed).
pub fn client(policy: Policy) -> Outbound {
    Outbound::new(policy, |builder| {
        builder
            .user_agent(concat!("crosswalk/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
    })
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
fn send_error(e: &SendError, timeout: Duration) -> UpstreamError {
    match e {
        SendError::Refused(refusal) => refused(refusal),
        SendError::Http(e) => transport(e, timeout),
    }
}

impl Upstream {
    /// The client of a connection to `system`, calling through `client` (see
    /// [`client`]).
    pub fn new(
        system: SystemId,
        config: &UpstreamConfig,
        credentials: Credentials,
        client: Outbound,
    ) -> Result<Upstream, String> {
        let dialect = &system.system().dialect;
        let mut base = config.validate()?;
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        credentials.validate()?;
        Ok(Upstream {
            client,
            system,
            dialect,
            base,
            credentials,
            permits: Semaphore::new(config.max_concurrency as usize),
            page_size: config.page_size,
            timeout: Duration::from_millis(config.timeout_ms),
            token: tokio::sync::Mutex::new(None),
        })
    }

    /// The system's dialect.
    pub fn dialect(&self) -> &'static Dialect {
        self.dialect
    }

    /// One page of an entity, from the start or from `next`.
    pub async fn list(
        &self,
        entity: Entity,
        next: Option<&Next>,
        updated_since: Option<&chrono::DateTime<chrono::Utc>>,
        page_size: Option<u32>,
    ) -> Result<Page, UpstreamError> {
        let resource = resource(self.system, self.dialect, entity)?;
        let top = page_size.unwrap_or(self.page_size).min(MAX_PAGE_SIZE);
        let url = match next {
            Some(Next::Link(link)) => self.same_origin(link)?,
            Some(Next::Skip(_)) | None => {
                let mut url = self.resource_url(resource, resource.path)?;
                {
                    let mut q = url.query_pairs_mut();
                    match self.dialect.protocol {
                        Protocol::ODataV2 => {
                            q.append_pair("$format", "json");
                            q.append_pair("$top", &top.to_string());
                            if let Some(Next::Skip(skip)) = next {
                                q.append_pair("$skip", &skip.to_string());
                            }
                        }
                        Protocol::MaximoJson => {
                            q.append_pair("lean", "1");
                            q.append_pair("oslc.pageSize", &top.to_string());
                        }
                        Protocol::ODataV4 => {
                            q.append_pair("$top", &top.to_string());
                        }
                    }
                    if let (Some(since), Some(field)) = (updated_since, resource.changed) {
                        let (key, value) = self.changed_filter(field, since);
                        q.append_pair(key, &value);
                    }
                }
                url
            }
        };
        let body = self.get_json(url).await?.ok_or_else(|| {
            UpstreamError::new(
                ErrorKind::BadResponse,
                Some(404),
                format!("the {entity} collection answered 404"),
            )
        })?;
        self.page(body, next, top)
    }

    /// The name of the entity's key field (`PurchaseOrder`, `ponum`).
    pub fn key_field(&self, entity: Entity) -> Result<&'static str, UpstreamError> {
        Ok(resource(self.system, self.dialect, entity)?.key)
    }

    /// The key of the record whose unified id gave `native` through the connection's
    /// write plan (`None` when the id cannot be written back): the entity's key field,
    /// and the other fields the id holds, such as Maximo's `siteid` or Dynamics'
    /// `dataAreaId` in an id overridden with `{$.siteid}/{value}`. Without them, the
    /// id is the key as it is.
    pub fn key_of(
        &self,
        entity: Entity,
        id: &str,
        native: Option<&Value>,
    ) -> Result<RecordKey, UpstreamError> {
        let resource = resource(self.system, self.dialect, entity)?;
        let Some(Value::Object(fields)) = native else {
            return Ok(RecordKey::plain(id));
        };
        let Some(key) = fields.get(resource.key).and_then(key_text) else {
            return Ok(RecordKey::plain(id));
        };
        let also = fields
            .iter()
            .filter(|(name, v)| name.as_str() != resource.key && key_text(v).is_some())
            .map(|(name, v)| (name.clone(), v.clone()))
            .collect();
        Ok(RecordKey { key, also })
    }

    /// One record by its key; `None` when the upstream has none.
    pub async fn get(
        &self,
        entity: Entity,
        record: &RecordKey,
    ) -> Result<Option<Value>, UpstreamError> {
        let id = record.key.as_str();
        let resource = resource(self.system, self.dialect, entity)?;
        match self.dialect.protocol {
            Protocol::ODataV2 => {
                // A record also known by a second number (an SAP vendor by its supplier
                // number, which its id prefers) is looked for by it first.
                if let Some(field) = resource.also_found_by
                    && let Some(found) = self.find_by(resource, field, record).await?
                {
                    return Ok(Some(found));
                }
                // Key predicate: 'value' with quotes doubled (OData V2 literal).
                let path = format!(
                    "{}('{}')",
                    resource.path,
                    urlencode_segment(&id.replace('\'', "''"))
                );
                let mut url = self.resource_url(resource, &path)?;
                url.query_pairs_mut().append_pair("$format", "json");
                let Some(body) = self.get_json(url).await? else {
                    return Ok(None);
                };
                // A key predicate names the key field only: the other fields of the id
                // must match the record found; and a record with a second number is
                // this one only when that number is absent (its id is then its key).
                let second_number_absent = |found: &Value| {
                    resource.also_found_by.is_none_or(|field| {
                        found
                            .get(field)
                            .and_then(key_text)
                            .is_none_or(|t| t.is_empty() || t == id)
                    })
                };
                match body {
                    Value::Object(mut m) => Ok(Some(m.remove("d").unwrap_or(Value::Object(m)))
                        .filter(|found| record.matches(found) && second_number_absent(found))),
                    _ => Err(UpstreamError::new(
                        ErrorKind::BadResponse,
                        None,
                        "the record is not a JSON object",
                    )),
                }
            }
            Protocol::MaximoJson | Protocol::ODataV4 => {
                let mut url = self.resource_url(resource, resource.path)?;
                {
                    let mut q = url.query_pairs_mut();
                    let key = Value::String(id.to_owned());
                    let fields = std::iter::once((resource.key, &key))
                        .chain(record.also.iter().map(|(f, v)| (f.as_str(), v)));
                    if self.dialect.protocol == Protocol::MaximoJson {
                        q.append_pair("lean", "1");
                        let clauses: Vec<String> = fields
                            .map(|(f, v)| format!("{f}={}", maximo_literal(v)))
                            .collect();
                        q.append_pair("oslc.where", &clauses.join(" and "));
                    } else {
                        let clauses: Vec<String> = fields
                            .map(|(f, v)| format!("{f} eq {}", odata_literal(v)))
                            .collect();
                        q.append_pair("$filter", &clauses.join(" and "));
                    }
                }
                let Some(body) = self.get_json(url).await? else {
                    return Ok(None);
                };
                Ok(self
                    .page(body, None, 1)?
                    .records
                    .into_iter()
                    .find(|found| record.is(resource.key, found)))
            }
        }
    }

    /// Checks the credentials with the smallest read the system allows.
    pub async fn verify(&self) -> Result<(), UpstreamError> {
        let entity = self.dialect.first_entity();
        self.list(entity, None, None, Some(1)).await.map(|_| ())
    }

    fn changed_filter(
        &self,
        field: &str,
        since: &chrono::DateTime<chrono::Utc>,
    ) -> (&'static str, String) {
        let seconds = since.format("%Y-%m-%dT%H:%M:%S");
        match self.dialect.protocol {
            Protocol::ODataV2 if field == "LastChangeDate" => {
                ("$filter", format!("{field} ge datetime'{seconds}'"))
            }
            Protocol::ODataV2 => ("$filter", format!("{field} ge datetimeoffset'{seconds}Z'")),
            Protocol::MaximoJson => ("oslc.where", format!("{field}>=\"{seconds}+00:00\"")),
            Protocol::ODataV4 => ("$filter", format!("{field} ge {seconds}Z")),
        }
    }

    /// The records of a collection answer and where the next page is.
    fn page(&self, body: Value, previous: Option<&Next>, top: u32) -> Result<Page, UpstreamError> {
        let shape = |what: &str| {
            UpstreamError::new(
                ErrorKind::BadResponse,
                None,
                format!("the upstream's answer has no {what}"),
            )
        };
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        let (records, next) = match self.dialect.protocol {
            Protocol::ODataV2 => {
                let d = body.get("d").ok_or_else(|| shape("`d`"))?;
                let records = d
                    .get("results")
                    .and_then(Value::as_array)
                    .ok_or_else(|| shape("`d.results` array"))?
                    .clone();
                let next = match text(d.get("__next")) {
                    Some(link) => Some(Next::Link(link)),
                    None if records.len() as u64 >= u64::from(top) => {
                        let skip = match previous {
                            Some(Next::Skip(s)) => *s,
                            _ => 0,
                        };
                        Some(Next::Skip(skip + records.len() as u64))
                    }
                    None => None,
                };
                (records, next)
            }
            Protocol::MaximoJson => {
                let records = body
                    .get("member")
                    .and_then(Value::as_array)
                    .ok_or_else(|| shape("`member` array"))?
                    .clone();
                let next = text(body.pointer("/responseInfo/nextPage/href")).map(Next::Link);
                (records, next)
            }
            Protocol::ODataV4 => {
                let records = body
                    .get("value")
                    .and_then(Value::as_array)
                    .ok_or_else(|| shape("`value` array"))?
                    .clone();
                (records, text(body.get("@odata.nextLink")).map(Next::Link))
            }
        };
        // A relative next link is resolved against the base URL.
        let next = match next {
            Some(Next::Link(link)) => Some(Next::Link(
                self.base
                    .join(&link)
                    .map_err(|e| {
                        UpstreamError::new(
                            ErrorKind::BadResponse,
                            None,
                            format!("the next-page link `{link}` is not a URL: {e}"),
                        )
                    })?
                    .to_string(),
            )),
            other => other,
        };
        Ok(Page { records, next })
    }

    /// A link that the upstream gave, refused unless it is on the upstream's origin.
    fn same_origin(&self, link: &str) -> Result<Url, UpstreamError> {
        let url = Url::parse(link)
            .ok()
            .filter(|u| u.origin() == self.base.origin());
        url.ok_or_else(|| {
            UpstreamError::new(
                ErrorKind::BadResponse,
                None,
                "the cursor's next page is not on this connection's upstream",
            )
        })
    }

    /// `path` under the base URL, with the resource's own query parameters (expands,
    /// selects) that shape its records.
    fn resource_url(&self, resource: &Resource, path: &str) -> Result<Url, UpstreamError> {
        let mut url = self
            .base
            .join(path)
            .map_err(|e| UpstreamError::new(ErrorKind::BadResponse, None, e.to_string()))?;
        if !resource.query.is_empty() {
            url.query_pairs_mut().extend_pairs(resource.query.iter());
        }
        Ok(url)
    }

    /// The record whose `field` is the key's value, exactly (OData V2 `$filter`).
    async fn find_by(
        &self,
        resource: &Resource,
        field: &str,
        record: &RecordKey,
    ) -> Result<Option<Value>, UpstreamError> {
        let mut url = self.resource_url(resource, resource.path)?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair(
                "$filter",
                &format!("{field} eq '{}'", record.key.replace('\'', "''")),
            );
            q.append_pair("$top", "1");
            q.append_pair("$format", "json");
        }
        let Some(body) = self.get_json(url).await? else {
            return Ok(None);
        };
        Ok(self
            .page(body, None, 1)?
            .records
            .into_iter()
            .find(|found| record.is(field, found)))
    }

    /// GETs JSON with the connection's credentials: `None` for a 404.
    async fn get_json(&self, url: Url) -> Result<Option<Value>, UpstreamError> {
        let answer = self.send(reqwest::Method::GET, url, None, &[]).await?;
        Ok(match answer.status {
            404 => None,
            _ => answer.body,
        })
    }

    /// Sends a request with the connection's credentials (once more with a fresh
    /// OAuth token after a 401), within the connection's limit on concurrent calls.
    /// A 404 comes back as it is; any other failure is an error.
    async fn send(
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

    /// SAP Gateway's CSRF token and session cookies, fetched with a GET, for a
    /// modifying request.
    async fn csrf(&self, url: &Url) -> Result<Vec<(&'static str, String)>, UpstreamError> {
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

    /// Creates a record from its native payload; answers the record's key.
    pub async fn create(&self, entity: Entity, native: &Value) -> Result<String, UpstreamError> {
        let resource = resource(self.system, self.dialect, entity)?;
        let url = self
            .base
            .join(resource.path)
            .map_err(|e| UpstreamError::new(ErrorKind::BadResponse, None, e.to_string()))?;
        let answer = match self.dialect.protocol {
            Protocol::ODataV2 => {
                let headers = self.csrf(&url).await?;
                self.send(reqwest::Method::POST, url, Some(native), &headers)
                    .await?
            }
            Protocol::MaximoJson => {
                let mut url = url;
                url.query_pairs_mut().append_pair("lean", "1");
                self.send(
                    reqwest::Method::POST,
                    url,
                    Some(native),
                    &[("properties", resource.key.to_owned())],
                )
                .await?
            }
            Protocol::ODataV4 => {
                self.send(reqwest::Method::POST, url, Some(native), &[])
                    .await?
            }
        };
        if answer.status == 404 {
            return Err(UpstreamError::new(
                ErrorKind::BadResponse,
                Some(404),
                format!("the {entity} collection answered 404 to the create"),
            ));
        }
        // The key: from the created record the system answers, else from the payload.
        let created = answer
            .body
            .as_ref()
            .map(|b| b.get("d").unwrap_or(b))
            .and_then(|r| r.get(resource.key))
            .or_else(|| native.get(resource.key))
            .cloned();
        match created {
            Some(Value::String(key)) => Ok(key),
            Some(Value::Number(n)) => Ok(n.to_string()),
            _ => Err(UpstreamError::new(
                ErrorKind::BadResponse,
                Some(answer.status),
                format!(
                    "the upstream created the {entity} but its answer names no `{}`",
                    resource.key
                ),
            )),
        }
    }

    /// Updates the given native fields of a record; `false` when there is none.
    pub async fn update(
        &self,
        entity: Entity,
        record: &RecordKey,
        native: &Value,
    ) -> Result<bool, UpstreamError> {
        let id = record.key.as_str();
        let resource = resource(self.system, self.dialect, entity)?;
        let bad =
            |e: url::ParseError| UpstreamError::new(ErrorKind::BadResponse, None, e.to_string());
        let answer = match self.dialect.protocol {
            Protocol::ODataV2 => {
                // A record named by more than its key (other fields of the id, or a
                // second number) is found first, and updated at its own key.
                let key = if record.also.is_empty() && resource.also_found_by.is_none() {
                    id.to_owned()
                } else {
                    match self.get(entity, record).await? {
                        Some(found) => match found.get(resource.key) {
                            Some(Value::String(k)) => k.clone(),
                            _ => id.to_owned(),
                        },
                        None => return Ok(false),
                    }
                };
                let path = format!(
                    "{}('{}')",
                    resource.path,
                    urlencode_segment(&key.replace('\'', "''"))
                );
                let url = self.base.join(&path).map_err(bad)?;
                let headers = self.csrf(&url).await?;
                self.send(reqwest::Method::PATCH, url, Some(native), &headers)
                    .await?
            }
            Protocol::MaximoJson => {
                // Maximo updates a record at its own href, with a POST that says PATCH.
                let Some(current) = self.get(entity, record).await? else {
                    return Ok(false);
                };
                let href = current.get("href").and_then(Value::as_str).ok_or_else(|| {
                    UpstreamError::new(
                        ErrorKind::BadResponse,
                        None,
                        format!("Maximo's {entity} `{id}` has no href to update it at"),
                    )
                })?;
                let mut url = self.same_origin(self.base.join(href).map_err(bad)?.as_ref())?;
                url.query_pairs_mut().append_pair("lean", "1");
                self.send(
                    reqwest::Method::POST,
                    url,
                    Some(native),
                    &[
                        ("x-method-override", "PATCH".into()),
                        ("patchtype", "MERGE".into()),
                    ],
                )
                .await?
            }
            Protocol::ODataV4 => {
                // The key of a data entity includes the legal entity.
                let Some(current) = self.get(entity, record).await? else {
                    return Ok(false);
                };
                let area = current
                    .get("dataAreaId")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .replace('\'', "''");
                let path = format!(
                    "{}(dataAreaId='{area}',{}='{}')",
                    resource.path,
                    resource.key,
                    urlencode_segment(&id.replace('\'', "''"))
                );
                let mut url = self.base.join(&path).map_err(bad)?;
                url.query_pairs_mut().append_pair("cross-company", "true");
                self.send(reqwest::Method::PATCH, url, Some(native), &[])
                    .await?
            }
        };
        Ok(answer.status != 404)
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
            Credentials::Oauth2 { .. } => {
                let token = self.access_token(refused).await?;
                (request.bearer_auth(&token), Some(token))
            }
        })
    }

    /// The OAuth access token: the cached one while it has more than 30 s left (and is
    /// not the one that was `refused`), else a new one from the token endpoint. Single
    /// flight: the token's lock is held while one is fetched, so that requests that find
    /// it expired together wait for one fetch and share its token.
    async fn access_token(&self, refused: Option<&str>) -> Result<String, UpstreamError> {
        let mut cached = self.token.lock().await;
        if let Some((token, expires)) = cached.as_ref()
            && *expires > Instant::now() + Duration::from_secs(30)
            && Some(token.as_str()) != refused
        {
            return Ok(token.clone());
        }
        let Credentials::Oauth2 {
            token_url,
            client_id,
            client_secret,
            scope,
        } = &self.credentials
        else {
            unreachable!("only OAuth credentials have tokens")
        };
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        let request = self
            .client
            .request(reqwest::Method::POST, token_url.as_str())
            .basic_auth(client_id, Some(client_secret))
            .form(&form)
            .timeout(self.timeout);
        let response = self
            .client
            .send(request)
            .await
            .map_err(|e| send_error(&e, self.timeout))?;
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
        let expires = Instant::now() + Duration::from_secs(answer.expires_in.unwrap_or(3600));
        *cached = Some((answer.access_token.clone(), expires));
        Ok(answer.access_token)
    }
}

/// A failure before any answer: a timeout or no connection.
fn transport(e: &reqwest::Error, timeout: Duration) -> UpstreamError {
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
async fn answer_error(response: reqwest::Response) -> UpstreamError {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let body = response.text().await.unwrap_or_default();
    let snippet: String = body.chars().take(300).collect();
    let kind = match status {
        401 => ErrorKind::Auth,
        403 => ErrorKind::Permission,
        408 | 504 => ErrorKind::Timeout,
        429 => ErrorKind::RateLimit,
        400 | 409 | 412 | 422 => ErrorKind::Rejected,
        500..=599 => ErrorKind::Upstream5xx,
        _ => ErrorKind::BadResponse,
    };
    UpstreamError {
        kind,
        status: Some(status),
        message: format!("the upstream answered {status}: {snippet}"),
        retry_after,
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

/// Percent-encodes one path segment (keys may hold `/` or spaces).
fn urlencode_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
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
    use serde_json::json;

    fn upstream(system: &str) -> Upstream {
        let config: UpstreamConfig =
            serde_json::from_value(json!({"base_url": "https://erp.example.com/base"})).unwrap();
        Upstream::new(
            system.parse().unwrap(),
            &config,
            Credentials::Bearer { token: "t".into() },
            client(Policy::default()),
        )
        .unwrap()
    }

    #[test]
    fn a_composite_id_keys_its_record_by_every_field_it_holds() {
        let dynamics = upstream("dynamics-365-fo");
        let native = json!({"dataAreaId": "demf", "PurchaseOrderNumber": "DE-000412"});
        let key = dynamics
            .key_of(Entity::PurchaseOrder, "demf/DE-000412", Some(&native))
            .unwrap();
        assert_eq!(
            key,
            RecordKey {
                key: "DE-000412".into(),
                also: vec![("dataAreaId".into(), "demf".into())]
            }
        );
        assert!(key.is(
            "PurchaseOrderNumber",
            &json!({"dataAreaId": "demf", "PurchaseOrderNumber": "DE-000412"})
        ));
        assert!(!key.is(
            "PurchaseOrderNumber",
            &json!({"dataAreaId": "demf", "PurchaseOrderNumber": "DE-0004120"})
        ));
        // Values are literals: text quoted and escaped, numbers bare.
        assert_eq!(maximo_literal(&json!(r#"a\"b"#)), r#""a\\\"b""#);
        assert_eq!(maximo_literal(&json!(5)), "5");
        assert_eq!(odata_literal(&json!("O'Neil")), "'O''Neil'");
        assert_eq!(odata_literal(&json!(5)), "5");
        assert!(key.matches(&json!({"dataAreaId": "demf", "PurchaseOrderNumber": "DE-000412"})));
        assert!(!key.matches(&json!({"dataAreaId": "usmf", "PurchaseOrderNumber": "DE-000412"})));
        // An id that cannot be written back, or that writes no key field, is the key.
        let sap = upstream("sap-s4hana");
        assert_eq!(
            sap.key_of(Entity::PurchaseOrder, "4500000201", None)
                .unwrap(),
            RecordKey::plain("4500000201")
        );
        assert_eq!(
            sap.key_of(
                Entity::Vendor,
                "17300001",
                Some(&json!({"to_Supplier": {"Supplier": "17300001"}}))
            )
            .unwrap(),
            RecordKey::plain("17300001")
        );
    }

    #[test]
    fn each_system_pages_its_own_way() {
        let sap = upstream("sap-s4hana");
        let page = sap
            .page(json!({"d": {"results": [{}, {}]}}), None, 2)
            .unwrap();
        assert_eq!(page.next, Some(Next::Skip(2)), "a full page: skip on");
        let page = sap
            .page(json!({"d": {"results": [{}]}}), Some(&Next::Skip(2)), 2)
            .unwrap();
        assert_eq!(page.next, None, "a short page is the last");
        let page = sap
            .page(
                json!({"d": {"results": [{}], "__next": "A_PurchaseOrder?$skiptoken=5"}}),
                None,
                2,
            )
            .unwrap();
        assert_eq!(
            page.next,
            Some(Next::Link(
                "https://erp.example.com/base/A_PurchaseOrder?$skiptoken=5".into()
            )),
            "the server's __next wins and is resolved against the base"
        );
        let maximo = upstream("ibm-maximo");
        let page = maximo
            .page(
                json!({"member": [{"ponum": "1"}], "responseInfo": {"nextPage": {"href": "https://erp.example.com/maximo/api/os/mxapipo?pageno=2"}}}),
                None,
                1,
            )
            .unwrap();
        assert_eq!(page.records.len(), 1);
        assert!(matches!(page.next, Some(Next::Link(l)) if l.ends_with("pageno=2")));
        let dynamics = upstream("dynamics-365-fo");
        let page = dynamics
            .page(
                json!({"value": [], "@odata.nextLink": "https://erp.example.com/data/VendorsV2?$skip=100"}),
                None,
                100,
            )
            .unwrap();
        assert!(matches!(page.next, Some(Next::Link(l)) if l.ends_with("$skip=100")));
        let err = dynamics.page(json!({"d": {}}), None, 1).unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadResponse);
        assert!(err.message.contains("`value`"), "{}", err.message);
    }

    #[test]
    fn next_links_must_stay_on_the_upstream() {
        let sap = upstream("sap-s4hana");
        assert!(sap.same_origin("https://erp.example.com/other?x=1").is_ok());
        assert!(sap.same_origin("https://evil.example.net/steal").is_err());
        assert!(sap.same_origin("http://erp.example.com/plain").is_err());
    }

    #[test]
    fn changed_since_filters_speak_each_system() {
        let since = chrono::DateTime::parse_from_rfc3339("2024-03-01T10:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            upstream("sap-s4hana").changed_filter("LastChangeDateTime", &since),
            (
                "$filter",
                "LastChangeDateTime ge datetimeoffset'2024-03-01T10:00:00Z'".into()
            )
        );
        assert_eq!(
            upstream("ibm-maximo").changed_filter("changedate", &since),
            (
                "oslc.where",
                "changedate>=\"2024-03-01T10:00:00+00:00\"".into()
            )
        );
    }

    #[test]
    fn credentials_are_checked_and_never_printed() {
        let c = Credentials::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        let up = Upstream::new(
            SystemId::SapS4Hana,
            &serde_json::from_value(json!({"base_url": "https://erp.example.com"})).unwrap(),
            c,
            client(Policy::default()),
        )
        .unwrap();
        assert!(!format!("{up:?}").contains("hunter2"));
        let empty = Credentials::Bearer { token: " ".into() };
        assert_eq!(empty.validate().unwrap_err(), "credentials.token is empty");
        let bad: UpstreamConfig =
            serde_json::from_value(json!({"base_url": "ftp://x", "page_size": 5})).unwrap();
        assert!(bad.validate().unwrap_err().contains("http or https"));
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
