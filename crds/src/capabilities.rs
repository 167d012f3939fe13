//! What a Wasm app may touch. Everything is denied unless declared here; the shim and
//! `spore up` enforce exactly this value, read from the WasmApp (or from pod annotations).

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// Most entries in `capabilities.filesystem`. Lists searched by CEL rules are bounded so the
/// apiserver can bound the rules' cost.
pub const MAX_FILESYSTEM_MOUNTS: usize = 64;
/// Most entries in `network.inbound`.
pub const MAX_INBOUND_PORTS: usize = 64;
/// Most entries in `network.outbound.http`.
pub const MAX_OUTBOUND_HTTP: usize = 256;
/// Most entries in each of `network.outbound.tcp` and `network.outbound.udp`.
pub const MAX_SOCKET_RULES: usize = 64;
/// Longest `guestPath`.
pub const MAX_GUEST_PATH_LEN: usize = 1024;

/// Capabilities granted to the app. Anything not declared is denied: no files, no
/// environment beyond `env`, no sockets, no outbound HTTP, no DNS.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new(
    "!has(self.filesystem) || self.filesystem.all(a, self.filesystem.exists_one(b, b.guestPath == a.guestPath))"
).message("every filesystem[].guestPath must be unique; mount each volume at its own path"))]
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

/// One volume mounted into the guest.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("self.guestPath.startsWith('/')").message("guestPath must be an absolute path, e.g. /data"))]
pub struct FilesystemMount {
    /// Name of an entry in `spec.volumes` to mount.
    #[schemars(length(max = 63))]
    pub volume: String,
    /// Absolute path at which the guest sees the volume, e.g. `/data`.
    #[schemars(length(max = MAX_GUEST_PATH_LEN))]
    pub guest_path: String,
    /// Mount read-only. Defaults to true: write access must be asked for explicitly.
    #[serde(default = "default_true")]
    pub read_only: bool,
}

fn default_true() -> bool {
    true
}

/// Network capabilities.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Network {
    /// Ports the app may listen on. For `wasi:http/proxy` components the runtime serves
    /// HTTP on the port named `http`, or else on the first TCP port listed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_INBOUND_PORTS))]
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
#[x_kube(validation = Rule::new("self.port >= 1 && self.port <= 65535").message("port must be between 1 and 65535"))]
pub struct InboundPort {
    /// Optional name; the port named `http` is where HTTP components are served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Port number, 1-65535.
    pub port: i32,
    /// `TCP` (default) or `UDP`.
    #[serde(default)]
    pub protocol: Protocol,
}

/// A transport protocol.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
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
    /// `*.example.com` (any subdomain) or `*` (anywhere). Without a port any port matches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_OUTBOUND_HTTP))]
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

impl Outbound {
    pub fn is_empty(&self) -> bool {
        self.http.is_empty() && self.tcp.is_empty() && self.udp.is_empty() && !self.dns
    }
}

/// An address block and port range, like a NetworkPolicy `ipBlock` with `port`/`endPort`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("isCIDR(self.cidr)").message("cidr must be an IPv4 or IPv6 CIDR such as 10.0.0.0/8 or ::1/128"),
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
