//! The transform endpoint: source records in, unified records out, through the
//! connection's current mapping. A JSON body (one record, an array or a collection
//! envelope) is mapped whole and answered at once; an NDJSON body is mapped and
//! answered line by line, streamed (see [`ndjson`]).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::answer;
use super::body::parsed_body;
use super::connections::{connection, entity};
use super::mappings::with_version;
use super::work::plugin_grant;
use super::{ApiError, AppState, Caller, RequestId, ndjson};
use crosswalk_core::mapping::{MapOptions, Payload};
use crosswalk_plugin_host::Grant;

/// Transform bodies up to this size, under a mapping without plugins, are mapped on the
/// async worker that received them instead of on the blocking pool.
const INLINE_BYTES: usize = 64 * 1024;

/// The flags of a transform.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct TransformQuery {
    #[serde(default)]
    remote_data: bool,
    #[serde(default)]
    strict: bool,
}

/// Maps source records: one record, an array or a collection envelope in a JSON
/// body, or one record per line in an NDJSON body (streamed, see [`ndjson`]).
pub(super) async fn transform(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
    query: Result<Query<TransformQuery>, axum::extract::rejection::QueryRejection>,
    request_id: Option<axum::Extension<RequestId>>,
    at: super::mappings::AtVersion,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let c = connection(&state, &caller, &id).await?;
    let entity = entity(&c, &name)?;
    let pipeline = super::mappings::pipeline_at(&state, &c, entity, at).await?;
    let options = MapOptions {
        strict: query.strict,
        remote_data: query.remote_data,
    };
    let version = pipeline.version;
    let streamed = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(ndjson::is_ndjson);
    // Plugin instances are leased from the tenant's share before anything runs: a
    // busy share is a 503 now, not fields nulled later.
    let grant = if pipeline.plan.calls_plugins() {
        Some(plugin_grant(&state, &c.tenant_id, pipeline.plan.plugin_demand()).await?)
    } else {
        None
    };
    if streamed {
        let target = ndjson::Target {
            connection: c,
            entity,
            metrics: Arc::clone(&state.inner.metrics),
            monitor: Arc::clone(state.inner.records.monitor()),
            request_id: request_id.map(|r| r.0.0),
        };
        // A client that asked to be told to go on (`Expect: 100-continue`) is told so
        // before the answer's head goes out; others may send as the answers come.
        let expects_continue = request
            .headers()
            .get(axum::http::header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let body = request.into_body();
        let body = if expects_continue {
            ndjson::started(body).await
        } else {
            body
        };
        let body = ndjson::transform(
            body,
            pipeline,
            options,
            state.inner.body_limit,
            target,
            grant,
        );
        let response = (
            [(axum::http::header::CONTENT_TYPE, ndjson::CONTENT_TYPE)],
            body,
        )
            .into_response();
        return Ok(with_version(response, version));
    }
    let body = Bytes::from_request(request, &state).await;
    let small = body.as_ref().is_ok_and(|b| b.len() <= INLINE_BYTES);
    let pipeline_calls_plugins = pipeline.plan.calls_plugins();
    // Only what the mapping reads is built (the plan's selective reader).
    let payload = parsed_body(body, |text| pipeline.plan.parse_source(text, options))?;
    let metrics = Arc::clone(&state.inner.metrics);
    let monitor = Arc::clone(state.inner.records.monitor());
    let request_id = request_id.map(|r| r.0.0);
    // Dropped with this future when the client goes away: the plugin work stops.
    let _cancel = grant.as_ref().map(Grant::cancel_on_drop);
    let limit = state.answer_limit();
    // What the monitor records of a batch is queued for its writer: recording it
    // writes nothing here.
    let work = move || {
        let (one, records) = match Payload::unwrap(payload) {
            Payload::One(r) => (true, vec![r]),
            Payload::Many(rs) => (false, rs),
        };
        let batch = match &grant {
            Some(grant) => pipeline
                .plan
                .map_batch_to_json_granted(&records, options, grant),
            None => pipeline.plan.map_batch_to_json(&records, options),
        };
        metrics.batch(&c.id, entity, &batch);
        // Nobody reads the answer of a cancelled request, and what cancelling did to
        // its records is not the connection's problem.
        if !grant.as_ref().is_some_and(|g| g.cancel().is_cancelled()) {
            monitor.mapped(&c, entity, &batch, &[], request_id.as_deref());
        }
        // The records are JSON text already: the answer copies them, within
        // `max_answer_bytes`.
        if one {
            match batch.records.into_iter().next().expect("one record") {
                Ok(record) => answer::json_text(limit, |out| {
                    out.extend_from_slice(b"{\"data\":");
                    out.extend_from_slice(record.json().as_bytes());
                    out.push(b'}');
                }),
                Err(e) => Err(answer::record_failed(&e)),
            }
        } else {
            answer::answer_full(batch.records.iter()).and_then(|()| {
                answer::json_text(limit, |out| {
                    out.extend_from_slice(b"{\"data\":[");
                    for (i, r) in batch.records.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        match r {
                            Ok(record) => out.extend_from_slice(record.json().as_bytes()),
                            Err(e) => serde_json::to_writer(&mut *out, &answer::record_error(e, i))
                                .expect("an error serializes"),
                        }
                    }
                    out.extend_from_slice(b"]}");
                })
            })
        }
    };
    // Built-in transforms take microseconds a record: a small payload is mapped right
    // here. Plugins (which may run up to their time limit) and large batches are
    // mapped off the async workers.
    let answer = if !pipeline_calls_plugins && small {
        work()?
    } else {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| ApiError::internal(&e))??
    };
    Ok(with_version(answer, version))
}
