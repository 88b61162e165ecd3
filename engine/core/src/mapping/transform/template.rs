//! `template`: text built from the current value and other fields of the record.
//!
//! `{value}` is the value the rule has so far; `{$...}` is a singular JSONPath query in
//! the current record (paths are parsed when the mapping is compiled); `{{` and `}}` are
//! literal braces. A `null` placeholder renders as nothing, and when every placeholder
//! is `null` the result is `null` rather than the bare literal text.
//!
//! ```yaml
//! - target: address.line1
//!   transforms: [{template: "{$.StreetName} {$.HouseNumber}"}]
//! ```

use serde_json::Value;

use super::{Ctx, TransformDef, scalar_text};
use crate::path::Path;

pub(super) const DEF: TransformDef = TransformDef {
    name: "template",
    summary: "text from `{value}` and `{$.path}` placeholders, e.g. \"{$.Street} {$.HouseNumber}\"",
    arguments: Some(
        "the template string: `{value}` is the current value, `{$.path}` a singular path in the record",
    ),
    example: r#"{"template": "{$.Street} {$.HouseNumber}"}"#,
};

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Value,
    Path(Path),
}

/// One piece of a template, as the reverse mapping reads it.
pub(crate) enum Piece<'a> {
    /// Literal text.
    Text(&'a str),
    /// `{value}`.
    Value,
    /// `{$…}`: the query as written.
    Path(&'a str),
}

impl Template {
    /// Its pieces, in order: literal text and placeholders.
    pub(crate) fn pieces(&self) -> impl Iterator<Item = Piece<'_>> {
        self.parts.iter().map(|p| match p {
            Part::Text(t) => Piece::Text(t),
            Part::Value => Piece::Value,
            Part::Path(p) => Piece::Path(p.as_str()),
        })
    }

    /// Calls `read` with each placeholder's path.
    pub(super) fn paths(&self, read: &mut dyn FnMut(&Path)) {
        for part in &self.parts {
            if let Part::Path(p) = part {
                read(p);
            }
        }
    }

    pub(super) fn compile(args: Option<&Value>) -> Result<Self, String> {
        let Some(Value::String(text)) = args else {
            return Err(
                "needs the template text, e.g. `{template: \"{$.Street} {$.HouseNumber}\"}`".into(),
            );
        };
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|(_, c)| *c) == Some('{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().map(|(_, c)| *c) == Some('}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let rest = &text[i + 1..];
                    let end = closing_brace(rest).ok_or_else(|| {
                        format!("the placeholder at position {} has no closing `}}`", i + 1)
                    })?;
                    let name = &rest[..end];
                    for _ in 0..name.chars().count() + 1 {
                        chars.next();
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(match name.trim() {
                        "value" => Part::Value,
                        p if p.starts_with('$') => {
                            let path = Path::parse(p).map_err(|e| e.to_string())?;
                            if !path.is_singular() {
                                return Err(format!("placeholder `{p}` must be a singular query (names and indexes only)"));
                            }
                            Part::Path(path)
                        }
                        other => {
                            return Err(format!(
                                "unknown placeholder `{{{other}}}`: use `{{value}}` or a JSONPath such as `{{$.Field}}`"
                            ));
                        }
                    });
                }
                '}' => {
                    return Err(format!(
                        "a lone `}}` at position {}: write `}}}}` for a literal brace",
                        i + 1
                    ));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template { parts })
    }

    pub(super) fn apply(&self, value: Value, ctx: &mut Ctx<'_>) -> Result<Value, String> {
        let mut out = String::new();
        let mut placeholders = 0;
        let mut nulls = 0;
        for part in &self.parts {
            // Borrowed, not copied: a placeholder on a large object only fails.
            let v = match part {
                Part::Text(t) => {
                    out.push_str(t);
                    continue;
                }
                Part::Value => &value,
                Part::Path(p) => p.node(ctx.record).unwrap_or(&Value::Null),
            };
            placeholders += 1;
            match v {
                Value::Null => nulls += 1,
                v => match scalar_text(v) {
                    Some(t) => out.push_str(&t),
                    None => {
                        return Err(format!(
                            "a placeholder gives {}, which has no text form",
                            super::super::error::type_name(v)
                        ));
                    }
                },
            }
        }
        if placeholders > 0 && nulls == placeholders {
            Ok(Value::Null)
        } else {
            Ok(Value::String(out))
        }
    }
}

/// The index of the `}` that closes a placeholder, skipping brackets and quotes of the
/// JSONPath inside (`{$['a}b']}`).
fn closing_brace(s: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') => depth = depth.saturating_sub(1),
            (None, '}') if depth == 0 => return Some(i),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use serde_json::{Value, json};

    #[test]
    fn fills_placeholders_from_the_record() {
        let record = json!({"Street": "Main St", "No": 12, "Empty": null});
        let step = json!({"template": "{$.Street} {$.No}"});
        assert_eq!(run_on(step, Value::Null, &record), Ok(json!("Main St 12")));
        let step = json!({"template": "PO {value} ({$['Street']}) {{x}}"});
        assert_eq!(
            run_on(step, json!("4500"), &record),
            Ok(json!("PO 4500 (Main St) {x}"))
        );
        let step = json!({"template": "{$.Empty}/{$.Missing}"});
        assert_eq!(run_on(step, Value::Null, &record), Ok(Value::Null));
    }

    #[test]
    fn bad_templates_are_refused() {
        rejects(json!({"template": "{$.a"}), "no closing");
        rejects(
            json!({"template": "{name}"}),
            "unknown placeholder `{name}`",
        );
        rejects(json!({"template": "{$.a[*]}"}), "singular");
        rejects(json!({"template": "a } b"}), "lone `}`");
        rejects(json!({"template": 3}), "needs the template text");
    }
}
