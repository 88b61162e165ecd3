//! The watch over every connection: its [`Health`], its error log, and the events
//! that its changes of state raise.
//!
//! Records report here what happened; the monitor keeps the counts and the breaker,
//! writes each error to the connection's bounded log in the store (with the request
//! id), and emits webhooks on transitions only: `connection.status_changed` when the
//! status differs from the one last reported, `connection.reauth_required` once when
//! the credentials are first refused (later refusals of the same incident emit
//! nothing), and `plugin.failing` once when a plugin starts failing on a connection,
//! until a call of it succeeds again.
//!
//! The monitor decides under its locks and writes nothing there: what it found goes,
//! in order, to one task of its own that writes it to the store ([`Monitor::settled`]
//! waits for what was found so far to be written). A request is never held up by
//! the error log, and a store across a network is never waited for on the path of a
//! request or under a lock.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use serde_json::{Value, json};

use super::health::{Admission, ErrorEntry, ErrorKind, Health, HealthReport, Status};
use super::plugin_log::{MAX_QUEUED_PLUGIN_LOG_LINES, PLUGIN_LOG_KEEP, PluginLogEntry};
use super::upstream::UpstreamError;
use crate::store::{Connection, Store, now};
use crate::webhook::{EventType, Webhooks};
use crosswalk_core::mapping::{Batch, RecordError, Unified};
use crosswalk_core::model::Entity;
use crosswalk_plugin_host::{CallOutcome, LogLevel};

/// Error log entries kept per connection.
pub const ERROR_LOG_KEEP: usize = 500;

/// Mapping errors logged per read at most (the rest are counted).
const MAPPING_ERRORS_PER_READ: usize = 10;

/// Error log entries waiting for the writer at most: past that (a store that cannot
/// keep up), new entries are dropped, counted and logged, while the connection's
/// health still counts them. Events and needs-reauth marks are never dropped.
pub const MAX_QUEUED_LOG_ENTRIES: usize = 10_000;

struct Tracked {
    health: Health,
    needs_reauth: bool,
}

/// Health, error logs and connection events.
pub struct Monitor {
    store: Arc<dyn Store>,
    webhooks: Arc<Webhooks>,
    tracked: Mutex<HashMap<String, Arc<Mutex<Tracked>>>>,
    failing_plugins: Mutex<HashSet<(String, String)>>,
    /// What is to be written, in the order it was found.
    writes: mpsc::UnboundedSender<Write>,
    /// Error log entries queued and not written yet (bounded by
    /// [`MAX_QUEUED_LOG_ENTRIES`]).
    queued_log_entries: Arc<AtomicUsize>,
    /// Error log entries dropped because the queue was full.
    dropped_log_entries: AtomicU64,
    /// The bound on queued entries ([`MAX_QUEUED_LOG_ENTRIES`] but in tests).
    max_queued_log_entries: usize,
    /// Plugin log lines queued and not written yet (bounded by
    /// [`MAX_QUEUED_PLUGIN_LOG_LINES`]).
    queued_plugin_lines: Arc<AtomicUsize>,
    /// Plugin log lines so far: queued, by level, and dropped.
    plugin_lines: PluginLogCounts,
    /// The writer's end, until the writer task starts (on the first write, on the
    /// runtime that makes it).
    writer: Mutex<Option<mpsc::UnboundedReceiver<Write>>>,
}

/// One write of the monitor's.
enum Write {
    /// An error log entry.
    Log {
        connection_id: String,
        entry: ErrorEntry,
    },
    /// Plugin log lines of one batch.
    PluginLog {
        connection_id: String,
        lines: Vec<PluginLogEntry>,
    },
    /// An event for the tenant's subscriptions.
    Emit {
        tenant_id: String,
        connection_id: String,
        event: EventType,
        data: Value,
    },
    /// The connection's needs-reauth mark, stored on its record unless it is there;
    /// `connection.reauth_required` with this data when this replica stored it.
    NeedsReauth {
        tenant_id: String,
        connection_id: String,
        token: String,
        event: Value,
    },
    /// Answered once every write sent before it is done.
    Settled(oneshot::Sender<()>),
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor").finish_non_exhaustive()
    }
}

/// What a mapped batch gave that the monitor records: see [`Monitor::mapped`].
#[derive(Debug)]
struct Review {
    entity: Entity,
    /// Error log entries.
    problems: Vec<ErrorEntry>,
    /// Plugins that started failing, with why.
    newly_failing: Vec<(String, String)>,
    mapping_errors: u64,
    plugin_errors: u64,
}

/// Why a read was not sent upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// The status that stops it.
    pub status: Status,
    /// How long until a call may go (for `Retry-After`).
    pub wait: Duration,
}

impl Monitor {
    /// A monitor that logs to `store` and emits through `webhooks`.
    pub fn new(store: Arc<dyn Store>, webhooks: Arc<Webhooks>) -> Monitor {
        let (writes, writer) = mpsc::unbounded_channel();
        Monitor {
            store,
            webhooks,
            tracked: Mutex::new(HashMap::new()),
            failing_plugins: Mutex::new(HashSet::new()),
            writes,
            writer: Mutex::new(Some(writer)),
            queued_log_entries: Arc::new(AtomicUsize::new(0)),
            dropped_log_entries: AtomicU64::new(0),
            max_queued_log_entries: MAX_QUEUED_LOG_ENTRIES,
            queued_plugin_lines: Arc::new(AtomicUsize::new(0)),
            plugin_lines: PluginLogCounts::default(),
        }
    }

    /// Waits until everything the monitor found before this call is in the store:
    /// the error log entries, the needs-reauth mark and the queued events.
    pub async fn settled(&self) {
        let (done, written) = oneshot::channel();
        self.send(Write::Settled(done));
        // A writer that stopped (the runtime shutting down) has nothing more to write.
        let _ = written.await;
    }

    /// Queues a write, starting the writer on the first one.
    fn send(&self, write: Write) {
        // Taken out of the lock first: the branch below may put it back.
        let unstarted = self.writer.lock().expect("not poisoned").take();
        if let Some(writer) = unstarted {
            let (store, webhooks) = (Arc::clone(&self.store), Arc::clone(&self.webhooks));
            let queued = Queued {
                log_entries: Arc::clone(&self.queued_log_entries),
                plugin_lines: Arc::clone(&self.queued_plugin_lines),
            };
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(write_all(store, webhooks, writer, queued));
                }
                Err(_) => {
                    // No runtime to write on: keep the queue for the first caller that
                    // has one.
                    *self.writer.lock().expect("not poisoned") = Some(writer);
                }
            }
        }
        if let Write::Log { connection_id, .. } = &write {
            let queued = self.queued_log_entries.fetch_add(1, Ordering::Relaxed);
            if queued >= self.max_queued_log_entries {
                self.queued_log_entries.fetch_sub(1, Ordering::Relaxed);
                let dropped = self.dropped_log_entries.fetch_add(1, Ordering::Relaxed) + 1;
                if dropped.is_power_of_two() {
                    tracing::warn!(connection = %connection_id, dropped, limit = self.max_queued_log_entries, "the error log's queue is full: entries are dropped");
                }
                return;
            }
        }
        if let Write::PluginLog {
            connection_id,
            lines,
        } = &write
        {
            let n = lines.len();
            let queued = self.queued_plugin_lines.fetch_add(n, Ordering::Relaxed);
            if queued + n > MAX_QUEUED_PLUGIN_LOG_LINES {
                self.queued_plugin_lines.fetch_sub(n, Ordering::Relaxed);
                let before = self
                    .plugin_lines
                    .dropped
                    .fetch_add(n as u64, Ordering::Relaxed);
                let after = before + n as u64;
                // Said at the first drop and whenever the count passes a power of two.
                if before == 0 || after.ilog2() > before.ilog2() {
                    tracing::warn!(connection = %connection_id, dropped = after, limit = MAX_QUEUED_PLUGIN_LOG_LINES, "the plugin log's queue is full: lines are dropped");
                }
                return;
            }
            for line in lines {
                self.plugin_lines.by_level[line.level as usize].fetch_add(1, Ordering::Relaxed);
            }
        }
        // The receiver lives as long as the writer task, which ends only with the
        // runtime: a write sent after that is lost with the process.
        let _ = self.writes.send(write);
    }

    /// How many plugin log lines were kept and dropped so far.
    pub fn plugin_log_counts(&self) -> PluginLogTotals {
        let get =
            |level: LogLevel| self.plugin_lines.by_level[level as usize].load(Ordering::Relaxed);
        PluginLogTotals {
            by_level: LogLevel::ALL.map(|level| (level, get(level))),
            dropped: self.plugin_lines.dropped.load(Ordering::Relaxed),
        }
    }

    /// Error log entries dropped so far because the writer could not keep up.
    pub fn dropped_log_entries(&self) -> u64 {
        self.dropped_log_entries.load(Ordering::Relaxed)
    }

    /// The webhooks it emits through.
    pub fn webhooks(&self) -> &Arc<Webhooks> {
        &self.webhooks
    }

    fn tracked(&self, c: &Connection) -> Arc<Mutex<Tracked>> {
        let mut map = self.tracked.lock().expect("not poisoned");
        Arc::clone(map.entry(c.id.clone()).or_insert_with(|| {
            let breaker = c
                .upstream
                .as_ref()
                .map(|u| u.breaker.clone())
                .unwrap_or_default();
            let needs_reauth = c.needs_reauth_since.is_some();
            let mut health = Health::new(breaker);
            health.reported = Some(if needs_reauth {
                Status::NeedsReauth
            } else {
                Status::Healthy
            });
            Arc::new(Mutex::new(Tracked {
                health,
                needs_reauth,
            }))
        }))
    }

    /// Whether an upstream call of `c` may go now.
    pub fn admit(&self, c: &Connection) -> Result<Admission, Refusal> {
        let tracked = self.tracked(c);
        let mut t = tracked.lock().expect("not poisoned");
        if t.needs_reauth {
            return Err(Refusal {
                status: Status::NeedsReauth,
                wait: Duration::ZERO,
            });
        }
        t.health
            .admit(Instant::now())
            .map_err(|(status, wait)| Refusal { status, wait })
    }

    /// A read of `entity` succeeded (upstream when `admission` is set).
    pub fn succeeded(&self, c: &Connection, entity: Entity, admission: Option<Admission>) {
        let tracked = self.tracked(c);
        let mut t = tracked.lock().expect("not poisoned");
        t.health.success(entity, admission, Instant::now());
        self.report_change(c, &mut t);
    }

    /// An upstream call failed: counted, logged, and for refused credentials the
    /// connection is marked `needs_reauth` (once per incident).
    pub fn failed(
        &self,
        c: &Connection,
        entity: Option<Entity>,
        error: &UpstreamError,
        admission: Option<Admission>,
        request_id: Option<&str>,
    ) {
        let tracked = self.tracked(c);
        let mut t = tracked.lock().expect("not poisoned");
        t.health.failure(
            entity,
            error.kind,
            &error.message,
            admission,
            error.retry_after,
            Instant::now(),
        );
        self.log(c, ErrorEntry::upstream(entity, error, request_id));
        if error.kind == ErrorKind::Auth && !t.needs_reauth {
            t.needs_reauth = true;
            // Marked in the store if no replica has marked it yet; the one that marks
            // it raises `connection.reauth_required`.
            self.send(Write::NeedsReauth {
                tenant_id: c.tenant_id.clone(),
                connection_id: c.id.clone(),
                token: c.token.clone(),
                event: json!({
                    "connection_id": c.id,
                    "system": c.system,
                    "token": c.token,
                    "entity": entity,
                    "reason": error.message,
                }),
            });
        }
        self.report_change(c, &mut t);
    }

    /// The upstream refused a write as invalid: logged, without touching the
    /// connection's health (the upstream answered as it should).
    pub fn rejected(
        &self,
        c: &Connection,
        entity: Entity,
        error: &UpstreamError,
        admission: Admission,
        request_id: Option<&str>,
    ) {
        {
            let tracked = self.tracked(c);
            let mut t = tracked.lock().expect("not poisoned");
            t.health.success(entity, Some(admission), Instant::now());
            self.report_change(c, &mut t);
        }
        self.log(c, ErrorEntry::upstream(Some(entity), error, request_id));
    }

    /// What mapping a page of records gave: failed records and field errors are
    /// logged as mapping errors, failed plugin calls as plugin errors; a plugin that
    /// starts failing raises `plugin.failing` once. Nothing is written here: the
    /// entries and events are queued for the monitor's writer.
    pub fn mapped<R: Unified>(
        &self,
        c: &Connection,
        entity: Entity,
        batch: &Batch<R>,
        ids: &[Option<String>],
        request_id: Option<&str>,
    ) {
        let review = self.review(c, entity, batch, ids, request_id);
        self.record(c, review);
        self.plugin_log(c, entity, &batch.log, request_id);
    }

    /// Queues what the plugins of a batch wrote for the connection's plugin log (the
    /// newest [`PLUGIN_LOG_KEEP`] lines at most: the log keeps no more).
    fn plugin_log(
        &self,
        c: &Connection,
        entity: Entity,
        log: &[crosswalk_plugin_host::LogLine],
        request_id: Option<&str>,
    ) {
        if log.is_empty() {
            return;
        }
        let at = now();
        let lines = log[log.len().saturating_sub(PLUGIN_LOG_KEEP)..]
            .iter()
            .map(|line| PluginLogEntry::new(line.clone(), &at, entity, request_id))
            .collect();
        self.send(Write::PluginLog {
            connection_id: c.id.clone(),
            lines,
        });
    }

    /// What mapping a page of records gave, to be recorded: the error log entries,
    /// the plugins that started failing, and the counts for the connection's health.
    fn review<R: Unified>(
        &self,
        c: &Connection,
        entity: Entity,
        batch: &Batch<R>,
        ids: &[Option<String>],
        request_id: Option<&str>,
    ) -> Review {
        let mut problems: Vec<ErrorEntry> = Vec::new();
        let entry =
            |kind, message: String, record_id: Option<String>, plugin: Option<String>| ErrorEntry {
                at: now(),
                entity: Some(entity),
                kind,
                message,
                upstream_status: None,
                record_id,
                plugin,
                request_id: request_id.map(str::to_owned),
            };
        let mut mapping_errors = 0u64;
        for (i, result) in batch.records.iter().enumerate() {
            // The field errors travel beside the record, as values.
            let fields = batch.field_errors.get(i).map_or(&[][..], Vec::as_slice);
            let (message, plugin) = match result {
                Err(e) => (Some(e.to_string()), failed_plugin(e)),
                Ok(_) if fields.is_empty() => (None, None),
                Ok(_) => {
                    let each: Vec<String> = fields
                        .iter()
                        .map(|e| format!("{}: {}", e.target, e.message))
                        .collect();
                    let message = format!("{} field(s) failed: {}", fields.len(), each.join("; "));
                    let plugin = fields.iter().find_map(|e| e.cause.plugin());
                    (Some(message), plugin.map(str::to_owned))
                }
            };
            let Some(message) = message else { continue };
            mapping_errors += 1;
            if problems.len() < MAPPING_ERRORS_PER_READ {
                // The caller's id for the record (its upstream key), else its unified id.
                let id = ids
                    .get(i)
                    .cloned()
                    .flatten()
                    .or_else(|| result.as_ref().ok()?.id());
                problems.push(entry(ErrorKind::Mapping, message, id, plugin));
            }
        }
        let mut plugin_errors = 0u64;
        let mut newly_failing = Vec::new();
        // Most transforms call no plugin: they take no lock here.
        if !batch.plugin_calls.is_empty() {
            let mut failing = self.failing_plugins.lock().expect("not poisoned");
            for (plugin, counts) in &batch.plugin_calls {
                // Calls stopped because the request was cancelled, or refused for
                // the host's capacity, are not the plugin's failures.
                let failed = counts.failures();
                let key = (c.id.clone(), plugin.clone());
                if failed > 0 {
                    plugin_errors += failed;
                    let kinds: Vec<String> = counts
                        .iter()
                        .filter(|(o, n)| o.is_failure() && *n > 0)
                        .map(|(o, n)| format!("{n} {}", o.as_str()))
                        .collect();
                    let message = format!(
                        "plugin `{plugin}`: {failed} of {} calls failed ({})",
                        counts.total(),
                        kinds.join(", ")
                    );
                    problems.push(entry(
                        ErrorKind::Plugin,
                        message.clone(),
                        None,
                        Some(plugin.clone()),
                    ));
                    if failing.insert(key) {
                        newly_failing.push((plugin.clone(), message));
                    }
                } else if counts.get(CallOutcome::Ok) > 0 {
                    failing.remove(&key);
                }
            }
        }
        Review {
            entity,
            problems,
            newly_failing,
            mapping_errors,
            plugin_errors,
        }
    }

    /// Records a [`Review`]: its entries are queued for the error log,
    /// `plugin.failing` is queued for the plugins that started failing, and the
    /// connection's health counts the problems.
    fn record(&self, c: &Connection, review: Review) {
        let Review {
            entity,
            problems,
            newly_failing,
            mapping_errors,
            plugin_errors,
        } = review;
        for p in problems {
            self.log(c, p);
        }
        for (plugin, message) in newly_failing {
            self.emit(
                c,
                EventType::PluginFailing,
                json!({"connection_id": c.id, "entity": entity, "plugin": plugin, "reason": message}),
            );
        }
        if mapping_errors + plugin_errors > 0 {
            let tracked = self.tracked(c);
            let mut t = tracked.lock().expect("not poisoned");
            if mapping_errors > 0 {
                t.health.record_problems(
                    entity,
                    ErrorKind::Mapping,
                    mapping_errors,
                    &format!("{mapping_errors} record(s) had mapping errors"),
                );
            }
            if plugin_errors > 0 {
                t.health.record_problems(
                    entity,
                    ErrorKind::Plugin,
                    plugin_errors,
                    &format!("{plugin_errors} plugin call(s) failed"),
                );
            }
            self.report_change(c, &mut t);
        }
    }

    /// The health of `c` now.
    pub fn report(&self, c: &Connection) -> HealthReport {
        let tracked = self.tracked(c);
        let t = tracked.lock().expect("not poisoned");
        t.health.report(t.needs_reauth, Instant::now())
    }

    /// New credentials were verified: the connection starts afresh, `healthy`.
    pub fn reauthorized(&self, c: &Connection) {
        let tracked = self.tracked(c);
        let mut t = tracked.lock().expect("not poisoned");
        t.needs_reauth = false;
        let breaker = c
            .upstream
            .as_ref()
            .map(|u| u.breaker.clone())
            .unwrap_or_default();
        t.health.reset(breaker);
        self.emit(
            c,
            EventType::Reauthorized,
            json!({"connection_id": c.id, "system": c.system, "token": c.token}),
        );
        self.report_change(c, &mut t);
    }

    /// Another replica changed the connection's stored record: its needs-reauth mark
    /// holds here too, and a reauthorization there restores the connection here. The
    /// replica that made the change raised its events; this one raises none.
    pub fn stored(&self, c: &Connection) {
        let Some(tracked) = self
            .tracked
            .lock()
            .expect("not poisoned")
            .get(&c.id)
            .cloned()
        else {
            return;
        };
        let mut t = tracked.lock().expect("not poisoned");
        let marked = c.needs_reauth_since.is_some();
        if t.needs_reauth && !marked {
            let breaker = c
                .upstream
                .as_ref()
                .map(|u| u.breaker.clone())
                .unwrap_or_default();
            t.health.reset(breaker);
        }
        t.needs_reauth = marked;
        let now = t.health.status(t.needs_reauth, Instant::now());
        t.health.reported = Some(now);
    }

    /// Forgets a deleted connection.
    pub fn forget(&self, connection_id: &str) {
        self.tracked
            .lock()
            .expect("not poisoned")
            .remove(connection_id);
        self.failing_plugins
            .lock()
            .expect("not poisoned")
            .retain(|(c, _)| c != connection_id);
    }

    /// Emits `connection.status_changed` when the status moved since last reported.
    fn report_change(&self, c: &Connection, t: &mut Tracked) {
        let status = t.health.status(t.needs_reauth, Instant::now());
        let before = t.health.reported.replace(status);
        if before.is_some_and(|b| b != status) {
            tracing::info!(connection = %c.id, from = before.map(Status::as_str), to = status.as_str(), "connection status changed");
            self.emit(
                c,
                EventType::StatusChanged,
                json!({
                    "connection_id": c.id,
                    "system": c.system,
                    "from": before,
                    "to": status,
                }),
            );
        }
    }

    fn log(&self, c: &Connection, entry: ErrorEntry) {
        tracing::warn!(connection = %c.id, kind = entry.kind.as_str(), entity = ?entry.entity, message = %entry.message, "connection error");
        self.send(Write::Log {
            connection_id: c.id.clone(),
            entry,
        });
    }

    fn emit(&self, c: &Connection, event: EventType, data: serde_json::Value) {
        self.send(Write::Emit {
            tenant_id: c.tenant_id.clone(),
            connection_id: c.id.clone(),
            event,
            data,
        });
    }
}

/// Plugin log lines queued so far, by level (indexed by `LogLevel as usize`), and
/// dropped because the queue was full.
#[derive(Default)]
struct PluginLogCounts {
    by_level: [AtomicU64; 4],
    dropped: AtomicU64,
}

/// Plugin log lines queued since the start, by level, and dropped: what
/// `crosswalk_plugin_log_lines_total` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginLogTotals {
    /// Lines queued for the store, by level.
    pub by_level: [(LogLevel, u64); 4],
    /// Lines dropped because the queue was full.
    pub dropped: u64,
}

impl Default for PluginLogTotals {
    fn default() -> Self {
        PluginLogTotals {
            by_level: LogLevel::ALL.map(|level| (level, 0)),
            dropped: 0,
        }
    }
}

/// What the writer has yet to write, shared with the monitor that bounds it.
struct Queued {
    log_entries: Arc<AtomicUsize>,
    plugin_lines: Arc<AtomicUsize>,
}

/// The monitor's writer: every write, in the order found, until the monitor is gone.
/// A write that fails is logged and the next one goes on.
async fn write_all(
    store: Arc<dyn Store>,
    webhooks: Arc<Webhooks>,
    mut writes: mpsc::UnboundedReceiver<Write>,
    queued: Queued,
) {
    while let Some(write) = writes.recv().await {
        match write {
            Write::PluginLog {
                connection_id,
                lines,
            } => {
                queued
                    .plugin_lines
                    .fetch_sub(lines.len(), Ordering::Relaxed);
                if let Err(e) = store
                    .log_plugin(&connection_id, &lines, PLUGIN_LOG_KEEP)
                    .await
                {
                    tracing::error!(connection = %connection_id, error = %e, "the plugin log was not written");
                }
            }
            Write::Log {
                connection_id,
                entry,
            } => {
                queued.log_entries.fetch_sub(1, Ordering::Relaxed);
                if let Err(e) = store
                    .log_error(&connection_id, &entry, ERROR_LOG_KEEP)
                    .await
                {
                    tracing::error!(connection = %connection_id, error = %e, "the error log was not written");
                }
            }
            Write::Emit {
                tenant_id,
                connection_id,
                event,
                data,
            } => {
                if let Err(e) = webhooks.emit(&tenant_id, event, data).await {
                    tracing::error!(connection = %connection_id, event = event.as_str(), error = %e, "the event was not queued");
                }
            }
            Write::NeedsReauth {
                tenant_id,
                connection_id,
                token,
                event,
            } => match store
                .mark_needs_reauth(&tenant_id, &connection_id, &token, &now())
                .await
            {
                Ok(true) => {
                    if let Err(e) = webhooks
                        .emit(&tenant_id, EventType::ReauthRequired, event)
                        .await
                    {
                        tracing::error!(connection = %connection_id, error = %e, "connection.reauth_required was not queued");
                    }
                }
                // Marked already, by this replica or another: the incident was raised.
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(connection = %connection_id, error = %e, "the needs-reauth mark was not stored");
                }
            },
            Write::Settled(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// The plugin that failed a record, when one did: a `pre`/`post` step, or a field of a
/// strict mapping.
fn failed_plugin(e: &RecordError) -> Option<String> {
    match e {
        RecordError::Plugin { error, .. } => error.plugin(),
        RecordError::Field(field) => field.cause.plugin(),
        _ => None,
    }
    .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Mode, SledStore};
    use crosswalk_systems::SystemId;

    fn entry(i: usize) -> ErrorEntry {
        ErrorEntry {
            at: now(),
            entity: Some(Entity::Vendor),
            kind: ErrorKind::Mapping,
            message: format!("problem {i}"),
            upstream_status: None,
            record_id: None,
            plugin: None,
            request_id: None,
        }
    }

    #[test]
    fn the_error_log_queue_is_bounded_and_counts_what_it_drops() {
        let dir =
            std::env::temp_dir().join(format!("crosswalk-monitor-queue-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir).unwrap());
        let webhooks = Arc::new(Webhooks::new(
            Arc::clone(&store),
            Duration::from_secs(1),
            None,
            crate::egress::Policy::deny_internal(),
        ));
        let mut monitor = Monitor::new(Arc::clone(&store), webhooks);
        monitor.max_queued_log_entries = 20;
        let c = Connection::new("ten_a", SystemId::IbmMaximo, "Maximo", Mode::Sandbox, None);
        // No runtime on this thread: the writer has not started, and entries wait.
        for i in 0..25 {
            monitor.log(&c, entry(i));
        }
        assert_eq!(monitor.dropped_log_entries(), 5);
        // Once a runtime writes them, the queue has room again.
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(monitor.settled());
        monitor.log(&c, entry(25));
        runtime.block_on(monitor.settled());
        assert_eq!(monitor.dropped_log_entries(), 5);
        let logged = runtime.block_on(store.errors(&c.id)).unwrap();
        assert_eq!(logged.len(), 21);
        assert_eq!(logged[0].message, "problem 25");
        assert_eq!(logged[20].message, "problem 0");
        drop(runtime);
        drop(monitor);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
