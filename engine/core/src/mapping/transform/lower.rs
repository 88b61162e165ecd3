//! `lower`: text in small letters.
//!
//! ```yaml
//! transforms: [lower]   # "PC" → "pc", "Info@Vendor.COM" → "info@vendor.com"
//! ```

use serde_json::Value;

use super::{TransformDef, expected};

pub(super) const DEF: TransformDef = TransformDef {
    name: "lower",
    summary: "text in small letters",
    arguments: None,
    example: r#""lower""#,
};

pub(super) fn apply(value: Value) -> Result<Value, String> {
    match value {
        Value::String(s) => Ok(Value::String(s.to_lowercase())),
        other => Err(expected("text", &other)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use serde_json::json;

    #[test]
    fn small_letters() {
        give(
            json!("lower"),
            json!("Info@Vendor.COM"),
            json!("info@vendor.com"),
        );
        fails(json!("lower"), json!(true), "not a boolean");
    }
}
