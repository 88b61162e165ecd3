//! Each connection's plugin log: what its plugins wrote (`host.log`, stdout, stderr)
//! while mapping its records, kept in the store beside its error log.
//!
//! Lines reach it the way errors reach the error log: the [`super::Monitor`] queues
//! them with the request that ran the plugins, and its writer appends them, in order,
//! off the request path. Both ends are bounded: an instance keeps at most its
//! binding's `max_log_bytes` per request, the queue at most
//! [`MAX_QUEUED_PLUGIN_LOG_LINES`] lines (more are dropped and counted), and the store
//! the newest [`PLUGIN_LOG_KEEP`] lines of each connection.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crosswalk_core::model::Entity;
use crosswalk_plugin_host::{LogLevel, LogLine, LogSource};

/// Plugin log lines kept per connection (the newest).
pub const PLUGIN_LOG_KEEP: usize = 1000;

/// Plugin log lines waiting for the writer at most: past that (a store that cannot
/// keep up), new lines are dropped and counted.
pub const MAX_QUEUED_PLUGIN_LOG_LINES: usize = 10_000;

/// One line of a connection's plugin log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PluginLogEntry {
    /// When the request that wrote it was mapped, RFC 3339.
    pub at: String,
    /// The entity being mapped (or written).
    pub entity: Option<Entity>,
    /// How much it matters: as given to `host.log`; `info` for stdout, `warn` for
    /// stderr and for the host's own notes.
    pub level: LogLevel,
    /// `log` (a `host.log` call), `stdout`, `stderr`, or `host` (a note of the host's:
    /// lines dropped over `max_log_bytes`).
    pub source: LogSource,
    /// The plugin's name.
    pub plugin: String,
    /// The function whose call wrote it (empty for the host's notes).
    pub function: String,
    /// What it said.
    pub message: String,
    /// The request that ran it (`x-request-id`).
    #[serde(default)]
    pub request_id: Option<String>,
}

impl PluginLogEntry {
    /// The entry of `line`, written while mapping `entity` for `request_id`.
    pub fn new(line: LogLine, at: &str, entity: Entity, request_id: Option<&str>) -> Self {
        PluginLogEntry {
            at: at.to_owned(),
            entity: Some(entity),
            level: line.level,
            source: line.source,
            plugin: line.plugin,
            function: line.function,
            message: line.message,
            request_id: request_id.map(str::to_owned),
        }
    }
}
