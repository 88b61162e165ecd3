//! What mapping may cost: the JSONPath budgets, the size of a mapped record and of the
//! records of one batch, and which paths are refused before any record is seen.
//!
//! [`MapLimits`] is plain data with documented defaults; a [`Plan`](super::Plan) carries
//! it (the service sets it from `crosswalk serve`'s flags, the command line uses the
//! defaults). How each limit shows when it is hit:
//!
//! | limit | default | when it is hit |
//! | --- | --- | --- |
//! | `path_visits_per_rule` | 1,000,000 | the rule is a field error naming the limit |
//! | `path_selects_per_rule` | 100,000 | the rule is a field error naming the limit |
//! | `path_visits_per_record` | 4,000,000 | the rule that passes it is a field error |
//! | `path_selects_per_record` | 1,000,000 | the rule that passes it is a field error |
//! | `max_record_bytes` | 8 MiB | a rule whose values would pass it is a field error; a record over it fails |
//! | `max_answer_bytes` | 32 MiB | the records of a batch past it fail, naming it |
//! | `max_descendant_segments` | 2 | the mapping is refused when compiled |
//!
//! Field errors follow the mapping's mode: in strict mode (or on a `required` rule) the
//! record fails with the error instead.

use std::io;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::path::{Limit, PathLimits, Shape};

/// The most descendant segments (`..`) one path may have, counted over the whole path,
/// filters included (`max_descendant_segments`). Each one can multiply the nodes that
/// evaluation visits by the depth of the record, so more than a few is never needed and
/// is refused when a mapping is compiled.
pub const MAX_DESCENDANT_SEGMENTS: usize = 2;

/// How much mapping one record and one batch may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MapLimits {
    /// The JSONPath budgets, per rule and per record.
    pub path: PathLimits,
    /// The largest mapped record, as compact JSON, without `remote_data`
    /// (`max_record_bytes`). The values a record's paths copy out of the source are
    /// counted against it as they are copied, so that a record over it is never built.
    pub max_record_bytes: u64,
    /// The most that the mapped records of one batch (one answer) may take together, as
    /// compact JSON (`max_answer_bytes`). The records past it are not mapped.
    pub max_answer_bytes: u64,
}

impl MapLimits {
    /// The defaults.
    pub const DEFAULT: MapLimits = MapLimits {
        path: PathLimits::DEFAULT,
        max_record_bytes: 8 << 20,
        max_answer_bytes: 32 << 20,
    };

    /// `max_record_bytes` as an error names it.
    pub fn record_bytes(&self) -> Limit {
        Limit {
            name: "max_record_bytes",
            max: self.max_record_bytes,
        }
    }

    /// `max_answer_bytes` as an error names it.
    pub fn answer_bytes(&self) -> Limit {
        Limit {
            name: "max_answer_bytes",
            max: self.max_answer_bytes,
        }
    }
}

impl Default for MapLimits {
    fn default() -> Self {
        MapLimits::DEFAULT
    }
}

/// Why a path that parses is refused in a mapping, if it is: more than
/// [`MAX_DESCENDANT_SEGMENTS`], or a regular expression taken from the record.
pub fn refuse(shape: Shape) -> Option<String> {
    if shape.descendant_segments > MAX_DESCENDANT_SEGMENTS {
        return Some(format!(
            "it has {} descendant segments (`..`), and a path may have at most {MAX_DESCENDANT_SEGMENTS} (limit `max_descendant_segments`): each one can multiply the work of evaluation by the depth of the record",
            shape.descendant_segments
        ));
    }
    if shape.dynamic_patterns > 0 {
        return Some(
            "`match()` or `search()` takes its pattern from the record, which compiles a regular expression for every node tested; write the pattern as a literal string".into(),
        );
    }
    None
}

/// Appends `value` as compact JSON to `out`, unless that takes more than `max` bytes:
/// then `out` is left as it was, and the error is an I/O error (`is_io()`).
/// Serialisation stops at the limit, so a value far over it costs no more than the
/// limit.
pub fn write_json_within(
    out: &mut Vec<u8>,
    value: &impl Serialize,
    max: u64,
) -> Result<(), serde_json::Error> {
    let start = out.len();
    let mut capped = Capped {
        cap: start.saturating_add(usize::try_from(max).unwrap_or(usize::MAX)),
        bytes: out,
    };
    let written = serde_json::to_writer(&mut capped, value);
    if written.is_err() {
        out.truncate(start);
    }
    written
}

/// A buffer that refuses a write that would take it past its cap.
struct Capped<'a> {
    bytes: &'a mut Vec<u8>,
    cap: usize,
}

impl io::Write for Capped<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes.len() + buf.len() > self.cap {
            return Err(io::Error::other("over the limit"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The size of `value` as compact JSON, or `None` when it is more than `cap` bytes:
/// serialisation stops there.
pub fn json_size(value: &Value, cap: u64) -> Option<u64> {
    let mut counter = Counter { count: 0, cap };
    serde_json::to_writer(&mut counter, value).ok()?;
    Some(counter.count)
}

/// Counts what is written, and fails past its cap.
struct Counter {
    count: u64,
    cap: u64,
}

impl io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.count += buf.len() as u64;
        if self.count > self.cap {
            Err(io::Error::other("over the cap"))
        } else {
            Ok(buf.len())
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::{self, Format, MapOptions, OverrideSpec, Plan, RecordError, SpecError};
    use crate::path::Path;
    use serde_json::json;

    /// A purchase order mapping of a few rules, as a system's default would be.
    fn default() -> mapping::MappingSpec {
        mapping::MappingSpec::parse(
            "system: sap-s4hana\nentity: purchase_order\nrules:\n  - {target: id, path: $.PurchaseOrder, required: true}\n  - {target: number, path: $.PurchaseOrder}\n  - {target: currency, path: $.DocumentCurrency}\n  - target: lines\n    path: $.to_PurchaseOrderItem.results[*]\n    rules:\n      - {target: line_number, path: $.PurchaseOrderItem}\n",
            Format::Yaml,
        )
        .unwrap()
    }

    fn plan(yaml: &str) -> Result<Plan, crate::mapping::SpecErrors> {
        let overrides = OverrideSpec::parse(yaml, Format::Yaml).unwrap();
        Plan::compile(
            &mapping::resolve(&default(), Some(&overrides))?,
            &crate::plugin::PluginSet::new(),
        )
    }

    /// `[[[…depth…[leaf]…]]]`.
    fn nested(depth: usize, leaf: Value) -> Value {
        (0..depth).fold(leaf, |inner, _| Value::Array(vec![inner]))
    }

    #[test]
    fn a_mapping_with_a_costly_path_is_refused_naming_the_rule_and_the_path() {
        let e = plan(
            "overrides:\n  - target: custom_fields.q\n    path: $..*..*..*..*..*..*..*\n  - target: custom_fields.r\n    coalesce: [$.a, '$[?match(@.a, @.b)]']\n",
        )
        .unwrap_err();
        assert_eq!(e.0.len(), 2, "{e}");
        assert!(
            matches!(&e.0[0], SpecError::CostlyPath { target, path, .. }
                if target == "custom_fields.q" && path == "$..*..*..*..*..*..*..*"),
            "{e}"
        );
        let text = e.to_string();
        assert!(text.contains("target `custom_fields.q`"), "{text}");
        assert!(text.contains("7 descendant segments"), "{text}");
        assert!(text.contains("target `custom_fields.r`"), "{text}");
        // Two descendant segments are fine (and so is every shipped default mapping:
        // the source systems' crate compiles each of them).
        assert!(plan("overrides:\n  - target: custom_fields.q\n    path: $..a..b\n").is_ok());
    }

    #[test]
    fn a_rule_over_budget_is_a_field_error_naming_the_rule_and_the_limit() {
        let plan = plan("overrides:\n  - target: custom_fields.q\n    path: $..*\n")
            .unwrap()
            .with_limits(MapLimits {
                path: PathLimits {
                    selects_per_rule: 1_000,
                    ..PathLimits::DEFAULT
                },
                ..MapLimits::DEFAULT
            });
        let wide = json!({"PurchaseOrder": "1", "x": vec![0; 5_000]});
        let record = plan.map_record(&wide, MapOptions::default()).unwrap();
        assert_eq!(record["id"], "1");
        assert_eq!(record["custom_fields"]["q"], Value::Null);
        let error = &record["errors"][0];
        assert_eq!(error["target"], "custom_fields.q");
        assert_eq!(error["path"], "$..*");
        assert_eq!(error["limit"], "path_selects_per_rule");
        assert_eq!(error["max"], 1_000);
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("selects more than 1000 nodes"),
            "{error}"
        );
        // Strict: the record fails with that error.
        let strict = MapOptions {
            strict: true,
            ..MapOptions::default()
        };
        let e = plan.map_record(&wide, strict).unwrap_err();
        assert!(
            matches!(&e, RecordError::Field(f) if f.target == "custom_fields.q"),
            "{e}"
        );
        assert_eq!(e.limit().map(|l| l.name), Some("path_selects_per_rule"));
        // A small record maps whole.
        let small = json!({"PurchaseOrder": "2", "x": [1]});
        let record = plan.map_record(&small, MapOptions::default()).unwrap();
        assert_eq!(record["custom_fields"]["q"], json!(["2", [1], 1]));
        assert!(record.get("errors").is_none());
    }

    #[test]
    fn the_records_rules_share_its_budget() {
        let plan = plan(
            "overrides:\n  - target: custom_fields.a\n    path: $..*\n  - target: custom_fields.b\n    path: $..*\n",
        )
        .unwrap()
        .with_limits(MapLimits {
            path: PathLimits {
                visits_per_record: 1_000,
                ..PathLimits::DEFAULT
            },
            ..MapLimits::DEFAULT
        });
        // Each `$..*` visits some 600 nodes: the first fits, the second does not.
        let record = plan
            .map_record(
                &json!({"PurchaseOrder": "1", "x": vec![0; 600]}),
                MapOptions::default(),
            )
            .unwrap();
        assert!(record["custom_fields"]["a"].is_array());
        let errors = record["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1, "{record}");
        assert_eq!(errors[0]["target"], "custom_fields.b");
        assert_eq!(errors[0]["limit"], "path_visits_per_record");
    }

    #[test]
    fn copies_and_records_over_max_record_bytes_are_refused() {
        let plan = plan("overrides:\n  - target: custom_fields.q\n    path: $..*\n")
            .unwrap()
            .with_limits(MapLimits {
                max_record_bytes: 100_000,
                ..MapLimits::DEFAULT
            });
        // One `$..*` copies the string at the bottom once per level: 40 × 10 kB.
        let deep =
            json!({"PurchaseOrder": "1", "x": nested(40, Value::String("x".repeat(10_000)))});
        let record = plan.map_record(&deep, MapOptions::default()).unwrap();
        assert_eq!(record["errors"][0]["limit"], "max_record_bytes");
        assert_eq!(record["errors"][0]["max"], 100_000);
        assert_eq!(record["custom_fields"]["q"], Value::Null);
        // A value copied over the limit fails the rule, and the record when the rule is
        // required (`id` is).
        let limits = MapLimits {
            max_record_bytes: 1_000,
            ..MapLimits::DEFAULT
        };
        let e = plan_limits(limits)
            .map_record(
                &json!({"PurchaseOrder": "x".repeat(2_000)}),
                MapOptions::default(),
            )
            .unwrap_err();
        assert!(
            matches!(&e, RecordError::Field(f) if f.target == "id"),
            "{e}"
        );
        assert_eq!(e.limit(), Some(limits.record_bytes()));
        // A record over the limit as a whole fails: the empty purchase order alone takes
        // more than 100 bytes.
        let limits = MapLimits {
            max_record_bytes: 100,
            ..MapLimits::DEFAULT
        };
        let e = plan_limits(limits)
            .map_record(&json!({"PurchaseOrder": "1"}), MapOptions::default())
            .unwrap_err();
        assert_eq!(e, RecordError::TooLarge(limits.record_bytes()));
        assert!(
            e.to_string()
                .contains("larger than 100 bytes (limit `max_record_bytes`)"),
            "{e}"
        );
    }

    fn plan_limits(limits: MapLimits) -> Plan {
        Plan::compile(
            &mapping::resolve(&default(), None).unwrap(),
            &crate::plugin::PluginSet::new(),
        )
        .unwrap()
        .with_limits(limits)
    }

    #[test]
    fn the_records_of_a_batch_past_max_answer_bytes_are_not_mapped() {
        let plan = plan_limits(MapLimits {
            max_answer_bytes: 5_000,
            ..MapLimits::DEFAULT
        });
        let sources: Vec<Value> = (0..100)
            .map(|i| json!({"PurchaseOrder": i.to_string()}))
            .collect();
        let batch = plan.map_batch(&sources, MapOptions::default());
        let mapped = batch.records.iter().take_while(|r| r.is_ok()).count();
        assert!(mapped > 10 && mapped < 50, "{mapped}");
        for r in &batch.records[mapped..] {
            let e = r.as_ref().unwrap_err();
            assert_eq!(
                e.limit().map(|l| (l.name, l.max)),
                Some(("max_answer_bytes", 5_000))
            );
        }
    }

    #[test]
    fn sizes_are_exact_and_stop_at_the_cap() {
        let v = json!({"id": "1", "n": 12.5, "list": [1, 2]});
        let text = serde_json::to_string(&v).unwrap();
        assert_eq!(json_size(&v, 1000), Some(text.len() as u64));
        assert_eq!(json_size(&v, text.len() as u64), Some(text.len() as u64));
        assert_eq!(json_size(&v, text.len() as u64 - 1), None);
    }

    #[test]
    fn costly_paths_are_refused_with_the_reason() {
        let shape = |p: &str| Path::parse(p).unwrap().shape();
        assert_eq!(refuse(shape("$..a..b")), None);
        assert_eq!(refuse(shape("$.a[?@.b == 'x']")), None);
        assert_eq!(refuse(shape("$.a[?match(@.b, '[0-9]+')]")), None);
        let why = refuse(shape("$..*..*..*..*..*..*..*")).unwrap();
        assert!(why.contains("7 descendant segments"), "{why}");
        assert!(why.contains("`max_descendant_segments`"), "{why}");
        // Segments inside filters count too.
        assert!(refuse(shape("$..a[?count(@..b) > 0]..c")).is_some());
        assert!(refuse(shape("$..a[?count(@..b) > 0]")).is_none());
        let why = refuse(shape("$[?match(@.a, @.b)]")).unwrap();
        assert!(why.contains("literal"), "{why}");
    }
}
