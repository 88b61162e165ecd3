//! SAP S/4HANA: its OData V2 APIs (`API_PURCHASEORDER_PROCESS_SRV`, `API_MAINTENANCEORDER`,
//! `API_EQUIPMENT`, `API_BUSINESS_PARTNER`, `API_PRODUCT_SRV`), as Crosswalk reads and
//! writes them.
//!
//! Records come wrapped in `d.results`, pages with `$top`/`$skip` (or the server's
//! `d.__next`), dates as `/Date(ms)/` and decimals as text; writes need a CSRF token.
//!
//! Everything Crosswalk knows of the system is here: its default mappings
//! (`mappings/sap-s4hana/*.yaml`), its API ([`Dialect`]), its sandbox records
//! (`sandbox/sap-s4hana.json`) and how it writes values ([`ValueStyle`]).

use crosswalk_core::mapping::ValueStyle;
use crosswalk_core::model::Entity;

use crate::dialect::{Dialect, Protocol, Resource};
use crate::{System, SystemId};

/// SAP S/4HANA.
pub(crate) const SYSTEM: System = System {
    id: SystemId::SapS4Hana,
    name: "SAP S/4HANA",
    api: "OData V2 APIs (API_PURCHASEORDER_PROCESS_SRV, API_MAINTENANCEORDER, API_EQUIPMENT, API_BUSINESS_PARTNER, API_PRODUCT_SRV)",
    mappings: &[
        mapping!("sap-s4hana", PurchaseOrder, "purchase_order"),
        mapping!("sap-s4hana", WorkOrder, "work_order"),
        mapping!("sap-s4hana", Asset, "asset"),
        mapping!("sap-s4hana", Vendor, "vendor"),
        mapping!("sap-s4hana", Part, "part"),
    ],
    dialect: Dialect {
        protocol: Protocol::ODataV2,
        resources: &[
            Resource {
                entity: Entity::PurchaseOrder,
                path: "sap/opu/odata/sap/API_PURCHASEORDER_PROCESS_SRV/A_PurchaseOrder",
                query: &[(
                    "$expand",
                    "to_PurchaseOrderItem,to_PurchaseOrderItem/to_ScheduleLine",
                )],
                key: "PurchaseOrder",
                changed: Some("LastChangeDateTime"),
                also_found_by: None,
            },
            Resource {
                entity: Entity::WorkOrder,
                path: "sap/opu/odata/sap/API_MAINTENANCEORDER/MaintenanceOrder",
                query: &[("$expand", "to_MaintenanceOrderLongText")],
                key: "MaintenanceOrder",
                changed: Some("LastChangeDateTime"),
                also_found_by: None,
            },
            Resource {
                entity: Entity::Asset,
                path: "sap/opu/odata/sap/API_EQUIPMENT/Equipment",
                query: &[("$expand", "to_LongText")],
                key: "Equipment",
                changed: Some("LastChangeDateTime"),
                also_found_by: None,
            },
            Resource {
                entity: Entity::Vendor,
                path: "sap/opu/odata/sap/API_BUSINESS_PARTNER/A_BusinessPartner",
                query: &[(
                    "$expand",
                    "to_Supplier,to_Supplier/to_SupplierPurchasingOrg,to_BusinessPartnerTax,to_BusinessPartnerAddress,to_BusinessPartnerAddress/to_EmailAddress,to_BusinessPartnerAddress/to_PhoneNumber",
                )],
                key: "BusinessPartner",
                changed: Some("LastChangeDate"),
                also_found_by: Some("Supplier"),
            },
            Resource {
                entity: Entity::Part,
                path: "sap/opu/odata/sap/API_PRODUCT_SRV/A_Product",
                query: &[("$expand", "to_Description,to_Valuation")],
                key: "Product",
                changed: Some("LastChangeDateTime"),
                also_found_by: None,
            },
        ],
    },
    sandbox: include_str!("../sandbox/sap-s4hana.json"),
    style: ValueStyle::ODataV2,
};
