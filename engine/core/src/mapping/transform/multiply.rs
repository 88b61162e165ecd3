//! `multiply`: a number times a constant or another field of the record.
//!
//! ```yaml
//! transforms: [to_number, {multiply: 0.01}]                    # cents → units
//! transforms: [to_number, {multiply: {by_path: "$.Quantity"}}]  # unit price → line amount
//! ```

use serde_json::Value;

use super::{Ctx, Operand, TransformDef, expected, json_number, normalise};

pub(super) const DEF: TransformDef = TransformDef {
    name: "multiply",
    summary: "multiplies a number by a constant (`by`) or a field (`by_path`)",
    arguments: Some("the factor, or `{by: 0.01}`, or `{by_path: \"$.x\"}`"),
    example: r#"{"multiply": {"by": 0.01}}"#,
};

pub(super) fn apply(value: Value, by: &Operand, ctx: &mut Ctx<'_>) -> Result<Value, String> {
    let Some(x) = value.as_f64() else {
        return Err(expected("a number (use to_number first for text)", &value));
    };
    Ok(of(x, by, ctx)?.map_or(Value::Null, json_number))
}

/// `x` times the factor, [`normalise`]d; `None` when the factor's path gives nothing.
pub(super) fn of(x: f64, by: &Operand, ctx: &Ctx<'_>) -> Result<Option<f64>, String> {
    match by.value(ctx)? {
        None => Ok(None),
        Some(factor) => normalise(x * factor).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use serde_json::{Value, json};

    #[test]
    fn by_constant_or_path() {
        give(json!({"multiply": 4}), json!(2.5), json!(10));
        give(json!({"multiply": {"by": 0.1}}), json!(3), json!(0.3));
        let record = json!({"Quantity": "3.000", "None": null});
        assert_eq!(
            run_on(
                json!({"multiply": {"by_path": "$.Quantity"}}),
                json!(2.5),
                &record
            ),
            Ok(json!(7.5))
        );
        assert_eq!(
            run_on(
                json!({"multiply": {"by_path": "$.None"}}),
                json!(2.5),
                &record
            ),
            Ok(Value::Null)
        );
        fails(json!({"multiply": 2}), json!("2"), "use to_number first");
        rejects(
            json!({"multiply": {"by": 1, "by_path": "$.a"}}),
            "exactly one",
        );
        rejects(json!({"multiply": {"by_path": "$.a[*]"}}), "singular");
    }
}
