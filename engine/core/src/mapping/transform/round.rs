//! `round`: a number rounded to a number of decimal digits, half away from zero.
//!
//! ```yaml
//! transforms: [to_number, {round: 2}]   # "12.345" → 12.35
//! ```

use serde::Deserialize;
use serde_json::Value;

use super::{TransformDef, expected, json_number, normalise, object_args};

pub(super) const DEF: TransformDef = TransformDef {
    name: "round",
    summary: "rounds a number to `digits` decimals (default 0), half away from zero",
    arguments: Some("the number of decimal digits (default 0), or `{digits: 2}`"),
    example: r#"{"round": 2}"#,
};

/// The number of decimal digits to keep.
#[derive(Debug, Clone)]
pub struct Round {
    digits: u32,
}

impl Round {
    pub(super) fn compile(args: Option<&Value>) -> Result<Self, String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Args {
            digits: u32,
        }
        let digits = match args {
            None => 0,
            Some(Value::Number(n)) => {
                n.as_u64()
                    .and_then(|d| u32::try_from(d).ok())
                    .ok_or_else(|| {
                        format!("the number of digits must be a whole number from 0 to 10, not {n}")
                    })?
            }
            Some(v @ Value::Object(_)) => object_args::<Args>(v)?.digits,
            Some(_) => return Err("takes the number of digits, or `{digits: 2}`".into()),
        };
        if digits > 10 {
            return Err(format!(
                "the number of digits must be from 0 to 10, not {digits}"
            ));
        }
        Ok(Round { digits })
    }

    pub(super) fn apply(&self, value: Value) -> Result<Value, String> {
        let Some(x) = value.as_f64() else {
            return Err(expected("a number (use to_number first for text)", &value));
        };
        self.of(x).map(json_number)
    }

    /// `x` rounded, [`normalise`]d.
    pub(super) fn of(&self, x: f64) -> Result<f64, String> {
        let scale = 10f64.powi(self.digits as i32);
        // Remove binary noise first, so that 1.005 (stored as 1.00499…) rounds up.
        let scaled = ((x * scale) * 1e6).round() / 1e6;
        normalise(scaled.round() / scale)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use serde_json::json;

    #[test]
    fn rounds_half_away_from_zero() {
        give(json!({"round": 2}), json!(12.345), json!(12.35));
        give(json!({"round": 2}), json!(1.005), json!(1.01));
        give(json!({"round": {"digits": 1}}), json!(-2.25), json!(-2.3));
        give(json!("round"), json!(2.5), json!(3));
        fails(json!("round"), json!("2.5"), "use to_number first");
        rejects(json!({"round": 11}), "from 0 to 10");
        rejects(json!({"round": -1}), "whole number");
    }
}
