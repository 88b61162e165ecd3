//! The limits a plugin runs under: data, with the defaults and ceilings in one place.
//!
//! A binding of a plugin to a connection's mapping may raise or lower each limit, but
//! never above [`Limits::CEILING`]. The wasm stack is the exception: wasmtime sets it
//! per engine, so it is [`STACK_BYTES`] for every plugin.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::PluginError;

/// The largest wasm stack a plugin may use, for every plugin (wasmtime's
/// `max_wasm_stack` is a setting of the engine, not of a store).
pub const STACK_BYTES: usize = 512 * 1024;

/// The largest component the host loads.
pub const MAX_COMPONENT_BYTES: usize = 64 * 1024 * 1024;

/// The limits of one plugin instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// CPU time of one call, in milliseconds, enforced by epoch interruption.
    pub timeout_ms: u64,
    /// The most linear memory the instance may grow to, in bytes.
    pub memory_bytes: u64,
    /// The largest input of one call (value or batch of records, as JSON), in bytes.
    pub max_input_bytes: u64,
    /// The largest output of one call, in bytes.
    pub max_output_bytes: u64,
    /// The most log output (log calls, stdout, stderr) kept per instance, in bytes.
    pub max_log_bytes: u64,
}

/// Changes to [`Limits::DEFAULT`] for one binding; absent keys keep the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitOverrides {
    /// See [`Limits::timeout_ms`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = Limits::CEILING.timeout_ms))]
    pub timeout_ms: Option<u64>,
    /// See [`Limits::memory_bytes`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = Limits::CEILING.memory_bytes))]
    pub memory_bytes: Option<u64>,
    /// See [`Limits::max_input_bytes`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = Limits::CEILING.max_input_bytes))]
    pub max_input_bytes: Option<u64>,
    /// See [`Limits::max_output_bytes`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = Limits::CEILING.max_output_bytes))]
    pub max_output_bytes: Option<u64>,
    /// See [`Limits::max_log_bytes`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = Limits::CEILING.max_log_bytes))]
    pub max_log_bytes: Option<u64>,
}

impl Limits {
    /// What a plugin gets unless its binding says otherwise.
    pub const DEFAULT: Limits = Limits {
        timeout_ms: 50,
        memory_bytes: 64 * 1024 * 1024,
        max_input_bytes: 4 * 1024 * 1024,
        max_output_bytes: 4 * 1024 * 1024,
        max_log_bytes: 64 * 1024,
    };

    /// The most a binding may ask for.
    pub const CEILING: Limits = Limits {
        timeout_ms: 5_000,
        memory_bytes: 512 * 1024 * 1024,
        max_input_bytes: 64 * 1024 * 1024,
        max_output_bytes: 64 * 1024 * 1024,
        max_log_bytes: 1024 * 1024,
    };

    /// The defaults with `overrides` applied, checked against the ceiling.
    pub fn with(overrides: &LimitOverrides) -> Result<Limits, PluginError> {
        let d = Limits::DEFAULT;
        let limits = Limits {
            timeout_ms: overrides.timeout_ms.unwrap_or(d.timeout_ms),
            memory_bytes: overrides.memory_bytes.unwrap_or(d.memory_bytes),
            max_input_bytes: overrides.max_input_bytes.unwrap_or(d.max_input_bytes),
            max_output_bytes: overrides.max_output_bytes.unwrap_or(d.max_output_bytes),
            max_log_bytes: overrides.max_log_bytes.unwrap_or(d.max_log_bytes),
        };
        limits.check()?;
        Ok(limits)
    }

    /// Checks every limit against the ceiling; zero is refused too.
    pub fn check(&self) -> Result<(), PluginError> {
        let c = Limits::CEILING;
        for (name, value, ceiling) in [
            ("timeout_ms", self.timeout_ms, c.timeout_ms),
            ("memory_bytes", self.memory_bytes, c.memory_bytes),
            ("max_input_bytes", self.max_input_bytes, c.max_input_bytes),
            (
                "max_output_bytes",
                self.max_output_bytes,
                c.max_output_bytes,
            ),
            ("max_log_bytes", self.max_log_bytes, c.max_log_bytes),
        ] {
            if value == 0 || value > ceiling {
                return Err(PluginError::LimitOutOfRange {
                    limit: name,
                    value,
                    ceiling,
                });
            }
        }
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_within_the_ceiling() {
        Limits::DEFAULT.check().unwrap();
        Limits::CEILING.check().unwrap();
    }

    #[test]
    fn overrides_apply_within_the_ceiling() {
        let l = Limits::with(&LimitOverrides {
            timeout_ms: Some(200),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(l.timeout_ms, 200);
        assert_eq!(l.memory_bytes, Limits::DEFAULT.memory_bytes);
        let e = Limits::with(&LimitOverrides {
            memory_bytes: Some(1 << 40),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("memory_bytes"), "{e}");
        assert!(
            Limits::with(&LimitOverrides {
                timeout_ms: Some(0),
                ..Default::default()
            })
            .is_err()
        );
    }
}
