//! `concat`: joins the elements of an array into text.
//!
//! Pairs with a path that selects several fields, such as the union
//! `$['StreetName','HouseNumber']`. `null` and empty elements are skipped; an array
//! with nothing left gives `null`. A scalar is taken as its text.
//!
//! ```yaml
//! - target: address.line1
//!   path: $['StreetName','HouseNumber']
//!   transforms: [{concat: " "}]      # ["Main St", "12"] → "Main St 12"
//! ```

use serde::Deserialize;
use serde_json::Value;

use super::{TransformDef, expected, object_args, scalar_text};

pub(super) const DEF: TransformDef = TransformDef {
    name: "concat",
    summary: "joins an array's non-empty elements with a separator (default \"\")",
    arguments: Some("the separator (default `\"\"`), or `{separator: \" \"}`"),
    example: r#"{"concat": " "}"#,
};

/// The separator.
#[derive(Debug, Clone, Default)]
pub struct Concat {
    separator: String,
}

impl Concat {
    pub(super) fn compile(args: Option<&Value>) -> Result<Self, String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Args {
            separator: String,
        }
        match args {
            None => Ok(Concat::default()),
            Some(Value::String(s)) => Ok(Concat {
                separator: s.clone(),
            }),
            Some(v @ Value::Object(_)) => object_args::<Args>(v).map(|a| Concat {
                separator: a.separator,
            }),
            Some(_) => Err("takes the separator as text, or `{separator: \" \"}`".into()),
        }
    }

    pub(super) fn apply(&self, value: Value) -> Result<Value, String> {
        let items = match value {
            Value::Array(items) => items,
            Value::Object(_) => return Err(expected("an array or a scalar", &value)),
            scalar => vec![scalar],
        };
        let mut texts = Vec::with_capacity(items.len());
        for item in &items {
            match item {
                Value::Null => {}
                v => match scalar_text(v) {
                    Some(t) if t.is_empty() => {}
                    Some(t) => texts.push(t),
                    None => {
                        return Err(format!("cannot join {}", super::super::error::type_name(v)));
                    }
                },
            }
        }
        Ok(if texts.is_empty() {
            Value::Null
        } else {
            Value::String(texts.join(&self.separator))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use serde_json::{Value, json};

    #[test]
    fn joins() {
        give(
            json!({"concat": " "}),
            json!(["Main St", null, "", 12]),
            json!("Main St 12"),
        );
        give(
            json!({"concat": {"separator": "-"}}),
            json!(["a", "b"]),
            json!("a-b"),
        );
        give(json!("concat"), json!(["a", "b"]), json!("ab"));
        give(json!("concat"), json!([]), Value::Null);
        give(json!("concat"), json!("x"), json!("x"));
        fails(json!("concat"), json!([[1]]), "cannot join an array");
        rejects(json!({"concat": 1}), "separator");
    }
}
