//! The selective reader: a source payload parsed into only the part a plan reads.
//!
//! A compiled [`Plan`](super::Plan) knows every path it will evaluate. [`Projection`]
//! turns them into a tree of the members and array elements they can reach, and
//! [`Projection::parse`] walks the payload's text once with it: a member no rule reads
//! is skipped without being built (serde's `IgnoredAny`: no allocation, though its text
//! is still checked to be JSON), and the node a path selects is built whole, exactly as
//! a full parse would build it. The mapping then runs on that smaller document as it
//! would on the whole one, so JSONPath semantics do not change: every path finds the
//! same nodes, in the same order, and what a path may read past its leading member and
//! index steps (a wildcard, a slice, a filter, a descendant segment) is kept whole.
//!
//! # Why serde_json, and not a SIMD parser
//!
//! The parser is the one every other part of Crosswalk uses, driven through a
//! [`DeserializeSeed`] instead of into a `Value`. Numbers keep the digits they were
//! written with (`arbitrary_precision`), duplicate members resolve the same way, errors
//! name the same line and column, and the nesting limit is the same, because it is the
//! same parser. `simd-json` and `sonic-rs` scan faster, but both would have to hand
//! back a `serde_json::Value` for the rules (a conversion that costs what they save on
//! the small records of a mapping) and keep numbers as written, and `sonic-rs` needs
//! target-feature flags at build time for its SIMD paths. On the workloads the time
//! that is left is in building what the rules read, not in scanning what they do not.
//!
//! # The envelope
//!
//! A payload may be a collection in its envelope (`{"d": {"results": […]}}`, `{"value":
//! […]}`, `{"member": […]}`, a plain array) or one record, and which one it is depends
//! on every member name at the top (see [`Payload::unwrap`](super::Payload::unwrap)).
//! The projection of a payload therefore keeps, at the top and inside `d`, the
//! envelopes' own names and the first other name it does not read, with `null` for
//! their values (enough for the same answer), and projects the records that the
//! envelopes hold as it projects a record. No path can see those `null`s: a path that
//! reads a member keeps it, and one that could enumerate members keeps the whole node.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::compile::{Rule, Source};
use crate::path::{Access, Path};

/// What of a payload a plan reads, ready to parse payloads with.
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    payload: Node,
}

/// What is read of one node of the document.
#[derive(Debug, Clone, Default, PartialEq)]
struct Node {
    /// The whole value is read.
    all: bool,
    /// Unread members leave a trace of their names, with `null`: at the envelope's
    /// levels, whose names tell a collection from a record (see [`KeySeed`]).
    keep_names: bool,
    /// The members read, for an object.
    members: Vec<(Box<str>, Node)>,
    /// What is read of each element, for an array; without it an array is read whole.
    elements: Option<Box<Node>>,
    /// What is read of every member and element (a wildcard's): merged into
    /// `members` and `elements` by [`Node::finish`], and kept for the members that
    /// no rule names.
    each: Option<Box<Node>>,
}

impl Node {
    fn whole() -> Node {
        Node {
            all: true,
            ..Node::default()
        }
    }

    fn set_whole(&mut self) {
        *self = Node::whole();
    }

    fn member(&mut self, name: &str) -> &mut Node {
        let at = match self.members.iter().position(|(n, _)| &**n == name) {
            Some(at) => at,
            None => {
                self.members.push((name.into(), Node::default()));
                self.members.len() - 1
            }
        };
        &mut self.members[at].1
    }

    fn elements(&mut self) -> &mut Node {
        self.elements.get_or_insert_with(Box::default)
    }

    fn each(&mut self) -> &mut Node {
        self.each.get_or_insert_with(Box::default)
    }

    /// The node a path's leading steps reach, with what the path selects there
    /// ([`Ends`]); `None` when the path may read all of this node (which is then read
    /// whole) or of the node reached (already whole).
    fn reach(&mut self, path: &Path) -> Option<(&mut Node, Ends)> {
        let reach = path.reach();
        if reach.root {
            self.set_whole();
            return None;
        }
        let mut node = self;
        for step in &reach.steps {
            if node.all {
                return None;
            }
            node = match step {
                Access::Member(name) => node.member(name),
                Access::Element => node.elements(),
                Access::Each => node.each(),
            };
        }
        let ends = match (reach.singular, reach.complete) {
            (true, _) => Ends::One,
            (false, true) => Ends::Nodes,
            (false, false) => Ends::Below,
        };
        (!node.all).then_some((node, ends))
    }

    /// Everything `path` may read, evaluated at this node: the nodes it ends at, or
    /// where its leading steps end, are read whole.
    fn read(&mut self, path: &Path) {
        if let Some((end, _)) = self.reach(path) {
            end.set_whole();
        }
    }

    /// What `rules` read, evaluated at this node.
    fn read_rules(&mut self, rules: &[Arc<Rule>]) {
        for rule in rules {
            if self.all {
                return;
            }
            for t in &rule.transforms {
                t.paths(&mut |p| self.read(p));
            }
            match (&rule.source, &rule.nested) {
                // Nested rules without a source map the record they are in.
                (Source::None, Some(nested)) => self.read_rules(&nested.rules),
                // The nested rules map a singular source's node or each of its
                // elements, and each node of a wildcard's: they are read as the
                // nested rules read them.
                (Source::Path(path), Some(nested)) => match self.reach(path) {
                    Some((end, Ends::One)) => {
                        end.read_rules(&nested.rules);
                        end.elements().read_rules(&nested.rules);
                    }
                    Some((end, Ends::Nodes)) => end.read_rules(&nested.rules),
                    Some((end, Ends::Below)) => end.set_whole(),
                    None => {}
                },
                (Source::Path(path), None) => self.read(path),
                (Source::Coalesce(paths), _) => paths.iter().for_each(|p| self.read(p)),
                (Source::None | Source::Const(_), _) => {}
            }
        }
    }

    /// Reads what `other` reads too.
    fn merge(&mut self, other: &Node) {
        if self.all {
            return;
        }
        if other.all {
            self.set_whole();
            return;
        }
        self.keep_names |= other.keep_names;
        for (name, node) in &other.members {
            self.member(name).merge(node);
        }
        if let Some(e) = &other.elements {
            self.elements().merge(e);
        }
        if let Some(e) = &other.each {
            self.each().merge(e);
        }
    }

    /// Makes what a wildcard reads part of what is read of each member and element,
    /// at every depth, and drops what is under a node read whole.
    fn finish(&mut self) {
        if self.all {
            *self = Node::whole();
            return;
        }
        if let Some(each) = self.each.take() {
            for (_, member) in &mut self.members {
                member.merge(&each);
            }
            self.elements().merge(&each);
            self.each = Some(each);
        }
        for (_, member) in &mut self.members {
            member.finish();
        }
        for inner in [&mut self.elements, &mut self.each].into_iter().flatten() {
            inner.finish();
        }
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.members
            .iter()
            .position(|(n, _)| n.len() == name.len() && &**n == name)
    }
}

/// What a path selects at the node its leading steps reach.
#[derive(Clone, Copy)]
enum Ends {
    /// That node (a singular path).
    One,
    /// That node, standing for each node of a wildcard.
    Nodes,
    /// Nodes below it, of a selector the steps stop before.
    Below,
}

impl Projection {
    /// What `rules` read of a record, and of the payloads that hold records; `None`
    /// when they may read all of a record, so that nothing would be left out.
    pub(super) fn of(rules: &[Arc<Rule>]) -> Option<Projection> {
        let mut record = Node::default();
        record.read_rules(rules);
        if record.all {
            return None;
        }
        let mut payload = record.clone();
        payload.keep_names = true;
        // A plain array of records, `{"value": […]}` (OData V4) and `{"member": […]}`
        // (Maximo).
        payload.elements().merge(&record);
        for name in ["value", "member"] {
            payload.member(name).elements().merge(&record);
        }
        // `{"d": {…}}` (OData V2): one record, or `{"d": {"results": […]}}`.
        let d = payload.member("d");
        d.merge(&record);
        d.keep_names = true;
        d.member("results").elements().merge(&record);
        payload.finish();
        Some(Projection { payload })
    }

    /// What one query reads of a document, without the envelope: `None` when it may
    /// read all of it. The JSONPath compliance suite runs every query on the document
    /// this reads too, to show that the nodes a query selects are all there.
    pub fn of_path(path: &Path) -> Option<Projection> {
        let mut payload = Node::default();
        payload.read(path);
        payload.finish();
        (!payload.all).then_some(Projection { payload })
    }

    /// Parses a payload's text, building only what the plan reads. Invalid JSON is the
    /// error `serde_json::from_slice` gives, at the same line and column.
    pub fn parse(&self, text: &[u8]) -> Result<Value, serde_json::Error> {
        // Skipped strings are not checked for UTF-8 by serde_json: the whole text is,
        // first. Text that is not JSON is parsed again, whole, for the error a full
        // parse gives (skipping a string counts columns differently).
        let projected = std::str::from_utf8(text).ok().and_then(|text| {
            let mut de = serde_json::Deserializer::from_str(text);
            let value = Seed(&self.payload).deserialize(&mut de).ok()?;
            de.end().ok()?;
            Some(value)
        });
        match projected {
            Some(value) => Ok(value),
            None => serde_json::from_slice(text),
        }
    }
}

/// Builds what a [`Node`] reads of a value.
#[derive(Clone, Copy)]
struct Seed<'n>(&'n Node);

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        if self.0.all {
            Value::deserialize(d)
        } else {
            d.deserialize_any(self)
        }
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        match &self.0.elements {
            Some(each) => {
                while let Some(item) = seq.next_element_seed(Seed(each))? {
                    items.push(item);
                }
            }
            // Nothing reads into its elements: it is read whole (a path that ends
            // here, or an element quoted in an error).
            None => {
                while let Some(item) = seq.next_element::<Value>()? {
                    items.push(item);
                }
            }
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let node = self.0;
        // Sized for the members read by name, so that the map does not grow as they
        // come (names kept or read under a wildcard may still add some).
        let mut out = Map::with_capacity(node.members.len());
        let mut first = true;
        let mut other_named = false;
        while let Some(key) = map.next_key_seed(KeySeed {
            node,
            first,
            other_named,
        })? {
            match key {
                // A number, as serde_json hands it out with `arbitrary_precision`.
                Key::Number => {
                    let digits: String = map.next_value()?;
                    return Value::from_str(&digits).map_err(de::Error::custom);
                }
                Key::Read(i) => {
                    let (name, child) = &node.members[i];
                    let value = map.next_value_seed(Seed(child))?;
                    out.insert(name.to_string(), value);
                }
                Key::Each(name) => {
                    let each = node.each.as_deref().expect("classified by it");
                    let value = map.next_value_seed(Seed(each))?;
                    out.insert(name, value);
                }
                Key::Named(name) => {
                    map.next_value::<IgnoredAny>()?;
                    other_named |= !envelope_name(&name);
                    out.insert(name, Value::Null);
                }
                Key::Unread => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            first = false;
        }
        Ok(Value::Object(out))
    }
}

/// A member name, as a [`Node`] sees it.
enum Key {
    /// serde_json's private marker of a number.
    Number,
    /// The node's `i`th member.
    Read(usize),
    /// A member read as every member is (under a wildcard).
    Each(String),
    /// An unread member whose name is kept.
    Named(String),
    /// An unread member.
    Unread,
}

/// Classifies a member name without allocating it, unless it is kept.
///
/// Where names are kept, an envelope's own names are kept, and of the others only the
/// first: what [`Payload::unwrap`](super::Payload::unwrap) asks of the names (only
/// `d`? only envelope names besides the records?) has the same answer with one of
/// them as with all, and a record does not pay for a name it does not read.
struct KeySeed<'n> {
    node: &'n Node,
    /// The first member of an object, where serde_json puts its number marker.
    first: bool,
    /// A name that is not an envelope's was kept already.
    other_named: bool,
}

/// A name an envelope may have besides its records (`envelope_name` of the others is
/// `false`): OData V2's `d`, `results`, `__count`, `__next`; OData V4's `value` and
/// `@odata.*`; Maximo's `member`, `href`, `responseInfo`.
fn envelope_name(name: &str) -> bool {
    matches!(
        name,
        "d" | "results" | "__count" | "__next" | "value" | "member" | "href" | "responseInfo"
    ) || name.starts_with("@odata.")
}

/// serde_json's marker of a number under `arbitrary_precision` (`serde_json::number::TOKEN`).
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E>(self, name: &str) -> Result<Key, E> {
        if let Some(i) = self.node.find(name) {
            Ok(Key::Read(i))
        } else if self.first && name == NUMBER_TOKEN {
            Ok(Key::Number)
        } else if self.node.each.is_some() {
            Ok(Key::Each(name.to_owned()))
        } else if self.node.keep_names && (!self.other_named || envelope_name(name)) {
            Ok(Key::Named(name.to_owned()))
        } else {
            Ok(Key::Unread)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::{Format, MappingSpec, OverrideSpec, Plan, resolve};
    use crate::plugin::PluginSet;

    fn projection_of(rules: &str) -> Option<Projection> {
        let default = MappingSpec::parse(
            &format!("system: sap-s4hana\nentity: purchase_order\nrules:\n{rules}"),
            Format::Yaml,
        )
        .unwrap();
        let plan = Plan::compile(
            &resolve(&default, None::<&OverrideSpec>).unwrap(),
            &PluginSet::new(),
        )
        .unwrap();
        Projection::of(&plan.rules)
    }

    fn projection(rules: &str) -> Projection {
        projection_of(rules).expect("a record is not read whole")
    }

    /// A value as written (`json!` would write `2.50` as `2.5`).
    fn json(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    fn parse(p: &Projection, text: &str) -> Value {
        p.parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn unread_members_are_left_out_and_read_ones_are_whole() {
        let p = projection(
            "  - {target: id, path: $.Id}\n  - {target: vendor.name, path: '$.V.Name'}\n",
        );
        let record = parse(
            &p,
            r#"{"Id": {"x": [1, 2.50]}, "Big": [{"a": 1}, "s\u00e9"], "V": {"Name": "n", "Other": 1}}"#,
        );
        // The top keeps a trace of the names it does not read (an envelope is told by
        // them): the envelope's, and the first of the others, null.
        assert_eq!(
            record,
            json(r#"{"Id": {"x": [1, 2.50]}, "Big": null, "V": {"Name": "n"}}"#)
        );
        // Numbers keep their digits.
        assert_eq!(record["Id"]["x"][1].to_string(), "2.50");
    }

    #[test]
    fn nested_rules_read_each_element_and_a_number_where_an_object_was_expected() {
        let p = projection(
            "  - {target: id, path: $.Id}\n  - target: lines\n    path: $.Items.results\n    rules:\n      - {target: item_id, path: $.M}\n      - {target: need_by_date, path: '$.S.results[0].D'}\n",
        );
        let record = parse(
            &p,
            r#"{"Id": "1", "Items": {"results": [{"M": "a", "X": 1, "S": {"results": [{"D": "d", "E": 2}]}}, 7.10, {"M": "b"}]}}"#,
        );
        assert_eq!(
            record["Items"],
            json(r#"{"results": [{"M": "a", "S": {"results": [{"D": "d"}]}}, 7.10, {"M": "b"}]}"#)
        );
        assert_eq!(record["Items"]["results"][1].to_string(), "7.10");
    }

    #[test]
    fn envelopes_keep_their_names_and_project_their_records() {
        let p = projection("  - {target: id, path: $.Id}\n");
        let v2 = parse(
            &p,
            r#"{"d": {"results": [{"Id": "1", "X": 2}], "__next": "n"}}"#,
        );
        assert_eq!(
            v2,
            serde_json::json!({"d": {"results": [{"Id": "1"}], "__next": null}})
        );
        let v4 = parse(
            &p,
            r#"{"@odata.context": "c", "value": [{"Id": "1", "X": 2}]}"#,
        );
        assert_eq!(
            v4,
            serde_json::json!({"@odata.context": null, "value": [{"Id": "1"}]})
        );
        let plain = parse(&p, r#"[{"Id": "1", "X": 2}]"#);
        assert_eq!(plain, serde_json::json!([{"Id": "1"}]));
        // A record with a `value` array and names of its own is a record, read as
        // the whole of it is read.
        for text in [
            r#"{"value": [{"Id": "2"}], "Name": "x", "Other": 2, "Id": "1"}"#,
            r#"{"d": {"results": [], "Name": "x", "Other": 2}}"#,
            r#"{"member": [], "href": "h", "@odata.context": "c"}"#,
            r#"{"member": [{"Id": "1", "X": 1}], "href": "h"}"#,
        ] {
            let whole = crate::mapping::Payload::unwrap(json(text));
            let read = crate::mapping::Payload::unwrap(parse(&p, text));
            assert_eq!(
                matches!(whole, crate::mapping::Payload::One(_)),
                matches!(read, crate::mapping::Payload::One(_)),
                "{text}"
            );
        }
        // (`value` is read, as an envelope's records would be.)
        let record = parse(&p, r#"{"Id": "1", "A": 1, "B": 2, "value": 3}"#);
        assert_eq!(
            record,
            serde_json::json!({"Id": "1", "A": null, "value": 3})
        );
    }

    #[test]
    fn wildcards_read_every_member_and_element_as_their_path_goes_on() {
        let p = projection("  - {target: id, path: '$.A[*].b'}\n  - {target: number, path: $.N}\n");
        let record = parse(&p, r#"{"A": [{"b": 1, "c": 2}, 3, [4]], "N": "1", "Z": 0}"#);
        assert_eq!(
            record,
            serde_json::json!({"A": [{"b": 1}, 3, [4]], "N": "1", "Z": null})
        );
        // Over an object, the wildcard takes every member, each read as `b` is.
        let record = parse(&p, r#"{"A": {"x": {"b": [1], "c": 2}, "y": 5}, "N": "1"}"#);
        assert_eq!(
            record,
            serde_json::json!({"A": {"x": {"b": [1]}, "y": 5}, "N": "1"})
        );
        // Nested rules over a wildcard's nodes read each node as they read a record.
        let p = projection(
            "  - target: lines\n    path: '$.Items.results[*]'\n    rules:\n      - {target: item_id, path: $.M}\n",
        );
        let record = parse(
            &p,
            r#"{"Items": {"results": [{"M": "a", "X": 1}, {"X": 2}]}}"#,
        );
        assert_eq!(
            record,
            serde_json::json!({"Items": {"results": [{"M": "a"}, {}]}})
        );
    }

    #[test]
    fn what_a_path_may_read_past_its_steps_is_whole() {
        // A descendant segment at the root, or a filter that reads the root, may read
        // anything in the record: it is parsed whole.
        assert!(projection_of("  - {target: id, path: '$..n'}\n").is_none());
        assert!(projection_of("  - {target: id, path: '$.A[?@.b == $.k].c'}\n").is_none());
        let p = projection("  - {target: id, path: '$.A[?@.b == @.k].c'}\n");
        let text = r#"{"A": [{"b": 1, "k": 1, "c": 2, "d": 3}], "N": 1}"#;
        assert_eq!(
            parse(&p, text),
            serde_json::json!({"A": [{"b": 1, "k": 1, "c": 2, "d": 3}], "N": null})
        );
    }

    #[test]
    fn invalid_text_is_the_parsers_error() {
        let p = projection("  - {target: id, path: $.Id}\n");
        for bad in [
            &b"{\"Id\": 1,\n \"X\": [1, }"[..],
            b"{\"X\": \"\xff\"}",
            b"{\"Id\": 1} x",
            b"{\"X\": \"a\x01\"}",
        ] {
            let ours = p.parse(bad).unwrap_err().to_string();
            let theirs = serde_json::from_slice::<Value>(bad)
                .unwrap_err()
                .to_string();
            assert_eq!(ours, theirs);
        }
    }
}
