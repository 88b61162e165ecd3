//! The service's metrics, rendered at `/metrics` in Prometheus' text format (0.0.4).
//!
//! The families are `prometheus-client`'s, one series per set of label values, kept in
//! a registry that encodes them: its atomic counters, and [`AtomicHistogram`], a
//! histogram of atomic buckets (the crate's own takes a lock per observation, which
//! every request of a route would go through). Requests are counted
//! by the middleware in `http::observe`; mapped records and plugin calls by the
//! handlers that map, with the connection's id as a label; plugin log lines by the
//! connections' monitor, read when rendered.
//!
//! Label values are `&'static str` where we name them (entities, outcomes) and shared
//! `Arc<str>` where they come from elsewhere (connection ids, plugin names, methods,
//! routes), each made once ([`Metrics::shared`]), so that counting a request or a batch
//! allocates nothing once its series exist. The crate escapes them.
//!
//! The crate writes OpenMetrics, while `/metrics` has always answered Prometheus' text
//! format: [`prometheus_text`] turns the one into the other (a counter's `HELP` and
//! `TYPE` name its `_total` samples; a bucket's `le` comes last and is written as
//! before: `le="10"`, not `le="10.0"`), so that what a scraper sees is what it saw.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use crate::connection::PluginLogTotals;
use crosswalk_core::mapping::Batch;
use crosswalk_core::model::Entity;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode_registry;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

/// The upper bounds of the latency histogram's buckets, in seconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Counters and histograms of one service.
#[derive(Debug)]
pub struct Metrics {
    /// The families below, registered under their names, in the order they are shown.
    registry: Registry,
    /// `crosswalk_http_requests_total`.
    requests: Family<RequestLabels, Counter>,
    /// `crosswalk_http_request_duration_seconds`.
    durations: Family<RequestLabels, AtomicHistogram, fn() -> AtomicHistogram>,
    /// `crosswalk_records_mapped_total`.
    records: Family<RecordLabels, Counter>,
    /// `crosswalk_plugin_calls_total`.
    plugin_calls: Family<PluginCallLabels, Counter>,
    /// `crosswalk_mapping_changes_total`.
    changes: Family<ChangeLabels, Counter>,
    /// Every label value of [`Metrics::shared`] so far, so that it is allocated once,
    /// not per request: there are no more of them than there are series.
    shared: RwLock<HashSet<Arc<str>>>,
}

/// By method, route template and status.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    method: Arc<str>,
    route: Arc<str>,
    status: u16,
}

/// By connection, entity and `ok` | `failed`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RecordLabels {
    connection: Arc<str>,
    entity: &'static str,
    outcome: &'static str,
}

/// By plugin, connection and outcome.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PluginCallLabels {
    plugin: Arc<str>,
    connection: Arc<str>,
    outcome: &'static str,
}

/// By log level.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LevelLabels {
    level: &'static str,
}

/// Published mapping changes (put, patch, bind, rollback), by connection and entity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ChangeLabels {
    connection: Arc<str>,
    entity: &'static str,
}

fn latency_histogram() -> AtomicHistogram {
    AtomicHistogram::new(&LATENCY_BUCKETS)
}

/// A histogram whose observations are atomic additions: no lock, so that the requests
/// of one route, on every worker, do not queue to be counted.
#[derive(Debug)]
pub struct AtomicHistogram {
    /// Each bucket's upper bound and the observations over the bound before it and
    /// at or under its own (summed when encoded), the last one `+Inf`.
    buckets: Box<[(f64, AtomicU64)]>,
    count: AtomicU64,
    /// The sum of the observations, as `f64` bits.
    sum: AtomicU64,
}

impl AtomicHistogram {
    /// Buckets with these upper bounds, in increasing order, and `+Inf`.
    pub fn new(bounds: &[f64]) -> AtomicHistogram {
        let buckets = bounds
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .map(|b| (b, AtomicU64::new(0)))
            .collect();
        AtomicHistogram {
            buckets,
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }

    /// Counts one observation.
    pub fn observe(&self, v: f64) {
        if let Some((_, n)) = self.buckets.iter().find(|(bound, _)| v <= *bound) {
            n.fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        // Relaxed: a scrape may see the count and the sum of slightly different
        // moments, as with any histogram read while it is written.
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + v).to_bits())
            });
    }
}

impl TypedMetric for AtomicHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        // Each bucket's own count: the encoder sums them into `le` counts.
        let buckets: Vec<(f64, u64)> = self
            .buckets
            .iter()
            .map(|(bound, n)| (*bound, n.load(Ordering::Relaxed)))
            .collect();
        encoder.encode_histogram::<NoLabelSet>(
            f64::from_bits(self.sum.load(Ordering::Relaxed)),
            self.count.load(Ordering::Relaxed),
            &buckets,
            None,
        )
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// Empty families, registered.
    pub fn new() -> Metrics {
        let requests = Family::default();
        let durations = Family::new_with_constructor(latency_histogram as fn() -> AtomicHistogram);
        let records = Family::default();
        let plugin_calls = Family::default();
        let changes = Family::default();
        let mut registry = Registry::default();
        // Counters are registered without `_total`, which the encoder adds to their
        // samples, and help texts without their full stop, which it adds too.
        registry.register(
            "crosswalk_http_requests",
            "HTTP requests answered, by method, route and status",
            requests.clone(),
        );
        registry.register(
            "crosswalk_http_request_duration_seconds",
            "Time from a request's arrival to its response's headers, by method, route and status",
            durations.clone(),
        );
        registry.register(
            "crosswalk_records_mapped",
            "Source records mapped, by connection, entity and outcome (ok or failed)",
            records.clone(),
        );
        registry.register(
            "crosswalk_plugin_calls",
            "Plugin calls, by plugin, connection and outcome (ok, timeout, memory, stack, trap, error)",
            plugin_calls.clone(),
        );
        registry.register(
            "crosswalk_mapping_changes",
            "Mapping changes published, by connection and entity",
            changes.clone(),
        );
        Metrics {
            registry,
            requests,
            durations,
            records,
            plugin_calls,
            changes,
            shared: RwLock::default(),
        }
    }

    /// `text` as a label value: the one made before, or a new one.
    fn shared(&self, text: &str) -> Arc<str> {
        // A panic while holding the lock leaves a set that is still a set.
        if let Some(shared) = self
            .shared
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(text)
        {
            return Arc::clone(shared);
        }
        let mut all = self.shared.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(shared) = all.get(text) {
            return Arc::clone(shared);
        }
        let shared: Arc<str> = text.into();
        all.insert(Arc::clone(&shared));
        shared
    }

    /// One answered request: `route` is the matched route template, such as
    /// `/v1/connections/{id}`, so that ids do not become series.
    pub fn request(&self, method: &str, route: &str, status: u16, took: Duration) {
        let labels = RequestLabels {
            method: self.shared(method),
            route: self.shared(route),
            status,
        };
        self.requests.get_or_create(&labels).inc();
        self.durations
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// A mapped batch of a connection: its records and its plugin calls.
    pub fn batch<R>(&self, connection: &str, entity: Entity, batch: &Batch<R>) {
        let failed = batch.records.iter().filter(|r| r.is_err()).count() as u64;
        let ok = batch.records.len() as u64 - failed;
        self.records(connection, entity, ok, failed);
        if batch.plugin_calls.is_empty() {
            return;
        }
        let connection = self.shared(connection);
        for (plugin, counts) in &batch.plugin_calls {
            let plugin = self.shared(plugin);
            for (outcome, n) in counts.iter() {
                let labels = PluginCallLabels {
                    plugin: plugin.clone(),
                    connection: connection.clone(),
                    outcome: outcome.as_str(),
                };
                self.plugin_calls.get_or_create(&labels).inc_by(n);
            }
        }
    }

    /// Records mapped by a transform or a read (sandbox or live): `ok` mapped,
    /// `failed` not.
    pub fn records(&self, connection: &str, entity: Entity, ok: u64, failed: u64) {
        if ok == 0 && failed == 0 {
            return;
        }
        let connection = self.shared(connection);
        for (outcome, n) in [("ok", ok), ("failed", failed)] {
            if n > 0 {
                let labels = RecordLabels {
                    connection: connection.clone(),
                    entity: entity.as_str(),
                    outcome,
                };
                self.records.get_or_create(&labels).inc_by(n);
            }
        }
    }

    /// A published mapping change.
    pub fn change(&self, connection: &str, entity: Entity) {
        let labels = ChangeLabels {
            connection: self.shared(connection),
            entity: entity.as_str(),
        };
        self.changes.get_or_create(&labels).inc();
    }

    /// Everything, in Prometheus' text format, with the plugin host's compilation
    /// count (`compilations`) and the plugin log's lines (`plugin_log`) as counters of
    /// their own, read when rendered.
    pub fn render(&self, compilations: u64, plugin_log: &PluginLogTotals) -> String {
        let mut host = Registry::default();
        host.register(
            "crosswalk_plugin_compilations",
            "Plugin components compiled since the start, not loaded from the compiled-artifact cache",
            ConstCounter::new(compilations),
        );
        let lines = Family::<LevelLabels, Counter>::default();
        for (level, n) in plugin_log.by_level {
            lines
                .get_or_create(&LevelLabels {
                    level: level.as_str(),
                })
                .inc_by(n);
        }
        host.register(
            "crosswalk_plugin_log_lines",
            "Plugin log lines kept for the connections' plugin logs, by level",
            lines,
        );
        host.register(
            "crosswalk_plugin_log_lines_dropped",
            "Plugin log lines dropped because the store could not keep up",
            ConstCounter::new(plugin_log.dropped),
        );
        let mut openmetrics = String::new();
        // No `# EOF`: that is OpenMetrics' alone.
        encode_registry(&mut openmetrics, &self.registry)
            .and_then(|()| encode_registry(&mut openmetrics, &host))
            .expect("the label values here encode into a String");
        prometheus_text(&openmetrics)
    }
}

/// `openmetrics`, the crate's OpenMetrics text without its `# EOF`, as Prometheus' text
/// format 0.0.4 writes it: a counter's `HELP` and `TYPE` lines name its samples
/// (`x_total`) rather than its family (`x`), and a bucket's `le`, which the crate writes
/// first and in OpenMetrics' form (`10.0`), comes last and as a number is written
/// (`10`). Every other line is the same in both.
fn prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len() + 256);
    let mut lines = openmetrics.lines();
    while let Some(line) = lines.next() {
        if let Some(help) = line.strip_prefix("# HELP ") {
            // The crate writes a family's `TYPE` right after its `HELP`.
            let (name, text) = help.split_once(' ').unwrap_or((help, ""));
            let kind = lines
                .next()
                .and_then(|l| l.strip_prefix("# TYPE "))
                .and_then(|t| t.strip_prefix(name)?.strip_prefix(' '))
                .unwrap_or("unknown");
            let suffix = if kind == "counter" { "_total" } else { "" };
            let _ = writeln!(out, "# HELP {name}{suffix} {text}");
            let _ = writeln!(out, "# TYPE {name}{suffix} {kind}");
        } else if let Some((name, rest)) = line.split_once("_bucket{le=\"")
            && let Some((bound, rest)) = rest.split_once('"')
        {
            // `rest` is `,labels} value` or `} value`: label values hold no bare `"`, but
            // may hold `}` (`/v1/connections/{id}`).
            let bound = match bound.parse::<f64>() {
                Ok(b) if b.is_finite() => b.to_string(),
                _ => bound.to_owned(),
            };
            let (labels, value) = rest.rsplit_once('}').unwrap_or((rest, ""));
            let labels = labels.strip_prefix(',').unwrap_or(labels);
            let comma = if labels.is_empty() { "" } else { "," };
            let _ = writeln!(out, "{name}_bucket{{{labels}{comma}le=\"{bound}\"}}{value}");
        } else {
            out.push_str(line);
            out.push('\n');
        }
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
        let text = m.render(0, &PluginLogTotals::default());
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

    /// Observations from many threads at once are all counted, in their buckets and
    /// in the sum.
    #[test]
    fn the_histogram_counts_every_observation_without_a_lock() {
        let h = Arc::new(AtomicHistogram::new(&[1.0, 2.0]));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let h = Arc::clone(&h);
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        h.observe(if i % 2 == 0 { 0.5 } else { 1.5 });
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let counts: Vec<u64> = h
            .buckets
            .iter()
            .map(|(_, n)| n.load(Ordering::Relaxed))
            .collect();
        assert_eq!(counts, [2000, 2000, 0]);
        assert_eq!(h.count.load(Ordering::Relaxed), 4000);
        assert_eq!(f64::from_bits(h.sum.load(Ordering::Relaxed)), 4000.0);
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
        let mut lines = PluginLogTotals::default();
        lines.by_level[1].1 = 5;
        lines.dropped = 2;
        let text = m.render(7, &lines);
        for line in [
            r#"crosswalk_records_mapped_total{connection="c\"1",entity="purchase_order",outcome="ok"} 2"#,
            r#"crosswalk_records_mapped_total{connection="c\"1",entity="purchase_order",outcome="failed"} 1"#,
            r#"crosswalk_plugin_calls_total{plugin="uom",connection="c\"1",outcome="ok"} 1"#,
            r#"crosswalk_plugin_calls_total{plugin="uom",connection="c\"1",outcome="trap"} 1"#,
            "crosswalk_plugin_compilations_total 7",
            r#"crosswalk_plugin_log_lines_total{level="info"} 5"#,
            r#"crosswalk_plugin_log_lines_total{level="error"} 0"#,
            "crosswalk_plugin_log_lines_dropped_total 2",
        ] {
            assert!(text.lines().any(|x| x == line), "no `{line}` in\n{text}");
        }
        assert!(!text.contains("outcome=\"timeout\""));
    }

    /// Every family, rendered: its `HELP` and `TYPE` under the name its samples have,
    /// its labels in their order, a bucket per bound and `+Inf`, and nothing of
    /// OpenMetrics' own.
    #[test]
    fn families_render_in_prometheus_text_format_with_their_names_labels_and_buckets() {
        let m = Metrics::new();
        m.request("POST", "/v1/plugins", 201, Duration::from_millis(250));
        m.request("POST", "/v1/plugins", 201, Duration::from_millis(500));
        m.request("GET", "unmatched", 404, Duration::from_micros(10));
        m.records("con_1", Entity::Vendor, 3, 0);
        m.records("con_1", Entity::Vendor, 0, 0);
        m.change("con_1", Entity::Vendor);
        m.change("con_1", Entity::Vendor);
        let text = m.render(0, &PluginLogTotals::default());

        for (name, kind) in [
            ("crosswalk_http_requests_total", "counter"),
            ("crosswalk_http_request_duration_seconds", "histogram"),
            ("crosswalk_records_mapped_total", "counter"),
            ("crosswalk_mapping_changes_total", "counter"),
            ("crosswalk_plugin_compilations_total", "counter"),
            ("crosswalk_plugin_log_lines_total", "counter"),
            ("crosswalk_plugin_log_lines_dropped_total", "counter"),
        ] {
            let help = format!("# HELP {name} ");
            let type_line = format!("# TYPE {name} {kind}");
            let at = text.lines().position(|l| l.starts_with(&help));
            assert!(at.is_some(), "no `{help}` in\n{text}");
            assert_eq!(text.lines().nth(at.unwrap() + 1), Some(&*type_line));
        }
        let mut helps = text.lines().filter(|l| l.starts_with("# HELP "));
        assert!(
            helps.all(|l| l.ends_with('.') && !l.ends_with("..")),
            "{text}"
        );
        // No plugin was called: a family without series is not shown.
        assert!(!text.contains("crosswalk_plugin_calls"), "{text}");
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );

        let l = r#"method="POST",route="/v1/plugins",status="201""#;
        let buckets: Vec<&str> = text
            .lines()
            .filter(|x| {
                x.starts_with(&format!(
                    "crosswalk_http_request_duration_seconds_bucket{{{l},"
                ))
            })
            .collect();
        assert_eq!(buckets.len(), LATENCY_BUCKETS.len() + 1, "{text}");
        for (bound, count) in [("0.1", 0), ("0.25", 1), ("0.5", 2), ("10", 2), ("+Inf", 2)] {
            let line = format!(
                "crosswalk_http_request_duration_seconds_bucket{{{l},le=\"{bound}\"}} {count}"
            );
            assert!(buckets.contains(&&*line), "no `{line}` in\n{text}");
        }
        for line in [
            format!("crosswalk_http_requests_total{{{l}}} 2"),
            format!("crosswalk_http_request_duration_seconds_count{{{l}}} 2"),
            format!("crosswalk_http_request_duration_seconds_sum{{{l}}} 0.75"),
            r#"crosswalk_http_requests_total{method="GET",route="unmatched",status="404"} 1"#
                .to_owned(),
            r#"crosswalk_records_mapped_total{connection="con_1",entity="vendor",outcome="ok"} 3"#
                .to_owned(),
            r#"crosswalk_mapping_changes_total{connection="con_1",entity="vendor"} 2"#.to_owned(),
            "crosswalk_plugin_compilations_total 0".to_owned(),
        ] {
            assert!(text.lines().any(|x| x == line), "no `{line}` in\n{text}");
        }
        assert!(!text.contains("outcome=\"failed\""), "{text}");
    }

    #[test]
    fn label_values_are_escaped_and_shared() {
        let m = Metrics::new();
        m.change("a\\b\"c\nd", Entity::Vendor);
        let text = m.render(0, &PluginLogTotals::default());
        let line = r#"crosswalk_mapping_changes_total{connection="a\\b\"c\nd",entity="vendor"} 1"#;
        assert!(text.lines().any(|x| x == line), "no `{line}` in\n{text}");
        assert!(Arc::ptr_eq(&m.shared("con_1"), &m.shared("con_1")));
    }

    #[test]
    fn openmetrics_counters_and_buckets_become_prometheus_text() {
        let openmetrics = "# HELP x_seconds Took.\n# TYPE x_seconds histogram\n\
            x_seconds_sum{a=\"1\"} 0.5\nx_seconds_count{a=\"1\"} 1\n\
            x_seconds_bucket{le=\"1.0\",a=\"{id}\"} 1\nx_seconds_bucket{le=\"+Inf\",a=\"1\"} 1\n\
            y_seconds_bucket{le=\"0.0005\"} 0\n\
            # HELP n Things.\n# TYPE n counter\nn_total{b=\"le=\\\"2.0\\\"\"} 3\n";
        assert_eq!(
            prometheus_text(openmetrics),
            "# HELP x_seconds Took.\n# TYPE x_seconds histogram\n\
            x_seconds_sum{a=\"1\"} 0.5\nx_seconds_count{a=\"1\"} 1\n\
            x_seconds_bucket{a=\"{id}\",le=\"1\"} 1\nx_seconds_bucket{a=\"1\",le=\"+Inf\"} 1\n\
            y_seconds_bucket{le=\"0.0005\"} 0\n\
            # HELP n_total Things.\n# TYPE n_total counter\nn_total{b=\"le=\\\"2.0\\\"\"} 3\n"
        );
    }
}
