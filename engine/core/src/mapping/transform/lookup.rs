//! `lookup`: a value map, for status codes and other code lists.
//!
//! Keys are compared as text, so `5` and `"5"` both find the key `"5"`. An unmatched
//! value takes `default` when there is one, and is an error otherwise. When the target
//! is an enum, the compiler checks that every value of the map (and the default) is one
//! of its members.
//!
//! ```yaml
//! transforms:
//!   - lookup:
//!       map: { WAPPR: pending_approval, APPR: approved, CLOSE: closed }
//!       default: unknown
//! ```

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value;

use super::{Kind, TransformDef, expected, object_args, scalar_text};
use crate::mapping::error::quote;

pub(super) const DEF: TransformDef = TransformDef {
    name: "lookup",
    summary: "maps values through a table (`map`), with an optional `default` for the rest",
    arguments: Some(
        "`map: {from: to}`, `default: v` (optional), `case_insensitive: bool` (optional)",
    ),
    example: r#"{"lookup": {"map": {"APPR": "approved"}, "default": "unknown"}}"#,
};

/// A compiled value map.
#[derive(Debug, Clone)]
pub struct Lookup {
    map: IndexMap<String, Value>,
    default: Option<Value>,
    case_insensitive: bool,
}

impl Lookup {
    pub(super) fn compile(args: Option<&Value>) -> Result<Self, String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Args {
            map: IndexMap<String, Value>,
            #[serde(default, deserialize_with = "present")]
            default: Option<Value>,
            #[serde(default)]
            case_insensitive: bool,
        }
        fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
            Value::deserialize(d).map(Some)
        }
        let Some(args) = args else {
            return Err(
                "needs `map`, e.g. `{lookup: {map: {APPR: approved}, default: unknown}}`".into(),
            );
        };
        let Args {
            map,
            default,
            case_insensitive,
        } = object_args(args)?;
        let map = if case_insensitive {
            map.into_iter()
                .map(|(k, v)| (k.to_lowercase(), v))
                .collect()
        } else {
            map
        };
        Ok(Lookup {
            map,
            default,
            case_insensitive,
        })
    }

    pub(super) fn apply(&self, value: Value) -> Result<Value, String> {
        let Some(key) = scalar_text(&value) else {
            return Err(expected("a string, number or boolean", &value));
        };
        let key = if self.case_insensitive {
            key.to_lowercase()
        } else {
            key
        };
        match (self.map.get(&key), &self.default) {
            (Some(v), _) => Ok(v.clone()),
            (None, Some(d)) => Ok(d.clone()),
            (None, None) => Err(format!(
                "{} is not in the lookup table (keys: {}) and there is no `default`",
                quote(&Value::String(key)),
                self.map
                    .keys()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// Every value the lookup can produce.
    pub(super) fn output(&self) -> Kind {
        Kind::OneOf(
            self.map
                .values()
                .chain(self.default.as_ref())
                .cloned()
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use serde_json::json;

    #[test]
    fn maps_codes() {
        let step =
            json!({"lookup": {"map": {"APPR": "approved", "5": "released"}, "default": "unknown"}});
        give(step.clone(), json!("APPR"), json!("approved"));
        give(step.clone(), json!(5), json!("released"));
        give(step.clone(), json!("ZZZ"), json!("unknown"));
        give(step, json!("appr"), json!("unknown"));
    }

    #[test]
    fn without_default_an_unmatched_value_is_an_error() {
        let step = json!({"lookup": {"map": {"APPR": "approved"}}});
        fails(
            step,
            json!("WAPPR"),
            "\"WAPPR\" is not in the lookup table (keys: APPR)",
        );
    }

    #[test]
    fn case_insensitive() {
        let step = json!({"lookup": {"map": {"Appr": "approved"}, "case_insensitive": true}});
        give(step, json!("APPR"), json!("approved"));
        rejects(json!({"lookup": {"table": {}}}), "unknown field `table`");
        rejects(json!("lookup"), "needs `map`");
    }
}
