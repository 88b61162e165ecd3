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
    ApiKey, Connection, MappingVersion, Mode, PluginBinding, PluginRecord, Role, Store, StoreError,
    Tenant, now,
};
use crate::connection::{ErrorEntry, UpstreamConfig};
use crate::webhook::{Delivery, DeliveryAttempt, Subscription};
use crosswalk_core::mapping::OverrideSpec;
use crosswalk_core::model::Entity;
use crosswalk_systems::SystemId;

use crate::ids::{random_bytes, random_id};

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
    subscriptions: sled::Tree,
    outbox: sled::Tree,
    delivery_log: sled::Tree,
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
            subscriptions: db.open_tree("subscriptions")?,
            outbox: db.open_tree("outbox")?,
            delivery_log: db.open_tree("delivery_log")?,
            db,
        })
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// Appends to a bounded log under `owner`: keys are `<owner>\0<sequence>`, the
    /// sequence big-endian so that a scan runs oldest first.
    fn append_bounded<T: Serialize>(
        &self,
        tree: &sled::Tree,
        owner: &str,
        entry: &T,
        keep: usize,
    ) -> Result<(), StoreError> {
        let prefix = key(&[owner, ""]);
        let mut k = prefix.clone();
        k.extend_from_slice(&self.db.generate_id()?.to_be_bytes());
        tree.insert(k, encode(entry))?;
        let held = tree.scan_prefix(&prefix).count();
        for old in tree
            .scan_prefix(&prefix)
            .keys()
            .take(held.saturating_sub(keep))
        {
            tree.remove(old?)?;
        }
        self.flush()
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

impl Store for SledStore {
    fn create_tenant(&self, name: &str) -> Result<Tenant, StoreError> {
        let tenant = Tenant {
            id: random_id("ten"),
            name: name.to_owned(),
            created_at: now(),
        };
        self.tenants.insert(tenant.id.as_bytes(), encode(&tenant))?;
        self.flush()?;
        Ok(tenant)
    }

    fn tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        get(&self.tenants, "tenant", id.as_bytes())
    }

    fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        scan(&self.tenants, "tenant", b"")
    }

    fn create_key(&self, tenant_id: &str, role: Role) -> Result<(ApiKey, String), StoreError> {
        let secret = format!("cw_{}", hex::encode(random_bytes::<24>()));
        let key = self.import_key(tenant_id, role, &secret)?;
        Ok((key, secret))
    }

    fn import_key(&self, tenant_id: &str, role: Role, secret: &str) -> Result<ApiKey, StoreError> {
        let key = ApiKey {
            id: random_id("key"),
            tenant_id: tenant_id.to_owned(),
            role,
            created_at: now(),
        };
        self.keys.insert(secret_hash(secret), encode(&key))?;
        self.flush()?;
        Ok(key)
    }

    fn key_by_secret(&self, secret: &str) -> Result<Option<ApiKey>, StoreError> {
        get(&self.keys, "key", &secret_hash(secret))
    }

    fn create_connection(
        &self,
        tenant_id: &str,
        system: SystemId,
        name: &str,
        mode: Mode,
        upstream: Option<UpstreamConfig>,
    ) -> Result<Connection, StoreError> {
        let connection = Connection {
            id: random_id("con"),
            tenant_id: tenant_id.to_owned(),
            system,
            name: name.to_owned(),
            mode,
            created_at: now(),
            upstream,
            token: random_id("ctk"),
            needs_reauth_since: None,
        };
        self.connections
            .insert(key(&[tenant_id, &connection.id]), encode(&connection))?;
        self.flush()?;
        Ok(connection)
    }

    fn update_connection(
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
        self.flush()
    }

    fn credentials(&self, connection_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .credentials
            .get(connection_id.as_bytes())?
            .map(|v| v.to_vec()))
    }

    fn connection(&self, tenant_id: &str, id: &str) -> Result<Option<Connection>, StoreError> {
        get(&self.connections, "connection", &key(&[tenant_id, id]))
    }

    fn connections(&self, tenant_id: &str) -> Result<Vec<Connection>, StoreError> {
        scan(&self.connections, "connection", &key(&[tenant_id, ""]))
    }

    fn all_connections(&self) -> Result<Vec<Connection>, StoreError> {
        scan(&self.connections, "connection", b"")
    }

    fn delete_connection(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError> {
        let removed = self.connections.remove(key(&[tenant_id, id]))?.is_some();
        if removed {
            for entry in self.mappings.scan_prefix(key(&[id, ""])) {
                self.mappings.remove(entry?.0)?;
            }
            for entry in self.counters.scan_prefix(key(&[id, ""])) {
                self.counters.remove(entry?.0)?;
            }
            for entry in self.errors.scan_prefix(key(&[id, ""])) {
                self.errors.remove(entry?.0)?;
            }
            self.credentials.remove(id.as_bytes())?;
            self.flush()?;
        }
        Ok(removed)
    }

    fn append_mapping(
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
        self.flush()?;
        Ok(version)
    }

    fn mapping_history(
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

    fn prune_mapping_history(
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
        self.flush()?;
        Ok(old.len())
    }

    fn put_plugin(&self, record: &PluginRecord, bytes: &[u8]) -> Result<(), StoreError> {
        self.plugin_bytes.insert(record.sha256.as_bytes(), bytes)?;
        self.plugins
            .insert(key(&[&record.tenant_id, &record.sha256]), encode(record))?;
        self.flush()
    }

    fn plugin(
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

    fn plugins(&self, tenant_id: &str) -> Result<Vec<PluginRecord>, StoreError> {
        scan(&self.plugins, "plugin", &key(&[tenant_id, ""]))
    }

    fn delete_plugin(&self, tenant_id: &str, sha256: &str) -> Result<bool, StoreError> {
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
            self.flush()?;
        }
        Ok(removed)
    }

    fn log_error(
        &self,
        connection_id: &str,
        entry: &ErrorEntry,
        keep: usize,
    ) -> Result<(), StoreError> {
        self.append_bounded(&self.errors, connection_id, entry, keep)
    }

    fn errors(&self, connection_id: &str) -> Result<Vec<ErrorEntry>, StoreError> {
        Self::read_bounded(&self.errors, "error log entry", connection_id)
    }

    fn put_subscription(&self, subscription: &Subscription) -> Result<(), StoreError> {
        self.subscriptions.insert(
            key(&[&subscription.tenant_id, &subscription.id]),
            encode(subscription),
        )?;
        self.flush()
    }

    fn subscription(&self, tenant_id: &str, id: &str) -> Result<Option<Subscription>, StoreError> {
        get(&self.subscriptions, "subscription", &key(&[tenant_id, id]))
    }

    fn subscriptions(&self, tenant_id: &str) -> Result<Vec<Subscription>, StoreError> {
        scan(&self.subscriptions, "subscription", &key(&[tenant_id, ""]))
    }

    fn delete_subscription(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError> {
        let removed = self.subscriptions.remove(key(&[tenant_id, id]))?.is_some();
        if removed {
            for entry in self.delivery_log.scan_prefix(key(&[id, ""])) {
                self.delivery_log.remove(entry?.0)?;
            }
            self.flush()?;
        }
        Ok(removed)
    }

    fn put_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        self.outbox
            .insert(delivery.id.as_bytes(), encode(delivery))?;
        self.flush()
    }

    fn remove_delivery(&self, id: &str) -> Result<(), StoreError> {
        self.outbox.remove(id.as_bytes())?;
        self.flush()
    }

    fn deliveries(&self) -> Result<Vec<Delivery>, StoreError> {
        scan(&self.outbox, "delivery", b"")
    }

    fn log_delivery(
        &self,
        subscription_id: &str,
        attempt: &DeliveryAttempt,
        keep: usize,
    ) -> Result<(), StoreError> {
        self.append_bounded(&self.delivery_log, subscription_id, attempt, keep)
    }

    fn delivery_log(&self, subscription_id: &str) -> Result<Vec<DeliveryAttempt>, StoreError> {
        Self::read_bounded(&self.delivery_log, "delivery attempt", subscription_id)
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
    fn tenants_keys_and_connections() {
        let dir = temp_dir("basics");
        let store = SledStore::open(&dir).unwrap();
        let acme = store.create_tenant("Acme").unwrap();
        let other = store.create_tenant("Other").unwrap();
        let (key, secret) = store.create_key(&acme.id, Role::Tenant).unwrap();
        assert!(secret.starts_with("cw_") && secret.len() > 40);
        assert_eq!(store.key_by_secret(&secret).unwrap(), Some(key.clone()));
        assert_eq!(store.key_by_secret("cw_guess").unwrap(), None);
        let c = store
            .create_connection(
                &acme.id,
                crosswalk_systems::SystemId::SapS4Hana,
                "Acme SAP",
                Mode::Sandbox,
                None,
            )
            .unwrap();
        assert_eq!(store.connection(&acme.id, &c.id).unwrap(), Some(c.clone()));
        // Another tenant does not see it, by id or in its list.
        assert_eq!(store.connection(&other.id, &c.id).unwrap(), None);
        assert!(store.connections(&other.id).unwrap().is_empty());
        assert!(!store.delete_connection(&other.id, &c.id).unwrap());
        assert_eq!(store.connections(&acme.id).unwrap(), vec![c.clone()]);
        assert!(store.delete_connection(&acme.id, &c.id).unwrap());
        assert_eq!(store.connection(&acme.id, &c.id).unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn mapping_versions_count_up_and_survive_a_restart() {
        let dir = temp_dir("versions");
        let (tenant, connection) = {
            let store = SledStore::open(&dir).unwrap();
            let tenant = store.create_tenant("Acme").unwrap();
            let c = store
                .create_connection(
                    &tenant.id,
                    crosswalk_systems::SystemId::IbmMaximo,
                    "Maximo",
                    Mode::Sandbox,
                    None,
                )
                .unwrap();
            for i in 0..3 {
                let overrides = OverrideSpec {
                    description: Some(format!("change {i}")),
                    ..Default::default()
                };
                let v = store
                    .append_mapping(
                        &c.id,
                        Entity::WorkOrder,
                        i,
                        overrides,
                        vec![],
                        "key_1",
                        None,
                    )
                    .unwrap();
                assert_eq!(v.version, i + 1);
            }
            let v = store
                .append_mapping(
                    &c.id,
                    Entity::Asset,
                    0,
                    OverrideSpec::default(),
                    vec![],
                    "key_1",
                    None,
                )
                .unwrap();
            assert_eq!(v.version, 1, "versions count per entity");
            (tenant, c)
        };
        let store = SledStore::open(&dir).unwrap();
        let history = store
            .mapping_history(&connection.id, Entity::WorkOrder)
            .unwrap();
        assert_eq!(
            history.iter().map(|v| v.version).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(
            history[2].overrides.description.as_deref(),
            Some("change 2")
        );
        // A change made from version 2 is refused: version 3 came in between.
        let e = store
            .append_mapping(
                &connection.id,
                Entity::WorkOrder,
                2,
                OverrideSpec::default(),
                vec![],
                "key_2",
                None,
            )
            .unwrap_err();
        assert!(
            matches!(e, StoreError::VersionMoved { base: 2, last: 3 }),
            "{e}"
        );
        let v = store
            .append_mapping(
                &connection.id,
                Entity::WorkOrder,
                3,
                OverrideSpec::default(),
                vec![],
                "key_2",
                Some(1),
            )
            .unwrap();
        assert_eq!((v.version, v.rollback_of), (4, Some(1)));
        assert_eq!(
            store.connections(&tenant.id).unwrap(),
            vec![connection.clone()]
        );
        assert!(store.delete_connection(&tenant.id, &connection.id).unwrap());
        assert!(
            store
                .mapping_history(&connection.id, Entity::WorkOrder)
                .unwrap()
                .is_empty()
        );
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pruning_keeps_the_newest_versions_within_count_and_bytes() {
        let dir = temp_dir("prune");
        let store = SledStore::open(&dir).unwrap();
        let last = std::cell::Cell::new(0);
        let append = |description: String| {
            let overrides = OverrideSpec {
                description: Some(description),
                ..Default::default()
            };
            let v = store
                .append_mapping(
                    "con_a",
                    Entity::Part,
                    last.get(),
                    overrides,
                    vec![],
                    "key_1",
                    None,
                )
                .unwrap();
            last.set(v.version);
            v
        };
        let versions = |store: &SledStore| -> Vec<u64> {
            store
                .mapping_history("con_a", Entity::Part)
                .unwrap()
                .iter()
                .map(|v| v.version)
                .collect()
        };
        for i in 0..5 {
            append(format!("change {i}"));
        }
        assert_eq!(
            store
                .prune_mapping_history("con_a", Entity::Part, 3, u64::MAX)
                .unwrap(),
            2
        );
        assert_eq!(versions(&store), [3, 4, 5]);
        // Bytes: a large newest version is kept however large; older ones go once
        // the versions kept would pass the bound.
        append("x".repeat(10_000));
        assert_eq!(
            store
                .prune_mapping_history("con_a", Entity::Part, 100, 1000)
                .unwrap(),
            3
        );
        assert_eq!(versions(&store), [6]);
        append("small".into());
        store
            .prune_mapping_history("con_a", Entity::Part, 100, 1000)
            .unwrap();
        assert_eq!(
            versions(&store),
            [7],
            "6 would take the history past 1000 bytes"
        );
        // Numbering goes on after pruning, and another entity is untouched.
        assert_eq!(append("next".into()).version, 8);
        assert_eq!(
            store
                .prune_mapping_history("con_a", Entity::Asset, 0, 0)
                .unwrap(),
            0
        );
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn plugins_are_per_tenant_and_bytes_are_shared() {
        let dir = temp_dir("plugins");
        let store = SledStore::open(&dir).unwrap();
        let record = |tenant: &str| PluginRecord {
            tenant_id: tenant.into(),
            sha256: "ab12".into(),
            name: "uom".into(),
            version: "1.0.0".into(),
            size: 3,
            uploaded_at: now(),
        };
        store.put_plugin(&record("ten_a"), b"abc").unwrap();
        store.put_plugin(&record("ten_b"), b"abc").unwrap();
        assert_eq!(store.plugin("ten_a", "ab12").unwrap().unwrap().1, b"abc");
        assert_eq!(store.plugin("ten_c", "ab12").unwrap(), None);
        assert!(store.delete_plugin("ten_a", "ab12").unwrap());
        assert_eq!(
            store.plugin("ten_b", "ab12").unwrap().unwrap().1,
            b"abc",
            "still used by ten_b"
        );
        assert!(store.delete_plugin("ten_b", "ab12").unwrap());
        assert!(store.plugins("ten_b").unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
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

    #[test]
    fn logs_keep_their_newest_entries_and_the_outbox_survives_a_restart() {
        use crate::connection::{ErrorEntry, ErrorKind};
        use crate::webhook::{Delivery, EventType, Subscription};
        let dir = temp_dir("logs");
        {
            let store = SledStore::open(&dir).unwrap();
            for i in 0..5 {
                let entry = ErrorEntry {
                    at: now(),
                    entity: Some(Entity::Vendor),
                    kind: ErrorKind::Permission,
                    message: format!("refusal {i}"),
                    upstream_status: Some(403),
                    record_id: None,
                    plugin: None,
                    request_id: None,
                };
                store.log_error("con_a", &entry, 3).unwrap();
            }
            let messages: Vec<String> = store
                .errors("con_a")
                .unwrap()
                .into_iter()
                .map(|e| e.message)
                .collect();
            assert_eq!(messages, ["refusal 4", "refusal 3", "refusal 2"]);
            assert!(store.errors("con_b").unwrap().is_empty());
            let subscription = Subscription {
                id: "whk_1".into(),
                tenant_id: "ten_a".into(),
                url: "http://127.0.0.1:9/hooks".into(),
                events: vec![EventType::MappingUpdated],
                created_at: now(),
                secret: "whsec_0123456789abcdef".into(),
            };
            store.put_subscription(&subscription).unwrap();
            assert_eq!(store.subscription("ten_b", "whk_1").unwrap(), None);
            for (id, due_ms) in [("dlv_0000000000002_b", 2), ("dlv_0000000000001_a", 1)] {
                store
                    .put_delivery(&Delivery {
                        id: id.into(),
                        event_id: "evt_1".into(),
                        event_type: EventType::MappingUpdated,
                        subscription_id: "whk_1".into(),
                        tenant_id: "ten_a".into(),
                        body: "{}".into(),
                        attempts: 0,
                        due_ms,
                    })
                    .unwrap();
            }
        }
        let store = SledStore::open(&dir).unwrap();
        let outbox: Vec<String> = store
            .deliveries()
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(
            outbox,
            ["dlv_0000000000001_a", "dlv_0000000000002_b"],
            "oldest first"
        );
        assert_eq!(
            store.subscriptions("ten_a").unwrap()[0].secret,
            "whsec_0123456789abcdef"
        );
        store.remove_delivery("dlv_0000000000001_a").unwrap();
        assert_eq!(store.deliveries().unwrap().len(), 1);
        assert!(store.delete_subscription("ten_a", "whk_1").unwrap());
        assert!(store.subscriptions("ten_a").unwrap().is_empty());
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
