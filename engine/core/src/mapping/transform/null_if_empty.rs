//! `null_if_empty`: empty values as `null`.
//!
//! SAP sends `""` for an empty field; the unified model says `null`.
//!
//! ```yaml
//! transforms: [trim, null_if_empty]   # "   " → null
//! ```

use serde_json::Value;

use super::TransformDef;

pub(super) const DEF: TransformDef = TransformDef {
    name: "null_if_empty",
    summary: "\"\", white space only, [] and {} become null",
    arguments: None,
    example: r#""null_if_empty""#,
};

pub(super) fn apply(value: Value) -> Value {
    let empty = match &value {
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    };
    if empty { Value::Null } else { value }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use serde_json::{Value, json};

    #[test]
    fn empties() {
        give(json!("null_if_empty"), json!(""), Value::Null);
        give(json!("null_if_empty"), json!("  "), Value::Null);
        give(json!("null_if_empty"), json!([]), Value::Null);
        give(json!("null_if_empty"), json!({}), Value::Null);
        give(json!("null_if_empty"), json!(0), json!(0));
        give(json!("null_if_empty"), json!("x"), json!("x"));
    }
}
