//! A source system's API as data: which protocol it speaks, and where it keeps each
//! entity. How a protocol pages, filters and writes is the service's upstream client's
//! business; this says only what differs from one system to the next.

use crosswalk_core::model::Entity;

/// The protocol a system's API speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OData V2 (SAP): `$top`/`$skip`, records in `d.results`, a server's `d.__next`,
    /// CSRF tokens for writes, `MERGE` updates.
    ODataV2,
    /// Maximo's JSON API: `oslc.pageSize`, records in `member`,
    /// `responseInfo.nextPage.href`, `x-method-override: PATCH` updates.
    MaximoJson,
    /// OData V4 (Dynamics 365): `$top`, records in `value`, `@odata.nextLink`.
    ODataV4,
}

/// Where a system keeps one entity.
#[derive(Debug)]
pub struct Resource {
    /// The entity.
    pub entity: Entity,
    /// The path under the base URL.
    pub path: &'static str,
    /// The system's query parameters that shape a record (expands, selects).
    pub query: &'static [(&'static str, &'static str)],
    /// The key property, to read one record.
    pub key: &'static str,
    /// The change timestamp property, for `updated_since`; `None` when the entity has
    /// none.
    pub changed: Option<&'static str>,
    /// Another property that names a record, tried when the key finds none: SAP's
    /// business partner by its supplier number, which purchase orders refer to and
    /// the vendor's id prefers.
    pub also_found_by: Option<&'static str>,
}

/// A system's API: its protocol and its resources.
#[derive(Debug)]
pub struct Dialect {
    /// The protocol.
    pub protocol: Protocol,
    /// One resource per entity the system maps, in the order of its mappings.
    pub resources: &'static [Resource],
}

impl Dialect {
    /// Where the system keeps `entity`; `None` when it has no such entity.
    pub fn resource(&self, entity: Entity) -> Option<&'static Resource> {
        let resources: &'static [Resource] = self.resources;
        resources.iter().find(|r| r.entity == entity)
    }

    /// The entity that credentials are verified with: the first the system has.
    pub fn first_entity(&self) -> Entity {
        self.resources[0].entity
    }

    /// The key property of an entity's records.
    pub fn key(&self, entity: Entity) -> Option<&'static str> {
        self.resource(entity).map(|r| r.key)
    }

    /// Whether `updated_since` can be passed to the system for this entity.
    pub fn filters_changes(&self, entity: Entity) -> bool {
        self.resource(entity).is_some_and(|r| r.changed.is_some())
    }
}
