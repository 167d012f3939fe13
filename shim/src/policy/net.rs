//! `wasi:sockets` rules: which addresses a guest may bind, listen on, connect and send to.

use std::net::SocketAddr;

use ipnet::IpNet;
use spore_crds::{Network, Protocol, SocketRule};
use wasmtime_wasi::sockets::SocketAddrUse;

use crate::error::{Error, Result};

/// A parsed `outbound.tcp` / `outbound.udp` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Destination {
    net: IpNet,
    ports: std::ops::RangeInclusive<u16>,
}

impl Destination {
    fn parse(rule: &SocketRule, field: String) -> Result<Self> {
        let net = spore_crds::validate::parse_cidr(&rule.cidr)
            .and_then(|(addr, prefix)| IpNet::new(addr, prefix).ok())
            .ok_or_else(|| Error::Capability {
                field: field.clone(),
                message: format!("cidr {:?} is not an address block; use e.g. 198.18.0.0/15 or ::1/128", rule.cidr),
            })?;
        let port = |p: Option<i32>, default: u16, name: &str| -> Result<u16> {
            match p {
                None => Ok(default),
                Some(p) => u16::try_from(p).ok().filter(|p| *p > 0).ok_or_else(|| Error::Capability {
                    field: format!("{field}.{name}"),
                    message: format!("{p} is not a port; use 1-65535"),
                }),
            }
        };
        let first = port(rule.port, 1, "port")?;
        let last = port(rule.end_port.or(rule.port), u16::MAX, "endPort")?;
        if last < first {
            return Err(Error::Capability { field, message: format!("endPort {last} is below port {first}") });
        }
        Ok(Self { net, ports: first..=last })
    }

    fn allows(&self, addr: &SocketAddr) -> bool {
        self.net.contains(&addr.ip()) && self.ports.contains(&addr.port())
    }
}

/// The socket rules of one app.
#[derive(Debug, Clone, Default)]
pub(crate) struct SocketPolicy {
    listen_tcp: Vec<u16>,
    listen_udp: Vec<u16>,
    tcp: Vec<Destination>,
    udp: Vec<Destination>,
    pub dns: bool,
}

impl SocketPolicy {
    pub fn new(network: &Network) -> Result<Self> {
        let mut policy = Self { dns: network.outbound.dns, ..Self::default() };
        for (i, inbound) in network.inbound.iter().enumerate() {
            let port = u16::try_from(inbound.port).ok().filter(|p| *p > 0).ok_or_else(|| Error::Capability {
                field: format!("network.inbound[{i}].port"),
                message: format!("{} is not a port; use 1-65535", inbound.port),
            })?;
            match inbound.protocol {
                Protocol::Tcp => policy.listen_tcp.push(port),
                Protocol::Udp => policy.listen_udp.push(port),
            }
        }
        for (i, rule) in network.outbound.tcp.iter().enumerate() {
            policy.tcp.push(Destination::parse(rule, format!("network.outbound.tcp[{i}]"))?);
        }
        for (i, rule) in network.outbound.udp.iter().enumerate() {
            policy.udp.push(Destination::parse(rule, format!("network.outbound.udp[{i}]"))?);
        }
        Ok(policy)
    }

    /// Decides one socket operation. Port 0 binds are the implicit binds of connect/send:
    /// allowed, so that the denial (and its log line) names the destination. Receiving is
    /// checked per sender like sending.
    pub fn allows(&self, addr: &SocketAddr, use_: SocketAddrUse) -> bool {
        let port = addr.port();
        match use_ {
            SocketAddrUse::TcpBind => port == 0 || self.listen_tcp.contains(&port),
            SocketAddrUse::TcpListen => self.listen_tcp.contains(&port),
            SocketAddrUse::TcpAccept => true,
            SocketAddrUse::TcpConnect => self.tcp.iter().any(|d| d.allows(addr)),
            SocketAddrUse::UdpBind => port == 0 || self.listen_udp.contains(&port),
            _ => self.udp.iter().any(|d| d.allows(addr)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spore_crds::{InboundPort, Outbound};

    fn policy(inbound: &[(i32, Protocol)], tcp: &[(&str, Option<i32>, Option<i32>)]) -> Result<SocketPolicy> {
        SocketPolicy::new(&Network {
            inbound: inbound.iter().map(|&(port, protocol)| InboundPort { name: None, port, protocol }).collect(),
            outbound: Outbound {
                tcp: tcp
                    .iter()
                    .map(|&(cidr, port, end_port)| SocketRule { cidr: cidr.into(), port, end_port })
                    .collect(),
                ..Outbound::default()
            },
        })
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn decides_socket_operations() {
        let p = policy(&[(8080, Protocol::Tcp)], &[("127.0.0.0/8", Some(9000), Some(9010)), ("::1/128", None, None)])
            .unwrap();
        for (a, use_, allowed) in [
            ("0.0.0.0:8080", SocketAddrUse::TcpBind, true),
            ("0.0.0.0:0", SocketAddrUse::TcpBind, true),
            ("0.0.0.0:8081", SocketAddrUse::TcpBind, false),
            ("0.0.0.0:8080", SocketAddrUse::TcpListen, true),
            ("0.0.0.0:0", SocketAddrUse::TcpListen, false),
            ("127.0.0.1:9000", SocketAddrUse::TcpConnect, true),
            ("127.0.0.9:9010", SocketAddrUse::TcpConnect, true),
            ("127.0.0.1:9011", SocketAddrUse::TcpConnect, false),
            ("198.18.0.1:9000", SocketAddrUse::TcpConnect, false),
            ("[::1]:443", SocketAddrUse::TcpConnect, true),
            ("0.0.0.0:0", SocketAddrUse::UdpBind, true),
            ("127.0.0.1:9000", SocketAddrUse::UdpSend, false),
        ] {
            assert_eq!(p.allows(&addr(a), use_), allowed, "{a} {use_:?}");
        }
    }

    #[test]
    fn nothing_declared_denies_everything() {
        let p = policy(&[], &[]).unwrap();
        assert!(!p.dns);
        assert!(!p.allows(&addr("127.0.0.1:80"), SocketAddrUse::TcpConnect));
        assert!(!p.allows(&addr("127.0.0.1:53"), SocketAddrUse::UdpSend));
        assert!(!p.allows(&addr("127.0.0.1:53"), SocketAddrUse::UdpReceive));
        assert!(!p.allows(&addr("0.0.0.0:80"), SocketAddrUse::TcpListen));
    }

    #[test]
    fn rejects_bad_rules_naming_the_field() {
        let err = policy(&[], &[("10.0.0.0/33", None, None)]).unwrap_err().to_string();
        assert!(err.contains("network.outbound.tcp[0]") && err.contains("not an address block"), "{err}");
        let err = policy(&[], &[("127.0.0.1/32", Some(90), Some(80))]).unwrap_err().to_string();
        assert!(err.contains("endPort 80 is below port 90"), "{err}");
        let err = policy(&[(70000, Protocol::Tcp)], &[]).unwrap_err().to_string();
        assert!(err.contains("network.inbound[0].port"), "{err}");
    }
}
