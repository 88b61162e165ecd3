//! What every request reads, kept in memory: the API key behind a secret and the
//! connection a request names. [`Cached`] wraps a store; its own writes drop what they
//! change, and the changes other replicas commit drop theirs through
//! [`Cached::forget_connection`] and [`Cached::clear`] (called by the replica's
//! change follower), so that a shared store across a network is not on the path of
//! every request.
//!
//! A read that missed stores what it read only if nothing was dropped meanwhile (a
//! generation count), so a change that lands while a request reads cannot be
//! overwritten by the older record. Each map holds at most [`Cached::MAX_ENTRIES`]
//! entries and starts over when full; an unknown key is not kept, so secrets that do
//! not exist cannot fill it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use super::{
    ApiKey, Change, Connection, MappingVersion, Mode, PluginBinding, PluginRecord, PluginUse, Role,
    Store, StoreError, Tenant,
};
use crate::connection::{ErrorEntry, PluginLogEntry, UpstreamConfig};
use crate::webhook::{Delivery, DeliveryAttempt, Subscription};
use crosswalk_core::mapping::OverrideSpec;
use crosswalk_core::model::Entity;
use crosswalk_systems::SystemId;

type ConnectionKey = (String, String);

/// A store with the keys and connections that requests read kept in memory.
pub struct Cached {
    inner: Arc<dyn Store>,
    keys: RwLock<HashMap<[u8; 32], ApiKey>>,
    connections: RwLock<HashMap<ConnectionKey, Connection>>,
    /// Counts what was dropped: a read that missed keeps what it read only if this
    /// did not move meanwhile.
    generation: AtomicU64,
}

impl Cached {
    /// Entries each map holds at most.
    pub const MAX_ENTRIES: usize = 100_000;

    /// `inner`, with keys and connections kept in memory.
    pub fn new(inner: Arc<dyn Store>) -> Cached {
        Cached {
            inner,
            keys: RwLock::new(HashMap::new()),
            connections: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }
    }

    /// Drops a connection that changed (here or on another replica).
    pub fn forget_connection(&self, tenant_id: &str, connection_id: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.connections
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(tenant_id.to_owned(), connection_id.to_owned()));
    }

    /// Drops everything (changes may have been missed).
    pub fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.connections
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.keys.write().unwrap_or_else(|p| p.into_inner()).clear();
    }

    fn keep<K: std::hash::Hash + Eq, V>(
        map: &RwLock<HashMap<K, V>>,
        generation: &AtomicU64,
        read_at: u64,
        key: K,
        value: V,
    ) {
        let mut map = map.write().unwrap_or_else(|p| p.into_inner());
        // Checked under the map's lock: a drop that starts after this waits for it.
        if generation.load(Ordering::SeqCst) != read_at {
            return;
        }
        if map.len() >= Self::MAX_ENTRIES {
            map.clear();
        }
        map.insert(key, value);
    }
}

fn secret_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

#[async_trait::async_trait]
impl Store for Cached {
    async fn create_tenant(&self, name: &str) -> Result<Tenant, StoreError> {
        self.inner.create_tenant(name).await
    }

    async fn tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        self.inner.tenant(id).await
    }

    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        self.inner.tenants().await
    }

    async fn import_key(
        &self,
        tenant_id: &str,
        role: Role,
        secret: &str,
    ) -> Result<ApiKey, StoreError> {
        let key = self.inner.import_key(tenant_id, role, secret).await?;
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.keys
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&secret_hash(secret));
        Ok(key)
    }

    async fn key_by_secret(&self, secret: &str) -> Result<Option<ApiKey>, StoreError> {
        let hash = secret_hash(secret);
        if let Some(key) = self
            .keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&hash)
        {
            return Ok(Some(key.clone()));
        }
        let read_at = self.generation.load(Ordering::SeqCst);
        let key = self.inner.key_by_secret(secret).await?;
        if let Some(key) = &key {
            Self::keep(&self.keys, &self.generation, read_at, hash, key.clone());
        }
        Ok(key)
    }

    async fn create_connection(
        &self,
        tenant_id: &str,
        system: SystemId,
        name: &str,
        mode: Mode,
        upstream: Option<UpstreamConfig>,
    ) -> Result<Connection, StoreError> {
        self.inner
            .create_connection(tenant_id, system, name, mode, upstream)
            .await
    }

    async fn update_connection(
        &self,
        connection: &Connection,
        credentials: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let updated = self.inner.update_connection(connection, credentials).await;
        self.forget_connection(&connection.tenant_id, &connection.id);
        updated
    }

    async fn credentials(&self, connection_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.credentials(connection_id).await
    }

    async fn connection(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<Connection>, StoreError> {
        let key = (tenant_id.to_owned(), id.to_owned());
        if let Some(c) = self
            .connections
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(Some(c.clone()));
        }
        let read_at = self.generation.load(Ordering::SeqCst);
        let c = self.inner.connection(tenant_id, id).await?;
        if let Some(c) = &c {
            Self::keep(&self.connections, &self.generation, read_at, key, c.clone());
        }
        Ok(c)
    }

    async fn connections(&self, tenant_id: &str) -> Result<Vec<Connection>, StoreError> {
        self.inner.connections(tenant_id).await
    }

    async fn all_connections(&self) -> Result<Vec<Connection>, StoreError> {
        self.inner.all_connections().await
    }

    async fn delete_connection(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError> {
        let deleted = self.inner.delete_connection(tenant_id, id).await;
        self.forget_connection(tenant_id, id);
        deleted
    }

    async fn append_mapping(
        &self,
        connection_id: &str,
        entity: Entity,
        base: u64,
        overrides: OverrideSpec,
        plugins: Vec<PluginBinding>,
        author: &str,
        rollback_of: Option<u64>,
    ) -> Result<MappingVersion, StoreError> {
        self.inner
            .append_mapping(
                connection_id,
                entity,
                base,
                overrides,
                plugins,
                author,
                rollback_of,
            )
            .await
    }

    async fn mapping_history(
        &self,
        connection_id: &str,
        entity: Entity,
    ) -> Result<Vec<MappingVersion>, StoreError> {
        self.inner.mapping_history(connection_id, entity).await
    }

    async fn prune_mapping_history(
        &self,
        connection_id: &str,
        entity: Entity,
        keep: usize,
        keep_bytes: u64,
    ) -> Result<usize, StoreError> {
        self.inner
            .prune_mapping_history(connection_id, entity, keep, keep_bytes)
            .await
    }

    async fn put_plugin(&self, record: &PluginRecord, bytes: &[u8]) -> Result<(), StoreError> {
        self.inner.put_plugin(record, bytes).await
    }

    async fn plugin(
        &self,
        tenant_id: &str,
        sha256: &str,
    ) -> Result<Option<(PluginRecord, Vec<u8>)>, StoreError> {
        self.inner.plugin(tenant_id, sha256).await
    }

    async fn plugins(&self, tenant_id: &str) -> Result<Vec<PluginRecord>, StoreError> {
        self.inner.plugins(tenant_id).await
    }

    async fn delete_plugin(&self, tenant_id: &str, sha256: &str) -> Result<bool, StoreError> {
        self.inner.delete_plugin(tenant_id, sha256).await
    }

    async fn plugin_use(
        &self,
        tenant_id: &str,
        sha256: &str,
    ) -> Result<Option<PluginUse>, StoreError> {
        self.inner.plugin_use(tenant_id, sha256).await
    }

    async fn log_error(
        &self,
        connection_id: &str,
        entry: &ErrorEntry,
        keep: usize,
    ) -> Result<(), StoreError> {
        self.inner.log_error(connection_id, entry, keep).await
    }

    async fn errors(&self, connection_id: &str) -> Result<Vec<ErrorEntry>, StoreError> {
        self.inner.errors(connection_id).await
    }

    async fn log_plugin(
        &self,
        connection_id: &str,
        lines: &[PluginLogEntry],
        keep: usize,
    ) -> Result<(), StoreError> {
        self.inner.log_plugin(connection_id, lines, keep).await
    }

    async fn plugin_log(&self, connection_id: &str) -> Result<Vec<PluginLogEntry>, StoreError> {
        self.inner.plugin_log(connection_id).await
    }

    async fn put_subscription(&self, subscription: &Subscription) -> Result<(), StoreError> {
        self.inner.put_subscription(subscription).await
    }

    async fn subscription(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<Subscription>, StoreError> {
        self.inner.subscription(tenant_id, id).await
    }

    async fn subscriptions(&self, tenant_id: &str) -> Result<Vec<Subscription>, StoreError> {
        self.inner.subscriptions(tenant_id).await
    }

    async fn delete_subscription(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError> {
        self.inner.delete_subscription(tenant_id, id).await
    }

    async fn put_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        self.inner.put_delivery(delivery).await
    }

    async fn remove_delivery(&self, id: &str) -> Result<(), StoreError> {
        self.inner.remove_delivery(id).await
    }

    async fn deliveries(&self) -> Result<Vec<Delivery>, StoreError> {
        self.inner.deliveries().await
    }

    async fn log_delivery(
        &self,
        subscription_id: &str,
        attempt: &DeliveryAttempt,
        keep: usize,
    ) -> Result<(), StoreError> {
        self.inner
            .log_delivery(subscription_id, attempt, keep)
            .await
    }

    async fn delivery_log(
        &self,
        subscription_id: &str,
    ) -> Result<Vec<DeliveryAttempt>, StoreError> {
        self.inner.delivery_log(subscription_id).await
    }

    async fn claim_outbox(
        &self,
        owner: &str,
        now_ms: u64,
        until_ms: u64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.inner
            .claim_outbox(owner, now_ms, until_ms, limit)
            .await
    }

    async fn renew_claim(
        &self,
        owner: &str,
        subscription_id: &str,
        until_ms: u64,
    ) -> Result<bool, StoreError> {
        self.inner
            .renew_claim(owner, subscription_id, until_ms)
            .await
    }

    async fn release_claim(&self, owner: &str, subscription_id: &str) -> Result<(), StoreError> {
        self.inner.release_claim(owner, subscription_id).await
    }

    async fn outbox_next(&self, now_ms: u64) -> Result<Option<u64>, StoreError> {
        self.inner.outbox_next(now_ms).await
    }

    async fn claim_meta(&self, key: &str, value: &str) -> Result<String, StoreError> {
        self.inner.claim_meta(key, value).await
    }

    async fn mapping_version(
        &self,
        connection_id: &str,
        entity: Entity,
    ) -> Result<u64, StoreError> {
        self.inner.mapping_version(connection_id, entity).await
    }

    async fn mark_needs_reauth(
        &self,
        tenant_id: &str,
        connection_id: &str,
        token: &str,
        at: &str,
    ) -> Result<bool, StoreError> {
        let marked = self
            .inner
            .mark_needs_reauth(tenant_id, connection_id, token, at)
            .await;
        self.forget_connection(tenant_id, connection_id);
        marked
    }

    async fn quota_lock(&self, tenant_id: &str) -> Result<super::QuotaLock, StoreError> {
        self.inner.quota_lock(tenant_id).await
    }

    async fn dump(&self) -> Result<super::Dump, StoreError> {
        self.inner.dump().await
    }

    async fn load(&self, dump: &super::Dump) -> Result<(), StoreError> {
        self.inner.load(dump).await
    }

    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<Change>> {
        self.inner.changes()
    }
}
