//! NDJSON transforms: source records streamed in, one per line, and unified records
//! streamed out, one per line, in the same order. Neither side is held whole.
//!
//! An async task splits the body into lines and hands them on in small batches; a
//! blocking task maps each batch (one plugin session per batch) and sends its lines to
//! the response body. Both channels are bounded, so a slow client slows the mapping
//! and a slow mapping slows the reading: memory stays at a few batches whatever the
//! body's size. The request body limit bounds each line, not the whole body.
//!
//! A mapping that calls plugins leases its instances from the tenant's share before
//! the answer starts (a busy share is a 503), and keeps them for the whole stream. The
//! plugin time budget is per batch: each batch of up to `BATCH` (64) lines gets a budget of
//! its own, so a long stream is bounded by its reader, not cut off. When the client goes
//! away (the answer's body is dropped), the plugin work of the stream is cancelled.
//!
//! The status and headers are sent before the first record is mapped, so problems
//! are lines of the answer in the API's error shape, with the source line number in
//! `details.line`: a line that is not JSON or fails to map gives an error line and the
//! stream goes on; a line longer than the limit, or a body that breaks off, gives an
//! error line and ends the stream. An answer line is bounded by `max_answer_bytes`
//! (a longer one is an error line naming it), and each batch of lines by the same limit
//! (the records of a batch past it are error lines); the stream as a whole is not,
//! since it is never held whole.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::metrics::Metrics;
use crate::connection::Pipeline;
use crate::error_body::{At, ErrorBody, ErrorCode};
use crate::ndjson::{self, Splitter};
use crosswalk_core::mapping::MapOptions;
use crosswalk_core::model::Entity;
use crosswalk_core::plugin::Capacity;
use crosswalk_plugin_host::Grant;

/// The content types taken as NDJSON.
const TYPES: &[&str] = &[
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonlines",
];

/// The content type of NDJSON answers.
pub const CONTENT_TYPE: &str = "application/x-ndjson";

/// Lines mapped together, with one plugin session.
const BATCH: usize = 64;

/// Whether a `content-type` value is NDJSON.
pub fn is_ndjson(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    TYPES.iter().any(|t| essence.eq_ignore_ascii_case(t))
}

/// What the reader hands the mapper.
enum Chunk {
    /// Non-blank lines with their 1-based line numbers.
    Lines(Vec<(usize, Bytes)>),
    /// The body ended: cleanly, or with an error line to send last.
    End(Option<ErrorBody>),
}

/// What a mapped stream reports to: metrics, and the connection's monitor (its error
/// log and the plugin events).
pub struct Target {
    /// The connection.
    pub connection: crate::store::Connection,
    /// The entity.
    pub entity: Entity,
    /// Where batches are counted.
    pub metrics: Arc<Metrics>,
    /// Where mapping and plugin errors go.
    pub monitor: Arc<crate::connection::Monitor>,
    /// The request's id, for the error log.
    pub request_id: Option<String>,
}

/// `body` with its first piece read, for a request with `Expect: 100-continue` (curl
/// sends it with large bodies): the client is told to go on when the body is first
/// read, so the answer's head must wait for that; sent first, it would leave the client
/// waiting for its own timeout (a second, for curl) before it sends anything.
pub async fn started(body: Body) -> Body {
    let mut stream = body.into_data_stream();
    match stream.next().await {
        None => Body::empty(),
        Some(first) => {
            Body::from_stream(futures_util::stream::once(async move { first }).chain(stream))
        }
    }
}

/// Maps an NDJSON body with `pipeline`, whose plugins run under `grant` (leased for
/// the stream; `None` when the mapping calls no plugin): the answer's body.
pub fn transform(
    body: Body,
    pipeline: Arc<Pipeline>,
    options: MapOptions,
    line_limit: usize,
    target: Target,
    grant: Option<Grant>,
) -> Body {
    let (lines_tx, mut lines_rx) = mpsc::channel::<Chunk>(4);
    let (out_tx, mut out_rx) = mpsc::channel::<Bytes>(4);
    // Kept by the answer's body: dropped with it when the client goes away.
    let cancel = grant.as_ref().map(Grant::cancel_on_drop);
    tokio::spawn(read_lines(body, lines_tx, line_limit));
    tokio::task::spawn_blocking(move || {
        while let Some(chunk) = lines_rx.blocking_recv() {
            if grant.as_ref().is_some_and(|g| g.cancel().is_cancelled()) {
                return;
            }
            let (out, last) = match chunk {
                Chunk::Lines(lines) => (
                    map_lines(&pipeline, options, &lines, &target, grant.as_ref()),
                    false,
                ),
                Chunk::End(error) => {
                    let mut out = Vec::new();
                    if let Some(error) = error {
                        serde_json::to_writer(&mut out, &error).expect("an error body serializes");
                        out.push(b'\n');
                    }
                    (out, true)
                }
            };
            // A client that went away ends the work.
            let gone = !out.is_empty() && out_tx.blocking_send(Bytes::from(out)).is_err();
            if gone || last {
                return;
            }
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| {
        let _ = &cancel;
        out_rx.poll_recv(cx).map(|b| b.map(Ok::<_, Infallible>))
    });
    Body::from_stream(stream)
}

/// Splits the body into lines and sends them in batches (at most [`BATCH`], and
/// whatever is complete at the end of each piece of the body).
async fn read_lines(body: Body, tx: mpsc::Sender<Chunk>, limit: usize) {
    let mut stream = body.into_data_stream();
    let mut lines = Splitter::new(limit);
    loop {
        let (end, done) = match stream.next().await {
            Some(Ok(data)) => match lines.push(data) {
                Ok(()) => (None, false),
                Err(too_long) => (Some(too_long), true),
            },
            Some(Err(e)) => {
                let seen = lines.lines_seen();
                let broke_off = ErrorBody::at(
                    At::Line(seen + 1),
                    ErrorCode::BadRequest,
                    format!("the body broke off after line {seen}: {e}"),
                );
                (Some(broke_off), true)
            }
            None => {
                lines.finish();
                (None, true)
            }
        };
        // What is complete is handed on: full batches, then the rest of the piece.
        while let Some(batch) = lines.full_batch(BATCH, usize::MAX) {
            if tx.send(Chunk::Lines(batch)).await.is_err() {
                return;
            }
        }
        let rest = lines.take_all();
        if !rest.is_empty() && tx.send(Chunk::Lines(rest)).await.is_err() {
            return;
        }
        if done {
            let _ = tx.send(Chunk::End(end)).await;
            return;
        }
    }
}

/// Reads a body that arrives in `pieces` as the transform endpoint does, on a runtime
/// of its own: the lines handed on, and the error line that ended the stream, if any.
/// For the fuzz target ([`crate::fuzz::ndjson`]).
#[doc(hidden)]
pub fn read_all(pieces: Vec<Bytes>, limit: usize) -> (Vec<(usize, Bytes)>, Option<ErrorBody>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime starts");
    runtime.block_on(async move {
        let body = Body::from_stream(futures_util::stream::iter(
            pieces.into_iter().map(Ok::<_, Infallible>),
        ));
        let (tx, mut rx) = mpsc::channel::<Chunk>(4);
        tokio::spawn(read_lines(body, tx, limit));
        let mut lines = Vec::new();
        while let Some(chunk) = rx.recv().await {
            match chunk {
                Chunk::Lines(batch) => lines.extend(batch),
                Chunk::End(error) => return (lines, error),
            }
        }
        panic!("the reader stopped without saying that the body ended")
    })
}

/// Maps a batch of lines: one answer line per source line, in order; with a fresh
/// plugin time budget of `grant`'s. The batch is counted in the metrics and its
/// problems go to the connection's monitor (unless the request was cancelled).
fn map_lines(
    pipeline: &Pipeline,
    options: MapOptions,
    lines: &[(usize, Bytes)],
    target: &Target,
    grant: Option<&Grant>,
) -> Vec<u8> {
    let capacity = grant.map(|g| g as &dyn Capacity);
    let answered = ndjson::map_lines(&pipeline.plan, options, lines, capacity, |batch| {
        target
            .metrics
            .batch(&target.connection.id, target.entity, batch);
        if !grant.is_some_and(|g| g.cancel().is_cancelled()) {
            target.monitor.mapped(
                &target.connection,
                target.entity,
                batch,
                &[],
                target.request_id.as_deref(),
            );
        }
    });
    answered.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndjson_content_types_ignore_parameters_and_case() {
        assert!(is_ndjson("application/x-ndjson"));
        assert!(is_ndjson("Application/X-NDJSON; charset=utf-8"));
        assert!(is_ndjson("application/jsonl"));
        assert!(!is_ndjson("application/json"));
        assert!(!is_ndjson(""));
    }
}
