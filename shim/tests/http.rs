//! Serving the real HTTP component: hello, concurrency cap, deadline, traps, memory,
//! outbound allowlist against a loopback upstream, metrics on their own listener, and
//! graceful shutdown.

mod common;

use std::time::Duration;

use common::serve::{serve, serve_draining, serve_wasm};
use common::{guest, guest_bytes, http_get, http_get_raw};
use spore_shim::{CodeOrigin, Engine, EngineConfig, HttpServer, Tier};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HTTP: &str = "http.wasm";
const IN_FLIGHT: &str = "spore_http_requests_in_flight";
const REJECTED: &str = "spore_http_requests_rejected_total";
const OPTIMIZED: &str = "spore_http_code_optimized";

fn requests_with(code: u16) -> String {
    format!("spore_http_requests_total{{code=\"{code}\"}}")
}

#[tokio::test]
async fn a_server_answers_on_baseline_code_at_once_then_swaps_in_optimized_code() {
    let cache = tempfile::tempdir().unwrap();
    let run = guest(HTTP);
    let engine = Engine::new(EngineConfig { cache_dir: Some(cache.path().into()), ..EngineConfig::default() })
        .unwrap()
        .for_requests(4)
        .unwrap();
    let wasm = engine.load(&guest_bytes(HTTP)).unwrap();
    assert_eq!((wasm.tier(), wasm.origin()), (Tier::Baseline, CodeOrigin::Compiled));
    let served = serve_wasm(wasm.clone(), run, Duration::ZERO).await;
    assert_eq!(http_get(served.addr, "/").await, (200, "hello from spore\n".into()));

    let optimized = wasm.optimized().await.expect("optimized code");
    assert_eq!((optimized.tier(), optimized.origin()), (Tier::Optimized, CodeOrigin::Compiled));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while served.metric(OPTIMIZED).await != Some(1) {
        assert!(tokio::time::Instant::now() < deadline, "optimized code never swapped in");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(http_get(served.addr, "/").await, (200, "hello from spore\n".into()));
    served.shutdown().await;

    // Both tiers were cached (the baseline code behind the first request, not before it);
    // the next server starts on the optimized code.
    let artifacts = std::fs::read_dir(cache.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "cwasm"))
        .count();
    assert_eq!(artifacts, 2, "one artifact per tier");
    let cached = EngineConfig { cache_dir: Some(cache.path().into()), ..EngineConfig::default() };
    let again = Engine::new(cached).unwrap().for_requests(4).unwrap().load(&guest_bytes(HTTP)).unwrap();
    assert_eq!((again.tier(), again.origin()), (Tier::Optimized, CodeOrigin::Cache));
    assert!(again.optimized().await.is_none());
}

#[tokio::test]
async fn a_precompiled_component_starts_on_optimized_code_whatever_its_pool_size() {
    let cache = tempfile::tempdir().unwrap();
    let node = Engine::new(EngineConfig { cache_dir: Some(cache.path().into()), ..EngineConfig::default() }).unwrap();
    let bytes = guest_bytes(HTTP);
    let precompiled = node.for_guest(true, 4).unwrap().precompile(&bytes).unwrap();
    assert_eq!((precompiled.tier(), precompiled.origin()), (Tier::Optimized, CodeOrigin::Compiled));
    assert_eq!(node.for_guest(true, 4).unwrap().precompile(&bytes).unwrap().origin(), CodeOrigin::Cache);
    // The pool's size is no part of the code: a precompile serves apps of any maxConcurrency.
    for max_concurrency in [4, 256] {
        let wasm = node.for_guest(true, max_concurrency).unwrap().load(&bytes).unwrap();
        assert_eq!((wasm.tier(), wasm.origin()), (Tier::Optimized, CodeOrigin::Cache), "{max_concurrency}");
    }
    let entries = std::fs::read_dir(cache.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "cwasm"))
        .count();
    assert_eq!(entries, 1, "no baseline code was compiled");
}

#[tokio::test]
async fn commands_never_start_on_baseline_code_they_would_keep_for_life() {
    let engine = Engine::new(EngineConfig::default()).unwrap().for_requests(4).unwrap();
    for file in ["probe-rs-p2.wasm", "hello-c.wasm"] {
        assert_eq!(engine.load(&guest_bytes(file)).unwrap().tier(), Tier::Optimized, "{file}");
    }
}

#[tokio::test]
async fn serves_hello() {
    let served = serve(guest(HTTP)).await;
    assert_eq!(http_get(served.addr, "/").await, (200, "hello from spore\n".into()));
    assert_eq!(http_get(served.addr, "/nope").await.0, 404);
    served.shutdown().await;
}

/// One request on an open keep-alive connection; returns the response head.
async fn request_on(stream: &mut tokio::net::TcpStream, path: &str) -> String {
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    // The hello body ends the response ("hello from spore\n").
    while !response.ends_with(b"spore\n") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed mid-response: {}", String::from_utf8_lossy(&response));
        response.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn a_draining_server_keeps_accepting_then_closes_every_connection_after_its_response() {
    let mut served = serve_draining(guest(HTTP), Duration::from_millis(1500)).await;
    let mut kept_alive = tokio::net::TcpStream::connect(served.addr).await.unwrap();
    let before = request_on(&mut kept_alive, "/").await;
    assert!(!before.contains("connection: close"), "{before}");

    served.stop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Within the drain delay: new connections are still served, and told to close.
    let fresh = http_get_raw(served.addr, "/").await;
    assert!(fresh.starts_with("HTTP/1.1 200") && fresh.contains("connection: close"), "{fresh}");
    // The kept-alive client gets its answer, then the server closes the connection cleanly.
    let last = request_on(&mut kept_alive, "/").await;
    assert!(last.starts_with("HTTP/1.1 200") && last.contains("connection: close"), "{last}");
    let mut rest = Vec::new();
    assert_eq!(kept_alive.read_to_end(&mut rest).await.unwrap(), 0, "EOF after the last response");

    // After the delay the listener is gone and the server has ended.
    tokio::time::timeout(Duration::from_secs(5), &mut served.task).await.expect("drained").unwrap().unwrap();
    assert!(tokio::net::TcpStream::connect(served.addr).await.is_err(), "still accepting after the drain");
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
    assert_eq!(served.metric(IN_FLIGHT).await, Some(2));
    assert_eq!(served.metric(REJECTED).await, Some(1));
    assert_eq!(served.metric(&requests_with(503)).await, Some(1));
    for request in slow {
        assert_eq!(request.await.unwrap(), (200, "slept 1500\n".into()));
    }
    assert_eq!(http_get(addr, "/").await.0, 200, "permits are returned");
    assert_eq!(served.metric(IN_FLIGHT).await, Some(0));
    assert_eq!(served.metric(&requests_with(200)).await, Some(3));
    served.shutdown().await;
}

#[tokio::test]
async fn metrics_count_answers_by_status_code() {
    let served = serve(guest(HTTP)).await;
    assert_eq!((served.metric(IN_FLIGHT).await, served.metric(REJECTED).await), (Some(0), Some(0)));
    for path in ["/", "/", "/nope", "/trap"] {
        http_get(served.addr, path).await;
    }
    assert_eq!(served.metric(&requests_with(200)).await, Some(2));
    assert_eq!(served.metric(&requests_with(404)).await, Some(1));
    assert_eq!(served.metric(&requests_with(500)).await, Some(1));
    assert_eq!(served.metric(IN_FLIGHT).await, Some(0), "every request returned its place");
    served.shutdown().await;
}

#[tokio::test]
async fn the_metrics_listener_serves_only_metrics_and_the_guest_never_sees_it() {
    let served = serve(guest(HTTP)).await;
    let response = http_get_raw(served.metrics, "/metrics").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("content-type: application/openmetrics-text"), "{response}");
    assert!(response.ends_with("# EOF\n"), "{response}");
    assert_eq!(http_get(served.metrics, "/").await.0, 404);
    assert_eq!(http_get(served.metrics, "/metrics/x").await.0, 404);
    assert_eq!(served.metric(&requests_with(404)).await, None, "scrapes are not guest requests");
    assert_eq!(http_get(served.addr, "/metrics").await, (404, "not found\n".into()), "the guest's own 404");
    assert_eq!(served.metric(&requests_with(404)).await, Some(1));
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

#[tokio::test]
async fn outbound_requests_reach_only_allowlisted_hosts() {
    common::serve::outbound_reaches_only_allowlisted_hosts(HTTP).await;
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests_then_stops_metrics() {
    let mut served = serve(guest(HTTP)).await;
    let addr = served.addr;
    let in_flight = tokio::spawn(http_get(addr, "/sleep?ms=800"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    served.stop();
    let closed = async {
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), closed).await.expect("the guest's port closes at shutdown");
    assert_eq!(served.metric(IN_FLIGHT).await, Some(1), "metrics stay up while requests drain");
    let metrics = served.metrics;
    served.shutdown().await;
    assert_eq!(in_flight.await.unwrap(), (200, "slept 800\n".into()));
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "still accepting after shutdown");
    assert!(tokio::net::TcpStream::connect(metrics).await.is_err(), "metrics still served after shutdown");
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
    let err = HttpServer::new(&wasm, &sandbox).err().expect("refused").to_string();
    assert!(err.contains("cannot serve HTTP"), "{err}");
}
