//! The admin listener: `/metrics` (Prometheus text), `/healthz` (the process answers),
//! `/readyz` (the watches have synced and the activator is not shutting down) and
//! `POST /v1/announce` (pods saying they serve, [`crate::announce`], directly or relayed by
//! a peer replica, [`crate::relay`]).

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tracing::debug;

use crate::announce::{ANNOUNCE_PATH, MAX_BODY, Refusal};
use crate::metrics::{AnnounceOutcome, CONTENT_TYPE};
use crate::proxy::{ACCEPT_BACKOFF, Activator};
use crate::relay::{RELAYED_ADDRESS, Relay};

/// Whether `/readyz` answers 200.
#[derive(Default)]
pub struct Readiness(AtomicBool);

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Serves the admin endpoints on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, activator: Arc<Activator>, relay: Arc<Relay>, readiness: Arc<Readiness>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, say: do not spin.
                debug!(error = %e, "admin accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let (activator, relay, readiness) = (activator.clone(), relay.clone(), readiness.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let (activator, relay, readiness) = (activator.clone(), relay.clone(), readiness.clone());
                async move {
                    let response = if req.uri().path() == ANNOUNCE_PATH {
                        announce(req, peer.ip(), &activator, &relay).await
                    } else {
                        respond(&req, &activator, &readiness)
                    };
                    Ok::<_, Infallible>(response)
                }
            });
            if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                debug!(error = %e, "admin connection failed");
            }
        });
    }
}

/// `POST /v1/announce`: 204 once the pod's address is recorded, else the refusal's status
/// and one line. The address is the connection's peer, never anything in the body; a peer
/// replica relays the address it saw in a header, which no one else may send.
async fn announce(
    req: Request<Incoming>,
    peer: IpAddr,
    activator: &Arc<Activator>,
    relay: &Arc<Relay>,
) -> Response<Full<Bytes>> {
    if req.method() != Method::POST {
        return text(StatusCode::METHOD_NOT_ALLOWED, "announcements are POSTed\n".into());
    }
    let relayed = match relayed_address(&req, peer, relay) {
        Ok(relayed) => relayed,
        Err(refusal) => {
            activator.metrics().announcement(refusal.outcome());
            return refusal_response(&refusal);
        }
    };
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => {
            activator.metrics().announcement(AnnounceOutcome::Invalid);
            let refusal = Refusal::Invalid(format!("cannot read the body (at most {MAX_BODY} bytes): {e}"));
            return refusal_response(&refusal);
        }
    };
    match activator.announce(&body, relayed.unwrap_or(peer)) {
        Ok(address) => {
            if relayed.is_none() {
                relay.relay(body, address);
            }
            let mut response = Response::new(Full::default());
            *response.status_mut() = StatusCode::NO_CONTENT;
            response
        }
        Err(refusal) => refusal_response(&refusal),
    }
}

/// The address a peer replica relays, `None` for a pod's own announcement.
fn relayed_address(req: &Request<Incoming>, peer: IpAddr, relay: &Relay) -> Result<Option<IpAddr>, Refusal> {
    let Some(value) = req.headers().get(RELAYED_ADDRESS) else { return Ok(None) };
    if !relay.peers().is_peer(peer) {
        return Err(Refusal::NotAPeer(peer.to_canonical()));
    }
    let address = value.to_str().ok().and_then(|v| v.trim().parse().ok());
    address
        .map(Some)
        .ok_or_else(|| Refusal::Invalid(format!("the {RELAYED_ADDRESS} header is not an IP address: {value:?}")))
}

fn refusal_response(refusal: &Refusal) -> Response<Full<Bytes>> {
    text(StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::BAD_REQUEST), refusal.message())
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

fn respond(req: &Request<Incoming>, activator: &Activator, readiness: &Readiness) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match req.uri().path() {
        "/metrics" => (StatusCode::OK, CONTENT_TYPE, activator.metrics().encode()),
        "/healthz" => (StatusCode::OK, "text/plain; charset=utf-8", "ok\n".to_string()),
        "/readyz" if readiness.is_ready() => (StatusCode::OK, "text/plain; charset=utf-8", "ok\n".to_string()),
        "/readyz" => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain; charset=utf-8",
            "not ready: watches syncing or shutting down\n".into(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found; try /metrics, /healthz, /readyz or POST /v1/announce\n".into(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    response
}
