//! Builds the plugins under `plugins/` for the tests, the way a user would: Rust
//! plugins with cargo for `wasm32-wasip2`, the JavaScript plugin with npm and
//! componentize-js. Shared by the test crates that need plugins, with the helpers of
//! the write round-trip tests.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crosswalk_core::mapping::ReadOnly;
use serde_json::Value;

/// The workspace root: the nearest folder above the test's crate with `wit/` in it.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|p| p.join("wit").is_dir() && p.join("Cargo.toml").is_file())
        .expect("the workspace root (a folder with wit/ and Cargo.toml) above the crate")
        .to_path_buf()
}

/// Where plugin builds go: a target directory of their own, so that a nested cargo
/// never waits on the lock of the cargo that runs the tests.
fn plugin_target_dir() -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    base.join("plugins")
}

/// Builds the Rust plugin `package` for wasm32-wasip2 and returns the component's path.
pub fn rust_plugin(package: &str) -> PathBuf {
    let target_dir = plugin_target_dir();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--profile",
            "plugin",
            "--target",
            "wasm32-wasip2",
            "-p",
            package,
        ])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("RUSTFLAGS")
        .current_dir(root())
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "building plugin {package} failed (is the wasm32-wasip2 target installed? scripts/setup adds it):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = target_dir
        .join("wasm32-wasip2/plugin")
        .join(format!("{}.wasm", package.replace('-', "_")));
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// The Rust plugin `package`'s bytes.
pub fn rust_plugin_bytes(package: &str) -> Vec<u8> {
    std::fs::read(rust_plugin(package)).expect("read plugin")
}

/// Builds the JavaScript plugin with npm and componentize-js. `None`, with the reason
/// printed, where npm is not installed; in CI (`CI=true`) that is a failure instead,
/// since CI must build and test it.
pub fn js_plugin() -> Option<PathBuf> {
    let dir = root().join("plugins/phone-js");
    if Command::new("npm").arg("--version").output().is_err() {
        let message =
            "npm is not installed, so the JavaScript plugin (plugins/phone-js) was not built";
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{message}; CI must build it"
        );
        println!("SKIPPED: {message}");
        return None;
    }
    // Several test processes may get here at once: one builds, the others wait.
    std::fs::create_dir_all(plugin_target_dir()).expect("target dir");
    let lock =
        std::fs::File::create(plugin_target_dir().join(".phone-js.lock")).expect("lock file");
    lock.lock().expect("lock");
    if !dir.join("node_modules/.bin/componentize-js").exists() {
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .output()
            .expect("npm runs");
        assert!(
            out.status.success(),
            "npm ci failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out_path = plugin_target_dir().join("phone.wasm");
    let fresh = |p: &Path| -> bool {
        let built = std::fs::metadata(&out_path).and_then(|m| m.modified());
        let source = std::fs::metadata(p).and_then(|m| m.modified());
        matches!((built, source), (Ok(b), Ok(s)) if b >= s)
    };
    if !(fresh(&dir.join("phone.js"))
        && fresh(&root().join("wit/crosswalk-plugin@0.1.0/plugin.wit")))
    {
        let out = Command::new("npm")
            .args(["run", "--silent", "build", "--", "--out"])
            .arg(&out_path)
            .current_dir(&dir)
            .output()
            .expect("npm runs");
        assert!(
            out.status.success(),
            "building the JavaScript plugin failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Some(out_path)
}

/// Removes from a unified record what a write does not carry: the read-only targets
/// (`lines.line_amount` from every line), `errors` and `remote_data`.
pub fn writable(record: &Value, read_only: &[ReadOnly]) -> Value {
    fn strip(value: &mut Value, path: &[&str]) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        match value {
            Value::Object(m) if rest.is_empty() => {
                m.remove(*first);
            }
            Value::Object(m) => match m.get_mut(*first) {
                Some(Value::Array(items)) => items.iter_mut().for_each(|i| strip(i, rest)),
                Some(inner) => strip(inner, rest),
                None => {}
            },
            _ => {}
        }
    }
    let mut out = record.clone();
    for r in read_only {
        strip(&mut out, &r.target.split('.').collect::<Vec<_>>());
    }
    if let Value::Object(m) = &mut out {
        m.remove("errors");
        m.remove("remote_data");
    }
    out
}

/// The first differences between two JSON values, as paths.
pub fn diff(expected: &Value, actual: &Value, at: &str, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for key in e.keys().chain(a.keys()).collect::<BTreeSet<_>>() {
                let here = format!("{at}.{key}");
                match (e.get(key), a.get(key)) {
                    (Some(x), Some(y)) => diff(x, y, &here, out),
                    (x, y) => out.push(format!("{here}: expected {x:?}, got {y:?}")),
                }
            }
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (x, y)) in e.iter().zip(a).enumerate() {
                diff(x, y, &format!("{at}[{i}]"), out);
            }
        }
        (x, y) if x != y => out.push(format!("{at}: expected {x}, got {y}")),
        _ => {}
    }
}
