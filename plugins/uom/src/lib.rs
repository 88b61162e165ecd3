//! Unit-of-measure codes between SAP, ISO and Maximo.
//!
//! Every system spells units its own way: SAP's commercial codes (`PC`, `KG`, `H`,
//! with internal aliases such as `ST` and `STD`), the UN/ECE Recommendation 20 common
//! codes that ISO-minded systems and EDI use (`H87`, `KGM`, `HUR`), and Maximo's
//! measure units (`EACH`, `KG`, `HOUR`). `convert` turns one into another, so that a
//! unified `unit_of_measure` means the same thing whatever system sits behind it.
//! `convert_back` is its inverse, from `to` back to `from`, which writes call: a
//! unified `H87` is written to SAP as `PC`.
//!
//! ```yaml
//! - target: lines.unit_of_measure
//!   path: $.PurchaseOrderQuantityUnit
//!   transforms: [{plugin: uom, function: convert, args: {from: sap, to: iso}}]
//! ```

use crosswalk_plugin_sdk::{Error, Function, Plugin, Value, json};

/// One unit in each system's spelling: (SAP, ISO / UN/ECE Rec. 20, Maximo).
const UNITS: &[(&str, &str, &str)] = &[
    ("PC", "H87", "EACH"),
    ("EA", "EA", "EACH"),
    ("KG", "KGM", "KG"),
    ("G", "GRM", "G"),
    ("TO", "TNE", "TON"),
    ("LB", "LBR", "LBS"),
    ("M", "MTR", "M"),
    ("CM", "CMT", "CM"),
    ("MM", "MMT", "MM"),
    ("FT", "FOT", "FT"),
    ("IN", "INH", "IN"),
    ("M2", "MTK", "SQM"),
    ("M3", "MTQ", "CUM"),
    ("L", "LTR", "LITER"),
    ("ML", "MLT", "ML"),
    ("GAL", "GLL", "GAL"),
    ("H", "HUR", "HOUR"),
    ("MIN", "MIN", "MIN"),
    ("DAY", "DAY", "DAY"),
    ("KWH", "KWH", "KWH"),
    ("BOX", "BX", "BOX"),
    ("PAK", "PK", "PKG"),
    ("PAA", "PR", "PAIR"),
    ("SET", "SET", "SET"),
    ("ROL", "RO", "ROLL"),
    ("DR", "DR", "DRUM"),
];

/// SAP's internal (German-rooted) codes that APIs sometimes send instead of the
/// commercial ones.
const SAP_ALIASES: &[(&str, &str)] = &[
    ("ST", "PC"),
    ("STD", "H"),
    ("TAG", "DAY"),
    ("KAR", "BOX"),
    ("PAR", "PAA"),
];

/// A spelling of unit codes.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum System {
    /// SAP's commercial codes.
    Sap,
    /// UN/ECE Recommendation 20 common codes.
    Iso,
    /// Maximo's measure units.
    Maximo,
}

impl System {
    fn parse(args: &Value, key: &str) -> Result<System, Error> {
        match args.get(key).and_then(Value::as_str) {
            Some("sap") => Ok(System::Sap),
            Some("iso") => Ok(System::Iso),
            Some("maximo") => Ok(System::Maximo),
            Some(other) => Err(Error::InvalidArguments(format!(
                "`{key}` must be sap, iso or maximo, not `{other}`"
            ))),
            None => Err(Error::InvalidArguments(format!(
                "`{key}` is required: sap, iso or maximo"
            ))),
        }
    }

    fn name(self) -> &'static str {
        match self {
            System::Sap => "SAP",
            System::Iso => "ISO",
            System::Maximo => "Maximo",
        }
    }

    fn code(self, row: &(&'static str, &'static str, &'static str)) -> &'static str {
        match self {
            System::Sap => row.0,
            System::Iso => row.1,
            System::Maximo => row.2,
        }
    }
}

/// Converts `code` from one system's spelling to another's; `None` when unknown.
pub fn convert(code: &str, from: System, to: System) -> Option<&'static str> {
    let code = code.trim().to_uppercase();
    let code = match from {
        System::Sap => SAP_ALIASES
            .iter()
            .find(|(a, _)| *a == code)
            .map_or(code.as_str(), |(_, c)| c),
        _ => code.as_str(),
    };
    UNITS
        .iter()
        .find(|row| from.code(row) == code)
        .map(|row| to.code(row))
}

/// The plugin.
pub struct Uom;

impl Plugin for Uom {
    const NAME: &'static str = "uom";
    const VERSION: &'static str = "1.2.0";

    fn functions() -> Vec<Function> {
        let args = json!({
            "type": "object",
            "properties": {
                "from": {"enum": ["sap", "iso", "maximo"]},
                "to": {"enum": ["sap", "iso", "maximo"]},
                "unknown": {"enum": ["error", "keep", "null"], "description": "what to do with a code that is not in the table (default error)"}
            },
            "required": ["from", "to"],
            "additionalProperties": false
        });
        vec![
            Function::field(
                "convert",
                "Converts a unit-of-measure code between SAP, ISO (UN/ECE Rec. 20) and Maximo spellings.",
                args.clone(),
            )
            .inverse("convert_back"),
            Function::field(
                "convert_back",
                "Undoes `convert` under the same arguments: converts from `to` back to `from`.",
                args.clone(),
            )
            .inverse("convert"),
            Function::record(
                "convert_lines",
                "Converts the `unit_of_measure` of every line of a unified record, as `convert` does (a `post` step).",
                args.clone(),
            )
            .inverse("convert_lines_back"),
            Function::record(
                "convert_lines_back",
                "Undoes `convert_lines` under the same arguments, as `convert_back` does.",
                args,
            )
            .inverse("convert_lines"),
        ]
    }

    fn field(function: &str, value: Value, args: &Value) -> Result<Value, Error> {
        match function {
            "convert" => convert_value(value, args, Direction::Forward),
            "convert_back" => convert_value(value, args, Direction::Back),
            other => Err(Error::UnknownFunction(other.to_owned())),
        }
    }

    fn record(function: &str, mut record: Value, args: &Value) -> Result<Value, Error> {
        let direction = match function {
            "convert_lines" => Direction::Forward,
            "convert_lines_back" => Direction::Back,
            other => return Err(Error::UnknownFunction(other.to_owned())),
        };
        if let Some(Value::Array(lines)) = record.get_mut("lines") {
            for line in lines {
                if let Some(unit) = line.get_mut("unit_of_measure")
                    && !unit.is_null()
                {
                    *unit = convert_value(unit.take(), args, direction)?;
                }
            }
        }
        Ok(record)
    }
}

/// Which way a function converts under its `from` and `to`.
#[derive(Clone, Copy)]
enum Direction {
    /// From `from` to `to`: reads.
    Forward,
    /// From `to` back to `from`: writes.
    Back,
}

/// `convert` (or `convert_back`) on one value, under the function's arguments.
fn convert_value(value: Value, args: &Value, direction: Direction) -> Result<Value, Error> {
    let (from, to) = match direction {
        Direction::Forward => (System::parse(args, "from")?, System::parse(args, "to")?),
        Direction::Back => (System::parse(args, "to")?, System::parse(args, "from")?),
    };
    let Value::String(code) = &value else {
        return Err(Error::InvalidInput(format!(
            "a unit code is text, not {value}"
        )));
    };
    match (
        convert(code, from, to),
        args.get("unknown")
            .and_then(Value::as_str)
            .unwrap_or("error"),
    ) {
        (Some(c), _) => Ok(Value::String(c.to_owned())),
        (None, "keep") => Ok(value),
        (None, "null") => Ok(Value::Null),
        (None, _) => Err(Error::InvalidInput(format!(
            "`{code}` is not a known {} unit code",
            from.name()
        ))),
    }
}

crosswalk_plugin_sdk::export!(Uom);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_between_systems() {
        assert_eq!(convert("PC", System::Sap, System::Iso), Some("H87"));
        assert_eq!(convert("st", System::Sap, System::Maximo), Some("EACH"));
        assert_eq!(convert("HUR", System::Iso, System::Sap), Some("H"));
        assert_eq!(convert("HOUR", System::Maximo, System::Iso), Some("HUR"));
        assert_eq!(convert("XYZ", System::Sap, System::Iso), None);
    }

    #[test]
    fn every_code_is_unique_within_its_system_but_maximo_each() {
        for (i, a) in UNITS.iter().enumerate() {
            for b in &UNITS[i + 1..] {
                assert_ne!(a.0, b.0);
                assert_ne!(a.1, b.1);
            }
        }
    }

    #[test]
    fn record_function_converts_every_line() {
        let args = json!({"from": "sap", "to": "iso"});
        let record = json!({"id": "1", "lines": [{"unit_of_measure": "PC"}, {"unit_of_measure": null}, {"unit_of_measure": "KG"}]});
        assert_eq!(
            Uom::record("convert_lines", record, &args).unwrap(),
            json!({"id": "1", "lines": [{"unit_of_measure": "H87"}, {"unit_of_measure": null}, {"unit_of_measure": "KGM"}]})
        );
        assert!(matches!(
            Uom::record(
                "convert_lines",
                json!({"lines": [{"unit_of_measure": "XYZ"}]}),
                &args
            ),
            Err(Error::InvalidInput(_))
        ));
    }

    #[test]
    fn convert_back_undoes_convert_for_every_code_of_a_one_to_one_pair() {
        // SAP and ISO codes are one-to-one; Maximo's EACH stands for two of them, so
        // from Maximo a round trip is only the same for the first.
        let args = json!({"from": "sap", "to": "iso"});
        for row in UNITS {
            let iso = Uom::field("convert", json!(row.0), &args).unwrap();
            assert_eq!(iso, json!(row.1));
            assert_eq!(
                Uom::field("convert_back", iso, &args).unwrap(),
                json!(row.0)
            );
        }
        let record = json!({"lines": [{"unit_of_measure": "H87"}, {"unit_of_measure": null}]});
        assert_eq!(
            Uom::record("convert_lines_back", record, &args).unwrap(),
            json!({"lines": [{"unit_of_measure": "PC"}, {"unit_of_measure": null}]})
        );
    }

    #[test]
    fn every_function_names_an_inverse_that_exists() {
        let functions = Uom::functions();
        for f in &functions {
            let inverse = f.inverse.expect("every uom function has an inverse");
            let g = functions.iter().find(|g| g.name == inverse).unwrap();
            assert_eq!(g.kind, f.kind);
            assert_eq!(g.inverse, Some(f.name));
        }
    }

    #[test]
    fn field_function() {
        let args = json!({"from": "sap", "to": "iso"});
        assert_eq!(
            Uom::field("convert", json!("KG"), &args).unwrap(),
            json!("KGM")
        );
        assert!(matches!(
            Uom::field("convert", json!("??"), &args),
            Err(Error::InvalidInput(_))
        ));
        assert_eq!(
            Uom::field("convert_back", json!("KGM"), &args).unwrap(),
            json!("KG")
        );
        let keep = json!({"from": "sap", "to": "iso", "unknown": "keep"});
        assert_eq!(
            Uom::field("convert", json!("??"), &keep).unwrap(),
            json!("??")
        );
        assert!(matches!(
            Uom::field("convert", json!("KG"), &json!({"from": "sap"})),
            Err(Error::InvalidArguments(_))
        ));
    }
}
