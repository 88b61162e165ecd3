//! The store conformance suite: every check runs through the `Store` trait alone, once
//! on the embedded store (sled, in a temporary directory) and once on the shared one
//! (PostgreSQL, in a throwaway cluster that the test starts and stops). Then the
//! checks that only the shared store has: its schema versions and a server that goes
//! away.
//!
//! The PostgreSQL half fails, naming what is missing, where PostgreSQL cannot be
//! started, unless `CROSSWALK_SKIP_POSTGRES=1` leaves it out.

use std::path::PathBuf;
use std::sync::Arc;

use crosswalk_core::mapping::OverrideSpec;
use crosswalk_core::model::Entity;
use crosswalk_plugin_host::{LimitOverrides, LogLevel, LogSource};
use crosswalk_service::connection::secrets::{Sealer, SecretError};
use crosswalk_service::connection::{ErrorEntry, ErrorKind, PluginLogEntry};
use crosswalk_service::store::cluster::Cluster;
use crosswalk_service::store::{
    Connection, Mode, PgOptions, PgStore, PgStoreError, PluginBinding, PluginRecord, PluginUse,
    Role, SledStore, Store, StoreError, now,
};
use crosswalk_service::webhook::{Delivery, EventType, Subscription};
use crosswalk_systems::SystemId;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Sled,
    Postgres,
}

/// One store to run a check on, which the check may open more than once (a restart,
/// or another replica: for PostgreSQL every handle has its own pool).
struct Harness {
    kind: Kind,
    dir: PathBuf,
    url: String,
    /// Stopped (and removed) last.
    cluster: Option<Cluster>,
}

impl Harness {
    /// `None` when the PostgreSQL half is left out (`CROSSWALK_SKIP_POSTGRES=1`).
    fn new(kind: Kind, name: &str) -> Option<Harness> {
        let dir = std::env::temp_dir().join(format!(
            "crosswalk-conformance-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let (cluster, url) = match kind {
            Kind::Sled => (None, String::new()),
            Kind::Postgres => {
                let cluster = Cluster::start().unwrap_or_else(|why| panic!("{why}"))?;
                let url = cluster.database().unwrap();
                (Some(cluster), url)
            }
        };
        Some(Harness {
            kind,
            dir,
            url,
            cluster,
        })
    }

    /// Opens the store (again). For sled, the handle opened before must be dropped.
    async fn open(&self) -> Arc<dyn Store> {
        match self.kind {
            Kind::Sled => {
                // sled lets go of its lock a moment after its last handle is dropped.
                for _ in 0..100 {
                    if let Ok(store) = SledStore::open(&self.dir) {
                        return Arc::new(store);
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                panic!("the store at {} stays locked", self.dir.display())
            }
            Kind::Postgres => Arc::new(
                PgStore::open(&self.url, PgOptions::default())
                    .await
                    .unwrap(),
            ),
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs each check on both stores: `sled::<check>` and `postgres::<check>`.
macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod sled {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let h = super::Harness::new(super::Kind::Sled, stringify!($check)).unwrap();
                    super::$check(&h).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let Some(h) = super::Harness::new(super::Kind::Postgres, stringify!($check))
                    else {
                        return;
                    };
                    super::$check(&h).await;
                }
            )*
        }
    };
}

conformance!(
    tenants_keys_and_connections_are_scoped_by_tenant,
    credentials_change_with_the_record_and_go_with_the_connection,
    mapping_versions_count_up_and_survive_a_restart,
    concurrent_appends_never_number_two_versions_alike,
    pruning_keeps_the_newest_versions_within_count_and_bytes,
    plugins_are_per_tenant_and_their_bytes_are_shared,
    a_plugin_is_in_use_while_a_current_mapping_binds_it,
    logs_keep_their_newest_entries_and_the_outbox_survives_a_restart,
    a_plugin_log_keeps_its_newest_lines_in_order,
    the_first_claim_of_a_meta_record_wins,
    a_store_sealed_with_one_key_refuses_another,
    one_replica_at_a_time_claims_a_subscriptions_deliveries,
    one_mark_of_needs_reauth_wins_per_incident,
    the_last_mapping_version_is_read_without_the_history,
);

async fn sandbox(store: &dyn Store, tenant: &str, name: &str) -> Connection {
    store
        .create_connection(tenant, SystemId::IbmMaximo, name, Mode::Sandbox, None)
        .await
        .unwrap()
}

fn described(text: &str) -> OverrideSpec {
    OverrideSpec {
        description: Some(text.to_owned()),
        ..Default::default()
    }
}

async fn append(
    store: &dyn Store,
    connection: &str,
    entity: Entity,
    base: u64,
    overrides: OverrideSpec,
) -> Result<u64, StoreError> {
    store
        .append_mapping(connection, entity, base, overrides, vec![], "key_1", None)
        .await
        .map(|v| v.version)
}

async fn versions(store: &dyn Store, connection: &str, entity: Entity) -> Vec<u64> {
    store
        .mapping_history(connection, entity)
        .await
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect()
}

async fn tenants_keys_and_connections_are_scoped_by_tenant(h: &Harness) {
    let store = h.open().await;
    let acme = store.create_tenant("Acme").await.unwrap();
    let other = store.create_tenant("Other").await.unwrap();
    assert_eq!(store.tenant(&acme.id).await.unwrap(), Some(acme.clone()));
    assert_eq!(store.tenant("ten_none").await.unwrap(), None);
    let mut both = vec![acme.clone(), other.clone()];
    both.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(store.tenants().await.unwrap(), both, "in id order");
    let (key, secret) = store.create_key(&acme.id, Role::Tenant).await.unwrap();
    assert!(secret.starts_with("cw_") && secret.len() > 40);
    assert_eq!(
        store.key_by_secret(&secret).await.unwrap(),
        Some(key.clone())
    );
    assert_eq!(store.key_by_secret("cw_guess").await.unwrap(), None);
    let imported = store
        .import_key(&other.id, Role::Admin, "operator-chosen")
        .await
        .unwrap();
    assert_eq!(
        store.key_by_secret("operator-chosen").await.unwrap(),
        Some(imported)
    );
    let c = sandbox(store.as_ref(), &acme.id, "Acme Maximo").await;
    let d = sandbox(store.as_ref(), &acme.id, "Acme Maximo 2").await;
    assert_eq!(
        store.connection(&acme.id, &c.id).await.unwrap(),
        Some(c.clone())
    );
    // Another tenant does not see it, by id or in its list, nor deletes it.
    assert_eq!(store.connection(&other.id, &c.id).await.unwrap(), None);
    assert!(store.connections(&other.id).await.unwrap().is_empty());
    assert!(!store.delete_connection(&other.id, &c.id).await.unwrap());
    let mut mine = vec![c.clone(), d.clone()];
    mine.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(store.connections(&acme.id).await.unwrap(), mine);
    assert_eq!(store.all_connections().await.unwrap().len(), 2);
    assert!(store.delete_connection(&acme.id, &c.id).await.unwrap());
    assert!(!store.delete_connection(&acme.id, &c.id).await.unwrap());
    assert_eq!(store.connection(&acme.id, &c.id).await.unwrap(), None);
    assert_eq!(store.connections(&acme.id).await.unwrap(), vec![d]);
}

async fn credentials_change_with_the_record_and_go_with_the_connection(h: &Harness) {
    let store = h.open().await;
    let acme = store.create_tenant("Acme").await.unwrap();
    let other = store.create_tenant("Other").await.unwrap();
    let mut c = sandbox(store.as_ref(), &acme.id, "live").await;
    assert_eq!(store.credentials(&c.id).await.unwrap(), None);
    c.token = "ctk_second".into();
    store
        .update_connection(&c, Some(b"sealed-1"))
        .await
        .unwrap();
    assert_eq!(
        store.credentials(&c.id).await.unwrap().as_deref(),
        Some(&b"sealed-1"[..])
    );
    // A record change without credentials keeps the credentials.
    c.needs_reauth_since = Some(now());
    store.update_connection(&c, None).await.unwrap();
    assert_eq!(
        store.connection(&acme.id, &c.id).await.unwrap(),
        Some(c.clone())
    );
    assert_eq!(
        store.credentials(&c.id).await.unwrap().as_deref(),
        Some(&b"sealed-1"[..])
    );
    // Another tenant's update of it changes nothing.
    let mut forged = c.clone();
    forged.tenant_id = other.id.clone();
    forged.name = "forged".into();
    store
        .update_connection(&forged, Some(b"forged"))
        .await
        .unwrap();
    assert_eq!(
        store.connection(&acme.id, &c.id).await.unwrap(),
        Some(c.clone())
    );
    assert_eq!(
        store.credentials(&c.id).await.unwrap().as_deref(),
        Some(&b"sealed-1"[..])
    );
    // Deleted: its history, its error log and its credentials go with it.
    append(store.as_ref(), &c.id, Entity::Asset, 0, described("v1"))
        .await
        .unwrap();
    store.log_error(&c.id, &entry("refused"), 10).await.unwrap();
    store
        .log_plugin(&c.id, &[plugin_line("said")], 10)
        .await
        .unwrap();
    assert!(store.delete_connection(&acme.id, &c.id).await.unwrap());
    assert_eq!(store.credentials(&c.id).await.unwrap(), None);
    assert!(
        versions(store.as_ref(), &c.id, Entity::Asset)
            .await
            .is_empty()
    );
    assert!(store.errors(&c.id).await.unwrap().is_empty());
    assert!(store.plugin_log(&c.id).await.unwrap().is_empty());
}

async fn mapping_versions_count_up_and_survive_a_restart(h: &Harness) {
    let (tenant, c) = {
        let store = h.open().await;
        let tenant = store.create_tenant("Acme").await.unwrap();
        let c = sandbox(store.as_ref(), &tenant.id, "Maximo").await;
        for i in 0..3 {
            let v = append(
                store.as_ref(),
                &c.id,
                Entity::WorkOrder,
                i,
                described(&format!("change {i}")),
            )
            .await
            .unwrap();
            assert_eq!(v, i + 1);
        }
        let v = append(
            store.as_ref(),
            &c.id,
            Entity::Asset,
            0,
            OverrideSpec::default(),
        )
        .await
        .unwrap();
        assert_eq!(v, 1, "versions count per entity");
        (tenant, c)
    };
    let store = h.open().await;
    let history = store
        .mapping_history(&c.id, Entity::WorkOrder)
        .await
        .unwrap();
    assert_eq!(
        history.iter().map(|v| v.version).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(
        history[2].overrides.description.as_deref(),
        Some("change 2")
    );
    assert_eq!(
        (history[2].entity, history[2].author.as_str()),
        (Entity::WorkOrder, "key_1")
    );
    // A change made from version 2 is refused: version 3 came in between.
    let e = append(
        store.as_ref(),
        &c.id,
        Entity::WorkOrder,
        2,
        OverrideSpec::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(e, StoreError::VersionMoved { base: 2, last: 3 }),
        "{e}"
    );
    // So is one from a version that was never stored.
    let e = append(
        store.as_ref(),
        &c.id,
        Entity::WorkOrder,
        7,
        OverrideSpec::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(e, StoreError::VersionMoved { base: 7, last: 3 }),
        "{e}"
    );
    let v = store
        .append_mapping(
            &c.id,
            Entity::WorkOrder,
            3,
            OverrideSpec::default(),
            vec![],
            "key_2",
            Some(1),
        )
        .await
        .unwrap();
    assert_eq!((v.version, v.rollback_of), (4, Some(1)));
    assert_eq!(
        store.connections(&tenant.id).await.unwrap(),
        vec![c.clone()]
    );
}

/// Many writers, each with a handle of its own (on PostgreSQL, a pool of its own, as
/// replicas have), append to one mapping at once, each from the version it last read:
/// the versions stored are 1 to N, each once, and a writer that lost a race is told
/// the version that moved.
async fn concurrent_appends_never_number_two_versions_alike(h: &Harness) {
    const WRITERS: usize = 8;
    const EACH: usize = 5;
    let store = h.open().await;
    let tenant = store.create_tenant("Acme").await.unwrap();
    let c = sandbox(store.as_ref(), &tenant.id, "contended").await;
    // sled allows one handle per process: its writers share one.
    let handles: Vec<Arc<dyn Store>> = match h.kind {
        Kind::Sled => vec![Arc::clone(&store); WRITERS],
        Kind::Postgres => {
            let mut handles = Vec::new();
            for _ in 0..WRITERS {
                handles.push(h.open().await);
            }
            handles
        }
    };
    // All from version 0 at once: one wins.
    let racers: Vec<_> = handles
        .iter()
        .map(|s| {
            let (s, id) = (Arc::clone(s), c.id.clone());
            tokio::spawn(async move {
                append(s.as_ref(), &id, Entity::Part, 0, described("first")).await
            })
        })
        .collect();
    let mut won = 0;
    for racer in racers {
        match racer.await.unwrap() {
            Ok(1) => won += 1,
            Ok(v) => panic!("version {v} from base 0"),
            Err(StoreError::VersionMoved { base: 0, last: 1 }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(won, 1, "exactly one append from version 0 is stored");
    // Then each writer appends EACH versions, re-reading after every lost race.
    let writers: Vec<_> = handles
        .iter()
        .enumerate()
        .map(|(w, s)| {
            let (s, id) = (Arc::clone(s), c.id.clone());
            tokio::spawn(async move {
                let mut stored = Vec::new();
                let mut lost = 0;
                while stored.len() < EACH {
                    let base = versions(s.as_ref(), &id, Entity::Part)
                        .await
                        .last()
                        .copied()
                        .unwrap_or(0);
                    let text = format!("writer {w} change {}", stored.len());
                    match append(s.as_ref(), &id, Entity::Part, base, described(&text)).await {
                        Ok(v) => {
                            assert_eq!(v, base + 1);
                            stored.push(v);
                        }
                        Err(StoreError::VersionMoved { base: b, last }) => {
                            assert!(b == base && last > base, "moved from {b} to {last}");
                            lost += 1;
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                (stored, lost)
            })
        })
        .collect();
    let mut all = vec![1];
    for writer in writers {
        let (stored, _lost) = writer.await.unwrap();
        all.extend(stored);
    }
    all.sort_unstable();
    let expected: Vec<u64> = (1..=(1 + WRITERS * EACH) as u64).collect();
    assert_eq!(all, expected, "every version once");
    assert_eq!(
        versions(store.as_ref(), &c.id, Entity::Part).await,
        expected
    );
}

async fn pruning_keeps_the_newest_versions_within_count_and_bytes(h: &Harness) {
    let store = h.open().await;
    let s = store.as_ref();
    let mut last = 0;
    for i in 0..5 {
        last = append(
            s,
            "con_a",
            Entity::Part,
            last,
            described(&format!("change {i}")),
        )
        .await
        .unwrap();
    }
    let prune = |keep, bytes| store.prune_mapping_history("con_a", Entity::Part, keep, bytes);
    assert_eq!(prune(3, u64::MAX).await.unwrap(), 2);
    assert_eq!(versions(s, "con_a", Entity::Part).await, [3, 4, 5]);
    // Bytes: a large newest version is kept however large; older ones go once the
    // versions kept would pass the bound.
    last = append(
        s,
        "con_a",
        Entity::Part,
        last,
        described(&"x".repeat(10_000)),
    )
    .await
    .unwrap();
    assert_eq!(prune(100, 1000).await.unwrap(), 3);
    assert_eq!(versions(s, "con_a", Entity::Part).await, [6]);
    last = append(s, "con_a", Entity::Part, last, described("small"))
        .await
        .unwrap();
    prune(100, 1000).await.unwrap();
    assert_eq!(
        versions(s, "con_a", Entity::Part).await,
        [7],
        "6 would take the history past 1000 bytes"
    );
    // Numbering goes on after pruning, and another entity is untouched.
    assert_eq!(
        append(s, "con_a", Entity::Part, last, described("next"))
            .await
            .unwrap(),
        8
    );
    assert_eq!(
        store
            .prune_mapping_history("con_a", Entity::Asset, 0, 0)
            .await
            .unwrap(),
        0
    );
}

fn plugin_record(tenant: &str, sha256: &str) -> PluginRecord {
    PluginRecord {
        tenant_id: tenant.into(),
        sha256: sha256.into(),
        name: "uom".into(),
        version: "1.0.0".into(),
        size: 3,
        uploaded_at: now(),
    }
}

async fn plugins_are_per_tenant_and_their_bytes_are_shared(h: &Harness) {
    let store = h.open().await;
    let sha = "ab".repeat(32);
    store
        .put_plugin(&plugin_record("ten_a", &sha), b"abc")
        .await
        .unwrap();
    store
        .put_plugin(&plugin_record("ten_b", &sha), b"abc")
        .await
        .unwrap();
    // Uploading the same bytes again is idempotent.
    store
        .put_plugin(&plugin_record("ten_b", &sha), b"abc")
        .await
        .unwrap();
    assert_eq!(store.plugins("ten_b").await.unwrap().len(), 1);
    let (record, bytes) = store.plugin("ten_a", &sha).await.unwrap().unwrap();
    assert_eq!(
        (record.tenant_id.as_str(), bytes.as_slice()),
        ("ten_a", &b"abc"[..])
    );
    assert_eq!(store.plugin("ten_c", &sha).await.unwrap(), None);
    assert!(!store.delete_plugin("ten_c", &sha).await.unwrap());
    assert!(store.delete_plugin("ten_a", &sha).await.unwrap());
    assert_eq!(
        store.plugin("ten_b", &sha).await.unwrap().unwrap().1,
        b"abc",
        "still used by ten_b"
    );
    assert!(store.delete_plugin("ten_b", &sha).await.unwrap());
    assert!(store.plugins("ten_b").await.unwrap().is_empty());
    // Uploaded again after both deletions: the bytes are back.
    store
        .put_plugin(&plugin_record("ten_a", &sha), b"abc")
        .await
        .unwrap();
    assert_eq!(
        store.plugin("ten_a", &sha).await.unwrap().unwrap().1,
        b"abc"
    );
}

async fn a_plugin_is_in_use_while_a_current_mapping_binds_it(h: &Harness) {
    let store = h.open().await;
    let s = store.as_ref();
    let binding = |sha256: &str| PluginBinding {
        sha256: sha256.to_owned(),
        limits: LimitOverrides::default(),
    };
    let acme = s.create_tenant("Acme").await.unwrap();
    let other = s.create_tenant("Other").await.unwrap();
    let first = sandbox(s, &acme.id, "first").await;
    let second = sandbox(s, &acme.id, "second").await;
    let (uom, unused) = ("a".repeat(64), "b".repeat(64));
    let bind = |c: &Connection, entity: Entity, base: u64, plugins: Vec<PluginBinding>| {
        let id = c.id.clone();
        async move {
            s.append_mapping(
                &id,
                entity,
                base,
                OverrideSpec::default(),
                plugins,
                "key_1",
                None,
            )
            .await
            .unwrap();
        }
    };
    assert_eq!(s.plugin_use(&acme.id, &uom).await.unwrap(), None);
    // Bound by an earlier version of the first connection's mapping only: history,
    // not use.
    bind(&first, Entity::WorkOrder, 0, vec![binding(&uom)]).await;
    bind(&first, Entity::WorkOrder, 1, vec![]).await;
    assert_eq!(s.plugin_use(&acme.id, &uom).await.unwrap(), None);
    // Bound by the second connection's current mapping of assets.
    bind(&second, Entity::WorkOrder, 0, vec![binding(&unused)]).await;
    bind(
        &second,
        Entity::Asset,
        0,
        vec![binding(&unused), binding(&uom)],
    )
    .await;
    assert_eq!(
        s.plugin_use(&acme.id, &uom).await.unwrap(),
        Some(PluginUse {
            connection_id: second.id.clone(),
            entity: Entity::Asset,
        })
    );
    // Another tenant's plugin of the same bytes is not in use.
    assert_eq!(s.plugin_use(&other.id, &uom).await.unwrap(), None);
    // Unbound by a new version: no longer in use.
    bind(&second, Entity::Asset, 1, vec![binding(&unused)]).await;
    assert_eq!(s.plugin_use(&acme.id, &uom).await.unwrap(), None);
}

fn plugin_line(message: &str) -> PluginLogEntry {
    PluginLogEntry {
        at: now(),
        entity: Some(Entity::Vendor),
        level: LogLevel::Info,
        source: LogSource::Stdout,
        plugin: "greet".into(),
        function: "prefix".into(),
        message: message.to_owned(),
        request_id: Some("req-1".into()),
    }
}

/// A batch of lines goes in in order; the log keeps the newest, per connection, and
/// they survive a restart.
async fn a_plugin_log_keeps_its_newest_lines_in_order(h: &Harness) {
    {
        let store = h.open().await;
        let lines: Vec<PluginLogEntry> =
            (0..4).map(|i| plugin_line(&format!("line {i}"))).collect();
        store.log_plugin("con_a", &lines, 5).await.unwrap();
        store.log_plugin("con_a", &lines[..2], 5).await.unwrap();
        store.log_plugin("con_b", &lines[..1], 5).await.unwrap();
    }
    let store = h.open().await;
    let messages: Vec<String> = store
        .plugin_log("con_a")
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.message)
        .collect();
    assert_eq!(messages, ["line 1", "line 0", "line 3", "line 2", "line 1"]);
    let b = store.plugin_log("con_b").await.unwrap();
    assert_eq!(b.len(), 1, "{b:?}");
    let want = PluginLogEntry {
        at: b[0].at.clone(),
        ..plugin_line("line 0")
    };
    assert_eq!(b[0], want);
}

fn entry(message: &str) -> ErrorEntry {
    ErrorEntry {
        at: now(),
        entity: Some(Entity::Vendor),
        kind: ErrorKind::Permission,
        message: message.to_owned(),
        upstream_status: Some(403),
        record_id: None,
        plugin: None,
        request_id: None,
    }
}

async fn logs_keep_their_newest_entries_and_the_outbox_survives_a_restart(h: &Harness) {
    {
        let store = h.open().await;
        for i in 0..5 {
            store
                .log_error("con_a", &entry(&format!("refusal {i}")), 3)
                .await
                .unwrap();
        }
        let messages: Vec<String> = store
            .errors("con_a")
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(messages, ["refusal 4", "refusal 3", "refusal 2"]);
        assert!(store.errors("con_b").await.unwrap().is_empty());
        let subscription = Subscription {
            id: "whk_1".into(),
            tenant_id: "ten_a".into(),
            url: "http://127.0.0.1:9/hooks".into(),
            events: vec![EventType::MappingUpdated],
            created_at: now(),
            secret: "whsec_0123456789abcdef".into(),
        };
        store.put_subscription(&subscription).await.unwrap();
        assert_eq!(store.subscription("ten_b", "whk_1").await.unwrap(), None);
        assert_eq!(
            store.subscription("ten_a", "whk_1").await.unwrap(),
            Some(subscription)
        );
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
                .await
                .unwrap();
        }
        for attempt in 1..=4 {
            let logged = crosswalk_service::webhook::DeliveryAttempt {
                event_id: "evt_1".into(),
                event_type: EventType::MappingUpdated,
                attempt,
                at: now(),
                outcome: "failed".into(),
                status: Some(500),
                error: Some("the receiver answered 500".into()),
                next_attempt_at: None,
            };
            store.log_delivery("whk_1", &logged, 2).await.unwrap();
        }
    }
    let store = h.open().await;
    let outbox: Vec<String> = store
        .deliveries()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(
        outbox,
        ["dlv_0000000000001_a", "dlv_0000000000002_b"],
        "oldest first"
    );
    let attempts: Vec<u32> = store
        .delivery_log("whk_1")
        .await
        .unwrap()
        .iter()
        .map(|a| a.attempt)
        .collect();
    assert_eq!(attempts, [4, 3], "the newest two, newest first");
    assert_eq!(
        store.subscriptions("ten_a").await.unwrap()[0].secret,
        "whsec_0123456789abcdef"
    );
    // A delivery put again (a retry) replaces itself.
    let mut retried = store.deliveries().await.unwrap().remove(0);
    retried.attempts = 1;
    store.put_delivery(&retried).await.unwrap();
    assert_eq!(store.deliveries().await.unwrap()[0].attempts, 1);
    store.remove_delivery("dlv_0000000000001_a").await.unwrap();
    assert_eq!(store.deliveries().await.unwrap().len(), 1);
    assert!(!store.delete_subscription("ten_b", "whk_1").await.unwrap());
    assert!(store.delete_subscription("ten_a", "whk_1").await.unwrap());
    assert!(store.subscriptions("ten_a").await.unwrap().is_empty());
    assert!(store.delivery_log("whk_1").await.unwrap().is_empty());
}

async fn the_first_claim_of_a_meta_record_wins(h: &Harness) {
    let store = h.open().await;
    let claims: Vec<_> = (0..6)
        .map(|i| {
            let s = Arc::clone(&store);
            tokio::spawn(async move {
                (
                    i,
                    s.claim_meta("set_up_by", &format!("replica {i}"))
                        .await
                        .unwrap(),
                )
            })
        })
        .collect();
    let mut answers = Vec::new();
    for claim in claims {
        answers.push(claim.await.unwrap());
    }
    let winner = answers[0].1.clone();
    assert!(answers.iter().all(|(_, a)| *a == winner), "{answers:?}");
    assert!(
        answers
            .iter()
            .any(|(i, _)| format!("replica {i}") == winner)
    );
    drop(store);
    let store = h.open().await;
    assert_eq!(
        store.claim_meta("set_up_by", "later").await.unwrap(),
        winner
    );
    assert_eq!(store.claim_meta("other", "later").await.unwrap(), "later");
}

async fn a_store_sealed_with_one_key_refuses_another(h: &Harness) {
    let store = h.open().await;
    let first = Sealer::from_text(&"11".repeat(32)).unwrap();
    let second = Sealer::from_text(&"22".repeat(32)).unwrap();
    first.check_store(store.as_ref()).await.unwrap();
    first.check_store(store.as_ref()).await.unwrap();
    assert_eq!(
        second.check_store(store.as_ref()).await,
        Err(SecretError::OtherKey)
    );
    drop(store);
    let store = h.open().await;
    first.check_store(store.as_ref()).await.unwrap();
}

fn delivery(id: &str, subscription: &str, due_ms: u64) -> Delivery {
    Delivery {
        id: id.into(),
        event_id: format!("evt_{id}"),
        event_type: EventType::MappingUpdated,
        subscription_id: subscription.into(),
        tenant_id: "ten_a".into(),
        body: "{}".into(),
        attempts: 0,
        due_ms,
    }
}

async fn one_replica_at_a_time_claims_a_subscriptions_deliveries(h: &Harness) {
    let a = h.open().await;
    let b = match h.kind {
        Kind::Sled => Arc::clone(&a),
        Kind::Postgres => h.open().await,
    };
    let ids = |ds: Vec<Delivery>| ds.into_iter().map(|d| d.id).collect::<Vec<_>>();
    assert_eq!(a.outbox_next(1_000).await.unwrap(), None);
    for d in [
        delivery("dlv_1", "whk_1", 100),
        delivery("dlv_2", "whk_2", 200),
        delivery("dlv_3", "whk_1", 300),
        delivery("dlv_4", "whk_3", 5_000),
    ] {
        a.put_delivery(&d).await.unwrap();
    }
    assert_eq!(a.outbox_next(1_000).await.unwrap(), Some(100));
    // A claims the subscriptions with due deliveries, until 60 000; not whk_3, not due.
    let claimed = ids(a
        .claim_outbox("replica_a", 1_000, 60_000, 10)
        .await
        .unwrap());
    assert_eq!(claimed, ["dlv_1", "dlv_2", "dlv_3"]);
    // B finds them claimed; what is next for it is A's claims' expiry or whk_3.
    assert!(
        b.claim_outbox("replica_b", 1_000, 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(b.outbox_next(1_000).await.unwrap(), Some(5_000));
    assert!(a.renew_claim("replica_a", "whk_1", 70_000).await.unwrap());
    assert!(!b.renew_claim("replica_b", "whk_1", 70_000).await.unwrap());
    // A gives whk_2 up with its delivery still in the outbox (it stopped early): B
    // claims it.
    a.release_claim("replica_a", "whk_2").await.unwrap();
    b.release_claim("replica_b", "whk_1").await.unwrap();
    let claimed = ids(b
        .claim_outbox("replica_b", 2_000, 60_000, 10)
        .await
        .unwrap());
    assert_eq!(claimed, ["dlv_2"], "whk_1 is still A's");
    // A stops without giving whk_1 up: at its claim's expiry (70 000) B claims it, with
    // whk_3, due by then, and whk_2 again (B's own claim expired at 60 000 with dlv_2
    // still in the outbox); A's renewal then fails.
    let claimed = ids(b
        .claim_outbox("replica_b", 70_001, 130_000, 10)
        .await
        .unwrap());
    assert_eq!(claimed, ["dlv_1", "dlv_2", "dlv_3", "dlv_4"]);
    assert!(!a.renew_claim("replica_a", "whk_1", 200_000).await.unwrap());
    // A limit on subscriptions claimed at once.
    for s in ["whk_1", "whk_2", "whk_3"] {
        b.release_claim("replica_b", s).await.unwrap();
    }
    let claimed = a
        .claim_outbox("replica_a", 200_000, 260_000, 1)
        .await
        .unwrap();
    let subscriptions: std::collections::BTreeSet<String> =
        claimed.into_iter().map(|d| d.subscription_id).collect();
    assert_eq!(subscriptions.len(), 1);
}

/// Replicas that meet the same refused credentials at once: one marks the connection
/// (and raises the event), the others find it marked; a mark made for a token that
/// was replaced since (a reauthorization) marks nothing.
async fn one_mark_of_needs_reauth_wins_per_incident(h: &Harness) {
    let store = h.open().await;
    let acme = store.create_tenant("Acme").await.unwrap();
    let c = sandbox(store.as_ref(), &acme.id, "live").await;
    let handles: Vec<Arc<dyn Store>> = match h.kind {
        Kind::Sled => vec![Arc::clone(&store); 6],
        Kind::Postgres => {
            let mut handles = Vec::new();
            for _ in 0..6 {
                handles.push(h.open().await);
            }
            handles
        }
    };
    let marking: Vec<_> = handles
        .into_iter()
        .map(|s| {
            let (tenant, id, token) = (acme.id.clone(), c.id.clone(), c.token.clone());
            tokio::spawn(async move { s.mark_needs_reauth(&tenant, &id, &token, &now()).await })
        })
        .collect();
    let mut won = 0;
    for mark in marking {
        if mark.await.unwrap().unwrap() {
            won += 1;
        }
    }
    assert_eq!(won, 1, "one replica marks the connection");
    let marked = store.connection(&acme.id, &c.id).await.unwrap().unwrap();
    assert!(marked.needs_reauth_since.is_some());
    // Reauthorized: a new token, no mark. A mark for the old token is too late.
    let mut restored = marked.clone();
    restored.token = "ctk_new".into();
    restored.needs_reauth_since = None;
    store
        .update_connection(&restored, Some(b"new"))
        .await
        .unwrap();
    assert!(
        !store
            .mark_needs_reauth(&acme.id, &c.id, &c.token, &now())
            .await
            .unwrap()
    );
    assert!(
        !store
            .mark_needs_reauth("ten_other", &c.id, "ctk_new", &now())
            .await
            .unwrap(),
        "another tenant's"
    );
    assert!(
        store
            .mark_needs_reauth(&acme.id, &c.id, "ctk_new", &now())
            .await
            .unwrap(),
        "a new incident"
    );
}

async fn the_last_mapping_version_is_read_without_the_history(h: &Harness) {
    let store = h.open().await;
    let s = store.as_ref();
    assert_eq!(s.mapping_version("con_a", Entity::Part).await.unwrap(), 0);
    for base in 0..3 {
        append(
            s,
            "con_a",
            Entity::Part,
            base,
            described(&format!("v{base}")),
        )
        .await
        .unwrap();
    }
    // Pruned to one version, the last is still 3; another entity has none.
    s.prune_mapping_history("con_a", Entity::Part, 1, u64::MAX)
        .await
        .unwrap();
    assert_eq!(s.mapping_version("con_a", Entity::Part).await.unwrap(), 3);
    assert_eq!(s.mapping_version("con_a", Entity::Asset).await.unwrap(), 0);
}

/// A database whose schema a newer Crosswalk migrated is refused, and this binary's
/// own schema is applied once, however many replicas start together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_migrates_once_and_refuses_a_newer_schema() {
    let Some(h) = Harness::new(Kind::Postgres, "schema") else {
        return;
    };
    let opening: Vec<_> = (0..4)
        .map(|_| {
            let url = h.url.clone();
            tokio::spawn(async move { PgStore::open(&url, PgOptions::default()).await.map(drop) })
        })
        .collect();
    for open in opening {
        open.await.unwrap().unwrap();
    }
    let cluster = h.cluster.as_ref().unwrap();
    let db = h.url.rsplit('/').next().unwrap();
    let applied = cluster
        .psql(
            db,
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM crosswalk_schema",
        )
        .unwrap();
    let expected: Vec<String> = (1..=PgStore::schema_version())
        .map(|v| v.to_string())
        .collect();
    assert_eq!(applied, expected.join(","));
    let newer = PgStore::schema_version() + 1;
    cluster
        .psql(
            db,
            &format!("INSERT INTO crosswalk_schema (version) VALUES ({newer})"),
        )
        .unwrap();
    let e = PgStore::open(&h.url, PgOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(e, PgStoreError::SchemaTooNew { found, supported } if found == newer && supported == newer - 1),
        "{e}"
    );
    assert!(e.to_string().contains("newer than this binary's"), "{e}");
}

/// A server that goes away makes calls fail as `Unavailable` within the pool's wait,
/// and requests answer 503 `store_unavailable` with `Retry-After` (not a hang, not a
/// 500); once it is back, the same store and the same service work again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_going_away_is_unavailable_and_the_service_recovers() {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;
    let Some(mut h) = Harness::new(Kind::Postgres, "away") else {
        return;
    };
    let options = PgOptions {
        wait: std::time::Duration::from_secs(1),
        ..PgOptions::default()
    };
    let store: Arc<dyn Store> = Arc::new(PgStore::open(&h.url, options).await.unwrap());
    let tenant = store.create_tenant("Acme").await.unwrap();
    let (_, secret) = store.create_key(&tenant.id, Role::Tenant).await.unwrap();
    let host = Arc::new(
        crosswalk_plugin_host::PluginHost::new(crosswalk_plugin_host::HostConfig {
            max_instances: 2,
            ..Default::default()
        })
        .unwrap(),
    );
    let router = crosswalk_service::http::app(crosswalk_service::http::AppState::new(
        Arc::clone(&store),
        host,
        1 << 20,
    ));
    let list = || {
        Request::get("/v1/connections")
            .header("authorization", format!("Bearer {secret}"))
            .body(Body::empty())
            .unwrap()
    };
    let answer = router.clone().oneshot(list()).await.unwrap();
    assert_eq!(answer.status(), 200);

    h.cluster.as_mut().unwrap().stop();
    let e = store.tenant(&tenant.id).await.unwrap_err();
    assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
    let answer = router.clone().oneshot(list()).await.unwrap();
    assert_eq!(answer.status(), 503);
    assert_eq!(
        answer
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap()),
        Some("1")
    );
    let body = axum::body::to_bytes(answer.into_body(), 1 << 20)
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "store_unavailable", "{body}");

    h.cluster.as_mut().unwrap().restart().unwrap();
    assert_eq!(store.tenant(&tenant.id).await.unwrap(), Some(tenant));
    let answer = router.oneshot(list()).await.unwrap();
    assert_eq!(answer.status(), 200);
}

/// Two services on one database, as two replicas: B never follows the store's
/// changes (a replica that has not heard yet), so it serves the version it holds
/// until a request names a later one with `Crosswalk-Mapping-Version`; C follows them
/// and hears A's change without being asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_naming_a_version_gets_it_from_a_replica_that_has_not_heard() {
    use axum::body::Body;
    use axum::http::Request;
    use crosswalk_service::http::{AppState, app};
    use tower::ServiceExt;
    let Some(h) = Harness::new(Kind::Postgres, "heard") else {
        return;
    };
    let host = Arc::new(
        crosswalk_plugin_host::PluginHost::new(crosswalk_plugin_host::HostConfig {
            max_instances: 2,
            ..Default::default()
        })
        .unwrap(),
    );
    let replica = |store: Arc<dyn Store>| AppState::new(store, Arc::clone(&host), 1 << 20);
    let (a, b, c) = (
        replica(h.open().await),
        replica(h.open().await),
        replica(h.open().await),
    );
    let _following = c.start_following(std::time::Duration::from_secs(3600));
    let store = h.open().await;
    let tenant = store.create_tenant("Acme").await.unwrap();
    let (_, secret) = store.create_key(&tenant.id, Role::Tenant).await.unwrap();
    let sap = store
        .create_connection(&tenant.id, SystemId::SapS4Hana, "SAP", Mode::Sandbox, None)
        .await
        .unwrap();
    let mapping = format!("/v1/connections/{}/mappings/purchase_order", sap.id);
    let call =
        |state: &AppState, method: &str, at: Option<&str>, body: Option<serde_json::Value>| {
            let mut request = Request::builder()
                .method(method)
                .uri(&mapping)
                .header("authorization", format!("Bearer {secret}"))
                .header("content-type", "application/json");
            if let Some(at) = at {
                request = request.header("crosswalk-mapping-version", at);
            }
            let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
            let router = app(state.clone());
            async move {
                let answer = router.oneshot(request.body(body).unwrap()).await.unwrap();
                let status = answer.status().as_u16();
                let version = answer
                    .headers()
                    .get("crosswalk-mapping-version")
                    .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
                let body = axum::body::to_bytes(answer.into_body(), 1 << 20)
                    .await
                    .unwrap();
                let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                (status, version, body)
            }
        };
    let change =
        |n: u64| Some(serde_json::json!({"description": format!("change {n}"), "overrides": []}));
    for replica in [&b, &c] {
        assert_eq!(call(replica, "GET", None, None).await.1, Some(0));
    }
    let (status, version, body) = call(&a, "PUT", None, change(1)).await;
    assert_eq!((status, version), (200, Some(1)), "{body}");
    // B has not heard: without asking, it serves the version it holds.
    assert_eq!(call(&b, "GET", None, None).await.1, Some(0));
    // Asked for version 1, it loads it, and serves it from then on.
    assert_eq!(call(&b, "GET", Some("1"), None).await.1, Some(1));
    assert_eq!(call(&b, "GET", None, None).await.1, Some(1));
    // An older version asked for is served by the newer one held.
    assert_eq!(call(&b, "GET", Some("0"), None).await.1, Some(1));
    // A version never stored, and a header that is not a version.
    let (status, _, body) = call(&b, "GET", Some("7"), None).await;
    assert_eq!(status, 412, "{body}");
    assert_eq!(body["error"]["code"], "version_mismatch", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("version 7"),
        "{body}"
    );
    let (status, _, body) = call(&b, "GET", Some("latest"), None).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("crosswalk-mapping-version"),
        "{body}"
    );
    // C follows the store: it hears version 1 and then 2 without being asked.
    for n in [1, 2] {
        if n == 2 {
            let (status, version, body) = call(&a, "PUT", None, change(2)).await;
            assert_eq!((status, version), (200, Some(2)), "{body}");
        }
        let started = std::time::Instant::now();
        while call(&c, "GET", None, None).await.1 != Some(n) {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(10),
                "C never heard of version {n}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
    // B still has not heard of 2.
    assert_eq!(call(&b, "GET", None, None).await.1, Some(1));
}

/// Fills a store with some of every kind of record, as a service would leave it.
async fn fill(store: &dyn Store) {
    let acme = store.create_tenant("Acme").await.unwrap();
    store.create_key(&acme.id, Role::Tenant).await.unwrap();
    store
        .import_key(&acme.id, Role::Admin, "operator-chosen")
        .await
        .unwrap();
    let mut c = sandbox(store, &acme.id, "live").await;
    c.token = "ctk_2".into();
    store.update_connection(&c, Some(b"sealed")).await.unwrap();
    sandbox(store, &acme.id, "plain").await;
    for base in 0..3 {
        append(
            store,
            &c.id,
            Entity::Asset,
            base,
            described(&format!("v{}", base + 1)),
        )
        .await
        .unwrap();
    }
    // The history keeps 2 of the 3; numbering goes on from 3.
    store
        .prune_mapping_history(&c.id, Entity::Asset, 2, u64::MAX)
        .await
        .unwrap();
    let sha = "cd".repeat(32);
    store
        .put_plugin(&plugin_record(&acme.id, &sha), b"component")
        .await
        .unwrap();
    for i in 0..3 {
        store
            .log_error(&c.id, &entry(&format!("refusal {i}")), 10)
            .await
            .unwrap();
    }
    store
        .log_plugin(&c.id, &[plugin_line("one"), plugin_line("two")], 10)
        .await
        .unwrap();
    let subscription = Subscription {
        id: "whk_1".into(),
        tenant_id: acme.id.clone(),
        url: "https://hooks.example.com/crosswalk".into(),
        events: vec![EventType::MappingUpdated],
        created_at: now(),
        secret: "whsec_0123456789abcdef".into(),
    };
    store.put_subscription(&subscription).await.unwrap();
    store
        .put_delivery(&delivery("dlv_1", "whk_1", 100))
        .await
        .unwrap();
    for attempt in 1..=2 {
        let logged = crosswalk_service::webhook::DeliveryAttempt {
            event_id: "evt_0".into(),
            event_type: EventType::MappingUpdated,
            attempt,
            at: now(),
            outcome: "failed".into(),
            status: Some(500),
            error: None,
            next_attempt_at: None,
        };
        store.log_delivery("whk_1", &logged, 10).await.unwrap();
    }
    Sealer::from_text(&"33".repeat(32))
        .unwrap()
        .check_store(store)
        .await
        .unwrap();
}

/// What `crosswalk store copy` does: sled into PostgreSQL and back, every record as it
/// was (ids, versions and where numbering goes on, sealed credentials, logs in order);
/// a store that holds anything is not copied into.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_loads_into_an_empty_store_of_the_other_kind_as_it_was() {
    let Some(pg) = Harness::new(Kind::Postgres, "copy-pg") else {
        return;
    };
    let sled = Harness::new(Kind::Sled, "copy-sled").unwrap();
    let back = Harness::new(Kind::Sled, "copy-back").unwrap();
    let source = sled.open().await;
    fill(source.as_ref()).await;
    let dump = source.dump().await.unwrap();
    let counts = dump.counts();
    assert_eq!(
        (
            counts.tenants,
            counts.keys,
            counts.connections,
            counts.credentials
        ),
        (1, 2, 2, 1)
    );
    assert_eq!(
        (
            counts.mapping_versions,
            counts.plugins,
            counts.error_log_entries,
            counts.plugin_log_lines
        ),
        (2, 1, 3, 2)
    );
    assert_eq!(
        (
            counts.subscriptions,
            counts.outbox,
            counts.delivery_log_entries,
            counts.meta
        ),
        (1, 1, 2, 1)
    );
    let target = pg.open().await;
    target.load(&dump).await.unwrap();
    assert_eq!(target.dump().await.unwrap(), dump, "sled into PostgreSQL");
    // The copy works as the original: numbering goes on from 3, keys still match.
    let c = &dump.connections[0].0;
    let (id, _) = dump
        .mapping_heads
        .iter()
        .map(|(c, _, last)| (c.clone(), *last))
        .next()
        .unwrap();
    assert_eq!(
        append(target.as_ref(), &id, Entity::Asset, 3, described("v4"))
            .await
            .unwrap(),
        4
    );
    assert!(
        target
            .key_by_secret("operator-chosen")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        target
            .connection(&c.tenant_id, &c.id)
            .await
            .unwrap()
            .as_ref(),
        Some(c)
    );
    // And back into a new sled store.
    let moved = target.dump().await.unwrap();
    let returned = back.open().await;
    returned.load(&moved).await.unwrap();
    assert_eq!(
        returned.dump().await.unwrap(),
        moved,
        "PostgreSQL into sled"
    );
    // Neither takes a copy once it holds something, and neither changes.
    for store in [&target, &returned] {
        let e = store.load(&dump).await.unwrap_err();
        assert!(matches!(e, StoreError::NotEmpty { .. }), "{e}");
        assert!(e.to_string().contains("1 tenants"), "{e}");
        assert_eq!(store.dump().await.unwrap(), moved);
    }
}

/// A tenant's quota lock is one for every replica of a shared store: a second holder
/// waits, another tenant does not, and a wait that is given up leaves nothing held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_quota_locks_order_a_tenants_creations_across_replicas() {
    use std::time::Duration;
    let Some(h) = Harness::new(Kind::Postgres, "quota") else {
        return;
    };
    let (a, b) = (h.open().await, h.open().await);
    let held = a.quota_lock("ten_a").await.unwrap();
    // Another tenant's lock is free; this tenant's waits (given up after 300 ms).
    drop(b.quota_lock("ten_b").await.unwrap());
    assert!(
        tokio::time::timeout(Duration::from_millis(300), b.quota_lock("ten_a"))
            .await
            .is_err(),
        "a second replica took a held lock"
    );
    let waiting = {
        let b = Arc::clone(&b);
        tokio::spawn(async move { b.quota_lock("ten_a").await.map(drop) })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished(), "it waits while A holds the lock");
    drop(held);
    tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("released when A lets go")
        .unwrap()
        .unwrap();
    // Nothing stays held: the given-up wait and the finished one left the lock free.
    let again = tokio::time::timeout(Duration::from_secs(10), a.quota_lock("ten_a"))
        .await
        .expect("free again");
    drop(again.unwrap());
}
