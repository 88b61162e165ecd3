//! The store of one plugin instance: an empty WASI context, the memory limiter, and a
//! bounded log that collects `host.log` calls and stdout/stderr.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::Limits;
use super::bindings::crosswalk::plugin::host::{self, Level};

/// A limit that a call broke, carried out of wasmtime as the trap's cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Broken {
    Memory,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Broken::Memory => write!(f, "memory limit exceeded"),
        }
    }
}

impl std::error::Error for Broken {}

/// The data of a plugin's store.
pub(super) struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    memory_bytes: usize,
    pub(super) log: Log,
}

impl State {
    pub(super) fn new(limits: &Limits) -> State {
        let log = Log::new(limits.max_log_bytes as usize);
        // Deny by default: no preopened directories, no environment, no arguments,
        // no stdin, no network (the sockets interfaces are refused at load anyway).
        let wasi = WasiCtxBuilder::new()
            .stdout(LogStream {
                log: log.clone(),
                prefix: "stdout",
            })
            .stderr(LogStream {
                log: log.clone(),
                prefix: "stderr",
            })
            .build();
        State {
            wasi,
            table: ResourceTable::new(),
            memory_bytes: usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX),
            log,
        }
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wasmtime::ResourceLimiter for State {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            // An error, not `Ok(false)`: the call traps at once with a cause the host
            // can name, instead of the guest's allocator aborting with `unreachable`.
            return Err(wasmtime::Error::new(Broken::Memory));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

impl host::Host for State {
    fn log(&mut self, level: Level, message: String) {
        let level = match level {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        self.log.push(level, &message);
    }
}

/// Log lines of one instance, kept up to a byte budget; what does not fit is counted.
#[derive(Clone)]
pub(super) struct Log {
    inner: Arc<Mutex<LogInner>>,
}

struct LogInner {
    lines: Vec<String>,
    bytes: usize,
    budget: usize,
    dropped: usize,
}

impl Log {
    fn new(budget: usize) -> Log {
        Log {
            inner: Arc::new(Mutex::new(LogInner {
                lines: Vec::new(),
                bytes: 0,
                budget,
                dropped: 0,
            })),
        }
    }

    pub(super) fn push(&self, level: &str, message: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let line = format!("{level}: {}", message.trim_end());
        if inner.bytes + line.len() > inner.budget {
            inner.dropped += 1;
            return;
        }
        inner.bytes += line.len();
        inner.lines.push(line);
    }

    /// Takes the lines so far, with a last line saying how many were dropped.
    pub(super) fn take(&self) -> Vec<String> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut lines = std::mem::take(&mut inner.lines);
        if inner.dropped > 0 {
            lines.push(format!(
                "log: {} more lines dropped (max_log_bytes is {})",
                inner.dropped, inner.budget
            ));
        }
        inner.bytes = 0;
        inner.dropped = 0;
        lines
    }
}

/// stdout or stderr of a plugin: accepts every write (a plugin that prints must not
/// fail because of it) and keeps complete lines in the log, within its budget.
struct LogStream {
    log: Log,
    prefix: &'static str,
}

struct LogWriter {
    log: Log,
    prefix: &'static str,
    pending: Vec<u8>,
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LogWriter {
            log: self.log.clone(),
            prefix: self.prefix,
            pending: Vec::new(),
        })
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(tokio::io::sink())
    }
}

impl LogWriter {
    fn flush_lines(&mut self, all: bool) {
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            self.log.push(self.prefix, &String::from_utf8_lossy(&line));
        }
        // Keep a partial line only while it is short; a plugin printing without
        // newlines must not grow the buffer without bound.
        if all || self.pending.len() > 4096 {
            let rest = std::mem::take(&mut self.pending);
            if !rest.is_empty() {
                self.log.push(self.prefix, &String::from_utf8_lossy(&rest));
            }
        }
    }
}

impl OutputStream for LogWriter {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.pending.extend_from_slice(&bytes);
        self.flush_lines(false);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        self.flush_lines(true);
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

#[async_trait::async_trait]
impl Pollable for LogWriter {
    async fn ready(&mut self) {}
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        self.flush_lines(true);
    }
}
