//! The compiled form of a query, checked for well-typedness (RFC 9535 §2.4.3).
//!
//! `jsonpath-rust` parses the text; this module lowers its syntax tree into [`Query`],
//! refusing what the RFC's type rules forbid and the parser lets through: a function
//! result used where another type is needed (`$[?length(@.a)]`, which must be compared),
//! a non-singular query where a value is needed (`length(@.*)`), unknown functions. It
//! also compiles the regular expressions of `match()` and `search()` when their pattern
//! is a literal.

use jsonpath_rust::parser::model::{
    Comparable, Comparison, Filter, FilterAtom, FnArg, JpQuery, Literal, Segment, Selector,
    SingularQuery, SingularQuerySegment, Test, TestFunction,
};
use regex::Regex;
use serde_json::{Number, Value};

/// A query: absolute (`$…`) or relative to the current node of a filter (`@…`).
#[derive(Debug, Clone)]
pub(super) struct Query {
    pub absolute: bool,
    pub segments: Vec<Seg>,
}

/// A segment: child selectors, or descendant selectors (`..`).
#[derive(Debug, Clone)]
pub(super) struct Seg {
    pub descendant: bool,
    pub selectors: Vec<Sel>,
}

#[derive(Debug, Clone)]
pub(super) enum Sel {
    Name(String),
    Wildcard,
    Index(i64),
    Slice(Option<i64>, Option<i64>, Option<i64>),
    Filter(Box<Expr>),
}

/// A logical expression of a filter.
#[derive(Debug, Clone)]
pub(super) enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    /// An existence test: the query selects at least one node.
    Exists(Query),
    Compare(Op, Operand, Operand),
    /// `match()` or `search()`.
    Regex {
        full: bool,
        subject: Operand,
        pattern: Pattern,
    },
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Something that evaluates to a value or to Nothing.
#[derive(Debug, Clone)]
pub(super) enum Operand {
    Literal(Value),
    /// A singular query.
    Query(Query),
    Length(Box<Operand>),
    Count(Query),
    Value(Query),
}

/// A regular expression: compiled once when it is a literal.
#[derive(Debug, Clone)]
pub(super) enum Pattern {
    Compiled(Option<Regex>),
    Dynamic(Box<Operand>),
}

/// What a query is made of, as far as its cost goes: counted over the whole query,
/// the queries of its filters included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shape {
    /// Descendant segments (`..`).
    pub descendant_segments: usize,
    /// `match()` or `search()` calls whose pattern comes from the document.
    pub dynamic_patterns: usize,
}

impl Query {
    /// The query's [`Shape`].
    pub(super) fn shape(&self) -> Shape {
        let mut shape = Shape::default();
        self.add_shape(&mut shape);
        shape
    }

    /// Whether a filter of the query, at any depth, holds an absolute query (`$…`).
    pub(super) fn reads_root_in_filter(&self) -> bool {
        self.filters().any(Expr::reads_root)
    }

    fn filters(&self) -> impl Iterator<Item = &Expr> {
        self.segments
            .iter()
            .flat_map(|s| &s.selectors)
            .filter_map(|s| match s {
                Sel::Filter(e) => Some(&**e),
                _ => None,
            })
    }

    fn add_shape(&self, shape: &mut Shape) {
        for segment in &self.segments {
            if segment.descendant {
                shape.descendant_segments += 1;
            }
            for s in &segment.selectors {
                if let Sel::Filter(e) = s {
                    e.add_shape(shape);
                }
            }
        }
    }
}

impl Expr {
    /// Whether the expression holds an absolute query, at any depth.
    fn reads_root(&self) -> bool {
        match self {
            Expr::Or(items) | Expr::And(items) => items.iter().any(Expr::reads_root),
            Expr::Not(e) => e.reads_root(),
            Expr::Exists(q) => q.absolute || q.reads_root_in_filter(),
            Expr::Compare(_, a, b) => a.reads_root() || b.reads_root(),
            Expr::Regex {
                subject, pattern, ..
            } => subject.reads_root() || matches!(pattern, Pattern::Dynamic(p) if p.reads_root()),
        }
    }

    fn add_shape(&self, shape: &mut Shape) {
        match self {
            Expr::Or(items) | Expr::And(items) => items.iter().for_each(|e| e.add_shape(shape)),
            Expr::Not(e) => e.add_shape(shape),
            Expr::Exists(q) => q.add_shape(shape),
            Expr::Compare(_, a, b) => {
                a.add_shape(shape);
                b.add_shape(shape);
            }
            Expr::Regex {
                subject, pattern, ..
            } => {
                subject.add_shape(shape);
                if let Pattern::Dynamic(p) = pattern {
                    shape.dynamic_patterns += 1;
                    p.add_shape(shape);
                }
            }
        }
    }
}

impl Operand {
    fn reads_root(&self) -> bool {
        match self {
            Operand::Literal(_) => false,
            Operand::Query(q) | Operand::Count(q) | Operand::Value(q) => {
                q.absolute || q.reads_root_in_filter()
            }
            Operand::Length(o) => o.reads_root(),
        }
    }

    fn add_shape(&self, shape: &mut Shape) {
        match self {
            Operand::Literal(_) => {}
            Operand::Query(q) | Operand::Count(q) | Operand::Value(q) => q.add_shape(shape),
            Operand::Length(o) => o.add_shape(shape),
        }
    }
}

/// A query that breaks the RFC's type rules, with the function it concerns.
pub(super) struct TypeError {
    pub function: Option<String>,
    pub message: String,
}

type Lowered<T> = Result<T, TypeError>;

fn error(function: Option<&str>, message: impl Into<String>) -> TypeError {
    TypeError {
        function: function.map(str::to_owned),
        message: message.into(),
    }
}

/// Lowers a parsed query.
pub(super) fn lower(query: &JpQuery) -> Lowered<Query> {
    lower_segments(&query.segments, true)
}

fn lower_segments(segments: &[Segment], absolute: bool) -> Lowered<Query> {
    let segments = segments
        .iter()
        .map(lower_segment)
        .collect::<Lowered<Vec<_>>>()?;
    Ok(Query { absolute, segments })
}

fn lower_segment(segment: &Segment) -> Lowered<Seg> {
    Ok(match segment {
        Segment::Selector(s) => Seg {
            descendant: false,
            selectors: vec![lower_selector(s)?],
        },
        Segment::Selectors(s) => Seg {
            descendant: false,
            selectors: s.iter().map(lower_selector).collect::<Lowered<_>>()?,
        },
        Segment::Descendant(inner) => Seg {
            descendant: true,
            ..lower_segment(inner)?
        },
    })
}

fn lower_selector(selector: &Selector) -> Lowered<Sel> {
    Ok(match selector {
        Selector::Name(n) => Sel::Name(n.clone()),
        Selector::Wildcard => Sel::Wildcard,
        Selector::Index(i) => Sel::Index(*i),
        Selector::Slice(a, b, c) => Sel::Slice(*a, *b, *c),
        Selector::Filter(f) => Sel::Filter(Box::new(lower_filter(f)?)),
    })
}

fn lower_filter(filter: &Filter) -> Lowered<Expr> {
    Ok(match filter {
        Filter::Or(items) => Expr::Or(items.iter().map(lower_filter).collect::<Lowered<_>>()?),
        Filter::And(items) => Expr::And(items.iter().map(lower_filter).collect::<Lowered<_>>()?),
        Filter::Atom(atom) => {
            let (expr, not) = match atom {
                FilterAtom::Filter { expr, not } => (lower_filter(expr)?, *not),
                FilterAtom::Test { expr, not } => (lower_test(expr)?, *not),
                FilterAtom::Comparison(c) => (lower_comparison(c)?, false),
            };
            if not { Expr::Not(Box::new(expr)) } else { expr }
        }
    })
}

/// A test expression: an existence test or a function of logical type.
fn lower_test(test: &Test) -> Lowered<Expr> {
    match test {
        Test::RelQuery(segments) => Ok(Expr::Exists(lower_segments(segments, false)?)),
        Test::AbsQuery(q) => Ok(Expr::Exists(lower(q)?)),
        Test::Function(f) => lower_logical_function(f),
    }
}

fn lower_logical_function(f: &TestFunction) -> Lowered<Expr> {
    match f {
        TestFunction::Match(a, b) | TestFunction::Search(a, b) => {
            let full = matches!(f, TestFunction::Match(..));
            let name = if full { "match" } else { "search" };
            let subject = value_arg(a, name)?;
            let pattern = match value_arg(b, name)? {
                Operand::Literal(Value::String(p)) => Pattern::Compiled(compile_iregexp(&p, full)),
                Operand::Literal(_) => Pattern::Compiled(None),
                other => Pattern::Dynamic(Box::new(other)),
            };
            Ok(Expr::Regex {
                full,
                subject,
                pattern,
            })
        }
        TestFunction::Length(_) | TestFunction::Count(_) | TestFunction::Value(_) => {
            let name = function_name(f);
            Err(error(
                Some(name),
                format!(
                    "the result of `{name}()` is a value and must be compared, e.g. `{name}(…) > 0`"
                ),
            ))
        }
        TestFunction::Custom(name, _) => Err(unknown_function(name)),
    }
}

fn lower_comparison(c: &Comparison) -> Lowered<Expr> {
    let (op, (a, b)) = match c {
        Comparison::Eq(..) => (Op::Eq, c.vals()),
        Comparison::Ne(..) => (Op::Ne, c.vals()),
        Comparison::Lt(..) => (Op::Lt, c.vals()),
        Comparison::Lte(..) => (Op::Le, c.vals()),
        Comparison::Gt(..) => (Op::Gt, c.vals()),
        Comparison::Gte(..) => (Op::Ge, c.vals()),
    };
    Ok(Expr::Compare(op, comparable(a)?, comparable(b)?))
}

fn comparable(c: &Comparable) -> Lowered<Operand> {
    match c {
        Comparable::Literal(l) => Ok(Operand::Literal(literal(l))),
        Comparable::SingularQuery(q) => Ok(Operand::Query(singular(q))),
        Comparable::Function(f) => value_function(f),
    }
}

/// A function of value type: `length`, `count`, `value`.
fn value_function(f: &TestFunction) -> Lowered<Operand> {
    match f {
        TestFunction::Length(arg) => Ok(Operand::Length(Box::new(value_arg(arg, "length")?))),
        TestFunction::Count(arg) => Ok(Operand::Count(nodes_arg(arg, "count")?)),
        TestFunction::Value(arg) => Ok(Operand::Value(nodes_arg(arg, "value")?)),
        TestFunction::Match(..) | TestFunction::Search(..) => {
            let name = function_name(f);
            Err(error(
                Some(name),
                format!(
                    "`{name}()` gives true or false and cannot be compared; use it alone as a test"
                ),
            ))
        }
        TestFunction::Custom(name, _) => Err(unknown_function(name)),
    }
}

/// An argument of value type: a literal, a singular query, or a value-type function.
fn value_arg(arg: &FnArg, function: &str) -> Lowered<Operand> {
    match arg {
        FnArg::Literal(l) => Ok(Operand::Literal(literal(l))),
        FnArg::Test(t) => match &**t {
            Test::RelQuery(segments) => singular_query(lower_segments(segments, false)?, function),
            Test::AbsQuery(q) => singular_query(lower(q)?, function),
            Test::Function(f) => value_function(f),
        },
        FnArg::Filter(_) => Err(error(
            Some(function),
            format!("`{function}()` takes a value, not a logical expression"),
        )),
    }
}

fn singular_query(q: Query, function: &str) -> Lowered<Operand> {
    let singular = q.segments.iter().all(|s| {
        !s.descendant
            && s.selectors.len() == 1
            && matches!(s.selectors[0], Sel::Name(_) | Sel::Index(_))
    });
    if singular {
        Ok(Operand::Query(q))
    } else {
        Err(error(
            Some(function),
            format!(
                "`{function}()` takes a singular query (names and indexes only), not one that can select several nodes"
            ),
        ))
    }
}

/// An argument of nodes type: any query.
fn nodes_arg(arg: &FnArg, function: &str) -> Lowered<Query> {
    match arg {
        FnArg::Test(t) => match &**t {
            Test::RelQuery(segments) => lower_segments(segments, false),
            Test::AbsQuery(q) => lower(q),
            Test::Function(_) => Err(error(
                Some(function),
                format!("`{function}()` takes a query, not a function result"),
            )),
        },
        _ => Err(error(
            Some(function),
            format!("`{function}()` takes a query"),
        )),
    }
}

fn singular(q: &SingularQuery) -> Query {
    let (absolute, segments) = match q {
        SingularQuery::Current(s) => (false, s),
        SingularQuery::Root(s) => (true, s),
    };
    Query {
        absolute,
        segments: segments
            .iter()
            .map(|s| Seg {
                descendant: false,
                selectors: vec![match s {
                    SingularQuerySegment::Name(n) => Sel::Name(n.clone()),
                    SingularQuerySegment::Index(i) => Sel::Index(*i),
                }],
            })
            .collect(),
    }
}

fn literal(l: &Literal) -> Value {
    match l {
        Literal::Int(i) => Value::Number(Number::from(*i)),
        Literal::Float(f) => Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Literal::String(s) => Value::String(s.clone()),
        Literal::Bool(b) => Value::Bool(*b),
        Literal::Null => Value::Null,
    }
}

fn function_name(f: &TestFunction) -> &'static str {
    match f {
        TestFunction::Length(_) => "length",
        TestFunction::Count(_) => "count",
        TestFunction::Value(_) => "value",
        TestFunction::Match(..) => "match",
        TestFunction::Search(..) => "search",
        TestFunction::Custom(..) => "custom",
    }
}

fn unknown_function(name: &str) -> TypeError {
    error(
        Some(name),
        format!(
            "unknown function `{name}()`: RFC 9535 defines length, count, match, search and value"
        ),
    )
}

/// Translates an I-Regexp (RFC 9485) into the `regex` crate's syntax: outside character
/// classes, `.` matches any character but `\n` and `\r`. `None` when it is not valid.
pub(super) fn compile_iregexp(pattern: &str, full: bool) -> Option<Regex> {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut in_class = false;
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push('\\');
                out.push(chars.next()?);
            }
            '[' if !in_class => {
                in_class = true;
                out.push(c);
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            '.' if !in_class => out.push_str("[^\\n\\r]"),
            c => out.push(c),
        }
    }
    let anchored = if full { format!("^(?:{out})$") } else { out };
    Regex::new(&anchored).ok()
}
