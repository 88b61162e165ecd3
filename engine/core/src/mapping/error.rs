//! What can go wrong in a mapping, named precisely.
//!
//! Two families: [`SpecError`] for a mapping or override that cannot be applied (found
//! when it is parsed, resolved or compiled, so nothing is applied), and [`FieldError`] /
//! [`RecordError`] for a record that a valid mapping cannot map. Every error names what
//! a user needs to find the problem: the target field, the source path, the transform,
//! the offending value.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::path::Limit;
use crate::plugin::PluginError;

/// The longest value quoted in an error message, in characters.
pub const MAX_QUOTED_VALUE: usize = 64;

/// A problem with a mapping or override document.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    /// The text is not valid YAML/JSON, or has a key or value of the wrong shape.
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line (0 when unknown).
        line: usize,
        /// 1-based column (0 when unknown).
        column: usize,
        /// What is wrong there.
        message: String,
    },
    /// The target is neither a field of the model nor under `custom_fields.`.
    #[error("target `{target}`: {entity} has no field `{field}`{hint}")]
    UnknownTarget {
        /// The target as written.
        target: String,
        /// The entity (or nested object) that was searched.
        entity: String,
        /// The segment that was not found.
        field: String,
        /// A suggestion (", did you mean `x`?") or the empty string.
        hint: String,
    },
    /// A JSONPath that does not parse.
    #[error("target `{target}`: invalid JSONPath `{path}` at position {position}: {message}")]
    InvalidPath {
        /// The target whose rule holds the path.
        target: String,
        /// The query as written.
        path: String,
        /// 1-based position in the query.
        position: usize,
        /// What the parser expected.
        message: String,
    },
    /// A JSONPath that parses but is refused as too costly to evaluate (see
    /// [`super::limits::refuse`]).
    #[error("target `{target}`: JSONPath `{path}` is refused: {reason}")]
    CostlyPath {
        /// The target whose rule holds the path.
        target: String,
        /// The query as written.
        path: String,
        /// Why, naming the limit.
        reason: String,
    },
    /// A transform name that does not exist.
    #[error("target `{target}`: unknown transform `{name}`{hint}")]
    UnknownTransform {
        /// The target whose chain holds the step.
        target: String,
        /// The name as written.
        name: String,
        /// A suggestion or the empty string.
        hint: String,
    },
    /// A transform given arguments it does not take.
    #[error("target `{target}`: transform `{transform}`: {message}")]
    TransformArgs {
        /// The target whose chain holds the step.
        target: String,
        /// The transform.
        transform: String,
        /// What is wrong with the arguments.
        message: String,
    },
    /// A value whose type is known before any record is seen does not fit the target.
    #[error("target `{target}`: expects {expected}, but {found}")]
    TypeMismatch {
        /// The target.
        target: String,
        /// The target's type in the model.
        expected: String,
        /// What the rule produces and why that is known.
        found: String,
    },
    /// Two rules fill the same target (or one fills a part of what another fills whole).
    #[error("target `{target}` is mapped twice{hint}")]
    DuplicateTarget {
        /// The target.
        target: String,
        /// Which other rule overlaps, or the empty string.
        hint: String,
    },
    /// A rule with more than one of `path`, `const`, `coalesce`.
    #[error("target `{target}`: a rule has one source, but this one has {sources}")]
    ConflictingSources {
        /// The target.
        target: String,
        /// The source keys found.
        sources: String,
    },
    /// Nested rules on a target that is neither an object nor an array of objects.
    #[error(
        "target `{target}`: nested `rules` need an object or array target, but `{target}` is {found}"
    )]
    NestedOnScalar {
        /// The target.
        target: String,
        /// The target's type.
        found: String,
    },
    /// `transforms`, `default` or `required` on a rule with nested rules.
    #[error(
        "target `{target}`: `transforms`, `default` and `required` do not apply to a target with nested `rules`; put them on the nested rules"
    )]
    NotForNested {
        /// The target.
        target: String,
    },
    /// An object or array target mapped without nested rules.
    #[error(
        "target `{target}` is {found}: map it with nested `rules` (or map its fields as `{target}.<field>`)"
    )]
    MissingNestedRules {
        /// The target.
        target: String,
        /// The target's type.
        found: String,
    },
    /// An override that adds a target without giving it a source.
    #[error(
        "target `{target}`: the default mapping does not map it, so the override needs a source (`path`, `const` or `coalesce`)"
    )]
    MissingSource {
        /// The target.
        target: String,
    },
    /// An override entry that changes nothing, or `disable` together with other keys.
    #[error("target `{target}`: {message}")]
    BadOverride {
        /// The target.
        target: String,
        /// What is wrong.
        message: String,
    },
    /// An override or mapping for another system or entity than the one it is used for.
    #[error("this document is for {what} `{found}`, but it is applied to `{expected}`")]
    WrongScope {
        /// `system` or `entity`.
        what: &'static str,
        /// The one it is applied to.
        expected: String,
        /// The one the document names.
        found: String,
    },
    /// A plugin step naming a plugin, function or arguments that do not fit.
    #[error("{at}: {error}")]
    Plugin {
        /// Where: the target or the `pre`/`post` step.
        at: String,
        /// What is wrong.
        error: crate::plugin::PluginError,
    },
    /// A system that Crosswalk does not know.
    #[error("unknown system `{system}`; the systems are {known}")]
    UnknownSystem {
        /// The system as given.
        system: String,
        /// The known systems.
        known: String,
    },
    /// A system that has no default mapping for an entity.
    #[error("system `{system}` has no mapping for `{entity}`; it maps {known}")]
    NoDefaultMapping {
        /// The system.
        system: String,
        /// The entity.
        entity: String,
        /// The entities it maps.
        known: String,
    },
}

impl SpecError {
    /// The target whose rule the problem is in, where there is one: what a console
    /// marks the problem at.
    pub fn target(&self) -> Option<&str> {
        use SpecError as E;
        match self {
            E::UnknownTarget { target, .. }
            | E::InvalidPath { target, .. }
            | E::CostlyPath { target, .. }
            | E::UnknownTransform { target, .. }
            | E::TransformArgs { target, .. }
            | E::TypeMismatch { target, .. }
            | E::DuplicateTarget { target, .. }
            | E::ConflictingSources { target, .. }
            | E::NestedOnScalar { target, .. }
            | E::NotForNested { target }
            | E::MissingNestedRules { target, .. }
            | E::MissingSource { target }
            | E::BadOverride { target, .. } => Some(target),
            // `at` is "target `…`", or "`pre` step" for a record step.
            E::Plugin { at, .. } => at
                .strip_prefix("target `")
                .and_then(|t| t.strip_suffix('`')),
            E::Syntax { .. }
            | E::WrongScope { .. }
            | E::UnknownSystem { .. }
            | E::NoDefaultMapping { .. } => None,
        }
    }

    /// The 1-based position in the JSONPath where it stops being valid, for a path
    /// that does not parse.
    pub fn position(&self) -> Option<usize> {
        match self {
            SpecError::InvalidPath { position, .. } => Some(*position),
            _ => None,
        }
    }
}

/// Every problem found in a document: compilation reports them all, not the first.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecErrors(pub Vec<SpecError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{one}"),
            many => {
                write!(f, "{} problems:", many.len())?;
                for e in many {
                    write!(f, "\n  - {e}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for SpecErrors {}

impl From<SpecError> for SpecErrors {
    fn from(e: SpecError) -> Self {
        SpecErrors(vec![e])
    }
}

/// A value that a rule could not turn into its target field.
///
/// It travels as a value: to the record's `errors` (serialised as the API shows it,
/// with its [`FieldCause`] as `cause`), and beside the record in [`super::Batch`] to
/// the service's monitor, which logs it without reading it back from the JSON.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("target `{target}`{}: {message}{}", path.as_ref().map(|p| format!(" (from `{p}`)")).unwrap_or_default(), value.as_ref().map(|v| format!("; value: {v}")).unwrap_or_default())]
pub struct FieldError {
    /// The target, with the element index inside arrays (`lines[2].unit_price`).
    pub target: String,
    /// The source path (or paths), when the rule reads one.
    pub path: Option<String>,
    /// The offending value as JSON text, truncated to [`MAX_QUOTED_VALUE`] characters.
    pub value: Option<String>,
    /// What went wrong, naming the transform where one failed.
    pub message: String,
    /// What failed.
    pub cause: FieldCause,
}

/// What failed in a [`FieldError`]. (A `required` target with no value is not a field
/// error: it fails the record, as [`RecordError::Required`].)
#[derive(Debug, Clone, PartialEq)]
pub enum FieldCause {
    /// A built-in transform refused the value it was given; its name.
    Transform(&'static str),
    /// A plugin function failed: its own error, a trap, a limit, or an answer that
    /// does not fit.
    Plugin(PluginError),
    /// The value does not fit the target's type in the model.
    Type,
    /// Evaluating the rule's source stopped at a limit.
    Limit(Limit),
    /// Nested rules were given a value that is not an object.
    NotAnObject,
}

impl FieldCause {
    /// The cause's name, as the API writes it in `cause`.
    pub fn as_str(&self) -> &'static str {
        match self {
            FieldCause::Transform(_) => "transform",
            FieldCause::Plugin(_) => "plugin",
            FieldCause::Type => "type",
            FieldCause::Limit(_) => "limit",
            FieldCause::NotAnObject => "not_an_object",
        }
    }

    /// The limit that stopped the rule, when one did.
    pub fn limit(&self) -> Option<Limit> {
        match self {
            FieldCause::Limit(l) => Some(*l),
            _ => None,
        }
    }

    /// The plugin that failed, when one did.
    pub fn plugin(&self) -> Option<&str> {
        match self {
            FieldCause::Plugin(e) => e.plugin(),
            _ => None,
        }
    }
}

/// The API's form: `target`, `path`, `value`, `message` and `cause`, then what the cause
/// names: `transform`, `plugin`, or `limit` and `max`.
impl Serialize for FieldError {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("target", &self.target)?;
        map.serialize_entry("path", &self.path)?;
        map.serialize_entry("value", &self.value)?;
        map.serialize_entry("message", &self.message)?;
        map.serialize_entry("cause", self.cause.as_str())?;
        match &self.cause {
            FieldCause::Transform(name) => map.serialize_entry("transform", name)?,
            FieldCause::Plugin(e) => {
                if let Some(plugin) = e.plugin() {
                    map.serialize_entry("plugin", plugin)?;
                }
            }
            FieldCause::Limit(limit) => {
                map.serialize_entry("limit", limit.name)?;
                map.serialize_entry("max", &limit.max)?;
            }
            FieldCause::Type | FieldCause::NotAnObject => {}
        }
        map.end()
    }
}

/// A record that could not be mapped at all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecordError {
    /// A field failed and the mapping is strict.
    #[error("{0}")]
    Field(Box<FieldError>),
    /// A `required` target has no value.
    #[error("target `{target}` is required, but {} gave no value", path.as_ref().map(|p| format!("`{p}`")).unwrap_or_else(|| "the rule".into()))]
    Required {
        /// The target.
        target: String,
        /// The source path, when the rule reads one.
        path: Option<String>,
    },
    /// A record-level plugin step failed for this record.
    #[error("{stage} step: {error}")]
    Plugin {
        /// `pre` or `post`.
        stage: &'static str,
        /// The plugin's error.
        error: crate::plugin::PluginError,
    },
    /// The record is not a JSON object.
    #[error("a source record must be a JSON object, not {found}")]
    NotAnObject {
        /// The JSON type that was found.
        found: &'static str,
    },
    /// The mapped record is larger than `max_record_bytes`.
    #[error("the mapped record is larger than {} bytes (limit `{}`)", .0.max, .0.name)]
    TooLarge(Limit),
    /// The records of the batch before this one already take `max_answer_bytes`.
    #[error("the records mapped before it already take more than {} bytes (limit `{}`)", .0.max, .0.name)]
    AnswerFull(Limit),
}

impl RecordError {
    /// The limit that failed the record, when one did: a size limit, or a budget that
    /// stopped a field of a strict mapping.
    pub fn limit(&self) -> Option<Limit> {
        match self {
            RecordError::TooLarge(l) | RecordError::AnswerFull(l) => Some(*l),
            RecordError::Field(e) => e.cause.limit(),
            _ => None,
        }
    }
}

/// Quotes a value for an error message: its JSON text, cut to [`MAX_QUOTED_VALUE`]
/// characters. Only the start of a large value is serialised.
pub fn quote(value: &Value) -> String {
    // Enough bytes for one character more than is kept, however wide they are.
    let mut head = Head(Vec::with_capacity(64), MAX_QUOTED_VALUE * 4 + 4);
    let _ = serde_json::to_writer(&mut head, value);
    let text = String::from_utf8_lossy(&head.0);
    if text.chars().count() <= MAX_QUOTED_VALUE {
        text.into_owned()
    } else {
        let cut: String = text.chars().take(MAX_QUOTED_VALUE).collect();
        format!("{cut}…")
    }
}

/// Keeps the first bytes written to it, up to its cap, then fails.
struct Head(Vec<u8>, usize);

impl std::io::Write for Head {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = self.1 - self.0.len();
        if buf.len() > room {
            self.0.extend_from_slice(&buf[..room]);
            return Err(std::io::Error::other("enough"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The JSON type name of a value, for messages.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The closest of `candidates` to `word`, as a hint (", did you mean `x`?").
///
/// Names are compared without case, `-` and `_` (`toUpper`, `to-upper`); a candidate
/// within a few edits is closest, else one that the word starts or ends with, or that
/// starts with the word (`uppercase` → `upper`, `to_num` → `to_number`).
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let plain = |s: &str| -> String {
        s.chars()
            .filter(|c| !matches!(c, '-' | '_'))
            .flat_map(char::to_lowercase)
            .collect()
    };
    let w = plain(word);
    let candidates: Vec<&str> = candidates.into_iter().collect();
    let close = candidates
        .iter()
        .map(|c| (edit_distance(&w, &plain(c)), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min();
    let contained = || {
        candidates
            .iter()
            .filter(|c| {
                let c = plain(c);
                c.len() >= 3
                    && w.len() >= 3
                    && (w.starts_with(&c) || w.ends_with(&c) || c.starts_with(&w))
            })
            .max_by_key(|c| c.len())
            .map(|c| (0, *c))
    };
    close
        .or_else(contained)
        .map(|(_, c)| format!(", did you mean `{c}`?"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_truncated() {
        let v = Value::String("x".repeat(500));
        let q = quote(&v);
        assert_eq!(q.chars().count(), MAX_QUOTED_VALUE + 1);
        assert!(q.ends_with('…'));
        assert_eq!(q, format!("\"{}…", "x".repeat(MAX_QUOTED_VALUE - 1)));
        let wide = Value::String("é".repeat(500));
        assert_eq!(quote(&wide).chars().count(), MAX_QUOTED_VALUE + 1);
        assert_eq!(quote(&serde_json::json!([1, "a"])), "[1,\"a\"]");
    }

    #[test]
    fn suggestions_pick_the_closest() {
        assert_eq!(
            did_you_mean("totl_amount", ["total_amount", "status"]),
            ", did you mean `total_amount`?"
        );
        assert_eq!(did_you_mean("zzz", ["total_amount"]), "");
        let transforms = ["upper", "lower", "to_number", "to_string", "trim", "date"];
        for (word, meant) in [
            ("uppercase", "upper"),
            ("toLower", "lower"),
            ("to-number", "to_number"),
            ("to_num", "to_number"),
            ("tostring", "to_string"),
        ] {
            assert_eq!(
                did_you_mean(word, transforms),
                format!(", did you mean `{meant}`?"),
                "{word}"
            );
        }
        assert_eq!(did_you_mean("concatenate_all", transforms), "");
    }
}
