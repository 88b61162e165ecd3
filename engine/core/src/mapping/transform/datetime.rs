//! `datetime`: a date-time as RFC 3339 in UTC (`2024-03-15T10:30:00Z`).
//!
//! Records what [`date`](super::date) reads. Values with an offset are converted to UTC;
//! values without one are taken in `timezone` (a fixed offset such as `+01:00`, UTC by
//! default), and a date alone is midnight there.
//!
//! ```yaml
//! transforms: [datetime]   # "2024-03-15T10:30:00-05:00" → "2024-03-15T15:30:00Z"
//! transforms: [{datetime: {timezone: "+01:00"}}]   # "2024-03-15T10:30:00" → "2024-03-15T09:30:00Z"
//! ```

use chrono::{FixedOffset, SecondsFormat, TimeZone, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::date::{Moment, check_formats, parse};
use super::{TransformDef, expected, object_args};

pub(super) const DEF: TransformDef = TransformDef {
    name: "datetime",
    summary: "SAP /Date(ms)/, ISO date-times or given patterns → RFC 3339 UTC with Z",
    arguments: Some(
        "`formats: [..]`, `timezone: \"+01:00\"`: optional patterns, and the offset of values that carry none (UTC by default)",
    ),
    example: r#"{"datetime": {"timezone": "+01:00"}}"#,
};

/// Extra patterns, and the offset of values that carry none.
#[derive(Debug, Clone)]
pub struct DateTimeArgs {
    formats: Vec<String>,
    timezone: FixedOffset,
}

impl DateTimeArgs {
    pub(super) fn compile(args: Option<&Value>) -> Result<Self, String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Args {
            #[serde(default)]
            formats: Vec<String>,
            timezone: Option<String>,
        }
        let utc = FixedOffset::east_opt(0).expect("zero offset");
        let Some(v) = args else {
            return Ok(DateTimeArgs {
                formats: Vec::new(),
                timezone: utc,
            });
        };
        let Args { formats, timezone } = object_args(v)?;
        check_formats(&formats)?;
        let timezone = match timezone.as_deref() {
            None | Some("Z" | "UTC") => utc,
            Some(tz) => parse_offset(tz).ok_or_else(|| {
                format!("`timezone` must be a fixed offset such as +01:00 or Z, not `{tz}`")
            })?,
        };
        Ok(DateTimeArgs { formats, timezone })
    }

    pub(super) fn apply(&self, value: Value) -> Result<Value, String> {
        let Value::String(text) = &value else {
            return Err(expected("date-time text", &value));
        };
        let utc = match parse(text, &self.formats)? {
            None => return Ok(Value::Null),
            Some(Moment::Instant(dt)) => dt.with_timezone(&Utc),
            Some(Moment::Local(dt)) => self.local(dt)?,
            Some(Moment::Date(d)) => self.local(d.and_hms_opt(0, 0, 0).expect("midnight"))?,
        };
        Ok(Value::String(rfc3339(&utc)))
    }

    fn local(&self, dt: chrono::NaiveDateTime) -> Result<chrono::DateTime<Utc>, String> {
        self.timezone
            .from_local_datetime(&dt)
            .single()
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| "the time does not exist at the given offset".into())
    }
}

fn parse_offset(tz: &str) -> Option<FixedOffset> {
    let (sign, rest) = match tz.as_bytes().first()? {
        b'+' => (1, &tz[1..]),
        b'-' => (-1, &tz[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = digits[2..].parse().ok()?;
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}

/// `YYYY-MM-DDTHH:MM:SSZ`, written without a format pattern for the whole seconds of
/// years 0 to 9999 that nearly every value is; otherwise chrono's RFC 3339 with the
/// fraction of a second that there is (`SecondsFormat::AutoSi`).
fn rfc3339(utc: &chrono::DateTime<Utc>) -> String {
    use chrono::{Datelike, Timelike};
    let year = utc.year();
    if utc.nanosecond() != 0 || !(0..=9999).contains(&year) {
        return utc.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    }
    let year = year as u32;
    let mut out = String::with_capacity(20);
    let mut push = |n: u32, after: Option<char>| {
        out.push(char::from(b'0' + (n / 10) as u8));
        out.push(char::from(b'0' + (n % 10) as u8));
        out.extend(after);
    };
    push(year / 100, None);
    push(year % 100, Some('-'));
    push(utc.month(), Some('-'));
    push(utc.day(), Some('T'));
    push(utc.hour(), Some(':'));
    push(utc.minute(), Some(':'));
    push(utc.second(), Some('Z'));
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use serde_json::{Value, json};

    /// The digits written by hand are chrono's, from the first second of year 0 to the
    /// last of 9999, and chrono writes the rest.
    #[test]
    fn whole_seconds_are_written_as_chrono_writes_them() {
        use chrono::{SecondsFormat, TimeZone, Utc};
        let first = Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap().timestamp();
        let last = Utc
            .with_ymd_and_hms(9999, 12, 31, 23, 59, 59)
            .unwrap()
            .timestamp();
        let step = (last - first) / 100_003;
        let mut at = first;
        while at <= last {
            for t in [at, at + 1, at + 59] {
                let utc = Utc.timestamp_opt(t, 0).unwrap();
                assert_eq!(
                    super::rfc3339(&utc),
                    utc.to_rfc3339_opts(SecondsFormat::AutoSi, true)
                );
            }
            at += step;
        }
        let last = Utc.timestamp_opt(last, 0).unwrap();
        assert_eq!(super::rfc3339(&last), "9999-12-31T23:59:59Z");
        let fraction = Utc.timestamp_opt(0, 5_000_000).unwrap();
        assert_eq!(super::rfc3339(&fraction), "1970-01-01T00:00:00.005Z");
        let beyond = Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(super::rfc3339(&beyond), "+10000-01-01T00:00:00Z");
    }

    #[test]
    fn to_utc() {
        give(
            json!("datetime"),
            json!("/Date(1710498600000)/"),
            json!("2024-03-15T10:30:00Z"),
        );
        give(
            json!("datetime"),
            json!("/Date(1710498600000+0060)/"),
            json!("2024-03-15T10:30:00Z"),
        );
        give(
            json!("datetime"),
            json!("2024-03-15T10:30:00-05:00"),
            json!("2024-03-15T15:30:00Z"),
        );
        give(
            json!("datetime"),
            json!("2024-03-15T10:30:00.250Z"),
            json!("2024-03-15T10:30:00.250Z"),
        );
        give(
            json!("datetime"),
            json!("2024-03-15"),
            json!("2024-03-15T00:00:00Z"),
        );
        give(json!("datetime"), json!(""), Value::Null);
        fails(
            json!("datetime"),
            json!("yesterday"),
            "not a date in a known format",
        );
    }

    #[test]
    fn values_without_offset_use_the_timezone() {
        let step = json!({"datetime": {"timezone": "+01:00"}});
        give(
            step.clone(),
            json!("2024-03-15T10:30:00"),
            json!("2024-03-15T09:30:00Z"),
        );
        give(
            step,
            json!("2024-03-15T10:30:00Z"),
            json!("2024-03-15T10:30:00Z"),
        );
        rejects(
            json!({"datetime": {"timezone": "Europe/Berlin"}}),
            "fixed offset",
        );
    }
}
