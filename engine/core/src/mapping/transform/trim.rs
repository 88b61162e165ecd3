//! `trim`: strips white space around text.
//!
//! ```yaml
//! transforms: [trim]   # "  PC " → "PC"
//! ```

use serde_json::Value;

use super::{TransformDef, expected};

pub(super) const DEF: TransformDef = TransformDef {
    name: "trim",
    summary: "strips white space around text",
    arguments: None,
    example: r#""trim""#,
};

pub(super) fn apply(value: Value) -> Result<Value, String> {
    match value {
        Value::String(s) => Ok(Value::String(s.trim().to_owned())),
        other => Err(expected("text", &other)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use serde_json::json;

    #[test]
    fn strips_white_space() {
        give(json!("trim"), json!("  PC \t"), json!("PC"));
        fails(json!("trim"), json!(3), "not a number");
    }
}
