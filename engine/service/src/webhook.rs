//! Webhooks: tenants subscribe a URL to event types; every event is written to a
//! durable outbox in the store before anything is sent, then delivered, signed, with
//! retries and exponential backoff, at least once — across receiver outages and
//! restarts of the service.
//!
//! # What a receiver gets
//!
//! `POST <url>` with a JSON body `{"id", "type", "created_at", "tenant_id", "data"}` and
//! these headers:
//!
//! - `crosswalk-event-id`: the event's id (`evt_…`), the same on every retry: use it
//!   to drop duplicates;
//! - `crosswalk-event-type`: the type, e.g. `connection.reauth_required`;
//! - `crosswalk-signature: t=<unix seconds>,v1=<hex>`, where `<hex>` is
//!   HMAC-SHA256, keyed with the subscription's secret, of `<t>.<body>` (the timestamp,
//!   a full stop, and the body's bytes as sent). Check it in constant time, and refuse
//!   a timestamp too far from now to stop replays.
//!
//! Any 2xx answer is a delivery. Anything else (or no answer within 10 s) is retried
//! after `backoff × 2^(attempt−1)`, capped at one hour, with equal jitter (between half
//! of that and all of it), up to [`MAX_ATTEMPTS`]; each
//! attempt is written to the subscription's delivery log. Each subscription's due
//! deliveries are attempted oldest first, in a task of their own: a receiver that is
//! slow or down holds up only its own events. A failed one is retried after its backoff
//! while later ones go on, so events can arrive out of order: order them by
//! `created_at`.
//!
//! # Several replicas
//!
//! The outbox is in the store, shared by every replica of a shared store. A replica
//! claims a subscription before it delivers its due events ([`Store::claim_outbox`]),
//! for a lease that it renews before each attempt and gives up when done: each event
//! is delivered by one replica. A replica that stops mid-delivery leaves its claim to
//! expire, and another claims the subscription and delivers what is left, the event
//! it was sending included (at least once: receivers drop duplicates by event id).
//!
//! # Where events may go
//!
//! A subscription's URL is checked against the outbound address policy
//! ([`crate::egress`]) when it is stored and again on every delivery, when its name is
//! resolved: an internal address that the operator does not allow is a failed attempt
//! (`not sent: the address is refused: …`), retried like any other, and nothing is
//! sent to it. Redirects are not followed.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::Notify;

use crate::connection::secrets::Sealer;
use crate::egress::{Outbound, Policy, SendError};
use crate::store::{Store, StoreError, now};

/// The prefix of a sealed secret as stored.
const SEALED: &str = "sealed:";

/// A subscription's secret as it is stored: sealed for the subscription when there is
/// a sealer, else as it is.
pub fn stored_secret(sealer: Option<&Sealer>, subscription_id: &str, secret: &str) -> String {
    use base64::Engine as _;
    match sealer {
        Some(s) => format!(
            "{SEALED}{}",
            base64::engine::general_purpose::STANDARD
                .encode(s.seal(subscription_id, secret.as_bytes()))
        ),
        None => secret.to_owned(),
    }
}

/// Attempts before a delivery is given up.
pub const MAX_ATTEMPTS: u32 = 12;

/// How long a receiver has to answer.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// How many subscriptions are delivered to at once, each in its own task.
const MAX_PARALLEL_SUBSCRIPTIONS: usize = 32;

/// Delivery log entries kept per subscription.
pub const LOG_KEEP: usize = 200;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "crosswalk-signature";
/// The event id header.
pub const EVENT_ID_HEADER: &str = "crosswalk-event-id";
/// The event type header.
pub const EVENT_TYPE_HEADER: &str = "crosswalk-event-type";

/// The events a tenant can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum EventType {
    /// The upstream refused a connection's credentials (once per incident).
    #[serde(rename = "connection.reauth_required")]
    ReauthRequired,
    /// New credentials were verified and the connection restored.
    #[serde(rename = "connection.reauthorized")]
    Reauthorized,
    /// A connection's status changed.
    #[serde(rename = "connection.status_changed")]
    StatusChanged,
    /// A connection's mapping of an entity changed.
    #[serde(rename = "mapping.updated")]
    MappingUpdated,
    /// A plugin started failing on a connection (once until it succeeds again).
    #[serde(rename = "plugin.failing")]
    PluginFailing,
    /// A test, sent to one subscription when asked for (`POST /v1/webhooks/{id}/test`),
    /// whichever events it receives.
    #[serde(rename = "webhook.test")]
    Test,
}

impl EventType {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ReauthRequired => "connection.reauth_required",
            EventType::Reauthorized => "connection.reauthorized",
            EventType::StatusChanged => "connection.status_changed",
            EventType::MappingUpdated => "mapping.updated",
            EventType::PluginFailing => "plugin.failing",
            EventType::Test => "webhook.test",
        }
    }
}

/// A tenant's subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Subscription {
    /// `whk_…`.
    pub id: String,
    /// The owner.
    pub tenant_id: String,
    /// Where events are posted.
    pub url: String,
    /// The events it receives.
    pub events: Vec<EventType>,
    /// RFC 3339.
    pub created_at: String,
    /// The signing secret: shown only when the subscription is created, and stored
    /// for signing, sealed (`sealed:<base64>`) when the server has
    /// `CROSSWALK_SECRET_KEY`.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    #[schemars(skip)]
    pub secret: String,
}

/// An event to deliver to one subscription: an outbox entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// `dlv_<unix ms>_…`: the outbox key, in the order events happened.
    pub id: String,
    /// The event's id, the same for every subscription and every attempt.
    pub event_id: String,
    /// The event's type.
    pub event_type: EventType,
    /// The subscription.
    pub subscription_id: String,
    /// The tenant.
    pub tenant_id: String,
    /// The body, exactly as it is sent and signed.
    pub body: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due, in Unix milliseconds.
    pub due_ms: u64,
}

/// One attempt, in a subscription's delivery log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeliveryAttempt {
    /// The event's id.
    pub event_id: String,
    /// The event's type.
    pub event_type: EventType,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// RFC 3339.
    pub at: String,
    /// `delivered`, `failed` (to be retried) or `given_up`.
    pub outcome: String,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u16>,
    /// Why it failed.
    pub error: Option<String>,
    /// When the next attempt is due (RFC 3339), after a failure.
    pub next_attempt_at: Option<String>,
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn sign(secret: &str, timestamp: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex = hex::encode(mac.finalize().into_bytes());
    format!("t={timestamp},v1={hex}")
}

/// Checks a signature header as a receiver should: the HMAC in constant time, and
/// the timestamp within `tolerance` of `now` (Unix seconds).
pub fn verify(
    secret: &str,
    header: &str,
    body: &[u8],
    now: u64,
    tolerance: u64,
) -> Result<(), String> {
    let mut timestamp = None;
    let mut given = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<u64>().ok(),
            Some(("v1", v)) => given = Some(v),
            _ => {}
        }
    }
    let (Some(t), Some(given)) = (timestamp, given) else {
        return Err(format!("`{header}` has no t= and v1="));
    };
    if t.abs_diff(now) > tolerance {
        return Err(format!(
            "the timestamp {t} is more than {tolerance} s from now"
        ));
    }
    // A signature that is not hex, all of it, matches nothing.
    let bytes = hex::decode(given).unwrap_or_default();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&bytes)
        .map_err(|_| "the signature does not match".to_owned())
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn rfc3339_ms(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// How long a replica's claim on a subscription's deliveries lasts unless renewed
/// (before each attempt): the longest a replica that stopped mid-delivery holds up a
/// subscription's events. At least a delivery's timeout and then some.
pub const DEFAULT_CLAIM_LEASE: Duration = Duration::from_secs(60);

/// Writes events to the outbox and delivers them.
pub struct Webhooks {
    store: Arc<dyn Store>,
    wake: Notify,
    backoff: Duration,
    sealer: Option<Sealer>,
    policy: Policy,
    /// This replica, as its claims name it.
    owner: String,
    /// How long a claim lasts unless renewed.
    lease: Duration,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("backoff", &self.backoff)
            .finish_non_exhaustive()
    }
}

impl Webhooks {
    /// Webhooks over a store; retries start `backoff` after a failure; `sealer`
    /// opens sealed secrets; deliveries go only where `policy` allows.
    pub fn new(
        store: Arc<dyn Store>,
        backoff: Duration,
        sealer: Option<Sealer>,
        policy: Policy,
    ) -> Webhooks {
        Webhooks {
            store,
            wake: Notify::new(),
            backoff,
            sealer,
            policy,
            owner: crate::ids::random_id("replica"),
            lease: DEFAULT_CLAIM_LEASE,
        }
    }

    /// The same, with claims that last `lease` unless renewed (at least the delivery
    /// timeout).
    pub fn with_lease(mut self, lease: Duration) -> Webhooks {
        self.lease = lease.max(DELIVERY_TIMEOUT + Duration::from_secs(1));
        self
    }

    /// Looks at the outbox now: another replica added to it.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    fn lease_until(&self) -> u64 {
        unix_ms() + self.lease.as_millis() as u64
    }

    /// The secret that signs a subscription's deliveries.
    fn secret(&self, subscription: &Subscription) -> Result<String, String> {
        use base64::Engine as _;
        let Some(sealed) = subscription.secret.strip_prefix(SEALED) else {
            return Ok(subscription.secret.clone());
        };
        let sealer = self.sealer.as_ref().ok_or_else(|| {
            "its secret is sealed, and the server has no CROSSWALK_SECRET_KEY to open it".to_owned()
        })?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| "its stored secret is damaged".to_owned())?;
        let plain = sealer
            .open(&subscription.id, &bytes)
            .map_err(|_| "its secret does not open with this CROSSWALK_SECRET_KEY".to_owned())?;
        String::from_utf8(plain).map_err(|_| "its stored secret is damaged".to_owned())
    }

    /// Records an event for every subscription of the tenant that wants it: each
    /// delivery is in the store when this returns.
    pub async fn emit(
        &self,
        tenant_id: &str,
        event_type: EventType,
        data: Value,
    ) -> Result<(), StoreError> {
        let subscriptions: Vec<Subscription> = self
            .store
            .subscriptions(tenant_id)
            .await?
            .into_iter()
            .filter(|s| s.events.contains(&event_type))
            .collect();
        if !subscriptions.is_empty() {
            self.queue(tenant_id, event_type, data, subscriptions)
                .await?;
        }
        Ok(())
    }

    /// Records a `webhook.test` event for one subscription, whatever events it
    /// receives; answers the event's id. It is delivered, retried and logged as any
    /// other event. A subscription has one test in the outbox at most (so that asking
    /// in a loop cannot fill the store): while one is there, this answers it instead,
    /// as `Err`.
    pub async fn test(
        &self,
        subscription: Subscription,
    ) -> Result<Result<String, Delivery>, StoreError> {
        if let Some(pending) = self
            .store
            .deliveries()
            .await?
            .into_iter()
            .find(|d| d.event_type == EventType::Test && d.subscription_id == subscription.id)
        {
            return Ok(Err(pending));
        }
        let tenant_id = subscription.tenant_id.clone();
        let data = json!({"subscription_id": subscription.id, "message": "a test delivery, asked for through the API"});
        self.queue(&tenant_id, EventType::Test, data, vec![subscription])
            .await
            .map(Ok)
    }

    /// Puts one delivery of a new event per subscription in the outbox and wakes the
    /// delivery loop; answers the event's id.
    async fn queue(
        &self,
        tenant_id: &str,
        event_type: EventType,
        data: Value,
        subscriptions: Vec<Subscription>,
    ) -> Result<String, StoreError> {
        let event_id = crate::ids::random_id("evt");
        let body = json!({
            "id": event_id,
            "type": event_type.as_str(),
            "created_at": now(),
            "tenant_id": tenant_id,
            "data": data,
        })
        .to_string();
        let due_ms = unix_ms();
        for s in subscriptions {
            self.store
                .put_delivery(&Delivery {
                    // Time first, so that the outbox (scanned in key order) delivers
                    // events in the order they happened.
                    id: crate::ids::random_id(&format!("dlv_{due_ms:013}")),
                    event_id: event_id.clone(),
                    event_type,
                    subscription_id: s.id,
                    tenant_id: tenant_id.to_owned(),
                    body: body.clone(),
                    attempts: 0,
                    due_ms,
                })
                .await?;
        }
        tracing::info!(event = event_type.as_str(), %event_id, tenant = tenant_id, "event queued");
        self.wake.notify_one();
        Ok(event_id)
    }

    /// Delivers the outbox until the process ends: what is due now, then waits for
    /// the next due time, a new event, or a subscription's deliveries to finish.
    pub async fn run(self: Arc<Self>) {
        let client = Outbound::new(self.policy.clone(), |builder| {
            builder
                .user_agent(concat!("crosswalk-webhooks/", env!("CARGO_PKG_VERSION")))
                .timeout(DELIVERY_TIMEOUT)
        });
        let busy = Arc::new(Mutex::new(HashSet::new()));
        loop {
            let next_due = match self.start_due(&client, &busy).await {
                Ok(next) => next,
                Err(e) => {
                    tracing::error!(error = %e, "the webhook outbox could not be read");
                    Some(unix_ms() + 1000)
                }
            };
            let wait = next_due.map_or(Duration::from_secs(60), |due| {
                Duration::from_millis(due.saturating_sub(unix_ms()))
            });
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Claims the subscriptions with due deliveries that no replica is delivering,
    /// and starts each one's in a task of its own that attempts them in order: a
    /// receiver that is slow or hangs (up to the delivery timeout) holds up only its
    /// own deliveries. Answers when the outbox next needs a look.
    async fn start_due(
        self: &Arc<Self>,
        client: &Outbound,
        busy: &Arc<Mutex<HashSet<String>>>,
    ) -> Result<Option<u64>, StoreError> {
        let room = MAX_PARALLEL_SUBSCRIPTIONS
            .saturating_sub(busy.lock().unwrap_or_else(|p| p.into_inner()).len());
        if room > 0 {
            let claimed = self
                .store
                .claim_outbox(&self.owner, unix_ms(), self.lease_until(), room)
                .await?;
            let mut due: Vec<(String, Vec<Delivery>)> = Vec::new();
            for delivery in claimed {
                match due.iter_mut().find(|(s, _)| *s == delivery.subscription_id) {
                    Some((_, deliveries)) => deliveries.push(delivery),
                    None => due.push((delivery.subscription_id.clone(), vec![delivery])),
                }
            }
            for (subscription, deliveries) in due {
                busy.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(subscription.clone());
                let client = client.clone();
                // Released however the task ends, a panic included.
                let done = Release {
                    busy: Arc::clone(busy),
                    subscription,
                    webhooks: Arc::clone(self),
                };
                tokio::spawn(async move {
                    done.webhooks
                        .deliver(&client, &done.subscription, deliveries)
                        .await;
                    drop(done);
                });
            }
        }
        self.store.outbox_next(unix_ms()).await
    }

    /// Attempts a claimed subscription's due deliveries in order, renewing the claim
    /// before each, then gives the claim up.
    async fn deliver(&self, client: &Outbound, subscription: &str, deliveries: Vec<Delivery>) {
        for delivery in deliveries {
            match self
                .store
                .renew_claim(&self.owner, subscription, self.lease_until())
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(%subscription, "the claim on a subscription's deliveries expired: another replica delivers them");
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, %subscription, "the claim on a subscription's deliveries could not be renewed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
            if let Err(e) = self.attempt(client, delivery).await {
                // The outcome could not be recorded, so the delivery is still due as it
                // was: a pause before it is tried again.
                tracing::error!(error = %e, %subscription, "a webhook delivery could not be recorded");
                tokio::time::sleep(Duration::from_secs(1)).await;
                break;
            }
        }
        if let Err(e) = self.store.release_claim(&self.owner, subscription).await {
            tracing::error!(error = %e, %subscription, "the claim on a subscription's deliveries was not given up: it expires");
        }
    }

    /// One attempt: on success the delivery leaves the outbox; on failure it is due
    /// again after the backoff, or given up.
    async fn attempt(&self, client: &Outbound, mut delivery: Delivery) -> Result<(), StoreError> {
        let subscription = self
            .store
            .subscription(&delivery.tenant_id, &delivery.subscription_id)
            .await?;
        let Some(subscription) = subscription else {
            // Unsubscribed since: nothing to deliver to.
            self.store.remove_delivery(&delivery.id).await?;
            return Ok(());
        };
        delivery.attempts += 1;
        let timestamp = unix_ms() / 1000;
        let sent = match self.secret(&subscription) {
            Ok(secret) => {
                let signature = sign(&secret, timestamp, delivery.body.as_bytes());
                let request = client
                    .request(reqwest::Method::POST, subscription.url.as_str())
                    .header("content-type", "application/json")
                    .header(SIGNATURE_HEADER, signature)
                    .header(EVENT_ID_HEADER, &delivery.event_id)
                    .header(EVENT_TYPE_HEADER, delivery.event_type.as_str())
                    .body(delivery.body.clone());
                Ok(client.send(request).await)
            }
            Err(why) => Err(why),
        };
        let (status, error) = match sent {
            Err(why) => (None, Some(format!("not sent: {why}"))),
            Ok(sent) => match sent {
                Ok(r) if r.status().is_success() => (Some(r.status().as_u16()), None),
                Ok(r) => (
                    Some(r.status().as_u16()),
                    Some(format!("the receiver answered {}", r.status())),
                ),
                Err(e) if e.is_timeout() => (
                    None,
                    Some(format!(
                        "the receiver did not answer within {} s",
                        DELIVERY_TIMEOUT.as_secs()
                    )),
                ),
                Err(SendError::Refused(refusal)) => {
                    tracing::warn!(subscription = %subscription.id, %refusal, "webhook delivery refused");
                    (
                        None,
                        Some(format!(
                            "not sent: the address is refused: {refusal}; outbound calls do not go to loopback, private, link-local or metadata addresses unless the operator allows the range (crosswalk serve --allow-upstream CIDR)"
                        )),
                    )
                }
                Err(SendError::Http(e)) => {
                    (None, Some(format!("the receiver is unreachable: {e}")))
                }
            },
        };
        let mut entry = DeliveryAttempt {
            event_id: delivery.event_id.clone(),
            event_type: delivery.event_type,
            attempt: delivery.attempts,
            at: now(),
            outcome: "delivered".into(),
            status,
            error: error.clone(),
            next_attempt_at: None,
        };
        if error.is_none() {
            self.store.remove_delivery(&delivery.id).await?;
        } else if delivery.attempts >= MAX_ATTEMPTS {
            entry.outcome = "given_up".into();
            self.store.remove_delivery(&delivery.id).await?;
            tracing::warn!(event_id = %delivery.event_id, subscription = %subscription.id, "webhook given up");
        } else {
            let wait = retry_wait(self.backoff, delivery.attempts, rand_unit());
            delivery.due_ms = unix_ms() + wait.as_millis() as u64;
            entry.outcome = "failed".into();
            entry.next_attempt_at = Some(rfc3339_ms(delivery.due_ms));
            self.store.put_delivery(&delivery).await?;
        }
        self.store
            .log_delivery(&subscription.id, &entry, LOG_KEEP)
            .await?;
        Ok(())
    }
}

/// How long after its `attempts`-th failure a delivery is tried again: `backoff ×
/// 2^(attempts−1)`, capped at one hour, with equal jitter — half of it, plus `jitter`
/// (from 0 to 1) times the other half — so that the deliveries that failed together
/// (a receiver that was down) do not all come back at the same moment.
fn retry_wait(backoff: Duration, attempts: u32, jitter: f64) -> Duration {
    let factor = 1u32 << attempts.saturating_sub(1).min(20);
    let full = backoff
        .checked_mul(factor)
        .unwrap_or(Duration::MAX)
        .min(Duration::from_secs(3600));
    let half = full / 2;
    half + half.mul_f64(jitter.clamp(0.0, 1.0))
}

/// A random number from 0 to 1.
fn rand_unit() -> f64 {
    let bits = u64::from_le_bytes(crate::ids::random_bytes::<8>());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// Marks a subscription's deliveries as no longer under way, and wakes the worker, when
/// the task that attempts them ends.
struct Release {
    busy: Arc<Mutex<HashSet<String>>>,
    subscription: String,
    webhooks: Arc<Webhooks>,
}

impl Drop for Release {
    fn drop(&mut self) {
        self.busy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.subscription);
        self.webhooks.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_with_jitter_within_the_cap() {
        let b = Duration::from_secs(1);
        assert_eq!(retry_wait(b, 1, 0.0), Duration::from_millis(500));
        assert_eq!(retry_wait(b, 1, 1.0), Duration::from_secs(1));
        assert_eq!(retry_wait(b, 3, 0.5), Duration::from_secs(3));
        assert_eq!(retry_wait(b, 30, 1.0), Duration::from_secs(3600));
        assert_eq!(retry_wait(b, 30, 0.0), Duration::from_secs(1800));
        let waits: std::collections::BTreeSet<Duration> =
            (0..20).map(|_| retry_wait(b, 4, rand_unit())).collect();
        assert!(waits.len() > 1, "no jitter: {waits:?}");
        assert!(
            waits
                .iter()
                .all(|w| *w >= Duration::from_secs(4) && *w <= Duration::from_secs(8))
        );
    }

    #[test]
    fn signatures_verify_and_catch_changes() {
        let header = sign("whsec_1", 1_700_000_000, b"{\"a\":1}");
        // The same HMAC as Python's
        // hmac.new(b"whsec_1", b'1700000000.{"a":1}', hashlib.sha256).hexdigest().
        assert_eq!(
            header,
            "t=1700000000,v1=2bacf7b77f8a947e36777d445799846ce8389284516e77b94f239ef893b8def7"
        );
        assert_eq!(
            verify("whsec_1", &header, b"{\"a\":1}", 1_700_000_010, 300),
            Ok(())
        );
        assert!(verify("whsec_2", &header, b"{\"a\":1}", 1_700_000_010, 300).is_err());
        assert!(verify("whsec_1", &header, b"{\"a\":2}", 1_700_000_010, 300).is_err());
        let stale = verify("whsec_1", &header, b"{\"a\":1}", 1_700_001_000, 300).unwrap_err();
        assert!(stale.contains("more than 300 s"), "{stale}");
        assert!(verify("whsec_1", "v1=00", b"", 0, 300).is_err());
    }

    #[test]
    fn secrets_are_sealed_at_rest_and_open_only_with_the_key() {
        let dir = std::env::temp_dir().join(format!("crosswalk-whsec-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store: Arc<dyn Store> = Arc::new(crate::store::SledStore::open(&dir).unwrap());
        let sealer = Sealer::from_text(&"ab".repeat(32)).unwrap();
        let stored = stored_secret(Some(&sealer), "whk_1", "whsec_0123456789");
        assert!(stored.starts_with(SEALED) && !stored.contains("whsec_0123456789"));
        let sealed = Subscription {
            id: "whk_1".into(),
            tenant_id: "ten_1".into(),
            url: "http://127.0.0.1:9/hooks".into(),
            events: vec![EventType::MappingUpdated],
            created_at: now(),
            secret: stored,
        };
        let with_key = Webhooks::new(
            Arc::clone(&store),
            Duration::from_secs(1),
            Some(sealer),
            Policy::default(),
        );
        assert_eq!(with_key.secret(&sealed).unwrap(), "whsec_0123456789");
        let moved = Subscription {
            id: "whk_2".into(),
            ..sealed.clone()
        };
        assert!(
            with_key.secret(&moved).is_err(),
            "sealed for its own subscription"
        );
        let without = Webhooks::new(
            Arc::clone(&store),
            Duration::from_secs(1),
            None,
            Policy::default(),
        );
        let e = without.secret(&sealed).unwrap_err();
        assert!(e.contains("CROSSWALK_SECRET_KEY"), "{e}");
        let plain = Subscription {
            secret: "whsec_plain_0000".into(),
            ..sealed
        };
        assert_eq!(without.secret(&plain).unwrap(), "whsec_plain_0000");
        drop((with_key, without, store));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn event_types_have_their_wire_names() {
        for t in [
            EventType::ReauthRequired,
            EventType::Reauthorized,
            EventType::StatusChanged,
            EventType::MappingUpdated,
            EventType::PluginFailing,
            EventType::Test,
        ] {
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
    }

    #[test]
    fn signatures_with_more_than_hex_do_not_verify() {
        let header = sign("whsec_1", 1_700_000_000, b"{}");
        assert_eq!(
            verify("whsec_1", &header, b"{}", 1_700_000_000, 300),
            Ok(())
        );
        for junk in ["0", "zz", "-"] {
            assert_eq!(
                verify(
                    "whsec_1",
                    &format!("{header}{junk}"),
                    b"{}",
                    1_700_000_000,
                    300
                ),
                Err("the signature does not match".to_owned()),
                "{junk}"
            );
        }
    }
}
