//! What an app's instances use right now: linear memory across live instances and CPU time
//! spent running guest code, for the shim's Stats (and so `kubectl top`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use nix::time::{ClockId, clock_gettime};
use tokio::sync::Notify;

/// Live usage of one app (all of its instances).
#[derive(Debug, Default)]
pub struct Usage {
    memory: AtomicU64,
    cpu_nanos: AtomicU64,
    /// Set when an instance hit `limits.memory` and not yet reported (see [`Usage::take_oom`]).
    oom_pending: AtomicBool,
    oom: Notify,
}

impl Usage {
    /// Linear memory of the app's live instances, bytes.
    pub fn memory_bytes(&self) -> u64 {
        self.memory.load(Ordering::Relaxed)
    }

    /// CPU time spent in the app's guest calls so far.
    pub fn cpu_time(&self) -> Duration {
        Duration::from_nanos(self.cpu_nanos.load(Ordering::Relaxed))
    }

    /// Waits until an instance has hit its memory limit since the last [`Usage::take_oom`].
    pub async fn oom_happened(&self) {
        self.oom.notified().await;
    }

    /// Whether an out-of-memory is pending report; clears it, so each is reported once.
    pub fn take_oom(&self) -> bool {
        self.oom_pending.swap(false, Ordering::AcqRel)
    }

    pub(crate) fn record_oom(&self) {
        self.oom_pending.store(true, Ordering::Release);
        self.oom.notify_one();
    }

    pub(crate) fn grow(&self, bytes: u64) {
        self.memory.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn release(&self, bytes: u64) {
        self.memory.fetch_sub(bytes, Ordering::Relaxed);
    }
}

fn thread_cpu_nanos() -> u64 {
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// Charges the thread CPU time of every poll of `inner` to `usage`. Guests run inside
/// polls (on whatever worker thread), so this measures exactly their execution.
pub(crate) struct Metered<F> {
    inner: Pin<Box<F>>,
    usage: Arc<Usage>,
}

impl<F> Metered<F> {
    pub fn new(inner: F, usage: Arc<Usage>) -> Self {
        Self { inner: Box::pin(inner), usage }
    }
}

impl<F: Future> Future for Metered<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let start = thread_cpu_nanos();
        let result = self.inner.as_mut().poll(cx);
        let spent = thread_cpu_nanos().saturating_sub(start);
        self.usage.cpu_nanos.fetch_add(spent, Ordering::Relaxed);
        result
    }
}

/// Charges guest CPU time to `usage` at the store's guest/host transitions, for instances
/// that run where no [`Metered`] poll wraps them (wasmtime-wasi-http's workers of reused
/// instances). A stretch that ends on another thread than it began is not charged; one
/// suspended mid-guest (an epoch yield) is charged what its thread did meanwhile.
pub(crate) fn meter_guest_calls<T>(store: &mut wasmtime::Store<T>, usage: Arc<Usage>) {
    let mut entered: Option<(std::thread::ThreadId, u64)> = None;
    store.call_hook(move |_, hook| {
        let thread = std::thread::current().id();
        if hook.exiting_host() {
            entered = Some((thread, thread_cpu_nanos()));
        } else if let Some((began_on, start)) = entered.take()
            && began_on == thread
        {
            usage.cpu_nanos.fetch_add(thread_cpu_nanos().saturating_sub(start), Ordering::Relaxed);
        }
        Ok(())
    });
}
