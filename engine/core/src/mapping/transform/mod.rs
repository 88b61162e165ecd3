//! The built-in transforms, one per file, each with its documentation and tests.
//!
//! A transform step is compiled once from its spec ([`TransformStep`]) into a
//! [`Transform`], which checks its arguments up front; applying it to a value then
//! cannot fail for a reason the spec could have told. Every transform passes `null`
//! through unchanged, except `default`. [`CATALOG`] lists them all: the JSON Schema of
//! the mapping language and the docs' table are checked against it.

mod concat;
mod date;
mod datetime;
mod default;
mod divide;
mod lookup;
mod lower;
mod multiply;
mod null_if_empty;
mod round;
mod split;
mod template;
mod to_bool;
mod to_integer;
mod to_number;
mod to_string;
mod trim;
mod upper;

pub(crate) use template::Piece;

use serde::de::DeserializeOwned;
use serde_json::{Number, Value};

use super::spec::{PluginStep, TransformStep};
use crate::path::Path;
use crate::plugin::{FunctionKind, Plugin, PluginError, Session};

/// A built-in transform's name and what it does.
#[derive(Debug, Clone, Copy)]
pub struct TransformDef {
    /// The name used in specs.
    pub name: &'static str,
    /// One line on what it does.
    pub summary: &'static str,
    /// The arguments it takes, in words; `None` when it takes none.
    pub arguments: Option<&'static str>,
    /// A step that uses it, as JSON text (`{"round": 2}`): what a console offers
    /// to start from. Every example compiles (a test checks it).
    pub example: &'static str,
}

/// Every built-in transform.
pub const CATALOG: &[TransformDef] = &[
    to_string::DEF,
    to_number::DEF,
    to_integer::DEF,
    to_bool::DEF,
    trim::DEF,
    upper::DEF,
    lower::DEF,
    date::DEF,
    datetime::DEF,
    lookup::DEF,
    template::DEF,
    concat::DEF,
    split::DEF,
    round::DEF,
    multiply::DEF,
    divide::DEF,
    default::DEF,
    null_if_empty::DEF,
];

/// A compiled transform step.
#[derive(Debug, Clone)]
pub enum Transform {
    /// See [`to_string`](to_string/index.html).
    ToString,
    /// Decimal strings to numbers.
    ToNumber,
    /// Numbers and digit strings to integers.
    ToInteger,
    /// Flags to booleans.
    ToBool(to_bool::ToBool),
    /// Strips surrounding white space.
    Trim,
    /// Upper-cases.
    Upper,
    /// Lower-cases.
    Lower,
    /// Dates to `YYYY-MM-DD`.
    Date(date::DateArgs),
    /// Date-times to RFC 3339 UTC.
    DateTime(datetime::DateTimeArgs),
    /// Value maps.
    Lookup(lookup::Lookup),
    /// String templates over the record.
    Template(template::Template),
    /// Joins an array of values.
    Concat(concat::Concat),
    /// Splits a string.
    Split(split::Split),
    /// Rounds a number.
    Round(round::Round),
    /// Multiplies a number.
    Multiply(Operand),
    /// Divides a number.
    Divide(Operand),
    /// Replaces null.
    Default(Value),
    /// Turns empty values into null.
    NullIfEmpty,
    /// A plugin's field-level function.
    Plugin(PluginCall),
}

/// A compiled call of a plugin function.
#[derive(Debug, Clone)]
pub struct PluginCall {
    /// The plugin's slot in the plan (its instance in a [`Session`]).
    pub slot: usize,
    /// The plugin's name.
    pub plugin: String,
    /// The function.
    pub function: String,
    /// The static arguments, as JSON text.
    pub args: String,
}

/// Finds the plugins that steps name, and gives each a slot in the plan.
pub trait ResolvePlugin {
    /// The slot and plugin called `name`.
    fn resolve(&mut self, name: &str) -> Result<(usize, std::sync::Arc<dyn Plugin>), PluginError>;
}

impl PluginCall {
    /// Compiles a plugin step: the plugin is loaded, the function exists with `kind`,
    /// and the arguments fit its schema.
    pub fn compile(
        step: &PluginStep,
        kind: FunctionKind,
        plugins: &mut dyn ResolvePlugin,
    ) -> Result<PluginCall, PluginError> {
        let (slot, plugin) = plugins.resolve(&step.plugin)?;
        plugin.function(&step.function, kind)?;
        plugin.check_args(&step.function, &step.args)?;
        Ok(PluginCall {
            slot,
            plugin: step.plugin.clone(),
            function: step.function.clone(),
            args: step.args.to_string(),
        })
    }
}

/// What a transform can read besides its input: the record (or array element) the rule
/// is evaluated against, and the plugin instances of the batch.
pub struct Ctx<'a> {
    /// The current record, `$` of the rule's paths.
    pub record: &'a Value,
    /// The plugin instances of the request or batch.
    pub session: &'a mut Session,
}

/// What is known, before any record is seen, of the values a step produces: enough to
/// catch `to_number` into a date field when a mapping is compiled.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Anything: a path copy, or a transform that keeps its input's type.
    Unknown,
    /// Strings.
    String,
    /// Numbers.
    Number,
    /// Whole numbers.
    Integer,
    /// Booleans.
    Bool,
    /// `YYYY-MM-DD` strings.
    Date,
    /// RFC 3339 UTC strings.
    DateTime,
    /// Arrays.
    Array,
    /// One of these values (a lookup table's results, a constant).
    OneOf(Vec<Value>),
}

impl Kind {
    /// The kind of a constant value.
    pub fn of(value: &Value) -> Kind {
        Kind::OneOf(vec![value.clone()])
    }
}

/// The factor of `multiply` or the divisor of `divide`: a number, or a path in the record.
#[derive(Debug, Clone)]
pub enum Operand {
    /// A constant.
    Number(f64),
    /// A singular path in the current record.
    Path(Path),
}

impl Transform {
    /// Calls `read` with each path the step reads in the record (an operand's, a
    /// template's placeholders), besides its input.
    pub(crate) fn paths(&self, read: &mut dyn FnMut(&Path)) {
        match self {
            Transform::Multiply(Operand::Path(p)) | Transform::Divide(Operand::Path(p)) => read(p),
            Transform::Template(t) => t.paths(read),
            _ => {}
        }
    }

    /// Compiles one step; the error says what is wrong with it, for the caller to wrap
    /// with the target.
    pub fn compile(
        step: &TransformStep,
        plugins: &mut dyn ResolvePlugin,
    ) -> Result<Transform, StepError> {
        if let Value::Object(map) = &step.0
            && map.contains_key("plugin")
        {
            let spec: PluginStep = serde_json::from_value(step.0.clone()).map_err(|e| {
                StepError::Shape(format!("a plugin step is {{plugin, function, args}}: {e}"))
            })?;
            return PluginCall::compile(&spec, FunctionKind::Field, plugins)
                .map(Transform::Plugin)
                .map_err(StepError::Plugin);
        }
        let (name, args) = match &step.0 {
            Value::String(name) => (name.as_str(), None),
            Value::Object(map) if map.len() == 1 => {
                let (name, args) = map.iter().next().expect("one entry");
                (name.as_str(), Some(args))
            }
            Value::Object(map) => {
                return Err(StepError::Shape(format!(
                    "a transform step is a name or a map with one key (the name), but this one has {} keys: {}",
                    map.len(),
                    map.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
            other => {
                return Err(StepError::Shape(format!(
                    "a transform step is a name or a one-key map, not {}",
                    super::error::type_name(other)
                )));
            }
        };
        let args_error = |message: String| StepError::Args {
            name: name.to_owned(),
            message,
        };
        let t = match name {
            "to_string" => no_args(args).map(|()| Transform::ToString),
            "to_number" => no_args(args).map(|()| Transform::ToNumber),
            "to_integer" => no_args(args).map(|()| Transform::ToInteger),
            "to_bool" => to_bool::ToBool::compile(args).map(Transform::ToBool),
            "trim" => no_args(args).map(|()| Transform::Trim),
            "upper" => no_args(args).map(|()| Transform::Upper),
            "lower" => no_args(args).map(|()| Transform::Lower),
            "date" => date::DateArgs::compile(args).map(Transform::Date),
            "datetime" => datetime::DateTimeArgs::compile(args).map(Transform::DateTime),
            "lookup" => lookup::Lookup::compile(args).map(Transform::Lookup),
            "template" => template::Template::compile(args).map(Transform::Template),
            "concat" => concat::Concat::compile(args).map(Transform::Concat),
            "split" => split::Split::compile(args).map(Transform::Split),
            "round" => round::Round::compile(args).map(Transform::Round),
            "multiply" => Operand::compile(args).map(Transform::Multiply),
            "divide" => divide::compile(args).map(Transform::Divide),
            "default" => match args {
                Some(v) => Ok(Transform::Default(v.clone())),
                None => Err("needs the value to use for null, e.g. `{default: 0}`".to_owned()),
            },
            "null_if_empty" => no_args(args).map(|()| Transform::NullIfEmpty),
            _ => return Err(StepError::Unknown(name.to_owned())),
        };
        t.map_err(args_error)
    }

    /// The transform's name.
    pub fn name(&self) -> &'static str {
        match self {
            Transform::ToString => "to_string",
            Transform::ToNumber => "to_number",
            Transform::ToInteger => "to_integer",
            Transform::ToBool(_) => "to_bool",
            Transform::Trim => "trim",
            Transform::Upper => "upper",
            Transform::Lower => "lower",
            Transform::Date(_) => "date",
            Transform::DateTime(_) => "datetime",
            Transform::Lookup(_) => "lookup",
            Transform::Template(_) => "template",
            Transform::Concat(_) => "concat",
            Transform::Split(_) => "split",
            Transform::Round(_) => "round",
            Transform::Multiply(_) => "multiply",
            Transform::Divide(_) => "divide",
            Transform::Default(_) => "default",
            Transform::NullIfEmpty => "null_if_empty",
            Transform::Plugin(_) => "plugin",
        }
    }

    /// The transform's name in messages: a plugin call is `plugin.function`.
    pub fn label(&self) -> String {
        match self {
            Transform::Plugin(call) => format!("{}.{}", call.plugin, call.function),
            other => other.name().to_owned(),
        }
    }

    /// Applies the transform. `null` passes through every transform but `default`.
    /// The error says why without naming the target; the caller adds it.
    pub fn apply(&self, value: Value, ctx: &mut Ctx<'_>) -> Result<Value, StepFailure> {
        self.apply_builtin(value, ctx)
            .map_err(|failure| match failure {
                Ok(message) => StepFailure::Refused(message),
                Err(plugin) => StepFailure::Plugin(plugin),
            })
    }

    /// [`Transform::apply`], with a built-in transform's refusal as `Ok` and a plugin
    /// call's failure as `Err` (every built-in transform says why in a message).
    fn apply_builtin(
        &self,
        value: Value,
        ctx: &mut Ctx<'_>,
    ) -> Result<Value, Result<String, PluginError>> {
        if value.is_null()
            && !matches!(
                self,
                Transform::Default(_) | Transform::Template(_) | Transform::Plugin(_)
            )
        {
            return Ok(Value::Null);
        }
        let refused = match self {
            Transform::Plugin(call) => {
                return ctx
                    .session
                    .instance(call.slot)
                    .call_field(&call.function, &value, &call.args)
                    .map_err(Err);
            }
            Transform::ToString => to_string::apply(value),
            Transform::ToNumber => to_number::apply(value),
            Transform::ToInteger => to_integer::apply(value),
            Transform::ToBool(t) => t.apply(value),
            Transform::Trim => trim::apply(value),
            Transform::Upper => upper::apply(value),
            Transform::Lower => lower::apply(value),
            Transform::Date(t) => t.apply(value),
            Transform::DateTime(t) => t.apply(value),
            Transform::Lookup(t) => t.apply(value),
            Transform::Template(t) => t.apply(value, ctx),
            Transform::Concat(t) => t.apply(value),
            Transform::Split(t) => t.apply(value),
            Transform::Round(t) => t.apply(value),
            Transform::Multiply(by) => multiply::apply(value, by, ctx),
            Transform::Divide(by) => divide::apply(value, by, ctx),
            Transform::Default(d) => Ok(default::apply(value, d)),
            Transform::NullIfEmpty => Ok(null_if_empty::apply(value)),
        };
        refused.map_err(Ok)
    }

    /// What the step produces, given what it is fed.
    pub fn output(&self, input: Kind) -> Kind {
        match self {
            Transform::ToString
            | Transform::Trim
            | Transform::Upper
            | Transform::Lower
            | Transform::Template(_)
            | Transform::Concat(_) => Kind::String,
            Transform::ToNumber
            | Transform::Round(_)
            | Transform::Multiply(_)
            | Transform::Divide(_) => Kind::Number,
            Transform::ToInteger => Kind::Integer,
            Transform::ToBool(_) => Kind::Bool,
            Transform::Date(_) => Kind::Date,
            Transform::DateTime(_) => Kind::DateTime,
            Transform::Lookup(t) => t.output(),
            Transform::Split(t) if t.index.is_some() => Kind::String,
            Transform::Split(_) => Kind::Array,
            Transform::Default(d) => match input {
                Kind::OneOf(mut values) => {
                    values.push(d.clone());
                    Kind::OneOf(values)
                }
                // Known kinds stay as they are; the compiler checks the default's own
                // type apart.
                other => other,
            },
            Transform::NullIfEmpty => input,
            Transform::Plugin(_) => Kind::Unknown,
        }
    }
}

/// Why a step failed on a value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StepFailure {
    /// A built-in transform refused its input, saying why.
    #[error("{0}")]
    Refused(String),
    /// A plugin call failed: the plugin's own error, a trap, a limit, or an answer that
    /// does not fit.
    #[error("{0}")]
    Plugin(PluginError),
}

/// Why a step did not compile.
#[derive(Debug, Clone, PartialEq)]
pub enum StepError {
    /// Not a name or a one-key map.
    Shape(String),
    /// No transform has this name.
    Unknown(String),
    /// A plugin step that names a plugin, function or arguments that do not fit.
    Plugin(PluginError),
    /// The transform does not take these arguments.
    Args {
        /// The transform.
        name: String,
        /// What is wrong.
        message: String,
    },
}

impl Operand {
    /// `4`, `{by: 4}` or `{by_path: "$.x"}`.
    fn compile(args: Option<&Value>) -> Result<Operand, String> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Args {
            by: Option<f64>,
            by_path: Option<String>,
        }
        match args {
            Some(Value::Number(n)) => Ok(Operand::Number(n.as_f64().unwrap_or(f64::NAN))),
            Some(v @ Value::Object(_)) => match object_args::<Args>(v)? {
                Args { by: Some(n), by_path: None } => Ok(Operand::Number(n)),
                Args { by: None, by_path: Some(p) } => Path::parse(&p)
                    .map_err(|e| format!("`by_path`: {e}"))
                    .and_then(|path| {
                        if path.is_singular() {
                            Ok(Operand::Path(path))
                        } else {
                            Err(format!("`by_path` must be a singular query (names and indexes only), not `{p}`"))
                        }
                    }),
                _ => Err("give exactly one of `by` (a number) and `by_path` (a JSONPath)".into()),
            },
            _ => Err("needs a number, `{by: <number>}` or `{by_path: <JSONPath>}`".into()),
        }
    }

    /// The operand's value for one record; `None` when its path gives nothing.
    fn value(&self, ctx: &Ctx<'_>) -> Result<Option<f64>, String> {
        match self {
            Operand::Number(n) => Ok(Some(*n)),
            Operand::Path(p) => match p.node(ctx.record) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => to_number::read(v)
                    .map_err(|m| format!("`{p}` gives {}: {m}", super::error::quote(v))),
            },
        }
    }
}

/// Checks that a transform got no arguments.
fn no_args(args: Option<&Value>) -> Result<(), String> {
    match args {
        None | Some(Value::Null) => Ok(()),
        Some(v) => Err(format!(
            "takes no arguments, but got {}",
            super::error::quote(v)
        )),
    }
}

/// Records an arguments object into its typed form; unknown keys are errors.
fn object_args<T: DeserializeOwned>(args: &Value) -> Result<T, String> {
    serde_json::from_value(args.clone()).map_err(|e| e.to_string())
}

/// A JSON number from an `f64`: whole numbers become integers (`100.000` → `100`), and
/// binary noise past ten decimals is dropped (`0.1 * 3` → `0.3`).
pub(crate) fn number(f: f64) -> Result<Value, String> {
    normalise(f).map(json_number)
}

/// What [`number`] makes of an `f64`, still an `f64`: a whole number as it is (`-0` as
/// `0`), binary noise past ten decimals dropped, and an infinite or NaN result an error.
///
/// The JSON number [`json_number`] writes of it reads back as this same `f64` (a whole
/// number below 2⁵³ is exact, and JSON's shortest form of any other `f64` reads back
/// as it), so numeric steps may hand it on as it is ([`Carried::Number`]).
pub(crate) fn normalise(f: f64) -> Result<f64, String> {
    if !f.is_finite() {
        return Err("the result is not a finite number".into());
    }
    if f.fract() == 0.0 && f.abs() < EXACT {
        return Ok((f as i64) as f64);
    }
    // Only where ten decimals are within f64's precision; larger values stay as they are.
    let cleaned = if f.abs() < 1e5 {
        (f * 1e10).round() / 1e10
    } else {
        f
    };
    Ok(if cleaned.fract() == 0.0 { f } else { cleaned })
}

/// 2⁵³: whole numbers below it are exact in an `f64`, and are written as integers.
const EXACT: f64 = 9_007_199_254_740_992.0;

/// A [`normalise`]d number as JSON.
fn json_number(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < EXACT {
        Value::Number(Number::from(f as i64))
    } else {
        // Normalised numbers are finite, so this is never null.
        Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

/// A value between two steps of a rule: JSON, or the number a numeric step gave, which
/// the numeric steps after it (`to_number`, `multiply`, `divide`, `round`) take as it
/// is instead of having it written as JSON text and read back. It is the same number
/// either way (see [`normalise`]); only the last step's is written.
#[derive(Debug, Clone)]
pub(crate) enum Carried {
    Json(Value),
    Number(f64),
}

impl Carried {
    /// The value as JSON.
    pub(crate) fn into_value(self) -> Value {
        match self {
            Carried::Json(v) => v,
            Carried::Number(f) => json_number(f),
        }
    }
}

impl Transform {
    /// [`Transform::apply`] on a [`Carried`] value: numeric steps on a number keep it
    /// an `f64`; any other step gets it as JSON.
    pub(crate) fn apply_carried(
        &self,
        value: Carried,
        ctx: &mut Ctx<'_>,
    ) -> Result<Carried, StepFailure> {
        let number = |n: Result<Option<f64>, String>| match n {
            Ok(Some(f)) => Ok(Carried::Number(f)),
            Ok(None) => Ok(Carried::Json(Value::Null)),
            Err(m) => Err(StepFailure::Refused(m)),
        };
        match (self, value) {
            (Transform::ToNumber, Carried::Number(f)) => Ok(Carried::Number(f)),
            (Transform::ToNumber, Carried::Json(text @ Value::String(_))) => {
                number(to_number::read(&text).and_then(|n| n.map(normalise).transpose()))
            }
            (Transform::Multiply(by), Carried::Number(f)) => number(multiply::of(f, by, ctx)),
            (Transform::Divide(by), Carried::Number(f)) => number(divide::of(f, by, ctx)),
            (Transform::Round(r), Carried::Number(f)) => number(r.of(f).map(Some)),
            (_, value) => self.apply(value.into_value(), ctx).map(Carried::Json),
        }
    }
}

/// Whether a number is an integer, of any length: source systems' ids and counts can
/// pass `u64`, and their digits are kept.
pub(crate) fn is_integer(n: &Number) -> bool {
    n.as_i128().is_some()
        || (!n.is_f64() && {
            let text = n.to_string();
            let digits = text.strip_prefix('-').unwrap_or(&text);
            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
        })
}

/// The text of a scalar, for transforms that work on text (`lookup`, `concat`, …).
pub(crate) fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        // An integer keeps its digits, however many (numbers are kept as written).
        Value::Number(n) if is_integer(n) => Some(n.to_string()),
        Value::Number(n) => Some(match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9e15 => format!("{}", f as i64),
            Some(f) => Number::from_f64(f).map_or_else(|| n.to_string(), |n| n.to_string()),
            None => n.to_string(),
        }),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The message for a value of the wrong type.
pub(crate) fn expected(what: &str, value: &Value) -> String {
    format!("expects {what}, not {}", super::error::type_name(value))
}

#[cfg(test)]
pub(crate) mod testing {
    //! `give(step, input, expected)`: one-line transform tests.
    use super::*;
    use crate::mapping::spec::TransformStep;

    /// Resolves no plugin: transform tests use built-ins only.
    pub struct NoPlugins;

    impl ResolvePlugin for NoPlugins {
        fn resolve(
            &mut self,
            name: &str,
        ) -> Result<(usize, std::sync::Arc<dyn Plugin>), PluginError> {
            Err(PluginError::UnknownPlugin {
                plugin: name.to_owned(),
                hint: String::new(),
            })
        }
    }

    pub fn compile(step: Value) -> Transform {
        Transform::compile(&TransformStep(step), &mut NoPlugins).unwrap_or_else(|e| panic!("{e:?}"))
    }

    /// Applies `step` to `input` against `record` and returns the result.
    pub fn run_on(step: Value, input: Value, record: &Value) -> Result<Value, String> {
        let mut session = Session::new(&[]);
        compile(step)
            .apply(
                input,
                &mut Ctx {
                    record,
                    session: &mut session,
                },
            )
            .map_err(|e| e.to_string())
    }

    /// Asserts that `step` turns `input` into `expected`.
    pub fn give(step: Value, input: Value, expected: Value) {
        assert_eq!(
            run_on(step.clone(), input.clone(), &Value::Null),
            Ok(expected),
            "{step} on {input}"
        );
    }

    /// Asserts that `step` fails on `input` with a message containing `part`.
    pub fn fails(step: Value, input: Value, part: &str) {
        match run_on(step.clone(), input.clone(), &Value::Null) {
            Err(m) => assert!(m.contains(part), "{step} on {input}: `{m}` lacks `{part}`"),
            Ok(v) => panic!("{step} on {input} gave {v}, expected an error"),
        }
    }

    /// Asserts that `step` does not compile, with a message containing `part`.
    pub fn rejects(step: Value, part: &str) {
        match Transform::compile(&TransformStep(step.clone()), &mut NoPlugins) {
            Err(StepError::Args { message, .. }) | Err(StepError::Shape(message)) => {
                assert!(message.contains(part), "{step}: `{message}` lacks `{part}`")
            }
            Err(StepError::Unknown(n)) => panic!("{step}: unknown transform {n}"),
            Err(StepError::Plugin(e)) => panic!("{step}: {e}"),
            Ok(_) => panic!("{step} compiled, expected an error"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn null_passes_through() {
        for def in CATALOG {
            let step = match def.name {
                "lookup" => json!({"lookup": {"map": {"a": "b"}}}),
                "template" | "default" | "concat" | "split" | "round" | "multiply" | "divide" => {
                    continue;
                }
                name => json!(name),
            };
            give(step, Value::Null, Value::Null);
        }
    }

    /// The examples the catalog offers (the console starts a step from one) are
    /// steps of the transform they illustrate, and compile.
    #[test]
    fn every_example_compiles() {
        for def in CATALOG {
            let step: Value = serde_json::from_str(def.example)
                .unwrap_or_else(|e| panic!("{}: example is not JSON: {e}", def.name));
            let named = match &step {
                Value::String(name) => name.clone(),
                Value::Object(map) => map.keys().next().cloned().unwrap_or_default(),
                other => panic!("{}: example {other} is not a step", def.name),
            };
            assert_eq!(
                named, def.name,
                "the example of `{}` names `{named}`",
                def.name
            );
            assert_eq!(
                def.arguments.is_some(),
                step.is_object(),
                "`{}`: an example with arguments goes with a description of them",
                def.name
            );
            Transform::compile(&TransformStep(step), &mut NoPlugins)
                .unwrap_or_else(|e| panic!("{}: example does not compile: {e:?}", def.name));
        }
    }

    #[test]
    fn step_shapes() {
        assert!(matches!(
            Transform::compile(&TransformStep(json!("to_numbr")), &mut NoPlugins),
            Err(StepError::Unknown(n)) if n == "to_numbr"
        ));
        assert!(matches!(
            Transform::compile(&TransformStep(json!({"plugin": "uom", "function": "convert"})), &mut NoPlugins),
            Err(StepError::Plugin(PluginError::UnknownPlugin { plugin, .. })) if plugin == "uom"
        ));
        rejects(json!({"round": 2, "trim": null}), "one key");
        rejects(json!(7), "not a number");
        rejects(json!({"trim": true}), "takes no arguments");
    }

    #[test]
    fn numbers_are_normalised() {
        assert_eq!(number(100.0), Ok(json!(100)));
        assert_eq!(number(0.1 * 3.0), Ok(json!(0.3)));
        assert!(number(f64::INFINITY).is_err());
        assert_eq!(number(1e300), Ok(json!(1e300)));
        assert_eq!(number(123456.789), Ok(json!(123456.789)));
        assert_eq!(number(-0.0), Ok(json!(0)));
    }

    /// A normalised number written as JSON reads back as itself, so numeric steps can
    /// hand each other the `f64`.
    #[test]
    fn normalised_numbers_read_back_as_themselves() {
        let mut x: f64 = 0.1;
        for f in [
            0.0,
            -0.0,
            1.0,
            0.3,
            1e300,
            -2.5e-7,
            123456.789,
            9.007_199_254_740_993e15,
            1.0 / 3.0,
        ]
        .into_iter()
        .chain(std::iter::from_fn(|| {
            x = x * 7.3 + 0.013;
            (x < 1e12).then_some(x)
        })) {
            let normal = normalise(f).expect("finite");
            let written = json_number(normal);
            assert_eq!(written.as_f64(), Some(normal), "{f} → {written}");
            assert_eq!(number(f), Ok(written));
        }
    }

    /// A rule's numeric steps on carried numbers give what they give on JSON.
    #[test]
    fn carried_numbers_give_the_json_steps_results() {
        let record = json!({"per": "3", "none": null});
        let chains = [
            json!(["to_number", {"divide": {"by_path": "$.per"}}, {"multiply": 7}, {"round": 2}]),
            json!(["to_number", {"multiply": {"by_path": "$.none"}}, "to_number"]),
            json!(["to_number", {"divide": 3}, "to_string"]),
            json!(["to_number", "to_number", {"round": 4}]),
        ];
        for chain in chains {
            for input in [
                json!("10.00"),
                json!(" 2.5- "),
                json!(""),
                json!(4),
                json!("x"),
            ] {
                let steps: Vec<Transform> = chain
                    .as_array()
                    .unwrap()
                    .iter()
                    .cloned()
                    .map(compile)
                    .collect();
                let mut session = crate::plugin::Session::new(&[]);
                let mut ctx = Ctx {
                    record: &record,
                    session: &mut session,
                };
                let json = steps
                    .iter()
                    .try_fold(input.clone(), |v, t| t.apply(v, &mut ctx));
                let carried = steps
                    .iter()
                    .try_fold(Carried::Json(input.clone()), |v, t| {
                        t.apply_carried(v, &mut ctx)
                    })
                    .map(Carried::into_value);
                assert_eq!(carried, json, "{chain} on {input}");
            }
        }
    }
}
