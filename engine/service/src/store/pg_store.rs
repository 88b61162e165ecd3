//! The shared store: PostgreSQL, for a fleet of replicas on one database.
//!
//! The client is `tokio-postgres` behind a `deadpool-postgres` pool: an async client
//! with nothing between the SQL written here and the server (no query macros that need
//! a database at build time, no ORM), whose connection also carries `LISTEN/NOTIFY`.
//! The pool bounds the connections a replica holds and how long a request waits for
//! one; a server that cannot be reached is [`StoreError::Unavailable`] (503 with
//! `Retry-After`), and the pool replaces closed connections, so a replica recovers
//! when the server is back.
//!
//! Records are stored as the same JSON documents the sled store keeps, beside the
//! columns they are found by. The schema is versioned ([`MIGRATIONS`]): each migration
//! is applied once, in order, in a transaction, at start, under an advisory lock so
//! that replicas starting together apply it once; a database whose schema is newer
//! than this binary is refused.
//!
//! Mapping versions are numbered in the database: the append reads the last version
//! `FOR UPDATE`, so two replicas changing one mapping at once get 2 and 3, or one of
//! them [`StoreError::VersionMoved`], never two 2s.
//!
//! Every committed change that other replicas must act on (a mapping version, a
//! connection's record or its deletion) is announced with `NOTIFY` on
//! [`CHANNEL`], in the transaction that makes it, so that it is heard only once
//! committed. A listener of each store, on a connection of its own, turns what it
//! hears into [`Change`]s ([`Store::changes`]); when that connection is lost it
//! reconnects and announces [`Change::Resync`], since what was said meanwhile is lost.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use futures_util::StreamExt;
use tokio::sync::broadcast;
use tokio_postgres::AsyncMessage;

use super::{
    ApiKey, Change, Connection, Dump, MappingVersion, Mode, PluginBinding, PluginRecord, Role,
    Store, StoreError, Tenant, now,
};
use crate::connection::{ErrorEntry, PluginLogEntry, UpstreamConfig};
use crate::webhook::{Delivery, DeliveryAttempt, Subscription};
use crosswalk_core::mapping::OverrideSpec;
use crosswalk_core::model::Entity;
use crosswalk_systems::SystemId;

/// The schema, one migration per version (version `i + 1` is `MIGRATIONS[i]`).
/// Never edit a released migration: add the next one.
pub const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_initial.sql"),
    include_str!("migrations/0002_plugin_log.sql"),
];

/// The advisory lock held while migrations are applied (any fixed number: "cw" + 1).
const MIGRATION_LOCK: i64 = 0x6377_0001;

/// The `LISTEN/NOTIFY` channel changes are announced on. A payload is one [`Change`]
/// as JSON: ids and an entity name, far below PostgreSQL's 8000 bytes.
pub const CHANNEL: &str = "crosswalk_changes";

/// The first key of the advisory locks that order a tenant's counted creations (the
/// second is the tenant id's hash).
const QUOTA_LOCK_SPACE: i32 = 0x6377;

/// A tenant's quota lock: a session advisory lock on a connection taken out of the
/// pool for as long as it is held. Released with `pg_advisory_unlock` when dropped;
/// should that not be possible (the runtime is going away), the connection is closed
/// instead, which releases it just as well, and never goes back to the pool holding it.
struct HeldQuotaLock {
    client: Option<deadpool_postgres::Object>,
    tenant_key: i32,
}

impl Drop for HeldQuotaLock {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        let key = self.tenant_key;
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    let unlocked = client
                        .query_one(
                            "SELECT pg_advisory_unlock($1, $2)",
                            &[&QUOTA_LOCK_SPACE, &key],
                        )
                        .await
                        .map(|row| row.get::<_, bool>(0));
                    if !matches!(unlocked, Ok(true)) {
                        // Not unlocked: the connection goes, and its locks with it.
                        drop(deadpool_postgres::Object::take(client));
                    }
                });
            }
            Err(_) => drop(deadpool_postgres::Object::take(client)),
        }
    }
}

/// A tenant id's key in the quota locks' space.
fn tenant_key(tenant_id: &str) -> i32 {
    let hash = Sha256::digest(tenant_id.as_bytes());
    i32::from_be_bytes([hash[0], hash[1], hash[2], hash[3]])
}

/// Changes held for a receiver that is behind; past that it resyncs.
const CHANGES_BUFFERED: usize = 4096;

/// How a [`PgStore`] opens.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Connections the pool holds at most (default 16).
    pub max_connections: usize,
    /// How long a call waits for a free connection, or for a new one to connect,
    /// before it is [`StoreError::Unavailable`] (default 5 s).
    pub wait: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            max_connections: 16,
            wait: Duration::from_secs(5),
        }
    }
}

/// Why a PostgreSQL store did not open.
#[derive(Debug, thiserror::Error)]
pub enum PgStoreError {
    /// The address is not a PostgreSQL connection string or URL.
    #[error("`{url}` is not a PostgreSQL address (postgres://user@host:port/database): {message}")]
    BadUrl {
        /// The address, its password hidden.
        url: String,
        /// The parser's message.
        message: String,
    },
    /// The database was made by a newer Crosswalk.
    #[error(
        "the database's schema is at version {found}, newer than this binary's {supported}: run a Crosswalk at least as new as the one that migrated it"
    )]
    SchemaTooNew {
        /// The database's schema version.
        found: i64,
        /// The newest this binary knows.
        supported: i64,
    },
    /// A migration failed; it was rolled back.
    #[error("migration {version} failed: {message}")]
    Migration {
        /// The migration's version.
        version: i64,
        /// The server's message.
        message: String,
    },
    /// The server could not be reached or refused the store.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The PostgreSQL store.
pub struct PgStore {
    pool: Pool,
    changes: broadcast::Sender<Change>,
    /// Stopped when the store is dropped.
    listener: tokio::task::JoinHandle<()>,
    /// When each connection's plugin log is trimmed next (this replica's appends).
    plugin_log_trims: super::TrimSchedule,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("status", &self.pool.status())
            .finish()
    }
}

/// What the server said, or else the client's error with its cause ("error
/// connecting to server: Connection refused").
fn described(e: &tokio_postgres::Error) -> String {
    match (e.as_db_error(), std::error::Error::source(e)) {
        (Some(db), _) => format!("{}: {}", db.code().code(), db.message()),
        (None, Some(cause)) => format!("{e}: {cause}"),
        (None, None) => e.to_string(),
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        let message = described(&e);
        match e.code() {
            // Connection exceptions, a server shutting down or starting, too many
            // connections: the same request may succeed shortly.
            Some(code)
                if code.code().starts_with("08")
                    || *code == SqlState::ADMIN_SHUTDOWN
                    || *code == SqlState::CRASH_SHUTDOWN
                    || *code == SqlState::CANNOT_CONNECT_NOW
                    || *code == SqlState::TOO_MANY_CONNECTIONS =>
            {
                StoreError::Unavailable(message)
            }
            Some(_) => StoreError::Database(message),
            // No answer from the server: a closed connection, a refused or broken socket.
            None => StoreError::Unavailable(message),
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        // Whatever the server said, a connection that could not be made or kept
        // (refused, shutting down, not accepting connections) may be made shortly.
        let message = match &e {
            deadpool_postgres::PoolError::Backend(e) => described(e),
            e => e.to_string(),
        };
        StoreError::Unavailable(format!("no database connection: {message}"))
    }
}

/// The address with its password, if any, replaced by `***` (for messages and logs).
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`, or a
    /// key=value connection string) and brings the schema up to date.
    pub async fn open(url: &str, options: PgOptions) -> Result<PgStore, PgStoreError> {
        let config: tokio_postgres::Config =
            url.parse()
                .map_err(|e: tokio_postgres::Error| PgStoreError::BadUrl {
                    url: redact(url),
                    message: e.to_string(),
                })?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.max_connections.max(1))
            .wait_timeout(Some(options.wait))
            .create_timeout(Some(options.wait))
            .recycle_timeout(Some(options.wait))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| PgStoreError::BadUrl {
                url: redact(url),
                message: e.to_string(),
            })?;
        let (changes, _) = broadcast::channel(CHANGES_BUFFERED);
        let listener = tokio::spawn(listen(config, changes.clone()));
        let store = PgStore {
            pool,
            changes,
            listener,
            plugin_log_trims: super::TrimSchedule::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// The schema version this binary brings a database to.
    pub fn schema_version() -> i64 {
        MIGRATIONS.len() as i64
    }

    /// Applies the migrations the database lacks, under the migration lock.
    async fn migrate(&self) -> Result<(), PgStoreError> {
        let mut client = self.pool.get().await.map_err(StoreError::from)?;
        client
            .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(StoreError::from)?;
        let applied = self.apply_migrations(&mut client).await;
        let unlocked = client
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await;
        applied?;
        unlocked.map_err(StoreError::from)?;
        Ok(())
    }

    async fn apply_migrations(
        &self,
        client: &mut deadpool_postgres::Object,
    ) -> Result<(), PgStoreError> {
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS crosswalk_schema (
                    version bigint PRIMARY KEY,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )",
            )
            .await
            .map_err(StoreError::from)?;
        let found: i64 = client
            .query_one(
                "SELECT coalesce(max(version), 0) FROM crosswalk_schema",
                &[],
            )
            .await
            .map_err(StoreError::from)?
            .get(0);
        let supported = Self::schema_version();
        if found > supported {
            return Err(PgStoreError::SchemaTooNew { found, supported });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            let version = i as i64 + 1;
            let failed = |e: tokio_postgres::Error| PgStoreError::Migration {
                version,
                message: StoreError::from(e).to_string(),
            };
            let tx = client.transaction().await.map_err(failed)?;
            tx.batch_execute(sql).await.map_err(failed)?;
            tx.execute(
                "INSERT INTO crosswalk_schema (version) VALUES ($1)",
                &[&version],
            )
            .await
            .map_err(failed)?;
            tx.commit().await.map_err(failed)?;
            tracing::info!(version, "database schema migrated");
        }
        Ok(())
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(self.pool.get().await?)
    }

    /// A document by a query that selects one `doc` column.
    async fn one<T: DeserializeOwned>(
        &self,
        what: &'static str,
        key: &str,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Option<T>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await?;
        client
            .query_opt(&statement, params)
            .await?
            .map(|row| decode(what, key, row.get(0)))
            .transpose()
    }

    /// Documents by a query that selects one `doc` column.
    async fn many<T: DeserializeOwned>(
        &self,
        what: &'static str,
        key: &str,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<T>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await?;
        client
            .query(&statement, params)
            .await?
            .into_iter()
            .map(|row| decode(what, key, row.get(0)))
            .collect()
    }

    /// Runs one statement; answers the rows it touched.
    async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await?;
        Ok(client.execute(&statement, params).await?)
    }

    /// Appends to a bounded log and drops its entries past the newest `keep`.
    async fn append_bounded(
        &self,
        table: &'static str,
        owner_column: &'static str,
        owner: &str,
        doc: String,
        keep: usize,
    ) -> Result<(), StoreError> {
        self.append_all_bounded(table, owner_column, owner, vec![doc], Some(keep))
            .await
    }

    /// Appends `docs` in order to a bounded log (see [`Self::append_bounded`]), in
    /// one statement; trims it to the newest `trim` when given.
    async fn append_all_bounded(
        &self,
        table: &'static str,
        owner_column: &'static str,
        owner: &str,
        docs: Vec<String>,
        trim: Option<usize>,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            &format!(
                "INSERT INTO {table} ({owner_column}, doc)
                 SELECT $1, doc FROM unnest($2::text[]) WITH ORDINALITY AS given(doc, n)
                 ORDER BY n"
            ),
            &[&owner, &docs],
        )
        .await?;
        if let Some(keep) = trim {
            let keep = i64::try_from(keep).unwrap_or(i64::MAX);
            tx.execute(
                &format!(
                    "DELETE FROM {table} WHERE {owner_column} = $1 AND seq < (
                        SELECT coalesce(min(seq), 0) FROM (
                            SELECT seq FROM {table} WHERE {owner_column} = $1
                            ORDER BY seq DESC LIMIT $2) AS kept)"
                ),
                &[&owner, &keep],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Announces `change` when the transaction commits.
async fn notify(
    tx: &deadpool_postgres::Transaction<'_>,
    change: &Change,
) -> Result<(), StoreError> {
    let payload = serde_json::to_string(change).expect("changes serialize");
    tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])
        .await?;
    Ok(())
}

/// Listens on [`CHANNEL`] until the store is dropped, on a connection of its own:
/// each notification becomes a [`Change`]; each (re)connection announces
/// [`Change::Resync`], for what was committed while nobody listened.
async fn listen(config: tokio_postgres::Config, changes: broadcast::Sender<Change>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let (heard, mut hearing) = tokio::sync::mpsc::unbounded_channel();
                // The connection yields notifications as it is driven.
                let driver = tokio::spawn(async move {
                    let mut messages =
                        futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(message) = messages.next().await {
                        match message {
                            Ok(AsyncMessage::Notification(n)) => {
                                let _ = heard.send(n.payload().to_owned());
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "the change listener's connection failed");
                                break;
                            }
                        }
                    }
                });
                match client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
                    Ok(()) => {
                        backoff = Duration::from_millis(50);
                        let _ = changes.send(Change::Resync);
                        while let Some(payload) = hearing.recv().await {
                            match serde_json::from_str::<Change>(&payload) {
                                Ok(change) => {
                                    let _ = changes.send(change);
                                }
                                Err(e) => {
                                    tracing::warn!(%payload, error = %e, "a change announcement that does not decode");
                                }
                            }
                        }
                        tracing::warn!("the change listener lost its connection: reconnecting");
                    }
                    Err(e) => tracing::warn!(error = %e, "the change listener could not LISTEN"),
                }
                driver.abort();
            }
            Err(e) => tracing::warn!(error = %described(&e), "the change listener cannot connect"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

fn secret_hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

fn encode<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("records serialize")
}

fn decode<T: DeserializeOwned>(what: &'static str, key: &str, doc: &str) -> Result<T, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::Corrupt {
        what,
        key: key.to_owned(),
        message: e.to_string(),
    })
}

/// A version number as the database keeps it.
fn as_i64(version: u64) -> i64 {
    i64::try_from(version).unwrap_or(i64::MAX)
}

#[async_trait::async_trait]
impl Store for PgStore {
    async fn create_tenant(&self, name: &str) -> Result<Tenant, StoreError> {
        let tenant = Tenant::new(name);
        self.execute(
            "INSERT INTO tenants (id, doc) VALUES ($1, $2)",
            &[&tenant.id, &encode(&tenant)],
        )
        .await?;
        Ok(tenant)
    }

    async fn tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        self.one(
            "tenant",
            id,
            "SELECT doc FROM tenants WHERE id = $1",
            &[&id],
        )
        .await
    }

    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        self.many("tenant", "*", "SELECT doc FROM tenants ORDER BY id", &[])
            .await
    }

    async fn import_key(
        &self,
        tenant_id: &str,
        role: Role,
        secret: &str,
    ) -> Result<ApiKey, StoreError> {
        let key = ApiKey::new(tenant_id, role);
        // The same secret imported again (a replica restarted with the same
        // CROSSWALK_ADMIN_KEY) replaces the key, as it does in sled.
        self.execute(
            "INSERT INTO api_keys (secret_sha256, tenant_id, doc) VALUES ($1, $2, $3)
             ON CONFLICT (secret_sha256) DO UPDATE SET tenant_id = $2, doc = $3",
            &[&secret_hash(secret), &tenant_id, &encode(&key)],
        )
        .await?;
        Ok(key)
    }

    async fn key_by_secret(&self, secret: &str) -> Result<Option<ApiKey>, StoreError> {
        self.one(
            "key",
            "(secret)",
            "SELECT doc FROM api_keys WHERE secret_sha256 = $1",
            &[&secret_hash(secret)],
        )
        .await
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
        self.execute(
            "INSERT INTO connections (id, tenant_id, doc) VALUES ($1, $2, $3)",
            &[&connection.id, &tenant_id, &encode(&connection)],
        )
        .await?;
        Ok(connection)
    }

    async fn update_connection(
        &self,
        connection: &Connection,
        credentials: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        // One statement: new credentials never stand beside the old token.
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let updated = tx
            .execute(
                "UPDATE connections SET doc = $3, credentials = coalesce($4, credentials)
                 WHERE tenant_id = $1 AND id = $2",
                &[
                    &connection.tenant_id,
                    &connection.id,
                    &encode(connection),
                    &credentials,
                ],
            )
            .await?;
        if updated > 0 {
            notify(
                &tx,
                &Change::Connection {
                    tenant: connection.tenant_id.clone(),
                    connection: connection.id.clone(),
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn credentials(&self, connection_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached("SELECT credentials FROM connections WHERE id = $1")
            .await?;
        Ok(client
            .query_opt(&statement, &[&connection_id])
            .await?
            .and_then(|row| row.get(0)))
    }

    async fn connection(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<Connection>, StoreError> {
        self.one(
            "connection",
            id,
            "SELECT doc FROM connections WHERE tenant_id = $1 AND id = $2",
            &[&tenant_id, &id],
        )
        .await
    }

    async fn connections(&self, tenant_id: &str) -> Result<Vec<Connection>, StoreError> {
        self.many(
            "connection",
            tenant_id,
            "SELECT doc FROM connections WHERE tenant_id = $1 ORDER BY id",
            &[&tenant_id],
        )
        .await
    }

    async fn all_connections(&self) -> Result<Vec<Connection>, StoreError> {
        self.many(
            "connection",
            "*",
            "SELECT doc FROM connections ORDER BY tenant_id, id",
            &[],
        )
        .await
    }

    async fn delete_connection(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError> {
        self.plugin_log_trims.forget(id);
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let removed = tx
            .execute(
                "DELETE FROM connections WHERE tenant_id = $1 AND id = $2",
                &[&tenant_id, &id],
            )
            .await?
            > 0;
        if removed {
            for table in [
                "mapping_versions",
                "mapping_heads",
                "error_log",
                "plugin_log",
            ] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE connection_id = $1"),
                    &[&id],
                )
                .await?;
            }
            let change = Change::Connection {
                tenant: tenant_id.to_owned(),
                connection: id.to_owned(),
            };
            notify(&tx, &change).await?;
        }
        tx.commit().await?;
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
        let entity_name = entity.as_str();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // The head row exists from here on; locking it orders every append of this
        // mapping, whichever replica makes it.
        tx.execute(
            "INSERT INTO mapping_heads (connection_id, entity, last) VALUES ($1, $2, 0)
             ON CONFLICT DO NOTHING",
            &[&connection_id, &entity_name],
        )
        .await?;
        let last: i64 = tx
            .query_one(
                "SELECT last FROM mapping_heads WHERE connection_id = $1 AND entity = $2
                 FOR UPDATE",
                &[&connection_id, &entity_name],
            )
            .await?
            .get(0);
        let last = u64::try_from(last).unwrap_or(0);
        if last != base {
            tx.rollback().await?;
            return Err(StoreError::VersionMoved { base, last });
        }
        let next = as_i64(version.version);
        tx.execute(
            "UPDATE mapping_heads SET last = $3 WHERE connection_id = $1 AND entity = $2",
            &[&connection_id, &entity_name, &next],
        )
        .await?;
        tx.execute(
            "INSERT INTO mapping_versions (connection_id, entity, version, doc)
             VALUES ($1, $2, $3, $4)",
            &[&connection_id, &entity_name, &next, &encode(&version)],
        )
        .await?;
        let tenant: Option<String> = tx
            .query_opt(
                "SELECT tenant_id FROM connections WHERE id = $1",
                &[&connection_id],
            )
            .await?
            .map(|row| row.get(0));
        let change = Change::Mapping {
            tenant: tenant.unwrap_or_default(),
            connection: connection_id.to_owned(),
            entity,
            version: version.version,
        };
        notify(&tx, &change).await?;
        tx.commit().await?;
        Ok(version)
    }

    async fn mapping_history(
        &self,
        connection_id: &str,
        entity: Entity,
    ) -> Result<Vec<MappingVersion>, StoreError> {
        self.many(
            "mapping version",
            connection_id,
            "SELECT doc FROM mapping_versions WHERE connection_id = $1 AND entity = $2
             ORDER BY version",
            &[&connection_id, &entity.as_str()],
        )
        .await
    }

    async fn prune_mapping_history(
        &self,
        connection_id: &str,
        entity: Entity,
        keep: usize,
        keep_bytes: u64,
    ) -> Result<usize, StoreError> {
        let entity_name = entity.as_str();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let rows = tx
            .query(
                "SELECT version, octet_length(doc) FROM mapping_versions
                 WHERE connection_id = $1 AND entity = $2 ORDER BY version DESC",
                &[&connection_id, &entity_name],
            )
            .await?;
        let (mut kept, mut bytes) = (0usize, 0u64);
        let mut old: Vec<i64> = Vec::new();
        // Newest first: keep while within both bounds, and always the newest.
        for row in rows {
            let (version, size): (i64, i32) = (row.get(0), row.get(1));
            bytes += u64::try_from(size).unwrap_or(0);
            if kept == 0 || (kept < keep && bytes <= keep_bytes) {
                kept += 1;
            } else {
                old.push(version);
            }
        }
        if !old.is_empty() {
            tx.execute(
                "DELETE FROM mapping_versions
                 WHERE connection_id = $1 AND entity = $2 AND version = ANY($3)",
                &[&connection_id, &entity_name, &old],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(old.len())
    }

    async fn put_plugin(&self, record: &PluginRecord, bytes: &[u8]) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO plugin_bytes (sha256, bytes) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&record.sha256, &bytes],
        )
        .await?;
        tx.execute(
            "INSERT INTO plugins (tenant_id, sha256, doc) VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id, sha256) DO UPDATE SET doc = $3",
            &[&record.tenant_id, &record.sha256, &encode(record)],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn plugin(
        &self,
        tenant_id: &str,
        sha256: &str,
    ) -> Result<Option<(PluginRecord, Vec<u8>)>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT p.doc, b.bytes FROM plugins p LEFT JOIN plugin_bytes b USING (sha256)
                 WHERE p.tenant_id = $1 AND p.sha256 = $2",
            )
            .await?;
        let Some(row) = client.query_opt(&statement, &[&tenant_id, &sha256]).await? else {
            return Ok(None);
        };
        let record: PluginRecord = decode("plugin", sha256, row.get(0))?;
        let bytes: Option<Vec<u8>> = row.get(1);
        let bytes = bytes.ok_or_else(|| StoreError::Corrupt {
            what: "plugin",
            key: sha256.to_owned(),
            message: "its bytes are missing".into(),
        })?;
        Ok(Some((record, bytes)))
    }

    async fn plugins(&self, tenant_id: &str) -> Result<Vec<PluginRecord>, StoreError> {
        self.many(
            "plugin",
            tenant_id,
            "SELECT doc FROM plugins WHERE tenant_id = $1 ORDER BY sha256",
            &[&tenant_id],
        )
        .await
    }

    async fn delete_plugin(&self, tenant_id: &str, sha256: &str) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let removed = tx
            .execute(
                "DELETE FROM plugins WHERE tenant_id = $1 AND sha256 = $2",
                &[&tenant_id, &sha256],
            )
            .await?
            > 0;
        if removed {
            // The bytes stay while another tenant has uploaded the same component.
            tx.execute(
                "DELETE FROM plugin_bytes WHERE sha256 = $1
                 AND NOT EXISTS (SELECT 1 FROM plugins WHERE sha256 = $1)",
                &[&sha256],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(removed)
    }

    async fn log_error(
        &self,
        connection_id: &str,
        entry: &ErrorEntry,
        keep: usize,
    ) -> Result<(), StoreError> {
        self.append_bounded(
            "error_log",
            "connection_id",
            connection_id,
            encode(entry),
            keep,
        )
        .await
    }

    async fn errors(&self, connection_id: &str) -> Result<Vec<ErrorEntry>, StoreError> {
        self.many(
            "error log entry",
            connection_id,
            "SELECT doc FROM error_log WHERE connection_id = $1 ORDER BY seq DESC",
            &[&connection_id],
        )
        .await
    }

    async fn log_plugin(
        &self,
        connection_id: &str,
        lines: &[PluginLogEntry],
        keep: usize,
    ) -> Result<(), StoreError> {
        let trim = self
            .plugin_log_trims
            .due(connection_id, lines.len(), keep)
            .then_some(keep);
        self.append_all_bounded(
            "plugin_log",
            "connection_id",
            connection_id,
            lines.iter().map(encode).collect(),
            trim,
        )
        .await
    }

    async fn plugin_log(&self, connection_id: &str) -> Result<Vec<PluginLogEntry>, StoreError> {
        self.many(
            "plugin log line",
            connection_id,
            &format!(
                "SELECT doc FROM plugin_log WHERE connection_id = $1 ORDER BY seq DESC LIMIT {}",
                crate::connection::PLUGIN_LOG_KEEP
            ),
            &[&connection_id],
        )
        .await
    }

    async fn put_subscription(&self, subscription: &Subscription) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO subscriptions (id, tenant_id, doc) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET tenant_id = $2, doc = $3",
            &[
                &subscription.id,
                &subscription.tenant_id,
                &encode(subscription),
            ],
        )
        .await?;
        Ok(())
    }

    async fn subscription(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<Subscription>, StoreError> {
        self.one(
            "subscription",
            id,
            "SELECT doc FROM subscriptions WHERE tenant_id = $1 AND id = $2",
            &[&tenant_id, &id],
        )
        .await
    }

    async fn subscriptions(&self, tenant_id: &str) -> Result<Vec<Subscription>, StoreError> {
        self.many(
            "subscription",
            tenant_id,
            "SELECT doc FROM subscriptions WHERE tenant_id = $1 ORDER BY id",
            &[&tenant_id],
        )
        .await
    }

    async fn delete_subscription(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let removed = tx
            .execute(
                "DELETE FROM subscriptions WHERE tenant_id = $1 AND id = $2",
                &[&tenant_id, &id],
            )
            .await?
            > 0;
        if removed {
            tx.execute(
                "DELETE FROM delivery_log WHERE subscription_id = $1",
                &[&id],
            )
            .await?;
            tx.execute(
                "DELETE FROM outbox_claims WHERE subscription_id = $1",
                &[&id],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(removed)
    }

    async fn put_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO outbox (id, subscription_id, due_ms, doc) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET subscription_id = $2, due_ms = $3, doc = $4",
            &[
                &delivery.id,
                &delivery.subscription_id,
                &as_i64(delivery.due_ms),
                &encode(delivery),
            ],
        )
        .await?;
        notify(&tx, &Change::Outbox).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn remove_delivery(&self, id: &str) -> Result<(), StoreError> {
        self.execute("DELETE FROM outbox WHERE id = $1", &[&id])
            .await?;
        Ok(())
    }

    async fn deliveries(&self) -> Result<Vec<Delivery>, StoreError> {
        self.many("delivery", "*", "SELECT doc FROM outbox ORDER BY id", &[])
            .await
    }

    async fn log_delivery(
        &self,
        subscription_id: &str,
        attempt: &DeliveryAttempt,
        keep: usize,
    ) -> Result<(), StoreError> {
        self.append_bounded(
            "delivery_log",
            "subscription_id",
            subscription_id,
            encode(attempt),
            keep,
        )
        .await
    }

    async fn delivery_log(
        &self,
        subscription_id: &str,
    ) -> Result<Vec<DeliveryAttempt>, StoreError> {
        self.many(
            "delivery attempt",
            subscription_id,
            "SELECT doc FROM delivery_log WHERE subscription_id = $1 ORDER BY seq DESC",
            &[&subscription_id],
        )
        .await
    }

    async fn mapping_version(
        &self,
        connection_id: &str,
        entity: Entity,
    ) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT last FROM mapping_heads WHERE connection_id = $1 AND entity = $2",
            )
            .await?;
        let last: Option<i64> = client
            .query_opt(&statement, &[&connection_id, &entity.as_str()])
            .await?
            .map(|row| row.get(0));
        Ok(last.and_then(|v| u64::try_from(v).ok()).unwrap_or(0))
    }

    async fn mark_needs_reauth(
        &self,
        tenant_id: &str,
        connection_id: &str,
        token: &str,
        at: &str,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // The row is locked: of replicas marking it at once, the first marks it and the
        // others find it marked.
        let Some(row) = tx
            .query_opt(
                "SELECT doc FROM connections WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
                &[&tenant_id, &connection_id],
            )
            .await?
        else {
            return Ok(false);
        };
        let mut c: Connection = decode("connection", connection_id, row.get(0))?;
        if c.needs_reauth_since.is_some() || c.token != token {
            return Ok(false);
        }
        c.needs_reauth_since = Some(at.to_owned());
        tx.execute(
            "UPDATE connections SET doc = $3 WHERE tenant_id = $1 AND id = $2",
            &[&tenant_id, &connection_id, &encode(&c)],
        )
        .await?;
        let change = Change::Connection {
            tenant: tenant_id.to_owned(),
            connection: connection_id.to_owned(),
        };
        notify(&tx, &change).await?;
        tx.commit().await?;
        Ok(true)
    }

    fn changes(&self) -> Option<broadcast::Receiver<Change>> {
        Some(self.changes.subscribe())
    }

    async fn claim_outbox(
        &self,
        owner: &str,
        now_ms: u64,
        until_ms: u64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let (now, until) = (as_i64(now_ms), as_i64(until_ms));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // The conflicting claim row is locked and the condition read again on its
        // newest version: of replicas claiming at once, one gets each subscription.
        let claimed: Vec<String> = tx
            .query(
                "INSERT INTO outbox_claims AS c (subscription_id, claimed_by, claimed_until_ms)
                 SELECT subscription_id, $2, $3 FROM (
                     SELECT DISTINCT o.subscription_id FROM outbox o
                     WHERE o.due_ms <= $1 AND NOT EXISTS (
                         SELECT 1 FROM outbox_claims h
                         WHERE h.subscription_id = o.subscription_id AND h.claimed_until_ms > $1)
                     LIMIT $4) AS due
                 ON CONFLICT (subscription_id) DO UPDATE
                     SET claimed_by = $2, claimed_until_ms = $3
                     WHERE c.claimed_until_ms <= $1
                 RETURNING subscription_id",
                &[&now, &owner, &until, &limit],
            )
            .await?
            .into_iter()
            .map(|row| row.get(0))
            .collect();
        let deliveries = if claimed.is_empty() {
            Vec::new()
        } else {
            tx.query(
                "SELECT doc FROM outbox WHERE subscription_id = ANY($1) AND due_ms <= $2
                 ORDER BY id",
                &[&claimed, &now],
            )
            .await?
            .into_iter()
            .map(|row| decode("delivery", "outbox", row.get(0)))
            .collect::<Result<Vec<Delivery>, _>>()?
        };
        tx.commit().await?;
        Ok(deliveries)
    }

    async fn renew_claim(
        &self,
        owner: &str,
        subscription_id: &str,
        until_ms: u64,
    ) -> Result<bool, StoreError> {
        let renewed = self
            .execute(
                "UPDATE outbox_claims SET claimed_until_ms = $3
                 WHERE subscription_id = $1 AND claimed_by = $2",
                &[&subscription_id, &owner, &as_i64(until_ms)],
            )
            .await?;
        Ok(renewed > 0)
    }

    async fn release_claim(&self, owner: &str, subscription_id: &str) -> Result<(), StoreError> {
        self.execute(
            "DELETE FROM outbox_claims WHERE subscription_id = $1 AND claimed_by = $2",
            &[&subscription_id, &owner],
        )
        .await?;
        Ok(())
    }

    async fn outbox_next(&self, now_ms: u64) -> Result<Option<u64>, StoreError> {
        let client = self.client().await?;
        let next: Option<i64> = client
            .query_one(
                "SELECT min(CASE WHEN h.claimed_until_ms > $1 THEN h.claimed_until_ms
                                 ELSE o.due_ms END)
                 FROM outbox o LEFT JOIN outbox_claims h USING (subscription_id)",
                &[&as_i64(now_ms)],
            )
            .await?
            .get(0);
        Ok(next.and_then(|n| u64::try_from(n).ok()))
    }

    async fn quota_lock(&self, tenant_id: &str) -> Result<super::QuotaLock, StoreError> {
        let client = self.client().await?;
        let key = tenant_key(tenant_id);
        // Held until the guard is made: a request dropped while it waits for the lock
        // closes the connection (and cancels the wait) rather than pooling it.
        let mut held = HeldQuotaLock {
            client: Some(client),
            tenant_key: key,
        };
        let locking = held
            .client
            .as_ref()
            .expect("just put there")
            .execute(
                "SELECT pg_advisory_lock($1, $2)",
                &[&QUOTA_LOCK_SPACE, &key],
            )
            .await;
        if let Err(e) = locking {
            if let Some(client) = held.client.take() {
                drop(deadpool_postgres::Object::take(client));
            }
            return Err(e.into());
        }
        Ok(super::QuotaLock::holding(held))
    }

    async fn dump(&self) -> Result<Dump, StoreError> {
        let mut client = self.client().await?;
        // One snapshot of everything.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        fn docs<T: DeserializeOwned>(
            rows: Vec<tokio_postgres::Row>,
            what: &'static str,
        ) -> Result<Vec<T>, StoreError> {
            rows.iter()
                .map(|row| decode(what, "dump", row.get(0)))
                .collect()
        }
        let tenants = docs(
            tx.query("SELECT doc FROM tenants ORDER BY id", &[]).await?,
            "tenant",
        )?;
        let mut keys = Vec::new();
        for row in tx
            .query(
                "SELECT secret_sha256, doc FROM api_keys ORDER BY secret_sha256",
                &[],
            )
            .await?
        {
            keys.push((row.get::<_, Vec<u8>>(0), decode("key", "dump", row.get(1))?));
        }
        let mut connections = Vec::new();
        for row in tx
            .query(
                "SELECT doc, credentials FROM connections ORDER BY tenant_id, id",
                &[],
            )
            .await?
        {
            connections.push((decode("connection", "dump", row.get(0))?, row.get(1)));
        }
        let mappings = docs(
            tx.query(
                "SELECT doc FROM mapping_versions ORDER BY connection_id, entity, version",
                &[],
            )
            .await?,
            "mapping version",
        )?;
        let mut mapping_heads = Vec::new();
        for row in tx
            .query(
                "SELECT connection_id, entity, last FROM mapping_heads ORDER BY 1, 2",
                &[],
            )
            .await?
        {
            let entity: String = row.get(1);
            let entity: Entity = entity.parse().map_err(|e| StoreError::Corrupt {
                what: "mapping head",
                key: entity.clone(),
                message: format!("{e}"),
            })?;
            let last: i64 = row.get(2);
            mapping_heads.push((row.get(0), entity, u64::try_from(last).unwrap_or(0)));
        }
        let plugins = docs(
            tx.query("SELECT doc FROM plugins ORDER BY tenant_id, sha256", &[])
                .await?,
            "plugin",
        )?;
        let plugin_bytes = tx
            .query(
                "SELECT sha256, bytes FROM plugin_bytes ORDER BY sha256",
                &[],
            )
            .await?
            .into_iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        /// `(owner, doc)` rows in order, grouped by owner.
        fn grouped<T: DeserializeOwned>(
            what: &'static str,
            rows: Vec<tokio_postgres::Row>,
        ) -> Result<Vec<(String, Vec<T>)>, StoreError> {
            let mut groups: Vec<(String, Vec<T>)> = Vec::new();
            for row in rows {
                let owner: String = row.get(0);
                let entry = decode(what, &owner, row.get(1))?;
                match groups.last_mut() {
                    Some((o, es)) if *o == owner => es.push(entry),
                    _ => groups.push((owner, vec![entry])),
                }
            }
            Ok(groups)
        }
        let errors = grouped(
            "error log entry",
            tx.query(
                "SELECT connection_id, doc FROM error_log ORDER BY connection_id, seq",
                &[],
            )
            .await?,
        )?;
        let plugin_logs = grouped(
            "plugin log line",
            tx.query(
                "SELECT connection_id, doc FROM plugin_log ORDER BY connection_id, seq",
                &[],
            )
            .await?,
        )?;
        let subscriptions = docs(
            tx.query("SELECT doc FROM subscriptions ORDER BY tenant_id, id", &[])
                .await?,
            "subscription",
        )?;
        let outbox = docs(
            tx.query("SELECT doc FROM outbox ORDER BY id", &[]).await?,
            "delivery",
        )?;
        let delivery_logs = grouped(
            "delivery attempt",
            tx.query(
                "SELECT subscription_id, doc FROM delivery_log ORDER BY subscription_id, seq",
                &[],
            )
            .await?,
        )?;
        let meta = tx
            .query("SELECT key, value FROM store_meta ORDER BY key", &[])
            .await?
            .into_iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        tx.commit().await?;
        Ok(Dump {
            tenants,
            keys,
            connections,
            mappings,
            mapping_heads,
            plugins,
            plugin_bytes,
            errors,
            plugin_logs,
            subscriptions,
            outbox,
            delivery_logs,
            meta,
        })
    }

    async fn load(&self, dump: &Dump) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        // Checked and written in one transaction, under a lock that keeps a replica
        // from setting the store up meanwhile.
        let tx = client.transaction().await?;
        tx.execute("LOCK TABLE tenants, store_meta IN EXCLUSIVE MODE", &[])
            .await?;
        let held: i64 = tx
            .query_one(
                "SELECT (SELECT count(*) FROM tenants) + (SELECT count(*) FROM api_keys)
                      + (SELECT count(*) FROM connections) + (SELECT count(*) FROM mapping_versions)
                      + (SELECT count(*) FROM plugins) + (SELECT count(*) FROM subscriptions)
                      + (SELECT count(*) FROM outbox) + (SELECT count(*) FROM store_meta)",
                &[],
            )
            .await?
            .get(0);
        if held > 0 {
            drop(tx);
            return self.dump().await?.check_empty();
        }
        for t in &dump.tenants {
            tx.execute(
                "INSERT INTO tenants (id, doc) VALUES ($1, $2)",
                &[&t.id, &encode(t)],
            )
            .await?;
        }
        for (hash, k) in &dump.keys {
            tx.execute(
                "INSERT INTO api_keys (secret_sha256, tenant_id, doc) VALUES ($1, $2, $3)",
                &[hash, &k.tenant_id, &encode(k)],
            )
            .await?;
        }
        for (c, sealed) in &dump.connections {
            tx.execute(
                "INSERT INTO connections (id, tenant_id, doc, credentials) VALUES ($1, $2, $3, $4)",
                &[&c.id, &c.tenant_id, &encode(c), sealed],
            )
            .await?;
        }
        for v in &dump.mappings {
            tx.execute(
                "INSERT INTO mapping_versions (connection_id, entity, version, doc)
                 VALUES ($1, $2, $3, $4)",
                &[
                    &v.connection_id,
                    &v.entity.as_str(),
                    &as_i64(v.version),
                    &encode(v),
                ],
            )
            .await?;
        }
        for (connection, entity, last) in &dump.mapping_heads {
            tx.execute(
                "INSERT INTO mapping_heads (connection_id, entity, last) VALUES ($1, $2, $3)",
                &[connection, &entity.as_str(), &as_i64(*last)],
            )
            .await?;
        }
        for p in &dump.plugins {
            tx.execute(
                "INSERT INTO plugins (tenant_id, sha256, doc) VALUES ($1, $2, $3)",
                &[&p.tenant_id, &p.sha256, &encode(p)],
            )
            .await?;
        }
        for (sha256, bytes) in &dump.plugin_bytes {
            tx.execute(
                "INSERT INTO plugin_bytes (sha256, bytes) VALUES ($1, $2)",
                &[sha256, bytes],
            )
            .await?;
        }
        for (owner, entries) in &dump.errors {
            for e in entries {
                tx.execute(
                    "INSERT INTO error_log (connection_id, doc) VALUES ($1, $2)",
                    &[owner, &encode(e)],
                )
                .await?;
            }
        }
        for (owner, entries) in &dump.plugin_logs {
            for e in entries {
                tx.execute(
                    "INSERT INTO plugin_log (connection_id, doc) VALUES ($1, $2)",
                    &[owner, &encode(e)],
                )
                .await?;
            }
        }
        for sub in &dump.subscriptions {
            tx.execute(
                "INSERT INTO subscriptions (id, tenant_id, doc) VALUES ($1, $2, $3)",
                &[&sub.id, &sub.tenant_id, &encode(sub)],
            )
            .await?;
        }
        for d in &dump.outbox {
            tx.execute(
                "INSERT INTO outbox (id, subscription_id, due_ms, doc) VALUES ($1, $2, $3, $4)",
                &[&d.id, &d.subscription_id, &as_i64(d.due_ms), &encode(d)],
            )
            .await?;
        }
        for (owner, entries) in &dump.delivery_logs {
            for e in entries {
                tx.execute(
                    "INSERT INTO delivery_log (subscription_id, doc) VALUES ($1, $2)",
                    &[owner, &encode(e)],
                )
                .await?;
            }
        }
        for (k, v) in &dump.meta {
            tx.execute(
                "INSERT INTO store_meta (key, value) VALUES ($1, $2)",
                &[k, v],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn claim_meta(&self, key: &str, value: &str) -> Result<String, StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO store_meta (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&key, &value],
            )
            .await?;
        Ok(client
            .query_one("SELECT value FROM store_meta WHERE key = $1", &[&key])
            .await?
            .get(0))
    }
}
