//! RFC 9535 JSONPath, parsed once and evaluated many times.
//!
//! Every source a mapping reads goes through [`Path`]: the query text is parsed when the
//! mapping is compiled, never per record, and the same code answers `crosswalk query` and
//! the JSONPath Compliance Test Suite, so what the suite proves holds for mappings too.
//!
//! The grammar comes from the `jsonpath-rust` crate's parser. `query` lowers its syntax
//! tree into a compiled form and enforces the RFC's type rules; `eval` evaluates it,
//! handing out references into the document. Evaluation is ours rather than the crate's
//! for two reasons: the crate orders the results of a descendant segment with several
//! selectors differently from the RFC and misses nested filters, and it builds a
//! normalized path string for every node, which a mapping never needs and would pay for
//! on every field of every record. Singular queries (`$.a.b[0]`), nearly all of what
//! mappings use, take a direct walk.
//!
//! [`budget`] bounds what one evaluation may cost: mappings evaluate with
//! [`Path::nodes_within`] and [`Path::select_within`], which stop with [`OverBudget`] as
//! soon as an allowance runs out; [`Path::shape`] tells what a query is made of, so that
//! a mapping can refuse the pathological ones before any record is seen.

pub mod budget;
mod eval;
mod query;

use std::fmt;

use jsonpath_rust::parser::errors::JsonPathError;
use jsonpath_rust::parser::parse_json_path;
use serde_json::Value;

pub use budget::{Budget, Limit, OverBudget, PathLimits, RecordBudget};
pub use query::Shape;
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

/// What of a document a query may read, for a reader that builds only that part:
/// the query's leading member, index and wildcard steps, after which it may read
/// anything below the nodes they reach (when they are the whole query, those are the
/// nodes it selects).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reach<'a> {
    /// The leading steps from the query's root.
    pub steps: Vec<Access<'a>>,
    /// Whether the steps are the whole query.
    pub complete: bool,
    /// Whether the query is singular (names and indices only).
    pub singular: bool,
    /// Whether a filter reads from the document's root (`$` inside `[?…]`): then the
    /// query may read any of it.
    pub root: bool,
}

/// One step of a [`Reach`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access<'a> {
    /// An object's member.
    Member(&'a str),
    /// An array's element: which one is not kept, since a negative index counts from
    /// the array's end.
    Element,
    /// Every element of an array, or every member of an object (`[*]`, `.*`).
    Each,
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
    /// let path = crosswalk_core::path::Path::parse("$.to_PurchaseOrderItem.results[*].Material")?;
    /// assert!(!path.is_singular());
    /// assert!(crosswalk_core::path::Path::parse("$.a[").is_err());
    /// # Ok::<(), crosswalk_core::path::PathError>(())
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

    /// What the query is made of: its descendant segments and dynamic patterns.
    pub fn shape(&self) -> Shape {
        self.query.shape()
    }

    /// What of a document the query may read: see [`Reach`].
    ///
    /// ```
    /// use crosswalk_core::path::{Access, Path};
    /// let path = Path::parse("$.d.results[0].Plant")?;
    /// let reach = path.reach();
    /// assert_eq!(reach.steps, [Access::Member("d"), Access::Member("results"), Access::Element, Access::Member("Plant")]);
    /// assert!(reach.singular && !reach.root);
    /// let path = Path::parse("$.items[*].id")?;
    /// let reach = path.reach();
    /// assert_eq!(reach.steps, [Access::Member("items"), Access::Each, Access::Member("id")]);
    /// assert!(!reach.singular && reach.complete);
    /// let path = Path::parse("$.items[?@.qty > $.min].id")?;
    /// let reach = path.reach();
    /// assert_eq!(reach.steps, [Access::Member("items")]);
    /// assert!(!reach.complete && reach.root);
    /// # Ok::<(), crosswalk_core::path::PathError>(())
    /// ```
    pub fn reach(&self) -> Reach<'_> {
        let steps = self
            .query
            .segments
            .iter()
            .map_while(|s| match (s.descendant, s.selectors.as_slice()) {
                (false, [Sel::Name(n)]) => Some(Access::Member(n)),
                (false, [Sel::Index(_)]) => Some(Access::Element),
                (false, [Sel::Wildcard]) => Some(Access::Each),
                _ => None,
            })
            .collect::<Vec<_>>();
        Reach {
            complete: steps.len() == self.query.segments.len(),
            steps,
            singular: self.singular.is_some(),
            root: self.query.reads_root_in_filter(),
        }
    }

    /// The nodelist of the query against `value`, in document order, with no budget.
    pub fn nodes<'a>(&self, value: &'a Value) -> Vec<&'a Value> {
        self.nodes_within(value, &mut Budget::unlimited())
            .expect("an unlimited budget does not run out")
    }

    /// The nodelist of the query against `value`, in document order, counting what
    /// evaluation visits and selects against `budget`.
    pub fn nodes_within<'a>(
        &self,
        value: &'a Value,
        budget: &mut Budget,
    ) -> Result<Vec<&'a Value>, OverBudget> {
        match &self.singular {
            Some(steps) => {
                budget.visit(steps.len() as u64 + 1)?;
                match walk(steps, value) {
                    Some(node) => {
                        budget.select(1)?;
                        Ok(vec![node])
                    }
                    None => Ok(Vec::new()),
                }
            }
            None => eval::select(&self.query, value, value, budget),
        }
    }

    /// The node of a singular query (the first node of any other), with no budget and
    /// nothing copied: for the placeholders and operands of transforms, which are
    /// singular.
    pub fn node<'a>(&self, value: &'a Value) -> Option<&'a Value> {
        match &self.singular {
            Some(steps) => walk(steps, value),
            None => self.nodes(value).into_iter().next(),
        }
    }

    /// The value a mapping sees: for a singular query the value of its node (`null`
    /// when there is none); for any other query an array of the values of its nodes.
    /// With no budget.
    pub fn select(&self, value: &Value) -> Value {
        self.select_within(value, &mut Budget::unlimited())
            .expect("an unlimited budget does not run out")
    }

    /// [`Path::select`], counting against `budget` what evaluation visits and
    /// selects, and the bytes of the values it copies out of the document: a result
    /// over the budget is never built.
    pub fn select_within(&self, value: &Value, budget: &mut Budget) -> Result<Value, OverBudget> {
        match &self.singular {
            Some(steps) => {
                budget.visit(steps.len() as u64 + 1)?;
                match walk(steps, value) {
                    Some(node) => {
                        budget.select(1)?;
                        copy(node, budget)
                    }
                    None => Ok(Value::Null),
                }
            }
            None => {
                let nodes = eval::select(&self.query, value, value, budget)?;
                budget.copy(2 + nodes.len() as u64)?;
                let mut out = Vec::with_capacity(nodes.len());
                for node in nodes {
                    out.push(copy(node, budget)?);
                }
                Ok(Value::Array(out))
            }
        }
    }
}

/// A copy of `value`, once its size is known to fit what is left of the budget's
/// bytes.
fn copy(value: &Value, budget: &mut Budget) -> Result<Value, OverBudget> {
    let left = budget.bytes_left();
    if left == u64::MAX {
        return Ok(value.clone());
    }
    match budget::json_size_within(value, left) {
        Some(size) => budget.copy(size)?,
        None => budget.copy(left.saturating_add(1))?,
    }
    Ok(value.clone())
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

    fn budget(visits: u64, selects: u64, bytes: u64) -> Budget {
        RecordBudget::new(
            &PathLimits {
                visits_per_rule: visits,
                selects_per_rule: selects,
                ..PathLimits::DEFAULT
            },
            Limit {
                name: "max_record_bytes",
                max: bytes,
            },
        )
        .rule()
    }

    /// `[[[…depth…[leaf]…]]]`.
    fn nested(depth: usize, leaf: Value) -> Value {
        (0..depth).fold(leaf, |inner, _| Value::Array(vec![inner]))
    }

    #[test]
    fn within_budget_the_results_are_the_unbudgeted_ones() {
        let doc = json!({"a": [{"b": 1}, {"b": [2, {"b": 3}]}], "c": {"b": "x"}});
        for q in [
            "$..b",
            "$..*",
            "$.a[?@.b > 0].b",
            "$.a[0:2:1]",
            "$.c.b",
            "$..[?@.b]",
        ] {
            let p = Path::parse(q).unwrap();
            let mut b = budget(1000, 1000, 10_000);
            assert_eq!(
                p.select_within(&doc, &mut b).unwrap(),
                p.select(&doc),
                "{q}"
            );
        }
    }

    #[test]
    fn a_descendant_segment_stops_when_its_selects_run_out() {
        let wide = Value::Array(vec![json!(0); 10_000]);
        let e = Path::parse("$..*")
            .unwrap()
            .nodes_within(&wide, &mut budget(1_000_000, 500, u64::MAX))
            .unwrap_err();
        assert_eq!(e.limit.name, "path_selects_per_rule");
        assert_eq!(e.limit.max, 500);
        assert!(e.to_string().contains("selects more than 500 nodes"), "{e}");
    }

    #[test]
    fn nested_descendant_segments_stop_when_their_visits_run_out() {
        // Each `..` walks the subtree of every node the one before selected: about
        // depth² / 2 visits for the second one.
        let deep = nested(100, json!(1));
        let p = Path::parse("$..*..*").unwrap();
        assert!(
            p.nodes_within(&deep, &mut budget(10_000, 10_000, 0))
                .is_ok()
        );
        let e = p
            .nodes_within(&deep, &mut budget(1_000, 1_000_000, 0))
            .unwrap_err();
        assert_eq!(e.limit.name, "path_visits_per_rule");
        assert!(e.to_string().contains("visits more than 1000 nodes"), "{e}");
    }

    #[test]
    fn the_queries_of_filters_are_counted() {
        // Every element runs the filter's own descendant query over the whole document.
        let doc = Value::Array((0..100).map(|i| json!({"v": i})).collect());
        let p = Path::parse("$[?count($..v) > 0]").unwrap();
        assert_eq!(p.nodes(&doc).len(), 100);
        let e = p
            .nodes_within(&doc, &mut budget(5_000, 1_000_000, 0))
            .unwrap_err();
        assert_eq!(e.limit.name, "path_visits_per_rule");
        let e = p
            .nodes_within(&doc, &mut budget(1_000_000, 1_000, 0))
            .unwrap_err();
        assert_eq!(e.limit.name, "path_selects_per_rule");
    }

    #[test]
    fn copies_stop_at_the_bytes_left_before_they_are_made() {
        // One `$..*` over a long string at the bottom of nested arrays selects the string
        // once per level: 50 copies of 10 kB from a document of 10 kB.
        let deep = nested(50, Value::String("x".repeat(10_000)));
        let p = Path::parse("$..*").unwrap();
        let e = p
            .select_within(&deep, &mut budget(1_000_000, 1_000_000, 100_000))
            .unwrap_err();
        assert_eq!((e.limit.name, e.limit.max), ("max_record_bytes", 100_000));
        assert!(e.to_string().contains("take more than 100000 bytes"), "{e}");
        assert!(
            p.select_within(&deep, &mut budget(1_000_000, 1_000_000, 1_000_000))
                .is_ok()
        );
        // A singular query copies its value within the same allowance.
        let e = Path::parse("$[0]")
            .unwrap()
            .select_within(&deep, &mut budget(10, 10, 5_000))
            .unwrap_err();
        assert_eq!(e.limit.name, "max_record_bytes");
    }

    #[test]
    fn regular_expressions_count_the_text_they_read() {
        let doc = Value::Array(vec![json!({"s": "a".repeat(64 * 1000)}); 10]);
        let p = Path::parse("$[?search(@.s, 'b')]").unwrap();
        assert!(p.nodes(&doc).is_empty());
        let e = p
            .nodes_within(&doc, &mut budget(5_000, 1_000, 0))
            .unwrap_err();
        assert_eq!(e.limit.name, "path_visits_per_rule");
    }

    #[test]
    fn the_shape_counts_descendants_and_dynamic_patterns_everywhere() {
        let shape = |q: &str| Path::parse(q).unwrap().shape();
        assert_eq!(shape("$.a.b").descendant_segments, 0);
        assert_eq!(shape("$..*..*..*..*..*..*..*").descendant_segments, 7);
        assert_eq!(
            shape("$..a[?count(@..b) > count($..c)]").descendant_segments,
            3
        );
        assert_eq!(shape("$[?match(@.a, 'x')]").dynamic_patterns, 0);
        assert_eq!(shape("$[?!search(@.a, $.p)]").dynamic_patterns, 1);
    }

    #[test]
    fn integers_of_any_length_compare_exactly() {
        // As f64 the two ids are the same number.
        let doc: Value = serde_json::from_str(
            r#"[{"id": 123456789012345678901234567890}, {"id": 123456789012345678901234567891}]"#,
        )
        .unwrap();
        let p = Path::parse("$[?@.id == $[1].id].id").unwrap();
        assert_eq!(
            p.select(&doc).to_string(),
            "[123456789012345678901234567891]"
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
