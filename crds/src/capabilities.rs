//! What a Wasm app may touch. Everything is denied unless declared here; the shim and
//! `spore up` enforce exactly this value, read from the WasmApp (or from pod annotations).

use kube::KubeSchema;
use kube::core::{Message, Rule};
use serde::{Deserialize, Serialize};

use crate::host_pattern::{self, MAX_PATTERN_LEN};

/// Most entries in `capabilities.filesystem`. Lists searched by CEL rules are bounded so the
/// apiserver can bound the rules' cost.
pub const MAX_FILESYSTEM_MOUNTS: usize = 64;
/// Most entries in `network.inbound`.
pub const MAX_INBOUND_PORTS: usize = 64;
/// Most entries in `network.outbound.http`.
pub const MAX_OUTBOUND_HTTP: usize = 256;
/// Most entries in each of `network.outbound.tcp` and `network.outbound.udp`.
pub const MAX_SOCKET_RULES: usize = 64;
/// Longest `network.inbound[].name`.
pub const MAX_PORT_NAME_LEN: usize = 63;
/// Longest `guestPath`.
pub const MAX_GUEST_PATH_LEN: usize = 1024;

/// Capabilities granted to the app. Anything not declared is denied: no files, no
/// environment beyond `env`, no sockets, no outbound HTTP, no DNS.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = guest_paths_unique_rule())]
pub struct Capabilities {
    /// Directories from `volumes` made visible to the guest (WASI preopens). Only these
    /// paths exist for the guest; everything else on the host is invisible.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_FILESYSTEM_MOUNTS))]
    pub filesystem: Vec<FilesystemMount>,

    /// Network access: ports the app may listen on and destinations it may reach.
    #[serde(default, skip_serializing_if = "Network::is_empty")]
    pub network: Network,
}

/// Each `filesystem[].guestPath` once; the message names the first mounted twice.
pub(crate) fn guest_paths_unique_rule() -> Rule {
    Rule::new("!has(self.filesystem) || self.filesystem.all(a, self.filesystem.exists_one(b, b.guestPath == a.guestPath))")
        .message(Message::Expression(
            "'guestPath \"' + self.filesystem.map(m, m.guestPath).filter(p, self.filesystem.filter(m, m.guestPath == p).size() > 1)[0] + '\" is mounted twice; mount each volume at its own path'".into(),
        ))
        .field_path(".filesystem")
}

/// One volume mounted into the guest.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("self.guestPath.startsWith('/')")
        .message(Message::Expression("'guestPath \"' + self.guestPath + '\" is not absolute; start it with /, e.g. /data'".into()))
        .field_path(".guestPath"),
    validation = Rule::new(format!("!self.guestPath.startsWith('/') || !self.guestPath.matches('{UNCLEAN_PATH}')"))
        .message(Message::Expression("'guestPath \"' + self.guestPath + '\" is not a clean path: no .. or . segments, no // and no / at the end; e.g. /data'".into()))
        .field_path(".guestPath"),
)]
pub struct FilesystemMount {
    /// Name of an entry in `spec.volumes` to mount.
    #[schemars(length(max = 63))]
    pub volume: String,
    /// Absolute, clean path at which the guest sees the volume, e.g. `/data`: no `..` or `.`
    /// segments, no `//`, no `/` at the end (except `/` itself).
    #[schemars(length(max = MAX_GUEST_PATH_LEN))]
    pub guest_path: String,
    /// Mount read-only. Defaults to true: write access must be asked for explicitly.
    #[serde(default = "default_true")]
    pub read_only: bool,
}

fn default_true() -> bool {
    true
}

/// What makes an absolute guest path unclean: an empty, `.` or `..` segment (`/` alone is clean).
pub(crate) const UNCLEAN_PATH: &str = "/[.][.]?(/|$)|//|.+/$";

/// Network capabilities.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Network {
    /// Ports the app may listen on. For `wasi:http/proxy` components the runtime serves
    /// HTTP on the port named `http`, or else on the first TCP port listed.
    /// Each port and protocol at most once; each name at most once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_INBOUND_PORTS), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["port", "protocol"]))]
    #[x_kube(validation = Rule::new("self.all(a, !has(a.name) || self.exists_one(b, has(b.name) && b.name == a.name))")
        .message(Message::Expression("'port name \"' + self.map(a, has(a.name) ? a.name : '').filter(n, n != '' && self.filter(b, has(b.name) && b.name == n).size() > 1)[0] + '\" is used twice; name each port once'".into())))]
    pub inbound: Vec<InboundPort>,
    /// Destinations the app may reach.
    #[serde(default, skip_serializing_if = "Outbound::is_empty")]
    pub outbound: Outbound,
}

impl Network {
    pub fn is_empty(&self) -> bool {
        self.inbound.is_empty() && self.outbound.is_empty()
    }
}

/// A port the app may listen on.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("self.port >= 1 && self.port <= 65535")
    .message(Message::Expression("'port %d is out of range; use a port between 1 and 65535'.format([self.port])".into()))
    .field_path(".port"))]
pub struct InboundPort {
    /// Optional name, unique among the app's ports; the port named `http` is where HTTP
    /// components are served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_PORT_NAME_LEN))]
    pub name: Option<String>,
    /// Port number, 1-65535.
    pub port: i32,
    /// `TCP` (default) or `UDP`.
    #[serde(default)]
    pub protocol: Protocol,
}

/// A transport protocol.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Protocol {
    #[default]
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "UDP")]
    Udp,
}

/// Destinations the app may reach.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Outbound {
    /// Hosts that `wasi:http` outgoing requests may go to, as `host`, `host:port`,
    /// `*.example.com` (any subdomain), `[::1]` (an IPv6 address) or `*` (anywhere), each
    /// optionally after `http://` or `https://`. Without a port any port matches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_OUTBOUND_HTTP), inner(length(max = MAX_PATTERN_LEN)))]
    #[x_kube(validation = http_patterns_rule())]
    pub http: Vec<String>,
    /// Addresses `wasi:sockets` TCP connections may go to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_SOCKET_RULES))]
    pub tcp: Vec<SocketRule>,
    /// Addresses `wasi:sockets` UDP datagrams may go to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_SOCKET_RULES))]
    pub udp: Vec<SocketRule>,
    /// Allow name resolution through `wasi:sockets/ip-name-lookup`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dns: bool,
}

/// Every `http` entry is a host pattern; the message names the first that is not.
pub(crate) fn http_patterns_rule() -> Rule {
    let ok = host_pattern::cel_is_pattern("p");
    Rule::new(format!("self.all(p, {ok})")).message(Message::Expression(format!(
        "'\"' + self.filter(p, !{ok})[0] + '\" is not a host pattern; use host, host:port, *.example.com, * or [IPv6], optionally after http:// or https://, without a path'"
    )))
}

impl Outbound {
    pub fn is_empty(&self) -> bool {
        self.http.is_empty() && self.tcp.is_empty() && self.udp.is_empty() && !self.dns
    }
}

/// An address block and port range, like a NetworkPolicy `ipBlock` with `port`/`endPort`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("isCIDR(self.cidr)")
        .message(Message::Expression("'cidr \"' + self.cidr + '\" is not an IPv4 or IPv6 CIDR such as 10.0.0.0/8 or fd00::/8'".into()))
        .field_path(".cidr"),
    validation = Rule::new("!has(self.port) || (self.port >= 1 && self.port <= 65535)").message("port must be between 1 and 65535"),
    validation = Rule::new("!has(self.endPort) || (has(self.port) && self.endPort >= self.port && self.endPort <= 65535)").message("endPort needs port, and must be >= port and <= 65535"),
)]
pub struct SocketRule {
    /// Allowed destination addresses in CIDR form, e.g. `198.18.0.0/15` or `::1/128`.
    #[schemars(length(max = 64))]
    pub cidr: String,
    /// First allowed port; all ports when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    /// Last allowed port (inclusive); only `port` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_port: Option<i32>,
}
