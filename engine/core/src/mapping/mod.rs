//! Declarative mappings from source records to the unified model.
//!
//! The pipeline follows the modules: [`spec`] (documents as written) → [`resolve`](mod@resolve)
//! (a connection's overrides layered on a system's default mapping, which the
//! source systems' crate ships) →
//! [`compile`] (targets, paths and transforms checked once, into a [`Plan`]) → [`run`]
//! (a plan applied to records taken out of their [`payload`] envelope). [`transform`]
//! holds the built-in transforms, [`error`] what can go wrong at each step and
//! [`limits`] what mapping may cost (JSONPath budgets, record and batch sizes).
//! [`read`] parses payloads into only what a plan's rules read, and [`output`] writes
//! the records they make from the plan's layout.
//! [`reverse`] derives the way back, from the unified model to a system's payload, for
//! writes.

pub mod compile;
pub mod error;
pub mod limits;
pub mod output;
pub mod payload;
pub mod read;
pub mod resolve;
pub mod reverse;
pub mod run;
pub mod spec;
pub mod transform;

pub use compile::Plan;
pub use error::{FieldCause, FieldError, RecordError, SpecError, SpecErrors};
pub use limits::MapLimits;
pub use output::{Record, Unified};
pub use payload::{Payload, PayloadError};
pub use resolve::{Origin, ResolvedMapping, ResolvedRule};
pub use reverse::{ReadOnly, ValueStyle, WriteError, WritePlan, Written};
pub use run::{Batch, MapOptions};
pub use spec::{
    Document, Format, MappingSpec, OverrideRule, OverrideSpec, RuleSpec, TransformStep, WriteSpec,
};

/// The mapping that runs: `default` (a system's default mapping) with `overrides`
/// applied.
pub fn resolve(
    default: &MappingSpec,
    overrides: Option<&OverrideSpec>,
) -> Result<ResolvedMapping, SpecErrors> {
    match overrides {
        None => Ok(ResolvedMapping::from_spec(default)),
        Some(o) => ResolvedMapping::resolve(default, o),
    }
}
