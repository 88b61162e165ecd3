//! The RFC 9535 JSONPath Compliance Test Suite, run through [`crosswalk_core::path::Path`],
//! the same code that evaluates every mapping's paths, on each document whole and as
//! the selective reader reads it for the query.
//!
//! The suite is public test data kept outside the repository. The test reads it from
//! `CROSSWALK_JSONPATH_CTS`, by default `../shared/testdata/jsonpath-cts/cts.json` next
//! to the workspace, and skips (saying so) when it is absent. Cases that are known to
//! fail are listed in `KNOWN_FAILURES` with the reason; the test fails if any other case
//! fails, and also if a known failure starts to pass, so the list stays true.

use std::path::PathBuf;

use crosswalk_core::mapping::read::Projection;
use crosswalk_core::path::Path;
use serde_json::Value;

/// Cases that fail because of a limit of the `jsonpath-rust` crate, by name, with why.
/// Documented in docs/jsonpath.md.
const KNOWN_FAILURES: &[(&str, &str)] = &[];

fn suite_path() -> PathBuf {
    match std::env::var_os("CROSSWALK_JSONPATH_CTS") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/testdata/jsonpath-cts/cts.json"),
    }
}

/// The cases whose query the selective reader reads less than the whole document for.
static PROJECTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Runs one case; `Err` says how it failed.
fn run_case(case: &Value) -> Result<(), String> {
    let selector = case["selector"].as_str().ok_or("no selector")?;
    let parsed = Path::parse(selector);
    if case["invalid_selector"].as_bool() == Some(true) {
        return match parsed {
            Err(_) => Ok(()),
            Ok(_) => Err("an invalid selector was accepted".into()),
        };
    }
    let path = parsed.map_err(|e| format!("a valid selector was refused: {e}"))?;
    let nodes: Vec<Value> = path.nodes(&case["document"]).into_iter().cloned().collect();
    let got = Value::Array(nodes);
    // The selective reader keeps every node the query selects, in order: the query
    // gives the same nodes on the document as read for it.
    if let Some(projection) = Projection::of_path(&path) {
        PROJECTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let read = projection
            .parse(case["document"].to_string().as_bytes())
            .map_err(|e| format!("the selective reader refused the document: {e}"))?;
        let nodes: Vec<Value> = path.nodes(&read).into_iter().cloned().collect();
        if Value::Array(nodes.clone()) != got {
            return Err(format!(
                "through the selective reader ({read}): {nodes:?}, not {got}"
            ));
        }
    }
    if let Some(expected) = case.get("result") {
        return if &got == expected {
            Ok(())
        } else {
            Err(format!("expected {expected}, got {got}"))
        };
    }
    if let Some(Value::Array(any)) = case.get("results") {
        return if any.contains(&got) {
            Ok(())
        } else {
            Err(format!(
                "expected one of {}, got {got}",
                Value::Array(any.clone())
            ))
        };
    }
    Err("the case has no result".into())
}

#[test]
fn rfc9535_compliance_test_suite() {
    let path = suite_path();
    let Ok(text) = std::fs::read_to_string(&path) else {
        println!(
            "SKIPPED: the JSONPath Compliance Test Suite is not at {} (set CROSSWALK_JSONPATH_CTS to its cts.json)",
            path.display()
        );
        return;
    };
    let suite: Value = serde_json::from_str(&text).expect("cts.json is JSON");
    let cases = suite["tests"].as_array().expect("cts.json has tests");
    let mut passed = 0;
    let mut unexpected = Vec::new();
    let mut known_failed = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap_or("?");
        let known = KNOWN_FAILURES.iter().find(|(n, _)| *n == name);
        let outcome =
            std::panic::catch_unwind(|| run_case(case)).unwrap_or_else(|_| Err("panicked".into()));
        match (outcome, known) {
            (Ok(()), None) => passed += 1,
            (Ok(()), Some(_)) => unexpected.push(format!(
                "{name}: listed as a known failure but passes now; remove it from KNOWN_FAILURES"
            )),
            (Err(e), None) => unexpected.push(format!("{name} ({}): {e}", case["selector"])),
            (Err(_), Some(_)) => known_failed.push(name),
        }
    }
    let projected = PROJECTED.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "JSONPath CTS: {passed}/{} passed ({projected} also on the document as the selective reader reads it for the query), {} known failures, {} unexpected",
        cases.len(),
        known_failed.len(),
        unexpected.len()
    );
    assert!(
        unexpected.is_empty(),
        "{} unexpected results:\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
    // Most queries of the suite start with a wildcard, a filter or a descendant
    // segment at the root, which read the whole document; 78 do not.
    assert!(
        projected >= 78,
        "only {projected} cases went through the selective reader"
    );
}

/// The core is the bottom layer: no async runtime, no HTTP, no storage, no WebAssembly
/// and no other crosswalk crate in its (normal) dependency tree.
#[test]
fn the_core_depends_on_no_runtime_nor_host() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "-p",
            "crosswalk-core",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout).unwrap();
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(names.contains(&"serde_json"), "an unexpected tree:\n{tree}");
    for banned in [
        "tokio",
        "axum",
        "hyper",
        "sled",
        "wasmtime",
        "reqwest",
        "crosswalk-plugin-host",
        "crosswalk-systems",
        "crosswalk-service",
        "crosswalk",
    ] {
        assert!(
            !names.contains(&banned),
            "crosswalk-core depends on {banned}:\n{tree}"
        );
    }
}
