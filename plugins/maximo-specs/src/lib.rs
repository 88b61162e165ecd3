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

impl Plugin for MaximoSpecs {
    const NAME: &'static str = "maximo-specs";
    const VERSION: &'static str = "1.0.0";

    fn functions() -> Vec<Function> {
        vec![Function::record(
            "specs_to_custom_fields",
            "Adds every classification attribute of the source record (assetspec, workorderspec, itemspec, locationspec) to custom_fields. Run as a post step.",
            json!({
                "type": "object",
                "properties": {
                    "prefix": {"type": "string", "description": "put before every field name"},
                    "units": {"type": "boolean", "description": "give {value, unit} instead of the value alone"},
                    "tables": {"type": "array", "items": {"type": "string"}, "description": "the spec tables to read"}
                },
                "additionalProperties": false
            }),
        )]
    }

    fn record(function: &str, record: Value, args: &Value) -> Result<Value, Error> {
        match function {
            "specs_to_custom_fields" => specs_to_custom_fields(record, args),
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
    fn needs_remote_data() {
        let err = specs_to_custom_fields(json!({"custom_fields": {}}), &json!({})).unwrap_err();
        assert!(matches!(err, Error::InvalidInput(m) if m.contains("post")));
    }
}
