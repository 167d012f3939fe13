//! What a request's Host header names: a Service by name (bare, `<svc>.<ns>`,
//! `<svc>.<ns>.svc`, `<svc>.<ns>.svc.<cluster-domain>`) or by cluster IP, each with an
//! optional port. Pure parsing; the index looks the result up.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A Host header, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostName {
    /// `<svc>`: a Service name alone, valid only if one namespace has it.
    Bare { service: String, port: Option<u16> },
    /// `<svc>.<ns>`, `<svc>.<ns>.svc` or `<svc>.<ns>.svc.<cluster-domain>`.
    Qualified { service: String, namespace: String, port: Option<u16> },
    /// A Service's cluster IP: `10.96.0.10`, `[fd00::10]:8080`.
    Ip { ip: IpAddr, port: Option<u16> },
}

impl HostName {
    /// The port the client named, if any.
    pub fn port(&self) -> Option<u16> {
        match self {
            Self::Bare { port, .. } | Self::Qualified { port, .. } | Self::Ip { port, .. } => *port,
        }
    }
}

/// Parses `host` (a Host header or URI authority). Case-insensitive, one trailing dot
/// allowed. `None` for anything that is not one of the accepted forms.
pub fn parse_host(host: &str, cluster_domain: &str) -> Option<HostName> {
    let (name, port) = split_port(host.trim())?;
    if let Some(v6) = name.strip_prefix('[') {
        let ip: Ipv6Addr = v6.strip_suffix(']')?.parse().ok()?;
        return Some(HostName::Ip { ip: ip.into(), port });
    }
    // A bare IPv6 address without brackets cannot carry a port.
    if let Ok(ip) = name.parse::<Ipv6Addr>() {
        return Some(HostName::Ip { ip: ip.into(), port: None });
    }
    let name = name.to_ascii_lowercase();
    let name = name.strip_suffix('.').unwrap_or(&name);
    if let Ok(ip) = name.parse::<Ipv4Addr>() {
        return Some(HostName::Ip { ip: ip.into(), port });
    }
    let domain = cluster_domain.trim_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = name.split('.').collect();
    let (service, namespace) = match labels.as_slice() {
        [service] => (*service, None),
        [service, namespace] | [service, namespace, "svc"] => (*service, Some(*namespace)),
        [service, namespace, "svc", rest @ ..] if !domain.is_empty() && rest.join(".") == domain => {
            (*service, Some(*namespace))
        }
        _ => return None,
    };
    if !is_label(service) || !namespace.is_none_or(is_label) {
        return None;
    }
    Some(match namespace {
        None => HostName::Bare { service: service.into(), port },
        Some(namespace) => HostName::Qualified { service: service.into(), namespace: namespace.into(), port },
    })
}

/// Splits `name[:port]` / `[v6][:port]`. An empty port (`host:`) counts as none. A string
/// with several colons and no brackets is returned whole (a bare IPv6 address).
fn split_port(host: &str) -> Option<(&str, Option<u16>)> {
    let (name, port) = if host.starts_with('[') {
        let end = host.find(']')?;
        let (name, rest) = host.split_at(end + 1);
        match rest {
            "" => (name, None),
            rest => (name, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if !name.contains(':') => (name, Some(port)),
            _ => (host, None),
        }
    };
    if name.is_empty() {
        return None;
    }
    let port = match port {
        None | Some("") => None,
        Some(port) if port.bytes().all(|b| b.is_ascii_digit()) => Some(port.parse().ok()?),
        Some(_) => return None,
    };
    Some((name, port))
}

/// A DNS-1123 label, as Service and namespace names are.
fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bare(service: &str, port: Option<u16>) -> Option<HostName> {
        Some(HostName::Bare { service: service.into(), port })
    }

    fn qualified(service: &str, namespace: &str, port: Option<u16>) -> Option<HostName> {
        Some(HostName::Qualified { service: service.into(), namespace: namespace.into(), port })
    }

    fn ip(ip: &str, port: Option<u16>) -> Option<HostName> {
        Some(HostName::Ip { ip: ip.parse().unwrap(), port })
    }

    #[test]
    fn every_accepted_form_parses() {
        let cases = [
            ("hello", bare("hello", None)),
            ("hello:8080", bare("hello", Some(8080))),
            ("hello.apps", qualified("hello", "apps", None)),
            ("hello.apps:80", qualified("hello", "apps", Some(80))),
            ("hello.apps.svc", qualified("hello", "apps", None)),
            ("hello.apps.svc:8080", qualified("hello", "apps", Some(8080))),
            ("hello.apps.svc.cluster.local", qualified("hello", "apps", None)),
            ("hello.apps.svc.cluster.local:8080", qualified("hello", "apps", Some(8080))),
            ("hello.apps.svc.cluster.local.", qualified("hello", "apps", None)),
            ("hello.apps.svc.cluster.local.:8080", qualified("hello", "apps", Some(8080))),
            ("hello.apps.", qualified("hello", "apps", None)),
            ("HELLO.Apps.SVC.Cluster.Local", qualified("hello", "apps", None)),
            ("Hello:8080", bare("hello", Some(8080))),
            ("hello.svc", qualified("hello", "svc", None)),
            ("hello.apps:", qualified("hello", "apps", None)),
            (" hello.apps ", qualified("hello", "apps", None)),
            ("10.96.0.10", ip("10.96.0.10", None)),
            ("10.96.0.10:8080", ip("10.96.0.10", Some(8080))),
            ("[fd00::10]", ip("fd00::10", None)),
            ("[fd00::10]:8080", ip("fd00::10", Some(8080))),
            ("[FD00::10]:8080", ip("fd00::10", Some(8080))),
            ("fd00::10", ip("fd00::10", None)),
        ];
        for (host, want) in cases {
            assert_eq!(parse_host(host, "cluster.local"), want, "{host}");
        }
    }

    #[test]
    fn other_hosts_are_not_apps() {
        for host in [
            "",
            ":8080",
            "hello.apps.svc.other.local",
            "hello.apps.cluster.local",
            "a.b.c",
            "hello.apps:http",
            "hello.apps:99999",
            "hello.apps:-1",
            "hel_lo.apps",
            "-hello.apps",
            "hello..apps",
            "[fd00::10",
            "[fd00::10]x",
            "[10.0.0.1]",
            "www.example.com",
        ] {
            assert_eq!(parse_host(host, "cluster.local"), None, "{host:?}");
        }
    }

    #[test]
    fn the_cluster_domain_is_a_setting() {
        assert_eq!(parse_host("hello.apps.svc.corp.example:80", "corp.example"), qualified("hello", "apps", Some(80)));
        assert_eq!(parse_host("hello.apps.svc.corp.example", ".Corp.Example."), qualified("hello", "apps", None));
        assert_eq!(parse_host("hello.apps.svc.cluster.local", "corp.example"), None);
    }
}
