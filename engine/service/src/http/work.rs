//! Where handlers run work that may take long: off the async workers ([`blocking`]),
//! and within a lease of the tenant's share of the plugin pool ([`plugin_grant`]).

use crosswalk_plugin_host::{Demand, Grant};

use super::{ApiError, AppState};

/// Leases what `demand` asks of the plugin pool from `tenant`'s share: a busy share
/// is 503 `busy` with `Retry-After`, a demand over the share 422 `limit_exceeded`.
pub(crate) async fn plugin_grant(
    state: &AppState,
    tenant: &str,
    demand: Demand,
) -> Result<Grant, ApiError> {
    Ok(state.inner.host.pool().grant(tenant, demand).await?)
}

/// Runs work that may compile, call plugins or read much of the store off the async
/// workers.
pub(super) async fn blocking<T, E>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    E: Into<ApiError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(Into::into)
}
