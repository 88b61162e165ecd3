//! Declarative mappings from source records to the unified model.
//!
//! The pipeline follows the modules: [`spec`] (documents as written) → [`resolve`]
//! (a connection's overrides layered on a system's default from [`defaults`]) →
//! [`compile`] (targets, paths and transforms checked once, into a [`Plan`]) → [`run`]
//! (a plan applied to records taken out of their [`payload`] envelope). [`transform`]
//! holds the built-in transforms, [`error`] what can go wrong at each step and
//! [`limits`] what mapping may cost (JSONPath budgets, record and batch sizes).
//! [`reverse`] derives the way back, from the unified model to a system's payload, for
//! writes.

pub mod compile;
pub mod defaults;
pub mod error;
pub mod limits;
pub mod payload;
pub mod resolve;
pub mod reverse;
pub mod run;
pub mod spec;
pub mod transform;

pub use compile::Plan;
pub use defaults::{SYSTEMS, System};
pub use error::{FieldError, RecordError, SpecError, SpecErrors};
pub use limits::MapLimits;
pub use payload::{Payload, PayloadError};
pub use resolve::{Origin, ResolvedMapping, ResolvedRule};
pub use reverse::{ReadOnly, WriteError, WritePlan, Written};
pub use run::{Batch, MapOptions};
pub use spec::{
    Document, Format, MappingSpec, OverrideRule, OverrideSpec, RuleSpec, TransformStep, WriteSpec,
};

use crate::model::Entity;
use crate::plugin::PluginSet;

/// The mapping that runs for `system` and `entity`: the system's default with
/// `overrides` applied.
pub fn resolve(
    system: &str,
    entity: Entity,
    overrides: Option<&OverrideSpec>,
) -> Result<ResolvedMapping, SpecErrors> {
    let default = System::get(system)?.default_mapping(entity)?;
    match overrides {
        None => Ok(ResolvedMapping::from_spec(&default)),
        Some(o) => ResolvedMapping::resolve(&default, o),
    }
}

/// Resolves and compiles in one step, with no plugins.
pub fn plan(
    system: &str,
    entity: Entity,
    overrides: Option<&OverrideSpec>,
) -> Result<Plan, SpecErrors> {
    plan_with(system, entity, overrides, &PluginSet::new())
}

/// Resolves and compiles in one step, with `plugins` available to plugin steps.
pub fn plan_with(
    system: &str,
    entity: Entity,
    overrides: Option<&OverrideSpec>,
    plugins: &PluginSet,
) -> Result<Plan, SpecErrors> {
    Plan::compile(&resolve(system, entity, overrides)?, plugins)
}
