//! What the mapping needs of a plugin, and nothing of how one runs.
//!
//! A plugin is a set of named functions, each converting one value ([`FunctionKind::Field`])
//! or a batch of records ([`FunctionKind::Record`]), that a mapping calls by name. The
//! mapping compiles against the [`Plugin`] trait (its functions, their argument schemas
//! and inverses) and calls through an [`Instance`], one per plugin per request or batch,
//! made by a [`Session`]. `crosswalk-plugin-host` implements both traits with wasmtime;
//! tests and benchmarks may implement them in plain Rust.
//!
//! Everything here is data or bookkeeping: the [`Limits`] a binding runs under, the
//! [`Demand`] a mapping's plugins make on the host's pool, the [`Capacity`] a request
//! holds, the plugin-time [`Budget`] and [`Cancel`] flag of a session, how calls ended
//! ([`CallCounts`]), and what can go wrong ([`PluginError`]).
//!
//! # Layout
//!
//! - [`limits`]: the limits of one binding as data, defaults and ceilings.
//! - [`budget`]: a session's plugin time budget and a request's cancel flag.
//! - `set`: the plugins a mapping may call, and the instances of one batch.
//! - `outcome`: how calls ended, counted for metrics.
//! - `log`: the lines a plugin writes ([`LogLine`]).
//! - `error`: what can go wrong loading or calling a plugin.

pub mod budget;
mod error;
pub mod limits;
mod log;
mod outcome;
mod set;

use std::any::Any;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

pub use budget::{Budget, Cancel, CancelGuard};
pub use error::PluginError;
pub use limits::{LimitOverrides, Limits, MAX_COMPONENT_BYTES, STACK_BYTES};
pub use log::{LogLevel, LogLine, LogSource};
pub use outcome::{CallCounts, CallOutcome};
pub use set::{Binding, IDLE_PER_BINDING, PluginSet, Session};

/// Whether a function converts one value or whole records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FunctionKind {
    /// One value.
    Field,
    /// A batch of records.
    Record,
}

impl FunctionKind {
    /// The kind's name: `field` or `record`.
    pub fn as_str(self) -> &'static str {
        match self {
            FunctionKind::Field => "field",
            FunctionKind::Record => "record",
        }
    }
}

/// A function a plugin describes.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct FunctionInfo {
    /// Its name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// Field or record.
    pub kind: FunctionKind,
    /// The JSON Schema of its arguments.
    pub args_schema: Value,
    /// The function of the same plugin and kind that undoes this one under the same
    /// arguments, which writes call; `None` when it has none (and always under
    /// `crosswalk:plugin@0.1.0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inverse: Option<String>,
}

/// A loaded plugin, as the mapping sees it: named functions with argument schemas, and
/// fresh instances on demand.
pub trait Plugin: std::fmt::Debug + Send + Sync {
    /// The name rules call it by.
    fn name(&self) -> &str;

    /// Its version, as it says.
    fn version(&self) -> &str;

    /// The sha256 of its bytes, in hex.
    fn sha256(&self) -> &str;

    /// Its functions.
    fn functions(&self) -> &[FunctionInfo];

    /// The version of the plugin interface it implements (`crosswalk:plugin@0.2.0`).
    fn interface(&self) -> &'static str;

    /// Checks a rule's static arguments against the function's schema.
    fn check_args(&self, function: &str, args: &Value) -> Result<(), PluginError>;

    /// A fresh instance under `limits`, whose calls spend `budget` (shared with the
    /// other instances of a session) and stop when its cancel flag is set. Nothing runs
    /// before its first call.
    fn open(self: Arc<Self>, limits: Limits, budget: Arc<Budget>) -> Box<dyn Instance>;

    /// The function `name` of `kind`, or an error that lists the functions of that kind.
    fn function(&self, name: &str, kind: FunctionKind) -> Result<&FunctionInfo, PluginError> {
        let functions = self.functions();
        functions
            .iter()
            .find(|f| f.name == name && f.kind == kind)
            .ok_or_else(|| {
                let names: Vec<&str> = functions
                    .iter()
                    .filter(|f| f.kind == kind)
                    .map(|f| f.name.as_str())
                    .collect();
                PluginError::UnknownFunction {
                    plugin: self.name().to_owned(),
                    function: name.to_owned(),
                    kind: kind.as_str(),
                    hint: if names.is_empty() {
                        String::new()
                    } else {
                        format!("; its {} functions are {}", kind.as_str(), names.join(", "))
                    },
                }
            })
    }
}

/// One instance of a plugin, for one request or batch at a time: calls on it share its
/// memory. A [`Session`] that ends offers it to the next session of the same binding
/// ([`Instance::park`]); an instance that declines is dropped, and nothing of it
/// outlives the session.
pub trait Instance: Send {
    /// Calls a field-level function on one value; `args` is the rule's arguments as
    /// JSON text.
    fn call_field(
        &mut self,
        function: &str,
        value: &Value,
        args: &str,
    ) -> Result<Value, PluginError>;

    /// Calls a record-level function on a batch of records: one result per record, or
    /// one error for the whole call.
    fn call_records(
        &mut self,
        function: &str,
        records: &[Value],
        args: &str,
    ) -> Result<Vec<Result<Value, PluginError>>, PluginError>;

    /// How the calls so far ended; the counts start again from zero.
    fn take_calls(&mut self) -> CallCounts;

    /// The log lines so far, each naming the plugin and the function whose call wrote
    /// it; the log starts again empty.
    fn take_log(&mut self) -> Vec<LogLine>;

    /// Whether this instance may serve a later session of the same binding (one
    /// connection's compiled mapping), which the session that ends asks; `true` takes
    /// what reuse needs (a place among the host's idle instances). By default an
    /// instance is never reused.
    fn park(&mut self) -> bool {
        false
    }

    /// Takes a parked instance up for a new session, whose calls spend `budget` and
    /// stop when its cancel flag is set.
    fn unpark(&mut self, budget: Arc<Budget>) {
        let _ = budget;
    }
}

/// What a request's plugins may use at once: one instance per plugin the mapping
/// calls, and their bindings' `memory_bytes` together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Demand {
    /// Instances.
    pub instances: u32,
    /// Linear memory, in bytes.
    pub memory_bytes: u64,
}

impl Demand {
    /// What the plugins of `bindings` may use, one instance each.
    pub fn of(bindings: &[Binding]) -> Demand {
        Demand {
            instances: u32::try_from(bindings.len()).unwrap_or(u32::MAX),
            memory_bytes: bindings
                .iter()
                .map(|b| b.limits.memory_bytes)
                .fold(0, u64::saturating_add),
        }
    }

    /// Whether it asks for nothing (a mapping without plugins).
    pub fn is_zero(&self) -> bool {
        self.instances == 0
    }

    /// Both together, saturating.
    pub fn plus(self, other: Demand) -> Demand {
        Demand {
            instances: self.instances.saturating_add(other.instances),
            memory_bytes: self.memory_bytes.saturating_add(other.memory_bytes),
        }
    }

    /// `self` without `other`, saturating at zero.
    pub fn minus(self, other: Demand) -> Demand {
        Demand {
            instances: self.instances.saturating_sub(other.instances),
            memory_bytes: self.memory_bytes.saturating_sub(other.memory_bytes),
        }
    }
}

/// What one request holds of the plugin host: capacity leased for its plugins (a
/// [`Demand`]), and a fresh plugin-time [`Budget`] for each session it runs. The host's
/// pool hands these out; a [`Session`] keeps the lease until its instances are gone.
pub trait Capacity {
    /// The capacity leased.
    fn demand(&self) -> Demand;

    /// A fresh budget for one session (a request's batch), stopped by the request's
    /// cancel flag.
    fn budget(&self) -> Budget;

    /// The lease itself, kept alive by sessions so that it outlives their instances.
    fn lease(&self) -> Arc<dyn Any + Send + Sync>;
}
