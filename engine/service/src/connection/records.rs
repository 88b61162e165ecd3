//! A connection's records in the unified model: read from the sandbox datasets or the
//! live upstream through the connection's current mapping, and written to the upstream
//! through its reverse.
//!
//! A live read asks the [`Monitor`] first (a connection that needs reauthorization,
//! whose breaker is open or that is rate limited fails fast, without calling the
//! upstream), then calls the [`Upstream`] and reports how it went. Cursors are opaque
//! to clients: base64url of the entity, the `updated_since` filter and where the next
//! page starts (an offset in the sandbox, the upstream's own next link or `$skip`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::health::{Admission, Status};
use super::monitor::{Monitor, Refusal};
use super::pipelines::{ChangeError, Pipeline, Pipelines};
use super::secrets::{SECRET_KEY_ENV, Sealer, SecretError};
use super::upstream::{Credentials, Next, RecordKey, Upstream, UpstreamConfig, UpstreamError};
use crate::egress::Outbound;
use crate::store::{Connection, Mode, Store, StoreError, now};
use crosswalk_core::mapping::{Batch, FieldError, MapOptions, RecordError};
use crosswalk_core::model::Entity;
use crosswalk_systems::SystemId;
use crosswalk_systems::sandbox::{self, Scenario};

/// Records per page when the client does not say.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// The most records a client may ask for in one page.
pub const MAX_PAGE_SIZE: u32 = 500;

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    /// The cursor does not decode or belongs to another listing.
    #[error("the cursor is not valid: {0}")]
    BadCursor(String),
    /// A query parameter is out of range.
    #[error("{0}")]
    BadQuery(String),
    /// No record with this id.
    #[error("{entity} `{id}` does not exist on connection `{connection}`")]
    NotFound {
        /// The connection.
        connection: String,
        /// The entity.
        entity: Entity,
        /// The record id.
        id: String,
    },
    /// The upstream refused the credentials; reads wait for reauthorization.
    #[error(
        "connection `{0}` needs reauthorization: the upstream refused its credentials; POST new ones to /v1/connections/{0}/reauthorize"
    )]
    NeedsReauth(String),
    /// The breaker is open.
    #[error(
        "connection `{connection}`'s circuit breaker is open after repeated upstream failures; the upstream is not called for another {} ms", wait.as_millis()
    )]
    CircuitOpen {
        /// The connection.
        connection: String,
        /// How long until a probe.
        wait: Duration,
    },
    /// The upstream asked to wait.
    #[error("the upstream of connection `{connection}` is rate limiting; retry after {} ms", wait.as_millis())]
    RateLimited {
        /// The connection.
        connection: String,
        /// How long to wait.
        wait: Duration,
    },
    /// The upstream call failed.
    #[error("upstream {entity} read failed: {error}")]
    Upstream {
        /// The entity read.
        entity: Entity,
        /// The failure.
        error: UpstreamError,
    },
    /// The upstream refused a write as invalid.
    #[error("the upstream refused the {entity} write: {error}")]
    Rejected {
        /// The entity written.
        entity: Entity,
        /// The refusal.
        error: UpstreamError,
    },
    /// A live connection without the secret key to open its credentials.
    #[error(
        "live connections need the server to have {SECRET_KEY_ENV} (32 bytes, hex or base64) to seal and open credentials"
    )]
    NoSecretKey,
    /// The stored credentials do not open.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// A live connection without upstream settings or credentials.
    #[error("connection `{0}` is live but has no upstream settings or credentials")]
    NotConfigured(String),
    /// Work handed to the blocking pool did not finish: it panicked, or the runtime is
    /// shutting down.
    #[error("the {what} task failed: {message}")]
    Task {
        /// What the task was doing.
        what: &'static str,
        /// Why it did not finish.
        message: String,
    },
    /// The one record asked for could not be mapped.
    #[error("{entity} `{id}` could not be mapped: {error}")]
    Record {
        /// The entity.
        entity: Entity,
        /// The record id.
        id: String,
        /// Why.
        error: Box<RecordError>,
    },
    /// The mapping could not be loaded.
    #[error(transparent)]
    Pipeline(#[from] ChangeError),
    /// The tenant's share of the plugin pool stayed busy, or the mapping's plugins
    /// need more than a share.
    #[error(transparent)]
    Plugins(#[from] crosswalk_plugin_host::PoolError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a listing asks for.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Where to continue, from a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Records per page (sandbox; live: the upstream's page size).
    pub page_size: Option<u32>,
    /// Only records changed at or after this instant.
    pub updated_since: Option<chrono::DateTime<chrono::Utc>>,
    /// Add each source record as `remote_data`.
    pub remote_data: bool,
}

/// A page of unified records.
#[derive(Debug)]
pub struct Listed {
    /// The records: unified, or why each failed.
    pub records: Vec<Result<Value, RecordError>>,
    /// The cursor of the next page, if there is one.
    pub next_cursor: Option<String>,
    /// For a sandbox connection: the scenario of each record, in the same order.
    pub scenarios: Option<Vec<Scenario>>,
    /// The mapping version used.
    pub version: u64,
}

/// One unified record.
#[derive(Debug)]
pub struct Fetched {
    /// The record.
    pub record: Value,
    /// For a sandbox connection: its scenario.
    pub scenario: Option<Scenario>,
    /// The mapping version used.
    pub version: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    /// The entity.
    e: Entity,
    /// The `updated_since` filter, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<String>,
    /// Sandbox: the offset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    o: Option<u64>,
    /// Live: where the upstream continues.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    n: Option<Next>,
    /// Live: the page size asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<u32>,
}

impl ListQuery {
    /// Checks what needs neither the store nor the upstream: the page size and the
    /// cursor. [`Records::list`] checks it first; a handler may check it before work
    /// of its own, so that a malformed query is a 400 whatever else the request asks.
    pub fn check(&self, entity: Entity) -> Result<(), RecordsError> {
        let page_size = self.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
            return Err(RecordsError::BadQuery(format!(
                "page_size is {page_size}; it must be between 1 and {MAX_PAGE_SIZE}"
            )));
        }
        if let Some(text) = &self.cursor {
            Cursor::decode(text, entity)?.since()?;
        }
        Ok(())
    }
}

impl Cursor {
    fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(self).expect("cursors serialize"))
    }

    fn decode(text: &str, entity: Entity) -> Result<Cursor, RecordsError> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| RecordsError::BadCursor("it is not one this API gave".into()))?;
        let cursor: Cursor = serde_json::from_slice(&bytes)
            .map_err(|_| RecordsError::BadCursor("it is not one this API gave".into()))?;
        if cursor.e != entity {
            return Err(RecordsError::BadCursor(format!(
                "it continues a listing of {}, not of {entity}",
                cursor.e
            )));
        }
        Ok(cursor)
    }

    fn since(&self) -> Result<Option<chrono::DateTime<chrono::Utc>>, RecordsError> {
        self.s
            .as_deref()
            .map(|s| {
                chrono::DateTime::parse_from_rfc3339(s)
                    .map(|d| d.with_timezone(&chrono::Utc))
                    .map_err(|_| RecordsError::BadCursor("its filter does not parse".into()))
            })
            .transpose()
    }
}

/// Reads and writes connections' records.
pub struct Records {
    store: Arc<dyn Store>,
    pipelines: Arc<Pipelines>,
    monitor: Arc<Monitor>,
    sealer: Option<Sealer>,
    /// The HTTP client every upstream calls through, under the outbound address policy.
    client: Outbound,
    /// Clients by connection, with the token of the credentials they were built on.
    upstreams: Mutex<HashMap<String, (String, Arc<Upstream>)>>,
}

impl std::fmt::Debug for Records {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records")
            .field("sealer", &self.sealer.is_some())
            .finish_non_exhaustive()
    }
}

impl Records {
    /// Records over the store, the pipelines and the monitor; `sealer` opens live
    /// connections' credentials; upstreams are called through `client` (see
    /// [`super::upstream::client`]).
    pub fn new(
        store: Arc<dyn Store>,
        pipelines: Arc<Pipelines>,
        monitor: Arc<Monitor>,
        sealer: Option<Sealer>,
        client: Outbound,
    ) -> Records {
        Records {
            store,
            pipelines,
            monitor,
            sealer,
            client,
            upstreams: Mutex::new(HashMap::new()),
        }
    }

    /// The monitor.
    pub fn monitor(&self) -> &Arc<Monitor> {
        &self.monitor
    }

    /// The sealer, when the server has a secret key.
    pub fn sealer(&self) -> Option<&Sealer> {
        self.sealer.as_ref()
    }

    /// One page of a connection's records of an entity.
    pub async fn list(
        &self,
        c: &Connection,
        entity: Entity,
        query: ListQuery,
        request_id: Option<&str>,
    ) -> Result<Listed, RecordsError> {
        query.check(entity)?;
        let page_size = query.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
        let cursor = query
            .cursor
            .as_deref()
            .map(|t| Cursor::decode(t, entity))
            .transpose()?;
        let since = match &cursor {
            Some(cursor) => cursor.since()?,
            None => query.updated_since,
        };
        let options = MapOptions {
            strict: false,
            remote_data: query.remote_data,
        };
        let pipeline = self.pipelines.current_async(c, entity).await?;
        match c.mode {
            Mode::Sandbox => {
                let offset = cursor.as_ref().and_then(|c| c.o).unwrap_or(0) as usize;
                let size = page_size as usize;
                let samples = sandbox::records(c.system, entity);
                // Without a filter only the page is mapped; a filter reads the mapped
                // `updated_at`, so then every record is.
                let candidates: Vec<usize> = match since {
                    None => (offset..samples.len().min(offset + size)).collect(),
                    Some(_) => (0..samples.len()).collect(),
                };
                let sources: Vec<Value> = candidates
                    .iter()
                    .map(|i| samples[*i].record.clone())
                    .collect();
                let batch = self.map(c, &pipeline, sources, options).await?;
                let mut kept: Vec<(usize, Result<Value, RecordError>, Vec<FieldError>)> =
                    candidates
                        .into_iter()
                        .zip(batch.records)
                        .zip(batch.field_errors)
                        .map(|((i, r), e)| (i, r, e))
                        .filter(|(_, r, _)| changed_since(r, since.as_ref()))
                        .collect();
                let more = match since {
                    None => samples.len() > offset + size,
                    Some(_) => {
                        let more = kept.len() > offset + size;
                        kept = kept.into_iter().skip(offset).take(size).collect();
                        more
                    }
                };
                let ids: Vec<Option<String>> = kept
                    .iter()
                    .map(|(i, _, _)| native_key(c.system, entity, &samples[*i].record))
                    .collect();
                let scenarios = kept
                    .iter()
                    .map(|(i, _, _)| samples[*i].scenario.clone())
                    .collect();
                let (records, field_errors) = kept.into_iter().map(|(_, r, e)| (r, e)).unzip();
                let page = Batch {
                    records,
                    field_errors,
                    log: batch.log,
                    plugin_calls: batch.plugin_calls,
                };
                self.monitor.succeeded(c, entity, None);
                self.monitor.mapped(c, entity, &page, &ids, request_id);
                let next_cursor = more.then(|| {
                    Cursor {
                        e: entity,
                        s: since.map(|s| s.to_rfc3339()),
                        o: Some((offset + size) as u64),
                        n: None,
                        p: None,
                    }
                    .encode()
                });
                Ok(Listed {
                    records: page.records,
                    next_cursor,
                    scenarios: Some(scenarios),
                    version: pipeline.version,
                })
            }
            Mode::Live => {
                let upstream = self.upstream(c).await?;
                let next = cursor.as_ref().and_then(|c| c.n.clone());
                let size = cursor.as_ref().and_then(|c| c.p).or(query.page_size);
                let admission = self.admit(c)?;
                let page = match upstream
                    .list(entity, next.as_ref(), since.as_ref(), size)
                    .await
                {
                    Ok(page) => page,
                    Err(error) => {
                        self.monitor
                            .failed(c, Some(entity), &error, Some(admission), request_id);
                        return Err(RecordsError::Upstream { entity, error });
                    }
                };
                self.monitor.succeeded(c, entity, Some(admission));
                let ids: Vec<Option<String>> = page
                    .records
                    .iter()
                    .map(|r| native_key(c.system, entity, r))
                    .collect();
                let batch = self.map(c, &pipeline, page.records, options).await?;
                self.monitor.mapped(c, entity, &batch, &ids, request_id);
                let next_cursor = page.next.map(|n| {
                    Cursor {
                        e: entity,
                        s: since.map(|s| s.to_rfc3339()),
                        o: None,
                        n: Some(n),
                        p: size,
                    }
                    .encode()
                });
                Ok(Listed {
                    records: batch.records,
                    next_cursor,
                    scenarios: None,
                    version: pipeline.version,
                })
            }
        }
    }

    /// One record by its unified id: the source system's key, or what the
    /// connection's mapping makes of it (`NASHUA/2211` under `{$.siteid}/{value}`).
    pub async fn get(
        &self,
        c: &Connection,
        entity: Entity,
        id: &str,
        remote_data: bool,
        request_id: Option<&str>,
    ) -> Result<Fetched, RecordsError> {
        self.get_by(c, entity, id, None, remote_data, request_id)
            .await
    }

    /// The upstream key of the record whose unified id is `id`: the id written back
    /// through the connection's current mapping, so that an overridden id finds its
    /// record. When the mapping does not write `id` back, the id is the key as it is;
    /// when it does and `id` cannot be written (it has not the template's form, say),
    /// no record has it.
    async fn record_key(
        &self,
        c: &Connection,
        upstream: &Upstream,
        pipeline: &Arc<Pipeline>,
        entity: Entity,
        id: &str,
    ) -> Result<RecordKey, RecordsError> {
        if pipeline.write().id_sources().is_empty() {
            return upstream
                .key_of(entity, id, None)
                .map_err(|error| RecordsError::Upstream { entity, error });
        }
        let unified = serde_json::json!({ "id": id });
        let native = if pipeline.write().calls_plugins() {
            let grant = self
                .pipelines
                .host()
                .pool()
                .grant(&c.tenant_id, pipeline.write().plugin_demand())
                .await?;
            let _cancel = grant.cancel_on_drop();
            let pipeline = Arc::clone(pipeline);
            tokio::task::spawn_blocking(move || {
                pipeline.write().write_granted(&unified, &grant).native
            })
            .await
            .map_err(|e| RecordsError::Task {
                what: "write",
                message: e.to_string(),
            })?
        } else {
            pipeline.write().to_native(&unified)
        };
        let native = native.map_err(|_| RecordsError::NotFound {
            connection: c.id.clone(),
            entity,
            id: id.to_owned(),
        })?;
        upstream
            .key_of(entity, id, Some(&native))
            .map_err(|error| RecordsError::Upstream { entity, error })
    }

    /// [`Records::get`], with the upstream key when the caller has it already (the
    /// key of a record just created).
    async fn get_by(
        &self,
        c: &Connection,
        entity: Entity,
        id: &str,
        key: Option<RecordKey>,
        remote_data: bool,
        request_id: Option<&str>,
    ) -> Result<Fetched, RecordsError> {
        let options = MapOptions {
            strict: false,
            remote_data,
        };
        let pipeline = self.pipelines.current_async(c, entity).await?;
        let not_found = || RecordsError::NotFound {
            connection: c.id.clone(),
            entity,
            id: id.to_owned(),
        };
        // One mapped record in a batch, with the plugin calls that made it.
        let (batch, scenario) = match c.mode {
            Mode::Sandbox => {
                let samples = sandbox::records(c.system, entity);
                let sources: Vec<Value> = samples.iter().map(|s| s.record.clone()).collect();
                // The id is the unified one, so that overrides of `id` apply; the
                // record found is answered as this mapping gave it.
                let mut batch = self.map(c, &pipeline, sources, options).await?;
                let found = batch.records.iter().position(
                    |r| matches!(r, Ok(record) if record.get("id").and_then(Value::as_str) == Some(id)),
                );
                let i = found.ok_or_else(not_found)?;
                self.monitor.succeeded(c, entity, None);
                batch.records = vec![batch.records.swap_remove(i)];
                (batch, Some(samples[i].scenario.clone()))
            }
            Mode::Live => {
                let upstream = self.upstream(c).await?;
                let by_unified_id = key.is_none();
                let key = match key {
                    Some(key) => key,
                    None => self.record_key(c, &upstream, &pipeline, entity, id).await?,
                };
                let admission = self.admit(c)?;
                let source = match upstream.get(entity, &key).await {
                    Ok(Some(record)) => {
                        self.monitor.succeeded(c, entity, Some(admission));
                        record
                    }
                    Ok(None) => {
                        self.monitor.succeeded(c, entity, Some(admission));
                        return Err(not_found());
                    }
                    Err(error) => {
                        self.monitor
                            .failed(c, Some(entity), &error, Some(admission), request_id);
                        return Err(RecordsError::Upstream { entity, error });
                    }
                };
                let batch = self.map(c, &pipeline, vec![source], options).await?;
                // The record found must be the one asked for: its id, as this mapping
                // gives it, is the id (a key that also names another record, an SAP
                // business partner whose supplier number is another, is not it).
                if by_unified_id
                    && let Some(Ok(record)) = batch.records.first()
                    && record.get("id").and_then(Value::as_str) != Some(id)
                {
                    return Err(not_found());
                }
                (batch, None)
            }
        };
        self.monitor
            .mapped(c, entity, &batch, &[Some(id.to_owned())], request_id);
        let record = batch
            .records
            .into_iter()
            .next()
            .expect("one result per record")
            .map_err(|error| RecordsError::Record {
                entity,
                id: id.to_owned(),
                error: Box::new(error),
            })?;
        Ok(Fetched {
            record,
            scenario,
            version: pipeline.version,
        })
    }

    /// Writes a record's native payload to a live connection's upstream (a create
    /// without `record_id`, an update of the given fields with it) through the same
    /// admission, breaker and status handling as reads, then reads it back mapped.
    pub async fn write(
        &self,
        c: &Connection,
        entity: Entity,
        record_id: Option<&str>,
        native: &Value,
        request_id: Option<&str>,
    ) -> Result<Fetched, RecordsError> {
        let upstream = self.upstream(c).await?;
        let pipeline = self.pipelines.current_async(c, entity).await?;
        let updated = match record_id {
            Some(id) => Some(self.record_key(c, &upstream, &pipeline, entity, id).await?),
            None => None,
        };
        let key_field = upstream
            .key_field(entity)
            .map_err(|error| RecordsError::Upstream { entity, error })?;
        let admission = self.admit(c)?;
        let written = match updated {
            // The created record is read back by the key the system gave it, and the
            // other fields of the id as the payload has them.
            None => upstream.create(entity, native).await.map(|key| {
                let also = pipeline
                    .write()
                    .id_sources()
                    .into_iter()
                    .filter(|field| field != key_field)
                    .filter_map(|field| {
                        let value = native
                            .get(&field)
                            .filter(|v| v.is_string() || v.is_number())?;
                        Some((field, value.clone()))
                    })
                    .collect();
                Some(RecordKey { key, also })
            }),
            Some(key) => upstream
                .update(entity, &key, native)
                .await
                .map(|found| found.then_some(key)),
        };
        let key = match written {
            Ok(Some(key)) => {
                self.monitor.succeeded(c, entity, Some(admission));
                key
            }
            Ok(None) => {
                self.monitor.succeeded(c, entity, Some(admission));
                return Err(RecordsError::NotFound {
                    connection: c.id.clone(),
                    entity,
                    id: record_id.unwrap_or_default().to_owned(),
                });
            }
            Err(error) if error.kind == super::health::ErrorKind::Rejected => {
                self.monitor
                    .rejected(c, entity, &error, admission, request_id);
                return Err(RecordsError::Rejected { entity, error });
            }
            Err(error) => {
                self.monitor
                    .failed(c, Some(entity), &error, Some(admission), request_id);
                return Err(RecordsError::Upstream { entity, error });
            }
        };
        let id = record_id.unwrap_or(&key.key).to_owned();
        self.get_by(c, entity, &id, Some(key), false, request_id)
            .await
    }

    /// Checks a new live connection's credentials against its upstream with the
    /// smallest read the system allows, before anything is stored.
    pub async fn verify(
        &self,
        system: SystemId,
        config: &UpstreamConfig,
        credentials: &Credentials,
    ) -> Result<(), RecordsError> {
        let upstream = Upstream::new(system, config, credentials.clone(), self.client.clone())
            .map_err(RecordsError::BadQuery)?;
        let entity = upstream.dialect().first_entity();
        upstream
            .verify()
            .await
            .map_err(|error| RecordsError::Upstream { entity, error })
    }

    /// Verifies new credentials against the upstream and, when they work, stores them
    /// sealed with a new connection token, restores the connection and emits
    /// `connection.reauthorized`. Nothing changes when they do not work.
    pub async fn reauthorize(
        &self,
        c: &Connection,
        credentials: Credentials,
    ) -> Result<Connection, RecordsError> {
        let sealer = self.sealer.as_ref().ok_or(RecordsError::NoSecretKey)?;
        let config = c
            .upstream
            .as_ref()
            .ok_or_else(|| RecordsError::NotConfigured(c.id.clone()))?;
        credentials.validate().map_err(RecordsError::BadQuery)?;
        let upstream = Upstream::new(c.system, config, credentials.clone(), self.client.clone())
            .map_err(RecordsError::BadQuery)?;
        let entity = upstream.dialect().first_entity();
        upstream
            .verify()
            .await
            .map_err(|error| RecordsError::Upstream { entity, error })?;
        let plain = serde_json::to_vec(&credentials).expect("credentials serialize");
        let sealed = sealer.seal(&c.id, &plain);
        // A needs-reauth mark still queued must not land on the restored record.
        self.monitor.settled().await;
        let mut updated = self
            .store
            .connection(&c.tenant_id, &c.id)
            .await?
            .unwrap_or_else(|| c.clone());
        updated.token = crate::ids::random_id("ctk");
        updated.needs_reauth_since = None;
        self.store
            .update_connection(&updated, Some(&sealed))
            .await?;
        self.upstreams.lock().expect("not poisoned").insert(
            updated.id.clone(),
            (updated.token.clone(), Arc::new(upstream)),
        );
        tracing::info!(connection = %c.id, at = %now(), "connection reauthorized");
        self.monitor.reauthorized(&updated);
        Ok(updated)
    }

    /// Forgets a deleted connection.
    pub fn forget(&self, connection_id: &str) {
        self.upstreams
            .lock()
            .expect("not poisoned")
            .remove(connection_id);
        self.monitor.forget(connection_id);
    }

    fn admit(&self, c: &Connection) -> Result<Admission, RecordsError> {
        self.monitor
            .admit(c)
            .map_err(|Refusal { status, wait }| match status {
                Status::NeedsReauth => RecordsError::NeedsReauth(c.id.clone()),
                Status::RateLimited => RecordsError::RateLimited {
                    connection: c.id.clone(),
                    wait,
                },
                _ => RecordsError::CircuitOpen {
                    connection: c.id.clone(),
                    wait,
                },
            })
    }

    /// The connection's client, built on its current credentials. It is built under
    /// the lock, so that concurrent first reads share one client (and one limit on
    /// concurrent calls).
    async fn upstream(&self, c: &Connection) -> Result<Arc<Upstream>, RecordsError> {
        let held = |upstreams: &HashMap<String, (String, Arc<Upstream>)>| {
            upstreams
                .get(&c.id)
                .filter(|(token, _)| *token == c.token)
                .map(|(_, upstream)| Arc::clone(upstream))
        };
        if let Some(upstream) = held(&self.upstreams.lock().expect("not poisoned")) {
            return Ok(upstream);
        }
        let sealer = self.sealer.as_ref().ok_or(RecordsError::NoSecretKey)?;
        let config = c
            .upstream
            .as_ref()
            .ok_or_else(|| RecordsError::NotConfigured(c.id.clone()))?;
        let sealed = self
            .store
            .credentials(&c.id)
            .await?
            .ok_or_else(|| RecordsError::NotConfigured(c.id.clone()))?;
        let credentials: Credentials = serde_json::from_slice(&sealer.open(&c.id, &sealed)?)
            .map_err(|e| StoreError::Corrupt {
                what: "credentials",
                key: c.id.clone(),
                message: e.to_string(),
            })?;
        let upstream = Arc::new(
            Upstream::new(c.system, config, credentials, self.client.clone())
                .map_err(|_| RecordsError::NotConfigured(c.id.clone()))?,
        );
        let mut upstreams = self.upstreams.lock().expect("not poisoned");
        // Concurrent first reads share the client the first of them made (and its
        // limit on concurrent calls).
        if let Some(first) = held(&upstreams) {
            return Ok(first);
        }
        upstreams.insert(c.id.clone(), (c.token.clone(), Arc::clone(&upstream)));
        Ok(upstream)
    }
}

impl Records {
    /// Maps records: on the async worker when the mapping calls no plugin, else on
    /// the blocking pool (a plugin may run up to its time limit), with instances
    /// leased from the tenant's share first, and cancelled if this future is dropped.
    async fn map(
        &self,
        c: &Connection,
        pipeline: &Arc<Pipeline>,
        sources: Vec<Value>,
        options: MapOptions,
    ) -> Result<Batch, RecordsError> {
        if !pipeline.plan.calls_plugins() {
            return Ok(pipeline.plan.map_batch(&sources, options));
        }
        let grant = self
            .pipelines
            .host()
            .pool()
            .grant(&c.tenant_id, pipeline.plan.plugin_demand())
            .await?;
        let _cancel = grant.cancel_on_drop();
        let pipeline = Arc::clone(pipeline);
        tokio::task::spawn_blocking(move || {
            pipeline.plan.map_batch_granted(&sources, options, &grant)
        })
        .await
        .map_err(|e| RecordsError::Task {
            what: "mapping",
            message: e.to_string(),
        })
    }
}

/// Whether a mapped record changed at or after `since` (records that failed to map
/// are kept, so that their errors are seen).
fn changed_since(
    record: &Result<Value, RecordError>,
    since: Option<&chrono::DateTime<chrono::Utc>>,
) -> bool {
    let (Some(since), Ok(record)) = (since, record) else {
        return true;
    };
    record
        .get("updated_at")
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .is_none_or(|t| t.with_timezone(&chrono::Utc) >= *since)
}

/// The source system's key of a native record.
fn native_key(system: SystemId, entity: Entity, record: &Value) -> Option<String> {
    let key = system.system().dialect.key(entity)?;
    match record.get(key)? {
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}
