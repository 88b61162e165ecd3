//! NDJSON in one place: a body split into numbered lines and batches of lines, a line
//! read as a source record, and a batch of lines mapped to answer lines.
//!
//! The transform endpoint (`http::ndjson`, which streams a request body) and
//! `crosswalk map --ndjson` (which reads a file or stdin) both read and answer through
//! this module, so they agree on every line: blank lines are skipped, a `\r` before
//! the newline is dropped, a line is one record (in an envelope or not), and each input
//! line gets one answer line, in order: the unified record, or an error in the API's
//! error shape ([`ErrorBody`]) with the line number in `details.line`.
//!
//! Memory stays flat whatever the body's size: a [`Splitter`] holds the pieces of the
//! body that are not yet handed on (lines are slices of the pieces, not copies), and
//! the caller maps a batch at a time.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use serde::Serialize;
use serde_json::{Value, json};

use crate::error_body::{At, ErrorBody, ErrorCode};
use crosswalk_core::mapping::limits::write_json_within;
use crosswalk_core::mapping::{Batch, MapOptions, Payload, Plan, Record};
use crosswalk_core::path::Limit;
use crosswalk_core::plugin::Capacity;

/// A body's lines, numbered from 1, as its pieces arrive: the complete, non-blank
/// lines wait in order until the caller takes them in batches.
#[derive(Debug)]
pub struct Splitter {
    /// The start of a line whose end has not arrived.
    pending: BytesMut,
    /// Lines seen so far, blank ones included.
    number: usize,
    /// The longest line taken, in bytes.
    limit: usize,
    /// Complete lines not yet taken.
    lines: VecDeque<(usize, Bytes)>,
    /// Their bytes together.
    bytes: usize,
}

impl Splitter {
    /// A splitter that refuses lines longer than `limit` bytes.
    pub fn new(limit: usize) -> Splitter {
        Splitter {
            pending: BytesMut::new(),
            number: 0,
            limit,
            lines: VecDeque::new(),
            bytes: 0,
        }
    }

    /// Lines seen so far (blank ones included).
    pub fn lines_seen(&self) -> usize {
        self.number
    }

    /// Takes the next piece of the body. A line longer than the limit is an error line
    /// that ends the body: the lines before it are still there to be taken.
    pub fn push(&mut self, mut data: Bytes) -> Result<(), ErrorBody> {
        while let Some(at) = memchr::memchr(b'\n', &data) {
            let piece = data.split_to(at + 1);
            self.number += 1;
            let line = if self.pending.is_empty() {
                piece.slice(..at)
            } else {
                self.pending.extend_from_slice(&piece[..at]);
                self.pending.split().freeze()
            };
            if line.len() > self.limit {
                return Err(self.too_long(self.number));
            }
            self.keep(line);
        }
        self.pending.extend_from_slice(&data);
        if self.pending.len() > self.limit {
            return Err(self.too_long(self.number + 1));
        }
        Ok(())
    }

    /// The body ended: its last line, when it has no newline, is complete.
    pub fn finish(&mut self) {
        if !self.pending.is_empty() {
            self.number += 1;
            let line = self.pending.split().freeze();
            self.keep(line);
        }
    }

    /// The next batch, when the lines waiting fill one: `max_lines` lines, or fewer
    /// that hold at least `max_bytes` bytes.
    pub fn full_batch(
        &mut self,
        max_lines: usize,
        max_bytes: usize,
    ) -> Option<Vec<(usize, Bytes)>> {
        if self.lines.len() < max_lines && self.bytes < max_bytes {
            return None;
        }
        let mut batch = Vec::with_capacity(max_lines.min(self.lines.len()));
        let mut bytes = 0;
        while batch.len() < max_lines && bytes < max_bytes {
            let Some(line) = self.lines.pop_front() else {
                break;
            };
            bytes += line.1.len();
            batch.push(line);
        }
        self.bytes -= bytes;
        Some(batch)
    }

    /// Every line waiting.
    pub fn take_all(&mut self) -> Vec<(usize, Bytes)> {
        self.bytes = 0;
        self.lines.drain(..).collect()
    }

    /// Keeps a line unless it is blank; a `\r` before the newline is dropped.
    fn keep(&mut self, mut line: Bytes) {
        if line.last() == Some(&b'\r') {
            line.truncate(line.len() - 1);
        }
        if !line.iter().all(u8::is_ascii_whitespace) {
            self.bytes += line.len();
            self.lines.push_back((self.number, line));
        }
    }

    fn too_long(&self, line: usize) -> ErrorBody {
        ErrorBody::at(
            At::Line(line),
            ErrorCode::PayloadTooLarge,
            format!(
                "line {line} is longer than the limit of {} bytes",
                self.limit
            ),
        )
    }
}

/// One NDJSON line as a source record (in an envelope or not), or the error line that
/// answers it: not JSON, or more than one record.
pub fn parse_line(number: usize, line: &[u8]) -> Result<Value, ErrorBody> {
    line_record(number, serde_json::from_slice(line))
}

/// [`parse_line`] of a line parsed by `parsed` (whole, or by a plan's selective reader).
fn line_record(number: usize, parsed: serde_json::Result<Value>) -> Result<Value, ErrorBody> {
    match parsed.map(Payload::unwrap) {
        Ok(Payload::One(record)) => Ok(record),
        Ok(Payload::Many(many)) => Err(ErrorBody::at(
            At::Line(number),
            ErrorCode::BadRequest,
            format!(
                "line {number} is an array or a collection of {} items, not one record; NDJSON takes one record per line",
                many.len()
            ),
        )),
        Err(e) => Err(ErrorBody::new(
            ErrorCode::BadRequest,
            format!("line {number} is not valid JSON: {e}"),
            json!({"line": number, "column": e.column()}),
        )),
    }
}

/// A batch of lines, mapped: the answer lines, and how many of them are errors.
#[derive(Debug)]
pub struct Answered {
    /// One line per source line, each ending in a newline.
    pub out: Vec<u8>,
    /// The lines that are errors: not a record, or a record that failed to map.
    pub failed: usize,
}

/// Maps a batch of lines with `plan` (its plugins under `grant`, or under no share and
/// no budget when `None`): one answer line per source line, in order. The lines that
/// are records are mapped as one batch; `observe` sees it (its log, plugin calls and
/// field errors) before its records are written. An answer line larger than the plan's
/// `max_answer_bytes` is an error line naming the limit.
pub fn map_lines(
    plan: &Plan,
    options: MapOptions,
    lines: &[(usize, Bytes)],
    grant: Option<&dyn Capacity>,
    observe: impl FnOnce(&Batch<Record>),
) -> Answered {
    let mut parsed: Vec<Result<(), ErrorBody>> = Vec::with_capacity(lines.len());
    let mut records = Vec::with_capacity(lines.len());
    for (number, line) in lines {
        let record = line_record(*number, plan.parse_source(line, options));
        parsed.push(record.map(|record| records.push(record)));
    }
    let batch = match grant {
        Some(grant) => plan.map_batch_to_json_granted(&records, options, grant),
        None => plan.map_batch_to_json(&records, options),
    };
    observe(&batch);
    let limit = plan.limits().answer_bytes();
    let mut mapped = batch.records.into_iter();
    let mut answered = Answered {
        out: Vec::with_capacity(lines.len() * 512),
        failed: 0,
    };
    for ((number, _), line) in lines.iter().zip(parsed) {
        let error = match line {
            Ok(()) => match mapped.next().expect("one result per record") {
                Ok(record) => {
                    if !record_line(&mut answered.out, &record, limit, *number) {
                        answered.failed += 1;
                    }
                    continue;
                }
                Err(e) => ErrorBody::record(&e, Some(At::Line(*number))),
            },
            Err(error) => error,
        };
        answered.failed += 1;
        answer_line(&mut answered.out, &error, limit, *number);
    }
    answered
}

/// One answer line of `value`, appended to `out` with its newline: an error line
/// naming `limit` (`max_answer_bytes`) instead when it would be larger than the limit.
/// Whether `value` fitted.
pub fn answer_line(out: &mut Vec<u8>, value: &impl Serialize, limit: Limit, line: usize) -> bool {
    let fits = write_json_within(out, value, limit.max).is_ok();
    finish_line(out, fits, limit, line)
}

/// [`answer_line`] of a mapped record, whose JSON text is copied as it is.
pub fn record_line(out: &mut Vec<u8>, record: &Record, limit: Limit, line: usize) -> bool {
    let fits = record.json().len() as u64 <= limit.max;
    if fits {
        out.extend_from_slice(record.json().as_bytes());
    }
    finish_line(out, fits, limit, line)
}

/// Ends an answer line, with the error line naming `limit` instead of a value that
/// did not fit.
fn finish_line(out: &mut Vec<u8>, fits: bool, limit: Limit, line: usize) -> bool {
    if !fits {
        let message = format!(
            "the answer line would be larger than {} bytes (limit `{}`)",
            limit.max, limit.name
        );
        let error = ErrorBody::limit(limit, message, Some(At::Line(line)));
        serde_json::to_writer(&mut *out, &error).expect("an error body serializes");
    }
    out.push(b'\n');
    fits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(pieces: &[&str], limit: usize) -> (Vec<(usize, String)>, Option<ErrorBody>) {
        let mut splitter = Splitter::new(limit);
        let mut lines = Vec::new();
        let mut error = None;
        for piece in pieces {
            if let Err(e) = splitter.push(Bytes::copy_from_slice(piece.as_bytes())) {
                error = Some(e);
                break;
            }
        }
        if error.is_none() {
            splitter.finish();
        }
        for (n, line) in splitter.take_all() {
            lines.push((n, String::from_utf8(line.to_vec()).unwrap()));
        }
        (lines, error)
    }

    #[test]
    fn lines_are_numbered_across_pieces_and_blank_ones_are_skipped() {
        let (lines, error) = split(&["{\"a\"", ":1}\r\n\n  \n{\"b\":2}\n{\"c\"", ":3}"], 100);
        assert!(error.is_none());
        assert_eq!(
            lines,
            [
                (1, "{\"a\":1}".to_owned()),
                (4, "{\"b\":2}".to_owned()),
                (5, "{\"c\":3}".to_owned())
            ]
        );
    }

    #[test]
    fn a_line_over_the_limit_ends_the_body_after_the_lines_before_it() {
        let (lines, error) = split(&["{}\n", "0123456789\n{}\n"], 5);
        assert_eq!(lines, [(1, "{}".to_owned())]);
        let error = error.unwrap().to_value();
        assert_eq!(error["error"]["code"], "payload_too_large");
        assert_eq!(error["error"]["details"]["line"], 2);
        // A line still open at the end of a piece is measured too.
        let (_, error) = split(&["{}\n0123456789"], 5);
        assert_eq!(error.unwrap().to_value()["error"]["details"]["line"], 2);
    }

    #[test]
    fn batches_are_cut_by_lines_or_by_bytes() {
        let mut splitter = Splitter::new(1000);
        splitter
            .push(Bytes::from_static(b"{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n"))
            .unwrap();
        assert!(splitter.full_batch(4, 1000).is_none());
        let two = splitter.full_batch(2, 1000).unwrap();
        assert_eq!(two.iter().map(|l| l.0).collect::<Vec<_>>(), [1, 2]);
        assert!(splitter.full_batch(2, 1000).is_none());
        // Bytes: a batch is full once its lines hold `max_bytes`.
        assert_eq!(splitter.full_batch(10, 7).unwrap().len(), 1);
        assert!(splitter.take_all().is_empty());
    }

    #[test]
    fn lines_that_are_not_one_record_are_error_lines() {
        let error = parse_line(3, b"{\"a\":").unwrap_err().to_value();
        assert_eq!(error["error"]["code"], "bad_request");
        assert_eq!(error["error"]["details"], json!({"line": 3, "column": 5}));
        let error = parse_line(4, b"[{}, {}]").unwrap_err().to_value();
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("collection of 2 items"),
            "{error}"
        );
        assert_eq!(parse_line(5, b"{\"a\": 1}").unwrap(), json!({"a": 1}));
    }

    const LIMIT: Limit = Limit {
        name: "max_answer_bytes",
        max: 20,
    };

    #[test]
    fn an_ndjson_line_over_the_limit_becomes_an_error_line() {
        let mut out = b"{}\n".to_vec();
        answer_line(&mut out, &json!({"a": 1}), LIMIT, 2);
        answer_line(&mut out, &json!({"a": "x".repeat(100)}), LIMIT, 3);
        let lines: Vec<Value> = out
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines[1], json!({"a": 1}));
        assert_eq!(lines[2]["error"]["code"], "limit_exceeded");
        assert_eq!(lines[2]["error"]["details"]["line"], 3);
        assert_eq!(lines[2]["error"]["details"]["limit"], "max_answer_bytes");
    }
}
