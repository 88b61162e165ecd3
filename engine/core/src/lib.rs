//! The core of Crosswalk: the unified model, RFC 9535 JSONPath, and the mapping engine
//! that turns a source system's records into unified ones and back.
//!
//! This crate knows no source system, no async runtime, no HTTP, no storage and no
//! WebAssembly. The source systems (their default mappings and value styles) live in
//! `crosswalk-systems`; plugins are called through the [`plugin::Plugin`] trait, which
//! `crosswalk-plugin-host` implements with wasmtime.
//!
//! # Layout
//!
//! - [`model`]: the unified model v1, its entities, JSON Schemas and field types.
//! - [`path`]: RFC 9535 JSONPath, parsed once per mapping.
//! - [`mapping`]: mapping documents, overrides, the built-in transforms, compilation
//!   into a [`mapping::Plan`], running a plan on records, and the way back
//!   ([`mapping::WritePlan`]).
//! - [`plugin`]: what the mapping needs of a plugin: the [`plugin::Plugin`] and
//!   [`plugin::Instance`] traits, limits, budgets, call outcomes and errors.
//!
//! # Resolve → compile → run
//!
//! ```
//! use crosswalk_core::mapping::{Format, MapOptions, MappingSpec, OverrideSpec, Plan, resolve};
//! use crosswalk_core::plugin::PluginSet;
//! use serde_json::json;
//!
//! // A system's default mapping (the source systems' crate ships one per entity).
//! let default = MappingSpec::parse(
//!     "system: sap-s4hana\nentity: vendor\nrules:\n  - {target: id, path: $.Supplier}\n  - {target: name, path: $.SupplierName}\n",
//!     Format::Yaml,
//! )?;
//! // A connection keeps the vendor's tax number in a custom field.
//! let overrides = OverrideSpec::parse(
//!     "overrides:\n  - target: custom_fields.tax_number\n    path: $.ZZ1_TaxNumber\n",
//!     Format::Yaml,
//! )?;
//! let plan = Plan::compile(&resolve(&default, Some(&overrides))?, &PluginSet::new())?;
//! let source = json!({"Supplier": "17300001", "SupplierName": "Acme", "ZZ1_TaxNumber": "DE123"});
//! let record = plan.map_record(&source, MapOptions::default())?;
//! assert_eq!(record["id"], "17300001");
//! assert_eq!(record["custom_fields"], json!({"tax_number": "DE123"}));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod mapping;
pub mod model;
pub mod path;
pub mod plugin;
