//! The engine's one error type. Each variant says what failed and, where the user can act,
//! how to fix it; the CLI prints it as one line and the shim maps it to a ttrpc status.

use std::path::PathBuf;

/// What can go wrong before or around running a guest. Guest failures (traps, exit codes,
/// deadlines) are not errors: they are an [`crate::Exit`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not a WebAssembly binary: {found}; expected a .wasm module or component")]
    NotWasm { found: String },

    #[error("invalid WebAssembly: {0:#}")]
    Invalid(wasmtime::Error),

    #[error("unsupported Wasm {what}: {detail}")]
    Unsupported { what: &'static str, detail: String },

    #[error("capability {field}: {message}")]
    Capability { field: String, message: String },

    #[error("limit {field}: {message}")]
    Limit { field: &'static str, message: String },

    #[error("cannot give the guest {path}: {cause:#}")]
    Preopen { path: PathBuf, cause: wasmtime::Error },

    #[error("code cache at {path}: {source}")]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot serve HTTP on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "metrics port {port} is also the guest's HTTP port (capabilities.network.inbound {port}); \
         serve metrics on another port"
    )]
    MetricsPortTaken { port: u16 },

    #[error("failed to instantiate the guest: {0:#}")]
    Instantiate(wasmtime::Error),

    #[error("wasmtime engine: {0:#}")]
    Engine(wasmtime::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
