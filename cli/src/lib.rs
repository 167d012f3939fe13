//! The `spore` command line: argument parsing, and each subcommand in its own module.

mod error;
mod link;
mod manifest;
pub mod oci;
mod resolve;
mod up;

use clap::{Parser, Subcommand};

pub use error::{CliError, SPORE_FAILED};

/// Spore: Kubernetes-native WebAssembly workloads. `spore up` runs a WasmApp locally with
/// the same engine and sandbox the cluster uses.
#[derive(Debug, Parser)]
#[command(name = "spore", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a WasmApp manifest locally: commands run to completion, HTTP components serve
    /// until Ctrl-C.
    Up(up::UpArgs),
    /// Check a WasmApp manifest without running it; with spec.components, also that its
    /// components link (pulling those not given with --component).
    Validate(manifest::ValidateArgs),
    /// Build and push Wasm OCI images.
    #[command(subcommand)]
    Image(oci::ImageCommand),
}

/// Runs the CLI; returns the process exit code.
pub fn main(cli: Cli) -> i32 {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return SPORE_FAILED;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Up(args) => up::run(args).await,
            Command::Validate(args) => manifest::validate_command(args).await,
            Command::Image(cmd) => oci::run(cmd).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            SPORE_FAILED
        }
    }
}

/// Logs to stderr; `SPORE_LOG` sets the filter (default: warnings, so denials show).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SPORE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .without_time()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}
