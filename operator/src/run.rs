//! Starting the operator: the API client, the HTTP endpoints, leader election, then both
//! controllers until SIGTERM (graceful: in-flight reconciles finish, the Lease is released).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures::FutureExt;
use futures::future::Shared;
use k8s_openapi::api::coordination::v1::Lease;
use kube::runtime::events::Reporter;
use kube::{Api, Client};
use spore_crds::WasmRuntime;
use tracing::{error, info};

use crate::context::{Context, Settings};
use crate::leader::LeaderElection;
use crate::metrics::Metrics;
use crate::server::{Readiness, serve};
use crate::{app, runtime};

/// Options of `spore-operator run`.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub settings: Settings,
    /// This replica's name, for the Lease and Events.
    pub identity: String,
    pub listen: SocketAddr,
    /// Lease name; `None` disables leader election (one replica only).
    pub lease: Option<String>,
}

type Signal = Shared<Pin<Box<dyn Future<Output = ()> + Send + Sync>>>;

fn shutdown_signal() -> Signal {
    let signal: Pin<Box<dyn Future<Output = ()> + Send + Sync>> = Box::pin(async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => info!("SIGTERM: shutting down"),
            _ = tokio::signal::ctrl_c() => info!("SIGINT: shutting down"),
        }
    });
    signal.shared()
}

pub async fn run(options: RunOptions) -> anyhow::Result<()> {
    let shutdown = shutdown_signal();
    let client = Client::try_default().await.context("connecting to the Kubernetes API (in-cluster or KUBECONFIG)")?;
    client.apiserver_version().await.context("the Kubernetes API does not answer")?;
    let metrics = Arc::new(Metrics::default());
    let readiness = Arc::new(Readiness::default());
    let server = tokio::spawn(serve(options.listen, metrics.clone(), readiness.clone()));
    info!(listen = %options.listen, "serving /metrics, /healthz and /readyz");
    readiness.set(true);

    let election = options.lease.as_ref().map(|lease| {
        LeaderElection::new(
            Api::<Lease>::namespaced(client.clone(), &options.settings.installer.namespace),
            lease,
            &options.identity,
        )
    });
    if let Some(election) = &election {
        tokio::select! {
            acquired = election.acquire() => acquired?,
            _ = shutdown.clone() => return Ok(()),
        }
    }

    let reporter = Reporter { controller: "spore-operator".into(), instance: Some(options.identity.clone()) };
    let ctx = Arc::new(Context::new(client, reporter, metrics, options.settings.clone()));
    let controllers =
        futures::future::join(app::run(ctx.clone(), shutdown.clone()), runtime::run(ctx, shutdown.clone()));
    let lost = async {
        match &election {
            Some(election) => election.hold().await,
            None => futures::future::pending().await,
        }
    };
    let outcome = tokio::select! {
        _ = controllers => Ok(()),
        _ = lost => Err(anyhow::anyhow!("lost leadership; exiting so a fresh replica takes over")),
        _ = server_failed(server) => Err(anyhow::anyhow!("the metrics server stopped")),
    };
    if let Some(election) = &election {
        election.release().await;
    }
    info!("stopped");
    outcome
}

async fn server_failed(server: tokio::task::JoinHandle<std::io::Result<()>>) {
    match server.await {
        Ok(Err(e)) => error!(error = %e, "metrics server failed"),
        Ok(Ok(())) => {}
        Err(e) => error!(error = %e, "metrics server panicked"),
    }
}

/// `spore-operator cleanup`, Helm's pre-delete hook: deletes every WasmRuntime and waits
/// while the (still running) operator uninstalls them from the nodes.
pub async fn cleanup(timeout: Duration) -> anyhow::Result<()> {
    let client = Client::try_default().await.context("connecting to the Kubernetes API")?;
    let api = Api::<WasmRuntime>::all(client);
    api.delete_collection(&Default::default(), &Default::default()).await.context("deleting WasmRuntimes")?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let left = api.list_metadata(&Default::default()).await.context("listing WasmRuntimes")?.items;
        if left.is_empty() {
            info!("every WasmRuntime is uninstalled");
            return Ok(());
        }
        let names: Vec<String> = left.iter().filter_map(|r| r.metadata.name.clone()).collect();
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "WasmRuntimes {names:?} still uninstalling after {timeout:?}; see `kubectl describe wasmruntime`"
        );
        info!(?names, "waiting for uninstall");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
