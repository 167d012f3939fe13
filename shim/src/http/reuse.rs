//! `limits.instanceReuse`: a WASI 0.3 HTTP service whose instances serve several requests,
//! through wasmtime-wasi-http's handler. Each instance keeps the sandbox of a fresh one (its
//! own WASI context, memory cap and outbound hooks); what changes is only how many requests
//! it sees. The deadline is per request, enforced inside the instance's event loop and,
//! for a guest that never yields to it, from outside (see [`Expiry`]).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use wasmtime::component::GuestTaskId;
use wasmtime::{Store, StoreContextMut};
use wasmtime_wasi_http::handler::{
    ExpirationError, HandlerState, Instance, InstantiationError, Proxy, ProxyHandler, ProxyPre, ShouldAccept,
    TrapOrPanicError, WorkerExpiration, WorkerState, WorkerStatus,
};

use super::{Response, Serving, http_view};
use crate::exit::Exit;
use crate::limits::{self, DeadlineExceeded, MemoryLimiter};
use crate::policy::{InstanceReuse, Sandbox};
use crate::state::P2State;
use crate::usage::meter_guest_calls;

/// How long an instance with no request in flight stays, waiting for one.
const IDLE_INSTANCE_TIMEOUT: Duration = Duration::from_secs(10);

/// Dispatches requests to reused instances.
pub(crate) struct Reused(ProxyHandler<Instances>);

impl Reused {
    pub fn new(code: Serving, sandbox: Sandbox, reuse: InstanceReuse, timeout: Duration) -> Self {
        Self(ProxyHandler::new(Instances { code, sandbox, reuse, timeout }))
    }

    /// Serves one request; `Err` is why it got no response, as an exit for the caller's
    /// status (504 for the deadline, 500 otherwise).
    pub async fn handle(&self, req: hyper::Request<Incoming>) -> Result<Response, Exit> {
        let req = req.map(|body| body.map_err(wasmtime_wasi_http::Error::Hyper).boxed_unsync());
        let timeout = self.0.state().timeout;
        // The handler's own expiry needs its event loop polled; this one does not.
        let start = Instant::now();
        match tokio::time::timeout(timeout, self.0.handle((), req)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(err)) => Err(exit_of(err, start.elapsed() >= timeout, timeout)),
            Err(_) => Err(deadline(timeout)),
        }
    }
}

/// `late`: the request reached its deadline, so an instance that failed under it was
/// expired for it (a guest stuck where the event loop cannot expire the request alone).
fn exit_of(err: wasmtime::Error, late: bool, timeout: Duration) -> Exit {
    if err.is::<ExpirationError>() || (late && err.is::<TrapOrPanicError>()) {
        return deadline(timeout);
    }
    if let Some(failed) = err.downcast_ref::<InstantiationError<()>>() {
        return super::host_error(format!("failed to instantiate the guest: {:#}", failed.error));
    }
    if err.is::<TrapOrPanicError>() {
        return super::host_error("the instance serving this request failed (see the shim log)".into());
    }
    Exit::from_error(err, &MemoryLimiter::default())
}

fn deadline(timeout: Duration) -> Exit {
    Exit::deadline(DeadlineExceeded(timeout))
}

/// Makes instances: the code serving now, in the app's sandbox.
struct Instances {
    code: Serving,
    sandbox: Sandbox,
    reuse: InstanceReuse,
    timeout: Duration,
}

impl HandlerState for Instances {
    type StoreData = P2State;
    type WorkerExpiration = Expiry;
    type WorkerState = Worker;

    async fn instantiate(&self) -> wasmtime::Result<Instance<P2State, Expiry, Worker>> {
        let ProxyPre::P3(pre) = self.code.current() else {
            wasmtime::bail!("limits.instanceReuse serves WASI 0.3 services only");
        };
        let mut store = Store::new(pre.engine(), P2State::new(&self.sandbox)?);
        // No deadline per instance: it is per request. Epoch yields still let a busy guest
        // be expired from outside.
        limits::apply(&mut store, |s: &mut P2State| &mut s.memory, None);
        meter_guest_calls(&mut store, self.sandbox.usage().clone());
        let service = pre.instantiate_async(&mut store).await?;
        Ok(Instance {
            store,
            proxy: Proxy::P3(service),
            view: http_view,
            expiration: Expiry::new(self.timeout),
            state: Worker { reuse: self.reuse, timeout: self.timeout },
        })
    }
}

/// One instance's request policy.
struct Worker {
    reuse: InstanceReuse,
    timeout: Duration,
}

impl WorkerState for Worker {
    type StoreData = P2State;
    type RequestData = ();

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= self.reuse.max_requests {
            ShouldAccept::Never
        } else if concurrent >= self.reuse.max_concurrent {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        _: StoreContextMut<'_, P2State>,
        (): (),
        _: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync>> {
        Box::pin(tokio::time::sleep(self.timeout))
    }

    fn drop(&self, store: Store<P2State>, result: wasmtime::Result<()>) {
        if let Err(err) = result {
            tracing::error!("a reused instance ended: {}", Exit::from_error(err, &store.data().memory).report());
        }
    }
}

/// When an instance goes: a request in flight past its deadline (the instance's event loop
/// may be stuck in a guest that never yields to it), or idle for [`IDLE_INSTANCE_TIMEOUT`].
struct Expiry {
    timeout: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    armed_for: Option<(WorkerStatus, Instant)>,
}

impl Expiry {
    fn new(timeout: Duration) -> Self {
        Self { timeout, timer: Box::pin(tokio::time::sleep(timeout)), armed_for: None }
    }
}

impl WorkerExpiration for Expiry {
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>, status: WorkerStatus, start: Instant) -> Poll<()> {
        if self.armed_for != Some((status, start)) {
            let lasts = if status == WorkerStatus::Idle { IDLE_INSTANCE_TIMEOUT } else { self.timeout };
            self.timer.as_mut().reset((start + lasts).into());
            self.armed_for = Some((status, start));
        }
        self.timer.as_mut().poll(cx)
    }
}
