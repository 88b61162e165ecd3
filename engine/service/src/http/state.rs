//! What every handler shares. [`AppState`] is a cheap handle over the service's parts:
//! the store, the hot-swapped pipelines, the plugin host, the metrics, the records
//! service (reads and writes, health), webhooks, the egress policy and the quotas.
//! [`ServiceOptions`] says how the service runs beyond its store and plugin host;
//! [`RequestId`] is the id the request observer gives each request.

use std::sync::Arc;

use axum::body::Bytes;

use super::{ApiError, Metrics};
use crate::connection::secrets::Sealer;
use crate::connection::{Monitor, Pipelines, Records};
use crate::quota::Quotas;
use crate::store::{Cached, Store};
use crate::webhook::Webhooks;
use crosswalk_core::mapping::MapLimits;
use crosswalk_plugin_host::PluginHost;

/// What every handler shares: a cheap handle.
#[derive(Clone)]
pub struct AppState {
    pub(super) inner: Arc<Shared>,
}

/// The parts behind an [`AppState`], shared by every clone of it.
pub(super) struct Shared {
    /// The store, through the cache of keys and connections.
    pub(super) store: Arc<dyn Store>,
    /// The same cache, for the change follower to drop what other replicas change.
    pub(super) cache: Arc<Cached>,
    pub(super) pipelines: Arc<Pipelines>,
    pub(super) host: Arc<PluginHost>,
    pub(super) body_limit: usize,
    pub(super) metrics: Arc<Metrics>,
    pub(super) records: Arc<Records>,
    pub(super) webhooks: Arc<Webhooks>,
    /// Where outbound calls may go: URLs are checked against it when they are stored.
    pub(super) egress: crate::egress::Policy,
    /// The limits on what tenants store.
    pub(super) quotas: Quotas,
    /// Held while a tenant's count of something is checked and one more is stored, so
    /// that concurrent creations cannot pass a quota together. Creations are rare: one
    /// lock for all is enough.
    pub(super) counting: tokio::sync::Mutex<()>,
    /// The OpenAPI document, with these quotas, serialized on first use.
    pub(super) openapi: std::sync::OnceLock<Bytes>,
    /// What mapping may take, and `max_answer_bytes` for every JSON answer of records.
    pub(super) map_limits: MapLimits,
    /// The body of `POST /bench/floor`, when the server runs for benchmarks.
    pub(super) floor: Option<Bytes>,
    /// Where the console's files come from.
    pub(super) console: super::console::Assets,
}

/// How the service runs beyond its store and plugin host.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// Seals live connections' credentials (`CROSSWALK_SECRET_KEY`); without it, only
    /// sandbox connections work.
    pub sealer: Option<Sealer>,
    /// The first wait before a failed webhook delivery is retried; it doubles with
    /// each attempt.
    pub webhook_backoff: std::time::Duration,
    /// How long a replica's claim on a subscription's deliveries lasts unless renewed:
    /// the longest a replica that stopped mid-delivery holds its events up.
    pub webhook_lease: std::time::Duration,
    /// Where webhooks, live upstreams and token endpoints may be reached: by default
    /// no loopback, private, link-local or metadata address (`--allow-upstream`).
    pub egress: crate::egress::Policy,
    /// The limits on what tenants store.
    pub quotas: Quotas,
    /// What mapping may take (JSONPath budgets, `max_record_bytes`), and the largest
    /// answer of records (`max_answer_bytes`).
    pub map_limits: MapLimits,
    /// Where the console's files come from: embedded, unless a directory is given for
    /// work on the console.
    pub console: super::console::Assets,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            sealer: None,
            webhook_backoff: std::time::Duration::from_secs(5),
            webhook_lease: crate::webhook::DEFAULT_CLAIM_LEASE,
            egress: crate::egress::Policy::deny_internal(),
            quotas: Quotas::DEFAULT,
            map_limits: MapLimits::DEFAULT,
            console: super::console::Assets::Embedded,
        }
    }
}

/// The request id, for handlers (set by the request observer).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl AppState {
    /// State over a store, the plugin host, and the pipelines built on both, with
    /// the default [`ServiceOptions`].
    pub fn new(store: Arc<dyn Store>, host: Arc<PluginHost>, body_limit: usize) -> AppState {
        AppState::with_options(store, host, body_limit, ServiceOptions::default())
    }

    /// State with options.
    pub fn with_options(
        store: Arc<dyn Store>,
        host: Arc<PluginHost>,
        body_limit: usize,
        options: ServiceOptions,
    ) -> AppState {
        let cache = Arc::new(Cached::new(store));
        let store: Arc<dyn Store> = Arc::clone(&cache) as Arc<dyn Store>;
        let pipelines = Arc::new(
            Pipelines::new(Arc::clone(&store), Arc::clone(&host))
                .with_quotas(options.quotas)
                .with_limits(options.map_limits),
        );
        let webhooks = Arc::new(
            Webhooks::new(
                Arc::clone(&store),
                options.webhook_backoff,
                options.sealer.clone(),
                options.egress.clone(),
            )
            .with_lease(options.webhook_lease),
        );
        let monitor = Arc::new(Monitor::new(Arc::clone(&store), Arc::clone(&webhooks)));
        let records = Arc::new(Records::new(
            Arc::clone(&store),
            Arc::clone(&pipelines),
            monitor,
            options.sealer,
            crate::connection::upstream::client(options.egress.clone()),
        ));
        AppState {
            inner: Arc::new(Shared {
                store,
                cache,
                pipelines,
                host,
                body_limit,
                metrics: Arc::new(Metrics::new()),
                records,
                webhooks,
                egress: options.egress,
                quotas: options.quotas,
                counting: tokio::sync::Mutex::new(()),
                openapi: std::sync::OnceLock::new(),
                map_limits: options.map_limits,
                floor: None,
                console: options.console,
            }),
        }
    }

    /// Starts delivering the webhook outbox on the current tokio runtime: what a
    /// previous run left undelivered first. Call once per process.
    pub fn start_webhooks(&self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(Arc::clone(&self.inner.webhooks).run())
    }

    /// Starts following the changes other replicas commit to a shared store, on the
    /// current tokio runtime, comparing everything held with the store every `period`
    /// in any case; a store only this process uses has nothing to follow. Call once
    /// per process.
    pub fn start_following(&self, period: std::time::Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(crate::connection::fleet::follow(
            crate::connection::fleet::Follower {
                store: Arc::clone(&self.inner.cache),
                pipelines: Arc::clone(&self.inner.pipelines),
                records: Arc::clone(&self.inner.records),
                period,
            },
        ))
    }

    /// Adds `POST /bench/floor` for benchmarks: it authenticates the caller and reads
    /// the body as a transform does, then answers a fixed JSON body of `bytes` bytes
    /// (at least 12) without parsing or mapping anything: the HTTP floor that
    /// transforms are measured against. It is not part of the API nor of its document.
    pub fn with_floor(mut self, bytes: usize) -> AppState {
        let pad = bytes.saturating_sub(r#"{"data":""}"#.len());
        let body = format!(r#"{{"data":"{}"}}"#, "x".repeat(pad));
        Arc::get_mut(&mut self.inner)
            .expect("the state is not shared yet")
            .floor = Some(Bytes::from(body));
        self
    }

    /// The service's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The limits on what tenants store.
    pub fn quotas(&self) -> &Quotas {
        &self.inner.quotas
    }

    /// The locks that order a tenant's creations counted against a quota: hold them to
    /// count, then store, with no other creation in between, in this process (the
    /// service's own lock) or in another replica of a shared store (the store's).
    pub(super) async fn counting(
        &self,
        tenant_id: &str,
    ) -> Result<(tokio::sync::MutexGuard<'_, ()>, crate::store::QuotaLock), ApiError> {
        let here = self.inner.counting.lock().await;
        let fleet = self.inner.store.quota_lock(tenant_id).await?;
        Ok((here, fleet))
    }

    /// `max_answer_bytes`, as errors name it.
    pub(super) fn answer_limit(&self) -> crosswalk_core::path::Limit {
        self.inner.map_limits.answer_bytes()
    }
}
