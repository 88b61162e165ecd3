//! `crosswalk plugin run`: one call of one plugin function, the way the service makes
//! it, for a plugin's author.
//!
//! The plugin is loaded as the service loads it (same checks), the static arguments
//! are checked against the function's schema as a mapping's are when it compiles, and
//! the call runs under the limits a binding gets by default (or the ones given, within
//! the same ceilings). What it returns goes to stdout; what it logged and what it used
//! (instantiation and call time, memory, epoch ticks) to stderr, so that the output
//! can be piped on.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crosswalk_plugin_host::{
    FunctionKind, Instance as _, LimitOverrides, Limits, Plugin as _, PluginHost,
};

/// What `plugin run` calls, and with what.
pub struct RunArgs<'a> {
    /// The component.
    pub file: &'a Path,
    /// The function's name.
    pub function: &'a str,
    /// The static arguments, as JSON text.
    pub args: &'a str,
    /// The value (field function), or a record or an array of records (record
    /// function), as JSON text.
    pub input: &'a str,
    /// The limits to run under, as JSON text (`{"timeout_ms": 100}`), over the defaults.
    pub limits: Option<&'a str>,
}

/// Calls the function once and writes its output to `out`, its log and its usage to
/// `err`. Fails (exit code 1) when the call does, after the log and usage.
pub fn run(
    host: &PluginHost,
    a: RunArgs<'_>,
    out: &mut impl Write,
    err: &mut impl Write,
) -> Result<()> {
    let bytes = fs::read(a.file).with_context(|| format!("cannot read {}", a.file.display()))?;
    let plugin = host
        .load(&bytes)
        .with_context(|| format!("{}", a.file.display()))?;
    let Some(f) = plugin.functions().iter().find(|f| f.name == a.function) else {
        let names: Vec<&str> = plugin.functions().iter().map(|f| f.name.as_str()).collect();
        bail!(
            "plugin `{}` has no function `{}`; its functions are {}",
            plugin.name(),
            a.function,
            names.join(", ")
        );
    };
    let kind = f.kind;
    let args: Value = serde_json::from_str(a.args).context("--args is not JSON")?;
    plugin.check_args(a.function, &args)?;
    let limits = match a.limits {
        None => Limits::DEFAULT,
        Some(text) => {
            let overrides: LimitOverrides =
                serde_json::from_str(text).context("--limits is not a limits object")?;
            Limits::with(&overrides)?
        }
    };
    let input: Value = serde_json::from_str(a.input).context("the input is not JSON")?;
    let mut instance = plugin.instance(limits);
    let args_text = args.to_string();
    // Instantiated first, so that its time and what its start code logged are shown
    // apart from the call's.
    let started = instance.start().map_err(anyhow::Error::from);
    let result: Result<Value> = started.and_then(|()| match kind {
        FunctionKind::Field => instance
            .call_field(a.function, &input, &args_text)
            .map_err(Into::into),
        FunctionKind::Record => {
            let (records, one) = match input {
                Value::Array(records) => (records, false),
                record => (vec![record], true),
            };
            instance
                .call_records(a.function, &records, &args_text)
                .map_err(anyhow::Error::from)
                .and_then(|results| {
                    let mut outputs = Vec::with_capacity(results.len());
                    for (i, r) in results.into_iter().enumerate() {
                        outputs.push(r.with_context(|| format!("record {i}"))?);
                    }
                    Ok(if one {
                        outputs.pop().expect("one record")
                    } else {
                        Value::Array(outputs)
                    })
                })
        }
    });
    for line in instance.take_log() {
        writeln!(err, "log: {line}")?;
    }
    let usage = instance.usage();
    writeln!(
        err,
        "used: instantiation {} ({}), call {} of {} ms, memory {} of {}, {} epoch ticks",
        millis(usage.instantiation),
        match usage.instantiations {
            1 => "once".to_owned(),
            n => format!("{n} times"),
        },
        millis(usage.calls),
        limits.timeout_ms,
        mebibytes(usage.memory_bytes),
        mebibytes(limits.memory_bytes),
        usage.ticks
    )?;
    let output = result?;
    writeln!(out, "{}", serde_json::to_string_pretty(&output)?)?;
    Ok(())
}

fn millis(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn mebibytes(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

/// A language `plugin new` writes a project in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// Rust, with the Rust SDK: `cargo build --release`.
    Rust,
    /// JavaScript, with componentize-js: `npm install && npm run build`.
    Js,
    /// Python, with componentize-py: `componentize-py -d wit -w plugin componentize app
    /// -o NAME.wasm`.
    Python,
}

/// The world every new project implements.
const WIT: &str = include_str!("../../../wit/crosswalk-plugin@0.2.0/plugin.wit");

/// The Rust SDK, copied into a Rust project (`sdk/`), whose bindings then come from
/// the project's own copy of the WIT.
const RUST_SDK: &str = include_str!("../../../plugins/sdk/src/lib.rs");

/// The versions the copied Rust SDK builds with: the workspace's (a test checks them
/// against Cargo.lock, so that a new project builds with what CI built).
const RUST_SDK_MANIFEST: &str = r#"[package]
name = "crosswalk-plugin-sdk"
description = "Write Crosswalk transform plugins in Rust: the WIT bindings and a JSON-level trait (copied by `crosswalk plugin new`)"
version = "0.1.0"
edition = "2024"
publish = false

[dependencies]
serde_json = { version = "1", features = ["preserve_order", "arbitrary_precision"] }
wit-bindgen = { version = "=0.61.1", default-features = false, features = ["macros", "realloc", "std"] }
"#;

/// The files of a new project of `lang`, by path, `{{name}}` and `{{crate}}` not yet
/// replaced.
fn template(lang: Lang) -> Vec<(&'static str, String)> {
    let sdk_rust = RUST_SDK.replace(
        "path: \"../../wit/crosswalk-plugin@0.2.0\"",
        "path: \"wit\"",
    );
    match lang {
        Lang::Rust => vec![
            (
                "Cargo.toml",
                include_str!("../templates/rust/Cargo.toml").into(),
            ),
            (
                ".cargo/config.toml",
                include_str!("../templates/rust/.cargo/config.toml").into(),
            ),
            (
                "src/lib.rs",
                include_str!("../templates/rust/src/lib.rs").into(),
            ),
            (
                "README.md",
                include_str!("../templates/rust/README.md").into(),
            ),
            (".gitignore", "target/\n".into()),
            ("sdk/Cargo.toml", RUST_SDK_MANIFEST.into()),
            ("sdk/src/lib.rs", sdk_rust),
            ("sdk/wit/plugin.wit", WIT.into()),
        ],
        Lang::Js => vec![
            (
                "package.json",
                include_str!("../templates/js/package.json").into(),
            ),
            (
                "plugin.js",
                include_str!("../templates/js/plugin.js").into(),
            ),
            (
                "README.md",
                include_str!("../templates/js/README.md").into(),
            ),
            (".gitignore", "node_modules/\n*.wasm\n".into()),
            (
                "crosswalk-plugin.js",
                include_str!("../../../plugins/sdk-js/crosswalk-plugin.js").into(),
            ),
            ("wit/plugin.wit", WIT.into()),
        ],
        Lang::Python => vec![
            ("app.py", include_str!("../templates/python/app.py").into()),
            (
                "README.md",
                include_str!("../templates/python/README.md").into(),
            ),
            (".gitignore", "__pycache__/\n*.wasm\n".into()),
            (
                "crosswalk_plugin.py",
                include_str!("../../../plugins/sdk-python/crosswalk_plugin.py").into(),
            ),
            ("wit/plugin.wit", WIT.into()),
        ],
    }
}

/// Whether `name` is a plugin name the host takes: 1 to 64 lower-case letters, digits,
/// `-` or `_`. A project's directory, package and plugin are all called by it.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_lowercase()
}

/// Writes a new plugin project named `name` in `lang` into `dir` (which must not
/// exist), and says how to build and check it. Writes nothing when anything is wrong.
pub fn new(name: &str, lang: Lang, dir: &Path, out: &mut impl Write) -> Result<()> {
    if !valid_name(name) {
        bail!(
            "`{name}` is not a plugin name: it must be 1 to 64 lower-case letters, digits, `-` or `_`, starting with a letter"
        );
    }
    if dir.exists() {
        bail!(
            "{} already exists: plugin new writes a new directory",
            dir.display()
        );
    }
    let krate = name.replace('-', "_");
    let files = template(lang);
    // Written into a sibling first and renamed at the end, so that a failure leaves
    // nothing behind.
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let staging = parent.join(format!(
        ".{}.crosswalk-new-{}",
        dir.file_name()
            .map_or_else(|| name.into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    let written = (|| -> Result<()> {
        for (path, text) in &files {
            let path = staging.join(path);
            fs::create_dir_all(path.parent().expect("a file in the project"))?;
            fs::write(
                &path,
                text.replace("{{name}}", name).replace("{{crate}}", &krate),
            )
            .with_context(|| format!("cannot write {}", path.display()))?;
        }
        fs::rename(&staging, dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(())
    })();
    if let Err(e) = written {
        let _ = fs::remove_dir_all(&staging);
        return Err(e);
    }
    let (build, wasm) = match lang {
        Lang::Rust => (
            "cargo build --release".to_owned(),
            format!("target/wasm32-wasip2/release/crosswalk_plugin_{krate}.wasm"),
        ),
        Lang::Js => (
            "npm install && npm run build".to_owned(),
            format!("{name}.wasm"),
        ),
        Lang::Python => (
            format!("componentize-py -d wit -w plugin componentize app -o {name}.wasm"),
            format!("{name}.wasm"),
        ),
    };
    let language = match lang {
        Lang::Rust => "Rust",
        Lang::Js => "JavaScript",
        Lang::Python => "Python",
    };
    writeln!(
        out,
        "created {} ({language} plugin `{name}`)",
        dir.display()
    )?;
    writeln!(out, "build:  cd {} && {build}", dir.display())?;
    writeln!(
        out,
        "check:  crosswalk plugin check {}/{wasm}",
        dir.display()
    )?;
    writeln!(
        out,
        "try it: crosswalk plugin run {}/{wasm} prefix --args '{{\"prefix\": \"PO-\"}}' <<< '\"4500000187\"'",
        dir.display()
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new Rust project builds with what the workspace builds its plugins with.
    #[test]
    fn the_copied_sdk_pins_the_workspaces_wit_bindgen() {
        let lock = include_str!("../../../Cargo.lock");
        let pinned = RUST_SDK_MANIFEST
            .lines()
            .find_map(|l| l.strip_prefix("wit-bindgen = { version = \"="))
            .and_then(|rest| rest.split('"').next())
            .expect("wit-bindgen is pinned");
        assert!(
            lock.contains(&format!("name = \"wit-bindgen\"\nversion = \"{pinned}\"")),
            "Cargo.lock has no wit-bindgen {pinned}: update RUST_SDK_MANIFEST"
        );
        let sdk = template(Lang::Rust)
            .into_iter()
            .find(|(p, _)| *p == "sdk/src/lib.rs")
            .unwrap()
            .1;
        assert!(
            sdk.contains("path: \"wit\""),
            "the SDK's WIT path was not rewritten"
        );
    }

    #[test]
    fn names_are_the_hosts_plugin_names() {
        assert!(valid_name("greet") && valid_name("sap-uom_2"));
        for bad in ["", "Greet", "2x", "a b", "ä", &"x".repeat(65)] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }
}
