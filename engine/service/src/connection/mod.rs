//! Connections: a tenant's link to one source system — the compiled mapping each of
//! its entities runs, where its records come from, and how healthy it is.
//!
//! - [`Pipelines`] holds, per connection and entity, the [`Pipeline`] that requests
//!   use: the system's default mapping with the connection's current overrides and
//!   plugin bindings, compiled. A change is validated and compiled off the request
//!   path, persisted, and then published by swapping one pointer: requests that
//!   already took the old pipeline finish on it, the next request sees the new one,
//!   and a change that fails validation changes nothing.
//! - [`upstream`] reads and writes a live system's own API (the built-in sample
//!   records are [`crosswalk_systems::sandbox`]'s); [`Records`] serves reads and writes
//!   of both through the current mapping (backwards for writes: [`crosswalk_core::mapping::reverse`]).
//! - [`health`] and [`Monitor`] keep each connection's status, circuit breaker, error
//!   counts and error log, and raise the connection events ([`crate::webhook`]);
//!   [`plugin_log`] is what its plugins wrote.
//! - [`secrets`] seals live connections' credentials at rest.
//! - [`fleet`] follows what other replicas of a shared store change: their mapping
//!   versions reach this replica's pipelines, their connection changes its caches
//!   and its health.

pub mod fleet;
pub mod health;
mod monitor;
mod pipelines;
pub mod plugin_log;
mod records;
pub mod secrets;
pub mod upstream;

pub use health::{ErrorEntry, ErrorKind, HealthReport, Status};
pub use monitor::{ERROR_LOG_KEEP, MAX_QUEUED_LOG_ENTRIES, Monitor, PluginLogTotals};
pub use pipelines::{Base, ChangeError, Changed, Pipeline, Pipelines, Proposal};
pub use plugin_log::{MAX_QUEUED_PLUGIN_LOG_LINES, PLUGIN_LOG_KEEP, PluginLogEntry};
pub use records::{
    DEFAULT_PAGE_SIZE, Fetched, ListQuery, Listed, MAX_PAGE_SIZE, Records, RecordsError,
};
pub use upstream::{Credentials, UpstreamConfig};
