//! The inverse of each transform a read rule applies, and of the paths it reads: what
//! turns a unified value back into the value the source system holds.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use super::super::compile::Slots;
use super::super::error::quote;
use super::super::spec::{PluginStep, TransformStep};
use super::super::transform::{Piece, PluginCall, ResolvePlugin, Transform};
use crate::plugin::{FunctionKind, Plugin, PluginError, Session};

/// How a source system's API writes dates and numbers: each system declares its own
/// (in `crosswalk-systems`), and the inverses of `number`, `date` and `datetime` write
/// in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueStyle {
    /// OData V2 as SAP writes it: `/Date(ms+0000)/`, decimals as text.
    ODataV2,
    /// Maximo's JSON API: ISO 8601 with an offset, dates at midnight.
    MaximoJson,
    /// OData V4 as Dynamics 365 writes it: ISO 8601 in UTC, dates at noon.
    ODataV4,
}

/// The inverse of one transform.
#[derive(Debug, Clone)]
pub(super) enum Inverse {
    Identity,
    /// A number back to the source's numbers (text for SAP).
    Number(ValueStyle),
    /// A `YYYY-MM-DD` date back to the system's format, or to a chrono pattern.
    Date(ValueStyle, Option<String>),
    /// An RFC 3339 date-time back to the system's format, or to a chrono pattern.
    DateTime(ValueStyle, Option<String>),
    /// A lookup read backwards: unified value (as JSON text) → source code.
    Lookup(HashMap<String, Value>),
    /// Multiplies by a factor (the inverse of a divide, or of a multiply by 1/x).
    Scale(f64),
    /// The inverse a plugin function declares, called with the step's arguments.
    Plugin(PluginCall),
    /// A template split back into its placeholders.
    Template(Unfill),
}

/// A template read backwards.
#[derive(Debug, Clone)]
pub(super) struct Unfill {
    /// The template as written, for messages.
    text: String,
    /// Its pieces; no two placeholders are next to each other. Without a `{value}`,
    /// the chain of inverses ends with it.
    pub(super) pieces: Vec<Unpiece>,
}

#[derive(Debug, Clone)]
pub(super) enum Unpiece {
    Text(String),
    Value,
    /// A source field of the current record, by its keys.
    Path(Vec<String>),
}

/// A source field that an inverse sets besides its rule's own path: a template's
/// `{$.path}` placeholder.
pub(super) type Capture = (Vec<String>, Value);

impl Unfill {
    /// The value of `{value}` (`None` when the template has none), and the captures.
    /// A `null` writes nothing: it cannot say which of the fields it was built from
    /// are empty (a create whose number the source assigns gives no `id`).
    fn split(&self, value: Value, captures: &mut Vec<Capture>) -> Result<Option<Value>, String> {
        if value.is_null() {
            return Ok(None);
        }
        let text = scalar(&value)
            .ok_or_else(|| format!("{} is not text, so it cannot be split back", quote(&value)))?;
        let mismatch = || {
            format!(
                "`{text}` does not have the form of the template `{}`",
                self.text
            )
        };
        let mut rest = text.as_str();
        let mut own: Option<Value> = None;
        for (i, piece) in self.pieces.iter().enumerate() {
            let keys = match piece {
                Unpiece::Text(t) => {
                    rest = rest.strip_prefix(t.as_str()).ok_or_else(mismatch)?;
                    continue;
                }
                Unpiece::Value => None,
                Unpiece::Path(keys) => Some(keys),
            };
            let end = match self.pieces.get(i + 1) {
                // The template's last literal ends the text: `x (y)` in `{$.a} ({value})`.
                Some(Unpiece::Text(t)) if i + 2 == self.pieces.len() => rest
                    .strip_suffix(t.as_str())
                    .map(str::len)
                    .ok_or_else(mismatch)?,
                Some(Unpiece::Text(t)) => rest.find(t.as_str()).ok_or_else(mismatch)?,
                _ => rest.len(),
            };
            // A null placeholder renders as nothing: nothing reads back as null.
            let captured = match &rest[..end] {
                "" => Value::Null,
                c => Value::String(c.to_owned()),
            };
            rest = &rest[end..];
            match keys {
                Some(keys) => captures.push((keys.clone(), captured)),
                None => match &own {
                    Some(first) if *first != captured => {
                        return Err(format!(
                            "`{text}` gives `{{value}}` twice, as {} and {}",
                            quote(first),
                            quote(&captured)
                        ));
                    }
                    _ => own = Some(captured),
                },
            }
        }
        if !rest.is_empty() {
            return Err(mismatch());
        }
        Ok(own)
    }
}

/// The text of a scalar, as a template renders it.
pub(super) fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(value.to_string()),
        _ => None,
    }
}

impl Inverse {
    /// The source value, or `None` when nothing more is written at the rule's own path
    /// (a template without `{value}`); a template adds its other fields to `captures`.
    pub(super) fn apply(
        &self,
        value: Value,
        session: &mut Session,
        captures: &mut Vec<Capture>,
    ) -> Result<Option<Value>, String> {
        if let Inverse::Template(unfill) = self {
            return unfill.split(value, captures);
        }
        self.apply_one(value, session).map(Some)
    }

    fn apply_one(&self, value: Value, session: &mut Session) -> Result<Value, String> {
        if value.is_null() {
            return Ok(value);
        }
        match self {
            Inverse::Template(_) => unreachable!("templates are split in `apply`"),
            Inverse::Plugin(call) => {
                let native = session
                    .instance(call.slot)
                    .call_field(&call.function, &value, &call.args)
                    .map_err(|e| e.to_string())?;
                if native.is_null() {
                    // Writing it would clear the source field (an `on_invalid: null` of
                    // the read, say): a value the inverse cannot take is refused.
                    return Err(format!(
                        "plugin `{}` function `{}` gives null for {}, which would clear the source field",
                        call.plugin,
                        call.function,
                        quote(&value)
                    ));
                }
                Ok(native)
            }
            Inverse::Identity => Ok(value),
            Inverse::Number(style) => match (&value, style) {
                (Value::Number(n), ValueStyle::ODataV2) => Ok(Value::String(n.to_string())),
                (Value::Number(_), _) => Ok(value),
                _ => Err(format!("{} is not a number", quote(&value))),
            },
            Inverse::Date(style, pattern) => {
                let text = value
                    .as_str()
                    .ok_or_else(|| format!("{} is not a date (YYYY-MM-DD)", quote(&value)))?;
                let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .map_err(|_| format!("`{text}` is not a date (YYYY-MM-DD)"))?;
                Ok(Value::String(match (pattern, style) {
                    (Some(p), _) => date.format(p).to_string(),
                    (None, ValueStyle::ODataV2) => {
                        let ms = date
                            .and_hms_opt(0, 0, 0)
                            .expect("midnight exists")
                            .and_utc()
                            .timestamp_millis();
                        format!("/Date({ms})/")
                    }
                    (None, ValueStyle::MaximoJson) => format!("{date}T00:00:00+00:00"),
                    (None, ValueStyle::ODataV4) => format!("{date}T12:00:00Z"),
                }))
            }
            Inverse::DateTime(style, pattern) => {
                let text = value
                    .as_str()
                    .ok_or_else(|| format!("{} is not an RFC 3339 date-time", quote(&value)))?;
                let at = DateTime::parse_from_rfc3339(text)
                    .map_err(|_| format!("`{text}` is not an RFC 3339 date-time"))?
                    .with_timezone(&Utc);
                Ok(Value::String(match (pattern, style) {
                    (Some(p), _) => at.format(p).to_string(),
                    (None, ValueStyle::ODataV2) => {
                        format!("/Date({}+0000)/", at.timestamp_millis())
                    }
                    (None, ValueStyle::MaximoJson) => {
                        at.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
                    }
                    (None, ValueStyle::ODataV4) => at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                }))
            }
            Inverse::Lookup(table) => table.get(&value.to_string()).cloned().ok_or_else(|| {
                let mut allowed: Vec<&String> = table.keys().collect();
                allowed.sort();
                let allowed: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
                format!(
                    "{} has no code in this system; it takes {}",
                    quote(&value),
                    allowed.join(", ")
                )
            }),
            Inverse::Scale(factor) => {
                let x = value
                    .as_f64()
                    .ok_or_else(|| format!("{} is not a number", quote(&value)))?;
                let y = x * factor;
                // Keep integers integers where the arithmetic allows.
                let rounded = (y * 1e9).round() / 1e9;
                Ok(serde_json::Number::from_f64(rounded)
                    .map(Value::Number)
                    .unwrap_or(Value::Null))
            }
        }
    }
}

/// The keys of a plain member path (`$.A.B`, `$['A'].B`), and whether it ends in
/// `[*]`; `None` for anything else.
pub(super) fn plain_path(text: &str) -> Option<(Vec<String>, bool)> {
    let mut rest = text.strip_prefix('$')?;
    let mut keys = Vec::new();
    let mut wildcard = false;
    while !rest.is_empty() {
        if wildcard {
            return None;
        }
        if let Some(r) = rest.strip_prefix("[*]") {
            wildcard = true;
            rest = r;
        } else if let Some(r) = rest.strip_prefix("['") {
            let end = r.find("']")?;
            keys.push(r[..end].to_owned());
            rest = &r[end + 2..];
        } else if let Some(r) = rest.strip_prefix('.') {
            let end = r
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-' || c == '@'))
                .unwrap_or(r.len());
            if end == 0 {
                return None;
            }
            keys.push(r[..end].to_owned());
            rest = &r[end..];
        } else {
            return None;
        }
    }
    (!keys.is_empty()).then_some((keys, wildcard))
}

/// The call of the inverse that a plugin step's function declares, or why there is
/// none (a clause that follows the function's name: "which declares no inverse").
pub(super) fn plugin_inverse(
    step: &PluginStep,
    kind: FunctionKind,
    slots: &mut Slots<'_>,
) -> Result<PluginCall, String> {
    let (slot, plugin) = slots
        .resolve(&step.plugin)
        .map_err(|e| format!("but {e}"))?;
    let info = plugin
        .function(&step.function, kind)
        .map_err(|e| format!("but {e}"))?;
    match &info.inverse {
        Some(inverse) => {
            // The inverse takes the step's arguments: they must fit its schema too.
            plugin.check_args(inverse, &step.args).map_err(|e| {
                format!("whose inverse `{inverse}` does not take the step's arguments: {e}")
            })?;
            Ok(PluginCall {
                slot,
                plugin: step.plugin.clone(),
                function: inverse.clone(),
                args: step.args.to_string(),
            })
        }
        None if plugin.interface() == "crosswalk:plugin@0.1.0" => Err(format!(
            "whose plugin implements crosswalk:plugin@0.1.0, which cannot declare an inverse (version {} of `{}`)",
            plugin.version(),
            plugin.name()
        )),
        None => Err("which declares no inverse".into()),
    }
}

/// The inverse of one transform step, or why it has none.
pub(super) fn inverse(
    step: &TransformStep,
    style: ValueStyle,
    slots: &mut Slots<'_>,
) -> Result<Inverse, String> {
    if let Value::Object(m) = &step.0
        && m.contains_key("plugin")
    {
        let spec: PluginStep = serde_json::from_value(step.0.clone())
            .map_err(|e| format!("its plugin step is not {{plugin, function, args}}: {e}"))?;
        return plugin_inverse(&spec, FunctionKind::Field, slots)
            .map(Inverse::Plugin)
            .map_err(|why| {
                format!(
                    "it calls the plugin function `{}.{}`, {why}",
                    spec.plugin, spec.function
                )
            });
    }
    let (name, args) = match &step.0 {
        Value::String(name) => (name.as_str(), None),
        Value::Object(m) if m.len() == 1 => {
            let (k, v) = m.iter().next().expect("one entry");
            (k.as_str(), Some(v))
        }
        other => return Err(format!("its transform {} is not understood", quote(other))),
    };
    let first_format = || {
        args.and_then(|a| a.get("formats"))
            .and_then(Value::as_array)
            .and_then(|f| f.first())
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    Ok(match name {
        "null_if_empty" | "trim" | "upper" | "lower" | "to_string" | "default" => Inverse::Identity,
        "to_number" | "to_integer" => Inverse::Number(style),
        "date" => Inverse::Date(style, first_format()),
        "datetime" => Inverse::DateTime(style, first_format()),
        "lookup" => {
            let map = args
                .and_then(|a| a.get("map"))
                .and_then(Value::as_object)
                .ok_or("its lookup has no map")?;
            let mut table: HashMap<String, Value> = HashMap::new();
            for (code, value) in map {
                let key = value.to_string();
                if table.contains_key(&key) {
                    return Err(format!(
                        "its lookup gives {} for more than one code, so a value cannot be turned back into one",
                        quote(value)
                    ));
                }
                table.insert(key, Value::String(code.clone()));
            }
            Inverse::Lookup(table)
        }
        "template" => {
            let text = args.and_then(Value::as_str).unwrap_or_default().to_owned();
            let Ok(Transform::Template(template)) = Transform::compile(step, &mut BuiltInsOnly)
            else {
                return Err(format!("its template `{text}` does not compile"));
            };
            let mut pieces = Vec::new();
            for piece in template.pieces() {
                let placeholder = !matches!(piece, Piece::Text(_));
                if placeholder
                    && pieces
                        .last()
                        .is_some_and(|p| !matches!(p, Unpiece::Text(_)))
                {
                    return Err(format!(
                        "its template `{text}` has two placeholders with nothing between them, so its text cannot be split back"
                    ));
                }
                pieces.push(match piece {
                    Piece::Text(t) => Unpiece::Text(t.to_owned()),
                    Piece::Value => Unpiece::Value,
                    Piece::Path(path) => match plain_path(path) {
                        Some((keys, false)) => Unpiece::Path(keys),
                        _ => {
                            return Err(format!(
                                "its template reads `{path}`, which is not a plain member path (wildcards, filters and indexes cannot be written)"
                            ));
                        }
                    },
                });
            }
            Inverse::Template(Unfill { text, pieces })
        }
        "multiply" | "divide" => {
            let by = args
                .and_then(|a| a.get("by"))
                .and_then(Value::as_f64)
                .filter(|b| *b != 0.0)
                .ok_or_else(|| format!("its `{name}` by another field's value cannot be undone"))?;
            Inverse::Scale(if name == "multiply" { 1.0 / by } else { by })
        }
        other => return Err(format!("its transform `{other}` cannot be undone")),
    })
}

/// Write transforms are built-ins: a plugin name finds nothing.
pub(super) struct BuiltInsOnly;

impl ResolvePlugin for BuiltInsOnly {
    fn resolve(&mut self, name: &str) -> Result<(usize, Arc<dyn Plugin>), PluginError> {
        Err(PluginError::UnknownPlugin {
            plugin: name.to_owned(),
            hint: " (write rules take built-in transforms only)".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::PluginSet;

    #[test]
    fn plain_paths_are_member_chains() {
        assert_eq!(
            plain_path("$.A.B"),
            Some((vec!["A".into(), "B".into()], false))
        );
        assert_eq!(
            plain_path("$.to_Item.results[*]"),
            Some((vec!["to_Item".into(), "results".into()], true))
        );
        assert_eq!(
            plain_path("$['odd key'].x"),
            Some((vec!["odd key".into(), "x".into()], false))
        );
        assert_eq!(plain_path("$.items[0].Plant"), None);
        assert_eq!(plain_path("$..x"), None);
        assert_eq!(plain_path("$.a[?@.b]"), None);
        assert_eq!(plain_path("$"), None);
    }

    #[test]
    fn inverses_undo_their_transforms() {
        let sap = ValueStyle::ODataV2;
        let none = PluginSet::new();
        let slots = &mut Slots::new(&none);
        let mut session = Session::new(&[]);
        let session = &mut session;
        let date = inverse(&TransformStep(Value::String("date".into())), sap, slots).unwrap();
        assert_eq!(
            date.apply_one(Value::String("2024-03-15".into()), session)
                .unwrap(),
            "/Date(1710460800000)/"
        );
        let lookup = inverse(&TransformStep(serde_json::json!({"lookup": {"map": {"APPR": "approved", "WAPPR": "pending_approval"}}})), ValueStyle::MaximoJson, slots)
        .unwrap();
        assert_eq!(
            lookup.apply_one("approved".into(), session).unwrap(),
            "APPR"
        );
        let e = lookup.apply_one("closed".into(), session).unwrap_err();
        assert!(
            e.contains("takes \"approved\", \"pending_approval\""),
            "{e}"
        );
        let many = inverse(
            &TransformStep(
                serde_json::json!({"lookup": {"map": {"02": "approved", "05": "approved"}}}),
            ),
            sap,
            slots,
        )
        .unwrap_err();
        assert!(many.contains("more than one code"), "{many}");
        let number = inverse(&TransformStep("to_number".into()), sap, slots).unwrap();
        assert_eq!(
            number.apply_one(serde_json::json!(12.5), session).unwrap(),
            "12.5"
        );
        let scale = inverse(
            &TransformStep(serde_json::json!({"divide": {"by": 100}})),
            sap,
            slots,
        )
        .unwrap();
        assert_eq!(
            scale.apply_one(serde_json::json!(1.25), session).unwrap(),
            serde_json::json!(125.0)
        );
        assert!(inverse(&TransformStep("round".into()), sap, slots).is_err());
        let unbound = inverse(
            &TransformStep(serde_json::json!({"plugin": "uom", "function": "convert"})),
            sap,
            slots,
        )
        .unwrap_err();
        assert!(
            unbound.starts_with("it calls the plugin function `uom.convert`, but"),
            "{unbound}"
        );
    }

    #[test]
    fn templates_split_back_at_their_literals() {
        let none = PluginSet::new();
        let slots = &mut Slots::new(&none);
        let mut session = Session::new(&[]);
        let step = |t: &str| TransformStep(serde_json::json!({ "template": t }));
        let id = inverse(&step("{$.siteid}/{value}"), ValueStyle::MaximoJson, slots).unwrap();
        let mut captures = Vec::new();
        let own = id
            .apply("BEDFORD/1234".into(), &mut session, &mut captures)
            .unwrap();
        assert_eq!(own, Some("1234".into()));
        assert_eq!(captures, [(vec!["siteid".to_owned()], "BEDFORD".into())]);
        // Split at the first `/`: the rest, slashes and all, is the value.
        let mut captures = Vec::new();
        assert_eq!(
            id.apply("A/B/C".into(), &mut session, &mut captures)
                .unwrap(),
            Some("B/C".into())
        );
        let e = id
            .apply("no-slash".into(), &mut session, &mut Vec::new())
            .unwrap_err();
        assert_eq!(
            e,
            "`no-slash` does not have the form of the template `{$.siteid}/{value}`"
        );
        // Without `{value}`, the chain ends with the template; an empty piece is null.
        let flags = inverse(&step("[{$.a.b}|{$.c}]"), ValueStyle::ODataV2, slots).unwrap();
        let mut captures = Vec::new();
        assert_eq!(
            flags
                .apply("[x|]".into(), &mut session, &mut captures)
                .unwrap(),
            None
        );
        assert_eq!(
            captures,
            [
                (vec!["a".to_owned(), "b".to_owned()], "x".into()),
                (vec!["c".to_owned()], Value::Null)
            ]
        );
        // The last literal ends the text, whatever the value holds.
        let label = inverse(&step("{$.a} ({value})"), ValueStyle::MaximoJson, slots).unwrap();
        assert_eq!(
            label
                .apply("A (x (y))".into(), &mut session, &mut Vec::new())
                .unwrap(),
            Some("x (y)".into())
        );
        // A null writes nothing.
        let mut captures = Vec::new();
        assert_eq!(
            id.apply(Value::Null, &mut session, &mut captures).unwrap(),
            None
        );
        assert!(captures.is_empty());
        let e = inverse(&step("{$.a}{value}"), ValueStyle::MaximoJson, slots).unwrap_err();
        assert!(
            e.contains("two placeholders with nothing between them"),
            "{e}"
        );
        let e = inverse(&step("{$.a[0]}-{value}"), ValueStyle::MaximoJson, slots).unwrap_err();
        assert!(
            e.contains("`$.a[0]`, which is not a plain member path"),
            "{e}"
        );
    }
}
