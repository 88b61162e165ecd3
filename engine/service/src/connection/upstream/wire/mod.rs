//! What goes over the wire for each protocol a source system speaks: the
//! [`WireProtocol`] trait, one implementation per [`Protocol`], and [`of`], the one
//! place that maps a protocol to its implementation.
//!
//! A wire protocol builds requests and reads answers; it sends nothing. It says how a
//! page of a collection is asked for and where the next one is, how changes since a
//! time are filtered, how one record is looked up by its key, and which method, URL
//! and headers a create or an update takes. [`Upstream`](super::Upstream) sends what
//! it builds, and keeps what every protocol shares: the credentials, the concurrency
//! limit, the resolution of next links against the base URL, the rule that a link or
//! a write goes only to the upstream's own origin, and the check that a record found
//! is the one asked for.
//!
//! | protocol | file | systems |
//! | --- | --- | --- |
//! | OData V2 | [`odata_v2`] | SAP S/4HANA |
//! | Maximo's JSON API (OSLC) | [`maximo_json`] | IBM Maximo |
//! | OData V4 | [`odata_v4`] | Dynamics 365 F&O |
//!
//! Adding a protocol is one new file here with its implementation, and one arm in
//! [`of`].

mod maximo_json;
mod odata_v2;
mod odata_v4;

use serde_json::Value;
use url::Url;

use super::error::UpstreamError;
use super::{Next, Page, RecordKey};
use crosswalk_systems::{Protocol, Resource};

/// The implementation of `protocol`.
pub(super) fn of(protocol: Protocol) -> &'static dyn WireProtocol {
    match protocol {
        Protocol::ODataV2 => &odata_v2::ODataV2,
        Protocol::MaximoJson => &maximo_json::MaximoJson,
        Protocol::ODataV4 => &odata_v4::ODataV4,
    }
}

/// The requests and answers of one API protocol, as pure functions: each method
/// builds a request from a [`Resource`] (where the system keeps an entity) under the
/// connection's base URL, or reads an answer.
pub(super) trait WireProtocol: Sync {
    /// The URL of a page of `resource`'s collection that the upstream gave no link
    /// for, with `top` records: the first page, or the page `skip` records in (OData
    /// V2 without server paging; other protocols page by link and ignore it).
    fn page_url(
        &self,
        base: &Url,
        resource: &Resource,
        top: u32,
        skip: Option<u64>,
    ) -> Result<Url, UpstreamError>;

    /// The query parameter that keeps the records whose `field` changed at or after
    /// `since`, and its value.
    fn changed_since(
        &self,
        field: &str,
        since: &chrono::DateTime<chrono::Utc>,
    ) -> (&'static str, String);

    /// The records of a collection answer and where the next page is: a link as the
    /// upstream wrote it (maybe relative: the caller resolves it against the base URL
    /// and follows it only on the upstream's origin), or an offset after `previous`
    /// when a page of `top` records came back full.
    fn page(&self, body: Value, previous: Option<&Next>, top: u32) -> Result<Page, UpstreamError>;

    /// The GETs that look for `record`, tried in order until one finds it.
    fn lookups(
        &self,
        base: &Url,
        resource: &Resource,
        record: &RecordKey,
    ) -> Result<Vec<Lookup>, UpstreamError>;

    /// The record in the answer to a GET of one record ([`Reading::Record`]).
    fn record(&self, body: Value) -> Result<Value, UpstreamError>;

    /// The request that creates a record of `resource` (its body is the native
    /// record).
    fn create(&self, base: &Url, resource: &Resource) -> Result<Write, UpstreamError>;

    /// Whether an update of `record` needs the record as the upstream has it first
    /// (found with [`lookups`](WireProtocol::lookups)): to learn its href, the rest of
    /// its key, or its own key when it was named by something else. When it does and
    /// there is none, nothing is updated.
    fn update_reads_first(&self, resource: &Resource, record: &RecordKey) -> bool;

    /// The request that updates `record` (its body is the native fields to change);
    /// `current` is the record as the upstream has it, when
    /// [`update_reads_first`](WireProtocol::update_reads_first) asked for it.
    fn update(
        &self,
        base: &Url,
        resource: &Resource,
        record: &RecordKey,
        current: Option<&Value>,
    ) -> Result<Write, UpstreamError>;
}

/// One GET that looks for a record, and how its answer is read.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Lookup {
    /// What is asked for.
    pub url: Url,
    /// What the answer holds.
    pub reading: Reading,
}

/// What the answer to a [`Lookup`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reading {
    /// A collection (read with [`WireProtocol::page`]): the record is the one whose
    /// `field` is the key exactly and that has the key's other fields.
    Listed {
        /// The field that holds the key: the resource's key, or the number the
        /// record is also found by.
        field: &'static str,
    },
    /// One record (read with [`WireProtocol::record`]), which must have the key's
    /// other fields.
    Record,
}

/// A request that writes a record.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Write {
    /// `POST`, `PATCH`.
    pub method: reqwest::Method,
    /// Where (the caller refuses it off the upstream's origin).
    pub url: Url,
    /// Headers the protocol wants.
    pub headers: Vec<(&'static str, String)>,
    /// Whether a CSRF token and its session cookies are fetched first, with a GET of
    /// the same URL (SAP Gateway).
    pub csrf: bool,
}

impl Write {
    /// A write without headers of its own or a CSRF token.
    fn plain(method: reqwest::Method, url: Url) -> Write {
        Write {
            method,
            url,
            headers: Vec::new(),
            csrf: false,
        }
    }
}

/// `path` under the base URL.
fn join(base: &Url, path: &str) -> Result<Url, UpstreamError> {
    base.join(path)
        .map_err(|e| UpstreamError::bad_response(e.to_string()))
}

/// `path` under the base URL, with the resource's own query parameters (expands,
/// selects) that shape its records.
fn resource_url(base: &Url, resource: &Resource, path: &str) -> Result<Url, UpstreamError> {
    let mut url = join(base, path)?;
    if !resource.query.is_empty() {
        url.query_pairs_mut().extend_pairs(resource.query.iter());
    }
    Ok(url)
}

/// The error of an answer without the part the protocol promises.
fn missing(what: &str) -> UpstreamError {
    UpstreamError::bad_response(format!("the upstream's answer has no {what}"))
}

/// The array in `value`, or the error that names `what` is missing.
fn array(value: Option<&Value>, what: &str) -> Result<Vec<Value>, UpstreamError> {
    value
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| missing(what))
}

/// The text of a link in an answer.
fn link(value: Option<&Value>) -> Option<String> {
    value.and_then(Value::as_str).map(str::to_owned)
}

/// An answer that must be one record: a JSON object.
fn object(body: Value) -> Result<serde_json::Map<String, Value>, UpstreamError> {
    match body {
        Value::Object(m) => Ok(m),
        _ => Err(UpstreamError::bad_response(
            "the record is not a JSON object",
        )),
    }
}

/// A time as the filters write it, to the second and without an offset.
fn seconds(since: &chrono::DateTime<chrono::Utc>) -> impl std::fmt::Display {
    since.format("%Y-%m-%dT%H:%M:%S")
}

/// A value in an OData `$filter` (V2 and V4): a number as it is, text in single quotes
/// doubled.
fn odata_literal(value: &Value) -> String {
    match value {
        Value::Number(n) => n.to_string(),
        other => format!(
            "'{}'",
            super::key::key_text(other)
                .unwrap_or_default()
                .replace('\'', "''")
        ),
    }
}

/// Percent-encodes one path segment (keys may hold `/` or spaces).
fn urlencode_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// What the protocols' tests share.
#[cfg(test)]
mod testing {
    use url::Url;

    /// A connection's base URL, with a service path.
    pub fn base() -> Url {
        Url::parse("https://erp.example.com/base/").unwrap()
    }

    /// A time to filter changes since.
    pub fn since() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339("2024-03-01T10:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc)
    }

    /// A URL's query, decoded, in order.
    pub fn query(url: &Url) -> Vec<(String, String)> {
        url.query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    /// Pairs of text, as [`query`] answers them.
    pub fn pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_protocol_has_its_implementation() {
        let base = testing::base();
        let resource = Resource {
            entity: crosswalk_core::model::Entity::Part,
            path: "parts",
            query: &[],
            key: "id",
            changed: None,
            also_found_by: None,
        };
        let first =
            |p: Protocol| testing::query(&of(p).page_url(&base, &resource, 5, None).unwrap());
        assert_eq!(
            first(Protocol::ODataV2),
            testing::pairs(&[("$format", "json"), ("$top", "5")])
        );
        assert_eq!(
            first(Protocol::MaximoJson),
            testing::pairs(&[("lean", "1"), ("oslc.pageSize", "5")])
        );
        assert_eq!(first(Protocol::ODataV4), testing::pairs(&[("$top", "5")]));
    }

    #[test]
    fn odata_literals_quote_text_and_leave_numbers_bare() {
        assert_eq!(odata_literal(&json!("O'Neil")), "'O''Neil'");
        assert_eq!(odata_literal(&json!(5)), "5");
        assert_eq!(urlencode_segment("a/b c"), "a%2Fb%20c");
        let e = object(json!([1])).unwrap_err();
        assert_eq!(e.message, "the record is not a JSON object");
    }
}
