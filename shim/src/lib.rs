//! Spore's Wasm engine, shared by the containerd shim and `spore up`: it loads and
//! classifies modules and components, caches their machine code, builds a sandbox that
//! grants only the declared capabilities, runs commands and serves HTTP components.

mod cache;
mod command;
pub mod compose;
pub mod containerd;
mod engine;
mod error;
mod exit;
mod http;
pub mod image;
mod limits;
mod metrics;
mod module;
mod policy;
mod state;
mod stdio;
mod usage;

pub use engine::{Engine, EngineConfig, Tier};
pub use error::{Error, Result};
pub use exit::Exit;
pub use exit::{DEADLINE_EXIT_CODE, HOST_ERROR_EXIT_CODE, TRAP_EXIT_CODE};
pub use http::{HttpServer, Shutdown, bind, bind_metrics, serve_http};
pub use limits::DeadlineExceeded;
pub use module::CodeOrigin;
pub use module::{Wasm, WasmKind};
pub use policy::{AppConfig, ComponentGrant, InstanceReuse, ResolverFiles, RuntimeLimits, Sandbox};
pub use stdio::Captured;
pub use stdio::Stdio;
pub use usage::Usage;

/// Runs a command (a WASI p1 module or a `wasi:cli/command` component) to completion.
pub use command::run_command;
