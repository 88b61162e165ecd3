//! The `crosswalk` command line: map payloads, inspect and check mappings, query JSON.
//!
//! Every command reads files or stdin and writes JSON or a table to stdout; errors go
//! to stderr with a non-zero exit code (1 for a mapping or payload error, 2 for a
//! usage error or an invalid JSONPath selector).

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path as FsPath, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::Value;

use crosswalk_core::mapping::{
    Document, Format, MapLimits, MapOptions, OverrideSpec, Payload, Plan, ResolvedMapping,
    WritePlan,
};
use crosswalk_core::model::Entity;
use crosswalk_core::path::Path;
use crosswalk_plugin_host::{FunctionKind, HostConfig, Limits, Plugin as _, PluginHost, PluginSet};
use crosswalk_service::ndjson;
use crosswalk_systems::{self as systems, SYSTEMS, System};

mod plugin;
mod serve;
mod store;

use serve::ServeArgs;

/// Crosswalk maps source-system payloads (SAP S/4HANA, IBM Maximo, Dynamics 365) to one
/// unified model.
#[derive(Debug, Parser)]
#[command(name = "crosswalk", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Plugins to load for a command.
#[derive(Debug, clap::Args)]
struct PluginArgs {
    /// A plugin component to load (repeatable); mapping rules call it by its name.
    #[arg(long = "plugin", value_name = "FILE")]
    plugins: Vec<PathBuf>,
    #[command(flatten)]
    cache: CacheArgs,
}

/// Where compiled plugins are kept.
#[derive(Debug, clap::Args)]
struct CacheArgs {
    /// Where compiled plugins are cached, so that a second run does not compile again.
    #[arg(long, env = "CROSSWALK_PLUGIN_CACHE", value_name = "DIR")]
    plugin_cache: Option<PathBuf>,
}

impl PluginArgs {
    /// Loads the plugins, under the same limits as the server.
    fn load(&self) -> Result<PluginSet> {
        let mut set = PluginSet::new();
        if self.plugins.is_empty() {
            return Ok(set);
        }
        let host = self.host()?;
        for file in &self.plugins {
            let bytes =
                fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            let plugin = host
                .load(&bytes)
                .with_context(|| format!("{}", file.display()))?;
            if let Some(previous) = set.insert(plugin, Limits::DEFAULT) {
                bail!(
                    "{}: a plugin named `{}` is loaded twice",
                    file.display(),
                    previous.plugin.name()
                );
            }
        }
        Ok(set)
    }

    fn host(&self) -> Result<PluginHost> {
        self.cache.host()
    }
}

impl CacheArgs {
    /// A host with the server's limits, caching compiled plugins here.
    fn host(&self) -> Result<PluginHost> {
        let cache_dir = self.plugin_cache.clone().or_else(|| {
            std::env::var_os("HOME")
                .map(|home| PathBuf::from(home).join(".cache/crosswalk/plugins"))
        });
        Ok(PluginHost::new(HostConfig {
            cache_dir,
            ..HostConfig::default()
        })?)
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Map source records (one, an array or a collection envelope) to unified records.
    Map {
        /// The source system, e.g. sap-s4hana.
        #[arg(long)]
        system: String,
        /// The unified entity, e.g. purchase_order.
        #[arg(long)]
        entity: Entity,
        /// A connection's override file (YAML or JSON).
        #[arg(long)]
        overrides: Option<PathBuf>,
        /// The payload file; stdin when absent.
        #[arg(long)]
        input: Option<PathBuf>,
        /// Add the raw source record as `remote_data`.
        #[arg(long)]
        remote_data: bool,
        /// Fail a record on its first field error instead of mapping the field to null.
        #[arg(long)]
        strict: bool,
        /// One JSON document per line instead of indented JSON.
        #[arg(long)]
        compact: bool,
        /// The input is NDJSON: one source record per line, mapped in batches as it is
        /// read; the output is one unified record (or error) per line, in order.
        #[arg(long)]
        ndjson: bool,
        /// The other way: the input is unified records (one or an array, or the fields
        /// of an update), and the output is the system's own payload each would be
        /// written as, through the same inverses the service uses (plugin inverses
        /// included). A field that cannot be written fails its record, naming why.
        #[arg(long, conflicts_with_all = ["ndjson", "remote_data", "strict"])]
        reverse: bool,
        #[command(flatten)]
        plugins: PluginArgs,
    },
    /// Show, check or describe mappings.
    Mapping {
        #[command(subcommand)]
        command: MappingCommand,
    },
    /// List the source systems and the entities they map.
    Systems,
    /// Print the RFC 9535 nodelist of a JSONPath query as a JSON array.
    Query {
        /// The JSONPath query, e.g. '$.d.results[*].PurchaseOrder'.
        query: String,
        /// The JSON file; stdin when absent.
        #[arg(long)]
        input: Option<PathBuf>,
    },
    /// The unified model.
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
    /// Transform plugins.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Run the HTTP service, with its embedded storage (or a shared PostgreSQL store).
    Serve(Box<ServeArgs>),
    /// Work on a service's store.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Copy everything a store holds into another, empty one, and verify the copy by
    /// counts: a data dir's embedded store into PostgreSQL, or back. Stop the servers
    /// of the source first: what they change meanwhile is not copied.
    Copy {
        /// The store to copy: a data dir (as `serve --data-dir`) or a postgres:// address.
        #[arg(long)]
        from: String,
        /// The empty store to copy into: a data dir or a postgres:// address.
        #[arg(long)]
        to: String,
    },
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Load a plugin as the server would (same checks, same limits) and describe it.
    Check {
        /// The component (.wasm).
        file: PathBuf,
        #[command(flatten)]
        plugins: PluginArgs,
    },
    /// Write a new plugin project (Rust, JavaScript or Python) that builds with its
    /// language's own command and passes `plugin check` as it is
    New {
        /// The plugin's name (1 to 64 lower-case letters, digits, `-` or `_`): rules
        /// call it by this name.
        name: String,
        /// The language.
        #[arg(long, value_enum)]
        lang: plugin::Lang,
        /// Where to write it (a directory that does not exist); `./NAME` by default.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Call one function of a plugin once, under the limits the service runs it with,
    /// and print its output (stdout), its log and what it used (stderr): instantiation
    /// and call time, linear memory, epoch ticks
    Run {
        /// The component (.wasm).
        file: PathBuf,
        /// The function to call.
        function: String,
        /// The static arguments, as a mapping rule gives them (JSON), checked against
        /// the function's schema.
        #[arg(long, default_value = "{}")]
        args: String,
        /// The input (JSON): the value for a field function; a record or an array of
        /// records for a record function. stdin when absent.
        #[arg(long)]
        input: Option<PathBuf>,
        /// Limits over the defaults, as a binding gives them (JSON), e.g.
        /// '{"timeout_ms": 100, "memory_bytes": 16777216}'.
        #[arg(long)]
        limits: Option<String>,
        #[command(flatten)]
        cache: CacheArgs,
    },
}

#[derive(Debug, Subcommand)]
enum MappingCommand {
    /// Print the resolved mapping: every target with its source, transforms and origin.
    Show {
        /// The source system.
        #[arg(long)]
        system: String,
        /// The unified entity.
        #[arg(long)]
        entity: Entity,
        /// A connection's override file to apply.
        #[arg(long)]
        overrides: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ShowFormat::Table)]
        format: ShowFormat,
        #[command(flatten)]
        plugins: PluginArgs,
    },
    /// Validate a mapping or override file and report every problem.
    Check {
        /// The file (YAML or JSON).
        file: PathBuf,
        #[command(flatten)]
        plugins: PluginArgs,
    },
    /// Print the JSON Schema of mapping and override documents.
    Schema,
}

#[derive(Debug, Subcommand)]
enum ModelCommand {
    /// Print an entity's JSON Schema.
    Show {
        /// The entity, e.g. purchase_order.
        entity: Entity,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ShowFormat {
    Table,
    Json,
}

/// A failure that decides its own exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct Exit {
    code: u8,
    message: String,
}

/// Runs the command line and returns the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut stdout = io::stdout().lock();
    match run(cli, &mut stdout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = e.downcast_ref::<Exit>().map(|x| x.code).unwrap_or(1);
            if e.downcast_ref::<io::Error>()
                .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e:#}");
            ExitCode::from(code)
        }
    }
}

fn run(cli: Cli, out: &mut impl Write) -> Result<()> {
    match cli.command {
        Command::Map {
            system,
            entity,
            overrides,
            input,
            remote_data,
            strict,
            compact,
            ndjson,
            reverse,
            plugins,
        } => {
            let overrides = overrides.as_deref().map(read_overrides).transpose()?;
            let plugins = plugins.load()?;
            if reverse {
                let resolved = systems::resolve(&system, entity, overrides.as_ref())?;
                Plan::compile(&resolved, &plugins)
                    .with_context(|| format!("cannot map {system} {entity}"))?;
                let write = systems::write_plan(&resolved, &plugins)
                    .with_context(|| format!("cannot write {system} {entity}"))?;
                let text = read_input(input.as_deref())?;
                return write_native(&write, &text, compact, out);
            }
            // The budgets of the service, but no answer limit: the output is the caller's.
            let plan = systems::plan_with(&system, entity, overrides.as_ref(), &plugins)
                .with_context(|| format!("cannot map {system} {entity}"))?
                .with_limits(MapLimits {
                    max_answer_bytes: u64::MAX,
                    ..MapLimits::DEFAULT
                });
            let options = MapOptions {
                strict,
                remote_data,
            };
            if ndjson {
                return map_ndjson(&plan, input.as_deref(), options, out);
            }
            let text = read_input(input.as_deref())?;
            let payload = Payload::parse_for(&text, &plan, options)?;
            map(&plan, payload, options, compact, out)
        }
        Command::Mapping {
            command:
                MappingCommand::Show {
                    system,
                    entity,
                    overrides,
                    format,
                    plugins,
                },
        } => {
            let overrides = overrides.as_deref().map(read_overrides).transpose()?;
            let resolved = systems::resolve(&system, entity, overrides.as_ref())?;
            let plugins = plugins.load()?;
            Plan::compile(&resolved, &plugins)?;
            match format {
                ShowFormat::Json => {
                    // The resolved mapping, and what writes cannot set through it, as
                    // the service's mapping answer gives them.
                    let write = systems::write_plan(&resolved, &plugins)?;
                    let mut shown = serde_json::to_value(&resolved)?;
                    shown["read_only"] = serde_json::to_value(write.read_only())?;
                    if let Some(refused) = write.refused() {
                        shown["write_refused"] = refused.into();
                    }
                    writeln!(out, "{}", serde_json::to_string_pretty(&shown)?)?
                }
                ShowFormat::Table => write_table(&resolved, out)?,
            }
            Ok(())
        }
        Command::Mapping {
            command: MappingCommand::Check { file, plugins },
        } => check(&file, &plugins.load()?, out),
        Command::Mapping {
            command: MappingCommand::Schema,
        } => {
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&crosswalk_core::mapping::spec::json_schema())?
            )?;
            Ok(())
        }
        Command::Systems => {
            for s in SYSTEMS {
                let entities: Vec<&str> = s.entities().map(Entity::as_str).collect();
                writeln!(out, "{:<16} {:<46} {}", s.id, s.name, entities.join(", "))?;
            }
            Ok(())
        }
        Command::Query { query, input } => {
            let path = Path::parse(&query).map_err(|e| Exit {
                code: 2,
                message: e.to_string(),
            })?;
            let text = read_input(input.as_deref())?;
            let doc: Value = serde_json::from_str(&text).map_err(|e| Exit {
                code: 1,
                message: format!("the input is not valid JSON: {e}"),
            })?;
            let nodes: Vec<&Value> = path.nodes(&doc);
            writeln!(out, "{}", serde_json::to_string_pretty(&nodes)?)?;
            Ok(())
        }
        Command::Model {
            command: ModelCommand::Show { entity },
        } => {
            write!(out, "{}", entity.schema_text())?;
            Ok(())
        }
        Command::Serve(args) => serve::serve(*args),
        Command::Store {
            command: StoreCommand::Copy { from, to },
        } => store::copy(&from, &to, out),
        Command::Plugin {
            command: PluginCommand::New { name, lang, dir },
        } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            plugin::new(&name, lang, &dir, out)
        }
        Command::Plugin {
            command:
                PluginCommand::Run {
                    file,
                    function,
                    args,
                    input,
                    limits,
                    cache,
                },
        } => {
            let input = read_input(input.as_deref())?;
            plugin::run(
                &cache.host()?,
                plugin::RunArgs {
                    file: &file,
                    function: &function,
                    args: &args,
                    input: &input,
                    limits: limits.as_deref(),
                },
                out,
                &mut io::stderr().lock(),
            )
        }
        Command::Plugin {
            command: PluginCommand::Check { file, plugins },
        } => {
            let bytes =
                fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let plugin = plugins
                .host()?
                .load(&bytes)
                .with_context(|| format!("{}", file.display()))?;
            writeln!(
                out,
                "ok: {}: plugin `{}` version {} ({})",
                file.display(),
                plugin.name(),
                plugin.version(),
                plugin.interface()
            )?;
            writeln!(out, "sha256: {}", plugin.sha256())?;
            let limits = Limits::DEFAULT;
            writeln!(
                out,
                "limits: {} ms per call, {} MiB memory, {} KiB stack, {} MiB input, {} MiB output",
                limits.timeout_ms,
                limits.memory_bytes >> 20,
                crosswalk_plugin_host::STACK_BYTES >> 10,
                limits.max_input_bytes >> 20,
                limits.max_output_bytes >> 20
            )?;
            writeln!(out, "functions:")?;
            for f in plugin.functions() {
                let kind = match f.kind {
                    FunctionKind::Field => "field ",
                    FunctionKind::Record => "record",
                };
                writeln!(out, "  {kind} {}: {}", f.name, f.description)?;
                writeln!(out, "         args: {}", f.args_schema)?;
                match (&f.inverse, f.kind) {
                    (Some(inverse), _) => writeln!(out, "         inverse: {inverse}")?,
                    (None, FunctionKind::Field) => writeln!(
                        out,
                        "         inverse: none (a field it converts is read-only in writes)"
                    )?,
                    (None, FunctionKind::Record) => writeln!(
                        out,
                        "         inverse: none (as a pre or post step it makes writes refused)"
                    )?,
                }
            }
            Ok(())
        }
    }
}

/// `map --reverse`: the native payload of each unified record in `text` (one record or
/// an array of them), or every field of every record that cannot be written.
fn write_native(write: &WritePlan, text: &str, compact: bool, out: &mut impl Write) -> Result<()> {
    let input: Value = serde_json::from_str(text).map_err(|e| Exit {
        code: 1,
        message: format!("the input is not valid JSON: {e}"),
    })?;
    let (one, records) = match input {
        Value::Array(records) => (false, records),
        record => (true, vec![record]),
    };
    let mut natives = Vec::with_capacity(records.len());
    let mut failures = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let written = write.write(record);
        for line in &written.log {
            eprintln!("{line}");
        }
        match written.native {
            Ok(native) => natives.push(native),
            Err(errors) => {
                let why: Vec<String> = errors
                    .iter()
                    .map(|e| match e.field.as_str() {
                        "" => e.message.clone(),
                        field => format!("`{field}`: {}", e.message),
                    })
                    .collect();
                failures.push(match one {
                    true => why.join("\n  "),
                    false => format!("record {i}: {}", why.join("; ")),
                });
            }
        }
    }
    if !failures.is_empty() {
        bail!(
            "{} of {} records cannot be written:\n  {}",
            failures.len(),
            records.len(),
            failures.join("\n  ")
        );
    }
    let shown = match one {
        true => natives.pop().expect("one record"),
        false => Value::Array(natives),
    };
    match compact {
        true => writeln!(out, "{}", serde_json::to_string(&shown)?)?,
        false => writeln!(out, "{}", serde_json::to_string_pretty(&shown)?)?,
    }
    Ok(())
}

fn map(
    plan: &Plan,
    payload: Payload,
    options: MapOptions,
    compact: bool,
    out: &mut impl Write,
) -> Result<()> {
    let print = |value: &Value, out: &mut dyn Write| -> Result<()> {
        if compact {
            writeln!(out, "{}", serde_json::to_string(value)?)?;
        } else {
            writeln!(out, "{}", serde_json::to_string_pretty(value)?)?;
        }
        Ok(())
    };
    let (one, records) = match payload {
        Payload::One(record) => (true, vec![record]),
        Payload::Many(records) => (false, records),
    };
    let batch = plan.map_batch(&records, options);
    for line in &batch.log {
        eprintln!("{line}");
    }
    match one {
        true => {
            let mapped = batch.records.into_iter().next().expect("one record")?;
            print(&mapped, out)
        }
        false => {
            let mut mapped = Vec::with_capacity(records.len());
            let mut failures = Vec::new();
            for (i, result) in batch.records.into_iter().enumerate() {
                match result {
                    Ok(m) => mapped.push(m),
                    Err(e) => failures.push(format!("record {i}: {e}")),
                }
            }
            if !failures.is_empty() {
                bail!(
                    "{} of {} records failed to map:\n  {}",
                    failures.len(),
                    records.len(),
                    failures.join("\n  ")
                );
            }
            if compact {
                for m in &mapped {
                    print(m, out)?;
                }
                Ok(())
            } else {
                print(&Value::Array(mapped), out)
            }
        }
    }
}

/// Source records mapped together from NDJSON, with one plugin session: at most this
/// many, and about [`NDJSON_BATCH_BYTES`] of source text, so that memory stays flat
/// however large the records are.
const NDJSON_BATCH: usize = 256;
const NDJSON_BATCH_BYTES: usize = 1 << 20;

/// Maps NDJSON as it is read, as the service's transform endpoint does (both read and
/// answer through `crosswalk_service::ndjson`): one answer line per non-blank input
/// line, a unified record or an error in the API's error shape with the line number.
/// Fails at the end when any line failed.
fn map_ndjson(
    plan: &Plan,
    input: Option<&FsPath>,
    options: MapOptions,
    out: &mut impl Write,
) -> Result<()> {
    let mut reader: Box<dyn Read> = match input {
        Some(f) => {
            Box::new(fs::File::open(f).with_context(|| format!("cannot read {}", f.display()))?)
        }
        None => Box::new(io::stdin().lock()),
    };
    let mut out = io::BufWriter::with_capacity(1 << 16, out);
    // A line may be as long as a file: the command line reads what it is given.
    let mut lines = ndjson::Splitter::new(usize::MAX);
    let (mut total, mut failed) = (0usize, 0usize);
    let mut answer = |batch: Vec<(usize, Bytes)>, out: &mut dyn Write| -> Result<()> {
        total += batch.len();
        let answered = ndjson::map_lines(plan, options, &batch, None, |mapped| {
            for line in &mapped.log {
                eprintln!("{line}");
            }
        });
        failed += answered.failed;
        out.write_all(&answered.out)?;
        Ok(())
    };
    let mut piece = vec![0; 1 << 16];
    loop {
        let read = match reader.read(&mut piece) {
            Ok(0) => break,
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("cannot read the input"),
        };
        if let Err(e) = lines.push(Bytes::copy_from_slice(&piece[..read])) {
            bail!("{}", e.error.message);
        }
        while let Some(batch) = lines.full_batch(NDJSON_BATCH, NDJSON_BATCH_BYTES) {
            answer(batch, &mut out)?;
        }
    }
    lines.finish();
    while let Some(batch) = lines.full_batch(NDJSON_BATCH, NDJSON_BATCH_BYTES) {
        answer(batch, &mut out)?;
    }
    answer(lines.take_all(), &mut out)?;
    out.flush()?;
    if failed > 0 {
        bail!("{failed} of {total} records failed to map (see their error lines)");
    }
    Ok(())
}

fn check(file: &FsPath, plugins: &PluginSet, out: &mut impl Write) -> Result<()> {
    let text =
        fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let name = file.display();
    let document =
        Document::parse(&text, Format::of_file(file)).with_context(|| format!("{name}"))?;
    match document {
        Document::Mapping(spec) => {
            let plan = Plan::compile(&ResolvedMapping::from_spec(&spec), plugins)
                .with_context(|| format!("{name}"))?;
            writeln!(
                out,
                "ok: {name}: mapping of {} {}, {} rules",
                spec.system,
                plan.entity(),
                spec.rules.len()
            )?;
        }
        Document::Overrides(spec) => {
            let (Some(system), Some(entity)) = (&spec.system, spec.entity) else {
                bail!(
                    "{name}: an override file checked on its own must name its `system` and `entity`"
                );
            };
            System::get(system).with_context(|| format!("{name}"))?;
            systems::plan_with(system, entity, Some(&spec), plugins)
                .with_context(|| format!("{name}"))?;
            writeln!(
                out,
                "ok: {name}: overrides of {system} {entity}, {} changes",
                spec.overrides.len()
            )?;
        }
    }
    Ok(())
}

fn write_table(resolved: &ResolvedMapping, out: &mut impl Write) -> Result<()> {
    let rows: Vec<[String; 4]> = resolved
        .rows()
        .into_iter()
        .map(|(target, rule)| {
            let spec = &rule.spec;
            let source = if let Some(p) = &spec.path {
                p.clone()
            } else if let Some(c) = &spec.constant {
                format!("const {c}")
            } else if let Some(ps) = &spec.coalesce {
                format!("coalesce {}", ps.join(" | "))
            } else if rule.rules.is_some() {
                "$".into()
            } else {
                "-".into()
            };
            let mut transforms: Vec<String> =
                spec.transforms.iter().map(|s| step_label(&s.0)).collect();
            if let Some(d) = &spec.default {
                transforms.push(format!("default {d}"));
            }
            let transforms = if transforms.is_empty() {
                "-".into()
            } else {
                transforms.join(", ")
            };
            let target = if spec.required {
                format!("{target} (required)")
            } else {
                target
            };
            let origin = if rule.disabled {
                format!("{} (disabled)", rule.origin.as_str())
            } else {
                rule.origin.as_str().into()
            };
            [target, source, transforms, origin]
        })
        .collect();
    let header = ["TARGET", "SOURCE", "TRANSFORMS", "ORIGIN"].map(String::from);
    let mut widths = [0usize; 4];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    writeln!(out, "{} {}", resolved.system, resolved.entity)?;
    for row in std::iter::once(&header).chain(&rows) {
        let line = format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// `date`, `round(2)`, `lookup(5 values)`: a transform step in a table cell.
fn step_label(step: &Value) -> String {
    match step {
        Value::String(name) => name.clone(),
        Value::Object(map) if map.len() == 1 => {
            let (name, args) = map.iter().next().expect("one entry");
            let args = match (name.as_str(), args) {
                ("lookup", a) => format!("{} values", a["map"].as_object().map_or(0, |m| m.len())),
                (_, Value::String(s)) => format!("{s:?}"),
                (_, Value::Object(args)) => args
                    .iter()
                    .map(|(k, v)| match v {
                        Value::String(s) => format!("{k}={s}"),
                        v => format!("{k}={v}"),
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
                (_, a) => a.to_string(),
            };
            let args: String = if args.chars().count() > 40 {
                format!("{}…", args.chars().take(40).collect::<String>())
            } else {
                args
            };
            format!("{name}({args})")
        }
        other => other.to_string(),
    }
}

fn read_overrides(file: &FsPath) -> Result<OverrideSpec> {
    let text =
        fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    OverrideSpec::parse(&text, Format::of_file(file)).with_context(|| format!("{}", file.display()))
}

fn read_input(file: Option<&FsPath>) -> Result<String> {
    match file {
        Some(f) => fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display())),
        None => {
            let mut text = String::new();
            io::stdin()
                .read_to_string(&mut text)
                .context("cannot read stdin")?;
            Ok(text)
        }
    }
}
