//! spore-activator: holds requests for scaled-to-zero apps, wakes them, forwards. Flags and
//! wiring only.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::Parser;
use spore_activator::relay::PeerSettings;
use spore_activator::run::{Options, run};
use spore_activator::settings::{Settings, parse_duration};

#[derive(Parser)]
#[command(name = "spore-activator", version, about = "Spore's scale-to-zero activator")]
struct Cli {
    /// Address of the proxy (the port the operator points idle apps' Services at).
    #[arg(long, env = "SPORE_ACTIVATOR_LISTEN", default_value = "0.0.0.0:8012")]
    listen: SocketAddr,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "SPORE_ACTIVATOR_ADMIN_LISTEN", default_value = "0.0.0.0:9090")]
    admin_listen: SocketAddr,
    /// The cluster's DNS domain, for `<app>.<namespace>.svc.<domain>` hosts.
    #[arg(long, env = "SPORE_ACTIVATOR_CLUSTER_DOMAIN", default_value = "cluster.local")]
    cluster_domain: String,
    /// Pause between probes of a starting pod while requests wait.
    #[arg(long, env = "SPORE_ACTIVATOR_PROBE_INTERVAL", default_value = "25ms", value_parser = parse_duration)]
    probe_interval: Duration,
    /// How long a request waits for a pod before it gets 503.
    #[arg(long, env = "SPORE_ACTIVATOR_HOLD_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    hold_timeout: Duration,
    /// Most requests held per app; more get 503 at once.
    #[arg(long, env = "SPORE_ACTIVATOR_MAX_HELD_PER_APP", default_value_t = 1000)]
    max_held_per_app: usize,
    /// How long requests in flight and held may finish after SIGTERM.
    #[arg(long, env = "SPORE_ACTIVATOR_SHUTDOWN_GRACE", default_value = "20s", value_parser = parse_duration)]
    shutdown_grace: Duration,
    /// Selects the activator's own pods (in `--namespace`): announcements are relayed to
    /// them. Empty: one replica, nothing relayed.
    #[arg(long, env = "SPORE_ACTIVATOR_PEER_SELECTOR", default_value = "")]
    peer_selector: String,
    /// The activator's namespace (the downward API's `metadata.namespace`).
    #[arg(long, env = "POD_NAMESPACE", default_value = "")]
    namespace: String,
    /// This pod's IP (the downward API's `status.podIP`): not a peer of itself.
    #[arg(long, env = "POD_IP")]
    pod_ip: Option<IpAddr>,
    /// Log format: `json` (one object per line) or `text`.
    #[arg(long, env = "SPORE_LOG_FORMAT", default_value = "json")]
    log_format: String,
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
    let settings = Settings {
        cluster_domain: cli.cluster_domain,
        hold_timeout: cli.hold_timeout,
        max_held_per_app: cli.max_held_per_app,
        probe_interval: cli.probe_interval,
        ..Settings::default()
    };
    let peers = match (cli.peer_selector.is_empty(), cli.namespace.is_empty(), cli.pod_ip) {
        (true, _, _) => None,
        (false, false, Some(own_ip)) => Some(PeerSettings {
            namespace: cli.namespace,
            selector: cli.peer_selector,
            own_ip,
            port: cli.admin_listen.port(),
        }),
        (false, _, _) => anyhow::bail!(
            "--peer-selector needs --namespace (POD_NAMESPACE) and --pod-ip (POD_IP): set both from the downward API"
        ),
    };
    let options = Options {
        listen: cli.listen,
        admin_listen: cli.admin_listen,
        settings,
        shutdown_grace: cli.shutdown_grace,
        peers,
    };
    Ok(run(options).await?)
}
