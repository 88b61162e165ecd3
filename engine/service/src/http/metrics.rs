//! The service's metrics, rendered at `/metrics` in Prometheus' text format (0.0.4).
//!
//! A small registry of our own: a handful of counter and histogram families whose
//! series are keyed by their label values and kept sorted, so that the output is
//! stable. Requests are counted by the middleware in `http::observe`; mapped records and
//! plugin calls by the handlers that map, with the connection's id as a label.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use crosswalk_core::mapping::Batch;
use crosswalk_core::model::Entity;
use crosswalk_plugin_host::CallOutcome;

/// The upper bounds of the latency histogram's buckets, in seconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Counters and histograms of one service.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Families>,
}

#[derive(Debug, Default)]
struct Families {
    /// By method, route template and status.
    requests: BTreeMap<(String, String, u16), Histogram>,
    /// By connection, entity and `ok` | `failed`.
    records: BTreeMap<(String, Entity, &'static str), u64>,
    /// By plugin, connection and outcome.
    plugin_calls: BTreeMap<(String, String, CallOutcome), u64>,
    /// Published mapping changes (put, patch, bind, rollback), by connection and entity.
    changes: BTreeMap<(String, Entity), u64>,
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Observations at or below each bound of [`LATENCY_BUCKETS`] (not cumulative).
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| seconds <= *b) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Metrics {
        Metrics::default()
    }

    fn families(&self) -> std::sync::MutexGuard<'_, Families> {
        // A panic while holding the lock leaves counts that are still counts.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One answered request: `route` is the matched route template, such as
    /// `/v1/connections/{id}`, so that ids do not become series.
    pub fn request(&self, method: &str, route: &str, status: u16, took: Duration) {
        self.families()
            .requests
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default()
            .observe(took.as_secs_f64());
    }

    /// A mapped batch of a connection: its records and its plugin calls.
    pub fn batch(&self, connection: &str, entity: Entity, batch: &Batch) {
        let failed = batch.records.iter().filter(|r| r.is_err()).count() as u64;
        let ok = batch.records.len() as u64 - failed;
        self.records(connection, entity, ok, failed);
        let mut f = self.families();
        for (plugin, counts) in &batch.plugin_calls {
            for (outcome, n) in counts.iter() {
                *f.plugin_calls
                    .entry((plugin.clone(), connection.to_owned(), outcome))
                    .or_default() += n;
            }
        }
    }

    /// Records mapped by a transform or a read (sandbox or live): `ok` mapped,
    /// `failed` not.
    pub fn records(&self, connection: &str, entity: Entity, ok: u64, failed: u64) {
        let mut f = self.families();
        for (outcome, n) in [("ok", ok), ("failed", failed)] {
            if n > 0 {
                *f.records
                    .entry((connection.to_owned(), entity, outcome))
                    .or_default() += n;
            }
        }
    }

    /// A published mapping change.
    pub fn change(&self, connection: &str, entity: Entity) {
        *self
            .families()
            .changes
            .entry((connection.to_owned(), entity))
            .or_default() += 1;
    }

    /// Everything, in Prometheus' text format, with the plugin host's compilation
    /// count (`compilations`) as a counter of its own.
    pub fn render(&self, compilations: u64) -> String {
        let f = self.families();
        let mut out = String::new();
        family(
            &mut out,
            "crosswalk_http_requests_total",
            "counter",
            "HTTP requests answered, by method, route and status.",
        );
        let requests: Vec<(String, &Histogram)> = f
            .requests
            .iter()
            .map(|((method, route, status), h)| {
                let status = status.to_string();
                let labels = labels(&[("method", method), ("route", route), ("status", &status)]);
                (labels, h)
            })
            .collect();
        for (labels, h) in &requests {
            let _ = writeln!(out, "crosswalk_http_requests_total{{{labels}}} {}", h.count);
        }
        family(
            &mut out,
            "crosswalk_http_request_duration_seconds",
            "histogram",
            "Time from a request's arrival to its response's headers, by method, route and status.",
        );
        for (labels, h) in &requests {
            let mut cumulative = 0;
            for (bound, n) in LATENCY_BUCKETS.iter().zip(h.buckets) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "crosswalk_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "crosswalk_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "crosswalk_http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "crosswalk_http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        family(
            &mut out,
            "crosswalk_records_mapped_total",
            "counter",
            "Source records mapped, by connection, entity and outcome (ok or failed).",
        );
        for ((connection, entity, outcome), n) in &f.records {
            let labels = labels(&[
                ("connection", connection),
                ("entity", entity.as_str()),
                ("outcome", outcome),
            ]);
            let _ = writeln!(out, "crosswalk_records_mapped_total{{{labels}}} {n}");
        }
        family(
            &mut out,
            "crosswalk_plugin_calls_total",
            "counter",
            "Plugin calls, by plugin, connection and outcome (ok, timeout, memory, stack, trap, error).",
        );
        for ((plugin, connection, outcome), n) in &f.plugin_calls {
            let labels = labels(&[
                ("plugin", plugin),
                ("connection", connection),
                ("outcome", outcome.as_str()),
            ]);
            let _ = writeln!(out, "crosswalk_plugin_calls_total{{{labels}}} {n}");
        }
        family(
            &mut out,
            "crosswalk_mapping_changes_total",
            "counter",
            "Mapping changes published, by connection and entity.",
        );
        for ((connection, entity), n) in &f.changes {
            let labels = labels(&[("connection", connection), ("entity", entity.as_str())]);
            let _ = writeln!(out, "crosswalk_mapping_changes_total{{{labels}}} {n}");
        }
        family(
            &mut out,
            "crosswalk_plugin_compilations_total",
            "counter",
            "Plugin components compiled since the start, not loaded from the compiled-artifact cache.",
        );
        let _ = writeln!(out, "crosswalk_plugin_compilations_total {compilations}");
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// `k="v",…` with the values escaped as the text format asks.
fn labels(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{k}=\"");
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crosswalk_core::mapping::RecordError;
    use crosswalk_plugin_host::{CallCounts, PluginError};
    use serde_json::json;

    #[test]
    fn histogram_buckets_are_cumulative_and_end_at_the_count() {
        let m = Metrics::new();
        let r = "/v1/connections/{id}";
        m.request("GET", r, 200, Duration::from_micros(300));
        m.request("GET", r, 200, Duration::from_millis(3));
        m.request("GET", r, 200, Duration::from_secs(30));
        let text = m.render(0);
        let l = r#"method="GET",route="/v1/connections/{id}",status="200""#;
        for line in [
            format!("crosswalk_http_requests_total{{{l}}} 3"),
            format!("crosswalk_http_request_duration_seconds_bucket{{{l},le=\"0.0005\"}} 1"),
            format!("crosswalk_http_request_duration_seconds_bucket{{{l},le=\"0.0025\"}} 1"),
            format!("crosswalk_http_request_duration_seconds_bucket{{{l},le=\"0.005\"}} 2"),
            format!("crosswalk_http_request_duration_seconds_bucket{{{l},le=\"10\"}} 2"),
            format!("crosswalk_http_request_duration_seconds_bucket{{{l},le=\"+Inf\"}} 3"),
            format!("crosswalk_http_request_duration_seconds_count{{{l}}} 3"),
        ] {
            assert!(text.lines().any(|x| x == line), "no `{line}` in\n{text}");
        }
    }

    #[test]
    fn batches_count_records_and_plugin_outcomes_by_connection() {
        let m = Metrics::new();
        let mut calls = CallCounts::default();
        calls.count(None);
        calls.count(Some(&PluginError::Trap {
            plugin: "uom".into(),
            function: "convert".into(),
            message: "unreachable".into(),
        }));
        let batch = Batch {
            records: vec![
                Ok(json!({})),
                Ok(json!({})),
                Err(RecordError::NotAnObject { found: "a string" }),
            ],
            field_errors: vec![Vec::new(); 3],
            log: vec![],
            plugin_calls: vec![("uom".into(), calls)],
        };
        m.batch("c\"1", Entity::PurchaseOrder, &batch);
        let text = m.render(7);
        for line in [
            r#"crosswalk_records_mapped_total{connection="c\"1",entity="purchase_order",outcome="ok"} 2"#,
            r#"crosswalk_records_mapped_total{connection="c\"1",entity="purchase_order",outcome="failed"} 1"#,
            r#"crosswalk_plugin_calls_total{plugin="uom",connection="c\"1",outcome="ok"} 1"#,
            r#"crosswalk_plugin_calls_total{plugin="uom",connection="c\"1",outcome="trap"} 1"#,
            "crosswalk_plugin_compilations_total 7",
        ] {
            assert!(text.lines().any(|x| x == line), "no `{line}` in\n{text}");
        }
        assert!(!text.contains("outcome=\"timeout\""));
    }
}
