//! A mock source system for the connection tests: an axum app that speaks SAP OData
//! V2 (`d.results`, `$top`/`$skip`, `__next`), Maximo's JSON API (`member`,
//! `oslc.pageSize`, `responseInfo.nextPage`) and Dynamics 365's OData V4 (`value`,
//! `@odata.nextLink`), serving the sandbox datasets, with switches for the failures a
//! real system has: refused credentials, a 403 on one entity set, 429 with
//! `Retry-After`, 500, slow answers, and credential rotation. It also has an OAuth 2.0
//! token endpoint (client credentials) and counts every call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use crosswalk_core::model::Entity;
use crosswalk_service::connection::upstream::basic_header;
use crosswalk_systems::sandbox;
use serde_json::{Value, json};

/// What the mock does on its next calls.
#[derive(Debug, Clone, Default)]
pub struct Switches {
    /// Answer every data call with this status (401, 500, …).
    pub fail_with: Option<u16>,
    /// Answer 403 on paths that contain this (an entity set).
    pub forbid: Option<&'static str>,
    /// Answer 429 with this `Retry-After` (seconds).
    pub rate_limit: Option<u64>,
    /// Wait this long before answering.
    pub delay: Option<Duration>,
    /// Serve server-driven paging (`__next`) on SAP instead of `$skip`.
    pub sap_server_paging: bool,
}

/// The mock's state: credentials it accepts, switches and counters.
#[derive(Debug)]
pub struct Mock {
    /// `user:password` (basic), the bearer token, or the API key it accepts.
    pub secret: Mutex<String>,
    /// The OAuth client secret it accepts.
    pub client_secret: Mutex<String>,
    /// Tokens it issued.
    pub tokens: Mutex<Vec<String>>,
    /// The switches.
    pub switches: Mutex<Switches>,
    /// Calls of data paths.
    pub data_calls: Mutex<u64>,
    /// Calls of the token endpoint.
    pub token_calls: Mutex<u64>,
    /// How long the tokens it issues live, in seconds (20: inside the client's 30 s
    /// margin, so that each call takes a fresh one).
    pub token_lifetime_s: Mutex<u64>,
    /// The query strings it was called with.
    pub queries: Mutex<Vec<String>>,
    /// The mock's records, per system and entity: the sandbox datasets, then what
    /// writes changed.
    pub tables: Mutex<HashMap<(&'static str, Entity), Vec<Value>>>,
    /// The writes it took: method, path and body.
    pub writes: Mutex<Vec<(String, String, Value)>>,
    /// Data calls being answered now.
    pub in_flight: Mutex<u64>,
    /// The most data calls it answered at once.
    pub max_in_flight: Mutex<u64>,
}

impl Mock {
    /// Sets the switches.
    pub fn set(&self, switches: Switches) {
        *self.switches.lock().unwrap() = switches;
    }
    /// Data calls so far.
    pub fn calls(&self) -> u64 {
        *self.data_calls.lock().unwrap()
    }
    /// Rotates the accepted credentials: those in use stop working.
    pub fn rotate(&self, new_secret: &str) {
        *self.secret.lock().unwrap() = new_secret.to_owned();
        *self.client_secret.lock().unwrap() = new_secret.to_owned();
        self.tokens.lock().unwrap().clear();
    }
}

/// Starts the mock on a free port; answers its base URL and state.
pub async fn start(secret: &str) -> (String, Arc<Mock>) {
    let mock = Arc::new(Mock {
        secret: Mutex::new(secret.to_owned()),
        client_secret: Mutex::new(secret.to_owned()),
        tokens: Mutex::new(Vec::new()),
        switches: Mutex::new(Switches::default()),
        data_calls: Mutex::new(0),
        token_calls: Mutex::new(0),
        token_lifetime_s: Mutex::new(20),
        queries: Mutex::new(Vec::new()),
        tables: Mutex::new(HashMap::new()),
        writes: Mutex::new(Vec::new()),
        in_flight: Mutex::new(0),
        max_in_flight: Mutex::new(0),
    });
    let app = Router::new()
        .route("/oauth/token", post(token))
        .fallback(data)
        .with_state(Arc::clone(&mock));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, mock)
}

async fn token(State(mock): State<Arc<Mock>>, headers: HeaderMap, body: String) -> Response {
    // Numbered by call, so that a token issued after the others were revoked is new.
    let call = {
        let mut calls = mock.token_calls.lock().unwrap();
        *calls += 1;
        *calls
    };
    let expected = basic_header("crosswalk", &mock.client_secret.lock().unwrap());
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if given != expected || !body.contains("grant_type=client_credentials") {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let token = format!("tok-{call}");
    mock.tokens.lock().unwrap().push(token.clone());
    // Short-lived: the client must refresh it (it refreshes within 30 s of expiry).
    let lifetime = *mock.token_lifetime_s.lock().unwrap();
    axum::Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": lifetime}))
        .into_response()
}

fn authorized(mock: &Mock, headers: &HeaderMap) -> bool {
    let secret = mock.secret.lock().unwrap().clone();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(auth) = header("authorization") {
        if let Some((user, password)) = secret.split_once(':') {
            return auth == basic_header(user, password);
        }
        let bearer = auth.strip_prefix("Bearer ").unwrap_or("");
        return bearer == secret || mock.tokens.lock().unwrap().iter().any(|t| t == bearer);
    }
    header("apikey") == Some(secret.as_str())
}

fn odata_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"code": "/IWFND/CM_CONSUMER/101", "message": {"lang": "en", "value": message}}})),
    )
        .into_response()
}

/// Which system and entity a path is, and the key of a one-record path.
fn route(path: &str) -> Option<(&'static str, Entity, Option<String>)> {
    const SETS: &[(&str, &str, Entity)] = &[
        ("sap-s4hana", "/A_PurchaseOrder", Entity::PurchaseOrder),
        ("sap-s4hana", "/MaintenanceOrder", Entity::WorkOrder),
        ("sap-s4hana", "/Equipment", Entity::Asset),
        ("sap-s4hana", "/A_BusinessPartner", Entity::Vendor),
        ("sap-s4hana", "/A_Product", Entity::Part),
        ("ibm-maximo", "/mxapipo", Entity::PurchaseOrder),
        ("ibm-maximo", "/mxapiwodetail", Entity::WorkOrder),
        ("ibm-maximo", "/mxapiasset", Entity::Asset),
        ("ibm-maximo", "/mxapivendor", Entity::Vendor),
        ("ibm-maximo", "/mxapiinventory", Entity::Part),
        (
            "dynamics-365-fo",
            "/PurchaseOrderHeadersV2",
            Entity::PurchaseOrder,
        ),
        ("dynamics-365-fo", "/VendorsV2", Entity::Vendor),
        ("dynamics-365-fo", "/ReleasedProductsV2", Entity::Part),
    ];
    for (system, set, entity) in SETS {
        if let Some(rest) = path.split_once(set).map(|(_, r)| r) {
            if rest.is_empty() {
                return Some((system, *entity, None));
            }
            if let Some(key) = rest.strip_prefix("/_") {
                return Some((system, *entity, Some(key.to_owned())));
            }
            // OData V4 composite keys: (dataAreaId='usmf',PurchaseOrderNumber='PO-1').
            if let Some(pairs) = rest.strip_prefix('(').and_then(|r| r.strip_suffix(')'))
                && pairs.contains('=')
            {
                let decoded: String = url::form_urlencoded::parse(pairs.as_bytes())
                    .map(|(k, v)| {
                        if v.is_empty() {
                            k.into_owned()
                        } else {
                            format!("{k}={v}")
                        }
                    })
                    .collect();
                let key = decoded
                    .rsplit('=')
                    .next()?
                    .trim_matches('\'')
                    .replace("''", "'");
                return Some((system, *entity, Some(key)));
            }
            let key = rest.strip_prefix("('")?.strip_suffix("')")?;
            let key = url::form_urlencoded::parse(key.as_bytes())
                .next()
                .map(|(k, _)| k.into_owned())
                .unwrap_or_default();
            return Some((system, *entity, Some(key.replace("''", "'"))));
        }
    }
    None
}

/// The mock's records of a system's entity (the sandbox dataset until a write).
fn table(mock: &Mock, system: &'static str, entity: Entity) -> Vec<Value> {
    mock.tables
        .lock()
        .unwrap()
        .entry((system, entity))
        .or_insert_with(|| {
            sandbox::records(system.parse().expect("a known system"), entity)
                .iter()
                .map(|s| s.record.clone())
                .collect()
        })
        .clone()
}

/// The key property of a system's entity in the mock.
fn key_of(system: &str, entity: Entity) -> &'static str {
    match (system, entity) {
        ("sap-s4hana", Entity::PurchaseOrder) => "PurchaseOrder",
        ("sap-s4hana", Entity::Vendor) => "BusinessPartner",
        ("sap-s4hana", Entity::WorkOrder) => "MaintenanceOrder",
        ("ibm-maximo", Entity::PurchaseOrder) => "ponum",
        ("ibm-maximo", Entity::WorkOrder) => "wonum",
        ("dynamics-365-fo", Entity::PurchaseOrder) => "PurchaseOrderNumber",
        ("dynamics-365-fo", Entity::Vendor) => "VendorAccountNumber",
        _ => "",
    }
}

/// The last segment of a Maximo record's href: unique per record, as Maximo's are
/// (the key, with the site for records that have one: two sites may reuse a number).
fn maximo_ref(record: &Value, key_field: &str) -> String {
    let key = record[key_field].as_str().unwrap_or_default();
    match record["siteid"].as_str() {
        Some(site) if !site.is_empty() => format!("{site}~{key}"),
        _ => key.to_owned(),
    }
}

/// Creates or merges a record, as the systems do; answers the stored record.
fn write(
    mock: &Mock,
    system: &'static str,
    entity: Entity,
    key: Option<String>,
    body: Value,
) -> Response {
    let key_field = key_of(system, entity);
    if system == "sap-s4hana" && body["Supplier"] == "99999999" {
        return odata_error(StatusCode::BAD_REQUEST, "Supplier 99999999 does not exist");
    }
    let mut tables = mock.tables.lock().unwrap();
    let rows = tables.entry((system, entity)).or_default();
    match key {
        None => {
            let Some(id) = body[key_field].as_str().map(str::to_owned) else {
                return odata_error(StatusCode::BAD_REQUEST, "the key is missing");
            };
            if rows.iter().any(|r| r[key_field] == id.as_str()) {
                return odata_error(StatusCode::CONFLICT, "the record exists already");
            }
            rows.push(body.clone());
            (StatusCode::CREATED, axum::Json(json!({"d": body}))).into_response()
        }
        Some(id) => match rows.iter_mut().find(|r| {
            if system == "ibm-maximo" {
                maximo_ref(r, key_field) == id
            } else {
                r[key_field] == id.as_str()
            }
        }) {
            Some(row) => {
                for (k, v) in body.as_object().into_iter().flatten() {
                    row[k] = v.clone();
                }
                StatusCode::NO_CONTENT.into_response()
            }
            None => odata_error(StatusCode::NOT_FOUND, "Resource not found"),
        },
    }
}

/// Milliseconds of SAP's `/Date(ms+0000)/`.
fn sap_ms(v: &Value) -> Option<i64> {
    let s = v.as_str()?.strip_prefix("/Date(")?;
    let digits: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

async fn data(
    State(mock): State<Arc<Mock>>,
    Query(query): Query<HashMap<String, String>>,
    request: Request,
) -> Response {
    *mock.data_calls.lock().unwrap() += 1;
    let uri = request.uri().clone();
    mock.queries
        .lock()
        .unwrap()
        .push(uri.query().unwrap_or("").to_owned());
    let switches = mock.switches.lock().unwrap().clone();
    if let Some(delay) = switches.delay {
        {
            let mut now = mock.in_flight.lock().unwrap();
            *now += 1;
            let mut max = mock.max_in_flight.lock().unwrap();
            *max = (*max).max(*now);
        }
        tokio::time::sleep(delay).await;
        *mock.in_flight.lock().unwrap() -= 1;
    }
    if !authorized(&mock, request.headers()) {
        return odata_error(
            StatusCode::UNAUTHORIZED,
            "Logon failed: user or password wrong",
        );
    }
    if let Some(seconds) = switches.rate_limit {
        let mut r = odata_error(StatusCode::TOO_MANY_REQUESTS, "Too many requests");
        r.headers_mut()
            .insert("retry-after", seconds.to_string().parse().unwrap());
        return r;
    }
    if let Some(status) = switches.fail_with {
        return odata_error(StatusCode::from_u16(status).unwrap(), "Internal error");
    }
    let path = uri.path().to_owned();
    if switches.forbid.is_some_and(|f| path.contains(f)) {
        return odata_error(
            StatusCode::FORBIDDEN,
            "No authorization for this entity set",
        );
    }
    let Some((system, entity, key)) = route(&path) else {
        return odata_error(StatusCode::NOT_FOUND, "Resource not found");
    };
    let method = request.method().clone();
    let headers = request.headers().clone();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let host = header("host");
    if method != axum::http::Method::GET {
        if system == "sap-s4hana"
            && (header("x-csrf-token") != "csrf-1"
                || !header("cookie").contains("SAP_SESSIONID=s1"))
        {
            return odata_error(StatusCode::FORBIDDEN, "CSRF token validation failed");
        }
        if system == "ibm-maximo" && key.is_some() && header("x-method-override") != "PATCH" {
            return odata_error(
                StatusCode::BAD_REQUEST,
                "an update is a POST with x-method-override: PATCH",
            );
        }
        let bytes = axum::body::to_bytes(request.into_body(), 1 << 20)
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        mock.writes
            .lock()
            .unwrap()
            .push((method.to_string(), path.clone(), body.clone()));
        return write(&mock, system, entity, key, body);
    }
    let csrf = header("x-csrf-token") == "fetch";
    let mut records = table(&mock, system, entity);
    if system == "ibm-maximo" {
        let key_field = key_of(system, entity);
        for r in &mut records {
            let id = maximo_ref(r, key_field);
            r["href"] = json!(format!(
                "http://{host}{}/_{id}",
                path.split("/_").next().unwrap()
            ));
        }
    }
    let key_field = key_of(system, entity);
    let mut response = answer(
        system, key, records, key_field, &query, &switches, &path, &host,
    );
    if csrf {
        let h = response.headers_mut();
        h.insert("x-csrf-token", "csrf-1".parse().unwrap());
        h.append("set-cookie", "SAP_SESSIONID=s1; path=/".parse().unwrap());
        h.append(
            "set-cookie",
            "sap-usercontext=sap-client=100; path=/".parse().unwrap(),
        );
    }
    response
}

/// A GET's answer.
#[allow(clippy::too_many_arguments)]
fn answer(
    system: &str,
    key: Option<String>,
    mut records: Vec<Value>,
    key_field: &str,
    query: &HashMap<String, String>,
    switches: &Switches,
    path: &str,
    host: &str,
) -> Response {
    if let Some(key) = key {
        return match records.into_iter().find(|r| r[key_field] == key.as_str()) {
            Some(r) => axum::Json(json!({"d": r})).into_response(),
            None => odata_error(StatusCode::NOT_FOUND, "Resource not found for segment"),
        };
    }
    match system {
        "sap-s4hana" => {
            if let Some(value) = query
                .get("$filter")
                .and_then(|f| f.strip_prefix("Supplier eq "))
            {
                let value = value.trim_matches('\'');
                records.retain(|r| r["Supplier"] == value);
            } else if let Some(filter) = query.get("$filter") {
                // LastChangeDateTime ge datetimeoffset'2024-03-20T00:00:00Z'
                let since = filter.split('\'').nth(1).unwrap_or("");
                let since = chrono::DateTime::parse_from_rfc3339(since)
                    .map(|d| d.timestamp_millis())
                    .unwrap_or(0);
                records.retain(|r| sap_ms(&r["LastChangeDateTime"]).is_some_and(|ms| ms >= since));
            }
            let top: usize = query
                .get("$top")
                .and_then(|t| t.parse().ok())
                .unwrap_or(1000);
            let skip: usize = query
                .get("$skip")
                .or(query.get("$skiptoken"))
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            let page: Vec<Value> = records.iter().skip(skip).take(top).cloned().collect();
            let mut d = json!({"results": page});
            if switches.sap_server_paging && skip + top < records.len() {
                d["__next"] = json!(format!(
                    "{}?$skiptoken={}&$top={top}&$format=json",
                    path.trim_start_matches('/'),
                    skip + top
                ));
            }
            axum::Json(json!({"d": d})).into_response()
        }
        "ibm-maximo" => {
            if let Some(filter) = query.get("oslc.where") {
                if let Some(since) = filter.strip_prefix("changedate>=") {
                    let since =
                        chrono::DateTime::parse_from_rfc3339(since.trim_matches('"')).unwrap();
                    records.retain(|r| {
                        r["changedate"]
                            .as_str()
                            .and_then(|d| chrono::DateTime::parse_from_rfc3339(d).ok())
                            .is_some_and(|d| d >= since)
                    });
                } else {
                    // field="value" and field="value" …
                    for clause in filter.split(" and ") {
                        let (field, value) = clause.split_once('=').unwrap();
                        let value = value.trim_matches('"');
                        records.retain(|r| r[field] == value);
                    }
                }
            }
            let size: usize = query
                .get("oslc.pageSize")
                .and_then(|t| t.parse().ok())
                .unwrap_or(1000);
            let pageno: usize = query
                .get("pageno")
                .and_then(|t| t.parse().ok())
                .unwrap_or(1);
            let page: Vec<Value> = records
                .iter()
                .skip((pageno - 1) * size)
                .take(size)
                .cloned()
                .collect();
            let mut body = json!({"member": page, "responseInfo": {"pagenum": pageno}});
            if pageno * size < records.len() {
                body["responseInfo"]["nextPage"] = json!({"href": format!(
                    "http://{host}{path}?lean=1&oslc.select=*&oslc.pageSize={size}&pageno={}",
                    pageno + 1
                )});
            }
            axum::Json(body).into_response()
        }
        _ => {
            if let Some(filter) = query.get("$filter") {
                // Field eq 'value' and Field eq 'value' …
                for clause in filter.split(" and ") {
                    let (field, value) = clause.split_once(" eq ").unwrap();
                    let value = value.trim_matches('\'').replace("''", "'");
                    records.retain(|r| r[field] == value.as_str());
                }
            }
            let top: usize = query
                .get("$top")
                .and_then(|t| t.parse().ok())
                .unwrap_or(1000);
            let skip: usize = query.get("$skip").and_then(|t| t.parse().ok()).unwrap_or(0);
            let page: Vec<Value> = records.iter().skip(skip).take(top).cloned().collect();
            let mut body = json!({"value": page});
            if skip + top < records.len() {
                body["@odata.nextLink"] = json!(format!(
                    "http://{host}{path}?cross-company=true&$top={top}&$skip={}",
                    skip + top
                ));
            }
            axum::Json(body).into_response()
        }
    }
}
