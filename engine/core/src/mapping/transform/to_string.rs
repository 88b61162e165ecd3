//! `to_string`: a scalar as text.
//!
//! ```yaml
//! transforms: [to_string]   # 10 → "10", 12.5 → "12.5", true → "true"
//! ```

use serde_json::Value;

use super::{TransformDef, expected, scalar_text};

pub(super) const DEF: TransformDef = TransformDef {
    name: "to_string",
    summary: "a number or boolean as text; strings stay as they are",
    arguments: None,
    example: r#""to_string""#,
};

pub(super) fn apply(value: Value) -> Result<Value, String> {
    scalar_text(&value)
        .map(Value::String)
        .ok_or_else(|| expected("a string, number or boolean", &value))
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use serde_json::json;

    #[test]
    fn scalars_become_text() {
        give(json!("to_string"), json!(10), json!("10"));
        give(json!("to_string"), json!(10.0), json!("10"));
        give(json!("to_string"), json!(12.5), json!("12.5"));
        give(json!("to_string"), json!(true), json!("true"));
        give(json!("to_string"), json!("PO"), json!("PO"));
        fails(json!("to_string"), json!({"a": 1}), "not an object");
    }
}
