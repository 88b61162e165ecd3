//! The unified model v1: five entities, their fields and types.
//!
//! The JSON Schemas under `engine/model/v1/` are the single source of truth: they ship
//! inside the binary (`crosswalk model show <entity>` prints them), tests validate mapped
//! output against them, and the [`FieldType`] tree that the mapping compiler checks
//! targets and values against is read from them, so the model cannot drift from its
//! schema.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The version of the unified model that this engine produces.
pub const MODEL_VERSION: &str = "v1";

/// A type of record in the unified model.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    /// An order for goods or services sent to a vendor.
    PurchaseOrder,
    /// Maintenance work planned or done on an asset or location.
    WorkOrder,
    /// A piece of equipment that is maintained.
    Asset,
    /// A supplier that orders are placed with.
    Vendor,
    /// An item or material that is bought, stocked and used.
    Part,
}

impl Entity {
    /// Every entity, in the model's order.
    pub const ALL: [Entity; 5] = [
        Entity::PurchaseOrder,
        Entity::WorkOrder,
        Entity::Asset,
        Entity::Vendor,
        Entity::Part,
    ];

    /// The entity's name as it appears in specs and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Entity::PurchaseOrder => "purchase_order",
            Entity::WorkOrder => "work_order",
            Entity::Asset => "asset",
            Entity::Vendor => "vendor",
            Entity::Part => "part",
        }
    }

    /// The entity's JSON Schema (draft 2020-12), as shipped.
    pub fn schema_text(self) -> &'static str {
        match self {
            Entity::PurchaseOrder => include_str!("../model/v1/purchase_order.schema.json"),
            Entity::WorkOrder => include_str!("../model/v1/work_order.schema.json"),
            Entity::Asset => include_str!("../model/v1/asset.schema.json"),
            Entity::Vendor => include_str!("../model/v1/vendor.schema.json"),
            Entity::Part => include_str!("../model/v1/part.schema.json"),
        }
    }

    /// The entity's JSON Schema, parsed.
    pub fn schema(self) -> &'static Value {
        &self.model().schema
    }

    /// The schema of the body of a write (a create, an update, a preview): the
    /// entity's schema with no field required, nested ones included (a create gives
    /// what it sets, an update the fields it changes), and without what mapping adds
    /// to a record (`errors`, `remote_data`), which is not written back.
    pub fn write_schema(self) -> &'static Value {
        &self.model().write_schema
    }

    /// The type of a whole record of this entity.
    pub fn record_type(self) -> &'static FieldType {
        &self.model().record
    }

    /// A record with every field at its empty value: `null` for scalars, objects with
    /// all their keys, `[]` for arrays and `{}` for `custom_fields`.
    pub fn skeleton(self) -> &'static Value {
        &self.model().skeleton
    }

    fn model(self) -> &'static EntityModel {
        static MODELS: OnceLock<Vec<EntityModel>> = OnceLock::new();
        let models =
            MODELS.get_or_init(|| Entity::ALL.iter().map(|e| EntityModel::load(*e)).collect());
        &models[self as usize]
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of the model's entities.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown entity `{0}`; the entities are purchase_order, work_order, asset, vendor, part")]
pub struct UnknownEntity(pub String);

impl FromStr for Entity {
    type Err = UnknownEntity;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // The singular as the model writes it (`purchase_order`), with hyphens
        // (`purchase-order`), and the plural of either, as the record paths write it
        // (`purchase-orders`).
        // Byte by byte, `-` standing for `_`: this runs on every request that names
        // an entity, so it allocates nothing.
        let same = |given: &str, name: &str| {
            given.len() == name.len()
                && given
                    .bytes()
                    .zip(name.bytes())
                    .all(|(g, n)| g == n || (g == b'-' && n == b'_'))
        };
        let singular = s.strip_suffix('s').unwrap_or(s);
        Entity::ALL
            .into_iter()
            .find(|e| same(s, e.as_str()) || same(singular, e.as_str()))
            .ok_or_else(|| UnknownEntity(s.to_owned()))
    }
}

/// The type of one field of the unified model, as the mapping compiler sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldType {
    /// Text.
    String,
    /// An ISO 4217 currency code: three capital letters.
    Currency,
    /// Any JSON number.
    Number,
    /// A JSON number without a fraction.
    Integer,
    /// A `YYYY-MM-DD` date.
    Date,
    /// An RFC 3339 date-time in UTC, with `Z`.
    DateTime,
    /// One of a fixed set of strings, `unknown` among them.
    Enum(Vec<String>),
    /// An object with a fixed set of fields, in order.
    Object(Vec<(String, FieldType)>),
    /// An array of values of one type.
    Array(Box<FieldType>),
    /// `custom_fields`: an object with any keys and values.
    Custom,
}

impl FieldType {
    /// The field named `name` of an object type.
    pub fn field(&self, name: &str) -> Option<&FieldType> {
        match self {
            FieldType::Object(fields) => fields.iter().find(|(n, _)| n == name).map(|(_, t)| t),
            _ => None,
        }
    }

    /// The names of the fields of an object type (empty for other types).
    pub fn field_names(&self) -> Vec<&str> {
        match self {
            FieldType::Object(fields) => fields.iter().map(|(n, _)| n.as_str()).collect(),
            _ => Vec::new(),
        }
    }

    /// A short name of the type for messages: `number`, `date (YYYY-MM-DD)`, …
    pub fn describe(&self) -> String {
        match self {
            FieldType::String => "string".into(),
            FieldType::Currency => "currency code (ISO 4217)".into(),
            FieldType::Number => "number".into(),
            FieldType::Integer => "integer".into(),
            FieldType::Date => "date (YYYY-MM-DD)".into(),
            FieldType::DateTime => "date-time (RFC 3339, UTC)".into(),
            FieldType::Enum(values) => format!("one of {}", values.join(", ")),
            FieldType::Object(_) => "object".into(),
            FieldType::Array(_) => "array".into(),
            FieldType::Custom => "object of custom fields".into(),
        }
    }

    /// The empty value of this type in a skeleton record.
    pub(crate) fn empty(&self) -> Value {
        match self {
            FieldType::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(name, t)| (name.clone(), t.empty()))
                    .collect(),
            ),
            FieldType::Array(_) => Value::Array(Vec::new()),
            FieldType::Custom => Value::Object(Map::new()),
            _ => Value::Null,
        }
    }

    /// Records a field type from a JSON Schema node of the shipped model.
    fn from_schema(node: &Value) -> FieldType {
        let types: Vec<&str> = match &node["type"] {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if let Some(values) = node["enum"].as_array() {
            return FieldType::Enum(
                values
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
            );
        }
        if types.contains(&"object") {
            return match node["properties"].as_object() {
                Some(props) => FieldType::Object(
                    props
                        .iter()
                        .filter(|(key, _)| !matches!(key.as_str(), "remote_data" | "errors"))
                        .map(|(key, sub)| (key.clone(), FieldType::from_schema(sub)))
                        .collect(),
                ),
                None => FieldType::Custom,
            };
        }
        if types.contains(&"array") {
            return FieldType::Array(Box::new(FieldType::from_schema(&node["items"])));
        }
        if types.contains(&"integer") {
            return FieldType::Integer;
        }
        if types.contains(&"number") {
            return FieldType::Number;
        }
        match (node["format"].as_str(), node["pattern"].as_str()) {
            (Some("date"), _) => FieldType::Date,
            (Some("date-time"), _) => FieldType::DateTime,
            (_, Some("^[A-Z]{3}$")) => FieldType::Currency,
            _ => FieldType::String,
        }
    }
}

struct EntityModel {
    schema: Value,
    write_schema: Value,
    record: FieldType,
    skeleton: Value,
}

impl EntityModel {
    fn load(entity: Entity) -> Self {
        let schema: Value = serde_json::from_str(entity.schema_text())
            .unwrap_or_else(|e| panic!("the shipped schema of {entity} is not JSON: {e}"));
        let record = FieldType::from_schema(&schema);
        let skeleton = record.empty();
        let mut write_schema = schema.clone();
        not_required(&mut write_schema);
        if let Value::Object(m) = &mut write_schema {
            m.remove("$schema");
            m.remove("$id");
            if let Some(Value::Object(properties)) = m.get_mut("properties") {
                properties.remove("errors");
                properties.remove("remote_data");
            }
        }
        EntityModel {
            schema,
            write_schema,
            record,
            skeleton,
        }
    }
}

/// Removes every `required` of a schema, nested ones included: a write gives the
/// fields it sets, of the record and of its objects (an address, a line).
fn not_required(schema: &mut Value) {
    match schema {
        Value::Object(m) => {
            // The keyword's value is an array; a property named `required` is not.
            if m.get("required").is_some_and(Value::is_array) {
                m.remove("required");
            }
            m.values_mut().for_each(not_required);
        }
        Value::Array(items) => items.iter_mut().for_each(not_required),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entity_has_the_common_fields() {
        for entity in Entity::ALL {
            let names = entity.record_type().field_names();
            for common in ["id", "custom_fields", "created_at", "updated_at"] {
                assert!(names.contains(&common), "{entity} lacks {common}");
            }
            assert_eq!(entity.schema()["title"], entity.as_str());
        }
    }

    #[test]
    fn types_are_read_from_the_schema() {
        let po = Entity::PurchaseOrder.record_type();
        assert_eq!(po.field("order_date"), Some(&FieldType::Date));
        assert_eq!(po.field("currency"), Some(&FieldType::Currency));
        assert_eq!(po.field("created_at"), Some(&FieldType::DateTime));
        assert_eq!(po.field("custom_fields"), Some(&FieldType::Custom));
        let Some(FieldType::Array(line)) = po.field("lines") else {
            panic!("lines")
        };
        assert_eq!(line.field("line_number"), Some(&FieldType::Integer));
        let Some(FieldType::Enum(statuses)) = po.field("status") else {
            panic!("status")
        };
        assert!(statuses.contains(&"unknown".to_owned()));
        assert!(!statuses.iter().any(|s| s == "null"));
    }

    #[test]
    fn skeleton_has_every_field_empty() {
        let s = Entity::Vendor.skeleton();
        assert_eq!(s["custom_fields"], serde_json::json!({}));
        assert_eq!(s["address"]["city"], Value::Null);
        assert_eq!(
            Entity::PurchaseOrder.skeleton()["lines"],
            serde_json::json!([])
        );
    }

    #[test]
    fn entity_names_parse() {
        assert_eq!("work_order".parse::<Entity>(), Ok(Entity::WorkOrder));
        assert_eq!("work-order".parse::<Entity>(), Ok(Entity::WorkOrder));
        assert!(
            "invoice"
                .parse::<Entity>()
                .unwrap_err()
                .to_string()
                .contains("invoice")
        );
    }
}
