//! The plugin pool's capacity, and each tenant's share of it.
//!
//! The operator sizes the pool ([`PoolConfig`]): how many plugin instances may be alive
//! at once and how much linear memory they may have together; wasmtime's pooling
//! allocator is configured from the same numbers. Every tenant gets the same share of
//! both. A request that calls plugins first leases what its mapping's plugins may use
//! (one instance, and its binding's `memory_bytes`, per plugin the mapping calls) from
//! its tenant's share and from the pool at once, and instantiates nothing beyond it; the
//! lease is given back when the request's plugin work ends. So the memory the plugins
//! can commit is never more than the pool's, and the engine's pool is never exhausted.
//!
//! # Sharing rule
//!
//! - A tenant never holds more than its share, and a share is at most the pool.
//! - Shares are caps, not reservations: their sum may exceed the pool, and usually
//!   does. While the pool has room, every tenant gets up to its share at once.
//! - A lease that does not fit waits, at most [`PoolConfig::busy_wait`], then is
//!   refused as busy ([`PoolError::Busy`]: 503 with `Retry-After`), naming the limit
//!   that was full. Nothing is ever half-run for lack of an instance.
//! - Capacity given back goes to the waiting requests in order of what their tenant
//!   holds, fewest instances first (then first come): when the pool is full, the next
//!   instance freed goes to the tenant holding least, so tenants that saturate their
//!   shares cannot starve one that holds little. A waiter blocked only by its own
//!   tenant's share is passed over; one that the pool cannot fit yet stops the others
//!   behind it from taking the pool's capacity first.
//! - Every lease is held for a bounded time (the request's plugin budget, or the life
//!   of an NDJSON stream), so a waiter at the head of the line is served.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crosswalk_core::plugin::{Budget, Cancel, CancelGuard, Capacity, Demand, Limits};

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

/// How the plugin pool is sized and shared. Every field is a limit with a name (in
/// its doc) and a default ([`PoolConfig::for_instances`], [`PoolConfig::for_machine`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// `plugin_pool_instances`: plugin instances alive at once, over all tenants.
    pub instances: u32,
    /// `plugin_pool_memory_bytes`: the linear memory those instances may have together.
    pub memory_bytes: u64,
    /// `plugin_tenant_instances`: instances one tenant may have at once.
    pub tenant_instances: u32,
    /// `plugin_tenant_memory_bytes`: memory one tenant's instances may have together;
    /// also the most one binding may ask for.
    pub tenant_memory_bytes: u64,
    /// `plugin_busy_wait_ms`: how long a request waits for its tenant's share (or the
    /// pool) before it is refused as busy.
    pub busy_wait: Duration,
    /// `plugin_request_budget_ms`: the plugin time of one request (of one batch of an
    /// NDJSON stream), over all its records and plugins.
    pub request_budget: Duration,
}

impl PoolConfig {
    /// The default `plugin_pool_instances`.
    pub const DEFAULT_INSTANCES: u32 = 100;
    /// The default `plugin_busy_wait_ms`.
    pub const DEFAULT_BUSY_WAIT: Duration = Duration::from_millis(1_000);
    /// The default `plugin_request_budget_ms`.
    pub const DEFAULT_REQUEST_BUDGET: Duration = Duration::from_millis(2_000);
    /// The most `plugin_pool_memory_bytes` defaults to, however large the machine.
    pub const MAX_DEFAULT_MEMORY: u64 = 16 * GIB;
    /// The largest `plugin_pool_instances` accepted.
    pub const MAX_INSTANCES: u32 = 10_000;

    /// The defaults for a pool of `instances`, without looking at the machine: memory
    /// for every instance at the default `memory_bytes` of a binding (64 MiB).
    pub fn for_instances(instances: u32) -> PoolConfig {
        PoolConfig::derive(
            instances,
            u64::from(instances).saturating_mul(Limits::DEFAULT.memory_bytes),
            None,
            None,
        )
    }

    /// The defaults on a machine with `machine_memory` bytes (see [`machine_memory`]):
    /// the pool may have a quarter of it, at most [`PoolConfig::MAX_DEFAULT_MEMORY`].
    pub fn for_machine(instances: u32, machine_memory: u64) -> PoolConfig {
        PoolConfig::derive(
            instances,
            (machine_memory / 4).min(PoolConfig::MAX_DEFAULT_MEMORY),
            None,
            None,
        )
    }

    /// A pool of `instances` and `memory_bytes`, with the tenant shares given or
    /// derived: a quarter of the pool's instances (at least 8, or the whole pool when
    /// it is smaller), and the same part of its memory (at least one default binding's
    /// 64 MiB, or the whole pool's when it is smaller).
    pub fn derive(
        instances: u32,
        memory_bytes: u64,
        tenant_instances: Option<u32>,
        tenant_memory_bytes: Option<u64>,
    ) -> PoolConfig {
        let tenant_instances =
            tenant_instances.unwrap_or_else(|| (instances / 4).max(instances.min(8)));
        let tenant_memory_bytes = tenant_memory_bytes.unwrap_or_else(|| {
            let part = u128::from(memory_bytes) * u128::from(tenant_instances)
                / u128::from(instances.max(1));
            u64::try_from(part)
                .unwrap_or(u64::MAX)
                .min(memory_bytes)
                .max(memory_bytes.min(Limits::DEFAULT.memory_bytes))
        });
        PoolConfig {
            instances,
            memory_bytes,
            tenant_instances,
            tenant_memory_bytes,
            busy_wait: PoolConfig::DEFAULT_BUSY_WAIT,
            request_budget: PoolConfig::DEFAULT_REQUEST_BUDGET,
        }
    }

    /// Checks that the numbers fit together: each at least 1, a share at most the pool.
    pub fn check(&self) -> Result<(), ConfigError> {
        let out_of_range = |limit: &'static str, value: u64, min: u64, max: u64| {
            (value < min || value > max).then_some(ConfigError::OutOfRange {
                limit,
                value,
                min,
                max,
            })
        };
        let problem = out_of_range(
            "plugin_pool_instances",
            self.instances.into(),
            1,
            PoolConfig::MAX_INSTANCES.into(),
        )
        .or_else(|| out_of_range("plugin_pool_memory_bytes", self.memory_bytes, MIB, u64::MAX))
        .or_else(|| {
            out_of_range(
                "plugin_tenant_instances",
                self.tenant_instances.into(),
                1,
                self.instances.into(),
            )
        })
        .or_else(|| {
            out_of_range(
                "plugin_tenant_memory_bytes",
                self.tenant_memory_bytes,
                MIB,
                self.memory_bytes,
            )
        })
        .or_else(|| {
            out_of_range(
                "plugin_request_budget_ms",
                millis(self.request_budget),
                1,
                3_600_000,
            )
        })
        .or_else(|| out_of_range("plugin_busy_wait_ms", millis(self.busy_wait), 0, 600_000));
        problem.map_or(Ok(()), Err)
    }

    /// Checks the pool's memory against what the machine has.
    pub fn check_machine(&self, machine_memory: u64) -> Result<(), ConfigError> {
        if self.memory_bytes > machine_memory {
            return Err(ConfigError::MoreThanTheMachine {
                memory_bytes: self.memory_bytes,
                machine_memory,
            });
        }
        Ok(())
    }

    /// The most memory one instance may have: what a binding may ask for at most, the
    /// ceiling of every binding's limit and the tenant's share, whichever is smaller.
    pub fn max_instance_memory(&self) -> u64 {
        Limits::CEILING.memory_bytes.min(self.tenant_memory_bytes)
    }

    /// `Retry-After` of a busy answer: the time a lease is held at most, in whole
    /// seconds (at least 1).
    pub fn retry_after(&self) -> Duration {
        Duration::from_secs(self.request_budget.as_millis().div_ceil(1000).max(1) as u64)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A [`PoolConfig`] that does not fit together, or not on this machine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A limit outside its range.
    #[error("{limit} is {value}, outside {min}..={max}")]
    OutOfRange {
        /// The limit's name.
        limit: &'static str,
        /// Its value.
        value: u64,
        /// The least it may be.
        min: u64,
        /// The most it may be (a share: the pool's).
        max: u64,
    },
    /// More memory than the machine has.
    #[error(
        "plugin_pool_memory_bytes is {memory_bytes} bytes ({} MiB), more than this machine has ({machine_memory} bytes, {} MiB: the smaller of MemTotal and the cgroup's memory.max)",
        memory_bytes / MIB,
        machine_memory / MIB
    )]
    MoreThanTheMachine {
        /// What was asked for.
        memory_bytes: u64,
        /// What the machine has.
        machine_memory: u64,
    },
}

/// The memory of this machine as the process may use it: `MemTotal` of
/// `/proc/meminfo`, or the memory limit of the process's cgroup (v2 `memory.max` of
/// its cgroup and every parent, or v1 `memory.limit_in_bytes`) when that is smaller.
/// `None` where neither can be read.
pub fn machine_memory() -> Option<u64> {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| meminfo_total(&text));
    let cgroup = cgroup_limit();
    match (total, cgroup) {
        (Some(t), Some(c)) => Some(t.min(c)),
        (t, c) => t.or(c),
    }
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn meminfo_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// A cgroup memory limit file's value: `None` for `max` (no limit) or what does not
/// parse, and for v1's "no limit" (a number near `u64::MAX`).
fn limit_value(text: &str) -> Option<u64> {
    let value: u64 = text.trim().parse().ok()?;
    (value < (1 << 60)).then_some(value)
}

fn cgroup_limit() -> Option<u64> {
    let root = std::path::Path::new("/sys/fs/cgroup");
    let mut limits = Vec::new();
    // v2: the process's cgroup (`0::/a/b`) and its parents.
    if let Ok(text) = std::fs::read_to_string("/proc/self/cgroup")
        && let Some(path) = text.lines().find_map(|l| l.strip_prefix("0::"))
    {
        let mut dir = root.join(path.trim_start_matches('/'));
        loop {
            if let Some(v) = std::fs::read_to_string(dir.join("memory.max"))
                .ok()
                .and_then(|t| limit_value(&t))
            {
                limits.push(v);
            }
            if dir == root || !dir.pop() {
                break;
            }
        }
    }
    // v1.
    if let Some(v) = std::fs::read_to_string(root.join("memory/memory.limit_in_bytes"))
        .ok()
        .and_then(|t| limit_value(&t))
    {
        limits.push(v);
    }
    limits.into_iter().min()
}

/// Why plugin capacity was not given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// The request asks for more than a tenant's share: it can never run.
    #[error(
        "the plugins of this mapping need {actual} {unit}, more than a tenant's share ({limit} is {max})"
    )]
    OverShare {
        /// The limit's name.
        limit: &'static str,
        /// Its value.
        max: u64,
        /// What is asked for.
        actual: u64,
        /// `instances` or `bytes of memory`.
        unit: &'static str,
    },
    /// The tenant's share (or the pool) stayed full for the whole wait.
    #[error(
        "{what} stayed full for {waited_ms} ms ({limit} is {max}); retry after {} s",
        retry_after.as_secs()
    )]
    Busy {
        /// The limit that was full.
        limit: &'static str,
        /// Its value.
        max: u64,
        /// What is full, for people.
        what: &'static str,
        /// How long the request waited.
        waited_ms: u64,
        /// When to retry.
        retry_after: Duration,
    },
}

impl PoolError {
    /// The limit it names.
    pub fn limit(&self) -> &'static str {
        match self {
            PoolError::OverShare { limit, .. } | PoolError::Busy { limit, .. } => limit,
        }
    }
}

/// A full limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Full {
    TenantInstances,
    TenantMemory,
    PoolInstances,
    PoolMemory,
}

impl Full {
    fn name(self) -> &'static str {
        match self {
            Full::TenantInstances => "plugin_tenant_instances",
            Full::TenantMemory => "plugin_tenant_memory_bytes",
            Full::PoolInstances => "plugin_pool_instances",
            Full::PoolMemory => "plugin_pool_memory_bytes",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Full::TenantInstances => "this tenant's share of plugin instances",
            Full::TenantMemory => "this tenant's share of plugin memory",
            Full::PoolInstances => "the plugin pool's instances",
            Full::PoolMemory => "the plugin pool's memory",
        }
    }

    fn max(self, c: &PoolConfig) -> u64 {
        match self {
            Full::TenantInstances => c.tenant_instances.into(),
            Full::TenantMemory => c.tenant_memory_bytes,
            Full::PoolInstances => c.instances.into(),
            Full::PoolMemory => c.memory_bytes,
        }
    }
}

/// The plugin pool's accounting: what each tenant holds, and who waits. A cheap handle.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("config", &self.inner.config)
            .finish()
    }
}

struct Inner {
    config: PoolConfig,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    used: Demand,
    tenants: HashMap<Arc<str>, Demand>,
    waiters: Vec<Waiter>,
    next: u64,
}

struct Waiter {
    seq: u64,
    tenant: Arc<str>,
    demand: Demand,
    /// The limit that kept it waiting last.
    full: Full,
    tx: oneshot::Sender<Lease>,
}

/// What the pool holds now, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Instances leased.
    pub instances: u32,
    /// Memory leased, in bytes.
    pub memory_bytes: u64,
    /// Tenants holding a lease.
    pub tenants: usize,
    /// Requests waiting.
    pub waiting: usize,
}

impl Pool {
    /// A pool of `config` (checked by the caller).
    pub fn new(config: PoolConfig) -> Pool {
        Pool {
            inner: Arc::new(Inner {
                config,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &PoolConfig {
        &self.inner.config
    }

    /// What is leased and waiting now.
    pub fn usage(&self) -> Usage {
        let state = self.inner.lock();
        Usage {
            instances: state.used.instances,
            memory_bytes: state.used.memory_bytes,
            tenants: state.tenants.len(),
            waiting: state.waiters.len(),
        }
    }

    /// Checks that `demand`, and each binding's memory, fit a tenant's share: what a
    /// mapping change must pass, so that its requests can run at all.
    pub fn check_share(&self, demand: Demand, bindings: &[Limits]) -> Result<(), PoolError> {
        let c = &self.inner.config;
        let over = |limit: &'static str, max: u64, actual: u64, unit| PoolError::OverShare {
            limit,
            max,
            actual,
            unit,
        };
        if let Some(big) = bindings
            .iter()
            .map(|l| l.memory_bytes)
            .find(|m| *m > c.tenant_memory_bytes)
        {
            return Err(over(
                "plugin_tenant_memory_bytes",
                c.tenant_memory_bytes,
                big,
                "bytes of memory",
            ));
        }
        if demand.instances > c.tenant_instances {
            return Err(over(
                "plugin_tenant_instances",
                c.tenant_instances.into(),
                demand.instances.into(),
                "instances",
            ));
        }
        if demand.memory_bytes > c.tenant_memory_bytes {
            return Err(over(
                "plugin_tenant_memory_bytes",
                c.tenant_memory_bytes,
                demand.memory_bytes,
                "bytes of memory",
            ));
        }
        Ok(())
    }

    /// Leases `demand` for a request of `tenant`: at once when its share and the pool
    /// have room, else after waiting (at most [`PoolConfig::busy_wait`]) for capacity to
    /// be given back; then a [`Grant`] with the request's budget and a cancel flag.
    /// Dropping the future gives up the wait (and any lease granted meanwhile).
    pub async fn grant(&self, tenant: &str, demand: Demand) -> Result<Grant, PoolError> {
        let lease = self.lease(tenant, demand).await?;
        Ok(Grant {
            lease: Arc::new(lease),
            budget: self.inner.config.request_budget,
            cancel: Cancel::new(),
        })
    }

    async fn lease(&self, tenant: &str, demand: Demand) -> Result<Lease, PoolError> {
        self.check_share(demand, &[])?;
        if demand.is_zero() {
            return Ok(Lease {
                pool: None,
                tenant: Arc::from(tenant),
                demand,
            });
        }
        let started = Instant::now();
        let (tx, mut rx) = oneshot::channel();
        let seq;
        let dropped = {
            let mut state = self.inner.lock();
            seq = state.next;
            state.next += 1;
            state.waiters.push(Waiter {
                seq,
                tenant: Arc::from(tenant),
                demand,
                full: Full::PoolInstances,
                tx,
            });
            self.inner.scan(&mut state)
        };
        drop(dropped);
        // Leaves the line however the wait ends (a timeout, or the future dropped).
        let waiting = Waiting {
            inner: &self.inner,
            seq,
        };
        let waited = tokio::time::timeout(self.inner.config.busy_wait, &mut rx).await;
        let full = waiting.leave();
        match waited {
            Ok(Ok(lease)) => Ok(lease),
            // Granted just as the wait ended: taken.
            _ => match rx.try_recv() {
                Ok(lease) => Ok(lease),
                Err(_) => {
                    let full = full.unwrap_or(Full::PoolInstances);
                    Err(PoolError::Busy {
                        limit: full.name(),
                        max: full.max(&self.inner.config),
                        what: full.what(),
                        waited_ms: millis(started.elapsed()),
                        retry_after: self.inner.config.retry_after(),
                    })
                }
            },
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Gives capacity to waiters, by the sharing rule. Returns the leases whose waiter
    /// was gone, to be dropped (given back) once the lock is released.
    fn scan(self: &Arc<Self>, state: &mut State) -> Vec<Lease> {
        let c = &self.config;
        let mut orphans = Vec::new();
        loop {
            let mut best: Option<(usize, (u32, u64))> = None;
            for (i, w) in state.waiters.iter_mut().enumerate() {
                let held = state.tenants.get(&w.tenant).copied().unwrap_or_default();
                let after = held.plus(w.demand);
                if after.instances > c.tenant_instances {
                    w.full = Full::TenantInstances;
                    continue;
                }
                if after.memory_bytes > c.tenant_memory_bytes {
                    w.full = Full::TenantMemory;
                    continue;
                }
                let key = (held.instances, w.seq);
                if best.is_none_or(|(_, k)| key < k) {
                    best = Some((i, key));
                }
            }
            let Some((i, _)) = best else { break };
            let after = state.used.plus(state.waiters[i].demand);
            if after.instances > c.instances {
                state.waiters[i].full = Full::PoolInstances;
                break;
            }
            if after.memory_bytes > c.memory_bytes {
                state.waiters[i].full = Full::PoolMemory;
                break;
            }
            let w = state.waiters.swap_remove(i);
            state.used = after;
            let held = state.tenants.entry(Arc::clone(&w.tenant)).or_default();
            *held = held.plus(w.demand);
            let lease = Lease {
                pool: Some(Arc::clone(self)),
                tenant: w.tenant,
                demand: w.demand,
            };
            if let Err(lease) = w.tx.send(lease) {
                orphans.push(lease);
            }
        }
        orphans
    }

    fn release(self: &Arc<Self>, tenant: &Arc<str>, demand: Demand) {
        let orphans = {
            let mut state = self.lock();
            state.used = state.used.minus(demand);
            if let Some(held) = state.tenants.get_mut(tenant) {
                *held = held.minus(demand);
                if held.instances == 0 && held.memory_bytes == 0 {
                    state.tenants.remove(tenant);
                }
            }
            self.scan(&mut state)
        };
        drop(orphans);
    }
}

/// A waiter's place in line, left when dropped.
struct Waiting<'a> {
    inner: &'a Arc<Inner>,
    seq: u64,
}

impl Waiting<'_> {
    /// Leaves the line; the limit that kept it waiting, if it was still there.
    fn leave(self) -> Option<Full> {
        let full = self.remove();
        std::mem::forget(self);
        full
    }

    fn remove(&self) -> Option<Full> {
        let mut state = self.inner.lock();
        let at = state.waiters.iter().position(|w| w.seq == self.seq)?;
        Some(state.waiters.swap_remove(at).full)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Capacity leased from a tenant's share and the pool; given back when dropped.
pub struct Lease {
    pool: Option<Arc<Inner>>,
    tenant: Arc<str>,
    demand: Demand,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("tenant", &self.tenant)
            .field("demand", &self.demand)
            .finish()
    }
}

impl Lease {
    /// What it holds.
    pub fn demand(&self) -> Demand {
        self.demand
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.release(&self.tenant, self.demand);
        }
    }
}

/// What one request may use of the plugin host: capacity leased from its tenant's
/// share, a plugin-time budget for each session it runs, and a cancel flag.
#[derive(Debug, Clone)]
pub struct Grant {
    lease: Arc<Lease>,
    budget: Duration,
    cancel: Cancel,
}

impl Grant {
    /// The capacity leased.
    pub fn demand(&self) -> Demand {
        self.lease.demand
    }

    /// The request's cancel flag.
    pub fn cancel(&self) -> &Cancel {
        &self.cancel
    }

    /// A guard that cancels the request's plugin work when dropped: kept by the
    /// request's future, so that a client that goes away stops it.
    pub fn cancel_on_drop(&self) -> CancelGuard {
        self.cancel.guard()
    }

    /// A fresh budget for one session (a request's batch), stopped by the cancel flag.
    pub fn budget(&self) -> Budget {
        Budget::new(self.budget, self.cancel.clone())
    }
}

impl Capacity for Grant {
    fn demand(&self) -> Demand {
        self.lease.demand
    }

    fn budget(&self) -> Budget {
        Budget::new(self.budget, self.cancel.clone())
    }

    fn lease(&self) -> Arc<dyn std::any::Any + Send + Sync> {
        Arc::clone(&self.lease) as Arc<dyn std::any::Any + Send + Sync>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(instances: u32, tenant_instances: u32) -> PoolConfig {
        PoolConfig {
            busy_wait: Duration::from_millis(200),
            ..PoolConfig::derive(
                instances,
                u64::from(instances) * GIB,
                Some(tenant_instances),
                None,
            )
        }
    }

    fn one() -> Demand {
        Demand {
            instances: 1,
            memory_bytes: 64 * MIB,
        }
    }

    #[test]
    fn defaults_fit_together_and_follow_the_machine() {
        let c = PoolConfig::for_instances(100);
        c.check().unwrap();
        assert_eq!((c.tenant_instances, c.memory_bytes), (25, 100 * 64 * MIB));
        assert_eq!(c.tenant_memory_bytes, 25 * 64 * MIB);
        let small = PoolConfig::for_instances(4);
        small.check().unwrap();
        assert_eq!(small.tenant_instances, 4);
        let given = PoolConfig::derive(6, 6 * 64 * MIB, Some(2), None);
        assert_eq!(
            given.tenant_memory_bytes,
            128 * MIB,
            "the same part as its instances"
        );
        let m = PoolConfig::for_machine(100, 24 * GIB);
        assert_eq!(
            (m.memory_bytes, m.tenant_memory_bytes),
            (6 * GIB, 1536 * MIB)
        );
        assert_eq!(
            PoolConfig::for_machine(100, 256 * GIB).memory_bytes,
            PoolConfig::MAX_DEFAULT_MEMORY
        );
        let tiny = PoolConfig::for_machine(100, 256 * MIB);
        assert_eq!(tiny.tenant_memory_bytes, 64 * MIB);
        tiny.check().unwrap();
        assert_eq!(m.max_instance_memory(), Limits::CEILING.memory_bytes);
        assert_eq!(tiny.max_instance_memory(), 64 * MIB);
    }

    #[test]
    fn a_share_larger_than_the_pool_or_the_machine_is_refused() {
        let over = PoolConfig {
            tenant_instances: 11,
            ..PoolConfig::for_instances(10)
        };
        assert_eq!(
            over.check().unwrap_err().to_string(),
            "plugin_tenant_instances is 11, outside 1..=10"
        );
        let e = PoolConfig::for_instances(100)
            .check_machine(4 * GIB)
            .unwrap_err();
        assert!(e.to_string().starts_with("plugin_pool_memory_bytes is 6710886400 bytes (6400 MiB), more than this machine has (4294967296 bytes, 4096 MiB"), "{e}");
    }

    #[test]
    fn machine_memory_reads_meminfo_and_cgroup_limits() {
        assert_eq!(
            meminfo_total("MemTotal:       24683652 kB\nMemFree: 1 kB\n"),
            Some(24683652 * 1024)
        );
        assert_eq!(limit_value("max\n"), None);
        assert_eq!(limit_value("4294967296\n"), Some(4 * GIB));
        assert_eq!(limit_value("9223372036854771712"), None);
        let here = machine_memory().expect("this machine's memory");
        assert!(here > 64 * MIB);
    }

    #[test]
    fn a_demand_over_the_share_is_refused_by_name() {
        let pool = Pool::new(config(10, 2));
        let e = pool
            .check_share(
                Demand {
                    instances: 3,
                    memory_bytes: 1,
                },
                &[],
            )
            .unwrap_err();
        assert_eq!(e.limit(), "plugin_tenant_instances");
        let big = Limits {
            memory_bytes: 10 * GIB,
            ..Limits::DEFAULT
        };
        let e = pool.check_share(one(), &[big]).unwrap_err();
        assert_eq!(e.limit(), "plugin_tenant_memory_bytes");
        assert!(e.to_string().contains("10737418240 bytes of memory"), "{e}");
    }

    #[tokio::test]
    async fn a_full_share_waits_then_is_busy_and_other_tenants_are_served() {
        let pool = Pool::new(config(4, 2));
        let a1 = pool.grant("a", one()).await.unwrap();
        let _a2 = pool.grant("a", one()).await.unwrap();
        let e = pool.grant("a", one()).await.unwrap_err();
        assert!(
            matches!(
                e,
                PoolError::Busy {
                    limit: "plugin_tenant_instances",
                    max: 2,
                    ..
                }
            ),
            "{e:?}"
        );
        // Another tenant takes from the pool's rest at once.
        let b = pool.grant("b", one()).await.unwrap();
        assert_eq!(pool.usage().instances, 3);
        // Given back: a waiter of `a` gets it.
        let waiter = tokio::spawn({
            let pool = pool.clone();
            async move { pool.grant("a", one()).await.map(|g| g.demand()) }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(a1);
        assert_eq!(waiter.await.unwrap().unwrap(), one());
        drop(b);
        assert_eq!(pool.usage().waiting, 0);
    }

    #[tokio::test]
    async fn when_the_pool_is_full_the_tenant_holding_least_goes_first() {
        // Shares as large as the pool: `a` takes it all.
        let pool = Pool::new(PoolConfig {
            busy_wait: Duration::from_secs(5),
            ..config(2, 2)
        });
        let a1 = pool.grant("a", one()).await.unwrap();
        let a2 = pool.grant("a", one()).await.unwrap();
        // `a` asks again first, then `b`.
        let more_a = tokio::spawn({
            let pool = pool.clone();
            async move { pool.grant("a", one()).await.map(|_| ()) }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let b = tokio::spawn({
            let pool = pool.clone();
            async move { pool.grant("b", one()).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(pool.usage().waiting, 2);
        drop(a1);
        // `b` holds nothing, so the freed instance is its, though `a` asked first.
        let b = tokio::time::timeout(Duration::from_secs(5), b)
            .await
            .expect("b is served")
            .unwrap()
            .unwrap();
        assert!(!more_a.is_finished());
        drop(a2);
        tokio::time::timeout(Duration::from_secs(5), more_a)
            .await
            .expect("a is served next")
            .unwrap()
            .unwrap();
        drop(b);
    }

    #[tokio::test]
    async fn a_wait_given_up_leaves_the_line_and_keeps_nothing() {
        let pool = Pool::new(PoolConfig {
            busy_wait: Duration::from_secs(30),
            ..config(1, 1)
        });
        let held = pool.grant("a", one()).await.unwrap();
        let gave_up = tokio::time::timeout(Duration::from_millis(50), pool.grant("b", one())).await;
        assert!(gave_up.is_err());
        assert_eq!(pool.usage().waiting, 0);
        drop(held);
        let usage = pool.usage();
        assert_eq!((usage.instances, usage.tenants), (0, 0));
        // A mapping without plugins asks for nothing and always gets it.
        let none = pool.grant("a", Demand::default()).await.unwrap();
        assert!(none.demand().is_zero());
    }
}
