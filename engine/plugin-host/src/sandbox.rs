//! The store of one plugin instance: an empty WASI context (no files, no environment,
//! no network), the memory limiter, the deadline and cancel flag its epoch callback
//! checks, and a bounded log that collects `host.log` calls and stdout/stderr.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::clocks::HostMonotonicClock;
use wasmtime_wasi::p2::{DynPollable, OutputStream, Pollable, StreamError};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::Limits;
use super::bindings::{v0_1, v0_2};
use super::budget::Cancel;

/// A limit that a call broke, carried out of wasmtime as the trap's cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Broken {
    Memory,
    /// The call's deadline passed: its time limit, or the request's budget.
    Deadline,
    /// The request was cancelled (its client went away).
    Cancelled,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Broken::Memory => write!(f, "memory limit exceeded"),
            Broken::Deadline => write!(f, "deadline passed"),
            Broken::Cancelled => write!(f, "cancelled"),
        }
    }
}

impl std::error::Error for Broken {}

/// The data of a plugin's store.
pub(super) struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    /// The instance's memory limit, over all its linear memories together.
    memory_bytes: usize,
    /// The bytes of linear memory the instance has now, over all its memories.
    memory_used: usize,
    /// When the running call's deadline passes: the epoch callback stops the guest at
    /// the first tick after it, and no sleep of the guest lasts longer.
    pub(super) deadline: Instant,
    /// The request's cancel flag: the epoch callback stops the guest at the first tick
    /// after it is set, and it wakes a sleeping guest.
    pub(super) cancel: Cancel,
    /// The start of the guest's monotonic clock.
    clock_base: Instant,
    pub(super) log: Log,
}

impl State {
    pub(super) fn new(limits: &Limits, cancel: Cancel) -> State {
        let log = Log::new(limits.max_log_bytes as usize);
        let clock_base = Instant::now();
        // Deny everything: no preopened directories, no environment, no arguments, no
        // stdin, and no network. The sockets interfaces are linked (runtimes import
        // them), but no TCP or UDP socket can be made, no name resolves, and no address
        // passes the check; each says so to the guest as an error. These are
        // wasmtime-wasi's defaults, spelled out so that they cannot change unseen.
        let wasi = WasiCtxBuilder::new()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .stdout(LogStream {
                log: log.clone(),
                prefix: "stdout",
            })
            .stderr(LogStream {
                log: log.clone(),
                prefix: "stderr",
            })
            .monotonic_clock(Clock { base: clock_base })
            .build();
        State {
            wasi,
            table: ResourceTable::new(),
            memory_bytes: usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX),
            memory_used: 0,
            deadline: clock_base + Duration::from_millis(limits.timeout_ms),
            cancel,
            clock_base,
            log,
        }
    }

    /// A pollable that is ready after `wait`, or at the call's deadline if sooner.
    fn capped_sleep(&mut self, wait: Duration) -> wasmtime::Result<Resource<DynPollable>> {
        let until = (Instant::now() + wait).min(self.deadline);
        let sleep = self.table.push(CappedSleep {
            until: tokio::time::Instant::from_std(until),
            cancel: self.cancel.clone(),
        })?;
        wasmtime_wasi::p2::subscribe(&mut self.table, sleep)
    }
}

/// The guest's monotonic clock: nanoseconds since the instance was created.
struct Clock {
    base: Instant,
}

impl HostMonotonicClock for Clock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// A guest's sleep, cut short at the call's deadline or when the request is cancelled.
struct CappedSleep {
    until: tokio::time::Instant,
    cancel: Cancel,
}

#[async_trait::async_trait]
impl Pollable for CappedSleep {
    async fn ready(&mut self) {
        tokio::select! {
            () = tokio::time::sleep_until(self.until) => {}
            () = self.cancel.cancelled() => {}
        }
    }
}

/// What the epoch callback of every store does at each tick while the guest runs:
/// stop it when the request is cancelled or the call's deadline has passed (checked
/// against the clock, so that a tick thread slowed by a busy machine does not stretch
/// the deadline), else look again at the next tick.
pub(super) fn on_tick(state: &State) -> wasmtime::Result<wasmtime::UpdateDeadline> {
    if state.cancel.is_cancelled() {
        return Err(wasmtime::Error::new(Broken::Cancelled));
    }
    if Instant::now() >= state.deadline {
        return Err(wasmtime::Error::new(Broken::Deadline));
    }
    Ok(wasmtime::UpdateDeadline::Continue(1))
}

/// Replaces WASI's clock subscriptions, through which a guest could block in host code
/// (where the epoch deadline cannot interrupt it) for as long as it likes: a sleep now
/// ends at the call's deadline at the latest, and the deadline then traps the guest as
/// soon as it runs again.
pub(super) fn cap_sleeps(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut clock = linker.instance("wasi:clocks/monotonic-clock@0.2.12")?;
    clock.func_wrap(
        "subscribe-duration",
        |mut store: StoreContextMut<'_, State>, (nanos,): (u64,)| {
            Ok((store.data_mut().capped_sleep(Duration::from_nanos(nanos))?,))
        },
    )?;
    clock.func_wrap(
        "subscribe-instant",
        |mut store: StoreContextMut<'_, State>, (when,): (u64,)| {
            let state = store.data_mut();
            let now = u64::try_from(state.clock_base.elapsed().as_nanos()).unwrap_or(u64::MAX);
            Ok((state.capped_sleep(Duration::from_nanos(when.saturating_sub(now)))?,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
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
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Counted over every memory of the instance: a component with several core
        // modules has several memories, and the limit is for all of them together.
        let used = self
            .memory_used
            .saturating_add(desired.saturating_sub(current));
        if used > self.memory_bytes {
            // An error, not `Ok(false)`: the call traps at once with a cause the host
            // can name, instead of the guest's allocator aborting with `unreachable`.
            return Err(wasmtime::Error::new(Broken::Memory));
        }
        self.memory_used = used;
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

/// `host` of both versions of the world: the same logging.
macro_rules! host_log {
    ($v:ident) => {
        impl $v::crosswalk::plugin::host::Host for State {
            fn log(&mut self, level: $v::crosswalk::plugin::host::Level, message: String) {
                use $v::crosswalk::plugin::host::Level;
                let level = match level {
                    Level::Debug => "debug",
                    Level::Info => "info",
                    Level::Warn => "warn",
                    Level::Error => "error",
                };
                self.log.push(level, &message);
            }
        }
    };
}

host_log!(v0_1);
host_log!(v0_2);

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

    /// Takes the lines so far, and how many did not fit the budget.
    pub(super) fn take(&self) -> (Vec<String>, usize) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let lines = std::mem::take(&mut inner.lines);
        let dropped = std::mem::take(&mut inner.dropped);
        inner.bytes = 0;
        (lines, dropped)
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
