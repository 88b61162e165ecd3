//! Evaluation of a compiled [`Query`] against a JSON document (RFC 9535 §2.3–2.4).
//!
//! Nodes are references into the document: nothing is copied and no normalized path
//! is built, because mappings only need the values. Every step is charged to a
//! [`Budget`] as it is taken (nodes visited, nodes put into a nodelist), so that an
//! expensive query stops early instead of running to the end: a descendant segment
//! walks the tree and applies its selectors as it goes rather than first listing every
//! descendant, and the queries inside filters are charged to the same budget.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::Value;

use super::budget::{Budget, OverBudget};
use super::query::{Expr, Op, Operand, Pattern, Query, Sel, compile_iregexp};

type Counted<T> = Result<T, OverBudget>;

/// The nodelist of `query`; `root` is `$`, `current` is `@`.
pub(super) fn select<'a>(
    query: &Query,
    root: &'a Value,
    current: &'a Value,
    budget: &mut Budget,
) -> Counted<Vec<&'a Value>> {
    let mut nodes = vec![if query.absolute { root } else { current }];
    for segment in &query.segments {
        let mut next = Vec::new();
        for node in nodes {
            if segment.descendant {
                descend(&segment.selectors, node, root, &mut next, budget)?;
            } else {
                budget.visit(1)?;
                for s in &segment.selectors {
                    apply(s, node, root, &mut next, budget)?;
                }
            }
        }
        nodes = next;
        if nodes.is_empty() {
            break;
        }
    }
    Ok(nodes)
}

/// Applies `selectors` to a node and to each of its descendants, parents before
/// children, in document order (RFC 9535 §2.5.2.2), visiting each once.
fn descend<'a>(
    selectors: &[Sel],
    node: &'a Value,
    root: &'a Value,
    out: &mut Vec<&'a Value>,
    budget: &mut Budget,
) -> Counted<()> {
    budget.visit(1)?;
    for s in selectors {
        apply(s, node, root, out, budget)?;
    }
    match node {
        Value::Array(items) => {
            for v in items {
                descend(selectors, v, root, out, budget)?;
            }
        }
        Value::Object(map) => {
            for v in map.values() {
                descend(selectors, v, root, out, budget)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Adds one selected node.
#[inline]
fn push<'a>(out: &mut Vec<&'a Value>, node: &'a Value, budget: &mut Budget) -> Counted<()> {
    budget.select(1)?;
    out.push(node);
    Ok(())
}

fn apply<'a>(
    selector: &Sel,
    node: &'a Value,
    root: &'a Value,
    out: &mut Vec<&'a Value>,
    budget: &mut Budget,
) -> Counted<()> {
    match (selector, node) {
        (Sel::Name(n), Value::Object(map)) => {
            if let Some(v) = map.get(n) {
                push(out, v, budget)?;
            }
        }
        (Sel::Wildcard, Value::Object(map)) => {
            budget.select(map.len() as u64)?;
            out.extend(map.values());
        }
        (Sel::Wildcard, Value::Array(items)) => {
            budget.select(items.len() as u64)?;
            out.extend(items.iter());
        }
        (Sel::Index(i), Value::Array(items)) => {
            if let Some(i) = index(items.len(), *i) {
                push(out, &items[i], budget)?;
            }
        }
        (Sel::Slice(start, end, step), Value::Array(items)) => {
            let mut result = Ok(());
            slice(items.len(), *start, *end, *step, |i| {
                if result.is_ok() {
                    result = push(out, &items[i], budget);
                }
                result.is_ok()
            });
            result?;
        }
        (Sel::Filter(expr), Value::Array(items)) => {
            for v in items {
                budget.visit(1)?;
                if test(expr, root, v, budget)? {
                    push(out, v, budget)?;
                }
            }
        }
        (Sel::Filter(expr), Value::Object(map)) => {
            for v in map.values() {
                budget.visit(1)?;
                if test(expr, root, v, budget)? {
                    push(out, v, budget)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn index(len: usize, i: i64) -> Option<usize> {
    let len = len as i64;
    let at = if i < 0 { len + i } else { i };
    (0..len).contains(&at).then_some(at as usize)
}

/// RFC 9535 §2.3.4.2.2: calls `f` with each index of the slice, in order, until it
/// answers `false`.
fn slice(
    len: usize,
    start: Option<i64>,
    end: Option<i64>,
    step: Option<i64>,
    mut f: impl FnMut(usize) -> bool,
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
        while i < upper && f(i as usize) {
            i = i.saturating_add(step);
        }
    } else {
        let upper = normalize(start.unwrap_or(len - 1)).clamp(-1, len - 1);
        let lower = normalize(end.unwrap_or(-len - 1)).clamp(-1, len - 1);
        let mut i = upper;
        while lower < i && f(i as usize) {
            i = i.saturating_add(step);
        }
    }
}

fn test(expr: &Expr, root: &Value, current: &Value, budget: &mut Budget) -> Counted<bool> {
    Ok(match expr {
        Expr::Or(items) => {
            for e in items {
                if test(e, root, current, budget)? {
                    return Ok(true);
                }
            }
            false
        }
        Expr::And(items) => {
            for e in items {
                if !test(e, root, current, budget)? {
                    return Ok(false);
                }
            }
            true
        }
        Expr::Not(e) => !test(e, root, current, budget)?,
        Expr::Exists(q) => !select(q, root, current, budget)?.is_empty(),
        Expr::Compare(op, a, b) => {
            let a = value(a, root, current, budget)?;
            let b = value(b, root, current, budget)?;
            compare(*op, a.as_deref(), b.as_deref(), budget)?
        }
        Expr::Regex {
            full,
            subject,
            pattern,
        } => {
            let Some(subject) = value(subject, root, current, budget)? else {
                return Ok(false);
            };
            let Value::String(subject) = subject.as_ref() else {
                return Ok(false);
            };
            budget.read(subject.len())?;
            match pattern {
                Pattern::Compiled(re) => re.as_ref().is_some_and(|re| re.is_match(subject)),
                Pattern::Dynamic(p) => match value(p, root, current, budget)?.as_deref() {
                    Some(Value::String(p)) => {
                        // Compiled for every node it is tested on: one visit a byte.
                        budget.visit(p.len() as u64)?;
                        compile_iregexp(p, *full).is_some_and(|re| re.is_match(subject))
                    }
                    _ => false,
                },
            }
        }
    })
}

/// A value, or `None` for Nothing. Values of the document are borrowed, not copied.
fn value<'a>(
    operand: &'a Operand,
    root: &'a Value,
    current: &'a Value,
    budget: &mut Budget,
) -> Counted<Option<Cow<'a, Value>>> {
    Ok(match operand {
        Operand::Literal(v) => Some(Cow::Borrowed(v)),
        Operand::Query(q) => select(q, root, current, budget)?
            .first()
            .map(|v| Cow::Borrowed(*v)),
        Operand::Length(arg) => match value(arg, root, current, budget)?.as_deref() {
            Some(Value::String(s)) => {
                budget.read(s.len())?;
                Some(Cow::Owned(Value::from(s.chars().count())))
            }
            Some(Value::Array(a)) => Some(Cow::Owned(Value::from(a.len()))),
            Some(Value::Object(o)) => Some(Cow::Owned(Value::from(o.len()))),
            _ => None,
        },
        Operand::Count(q) => Some(Cow::Owned(Value::from(
            select(q, root, current, budget)?.len(),
        ))),
        Operand::Value(q) => match select(q, root, current, budget)?.as_slice() {
            [one] => Some(Cow::Borrowed(*one)),
            _ => None,
        },
    })
}

/// RFC 9535 §2.3.5.2.2.
fn compare(op: Op, a: Option<&Value>, b: Option<&Value>, budget: &mut Budget) -> Counted<bool> {
    Ok(match op {
        Op::Eq => equal(a, b, budget)?,
        Op::Ne => !equal(a, b, budget)?,
        Op::Lt => less(a, b),
        Op::Gt => less(b, a),
        Op::Le => less(a, b) || equal(a, b, budget)?,
        Op::Ge => less(b, a) || equal(a, b, budget)?,
    })
}

fn equal(a: Option<&Value>, b: Option<&Value>, budget: &mut Budget) -> Counted<bool> {
    match (a, b) {
        (None, None) => Ok(true),
        (Some(a), Some(b)) => json_equal(a, b, budget),
        _ => Ok(false),
    }
}

/// Deep equality, with numbers compared by value; every pair of nodes compared counts
/// as a visit.
fn json_equal(a: &Value, b: &Value, budget: &mut Budget) -> Counted<bool> {
    budget.visit(1)?;
    Ok(match (a, b) {
        (Value::Number(x), Value::Number(y)) => number_cmp(x, y) == Some(Ordering::Equal),
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Ok(false);
            }
            for (a, b) in x.iter().zip(y) {
                if !json_equal(a, b, budget)? {
                    return Ok(false);
                }
            }
            true
        }
        (Value::Object(x), Value::Object(y)) => {
            if x.len() != y.len() {
                return Ok(false);
            }
            for (k, v) in x {
                match y.get(k) {
                    Some(w) if json_equal(v, w, budget)? => {}
                    _ => return Ok(false),
                }
            }
            true
        }
        (Value::String(x), Value::String(y)) => {
            budget.read(x.len().min(y.len()))?;
            x == y
        }
        (a, b) => a == b,
    })
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

/// Numbers by value: exactly for integers (of any length, which the document keeps as
/// written), as `f64` otherwise.
fn number_cmp(x: &serde_json::Number, y: &serde_json::Number) -> Option<Ordering> {
    match (x.as_i128(), y.as_i128()) {
        (Some(a), Some(b)) => Some(a.cmp(&b)),
        _ => x.as_f64()?.partial_cmp(&y.as_f64()?),
    }
}
