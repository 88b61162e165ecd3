//! End-to-end: a plugin in each language, as a new author makes one. `crosswalk plugin
//! new` writes the project, the language's own command builds it (cargo, npm with
//! componentize-js, componentize-py), `crosswalk plugin check` and `plugin run` take
//! it, and the real server uploads it, binds it and maps through it; what the plugin
//! printed is in the connection's plugin log.
//!
//! The toolchains are part of the test: a missing one fails it, naming what to install
//! (`scripts/setup` installs them), unless `CROSSWALK_SKIP_PLUGIN_LANGS=1`.

use crate::server::{Server, request};
use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

/// Whether the user opted out of the other languages' toolchains.
fn skipped() -> bool {
    if std::env::var("CROSSWALK_SKIP_PLUGIN_LANGS").as_deref() == Ok("1") {
        println!("SKIPPED: CROSSWALK_SKIP_PLUGIN_LANGS=1");
        return true;
    }
    false
}

/// Runs `command`, failing with its output, or with what to install when its program
/// is missing.
fn run(command: &mut Command, what: &str) -> String {
    let program = command.get_program().to_string_lossy().into_owned();
    let out = command.output().unwrap_or_else(|e| {
        panic!(
            "{what}: cannot run `{program}` ({e}); scripts/setup installs it (or set CROSSWALK_SKIP_PLUGIN_LANGS=1)"
        )
    });
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn crosswalk() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_crosswalk"));
    c.env("CROSSWALK_PLUGIN_CACHE", projects_dir().join("cache"));
    c
}

/// Where the projects are written and built: under the test build's directory, so
/// that a second run reuses the Rust project's compiled dependencies.
fn projects_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-projects")
}

/// Writes a fresh project of `lang` named `name` and builds it with its language's
/// own command; the component's path.
fn new_and_build(lang: &str, name: &str) -> PathBuf {
    let dir = projects_dir().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(projects_dir()).unwrap();
    let said = run(
        crosswalk()
            .args(["plugin", "new", name, "--lang", lang, "--dir"])
            .arg(&dir),
        "crosswalk plugin new",
    );
    assert!(said.contains("build:"), "{said}");
    match lang {
        "rust" => {
            run(
                Command::new("cargo")
                    .args(["build", "--release"])
                    .current_dir(&dir)
                    // The workspace's target dir would be this project's too; its own
                    // keeps the two apart, and lasts between runs.
                    .env("CARGO_TARGET_DIR", projects_dir().join("rust-target")),
                "cargo build --release",
            );
            projects_dir()
                .join("rust-target/wasm32-wasip2/release")
                .join(format!("crosswalk_plugin_{}.wasm", name.replace('-', "_")))
        }
        "js" => {
            run(
                Command::new("npm")
                    .args(["install", "--no-audit", "--no-fund"])
                    .current_dir(&dir),
                "npm install",
            );
            run(
                Command::new("npm").args(["run", "build"]).current_dir(&dir),
                "npm run build",
            );
            dir.join(format!("{name}.wasm"))
        }
        "python" => {
            run(
                Command::new("componentize-py")
                    .args(["-d", "wit", "-w", "plugin", "componentize", "app", "-o"])
                    .arg(format!("{name}.wasm"))
                    .current_dir(&dir),
                "componentize-py",
            );
            dir.join(format!("{name}.wasm"))
        }
        other => unreachable!("{other}"),
    }
}

/// The project as written checks, runs, uploads, binds and maps; its print is in the
/// plugin log.
fn a_new_project_builds_checks_and_maps(lang: &str) {
    if skipped() {
        return;
    }
    let name = format!("greet-{lang}");
    let wasm = new_and_build(lang, &name);
    assert!(wasm.is_file(), "{} was not built", wasm.display());

    let check = run(
        crosswalk().args(["plugin", "check"]).arg(&wasm),
        "crosswalk plugin check",
    );
    assert!(check.contains(&format!("plugin `{name}`")), "{check}");
    assert!(check.contains("inverse: unprefix"), "{check}");

    // One call under the production limits: the output, the log and the usage.
    let input = projects_dir().join(format!("{name}.input.json"));
    std::fs::write(&input, "\"Acme\"").unwrap();
    let out = crosswalk()
        .args(["plugin", "run"])
        .arg(&wasm)
        .args(["prefix", "--args", r#"{"prefix": "PO-"}"#, "--input"])
        .arg(&input)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        json!("PO-Acme")
    );
    assert!(
        stderr.contains(&format!("log: plugin {name} prefix: stdout:")),
        "{stderr}"
    );
    assert!(stderr.contains("used: instantiation"), "{stderr}");
    assert!(!stderr.contains("stdout: \n"), "no empty line: {stderr}");
    // Arguments that do not fit the schema are refused before the call.
    let out = crosswalk()
        .args(["plugin", "run"])
        .arg(&wasm)
        .args(["prefix", "--args", r#"{"prefix": 7}"#, "--input"])
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/prefix"), "{stderr}");
    // A function the plugin does not have is named, with the ones it has.
    let out = crosswalk()
        .args(["plugin", "run"])
        .arg(&wasm)
        .args(["nope", "--input"])
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "plugin `{name}` has no function `nope`; its functions are prefix, unprefix"
        )),
        "{stderr}"
    );

    // Through the service: upload, bind, override, map; the print is in the log.
    let data = tempdir(&format!("plugin-project-{lang}"));
    let server = Server::start(&data);
    let (addr, key) = (server.addr.clone(), server.demo_key.clone());
    let sap = server.sandbox("sap-s4hana");
    let (status, _, body) = request(
        &addr,
        "POST",
        "/v1/plugins",
        &key,
        &std::fs::read(&wasm).unwrap(),
    );
    assert_eq!(status, 201, "{body}");
    let sha = body["plugin"]["sha256"].as_str().unwrap().to_owned();
    let mapping = format!("/v1/connections/{sap}/mappings/purchase_order");
    let (status, _, body) = request(
        &addr,
        "PUT",
        &format!("{mapping}/plugins"),
        &key,
        json!([{"sha256": sha, "limits": {"timeout_ms": 2000}}])
            .to_string()
            .as_bytes(),
    );
    assert_eq!(status, 200, "{body}");
    let overrides = json!({"overrides": [{
        "target": "vendor.name",
        "path": "$.SupplierRespSalesPersonName",
        "transforms": [{"plugin": name, "function": "prefix", "args": {"prefix": "PO-"}}],
    }]});
    let (status, _, body) = request(
        &addr,
        "PUT",
        &mapping,
        &key,
        overrides.to_string().as_bytes(),
    );
    assert_eq!(status, 200, "{body}");
    let payload = std::fs::read(
        support::root().join("examples/payloads/sap-s4hana/purchase_order/standard.json"),
    )
    .unwrap();
    let (status, _, body) = request(
        &addr,
        "POST",
        &format!("/v1/connections/{sap}/transform/purchase_order"),
        &key,
        &payload,
    );
    assert_eq!(status, 200, "{body}");
    let vendor = body["data"]["vendor"]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"));
    assert!(vendor.starts_with("PO-"), "{body}");
    let (status, _, log) = request(
        &addr,
        "GET",
        &format!("/v1/connections/{sap}/plugin-log?plugin={name}"),
        &key,
        b"",
    );
    assert_eq!(status, 200, "{log}");
    // One record, one call, one printed line: nothing more (a print's pieces make one
    // line).
    assert_eq!(log["data"].as_array().unwrap().len(), 1, "{log}");
    let line = &log["data"][0];
    assert_eq!(line["source"], "stdout", "{log}");
    assert_eq!(line["function"], "prefix", "{log}");
    assert!(
        line["message"]
            .as_str()
            .unwrap()
            .contains("PO-Dana Whitfield"),
        "the printed line names the result: {log}"
    );
    server.stop();
    let _ = std::fs::remove_dir_all(&data);
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("crosswalk-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_new_rust_plugin_builds_checks_and_maps() {
    a_new_project_builds_checks_and_maps("rust");
}

#[test]
fn a_new_javascript_plugin_builds_checks_and_maps() {
    a_new_project_builds_checks_and_maps("js");
}

#[test]
fn a_new_python_plugin_builds_checks_and_maps() {
    a_new_project_builds_checks_and_maps("python");
}

/// `plugin new` refuses a bad name and an existing directory, and writes nothing.
#[test]
fn plugin_new_refuses_bad_names_and_existing_directories() {
    let base = tempdir("plugin-new-refusals");
    let out = crosswalk()
        .args(["plugin", "new", "Greet", "--lang", "python", "--dir"])
        .arg(base.join("x"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("`Greet` is not a plugin name"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!base.join("x").exists());
    std::fs::create_dir(base.join("taken")).unwrap();
    let out = crosswalk()
        .args(["plugin", "new", "greet", "--lang", "rust", "--dir"])
        .arg(base.join("taken"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    assert_eq!(std::fs::read_dir(base.join("taken")).unwrap().count(), 0);
    assert_eq!(
        std::fs::read_dir(&base).unwrap().count(),
        1,
        "nothing else was written"
    );
    let _ = std::fs::remove_dir_all(&base);
}

/// The Python example (plugins/phone-py) passes its unit tests, which run the SDK's
/// call handling as plain Python, and builds with the command its header gives into a
/// component that converts a number.
#[test]
fn the_python_example_passes_its_tests_and_builds() {
    if skipped() {
        return;
    }
    let dir = support::root().join("plugins/phone-py");
    let out = Command::new("python3")
        .args(["-B", "-m", "unittest", "-v"])
        .current_dir(&dir)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "plugins/phone-py's unit tests failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wasm = projects_dir().join("phone-py.wasm");
    std::fs::create_dir_all(projects_dir()).unwrap();
    run(
        Command::new("componentize-py")
            .args([
                "-d",
                "../../wit/crosswalk-plugin@0.2.0",
                "-w",
                "plugin",
                "componentize",
            ])
            .args(["-p", ".", "-p", "../sdk-python", "app", "-o"])
            .arg(&wasm)
            .current_dir(&dir),
        "componentize-py (plugins/phone-py)",
    );
    let e164 = |input: &Path| {
        crosswalk()
            .args(["plugin", "run"])
            .arg(&wasm)
            .args([
                "e164",
                "--args",
                r#"{"default_country_code": "1"}"#,
                "--input",
            ])
            .arg(input)
            .output()
            .unwrap()
    };
    let out = e164(&dir.join("no-such-input"));
    assert_eq!(out.status.code(), Some(1), "a missing input file fails");
    let input = projects_dir().join("phone-py.input.json");
    std::fs::write(&input, r#""(312) 555-0199""#).unwrap();
    let out = e164(&input);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        json!("+13125550199")
    );
}
