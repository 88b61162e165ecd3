//! Running a [`Plan`] on source records.
//!
//! A batch of records shares one [`Session`] of plugin instances: in the service, one
//! leased under the request's [`Capacity`] and spending its plugin time budget. The `pre` plugin
//! steps run on the whole batch (one call per step), then each record starts as the
//! entity's skeleton (every field empty) and each rule fills its target: evaluate the
//! source, run the transform chain, apply the default, fit the value to the target's
//! model type, check `required`. A field that fails either fails the record (`strict`)
//! or becomes `null` with an entry in the record's `errors`. Last, the `post` steps run
//! on the batch of unified records, which carry their source as `remote_data` for them.
//!
//! Mapping is bounded by the plan's [`MapLimits`]: each rule evaluates its paths within
//! the budget a [`RecordBudget`] gives it (a rule over budget is a field error naming the
//! limit), the values copied and the field errors count against `max_record_bytes`, a
//! mapped record is measured against it, and the records of a batch stop being mapped
//! once together they pass `max_answer_bytes`.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::output::{self, Fields, Record, Slot};

use super::compile::{Nested, Plan, Rule, Source, is_currency, is_date, is_datetime};
use super::error::{FieldCause, FieldError, RecordError, quote, type_name};
use super::limits::{MapLimits, json_size};
use super::transform::{Carried, Ctx, PluginCall, StepFailure, Transform, is_integer, number};
use crate::model::FieldType;
use crate::path::{Budget, OverBudget, RecordBudget};
use crate::plugin::{CallCounts, Capacity, PluginError, Session};

/// How records are mapped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MapOptions {
    /// A field-level failure fails the whole record, instead of giving `null` and an
    /// entry in the record's `errors`.
    pub strict: bool,
    /// Add the raw source record to the output as `remote_data`.
    pub remote_data: bool,
}

/// The result of mapping a batch: one result per source record, in order, and the
/// plugins' log lines.
#[derive(Debug)]
pub struct Batch<R = Value> {
    /// A unified record (a value, or a [`Record`]'s JSON text), or why the record could
    /// not be mapped. A record whose fields failed lists them in its `errors`, as the
    /// API shows them.
    pub records: Vec<Result<R, RecordError>>,
    /// The fields that failed in each record, as values: one list per record, in order
    /// (empty for a record with none, or that failed as a whole).
    pub field_errors: Vec<Vec<FieldError>>,
    /// What the plugins logged (bounded).
    pub log: Vec<crate::plugin::LogLine>,
    /// How the plugin calls of the batch ended, by plugin name.
    pub plugin_calls: Vec<(String, CallCounts)>,
}

impl Plan {
    /// Parses a payload's text (one record, or a collection in its envelope, as
    /// [`Payload::unwrap`](super::Payload::unwrap) takes it off) into what mapping it
    /// with `options` reads: members no rule reads are skipped, not built (see
    /// [`read`](super::read)). The records map exactly as if parsed whole; with
    /// `remote_data`, or a plan whose rules may read anything, they are parsed whole.
    /// Invalid JSON is `serde_json`'s error.
    pub fn parse_source(&self, text: &[u8], options: MapOptions) -> serde_json::Result<Value> {
        match &self.projection {
            Some(projection) if !options.remote_data => projection.parse(text),
            _ => serde_json::from_slice(text),
        }
    }

    /// Maps one source record to a unified record.
    pub fn map_record(&self, source: &Value, options: MapOptions) -> Result<Value, RecordError> {
        let mut batch = self.map_batch(std::slice::from_ref(source), options);
        batch.records.pop().expect("one result per record")
    }

    /// Maps a batch of source records, with one instance of each plugin for the batch,
    /// leased from no share and without a time budget (for the command line).
    pub fn map_batch(&self, sources: &[Value], options: MapOptions) -> Batch {
        self.map_batch_in(sources, options, Session::new(&self.plugins))
    }

    /// Maps a batch of source records under `grant`: its plugin instances are the
    /// grant's lease, their calls together spend one budget of the grant's, and stop
    /// when the grant is cancelled.
    pub fn map_batch_granted(
        &self,
        sources: &[Value],
        options: MapOptions,
        grant: &dyn Capacity,
    ) -> Batch {
        self.map_batch_in(sources, options, Session::granted(&self.plugins, grant))
    }

    /// [`Plan::map_batch`], each record written as JSON text from the plan's layout
    /// instead of built as a value: what an answer that is JSON embeds.
    pub fn map_batch_to_json(&self, sources: &[Value], options: MapOptions) -> Batch<Record> {
        self.map_batch_in(sources, options, Session::new(&self.plugins))
    }

    /// [`Plan::map_batch_granted`], each record written as JSON text.
    pub fn map_batch_to_json_granted(
        &self,
        sources: &[Value],
        options: MapOptions,
        grant: &dyn Capacity,
    ) -> Batch<Record> {
        self.map_batch_in(sources, options, Session::granted(&self.plugins, grant))
    }

    fn map_batch_in<R: Form>(
        &self,
        sources: &[Value],
        options: MapOptions,
        mut session: Session,
    ) -> Batch<R> {
        let mut inputs: Vec<Result<Value, RecordError>> = Vec::new();
        if !self.pre.is_empty() {
            inputs = sources
                .iter()
                .map(|s| check_object(s).map(|()| s.clone()))
                .collect();
            for step in &self.pre {
                run_record_step("pre", step, &mut inputs, &mut session);
            }
        }
        // The records past `max_answer_bytes` are not mapped.
        let (mut answer_bytes, mut full) = (0u64, false);
        let mut field_errors = Vec::with_capacity(sources.len());
        let mut mapped: Vec<Result<R, RecordError>> = sources
            .iter()
            .enumerate()
            .map(|(i, source)| {
                field_errors.push(Vec::new());
                if full {
                    return Err(RecordError::AnswerFull(self.limits.answer_bytes()));
                }
                let source = match inputs.get(i) {
                    Some(Ok(pre)) => pre,
                    Some(Err(e)) => return Err(e.clone()),
                    None => source,
                };
                check_object(source)?;
                let (record, errors, bytes) = self.map_one(source, options, &mut session)?;
                field_errors[i] = errors;
                answer_bytes += bytes;
                if answer_bytes > self.limits.max_answer_bytes {
                    full = true;
                    return Err(RecordError::AnswerFull(self.limits.answer_bytes()));
                }
                Ok(record)
            })
            .collect();
        if !self.post.is_empty() {
            let mut values: Vec<Result<Value, RecordError>> =
                mapped.into_iter().map(|r| r.map(R::into_value)).collect();
            attach_remote_data(&mut values, sources);
            for step in &self.post {
                run_record_step("post", step, &mut values, &mut session);
            }
            for record in values.iter_mut().flatten() {
                if let Value::Object(map) = record {
                    map.shift_remove("remote_data");
                }
            }
            // A record a step failed is not mapped: its fields did not fail on their own.
            for (record, errors) in values.iter().zip(field_errors.iter_mut()) {
                if record.is_err() {
                    errors.clear();
                }
            }
            mapped = values.into_iter().map(|r| r.map(R::from_value)).collect();
        }
        if options.remote_data {
            mapped = mapped
                .into_iter()
                .zip(sources)
                .map(|(r, source)| r.map(|r| r.with_remote_data(source)))
                .collect();
        }
        Batch {
            records: mapped,
            field_errors,
            log: session.take_log(),
            plugin_calls: session.take_calls(),
        }
    }

    /// Maps one record; with its field errors, and its size as compact JSON.
    fn map_one<R: Form>(
        &self,
        source: &Value,
        options: MapOptions,
        session: &mut Session,
    ) -> Result<(R, Vec<FieldError>, u64), RecordError> {
        let mut run = Run {
            options,
            limits: &self.limits,
            errors: Vec::new(),
            session,
            budget: RecordBudget::new(&self.limits.path, self.limits.record_bytes()),
        };
        let fields = run_rules(&self.rules, source, "", &mut run)?;
        let errors = (!run.errors.is_empty())
            .then(|| serde_json::to_value(&run.errors).expect("field errors serialize"));
        let (record, bytes) = R::finish(self, fields, errors)?;
        Ok((record, run.errors, bytes))
    }
}

/// The form a batch hands its records out in: values, or JSON text.
trait Form: Sized {
    /// The record of a plan's filled `fields` and its field `errors` (a list), with
    /// its size as compact JSON; too large for `max_record_bytes` is an error.
    fn finish(
        plan: &Plan,
        fields: Fields,
        errors: Option<Value>,
    ) -> Result<(Self, u64), RecordError>;
    fn into_value(self) -> Value;
    fn from_value(value: Value) -> Self;
    /// The record with its source as `remote_data`.
    fn with_remote_data(self, source: &Value) -> Self;
}

impl Form for Value {
    fn finish(
        plan: &Plan,
        fields: Fields,
        errors: Option<Value>,
    ) -> Result<(Value, u64), RecordError> {
        let mut record = plan.layout.value(&plan.rules, fields);
        if let (Some(errors), Value::Object(map)) = (errors, &mut record) {
            map.insert("errors".into(), errors);
        }
        let bytes = json_size(&record, plan.limits.max_record_bytes)
            .ok_or(RecordError::TooLarge(plan.limits.record_bytes()))?;
        Ok((record, bytes))
    }

    fn into_value(self) -> Value {
        self
    }

    fn from_value(value: Value) -> Value {
        value
    }

    fn with_remote_data(mut self, source: &Value) -> Value {
        if let Value::Object(map) = &mut self {
            map.insert("remote_data".into(), source.clone());
        }
        self
    }
}

impl Form for Record {
    fn finish(
        plan: &Plan,
        fields: Fields,
        errors: Option<Value>,
    ) -> Result<(Record, u64), RecordError> {
        let mut out = Vec::with_capacity(512);
        output::write_record(
            &plan.layout,
            &plan.rules,
            &fields,
            errors.as_ref(),
            &mut out,
        );
        let bytes = out.len() as u64;
        if bytes > plan.limits.max_record_bytes {
            return Err(RecordError::TooLarge(plan.limits.record_bytes()));
        }
        Ok((output::record(out), bytes))
    }

    fn into_value(self) -> Value {
        self.to_value()
    }

    fn from_value(value: Value) -> Record {
        Record::from_value(&value)
    }

    fn with_remote_data(self, source: &Value) -> Record {
        self.with_member("remote_data", source)
    }
}

/// What the rules of one record share while it is mapped.
struct Run<'a> {
    options: MapOptions,
    limits: &'a MapLimits,
    /// The field errors so far.
    errors: Vec<FieldError>,
    session: &'a mut Session,
    /// What the record's paths have spent, and its bytes.
    budget: RecordBudget,
}

impl Run<'_> {
    /// Records a field error, or fails the record when `strict` (or the field is
    /// required: a required field that cannot be converted has no value). The errors
    /// count against the record's bytes.
    fn fail(&mut self, e: FieldError, strict: bool) -> Result<(), RecordError> {
        if strict || self.options.strict {
            return Err(RecordError::Field(Box::new(e)));
        }
        let bytes = (e.target.len()
            + e.path.as_ref().map_or(0, String::len)
            + e.value.as_ref().map_or(0, String::len)
            + e.message.len()
            + 64) as u64;
        self.budget
            .hold(bytes)
            .map_err(|_| RecordError::TooLarge(self.limits.record_bytes()))?;
        self.errors.push(e);
        Ok(())
    }

    /// The field error of a rule stopped by its budget.
    fn over_budget(rule: &Rule, prefix: &str, over: OverBudget) -> FieldError {
        FieldError {
            target: format!("{prefix}{}", rule.target),
            path: rule.source.describe(),
            value: None,
            message: over.to_string(),
            cause: FieldCause::Limit(over.limit),
        }
    }
}

/// Adds each source record to its unified record as `remote_data`.
fn attach_remote_data(mapped: &mut [Result<Value, RecordError>], sources: &[Value]) {
    for (record, source) in mapped.iter_mut().zip(sources) {
        if let Ok(Value::Object(map)) = record {
            map.insert("remote_data".into(), source.clone());
        }
    }
}

fn check_object(source: &Value) -> Result<(), RecordError> {
    if source.is_object() {
        Ok(())
    } else {
        Err(RecordError::NotAnObject {
            found: type_name(source),
        })
    }
}

/// Runs a record-level plugin step on every record of the batch that is still good:
/// one call for the batch. If that call fails as a whole (a trap, a timeout, a batch
/// over the size limit), each record is tried on its own, so that one bad record fails
/// only itself.
fn run_record_step(
    stage: &'static str,
    step: &PluginCall,
    records: &mut [Result<Value, RecordError>],
    session: &mut Session,
) {
    let good: Vec<usize> = (0..records.len()).filter(|i| records[*i].is_ok()).collect();
    if good.is_empty() {
        return;
    }
    let inputs: Vec<Value> = good
        .iter()
        .map(|i| records[*i].as_ref().expect("good").clone())
        .collect();
    let instance = session.instance(step.slot);
    let results = match instance.call_records(&step.function, &inputs, &step.args) {
        Ok(results) => results,
        Err(_) if inputs.len() > 1 => inputs
            .iter()
            .map(|one| {
                instance
                    .call_records(&step.function, std::slice::from_ref(one), &step.args)
                    .and_then(|mut r| r.pop().expect("one result per record"))
            })
            .collect(),
        Err(error) => vec![Err(error)],
    };
    for ((i, result), before) in good.into_iter().zip(results).zip(inputs) {
        let checked = result.and_then(|after| {
            let checked = if stage == "post" {
                check_post_output(&before, after)
            } else if after.is_object() {
                Ok(after)
            } else {
                Err(format!(
                    "{} where a record (an object) was expected",
                    type_name(&after)
                ))
            };
            checked.map_err(|message| PluginError::BadOutput {
                plugin: step.plugin.clone(),
                function: step.function.clone(),
                message,
            })
        });
        records[i] = checked.map_err(|error| RecordError::Plugin { stage, error });
    }
}

/// What a `post` step may do to a unified record: change its fields, not the shape.
/// Fields it leaves out keep their value; it may not add fields, change `id`, or make
/// `custom_fields` anything but an object.
fn check_post_output(before: &Value, after: Value) -> Result<Value, String> {
    let (Value::Object(before), Value::Object(mut after)) = (before, after.clone()) else {
        return Err(format!(
            "{} where a record (an object) was expected",
            type_name(&after)
        ));
    };
    if let Some(extra) = after.keys().find(|k| !before.contains_key(*k)) {
        return Err(format!(
            "a record with `{extra}`, which is not a field of the unified model"
        ));
    }
    if after
        .get("id")
        .is_some_and(|id| Some(id) != before.get("id"))
    {
        return Err("a record whose `id` was changed".into());
    }
    if after.get("custom_fields").is_some_and(|c| !c.is_object()) {
        return Err("a record whose `custom_fields` is not an object".into());
    }
    let mut out = before.clone();
    for (key, value) in std::mem::take(&mut after) {
        out.insert(key, value);
    }
    Ok(Value::Object(out))
}

fn run_rules(
    rules: &[Arc<Rule>],
    source: &Value,
    prefix: &str,
    run: &mut Run<'_>,
) -> Result<Fields, RecordError> {
    let mut slots = Vec::with_capacity(rules.len());
    for rule in rules {
        slots.push(match &rule.nested {
            Some(nested) => run_nested(rule, nested, source, prefix, run)?,
            None => Slot::Value(run_rule(rule, source, prefix, run)?),
        });
    }
    Ok(Fields(slots))
}

fn run_nested(
    rule: &Rule,
    nested: &Nested,
    source: &Value,
    prefix: &str,
    run: &mut Run<'_>,
) -> Result<Slot, RecordError> {
    let mut budget = run.budget.rule();
    let elements = nested_elements(&rule.source, source, nested.many, &mut budget);
    run.budget.spend(&budget, elements.is_ok());
    let target = format!("{prefix}{}", rule.target);
    let elements = match elements {
        Ok(elements) => elements,
        Err(over) => {
            run.fail(Run::over_budget(rule, prefix, over), false)?;
            return Ok(if nested.many {
                Slot::Many(Vec::new())
            } else {
                Slot::Value(nested.skeleton.clone())
            });
        }
    };
    let map_one = |element: &Value, prefix: String, run: &mut Run<'_>| {
        // Each element holds its empty fields, at least, in the record.
        run.budget
            .hold(nested.skeleton_bytes)
            .map_err(|_| RecordError::TooLarge(run.limits.record_bytes()))?;
        if element.is_object() {
            return Ok(Slot::One(run_rules(&nested.rules, element, &prefix, run)?));
        }
        if !element.is_null() {
            let e = FieldError {
                target: prefix.trim_end_matches('.').to_owned(),
                path: rule.source.describe(),
                value: Some(quote(element)),
                message: format!(
                    "expects an object to map with nested rules, not {}",
                    type_name(element)
                ),
                cause: FieldCause::NotAnObject,
            };
            run.fail(e, false)?;
        }
        Ok(Slot::Value(nested.skeleton.clone()))
    };
    if nested.many {
        let mut items = Vec::with_capacity(elements.len());
        for (i, element) in elements.iter().enumerate() {
            items.push(map_one(element, format!("{target}[{i}]."), run)?);
        }
        Ok(Slot::Many(items))
    } else {
        let element = elements
            .into_iter()
            .next()
            .unwrap_or(Cow::Owned(Value::Null));
        map_one(&element, format!("{target}."), run)
    }
}

/// What nested rules map: for an array target every element, else the one value.
/// Elements are borrowed from the record where the source is a path (or none), so
/// that mapping the lines of an order copies none of them.
fn nested_elements<'a>(
    source: &Source,
    record: &'a Value,
    many: bool,
    budget: &mut Budget,
) -> Result<Vec<Cow<'a, Value>>, OverBudget> {
    // The value a mapping sees, as `select` gives it, with the nodes of a query that is
    // not singular standing for the array `select` would make of them.
    let (one, nodes): (Option<Cow<'a, Value>>, Vec<&'a Value>) = match source {
        Source::None => (Some(Cow::Borrowed(record)), Vec::new()),
        Source::Path(p) if p.is_singular() => (
            p.nodes_within(record, budget)?.pop().map(Cow::Borrowed),
            Vec::new(),
        ),
        Source::Path(p) => (None, p.nodes_within(record, budget)?),
        other => (Some(Cow::Owned(select(other, record, budget)?)), Vec::new()),
    };
    Ok(match one {
        // A single value: an array's elements, nothing for null, or itself.
        Some(Cow::Borrowed(Value::Array(items))) => {
            let items = items.iter().map(Cow::Borrowed);
            if many {
                items.collect()
            } else {
                items.take(1).collect()
            }
        }
        Some(Cow::Owned(Value::Array(items))) => {
            let items = items.into_iter().map(Cow::Owned);
            if many {
                items.collect()
            } else {
                items.take(1).collect()
            }
        }
        Some(value) if value.is_null() => Vec::new(),
        Some(value) => vec![value],
        None if many => nodes.into_iter().map(Cow::Borrowed).collect(),
        None => nodes.into_iter().take(1).map(Cow::Borrowed).collect(),
    })
}

fn run_rule(
    rule: &Rule,
    source: &Value,
    prefix: &str,
    run: &mut Run<'_>,
) -> Result<Value, RecordError> {
    let empty = || rule.ty.map_or(Value::Null, FieldType::empty);
    let mut budget = run.budget.rule();
    let selected = select(&rule.source, source, &mut budget);
    run.budget.spend(&budget, selected.is_ok());
    let value = match selected {
        Ok(value) => value,
        Err(over) => {
            run.fail(Run::over_budget(rule, prefix, over), rule.required)?;
            return Ok(empty());
        }
    };
    // The value a failed field quotes: the one the failing step was given.
    let field_error = |message: String, value: Option<Value>, cause| FieldError {
        target: format!("{prefix}{}", rule.target),
        path: rule.source.describe(),
        value: value.as_ref().map(quote),
        message,
        cause,
    };
    // Nothing is copied for that on the way: a failed step's input is rebuilt from the
    // source by the built-in steps before it, which give the same value again. Plugin
    // steps are not called twice, so a chain with one keeps each step's input.
    let keeps_inputs = rule.transforms.len() > 1
        && rule
            .transforms
            .iter()
            .any(|t| matches!(t, Transform::Plugin(_)));
    let mut ctx = Ctx {
        record: source,
        session: &mut *run.session,
    };
    let mut carried = Carried::Json(value);
    for (i, t) in rule.transforms.iter().enumerate() {
        let kept = (keeps_inputs && i > 0).then(|| carried.clone().into_value());
        match t.apply_carried(carried, &mut ctx) {
            Ok(v) => carried = v,
            Err(failure) => {
                let input = kept.or_else(|| {
                    let start = select(&rule.source, source, &mut run.budget.rule()).ok()?;
                    rule.transforms[..i]
                        .iter()
                        .try_fold(start, |v, step| step.apply(v, &mut ctx).ok())
                });
                let message = format!("transform `{}`: {failure}", t.label());
                let cause = match failure {
                    StepFailure::Refused(_) => FieldCause::Transform(t.name()),
                    StepFailure::Plugin(e) => FieldCause::Plugin(e),
                };
                let e = field_error(message, input, cause);
                run.fail(e, rule.required)?;
                return Ok(empty());
            }
        }
    }
    let mut value = carried.into_value();
    if value.is_null()
        && let Some(d) = &rule.default
    {
        value = d.clone();
    }
    if let Some(ty) = rule.ty {
        match fit(&value, ty) {
            Ok(None) => {}
            Ok(Some(v)) => value = v,
            Err(m) => {
                run.fail(field_error(m, Some(value), FieldCause::Type), rule.required)?;
                return Ok(empty());
            }
        }
    }
    if value.is_null() && rule.required {
        return Err(RecordError::Required {
            target: format!("{prefix}{}", rule.target),
            path: rule.source.describe(),
        });
    }
    Ok(value)
}

/// The value of a rule's source, within `budget`.
fn select(source: &Source, record: &Value, budget: &mut Budget) -> Result<Value, OverBudget> {
    match source {
        Source::None => Ok(Value::Null),
        Source::Path(p) => p.select_within(record, budget),
        Source::Const(v) => Ok(v.clone()),
        Source::Coalesce(paths) => {
            for p in paths {
                let v = p.select_within(record, budget)?;
                let empty = v.is_null()
                    || v.as_str() == Some("")
                    || v.as_array().is_some_and(Vec::is_empty);
                if !empty {
                    return Ok(v);
                }
            }
            Ok(Value::Null)
        }
    }
}

/// Fits a value to a model type, converting where that loses nothing: `None` keeps it
/// as it is, `Some` replaces it.
fn fit(value: &Value, ty: &FieldType) -> Result<Option<Value>, String> {
    let wrong = |hint: &str| {
        Err(format!(
            "expects {}, not {}{hint}",
            ty.describe(),
            type_name(value)
        ))
    };
    match (ty, value) {
        (FieldType::Custom, Value::Null) => Ok(Some(Value::Object(Map::new()))),
        (_, Value::Null) => Ok(None),
        (FieldType::String, Value::String(_)) => Ok(None),
        (FieldType::String, Value::Number(_) | Value::Bool(_)) => Ok(Some(
            super::transform::scalar_text(value)
                .map(Value::String)
                .unwrap_or(Value::Null),
        )),
        (FieldType::Currency, Value::String(s)) if is_currency(s) => Ok(None),
        (FieldType::Currency, Value::String(_)) => {
            wrong(" that is not a three-letter ISO 4217 code (add `upper` or a `lookup`)")
        }
        (FieldType::Number | FieldType::Integer, Value::Number(n)) if is_integer(n) => Ok(None),
        (FieldType::Number, Value::Number(n)) => number(n.as_f64().unwrap_or(f64::NAN)).map(Some),
        (FieldType::Number, Value::String(_)) => wrong(" (add `to_number`)"),
        (FieldType::Integer, Value::Number(n)) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 => number(f).map(Some),
            _ => wrong(" with a fraction (add `round`)"),
        },
        (FieldType::Integer, Value::String(_)) => wrong(" (add `to_integer`)"),
        (FieldType::Date, Value::String(s)) if is_date(s) => Ok(None),
        (FieldType::Date, Value::String(_)) => wrong(" in YYYY-MM-DD form (add `date`)"),
        (FieldType::DateTime, Value::String(s)) if is_datetime(s) => Ok(None),
        (FieldType::DateTime, Value::String(_)) => wrong(" in RFC 3339 UTC form (add `datetime`)"),
        (FieldType::Enum(members), Value::String(s)) => {
            if members.iter().any(|m| m == s) {
                Ok(None)
            } else {
                Ok(Some(Value::String("unknown".into())))
            }
        }
        (FieldType::Custom, Value::Object(_)) => Ok(None),
        _ => wrong(""),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::mapping::{Format, MappingSpec, OverrideSpec, resolve};
    use crate::plugin::PluginSet;

    fn plan(overrides: &str) -> Plan {
        let default = MappingSpec::parse(
            "system: sap-s4hana\nentity: vendor\nrules:\n  - {target: id, path: $.Supplier}\n",
            Format::Yaml,
        )
        .unwrap();
        let overrides = OverrideSpec::parse(overrides, Format::Yaml).unwrap();
        Plan::compile(
            &resolve(&default, Some(&overrides)).unwrap(),
            &PluginSet::new(),
        )
        .unwrap()
    }

    /// A step that fails after others quotes what it was given (the steps before it
    /// rebuild it from the source), not the source.
    #[test]
    fn a_failing_step_quotes_its_input() {
        let chain = plan(
            "overrides:\n  - {target: custom_fields.n, path: $.N, transforms: [trim, upper, to_number]}\n",
        );
        let record = chain
            .map_record(
                &json!({"Supplier": "1", "N": "  twelve "}),
                MapOptions::default(),
            )
            .unwrap();
        let error = &record["errors"][0];
        assert_eq!(error["target"], "custom_fields.n", "{record}");
        assert_eq!(error["value"], "\"TWELVE\"", "{record}");
        assert!(
            error["message"].as_str().unwrap().contains("to_number"),
            "{record}"
        );
        // The first step's input is the source.
        let one =
            plan("overrides:\n  - {target: custom_fields.n, path: $.N, transforms: [to_number]}\n");
        let record = one
            .map_record(&json!({"Supplier": "1", "N": " x "}), MapOptions::default())
            .unwrap();
        assert_eq!(record["errors"][0]["value"], "\" x \"", "{record}");
    }

    /// Field errors travel beside the record as values, with their cause, and in the
    /// record's `errors` with the cause named.
    #[test]
    fn field_errors_carry_their_cause_as_values() {
        let plan = plan(
            "overrides:\n  - {target: custom_fields.n, path: $.N, transforms: [to_number]}\n  - {target: currency, path: $.C}\n",
        );
        let batch = plan.map_batch(
            &[
                json!({"Supplier": "1", "N": "x", "C": "dollars"}),
                json!({"Supplier": "2", "N": "4"}),
            ],
            MapOptions::default(),
        );
        assert_eq!(batch.field_errors.len(), 2);
        let causes: Vec<_> = batch.field_errors[0]
            .iter()
            .map(|e| (e.target.as_str(), e.cause.clone()))
            .collect();
        assert_eq!(
            causes,
            [
                ("custom_fields.n", FieldCause::Transform("to_number")),
                ("currency", FieldCause::Type),
            ]
        );
        assert!(batch.field_errors[1].is_empty());
        let record = batch.records[0].as_ref().unwrap();
        assert_eq!(record["errors"][0]["cause"], "transform", "{record}");
        assert_eq!(record["errors"][0]["transform"], "to_number", "{record}");
        assert_eq!(record["errors"][1]["cause"], "type", "{record}");
        assert!(batch.records[1].as_ref().unwrap().get("errors").is_none());
    }
}
