//! Transform plugins: WebAssembly components, sandboxed.
//!
//! A plugin implements the `crosswalk:plugin@0.2.0` world (`wit/`), or `@0.1.0`, which
//! is the same without inverses and keeps working. The [`PluginHost`]
//! owns one wasmtime `Engine` (pooling allocator, epoch interruption) and loads
//! components: it refuses what is not a component, what imports anything outside the
//! allowed WASI set, and what does not implement the world; it compiles once per
//! content hash (in memory, and on disk when given a cache directory), and asks the
//! plugin to `describe` itself (once per content hash). A loaded [`WasmPlugin`] keeps an
//! `InstancePre`, so a request or batch gets a [`WasmInstance`] cheaply: a fresh one,
//! or one that an earlier session of the same binding parked (one connection's compiled
//! mapping: no state crosses connections, tenants, mapping versions or plugin
//! versions; see [`Instance::park`]). Every call runs under [`Limits`]: a
//! deadline, a memory cap, the engine's stack cap, bounds on input and output, and a
//! bounded log.
//!
//! The host's [`Pool`] accounts the instances and memory of the engine's pool per
//! tenant: a request leases its plugins' instances from its tenant's share first (a
//! [`Grant`]), waits boundedly when the share is busy, and runs them within a plugin
//! time [`Budget`] that a [`Cancel`] flag can cut short when its client goes away.
//! Deadlines are enforced by epoch interruption: a thread ticks the engine's epoch
//! every millisecond, and at each tick the store's callback compares the clock with
//! the call's deadline and looks at the cancel flag.
//!
//! # Layout
//!
//! - [`pool`]: the pool's capacity, the tenants' shares of it, leases and grants.
//! - `sandbox`: the store of one instance (empty WASI context, limiter, deadline, log).
//! - `cache`: compiled components on disk.
//! - `bindings`: the generated host side of both versions of the world.
//!
//! What the mapping sees of a plugin (the [`Plugin`] and [`Instance`] traits, [`Limits`],
//! [`Budget`], [`Session`], [`PluginError`]) is `crosswalk-core`'s, re-exported here.

mod bindings;
mod cache;
pub mod pool;
mod sandbox;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolConcurrencyLimitError, PoolingAllocationConfig,
    Store, Trap,
};

pub use crosswalk_core::plugin::{
    Binding, Budget, CallCounts, CallOutcome, Cancel, CancelGuard, Capacity, Demand, FunctionInfo,
    FunctionKind, Instance, LimitOverrides, Limits, LogLevel, LogLine, LogSource,
    MAX_COMPONENT_BYTES, Plugin, PluginError, PluginSet, STACK_BYTES, Session, budget, limits,
};
pub use pool::{Grant, Pool, PoolConfig, PoolError};

use bindings::{Bound, Described, Description, GuestError, Pre};
use sandbox::{Broken, RawLine, State};

/// The imports a plugin may have, by interface (the version suffix is ignored). The
/// standard libraries of language runtimes import the sockets interfaces whether or not
/// the plugin uses them (Rust's `std::net`, CPython as componentize-py links it): they
/// are linked to wasmtime-wasi's implementations over a context that allows no TCP, no
/// UDP, no name lookup and no address (`sandbox::State::new`), so that a plugin that
/// tries gets an error, and reaches nothing.
const ALLOWED_IMPORTS: &[&str] = &[
    "crosswalk:plugin/host",
    "crosswalk:plugin/types",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/wall-clock",
    "wasi:filesystem/preopens",
    "wasi:filesystem/types",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:random/random",
    "wasi:sockets/instance-network",
    "wasi:sockets/ip-name-lookup",
    "wasi:sockets/network",
    "wasi:sockets/tcp",
    "wasi:sockets/tcp-create-socket",
    "wasi:sockets/udp",
    "wasi:sockets/udp-create-socket",
];

/// The most linear memories one plugin may have (each core module has its own).
const MAX_MEMORIES_PER_COMPONENT: u32 = 4;

/// The most tables one plugin may have.
const MAX_TABLES_PER_COMPONENT: u32 = 16;

/// The most core instances one plugin may have.
const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 64;

/// Instances of the engine's pool beyond the leased ones, for loading plugins (each
/// load runs `describe` on an instance of its own); loads take turns on them.
const LOAD_SLOTS: u32 = 2;

/// The longest message of a plugin's own error that is kept.
const MAX_GUEST_MESSAGE: usize = 1024;

/// How long instantiating a plugin and `describe` may take together when it is
/// loaded: once per load, often while the machine is busy compiling it, so more than a
/// call's default.
const DESCRIBE_TIMEOUT_MS: u64 = 1_000;

/// How long one epoch tick is: the resolution of every plugin deadline.
const TICK: Duration = Duration::from_millis(1);

/// How the host's engine is set up, and its pool sized and shared (see [`pool`]).
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Use wasmtime's pooling allocator (pre-reserved slots: fast instantiation).
    pub pooling: bool,
    /// `plugin_pool_instances`: the most instances leased at once (the pool's size;
    /// the engine's pool has `LOAD_SLOTS` (2) more, for loading plugins).
    pub max_instances: u32,
    /// `plugin_pool_memory_bytes`; `None`: 64 MiB per instance
    /// ([`PoolConfig::for_instances`]). `crosswalk serve` derives it from the machine.
    pub pool_memory_bytes: Option<u64>,
    /// `plugin_tenant_instances`; `None`: derived from the pool ([`PoolConfig::derive`]).
    pub tenant_instances: Option<u32>,
    /// `plugin_tenant_memory_bytes`; `None`: derived from the pool.
    pub tenant_memory_bytes: Option<u64>,
    /// `plugin_busy_wait_ms`.
    pub busy_wait: Duration,
    /// `plugin_request_budget_ms`.
    pub request_budget: Duration,
    /// Where compiled components are kept across restarts; `None` keeps them in memory.
    pub cache_dir: Option<PathBuf>,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            pooling: true,
            max_instances: PoolConfig::DEFAULT_INSTANCES,
            pool_memory_bytes: None,
            tenant_instances: None,
            tenant_memory_bytes: None,
            busy_wait: PoolConfig::DEFAULT_BUSY_WAIT,
            request_budget: PoolConfig::DEFAULT_REQUEST_BUDGET,
            cache_dir: None,
        }
    }
}

impl HostConfig {
    /// The pool's configuration: what is given, the rest derived.
    pub fn pool_config(&self) -> PoolConfig {
        let memory = self
            .pool_memory_bytes
            .unwrap_or_else(|| PoolConfig::for_instances(self.max_instances).memory_bytes);
        PoolConfig {
            busy_wait: self.busy_wait,
            request_budget: self.request_budget,
            ..PoolConfig::derive(
                self.max_instances,
                memory,
                self.tenant_instances,
                self.tenant_memory_bytes,
            )
        }
    }
}

/// Loads and runs plugins. One per process: cheap to share behind an `Arc`.
pub struct PluginHost {
    engine: Engine,
    /// Instances parked for reuse (see [`Instance::park`]).
    idle: Arc<IdleSlots>,
    linker: Linker<State>,
    config: HostConfig,
    pool: Pool,
    /// Compiled components by content hash. The map's lock is held only to find a
    /// hash's cell; a compile holds that cell's lock alone, so that loads of one hash
    /// wait for one compile and loads of other hashes do not wait at all.
    compiled: Mutex<HashMap<String, Arc<Mutex<Option<Component>>>>>,
    /// Loaded (described) plugins by content hash: `describe` runs once per hash.
    loaded: Mutex<HashMap<String, Arc<WasmPlugin>>>,
    /// Loads describing a plugin now, at most [`LOAD_SLOTS`].
    loading: (Mutex<u32>, Condvar),
    compilations: AtomicU64,
}

/// A loaded plugin: compiled, checked, described, ready to instantiate.
pub struct WasmPlugin {
    name: String,
    version: String,
    sha256: String,
    functions: Vec<FunctionInfo>,
    validators: HashMap<String, jsonschema::Validator>,
    pre: Pre,
    engine: Engine,
    /// The host's count of parked instances, shared by its plugins.
    idle: Arc<IdleSlots>,
}

/// Instances parked for reuse, over all of a host's plugins, and how many may be: each
/// holds a slot of the engine's pool (which has as many more as the pool's size) and
/// its linear memory (at most a quarter of the pool's memory for all of them).
#[derive(Debug)]
struct IdleSlots {
    /// Parked instances and their memory, in one lock: a place is taken for both.
    parked: Mutex<(u32, u64)>,
    max: u32,
    max_memory: u64,
}

impl IdleSlots {
    /// Takes a place for one more parked instance of `memory` bytes, if there is one.
    fn take(&self, memory: u64) -> bool {
        let mut parked = self.parked.lock().unwrap_or_else(|p| p.into_inner());
        let (count, bytes) = *parked;
        if count >= self.max || bytes + memory > self.max_memory {
            return false;
        }
        *parked = (count + 1, bytes + memory);
        true
    }

    fn give_back(&self, memory: u64) {
        let mut parked = self.parked.lock().unwrap_or_else(|p| p.into_inner());
        parked.0 -= 1;
        parked.1 -= memory;
    }

    fn count(&self) -> u32 {
        self.parked.lock().unwrap_or_else(|p| p.into_inner()).0
    }
}

impl std::fmt::Debug for WasmPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmPlugin")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("sha256", &self.sha256)
            .field("interface", &self.pre.interface())
            .finish()
    }
}

/// One instance of a plugin, for one request or batch at a time: calls on it share its
/// memory. When its session ends it may be parked for the next session of the same
/// binding ([`Instance::park`]); otherwise nothing outlives it.
pub struct WasmInstance {
    plugin: Arc<WasmPlugin>,
    limits: Limits,
    live: Option<(Store<State>, Bound)>,
    /// Log lines of the calls so far (taken from the store after each call, and from
    /// instances that trapped), within one `max_log_bytes` budget: a plugin that logs
    /// and traps on every record cannot grow it.
    log: Vec<LogLine>,
    log_bytes: usize,
    log_dropped: usize,
    /// How the calls on this instance ended, for metrics.
    calls: CallCounts,
    /// The plugin time of the session, shared with its other instances, and the
    /// request's cancel flag.
    budget: Arc<Budget>,
    /// Whether the running call's deadline is the budget's (not its own time limit).
    by_budget: bool,
    /// What the instance used so far.
    usage: Usage,
    /// How long an instantiation just made took, until the call that made it counts
    /// its own time without it.
    fresh: Option<Duration>,
    /// Calls made on the live instance since it was created.
    calls_on_live: u32,
    /// The memory it holds a place among the host's parked instances for, while parked.
    parked: Option<u64>,
}

/// Calls after which an instance is not parked again: a runtime whose heap grows a
/// little with every call (a JavaScript engine's, say) starts afresh well before its
/// memory limit.
const MAX_CALLS_PER_INSTANCE: u32 = 10_000;

/// What an instance used: for `crosswalk plugin run`, which shows an author where a
/// plugin stands against the limits it will run under.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// How long creating the instance took (its start code included), the last time.
    pub instantiation: Duration,
    /// How many times an instance was created (again after a trap; none for an
    /// instance taken up again after a session parked it).
    pub instantiations: u32,
    /// How long the calls took, instantiation not included.
    pub calls: Duration,
    /// The most linear memory the instance had, over all its memories, in bytes.
    pub memory_bytes: u64,
    /// Epoch ticks (of 1 ms) that found a call running: roughly its milliseconds of
    /// guest code, at the deadline's resolution.
    pub ticks: u64,
}

impl PluginHost {
    /// A host with its own engine. Starts the thread that ticks the epoch.
    pub fn new(config: HostConfig) -> Result<PluginHost, PluginError> {
        let pool_config = config.pool_config();
        pool_config.check().map_err(|e| PluginError::PoolConfig {
            message: e.to_string(),
        })?;
        let mut wasm = Config::new();
        wasm.epoch_interruption(true);
        wasm.max_wasm_stack(STACK_BYTES);
        wasm.parallel_compilation(true);
        // Plugins are synchronous (the world has no async functions): without the
        // component model's concurrency support, every call into a plugin skips its
        // bookkeeping.
        wasm.concurrency_support(false);
        if config.pooling {
            // As many of everything as the leased instances, the loads and the parked
            // instances (as many as leased ones at most) can use at once, each plugin at
            // its per-component maximum: leases, not the engine's pool, are what runs
            // out.
            let n = pool_config.instances + LOAD_SLOTS + pool_config.instances;
            // A load describes a plugin under the default limits, whatever the shares.
            let max_memory = pool_config
                .max_instance_memory()
                .max(Limits::DEFAULT.memory_bytes);
            let mut pool = PoolingAllocationConfig::default();
            pool.total_component_instances(n)
                .total_core_instances(n * MAX_CORE_INSTANCES_PER_COMPONENT)
                .total_memories(n * MAX_MEMORIES_PER_COMPONENT)
                .total_tables(n * MAX_TABLES_PER_COMPONENT)
                .max_memory_size(usize::try_from(max_memory).unwrap_or(usize::MAX))
                // Per component, so that one plugin cannot take the pool's slots from
                // the others (a component over these is refused when it is loaded).
                .max_memories_per_component(MAX_MEMORIES_PER_COMPONENT)
                .max_tables_per_component(MAX_TABLES_PER_COMPONENT)
                .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT);
            wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&wasm).map_err(|e| PluginError::Compile {
            message: format!("cannot create the engine: {e}"),
        })?;
        let mut linker = Linker::new(&engine);
        let link_error = |e: wasmtime::Error| PluginError::Compile {
            message: format!("cannot link the host: {e}"),
        };
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(link_error)?;
        sandbox::cap_sleeps(&mut linker).map_err(link_error)?;
        bindings::v0_1::crosswalk::plugin::host::add_to_linker::<State, HasSelf<State>>(
            &mut linker,
            |s| s,
        )
        .map_err(link_error)?;
        bindings::v0_2::crosswalk::plugin::host::add_to_linker::<State, HasSelf<State>>(
            &mut linker,
            |s| s,
        )
        .map_err(link_error)?;
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("crosswalk-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(TICK);
                }
            })
            .map_err(|e| PluginError::Compile {
                message: format!("cannot start the epoch thread: {e}"),
            })?;
        Ok(PluginHost {
            idle: Arc::new(IdleSlots {
                parked: Mutex::new((0, 0)),
                max: pool_config.instances,
                max_memory: pool_config.memory_bytes / 4,
            }),
            engine,
            linker,
            config,
            pool: Pool::new(pool_config),
            compiled: Mutex::new(HashMap::new()),
            loaded: Mutex::new(HashMap::new()),
            loading: (Mutex::new(0), Condvar::new()),
            compilations: AtomicU64::new(0),
        })
    }

    /// The pool's accounting: requests lease their plugins' instances from it.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// How many instances are parked for reuse, over all plugins.
    pub fn idle_instances(&self) -> u32 {
        self.idle.count()
    }

    /// How many components this host has compiled (not loaded from a cache).
    pub fn compilations(&self) -> u64 {
        self.compilations.load(Ordering::Relaxed)
    }

    /// The sha256 of component bytes, in hex: a plugin version's identity.
    pub fn sha256(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    /// Loads a component: checks it, compiles it (or takes it from the cache), and asks
    /// it to describe itself.
    pub fn load(&self, bytes: &[u8]) -> Result<Arc<WasmPlugin>, PluginError> {
        if bytes.len() > MAX_COMPONENT_BYTES {
            return Err(PluginError::TooLarge {
                size: bytes.len(),
                limit: MAX_COMPONENT_BYTES,
            });
        }
        match bytes.get(..8) {
            Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => return Err(PluginError::CoreModule),
            Some([0, b'a', b's', b'm', _, _, _, _]) => {}
            _ => return Err(PluginError::NotWasm),
        }
        let sha256 = PluginHost::sha256(bytes);
        if let Some(plugin) = self
            .loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&sha256)
        {
            return Ok(Arc::clone(plugin));
        }
        // Before compiling: a refused upload costs no compile and leaves nothing in the
        // cache.
        check_imports(bytes)?;
        let component = self.component(&sha256, bytes)?;
        let pre = self.linker.instantiate_pre(&component).map_err(|e| {
            PluginError::NotThePluginWorld {
                message: format!("{e:#}"),
            }
        })?;
        let pre = Pre::new(pre).map_err(|e| PluginError::NotThePluginWorld {
            message: format!("{e:#}"),
        })?;
        let describe_error = |message: String| PluginError::Describe {
            plugin: sha256.clone(),
            message,
        };
        let limits = Limits {
            timeout_ms: DESCRIBE_TIMEOUT_MS,
            ..Limits::DEFAULT
        };
        let timed_out = |e: &wasmtime::Error| {
            (matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt))
                || e.downcast_ref::<Broken>() == Some(&Broken::Deadline))
            .then(|| format!("it did not finish within {DESCRIBE_TIMEOUT_MS} ms"))
        };
        let info = {
            let _turn = self.load_turn();
            let mut store = new_store(&self.engine, &limits, Cancel::new());
            let instance = pre.instantiate(&mut store).map_err(|e| {
                describe_error(format!(
                    "cannot instantiate: {}",
                    timed_out(&e).unwrap_or_else(|| format!("{e:#}"))
                ))
            })?;
            // The deadline set with the store covers instantiation and `describe`
            // together.
            instance
                .describe(&mut store)
                .map_err(|e| describe_error(timed_out(&e).unwrap_or_else(|| format!("{e:#}"))))?
        };
        let (functions, validators) = check_description(&info).map_err(describe_error)?;
        let plugin = Arc::new(WasmPlugin {
            name: info.name,
            version: info.version,
            sha256: sha256.clone(),
            functions,
            validators,
            pre,
            engine: self.engine.clone(),
            idle: Arc::clone(&self.idle),
        });
        self.loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(sha256, Arc::clone(&plugin));
        Ok(plugin)
    }

    /// Waits for one of the [`LOAD_SLOTS`] instances kept for loads; given back when
    /// the turn is dropped. Loads are not leased from a tenant's share: they take
    /// turns on these instead, so that they never take a leased request's instance.
    fn load_turn(&self) -> LoadTurn<'_> {
        let (count, freed) = &self.loading;
        let mut busy = count.lock().unwrap_or_else(|p| p.into_inner());
        while *busy >= LOAD_SLOTS {
            busy = freed.wait(busy).unwrap_or_else(|p| p.into_inner());
        }
        *busy += 1;
        LoadTurn(&self.loading)
    }

    fn component(&self, sha256: &str, bytes: &[u8]) -> Result<Component, PluginError> {
        let cell = Arc::clone(
            self.compiled
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(sha256.to_owned())
                .or_default(),
        );
        let mut slot = cell.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = &*slot {
            return Ok(c.clone());
        }
        let path = self
            .config
            .cache_dir
            .as_ref()
            .map(|dir| cache::artifact_path(dir, &self.engine, sha256));
        let component = match path.as_deref().and_then(|p| cache::load(&self.engine, p)) {
            Some(c) => c,
            None => {
                let c = match Component::new(&self.engine, bytes) {
                    Ok(c) => c,
                    Err(e) => {
                        drop(slot);
                        self.forget_compiled(sha256, &cell);
                        return Err(PluginError::Compile {
                            message: format!("{e:#}"),
                        });
                    }
                };
                self.compilations.fetch_add(1, Ordering::Relaxed);
                if let Some(path) = &path {
                    // A cache that cannot be written (a read-only home, a full disk)
                    // costs a compilation at the next start, not this load.
                    let _ = cache::store(&c, path);
                }
                c
            }
        };
        *slot = Some(component.clone());
        Ok(component)
    }

    /// Drops `cell`, a hash's empty cell, from the map: failed compiles leave nothing.
    fn forget_compiled(&self, sha256: &str, cell: &Arc<Mutex<Option<Component>>>) {
        let mut compiled = self.compiled.lock().unwrap_or_else(|p| p.into_inner());
        if compiled.get(sha256).is_some_and(|c| Arc::ptr_eq(c, cell)) {
            compiled.remove(sha256);
        }
    }

    /// Drops what this host keeps in memory of the component `sha256` (its compiled
    /// code and its description), when it was deleted. Pipelines that hold the plugin
    /// keep it until they are replaced; a later load of the same bytes compiles them
    /// again (or reads them from the cache directory). Returns whether anything was
    /// kept.
    pub fn forget(&self, sha256: &str) -> bool {
        let compiled = self
            .compiled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(sha256)
            .is_some();
        let loaded = self
            .loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(sha256)
            .is_some();
        compiled || loaded
    }
}

/// Refuses a component that imports an interface outside [`ALLOWED_IMPORTS`], from its
/// bytes, without compiling it. Only the component's own imports count: the modules and
/// components nested in it are wired to those. Bytes that do not parse pass here, and
/// the compiler says what is wrong with them.
fn check_imports(bytes: &[u8]) -> Result<(), PluginError> {
    use wasmparser::{Parser, Payload};
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let Ok(payload) = payload else {
            return Ok(());
        };
        match payload {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(imports) if depth == 0 => {
                for import in imports {
                    let Ok(import) = import else {
                        return Ok(());
                    };
                    let name = import.name.name;
                    let interface = name.split('@').next().unwrap_or(name);
                    if !ALLOWED_IMPORTS.contains(&interface) {
                        return Err(PluginError::ForbiddenImport {
                            import: name.to_owned(),
                        });
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks what `describe` said: a usable name, unique functions, argument schemas
/// that are JSON Schemas.
fn check_description(
    info: &Description,
) -> Result<(Vec<FunctionInfo>, HashMap<String, jsonschema::Validator>), String> {
    let valid_name = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    };
    if !valid_name(&info.name) {
        return Err(format!(
            "the plugin's name `{}` must be 1 to 64 lower-case letters, digits, `-` or `_`",
            info.name
        ));
    }
    let mut functions = Vec::new();
    let mut validators = HashMap::new();
    for f in &info.functions {
        if !valid_name(&f.name) {
            return Err(format!(
                "function name `{}` must be 1 to 64 lower-case letters, digits, `-` or `_`",
                f.name
            ));
        }
        if validators.contains_key(&f.name) {
            return Err(format!("function `{}` is described twice", f.name));
        }
        let schema: Value = serde_json::from_str(&f.args_schema).map_err(|e| {
            format!(
                "function `{}`: the argument schema is not JSON: {e}",
                f.name
            )
        })?;
        let validator = jsonschema::validator_for(&schema).map_err(|e| {
            format!(
                "function `{}`: the argument schema is not a JSON Schema: {e}",
                f.name
            )
        })?;
        validators.insert(f.name.clone(), validator);
        functions.push(FunctionInfo {
            name: f.name.clone(),
            description: f.description.clone(),
            kind: f.kind,
            args_schema: schema,
            inverse: f.inverse.clone(),
        });
    }
    for f in &info.functions {
        check_inverse(f, &info.functions)?;
    }
    Ok((functions, validators))
}

/// Checks that a function's inverse is another function of the same plugin and kind
/// (or itself).
fn check_inverse(f: &Described, functions: &[Described]) -> Result<(), String> {
    let Some(inverse) = &f.inverse else {
        return Ok(());
    };
    match functions.iter().find(|g| &g.name == inverse) {
        Some(g) if g.kind == f.kind => Ok(()),
        Some(g) => Err(format!(
            "function `{}` names `{inverse}` as its inverse, but `{inverse}` is a {} function and `{}` a {} one",
            f.name,
            g.kind.as_str(),
            f.name,
            f.kind.as_str()
        )),
        None => Err(format!(
            "function `{}` names `{inverse}` as its inverse, but the plugin describes no function `{inverse}`",
            f.name
        )),
    }
}

/// A load's turn on the instances kept for loads.
struct LoadTurn<'a>(&'a (Mutex<u32>, Condvar));

impl Drop for LoadTurn<'_> {
    fn drop(&mut self) {
        let (count, freed) = self.0;
        *count.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        freed.notify_one();
    }
}

/// A store whose guest is stopped at the first epoch tick after its state's deadline,
/// or after `cancel` is set. Instantiation runs guest code too (start functions): the
/// deadline covers it.
fn new_store(engine: &Engine, limits: &Limits, cancel: Cancel) -> Store<State> {
    let mut store = Store::new(engine, State::new(limits, cancel));
    store.limiter(|s| s as &mut dyn wasmtime::ResourceLimiter);
    store.epoch_deadline_callback(|mut ctx| {
        ctx.data_mut().ticks += 1;
        sandbox::on_tick(ctx.data())
    });
    store.set_epoch_deadline(1);
    store
}

impl Plugin for WasmPlugin {
    fn name(&self) -> &str {
        &self.name
    }

    fn version(&self) -> &str {
        &self.version
    }

    fn sha256(&self) -> &str {
        &self.sha256
    }

    fn functions(&self) -> &[FunctionInfo] {
        &self.functions
    }

    fn interface(&self) -> &'static str {
        self.pre.interface()
    }

    fn open(self: Arc<Self>, limits: Limits, budget: Arc<Budget>) -> Box<dyn Instance> {
        Box::new(self.instance_in(limits, budget))
    }

    fn check_args(&self, function: &str, args: &Value) -> Result<(), PluginError> {
        let Some(validator) = self.validators.get(function) else {
            return Err(PluginError::UnknownFunction {
                plugin: self.name.clone(),
                function: function.to_owned(),
                kind: "field or record",
                hint: String::new(),
            });
        };
        let problems: Vec<String> = validator
            .iter_errors(args)
            .map(|e| {
                let at = e.instance_path.to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("{at}: {e}")
                }
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(PluginError::Arguments {
                plugin: self.name.clone(),
                function: function.to_owned(),
                message: problems.join("; "),
            })
        }
    }
}

impl WasmPlugin {
    /// A fresh instance under `limits`, without a budget; it is created on its first
    /// call.
    pub fn instance(self: &Arc<Self>, limits: Limits) -> WasmInstance {
        self.instance_in(limits, Arc::new(Budget::unlimited()))
    }

    /// A fresh instance under `limits`, whose calls spend `budget` (shared with the
    /// other instances of a session) and stop when its cancel flag is set.
    pub fn instance_in(self: &Arc<Self>, limits: Limits, budget: Arc<Budget>) -> WasmInstance {
        WasmInstance {
            plugin: Arc::clone(self),
            limits,
            live: None,
            log: Vec::new(),
            log_bytes: 0,
            log_dropped: 0,
            calls: CallCounts::default(),
            budget,
            by_budget: false,
            usage: Usage::default(),
            fresh: None,
            calls_on_live: 0,
            parked: None,
        }
    }
}

impl WasmInstance {
    /// The plugin.
    pub fn plugin(&self) -> &Arc<WasmPlugin> {
        &self.plugin
    }

    /// Creates the instance now (its start code runs, within the time limit) rather
    /// than at the first call: for measuring, and for `plugin run`, which shows the
    /// two apart.
    pub fn start(&mut self) -> Result<(), PluginError> {
        if self.live.is_some() {
            return Ok(());
        }
        let deadline = Instant::now() + Duration::from_millis(self.limits.timeout_ms);
        let result = self.instantiate("(instantiation)", deadline);
        self.fresh = None;
        self.drain_log("(instantiation)");
        result
    }

    /// What the instance used so far.
    pub fn usage(&self) -> Usage {
        let mut usage = self.usage;
        if let Some((store, _)) = &self.live {
            usage.memory_bytes = usage.memory_bytes.max(store.data().memory_used() as u64);
        }
        usage
    }
}

impl Instance for WasmInstance {
    fn call_field(
        &mut self,
        function: &str,
        value: &Value,
        args: &str,
    ) -> Result<Value, PluginError> {
        let result = self.field(function, value, args);
        self.calls.count(result.as_ref().err());
        result
    }

    fn call_records(
        &mut self,
        function: &str,
        records: &[Value],
        args: &str,
    ) -> Result<Vec<Result<Value, PluginError>>, PluginError> {
        let result = self.records(function, records, args);
        self.calls.count(result.as_ref().err());
        result
    }

    /// How the calls so far ended; the counts start again from zero.
    fn take_calls(&mut self) -> CallCounts {
        std::mem::take(&mut self.calls)
    }

    /// The log lines so far: `host.log` calls, stdout and stderr, each with the
    /// function whose call wrote it.
    fn take_log(&mut self) -> Vec<LogLine> {
        if self.log_dropped > 0 {
            self.log.push(LogLine {
                level: LogLevel::Warn,
                source: LogSource::Host,
                plugin: self.plugin.name.clone(),
                function: String::new(),
                message: format!(
                    "{} more lines dropped (max_log_bytes is {})",
                    self.log_dropped, self.limits.max_log_bytes
                ),
            });
        }
        self.log_bytes = 0;
        self.log_dropped = 0;
        std::mem::take(&mut self.log)
    }

    /// Parks a live instance that is neither cancelled nor old (its calls and its
    /// memory below [`MAX_CALLS_PER_INSTANCE`] and half its limit), when the host has
    /// a place for it (as many as the pool's size, with a quarter of its memory). What the session left (log, counts) goes.
    fn park(&mut self) -> bool {
        let Some((store, _)) = &self.live else {
            return false;
        };
        let memory = store.data().memory_used() as u64;
        let fit = !store.data().cancel.is_cancelled()
            && self.calls_on_live < MAX_CALLS_PER_INSTANCE
            && memory <= self.limits.memory_bytes / 2;
        if !fit || !self.plugin.idle.take(memory) {
            return false;
        }
        self.parked = Some(memory);
        self.log.clear();
        self.log_bytes = 0;
        self.log_dropped = 0;
        self.calls = CallCounts::default();
        true
    }

    /// Takes the instance up for a session with `budget`: its calls spend it, and its
    /// guest stops when that session's request is cancelled.
    fn unpark(&mut self, budget: Arc<Budget>) {
        if let Some(memory) = self.parked.take() {
            self.plugin.idle.give_back(memory);
        }
        if let Some((store, _)) = &mut self.live {
            store.data_mut().cancel = budget.cancel().clone();
        }
        self.budget = budget;
        self.usage = Usage::default();
    }
}

impl Drop for WasmInstance {
    fn drop(&mut self) {
        if let Some(memory) = self.parked.take() {
            self.plugin.idle.give_back(memory);
        }
    }
}

impl WasmInstance {
    fn field(&mut self, function: &str, value: &Value, args: &str) -> Result<Value, PluginError> {
        let input = value.to_string();
        // The bindings take the `json` alias as `&String`.
        let args = args.to_owned();
        self.check_size(function, "input", input.len() + args.len())?;
        let out = self.call(function, |store, instance| {
            instance.call_field(store, function, &input, &args)
        })?;
        let text = out.map_err(|e| self.guest_error(function, e))?;
        self.parse_output(function, &text)
    }

    fn records(
        &mut self,
        function: &str,
        records: &[Value],
        args: &str,
    ) -> Result<Vec<Result<Value, PluginError>>, PluginError> {
        let texts: Vec<String> = records.iter().map(Value::to_string).collect();
        let args = args.to_owned();
        self.check_size(
            function,
            "input",
            texts.iter().map(String::len).sum::<usize>() + args.len(),
        )?;
        let out = self.call(function, |store, instance| {
            instance.call_records(store, function, &texts, &args)
        })?;
        if out.len() != records.len() {
            return Err(PluginError::BadOutput {
                plugin: self.plugin.name.clone(),
                function: function.to_owned(),
                message: format!("{} results for {} records", out.len(), records.len()),
            });
        }
        let total: usize = out.iter().map(|r| r.as_ref().map_or(0, String::len)).sum();
        self.check_size(function, "output", total)?;
        Ok(out
            .into_iter()
            .map(|r| match r {
                Ok(text) => self.parse_output(function, &text),
                Err(e) => Err(self.guest_error(function, e)),
            })
            .collect())
    }

    /// Keeps what a call of `function` logged within the budget of the whole
    /// `WasmInstance`.
    fn keep_log(&mut self, function: &str, lines: Vec<RawLine>, dropped: usize) {
        self.log_dropped += dropped;
        for line in lines {
            if (self.log_bytes + line.message.len()) as u64 > self.limits.max_log_bytes {
                self.log_dropped += 1;
            } else {
                self.log_bytes += line.message.len();
                self.log.push(LogLine {
                    level: line.level,
                    source: line.source,
                    plugin: self.plugin.name.clone(),
                    function: function.to_owned(),
                    message: line.message,
                });
            }
        }
    }

    /// Keeps what the live instance logged, as written by a call of `function`.
    fn drain_log(&mut self, function: &str) {
        if let Some((store, _)) = &self.live {
            let (lines, dropped) = store.data().log.take();
            if !lines.is_empty() || dropped > 0 {
                self.keep_log(function, lines, dropped);
            }
        }
    }

    /// Runs one call until its deadline: its time limit, or what is left of the
    /// session's budget when that is less. The time it takes (instantiation included)
    /// is spent from the budget; once the budget is spent, or the request cancelled,
    /// calls fail at once without running.
    fn call<R>(
        &mut self,
        function: &str,
        f: impl FnOnce(&mut Store<State>, &Bound) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        if self.budget.cancel().is_cancelled() {
            return Err(self.cancelled(function));
        }
        let limit = Duration::from_millis(self.limits.timeout_ms);
        let (allowed, by_budget) = match self.budget.remaining() {
            Some(left) if left.is_zero() => return Err(self.budget_spent(function)),
            Some(left) if left < limit => (left, true),
            _ => (limit, false),
        };
        self.by_budget = by_budget;
        let started = Instant::now();
        self.run(function, started, started + allowed, f)
    }

    /// Runs one call, begun at `started`, with `deadline`, and spends its time (its
    /// instantiation included) from the budget; a trap ends the instance (the next
    /// call gets a new one) and becomes the error that names the limit. The clock is
    /// read once after the call, for its deadline, its budget and its usage: a read
    /// costs a tenth of a Rust plugin's call.
    fn run<R>(
        &mut self,
        function: &str,
        started: Instant,
        deadline: Instant,
        f: impl FnOnce(&mut Store<State>, &Bound) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        if self.live.is_none()
            && let Err(e) = self.instantiate(function, deadline)
        {
            self.budget.spend(started.elapsed());
            return Err(e);
        }
        let (store, instance) = self.live.as_mut().expect("instantiated above");
        store.data_mut().deadline = deadline;
        store.set_epoch_deadline(1);
        let ticks = store.data().ticks;
        self.calls_on_live += 1;
        // An instantiation just made (above) is not the call's time.
        let called = started + self.fresh.take().unwrap_or_default();
        let result = f(store, instance);
        let ended = Instant::now();
        self.budget.spend(ended - started);
        self.usage.calls += ended - called;
        self.usage.ticks += store.data().ticks - ticks;
        self.usage.memory_bytes = self
            .usage
            .memory_bytes
            .max(store.data().memory_used() as u64);
        if result.is_ok() {
            self.drain_log(function);
        }
        let (store, _) = self.live.as_mut().expect("instantiated above");
        match result {
            // A call can only overrun its deadline, or outlive its request, and still
            // return by waiting in host code (a sleep, cut short at the deadline or
            // when cancelled): that is a timeout (or a cancellation) too.
            Ok(_) if store.data().cancel.is_cancelled() => {
                self.live = None;
                Err(self.cancelled(function))
            }
            Ok(_) if ended >= store.data().deadline => {
                self.live = None;
                Err(self.deadline_passed(function))
            }
            Ok(r) => Ok(r),
            Err(e) => {
                let (store, _) = self.live.take().expect("live");
                let (log, dropped) = store.data().log.take();
                // What the guest said last on stderr (a panic message, say), without
                // Rust's hint about backtraces, which a plugin cannot act on.
                let said: Vec<&str> = log
                    .iter()
                    .filter(|l| l.source == LogSource::Stderr)
                    .map(|l| l.message.as_str())
                    .filter(|l| !l.starts_with("note: run with `RUST_BACKTRACE"))
                    .collect();
                let last_stderr = (!said.is_empty())
                    .then(|| format!("stderr: {}", said[said.len().saturating_sub(2)..].join(" ")));
                let error = self.trap_error(function, &e, last_stderr);
                self.keep_log(function, log, dropped);
                Err(error)
            }
        }
    }

    /// Creates the instance (its start code runs, within `deadline`).
    fn instantiate(&mut self, function: &str, deadline: Instant) -> Result<(), PluginError> {
        let cancel = self.budget.cancel().clone();
        let started = Instant::now();
        let mut store = new_store(&self.plugin.engine, &self.limits, cancel);
        store.data_mut().deadline = deadline;
        let instantiated = self.plugin.pre.instantiate(&mut store);
        self.usage.instantiation = started.elapsed();
        self.fresh = Some(self.usage.instantiation);
        self.usage.instantiations += 1;
        self.usage.memory_bytes = self
            .usage
            .memory_bytes
            .max(store.data().memory_used() as u64);
        match instantiated {
            Ok(instance) => {
                self.live = Some((store, instance));
                self.calls_on_live = 0;
                Ok(())
            }
            Err(e) => {
                let (lines, dropped) = store.data().log.take();
                self.keep_log(function, lines, dropped);
                // Start code that breaks a limit is named like a call that does;
                // a full engine pool is the host's capacity, not the plugin's
                // fault; anything else is an instantiation error.
                let limit =
                    e.downcast_ref::<Trap>().is_some() || e.downcast_ref::<Broken>().is_some();
                Err(if limit {
                    self.trap_error(function, &e, None)
                } else if e.downcast_ref::<PoolConcurrencyLimitError>().is_some() {
                    PluginError::Capacity {
                        plugin: self.plugin.name.clone(),
                        message: format!("{e:#}"),
                    }
                } else {
                    PluginError::Instantiate {
                        plugin: self.plugin.name.clone(),
                        message: format!("{e:#}"),
                    }
                })
            }
        }
    }

    /// The error of a call stopped because its request was cancelled.
    fn cancelled(&self, function: &str) -> PluginError {
        PluginError::Cancelled {
            plugin: self.plugin.name.clone(),
            function: function.to_owned(),
        }
    }

    /// The error of a call that found the session's budget spent.
    fn budget_spent(&self, function: &str) -> PluginError {
        PluginError::Budget {
            plugin: self.plugin.name.clone(),
            function: function.to_owned(),
            budget_ms: self.budget.limit_ms().unwrap_or(0),
        }
    }

    /// The error of a call whose deadline passed: its own limit, or the budget.
    fn deadline_passed(&self, function: &str) -> PluginError {
        if self.by_budget {
            return self.budget_spent(function);
        }
        PluginError::Timeout {
            plugin: self.plugin.name.clone(),
            function: function.to_owned(),
            limit_ms: self.limits.timeout_ms,
        }
    }

    fn trap_error(
        &self,
        function: &str,
        e: &wasmtime::Error,
        last_stderr: Option<String>,
    ) -> PluginError {
        match e.downcast_ref::<Broken>() {
            Some(Broken::Deadline) => return self.deadline_passed(function),
            Some(Broken::Cancelled) => return self.cancelled(function),
            Some(Broken::Memory) => {
                return PluginError::Memory {
                    plugin: self.plugin.name.clone(),
                    function: function.to_owned(),
                    limit_bytes: self.limits.memory_bytes,
                };
            }
            None => {}
        }
        let plugin = self.plugin.name.clone();
        let function = function.to_owned();
        match e.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => self.deadline_passed(&function),
            Some(Trap::StackOverflow) => PluginError::Stack {
                plugin,
                function,
                limit_bytes: STACK_BYTES,
            },
            Some(trap) => PluginError::Trap {
                plugin,
                function,
                message: match last_stderr {
                    Some(line) => format!("{trap} ({line})"),
                    None => trap.to_string(),
                },
            },
            None => PluginError::Trap {
                plugin,
                function,
                message: format!("{e:#}"),
            },
        }
    }

    fn guest_error(&self, function: &str, e: GuestError) -> PluginError {
        let (kind, mut message) = match e {
            GuestError::UnknownFunction(m) => ("unknown function", m),
            GuestError::InvalidArguments(m) => ("invalid arguments", m),
            GuestError::InvalidInput(m) => ("invalid input", m),
        };
        if message.len() > MAX_GUEST_MESSAGE {
            let mut cut = MAX_GUEST_MESSAGE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        PluginError::Guest {
            plugin: self.plugin.name.clone(),
            function: function.to_owned(),
            kind,
            message,
        }
    }

    fn check_size(
        &self,
        function: &str,
        what: &'static str,
        size: usize,
    ) -> Result<(), PluginError> {
        let (limit, limit_name) = match what {
            "input" => (self.limits.max_input_bytes, "max_input_bytes"),
            _ => (self.limits.max_output_bytes, "max_output_bytes"),
        };
        if size as u64 > limit {
            return Err(PluginError::Size {
                plugin: self.plugin.name.clone(),
                function: function.to_owned(),
                what,
                size: size as u64,
                limit,
                limit_name,
            });
        }
        Ok(())
    }

    fn parse_output(&self, function: &str, text: &str) -> Result<Value, PluginError> {
        self.check_size(function, "output", text.len())?;
        serde_json::from_str(text).map_err(|e| PluginError::BadOutput {
            plugin: self.plugin.name.clone(),
            function: function.to_owned(),
            message: format!("text that is not JSON: {e}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn described(name: &str, kind: FunctionKind, inverse: Option<&str>) -> Described {
        Described {
            name: name.into(),
            description: String::new(),
            kind,
            args_schema: "{}".into(),
            inverse: inverse.map(str::to_owned),
        }
    }

    fn description(functions: Vec<Described>) -> Description {
        Description {
            name: "units".into(),
            version: "1".into(),
            functions,
        }
    }

    #[test]
    fn an_inverse_is_a_function_of_the_same_plugin_and_kind() {
        let ok = description(vec![
            described("to_iso", FunctionKind::Field, Some("from_iso")),
            described("from_iso", FunctionKind::Field, Some("to_iso")),
            described("normalize", FunctionKind::Field, Some("normalize")),
            described("lines", FunctionKind::Record, None),
        ]);
        let (functions, _) = check_description(&ok).unwrap();
        assert_eq!(functions[0].inverse.as_deref(), Some("from_iso"));
        assert_eq!(functions[3].inverse, None);

        let missing = description(vec![described("to_iso", FunctionKind::Field, Some("back"))]);
        assert_eq!(
            check_description(&missing).unwrap_err(),
            "function `to_iso` names `back` as its inverse, but the plugin describes no function `back`"
        );
        let other_kind = description(vec![
            described("to_iso", FunctionKind::Field, Some("lines")),
            described("lines", FunctionKind::Record, None),
        ]);
        assert_eq!(
            check_description(&other_kind).unwrap_err(),
            "function `to_iso` names `lines` as its inverse, but `lines` is a record function and `to_iso` a field one"
        );
    }
}
