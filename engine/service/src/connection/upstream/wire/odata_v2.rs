//! OData V2, as SAP S/4HANA's API services speak it (SAP Gateway).
//!
//! - Pages: `$format=json&$top=<n>`, records in `d.results`; the next page is the
//!   server's `d.__next` when it pages itself, else `$skip` past a full page.
//! - Changes: `$filter=<field> ge datetimeoffset'…Z'`, or `datetime'…'` for a
//!   `LastChangeDate` (an `Edm.DateTime` without an offset).
//! - One record: by its key predicate, `Path('key')`, whose answer is the record in
//!   `d`; a record also known by a second number (a business partner by its supplier
//!   number) is first looked for with `$filter=<number> eq 'key'`.
//! - Writes: a `POST` to the collection and a `PATCH` at the key predicate, each after
//!   a GET that fetches the CSRF token and session cookies of SAP Gateway.

use serde_json::Value;
use url::Url;

use super::{
    Lookup, Reading, WireProtocol, Write, array, join, link, missing, object, odata_literal,
    resource_url, seconds, urlencode_segment,
};
use crate::connection::upstream::error::UpstreamError;
use crate::connection::upstream::{Next, Page, RecordKey};
use crosswalk_systems::Resource;

/// OData V2 (SAP).
pub(super) struct ODataV2;

/// `Path('key')`: the key quoted as an OData V2 literal, its quotes doubled, and
/// percent-encoded as a path segment.
fn key_path(resource: &Resource, key: &str) -> String {
    format!(
        "{}('{}')",
        resource.path,
        urlencode_segment(&key.replace('\'', "''"))
    )
}

impl WireProtocol for ODataV2 {
    fn page_url(
        &self,
        base: &Url,
        resource: &Resource,
        top: u32,
        skip: Option<u64>,
    ) -> Result<Url, UpstreamError> {
        let mut url = resource_url(base, resource, resource.path)?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("$format", "json");
            q.append_pair("$top", &top.to_string());
            if let Some(skip) = skip {
                q.append_pair("$skip", &skip.to_string());
            }
        }
        Ok(url)
    }

    fn changed_since(
        &self,
        field: &str,
        since: &chrono::DateTime<chrono::Utc>,
    ) -> (&'static str, String) {
        let seconds = seconds(since);
        if field == "LastChangeDate" {
            ("$filter", format!("{field} ge datetime'{seconds}'"))
        } else {
            ("$filter", format!("{field} ge datetimeoffset'{seconds}Z'"))
        }
    }

    fn page(&self, body: Value, previous: Option<&Next>, top: u32) -> Result<Page, UpstreamError> {
        let d = body.get("d").ok_or_else(|| missing("`d`"))?;
        let records = array(d.get("results"), "`d.results` array")?;
        let next = match link(d.get("__next")) {
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
        Ok(Page { records, next })
    }

    fn lookups(
        &self,
        base: &Url,
        resource: &Resource,
        record: &RecordKey,
    ) -> Result<Vec<Lookup>, UpstreamError> {
        let mut lookups = Vec::with_capacity(2);
        // A record also known by a second number (an SAP vendor by its supplier
        // number, which its id prefers) is looked for by it first.
        if let Some(field) = resource.also_found_by {
            let mut url = resource_url(base, resource, resource.path)?;
            url.query_pairs_mut()
                .append_pair(
                    "$filter",
                    &format!(
                        "{field} eq {}",
                        odata_literal(&Value::String(record.key.clone()))
                    ),
                )
                .append_pair("$top", "1")
                .append_pair("$format", "json");
            lookups.push(Lookup {
                url,
                reading: Reading::Listed { field },
            });
        }
        let mut url = resource_url(base, resource, &key_path(resource, &record.key))?;
        url.query_pairs_mut().append_pair("$format", "json");
        lookups.push(Lookup {
            url,
            reading: Reading::Record,
        });
        Ok(lookups)
    }

    fn record(&self, body: Value) -> Result<Value, UpstreamError> {
        let mut m = object(body)?;
        Ok(m.remove("d").unwrap_or(Value::Object(m)))
    }

    fn create(&self, base: &Url, resource: &Resource) -> Result<Write, UpstreamError> {
        Ok(Write {
            csrf: true,
            ..Write::plain(reqwest::Method::POST, join(base, resource.path)?)
        })
    }

    fn update_reads_first(&self, resource: &Resource, record: &RecordKey) -> bool {
        // A record named by more than its key (other fields of the id, or a second
        // number) is found first, and updated at its own key.
        !record.also.is_empty() || resource.also_found_by.is_some()
    }

    fn update(
        &self,
        base: &Url,
        resource: &Resource,
        record: &RecordKey,
        current: Option<&Value>,
    ) -> Result<Write, UpstreamError> {
        let key = match current.and_then(|c| c.get(resource.key)) {
            Some(Value::String(k)) => k.as_str(),
            _ => record.key.as_str(),
        };
        Ok(Write {
            csrf: true,
            ..Write::plain(
                reqwest::Method::PATCH,
                join(base, &key_path(resource, key))?,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{base, pairs, query, since};
    use super::*;
    use crosswalk_core::model::Entity;
    use serde_json::json;

    const ORDERS: Resource = Resource {
        entity: Entity::PurchaseOrder,
        path: "API_PO/A_PurchaseOrder",
        query: &[("$expand", "to_Item")],
        key: "PurchaseOrder",
        changed: Some("LastChangeDateTime"),
        also_found_by: None,
    };

    const PARTNERS: Resource = Resource {
        entity: Entity::Vendor,
        path: "API_BP/A_BusinessPartner",
        query: &[],
        key: "BusinessPartner",
        changed: Some("LastChangeDate"),
        also_found_by: Some("Supplier"),
    };

    #[test]
    fn pages_are_asked_for_by_top_and_skip() {
        let first = ODataV2.page_url(&base(), &ORDERS, 2, None).unwrap();
        assert_eq!(
            first.as_str().split('?').next().unwrap(),
            "https://erp.example.com/base/API_PO/A_PurchaseOrder"
        );
        assert_eq!(
            query(&first),
            pairs(&[("$expand", "to_Item"), ("$format", "json"), ("$top", "2")])
        );
        let third = ODataV2.page_url(&base(), &ORDERS, 2, Some(4)).unwrap();
        assert_eq!(
            query(&third),
            pairs(&[
                ("$expand", "to_Item"),
                ("$format", "json"),
                ("$top", "2"),
                ("$skip", "4")
            ])
        );
    }

    #[test]
    fn a_full_page_skips_on_and_the_servers_next_link_wins() {
        let page = ODataV2
            .page(json!({"d": {"results": [{}, {}]}}), None, 2)
            .unwrap();
        assert_eq!(page.records.len(), 2);
        assert_eq!(page.next, Some(Next::Skip(2)), "a full page: skip on");
        let page = ODataV2
            .page(json!({"d": {"results": [{}, {}]}}), Some(&Next::Skip(2)), 2)
            .unwrap();
        assert_eq!(page.next, Some(Next::Skip(4)), "the skip adds up");
        let page = ODataV2
            .page(json!({"d": {"results": [{}]}}), Some(&Next::Skip(2)), 2)
            .unwrap();
        assert_eq!(page.next, None, "a short page is the last");
        let page = ODataV2
            .page(
                json!({"d": {"results": [{}], "__next": "A_PurchaseOrder?$skiptoken=5"}}),
                None,
                2,
            )
            .unwrap();
        assert_eq!(
            page.next,
            Some(Next::Link("A_PurchaseOrder?$skiptoken=5".into())),
            "the link as the server wrote it: the upstream resolves it"
        );
        let e = ODataV2.page(json!({"value": []}), None, 2).unwrap_err();
        assert_eq!(e.message, "the upstream's answer has no `d`");
        let e = ODataV2.page(json!({"d": {}}), None, 2).unwrap_err();
        assert_eq!(e.message, "the upstream's answer has no `d.results` array");
    }

    #[test]
    fn changes_are_filtered_with_the_fields_own_date_type() {
        assert_eq!(
            ODataV2.changed_since("LastChangeDateTime", &since()),
            (
                "$filter",
                "LastChangeDateTime ge datetimeoffset'2024-03-01T10:00:00Z'".into()
            )
        );
        assert_eq!(
            ODataV2.changed_since("LastChangeDate", &since()),
            (
                "$filter",
                "LastChangeDate ge datetime'2024-03-01T10:00:00'".into()
            )
        );
    }

    #[test]
    fn a_record_is_read_at_its_key_predicate_after_its_second_number() {
        let lookups = ODataV2
            .lookups(&base(), &ORDERS, &RecordKey::plain("45/0'1"))
            .unwrap();
        assert_eq!(lookups.len(), 1);
        assert_eq!(lookups[0].reading, Reading::Record);
        assert_eq!(
            lookups[0].url.as_str(),
            "https://erp.example.com/base/API_PO/A_PurchaseOrder('45%2F0%27%271')?%24expand=to_Item&%24format=json"
        );
        let lookups = ODataV2
            .lookups(&base(), &PARTNERS, &RecordKey::plain("O'1"))
            .unwrap();
        assert_eq!(
            lookups.iter().map(|l| l.reading).collect::<Vec<_>>(),
            [Reading::Listed { field: "Supplier" }, Reading::Record]
        );
        assert_eq!(
            query(&lookups[0].url),
            pairs(&[
                ("$filter", "Supplier eq 'O''1'"),
                ("$top", "1"),
                ("$format", "json")
            ])
        );
        assert!(
            lookups[1]
                .url
                .as_str()
                .starts_with("https://erp.example.com/base/API_BP/A_BusinessPartner('O%27%271')?")
        );
        // The record is in `d`; an answer without it is the record itself.
        assert_eq!(
            ODataV2
                .record(json!({"d": {"PurchaseOrder": "1"}}))
                .unwrap(),
            json!({"PurchaseOrder": "1"})
        );
        assert_eq!(
            ODataV2.record(json!({"PurchaseOrder": "1"})).unwrap(),
            json!({"PurchaseOrder": "1"})
        );
        assert!(ODataV2.record(json!("1")).is_err());
    }

    #[test]
    fn writes_fetch_a_csrf_token_and_patch_at_the_key() {
        let create = ODataV2.create(&base(), &ORDERS).unwrap();
        assert_eq!(create.method, reqwest::Method::POST);
        assert_eq!(
            create.url.as_str(),
            "https://erp.example.com/base/API_PO/A_PurchaseOrder",
            "no expands on a write"
        );
        assert!(create.csrf);
        assert!(create.headers.is_empty());

        let plain = RecordKey::plain("4500000201");
        assert!(!ODataV2.update_reads_first(&ORDERS, &plain));
        let update = ODataV2.update(&base(), &ORDERS, &plain, None).unwrap();
        assert_eq!(update.method, reqwest::Method::PATCH);
        assert_eq!(
            update.url.as_str(),
            "https://erp.example.com/base/API_PO/A_PurchaseOrder('4500000201')"
        );
        assert!(update.csrf);

        // Named by its supplier number, a partner is updated at its own key.
        let supplier = RecordKey::plain("17300001");
        assert!(ODataV2.update_reads_first(&PARTNERS, &supplier));
        let current = json!({"BusinessPartner": "1000001", "Supplier": "17300001"});
        let update = ODataV2
            .update(&base(), &PARTNERS, &supplier, Some(&current))
            .unwrap();
        assert_eq!(
            update.url.as_str(),
            "https://erp.example.com/base/API_BP/A_BusinessPartner('1000001')"
        );
        let composite = RecordKey {
            key: "1".into(),
            also: vec![("CompanyCode".into(), json!("1010"))],
        };
        assert!(ODataV2.update_reads_first(&ORDERS, &composite));
    }
}
