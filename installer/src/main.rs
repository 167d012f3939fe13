//! `spore-node-installer`: parses flags, runs the subcommand, and turns a failure into exit
//! code 1 with one line on stderr and in the termination log.

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use spore_node_installer::{Cli, run};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_ansi(false).init();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let line = error.to_string().replace('\n', " ");
            eprintln!("spore-node-installer: {line}");
            write_termination_log(&cli.termination_log, &line);
            ExitCode::FAILURE
        }
    }
}

/// Kubernetes shows this file as the container's termination message; outside a pod its
/// directory usually does not exist and it is skipped.
fn write_termination_log(path: &Path, line: &str) {
    if path.parent().is_some_and(Path::is_dir)
        && let Err(e) = std::fs::write(path, format!("{line}\n"))
    {
        eprintln!("spore-node-installer: could not write {}: {e}", path.display());
    }
}
