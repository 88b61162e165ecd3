//! Writes: the reverse of a resolved mapping, from the unified model to a system's
//! own payload.
//!
//! [`WritePlan::derive`] inverts every rule that can be inverted, and lists the others
//! as read-only with the reason. A rule is writable when it reads one plain member path
//! (`$.A.B`, or the first path of a `coalesce`) and every transform on the way has an
//! inverse:
//!
//! | transform | inverse |
//! | --- | --- |
//! | `null_if_empty`, `trim`, `upper`, `lower`, `to_string`, `default` | the value as it is |
//! | `to_number`, `to_integer` | the number, as text for SAP (OData V2 decimals are strings) |
//! | `date`, `datetime` | the system's own format: SAP `/Date(ms)/`, ISO 8601 for Maximo and Dynamics, or the first of the transform's `formats` |
//! | `lookup` | the table read backwards, when no two codes give the same value |
//! | `multiply`/`divide` by a constant | the other one |
//! | `template` | the text split back at the template's literals (the first occurrence of each): `{value}` goes on down the chain, each `{$.path}` (a plain member path) is written to its own source field, as text |
//!
//! A plugin function inverts through the inverse it declares (`crosswalk:plugin@0.2.0`,
//! `function-info.inverse`), called with the step's arguments. Anything else — a
//! constant, a path with wildcards, filters or an index, `round`, a template with two
//! placeholders side by side, `concat`, `split`, `to_bool`, a factor read from another
//! field, a plugin function without an inverse — makes its target read-only, and so
//! are `created_at` and `updated_at`, which the source system keeps itself. A write
//! that sets a read-only field is refused with the field and the reason.
//!
//! Record-level plugin steps are undone by their inverses too: a `post` step's before
//! the rules, a `pre` step's after them. One that has none makes the entity
//! unwritable, since nothing says which fields it changed.
//!
//! Object targets (`vendor`) write their fields into the same record; array targets
//! (`lines`, read from `$.items[*]`) write an array of records. A `null` for a field
//! that is read-only or not mapped writes nothing, so that a whole unified record, as
//! a read answers it, can be written back.
//!
//! When two fields write the same source field (`id` through `{$.dataAreaId}/{value}`,
//! `site_id` from `$.dataAreaId`), the value written is one that reads back as every
//! field that writes it (`demf` for an `id` of `demf/…` and a `site_id` of `DEMF` read
//! through `upper`); when none does, the write is refused, naming two fields that
//! disagree.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

use super::compile::Slots;
use super::error::{SpecError, SpecErrors, quote};
use super::resolve::{ResolvedMapping, ResolvedRule};
use super::spec::{PluginStep, TransformStep};
use super::transform::{Ctx, Piece, PluginCall, ResolvePlugin, Transform};
use crate::model::Entity;
use crate::plugin::{Binding, CallCounts, FunctionKind, Plugin, PluginError, PluginSet, Session};

/// A target that a write cannot set, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ReadOnly {
    /// The target (`status`, `lines.unit_price`).
    pub target: String,
    /// Why it cannot be written.
    pub reason: String,
}

/// A problem with a unified record to write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct WriteError {
    /// The unified field, with indexes in arrays (`lines[1].unit_price`); empty when
    /// the problem is the whole record's.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "`{}`: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for WriteError {}

/// How a system writes dates and numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// SAP OData V2: `/Date(ms)/`, decimals as text.
    SapOData,
    /// Maximo's JSON API: ISO 8601 with an offset.
    Maximo,
    /// Dynamics 365 OData V4: ISO 8601 in UTC.
    Dynamics,
}

impl Style {
    fn of(system: &str) -> Style {
        match system {
            "sap-s4hana" => Style::SapOData,
            "ibm-maximo" => Style::Maximo,
            _ => Style::Dynamics,
        }
    }
}

/// The inverse of one transform.
#[derive(Debug, Clone)]
enum Inverse {
    Identity,
    /// A number back to the source's numbers (text for SAP).
    Number(Style),
    /// A `YYYY-MM-DD` date back to the system's format, or to a chrono pattern.
    Date(Style, Option<String>),
    /// An RFC 3339 date-time back to the system's format, or to a chrono pattern.
    DateTime(Style, Option<String>),
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
struct Unfill {
    /// The template as written, for messages.
    text: String,
    /// Its pieces; no two placeholders are next to each other. Without a `{value}`,
    /// the chain of inverses ends with it.
    pieces: Vec<Unpiece>,
}

#[derive(Debug, Clone)]
enum Unpiece {
    Text(String),
    Value,
    /// A source field of the current record, by its keys.
    Path(Vec<String>),
}

/// A source field that an inverse sets besides its rule's own path: a template's
/// `{$.path}` placeholder.
type Capture = (Vec<String>, Value);

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
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(value.to_string()),
        _ => None,
    }
}

impl Inverse {
    /// The source value, or `None` when nothing more is written at the rule's own path
    /// (a template without `{value}`); a template adds its other fields to `captures`.
    fn apply(
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
                (Value::Number(n), Style::SapOData) => Ok(Value::String(n.to_string())),
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
                    (None, Style::SapOData) => {
                        let ms = date
                            .and_hms_opt(0, 0, 0)
                            .expect("midnight exists")
                            .and_utc()
                            .timestamp_millis();
                        format!("/Date({ms})/")
                    }
                    (None, Style::Maximo) => format!("{date}T00:00:00+00:00"),
                    (None, Style::Dynamics) => format!("{date}T12:00:00Z"),
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
                    (None, Style::SapOData) => format!("/Date({}+0000)/", at.timestamp_millis()),
                    (None, Style::Maximo) => at.format("%Y-%m-%dT%H:%M:%S+00:00").to_string(),
                    (None, Style::Dynamics) => at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
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

/// How a scalar target's value becomes its source value.
#[derive(Debug, Clone)]
enum Convert {
    /// The inverses of the read transforms, last first.
    Inverses(Vec<Inverse>),
    /// An explicit write rule's transforms, in order.
    Forward(Vec<Transform>),
}

/// One writable target.
#[derive(Debug, Clone)]
enum WriteRule {
    /// A scalar: how its value is converted and where it goes.
    Field {
        target: String,
        native: Vec<String>,
        convert: Convert,
        /// The read transforms, when they depend on the source value alone (no
        /// template, no plugin): a value another field writes to the same source field
        /// is accepted when it reads back through them as this field's value.
        reads: Option<Vec<Transform>>,
    },
    /// An object whose fields are written into the same native record.
    Object {
        target: String,
        rules: Vec<WriteRule>,
    },
    /// An array of records, written as an array at `native`.
    Array {
        target: String,
        native: Vec<String>,
        rules: Vec<WriteRule>,
    },
}

impl WriteRule {
    /// Whether writing it calls a plugin inverse.
    fn calls_plugins(&self) -> bool {
        match self {
            WriteRule::Field { convert, .. } => matches!(
                convert,
                Convert::Inverses(inverses) if inverses.iter().any(|i| matches!(i, Inverse::Plugin(_)))
            ),
            WriteRule::Object { rules, .. } | WriteRule::Array { rules, .. } => {
                rules.iter().any(WriteRule::calls_plugins)
            }
        }
    }

    fn target(&self) -> &str {
        match self {
            WriteRule::Field { target, .. }
            | WriteRule::Object { target, .. }
            | WriteRule::Array { target, .. } => target,
        }
    }
}

/// How a connection writes one entity: the inverted rules, and the read-only targets.
#[derive(Debug, Clone)]
pub struct WritePlan {
    entity: Entity,
    rules: Vec<WriteRule>,
    read_only: Vec<ReadOnly>,
    /// The inverses of the `post` steps, in the order they run (last step first).
    post: Vec<PluginCall>,
    /// The inverses of the `pre` steps, in the order they run (last step first).
    pre: Vec<PluginCall>,
    /// Why no record can be written, when a record step cannot be undone.
    refused: Option<String>,
    /// The plugins the inverses call, by slot.
    plugins: Vec<Binding>,
    /// Whether an inverse calls a plugin.
    calls_plugins: bool,
}

/// The keys of a plain member path (`$.A.B`, `$['A'].B`), and whether it ends in
/// `[*]`; `None` for anything else.
fn plain_path(text: &str) -> Option<(Vec<String>, bool)> {
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
fn plugin_inverse(
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
fn inverse(step: &TransformStep, style: Style, slots: &mut Slots<'_>) -> Result<Inverse, String> {
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

impl WritePlan {
    /// The reverse of a resolved mapping whose plugin steps call the plugins in
    /// `plugins`; an explicit write rule that is not valid (a path that is not a plain
    /// member path, a transform that does not compile or calls a plugin) is an error
    /// naming its target.
    pub fn derive(
        resolved: &ResolvedMapping,
        plugins: &PluginSet,
    ) -> Result<WritePlan, SpecErrors> {
        let style = Style::of(&resolved.system);
        let mut read_only = Vec::new();
        let mut rules = Vec::new();
        let mut invalid = Vec::new();
        let mut slots = Slots::new(plugins);
        for rule in &resolved.rules {
            if matches!(rule.spec.target.as_str(), "created_at" | "updated_at") {
                read_only.push(ReadOnly {
                    target: rule.spec.target.clone(),
                    reason: "the source system sets it".into(),
                });
                continue;
            }
            let mut found = Found {
                read_only: &mut read_only,
                invalid: &mut invalid,
                slots: &mut slots,
            };
            if let Some(w) = derive_rule(rule, "", style, resolved.entity, &mut found) {
                rules.push(w);
            }
        }
        if !invalid.is_empty() {
            return Err(SpecErrors(invalid));
        }
        let mut refused = None;
        let mut record_inverses = |stage: &str, steps: &[PluginStep]| -> Vec<PluginCall> {
            steps
                .iter()
                .rev()
                .filter_map(|step| {
                    plugin_inverse(step, FunctionKind::Record, &mut slots)
                        .map_err(|why| {
                            refused.get_or_insert(format!(
                                "its `{stage}` step calls the plugin function `{}.{}`, {why}, so a write cannot undo what it changed",
                                step.plugin, step.function
                            ));
                        })
                        .ok()
                })
                .collect()
        };
        let post = record_inverses("post", &resolved.post);
        let pre = record_inverses("pre", &resolved.pre);
        // Only inverses that are called count: a plugin resolved for a step that has
        // none is never instantiated.
        let calls_plugins = refused.is_none()
            && (!post.is_empty() || !pre.is_empty() || rules.iter().any(WriteRule::calls_plugins));
        Ok(WritePlan {
            entity: resolved.entity,
            rules,
            read_only,
            post,
            pre,
            refused,
            plugins: slots.into_used(),
            calls_plugins,
        })
    }

    /// The targets a write cannot set, and why.
    pub fn read_only(&self) -> &[ReadOnly] {
        &self.read_only
    }

    /// The top-level source fields the `id` target writes: its own path's, and those
    /// of its template's placeholders (`siteid` and `wonum` for `{$.siteid}/{value}`
    /// on `$.wonum`). Empty when `id` is read-only.
    pub fn id_sources(&self) -> Vec<String> {
        let Some(WriteRule::Field {
            native, convert, ..
        }) = self.rules.iter().find(|r| r.target() == "id")
        else {
            return Vec::new();
        };
        let mut sources = vec![native[0].clone()];
        if let Convert::Inverses(inverses) = convert {
            for inverse in inverses {
                if let Inverse::Template(unfill) = inverse {
                    for piece in &unfill.pieces {
                        if let Unpiece::Path(keys) = piece
                            && !sources.contains(&keys[0])
                        {
                            sources.push(keys[0].clone());
                        }
                    }
                }
            }
        }
        sources
    }

    /// Why no record of the entity can be written, when a `pre` or `post` step has no
    /// inverse.
    pub fn refused(&self) -> Option<&str> {
        self.refused.as_deref()
    }

    /// Whether writing may call a plugin (and take as long as its time limit).
    pub fn calls_plugins(&self) -> bool {
        self.calls_plugins
    }

    /// The native payload of a unified record (or of the fields of an update): every
    /// field given is written, and a field that cannot be is an error. All errors are
    /// reported, not only the first.
    pub fn to_native(&self, unified: &Value) -> Result<Value, Vec<WriteError>> {
        self.write(unified).native
    }

    /// [`WritePlan::to_native`], with what the plugin inverses it called logged and
    /// how their calls ended, for the connection's health and error log.
    pub fn write(&self, unified: &Value) -> Written {
        let mut session = Session::new(&self.plugins);
        let native = self.native(unified, &mut session);
        Written {
            native,
            log: session.take_log(),
            plugin_calls: session.take_calls(),
        }
    }

    fn native(&self, unified: &Value, session: &mut Session) -> Result<Value, Vec<WriteError>> {
        let whole = |message: String| {
            vec![WriteError {
                field: String::new(),
                message,
            }]
        };
        if let Some(why) = &self.refused {
            return Err(whole(why.clone()));
        }
        if !unified.is_object() {
            return Err(whole(format!("a {} must be a JSON object", self.entity)));
        }
        let unified = run_record_inverses(&self.post, unified.clone(), session).map_err(whole)?;
        let mut out = Value::Object(Map::new());
        let mut errors = Vec::new();
        let Value::Object(fields) = &unified else {
            return Err(whole(format!(
                "the inverse of a `post` step gave {}, not a {} object",
                quote(&unified),
                self.entity
            )));
        };
        // custom_fields.x are targets of their own.
        let mut flat: Vec<(String, &Value)> = Vec::new();
        for (k, v) in fields {
            match (k.as_str(), v) {
                ("custom_fields", Value::Object(custom)) => {
                    flat.extend(
                        custom
                            .iter()
                            .map(|(c, v)| (format!("custom_fields.{c}"), v)),
                    );
                }
                ("custom_fields", Value::Null) | ("remote_data" | "errors", _) => {}
                ("custom_fields", other) => errors.push(WriteError {
                    field: "custom_fields".into(),
                    message: format!("{} is not an object", quote(other)),
                }),
                _ => flat.push((k.clone(), v)),
            }
        }
        let mut writes = Vec::new();
        write_fields(
            &self.rules,
            &self.read_only,
            &flat,
            &unified,
            "",
            &mut writes,
            &mut errors,
            session,
        );
        settle(&mut out, writes, &mut errors, session);
        if !errors.is_empty() {
            return Err(errors);
        }
        run_record_inverses(&self.pre, out, session).map_err(whole)
    }
}

/// What writing one record gave: its native payload, and what the plugin inverses it
/// called logged and how their calls ended.
#[derive(Debug)]
pub struct Written {
    /// The native payload, or every field that cannot be written and why.
    pub native: Result<Value, Vec<WriteError>>,
    /// What the plugins logged (bounded), each line prefixed with the plugin's name.
    pub log: Vec<String>,
    /// How the plugin calls ended, by plugin name.
    pub plugin_calls: Vec<(String, CallCounts)>,
}

/// Runs the inverses of record steps on one record, in order.
fn run_record_inverses(
    calls: &[PluginCall],
    mut record: Value,
    session: &mut Session,
) -> Result<Value, String> {
    for call in calls {
        let mut results = session
            .instance(call.slot)
            .call_records(&call.function, std::slice::from_ref(&record), &call.args)
            .map_err(|e| e.to_string())?;
        record = results
            .pop()
            .expect("one result per record")
            .map_err(|e| e.to_string())?;
    }
    Ok(record)
}

fn joined(prefix: &str, target: &str) -> String {
    if prefix.is_empty() {
        target.to_owned()
    } else {
        format!("{prefix}.{target}")
    }
}

/// What deriving finds besides write rules, and the plugins the inverses call.
struct Found<'a, 's> {
    read_only: &'a mut Vec<ReadOnly>,
    invalid: &'a mut Vec<SpecError>,
    slots: &'a mut Slots<'s>,
}

/// Write transforms are built-ins: a plugin name finds nothing.
struct BuiltInsOnly;

impl ResolvePlugin for BuiltInsOnly {
    fn resolve(&mut self, name: &str) -> Result<(usize, Arc<Plugin>), PluginError> {
        Err(PluginError::UnknownPlugin {
            plugin: name.to_owned(),
            hint: " (write rules take built-in transforms only)".into(),
        })
    }
}

/// The write rule of an explicit `write`, or the error that names its target.
fn explicit(rule: &ResolvedRule, full: &str, found: &mut Found<'_, '_>) -> Option<WriteRule> {
    let spec = rule.spec.write.as_ref()?;
    let bad = |message: String| SpecError::BadOverride {
        target: full.to_owned(),
        message: format!("write: {message}"),
    };
    let Some((native, false)) = plain_path(&spec.path) else {
        found.invalid.push(bad(format!(
            "`{}` is not a plain member path (`$.A.B`)",
            spec.path
        )));
        return None;
    };
    let mut transforms = Vec::new();
    for step in &spec.transforms {
        match Transform::compile(step, &mut BuiltInsOnly) {
            Ok(t) => transforms.push(t),
            Err(e) => {
                let why = match e {
                    super::transform::StepError::Shape(m) => m,
                    super::transform::StepError::Unknown(name) => {
                        format!("no built-in transform is called `{name}`")
                    }
                    super::transform::StepError::Plugin(e) => e.to_string(),
                    super::transform::StepError::Args { name, message } => {
                        format!("`{name}`: {message}")
                    }
                };
                found.invalid.push(bad(why));
                return None;
            }
        }
    }
    Some(WriteRule::Field {
        target: rule.spec.target.clone(),
        native,
        convert: Convert::Forward(transforms),
        reads: None,
    })
}

/// The write rule of one resolved rule, or `None` with a read-only entry.
fn derive_rule(
    rule: &ResolvedRule,
    prefix: &str,
    style: Style,
    entity: Entity,
    found: &mut Found<'_, '_>,
) -> Option<WriteRule> {
    if rule.disabled {
        return None;
    }
    let target = rule.spec.target.clone();
    let full = joined(prefix, &target);
    if rule.spec.write.is_some() {
        return explicit(rule, &full, found);
    }
    let read_only = &mut *found.read_only;
    if let Some(children) = &rule.rules {
        let is_array = matches!(
            entity.record_type().field(&rule.spec.target),
            Some(crate::model::FieldType::Array(_))
        ) && prefix.is_empty();
        let mut nested = Vec::new();
        for child in children {
            let mut inner = Found {
                read_only: &mut *read_only,
                invalid: &mut *found.invalid,
                slots: &mut *found.slots,
            };
            if let Some(w) = derive_rule(child, &full, style, entity, &mut inner) {
                nested.push(w);
            }
        }
        return match rule.spec.path.as_deref() {
            None => Some(WriteRule::Object {
                target,
                rules: nested,
            }),
            // `$.items[*]`, or `$.poline` for an array target: an array of records.
            Some(path) => match plain_path(path) {
                Some((native, wildcard)) if wildcard || is_array => Some(WriteRule::Array {
                    target,
                    native,
                    rules: nested,
                }),
                _ => refuse(
                    read_only,
                    &full,
                    format!("its records come from `{path}`, which is not a plain member path"),
                ),
            },
        };
    }
    if rule.spec.constant.is_some() {
        return refuse(read_only, &full, "it is a constant".into());
    }
    let path = match (&rule.spec.path, &rule.spec.coalesce) {
        (Some(p), _) => p.clone(),
        (None, Some(paths)) if !paths.is_empty() => paths[0].clone(),
        _ => return refuse(read_only, &full, "it reads no source path".into()),
    };
    let Some((native, false)) = plain_path(&path) else {
        return refuse(
            read_only,
            &full,
            format!(
                "it reads `{path}`, which is not a plain member path (wildcards, filters and indexes cannot be written)"
            ),
        );
    };
    let mut inverses = Vec::new();
    for step in &rule.spec.transforms {
        match inverse(step, style, found.slots) {
            Ok(i) => inverses.push(i),
            Err(why) => return refuse(read_only, &full, why),
        }
    }
    inverses.reverse();
    Some(WriteRule::Field {
        target,
        native,
        convert: Convert::Inverses(inverses),
        reads: reads(&rule.spec.transforms),
    })
}

/// The read transforms of a rule when they depend on the source value alone.
fn reads(steps: &[TransformStep]) -> Option<Vec<Transform>> {
    steps
        .iter()
        .map(|step| match Transform::compile(step, &mut BuiltInsOnly) {
            Ok(Transform::Template(_) | Transform::Multiply(_) | Transform::Divide(_)) | Err(_) => {
                None
            }
            Ok(t) => Some(t),
        })
        .collect()
}

/// Lists a target as read-only; no write rule.
fn refuse(read_only: &mut Vec<ReadOnly>, target: &str, reason: String) -> Option<WriteRule> {
    read_only.push(ReadOnly {
        target: target.to_owned(),
        reason,
    });
    None
}

/// One value for one source field, from one unified field, before the values of the
/// whole record are settled.
struct Write<'a> {
    keys: Vec<String>,
    value: Value,
    /// The unified field that gives it, with indexes.
    field: String,
    /// The unified value, and the field's read transforms when they depend on the
    /// source value alone: another value is acceptable when it reads back as this one.
    unified: Value,
    reads: Option<&'a [Transform]>,
}

impl Write<'_> {
    /// Whether writing `value` to the source field instead of this write's own value
    /// still reads back as its unified value.
    fn accepts(&self, value: &Value, session: &mut Session) -> bool {
        if *value == self.value {
            return true;
        }
        let Some(reads) = self.reads else {
            return false;
        };
        let ctx = &mut Ctx {
            record: &Value::Null,
            session,
        };
        reads
            .iter()
            .try_fold(value.clone(), |v, t| t.apply(v, ctx))
            .is_ok_and(|v| v == self.unified)
    }
}

/// Writes the values of one native record (or array element): a source field that
/// several fields write gets the value every one of them reads back, or the write is
/// refused naming two that disagree.
fn settle(
    out: &mut Value,
    writes: Vec<Write<'_>>,
    errors: &mut Vec<WriteError>,
    session: &mut Session,
) {
    let mut groups: Vec<Vec<Write<'_>>> = Vec::new();
    for w in writes {
        match groups.iter_mut().find(|g| g[0].keys == w.keys) {
            Some(group) => group.push(w),
            None => groups.push(vec![w]),
        }
    }
    for group in groups {
        let chosen = group
            .iter()
            .map(|candidate| &candidate.value)
            .find(|value| group.iter().all(|w| w.accepts(value, session)))
            .cloned();
        match chosen {
            Some(value) => set_native(out, &group[0].keys, value, &group[0].field, errors),
            None => {
                let first = &group[0];
                let other = group
                    .iter()
                    .find(|w| w.value != first.value)
                    .unwrap_or(&group[group.len() - 1]);
                errors.push(WriteError {
                    field: other.field.clone(),
                    message: format!(
                        "it writes {} to `{}`, which `{}` of this write sets to {}",
                        quote(&other.value),
                        first.keys.join("."),
                        first.field,
                        quote(&first.value)
                    ),
                });
            }
        }
    }
}

fn set_native(
    out: &mut Value,
    keys: &[String],
    value: Value,
    field: &str,
    errors: &mut Vec<WriteError>,
) {
    let (last, parents) = keys.split_last().expect("paths have keys");
    let mut node = Some(out);
    for key in parents {
        node = match node {
            Some(Value::Object(map)) => Some(
                map.entry(key.clone())
                    .or_insert_with(|| Value::Object(Map::new())),
            ),
            _ => None,
        };
    }
    let Some(Value::Object(map)) = node else {
        errors.push(WriteError {
            field: field.to_owned(),
            message: format!(
                "its source `{}` is inside a value another field writes",
                keys.join(".")
            ),
        });
        return;
    };
    match map.get(last) {
        // Fields that write the very same source field are settled before; what is
        // here was written by a field whose source holds this one (`$.a` and `$.a.b`).
        Some(existing) if *existing != value => errors.push(WriteError {
            field: field.to_owned(),
            message: format!(
                "it writes {} to `{}`, which holds a value another field of this write sets, {}",
                quote(&value),
                keys.join("."),
                quote(existing)
            ),
        }),
        _ => {
            map.insert(last.clone(), value);
        }
    }
}

/// The source value of a scalar field, and what its inverses write besides.
fn convert(
    convert: &Convert,
    value: &Value,
    record: &Value,
    session: &mut Session,
) -> Result<(Option<Value>, Vec<Capture>), String> {
    let mut captures = Vec::new();
    match convert {
        Convert::Inverses(inverses) => {
            let mut value = Some(value.clone());
            for inverse in inverses {
                let Some(v) = value else { break };
                value = inverse.apply(v, session, &mut captures)?;
            }
            Ok((value, captures))
        }
        Convert::Forward(transforms) => transforms
            .iter()
            .try_fold(value.clone(), |v, t| {
                t.apply(v, &mut Ctx { record, session })
            })
            .map(|v| (Some(v), captures)),
    }
}

/// What the fields of one unified record (or of an object inside it) write.
#[allow(clippy::too_many_arguments)]
fn write_fields<'r>(
    rules: &'r [WriteRule],
    read_only: &[ReadOnly],
    fields: &[(String, &Value)],
    record: &Value,
    prefix: &str,
    writes: &mut Vec<Write<'r>>,
    errors: &mut Vec<WriteError>,
    session: &mut Session,
) {
    for (name, value) in fields {
        let field = joined(prefix, name);
        let Some(rule) = rules.iter().find(|r| r.target() == name) else {
            if value.is_null() {
                // A full record carries `null` for what it does not set: nothing to
                // write.
                continue;
            }
            let template = field
                .split('.')
                .map(|s| s.split('[').next().unwrap_or(s))
                .collect::<Vec<_>>()
                .join(".");
            let message = match read_only.iter().find(|r| r.target == template) {
                Some(r) => format!("it is read-only on this connection: {}", r.reason),
                None => "this connection's mapping does not map it, so it cannot be written".into(),
            };
            errors.push(WriteError { field, message });
            continue;
        };
        match rule {
            WriteRule::Field {
                native,
                convert: how,
                reads,
                ..
            } => match convert(how, value, record, session) {
                Ok((own, captures)) => {
                    if let Some(v) = own {
                        writes.push(Write {
                            keys: native.clone(),
                            value: v,
                            field: field.clone(),
                            unified: (*value).clone(),
                            reads: reads.as_deref(),
                        });
                    }
                    for (keys, v) in captures {
                        writes.push(Write {
                            keys,
                            value: v,
                            field: field.clone(),
                            unified: (*value).clone(),
                            reads: None,
                        });
                    }
                }
                Err(message) => errors.push(WriteError {
                    field: field.clone(),
                    message,
                }),
            },
            WriteRule::Object { rules, .. } => match value {
                Value::Object(inner) => {
                    let fields: Vec<(String, &Value)> =
                        inner.iter().map(|(k, v)| (k.clone(), v)).collect();
                    write_fields(
                        rules, read_only, &fields, value, &field, writes, errors, session,
                    );
                }
                Value::Null => {}
                other => errors.push(WriteError {
                    field,
                    message: format!("{} is not an object", quote(other)),
                }),
            },
            WriteRule::Array { native, rules, .. } => match value {
                Value::Array(items) => {
                    let mut written = Vec::with_capacity(items.len());
                    for (i, item) in items.iter().enumerate() {
                        let at = format!("{field}[{i}]");
                        let Value::Object(inner) = item else {
                            errors.push(WriteError {
                                field: at,
                                message: format!("{} is not an object", quote(item)),
                            });
                            continue;
                        };
                        let fields: Vec<(String, &Value)> =
                            inner.iter().map(|(k, v)| (k.clone(), v)).collect();
                        let mut element_writes = Vec::new();
                        write_fields(
                            rules,
                            read_only,
                            &fields,
                            item,
                            &at,
                            &mut element_writes,
                            errors,
                            session,
                        );
                        let mut element = Value::Object(Map::new());
                        settle(&mut element, element_writes, errors, session);
                        written.push(element);
                    }
                    writes.push(Write {
                        keys: native.clone(),
                        value: Value::Array(written),
                        field,
                        unified: (*value).clone(),
                        reads: None,
                    });
                }
                Value::Null => {}
                other => errors.push(WriteError {
                    field,
                    message: format!("{} is not an array", quote(other)),
                }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let sap = Style::SapOData;
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
        let lookup = inverse(&TransformStep(serde_json::json!({"lookup": {"map": {"APPR": "approved", "WAPPR": "pending_approval"}}})), Style::Maximo, slots)
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
        let id = inverse(&step("{$.siteid}/{value}"), Style::Maximo, slots).unwrap();
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
        let flags = inverse(&step("[{$.a.b}|{$.c}]"), Style::SapOData, slots).unwrap();
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
        let label = inverse(&step("{$.a} ({value})"), Style::Maximo, slots).unwrap();
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
        let e = inverse(&step("{$.a}{value}"), Style::Maximo, slots).unwrap_err();
        assert!(
            e.contains("two placeholders with nothing between them"),
            "{e}"
        );
        let e = inverse(&step("{$.a[0]}-{value}"), Style::Maximo, slots).unwrap_err();
        assert!(
            e.contains("`$.a[0]`, which is not a plain member path"),
            "{e}"
        );
    }
}
