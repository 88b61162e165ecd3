//! What can go wrong with a plugin: refused at load, or failing one call.

/// A plugin that cannot be loaded, or a call that failed. Every call error names the
/// plugin and the function; a limit error names the limit.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PluginError {
    /// The bytes are not WebAssembly at all.
    #[error("not a WebAssembly component: the file does not start with the `\\0asm` magic number")]
    NotWasm,
    /// A core module, not a component.
    #[error(
        "a core WebAssembly module, not a component: build the plugin for wasm32-wasip2 (or wrap it with `wasm-tools component new`)"
    )]
    CoreModule,
    /// Larger than the host loads.
    #[error("the component is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The component does not validate or compile.
    #[error("the component does not compile: {message}")]
    Compile {
        /// Wasmtime's reason.
        message: String,
    },
    /// The component imports an interface outside the allowed set.
    #[error(
        "the component imports `{import}`, which plugins may not use (allowed: crosswalk:plugin/host and WASI cli, clocks, filesystem types, io, random)"
    )]
    ForbiddenImport {
        /// The import's name.
        import: String,
    },
    /// The component implements neither the `crosswalk:plugin@0.2.0` world nor
    /// `@0.1.0`.
    #[error(
        "the component does not implement the `plugin` world of crosswalk:plugin@0.2.0 (or @0.1.0): {message}"
    )]
    NotThePluginWorld {
        /// What is missing or has the wrong type.
        message: String,
    },
    /// `describe` failed or said something unusable.
    #[error("plugin `{plugin}`: describe: {message}")]
    Describe {
        /// The plugin (its name, or its hash before it has one).
        plugin: String,
        /// What went wrong.
        message: String,
    },
    /// No plugin of that name is loaded.
    #[error("no plugin `{plugin}` is loaded{hint}")]
    UnknownPlugin {
        /// The name.
        plugin: String,
        /// The loaded plugins, or the empty string.
        hint: String,
    },
    /// The plugin has no function of that name and kind.
    #[error("plugin `{plugin}` has no {kind} function `{function}`{hint}")]
    UnknownFunction {
        /// The plugin.
        plugin: String,
        /// The function.
        function: String,
        /// `field` or `record`.
        kind: &'static str,
        /// Its functions of that kind, or the empty string.
        hint: String,
    },
    /// The static arguments do not fit the function's schema.
    #[error(
        "plugin `{plugin}` function `{function}`: the arguments do not fit its schema: {message}"
    )]
    Arguments {
        /// The plugin.
        plugin: String,
        /// The function.
        function: String,
        /// Which part does not fit.
        message: String,
    },
    /// A limit outside `1..=ceiling`.
    #[error("limit `{limit}` is {value}, outside 1..={ceiling}")]
    LimitOutOfRange {
        /// The limit's name.
        limit: &'static str,
        /// The value asked for.
        value: u64,
        /// The ceiling.
        ceiling: u64,
    },
    /// A call ran out of time.
    #[error("plugin `{plugin}` function `{function}` exceeded its time limit of {limit_ms} ms")]
    Timeout {
        /// The plugin.
        plugin: String,
        /// The function.
        function: String,
        /// The limit.
        limit_ms: u64,
    },
    /// The session's plugin time budget was spent: this call ran until it was, or
    /// found it spent and did not run.
    #[error(
        "plugin `{plugin}` function `{function}`: the request's plugin time budget of {budget_ms} ms (`plugin_request_budget_ms`) is spent"
    )]
    Budget {
        /// The plugin.
        plugin: String,
        /// The function.
        function: String,
        /// The budget.
        budget_ms: u64,
    },
    /// The request was cancelled (its client went away): the call was stopped, or did
    /// not run.
    #[error(
        "plugin `{plugin}` function `{function}` was stopped: the request was cancelled (its client went away)"
    )]
    Cancelled {
        /// The plugin.
        plugin: String,
        /// The function.
        function: String,
    },
    /// The engine's pool had no instance free: the host's capacity, not the plugin's
    /// fault (leases make it not happen; kept apart in case it does).
    #[error("plugin `{plugin}`: no instance is free in the host's plugin pool: {message}")]
    Capacity {
        /// The plugin.
        plugin: String,
        /// The engine's reason.
        message: String,
    },
    /// The host's pool is configured with numbers that do not fit together.
    #[error("the plugin pool's configuration: {message}")]
    PoolConfig {
        /// Which limit is out of range, and its range.
        message: String,
    },
    /// A call tried to grow memory past the limit.
    #[error(
        "plugin `{plugin}` function `{function}` exceeded its memory limit of {limit_bytes} bytes"
    )]
    Memory {
        /// The plugin.
        plugin: String,
        /// The function.
        function: String,
        /// The limit.
        limit_bytes: u64,
    },
    /// A call overflowed the wasm stack.
    #[error(
        "plugin `{plugin}` function `{function}` exceeded the stack limit of {limit_bytes} bytes"
    )]
    Stack {
        /// The plugin.
        plugin: String,
        /// The function.
        function: String,
        /// The limit.
        limit_bytes: usize,
    },
    /// The input or output of a call is larger than its limit.
    #[error(
        "plugin `{plugin}` function `{function}`: the {what} is {size} bytes, more than the limit of {limit} bytes (`{limit_name}`)"
    )]
    Size {
        /// The plugin.
        plugin: String,
        /// The function.
        function: String,
        /// `input` or `output`.
        what: &'static str,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
        /// The limit's name.
        limit_name: &'static str,
    },
    /// The plugin trapped (a panic, an unreachable, a bad memory access).
    #[error("plugin `{plugin}` function `{function}` trapped: {message}")]
    Trap {
        /// The plugin.
        plugin: String,
        /// The function.
        function: String,
        /// The trap.
        message: String,
    },
    /// The plugin returned an error of its own.
    #[error("plugin `{plugin}` function `{function}`: {kind}: {message}")]
    Guest {
        /// The plugin.
        plugin: String,
        /// The function.
        function: String,
        /// `unknown function`, `invalid arguments` or `invalid input`.
        kind: &'static str,
        /// The plugin's message.
        message: String,
    },
    /// The plugin returned something that is not JSON, or not what was asked.
    #[error("plugin `{plugin}` function `{function}` returned {message}")]
    BadOutput {
        /// The plugin.
        plugin: String,
        /// The function.
        function: String,
        /// What was wrong.
        message: String,
    },
    /// The engine could not create an instance.
    #[error("plugin `{plugin}`: cannot instantiate: {message}")]
    Instantiate {
        /// The plugin.
        plugin: String,
        /// Why.
        message: String,
    },
    /// A file of the plugin cache could not be read or written.
    #[error("plugin cache {path}: {message}")]
    Cache {
        /// The file.
        path: String,
        /// The I/O error.
        message: String,
    },
}

impl PluginError {
    /// The plugin the error is about, when it names one.
    pub fn plugin(&self) -> Option<&str> {
        use PluginError::*;
        match self {
            Describe { plugin, .. }
            | UnknownPlugin { plugin, .. }
            | UnknownFunction { plugin, .. }
            | Arguments { plugin, .. }
            | Timeout { plugin, .. }
            | Budget { plugin, .. }
            | Cancelled { plugin, .. }
            | Capacity { plugin, .. }
            | Memory { plugin, .. }
            | Stack { plugin, .. }
            | Size { plugin, .. }
            | Trap { plugin, .. }
            | Guest { plugin, .. }
            | BadOutput { plugin, .. }
            | Instantiate { plugin, .. } => Some(plugin),
            NotWasm
            | CoreModule
            | TooLarge { .. }
            | Compile { .. }
            | ForbiddenImport { .. }
            | NotThePluginWorld { .. }
            | LimitOutOfRange { .. }
            | PoolConfig { .. }
            | Cache { .. } => None,
        }
    }
}
