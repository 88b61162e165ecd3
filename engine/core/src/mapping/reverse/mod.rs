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
//!
//! # Layout
//!
//! - `inverse`: the inverse of each transform — built-ins, templates, plugin functions —
//!   and of plain member paths.
//! - `derive`: the write rules of a resolved mapping, and its read-only targets.
//! - `apply`: the fields of a unified record through the write rules, and the values
//!   of source fields that several fields write, settled.

mod apply;
mod derive;
mod inverse;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

use super::compile::Slots;
use super::error::{SpecErrors, quote};
use super::resolve::ResolvedMapping;
use super::spec::PluginStep;
use super::transform::PluginCall;
use crate::model::Entity;
use crate::plugin::{Binding, CallCounts, Capacity, Demand, FunctionKind, PluginSet, Session};
use apply::{settle, write_fields};
use derive::{Convert, Found, WriteRule, derive_rule};
pub use inverse::ValueStyle;
use inverse::{Inverse, Unpiece, plugin_inverse};

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

impl WritePlan {
    /// The reverse of a resolved mapping whose plugin steps call the plugins in
    /// `plugins`; an explicit write rule that is not valid (a path that is not a plain
    /// member path, a transform that does not compile or calls a plugin) is an error
    /// naming its target.
    pub fn derive(
        resolved: &ResolvedMapping,
        style: ValueStyle,
        plugins: &PluginSet,
    ) -> Result<WritePlan, SpecErrors> {
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

    /// What writing may use of the plugin pool: one instance of each plugin the
    /// inverses call, with its binding's memory.
    pub fn plugin_demand(&self) -> Demand {
        Demand::of(&self.plugins)
    }

    /// [`WritePlan::to_native`], with what the plugin inverses it called logged and
    /// how their calls ended, for the connection's health and error log.
    pub fn write(&self, unified: &Value) -> Written {
        self.write_in(unified, Session::new(&self.plugins))
    }

    /// [`WritePlan::write`] under `grant`: the inverses' instances are the grant's
    /// lease, and their calls spend its budget and stop when it is cancelled.
    pub fn write_granted(&self, unified: &Value, grant: &dyn Capacity) -> Written {
        self.write_in(unified, Session::granted(&self.plugins, grant))
    }

    fn write_in(&self, unified: &Value, mut session: Session) -> Written {
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
    /// What the plugins logged (bounded).
    pub log: Vec<crate::plugin::LogLine>,
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
