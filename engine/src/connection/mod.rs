//! Connections: a tenant's link to one source system, and the compiled mapping that
//! each of its entities runs.
//!
//! [`Pipelines`] holds, per connection and entity, the [`Pipeline`] that requests use:
//! the system's default mapping with the connection's current overrides and plugin
//! bindings, compiled. A change is validated and compiled off the request path,
//! persisted, and then published by swapping one pointer: requests that already took
//! the old pipeline finish on it, the next request sees the new one, and a change that
//! fails validation changes nothing.

mod pipelines;

pub use pipelines::{ChangeError, Pipeline, Pipelines};
