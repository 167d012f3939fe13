//! Per-instance limits inside the store: the memory cap and the wall-clock deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use spore_crds::units::format_duration;
use wasmtime::{ResourceLimiter, Store, UpdateDeadline};

use crate::usage::Usage;

/// Caps the total linear memory of one instance (all its memories together), and keeps
/// the app's live memory gauge up to date.
#[derive(Debug, Default)]
pub(crate) struct MemoryLimiter {
    cap: Option<usize>,
    used: usize,
    /// Set when a growth was refused: the size the guest asked for.
    pub refused: Option<usize>,
    usage: Arc<Usage>,
}

impl MemoryLimiter {
    pub fn new(cap: Option<u64>, usage: Arc<Usage>) -> Self {
        Self { cap: cap.map(|c| usize::try_from(c).unwrap_or(usize::MAX)), usage, ..Self::default() }
    }

    pub fn cap(&self) -> Option<usize> {
        self.cap
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let total = self.used - current.min(self.used) + desired;
        if self.cap.is_some_and(|cap| total > cap) {
            tracing::debug!(requested = total, cap = ?self.cap, "memory growth refused by limits.memory");
            self.refused = Some(total);
            self.usage.record_oom();
            return Ok(false);
        }
        self.usage.grow((total - self.used) as u64);
        self.used = total;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

impl Drop for MemoryLimiter {
    fn drop(&mut self) {
        self.usage.release(self.used as u64);
    }
}

/// Far above what real programs use; stops a guest from exhausting host memory via tables.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// The trap raised when an instance outlives its `limits.timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadlineExceeded(pub Duration);

impl std::fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "deadline exceeded after {}", format_duration(self.0))
    }
}

impl std::error::Error for DeadlineExceeded {}

/// Installs the memory limiter and the deadline. Execution also yields to the async
/// executor every epoch tick, so dropping the run's future (kill, shutdown) stops the guest
/// promptly even in a tight loop.
pub(crate) fn apply<T: Send + 'static>(
    store: &mut Store<T>,
    limiter: impl FnMut(&mut T) -> &mut MemoryLimiter + Send + Sync + 'static,
    timeout: Option<Duration>,
) {
    let mut limiter = limiter;
    store.limiter(move |state| limiter(state) as &mut dyn ResourceLimiter);
    let start = Instant::now();
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| match timeout {
        Some(limit) if start.elapsed() >= limit => Err(wasmtime::Error::new(DeadlineExceeded(limit))),
        _ => Ok(UpdateDeadline::Yield(1)),
    });
}
