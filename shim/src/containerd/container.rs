//! One container of a pod: created from its bundle, started as a guest on the engine,
//! stopped by a signal or by its own exit, and its exit status kept for Wait and Delete.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::sync::watch;

use super::announce;
use super::spec::Hosting;
use crate::{AppConfig, Engine, Exit, Sandbox, Shutdown, Stdio, Wasm};

/// The signal that asks an HTTP guest to drain rather than stop at once.
const SIGTERM: u32 = 15;

/// How a task stands, as containerd sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Stopped { exit_status: u32, exited_at: SystemTime },
}

/// What a container runs.
pub enum Workload {
    Sandbox,
    Guest {
        wasm: Wasm,
        sandbox: Sandbox,
        hosting: Hosting,
    },
    /// A node precompile: compiles `module` on `engine` into the code cache, then exits.
    Precompile {
        module: Vec<u8>,
        engine: Engine,
        termination_log: Option<PathBuf>,
    },
}

pub struct Container {
    pub id: String,
    pub bundle: PathBuf,
    /// containerd's FIFO paths ("" when not attached).
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    /// Taken when the task ends: dropping it closes the guest's output FIFOs, which is how
    /// containerd's IO copiers (and so CRI's exit handling) learn the output is complete.
    workload: Mutex<Option<Workload>>,
    usage: Option<Arc<crate::Usage>>,
    status: watch::Sender<Status>,
    /// The last signal containerd sent, if any.
    signal: watch::Sender<Option<u32>>,
}

/// Exit status of a task ended by a signal, as a shell and containerd report it.
pub fn signalled(signal: u32) -> u32 {
    128 + signal
}

impl Container {
    pub fn new(id: String, bundle: PathBuf, [stdin, stdout, stderr]: [String; 3], workload: Workload) -> Self {
        Self {
            id,
            bundle,
            stdin,
            stdout,
            stderr,
            usage: match &workload {
                Workload::Sandbox | Workload::Precompile { .. } => None,
                Workload::Guest { sandbox, .. } => Some(sandbox.usage().clone()),
            },
            workload: Mutex::new(Some(workload)),
            status: watch::Sender::new(Status::Created),
            signal: watch::Sender::new(None),
        }
    }

    /// Live usage of the guest; `None` for the pod sandbox.
    pub fn usage(&self) -> Option<&Arc<crate::Usage>> {
        self.usage.as_ref()
    }

    pub fn status(&self) -> Status {
        *self.status.borrow()
    }

    /// Waits until the task has stopped; returns its exit status and time.
    pub async fn wait(&self) -> (u32, SystemTime) {
        let mut rx = self.status.subscribe();
        loop {
            if let Status::Stopped { exit_status, exited_at } = *rx.borrow_and_update() {
                return (exit_status, exited_at);
            }
            if rx.changed().await.is_err() {
                return (signalled(9), SystemTime::now());
            }
        }
    }

    /// Marks the task started; `run` then does the work.
    pub fn mark_running(&self) {
        self.status.send_replace(Status::Running);
    }

    /// Runs the workload to its end (or until a stop signal) and records the exit. An HTTP
    /// guest drains on SIGTERM (see [`Shutdown`]); any other signal, or any signal to
    /// another workload, stops it at once.
    pub async fn run(&self) -> (u32, SystemTime) {
        // Taken, not shared: what the run lets go of is freed at once (a tiered HTTP guest's
        // baseline code and its instance pool, once optimized code replaces them).
        let workload = self.workload.lock().expect("workload lock").take();
        let exit_status = match workload {
            None => signalled(9),
            Some(workload) => {
                let drains = workload.drains_on_sigterm();
                tokio::select! {
                    status = self.execute(workload) => status,
                    signal = self.signalled(|s| !(drains && s == SIGTERM)) => signalled(signal),
                }
            }
        };
        self.release();
        let exited_at = SystemTime::now();
        self.status.send_replace(Status::Stopped { exit_status, exited_at });
        (exit_status, exited_at)
    }

    /// Drops the workload: its instances, sandbox and output streams.
    pub fn release(&self) {
        self.workload.lock().expect("workload lock").take();
    }

    async fn execute(&self, workload: Workload) -> u32 {
        match workload {
            Workload::Sandbox => std::future::pending().await,
            Workload::Precompile { module, engine, termination_log } => match precompile(engine, module).await {
                Ok(()) => 0,
                Err(err) => self.failed(termination_log.as_deref(), &err, 1),
            },
            Workload::Guest { wasm, sandbox, hosting } if wasm.kind().serves_http() => {
                let shutdown =
                    Shutdown { requested: self.signalled(|s| s == SIGTERM), drain_delay: hosting.drain_delay };
                match serve(wasm, &sandbox, &hosting, &self.id, shutdown).await {
                    Ok(()) => 0,
                    Err(err) => self.failed(hosting.termination_log.as_deref(), &err.to_string(), 1),
                }
            }
            Workload::Guest { wasm, sandbox, hosting } => match crate::run_command(&wasm, &sandbox).await {
                Ok(exit) if exit.reason.is_some() => {
                    self.failed(hosting.termination_log.as_deref(), &exit.report(), exit_status(&exit))
                }
                Ok(exit) => exit_status(&exit),
                Err(err) => self.failed(
                    hosting.termination_log.as_deref(),
                    &err.to_string(),
                    crate::HOST_ERROR_EXIT_CODE as u32,
                ),
            },
        }
    }

    /// Logs why the guest failed and leaves it as the termination message, which kubelet
    /// shows in the pod's status.
    fn failed(&self, termination_log: Option<&std::path::Path>, report: &str, exit_status: u32) -> u32 {
        log::warn!("container {}: {report}", self.id);
        if let Some(path) = termination_log
            && let Err(err) = std::fs::write(path, report)
        {
            log::warn!("container {}: cannot write the termination message to {}: {err}", self.id, path.display());
        }
        exit_status
    }

    /// Delivers `signal` to the task. A task not started yet stops at once; a running one
    /// stops within one epoch tick (its guest future is dropped), or drains (HTTP, SIGTERM).
    pub fn kill(&self, signal: u32) {
        if let Status::Created = self.status() {
            self.status.send_replace(Status::Stopped { exit_status: signalled(signal), exited_at: SystemTime::now() });
            self.release();
            return;
        }
        self.signal.send_replace(Some(signal));
    }

    /// Resolves with the first signal, from now on or already received, that `matches`.
    async fn signalled(&self, matches: impl Fn(u32) -> bool) -> u32 {
        let mut rx = self.signal.subscribe();
        let signal = rx.wait_for(|s| s.is_some_and(&matches)).await.map(|s| s.expect("matched a signal"));
        match signal {
            Ok(signal) => signal,
            Err(_) => std::future::pending().await,
        }
    }
}

impl Workload {
    fn drains_on_sigterm(&self) -> bool {
        matches!(self, Workload::Guest { wasm, .. } if wasm.kind().serves_http())
    }
}

fn exit_status(exit: &Exit) -> u32 {
    u32::try_from(exit.code).unwrap_or(crate::HOST_ERROR_EXIT_CODE as u32)
}

/// Serves on 0.0.0.0 in the pod's network namespace: the guest's port and the metrics port.
/// Once it serves, the pod announces itself if asked to (see [`announce`]).
async fn serve(
    wasm: Wasm,
    sandbox: &Sandbox,
    hosting: &Hosting,
    container: &str,
    shutdown: Shutdown<impl Future<Output = u32>>,
) -> crate::Result<()> {
    let any = IpAddr::from(Ipv4Addr::UNSPECIFIED);
    let listener = crate::bind(any, sandbox).await?;
    let metrics = match hosting.metrics_port {
        Some(port) => Some(crate::bind_metrics(SocketAddr::new(any, port), sandbox).await?),
        None => None,
    };
    let port = listener.local_addr().map(|a| a.port()).ok();
    let serving = || {
        if let (Some(to), Some(port)) = (hosting.announce.clone(), port) {
            announce::spawn(*to, container.to_string(), port);
        }
    };
    crate::http::serve_http_then(wasm, sandbox, listener, metrics, shutdown, serving).await
}

/// Compiles on a blocking thread (the compile itself runs at idle priority) and logs what
/// it did, which `kubectl logs` of a precompile pod does not show: the shim's log does.
async fn precompile(engine: Engine, module: Vec<u8>) -> Result<(), String> {
    let started = std::time::Instant::now();
    let compiled = tokio::task::spawn_blocking(move || engine.precompile(&module))
        .await
        .map_err(|e| format!("the compile thread failed: {e}"))?
        .map_err(|e| e.to_string())?;
    let seconds = started.elapsed().as_secs_f32();
    match compiled.origin() {
        crate::CodeOrigin::Cache => log::info!("precompile: {} already in the code cache", compiled.kind()),
        crate::CodeOrigin::Compiled => {
            log::info!("precompile: {} compiled and cached in {seconds:.1} s", compiled.kind())
        }
    }
    Ok(())
}

/// Builds a guest workload from its module bytes: checks the Wasm now, so that a bad
/// module fails Create with a reason rather than Start. `source` names where it came from.
/// Only HTTP components get a metrics listener and announce themselves; commands ignore
/// `hosting.metrics_port` and `hosting.announce`.
pub fn guest(
    bytes: &[u8],
    source: &str,
    config: AppConfig,
    mut hosting: Hosting,
    engine: &Engine,
    stdio: Stdio,
) -> Result<Workload, String> {
    let sandbox = Sandbox::new(config, stdio).map_err(|e| e.to_string())?;
    let engine = engine.for_sandbox(&sandbox).map_err(|e| e.to_string())?;
    let wasm = engine.load(bytes).map_err(|e| format!("{source}: {e}"))?;
    hosting.metrics_port = hosting.metrics_port.filter(|_| wasm.kind().serves_http());
    hosting.announce = hosting.announce.filter(|_| wasm.kind().serves_http());
    if let Some(port) = hosting.metrics_port {
        crate::http::check_metrics_port(port, &sandbox).map_err(|e| e.to_string())?;
    }
    Ok(Workload::Guest { wasm, sandbox, hosting })
}
