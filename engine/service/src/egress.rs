//! Outbound calls: the addresses that webhooks, live upstreams and OAuth token
//! endpoints may be reached at, and the HTTP client that holds every connection to it.
//!
//! # The rule
//!
//! A tenant chooses the URLs that Crosswalk calls, so without a rule a tenant could make
//! the service call inside its own network: a cloud metadata service, an admin port on
//! loopback, a database on a private address. [`Policy`] refuses, unless the operator
//! allows the range ([`Policy::allowing`], `crosswalk serve --allow-upstream CIDR`):
//!
//! | rule | IPv4 | IPv6 |
//! | --- | --- | --- |
//! | `unspecified` | `0.0.0.0/8` | `::/128` |
//! | `loopback` | `127.0.0.0/8` | `::1/128` |
//! | `private` | `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16` | `64:ff9b:1::/48` (local NAT64) |
//! | `shared_address_space` (carrier-grade NAT) | `100.64.0.0/10` | |
//! | `link_local` (and so `169.254.169.254`, the metadata service of most clouds) | `169.254.0.0/16` | `fe80::/10` |
//! | `unique_local` (AWS's `fd00:ec2::254`) | | `fc00::/7` |
//! | `multicast` | `224.0.0.0/4` | `ff00::/8` |
//! | `broadcast` | `255.255.255.255/32` | |
//! | `documentation` | `192.0.2.0/24`, `198.51.100.0/24`, `203.0.113.0/24` | `2001:db8::/32`, `3fff::/20` |
//! | `benchmarking` | `198.18.0.0/15` | |
//! | `reserved` | `192.0.0.0/24`, `192.88.99.0/24`, `240.0.0.0/4` | `100::/64`, `2001::/23`, `fec0::/10` |
//! | `not_global_unicast` | | anything outside `2000::/3` |
//!
//! An IPv6 address that carries an IPv4 address is judged as that IPv4 address:
//! IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`
//! and 6to4 `2002:aabb:ccdd::/48`. The names of cloud metadata services
//! ([`METADATA_NAMES`]) are refused whatever they resolve to, and `localhost` (with any
//! `*.localhost`) is judged as loopback. Every spelling of an IPv4 address that a URL
//! may hold (`2130706433`, `0x7f000001`, `0177.0.0.1`, `127.1`, `0`) is the address
//! itself: URLs are parsed as WHATWG's standard says, as browsers and the HTTP client
//! do, before anything is checked. Only `http` and `https` URLs are taken, and none
//! with a user or password in it.
//!
//! # When it is checked
//!
//! Twice. When a URL is stored ([`Policy::check_url`]: a webhook, a connection's
//! `base_url` or `token_url`), so that a tenant hears at once why it is refused; there
//! a name is not resolved, since what it resolves to can change. And on every
//! connection ([`Outbound`]): a name is resolved, every address is checked, and only
//! the addresses the policy allows are handed to the connector, so that a name which
//! resolves to a refused address later (DNS rebinding) is refused then; an address in
//! the URL itself (which the HTTP client connects to without resolving) is checked
//! before the request is sent. System proxies (`HTTP_PROXY`, …) are not used: the
//! address that is checked must be the one connected to. Redirects are never followed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use url::{Host, Url};

/// The names of cloud metadata services, refused whatever they resolve to.
pub const METADATA_NAMES: &[&str] = &[
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "instance-data",
    "instance-data.ec2.internal",
    "metadata.tencentyun.com",
];

/// Why an address is refused: the kind of range it is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// `0.0.0.0/8`, `::`: no host, or this host.
    Unspecified,
    /// `127.0.0.0/8`, `::1`: this host.
    Loopback,
    /// RFC 1918 networks and local NAT64.
    Private,
    /// `100.64.0.0/10`: carrier-grade NAT.
    SharedAddressSpace,
    /// `169.254.0.0/16`, `fe80::/10`: where cloud metadata services listen.
    LinkLocal,
    /// `fc00::/7`.
    UniqueLocal,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// Ranges reserved for documentation.
    Documentation,
    /// `198.18.0.0/15`.
    Benchmarking,
    /// Other special-purpose or reserved ranges.
    Reserved,
    /// IPv6 outside the global unicast range `2000::/3`.
    NotGlobalUnicast,
}

impl Rule {
    /// Its name, as the API's error details give it.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Unspecified => "unspecified",
            Rule::Loopback => "loopback",
            Rule::Private => "private",
            Rule::SharedAddressSpace => "shared_address_space",
            Rule::LinkLocal => "link_local",
            Rule::UniqueLocal => "unique_local",
            Rule::Multicast => "multicast",
            Rule::Broadcast => "broadcast",
            Rule::Documentation => "documentation",
            Rule::Benchmarking => "benchmarking",
            Rule::Reserved => "reserved",
            Rule::NotGlobalUnicast => "not_global_unicast",
        }
    }

    /// What it means, for people.
    fn describe(self) -> &'static str {
        match self {
            Rule::Unspecified => "an unspecified address",
            Rule::Loopback => "a loopback address",
            Rule::Private => "a private address",
            Rule::SharedAddressSpace => "a carrier-grade NAT address",
            Rule::LinkLocal => "a link-local address (where cloud metadata services listen)",
            Rule::UniqueLocal => "a unique-local address",
            Rule::Multicast => "a multicast address",
            Rule::Broadcast => "the broadcast address",
            Rule::Documentation => "a documentation address",
            Rule::Benchmarking => "a benchmarking address",
            Rule::Reserved => "a reserved address",
            Rule::NotGlobalUnicast => "outside IPv6's global unicast range",
        }
    }
}

/// The refused IPv4 ranges, the most specific first.
const V4_RULES: &[(&str, Rule)] = &[
    ("0.0.0.0/8", Rule::Unspecified),
    ("10.0.0.0/8", Rule::Private),
    ("100.64.0.0/10", Rule::SharedAddressSpace),
    ("127.0.0.0/8", Rule::Loopback),
    ("169.254.0.0/16", Rule::LinkLocal),
    ("172.16.0.0/12", Rule::Private),
    ("192.0.0.0/24", Rule::Reserved),
    ("192.0.2.0/24", Rule::Documentation),
    ("192.88.99.0/24", Rule::Reserved),
    ("192.168.0.0/16", Rule::Private),
    ("198.18.0.0/15", Rule::Benchmarking),
    ("198.51.100.0/24", Rule::Documentation),
    ("203.0.113.0/24", Rule::Documentation),
    ("224.0.0.0/4", Rule::Multicast),
    ("255.255.255.255/32", Rule::Broadcast),
    ("240.0.0.0/4", Rule::Reserved),
];

/// The refused IPv6 ranges (after an embedded IPv4 address is taken out), the most
/// specific first; then anything outside `2000::/3`.
const V6_RULES: &[(&str, Rule)] = &[
    ("::/128", Rule::Unspecified),
    ("::1/128", Rule::Loopback),
    ("64:ff9b:1::/48", Rule::Private),
    ("100::/64", Rule::Reserved),
    ("2001:db8::/32", Rule::Documentation),
    ("2001::/23", Rule::Reserved),
    ("3fff::/20", Rule::Documentation),
    ("fc00::/7", Rule::UniqueLocal),
    ("fe80::/10", Rule::LinkLocal),
    ("fec0::/10", Rule::Reserved),
    ("ff00::/8", Rule::Multicast),
];

/// IPv6's global unicast range.
const GLOBAL_UNICAST: &str = "2000::/3";

fn net(cidr: &str) -> IpNet {
    cidr.parse().expect("the rule tables hold valid CIDRs")
}

/// The IPv4 address an IPv6 address carries, if it is one of the forms that carry one:
/// IPv4-mapped, IPv4-compatible (but not `::` nor `::1`), NAT64 (`64:ff9b::/96`) and
/// 6to4 (`2002::/16`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..6] == [0; 6] && ip != Ipv6Addr::UNSPECIFIED && ip != Ipv6Addr::LOCALHOST {
        return Some(low);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(low);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    None
}

/// The rule that refuses an address by default, with its range; `None` for a public
/// address.
fn rule_of(ip: IpAddr) -> Option<(Rule, IpNet)> {
    let rules = match ip {
        IpAddr::V4(_) => V4_RULES,
        IpAddr::V6(_) => V6_RULES,
    };
    for (cidr, rule) in rules {
        let range = net(cidr);
        if range.contains(&ip) {
            return Some((*rule, range));
        }
    }
    let global = net(GLOBAL_UNICAST);
    match ip {
        IpAddr::V6(_) if !global.contains(&ip) => Some((Rule::NotGlobalUnicast, global)),
        _ => None,
    }
}

/// Why an outbound call, or a URL for one, is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The address is in a range that is refused by default and not allowed.
    #[error("{address}{} is {} ({range})", judged_as(*.ipv4), .rule.describe())]
    Address {
        /// The address.
        address: IpAddr,
        /// The IPv4 address it carries, which is what was judged.
        ipv4: Option<Ipv4Addr>,
        /// The kind of range.
        rule: Rule,
        /// The range.
        range: IpNet,
    },
    /// A cloud metadata service's name.
    #[error("`{host}` is the name of a cloud metadata service")]
    MetadataName {
        /// The name.
        host: String,
    },
    /// A name whose every address is refused (or that has none).
    #[error("`{host}` {}", resolved_to(.refused))]
    Resolved {
        /// The name.
        host: String,
        /// Why each of its addresses was refused (empty: it has none).
        refused: Vec<Refusal>,
    },
}

fn judged_as(ipv4: Option<Ipv4Addr>) -> String {
    ipv4.map(|v4| format!(" (that is {v4})"))
        .unwrap_or_default()
}

fn resolved_to(refused: &[Refusal]) -> String {
    if refused.is_empty() {
        return "resolves to no address".into();
    }
    let each: Vec<String> = refused.iter().map(ToString::to_string).collect();
    format!("resolves only to refused addresses: {}", each.join("; "))
}

impl Refusal {
    /// The first refused address and its rule, for error details.
    pub fn first_address(&self) -> Option<(IpAddr, Rule, IpNet)> {
        match self {
            Refusal::Address {
                address,
                rule,
                range,
                ..
            } => Some((*address, *rule, *range)),
            Refusal::MetadataName { .. } => None,
            Refusal::Resolved { refused, .. } => refused.iter().find_map(Refusal::first_address),
        }
    }

    /// The rule's name, for error details: `metadata_name` for a metadata service's
    /// name, `no_address` for a name with no address.
    pub fn rule_name(&self) -> &'static str {
        match self {
            Refusal::MetadataName { .. } => "metadata_name",
            other => other
                .first_address()
                .map_or("no_address", |(_, rule, _)| rule.as_str()),
        }
    }

    /// The error details that the API gives with a refusal.
    pub fn details(&self) -> serde_json::Value {
        let (address, range) = match self.first_address() {
            Some((address, _, range)) => (
                serde_json::Value::String(address.to_string()),
                serde_json::Value::String(range.to_string()),
            ),
            None => (serde_json::Value::Null, serde_json::Value::Null),
        };
        serde_json::json!({"rule": self.rule_name(), "address": address, "range": range})
    }
}

/// A URL that cannot be stored for an outbound call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// It does not parse.
    #[error("{field} `{url}` is not a URL: {reason}")]
    NotUrl {
        /// The field that holds it.
        field: &'static str,
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// Not `http` or `https`, or no host.
    #[error("{field} `{url}` must be an http or https URL with a host")]
    NotHttp {
        /// The field that holds it.
        field: &'static str,
        /// The URL.
        url: String,
    },
    /// Its host is no DNS name: a label of other than letters, digits, `-` and `_`
    /// (a control character, say), empty, or too long.
    #[error(
        "{field} `{url}` has no valid host name: `{host}` is not one (labels of letters, digits, `-` and `_`, at most 63 characters each and 253 in all)"
    )]
    BadHost {
        /// The field that holds it.
        field: &'static str,
        /// The URL, with control characters escaped.
        url: String,
        /// The host, with control characters escaped.
        host: String,
    },
    /// It carries a user or password (which would be stored and shown in clear). The
    /// URL is not repeated, since it holds a secret.
    #[error("{field} must not carry a user or password{hint}")]
    Userinfo {
        /// The field that holds it.
        field: &'static str,
        /// Where credentials go instead.
        hint: &'static str,
    },
    /// Its host is refused.
    #[error(
        "{field} `{url}` is refused: {refusal}; outbound calls do not go to loopback, private, link-local or metadata addresses unless the operator allows the range (crosswalk serve --allow-upstream CIDR)"
    )]
    Refused {
        /// The field that holds it.
        field: &'static str,
        /// The URL.
        url: String,
        /// Why.
        refusal: Refusal,
    },
}

impl UrlError {
    /// The field that holds the URL.
    pub fn field(&self) -> &'static str {
        match self {
            UrlError::NotUrl { field, .. }
            | UrlError::NotHttp { field, .. }
            | UrlError::BadHost { field, .. }
            | UrlError::Userinfo { field, .. }
            | UrlError::Refused { field, .. } => field,
        }
    }
}

/// Where outbound calls may go: every public address, and the ranges the operator
/// allows. A cheap handle.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    allow: Arc<[IpNet]>,
}

/// Parses one allowed range: CIDR (`10.20.0.0/16`, `fd12::/48`) or a single address.
pub fn parse_range(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    if let Ok(range) = text.parse::<IpNet>() {
        return Ok(range.trunc());
    }
    text.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
        format!("`{text}` is not an address range: give CIDR such as 10.20.0.0/16 or fd12::/48, or one address")
    })
}

impl Policy {
    /// Refuses every range of the rule; allows the rest.
    pub fn deny_internal() -> Policy {
        Policy::default()
    }

    /// Also allows `ranges`, whatever rule they fall under.
    pub fn allowing(ranges: impl IntoIterator<Item = IpNet>) -> Policy {
        Policy {
            allow: ranges.into_iter().collect(),
        }
    }

    /// The ranges the operator allows.
    pub fn allowed(&self) -> &[IpNet] {
        &self.allow
    }

    fn is_allowed(&self, ip: IpAddr) -> bool {
        self.allow.iter().any(|range| range.contains(&ip))
    }

    /// Checks one address: allowed when the operator allows it (or the IPv4 address
    /// it carries), else refused when a rule covers it (judging an IPv6 address that
    /// carries an IPv4 address as that address).
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
        let ipv4 = match ip {
            IpAddr::V6(v6) => embedded_v4(v6),
            IpAddr::V4(_) => None,
        };
        let judged = ipv4.map_or(ip, IpAddr::V4);
        if self.is_allowed(ip) || self.is_allowed(judged) {
            return Ok(());
        }
        match rule_of(judged) {
            None => Ok(()),
            Some((rule, range)) => Err(Refusal::Address {
                address: ip,
                ipv4,
                rule,
                range,
            }),
        }
    }

    /// Checks a URL's host without resolving it: an address is checked; a metadata
    /// service's name is refused; `localhost` and `*.localhost` are judged as
    /// loopback (allowed when `127.0.0.1` or `::1` is); other names pass, and are
    /// checked when connecting.
    pub fn check_host(&self, host: Host<&str>) -> Result<(), Refusal> {
        match host {
            Host::Ipv4(v4) => self.check_ip(IpAddr::V4(v4)),
            Host::Ipv6(v6) => self.check_ip(IpAddr::V6(v6)),
            Host::Domain(name) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if METADATA_NAMES.contains(&name.as_str()) {
                    return Err(Refusal::MetadataName { host: name });
                }
                if name == "localhost" || name.ends_with(".localhost") {
                    let v4 = self.check_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
                    let v6 = self.check_ip(IpAddr::V6(Ipv6Addr::LOCALHOST));
                    return match (v4, v6) {
                        (Ok(()), _) | (_, Ok(())) => Ok(()),
                        (Err(a), Err(b)) => Err(Refusal::Resolved {
                            host: name,
                            refused: vec![a, b],
                        }),
                    };
                }
                Ok(())
            }
        }
    }

    /// Checks a URL that a tenant gives for outbound calls, as it is stored: it parses,
    /// is `http` or `https` with a host, carries no user or password, and its host
    /// passes [`Policy::check_host`]. `field` names it in the error; `hint` says where
    /// credentials go instead of the URL.
    pub fn check_url(
        &self,
        field: &'static str,
        text: &str,
        hint: &'static str,
    ) -> Result<Url, UrlError> {
        let url = Url::parse(text).map_err(|e| UrlError::NotUrl {
            field,
            url: text.to_owned(),
            reason: e.to_string(),
        })?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlError::Userinfo { field, hint });
        }
        let Some(host) = url
            .host()
            .filter(|_| matches!(url.scheme(), "http" | "https"))
        else {
            return Err(UrlError::NotHttp {
                field,
                url: text.to_owned(),
            });
        };
        if let Host::Domain(name) = host
            && !is_dns_name(name)
        {
            return Err(UrlError::BadHost {
                field,
                url: text.escape_debug().to_string(),
                host: name.escape_debug().to_string(),
            });
        }
        self.check_host(host).map_err(|refusal| UrlError::Refused {
            field,
            url: text.to_owned(),
            refusal,
        })?;
        Ok(url)
    }
}

/// Whether `name` (as the URL parser gives it: IDNA names in their `xn--` form) is a
/// DNS name a resolver can be asked for.
fn is_dns_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// How names are resolved: by the system's resolver, or (in tests) from a table.
#[derive(Debug, Clone)]
enum Lookup {
    System,
    #[cfg(test)]
    Table(Arc<std::collections::HashMap<String, Vec<IpAddr>>>),
}

impl Lookup {
    async fn addresses(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        match self {
            Lookup::System => Ok(tokio::net::lookup_host((host, 0))
                .await?
                .map(|a| a.ip())
                .collect()),
            #[cfg(test)]
            Lookup::Table(table) => Ok(table.get(host).cloned().unwrap_or_default()),
        }
    }
}

/// The HTTP client's resolver: it resolves a name, checks every address, and hands
/// on only the allowed ones, so that the connector never sees a refused address.
#[derive(Debug, Clone)]
struct Guard {
    policy: Policy,
    lookup: Lookup,
}

impl reqwest::dns::Resolve for Guard {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            guard.policy.check_host(Host::Domain(&host))?;
            let addresses = guard.lookup.addresses(&host).await?;
            let mut allowed: Vec<SocketAddr> = Vec::new();
            let mut refused = Vec::new();
            for ip in addresses {
                match guard.policy.check_ip(ip) {
                    Ok(()) => allowed.push(SocketAddr::new(ip, 0)),
                    Err(why) => refused.push(why),
                }
            }
            if allowed.is_empty() {
                let refusal = Refusal::Resolved { host, refused };
                tracing::warn!(%refusal, "outbound connection refused");
                return Err(Box::new(refusal) as Box<dyn std::error::Error + Send + Sync>);
            }
            if !refused.is_empty() {
                tracing::debug!(
                    host,
                    refused = refused.len(),
                    "refused addresses of a name skipped"
                );
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A failed outbound call.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The address is refused: nothing was sent.
    #[error("the address is refused: {0}")]
    Refused(Refusal),
    /// The call failed.
    #[error(transparent)]
    Http(#[from] reqwest::Error),
}

impl SendError {
    /// Whether the call timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, SendError::Http(e) if e.is_timeout())
    }
}

/// The refusal behind an HTTP client's error, when the resolver refused the name.
fn refusal_in(e: &reqwest::Error) -> Option<Refusal> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(refusal) = s.downcast_ref::<Refusal>() {
            return Some(refusal.clone());
        }
        source = s.source();
    }
    None
}

/// An HTTP client under a [`Policy`]: names are resolved through it, and an address in
/// a URL is checked before anything is sent. Redirects are not followed and system
/// proxies are not used. A cheap handle over one connection pool.
#[derive(Debug, Clone)]
pub struct Outbound {
    client: reqwest::Client,
    policy: Policy,
}

impl Outbound {
    /// A client under `policy`, with what `configure` sets (user agent, timeouts).
    pub fn new(
        policy: Policy,
        configure: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
    ) -> Outbound {
        Outbound::with_lookup(policy, Lookup::System, configure)
    }

    fn with_lookup(
        policy: Policy,
        lookup: Lookup,
        configure: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
    ) -> Outbound {
        crate::connection::upstream::install_tls();
        let guard = Guard {
            policy: policy.clone(),
            lookup,
        };
        let builder = reqwest::Client::builder()
            .dns_resolver(Arc::new(guard))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none());
        let client = configure(builder)
            // Set last, so that no configuration undoes them.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the HTTP client builds");
        Outbound { client, policy }
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// A request to build on; send it with [`Outbound::send`].
    pub fn request(
        &self,
        method: reqwest::Method,
        url: impl reqwest::IntoUrl,
    ) -> reqwest::RequestBuilder {
        self.client.request(method, url)
    }

    /// Sends a request built with [`Outbound::request`]: refused before anything is
    /// sent when its URL's host is a refused address or name; a name's addresses are
    /// checked as it is resolved.
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, SendError> {
        let request = request.build()?;
        if let Some(host) = request.url().host() {
            self.policy.check_host(host).map_err(SendError::Refused)?;
        }
        self.client
            .execute(request)
            .await
            .map_err(|e| match refusal_in(&e) {
                Some(refusal) => SendError::Refused(refusal),
                None => SendError::Http(e),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule that refuses the host of `url` under `policy`, or "allowed".
    fn verdict(policy: &Policy, url: &str) -> String {
        match policy.check_url("url", url, "") {
            Ok(_) => "allowed".into(),
            Err(UrlError::Refused { refusal, .. }) => refusal.rule_name().into(),
            Err(other) => format!("invalid: {other}"),
        }
    }

    #[test]
    fn every_spelling_of_an_internal_address_is_refused() {
        let deny = Policy::deny_internal();
        for (url, rule) in [
            ("http://169.254.169.254/latest/meta-data/", "link_local"),
            ("http://10.0.0.1/", "private"),
            ("http://172.16.5.4/", "private"),
            ("http://172.31.255.255/", "private"),
            ("http://192.168.1.1/", "private"),
            ("http://100.64.0.1/", "shared_address_space"),
            ("http://100.100.100.200/", "shared_address_space"),
            ("http://127.0.0.1:8080/", "loopback"),
            ("http://127.255.255.254/", "loopback"),
            ("http://[::1]/", "loopback"),
            ("http://[fd00::1]/", "unique_local"),
            ("http://[fd00:ec2::254]/", "unique_local"),
            ("http://[fe80::1]/", "link_local"),
            ("http://[::ffff:127.0.0.1]/", "loopback"),
            ("http://[::ffff:7f00:1]/", "loopback"),
            ("http://[::ffff:169.254.169.254]/", "link_local"),
            ("http://[::ffff:10.0.0.1]/", "private"),
            ("http://[::127.0.0.1]/", "loopback"),
            ("http://[64:ff9b::127.0.0.1]/", "loopback"),
            ("http://[64:ff9b::a9fe:a9fe]/", "link_local"),
            ("http://[2002:7f00:1::]/", "loopback"),
            ("http://[2002:c0a8:101::1]/", "private"),
            ("http://[64:ff9b:1::1]/", "private"),
            ("http://0/", "unspecified"),
            ("http://0.0.0.0/", "unspecified"),
            ("http://[::]/", "unspecified"),
            ("http://2130706433/", "loopback"),
            ("http://0x7f000001/", "loopback"),
            ("http://0x7f.0.0.1/", "loopback"),
            ("http://0177.0.0.1/", "loopback"),
            ("http://017700000001/", "loopback"),
            ("http://127.1/", "loopback"),
            ("http://127.0.1/", "loopback"),
            ("http://127.0.0.1./", "loopback"),
            ("http://0xa9fea9fe/", "link_local"),
            ("http://2852039166/", "link_local"),
            ("http://%31%32%37.0.0.1/", "loopback"),
            ("http://１２７.０.０.１/", "loopback"),
            ("http://224.0.0.1/", "multicast"),
            ("http://[ff02::1]/", "multicast"),
            ("http://255.255.255.255/", "broadcast"),
            ("http://240.0.0.1/", "reserved"),
            ("http://192.0.2.10/", "documentation"),
            ("http://[2001:db8::1]/", "documentation"),
            ("http://198.18.0.1/", "benchmarking"),
            ("http://[2001::1]/", "reserved"),
            ("http://[fec0::1]/", "reserved"),
            ("http://[4000::1]/", "not_global_unicast"),
            (
                "http://metadata.google.internal/computeMetadata/v1/",
                "metadata_name",
            ),
            ("http://METADATA.google.internal./", "metadata_name"),
            ("http://metadata/", "metadata_name"),
            ("https://instance-data.ec2.internal/", "metadata_name"),
            ("http://localhost:9000/hooks", "loopback"),
            ("http://LOCALHOST./", "loopback"),
            ("http://api.localhost/", "loopback"),
        ] {
            assert_eq!(verdict(&deny, url), rule, "{url}");
        }
    }

    #[test]
    fn public_addresses_and_names_pass() {
        let deny = Policy::deny_internal();
        for url in [
            "https://my-s4.example.com/sap",
            "https://8.8.8.8/",
            "http://1.1.1.1:8080/x",
            "http://172.32.0.1/",
            "http://100.128.0.1/",
            "http://[2606:4700:4700::1111]/",
            "http://[::ffff:8.8.8.8]/",
            "http://[64:ff9b::8.8.8.8]/",
            "http://134744072/",
            "http://metadata.example.com/",
            "http://localhost.example.com/",
        ] {
            assert_eq!(verdict(&deny, url), "allowed", "{url}");
        }
    }

    #[test]
    fn userinfo_schemes_and_hosts_are_checked_first() {
        let deny = Policy::deny_internal();
        let e = deny
            .check_url(
                "url",
                "https://user:hunter2@8.8.8.8/",
                " (put it in the secret)",
            )
            .unwrap_err();
        assert_eq!(
            e,
            UrlError::Userinfo {
                field: "url",
                hint: " (put it in the secret)"
            }
        );
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(matches!(
            deny.check_url("url", "https://user@example.com/", ""),
            Err(UrlError::Userinfo { .. })
        ));
        for url in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "gopher://x/",
            "mailto:a@b",
        ] {
            assert!(
                matches!(
                    deny.check_url("url", url, ""),
                    Err(UrlError::NotHttp { .. })
                ),
                "{url}"
            );
        }
        assert!(matches!(
            deny.check_url("url", "not a url", ""),
            Err(UrlError::NotUrl { .. })
        ));
        // A host no resolver could be asked for is refused by name; international
        // names pass in their ASCII form.
        let e = deny
            .check_url("upstream.base_url", "http://sap*prod.example/", "")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "upstream.base_url `http://sap*prod.example/` has no valid host name: `sap*prod.example` is not one (labels of letters, digits, `-` and `_`, at most 63 characters each and 253 in all)"
        );
        let long = format!("http://{}.example/", "a".repeat(64));
        assert!(matches!(
            deny.check_url("url", &long, ""),
            Err(UrlError::BadHost { .. })
        ));
        assert!(deny.check_url("url", "https://bücher.example/", "").is_ok());
        let e = deny
            .check_url("upstream.base_url", "http://10.1.2.3/sap", "")
            .unwrap_err();
        assert_eq!(e.field(), "upstream.base_url");
        let text = e.to_string();
        assert!(
            text.contains("upstream.base_url `http://10.1.2.3/sap` is refused: 10.1.2.3 is a private address (10.0.0.0/8)")
                && text.contains("--allow-upstream"),
            "{text}"
        );
        let e = deny
            .check_url("url", "http://[::ffff:127.0.0.1]/", "")
            .unwrap_err();
        assert!(
            e.to_string().contains(
                "::ffff:127.0.0.1 (that is 127.0.0.1) is a loopback address (127.0.0.0/8)"
            ),
            "{e}"
        );
    }

    #[test]
    fn the_operators_ranges_are_allowed_and_only_those() {
        let onprem = Policy::allowing([parse_range("10.20.0.0/16").unwrap()]);
        assert_eq!(verdict(&onprem, "http://10.20.3.4/sap"), "allowed");
        assert_eq!(verdict(&onprem, "http://[::ffff:10.20.3.4]/sap"), "allowed");
        assert_eq!(
            verdict(&onprem, "http://169090564/"),
            "allowed",
            "10.20.3.4 as one number"
        );
        assert_eq!(verdict(&onprem, "http://10.21.0.1/"), "private");
        assert_eq!(verdict(&onprem, "http://127.0.0.1/"), "loopback");
        assert_eq!(verdict(&onprem, "http://localhost/"), "loopback");
        assert_eq!(
            verdict(&onprem, "http://metadata.google.internal/"),
            "metadata_name"
        );

        let loopback = Policy::allowing([parse_range("127.0.0.0/8").unwrap()]);
        assert_eq!(verdict(&loopback, "http://127.0.0.1:9/"), "allowed");
        assert_eq!(verdict(&loopback, "http://0x7f000001/"), "allowed");
        assert_eq!(verdict(&loopback, "http://localhost:9/"), "allowed");
        assert_eq!(
            verdict(&loopback, "http://[::1]/"),
            "loopback",
            "IPv6 loopback is apart"
        );
        assert_eq!(verdict(&loopback, "http://169.254.169.254/"), "link_local");

        let one = Policy::allowing([parse_range("fd12::7").unwrap()]);
        assert_eq!(verdict(&one, "http://[fd12::7]/"), "allowed");
        assert_eq!(verdict(&one, "http://[fd12::8]/"), "unique_local");
        assert_eq!(
            parse_range(" 10.20.3.4/16 ").unwrap().to_string(),
            "10.20.0.0/16"
        );
        assert!(parse_range("10.0.0.0/33").is_err());
        assert!(parse_range("intranet").unwrap_err().contains("CIDR"));
    }

    #[test]
    fn refusals_carry_their_details() {
        let deny = Policy::deny_internal();
        let Err(UrlError::Refused { refusal, .. }) =
            deny.check_url("url", "http://0x7f000001/", "")
        else {
            panic!("refused");
        };
        assert_eq!(
            refusal.details(),
            serde_json::json!({"rule": "loopback", "address": "127.0.0.1", "range": "127.0.0.0/8"})
        );
        let name = Refusal::MetadataName {
            host: "metadata".into(),
        };
        assert_eq!(name.details()["rule"], "metadata_name");
        let none = Refusal::Resolved {
            host: "x.example".into(),
            refused: vec![],
        };
        assert_eq!(none.to_string(), "`x.example` resolves to no address");
        assert_eq!(none.rule_name(), "no_address");
    }

    /// A listener on 127.0.0.1 that answers 200 to every request, and counts them.
    async fn counting_server() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&hits);
        let app = axum::Router::new().fallback(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { "ok" }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (port, hits)
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_a_refused_address_is_refused_when_connecting() {
        use std::sync::atomic::Ordering;
        let (port, hits) = counting_server().await;
        // A public-looking name whose DNS answers loopback (as a rebinding attacker's
        // would, after the name was stored while it answered a public address).
        let table = Lookup::Table(Arc::new(
            [
                (
                    "erp.example.com".to_owned(),
                    vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
                ),
                (
                    "mixed.example.com".to_owned(),
                    vec![
                        "169.254.169.254".parse().unwrap(),
                        IpAddr::V4(Ipv4Addr::LOCALHOST),
                    ],
                ),
            ]
            .into_iter()
            .collect(),
        ));
        let deny = Outbound::with_lookup(Policy::deny_internal(), table.clone(), |b| b);
        assert!(
            deny.policy()
                .check_url("url", &format!("http://erp.example.com:{port}/"), "")
                .is_ok(),
            "when stored, the name is not resolved"
        );
        let e = deny
            .send(deny.request(
                reqwest::Method::GET,
                format!("http://erp.example.com:{port}/"),
            ))
            .await
            .unwrap_err();
        let SendError::Refused(refusal) = &e else {
            panic!("refused by the resolver: {e:?}");
        };
        assert_eq!(
            e.to_string(),
            "the address is refused: `erp.example.com` resolves only to refused addresses: 127.0.0.1 is a loopback address (127.0.0.0/8)"
        );
        assert_eq!(refusal.rule_name(), "loopback");
        // An address in the URL never reaches the resolver: it is checked before.
        for literal in [
            format!("http://127.0.0.1:{port}/"),
            format!("http://2130706433:{port}/"),
            format!("http://[::ffff:127.0.0.1]:{port}/"),
        ] {
            let e = deny
                .send(deny.request(reqwest::Method::GET, &literal))
                .await
                .unwrap_err();
            assert!(matches!(e, SendError::Refused(_)), "{literal}: {e:?}");
        }
        assert_eq!(
            hits.load(Ordering::SeqCst),
            0,
            "nothing reached the listener"
        );

        // Allowed by the operator, the same calls connect to the checked address.
        let allow = Outbound::with_lookup(
            Policy::allowing([parse_range("127.0.0.0/8").unwrap()]),
            table,
            |b| b,
        );
        for url in [
            format!("http://erp.example.com:{port}/"),
            format!("http://127.0.0.1:{port}/"),
            // Its link-local address is skipped; its loopback one is allowed.
            format!("http://mixed.example.com:{port}/"),
        ] {
            let answer = allow
                .send(allow.request(reqwest::Method::GET, &url))
                .await
                .unwrap();
            assert_eq!(answer.status(), 200, "{url}");
        }
        assert_eq!(hits.load(Ordering::SeqCst), 3);
        let e = allow
            .send(allow.request(reqwest::Method::GET, "http://nowhere.example.com:9/"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("resolves to no address"), "{e}");
    }
}
