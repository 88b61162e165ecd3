//! IBM Maximo: its JSON API object structures (`MXAPIPO`, `MXAPIWODETAIL`, `MXAPIASSET`,
//! `MXAPIVENDOR`, `MXAPIINVENTORY`) in the lean format, as Crosswalk reads and writes
//! them.
//!
//! Records come in `member`, pages with `oslc.pageSize` and `responseInfo.nextPage`, dates
//! as ISO 8601 with an offset.
//!
//! Everything Crosswalk knows of the system is here: its default mappings
//! (`mappings/ibm-maximo/*.yaml`), its API ([`Dialect`]), its sandbox records
//! (`sandbox/ibm-maximo.json`) and how it writes values ([`ValueStyle`]).

use crosswalk_core::mapping::ValueStyle;
use crosswalk_core::model::Entity;

use crate::dialect::{Dialect, Protocol, Resource};
use crate::{System, SystemId};

/// IBM Maximo.
pub(crate) const SYSTEM: System = System {
    id: SystemId::IbmMaximo,
    name: "IBM Maximo",
    api: "JSON API object structures (MXAPIPO, MXAPIWODETAIL, MXAPIASSET, MXAPIVENDOR, MXAPIITEM), lean format",
    mappings: &[
        mapping!("ibm-maximo", PurchaseOrder, "purchase_order"),
        mapping!("ibm-maximo", WorkOrder, "work_order"),
        mapping!("ibm-maximo", Asset, "asset"),
        mapping!("ibm-maximo", Vendor, "vendor"),
        mapping!("ibm-maximo", Part, "part"),
    ],
    dialect: Dialect {
        protocol: Protocol::MaximoJson,
        resources: &[
            Resource {
                entity: Entity::PurchaseOrder,
                path: "maximo/api/os/mxapipo",
                query: &[("oslc.select", "*")],
                key: "ponum",
                changed: Some("changedate"),
                also_found_by: None,
            },
            Resource {
                entity: Entity::WorkOrder,
                path: "maximo/api/os/mxapiwodetail",
                query: &[("oslc.select", "*")],
                key: "wonum",
                changed: Some("changedate"),
                also_found_by: None,
            },
            Resource {
                entity: Entity::Asset,
                path: "maximo/api/os/mxapiasset",
                query: &[("oslc.select", "*")],
                key: "assetnum",
                changed: Some("changedate"),
                also_found_by: None,
            },
            Resource {
                entity: Entity::Vendor,
                path: "maximo/api/os/mxapivendor",
                query: &[("oslc.select", "*")],
                key: "company",
                changed: Some("changedate"),
                also_found_by: None,
            },
            Resource {
                entity: Entity::Part,
                path: "maximo/api/os/mxapiinventory",
                query: &[("oslc.select", "*,item.description,item.commoditygroup")],
                key: "itemnum",
                changed: None,
                also_found_by: None,
            },
        ],
    },
    sandbox: include_str!("../sandbox/ibm-maximo.json"),
    style: ValueStyle::MaximoJson,
};
