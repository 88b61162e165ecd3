//! The HTTP API through the router, without a socket (`oneshot`).

use crate::{block_on, support};

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use crosswalk_plugin_host::{HostConfig, PluginHost};
use crosswalk_service::egress::{Policy, parse_range};
use crosswalk_service::http::{
    AppState, REQUEST_ID_HEADER, ServiceOptions, VERSION_HEADER, app, openapi,
};
use crosswalk_service::quota::Quotas;
use crosswalk_service::store::{Role, SledStore, Store};
use serde_json::{Value, json};
use tower::ServiceExt;

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

/// The fixture of most tests: outbound calls may go to 127.0.0.0/8, where test
/// receivers listen.
fn fixture(name: &str, body_limit: usize) -> Fixture {
    let options = ServiceOptions {
        egress: Policy::allowing([parse_range("127.0.0.0/8").unwrap()]),
        ..ServiceOptions::default()
    };
    fixture_with(name, body_limit, options)
}

/// A fixture whose server has these quotas (and reaches 127.0.0.0/8).
fn fixture_quotas(name: &str, body_limit: usize, quotas: Quotas) -> Fixture {
    let options = ServiceOptions {
        egress: Policy::allowing([parse_range("127.0.0.0/8").unwrap()]),
        quotas,
        ..ServiceOptions::default()
    };
    fixture_with(name, body_limit, options)
}

fn fixture_with(name: &str, body_limit: usize, options: ServiceOptions) -> Fixture {
    fixture_of(name, |store, host| {
        AppState::with_options(store, host, body_limit, options)
    })
}

/// A fixture whose server is in the default state: what `crosswalk serve` has without
/// `--allow-upstream` and without a secret key.
fn fixture_by_default(name: &str) -> Fixture {
    fixture_of(name, |store, host| AppState::new(store, host, 1 << 20))
}

/// A fixture over the state that `state` builds on the store and the plugin host.
fn fixture_of(
    name: &str,
    state: impl FnOnce(Arc<dyn Store>, Arc<PluginHost>) -> AppState,
) -> Fixture {
    let dir = std::env::temp_dir().join(format!("crosswalk-http-{name}-{}", std::process::id()));
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
    let host = Arc::new(
        PluginHost::new(HostConfig {
            max_instances: 4,
            ..HostConfig::default()
        })
        .unwrap(),
    );
    Fixture {
        app: app(state(store, host)),
        alice,
        bob,
        admin,
        dir,
    }
}

struct Answer {
    status: StatusCode,
    version: Option<String>,
    headers: axum::http::HeaderMap,
    body: Value,
}

async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    key: Option<&str>,
    body: impl Into<Body>,
) -> Answer {
    call_with(app, method, uri, key, &[], body).await
}

/// [`call`] with more request headers.
async fn call_with(
    app: &Router,
    method: &str,
    uri: &str,
    key: Option<&str>,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> Answer {
    send(
        app,
        method,
        uri,
        key,
        Some("application/json"),
        headers,
        body,
    )
    .await
}

/// A call with a body of this content type (or none).
async fn call_as(
    app: &Router,
    method: &str,
    uri: &str,
    key: Option<&str>,
    content_type: Option<&str>,
    body: impl Into<Body>,
) -> Answer {
    send(app, method, uri, key, content_type, &[], body).await
}

/// A request with a body of this content type (or none) and more headers.
async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    key: Option<&str>,
    content_type: Option<&str>,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> Answer {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let response = app
        .clone()
        .oneshot(request.body(body.into()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let version = response
        .headers()
        .get(VERSION_HEADER)
        .map(|v| v.to_str().unwrap().to_owned());
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    conforms(method, uri, status, &headers, &body);
    Answer {
        status,
        version,
        headers,
        body,
    }
}

/// Checks an answer against the OpenAPI document: its status is documented for the
/// operation, and a JSON body fits the documented schema. Every call of these tests
/// goes through here, so the document cannot drift from what the service answers.
fn conforms(
    method: &str,
    uri: &str,
    status: StatusCode,
    headers: &axum::http::HeaderMap,
    body: &Value,
) {
    let doc = openapi::served();
    let path = uri.split('?').next().unwrap();
    let segments: Vec<&str> = path.split('/').collect();
    let template = doc["paths"].as_object().unwrap().keys().find(|t| {
        let ts: Vec<&str> = t.split('/').collect();
        ts.len() == segments.len()
            && ts
                .iter()
                .zip(&segments)
                .all(|(t, s)| t == s || (t.starts_with('{') && !s.is_empty()))
    });
    let Some(template) = template else {
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "{method} {uri} is not documented"
        );
        return;
    };
    let operation = &doc["paths"][template][method.to_ascii_lowercase()];
    if operation.is_null() {
        assert_eq!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {template} is not documented"
        );
        return;
    }
    let answer = &operation["responses"][status.as_str()];
    assert!(
        answer.is_object(),
        "{method} {template} answered {status}, which its document does not list: {body}"
    );
    let json = headers
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap().starts_with("application/json"));
    if !json {
        return;
    }
    let mut schema = answer["content"]["application/json"]["schema"].clone();
    assert!(
        schema.is_object(),
        "{method} {template} {status}: a JSON answer is not documented"
    );
    schema["components"] = doc["components"].clone();
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&schema)
        .unwrap_or_else(|e| panic!("{method} {template} {status}: the schema does not build: {e}"));
    let problems: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        problems.is_empty(),
        "{method} {template} {status}: the answer does not fit its documented schema: {problems:?}\n{body}"
    );
}

fn sample(path: &str) -> String {
    std::fs::read_to_string(support::root().join(path)).unwrap()
}

async fn new_connection(f: &Fixture, key: &str, system: &str) -> String {
    let a = call(
        &f.app,
        "POST",
        "/v1/connections",
        Some(key),
        json!({"system": system, "name": "test", "mode": "sandbox"}).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    a.body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn keys_are_required_and_tenants_are_isolated() {
    let f = fixture("isolation", 1 << 20);
    let a = call(&f.app, "GET", "/v1/connections", None, "").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.body["error"]["code"], "unauthorized");
    let a = call(&f.app, "GET", "/v1/connections", Some("cw_wrong"), "").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);

    let id = new_connection(&f, &f.alice, "sap-s4hana").await;
    let a = call(
        &f.app,
        "GET",
        &format!("/v1/connections/{id}"),
        Some(&f.alice),
        "",
    )
    .await;
    assert_eq!(
        (a.status, a.body["system"].clone()),
        (StatusCode::OK, json!("sap-s4hana"))
    );
    // Bob cannot see, map with, change or delete Alice's connection: 404, as if it did not exist.
    for (method, uri, body) in [
        ("GET", format!("/v1/connections/{id}"), String::new()),
        ("DELETE", format!("/v1/connections/{id}"), String::new()),
        (
            "GET",
            format!("/v1/connections/{id}/mappings/purchase_order"),
            String::new(),
        ),
        (
            "PUT",
            format!("/v1/connections/{id}/mappings/purchase_order"),
            json!({"overrides": []}).to_string(),
        ),
        (
            "POST",
            format!("/v1/connections/{id}/transform/purchase_order"),
            json!({"PurchaseOrder": "1"}).to_string(),
        ),
    ] {
        let a = call(&f.app, method, &uri, Some(&f.bob), body).await;
        assert_eq!(
            a.status,
            StatusCode::NOT_FOUND,
            "{method} {uri}: {}",
            a.body
        );
        assert_eq!(a.body["error"]["message"], format!("no connection `{id}`"));
    }
    let a = call(&f.app, "GET", "/v1/connections", Some(&f.bob), "").await;
    assert_eq!(a.body["data"], json!([]));
    let a = call(&f.app, "GET", "/v1/connections", Some(&f.alice), "").await;
    assert_eq!(a.body["data"].as_array().unwrap().len(), 1);

    // Only the admin creates tenants.
    let a = call(
        &f.app,
        "POST",
        "/v1/tenants",
        Some(&f.alice),
        json!({"name": "eve"}).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = call(
        &f.app,
        "POST",
        "/v1/tenants",
        Some(&f.admin),
        json!({"name": "carol"}).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED);
    let carol = a.body["api_key"]["secret"].as_str().unwrap().to_owned();
    let a = call(&f.app, "GET", "/v1/connections", Some(&carol), "").await;
    assert_eq!(
        (a.status, a.body["data"].clone()),
        (StatusCode::OK, json!([]))
    );

    let a = call(
        &f.app,
        "DELETE",
        &format!("/v1/connections/{id}"),
        Some(&f.alice),
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let a = call(
        &f.app,
        "GET",
        &format!("/v1/connections/{id}"),
        Some(&f.alice),
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn transform_maps_samples_and_a_change_shows_on_the_next_request() {
    let f = fixture("transform", 1 << 20);
    let id = new_connection(&f, &f.alice, "sap-s4hana").await;
    let uri = format!("/v1/connections/{id}/transform/purchase_order");
    let payload = sample("examples/payloads/sap-s4hana/purchase_order/with_custom_fields.json");
    let expected: Value = serde_json::from_str(&sample(
        "examples/payloads/sap-s4hana/purchase_order/with_custom_fields.expected.json",
    ))
    .unwrap();
    let a = call(&f.app, "POST", &uri, Some(&f.alice), payload.clone()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.version.as_deref(), Some("0"));
    assert_eq!(a.body["data"], expected);

    let collection = sample("examples/payloads/sap-s4hana/purchase_order/collection.json");
    let a = call(&f.app, "POST", &uri, Some(&f.alice), collection).await;
    let expected_many: Value = serde_json::from_str(&sample(
        "examples/payloads/sap-s4hana/purchase_order/collection.expected.json",
    ))
    .unwrap();
    assert_eq!(a.body["data"], expected_many);

    let change = json!({"overrides": [{"target": "custom_fields.cost_center", "path": "$.ZZ1_CostCenter_PDH"}]});
    let mapping_uri = format!("/v1/connections/{id}/mappings/purchase_order");
    let a = call(
        &f.app,
        "PUT",
        &mapping_uri,
        Some(&f.alice),
        change.to_string(),
    )
    .await;
    assert_eq!(
        (a.status, a.version.as_deref()),
        (StatusCode::OK, Some("1")),
        "{}",
        a.body
    );
    let a = call(
        &f.app,
        "POST",
        &format!("{uri}?remote_data=true"),
        Some(&f.alice),
        payload.clone(),
    )
    .await;
    assert_eq!(a.version.as_deref(), Some("1"));
    assert_eq!(
        a.body["data"]["custom_fields"],
        json!({"cost_center": "17101301"})
    );
    assert_eq!(a.body["data"]["remote_data"]["PurchaseOrder"], "4500000187");

    let a = call(&f.app, "GET", &mapping_uri, Some(&f.alice), "").await;
    let rules = a.body["mapping"]["rules"].as_array().unwrap();
    let custom = rules
        .iter()
        .find(|r| r["target"] == "custom_fields.cost_center")
        .unwrap();
    assert_eq!(custom["origin"], "custom");

    let a = call(
        &f.app,
        "POST",
        &format!("{mapping_uri}/rollback"),
        Some(&f.alice),
        json!({"version": 0}).to_string(),
    )
    .await;
    // Version 0 is the system's default: restoring it is a new version.
    assert_eq!(
        (a.status, a.version.as_deref()),
        (StatusCode::OK, Some("2")),
        "{}",
        a.body
    );
    let a = call(
        &f.app,
        "POST",
        &format!("{mapping_uri}/rollback"),
        Some(&f.alice),
        json!({"version": 9}).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    // Empty overrides are the mapping already: nothing is stored.
    let empty = json!({"overrides": []});
    let a = call(
        &f.app,
        "PUT",
        &mapping_uri,
        Some(&f.alice),
        empty.to_string(),
    )
    .await;
    assert_eq!(
        (a.status, a.version.as_deref()),
        (StatusCode::OK, Some("2"))
    );
    let a = call(
        &f.app,
        "POST",
        &format!("{mapping_uri}/rollback"),
        Some(&f.alice),
        json!({"version": 1}).to_string(),
    )
    .await;
    assert_eq!(
        (a.status, a.version.as_deref()),
        (StatusCode::OK, Some("3"))
    );
    let a = call(
        &f.app,
        "GET",
        &format!("{mapping_uri}/history"),
        Some(&f.alice),
        "",
    )
    .await;
    let versions: Vec<u64> = a.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    // Version 0, the shipped default, is listed first.
    assert_eq!(versions, vec![0, 1, 2, 3]);
    assert_eq!(a.body["data"][0]["author"], "crosswalk");
    assert_eq!(a.body["data"][0]["overrides"], json!({"overrides": []}));
    assert_eq!(a.body["data"][2]["rollback_of"], 0);
    assert_eq!(a.body["data"][3]["rollback_of"], 1);
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let f = fixture("bad-input", 4096);
    let id = new_connection(&f, &f.alice, "ibm-maximo").await;
    let mapping_uri = format!("/v1/connections/{id}/mappings/work_order");

    let a = call(
        &f.app,
        "PUT",
        &mapping_uri,
        Some(&f.alice),
        json!({"overrides": [{"target": "titel", "path": "$.x"}]}).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(a.body["error"]["code"], "invalid_mapping");
    assert!(
        a.body["error"]["details"]["problems"][0]
            .as_str()
            .unwrap()
            .contains("did you mean `title`?"),
        "{}",
        a.body
    );
    let a = call(&f.app, "GET", &mapping_uri, Some(&f.alice), "").await;
    assert_eq!(
        a.version.as_deref(),
        Some("0"),
        "a failed change changed nothing"
    );

    let a = call(
        &f.app,
        "PUT",
        &mapping_uri,
        Some(&f.alice),
        "{\"overrides\": [,]}",
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.body["error"]["details"], json!({"line": 1, "column": 16}));
    let a = call(
        &f.app,
        "POST",
        "/v1/connections",
        Some(&f.alice),
        json!({"system": "sap-r3", "name": "x", "mode": "sandbox"}).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown system `sap-r3`")
    );
    let a = call(
        &f.app,
        "POST",
        "/v1/connections",
        Some(&f.alice),
        json!({"system": "sap-s4hana", "name": "x", "mode": "sandbox", "colour": 1}).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `colour`"),
        "{}",
        a.body
    );
    let a = call(
        &f.app,
        "GET",
        &format!("/v1/connections/{id}/mappings/invoice"),
        Some(&f.alice),
        "",
    )
    .await;
    assert_eq!(
        (a.status, a.body["error"]["message"].clone()),
        (StatusCode::NOT_FOUND, json!("no entity `invoice`"))
    );
    let a = call(&f.app, "GET", "/v1/nothing", Some(&f.alice), "").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = call(&f.app, "PATCH", "/v1/connections", Some(&f.alice), "").await;
    assert_eq!(
        (a.status, a.body["error"]["code"].clone()),
        (StatusCode::METHOD_NOT_ALLOWED, json!("method_not_allowed"))
    );
    // A plugin is larger than the body limit of requests, and uploads all the same.
    let uom = support::rust_plugin_bytes("crosswalk-plugin-uom");
    assert!(uom.len() > 4096);
    let a = call(&f.app, "POST", "/v1/plugins", Some(&f.alice), uom).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let big = json!({"wonum": "x".repeat(8192)}).to_string();
    let a = call(
        &f.app,
        "POST",
        &format!("/v1/connections/{id}/transform/work_order"),
        Some(&f.alice),
        big,
    )
    .await;
    assert_eq!(
        (a.status, a.body["error"]["code"].clone()),
        (StatusCode::PAYLOAD_TOO_LARGE, json!("payload_too_large"))
    );
    let a = call(
        &f.app,
        "POST",
        &format!("/v1/connections/{id}/transform/work_order"),
        Some(&f.alice),
        json!({"status": "APPR"}).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("target `id` is required"),
        "{}",
        a.body
    );
}

/// Uploads the uom plugin as alice; the answer.
async fn upload_uom(f: &Fixture) -> Answer {
    let uom = support::rust_plugin_bytes("crosswalk-plugin-uom");
    let a = call(&f.app, "POST", "/v1/plugins", Some(&f.alice), uom).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    a
}

/// The overrides that convert the lines' units from SAP's codes to ISO's with the uom
/// plugin.
fn uses_uom() -> Value {
    json!({"overrides": [{"target": "lines.unit_of_measure", "transforms": ["null_if_empty", {"plugin": "uom", "function": "convert", "args": {"from": "sap", "to": "iso"}}]}]})
}

/// Alice's SAP sandbox connection with the uom plugin uploaded: the plugin's sha256,
/// the connection's id and its purchase orders' mapping path.
async fn uom_uploaded(f: &Fixture) -> (String, String, String) {
    let a = upload_uom(f).await;
    let sha = a.body["plugin"]["sha256"].as_str().unwrap().to_owned();
    let id = new_connection(f, &f.alice, "sap-s4hana").await;
    let mapping_uri = format!("/v1/connections/{id}/mappings/purchase_order");
    (sha, id, mapping_uri)
}

/// Binds the plugin `sha` to the mapping at `mapping_uri` with a 100 ms timeout; the
/// answer.
async fn bind_uom(f: &Fixture, mapping_uri: &str, sha: &str) -> Answer {
    let bind = json!([{"sha256": sha, "limits": {"timeout_ms": 100}}]);
    call(
        &f.app,
        "PUT",
        &format!("{mapping_uri}/plugins"),
        Some(&f.alice),
        bind.to_string(),
    )
    .await
}

/// [`uom_uploaded`], with the plugin bound (version 1) and the mapping converting the
/// units with it (version 2).
async fn uom_in_use(f: &Fixture) -> (String, String, String) {
    let (sha, id, mapping_uri) = uom_uploaded(f).await;
    let a = bind_uom(f, &mapping_uri, &sha).await;
    assert_eq!(
        (a.status, a.version.as_deref()),
        (StatusCode::OK, Some("1")),
        "{}",
        a.body
    );
    let a = call(
        &f.app,
        "PUT",
        &mapping_uri,
        Some(&f.alice),
        uses_uom().to_string(),
    )
    .await;
    assert_eq!(
        (a.status, a.version.as_deref()),
        (StatusCode::OK, Some("2")),
        "{}",
        a.body
    );
    (sha, id, mapping_uri)
}

/// Transforms the SAP sample order through alice's connection `id`; the answer.
async fn transform_standard_order(f: &Fixture, id: &str) -> Answer {
    let payload = sample("examples/payloads/sap-s4hana/purchase_order/standard.json");
    call(
        &f.app,
        "POST",
        &format!("/v1/connections/{id}/transform/purchase_order"),
        Some(&f.alice),
        payload,
    )
    .await
}

#[tokio::test]
async fn an_uploaded_plugin_answers_its_name_functions_inverses_and_interface() {
    let f = fixture("plugins-upload", 8 << 20);
    let a = upload_uom(&f).await;
    assert_eq!(a.body["plugin"]["name"], "uom");
    assert_eq!(a.body["functions"][0]["name"], "convert");
    assert_eq!(a.body["functions"][0]["inverse"], "convert_back");
    assert_eq!(a.body["interface"], "crosswalk:plugin@0.2.0");
}

#[tokio::test]
async fn an_upload_that_is_not_webassembly_is_an_invalid_plugin() {
    let f = fixture("plugins-not-wasm", 8 << 20);
    let a = call(
        &f.app,
        "POST",
        "/v1/plugins",
        Some(&f.alice),
        b"not wasm at all".to_vec(),
    )
    .await;
    assert_eq!(
        (a.status, a.body["error"]["code"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("invalid_plugin"))
    );
}

#[tokio::test]
async fn an_uploaded_plugin_is_listed_for_its_tenant_and_invisible_to_others() {
    let f = fixture("plugins-listed", 8 << 20);
    let a = upload_uom(&f).await;
    let sha = a.body["plugin"]["sha256"].as_str().unwrap().to_owned();
    let a = call(&f.app, "GET", "/v1/plugins", Some(&f.alice), "").await;
    assert_eq!(a.body["data"][0]["sha256"], sha.as_str());
    let a = call(
        &f.app,
        "GET",
        &format!("/v1/plugins/{sha}"),
        Some(&f.bob),
        "",
    )
    .await;
    assert_eq!(
        a.status,
        StatusCode::NOT_FOUND,
        "another tenant's plugin is invisible"
    );
}

#[tokio::test]
async fn a_mapping_cannot_use_a_plugin_that_is_not_bound_to_it() {
    let f = fixture("plugins-unbound", 8 << 20);
    let (_, _, mapping_uri) = uom_uploaded(&f).await;
    let a = call(
        &f.app,
        "PUT",
        &mapping_uri,
        Some(&f.alice),
        uses_uom().to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "not bound yet");
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no plugin `uom` is loaded"),
        "{}",
        a.body
    );
}

#[tokio::test]
async fn binding_a_plugin_makes_a_new_mapping_version() {
    let f = fixture("plugins-bind", 8 << 20);
    let (sha, _, mapping_uri) = uom_uploaded(&f).await;
    let a = bind_uom(&f, &mapping_uri, &sha).await;
    assert_eq!(
        (a.status, a.version.as_deref()),
        (StatusCode::OK, Some("1")),
        "{}",
        a.body
    );
}

#[tokio::test]
async fn a_binding_whose_limits_exceed_the_servers_is_refused() {
    let f = fixture("plugins-limits", 8 << 20);
    let (sha, _, mapping_uri) = uom_uploaded(&f).await;
    let too_much = json!([{"sha256": sha, "limits": {"timeout_ms": 999999}}]);
    let a = call(
        &f.app,
        "PUT",
        &format!("{mapping_uri}/plugins"),
        Some(&f.alice),
        too_much.to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// Bound, the plugin converts what the mapping gives it: SAP's `PC` to ISO's `H87`.
#[tokio::test]
async fn a_bound_plugin_converts_the_fields_of_a_transform() {
    let f = fixture("plugins-transform", 8 << 20);
    let (_, id, _) = uom_in_use(&f).await;
    let a = transform_standard_order(&f, &id).await;
    assert_eq!(
        a.body["data"]["lines"][0]["unit_of_measure"], "H87",
        "{}",
        a.body
    );
}

/// Preview: back to the default units, without applying it.
#[tokio::test]
async fn a_preview_without_the_plugin_shows_the_changes_and_applies_nothing() {
    let f = fixture("plugins-preview", 8 << 20);
    let (_, _, mapping_uri) = uom_in_use(&f).await;
    let payload = sample("examples/payloads/sap-s4hana/purchase_order/standard.json");
    let preview = json!({"overrides": {"overrides": []}, "payload": serde_json::from_str::<Value>(&payload).unwrap()});
    let a = call(
        &f.app,
        "POST",
        &format!("{mapping_uri}/preview"),
        Some(&f.alice),
        preview.to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["output"][0]["lines"][0]["unit_of_measure"], "PC");
    assert!(
        a.body["changes"].as_array().unwrap().contains(
            &json!({"path": "[0].lines[0].unit_of_measure", "before": "H87", "after": "PC"})
        ),
        "{}",
        a.body
    );
    let a = call(&f.app, "GET", &mapping_uri, Some(&f.alice), "").await;
    assert_eq!(a.version.as_deref(), Some("2"), "a preview applies nothing");
}

/// PATCH adds an entry and keeps the others: the plugin still converts.
#[tokio::test]
async fn a_mapping_patch_adds_an_entry_and_keeps_the_plugin_step() {
    let f = fixture("plugins-patch", 8 << 20);
    let (_, id, mapping_uri) = uom_in_use(&f).await;
    let patch = json!({"overrides": [{"target": "custom_fields.cost_center", "path": "$.ZZ1_CostCenter_PDH"}]});
    let a = call(
        &f.app,
        "PATCH",
        &mapping_uri,
        Some(&f.alice),
        patch.to_string(),
    )
    .await;
    assert_eq!(
        (a.status, a.version.as_deref()),
        (StatusCode::OK, Some("3")),
        "{}",
        a.body
    );
    let a = transform_standard_order(&f, &id).await;
    assert_eq!(a.body["data"]["lines"][0]["unit_of_measure"], "H87");
}

#[tokio::test]
async fn a_bound_plugin_cannot_be_deleted() {
    let f = fixture("plugins-delete-bound", 8 << 20);
    let (sha, _, _) = uom_in_use(&f).await;
    let a = call(
        &f.app,
        "DELETE",
        &format!("/v1/plugins/{sha}"),
        Some(&f.alice),
        "",
    )
    .await;
    assert_eq!(
        (a.status, a.body["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("plugin_bound"))
    );
}

#[tokio::test]
async fn unbinding_a_plugin_the_mapping_uses_is_refused() {
    let f = fixture("plugins-unbind-used", 8 << 20);
    let (_, _, mapping_uri) = uom_in_use(&f).await;
    let a = call(
        &f.app,
        "PUT",
        &format!("{mapping_uri}/plugins"),
        Some(&f.alice),
        "[]",
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// Once the mapping no longer uses the plugin, it can be unbound, and then deleted.
#[tokio::test]
async fn a_plugin_no_mapping_uses_is_unbound_and_deleted() {
    let f = fixture("plugins-unbind-delete", 8 << 20);
    let (sha, _, mapping_uri) = uom_in_use(&f).await;
    let a = call(
        &f.app,
        "PUT",
        &mapping_uri,
        Some(&f.alice),
        json!({"overrides": []}).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let a = call(
        &f.app,
        "PUT",
        &format!("{mapping_uri}/plugins"),
        Some(&f.alice),
        "[]",
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let a = call(
        &f.app,
        "DELETE",
        &format!("/v1/plugins/{sha}"),
        Some(&f.alice),
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_and_its_references_resolve() {
    let f = fixture("openapi", 1 << 20);
    let a = call(&f.app, "GET", "/openapi.json", None, "").await;
    assert_eq!(a.status, StatusCode::OK);
    let doc = a.body;
    assert_eq!(doc["openapi"], "3.1.0");
    let routes = crosswalk_service::http::routes();
    let mut ids = std::collections::BTreeSet::new();
    for route in &routes {
        let op = &doc["paths"][route.path][route.method.as_str().to_ascii_lowercase()];
        assert!(
            op.is_object(),
            "{} {} is not documented",
            route.method,
            route.path
        );
        assert!(
            ids.insert(op["operationId"].as_str().unwrap().to_owned()),
            "duplicate operationId {}",
            op["operationId"]
        );
        for status in route.error_statuses() {
            let r = &op["responses"][status.to_string()];
            assert_eq!(
                r["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{} {} {status}",
                route.method,
                route.path
            );
        }
        for name in route
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        {
            assert!(
                op["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["name"] == name && p["in"] == "path"),
                "{} {}: path parameter {name} is not declared",
                route.method,
                route.path
            );
        }
    }
    for (path, method, tag) in [
        ("/healthz", "get", "service"),
        ("/metrics", "get", "service"),
        ("/v1/connections/{id}", "get", "connections"),
        (
            "/v1/connections/{id}/mappings/{entity}/rollback",
            "post",
            "mappings",
        ),
        (
            "/v1/connections/{id}/transform/{entity}",
            "post",
            "transform",
        ),
        ("/v1/plugins/{sha256}", "delete", "plugins"),
    ] {
        assert_eq!(
            doc["paths"][path][method]["tags"],
            json!([tag]),
            "{method} {path}"
        );
    }
    // Links lead from the answers that carry ids to the operations that take them.
    let links = &doc["paths"]["/v1/connections"]["post"]["responses"]["201"]["links"];
    assert_eq!(
        links["getMapping"],
        json!({"operationId": "getMapping", "parameters": {"id": "$response.body#/id"}})
    );
    let links = &doc["paths"]["/v1/plugins"]["post"]["responses"]["201"]["links"];
    assert_eq!(
        links["deletePlugin"]["parameters"]["sha256"],
        "$response.body#/plugin/sha256"
    );
    let operations: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert_eq!(
        operations,
        routes.len(),
        "the document has operations that are not served"
    );

    // Every reference points at a schema the document has.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r);
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(found.len() > 20, "{found:?}");
    for r in found {
        if let Some(name) = r.strip_prefix("#/components/schemas/") {
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "dangling $ref {r}"
            );
        } else {
            // References inside the model's own schemas are relative to their `$id`.
            assert!(
                r.starts_with("#/$defs/") || r.starts_with("urn:"),
                "unexpected $ref {r}"
            );
        }
    }
}

#[tokio::test]
async fn metrics_count_requests_records_and_plugin_outcomes_by_connection() {
    let f = fixture("metrics", 8 << 20);
    let hostile = support::rust_plugin_bytes("crosswalk-fixture-hostile");
    let a = call(&f.app, "POST", "/v1/plugins", Some(&f.alice), hostile).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let sha = a.body["plugin"]["sha256"].as_str().unwrap().to_owned();
    let id = new_connection(&f, &f.alice, "sap-s4hana").await;
    let mapping_uri = format!("/v1/connections/{id}/mappings/purchase_order");
    let bind = json!([{"sha256": sha, "limits": {"timeout_ms": 100}}]);
    let a = call(
        &f.app,
        "PUT",
        &format!("{mapping_uri}/plugins"),
        Some(&f.alice),
        bind.to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let step = |function: &str| json!([{"plugin": "hostile", "function": function}]);
    let overrides = json!({"overrides": [
        {"target": "custom_fields.echoed", "path": "$.PurchaseOrder", "transforms": step("echo")},
        {"target": "custom_fields.spun", "path": "$.PurchaseOrder", "transforms": step("spin")},
        {"target": "custom_fields.panicked", "path": "$.PurchaseOrder", "transforms": step("panic")},
    ]});
    let a = call(
        &f.app,
        "PUT",
        &mapping_uri,
        Some(&f.alice),
        overrides.to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);

    let record = serde_json::from_str::<Value>(&sample(
        "examples/payloads/sap-s4hana/purchase_order/standard.json",
    ))
    .unwrap();
    let batch = json!([record["d"], record["d"], "not a record"]);
    let a = call(
        &f.app,
        "POST",
        &format!("/v1/connections/{id}/transform/purchase_order"),
        Some(&f.alice),
        batch.to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["data"][0]["custom_fields"]["echoed"], "4500000123");
    assert_eq!(a.body["data"][2]["error"]["details"]["index"], 2);
    // The request id: a generated one, or the client's own.
    assert_eq!(a.headers[REQUEST_ID_HEADER].len(), 16);
    let request = Request::builder()
        .uri("/healthz")
        .header(REQUEST_ID_HEADER, "client-id-7")
        .body(Body::empty())
        .unwrap();
    let response = f.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.headers()[REQUEST_ID_HEADER], "client-id-7");

    let a = call(&f.app, "GET", "/metrics", Some(&f.alice), "").await;
    assert_eq!(
        (a.status, a.body["error"]["code"].clone()),
        (StatusCode::FORBIDDEN, json!("forbidden"))
    );
    let a = call(&f.app, "GET", "/metrics", Some(&f.admin), "").await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        a.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = a.body.as_str().unwrap().to_owned();
    for line in [
        format!(r#"crosswalk_plugin_calls_total{{plugin="hostile",connection="{id}",outcome="ok"}} 2"#),
        format!(r#"crosswalk_plugin_calls_total{{plugin="hostile",connection="{id}",outcome="timeout"}} 2"#),
        format!(r#"crosswalk_plugin_calls_total{{plugin="hostile",connection="{id}",outcome="trap"}} 2"#),
        format!(r#"crosswalk_records_mapped_total{{connection="{id}",entity="purchase_order",outcome="ok"}} 2"#),
        format!(r#"crosswalk_records_mapped_total{{connection="{id}",entity="purchase_order",outcome="failed"}} 1"#),
        format!(r#"crosswalk_mapping_changes_total{{connection="{id}",entity="purchase_order"}} 2"#),
        r#"crosswalk_http_requests_total{method="POST",route="/v1/connections/{id}/transform/{entity}",status="200"} 1"#.to_owned(),
        r#"crosswalk_http_requests_total{method="GET",route="/metrics",status="403"} 1"#.to_owned(),
        r#"crosswalk_http_request_duration_seconds_count{method="POST",route="/v1/plugins",status="201"} 1"#.to_owned(),
        "crosswalk_plugin_compilations_total 1".to_owned(),
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
    }
    assert!(
        !text.contains(&format!("/v1/connections/{id}")),
        "ids never become route labels"
    );
    // The panics' messages (stderr) went to the plugin log, counted as warnings.
    let warned = text
        .lines()
        .find_map(|l| l.strip_prefix(r#"crosswalk_plugin_log_lines_total{level="warn"} "#))
        .unwrap_or_else(|| panic!("no plugin log warnings in\n{text}"));
    assert!(warned.parse::<u64>().unwrap() >= 2, "{warned}");
    assert!(
        text.lines()
            .any(|l| l == r#"crosswalk_plugin_log_lines_total{level="debug"} 0"#)
    );
}

/// Sends `lines` as an NDJSON body, in pieces of `piece` bytes; the answer's lines.
async fn ndjson(
    app: &Router,
    uri: &str,
    key: &str,
    body: String,
    piece: usize,
) -> (axum::http::HeaderMap, Vec<Value>) {
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> = body
        .into_bytes()
        .chunks(piece)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let request = Request::builder()
        .method("POST")
        .uri(uri)
        .header("content-type", "application/x-ndjson")
        .header("authorization", format!("Bearer {key}"))
        .body(Body::from_stream(futures_util::stream::iter(pieces)))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(
        text.ends_with('\n'),
        "every answer line ends with a newline"
    );
    (
        headers,
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
    )
}

#[tokio::test]
async fn ndjson_streams_records_in_and_out_in_order_with_errors_as_lines() {
    // A body limit far below the body: it bounds lines, not the stream.
    let f = fixture("ndjson", 64 << 10);
    let id = new_connection(&f, &f.alice, "sap-s4hana").await;
    let uri = format!("/v1/connections/{id}/transform/purchase_order?remote_data=true");
    let record = serde_json::from_str::<Value>(&sample(
        "examples/payloads/sap-s4hana/purchase_order/standard.json",
    ))
    .unwrap()["d"]
        .clone();
    let mut body = String::new();
    let n = 1200;
    for i in 0..n {
        let mut r = record.clone();
        r["PurchaseOrder"] = json!(format!("{}", 4500000000u64 + i));
        match i {
            1 => body.push_str("{\"PurchaseOrder\": oops}\n"),
            2 => body.push_str("   \n"),
            3 => body.push_str("\"a string\"\r\n"),
            4 => body.push_str("[{}, {}]\n"),
            _ => {
                body.push_str(&r.to_string());
                body.push_str(if i % 2 == 0 { "\n" } else { "\r\n" });
            }
        }
    }
    body.pop(); // the last line has no newline
    assert!(
        body.len() > 20 * (64 << 10),
        "the body is {} bytes",
        body.len()
    );
    let (headers, lines) = ndjson(&f.app, &uri, &f.alice, body, 1000).await;
    assert_eq!(headers["content-type"], "application/x-ndjson");
    assert_eq!(headers[VERSION_HEADER], "0");
    assert_eq!(
        lines.len(),
        n as usize - 1,
        "one answer line per non-blank line"
    );
    assert_eq!(lines[0]["id"], "4500000000");
    assert_eq!(lines[0]["remote_data"]["PurchaseOrder"], "4500000000");
    assert_eq!(lines[1]["error"]["code"], "bad_request");
    assert_eq!(
        lines[1]["error"]["details"],
        json!({"line": 2, "column": 19})
    );
    assert_eq!(lines[2]["error"]["code"], "record_failed");
    assert_eq!(lines[2]["error"]["details"]["line"], 4);
    assert!(
        lines[3]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("one record per line"),
        "{}",
        lines[3]
    );
    for (i, line) in lines.iter().enumerate().skip(4) {
        assert_eq!(
            line["id"],
            format!("{}", 4500000000u64 + i as u64 + 1),
            "line {i}: {line}"
        );
    }

    // A line over the limit ends the stream with an error, after the lines before it.
    let long = json!({"PurchaseOrder": "x".repeat(70 << 10)}).to_string();
    let body = format!("{}\n{long}\n{}\n", record, record);
    let (_, lines) = ndjson(&f.app, &uri, &f.alice, body, 4096).await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["id"], "4500000123");
    assert_eq!(lines[1]["error"]["code"], "payload_too_large");
    assert_eq!(lines[1]["error"]["details"]["line"], 2);
}

#[tokio::test]
async fn ndjson_answers_lines_before_the_body_has_ended() {
    let f = fixture("ndjson-live", 1 << 20);
    let id = new_connection(&f, &f.alice, "ibm-maximo").await;
    let record = json!({"wonum": "WO-1", "description": "Pump check", "status": "WAPPR", "siteid": "BEDFORD"});
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(4);
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
    let request = Request::builder()
        .method("POST")
        .uri(format!("/v1/connections/{id}/transform/work_order"))
        .header("content-type", "application/x-ndjson")
        .header("authorization", format!("Bearer {}", f.alice))
        .body(Body::from_stream(stream))
        .unwrap();
    let response = f.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body().into_data_stream();
    use futures_util::StreamExt;
    let mut seen = String::new();
    for i in 0..3 {
        tx.send(Ok(format!("{record}\n"))).await.unwrap();
        // The answer line comes while the request body is still open.
        while seen.lines().count() <= i {
            let chunk = tokio::time::timeout(std::time::Duration::from_secs(30), body.next())
                .await
                .expect("an answer line before the body ends")
                .unwrap()
                .unwrap();
            seen.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
    drop(tx);
    while let Some(chunk) = body.next().await {
        seen.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
    }
    let lines: Vec<Value> = seen
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().all(|l| l["number"] == "WO-1"), "{lines:?}");
}

#[tokio::test]
async fn an_entity_that_the_system_does_not_map_is_not_found() {
    let f = fixture("unmapped", 1 << 20);
    let id = new_connection(&f, &f.alice, "dynamics-365-fo").await;
    for (method, uri) in [
        ("GET", format!("/v1/connections/{id}/mappings/work_order")),
        ("POST", format!("/v1/connections/{id}/transform/work_order")),
    ] {
        let a = call(&f.app, method, &uri, Some(&f.alice), "{}").await;
        assert_eq!(
            a.status,
            StatusCode::NOT_FOUND,
            "{method} {uri}: {}",
            a.body
        );
        assert!(
            a.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("has no work_order mapping; it maps purchase_order, vendor, part"),
            "{}",
            a.body
        );
    }
    let a = call(
        &f.app,
        "POST",
        "/v1/connections",
        Some(&f.alice),
        json!({"system": "", "name": "x", "mode": "sandbox"}).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    let systems = &openapi::served()["components"]["schemas"]["NewConnection"]["properties"]["system"]
        ["enum"];
    assert_eq!(
        systems,
        &json!(["sap-s4hana", "ibm-maximo", "dynamics-365-fo"])
    );
}

#[tokio::test]
async fn the_benchmarks_http_floor_authenticates_and_answers_a_fixed_body() {
    let dir = std::env::temp_dir().join(format!("crosswalk-http-floor-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir).unwrap());
    let tenant = block_on(store.create_tenant("bench")).unwrap();
    let (_, key) = block_on(store.create_key(&tenant.id, Role::Tenant)).unwrap();
    let host = Arc::new(PluginHost::new(HostConfig::default()).unwrap());
    let router = app(AppState::new(Arc::clone(&store), host, 1 << 20).with_floor(656));
    let send = |key: Option<String>| {
        let mut request = Request::builder().method("POST").uri("/bench/floor");
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        router
            .clone()
            .oneshot(request.body(Body::from(r#"{"any": "body"}"#)).unwrap())
    };
    let response = send(Some(key)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    assert_eq!(body.len(), 656);
    assert!(serde_json::from_slice::<Value>(&body).unwrap()["data"].is_string());
    assert_eq!(send(None).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    // Without `with_floor` there is no such endpoint.
    let f = fixture("no-floor", 1 << 20);
    let a = call(&f.app, "POST", "/bench/floor", Some(&f.alice), "{}").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Alice's Maximo sandbox connection; its id.
async fn maximo_sandbox(f: &Fixture) -> String {
    new_connection(f, &f.alice, "ibm-maximo").await
}

/// The first page of 2 of the connection's work orders, with their source.
async fn first_work_orders(f: &Fixture, id: &str) -> Answer {
    call(
        &f.app,
        "GET",
        &format!("/v1/connections/{id}/work-orders?page_size=2&remote_data=true"),
        Some(&f.alice),
        "",
    )
    .await
}

/// Reads the first work order of the connection; its number and the answer.
async fn first_work_order(f: &Fixture, id: &str) -> (String, Answer) {
    let a = first_work_orders(f, id).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let wonum = a.body["data"][0]["id"].as_str().unwrap().to_owned();
    let a = call(
        &f.app,
        "GET",
        &format!("/v1/connections/{id}/work-orders/{wonum}"),
        Some(&f.alice),
        "",
    )
    .await;
    (wonum, a)
}

/// Updates the work order `wonum` in the sandbox; the answer.
async fn patch_work_order(f: &Fixture, id: &str, wonum: &str) -> Answer {
    call(
        &f.app,
        "PATCH",
        &format!("/v1/connections/{id}/work-orders/{wonum}"),
        Some(&f.alice),
        json!({"priority": 1}).to_string(),
    )
    .await
}

#[tokio::test]
async fn a_listing_answers_its_page_with_sources_a_cursor_and_the_mapping_version() {
    let f = fixture("reads-listing", 1 << 20);
    let id = maximo_sandbox(&f).await;
    let a = first_work_orders(&f, &id).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.version.as_deref(), Some("0"));
    assert_eq!(a.body["data"].as_array().unwrap().len(), 2);
    assert!(a.body["data"][0]["remote_data"]["wonum"].is_string());
    assert!(a.body["next_cursor"].is_string());
}

#[tokio::test]
async fn a_record_is_read_by_its_id_with_its_sandbox_scenario() {
    let f = fixture("reads-record", 1 << 20);
    let id = maximo_sandbox(&f).await;
    let (wonum, a) = first_work_order(&f, &id).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["data"]["id"], wonum.as_str());
    assert!(a.body["sandbox"]["scenario"].is_string());
}

#[tokio::test]
async fn a_sandbox_update_answers_that_it_was_not_applied() {
    let f = fixture("reads-sandbox-patch", 1 << 20);
    let id = maximo_sandbox(&f).await;
    let (wonum, _) = first_work_order(&f, &id).await;
    let a = patch_work_order(&f, &id, &wonum).await;
    assert_eq!(
        (a.status, &a.body["applied"]),
        (StatusCode::OK, &json!(false)),
        "{}",
        a.body
    );
}

#[tokio::test]
async fn a_record_to_write_that_is_not_a_json_object_is_refused() {
    let f = fixture("reads-not-object", 1 << 20);
    let id = maximo_sandbox(&f).await;
    let a = call(
        &f.app,
        "POST",
        &format!("/v1/connections/{id}/work-orders"),
        Some(&f.alice),
        "[1]",
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("must be a JSON object")
    );
}

#[tokio::test]
async fn a_page_size_of_zero_is_refused_naming_it() {
    let f = fixture("reads-page-size", 1 << 20);
    let id = maximo_sandbox(&f).await;
    let a = call(
        &f.app,
        "GET",
        &format!("/v1/connections/{id}/work-orders?page_size=0"),
        Some(&f.alice),
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("page_size"),
        "{}",
        a.body
    );
}

/// A malformed query is a 400 even when the request also asks for a mapping version
/// that was never stored (which alone is a 412): the query is checked first.
#[tokio::test]
async fn a_bad_query_is_refused_before_an_unknown_mapping_version() {
    let f = fixture("reads-query-before-version", 1 << 20);
    let id = maximo_sandbox(&f).await;
    let list = format!("/v1/connections/{id}/work-orders");
    let at = [("crosswalk-mapping-version", "5362")];
    for query in ["?page_size=128355", "?cursor=not-one-of-ours"] {
        let a = call_with(
            &f.app,
            "GET",
            &format!("{list}{query}"),
            Some(&f.alice),
            &at,
            "",
        )
        .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{query}: {}", a.body);
    }
    let a = call_with(&f.app, "GET", &list, Some(&f.alice), &at, "").await;
    assert_eq!(a.status, StatusCode::PRECONDITION_FAILED, "{}", a.body);
    assert_eq!(a.body["error"]["code"], "version_mismatch", "{}", a.body);
    let a = call_with(
        &f.app,
        "GET",
        &list,
        Some(&f.alice),
        &[("crosswalk-mapping-version", "0")],
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
}

#[tokio::test]
async fn an_unknown_listing_parameter_is_refused_naming_it() {
    let f = fixture("reads-unknown-parameter", 1 << 20);
    let id = maximo_sandbox(&f).await;
    let a = call(
        &f.app,
        "GET",
        &format!("/v1/connections/{id}/work-orders?colour=red"),
        Some(&f.alice),
        "",
    )
    .await;
    assert_eq!(
        a.status,
        StatusCode::BAD_REQUEST,
        "an unknown parameter is named"
    );
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("colour"),
        "{}",
        a.body
    );
}

#[tokio::test]
async fn another_tenant_cannot_read_a_connections_records() {
    let f = fixture("reads-other-tenant", 1 << 20);
    let id = maximo_sandbox(&f).await;
    let a = call(
        &f.app,
        "GET",
        &format!("/v1/connections/{id}/work-orders"),
        Some(&f.bob),
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

/// After a listing, a record, and an update (which looks its record up), the status
/// counts three successes and the error log is empty.
#[tokio::test]
async fn the_status_counts_each_successful_read_and_the_error_log_stays_empty() {
    let f = fixture("reads-status", 1 << 20);
    let id = maximo_sandbox(&f).await;
    let k = Some(f.alice.as_str());
    let (wonum, a) = first_work_order(&f, &id).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = patch_work_order(&f, &id, &wonum).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = call(
        &f.app,
        "GET",
        &format!("/v1/connections/{id}/status"),
        k,
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["status"], "healthy");
    // The listing, the record, and the update's look-up of its record.
    assert_eq!(a.body["entities"]["work_order"]["successes"], 3);
    let a = call(
        &f.app,
        "GET",
        &format!("/v1/connections/{id}/errors?entity=work_order"),
        k,
        "",
    )
    .await;
    assert_eq!((a.status, &a.body["data"]), (StatusCode::OK, &json!([])));
}

#[tokio::test]
async fn the_error_log_refuses_an_entity_the_system_does_not_have() {
    let f = fixture("reads-errors-entity", 1 << 20);
    let id = maximo_sandbox(&f).await;
    let a = call(
        &f.app,
        "GET",
        &format!("/v1/connections/{id}/errors?entity=invoice"),
        Some(&f.alice),
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
}

/// A sandbox has no credentials to reauthorize.
#[tokio::test]
async fn a_sandbox_connection_cannot_be_reauthorized() {
    let f = fixture("reads-sandbox-reauth", 1 << 20);
    let id = maximo_sandbox(&f).await;
    let a = call(
        &f.app,
        "POST",
        &format!("/v1/connections/{id}/reauthorize"),
        Some(&f.alice),
        json!({"credentials": {"type": "bearer", "token": "t"}}).to_string(),
    )
    .await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("sandbox_connection"))
    );
}

/// A live connection needs the server's secret key; without one, nothing is created.
#[tokio::test]
async fn a_live_connection_without_the_servers_secret_key_is_refused_and_not_created() {
    let f = fixture("reads-no-secret-key", 1 << 20);
    maximo_sandbox(&f).await;
    let k = Some(f.alice.as_str());
    let live = json!({"system": "ibm-maximo", "name": "l", "mode": "live", "upstream": {"base_url": "https://maximo.example.com"}, "credentials": {"type": "api_key", "header": "apikey", "key": "k"}});
    let a = call(&f.app, "POST", "/v1/connections", k, live.to_string()).await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("no_secret_key")),
        "{}",
        a.body
    );
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("CROSSWALK_SECRET_KEY")
    );
    let a = call(&f.app, "GET", "/v1/connections", k, "").await;
    assert_eq!(
        a.body["data"].as_array().unwrap().len(),
        1,
        "nothing was created"
    );
}

/// Subscribes alice to two events, one named twice, at a receiver nobody runs; the
/// answer.
async fn subscribe_alice(f: &Fixture) -> Answer {
    let a = call(
        &f.app,
        "POST",
        "/v1/webhooks",
        Some(&f.alice),
        json!({"url": "http://127.0.0.1:9/hooks", "events": ["connection.status_changed", "mapping.updated", "connection.status_changed"]})
            .to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    a
}

/// The secret is answered once, when subscribing, and never listed.
#[tokio::test]
async fn a_subscription_shows_its_secret_once_and_subscribes_each_event_once() {
    let f = fixture("webhooks-subscribe", 1 << 20);
    let a = subscribe_alice(&f).await;
    assert_eq!(
        a.body["subscription"]["events"],
        json!(["connection.status_changed", "mapping.updated"]),
        "an event named twice is subscribed once"
    );
    let hook = a.body["subscription"]["id"].as_str().unwrap().to_owned();
    assert!(a.body["secret"].as_str().unwrap().starts_with("whsec_"));
    let a = call(&f.app, "GET", "/v1/webhooks", Some(&f.alice), "").await;
    assert_eq!(a.body["data"][0]["id"], hook.as_str());
    assert!(
        a.body["data"][0].get("secret").is_none(),
        "the secret is never listed"
    );
}

#[tokio::test]
async fn another_tenants_subscription_is_not_found() {
    let f = fixture("webhooks-other-tenant", 1 << 20);
    let hook = subscribe_alice(&f).await.body["subscription"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let a = call(
        &f.app,
        "GET",
        &format!("/v1/webhooks/{hook}"),
        Some(&f.bob),
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "another tenant's");
}

#[tokio::test]
async fn a_new_subscription_has_no_deliveries() {
    let f = fixture("webhooks-deliveries", 1 << 20);
    let hook = subscribe_alice(&f).await.body["subscription"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let a = call(
        &f.app,
        "GET",
        &format!("/v1/webhooks/{hook}/deliveries"),
        Some(&f.alice),
        "",
    )
    .await;
    assert_eq!((a.status, &a.body["data"]), (StatusCode::OK, &json!([])));
}

#[tokio::test]
async fn a_subscription_to_no_event_is_refused() {
    let f = fixture("webhooks-no-events", 1 << 20);
    let a = call(
        &f.app,
        "POST",
        "/v1/webhooks",
        Some(&f.alice),
        json!({"url": "http://x", "events": []}).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_subscription_is_deleted() {
    let f = fixture("webhooks-delete", 1 << 20);
    let hook = subscribe_alice(&f).await.body["subscription"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let a = call(
        &f.app,
        "DELETE",
        &format!("/v1/webhooks/{hook}"),
        Some(&f.alice),
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
}

/// Four clients each add 25 custom fields with PATCH while a fifth binds and unbinds a
/// plugin: every change is applied to the latest version, so the final mapping has
/// all 100 fields, the last binding, and one version per change.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_mapping_changes_lose_no_update() {
    let f = Arc::new(fixture("lost-update", 8 << 20));
    let uom = support::rust_plugin_bytes("crosswalk-plugin-uom");
    let a = call(&f.app, "POST", "/v1/plugins", Some(&f.alice), uom).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let sha = a.body["plugin"]["sha256"].as_str().unwrap().to_owned();
    let id = new_connection(&f, &f.alice, "sap-s4hana").await;
    let uri = format!("/v1/connections/{id}/mappings/purchase_order");
    let mut tasks = Vec::new();
    for client in 0..4 {
        let (f, uri) = (Arc::clone(&f), uri.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let patch = json!({"overrides": [{"target": format!("custom_fields.f_{client}_{i}"), "path": "$.PurchaseOrder"}]});
                let a = call(&f.app, "PATCH", &uri, Some(&f.alice), patch.to_string()).await;
                assert_eq!(a.status, StatusCode::OK, "{}", a.body);
            }
        }));
    }
    let binder = {
        let (f, uri) = (Arc::clone(&f), format!("{uri}/plugins"));
        tokio::spawn(async move {
            for i in 0..10 {
                let bindings = if i % 2 == 1 {
                    json!([{"sha256": sha}])
                } else {
                    json!([])
                };
                let a = call(&f.app, "PUT", &uri, Some(&f.alice), bindings.to_string()).await;
                assert_eq!(a.status, StatusCode::OK, "{}", a.body);
            }
        })
    };
    for task in tasks {
        task.await.unwrap();
    }
    binder.await.unwrap();
    let a = call(&f.app, "GET", &uri, Some(&f.alice), "").await;
    let custom: Vec<&str> = a.body["mapping"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["target"].as_str()?.strip_prefix("custom_fields."))
        .collect();
    assert_eq!(
        custom.len(),
        100,
        "every acknowledged field is kept: {custom:?}"
    );
    assert_eq!(
        a.body["plugins"].as_array().map(Vec::len),
        Some(1),
        "the last binding is kept: {}",
        a.body["plugins"]
    );
    // 100 patches and 10 bindings, the first of which binds nothing new.
    assert_eq!(a.body["version"], 109);
}

/// The patch that adds the cost-centre custom field.
fn cost_center_patch() -> String {
    json!({"overrides": [{"target": "custom_fields.cost_center", "path": "$.ZZ1_CostCenter_PDH"}]})
        .to_string()
}

/// A change that another client might make: `site_id` disabled.
fn disable_site() -> String {
    json!({"overrides": [{"target": "site_id", "disable": true}]}).to_string()
}

/// Alice's SAP sandbox purchase-order mapping, changed once under `If-Match: "0"`
/// (to version 1); its path.
async fn mapping_at_version_1(f: &Fixture) -> String {
    let id = new_connection(f, &f.alice, "sap-s4hana").await;
    let uri = format!("/v1/connections/{id}/mappings/purchase_order");
    let a = call_with(
        &f.app,
        "PATCH",
        &uri,
        Some(&f.alice),
        &[("if-match", "\"0\"")],
        cost_center_patch(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.headers["etag"], "\"1\"");
    uri
}

/// Checks that the mapping at `uri` has the versions 0 and 1 only: what was refused or
/// changed nothing stored no version.
async fn only_versions_0_and_1(f: &Fixture, uri: &str) {
    let a = call(&f.app, "GET", &format!("{uri}/history"), Some(&f.alice), "").await;
    assert_eq!(a.body["data"].as_array().unwrap().len(), 2, "{}", a.body);
}

/// A mapping answers its version as an entity tag, and a change under `If-Match` with
/// that tag is made.
#[tokio::test]
async fn a_mapping_answers_its_version_as_an_entity_tag() {
    let f = fixture("if-match-etag", 8 << 20);
    let id = new_connection(&f, &f.alice, "sap-s4hana").await;
    let uri = format!("/v1/connections/{id}/mappings/purchase_order");
    let a = call(&f.app, "GET", &uri, Some(&f.alice), "").await;
    assert_eq!(a.headers["etag"], "\"0\"");
    let a = call_with(
        &f.app,
        "PATCH",
        &uri,
        Some(&f.alice),
        &[("if-match", "\"0\"")],
        cost_center_patch(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.headers["etag"], "\"1\"");
}

/// Another client still holds version 0: its change is refused and changes nothing.
#[tokio::test]
async fn a_change_made_on_an_old_version_is_refused() {
    let f = fixture("if-match-stale", 8 << 20);
    let uri = mapping_at_version_1(&f).await;
    for method in ["PATCH", "PUT"] {
        let a = call_with(
            &f.app,
            method,
            &uri,
            Some(&f.alice),
            &[("if-match", "\"0\"")],
            disable_site(),
        )
        .await;
        assert_eq!(
            a.status,
            StatusCode::PRECONDITION_FAILED,
            "{method}: {}",
            a.body
        );
        assert_eq!(a.body["error"]["code"], "version_mismatch");
        assert_eq!(
            a.body["error"]["details"],
            json!({"expected": 0, "current": 1})
        );
    }
    only_versions_0_and_1(&f, &uri).await;
}

#[tokio::test]
async fn a_rollback_or_a_binding_on_another_version_is_refused() {
    let f = fixture("if-match-rollback-binding", 8 << 20);
    let uri = mapping_at_version_1(&f).await;
    let a = call_with(
        &f.app,
        "POST",
        &format!("{uri}/rollback"),
        Some(&f.alice),
        &[("if-match", "\"7\"")],
        json!({"version": 0}).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::PRECONDITION_FAILED, "{}", a.body);
    let a = call_with(
        &f.app,
        "PUT",
        &format!("{uri}/plugins"),
        Some(&f.alice),
        &[("if-match", "\"0\"")],
        "[]",
    )
    .await;
    assert_eq!(a.status, StatusCode::PRECONDITION_FAILED, "{}", a.body);
    only_versions_0_and_1(&f, &uri).await;
}

/// A bare version is taken as its tag; a list matches by any of its tags; weak tags and
/// tags that are no version never match.
#[tokio::test]
async fn if_match_takes_bare_versions_and_lists_and_never_matches_weak_tags() {
    let f = fixture("if-match-tags", 8 << 20);
    let uri = mapping_at_version_1(&f).await;
    for (tag, current) in [
        ("3", json!({"expected": 3, "current": 1})),
        ("\"4\", \"5\"", json!({"expected": [4, 5], "current": 1})),
        ("W/\"1\"", json!({"expected": [], "current": 1})),
        ("\"v1,x\"", json!({"expected": [], "current": 1})),
        // Digits beyond any version (a u64) name none, bare or quoted.
        (
            "326986637441451983843",
            json!({"expected": [], "current": 1}),
        ),
        (
            "\"326986637441451983843\"",
            json!({"expected": [], "current": 1}),
        ),
    ] {
        let a = call_with(
            &f.app,
            "PATCH",
            &uri,
            Some(&f.alice),
            &[("if-match", tag)],
            disable_site(),
        )
        .await;
        assert_eq!(
            a.status,
            StatusCode::PRECONDITION_FAILED,
            "{tag}: {}",
            a.body
        );
        assert_eq!(a.body["error"]["details"], current, "{tag}");
    }
    only_versions_0_and_1(&f, &uri).await;
}

#[tokio::test]
async fn an_if_match_that_is_no_list_of_entity_tags_is_a_bad_request() {
    let f = fixture("if-match-malformed", 8 << 20);
    let uri = mapping_at_version_1(&f).await;
    for tag in ["three", "\"3", "\"3\" \"4\"", ""] {
        let a = call_with(
            &f.app,
            "PATCH",
            &uri,
            Some(&f.alice),
            &[("if-match", tag)],
            disable_site(),
        )
        .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{tag}: {}", a.body);
        assert!(
            a.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("is not a list of entity tags"),
            "{}",
            a.body
        );
    }
    only_versions_0_and_1(&f, &uri).await;
}

/// A list that names the current version (among a weak tag) makes the change.
#[tokio::test]
async fn an_if_match_list_naming_the_current_version_makes_the_change() {
    let f = fixture("if-match-list", 8 << 20);
    let uri = mapping_at_version_1(&f).await;
    let a = call_with(
        &f.app,
        "PATCH",
        &uri,
        Some(&f.alice),
        &[("if-match", "W/\"9\", \"1\"")],
        cost_center_patch(),
    )
    .await;
    assert_eq!(
        (a.status, a.body["version"].clone()),
        (StatusCode::OK, json!(1)),
        "{}",
        a.body
    );
    only_versions_0_and_1(&f, &uri).await;
}

/// The same patch again, under `*`, changes nothing and stores no version.
#[tokio::test]
async fn a_change_that_changes_nothing_stores_no_version() {
    let f = fixture("if-match-no-op", 8 << 20);
    let uri = mapping_at_version_1(&f).await;
    let a = call_with(
        &f.app,
        "PATCH",
        &uri,
        Some(&f.alice),
        &[("if-match", "*")],
        cost_center_patch(),
    )
    .await;
    assert_eq!(
        (a.status, a.body["version"].clone()),
        (StatusCode::OK, json!(1))
    );
    only_versions_0_and_1(&f, &uri).await;
}

/// Version 0 is the system's default, and rolling back to it is a new version.
#[tokio::test]
async fn rolling_back_to_the_systems_default_is_a_new_version() {
    let f = fixture("if-match-rollback", 8 << 20);
    let uri = mapping_at_version_1(&f).await;
    let a = call_with(
        &f.app,
        "POST",
        &format!("{uri}/rollback"),
        Some(&f.alice),
        &[("if-match", "\"1\"")],
        json!({"version": 0}).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(
        (
            a.body["version"].clone(),
            a.headers["etag"].to_str().unwrap()
        ),
        (json!(2), "\"2\"")
    );
    assert!(
        !a.body["mapping"]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["target"] == "custom_fields.cost_center"),
        "{}",
        a.body
    );
}

/// Every spelling of an internal address that the issue found accepted, and more.
const REFUSED_URLS: &[(&str, &str)] = &[
    ("http://169.254.169.254/latest/meta-data/iam/", "link_local"),
    ("http://10.0.0.1/hooks", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://100.64.0.1/", "shared_address_space"),
    ("http://127.0.0.1:9/hooks", "loopback"),
    ("http://localhost:9/hooks", "loopback"),
    ("http://[::1]/", "loopback"),
    ("http://[fd00::1]/", "unique_local"),
    ("http://[fe80::1]/", "link_local"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),
    ("http://[::ffff:169.254.169.254]/", "link_local"),
    ("http://0/", "unspecified"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://2130706433/", "loopback"),
    ("http://0x7f000001/", "loopback"),
    ("http://0177.0.0.1/", "loopback"),
    ("http://127.1/", "loopback"),
    ("http://224.0.0.1/", "multicast"),
    ("http://255.255.255.255/", "broadcast"),
    (
        "http://metadata.google.internal/computeMetadata/v1/",
        "metadata_name",
    ),
    ("http://metadata/", "metadata_name"),
];

/// Checks that nothing was stored: no subscription, no connection.
async fn nothing_stored(f: &Fixture) {
    let k = Some(f.alice.as_str());
    let a = call(&f.app, "GET", "/v1/webhooks", k, "").await;
    assert_eq!(a.body["data"], json!([]), "nothing was stored");
    let a = call(&f.app, "GET", "/v1/connections", k, "").await;
    assert_eq!(a.body["data"], json!([]), "nothing was stored");
}

/// A webhook at an internal address is a 422 that names the field and the rule, and
/// nothing is stored.
#[tokio::test]
async fn webhooks_at_internal_addresses_are_refused_naming_the_field_and_the_rule() {
    let f = fixture_by_default("ssrf-webhooks");
    let k = Some(f.alice.as_str());
    for (url, rule) in REFUSED_URLS {
        let a = call(
            &f.app,
            "POST",
            "/v1/webhooks",
            k,
            json!({"url": url, "events": ["mapping.updated"]}).to_string(),
        )
        .await;
        assert_eq!(
            (a.status, a.body["error"]["code"].as_str()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("address_not_allowed")
            ),
            "webhook {url}: {}",
            a.body
        );
        assert_eq!(a.body["error"]["details"]["field"], "url", "{url}");
        assert_eq!(a.body["error"]["details"]["rule"], *rule, "{url}");
        let message = a.body["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("url `") && message.contains("--allow-upstream"),
            "{url}: {message}"
        );
    }
    nothing_stored(&f).await;
}

/// An upstream or a token endpoint at an internal address is a 422 that names the
/// field and the rule, and nothing is stored.
#[tokio::test]
async fn upstreams_and_token_endpoints_at_internal_addresses_are_refused_naming_the_field_and_the_rule()
 {
    let f = fixture_by_default("ssrf-connections");
    let k = Some(f.alice.as_str());
    for (url, rule) in REFUSED_URLS {
        for (field, connection) in [
            (
                "upstream.base_url",
                json!({"system": "sap-s4hana", "name": "x", "mode": "live", "upstream": {"base_url": url}, "credentials": {"type": "basic", "username": "u", "password": "p"}}),
            ),
            (
                "credentials.token_url",
                json!({"system": "dynamics-365-fo", "name": "x", "mode": "live", "upstream": {"base_url": "https://erp.example.com"}, "credentials": {"type": "oauth2", "token_url": url, "client_id": "c", "client_secret": "s"}}),
            ),
        ] {
            let a = call(&f.app, "POST", "/v1/connections", k, connection.to_string()).await;
            assert_eq!(
                (a.status, a.body["error"]["code"].as_str()),
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Some("address_not_allowed")
                ),
                "{field} {url}: {}",
                a.body
            );
            assert_eq!(a.body["error"]["details"]["field"], field, "{url}");
            assert_eq!(a.body["error"]["details"]["rule"], *rule, "{url}");
        }
    }
    nothing_stored(&f).await;
}

#[tokio::test]
async fn a_numeric_spelling_of_an_address_is_named_with_the_address_it_is() {
    let f = fixture_by_default("ssrf-numeric");
    let a = call(
        &f.app,
        "POST",
        "/v1/webhooks",
        Some(&f.alice),
        json!({"url": "http://0x7f000001/", "events": ["mapping.updated"]}).to_string(),
    )
    .await;
    assert_eq!(
        a.body["error"]["details"],
        json!({"field": "url", "rule": "loopback", "address": "127.0.0.1", "range": "127.0.0.0/8"})
    );
    nothing_stored(&f).await;
}

/// A user or password in a webhook's URL (or a scheme other than HTTP's) is refused,
/// without repeating it.
#[tokio::test]
async fn a_webhook_url_with_a_user_or_password_is_refused_without_repeating_it() {
    let f = fixture_by_default("ssrf-webhook-userinfo");
    for (url, code) in [
        (
            "https://user:hunter2@hooks.example.com/x",
            "invalid_subscription",
        ),
        ("https://user@hooks.example.com/x", "invalid_subscription"),
        ("ftp://hooks.example.com/x", "invalid_subscription"),
    ] {
        let a = call(
            &f.app,
            "POST",
            "/v1/webhooks",
            Some(&f.alice),
            json!({"url": url, "events": ["mapping.updated"]}).to_string(),
        )
        .await;
        assert_eq!(
            (a.status, a.body["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(code)),
            "{url}: {}",
            a.body
        );
        assert!(!a.body.to_string().contains("hunter2"), "{}", a.body);
    }
    nothing_stored(&f).await;
}

#[tokio::test]
async fn a_token_url_with_a_password_is_refused_without_repeating_it() {
    let f = fixture_by_default("ssrf-token-userinfo");
    let a = call(
        &f.app,
        "POST",
        "/v1/connections",
        Some(&f.alice),
        json!({"system": "dynamics-365-fo", "name": "x", "mode": "live", "upstream": {"base_url": "https://erp.example.com"}, "credentials": {"type": "oauth2", "token_url": "https://id:secret-in-url@login.example.com/token", "client_id": "c", "client_secret": "s"}}).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert!(!a.body.to_string().contains("secret-in-url"), "{}", a.body);
    nothing_stored(&f).await;
}

/// A public name passes the check when stored (it is checked again, resolved, when it
/// is called).
#[tokio::test]
async fn urls_with_a_public_name_pass_the_address_check() {
    let f = fixture_by_default("ssrf-public-name");
    let k = Some(f.alice.as_str());
    let a = call(
        &f.app,
        "POST",
        "/v1/webhooks",
        k,
        json!({"url": "https://hooks.example.com/crosswalk", "events": ["mapping.updated"]})
            .to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let a = call(
        &f.app,
        "POST",
        "/v1/connections",
        k,
        json!({"system": "sap-s4hana", "name": "x", "mode": "live", "upstream": {"base_url": "https://erp.example.com"}, "credentials": {"type": "basic", "username": "u", "password": "p"}}).to_string(),
    )
    .await;
    assert_eq!(
        a.body["error"]["code"], "no_secret_key",
        "past the address check: {}",
        a.body
    );
}

/// The operator's allow-list lets a range through, and only that range; a
/// reauthorization checks the new token endpoint and the stored base URL before
/// anything is sent.
#[tokio::test]
async fn the_allow_list_lets_the_operators_ranges_through() {
    let sealer =
        crosswalk_service::connection::secrets::Sealer::from_text(&"ab".repeat(32)).unwrap();
    let f = fixture_with(
        "allow-list",
        1 << 20,
        ServiceOptions {
            sealer: Some(sealer),
            egress: Policy::allowing([parse_range("10.20.0.0/16").unwrap()]),
            ..ServiceOptions::default()
        },
    );
    let k = Some(f.alice.as_str());
    for (url, allowed) in [
        ("http://10.20.3.4/hooks", true),
        ("http://[::ffff:10.20.3.4]/hooks", true),
        ("http://10.21.0.1/hooks", false),
        ("http://127.0.0.1/hooks", false),
        ("http://169.254.169.254/", false),
    ] {
        let a = call(
            &f.app,
            "POST",
            "/v1/webhooks",
            k,
            json!({"url": url, "events": ["mapping.updated"]}).to_string(),
        )
        .await;
        let expected = if allowed {
            StatusCode::CREATED
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        assert_eq!(a.status, expected, "{url}: {}", a.body);
    }
    // An on-premises SAP on the allowed range is stored (nothing is called yet).
    let a = call(
        &f.app,
        "POST",
        "/v1/connections",
        k,
        json!({"system": "sap-s4hana", "name": "on-prem", "mode": "live", "upstream": {"base_url": "http://10.20.0.5:8000"}, "credentials": {"type": "basic", "username": "u", "password": "p"}}).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let onprem = a.body["id"].as_str().unwrap().to_owned();
    // New OAuth credentials whose token endpoint is the metadata service: refused
    // before anything is sent.
    let a = call(
        &f.app,
        "POST",
        &format!("/v1/connections/{onprem}/reauthorize"),
        k,
        json!({"credentials": {"type": "oauth2", "token_url": "http://169.254.169.254/token", "client_id": "c", "client_secret": "s"}}).to_string(),
    )
    .await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("address_not_allowed")
        ),
        "{}",
        a.body
    );
    assert_eq!(a.body["error"]["details"]["field"], "credentials.token_url");
}

/// Asserts a 422 `limit_exceeded` that names `limit` and its value.
fn refused_by(a: &Answer, limit: &str, max: u64) {
    assert_eq!(
        (a.status, &a.body["error"]["code"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("limit_exceeded")),
        "{}",
        a.body
    );
    assert_eq!(a.body["error"]["details"]["limit"], limit, "{}", a.body);
    assert_eq!(a.body["error"]["details"]["max"], max, "{}", a.body);
    let message = a.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(limit) && message.contains(&max.to_string()),
        "the message names the limit and its value: {message}"
    );
}

#[tokio::test]
async fn oversized_names_urls_targets_and_paths_are_refused_naming_the_limit() {
    let f = fixture("lengths", 1 << 20);
    let q = Quotas::DEFAULT;
    let long = |n: usize| "x".repeat(n);
    // A connection name, and a tenant name.
    let a = call(
        &f.app,
        "POST",
        "/v1/connections",
        Some(&f.alice),
        json!({"system": "sap-s4hana", "name": long(q.max_name_length + 1), "mode": "sandbox"})
            .to_string(),
    )
    .await;
    refused_by(&a, "max_name_length", 200);
    assert_eq!(a.body["error"]["details"]["field"], "name");
    assert_eq!(a.body["error"]["details"]["actual"], 201);
    let a = call(&f.app, "GET", "/v1/connections", Some(&f.alice), "").await;
    assert_eq!(a.body["data"], json!([]), "nothing was created");
    let name = "ä".repeat(q.max_name_length);
    let id = {
        let a = call(
            &f.app,
            "POST",
            "/v1/connections",
            Some(&f.alice),
            json!({"system": "sap-s4hana", "name": name, "mode": "sandbox"}).to_string(),
        )
        .await;
        assert_eq!(a.status, StatusCode::CREATED, "200 characters are a name");
        a.body["id"].as_str().unwrap().to_owned()
    };
    let a = call(
        &f.app,
        "POST",
        "/v1/tenants",
        Some(&f.admin),
        json!({"name": long(201)}).to_string(),
    )
    .await;
    refused_by(&a, "max_name_length", 200);

    // A webhook URL and secret.
    let url = format!("https://hooks.example.com/{}", long(q.max_url_length));
    let a = call(
        &f.app,
        "POST",
        "/v1/webhooks",
        Some(&f.alice),
        json!({"url": url, "events": ["mapping.updated"]}).to_string(),
    )
    .await;
    refused_by(&a, "max_url_length", 2048);
    let a = call(
        &f.app,
        "POST",
        "/v1/webhooks",
        Some(&f.alice),
        json!({"url": "https://hooks.example.com/", "events": ["mapping.updated"], "secret": long(8193)})
            .to_string(),
    )
    .await;
    refused_by(&a, "max_secret_length", 8192);
    let a = call(&f.app, "GET", "/v1/webhooks", Some(&f.alice), "").await;
    assert_eq!(a.body["data"], json!([]), "nothing was subscribed");

    // An override's target and path, by PUT, PATCH and preview; nothing changes.
    let mapping = format!("/v1/connections/{id}/mappings/purchase_order");
    let target = format!("custom_fields.{}", long(q.max_target_length));
    let path = format!("$.{}", long(q.max_path_length));
    for (method, uri, body, limit, max) in [
        (
            "PUT",
            mapping.clone(),
            json!({"overrides": [{"target": target, "path": "$.A"}]}),
            "max_target_length",
            256,
        ),
        (
            "PATCH",
            mapping.clone(),
            json!({"overrides": [{"target": "custom_fields.a", "path": path}]}),
            "max_path_length",
            1024,
        ),
        (
            "PATCH",
            mapping.clone(),
            json!({"overrides": [{"target": "lines", "rules": [{"target": "x", "coalesce": ["$.A", path]}]}]}),
            "max_path_length",
            1024,
        ),
        (
            "POST",
            format!("{mapping}/preview"),
            json!({"overrides": {"overrides": [{"target": target, "path": "$.A"}]}, "payload": {"PurchaseOrder": "1"}}),
            "max_target_length",
            256,
        ),
    ] {
        let a = call(&f.app, method, &uri, Some(&f.alice), body.to_string()).await;
        refused_by(&a, limit, max);
    }
    let a = call(&f.app, "GET", &mapping, Some(&f.alice), "").await;
    assert_eq!(a.version.as_deref(), Some("0"), "no change was made");
}

#[tokio::test]
async fn rules_per_mapping_and_the_size_of_a_mapping_are_bounded() {
    let quotas = Quotas {
        max_overrides: 3,
        max_mapping_bytes: 2000,
        ..Quotas::DEFAULT
    };
    let f = fixture_quotas("rules", 1 << 20, quotas);
    let id = new_connection(&f, &f.alice, "sap-s4hana").await;
    let mapping = format!("/v1/connections/{id}/mappings/purchase_order");
    let field =
        |i: usize| json!({"target": format!("custom_fields.f{i}"), "path": format!("$.F{i}")});
    let a = call(
        &f.app,
        "PUT",
        &mapping,
        Some(&f.alice),
        json!({"overrides": (0..4).map(field).collect::<Vec<_>>()}).to_string(),
    )
    .await;
    refused_by(&a, "max_overrides", 3);
    // Nested rules count too.
    let nested = json!({"target": "lines", "rules": [{"target": "item_id", "path": "$.A"}, {"target": "description", "path": "$.B"}, {"target": "quantity", "path": "$.C"}]});
    let a = call(
        &f.app,
        "PUT",
        &mapping,
        Some(&f.alice),
        json!({"overrides": [nested]}).to_string(),
    )
    .await;
    refused_by(&a, "max_overrides", 3);
    // PATCHes that add one field each stop at the limit.
    for i in 0..3 {
        let a = call(
            &f.app,
            "PATCH",
            &mapping,
            Some(&f.alice),
            json!({"overrides": [field(i)]}).to_string(),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    }
    let a = call(
        &f.app,
        "PATCH",
        &mapping,
        Some(&f.alice),
        json!({"overrides": [field(3)]}).to_string(),
    )
    .await;
    refused_by(&a, "max_overrides", 3);
    // Replacing an entry adds none.
    let a = call(
        &f.app,
        "PATCH",
        &mapping,
        Some(&f.alice),
        json!({"overrides": [{"target": "custom_fields.f0", "path": "$.G"}]}).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    // The document's size, as JSON.
    let a = call(
        &f.app,
        "PUT",
        &mapping,
        Some(&f.alice),
        json!({"overrides": [], "description": "x".repeat(2000)}).to_string(),
    )
    .await;
    refused_by(&a, "max_mapping_bytes", 2000);
    let a = call(&f.app, "GET", &mapping, Some(&f.alice), "").await;
    assert_eq!(a.version.as_deref(), Some("4"), "{}", a.body);
}

#[tokio::test]
async fn connections_and_webhooks_per_tenant_are_bounded() {
    let quotas = Quotas {
        max_connections: 2,
        max_webhooks: 1,
        ..Quotas::DEFAULT
    };
    let f = fixture_quotas("counts", 1 << 20, quotas);
    let first = new_connection(&f, &f.alice, "sap-s4hana").await;
    new_connection(&f, &f.alice, "ibm-maximo").await;
    let create = json!({"system": "sap-s4hana", "name": "third", "mode": "sandbox"}).to_string();
    let a = call(
        &f.app,
        "POST",
        "/v1/connections",
        Some(&f.alice),
        create.clone(),
    )
    .await;
    refused_by(&a, "max_connections", 2);
    assert_eq!(a.body["error"]["details"]["actual"], 3);
    // Another tenant has its own count; a deletion makes room.
    let a = call(
        &f.app,
        "POST",
        "/v1/connections",
        Some(&f.bob),
        create.clone(),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let a = call(
        &f.app,
        "DELETE",
        &format!("/v1/connections/{first}"),
        Some(&f.alice),
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let a = call(&f.app, "POST", "/v1/connections", Some(&f.alice), create).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);

    let hook =
        json!({"url": "https://hooks.example.com/a", "events": ["mapping.updated"]}).to_string();
    let a = call(&f.app, "POST", "/v1/webhooks", Some(&f.alice), hook.clone()).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let a = call(&f.app, "POST", "/v1/webhooks", Some(&f.alice), hook.clone()).await;
    refused_by(&a, "max_webhooks", 1);
    let a = call(&f.app, "GET", "/v1/webhooks", Some(&f.alice), "").await;
    assert_eq!(a.body["data"].as_array().unwrap().len(), 1);
    let a = call(&f.app, "POST", "/v1/webhooks", Some(&f.bob), hook).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creations_do_not_pass_a_quota_together() {
    let quotas = Quotas {
        max_connections: 3,
        ..Quotas::DEFAULT
    };
    let f = fixture_quotas("race", 1 << 20, quotas);
    let create = json!({"system": "sap-s4hana", "name": "c", "mode": "sandbox"}).to_string();
    let calls: Vec<_> = (0..12)
        .map(|_| {
            let (app, key, body) = (f.app.clone(), f.alice.clone(), create.clone());
            tokio::spawn(async move {
                call(&app, "POST", "/v1/connections", Some(&key), body)
                    .await
                    .status
            })
        })
        .collect();
    let mut created = 0;
    for call in calls {
        if call.await.unwrap() == StatusCode::CREATED {
            created += 1;
        }
    }
    assert_eq!(created, 3);
    let a = call(&f.app, "GET", "/v1/connections", Some(&f.alice), "").await;
    assert_eq!(a.body["data"].as_array().unwrap().len(), 3);
}

/// A copy of a component with a custom section added: valid, with another hash.
fn variant(component: &[u8], tag: u8) -> Vec<u8> {
    let mut bytes = component.to_vec();
    // Section id 0 (custom), size 3: a name of length 1 and one byte of payload.
    bytes.extend_from_slice(&[0, 3, 1, b'q', tag]);
    bytes
}

#[tokio::test]
async fn plugin_versions_per_tenant_are_bounded_in_count_and_bytes() {
    let uom = support::rust_plugin_bytes("crosswalk-plugin-uom");
    let size = uom.len() as u64;
    let quotas = Quotas {
        max_plugins: 2,
        max_plugin_bytes: 2 * size + 7,
        ..Quotas::DEFAULT
    };
    let f = fixture_quotas("plugin-quota", 1 << 20, quotas);
    let upload = |bytes: Vec<u8>, key: String| {
        let app = f.app.clone();
        async move { call(&app, "POST", "/v1/plugins", Some(&key), bytes).await }
    };
    let a = upload(uom.clone(), f.alice.clone()).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let a = upload(uom.clone(), f.alice.clone()).await;
    assert_eq!(
        a.status,
        StatusCode::CREATED,
        "the same version again is no more"
    );
    let a = upload(variant(&uom, 1), f.alice.clone()).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    // Two versions: the count is reached.
    let a = upload(variant(&uom, 2), f.alice.clone()).await;
    refused_by(&a, "max_plugins", 2);
    let a = call(&f.app, "GET", "/v1/plugins", Some(&f.alice), "").await;
    assert_eq!(a.body["data"].as_array().unwrap().len(), 2);
    // Bob's bytes: two versions a little larger than uom pass the bytes before the
    // count.
    let a = upload(variant(&uom, 1), f.bob.clone()).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let a = upload(variant(&uom, 2), f.bob.clone()).await;
    refused_by(&a, "max_plugin_bytes", 2 * size + 7);
    assert_eq!(a.body["error"]["details"]["actual"], 2 * size + 10);
    // Bindings per mapping are bounded by the same count.
    let id = new_connection(&f, &f.alice, "sap-s4hana").await;
    let binding = json!({"sha256": "0".repeat(64)});
    let a = call(
        &f.app,
        "PUT",
        &format!("/v1/connections/{id}/mappings/purchase_order/plugins"),
        Some(&f.alice),
        json!([binding, binding, binding]).to_string(),
    )
    .await;
    refused_by(&a, "max_plugins", 2);
}

#[tokio::test]
async fn versions_beyond_the_count_are_pruned_and_the_current_one_kept() {
    let quotas = Quotas {
        max_versions_kept: 3,
        ..Quotas::DEFAULT
    };
    let f = fixture_quotas("prune", 1 << 20, quotas);
    let id = new_connection(&f, &f.alice, "ibm-maximo").await;
    let mapping = format!("/v1/connections/{id}/mappings/work_order");
    for i in 1..=5 {
        let a = call(
            &f.app,
            "PUT",
            &mapping,
            Some(&f.alice),
            json!({"overrides": [{"target": "custom_fields.n", "const": i}]}).to_string(),
        )
        .await;
        assert_eq!(
            a.version.as_deref(),
            Some(i.to_string().as_str()),
            "{}",
            a.body
        );
    }
    let history = |f: &Fixture| {
        let (app, key, uri) = (f.app.clone(), f.alice.clone(), format!("{mapping}/history"));
        async move {
            let a = call(&app, "GET", &uri, Some(&key), "").await;
            assert_eq!(a.status, StatusCode::OK, "{}", a.body);
            let versions: Vec<u64> = a.body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["version"].as_u64().unwrap())
                .collect();
            (versions, a.body["pruned_before"].clone())
        }
    };
    assert_eq!(history(&f).await, (vec![0, 3, 4, 5], json!(3)));
    let a = call(&f.app, "GET", &mapping, Some(&f.alice), "").await;
    assert_eq!(
        a.version.as_deref(),
        Some("5"),
        "the current version is kept"
    );
    // A pruned version cannot be restored, and says why; a kept one can.
    let a = call(
        &f.app,
        "POST",
        &format!("{mapping}/rollback"),
        Some(&f.alice),
        json!({"version": 2}).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    let message = a.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("version 2 of this mapping was pruned") && message.contains("3 to 5"),
        "{message}"
    );
    let a = call(
        &f.app,
        "POST",
        &format!("{mapping}/rollback"),
        Some(&f.alice),
        json!({"version": 3}).to_string(),
    )
    .await;
    assert_eq!(a.version.as_deref(), Some("6"), "{}", a.body);
    assert_eq!(history(&f).await, (vec![0, 4, 5, 6], json!(4)));
    // Another connection's history is untouched, and a fresh one is whole.
    let other = new_connection(&f, &f.alice, "ibm-maximo").await;
    let a = call(
        &f.app,
        "GET",
        &format!("/v1/connections/{other}/mappings/work_order/history"),
        Some(&f.alice),
        "",
    )
    .await;
    let data = a.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "only version 0: {}", a.body);
    assert_eq!(data[0]["version"], 0);
    assert_eq!(a.body["pruned_before"], json!(null));
}

#[tokio::test]
async fn large_versions_are_pruned_by_bytes_and_the_current_one_is_kept_whatever_its_size() {
    let quotas = Quotas {
        max_history_bytes: 10_000,
        ..Quotas::DEFAULT
    };
    let f = fixture_quotas("prune-bytes", 1 << 20, quotas);
    let id = new_connection(&f, &f.alice, "ibm-maximo").await;
    let mapping = format!("/v1/connections/{id}/mappings/asset");
    for i in 0..4 {
        let a = call(
            &f.app,
            "PUT",
            &mapping,
            Some(&f.alice),
            json!({"overrides": [], "description": format!("{i}{}", "x".repeat(4000))}).to_string(),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    }
    let a = call(
        &f.app,
        "GET",
        &format!("{mapping}/history"),
        Some(&f.alice),
        "",
    )
    .await;
    let versions: Vec<u64> = a.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(
        versions,
        [0, 3, 4],
        "two versions of 4 KB fit in 10 KB, three do not"
    );
    assert_eq!(a.body["pruned_before"], 3);
    let a = call(
        &f.app,
        "PUT",
        &mapping,
        Some(&f.alice),
        json!({"overrides": [], "description": "y".repeat(12_000)}).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = call(
        &f.app,
        "GET",
        &format!("{mapping}/history"),
        Some(&f.alice),
        "",
    )
    .await;
    assert_eq!(a.body["data"].as_array().unwrap().len(), 2);
    assert_eq!(a.body["data"][1]["version"], 5);
}

#[tokio::test]
async fn bodies_that_are_not_json_are_refused_with_415() {
    let f = fixture("content-types", 1 << 20);
    let id = new_connection(&f, &f.alice, "sap-s4hana").await;
    let mapping = format!("/v1/connections/{id}/mappings/purchase_order");
    let transform = format!("/v1/connections/{id}/transform/purchase_order");
    let overrides =
        json!({"overrides": [{"target": "custom_fields.a", "path": "$.A"}]}).to_string();
    let connection = json!({"system": "sap-s4hana", "name": "n", "mode": "sandbox"}).to_string();
    let record = json!({"PurchaseOrder": "1"}).to_string();
    for content_type in [
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
    ] {
        for (method, uri, body) in [
            ("PUT", mapping.as_str(), overrides.as_str()),
            ("PATCH", mapping.as_str(), overrides.as_str()),
            ("POST", "/v1/connections", connection.as_str()),
            ("POST", transform.as_str(), record.as_str()),
            (
                "POST",
                "/v1/webhooks",
                r#"{"url": "https://hooks.example.com/", "events": ["mapping.updated"]}"#,
            ),
        ] {
            let a = call_as(
                &f.app,
                method,
                uri,
                Some(&f.alice),
                Some(content_type),
                body.to_owned(),
            )
            .await;
            assert_eq!(
                (a.status, a.body["error"]["code"].clone()),
                (
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    json!("unsupported_media_type")
                ),
                "{method} {uri} as {content_type}: {}",
                a.body
            );
            assert_eq!(a.body["error"]["details"]["content_type"], content_type);
        }
    }
    let a = call(&f.app, "GET", &mapping, Some(&f.alice), "").await;
    assert_eq!(a.version.as_deref(), Some("0"), "nothing was changed");
    let a = call(&f.app, "GET", "/v1/connections", Some(&f.alice), "").await;
    assert_eq!(
        a.body["data"].as_array().unwrap().len(),
        1,
        "nothing was created"
    );
    // JSON with parameters, a +json type, and no type at all are read as JSON.
    for content_type in [
        Some("application/json; charset=utf-8"),
        Some("application/merge-patch+json"),
        None,
    ] {
        let a = call_as(
            &f.app,
            "PUT",
            &mapping,
            Some(&f.alice),
            content_type,
            overrides.clone(),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{content_type:?}: {}", a.body);
    }
    // NDJSON stays accepted where records stream.
    let a = call_as(
        &f.app,
        "POST",
        &transform,
        Some(&f.alice),
        Some("application/x-ndjson"),
        format!("{record}\n"),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let a = call_as(
        &f.app,
        "PUT",
        &mapping,
        Some(&f.alice),
        Some("application/x-ndjson"),
        overrides,
    )
    .await;
    assert_eq!(
        a.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "NDJSON is for records"
    );
    // The document says so.
    let doc = openapi::served();
    let put = &doc["paths"]["/v1/connections/{id}/mappings/{entity}"]["put"];
    assert!(put["responses"]["415"].is_object());
}

#[tokio::test]
async fn the_openapi_document_carries_the_servers_quotas_and_is_as_strict_as_the_server() {
    let quotas = Quotas {
        max_name_length: 50,
        max_url_length: 500,
        max_target_length: 60,
        max_path_length: 70,
        max_overrides: 80,
        max_plugins: 9,
        ..Quotas::DEFAULT
    };
    let f = fixture_quotas("openapi-quotas", 1 << 20, quotas);
    let a = call(&f.app, "GET", "/openapi.json", None, "").await;
    let schemas = &a.body["components"]["schemas"];
    let property = |schema: &str, name: &str| schemas[schema]["properties"][name].clone();
    assert_eq!(property("NewConnection", "name")["maxLength"], 50);
    assert_eq!(property("NewTenant", "name")["maxLength"], 50);
    assert_eq!(property("UpstreamConfig", "base_url")["maxLength"], 500);
    assert_eq!(property("NewSubscription", "url")["maxLength"], 500);
    assert_eq!(property("NewSubscription", "secret")["maxLength"], 8192);
    assert_eq!(property("NewSubscription", "secret")["minLength"], 16);
    for rule in ["OverrideRule", "RuleSpec"] {
        assert_eq!(property(rule, "target")["maxLength"], 60, "{rule}");
        assert_eq!(property(rule, "path")["maxLength"], 70, "{rule}");
        assert_eq!(
            property(rule, "coalesce")["items"]["maxLength"],
            70,
            "{rule}"
        );
    }
    assert_eq!(property("OverrideSpec", "overrides")["maxItems"], 80);
    let oauth2 = schemas["Credentials"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["properties"]["token_url"].is_object())
        .unwrap();
    assert_eq!(oauth2["properties"]["token_url"]["maxLength"], 500);
    assert_eq!(oauth2["properties"]["client_secret"]["maxLength"], 8192);
    let paths = &a.body["paths"];
    let bind = &paths["/v1/connections/{id}/mappings/{entity}/plugins"]["put"];
    assert_eq!(
        bind["requestBody"]["content"]["application/json"]["schema"]["maxItems"],
        9
    );
    // What the server refuses, the document does not allow.
    assert_eq!(
        property("PluginBinding", "sha256")["pattern"],
        "^[0-9a-f]{64}$"
    );
    assert_eq!(
        schemas["NewConnection"]["then"]["required"],
        json!(["upstream", "credentials"])
    );
    let create = &paths["/v1/connections/{id}/purchase-orders"]["post"];
    let record = &create["requestBody"]["content"]["application/json"]["schema"];
    assert!(record["properties"]["number"].is_object());
    assert!(
        record["properties"]["errors"].is_null(),
        "errors are not written"
    );
    assert!(record["properties"]["remote_data"].is_null());
    let list = &paths["/v1/connections/{id}/purchase-orders"]["get"];
    let cursor = list["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "cursor")
        .unwrap();
    assert_eq!(cursor["schema"]["minLength"], 1);
    let errors = &paths["/v1/connections/{id}/errors"]["get"];
    for (name, member) in [("entity", "purchase_order"), ("kind", "rate_limit")] {
        let parameter = errors["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap();
        assert!(
            parameter["schema"]["enum"]
                .as_array()
                .unwrap()
                .contains(&json!(member)),
            "{parameter}"
        );
    }
}

/// `[[[…depth…[leaf]…]]]`, as JSON text.
fn nested(depth: usize, leaf: &str) -> String {
    format!("{}{leaf}{}", "[".repeat(depth), "]".repeat(depth))
}

#[tokio::test]
async fn an_amplifying_path_is_refused_when_a_mapping_is_changed_or_previewed() {
    let f = fixture("amplifying-path", 1 << 20);
    let id = new_connection(&f, &f.alice, "sap-s4hana").await;
    let mapping_uri = format!("/v1/connections/{id}/mappings/purchase_order");
    let hostile =
        json!({"overrides": [{"target": "custom_fields.q", "path": "$..*..*..*..*..*..*..*"}]});
    for (method, uri, body) in [
        ("PUT", mapping_uri.clone(), hostile.clone()),
        ("PATCH", mapping_uri.clone(), hostile.clone()),
        (
            "POST",
            format!("{mapping_uri}/preview"),
            json!({"overrides": hostile, "payload": {"PurchaseOrder": "1"}}),
        ),
    ] {
        let a = call(&f.app, method, &uri, Some(&f.alice), body.to_string()).await;
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{method}: {}",
            a.body
        );
        assert_eq!(a.body["error"]["code"], "invalid_mapping");
        let message = a.body["error"]["message"].as_str().unwrap();
        for needed in [
            "target `custom_fields.q`",
            "`$..*..*..*..*..*..*..*`",
            "7 descendant segments",
            "at most 2",
            "`max_descendant_segments`",
        ] {
            assert!(message.contains(needed), "{method}: {needed} in {message}");
        }
    }
    // Nothing changed.
    let a = call(&f.app, "GET", &mapping_uri, Some(&f.alice), "").await;
    assert_eq!(a.version.as_deref(), Some("0"));
}

#[tokio::test]
async fn a_descendant_path_over_its_budget_is_a_field_error_and_the_next_request_works() {
    let f = fixture("path-budget", 8 << 20);
    let id = new_connection(&f, &f.alice, "sap-s4hana").await;
    let mapping_uri = format!("/v1/connections/{id}/mappings/purchase_order");
    let uri = format!("/v1/connections/{id}/transform/purchase_order");
    let change = json!({"overrides": [{"target": "custom_fields.q", "path": "$..*"}]});
    let a = call(
        &f.app,
        "PUT",
        &mapping_uri,
        Some(&f.alice),
        change.to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);

    // Wide: 150,000 nodes for one `$..*`, more than a rule may select.
    let wide = format!(r#"{{"PurchaseOrder":"1","x":[{}0]}}"#, "0,".repeat(150_000));
    let a = call(&f.app, "POST", &uri, Some(&f.alice), wide.clone()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let record = &a.body["data"];
    assert_eq!(record["id"], "1");
    assert_eq!(record["custom_fields"]["q"], Value::Null);
    assert_eq!(record["errors"][0]["target"], "custom_fields.q");
    assert_eq!(record["errors"][0]["path"], "$..*");
    assert_eq!(record["errors"][0]["limit"], "path_selects_per_rule");
    assert_eq!(record["errors"][0]["max"], 100_000);
    assert!(
        record["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("selects more than 100000 nodes (limit `path_selects_per_rule`)"),
        "{}",
        record["errors"][0]
    );

    // Deep: a 100 kB string at the bottom of 100 nested arrays, selected once per level
    // (10 MB from a 100 kB request).
    let leaf = format!("\"{}\"", "x".repeat(100_000));
    let deep = format!(r#"{{"PurchaseOrder":"2","x":{}}}"#, nested(100, &leaf));
    let a = call(&f.app, "POST", &uri, Some(&f.alice), deep.clone()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let record = &a.body["data"];
    assert_eq!(record["custom_fields"]["q"], Value::Null);
    assert_eq!(record["errors"][0]["target"], "custom_fields.q");
    assert_eq!(record["errors"][0]["limit"], "max_record_bytes");
    assert_eq!(record["errors"][0]["max"], 8 << 20);
    let answer = serde_json::to_vec(&a.body).unwrap().len();
    assert!(answer < 10_000, "the answer is {answer} bytes");

    // Strict: the record fails, naming the limit.
    let a = call(
        &f.app,
        "POST",
        &format!("{uri}?strict=true"),
        Some(&f.alice),
        wide,
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert_eq!(a.body["error"]["code"], "limit_exceeded");
    assert_eq!(
        a.body["error"]["details"],
        json!({"limit": "path_selects_per_rule", "max": 100_000})
    );
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("target `custom_fields.q`")
    );

    // The next request maps as usual.
    let a = call(
        &f.app,
        "POST",
        &uri,
        Some(&f.alice),
        json!({"PurchaseOrder": "3", "x": [[1]]}).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(
        a.body["data"]["custom_fields"]["q"],
        json!(["3", [[1]], [1], 1])
    );
    assert!(a.body["data"].get("errors").is_none(), "{}", a.body);
}

#[tokio::test]
async fn answers_over_max_answer_bytes_are_refused_naming_it() {
    let options = ServiceOptions {
        map_limits: crosswalk_core::mapping::MapLimits {
            max_answer_bytes: 20_000,
            ..Default::default()
        },
        ..ServiceOptions::default()
    };
    let f = fixture_with("answer-limit", 1 << 20, options);
    let id = new_connection(&f, &f.alice, "sap-s4hana").await;
    let k = Some(f.alice.as_str());
    let expected = json!({"limit": "max_answer_bytes", "max": 20_000});

    // A batch whose records pass the limit: not mapped past it, and refused whole.
    let many: Vec<Value> = (0..200)
        .map(|i| json!({"PurchaseOrder": i.to_string()}))
        .collect();
    let uri = format!("/v1/connections/{id}/transform/purchase_order");
    let a = call(
        &f.app,
        "POST",
        &uri,
        k,
        Value::Array(many.clone()).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert_eq!(a.body["error"]["code"], "limit_exceeded");
    assert_eq!(a.body["error"]["details"], expected);
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("larger than 20000 bytes (limit `max_answer_bytes`)"),
        "{}",
        a.body
    );
    // One record whose source echo passes it.
    let big = json!({"PurchaseOrder": "1", "Note": "x".repeat(30_000)}).to_string();
    let a = call(
        &f.app,
        "POST",
        &format!("{uri}?remote_data=true"),
        k,
        big.clone(),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert_eq!(a.body["error"]["details"], expected);
    // NDJSON: the line is an error line naming it; the stream goes on.
    let lines = format!("{big}\n{}\n", json!({"PurchaseOrder": "2"}));
    let (_, answer) = ndjson(
        &f.app,
        &format!("{uri}?remote_data=true"),
        &f.alice,
        lines,
        4096,
    )
    .await;
    assert_eq!(answer[0]["error"]["code"], "limit_exceeded");
    assert_eq!(answer[0]["error"]["details"]["limit"], "max_answer_bytes");
    assert_eq!(answer[0]["error"]["details"]["line"], 1);
    assert_eq!(answer[1]["id"], "2");
    // A page of records.
    let a = call(
        &f.app,
        "GET",
        &format!("/v1/connections/{id}/purchase-orders?page_size=50&remote_data=true"),
        k,
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert_eq!(a.body["error"]["details"], expected);
    // Under the limit, all is as before.
    let a = call(
        &f.app,
        "POST",
        &uri,
        k,
        Value::Array(many[..3].to_vec()).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["data"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn integer_ids_of_any_length_keep_their_digits() {
    let f = fixture("big-integers", 1 << 20);
    let id = new_connection(&f, &f.alice, "sap-s4hana").await;
    let mapping_uri = format!("/v1/connections/{id}/mappings/purchase_order");
    let change = json!({"overrides": [{"target": "custom_fields.raw", "path": "$.PurchaseOrder"}]});
    let a = call(
        &f.app,
        "PUT",
        &mapping_uri,
        Some(&f.alice),
        change.to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let digits = "123456789012345678901234567890";
    let request = axum::http::Request::builder()
        .method("POST")
        .uri(format!("/v1/connections/{id}/transform/purchase_order"))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {}", f.alice))
        .body(Body::from(format!(r#"{{"PurchaseOrder": {digits}}}"#)))
        .unwrap();
    let response = f.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    // The id as text, and the number as it came.
    assert!(text.contains(&format!(r#""id":"{digits}""#)), "{text}");
    assert!(text.contains(&format!(r#""raw":{digits}"#)), "{text}");
}

/// A PATCH that names another system or entity is refused as a PUT is, and changes
/// nothing.
#[tokio::test]
async fn a_patch_naming_another_system_or_entity_is_refused() {
    let f = fixture("patch-mismatch", 8 << 20);
    let id = new_connection(&f, &f.alice, "sap-s4hana").await;
    let uri = format!("/v1/connections/{id}/mappings/purchase_order");
    for (field, value) in [("system", "ibm-maximo"), ("entity", "vendor")] {
        let body =
            json!({field: value, "overrides": [{"target": "custom_fields.x", "path": "$.X"}]});
        for method in ["PUT", "PATCH"] {
            let a = call(&f.app, method, &uri, Some(&f.alice), body.to_string()).await;
            assert_eq!(
                a.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{method} {field}: {}",
                a.body
            );
            let message = a.body["error"]["message"].as_str().unwrap();
            assert!(message.contains(value), "{method} {field}: {message}");
        }
    }
    let a = call(&f.app, "GET", &uri, Some(&f.alice), "").await;
    assert_eq!(a.body["version"], 0, "{}", a.body);
    // Naming its own system and entity is fine.
    let body = json!({"system": "sap-s4hana", "entity": "purchase_order", "overrides": [{"target": "custom_fields.x", "path": "$.X"}]});
    let a = call(&f.app, "PATCH", &uri, Some(&f.alice), body.to_string()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["version"], 1);
}

/// An entity is found by its singular or plural name, with underscores or hyphens,
/// wherever a path names one.
#[tokio::test]
async fn an_entity_is_found_by_its_singular_or_plural_name() {
    let f = fixture("entity-names", 8 << 20);
    let id = new_connection(&f, &f.alice, "sap-s4hana").await;
    let record = json!({"PurchaseOrder": "4500000001"}).to_string();
    for name in [
        "purchase_order",
        "purchase-order",
        "purchase_orders",
        "purchase-orders",
    ] {
        let uri = format!("/v1/connections/{id}/transform/{name}");
        let a = call(&f.app, "POST", &uri, Some(&f.alice), record.clone()).await;
        assert_eq!(a.status, StatusCode::OK, "{name}: {}", a.body);
        assert_eq!(a.body["data"]["id"], "4500000001", "{name}");
        let a = call(
            &f.app,
            "GET",
            &format!("/v1/connections/{id}/mappings/{name}"),
            Some(&f.alice),
            "",
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{name}: {}", a.body);
    }
    let a = call(
        &f.app,
        "POST",
        &format!("/v1/connections/{id}/transform/purchase-orderz"),
        Some(&f.alice),
        record,
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.body);
}

/// `crosswalk_records_mapped_total` counts the records of sandbox reads as it counts
/// those of transforms.
#[tokio::test]
async fn reads_count_the_records_they_map() {
    let f = fixture("read-metrics", 8 << 20);
    let id = new_connection(&f, &f.alice, "sap-s4hana").await;
    let a = call(
        &f.app,
        "GET",
        &format!("/v1/connections/{id}/purchase-orders?page_size=3"),
        Some(&f.alice),
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["data"].as_array().map(Vec::len), Some(3));
    let first = a.body["data"][0]["id"].as_str().unwrap().to_owned();
    let a = call(
        &f.app,
        "GET",
        &format!("/v1/connections/{id}/purchase-orders/{first}"),
        Some(&f.alice),
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = call(&f.app, "GET", "/metrics", Some(&f.admin), "").await;
    let text = a.body.as_str().unwrap();
    let line = format!(
        r#"crosswalk_records_mapped_total{{connection="{id}",entity="purchase_order",outcome="ok"}} 4"#
    );
    assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
}

/// A field that fails after a transform quotes the value that failed, not the source;
/// the error log names the record by its id.
#[tokio::test]
async fn a_field_error_quotes_the_failing_value_and_the_log_names_the_record() {
    let f = fixture("failing-value", 8 << 20);
    let id = new_connection(&f, &f.alice, "sap-s4hana").await;
    let uri = format!("/v1/connections/{id}/mappings/purchase_order");
    let overrides = json!({"overrides": [{"target": "currency", "path": "$.DocumentCurrency", "transforms": ["lower"]}]});
    let a = call(&f.app, "PUT", &uri, Some(&f.alice), overrides.to_string()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let record = json!({"PurchaseOrder": "4500000042", "DocumentCurrency": "USD"});
    let a = call(
        &f.app,
        "POST",
        &format!("/v1/connections/{id}/transform/purchase_order"),
        Some(&f.alice),
        record.to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let error = &a.body["data"]["errors"][0];
    assert_eq!(error["target"], "currency", "{}", a.body);
    assert_eq!(
        error["value"], "\"usd\"",
        "the value `lower` gave: {}",
        a.body
    );
    let a = call(
        &f.app,
        "GET",
        &format!("/v1/connections/{id}/errors"),
        Some(&f.alice),
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let entry = &a.body["data"][0];
    assert_eq!(entry["kind"], "mapping", "{}", a.body);
    assert_eq!(entry["record_id"], "4500000042", "{}", a.body);
}

/// The endpoint table of `docs/http-api.md` lists every route of the router, once,
/// and nothing else.
#[test]
fn the_documented_endpoints_are_the_routes() {
    use std::collections::BTreeSet;
    let docs = std::fs::read_to_string(support::root().join("docs/http-api.md"))
        .expect("docs/http-api.md");
    let mut documented = BTreeSet::new();
    for line in docs.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // `| `GET` | `/v1/…` | what it does |`
        let [_, method, path, ..] = cells.as_slice() else {
            continue;
        };
        let (Some(method), Some(path)) = (
            method.strip_prefix('`').and_then(|m| m.strip_suffix('`')),
            path.strip_prefix('`').and_then(|p| p.strip_suffix('`')),
        ) else {
            continue;
        };
        if !path.starts_with('/') {
            continue;
        }
        assert!(
            documented.insert(format!("{method} {path}")),
            "docs/http-api.md lists {method} {path} twice"
        );
    }
    let routes: BTreeSet<String> = crosswalk_service::http::routes()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    let undocumented: Vec<&String> = routes.difference(&documented).collect();
    let unknown: Vec<&String> = documented.difference(&routes).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "docs/http-api.md's endpoint table and the routes differ: not documented {undocumented:?}, not a route {unknown:?}"
    );
}

/// A client's request id that is not short and plain is replaced by a new one, and
/// `/metrics` is well-formed Prometheus text: every sample belongs to a family whose
/// `HELP` and `TYPE` come first, under the name its counters' samples have.
#[tokio::test]
async fn unusable_request_ids_are_replaced_and_metrics_declare_every_family() {
    let f = fixture("request-ids", 8 << 20);
    for bad in ["has space", &"x".repeat(65), ""] {
        let request = Request::builder()
            .uri("/healthz")
            .header(REQUEST_ID_HEADER, bad)
            .body(Body::empty())
            .unwrap();
        let response = f.app.clone().oneshot(request).await.unwrap();
        let id = response.headers()[REQUEST_ID_HEADER].to_str().unwrap();
        assert!(
            id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{bad:?} answered {id:?}"
        );
    }
    let a = call(&f.app, "GET", "/metrics", Some(&f.admin), "").await;
    let text = a.body.as_str().unwrap();
    let line = r#"crosswalk_http_requests_total{method="GET",route="/healthz",status="200"} 3"#;
    assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
    let mut declared: Vec<(&str, &str)> = vec![];
    let mut helped: Vec<&str> = vec![];
    for l in text.lines() {
        if let Some(help) = l.strip_prefix("# HELP ") {
            helped.push(help.split(' ').next().unwrap());
        } else if let Some(kind) = l.strip_prefix("# TYPE ") {
            let (name, kind) = kind.split_once(' ').unwrap();
            assert_eq!(helped.last(), Some(&name), "TYPE without HELP: {l}");
            declared.push((name, kind));
        } else {
            assert!(!l.starts_with('#'), "unexpected comment `{l}` in\n{text}");
            let name = l.split(['{', ' ']).next().unwrap();
            let (family, kind) = *declared.last().expect("a sample before any TYPE");
            let belongs = match kind {
                "counter" => name == family && family.ends_with("_total"),
                "histogram" => ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|s| name.strip_suffix(s) == Some(family)),
                _ => false,
            };
            assert!(belongs, "`{l}` is not of {family} ({kind})");
        }
    }
    assert!(declared.len() >= 2, "{text}");
}

/// A small transform without plugins is mapped on the async worker; its field errors
/// still reach the connection's error log (recorded off the worker), with their cause.
#[tokio::test]
async fn an_inline_transforms_field_errors_reach_the_error_log_with_their_cause() {
    let f = fixture("inline-errors", 1 << 20);
    let id = new_connection(&f, &f.alice, "sap-s4hana").await;
    let a = call(
        &f.app,
        "POST",
        &format!("/v1/connections/{id}/transform/purchase-order"),
        Some(&f.alice),
        json!({"PurchaseOrder": "4500000001", "PurchaseOrderDate": "31.12.2024"}).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let error = &a.body["data"]["errors"][0];
    assert_eq!(error["target"], "order_date", "{error}");
    assert_eq!(error["cause"], "transform", "{error}");
    assert_eq!(error["transform"], "date", "{error}");
    let log = call(
        &f.app,
        "GET",
        &format!("/v1/connections/{id}/errors"),
        Some(&f.alice),
        "",
    )
    .await;
    assert_eq!(log.status, StatusCode::OK, "{}", log.body);
    let entry = &log.body["data"][0];
    assert_eq!(entry["kind"], "mapping", "{entry}");
    assert_eq!(entry["record_id"], "4500000001", "{entry}");
    assert!(
        entry["message"]
            .as_str()
            .unwrap()
            .starts_with("1 field(s) failed: order_date: transform `date`"),
        "{entry}"
    );
}

/// What a client that writes mappings reads: the systems and their entities, the
/// transforms with an example step each, the model's schema of an entity.
#[tokio::test]
async fn the_mapping_language_is_described_to_clients() {
    let f = fixture("language", 1 << 20);
    let systems = call(&f.app, "GET", "/v1/systems", Some(&f.alice), "").await;
    assert_eq!(systems.status, StatusCode::OK, "{}", systems.body);
    let sap = systems.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "sap-s4hana")
        .expect("SAP is listed");
    assert!(
        sap["entities"]
            .as_array()
            .unwrap()
            .contains(&json!("purchase_order")),
        "{sap}"
    );

    let transforms = call(&f.app, "GET", "/v1/transforms", Some(&f.alice), "").await;
    assert_eq!(transforms.status, StatusCode::OK, "{}", transforms.body);
    let round = transforms.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "round")
        .expect("round is listed");
    assert_eq!(round["example"], json!({"round": 2}), "{round}");
    assert!(
        round["arguments"].as_str().unwrap().contains("digits"),
        "{round}"
    );

    let model = call(
        &f.app,
        "GET",
        "/v1/model/purchase-orders",
        Some(&f.alice),
        "",
    )
    .await;
    assert_eq!(model.status, StatusCode::OK, "{}", model.body);
    assert_eq!(
        model.body["properties"]["vendor"]["type"],
        json!(["object", "null"])
    );
    assert!(
        model.body["required"]
            .as_array()
            .unwrap()
            .contains(&json!("id"))
    );
    let unknown = call(&f.app, "GET", "/v1/model/invoice", Some(&f.alice), "").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);
    assert!(
        unknown.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("purchase_order")
    );

    // None of it without a key.
    let anonymous = call(&f.app, "GET", "/v1/transforms", None, "").await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

/// A JSONPath evaluated on a sample: what it selects, or where it stops being valid.
#[tokio::test]
async fn a_jsonpath_is_evaluated_on_a_sample_or_its_error_placed() {
    let f = fixture("jsonpath", 1 << 20);
    let document = json!({"Supplier": "17300001", "items": [{"Plant": "1710"}, {"Plant": "1720"}], "Empty": null});
    let cases = [
        (
            "$.Supplier",
            StatusCode::OK,
            json!({"singular": true, "values": ["17300001"]}),
        ),
        (
            "$.items[*].Plant",
            StatusCode::OK,
            json!({"singular": false, "values": ["1710", "1720"]}),
        ),
        (
            "$.Missing",
            StatusCode::OK,
            json!({"singular": true, "values": []}),
        ),
        (
            "$.Empty",
            StatusCode::OK,
            json!({"singular": true, "values": [null]}),
        ),
        (
            "$.items[",
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"position": 9}),
        ),
        (
            "$..a..b..c",
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"refused": true}),
        ),
    ];
    for (path, status, expected) in cases {
        let a = call(
            &f.app,
            "POST",
            "/v1/jsonpath",
            Some(&f.alice),
            json!({"path": path, "document": document}).to_string(),
        )
        .await;
        assert_eq!(a.status, status, "{path}: {}", a.body);
        if status == StatusCode::OK {
            assert_eq!(a.body["path"], path);
            assert_eq!(
                a.body["singular"], expected["singular"],
                "{path}: {}",
                a.body
            );
            assert_eq!(a.body["values"], expected["values"], "{path}: {}", a.body);
        } else {
            assert_eq!(
                a.body["error"]["code"], "invalid_jsonpath",
                "{path}: {}",
                a.body
            );
            let details = &a.body["error"]["details"];
            if expected["position"].is_number() {
                assert_eq!(
                    details["position"], expected["position"],
                    "{path}: {}",
                    a.body
                );
                assert!(
                    a.body["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("position 9")
                );
            } else {
                assert!(
                    details["refused"]
                        .as_str()
                        .unwrap()
                        .contains("max_descendant_segments"),
                    "{path}: {}",
                    a.body
                );
            }
        }
    }
    // A path longer than a mapping may hold is refused before it is parsed.
    let long = format!("$.{}", "a".repeat(2000));
    let a = call(
        &f.app,
        "POST",
        "/v1/jsonpath",
        Some(&f.alice),
        json!({"path": long, "document": {}}).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert_eq!(a.body["error"]["code"], "limit_exceeded", "{}", a.body);
    assert_eq!(
        a.body["error"]["details"]["limit"], "max_path_length",
        "{}",
        a.body
    );
    // A body that is not the shape names what is wrong.
    let a = call(
        &f.app,
        "POST",
        "/v1/jsonpath",
        Some(&f.alice),
        json!({"path": "$"}).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("document"),
        "{}",
        a.body
    );
}

/// A refused mapping places each problem at its target, and a path's at its position.
#[tokio::test]
async fn an_invalid_mapping_places_each_problem_at_its_target() {
    let f = fixture("placed", 1 << 20);
    let id = new_connection(&f, &f.alice, "sap-s4hana").await;
    let a = call(
        &f.app,
        "PUT",
        &format!("/v1/connections/{id}/mappings/purchase_order"),
        Some(&f.alice),
        json!({"overrides": [
            {"target": "vendor.name", "path": "$.Supplier["},
            {"target": "currency", "path": "$.DocumentCurrency", "transforms": ["uper"]},
        ]})
        .to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    let details = &a.body["error"]["details"];
    assert_eq!(
        details["problems"].as_array().unwrap().len(),
        2,
        "{details}"
    );
    assert_eq!(
        details["targets"],
        json!([{"target": "vendor.name", "position": 12}, {"target": "currency", "position": null}]),
        "{details}"
    );
}

/// Only the admin key lists tenants.
#[tokio::test]
async fn the_admin_key_lists_tenants_and_a_tenant_key_may_not() {
    let f = fixture("tenants", 1 << 20);
    let a = call(&f.app, "GET", "/v1/tenants", Some(&f.admin), "").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let names: Vec<&str> = a.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob", "admin"]);
    let a = call(&f.app, "GET", "/v1/tenants", Some(&f.alice), "").await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert_eq!(
        a.body["error"]["message"],
        "only an admin key lists tenants"
    );

    // Either key reads what it is, and nothing of its secret.
    for (key, role) in [(&f.admin, "admin"), (&f.alice, "tenant")] {
        let a = call(&f.app, "GET", "/v1/key", Some(key), "").await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        assert_eq!(a.body["role"], role, "{}", a.body);
        assert!(
            a.body["id"].as_str().unwrap().starts_with("key_"),
            "{}",
            a.body
        );
        assert!(
            !a.body.to_string().contains(key.as_str()),
            "the secret is shown"
        );
    }
    let a = call(&f.app, "GET", "/v1/key", Some("cw_wrong"), "").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
}

/// Two versions compared: the override entries that differ, by target, and the
/// bindings; by default the current version against the one before.
#[tokio::test]
async fn two_versions_of_a_mapping_are_compared_by_target() {
    let f = fixture("diff", 1 << 20);
    let id = new_connection(&f, &f.alice, "sap-s4hana").await;
    let mapping = format!("/v1/connections/{id}/mappings/purchase_order");
    let name = json!({"target": "vendor.name", "path": "$.ZZ1_SupplierName_PDH"});
    let cost = json!({"target": "custom_fields.cost_center", "path": "$.ZZ1_CostCenter_PDH"});
    for change in [json!({"overrides": [name]}), json!({"overrides": [cost]})] {
        let a = call(
            &f.app,
            "PATCH",
            &mapping,
            Some(&f.alice),
            change.to_string(),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    }
    let a = call(
        &f.app,
        "GET",
        &format!("{mapping}/diff"),
        Some(&f.alice),
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(
        a.body,
        json!({"from": 1, "to": 2, "changes": [
            {"part": "override", "target": "custom_fields.cost_center", "before": null, "after": cost},
        ]})
    );
    let a = call(
        &f.app,
        "GET",
        &format!("{mapping}/diff?from=2&to=0"),
        Some(&f.alice),
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let targets: Vec<&Value> = a.body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["target"])
        .collect();
    assert_eq!(
        targets,
        [&json!("vendor.name"), &json!("custom_fields.cost_center")]
    );
    assert!(
        a.body["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["after"].is_null())
    );

    let a = call(
        &f.app,
        "GET",
        &format!("{mapping}/diff?from=0&to=9"),
        Some(&f.alice),
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.body);
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("version 9")
    );
    let a = call(
        &f.app,
        "GET",
        &format!("{mapping}/diff?from=x"),
        Some(&f.alice),
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    // Another tenant's connection does not exist for bob.
    let a = call(&f.app, "GET", &format!("{mapping}/diff"), Some(&f.bob), "").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.body);
}
