//! A unified record through the write rules: each field's source value and what its
//! inverses write besides, then the values of each native record settled.

use serde_json::{Map, Value};

use super::super::error::quote;
use super::super::transform::{Ctx, Transform};
use super::derive::{Convert, WriteRule};
use super::inverse::Capture;
use super::{ReadOnly, WriteError, joined};
use crate::plugin::Session;

/// One value for one source field, from one unified field, before the values of the
/// whole record are settled.
pub(super) struct Write<'a> {
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
pub(super) fn settle(
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

pub(super) fn set_native(
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
pub(super) fn convert(
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
            .map(|v| (Some(v), captures))
            .map_err(|e| e.to_string()),
    }
}

/// What the fields of one unified record (or of an object inside it) write.
#[allow(clippy::too_many_arguments)]
pub(super) fn write_fields<'r>(
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
