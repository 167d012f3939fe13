//! Outbound HTTP host patterns (`capabilities.network.outbound.http`): one parser for
//! validation and for the runtime's allowlist, so both agree on every pattern.

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
            h if h.starts_with("*.") && is_valid_hostname(&h[2..]) => HostMatch::Subdomain(h[1..].to_string()),
            h if h.parse::<std::net::IpAddr>().is_ok() || is_valid_hostname(h) => HostMatch::Exact(h.to_string()),
            _ => return None,
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

/// Splits `host:port`, `[v6]:port`, `host` or `[v6]`; `None` when the port is not a number.
fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, tail) = rest.split_once(']')?;
        return match tail {
            "" => Some((host, None)),
            t => Some((host, Some(parse_port(t.strip_prefix(':')?)?))),
        };
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Some((host, Some(parse_port(port)?))),
        _ => Some((s, None)),
    }
}

fn parse_port(port: &str) -> Option<u16> {
    let digits = !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
    port.parse::<u16>().ok().filter(|p| digits && *p > 0)
}

fn is_valid_hostname(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}
