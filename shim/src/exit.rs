//! How a guest ended, in process terms: an exit code and, when it did not exit by itself,
//! a one-line reason plus a short guest backtrace.

use wasmtime::{Trap, WasmBacktrace};
use wasmtime_wasi::I32Exit;

use crate::limits::{DeadlineExceeded, MemoryLimiter};

/// Exit code of a guest that trapped (like SIGABRT: 128 + 6).
pub const TRAP_EXIT_CODE: i32 = 134;
/// Exit code of a guest stopped by its deadline (as `timeout(1)` reports).
pub const DEADLINE_EXIT_CODE: i32 = 124;
/// Exit code when the host failed the guest (e.g. a host call error).
pub const HOST_ERROR_EXIT_CODE: i32 = 125;

const BACKTRACE_FRAMES: usize = 6;

/// The outcome of running a guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// Process-style exit code: the guest's own, or one of the `*_EXIT_CODE` constants.
    pub code: i32,
    /// Why the guest stopped, when it did not exit by itself.
    pub reason: Option<String>,
    /// The innermost guest frames at a trap, innermost first.
    pub backtrace: Vec<String>,
}

impl Exit {
    pub fn code(code: i32) -> Self {
        Self { code, reason: None, backtrace: Vec::new() }
    }

    pub fn success(&self) -> bool {
        self.code == 0
    }

    /// Reason and backtrace as printable lines; empty for a plain exit.
    pub fn report(&self) -> String {
        let mut out = self.reason.clone().unwrap_or_default();
        for frame in &self.backtrace {
            out.push_str("\n    at ");
            out.push_str(frame);
        }
        out
    }

    /// A guest stopped at its deadline.
    pub(crate) fn deadline(deadline: DeadlineExceeded) -> Self {
        Self { code: DEADLINE_EXIT_CODE, reason: Some(deadline.to_string()), backtrace: Vec::new() }
    }

    /// Classifies the error a guest call returned.
    pub(crate) fn from_error(err: wasmtime::Error, memory: &MemoryLimiter) -> Self {
        if let Some(exit) = err.downcast_ref::<I32Exit>() {
            return Self::code(exit.0);
        }
        if let Some(deadline) = err.downcast_ref::<DeadlineExceeded>() {
            return Self::deadline(*deadline);
        }
        let backtrace = err.downcast_ref::<WasmBacktrace>().map(frames).unwrap_or_default();
        let (code, mut reason) = match err.downcast_ref::<Trap>() {
            Some(trap) => (TRAP_EXIT_CODE, format!("guest trapped: {trap}")),
            None => (HOST_ERROR_EXIT_CODE, format!("guest failed: {}", root_message(&err))),
        };
        if let (Some(requested), Some(cap)) = (memory.refused, memory.cap()) {
            reason.push_str(&format!(
                " (memory limit of {} reached: the guest asked for {}; raise limits.memory)",
                human_bytes(cap),
                human_bytes(requested)
            ));
        }
        Self { code, reason: Some(reason), backtrace }
    }
}

/// The innermost message, without wasmtime's wrapping context lines.
fn root_message(err: &wasmtime::Error) -> String {
    err.chain().last().map(|e| e.to_string()).unwrap_or_else(|| err.to_string())
}

/// The innermost frames worth reading: demangled, with the language runtime's panic and
/// abort machinery skipped (unless nothing else is left).
fn frames(trace: &WasmBacktrace) -> Vec<String> {
    let all: Vec<String> = trace
        .frames()
        .iter()
        .map(|frame| {
            let func = match frame.func_name() {
                Some(name) => format!("{:#}", rustc_demangle::demangle(name)),
                None => format!("func[{}]", frame.func_index()),
            };
            match frame.module().name() {
                Some(module) => format!("{func} ({module})"),
                None => func,
            }
        })
        .collect();
    let is_runtime = |f: &String| RUNTIME_FRAMES.iter().any(|prefix| f.starts_with(prefix));
    let user = all.iter().skip_while(|f| is_runtime(f)).take(BACKTRACE_FRAMES).cloned().collect::<Vec<_>>();
    if user.is_empty() { all.into_iter().take(BACKTRACE_FRAMES).collect() } else { user }
}

/// Frame name prefixes of panic/abort plumbing in guest language runtimes.
const RUNTIME_FRAMES: [&str; 7] = ["abort", "std::", "core::", "__rustc::", "__rust_", "rust_panic", "panic_abort::"];

/// `67108864` → `64Mi`, the way users write limits.
pub(crate) fn human_bytes(bytes: usize) -> String {
    const UNITS: [(&str, usize); 3] = [("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)];
    for (suffix, size) in UNITS {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{suffix}", bytes / size);
        }
    }
    if bytes >= 1 << 20 { format!("{:.1}Mi", bytes as f64 / (1 << 20) as f64) } else { format!("{bytes}B") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn maps_exits_deadlines_and_traps() {
        let none = MemoryLimiter::default();
        assert_eq!(Exit::from_error(wasmtime::Error::new(I32Exit(7)), &none), Exit::code(7));
        let exit = Exit::from_error(wasmtime::Error::new(DeadlineExceeded(Duration::from_secs(30))), &none);
        assert_eq!((exit.code, exit.reason.as_deref()), (124, Some("deadline exceeded after 30s")));
        let exit = Exit::from_error(wasmtime::Error::new(Trap::UnreachableCodeReached), &none);
        assert_eq!(exit.code, TRAP_EXIT_CODE);
        assert!(exit.reason.unwrap().starts_with("guest trapped: "));
    }

    #[test]
    fn trap_after_refused_growth_names_the_limit() {
        let mut memory = MemoryLimiter::new(Some(64 << 20), Default::default());
        memory.refused = Some(80 << 20);
        let exit = Exit::from_error(wasmtime::Error::new(Trap::UnreachableCodeReached), &memory);
        let reason = exit.reason.unwrap();
        assert!(reason.contains("memory limit of 64Mi reached: the guest asked for 80Mi"), "{reason}");
    }

    #[test]
    fn formats_bytes_like_quantities() {
        assert_eq!(human_bytes(64 << 20), "64Mi");
        assert_eq!(human_bytes(1 << 30), "1Gi");
        assert_eq!(human_bytes(1536), "1536B");
    }
}
