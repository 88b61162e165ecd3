//! Compiling a resolved mapping into an executable [`Plan`].
//!
//! Compilation does everything that does not depend on a record, once: it resolves each
//! target against the unified model, parses every JSONPath (refusing the ones that
//! [`super::limits::refuse`] knows to be pathological), compiles every transform step and
//! checks what can be known of the types. Mapping a record then only walks the plan. All
//! problems are collected, so one `crosswalk mapping check` shows them all.

use std::collections::BTreeSet;

use serde_json::Value;

use std::sync::Arc;

use super::error::{SpecError, SpecErrors, did_you_mean};
use super::limits::{self, MapLimits};
use super::output::Layout;
use super::read::Projection;
use super::resolve::{ResolvedMapping, ResolvedRule};
use super::spec::PluginStep;
use super::transform::{Kind, PluginCall, ResolvePlugin, StepError, Transform};
use crate::model::{Entity, FieldType};
use crate::path::Path;
use crate::plugin::{Binding, Demand, FunctionKind, Plugin, PluginError, PluginSet};

/// A compiled mapping for one system and entity: paths parsed, transforms checked,
/// targets resolved. Cheap to share; mapping a record does not change it.
#[derive(Debug, Clone)]
pub struct Plan {
    pub(super) system: String,
    pub(super) entity: Entity,
    pub(super) pre: Vec<PluginCall>,
    pub(super) rules: Vec<Arc<Rule>>,
    pub(super) post: Vec<PluginCall>,
    /// The plugins the plan calls, by slot.
    pub(super) plugins: Vec<Binding>,
    /// What mapping a record and a batch may take.
    pub(super) limits: MapLimits,
    /// What of a payload the rules read; `None` when a record is read whole (the
    /// rules may read any of it, or a plugin step is given the whole record).
    pub(super) projection: Option<Arc<Projection>>,
    /// Where each rule's value goes in the unified record.
    pub(super) layout: Layout,
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub(super) struct Rule {
    /// The target as written in its scope (`unit_price` inside `lines`).
    pub target: String,
    /// The keys to the target in the output object.
    pub keys: Vec<String>,
    /// The target's model type; `None` for custom fields, which take any value.
    pub ty: Option<&'static FieldType>,
    pub source: Source,
    pub transforms: Vec<Transform>,
    pub required: bool,
    pub default: Option<Value>,
    pub nested: Option<Nested>,
}

/// Where a rule's value comes from.
#[derive(Debug, Clone)]
pub(super) enum Source {
    /// No source: `null`, or the current record for nested rules.
    None,
    Path(Path),
    Const(Value),
    Coalesce(Vec<Path>),
}

impl Source {
    /// The source as written, for error messages.
    pub fn describe(&self) -> Option<String> {
        match self {
            Source::None | Source::Const(_) => None,
            Source::Path(p) => Some(p.as_str().to_owned()),
            Source::Coalesce(ps) => {
                Some(ps.iter().map(Path::as_str).collect::<Vec<_>>().join(" | "))
            }
        }
    }
}

/// Nested rules of an object or array target.
#[derive(Debug, Clone)]
pub(super) struct Nested {
    /// Array target: one output element per source element.
    pub many: bool,
    pub rules: Vec<Arc<Rule>>,
    /// The empty output element (or object).
    pub skeleton: Value,
    /// The size of `skeleton` as JSON, which each element holds in the record.
    pub skeleton_bytes: u64,
    /// Where each nested rule's value goes in an element.
    pub layout: Layout,
}

impl Nested {
    fn new(many: bool, rules: Vec<Arc<Rule>>, skeleton: Value) -> Nested {
        let skeleton_bytes = serde_json::to_vec(&skeleton).map_or(0, |v| v.len() as u64);
        let layout = Layout::new(&skeleton, &rules);
        Nested {
            many,
            rules,
            skeleton,
            skeleton_bytes,
            layout,
        }
    }
}

impl Plan {
    /// Whether running the plan may call a plugin: then it can take as long as the
    /// plugins' time limits, not the microseconds of the built-in transforms.
    pub fn calls_plugins(&self) -> bool {
        !self.plugins.is_empty()
    }

    /// Compiles a resolved mapping; disabled rules are left out. Plugin steps may call
    /// the plugins in `plugins`.
    pub fn compile(mapping: &ResolvedMapping, plugins: &PluginSet) -> Result<Plan, SpecErrors> {
        Plan::compile_over(mapping, plugins, None)
    }

    /// [`Plan::compile`], sharing with `base` (the plan of another mapping of the same
    /// system and entity, compiled from `base_mapping`: the system's default) every
    /// compiled rule that is the same in both, rather than compiling a copy of it. A
    /// connection's override of a field or two then holds little more than its own
    /// rules.
    pub fn compile_over(
        mapping: &ResolvedMapping,
        plugins: &PluginSet,
        base: Option<(&ResolvedMapping, &Plan)>,
    ) -> Result<Plan, SpecErrors> {
        let mut errors = Vec::new();
        let mut slots = Slots::new(plugins);
        let scope = Scope {
            name: mapping.entity.to_string(),
            prefix: String::new(),
            ty: mapping.entity.record_type(),
        };
        let base = base.filter(|(m, p)| {
            m.system == mapping.system && m.entity == mapping.entity && p.entity == mapping.entity
        });
        let shared = base.map(|(m, p)| Shared {
            resolved: &m.rules,
            compiled: &p.rules,
        });
        let pre = compile_record_steps("pre", &mapping.pre, &mut slots, &mut errors);
        let rules = compile_rules(&mapping.rules, &scope, shared, &mut slots, &mut errors);
        let post = compile_record_steps("post", &mapping.post, &mut slots, &mut errors);
        if errors.is_empty() {
            let projection = if pre.is_empty() && post.is_empty() {
                Projection::of(&rules).map(|p| {
                    match base.and_then(|(_, b)| b.projection.as_ref()) {
                        Some(same) if **same == p => Arc::clone(same),
                        _ => Arc::new(p),
                    }
                })
            } else {
                None
            };
            Ok(Plan {
                projection,
                layout: Layout::new(mapping.entity.skeleton(), &rules),
                system: mapping.system.clone(),
                entity: mapping.entity,
                pre,
                rules,
                post,
                plugins: slots.into_used(),
                limits: MapLimits::DEFAULT,
            })
        } else {
            Err(SpecErrors(errors))
        }
    }

    /// What running the plan may use of the plugin pool: one instance of each plugin
    /// it calls, with its binding's memory.
    pub fn plugin_demand(&self) -> Demand {
        Demand::of(&self.plugins)
    }

    /// The plan with other limits than [`MapLimits::DEFAULT`].
    pub fn with_limits(mut self, limits: MapLimits) -> Plan {
        self.limits = limits;
        self
    }

    /// What mapping a record and a batch may take.
    pub fn limits(&self) -> &MapLimits {
        &self.limits
    }

    /// The plugins the plan calls.
    pub fn plugins(&self) -> impl Iterator<Item = &Arc<dyn Plugin>> {
        self.plugins.iter().map(|b| &b.plugin)
    }

    /// The system whose records the plan maps.
    pub fn system(&self) -> &str {
        &self.system
    }

    /// The entity the plan produces.
    pub fn entity(&self) -> Entity {
        self.entity
    }
}

/// The object type that a list of rules fills.
struct Scope {
    /// For messages: `purchase_order`, `lines`.
    name: String,
    /// The targets' prefix in messages: `""`, `lines.`.
    prefix: String,
    ty: &'static FieldType,
}

/// Gives each plugin a plan uses one slot, in the order they are first named.
pub(super) struct Slots<'a> {
    set: &'a PluginSet,
    used: Vec<Binding>,
}

impl<'a> Slots<'a> {
    /// No slot given yet; plugins are taken from `set`.
    pub(super) fn new(set: &'a PluginSet) -> Slots<'a> {
        Slots {
            set,
            used: Vec::new(),
        }
    }

    /// The plugins named so far, by slot.
    pub(super) fn into_used(self) -> Vec<Binding> {
        self.used
    }
}

impl ResolvePlugin for Slots<'_> {
    fn resolve(&mut self, name: &str) -> Result<(usize, Arc<dyn Plugin>), PluginError> {
        if let Some(i) = self.used.iter().position(|b| b.plugin.name() == name) {
            return Ok((i, Arc::clone(&self.used[i].plugin)));
        }
        let binding = self.set.get(name)?.clone();
        let plugin = Arc::clone(&binding.plugin);
        self.used.push(binding);
        Ok((self.used.len() - 1, plugin))
    }
}

fn compile_record_steps(
    stage: &'static str,
    steps: &[PluginStep],
    slots: &mut Slots<'_>,
    errors: &mut Vec<SpecError>,
) -> Vec<PluginCall> {
    steps
        .iter()
        .filter_map(
            |step| match PluginCall::compile(step, FunctionKind::Record, slots) {
                Ok(call) => Some(call),
                Err(e) => {
                    errors.push(SpecError::Plugin {
                        at: format!("`{stage}` step"),
                        error: e,
                    });
                    None
                }
            },
        )
        .collect()
}

/// The rules of a base mapping in one scope, resolved and compiled, to share.
#[derive(Clone, Copy)]
struct Shared<'a> {
    resolved: &'a [ResolvedRule],
    compiled: &'a [Arc<Rule>],
}

impl<'a> Shared<'a> {
    /// The base's rule for the same target, resolved and compiled.
    fn find(self, target: &str) -> Option<(&'a ResolvedRule, &'a Arc<Rule>)> {
        let resolved = self
            .resolved
            .iter()
            .find(|r| !r.disabled && r.spec.target == target)?;
        let compiled = self.compiled.iter().find(|c| c.target == target)?;
        Some((resolved, compiled))
    }
}

fn compile_rules(
    rules: &[ResolvedRule],
    scope: &Scope,
    shared: Option<Shared<'_>>,
    slots: &mut Slots<'_>,
    errors: &mut Vec<SpecError>,
) -> Vec<Arc<Rule>> {
    let mut seen: BTreeSet<Vec<String>> = BTreeSet::new();
    let mut compiled = Vec::new();
    for r in rules.iter().filter(|r| !r.disabled) {
        let full = format!("{}{}", scope.prefix, r.spec.target);
        let before = errors.len();
        let Some((keys, ty)) = resolve_target(scope, &r.spec.target, &full, errors) else {
            continue;
        };
        let base = shared.and_then(|s| s.find(&r.spec.target));
        // The same rule as the base's, calling no plugin (whose slots are the plan's
        // own), is the base's. Its target was checked when the base compiled; only
        // its overlap with this mapping's other targets is left to check.
        let same = base
            .filter(|(resolved, rule)| *resolved == r && !calls_plugin(rule) && rule.keys == keys);
        if let Some(other) = seen
            .iter()
            .find(|k| k.starts_with(&keys) || keys.starts_with(k))
        {
            let hint = if *other == keys {
                String::new()
            } else {
                format!(" (it overlaps `{}{}`)", scope.prefix, other.join("."))
            };
            errors.push(SpecError::DuplicateTarget {
                target: full.clone(),
                hint,
            });
        }
        seen.insert(keys.clone());
        if let Some((_, rule)) = same {
            compiled.push(Arc::clone(rule));
            continue;
        }
        let source = compile_source(r, &full, errors);
        let transforms = compile_transforms(r, &full, slots, errors);
        if r.rules.is_some()
            && (!r.spec.transforms.is_empty() || r.spec.default.is_some() || r.spec.required)
        {
            errors.push(SpecError::NotForNested {
                target: full.clone(),
            });
        }
        let nested = match (&r.rules, ty) {
            (Some(nested), Some(FieldType::Object(_))) => {
                let inner = Scope {
                    name: full.clone(),
                    prefix: format!("{full}."),
                    ty: ty.expect("object"),
                };
                Some(Nested::new(
                    false,
                    compile_rules(nested, &inner, nested_base(base), slots, errors),
                    inner.ty.empty(),
                ))
            }
            (Some(nested), Some(FieldType::Array(item)))
                if matches!(**item, FieldType::Object(_)) =>
            {
                let inner = Scope {
                    name: full.clone(),
                    prefix: format!("{full}."),
                    ty: item,
                };
                Some(Nested::new(
                    true,
                    compile_rules(nested, &inner, nested_base(base), slots, errors),
                    item.empty(),
                ))
            }
            (Some(_), other) => {
                errors.push(SpecError::NestedOnScalar {
                    target: full.clone(),
                    found: other
                        .map(FieldType::describe)
                        .unwrap_or_else(|| "a custom field".into()),
                });
                None
            }
            (None, Some(t @ (FieldType::Object(_) | FieldType::Array(_)))) => {
                errors.push(SpecError::MissingNestedRules {
                    target: full.clone(),
                    found: format!("{} field", t.describe()),
                });
                None
            }
            (None, _) => None,
        };
        if nested.is_none()
            && let Some(ty) = ty
        {
            check_kind(r, &transforms, ty, &full, errors);
        }
        if errors.len() == before {
            compiled.push(Arc::new(Rule {
                target: r.spec.target.clone(),
                keys,
                ty,
                source,
                transforms,
                required: r.spec.required,
                default: r.spec.default.clone(),
                nested,
            }));
        }
    }
    compiled
}

/// The base's nested rules under a rule that differs from the base's, to share those
/// of them that are the same.
fn nested_base<'a>(base: Option<(&'a ResolvedRule, &'a Arc<Rule>)>) -> Option<Shared<'a>> {
    let (resolved, rule) = base?;
    Some(Shared {
        resolved: resolved.rules.as_deref()?,
        compiled: &rule.nested.as_ref()?.rules,
    })
}

/// Whether a compiled rule, or one nested in it, calls a plugin.
fn calls_plugin(rule: &Rule) -> bool {
    rule.transforms
        .iter()
        .any(|t| matches!(t, Transform::Plugin(_)))
        || rule
            .nested
            .as_ref()
            .is_some_and(|n| n.rules.iter().any(|r| calls_plugin(r)))
}

/// Resolves a target against its scope: the keys into the output and the model type
/// (`None` for a custom field).
fn resolve_target(
    scope: &Scope,
    target: &str,
    full: &str,
    errors: &mut Vec<SpecError>,
) -> Option<(Vec<String>, Option<&'static FieldType>)> {
    if let Some(name) = target.strip_prefix("custom_fields.")
        && scope.ty.field("custom_fields").is_some()
    {
        if name.is_empty() {
            errors.push(SpecError::UnknownTarget {
                target: full.into(),
                entity: scope.name.clone(),
                field: String::new(),
                hint: ": a custom field needs a name after `custom_fields.`".into(),
            });
            return None;
        }
        return Some((vec!["custom_fields".into(), name.into()], None));
    }
    let mut ty = scope.ty;
    let mut keys = Vec::new();
    let mut within = scope.name.clone();
    for segment in target.split('.') {
        if let FieldType::Array(_) = ty {
            errors.push(SpecError::UnknownTarget {
                target: full.into(),
                entity: within.clone(),
                field: segment.into(),
                hint: format!(
                    ": `{within}` is an array; map it with nested `rules` and target `{segment}` inside them"
                ),
            });
            return None;
        }
        match ty.field(segment) {
            Some(t) => {
                keys.push(segment.to_owned());
                ty = t;
                within = format!("{}{}", scope.prefix, keys.join("."));
            }
            None => {
                let mut names = ty.field_names();
                if ty.field("custom_fields").is_some() {
                    names.push("custom_fields.<name>");
                }
                let hint = if segment.is_empty() {
                    ": the target has an empty segment".into()
                } else {
                    did_you_mean(segment, names)
                };
                errors.push(SpecError::UnknownTarget {
                    target: full.into(),
                    entity: within.clone(),
                    field: segment.into(),
                    hint,
                });
                return None;
            }
        }
    }
    // The whole `custom_fields` object keeps its type (an object, `{}` when empty);
    // only a single custom field (`custom_fields.<name>`) takes any value.
    let ty = Some(ty);
    Some((keys, ty))
}

fn compile_source(r: &ResolvedRule, full: &str, errors: &mut Vec<SpecError>) -> Source {
    let spec = &r.spec;
    let given: Vec<&str> = [
        spec.path.as_ref().map(|_| "`path`"),
        spec.constant.as_ref().map(|_| "`const`"),
        spec.coalesce.as_ref().map(|_| "`coalesce`"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if given.len() > 1 {
        errors.push(SpecError::ConflictingSources {
            target: full.into(),
            sources: given.join(" and "),
        });
        return Source::None;
    }
    let parse = |text: &str, errors: &mut Vec<SpecError>| match Path::parse(text) {
        Ok(p) => match limits::refuse(p.shape()) {
            None => Some(p),
            Some(reason) => {
                errors.push(SpecError::CostlyPath {
                    target: full.into(),
                    path: text.into(),
                    reason,
                });
                None
            }
        },
        Err(e) => {
            errors.push(SpecError::InvalidPath {
                target: full.into(),
                path: e.query,
                position: e.position,
                message: e.message,
            });
            None
        }
    };
    if let Some(p) = &spec.path {
        return parse(p, errors).map(Source::Path).unwrap_or(Source::None);
    }
    if let Some(v) = &spec.constant {
        return Source::Const(v.clone());
    }
    if let Some(paths) = &spec.coalesce {
        if paths.is_empty() {
            errors.push(SpecError::ConflictingSources {
                target: full.into(),
                sources: "an empty `coalesce` list".into(),
            });
        }
        let parsed: Vec<Path> = paths.iter().filter_map(|p| parse(p, errors)).collect();
        return Source::Coalesce(parsed);
    }
    Source::None
}

fn compile_transforms(
    r: &ResolvedRule,
    full: &str,
    slots: &mut Slots<'_>,
    errors: &mut Vec<SpecError>,
) -> Vec<Transform> {
    let mut out = Vec::new();
    for step in &r.spec.transforms {
        match Transform::compile(step, slots) {
            Ok(t) => out.push(t),
            Err(StepError::Unknown(name)) => errors.push(SpecError::UnknownTransform {
                target: full.into(),
                hint: did_you_mean(&name, super::transform::CATALOG.iter().map(|t| t.name)),
                name,
            }),
            Err(StepError::Args { name, message }) => errors.push(SpecError::TransformArgs {
                target: full.into(),
                transform: name,
                message,
            }),
            Err(StepError::Plugin(error)) => errors.push(SpecError::Plugin {
                at: format!("target `{full}`"),
                error,
            }),
            Err(StepError::Shape(message)) => errors.push(SpecError::TransformArgs {
                target: full.into(),
                transform: step.0.to_string(),
                message,
            }),
        }
    }
    out
}

/// Checks what is known of a rule's output against its target's type.
fn check_kind(
    r: &ResolvedRule,
    transforms: &[Transform],
    ty: &FieldType,
    full: &str,
    errors: &mut Vec<SpecError>,
) {
    let mut kind = match &r.spec.constant {
        Some(v) => Kind::of(v),
        None => Kind::Unknown,
    };
    let mut last = r.spec.constant.as_ref().map(|_| "the constant".to_owned());
    for t in transforms {
        kind = t.output(kind);
        last = Some(format!("transform `{}`", t.name()));
    }
    let mismatch = |found: String| SpecError::TypeMismatch {
        target: full.into(),
        expected: ty.describe(),
        found,
    };
    let by = last.unwrap_or_default();
    let produces = |what: &str| format!("{by} produces {what}");
    if let Some(d) = &r.spec.default
        && !fits_const(d, ty)
    {
        errors.push(mismatch(format!("its `default` is {d}")));
    }
    let error = match (&kind, ty) {
        (Kind::Unknown, _) => None,
        (Kind::OneOf(values), _) => values
            .iter()
            .find(|v| !fits_const(v, ty))
            .map(|v| mismatch(format!("{by} can give {v}"))),
        (
            Kind::String,
            FieldType::String
            | FieldType::Currency
            | FieldType::Enum(_)
            | FieldType::Date
            | FieldType::DateTime,
        ) => None,
        (Kind::Number | Kind::Integer | Kind::Bool, FieldType::String | FieldType::Currency) => {
            None
        }
        (Kind::Number | Kind::Integer, FieldType::Number | FieldType::Integer) => None,
        (Kind::Date | Kind::DateTime, FieldType::String) => None,
        (Kind::Date, FieldType::Date) | (Kind::DateTime, FieldType::DateTime) => None,
        (Kind::String, _) => Some(mismatch(produces("text"))),
        (Kind::Number | Kind::Integer, _) => Some(mismatch(produces("a number"))),
        (Kind::Bool, _) => Some(mismatch(produces("a boolean"))),
        (Kind::Date, _) => Some(mismatch(produces("a date"))),
        (Kind::DateTime, _) => Some(mismatch(produces("a date-time"))),
        (Kind::Array, _) => Some(mismatch(produces("an array"))),
    };
    errors.extend(error);
}

/// Whether a value known in advance fits a type.
fn fits_const(v: &Value, ty: &FieldType) -> bool {
    match (v, ty) {
        (Value::Null, _) => true,
        (Value::String(s), FieldType::Enum(members)) => members.iter().any(|m| m == s),
        (Value::String(s), FieldType::Currency) => is_currency(s),
        (Value::String(s), FieldType::Date) => is_date(s),
        (Value::String(s), FieldType::DateTime) => is_datetime(s),
        (Value::String(_) | Value::Number(_) | Value::Bool(_), FieldType::String) => true,
        (Value::Number(_), FieldType::Number) => true,
        (Value::Number(n), FieldType::Integer) => super::transform::is_integer(n),
        (Value::Object(_), FieldType::Custom) => true,
        _ => false,
    }
}

/// `YYYY-MM-DD`, a real date.
pub(super) fn is_date(s: &str) -> bool {
    s.len() == 10 && chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
}

/// RFC 3339 in UTC with `Z`.
pub(super) fn is_datetime(s: &str) -> bool {
    s.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

/// Three capital letters.
pub(super) fn is_currency(s: &str) -> bool {
    s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::mapping::{Format, MapOptions, MappingSpec, OverrideSpec, resolve};

    const DEFAULT: &str = "system: sap-s4hana\nentity: purchase_order\nrules:\n  - {target: id, path: $.PurchaseOrder}\n  - {target: currency, path: $.DocumentCurrency}\n  - target: lines\n    path: '$.Items[*]'\n    rules:\n      - {target: item_id, path: $.Material}\n      - {target: quantity, path: $.Qty, transforms: [to_number]}\n";

    /// A connection's override shares the base's compiled rules that it leaves as
    /// they are (nested ones too), and maps exactly as a plan compiled on its own.
    #[test]
    fn an_override_shares_the_rules_it_leaves_alone() {
        let default = MappingSpec::parse(DEFAULT, Format::Yaml).unwrap();
        let base_mapping = resolve(&default, None).unwrap();
        let base = Plan::compile(&base_mapping, &PluginSet::new()).unwrap();
        let overrides = OverrideSpec::parse(
            "overrides:\n  - {target: custom_fields.marker, const: m1}\n  - {target: lines.item_id, path: $.Mat2}\n",
            Format::Yaml,
        )
        .unwrap();
        let mapping = resolve(&default, Some(&overrides)).unwrap();
        let shared =
            Plan::compile_over(&mapping, &PluginSet::new(), Some((&base_mapping, &base))).unwrap();
        let alone = Plan::compile(&mapping, &PluginSet::new()).unwrap();
        let rule = |plan: &Plan, target: &str| {
            Arc::clone(plan.rules.iter().find(|r| r.target == target).unwrap())
        };
        assert!(Arc::ptr_eq(&rule(&shared, "id"), &rule(&base, "id")));
        assert!(Arc::ptr_eq(
            &rule(&shared, "currency"),
            &rule(&base, "currency")
        ));
        // `lines` changed under it: its own, with its unchanged sibling shared.
        let (lines, base_lines) = (rule(&shared, "lines"), rule(&base, "lines"));
        assert!(!Arc::ptr_eq(&lines, &base_lines));
        let nested = |r: &Rule, target: &str| {
            Arc::clone(
                r.nested
                    .as_ref()
                    .unwrap()
                    .rules
                    .iter()
                    .find(|r| r.target == target)
                    .unwrap(),
            )
        };
        assert!(Arc::ptr_eq(
            &nested(&lines, "quantity"),
            &nested(&base_lines, "quantity")
        ));
        assert!(!Arc::ptr_eq(
            &nested(&lines, "item_id"),
            &nested(&base_lines, "item_id")
        ));
        let record = json!({"PurchaseOrder": "1", "DocumentCurrency": "EUR", "Items": [{"Material": "a", "Mat2": "b", "Qty": "2"}]});
        let out = shared.map_record(&record, MapOptions::default()).unwrap();
        assert_eq!(
            out,
            alone.map_record(&record, MapOptions::default()).unwrap()
        );
        assert_eq!(out["lines"][0]["item_id"], "b");
        assert_eq!(out["custom_fields"]["marker"], "m1");
        // A base of another entity is not used.
        let vendor = resolve(
            &MappingSpec::parse(
                "system: sap-s4hana\nentity: vendor\nrules:\n  - {target: id, path: $.PurchaseOrder}\n",
                Format::Yaml,
            )
            .unwrap(),
            None,
        )
        .unwrap();
        let vendor_plan = Plan::compile(&vendor, &PluginSet::new()).unwrap();
        let other =
            Plan::compile_over(&mapping, &PluginSet::new(), Some((&vendor, &vendor_plan))).unwrap();
        assert!(!Arc::ptr_eq(&rule(&other, "id"), &rule(&vendor_plan, "id")));
    }
}
