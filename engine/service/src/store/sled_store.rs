//! The embedded store: sled, one tree per kind of record.
//!
//! Keys are typed by construction (`<tenant>\0<id>`, `<connection>\0<entity>\0<version>`
//! with the version big-endian so that a prefix scan lists versions in order). Records
//! are JSON. Every write is flushed before the method returns, so a change that the
//! service acknowledged survives a crash.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use sled::Transactional;

use super::{
    ApiKey, Connection, Dump, MappingVersion, Mode, PluginBinding, PluginRecord, Role, Store,
    StoreError, Tenant, now,
};
use crate::connection::{ErrorEntry, PluginLogEntry, UpstreamConfig};
use crate::webhook::{Delivery, DeliveryAttempt, Subscription};
use crosswalk_core::mapping::OverrideSpec;
use crosswalk_core::model::Entity;
use crosswalk_systems::SystemId;

/// The sled store.
pub struct SledStore {
    db: sled::Db,
    tenants: sled::Tree,
    keys: sled::Tree,
    connections: sled::Tree,
    mappings: sled::Tree,
    counters: sled::Tree,
    plugins: sled::Tree,
    plugin_bytes: sled::Tree,
    credentials: sled::Tree,
    errors: sled::Tree,
    plugin_log: sled::Tree,
    plugin_log_trims: super::TrimSchedule,
    subscriptions: sled::Tree,
    outbox: sled::Tree,
    delivery_log: sled::Tree,
    meta: sled::Tree,
    claims: sled::Tree,
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

impl SledStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<SledStore, StoreError> {
        // A store dropped in this process keeps its file lock until sled's flusher
        // thread lets go of it, a moment later: opening it again at once waits for
        // that (up to two seconds) instead of failing.
        let mut waited = 0;
        let db = loop {
            match sled::Config::new().path(dir).open() {
                // sled says so in an `Other` error's text, with the lock's own error.
                Err(sled::Error::Io(e))
                    if e.to_string().starts_with("could not acquire lock") && waited < 40 =>
                {
                    waited += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                other => break other?,
            }
        };
        Ok(SledStore {
            tenants: db.open_tree("tenants")?,
            keys: db.open_tree("keys")?,
            connections: db.open_tree("connections")?,
            mappings: db.open_tree("mappings")?,
            counters: db.open_tree("counters")?,
            plugins: db.open_tree("plugins")?,
            plugin_bytes: db.open_tree("plugin_bytes")?,
            credentials: db.open_tree("credentials")?,
            errors: db.open_tree("errors")?,
            plugin_log: db.open_tree("plugin_log")?,
            plugin_log_trims: super::TrimSchedule::default(),
            subscriptions: db.open_tree("subscriptions")?,
            outbox: db.open_tree("outbox")?,
            delivery_log: db.open_tree("delivery_log")?,
            meta: db.open_tree("meta")?,
            claims: db.open_tree("outbox_claims")?,
            db,
        })
    }

    /// Flushes every change to disk, on the blocking pool: an fsync may take long.
    async fn flush(&self) -> Result<(), StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|e| StoreError::Database(format!("the flush stopped: {e}")))??;
        Ok(())
    }

    /// Appends to a bounded log under `owner`, keeping its newest `keep` entries.
    async fn append_bounded<T: Serialize + Sync>(
        &self,
        tree: &sled::Tree,
        owner: &str,
        entry: &T,
        keep: usize,
    ) -> Result<(), StoreError> {
        self.append(tree, owner, std::slice::from_ref(entry))?;
        Self::trim(tree, owner, keep)?;
        self.flush().await
    }

    /// Adds `entries` in order to the log under `owner`: keys are
    /// `<owner>\0<sequence>`, the sequence big-endian so that a scan runs oldest first.
    fn append<T: Serialize>(
        &self,
        tree: &sled::Tree,
        owner: &str,
        entries: &[T],
    ) -> Result<(), StoreError> {
        let prefix = key(&[owner, ""]);
        for entry in entries {
            let mut k = prefix.clone();
            k.extend_from_slice(&self.db.generate_id()?.to_be_bytes());
            tree.insert(k, encode(entry))?;
        }
        Ok(())
    }

    /// Removes the entries of the log under `owner` older than its newest `keep`.
    fn trim(tree: &sled::Tree, owner: &str, keep: usize) -> Result<(), StoreError> {
        let prefix = key(&[owner, ""]);
        let held = tree.scan_prefix(&prefix).count();
        for old in tree
            .scan_prefix(&prefix)
            .keys()
            .take(held.saturating_sub(keep))
        {
            tree.remove(old?)?;
        }
        Ok(())
    }

    /// A bounded log, newest first.
    fn read_bounded<T: DeserializeOwned>(
        tree: &sled::Tree,
        what: &'static str,
        owner: &str,
    ) -> Result<Vec<T>, StoreError> {
        let mut entries: Vec<T> = scan(tree, what, &key(&[owner, ""]))?;
        entries.reverse();
        Ok(entries)
    }
}

/// A claim on a subscription's deliveries: `<until ms, big-endian><owner>`.
fn claim_value(owner: &str, until_ms: u64) -> Vec<u8> {
    let mut v = until_ms.to_be_bytes().to_vec();
    v.extend_from_slice(owner.as_bytes());
    v
}

fn claim_until(claim: &[u8]) -> u64 {
    claim
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_be_bytes)
}

fn claim_owner(claim: &[u8]) -> &[u8] {
    claim.get(8..).unwrap_or_default()
}

fn secret_hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

fn key(parts: &[&str]) -> Vec<u8> {
    parts.join("\0").into_bytes()
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records serialize")
}

fn decode<T: DeserializeOwned>(
    what: &'static str,
    key: &[u8],
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        what,
        key: String::from_utf8_lossy(key).replace('\0', "/"),
        message: e.to_string(),
    })
}

fn get<T: DeserializeOwned>(
    tree: &sled::Tree,
    what: &'static str,
    k: &[u8],
) -> Result<Option<T>, StoreError> {
    tree.get(k)?.map(|v| decode(what, k, &v)).transpose()
}

fn scan<T: DeserializeOwned>(
    tree: &sled::Tree,
    what: &'static str,
    prefix: &[u8],
) -> Result<Vec<T>, StoreError> {
    tree.scan_prefix(prefix)
        .map(|entry| {
            let (k, v) = entry?;
            decode(what, &k, &v)
        })
        .collect()
}

#[async_trait::async_trait]
impl Store for SledStore {
    async fn create_tenant(&self, name: &str) -> Result<Tenant, StoreError> {
        let tenant = Tenant::new(name);
        self.tenants.insert(tenant.id.as_bytes(), encode(&tenant))?;
        self.flush().await?;
        Ok(tenant)
    }

    async fn tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        get(&self.tenants, "tenant", id.as_bytes())
    }

    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        scan(&self.tenants, "tenant", b"")
    }

    async fn import_key(
        &self,
        tenant_id: &str,
        role: Role,
        secret: &str,
    ) -> Result<ApiKey, StoreError> {
        let key = ApiKey::new(tenant_id, role);
        self.keys.insert(secret_hash(secret), encode(&key))?;
        self.flush().await?;
        Ok(key)
    }

    async fn key_by_secret(&self, secret: &str) -> Result<Option<ApiKey>, StoreError> {
        get(&self.keys, "key", &secret_hash(secret))
    }

    async fn create_connection(
        &self,
        tenant_id: &str,
        system: SystemId,
        name: &str,
        mode: Mode,
        upstream: Option<UpstreamConfig>,
    ) -> Result<Connection, StoreError> {
        let connection = Connection::new(tenant_id, system, name, mode, upstream);
        self.connections
            .insert(key(&[tenant_id, &connection.id]), encode(&connection))?;
        self.flush().await?;
        Ok(connection)
    }

    async fn update_connection(
        &self,
        connection: &Connection,
        credentials: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let k = key(&[&connection.tenant_id, &connection.id]);
        let record = encode(connection);
        let id = connection.id.as_bytes();
        // Both or neither: new credentials never stand beside the old token.
        (&self.connections, &self.credentials)
            .transaction(|(connections, stored)| {
                if connections.get(&k)?.is_none() {
                    return Ok(());
                }
                connections.insert(k.as_slice(), record.as_slice())?;
                if let Some(sealed) = credentials {
                    stored.insert(id, sealed)?;
                }
                Ok(())
            })
            .map_err(|e: sled::transaction::TransactionError<()>| {
                StoreError::Database(format!("{e:?}"))
            })?;
        self.flush().await
    }

    async fn credentials(&self, connection_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .credentials
            .get(connection_id.as_bytes())?
            .map(|v| v.to_vec()))
    }

    async fn connection(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<Connection>, StoreError> {
        get(&self.connections, "connection", &key(&[tenant_id, id]))
    }

    async fn connections(&self, tenant_id: &str) -> Result<Vec<Connection>, StoreError> {
        scan(&self.connections, "connection", &key(&[tenant_id, ""]))
    }

    async fn all_connections(&self) -> Result<Vec<Connection>, StoreError> {
        scan(&self.connections, "connection", b"")
    }

    async fn delete_connection(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError> {
        let removed = self.connections.remove(key(&[tenant_id, id]))?.is_some();
        if removed {
            for entry in self.mappings.scan_prefix(key(&[id, ""])) {
                self.mappings.remove(entry?.0)?;
            }
            for entry in self.counters.scan_prefix(key(&[id, ""])) {
                self.counters.remove(entry?.0)?;
            }
            self.plugin_log_trims.forget(id);
            for tree in [&self.errors, &self.plugin_log] {
                for entry in tree.scan_prefix(key(&[id, ""])) {
                    tree.remove(entry?.0)?;
                }
            }
            self.credentials.remove(id.as_bytes())?;
            self.flush().await?;
        }
        Ok(removed)
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
        let counter = key(&[connection_id, entity.as_str()]);
        let version = MappingVersion {
            connection_id: connection_id.to_owned(),
            entity,
            version: base + 1,
            overrides,
            plugins,
            author: author.to_owned(),
            created_at: now(),
            rollback_of,
        };
        let mut k = key(&[connection_id, entity.as_str(), ""]);
        k.extend_from_slice(&version.version.to_be_bytes());
        let record = encode(&version);
        // The counter holds the last version; checking it and writing the counter and
        // the version in one transaction makes the append atomic and crash-safe.
        let result = (&self.counters, &self.mappings).transaction(|(counters, mappings)| {
            let last = counters
                .get(&counter)?
                .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
                .map_or(0, u64::from_be_bytes);
            if last != base {
                return sled::transaction::abort(last);
            }
            counters.insert(counter.as_slice(), &(base + 1).to_be_bytes())?;
            mappings.insert(k.as_slice(), record.as_slice())?;
            Ok(())
        });
        match result {
            Ok(()) => {}
            Err(sled::transaction::TransactionError::Abort(last)) => {
                return Err(StoreError::VersionMoved { base, last });
            }
            Err(sled::transaction::TransactionError::Storage(e)) => return Err(e.into()),
        }
        self.flush().await?;
        Ok(version)
    }

    async fn mapping_history(
        &self,
        connection_id: &str,
        entity: Entity,
    ) -> Result<Vec<MappingVersion>, StoreError> {
        scan(
            &self.mappings,
            "mapping version",
            &key(&[connection_id, entity.as_str(), ""]),
        )
    }

    async fn prune_mapping_history(
        &self,
        connection_id: &str,
        entity: Entity,
        keep: usize,
        keep_bytes: u64,
    ) -> Result<usize, StoreError> {
        let prefix = key(&[connection_id, entity.as_str(), ""]);
        let (mut kept, mut bytes) = (0usize, 0u64);
        let mut old = Vec::new();
        // Newest first: keep while within both bounds, and always the newest.
        for entry in self.mappings.scan_prefix(&prefix).rev() {
            let (k, v) = entry?;
            bytes += v.len() as u64;
            if kept == 0 || (kept < keep && bytes <= keep_bytes) {
                kept += 1;
            } else {
                old.push(k);
            }
        }
        if old.is_empty() {
            return Ok(0);
        }
        for k in &old {
            self.mappings.remove(k)?;
        }
        self.flush().await?;
        Ok(old.len())
    }

    async fn put_plugin(&self, record: &PluginRecord, bytes: &[u8]) -> Result<(), StoreError> {
        self.plugin_bytes.insert(record.sha256.as_bytes(), bytes)?;
        self.plugins
            .insert(key(&[&record.tenant_id, &record.sha256]), encode(record))?;
        self.flush().await
    }

    async fn plugin(
        &self,
        tenant_id: &str,
        sha256: &str,
    ) -> Result<Option<(PluginRecord, Vec<u8>)>, StoreError> {
        let Some(record) =
            get::<PluginRecord>(&self.plugins, "plugin", &key(&[tenant_id, sha256]))?
        else {
            return Ok(None);
        };
        let bytes =
            self.plugin_bytes
                .get(sha256.as_bytes())?
                .ok_or_else(|| StoreError::Corrupt {
                    what: "plugin",
                    key: sha256.to_owned(),
                    message: "its bytes are missing".into(),
                })?;
        Ok(Some((record, bytes.to_vec())))
    }

    async fn plugins(&self, tenant_id: &str) -> Result<Vec<PluginRecord>, StoreError> {
        scan(&self.plugins, "plugin", &key(&[tenant_id, ""]))
    }

    async fn delete_plugin(&self, tenant_id: &str, sha256: &str) -> Result<bool, StoreError> {
        let removed = self.plugins.remove(key(&[tenant_id, sha256]))?.is_some();
        if removed {
            // The bytes stay while another tenant has uploaded the same component.
            let still_used = self
                .plugins
                .iter()
                .keys()
                .filter_map(Result::ok)
                .any(|k| k.ends_with(format!("\0{sha256}").as_bytes()));
            if !still_used {
                self.plugin_bytes.remove(sha256.as_bytes())?;
            }
            self.flush().await?;
        }
        Ok(removed)
    }

    async fn log_error(
        &self,
        connection_id: &str,
        entry: &ErrorEntry,
        keep: usize,
    ) -> Result<(), StoreError> {
        self.append_bounded(&self.errors, connection_id, entry, keep)
            .await
    }

    async fn errors(&self, connection_id: &str) -> Result<Vec<ErrorEntry>, StoreError> {
        Self::read_bounded(&self.errors, "error log entry", connection_id)
    }

    async fn log_plugin(
        &self,
        connection_id: &str,
        lines: &[PluginLogEntry],
        keep: usize,
    ) -> Result<(), StoreError> {
        self.append(&self.plugin_log, connection_id, lines)?;
        if self.plugin_log_trims.due(connection_id, lines.len(), keep) {
            Self::trim(&self.plugin_log, connection_id, keep)?;
        }
        // Not flushed here: sled writes it within its flush interval (a crash may lose
        // the last half second of plugin log lines), so that a plugin that prints on
        // every request does not cost a sync a request.
        Ok(())
    }

    async fn plugin_log(&self, connection_id: &str) -> Result<Vec<PluginLogEntry>, StoreError> {
        let mut lines: Vec<PluginLogEntry> =
            Self::read_bounded(&self.plugin_log, "plugin log line", connection_id)?;
        lines.truncate(crate::connection::PLUGIN_LOG_KEEP);
        Ok(lines)
    }

    async fn put_subscription(&self, subscription: &Subscription) -> Result<(), StoreError> {
        self.subscriptions.insert(
            key(&[&subscription.tenant_id, &subscription.id]),
            encode(subscription),
        )?;
        self.flush().await
    }

    async fn subscription(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<Subscription>, StoreError> {
        get(&self.subscriptions, "subscription", &key(&[tenant_id, id]))
    }

    async fn subscriptions(&self, tenant_id: &str) -> Result<Vec<Subscription>, StoreError> {
        scan(&self.subscriptions, "subscription", &key(&[tenant_id, ""]))
    }

    async fn delete_subscription(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError> {
        let removed = self.subscriptions.remove(key(&[tenant_id, id]))?.is_some();
        if removed {
            for entry in self.delivery_log.scan_prefix(key(&[id, ""])) {
                self.delivery_log.remove(entry?.0)?;
            }
            self.claims.remove(id.as_bytes())?;
            self.flush().await?;
        }
        Ok(removed)
    }

    async fn put_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        self.outbox
            .insert(delivery.id.as_bytes(), encode(delivery))?;
        self.flush().await
    }

    async fn remove_delivery(&self, id: &str) -> Result<(), StoreError> {
        self.outbox.remove(id.as_bytes())?;
        self.flush().await
    }

    async fn deliveries(&self) -> Result<Vec<Delivery>, StoreError> {
        scan(&self.outbox, "delivery", b"")
    }

    async fn log_delivery(
        &self,
        subscription_id: &str,
        attempt: &DeliveryAttempt,
        keep: usize,
    ) -> Result<(), StoreError> {
        self.append_bounded(&self.delivery_log, subscription_id, attempt, keep)
            .await
    }

    async fn delivery_log(
        &self,
        subscription_id: &str,
    ) -> Result<Vec<DeliveryAttempt>, StoreError> {
        Self::read_bounded(&self.delivery_log, "delivery attempt", subscription_id)
    }

    async fn mapping_version(
        &self,
        connection_id: &str,
        entity: Entity,
    ) -> Result<u64, StoreError> {
        Ok(self
            .counters
            .get(key(&[connection_id, entity.as_str()]))?
            .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
            .map_or(0, u64::from_be_bytes))
    }

    async fn mark_needs_reauth(
        &self,
        tenant_id: &str,
        connection_id: &str,
        token: &str,
        at: &str,
    ) -> Result<bool, StoreError> {
        let k = key(&[tenant_id, connection_id]);
        loop {
            let Some(old) = self.connections.get(&k)? else {
                return Ok(false);
            };
            let mut c: Connection = decode("connection", &k, &old)?;
            if c.needs_reauth_since.is_some() || c.token != token {
                return Ok(false);
            }
            c.needs_reauth_since = Some(at.to_owned());
            // Only over the record read: a change in between is read again.
            if self
                .connections
                .compare_and_swap(&k, Some(&old), Some(encode(&c)))?
                .is_ok()
            {
                self.flush().await?;
                return Ok(true);
            }
        }
    }

    async fn claim_outbox(
        &self,
        owner: &str,
        now_ms: u64,
        until_ms: u64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let due: Vec<Delivery> = scan::<Delivery>(&self.outbox, "delivery", b"")?
            .into_iter()
            .filter(|d| d.due_ms <= now_ms)
            .collect();
        let mut claimed: Vec<String> = Vec::new();
        for d in &due {
            if claimed.len() >= limit || claimed.contains(&d.subscription_id) {
                continue;
            }
            let k = d.subscription_id.as_bytes();
            let held = self.claims.get(k)?;
            if held.as_ref().is_some_and(|v| claim_until(v) > now_ms) {
                continue;
            }
            let claim = claim_value(owner, until_ms);
            if self.claims.compare_and_swap(k, held, Some(claim))?.is_ok() {
                claimed.push(d.subscription_id.clone());
            }
        }
        if !claimed.is_empty() {
            self.flush().await?;
        }
        Ok(due
            .into_iter()
            .filter(|d| claimed.contains(&d.subscription_id))
            .collect())
    }

    async fn renew_claim(
        &self,
        owner: &str,
        subscription_id: &str,
        until_ms: u64,
    ) -> Result<bool, StoreError> {
        let k = subscription_id.as_bytes();
        let Some(held) = self.claims.get(k)? else {
            return Ok(false);
        };
        if claim_owner(&held) != owner.as_bytes() {
            return Ok(false);
        }
        let renewed = self
            .claims
            .compare_and_swap(k, Some(held), Some(claim_value(owner, until_ms)))?
            .is_ok();
        Ok(renewed)
    }

    async fn release_claim(&self, owner: &str, subscription_id: &str) -> Result<(), StoreError> {
        let k = subscription_id.as_bytes();
        if let Some(held) = self.claims.get(k)?
            && claim_owner(&held) == owner.as_bytes()
        {
            let _ = self
                .claims
                .compare_and_swap(k, Some(held), None as Option<&[u8]>)?;
            self.flush().await?;
        }
        Ok(())
    }

    async fn outbox_next(&self, now_ms: u64) -> Result<Option<u64>, StoreError> {
        let mut next: Option<u64> = None;
        let mut earliest = |t: u64| next = Some(next.map_or(t, |n| n.min(t)));
        for d in scan::<Delivery>(&self.outbox, "delivery", b"")? {
            match self.claims.get(d.subscription_id.as_bytes())? {
                Some(held) if claim_until(&held) > now_ms => earliest(claim_until(&held)),
                _ => earliest(d.due_ms),
            }
        }
        Ok(next)
    }

    async fn dump(&self) -> Result<Dump, StoreError> {
        let raw = |tree: &sled::Tree| -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
            tree.iter()
                .map(|e| e.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(Into::into))
                .collect()
        };
        // `<owner>\0<sequence>` logs, grouped by owner, oldest first.
        fn grouped<T: DeserializeOwned>(
            what: &'static str,
            entries: Vec<(Vec<u8>, Vec<u8>)>,
        ) -> Result<Vec<(String, Vec<T>)>, StoreError> {
            let mut groups: Vec<(String, Vec<T>)> = Vec::new();
            for (k, v) in entries {
                let owner =
                    String::from_utf8_lossy(k.split(|&b| b == 0).next().unwrap_or_default())
                        .into_owned();
                let entry = decode(what, &k, &v)?;
                match groups.last_mut() {
                    Some((o, es)) if *o == owner => es.push(entry),
                    _ => groups.push((owner, vec![entry])),
                }
            }
            Ok(groups)
        }
        let mut connections = Vec::new();
        for c in scan::<Connection>(&self.connections, "connection", b"")? {
            let sealed = self.credentials.get(c.id.as_bytes())?.map(|v| v.to_vec());
            connections.push((c, sealed));
        }
        let mut mapping_heads = Vec::new();
        for (k, v) in raw(&self.counters)? {
            let text = String::from_utf8_lossy(&k).into_owned();
            let (connection, entity) =
                text.split_once('\0').ok_or_else(|| StoreError::Corrupt {
                    what: "mapping head",
                    key: text.replace('\0', "/"),
                    message: "not <connection>/<entity>".into(),
                })?;
            let entity: Entity = entity.parse().map_err(|e| StoreError::Corrupt {
                what: "mapping head",
                key: text.replace('\0', "/"),
                message: format!("{e}"),
            })?;
            let last = <[u8; 8]>::try_from(v.as_slice()).map_or(0, u64::from_be_bytes);
            mapping_heads.push((connection.to_owned(), entity, last));
        }
        let keys = raw(&self.keys)?
            .into_iter()
            .map(|(k, v)| Ok((k.clone(), decode("key", &k, &v)?)))
            .collect::<Result<_, StoreError>>()?;
        Ok(Dump {
            tenants: scan(&self.tenants, "tenant", b"")?,
            keys,
            connections,
            mappings: scan(&self.mappings, "mapping version", b"")?,
            mapping_heads,
            plugins: scan(&self.plugins, "plugin", b"")?,
            plugin_bytes: raw(&self.plugin_bytes)?
                .into_iter()
                .map(|(k, v)| (String::from_utf8_lossy(&k).into_owned(), v))
                .collect(),
            errors: grouped("error log entry", raw(&self.errors)?)?,
            plugin_logs: grouped("plugin log line", raw(&self.plugin_log)?)?,
            subscriptions: scan(&self.subscriptions, "subscription", b"")?,
            outbox: scan(&self.outbox, "delivery", b"")?,
            delivery_logs: grouped("delivery attempt", raw(&self.delivery_log)?)?,
            meta: raw(&self.meta)?
                .into_iter()
                .map(|(k, v)| {
                    (
                        String::from_utf8_lossy(&k).into_owned(),
                        String::from_utf8_lossy(&v).into_owned(),
                    )
                })
                .collect(),
        })
    }

    async fn load(&self, dump: &Dump) -> Result<(), StoreError> {
        self.dump().await?.check_empty()?;
        for t in &dump.tenants {
            self.tenants.insert(t.id.as_bytes(), encode(t))?;
        }
        for (hash, k) in &dump.keys {
            self.keys.insert(hash.as_slice(), encode(k))?;
        }
        for (c, sealed) in &dump.connections {
            self.connections
                .insert(key(&[&c.tenant_id, &c.id]), encode(c))?;
            if let Some(sealed) = sealed {
                self.credentials
                    .insert(c.id.as_bytes(), sealed.as_slice())?;
            }
        }
        for v in &dump.mappings {
            let mut k = key(&[&v.connection_id, v.entity.as_str(), ""]);
            k.extend_from_slice(&v.version.to_be_bytes());
            self.mappings.insert(k, encode(v))?;
        }
        for (connection, entity, last) in &dump.mapping_heads {
            self.counters
                .insert(key(&[connection, entity.as_str()]), &last.to_be_bytes())?;
        }
        for p in &dump.plugins {
            self.plugins
                .insert(key(&[&p.tenant_id, &p.sha256]), encode(p))?;
        }
        for (sha256, bytes) in &dump.plugin_bytes {
            self.plugin_bytes
                .insert(sha256.as_bytes(), bytes.as_slice())?;
        }
        for (owner, entries) in &dump.errors {
            self.append(&self.errors, owner, entries)?;
        }
        for (owner, entries) in &dump.plugin_logs {
            self.append(&self.plugin_log, owner, entries)?;
        }
        for s in &dump.subscriptions {
            self.subscriptions
                .insert(key(&[&s.tenant_id, &s.id]), encode(s))?;
        }
        for d in &dump.outbox {
            self.outbox.insert(d.id.as_bytes(), encode(d))?;
        }
        for (owner, entries) in &dump.delivery_logs {
            self.append(&self.delivery_log, owner, entries)?;
        }
        for (k, v) in &dump.meta {
            self.meta.insert(k.as_bytes(), v.as_bytes())?;
        }
        self.flush().await
    }

    async fn claim_meta(&self, key: &str, value: &str) -> Result<String, StoreError> {
        let stored = match self.meta.compare_and_swap(
            key.as_bytes(),
            None as Option<&[u8]>,
            Some(value.as_bytes()),
        )? {
            Ok(()) => {
                self.flush().await?;
                value.as_bytes().to_vec()
            }
            Err(taken) => taken.current.map(|v| v.to_vec()).unwrap_or_default(),
        };
        Ok(String::from_utf8_lossy(&stored).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("crosswalk-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn opening_waits_for_a_store_being_closed_and_names_one_that_stays_open() {
        let dir = temp_dir("reopen");
        let first = SledStore::open(&dir).unwrap();
        let closing = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(first);
        });
        // The first store holds the lock for 300 ms more: this waits, then opens.
        let second = SledStore::open(&dir).unwrap();
        closing.join().unwrap();
        let e = SledStore::open(&dir).err().expect("the lock is held");
        assert!(e.to_string().contains("could not acquire lock"), "{e}");
        drop(second);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
