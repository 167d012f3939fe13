//! A shim outlives containerd restarts (containerd finds it again through the bundle's
//! `address` file), but not its containerd: a shim whose tasks containerd has cleaned up,
//! or whose containerd has been unreachable for long, stops its guests and exits instead
//! of living on with nobody to report to.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use containerd_shim::asynchronous::ExitSignal;
use containerd_shim_protos::api;
use containerd_shim_protos::shim_async::{Client, TaskClient};
use containerd_shim_protos::ttrpc::context;

use super::TaskService;
use super::serve::{ADDRESS_FILE, socket_path};

/// Seconds containerd may stay unreachable before the shim takes itself for orphaned.
pub const ORPHAN_TIMEOUT_ENV: &str = "SPORE_ORPHAN_TIMEOUT";
/// Longer than any restart or upgrade of containerd: only a containerd gone for good.
const DEFAULT_ORPHAN_TIMEOUT: Duration = Duration::from_secs(600);
/// Each look connects to containerd's socket: rare enough for many shims per node, frequent
/// against the timeouts.
const CHECK_EVERY: Duration = Duration::from_secs(10);
/// A shim with no task left (containerd never created one, or forgot to shut it down).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// What one look at the world says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    pub containerd_reachable: bool,
    pub tasks: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Stay,
    Exit(String),
}

/// The pure part: turns observations over time into the decision to leave.
#[derive(Debug)]
pub struct Watchdog {
    orphan_timeout: Duration,
    unreachable_since: Option<Instant>,
    idle_since: Option<Instant>,
}

impl Watchdog {
    pub fn new(orphan_timeout: Duration) -> Self {
        Self { orphan_timeout, unreachable_since: None, idle_since: None }
    }

    pub fn observe(&mut self, seen: Observation, now: Instant) -> Verdict {
        self.unreachable_since = if seen.containerd_reachable { None } else { self.unreachable_since.or(Some(now)) };
        self.idle_since = if seen.tasks > 0 { None } else { self.idle_since.or(Some(now)) };
        if let Some(since) = self.unreachable_since.filter(|s| now.duration_since(*s) >= self.orphan_timeout) {
            return Verdict::Exit(format!(
                "containerd has been unreachable for {}s (more than {ORPHAN_TIMEOUT_ENV}={}s)",
                now.duration_since(since).as_secs(),
                self.orphan_timeout.as_secs()
            ));
        }
        if self.idle_since.is_some_and(|s| now.duration_since(s) >= IDLE_TIMEOUT) {
            return Verdict::Exit(format!("no task for {}s", IDLE_TIMEOUT.as_secs()));
        }
        Verdict::Stay
    }
}

fn orphan_timeout() -> Duration {
    std::env::var(ORPHAN_TIMEOUT_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(DEFAULT_ORPHAN_TIMEOUT, Duration::from_secs)
}

/// Watches until the shim should leave, then stops every guest and signals `exit`.
/// `ttrpc_address` is containerd's socket: reachable means containerd runs.
pub async fn watch(tasks: Arc<TaskService>, ttrpc_address: String, exit: Arc<ExitSignal>) {
    let socket = socket_path(&ttrpc_address).to_string();
    let mut watchdog = Watchdog::new(orphan_timeout());
    loop {
        tokio::select! {
            () = exit.wait() => return,
            () = tokio::time::sleep(CHECK_EVERY) => {}
        }
        if tasks.forget_tasks_without_bundle() > 0 && tasks.task_count() == 0 {
            log::warn!("shim exits: containerd cleaned up all its tasks without it");
            exit.signal();
            return;
        }
        let seen = Observation {
            containerd_reachable: tokio::net::UnixStream::connect(&socket).await.is_ok(),
            tasks: tasks.task_count(),
        };
        if let Verdict::Exit(why) = watchdog.observe(seen, Instant::now()) {
            log::warn!("shim exits: {why}");
            tasks.stop_all();
            exit.signal();
            return;
        }
    }
}

/// `delete` for a shim containerd could not reach: if a shim still serves this bundle's
/// task (containerd lost track of it), kill and delete the task there so that nothing is
/// left running. The shim is found through the bundle's `address` file, else (shims that
/// wrote none) at the address `start` derives from containerd's socket, namespace and pod.
pub async fn stop_in_live_shim(bundle: &Path, id: &str, derived_address: Option<String>) {
    let recorded = std::fs::read_to_string(bundle.join(ADDRESS_FILE)).ok().map(|a| a.trim().to_string());
    for address in recorded.into_iter().chain(derived_address) {
        match tokio::time::timeout(Duration::from_secs(5), stop_task(&address, id)).await {
            Ok(Ok(())) => {
                log::info!("stopped {id} in its still running shim at {address}");
                return;
            }
            Ok(Err(err)) => log::debug!("no live shim for {id} at {address}: {err}"),
            Err(_) => log::warn!("the shim at {address} did not stop {id} within 5s"),
        }
    }
}

async fn stop_task(address: &str, id: &str) -> Result<(), containerd_shim_protos::ttrpc::Error> {
    let client = TaskClient::new(Client::connect(address).await?);
    let ctx = || context::with_timeout(Duration::from_secs(2).as_nanos() as i64);
    let id = id.to_string();
    client.kill(ctx(), &api::KillRequest { id: id.clone(), signal: 9, all: true, ..Default::default() }).await?;
    client.wait(ctx(), &api::WaitRequest { id: id.clone(), ..Default::default() }).await?;
    client.delete(ctx(), &api::DeleteRequest { id: id.clone(), ..Default::default() }).await?;
    client.shutdown(ctx(), &api::ShutdownRequest { id, ..Default::default() }).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(600);

    /// An observation at a second since the start.
    type Timeline = (u64, Observation);

    fn seen(containerd_reachable: bool, tasks: usize) -> Observation {
        Observation { containerd_reachable, tasks }
    }

    #[test]
    fn a_shim_leaves_only_when_containerd_is_gone_for_long_or_it_has_nothing_to_run() {
        let cases: [(&str, &[Timeline], bool); 6] = [
            ("containerd restarting", &[(0, seen(false, 1)), (30, seen(false, 1)), (31, seen(true, 1))], false),
            (
                "containerd back, then briefly away",
                &[(0, seen(false, 1)), (599, seen(true, 1)), (700, seen(false, 1))],
                false,
            ),
            ("containerd gone for good", &[(0, seen(false, 2)), (300, seen(false, 2)), (600, seen(false, 2))], true),
            ("idle for a while", &[(0, seen(true, 0)), (59, seen(true, 0))], false),
            ("idle too long", &[(0, seen(true, 0)), (30, seen(true, 0)), (60, seen(true, 0))], true),
            ("a task came in time", &[(0, seen(true, 0)), (30, seen(true, 1)), (100, seen(true, 1))], false),
        ];
        for (name, observations, exits) in cases {
            let start = Instant::now();
            let mut watchdog = Watchdog::new(TIMEOUT);
            let verdict = observations
                .iter()
                .map(|(at, seen)| watchdog.observe(*seen, start + Duration::from_secs(*at)))
                .last()
                .unwrap();
            assert_eq!(matches!(verdict, Verdict::Exit(_)), exits, "{name}: {verdict:?}");
        }
    }

    #[test]
    fn the_exit_reason_names_the_setting() {
        let start = Instant::now();
        let mut watchdog = Watchdog::new(Duration::from_secs(10));
        watchdog.observe(seen(false, 1), start);
        let Verdict::Exit(why) = watchdog.observe(seen(false, 1), start + Duration::from_secs(12)) else {
            panic!("stayed")
        };
        assert_eq!(why, "containerd has been unreachable for 12s (more than SPORE_ORPHAN_TIMEOUT=10s)");
    }
}
