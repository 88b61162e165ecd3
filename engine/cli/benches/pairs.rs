//! The in-process pairs of the benchmark suite: the mapping against the serde_json
//! floor, and the cost of crossing into WebAssembly. `bench/run` builds the workloads
//! and the plugin, runs this with `cargo bench --bench pairs`, and puts the results into
//! BENCHMARKS.md; run alone, it needs the same environment:
//!
//! - `CROSSWALK_BENCH_DATA`: the folder `bench/workloads.py` wrote;
//! - `CROSSWALK_BENCH_UOM`: the `uom` plugin's component;
//! - `CROSSWALK_BENCH_RUNS`: how many runs each figure is the median of (default 5).
//!
//! The two sides of a pair run alternately, so that drift on a shared machine hits
//! both; each prints one JSON line of seconds per run (medians).

use std::sync::Arc;
use std::time::Instant;

use crosswalk_core::mapping::{Format, MapOptions, OverrideSpec, Plan};
use crosswalk_core::model::Entity;
use crosswalk_plugin_host::{HostConfig, Limits, PluginHost, PluginSet};
use serde_json::{Value, json};

// The allocator of the `crosswalk` binary, so that both sides of a pair run as there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Records mapped together, with one plugin session, as the service's NDJSON does.
const BATCH: usize = 256;
const BATCH_BYTES: usize = 1 << 20;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        eprintln!("{name} is not set: run the benchmarks with bench/run");
        std::process::exit(2)
    })
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Runs each of `sides` `runs` times, alternating; the median seconds of each.
fn alternate(runs: usize, sides: &mut [&mut dyn FnMut() -> usize]) -> Vec<f64> {
    let mut times = vec![Vec::new(); sides.len()];
    let mut check = 0;
    for _ in 0..runs {
        for (i, side) in sides.iter_mut().enumerate() {
            let start = Instant::now();
            check += side();
            times[i].push(start.elapsed().as_secs_f64());
        }
    }
    assert!(check > 0);
    times.into_iter().map(median).collect()
}

fn lines(dir: &str, name: &str) -> Vec<Vec<u8>> {
    let path = format!("{dir}/{name}.ndjson");
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// Parse and serialize every record: the floor.
fn floor(lines: &[Vec<u8>]) -> usize {
    let mut out = Vec::with_capacity(1 << 20);
    for line in lines {
        let value: Value = serde_json::from_slice(line).expect("JSON");
        serde_json::to_writer(&mut out, &value).expect("serializes");
        out.push(b'\n');
        if out.len() > 1 << 24 {
            out.clear();
        }
    }
    out.len() + 1
}

/// Batches as the service and the command line make them: at most [`BATCH`] records
/// and about `BATCH_BYTES` of source.
fn batches(lines: &[Vec<u8>]) -> Vec<&[Vec<u8>]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, line) in lines.iter().enumerate() {
        bytes += line.len();
        if i + 1 - start == BATCH || bytes >= BATCH_BYTES {
            out.push(&lines[start..=i]);
            (start, bytes) = (i + 1, 0);
        }
    }
    if start < lines.len() {
        out.push(&lines[start..]);
    }
    out
}

/// Parse (what the plan reads), map in batches, serialize: what `crosswalk map --ndjson`
/// does in memory.
fn map(plan: &Plan, lines: &[Vec<u8>]) -> usize {
    let mut out = Vec::with_capacity(1 << 20);
    let mut mapped = 0;
    for chunk in batches(lines) {
        let records: Vec<Value> = chunk
            .iter()
            .map(|l| plan.parse_source(l, MapOptions::default()).expect("JSON"))
            .collect();
        for record in plan
            .map_batch_to_json(&records, MapOptions::default())
            .records
        {
            out.extend_from_slice(record.expect("maps").json().as_bytes());
            out.push(b'\n');
            mapped += 1;
        }
        if out.len() > 1 << 24 {
            out.clear();
        }
    }
    mapped
}

/// Like [`map`], but every record on its own, so with a fresh plugin instance each.
fn map_each(plan: &Plan, lines: &[Vec<u8>]) -> usize {
    let mut out = Vec::with_capacity(1 << 20);
    for line in lines {
        let record: Value = serde_json::from_slice(line).expect("JSON");
        let mapped = plan
            .map_record(&record, MapOptions::default())
            .expect("maps");
        serde_json::to_writer(&mut out, &mapped).expect("serializes");
        out.push(b'\n');
        if out.len() > 1 << 24 {
            out.clear();
        }
    }
    lines.len()
}

fn overrides(yaml: &str) -> OverrideSpec {
    OverrideSpec::parse(yaml, Format::Yaml).expect("the benchmark's overrides parse")
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let dir = env("CROSSWALK_BENCH_DATA");
    let runs: usize = std::env::var("CROSSWALK_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);

    for (workload, system, entity) in [
        ("sap-po-small", "sap-s4hana", Entity::PurchaseOrder),
        ("sap-po-large", "sap-s4hana", Entity::PurchaseOrder),
        ("maximo-wo-small", "ibm-maximo", Entity::WorkOrder),
        ("maximo-wo-large", "ibm-maximo", Entity::WorkOrder),
    ] {
        let lines = lines(&dir, workload);
        let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
        let plan =
            crosswalk_systems::plan(system, entity, None).expect("the default mapping compiles");
        let t = alternate(
            runs,
            &mut [&mut || floor(&lines), &mut || map(&plan, &lines)],
        );
        println!(
            "{}",
            json!({"pair": "floor", "workload": workload, "records": lines.len(), "bytes": bytes, "floor_s": t[0], "map_s": t[1]})
        );
    }

    // `CROSSWALK_BENCH_FLOOR_ONLY`: the floor pairs alone, while working on the core.
    if std::env::var_os("CROSSWALK_BENCH_FLOOR_ONLY").is_some() {
        return;
    }

    // One field converted three ways: a built-in lookup, a plugin function, a
    // record-level plugin step; and the plugin with a session per record (whose
    // instance the binding parks and the next record's session takes up).
    let host = Arc::new(PluginHost::new(HostConfig::default()).expect("a plugin host"));
    let uom_path = env("CROSSWALK_BENCH_UOM");
    let uom = host
        .load(&std::fs::read(&uom_path).unwrap_or_else(|e| panic!("{uom_path}: {e}")))
        .expect("the uom plugin loads");
    let mut set = PluginSet::new();
    set.insert(uom, Limits::DEFAULT);
    let plan = |yaml: &str| {
        crosswalk_systems::plan_with(
            "sap-s4hana",
            Entity::PurchaseOrder,
            Some(&overrides(yaml)),
            &set,
        )
        .expect("the benchmark's mapping compiles")
    };
    let none = plan("overrides: []\n");
    let builtin = plan(
        "overrides:\n  - target: lines.unit_of_measure\n    transforms: [null_if_empty, {lookup: {map: {PC: H87, EA: EA, KG: KGM, M: MTR, L: LTR}}}]\n",
    );
    let field = plan(
        "overrides:\n  - target: lines.unit_of_measure\n    transforms: [null_if_empty, {plugin: uom, function: convert, args: {from: sap, to: iso}}]\n",
    );
    let record = plan(
        "overrides: []\npost:\n  - {plugin: uom, function: convert_lines, args: {from: sap, to: iso}}\n",
    );
    let lines = lines(&dir, "sap-po-small");
    // The three give the same records.
    let sample: Vec<Value> = lines[..50]
        .iter()
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    let outputs: Vec<Vec<Value>> = [&builtin, &field, &record]
        .iter()
        .map(|p| {
            p.map_batch(&sample, MapOptions::default())
                .records
                .into_iter()
                .map(|r| r.unwrap())
                .collect()
        })
        .collect();
    assert_eq!(
        outputs[0], outputs[1],
        "built-in and plugin function differ"
    );
    assert_eq!(outputs[0], outputs[2], "built-in and record plugin differ");
    let calls: usize = sample
        .iter()
        .map(|r| {
            r["to_PurchaseOrderItem"]["results"]
                .as_array()
                .unwrap()
                .len()
        })
        .sum::<usize>()
        * lines.len()
        / sample.len();
    let t = alternate(
        runs,
        &mut [
            &mut || map(&none, &lines),
            &mut || map(&builtin, &lines),
            &mut || map(&field, &lines),
            &mut || map(&record, &lines),
            &mut || map_each(&field, &lines),
        ],
    );
    println!(
        "{}",
        json!({"pair": "plugins", "workload": "sap-po-small", "records": lines.len(), "field_calls": calls,
               "none_s": t[0], "builtin_s": t[1], "field_plugin_s": t[2], "record_plugin_s": t[3], "field_plugin_instance_per_record_s": t[4]})
    );
}
