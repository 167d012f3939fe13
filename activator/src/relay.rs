//! Relaying announcements to the other activator replicas. A pod's shim announces itself to
//! the activator Service, which lands on one replica, while the app's held requests may wait
//! on any of them: the replica that accepts an announcement from the pod itself passes it on
//! to every peer, with the address it saw in [`RELAYED_ADDRESS`]. A peer takes that address
//! only from a connection that comes from another replica, checks the announcement as its
//! own ([`crate::announce::check`]) and relays nothing further.
//!
//! The peers are the activator's own pods (a label selector in its namespace), terminating
//! ones included: they still hold requests while they drain.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use futures::StreamExt;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, StatusCode, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, reflector};
use kube::{Api, Client as KubeClient};
use tracing::{debug, info, warn};

use crate::announce::ANNOUNCE_PATH;
use crate::metrics::{Metrics, RelayOutcome};

/// The header of a relayed announcement: the pod's address as the first replica saw it.
pub const RELAYED_ADDRESS: &str = "spore-relayed-address";

/// A relay is tried this often: a peer whose pod watch has not seen the pod yet answers 404.
const ATTEMPTS: u32 = 4;
const RETRY_PAUSE: Duration = Duration::from_millis(50);
/// One attempt (connect, send, answer) gives up after this long.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(500);

/// The other activator replicas' admin addresses.
#[derive(Debug, Default)]
pub struct Peers(RwLock<BTreeSet<SocketAddr>>);

impl Peers {
    pub fn set(&self, peers: BTreeSet<SocketAddr>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = peers;
    }

    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.0.read().unwrap_or_else(PoisonError::into_inner).iter().copied().collect()
    }

    /// Whether a connection from `ip` comes from a peer.
    pub fn is_peer(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.read().unwrap_or_else(PoisonError::into_inner).iter().any(|peer| peer.ip() == ip)
    }
}

/// The admin addresses of the activator pods but this one (`own_ip`): each pod with an IP
/// that has not finished.
pub fn peer_addrs<'a>(pods: impl IntoIterator<Item = &'a Pod>, own_ip: IpAddr, port: u16) -> BTreeSet<SocketAddr> {
    pods.into_iter()
        .filter_map(|pod| {
            let status = pod.status.as_ref()?;
            if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
                return None;
            }
            let ip: IpAddr = status.pod_ip.as_deref()?.parse().ok()?;
            (ip != own_ip).then_some(SocketAddr::new(ip, port))
        })
        .collect()
}

/// Where this replica finds its peers.
#[derive(Clone, Debug)]
pub struct PeerSettings {
    pub namespace: String,
    /// Selects the activator's pods, e.g. `app.kubernetes.io/component=activator`.
    pub selector: String,
    /// This pod's IP: not a peer of itself.
    pub own_ip: IpAddr,
    /// The peers' admin port (every replica listens on the same one).
    pub port: u16,
}

/// Passes accepted announcements on to the peers.
pub struct Relay {
    peers: Arc<Peers>,
    client: Client<HttpConnector, Full<Bytes>>,
    metrics: Arc<Metrics>,
}

impl Relay {
    pub fn new(peers: Arc<Peers>, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self { peers, client: crate::forward::client(ATTEMPT_TIMEOUT), metrics })
    }

    pub fn peers(&self) -> &Peers {
        &self.peers
    }

    /// Sends the announcement `body`, accepted from the pod at `address`, to every peer in
    /// the background.
    pub fn relay(self: &Arc<Self>, body: Bytes, address: IpAddr) {
        for peer in self.peers.addrs() {
            let (relay, body) = (self.clone(), body.clone());
            tokio::spawn(async move {
                let outcome = relay.deliver(peer, body, address).await;
                relay.metrics.relay(outcome);
            });
        }
    }

    async fn deliver(&self, peer: SocketAddr, body: Bytes, address: IpAddr) -> RelayOutcome {
        for attempt in 1..=ATTEMPTS {
            match self.send(peer, body.clone(), address).await {
                Ok(StatusCode::NO_CONTENT) => return RelayOutcome::Delivered,
                // The peer's pod watch may be a moment behind; anything else is final.
                Ok(StatusCode::NOT_FOUND) | Err(_) if attempt < ATTEMPTS => tokio::time::sleep(RETRY_PAUSE).await,
                Ok(status) => {
                    debug!(%peer, %status, "relayed announcement refused");
                    return RelayOutcome::Refused;
                }
                Err(e) => {
                    debug!(%peer, error = %e, "relaying an announcement failed");
                    return RelayOutcome::Failed;
                }
            }
        }
        RelayOutcome::Failed
    }

    async fn send(&self, peer: SocketAddr, body: Bytes, address: IpAddr) -> Result<StatusCode, String> {
        let request = Request::post(format!("http://{peer}{ANNOUNCE_PATH}"))
            .header(header::CONTENT_TYPE, "application/json")
            .header(RELAYED_ADDRESS, address.to_string())
            .body(Full::new(body))
            .map_err(|e| e.to_string())?;
        match tokio::time::timeout(ATTEMPT_TIMEOUT, self.client.request(request)).await {
            Ok(Ok(response)) => Ok(response.status()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {ATTEMPT_TIMEOUT:?}")),
        }
    }
}

/// Keeps `peers` filled from a watch of the activator's pods until dropped.
pub async fn watch(client: KubeClient, settings: PeerSettings, peers: Arc<Peers>) {
    let api = Api::<Pod>::namespaced(client, &settings.namespace);
    let (store, writer) = reflector::store();
    let events = reflector(writer, watcher::watcher(api, watcher::Config::default().labels(&settings.selector)))
        .default_backoff();
    let mut events = std::pin::pin!(events);
    let mut last = None;
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Init | Event::InitApply(_)) => continue,
            Ok(_) => {}
            Err(e) => {
                warn!(error = %e, "watching the activator's own pods failed; retrying");
                continue;
            }
        }
        let now = peer_addrs(store.state().iter().map(|p| p.as_ref()), settings.own_ip, settings.port);
        if last.as_ref() != Some(&now) {
            info!(peers = ?now, "announcements are relayed to these peers");
            peers.set(now.clone());
            last = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(ip: Option<&str>, phase: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "a", "namespace": "spore-system"},
            "status": {"podIP": ip, "phase": phase}
        }))
        .unwrap()
    }

    #[test]
    fn the_peers_are_the_other_activator_pods_that_have_not_finished() {
        let own: IpAddr = "198.18.1.2".parse().unwrap();
        let pods = [
            pod(Some("198.18.1.2"), "Running"),
            pod(Some("198.18.2.3"), "Running"),
            pod(Some("198.18.2.4"), "Running"),
            pod(None, "Pending"),
            pod(Some("198.18.2.5"), "Succeeded"),
            pod(Some("198.18.2.6"), "Failed"),
            pod(Some("not an ip"), "Running"),
        ];
        let peers = peer_addrs(&pods, own, 9090);
        let want: BTreeSet<SocketAddr> =
            ["198.18.2.3:9090", "198.18.2.4:9090"].iter().map(|a| a.parse().unwrap()).collect();
        assert_eq!(peers, want);

        let known = Peers::default();
        known.set(peers);
        assert!(known.is_peer("198.18.2.3".parse().unwrap()));
        assert!(known.is_peer("::ffff:198.18.2.4".parse().unwrap()), "an IPv4-mapped peer is the IPv4 one");
        assert!(!known.is_peer(own), "not a peer of itself");
        assert!(!known.is_peer("198.18.2.5".parse().unwrap()));
    }
}
