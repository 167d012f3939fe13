//! Spore's node installer: registers the Spore containerd shim as a CRI runtime handler on a
//! node through a drop-in file (containerd's main config is never edited), restarts
//! containerd, verifies with crictl, rolls back on failure, and labels the Node.
//!
//! The operator runs `install` as a privileged DaemonSet init container (hostPID, the host's
//! `/` at `/host`) followed by `wait`, and `uninstall` as a per-node Job.

pub mod cli;
pub mod config;
pub mod dropin;
pub mod error;
pub mod files;
pub mod host;
pub mod install;
pub mod labels;
pub mod node;
pub mod process;
pub mod verify;

mod chroot;
mod wait;

pub use cli::{Cli, Command};
pub use error::{Error, Result};

/// Runs one subcommand.
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Install(options) => install::install(&options),
        Command::Uninstall(options) => install::uninstall(&options),
        Command::Wait => wait::until_terminated(),
        Command::ChrootExec(exec) => Err(chroot::exec(&exec.dir, &exec.command)),
    }
}
