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

use super::bindings::{v0_1, v0_2};
use super::budget::Cancel;
use super::{Limits, LogLevel, LogSource};

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
    /// Epoch ticks that found the guest running.
    pub(super) ticks: u64,
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
                source: LogSource::Stdout,
            })
            .stderr(LogStream {
                log: log.clone(),
                source: LogSource::Stderr,
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
            ticks: 0,
        }
    }

    /// The bytes of linear memory the instance has now, over all its memories.
    pub(super) fn memory_used(&self) -> usize {
        self.memory_used
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
                    Level::Debug => LogLevel::Debug,
                    Level::Info => LogLevel::Info,
                    Level::Warn => LogLevel::Warn,
                    Level::Error => LogLevel::Error,
                };
                self.log.push(level, LogSource::Log, &message);
            }
        }
    };
}

host_log!(v0_1);
host_log!(v0_2);

/// A line of one instance's log, before the host knows which call wrote it.
pub(super) struct RawLine {
    pub(super) level: LogLevel,
    pub(super) source: LogSource,
    pub(super) message: String,
}

/// The longest partial line of stdout or stderr kept while waiting for its end: a
/// plugin printing without newlines must not grow the buffer without bound.
const MAX_PARTIAL_LINE: usize = 4096;

/// Log lines of one instance, kept up to a byte budget; what does not fit is counted.
/// stdout and stderr are cut into lines here, whatever their writes are: a runtime
/// may write a line in pieces, each through a stream of its own (CPython does).
#[derive(Clone)]
pub(super) struct Log {
    inner: Arc<Mutex<LogInner>>,
}

struct LogInner {
    lines: Vec<RawLine>,
    bytes: usize,
    budget: usize,
    dropped: usize,
    /// The unfinished line of stdout, and of stderr.
    partial: [Vec<u8>; 2],
}

impl LogInner {
    fn push(&mut self, level: LogLevel, source: LogSource, message: &str) {
        let message = message.trim_end();
        if self.bytes + message.len() > self.budget {
            self.dropped += 1;
            return;
        }
        self.bytes += message.len();
        self.lines.push(RawLine {
            level,
            source,
            message: message.to_owned(),
        });
    }

    /// Logs the complete lines of a stream's partial line; the rest too when `all`,
    /// or when it has grown past [`MAX_PARTIAL_LINE`].
    fn cut(&mut self, source: LogSource, all: bool) {
        let i = usize::from(source == LogSource::Stderr);
        let mut pending = std::mem::take(&mut self.partial[i]);
        let mut start = 0;
        while let Some(end) = pending[start..].iter().position(|b| *b == b'\n') {
            let line = String::from_utf8_lossy(&pending[start..start + end]).into_owned();
            self.push(source.level(), source, &line);
            start += end + 1;
        }
        pending.drain(..start);
        if (all || pending.len() > MAX_PARTIAL_LINE) && !pending.is_empty() {
            let line = String::from_utf8_lossy(&pending).into_owned();
            self.push(source.level(), source, &line);
            pending.clear();
        }
        self.partial[i] = pending;
    }
}

impl Log {
    fn new(budget: usize) -> Log {
        Log {
            inner: Arc::new(Mutex::new(LogInner {
                lines: Vec::new(),
                bytes: 0,
                budget,
                dropped: 0,
                partial: [Vec::new(), Vec::new()],
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn push(&self, level: LogLevel, source: LogSource, message: &str) {
        self.lock().push(level, source, message);
    }

    fn write(&self, source: LogSource, bytes: &[u8]) {
        let mut inner = self.lock();
        let i = usize::from(source == LogSource::Stderr);
        inner.partial[i].extend_from_slice(bytes);
        if bytes.contains(&b'\n') || inner.partial[i].len() > MAX_PARTIAL_LINE {
            inner.cut(source, false);
        }
    }

    /// Takes the lines so far (a partial line of stdout or stderr included, so that a
    /// call's output is its own), and how many did not fit the budget.
    pub(super) fn take(&self) -> (Vec<RawLine>, usize) {
        let mut inner = self.lock();
        inner.cut(LogSource::Stdout, true);
        inner.cut(LogSource::Stderr, true);
        let lines = std::mem::take(&mut inner.lines);
        let dropped = std::mem::take(&mut inner.dropped);
        inner.bytes = 0;
        (lines, dropped)
    }
}

/// stdout or stderr of a plugin: accepts every write (a plugin that prints must not
/// fail because of it) and keeps its lines in the log, within its budget.
struct LogStream {
    log: Log,
    source: LogSource,
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LogStream {
            log: self.log.clone(),
            source: self.source,
        })
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(tokio::io::sink())
    }
}

impl OutputStream for LogStream {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.log.write(self.source, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

#[async_trait::async_trait]
impl Pollable for LogStream {
    async fn ready(&mut self) {}
}
