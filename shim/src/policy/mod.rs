//! The sandbox: an app's declared capabilities and limits, checked once and turned into
//! the WASI context of each instance. Nothing is granted that is not declared.

mod dns;
mod http;
mod net;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use spore_crds::{Capabilities, Limits, Protocol};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

pub use self::dns::ResolverFiles;
pub(crate) use self::dns::{
    Dns, DnsView, add_p3_to_linker as add_p3_dns_to_linker, add_p3_to_linker_as as add_p3_dns_to_linker_as,
    add_to_linker as add_dns_to_linker, add_to_linker_as as add_dns_to_linker_as,
};
pub(crate) use self::http::{HttpAllowlist, OutboundHooks};
use self::net::SocketPolicy;
use crate::error::{Error, Result};
use crate::stdio::Stdio;
use crate::usage::Usage;

/// HTTP requests served at once when `limits.maxConcurrency` is unset.
pub const DEFAULT_MAX_CONCURRENCY: usize = 100;
/// Per-request deadline of HTTP components when `limits.timeout` is unset.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Everything needed to run one app, with references already resolved by the caller:
/// env values read from ConfigMaps/Secrets, volumes mapped to host directories.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppConfig {
    /// argv[0] as the guest sees it (the app's name).
    pub name: String,
    pub args: Vec<String>,
    /// The declared environment; the guest sees exactly this.
    pub env: Vec<(String, String)>,
    pub capabilities: Capabilities,
    /// Host directory of each volume named in `capabilities.filesystem`.
    pub volumes: BTreeMap<String, PathBuf>,
    pub limits: RuntimeLimits,
    /// The resolver configuration lookups use when `outbound.dns` grants them.
    pub resolver: ResolverFiles,
    /// What each component linked with the main one may touch, in `spec.components`
    /// order (the order [`crate::compose::Plan::others`] has).
    pub components: Vec<ComponentGrant>,
}

/// One linked component's own environment and capabilities (`spec.components[]`); its
/// volumes are the app's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ComponentGrant {
    pub name: String,
    pub env: Vec<(String, String)>,
    pub capabilities: Capabilities,
}

/// Limits in the engine's units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeLimits {
    /// Linear memory cap per instance, bytes.
    pub memory: Option<u64>,
    /// Deadline per command run or per HTTP request.
    pub timeout: Option<Duration>,
    /// HTTP requests served at once.
    pub max_concurrency: usize,
    /// Requests one instance of a WASI 0.3 HTTP service may serve; `None`: one.
    pub instance_reuse: Option<InstanceReuse>,
}

/// `limits.instanceReuse` in the engine's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceReuse {
    /// Requests an instance serves in its life.
    pub max_requests: usize,
    /// Requests an instance serves at once.
    pub max_concurrent: usize,
}

impl Default for RuntimeLimits {
    fn default() -> Self {
        Self { memory: None, timeout: None, max_concurrency: DEFAULT_MAX_CONCURRENCY, instance_reuse: None }
    }
}

impl RuntimeLimits {
    /// Reads the CRD's `limits`.
    pub fn from_spec(limits: &Limits) -> Result<Self> {
        let invalid =
            |field: &'static str| move |e: spore_crds::units::UnitError| Error::Limit { field, message: e.to_string() };
        let max_concurrency = match limits.max_concurrency {
            None => DEFAULT_MAX_CONCURRENCY,
            Some(n) => at_least_one("maxConcurrency", n)?,
        };
        Ok(Self {
            memory: limits.memory_bytes().map_err(invalid("memory"))?,
            timeout: limits.timeout().map_err(invalid("timeout"))?,
            max_concurrency,
            instance_reuse: limits.instance_reuse.as_ref().map(InstanceReuse::from_spec).transpose()?,
        })
    }
}

impl InstanceReuse {
    fn from_spec(reuse: &spore_crds::limits::InstanceReuse) -> Result<Self> {
        Ok(Self {
            max_requests: at_least_one("instanceReuse.maxRequests", reuse.max_requests)?,
            max_concurrent: at_least_one("instanceReuse.maxConcurrent", reuse.max_concurrent.unwrap_or(1))?,
        })
    }
}

/// A count limit, which the CRD keeps at 1 or more.
fn at_least_one(field: &'static str, n: i32) -> Result<usize> {
    usize::try_from(n)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Error::Limit { field, message: format!("{n} must be at least 1") })
}

/// A mount the guest sees.
#[derive(Debug, Clone)]
struct Preopen {
    host: PathBuf,
    guest: String,
    read_only: bool,
}

/// A checked, ready-to-use sandbox; cheap to clone.
#[derive(Clone)]
pub struct Sandbox(Arc<Inner>);

struct Inner {
    argv: Vec<String>,
    env: Vec<(String, String)>,
    preopens: Vec<Preopen>,
    sockets: SocketPolicy,
    http: HttpAllowlist,
    http_port: Option<u16>,
    listens: bool,
    dns: Dns,
    limits: RuntimeLimits,
    stdio: Stdio,
    usage: Arc<Usage>,
    components: Vec<Sandbox>,
}

impl Sandbox {
    /// Checks the configuration; every problem is an error naming the field.
    pub fn new(config: AppConfig, stdio: Stdio) -> Result<Self> {
        let caps = &config.capabilities;
        let preopens = preopens(caps, &config.volumes)?;
        let sockets = SocketPolicy::new(&caps.network)?;
        let http = HttpAllowlist::new(&caps.network.outbound.http)?;
        let http_port = http_port(caps);
        let listens = !caps.network.inbound.is_empty();
        let dns = Dns::new(sockets.dns, &config.resolver);
        let components = config
            .components
            .iter()
            .enumerate()
            .map(|(i, grant)| component_sandbox(i, grant, &config, &stdio))
            .collect::<Result<_>>()?;
        let argv = std::iter::once(config.name).chain(config.args).collect();
        Ok(Self(Arc::new(Inner {
            argv,
            env: config.env,
            preopens,
            sockets,
            http,
            http_port,
            listens,
            dns,
            limits: config.limits,
            stdio,
            usage: Arc::default(),
            components,
        })))
    }

    /// The sandboxes of the components linked with the main one, in `spec.components` order.
    pub(crate) fn components(&self) -> &[Sandbox] {
        &self.0.components
    }

    pub fn limits(&self) -> &RuntimeLimits {
        &self.0.limits
    }

    /// Live memory and CPU use of this app's instances.
    pub fn usage(&self) -> &Arc<Usage> {
        &self.0.usage
    }

    /// The port HTTP components are served on: the inbound TCP port named `http`, else the
    /// first inbound TCP port.
    pub fn http_port(&self) -> Option<u16> {
        self.0.http_port
    }

    /// Whether the app declares inbound ports (an HTTP server, or a command that listens).
    pub fn listens(&self) -> bool {
        self.0.listens
    }

    pub(crate) fn http_allowlist(&self) -> &HttpAllowlist {
        &self.0.http
    }

    pub(crate) fn dns(&self) -> &Dns {
        &self.0.dns
    }

    /// A WASI context granting exactly the declared capabilities.
    pub(crate) fn wasi_builder(&self) -> Result<WasiCtxBuilder> {
        let inner = &self.0;
        let mut builder = WasiCtxBuilder::new();
        builder.args(&inner.argv).envs(&inner.env);
        inner.stdio.apply(&mut builder);
        for p in &inner.preopens {
            let perms = if p.read_only { FsPerms::ReadOnly } else { FsPerms::ReadWrite };
            builder
                .preopened_dir(&p.host, &p.guest, perms)
                .map_err(|cause| Error::Preopen { path: p.host.clone(), cause })?;
        }
        let sockets = inner.sockets.clone();
        // Sockets may be created; what they may do is decided, and denials logged, by the
        // address check below.
        builder.allow_tcp(true).allow_udp(true).allow_ip_name_lookup(sockets.dns).socket_addr_check(
            move |addr, use_| {
                let allowed = sockets.allows(&addr, use_);
                if !allowed {
                    tracing::warn!(%addr, ?use_, "socket operation denied: not declared in capabilities.network");
                }
                Box::pin(async move { allowed })
            },
        );
        Ok(builder)
    }
}

/// The sandbox of linked component `index`: its own env and capabilities, the app's volumes
/// and resolver; its errors name the component's field.
fn component_sandbox(index: usize, grant: &ComponentGrant, app: &AppConfig, stdio: &Stdio) -> Result<Sandbox> {
    let config = AppConfig {
        name: grant.name.clone(),
        env: grant.env.clone(),
        capabilities: grant.capabilities.clone(),
        volumes: app.volumes.clone(),
        resolver: app.resolver.clone(),
        ..AppConfig::default()
    };
    Sandbox::new(config, stdio.clone()).map_err(|e| match e {
        Error::Capability { field, message } => {
            Error::Capability { field: format!("components[{index}].capabilities.{field}"), message }
        }
        other => other,
    })
}

fn preopens(caps: &Capabilities, volumes: &BTreeMap<String, PathBuf>) -> Result<Vec<Preopen>> {
    caps.filesystem
        .iter()
        .enumerate()
        .map(|(i, mount)| {
            let field = |name: &str| format!("filesystem[{i}].{name}");
            if !mount.guest_path.starts_with('/') {
                return Err(Error::Capability {
                    field: field("guestPath"),
                    message: format!("{:?} is not absolute; use e.g. /data", mount.guest_path),
                });
            }
            let host = volumes.get(&mount.volume).ok_or_else(|| Error::Capability {
                field: field("volume"),
                message: format!("volume {:?} has no directory; declare it in spec.volumes", mount.volume),
            })?;
            if !host.is_dir() {
                return Err(Error::Capability {
                    field: field("volume"),
                    message: format!("volume {:?} maps to {}, which is not a directory", mount.volume, host.display()),
                });
            }
            Ok(Preopen { host: host.clone(), guest: mount.guest_path.clone(), read_only: mount.read_only })
        })
        .collect()
}

fn http_port(caps: &Capabilities) -> Option<u16> {
    let tcp = || caps.network.inbound.iter().filter(|p| p.protocol == Protocol::Tcp);
    tcp().find(|p| p.name.as_deref() == Some("http")).or_else(|| tcp().next()).and_then(|p| u16::try_from(p.port).ok())
}
