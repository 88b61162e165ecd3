//! The source systems Crosswalk knows, one module each: SAP S/4HANA ([`sap_s4hana`]),
//! IBM Maximo ([`ibm_maximo`]) and Microsoft Dynamics 365 Finance and Operations
//! ([`dynamics_365_fo`]).
//!
//! A system's module holds everything Crosswalk knows of it, as one [`System`]: its
//! default mapping of each entity (YAML under `mappings/<system>/`, compiled into the
//! binary), its API ([`Dialect`]: protocol, resources, keys), its sandbox records
//! (`sandbox/<system>.json`) and how it writes dates and numbers ([`ValueStyle`]).
//! [`SYSTEMS`] is the only list of them; [`SystemId`] names one, and an unknown name is
//! refused where it comes in ([`SystemId::from_str`](std::str::FromStr)). Adding a
//! system is adding a module and its data (see `docs/adding-a-system.md`).
//!
//! The functions at the root resolve and compile a system's mappings:
//! [`resolve`] (the default with a connection's overrides), [`plan`] and [`plan_with`]
//! (compiled for reads), [`write_plan`] (derived for writes).
//!
//! # Load → compile → run
//!
//! ```
//! use crosswalk_core::mapping::{Format, MapOptions, OverrideSpec};
//! use crosswalk_core::model::Entity;
//! use serde_json::json;
//!
//! // Load: a connection keeps its cost centre in a custom SAP field.
//! let overrides = OverrideSpec::parse(
//!     "overrides:\n  - target: custom_fields.cost_center\n    path: $.ZZ1_CostCenter_PDH\n",
//!     Format::Yaml,
//! )?;
//! // Compile: the SAP default for purchase orders, with the override layered on.
//! let plan = crosswalk_systems::plan("sap-s4hana", Entity::PurchaseOrder, Some(&overrides))?;
//! // Run: map one record as SAP's OData API returns it.
//! let source = json!({"PurchaseOrder": "4500000017", "ZZ1_CostCenter_PDH": "CC-1000"});
//! let record = plan.map_record(&source, MapOptions::default())?;
//! assert_eq!(record["id"], "4500000017");
//! assert_eq!(record["custom_fields"], json!({"cost_center": "CC-1000"}));
//! assert_eq!(record["lines"], json!([]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

/// The default mapping of one entity: `mappings/<system>/<file>.yaml`, compiled in.
macro_rules! mapping {
    ($system:literal, $entity:ident, $file:literal) => {
        (
            Entity::$entity,
            include_str!(concat!("../mappings/", $system, "/", $file, ".yaml")),
        )
    };
}

pub mod dialect;
pub mod dynamics_365_fo;
pub mod ibm_maximo;
pub mod sandbox;
pub mod sap_s4hana;

use std::fmt;
use std::str::FromStr;

use crosswalk_core::mapping::{
    Format, MappingSpec, OverrideSpec, Plan, ResolvedMapping, SpecError, SpecErrors, ValueStyle,
    WritePlan,
};
use crosswalk_core::model::Entity;
use crosswalk_core::plugin::PluginSet;

pub use dialect::{Dialect, Protocol, Resource};

/// The name of a source system, as specs, connections and the command line write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SystemId {
    /// `sap-s4hana`.
    SapS4Hana,
    /// `ibm-maximo`.
    IbmMaximo,
    /// `dynamics-365-fo`.
    Dynamics365Fo,
}

impl SystemId {
    /// Its name: `sap-s4hana`, `ibm-maximo`, `dynamics-365-fo`.
    pub fn as_str(self) -> &'static str {
        match self {
            SystemId::SapS4Hana => "sap-s4hana",
            SystemId::IbmMaximo => "ibm-maximo",
            SystemId::Dynamics365Fo => "dynamics-365-fo",
        }
    }

    /// Everything Crosswalk knows of it.
    pub fn system(self) -> &'static System {
        match self {
            SystemId::SapS4Hana => &sap_s4hana::SYSTEM,
            SystemId::IbmMaximo => &ibm_maximo::SYSTEM,
            SystemId::Dynamics365Fo => &dynamics_365_fo::SYSTEM,
        }
    }
}

impl fmt::Display for SystemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for SystemId {
    type Err = SpecError;

    /// A system by name; an unknown name is an error that lists the known ones.
    fn from_str(name: &str) -> Result<SystemId, SpecError> {
        System::get(name).map(|s| s.id)
    }
}

impl serde::Serialize for SystemId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for SystemId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<SystemId, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for SystemId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SystemId".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let names: Vec<&str> = SYSTEMS.iter().map(|s| s.id.as_str()).collect();
        schemars::json_schema!({
            "type": "string",
            "description": "A source system.",
            "enum": names,
        })
    }
}

/// A kind of source system, and everything Crosswalk knows of it.
#[derive(Debug)]
pub struct System {
    /// Its id.
    pub id: SystemId,
    /// The product's name.
    pub name: &'static str,
    /// The API the default mappings read.
    pub api: &'static str,
    /// The default mapping of each entity it maps, as YAML text.
    mappings: &'static [(Entity, &'static str)],
    /// Its API.
    pub dialect: Dialect,
    /// Its sandbox records, as JSON text (see [`sandbox`]).
    sandbox: &'static str,
    /// How it writes dates and numbers.
    pub style: ValueStyle,
}

/// Every system: the only list of them.
pub const SYSTEMS: &[&System] = &[
    &sap_s4hana::SYSTEM,
    &ibm_maximo::SYSTEM,
    &dynamics_365_fo::SYSTEM,
];

impl System {
    /// Looks a system up by name.
    pub fn get(name: &str) -> Result<&'static System, SpecError> {
        SYSTEMS
            .iter()
            .copied()
            .find(|s| s.id.as_str() == name)
            .ok_or_else(|| SpecError::UnknownSystem {
                system: name.to_owned(),
                known: SYSTEMS
                    .iter()
                    .map(|s| s.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The entities this system has default mappings for.
    pub fn entities(&self) -> impl Iterator<Item = Entity> + '_ {
        self.mappings.iter().map(|(e, _)| *e)
    }

    /// The YAML text of the default mapping of `entity`.
    pub fn mapping_text(&self, entity: Entity) -> Result<&'static str, SpecError> {
        self.mappings
            .iter()
            .find(|(e, _)| *e == entity)
            .map(|(_, text)| *text)
            .ok_or_else(|| SpecError::NoDefaultMapping {
                system: self.id.to_string(),
                entity: entity.to_string(),
                known: self
                    .entities()
                    .map(Entity::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The default mapping of `entity`, parsed.
    pub fn default_mapping(&self, entity: Entity) -> Result<MappingSpec, SpecError> {
        MappingSpec::parse(self.mapping_text(entity)?, Format::Yaml)
    }
}

/// The mapping that runs for `system` and `entity`: the system's default with
/// `overrides` applied.
pub fn resolve(
    system: &str,
    entity: Entity,
    overrides: Option<&OverrideSpec>,
) -> Result<ResolvedMapping, SpecErrors> {
    let default = System::get(system)?.default_mapping(entity)?;
    crosswalk_core::mapping::resolve(&default, overrides)
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

/// The way back of a resolved mapping, writing values in its system's style.
pub fn write_plan(
    resolved: &ResolvedMapping,
    plugins: &PluginSet,
) -> Result<WritePlan, SpecErrors> {
    let style = System::get(&resolved.system)?.style;
    WritePlan::derive(resolved, style, plugins)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_system_is_listed_once_and_found_by_its_name() {
        for (i, system) in SYSTEMS.iter().enumerate() {
            assert_eq!(system.id.system().id, system.id);
            assert_eq!(system.id.as_str().parse::<SystemId>().unwrap(), system.id);
            assert!(
                SYSTEMS[..i].iter().all(|s| s.id != system.id),
                "{} is listed twice",
                system.id
            );
        }
        let e = "sap".parse::<SystemId>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown system `sap`; the systems are sap-s4hana, ibm-maximo, dynamics-365-fo"
        );
    }

    /// The registry is the only list: every table a system needs is a field of its
    /// [`System`], and each must cover every entity the system maps.
    #[test]
    fn every_system_has_every_table_for_every_entity_it_maps() {
        for system in SYSTEMS {
            let entities: Vec<Entity> = system.entities().collect();
            assert!(!entities.is_empty(), "{} maps nothing", system.id);
            let resources: Vec<Entity> =
                system.dialect.resources.iter().map(|r| r.entity).collect();
            assert_eq!(
                resources, entities,
                "{}: its API resources and its mappings differ",
                system.id
            );
            for entity in entities {
                let spec = system.default_mapping(entity).unwrap();
                assert_eq!(spec.system, system.id.as_str(), "{} {entity}", system.id);
                assert_eq!(spec.entity, entity, "{} {entity}", system.id);
                plan(system.id.as_str(), entity, None).unwrap();
                write_plan(
                    &resolve(system.id.as_str(), entity, None).unwrap(),
                    &PluginSet::new(),
                )
                .unwrap();
                assert!(
                    !sandbox::records(system.id, entity).is_empty(),
                    "{} has no sandbox {entity} records",
                    system.id
                );
            }
        }
    }
}
