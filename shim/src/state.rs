//! The data each store carries: the WASI context, and for components the resource table,
//! the `wasi:http` context with Spore's outbound hooks.

use wasmtime::component::ResourceTable;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::compose::host::Grant;
use crate::limits::MemoryLimiter;
use crate::policy::{Dns, OutboundHooks, Sandbox};

/// Store data of a WASI p1 module.
pub(crate) struct P1State {
    pub wasi: WasiP1Ctx,
    pub memory: MemoryLimiter,
}

/// Store data of a component (command or HTTP).
pub(crate) struct P2State {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub http: WasiHttpCtx,
    pub hooks: OutboundHooks,
    pub dns: Dns,
    pub memory: MemoryLimiter,
    /// The grants of the components linked with the main one (a composed app's).
    pub grants: Vec<Grant>,
}

impl WasiView for P2State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for P2State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

impl P1State {
    pub fn new(sandbox: &Sandbox) -> crate::Result<Self> {
        Ok(Self {
            wasi: sandbox.wasi_builder()?.build_p1(),
            memory: MemoryLimiter::new(sandbox.limits().memory, sandbox.usage().clone()),
        })
    }
}

impl P2State {
    pub fn new(sandbox: &Sandbox) -> crate::Result<Self> {
        Ok(Self {
            wasi: sandbox.wasi_builder()?.build(),
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            hooks: OutboundHooks::new(sandbox.http_allowlist().clone()),
            dns: sandbox.dns().clone(),
            memory: MemoryLimiter::new(sandbox.limits().memory, sandbox.usage().clone()),
            grants: sandbox.components().iter().map(Grant::new).collect::<crate::Result<_>>()?,
        })
    }
}
