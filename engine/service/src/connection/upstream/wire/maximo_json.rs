//! IBM Maximo's JSON API (OSLC object structures), in the lean format (`lean=1`).
//!
//! - Pages: `oslc.pageSize=<n>`, records in `member`; the next page is
//!   `responseInfo.nextPage.href`.
//! - Changes: `oslc.where=<field>>="…+00:00"`.
//! - One record: the collection queried with `oslc.where=<key>="…" and <field>=…`
//!   (text in double quotes, numbers bare); `=` may match more than the value (`%` is
//!   a wildcard), so the answer is checked for the record itself.
//! - Writes: a `POST` to the collection with `properties: <key>`, so that the answer
//!   names the record created; an update is a `POST` at the record's own `href` that
//!   says `x-method-override: PATCH` and `patchtype: MERGE` (the fields not sent stay).

use serde_json::Value;
use url::Url;

use super::{Lookup, Reading, WireProtocol, Write, array, join, link, resource_url, seconds};
use crate::connection::upstream::error::UpstreamError;
use crate::connection::upstream::key::key_text;
use crate::connection::upstream::{Next, Page, RecordKey};
use crosswalk_systems::Resource;

/// Maximo's JSON API.
pub(super) struct MaximoJson;

/// A value in `oslc.where`: a number as it is, text in double quotes with `\` and `"`
/// escaped.
fn literal(value: &Value) -> String {
    match value {
        Value::Number(n) => n.to_string(),
        other => {
            let text = key_text(other).unwrap_or_default();
            format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
        }
    }
}

impl WireProtocol for MaximoJson {
    fn page_url(
        &self,
        base: &Url,
        resource: &Resource,
        top: u32,
        _skip: Option<u64>,
    ) -> Result<Url, UpstreamError> {
        let mut url = resource_url(base, resource, resource.path)?;
        url.query_pairs_mut()
            .append_pair("lean", "1")
            .append_pair("oslc.pageSize", &top.to_string());
        Ok(url)
    }

    fn changed_since(
        &self,
        field: &str,
        since: &chrono::DateTime<chrono::Utc>,
    ) -> (&'static str, String) {
        let seconds = seconds(since);
        ("oslc.where", format!("{field}>=\"{seconds}+00:00\""))
    }

    fn page(
        &self,
        body: Value,
        _previous: Option<&Next>,
        _top: u32,
    ) -> Result<Page, UpstreamError> {
        let records = array(body.get("member"), "`member` array")?;
        let next = link(body.pointer("/responseInfo/nextPage/href")).map(Next::Link);
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
            .map(|(f, v)| format!("{f}={}", literal(v)))
            .collect();
        let mut url = resource_url(base, resource, resource.path)?;
        url.query_pairs_mut()
            .append_pair("lean", "1")
            .append_pair("oslc.where", &clauses.join(" and "));
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
        let mut url = join(base, resource.path)?;
        url.query_pairs_mut().append_pair("lean", "1");
        Ok(Write {
            headers: vec![("properties", resource.key.to_owned())],
            ..Write::plain(reqwest::Method::POST, url)
        })
    }

    fn update_reads_first(&self, _resource: &Resource, _record: &RecordKey) -> bool {
        // A record is updated at its own href, which only the record knows.
        true
    }

    fn update(
        &self,
        base: &Url,
        resource: &Resource,
        record: &RecordKey,
        current: Option<&Value>,
    ) -> Result<Write, UpstreamError> {
        let href = current
            .and_then(|c| c.get("href"))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                UpstreamError::bad_response(format!(
                    "Maximo's {} `{}` has no href to update it at",
                    resource.entity, record.key
                ))
            })?;
        let mut url = join(base, href)?;
        url.query_pairs_mut().append_pair("lean", "1");
        Ok(Write {
            headers: vec![
                ("x-method-override", "PATCH".into()),
                ("patchtype", "MERGE".into()),
            ],
            ..Write::plain(reqwest::Method::POST, url)
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
        path: "maximo/api/os/mxapipo",
        query: &[("oslc.select", "*")],
        key: "ponum",
        changed: Some("changedate"),
        also_found_by: None,
    };

    #[test]
    fn pages_are_asked_for_by_page_size_and_follow_next_page() {
        let first = MaximoJson.page_url(&base(), &ORDERS, 50, None).unwrap();
        assert_eq!(
            first.as_str().split('?').next().unwrap(),
            "https://erp.example.com/base/maximo/api/os/mxapipo"
        );
        assert_eq!(
            query(&first),
            pairs(&[("oslc.select", "*"), ("lean", "1"), ("oslc.pageSize", "50")])
        );
        assert_eq!(
            MaximoJson.page_url(&base(), &ORDERS, 50, Some(50)).unwrap(),
            first,
            "Maximo pages by link, never by offset"
        );
        let page = MaximoJson
            .page(
                json!({"member": [{"ponum": "1"}], "responseInfo": {"nextPage": {"href": "https://erp.example.com/maximo/api/os/mxapipo?pageno=2"}}}),
                None,
                1,
            )
            .unwrap();
        assert_eq!(page.records, [json!({"ponum": "1"})]);
        assert_eq!(
            page.next,
            Some(Next::Link(
                "https://erp.example.com/maximo/api/os/mxapipo?pageno=2".into()
            ))
        );
        let last = MaximoJson
            .page(json!({"member": [{}], "responseInfo": {}}), None, 1)
            .unwrap();
        assert_eq!(
            last.next, None,
            "a full page without a next page is the last"
        );
        let e = MaximoJson.page(json!({"value": []}), None, 1).unwrap_err();
        assert_eq!(e.message, "the upstream's answer has no `member` array");
    }

    #[test]
    fn changes_and_keys_are_oslc_where_clauses() {
        assert_eq!(
            MaximoJson.changed_since("changedate", &since()),
            (
                "oslc.where",
                "changedate>=\"2024-03-01T10:00:00+00:00\"".into()
            )
        );
        assert_eq!(literal(&json!(r#"a\"b"#)), r#""a\\\"b""#);
        assert_eq!(literal(&json!(5)), "5");
        let key = RecordKey {
            key: "1001".into(),
            also: vec![
                ("siteid".into(), json!("BEDFORD")),
                ("line".into(), json!(2)),
            ],
        };
        let lookups = MaximoJson.lookups(&base(), &ORDERS, &key).unwrap();
        assert_eq!(lookups.len(), 1);
        assert_eq!(lookups[0].reading, Reading::Listed { field: "ponum" });
        assert_eq!(
            query(&lookups[0].url),
            pairs(&[
                ("oslc.select", "*"),
                ("lean", "1"),
                (
                    "oslc.where",
                    "ponum=\"1001\" and siteid=\"BEDFORD\" and line=2"
                )
            ])
        );
        assert_eq!(
            MaximoJson.record(json!({"ponum": "1"})).unwrap(),
            json!({"ponum": "1"})
        );
    }

    #[test]
    fn a_create_names_its_key_and_an_update_merges_at_the_href() {
        let create = MaximoJson.create(&base(), &ORDERS).unwrap();
        assert_eq!(create.method, reqwest::Method::POST);
        assert_eq!(
            create.url.as_str(),
            "https://erp.example.com/base/maximo/api/os/mxapipo?lean=1"
        );
        assert_eq!(create.headers, [("properties", "ponum".to_owned())]);
        assert!(!create.csrf);

        let key = RecordKey::plain("1001");
        assert!(MaximoJson.update_reads_first(&ORDERS, &key));
        let current = json!({"ponum": "1001", "href": "maximo/api/os/mxapipo/_QkVERk9SRC8xMDAx"});
        let update = MaximoJson
            .update(&base(), &ORDERS, &key, Some(&current))
            .unwrap();
        assert_eq!(update.method, reqwest::Method::POST);
        assert_eq!(
            update.url.as_str(),
            "https://erp.example.com/base/maximo/api/os/mxapipo/_QkVERk9SRC8xMDAx?lean=1"
        );
        assert_eq!(
            update.headers,
            [
                ("x-method-override", "PATCH".to_owned()),
                ("patchtype", "MERGE".to_owned())
            ]
        );
        assert!(!update.csrf);
        let e = MaximoJson
            .update(&base(), &ORDERS, &key, Some(&json!({"ponum": "1001"})))
            .unwrap_err();
        assert_eq!(
            e.message,
            "Maximo's purchase_order `1001` has no href to update it at"
        );
    }
}
