//! A connection's health: what its upstream calls and mappings have been doing, its
//! circuit breaker, and the status a client reads before making calls.
//!
//! Every read records an outcome per entity: a success, or an error of one
//! [`ErrorKind`]. From those the [`Status`] follows, most urgent first:
//!
//! 1. `needs_reauth`: the upstream refused the credentials (kept in the store, so it
//!    survives a restart; cleared by reauthorization);
//! 2. `circuit_open`: the breaker is open (or half-open with its probe out); while it
//!    is half-open with no probe out, the next call goes through as the probe, so the
//!    status is the one below it (`unreachable`, usually);
//! 3. `rate_limited`: the upstream answered 429 and its `Retry-After` has not passed;
//! 4. `unreachable`: the latest upstream call failed in transport, by timeout or
//!    with a 5xx;
//! 5. `degraded`: some entity's latest read failed (a permission problem on one
//!    entity, a mapping or plugin error) while the connection answers;
//! 6. `healthy`.
//!
//! The breaker counts transport failures, timeouts and 5xx answers only: a 403 on one
//! entity or a mapping error says nothing about whether the system is up. It opens
//! after `consecutive_failures` in a row, or when `failure_rate` of the last `window`
//! calls failed (once `min_calls` were made); after `open_ms` it lets one probe
//! through (half-open): a success closes it, a failure opens it again. Counts and the
//! breaker live in memory: a restart starts them afresh.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crosswalk_core::model::Entity;

/// What kind of failure, for counting and filtering.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The upstream refused the credentials (401, or an OAuth client refused).
    Auth,
    /// The upstream refused this entity to these credentials (403).
    Permission,
    /// The upstream answered 429.
    RateLimit,
    /// The upstream did not answer in time.
    Timeout,
    /// The upstream could not be reached.
    Network,
    /// The upstream answered 5xx.
    #[serde(rename = "upstream_5xx")]
    Upstream5xx,
    /// The upstream answered something else it should not have (not JSON, a 4xx, no
    /// collection).
    BadResponse,
    /// A record could not be mapped, or a field of it failed.
    Mapping,
    /// A plugin call failed (trap, time or memory limit, error).
    Plugin,
    /// The upstream refused a write as invalid (400, 409, 412, 422): the record's
    /// fault, not the connection's.
    Rejected,
}

impl ErrorKind {
    /// Every kind, in order.
    pub const ALL: [ErrorKind; 10] = [
        ErrorKind::Auth,
        ErrorKind::Permission,
        ErrorKind::RateLimit,
        ErrorKind::Timeout,
        ErrorKind::Network,
        ErrorKind::Upstream5xx,
        ErrorKind::BadResponse,
        ErrorKind::Mapping,
        ErrorKind::Plugin,
        ErrorKind::Rejected,
    ];

    /// Its name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Auth => "auth",
            ErrorKind::Permission => "permission",
            ErrorKind::RateLimit => "rate_limit",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Network => "network",
            ErrorKind::Upstream5xx => "upstream_5xx",
            ErrorKind::BadResponse => "bad_response",
            ErrorKind::Mapping => "mapping",
            ErrorKind::Plugin => "plugin",
            ErrorKind::Rejected => "rejected",
        }
    }

    /// Whether it says the upstream is down: the breaker counts these.
    pub fn is_outage(self) -> bool {
        matches!(
            self,
            ErrorKind::Timeout | ErrorKind::Network | ErrorKind::Upstream5xx
        )
    }
}

impl std::str::FromStr for ErrorKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
                format!(
                    "`{s}` is not an error kind; the kinds are {}",
                    names.join(", ")
                )
            })
    }
}

/// What a client should expect of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Calls succeed.
    Healthy,
    /// The connection answers, but some entity's reads fail.
    Degraded,
    /// The credentials were refused: reauthorize the connection.
    NeedsReauth,
    /// The upstream asked to wait.
    RateLimited,
    /// The upstream cannot be reached, times out or answers 5xx.
    Unreachable,
    /// Too many failures: reads fail fast until the breaker's probe succeeds.
    CircuitOpen,
}

impl Status {
    /// Its name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Healthy => "healthy",
            Status::Degraded => "degraded",
            Status::NeedsReauth => "needs_reauth",
            Status::RateLimited => "rate_limited",
            Status::Unreachable => "unreachable",
            Status::CircuitOpen => "circuit_open",
        }
    }
}

/// When a connection's circuit breaker opens, and for how long.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    /// Outages in a row that open the breaker.
    #[serde(default = "defaults::consecutive")]
    #[schemars(range(min = 1))]
    pub consecutive_failures: u32,
    /// The share of outages among the last `window` calls that opens it (0 < rate ≤ 1).
    #[serde(default = "defaults::rate")]
    pub failure_rate: f64,
    /// How many recent calls the rate is taken over.
    #[serde(default = "defaults::window")]
    #[schemars(range(min = 1, max = 1000))]
    pub window: u32,
    /// Calls needed in the window before the rate counts.
    #[serde(default = "defaults::min_calls")]
    #[schemars(range(min = 1, max = 1000))]
    pub min_calls: u32,
    /// How long it stays open before a probe, in milliseconds.
    #[serde(default = "defaults::open_ms")]
    #[schemars(range(min = 1, max = 3_600_000))]
    pub open_ms: u64,
}

mod defaults {
    pub fn consecutive() -> u32 {
        5
    }
    pub fn rate() -> f64 {
        0.5
    }
    pub fn window() -> u32 {
        20
    }
    pub fn min_calls() -> u32 {
        10
    }
    pub fn open_ms() -> u64 {
        30_000
    }
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            consecutive_failures: defaults::consecutive(),
            failure_rate: defaults::rate(),
            window: defaults::window(),
            min_calls: defaults::min_calls(),
            open_ms: defaults::open_ms(),
        }
    }
}

impl BreakerConfig {
    /// Checks the thresholds; names the first that is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.consecutive_failures == 0 {
            return Err("upstream.breaker.consecutive_failures must be at least 1".into());
        }
        if !(self.failure_rate > 0.0 && self.failure_rate <= 1.0) {
            return Err(format!(
                "upstream.breaker.failure_rate is {}; it must be above 0 and at most 1",
                self.failure_rate
            ));
        }
        if !(1..=1000).contains(&self.window) {
            return Err("upstream.breaker.window must be between 1 and 1000".into());
        }
        if self.min_calls == 0 || self.min_calls > self.window {
            return Err("upstream.breaker.min_calls must be between 1 and window".into());
        }
        if !(1..=3_600_000).contains(&self.open_ms) {
            return Err("upstream.breaker.open_ms must be between 1 and 3600000".into());
        }
        Ok(())
    }
}

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls fail fast.
    Open,
    /// One probe is allowed through.
    HalfOpen,
}

/// A per-connection circuit breaker.
#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    state: BreakerState,
    consecutive: u32,
    recent: VecDeque<bool>,
    open_until: Option<Instant>,
    /// When the half-open probe went out; a probe whose caller went away without
    /// reporting is replaced after `open_ms`.
    probe_out: Option<Instant>,
}

/// A call the breaker let through: report how it went with [`Breaker::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// An ordinary call.
    Call,
    /// The half-open probe.
    Probe,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Breaker {
        Breaker {
            config,
            state: BreakerState::Closed,
            consecutive: 0,
            recent: VecDeque::new(),
            open_until: None,
            probe_out: None,
        }
    }

    /// Its state now.
    pub fn state(&self, now: Instant) -> BreakerState {
        match self.state {
            BreakerState::Open if self.open_until.is_some_and(|t| t <= now) => {
                BreakerState::HalfOpen
            }
            s => s,
        }
    }

    /// How long calls keep failing fast from `now`: until the open breaker lets a
    /// probe through, or until a probe that is out is replaced. `None` when a call may
    /// go now (closed, or half-open with no probe out).
    pub fn fails_fast_for(&self, now: Instant) -> Option<Duration> {
        match self.state(now) {
            BreakerState::Closed => None,
            BreakerState::Open => Some(
                self.open_until
                    .map_or(Duration::ZERO, |t| t.saturating_duration_since(now)),
            ),
            BreakerState::HalfOpen => self.probe_out.and_then(|at| {
                Duration::from_millis(self.config.open_ms)
                    .checked_sub(now.saturating_duration_since(at))
                    .filter(|left| !left.is_zero())
            }),
        }
    }

    /// Whether a call may go now; `Err` with the time left while it fails fast.
    pub fn admit(&mut self, now: Instant) -> Result<Admission, Duration> {
        match self.state(now) {
            BreakerState::Closed => Ok(Admission::Call),
            BreakerState::Open => Err(self
                .open_until
                .map_or(Duration::ZERO, |t| t.saturating_duration_since(now))),
            BreakerState::HalfOpen
                if self.probe_out.is_some_and(|at| {
                    now.saturating_duration_since(at) < Duration::from_millis(self.config.open_ms)
                }) =>
            {
                Err(Duration::ZERO)
            }
            BreakerState::HalfOpen => {
                self.state = BreakerState::HalfOpen;
                self.probe_out = Some(now);
                Ok(Admission::Probe)
            }
        }
    }

    /// How an admitted call went: `true` for an outage.
    pub fn record(&mut self, admission: Admission, outage: bool, now: Instant) {
        if admission == Admission::Probe || self.state == BreakerState::HalfOpen {
            self.probe_out = None;
            if outage {
                self.open(now);
            } else {
                self.close();
            }
            return;
        }
        if self.state != BreakerState::Closed {
            // A call admitted before the breaker opened ended after: it changes nothing.
            return;
        }
        self.recent.push_back(outage);
        while self.recent.len() > self.config.window as usize {
            self.recent.pop_front();
        }
        self.consecutive = if outage { self.consecutive + 1 } else { 0 };
        let failures = self.recent.iter().filter(|o| **o).count();
        let rate_tripped = self.recent.len() >= self.config.min_calls as usize
            && failures as f64 >= self.config.failure_rate * self.recent.len() as f64;
        if outage && (self.consecutive >= self.config.consecutive_failures || rate_tripped) {
            self.open(now);
        }
    }

    fn open(&mut self, now: Instant) {
        self.state = BreakerState::Open;
        self.open_until = Some(now + Duration::from_millis(self.config.open_ms));
    }

    fn close(&mut self) {
        self.state = BreakerState::Closed;
        self.consecutive = 0;
        self.recent.clear();
        self.open_until = None;
    }
}

/// One entity's record of reads.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct EntityHealth {
    /// Its latest read failed with this kind; `None` when it succeeded.
    pub failing: Option<ErrorKind>,
    /// Errors by kind since the service started.
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Successful reads since the service started.
    pub successes: u64,
    /// RFC 3339.
    pub last_success: Option<String>,
}

/// The error that a status carries.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LastError {
    /// RFC 3339.
    pub at: String,
    /// The entity read, when one was.
    pub entity: Option<Entity>,
    /// Its kind.
    pub kind: ErrorKind,
    /// What happened.
    pub message: String,
}

/// What a connection has been doing (in memory, since the service started).
#[derive(Debug)]
pub struct Health {
    breaker: Breaker,
    rate_limited_until: Option<Instant>,
    /// Whether the latest upstream call was an outage.
    last_call_outage: bool,
    entities: BTreeMap<Entity, EntityHealth>,
    last_success: Option<String>,
    last_error: Option<LastError>,
    /// The status last reported to webhooks.
    pub(crate) reported: Option<Status>,
}

impl Health {
    /// A fresh record with this breaker.
    pub fn new(breaker: BreakerConfig) -> Health {
        Health {
            breaker: Breaker::new(breaker),
            rate_limited_until: None,
            last_call_outage: false,
            entities: BTreeMap::new(),
            last_success: None,
            last_error: None,
            reported: None,
        }
    }

    /// Whether an upstream call may go now: `Err` with the status that stops it and
    /// how long to wait.
    pub fn admit(&mut self, now: Instant) -> Result<Admission, (Status, Duration)> {
        if let Some(until) = self.rate_limited_until {
            if until > now {
                return Err((Status::RateLimited, until - now));
            }
            self.rate_limited_until = None;
        }
        self.breaker
            .admit(now)
            .map_err(|wait| (Status::CircuitOpen, wait))
    }

    /// A read of `entity` succeeded.
    pub fn success(&mut self, entity: Entity, admission: Option<Admission>, now: Instant) {
        if let Some(a) = admission {
            self.breaker.record(a, false, now);
            self.last_call_outage = false;
        }
        let at = crate::store::now();
        let e = self.entities.entry(entity).or_default();
        e.failing = None;
        e.successes += 1;
        e.last_success = Some(at.clone());
        self.last_success = Some(at);
    }

    /// A read of `entity` failed (an upstream call when `admission` is set).
    pub fn failure(
        &mut self,
        entity: Option<Entity>,
        kind: ErrorKind,
        message: &str,
        admission: Option<Admission>,
        retry_after: Option<Duration>,
        now: Instant,
    ) {
        if let Some(a) = admission {
            self.breaker.record(a, kind.is_outage(), now);
            self.last_call_outage = kind.is_outage();
        }
        if kind == ErrorKind::RateLimit {
            self.rate_limited_until = Some(now + retry_after.unwrap_or(Duration::from_secs(1)));
        }
        if let Some(entity) = entity {
            let e = self.entities.entry(entity).or_default();
            e.failing = Some(kind);
            *e.errors.entry(kind).or_default() += 1;
        }
        self.last_error = Some(LastError {
            at: crate::store::now(),
            entity,
            kind,
            message: message.to_owned(),
        });
    }

    /// A read succeeded upstream, but some of its records failed to map or called a
    /// failing plugin: counted against the entity without touching the breaker.
    pub fn record_problems(&mut self, entity: Entity, kind: ErrorKind, count: u64, message: &str) {
        let e = self.entities.entry(entity).or_default();
        e.failing = Some(kind);
        *e.errors.entry(kind).or_default() += count;
        self.last_error = Some(LastError {
            at: crate::store::now(),
            entity: Some(entity),
            kind,
            message: message.to_owned(),
        });
    }

    /// The status now, given whether the credentials were refused.
    pub fn status(&self, needs_reauth: bool, now: Instant) -> Status {
        if needs_reauth {
            Status::NeedsReauth
        } else if self.breaker.fails_fast_for(now).is_some() {
            Status::CircuitOpen
        } else if self.rate_limited_until.is_some_and(|t| t > now) {
            Status::RateLimited
        } else if self.last_call_outage {
            Status::Unreachable
        } else if self.entities.values().any(|e| e.failing.is_some()) {
            Status::Degraded
        } else {
            Status::Healthy
        }
    }

    /// Starts afresh after reauthorization: the new credentials have just worked.
    pub fn reset(&mut self, breaker: BreakerConfig) {
        *self = Health {
            reported: self.reported,
            ..Health::new(breaker)
        };
    }

    /// A report for the status endpoint.
    pub fn report(&self, needs_reauth: bool, now: Instant) -> HealthReport {
        let mut by_kind: BTreeMap<ErrorKind, u64> = BTreeMap::new();
        for e in self.entities.values() {
            for (k, n) in &e.errors {
                *by_kind.entry(*k).or_default() += n;
            }
        }
        HealthReport {
            status: self.status(needs_reauth, now),
            breaker: self.breaker.state(now),
            retry_after_ms: self
                .rate_limited_until
                .filter(|t| *t > now)
                .map(|t| t - now)
                .max(self.breaker.fails_fast_for(now))
                .map(|wait| u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)),
            last_success: self.last_success.clone(),
            last_error: self.last_error.clone(),
            errors_by_kind: by_kind,
            entities: self
                .entities
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                .collect(),
        }
    }
}

/// A connection's health as the status endpoint answers it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HealthReport {
    /// The status.
    pub status: Status,
    /// The circuit breaker's state.
    pub breaker: BreakerState,
    /// While rate limited or while the breaker fails calls fast: how long until the
    /// upstream may be called again.
    pub retry_after_ms: Option<u64>,
    /// The latest successful read, RFC 3339.
    pub last_success: Option<String>,
    /// The latest error.
    pub last_error: Option<LastError>,
    /// Errors by kind, all entities together.
    pub errors_by_kind: BTreeMap<ErrorKind, u64>,
    /// Per entity: its latest outcome and its counts.
    pub entities: BTreeMap<String, EntityHealth>,
}

/// One entry of a connection's error log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorEntry {
    /// RFC 3339.
    pub at: String,
    /// The entity, when the error concerns one.
    pub entity: Option<Entity>,
    /// Its kind.
    pub kind: ErrorKind,
    /// What happened.
    pub message: String,
    /// The upstream's HTTP status, when it answered.
    #[serde(default)]
    pub upstream_status: Option<u16>,
    /// The record, for a mapping error.
    #[serde(default)]
    pub record_id: Option<String>,
    /// The plugin, for a plugin error.
    #[serde(default)]
    pub plugin: Option<String>,
    /// The request that met it (`x-request-id`).
    #[serde(default)]
    pub request_id: Option<String>,
}

impl ErrorEntry {
    /// The entry of a failed upstream call.
    pub fn upstream(
        entity: Option<Entity>,
        error: &super::upstream::UpstreamError,
        request_id: Option<&str>,
    ) -> ErrorEntry {
        ErrorEntry {
            at: crate::store::now(),
            entity,
            kind: error.kind,
            message: error.message.clone(),
            upstream_status: error.status,
            record_id: None,
            plugin: None,
            request_id: request_id.map(str::to_owned),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(consecutive: u32) -> BreakerConfig {
        BreakerConfig {
            consecutive_failures: consecutive,
            failure_rate: 0.5,
            window: 10,
            min_calls: 4,
            open_ms: 1000,
        }
    }

    #[test]
    fn breaker_opens_after_consecutive_outages_then_probes() {
        let t0 = Instant::now();
        let mut b = Breaker::new(config(3));
        for _ in 0..2 {
            let a = b.admit(t0).unwrap();
            b.record(a, true, t0);
        }
        assert_eq!(b.state(t0), BreakerState::Closed);
        let a = b.admit(t0).unwrap();
        b.record(a, true, t0);
        assert_eq!(b.state(t0), BreakerState::Open);
        assert_eq!(b.admit(t0), Err(Duration::from_millis(1000)));
        let later = t0 + Duration::from_millis(1000);
        assert_eq!(b.state(later), BreakerState::HalfOpen);
        assert_eq!(b.admit(later), Ok(Admission::Probe));
        assert!(b.admit(later).is_err(), "one probe at a time");
        b.record(Admission::Probe, true, later);
        assert_eq!(b.state(later), BreakerState::Open, "a failed probe reopens");
        let later = later + Duration::from_millis(1000);
        let a = b.admit(later).unwrap();
        b.record(a, false, later);
        assert_eq!(b.state(later), BreakerState::Closed, "a good probe closes");
    }

    #[test]
    fn a_probe_that_never_reports_is_replaced() {
        let t0 = Instant::now();
        let mut b = Breaker::new(config(1));
        b.record(Admission::Call, true, t0);
        let half = t0 + Duration::from_millis(1000);
        assert_eq!(b.admit(half), Ok(Admission::Probe));
        // Its caller went away without reporting: another probe after open_ms.
        assert!(b.admit(half + Duration::from_millis(999)).is_err());
        assert_eq!(
            b.admit(half + Duration::from_millis(1000)),
            Ok(Admission::Probe)
        );
    }

    #[test]
    fn breaker_opens_on_the_failure_rate() {
        let t0 = Instant::now();
        let mut b = Breaker::new(config(100));
        // good, bad, good, bad: 2 of 4 = the 0.5 rate, reached at the fourth call.
        for outage in [false, true, false] {
            b.record(Admission::Call, outage, t0);
            assert_eq!(b.state(t0), BreakerState::Closed);
        }
        b.record(Admission::Call, true, t0);
        assert_eq!(b.state(t0), BreakerState::Open);
    }

    #[test]
    fn status_follows_the_most_urgent_condition() {
        let t0 = Instant::now();
        let mut h = Health::new(config(2));
        assert_eq!(h.status(false, t0), Status::Healthy);
        h.failure(
            Some(Entity::Vendor),
            ErrorKind::Permission,
            "403",
            Some(Admission::Call),
            None,
            t0,
        );
        h.success(Entity::PurchaseOrder, Some(Admission::Call), t0);
        assert_eq!(h.status(false, t0), Status::Degraded, "one entity refused");
        h.failure(
            Some(Entity::PurchaseOrder),
            ErrorKind::Upstream5xx,
            "500",
            Some(Admission::Call),
            None,
            t0,
        );
        assert_eq!(h.status(false, t0), Status::Unreachable);
        h.failure(
            Some(Entity::PurchaseOrder),
            ErrorKind::RateLimit,
            "429",
            Some(Admission::Call),
            Some(Duration::from_secs(2)),
            t0,
        );
        assert_eq!(h.status(false, t0), Status::RateLimited);
        assert!(
            matches!(h.admit(t0), Err((Status::RateLimited, d)) if d == Duration::from_secs(2))
        );
        assert_eq!(h.status(true, t0), Status::NeedsReauth);
        let report = h.report(false, t0);
        assert_eq!(report.errors_by_kind[&ErrorKind::Permission], 1);
        assert_eq!(
            report.entities["vendor"].failing,
            Some(ErrorKind::Permission)
        );
        assert_eq!(
            "upstream_5xx".parse::<ErrorKind>(),
            Ok(ErrorKind::Upstream5xx)
        );
        assert!(
            "oops"
                .parse::<ErrorKind>()
                .unwrap_err()
                .contains("auth, permission")
        );
    }

    /// While the breaker is open the status is `circuit_open` with the time until the
    /// probe; once it is half-open the next call is the probe, so the status is the
    /// one beneath (the last call failed: `unreachable`); with the probe out it is
    /// `circuit_open` again, with the time until the probe is replaced.
    #[test]
    fn a_half_open_breaker_is_not_reported_as_open() {
        let t0 = Instant::now();
        let mut h = Health::new(config(1));
        h.failure(
            Some(Entity::PurchaseOrder),
            ErrorKind::Timeout,
            "timed out",
            Some(Admission::Call),
            None,
            t0,
        );
        let open = h.report(false, t0);
        assert_eq!(open.status, Status::CircuitOpen);
        assert_eq!(open.breaker, BreakerState::Open);
        assert_eq!(open.retry_after_ms, Some(1000));
        let soon = t0 + Duration::from_millis(400);
        assert_eq!(h.report(false, soon).retry_after_ms, Some(600));
        let half = t0 + Duration::from_millis(1000);
        let report = h.report(false, half);
        assert_eq!(report.breaker, BreakerState::HalfOpen);
        assert_eq!(
            report.status,
            Status::Unreachable,
            "the next call is the probe"
        );
        assert_eq!(report.retry_after_ms, None);
        assert_eq!(h.admit(half), Ok(Admission::Probe));
        let probing = h.report(false, half + Duration::from_millis(100));
        assert_eq!(probing.status, Status::CircuitOpen, "the probe is out");
        assert_eq!(probing.retry_after_ms, Some(900));
    }
}
