//! `crosswalk serve`: the server's bootstrap. Its flags (where to listen, the data
//! dir, the plugin pool, the quotas and mapping limits, the outbound allow-list), the
//! log set-up, the fresh data dir's keys and demo connections, and the HTTP service on
//! its socket until Ctrl-C or SIGTERM. The other commands are in the crate's root.

use std::fs;
use std::io;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crosswalk_core::mapping::MapLimits;
use crosswalk_core::path::PathLimits;
use crosswalk_plugin_host::{HostConfig, PluginHost, PoolConfig};
use crosswalk_service::quota::Quotas;
use crosswalk_systems::SYSTEMS;

/// How the service runs: where, with what storage, and under which limits.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Where to listen.
    #[arg(long, env = "CROSSWALK_ADDR", default_value = "127.0.0.1:8080")]
    addr: std::net::SocketAddr,
    /// Where the embedded storage and the compiled-plugin cache live.
    #[arg(long, env = "CROSSWALK_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// The shared store of several replicas, instead of the embedded one: a
    /// PostgreSQL address, `postgres://user:password@host:port/database`. Every
    /// replica of one store needs the same CROSSWALK_SECRET_KEY.
    #[arg(long, env = "CROSSWALK_STORE", value_parser = parse_store)]
    store: Option<String>,
    /// Connections a replica holds to the shared store at most; a request that waits
    /// longer than 5 s for one is answered 503 with `Retry-After`.
    #[arg(long, env = "CROSSWALK_STORE_CONNECTIONS", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    store_connections: u16,
    /// With a shared store: how often, in milliseconds, every mapping this replica
    /// holds is compared with the store even if no change was announced (the bound on
    /// staleness should a notification be lost).
    #[arg(long, env = "CROSSWALK_RESYNC_MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(100..=86_400_000))]
    resync_ms: u64,
    /// How long, in milliseconds, a replica's claim on a subscription's webhook
    /// deliveries lasts unless renewed: the longest a replica that stopped mid-delivery
    /// holds those events up (at least the 10 s delivery timeout and a second).
    #[arg(long, env = "CROSSWALK_WEBHOOK_LEASE_MS", default_value_t = 60_000,
          value_parser = clap::value_parser!(u64).range(11_000..=3_600_000))]
    webhook_lease_ms: u64,
    /// The largest request body, in bytes. A plugin upload has its own bound, the
    /// largest component: 64 MiB.
    #[arg(long, env = "CROSSWALK_BODY_LIMIT", default_value_t = 8 * 1024 * 1024)]
    body_limit: usize,
    /// How log lines are written to stderr: `text` or `json` (one object a line).
    /// `CROSSWALK_LOG` filters them (`info` unless set; `warn`, `crosswalk=debug`, …).
    #[arg(long, env = "CROSSWALK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// For benchmarks: also serve `POST /bench/floor`, which authenticates and reads
    /// the body as a transform does, then answers a fixed JSON body of this many
    /// bytes without parsing or mapping: the HTTP floor.
    #[arg(long)]
    floor_bytes: Option<usize>,
    /// For work on the console: serve its files from this directory (read on every
    /// request, as `engine/service/console/` holds them) instead of the ones built in.
    #[arg(long, env = "CROSSWALK_CONSOLE_DIR")]
    console_dir: Option<PathBuf>,
    /// The first wait, in milliseconds, before a failed webhook delivery is
    /// retried; it doubles with each attempt (up to an hour).
    #[arg(long, env = "CROSSWALK_WEBHOOK_BACKOFF_MS", default_value_t = 5000)]
    webhook_backoff_ms: u64,
    #[command(flatten)]
    plugin_pool: PluginPoolArgs,
    /// Allow webhooks, live upstreams and token endpoints at addresses in this
    /// range (CIDR such as 10.20.0.0/16, or one address), which are otherwise
    /// refused as loopback, private, link-local, metadata or reserved; repeat for
    /// more ranges (the variable takes them comma-separated; empty, it allows none).
    /// None by default.
    #[arg(
        long = "allow-upstream",
        env = "CROSSWALK_ALLOW_UPSTREAM",
        value_name = "CIDR",
        value_delimiter = ',',
        value_parser = parse_allowed_range
    )]
    allow_upstream: Vec<Option<ipnet::IpNet>>,
    #[command(flatten)]
    quotas: QuotaArgs,
    #[command(flatten)]
    map_limits: MapLimitArgs,
}

/// How the plugin pool is sized and shared between tenants (see `docs/plugins.md`).
#[derive(Debug, Clone, clap::Args)]
struct PluginPoolArgs {
    /// Plugin instances alive at once, over all tenants.
    #[arg(long, env = "CROSSWALK_PLUGIN_POOL_INSTANCES", default_value_t = PoolConfig::DEFAULT_INSTANCES)]
    plugin_pool_instances: u32,
    /// The linear memory all plugin instances may have together, in bytes (or with
    /// KiB, MiB, GiB); never more than the machine has (MemTotal, or the cgroup's
    /// memory.max). Default: a quarter of the machine's memory, at most 16 GiB.
    #[arg(long, env = "CROSSWALK_PLUGIN_POOL_MEMORY_BYTES", value_parser = parse_bytes)]
    plugin_pool_memory_bytes: Option<u64>,
    /// Plugin instances one tenant may have at once. Default: a quarter of the pool,
    /// at least 8 (or the whole pool when it is smaller).
    #[arg(long, env = "CROSSWALK_PLUGIN_TENANT_INSTANCES")]
    plugin_tenant_instances: Option<u32>,
    /// The memory one tenant's plugin instances may have together, in bytes (or with
    /// KiB, MiB, GiB); a binding's `memory_bytes` must fit in it. Default: the same
    /// part of the pool's memory as the tenant's instances are of the pool's, at least
    /// 64 MiB (or the pool's when it is smaller).
    #[arg(long, env = "CROSSWALK_PLUGIN_TENANT_MEMORY_BYTES", value_parser = parse_bytes)]
    plugin_tenant_memory_bytes: Option<u64>,
    /// How long a request waits, in milliseconds, for its tenant's busy share of the
    /// pool before it is answered 503 with Retry-After.
    #[arg(long, env = "CROSSWALK_PLUGIN_BUSY_WAIT_MS", default_value_t = 1000)]
    plugin_busy_wait_ms: u64,
    /// The plugin time of one request, in milliseconds, over all its records and
    /// plugins (of each batch of 64 lines of an NDJSON stream).
    #[arg(
        long,
        env = "CROSSWALK_PLUGIN_REQUEST_BUDGET_MS",
        default_value_t = 2000
    )]
    plugin_request_budget_ms: u64,
}

impl PluginPoolArgs {
    /// The host's configuration: the defaults derived from the machine's memory, and
    /// checked against it.
    fn host_config(&self, cache_dir: PathBuf) -> Result<HostConfig> {
        let machine = crosswalk_plugin_host::pool::machine_memory();
        let memory = match (self.plugin_pool_memory_bytes, machine) {
            (Some(memory), _) => memory,
            (None, Some(machine)) => {
                PoolConfig::for_machine(self.plugin_pool_instances, machine).memory_bytes
            }
            (None, None) => PoolConfig::for_instances(self.plugin_pool_instances).memory_bytes,
        };
        let config = HostConfig {
            max_instances: self.plugin_pool_instances,
            pool_memory_bytes: Some(memory),
            tenant_instances: self.plugin_tenant_instances,
            tenant_memory_bytes: self.plugin_tenant_memory_bytes,
            busy_wait: std::time::Duration::from_millis(self.plugin_busy_wait_ms),
            request_budget: std::time::Duration::from_millis(self.plugin_request_budget_ms),
            cache_dir: Some(cache_dir),
            ..HostConfig::default()
        };
        let pool = config.pool_config();
        pool.check().context("cannot start the plugin host")?;
        if let Some(machine) = machine {
            pool.check_machine(machine)
                .context("cannot start the plugin host")?;
        }
        Ok(config)
    }
}

/// A range of `--allow-upstream`, or none for an empty value (an empty
/// `CROSSWALK_ALLOW_UPSTREAM` allows nothing more, as an unset one does).
fn parse_allowed_range(text: &str) -> Result<Option<ipnet::IpNet>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    crosswalk_service::egress::parse_range(text).map(Some)
}

/// A number of bytes: digits, optionally followed by `KiB`, `MiB` or `GiB` (or `K`,
/// `M`, `G`, taken as the same powers of 1024).
fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a number of bytes (say 512MiB or 4GiB)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" | "kb" => 10,
        "m" | "mib" | "mb" => 20,
        "g" | "gib" | "gb" => 30,
        _ => return Err(format!("`{text}`: the unit must be KiB, MiB or GiB")),
    };
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// The limits on what tenants store (see `crosswalk_service::quota`); each has a
/// `CROSSWALK_MAX_…` variable too.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Limits and quotas")]
struct QuotaArgs {
    /// Characters in a connection's, tenant's or plugin's name.
    #[arg(long, env = "CROSSWALK_MAX_NAME_LENGTH", default_value_t = Quotas::DEFAULT.max_name_length)]
    max_name_length: usize,
    /// Characters in a webhook URL, an upstream base_url or token_url.
    #[arg(long, env = "CROSSWALK_MAX_URL_LENGTH", default_value_t = Quotas::DEFAULT.max_url_length)]
    max_url_length: usize,
    /// Characters in a webhook secret or a field of a connection's credentials.
    #[arg(long, env = "CROSSWALK_MAX_SECRET_LENGTH", default_value_t = Quotas::DEFAULT.max_secret_length)]
    max_secret_length: usize,
    /// Characters in an override's target.
    #[arg(long, env = "CROSSWALK_MAX_TARGET_LENGTH", default_value_t = Quotas::DEFAULT.max_target_length)]
    max_target_length: usize,
    /// Characters in a mapping's JSONPath (path, coalesce entry, write.path).
    #[arg(long, env = "CROSSWALK_MAX_PATH_LENGTH", default_value_t = Quotas::DEFAULT.max_path_length)]
    max_path_length: usize,
    /// Override entries, nested rules included, in a connection's mapping of an entity.
    #[arg(long, env = "CROSSWALK_MAX_OVERRIDES", default_value_t = Quotas::DEFAULT.max_overrides)]
    max_overrides: usize,
    /// Bytes of a connection's override document for an entity, as JSON.
    #[arg(long, env = "CROSSWALK_MAX_MAPPING_BYTES", default_value_t = Quotas::DEFAULT.max_mapping_bytes)]
    max_mapping_bytes: usize,
    /// Connections per tenant.
    #[arg(long, env = "CROSSWALK_MAX_CONNECTIONS", default_value_t = Quotas::DEFAULT.max_connections)]
    max_connections: usize,
    /// Plugin versions per tenant (and plugins bound to one mapping).
    #[arg(long, env = "CROSSWALK_MAX_PLUGINS", default_value_t = Quotas::DEFAULT.max_plugins)]
    max_plugins: usize,
    /// Bytes of all of a tenant's plugin versions together.
    #[arg(long, env = "CROSSWALK_MAX_PLUGIN_BYTES", default_value_t = Quotas::DEFAULT.max_plugin_bytes)]
    max_plugin_bytes: u64,
    /// Webhook subscriptions per tenant.
    #[arg(long, env = "CROSSWALK_MAX_WEBHOOKS", default_value_t = Quotas::DEFAULT.max_webhooks)]
    max_webhooks: usize,
    /// Versions kept of a connection's mapping of an entity; older ones are pruned
    /// (never the current one).
    #[arg(long, env = "CROSSWALK_MAX_VERSIONS_KEPT", default_value_t = Quotas::DEFAULT.max_versions_kept)]
    max_versions_kept: usize,
    /// Bytes of stored versions kept of a connection's mapping of an entity; older
    /// ones are pruned (never the current one).
    #[arg(long, env = "CROSSWALK_MAX_HISTORY_BYTES", default_value_t = Quotas::DEFAULT.max_history_bytes)]
    max_history_bytes: u64,
}

impl From<QuotaArgs> for Quotas {
    fn from(a: QuotaArgs) -> Quotas {
        Quotas {
            max_name_length: a.max_name_length,
            max_url_length: a.max_url_length,
            max_secret_length: a.max_secret_length,
            max_target_length: a.max_target_length,
            max_path_length: a.max_path_length,
            max_overrides: a.max_overrides,
            max_mapping_bytes: a.max_mapping_bytes,
            max_connections: a.max_connections,
            max_plugins: a.max_plugins,
            max_plugin_bytes: a.max_plugin_bytes,
            max_webhooks: a.max_webhooks,
            max_versions_kept: a.max_versions_kept,
            max_history_bytes: a.max_history_bytes,
        }
    }
}

/// What mapping may take: the JSONPath budgets and the sizes of records and answers
/// (defaults: [`crosswalk_core::mapping::MapLimits::DEFAULT`]).
#[derive(Debug, clap::Args)]
struct MapLimitArgs {
    /// The most nodes one rule's JSONPath evaluation may visit; a rule over it is a
    /// field error naming `path_visits_per_rule`.
    #[arg(long, env = "CROSSWALK_PATH_VISITS_PER_RULE", default_value_t = PathLimits::DEFAULT.visits_per_rule, value_name = "NODES")]
    path_visits_per_rule: u64,
    /// The most nodes one rule's JSONPath evaluation may select, at every segment.
    #[arg(long, env = "CROSSWALK_PATH_SELECTS_PER_RULE", default_value_t = PathLimits::DEFAULT.selects_per_rule, value_name = "NODES")]
    path_selects_per_rule: u64,
    /// The most nodes all the rules of one record may visit together.
    #[arg(long, env = "CROSSWALK_PATH_VISITS_PER_RECORD", default_value_t = PathLimits::DEFAULT.visits_per_record, value_name = "NODES")]
    path_visits_per_record: u64,
    /// The most nodes all the rules of one record may select together.
    #[arg(long, env = "CROSSWALK_PATH_SELECTS_PER_RECORD", default_value_t = PathLimits::DEFAULT.selects_per_record, value_name = "NODES")]
    path_selects_per_record: u64,
    /// The largest mapped record, in bytes of compact JSON (without `remote_data`).
    #[arg(long, env = "CROSSWALK_MAX_RECORD_BYTES", default_value_t = MapLimits::DEFAULT.max_record_bytes, value_name = "BYTES")]
    max_record_bytes: u64,
    /// The largest answer of records (a transform, a page or a record read, a preview,
    /// an NDJSON line), in bytes; a larger one is a 422 naming `max_answer_bytes`.
    #[arg(long, env = "CROSSWALK_MAX_ANSWER_BYTES", default_value_t = MapLimits::DEFAULT.max_answer_bytes, value_name = "BYTES")]
    max_answer_bytes: u64,
}

impl MapLimitArgs {
    fn limits(&self) -> MapLimits {
        MapLimits {
            path: PathLimits {
                visits_per_rule: self.path_visits_per_rule,
                selects_per_rule: self.path_selects_per_rule,
                visits_per_record: self.path_visits_per_record,
                selects_per_record: self.path_selects_per_record,
            },
            max_record_bytes: self.max_record_bytes,
            max_answer_bytes: self.max_answer_bytes,
        }
    }
}

/// How the server writes its log.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line, with the span's fields (request id, route) on each.
    Json,
}

/// `--store`: a PostgreSQL address.
fn parse_store(text: &str) -> Result<String, String> {
    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "`{}` is not a PostgreSQL address: --store takes postgres://user:password@host:port/database (without --store the store is embedded in --data-dir)",
            crosswalk_service::store::redact(text)
        ))
    }
}

/// Sets a fresh store up: an admin key, and a demo tenant with one sandbox connection
/// per system, so that there is something to call at once. Of replicas starting
/// together on one fresh store, one sets it up; the keys go to its stdout.
async fn seed(store: &dyn crosswalk_service::store::Store, place: &str) -> Result<()> {
    use crosswalk_service::store::{Mode, Role};
    if !store.tenants().await?.is_empty() {
        return Ok(());
    }
    let me = crosswalk_service::ids::random_id("replica");
    if store.claim_meta("set_up_by", &me).await? != me {
        return Ok(());
    }
    let admin = store.create_tenant("admin").await?;
    let admin_secret = match std::env::var("CROSSWALK_ADMIN_KEY") {
        Ok(secret) if !secret.is_empty() => {
            store.import_key(&admin.id, Role::Admin, &secret).await?;
            "(from CROSSWALK_ADMIN_KEY)".to_owned()
        }
        _ => store.create_key(&admin.id, Role::Admin).await?.1,
    };
    let demo = store.create_tenant("demo").await?;
    let (_, demo_secret) = store.create_key(&demo.id, Role::Tenant).await?;
    // What a person needs to start (the keys, the demo connections, the address)
    // goes to stdout; warnings and logs go to stderr.
    println!("{place}: keys are shown this once");
    println!("  admin key: {admin_secret}");
    println!("  demo tenant key: {demo_secret}");
    for system in SYSTEMS {
        let c = store
            .create_connection(
                &demo.id,
                system.id,
                &format!("{} sandbox", system.name),
                Mode::Sandbox,
                None,
            )
            .await?;
        println!("  demo sandbox connection {}: {}", system.id, c.id);
    }
    Ok(())
}

/// Runs the service until Ctrl-C or SIGTERM, then lets running requests finish.
pub(crate) fn serve(args: ServeArgs) -> Result<()> {
    let ServeArgs {
        addr,
        data_dir,
        store: store_url,
        store_connections,
        resync_ms,
        webhook_lease_ms,
        body_limit,
        log_format,
        floor_bytes,
        console_dir,
        webhook_backoff_ms,
        plugin_pool,
        allow_upstream,
        quotas,
        map_limits,
    } = args;
    let map_limits = map_limits.limits();
    let quotas: Quotas = quotas.into();
    let data_dir = data_dir.as_path();
    use crosswalk_service::store::{PgOptions, PgStore, SledStore, Store, redact};
    use std::sync::Arc;

    let filter = tracing_subscriber::EnvFilter::try_from_env("CROSSWALK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(false);
    match log_format {
        LogFormat::Text => logs.try_init(),
        LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    }
    .map_err(|e| anyhow::anyhow!("cannot set up the log: {e}"))?;

    // The plugin pool's numbers are checked before anything is opened.
    let host_config = plugin_pool.host_config(data_dir.join("plugin-cache"))?;
    fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let store: Arc<dyn Store> = match &store_url {
        Some(url) => {
            let options = PgOptions {
                max_connections: usize::from(store_connections),
                ..PgOptions::default()
            };
            let opened = runtime
                .block_on(PgStore::open(url, options))
                .with_context(|| format!("cannot open the store {}", redact(url)))?;
            tracing::info!(store = %redact(url), schema = PgStore::schema_version(), "shared store");
            Arc::new(opened)
        }
        None => Arc::new(SledStore::open(&data_dir.join("db"))?),
    };
    let host = Arc::new(PluginHost::new(host_config)?);
    {
        let pool = host.pool().config();
        tracing::info!(
            plugin_pool_instances = pool.instances,
            plugin_pool_memory_bytes = pool.memory_bytes,
            plugin_tenant_instances = pool.tenant_instances,
            plugin_tenant_memory_bytes = pool.tenant_memory_bytes,
            plugin_busy_wait_ms = pool.busy_wait.as_millis() as u64,
            plugin_request_budget_ms = pool.request_budget.as_millis() as u64,
            "plugin pool"
        );
    }
    let place = match &store_url {
        Some(url) => format!("fresh store {}", redact(url)),
        None => format!("fresh data dir {}", data_dir.display()),
    };
    runtime.block_on(seed(store.as_ref(), &place))?;
    // Credentials of live connections are sealed with CROSSWALK_SECRET_KEY; without
    // it, sandbox connections still work.
    let sealer = crosswalk_service::connection::secrets::Sealer::from_env()?;
    if let Some(sealer) = &sealer {
        runtime.block_on(sealer.check_store(store.as_ref()))?;
    }
    if sealer.is_none() {
        eprintln!(
            "{} is not set: live connections are refused (sandbox connections work)",
            crosswalk_service::connection::secrets::SECRET_KEY_ENV
        );
    }
    let allow_upstream: Vec<ipnet::IpNet> = allow_upstream.into_iter().flatten().collect();
    if !allow_upstream.is_empty() {
        let ranges: Vec<String> = allow_upstream.iter().map(ToString::to_string).collect();
        eprintln!(
            "outbound calls may also reach {} (--allow-upstream)",
            ranges.join(", ")
        );
    }
    let options = crosswalk_service::http::ServiceOptions {
        sealer,
        webhook_backoff: std::time::Duration::from_millis(webhook_backoff_ms.max(1)),
        webhook_lease: std::time::Duration::from_millis(webhook_lease_ms),
        egress: crosswalk_service::egress::Policy::allowing(allow_upstream),
        quotas,
        map_limits,
        console: match console_dir {
            Some(dir) => crosswalk_service::http::console::Assets::Dir(dir),
            None => crosswalk_service::http::console::Assets::Embedded,
        },
    };
    let mut state =
        crosswalk_service::http::AppState::with_options(store, host, body_limit, options);
    if let Some(bytes) = floor_bytes {
        state = state.with_floor(bytes);
    }
    let app = crosswalk_service::http::app(state.clone());
    runtime.block_on(async move {
        // Deliveries left in the outbox by a previous run go first.
        state.start_webhooks();
        state.start_following(std::time::Duration::from_millis(resync_ms));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        println!("crosswalk listening on http://{local}");
        tracing::info!(addr = %local, data_dir = %data_dir.display(), body_limit, "listening");
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let ctrl_c = tokio::signal::ctrl_c();
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                        .expect("signal handler");
                tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
                tracing::info!("shutting down: running requests finish first");
            })
            .await
            .context("the server failed")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cli, Command};
    use clap::Parser;

    #[test]
    fn byte_sizes_take_binary_units() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("512MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes("4 GiB"), Ok(4 << 30));
        assert_eq!(parse_bytes("64k"), Ok(64 << 10));
        assert!(
            parse_bytes("12 parsecs")
                .unwrap_err()
                .contains("KiB, MiB or GiB")
        );
        assert!(parse_bytes("lots").is_err());
    }

    #[test]
    fn an_empty_allow_list_allows_nothing_more() {
        let ranges = |args: &[&str]| {
            let cli = Cli::try_parse_from(["crosswalk", "serve"].iter().chain(args))
                .map_err(|e| e.to_string())?;
            let Command::Serve(serve) = cli.command else {
                unreachable!("serve parses as serve")
            };
            Ok::<_, String>(serve.allow_upstream)
        };
        // What `CROSSWALK_ALLOW_UPSTREAM=` gives clap: one empty value.
        assert_eq!(ranges(&["--allow-upstream", ""]), Ok(vec![None]));
        assert_eq!(
            ranges(&["--allow-upstream", "10.20.0.0/16,192.0.2.7"]).unwrap(),
            vec![
                Some("10.20.0.0/16".parse().unwrap()),
                Some("192.0.2.7/32".parse().unwrap())
            ]
        );
        let refused = ranges(&["--allow-upstream", "intranet"]).unwrap_err();
        assert!(
            refused.contains("`intranet` is not an address range"),
            "{refused}"
        );
    }
}
