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

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// A flag that stops a request's plugin work; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Cancel {
    inner: Arc<CancelInner>,
}

#[derive(Debug, Default)]
struct CancelInner {
    cancelled: AtomicBool,
    /// The tasks waiting in [`Cancel::cancelled`] (guests sleeping in host code).
    waiters: Mutex<Vec<Waker>>,
}

impl Cancel {
    /// A flag that is not set.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Sets the flag: running calls stop at the next epoch tick, sleeping ones wake.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::Release);
        let waiters = std::mem::take(
            &mut *self
                .inner
                .waiters
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        waiters.into_iter().for_each(Waker::wake);
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

    /// Waits until the flag is set; ready at once when it is.
    pub fn cancelled(&self) -> Cancelled<'_> {
        Cancelled(self)
    }
}

/// The future of [`Cancel::cancelled`]: ready once the flag is set.
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Cancelled<'a>(&'a Cancel);

impl Future for Cancelled<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let inner = &self.0.inner;
        if inner.cancelled.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        let mut waiters = inner.waiters.lock().unwrap_or_else(PoisonError::into_inner);
        // Checked again under the lock: `cancel` sets the flag before it takes the
        // wakers, so a waker registered here is either taken or sees the flag.
        if inner.cancelled.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
            waiters.push(cx.waker().clone());
        }
        Poll::Pending
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

    /// Polls `future` on this thread until it is ready, parking in between.
    fn block_on<F: Future>(future: F) -> F::Output {
        struct Unpark(std::thread::Thread);
        impl std::task::Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut future = std::pin::pin!(future);
        loop {
            if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
                return out;
            }
            std::thread::park_timeout(Duration::from_secs(5));
        }
    }

    #[test]
    fn a_waiter_wakes_when_the_flag_is_set() {
        let cancel = Cancel::new();
        let waiter = std::thread::spawn({
            let cancel = cancel.clone();
            move || block_on(cancel.cancelled())
        });
        // The waiter may or may not have registered yet: both orders must wake it.
        std::thread::sleep(Duration::from_millis(20));
        cancel.cancel();
        waiter.join().expect("woken");
        // A flag set before the wait is seen at once.
        block_on(cancel.cancelled());
        // A pending waiter registers its waker.
        let fresh = Cancel::new();
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut waiting = std::pin::pin!(fresh.cancelled());
        assert!(waiting.as_mut().poll(&mut cx).is_pending());
        assert_eq!(fresh.inner.waiters.lock().unwrap().len(), 1);
        fresh.cancel();
        assert!(waiting.as_mut().poll(&mut cx).is_ready());
    }
}
