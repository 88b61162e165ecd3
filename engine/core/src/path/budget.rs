//! Budgets of JSONPath evaluation: what one query may cost before it is stopped.
//!
//! A query is cheap to write and can be expensive to run: `$..*` selects every node of a
//! record, `$..*..*` every node once per ancestor, and the values a query selects are
//! copied into the mapped record, so that overlapping results grow faster than the
//! record. Evaluation therefore counts as it goes, and stops as soon as an allowance runs
//! out, before the work or the memory has been spent:
//!
//! - **visits**: the nodes the evaluator steps on (the nodes a descendant segment walks,
//!   the nodes a selector is applied to, the candidates of a filter and the nodes its
//!   own queries visit; reading text in `match()`, `search()` and `length()` counts one
//!   visit per [`TEXT_BYTES_PER_VISIT`] bytes);
//! - **selects**: the nodes put into a nodelist, at every segment, filters included;
//! - **bytes**: about the size, as JSON text, of the values the query copies out of the
//!   document.
//!
//! [`PathLimits`] holds the limits per rule and per record (all the rules of one record
//! together). A [`RecordBudget`] keeps what a record's rules have spent and hands each
//! rule its [`Budget`]: the rule's own limits or what is left of the record's, whichever
//! is less, so that the limit that stops a rule is the one named in the error.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Reading this many bytes of text (in `match()`, `search()` or `length()`) counts as
/// one visit; a regular expression taken from the document costs one visit per byte of
/// its pattern, since it is compiled for every node it is tested on.
pub const TEXT_BYTES_PER_VISIT: u64 = 64;

/// How much JSONPath evaluation one rule, and all the rules of one record, may do.
/// Plain data; [`PathLimits::DEFAULT`] is what the service and the command line use
/// unless told otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PathLimits {
    /// Nodes one rule's paths may visit (`path_visits_per_rule`).
    pub visits_per_rule: u64,
    /// Nodes one rule's paths may select, at every segment (`path_selects_per_rule`).
    pub selects_per_rule: u64,
    /// Nodes all the rules of one record may visit together (`path_visits_per_record`).
    pub visits_per_record: u64,
    /// Nodes all the rules of one record may select together (`path_selects_per_record`).
    pub selects_per_record: u64,
}

impl PathLimits {
    /// The defaults: far above what a mapping of a real record needs (an SAP order of
    /// 1,000 lines visits about 50,000 nodes), low enough that a hostile query stops
    /// within milliseconds.
    pub const DEFAULT: PathLimits = PathLimits {
        visits_per_rule: 1_000_000,
        selects_per_rule: 100_000,
        visits_per_record: 4_000_000,
        selects_per_record: 1_000_000,
    };

    /// No limit at all: for `crosswalk query` and the compliance suite, which run on
    /// the caller's own documents.
    pub const UNLIMITED: PathLimits = PathLimits {
        visits_per_rule: u64::MAX,
        selects_per_rule: u64::MAX,
        visits_per_record: u64::MAX,
        selects_per_record: u64::MAX,
    };
}

impl Default for PathLimits {
    fn default() -> Self {
        PathLimits::DEFAULT
    }
}

/// A limit by its name, with its value: what an error reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limit {
    /// The limit's name, as the service's flags and errors spell it
    /// (`path_visits_per_rule`).
    #[serde(rename = "limit")]
    pub name: &'static str,
    /// Its value.
    pub max: u64,
}

impl Limit {
    /// No limit: the allowance of unbudgeted evaluation.
    const NONE: Limit = Limit {
        name: "none",
        max: u64::MAX,
    };
}

/// What an allowance counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// Nodes visited.
    Visits,
    /// Nodes selected.
    Selects,
    /// Bytes of copied values.
    Bytes,
}

/// An evaluation stopped because an allowance ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct OverBudget {
    /// The limit that stopped it.
    pub limit: Limit,
    /// What it counts.
    pub measure: Measure,
}

impl OverBudget {
    fn describe(&self) -> String {
        let Limit { name, max } = self.limit;
        match self.measure {
            Measure::Visits => format!(
                "JSONPath evaluation stopped: it visits more than {max} nodes (limit `{name}`)"
            ),
            Measure::Selects => format!(
                "JSONPath evaluation stopped: it selects more than {max} nodes (limit `{name}`)"
            ),
            Measure::Bytes => format!(
                "JSONPath evaluation stopped: the values it selects take more than {max} bytes (limit `{name}`)"
            ),
        }
    }
}

/// One allowance: what is left, what was given, and the limit it comes from.
#[derive(Debug, Clone, Copy)]
struct Allowance {
    left: u64,
    given: u64,
    limit: Limit,
    measure: Measure,
}

impl Allowance {
    fn new(given: u64, limit: Limit, measure: Measure) -> Allowance {
        Allowance {
            left: given,
            given,
            limit,
            measure,
        }
    }

    /// The smaller of a rule's limit and what is left of its record's: the binding one
    /// is the one an error names.
    fn lesser(rule: Limit, record: Limit, record_spent: u64, measure: Measure) -> Allowance {
        let record_left = record.max.saturating_sub(record_spent);
        if rule.max <= record_left {
            Allowance::new(rule.max, rule, measure)
        } else {
            Allowance::new(record_left, record, measure)
        }
    }

    #[inline]
    fn take(&mut self, n: u64) -> Result<(), OverBudget> {
        match self.left.checked_sub(n) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => {
                self.left = 0;
                Err(OverBudget {
                    limit: self.limit,
                    measure: self.measure,
                })
            }
        }
    }

    fn used(&self) -> u64 {
        self.given - self.left
    }
}

/// What one evaluation may still do. Evaluation takes from it as it goes and stops with
/// [`OverBudget`] when an allowance runs out.
#[derive(Debug, Clone)]
pub struct Budget {
    visits: Allowance,
    selects: Allowance,
    bytes: Allowance,
}

impl Budget {
    /// No limit.
    pub fn unlimited() -> Budget {
        Budget {
            visits: Allowance::new(u64::MAX, Limit::NONE, Measure::Visits),
            selects: Allowance::new(u64::MAX, Limit::NONE, Measure::Selects),
            bytes: Allowance::new(u64::MAX, Limit::NONE, Measure::Bytes),
        }
    }

    /// Counts `n` nodes visited.
    #[inline]
    pub(super) fn visit(&mut self, n: u64) -> Result<(), OverBudget> {
        self.visits.take(n)
    }

    /// Counts `n` nodes selected.
    #[inline]
    pub(super) fn select(&mut self, n: u64) -> Result<(), OverBudget> {
        self.selects.take(n)
    }

    /// Counts `n` bytes of text read.
    #[inline]
    pub(super) fn read(&mut self, n: usize) -> Result<(), OverBudget> {
        self.visits.take(1 + n as u64 / TEXT_BYTES_PER_VISIT)
    }

    /// Counts `n` bytes copied.
    #[inline]
    pub(super) fn copy(&mut self, n: u64) -> Result<(), OverBudget> {
        self.bytes.take(n)
    }

    /// The bytes that may still be copied.
    pub(super) fn bytes_left(&self) -> u64 {
        self.bytes.left
    }
}

/// What the rules of one record have spent, against the record's limits; it hands each
/// rule its [`Budget`].
#[derive(Debug, Clone)]
pub struct RecordBudget {
    limits: PathLimits,
    bytes: Limit,
    visits_spent: u64,
    selects_spent: u64,
    bytes_spent: u64,
}

impl RecordBudget {
    /// A record's budget under `limits`, whose values may copy at most `bytes`
    /// (a limit on the whole mapped record, such as `max_record_bytes`).
    pub fn new(limits: &PathLimits, bytes: Limit) -> RecordBudget {
        RecordBudget {
            limits: *limits,
            bytes,
            visits_spent: 0,
            selects_spent: 0,
            bytes_spent: 0,
        }
    }

    /// The allowance of the next rule: its own limits, or what is left of the
    /// record's, whichever is less.
    pub fn rule(&self) -> Budget {
        let l = &self.limits;
        Budget {
            visits: Allowance::lesser(
                Limit {
                    name: "path_visits_per_rule",
                    max: l.visits_per_rule,
                },
                Limit {
                    name: "path_visits_per_record",
                    max: l.visits_per_record,
                },
                self.visits_spent,
                Measure::Visits,
            ),
            selects: Allowance::lesser(
                Limit {
                    name: "path_selects_per_rule",
                    max: l.selects_per_rule,
                },
                Limit {
                    name: "path_selects_per_record",
                    max: l.selects_per_record,
                },
                self.selects_spent,
                Measure::Selects,
            ),
            bytes: Allowance::new(
                self.bytes.max.saturating_sub(self.bytes_spent),
                self.bytes,
                Measure::Bytes,
            ),
        }
    }

    /// Charges the record with what a rule's budget was used for: the nodes it
    /// visited and selected, and the bytes it copied when the record keeps its value
    /// (`kept`; a rule that was stopped keeps nothing).
    pub fn spend(&mut self, used: &Budget, kept: bool) {
        self.visits_spent = self.visits_spent.saturating_add(used.visits.used());
        self.selects_spent = self.selects_spent.saturating_add(used.selects.used());
        if kept {
            self.bytes_spent = self.bytes_spent.saturating_add(used.bytes.used());
        }
    }

    /// Charges the record with `n` bytes that it holds besides copied values (the
    /// empty fields of its nested elements, its field errors); fails when that passes
    /// its byte limit.
    pub fn hold(&mut self, n: u64) -> Result<(), OverBudget> {
        self.bytes_spent = self.bytes_spent.saturating_add(n);
        if self.bytes_spent > self.bytes.max {
            Err(OverBudget {
                limit: self.bytes,
                measure: Measure::Bytes,
            })
        } else {
            Ok(())
        }
    }
}

/// About the size of `value` as compact JSON text (a number counts [`NUMBER_BYTES`],
/// escapes are not counted, and every element or member one comma), or `None` as soon
/// as it passes `cap`: measuring costs at most what copying `cap` bytes would.
pub fn json_size_within(value: &Value, cap: u64) -> Option<u64> {
    fn add(value: &Value, total: &mut u64, cap: u64) -> bool {
        *total += match value {
            Value::Null => 4,
            Value::Bool(_) => 5,
            Value::Number(_) => NUMBER_BYTES,
            Value::String(s) => s.len() as u64 + 2,
            Value::Array(items) => {
                *total += 2 + items.len() as u64;
                if *total > cap {
                    return false;
                }
                for v in items {
                    if !add(v, total, cap) {
                        return false;
                    }
                }
                0
            }
            Value::Object(map) => {
                *total += 2;
                for (k, v) in map {
                    *total += k.len() as u64 + 4;
                    if !add(v, total, cap) {
                        return false;
                    }
                }
                0
            }
        };
        *total <= cap
    }
    let mut total = 0;
    add(value, &mut total, cap).then_some(total)
}

/// What a number counts for in [`json_size_within`].
pub const NUMBER_BYTES: u64 = 8;

#[cfg(test)]
mod tests {
    use super::*;

    const BYTES: Limit = Limit {
        name: "max_record_bytes",
        max: 1000,
    };

    fn limits(visits_per_rule: u64, visits_per_record: u64) -> PathLimits {
        PathLimits {
            visits_per_rule,
            visits_per_record,
            ..PathLimits::DEFAULT
        }
    }

    #[test]
    fn a_rule_gets_its_own_limit_or_what_is_left_of_the_record() {
        let mut record = RecordBudget::new(&limits(10, 25), BYTES);
        let mut first = record.rule();
        first.visit(10).unwrap();
        let e = first.visit(1).unwrap_err();
        assert_eq!(e.limit.name, "path_visits_per_rule");
        assert_eq!(e.limit.max, 10);
        record.spend(&first, true);
        let mut second = record.rule();
        second.visit(10).unwrap();
        record.spend(&second, true);
        // 20 of 25 spent: the third rule gets 5, and the record's limit is named.
        let mut third = record.rule();
        third.visit(5).unwrap();
        let e = third.visit(1).unwrap_err();
        assert_eq!(
            (e.limit.name, e.limit.max, e.measure),
            ("path_visits_per_record", 25, Measure::Visits)
        );
        assert!(e.to_string().contains("more than 25 nodes"), "{e}");
        assert!(e.to_string().contains("`path_visits_per_record`"), "{e}");
    }

    #[test]
    fn a_failed_take_leaves_nothing_and_counts_as_spent() {
        let mut record = RecordBudget::new(&limits(10, 15), BYTES);
        let mut rule = record.rule();
        assert!(rule.visit(11).is_err());
        record.spend(&rule, false);
        let mut next = record.rule();
        assert_eq!(
            next.visit(6).unwrap_err().limit.name,
            "path_visits_per_record"
        );
    }

    #[test]
    fn bytes_are_shared_by_the_rules_and_what_the_record_holds() {
        let mut record = RecordBudget::new(&PathLimits::DEFAULT, BYTES);
        let mut rule = record.rule();
        rule.copy(600).unwrap();
        record.spend(&rule, true);
        assert_eq!(record.rule().bytes_left(), 400);
        // A rule that was stopped keeps none of its bytes.
        let mut stopped = record.rule();
        stopped.copy(300).unwrap();
        assert!(stopped.copy(101).is_err());
        record.spend(&stopped, false);
        assert_eq!(record.rule().bytes_left(), 400);
        record.hold(300).unwrap();
        let e = record.hold(101).unwrap_err();
        assert_eq!((e.limit, e.measure), (BYTES, Measure::Bytes));
        assert_eq!(record.rule().copy(1).unwrap_err().limit, BYTES);
    }

    #[test]
    fn selects_and_text_are_counted() {
        let mut record = RecordBudget::new(
            &PathLimits {
                selects_per_rule: 3,
                ..PathLimits::DEFAULT
            },
            BYTES,
        );
        let mut rule = record.rule();
        rule.select(3).unwrap();
        assert_eq!(
            rule.select(1).unwrap_err().limit.name,
            "path_selects_per_rule"
        );
        let mut rule = record.rule();
        rule.read(64 * 10).unwrap();
        record.spend(&rule, true);
        assert_eq!(record.visits_spent, 11);
        assert!(Budget::unlimited().visit(u64::MAX).is_ok());
    }

    #[test]
    fn sizes_are_about_the_json_text_and_stop_at_the_cap() {
        let v = serde_json::json!({"a": ["xy", null, 1], "bc": {}});
        // `{"a":["xy",null,1],"bc":{}}` is 27 bytes: a number counts 8 instead of 1,
        // and each array element and member one more comma than there is.
        assert_eq!(json_size_within(&v, 1000), Some(36));
        assert_eq!(json_size_within(&v, 35), None);
        let long = Value::String("x".repeat(1 << 20));
        let deep = serde_json::json!([[[[long.clone(), long]]]]);
        assert_eq!(json_size_within(&deep, 100), None);
    }
}
