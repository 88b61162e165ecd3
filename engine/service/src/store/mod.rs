//! Where the service keeps its configuration and what must outlive a restart:
//! tenants, API keys, connections (with their sealed credentials), the versions of
//! each connection's mapping, uploaded plugins, each connection's error log, webhook
//! subscriptions, the webhook outbox and each subscription's delivery log.
//!
//! [`Store`] is a small trait so that the engine does not depend on one database:
//! [`SledStore`] is the embedded default (one sled tree per kind of record, typed keys,
//! every change flushed to disk before it returns), and a shared database with change
//! notification can stand beside it for several replicas. Every method is scoped by
//! tenant where records belong to one, so that one tenant cannot reach another's.

mod sled_store;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::connection::{ErrorEntry, UpstreamConfig};
use crate::webhook::{Delivery, DeliveryAttempt, Subscription};
use crosswalk_core::mapping::OverrideSpec;
use crosswalk_core::model::Entity;
use crosswalk_plugin_host::LimitOverrides;
use crosswalk_systems::SystemId;

pub use sled_store::SledStore;

/// A failure of the storage itself (not a missing record: that is `None`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed: I/O, corruption, a full disk.
    #[error("storage error: {0}")]
    Database(String),
    /// A stored record does not decode: written by an incompatible version.
    #[error("stored {what} `{key}` does not decode: {message}")]
    Corrupt {
        /// The kind of record.
        what: &'static str,
        /// Its key.
        key: String,
        /// The decoder's message.
        message: String,
    },
    /// A change was computed from a version that is no longer the last: another change
    /// was stored in between. Nothing was stored.
    #[error(
        "the mapping moved to version {last} since version {base}, which this change was made from"
    )]
    VersionMoved {
        /// The version the change was made from.
        base: u64,
        /// The last stored version.
        last: u64,
    },
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages tenants and keys.
    Admin,
    /// Works with its tenant's connections and plugins.
    Tenant,
}

/// A holder of API keys, owner of connections and plugins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Tenant {
    /// `ten_…`.
    pub id: String,
    /// A name for people.
    pub name: String,
    /// RFC 3339.
    pub created_at: String,
}

/// An API key; only the sha256 of its secret is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// `key_…`: names the key in logs and in the author of changes.
    pub id: String,
    /// The tenant it acts for.
    pub tenant_id: String,
    /// What it may do.
    pub role: Role,
    /// RFC 3339.
    pub created_at: String,
}

/// How a connection gets its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Built-in sample data; writes change nothing.
    Sandbox,
    /// An upstream system's API.
    Live,
}

/// A tenant's link to one source system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Connection {
    /// `con_…`.
    pub id: String,
    /// The owner.
    pub tenant_id: String,
    /// The source system, e.g. `sap-s4hana`.
    pub system: SystemId,
    /// A name for people.
    pub name: String,
    /// Sandbox or live.
    pub mode: Mode,
    /// RFC 3339.
    pub created_at: String,
    /// How a live connection reaches its system (its credentials are stored sealed,
    /// apart, and never shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<UpstreamConfig>,
    /// The connection token (`ctk_…`): names the credentials in use; reauthorization
    /// issues a new one, and connection events carry it.
    #[serde(default)]
    pub token: String,
    /// Since when the upstream has refused the credentials (RFC 3339); reads fail
    /// fast until the connection is reauthorized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_reauth_since: Option<String>,
}

/// A plugin version bound to a connection's mapping, with its limits there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PluginBinding {
    /// The plugin version, by content: the sha256 of its component, in lowercase hex.
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub sha256: String,
    /// Changes to the default limits, within the ceiling.
    #[serde(default)]
    pub limits: LimitOverrides,
}

/// One version of a connection's mapping of one entity: its overrides and the plugins
/// bound to it. Versions are never changed; a rollback is a new version that copies an
/// old one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MappingVersion {
    /// The connection.
    pub connection_id: String,
    /// The entity.
    pub entity: Entity,
    /// 1, 2, 3, … per connection and entity.
    pub version: u64,
    /// The overrides (empty for the system's default).
    pub overrides: OverrideSpec,
    /// The plugins the mapping may call.
    #[serde(default)]
    pub plugins: Vec<PluginBinding>,
    /// The key that made the change.
    pub author: String,
    /// RFC 3339.
    pub created_at: String,
    /// The version this one restores, for a rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<u64>,
}

/// An uploaded plugin version (its bytes are stored apart, by sha256).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PluginRecord {
    /// The owner.
    pub tenant_id: String,
    /// The sha256 of the component.
    pub sha256: String,
    /// The name it describes itself with.
    pub name: String,
    /// The version it describes.
    pub version: String,
    /// The component's size in bytes.
    pub size: u64,
    /// RFC 3339.
    pub uploaded_at: String,
}

/// A plugin version in use: a connection's current mapping of an entity binds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginUse {
    /// The connection.
    pub connection_id: String,
    /// The entity whose mapping binds the version.
    pub entity: Entity,
}

/// The service's storage.
pub trait Store: Send + Sync + 'static {
    /// Creates a tenant.
    fn create_tenant(&self, name: &str) -> Result<Tenant, StoreError>;
    /// A tenant by id.
    fn tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError>;
    /// Every tenant.
    fn tenants(&self) -> Result<Vec<Tenant>, StoreError>;

    /// Creates a key for a tenant; returns it and its secret, which is not stored.
    fn create_key(&self, tenant_id: &str, role: Role) -> Result<(ApiKey, String), StoreError>;
    /// Stores a key with a secret chosen by the operator (`CROSSWALK_ADMIN_KEY`).
    fn import_key(&self, tenant_id: &str, role: Role, secret: &str) -> Result<ApiKey, StoreError>;
    /// The key whose secret this is.
    fn key_by_secret(&self, secret: &str) -> Result<Option<ApiKey>, StoreError>;

    /// Creates a connection.
    fn create_connection(
        &self,
        tenant_id: &str,
        system: SystemId,
        name: &str,
        mode: Mode,
        upstream: Option<UpstreamConfig>,
    ) -> Result<Connection, StoreError>;
    /// Replaces a connection's record (its token, its needs-reauth mark) and, when
    /// given, its sealed credentials, together.
    fn update_connection(
        &self,
        connection: &Connection,
        credentials: Option<&[u8]>,
    ) -> Result<(), StoreError>;
    /// A connection's sealed credentials.
    fn credentials(&self, connection_id: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// A tenant's connection by id; `None` for another tenant's.
    fn connection(&self, tenant_id: &str, id: &str) -> Result<Option<Connection>, StoreError>;
    /// A tenant's connections.
    fn connections(&self, tenant_id: &str) -> Result<Vec<Connection>, StoreError>;
    /// Every connection of every tenant (for loading at start).
    fn all_connections(&self) -> Result<Vec<Connection>, StoreError>;
    /// Deletes a connection and its mapping versions; `false` when there was none.
    fn delete_connection(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError>;

    /// Stores the next version of a connection's mapping of an entity, the last plus
    /// one, when the last stored version is `base` (0: none yet). The check and the
    /// append are one atomic step, so that a change made from an old version never
    /// replaces a newer one: when another change came in between, nothing is stored and
    /// the answer is [`StoreError::VersionMoved`].
    #[allow(clippy::too_many_arguments)]
    fn append_mapping(
        &self,
        connection_id: &str,
        entity: Entity,
        base: u64,
        overrides: OverrideSpec,
        plugins: Vec<PluginBinding>,
        author: &str,
        rollback_of: Option<u64>,
    ) -> Result<MappingVersion, StoreError>;
    /// Every version kept of a connection's mapping of an entity, oldest first.
    fn mapping_history(
        &self,
        connection_id: &str,
        entity: Entity,
    ) -> Result<Vec<MappingVersion>, StoreError>;
    /// Removes the oldest versions of a connection's mapping of an entity: all but the
    /// newest `keep`, and those that take the versions kept past `keep_bytes` as
    /// stored. The newest version always stays. Returns how many were removed.
    fn prune_mapping_history(
        &self,
        connection_id: &str,
        entity: Entity,
        keep: usize,
        keep_bytes: u64,
    ) -> Result<usize, StoreError>;

    /// Stores an uploaded plugin version (idempotent for the same tenant and bytes).
    fn put_plugin(&self, record: &PluginRecord, bytes: &[u8]) -> Result<(), StoreError>;
    /// A tenant's plugin version and its bytes.
    fn plugin(
        &self,
        tenant_id: &str,
        sha256: &str,
    ) -> Result<Option<(PluginRecord, Vec<u8>)>, StoreError>;
    /// A tenant's plugin versions.
    fn plugins(&self, tenant_id: &str) -> Result<Vec<PluginRecord>, StoreError>;
    /// Deletes a tenant's plugin version; `false` when there was none.
    fn delete_plugin(&self, tenant_id: &str, sha256: &str) -> Result<bool, StoreError>;
    /// Where a tenant's plugin version `sha256` is in use: the first of the tenant's
    /// connections (in the order of [`Store::connections`]) whose current mapping of an
    /// entity (in the order of [`Entity::ALL`]) binds it; `None` when no current mapping
    /// does. Only the last version of each mapping counts: it is the one requests map
    /// with. This reads every mapping history of the tenant; a store that indexes
    /// bindings may answer faster.
    fn plugin_use(&self, tenant_id: &str, sha256: &str) -> Result<Option<PluginUse>, StoreError> {
        for c in self.connections(tenant_id)? {
            for entity in Entity::ALL {
                let bound = self
                    .mapping_history(&c.id, entity)?
                    .last()
                    .is_some_and(|v| v.plugins.iter().any(|b| b.sha256 == sha256));
                if bound {
                    return Ok(Some(PluginUse {
                        connection_id: c.id,
                        entity,
                    }));
                }
            }
        }
        Ok(None)
    }

    /// Adds to a connection's error log, keeping its newest `keep` entries.
    fn log_error(
        &self,
        connection_id: &str,
        entry: &ErrorEntry,
        keep: usize,
    ) -> Result<(), StoreError>;
    /// A connection's error log, newest first.
    fn errors(&self, connection_id: &str) -> Result<Vec<ErrorEntry>, StoreError>;

    /// Stores a webhook subscription.
    fn put_subscription(&self, subscription: &Subscription) -> Result<(), StoreError>;
    /// A tenant's subscription by id.
    fn subscription(&self, tenant_id: &str, id: &str) -> Result<Option<Subscription>, StoreError>;
    /// A tenant's subscriptions.
    fn subscriptions(&self, tenant_id: &str) -> Result<Vec<Subscription>, StoreError>;
    /// Deletes a subscription and its delivery log; `false` when there was none.
    fn delete_subscription(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError>;

    /// Adds or replaces a delivery in the webhook outbox.
    fn put_delivery(&self, delivery: &Delivery) -> Result<(), StoreError>;
    /// Removes a delivery from the outbox.
    fn remove_delivery(&self, id: &str) -> Result<(), StoreError>;
    /// Every delivery in the outbox.
    fn deliveries(&self) -> Result<Vec<Delivery>, StoreError>;
    /// Adds to a subscription's delivery log, keeping its newest `keep` entries.
    fn log_delivery(
        &self,
        subscription_id: &str,
        attempt: &DeliveryAttempt,
        keep: usize,
    ) -> Result<(), StoreError>;
    /// A subscription's delivery log, newest first.
    fn delivery_log(&self, subscription_id: &str) -> Result<Vec<DeliveryAttempt>, StoreError>;
}

/// Now, as RFC 3339 in UTC.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(sha256: &str) -> PluginBinding {
        PluginBinding {
            sha256: sha256.to_owned(),
            limits: LimitOverrides::default(),
        }
    }

    #[test]
    fn a_plugin_is_in_use_while_a_current_mapping_of_its_tenant_binds_it() {
        let dir =
            std::env::temp_dir().join(format!("crosswalk-store-plugin-use-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = SledStore::open(&dir).unwrap();
        let acme = store.create_tenant("Acme").unwrap();
        let other = store.create_tenant("Other").unwrap();
        let connect = |name: &str| {
            store
                .create_connection(&acme.id, SystemId::IbmMaximo, name, Mode::Sandbox, None)
                .unwrap()
        };
        let (first, second) = (connect("first"), connect("second"));
        let (uom, unused) = ("a".repeat(64), "b".repeat(64));
        let append = |c: &Connection, entity: Entity, base: u64, plugins: Vec<PluginBinding>| {
            store
                .append_mapping(
                    &c.id,
                    entity,
                    base,
                    OverrideSpec::default(),
                    plugins,
                    "key_1",
                    None,
                )
                .unwrap();
        };
        assert_eq!(store.plugin_use(&acme.id, &uom).unwrap(), None);
        // Bound by an earlier version of the first connection's mapping only: history,
        // not use.
        append(&first, Entity::WorkOrder, 0, vec![binding(&uom)]);
        append(&first, Entity::WorkOrder, 1, vec![]);
        assert_eq!(store.plugin_use(&acme.id, &uom).unwrap(), None);
        // Bound by the second connection's current mapping of assets.
        append(&second, Entity::WorkOrder, 0, vec![binding(&unused)]);
        append(
            &second,
            Entity::Asset,
            0,
            vec![binding(&unused), binding(&uom)],
        );
        assert_eq!(
            store.plugin_use(&acme.id, &uom).unwrap(),
            Some(PluginUse {
                connection_id: second.id.clone(),
                entity: Entity::Asset,
            })
        );
        // Another tenant's plugin of the same bytes is not in use.
        assert_eq!(store.plugin_use(&other.id, &uom).unwrap(), None);
        // Unbound by a new version: no longer in use.
        append(&second, Entity::Asset, 1, vec![binding(&unused)]);
        assert_eq!(store.plugin_use(&acme.id, &uom).unwrap(), None);
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
