//! The source systems Crosswalk knows, and the default mapping of each of their entities.
//!
//! Default mappings are YAML files under `engine/mappings/<system>/<entity>.yaml`,
//! compiled into the binary. A test compiles every one of them, so a shipped mapping
//! can never fail to load.

use super::error::SpecError;
use super::spec::{Format, MappingSpec};
use crate::model::Entity;

/// A kind of source system.
#[derive(Debug)]
pub struct System {
    /// The system's id, as used in specs and on the command line.
    pub id: &'static str,
    /// The product's name.
    pub name: &'static str,
    /// The API the default mappings read.
    pub api: &'static str,
    mappings: &'static [(Entity, &'static str)],
}

macro_rules! mapping {
    ($system:literal, $entity:ident, $file:literal) => {
        (
            Entity::$entity,
            include_str!(concat!("../../mappings/", $system, "/", $file, ".yaml")),
        )
    };
}

/// Every system, with its default mappings.
pub const SYSTEMS: &[System] = &[
    System {
        id: "sap-s4hana",
        name: "SAP S/4HANA",
        api: "OData V2 APIs (API_PURCHASEORDER_PROCESS_SRV, API_MAINTENANCEORDER, API_EQUIPMENT, API_BUSINESS_PARTNER, API_PRODUCT_SRV)",
        mappings: &[
            mapping!("sap-s4hana", PurchaseOrder, "purchase_order"),
            mapping!("sap-s4hana", WorkOrder, "work_order"),
            mapping!("sap-s4hana", Asset, "asset"),
            mapping!("sap-s4hana", Vendor, "vendor"),
            mapping!("sap-s4hana", Part, "part"),
        ],
    },
    System {
        id: "ibm-maximo",
        name: "IBM Maximo",
        api: "JSON API object structures (MXAPIPO, MXAPIWODETAIL, MXAPIASSET, MXAPIVENDOR, MXAPIITEM), lean format",
        mappings: &[
            mapping!("ibm-maximo", PurchaseOrder, "purchase_order"),
            mapping!("ibm-maximo", WorkOrder, "work_order"),
            mapping!("ibm-maximo", Asset, "asset"),
            mapping!("ibm-maximo", Vendor, "vendor"),
            mapping!("ibm-maximo", Part, "part"),
        ],
    },
    System {
        id: "dynamics-365-fo",
        name: "Microsoft Dynamics 365 Finance and Operations",
        api: "OData data entities (PurchaseOrderHeadersV2, PurchaseOrderLinesV2, VendorsV2, ReleasedProductsV2)",
        mappings: &[
            mapping!("dynamics-365-fo", PurchaseOrder, "purchase_order"),
            mapping!("dynamics-365-fo", Vendor, "vendor"),
            mapping!("dynamics-365-fo", Part, "part"),
        ],
    },
];

impl System {
    /// Looks a system up by id.
    pub fn get(id: &str) -> Result<&'static System, SpecError> {
        SYSTEMS
            .iter()
            .find(|s| s.id == id)
            .ok_or_else(|| SpecError::UnknownSystem {
                system: id.to_owned(),
                known: SYSTEMS.iter().map(|s| s.id).collect::<Vec<_>>().join(", "),
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
                system: self.id.to_owned(),
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
