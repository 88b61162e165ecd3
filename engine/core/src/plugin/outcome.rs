//! How plugin calls end, counted for the service's metrics: a call that returns, one
//! that runs out of time (its own or the request's budget), one that breaks the memory
//! or stack limit, one that traps, and one that fails otherwise (the plugin's own
//! error, oversized or bad output); and the calls that are not the plugin's failures:
//! stopped because the request was cancelled, or refused for the host's capacity.

use super::PluginError;

/// How one plugin call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CallOutcome {
    /// It returned a result.
    Ok,
    /// It ran out of time.
    Timeout,
    /// It tried to grow memory past its limit.
    Memory,
    /// It overflowed the wasm stack.
    Stack,
    /// It trapped otherwise: a panic, an unreachable, a bad memory access.
    Trap,
    /// It failed without trapping: the plugin's own error, a size limit, bad output,
    /// an instance that could not be created.
    Error,
    /// It ran until the request's plugin time budget was spent, or found it spent.
    Budget,
    /// It was stopped, or not run, because the request was cancelled: not a failure
    /// of the plugin.
    Cancelled,
    /// The host's pool had no instance for it: not a failure of the plugin.
    Capacity,
}

impl CallOutcome {
    /// Every outcome, in the order of [`CallCounts`].
    pub const ALL: [CallOutcome; 9] = [
        CallOutcome::Ok,
        CallOutcome::Timeout,
        CallOutcome::Memory,
        CallOutcome::Stack,
        CallOutcome::Trap,
        CallOutcome::Error,
        CallOutcome::Budget,
        CallOutcome::Cancelled,
        CallOutcome::Capacity,
    ];

    /// Its name, as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Ok => "ok",
            CallOutcome::Timeout => "timeout",
            CallOutcome::Memory => "memory",
            CallOutcome::Stack => "stack",
            CallOutcome::Trap => "trap",
            CallOutcome::Error => "error",
            CallOutcome::Budget => "budget",
            CallOutcome::Cancelled => "cancelled",
            CallOutcome::Capacity => "capacity",
        }
    }

    /// Whether it is a failure of the plugin, for the connection's health: every
    /// outcome but `ok`, `cancelled` and `capacity`.
    pub fn is_failure(self) -> bool {
        !matches!(
            self,
            CallOutcome::Ok | CallOutcome::Cancelled | CallOutcome::Capacity
        )
    }

    /// The outcome of a call that failed with `error`.
    pub fn of(error: &PluginError) -> CallOutcome {
        match error {
            PluginError::Timeout { .. } => CallOutcome::Timeout,
            PluginError::Memory { .. } => CallOutcome::Memory,
            PluginError::Stack { .. } => CallOutcome::Stack,
            PluginError::Trap { .. } => CallOutcome::Trap,
            PluginError::Budget { .. } => CallOutcome::Budget,
            PluginError::Cancelled { .. } => CallOutcome::Cancelled,
            PluginError::Capacity { .. } => CallOutcome::Capacity,
            _ => CallOutcome::Error,
        }
    }
}

/// How many calls ended each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallCounts([u64; CallOutcome::ALL.len()]);

impl CallCounts {
    /// Counts one call, which failed with `error` or returned.
    pub fn count(&mut self, error: Option<&PluginError>) {
        let outcome = error.map_or(CallOutcome::Ok, CallOutcome::of);
        self.0[outcome as usize] += 1;
    }

    /// The calls that ended as `outcome`.
    pub fn get(&self, outcome: CallOutcome) -> u64 {
        self.0[outcome as usize]
    }

    /// All calls.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The calls that failed for the plugin's sake (see [`CallOutcome::is_failure`]).
    pub fn failures(&self) -> u64 {
        self.iter()
            .filter(|(o, _)| o.is_failure())
            .map(|(_, n)| n)
            .sum()
    }

    /// These counts without the calls that ended as `outcome`.
    pub fn without(mut self, outcome: CallOutcome) -> CallCounts {
        self.0[outcome as usize] = 0;
        self
    }

    /// The outcomes with at least one call, and their counts.
    pub fn iter(&self) -> impl Iterator<Item = (CallOutcome, u64)> + '_ {
        CallOutcome::ALL
            .into_iter()
            .map(|o| (o, self.get(o)))
            .filter(|(_, n)| *n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_outcome_in_its_own_slot() {
        let mut counts = CallCounts::default();
        counts.count(None);
        counts.count(None);
        counts.count(Some(&PluginError::Timeout {
            plugin: "p".into(),
            function: "f".into(),
            limit_ms: 5,
        }));
        counts.count(Some(&PluginError::NotWasm));
        assert_eq!(counts.get(CallOutcome::Ok), 2);
        assert_eq!(counts.get(CallOutcome::Timeout), 1);
        assert_eq!(counts.get(CallOutcome::Error), 1);
        assert_eq!(counts.get(CallOutcome::Trap), 0);
        assert_eq!(counts.total(), 4);
        counts.count(Some(&PluginError::Cancelled {
            plugin: "p".into(),
            function: "f".into(),
        }));
        assert_eq!((counts.total(), counts.failures()), (5, 2));
        counts = counts.without(CallOutcome::Cancelled);
        assert_eq!(counts.without(CallOutcome::Error).total(), 3);
        assert_eq!(
            counts
                .iter()
                .map(|(o, n)| (o.as_str(), n))
                .collect::<Vec<_>>(),
            [("ok", 2), ("timeout", 1), ("error", 1)]
        );
    }
}
