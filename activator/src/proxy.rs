//! The proxy: each request is routed by Host to an app, then forwarded to the app's
//! least-loaded backend at once, or held (bounded, with a deadline) while the app wakes and
//! its pods are probed, and forwarded the moment one answers.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use prometheus_client::metrics::gauge::Gauge;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::announce::{self, Refusal};
use crate::app::{AppState, Backend};
use crate::forward::{self, BodySlot, Guarded, RequestHead, Upstream};
use crate::index::{Change, Index, Route};
use crate::metrics::{AnnounceOutcome, Metrics, Outcome, WakeOutcome};
use crate::probe;
use crate::settings::Settings;
use crate::wake::{AppWaker, Woke};

/// The body of every response the proxy sends.
pub type Body = UnsyncBoxBody<Bytes, hyper::Error>;

/// Retries of a wake that failed (not one that found the app scaled already).
const WAKE_RETRY_FIRST: Duration = Duration::from_millis(500);
const WAKE_RETRY_MAX: Duration = Duration::from_secs(5);
/// Pause after a failed accept.
pub(crate) const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Everything a request needs: the index, the waker, the metrics, the client to pods.
pub struct Activator {
    index: Index,
    settings: Settings,
    waker: Arc<dyn AppWaker>,
    metrics: Arc<Metrics>,
    upstream: Upstream,
}

impl Activator {
    pub fn new(settings: Settings, waker: Arc<dyn AppWaker>, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            index: Index::new(settings.cluster_domain.clone()),
            upstream: forward::client(settings.connect_timeout),
            settings,
            waker,
            metrics,
        })
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Applies a change to the index, then lets the apps it touched forward their held
    /// requests and probe their new pods. Call it from within the Tokio runtime.
    pub fn update(self: &Arc<Self>, change: Change) {
        let applied = self.index.apply(change);
        for app in applied.touched {
            app.notify_if_backend();
            self.start_probes(&app);
        }
        for key in applied.removed {
            self.metrics.forget(&key);
        }
    }

    /// Takes a pod's announcement (the JSON `body`, from `peer`): if it checks out, the pod
    /// is at `peer` (see [`crate::announce`]) and is probed right away, so requests held
    /// for its app go to it as soon as it answers. Counted by outcome.
    pub fn announce(self: &Arc<Self>, body: &[u8], peer: std::net::IpAddr) -> Result<std::net::IpAddr, Refusal> {
        let result = announce::parse(body).and_then(|announcement| {
            let unknown = || Refusal::UnknownPod {
                namespace: announcement.namespace.clone(),
                pod: announcement.pod.clone(),
                uid: announcement.uid.clone(),
            };
            let app = self.index.pod_app(&announcement.namespace, &announcement.pod).ok_or_else(unknown)?;
            let ip = app.announce(&announcement, peer)?;
            debug!(app = %app.key(), pod = announcement.pod, %ip, port = announcement.port, "pod announced itself");
            self.start_probes(&app);
            // A loop already probing it (its status IP came first) tries again now.
            app.probe_now().notify_waiters();
            Ok(ip)
        });
        match &result {
            Ok(_) => self.metrics.announcement(AnnounceOutcome::Accepted),
            Err(refusal) => {
                info!(%peer, status = refusal.status(), "announcement refused: {}", refusal.message().trim_end());
                self.metrics.announcement(refusal.outcome());
            }
        }
        result
    }

    /// Answers one request.
    pub async fn handle(self: &Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        let arrived = Instant::now();
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
            .or_else(|| req.uri().authority().map(|a| a.to_string()));
        match self.index.resolve(host.as_deref()) {
            Ok(route) => self.dispatch(route, req, arrived).await,
            Err(unroutable) => {
                self.metrics.unknown_host();
                debug!(host = host.as_deref().unwrap_or(""), status = unroutable.status(), "unroutable request");
                plain(unroutable.status(), unroutable.message())
            }
        }
    }

    async fn dispatch(self: &Arc<Self>, route: Route, req: Request<Incoming>, arrived: Instant) -> Response<Body> {
        let app = &route.app;
        let key = app.key().clone();
        let deadline = arrived + self.settings.hold_timeout;
        let (parts, body) = req.into_parts();
        let head = RequestHead::new(&parts);
        let body = BodySlot::new(body);
        let mut backends = app.subscribe();
        let mut hold: Option<Hold> = None;
        loop {
            if let Some(backend) = app.pick() {
                let addr = std::net::SocketAddr::new(backend.ip, route.port);
                let sent = match head.to(addr, body.handoff()) {
                    Ok(request) => self.upstream.request(request).await,
                    Err(e) => {
                        self.metrics.request(&key, Outcome::UpstreamError);
                        return plain(502, format!("cannot forward to pod {}/{}: {e}\n", key.namespace, backend.pod));
                    }
                };
                match sent {
                    Ok(response) => {
                        let outcome = if hold.is_some() {
                            self.metrics.cold_start(&key, arrived.elapsed());
                            Outcome::Held
                        } else {
                            Outcome::Forwarded
                        };
                        self.metrics.request(&key, outcome);
                        return upstream_response(response, backend);
                    }
                    Err(e) if e.is_connect() && body.untouched() => {
                        debug!(app = %key, pod = backend.pod, %addr, error = %forward::error_chain(&e), "connect failed; trying elsewhere");
                        app.connect_failed(&backend.pod, &backend.uid);
                        self.start_probes(app);
                        continue;
                    }
                    Err(e) => {
                        let reason = forward::error_chain(&e);
                        warn!(app = %key, pod = backend.pod, %addr, error = %reason, "upstream failed");
                        self.metrics.request(&key, Outcome::UpstreamError);
                        return plain(
                            502,
                            format!("upstream error from pod {}/{} ({addr}): {reason}\n", key.namespace, backend.pod),
                        );
                    }
                }
            }
            if hold.is_none() {
                match self.begin_hold(app) {
                    Some(h) => hold = Some(h),
                    None => {
                        self.metrics.request(&key, Outcome::Overflow);
                        let limit = self.settings.max_held_per_app;
                        return plain(503, format!("too many requests waiting for {key} to start (limit {limit})\n"));
                    }
                }
            }
            match tokio::time::timeout_at(deadline, backends.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_closed)) => tokio::time::sleep_until(deadline).await,
                Err(_elapsed) => {}
            }
            self.metrics.request(&key, Outcome::Timeout);
            let message = app.timeout_message(self.settings.hold_timeout);
            debug!(app = %key, "held request timed out: {}", message.trim_end());
            return plain(503, message);
        }
    }

    /// Starts holding a request for `app`: counts it, wakes the app if this is the first
    /// request at zero, and probes its pods now. `None` when the queue is full.
    fn begin_hold(self: &Arc<Self>, app: &Arc<AppState>) -> Option<Hold> {
        let wake = app.begin_hold(self.settings.max_held_per_app).ok()?;
        let hold = Hold { app: app.clone(), gauge: self.metrics.held(app.key()) };
        hold.gauge.inc();
        if wake {
            self.wake(app.clone());
        }
        self.start_probes(app);
        app.probe_now().notify_waiters();
        Some(hold)
    }

    /// Scales `app` to one replica in the background, retrying failures while requests
    /// still wait for it at zero.
    fn wake(self: &Arc<Self>, app: Arc<AppState>) {
        let (waker, metrics) = (self.waker.clone(), self.metrics.clone());
        tokio::spawn(async move {
            let mut delay = WAKE_RETRY_FIRST;
            loop {
                let woke = waker.wake(app.key()).await;
                metrics.wake(match &woke {
                    Ok(Woke::Scaled) => WakeOutcome::Scaled,
                    Ok(Woke::AlreadyScaled) => WakeOutcome::AlreadyScaled,
                    Err(_) => WakeOutcome::Failed,
                });
                match woke {
                    Ok(Woke::Scaled) => info!(app = %app.key(), "woke: scaled from 0 to 1"),
                    Ok(Woke::AlreadyScaled) => debug!(app = %app.key(), "already scaled by someone else"),
                    Err(e) if app.still_needs_wake() => {
                        warn!(app = %app.key(), error = %e, retry_in = ?delay, "wake failed");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(WAKE_RETRY_MAX);
                        continue;
                    }
                    Err(e) => debug!(app = %app.key(), error = %e, "wake failed, but nothing waits for it any more"),
                }
                return;
            }
        });
    }

    /// Starts a probe loop for every pod of `app` that needs one.
    fn start_probes(&self, app: &Arc<AppState>) {
        for pod in app.claim_probes() {
            let (interval, timeout) = (self.settings.probe_interval, self.settings.probe_timeout);
            tokio::spawn(probe::probe_loop(app.clone(), pod, interval, timeout));
        }
    }
}

/// A held request: counted in the app's queue and its gauge until dropped.
struct Hold {
    app: Arc<AppState>,
    gauge: Gauge,
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.app.end_hold();
        self.gauge.dec();
    }
}

fn upstream_response(response: Response<Incoming>, backend: Backend) -> Response<Body> {
    forward::clean_response(response).map(|body| Guarded::new(body, backend.load).boxed_unsync())
}

/// A one-line text/plain answer from the activator itself.
pub fn plain(status: u16, body: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed_unsync());
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// Serves the proxy on `listener` until `shutdown` resolves; then stops accepting and lets
/// requests in flight and held finish for up to `grace`.
pub async fn serve(listener: TcpListener, activator: Arc<Activator>, shutdown: impl Future, grace: Duration) {
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors, say: do not spin.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let activator = activator.clone();
        let service = service_fn(move |req| {
            let activator = activator.clone();
            async move { Ok::<_, Infallible>(activator.handle(req).await) }
        });
        let conn = http1::Builder::new().timer(TokioTimer::new()).serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                debug!(%peer, error = %e, "connection ended");
            }
        });
    }
    drop(listener);
    info!(?grace, "stopped accepting; waiting for requests in flight and held");
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        warn!(?grace, "requests still in flight after the grace period; exiting anyway");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::fixtures::{app, pod, service};
    use crate::index::AppKey;
    use crate::wake::WakeFuture;

    #[derive(Default)]
    struct CountingWaker(AtomicUsize);

    impl AppWaker for CountingWaker {
        fn wake<'a>(&'a self, _: &'a AppKey) -> WakeFuture<'a> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok(Woke::Scaled) })
        }
    }

    fn activator(hold_timeout: Duration, max_held: usize) -> (Arc<Activator>, Arc<CountingWaker>) {
        let waker = Arc::new(CountingWaker::default());
        let settings = Settings { hold_timeout, max_held_per_app: max_held, ..Settings::default() };
        let activator = Activator::new(settings, waker.clone(), Arc::new(Metrics::default()));
        activator.update(Change::App(app("apps", "hello").scaled_to(0)));
        activator.update(Change::Service(service("apps", "hello", "10.96.0.10", 8080)));
        (activator, waker)
    }

    fn hello(activator: &Activator) -> Arc<AppState> {
        activator.index().app(&AppKey::new("apps", "hello")).unwrap()
    }

    #[tokio::test]
    async fn holds_are_bounded_counted_and_wake_once() {
        let (activator, waker) = activator(Duration::from_secs(5), 2);
        let app = hello(&activator);
        let first = activator.begin_hold(&app).expect("room for two");
        let second = activator.begin_hold(&app).expect("room for two");
        assert!(activator.begin_hold(&app).is_none(), "the third overflows");
        tokio::task::yield_now().await;
        assert_eq!(waker.0.load(Ordering::SeqCst), 1, "one wake for both");
        assert!(
            activator.metrics().encode().contains(r#"spore_activator_requests_held{namespace="apps",app="hello"} 2"#)
        );
        drop((first, second));
        assert_eq!(app.held(), 0);
        assert!(
            activator.metrics().encode().contains(r#"spore_activator_requests_held{namespace="apps",app="hello"} 0"#)
        );
    }

    #[tokio::test]
    async fn a_held_request_waits_for_a_backend_until_its_deadline() {
        let (activator, _) = activator(Duration::from_millis(100), 10);
        let app = hello(&activator);
        let mut backends = app.subscribe();
        let _hold = activator.begin_hold(&app).unwrap();
        let deadline = Instant::now() + Duration::from_millis(100);
        let waited = tokio::time::timeout_at(deadline, backends.changed()).await;
        assert!(waited.is_err(), "no backend: the deadline passes");
        let message = app.timeout_message(Duration::from_millis(100));
        assert!(message.starts_with("apps/hello did not become ready within 100ms: no pod"), "{message}");

        let deadline = Instant::now() + Duration::from_secs(10);
        let later = activator.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            later.update(Change::Pod(pod("apps", "hello", "hello-1", "10.0.0.1", true)));
        });
        tokio::time::timeout_at(deadline, backends.changed()).await.expect("woken by the new backend").unwrap();
        assert_eq!(app.pick().unwrap().pod, "hello-1");
    }
}
