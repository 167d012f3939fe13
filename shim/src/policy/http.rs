//! The `outbound.http` allowlist for `wasi:http` outgoing requests.

use crate::error::{Error, Result};

/// One allowlist entry: `[scheme://]host[:port]`, host may be `*` or `*.suffix`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostPattern {
    scheme: Option<String>,
    host: HostMatch,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Any,
    Exact(String),
    /// `*.example.com`: any subdomain of the suffix (stored with its leading dot).
    Subdomain(String),
}

impl HostPattern {
    fn parse(pattern: &str) -> Option<Self> {
        let (scheme, rest) = match pattern.split_once("://") {
            Some((s, rest)) if s == "http" || s == "https" => (Some(s.to_string()), rest),
            Some(_) => return None,
            None => (None, pattern),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() || rest.contains('/') {
            return None;
        }
        let (host, port) = split_host_port(rest)?;
        let host = host.to_ascii_lowercase();
        let host = match host.as_str() {
            "*" => HostMatch::Any,
            h if h.starts_with("*.") && h.len() > 2 => HostMatch::Subdomain(h[1..].to_string()),
            h if h.contains('*') => return None,
            h => HostMatch::Exact(h.to_string()),
        };
        Some(Self { scheme, host, port })
    }

    fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.scheme.as_deref().is_none_or(|s| s == scheme)
            && self.port.is_none_or(|p| p == port)
            && match &self.host {
                HostMatch::Any => true,
                HostMatch::Exact(h) => h == host,
                HostMatch::Subdomain(suffix) => host.ends_with(suffix.as_str()),
            }
    }
}

/// Splits `host:port`, `[v6]:port`, `host` or `[v6]`; `None` when the port is not a number.
fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, tail) = rest.split_once(']')?;
        return match tail {
            "" => Some((host, None)),
            t => Some((host, Some(t.strip_prefix(':')?.parse().ok()?))),
        };
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Some((host, Some(port.parse().ok()?))),
        _ => Some((s, None)),
    }
}

/// The parsed `outbound.http` list.
#[derive(Debug, Clone, Default)]
pub(crate) struct HttpAllowlist(Vec<HostPattern>);

impl HttpAllowlist {
    pub fn new(patterns: &[String]) -> Result<Self> {
        patterns
            .iter()
            .enumerate()
            .map(|(i, p)| {
                HostPattern::parse(p).ok_or_else(|| Error::Capability {
                    field: format!("network.outbound.http[{i}]"),
                    message: format!("{p:?} is not a host pattern; use host, host:port, *.example.com or *"),
                })
            })
            .collect::<Result<_>>()
            .map(Self)
    }

    /// Whether a request to `uri` may go out.
    pub fn allows(&self, uri: &http::Uri) -> bool {
        let scheme = uri.scheme_str().unwrap_or("http");
        let Some(host) = uri.host() else { return false };
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(if scheme == "https" { 443 } else { 80 });
        self.0.iter().any(|p| p.allows(scheme, &host, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(patterns: &[&str]) -> HttpAllowlist {
        HttpAllowlist::new(&patterns.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn matches_requests_against_patterns() {
        let l = list(&["api.example.com", "127.0.0.1:9000", "*.svc.local", "https://secure.example.com", "[::1]:8080"]);
        for (uri, allowed) in [
            ("http://api.example.com/x", true),
            ("https://API.example.com:8443/x", true),
            ("http://example.com/", false),
            ("http://127.0.0.1:9000/", true),
            ("http://127.0.0.1:9001/", false),
            ("http://a.svc.local/", true),
            ("http://svc.local/", false),
            ("https://secure.example.com/", true),
            ("http://secure.example.com/", false),
            ("http://[::1]:8080/", true),
        ] {
            assert_eq!(l.allows(&uri.parse().unwrap()), allowed, "{uri}");
        }
    }

    #[test]
    fn empty_list_denies_and_star_allows_all() {
        assert!(!list(&[]).allows(&"http://127.0.0.1/".parse().unwrap()));
        assert!(list(&["*"]).allows(&"https://anything.example:1234/".parse().unwrap()));
    }

    #[test]
    fn rejects_malformed_patterns() {
        for bad in ["", "ftp://x", "a*b.com", "host:port", "host/path", "*."] {
            let err = HttpAllowlist::new(&[bad.to_string()]).unwrap_err().to_string();
            assert!(err.contains("network.outbound.http[0]"), "{bad}: {err}");
        }
    }
}
