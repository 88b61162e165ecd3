//! Request bodies. JSON is parsed here rather than by axum's extractor, so that a
//! malformed body gets the API's error shape with its line and column, a body over the
//! limit a 413, and a whole number written as a float (`50.0`) is read where an integer
//! is expected.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde_json::json;

use super::{ApiError, ErrorCode};

/// A JSON body, parsed here so that a malformed one gets the API's error shape with
/// its position, and a too large one a 413.
pub(super) fn json_body<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    parsed_body(body, from_json)
}

/// A body read by `parse` (the 400 names the line and column of invalid JSON; the 413
/// a body over the limit).
pub(super) fn parsed_body<T>(
    body: Result<Bytes, BytesRejection>,
    parse: impl FnOnce(&[u8]) -> Result<T, serde_json::Error>,
) -> Result<T, ApiError> {
    let bytes = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::PayloadTooLarge,
                e.body_text(),
            )
        } else {
            ApiError::bad_request(e.body_text())
        }
    })?;
    parse(&bytes).map_err(|e| {
        ApiError::bad_request(format!("the body is not valid: {e}"))
            .details(json!({"line": e.line(), "column": e.column()}))
    })
}

/// Reads JSON as `T`. A whole number written as a float (`50.0`, `5e1`) where `T`
/// takes an integer is read as that integer, as JSON Schema counts it one (Python
/// clients write a float that holds a whole number so); a number with a fraction
/// is still refused. Only the numbers that `T` refused are rewritten, one at a time,
/// so that numbers elsewhere (a payload, a constant) keep how they were written.
fn from_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    let first = match serde_json::from_slice(bytes) {
        Ok(value) => return Ok(value),
        Err(e) => e,
    };
    let mut text = std::borrow::Cow::Borrowed(bytes);
    let mut error = first;
    // A body has few integer fields; each pass fixes one.
    for _ in 0..64 {
        if !error
            .to_string()
            .starts_with("invalid type: floating point")
        {
            break;
        }
        let Some(fixed) = whole_number_at(&text, error.line(), error.column()) else {
            break;
        };
        text = std::borrow::Cow::Owned(fixed);
        match serde_json::from_slice(&text) {
            Ok(value) => return Ok(value),
            Err(e) => error = e,
        }
    }
    Err(error)
}

/// `text` with the number literal that ends at `line`:`column` (where serde_json
/// reports a number of the wrong type: 1-based line, byte column after the literal)
/// written as an integer, if it is a whole number.
fn whole_number_at(text: &[u8], line: usize, column: usize) -> Option<Vec<u8>> {
    let line_start = if line <= 1 {
        0
    } else {
        text.iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(line - 2)
            .map(|(i, _)| i + 1)?
    };
    let end = line_start.checked_add(column)?;
    let is_number = |b: &u8| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E');
    let start = end
        - text
            .get(..end)?
            .iter()
            .rev()
            .take_while(|b| is_number(b))
            .count();
    let literal = std::str::from_utf8(&text[start..end]).ok()?;
    let integer = whole_number(literal)?;
    let mut fixed = Vec::with_capacity(text.len());
    fixed.extend_from_slice(&text[..start]);
    fixed.extend_from_slice(integer.as_bytes());
    fixed.extend_from_slice(&text[end..]);
    Some(fixed)
}

/// A JSON number literal as an integer literal, if it is a whole number of at most
/// 40 digits: `50.0` → `50`, `5e1` → `50`, `-2.50e1` → `-25`; `2.5` → none.
fn whole_number(literal: &str) -> Option<String> {
    let (sign, unsigned) = match literal.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", literal),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.strip_prefix('+').unwrap_or(e).parse::<i64>().ok()?),
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() || !(whole.bytes().chain(fraction.bytes())).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = format!("{whole}{fraction}");
    // The value is `digits` × 10^shift.
    let shift = exponent.checked_sub(i64::try_from(fraction.len()).ok()?)?;
    let digits = if shift >= 0 {
        if shift > 40 {
            return None;
        }
        format!("{digits}{}", "0".repeat(shift as usize))
    } else {
        let cut = digits.len().checked_sub(usize::try_from(-shift).ok()?)?;
        if !digits[cut..].bytes().all(|b| b == b'0') {
            return None;
        }
        digits[..cut].to_owned()
    };
    let digits = digits.trim_start_matches('0');
    match digits {
        "" => Some("0".to_owned()),
        d if d.len() > 40 => None,
        d => Some(format!("{sign}{d}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn whole_numbers_written_as_floats_are_integers() {
        for (literal, integer) in [
            ("50.0", Some("50")),
            ("5e1", Some("50")),
            ("5E+1", Some("50")),
            ("-2.50e1", Some("-25")),
            ("0.0", Some("0")),
            ("1200e-2", Some("12")),
            ("2.5", None),
            ("5e-3", None),
            ("1e41", None),
            (".5", None),
        ] {
            assert_eq!(whole_number(literal).as_deref(), integer, "{literal}");
        }
    }

    #[test]
    fn a_body_reads_whole_floats_into_integer_fields_and_nothing_else() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Body {
            size: u32,
            limit: Option<u64>,
            payload: Value,
        }
        let body: Body =
            from_json(b"{\"payload\": {\"x\": 1.0},\n \"size\": 50.0, \"limit\": 2e3}").unwrap();
        assert_eq!((body.size, body.limit), (50, Some(2000)));
        // The payload's number keeps how it was written.
        assert_eq!(body.payload["x"].to_string(), "1.0");
        let refused = from_json::<Body>(b"{\"payload\": null, \"size\": 50.5}").unwrap_err();
        assert!(
            refused.to_string().contains("floating point `50.5`"),
            "{refused}"
        );
    }
}
