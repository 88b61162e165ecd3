//! WebAssembly plugins through the engine: the example plugins in mappings
//! (`tests/fixtures/plugins/<case>/`), the sandbox's limits against hostile plugins,
//! what the loader refuses, the compiled-artifact cache, and the JavaScript plugin.

#[path = "../../../tests/support/mod.rs"]
mod support;

/// The plugin pool shared between tenants, through the router.
#[path = "plugins/pool.rs"]
mod pool;

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crosswalk_core::mapping::{
    self, Format, MapOptions, OverrideSpec, Payload, WriteError, WritePlan,
};
use crosswalk_plugin_host::{
    Binding, HostConfig, Instance as _, LimitOverrides, Limits, LogLevel, LogLine, LogSource,
    Plugin as _, PluginError, PluginHost, PluginSet, Session, WasmPlugin,
};
use serde_json::{Value, json};

fn host() -> PluginHost {
    PluginHost::new(HostConfig::default()).expect("host")
}

fn load(host: &PluginHost, package: &str) -> Arc<WasmPlugin> {
    host.load(&support::rust_plugin_bytes(package))
        .unwrap_or_else(|e| panic!("{package}: {e}"))
}

/// Maps `<dir>/input.json` with `<dir>/overrides.yaml` and the plugins, and compares
/// with `<dir>/expected.json`.
fn run_fixture(dir: &Path, plugins: &PluginSet) {
    let text = fs::read_to_string(dir.join("overrides.yaml")).unwrap();
    let spec = OverrideSpec::parse(&text, Format::Yaml).unwrap();
    let plan = crosswalk_systems::plan_with(
        spec.system.as_deref().unwrap(),
        spec.entity.unwrap(),
        Some(&spec),
        plugins,
    )
    .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let input = Payload::parse(&fs::read_to_string(dir.join("input.json")).unwrap()).unwrap();
    let batch = plan.map_batch(
        &input.into_records(),
        MapOptions {
            strict: true,
            remote_data: false,
        },
    );
    let output = batch
        .records
        .into_iter()
        .next()
        .unwrap()
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let expected: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    assert_eq!(output, expected, "{}", dir.display());
}

#[test]
fn example_plugins_in_mappings() {
    let host = host();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plugins");
    let mut cases: Vec<_> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    for dir in &cases {
        let mut plugins = PluginSet::new();
        for package in fs::read_to_string(dir.join("plugins.txt")).unwrap().lines() {
            plugins.insert(load(&host, package), Limits::DEFAULT);
        }
        run_fixture(dir, &plugins);
    }
    assert!(cases.len() >= 3);
}

#[test]
fn example_plugins_describe_themselves() {
    let host = host();
    // Each function with the inverse it declares.
    for (package, name, functions) in [
        (
            "crosswalk-plugin-uom",
            "uom",
            vec![
                ("convert", Some("convert_back")),
                ("convert_back", Some("convert")),
                ("convert_lines", Some("convert_lines_back")),
                ("convert_lines_back", Some("convert_lines")),
            ],
        ),
        (
            "crosswalk-plugin-vat-id",
            "vat-id",
            vec![("normalize", Some("normalize")), ("validate", None)],
        ),
        (
            "crosswalk-plugin-maximo-specs",
            "maximo-specs",
            vec![
                ("specs_to_custom_fields", Some("strip_spec_fields")),
                ("strip_spec_fields", None),
            ],
        ),
    ] {
        let plugin = load(&host, package);
        assert_eq!(plugin.name(), name);
        assert_eq!(plugin.interface(), "crosswalk:plugin@0.2.0");
        assert_eq!(plugin.sha256().len(), 64);
        let described: Vec<(&str, Option<&str>)> = plugin
            .functions()
            .iter()
            .map(|f| (f.name.as_str(), f.inverse.as_deref()))
            .collect();
        assert_eq!(described, functions);
    }
}

/// The plugins of a fixture (`plugins.txt`), its override spec, and its mapped input.
fn fixture(host: &PluginHost, dir: &Path) -> (PluginSet, OverrideSpec, Vec<Value>) {
    let mut plugins = PluginSet::new();
    for package in fs::read_to_string(dir.join("plugins.txt")).unwrap().lines() {
        plugins.insert(load(host, package), Limits::DEFAULT);
    }
    let text = fs::read_to_string(dir.join("overrides.yaml")).unwrap();
    let spec = OverrideSpec::parse(&text, Format::Yaml).unwrap();
    let input = Payload::parse(&fs::read_to_string(dir.join("input.json")).unwrap()).unwrap();
    (plugins, spec, input.into_records())
}

/// Custom fields given as `null` write nothing and read back as absent: they are
/// left out of both sides of a comparison.
fn without_null_custom_fields(mut record: Value) -> Value {
    if let Some(Value::Object(custom)) = record.get_mut("custom_fields") {
        custom.retain(|_, v| !v.is_null());
    }
    record
}

/// Writes what a write carries of `unified` through `write`, reads the native payload
/// back through `plan`, and returns the differences, the native payload, and what was
/// sent.
fn round_trip(
    plan: &mapping::Plan,
    write: &WritePlan,
    unified: &Value,
) -> Result<(Vec<String>, Value, Value), Vec<WriteError>> {
    let sent = support::writable(unified, write.read_only());
    let native = write.to_native(&sent)?;
    let back = plan
        .map_record(&native, MapOptions::default())
        .unwrap_or_else(|e| panic!("the native payload {native} does not read back: {e}"));
    let back = support::writable(&back, write.read_only());
    let sent = without_null_custom_fields(sent);
    let mut differences = Vec::new();
    support::diff(
        &sent,
        &without_null_custom_fields(back),
        "",
        &mut differences,
    );
    Ok((differences, native, sent))
}

/// Plugin-converted fields write back through the inverses their functions declare
/// (`crosswalk:plugin@0.2.0`): for every example fixture, unified → native → unified
/// gives back every writable field, and the plugin-converted ones reach the source in
/// its own spelling.
#[test]
fn plugin_converted_fields_round_trip_through_their_inverses() {
    let host = host();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plugins");
    let mut cases: Vec<_> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    let mut checked = Vec::new();
    for dir in &cases {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let (plugins, spec, records) = fixture(&host, dir);
        let (system, entity) = (spec.system.as_deref().unwrap(), spec.entity.unwrap());
        let resolved = crosswalk_systems::resolve(system, entity, Some(&spec)).unwrap();
        let plan = crosswalk_systems::plan_with(system, entity, Some(&spec), &plugins).unwrap();
        let write = crosswalk_systems::write_plan(&resolved, &plugins).unwrap();
        assert!(
            write.calls_plugins(),
            "{name}: its plugins declare inverses"
        );
        assert_eq!(write.refused(), None, "{name}");
        let unified = plan.map_record(&records[0], MapOptions::default()).unwrap();
        let unified = match name.as_str() {
            // Classification attributes are not written: a record read from the API
            // writes back once they are null, as a client clears what it does not set.
            "maximo-asset-specs" => {
                let e = write
                    .to_native(&support::writable(&unified, write.read_only()))
                    .unwrap_err();
                assert_eq!(e.len(), 1, "{e:?}");
                assert!(
                    e[0].message.contains("custom_fields.spec_voltage")
                        && e[0].message.contains("classification attributes"),
                    "{e:?}"
                );
                let mut cleared = unified.clone();
                for (k, v) in cleared["custom_fields"].as_object_mut().unwrap() {
                    if k.starts_with("spec_") {
                        *v = Value::Null;
                    }
                }
                cleared
            }
            _ => unified,
        };
        let (differences, native, sent) = round_trip(&plan, &write, &unified)
            .unwrap_or_else(|e| panic!("{name}: the record does not write back: {e:?}"));
        assert!(
            differences.is_empty(),
            "{name}: unified → native → unified changed {differences:?}\nnative: {native}"
        );
        match name.as_str() {
            "sap-po-uom-to-iso" => {
                assert_eq!(sent["lines"][0]["unit_of_measure"], "H87");
                assert_eq!(
                    native["to_PurchaseOrderItem"]["results"][0]["PurchaseOrderQuantityUnit"], "PC",
                    "{native}"
                );
            }
            "sap-vendor-vat-id" => {
                let tax_id = sent["tax_id"].as_str().unwrap();
                assert!(native.to_string().contains(tax_id), "{native}");
                // `validate` has no inverse: the flag is read-only, with the reason.
                let flag = write
                    .read_only()
                    .iter()
                    .find(|r| r.target == "custom_fields.tax_id_valid")
                    .expect("custom_fields.tax_id_valid is read-only");
                assert_eq!(
                    flag.reason,
                    "it calls the plugin function `vat-id.validate`, which declares no inverse"
                );
            }
            "maximo-asset-specs" => {
                assert!(!native.to_string().contains("spec_"), "{native}");
            }
            other => panic!("{other}: a new fixture needs its check here"),
        }
        checked.push(name);
    }
    assert_eq!(
        checked,
        [
            "maximo-asset-specs",
            "sap-po-uom-to-iso",
            "sap-vendor-vat-id"
        ]
    );
}

/// Every unit code of the table round-trips through `uom.convert` and its inverse, in
/// a field rule and in a `post` step; a unified code the source has no spelling for is
/// refused by name, with the plugin's reason.
#[test]
fn every_unit_code_round_trips_through_the_uom_inverses() {
    let host = host();
    let mut plugins = PluginSet::new();
    plugins.insert(load(&host, "crosswalk-plugin-uom"), Limits::DEFAULT);
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plugins/sap-po-uom-to-iso");
    let (_, field_spec, records) = fixture(&host, &dir);
    let post_spec = OverrideSpec::parse(
        "system: sap-s4hana\nentity: purchase_order\npost: [{plugin: uom, function: convert_lines, args: {from: sap, to: iso}}]\noverrides: []\n",
        Format::Yaml,
    )
    .unwrap();
    // SAP's commercial codes, as the plugin's table has them.
    let sap_codes = [
        "PC", "EA", "KG", "G", "TO", "LB", "M", "CM", "MM", "FT", "IN", "M2", "M3", "L", "ML",
        "GAL", "H", "MIN", "DAY", "KWH", "BOX", "PAK", "PAA", "SET", "ROL", "DR",
    ];
    for spec in [&field_spec, &post_spec] {
        let entity = crosswalk_core::model::Entity::PurchaseOrder;
        let resolved = crosswalk_systems::resolve("sap-s4hana", entity, Some(spec)).unwrap();
        let plan =
            crosswalk_systems::plan_with("sap-s4hana", entity, Some(spec), &plugins).unwrap();
        let write = crosswalk_systems::write_plan(&resolved, &plugins).unwrap();
        let mut instance = Arc::clone(&plugins.get("uom").unwrap().plugin).open(
            Limits::DEFAULT,
            Arc::new(crosswalk_plugin_host::Budget::unlimited()),
        );
        for code in sap_codes {
            let iso = instance
                .call_field("convert", &json!(code), r#"{"from":"sap","to":"iso"}"#)
                .unwrap();
            let mut unified = plan.map_record(&records[0], MapOptions::default()).unwrap();
            for line in unified["lines"].as_array_mut().unwrap() {
                line["unit_of_measure"] = iso.clone();
            }
            let (differences, native, _) = round_trip(&plan, &write, &unified)
                .unwrap_or_else(|e| panic!("{code} ({iso}): {e:?}"));
            assert!(differences.is_empty(), "{code} ({iso}): {differences:?}");
            for line in native["to_PurchaseOrderItem"]["results"]
                .as_array()
                .unwrap()
            {
                assert_eq!(line["PurchaseOrderQuantityUnit"], code, "{native}");
            }
        }
        let mut unified = plan.map_record(&records[0], MapOptions::default()).unwrap();
        unified["lines"][1]["unit_of_measure"] = json!("XYZ");
        let e = write
            .to_native(&support::writable(&unified, write.read_only()))
            .unwrap_err();
        let e: Vec<String> = e.iter().map(ToString::to_string).collect();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("`XYZ` is not a known ISO unit code")
                && (spec.post.is_none() == e[0].starts_with("`lines[1].unit_of_measure`")),
            "{e:?}"
        );
    }
}

/// An inverse must take the step's arguments (they are checked against its own schema
/// when the mapping is compiled), and an inverse that gives `null` for a value would
/// clear the source field: the write is refused instead.
#[test]
fn inverses_take_the_steps_arguments_and_never_clear_a_field() {
    let host = host();
    let mut plugins = PluginSet::new();
    plugins.insert(load(&host, "crosswalk-fixture-hostile"), Limits::DEFAULT);
    plugins.insert(load(&host, "crosswalk-plugin-vat-id"), Limits::DEFAULT);
    let write = |overrides: &str| {
        let spec = OverrideSpec::parse(overrides, Format::Yaml).unwrap();
        let entity = crosswalk_core::model::Entity::Vendor;
        let resolved = crosswalk_systems::resolve("sap-s4hana", entity, Some(&spec)).unwrap();
        crosswalk_systems::write_plan(&resolved, &plugins).unwrap()
    };
    let loose = write(
        "overrides:\n  - target: name\n    transforms: [{plugin: hostile, function: echo_loose, args: {x: 1}}]\n",
    );
    let name = loose
        .read_only()
        .iter()
        .find(|r| r.target == "name")
        .unwrap();
    assert!(
        name.reason.starts_with(
            "it calls the plugin function `hostile.echo_loose`, whose inverse `echo_strict` does not take the step's arguments: plugin `hostile` function `echo_strict`"
        ),
        "{}",
        name.reason
    );
    let fits = write(
        "overrides:\n  - target: name\n    transforms: [{plugin: hostile, function: echo_loose}]\n",
    );
    assert!(!fits.read_only().iter().any(|r| r.target == "name"));
    assert_eq!(
        fits.to_native(&json!({"name": "Acme"})).unwrap()["BusinessPartnerFullName"],
        "Acme"
    );

    // `on_invalid: null` suits reads; in a write it would wipe the stored number (the
    // check digit of this one is wrong).
    let lenient = write(
        "overrides:\n  - target: tax_id\n    transforms: [{plugin: vat-id, function: normalize, args: {on_invalid: \"null\"}}]\n",
    );
    assert!(lenient.calls_plugins());
    let e = lenient
        .to_native(&json!({"tax_id": "DE136695977"}))
        .unwrap_err();
    assert_eq!(
        e[0].to_string(),
        "`tax_id`: plugin `vat-id` function `normalize` gives null for \"DE136695977\", which would clear the source field"
    );
    let native = lenient
        .to_native(&json!({"tax_id": "de 136 695 976"}))
        .unwrap();
    assert!(native.to_string().contains("\"DE136695976\""), "{native}");
    // A `null` the client sends is theirs to send: the inverse is not called.
    assert_eq!(
        lenient.to_native(&json!({"tax_id": null})).unwrap(),
        json!({"to_Supplier": {"VATRegistration": null}})
    );
}

/// A record step whose function declares no inverse makes the entity unwritable, with
/// the step named, since nothing says which fields it changed; reads are unaffected.
#[test]
fn a_record_step_without_an_inverse_refuses_writes_by_name() {
    let host = host();
    let mut plugins = PluginSet::new();
    plugins.insert(load(&host, "crosswalk-fixture-hostile"), Limits::DEFAULT);
    let spec = OverrideSpec::parse(
        "pre: [{plugin: hostile, function: echo_records}]\noverrides: []\n",
        Format::Yaml,
    )
    .unwrap();
    let entity = crosswalk_core::model::Entity::Vendor;
    let resolved = crosswalk_systems::resolve("ibm-maximo", entity, Some(&spec)).unwrap();
    let write = crosswalk_systems::write_plan(&resolved, &plugins).unwrap();
    let why = write.refused().expect("refused");
    assert_eq!(
        why,
        "its `pre` step calls the plugin function `hostile.echo_records`, which declares no inverse, so a write cannot undo what it changed"
    );
    let e = write.to_native(&json!({"name": "Acme"})).unwrap_err();
    assert_eq!(
        (e[0].field.as_str(), e[0].to_string()),
        ("", why.to_owned())
    );
    let plan = crosswalk_systems::plan_with("ibm-maximo", entity, Some(&spec), &plugins).unwrap();
    let read = plan
        .map_record(
            &json!({"company": "ACME", "name": "Acme"}),
            MapOptions::default(),
        )
        .unwrap();
    assert_eq!(read["name"], "Acme");
}

#[test]
fn mappings_check_plugin_steps_when_compiled() {
    let host = host();
    let mut plugins = PluginSet::new();
    plugins.insert(load(&host, "crosswalk-plugin-uom"), Limits::DEFAULT);
    plugins.insert(
        load(&host, "crosswalk-plugin-maximo-specs"),
        Limits::DEFAULT,
    );
    let check = |overrides: &str| -> String {
        let spec = OverrideSpec::parse(overrides, Format::Yaml).unwrap();
        match crosswalk_systems::plan_with(
            "sap-s4hana",
            crosswalk_core::model::Entity::PurchaseOrder,
            Some(&spec),
            &plugins,
        ) {
            Ok(_) => "ok".into(),
            Err(e) => e.to_string(),
        }
    };
    let step =
        |s: &str| format!("overrides:\n  - target: lines.unit_of_measure\n    transforms: [{s}]\n");
    assert_eq!(
        check(&step(
            "{plugin: uom, function: convert, args: {from: sap, to: iso}}"
        )),
        "ok"
    );
    let e = check(&step("{plugin: units, function: convert}"));
    assert!(
        e.contains("no plugin `units` is loaded; the loaded plugins are maximo-specs, uom"),
        "{e}"
    );
    let e = check(&step("{plugin: uom, function: translate, args: {}}"));
    assert!(
        e.contains(
            "plugin `uom` has no field function `translate`; its field functions are convert"
        ),
        "{e}"
    );
    let e = check(&step(
        "{plugin: uom, function: convert, args: {from: sap, to: klingon}}",
    ));
    assert!(e.contains("target `lines.unit_of_measure`: plugin `uom` function `convert`: the arguments do not fit its schema: /to:"), "{e}");
    let e = check(&step(
        "{plugin: maximo-specs, function: specs_to_custom_fields}",
    ));
    assert!(
        e.contains("has no field function `specs_to_custom_fields`"),
        "{e}"
    );
    let e = check(
        "post: [{plugin: uom, function: convert, args: {from: sap, to: iso}}]\noverrides: []\n",
    );
    assert!(
        e.contains("`post` step: plugin `uom` has no record function `convert`"),
        "{e}"
    );
}

#[test]
fn a_failing_plugin_fails_only_its_field_or_record() {
    let host = host();
    let mut plugins = PluginSet::new();
    plugins.insert(load(&host, "crosswalk-plugin-uom"), Limits::DEFAULT);
    let spec = OverrideSpec::parse(
        "overrides:\n  - target: lines.unit_of_measure\n    transforms: [{plugin: uom, function: convert, args: {from: sap, to: iso}}]\n",
        Format::Yaml,
    )
    .unwrap();
    let plan = crosswalk_systems::plan_with(
        "sap-s4hana",
        crosswalk_core::model::Entity::PurchaseOrder,
        Some(&spec),
        &plugins,
    )
    .unwrap();
    let record = |unit: &str| json!({"PurchaseOrder": "1", "to_PurchaseOrderItem": {"results": [{"PurchaseOrderItem": "10", "PurchaseOrderQuantityUnit": unit}]}});
    let records = [record("KG"), record("BAGS")];
    let lenient = plan.map_batch(&records, MapOptions::default());
    let ok = lenient.records[0].as_ref().unwrap();
    assert_eq!(ok["lines"][0]["unit_of_measure"], "KGM");
    let failed = lenient.records[1].as_ref().unwrap();
    assert_eq!(failed["lines"][0]["unit_of_measure"], Value::Null);
    let message = failed["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains(
            "plugin `uom` function `convert`: invalid input: `BAGS` is not a known SAP unit code"
        ),
        "{message}"
    );
    let strict = plan.map_batch(
        &records,
        MapOptions {
            strict: true,
            remote_data: false,
        },
    );
    assert!(strict.records[0].is_ok());
    let e = strict.records[1].as_ref().unwrap_err().to_string();
    assert!(e.contains("target `lines[0].unit_of_measure`"), "{e}");
}

/// Calls `function` of the hostile plugin on a fresh instance under `limits`.
fn hostile_call(
    plugin: &Arc<WasmPlugin>,
    limits: Limits,
    function: &str,
    args: Value,
) -> (Result<Value, PluginError>, Duration, Vec<LogLine>) {
    let mut instance = plugin.instance(limits);
    let started = Instant::now();
    let result = instance.call_field(function, &json!("x"), &args.to_string());
    let elapsed = started.elapsed();
    // The same instance serves again after a failure (it is replaced behind the scenes).
    assert_eq!(
        instance
            .call_field("echo", &json!({"after": function}), "{}")
            .unwrap(),
        json!({"after": function})
    );
    (result, elapsed, instance.take_log())
}

/// A 200 ms deadline.
fn slow() -> Limits {
    Limits::with(&LimitOverrides {
        timeout_ms: Some(200),
        ..Default::default()
    })
    .unwrap()
}

/// Two seconds: filling 64 MiB takes a while on a busy machine, so that with this time
/// the memory limit (or the stack's) is what stops a call.
fn roomy() -> Limits {
    Limits::with(&LimitOverrides {
        timeout_ms: Some(2_000),
        ..Default::default()
    })
    .unwrap()
}

/// A 1 MiB output limit, with room in time, so that what fails is the output's size
/// even on a loaded machine.
fn small_output() -> Limits {
    Limits::with(&LimitOverrides {
        max_output_bytes: Some(1 << 20),
        timeout_ms: Some(2_000),
        ..Default::default()
    })
    .unwrap()
}

/// An infinite loop ends at its deadline. The bound is generous (2x a longer deadline)
/// because the machine is shared; the deadline itself is what is tested.
#[test]
fn an_infinite_loop_ends_at_its_deadline() {
    let host = host();
    let hostile = load(&host, "crosswalk-fixture-hostile");
    let (result, elapsed, _) = hostile_call(&hostile, slow(), "spin", json!({}));
    assert_eq!(
        result.unwrap_err(),
        PluginError::Timeout {
            plugin: "hostile".into(),
            function: "spin".into(),
            limit_ms: 200
        }
    );
    assert!(
        elapsed < Duration::from_millis(400),
        "the loop ran {elapsed:?} against a 200 ms deadline"
    );
    let (result, elapsed, _) = hostile_call(&hostile, Limits::DEFAULT, "spin", json!({}));
    assert!(matches!(
        result,
        Err(PluginError::Timeout { limit_ms: 50, .. })
    ));
    println!("infinite loop with a 50 ms deadline ended after {elapsed:?}");
}

/// A sleep blocks in host code, where the epoch cannot interrupt it: it is cut short at
/// the deadline, and the guest traps as it wakes.
#[test]
fn a_sleep_is_cut_short_at_the_deadline() {
    let host = host();
    let hostile = load(&host, "crosswalk-fixture-hostile");
    let (result, elapsed, _) = hostile_call(&hostile, slow(), "sleep", json!({}));
    assert!(
        matches!(result, Err(PluginError::Timeout { limit_ms: 200, .. })),
        "{result:?} after {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_millis(400),
        "the sleep ran {elapsed:?} against a 200 ms deadline"
    );
}

#[test]
fn an_allocation_past_the_memory_limit_fails_naming_the_limit() {
    let host = host();
    let hostile = load(&host, "crosswalk-fixture-hostile");
    let (result, _, _) = hostile_call(&hostile, roomy(), "allocate", json!({}));
    let e = result.unwrap_err();
    assert_eq!(
        e,
        PluginError::Memory {
            plugin: "hostile".into(),
            function: "allocate".into(),
            limit_bytes: Limits::DEFAULT.memory_bytes
        }
    );
    assert!(
        e.to_string()
            .contains("exceeded its memory limit of 67108864 bytes"),
        "{e}"
    );
}

#[test]
fn a_recursion_past_the_stack_limit_fails_naming_the_limit() {
    let host = host();
    let hostile = load(&host, "crosswalk-fixture-hostile");
    let (result, _, _) = hostile_call(&hostile, roomy(), "recurse", json!({}));
    let e = result.unwrap_err();
    assert!(matches!(e, PluginError::Stack { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("exceeded the stack limit of 524288 bytes"),
        "{e}"
    );
}

#[test]
fn frames_too_deep_for_the_guest_trap_naming_the_plugin_and_function() {
    let host = host();
    let hostile = load(&host, "crosswalk-fixture-hostile");
    let (result, _, _) = hostile_call(&hostile, roomy(), "deep_frames", json!({}));
    let e = result.unwrap_err().to_string();
    assert!(
        e.starts_with("plugin `hostile` function `deep_frames` trapped:"),
        "{e}"
    );
}

#[test]
fn a_panic_traps_with_its_message_and_its_log_is_kept() {
    let host = host();
    let hostile = load(&host, "crosswalk-fixture-hostile");
    let (result, _, log) = hostile_call(&hostile, Limits::DEFAULT, "panic", json!({}));
    let e = result.unwrap_err().to_string();
    assert!(
        e.starts_with("plugin `hostile` function `panic` trapped:"),
        "{e}"
    );
    assert!(e.contains("the hostile plugin panics on purpose"), "{e}");
    assert!(
        log.iter().any(|l| l.source == LogSource::Stderr
            && l.function == "panic"
            && l.message.contains("panics on purpose")),
        "{log:?}"
    );
}

#[test]
fn an_output_over_max_output_bytes_fails_naming_the_limit() {
    let host = host();
    let hostile = load(&host, "crosswalk-fixture-hostile");
    let (result, _, _) = hostile_call(&hostile, small_output(), "huge", json!({"bytes": 2 << 20}));
    let e = result.unwrap_err().to_string();
    assert!(
        e.contains(
            "the output is 2097154 bytes, more than the limit of 1048576 bytes (`max_output_bytes`)"
        ),
        "{e}"
    );
}

#[test]
fn an_input_over_max_input_bytes_fails_naming_the_limit() {
    let host = host();
    let hostile = load(&host, "crosswalk-fixture-hostile");
    let mut instance = hostile.instance(Limits::DEFAULT);
    let big = Value::String("y".repeat(5 << 20));
    let e = instance
        .call_field("echo", &big, "{}")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(
            "the input is 5242884 bytes, more than the limit of 4194304 bytes (`max_input_bytes`)"
        ),
        "{e}"
    );
}

/// A plugin that logs without end has its log capped at `max_log_bytes`, ending with a
/// line that says more were dropped; its log lines and its stdout are both kept.
#[test]
fn a_chatty_plugins_log_is_capped_and_says_what_was_dropped() {
    let host = host();
    let hostile = load(&host, "crosswalk-fixture-hostile");
    let (result, _, log) = hostile_call(&hostile, roomy(), "chatty", json!({}));
    assert_eq!(result.unwrap(), json!("x"));
    let bytes: usize = log.iter().map(|l| l.message.len()).sum();
    assert!(
        bytes <= Limits::DEFAULT.max_log_bytes as usize + 200,
        "{bytes} bytes of log"
    );
    assert!(
        log.last().unwrap().message.contains("more lines dropped"),
        "{:?}",
        log.last()
    );
    let first = |source| {
        log.iter()
            .find(|l| l.source == source)
            .unwrap_or_else(|| panic!("no {source:?} line in {log:?}"))
    };
    assert_eq!(
        first(LogSource::Log),
        &LogLine {
            level: LogLevel::Info,
            source: LogSource::Log,
            plugin: "hostile".into(),
            function: "chatty".into(),
            message: "log line 0".into(),
        }
    );
    assert_eq!(first(LogSource::Stdout).message, "stdout line 0");
    assert_eq!(first(LogSource::Stderr).level, LogLevel::Warn);
}

/// stdout is cut into lines whatever the writes are (a runtime may write a line in
/// pieces, each through a stream of its own), and a call's unfinished last line is
/// its own, not the next call's.
#[test]
fn printed_pieces_make_one_line_and_a_calls_last_line_is_kept() {
    let host = host();
    let hostile = load(&host, "crosswalk-fixture-hostile");
    let mut instance = hostile.instance(Limits::DEFAULT);
    instance.call_field("pieces", &json!(1), "{}").unwrap();
    instance.call_field("chatty", &json!(2), "{}").ok();
    let log = instance.take_log();
    let said: Vec<(&str, &str)> = log
        .iter()
        .filter(|l| l.source == LogSource::Stdout)
        .take(3)
        .map(|l| (l.function.as_str(), l.message.as_str()))
        .collect();
    assert_eq!(
        said,
        [
            ("pieces", "one line, in pieces"),
            ("pieces", "no end"),
            ("chatty", "stdout line 0")
        ]
    );
}

/// After every hostile call has failed within its limits on a host, a fresh instance of
/// a well-behaved plugin on the same host works as ever.
#[test]
fn a_host_that_ran_every_hostile_plugin_keeps_serving_well_behaved_ones() {
    let host = host();
    let hostile = load(&host, "crosswalk-fixture-hostile");
    for (function, limits, args) in [
        ("spin", slow(), json!({})),
        ("spin", Limits::DEFAULT, json!({})),
        ("sleep", slow(), json!({})),
        ("allocate", roomy(), json!({})),
        ("recurse", roomy(), json!({})),
        ("deep_frames", roomy(), json!({})),
        ("panic", Limits::DEFAULT, json!({})),
        ("huge", small_output(), json!({"bytes": 2 << 20})),
    ] {
        let (result, elapsed, _) = hostile_call(&hostile, limits, function, args);
        assert!(
            result.is_err(),
            "{function} ran for {elapsed:?}: {result:?}"
        );
    }
    let big = Value::String("y".repeat(5 << 20));
    assert!(
        hostile
            .instance(Limits::DEFAULT)
            .call_field("echo", &big, "{}")
            .is_err()
    );
    let (result, _, _) = hostile_call(&hostile, roomy(), "chatty", json!({}));
    assert_eq!(result.unwrap(), json!("x"));

    let uom = load(&host, "crosswalk-plugin-uom");
    let mut instance = uom.instance(Limits::DEFAULT);
    assert_eq!(
        instance
            .call_field("convert", &json!("PC"), r#"{"from":"sap","to":"iso"}"#)
            .unwrap(),
        json!("H87")
    );
}

#[test]
fn the_loader_refuses_what_is_not_a_plugin() {
    let host = host();
    let http =
        wat::parse_str(r#"(component (import "wasi:http/outgoing-handler@0.2.0" (instance)))"#)
            .unwrap();
    let e = host.load(&http).unwrap_err();
    assert_eq!(
        e,
        PluginError::ForbiddenImport {
            import: "wasi:http/outgoing-handler@0.2.0".into()
        }
    );
    assert!(
        e.to_string()
            .contains("imports `wasi:http/outgoing-handler@0.2.0`, which plugins may not use")
    );

    let core = wat::parse_str("(module (func (export \"f\")))").unwrap();
    assert_eq!(host.load(&core).unwrap_err(), PluginError::CoreModule);
    assert_eq!(
        host.load(b"\x7fELF random bytes, not wasm").unwrap_err(),
        PluginError::NotWasm
    );
    assert_eq!(host.load(b"").unwrap_err(), PluginError::NotWasm);
    let mut junk = b"\0asm\x0d\x00\x01\x00".to_vec();
    junk.extend((0..200u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    assert!(matches!(
        host.load(&junk).unwrap_err(),
        PluginError::Compile { .. }
    ));
    let huge = vec![0u8; crosswalk_plugin_host::MAX_COMPONENT_BYTES + 1];
    assert!(matches!(
        host.load(&huge).unwrap_err(),
        PluginError::TooLarge { .. }
    ));

    let empty = wat::parse_str("(component)").unwrap();
    let e = host.load(&empty).unwrap_err();
    assert!(matches!(e, PluginError::NotThePluginWorld { .. }), "{e}");
    assert!(e.to_string().contains("crosswalk:plugin/transform"), "{e}");

    // The engine still loads and runs plugins after all of that.
    let uom = load(&host, "crosswalk-plugin-uom");
    assert_eq!(
        uom.instance(Limits::DEFAULT)
            .call_field("convert", &json!("KG"), r#"{"from":"sap","to":"maximo"}"#)
            .unwrap(),
        json!("KG")
    );
}

#[test]
fn a_second_load_of_the_same_bytes_does_not_compile() {
    let cache = std::env::temp_dir().join(format!("crosswalk-plugin-cache-{}", std::process::id()));
    let _ = fs::remove_dir_all(&cache);
    let bytes = support::rust_plugin_bytes("crosswalk-plugin-vat-id");
    let config = HostConfig {
        cache_dir: Some(cache.clone()),
        ..HostConfig::default()
    };

    let first = PluginHost::new(config.clone()).unwrap();
    let started = Instant::now();
    first.load(&bytes).unwrap();
    let compiled_in = started.elapsed();
    assert_eq!(first.compilations(), 1);
    first.load(&bytes).unwrap();
    assert_eq!(
        first.compilations(),
        1,
        "a second load in the same host compiled again"
    );

    // A new host (a restart) with the same cache directory loads from disk.
    let second = PluginHost::new(config).unwrap();
    let started = Instant::now();
    let plugin = second.load(&bytes).unwrap();
    let loaded_in = started.elapsed();
    assert_eq!(
        second.compilations(),
        0,
        "a restart compiled the plugin again"
    );
    assert_eq!(
        plugin
            .instance(Limits::DEFAULT)
            .call_field("validate", &json!("DE136695976"), "{}")
            .unwrap(),
        json!(true)
    );
    println!(
        "vat-id: compiled and loaded in {compiled_in:?}, loaded from the cache in {loaded_in:?}"
    );
    fs::remove_dir_all(&cache).unwrap();
}

#[test]
fn the_javascript_plugin_builds_and_runs() {
    let Some(path) = support::js_plugin() else {
        return;
    };
    let host = host();
    let bytes = fs::read(&path).unwrap();
    let started = Instant::now();
    let phone = host.load(&bytes).unwrap_or_else(|e| panic!("{e}"));
    println!(
        "phone (JavaScript, {} bytes): loaded in {:?}",
        bytes.len(),
        started.elapsed()
    );
    assert_eq!(phone.name(), "phone");
    let mut instance = phone.instance(Limits::DEFAULT);
    let us = r#"{"default_country_code":"1"}"#;
    assert_eq!(
        instance
            .call_field("e164", &json!("(312) 555-0199"), us)
            .unwrap(),
        json!("+13125550199")
    );
    assert_eq!(
        instance
            .call_field("e164", &json!("1-312-555-0199"), us)
            .unwrap(),
        json!("+13125550199")
    );
    assert_eq!(
        instance
            .call_field("e164", &json!("0049 30 1234567"), "{}")
            .unwrap(),
        json!("+49301234567")
    );
    assert_eq!(
        instance
            .call_field("e164", &json!("+44 20 7946 0958 ext. 12"), "{}")
            .unwrap(),
        json!("+442079460958")
    );
    assert_eq!(
        instance
            .call_field(
                "e164",
                &json!("030 1234567"),
                r#"{"default_country_code":"49"}"#
            )
            .unwrap(),
        json!("+49301234567")
    );
    let e = instance
        .call_field("e164", &json!("call reception"), us)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "plugin `phone` function `e164`: invalid input: \"call reception\" is not a phone number in any form this plugin reads"
    );
    assert_eq!(
        instance
            .call_field("e164", &json!("n/a"), r#"{"on_invalid":"keep"}"#)
            .unwrap(),
        json!("n/a")
    );
    assert!(
        instance
            .take_log()
            .iter()
            .any(|l| l.message.contains("kept \"n/a\""))
    );
    let e = instance
        .call_field("format", &json!("1"), "{}")
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown function"), "{e}");

    // Built against crosswalk:plugin@0.1.0, which has no inverses: it still loads and
    // maps, and the field it converts is read-only in writes, saying why.
    assert_eq!(phone.interface(), "crosswalk:plugin@0.1.0");
    assert!(phone.functions().iter().all(|f| f.inverse.is_none()));
    let mut plugins = PluginSet::new();
    plugins.insert(phone, Limits::DEFAULT);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plugins-js");
    for dir in fs::read_dir(root).unwrap() {
        let dir = dir.unwrap().path();
        run_fixture(&dir, &plugins);
        let text = fs::read_to_string(dir.join("overrides.yaml")).unwrap();
        let spec = OverrideSpec::parse(&text, Format::Yaml).unwrap();
        let (system, entity) = (spec.system.as_deref().unwrap(), spec.entity.unwrap());
        let resolved = crosswalk_systems::resolve(system, entity, Some(&spec)).unwrap();
        let write = crosswalk_systems::write_plan(&resolved, &plugins).unwrap();
        let phone = write
            .read_only()
            .iter()
            .find(|r| r.target == "phone")
            .expect("phone is read-only");
        assert!(
            phone.reason.starts_with(
                "it calls the plugin function `phone.e164`, whose plugin implements crosswalk:plugin@0.1.0, which cannot declare an inverse"
            ),
            "{}",
            phone.reason
        );
        let e = write
            .to_native(&json!({"name": "Acme", "phone": "+13125550199"}))
            .unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].field, "phone");
        // The other fields of a record read from the API write back, phone cleared.
        let plan = crosswalk_systems::plan_with(system, entity, Some(&spec), &plugins).unwrap();
        let input = Payload::parse(&fs::read_to_string(dir.join("input.json")).unwrap()).unwrap();
        let unified = plan
            .map_record(&input.into_records()[0], MapOptions::default())
            .unwrap();
        let (differences, _, _) = round_trip(&plan, &write, &unified).unwrap();
        assert!(differences.is_empty(), "{differences:?}");
    }
}

#[test]
fn a_record_step_that_fails_on_one_record_fails_only_that_record() {
    let host = host();
    let mut plugins = PluginSet::new();
    plugins.insert(load(&host, "crosswalk-fixture-hostile"), Limits::DEFAULT);
    let spec = OverrideSpec::parse(
        "post: [{plugin: hostile, function: misbehave}]\noverrides: []\n",
        Format::Yaml,
    )
    .unwrap();
    let plan = crosswalk_systems::plan_with(
        "ibm-maximo",
        crosswalk_core::model::Entity::Asset,
        Some(&spec),
        &plugins,
    )
    .unwrap();
    let record = |n: &str, behave: &str| json!({"assetnum": n, "behave": behave});
    let sources = [
        record("1", "fine"),
        record("2", "trap"),
        record("3", "extra"),
        record("4", "id"),
        record("5", "fine"),
    ];
    let batch = plan.map_batch(&sources, MapOptions::default());
    let ok = |i: usize| batch.records[i].as_ref().unwrap();
    assert_eq!(ok(0)["custom_fields"], json!({"seen": true}));
    assert_eq!(ok(4)["custom_fields"], json!({"seen": true}));
    assert!(
        ok(0).get("remote_data").is_none(),
        "remote_data is only for the post step"
    );
    let error = |i: usize| batch.records[i].as_ref().unwrap_err().to_string();
    assert!(
        error(1).starts_with("post step: plugin `hostile` function `misbehave` trapped"),
        "{}",
        error(1)
    );
    assert!(
        error(2).contains("a record with `surprise`, which is not a field of the unified model"),
        "{}",
        error(2)
    );
    assert!(
        error(3).contains("a record whose `id` was changed"),
        "{}",
        error(3)
    );
}

#[test]
fn bare_custom_fields_and_coalesce_of_empty_lists() {
    let spec = OverrideSpec::parse(
        "overrides:\n  - target: custom_fields\n    path: $.attributes\n  - target: location_id\n    coalesce: [\"$.locations[*].id\", $.location]\n",
        Format::Yaml,
    )
    .unwrap();
    let plan = crosswalk_systems::plan(
        "ibm-maximo",
        crosswalk_core::model::Entity::Asset,
        Some(&spec),
    )
    .unwrap();
    let out = plan
        .map_record(
            &json!({"assetnum": "7", "location": "BR-300", "locations": []}),
            MapOptions::default(),
        )
        .unwrap();
    assert_eq!(
        out["custom_fields"],
        json!({}),
        "a missing object maps to {{}}"
    );
    assert_eq!(
        out["location_id"], "BR-300",
        "an empty nodelist does not win a coalesce"
    );
    let out = plan
        .map_record(
            &json!({"assetnum": "7", "attributes": {"voltage": 480}}),
            MapOptions::default(),
        )
        .unwrap();
    assert_eq!(out["custom_fields"], json!({"voltage": 480}));
    let out = plan
        .map_record(
            &json!({"assetnum": "7", "attributes": "480V"}),
            MapOptions::default(),
        )
        .unwrap();
    assert_eq!(out["custom_fields"], json!({}));
    assert!(
        out["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("expects object of custom fields"),
        "{out}"
    );
}

/// An upload refused for its imports is refused before it is compiled: nothing is
/// compiled and nothing is cached. A deleted plugin's compiled code is dropped; the
/// next load of the same bytes compiles them again.
#[test]
fn a_refused_upload_compiles_nothing_and_a_forgotten_plugin_is_compiled_again() {
    let cache = std::env::temp_dir().join(format!("crosswalk-refused-{}", std::process::id()));
    let _ = fs::remove_dir_all(&cache);
    let host = PluginHost::new(HostConfig {
        cache_dir: Some(cache.clone()),
        ..HostConfig::default()
    })
    .unwrap();
    let http =
        wat::parse_str(r#"(component (import "wasi:http/outgoing-handler@0.2.0" (instance)))"#)
            .unwrap();
    let e = host.load(&http).unwrap_err();
    assert!(matches!(e, PluginError::ForbiddenImport { .. }), "{e}");
    assert_eq!(host.compilations(), 0, "a refused upload was compiled");
    let cached = fs::read_dir(&cache).map_or(0, |d| d.count());
    assert_eq!(cached, 0, "a refused upload left files in the cache");

    let bytes = support::rust_plugin_bytes("crosswalk-plugin-vat-id");
    let plugin = host.load(&bytes).unwrap();
    assert_eq!(host.compilations(), 1);
    assert!(host.forget(plugin.sha256()));
    assert!(!host.forget(plugin.sha256()), "nothing is left to forget");
    // The plugin held elsewhere still works.
    assert_eq!(
        plugin
            .instance(Limits::DEFAULT)
            .call_field("validate", &json!("DE136695976"), "{}")
            .unwrap(),
        json!(true)
    );
    // A reload reads the cache directory; without one it would compile.
    host.load(&bytes).unwrap();
    assert_eq!(host.compilations(), 1, "the cache directory was not used");
    let _ = fs::remove_dir_all(&cache);
}

/// A plugin whose standard library imports the sockets interfaces loads; when it tries
/// to connect to an address or to resolve a name, it gets an error it can handle, the
/// listener it aimed at is never reached, and the instance goes on working.
#[test]
fn a_plugin_that_reaches_for_the_network_gets_an_error_and_reaches_nothing() {
    let host = host();
    let network = host
        .load(&support::rust_plugin_bytes("crosswalk-fixture-network"))
        .expect("a plugin that imports wasi:sockets loads");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut instance = network.instance(Limits::DEFAULT);
    let calls = [
        ("connect", json!({"addr": addr})),
        ("resolve", json!({"name": "localhost:80"})),
        ("resolve", json!({"name": "example.com:443"})),
        ("connect", json!({"addr": "[::1]:9"})),
    ];
    for (function, args) in calls {
        let answer = instance
            .call_field(function, &Value::Null, &args.to_string())
            .unwrap_or_else(|e| panic!("{function} {args}: the call failed in the host: {e}"));
        assert!(
            answer["refused"].is_string(),
            "{function} {args} was not refused inside the plugin: {answer}"
        );
    }
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the plugin reached the listener"
    );
}

/// A session's instance is parked for the next session of the same binding, which
/// takes it up without creating one; an instance that trapped is not parked, nor one
/// of another binding; the host's idle places are given back when a parked instance
/// goes.
#[test]
fn a_binding_reuses_the_instance_its_last_session_parked() {
    let host = host();
    let hostile = load(&host, "crosswalk-fixture-hostile");
    let mut plugins = PluginSet::new();
    plugins.insert(hostile.clone(), Limits::DEFAULT);
    let bindings: Vec<Binding> = plugins.iter().cloned().collect();

    let mut first = Session::new(&bindings);
    assert_eq!(
        first
            .instance(0)
            .call_field("echo", &json!(1), "{}")
            .unwrap(),
        json!(1)
    );
    drop(first);
    assert_eq!(
        (bindings[0].idle_instances(), host.idle_instances()),
        (1, 1)
    );

    // Taken up: no instance is parked while the session holds it; its calls work.
    let mut second = Session::new(&bindings);
    assert_eq!(
        second
            .instance(0)
            .call_field("echo", &json!(2), "{}")
            .unwrap(),
        json!(2)
    );
    assert_eq!(
        (bindings[0].idle_instances(), host.idle_instances()),
        (0, 0)
    );
    // A session's log is its own: nothing of the first session's is left.
    assert!(second.take_log().is_empty());
    drop(second);
    assert_eq!(host.idle_instances(), 1);

    // An instance that trapped last is not parked: the next session starts afresh.
    let mut third = Session::new(&bindings);
    assert!(
        third
            .instance(0)
            .call_field("panic", &json!(3), "{}")
            .is_err()
    );
    drop(third);
    assert_eq!(
        (bindings[0].idle_instances(), host.idle_instances()),
        (0, 0)
    );

    // Another binding of the same plugin (another connection's mapping) has its own.
    let mut elsewhere = PluginSet::new();
    elsewhere.insert(hostile, Limits::DEFAULT);
    let other: Vec<Binding> = elsewhere.iter().cloned().collect();
    let mut fourth = Session::new(&bindings);
    fourth
        .instance(0)
        .call_field("echo", &json!(4), "{}")
        .unwrap();
    drop(fourth);
    assert_eq!(
        (bindings[0].idle_instances(), other[0].idle_instances()),
        (1, 0)
    );

    // Dropping the binding drops its parked instance and gives its place back.
    drop(bindings);
    drop(plugins);
    assert_eq!(host.idle_instances(), 0);
}
