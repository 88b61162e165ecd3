//! Crosswalk's service: the HTTP API over the mapping engine, with its store,
//! connections, webhooks and outbound policy.
//!
//! # Layout
//!
//! - [`connection`]: connections: their hot-swapped, compiled pipelines, their live
//!   upstreams, their health, breaker and error log.
//! - [`http`]: the HTTP API (axum).
//! - [`error_body`]: the API's error codes and error shape, for HTTP answers, NDJSON
//!   error lines and the CLI alike.
//! - [`quota`]: limits and quotas (lengths, sizes, counts per tenant, versions kept),
//!   with their defaults in one place.
//! - [`store`]: where the service keeps tenants, keys, connections, mapping versions
//!   and plugins (sled by default).
//! - [`webhook`]: event subscriptions, the durable outbox and signed delivery.
//! - [`egress`]: where outbound calls (webhooks, live upstreams, OAuth token
//!   endpoints) may go, and the HTTP client that checks every connection against it.
//! - [`ids`]: random ids and hex text.
//! - [`ndjson`]: NDJSON lines, batches and answer lines, for the transform endpoint
//!   and `crosswalk map --ndjson` alike.
//! - `fuzz` (hidden, not an API): the entry points of the fuzz targets in `fuzz/`.
//!
//! The layers below are `crosswalk-core` (model, JSONPath, mapping),
//! `crosswalk-plugin-host` (WebAssembly plugins) and `crosswalk-systems` (what each
//! source system is); the `crosswalk` binary above serves this crate's router.

pub mod connection;
pub mod egress;
pub mod error_body;
#[doc(hidden)]
pub mod fuzz;
pub mod http;
pub mod ids;
pub mod ndjson;
pub mod quota;
pub mod store;
pub mod webhook;
