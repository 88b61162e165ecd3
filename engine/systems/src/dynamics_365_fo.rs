//! Microsoft Dynamics 365 Finance and Operations: its OData V4 data entities
//! (`PurchaseOrderHeadersV2`, `PurchaseOrderLinesV2`, `VendorsV2`, `ReleasedProductsV2`),
//! across companies, as Crosswalk reads and writes them.
//!
//! Records come in `value`, pages with `$top` and `@odata.nextLink`, dates as ISO 8601
//! in UTC. It has no work orders or assets in Crosswalk's model.
//!
//! Everything Crosswalk knows of the system is here: its default mappings
//! (`mappings/dynamics-365-fo/*.yaml`), its API ([`Dialect`]), its sandbox records
//! (`sandbox/dynamics-365-fo.json`) and how it writes values ([`ValueStyle`]).

use crosswalk_core::mapping::ValueStyle;
use crosswalk_core::model::Entity;

use crate::dialect::{Dialect, Protocol, Resource};
use crate::{System, SystemId};

/// Microsoft Dynamics 365 Finance and Operations.
pub(crate) const SYSTEM: System = System {
    id: SystemId::Dynamics365Fo,
    name: "Microsoft Dynamics 365 Finance and Operations",
    api: "OData data entities (PurchaseOrderHeadersV2, PurchaseOrderLinesV2, VendorsV2, ReleasedProductsV2)",
    mappings: &[
        mapping!("dynamics-365-fo", PurchaseOrder, "purchase_order"),
        mapping!("dynamics-365-fo", Vendor, "vendor"),
        mapping!("dynamics-365-fo", Part, "part"),
    ],
    dialect: Dialect {
        protocol: Protocol::ODataV4,
        resources: &[
            Resource {
                entity: Entity::PurchaseOrder,
                path: "data/PurchaseOrderHeadersV2",
                query: &[
                    ("$expand", "PurchaseOrderLinesV2"),
                    ("cross-company", "true"),
                ],
                key: "PurchaseOrderNumber",
                changed: None,
                also_found_by: None,
            },
            Resource {
                entity: Entity::Vendor,
                path: "data/VendorsV2",
                query: &[("cross-company", "true")],
                key: "VendorAccountNumber",
                changed: None,
                also_found_by: None,
            },
            Resource {
                entity: Entity::Part,
                path: "data/ReleasedProductsV2",
                query: &[("cross-company", "true")],
                key: "ItemNumber",
                changed: None,
                also_found_by: None,
            },
        ],
    },
    sandbox: include_str!("../sandbox/dynamics-365-fo.json"),
    style: ValueStyle::ODataV4,
};
