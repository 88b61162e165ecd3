//! Which record a read or an update is about: a [`RecordKey`] (the key field's value
//! and the other fields of a composite id), and how a record the upstream answers is
//! checked against it, so that a query that matches more than asked for (a pattern,
//! a case-insensitive compare) finds nothing else.

use serde_json::Value;

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

/// The text of a key value: a string as it is, a number as JSON writes it.
pub(super) fn key_text(value: &Value) -> Option<String> {
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
    pub(super) fn matches(&self, record: &Value) -> bool {
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
    pub(super) fn is(&self, key_field: &str, record: &Value) -> bool {
        record.get(key_field).and_then(key_text).as_deref() == Some(self.key.as_str())
            && self.matches(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_record_is_the_key_exactly_with_every_other_field() {
        let key = RecordKey {
            key: "DE-000412".into(),
            also: vec![("dataAreaId".into(), "demf".into())],
        };
        assert!(key.is(
            "PurchaseOrderNumber",
            &json!({"dataAreaId": "demf", "PurchaseOrderNumber": "DE-000412"})
        ));
        assert!(!key.is(
            "PurchaseOrderNumber",
            &json!({"dataAreaId": "demf", "PurchaseOrderNumber": "DE-0004120"})
        ));
        assert!(key.matches(&json!({"dataAreaId": "demf", "PurchaseOrderNumber": "DE-000412"})));
        assert!(!key.matches(&json!({"dataAreaId": "usmf", "PurchaseOrderNumber": "DE-000412"})));
        assert!(!key.matches(&json!({"PurchaseOrderNumber": "DE-000412"})));
        // A number and its text are the same key.
        let numbered = RecordKey {
            key: "7".into(),
            also: vec![("line".into(), json!(2))],
        };
        assert!(numbered.is("id", &json!({"id": 7, "line": "2"})));
        assert!(!numbered.is("id", &json!({"id": true, "line": 2})));
    }
}
