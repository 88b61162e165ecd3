//! What a plugin writes to its log: `host.log` calls, and its stdout and stderr.
//!
//! An instance collects the lines of its calls within its `max_log_bytes`, each tagged
//! with the plugin and the function whose call wrote it; a session gathers them for the
//! batch, and whoever ran the batch keeps them (the service in the connection's plugin
//! log, the CLI on stderr).

use serde::{Deserialize, Serialize};

/// How much a line matters, as the plugin said (`host.log`), or as its stream implies
/// (stdout is `info`, stderr `warn`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    /// Detail for whoever debugs the plugin.
    Debug,
    /// Something worth knowing.
    Info,
    /// Something that may be wrong.
    Warn,
    /// Something that is wrong.
    Error,
}

impl LogLevel {
    /// Every level, from the least to the most severe.
    pub const ALL: [LogLevel; 4] = [
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Warn,
        LogLevel::Error,
    ];

    /// The level's name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogSource {
    /// A `host.log` call.
    Log,
    /// The plugin's stdout (`print`, `console.log`, `println!`).
    Stdout,
    /// The plugin's stderr (a panic message, a traceback).
    Stderr,
    /// The host, about the log itself (lines dropped over the limit).
    Host,
}

impl LogSource {
    /// The source's name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogSource::Log => "log",
            LogSource::Stdout => "stdout",
            LogSource::Stderr => "stderr",
            LogSource::Host => "host",
        }
    }

    /// The level a line of this source has when the plugin did not say.
    pub fn level(self) -> LogLevel {
        match self {
            LogSource::Stdout | LogSource::Log => LogLevel::Info,
            LogSource::Stderr | LogSource::Host => LogLevel::Warn,
        }
    }
}

/// One line of a plugin's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// How much it matters.
    pub level: LogLevel,
    /// Where it came from.
    pub source: LogSource,
    /// The plugin's name.
    pub plugin: String,
    /// The function whose call wrote it (instantiation counts as the first call's).
    pub function: String,
    /// What it said, without its line end.
    pub message: String,
}

impl std::fmt::Display for LogLine {
    /// `plugin <name> <function>: <source or level>: <message>`, as the CLI prints it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let said = match self.source {
            LogSource::Log => self.level.as_str(),
            other => other.as_str(),
        };
        write!(
            f,
            "plugin {} {}: {said}: {}",
            self.plugin, self.function, self.message
        )
    }
}
