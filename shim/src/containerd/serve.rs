//! The shim's own process lifecycle (`start` and serving), so that one binary works with
//! every containerd in use: 1.6 expects a bare socket address from `start` and calls
//! `containerd.task.v2.Task`; 1.7 and 2.x also take a bare address and call v2 or v3.
//! The task messages of v2 and v3 are the same, so one service answers under both names.

use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::Arc;

use containerd_shim::asynchronous::publisher::RemotePublisher;
use containerd_shim::asynchronous::{ExitSignal, spawn};
use containerd_shim::{Flags, StartOpts};
use containerd_shim_protos::shim_async::{Task, create_task};
use containerd_shim_protos::ttrpc::r#async::Server;
use containerd_shim_protos::ttrpc::r#async::transport::Listener;

use super::TaskService;
use super::spec::pod_id;

/// Tells the shim server which network namespace to join: the pod's, from the sandbox spec.
pub const NETNS_ENV: &str = "SPORE_NETNS";

const TASK_V3: &str = "containerd.task.v3.Task";
const TASK_V2: &str = "containerd.task.v2.Task";

/// `start`: make sure the pod's shim server runs, and print its address.
pub async fn start(flags: &Flags) -> Result<String, String> {
    let bundle = std::env::current_dir().map_err(|e| format!("no bundle directory: {e}"))?;
    let spec = containerd_shim::asynchronous::util::read_spec(&bundle)
        .await
        .map_err(|e| format!("cannot read {}/config.json: {e}", bundle.display()))?;
    let opts = StartOpts {
        id: flags.id.clone(),
        publish_binary: flags.publish_binary.clone(),
        address: flags.address.clone(),
        ttrpc_address: std::env::var("TTRPC_ADDRESS").unwrap_or_default(),
        namespace: flags.namespace.clone(),
        debug: flags.debug,
        ..StartOpts::default()
    };
    let netns = network_namespace(&spec);
    let vars: Vec<(&str, &str)> = netns.iter().map(|path| (NETNS_ENV, path.as_str())).collect();
    let address =
        spawn(opts, &pod_id(&spec, &flags.id), vars).await.map_err(|e| format!("cannot start the shim server: {e}"))?;
    write_address(&bundle, &address)?;
    Ok(address)
}

/// The bundle's `address` file: how a restarted containerd finds this task's running shim
/// (1.6 reads only this file; 1.7 and 2.x fall back to it when their bootstrap.json is
/// missing). Without it containerd takes the shim for dead and cleans the task up.
fn write_address(bundle: &Path, address: &str) -> Result<(), String> {
    let (tmp, path) = (bundle.join(".address"), bundle.join(ADDRESS_FILE));
    std::fs::write(&tmp, address)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The file in each bundle that holds its shim's socket address.
pub const ADDRESS_FILE: &str = "address";

/// The network namespace the spec asks for: a path to join (CRI pods), [`NEW_NETNS`] for a
/// fresh one (`ctr run` without `--net-host`), or `None` for the host's.
fn network_namespace(spec: &oci_spec::runtime::Spec) -> Option<String> {
    let ns = spec
        .linux()
        .as_ref()?
        .namespaces()
        .as_ref()?
        .iter()
        .find(|ns| ns.typ() == oci_spec::runtime::LinuxNamespaceType::Network)?;
    Some(ns.path().as_ref().map_or_else(|| NEW_NETNS.to_string(), |p| p.display().to_string()))
}

/// [`NETNS_ENV`] value asking for a fresh network namespace with only loopback, as runc gives.
const NEW_NETNS: &str = "new";

/// Moves the calling thread into the network namespace named by [`NETNS_ENV`].
pub fn join_netns(netns: &Path) -> Result<(), String> {
    use nix::sched::CloneFlags;
    if netns == Path::new(NEW_NETNS) {
        nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(|e| format!("cannot create a network namespace: {e}"))?;
        return loopback_up();
    }
    let file =
        std::fs::File::open(netns).map_err(|e| format!("cannot open network namespace {}: {e}", netns.display()))?;
    nix::sched::setns(file, CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("cannot join network namespace {}: {e}", netns.display()))
}

/// A new network namespace starts with `lo` down.
fn loopback_up() -> Result<(), String> {
    let status = std::process::Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .map_err(|e| format!("cannot run `ip link set lo up` (iproute2): {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("`ip link set lo up` failed: {status}")) }
}

/// Serving: the Task API on the pod's socket until containerd shuts the shim down.
/// `hardened` is what `main` did to the process (see `hardening`): a failure stops the shim.
pub async fn serve(flags: &Flags, hardened: Result<String, String>) -> Result<(), String> {
    if flags.socket.is_empty() {
        return Err("-socket is required".into());
    }
    let _ = containerd_shim::logger::init(flags.debug, "info", &flags.namespace, &flags.id);
    match hardened {
        Ok(report) => log::info!("shim server hardened: {report}"),
        Err(err) => {
            log::error!("cannot harden the shim server, not serving: {err}");
            return Err(err);
        }
    }
    let Some(listener) = listen(&flags.socket).await? else {
        // Another shim already serves this pod; containerd will use it.
        server_started();
        return Ok(());
    };
    let ttrpc_address = std::env::var("TTRPC_ADDRESS").map_err(|_| "TTRPC_ADDRESS is not set".to_string())?;
    let publisher = RemotePublisher::new(&ttrpc_address)
        .await
        .map_err(|e| format!("cannot reach containerd at {ttrpc_address}: {e}"))?;
    let exit = Arc::new(ExitSignal::default());
    let tasks = Arc::new(TaskService::new(flags.namespace.clone(), &flags.address, publisher, exit.clone()));
    let task: Arc<dyn Task + Send + Sync> = tasks.clone();
    let mut services = create_task(task.clone());
    if let Some(v2) = create_task(task).remove(TASK_V3) {
        services.insert(TASK_V2.to_string(), v2);
    }
    let mut server = Server::new().add_listener(listener).register_service(services);
    server.start().await.map_err(|e| format!("cannot serve ttrpc: {e}"))?;
    server_started();
    tokio::spawn(super::orphan::watch(tasks, ttrpc_address, exit.clone()));
    exit.wait().await;
    let _ = server.shutdown().await;
    let _ = std::fs::remove_file(socket_path(&flags.socket));
    Ok(())
}

/// The filesystem path of a `unix://` socket address.
pub fn socket_path(address: &str) -> &str {
    address.strip_prefix("unix://").unwrap_or(address)
}

/// Binds the socket; `None` when a live shim already owns it.
async fn listen(address: &str) -> Result<Option<Listener>, String> {
    let path = socket_path(address);
    if let Some(dir) = Path::new(path).parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let listener = match UnixListener::bind(path) {
        Ok(listener) => listener,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Ok(None);
            }
            std::fs::remove_file(path).map_err(|e| format!("cannot remove stale socket {path}: {e}"))?;
            UnixListener::bind(path).map_err(|e| format!("cannot listen on {path}: {e}"))?
        }
        Err(e) => return Err(format!("cannot listen on {path}: {e}")),
    };
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    Listener::try_from(listener).map(Some).map_err(|e| format!("ttrpc listener: {e}"))
}

/// `start` waits for our stdout to close: point it at stderr once the server is up.
fn server_started() {
    if let Err(err) = nix::unistd::dup2_stdout(std::io::stderr()) {
        log::warn!("cannot detach from the start pipe: {err}");
    }
}
