//! The write rules of a resolved mapping: for each target, how its value becomes its
//! source value and where that goes, or why it is read-only.

use super::super::compile::Slots;
use super::super::error::SpecError;
use super::super::resolve::ResolvedRule;
use super::super::spec::TransformStep;
use super::super::transform::{StepError, Transform};
use super::inverse::{BuiltInsOnly, Inverse, ValueStyle, inverse, plain_path};
use super::{ReadOnly, joined};
use crate::model::Entity;

/// How a scalar target's value becomes its source value.
#[derive(Debug, Clone)]
pub(super) enum Convert {
    /// The inverses of the read transforms, last first.
    Inverses(Vec<Inverse>),
    /// An explicit write rule's transforms, in order.
    Forward(Vec<Transform>),
}

/// One writable target.
#[derive(Debug, Clone)]
pub(super) enum WriteRule {
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
    pub(super) fn calls_plugins(&self) -> bool {
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

    pub(super) fn target(&self) -> &str {
        match self {
            WriteRule::Field { target, .. }
            | WriteRule::Object { target, .. }
            | WriteRule::Array { target, .. } => target,
        }
    }
}

/// What deriving finds besides write rules, and the plugins the inverses call.
pub(super) struct Found<'a, 's> {
    pub(super) read_only: &'a mut Vec<ReadOnly>,
    pub(super) invalid: &'a mut Vec<SpecError>,
    pub(super) slots: &'a mut Slots<'s>,
}

/// The write rule of an explicit `write`, or the error that names its target.
pub(super) fn explicit(
    rule: &ResolvedRule,
    full: &str,
    found: &mut Found<'_, '_>,
) -> Option<WriteRule> {
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
                    StepError::Shape(m) => m,
                    StepError::Unknown(name) => {
                        format!("no built-in transform is called `{name}`")
                    }
                    StepError::Plugin(e) => e.to_string(),
                    StepError::Args { name, message } => {
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
pub(super) fn derive_rule(
    rule: &ResolvedRule,
    prefix: &str,
    style: ValueStyle,
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
pub(super) fn reads(steps: &[TransformStep]) -> Option<Vec<Transform>> {
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
pub(super) fn refuse(
    read_only: &mut Vec<ReadOnly>,
    target: &str,
    reason: String,
) -> Option<WriteRule> {
    read_only.push(ReadOnly {
        target: target.to_owned(),
        reason,
    });
    None
}
