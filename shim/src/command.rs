//! Running commands to completion: WASI p1 modules and `wasi:cli/command` components
//! (WASI 0.2 and 0.3).

use wasmtime::Store;
use wasmtime_wasi::p2::bindings::Command;
use wasmtime_wasi::p3::bindings::Command as CommandP3;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::limits;
use crate::module::{Code, Wasm, WasmKind};
use crate::policy::Sandbox;
use crate::state::{P1State, P2State};
use crate::usage::Metered;

/// Runs the guest until it exits, traps or hits its deadline. Dropping the future stops
/// the guest within one epoch tick.
pub async fn run_command(wasm: &Wasm, sandbox: &Sandbox) -> Result<Exit> {
    let usage = sandbox.usage().clone();
    let engine = wasm.engine();
    match (wasm.kind(), wasm.code()) {
        (WasmKind::CoreCommand, Code::Module(module)) => Metered::new(run_p1(engine, module, sandbox), usage).await,
        (WasmKind::CliCommand, Code::Component(component)) => {
            Metered::new(run_p2(engine, component, sandbox), usage).await
        }
        (WasmKind::CliCommandP3, Code::Component(component)) => {
            Metered::new(run_p3(engine, component, sandbox), usage).await
        }
        (kind, _) => Err(Error::Unsupported {
            what: "command",
            detail: format!("a {kind} is served, not run to completion; give it an inbound port to serve on"),
        }),
    }
}

async fn run_p1(engine: &Engine, module: &wasmtime::Module, sandbox: &Sandbox) -> Result<Exit> {
    let mut store = Store::new(engine.wasmtime(), P1State::new(sandbox)?);
    limits::apply(&mut store, |s: &mut P1State| &mut s.memory, sandbox.limits().timeout);
    let instance = match engine.p1_linker().instantiate_async(&mut store, module).await {
        Ok(instance) => instance,
        Err(err) => return instantiate_failure(err, &store.data().memory),
    };
    let start = instance.get_typed_func::<(), ()>(&mut store, "_start").map_err(Error::Instantiate)?;
    Ok(match start.call_async(&mut store, ()).await {
        Ok(()) => Exit::code(0),
        Err(err) => Exit::from_error(err, &store.data().memory),
    })
}

async fn run_p2(engine: &Engine, component: &wasmtime::component::Component, sandbox: &Sandbox) -> Result<Exit> {
    let mut store = component_store(engine, sandbox)?;
    let command = match Command::instantiate_async(&mut store, component, engine.p2_linker()).await {
        Ok(command) => command,
        Err(err) => return instantiate_failure(err, &store.data().memory),
    };
    Ok(match command.wasi_cli_run().call_run(&mut store).await {
        Ok(Ok(())) => Exit::code(0),
        Ok(Err(())) => Exit::code(1),
        Err(err) => Exit::from_error(err, &store.data().memory),
    })
}

async fn run_p3(engine: &Engine, component: &wasmtime::component::Component, sandbox: &Sandbox) -> Result<Exit> {
    let mut store = component_store(engine, sandbox)?;
    let command = match CommandP3::instantiate_async(&mut store, component, engine.p2_linker()).await {
        Ok(command) => command,
        Err(err) => return instantiate_failure(err, &store.data().memory),
    };
    let ran = store.run_concurrent(async |accessor| command.wasi_cli_run().call_run(accessor).await).await;
    Ok(match ran.and_then(|run| run) {
        Ok(Ok(())) => Exit::code(0),
        Ok(Err(())) => Exit::code(1),
        Err(err) => Exit::from_error(err, &store.data().memory),
    })
}

/// A component's store: the sandbox's state, with its memory cap and deadline.
fn component_store(engine: &Engine, sandbox: &Sandbox) -> Result<Store<P2State>> {
    let mut store = Store::new(engine.wasmtime(), P2State::new(sandbox)?);
    limits::apply(&mut store, |s: &mut P2State| &mut s.memory, sandbox.limits().timeout);
    Ok(store)
}

/// A trap during instantiation (a start function, or initial memory above the limit) is
/// the guest's failure; anything else (a missing import) is a load error.
fn instantiate_failure(err: wasmtime::Error, memory: &limits::MemoryLimiter) -> Result<Exit> {
    if err.downcast_ref::<wasmtime::Trap>().is_some() || memory.refused.is_some() {
        Ok(Exit::from_error(err, memory))
    } else {
        Err(Error::Instantiate(err))
    }
}
