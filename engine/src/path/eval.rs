//! Evaluation of a compiled [`Query`] against a JSON document (RFC 9535 §2.3–2.4).
//!
//! Nodes are references into the document: nothing is copied and no normalized path
//! is built, because mappings only need the values.

use std::cmp::Ordering;

use serde_json::Value;

use super::query::{Expr, Op, Operand, Pattern, Query, Sel, compile_iregexp};

/// The nodelist of `query`; `root` is `$`, `current` is `@`.
pub(super) fn select<'a>(query: &Query, root: &'a Value, current: &'a Value) -> Vec<&'a Value> {
    let mut nodes = vec![if query.absolute { root } else { current }];
    for segment in &query.segments {
        let mut next = Vec::new();
        for node in nodes {
            if segment.descendant {
                let mut all = Vec::new();
                descendants(node, &mut all);
                for d in all {
                    for s in &segment.selectors {
                        apply(s, d, root, &mut next);
                    }
                }
            } else {
                for s in &segment.selectors {
                    apply(s, node, root, &mut next);
                }
            }
        }
        nodes = next;
        if nodes.is_empty() {
            break;
        }
    }
    nodes
}

/// A node and all its descendants, parents before children, in document order.
fn descendants<'a>(node: &'a Value, out: &mut Vec<&'a Value>) {
    out.push(node);
    match node {
        Value::Array(items) => items.iter().for_each(|v| descendants(v, out)),
        Value::Object(map) => map.values().for_each(|v| descendants(v, out)),
        _ => {}
    }
}

fn apply<'a>(selector: &Sel, node: &'a Value, root: &'a Value, out: &mut Vec<&'a Value>) {
    match (selector, node) {
        (Sel::Name(n), Value::Object(map)) => out.extend(map.get(n)),
        (Sel::Wildcard, Value::Object(map)) => out.extend(map.values()),
        (Sel::Wildcard, Value::Array(items)) => out.extend(items.iter()),
        (Sel::Index(i), Value::Array(items)) => {
            out.extend(index(items.len(), *i).map(|i| &items[i]))
        }
        (Sel::Slice(start, end, step), Value::Array(items)) => {
            slice(items.len(), *start, *end, *step, |i| out.push(&items[i]))
        }
        (Sel::Filter(expr), Value::Array(items)) => {
            out.extend(items.iter().filter(|v| test(expr, root, v)))
        }
        (Sel::Filter(expr), Value::Object(map)) => {
            out.extend(map.values().filter(|v| test(expr, root, v)))
        }
        _ => {}
    }
}

fn index(len: usize, i: i64) -> Option<usize> {
    let len = len as i64;
    let at = if i < 0 { len + i } else { i };
    (0..len).contains(&at).then_some(at as usize)
}

/// RFC 9535 §2.3.4.2.2.
fn slice(
    len: usize,
    start: Option<i64>,
    end: Option<i64>,
    step: Option<i64>,
    mut f: impl FnMut(usize),
) {
    let len = len as i64;
    let step = step.unwrap_or(1);
    if step == 0 {
        return;
    }
    let normalize = |i: i64| if i >= 0 { i } else { len + i };
    if step > 0 {
        let lower = normalize(start.unwrap_or(0)).clamp(0, len);
        let upper = normalize(end.unwrap_or(len)).clamp(0, len);
        let mut i = lower;
        while i < upper {
            f(i as usize);
            i += step;
        }
    } else {
        let upper = normalize(start.unwrap_or(len - 1)).clamp(-1, len - 1);
        let lower = normalize(end.unwrap_or(-len - 1)).clamp(-1, len - 1);
        let mut i = upper;
        while lower < i {
            f(i as usize);
            i += step;
        }
    }
}

fn test(expr: &Expr, root: &Value, current: &Value) -> bool {
    match expr {
        Expr::Or(items) => items.iter().any(|e| test(e, root, current)),
        Expr::And(items) => items.iter().all(|e| test(e, root, current)),
        Expr::Not(e) => !test(e, root, current),
        Expr::Exists(q) => !select(q, root, current).is_empty(),
        Expr::Compare(op, a, b) => compare(
            *op,
            value(a, root, current).as_ref(),
            value(b, root, current).as_ref(),
        ),
        Expr::Regex {
            full,
            subject,
            pattern,
        } => {
            let Some(Value::String(subject)) = value(subject, root, current) else {
                return false;
            };
            match pattern {
                Pattern::Compiled(re) => re.as_ref().is_some_and(|re| re.is_match(&subject)),
                Pattern::Dynamic(p) => match value(p, root, current) {
                    Some(Value::String(p)) => {
                        compile_iregexp(&p, *full).is_some_and(|re| re.is_match(&subject))
                    }
                    _ => false,
                },
            }
        }
    }
}

/// A value, or `None` for Nothing.
fn value(operand: &Operand, root: &Value, current: &Value) -> Option<Value> {
    match operand {
        Operand::Literal(v) => Some(v.clone()),
        Operand::Query(q) => select(q, root, current).first().map(|v| (*v).clone()),
        Operand::Length(arg) => match value(arg, root, current)? {
            Value::String(s) => Some(Value::from(s.chars().count())),
            Value::Array(a) => Some(Value::from(a.len())),
            Value::Object(o) => Some(Value::from(o.len())),
            _ => None,
        },
        Operand::Count(q) => Some(Value::from(select(q, root, current).len())),
        Operand::Value(q) => match select(q, root, current).as_slice() {
            [one] => Some((*one).clone()),
            _ => None,
        },
    }
}

/// RFC 9535 §2.3.5.2.2.
fn compare(op: Op, a: Option<&Value>, b: Option<&Value>) -> bool {
    match op {
        Op::Eq => equal(a, b),
        Op::Ne => !equal(a, b),
        Op::Lt => less(a, b),
        Op::Gt => less(b, a),
        Op::Le => less(a, b) || equal(a, b),
        Op::Ge => less(b, a) || equal(a, b),
    }
}

fn equal(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => json_equal(a, b),
        _ => false,
    }
}

fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => number_cmp(x, y) == Some(Ordering::Equal),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        (a, b) => a == b,
    }
}

fn less(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            number_cmp(x, y) == Some(Ordering::Less)
        }
        (Some(Value::String(x)), Some(Value::String(y))) => x < y,
        _ => false,
    }
}

fn number_cmp(x: &serde_json::Number, y: &serde_json::Number) -> Option<Ordering> {
    match (x.as_i64(), y.as_i64()) {
        (Some(a), Some(b)) => Some(a.cmp(&b)),
        _ => x.as_f64()?.partial_cmp(&y.as_f64()?),
    }
}
