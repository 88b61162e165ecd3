//! End-to-end tests of the `crosswalk` binary.
//!
//! Golden cases live in `tests/cli/<case>/`: `args` (one argument per line), an
//! optional `stdin`, and the expected `stdout`, `stderr` and `code`. Commands run from
//! the workspace root, so paths in `args` are relative to it. `CROSSWALK_BLESS=1`
//! rewrites the expected files from the actual output, to be reviewed in the diff.
//!
//! A second test maps every sample payload under `examples/payloads/` through the
//! binary and compares it with its `.expected.json`; a third runs the plugin fixtures
//! (`engine/plugin-host/tests/fixtures/plugins*/`) through `crosswalk map --plugin` and checks
//! plugins with `crosswalk plugin check`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support;

fn root() -> PathBuf {
    support::root()
}

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn crosswalk(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_crosswalk"))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or_default())
        .expect("write stdin");
    drop(input);
    let out = child.wait_with_output().expect("the binary finishes");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
    }
}

#[test]
fn golden_cases() {
    let bless = std::env::var_os("CROSSWALK_BLESS").is_some();
    let mut cases: Vec<PathBuf> = fs::read_dir(root().join("tests/cli"))
        .expect("tests/cli")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let args_text = fs::read_to_string(case.join("args"))
            .unwrap_or_else(|_| panic!("{name}: no args file"));
        let args: Vec<&str> = args_text.lines().collect();
        let stdin = fs::read(case.join("stdin")).ok();
        let out = crosswalk(&args, stdin.as_deref());
        let actual = [
            ("stdout", out.stdout),
            ("stderr", out.stderr),
            ("code", format!("{}\n", out.code)),
        ];
        for (file, text) in actual {
            let path = case.join(file);
            if bless {
                fs::write(&path, &text).expect("bless");
                continue;
            }
            let expected = fs::read_to_string(&path).unwrap_or_default();
            if expected != text {
                failures.push(format!(
                    "{name}/{file}:\n--- expected\n{expected}--- actual\n{text}"
                ));
            }
        }
    }
    assert!(cases.len() >= 15, "only {} golden cases", cases.len());
    assert!(
        failures.is_empty(),
        "{} differences (CROSSWALK_BLESS=1 rewrites them):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_sample_maps_through_the_binary() {
    let payloads = root().join("examples/payloads");
    let mut count = 0;
    for system in fs::read_dir(&payloads).unwrap().map(|e| e.unwrap().path()) {
        for entity in fs::read_dir(&system).unwrap().map(|e| e.unwrap().path()) {
            for case in fs::read_dir(&entity).unwrap().map(|e| e.unwrap().path()) {
                let name = case.to_string_lossy().to_string();
                if !name.ends_with(".json") || name.ends_with(".expected.json") {
                    continue;
                }
                let args = [
                    "map",
                    "--system",
                    system.file_name().unwrap().to_str().unwrap(),
                    "--entity",
                    entity.file_name().unwrap().to_str().unwrap(),
                    "--strict",
                    "--input",
                    &name,
                ];
                let out = crosswalk(&args, None);
                assert_eq!(out.code, 0, "{name}: {}", out.stderr);
                let actual: Value = serde_json::from_str(&out.stdout).expect("JSON on stdout");
                let expected: Value = serde_json::from_str(
                    &fs::read_to_string(name.replace(".json", ".expected.json")).unwrap(),
                )
                .unwrap();
                assert_eq!(actual, expected, "{name}");
                count += 1;
            }
        }
    }
    assert!(count >= 50, "only {count} samples");
    println!("{count} samples mapped through the binary");
}

/// Maps a plugin fixture directory through the binary with the given plugin files.
fn map_fixture_through_the_binary(dir: &Path, plugins: &[PathBuf], cache: &Path) {
    let overrides = fs::read_to_string(dir.join("overrides.yaml")).unwrap();
    let field = |key: &str| {
        overrides
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}: ")))
            .unwrap_or_else(|| panic!("{}: no {key}", dir.display()))
            .to_owned()
    };
    let (system, entity) = (field("system"), field("entity"));
    let overrides_path = dir.join("overrides.yaml").display().to_string();
    let input_path = dir.join("input.json").display().to_string();
    let cache = cache.display().to_string();
    let mut args = vec![
        "map",
        "--system",
        &system,
        "--entity",
        &entity,
        "--strict",
        "--overrides",
        &overrides_path,
        "--input",
        &input_path,
        "--plugin-cache",
        &cache,
    ];
    let plugin_paths: Vec<String> = plugins.iter().map(|p| p.display().to_string()).collect();
    for p in &plugin_paths {
        args.extend(["--plugin", p.as_str()]);
    }
    let out = crosswalk(&args, None);
    assert_eq!(out.code, 0, "{}: {}", dir.display(), out.stderr);
    let actual: Value = serde_json::from_str(&out.stdout).unwrap();
    let expected: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    assert_eq!(actual, expected, "{}", dir.display());
}

#[test]
fn plugins_through_the_binary() {
    let cache = std::env::temp_dir().join(format!("crosswalk-cli-plugins-{}", std::process::id()));
    let fixtures = root().join("engine/plugin-host/tests/fixtures/plugins");
    let mut cases: Vec<PathBuf> = fs::read_dir(&fixtures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    for dir in &cases {
        let plugins: Vec<PathBuf> = fs::read_to_string(dir.join("plugins.txt"))
            .unwrap()
            .lines()
            .map(support::rust_plugin)
            .collect();
        map_fixture_through_the_binary(dir, &plugins, &cache);
    }
    if let Some(phone) = support::js_plugin() {
        for dir in
            fs::read_dir(root().join("engine/plugin-host/tests/fixtures/plugins-js")).unwrap()
        {
            map_fixture_through_the_binary(
                &dir.unwrap().path(),
                std::slice::from_ref(&phone),
                &cache,
            );
        }
    }

    let uom = support::rust_plugin("crosswalk-plugin-uom")
        .display()
        .to_string();
    let out = crosswalk(
        &[
            "plugin",
            "check",
            &uom,
            "--plugin-cache",
            &cache.display().to_string(),
        ],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.starts_with(&format!(
            "ok: {uom}: plugin `uom` version 1.2.0 (crosswalk:plugin@0.2.0)\nsha256: "
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("limits: 50 ms per call, 64 MiB memory, 512 KiB stack"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("  field  convert: Converts a unit-of-measure code"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("         inverse: convert_back\n"),
        "{}",
        out.stdout
    );

    // A component that imports an interface outside the sandbox's set (outgoing
    // HTTP) is refused, naming it.
    let http = cache.with_extension("http.wasm");
    fs::write(
        &http,
        wat::parse_str(r#"(component (import "wasi:http/outgoing-handler@0.2.0" (instance)))"#)
            .unwrap(),
    )
    .unwrap();
    let out = crosswalk(
        &[
            "plugin",
            "check",
            &http.display().to_string(),
            "--plugin-cache",
            &cache.display().to_string(),
        ],
        None,
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("the component imports `wasi:http/outgoing-handler@0.2.0`"),
        "{}",
        out.stderr
    );
    let _ = fs::remove_file(&http);
    let _ = fs::remove_dir_all(&cache);
}
