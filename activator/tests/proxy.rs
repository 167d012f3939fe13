//! The real proxy and admin listener on loopback, with an in-memory index, a fake waker and
//! tiny hyper backends: holding, waking, probing, forwarding, timeouts, overflow, unknown
//! hosts, pods that announce themselves before their status has an IP, and announcements
//! relayed between two replicas.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use spore_activator::admin::Readiness;
use spore_activator::metrics::Metrics;
use spore_activator::relay::{Peers, RELAYED_ADDRESS, Relay};
use spore_activator::{
    Activator, AppInfo, AppKey, AppWaker, Change, ConditionInfo, PodInfo, PortInfo, ServiceInfo, Settings, WakeFuture,
    Woke,
};
use tokio::net::{TcpListener, TcpSocket};
use tokio::time::Instant;

/// Counts wakes; changes nothing (the index learns of a new scale from the watch, later).
#[derive(Default)]
struct FakeWaker(AtomicUsize);

impl FakeWaker {
    fn calls(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl AppWaker for FakeWaker {
    fn wake<'a>(&'a self, _: &'a AppKey) -> WakeFuture<'a> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Ok(Woke::Scaled) })
    }
}

struct Proxy {
    activator: Arc<Activator>,
    waker: Arc<FakeWaker>,
    addr: SocketAddr,
    /// The admin listener (metrics, announcements).
    admin: SocketAddr,
    /// The replicas it relays announcements to (none unless a test adds some).
    peers: Arc<Peers>,
}

impl Proxy {
    async fn start(settings: Settings) -> Self {
        Self::serve(settings, std::future::pending::<()>(), Duration::ZERO).await.0
    }

    /// Serves until `shutdown`, then drains for up to `grace`; the handle ends when done.
    async fn serve(
        settings: Settings,
        shutdown: impl Future<Output = ()> + Send + 'static,
        grace: Duration,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let waker = Arc::new(FakeWaker::default());
        let metrics = Arc::new(Metrics::default());
        let activator = Activator::new(settings, waker.clone(), metrics.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(spore_activator::serve(listener, activator.clone(), shutdown, grace));
        let admin_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = admin_listener.local_addr().unwrap();
        let peers = Arc::new(Peers::default());
        let relay = Relay::new(peers.clone(), metrics);
        tokio::spawn(spore_activator::admin::serve(
            admin_listener,
            activator.clone(),
            relay,
            Arc::new(Readiness::default()),
        ));
        (Self { activator, waker, addr, admin, peers }, server)
    }

    /// POSTs `body` to the admin listener's /v1/announce (from 127.0.0.1).
    async fn announce(&self, body: serde_json::Value) -> (StatusCode, String) {
        let request = Request::post("/v1/announce").body(Full::new(Bytes::from(body.to_string()))).unwrap();
        send(self.admin, request).await
    }

    /// Adds the WasmApp `apps/<name>` and its Service (cluster IP 10.96.0.10, port 80 to
    /// `target_port`).
    fn add_app(&self, info: AppInfo, target_port: u16) {
        let name = info.key.name.clone();
        self.activator.update(Change::App(info));
        self.activator.update(Change::Service(ServiceInfo {
            namespace: "apps".into(),
            name: name.clone(),
            app: name,
            cluster_ips: vec!["10.96.0.10".parse().unwrap()],
            ports: vec![PortInfo { port: 80, target_port }],
        }));
    }

    fn held(&self, app: &str) -> usize {
        self.activator.index().app(&AppKey::new("apps", app)).map_or(0, |a| a.held())
    }

    fn metrics(&self) -> String {
        self.activator.metrics().encode()
    }

    async fn get(&self, host: &str, path: &str) -> (StatusCode, String) {
        send(self.addr, Request::get(path).header("host", host).body(Full::default()).unwrap()).await
    }
}

fn app(name: &str, replicas: Option<i32>) -> AppInfo {
    AppInfo { key: AppKey::new("apps", name), replicas, ..AppInfo::default() }
}

fn pod(app: &str, name: &str, ip: &str, ready: Option<bool>) -> PodInfo {
    PodInfo {
        namespace: "apps".into(),
        name: name.into(),
        uid: format!("uid-{name}"),
        app: app.into(),
        ip: Some(ip.parse().unwrap()),
        ready,
        ..PodInfo::default()
    }
}

async fn send(addr: SocketAddr, mut request: Request<Full<Bytes>>) -> (StatusCode, String) {
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    *request.uri_mut() = format!("http://{addr}{}", request.uri()).parse().unwrap();
    let response = client.request(request).await.expect("the proxy answers");
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// A backend that answers `<name> <METHOD> <path?query> x-test=<header> host=<host> body=<body>`.
async fn backend(listener: TcpListener, name: &'static str) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { return };
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| async move {
                let header = |h: &str| req.headers().get(h).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                let head = format!(
                    "{name} {} {} x-test={} host={}",
                    req.method(),
                    req.uri().path_and_query().map_or("", |p| p.as_str()),
                    header("x-test"),
                    header("host")
                );
                let body = req.into_body().collect().await.unwrap().to_bytes();
                let text = format!("{head} body={}", String::from_utf8_lossy(&body));
                Ok::<_, Infallible>(
                    Response::builder().header("x-backend", name).body(Full::new(Bytes::from(text))).unwrap(),
                )
            });
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

async fn listening_backend(name: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(backend(listener, name));
    port
}

async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn assert_metric(text: &str, line: &str) {
    assert!(text.lines().any(|l| l == line), "{line} missing from:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_requests_wake_the_app_once_and_go_to_the_first_pod_that_answers() {
    let proxy = Proxy::start(Settings { hold_timeout: Duration::from_secs(20), ..Settings::default() }).await;
    // The pod's port, bound but not listening yet: connects are refused until it listens.
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = socket.local_addr().unwrap().port();
    proxy.add_app(app("hello", Some(0)), port);

    let hosts = ["hello.apps", "hello.apps.svc:80", "hello.apps.svc.cluster.local", "10.96.0.10:80", "hello"];
    let requests: Vec<_> = hosts
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let addr = proxy.addr;
            let request = Request::get(format!("/r{i}")).header("host", *host).body(Full::default()).unwrap();
            tokio::spawn(send(addr, request))
        })
        .collect();
    eventually("every request is held", || proxy.held("hello") == 5).await;
    assert_metric(&proxy.metrics(), r#"spore_activator_requests_held{namespace="apps",app="hello"} 5"#);
    assert_eq!(proxy.waker.calls(), 1, "one wake for all the held requests");

    // The pod appears (not Ready), its server still not listening: probes fail, requests wait.
    proxy.activator.update(Change::Pod(pod("hello", "hello-1", "127.0.0.1", Some(false))));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(proxy.held("hello"), 5);
    let listener = socket.listen(64).unwrap();
    let listening = Instant::now();
    tokio::spawn(backend(listener, "hello-1"));

    for (i, request) in requests.into_iter().enumerate() {
        let (status, body) = request.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, format!("hello-1 GET /r{i} x-test= host={} body=", hosts[i]));
    }
    assert!(listening.elapsed() < Duration::from_secs(2), "forwarded as soon as the pod answered");
    assert_eq!(proxy.waker.calls(), 1);
    let text = proxy.metrics();
    assert_metric(&text, r#"spore_activator_requests_held{namespace="apps",app="hello"} 0"#);
    assert_metric(&text, r#"spore_activator_cold_start_seconds_count{namespace="apps",app="hello"} 5"#);
    assert_metric(&text, r#"spore_activator_requests_total{namespace="apps",app="hello",outcome="held"} 5"#);

    // Now warm: the next request is forwarded at once.
    let (status, _) = proxy.get("hello.apps", "/again").await;
    assert_eq!(status, StatusCode::OK);
    assert_metric(
        &proxy.metrics(),
        r#"spore_activator_requests_total{namespace="apps",app="hello",outcome="forwarded"} 1"#,
    );
}

#[tokio::test]
async fn a_request_that_waits_too_long_gets_503_saying_why() {
    let proxy = Proxy::start(Settings { hold_timeout: Duration::from_millis(300), ..Settings::default() }).await;
    let mut slow = app("slow", Some(0));
    slow.degraded = Some(ConditionInfo {
        status: true,
        reason: "ModuleInvalid".into(),
        message: "module is not valid Wasm: magic header not detected".into(),
    });
    proxy.add_app(slow, 8080);
    let started = Instant::now();
    let (status, body) = proxy.get("slow.apps", "/").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        "apps/slow did not become ready within 300ms: ModuleInvalid: module is not valid Wasm: magic header not detected\n"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    let text = proxy.metrics();
    assert_metric(&text, r#"spore_activator_requests_total{namespace="apps",app="slow",outcome="timeout"} 1"#);
    assert_metric(&text, r#"spore_activator_requests_held{namespace="apps",app="slow"} 0"#);

    // Without conditions, the pods say why.
    proxy.add_app(app("quiet", Some(0)), 8080);
    let (status, body) = proxy.get("quiet.apps", "/").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        "apps/quiet did not become ready within 300ms: no pod became ready: the app has no running pods (spec.scaling.replicas is 0)\n"
    );
}

#[tokio::test]
async fn an_unknown_host_gets_404_naming_it() {
    let proxy = Proxy::start(Settings::default()).await;
    proxy.add_app(app("hello", None), 8080);
    let (status, body) = proxy.get("nope.apps", "/").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.starts_with(r#"no Spore app serves host "nope.apps"; use <app>.<namespace>"#), "{body}");
    let (status, body) = proxy.get("example.com:8080", "/").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains(r#""example.com:8080""#), "{body}");
    let text = proxy.metrics();
    assert_metric(&text, "spore_activator_unknown_host_total 2");
    assert!(!text.contains("nope") && !text.contains("example"), "no label set for unknown hosts:\n{text}");
}

#[tokio::test]
async fn requests_beyond_the_queue_limit_get_503_at_once() {
    let proxy =
        Proxy::start(Settings { hold_timeout: Duration::from_millis(800), max_held_per_app: 2, ..Settings::default() })
            .await;
    proxy.add_app(app("busy", Some(0)), 8080);
    let addr = proxy.addr;
    let held: Vec<_> = (0..2)
        .map(|_| tokio::spawn(send(addr, Request::get("/").header("host", "busy.apps").body(Full::default()).unwrap())))
        .collect();
    eventually("two requests are held", || proxy.held("busy") == 2).await;
    let started = Instant::now();
    let (status, body) = proxy.get("busy.apps", "/").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, "too many requests waiting for apps/busy to start (limit 2)\n");
    assert!(started.elapsed() < Duration::from_millis(500), "refused at once");
    for request in held {
        assert_eq!(request.await.unwrap().0, StatusCode::SERVICE_UNAVAILABLE, "the held ones time out");
    }
    let text = proxy.metrics();
    assert_metric(&text, r#"spore_activator_requests_total{namespace="apps",app="busy",outcome="overflow"} 1"#);
    assert_metric(&text, r#"spore_activator_requests_total{namespace="apps",app="busy",outcome="timeout"} 2"#);
    assert_eq!(proxy.waker.calls(), 1);
}

#[tokio::test]
async fn a_warm_apps_request_is_forwarded_intact() {
    let proxy = Proxy::start(Settings::default()).await;
    let port = listening_backend("warm-1").await;
    proxy.add_app(app("warm", None), port);
    proxy.activator.update(Change::Pod(pod("warm", "warm-1", "127.0.0.1", Some(true))));
    let request = Request::post("/echo/path?x=1&y=two%20words")
        .header("host", "warm.apps.svc:80")
        .header("x-test", "kept")
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from("the body")))
        .unwrap();
    let (status, body) = send(proxy.addr, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "warm-1 POST /echo/path?x=1&y=two%20words x-test=kept host=warm.apps.svc:80 body=the body");
    assert_metric(
        &proxy.metrics(),
        r#"spore_activator_requests_total{namespace="apps",app="warm",outcome="forwarded"} 1"#,
    );
    assert_eq!(proxy.waker.calls(), 0, "a warm app is not woken");
}

#[tokio::test]
async fn a_pod_that_refuses_connections_is_skipped() {
    let proxy = Proxy::start(Settings::default()).await;
    let port = listening_backend("good").await;
    proxy.add_app(app("mixed", None), port);
    // Ready, but nothing listens on 127.0.0.2:<port>.
    proxy.activator.update(Change::Pod(pod("mixed", "broken", "127.0.0.2", Some(true))));
    proxy.activator.update(Change::Pod(pod("mixed", "good", "127.0.0.1", Some(true))));
    for _ in 0..3 {
        let (status, body) = proxy.get("mixed.apps", "/").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.starts_with("good GET /"), "{body}");
    }
    assert_metric(
        &proxy.metrics(),
        r#"spore_activator_requests_total{namespace="apps",app="mixed",outcome="forwarded"} 3"#,
    );
}

#[tokio::test]
async fn shutdown_stops_accepting_and_lets_held_requests_finish() {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async {
        let _ = stopped.await;
    };
    let (proxy, server) = Proxy::serve(Settings::default(), shutdown, Duration::from_secs(10)).await;
    let port = listening_backend("late").await;
    proxy.add_app(app("late", Some(0)), port);
    let addr = proxy.addr;
    let request =
        tokio::spawn(send(addr, Request::get("/").header("host", "late.apps").body(Full::default()).unwrap()));
    eventually("the request is held", || proxy.held("late") == 1).await;
    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "no new connections after shutdown");
    assert!(!server.is_finished(), "still draining");
    proxy.activator.update(Change::Pod(pod("late", "late-1", "127.0.0.1", Some(true))));
    let (status, body) = request.await.unwrap();
    assert_eq!((status, body.starts_with("late GET /")), (StatusCode::OK, true), "{body}");
    tokio::time::timeout(Duration::from_secs(5), server).await.expect("serve returns once drained").unwrap();
}

/// What the shim of pod `apps/<pod>` sends for a guest on `port`.
fn announcement(pod: &str, port: u16, token: &str) -> serde_json::Value {
    serde_json::json!({"namespace": "apps", "pod": pod, "uid": format!("uid-{pod}"), "port": port, "token": token})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_that_announces_itself_gets_held_requests_before_its_status_has_an_ip() {
    let proxy = Proxy::start(Settings { hold_timeout: Duration::from_secs(20), ..Settings::default() }).await;
    let port = listening_backend("hello-1").await;
    proxy.add_app(AppInfo { uid: "app-uid".into(), ..app("hello", Some(0)) }, port);
    let addr = proxy.addr;
    let held =
        tokio::spawn(send(addr, Request::get("/cold").header("host", "hello.apps").body(Full::default()).unwrap()));
    eventually("the request is held", || proxy.held("hello") == 1).await;
    // Created and started, but kubelet has not written its IP into the status yet.
    proxy.activator.update(Change::Pod(PodInfo { ip: None, ..pod("hello", "hello-1", "127.0.0.1", None) }));

    let (status, body) = proxy.announce(announcement("hello-1", port, "not-the-app-uid")).await;
    assert_eq!((status, body.as_str()), (StatusCode::FORBIDDEN, "bad token: it is not the uid of the pod's WasmApp\n"));
    let (status, body) = proxy.announce(announcement("hello-2", port, "app-uid")).await;
    assert_eq!((status, body.as_str()), (StatusCode::NOT_FOUND, "unknown pod apps/hello-2 (uid uid-hello-2)\n"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(proxy.held("hello"), 1, "refused announcements forward nothing");
    assert!(!held.is_finished());

    let announced = Instant::now();
    let (status, body) = proxy.announce(announcement("hello-1", port, "app-uid")).await;
    assert_eq!((status, body.as_str()), (StatusCode::NO_CONTENT, ""));
    let (status, body) = held.await.unwrap();
    let took = announced.elapsed();
    assert_eq!((status, body.as_str()), (StatusCode::OK, "hello-1 GET /cold x-test= host=hello.apps body="));
    assert!(
        took < Duration::from_millis(300),
        "forwarded {took:?} after the announcement; kubelet's relist takes up to 1s"
    );

    // The status catches up with the same IP: nothing changes, the pod stays a backend.
    proxy.activator.update(Change::Pod(pod("hello", "hello-1", "127.0.0.1", Some(true))));
    let (status, _) = proxy.get("hello.apps", "/warm").await;
    assert_eq!(status, StatusCode::OK);
    let text = proxy.metrics();
    for line in [
        r#"spore_activator_announcements_total{outcome="accepted"} 1"#,
        r#"spore_activator_announcements_total{outcome="bad_token"} 1"#,
        r#"spore_activator_announcements_total{outcome="unknown_pod"} 1"#,
        r#"spore_activator_announcements_total{outcome="conflict"} 0"#,
        r#"spore_activator_requests_total{namespace="apps",app="hello",outcome="held"} 1"#,
    ] {
        assert_metric(&text, line);
    }
}

#[tokio::test]
async fn announcements_that_do_not_check_out_are_refused() {
    let proxy = Proxy::start(Settings::default()).await;
    proxy.add_app(AppInfo { uid: "app-uid".into(), ..app("hello", Some(0)) }, 8080);
    // Its status already says 127.0.0.2; the announcement comes from 127.0.0.1.
    proxy.activator.update(Change::Pod(pod("hello", "placed", "127.0.0.2", None)));
    proxy.activator.update(Change::Pod(PodInfo {
        ip: None,
        terminating: true,
        ..pod("hello", "leaving", "127.0.0.1", None)
    }));
    let (status, body) = proxy.announce(announcement("placed", 8080, "app-uid")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body, "conflict: the pod's address is 127.0.0.2, the announcement came from 127.0.0.1\n");
    let (status, body) = proxy.announce(announcement("leaving", 8080, "app-uid")).await;
    assert_eq!((status, body.as_str()), (StatusCode::CONFLICT, "conflict: the pod is terminating\n"));
    let (status, body) = proxy.announce(announcement("placed", 9999, "app-uid")).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::BAD_REQUEST, "invalid announcement: port 9999: the app's target port is 8080\n")
    );
    let (status, body) = proxy.announce(serde_json::json!({"pod": "placed"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.starts_with("invalid announcement: missing field") && body.lines().count() == 1, "{body}");
    let (status, _) = send(proxy.admin, Request::get("/v1/announce").body(Full::default()).unwrap()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let text = proxy.metrics();
    assert_metric(&text, r#"spore_activator_announcements_total{outcome="conflict"} 2"#);
    assert_metric(&text, r#"spore_activator_announcements_total{outcome="invalid"} 2"#);
    assert_metric(&text, r#"spore_activator_announcements_total{outcome="accepted"} 0"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announcement_to_one_replica_reaches_the_requests_held_by_another() {
    let settings = Settings { hold_timeout: Duration::from_secs(20), ..Settings::default() };
    let (first, second) = (Proxy::start(settings.clone()).await, Proxy::start(settings).await);
    first.peers.set([second.admin].into());
    second.peers.set([first.admin].into());
    let port = listening_backend("hello-1").await;
    let starting = PodInfo { ip: None, ..pod("hello", "hello-1", "127.0.0.1", None) };
    for proxy in [&first, &second] {
        proxy.add_app(AppInfo { uid: "app-uid".into(), ..app("hello", Some(0)) }, port);
    }
    first.activator.update(Change::Pod(starting.clone()));
    let held = tokio::spawn(send(
        second.addr,
        Request::get("/cold").header("host", "hello.apps").body(Full::default()).unwrap(),
    ));
    eventually("the request is held by the second replica", || second.held("hello") == 1).await;

    // The pod reaches the first replica; the second's pod watch sees it a moment later.
    let (status, _) = first.announce(announcement("hello-1", port, "app-uid")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    tokio::time::sleep(Duration::from_millis(60)).await;
    second.activator.update(Change::Pod(starting));
    let (status, body) = tokio::time::timeout(Duration::from_secs(2), held).await.expect("relayed").unwrap();
    assert_eq!((status, body.as_str()), (StatusCode::OK, "hello-1 GET /cold x-test= host=hello.apps body="));
    assert_metric(&first.metrics(), r#"spore_activator_announcements_relayed_total{outcome="delivered"} 1"#);
    assert_metric(&second.metrics(), r#"spore_activator_announcements_total{outcome="accepted"} 1"#);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_metric(&first.metrics(), r#"spore_activator_announcements_total{outcome="accepted"} 1"#);
    assert_metric(&second.metrics(), r#"spore_activator_announcements_relayed_total{outcome="delivered"} 0"#);
}

#[tokio::test]
async fn only_a_peer_replica_may_relay_an_address() {
    let proxy = Proxy::start(Settings::default()).await;
    proxy.add_app(AppInfo { uid: "app-uid".into(), ..app("hello", Some(0)) }, 8080);
    proxy.activator.update(Change::Pod(PodInfo { ip: None, ..pod("hello", "hello-1", "127.0.0.1", None) }));
    let relayed = |address: &str| {
        Request::post("/v1/announce")
            .header(RELAYED_ADDRESS, address)
            .body(Full::new(Bytes::from(announcement("hello-1", 8080, "app-uid").to_string())))
            .unwrap()
    };
    let (status, body) = send(proxy.admin, relayed("10.1.2.3")).await;
    assert_eq!(
        (status, body.as_str()),
        (
            StatusCode::FORBIDDEN,
            "forbidden: only another activator replica relays announcements, and 127.0.0.1 is not one\n"
        )
    );
    proxy.peers.set(["127.0.0.1:9090".parse().unwrap()].into());
    let (status, body) = send(proxy.admin, relayed("pod")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = send(proxy.admin, relayed("10.1.2.3")).await;
    assert_eq!((status, body.as_str()), (StatusCode::NO_CONTENT, ""), "a peer's relayed address is taken");
    let (status, body) = proxy.announce(announcement("hello-1", 8080, "app-uid")).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::CONFLICT, "conflict: the pod's address is 10.1.2.3, the announcement came from 127.0.0.1\n")
    );
}
