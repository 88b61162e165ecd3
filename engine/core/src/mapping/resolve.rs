//! Layering a connection's overrides on a system's default mapping.
//!
//! The result, a [`ResolvedMapping`], is what actually runs and what `crosswalk mapping
//! show` prints: every target with its source, transforms and [`Origin`]. Resolving only
//! merges documents; whether the merged rules make sense is checked when the resolved
//! mapping is compiled, so a default and its overrides are validated together.

use schemars::JsonSchema;
use serde::Serialize;

use super::error::{SpecError, SpecErrors};
use super::spec::{MappingSpec, OverrideRule, OverrideSpec, PluginStep, RuleSpec};
use crate::model::Entity;

/// Where a rule of a resolved mapping comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The system's default mapping, unchanged.
    Default,
    /// Changed, disabled or added by the connection's overrides.
    Override,
    /// A custom field added by the connection's overrides.
    Custom,
}

impl Origin {
    /// The origin's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Default => "default",
            Origin::Override => "override",
            Origin::Custom => "custom",
        }
    }
}

/// A mapping with its overrides applied.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ResolvedMapping {
    /// The source system.
    pub system: String,
    /// The entity.
    pub entity: Entity,
    /// Record-level plugin steps before the rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre: Vec<PluginStep>,
    /// The rules in order, disabled ones included (and marked).
    pub rules: Vec<ResolvedRule>,
    /// Record-level plugin steps after the rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post: Vec<PluginStep>,
}

/// One rule of a resolved mapping.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ResolvedRule {
    /// The rule as it runs (its nested rules are in `rules` below).
    #[serde(flatten)]
    pub spec: RuleSpec,
    /// Where it comes from.
    pub origin: Origin,
    /// Whether the overrides disabled it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
    /// Its nested rules, for object and array targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<ResolvedRule>>,
}

impl ResolvedRule {
    fn from_spec(mut spec: RuleSpec, origin: Origin) -> Self {
        let nested = spec.rules.take().map(|rules| {
            rules
                .into_iter()
                .map(|r| ResolvedRule::from_spec(r, origin))
                .collect()
        });
        ResolvedRule {
            spec,
            origin,
            disabled: false,
            rules: nested,
        }
    }
}

impl ResolvedMapping {
    /// A mapping without overrides.
    pub fn from_spec(spec: &MappingSpec) -> Self {
        ResolvedMapping {
            system: spec.system.clone(),
            entity: spec.entity,
            pre: spec.pre.clone(),
            post: spec.post.clone(),
            rules: spec
                .rules
                .iter()
                .cloned()
                .map(|r| ResolvedRule::from_spec(r, Origin::Default))
                .collect(),
        }
    }

    /// Applies `overrides` to `default`. Every problem is reported; nothing is merged
    /// partially.
    pub fn resolve(default: &MappingSpec, overrides: &OverrideSpec) -> Result<Self, SpecErrors> {
        let mut errors = Vec::new();
        if let Some(system) = &overrides.system
            && system != &default.system
        {
            errors.push(SpecError::WrongScope {
                what: "system",
                expected: default.system.clone(),
                found: system.clone(),
            });
        }
        if let Some(entity) = overrides.entity
            && entity != default.entity
        {
            errors.push(SpecError::WrongScope {
                what: "entity",
                expected: default.entity.to_string(),
                found: entity.to_string(),
            });
        }
        let mut resolved = ResolvedMapping::from_spec(default);
        let mut named = std::collections::BTreeSet::new();
        if let Some(pre) = &overrides.pre {
            resolved.pre = pre.clone();
        }
        if let Some(post) = &overrides.post {
            resolved.post = post.clone();
        }
        for o in &overrides.overrides {
            // Two entries for one target would silently merge; say so instead.
            if !named.insert(o.target.as_str()) {
                errors.push(SpecError::DuplicateTarget {
                    target: o.target.clone(),
                    hint: " (two override entries name it)".into(),
                });
                continue;
            }
            if let Err(e) = apply(&mut resolved.rules, &o.target, o) {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            Ok(resolved)
        } else {
            Err(SpecErrors(errors))
        }
    }

    /// The rules flattened to one row per target (`lines.unit_price`), in order.
    pub fn rows(&self) -> Vec<(String, &ResolvedRule)> {
        fn walk<'a>(
            prefix: &str,
            rules: &'a [ResolvedRule],
            out: &mut Vec<(String, &'a ResolvedRule)>,
        ) {
            for r in rules {
                let target = format!("{prefix}{}", r.spec.target);
                out.push((target.clone(), r));
                if let Some(nested) = &r.rules {
                    walk(&format!("{target}."), nested, out);
                }
            }
        }
        let mut out = Vec::new();
        walk("", &self.rules, &mut out);
        out
    }
}

/// Applies one override to `rules`, where `target` is relative to them.
fn apply(rules: &mut Vec<ResolvedRule>, target: &str, o: &OverrideRule) -> Result<(), SpecError> {
    if let Some(rule) = rules.iter_mut().find(|r| r.spec.target == target) {
        return modify(rule, o);
    }
    if let Some(parent) = rules.iter_mut().find(|r| {
        r.rules.is_some()
            && target.len() > r.spec.target.len()
            && target.starts_with(r.spec.target.as_str())
            && target.as_bytes()[r.spec.target.len()] == b'.'
    }) {
        let rest = target[parent.spec.target.len() + 1..].to_owned();
        return apply(parent.rules.as_mut().expect("nested"), &rest, o);
    }
    if o.disable {
        return Err(SpecError::BadOverride {
            target: o.target.clone(),
            message: "`disable` names a target that the default mapping does not map".into(),
        });
    }
    if o.path.is_none() && o.constant.is_none() && o.coalesce.is_none() && o.rules.is_none() {
        return Err(SpecError::MissingSource {
            target: o.target.clone(),
        });
    }
    let origin = if o.target.starts_with("custom_fields.") {
        Origin::Custom
    } else {
        Origin::Override
    };
    let spec = RuleSpec {
        target: target.to_owned(),
        path: o.path.clone(),
        constant: o.constant.clone(),
        coalesce: o.coalesce.clone(),
        transforms: o.transforms.clone().unwrap_or_default(),
        required: o.required.unwrap_or(false),
        default: o.default.clone(),
        rules: o.rules.clone(),
        write: o.write.clone(),
        description: o.description.clone(),
    };
    rules.push(ResolvedRule::from_spec(spec, origin));
    Ok(())
}

fn modify(rule: &mut ResolvedRule, o: &OverrideRule) -> Result<(), SpecError> {
    let changes = [
        o.path.is_some(),
        o.constant.is_some(),
        o.coalesce.is_some(),
        o.transforms.is_some(),
        o.required.is_some(),
        o.default.is_some(),
        o.rules.is_some(),
        o.write.is_some(),
        o.description.is_some(),
    ];
    let changed = changes.iter().filter(|c| **c).count();
    if o.disable {
        if changed > 0 {
            return Err(SpecError::BadOverride {
                target: o.target.clone(),
                message: "`disable: true` stands alone: remove the other keys, or drop `disable` to change the rule".into(),
            });
        }
        rule.disabled = true;
        rule.origin = Origin::Override;
        return Ok(());
    }
    if changed == 0 {
        return Err(SpecError::BadOverride {
            target: o.target.clone(),
            message: "the override changes nothing: give a source (`path`, `const`, `coalesce`), `transforms`, `required`, `default`, `rules`, `write` or `disable`".into(),
        });
    }
    let spec = &mut rule.spec;
    if o.path.is_some() || o.constant.is_some() || o.coalesce.is_some() {
        spec.path = o.path.clone();
        spec.constant = o.constant.clone();
        spec.coalesce = o.coalesce.clone();
    }
    if let Some(t) = &o.transforms {
        spec.transforms = t.clone();
    }
    if let Some(r) = o.required {
        spec.required = r;
    }
    if o.default.is_some() {
        spec.default = o.default.clone();
    }
    if let Some(d) = &o.description {
        spec.description = Some(d.clone());
    }
    if o.write.is_some() {
        spec.write = o.write.clone();
    }
    if let Some(nested) = &o.rules {
        rule.rules = Some(
            nested
                .iter()
                .cloned()
                .map(|r| ResolvedRule::from_spec(r, Origin::Override))
                .collect(),
        );
    }
    rule.origin = Origin::Override;
    Ok(())
}
