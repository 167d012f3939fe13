//! Serving the real HTTP component: hello, concurrency cap, deadline, traps, memory,
//! outbound allowlist against a loopback upstream, and graceful shutdown.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Run, engine, guest, http_get};
use spore_shim::HttpServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const HTTP: &str = "http.wasm";

/// A served component; dropping it stops the server.
struct Served {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<spore_shim::Result<()>>,
    captured: spore_shim::Captured,
}

async fn serve(run: Run) -> Served {
    let wasm = run.wasm();
    let (sandbox, captured) = run.sandbox();
    let server = HttpServer::new(engine(), &wasm, &sandbox).expect("server");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server
            .serve(listener, async {
                let _ = stopped.await;
            })
            .await
    });
    Served { addr, stop: Some(stop), task, captured }
}

impl Served {
    async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), &mut self.task).await.expect("drains").unwrap().unwrap();
    }
}

#[tokio::test]
async fn serves_hello() {
    let served = serve(guest(HTTP)).await;
    assert_eq!(http_get(served.addr, "/").await, (200, "hello from spore\n".into()));
    assert_eq!(http_get(served.addr, "/nope").await.0, 404);
    served.shutdown().await;
}

#[tokio::test]
async fn requests_past_max_concurrency_get_503() {
    let served = serve(guest(HTTP).max_concurrency(2)).await;
    let addr = served.addr;
    let slow: Vec<_> = (0..2).map(|_| tokio::spawn(http_get(addr, "/sleep?ms=1500"))).collect();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, body) = http_get(addr, "/").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("maxConcurrency (2)"), "{body}");
    for request in slow {
        assert_eq!(request.await.unwrap(), (200, "slept 1500\n".into()));
    }
    assert_eq!(http_get(addr, "/").await.0, 200, "permits are returned");
    served.shutdown().await;
}

#[tokio::test]
async fn a_spinning_request_is_cut_at_the_deadline_with_504() {
    let served = serve(guest(HTTP).timeout(Duration::from_millis(500))).await;
    let (status, body) = http_get(served.addr, "/loop").await;
    assert_eq!((status, body.as_str()), (504, "spore: deadline exceeded after 500ms\n"));
    assert_eq!(http_get(served.addr, "/").await.0, 200, "the server survives");
    served.shutdown().await;
}

#[tokio::test]
async fn a_trapping_request_gets_500_and_the_server_survives() {
    let served = serve(guest(HTTP)).await;
    let (status, body) = http_get(served.addr, "/trap").await;
    assert_eq!(status, 500);
    assert!(body.starts_with("spore: guest trapped"), "{body}");
    assert_eq!(http_get(served.addr, "/").await.0, 200);
    served.shutdown().await;
}

#[tokio::test]
async fn the_memory_limit_holds_per_request() {
    let served = serve(guest(HTTP).memory(32 << 20)).await;
    assert_eq!(http_get(served.addr, "/alloc?mb=8").await, (200, "allocated 8 MiB\n".into()));
    let (status, body) = http_get(served.addr, "/alloc?mb=64").await;
    assert_eq!(status, 507, "{body}");
    assert!(body.starts_with("alloc failed after"), "{body}");
    served.shutdown().await;
}

#[tokio::test]
async fn requests_see_only_declared_env() {
    let served = serve(guest(HTTP).env("GREETING", "hi")).await;
    assert_eq!(http_get(served.addr, "/env?name=GREETING").await, (200, "GREETING=hi\n".into()));
    assert_eq!(http_get(served.addr, "/env?name=PATH").await.0, 404);
    served.shutdown().await;
}

/// A loopback upstream answering every request with `upstream says hi`; counts requests.
async fn upstream() -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<()>) {
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

#[tokio::test]
async fn outbound_requests_reach_only_allowlisted_hosts() {
    let (up, mut hits) = upstream().await;
    let url = format!("/fetch?url=http://{up}/");

    let allowed = serve(guest(HTTP).http_to(&up.to_string())).await;
    assert_eq!(http_get(allowed.addr, &url).await, (200, "upstream 200: upstream says hi".into()));
    assert!(hits.try_recv().is_ok());
    allowed.shutdown().await;

    let other_port = format!("127.0.0.1:{}", up.port() ^ 1);
    for run in [guest(HTTP), guest(HTTP).http_to(&other_port), guest(HTTP).http_to("example.com")] {
        let denied = serve(run).await;
        let (status, body) = http_get(denied.addr, &url).await;
        assert_eq!(status, 502, "{body}");
        assert!(body.contains("HttpRequestDenied"), "{body}");
        denied.shutdown().await;
    }
    assert!(hits.try_recv().is_err(), "a denied request reached the upstream");
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests() {
    let served = serve(guest(HTTP)).await;
    let addr = served.addr;
    let in_flight = tokio::spawn(http_get(addr, "/sleep?ms=800"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    served.shutdown().await;
    assert_eq!(in_flight.await.unwrap(), (200, "slept 800\n".into()));
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "still accepting after shutdown");
}

#[tokio::test]
async fn guest_output_goes_to_the_given_sinks() {
    let served = serve(guest(HTTP)).await;
    http_get(served.addr, "/trap").await;
    let stderr = served.captured.stderr();
    assert!(stderr.contains("trap requested"), "{stderr}");
    served.shutdown().await;
}

#[tokio::test]
async fn a_command_cannot_be_served() {
    let run = guest("probe-c.wasm");
    let (sandbox, _) = run.sandbox();
    let wasm = common::load("probe-c.wasm");
    let err = HttpServer::new(engine(), &wasm, &sandbox).err().expect("refused").to_string();
    assert!(err.contains("cannot serve HTTP"), "{err}");
}
