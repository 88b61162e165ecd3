//! Data-driven tests of the mapping engine, through its library API.
//!
//! - every sample payload under `examples/payloads/<system>/<entity>/` maps to its
//!   `.expected.json`, and the output validates against the model's JSON Schema;
//! - every override example under `examples/overrides/<system>/<case>/` maps its
//!   `input.json` to `expected.json`, and changes only the targets it names;
//! - `tests/fixtures/overrides/<case>/` cover each kind of override;
//! - `tests/fixtures/errors/<case>/` hold bad specs and payloads with the error each
//!   must give.

#[path = "../../../tests/support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crosswalk_core::mapping::{
    self, Document, Format, MapOptions, OverrideSpec, Payload, Plan, ResolvedMapping,
};
use crosswalk_core::model::Entity;
use crosswalk_core::plugin::PluginSet;
use crosswalk_systems::{self as systems, SYSTEMS};
use serde_json::Value;

fn repo() -> PathBuf {
    support::root()
}

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn dirs(path: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    out
}

/// Maps a payload's text (one record or a collection) as the CLI does, parsed whole and
/// through the plan's selective reader: the two must give the same output.
fn map_payload(plan: &Plan, text: &str, options: MapOptions) -> Result<Value, String> {
    let map = |payload: Value| match Payload::unwrap(payload) {
        Payload::One(r) => plan.map_record(&r, options).map_err(|e| e.to_string()),
        Payload::Many(rs) => rs
            .iter()
            .map(|r| plan.map_record(r, options).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
    };
    let whole = map(serde_json::from_str(text).map_err(|e| e.to_string())?);
    let read = map(plan
        .parse_source(text.as_bytes(), options)
        .map_err(|e| e.to_string())?);
    if whole != read {
        return Err(format!(
            "parsed whole it maps to {whole:?}, through the selective reader to {read:?}"
        ));
    }
    // Written as JSON text from the plan's layout, the records are the same.
    let records = Payload::unwrap(plan.parse_source(text.as_bytes(), options).unwrap());
    let written = plan.map_batch_to_json(&records.into_records(), options);
    let written: Vec<Value> = written
        .records
        .into_iter()
        .map(|r| r.map(|r| r.to_value()).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let values = match &whole {
        Ok(Value::Array(records)) => records.clone(),
        Ok(record) => vec![record.clone()],
        Err(_) => return whole,
    };
    if written != values {
        return Err(format!(
            "written as text: {written:?}, as values: {values:?}"
        ));
    }
    whole
}

fn validate(entity: Entity, record: &Value, what: &str) {
    let validator =
        jsonschema::validator_for(entity.schema()).expect("the model's schema compiles");
    let problems: Vec<String> = validator
        .iter_errors(record)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        problems.is_empty(),
        "{what} does not validate against {entity}:\n{}",
        problems.join("\n")
    );
}

#[test]
fn samples_map_to_their_expected_output() {
    let root = repo().join("examples/payloads");
    let mut count = 0;
    let mut failures = Vec::new();
    for system in SYSTEMS {
        for entity in system.entities() {
            let dir = root.join(system.id.as_str()).join(entity.as_str());
            let plan = systems::plan(system.id.as_str(), entity, None)
                .unwrap_or_else(|e| panic!("{} {entity}: {e}", system.id));
            let mut cases: Vec<PathBuf> = fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|e| e.expect("entry").path())
                .filter(|p| {
                    p.extension().is_some_and(|x| x == "json")
                        && !p.to_string_lossy().ends_with(".expected.json")
                })
                .collect();
            cases.sort();
            assert!(cases.len() >= 3, "{}: fewer than 3 samples", dir.display());
            for case in cases {
                let expected_path = case.with_extension("expected.json");
                let expected = read_json(&expected_path);
                let name = case
                    .strip_prefix(&root)
                    .expect("under root")
                    .display()
                    .to_string();
                match map_payload(
                    &plan,
                    &fs::read_to_string(&case).expect("a sample"),
                    MapOptions {
                        strict: true,
                        remote_data: false,
                    },
                ) {
                    Ok(actual) => {
                        let mut d = Vec::new();
                        support::diff(&expected, &actual, "$", &mut d);
                        if !d.is_empty() {
                            failures.push(format!("{name}:\n    {}", d.join("\n    ")));
                        }
                        match &actual {
                            Value::Array(records) => {
                                records.iter().for_each(|r| validate(entity, r, &name))
                            }
                            record => validate(entity, record, &name),
                        }
                    }
                    Err(e) => failures.push(format!("{name}: {e}")),
                }
                count += 1;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} samples differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!("{count} samples mapped to their expected output");
}

/// Runs `<dir>/{overrides.yaml,input.json,expected.json}`; returns the override, the
/// plan of the default and the output.
fn run_override_case(dir: &Path) -> (OverrideSpec, Value, Value) {
    let text = fs::read_to_string(dir.join("overrides.yaml")).expect("overrides.yaml");
    let spec = OverrideSpec::parse(&text, Format::Yaml)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let system = spec
        .system
        .clone()
        .expect("override examples name their system");
    let entity = spec.entity.expect("override examples name their entity");
    let plan = systems::plan(&system, entity, Some(&spec))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let input = fs::read_to_string(dir.join("input.json")).expect("input.json");
    let output = map_payload(
        &plan,
        &input,
        MapOptions {
            strict: true,
            remote_data: false,
        },
    )
    .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let default = systems::plan(&system, entity, None).expect("default");
    let baseline = map_payload(
        &default,
        &input,
        MapOptions {
            strict: true,
            remote_data: false,
        },
    )
    .expect("default maps");
    validate(entity, &output, &dir.display().to_string());
    (spec, baseline, output)
}

/// Asserts that every difference between `baseline` and `output` lies under a target
/// the override names, and that every target it names (that the input fills) changed
/// or was already equal.
fn assert_changes_only_named(spec: &OverrideSpec, baseline: &Value, output: &Value, name: &str) {
    let mut d = Vec::new();
    support::diff(baseline, output, "$", &mut d);
    let named: Vec<String> = spec.overrides.iter().map(|o| o.target.clone()).collect();
    for change in d {
        let path = change
            .split(':')
            .next()
            .unwrap_or_default()
            .trim_start_matches("$.")
            .to_owned();
        // `lines[0].unit_price` is named by `lines.unit_price`; `custom_fields` by any custom target.
        let plain: String = path
            .split('[')
            .map(|p| p.split_once(']').map_or(p, |(_, rest)| rest))
            .collect();
        let covered = named.iter().any(|t| {
            plain == *t
                || plain.starts_with(&format!("{t}."))
                || t.starts_with(&format!("{plain}."))
        });
        assert!(
            covered,
            "{name}: the override changed `{path}`, which it does not name ({change})"
        );
    }
}

#[test]
fn override_examples_map_and_change_only_what_they_name() {
    let mut count = 0;
    for system_dir in dirs(&repo().join("examples/overrides")) {
        for dir in dirs(&system_dir) {
            let (spec, baseline, output) = run_override_case(&dir);
            let expected = read_json(&dir.join("expected.json"));
            let mut d = Vec::new();
            support::diff(&expected, &output, "$", &mut d);
            assert!(d.is_empty(), "{}:\n    {}", dir.display(), d.join("\n    "));
            assert_changes_only_named(&spec, &baseline, &output, &dir.display().to_string());
            count += 1;
        }
    }
    assert!(count >= 4, "only {count} override examples");
}

#[test]
fn override_fixtures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/overrides");
    let mut kinds = BTreeSet::new();
    for dir in dirs(&root) {
        let (spec, baseline, output) = run_override_case(&dir);
        let expected = read_json(&dir.join("expected.json"));
        let mut d = Vec::new();
        support::diff(&expected, &output, "$", &mut d);
        assert!(d.is_empty(), "{}:\n    {}", dir.display(), d.join("\n    "));
        assert_changes_only_named(&spec, &baseline, &output, &dir.display().to_string());
        // The override changes something: an override fixture that maps like the
        // default would prove nothing.
        assert_ne!(
            baseline,
            output,
            "{}: the override changed nothing",
            dir.display()
        );
        kinds.insert(
            dir.file_name()
                .unwrap()
                .to_string_lossy()
                .split('-')
                .next()
                .unwrap()
                .to_owned(),
        );
    }
    for kind in ["remap", "custom", "disable", "transforms", "nested"] {
        assert!(kinds.contains(kind), "no override fixture of kind `{kind}`");
    }
}

#[test]
fn error_fixtures_give_their_errors() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/errors");
    let mut count = 0;
    for dir in dirs(&root) {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let expected = fs::read_to_string(dir.join("error.txt")).expect("error.txt");
        let message = error_of(&dir);
        for line in expected.lines().filter(|l| !l.trim().is_empty()) {
            assert!(
                message.contains(line.trim()),
                "{name}: the error\n{message}\ndoes not contain\n{line}"
            );
        }
        count += 1;
    }
    println!("{count} error fixtures");
}

/// The error a fixture gives: a spec (`mapping.yaml` or `overrides.yaml`) that does not
/// compile, or an `input.json` (with `strict` in `options.json`) that does not map.
fn error_of(dir: &Path) -> String {
    let options: Value = if dir.join("options.json").exists() {
        read_json(&dir.join("options.json"))
    } else {
        Value::Null
    };
    let strict = options["strict"].as_bool().unwrap_or(true);
    let plan = if let Some(file) = ["mapping.yaml", "overrides.yaml", "mapping.json"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.exists())
    {
        let text = fs::read_to_string(&file).expect("spec");
        let doc = match Document::parse(&text, Format::of_file(&file)) {
            Ok(doc) => doc,
            Err(e) => return e.to_string(),
        };
        let compiled = match doc {
            Document::Mapping(m) => {
                Plan::compile(&ResolvedMapping::from_spec(&m), &PluginSet::new())
            }
            Document::Overrides(o) => {
                let system = options["system"]
                    .as_str()
                    .map(str::to_owned)
                    .or(o.system.clone())
                    .unwrap_or_else(|| "sap-s4hana".into());
                let entity = options["entity"]
                    .as_str()
                    .map(|e| e.parse().expect("entity"))
                    .or(o.entity)
                    .unwrap_or(Entity::PurchaseOrder);
                systems::plan(&system, entity, Some(&o))
            }
        };
        match compiled {
            Ok(plan) => plan,
            Err(e) => return e.to_string(),
        }
    } else {
        systems::plan("sap-s4hana", Entity::PurchaseOrder, None).expect("default")
    };
    let input = fs::read_to_string(dir.join("input.json")).unwrap_or_else(|_| {
        panic!(
            "{}: the spec compiled and there is no input.json",
            dir.display()
        )
    });
    let payload = match Payload::parse(&input) {
        Ok(p) => p,
        Err(e) => return e.to_string(),
    };
    let options = MapOptions {
        strict,
        remote_data: false,
    };
    let messages = |payload: Payload| {
        let mut messages = Vec::new();
        for record in payload.into_records() {
            match plan.map_record(&record, options) {
                Err(e) => messages.push(e.to_string()),
                Ok(out) => messages.push(serde_json::to_string(&out["errors"]).expect("json")),
            }
        }
        messages.join("\n")
    };
    let whole = messages(payload);
    // The selective reader fails the same fields with the same messages.
    let read = plan
        .parse_source(input.as_bytes(), options)
        .expect("parsed whole above");
    assert_eq!(
        messages(Payload::unwrap(read)),
        whole,
        "{}: through the selective reader",
        dir.display()
    );
    whole
}

#[test]
fn every_default_mapping_compiles_and_maps_the_whole_model_it_can() {
    for system in SYSTEMS {
        for entity in system.entities() {
            let resolved = systems::resolve(system.id.as_str(), entity, None)
                .unwrap_or_else(|e| panic!("{e}"));
            Plan::compile(&resolved, &PluginSet::new())
                .unwrap_or_else(|e| panic!("{} {entity}: {e}", system.id));
            let targets: Vec<String> = resolved.rows().into_iter().map(|(t, _)| t).collect();
            assert!(
                targets.iter().any(|t| t == "id"),
                "{} {entity} does not map id",
                system.id
            );
            assert!(
                resolved
                    .rules
                    .iter()
                    .find(|r| r.spec.target == "id")
                    .unwrap()
                    .spec
                    .required,
                "{} {entity}: id must be required",
                system.id
            );
        }
    }
}

#[test]
fn remote_data_carries_the_raw_source() {
    let plan = systems::plan("ibm-maximo", Entity::WorkOrder, None).unwrap();
    let source = serde_json::json!({"wonum": "1001", "status": "WEIRD", "siteid": "BEDFORD"});
    let record = plan
        .map_record(
            &source,
            MapOptions {
                strict: false,
                remote_data: true,
            },
        )
        .unwrap();
    assert_eq!(record["status"], "unknown");
    assert_eq!(record["remote_data"], source);
    validate(Entity::WorkOrder, &record, "remote_data record");
}

#[test]
fn the_published_mapping_schema_is_current() {
    let path = repo().join("engine/core/schema/mapping.schema.json");
    let generated = serde_json::to_string_pretty(&mapping::spec::json_schema()).unwrap() + "\n";
    if std::env::var_os("CROSSWALK_BLESS").is_some() {
        fs::write(&path, &generated).unwrap();
    }
    let published = fs::read_to_string(&path).unwrap_or_default();
    assert!(
        published == generated,
        "{} is out of date: run the tests with CROSSWALK_BLESS=1 to regenerate it",
        path.display()
    );
}

#[test]
fn published_schema_accepts_every_shipped_document() {
    let schema = mapping::spec::json_schema();
    let validator = jsonschema::validator_for(&schema).expect("the mapping schema compiles");
    let mut files: Vec<PathBuf> = Vec::new();
    for system_dir in dirs(&repo().join("engine/systems/mappings")) {
        files.extend(
            fs::read_dir(&system_dir)
                .unwrap()
                .map(|e| e.unwrap().path()),
        );
    }
    for system_dir in dirs(&repo().join("examples/overrides")) {
        files.extend(
            dirs(&system_dir)
                .into_iter()
                .map(|d| d.join("overrides.yaml")),
        );
    }
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        let value: Value = serde_yaml_ng::from_str(&text).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{e} at {}", e.instance_path))
            .collect();
        assert!(
            errors.is_empty(),
            "{}: {}",
            file.display(),
            errors.join("; ")
        );
    }
}

#[test]
fn docs_list_every_transform() {
    let docs = fs::read_to_string(repo().join("docs/mapping-spec.md")).unwrap();
    for t in mapping::transform::CATALOG {
        assert!(
            docs.contains(&format!("| `{}` |", t.name)),
            "docs/mapping-spec.md does not document `{}`",
            t.name
        );
    }
}

/// Equal JSON with numbers compared as numbers: jq's `40` and crosswalk's `40.0` are the
/// same, and so are `0.0224` and `0.022400000000000003` (crosswalk divides decimals
/// exactly; jq in binary floating point).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        (x, y) => x == y,
    }
}

/// A peer of the benchmarks that runs a mapping written in its own language over NDJSON
/// on stdin, writing a record a line: the command, and the folder of its programs.
struct Peer {
    name: &'static str,
    /// The command, before the program's path.
    command: fn() -> std::process::Command,
    programs: &'static str,
    extension: &'static str,
}

/// Where `.ci/run` and `bench/run` install the `jsonata` package: the build cache.
fn jsonata_modules() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/crosswalk/target")
        },
        PathBuf::from,
    );
    target.join("bench-peers/jsonata/node_modules")
}

/// The peers installed here: jq (required in CI: `.ci/run` installs it), jaq, and the
/// JSONata runner on Node with the `jsonata` package that `.ci/run` and `bench/run`
/// install into the build cache (required in CI too).
fn peers() -> Vec<Peer> {
    let works = |tool: &str, arg: &str| {
        std::process::Command::new(tool)
            .arg(arg)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let in_ci = std::env::var_os("CI").is_some();
    let mut peers = Vec::new();
    for (tool, command) in [
        ("jq", (|| jq_command("jq")) as fn() -> std::process::Command),
        ("jaq", || jq_command("jaq")),
    ] {
        if works(tool, "--version") {
            peers.push(Peer {
                name: tool,
                command,
                programs: "bench/jq",
                extension: "jq",
            });
        } else if tool == "jq" {
            assert!(!in_ci, "jq is required in CI (.ci/run installs it)");
            eprintln!("skipped jq: it is not installed (bench/run and .ci/run install it)");
        }
    }
    let modules = jsonata_modules();
    if works("node", "--version") && modules.join("jsonata").is_dir() {
        peers.push(Peer {
            name: "JSONata",
            command: || {
                let mut node = std::process::Command::new("node");
                node.env("NODE_PATH", jsonata_modules())
                    .arg(repo().join("bench/peers/jsonata/run.js"));
                node
            },
            programs: "bench/jsonata",
            extension: "jsonata",
        });
    } else {
        assert!(
            !in_ci,
            "Node.js and the jsonata package in {} are required in CI (.ci/run installs them)",
            modules.display()
        );
        eprintln!(
            "skipped JSONata: Node.js or the jsonata package in {} is missing (bench/run and .ci/run install it)",
            modules.display()
        );
    }
    peers
}

fn jq_command(tool: &str) -> std::process::Command {
    let mut jq = std::process::Command::new(tool);
    jq.arg("-c").arg("-f");
    jq
}

/// The benchmarks compare crosswalk with the same mappings written in its peers'
/// languages (`bench/jq/`, `bench/jsonata/`): they must give the same records, on every
/// sample of their entity.
#[test]
fn the_benchmarks_peer_programs_give_crosswalks_records() {
    let peers = peers();
    if peers.is_empty() {
        eprintln!("skipped: no peer of the benchmarks is installed");
        return;
    }
    for (system, entity, program) in [
        ("sap-s4hana", Entity::PurchaseOrder, "sap-purchase-order"),
        ("ibm-maximo", Entity::WorkOrder, "maximo-work-order"),
    ] {
        let plan = systems::plan(system, entity, None).unwrap();
        let dir = repo()
            .join("examples/payloads")
            .join(system)
            .join(entity.as_str());
        let mut checked = 0;
        for file in fs::read_dir(&dir).unwrap() {
            let file = file.unwrap().path();
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with(".expected.json") || !name.ends_with(".json") {
                continue;
            }
            let records = Payload::unwrap(read_json(&file)).into_records();
            let input: String = records.iter().map(|r| format!("{r}\n")).collect();
            let ours: Vec<Value> = records
                .iter()
                .map(|r| plan.map_record(r, MapOptions::default()).unwrap())
                .collect();
            for peer in &peers {
                let program = format!("{}/{program}.{}", peer.programs, peer.extension);
                let mut child = (peer.command)()
                    .arg(repo().join(&program))
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .unwrap_or_else(|e| panic!("{}: {e}", peer.name));
                use std::io::Write as _;
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(input.as_bytes())
                    .unwrap();
                let out = child.wait_with_output().unwrap();
                assert!(
                    out.status.success(),
                    "{} with {program} failed on {name}",
                    peer.name
                );
                let theirs: Vec<Value> = String::from_utf8(out.stdout)
                    .unwrap()
                    .lines()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect();
                assert!(
                    theirs.len() == ours.len() && theirs.iter().zip(&ours).all(|(a, b)| same(a, b)),
                    "{} with {program} on {name}:\n{theirs:?}\n{ours:?}",
                    peer.name
                );
            }
            checked += 1;
        }
        assert!(checked >= 4, "only {checked} samples of {system} {entity}");
        let names: Vec<&str> = peers.iter().map(|p| p.name).collect();
        println!(
            "{program}: the same records as crosswalk on {checked} samples ({})",
            names.join(", ")
        );
    }
}

/// Unified → native → unified gives back every writable field, for every sample
/// payload of every system and entity (the default mappings) and for every override
/// example (custom fields included).
#[test]
fn writes_round_trip_through_the_reverse_mapping() {
    let mut cases: Vec<(String, String, Entity, Option<OverrideSpec>, Value)> = Vec::new();
    for system in SYSTEMS {
        for entity in system.entities() {
            let dir = repo()
                .join("examples/payloads")
                .join(system.id.as_str())
                .join(entity.as_str());
            let mut files: Vec<PathBuf> = fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| {
                    let name = p.file_name().unwrap().to_string_lossy();
                    name.ends_with(".json")
                        && !name.ends_with(".expected.json")
                        && !name.contains("collection")
                })
                .collect();
            files.sort();
            for file in files {
                let record = Payload::unwrap(read_json(&file)).into_records().remove(0);
                cases.push((
                    file.display().to_string(),
                    system.id.to_string(),
                    entity,
                    None,
                    record,
                ));
            }
        }
    }
    for system in SYSTEMS {
        for dir in dirs(&repo().join("examples/overrides").join(system.id.as_str())) {
            let text = fs::read_to_string(dir.join("overrides.yaml")).unwrap();
            let spec = OverrideSpec::parse(&text, Format::Yaml).unwrap();
            let entity = spec.entity.expect("override examples name their entity");
            let record = Payload::unwrap(read_json(&dir.join("input.json")))
                .into_records()
                .remove(0);
            cases.push((
                dir.display().to_string(),
                system.id.to_string(),
                entity,
                Some(spec),
                record,
            ));
        }
    }
    assert!(cases.len() > 40, "{} cases", cases.len());
    eprintln!("round trips of {} sample and override cases", cases.len());
    let mut fields_checked = 0;
    for (name, system, entity, overrides, record) in cases {
        let resolved = systems::resolve(&system, entity, overrides.as_ref()).unwrap();
        let write = systems::write_plan(&resolved, &PluginSet::new()).unwrap();
        let plan = systems::plan(&system, entity, overrides.as_ref()).unwrap();
        let unified = plan.map_record(&record, MapOptions::default()).unwrap();
        let sent = support::writable(&unified, write.read_only());
        let native = write
            .to_native(&sent)
            .unwrap_or_else(|e| panic!("{name}: the record does not write back: {e:?}"));
        let back = plan.map_record(&native, MapOptions::default()).unwrap();
        let back = support::writable(&back, write.read_only());
        let mut differences = Vec::new();
        support::diff(&sent, &back, "", &mut differences);
        assert!(
            differences.is_empty(),
            "{name}: unified → native → unified changed {differences:?}\nnative: {native}"
        );
        fields_checked += sent
            .as_object()
            .unwrap()
            .values()
            .filter(|v| !v.is_null())
            .count();
        if let Some(spec) = &overrides {
            // Custom fields that the override maps write back through it.
            for o in &spec.overrides {
                if o.target.starts_with("custom_fields.")
                    && !o.disable
                    && !unified["custom_fields"][&o.target["custom_fields.".len()..]].is_null()
                    && !write.read_only().iter().any(|r| r.target == o.target)
                {
                    let path = o.path.as_deref().unwrap_or_default();
                    assert!(
                        native.to_string().contains(path.trim_start_matches("$.")),
                        "{name}: {} is not written to {path}: {native}",
                        o.target
                    );
                }
            }
        }
    }
    eprintln!("{fields_checked} non-null fields checked");
    assert!(fields_checked > 300, "{fields_checked} fields checked");
}

/// A field the mapping cannot invert is refused by name, with the reason; a value the
/// inverse cannot take is refused by name too; all problems come at once.
#[test]
fn writes_refuse_read_only_and_unwritable_fields_by_name() {
    let resolved = systems::resolve("sap-s4hana", Entity::PurchaseOrder, None).unwrap();
    let write = systems::write_plan(&resolved, &PluginSet::new()).unwrap();
    let read_only: Vec<&str> = write
        .read_only()
        .iter()
        .map(|r| r.target.as_str())
        .collect();
    for target in ["status", "site_id", "created_at", "updated_at"] {
        assert!(read_only.contains(&target), "{target} in {read_only:?}");
    }
    let e = write
        .to_native(&serde_json::json!({
            "status": "approved",
            "order_date": "15.03.2024",
            "lines": [{"quantity": "many"}],
            "total_amount": 12,
            "site_id": null,
        }))
        .unwrap_err();
    let fields: Vec<&str> = e.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        ["status", "order_date", "lines[0].quantity", "total_amount"],
        "{e:?}"
    );
    assert!(
        e[0].message.contains("read-only") && e[0].message.contains("more than one code"),
        "{}",
        e[0].message
    );
    assert!(e[1].message.contains("is not a date"), "{}", e[1].message);
    assert!(e[3].message.contains("does not map it"), "{}", e[3].message);
    // Custom fields go back through their override.
    let spec = OverrideSpec::parse(
        "overrides:\n  - target: custom_fields.cost_center\n    path: $.ZZ1_CostCenter_PDH\n",
        Format::Yaml,
    )
    .unwrap();
    let resolved = systems::resolve("sap-s4hana", Entity::PurchaseOrder, Some(&spec)).unwrap();
    let native = systems::write_plan(&resolved, &PluginSet::new())
        .unwrap()
        .to_native(&serde_json::json!({"number": "4500000001", "custom_fields": {"cost_center": "CC-1000"}}))
        .unwrap();
    assert_eq!(
        native,
        serde_json::json!({"PurchaseOrder": "4500000001", "ZZ1_CostCenter_PDH": "CC-1000"})
    );
}

/// A small deterministic generator (xorshift), so that the generated records are the
/// same on every run and a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A random value of a model type, inside what a forward mapping can give: digit
/// strings (the same under `trim`, `upper` and `lower`), numbers with two decimals,
/// dates and UTC date-times, enum members other than `unknown`.
fn random_value(t: &crosswalk_core::model::FieldType, rng: &mut Rng) -> Value {
    use crosswalk_core::model::FieldType as T;
    match t {
        // One in four has the form of a composite key (`site/number`), which templates
        // such as `{$.siteid}/{value}` split back.
        T::String if rng.below(4) == 0 => Value::String(format!(
            "{}/{}",
            10_000 + rng.below(90_000),
            10_000 + rng.below(90_000)
        )),
        T::String => Value::String(format!("{}", 10_000 + rng.below(90_000))),
        T::Currency => Value::String(["EUR", "USD", "JPY", "CHF"][rng.below(4) as usize].into()),
        T::Number => serde_json::json!((rng.below(1_000_000) as f64) / 100.0),
        T::Integer => serde_json::json!(1 + rng.below(9_999)),
        T::Date => Value::String(format!(
            "20{:02}-{:02}-{:02}",
            rng.below(30),
            1 + rng.below(12),
            1 + rng.below(28)
        )),
        T::DateTime => Value::String(format!(
            "20{:02}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            rng.below(30),
            1 + rng.below(12),
            1 + rng.below(28),
            rng.below(24),
            rng.below(60),
            rng.below(60)
        )),
        T::Enum(members) => {
            let known: Vec<&String> = members.iter().filter(|m| *m != "unknown").collect();
            Value::String(known[rng.below(known.len() as u64) as usize].clone())
        }
        T::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(name, t)| (name.clone(), random_value(t, rng)))
                .collect(),
        ),
        T::Array(item) => Value::Array(
            (0..1 + rng.below(3))
                .map(|_| random_value(item, rng))
                .collect(),
        ),
        T::Custom => Value::Object(serde_json::Map::new()),
    }
}

/// Drops a field named by a write error (`lines[1].unit_price` → that line's
/// `unit_price`).
fn drop_field(record: &mut Value, field: &str) {
    let mut node = record;
    let parts: Vec<&str> = field.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let (name, index) = match part.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (*part, None),
        };
        let last = i + 1 == parts.len();
        let Value::Object(m) = node else { return };
        if last && index.is_none() {
            m.remove(name);
            return;
        }
        let Some(next) = m.get_mut(name) else { return };
        node = match index {
            Some(i) => match next.get_mut(i) {
                Some(n) => n,
                None => return,
            },
            None => next,
        };
    }
}

/// Property: for generated unified records of every system and entity (and of every
/// override example, with its custom fields), unified → native → unified gives back
/// every field that the reverse mapping takes. Fields that it refuses (read-only, not
/// mapped, or a value with no code in the system) are dropped first; the test checks
/// that most fields remain.
#[test]
fn generated_records_round_trip_through_the_reverse_mapping() {
    let mut cases: Vec<(String, String, Entity, Option<OverrideSpec>)> = Vec::new();
    for system in SYSTEMS {
        for entity in system.entities() {
            cases.push((
                format!("{} {entity}", system.id),
                system.id.to_string(),
                entity,
                None,
            ));
        }
        for dir in dirs(&repo().join("examples/overrides").join(system.id.as_str())) {
            let text = fs::read_to_string(dir.join("overrides.yaml")).unwrap();
            let spec = OverrideSpec::parse(&text, Format::Yaml).unwrap();
            let entity = spec.entity.unwrap();
            cases.push((
                dir.display().to_string(),
                system.id.to_string(),
                entity,
                Some(spec),
            ));
        }
    }
    let (mut kept, mut dropped) = (0usize, 0usize);
    let mut rng = Rng(0x5eed_cafe_f00d_beef);
    for (name, system, entity, overrides) in cases {
        let resolved = systems::resolve(&system, entity, overrides.as_ref()).unwrap();
        let write = systems::write_plan(&resolved, &PluginSet::new()).unwrap();
        let plan = systems::plan(&system, entity, overrides.as_ref()).unwrap();
        for round in 0..40 {
            let mut record = random_value(entity.record_type(), &mut rng);
            let custom: Vec<String> = overrides
                .iter()
                .flat_map(|o| &o.overrides)
                .filter_map(|o| o.target.strip_prefix("custom_fields.").map(str::to_owned))
                .collect();
            for c in custom {
                record["custom_fields"][c] =
                    random_value(&crosswalk_core::model::FieldType::String, &mut rng);
            }
            let before = count_leaves(&record);
            // Drop what the reverse mapping refuses, until it takes the rest.
            let native = loop {
                match write.to_native(&record) {
                    Ok(native) => break native,
                    Err(errors) => {
                        for e in errors {
                            drop_field(&mut record, &e.field);
                        }
                    }
                }
            };
            kept += count_leaves(&record);
            dropped += before - count_leaves(&record);
            let back = plan.map_record(&native, MapOptions::default()).unwrap();
            let mut differences = Vec::new();
            sent_diff(&record, &back, "", &mut differences);
            assert!(
                differences.is_empty(),
                "{name}, record {round}: {differences:?}\nsent: {record}\nnative: {native}\nback: {back}"
            );
        }
    }
    eprintln!("generated records: {kept} fields round-tripped, {dropped} dropped");
    // Dropped: fields the mapping does not map, read-only ones, and enum members
    // without a code in the system.
    assert!(
        kept > dropped,
        "{kept} fields round-tripped, {dropped} dropped"
    );
}

fn count_leaves(v: &Value) -> usize {
    match v {
        Value::Object(m) => m.values().map(count_leaves).sum(),
        Value::Array(a) => a.iter().map(count_leaves).sum(),
        _ => 1,
    }
}

/// Where `back` differs from `sent` on what `sent` carries (numbers compared as
/// numbers: `12.0` and `12` are the same amount).
fn sent_diff(sent: &Value, back: &Value, at: &str, out: &mut Vec<String>) {
    match (sent, back) {
        (Value::Object(s), Value::Object(b)) => {
            for (k, v) in s {
                sent_diff(
                    v,
                    b.get(k).unwrap_or(&Value::Null),
                    &format!("{at}.{k}"),
                    out,
                );
            }
        }
        (Value::Array(s), Value::Array(b)) if s.len() == b.len() => {
            for (i, (x, y)) in s.iter().zip(b).enumerate() {
                sent_diff(x, y, &format!("{at}[{i}]"), out);
            }
        }
        (Value::Number(x), Value::Number(y)) if x.as_f64() == y.as_f64() => {}
        (x, y) if x != y => out.push(format!("{at}: sent {x}, got {y}")),
        _ => {}
    }
}

/// An explicit write rule makes a read-only target writable, and round-trips; a write
/// rule that cannot work is refused when the mapping is made, naming its target.
#[test]
fn explicit_write_rules_make_read_only_targets_writable() {
    let spec = OverrideSpec::parse(
        r#"
overrides:
  - target: status
    write:
      path: $.PurchasingProcessingStatus
      transforms:
        - lookup: {map: {draft: "01", approved: "05", pending_approval: "03"}}
"#,
        Format::Yaml,
    )
    .unwrap();
    let resolved = systems::resolve("sap-s4hana", Entity::PurchaseOrder, Some(&spec)).unwrap();
    let write = systems::write_plan(&resolved, &PluginSet::new()).unwrap();
    assert!(!write.read_only().iter().any(|r| r.target == "status"));
    let native = write
        .to_native(&serde_json::json!({"number": "4500000001", "status": "approved"}))
        .unwrap();
    assert_eq!(
        native,
        serde_json::json!({"PurchaseOrder": "4500000001", "PurchasingProcessingStatus": "05"})
    );
    let plan = systems::plan("sap-s4hana", Entity::PurchaseOrder, Some(&spec)).unwrap();
    assert_eq!(
        plan.map_record(&native, MapOptions::default()).unwrap()["status"],
        "approved"
    );
    let e = write
        .to_native(&serde_json::json!({"status": "on_hold"}))
        .unwrap_err();
    assert_eq!(e[0].field, "status");
    assert!(e[0].message.contains("on_hold"), "{}", e[0].message);

    for (rule, says) in [
        ("{path: '$.items[0].X'}", "is not a plain member path"),
        (
            "{path: $.X, transforms: [{plugin: uom, function: convert}]}",
            "built-in transforms only",
        ),
        ("{path: $.X, transforms: [frobnicate]}", "frobnicate"),
    ] {
        let spec = OverrideSpec::parse(
            &format!("overrides:\n  - target: status\n    write: {rule}\n"),
            Format::Yaml,
        )
        .unwrap();
        let resolved = systems::resolve("sap-s4hana", Entity::PurchaseOrder, Some(&spec)).unwrap();
        let e = systems::write_plan(&resolved, &PluginSet::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("status") && e.contains(says), "{rule}: {e}");
    }
}

/// A template splits back into the source fields it was built from: a composite id
/// (`{$.siteid}/{value}`) writes both parts; when another field writes the same source
/// field, the value that reads back as both is written, and values that cannot are
/// refused naming both fields.
#[test]
fn templates_write_back_the_fields_they_were_built_from() {
    let example = |system: &str, case: &str| {
        let dir = repo().join("examples/overrides").join(system).join(case);
        let text = fs::read_to_string(dir.join("overrides.yaml")).unwrap();
        let spec = OverrideSpec::parse(&text, Format::Yaml).unwrap();
        let resolved = systems::resolve(system, spec.entity.unwrap(), Some(&spec)).unwrap();
        systems::write_plan(&resolved, &PluginSet::new()).unwrap()
    };
    let maximo = example("ibm-maximo", "wo-multisite-permits");
    assert!(!maximo.read_only().iter().any(|r| r.target == "id"));
    assert_eq!(
        maximo
            .to_native(&serde_json::json!({"id": "NASHUA/2211", "site_id": "NASHUA"}))
            .unwrap(),
        serde_json::json!({"siteid": "NASHUA", "wonum": "2211"})
    );
    let e = maximo
        .to_native(&serde_json::json!({"id": "NASHUA/2211", "site_id": "BEDFORD"}))
        .unwrap_err();
    assert_eq!(
        e[0].to_string(),
        "`site_id`: it writes \"BEDFORD\" to `siteid`, which `id` of this write sets to \"NASHUA\""
    );
    // A null id (a create whose number Maximo assigns) writes nothing through it.
    assert_eq!(
        maximo
            .to_native(&serde_json::json!({"id": null, "site_id": "NASHUA"}))
            .unwrap(),
        serde_json::json!({"siteid": "NASHUA"})
    );
    let e = maximo
        .to_native(&serde_json::json!({"id": "2211"}))
        .unwrap_err();
    assert_eq!(
        e[0].to_string(),
        "`id`: `2211` does not have the form of the template `{$.siteid}/{value}`"
    );

    // `site_id` reads `$.dataAreaId` through `upper`: `demf` reads back as both the
    // id's prefix and `DEMF`, so it is what is written.
    let dynamics = example("dynamics-365-fo", "purchase-order-maintenance-fields");
    let native = dynamics
        .to_native(&serde_json::json!({"id": "demf/DE-000412", "site_id": "DEMF"}))
        .unwrap();
    assert_eq!(native["dataAreaId"], "demf");
    assert_eq!(native["PurchaseOrderNumber"], "DE-000412");
    let e = dynamics
        .to_native(&serde_json::json!({"id": "demf/DE-000412", "site_id": "USMF"}))
        .unwrap_err();
    assert_eq!(e[0].field, "site_id");
}

/// A field whose source holds another field's source (`$.A` and `$.A.B`) cannot be
/// written with it, in either order of the fields.
#[test]
fn fields_whose_sources_overlap_are_refused_in_either_order() {
    let spec = OverrideSpec::parse(
        "overrides:\n  - target: custom_fields.outer\n    path: $.ZZ1_Outer\n  - target: custom_fields.inner\n    path: $.ZZ1_Outer.Inner\n",
        Format::Yaml,
    )
    .unwrap();
    let resolved = systems::resolve("sap-s4hana", Entity::PurchaseOrder, Some(&spec)).unwrap();
    let write = systems::write_plan(&resolved, &PluginSet::new()).unwrap();
    let outer_first: Value =
        serde_json::from_str(r#"{"custom_fields": {"outer": "x", "inner": "y"}}"#).unwrap();
    let inner_first: Value =
        serde_json::from_str(r#"{"custom_fields": {"inner": "y", "outer": "x"}}"#).unwrap();
    for record in [outer_first, inner_first] {
        let e = write.to_native(&record).unwrap_err();
        assert_eq!(e.len(), 1, "{record}: {e:?}");
        assert!(e[0].message.contains("another field"), "{record}: {}", e[0]);
    }
}
