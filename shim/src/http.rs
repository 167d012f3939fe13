//! Serving `wasi:http/proxy` components: one fresh instance per request from a
//! pre-instantiated component, a concurrency cap answered with 503, a per-request
//! deadline, outbound requests checked against the allowlist, and a graceful drain.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::limits;
use crate::module::{Code, Wasm, WasmKind};
use crate::policy::{DEFAULT_REQUEST_TIMEOUT, HttpAllowlist, Sandbox};
use crate::state::P2State;
use crate::usage::Metered;

type Response = hyper::Response<HyperOutgoingBody>;

/// A ready-to-serve HTTP component.
#[derive(Clone)]
pub struct HttpServer(Arc<Inner>);

struct Inner {
    pre: ProxyPre<P2State>,
    sandbox: Sandbox,
    permits: Arc<Semaphore>,
}

impl HttpServer {
    /// Pre-instantiates the component: imports are resolved once, here, not per request.
    pub fn new(engine: &Engine, wasm: &Wasm, sandbox: &Sandbox) -> Result<Self> {
        let component = match (wasm.kind(), wasm.code()) {
            (WasmKind::HttpProxy, Code::Component(component)) => component,
            (kind, _) => {
                return Err(Error::Unsupported {
                    what: "HTTP guest",
                    detail: format!("a {kind} cannot serve HTTP; build a wasi:http/proxy component"),
                });
            }
        };
        let pre = engine.p2_linker().instantiate_pre(component).map_err(Error::Instantiate)?;
        let pre = ProxyPre::new(pre).map_err(Error::Instantiate)?;
        let permits = Arc::new(Semaphore::new(sandbox.limits().max_concurrency));
        Ok(Self(Arc::new(Inner { pre, sandbox: sandbox.clone(), permits })))
    }

    /// Serves connections from `listener` until `shutdown` resolves, then stops accepting
    /// and waits for in-flight requests to finish.
    pub async fn serve(&self, listener: TcpListener, shutdown: impl Future<Output = ()>) -> Result<()> {
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
                () = &mut shutdown => break,
            };
            let server = self.clone();
            let service = service_fn(move |req| {
                let server = server.clone();
                async move { Ok::<_, Infallible>(server.handle(req).await) }
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
        Ok(())
    }

    async fn handle(&self, req: hyper::Request<Incoming>) -> Response {
        let Ok(permit) = self.0.permits.clone().try_acquire_owned() else {
            return plain(
                503,
                format!(
                    "spore: busy: limits.maxConcurrency ({}) requests already in flight\n",
                    self.0.sandbox.limits().max_concurrency
                ),
            );
        };
        match self.dispatch(req, permit).await {
            Ok(response) => response,
            Err(exit) => {
                tracing::error!("request failed: {}", exit.report());
                let status = if exit.code == crate::exit::DEADLINE_EXIT_CODE { 504 } else { 500 };
                plain(status, format!("spore: {}\n", exit.reason.unwrap_or_default()))
            }
        }
    }

    /// Runs one request in a fresh instance. The instance runs in its own task so it can
    /// keep streaming the body after the response head is sent; it holds the permit.
    async fn dispatch(
        &self,
        req: hyper::Request<Incoming>,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> std::result::Result<Response, Exit> {
        let sandbox = &self.0.sandbox;
        let host_error =
            |e: String| Exit { code: crate::exit::HOST_ERROR_EXIT_CODE, reason: Some(e), backtrace: Vec::new() };
        let state = P2State::new(sandbox).map_err(|e| host_error(e.to_string()))?;
        let mut store = Store::new(self.0.pre.engine(), state);
        let timeout = sandbox.limits().timeout.unwrap_or(DEFAULT_REQUEST_TIMEOUT);
        limits::apply(&mut store, |s: &mut P2State| &mut s.memory, Some(timeout));
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let mut http = wasmtime_wasi_http::WasiHttpView::http(store.data_mut());
        let req = http.new_incoming_request(Scheme::Http, req).map_err(|e| host_error(format!("{e:#}")))?;
        let out = http.new_response_outparam(sender).map_err(|e| host_error(format!("{e:#}")))?;
        let pre = self.0.pre.clone();
        let usage = sandbox.usage().clone();
        let mut guest = Metered::new(
            async move {
                let _permit = permit;
                let result = async {
                    let proxy = pre.instantiate_async(&mut store).await?;
                    proxy.wasi_http_incoming_handler().call_handle(&mut store, req, out).await
                }
                .await;
                result.map_err(|err| Exit::from_error(err, &store.data().memory))
            },
            usage,
        );
        let mut receiver = receiver;
        // Drive the guest on this task: most handlers finish before their response is read,
        // and a task hand-off per request costs more than the guest itself.
        let finished = tokio::select! {
            biased;
            response = &mut receiver => {
                // Still running (e.g. streaming the body): let it finish on its own.
                tokio::spawn(async move {
                    if let Err(exit) = guest.await {
                        tracing::error!("request failed after its response started: {}", exit.report());
                    }
                });
                return answer(response.map_err(|_| host_error("the guest dropped its response".into()))?);
            }
            finished = &mut guest => finished,
        };
        match (receiver.await, finished) {
            (Ok(response), Ok(())) => answer(response),
            (Ok(response), Err(exit)) => {
                tracing::error!("request failed after setting its response: {}", exit.report());
                answer(response)
            }
            (Err(_), Err(exit)) => Err(exit),
            (Err(_), Ok(())) => Err(host_error("the guest returned without setting a response".into())),
        }
    }
}

fn answer(response: std::result::Result<Response, ErrorCode>) -> std::result::Result<Response, Exit> {
    Ok(response.unwrap_or_else(|code| plain(500, format!("spore: the guest answered with error {code:?}\n"))))
}

/// Serves `wasm` on `listener` until `shutdown` resolves.
pub async fn serve_http(
    engine: &Engine,
    wasm: &Wasm,
    sandbox: &Sandbox,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    HttpServer::new(engine, wasm, sandbox)?.serve(listener, shutdown).await
}

/// Binds the component's declared port on `ip`.
pub async fn bind(ip: std::net::IpAddr, sandbox: &Sandbox) -> Result<TcpListener> {
    let port = sandbox.http_port().ok_or_else(|| Error::Capability {
        field: "network.inbound".into(),
        message: "an HTTP component needs a TCP port to serve on; add e.g. {name: http, port: 8080}".into(),
    })?;
    let addr = SocketAddr::new(ip, port);
    TcpListener::bind(addr).await.map_err(|source| Error::Listen { addr: addr.to_string(), source })
}

fn plain(status: u16, body: String) -> Response {
    hyper::Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed_unsync())
        .expect("static response parts are valid")
}

/// `wasi:http` hooks: outgoing requests go out only to allowlisted hosts.
pub(crate) struct OutboundHooks {
    allowlist: HttpAllowlist,
}

impl OutboundHooks {
    pub fn new(allowlist: HttpAllowlist) -> Self {
        Self { allowlist }
    }
}

type SendResult = wasmtime_wasi_http::Result<(
    hyper::Response<WasiBody>,
    Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
)>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: hyper::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        if self.allowlist.allows(request.uri()) {
            return wasmtime_wasi_http::default_hooks().send_request(request, options, fut);
        }
        tracing::warn!(uri = %request.uri(), "outbound HTTP request denied: host not in capabilities.network.outbound.http");
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}
