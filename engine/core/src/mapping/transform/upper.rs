//! `upper`: text in capitals.
//!
//! ```yaml
//! transforms: [upper]   # "pc" → "PC", "usd" → "USD"
//! ```

use serde_json::Value;

use super::{TransformDef, expected};

pub(super) const DEF: TransformDef = TransformDef {
    name: "upper",
    summary: "text in capitals",
    arguments: None,
    example: r#""upper""#,
};

pub(super) fn apply(value: Value) -> Result<Value, String> {
    match value {
        Value::String(s) => Ok(Value::String(s.to_uppercase())),
        other => Err(expected("text", &other)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use serde_json::json;

    #[test]
    fn capitals() {
        give(json!("upper"), json!("usd"), json!("USD"));
        fails(json!("upper"), json!([]), "not an array");
    }
}
