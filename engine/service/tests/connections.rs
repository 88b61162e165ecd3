//! Connections over real sockets: the service (the router on a TCP listener) reading
//! from a mock source system (`connections/mock.rs`) and delivering webhooks to a
//! local receiver that checks every signature.
//!
//! Covered: sandbox reads, filters, flags and writes; live reads across upstream
//! pages for SAP, Maximo and Dynamics with each kind of credentials; every status;
//! the breaker's cycle; one reauth webhook per incident and reauthorization; the
//! error log; outbox redelivery after the receiver was down and after a restart.

mod mock;
use crate::{block_on, support};

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use crosswalk_core::model::Entity;
use crosswalk_plugin_host::{HostConfig, PluginHost};
use crosswalk_service::connection::secrets::Sealer;
use crosswalk_service::egress::{Policy, parse_range};
use crosswalk_service::http::{AppState, ServiceOptions, app};
use crosswalk_service::store::{Role, SledStore, Store};
use crosswalk_service::webhook::{EVENT_ID_HEADER, SIGNATURE_HEADER};
use mock::Switches;
use serde_json::{Value, json};

const KEY: &str = "5f2a6c1e9b3d4f708192a3b4c5d6e7f80112233445566778899aabbccddeeff0";
const PASSWORD: &str = "s3cret-Passw0rd";

/// The service on a socket, over a sled store in `dir`.
struct Service {
    base: String,
    key: String,
    client: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
    webhooks: tokio::task::JoinHandle<()>,
}

/// What the tests' services may call: the mock upstreams and receivers on 127.0.0.1.
fn loopback_allowed() -> Policy {
    Policy::allowing([parse_range("127.0.0.0/8").unwrap()])
}

impl Service {
    /// The service, allowed to call 127.0.0.0/8 (where the mocks listen).
    async fn start(dir: &Path, key: Option<String>) -> Service {
        Service::start_with(dir, key, loopback_allowed()).await
    }

    /// The service, with outbound calls under `egress`.
    async fn start_with(dir: &Path, key: Option<String>, egress: Policy) -> Service {
        crosswalk_service::connection::upstream::install_tls();
        // The service's log goes to the test's output (shown when a test fails).
        let _ = tracing_subscriber::fmt()
            .with_env_filter("crosswalk=info")
            .with_test_writer()
            .try_init();
        let store = open_store(dir).await;
        let key = match key {
            Some(k) => k,
            None => {
                let t = block_on(store.create_tenant("acme")).unwrap();
                block_on(store.create_key(&t.id, Role::Tenant)).unwrap().1
            }
        };
        let host = Arc::new(
            PluginHost::new(HostConfig {
                max_instances: 4,
                ..HostConfig::default()
            })
            .unwrap(),
        );
        let options = ServiceOptions {
            sealer: Some(Sealer::from_text(KEY).unwrap()),
            webhook_backoff: Duration::from_millis(100),
            egress,
            ..ServiceOptions::default()
        };
        let state = AppState::with_options(store, host, 1 << 20, options);
        let webhooks = state.start_webhooks();
        let router = app(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        Service {
            base,
            key,
            client: reqwest::Client::new(),
            shutdown: Some(tx),
            server,
            webhooks,
        }
    }

    /// Stops the server and the webhook worker, releasing the store.
    async fn stop(mut self) -> String {
        drop(self.client);
        self.webhooks.abort();
        let _ = (&mut self.webhooks).await;
        let _ = self.shutdown.take().unwrap().send(());
        if tokio::time::timeout(Duration::from_secs(5), &mut self.server)
            .await
            .is_err()
        {
            self.server.abort();
            let _ = (&mut self.server).await;
        }
        self.key
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, HeaderMap, Value) {
        let url = format!("{}{path}", self.base);
        let mut request = self
            .client
            .request(method.parse().unwrap(), url)
            .bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, headers, value)
    }

    /// Uploads the Rust plugins `packages` and binds them to the connection's mapping
    /// of `entity`; the mapping's path.
    async fn bind_plugins(&self, id: &str, entity: &str, packages: &[&str]) -> String {
        let mut bindings = Vec::new();
        for package in packages {
            bindings.push(json!({"sha256": self.upload_plugin(package).await}));
        }
        let mapping = format!("/v1/connections/{id}/mappings/{entity}");
        let (status, _, m) = self
            .call("PUT", &format!("{mapping}/plugins"), Some(json!(bindings)))
            .await;
        assert_eq!(status, 200, "{m}");
        mapping
    }

    /// Uploads the Rust plugin `package`, built for wasm32-wasip2; its sha256.
    async fn upload_plugin(&self, package: &str) -> String {
        let upload = self
            .client
            .post(format!("{}/v1/plugins", self.base))
            .bearer_auth(&self.key)
            .header("content-type", "application/wasm")
            .body(support::rust_plugin_bytes(package))
            .send()
            .await
            .unwrap();
        assert_eq!(upload.status(), 201, "{package}");
        upload.json::<Value>().await.unwrap()["plugin"]["sha256"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let (s, _, v) = self.call("GET", path, None).await;
        (s, v)
    }

    async fn live(&self, system: &str, upstream: Value, credentials: Value) -> String {
        let (status, _, c) = self
            .call(
                "POST",
                "/v1/connections",
                Some(json!({"system": system, "name": "live", "mode": "live", "upstream": upstream, "credentials": credentials})),
            )
            .await;
        assert_eq!(status, 201, "{c}");
        c["id"].as_str().unwrap().to_owned()
    }

    async fn status(&self, id: &str) -> Value {
        let (s, v) = self.get(&format!("/v1/connections/{id}/status")).await;
        assert_eq!(s, 200, "{v}");
        v
    }
}

/// Opens the store, waiting for a previous run's handle to let go of it.
async fn open_store(dir: &Path) -> Arc<dyn Store> {
    for _ in 0..100 {
        if let Ok(store) = SledStore::open(dir) {
            return Arc::new(store);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the store at {} stays locked", dir.display());
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("crosswalk-conn-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A webhook receiver: records every delivery, checks its signature, and answers
/// the status it is told to.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(String, String, Value)>>>,
    bad_signatures: Arc<Mutex<u32>>,
    answer: Arc<Mutex<u16>>,
    secret: Arc<Mutex<String>>,
}

impl Receiver {
    async fn start(&self, listener: tokio::net::TcpListener) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        let router = axum::Router::new().route(
            "/hooks",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let me = me.clone();
                async move {
                    let signature = headers
                        .get(SIGNATURE_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_secs();
                    let secret = me.secret.lock().unwrap().clone();
                    if crosswalk_service::webhook::verify(&secret, signature, &body, now, 300)
                        .is_err()
                    {
                        *me.bad_signatures.lock().unwrap() += 1;
                        return axum::http::StatusCode::UNAUTHORIZED;
                    }
                    let status = *me.answer.lock().unwrap();
                    let event: Value = serde_json::from_slice(&body).unwrap();
                    let id = headers[EVENT_ID_HEADER].to_str().unwrap().to_owned();
                    assert_eq!(event["id"], id.as_str(), "the header and the body agree");
                    me.got.lock().unwrap().push((
                        id,
                        event["type"].as_str().unwrap().to_owned(),
                        event,
                    ));
                    axum::http::StatusCode::from_u16(status).unwrap()
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() })
    }

    /// Events of a type that were answered 2xx... or any, when `all`.
    fn of(&self, event_type: &str) -> Vec<Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, t, _)| t == event_type)
            .map(|(_, _, e)| e.clone())
            .collect()
    }
}

async fn receiver() -> (Receiver, String, tokio::task::JoinHandle<()>) {
    let r = Receiver::default();
    *r.answer.lock().unwrap() = 200;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let handle = r.start(listener).await;
    (r, url, handle)
}

async fn subscribe(s: &Service, r: &Receiver, url: &str, events: &[&str]) -> String {
    let (status, _, answer) = s
        .call(
            "POST",
            "/v1/webhooks",
            Some(json!({"url": url, "events": events})),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    *r.secret.lock().unwrap() = answer["secret"].as_str().unwrap().to_owned();
    assert!(
        answer["subscription"].get("secret").is_none(),
        "shown once, apart"
    );
    answer["subscription"]["id"].as_str().unwrap().to_owned()
}

/// Waits until `check` holds, up to 10 s.
async fn eventually(what: &str, check: impl FnMut() -> bool) {
    eventually_within(what, Duration::from_secs(10), check).await
}

/// Waits until `check` holds, up to `limit`.
async fn eventually_within(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what} ({limit:?})");
}

/// Every record of a listing, following cursors; answers the records and the pages.
async fn read_all(s: &Service, first: &str) -> (Vec<Value>, usize) {
    let mut records = Vec::new();
    let mut pages = 0;
    let mut path = first.to_owned();
    loop {
        let (status, page) = s.get(&path).await;
        assert_eq!(status, 200, "{path}: {page}");
        pages += 1;
        records.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                let sep = if first.contains('?') { '&' } else { '?' };
                path = format!(
                    "{}{sep}cursor={cursor}",
                    first.split("&cursor").next().unwrap()
                );
            }
            None => return (records, pages),
        }
        assert!(pages < 50, "the listing does not end");
    }
}

/// A sandbox connection to `system`; its id.
async fn sandbox(s: &Service, system: &str) -> String {
    let (status, _, c) = s
        .call(
            "POST",
            "/v1/connections",
            Some(json!({"system": system, "name": "sb", "mode": "sandbox"})),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    c["id"].as_str().unwrap().to_owned()
}

/// Overrides the connection's purchase orders to carry SAP's cost-centre extension
/// field as `custom_fields.cost_center`.
async fn override_cost_center(s: &Service, id: &str) {
    let (status, _, m) = s
        .call("PUT", &format!("/v1/connections/{id}/mappings/purchase_order"), Some(json!({"overrides": [{"target": "custom_fields.cost_center", "path": "$.ZZ1_CostCenter_PDH"}]})))
        .await;
    assert_eq!(status, 200, "{m}");
}

/// Stops the service and removes its store.
async fn finish(s: Service, dir: &Path) {
    s.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// Pages of 4 across the 15 orders give every one once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_listings_page_through_every_record_once() {
    let dir = temp_dir("sandbox-pages");
    let s = Service::start(&dir, None).await;
    let id = sandbox(&s, "sap-s4hana").await;
    let (orders, pages) = read_all(
        &s,
        &format!("/v1/connections/{id}/purchase-orders?page_size=4"),
    )
    .await;
    assert_eq!((orders.len(), pages), (15, 4));
    let ids: std::collections::BTreeSet<&str> =
        orders.iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 15);
    finish(s, &dir).await;
}

/// The scenarios come alongside the records, error cases with their problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_records_come_with_their_scenarios_and_the_error_cases_with_their_problem() {
    let dir = temp_dir("sandbox-scenarios");
    let s = Service::start(&dir, None).await;
    let id = sandbox(&s, "sap-s4hana").await;
    let (_, page) = s
        .get(&format!("/v1/connections/{id}/purchase-orders"))
        .await;
    let scenarios = page["sandbox"].as_array().unwrap();
    assert_eq!(scenarios.len(), page["data"].as_array().unwrap().len());
    let at = |name: &str| {
        scenarios
            .iter()
            .position(|s| s["scenario"] == name)
            .unwrap()
    };
    let bad_vendor = at("invalid_vendor");
    assert_eq!(scenarios[bad_vendor]["problem"]["code"], "invalid_vendor");
    assert_eq!(scenarios[bad_vendor]["problem"]["field"], "vendor.id");
    assert_eq!(page["data"][bad_vendor]["vendor"]["id"], "99999999");
    assert_eq!(
        scenarios[at("out_of_stock")]["problem"]["code"],
        "out_of_stock"
    );
    assert_eq!(page["data"][at("draft")]["status"], "draft");
    assert!(scenarios[at("standard")].get("problem").is_none());
    finish(s, &dir).await;
}

/// `updated_since` keeps the orders changed at or after the instant, and those without
/// a change time (a sync must not miss them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_updated_since_keeps_the_records_changed_from_that_instant() {
    let dir = temp_dir("sandbox-since");
    let s = Service::start(&dir, None).await;
    let id = sandbox(&s, "sap-s4hana").await;
    let (all_changed, _) = read_all(
        &s,
        &format!("/v1/connections/{id}/purchase-orders?updated_since=2024-03-20T00:00:00Z"),
    )
    .await;
    assert!(
        !all_changed.is_empty() && all_changed.len() < 15,
        "{}",
        all_changed.len()
    );
    assert!(
        all_changed
            .iter()
            .all(|o| o["updated_at"].as_str().is_none_or(|t| t >= "2024-03-20"))
    );
    finish(s, &dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_record_is_read_with_its_source_on_request() {
    let dir = temp_dir("sandbox-one");
    let s = Service::start(&dir, None).await;
    let id = sandbox(&s, "sap-s4hana").await;
    let (status, one) = s
        .get(&format!(
            "/v1/connections/{id}/purchase-orders/4500000201?remote_data=true"
        ))
        .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["data"]["status"], "draft");
    assert_eq!(one["data"]["remote_data"]["PurchaseOrder"], "4500000201");
    assert_eq!(one["sandbox"]["scenario"], "draft");
    finish(s, &dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_sandbox_record_is_not_found_naming_its_id() {
    let dir = temp_dir("sandbox-missing");
    let s = Service::start(&dir, None).await;
    let id = sandbox(&s, "sap-s4hana").await;
    let (status, missing) = s
        .get(&format!("/v1/connections/{id}/purchase-orders/nope"))
        .await;
    assert_eq!(status, 404, "{missing}");
    assert!(
        missing["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`nope`")
    );
    finish(s, &dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrides_apply_to_sandbox_records() {
    let dir = temp_dir("sandbox-overrides");
    let s = Service::start(&dir, None).await;
    let id = sandbox(&s, "sap-s4hana").await;
    override_cost_center(&s, &id).await;
    let (_, custom) = s
        .get(&format!("/v1/connections/{id}/purchase-orders"))
        .await;
    assert!(
        custom["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| !o["custom_fields"]["cost_center"].is_null()),
        "the custom-fields order shows its cost centre"
    );
    finish(s, &dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_writes_answer_success_and_change_nothing() {
    let dir = temp_dir("sandbox-writes");
    let s = Service::start(&dir, None).await;
    let id = sandbox(&s, "sap-s4hana").await;
    let before = s
        .get(&format!("/v1/connections/{id}/purchase-orders"))
        .await
        .1;
    let (status, _, created) = s
        .call(
            "POST",
            &format!("/v1/connections/{id}/purchase-orders"),
            Some(json!({"number": "NEW-1", "currency": "EUR"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["applied"], false);
    assert_eq!(
        created["native_payload"]["PurchaseOrder"], "NEW-1",
        "{created}"
    );
    let (status, _, updated) = s
        .call(
            "PATCH",
            &format!("/v1/connections/{id}/purchase-orders/4500000201"),
            Some(json!({"currency": "JPY"})),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        s.get(&format!("/v1/connections/{id}/purchase-orders"))
            .await
            .1,
        before
    );
    assert_eq!(
        s.get(&format!("/v1/connections/{id}/purchase-orders/4500000201"))
            .await
            .1["data"]["currency"],
        "USD"
    );
    finish(s, &dir).await;
}

/// The write goes back through the connection's overrides: the custom field to its
/// extension field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_write_goes_back_through_the_connections_overrides() {
    let dir = temp_dir("sandbox-write-back");
    let s = Service::start(&dir, None).await;
    let id = sandbox(&s, "sap-s4hana").await;
    override_cost_center(&s, &id).await;
    let (status, _, preview) = s
        .call("POST", &format!("/v1/connections/{id}/purchase-orders/preview-write"), Some(json!({"number": "4500000999", "order_date": "2024-05-02", "custom_fields": {"cost_center": "CC-1000"}, "lines": [{"line_number": 10, "quantity": 4}]})))
        .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(
        preview["native_payload"],
        json!({"PurchaseOrder": "4500000999", "PurchaseOrderDate": "/Date(1714608000000)/", "ZZ1_CostCenter_PDH": "CC-1000", "to_PurchaseOrderItem": {"results": [{"PurchaseOrderItem": "10", "OrderQuantity": "4"}]}})
    );
    finish(s, &dir).await;
}

/// A value of the wrong type is refused by its field, as the document says, and
/// nothing is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_written_value_of_the_wrong_type_is_refused_by_its_field() {
    let dir = temp_dir("sandbox-types");
    let s = Service::start(&dir, None).await;
    let id = sandbox(&s, "sap-s4hana").await;
    for (body, field, says) in [
        (
            json!({"number": {}}),
            "/number",
            "{} is not of types \"null\", \"string\"",
        ),
        (
            json!({"vendor": {"name": 7}}),
            "/vendor/name",
            "7 is not of types",
        ),
        (
            json!({"lines": [{"quantity": "four"}]}),
            "/lines/0/quantity",
            "\"four\" is not of types",
        ),
        (json!({"currency": "euro"}), "/currency", "does not match"),
    ] {
        let (status, _, refused) = s
            .call(
                "POST",
                &format!("/v1/connections/{id}/purchase-orders/preview-write"),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            (
                status,
                refused["error"]["code"].as_str(),
                refused["error"]["details"]["field"].as_str()
            ),
            (422, Some("invalid_record"), Some(field)),
            "{body}: {refused}"
        );
        let message = refused["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
    }
    finish(s, &dir).await;
}

/// A read-only field is refused by name, with the reason, and the mapping lists it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_fields_are_refused_by_name_and_the_mapping_lists_them() {
    let dir = temp_dir("sandbox-read-only");
    let s = Service::start(&dir, None).await;
    let id = sandbox(&s, "sap-s4hana").await;
    let (status, _, refused) = s
        .call(
            "PATCH",
            &format!("/v1/connections/{id}/purchase-orders/4500000201"),
            Some(json!({"status": "approved", "site_id": "1710"})),
        )
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (422, Some("unwritable_fields")),
        "{refused}"
    );
    let fields: Vec<&str> = refused["error"]["details"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["status", "site_id"]);
    let (_, mapping) = s
        .get(&format!("/v1/connections/{id}/mappings/purchase_order"))
        .await;
    assert!(
        mapping["read_only"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["target"] == "status"),
        "{}",
        mapping["read_only"]
    );
    finish(s, &dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misspelt_field_in_a_write_is_refused_with_a_suggestion() {
    let dir = temp_dir("sandbox-misspelt");
    let s = Service::start(&dir, None).await;
    let id = sandbox(&s, "sap-s4hana").await;
    let (status, _, bad) = s
        .call(
            "PATCH",
            &format!("/v1/connections/{id}/purchase-orders/4500000201"),
            Some(json!({"statuss": "approved"})),
        )
        .await;
    assert_eq!(status, 422, "{bad}");
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `status`"),
        "{bad}"
    );
    finish(s, &dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_that_is_not_one_is_a_bad_request() {
    let dir = temp_dir("sandbox-garbage-cursor");
    let s = Service::start(&dir, None).await;
    let id = sandbox(&s, "sap-s4hana").await;
    let (status, bad) = s
        .get(&format!(
            "/v1/connections/{id}/purchase-orders?cursor=garbage"
        ))
        .await;
    assert_eq!(status, 400, "{bad}");
    finish(s, &dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_from_another_entitys_listing_is_refused_naming_that_listing() {
    let dir = temp_dir("sandbox-other-cursor");
    let s = Service::start(&dir, None).await;
    let id = sandbox(&s, "sap-s4hana").await;
    let (_, first) = s
        .get(&format!("/v1/connections/{id}/vendors?page_size=1"))
        .await;
    let vendor_cursor = first["next_cursor"].as_str().unwrap();
    let (status, bad) = s
        .get(&format!(
            "/v1/connections/{id}/purchase-orders?cursor={vendor_cursor}"
        ))
        .await;
    assert_eq!(status, 400);
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap()
            .contains("listing of vendor"),
        "{bad}"
    );
    finish(s, &dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_updated_since_that_is_not_an_instant_is_refused_naming_it() {
    let dir = temp_dir("sandbox-bad-since");
    let s = Service::start(&dir, None).await;
    let id = sandbox(&s, "sap-s4hana").await;
    let (status, bad) = s
        .get(&format!(
            "/v1/connections/{id}/purchase-orders?updated_since=yesterday"
        ))
        .await;
    assert_eq!(status, 400);
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap()
            .contains("updated_since"),
        "{bad}"
    );
    finish(s, &dir).await;
}

/// Dynamics has no work orders: a 404 that says what it has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entity_the_system_does_not_have_is_not_found_naming_those_it_has() {
    let dir = temp_dir("sandbox-no-entity");
    let s = Service::start(&dir, None).await;
    let d = sandbox(&s, "dynamics-365-fo").await;
    let (status, none) = s.get(&format!("/v1/connections/{d}/work-orders")).await;
    assert_eq!(status, 404);
    assert!(
        none["error"]["message"]
            .as_str()
            .unwrap()
            .contains("purchase_order"),
        "{none}"
    );
    finish(s, &dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_entity_of_every_system_has_sandbox_records() {
    let dir = temp_dir("sandbox-every-entity");
    let s = Service::start(&dir, None).await;
    for (system, resources) in [
        (
            "ibm-maximo",
            &[
                "purchase-orders",
                "work-orders",
                "assets",
                "vendors",
                "parts",
            ][..],
        ),
        (
            "dynamics-365-fo",
            &["purchase-orders", "vendors", "parts"][..],
        ),
    ] {
        let id = sandbox(&s, system).await;
        for r in resources {
            let (status, page) = s.get(&format!("/v1/connections/{id}/{r}")).await;
            assert_eq!(status, 200, "{system} {r}: {page}");
            assert!(!page["data"].as_array().unwrap().is_empty(), "{system} {r}");
            assert!(
                page["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|r| r.get("error").is_none()),
                "{system} {r}: {page}"
            );
        }
    }
    finish(s, &dir).await;
}

/// The mock SAP system and a live connection to it with basic credentials and these
/// `upstream` settings: the mock's base URL, the mock, and the connection's id.
async fn live_sap(s: &Service, mut upstream: Value) -> (String, Arc<mock::Mock>, String) {
    let (base, mock) = mock::start(&format!("crosswalk:{PASSWORD}")).await;
    upstream["base_url"] = json!(base);
    let id = s
        .live(
            "sap-s4hana",
            upstream,
            json!({"type": "basic", "username": "crosswalk", "password": PASSWORD}),
        )
        .await;
    (base, mock, id)
}

/// The mock Maximo system and a live connection to it with an API key, reading pages
/// of 6.
async fn live_maximo(s: &Service) -> (Arc<mock::Mock>, String) {
    let (mbase, mmock) = mock::start("maximo-api-key-123").await;
    let mx = s
        .live(
            "ibm-maximo",
            json!({"base_url": mbase, "page_size": 6}),
            json!({"type": "api_key", "header": "apikey", "key": "maximo-api-key-123"}),
        )
        .await;
    (mmock, mx)
}

/// SAP with basic credentials: pages by `$top`/`$skip`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sap_listings_page_by_top_and_skip_with_basic_credentials() {
    let dir = temp_dir("live-sap-pages");
    let s = Service::start(&dir, None).await;
    let (_, mock, sap) = live_sap(&s, json!({"page_size": 4})).await;
    let (orders, pages) = read_all(&s, &format!("/v1/connections/{sap}/purchase-orders")).await;
    assert_eq!(orders.len(), 15);
    assert_eq!(pages, 4, "4 + 4 + 4 + 3");
    assert!(
        mock.queries
            .lock()
            .unwrap()
            .iter()
            .any(|q| q.contains("%24skip=12")),
        "asked with $skip"
    );
    finish(s, &dir).await;
}

/// When SAP drives the paging with `__next`, the listing follows it to the same records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sap_listings_follow_the_servers_next_link_to_the_same_records() {
    let dir = temp_dir("live-sap-next");
    let s = Service::start(&dir, None).await;
    let (_, mock, sap) = live_sap(&s, json!({"page_size": 4})).await;
    let (orders, _) = read_all(&s, &format!("/v1/connections/{sap}/purchase-orders")).await;
    mock.set(Switches {
        sap_server_paging: true,
        ..Switches::default()
    });
    let (again, _) = read_all(&s, &format!("/v1/connections/{sap}/purchase-orders")).await;
    assert_eq!(again, orders, "server-driven paging gives the same records");
    assert!(
        mock.queries
            .lock()
            .unwrap()
            .iter()
            .any(|q| q.contains("skiptoken")),
        "followed __next"
    );
    finish(s, &dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updated_since_goes_to_sap_as_its_own_filter() {
    let dir = temp_dir("live-sap-since");
    let s = Service::start(&dir, None).await;
    let (_, mock, sap) = live_sap(&s, json!({"page_size": 4})).await;
    let (changed, _) = read_all(
        &s,
        &format!("/v1/connections/{sap}/purchase-orders?updated_since=2024-03-20T00:00:00Z"),
    )
    .await;
    assert!(!changed.is_empty() && changed.len() < 15);
    assert!(
        mock.queries
            .lock()
            .unwrap()
            .iter()
            .any(|q| q.contains("LastChangeDateTime+ge+datetimeoffset"))
    );
    finish(s, &dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_record_is_read_mapped_without_sandbox_details() {
    let dir = temp_dir("live-sap-one");
    let s = Service::start(&dir, None).await;
    let (_, _, sap) = live_sap(&s, json!({"page_size": 4})).await;
    let (status, one) = s
        .get(&format!(
            "/v1/connections/{sap}/purchase-orders/4500000202?remote_data=true"
        ))
        .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(
        (one["data"]["id"].as_str(), one["data"]["status"].as_str()),
        (Some("4500000202"), Some("approved"))
    );
    assert!(one.get("sandbox").is_none());
    finish(s, &dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_record_the_system_does_not_have_is_not_found() {
    let dir = temp_dir("live-sap-missing");
    let s = Service::start(&dir, None).await;
    let (_, _, sap) = live_sap(&s, json!({"page_size": 4})).await;
    assert_eq!(
        s.get(&format!("/v1/connections/{sap}/purchase-orders/4599999999"))
            .await
            .0,
        404
    );
    finish(s, &dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_show_in_the_connections_answers() {
    let dir = temp_dir("live-credentials-hidden");
    let s = Service::start(&dir, None).await;
    let (_, _, sap) = live_sap(&s, json!({"page_size": 4})).await;
    let (_, c) = s.get(&format!("/v1/connections/{sap}")).await;
    assert_eq!(c["upstream"]["auth"], "basic");
    assert!(!c.to_string().contains(PASSWORD), "{c}");
    let (_, list) = s.get("/v1/connections").await;
    assert!(!list.to_string().contains(PASSWORD));
    finish(s, &dir).await;
}

/// The password of a connection that was used is nowhere in the store's files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_sealed_at_rest() {
    let dir = temp_dir("live-credentials-sealed");
    let s = Service::start(&dir, None).await;
    let (_, _, sap) = live_sap(&s, json!({"page_size": 4})).await;
    read_all(&s, &format!("/v1/connections/{sap}/purchase-orders")).await;
    s.stop().await;
    let mut found = false;
    for entry in walk(&dir) {
        let bytes = std::fs::read(&entry).unwrap();
        found |= bytes
            .windows(PASSWORD.len())
            .any(|w| w == PASSWORD.as_bytes());
    }
    assert!(!found, "the password is stored in clear");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Maximo with an API key: `oslc.pageSize` and `responseInfo.nextPage`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maximo_listings_page_by_page_number_with_an_api_key() {
    let dir = temp_dir("live-maximo-pages");
    let s = Service::start(&dir, None).await;
    let (mmock, mx) = live_maximo(&s).await;
    let (orders, pages) = read_all(&s, &format!("/v1/connections/{mx}/purchase-orders")).await;
    assert_eq!((orders.len(), pages), (15, 3));
    assert!(
        mmock
            .queries
            .lock()
            .unwrap()
            .iter()
            .any(|q| q.contains("pageno=3"))
    );
    finish(s, &dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_maximo_record_is_read_by_its_number() {
    let dir = temp_dir("live-maximo-one");
    let s = Service::start(&dir, None).await;
    let (_, mx) = live_maximo(&s).await;
    let (status, one) = s
        .get(&format!("/v1/connections/{mx}/purchase-orders/PO-2003"))
        .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["data"]["status"], "closed");
    finish(s, &dir).await;
}

/// Dynamics with OAuth 2.0 client credentials: tokens fetched and refreshed. The mock's
/// tokens live 20 s, inside the client's 30 s margin: each call gets a fresh one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamics_listings_page_with_oauth_tokens_fetched_and_refreshed() {
    let dir = temp_dir("live-dynamics-oauth");
    let s = Service::start(&dir, None).await;
    let (dbase, dmock) = mock::start("client-secret-1").await;
    let d = s
        .live("dynamics-365-fo", json!({"base_url": dbase, "page_size": 5}), json!({"type": "oauth2", "token_url": format!("{dbase}/oauth/token"), "client_id": "crosswalk", "client_secret": "client-secret-1"}))
        .await;
    let (orders, pages) = read_all(&s, &format!("/v1/connections/{d}/purchase-orders")).await;
    assert_eq!((orders.len(), pages), (15, 3));
    assert!(*dmock.token_calls.lock().unwrap() >= 3);
    assert_eq!(s.status(&d).await["status"], "healthy");
    finish(s, &dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bearer_token_reads_a_live_system() {
    let dir = temp_dir("live-bearer");
    let s = Service::start(&dir, None).await;
    let (bbase, _) = mock::start("bearer-token-xyz").await;
    let b = s
        .live(
            "sap-s4hana",
            json!({"base_url": bbase}),
            json!({"type": "bearer", "token": "bearer-token-xyz"}),
        )
        .await;
    assert_eq!(s.get(&format!("/v1/connections/{b}/vendors")).await.0, 200);
    finish(s, &dir).await;
}

/// Posts each new connection and expects a 422 whose message says `says`.
async fn refused_connections(s: &Service, cases: Vec<(Value, &str)>) {
    for (body, says) in cases {
        let (status, _, e) = s.call("POST", "/v1/connections", Some(body)).await;
        assert_eq!(status, 422, "{says}: {e}");
        assert!(
            e["error"]["message"].as_str().unwrap().contains(says),
            "{e}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_connection_with_missing_or_invalid_settings_is_refused_naming_the_problem() {
    let dir = temp_dir("live-settings");
    let s = Service::start(&dir, None).await;
    let (base, _) = mock::start(&format!("crosswalk:{PASSWORD}")).await;
    refused_connections(
        &s,
        vec![
            (
                json!({"system": "sap-s4hana", "name": "x", "mode": "live"}),
                "needs `upstream`",
            ),
            (
                json!({"system": "sap-s4hana", "name": "x", "mode": "live", "upstream": {"base_url": "ftp://x"}, "credentials": {"type": "bearer", "token": "t"}}),
                "http or https",
            ),
            (
                json!({"system": "sap-s4hana", "name": "x", "mode": "live", "upstream": {"base_url": base, "page_size": 0}, "credentials": {"type": "bearer", "token": "t"}}),
                "page_size",
            ),
            (
                json!({"system": "sap-s4hana", "name": "x", "mode": "live", "upstream": {"base_url": base}, "credentials": {"type": "basic", "username": "u", "password": ""}}),
                "credentials.password is empty",
            ),
            (
                json!({"system": "sap-s4hana", "name": "x", "mode": "live", "upstream": {"base_url": "http://sap*prod.example"}, "credentials": {"type": "bearer", "token": "t"}}),
                "has no valid host name",
            ),
            // A whole number written as a float is read as the integer it is.
            (
                json!({"system": "sap-s4hana", "name": "x", "mode": "live", "upstream": {"base_url": base, "page_size": 5000.0}, "credentials": {"type": "bearer", "token": "t"}}),
                "page_size",
            ),
            (
                json!({"system": "sap-s4hana", "name": "x", "mode": "sandbox", "upstream": {"base_url": base}}),
                "sandbox connection takes no",
            ),
        ],
    )
    .await;
    finish(s, &dir).await;
}

/// What would go into a header must be able to: refused when stored, not when the
/// first call fails to build its request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_that_cannot_go_into_a_header_are_refused_when_stored() {
    let dir = temp_dir("live-header-credentials");
    let s = Service::start(&dir, None).await;
    let (base, _) = mock::start(&format!("crosswalk:{PASSWORD}")).await;
    refused_connections(
        &s,
        vec![
            (
                json!({"system": "ibm-maximo", "name": "x", "mode": "live", "upstream": {"base_url": base}, "credentials": {"type": "api_key", "header": "apikey", "key": "k\u{1}ey"}}),
                "credentials.key cannot be sent in an HTTP header",
            ),
            (
                json!({"system": "sap-s4hana", "name": "x", "mode": "live", "upstream": {"base_url": base}, "credentials": {"type": "bearer", "token": "to\nken"}}),
                "credentials.token cannot be sent in an HTTP header",
            ),
            (
                json!({"system": "sap-s4hana", "name": "x", "mode": "live", "upstream": {"base_url": base}, "credentials": {"type": "basic", "username": "a:b", "password": "p"}}),
                "credentials.username holds `:`",
            ),
        ],
    )
    .await;
    finish(s, &dir).await;
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// A live SAP connection that times out after 300 ms and whose breaker opens on the
/// third outage in a row for 400 ms; checked healthy before the case begins.
async fn sap_with_breaker(s: &Service) -> (Arc<mock::Mock>, String) {
    let (_, mock, id) = live_sap(
        s,
        json!({"timeout_ms": 300, "breaker": {"consecutive_failures": 3, "open_ms": 400, "window": 10, "min_calls": 10}}),
    )
    .await;
    assert_eq!(s.status(&id).await["status"], "healthy");
    (mock, id)
}

/// A 403 on the vendors' entity set, read: a 502 `upstream_permission`.
async fn refuse_vendors(s: &Service, mock: &mock::Mock, vendors: &str) {
    mock.set(Switches {
        forbid: Some("A_BusinessPartner"),
        ..Switches::default()
    });
    let (status, e) = s.get(vendors).await;
    assert_eq!(status, 502, "{e}");
    assert_eq!(e["error"]["code"], "upstream_permission");
}

/// A slow answer past the timeout: 504, unreachable.
async fn time_out(s: &Service, mock: &mock::Mock, id: &str, po: &str) {
    mock.set(Switches {
        delay: Some(Duration::from_millis(800)),
        ..Switches::default()
    });
    let (status, e) = s.get(po).await;
    assert_eq!(status, 504, "{e}");
    assert_eq!(e["error"]["details"]["kind"], "timeout");
    assert_eq!(s.status(id).await["status"], "unreachable");
}

/// A 500 from the upstream: a 502 `upstream_error`.
async fn fail_with_500(s: &Service, mock: &mock::Mock, po: &str) {
    mock.set(Switches {
        fail_with: Some(500),
        ..Switches::default()
    });
    let (status, e) = s.get(po).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (502, Some("upstream_error")),
        "{e}"
    );
}

/// A 403 on one entity set: degraded, and the other entities still read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_entity_set_degrades_the_connection_and_the_others_still_read() {
    let dir = temp_dir("status-permission");
    let s = Service::start(&dir, None).await;
    let (mock, id) = sap_with_breaker(&s).await;
    let po = format!("/v1/connections/{id}/purchase-orders");
    let vendors = format!("/v1/connections/{id}/vendors");
    refuse_vendors(&s, &mock, &vendors).await;
    assert_eq!(s.get(&po).await.0, 200);
    let st = s.status(&id).await;
    assert_eq!(st["status"], "degraded", "{st}");
    assert_eq!(st["entities"]["vendor"]["failing"], "permission");
    assert!(st["entities"]["purchase_order"]["failing"].is_null());
    assert_eq!(st["errors_by_kind"]["permission"], 1);
    assert!(st["last_success"].is_string());
    finish(s, &dir).await;
}

/// A 429 with Retry-After: rate_limited, and no upstream call until it passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_holds_back_every_call_until_its_retry_after_has_passed() {
    let dir = temp_dir("status-rate-limit");
    let s = Service::start(&dir, None).await;
    let (mock, id) = sap_with_breaker(&s).await;
    let po = format!("/v1/connections/{id}/purchase-orders");
    mock.set(Switches {
        rate_limit: Some(2),
        ..Switches::default()
    });
    let (status, headers, e) = s.call("GET", &po, None).await;
    assert_eq!(status, 429, "{e}");
    assert_eq!(headers["retry-after"], "2");
    assert_eq!(s.status(&id).await["status"], "rate_limited");
    let calls = mock.calls();
    let (status, headers, e) = s.call("GET", &po, None).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (429, Some("rate_limited"))
    );
    assert!(headers.contains_key("retry-after"));
    assert_eq!(mock.calls(), calls, "not called while rate limited");
    mock.set(Switches::default());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(s.get(&po).await.0, 200, "called again after Retry-After");
    finish(s, &dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_past_the_timeout_is_a_504_and_the_connection_unreachable() {
    let dir = temp_dir("status-timeout");
    let s = Service::start(&dir, None).await;
    let (mock, id) = sap_with_breaker(&s).await;
    let po = format!("/v1/connections/{id}/purchase-orders");
    time_out(&s, &mock, &id, &po).await;
    finish(s, &dir).await;
}

/// The breaker's whole cycle, on one connection whose vendors were refused before the
/// outage: a timeout and two 500s open it; open, it fails fast without calling the
/// upstream; half-open, a failing probe opens it again; a probe that succeeds closes
/// it, and the connection is degraded until the vendors read again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_third_outage_in_a_row_opens_the_breaker_until_a_probe_succeeds() {
    let dir = temp_dir("status-breaker");
    let s = Service::start(&dir, None).await;
    let (mock, id) = sap_with_breaker(&s).await;
    let po = format!("/v1/connections/{id}/purchase-orders");
    let vendors = format!("/v1/connections/{id}/vendors");
    refuse_vendors(&s, &mock, &vendors).await;
    assert_eq!(s.get(&po).await.0, 200);
    time_out(&s, &mock, &id, &po).await;

    // 500s: the third outage in a row opens the breaker.
    fail_with_500(&s, &mock, &po).await;
    assert_eq!(s.status(&id).await["status"], "unreachable");
    s.get(&po).await;
    let st = s.status(&id).await;
    assert_eq!(
        (st["status"].as_str(), st["breaker"].as_str()),
        (Some("circuit_open"), Some("open")),
        "{st}"
    );
    // Open: fail fast, without calling the upstream.
    let calls = mock.calls();
    let (status, headers, e) = s.call("GET", &vendors, None).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (503, Some("circuit_open")),
        "{e}"
    );
    assert!(headers.contains_key("retry-after"));
    assert_eq!(
        mock.calls(),
        calls,
        "the breaker kept the call from the upstream"
    );
    // Half-open: the probe fails (still 500), and it opens again.
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(s.status(&id).await["breaker"], "half_open");
    assert_eq!(s.get(&po).await.0, 502);
    assert_eq!(mock.calls(), calls + 1, "one probe");
    assert_eq!(s.status(&id).await["breaker"], "open");
    // The system recovers: the next probe closes the breaker.
    mock.set(Switches::default());
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(s.get(&po).await.0, 200);
    let st = s.status(&id).await;
    assert_eq!(
        (st["breaker"].as_str(), st["status"].as_str()),
        (Some("closed"), Some("degraded")),
        "{st}"
    );
    assert_eq!(s.get(&vendors).await.0, 200);
    assert_eq!(s.status(&id).await["status"], "healthy");
    finish(s, &dir).await;
}

/// The error log after one failure of each kind (a 403, a 429, a timeout, a 500, in
/// that order): newest first, every kind, each with its request id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_error_log_holds_every_kind_newest_first_with_request_ids() {
    let dir = temp_dir("status-error-log");
    let s = Service::start(&dir, None).await;
    let (mock, id) = sap_with_breaker(&s).await;
    let po = format!("/v1/connections/{id}/purchase-orders");
    let vendors = format!("/v1/connections/{id}/vendors");
    refuse_vendors(&s, &mock, &vendors).await;
    mock.set(Switches {
        rate_limit: Some(2),
        ..Switches::default()
    });
    assert_eq!(s.get(&po).await.0, 429);
    mock.set(Switches::default());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    time_out(&s, &mock, &id, &po).await;
    fail_with_500(&s, &mock, &po).await;

    let (status, log) = s.get(&format!("/v1/connections/{id}/errors")).await;
    assert_eq!(status, 200);
    let log = log["data"].as_array().unwrap();
    assert_eq!(log[0]["kind"], "upstream_5xx", "newest first: {}", log[0]);
    assert!(log.iter().all(|e| e["request_id"].is_string()));
    for kind in ["permission", "rate_limit", "timeout", "upstream_5xx"] {
        assert!(log.iter().any(|e| e["kind"] == kind), "{kind} is logged");
    }
    finish(s, &dir).await;
}

/// A 403 on the vendors and a 500 on the orders: the log filtered to the vendors'
/// refusals has the one, with the upstream's status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_error_log_is_filtered_by_entity_and_kind() {
    let dir = temp_dir("status-error-filter");
    let s = Service::start(&dir, None).await;
    let (mock, id) = sap_with_breaker(&s).await;
    let po = format!("/v1/connections/{id}/purchase-orders");
    let vendors = format!("/v1/connections/{id}/vendors");
    refuse_vendors(&s, &mock, &vendors).await;
    fail_with_500(&s, &mock, &po).await;
    let (_, only) = s
        .get(&format!(
            "/v1/connections/{id}/errors?entity=vendor&kind=permission"
        ))
        .await;
    let only = only["data"].as_array().unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0]["upstream_status"], 403);
    finish(s, &dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_error_kind_is_refused_naming_the_kinds_there_are() {
    let dir = temp_dir("status-error-kind");
    let s = Service::start(&dir, None).await;
    let (_, id) = sap_with_breaker(&s).await;
    let (status, bad) = s
        .get(&format!("/v1/connections/{id}/errors?kind=oops"))
        .await;
    assert_eq!(status, 400);
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap()
            .contains("permission"),
        "{bad}"
    );
    finish(s, &dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_given_by_the_client_is_the_one_logged() {
    let dir = temp_dir("status-request-id");
    let s = Service::start(&dir, None).await;
    let (mock, id) = sap_with_breaker(&s).await;
    let po = format!("/v1/connections/{id}/purchase-orders");
    mock.set(Switches {
        fail_with: Some(503),
        ..Switches::default()
    });
    let response = s
        .client
        .get(format!("{}{po}", s.base))
        .bearer_auth(&s.key)
        .header("x-request-id", "req-trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let (_, log) = s.get(&format!("/v1/connections/{id}/errors?limit=1")).await;
    assert_eq!(log["data"][0]["request_id"], "req-trace-42");
    finish(s, &dir).await;
}

/// A receiver subscribed to the reauthorization and status events.
async fn reauth_receiver(s: &Service) -> (Receiver, tokio::task::JoinHandle<()>) {
    let (r, url, handle) = receiver().await;
    subscribe(
        s,
        &r,
        &url,
        &[
            "connection.reauth_required",
            "connection.reauthorized",
            "connection.status_changed",
        ],
    )
    .await;
    (r, handle)
}

/// A live SAP connection that has read once, with a receiver of its reauthorization
/// and status events.
struct ReauthCase {
    dir: PathBuf,
    s: Service,
    r: Receiver,
    _receiver: tokio::task::JoinHandle<()>,
    mock: Arc<mock::Mock>,
    id: String,
    /// The connection's token before any reauthorization.
    token: String,
    /// The connection's purchase orders.
    po: String,
}

impl ReauthCase {
    async fn start(name: &str) -> ReauthCase {
        let dir = temp_dir(name);
        let s = Service::start(&dir, None).await;
        let (r, receiver) = reauth_receiver(&s).await;
        let (_, mock, id) = live_sap(&s, json!({})).await;
        let (_, c) = s.get(&format!("/v1/connections/{id}")).await;
        let token = c["token"].as_str().unwrap().to_owned();
        assert!(token.starts_with("ctk_"));
        let po = format!("/v1/connections/{id}/purchase-orders");
        assert_eq!(s.get(&po).await.0, 200);
        ReauthCase {
            dir,
            s,
            r,
            _receiver: receiver,
            mock,
            id,
            token,
            po,
        }
    }

    /// The customer changes the password in SAP; the next read is refused.
    async fn rotate_password(&self) {
        self.mock.rotate("crosswalk:n3w-Passw0rd");
        let (status, e) = self.s.get(&self.po).await;
        assert_eq!(
            (status, e["error"]["code"].as_str()),
            (409, Some("needs_reauth")),
            "{e}"
        );
    }

    /// Reauthorizes with basic credentials holding `password`; the answer.
    async fn reauthorize(&self, password: &str) -> (u16, Value) {
        let (status, _, c) = self
            .s
            .call("POST", &format!("/v1/connections/{}/reauthorize", self.id), Some(json!({"credentials": {"type": "basic", "username": "crosswalk", "password": password}})))
            .await;
        (status, c)
    }

    /// Checks that every delivery was signed, and stops.
    async fn finish(self) {
        assert_eq!(*self.r.bad_signatures.lock().unwrap(), 0);
        finish(self.s, &self.dir).await;
    }
}

/// Once the credentials are refused, reads are refused without calling the upstream,
/// pointing to `/reauthorize`, and the connection needs reauthorization.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_stop_the_calls_until_the_connection_is_reauthorized() {
    let case = ReauthCase::start("reauth-refused").await;
    case.rotate_password().await;
    let calls = case.mock.calls();
    for _ in 0..5 {
        let (status, e) = case.s.get(&case.po).await;
        assert_eq!(status, 409);
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("/reauthorize"),
            "{e}"
        );
    }
    assert_eq!(
        case.mock.calls(),
        calls,
        "no more calls with refused credentials"
    );
    let st = case.s.status(&case.id).await;
    assert_eq!(st["status"], "needs_reauth");
    assert!(st["needs_reauth_since"].is_string());
    assert_eq!(st["errors_by_kind"]["auth"], 1);
    case.finish().await;
}

/// However many reads are refused, an incident sends one reauth webhook, with the
/// connection and its token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_of_refused_credentials_sends_one_reauth_webhook() {
    let case = ReauthCase::start("reauth-one-webhook").await;
    let r = &case.r;
    case.rotate_password().await;
    for _ in 0..5 {
        assert_eq!(case.s.get(&case.po).await.0, 409);
    }
    eventually("the reauth webhook", || {
        r.of("connection.reauth_required").len() == 1
    })
    .await;
    eventually("the status webhook", || {
        !r.of("connection.status_changed").is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reauth = r.of("connection.reauth_required");
    assert_eq!(reauth.len(), 1, "one per incident");
    assert_eq!(reauth[0]["data"]["connection_id"], case.id.as_str());
    assert_eq!(reauth[0]["data"]["token"], case.token.as_str());
    case.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_new_credentials_are_refused_and_change_nothing() {
    let case = ReauthCase::start("reauth-wrong").await;
    case.rotate_password().await;
    let (status, e) = case.reauthorize("guess").await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (422, Some("reauthorization_failed")),
        "{e}"
    );
    assert_eq!(case.s.status(&case.id).await["status"], "needs_reauth");
    assert_eq!(
        case.s.get(&format!("/v1/connections/{}", case.id)).await.1["token"],
        case.token.as_str()
    );
    case.finish().await;
}

/// The right credentials: a new token, healthy, and reads work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reauthorization_restores_the_connection_with_a_new_token() {
    let case = ReauthCase::start("reauth-restores").await;
    case.rotate_password().await;
    let (status, c) = case.reauthorize("n3w-Passw0rd").await;
    assert_eq!(status, 200, "{c}");
    let new_token = c["token"].as_str().unwrap();
    assert_ne!(new_token, case.token);
    assert!(c.get("needs_reauth_since").is_none());
    assert!(!c.to_string().contains("n3w-Passw0rd"));
    let st = case.s.status(&case.id).await;
    assert_eq!(
        (st["status"].as_str(), st["token"].as_str()),
        (Some("healthy"), Some(new_token))
    );
    assert_eq!(case.s.get(&case.po).await.0, 200);
    case.finish().await;
}

/// Reauthorization sends one reauthorized event with the new token, and the status
/// changes to `needs_reauth` and back to `healthy` are sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reauthorization_sends_its_event_and_the_status_changes() {
    let case = ReauthCase::start("reauth-events").await;
    let r = &case.r;
    case.rotate_password().await;
    eventually("the status webhook", || {
        !r.of("connection.status_changed").is_empty()
    })
    .await;
    let (status, c) = case.reauthorize("n3w-Passw0rd").await;
    assert_eq!(status, 200, "{c}");
    let new_token = c["token"].as_str().unwrap();
    eventually("the reauthorized webhook", || {
        r.of("connection.reauthorized").len() == 1
    })
    .await;
    assert_eq!(
        r.of("connection.reauthorized")[0]["data"]["token"],
        new_token
    );
    let changes: Vec<(String, String)> = r
        .of("connection.status_changed")
        .iter()
        .map(|e| {
            (
                e["data"]["from"].as_str().unwrap().to_owned(),
                e["data"]["to"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        changes.contains(&("healthy".into(), "needs_reauth".into())),
        "{changes:?}"
    );
    eventually("needs_reauth → healthy", || {
        r.of("connection.status_changed")
            .iter()
            .any(|e| e["data"]["to"] == "healthy")
    })
    .await;
    case.finish().await;
}

/// After a reauthorization, credentials refused again are a new incident: a second
/// reauth webhook.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_incident_after_reauthorization_sends_a_second_webhook() {
    let case = ReauthCase::start("reauth-second").await;
    let r = &case.r;
    case.rotate_password().await;
    eventually("the reauth webhook", || {
        r.of("connection.reauth_required").len() == 1
    })
    .await;
    let (status, c) = case.reauthorize("n3w-Passw0rd").await;
    assert_eq!(status, 200, "{c}");
    case.mock.rotate("crosswalk:third-Passw0rd");
    assert_eq!(case.s.get(&case.po).await.0, 409);
    eventually("the second reauth webhook", || {
        r.of("connection.reauth_required").len() == 2
    })
    .await;
    case.finish().await;
}

/// OAuth: a rotated client secret is refused at the token endpoint, which is an
/// incident as refused credentials are; the new secret reauthorizes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_oauth_client_secret_needs_reauthorization() {
    let dir = temp_dir("reauth-oauth");
    let s = Service::start(&dir, None).await;
    let (r, _receiver) = reauth_receiver(&s).await;
    let (obase, omock) = mock::start("client-secret-1").await;
    let o = s
        .live("ibm-maximo", json!({"base_url": obase}), json!({"type": "oauth2", "token_url": format!("{obase}/oauth/token"), "client_id": "crosswalk", "client_secret": "client-secret-1"}))
        .await;
    assert_eq!(s.get(&format!("/v1/connections/{o}/assets")).await.0, 200);
    omock.rotate("client-secret-2");
    let (status, e) = s.get(&format!("/v1/connections/{o}/assets")).await;
    assert_eq!(status, 409, "{e}");
    assert_eq!(s.status(&o).await["status"], "needs_reauth");
    eventually("the OAuth reauth webhook", || {
        r.of("connection.reauth_required").len() == 1
    })
    .await;
    let (status, _, c) = s
        .call("POST", &format!("/v1/connections/{o}/reauthorize"), Some(json!({"credentials": {"type": "oauth2", "token_url": format!("{obase}/oauth/token"), "client_id": "crosswalk", "client_secret": "client-secret-2"}})))
        .await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(s.get(&format!("/v1/connections/{o}/assets")).await.0, 200);
    assert_eq!(*r.bad_signatures.lock().unwrap(), 0);
    finish(s, &dir).await;
}

/// A receiver that hangs until released does not hold up other subscriptions' events;
/// its own go out in order once it answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_receiver_holds_up_only_its_own_deliveries() {
    let dir = temp_dir("hanging");
    let s = Service::start(&dir, None).await;
    // The hanging receiver: it takes requests, and answers once released.
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let started = Arc::new(Mutex::new(0u32));
    let answered: Arc<Mutex<Vec<String>>> = Arc::default();
    let router = {
        let (release, started, answered) = (
            Arc::clone(&release),
            Arc::clone(&started),
            Arc::clone(&answered),
        );
        axum::Router::new().route(
            "/hooks",
            axum::routing::post(move |headers: HeaderMap| {
                let (release, started, answered) = (
                    Arc::clone(&release),
                    Arc::clone(&started),
                    Arc::clone(&answered),
                );
                async move {
                    *started.lock().unwrap() += 1;
                    release.acquire().await.unwrap().forget();
                    let id = headers[EVENT_ID_HEADER].to_str().unwrap().to_owned();
                    answered.lock().unwrap().push(id);
                    axum::http::StatusCode::OK
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow_url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let (_, _, slow) = s
        .call(
            "POST",
            "/v1/webhooks",
            Some(json!({"url": slow_url, "events": ["mapping.updated"]})),
        )
        .await;
    let slow = slow["subscription"]["id"].as_str().unwrap().to_owned();
    let (_, _, c) = s
        .call(
            "POST",
            "/v1/connections",
            Some(json!({"system": "sap-s4hana", "name": "sb", "mode": "sandbox"})),
        )
        .await;
    let mapping = format!(
        "/v1/connections/{}/mappings/purchase_order",
        c["id"].as_str().unwrap()
    );
    let change = |n: u32| json!({"overrides": [{"target": "custom_fields.n", "const": n}]});
    assert_eq!(s.call("PUT", &mapping, Some(change(1))).await.0, 200);
    eventually("the first event reaches the hanging receiver", || {
        *started.lock().unwrap() == 1
    })
    .await;

    // A second subscriber, and a second event: it arrives while the first receiver
    // still hangs on the first event (whose delivery log is still empty: no attempt
    // has ended, not even by the 10 s timeout).
    let (r, url, _fast) = receiver().await;
    subscribe(&s, &r, &url, &["mapping.updated"]).await;
    assert_eq!(s.call("PUT", &mapping, Some(change(2))).await.0, 200);
    eventually("the second event at the other receiver", || {
        r.of("mapping.updated").len() == 1
    })
    .await;
    let (_, log) = s.get(&format!("/v1/webhooks/{slow}/deliveries")).await;
    assert_eq!(log["data"], json!([]), "{log}");
    assert_eq!(*started.lock().unwrap(), 1);

    // Released, the hanging receiver gets both of its events, in order.
    release.add_permits(10);
    eventually("both events at the hanging receiver", || {
        answered.lock().unwrap().len() == 2
    })
    .await;
    let second = r.of("mapping.updated")[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let answered = answered.lock().unwrap().clone();
    assert_eq!(answered[1], second, "{answered:?}");
    assert_ne!(answered[0], second);
    s.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Waits until the newest entry of a subscription's delivery log is a delivery (the
/// log is written once the receiver's answer is in).
async fn wait_delivered(s: &Service, sub: &str) {
    for _ in 0..200 {
        let (_, log) = s.get(&format!("/v1/webhooks/{sub}/deliveries")).await;
        if log["data"][0]["outcome"] == "delivered" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the newest delivery of {sub} never succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_redelivers_after_the_receiver_was_down_and_after_a_restart() {
    let dir = temp_dir("outbox");
    let s = Service::start(&dir, None).await;
    let (r, url, receiver_task) = receiver().await;
    let sub = subscribe(&s, &r, &url, &["mapping.updated"]).await;
    let (_, _, c) = s
        .call(
            "POST",
            "/v1/connections",
            Some(json!({"system": "sap-s4hana", "name": "sb", "mode": "sandbox"})),
        )
        .await;
    let id = c["id"].as_str().unwrap().to_owned();
    let change = json!({"overrides": [{"target": "custom_fields.cost_center", "path": "$.ZZ1_CostCenter_PDH"}]});

    // The receiver answers 503 twice, then 200: delivered on the third attempt.
    *r.answer.lock().unwrap() = 503;
    let (status, _, _) = s
        .call(
            "PUT",
            &format!("/v1/connections/{id}/mappings/purchase_order"),
            Some(change.clone()),
        )
        .await;
    assert_eq!(status, 200);
    eventually("two failed attempts", || r.of("mapping.updated").len() >= 2).await;
    *r.answer.lock().unwrap() = 200;
    wait_delivered(&s, &sub).await;
    let got = r.of("mapping.updated");
    assert!(got.len() >= 3);
    assert!(
        got.iter().all(|e| e["id"] == got[0]["id"]),
        "the same event id on every attempt"
    );
    assert_eq!(got[0]["data"]["connection_id"], id.as_str());
    assert_eq!(got[0]["data"]["version"], 1);

    // The receiver goes away; a change is made; the service stops before delivering.
    receiver_task.abort();
    let _ = receiver_task.await;
    let (status, _, _) = s
        .call(
            "PUT",
            &format!("/v1/connections/{id}/mappings/purchase_order"),
            Some(json!({"overrides": []})),
        )
        .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, log) = s.get(&format!("/v1/webhooks/{sub}/deliveries")).await;
    assert_eq!(log["data"][0]["outcome"], "failed", "{log}");
    assert!(
        log["data"][0]["error"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{log}"
    );
    let key = s.stop().await;
    let secret = r.secret.lock().unwrap().clone();
    for file in walk(&dir) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the webhook secret is stored in clear in {}",
            file.display()
        );
    }

    // The receiver is back on the same address; the restarted service delivers.
    let listener =
        tokio::net::TcpListener::bind(url.trim_start_matches("http://").trim_end_matches("/hooks"))
            .await
            .unwrap();
    let before = r.of("mapping.updated").len();
    let _receiver = r.start(listener).await;
    let s = Service::start(&dir, Some(key)).await;
    eventually("the redelivery after the restart", || {
        r.of("mapping.updated")
            .iter()
            .skip(before)
            .any(|e| e["data"]["version"] == 2)
    })
    .await;
    assert_eq!(*r.bad_signatures.lock().unwrap(), 0);
    wait_delivered(&s, &sub).await;

    // Subscriptions are checked.
    let (status, _, e) = s
        .call(
            "POST",
            "/v1/webhooks",
            Some(json!({"url": "not a url", "events": ["mapping.updated"]})),
        )
        .await;
    assert_eq!(status, 422, "{e}");
    let (status, _, e) = s
        .call(
            "POST",
            "/v1/webhooks",
            Some(json!({"url": url, "events": ["mapping.deleted"]})),
        )
        .await;
    assert_eq!(status, 400, "{e}");
    let (status, _, e) = s
        .call(
            "POST",
            "/v1/webhooks",
            Some(json!({"url": url, "events": ["mapping.updated"], "secret": "short"})),
        )
        .await;
    assert_eq!(status, 422, "{e}");
    assert_eq!(
        s.call("DELETE", &format!("/v1/webhooks/{sub}"), None)
            .await
            .0,
        204
    );
    assert_eq!(s.get(&format!("/v1/webhooks/{sub}")).await.0, 404);
    s.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A sandbox SAP connection whose purchase orders have the uom and hostile plugins
/// bound, and whose mapping converts the lines' units from SAP's codes to ISO's with
/// the uom plugin.
struct InverseCase {
    dir: PathBuf,
    s: Service,
    id: String,
    /// The mapping's path.
    mapping: String,
    /// The overrides that convert the units.
    to_iso: Value,
    /// The mapping's answer to those overrides.
    stored: Value,
}

impl InverseCase {
    async fn start(name: &str) -> InverseCase {
        let dir = temp_dir(name);
        let s = Service::start(&dir, None).await;
        let id = sandbox(&s, "sap-s4hana").await;
        let mapping = s
            .bind_plugins(
                &id,
                "purchase_order",
                &["crosswalk-plugin-uom", "crosswalk-fixture-hostile"],
            )
            .await;
        let to_iso = json!({"overrides": [{"target": "lines.unit_of_measure", "transforms": ["null_if_empty", {"plugin": "uom", "function": "convert", "args": {"from": "sap", "to": "iso"}}]}]});
        let (status, _, stored) = s.call("PUT", &mapping, Some(to_iso.clone())).await;
        assert_eq!(status, 200, "{stored}");
        InverseCase {
            dir,
            s,
            id,
            mapping,
            to_iso,
            stored,
        }
    }

    /// Replaces the mapping's overrides; the answer.
    async fn put(&self, overrides: Value) -> Value {
        let (status, _, m) = self.s.call("PUT", &self.mapping, Some(overrides)).await;
        assert_eq!(status, 200, "{m}");
        m
    }

    /// Updates order 4500000201 with `body`; the answer.
    async fn patch(&self, body: Value) -> (u16, Value) {
        let (status, _, answer) = self
            .s
            .call(
                "PATCH",
                &format!("/v1/connections/{}/purchase-orders/4500000201", self.id),
                Some(body),
            )
            .await;
        (status, answer)
    }

    /// The connection's plugin errors.
    async fn plugin_errors(&self) -> Value {
        self.s
            .get(&format!("/v1/connections/{}/errors?kind=plugin", self.id))
            .await
            .1
    }
}

/// A field that a plugin converts, with an inverse the plugin declares, is neither read
/// only nor refuses the mapping's writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_converted_by_a_plugin_with_an_inverse_stays_writable() {
    let case = InverseCase::start("plugin-writes-writable").await;
    let m = &case.stored;
    assert!(m.get("write_refused").is_none(), "{m}");
    assert!(
        !m["read_only"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["target"] == "lines.unit_of_measure"),
        "{}",
        m["read_only"]
    );
    finish(case.s, &case.dir).await;
}

/// A record read through the mapping has ISO codes; written back, SAP's (ISO `H87` to
/// SAP's `PC`), in previews and sandbox writes alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_go_back_through_the_plugins_inverse() {
    let case = InverseCase::start("plugin-writes-inverse").await;
    let (s, id) = (&case.s, &case.id);
    let (status, page) = s
        .get(&format!("/v1/connections/{id}/purchase-orders?page_size=1"))
        .await;
    assert_eq!(status, 200, "{page}");
    let read = &page["data"][0];
    assert_eq!(read["lines"][0]["unit_of_measure"], "H87", "{read}");
    let record = json!({"number": "4500000999", "lines": [{"line_number": 10, "quantity": 4, "unit_of_measure": "H87"}, {"line_number": 20, "quantity": 2, "unit_of_measure": "KGM"}]});
    let (status, _, preview) = s
        .call(
            "POST",
            &format!("/v1/connections/{id}/purchase-orders/preview-write"),
            Some(record.clone()),
        )
        .await;
    assert_eq!(status, 200, "{preview}");
    let units: Vec<&Value> = preview["native_payload"]["to_PurchaseOrderItem"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["PurchaseOrderQuantityUnit"])
        .collect();
    assert_eq!(units, [&json!("PC"), &json!("KG")], "{preview}");
    let (status, _, created) = s
        .call(
            "POST",
            &format!("/v1/connections/{id}/purchase-orders"),
            Some(record),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["native_payload"], preview["native_payload"]);
    finish(case.s, &case.dir).await;
}

/// A code SAP has no spelling for is refused with the line and the plugin's reason;
/// that was the caller's value, not the plugin failing, so nothing is in the error log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_the_inverse_cannot_convert_is_refused_with_the_line_and_the_plugins_reason() {
    let case = InverseCase::start("plugin-writes-unknown-code").await;
    let (status, refused) = case
        .patch(json!({"lines": [{"line_number": 10, "unit_of_measure": "XYZ"}]}))
        .await;
    assert_eq!(status, 422, "{refused}");
    let error = &refused["error"]["details"]["errors"][0];
    assert_eq!(error["field"], "lines[0].unit_of_measure", "{refused}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("`XYZ` is not a known ISO unit code"),
        "{refused}"
    );
    let errors = case.plugin_errors().await;
    assert_eq!(errors["data"], json!([]), "{errors}");
    finish(case.s, &case.dir).await;
}

/// An inverse that traps refuses the write, and counts against the plugin as a read's
/// failing call does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inverse_that_traps_refuses_the_write_and_counts_against_the_plugin() {
    let case = InverseCase::start("plugin-writes-trap").await;
    let mut fragile = case.to_iso.clone();
    fragile["overrides"]
        .as_array_mut()
        .unwrap()
        .push(json!({"target": "custom_fields.checked", "path": "$.ZZ1_Checked", "transforms": [{"plugin": "hostile", "function": "echo_fragile"}]}));
    case.put(fragile).await;
    let (status, refused) = case
        .patch(json!({"custom_fields": {"checked": "yes"}}))
        .await;
    assert_eq!(status, 422, "{refused}");
    let error = &refused["error"]["details"]["errors"][0];
    assert_eq!(error["field"], "custom_fields.checked", "{refused}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("plugin `hostile` function `panic`"),
        "{refused}"
    );
    let errors = case.plugin_errors().await;
    assert_eq!(errors["data"][0]["plugin"], "hostile", "{errors}");
    assert!(
        errors["data"][0]["message"]
            .as_str()
            .unwrap()
            .contains("1 trap"),
        "{errors}"
    );
    finish(case.s, &case.dir).await;
}

/// A `pre` step without an inverse: reads go on, writes are refused, saying why, and
/// the mapping says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_step_without_an_inverse_refuses_writes_by_name_but_not_reads() {
    let case = InverseCase::start("plugin-writes-pre").await;
    let mut with_pre = case.to_iso.clone();
    with_pre["pre"] = json!([{"plugin": "hostile", "function": "echo_records"}]);
    let m = case.put(with_pre).await;
    let why = "its `pre` step calls the plugin function `hostile.echo_records`, which declares no inverse, so a write cannot undo what it changed";
    assert_eq!(m["write_refused"], why, "{m}");
    let (status, page) = case
        .s
        .get(&format!(
            "/v1/connections/{}/purchase-orders?page_size=1",
            case.id
        ))
        .await;
    assert_eq!(status, 200, "{page}");
    let (status, refused) = case.patch(json!({"currency": "EUR"})).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["code"], "unwritable_fields");
    assert_eq!(
        refused["error"]["message"],
        format!("this purchase_order cannot be written: {why}")
    );
    finish(case.s, &case.dir).await;
}

/// An id overridden into a composite (`{$.siteid}/{value}`, for a Maximo customer whose
/// sites reuse work order numbers) finds and updates its own record upstream: the id is
/// written back through the mapping into the key and the site, which the query names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn composite_ids_find_and_update_their_own_records_upstream() {
    let dir = temp_dir("composite-ids");
    let s = Service::start(&dir, None).await;
    let (base, mock) = mock::start("maximo-api-key-123").await;
    let mx = s
        .live(
            "ibm-maximo",
            json!({"base_url": base}),
            json!({"type": "api_key", "header": "apikey", "key": "maximo-api-key-123"}),
        )
        .await;
    let (status, _, m) = s
        .call(
            "PUT",
            &format!("/v1/connections/{mx}/mappings/work_order"),
            Some(json!({"overrides": [{"target": "id", "transforms": [{"template": "{$.siteid}/{value}"}]}]})),
        )
        .await;
    assert_eq!(status, 200, "{m}");
    let wo = format!("/v1/connections/{mx}/work-orders");
    let (status, page) = s.get(&format!("{wo}?page_size=1")).await;
    assert_eq!(status, 200, "{page}");
    let first = page["data"][0].clone();
    let (site, number) = first["id"].as_str().unwrap().split_once('/').unwrap();
    let (site, number) = (site.to_owned(), number.to_owned());
    // Another site has a work order of the same number.
    {
        let mut tables = mock.tables.lock().unwrap();
        let rows = tables.get_mut(&("ibm-maximo", Entity::WorkOrder)).unwrap();
        let mut twin = rows
            .iter()
            .find(|r| r["wonum"] == number.as_str())
            .unwrap()
            .clone();
        twin["siteid"] = json!("TWINSITE");
        twin["description"] = json!("The twin at the other site");
        rows.push(twin);
    }
    let one = |site: &str| format!("{wo}/{site}%2F{number}");
    // The number alone is not an id under this mapping: no record, and no upstream call.
    let calls = mock.calls();
    assert_eq!(s.get(&format!("{wo}/{number}")).await.0, 404);
    assert_eq!(mock.calls(), calls);
    let (status, got) = s.get(&one(&site)).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["data"]["id"], first["id"]);
    assert_eq!(got["data"]["title"], first["title"]);
    let (status, twin) = s.get(&one("TWINSITE")).await;
    assert_eq!(status, 200, "{twin}");
    assert_eq!(twin["data"]["id"], format!("TWINSITE/{number}"));
    assert_eq!(twin["data"]["title"], "The twin at the other site");
    let queries = mock.queries.lock().unwrap().clone();
    assert!(
        queries
            .iter()
            .any(|q| q.contains("oslc.where=wonum%3D%22")
                && q.contains("+and+siteid%3D%22TWINSITE%22")),
        "{queries:?}"
    );

    // The update goes to the twin's own href, and the other site's record is as it was.
    let (status, _, updated) = s
        .call(
            "PATCH",
            &one("TWINSITE"),
            Some(json!({"title": "Renamed at the twin site"})),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["data"]["title"], "Renamed at the twin site");
    let (_, path, sent) = mock.writes.lock().unwrap().last().cloned().unwrap();
    assert!(path.ends_with(&format!("/_TWINSITE~{number}")), "{path}");
    assert_eq!(sent, json!({"description": "Renamed at the twin site"}));
    let (_, got) = s.get(&one(&site)).await;
    assert_eq!(got["data"]["title"], first["title"]);
    let (status, _) = s.get(&one("NOSUCHSITE")).await;
    assert_eq!(status, 404);
    s.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// An SAP vendor's id is its supplier number, which can differ from its business
/// partner number (the entity's key): a read or an update by it finds the business
/// partner by `Supplier` and updates it at its own key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sap_vendors_are_found_by_their_supplier_number() {
    let dir = temp_dir("sap-supplier");
    let s = Service::start(&dir, None).await;
    let (base, mock) = mock::start(&format!("crosswalk:{PASSWORD}")).await;
    let sap = s
        .live(
            "sap-s4hana",
            json!({"base_url": base}),
            json!({"type": "basic", "username": "crosswalk", "password": PASSWORD}),
        )
        .await;
    let vendors = format!("/v1/connections/{sap}/vendors");
    let (status, page) = s.get(&format!("{vendors}?page_size=1")).await;
    assert_eq!(status, 200, "{page}");
    let supplier = page["data"][0]["id"].as_str().unwrap().to_owned();
    // This system numbers business partners apart from suppliers.
    let other = {
        let mut tables = mock.tables.lock().unwrap();
        let rows = tables.get_mut(&("sap-s4hana", Entity::Vendor)).unwrap();
        let row = rows
            .iter_mut()
            .find(|r| r["Supplier"] == supplier.as_str())
            .unwrap();
        row["BusinessPartner"] = json!("9000000001");
        let other = rows
            .iter_mut()
            .find(|r| r["Supplier"] != supplier.as_str())
            .unwrap();
        other["BusinessPartner"] = json!("8000000002");
        other["Supplier"].as_str().unwrap().to_owned()
    };
    // A business partner number is not a vendor id when the partner is the supplier
    // of another number: no record, rather than the wrong one.
    let (status, got) = s.get(&format!("{vendors}/8000000002")).await;
    assert_eq!(status, 404, "{got}");
    let (status, got) = s.get(&format!("{vendors}/{other}")).await;
    assert_eq!(
        (status, got["data"]["id"].as_str()),
        (200, Some(other.as_str()))
    );
    let (status, got) = s.get(&format!("{vendors}/{supplier}")).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["data"]["id"], supplier.as_str());
    let (status, _, updated) = s
        .call(
            "PATCH",
            &format!("{vendors}/{supplier}"),
            Some(json!({"name": "Renamed Supplier Inc."})),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["data"]["name"], "Renamed Supplier Inc.");
    let (method, path, sent) = mock.writes.lock().unwrap().last().cloned().unwrap();
    assert_eq!(method, "PATCH");
    assert!(path.ends_with("/A_BusinessPartner('9000000001')"), "{path}");
    assert_eq!(
        sent,
        json!({"BusinessPartnerFullName": "Renamed Supplier Inc."})
    );
    let (status, _) = s.get(&format!("{vendors}/NOSUCHSUPPLIER")).await;
    assert_eq!(status, 404);
    s.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_plugin_raises_one_event_until_it_recovers() {
    let dir = temp_dir("plugin");
    let s = Service::start(&dir, None).await;
    let (r, url, _receiver) = receiver().await;
    subscribe(&s, &r, &url, &["plugin.failing"]).await;
    let (_, _, c) = s
        .call(
            "POST",
            "/v1/connections",
            Some(json!({"system": "sap-s4hana", "name": "sb", "mode": "sandbox"})),
        )
        .await;
    let id = c["id"].as_str().unwrap().to_owned();
    let mapping = s
        .bind_plugins(&id, "purchase_order", &["crosswalk-fixture-hostile"])
        .await;
    let calling = |function: &str| json!({"overrides": [{"target": "custom_fields.checked", "path": "$.PurchaseOrder", "transforms": [{"plugin": "hostile", "function": function}]}]});
    let (status, _, m) = s.call("PUT", &mapping, Some(calling("panic"))).await;
    assert_eq!(status, 200, "{m}");
    let po = format!("/v1/connections/{id}/purchase-orders?page_size=3");

    // Every call traps: the field is null with its error, the log says why, and one
    // event is raised however many reads fail.
    for _ in 0..3 {
        let (status, page) = s.get(&po).await;
        assert_eq!(status, 200, "{page}");
        assert!(page["data"][0]["custom_fields"]["checked"].is_null());
        assert!(
            page["data"][0]["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("hostile"),
            "{page}"
        );
    }
    let st = s.status(&id).await;
    assert_eq!(st["status"], "degraded", "{st}");
    assert_eq!(st["entities"]["purchase_order"]["failing"], "plugin");
    let (_, log) = s
        .get(&format!("/v1/connections/{id}/errors?kind=plugin"))
        .await;
    let entry = &log["data"][0];
    assert_eq!(entry["plugin"], "hostile");
    assert!(
        entry["message"]
            .as_str()
            .unwrap()
            .contains("3 of 3 calls failed (3 trap)"),
        "{entry}"
    );
    eventually("plugin.failing", || r.of("plugin.failing").len() == 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(r.of("plugin.failing").len(), 1, "once per incident");
    assert_eq!(r.of("plugin.failing")[0]["data"]["plugin"], "hostile");

    // It recovers; then it fails again: a second event.
    s.call("PUT", &mapping, Some(calling("echo"))).await;
    let (_, page) = s.get(&po).await;
    assert_eq!(
        page["data"][0]["custom_fields"]["checked"],
        page["data"][0]["id"]
    );
    assert_eq!(s.status(&id).await["status"], "healthy");
    s.call("PUT", &mapping, Some(calling("panic"))).await;
    s.get(&po).await;
    eventually("the second plugin.failing", || {
        r.of("plugin.failing").len() == 2
    })
    .await;
    s.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_calls_keep_to_the_connections_concurrency_limit() {
    let dir = temp_dir("concurrency");
    let s = Arc::new(Service::start(&dir, None).await);
    let (base, mock) = mock::start(&format!("crosswalk:{PASSWORD}")).await;
    let id = s
        .live(
            "sap-s4hana",
            json!({"base_url": base, "max_concurrency": 2}),
            json!({"type": "basic", "username": "crosswalk", "password": PASSWORD}),
        )
        .await;
    mock.set(Switches {
        delay: Some(Duration::from_millis(150)),
        ..Switches::default()
    });
    let reads: Vec<_> = (0..6)
        .map(|_| {
            let s = Arc::clone(&s);
            let path = format!("/v1/connections/{id}/assets");
            tokio::spawn(async move { s.get(&path).await.0 })
        })
        .collect();
    for read in reads {
        assert_eq!(read.await.unwrap(), 200);
    }
    assert_eq!(mock.calls(), 6);
    assert_eq!(
        *mock.max_in_flight.lock().unwrap(),
        2,
        "never more than the limit at once"
    );
    Arc::into_inner(s).expect("no other handle").stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A live SAP connection whose breaker opens on the second outage in a row, with the
/// cost-centre override; the mock and the connection's id.
async fn sap_for_writes(s: &Service) -> (Arc<mock::Mock>, String) {
    let (_, mock, id) = live_sap(
        s,
        json!({"breaker": {"consecutive_failures": 2, "open_ms": 60000, "window": 10, "min_calls": 10}}),
    )
    .await;
    override_cost_center(s, &id).await;
    (mock, id)
}

/// Creates order 4500009001 through the connection's purchase orders `po`; the answer's
/// headers and body.
async fn create_sap_order(s: &Service, po: &str) -> (HeaderMap, Value) {
    let order = json!({
        "number": "4500009001",
        "vendor": {"id": "17300001"},
        "order_date": "2024-06-03",
        "currency": "EUR",
        "custom_fields": {"cost_center": "CC-42"},
        "lines": [{"line_number": 10, "item_id": "RM-BRG-6205", "quantity": 5, "unit_of_measure": "PC"}],
    });
    let (status, headers, created) = s.call("POST", po, Some(order)).await;
    assert_eq!(status, 201, "{created}");
    (headers, created)
}

/// A create: deep insert with its items, through the CSRF handshake, read back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sap_create_is_a_deep_insert_that_reads_back() {
    let dir = temp_dir("writes-sap-create");
    let s = Service::start(&dir, None).await;
    let (mock, id) = sap_for_writes(&s).await;
    let po = format!("/v1/connections/{id}/purchase-orders");
    let (headers, created) = create_sap_order(&s, &po).await;
    assert_eq!(headers["crosswalk-mapping-version"], "1");
    assert_eq!(created["applied"], true);
    let data = &created["data"];
    assert_eq!(
        (
            data["id"].as_str(),
            data["currency"].as_str(),
            data["order_date"].as_str()
        ),
        (Some("4500009001"), Some("EUR"), Some("2024-06-03"))
    );
    assert_eq!(data["custom_fields"]["cost_center"], "CC-42");
    assert_eq!(
        (
            data["lines"][0]["quantity"].as_f64(),
            data["lines"][0]["item_id"].as_str()
        ),
        (Some(5.0), Some("RM-BRG-6205"))
    );
    let (method, path, sent) = mock.writes.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        (method.as_str(), path.ends_with("/A_PurchaseOrder")),
        ("POST", true)
    );
    assert_eq!(sent["ZZ1_CostCenter_PDH"], "CC-42");
    assert_eq!(
        sent["to_PurchaseOrderItem"]["results"][0]["OrderQuantity"],
        "5"
    );
    assert_eq!(sent["PurchaseOrderDate"], "/Date(1717372800000)/");
    assert_eq!(
        s.get(&format!("{po}/4500009001")).await.1["data"]["currency"],
        "EUR"
    );
    finish(s, &dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sap_update_sends_the_given_fields_only() {
    let dir = temp_dir("writes-sap-update");
    let s = Service::start(&dir, None).await;
    let (mock, id) = sap_for_writes(&s).await;
    let po = format!("/v1/connections/{id}/purchase-orders");
    create_sap_order(&s, &po).await;
    let (status, _, updated) = s
        .call(
            "PATCH",
            &format!("{po}/4500009001"),
            Some(json!({"currency": "USD"})),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        (
            updated["data"]["currency"].as_str(),
            updated["data"]["custom_fields"]["cost_center"].as_str()
        ),
        (Some("USD"), Some("CC-42"))
    );
    let (method, path, sent) = mock.writes.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        (
            method.as_str(),
            path.ends_with("A_PurchaseOrder('4500009001')")
        ),
        ("PATCH", true),
        "{path}"
    );
    assert_eq!(sent, json!({"DocumentCurrency": "USD"}));
    finish(s, &dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_of_a_record_the_system_does_not_have_is_not_found() {
    let dir = temp_dir("writes-sap-missing");
    let s = Service::start(&dir, None).await;
    let (_, id) = sap_for_writes(&s).await;
    let po = format!("/v1/connections/{id}/purchase-orders");
    assert_eq!(
        s.call(
            "PATCH",
            &format!("{po}/4599999999"),
            Some(json!({"currency": "USD"}))
        )
        .await
        .0,
        404
    );
    finish(s, &dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_field_is_refused_before_anything_is_sent() {
    let dir = temp_dir("writes-sap-read-only");
    let s = Service::start(&dir, None).await;
    let (mock, id) = sap_for_writes(&s).await;
    let po = format!("/v1/connections/{id}/purchase-orders");
    create_sap_order(&s, &po).await;
    let writes = mock.writes.lock().unwrap().len();
    let (status, _, e) = s
        .call(
            "PATCH",
            &format!("{po}/4500009001"),
            Some(json!({"status": "approved"})),
        )
        .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (422, Some("unwritable_fields")),
        "{e}"
    );
    assert_eq!(mock.writes.lock().unwrap().len(), writes);
    finish(s, &dir).await;
}

/// The system refuses the record: 422 with its message, logged with the upstream's
/// status; the connection stays healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_the_system_rejects_is_a_422_with_its_message_and_the_connection_stays_healthy() {
    let dir = temp_dir("writes-sap-rejected");
    let s = Service::start(&dir, None).await;
    let (_, id) = sap_for_writes(&s).await;
    let po = format!("/v1/connections/{id}/purchase-orders");
    let (status, _, e) = s
        .call(
            "POST",
            &po,
            Some(json!({"number": "4500009002", "vendor": {"id": "99999999"}})),
        )
        .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (422, Some("upstream_rejected")),
        "{e}"
    );
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Supplier 99999999 does not exist"),
        "{e}"
    );
    assert_eq!(s.status(&id).await["status"], "healthy");
    let (_, log) = s
        .get(&format!("/v1/connections/{id}/errors?kind=rejected"))
        .await;
    assert_eq!(log["data"][0]["upstream_status"], 400);
    finish(s, &dir).await;
}

/// An outage during writes counts for the breaker like one during reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_during_writes_opens_the_breaker() {
    let dir = temp_dir("writes-sap-outage");
    let s = Service::start(&dir, None).await;
    let (mock, id) = sap_for_writes(&s).await;
    let po = format!("/v1/connections/{id}/purchase-orders");
    create_sap_order(&s, &po).await;
    mock.set(Switches {
        fail_with: Some(503),
        ..Switches::default()
    });
    for _ in 0..2 {
        let (status, _, e) = s
            .call(
                "PATCH",
                &format!("{po}/4500009001"),
                Some(json!({"currency": "CHF"})),
            )
            .await;
        assert_eq!(status, 502, "{e}");
    }
    let calls = mock.calls();
    let (status, _, e) = s
        .call(
            "PATCH",
            &format!("{po}/4500009001"),
            Some(json!({"currency": "CHF"})),
        )
        .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (503, Some("circuit_open"))
    );
    assert_eq!(mock.calls(), calls, "not sent while the breaker is open");
    finish(s, &dir).await;
}

/// A live Maximo connection with an API key, and its purchase orders' path.
async fn maximo_for_writes(s: &Service) -> (Arc<mock::Mock>, String) {
    let (mbase, mmock) = mock::start("maximo-api-key-123").await;
    let mx = s
        .live(
            "ibm-maximo",
            json!({"base_url": mbase}),
            json!({"type": "api_key", "header": "apikey", "key": "maximo-api-key-123"}),
        )
        .await;
    (mmock, format!("/v1/connections/{mx}/purchase-orders"))
}

/// Creates order PO-9001 in Maximo through `mpo`; the answer.
async fn create_maximo_order(s: &Service, mpo: &str) -> Value {
    let (status, _, created) = s
        .call("POST", mpo, Some(json!({"number": "PO-9001", "vendor": {"id": "GRAINGER"}, "currency": "USD", "order_date": "2024-06-03"})))
        .await;
    assert_eq!(status, 201, "{created}");
    created
}

/// Maximo: a create with `properties`, read back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_maximo_create_reads_back() {
    let dir = temp_dir("writes-maximo-create");
    let s = Service::start(&dir, None).await;
    let (_, mpo) = maximo_for_writes(&s).await;
    let created = create_maximo_order(&s, &mpo).await;
    assert_eq!(
        (
            created["data"]["id"].as_str(),
            created["data"]["order_date"].as_str()
        ),
        (Some("PO-9001"), Some("2024-06-03"))
    );
    finish(s, &dir).await;
}

/// Maximo: an update at the record's href, with the given field only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_maximo_update_goes_to_the_records_href() {
    let dir = temp_dir("writes-maximo-update");
    let s = Service::start(&dir, None).await;
    let (mmock, mpo) = maximo_for_writes(&s).await;
    create_maximo_order(&s, &mpo).await;
    let (status, _, updated) = s
        .call(
            "PATCH",
            &format!("{mpo}/PO-9001"),
            Some(json!({"currency": "CAD"})),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["data"]["currency"], "CAD");
    let (_, path, sent) = mmock.writes.lock().unwrap().last().cloned().unwrap();
    assert!(path.ends_with("/mxapipo/_PO-9001"), "{path}");
    assert_eq!(sent, json!({"currencycode": "CAD"}));
    finish(s, &dir).await;
}

/// A live Dynamics connection with a bearer token, and its purchase orders' path.
async fn dynamics_for_writes(s: &Service) -> (Arc<mock::Mock>, String) {
    let (dbase, dmock) = mock::start("bearer-token-xyz").await;
    let d = s
        .live(
            "dynamics-365-fo",
            json!({"base_url": dbase}),
            json!({"type": "bearer", "token": "bearer-token-xyz"}),
        )
        .await;
    (dmock, format!("/v1/connections/{d}/purchase-orders"))
}

/// Creates order PO-009001 in Dynamics through `dpo`; the answer.
async fn create_dynamics_order(s: &Service, dpo: &str) -> Value {
    let (status, _, created) = s
        .call(
            "POST",
            dpo,
            Some(json!({"number": "PO-009001", "vendor": {"id": "US-104"}, "currency": "USD"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    created
}

/// Dynamics: a create to the entity set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dynamics_create_goes_to_the_entity_set() {
    let dir = temp_dir("writes-dynamics-create");
    let s = Service::start(&dir, None).await;
    let (dmock, dpo) = dynamics_for_writes(&s).await;
    let created = create_dynamics_order(&s, &dpo).await;
    assert_eq!(created["data"]["id"], "PO-009001");
    let (_, path, sent) = dmock.writes.lock().unwrap().last().cloned().unwrap();
    assert!(path.ends_with("/data/PurchaseOrderHeadersV2"), "{path}");
    assert_eq!(sent["OrderVendorAccountNumber"], "US-104");
    finish(s, &dir).await;
}

/// Dynamics: an update by legal entity and key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dynamics_update_goes_by_legal_entity_and_key() {
    let dir = temp_dir("writes-dynamics-update");
    let s = Service::start(&dir, None).await;
    let (dmock, dpo) = dynamics_for_writes(&s).await;
    create_dynamics_order(&s, &dpo).await;
    let (status, _, updated) = s
        .call(
            "PATCH",
            &format!("{dpo}/PO-009001"),
            Some(json!({"currency": "EUR"})),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["data"]["currency"], "EUR");
    let (method, path, _) = dmock.writes.lock().unwrap().last().cloned().unwrap();
    assert_eq!(method, "PATCH");
    assert!(
        path.contains("PurchaseOrderHeadersV2(dataAreaId="),
        "{path}"
    );
    finish(s, &dir).await;
}

/// Outbound calls are checked when connecting, on the resolved address: a webhook and
/// a live upstream stored while the operator allowed loopback (by the name
/// `localhost`, which resolves to 127.0.0.1, and by address) are refused with nothing
/// sent once the service runs without that allowance, and the refusal is logged per
/// connection and per delivery; allowed again, the same calls go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_addresses_are_refused_when_connecting_even_if_stored_before() {
    let dir = temp_dir("egress");
    let s = Service::start(&dir, None).await;
    let (by_name, url, _named_receiver) = receiver().await;
    let named = subscribe(
        &s,
        &by_name,
        &url.replace("127.0.0.1", "localhost"),
        &["mapping.updated"],
    )
    .await;
    let (by_address, url, _literal_receiver) = receiver().await;
    let literal = subscribe(&s, &by_address, &url, &["mapping.updated"]).await;
    let (base, mock) = mock::start(&format!("crosswalk:{PASSWORD}")).await;
    let live = s
        .live(
            "sap-s4hana",
            json!({"base_url": base.replace("127.0.0.1", "localhost")}),
            json!({"type": "basic", "username": "crosswalk", "password": PASSWORD}),
        )
        .await;
    let orders = format!("/v1/connections/{live}/purchase-orders?page_size=2");
    let (status, page) = s.get(&orders).await;
    assert_eq!(status, 200, "allowed, `localhost` is reached: {page}");
    let (_, _, c) = s
        .call(
            "POST",
            "/v1/connections",
            Some(json!({"system": "sap-s4hana", "name": "sb", "mode": "sandbox"})),
        )
        .await;
    let mapping = format!(
        "/v1/connections/{}/mappings/purchase_order",
        c["id"].as_str().unwrap()
    );
    let change =
        |n: usize| json!({"overrides": [{"target": format!("custom_fields.f{n}"), "path": "$.X"}]});
    let (status, _, _) = s.call("PUT", &mapping, Some(change(1))).await;
    assert_eq!(status, 200);
    wait_delivered(&s, &named).await;
    wait_delivered(&s, &literal).await;
    let key = s.stop().await;

    // The same store, without the allowance: nothing is sent to either.
    let s = Service::start_with(&dir, Some(key.clone()), Policy::deny_internal()).await;
    let data_calls = *mock.data_calls.lock().unwrap();
    let (status, answer) = s.get(&orders).await;
    assert_eq!(status, 502, "{answer}");
    assert_eq!(answer["error"]["code"], "upstream_unreachable");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(
            "its address is refused: `localhost` resolves only to refused addresses: 127.0.0.1 is a loopback address (127.0.0.0/8)"
        ) && message.contains("--allow-upstream"),
        "{message}"
    );
    assert_eq!(
        *mock.data_calls.lock().unwrap(),
        data_calls,
        "nothing reached the upstream"
    );
    let (_, errors) = s.get(&format!("/v1/connections/{live}/errors")).await;
    assert_eq!(errors["data"][0]["kind"], "network", "{errors}");
    assert!(
        errors["data"][0]["message"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1 is a loopback address"),
        "{errors}"
    );
    let (status, _, _) = s.call("PUT", &mapping, Some(change(2))).await;
    assert_eq!(status, 200);
    for (sub, why) in [
        (
            &named,
            "`localhost` resolves only to refused addresses: 127.0.0.1 is a loopback address (127.0.0.0/8)",
        ),
        (
            &literal,
            "the address is refused: 127.0.0.1 is a loopback address (127.0.0.0/8)",
        ),
    ] {
        let mut log = Value::Null;
        for _ in 0..200 {
            log = s.get(&format!("/v1/webhooks/{sub}/deliveries")).await.1;
            if log["data"][0]["outcome"] == "failed" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(log["data"][0]["outcome"], "failed", "{log}");
        let error = log["data"][0]["error"].as_str().unwrap();
        assert!(
            error.starts_with("not sent:") && error.contains(why),
            "{error}"
        );
    }
    for r in [&by_name, &by_address] {
        assert!(
            r.of("mapping.updated")
                .iter()
                .all(|e| e["data"]["version"] == 1),
            "nothing was delivered without the allowance"
        );
    }
    s.stop().await;

    // Allowed again: the retried deliveries and the reads go through. A retry is due
    // when its backoff says, which doubles with every refused attempt before the stop
    // (how many depends on how fast this machine ran the steps above): up to a minute.
    let s = Service::start(&dir, Some(key)).await;
    for r in [&by_name, &by_address] {
        eventually_within(
            "the redelivery once allowed",
            Duration::from_secs(60),
            || {
                r.of("mapping.updated")
                    .iter()
                    .any(|e| e["data"]["version"] == 2)
            },
        )
        .await;
    }
    let (status, page) = s.get(&orders).await;
    assert_eq!(status, 200, "{page}");
    s.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Requests that find their OAuth token refused together fetch one new token, not one
/// each (single flight), and all go on with it.
#[tokio::test]
async fn requests_whose_token_was_revoked_fetch_one_new_token_together() {
    let dir = temp_dir("oauth-single-flight");
    let s = Service::start(&dir, None).await;
    let (base, mock) = mock::start("client-secret-1").await;
    *mock.token_lifetime_s.lock().unwrap() = 3600;
    let d = s
        .live("dynamics-365-fo", json!({"base_url": base, "page_size": 5}), json!({"type": "oauth2", "token_url": format!("{base}/oauth/token"), "client_id": "crosswalk", "client_secret": "client-secret-1"}))
        .await;
    let path = format!("/v1/connections/{d}/vendors");
    assert_eq!(s.get(&path).await.0, 200);
    let before = *mock.token_calls.lock().unwrap();
    // The token in use is revoked: every request now gets a 401 with it.
    mock.tokens.lock().unwrap().clear();
    let answers = futures_util::future::join_all((0..8).map(|_| s.get(&path))).await;
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
    }
    assert_eq!(
        *mock.token_calls.lock().unwrap() - before,
        1,
        "each request fetched its own token"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `verify` checks a live connection's credentials against the system before anything
/// is stored; without it nothing is called, and the answer says they were not checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_connection_is_verified_on_creation_when_asked_and_says_whether_it_was() {
    let dir = temp_dir("live-verify");
    let s = Service::start(&dir, None).await;
    let (base, mock) = mock::start(&format!("crosswalk:{PASSWORD}")).await;
    let new = |password: &str, verify: bool| {
        json!({"system": "sap-s4hana", "name": "checked", "mode": "live", "verify": verify,
               "upstream": {"base_url": base},
               "credentials": {"type": "basic", "username": "crosswalk", "password": password}})
    };
    // Unchecked: no call, and the answer says so.
    let (status, _, c) = s
        .call("POST", "/v1/connections", Some(new(PASSWORD, false)))
        .await;
    assert_eq!(status, 201, "{c}");
    assert_eq!(c["credentials_verified"], false, "{c}");
    assert_eq!(mock.calls(), 0);
    // Checked: one small read, then created.
    let (status, _, c) = s
        .call("POST", "/v1/connections", Some(new(PASSWORD, true)))
        .await;
    assert_eq!(status, 201, "{c}");
    assert_eq!(c["credentials_verified"], true, "{c}");
    assert_eq!(mock.calls(), 1);
    let (_, listed) = s.get("/v1/connections").await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 2, "{listed}");
    // Refused by the system: 422 naming why, and nothing is created.
    let (status, _, e) = s
        .call("POST", "/v1/connections", Some(new("wrong", true)))
        .await;
    assert_eq!(status, 422, "{e}");
    assert_eq!(e["error"]["code"], "verification_failed", "{e}");
    assert_eq!(e["error"]["details"]["kind"], "auth", "{e}");
    assert_eq!(e["error"]["details"]["upstream_status"], 401, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nothing was created"),
        "{e}"
    );
    let (_, listed) = s.get("/v1/connections").await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 2, "{listed}");
    // A sandbox has nothing to verify; it says so, and a sandbox answer has no flag.
    let (status, _, e) = s
        .call(
            "POST",
            "/v1/connections",
            Some(json!({"system": "sap-s4hana", "name": "s", "mode": "sandbox", "verify": true})),
        )
        .await;
    assert_eq!(status, 422, "{e}");
    assert_eq!(e["error"]["code"], "invalid_connection", "{e}");
    let (status, _, c) = s
        .call(
            "POST",
            "/v1/connections",
            Some(json!({"system": "sap-s4hana", "name": "s", "mode": "sandbox"})),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    assert!(c.get("credentials_verified").is_none(), "{c}");
    finish(s, &dir).await;
}

/// `POST /v1/webhooks/{id}/test` sends that subscription a signed `webhook.test`
/// event, whichever events it receives, and nobody else; it is in its delivery log.
/// One test at a time: while one is still in the outbox, another is 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_delivery_reaches_only_its_subscription_and_its_log() {
    let dir = temp_dir("webhook-test");
    let s = Service::start(&dir, None).await;
    let (r, url, _receiver) = receiver().await;
    let tested = subscribe(&s, &r, &url, &["mapping.updated"]).await;
    let (other, other_url, _other) = receiver().await;
    subscribe(&s, &other, &other_url, &["mapping.updated"]).await;
    let test = format!("/v1/webhooks/{tested}/test");

    // The receiver fails at first: the test stays in the outbox, retried.
    *r.answer.lock().unwrap() = 503;
    let (status, _, answer) = s.call("POST", &test, None).await;
    assert_eq!(status, 202, "{answer}");
    let event = answer["event_id"].as_str().unwrap().to_owned();
    eventually("a first attempt at the receiver", || {
        !r.of("webhook.test").is_empty()
    })
    .await;
    let (status, _, refused) = s.call("POST", &test, None).await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "test_pending", "{refused}");
    assert_eq!(refused["error"]["details"]["event_id"], event.as_str());

    // Delivered: signed, to this subscription, in its log; then another may be asked.
    *r.answer.lock().unwrap() = 200;
    let mut delivered = false;
    for _ in 0..200 {
        let (_, log) = s.get(&format!("/v1/webhooks/{tested}/deliveries")).await;
        delivered = log["data"].as_array().unwrap().iter().any(|a| {
            a["event_id"] == event.as_str()
                && a["event_type"] == "webhook.test"
                && a["outcome"] == "delivered"
        });
        if delivered {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(delivered, "the test was never delivered");
    let got = r.of("webhook.test").pop().unwrap();
    assert_eq!(got["id"], event.as_str(), "{got}");
    assert_eq!(got["data"]["subscription_id"], tested.as_str(), "{got}");
    assert_eq!(*r.bad_signatures.lock().unwrap(), 0);
    assert!(
        other.of("webhook.test").is_empty(),
        "another subscription got the test"
    );
    let (status, _, answer) = s.call("POST", &test, None).await;
    assert_eq!(status, 202, "{answer}");

    let (status, _, answer) = s.call("POST", "/v1/webhooks/whk_none/test", None).await;
    assert_eq!(status, 404, "{answer}");
    finish(s, &dir).await;
}

/// What a plugin prints while a connection's records are read is kept in the
/// connection's plugin log: one line per printed line, with its level, plugin,
/// function and the request's id, newest first, filtered as asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_plugin_prints_is_kept_in_the_connections_plugin_log() {
    let dir = temp_dir("plugin-log");
    let s = Service::start(&dir, None).await;
    let (_, _, c) = s
        .call(
            "POST",
            "/v1/connections",
            Some(json!({"system": "sap-s4hana", "name": "sb", "mode": "sandbox"})),
        )
        .await;
    let id = c["id"].as_str().unwrap().to_owned();
    let mapping = s
        .bind_plugins(&id, "purchase_order", &["crosswalk-fixture-hostile"])
        .await;
    let overrides = json!({"overrides": [{"target": "custom_fields.checked", "path": "$.PurchaseOrder", "transforms": [{"plugin": "hostile", "function": "pieces"}]}]});
    let (status, _, m) = s.call("PUT", &mapping, Some(overrides)).await;
    assert_eq!(status, 200, "{m}");
    let log_uri = format!("/v1/connections/{id}/plugin-log");
    let (status, empty) = s.get(&log_uri).await;
    assert_eq!((status, empty), (200, json!({"data": []})));

    let response = s
        .client
        .get(format!(
            "{}/v1/connections/{id}/purchase-orders?page_size=2",
            s.base
        ))
        .bearer_auth(&s.key)
        .header("x-request-id", "req-printing-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (status, log) = s.get(&log_uri).await;
    assert_eq!(status, 200, "{log}");
    let lines = log["data"].as_array().unwrap();
    // Two records, each printing one line in pieces and one without its end.
    assert_eq!(lines.len(), 4, "{log}");
    let newest = &lines[0];
    assert_eq!(newest["message"], "no end", "{log}");
    assert_eq!(lines[1]["message"], "one line, in pieces", "{log}");
    for (key, value) in [
        ("level", "info"),
        ("source", "stdout"),
        ("plugin", "hostile"),
        ("function", "pieces"),
        ("request_id", "req-printing-1"),
        ("entity", "purchase_order"),
    ] {
        assert_eq!(newest[key], value, "{key} of {newest}");
    }
    // Filters: by level (info and above; none is warn), by request and by count.
    let (_, warn) = s.get(&format!("{log_uri}?level=warn")).await;
    assert_eq!(warn["data"], json!([]), "{warn}");
    let (_, other) = s.get(&format!("{log_uri}?request_id=req-other")).await;
    assert_eq!(other["data"], json!([]), "{other}");
    let (_, one) = s.get(&format!("{log_uri}?plugin=hostile&limit=1")).await;
    assert_eq!(one["data"].as_array().unwrap().len(), 1, "{one}");
    // Bad filters say what was wrong.
    let (status, bad) = s.get(&format!("{log_uri}?level=loud")).await;
    assert_eq!(status, 400, "{bad}");
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`loud` is not a log level"),
        "{bad}"
    );
    let (status, bad) = s.get(&format!("{log_uri}?limit=1001")).await;
    assert_eq!(status, 400, "{bad}");
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap()
            .contains("between 1 and 1000"),
        "{bad}"
    );
    finish(s, &dir).await;
}
