//! How a replica follows what the others change on a shared store.
//!
//! [`follow`] reads the store's [`Change`]s: a new mapping version is loaded,
//! compiled and published here (when a request here has used that mapping; else the
//! first request loads the last version anyway); a changed connection is dropped
//! from the cache and its needs-reauth mark is taken into this replica's health; a
//! deleted one is forgotten; a delivery added to the webhook outbox wakes this
//! replica's deliverer, which delivers it unless another replica claimed it first. On
//! [`Change::Resync`], on falling behind, and every
//! `period` in any case (a notification may be lost without the listener noticing),
//! every loaded pipeline is compared with the store's last version and the caches
//! start over: how stale a replica can be is bounded by `period` whatever happens to
//! the notifications.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;

use super::{Pipelines, Records};
use crate::store::{Cached, Change, Store};
use crosswalk_core::model::Entity;

/// The slow check's default period: the longest a replica can miss a change whose
/// notification was lost.
pub const DEFAULT_RESYNC_PERIOD: Duration = Duration::from_secs(30);

/// What [`follow`] acts on.
pub struct Follower {
    /// The store, through the cache.
    pub store: Arc<Cached>,
    /// The pipelines to bring up to date.
    pub pipelines: Arc<Pipelines>,
    /// The records service (its upstreams and the monitor's health).
    pub records: Arc<Records>,
    /// How often every loaded pipeline is compared with the store anyway.
    pub period: Duration,
}

/// Follows the store's changes until the store stops announcing them; returns at once
/// for a store that announces none (one process: its own changes are applied where
/// they are made).
pub async fn follow(follower: Follower) {
    let Some(mut changes) = follower.store.changes() else {
        return;
    };
    let mut tick = tokio::time::interval(follower.period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            change = changes.recv() => match change {
                Ok(Change::Mapping { connection, entity, version, .. }) => {
                    tracing::debug!(%connection, %entity, version, "a mapping changed");
                    refresh(&follower.pipelines, &connection, entity).await;
                }
                Ok(Change::Connection { tenant, connection }) => {
                    connection_changed(&follower, &tenant, &connection).await;
                }
                Ok(Change::Outbox) => follower.records.monitor().webhooks().wake(),
                Ok(Change::Resync) | Err(RecvError::Lagged(_)) => resync(&follower).await,
                Err(RecvError::Closed) => return,
            },
            _ = tick.tick() => resync(&follower).await,
        }
    }
}

async fn refresh(pipelines: &Arc<Pipelines>, connection: &str, entity: Entity) {
    if let Err(e) = pipelines.refresh_async(connection, entity).await {
        tracing::error!(%connection, %entity, error = %e, "a changed mapping did not load: the version held goes on serving");
    }
}

async fn connection_changed(follower: &Follower, tenant: &str, connection: &str) {
    follower.store.forget_connection(tenant, connection);
    match follower.store.connection(tenant, connection).await {
        Ok(Some(c)) => follower.records.monitor().stored(&c),
        Ok(None) => {
            follower.pipelines.forget(connection);
            follower.records.forget(connection);
        }
        Err(e) => {
            tracing::error!(%connection, error = %e, "a changed connection could not be read");
        }
    }
}

/// Compares everything held with the store.
async fn resync(follower: &Follower) {
    follower.store.clear();
    follower.records.monitor().webhooks().wake();
    for (connection, entity) in follower.pipelines.loaded() {
        refresh(&follower.pipelines, &connection, entity).await;
    }
}
