//! Maximo classification attributes as custom fields.
//!
//! Maximo keeps the attributes of a classified asset, work order or item in a spec
//! table (`assetspec`, `workorderspec`, `itemspec`): one row per attribute, with the
//! value in `numvalue`, `alnvalue` or `tablevalue` and its unit in `measureunitid`.
//! Every site classifies differently, so no default mapping can name these fields.
//! `specs_to_custom_fields` runs after the rules (a `post` step) and turns every row
//! into a custom field of the unified record, reading the source record from
//! `remote_data`.
//!
//! Its inverse, `strip_spec_fields`, runs on a unified record that is written back:
//! attributes live in the classification, not on the record, so a write that sets one
//! is refused with its name, and one given as `null` (as a record read from the API
//! carries it) is left out.
//!
//! ```yaml
//! post:
//!   - {plugin: maximo-specs, function: specs_to_custom_fields, args: {prefix: "spec_"}}
//! ```

use crosswalk_plugin_sdk::{Error, Function, Plugin, Value, json};

const SPEC_TABLES: &[&str] = &["assetspec", "workorderspec", "itemspec", "locationspec"];

/// The plugin.
pub struct MaximoSpecs;

/// `VOLTAGE RATING` → `voltage_rating`.
fn field_name(attribute: &str) -> String {
    let mut name: String = attribute
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    while name.contains("__") {
        name = name.replace("__", "_");
    }
    name.trim_matches('_').to_owned()
}

/// The value of one spec row: the number, else the text, else the table value.
fn spec_value(row: &Value) -> Value {
    ["numvalue", "alnvalue", "tablevalue"]
        .iter()
        .filter_map(|k| row.get(*k))
        .find(|v| !v.is_null() && v.as_str() != Some(""))
        .cloned()
        .unwrap_or(Value::Null)
}

/// Adds the spec rows of `record.remote_data` to `record.custom_fields`.
pub fn specs_to_custom_fields(mut record: Value, args: &Value) -> Result<Value, Error> {
    let prefix = args.get("prefix").and_then(Value::as_str).unwrap_or("");
    let with_units = args.get("units").and_then(Value::as_bool).unwrap_or(false);
    let tables: Vec<String> = match args.get("tables") {
        Some(Value::Array(t)) => t
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => SPEC_TABLES.iter().map(|s| s.to_string()).collect(),
    };
    let Some(source) = record.get("remote_data").cloned() else {
        return Err(Error::InvalidInput(
            "the record has no `remote_data`: run this function as a `post` step".into(),
        ));
    };
    let Some(Value::Object(custom)) = record.get_mut("custom_fields") else {
        return Err(Error::InvalidInput(
            "the record has no `custom_fields` object".into(),
        ));
    };
    for table in &tables {
        let Some(Value::Array(rows)) = source.get(table) else {
            continue;
        };
        for row in rows {
            let Some(attribute) = row.get("assetattrid").and_then(Value::as_str) else {
                continue;
            };
            let key = format!("{prefix}{}", field_name(attribute));
            if key.is_empty() || custom.contains_key(&key) {
                continue;
            }
            let value = spec_value(row);
            let value = match (with_units, row.get("measureunitid")) {
                (true, Some(unit)) if !unit.is_null() => json!({"value": value, "unit": unit}),
                _ => value,
            };
            custom.insert(key, value);
        }
    }
    Ok(record)
}

/// The inverse of `specs_to_custom_fields` for writes: removes the custom fields with
/// the prefix that are `null`, and refuses a record that sets one. Without a prefix
/// the attributes cannot be told from other custom fields, and the record is left as
/// it is (a write refuses custom fields that no rule maps anyway).
pub fn strip_spec_fields(mut record: Value, args: &Value) -> Result<Value, Error> {
    let prefix = args.get("prefix").and_then(Value::as_str).unwrap_or("");
    if prefix.is_empty() {
        return Ok(record);
    }
    let Some(Value::Object(custom)) = record.get_mut("custom_fields") else {
        return Ok(record);
    };
    let set: Vec<&String> = custom
        .iter()
        .filter(|(k, v)| k.starts_with(prefix) && !v.is_null())
        .map(|(k, _)| k)
        .collect();
    if !set.is_empty() {
        let names: Vec<String> = set.iter().map(|k| format!("custom_fields.{k}")).collect();
        return Err(Error::InvalidInput(format!(
            "{} {} classification {}, which Maximo keeps in the record's classification, not on the record: change {} there",
            names.join(", "),
            if set.len() == 1 { "is a" } else { "are" },
            if set.len() == 1 {
                "attribute"
            } else {
                "attributes"
            },
            if set.len() == 1 { "it" } else { "them" },
        )));
    }
    custom.retain(|k, _| !k.starts_with(prefix));
    Ok(record)
}

impl Plugin for MaximoSpecs {
    const NAME: &'static str = "maximo-specs";
    const VERSION: &'static str = "1.1.0";

    fn functions() -> Vec<Function> {
        let args = json!({
            "type": "object",
            "properties": {
                "prefix": {"type": "string", "description": "put before every field name"},
                "units": {"type": "boolean", "description": "give {value, unit} instead of the value alone"},
                "tables": {"type": "array", "items": {"type": "string"}, "description": "the spec tables to read"}
            },
            "additionalProperties": false
        });
        vec![
            Function::record(
                "specs_to_custom_fields",
                "Adds every classification attribute of the source record (assetspec, workorderspec, itemspec, locationspec) to custom_fields. Run as a post step.",
                args.clone(),
            )
            .inverse("strip_spec_fields"),
            Function::record(
                "strip_spec_fields",
                "Undoes specs_to_custom_fields for writes: leaves out the attributes given as null, and refuses a record that sets one.",
                args,
            ),
        ]
    }

    fn record(function: &str, record: Value, args: &Value) -> Result<Value, Error> {
        match function {
            "specs_to_custom_fields" => specs_to_custom_fields(record, args),
            "strip_spec_fields" => strip_spec_fields(record, args),
            other => Err(Error::UnknownFunction(other.to_owned())),
        }
    }
}

crosswalk_plugin_sdk::export!(MaximoSpecs);

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Value {
        json!({
            "id": "11430",
            "custom_fields": {"cost_center": "CC-1"},
            "remote_data": {
                "assetnum": "11430",
                "assetspec": [
                    {"assetattrid": "VOLTAGE", "numvalue": 480, "alnvalue": null, "measureunitid": "V"},
                    {"assetattrid": "MOTOR TYPE", "numvalue": null, "alnvalue": "TEFC"},
                    {"assetattrid": "COST-CENTER", "alnvalue": "ignored: the rule's value wins"},
                    {"assetattrid": "EMPTY", "alnvalue": ""}
                ]
            }
        })
    }

    #[test]
    fn rows_become_custom_fields() {
        let out = specs_to_custom_fields(record(), &json!({})).unwrap();
        assert_eq!(
            out["custom_fields"],
            json!({"cost_center": "CC-1", "voltage": 480, "motor_type": "TEFC", "empty": null})
        );
    }

    #[test]
    fn prefix_and_units() {
        let out =
            specs_to_custom_fields(record(), &json!({"prefix": "spec_", "units": true})).unwrap();
        assert_eq!(
            out["custom_fields"]["spec_voltage"],
            json!({"value": 480, "unit": "V"})
        );
        assert_eq!(out["custom_fields"]["spec_motor_type"], json!("TEFC"));
    }

    #[test]
    fn writes_leave_out_null_attributes_and_refuse_set_ones() {
        let args = json!({"prefix": "spec_", "units": true});
        let read = specs_to_custom_fields(record(), &args).unwrap();
        let mut written = read.clone();
        for (k, v) in written["custom_fields"].as_object_mut().unwrap() {
            if k.starts_with("spec_") {
                *v = Value::Null;
            }
        }
        assert_eq!(
            strip_spec_fields(written, &args).unwrap()["custom_fields"],
            json!({"cost_center": "CC-1"})
        );
        let Err(Error::InvalidInput(m)) = strip_spec_fields(read, &args) else {
            panic!("set attributes are refused");
        };
        for name in ["spec_voltage", "spec_motor_type", "spec_cost_center"] {
            assert!(m.contains(&format!("custom_fields.{name}")), "{m}");
        }
        assert!(!m.contains("spec_empty"), "{m}");
        assert!(m.contains("are classification attributes"), "{m}");
        // Without a prefix nothing tells attributes apart: the record is kept.
        let plain = json!({"custom_fields": {"voltage": 480}});
        assert_eq!(strip_spec_fields(plain.clone(), &json!({})).unwrap(), plain);
    }

    #[test]
    fn needs_remote_data() {
        let err = specs_to_custom_fields(json!({"custom_fields": {}}), &json!({})).unwrap_err();
        assert!(matches!(err, Error::InvalidInput(m) if m.contains("post")));
    }
}
