//! Serving a guest for a test: the server, its metrics listener, and a loopback upstream.

use std::net::SocketAddr;
use std::time::Duration;

use spore_shim::Wasm;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::{Run, guest, http_get};

/// A served component with its metrics listener; dropping it stops the server.
pub struct Served {
    pub addr: SocketAddr,
    pub metrics: SocketAddr,
    pub stop: Option<oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<spore_shim::Result<()>>,
    pub captured: spore_shim::Captured,
}

pub async fn serve(run: Run) -> Served {
    serve_draining(run, Duration::ZERO).await
}

/// Serves with a drain: after `stop` it keeps accepting for `drain_delay`.
pub async fn serve_draining(run: Run, drain_delay: Duration) -> Served {
    let wasm = run.wasm();
    serve_wasm(wasm, run, drain_delay).await
}

/// Serves `wasm` in `run`'s sandbox.
pub async fn serve_wasm(wasm: Wasm, run: Run, drain_delay: Duration) -> Served {
    let (sandbox, captured) = run.sandbox();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = spore_shim::bind_metrics("127.0.0.1:0".parse().unwrap(), &sandbox).await.unwrap();
    let (addr, metrics_addr) = (listener.local_addr().unwrap(), metrics.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = spore_shim::Shutdown {
            requested: async {
                let _ = stopped.await;
            },
            drain_delay,
        };
        spore_shim::serve_http(wasm, &sandbox, listener, Some(metrics), shutdown).await
    });
    Served { addr, metrics: metrics_addr, stop: Some(stop), task, captured }
}

impl Served {
    /// Asks the server to stop without waiting for it.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub async fn shutdown(mut self) {
        self.stop();
        tokio::time::timeout(Duration::from_secs(10), &mut self.task).await.expect("drains").unwrap().unwrap();
    }

    /// The value of one series (name and labels, as exposed) on `/metrics`.
    pub async fn metric(&self, series: &str) -> Option<u64> {
        let (status, text) = http_get(self.metrics, "/metrics").await;
        assert_eq!(status, 200, "{text}");
        text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }
}

/// A loopback upstream answering every request with `upstream says hi`; counts requests.
pub async fn upstream() -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (hits, seen) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let _ = hits.send(());
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf).await;
            let body = "upstream says hi";
            let response =
                format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
            let _ = conn.write_all(response.as_bytes()).await;
        }
    });
    (addr, seen)
}

/// `file`'s `/fetch?url=` reaches a loopback upstream only when its host is allowlisted:
/// not without a rule, nor with a rule for another port or host.
pub async fn outbound_reaches_only_allowlisted_hosts(file: &str) {
    let (up, mut hits) = upstream().await;
    let url = format!("/fetch?url=http://{up}/");

    let allowed = serve(guest(file).http_to(&up.to_string())).await;
    assert_eq!(http_get(allowed.addr, &url).await, (200, "upstream 200: upstream says hi".into()));
    assert!(hits.try_recv().is_ok());
    allowed.shutdown().await;

    let other_port = format!("127.0.0.1:{}", up.port() ^ 1);
    for run in [guest(file), guest(file).http_to(&other_port), guest(file).http_to("example.com")] {
        let denied = serve(run).await;
        let (status, body) = http_get(denied.addr, &url).await;
        assert_eq!(status, 502, "{body}");
        assert!(body.contains("HttpRequestDenied"), "{body}");
        denied.shutdown().await;
    }
    assert!(hits.try_recv().is_err(), "a denied request reached the upstream");
}
