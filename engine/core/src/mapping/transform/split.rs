//! `split`: text cut at a separator, into an array or one of its pieces.
//!
//! With `index`, the piece at that position (negative counts from the end; out of
//! range gives `null`). Pieces are trimmed of white space unless `trim: false`.
//!
//! ```yaml
//! transforms: [{split: {separator: "/", index: -1}}]   # "PLANT/AREA/PUMP-01" → "PUMP-01"
//! ```

use serde::Deserialize;
use serde_json::Value;

use super::{TransformDef, expected, object_args};

pub(super) const DEF: TransformDef = TransformDef {
    name: "split",
    summary: "text cut at `separator` into an array, or the piece at `index`",
    arguments: Some(
        "the separator, or `{separator: \",\", index: 0}` (a negative index counts from the end)",
    ),
    example: r#"{"split": {"separator": ",", "index": 0}}"#,
};

/// The separator and the piece to keep.
#[derive(Debug, Clone)]
pub struct Split {
    separator: String,
    pub(super) index: Option<i64>,
    trim: bool,
}

impl Split {
    pub(super) fn compile(args: Option<&Value>) -> Result<Self, String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Args {
            separator: String,
            index: Option<i64>,
            trim: Option<bool>,
        }
        let (separator, index, trim) = match args {
            Some(Value::String(s)) => (s.clone(), None, true),
            Some(v @ Value::Object(_)) => {
                let a: Args = object_args(v)?;
                (a.separator, a.index, a.trim.unwrap_or(true))
            }
            _ => return Err("needs the separator, or `{separator: \",\", index: 0}`".into()),
        };
        if separator.is_empty() {
            return Err("the separator must not be empty".into());
        }
        Ok(Split {
            separator,
            index,
            trim,
        })
    }

    pub(super) fn apply(&self, value: Value) -> Result<Value, String> {
        let Value::String(text) = &value else {
            return Err(expected("text", &value));
        };
        let pieces: Vec<&str> = text
            .split(self.separator.as_str())
            .map(|p| if self.trim { p.trim() } else { p })
            .collect();
        match self.index {
            None => Ok(Value::Array(
                pieces
                    .into_iter()
                    .map(|p| Value::String(p.into()))
                    .collect(),
            )),
            Some(i) => {
                let at = if i < 0 { pieces.len() as i64 + i } else { i };
                Ok(usize::try_from(at)
                    .ok()
                    .and_then(|at| pieces.get(at))
                    .map(|p| Value::String((*p).into()))
                    .unwrap_or(Value::Null))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use serde_json::{Value, json};

    #[test]
    fn pieces() {
        give(
            json!({"split": ","}),
            json!("a, b,c"),
            json!(["a", "b", "c"]),
        );
        give(
            json!({"split": {"separator": "/", "index": -1}}),
            json!("PLANT/AREA/PUMP-01"),
            json!("PUMP-01"),
        );
        give(
            json!({"split": {"separator": "/", "index": 0}}),
            json!("PLANT/AREA"),
            json!("PLANT"),
        );
        give(
            json!({"split": {"separator": "/", "index": 5}}),
            json!("a/b"),
            Value::Null,
        );
        give(
            json!({"split": {"separator": ",", "trim": false}}),
            json!("a, b"),
            json!(["a", " b"]),
        );
        fails(json!({"split": ","}), json!(5), "not a number");
        rejects(json!({"split": ""}), "must not be empty");
    }
}
