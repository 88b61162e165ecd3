//! Unified records as the rules fill them, written out from the plan's layout.
//!
//! Mapping a record fills one [`Slot`] per rule, in rule order ([`Fields`]). Where each
//! slot goes in the unified record, and what every field no rule fills holds (its
//! empty value), is the [`Layout`] the plan compiles from the entity's skeleton: the
//! model's fields in order, each member name escaped once. A record is then written
//! straight from its slots to JSON text ([`Record`], what the transform endpoints and
//! `crosswalk map` answer with), or built as a `serde_json::Value` where an API needs
//! one (previews, plugin `post` steps, the records the service lists): the same
//! layout gives both, with the same members in the same order as the skeleton filled
//! in by the rules, which is what mapping built before the layout existed.

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::compile::Rule;

/// One unified record as compact JSON text, written from the layout without a
/// `Value` in between. An answer embeds [`Record::json`] as it is.
#[derive(Clone, PartialEq, Eq)]
pub struct Record(Box<str>);

impl Record {
    /// The record's JSON text: an object.
    pub fn json(&self) -> &str {
        &self.0
    }

    /// The record as a value (parsed from its text).
    pub fn to_value(&self) -> Value {
        serde_json::from_str(&self.0).expect("a record is JSON")
    }

    /// The record of `value`, an object.
    pub fn from_value(value: &Value) -> Record {
        Record(
            serde_json::to_string(value)
                .expect("a value serializes")
                .into(),
        )
    }

    /// The record with one more member at its end (`remote_data`).
    pub(super) fn with_member(self, name: &str, value: &Value) -> Record {
        let mut text = String::from(self.0);
        debug_assert!(text.ends_with('}'));
        text.pop();
        if text.len() > 1 {
            text.push(',');
        }
        text.push_str(&serde_json::to_string(name).expect("a name serializes"));
        text.push(':');
        text.push_str(&serde_json::to_string(value).expect("a value serializes"));
        text.push('}');
        Record(text.into())
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.json())
    }
}

/// What the service reads of a unified record in either form: its `id`, to name a
/// record whose fields failed.
pub trait Unified {
    /// The record's `id` as text, if it has one.
    fn id(&self) -> Option<String>;
}

impl Unified for Value {
    fn id(&self) -> Option<String> {
        match self.get("id")? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

impl Unified for Record {
    fn id(&self) -> Option<String> {
        // For the records whose fields failed: parsed then, not before.
        self.to_value().id()
    }
}

/// What one rule gave a record.
#[derive(Debug)]
pub(super) enum Slot {
    /// A field's value (or an object target's whole value, when its nested rules did
    /// not run: its skeleton).
    Value(Value),
    /// An object target's nested rules, by the nested layout.
    One(Fields),
    /// An array target: one element per source element.
    Many(Vec<Slot>),
}

/// What each rule of a scope gave, in rule order.
#[derive(Debug)]
pub(super) struct Fields(pub Vec<Slot>);

/// Where each rule's value goes in an object: its fields in the skeleton's order.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Layout {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    name: Box<str>,
    /// `"name":`, escaped.
    key: Box<str>,
    place: Place,
}

#[derive(Debug, Clone, PartialEq)]
enum Place {
    /// A field no rule fills: its empty value, and as JSON.
    Empty(Value, Box<str>),
    /// The value of the scope's rule at this index.
    Rule(usize),
    /// An object some of whose fields rules fill.
    Object(Layout),
}

impl Layout {
    /// The layout of `skeleton` (an object of every field, empty) filled by `rules`,
    /// each at its keys: a key the skeleton lacks (a custom field) is added at the end
    /// of its object, in rule order.
    pub(super) fn new(skeleton: &Value, rules: &[Arc<Rule>]) -> Layout {
        let mut layout = Layout::of(skeleton);
        for (i, rule) in rules.iter().enumerate() {
            layout.place(&rule.keys, i);
        }
        layout
    }

    fn of(value: &Value) -> Layout {
        let entries = match value {
            Value::Object(map) => map
                .iter()
                .map(|(name, v)| Entry::new(name, Place::of(v)))
                .collect(),
            _ => Vec::new(),
        };
        Layout { entries }
    }

    fn place(&mut self, keys: &[String], rule: usize) {
        let (key, rest) = keys.split_first().expect("a target has a key");
        let at = match self.entries.iter().position(|e| *e.name == **key) {
            Some(at) => at,
            None => {
                let place = Place::Object(Layout {
                    entries: Vec::new(),
                });
                self.entries.push(Entry::new(key, place));
                self.entries.len() - 1
            }
        };
        let place = &mut self.entries[at].place;
        if rest.is_empty() {
            *place = Place::Rule(rule);
            return;
        }
        // On the way to a deeper key, an empty (`null`) field becomes an object.
        if !matches!(place, Place::Object(_)) {
            *place = Place::Object(Layout {
                entries: Vec::new(),
            });
        }
        if let Place::Object(inner) = place {
            inner.place(rest, rule);
        }
    }

    /// Writes the object's members (without its braces) as JSON.
    pub(super) fn write_members(&self, rules: &[Arc<Rule>], fields: &Fields, out: &mut Vec<u8>) {
        for (i, entry) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(entry.key.as_bytes());
            match &entry.place {
                Place::Empty(_, json) => out.extend_from_slice(json.as_bytes()),
                Place::Rule(r) => write_slot(&rules[*r], &fields.0[*r], out),
                Place::Object(inner) => {
                    out.push(b'{');
                    inner.write_members(rules, fields, out);
                    out.push(b'}');
                }
            }
        }
    }

    /// Builds the object as a value.
    pub(super) fn value(&self, rules: &[Arc<Rule>], fields: Fields) -> Value {
        let mut slots: Vec<Option<Slot>> = fields.0.into_iter().map(Some).collect();
        self.build(rules, &mut slots)
    }

    fn build(&self, rules: &[Arc<Rule>], slots: &mut [Option<Slot>]) -> Value {
        let mut map = Map::with_capacity(self.entries.len());
        for entry in &self.entries {
            let value = match &entry.place {
                Place::Empty(value, _) => value.clone(),
                Place::Rule(r) => {
                    let slot = slots[*r].take().expect("each rule has one place");
                    slot_value(&rules[*r], slot)
                }
                Place::Object(inner) => inner.build(rules, slots),
            };
            map.insert(entry.name.to_string(), value);
        }
        Value::Object(map)
    }
}

impl Entry {
    fn new(name: &str, place: Place) -> Entry {
        let mut key = serde_json::to_string(name).expect("a name serializes");
        key.push(':');
        Entry {
            name: name.into(),
            key: key.into(),
            place,
        }
    }
}

impl Place {
    fn of(value: &Value) -> Place {
        match value {
            Value::Object(_) => Place::Object(Layout::of(value)),
            other => Place::Empty(
                other.clone(),
                serde_json::to_string(other)
                    .expect("a value serializes")
                    .into(),
            ),
        }
    }
}

fn write_slot(rule: &Rule, slot: &Slot, out: &mut Vec<u8>) {
    match slot {
        Slot::Value(v) => serde_json::to_writer(&mut *out, v).expect("a value serializes"),
        Slot::One(fields) => {
            let nested = rule.nested.as_ref().expect("nested rules fill an object");
            out.push(b'{');
            nested.layout.write_members(&nested.rules, fields, out);
            out.push(b'}');
        }
        Slot::Many(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_slot(rule, item, out);
            }
            out.push(b']');
        }
    }
}

fn slot_value(rule: &Rule, slot: Slot) -> Value {
    match slot {
        Slot::Value(v) => v,
        Slot::One(fields) => {
            let nested = rule.nested.as_ref().expect("nested rules fill an object");
            nested.layout.value(&nested.rules, fields)
        }
        Slot::Many(items) => Value::Array(items.into_iter().map(|i| slot_value(rule, i)).collect()),
    }
}

/// Writes a whole record: its fields, then `errors` when there are any.
pub(super) fn write_record(
    layout: &Layout,
    rules: &[Arc<Rule>],
    fields: &Fields,
    errors: Option<&Value>,
    out: &mut Vec<u8>,
) {
    out.push(b'{');
    layout.write_members(rules, fields, out);
    if let Some(errors) = errors {
        if !layout.entries.is_empty() {
            out.push(b',');
        }
        out.extend_from_slice(b"\"errors\":");
        serde_json::to_writer(&mut *out, errors).expect("errors serialize");
    }
    out.push(b'}');
}

/// Text this module wrote as a [`Record`].
pub(super) fn record(text: Vec<u8>) -> Record {
    Record(
        String::from_utf8(text)
            .expect("JSON written from UTF-8 text")
            .into(),
    )
}
