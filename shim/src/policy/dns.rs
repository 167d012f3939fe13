//! Name lookups (`wasi:sockets/ip-name-lookup`). A guest granted `outbound.dns` resolves as
//! a container in its pod would: with the pod's resolv.conf (nameservers, search domains,
//! ndots) and hosts file, queried from the pod's network namespace. wasmtime-wasi's own
//! lookup uses the process's resolver, i.e. the node's files, where cluster names are
//! unknown. Without the grant every lookup is denied, and logged like socket denials.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::ResolveHosts;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use wasmtime::component::{Linker, Resource, ResourceTable, ResourceType};
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddress};
use wasmtime_wasi::p2::{DynPollable, Network, Pollable};

/// The interface wasmtime-wasi defines, which [`add_to_linker`] replaces.
const INTERFACE: &str = "wasi:sockets/ip-name-lookup@0.2.12";

/// Where a sandbox's resolver configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverFiles {
    /// resolv(5) file: nameservers, search domains, options such as ndots.
    pub resolv_conf: PathBuf,
    /// hosts(5) file, consulted before DNS.
    pub hosts: Option<PathBuf>,
}

impl Default for ResolverFiles {
    /// The machine's own, as a local process resolves (`spore up`).
    fn default() -> Self {
        Self { resolv_conf: "/etc/resolv.conf".into(), hosts: Some("/etc/hosts".into()) }
    }
}

/// A sandbox's name lookups: denied, or a resolver (or why there is none).
#[derive(Clone)]
pub(crate) enum Dns {
    Denied,
    Resolver(Arc<TokioResolver>),
    Unusable(Arc<str>),
}

impl Dns {
    pub fn new(allowed: bool, files: &ResolverFiles) -> Self {
        if !allowed {
            return Self::Denied;
        }
        match resolver(files) {
            Ok(resolver) => Self::Resolver(Arc::new(resolver)),
            // The app still starts: only its lookups fail, each logged with this reason.
            Err(why) => {
                tracing::warn!("DNS lookups will fail: {why}");
                Self::Unusable(why.into())
            }
        }
    }

    fn lookup(&self, name: String) -> Lookup {
        let resolver = match self {
            Self::Denied => {
                tracing::warn!(%name, "DNS lookup denied: capabilities.network.outbound.dns is not set");
                return Lookup::Done(Err(ErrorCode::AccessDenied));
            }
            Self::Unusable(why) => {
                tracing::warn!(%name, "DNS lookup failed: {why}");
                return Lookup::Done(Err(ErrorCode::PermanentResolverFailure));
            }
            Self::Resolver(resolver) => resolver.clone(),
        };
        if let Ok(ip) = name.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            return Lookup::Done(Ok(vec![ip].into_iter()));
        }
        Lookup::Pending(tokio::spawn(async move {
            match resolver.lookup_ip(name.as_str()).await {
                Ok(found) => Ok(found.iter().map(|ip| ip.to_canonical()).collect()),
                Err(err) if err.is_no_records_found() => Err(ErrorCode::NameUnresolvable),
                Err(err) => {
                    tracing::debug!(%name, "DNS lookup failed: {err}");
                    Err(ErrorCode::TemporaryResolverFailure)
                }
            }
        }))
    }
}

fn resolver(files: &ResolverFiles) -> Result<TokioResolver, String> {
    let read = |path: &Path| std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()));
    let (config, mut options) = hickory_resolver::system_conf::parse_resolv_conf(read(&files.resolv_conf)?)
        .map_err(|e| format!("{}: {e}", files.resolv_conf.display()))?;
    // The hosts file is the pod's, loaded below, never the node's.
    options.use_hosts_file = ResolveHosts::Never;
    let mut resolver = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(options)
        .build()
        .map_err(|e| format!("{}: {e}", files.resolv_conf.display()))?;
    if let Some(path) = &files.hosts {
        let mut hosts = hickory_resolver::Hosts::default();
        hosts.read_hosts_conf(read(path)?.as_slice()).map_err(|e| format!("{}: {e}", path.display()))?;
        resolver.set_hosts(Arc::new(hosts));
    }
    Ok(resolver)
}

/// The `resolve-address-stream` resource: a lookup in progress, then its addresses.
pub(crate) enum Lookup {
    Pending(tokio::task::JoinHandle<Result<Vec<IpAddr>, ErrorCode>>),
    Done(Result<std::vec::IntoIter<IpAddr>, ErrorCode>),
}

impl Lookup {
    fn poll_done(&mut self) -> bool {
        if let Self::Pending(task) = self {
            if !task.is_finished() {
                return false;
            }
            let result = futures::FutureExt::now_or_never(task).expect("finished task");
            *self = Self::Done(result.unwrap_or(Err(ErrorCode::PermanentResolverFailure)).map(Vec::into_iter));
        }
        true
    }
}

#[async_trait::async_trait]
impl Pollable for Lookup {
    async fn ready(&mut self) {
        if let Self::Pending(task) = self {
            let result = task.await.unwrap_or(Err(ErrorCode::PermanentResolverFailure));
            *self = Self::Done(result.map(Vec::into_iter));
        }
    }
}

type Answer<T> = wasmtime::Result<(Result<T, ErrorCode>,)>;

/// What the lookup functions need of a store's data.
pub(crate) struct DnsView<'a> {
    pub table: &'a mut ResourceTable,
    pub dns: &'a Dns,
}

/// Replaces wasmtime-wasi's `ip-name-lookup` in `linker` (added before) with Spore's.
pub(crate) fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> DnsView<'_>,
) -> wasmtime::Result<()> {
    add_to_linker_as(linker, INTERFACE, view)
}

/// [`add_to_linker`] under another instance name: a dependency's routed import.
pub(crate) fn add_to_linker_as<T: 'static>(
    linker: &mut Linker<T>,
    name: &str,
    view: fn(&mut T) -> DnsView<'_>,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut lookup = linker.instance(name)?;
    lookup.resource("resolve-address-stream", ResourceType::host::<Lookup>(), move |mut store, rep| {
        view(store.data_mut()).table.delete(Resource::<Lookup>::new_own(rep))?;
        Ok(())
    })?;
    lookup.func_wrap(
        "resolve-addresses",
        move |mut store, (network, name): (Resource<Network>, String)| -> Answer<_> {
            let state = view(store.data_mut());
            // The network handle is the capability to look up at all; it must be a live one.
            state.table.get(&network)?;
            let lookup = state.dns.lookup(name);
            Ok((Ok(state.table.push(lookup)?),))
        },
    )?;
    lookup.func_wrap(
        "[method]resolve-address-stream.resolve-next-address",
        move |mut store, (stream,): (Resource<Lookup>,)| -> Answer<Option<IpAddress>> {
            let lookup = view(store.data_mut()).table.get_mut(&stream)?;
            if !lookup.poll_done() {
                return Ok((Err(ErrorCode::WouldBlock),));
            }
            let Lookup::Done(result) = lookup else { unreachable!("poll_done leaves it done") };
            Ok((match result {
                Ok(addresses) => Ok(addresses.next().map(IpAddress::from)),
                Err(code) => Err(*code),
            },))
        },
    )?;
    lookup.func_wrap(
        "[method]resolve-address-stream.subscribe",
        move |mut store, (stream,): (Resource<Lookup>,)| -> wasmtime::Result<(Resource<DynPollable>,)> {
            Ok((wasmtime_wasi::p2::subscribe(view(store.data_mut()).table, stream)?,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// WASI 0.3's `ip-name-lookup`, which wasmtime-wasi defines (added before) and this replaces.
const INTERFACE_P3: &str = "wasi:sockets/ip-name-lookup@0.3.0";

/// Replaces wasmtime-wasi's WASI 0.3 `ip-name-lookup` in `linker` with Spore's: the same
/// grant and resolver as 0.2's. A 0.3 lookup is one async call, so no resource is needed.
pub(crate) fn add_p3_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    dns: fn(&mut T) -> &Dns,
) -> wasmtime::Result<()> {
    add_p3_to_linker_as(linker, INTERFACE_P3, dns)
}

/// [`add_p3_to_linker`] under another instance name: a dependency's routed import.
pub(crate) fn add_p3_to_linker_as<T: Send + 'static>(
    linker: &mut Linker<T>,
    name: &str,
    dns: fn(&mut T) -> &Dns,
) -> wasmtime::Result<()> {
    use wasmtime::AsContextMut;
    use wasmtime_wasi::p3::bindings::sockets::ip_name_lookup::ErrorCode as P3Error;
    use wasmtime_wasi::p3::bindings::sockets::types::IpAddress as P3Address;
    linker.allow_shadowing(true);
    let mut lookup = linker.instance(name)?;
    lookup.func_wrap_concurrent("resolve-addresses", move |accessor, (name,): (String,)| {
        let dns = accessor.with(|mut access| dns(access.as_context_mut().data_mut()).clone());
        Box::pin(async move {
            let found = dns.lookup(name).finish().await.map(|ips| ips.map(P3Address::from).collect::<Vec<_>>());
            let answer: Result<Vec<P3Address>, P3Error> = found.map_err(|code| match code {
                ErrorCode::AccessDenied => P3Error::AccessDenied,
                ErrorCode::NameUnresolvable => P3Error::NameUnresolvable,
                ErrorCode::TemporaryResolverFailure => P3Error::TemporaryResolverFailure,
                _ => P3Error::PermanentResolverFailure,
            });
            Ok((answer,))
        })
    })?;
    linker.allow_shadowing(false);
    Ok(())
}

impl Lookup {
    /// The lookup's addresses, once it is done.
    async fn finish(self) -> Result<std::vec::IntoIter<IpAddr>, ErrorCode> {
        match self {
            Self::Done(result) => result,
            Self::Pending(task) => task.await.unwrap_or(Err(ErrorCode::PermanentResolverFailure)).map(Vec::into_iter),
        }
    }
}
