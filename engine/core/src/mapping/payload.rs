//! Source payloads as systems send them: one record, or a collection in its envelope.
//!
//! SAP OData V2 wraps everything in `{"d": …}` (a collection in `{"d": {"results": […]}}`),
//! Maximo's JSON API lists records in `{"member": […]}`, OData V4 services such as
//! Dynamics 365 in `{"value": […]}`, and a plain JSON array is a collection too. This
//! module takes those envelopes off, so that the mapping sees the records themselves.

use serde_json::Value;

/// One record or several.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// A single record (its envelope removed).
    One(Value),
    /// A collection's records, in order.
    Many(Vec<Value>),
}

/// Text that is not JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the payload is not valid JSON: {message} at line {line}, column {column}")]
pub struct PayloadError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What the parser found.
    pub message: String,
}

impl Payload {
    /// Parses JSON text and removes its envelope.
    pub fn parse(text: &str) -> Result<Payload, PayloadError> {
        Payload::parsed(serde_json::from_str(text))
    }

    /// Parses JSON text as `plan` reads it for `options` (see
    /// [`Plan::parse_source`](super::Plan::parse_source)) and removes its envelope.
    pub fn parse_for(
        text: &str,
        plan: &super::Plan,
        options: super::MapOptions,
    ) -> Result<Payload, PayloadError> {
        Payload::parsed(plan.parse_source(text.as_bytes(), options))
    }

    fn parsed(value: serde_json::Result<Value>) -> Result<Payload, PayloadError> {
        let value = value.map_err(|e| {
            let message = e.to_string();
            let message = match message.rfind(" at line ") {
                Some(i) => message[..i].to_owned(),
                None => message,
            };
            PayloadError {
                line: e.line(),
                column: e.column(),
                message,
            }
        })?;
        Ok(Payload::unwrap(value))
    }

    /// Removes the envelope of a parsed payload.
    pub fn unwrap(value: Value) -> Payload {
        match value {
            Value::Array(items) => Payload::Many(items),
            Value::Object(mut map) => {
                if map.len() == 1
                    && let Some(d) = map.get_mut("d")
                {
                    let d = d.take();
                    return match d {
                        Value::Object(mut inner) if is_results(&inner) => {
                            Payload::Many(take_array(&mut inner, "results"))
                        }
                        other => Payload::One(other),
                    };
                }
                for (key, envelope) in [("value", "@"), ("member", "")] {
                    let only_meta = map.keys().all(|k| {
                        k == key
                            || (envelope == "@" && k.starts_with("@odata."))
                            || (envelope.is_empty()
                                && matches!(k.as_str(), "href" | "responseInfo"))
                    });
                    if only_meta && map.get(key).is_some_and(Value::is_array) {
                        return Payload::Many(take_array(&mut map, key));
                    }
                }
                Payload::One(Value::Object(map))
            }
            other => Payload::One(other),
        }
    }

    /// The records, whether one or many.
    pub fn into_records(self) -> Vec<Value> {
        match self {
            Payload::One(v) => vec![v],
            Payload::Many(vs) => vs,
        }
    }
}

/// `{"results": [...]}`, with the optional `__count` and `__next` of OData V2.
fn is_results(map: &serde_json::Map<String, Value>) -> bool {
    map.get("results").is_some_and(Value::is_array)
        && map
            .keys()
            .all(|k| matches!(k.as_str(), "results" | "__count" | "__next"))
}

fn take_array(map: &mut serde_json::Map<String, Value>, key: &str) -> Vec<Value> {
    match map.remove(key) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelopes() {
        let one = |v: Value| Payload::unwrap(v);
        assert_eq!(
            one(json!({"d": {"PurchaseOrder": "1"}})),
            Payload::One(json!({"PurchaseOrder": "1"}))
        );
        assert_eq!(
            one(json!({"d": {"results": [{"a": 1}], "__next": "x"}})),
            Payload::Many(vec![json!({"a": 1})])
        );
        assert_eq!(
            one(json!({"member": [{"ponum": "1"}], "href": "h", "responseInfo": {}})),
            Payload::Many(vec![json!({"ponum": "1"})])
        );
        assert_eq!(
            one(json!({"@odata.context": "c", "value": [{"a": 1}, {"a": 2}]})),
            Payload::Many(vec![json!({"a": 1}), json!({"a": 2})])
        );
        assert_eq!(one(json!([{"a": 1}])), Payload::Many(vec![json!({"a": 1})]));
        // A record that merely has a `value` field is a record.
        assert_eq!(
            one(json!({"value": [1], "Name": "x"})),
            Payload::One(json!({"value": [1], "Name": "x"}))
        );
    }

    #[test]
    fn not_json_names_the_position() {
        let e = Payload::parse("{\n  \"a\": 1,\n  oops\n}").unwrap_err();
        assert_eq!((e.line, e.column), (3, 3));
        assert!(e.to_string().contains("line 3, column 3"), "{e}");
    }
}
