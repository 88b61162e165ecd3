//! `to_number`: decimal text as a number.
//!
//! Source systems send decimals as strings to keep their precision: SAP OData V2 sends
//! `"100.000"`, and some SAP interfaces a trailing minus (`"12.50-"`).
//!
//! ```yaml
//! transforms: [to_number]   # "100.000" → 100, " 12.5 " → 12.5, "12.50-" → -12.5, "" → null
//! ```

use serde_json::Value;

use super::{TransformDef, expected, number};

pub(super) const DEF: TransformDef = TransformDef {
    name: "to_number",
    summary: "decimal text (\"100.000\", SAP's trailing minus \"12.50-\") as a number; \"\" → null",
    arguments: None,
    example: r#""to_number""#,
};

pub(super) fn apply(value: Value) -> Result<Value, String> {
    match value {
        Value::Number(_) => Ok(value),
        Value::String(ref s) if s.trim().is_empty() => Ok(Value::Null),
        _ => read(&value).and_then(|n| number(n.unwrap_or(f64::NAN))),
    }
}

/// Records a number or decimal text; `None` for empty text.
pub(super) fn read(value: &Value) -> Result<Option<f64>, String> {
    match value {
        Value::Number(n) => Ok(n.as_f64()),
        Value::String(s) => {
            let t = s.trim();
            if t.is_empty() {
                return Ok(None);
            }
            let (digits, negative) = match t.strip_suffix('-') {
                Some(rest) => (rest.trim_end(), true),
                None => (t, false),
            };
            let valid = !digits.is_empty()
                && digits
                    .chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'));
            match digits.parse::<f64>() {
                Ok(n) if valid && n.is_finite() => Ok(Some(if negative { -n } else { n })),
                _ => Err("not a decimal number".into()),
            }
        }
        other => Err(expected("a number or decimal text", other)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use serde_json::{Value, json};

    #[test]
    fn decimal_text_becomes_a_number() {
        give(json!("to_number"), json!("100.000"), json!(100));
        give(json!("to_number"), json!(" 12.5 "), json!(12.5));
        give(json!("to_number"), json!("12.50-"), json!(-12.5));
        give(json!("to_number"), json!("-3"), json!(-3));
        give(json!("to_number"), json!(7.25), json!(7.25));
        give(json!("to_number"), json!(""), Value::Null);
    }

    #[test]
    fn other_text_is_an_error() {
        fails(json!("to_number"), json!("12,5"), "not a decimal number");
        fails(json!("to_number"), json!("NaN"), "not a decimal number");
        fails(json!("to_number"), json!("inf"), "not a decimal number");
        fails(json!("to_number"), json!(true), "not a boolean");
    }
}
