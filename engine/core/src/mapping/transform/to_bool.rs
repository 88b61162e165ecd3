//! `to_bool`: flags as booleans.
//!
//! SAP marks flags with `"X"`, other systems with `Y`/`N`, `1`/`0` or words. The lists
//! can be replaced for systems with their own codes.
//!
//! ```yaml
//! transforms: [to_bool]                                   # "X" → true, "N" → false
//! transforms: [{to_bool: {true: [ACTIVE], false: [INACTIVE]}}]
//! ```

use serde::Deserialize;
use serde_json::Value;

use super::{TransformDef, expected, object_args};

pub(super) const DEF: TransformDef = TransformDef {
    name: "to_bool",
    summary: "flags (\"X\", \"Y\"/\"N\", \"yes\"/\"no\", \"1\"/\"0\", \"true\"/\"false\") as booleans; \"\" → null",
    arguments: Some("`true: [..]`, `false: [..]`: optional lists of the strings that mean each"),
    example: r#"{"to_bool": {"true": ["X"], "false": [""]}}"#,
};

const TRUE: &[&str] = &["true", "x", "y", "yes", "1"];
const FALSE: &[&str] = &["false", "n", "no", "0"];

/// The words read as `true` and as `false` (compared without case).
#[derive(Debug, Clone)]
pub struct ToBool {
    truthy: Vec<String>,
    falsy: Vec<String>,
}

impl ToBool {
    pub(super) fn compile(args: Option<&Value>) -> Result<Self, String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Args {
            #[serde(rename = "true")]
            truthy: Option<Vec<String>>,
            #[serde(rename = "false")]
            falsy: Option<Vec<String>>,
        }
        let args: Args = match args {
            None => Args {
                truthy: None,
                falsy: None,
            },
            Some(v) => object_args(v)?,
        };
        let lower = |words: Vec<String>| words.into_iter().map(|w| w.to_lowercase()).collect();
        Ok(ToBool {
            truthy: args
                .truthy
                .map(lower)
                .unwrap_or_else(|| TRUE.iter().map(|s| s.to_string()).collect()),
            falsy: args
                .falsy
                .map(lower)
                .unwrap_or_else(|| FALSE.iter().map(|s| s.to_string()).collect()),
        })
    }

    pub(super) fn apply(&self, value: Value) -> Result<Value, String> {
        let text = match &value {
            Value::Bool(_) => return Ok(value),
            Value::Number(n) if n.as_f64() == Some(1.0) => return Ok(Value::Bool(true)),
            Value::Number(n) if n.as_f64() == Some(0.0) => return Ok(Value::Bool(false)),
            Value::String(s) if s.trim().is_empty() => return Ok(Value::Null),
            Value::String(s) => s.trim().to_lowercase(),
            other => return Err(expected("a flag", other)),
        };
        if self.truthy.contains(&text) {
            Ok(Value::Bool(true))
        } else if self.falsy.contains(&text) {
            Ok(Value::Bool(false))
        } else {
            Err(format!(
                "not a known flag; true is one of {}, false one of {}",
                self.truthy.join("/"),
                self.falsy.join("/")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use serde_json::json;

    #[test]
    fn flags() {
        give(json!("to_bool"), json!("X"), json!(true));
        give(json!("to_bool"), json!("no"), json!(false));
        give(json!("to_bool"), json!(1), json!(true));
        give(json!("to_bool"), json!(""), serde_json::Value::Null);
        fails(json!("to_bool"), json!("maybe"), "not a known flag");
    }

    #[test]
    fn own_words() {
        let step = json!({"to_bool": {"true": ["ACTIVE"], "false": ["INACTIVE"]}});
        give(step.clone(), json!("active"), json!(true));
        give(step.clone(), json!("INACTIVE"), json!(false));
        fails(step, json!("X"), "not a known flag");
        rejects(json!({"to_bool": {"yes": ["a"]}}), "unknown field `yes`");
    }
}
