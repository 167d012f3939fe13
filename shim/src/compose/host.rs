//! The host side of [`super::Routed`] imports: each dependency's capability interfaces,
//! served from that component's own grant (its WASI context, HTTP allowlist and name
//! lookup) over the store's shared resource table. A dependency granted nothing gets a
//! context with no preopens, no environment and no destinations.

use wasmtime::component::Linker;
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi::cli::{WasiCli, WasiCliCtxView};
use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemCtxView};
use wasmtime_wasi::sockets::{WasiSockets, WasiSocketsCtxView};
use wasmtime_wasi_http::{WasiHttp, WasiHttpCtx, WasiHttpCtxView};

use super::routed_label;
use crate::policy::{Dns, DnsView, OutboundHooks, Sandbox};
use crate::state::P2State;

/// The store data of one dependency: what its grant lets it reach.
pub(crate) struct Grant {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: OutboundHooks,
    dns: Dns,
}

impl Grant {
    pub(crate) fn new(sandbox: &Sandbox) -> crate::Result<Self> {
        Ok(Self {
            wasi: sandbox.wasi_builder()?.build(),
            http: WasiHttpCtx::new(),
            hooks: OutboundHooks::new(sandbox.http_allowlist().clone()),
            dns: sandbox.dns().clone(),
        })
    }
}

/// Serves the routed imports of components 1 to [`MAX`] (the main one is 0 and imports
/// its capabilities under their own names).
pub(crate) fn add_to_linker(linker: &mut Linker<P2State>, concurrent: bool) -> wasmtime::Result<()> {
    macro_rules! each {
        ($($i:literal)*) => { $( add_component::<$i>(linker, concurrent)?; )* };
    }
    each!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16);
    Ok(())
}

/// Most components besides the main one: the CRD's limit.
const MAX: usize = spore_crds::composition::MAX_COMPONENTS;
const _: () = assert!(MAX == 16, "add_to_linker serves components 1 to 16");

fn add_component<const I: usize>(linker: &mut Linker<P2State>, concurrent: bool) -> wasmtime::Result<()> {
    use wasmtime_wasi::p2::bindings::{cli, filesystem, sockets};
    use wasmtime_wasi_http::p2::bindings::http;
    let label = |interface: &str| routed_label(I, interface);
    filesystem::preopens::add_to_linker_instance::<P2State, WasiFilesystem>(
        &mut linker.instance(&label("wasi:filesystem/preopens@0.2"))?,
        filesystem_of::<I>,
    )?;
    cli::environment::add_to_linker_instance::<P2State, WasiCli>(
        &mut linker.instance(&label("wasi:cli/environment@0.2"))?,
        cli_of::<I>,
    )?;
    sockets::tcp_create_socket::add_to_linker_instance::<P2State, WasiSockets>(
        &mut linker.instance(&label("wasi:sockets/tcp-create-socket@0.2"))?,
        sockets_of::<I>,
    )?;
    sockets::udp_create_socket::add_to_linker_instance::<P2State, WasiSockets>(
        &mut linker.instance(&label("wasi:sockets/udp-create-socket@0.2"))?,
        sockets_of::<I>,
    )?;
    crate::policy::add_dns_to_linker_as(linker, &label("wasi:sockets/ip-name-lookup@0.2"), dns_of::<I>)?;
    http::outgoing_handler::add_to_linker_instance::<P2State, WasiHttp>(
        &mut linker.instance(&label("wasi:http/outgoing-handler@0.2"))?,
        http_of::<I>,
    )?;
    if concurrent {
        use wasmtime_wasi::p3::bindings::{cli as cli3, filesystem as filesystem3, sockets as sockets3};
        filesystem3::preopens::add_to_linker_instance::<P2State, WasiFilesystem>(
            &mut linker.instance(&label("wasi:filesystem/preopens@0.3"))?,
            filesystem_of::<I>,
        )?;
        cli3::environment::add_to_linker_instance::<P2State, WasiCli>(
            &mut linker.instance(&label("wasi:cli/environment@0.3"))?,
            cli_of::<I>,
        )?;
        sockets3::types::add_to_linker_instance::<P2State, WasiSockets>(
            &mut linker.instance(&label("wasi:sockets/types@0.3"))?,
            sockets_of::<I>,
        )?;
        crate::policy::add_p3_dns_to_linker_as(linker, &label("wasi:sockets/ip-name-lookup@0.3"), p3_dns_of::<I>)?;
        wasmtime_wasi_http::p3::bindings::http::client::add_to_linker_instance::<P2State, WasiHttp>(
            &mut linker.instance(&label("wasi:http/client@0.3"))?,
            http_of::<I>,
        )?;
    }
    Ok(())
}

fn grant<const I: usize>(state: &mut P2State) -> (&mut Grant, &mut wasmtime::component::ResourceTable) {
    // Only a composed app imports component I's interfaces, and its store has I grants.
    (&mut state.grants[I - 1], &mut state.table)
}

fn filesystem_of<const I: usize>(state: &mut P2State) -> WasiFilesystemCtxView<'_> {
    let (grant, table) = grant::<I>(state);
    WasiFilesystemCtxView { ctx: grant.wasi.filesystem(), table }
}

fn cli_of<const I: usize>(state: &mut P2State) -> WasiCliCtxView<'_> {
    let (grant, table) = grant::<I>(state);
    WasiCliCtxView { ctx: grant.wasi.cli(), table }
}

fn sockets_of<const I: usize>(state: &mut P2State) -> WasiSocketsCtxView<'_> {
    let (grant, table) = grant::<I>(state);
    WasiSocketsCtxView { ctx: grant.wasi.sockets(), table }
}

fn dns_of<const I: usize>(state: &mut P2State) -> DnsView<'_> {
    let (grant, table) = grant::<I>(state);
    DnsView { table, dns: &grant.dns }
}

fn p3_dns_of<const I: usize>(state: &mut P2State) -> &Dns {
    &grant::<I>(state).0.dns
}

fn http_of<const I: usize>(state: &mut P2State) -> WasiHttpCtxView<'_> {
    let (grant, table) = grant::<I>(state);
    WasiHttpCtxView { ctx: &mut grant.http, table, hooks: &mut grant.hooks }
}
