//! How to reach a live connection's system, apart from its secrets: [`UpstreamConfig`]
//! (base URL, timeout, concurrency, page size, breaker) and the checks it passes before
//! it is stored. The base URL's address is checked apart, against the egress policy
//! ([`crate::egress::Policy`]), because that depends on the operator, not the tenant.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use url::Url;

use super::credentials::AuthKind;
use crate::connection::health::BreakerConfig;

/// How to reach a live connection's system (everything but the secrets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// The system's base URL: `https://my-s4.example.com`, without the service path.
    pub base_url: String,
    /// How the connection authenticates: set from its credentials (whose secrets are
    /// stored sealed and never shown).
    #[serde(default)]
    pub auth: Option<AuthKind>,
    /// How long one upstream call may take, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    #[schemars(range(min = 1, max = 600_000))]
    pub timeout_ms: u64,
    /// How many upstream calls the connection makes at once; others wait their turn.
    #[serde(default = "default_concurrency")]
    #[schemars(range(min = 1, max = 64))]
    pub max_concurrency: u32,
    /// Records asked for per upstream page.
    #[serde(default = "default_page_size")]
    #[schemars(range(min = 1, max = MAX_PAGE_SIZE))]
    pub page_size: u32,
    /// When the circuit breaker opens and for how long.
    #[serde(default)]
    pub breaker: BreakerConfig,
}

fn default_timeout_ms() -> u64 {
    10_000
}
fn default_concurrency() -> u32 {
    4
}
fn default_page_size() -> u32 {
    100
}

/// The largest page asked of an upstream.
pub const MAX_PAGE_SIZE: u32 = 1000;

impl UpstreamConfig {
    /// Checks the settings; names the first one that is wrong. The base URL's address
    /// is checked apart, against the [`Policy`](crate::egress::Policy).
    pub fn validate(&self) -> Result<Url, String> {
        let url = Url::parse(&self.base_url)
            .map_err(|e| format!("upstream.base_url `{}` is not a URL: {e}", self.base_url))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(format!(
                "upstream.base_url `{}` must be an http or https URL with a host",
                self.base_url
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            // It would be stored and shown in clear: credentials go in `credentials`.
            return Err(
                "upstream.base_url must not carry a user or password; put them in `credentials`"
                    .into(),
            );
        }
        if !(1..=600_000).contains(&self.timeout_ms) {
            return Err(format!(
                "upstream.timeout_ms is {}; it must be between 1 and 600000",
                self.timeout_ms
            ));
        }
        if !(1..=64).contains(&self.max_concurrency) {
            return Err(format!(
                "upstream.max_concurrency is {}; it must be between 1 and 64",
                self.max_concurrency
            ));
        }
        if !(1..=MAX_PAGE_SIZE).contains(&self.page_size) {
            return Err(format!(
                "upstream.page_size is {}; it must be between 1 and {MAX_PAGE_SIZE}",
                self.page_size
            ));
        }
        self.breaker.validate()?;
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(value: serde_json::Value) -> UpstreamConfig {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_config_names_the_first_setting_that_is_wrong() {
        let bad = config(json!({"base_url": "ftp://x", "page_size": 5}));
        assert!(bad.validate().unwrap_err().contains("http or https"));
        let bad = config(json!({"base_url": "https://u:p@erp.example.com"}));
        assert!(
            bad.validate()
                .unwrap_err()
                .contains("must not carry a user or password")
        );
        let bad = config(json!({"base_url": "https://erp.example.com", "page_size": 1001}));
        assert_eq!(
            bad.validate().unwrap_err(),
            "upstream.page_size is 1001; it must be between 1 and 1000"
        );
        let good = config(json!({"base_url": "https://erp.example.com/sap"}));
        assert_eq!(
            good.validate().unwrap().as_str(),
            "https://erp.example.com/sap"
        );
        assert_eq!(
            (good.timeout_ms, good.max_concurrency, good.page_size),
            (10_000, 4, 100)
        );
    }
}
