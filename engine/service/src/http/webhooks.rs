//! The webhook subscription endpoints: subscribe, list, look at, unsubscribe, read a
//! subscription's delivery log, and send it a test event.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::body::json_body;
use super::error::ErrorCode;
use super::outbound::outbound_url;
use super::{ApiError, AppState, Caller, List};
use crate::ids::random_id;
use crate::quota::Quotas;
use crate::store::now;
use crate::webhook::{DeliveryAttempt, EventType, Subscription};

/// A new subscription.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    /// Where events are posted: an http or https URL, without a user or password, at
    /// an address the server's outbound policy allows (no loopback, private,
    /// link-local or metadata address unless the operator allows its range).
    #[schemars(url)]
    pub url: String,
    /// The events to receive (at least one).
    #[schemars(length(min = 1))]
    pub events: Vec<EventType>,
    /// The signing secret (at least 16 characters); one is made when none is given.
    #[serde(default)]
    #[schemars(length(min = 16))]
    pub secret: Option<String>,
}

/// A created subscription and its secret (shown this once).
#[derive(Serialize, JsonSchema)]
pub struct SubscriptionCreated {
    /// The subscription.
    pub subscription: Subscription,
    /// The secret that signs its deliveries.
    pub secret: String,
}

fn invalid(message: String) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::InvalidSubscription,
        message,
    )
}

pub(super) async fn subscribe(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let NewSubscription {
        url,
        mut events,
        secret,
    } = json_body(body)?;
    let quotas = state.quotas();
    quotas.url("url", &url)?;
    if let Some(secret) = &secret {
        quotas.secret("secret", secret)?;
    }
    outbound_url(
        &state,
        "url",
        &url,
        "; deliveries are signed with the subscription's secret instead",
        ErrorCode::InvalidSubscription,
    )?;
    if events.is_empty() {
        return Err(invalid(
            "events is empty: name at least one event type".into(),
        ));
    }
    let mut seen = Vec::with_capacity(events.len());
    events.retain(|e| {
        let first = !seen.contains(e);
        seen.push(*e);
        first
    });
    let secret = match secret {
        Some(s) if s.chars().count() < 16 => {
            return Err(invalid(
                "secret is shorter than 16 characters; leave it out to have one made".into(),
            ));
        }
        Some(s) => s,
        None => random_id("whsec"),
    };
    let id = random_id("whk");
    let stored = crate::webhook::stored_secret(state.inner.records.sealer(), &id, &secret);
    let mut subscription = Subscription {
        id,
        tenant_id: caller.0.tenant_id.clone(),
        url,
        events,
        created_at: now(),
        secret: stored,
    };
    let tenant = &subscription.tenant_id;
    {
        let _counting = state.counting(tenant).await?;
        let held = state.inner.store.subscriptions(tenant).await?.len();
        Quotas::one_more("max_webhooks", quotas.max_webhooks, held, "webhooks")?;
        state.inner.store.put_subscription(&subscription).await?;
    }
    subscription.secret.clear();
    Ok((
        StatusCode::CREATED,
        Json(SubscriptionCreated {
            subscription,
            secret,
        }),
    )
        .into_response())
}

fn hidden(mut s: Subscription) -> Subscription {
    s.secret.clear();
    s
}

pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<List<Subscription>>, ApiError> {
    let data = state
        .inner
        .store
        .subscriptions(&caller.0.tenant_id)
        .await?
        .into_iter()
        .map(hidden)
        .collect();
    Ok(Json(List { data }))
}

async fn find(state: &AppState, caller: &Caller, id: &str) -> Result<Subscription, ApiError> {
    state
        .inner
        .store
        .subscription(&caller.0.tenant_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook subscription", id))
}

pub(super) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Subscription>, ApiError> {
    Ok(Json(hidden(find(&state, &caller, &id).await?)))
}

pub(super) async fn unsubscribe(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state
        .inner
        .store
        .delete_subscription(&caller.0.tenant_id, &id)
        .await?
    {
        return Err(ApiError::not_found("webhook subscription", &id));
    }
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<List<DeliveryAttempt>>, ApiError> {
    let s = find(&state, &caller, &id).await?;
    Ok(Json(List {
        data: state.inner.store.delivery_log(&s.id).await?,
    }))
}

/// A test event, queued.
#[derive(Serialize, JsonSchema)]
pub struct TestQueued {
    /// The event's id: its deliveries carry it in `Crosswalk-Event-Id` and in the log.
    pub event_id: String,
}

/// Queues a `webhook.test` event for the subscription: delivered, signed, retried and
/// logged as any other event. One at a time: while a test is still in the outbox,
/// another is 409 `test_pending`.
pub(super) async fn test(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let s = find(&state, &caller, &id).await?;
    // Look for a pending test and queue one with no other in between.
    let _counting = state.counting(&caller.0.tenant_id).await?;
    match state.inner.webhooks.test(s).await? {
        Ok(event_id) => Ok((StatusCode::ACCEPTED, Json(TestQueued { event_id })).into_response()),
        Err(pending) => Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::TestPending,
            format!(
                "test event {} is still in this subscription's outbox ({} attempts so far): a subscription has one test at a time; its delivery log says how it goes",
                pending.event_id, pending.attempts
            ),
        )
        .details(serde_json::json!({"event_id": pending.event_id, "attempts": pending.attempts}))),
    }
}
