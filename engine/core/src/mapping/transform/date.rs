//! `date`: a calendar date as `YYYY-MM-DD`.
//!
//! Records the date formats of the source systems: SAP OData V2's `/Date(ms)/` and
//! `/Date(ms+mmmm)/` (milliseconds since the epoch in UTC, with an offset in minutes),
//! ISO 8601 dates and date-times with or without an offset (the date is taken as
//! written, in the value's own offset), SAP's `YYYYMMDD`, and any chrono pattern given
//! in `formats`. SAP's empty date `00000000` and empty text give `null`.
//!
//! ```yaml
//! transforms: [date]                         # "/Date(1710460800000)/" → "2024-03-15"
//! transforms: [{date: {formats: ["%d.%m.%Y"]}}]   # "15.03.2024" → "2024-03-15"
//! ```

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::{TransformDef, expected, object_args};

pub(super) const DEF: TransformDef = TransformDef {
    name: "date",
    summary: "SAP /Date(ms)/, ISO dates and date-times, YYYYMMDD or given patterns → YYYY-MM-DD",
    arguments: Some("`formats: [..]`: optional chrono patterns tried after the built-in formats"),
    example: r#"{"date": {"formats": ["%d.%m.%Y"]}}"#,
};

/// Extra chrono patterns to try after the built-in formats.
#[derive(Debug, Clone, Default)]
pub struct DateArgs {
    pub(super) formats: Vec<String>,
}

/// A parsed date or time, before it is cut down to what the target needs.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Moment {
    /// A date without a time.
    Date(NaiveDate),
    /// A date and time without an offset.
    Local(NaiveDateTime),
    /// A date and time at a known offset.
    Instant(DateTime<FixedOffset>),
}

impl DateArgs {
    pub(super) fn compile(args: Option<&Value>) -> Result<Self, String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Args {
            formats: Vec<String>,
        }
        match args {
            None => Ok(DateArgs::default()),
            Some(v) => {
                let Args { formats } = object_args(v)?;
                check_formats(&formats)?;
                Ok(DateArgs { formats })
            }
        }
    }

    pub(super) fn apply(&self, value: Value) -> Result<Value, String> {
        let Value::String(text) = &value else {
            return Err(expected("date text", &value));
        };
        Ok(match parse(text, &self.formats)? {
            None => Value::Null,
            Some(Moment::Date(d)) => Value::String(ymd(d)),
            Some(Moment::Local(dt)) => Value::String(ymd(dt.date())),
            Some(Moment::Instant(dt)) => Value::String(ymd(dt.date_naive())),
        })
    }
}

/// `YYYY-MM-DD`, without parsing a format pattern each time.
fn ymd(d: NaiveDate) -> String {
    use chrono::Datelike;
    if (0..=9999).contains(&d.year()) {
        format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
    } else {
        d.format("%Y-%m-%d").to_string()
    }
}

/// `YYYY-MM-DD` read without a format pattern: the commonest date text.
fn plain_date(t: &str) -> Option<NaiveDate> {
    let b = t.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        t.get(r.clone())
            .filter(|s| s.bytes().all(|c| c.is_ascii_digit()))?
            .parse()
            .ok()
    };
    NaiveDate::from_ymd_opt(digits(0..4)? as i32, digits(5..7)?, digits(8..10)?)
}

/// Checks that every pattern is a valid chrono pattern.
pub(super) fn check_formats(formats: &[String]) -> Result<(), String> {
    for f in formats {
        if StrftimeItems::new(f).any(|i| matches!(i, Item::Error)) {
            return Err(format!("`{f}` is not a valid chrono format pattern"));
        }
    }
    Ok(())
}

/// Parses date or date-time text in any of the known formats, then `formats`.
/// `Ok(None)` is an empty date.
pub(super) fn parse(text: &str, formats: &[String]) -> Result<Option<Moment>, String> {
    let t = text.trim();
    if t.is_empty() || t == "00000000" || t.starts_with("0000-00-00") {
        return Ok(None);
    }
    if let Some(inner) = t.strip_prefix("/Date(").and_then(|r| r.strip_suffix(")/")) {
        return odata_v2(inner).map(Some);
    }
    if let Some(d) = plain_date(t) {
        return Ok(Some(Moment::Date(d)));
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(Some(Moment::Instant(dt)));
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%:z"] {
        if let Ok(dt) = DateTime::parse_from_str(t, f) {
            return Ok(Some(Moment::Instant(dt)));
        }
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(t, f) {
            return Ok(Some(Moment::Local(dt)));
        }
    }
    for f in ["%Y-%m-%d", "%Y%m%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(t, f) {
            return Ok(Some(Moment::Date(d)));
        }
    }
    for f in formats {
        if let Ok(dt) = DateTime::parse_from_str(t, f) {
            return Ok(Some(Moment::Instant(dt)));
        }
        if let Ok(dt) = NaiveDateTime::parse_from_str(t, f) {
            return Ok(Some(Moment::Local(dt)));
        }
        if let Ok(d) = NaiveDate::parse_from_str(t, f) {
            return Ok(Some(Moment::Date(d)));
        }
    }
    let tried = if formats.is_empty() {
        String::new()
    } else {
        format!(" or {}", formats.join(", "))
    };
    Err(format!(
        "not a date in a known format (/Date(ms)/, ISO 8601, YYYYMMDD{tried})"
    ))
}

/// `1710460800000`, `1710460800000+0060`, `-86400000`: milliseconds since the epoch in
/// UTC, then an optional offset in minutes (OData V2 `Edm.DateTimeOffset`).
fn odata_v2(inner: &str) -> Result<Moment, String> {
    let bad = || {
        format!(
            "`/Date({inner})/` is not an OData date: expected /Date(<milliseconds>[+|-<minutes>])/"
        )
    };
    let split = inner
        .char_indices()
        .skip(1)
        .find(|(_, c)| *c == '+' || *c == '-')
        .map(|(i, _)| i);
    let (ms, offset) = match split {
        Some(i) => (&inner[..i], Some(&inner[i..])),
        None => (inner, None),
    };
    let ms: i64 = ms.parse().map_err(|_| bad())?;
    let minutes: i32 = match offset {
        Some(o) => o.parse().map_err(|_| bad())?,
        None => 0,
    };
    let offset = FixedOffset::east_opt(minutes * 60).ok_or_else(bad)?;
    let utc = Utc.timestamp_millis_opt(ms).single().ok_or_else(bad)?;
    Ok(Moment::Instant(utc.with_timezone(&offset)))
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use serde_json::{Value, json};

    #[test]
    fn sap_odata_dates() {
        give(
            json!("date"),
            json!("/Date(1710460800000)/"),
            json!("2024-03-15"),
        );
        give(
            json!("date"),
            json!("/Date(1710460800000+0000)/"),
            json!("2024-03-15"),
        );
        // 23:30 UTC on the 14th is already the 15th at +01:00 (60 minutes).
        give(
            json!("date"),
            json!("/Date(1710459000000+0060)/"),
            json!("2024-03-15"),
        );
        give(
            json!("date"),
            json!("/Date(-86400000)/"),
            json!("1969-12-31"),
        );
        fails(json!("date"), json!("/Date(abc)/"), "not an OData date");
    }

    #[test]
    fn iso_and_sap_text() {
        give(json!("date"), json!("2024-03-15"), json!("2024-03-15"));
        give(
            json!("date"),
            json!("2024-03-15T23:00:00-05:00"),
            json!("2024-03-15"),
        );
        give(
            json!("date"),
            json!("2024-03-15T12:00:00Z"),
            json!("2024-03-15"),
        );
        give(
            json!("date"),
            json!("2024-03-15T08:00:00"),
            json!("2024-03-15"),
        );
        give(json!("date"), json!("20240315"), json!("2024-03-15"));
        give(json!("date"), json!("00000000"), Value::Null);
        give(json!("date"), json!(""), Value::Null);
        fails(
            json!("date"),
            json!("15/03/2024"),
            "not a date in a known format",
        );
        fails(json!("date"), json!(1710460800000i64), "not a number");
    }

    #[test]
    fn own_patterns() {
        let step = json!({"date": {"formats": ["%d.%m.%Y"]}});
        give(step.clone(), json!("15.03.2024"), json!("2024-03-15"));
        fails(step, json!("2024/03/15"), "%d.%m.%Y");
        rejects(
            json!({"date": {"formats": ["%Q"]}}),
            "not a valid chrono format",
        );
        rejects(json!({"date": {"format": "%d"}}), "unknown field `format`");
    }
}
