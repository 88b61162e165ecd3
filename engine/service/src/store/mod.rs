//! Where the service keeps its configuration and what must outlive a restart:
//! tenants, API keys, connections (with their sealed credentials), the versions of
//! each connection's mapping, uploaded plugins, each connection's error log, webhook
//! subscriptions, the webhook outbox and each subscription's delivery log.
//!
//! [`Store`] is a small async trait so that the engine does not depend on one database
//! and never waits for one on an async worker:
//! - [`SledStore`] is the embedded default: one sled tree per kind of record, typed
//!   keys, every change flushed to disk (on the blocking pool) before it returns;
//! - [`PgStore`] is the shared store of a fleet of replicas: PostgreSQL through a
//!   connection pool, its schema versioned by [`migrations`](pg_store).
//!
//! Every method is scoped by tenant where records belong to one, so that one tenant
//! cannot reach another's. Code that runs on the blocking pool (compiling a pipeline,
//! recording a monitor's findings) calls the store through [`wait`].

mod cached;
pub mod cluster;
mod pg_store;
mod sled_store;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::connection::{ErrorEntry, PluginLogEntry, UpstreamConfig};
use crate::webhook::{Delivery, DeliveryAttempt, Subscription};
use crosswalk_core::mapping::OverrideSpec;
use crosswalk_core::model::Entity;
use crosswalk_plugin_host::LimitOverrides;
use crosswalk_systems::SystemId;

pub use cached::Cached;
pub use pg_store::{MIGRATIONS, PgOptions, PgStore, PgStoreError, redact};
pub use sled_store::SledStore;

/// Everything a store holds, for copying it into another ([`Store::dump`],
/// [`Store::load`]): `crosswalk store copy` moves a sled store into PostgreSQL (and
/// back) with it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dump {
    /// Every tenant.
    pub tenants: Vec<Tenant>,
    /// Every key, by the sha256 of its secret (the secret itself is not stored).
    pub keys: Vec<(Vec<u8>, ApiKey)>,
    /// Every connection, with its sealed credentials.
    pub connections: Vec<(Connection, Option<Vec<u8>>)>,
    /// Every mapping version kept, of every connection and entity.
    pub mappings: Vec<MappingVersion>,
    /// The last version ever stored of each mapping, which numbering goes on from (the
    /// history may keep fewer).
    pub mapping_heads: Vec<(String, Entity, u64)>,
    /// Every tenant's plugin versions.
    pub plugins: Vec<PluginRecord>,
    /// The bytes of each plugin version, once.
    pub plugin_bytes: Vec<(String, Vec<u8>)>,
    /// Each connection's error log, oldest first.
    pub errors: Vec<(String, Vec<ErrorEntry>)>,
    /// Each connection's plugin log, oldest first.
    pub plugin_logs: Vec<(String, Vec<PluginLogEntry>)>,
    /// Every webhook subscription.
    pub subscriptions: Vec<Subscription>,
    /// The webhook outbox.
    pub outbox: Vec<Delivery>,
    /// Each subscription's delivery log, oldest first.
    pub delivery_logs: Vec<(String, Vec<DeliveryAttempt>)>,
    /// The meta records (who set the store up, the secret key's check).
    pub meta: Vec<(String, String)>,
}

/// How many of each kind of record a [`Dump`] holds: what a copy is verified by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Tenants.
    pub tenants: usize,
    /// Keys.
    pub keys: usize,
    /// Connections.
    pub connections: usize,
    /// Connections with sealed credentials.
    pub credentials: usize,
    /// Mapping versions.
    pub mapping_versions: usize,
    /// Plugin versions.
    pub plugins: usize,
    /// Plugin components (bytes).
    pub plugin_components: usize,
    /// Error log entries.
    pub error_log_entries: usize,
    /// Plugin log lines.
    pub plugin_log_lines: usize,
    /// Webhook subscriptions.
    pub subscriptions: usize,
    /// Deliveries in the outbox.
    pub outbox: usize,
    /// Delivery log entries.
    pub delivery_log_entries: usize,
    /// Meta records.
    pub meta: usize,
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kinds = [
            (self.tenants, "tenants"),
            (self.keys, "keys"),
            (self.connections, "connections"),
            (self.credentials, "sealed credentials"),
            (self.mapping_versions, "mapping versions"),
            (self.plugins, "plugin versions"),
            (self.plugin_components, "plugin components"),
            (self.error_log_entries, "error log entries"),
            (self.plugin_log_lines, "plugin log lines"),
            (self.subscriptions, "webhook subscriptions"),
            (self.outbox, "outbox deliveries"),
            (self.delivery_log_entries, "delivery log entries"),
            (self.meta, "meta records"),
        ];
        let text: Vec<String> = kinds
            .iter()
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
        f.write_str(&text.join(", "))
    }
}

impl Dump {
    /// Refuses a target that holds anything: a copy never merges.
    pub fn check_empty(&self) -> Result<(), StoreError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(StoreError::NotEmpty {
                holds: self.counts().to_string(),
            })
        }
    }

    /// How many of each kind of record it holds.
    pub fn counts(&self) -> Counts {
        Counts {
            tenants: self.tenants.len(),
            keys: self.keys.len(),
            connections: self.connections.len(),
            credentials: self.connections.iter().filter(|(_, c)| c.is_some()).count(),
            mapping_versions: self.mappings.len(),
            plugins: self.plugins.len(),
            plugin_components: self.plugin_bytes.len(),
            error_log_entries: self.errors.iter().map(|(_, e)| e.len()).sum(),
            plugin_log_lines: self.plugin_logs.iter().map(|(_, e)| e.len()).sum(),
            subscriptions: self.subscriptions.len(),
            outbox: self.outbox.len(),
            delivery_log_entries: self.delivery_logs.iter().map(|(_, e)| e.len()).sum(),
            meta: self.meta.len(),
        }
    }

    /// Whether it holds nothing at all.
    pub fn is_empty(&self) -> bool {
        self.counts() == Counts::default()
    }
}

/// When a connection's plugin log drops its oldest lines: not at every append (which
/// would count the whole log each time, for a log written on every request), but
/// after `keep / 16` lines were added since the last time (and at the first append
/// after a start). Between two trims the store holds up to that many lines more than
/// `keep`; the API never shows more than `keep`.
#[derive(Default)]
pub(crate) struct TrimSchedule(std::sync::Mutex<std::collections::HashMap<String, usize>>);

impl TrimSchedule {
    /// Whether `owner`'s log is to be trimmed now that `added` lines went in.
    pub(crate) fn due(&self, owner: &str, added: usize, keep: usize) -> bool {
        let mut since = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = since.entry(owner.to_owned()).or_insert(usize::MAX / 2);
        *count = count.saturating_add(added);
        if *count >= (keep / 16).max(1) {
            *count = 0;
            true
        } else {
            false
        }
    }

    /// Forgets a deleted owner.
    pub(crate) fn forget(&self, owner: &str) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(owner);
    }
}

/// Held while a tenant's count of something is checked and one more is stored
/// ([`Store::quota_lock`]); dropping it lets the next creation of the tenant go.
pub struct QuotaLock(#[allow(dead_code)] Box<dyn Send + Sync>);

impl QuotaLock {
    /// A lock that holds nothing beyond what the caller holds (a store only this
    /// process uses, whose creations the service orders itself).
    pub fn local() -> QuotaLock {
        QuotaLock(Box::new(()))
    }

    /// A lock that lasts as long as `guard`.
    pub fn holding(guard: impl Send + Sync + 'static) -> QuotaLock {
        QuotaLock(Box::new(guard))
    }
}

impl std::fmt::Debug for QuotaLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QuotaLock")
    }
}

/// A change another replica committed, as the shared store announces it
/// ([`Store::changes`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// A new version of a connection's mapping of an entity (its overrides or its
    /// plugin bindings).
    Mapping {
        /// The owner.
        tenant: String,
        /// The connection.
        connection: String,
        /// The entity.
        entity: Entity,
        /// The version now last.
        version: u64,
    },
    /// A connection's record changed (its credentials, its token, its needs-reauth
    /// mark) or it was deleted.
    Connection {
        /// The owner.
        tenant: String,
        /// The connection.
        connection: String,
    },
    /// A delivery was added to the webhook outbox or rescheduled: a replica that is
    /// not delivering may look for work (what another replica claimed it leaves).
    Outbox,
    /// Changes may have been missed (the listener reconnected, or fell behind):
    /// compare what is held with the store and reload what changed.
    Resync,
}

/// Waits for a store call from synchronous code on the blocking pool (a
/// `spawn_blocking` task) of the current tokio runtime. It panics on an async worker,
/// where waiting would stall every request that worker serves: call the store with
/// `.await` there.
pub fn wait<F: std::future::Future>(call: F) -> F::Output {
    tokio::runtime::Handle::current().block_on(call)
}

/// A failure of the storage itself (not a missing record: that is `None`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed: I/O, corruption, a full disk, a statement it refused.
    #[error("storage error: {0}")]
    Database(String),
    /// The database cannot be reached now (a shared store's server is down, or every
    /// connection of the pool is busy past its wait): the request may be tried again.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
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
    /// A copy into a store that holds records already: nothing was written.
    #[error("the store to copy into is not empty: it holds {holds}; copy into an empty store")]
    NotEmpty {
        /// What it holds, by kind.
        holds: String,
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

impl Tenant {
    /// A new tenant, with a fresh id.
    pub fn new(name: &str) -> Tenant {
        Tenant {
            id: crate::ids::random_id("ten"),
            name: name.to_owned(),
            created_at: now(),
        }
    }
}

/// An API key; only the sha256 of its secret is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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

impl ApiKey {
    /// A new key of a tenant, with a fresh id.
    pub fn new(tenant_id: &str, role: Role) -> ApiKey {
        ApiKey {
            id: crate::ids::random_id("key"),
            tenant_id: tenant_id.to_owned(),
            role,
            created_at: now(),
        }
    }
}

/// A fresh key secret: `cw_` and 24 random bytes in hex.
pub fn new_secret() -> String {
    format!("cw_{}", hex::encode(crate::ids::random_bytes::<24>()))
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

impl Connection {
    /// A new connection of a tenant, with a fresh id and connection token.
    pub fn new(
        tenant_id: &str,
        system: SystemId,
        name: &str,
        mode: Mode,
        upstream: Option<UpstreamConfig>,
    ) -> Connection {
        Connection {
            id: crate::ids::random_id("con"),
            tenant_id: tenant_id.to_owned(),
            system,
            name: name.to_owned(),
            mode,
            created_at: now(),
            upstream,
            token: crate::ids::random_id("ctk"),
            needs_reauth_since: None,
        }
    }
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
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates a tenant.
    async fn create_tenant(&self, name: &str) -> Result<Tenant, StoreError>;
    /// A tenant by id.
    async fn tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError>;
    /// Every tenant.
    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError>;

    /// Creates a key for a tenant; returns it and its secret, which is not stored.
    async fn create_key(
        &self,
        tenant_id: &str,
        role: Role,
    ) -> Result<(ApiKey, String), StoreError> {
        let secret = new_secret();
        let key = self.import_key(tenant_id, role, &secret).await?;
        Ok((key, secret))
    }
    /// Stores a key with a secret chosen by the operator (`CROSSWALK_ADMIN_KEY`).
    async fn import_key(
        &self,
        tenant_id: &str,
        role: Role,
        secret: &str,
    ) -> Result<ApiKey, StoreError>;
    /// The key whose secret this is.
    async fn key_by_secret(&self, secret: &str) -> Result<Option<ApiKey>, StoreError>;

    /// Creates a connection.
    async fn create_connection(
        &self,
        tenant_id: &str,
        system: SystemId,
        name: &str,
        mode: Mode,
        upstream: Option<UpstreamConfig>,
    ) -> Result<Connection, StoreError>;
    /// Replaces a connection's record (its token, its needs-reauth mark) and, when
    /// given, its sealed credentials, together.
    async fn update_connection(
        &self,
        connection: &Connection,
        credentials: Option<&[u8]>,
    ) -> Result<(), StoreError>;
    /// A connection's sealed credentials.
    async fn credentials(&self, connection_id: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// A tenant's connection by id; `None` for another tenant's.
    async fn connection(&self, tenant_id: &str, id: &str)
    -> Result<Option<Connection>, StoreError>;
    /// A tenant's connections.
    async fn connections(&self, tenant_id: &str) -> Result<Vec<Connection>, StoreError>;
    /// Every connection of every tenant (for loading at start).
    async fn all_connections(&self) -> Result<Vec<Connection>, StoreError>;
    /// Deletes a connection and its mapping versions; `false` when there was none.
    async fn delete_connection(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError>;

    /// Stores the next version of a connection's mapping of an entity, the last plus
    /// one, when the last stored version is `base` (0: none yet). The check and the
    /// append are one atomic step, so that a change made from an old version never
    /// replaces a newer one: when another change came in between, nothing is stored and
    /// the answer is [`StoreError::VersionMoved`].
    #[allow(clippy::too_many_arguments)]
    async fn append_mapping(
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
    async fn mapping_history(
        &self,
        connection_id: &str,
        entity: Entity,
    ) -> Result<Vec<MappingVersion>, StoreError>;
    /// Removes the oldest versions of a connection's mapping of an entity: all but the
    /// newest `keep`, and those that take the versions kept past `keep_bytes` as
    /// stored. The newest version always stays. Returns how many were removed.
    async fn prune_mapping_history(
        &self,
        connection_id: &str,
        entity: Entity,
        keep: usize,
        keep_bytes: u64,
    ) -> Result<usize, StoreError>;

    /// Stores an uploaded plugin version (idempotent for the same tenant and bytes).
    async fn put_plugin(&self, record: &PluginRecord, bytes: &[u8]) -> Result<(), StoreError>;
    /// A tenant's plugin version and its bytes.
    async fn plugin(
        &self,
        tenant_id: &str,
        sha256: &str,
    ) -> Result<Option<(PluginRecord, Vec<u8>)>, StoreError>;
    /// A tenant's plugin versions.
    async fn plugins(&self, tenant_id: &str) -> Result<Vec<PluginRecord>, StoreError>;
    /// Deletes a tenant's plugin version; `false` when there was none.
    async fn delete_plugin(&self, tenant_id: &str, sha256: &str) -> Result<bool, StoreError>;
    /// Where a tenant's plugin version `sha256` is in use: the first of the tenant's
    /// connections (in the order of [`Store::connections`]) whose current mapping of an
    /// entity (in the order of [`Entity::ALL`]) binds it; `None` when no current mapping
    /// does. Only the last version of each mapping counts: it is the one requests map
    /// with. This reads every mapping history of the tenant; a store that indexes
    /// bindings may answer faster.
    async fn plugin_use(
        &self,
        tenant_id: &str,
        sha256: &str,
    ) -> Result<Option<PluginUse>, StoreError> {
        for c in self.connections(tenant_id).await? {
            for entity in Entity::ALL {
                let bound = self
                    .mapping_history(&c.id, entity)
                    .await?
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
    async fn log_error(
        &self,
        connection_id: &str,
        entry: &ErrorEntry,
        keep: usize,
    ) -> Result<(), StoreError>;
    /// A connection's error log, newest first.
    async fn errors(&self, connection_id: &str) -> Result<Vec<ErrorEntry>, StoreError>;

    /// Adds lines to a connection's plugin log, in order, keeping its newest `keep`.
    async fn log_plugin(
        &self,
        connection_id: &str,
        lines: &[PluginLogEntry],
        keep: usize,
    ) -> Result<(), StoreError>;
    /// A connection's plugin log, newest first.
    async fn plugin_log(&self, connection_id: &str) -> Result<Vec<PluginLogEntry>, StoreError>;

    /// Stores a webhook subscription.
    async fn put_subscription(&self, subscription: &Subscription) -> Result<(), StoreError>;
    /// A tenant's subscription by id.
    async fn subscription(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<Subscription>, StoreError>;
    /// A tenant's subscriptions.
    async fn subscriptions(&self, tenant_id: &str) -> Result<Vec<Subscription>, StoreError>;
    /// Deletes a subscription and its delivery log; `false` when there was none.
    async fn delete_subscription(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError>;

    /// Adds or replaces a delivery in the webhook outbox.
    async fn put_delivery(&self, delivery: &Delivery) -> Result<(), StoreError>;
    /// Removes a delivery from the outbox.
    async fn remove_delivery(&self, id: &str) -> Result<(), StoreError>;
    /// Every delivery in the outbox.
    async fn deliveries(&self) -> Result<Vec<Delivery>, StoreError>;
    /// Claims for `owner`, until `until_ms`, the subscriptions that have a delivery due
    /// by `now_ms` and that no live claim holds (at most `limit` of them); answers the
    /// due deliveries of those it claimed, oldest first. One replica at a time
    /// delivers a subscription's deliveries, in order; a claim ends with
    /// [`Store::release_claim`], or expires, so that the deliveries of a replica that
    /// stopped mid-way are claimed by another (at least once: a delivery it sent but
    /// did not record is sent again, with the same event id).
    async fn claim_outbox(
        &self,
        owner: &str,
        now_ms: u64,
        until_ms: u64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;
    /// Extends `owner`'s claim on a subscription to `until_ms`; `false` when the claim
    /// is no longer `owner`'s (it expired and another replica claimed it).
    async fn renew_claim(
        &self,
        owner: &str,
        subscription_id: &str,
        until_ms: u64,
    ) -> Result<bool, StoreError>;
    /// Ends `owner`'s claim on a subscription.
    async fn release_claim(&self, owner: &str, subscription_id: &str) -> Result<(), StoreError>;
    /// When the outbox next needs looking at, in Unix milliseconds: the earliest due
    /// time of a delivery whose subscription no live claim holds, or the earliest
    /// expiry of a claim; `None` for an empty outbox.
    async fn outbox_next(&self, now_ms: u64) -> Result<Option<u64>, StoreError>;
    /// Adds to a subscription's delivery log, keeping its newest `keep` entries.
    async fn log_delivery(
        &self,
        subscription_id: &str,
        attempt: &DeliveryAttempt,
        keep: usize,
    ) -> Result<(), StoreError>;
    /// A subscription's delivery log, newest first.
    async fn delivery_log(&self, subscription_id: &str)
    -> Result<Vec<DeliveryAttempt>, StoreError>;

    /// Stores `value` under `key` unless a value is there already; answers the value
    /// stored, this one or the first. Replicas agree through it on what is decided
    /// once per store: which of them sets a fresh store up, which secret key seals it.
    async fn claim_meta(&self, key: &str, value: &str) -> Result<String, StoreError>;

    /// The last version of a connection's mapping of an entity (0: none stored), read
    /// without the history.
    async fn mapping_version(&self, connection_id: &str, entity: Entity)
    -> Result<u64, StoreError>;

    /// Marks a connection as refused by its upstream since `at`, unless it is marked
    /// already or its token is no longer `token` (it was reauthorized since): answers
    /// whether this call marked it. Of several replicas that meet the same refusal, one
    /// marks the connection and raises `connection.reauth_required`.
    async fn mark_needs_reauth(
        &self,
        tenant_id: &str,
        connection_id: &str,
        token: &str,
        at: &str,
    ) -> Result<bool, StoreError>;

    /// Orders a tenant's creations counted against a quota across every process that
    /// uses the store: hold the lock to count, then store, with no other replica's
    /// creation for the tenant in between. A store only this process uses answers
    /// [`QuotaLock::local`] (the service's own lock orders its creations).
    async fn quota_lock(&self, tenant_id: &str) -> Result<QuotaLock, StoreError> {
        let _ = tenant_id;
        Ok(QuotaLock::local())
    }

    /// Everything the store holds, read in one pass (for `crosswalk store copy`; the
    /// service never calls it).
    async fn dump(&self) -> Result<Dump, StoreError>;

    /// Writes a [`Dump`] into this store, which must hold nothing (a copy never
    /// merges): ids, versions, sealed credentials and logs as they were.
    async fn load(&self, dump: &Dump) -> Result<(), StoreError>;

    /// The changes replicas commit, this one's included, for a store shared by
    /// several: `None` for a store only this process uses. A receiver that falls
    /// behind (`RecvError::Lagged`) has missed changes: it resyncs as on
    /// [`Change::Resync`].
    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<Change>> {
        None
    }
}

/// Now, as RFC 3339 in UTC.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
