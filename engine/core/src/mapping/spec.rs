//! The mapping language as written: serde types for mapping and override documents.
//!
//! These types are exactly what a user writes in YAML or JSON, nothing more: unknown
//! keys are errors (with the line and column of the key), and the checked-in JSON
//! Schema `engine/schema/mapping.schema.json` is generated from them. What the rules
//! *mean* is checked later, when they are resolved and compiled.

use std::borrow::Cow;
use std::path::Path as FsPath;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::error::SpecError;
use crate::model::Entity;

/// A system's default mapping for one entity: an ordered list of rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingSpec {
    /// The source system, e.g. `sap-s4hana`.
    pub system: String,
    /// The unified entity the rules fill.
    pub entity: Entity,
    /// Free text about the mapping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Record-level plugin functions run on each source record before the rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre: Vec<PluginStep>,
    /// The rules, in order; each fills one target.
    pub rules: Vec<RuleSpec>,
    /// Record-level plugin functions run on each unified record after the rules; they
    /// see the source record as `remote_data`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post: Vec<PluginStep>,
}

/// A call of a plugin function: a transform step (field-level) or a `pre`/`post` step
/// (record-level).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginStep {
    /// The plugin's name, as it describes itself.
    #[schemars(length(min = 1))]
    pub plugin: String,
    /// The function.
    #[schemars(length(min = 1))]
    pub function: String,
    /// The static arguments, checked against the function's schema when the mapping is
    /// compiled.
    #[serde(default = "empty_object", skip_serializing_if = "is_empty_object")]
    pub args: Value,
}

/// One rule: fills one target of the unified model from the source record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// The field to fill: `number`, `vendor.id`, `custom_fields.cost_center`; inside
    /// nested rules, relative to the element.
    pub target: String,
    /// Source: an RFC 9535 JSONPath query; `$` is the record (or the element).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Source: a constant value.
    #[serde(
        rename = "const",
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub constant: Option<Value>,
    /// Source: queries tried in order; the first value that is neither null nor "" wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coalesce: Option<Vec<String>>,
    /// Transforms applied in order to the source value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transforms: Vec<TransformStep>,
    /// Whether a record without this value fails to map.
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
    /// The value used when the result is null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// Nested rules for an object or array-of-objects target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<RuleSpec>>,
    /// How a write sets the source from the target, for a rule that cannot be
    /// inverted (or to write it elsewhere than where it is read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write: Option<WriteSpec>,
    /// Free text, shown by `crosswalk mapping show`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// An explicit write rule: the unified value goes through `transforms` (built-in
/// ones; their paths read the unified record) and is written at `path`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteSpec {
    /// Where the value goes in the source record: a plain member path (`$.A.B`).
    pub path: String,
    /// Built-in transforms applied in order to the unified value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transforms: Vec<TransformStep>,
}

/// A connection's changes to a system's default mapping for one entity.
// Read from a map only (see the `Deserialize` impl below): every field may be left
// out, so the positional (array) form that serde's derive also reads would take
// `[null]` for an empty document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct OverrideSpec {
    /// The source system the overrides apply to; checked when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The entity the overrides apply to; checked when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<Entity>,
    /// Free text about the overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Replaces the default's `pre` steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre: Option<Vec<PluginStep>>,
    /// The changes, applied in order; none when the document only replaces `pre` or
    /// `post` steps.
    #[serde(default)]
    pub overrides: Vec<OverrideRule>,
    /// Replaces the default's `post` steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post: Option<Vec<PluginStep>>,
}

impl Serialize for OverrideSpec {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        OverrideSpec::serialize(self, serializer)
    }
}

impl<'de> Deserialize<'de> for OverrideSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Document;
        impl<'de> serde::de::Visitor<'de> for Document {
            type Value = OverrideSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an override document (a map of `overrides`, `pre`, `post`, …)")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<OverrideSpec, A::Error> {
                OverrideSpec::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        deserializer.deserialize_map(Document)
    }
}

/// One change: names a target and the keys it changes; other keys stay as they were.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OverrideRule {
    /// The field to change or add; nested targets are dotted (`lines.unit_price`).
    pub target: String,
    /// `true` stops mapping the target (it maps to null); stands alone.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable: bool,
    /// A new source query; replaces the default's source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A new constant source; replaces the default's source.
    #[serde(
        rename = "const",
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub constant: Option<Value>,
    /// A new list of queries to coalesce; replaces the default's source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coalesce: Option<Vec<String>>,
    /// A new transform chain; replaces the default's (`[]` clears it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transforms: Option<Vec<TransformStep>>,
    /// Replaces the default's `required`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
    /// Replaces the default's `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// Replaces the default's nested rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<RuleSpec>>,
    /// Replaces the default's write rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write: Option<WriteSpec>,
    /// Free text, shown by `crosswalk mapping show`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// One step of a transform chain: a bare name (`date`), a one-key map from the name to
/// its arguments (`{round: 2}`), or a plugin call (`{plugin: uom, function: convert,
/// args: {...}}`). Its meaning is checked when the rule is compiled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TransformStep(pub Value);

impl TransformStep {
    /// A step with no arguments.
    pub fn named(name: &str) -> Self {
        TransformStep(Value::String(name.to_owned()))
    }
}

impl JsonSchema for TransformStep {
    fn schema_name() -> Cow<'static, str> {
        "TransformStep".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let names: Vec<&str> = super::transform::CATALOG.iter().map(|t| t.name).collect();
        json_schema!({
            "description": "A transform: its name, a one-key map from its name to its arguments, or a plugin call.",
            "oneOf": [
                { "type": "string", "enum": names },
                {
                    "type": "object",
                    "minProperties": 1,
                    "maxProperties": 1,
                    "propertyNames": { "enum": names }
                },
                {
                    "type": "object",
                    "required": ["plugin", "function"],
                    "additionalProperties": false,
                    "properties": {
                        "plugin": { "type": "string", "minLength": 1, "description": "The plugin's name." },
                        "function": { "type": "string", "minLength": 1, "description": "A field-level function of the plugin." },
                        "args": { "type": "object", "description": "Static arguments, checked against the function's schema." }
                    }
                }
            ]
        })
    }
}

/// Either kind of document that `crosswalk mapping check` accepts.
#[derive(Debug, Clone, PartialEq)]
pub enum Document {
    /// A full mapping (`rules`).
    Mapping(MappingSpec),
    /// A connection's overrides (`overrides`).
    Overrides(OverrideSpec),
}

/// The text format of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON.
    Json,
    /// YAML (a superset of JSON, so JSON text parses as YAML too).
    Yaml,
}

impl Format {
    /// The format of a file, by its extension; YAML when it has none that says JSON.
    pub fn of_file(path: &FsPath) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => Format::Json,
            _ => Format::Yaml,
        }
    }
}

impl MappingSpec {
    /// Parses a mapping document.
    pub fn parse(text: &str, format: Format) -> Result<Self, SpecError> {
        parse(text, format)
    }
}

impl OverrideSpec {
    /// Parses an override document.
    pub fn parse(text: &str, format: Format) -> Result<Self, SpecError> {
        parse(text, format)
    }
}

impl Document {
    /// Parses a document, telling the kind by its top-level keys: `rules` is a mapping;
    /// `overrides`, or `pre` or `post` without `rules` (a document that only replaces
    /// record steps), is a connection's overrides.
    pub fn parse(text: &str, format: Format) -> Result<Self, SpecError> {
        let probe: Value = parse(text, format)?;
        match (probe.get("rules"), probe.get("overrides")) {
            (Some(_), None) => parse(text, format).map(Document::Mapping),
            (None, Some(_)) => parse(text, format).map(Document::Overrides),
            (None, None) if probe.get("pre").is_some() || probe.get("post").is_some() => {
                parse(text, format).map(Document::Overrides)
            }
            (Some(_), Some(_)) => Err(SpecError::Syntax {
                line: 1,
                column: 1,
                message: "a document has either `rules` (a mapping) or `overrides`, not both"
                    .into(),
            }),
            (None, None) => Err(SpecError::Syntax {
                line: 1,
                column: 1,
                message: "not a mapping document: expected a top-level `rules` (a mapping), or `overrides`, `pre` or `post` (a connection's overrides)".into(),
            }),
        }
    }
}

/// The JSON Schema of mapping and override documents.
pub fn json_schema() -> Value {
    let mut generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let mapping = generator.subschema_for::<MappingSpec>();
    let overrides = generator.subschema_for::<OverrideSpec>();
    let mut schema = serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:crosswalk:mapping:v1",
        "title": "Crosswalk mapping or override document",
        "oneOf": [mapping, overrides],
    });
    let defs = generator.definitions().clone();
    schema["$defs"] = Value::Object(defs);
    schema
}

fn parse<T: for<'de> Deserialize<'de>>(text: &str, format: Format) -> Result<T, SpecError> {
    match format {
        Format::Json => serde_json::from_str(text).map_err(|e| SpecError::Syntax {
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        }),
        Format::Yaml => serde_yaml_ng::from_str(text).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            SpecError::Syntax {
                line,
                column,
                message: strip_position(&e.to_string()),
            }
        }),
    }
}

/// serde's messages end with " at line L column C"; the position is reported apart.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// Deserializes a present key as `Some`, even when its value is `null`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

fn is_empty_object(v: &Value) -> bool {
    v.as_object().is_some_and(|o| o.is_empty())
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_override_of_only_record_steps_needs_no_overrides_list() {
        let spec = OverrideSpec::parse(
            "post:\n  - {plugin: uom, function: lines_to_iso}\n",
            Format::Yaml,
        )
        .unwrap();
        assert!(spec.overrides.is_empty());
        assert_eq!(spec.post.as_ref().map(Vec::len), Some(1));
        let spec = OverrideSpec::parse(r#"{"pre": []}"#, Format::Json).unwrap();
        assert_eq!(spec.pre, Some(Vec::new()));
        // Only a map is a document: not the positional form of its fields.
        for text in ["[null, null]", "[]", "\"overrides\"", "null"] {
            let e = serde_json::from_str::<OverrideSpec>(text).unwrap_err();
            assert!(
                e.to_string().contains("expected an override document"),
                "{text}: {e}"
            );
        }
        let back: OverrideSpec =
            serde_json::from_value(serde_json::to_value(&spec).unwrap()).unwrap();
        assert_eq!(back, spec);
    }

    /// `crosswalk mapping check` tells the kind of a document by its keys: one that
    /// only replaces record steps is an override document, with no `overrides: []`.
    #[test]
    fn a_document_of_only_record_steps_is_an_override_document() {
        for text in [
            "system: sap-s4hana\nentity: purchase_order\npost:\n  - {plugin: uom, function: lines_to_iso}\n",
            "pre: []\n",
        ] {
            match Document::parse(text, Format::Yaml) {
                Ok(Document::Overrides(spec)) => assert!(spec.overrides.is_empty(), "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        let e = Document::parse("system: sap-s4hana\n", Format::Yaml).unwrap_err();
        assert!(
            e.to_string().contains("`overrides`, `pre` or `post`"),
            "{e}"
        );
    }
}
