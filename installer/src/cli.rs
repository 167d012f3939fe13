//! Command-line flags; each can also come from an environment variable (the DaemonSet and
//! the uninstall Job set them from the WasmRuntime).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::config::DEFAULT_CONFIG_PATH;

#[derive(Debug, Parser)]
#[command(
    name = "spore-node-installer",
    version,
    about = "Registers Spore's containerd shim as a CRI runtime handler",
    // A flag given twice takes the last value (manifests append overrides).
    args_override_self = true
)]
pub struct Cli {
    /// Where to write the error on failure (Kubernetes shows it as the termination message);
    /// skipped when its directory does not exist.
    #[arg(long, global = true, env = "SPORE_TERMINATION_LOG", default_value = "/dev/termination-log")]
    pub termination_log: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Install the shim, add the handler's containerd drop-in, restart containerd, verify
    /// (rolls back on failure); then label the Node.
    Install(NodeOptions),
    /// Unlabel the Node, remove the drop-in (restarting containerd) and the shim.
    Uninstall(NodeOptions),
    /// Block until SIGTERM or SIGINT, then exit 0 (the DaemonSet's main container).
    Wait,
    /// chroot DIR, chdir /, exec COMMAND (runs the host's systemctl from the container).
    ChrootExec(ChrootExec),
}

#[derive(Clone, Debug, Args)]
pub struct NodeOptions {
    /// Where the host's / is mounted; every host path is resolved under it.
    #[arg(long, env = "SPORE_HOST_ROOT", default_value = "/host")]
    pub host_root: PathBuf,

    /// Host path of containerd's main config (never modified).
    #[arg(long, env = "SPORE_CONFIG_PATH", default_value = DEFAULT_CONFIG_PATH)]
    pub config_path: PathBuf,

    /// CRI runtime handler name (a DNS label), e.g. `spore`.
    #[arg(long, env = "SPORE_HANDLER")]
    pub handler: String,

    /// RuntimeClass name used in the Node label key (default: the handler).
    #[arg(long, env = "SPORE_RUNTIME_CLASS")]
    pub runtime_class: Option<String>,

    /// Host directory the shim binary is copied to.
    #[arg(long, env = "SPORE_INSTALL_DIR", default_value = "/opt/spore/bin")]
    pub install_dir: PathBuf,

    /// The shim binary inside the installer's image.
    #[arg(long, env = "SPORE_SHIM", default_value = "/spore/containerd-shim-spore-v1")]
    pub shim: PathBuf,

    /// crictl inside the installer's image.
    #[arg(long, env = "SPORE_CRICTL", default_value = "/spore/crictl")]
    pub crictl: PathBuf,

    /// Restart containerd after a change (`--restart=false`: the next restart picks it up).
    #[arg(long, env = "SPORE_RESTART", default_value_t = true, action = ArgAction::Set)]
    pub restart: bool,

    /// This Node's name: label and annotate it through the Kubernetes API (skipped if unset).
    #[arg(long, env = "NODE_NAME")]
    pub node_name: Option<String>,
}

impl NodeOptions {
    pub fn runtime_class(&self) -> &str {
        self.runtime_class.as_deref().unwrap_or(&self.handler)
    }
}

#[derive(Clone, Debug, Args)]
pub struct ChrootExec {
    /// The new root directory.
    pub dir: PathBuf,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true)]
    pub command: Vec<OsString>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn flags_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn install_defaults_and_restart_false() {
        let cli = Cli::try_parse_from(["i", "install", "--handler", "spore", "--restart=false"]).unwrap();
        let Command::Install(options) = cli.command else { panic!("not install") };
        assert_eq!(options.host_root, PathBuf::from("/host"));
        assert_eq!(options.config_path, PathBuf::from("/etc/containerd/config.toml"));
        assert_eq!(options.runtime_class(), "spore");
        assert_eq!(options.install_dir, PathBuf::from("/opt/spore/bin"));
        assert!(!options.restart);
        assert_eq!(cli.termination_log, PathBuf::from("/dev/termination-log"));
    }

    #[test]
    fn a_repeated_flag_takes_the_last_value() {
        let cli =
            Cli::try_parse_from(["i", "uninstall", "--handler", "a", "--crictl", "/x", "--crictl", "/y"]).unwrap();
        let Command::Uninstall(options) = cli.command else { panic!("not uninstall") };
        assert_eq!(options.crictl, PathBuf::from("/y"));
    }

    #[test]
    fn chroot_exec_takes_the_command_after_double_dash() {
        let cli = Cli::try_parse_from(["i", "chroot-exec", "/host", "--", "systemctl", "restart", "x"]).unwrap();
        let Command::ChrootExec(exec) = cli.command else { panic!("not chroot-exec") };
        assert_eq!(exec.dir, PathBuf::from("/host"));
        assert_eq!(exec.command, ["systemctl", "restart", "x"]);
    }
}
