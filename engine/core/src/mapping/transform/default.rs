//! `default`: a value for `null`.
//!
//! The same as a rule's `default`, but at a chosen place in the chain.
//!
//! ```yaml
//! transforms: [{default: "EA"}, upper]   # null → "EA"
//! ```

use serde_json::Value;

use super::TransformDef;

pub(super) const DEF: TransformDef = TransformDef {
    name: "default",
    summary: "replaces null with the given value",
    arguments: Some("the value that replaces null"),
    example: r#"{"default": "unknown"}"#,
};

pub(super) fn apply(value: Value, default: &Value) -> Value {
    if value.is_null() {
        default.clone()
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use serde_json::{Value, json};

    #[test]
    fn replaces_null_only() {
        give(json!({"default": "EA"}), Value::Null, json!("EA"));
        give(json!({"default": "EA"}), json!(""), json!(""));
        give(json!({"default": 0}), json!(5), json!(5));
        rejects(json!("default"), "needs the value");
    }
}
