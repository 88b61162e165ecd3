//! The time one request's plugin work may take, and the flag that stops it.
//!
//! A [`Budget`] is the plugin time of one session (a JSON request, or one batch of an
//! NDJSON stream): the time spent in plugin calls, instantiation included, over every
//! record and every plugin of the session. Each call runs until its own `timeout_ms`
//! or until the budget is spent, whichever comes first; once it is spent, the calls
//! left fail at once, naming the budget. A [`Cancel`] is shared by the async side of a
//! request and the blocking thread that runs its plugins: when the request's future is
//! dropped (its client went away), a [`CancelGuard`] sets it, and the running call stops
//! at the next epoch tick (or its sleep ends), and the calls left fail at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// A flag that stops a request's plugin work; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Cancel {
    inner: Arc<CancelInner>,
}

#[derive(Debug, Default)]
struct CancelInner {
    cancelled: AtomicBool,
    /// Wakes guests sleeping in host code.
    notify: Notify,
}

impl Cancel {
    /// A flag that is not set.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Sets the flag: running calls stop at the next epoch tick, sleeping ones wake.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::Release);
        self.inner.notify.notify_waiters();
    }

    /// Whether the flag is set.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::Acquire)
    }

    /// A guard that sets the flag when it is dropped: held by the future of a request,
    /// so that dropping the future (the client went away) stops the work it started on
    /// the blocking pool.
    pub fn guard(&self) -> CancelGuard {
        CancelGuard(self.clone())
    }

    /// Waits until the flag is set.
    pub(super) async fn cancelled(&self) {
        let notified = self.inner.notify.notified();
        tokio::pin!(notified);
        // Registered before the flag is read, so that a `cancel` in between is seen.
        notified.as_mut().enable();
        if self.is_cancelled() {
            return;
        }
        notified.await;
    }
}

/// Sets its [`Cancel`] when dropped.
#[derive(Debug)]
#[must_use = "the flag is set when the guard is dropped"]
pub struct CancelGuard(Cancel);

impl Drop for CancelGuard {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// The plugin time of one session, and its cancel flag. Shared by the instances of the
/// session (one thread at a time uses them).
#[derive(Debug)]
pub struct Budget {
    /// `None`: no budget (the command line), only each call's own limit.
    limit: Option<Duration>,
    spent_nanos: AtomicU64,
    cancel: Cancel,
}

impl Budget {
    /// A budget of `limit` in total, stopped by `cancel`.
    pub fn new(limit: Duration, cancel: Cancel) -> Budget {
        Budget {
            limit: Some(limit),
            spent_nanos: AtomicU64::new(0),
            cancel,
        }
    }

    /// No budget and no cancel: each call has its own time limit only.
    pub fn unlimited() -> Budget {
        Budget {
            limit: None,
            spent_nanos: AtomicU64::new(0),
            cancel: Cancel::new(),
        }
    }

    /// The budget, in milliseconds; `None` when there is none.
    pub fn limit_ms(&self) -> Option<u64> {
        self.limit
            .map(|l| u64::try_from(l.as_millis()).unwrap_or(u64::MAX))
    }

    /// What is left of it; `None` when there is no budget.
    pub fn remaining(&self) -> Option<Duration> {
        let spent = Duration::from_nanos(self.spent_nanos.load(Ordering::Relaxed));
        self.limit.map(|l| l.saturating_sub(spent))
    }

    /// Counts `took` as spent.
    pub fn spend(&self, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .spent_nanos
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                Some(s.saturating_add(nanos))
            });
    }

    /// The cancel flag.
    pub fn cancel(&self) -> &Cancel {
        &self.cancel
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_is_spent_by_what_the_calls_took() {
        let budget = Budget::new(Duration::from_millis(100), Cancel::new());
        assert_eq!(budget.remaining(), Some(Duration::from_millis(100)));
        budget.spend(Duration::from_millis(60));
        assert_eq!(budget.remaining(), Some(Duration::from_millis(40)));
        budget.spend(Duration::from_millis(60));
        assert_eq!(budget.remaining(), Some(Duration::ZERO));
        assert_eq!(budget.limit_ms(), Some(100));
        assert_eq!(Budget::unlimited().remaining(), None);
    }

    #[test]
    fn dropping_the_guard_sets_the_flag() {
        let cancel = Cancel::new();
        let guard = cancel.guard();
        assert!(!cancel.is_cancelled());
        drop(guard);
        assert!(cancel.is_cancelled());
    }

    #[tokio::test]
    async fn a_waiter_wakes_when_the_flag_is_set() {
        let cancel = Cancel::new();
        let waiter = tokio::spawn({
            let cancel = cancel.clone();
            async move { cancel.cancelled().await }
        });
        tokio::task::yield_now().await;
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .unwrap();
        // A flag set before the wait is seen at once.
        tokio::time::timeout(Duration::from_secs(5), cancel.cancelled())
            .await
            .expect("already set");
    }
}
