//! Outbound HTTP host patterns (`capabilities.network.outbound.http`): one parser for
//! validation and for the runtime's allowlist, and the CRD's CEL form of the same grammar,
//! so that the apiserver, `spore validate` and the sandbox agree on every pattern.
//!
//! ```text
//! pattern  = [("http" | "https") "://"] host [":" port] ["/"]      at most 253 characters
//! host     = "*" | "*." hostname | hostname | "[" IPv6 address "]"
//! hostname = label ("." label)* ["."]      label: 1-63 letters, digits, '-', not at the ends
//! port     = 1-65535, without leading zeros
//! ```

/// The longest pattern (the longest DNS name).
pub const MAX_PATTERN_LEN: usize = 253;

/// One allowlist entry: `[scheme://]host[:port]`, host may be `*` or `*.suffix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    scheme: Option<String>,
    host: HostMatch,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    Any,
    Exact(String),
    /// `*.example.com`: any subdomain of the suffix (stored with its leading dot).
    Subdomain(String),
}

impl HostPattern {
    /// Parses a pattern; `None` when it is not one.
    pub fn parse(pattern: &str) -> Option<Self> {
        if pattern.len() > MAX_PATTERN_LEN {
            return None;
        }
        let (scheme, rest) = match pattern.split_once("://") {
            Some((s, rest)) if s == "http" || s == "https" => (Some(s.to_string()), rest),
            Some(_) => return None,
            None => (None, pattern),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = split_host_port(rest)?;
        let host = match host {
            Host::Ipv6(addr) => HostMatch::Exact(addr.to_ascii_lowercase()),
            Host::Name("*") => HostMatch::Any,
            Host::Name(h) => match h.strip_prefix("*.") {
                Some(suffix) if is_hostname(suffix) => {
                    HostMatch::Subdomain(format!(".{}", suffix.to_ascii_lowercase()))
                }
                None if is_hostname(h) => HostMatch::Exact(h.to_ascii_lowercase()),
                _ => return None,
            },
        };
        Some(Self { scheme, host, port })
    }

    /// Whether a request to `scheme://host:port` matches (host lowercase, without brackets).
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.scheme.as_deref().is_none_or(|s| s == scheme)
            && self.port.is_none_or(|p| p == port)
            && match &self.host {
                HostMatch::Any => true,
                HostMatch::Exact(h) => h == host,
                HostMatch::Subdomain(suffix) => host.ends_with(suffix.as_str()),
            }
    }
}

enum Host<'a> {
    Name(&'a str),
    Ipv6(&'a str),
}

/// Splits `host:port`, `[v6]:port`, `host` or `[v6]`; `None` when the port is not one, the
/// brackets hold no IPv6 address, or an IPv6 address has none.
fn split_host_port(s: &str) -> Option<(Host<'_>, Option<u16>)> {
    let (host, port) = match s.strip_prefix('[') {
        Some(rest) => {
            let (addr, tail) = rest.split_once(']')?;
            (is_ipv6(addr).then_some(Host::Ipv6(addr))?, tail)
        }
        None => match s.find(':') {
            Some(i) => (Host::Name(&s[..i]), &s[i..]),
            None => (Host::Name(s), ""),
        },
    };
    match port {
        "" => Some((host, None)),
        p => Some((host, Some(parse_port(p.strip_prefix(':')?)?))),
    }
}

/// An IPv6 address as Kubernetes' `isIP` takes it: not IPv4-mapped (`::ffff:1.2.3.4`).
fn is_ipv6(s: &str) -> bool {
    s.parse::<std::net::Ipv6Addr>().is_ok_and(|a| a.to_ipv4_mapped().is_none())
}

fn parse_port(port: &str) -> Option<u16> {
    let digits = (1..=5).contains(&port.len()) && port.bytes().all(|b| b.is_ascii_digit()) && !port.starts_with('0');
    digits.then(|| port.parse::<u16>().ok()).flatten()
}

fn is_hostname(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    !host.is_empty()
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// The grammar as RE2 (CEL `matches`), a bracketed address aside.
const LABEL: &str = "[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?";
const PORT: &str = "(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?";

/// The CEL expression that is true when the string `p` is a pattern. Its length is left to
/// the schema's `maxLength`.
pub(crate) fn cel_is_pattern(p: &str) -> String {
    let named = format!("^(https?://)?([*]|([*][.])?{LABEL}([.]{LABEL})*[.]?){PORT}/?$");
    // An IPv6 address has a ':'; `isIP` refuses IPv4-mapped ones, as `is_ipv6` does.
    let bracketed = format!("^(https?://)?\\\\[[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*\\\\]{PORT}/?$");
    format!("({p}.matches('{named}') || ({p}.matches('{bracketed}') && isIP({p}.split('[')[1].split(']')[0])))")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_patterns_into_what_they_match() {
        for (pattern, scheme, host, port) in [
            ("*", None, HostMatch::Any, None),
            ("http://*:8080", Some("http"), HostMatch::Any, Some(8080)),
            ("*.Example.com", None, HostMatch::Subdomain(".example.com".into()), None),
            ("https://api.example.com:443/", Some("https"), HostMatch::Exact("api.example.com".into()), Some(443)),
            ("10.0.0.1:80", None, HostMatch::Exact("10.0.0.1".into()), Some(80)),
            ("[::1]:8080", None, HostMatch::Exact("::1".into()), Some(8080)),
        ] {
            let want = HostPattern { scheme: scheme.map(str::to_string), host, port };
            assert_eq!(HostPattern::parse(pattern), Some(want), "{pattern}");
        }
    }
}
