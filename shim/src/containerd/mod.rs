//! The containerd shim v2 (`io.containerd.spore.v1`): one shim process per pod, serving
//! containerd's Task API over ttrpc and running each container's Wasm on one shared engine.

pub mod announce;
mod container;
mod content;
pub mod hardening;
mod orphan;
mod rootfs;
mod serve;
pub mod spec;
mod stdin;
mod task;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use containerd_shim::asynchronous::{ExitSignal, Shim, publisher::RemotePublisher};
use containerd_shim::{Config, Error as ShimError, Flags, StartOpts};
use containerd_shim_protos::api::DeleteResponse;

pub use self::task::TaskService;

/// The runtime type containerd knows this shim by.
pub const RUNTIME_ID: &str = "io.containerd.spore.v1";
/// The node-wide code cache every shim shares (override with `SPORE_CACHE_DIR`).
pub const DEFAULT_CACHE_DIR: &str = "/var/lib/spore/code-cache";

/// Entry point of `containerd-shim-spore-v1`.
pub fn main() {
    let args: Vec<_> = std::env::args_os().collect();
    let flags = match containerd_shim::parse(&args[1..]) {
        Ok(flags) => flags,
        Err(err) => fail(format!("bad arguments: {err}")),
    };
    let serving = flags.action.is_empty() && !flags.info && !flags.version;
    // Join the pod's network namespace while this is the only thread: every thread started
    // later (the runtime's, wasmtime's) inherits it, so the pod's sockets live there.
    if let Some(netns) = std::env::var_os(serve::NETNS_ENV).filter(|_| serving)
        && let Err(err) = serve::join_netns(std::path::Path::new(&netns))
    {
        fail(err);
    }
    // Then give up what running guests does not need, still on the only thread, so that
    // every later thread inherits it. Reported once the shim's log is open (a failure too:
    // the server's stderr goes nowhere).
    let hardened = serving.then(|| {
        hardening::harden(hardening::SeccompMode::from_env(std::env::var(hardening::SECCOMP_ENV).ok().as_deref()))
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let result = match flags.action.as_str() {
        _ if flags.info || flags.version => {
            runtime.block_on(containerd_shim::asynchronous::run::<SporeShim>(RUNTIME_ID, None));
            Ok(())
        }
        "start" => runtime.block_on(serve::start(&flags)).map(|address| print!("{address}")),
        "delete" => {
            runtime.block_on(containerd_shim::asynchronous::run::<SporeShim>(RUNTIME_ID, None));
            Ok(())
        }
        "" => runtime.block_on(serve::serve(&flags, hardened.unwrap_or_else(|| Err("not hardened".into())))),
        other => Err(format!("unknown action {other:?}")),
    };
    if let Err(err) = result {
        fail(err);
    }
}

fn fail(message: String) -> ! {
    eprintln!("{RUNTIME_ID}: {message}");
    std::process::exit(1);
}

struct SporeShim {
    exit: Arc<ExitSignal>,
    namespace: String,
    id: String,
    bundle: PathBuf,
    address: String,
}

#[async_trait]
impl Shim for SporeShim {
    type T = TaskService;

    async fn new(_runtime_id: &str, flags: &Flags, _config: &mut Config) -> Self {
        let bundle = if flags.bundle.is_empty() {
            std::env::current_dir().unwrap_or_default()
        } else {
            flags.bundle.clone().into()
        };
        Self {
            exit: Arc::new(ExitSignal::default()),
            namespace: flags.namespace.clone(),
            id: flags.id.clone(),
            bundle,
            address: flags.address.clone(),
        }
    }

    /// Not reached: `main` handles `start` itself (see `serve`).
    async fn start_shim(&mut self, _opts: StartOpts) -> Result<String, ShimError> {
        Err(ShimError::Unimplemented("start is handled by spore's own bootstrap".into()))
    }

    /// Called when containerd could not reach the task's shim: stop the task in the shim if
    /// it still lives and report the task as killed.
    async fn delete_shim(&mut self) -> Result<DeleteResponse, ShimError> {
        let derived = containerd_shim::asynchronous::util::read_spec(&self.bundle).await.ok().map(|spec| {
            containerd_shim::socket_address(&self.address, &self.namespace, &spec::pod_id(&spec, &self.id))
        });
        orphan::stop_in_live_shim(&self.bundle, &self.id, derived).await;
        rootfs::unmount_legacy(&self.bundle);
        log::info!("cleaned up {} in {} after its shim exited", self.id, self.namespace);
        Ok(DeleteResponse {
            exit_status: container::signalled(9),
            exited_at: containerd_shim_protos::protobuf::MessageField::some(task::timestamp(
                std::time::SystemTime::now(),
            )),
            ..Default::default()
        })
    }

    async fn wait(&mut self) {
        self.exit.wait().await;
    }

    async fn create_task_service(&self, publisher: RemotePublisher) -> TaskService {
        TaskService::new(self.namespace.clone(), &self.address, publisher, self.exit.clone())
    }
}
