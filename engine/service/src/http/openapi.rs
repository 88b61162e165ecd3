//! The OpenAPI 3.1 document served at `/openapi.json`.
//!
//! The router and the document are built from one table of [`Route`]s (see
//! `http::routes`): an endpoint cannot be served without being documented, nor
//! documented without being served. Request and response schemas come from the Rust
//! types that the handlers read and write, through schemars, whose JSON Schema 2020-12
//! is OpenAPI 3.1's own dialect; the unified records are the model's own schemas.
//! The server's [`Quotas`] are written into the schemas as `maxLength` and `maxItems`
//! (and in words where JSON Schema cannot say them), so that the document promises
//! no more than the server accepts.

use axum::http::Method;
use axum::routing::MethodRouter;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::{Map, Value, json};

use super::{AppState, VERSION_HEADER, error::ErrorBody, ndjson, observe::REQUEST_ID_HEADER};
use crate::quota::Quotas;
use crosswalk_core::model::Entity;

/// Makes the schema of a type, registering the types it refers to.
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// The [`SchemaFn`] of `T`.
pub fn schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone.
    Public,
    /// A tenant's (or the admin's) key.
    Key,
    /// The admin's key only.
    Admin,
}

/// What an endpoint takes as its body.
#[derive(Clone, Copy)]
pub enum Input {
    /// Nothing.
    None,
    /// JSON of this schema.
    Json(SchemaFn),
    /// A WebAssembly component.
    Wasm,
    /// Source records: JSON (one, an array or a collection) or NDJSON.
    Records,
}

/// What an endpoint answers on success.
#[derive(Clone, Copy)]
pub enum Output {
    /// JSON of this schema.
    Json(SchemaFn),
    /// Plain text (with this content type).
    Text(&'static str),
    /// No body.
    Empty,
    /// Unified records: JSON, or NDJSON for an NDJSON request.
    Records,
}

/// How a route uses a mapping's entity tag (its version in quotes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    /// Not at all.
    None,
    /// Its answers carry `ETag`.
    Answers,
    /// It takes `If-Match`, and its answers carry `ETag`.
    Conditional,
}

/// One endpoint: how it is served and how it is documented.
pub struct Route {
    /// The path template, as axum and OpenAPI both write it.
    pub path: &'static str,
    /// The method.
    pub method: Method,
    /// The handler.
    pub handler: MethodRouter<AppState>,
    /// The `operationId`.
    pub operation: &'static str,
    /// One line about it.
    pub summary: &'static str,
    /// Who may call it.
    pub access: Access,
    /// Its body.
    pub input: Input,
    /// Its success status.
    pub status: u16,
    /// Its success answer.
    pub output: Output,
    /// Error statuses besides those every endpoint of its kind has (401 with a key,
    /// 404 with path parameters, 400, 413 and 415 with a JSON body, 405 and 500).
    pub errors: &'static [u16],
    /// Whether answers carry the mapping version header.
    pub versioned: bool,
    /// Whether a request may name the mapping version it needs at least
    /// (`Crosswalk-Mapping-Version`).
    pub at_version: bool,
    /// How the route uses the mapping's entity tag.
    pub tag: Tag,
    /// Boolean query parameters and what they do.
    pub flags: &'static [(&'static str, &'static str)],
    /// Other query parameters: name, type (`string`, `token` for a non-empty string,
    /// `entity` for an entity's name, `error_kind` for an error log kind,
    /// `integer:<min>:<max>` or `date-time`) and what they do.
    pub query: &'static [(&'static str, &'static str, &'static str)],
}

impl Route {
    /// An endpoint with a method, a path, an id and a summary; the rest is set with
    /// the builder methods below.
    pub fn new(
        method: Method,
        path: &'static str,
        handler: MethodRouter<AppState>,
        operation: &'static str,
        summary: &'static str,
    ) -> Route {
        Route {
            path,
            method,
            handler,
            operation,
            summary,
            access: Access::Key,
            input: Input::None,
            status: 200,
            output: Output::Empty,
            errors: &[],
            versioned: false,
            at_version: false,
            tag: Tag::None,
            flags: &[],
            query: &[],
        }
    }

    /// Who may call it.
    pub fn access(mut self, access: Access) -> Route {
        self.access = access;
        self
    }

    /// Its body.
    pub fn input(mut self, input: Input) -> Route {
        self.input = input;
        self
    }

    /// Its success status and answer.
    pub fn answers(mut self, status: u16, output: Output) -> Route {
        self.status = status;
        self.output = output;
        self
    }

    /// Its own error statuses.
    pub fn errors(mut self, errors: &'static [u16]) -> Route {
        self.errors = errors;
        self
    }

    /// Its answers carry the mapping version.
    pub fn versioned(mut self) -> Route {
        self.versioned = true;
        self
    }

    /// It maps with the connection's mapping, and a request may ask for a version at
    /// least (`Crosswalk-Mapping-Version`): 412 when that version was never stored,
    /// 400 when the header is not a version.
    pub fn at_version(mut self) -> Route {
        self.at_version = true;
        self
    }

    /// Its answers carry the mapping's entity tag (`ETag`).
    pub fn tagged(mut self) -> Route {
        self.tag = Tag::Answers;
        self
    }

    /// It changes a mapping: it takes `If-Match`, answers 412 when the version moved,
    /// and its answers carry the new entity tag.
    pub fn conditional(mut self) -> Route {
        self.tag = Tag::Conditional;
        self
    }

    /// Its boolean query parameters.
    pub fn flags(mut self, flags: &'static [(&'static str, &'static str)]) -> Route {
        self.flags = flags;
        self
    }

    /// Its other query parameters.
    pub fn query(mut self, query: &'static [(&'static str, &'static str, &'static str)]) -> Route {
        self.query = query;
        self
    }

    /// Every error status it can answer, in order.
    pub fn error_statuses(&self) -> Vec<u16> {
        let mut statuses: Vec<u16> = self.errors.to_vec();
        if self.access != Access::Public {
            statuses.push(401);
        }
        if self.access == Access::Admin {
            statuses.push(403);
        }
        if self.path.contains('{') {
            statuses.push(404);
        }
        if matches!(self.input, Input::Json(_) | Input::Records) {
            statuses.extend([400, 413, 415]);
        }
        if matches!(self.input, Input::Wasm) {
            statuses.push(413);
        }
        if self.tag == Tag::Conditional {
            statuses.push(412);
        }
        if self.at_version {
            statuses.extend([400, 412]);
        }
        statuses.extend([405, 500]);
        statuses.sort_unstable();
        statuses.dedup();
        statuses
    }
}

/// What an error status means, in general; the `code` of the error says which case.
fn error_description(status: u16) -> &'static str {
    match status {
        400 => {
            "Malformed request: the body is not JSON (`details` has its line and column), or a query parameter is not understood."
        }
        401 => "No `Authorization: Bearer <key>` header, or an unknown key.",
        403 => "The key may not do this (an admin key is needed).",
        404 => "No such connection, entity or plugin; another tenant's answers the same.",
        405 => "The path does not take this method.",
        409 => {
            "In conflict with the state of things: the plugin is bound to a connection's current mapping, or the connection needs reauthorization (`needs_reauth`)."
        }
        412 => {
            "`If-Match` named a version of the mapping that is no longer the current one; nothing was changed (`details.current` is the current version). Or `Crosswalk-Mapping-Version` named a version of the mapping that was never stored."
        }
        413 => "The body is larger than the limit.",
        415 => {
            "The body's `Content-Type` is not JSON (`application/json` or `application/*+json`; NDJSON too where the endpoint streams records). A body without a `Content-Type` is read as JSON."
        }
        429 => {
            "The connection's upstream is rate limiting (`Retry-After` says for how long); it is not called until then."
        }
        502 => {
            "The upstream failed: unreachable, a 5xx, a permission refused on this entity, or an answer that is not what its API returns (`code` and `details.kind` say which)."
        }
        503 => {
            "The connection's circuit breaker is open (`Retry-After` says until the next probe), or the server has no secret key for live connections."
        }
        504 => "The upstream did not answer within the connection's timeout.",
        422 => {
            "Well-formed but refused: an invalid mapping (with every problem in `details.problems`), plugin, binding, system or version, a record that cannot be mapped, a write with fields that cannot be written (`unwritable_fields`, every one in `details.errors`), a write the source system refused (`upstream_rejected`), or a limit broken (`limit_exceeded`: `details.limit` names it, `details.max` is its value)."
        }
        500 => "An internal error; the server's log has the cause, under the request id.",
        _ => "An error.",
    }
}

/// The document of this service's routes under the default quotas, made on first use.
pub fn served() -> &'static Value {
    static DOCUMENT: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| document(&super::routes(), &Quotas::DEFAULT))
}

/// The document of `routes`, under `quotas`.
pub fn document(routes: &[Route], quotas: &Quotas) -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .into_generator();
    let error = schema::<ErrorBody>(&mut generator);
    let mut paths: Map<String, Value> = Map::new();
    for route in routes {
        let operation = operation(route, &mut generator, &error);
        let item = paths
            .entry(route.path)
            .or_insert_with(|| Value::Object(Map::new()));
        item[route.method.as_str().to_ascii_lowercase()] = operation;
    }
    add_links(&mut paths, routes);
    let mut schemas = generator.take_definitions(true);
    with_quotas(&mut schemas, &mut paths, quotas);
    schemas.values_mut().for_each(integer_bounds);
    paths.values_mut().for_each(integer_bounds);
    for entity in Entity::ALL {
        let mut model = entity.schema().clone();
        if let Value::Object(m) = &mut model {
            m.remove("$schema");
        }
        schemas.insert(entity.as_str().to_owned(), model);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Crosswalk",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Maps the payloads of industrial source systems (SAP S/4HANA, IBM Maximo, Microsoft Dynamics 365) to one unified model, with per-connection overrides and WebAssembly plugins.",
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "An API key: the admin's, or a tenant's from `POST /v1/tenants`."}},
        },
    })
}

/// The operations whose answers carry the ids that other operations take in their
/// path: the parameter, and where the id is in the success answer's body.
const PRODUCERS: &[(&str, &str, &str)] = &[
    ("createConnection", "id", "$response.body#/id"),
    ("uploadPlugin", "sha256", "$response.body#/plugin/sha256"),
    (
        "createWebhook",
        "webhook_id",
        "$response.body#/subscription/id",
    ),
];

/// OpenAPI links from each producer's success answer to every operation that takes
/// its id, so that a client (or a stateful test tool) can follow them.
fn add_links(paths: &mut Map<String, Value>, routes: &[Route]) {
    for (producer, param, expression) in PRODUCERS {
        let Some(source) = routes.iter().find(|r| r.operation == *producer) else {
            continue;
        };
        let mut links = Map::new();
        for route in routes
            .iter()
            .filter(|r| r.path.contains(&format!("{{{param}}}")))
        {
            links.insert(
                route.operation.to_owned(),
                json!({"operationId": route.operation, "parameters": {*param: expression}}),
            );
        }
        let method = source.method.as_str().to_ascii_lowercase();
        paths[source.path][method]["responses"][source.status.to_string()]["links"] =
            Value::Object(links);
    }
}

fn operation(route: &Route, generator: &mut SchemaGenerator, error: &Schema) -> Value {
    // Tags group the document: the resource under /v1, or `service` for the rest.
    let tag = match route.path.strip_prefix("/v1/") {
        None => "service",
        Some(_) if route.path.contains("/mappings/") => "mappings",
        Some(_) if route.path.contains("/transform/") => "transform",
        Some(_)
            if super::records::RESOURCES
                .iter()
                .any(|r| route.path.starts_with(r.collection)) =>
        {
            "records"
        }
        Some(rest) => rest.split('/').next().unwrap_or("service"),
    };
    let mut op = json!({
        "operationId": route.operation,
        "summary": route.summary,
        "tags": [tag],
        "security": if route.access == Access::Public { json!([]) } else { json!([{"bearer": []}]) },
    });
    let mut parameters: Vec<Value> = route
        .path
        .split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .map(path_parameter)
        .collect();
    parameters.extend(route.flags.iter().map(|(name, description)| {
        json!({"name": name, "in": "query", "required": false, "description": description, "schema": {"type": "boolean", "default": false}})
    }));
    parameters.extend(route.query.iter().map(|(name, kind, description)| {
        let schema = match kind.split(':').collect::<Vec<_>>()[..] {
            ["date-time"] => json!({"type": "string", "format": "date-time"}),
            ["token"] => json!({"type": "string", "minLength": 1}),
            ["entity"] => entity_enum(),
            ["error_kind"] => json!({
                "type": "string",
                "enum": crate::connection::ErrorKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
            }),
            ["log_level"] => json!({"type": "string", "enum": ["debug", "info", "warn", "error"]}),
            ["integer", min, max] => json!({
                "type": "integer",
                "minimum": min.parse::<u64>().expect("a bound"),
                "maximum": max.parse::<u64>().expect("a bound"),
            }),
            _ => json!({"type": kind}),
        };
        json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
    }));
    if route.tag == Tag::Conditional {
        parameters.push(json!({"name": "If-Match", "in": "header", "required": false, "description": "Make the change only if the mapping is still at this version: its `ETag` (the version in quotes, `\"3\"`; a bare `3` is taken as that), a list of them (the change is made if one is the current version), or `*`. A version that moved, a weak tag and a tag that is no version answer 412 and change nothing.", "schema": {"type": "string", "pattern": "^(\\*|[0-9]+|(W/)?\"[^\"]*\"( *, *(W/)?\"[^\"]*\")*)$"}}));
    }
    if route.at_version {
        parameters.push(json!({"name": VERSION_HEADER, "in": "header", "required": false, "description": "The mapping version this request needs at least: the one a change just answered (its `crosswalk-mapping-version`). A replica that has not loaded it yet loads it from the store before answering, so that a client sees its own change whichever replica answers; a version never stored answers 412.", "schema": {"type": "integer", "minimum": 0, "maximum": u64::MAX}}));
    }
    if !parameters.is_empty() {
        op["parameters"] = Value::Array(parameters);
    }
    match route.input {
        Input::None => {}
        Input::Json(f) => {
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": f(generator)}}});
        }
        Input::Wasm => {
            op["requestBody"] = json!({"required": true, "description": "The component's bytes (built for wasm32-wasip2), as they are.", "content": {"application/wasm": {"schema": {"type": "string", "format": "binary", "contentMediaType": "application/wasm"}}}});
        }
        Input::Records => {
            op["requestBody"] = json!({"required": true, "content": {
                "application/json": {"schema": {"description": "One source record, an array of them, or the system's collection envelope (`d.results`, `value`, `member`).", "type": ["object", "array"]}},
                ndjson::CONTENT_TYPE: {"schema": {"description": "One source record per line, streamed.", "type": "string"}},
            }});
        }
    }
    let mut headers = json!({REQUEST_ID_HEADER: {"description": "The request's id: the client's when it sent a usable one.", "schema": {"type": "string"}}});
    if route.versioned {
        headers[VERSION_HEADER] = json!({"description": "The mapping version that produced the answer (0: the system's default).", "schema": {"type": "integer", "minimum": 0}});
    }
    let mut success = json!({"description": route.summary, "headers": headers.clone()});
    if route.tag != Tag::None {
        success["headers"]["ETag"] = json!({"description": "The mapping's entity tag: its version in quotes, for `If-Match`.", "schema": {"type": "string"}});
    }
    match route.output {
        Output::Empty => {}
        Output::Json(f) => {
            success["content"] = json!({"application/json": {"schema": f(generator)}})
        }
        Output::Text(content_type) => {
            success["content"] = json!({content_type: {"schema": {"type": "string"}}})
        }
        Output::Records => {
            success["content"] = json!({
                "application/json": {"schema": records_answer()},
                ndjson::CONTENT_TYPE: {"schema": {"description": "One unified record per source line, in order; a line that fails is an error in the API's error shape with `details.line`.", "type": "string"}},
            })
        }
    }
    let mut responses = Map::new();
    responses.insert(route.status.to_string(), success);
    let mut error_headers = headers;
    if let Value::Object(h) = &mut error_headers {
        h.remove(VERSION_HEADER);
    }
    for status in route.error_statuses() {
        responses.insert(
            status.to_string(),
            json!({"description": error_description(status), "headers": error_headers, "content": {"application/json": {"schema": error}}}),
        );
    }
    op["responses"] = Value::Object(responses);
    op
}

fn path_parameter(name: &str) -> Value {
    let (description, schema) = match name {
        "id" => ("The connection's id (`con_…`).", json!({"type": "string"})),
        "entity" => ("The unified entity.", entity_enum()),
        "record_id" => (
            "The record's id: the source system's key, as the unified record's `id` gives it.",
            json!({"type": "string"}),
        ),
        "webhook_id" => (
            "The webhook subscription's id (`whk_…`).",
            json!({"type": "string"}),
        ),
        "sha256" => (
            "The plugin version: the sha256 of its component, in lowercase hex.",
            json!({"type": "string", "pattern": "^[0-9a-f]{64}$"}),
        ),
        _ => ("", json!({"type": "string"})),
    };
    json!({"name": name, "in": "path", "required": true, "description": description, "schema": schema})
}

/// The names of the entities.
fn entity_enum() -> Value {
    json!({"type": "string", "enum": Entity::ALL.iter().map(|e| e.as_str()).collect::<Vec<_>>()})
}

/// `{"data": record}` for one source record, `{"data": [record or error, …]}` for many.
fn records_answer() -> Schema {
    let record: Vec<Value> = Entity::ALL
        .iter()
        .map(|e| json!({"$ref": format!("#/components/schemas/{}", e.as_str())}))
        .collect();
    json_schema!({
        "type": "object",
        "required": ["data"],
        "properties": {
            "data": {
                "oneOf": [
                    {"description": "The unified record of one source record.", "anyOf": record},
                    {
                        "description": "One item per source record, in order: its unified record, or why it failed (`details.index`).",
                        "type": "array",
                        "items": {"anyOf": [{"anyOf": record}, {"$ref": "#/components/schemas/ErrorBody"}]},
                    },
                ],
            },
        },
    })
}

/// The body of a write of the `N`th entity of [`Entity::ALL`] ([`Entity::write_schema`]).
pub fn entity_schema<const N: usize>(_: &mut SchemaGenerator) -> Schema {
    let entity = Entity::ALL[N];
    let mut model = entity.write_schema().clone();
    if let Value::Object(m) = &mut model {
        m.insert(
            "description".into(),
            Value::String(format!(
                "Fields of a {entity} in the unified model v1: all that a create sets, or those an update changes."
            )),
        );
    }
    Schema::try_from(model).expect("the model's schema is an object")
}

/// Writes the quotas into the schemas that take what they bound: `maxLength` on
/// names, URLs, secrets, targets and paths, `maxItems` on overrides and bindings, and
/// the limits JSON Schema cannot say (sizes) in the descriptions.
fn with_quotas(schemas: &mut Map<String, Value>, paths: &mut Map<String, Value>, q: &Quotas) {
    let length = |n: usize| json!({"maxLength": n});
    let set = |schemas: &mut Map<String, Value>, name: &str, property: &str, add: Value| {
        let Some(target) = schemas
            .get_mut(name)
            .and_then(|s| s.pointer_mut(&format!("/properties/{property}")))
        else {
            panic!("schema {name} has no property {property}");
        };
        merge(target, add);
    };
    // An absolute http(s) URL; the server also refuses userinfo and internal
    // addresses (docs/security.md), which a pattern cannot say.
    let url = |n: usize| json!({"maxLength": n, "pattern": "^https?://[^/?#@]+"});
    let nonempty = |n: usize| json!({"minLength": 1, "maxLength": n});
    set(schemas, "NewTenant", "name", length(q.max_name_length));
    set(schemas, "NewConnection", "name", length(q.max_name_length));
    set(schemas, "UpstreamConfig", "base_url", url(q.max_url_length));
    set(schemas, "NewSubscription", "url", url(q.max_url_length));
    set(
        schemas,
        "NewSubscription",
        "secret",
        length(q.max_secret_length),
    );
    // Every string of every kind of credentials.
    if let Some(Value::Array(kinds)) = schemas
        .get_mut("Credentials")
        .and_then(|c| c.get_mut("oneOf"))
    {
        for kind in kinds {
            let Some(Value::Object(properties)) = kind.get_mut("properties") else {
                continue;
            };
            for (name, property) in properties {
                match name.as_str() {
                    "type" => continue,
                    "token_url" => merge(property, url(q.max_url_length)),
                    _ => merge(property, length(q.max_secret_length)),
                }
            }
        }
    }
    for rule in ["OverrideRule", "RuleSpec"] {
        set(schemas, rule, "target", nonempty(q.max_target_length));
        set(schemas, rule, "path", nonempty(q.max_path_length));
        set(
            schemas,
            rule,
            "coalesce",
            json!({"items": nonempty(q.max_path_length)}),
        );
    }
    set(schemas, "WriteSpec", "path", nonempty(q.max_path_length));
    set(
        schemas,
        "OverrideSpec",
        "overrides",
        json!({"maxItems": q.max_overrides}),
    );
    if let Some(spec) = schemas.get_mut("OverrideSpec") {
        let description = format!(
            "{} At most {} override entries, nested rules included (`max_overrides`), and {} bytes as JSON (`max_mapping_bytes`).",
            spec["description"].as_str().unwrap_or_default(),
            q.max_overrides,
            q.max_mapping_bytes
        );
        spec["description"] = Value::String(description.trim_start().to_owned());
    }
    // The bindings are the body of `PUT …/plugins`: an array of its own.
    for item in paths.values_mut() {
        let Some(put) = item.get_mut("put") else {
            continue;
        };
        if put["operationId"] == "bindPlugins" {
            merge(
                &mut put["requestBody"]["content"]["application/json"]["schema"],
                json!({"maxItems": q.max_plugins}),
            );
        }
    }
}

/// Gives every integer of a fixed width (`"format": "uint32"` and the like, as
/// schemars writes Rust's integers) the bounds of its type where the schema has none:
/// a larger number is refused by the server, so the document says so.
fn integer_bounds(schema: &mut Value) {
    match schema {
        Value::Object(object) => {
            let bounds: Option<(i128, i128)> = match object.get("format").and_then(Value::as_str) {
                Some("uint8") => Some((0, u8::MAX.into())),
                Some("uint16") => Some((0, u16::MAX.into())),
                Some("uint32") => Some((0, u32::MAX.into())),
                Some("uint64") => Some((0, u64::MAX.into())),
                Some("int32") => Some((i32::MIN.into(), i32::MAX.into())),
                Some("int64") => Some((i64::MIN.into(), i64::MAX.into())),
                _ => None,
            };
            if let Some((min, max)) = bounds {
                object.entry("minimum").or_insert_with(|| {
                    Value::Number(serde_json::Number::from_i128(min).expect("in range"))
                });
                object.entry("maximum").or_insert_with(|| {
                    Value::Number(serde_json::Number::from_i128(max).expect("in range"))
                });
            }
            object.values_mut().for_each(integer_bounds);
        }
        Value::Array(items) => items.iter_mut().for_each(integer_bounds),
        _ => {}
    }
}

/// Adds the keys of `add` to the object `target`.
fn merge(target: &mut Value, add: Value) {
    let (Value::Object(target), Value::Object(add)) = (target, add) else {
        panic!("a schema is an object");
    };
    for (k, v) in add {
        match (target.get_mut(&k), v) {
            (Some(existing @ Value::Object(_)), v @ Value::Object(_)) => merge(existing, v),
            (_, v) => {
                target.insert(k, v);
            }
        }
    }
}
