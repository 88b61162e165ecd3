//! Crosswalk maps the payloads of industrial source systems (SAP S/4HANA, IBM Maximo,
//! Microsoft Dynamics 365) to one unified model, with declarative rules that each
//! connection can override.
//!
//! # Layout
//!
//! - [`model`]: the unified model v1, its entities, JSON Schemas and field types.
//! - [`path`]: RFC 9535 JSONPath, parsed once per mapping.
//! - [`mapping`]: mapping documents, overrides, the built-in transforms, compilation
//!   into a [`mapping::Plan`], and running a plan on records.
//! - [`plugin`]: WebAssembly transform plugins: loading, sandboxing, calling.
//! - [`connection`]: connections: their hot-swapped, compiled pipelines, their
//!   sandbox data and live upstreams, their health, breaker and error log.
//! - [`http`]: the HTTP API (axum).
//! - [`quota`]: limits and quotas (lengths, sizes, counts per tenant, versions kept),
//!   with their defaults in one place.
//! - [`store`]: where the service keeps tenants, keys, connections, mapping versions
//!   and plugins (sled by default).
//! - [`webhook`]: event subscriptions, the durable outbox and signed delivery.
//! - [`egress`]: where outbound calls (webhooks, live upstreams, OAuth token
//!   endpoints) may go, and the HTTP client that checks every connection against it.
//! - [`cli`]: the `crosswalk` command line.
//! - `fuzz` (hidden, not an API): the entry points of the fuzz targets in `fuzz/`.
//!
//! # Load → compile → run
//!
//! ```
//! use crosswalk::mapping::{self, Format, MapOptions, OverrideSpec, Plan};
//! use crosswalk::model::Entity;
//! use serde_json::json;
//!
//! // Load: a connection keeps its cost centre in a custom SAP field.
//! let overrides = OverrideSpec::parse(
//!     "overrides:\n  - target: custom_fields.cost_center\n    path: $.ZZ1_CostCenter_PDH\n",
//!     Format::Yaml,
//! )?;
//! // Compile: the SAP default for purchase orders, with the override layered on.
//! let plan = mapping::plan("sap-s4hana", Entity::PurchaseOrder, Some(&overrides))?;
//! // Run: map one record as SAP's OData API returns it.
//! let source = json!({"PurchaseOrder": "4500000017", "ZZ1_CostCenter_PDH": "CC-1000"});
//! let record = plan.map_record(&source, MapOptions::default())?;
//! assert_eq!(record["id"], "4500000017");
//! assert_eq!(record["custom_fields"], json!({"cost_center": "CC-1000"}));
//! assert_eq!(record["lines"], json!([]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod cli;
pub mod connection;
pub mod egress;
#[doc(hidden)]
pub mod fuzz;
pub mod http;
pub mod mapping;
pub mod model;
pub mod path;
pub mod plugin;
pub mod quota;
pub mod store;
pub mod webhook;
