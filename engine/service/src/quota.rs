//! Limits and quotas: how long, how large and how many of each thing a tenant may
//! store, with every default in one place ([`Quotas::DEFAULT`]).
//!
//! Lengths are counted in characters (Unicode scalar values, as JSON Schema's
//! `maxLength` counts them), sizes in bytes, and counts per tenant (connections,
//! plugins, webhooks) or per connection's mapping of one entity (overrides, versions
//! kept). A request over a limit changes nothing and is refused with a
//! [`LimitExceeded`] that names the limit, its value and what broke it; the HTTP API
//! answers it as 422 `limit_exceeded`. The operator sets each limit with a flag of
//! `crosswalk serve` (or its `CROSSWALK_…` variable), and the OpenAPI document carries
//! the same `maxLength` and `maxItems`.
//!
//! Mapping versions are not refused but pruned: beyond [`Quotas::max_versions_kept`]
//! versions, or [`Quotas::max_history_bytes`] of them, the oldest go (never the current
//! one), and the history says from which version on it is complete.

use std::io::Write;

use serde_json::{Value, json};

use crate::connection::Credentials;
use crate::store::PluginBinding;
use crosswalk_core::mapping::{OverrideSpec, RuleSpec};

/// The limits, as the operator set them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// Characters in a name: a connection's, a tenant's, a plugin's (and its version).
    pub max_name_length: usize,
    /// Characters in a URL: a webhook's, a live connection's `base_url` and `token_url`.
    pub max_url_length: usize,
    /// Characters in a secret: a webhook's signing secret, each field of a live
    /// connection's credentials.
    pub max_secret_length: usize,
    /// Characters in an override's (or nested rule's) `target`.
    pub max_target_length: usize,
    /// Characters in a JSONPath of a mapping: `path`, each `coalesce` entry, `write.path`.
    pub max_path_length: usize,
    /// Override entries in a connection's mapping of one entity, nested rules included;
    /// also the most entries one PATCH may send.
    pub max_overrides: usize,
    /// Bytes of a connection's override document for one entity, as JSON.
    pub max_mapping_bytes: usize,
    /// Connections per tenant.
    pub max_connections: usize,
    /// Plugin versions per tenant, and plugins bound to one mapping.
    pub max_plugins: usize,
    /// Bytes of all of a tenant's plugin versions together.
    pub max_plugin_bytes: u64,
    /// Webhook subscriptions per tenant.
    pub max_webhooks: usize,
    /// Versions kept of a connection's mapping of one entity; older ones are pruned.
    pub max_versions_kept: usize,
    /// Bytes of stored versions kept of a connection's mapping of one entity (the
    /// current one is always kept, whatever its size); older ones are pruned.
    pub max_history_bytes: u64,
}

impl Quotas {
    /// The defaults: well above what a real integration needs, well below what hurts
    /// the service.
    pub const DEFAULT: Quotas = Quotas {
        max_name_length: 200,
        max_url_length: 2048,
        max_secret_length: 8192,
        max_target_length: 256,
        max_path_length: 1024,
        max_overrides: 1000,
        max_mapping_bytes: 1024 * 1024,
        max_connections: 100,
        max_plugins: 50,
        max_plugin_bytes: 256 * 1024 * 1024,
        max_webhooks: 20,
        max_versions_kept: 100,
        max_history_bytes: 16 * 1024 * 1024,
    };

    /// Every limit by name, with its value and what it bounds: the table of the docs
    /// and of `--help`.
    pub fn table(&self) -> [(&'static str, u64, &'static str); 13] {
        [
            (
                "max_name_length",
                self.max_name_length as u64,
                "characters in a connection's, tenant's or plugin's name",
            ),
            (
                "max_url_length",
                self.max_url_length as u64,
                "characters in a webhook URL, upstream base_url or token_url",
            ),
            (
                "max_secret_length",
                self.max_secret_length as u64,
                "characters in a webhook secret or a credentials field",
            ),
            (
                "max_target_length",
                self.max_target_length as u64,
                "characters in an override's target",
            ),
            (
                "max_path_length",
                self.max_path_length as u64,
                "characters in a mapping's JSONPath",
            ),
            (
                "max_overrides",
                self.max_overrides as u64,
                "override entries (nested rules included) in one mapping",
            ),
            (
                "max_mapping_bytes",
                self.max_mapping_bytes as u64,
                "bytes of one mapping's override document",
            ),
            (
                "max_connections",
                self.max_connections as u64,
                "connections per tenant",
            ),
            (
                "max_plugins",
                self.max_plugins as u64,
                "plugin versions per tenant, and bindings per mapping",
            ),
            (
                "max_plugin_bytes",
                self.max_plugin_bytes,
                "bytes of a tenant's plugin versions together",
            ),
            (
                "max_webhooks",
                self.max_webhooks as u64,
                "webhook subscriptions per tenant",
            ),
            (
                "max_versions_kept",
                self.max_versions_kept as u64,
                "mapping versions kept per connection and entity",
            ),
            (
                "max_history_bytes",
                self.max_history_bytes,
                "bytes of mapping versions kept per connection and entity",
            ),
        ]
    }

    /// A name of at most [`Quotas::max_name_length`] characters.
    pub fn name(&self, field: &str, value: &str) -> Result<(), LimitExceeded> {
        length("max_name_length", self.max_name_length, field, value)
    }

    /// A URL of at most [`Quotas::max_url_length`] characters.
    pub fn url(&self, field: &str, value: &str) -> Result<(), LimitExceeded> {
        length("max_url_length", self.max_url_length, field, value)
    }

    /// A JSONPath of at most [`Quotas::max_path_length`] characters.
    pub fn path(&self, field: &str, value: &str) -> Result<(), LimitExceeded> {
        length("max_path_length", self.max_path_length, field, value)
    }

    /// A secret of at most [`Quotas::max_secret_length`] characters.
    pub fn secret(&self, field: &str, value: &str) -> Result<(), LimitExceeded> {
        length("max_secret_length", self.max_secret_length, field, value)
    }

    /// Every string of a live connection's credentials, each within
    /// [`Quotas::max_secret_length`], and a `token_url` within [`Quotas::max_url_length`].
    pub fn credentials(&self, credentials: &Credentials) -> Result<(), LimitExceeded> {
        let Ok(Value::Object(fields)) = serde_json::to_value(credentials) else {
            return Ok(());
        };
        for (name, value) in &fields {
            let Value::String(text) = value else {
                continue;
            };
            if name == "type" {
                continue;
            }
            let field = format!("credentials.{name}");
            if name == "token_url" {
                self.url(&field, text)?;
            } else {
                self.secret(&field, text)?;
            }
        }
        Ok(())
    }

    /// What one request sends as overrides (a PUT, a PATCH, a preview), before any of
    /// it is merged or compiled: the count of entries and every target's and path's
    /// length. Cheap: it reads each string once.
    pub fn overrides(&self, spec: &OverrideSpec) -> Result<(), LimitExceeded> {
        let mut count = 0;
        for (i, rule) in spec.overrides.iter().enumerate() {
            let at = format!("overrides[{i}]");
            count += 1;
            self.target(&format!("{at}.target"), &rule.target)?;
            self.paths(
                &at,
                rule.path.as_deref(),
                rule.coalesce.as_deref(),
                rule.write.as_ref().map(|w| w.path.as_str()),
            )?;
            if let Some(rules) = &rule.rules {
                count += self.nested(&at, rules)?;
            }
            if count > self.max_overrides {
                break;
            }
        }
        if count > self.max_overrides {
            return Err(LimitExceeded {
                limit: "max_overrides",
                max: self.max_overrides as u64,
                actual: count as u64,
                field: Some("overrides".into()),
                message: format!(
                    "the mapping has more than {} override entries (nested rules included), the limit `max_overrides`",
                    self.max_overrides
                ),
            });
        }
        Ok(())
    }

    /// What a change would store as a connection's mapping of one entity: its
    /// overrides (as [`Quotas::overrides`]), the size of the document, and the plugins
    /// bound to it.
    pub fn mapping(
        &self,
        spec: &OverrideSpec,
        plugins: &[PluginBinding],
    ) -> Result<(), LimitExceeded> {
        self.overrides(spec)?;
        let bytes = json_size(spec, self.max_mapping_bytes);
        if bytes > self.max_mapping_bytes {
            return Err(LimitExceeded {
                limit: "max_mapping_bytes",
                max: self.max_mapping_bytes as u64,
                actual: bytes as u64,
                field: None,
                message: format!(
                    "the override document is more than {} bytes as JSON, the limit `max_mapping_bytes`",
                    self.max_mapping_bytes
                ),
            });
        }
        if plugins.len() > self.max_plugins {
            return Err(LimitExceeded {
                limit: "max_plugins",
                max: self.max_plugins as u64,
                actual: plugins.len() as u64,
                field: None,
                message: format!(
                    "{} plugins are bound to the mapping; the limit `max_plugins` is {}",
                    plugins.len(),
                    self.max_plugins
                ),
            });
        }
        Ok(())
    }

    /// A tenant that has `held` of something may add one more, within `max`.
    pub fn one_more(
        limit: &'static str,
        max: usize,
        held: usize,
        what: &str,
    ) -> Result<(), LimitExceeded> {
        if held < max {
            return Ok(());
        }
        Err(LimitExceeded {
            limit,
            max: max as u64,
            actual: held as u64 + 1,
            field: None,
            message: format!(
                "the tenant has {held} {what}, the limit `{limit}` ({max}); delete one first"
            ),
        })
    }

    fn target(&self, field: &str, value: &str) -> Result<(), LimitExceeded> {
        length("max_target_length", self.max_target_length, field, value)
    }

    fn paths(
        &self,
        at: &str,
        path: Option<&str>,
        coalesce: Option<&[String]>,
        write: Option<&str>,
    ) -> Result<(), LimitExceeded> {
        if let Some(p) = path {
            self.path(&format!("{at}.path"), p)?;
        }
        for (j, p) in coalesce.unwrap_or_default().iter().enumerate() {
            self.path(&format!("{at}.coalesce[{j}]"), p)?;
        }
        if let Some(p) = write {
            self.path(&format!("{at}.write.path"), p)?;
        }
        Ok(())
    }

    /// Checks nested rules; returns how many there are (stopping past the limit).
    fn nested(&self, at: &str, rules: &[RuleSpec]) -> Result<usize, LimitExceeded> {
        let mut count = 0;
        for (i, rule) in rules.iter().enumerate() {
            let at = format!("{at}.rules[{i}]");
            count += 1;
            self.target(&format!("{at}.target"), &rule.target)?;
            self.paths(
                &at,
                rule.path.as_deref(),
                rule.coalesce.as_deref(),
                rule.write.as_ref().map(|w| w.path.as_str()),
            )?;
            if let Some(inner) = &rule.rules {
                count += self.nested(&at, inner)?;
            }
            if count > self.max_overrides {
                break;
            }
        }
        Ok(count)
    }
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas::DEFAULT
    }
}

/// A request over a limit: which limit, its value, and what broke it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LimitExceeded {
    /// The limit's name, as the flags and the docs spell it: `max_name_length`.
    pub limit: &'static str,
    /// Its value.
    pub max: u64,
    /// What the request came to (for a count: what it would have made; for a size
    /// measured while it is counted, at least `max + 1`).
    pub actual: u64,
    /// The field that broke it, when one did: `name`, `overrides[3].target`.
    pub field: Option<String>,
    /// The whole story, for people.
    pub message: String,
}

impl LimitExceeded {
    /// The details of the API's error answer: `{"limit", "max", "actual"}`, and
    /// `"field"` when one field broke it.
    pub fn details(&self) -> Value {
        let mut details = json!({"limit": self.limit, "max": self.max, "actual": self.actual});
        if let Some(field) = &self.field {
            details["field"] = Value::String(field.clone());
        }
        details
    }
}

/// A string of at most `max` characters.
fn length(limit: &'static str, max: usize, field: &str, value: &str) -> Result<(), LimitExceeded> {
    // Bytes bound characters from above: most strings are judged without counting.
    if value.len() <= max {
        return Ok(());
    }
    let chars = value.chars().count();
    if chars <= max {
        return Ok(());
    }
    Err(LimitExceeded {
        limit,
        max: max as u64,
        actual: chars as u64,
        field: Some(field.to_owned()),
        message: format!(
            "`{field}` is {chars} characters long; the limit `{limit}` is {max} characters"
        ),
    })
}

/// The size of `value` as JSON, counted without building it; counting stops once it
/// is past `stop`.
fn json_size<T: serde::Serialize>(value: &T, stop: usize) -> usize {
    struct Counter {
        bytes: usize,
        stop: usize,
    }
    impl Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.bytes += buf.len();
            if self.bytes > self.stop {
                // Stops the serializer: the size is known to be over.
                return Err(std::io::Error::other("over the limit"));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter { bytes: 0, stop };
    let _ = serde_json::to_writer(&mut counter, value);
    counter.bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crosswalk_core::mapping::{Format, OverrideRule};

    fn spec(yaml: &str) -> OverrideSpec {
        OverrideSpec::parse(yaml, Format::Yaml).unwrap()
    }

    #[test]
    fn lengths_count_characters_and_name_the_field() {
        let q = Quotas {
            max_name_length: 3,
            ..Quotas::DEFAULT
        };
        assert!(q.name("name", "äöü").is_ok(), "3 characters, 6 bytes");
        let e = q.name("name", "abcd").unwrap_err();
        assert_eq!((e.limit, e.max, e.actual), ("max_name_length", 3, 4));
        assert_eq!(
            e.to_string(),
            "`name` is 4 characters long; the limit `max_name_length` is 3 characters"
        );
        assert_eq!(
            e.details(),
            json!({"limit": "max_name_length", "max": 3, "actual": 4, "field": "name"})
        );
    }

    #[test]
    fn overrides_are_counted_with_their_nested_rules_and_every_string_is_checked() {
        let q = Quotas {
            max_overrides: 3,
            max_target_length: 8,
            max_path_length: 6,
            ..Quotas::DEFAULT
        };
        let ok = spec(
            "overrides:\n  - target: lines\n    rules:\n      - {target: a, path: $.A}\n      - {target: b, path: $.B}\n",
        );
        assert!(q.overrides(&ok).is_ok());
        let four = spec(
            "overrides:\n  - target: lines\n    rules:\n      - {target: a, path: $.A}\n      - {target: b, path: $.B}\n  - {target: c, path: $.C}\n",
        );
        let e = q.overrides(&four).unwrap_err();
        assert_eq!((e.limit, e.max), ("max_overrides", 3));
        let long_target = spec("overrides:\n  - {target: custom_fields.x, path: $.X}\n");
        let e = q.overrides(&long_target).unwrap_err();
        assert_eq!(e.limit, "max_target_length");
        assert_eq!(e.field.as_deref(), Some("overrides[0].target"));
        let nested_path = spec(
            "overrides:\n  - target: lines\n    rules:\n      - {target: a, coalesce: [$.A, $.ABCDEF]}\n",
        );
        let e = q.overrides(&nested_path).unwrap_err();
        assert_eq!(e.limit, "max_path_length");
        assert_eq!(
            e.field.as_deref(),
            Some("overrides[0].rules[0].coalesce[1]")
        );
    }

    #[test]
    fn a_mapping_document_is_measured_as_json_and_its_bindings_counted() {
        let q = Quotas {
            max_mapping_bytes: 100,
            max_plugins: 1,
            ..Quotas::DEFAULT
        };
        let small = spec("overrides:\n  - {target: number, path: $.A}\n");
        assert!(q.mapping(&small, &[]).is_ok());
        let mut big = small.clone();
        big.description = Some("x".repeat(200));
        let e = q.mapping(&big, &[]).unwrap_err();
        assert_eq!(e.limit, "max_mapping_bytes");
        assert!(e.actual > 100, "{e:?}");
        let binding = PluginBinding {
            sha256: "ab".into(),
            limits: Default::default(),
        };
        let e = q.mapping(&small, &[binding.clone(), binding]).unwrap_err();
        assert_eq!((e.limit, e.actual), ("max_plugins", 2));
        // Counting stops past the limit: the overrides after a long description are
        // not written out.
        let huge = OverrideSpec {
            description: Some("x".repeat(200)),
            overrides: vec![OverrideRule::default(); 100_000],
            ..Default::default()
        };
        let counted = json_size(&huge, 100);
        assert!((101..1000).contains(&counted), "{counted}");
    }

    #[test]
    fn a_quota_allows_one_more_below_its_limit() {
        assert!(Quotas::one_more("max_webhooks", 2, 1, "webhooks").is_ok());
        let e = Quotas::one_more("max_webhooks", 2, 2, "webhooks").unwrap_err();
        assert_eq!((e.max, e.actual), (2, 3));
        assert_eq!(
            e.to_string(),
            "the tenant has 2 webhooks, the limit `max_webhooks` (2); delete one first"
        );
    }

    #[test]
    fn credentials_are_checked_field_by_field() {
        let q = Quotas {
            max_secret_length: 4,
            max_url_length: 30,
            ..Quotas::DEFAULT
        };
        let credentials = |v: Value| serde_json::from_value::<Credentials>(v).unwrap();
        let ok = json!({"type": "oauth2", "token_url": "https://login.example.com/t", "client_id": "a", "client_secret": "b"});
        assert!(q.credentials(&credentials(ok)).is_ok());
        let e = q
            .credentials(&credentials(json!({"type": "bearer", "token": "12345"})))
            .unwrap_err();
        assert_eq!(
            (e.limit, e.field.as_deref()),
            ("max_secret_length", Some("credentials.token"))
        );
    }
}
