//! RFC 9535 JSONPath, parsed once and evaluated many times.
//!
//! Every source a mapping reads goes through [`Path`]: the query text is parsed when the
//! mapping is compiled, never per record, and the same code answers `crosswalk query` and
//! the JSONPath Compliance Test Suite, so what the suite proves holds for mappings too.
//! The grammar and evaluation come from the `jsonpath-rust` crate; this module adds the
//! error position, the RFC's notion of a *singular query*, and the value a mapping sees.

use std::fmt;

use jsonpath_rust::parser::errors::JsonPathError;
use jsonpath_rust::parser::model::{JpQuery, Segment, Selector};
use jsonpath_rust::parser::parse_json_path;
use jsonpath_rust::query::js_path_process;
use serde_json::Value;

/// A compiled JSONPath query.
#[derive(Debug, Clone)]
pub struct Path {
    text: String,
    query: JpQuery,
    singular: bool,
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
        let query = parse_json_path(text).map_err(|e| PathError::new(text, e))?;
        let singular = query.segments.iter().all(is_singular_segment);
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
        self.singular
    }

    /// The nodelist of the query against `value`, in document order.
    pub fn nodes<'a>(&self, value: &'a Value) -> Vec<&'a Value> {
        // Evaluation of a parsed query cannot fail for serde_json values; an error here
        // would be a defect of the crate, and "no nodes" is the safe answer.
        js_path_process(&self.query, value)
            .map(|nodes| nodes.into_iter().map(|n| n.val).collect())
            .unwrap_or_default()
    }

    /// The value a mapping sees: for a singular query the value of its node (`null`
    /// when there is none); for any other query an array of the values of its nodes.
    pub fn select(&self, value: &Value) -> Value {
        let nodes = self.nodes(value);
        if self.singular {
            nodes.first().map(|v| (*v).clone()).unwrap_or(Value::Null)
        } else {
            Value::Array(nodes.into_iter().cloned().collect())
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn is_singular_selector(selector: &Selector) -> bool {
    matches!(selector, Selector::Name(_) | Selector::Index(_))
}

fn is_singular_segment(segment: &Segment) -> bool {
    match segment {
        Segment::Selector(s) => is_singular_selector(s),
        Segment::Selectors(s) => s.len() == 1 && is_singular_selector(&s[0]),
        Segment::Descendant(_) => false,
    }
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
        assert_eq!(Path::parse("$['a']['b'][0]").unwrap().select(&doc), json!(10));
        assert_eq!(Path::parse("$.a.missing").unwrap().select(&doc), Value::Null);
    }

    #[test]
    fn other_queries_give_arrays() {
        let doc = json!({"a": {"b": [10, 20]}, "c": 3});
        assert_eq!(Path::parse("$.a.b[*]").unwrap().select(&doc), json!([10, 20]));
        assert_eq!(Path::parse("$['c','a']").unwrap().select(&doc), json!([3, {"b": [10, 20]}]));
        assert_eq!(Path::parse("$.x[*]").unwrap().select(&doc), json!([]));
    }

    #[test]
    fn errors_carry_the_position() {
        let e = Path::parse("$.a[?@.b ==]").unwrap_err();
        assert_eq!(e.query, "$.a[?@.b ==]");
        assert!(e.position > 4, "{e}");
        assert!(e.to_string().contains("position"), "{e}");
    }
}
