//! `to_integer`: a whole number from a number or digit text.
//!
//! Item numbers come zero-padded (`"00010"` in SAP) and quantities as decimal text.
//!
//! ```yaml
//! transforms: [to_integer]   # "00010" → 10, 10.0 → 10, "" → null; 10.5 is an error
//! ```

use serde_json::{Number, Value};

use super::{TransformDef, to_number};

pub(super) const DEF: TransformDef = TransformDef {
    name: "to_integer",
    summary: "a whole number from a number or text (\"00010\" → 10); a fraction is an error",
    arguments: None,
    example: r#""to_integer""#,
};

pub(super) fn apply(value: Value) -> Result<Value, String> {
    match to_number::read(&value)? {
        None => Ok(Value::Null),
        Some(n) if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 => {
            Ok(Value::Number(Number::from(n as i64)))
        }
        Some(_) => Err("not a whole number".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use serde_json::json;

    #[test]
    fn whole_numbers() {
        give(json!("to_integer"), json!("00010"), json!(10));
        give(json!("to_integer"), json!(10.0), json!(10));
        give(json!("to_integer"), json!("3.000"), json!(3));
        give(json!("to_integer"), json!(""), serde_json::Value::Null);
        fails(json!("to_integer"), json!(10.5), "not a whole number");
        fails(json!("to_integer"), json!("ten"), "not a decimal number");
    }
}
