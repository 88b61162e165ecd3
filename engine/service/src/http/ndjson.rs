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
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::error::ErrorCode;
use super::metrics::Metrics;
use crate::connection::Pipeline;
use crosswalk_core::mapping::{MapOptions, Payload};
use crosswalk_core::model::Entity;
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
    End(Option<Value>),
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
    /// `max_answer_bytes`: the longest answer line.
    pub answer_limit: crosswalk_core::path::Limit,
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
                        push_line(&mut out, &error);
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
    let mut pending = BytesMut::new();
    let mut number = 0;
    let mut batch = Vec::new();
    let end = loop {
        let data = match stream.next().await {
            Some(Ok(data)) => data,
            Some(Err(e)) => {
                break Some(line_error(
                    number + 1,
                    ErrorCode::BadRequest,
                    format!("the body broke off after line {number}: {e}"),
                ));
            }
            None if pending.is_empty() => break None,
            None => {
                number += 1;
                push_source(&mut batch, number, pending.split().freeze());
                break None;
            }
        };
        let mut data = data;
        let mut too_long = None;
        while let Some(at) = data.iter().position(|&b| b == b'\n') {
            let piece = data.split_to(at + 1);
            number += 1;
            let line = if pending.is_empty() {
                piece.slice(..at)
            } else {
                pending.extend_from_slice(&piece[..at]);
                pending.split().freeze()
            };
            if line.len() > limit {
                too_long = Some(number);
                break;
            }
            push_source(&mut batch, number, line);
            if batch.len() == BATCH
                && tx
                    .send(Chunk::Lines(std::mem::take(&mut batch)))
                    .await
                    .is_err()
            {
                return;
            }
        }
        if too_long.is_none() {
            pending.extend_from_slice(&data);
            if pending.len() > limit {
                too_long = Some(number + 1);
            }
        }
        if let Some(line) = too_long {
            break Some(line_error(
                line,
                ErrorCode::PayloadTooLarge,
                format!("line {line} is longer than the limit of {limit} bytes"),
            ));
        }
        if !batch.is_empty()
            && tx
                .send(Chunk::Lines(std::mem::take(&mut batch)))
                .await
                .is_err()
        {
            return;
        }
    };
    if !batch.is_empty() && tx.send(Chunk::Lines(batch)).await.is_err() {
        return;
    }
    let _ = tx.send(Chunk::End(end)).await;
}

/// Reads a body that arrives in `pieces` as the transform endpoint does, on a runtime
/// of its own: the lines handed on, and the error line that ended the stream, if any.
/// For the fuzz target ([`crate::fuzz::ndjson`]).
#[doc(hidden)]
pub fn read_all(pieces: Vec<Bytes>, limit: usize) -> (Vec<(usize, Bytes)>, Option<Value>) {
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

/// Keeps a line unless it is blank; a `\r` before the newline is dropped.
fn push_source(batch: &mut Vec<(usize, Bytes)>, number: usize, mut line: Bytes) {
    if line.last() == Some(&b'\r') {
        line.truncate(line.len() - 1);
    }
    if !line.iter().all(u8::is_ascii_whitespace) {
        batch.push((number, line));
    }
}

/// Maps a batch of lines: one answer line per source line, in order; with a fresh
/// plugin time budget of `grant`'s.
fn map_lines(
    pipeline: &Pipeline,
    options: MapOptions,
    lines: &[(usize, Bytes)],
    target: &Target,
    grant: Option<&Grant>,
) -> Vec<u8> {
    // Parse first, so that the lines that are records are mapped as one batch.
    let mut parsed: Vec<Result<(), Value>> = Vec::with_capacity(lines.len());
    let mut records = Vec::with_capacity(lines.len());
    for (number, line) in lines {
        let line = match parse_line(*number, line) {
            Ok(record) => {
                records.push(record);
                Ok(())
            }
            Err(error) => Err(error),
        };
        parsed.push(line);
    }
    let batch = match grant {
        Some(grant) => pipeline.plan.map_batch_granted(&records, options, grant),
        None => pipeline.plan.map_batch(&records, options),
    };
    target
        .metrics
        .batch(&target.connection.id, target.entity, &batch);
    if !grant.is_some_and(|g| g.cancel().is_cancelled()) {
        target.monitor.mapped(
            &target.connection,
            target.entity,
            &batch,
            &[],
            target.request_id.as_deref(),
        );
    }
    let mut mapped = batch.records.into_iter();
    let mut out = Vec::with_capacity(lines.len() * 512);
    for ((number, _), line) in lines.iter().zip(parsed) {
        let value = match line {
            Ok(_) => match mapped.next().expect("one result per record") {
                Ok(record) => record,
                Err(e) => match e.limit() {
                    Some(limit) => {
                        let mut error =
                            line_error(*number, ErrorCode::LimitExceeded, e.to_string());
                        error["error"]["details"]["limit"] = limit.name.into();
                        error["error"]["details"]["max"] = limit.max.into();
                        error
                    }
                    None => line_error(*number, ErrorCode::RecordFailed, e.to_string()),
                },
            },
            Err(error) => error,
        };
        super::answer::ndjson_line(&mut out, &value, target.answer_limit, *number);
    }
    out
}

fn push_line(out: &mut Vec<u8>, value: &Value) {
    serde_json::to_writer(&mut *out, value).expect("a JSON value serializes");
    out.push(b'\n');
}

/// One NDJSON line as a source record (in an envelope or not), or the error line that
/// answers it: not JSON, or more than one record. The service and `crosswalk map
/// --ndjson` read lines alike.
pub fn parse_line(number: usize, line: &[u8]) -> Result<Value, Value> {
    match serde_json::from_slice::<Value>(line).map(Payload::unwrap) {
        Ok(Payload::One(record)) => Ok(record),
        Ok(Payload::Many(many)) => Err(line_error(
            number,
            ErrorCode::BadRequest,
            format!(
                "line {number} is an array or a collection of {} items, not one record; NDJSON takes one record per line",
                many.len()
            ),
        )),
        Err(e) => {
            let mut error = line_error(
                number,
                ErrorCode::BadRequest,
                format!("line {number} is not valid JSON: {e}"),
            );
            error["error"]["details"]["column"] = json!(e.column());
            Err(error)
        }
    }
}

/// An error line in the API's error shape, with the source line number.
pub fn line_error(line: usize, code: ErrorCode, message: String) -> Value {
    json!({"error": {"code": code, "message": message, "details": {"line": line}}})
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
