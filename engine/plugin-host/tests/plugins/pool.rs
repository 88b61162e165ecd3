//! The plugin pool shared between tenants, through the router (`oneshot`): a tenant
//! flooding hostile plugins gets 503 `busy` while another tenant's transforms all run
//! their plugin; bindings that ask for more than a share are refused by name; the
//! per-request budget bounds a batch; and a request whose future is dropped stops its
//! plugin work and gives its share back.

use crate::support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use crosswalk_plugin_host::{HostConfig, PluginHost};
use crosswalk_service::http::{AppState, app};
use crosswalk_service::store::{Role, SledStore, Store};

/// Runs a store call from the fixture's synchronous set-up: on a runtime of its own,
/// in a thread of its own.
fn block_on<F>(call: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| tokio::runtime::Runtime::new().unwrap().block_on(call))
            .join()
            .unwrap()
    })
}
use serde_json::{Value, json};
use tower::ServiceExt;

const MIB: u64 = 1024 * 1024;

struct Fixture {
    app: Router,
    alice: String,
    bob: String,
    admin: String,
    dir: std::path::PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn fixture(name: &str, host: HostConfig) -> Fixture {
    let dir = std::env::temp_dir().join(format!("crosswalk-pool-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir).unwrap());
    let key = |tenant: &str, role| {
        let t = block_on(store.create_tenant(tenant)).unwrap();
        block_on(store.create_key(&t.id, role)).unwrap().1
    };
    let (alice, bob, admin) = (
        key("alice", Role::Tenant),
        key("bob", Role::Tenant),
        key("admin", Role::Admin),
    );
    let host = Arc::new(PluginHost::new(host).unwrap());
    Fixture {
        app: app(AppState::new(store, host, 8 << 20)),
        alice,
        bob,
        admin,
        dir,
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

async fn call(app: &Router, method: &str, uri: &str, key: &str, body: impl Into<Body>) -> Answer {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {key}"))
        .body(body.into())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    Answer {
        status,
        headers,
        body,
    }
}

/// Uploads the Rust plugin `package` as `key`'s tenant: its sha256.
async fn upload(f: &Fixture, key: &str, package: &str) -> String {
    let a = call(
        &f.app,
        "POST",
        "/v1/plugins",
        key,
        support::rust_plugin_bytes(package),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    a.body["plugin"]["sha256"].as_str().unwrap().to_owned()
}

/// A new SAP sandbox connection of `key`'s tenant whose purchase-order mapping binds
/// `bindings` and has `overrides`: its transform URI.
async fn connection(f: &Fixture, key: &str, bindings: Value, overrides: Value) -> String {
    let a = call(
        &f.app,
        "POST",
        "/v1/connections",
        key,
        json!({"system": "sap-s4hana", "name": "test", "mode": "sandbox"}).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let id = a.body["id"].as_str().unwrap().to_owned();
    let mapping = format!("/v1/connections/{id}/mappings/purchase_order");
    let a = call(
        &f.app,
        "PUT",
        &format!("{mapping}/plugins"),
        key,
        bindings.to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = call(&f.app, "PUT", &mapping, key, overrides.to_string()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    format!("/v1/connections/{id}/transform/purchase_order")
}

fn hostile_field(target: &str, function: &str) -> Value {
    json!({"target": target, "path": "$.PurchaseOrder", "transforms": [{"plugin": "hostile", "function": function}]})
}

fn uom_overrides() -> Value {
    json!({"overrides": [{"target": "lines.unit_of_measure", "transforms": ["null_if_empty", {"plugin": "uom", "function": "convert", "args": {"from": "sap", "to": "iso"}}]}]})
}

fn standard_order() -> String {
    std::fs::read_to_string(
        support::root().join("examples/payloads/sap-s4hana/purchase_order/standard.json"),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_flooding_hostile_plugins_is_told_busy_and_another_tenant_is_not_hurt() {
    let f = fixture(
        "flood",
        HostConfig {
            max_instances: 6,
            tenant_instances: Some(2),
            busy_wait: Duration::from_millis(300),
            ..HostConfig::default()
        },
    );
    let hostile = upload(&f, &f.alice, "crosswalk-fixture-hostile").await;
    let flood = connection(
        &f,
        &f.alice,
        json!([{"sha256": hostile, "limits": {"timeout_ms": 1000}}]),
        json!({"overrides": [hostile_field("custom_fields.slept", "sleep")]}),
    )
    .await;
    let uom = upload(&f, &f.bob, "crosswalk-plugin-uom").await;
    let benign = connection(
        &f,
        &f.bob,
        json!([{"sha256": uom, "limits": {"timeout_ms": 1000}}]),
        uom_overrides(),
    )
    .await;
    let order = standard_order();

    // Alice: twice as many sleeping transforms at once as the whole pool has instances.
    let floods: Vec<_> = (0..12)
        .map(|_| {
            let (app, key, uri, body) =
                (f.app.clone(), f.alice.clone(), flood.clone(), order.clone());
            tokio::spawn(async move { call(&app, "POST", &uri, &key, body).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Bob, meanwhile: every transform answers with its plugin applied.
    let bobs: Vec<_> = (0..3)
        .map(|_| {
            let (app, key, uri, body) =
                (f.app.clone(), f.bob.clone(), benign.clone(), order.clone());
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for _ in 0..8 {
                    answers.push(call(&app, "POST", &uri, &key, body.clone()).await);
                }
                answers
            })
        })
        .collect();
    for worker in bobs {
        for a in worker.await.unwrap() {
            assert_eq!(a.status, StatusCode::OK, "{}", a.body);
            assert_eq!(
                a.body["data"]["lines"][0]["unit_of_measure"], "H87",
                "bob's plugin ran: {}",
                a.body
            );
            assert!(a.body["data"].get("errors").is_none(), "{}", a.body);
        }
    }
    let (mut busy, mut ran) = (0, 0);
    for task in floods {
        let a = task.await.unwrap();
        match a.status {
            StatusCode::SERVICE_UNAVAILABLE => {
                busy += 1;
                assert_eq!(a.body["error"]["code"], "busy", "{}", a.body);
                assert_eq!(
                    a.body["error"]["details"]["limit"], "plugin_tenant_instances",
                    "{}",
                    a.body
                );
                assert_eq!(a.body["error"]["details"]["max"], 2);
                assert_eq!(a.headers["retry-after"], "2");
                let message = a.body["error"]["message"].as_str().unwrap();
                assert!(
                    message.contains("this tenant's share of plugin instances"),
                    "{message}"
                );
            }
            StatusCode::OK => {
                ran += 1;
                // Never a silently nulled field: the failure is in the record's errors.
                let errors = a.body["data"]["errors"].to_string();
                assert!(
                    errors.contains("exceeded its time limit of 1000 ms"),
                    "{errors}"
                );
            }
            other => panic!("alice got {other}: {}", a.body),
        }
    }
    assert!(
        busy >= 6,
        "alice's share holds 2 at once: {busy} busy, {ran} ran"
    );
    assert!(ran >= 2, "alice's share was used: {busy} busy, {ran} ran");

    // Bob's connection is healthy: nothing of alice's flood is blamed on his plugin.
    let id = benign.split('/').nth(3).unwrap();
    let a = call(
        &f.app,
        "GET",
        &format!("/v1/connections/{id}/status"),
        &f.bob,
        "",
    )
    .await;
    assert_eq!(a.body["status"], "healthy", "{}", a.body);
}

#[tokio::test]
async fn bindings_that_ask_for_more_than_a_share_are_refused_by_name() {
    let f = fixture(
        "shares",
        HostConfig {
            max_instances: 6,
            tenant_instances: Some(2),
            tenant_memory_bytes: Some(128 * MIB),
            ..HostConfig::default()
        },
    );
    let hostile = upload(&f, &f.alice, "crosswalk-fixture-hostile").await;
    let uom = upload(&f, &f.alice, "crosswalk-plugin-uom").await;
    let a = call(
        &f.app,
        "POST",
        "/v1/connections",
        &f.alice,
        json!({"system": "sap-s4hana", "name": "test", "mode": "sandbox"}).to_string(),
    )
    .await;
    let mapping = format!(
        "/v1/connections/{}/mappings/purchase_order",
        a.body["id"].as_str().unwrap()
    );
    // One binding over the tenant's memory: refused, naming the limit.
    let greedy = json!([{"sha256": hostile, "limits": {"memory_bytes": 256 * MIB}}]);
    let a = call(
        &f.app,
        "PUT",
        &format!("{mapping}/plugins"),
        &f.alice,
        greedy.to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert_eq!(a.body["error"]["code"], "limit_exceeded");
    assert_eq!(
        a.body["error"]["details"],
        json!({"limit": "plugin_tenant_memory_bytes", "max": 128 * MIB, "actual": 256 * MIB})
    );
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("more than a tenant's share (plugin_tenant_memory_bytes is 134217728)"),
        "{}",
        a.body
    );
    // Each fits, but a mapping that calls both needs more than the share.
    let both = json!([
        {"sha256": hostile, "limits": {"memory_bytes": 100 * MIB}},
        {"sha256": uom, "limits": {"memory_bytes": 64 * MIB}},
    ]);
    let a = call(
        &f.app,
        "PUT",
        &format!("{mapping}/plugins"),
        &f.alice,
        both.to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let mut overrides = uom_overrides();
    overrides["overrides"]
        .as_array_mut()
        .unwrap()
        .push(hostile_field("custom_fields.echoed", "echo"));
    let a = call(&f.app, "PUT", &mapping, &f.alice, overrides.to_string()).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert_eq!(
        a.body["error"]["details"],
        json!({"limit": "plugin_tenant_memory_bytes", "max": 128 * MIB, "actual": 164 * MIB})
    );
    let a = call(&f.app, "GET", &mapping, &f.alice, "").await;
    assert_eq!(a.body["version"], 1, "a refused change changes nothing");
}

#[tokio::test]
async fn a_batch_of_slow_records_takes_about_the_budget_not_the_sum_of_timeouts() {
    let f = fixture(
        "budget",
        HostConfig {
            max_instances: 4,
            request_budget: Duration::from_millis(1000),
            ..HostConfig::default()
        },
    );
    let hostile = upload(&f, &f.alice, "crosswalk-fixture-hostile").await;
    let uri = connection(
        &f,
        &f.alice,
        json!([{"sha256": hostile, "limits": {"timeout_ms": 2000}}]),
        json!({"overrides": [hostile_field("custom_fields.slept", "sleep")]}),
    )
    .await;
    let order: Value = serde_json::from_str(&standard_order()).unwrap();
    let ten = Value::Array(vec![order["d"].clone(); 10]);
    let started = Instant::now();
    let a = call(&f.app, "POST", &uri, &f.alice, ten.to_string()).await;
    let took = started.elapsed();
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    // Ten calls of 2 s each would take 20 s; the budget ends them after about 1 s.
    assert!(took < Duration::from_secs(6), "took {took:?}");
    for record in a.body["data"].as_array().unwrap() {
        let message = record["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.contains(
                "the request's plugin time budget of 1000 ms (`plugin_request_budget_ms`) is spent"
            ),
            "{message}"
        );
    }
}

/// The count of `hostile` calls of `connection` that ended as `outcome`, in the metrics.
async fn hostile_calls(f: &Fixture, connection: &str, outcome: &str) -> Option<u64> {
    let a = call(&f.app, "GET", "/metrics", &f.admin, "").await;
    let prefix = format!(
        r#"crosswalk_plugin_calls_total{{plugin="hostile",connection="{connection}",outcome="{outcome}"}} "#
    );
    a.body
        .as_str()
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|n| n.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_request_stops_its_plugin_work_and_gives_its_share_back() {
    let f = fixture(
        "cancel",
        HostConfig {
            max_instances: 4,
            tenant_instances: Some(1),
            busy_wait: Duration::from_secs(3),
            request_budget: Duration::from_secs(60),
            ..HostConfig::default()
        },
    );
    let hostile = upload(&f, &f.alice, "crosswalk-fixture-hostile").await;
    let bindings = json!([{"sha256": hostile, "limits": {"timeout_ms": 3000}}]);
    let slow = connection(
        &f,
        &f.alice,
        bindings.clone(),
        json!({"overrides": [hostile_field("custom_fields.spun", "spin"), hostile_field("custom_fields.slept", "sleep")]}),
    )
    .await;
    let quick = connection(
        &f,
        &f.alice,
        bindings,
        json!({"overrides": [hostile_field("custom_fields.echoed", "echo")]}),
    )
    .await;
    let order: Value = serde_json::from_str(&standard_order()).unwrap();
    let ten = Value::Array(vec![order["d"].clone(); 10]);
    // Twenty calls of up to 3 s each; the client gives up after 300 ms.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(300),
        call(&f.app, "POST", &slow, &f.alice, ten.to_string()),
    )
    .await;
    assert!(gave_up.is_err());
    let dropped_at = Instant::now();
    // The tenant's one instance is free again at once: the next request runs.
    let a = call(&f.app, "POST", &quick, &f.alice, standard_order()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["data"]["custom_fields"]["echoed"], "4500000123");
    assert!(
        dropped_at.elapsed() < Duration::from_secs(2),
        "{:?}",
        dropped_at.elapsed()
    );
    // Every call of the dropped request ended as cancelled: one stopped, the rest not run.
    let id = slow.split('/').nth(3).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let cancelled = loop {
        if let Some(n) = hostile_calls(&f, id, "cancelled").await {
            break n;
        }
        assert!(
            Instant::now() < deadline,
            "the dropped request's plugin work did not stop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(cancelled, 20);
    for outcome in ["ok", "timeout", "budget"] {
        assert_eq!(hostile_calls(&f, id, outcome).await, None, "{outcome}");
    }
    // Not the plugin's failure: the connection stays healthy.
    let a = call(
        &f.app,
        "GET",
        &format!("/v1/connections/{id}/status"),
        &f.alice,
        "",
    )
    .await;
    assert_eq!(a.body["status"], "healthy", "{}", a.body);
}
