//! The HTTP API through the router, without a socket (`oneshot`).

mod support;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use crosswalk::http::{AppState, VERSION_HEADER, app};
use crosswalk::plugin::{HostConfig, PluginHost};
use crosswalk::store::{Role, SledStore, Store};
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

fn fixture(name: &str, body_limit: usize) -> Fixture {
    let dir = std::env::temp_dir().join(format!("crosswalk-http-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir).unwrap());
    let key = |tenant: &str, role| {
        let t = store.create_tenant(tenant).unwrap();
        store.create_key(&t.id, role).unwrap().1
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
        app: app(AppState::new(store, host, body_limit)),
        alice,
        bob,
        admin,
        dir,
    }
}

struct Answer {
    status: StatusCode,
    version: Option<String>,
    body: Value,
}

async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    key: Option<&str>,
    body: impl Into<Body>,
) -> Answer {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
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
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    Answer {
        status,
        version,
        body,
    }
}

fn sample(path: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(path),
    )
    .unwrap()
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
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    let empty = json!({"overrides": []});
    call(
        &f.app,
        "PUT",
        &mapping_uri,
        Some(&f.alice),
        empty.to_string(),
    )
    .await;
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
    assert_eq!(versions, vec![1, 2, 3]);
    assert_eq!(a.body["data"][2]["rollback_of"], 1);
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

#[tokio::test]
async fn plugins_are_uploaded_bound_previewed_and_kept_while_bound() {
    let f = fixture("plugins", 8 << 20);
    let uom = support::rust_plugin_bytes("crosswalk-plugin-uom");
    let a = call(&f.app, "POST", "/v1/plugins", Some(&f.alice), uom.clone()).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let sha = a.body["plugin"]["sha256"].as_str().unwrap().to_owned();
    assert_eq!(a.body["plugin"]["name"], "uom");
    assert_eq!(a.body["functions"][0]["name"], "convert");
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

    let id = new_connection(&f, &f.alice, "sap-s4hana").await;
    let mapping_uri = format!("/v1/connections/{id}/mappings/purchase_order");
    let uses_uom = json!({"overrides": [{"target": "lines.unit_of_measure", "transforms": ["null_if_empty", {"plugin": "uom", "function": "convert", "args": {"from": "sap", "to": "iso"}}]}]});
    let a = call(
        &f.app,
        "PUT",
        &mapping_uri,
        Some(&f.alice),
        uses_uom.to_string(),
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
    let bind = json!([{"sha256": sha, "limits": {"timeout_ms": 100}}]);
    let a = call(
        &f.app,
        "PUT",
        &format!("{mapping_uri}/plugins"),
        Some(&f.alice),
        bind.to_string(),
    )
    .await;
    assert_eq!(
        (a.status, a.version.as_deref()),
        (StatusCode::OK, Some("1")),
        "{}",
        a.body
    );
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
    let a = call(
        &f.app,
        "PUT",
        &mapping_uri,
        Some(&f.alice),
        uses_uom.to_string(),
    )
    .await;
    assert_eq!(
        (a.status, a.version.as_deref()),
        (StatusCode::OK, Some("2")),
        "{}",
        a.body
    );

    let payload = sample("examples/payloads/sap-s4hana/purchase_order/standard.json");
    let a = call(
        &f.app,
        "POST",
        &format!("/v1/connections/{id}/transform/purchase_order"),
        Some(&f.alice),
        payload.clone(),
    )
    .await;
    assert_eq!(
        a.body["data"]["lines"][0]["unit_of_measure"], "H87",
        "{}",
        a.body
    );

    // Preview: back to the default units, without applying it.
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

    // PATCH adds an entry and keeps the others.
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
    let a = call(
        &f.app,
        "POST",
        &format!("/v1/connections/{id}/transform/purchase_order"),
        Some(&f.alice),
        payload,
    )
    .await;
    assert_eq!(a.body["data"]["lines"][0]["unit_of_measure"], "H87");

    // A bound plugin cannot be deleted; unbinding it while the mapping uses it is refused.
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
    let a = call(
        &f.app,
        "PUT",
        &format!("{mapping_uri}/plugins"),
        Some(&f.alice),
        "[]",
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
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
