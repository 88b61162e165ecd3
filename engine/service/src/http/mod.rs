//! The HTTP API: axum routes over the store and the hot-swapped pipelines.
//!
//! [`app`] builds the router from an [`AppState`], apart from any socket, so that tests
//! drive it with `oneshot`. Every request carries `Authorization: Bearer <key>`; a
//! tenant sees only its own connections, and another tenant's id answers 404 as if it
//! did not exist. Errors have one shape ([`ApiError`]).
//!
//! Endpoints that take JSON read a body without a `Content-Type` as JSON (so a plain
//! `curl -d` works) and answer any other content type than JSON (`application/json`,
//! `application/*+json`; NDJSON where the endpoint streams) with 415
//! `unsupported_media_type`. What a tenant stores is bounded by the
//! [`Quotas`](crate::quota::Quotas): a request over one answers 422 `limit_exceeded`,
//! naming it.
//!
//! # Layout
//!
//! - `routes`: the route table, [`routes()`], and the router built from it, [`app`].
//! - `state`: [`AppState`], what every handler shares; [`ServiceOptions`]; [`RequestId`].
//! - `auth`: [`Caller`], the key that authenticated a request.
//! - `body`: JSON bodies, parsed into the API's error shape.
//! - `outbound`: the check of a URL the service will call, as it is stored.
//! - `work`: running work off the async workers and within a plugin-pool lease.
//! - Handlers, one module per resource: `tenants`, `connections` (create, list, get,
//!   delete, status, error log, reauthorization), `records` (a connection's unified
//!   records: read, write, preview a write), `mappings` (read, change, bind plugins,
//!   history, diff, rollback, preview), `plugins`, `transform`, `webhooks`, `language`
//!   (the transforms, the model's schemas, JSONPath on a sample), and `ops` (the
//!   OpenAPI document, the metrics, the benchmarks' floor).
//! - [`console`]: the web console's files, served at `/console/`; the console itself
//!   uses the public API only.
//! - Answers: `error` ([`ApiError`], [`ErrorCode`]: the one list of the codes the API
//!   answers), `answer` (the list shape; answers within `max_answer_bytes`), [`ndjson`]
//!   (streamed NDJSON), `content_type` (which bodies an endpoint takes).
//! - Around every request: `observe` (its id, span and log line) and [`metrics`]; and
//!   [`openapi`], the document built from the route table.

mod answer;
mod auth;
mod body;
mod connections;
pub mod console;
mod content_type;
mod error;
mod language;
mod mappings;
pub mod metrics;
pub mod ndjson;
mod observe;
pub mod openapi;
mod ops;
mod outbound;
mod plugins;
mod records;
mod routes;
mod state;
mod tenants;
mod transform;
mod webhooks;
mod work;

pub use answer::List;
pub use auth::Caller;
pub use connections::NewConnection;
pub use error::{ApiError, ErrorBody, ErrorCode, ErrorDetail};
pub use mappings::{
    Change, DEFAULT_AUTHOR, History, MappingAnswer, Preview, PreviewAnswer, Rollback,
    VERSION_HEADER,
};
pub use metrics::Metrics;
pub use observe::REQUEST_ID_HEADER;
pub use openapi::Route;
pub use plugins::PluginAnswer;
pub use routes::{app, routes};
pub use state::{AppState, RequestId, ServiceOptions};
pub use tenants::{NewKey, NewTenant, TenantCreated};
