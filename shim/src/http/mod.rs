//! Serving HTTP components (`wasi:http/proxy` of WASI 0.2, `wasi:http/service` of 0.3):
//! one fresh instance per request from a pre-instantiated component (or, for 0.3 services
//! that opt in, reused instances), a concurrency cap answered with 503, a per-request
//! deadline, outbound requests checked against the allowlist, a graceful drain, and the
//! server's Prometheus metrics on a listener of their own.

mod reuse;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use wasmtime::{AsContextMut, Store};
use wasmtime_wasi_http::handler::ProxyPre as Pre;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::p3::bindings::ServicePre;

use crate::engine::Tier;
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::limits;
use crate::metrics::{self, HttpMetrics, InFlight};
use crate::module::{Code, Wasm, WasmKind};
use crate::policy::{DEFAULT_REQUEST_TIMEOUT, Sandbox};
use crate::state::P2State;
use crate::usage::Metered;

type Response = hyper::Response<HyperOutgoingBody>;

/// A ready-to-serve HTTP component.
#[derive(Clone)]
pub struct HttpServer(Arc<Inner>);

struct Inner {
    code: Serving,
    /// Set when `limits.instanceReuse` lets instances serve several requests.
    reused: Option<reuse::Reused>,
    /// The optimized code still being compiled, for `serve` to swap in.
    optimizing: Mutex<Option<Wasm>>,
    sandbox: Sandbox,
    permits: Arc<Semaphore>,
    metrics: HttpMetrics,
    /// Draining: every response closes its connection.
    closing: AtomicBool,
}

/// How serving ends. Once `requested` resolves the server keeps accepting for
/// `drain_delay`, answering every request with `Connection: close`: Kubernetes takes a
/// terminating pod out of its Service only after sending SIGTERM, so connections keep
/// arriving for a moment, and kept-alive clients must learn to go elsewhere. Then it stops
/// accepting and waits for the requests in flight.
pub struct Shutdown<F> {
    pub requested: F,
    pub drain_delay: Duration,
}

impl<F> Shutdown<F> {
    /// Stop accepting as soon as `requested` resolves (Ctrl-C of a local server).
    pub fn immediate(requested: F) -> Self {
        Self { requested, drain_delay: Duration::ZERO }
    }
}

/// What requests instantiate: baseline code is replaced by optimized code once ready.
#[derive(Clone)]
struct Serving(Arc<RwLock<Pre<P2State>>>);

impl Serving {
    /// What the next request instantiates (wasmtime-wasi-http's enum is not `Clone`).
    fn current(&self) -> Pre<P2State> {
        match &*self.0.read().expect("code lock") {
            Pre::P2(pre) => Pre::P2(pre.clone()),
            Pre::P3(pre) => Pre::P3(pre.clone()),
        }
    }

    fn replace(&self, pre: Pre<P2State>) {
        *self.0.write().expect("code lock") = pre;
    }
}

impl HttpServer {
    /// Pre-instantiates the component: imports are resolved once, here, not per request.
    pub fn new(wasm: &Wasm, sandbox: &Sandbox) -> Result<Self> {
        let code = Serving(Arc::new(RwLock::new(pre_instantiate(wasm)?)));
        let reused = reuse_of(wasm, sandbox)?.map(|reuse| {
            let timeout = sandbox.limits().timeout.unwrap_or(DEFAULT_REQUEST_TIMEOUT);
            reuse::Reused::new(code.clone(), sandbox.clone(), reuse, timeout)
        });
        let permits = Arc::new(Semaphore::new(sandbox.limits().max_concurrency));
        let metrics = HttpMetrics::default();
        metrics.serving(wasm.tier());
        Ok(Self(Arc::new(Inner {
            code,
            reused,
            optimizing: Mutex::new(Some(wasm.clone()).filter(|wasm| wasm.tier() == Tier::Baseline)),
            sandbox: sandbox.clone(),
            permits,
            metrics,
            closing: AtomicBool::new(false),
        })))
    }

    /// Serves connections from `listener` until `shutdown` resolves, then stops accepting
    /// and waits for in-flight requests to finish. Optimized code replaces baseline code as
    /// soon as it is ready; requests already running finish on the code they started with.
    pub async fn serve(&self, listener: TcpListener, shutdown: impl Future) -> Result<()> {
        let _swap = self.swap_in_optimized_code().map(AbortOnDrop);
        let server = self.clone();
        accept_until(listener, shutdown, move |req| {
            let server = server.clone();
            async move { server.handle(req).await }
        })
        .await;
        Ok(())
    }

    /// Serves the server's metrics at `GET /metrics` from `listener` until `shutdown`
    /// resolves. The shim's own listener: the guest never sees these requests.
    async fn serve_metrics(&self, listener: TcpListener, shutdown: impl Future) -> Result<()> {
        let server = self.clone();
        accept_until(listener, shutdown, move |req| std::future::ready(server.metrics_response(&req))).await;
        Ok(())
    }

    fn swap_in_optimized_code(&self) -> Option<tokio::task::JoinHandle<()>> {
        let baseline = self.0.optimizing.lock().expect("optimizing lock").take()?;
        let server = self.clone();
        Some(tokio::spawn(async move {
            let Some(optimized) = baseline.optimized().await else { return };
            match pre_instantiate(&optimized) {
                Ok(pre) => {
                    server.0.code.replace(pre);
                    server.0.metrics.serving(optimized.tier());
                    tracing::info!("new requests run on optimized code");
                }
                Err(err) => tracing::warn!("optimized code not swapped in; baseline code keeps serving: {err}"),
            }
        }))
    }

    fn metrics_response(&self, req: &hyper::Request<Incoming>) -> Response {
        if req.uri().path() != metrics::METRICS_PATH {
            return plain(404, format!("spore: not found; metrics are at {}\n", metrics::METRICS_PATH));
        }
        if !matches!(*req.method(), hyper::Method::GET | hyper::Method::HEAD) {
            return plain(405, "spore: metrics are read with GET\n".into());
        }
        let body = Full::new(Bytes::from(self.0.metrics.encode())).map_err(|never| match never {}).boxed_unsync();
        hyper::Response::builder()
            .header(hyper::header::CONTENT_TYPE, metrics::CONTENT_TYPE)
            .body(body)
            .expect("static response parts are valid")
    }

    async fn handle(&self, req: hyper::Request<Incoming>) -> Response {
        let mut response = self.admit_and_dispatch(req).await;
        self.0.metrics.answered(response.status().as_u16());
        if self.0.closing.load(Ordering::Relaxed) {
            response.headers_mut().insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("close"));
        }
        response
    }

    /// Serves `listener` through the drain `shutdown` describes.
    async fn serve_until(&self, listener: TcpListener, shutdown: Shutdown<impl Future>) -> Result<()> {
        let stop_accepting = async {
            shutdown.requested.await;
            self.0.closing.store(true, Ordering::Relaxed);
            tracing::info!(
                "draining: accepting for {:?} more, closing every connection after its response",
                shutdown.drain_delay
            );
            tokio::time::sleep(shutdown.drain_delay).await;
        };
        self.serve(listener, stop_accepting).await
    }

    async fn admit_and_dispatch(&self, req: hyper::Request<Incoming>) -> Response {
        let Ok(permit) = self.0.permits.clone().try_acquire_owned() else {
            self.0.metrics.rejected();
            return plain(
                503,
                format!(
                    "spore: busy: limits.maxConcurrency ({}) requests already in flight\n",
                    self.0.sandbox.limits().max_concurrency
                ),
            );
        };
        let admitted = Admitted { _permit: permit, _in_flight: self.0.metrics.start() };
        match self.dispatch(req, admitted).await {
            Ok(response) => response,
            Err(exit) => {
                tracing::error!("request failed: {}", exit.report());
                let status = if exit.code == crate::exit::DEADLINE_EXIT_CODE { 504 } else { 500 };
                plain(status, format!("spore: {}\n", exit.reason.unwrap_or_default()))
            }
        }
    }

    /// Runs one request in a fresh instance. The instance runs in its own task so it can
    /// keep streaming the body after the response head is sent; it holds the admission.
    async fn dispatch(&self, req: hyper::Request<Incoming>, admitted: Admitted) -> std::result::Result<Response, Exit> {
        if let Some(reused) = &self.0.reused {
            return dispatch_reused(reused, req, admitted).await;
        }
        match self.0.code.current() {
            Pre::P2(pre) => self.dispatch_p2(pre, req, admitted).await,
            Pre::P3(pre) => self.dispatch_p3(pre, req, admitted).await,
        }
    }

    /// A store for one request: the sandbox's state, its memory cap and its deadline.
    fn request_store(&self, engine: &wasmtime::Engine) -> std::result::Result<(Store<P2State>, Duration), Exit> {
        let sandbox = &self.0.sandbox;
        let state = P2State::new(sandbox).map_err(|e| host_error(e.to_string()))?;
        let mut store = Store::new(engine, state);
        let timeout = sandbox.limits().timeout.unwrap_or(DEFAULT_REQUEST_TIMEOUT);
        limits::apply(&mut store, |s: &mut P2State| &mut s.memory, Some(timeout));
        Ok((store, timeout))
    }

    async fn dispatch_p2(
        &self,
        pre: ProxyPre<P2State>,
        req: hyper::Request<Incoming>,
        admitted: Admitted,
    ) -> std::result::Result<Response, Exit> {
        let (mut store, _) = self.request_store(pre.engine())?;
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let mut http = wasmtime_wasi_http::WasiHttpView::http(store.data_mut());
        let req = http.new_incoming_request(Scheme::Http, req).map_err(|e| host_error(format!("{e:#}")))?;
        let out = http.new_response_outparam(sender).map_err(|e| host_error(format!("{e:#}")))?;
        let guest = async move {
            let _admitted = admitted;
            let result = async {
                let proxy = pre.instantiate_async(&mut store).await?;
                proxy.wasi_http_incoming_handler().call_handle(&mut store, req, out).await
            }
            .await;
            result.map_err(|err| Exit::from_error(err, &store.data().memory))
        };
        let response = async { receiver.await.map_err(|_| ()).map(|r| r.map_err(|code| format!("{code:?}"))) };
        self.respond(guest, response).await
    }

    /// A WASI 0.3 request: the handler runs in the store's event loop, which keeps running
    /// after the response (a streamed body) until the guest has no task left. A guest
    /// waiting on I/O never reaches an epoch check, so the deadline is also a timer here.
    async fn dispatch_p3(
        &self,
        pre: ServicePre<P2State>,
        req: hyper::Request<Incoming>,
        admitted: Admitted,
    ) -> std::result::Result<Response, Exit> {
        let (mut store, timeout) = self.request_store(pre.engine())?;
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let guest = async move {
            let _admitted = admitted;
            let run = async {
                let service = pre.instantiate_async(&mut store).await?;
                store
                    .run_concurrent(async |accessor| {
                        let (request, request_io) = accessor.with(|mut access| -> wasmtime::Result<_> {
                            let mut store = access.as_context_mut();
                            let http = http_view(store.data_mut());
                            let (request, io) = wasmtime_wasi_http::p3::Request::from_http(http.hooks, req);
                            // Boxed as 'static: the future captures no borrow, but its type names one.
                            let io: RequestIo = Box::pin(io);
                            Ok((http.table.push(request)?, io))
                        })?;
                        let answer = match service.wasi_http_handler().call_handle(accessor, request).await? {
                            Ok(response) => Ok(accessor.with(|mut access| {
                                let response = http_view(access.as_context_mut().data_mut()).table.delete(response)?;
                                response.into_http_with_getter(&mut access, request_io, http_view)
                            })?),
                            Err(code) => Err(format!("{code:?}")),
                        };
                        let _ = sender.send(answer);
                        // The body may still be streaming from the guest's task.
                        std::future::poll_fn(|cx| accessor.poll_no_interesting_tasks(cx)).await;
                        wasmtime::Result::Ok(())
                    })
                    .await?
            };
            let result = match tokio::time::timeout(timeout, run).await {
                Ok(ran) => ran,
                Err(_) => Err(wasmtime::Error::new(limits::DeadlineExceeded(timeout))),
            };
            result.map_err(|err| Exit::from_error(err, &store.data().memory))
        };
        self.respond(guest, async { receiver.await.map_err(|_| ()) }).await
    }

    /// Drives the guest on this task, and polls it before its response: most handlers set
    /// the response, write the whole body and return without waiting on anything, so the
    /// response leaves in one write with its body, and a task hand-off per request (which
    /// costs more than the guest itself) is paid only by guests that stream or wait.
    /// `response` is the guest's response, its error code, or `Err` if it gave none.
    async fn respond(
        &self,
        guest: impl Future<Output = std::result::Result<(), Exit>> + Send + 'static,
        response: impl Future<Output = std::result::Result<std::result::Result<Response, String>, ()>>,
    ) -> std::result::Result<Response, Exit> {
        let mut guest = Metered::new(guest, self.0.sandbox.usage().clone());
        let mut response = std::pin::pin!(response);
        let finished = tokio::select! {
            biased;
            finished = &mut guest => finished,
            response = &mut response => {
                // Still running (e.g. streaming the body): let it finish on its own.
                tokio::spawn(async move {
                    if let Err(exit) = guest.await {
                        tracing::error!("request failed after its response started: {}", exit.report());
                    }
                });
                return answer(response.map_err(|()| host_error("the guest dropped its response".into()))?);
            }
        };
        match (response.await, finished) {
            (Ok(response), Ok(())) => answer(response),
            (Ok(response), Err(exit)) => {
                tracing::error!("request failed after setting its response: {}", exit.report());
                answer(response)
            }
            (Err(()), Err(exit)) => Err(exit),
            (Err(()), Ok(())) => Err(host_error("the guest returned without setting a response".into())),
        }
    }
}

/// A request served by a reused instance. The admission lasts until the response body
/// ends: it may still stream from the instance.
async fn dispatch_reused(
    reused: &reuse::Reused,
    req: hyper::Request<Incoming>,
    admitted: Admitted,
) -> std::result::Result<Response, Exit> {
    let response = reused.handle(req).await?;
    Ok(response.map(|body| {
        body.map_frame(move |frame| {
            let _held = &admitted;
            frame
        })
        .boxed_unsync()
    }))
}

/// `limits.instanceReuse`, which only WASI 0.3 services can honour: a 0.2 handler's
/// instance serves one request by design.
fn reuse_of(wasm: &Wasm, sandbox: &Sandbox) -> Result<Option<crate::policy::InstanceReuse>> {
    match sandbox.limits().instance_reuse {
        Some(_) if wasm.kind() != WasmKind::HttpServiceP3 => Err(Error::Limit {
            field: "instanceReuse",
            message: format!(
                "reuses instances of WASI 0.3 HTTP services (wasi:http/service) only, and this is a {}; remove limits.instanceReuse, or build the app for WASI 0.3",
                wasm.kind()
            ),
        }),
        reuse => Ok(reuse.filter(|r| r.max_requests > 1)),
    }
}

/// A 0.3 request body's transfer, reported to the guest when it ends.
type RequestIo = std::pin::Pin<Box<dyn Future<Output = std::result::Result<(), wasmtime_wasi_http::Error>> + Send>>;

fn http_view(state: &mut P2State) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
    wasmtime_wasi_http::WasiHttpView::http(state)
}

fn host_error(reason: String) -> Exit {
    Exit { code: crate::exit::HOST_ERROR_EXIT_CODE, reason: Some(reason), backtrace: Vec::new() }
}

/// Aborts a background task when the server stops.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn pre_instantiate(wasm: &Wasm) -> Result<Pre<P2State>> {
    let (kind, component) = match (wasm.kind(), wasm.code()) {
        (kind, Code::Component(component)) if kind.serves_http() => (kind, component),
        (kind, _) => {
            return Err(Error::Unsupported {
                what: "HTTP guest",
                detail: format!(
                    "a {kind} cannot serve HTTP; build a wasi:http/proxy (WASI 0.2) or wasi:http/service (WASI 0.3) component"
                ),
            });
        }
    };
    let pre = wasm.engine().p2_linker().instantiate_pre(component).map_err(Error::Instantiate)?;
    match kind {
        WasmKind::HttpServiceP3 => ServicePre::new(pre).map(Pre::P3),
        _ => ProxyPre::new(pre).map(Pre::P2),
    }
    .map_err(Error::Instantiate)
}

/// A request admitted under the concurrency cap: its permit and its place in the in-flight
/// gauge, both held until the guest's instance is done (body streaming included).
struct Admitted {
    _permit: tokio::sync::OwnedSemaphorePermit,
    _in_flight: InFlight,
}

/// Accepts HTTP/1 connections, each answered by `respond`, until `shutdown` resolves; then
/// stops accepting and waits for open connections to finish.
async fn accept_until<R, F>(listener: TcpListener, shutdown: impl Future, respond: R)
where
    R: Fn(hyper::Request<Incoming>) -> F + Clone + Send + 'static,
    F: Future<Output = Response> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(err) => {
                    tracing::warn!("accept failed: {err}");
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let respond = respond.clone();
        let service = service_fn(move |req| {
            let response = respond(req);
            async move { Ok::<_, Infallible>(response.await) }
        });
        let conn = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(err) = conn.await {
                tracing::debug!(%peer, "connection ended: {err}");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

fn answer(response: std::result::Result<Response, String>) -> std::result::Result<Response, Exit> {
    Ok(response.unwrap_or_else(|code| plain(500, format!("spore: the guest answered with error {code}\n"))))
}

/// Serves `wasm` on `listener`, and its metrics on `metrics` if given, until `shutdown`
/// has run its course. Metrics stay up while the requests in flight drain, then stop too.
pub async fn serve_http(
    wasm: Wasm,
    sandbox: &Sandbox,
    listener: TcpListener,
    metrics: Option<TcpListener>,
    shutdown: Shutdown<impl Future>,
) -> Result<()> {
    serve_http_then(wasm, sandbox, listener, metrics, shutdown, || ()).await
}

/// [`serve_http`], calling `serving` once the component is ready and the server is about
/// to accept: connections made from then on are answered. It takes the guest, so that
/// baseline code is freed once optimized code replaces it.
pub(crate) async fn serve_http_then(
    wasm: Wasm,
    sandbox: &Sandbox,
    listener: TcpListener,
    metrics: Option<TcpListener>,
    shutdown: Shutdown<impl Future>,
    serving: impl FnOnce(),
) -> Result<()> {
    let server = HttpServer::new(&wasm, sandbox)?;
    drop(wasm);
    serving();
    let Some(metrics) = metrics else { return server.serve_until(listener, shutdown).await };
    let (drained, on_drained) = tokio::sync::oneshot::channel::<()>();
    let guest = async {
        let served = server.serve_until(listener, shutdown).await;
        drop(drained);
        served
    };
    let metrics = server.serve_metrics(metrics, async {
        let _ = on_drained.await;
    });
    let (served, metrics_served) = tokio::join!(guest, metrics);
    served.and(metrics_served)
}

/// Binds the component's declared port on `ip`.
pub async fn bind(ip: std::net::IpAddr, sandbox: &Sandbox) -> Result<TcpListener> {
    let port = sandbox.http_port().ok_or_else(|| Error::Capability {
        field: "network.inbound".into(),
        message: "an HTTP component needs a TCP port to serve on; add e.g. {name: http, port: 8080}".into(),
    })?;
    listen(SocketAddr::new(ip, port)).await
}

/// Binds the metrics listener on `addr`, which must not be the component's HTTP port.
pub async fn bind_metrics(addr: SocketAddr, sandbox: &Sandbox) -> Result<TcpListener> {
    check_metrics_port(addr.port(), sandbox)?;
    listen(addr).await
}

/// The metrics port must differ from the guest's HTTP port (port 0 picks a free one).
pub(crate) fn check_metrics_port(port: u16, sandbox: &Sandbox) -> Result<()> {
    match sandbox.http_port() {
        Some(http_port) if port == http_port && port != 0 => Err(Error::MetricsPortTaken { port }),
        _ => Ok(()),
    }
}

async fn listen(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|source| Error::Listen { addr: addr.to_string(), source })
}

fn plain(status: u16, body: String) -> Response {
    hyper::Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed_unsync())
        .expect("static response parts are valid")
}

#[cfg(test)]
mod tests {
    use spore_crds::InboundPort;

    use super::*;
    use crate::{AppConfig, Stdio};

    fn serving_on(ports: &[u16]) -> Sandbox {
        let mut config = AppConfig::default();
        config.capabilities.network.inbound = ports
            .iter()
            .map(|p| InboundPort { name: None, port: (*p).into(), protocol: spore_crds::Protocol::Tcp })
            .collect();
        Sandbox::new(config, Stdio::null()).expect("valid sandbox")
    }

    /// Once optimized code serves, nothing holds the baseline code, its engine or its
    /// instance pool: a big component's baseline code is tens of MB.
    #[tokio::test]
    async fn a_tiered_server_frees_its_baseline_code_once_optimized_code_serves() {
        let http = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/guests/http.wasm"))
            .expect("target/guests/http.wasm (make guests)");
        let engine = crate::Engine::new(crate::EngineConfig::default()).unwrap().for_requests(2).unwrap();
        let wasm = engine.load(&http).unwrap();
        assert_eq!(wasm.tier(), Tier::Baseline);
        let baseline_alive = wasm.engine().liveness();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sandbox = serving_on(&[8080]);
        let server = tokio::spawn(async move {
            serve_http(wasm, &sandbox, listener, None, Shutdown::immediate(std::future::pending::<()>())).await
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while baseline_alive() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!baseline_alive(), "the baseline engine outlived the swap to optimized code");
        server.abort();
    }

    #[test]
    fn the_metrics_port_must_not_be_the_guests_http_port() {
        for (http_ports, metrics_port, taken) in
            [(&[8080][..], 8080, true), (&[8080], 9464, false), (&[8080], 0, false), (&[], 8080, false)]
        {
            let result = check_metrics_port(metrics_port, &serving_on(http_ports));
            assert_eq!(result.is_err(), taken, "{http_ports:?} {metrics_port}");
            if let Err(err) = result {
                let err = err.to_string();
                assert!(err.contains("metrics port 8080") && err.contains("HTTP port"), "{err}");
            }
        }
    }
}

#[cfg(test)]
mod phase_bench {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::{AppConfig, Engine, EngineConfig, Stdio};

    /// Where one request's time goes, in process: `cargo test --release -p spore-shim --lib
    /// -- --ignored --nocapture request_phases` (needs target/guests/http.wasm).
    #[test]
    #[ignore]
    fn request_phases() {
        for pooled in [Some(65), None] {
            let t = time_requests(pooled, false);
            println!(
                "pooled={pooled:?}: state+store {:.1} µs, instantiate {:.1} µs, handle {:.1} µs, drop {:.1} µs",
                t[0], t[1], t[2], t[3]
            );
        }
    }

    /// What the CPU meter of reused instances (a call hook at every guest/host transition)
    /// adds to a request: `cargo test --release -p spore-shim --lib -- --ignored --nocapture
    /// call_hook_cost`.
    #[test]
    #[ignore]
    fn call_hook_cost() {
        let (plain, metered) = (time_requests(Some(65), false), time_requests(Some(65), true));
        println!(
            "handle without the call hook {:.1} µs, with it {:.1} µs (+{:.1} µs a request)",
            plain[2],
            metered[2],
            metered[2] - plain[2]
        );
    }

    /// Mean µs a request of http.wasm spends in each phase: state and store, instantiation,
    /// the handler, teardown.
    fn time_requests(pooled: Option<u32>, metered: bool) -> [f64; 4] {
        let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/guests/http.wasm")).unwrap();
        let engine =
            Engine::new(EngineConfig { cache_dir: None, pooled_instances: pooled, ..EngineConfig::default() }).unwrap();
        let wasm = engine.load(&bytes).unwrap();
        let sandbox = Sandbox::new(AppConfig::default(), Stdio::null()).unwrap();
        let server = HttpServer::new(&wasm, &sandbox).unwrap();
        let Pre::P2(pre) = server.0.code.current() else { panic!("http.wasm is a WASI 0.2 proxy") };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let n = 20_000u32;
        let mut t = [Duration::ZERO; 4];
        rt.block_on(async {
            for _ in 0..n {
                let a = Instant::now();
                let state = P2State::new(&sandbox).unwrap();
                let mut store = Store::new(pre.engine(), state);
                limits::apply(&mut store, |s: &mut P2State| &mut s.memory, Some(Duration::from_secs(5)));
                if metered {
                    crate::usage::meter_guest_calls(&mut store, sandbox.usage().clone());
                }
                let b = Instant::now();
                let proxy = pre.instantiate_async(&mut store).await.unwrap();
                let c = Instant::now();
                let (sender, _receiver) = tokio::sync::oneshot::channel();
                let mut http = wasmtime_wasi_http::WasiHttpView::http(store.data_mut());
                let req = hyper::Request::builder()
                    .uri("http://x/")
                    .body(http_body_util::Empty::<Bytes>::new().map_err(
                        |never: Infallible| -> wasmtime_wasi_http::p2::bindings::http::types::ErrorCode {
                            match never {}
                        },
                    ))
                    .unwrap();
                let req = http.new_incoming_request(Scheme::Http, req).unwrap();
                let out = http.new_response_outparam(sender).unwrap();
                proxy.wasi_http_incoming_handler().call_handle(&mut store, req, out).await.unwrap();
                let d = Instant::now();
                drop(store);
                let e = Instant::now();
                for (slot, span) in t.iter_mut().zip([b - a, c - b, d - c, e - d]) {
                    *slot += span;
                }
            }
        });
        t.map(|d| d.as_secs_f64() * 1e6 / f64::from(n))
    }
}
