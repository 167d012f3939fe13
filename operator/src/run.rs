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
use tracing::{error, info, warn};

use crate::context::{Context, Settings};
use crate::leader::{LEASE_DURATION, LeaderElection};
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
    let metrics = Arc::new(Metrics::default());
    let readiness = Arc::new(Readiness::default());
    let server = tokio::spawn(serve(options.listen, metrics.clone(), readiness.clone()));
    info!(listen = %options.listen, "serving /metrics, /healthz and /readyz");
    tokio::select! {
        _ = wait_for_api(&client) => {}
        _ = shutdown.clone() => return Ok(()),
    }
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
    tokio::pin!(controllers);
    let outcome = tokio::select! {
        _ = &mut controllers => Ok(()),
        lost = lead_until(election.as_ref(), shutdown.clone()) => match lost {
            Leadership::Lost => Err(anyhow::anyhow!("lost leadership; exiting so a fresh replica takes over")),
            Leadership::ShuttingDown => {
                drain(controllers).await;
                Ok(())
            }
        },
        _ = server_failed(server) => Err(anyhow::anyhow!("the metrics server stopped")),
    };
    if let Some(election) = &election {
        election.release().await;
    }
    info!("stopped");
    outcome
}

/// Waits until the API answers. Exiting instead would put the replica into CrashLoopBackOff
/// after an apiserver outage, and its backoff (up to 5 minutes) would delay the takeover.
async fn wait_for_api(client: &Client) {
    let mut attempts = 0u32;
    while let Err(e) = client.apiserver_version().await {
        if attempts.is_multiple_of(15) {
            warn!(error = %e, "the Kubernetes API does not answer; retrying every 2s");
        }
        attempts += 1;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    if attempts > 0 {
        info!(after = ?Duration::from_secs(2 * u64::from(attempts)), "the Kubernetes API answers");
    }
}

/// How long in-flight reconciles may run after SIGTERM. The Lease is no longer renewed then,
/// so this stays well under its duration: no two leaders, and the standby takes over quickly.
const DRAIN: Duration = Duration::from_secs(8);
const _: () = assert!(DRAIN.as_secs() < LEASE_DURATION.as_secs() * 2 / 3, "the Lease must outlive the drain");

enum Leadership {
    Lost,
    ShuttingDown,
}

/// Keeps the Lease renewed until shutdown starts or the Lease is lost.
async fn lead_until(election: Option<&LeaderElection>, shutdown: Signal) -> Leadership {
    match election {
        Some(election) => tokio::select! {
            _ = election.hold() => Leadership::Lost,
            _ = shutdown => Leadership::ShuttingDown,
        },
        None => {
            shutdown.await;
            Leadership::ShuttingDown
        }
    }
}

async fn drain(controllers: impl Future<Output = ((), ())>) {
    if tokio::time::timeout(DRAIN, controllers).await.is_err() {
        warn!(after = ?DRAIN, "in-flight reconciles did not finish; stopping anyway");
    }
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
