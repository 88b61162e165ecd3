//! `divide`: a number divided by a constant or another field of the record.
//!
//! SAP prices are per a price unit (`NetPriceQuantity`, e.g. 250.00 per 1,000 PC), so
//! the price of one unit is the price divided by that quantity.
//!
//! ```yaml
//! - target: unit_price
//!   path: $.NetPriceAmount
//!   transforms: [to_number, {divide: {by_path: "$.NetPriceQuantity"}}]   # 250 / 1000 → 0.25
//! ```

use serde_json::Value;

use super::{Ctx, Operand, TransformDef, expected, json_number, normalise};

pub(super) const DEF: TransformDef = TransformDef {
    name: "divide",
    summary: "divides a number by a constant (`by`) or a field (`by_path`); zero is an error",
    arguments: Some("the divisor, or `{by: 100}`, or `{by_path: \"$.NetPriceQuantity\"}`"),
    example: r#"{"divide": {"by": 100}}"#,
};

pub(super) fn compile(args: Option<&Value>) -> Result<Operand, String> {
    match Operand::compile(args)? {
        Operand::Number(0.0) => Err("cannot divide by zero".into()),
        by => Ok(by),
    }
}

pub(super) fn apply(value: Value, by: &Operand, ctx: &mut Ctx<'_>) -> Result<Value, String> {
    let Some(x) = value.as_f64() else {
        return Err(expected("a number (use to_number first for text)", &value));
    };
    Ok(of(x, by, ctx)?.map_or(Value::Null, json_number))
}

/// `x` divided by the divisor, [`normalise`]d; `None` when the divisor's path gives
/// nothing.
pub(super) fn of(x: f64, by: &Operand, ctx: &Ctx<'_>) -> Result<Option<f64>, String> {
    match by.value(ctx)? {
        None => Ok(None),
        Some(0.0) => Err("the divisor is zero".into()),
        Some(d) => normalise(x / d).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use serde_json::json;

    #[test]
    fn per_price_unit() {
        let record = json!({"NetPriceQuantity": "1000", "Zero": "0"});
        let step = json!({"divide": {"by_path": "$.NetPriceQuantity"}});
        assert_eq!(run_on(step, json!(250), &record), Ok(json!(0.25)));
        give(json!({"divide": 4}), json!(10), json!(2.5));
        let step = json!({"divide": {"by_path": "$.Zero"}});
        assert!(
            run_on(step, json!(1), &record)
                .unwrap_err()
                .contains("divisor is zero")
        );
        rejects(json!({"divide": 0}), "divide by zero");
    }
}
