//! OData V4, as Dynamics 365 Finance & Operations' data entities speak it.
//!
//! - Pages: `$top=<n>`, records in `value`; the next page is `@odata.nextLink`.
//! - Changes: `$filter=<field> ge …Z`.
//! - One record: the collection queried with `$filter=<key> eq '…' and <field> eq …`
//!   (the resource's own `cross-company=true` reaches every legal entity).
//! - Writes: a `POST` to the collection; a `PATCH` at the entity's full key, which
//!   includes its legal entity: `Path(dataAreaId='…',<key>='…')?cross-company=true`.

use serde_json::Value;
use url::Url;

use super::{
    Lookup, Reading, WireProtocol, Write, array, join, link, odata_literal, resource_url, seconds,
    urlencode_segment,
};
use crate::connection::upstream::error::UpstreamError;
use crate::connection::upstream::{Next, Page, RecordKey};
use crosswalk_systems::Resource;

/// OData V4 (Dynamics 365).
pub(super) struct ODataV4;

impl WireProtocol for ODataV4 {
    fn page_url(
        &self,
        base: &Url,
        resource: &Resource,
        top: u32,
        _skip: Option<u64>,
    ) -> Result<Url, UpstreamError> {
        let mut url = resource_url(base, resource, resource.path)?;
        url.query_pairs_mut().append_pair("$top", &top.to_string());
        Ok(url)
    }

    fn changed_since(
        &self,
        field: &str,
        since: &chrono::DateTime<chrono::Utc>,
    ) -> (&'static str, String) {
        let seconds = seconds(since);
        ("$filter", format!("{field} ge {seconds}Z"))
    }

    fn page(
        &self,
        body: Value,
        _previous: Option<&Next>,
        _top: u32,
    ) -> Result<Page, UpstreamError> {
        let records = array(body.get("value"), "`value` array")?;
        let next = link(body.get("@odata.nextLink")).map(Next::Link);
        Ok(Page { records, next })
    }

    fn lookups(
        &self,
        base: &Url,
        resource: &Resource,
        record: &RecordKey,
    ) -> Result<Vec<Lookup>, UpstreamError> {
        let key = Value::String(record.key.clone());
        let clauses: Vec<String> = std::iter::once((resource.key, &key))
            .chain(record.also.iter().map(|(f, v)| (f.as_str(), v)))
            .map(|(f, v)| format!("{f} eq {}", odata_literal(v)))
            .collect();
        let mut url = resource_url(base, resource, resource.path)?;
        url.query_pairs_mut()
            .append_pair("$filter", &clauses.join(" and "));
        Ok(vec![Lookup {
            url,
            reading: Reading::Listed {
                field: resource.key,
            },
        }])
    }

    fn record(&self, body: Value) -> Result<Value, UpstreamError> {
        super::object(body).map(Value::Object)
    }

    fn create(&self, base: &Url, resource: &Resource) -> Result<Write, UpstreamError> {
        Ok(Write::plain(
            reqwest::Method::POST,
            join(base, resource.path)?,
        ))
    }

    fn update_reads_first(&self, _resource: &Resource, _record: &RecordKey) -> bool {
        // The key of a data entity includes the legal entity, which the record holds.
        true
    }

    fn update(
        &self,
        base: &Url,
        resource: &Resource,
        record: &RecordKey,
        current: Option<&Value>,
    ) -> Result<Write, UpstreamError> {
        let area = current
            .and_then(|c| c.get("dataAreaId"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .replace('\'', "''");
        let path = format!(
            "{}(dataAreaId='{area}',{}='{}')",
            resource.path,
            resource.key,
            urlencode_segment(&record.key.replace('\'', "''"))
        );
        let mut url = join(base, &path)?;
        url.query_pairs_mut().append_pair("cross-company", "true");
        Ok(Write::plain(reqwest::Method::PATCH, url))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{base, pairs, query, since};
    use super::*;
    use crosswalk_core::model::Entity;
    use serde_json::json;

    const VENDORS: Resource = Resource {
        entity: Entity::Vendor,
        path: "data/VendorsV2",
        query: &[("cross-company", "true")],
        key: "VendorAccountNumber",
        changed: None,
        also_found_by: None,
    };

    #[test]
    fn pages_are_asked_for_by_top_and_follow_the_next_link() {
        let first = ODataV4.page_url(&base(), &VENDORS, 100, None).unwrap();
        assert_eq!(
            first.as_str(),
            "https://erp.example.com/base/data/VendorsV2?cross-company=true&%24top=100"
        );
        assert_eq!(
            ODataV4.page_url(&base(), &VENDORS, 100, Some(100)).unwrap(),
            first,
            "OData V4 pages by link, never by offset"
        );
        let page = ODataV4
            .page(
                json!({"value": [{"VendorAccountNumber": "V1"}], "@odata.nextLink": "https://erp.example.com/data/VendorsV2?$skip=100"}),
                None,
                100,
            )
            .unwrap();
        assert_eq!(page.records.len(), 1);
        assert_eq!(
            page.next,
            Some(Next::Link(
                "https://erp.example.com/data/VendorsV2?$skip=100".into()
            ))
        );
        let last = ODataV4.page(json!({"value": [{}]}), None, 1).unwrap();
        assert_eq!(
            last.next, None,
            "a full page without a next link is the last"
        );
        let e = ODataV4.page(json!({"d": {}}), None, 1).unwrap_err();
        assert_eq!(e.message, "the upstream's answer has no `value` array");
    }

    #[test]
    fn changes_and_keys_are_odata_filters() {
        assert_eq!(
            ODataV4.changed_since("ModifiedDateTime", &since()),
            ("$filter", "ModifiedDateTime ge 2024-03-01T10:00:00Z".into())
        );
        let key = RecordKey {
            key: "O'1".into(),
            also: vec![("dataAreaId".into(), json!("usmf"))],
        };
        let lookups = ODataV4.lookups(&base(), &VENDORS, &key).unwrap();
        assert_eq!(lookups.len(), 1);
        assert_eq!(
            lookups[0].reading,
            Reading::Listed {
                field: "VendorAccountNumber"
            }
        );
        assert_eq!(
            query(&lookups[0].url),
            pairs(&[
                ("cross-company", "true"),
                (
                    "$filter",
                    "VendorAccountNumber eq 'O''1' and dataAreaId eq 'usmf'"
                )
            ])
        );
        assert_eq!(
            ODataV4
                .record(json!({"VendorAccountNumber": "V1"}))
                .unwrap(),
            json!({"VendorAccountNumber": "V1"})
        );
    }

    #[test]
    fn writes_post_and_patch_at_the_key_with_its_legal_entity() {
        let create = ODataV4.create(&base(), &VENDORS).unwrap();
        assert_eq!(
            create,
            Write::plain(
                reqwest::Method::POST,
                Url::parse("https://erp.example.com/base/data/VendorsV2").unwrap()
            )
        );
        let key = RecordKey::plain("V 1");
        assert!(ODataV4.update_reads_first(&VENDORS, &key));
        let update = ODataV4
            .update(
                &base(),
                &VENDORS,
                &key,
                Some(&json!({"dataAreaId": "usmf", "VendorAccountNumber": "V 1"})),
            )
            .unwrap();
        assert_eq!(update.method, reqwest::Method::PATCH);
        assert_eq!(
            update.url.as_str(),
            "https://erp.example.com/base/data/VendorsV2(dataAreaId='usmf',VendorAccountNumber='V%201')?cross-company=true"
        );
        assert!(update.headers.is_empty() && !update.csrf);
    }
}
