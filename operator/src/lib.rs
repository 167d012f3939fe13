//! Spore's operator: the WasmApp controller runs apps as Deployments with Spore's
//! RuntimeClass (and scales the ones with `targetConcurrency` itself, see `autoscale`); the
//! WasmRuntime controller installs the shim on nodes and publishes the
//! RuntimeClass.

pub mod error;
pub mod resources;

#[cfg(test)]
mod fixtures;

pub use error::{Error, Result};
pub mod app;
pub mod apply;
pub mod autoscale;
pub mod conditions;
pub mod context;
pub mod leader;
pub mod metrics;
pub mod precompile;
pub mod run;
pub mod runtime;
pub mod server;
