//! RFC 9535 JSONPath, parsed once and evaluated many times.
//!
//! Every source a mapping reads goes through [`Path`]: the query text is parsed when the
//! mapping is compiled, never per record, and the same code answers `crosswalk query` and
//! the JSONPath Compliance Test Suite, so what the suite proves holds for mappings too.
//!
//! The grammar comes from the `jsonpath-rust` crate's parser. [`query`] lowers its syntax
//! tree into a compiled form and enforces the RFC's type rules; [`eval`] evaluates it,
//! handing out references into the document. Evaluation is ours rather than the crate's
//! for two reasons: the crate orders the results of a descendant segment with several
//! selectors differently from the RFC and misses nested filters, and it builds a
//! normalized path string for every node, which a mapping never needs and would pay for
//! on every field of every record. Singular queries (`$.a.b[0]`), nearly all of what
//! mappings use, take a direct walk.

mod eval;
mod query;

use std::fmt;

use jsonpath_rust::parser::errors::JsonPathError;
use jsonpath_rust::parser::parse_json_path;
use serde_json::Value;

use query::{Query, Sel};

/// A compiled JSONPath query.
#[derive(Debug, Clone)]
pub struct Path {
    text: String,
    query: Query,
    /// The steps of a singular query, walked directly.
    singular: Option<Vec<Step>>,
}

#[derive(Debug, Clone)]
enum Step {
    Name(String),
    Index(i64),
}

/// A query that is not valid RFC 9535 JSONPath.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSONPath `{query}` at position {position}: {message}")]
pub struct PathError {
    /// The query as written.
    pub query: String,
    /// The 1-based character position where the query stops being valid.
    pub position: usize,
    /// What the parser expected there.
    pub message: String,
}

impl Path {
    /// Parses `text` as an RFC 9535 query.
    ///
    /// ```
    /// let path = crosswalk::path::Path::parse("$.to_PurchaseOrderItem.results[*].Material")?;
    /// assert!(!path.is_singular());
    /// assert!(crosswalk::path::Path::parse("$.a[").is_err());
    /// # Ok::<(), crosswalk::path::PathError>(())
    /// ```
    pub fn parse(text: &str) -> Result<Self, PathError> {
        let parsed = parse_json_path(text).map_err(|e| PathError::new(text, e))?;
        let query = query::lower(&parsed).map_err(|e| {
            let position = e
                .function
                .and_then(|f| text.find(&format!("{f}(")))
                .map_or(1, |i| text[..i].chars().count() + 1);
            PathError {
                query: text.to_owned(),
                position,
                message: e.message,
            }
        })?;
        let singular = query
            .segments
            .iter()
            .map(|s| match (s.descendant, s.selectors.as_slice()) {
                (false, [Sel::Name(n)]) => Some(Step::Name(n.clone())),
                (false, [Sel::Index(i)]) => Some(Step::Index(*i)),
                _ => None,
            })
            .collect();
        Ok(Path {
            text: text.to_owned(),
            query,
            singular,
        })
    }

    /// The query as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether this is a singular query (RFC 9535 §2.3.5.1): only name and index
    /// selectors, so that it selects at most one node.
    pub fn is_singular(&self) -> bool {
        self.singular.is_some()
    }

    /// The nodelist of the query against `value`, in document order.
    pub fn nodes<'a>(&self, value: &'a Value) -> Vec<&'a Value> {
        match &self.singular {
            Some(steps) => walk(steps, value).into_iter().collect(),
            None => eval::select(&self.query, value, value),
        }
    }

    /// The value a mapping sees: for a singular query the value of its node (`null`
    /// when there is none); for any other query an array of the values of its nodes.
    pub fn select(&self, value: &Value) -> Value {
        match &self.singular {
            Some(steps) => walk(steps, value).cloned().unwrap_or(Value::Null),
            None => Value::Array(
                eval::select(&self.query, value, value)
                    .into_iter()
                    .cloned()
                    .collect(),
            ),
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The node a singular query selects, if any.
/// Objects with at most this many members are searched in order instead of by hash:
/// comparing lengths first, that is cheaper than hashing the name (SipHash) for the
/// small objects that source records are made of.
const SCAN_MEMBERS: usize = 24;

/// The member `name` of an object.
fn member<'a>(map: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a Value> {
    if map.len() <= SCAN_MEMBERS {
        map.iter()
            .find(|(k, _)| k.len() == name.len() && k.as_str() == name)
            .map(|(_, v)| v)
    } else {
        map.get(name)
    }
}

fn walk<'a>(steps: &[Step], mut node: &'a Value) -> Option<&'a Value> {
    for step in steps {
        node = match (step, node) {
            (Step::Name(n), Value::Object(map)) => member(map, n)?,
            (Step::Index(i), Value::Array(items)) => {
                let at = if *i < 0 { items.len() as i64 + i } else { *i };
                items.get(usize::try_from(at).ok()?)?
            }
            _ => return None,
        };
    }
    Some(node)
}

impl PathError {
    fn new(query: &str, error: JsonPathError) -> Self {
        let (position, message) = match &error {
            JsonPathError::PestError(e) => {
                let column = match e.line_col {
                    pest::error::LineColLocation::Pos((_, c)) => c,
                    pest::error::LineColLocation::Span((_, c), _) => c,
                };
                (column, pest_message(e))
            }
            other => (1, other.to_string()),
        };
        PathError {
            query: query.to_owned(),
            position,
            message,
        }
    }
}

/// Pest's own message spans several lines with an ASCII-art pointer; the position is
/// reported separately, so keep only the "expected …" part.
fn pest_message<R: fmt::Debug>(e: &pest::error::Error<R>) -> String {
    match &e.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } if !positives.is_empty() => {
            let names: Vec<String> = positives
                .iter()
                .map(|r| format!("{r:?}").replace('_', " "))
                .collect();
            format!("expected {}", names.join(" or "))
        }
        pest::error::ErrorVariant::CustomError { message } => message.clone(),
        _ => "unexpected input".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn singular_queries_give_one_value_or_null() {
        let doc = json!({"a": {"b": [10, 20]}});
        assert_eq!(Path::parse("$.a.b[1]").unwrap().select(&doc), json!(20));
        assert_eq!(
            Path::parse("$['a']['b'][0]").unwrap().select(&doc),
            json!(10)
        );
        assert_eq!(
            Path::parse("$.a.missing").unwrap().select(&doc),
            Value::Null
        );
    }

    #[test]
    fn other_queries_give_arrays() {
        let doc = json!({"a": {"b": [10, 20]}, "c": 3});
        assert_eq!(
            Path::parse("$.a.b[*]").unwrap().select(&doc),
            json!([10, 20])
        );
        assert_eq!(
            Path::parse("$['c','a']").unwrap().select(&doc),
            json!([3, {"b": [10, 20]}])
        );
        assert_eq!(Path::parse("$.x[*]").unwrap().select(&doc), json!([]));
    }

    #[test]
    fn type_rules_are_enforced() {
        let e = Path::parse("$[?length(@.*) < 3]").unwrap_err();
        assert_eq!(e.position, 4, "{e}");
        assert!(e.message.contains("singular query"), "{e}");
        assert!(
            Path::parse("$[?count(@..*)]")
                .unwrap_err()
                .message
                .contains("must be compared")
        );
        assert!(Path::parse("$[?nope(@)]").is_err());
    }

    #[test]
    fn filters_and_descendants() {
        let doc = json!([{"a": "b", "d": "e"}, {"a": "c", "d": "f"}]);
        assert_eq!(
            Path::parse("$..['a','d']").unwrap().select(&doc),
            json!(["b", "e", "c", "f"])
        );
        let doc = json!([[0, 1, 2], [42], [1], "x"]);
        assert_eq!(
            Path::parse("$[?@[?@>1]]").unwrap().select(&doc),
            json!([[0, 1, 2], [42]])
        );
        let doc = json!({"items": [{"q": "2"}, {"q": "PC"}]});
        assert_eq!(
            Path::parse("$.items[?match(@.q, '[0-9]+')].q")
                .unwrap()
                .select(&doc),
            json!(["2"])
        );
    }

    #[test]
    fn errors_carry_the_position() {
        let e = Path::parse("$.a[?@.b ==]").unwrap_err();
        assert_eq!(e.query, "$.a[?@.b ==]");
        assert!(e.position > 4, "{e}");
        assert!(e.to_string().contains("position"), "{e}");
    }
}
