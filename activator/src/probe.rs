//! Probing pods that are not Ready yet, straight at their IP: the activator does not wait
//! for the kubelet's readiness or the Endpoints. One loop per pod, every `--probe-interval`
//! while requests wait (backing off to once a second while none do), until the pod answers,
//! goes away, or the app no longer needs it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Empty;
use hyper::Request;
use hyper::body::Bytes;
use hyper::header;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tracing::debug;

use crate::app::{AppState, ProbeTarget};

/// Slowest probe rate while no request waits (the app has no backend yet).
const IDLE_PROBE_MAX: Duration = Duration::from_secs(1);

/// The pause after `failures` failed probes: `interval` while requests wait, else doubling
/// from it up to a second.
pub fn next_probe_delay(urgent: bool, failures: u32, interval: Duration) -> Duration {
    if urgent {
        return interval;
    }
    interval.saturating_mul(2u32.saturating_pow(failures.min(16))).min(IDLE_PROBE_MAX.max(interval))
}

/// Probes `pod` of `app` until it answers or needs no probe any more.
pub async fn probe_loop(app: Arc<AppState>, pod: String, interval: Duration, timeout: Duration) {
    let mut failures = 0u32;
    loop {
        let notified = app.probe_now().notified();
        let mut notified = std::pin::pin!(notified);
        notified.as_mut().enable();
        let Some(target) = app.probe_target(&pod) else { return };
        let started = Instant::now();
        if probe(&target, timeout).await {
            debug!(app = %app.key(), pod, addr = %target.addr, failures, "pod answered a probe");
            app.probe_succeeded(&pod, &target.uid);
            return;
        }
        failures = failures.saturating_add(1);
        let delay = next_probe_delay(target.urgent, failures, interval);
        tokio::select! {
            _ = tokio::time::sleep_until(started + delay) => {}
            _ = notified => {}
        }
    }
}

/// Whether `target` answers within `timeout`: a 2xx or 3xx to a GET of the readiness path,
/// or else an accepted TCP connection.
pub async fn probe(target: &ProbeTarget, timeout: Duration) -> bool {
    let attempt = async {
        match &target.http_path {
            None => TcpStream::connect(target.addr).await.is_ok(),
            Some(path) => http_get(target.addr, path).await.unwrap_or(false),
        }
    };
    tokio::time::timeout(timeout, attempt).await.unwrap_or(false)
}

async fn http_get(addr: SocketAddr, path: &str) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream)).await?;
    let request = Request::get(path)
        .header(header::HOST, addr.to_string())
        .header(header::USER_AGENT, "spore-activator")
        .header(header::CONNECTION, "close")
        .body(Empty::new())?;
    let response = sender.send_request(request);
    let mut response = std::pin::pin!(response);
    // The connection must be driven for the response to arrive; when it ends first, the
    // response (or its error) is already decided.
    let response = tokio::select! {
        biased;
        response = &mut response => response?,
        _ = conn => response.await?,
    };
    let status = response.status();
    Ok(status.is_success() || status.is_redirection())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_run_at_full_rate_only_while_requests_wait() {
        let ms = Duration::from_millis;
        for (urgent, failures, want) in [
            (true, 1, ms(25)),
            (true, 100, ms(25)),
            (false, 1, ms(50)),
            (false, 2, ms(100)),
            (false, 5, ms(800)),
            (false, 6, ms(1000)),
            (false, 1000, ms(1000)),
        ] {
            assert_eq!(next_probe_delay(urgent, failures, ms(25)), want, "urgent {urgent}, {failures} failures");
        }
        assert_eq!(
            next_probe_delay(false, 3, Duration::from_secs(2)),
            Duration::from_secs(2),
            "never faster than asked"
        );
    }

    #[tokio::test]
    async fn tcp_and_http_probes() {
        use hyper::server::conn::http1;
        use hyper::service::service_fn;

        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                tokio::spawn(async move {
                    let service = service_fn(|req: Request<hyper::body::Incoming>| async move {
                        let status = match req.uri().path() {
                            "/ok" => 200,
                            "/moved" => 302,
                            _ => 503,
                        };
                        Ok::<_, std::convert::Infallible>(
                            hyper::Response::builder().status(status).body(Empty::<Bytes>::new()).unwrap(),
                        )
                    });
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        let target = |addr, path: Option<&str>| ProbeTarget {
            uid: "u".into(),
            addr,
            http_path: path.map(str::to_string),
            urgent: true,
        };
        let timeout = Duration::from_millis(250);
        assert!(probe(&target(open, None), timeout).await);
        assert!(!probe(&target(closed, None), timeout).await);
        assert!(probe(&target(open, Some("/ok")), timeout).await);
        assert!(probe(&target(open, Some("/moved")), timeout).await);
        assert!(!probe(&target(open, Some("/failing")), timeout).await);
        assert!(!probe(&target(closed, Some("/ok")), timeout).await);
    }
}
