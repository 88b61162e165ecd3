//! Micro-benchmarks of the hot functions, so that a regression shows in review:
//! JSONPath evaluation, each built-in transform, a plugin call, the same plugin
//! function and a fresh instance in each language, and one record through a whole
//! mapping. `cargo bench --bench hot`; the plugin call needs
//! `CROSSWALK_BENCH_UOM` (the `uom` component, built by `bench/run`) and is skipped
//! without it.

// criterion_group! makes undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use crosswalk_core::mapping::transform::{Ctx, ResolvePlugin, Transform};
use crosswalk_core::mapping::{MapOptions, TransformStep};
use crosswalk_core::model::Entity;
use crosswalk_core::path::Path;
use crosswalk_plugin_host::{
    HostConfig, Instance as _, Limits, Plugin, PluginError, PluginHost, Session,
};
use serde_json::{Value, json};

struct NoPlugins;

impl ResolvePlugin for NoPlugins {
    fn resolve(&mut self, name: &str) -> Result<(usize, Arc<dyn Plugin>), PluginError> {
        Err(PluginError::UnknownPlugin {
            plugin: name.to_owned(),
            hint: String::new(),
        })
    }
}

fn order() -> Value {
    let text = include_str!("../../../examples/payloads/sap-s4hana/purchase_order/standard.json");
    serde_json::from_str::<Value>(text).unwrap()["d"].take()
}

fn paths(c: &mut Criterion) {
    let record = order();
    for (name, query) in [
        ("singular", "$.PurchaseOrder"),
        ("nested_index", "$.to_PurchaseOrderItem.results[0].Plant"),
        ("wildcard", "$.to_PurchaseOrderItem.results[*].Material"),
        (
            "filter",
            "$.to_PurchaseOrderItem.results[?@.OrderQuantity == '40.000'].Material",
        ),
        ("descendant", "$..ScheduleLineDeliveryDate"),
    ] {
        let path = Path::parse(query).unwrap();
        c.bench_function(&format!("path/{name}"), |b| {
            b.iter(|| black_box(path.select(black_box(&record))))
        });
    }
}

fn transforms(c: &mut Criterion) {
    let record = json!({"qty": "3"});
    let mut session = Session::new(&[]);
    for (name, step, input) in [
        ("to_string", json!("to_string"), json!(42)),
        ("to_number", json!("to_number"), json!("1234.500")),
        ("to_integer", json!("to_integer"), json!("00010")),
        ("to_bool", json!("to_bool"), json!("X")),
        ("trim", json!("trim"), json!("  RM-BRG-6205  ")),
        ("upper", json!("upper"), json!("rm-brg-6205")),
        ("lower", json!("lower"), json!("RM-BRG-6205")),
        ("date", json!("date"), json!("/Date(1710201600000)/")),
        (
            "datetime",
            json!("datetime"),
            json!("2024-03-19T08:00:00-04:00"),
        ),
        (
            "lookup",
            json!({"lookup": {"map": {"01": "draft", "02": "approved", "05": "approved"}, "default": "unknown"}}),
            json!("05"),
        ),
        (
            "template",
            json!({"template": "PO {value}"}),
            json!("4500000123"),
        ),
        (
            "concat",
            json!({"concat": {"separator": " "}}),
            json!(["Ball", "bearing"]),
        ),
        ("split", json!({"split": ","}), json!("a,b,c")),
        ("round", json!({"round": 2}), json!(12.3456)),
        (
            "multiply",
            json!({"multiply": {"by_path": "$.qty"}}),
            json!(2.5),
        ),
        ("divide", json!({"divide": {"by": 100}}), json!(250)),
        ("default", json!({"default": 0}), json!(null)),
        ("null_if_empty", json!("null_if_empty"), json!("")),
    ] {
        let Ok(transform) = Transform::compile(&TransformStep(step.clone()), &mut NoPlugins) else {
            panic!("{name}: {step} does not compile");
        };
        let mut ctx = Ctx {
            record: &record,
            session: &mut session,
        };
        transform
            .apply(input.clone(), &mut ctx)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        c.bench_function(&format!("transform/{name}"), |b| {
            b.iter(|| black_box(transform.apply(black_box(input.clone()), &mut ctx)))
        });
    }
}

fn plugin_call(c: &mut Criterion) {
    let Ok(path) = std::env::var("CROSSWALK_BENCH_UOM") else {
        eprintln!("plugin/uom.convert skipped: CROSSWALK_BENCH_UOM is not set (bench/run sets it)");
        return;
    };
    let host = PluginHost::new(HostConfig::default()).unwrap();
    let plugin = host.load(&std::fs::read(path).unwrap()).unwrap();
    let mut instance = plugin.instance(Limits::DEFAULT);
    let args = r#"{"from":"sap","to":"iso"}"#;
    let value = json!("PC");
    c.bench_function("plugin/uom.convert", |b| {
        b.iter(|| {
            black_box(
                instance
                    .call_field("convert", black_box(&value), args)
                    .unwrap(),
            )
        })
    });
}

/// The same function in each language (`unprefix` of the project `crosswalk plugin
/// new` writes, which prints nothing): a call on a warm instance, and a fresh instance
/// (created and started, then dropped). `CROSSWALK_BENCH_PLUGINS` lists the components,
/// `rust=FILE,js=FILE,python=FILE` (bench/run builds them).
fn plugin_languages(c: &mut Criterion) {
    let Ok(list) = std::env::var("CROSSWALK_BENCH_PLUGINS") else {
        eprintln!(
            "plugin/<lang>/* skipped: CROSSWALK_BENCH_PLUGINS is not set (bench/run sets it)"
        );
        return;
    };
    let host = PluginHost::new(HostConfig::default()).unwrap();
    for entry in list.split(',') {
        let (lang, path) = entry.split_once('=').expect("lang=FILE");
        let plugin = host.load(&std::fs::read(path).unwrap()).unwrap();
        let args = r#"{"prefix":"PO-"}"#;
        let value = json!("PO-Acme");
        let mut instance = plugin.instance(Limits::DEFAULT);
        assert_eq!(
            instance.call_field("unprefix", &value, args).unwrap(),
            json!("Acme")
        );
        // A fresh instance every 10,000 calls, out of the timing: a request's instance
        // makes a batch's calls, not millions (the JavaScript runtime's memory grows by
        // some hundred bytes a call until its instance is dropped).
        c.bench_function(&format!("plugin/{lang}/field"), |b| {
            b.iter_custom(|iters| {
                let mut took = std::time::Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let n = left.min(10_000);
                    instance = plugin.instance(Limits::DEFAULT);
                    instance.start().unwrap();
                    let started = std::time::Instant::now();
                    for _ in 0..n {
                        black_box(
                            instance
                                .call_field("unprefix", black_box(&value), args)
                                .unwrap(),
                        );
                    }
                    took += started.elapsed();
                    left -= n;
                }
                took
            })
        });
        c.bench_function(&format!("plugin/{lang}/instance"), |b| {
            b.iter(|| {
                let mut fresh = plugin.instance(Limits::DEFAULT);
                fresh.start().unwrap();
                black_box(fresh)
            })
        });
    }
}

fn records(c: &mut Criterion) {
    let plan = crosswalk_systems::plan("sap-s4hana", Entity::PurchaseOrder, None).unwrap();
    let record = order();
    c.bench_function("map_record/sap_purchase_order", |b| {
        b.iter(|| black_box(plan.map_record(black_box(&record), MapOptions::default())))
    });
    // What a single-record transform does with its body: the text (pretty-printed,
    // as the HTTP benchmark sends it) read by the plan's reader, mapped, written.
    let text = serde_json::to_vec_pretty(&record).unwrap();
    c.bench_function("transform/sap_purchase_order_text", |b| {
        b.iter(|| {
            let options = MapOptions::default();
            let source = plan.parse_source(black_box(&text), options).unwrap();
            black_box(plan.map_batch_to_json(std::slice::from_ref(&source), options))
        })
    });
    c.bench_function("parse/sap_purchase_order_text_whole", |b| {
        b.iter(|| black_box(serde_json::from_slice::<serde_json::Value>(black_box(&text)).unwrap()))
    });
}

criterion_group!(
    hot,
    paths,
    transforms,
    plugin_call,
    plugin_languages,
    records
);
criterion_main!(hot);
