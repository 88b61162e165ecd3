//! A connection's mapping of an entity: read it, replace or merge its overrides, bind
//! plugin versions, list its versions, compare two of them, roll back to one, and
//! preview proposed overrides on a payload. A change is conditional on `If-Match` when the request
//! sends one, validated and stored as a new version off the async workers, then
//! published: the next request maps with it, and `mapping.updated` is emitted. Answers
//! carry the version in [`VERSION_HEADER`] and as their entity tag.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::answer;
use super::body::json_body;
use super::connections::{connection, entity};
use super::work::{blocking, plugin_grant};
use super::{ApiError, AppState, Caller, ErrorCode};
use crate::connection::Proposal;
use crate::store::{Connection, MappingVersion, PluginBinding};
use crate::webhook::EventType;
use crosswalk_core::mapping::{MapOptions, OverrideRule, OverrideSpec, Payload, ResolvedMapping};
use crosswalk_core::model::Entity;
use crosswalk_plugin_host::{Demand, Limits};

/// The header that says which mapping version produced a response; a request that
/// carries it asks for that version or a later one.
pub const VERSION_HEADER: &str = "crosswalk-mapping-version";

/// The mapping version a request asks for at least (`Crosswalk-Mapping-Version: N`):
/// a client that was just answered version N by one replica sees N or later on every
/// replica, even one that has not heard of the change yet.
#[derive(Debug, Clone, Copy, Default)]
pub struct AtVersion(pub Option<u64>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for AtVersion {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(VERSION_HEADER) else {
            return Ok(AtVersion(None));
        };
        value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|v| AtVersion(Some(v)))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "{VERSION_HEADER}: {:?} is not a mapping version (a whole number, as a response's {VERSION_HEADER} gives it)",
                    String::from_utf8_lossy(value.as_bytes())
                ))
            })
    }
}

/// The pipeline a request maps with: the current one here, unless the request asks
/// for a later version ([`AtVersion`]) that another replica stored and this one has
/// not loaded yet: then that is loaded from the store first. A version that was never
/// stored is 412 `version_mismatch`.
pub(super) async fn pipeline_at(
    state: &AppState,
    c: &Connection,
    entity: Entity,
    at: AtVersion,
) -> Result<Arc<crate::connection::Pipeline>, ApiError> {
    let pipelines = &state.inner.pipelines;
    let held = pipelines.current_async(c, entity).await?;
    let Some(wanted) = at.0.filter(|&wanted| wanted > held.version) else {
        return Ok(held);
    };
    let loaded = pipelines
        .refresh_async(&c.id, entity)
        .await?
        .unwrap_or(held);
    if loaded.version >= wanted {
        return Ok(loaded);
    }
    Err(ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        ErrorCode::VersionMismatch,
        format!(
            "the mapping is at version {}; version {wanted} ({VERSION_HEADER}) was never stored",
            loaded.version
        ),
    ))
}

pub(super) async fn get_mapping(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
    at: AtVersion,
) -> Result<Response, ApiError> {
    let c = connection(&state, &caller, &id).await?;
    let pipeline = pipeline_at(&state, &c, entity(&c, &name)?, at).await?;
    Ok(mapping_response(&pipeline))
}

pub(super) async fn put_mapping(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let c = connection(&state, &caller, &id).await?;
    let entity = entity(&c, &name)?;
    let overrides: OverrideSpec = json_body(body)?;
    let expected = expected_version(&state, &c, entity, &headers).await?;
    publish(&state, &caller, c, entity, expected, move |current| {
        Ok(Proposal {
            overrides: overrides.clone(),
            plugins: current.plugins.clone(),
            rollback_of: None,
        })
    })
    .await
}

/// Merges override entries into the current ones: an entry replaces the current entry
/// for the same target, or is added. The merge is made on the latest version, under
/// the connection's change lock, so that concurrent patches all apply.
pub(super) async fn patch_mapping(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let c = connection(&state, &caller, &id).await?;
    let entity = entity(&c, &name)?;
    let patch: OverrideSpec = json_body(body)?;
    // Before merging: the merge compares every entry with every current one.
    state.inner.quotas.overrides(&patch)?;
    let expected = expected_version(&state, &c, entity, &headers).await?;
    publish(&state, &caller, c, entity, expected, move |current| {
        let mut overrides = current.overrides.clone();
        // A patch that names its system or entity is checked as a PUT is: the
        // merged document names them, and resolving refuses one that does not match.
        if patch.system.is_some() {
            overrides.system.clone_from(&patch.system);
        }
        if patch.entity.is_some() {
            overrides.entity = patch.entity;
        }
        for entry in &patch.overrides {
            match overrides
                .overrides
                .iter_mut()
                .find(|o: &&mut OverrideRule| o.target == entry.target)
            {
                Some(existing) => *existing = entry.clone(),
                None => overrides.overrides.push(entry.clone()),
            }
        }
        if patch.pre.is_some() {
            overrides.pre.clone_from(&patch.pre);
        }
        if patch.post.is_some() {
            overrides.post.clone_from(&patch.post);
        }
        Ok(Proposal {
            overrides,
            plugins: current.plugins.clone(),
            rollback_of: None,
        })
    })
    .await
}

/// Binds plugin versions (and their limits) to a connection's mapping of an entity.
pub(super) async fn bind_plugins(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let c = connection(&state, &caller, &id).await?;
    let entity = entity(&c, &name)?;
    let plugins: Vec<PluginBinding> = json_body(body)?;
    for binding in &plugins {
        Limits::with(&binding.limits).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidLimits,
                e.to_string(),
            )
        })?;
    }
    let expected = expected_version(&state, &c, entity, &headers).await?;
    publish(&state, &caller, c, entity, expected, move |current| {
        Ok(Proposal {
            overrides: current.overrides.clone(),
            plugins: plugins.clone(),
            rollback_of: None,
        })
    })
    .await
}

/// The version a change must apply to, from its `If-Match` header (RFC 9110): `None`
/// without the header or with `*`. A mapping's entity tag is its version in quotes
/// (`"3"`); a bare version (`3`) is taken as that tag. A list matches when one of its
/// tags is the current version; weak tags (`W/"3"`) and tags that are not a version
/// never match (strong comparison), which is a 412 like a version that moved.
async fn expected_version(
    state: &AppState,
    c: &Connection,
    entity: Entity,
    headers: &HeaderMap,
) -> Result<Option<u64>, ApiError> {
    let Some(versions) = if_match(headers)? else {
        return Ok(None);
    };
    if let [version] = versions.as_slice() {
        return Ok(Some(*version));
    }
    // Several tags, or none that can match: the current version decides. The change
    // itself is still conditional on it, so a version that moves meanwhile is a 412.
    let current = state
        .inner
        .pipelines
        .current_async(c, entity)
        .await?
        .version;
    if versions.contains(&current) {
        return Ok(Some(current));
    }
    let named: Vec<String> = versions.iter().map(|v| format!("\"{v}\"")).collect();
    Err(ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        ErrorCode::VersionMismatch,
        format!(
            "the mapping is at version {current}, which `If-Match` does not name ({}): read it again and make the change on version {current}",
            if named.is_empty() {
                "it names no version".to_owned()
            } else {
                named.join(", ")
            }
        ),
    )
    .details(json!({"expected": versions, "current": current})))
}

/// The versions an `If-Match` header names: `None` without the header or with `*`;
/// weak tags and tags that are not a version are left out (they never match). A
/// value that is not a list of entity tags is a 400.
fn if_match(headers: &HeaderMap) -> Result<Option<Vec<u64>>, ApiError> {
    let Some(value) = headers.get(axum::http::header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::bad_request("`If-Match` is not text"))?
        .trim();
    if text == "*" {
        return Ok(None);
    }
    let refused = || {
        ApiError::bad_request(format!(
            "`If-Match: {text}` is not a list of entity tags: a mapping's is its version in quotes, as its `ETag` gives it (`\"3\"`), or `*`"
        ))
    };
    // A bare version, as a client may send it without the quotes. Digits beyond any
    // version are a tag that names none, as in quotes: it never matches (412).
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(Some(text.parse().map(|v| vec![v]).unwrap_or_default()));
    }
    let mut versions = Vec::new();
    let mut rest = text;
    loop {
        let (weak, tag) = match rest.strip_prefix("W/") {
            Some(tag) => (true, tag),
            None => (false, rest),
        };
        // An opaque tag is quoted and holds no quote (it may hold a comma).
        let (opaque, after) = tag
            .strip_prefix('"')
            .and_then(|t| t.split_once('"'))
            .ok_or_else(refused)?;
        if let (false, Ok(version)) = (weak, opaque.parse::<u64>()) {
            versions.push(version);
        }
        let after = after.trim_start_matches([' ', '\t']);
        if after.is_empty() {
            break;
        }
        rest = after
            .strip_prefix(',')
            .ok_or_else(refused)?
            .trim_start_matches([' ', '\t']);
    }
    Ok(Some(versions))
}

/// Validates, persists and publishes a change off the async workers (compiling may
/// load plugins); answers once the next request sees it. `edit` is applied to the
/// latest version (see [`Pipelines::change`](crate::connection::Pipelines::change)).
async fn publish(
    state: &AppState,
    caller: &Caller,
    c: Connection,
    entity: Entity,
    expected: Option<u64>,
    edit: impl Fn(&crate::connection::Base) -> Result<Proposal, crate::connection::ChangeError>
    + Send
    + 'static,
) -> Result<Response, ApiError> {
    let author = caller.0.id.clone();
    let pipelines = Arc::clone(&state.inner.pipelines);
    let id = c.id.clone();
    let tenant = c.tenant_id.clone();
    let changed = blocking(move || pipelines.change(&c, entity, expected, &author, edit)).await?;
    if changed.stored {
        state.inner.metrics.change(&id, entity);
        mapping_updated(state, &tenant, &id, entity, &changed.pipeline, None).await;
    }
    Ok(mapping_response(&changed.pipeline))
}

/// Emits `mapping.updated` for a published change.
async fn mapping_updated(
    state: &AppState,
    tenant: &str,
    connection: &str,
    entity: Entity,
    pipeline: &crate::connection::Pipeline,
    rollback_of: Option<u64>,
) {
    let data = json!({
        "connection_id": connection,
        "entity": entity,
        "version": pipeline.version,
        "rollback_of": rollback_of,
    });
    if let Err(e) = state
        .inner
        .webhooks
        .emit(tenant, EventType::MappingUpdated, data)
        .await
    {
        tracing::error!(connection, error = %e, "mapping.updated was not queued");
    }
}

/// Proposed overrides and a payload to run them on.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Preview {
    /// The overrides, as `PUT …/mappings/{entity}` takes them.
    pub overrides: OverrideSpec,
    /// Source records: one, an array, or the system's collection envelope.
    pub payload: Value,
}

/// What proposed overrides would change.
#[derive(Serialize, JsonSchema)]
pub struct PreviewAnswer {
    /// The version the comparison is made against.
    pub current_version: u64,
    /// The records under the proposed overrides (or why each failed).
    pub output: Vec<Value>,
    /// The records under the current mapping.
    pub current_output: Vec<Value>,
    /// Every leaf that differs.
    pub changes: Vec<Change>,
}

/// One leaf that differs between the current and the proposed output.
#[derive(Serialize, JsonSchema)]
pub struct Change {
    /// Where: `[0].custom_fields.cost_center`.
    pub path: String,
    /// Its current value.
    pub before: Value,
    /// Its proposed value.
    pub after: Value,
}

/// Runs proposed overrides on a payload without applying them: the output, the output
/// of the current mapping, and what differs.
pub(super) async fn preview_mapping(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let c = connection(&state, &caller, &id).await?;
    let entity = entity(&c, &name)?;
    let Preview { overrides, payload } = json_body(body)?;
    let current = state.inner.pipelines.current_async(&c, entity).await?;
    let pipelines = Arc::clone(&state.inner.pipelines);
    let proposed = {
        let (c, current) = (c.clone(), Arc::clone(&current));
        blocking(move || pipelines.preview(&c, entity, &overrides, &current.plugins)).await?
    };
    // The two runs are one after the other: the larger of their needs is leased.
    let (a, b) = (proposed.plan.plugin_demand(), current.plan.plugin_demand());
    let demand = Demand {
        instances: a.instances.max(b.instances),
        memory_bytes: a.memory_bytes.max(b.memory_bytes),
    };
    let grant = plugin_grant(&state, &c.tenant_id, demand).await?;
    let _cancel = grant.cancel_on_drop();
    let limit = state.answer_limit();
    tokio::task::spawn_blocking(move || -> Result<Response, ApiError> {
        let records = Payload::unwrap(payload).into_records();
        let run = |plan: &crosswalk_core::mapping::Plan| -> Result<Vec<Value>, ApiError> {
            let batch = plan.map_batch_granted(&records, MapOptions::default(), &grant);
            answer::answer_full(batch.records.iter())?;
            Ok(batch
                .records
                .into_iter()
                .enumerate()
                .map(|(i, r)| r.unwrap_or_else(|e| answer::record_error(&e, i)))
                .collect())
        };
        let (after, before) = (run(&proposed.plan)?, run(&current.plan)?);
        let mut changes = Vec::new();
        for (i, (b, a)) in before.iter().zip(&after).enumerate() {
            diff(&format!("[{i}]"), b, a, &mut changes);
        }
        let preview = PreviewAnswer {
            current_version: current.version,
            output: after,
            current_output: before,
            changes,
        };
        answer::json(&preview, limit)
    })
    .await
    .map_err(|e| ApiError::internal(&e))?
}

/// The leaves that differ between two records.
fn diff(at: &str, before: &Value, after: &Value, out: &mut Vec<Change>) {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            let keys: std::collections::BTreeSet<&String> = b.keys().chain(a.keys()).collect();
            for k in keys {
                let null = Value::Null;
                diff(
                    &format!("{at}.{k}"),
                    b.get(k).unwrap_or(&null),
                    a.get(k).unwrap_or(&null),
                    out,
                );
            }
        }
        (Value::Array(b), Value::Array(a)) if b.len() == a.len() => {
            for (i, (x, y)) in b.iter().zip(a).enumerate() {
                diff(&format!("{at}[{i}]"), x, y, out);
            }
        }
        (b, a) if b != a => out.push(Change {
            path: at.to_owned(),
            before: b.clone(),
            after: a.clone(),
        }),
        _ => {}
    }
}

/// The author of version 0 in a mapping's history: the mapping Crosswalk ships.
pub const DEFAULT_AUTHOR: &str = "crosswalk";

/// The versions kept of a mapping.
#[derive(Serialize, JsonSchema)]
pub struct History {
    /// Version 0 (the system's default, as the connection was created with it), then
    /// the versions kept, oldest first; the last is the current one.
    pub data: Vec<MappingVersion>,
    /// The versions before this one were pruned (beyond `max_versions_kept` or
    /// `max_history_bytes`); `null` when none were.
    pub pruned_before: Option<u64>,
}

pub(super) async fn mapping_history(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
) -> Result<Json<History>, ApiError> {
    let c = connection(&state, &caller, &id).await?;
    let entity = entity(&c, &name)?;
    let stored = state.inner.store.mapping_history(&c.id, entity).await?;
    // Versions count from 1 and only pruning removes them: a history that starts
    // later was pruned.
    let pruned_before = stored.first().map(|v| v.version).filter(|&first| first > 1);
    // Version 0, the system's shipped default, comes first: it is never pruned, and
    // `POST …/rollback {"version": 0}` restores it.
    let default = MappingVersion {
        connection_id: c.id.clone(),
        entity,
        version: 0,
        overrides: OverrideSpec::default(),
        plugins: Vec::new(),
        author: DEFAULT_AUTHOR.to_owned(),
        created_at: c.created_at.clone(),
        rollback_of: None,
    };
    let data = std::iter::once(default).chain(stored).collect();
    Ok(Json(History {
        data,
        pruned_before,
    }))
}

/// The two versions to compare.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DiffParams {
    from: Option<u64>,
    to: Option<u64>,
}

/// What changed from one version of a mapping to another.
#[derive(Serialize, JsonSchema)]
pub struct VersionDiff {
    /// The older side.
    pub from: u64,
    /// The newer side.
    pub to: u64,
    /// Each override entry, `pre`/`post` step list and plugin binding list that
    /// differs; empty when the two versions map alike.
    pub changes: Vec<VersionChange>,
}

/// One part of a mapping that differs between two versions.
#[derive(Serialize, JsonSchema)]
pub struct VersionChange {
    /// `override` (one target's override entry), `pre`, `post` or `plugins`.
    pub part: &'static str,
    /// The target, for an override entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// In the `from` version (`null`: absent there).
    pub before: Value,
    /// In the `to` version (`null`: absent there).
    pub after: Value,
}

/// Compares two kept versions of a mapping (`?from=A&to=B`; 0 is the system's
/// default): override entries by target, then the record steps and the bindings.
/// Without `to`, the current version; without `from`, the kept version before `to`.
pub(super) async fn mapping_diff(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
    params: Result<Query<DiffParams>, QueryRejection>,
) -> Result<Json<VersionDiff>, ApiError> {
    let params = super::records::query(params)?;
    let c = connection(&state, &caller, &id).await?;
    let entity = entity(&c, &name)?;
    let stored = state.inner.store.mapping_history(&c.id, entity).await?;
    let to = params
        .to
        .unwrap_or_else(|| stored.last().map_or(0, |v| v.version));
    let from = params.from.unwrap_or_else(|| {
        stored
            .iter()
            .rev()
            .map(|v| v.version)
            .find(|&v| v < to)
            .unwrap_or(0)
    });
    let kept = |version: u64| -> Result<(OverrideSpec, Vec<PluginBinding>), ApiError> {
        if version == 0 {
            return Ok((OverrideSpec::default(), Vec::new()));
        }
        stored
            .iter()
            .find(|v| v.version == version)
            .map(|v| (v.overrides.clone(), v.plugins.clone()))
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    ErrorCode::NotFound,
                    format!(
                        "version {version} of this mapping is not kept: it was never stored, or was pruned (the history lists the versions kept)"
                    ),
                )
            })
    };
    let (before, before_plugins) = kept(from)?;
    let (after, after_plugins) = kept(to)?;
    Ok(Json(VersionDiff {
        from,
        to,
        changes: version_changes(&before, &before_plugins, &after, &after_plugins),
    }))
}

/// The parts that differ between two versions' overrides and bindings: the override
/// entries in the order of the newer version, then those it no longer has, then `pre`,
/// `post` and `plugins`.
fn version_changes(
    before: &OverrideSpec,
    before_plugins: &[PluginBinding],
    after: &OverrideSpec,
    after_plugins: &[PluginBinding],
) -> Vec<VersionChange> {
    fn json(value: &impl Serialize) -> Value {
        serde_json::to_value(value).expect("overrides and bindings serialize")
    }
    let entry = |spec: &OverrideSpec, target: &str| {
        spec.overrides
            .iter()
            .find(|o| o.target == target)
            .map_or(Value::Null, json)
    };
    let mut targets: Vec<&str> = after.overrides.iter().map(|o| o.target.as_str()).collect();
    for o in &before.overrides {
        if !targets.contains(&o.target.as_str()) {
            targets.push(&o.target);
        }
    }
    let mut changes: Vec<VersionChange> = targets
        .into_iter()
        .filter_map(|target| {
            let (b, a) = (entry(before, target), entry(after, target));
            (b != a).then(|| VersionChange {
                part: "override",
                target: Some(target.to_owned()),
                before: b,
                after: a,
            })
        })
        .collect();
    let parts: [(&'static str, Value, Value); 3] = [
        ("pre", json(&before.pre), json(&after.pre)),
        ("post", json(&before.post), json(&after.post)),
        ("plugins", json(&before_plugins), json(&after_plugins)),
    ];
    for (part, b, a) in parts {
        if b != a {
            changes.push(VersionChange {
                part,
                target: None,
                before: b,
                after: a,
            });
        }
    }
    changes
}

/// The version to restore.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    /// An earlier version of the mapping.
    pub version: u64,
}

pub(super) async fn rollback_mapping(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let c = connection(&state, &caller, &id).await?;
    let entity = entity(&c, &name)?;
    let Rollback { version } = json_body(body)?;
    let expected = expected_version(&state, &c, entity, &headers).await?;
    let author = caller.0.id.clone();
    let pipelines = Arc::clone(&state.inner.pipelines);
    let id = c.id.clone();
    let tenant = c.tenant_id.clone();
    let changed =
        blocking(move || pipelines.rollback(&c, entity, version, expected, &author)).await?;
    if changed.stored {
        state.inner.metrics.change(&id, entity);
        mapping_updated(
            &state,
            &tenant,
            &id,
            entity,
            &changed.pipeline,
            Some(version),
        )
        .await;
    }
    Ok(mapping_response(&changed.pipeline))
}

/// A connection's mapping of an entity.
#[derive(Serialize, JsonSchema)]
pub struct MappingAnswer<'a> {
    /// Its version (0: the system's default, never changed).
    pub version: u64,
    /// The mapping with the overrides applied, each rule with its origin.
    pub mapping: &'a ResolvedMapping,
    /// The plugin versions bound to it, with their limits.
    pub plugins: &'a [PluginBinding],
    /// The targets that writes cannot set through this mapping, and why.
    pub read_only: &'a [crosswalk_core::mapping::ReadOnly],
    /// Why no record of the entity can be written through this mapping, when a `pre`
    /// or `post` plugin step has no inverse; absent when writes work.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_refused: Option<&'a str>,
}

/// A mapping as the mapping endpoints answer it, with its version in the header too,
/// and as its entity tag (`ETag: "3"`), which `If-Match` takes back.
fn mapping_response(pipeline: &crate::connection::Pipeline) -> Response {
    let resolved = pipeline.resolved();
    let body = pipeline.with_write(|write| {
        Json(MappingAnswer {
            version: pipeline.version,
            mapping: &resolved,
            plugins: &pipeline.plugins,
            read_only: write.read_only(),
            write_refused: write.refused(),
        })
        .into_response()
    });
    let mut response = with_version(body, pipeline.version);
    response.headers_mut().insert(
        axum::http::header::ETAG,
        HeaderValue::from_str(&format!("\"{}\"", pipeline.version)).expect("digits"),
    );
    response
}

pub(super) fn with_version(mut response: Response, version: u64) -> Response {
    let headers: &mut HeaderMap = response.headers_mut();
    headers.insert(VERSION_HEADER, HeaderValue::from(version));
    response
}
