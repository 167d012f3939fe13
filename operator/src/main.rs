//! spore-operator: reconciles WasmApps and WasmRuntimes. Flags and wiring only.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand};
use spore_operator::context::Settings;
use spore_operator::resources::daemonset::InstallerSettings;
use spore_operator::run::{RunOptions, cleanup, run};

#[derive(Parser)]
#[command(name = "spore-operator", version, about = "Spore's Kubernetes operator")]
struct Cli {
    /// Log format: `json` (one object per line) or `text`.
    #[arg(long, env = "SPORE_LOG_FORMAT", default_value = "json", global = true)]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controllers.
    Run {
        /// Namespace of the operator: the Lease, installer pods and uninstall Jobs live here.
        #[arg(long, env = "POD_NAMESPACE", default_value = "spore-system")]
        namespace: String,
        /// This replica's name (Lease holder, Event source).
        #[arg(long, env = "POD_NAME", default_value = "spore-operator")]
        identity: String,
        /// ServiceAccount of installer pods (may label nodes).
        #[arg(long, env = "SPORE_INSTALLER_SERVICE_ACCOUNT", default_value = "spore-node-installer")]
        installer_service_account: String,
        /// RuntimeClass of WasmApps that do not name one.
        #[arg(long, env = "SPORE_DEFAULT_RUNTIME_CLASS", default_value = "spore")]
        default_runtime_class: String,
        /// Address of /metrics, /healthz and /readyz.
        #[arg(long, env = "SPORE_LISTEN", default_value = "0.0.0.0:8080")]
        listen: SocketAddr,
        /// Lease used for leader election; empty disables it (one replica only).
        #[arg(long, env = "SPORE_LEADER_LEASE", default_value = "spore-operator")]
        leader_lease: String,
    },
    /// Delete every WasmRuntime and wait until the nodes are cleaned (Helm pre-delete hook).
    Cleanup {
        /// How long to wait.
        #[arg(long, default_value = "300")]
        timeout_seconds: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,kube=warn".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    if cli.log_format == "json" {
        logs.json().init()
    } else {
        logs.init()
    }
    match cli.command {
        Command::Run {
            namespace,
            identity,
            installer_service_account,
            default_runtime_class,
            listen,
            leader_lease,
        } => {
            let settings = Settings {
                default_runtime_class,
                installer: InstallerSettings { namespace, service_account: installer_service_account },
            };
            let lease = (!leader_lease.is_empty()).then_some(leader_lease);
            run(RunOptions { settings, identity, listen, lease }).await
        }
        Command::Cleanup { timeout_seconds } => cleanup(Duration::from_secs(timeout_seconds)).await,
    }
}
