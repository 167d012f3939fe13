//! Starting the activator: bind both listeners, connect to the API, start the watches and
//! the admin endpoints, serve the proxy until SIGTERM, then drain for the grace period.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tracing::info;

use crate::admin::{self, Readiness};
use crate::cluster::{self, KubeWaker};
use crate::error::{Error, Result, kube_err};
use crate::metrics::Metrics;
use crate::proxy::{self, Activator};
use crate::relay::{self, PeerSettings, Peers, Relay};
use crate::settings::Settings;

/// Options of `spore-activator`.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where the proxy listens (the port the operator's EndpointSlices point at).
    pub listen: SocketAddr,
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub admin_listen: SocketAddr,
    pub settings: Settings,
    /// How long requests in flight and held may finish after SIGTERM.
    pub shutdown_grace: Duration,
    /// Where the other replicas are, to relay announcements to; `None`: a single replica.
    pub peers: Option<PeerSettings>,
}

async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|source| Error::Listen { addr, source })
}

pub async fn run(options: Options) -> Result<()> {
    let mut term = signal(SignalKind::terminate())
        .map_err(|source| Error::Io { what: "installing the SIGTERM handler", source })?;
    let proxy_listener = bind(options.listen).await?;
    let admin_listener = bind(options.admin_listen).await?;
    let client =
        Client::try_default().await.map_err(kube_err("connecting to the Kubernetes API (in-cluster or KUBECONFIG)"))?;
    let metrics = Arc::new(Metrics::default());
    let readiness = Arc::new(Readiness::default());
    let activator = Activator::new(options.settings.clone(), Arc::new(KubeWaker::new(client.clone())), metrics.clone());
    let peers = Arc::new(Peers::default());
    let relay = Relay::new(peers.clone(), metrics.clone());
    let admin = tokio::spawn(admin::serve(admin_listener, activator.clone(), relay, readiness.clone()));
    let peer_watch = match options.peers.clone() {
        Some(settings) => tokio::spawn(relay::watch(client.clone(), settings, peers)),
        None => {
            info!("no peer selector: announcements are not relayed (one replica)");
            tokio::spawn(async {})
        }
    };
    let watches = tokio::spawn(cluster::watch(client, activator.clone(), readiness.clone()));
    info!(listen = %options.listen, admin = %options.admin_listen, "activator serving; ready once the watches have synced");

    let shutdown = async {
        tokio::select! {
            _ = term.recv() => info!("SIGTERM: shutting down"),
            _ = tokio::signal::ctrl_c() => info!("SIGINT: shutting down"),
        }
        readiness.set(false);
    };
    proxy::serve(proxy_listener, activator, shutdown, options.shutdown_grace).await;
    watches.abort();
    peer_watch.abort();
    admin.abort();
    info!("stopped");
    Ok(())
}
