//! The mapping language, for clients that write mappings: the source systems and the
//! entities each maps (`GET /v1/systems`), the built-in transforms with their
//! arguments (`GET /v1/transforms`), the unified model's schema of an entity
//! (`GET /v1/model/{entity}`), and a JSONPath evaluated on a sample document
//! (`POST /v1/jsonpath`), with the position where an invalid one stops being valid.
//! The console builds its rule editor on these; an API user gets the same answers.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::body::json_body;
use super::{ApiError, AppState, Caller, ErrorCode, List, answer};
use crosswalk_core::mapping::limits::refuse;
use crosswalk_core::mapping::transform::CATALOG;
use crosswalk_core::model::Entity;
use crosswalk_core::path::RecordBudget;

/// A source system Crosswalk maps.
#[derive(Serialize, JsonSchema)]
pub struct SystemInfo {
    /// Its id, as a connection names it (`sap-s4hana`).
    pub id: &'static str,
    /// The product's name.
    pub name: &'static str,
    /// The API its default mappings read.
    pub api: &'static str,
    /// The entities it has a default mapping of.
    pub entities: Vec<Entity>,
}

/// Every source system, and the entities each maps.
pub(super) async fn list_systems(_: Caller) -> Json<List<SystemInfo>> {
    let data = crosswalk_systems::SYSTEMS
        .iter()
        .map(|s| SystemInfo {
            id: s.id.as_str(),
            name: s.name,
            api: s.api,
            entities: s.entities().collect(),
        })
        .collect();
    Json(List { data })
}

/// A built-in transform.
#[derive(Serialize, JsonSchema)]
pub struct TransformInfo {
    /// Its name in a step (`round`).
    pub name: &'static str,
    /// What it does.
    pub summary: &'static str,
    /// The arguments it takes, in words; `null` when it takes none.
    pub arguments: Option<&'static str>,
    /// A step that uses it (`{"round": 2}`, or `"trim"` for one without arguments).
    pub example: Value,
}

/// Every built-in transform, in the order the mapping spec lists them.
pub(super) async fn list_transforms(_: Caller) -> Json<List<TransformInfo>> {
    let data = CATALOG
        .iter()
        .map(|def| TransformInfo {
            name: def.name,
            summary: def.summary,
            arguments: def.arguments,
            example: serde_json::from_str(def.example).expect("a test parses every example"),
        })
        .collect();
    Json(List { data })
}

/// The unified model's JSON Schema (draft 2020-12) of an entity: its fields, their
/// types and formats, and which are required.
pub(super) async fn model_schema(
    _: Caller,
    Path(name): Path<String>,
) -> Result<Json<&'static Value>, ApiError> {
    let entity: Entity = name
        .parse()
        .map_err(|e: crosswalk_core::model::UnknownEntity| {
            ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, e.to_string())
        })?;
    Ok(Json(entity.schema()))
}

/// A JSONPath and the document to evaluate it on.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Evaluate {
    /// An RFC 9535 query, as a rule's `path` takes it.
    pub path: String,
    /// The document: a source record, as a rule sees it.
    pub document: Value,
}

/// What a JSONPath selects in a document.
#[derive(Serialize, JsonSchema)]
pub struct Evaluated {
    /// The query, as given.
    pub path: String,
    /// Whether it is singular (only names and indexes: at most one value). A rule
    /// maps a singular query's value; any other query gives an array of values.
    pub singular: bool,
    /// The selected values, in document order; empty when it selects nothing.
    pub values: Vec<Value>,
}

/// Evaluates a JSONPath on a document, within what a mapping's rule may take: a path of
/// `max_path_length`, the JSONPath budgets of one rule, an answer of
/// `max_answer_bytes`. An invalid query is 422 `invalid_jsonpath` with its `position`,
/// a query that mappings refuse as too costly is the same with `refused`.
pub(super) async fn evaluate(
    State(state): State<AppState>,
    _: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Evaluate { path, document } = json_body(body)?;
    // What a mapping may hold, so that nothing longer is parsed.
    state.quotas().path("path", &path)?;
    let limits = state.inner.map_limits;
    let answer_limit = state.answer_limit();
    super::work::blocking(move || {
        let query = crosswalk_core::path::Path::parse(&path).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidJsonpath,
                e.to_string(),
            )
            .details(json!({"position": e.position}))
        })?;
        if let Some(reason) = refuse(query.shape()) {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidJsonpath,
                format!("JSONPath `{path}` is refused: {reason}"),
            )
            .details(json!({"refused": reason})));
        }
        let mut budget = RecordBudget::new(&limits.path, limits.record_bytes()).rule();
        let over = |e: crosswalk_core::path::OverBudget| {
            answer::limit_exceeded(e.limit, format!("JSONPath `{path}`: {e}"))
        };
        let selected = query.select_within(&document, &mut budget).map_err(over)?;
        let values = match (query.is_singular(), selected) {
            (true, value) if query.node(&document).is_some() => vec![value],
            (true, _) => Vec::new(),
            (false, Value::Array(values)) => values,
            (false, other) => vec![other],
        };
        let singular = query.is_singular();
        answer::json(
            &Evaluated {
                path,
                singular,
                values,
            },
            answer_limit,
        )
    })
    .await
}
