//! spore-operator: reconciles WasmApps and WasmRuntimes. Flags and wiring only.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand};
use spore_operator::context::{ActivatorSettings, AutoscalerSettings, Settings};
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

// `run` has many flags and `cleanup` one; the value is parsed once, its size does not matter.
#[allow(clippy::large_enum_variant)]
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
        /// The activator's Service, in the operator's namespace: apps at zero route to it.
        #[arg(long, env = "SPORE_ACTIVATOR_SERVICE", default_value = "spore-activator")]
        activator_service: String,
        /// The port the activator receives apps' traffic on.
        #[arg(long, env = "SPORE_ACTIVATOR_PORT", default_value = "8012")]
        activator_port: i32,
        /// The port of the activator's /metrics (held requests per app).
        #[arg(long, env = "SPORE_ACTIVATOR_METRICS_PORT", default_value = "9090")]
        activator_metrics_port: u16,
        /// Time between two autoscaler samples and decisions, e.g. 1s.
        #[arg(long, env = "SPORE_AUTOSCALER_TICK", default_value = "1s", value_parser = duration)]
        autoscaler_tick: Duration,
        /// Scale down follows the average concurrency over this window, e.g. 60s.
        #[arg(long, env = "SPORE_AUTOSCALER_STABLE_WINDOW", default_value = "60s", value_parser = duration)]
        autoscaler_stable_window: Duration,
        /// Scale up follows the average concurrency over this window, e.g. 2s.
        #[arg(long, env = "SPORE_AUTOSCALER_BURST_WINDOW", default_value = "2s", value_parser = duration)]
        autoscaler_burst_window: Duration,
    },
    /// Delete every WasmRuntime and wait until the nodes are cleaned (Helm pre-delete hook).
    Cleanup {
        /// How long to wait.
        #[arg(long, default_value = "300")]
        timeout_seconds: u64,
    },
}

fn duration(text: &str) -> Result<Duration, String> {
    spore_crds::units::parse_duration(text).map_err(|e| e.to_string())
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
            activator_service,
            activator_port,
            activator_metrics_port,
            autoscaler_tick,
            autoscaler_stable_window,
            autoscaler_burst_window,
        } => {
            let settings = Settings {
                default_runtime_class,
                activator: ActivatorSettings {
                    namespace: namespace.clone(),
                    service: activator_service,
                    port: activator_port,
                    metrics_port: activator_metrics_port,
                },
                autoscaler: AutoscalerSettings {
                    tick: autoscaler_tick,
                    stable_window: autoscaler_stable_window,
                    burst_window: autoscaler_burst_window,
                },
                installer: InstallerSettings { namespace, service_account: installer_service_account },
            };
            let lease = (!leader_lease.is_empty()).then_some(leader_lease);
            run(RunOptions { settings, identity, listen, lease }).await
        }
        Command::Cleanup { timeout_seconds } => cleanup(Duration::from_secs(timeout_seconds)).await,
    }
}
