//! What plugins cost: the compile time of each component, the time of one field-level
//! call, and the cost of a fresh instance per batch, with and without wasmtime's
//! pooling allocator. Figures are medians of several runs on this machine.
//!
//! Run it with the example plugins built for wasm32-wasip2:
//!
//! ```sh
//! cargo build --profile plugin --target wasm32-wasip2 -p crosswalk-plugin-uom -p crosswalk-plugin-vat-id -p crosswalk-plugin-maximo-specs
//! cargo run --release -p crosswalk --example plugin_costs -- target/wasm32-wasip2/plugin/*.wasm
//! ```

use std::time::{Duration, Instant};

use crosswalk_plugin_host::{
    FunctionKind, HostConfig, Instance as _, Limits, Plugin as _, PluginHost,
};
use serde_json::json;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let files: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(!files.is_empty(), "usage: plugin_costs PLUGIN.wasm...");

    println!("compile time (Cranelift, no cache), median of 3:");
    for file in &files {
        let bytes = std::fs::read(file)?;
        let mut samples = Vec::new();
        for _ in 0..3 {
            let host = PluginHost::new(HostConfig::default())?;
            let started = Instant::now();
            let plugin = host.load(&bytes)?;
            samples.push(started.elapsed());
            anyhow::ensure!(host.compilations() == 1);
            if samples.len() == 3 {
                println!(
                    "  {:<14} {:>9} bytes  {:>10.1?}",
                    plugin.name(),
                    bytes.len(),
                    median(samples.clone())
                );
            }
        }
    }

    // Field-level calls on one instance: the cost of crossing into WebAssembly.
    let host = PluginHost::new(HostConfig::default())?;
    let uom_file = files
        .iter()
        .find(|f| f.contains("uom"))
        .ok_or_else(|| anyhow::anyhow!("give the uom plugin"))?;
    let uom = host.load(&std::fs::read(uom_file)?)?;
    anyhow::ensure!(uom.function("convert", FunctionKind::Field).is_ok());
    let args = r#"{"from":"sap","to":"iso"}"#;
    let value = json!("PC");
    let mut instance = uom.instance(Limits::DEFAULT);
    instance.call_field("convert", &value, args)?;
    const CALLS: u32 = 20_000;
    let mut samples = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        for _ in 0..CALLS {
            std::hint::black_box(instance.call_field("convert", &value, args)?);
        }
        samples.push(started.elapsed() / CALLS);
    }
    println!(
        "field-level call (uom.convert on one instance), median of 5 x {CALLS}: {:?}",
        median(samples)
    );

    // A fresh instance per batch: instantiate, then one call.
    for pooling in [true, false] {
        let host = PluginHost::new(HostConfig {
            pooling,
            ..HostConfig::default()
        })?;
        let uom = host.load(&std::fs::read(uom_file)?)?;
        const BATCHES: u32 = 1_000;
        let mut samples = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            for _ in 0..BATCHES {
                let mut instance = uom.instance(Limits::DEFAULT);
                std::hint::black_box(instance.call_field("convert", &value, args)?);
            }
            samples.push(started.elapsed() / BATCHES);
        }
        let label = if pooling {
            "pooling allocator"
        } else {
            "on-demand allocator"
        };
        println!(
            "fresh instance + one call, {label}, median of 5 x {BATCHES}: {:?}",
            median(samples)
        );
    }
    Ok(())
}
