//! Live connections: reading a source system's own API over HTTP.
//!
//! An [`Upstream`] is one connection's client: its base URL, its credentials (opened
//! from the store only here, never logged: their `Debug` is redacted), a timeout, a
//! limit on concurrent calls, and the [`Dialect`] of its system — which paths hold
//! which entity, and the protocol that says how a page is asked for and where the
//! next one is:
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
//! connection's credentials elsewhere; a write goes to the same origin only. Every
//! call goes through an [`Outbound`] client, which refuses internal addresses unless
//! the operator allows them ([`crate::egress`]); a refused address is a
//! [`ErrorKind::Network`] error that names the address and the rule.
//!
//! # Layout
//!
//! - this file: [`Upstream`] (list, get, create, update, verify), [`Page`], [`Next`],
//!   and the shared HTTP [`client`];
//! - `config`: [`UpstreamConfig`] and its checks;
//! - `credentials`: [`Credentials`], [`AuthKind`], [`basic_header`];
//! - `error`: [`UpstreamError`], made from transport failures and non-success answers,
//!   and [`parse_retry_after`];
//! - `key`: [`RecordKey`], and the check that a record found is the one asked for;
//! - `oauth`: the client-credentials access token, refreshed single flight;
//! - `send`: one request with credentials, retried once with a fresh OAuth token, and
//!   SAP's CSRF token;
//! - `wire`: the requests and answers of each protocol (OData V2, Maximo's JSON API,
//!   OData V4) behind one trait, as pure functions that [`Upstream`] sends.

mod config;
mod credentials;
mod error;
mod key;
mod oauth;
mod send;
mod wire;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Semaphore;
use url::Url;

use super::health::ErrorKind;
use crate::egress::{Outbound, Policy};
use crosswalk_core::model::Entity;
use crosswalk_systems::{Dialect, Resource, SystemId};
use wire::{Reading, WireProtocol};

pub use config::{MAX_PAGE_SIZE, UpstreamConfig};
pub use credentials::{AuthKind, Credentials, basic_header};
pub use error::{UpstreamError, parse_retry_after};
pub use key::RecordKey;

use key::key_text;

/// Where to continue a listing: the upstream's own next link, or an offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Next {
    /// A URL the upstream gave (same origin as the base URL).
    Link(String),
    /// `$skip` for OData V2 without server paging.
    Skip(u64),
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
    /// The requests and answers of the dialect's protocol.
    wire: &'static dyn WireProtocol,
    base: Url,
    credentials: Credentials,
    permits: Semaphore,
    page_size: u32,
    timeout: Duration,
    /// The current OAuth access token (with OAuth credentials).
    token: oauth::AccessToken,
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
            wire: wire::of(dialect.protocol),
            base,
            credentials,
            permits: Semaphore::new(config.max_concurrency as usize),
            page_size: config.page_size,
            timeout: Duration::from_millis(config.timeout_ms),
            token: oauth::AccessToken::default(),
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
        let resource = self.resource(entity)?;
        let top = page_size.unwrap_or(self.page_size).min(MAX_PAGE_SIZE);
        let url = match next {
            Some(Next::Link(link)) => self.same_origin(link)?,
            Some(Next::Skip(_)) | None => {
                let skip = match next {
                    Some(Next::Skip(skip)) => Some(*skip),
                    _ => None,
                };
                let mut url = self.wire.page_url(&self.base, resource, top, skip)?;
                if let (Some(since), Some(field)) = (updated_since, resource.changed) {
                    let (key, value) = self.wire.changed_since(field, since);
                    url.query_pairs_mut().append_pair(key, &value);
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
        Ok(self.resource(entity)?.key)
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
        let resource = self.resource(entity)?;
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

    /// One record by its key; `None` when the upstream has none. The protocol's
    /// lookups are tried in order; a record an answer holds counts only if it is the
    /// one asked for.
    pub async fn get(
        &self,
        entity: Entity,
        record: &RecordKey,
    ) -> Result<Option<Value>, UpstreamError> {
        let resource = self.resource(entity)?;
        for lookup in self.wire.lookups(&self.base, resource, record)? {
            let Some(body) = self.get_json(lookup.url).await? else {
                continue;
            };
            let found = match lookup.reading {
                Reading::Listed { field } => self
                    .page(body, None, 1)?
                    .records
                    .into_iter()
                    .find(|found| record.is(field, found)),
                // A record read by its key has the key: the other fields of the id
                // must match; and a record with a second number is this one only when
                // that number is absent (its id is then its key).
                Reading::Record => Some(self.wire.record(body)?).filter(|found| {
                    record.matches(found) && second_number_absent(resource, &record.key, found)
                }),
            };
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// Checks the credentials with the smallest read the system allows.
    pub async fn verify(&self) -> Result<(), UpstreamError> {
        let entity = self.dialect.first_entity();
        self.list(entity, None, None, Some(1)).await.map(|_| ())
    }

    /// Creates a record from its native payload; answers the record's key.
    pub async fn create(&self, entity: Entity, native: &Value) -> Result<String, UpstreamError> {
        let resource = self.resource(entity)?;
        let write = self.wire.create(&self.base, resource)?;
        let answer = self.write(write, native).await?;
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
        let resource = self.resource(entity)?;
        let current = if self.wire.update_reads_first(resource, record) {
            match self.get(entity, record).await? {
                Some(current) => Some(current),
                None => return Ok(false),
            }
        } else {
            None
        };
        let write = self
            .wire
            .update(&self.base, resource, record, current.as_ref())?;
        let answer = self.write(write, native).await?;
        Ok(answer.status != 404)
    }

    /// Sends a write on the upstream's own origin, after fetching a CSRF token when
    /// the protocol wants one.
    async fn write(
        &self,
        write: wire::Write,
        native: &Value,
    ) -> Result<send::Answer, UpstreamError> {
        let url = self.same_origin(write.url.as_str())?;
        let mut headers = if write.csrf {
            self.csrf(&url).await?
        } else {
            Vec::new()
        };
        headers.extend(write.headers);
        self.send(write.method, url, Some(native), &headers).await
    }

    /// Where the system keeps `entity`. A dialect lists exactly the entities its
    /// system's mappings map, and requests are checked against those first; this is a
    /// guard, not a path.
    fn resource(&self, entity: Entity) -> Result<&'static Resource, UpstreamError> {
        self.dialect.resource(entity).ok_or_else(|| {
            UpstreamError::bad_response(format!("{} has no {entity} resource", self.system))
        })
    }

    /// The records of a collection answer and where the next page is, with a relative
    /// next link resolved against the base URL.
    fn page(&self, body: Value, previous: Option<&Next>, top: u32) -> Result<Page, UpstreamError> {
        let Page { records, next } = self.wire.page(body, previous, top)?;
        let next = match next {
            Some(Next::Link(link)) => Some(Next::Link(
                self.base
                    .join(&link)
                    .map_err(|e| {
                        UpstreamError::bad_response(format!(
                            "the next-page link `{link}` is not a URL: {e}"
                        ))
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
            UpstreamError::bad_response(
                "the cursor's next page is not on this connection's upstream",
            )
        })
    }
}

/// Whether a record found by `key` is not known by a second number other than the
/// key: a resource whose records have one (`also_found_by`) names them by it first, so
/// a record whose second number is set and differs was not asked for.
fn second_number_absent(resource: &Resource, key: &str, found: &Value) -> bool {
    resource.also_found_by.is_none_or(|field| {
        found
            .get(field)
            .and_then(key_text)
            .is_none_or(|t| t.is_empty() || t == key)
    })
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
    fn credentials_are_never_printed() {
        let c = Credentials::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        let up = Upstream::new(
            SystemId::SapS4Hana,
            &serde_json::from_value(json!({"base_url": "https://erp.example.com"})).unwrap(),
            c,
            client(Policy::default()),
        )
        .unwrap();
        assert!(!format!("{up:?}").contains("hunter2"));
    }

    #[test]
    fn a_record_with_a_second_number_is_the_one_asked_for_only_without_another() {
        let partners = SystemId::SapS4Hana
            .system()
            .dialect
            .resource(Entity::Vendor)
            .unwrap();
        assert_eq!(partners.also_found_by, Some("Supplier"));
        let key = "1000001";
        assert!(second_number_absent(
            partners,
            key,
            &json!({"BusinessPartner": key})
        ));
        assert!(second_number_absent(
            partners,
            key,
            &json!({"BusinessPartner": key, "Supplier": ""})
        ));
        assert!(second_number_absent(
            partners,
            key,
            &json!({"BusinessPartner": key, "Supplier": key})
        ));
        assert!(!second_number_absent(
            partners,
            key,
            &json!({"BusinessPartner": key, "Supplier": "17300001"})
        ));
    }
}
