//! containerd's Task service: each call validated, then applied to the pod's containers.
//! Errors are translated to ttrpc status codes here, once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use containerd_shim::asynchronous::ExitSignal;
use containerd_shim::asynchronous::publisher::RemotePublisher;
use containerd_shim_protos::api;
use containerd_shim_protos::cgroups::metrics::{CPUStat, CPUUsage, MemoryEntry, MemoryStat, Metrics};
use containerd_shim_protos::events::task::{TaskCreate, TaskDelete, TaskExit, TaskOOM, TaskStart};
use containerd_shim_protos::protobuf::well_known_types::{empty::Empty, timestamp::Timestamp};
use containerd_shim_protos::protobuf::{MessageDyn, MessageField};
use containerd_shim_protos::shim_async::Task;
use containerd_shim_protos::topics;
use containerd_shim_protos::ttrpc::r#async::TtrpcContext;
use containerd_shim_protos::ttrpc::{self, Code};
use wasmtime_wasi::cli::{AsyncStdinStream, OutputFile};

use super::DEFAULT_CACHE_DIR;
use super::container::{Container, Status, Workload, guest};
use super::content::ContentStore;
use super::rootfs::{Rootfs, RootfsError};
use super::spec::ContainerKind;
use super::stdin::{FifoReader, end_pending_open};
use crate::compose::{MAIN, Part, Plan};
use crate::policy::{AppConfig, ComponentGrant};
use crate::{Engine, EngineConfig, Stdio};
use spore_crds::Wiring;

type TtrpcResult<T> = ttrpc::Result<T>;

fn status(code: Code, message: impl Into<String>) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, message.into()))
}

pub fn timestamp(time: SystemTime) -> Timestamp {
    let since = time.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    Timestamp { seconds: since.as_secs() as i64, nanos: since.subsec_nanos() as i32, ..Default::default() }
}

/// The Task service of one shim (one pod).
pub struct TaskService {
    namespace: String,
    publisher: Arc<RemotePublisher>,
    exit: Arc<ExitSignal>,
    engine: Engine,
    content: ContentStore,
    containers: Mutex<HashMap<String, Arc<Container>>>,
    /// The pod's components by name, from their containers' Create.
    held: Mutex<HashMap<String, Arc<Held>>>,
}

/// A component's code and grant, kept for the app's container to link until its own
/// container is deleted.
struct Held {
    container: String,
    bytes: Vec<u8>,
    grant: ComponentGrant,
    volumes: std::collections::BTreeMap<String, PathBuf>,
}

impl TaskService {
    /// `containerd` is containerd's gRPC socket, where Wasm image layers are read from.
    pub fn new(namespace: String, containerd: &str, publisher: RemotePublisher, exit: Arc<ExitSignal>) -> Self {
        let cache_dir =
            std::env::var_os("SPORE_CACHE_DIR").map_or_else(|| PathBuf::from(DEFAULT_CACHE_DIR), PathBuf::from);
        let engine = Engine::new(EngineConfig { cache_dir: Some(cache_dir), ..EngineConfig::default() })
            .expect("the wasmtime engine starts with Spore's fixed configuration");
        let content = ContentStore::new(containerd.strip_prefix("unix://").unwrap_or(containerd), namespace.clone());
        Self {
            namespace,
            publisher: Arc::new(publisher),
            exit,
            engine,
            content,
            containers: Mutex::new(HashMap::new()),
            held: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, id: &str) -> TtrpcResult<Arc<Container>> {
        self.containers
            .lock()
            .expect("containers lock")
            .get(id)
            .cloned()
            .ok_or_else(|| status(Code::NOT_FOUND, format!("container {id} not found")))
    }

    async fn workload(
        &self,
        req: &api::CreateTaskRequest,
        spec: &oci_spec::runtime::Spec,
        bundle: &Path,
    ) -> Result<Workload, String> {
        let rootfs = || Rootfs::from_mounts(&req.rootfs, &bundle.join("rootfs"));
        let (module, mut config, hosting) = match ContainerKind::from_spec(spec).map_err(|e| e.to_string())? {
            ContainerKind::Sandbox => return Ok(Workload::Sandbox),
            ContainerKind::Component { module, grant, volumes } => {
                let (bytes, _) = self.module_bytes(&req.id, rootfs(), module.as_deref()).await?;
                let held = Held { container: req.id.clone(), bytes, grant, volumes };
                self.held.lock().expect("held lock").insert(held.grant.name.clone(), Arc::new(held));
                return Ok(Workload::Sandbox);
            }
            ContainerKind::Wasm { module, config, hosting } => (module, config, hosting),
            ContainerKind::Precompile { module, listens, max_concurrency, termination_log } => {
                let (module, _) = self.module_bytes(&req.id, rootfs(), module.as_deref()).await?;
                let engine = self.engine.for_guest(listens, max_concurrency).map_err(|e| e.to_string())?;
                return Ok(Workload::Precompile { module, engine, termination_log });
            }
        };
        let rootfs = rootfs();
        let (mut bytes, mut source) = self.module_bytes(&req.id, rootfs, module.as_deref()).await?;
        if !hosting.wiring.is_empty() {
            bytes = self.link(&bytes, &hosting.wiring, &mut config)?;
            source = format!("{source} linked with its components");
        }
        let io = stdio(req).map_err(|e| e.to_string())?;
        guest(&bytes, &source, *config, hosting, &self.engine, io)
    }

    /// Links the app's code with its components' (held since their containers were
    /// created: kubelet starts sidecars first), and grants each its own capabilities.
    fn link(&self, main: &[u8], wiring: &Wiring, config: &mut AppConfig) -> Result<Vec<u8>, String> {
        let held: Vec<Arc<Held>> = {
            let held = self.held.lock().expect("held lock");
            let of = |name: &str| {
                held.get(name).cloned().ok_or_else(|| {
                    format!(
                        "component {name:?} has no container in this pod yet; its container (a sidecar the operator declares) must be started before the app's"
                    )
                })
            };
            wiring.components.iter().map(|c| of(&c.name)).collect::<Result<_, _>>()?
        };
        let plan = Plan {
            main: Part { name: MAIN, bytes: main, plugs: &wiring.plugs },
            others: wiring
                .components
                .iter()
                .zip(&held)
                .map(|(c, h)| Part { name: &c.name, bytes: &h.bytes, plugs: &c.plugs })
                .collect(),
            middleware: &wiring.middleware,
        };
        let linked = self.engine.link(&plan).map_err(|e| format!("the app's components do not link: {e}"))?;
        for h in &held {
            config.volumes.extend(h.volumes.clone());
        }
        config.components = held.iter().map(|h| h.grant.clone()).collect();
        Ok(linked)
    }

    /// The entrypoint file in the image's rootfs (plain images), else the image's Wasm layer
    /// from containerd's content store (Wasm artifact images, whose rootfs may be of any
    /// kind). Returns the bytes and their source.
    async fn module_bytes(
        &self,
        id: &str,
        rootfs: Result<Rootfs, RootfsError>,
        entrypoint: Option<&Path>,
    ) -> Result<(Vec<u8>, String), String> {
        let mut unreadable = None;
        if let Some(path) = entrypoint {
            match rootfs.and_then(|rootfs| rootfs.read(path)) {
                Ok(Some(bytes)) => return Ok((bytes, path.display().to_string())),
                Ok(None) => {}
                Err(err @ (RootfsError::UnsupportedMount { .. } | RootfsError::NoLayers)) => unreadable = Some(err),
                Err(err) => return Err(err.to_string()),
            }
        }
        match self.content.wasm_of(id).await {
            Ok(bytes) => Ok((bytes, "the image's Wasm layer".into())),
            Err(image_error) => Err(match (entrypoint, unreadable) {
                (Some(path), Some(why)) => {
                    format!("{}: {why}; and the image has no Wasm layer either ({image_error})", path.display())
                }
                (Some(path), None) => format!(
                    "{}: not found in the image, and the image has no Wasm layer either ({image_error}); \
                     make the entrypoint the .wasm file (e.g. ENTRYPOINT [\"/app.wasm\"]) or build a Wasm image \
                     with `spore image build`",
                    path.display()
                ),
                (None, _) => format!(
                    "the container has no entrypoint and its image no Wasm layer ({image_error}); \
                     build the image with `spore image build` or set the entrypoint to the .wasm file"
                ),
            }),
        }
    }

    async fn publish(&self, topic: &str, event: Box<dyn MessageDyn>) {
        publish(&self.publisher, &self.namespace, topic, event).await;
    }

    /// How many tasks this shim holds.
    pub fn task_count(&self) -> usize {
        self.containers.lock().expect("containers lock").len()
    }

    /// Stops and drops tasks whose bundle is gone: containerd cleaned them up without
    /// reaching this shim (it will not ask for them again).
    pub fn forget_tasks_without_bundle(&self) -> usize {
        let orphans: Vec<Arc<Container>> = {
            let mut containers = self.containers.lock().expect("containers lock");
            let gone: Vec<String> =
                containers.iter().filter(|(_, c)| !c.bundle.exists()).map(|(id, _)| id.clone()).collect();
            gone.iter().filter_map(|id| containers.remove(id)).collect()
        };
        for container in &orphans {
            log::warn!("container {}: its bundle is gone (containerd cleaned it up); stopping it", container.id);
            release(container);
        }
        orphans.len()
    }

    /// Stops every task, for a shim that leaves on its own.
    pub fn stop_all(&self) {
        let all: Vec<Arc<Container>> =
            self.containers.lock().expect("containers lock").drain().map(|(_, c)| c).collect();
        all.iter().for_each(|c| release(c));
    }
}

/// Kills a container's guest.
fn release(container: &Container) {
    container.kill(9);
}

/// The events of one running task.
#[derive(Clone)]
struct Events {
    publisher: Arc<RemotePublisher>,
    namespace: String,
    id: String,
}

impl Events {
    /// `/tasks/oom` once per limit hit (CRI then reports the container as OOMKilled).
    async fn oom_if_pending(&self, usage: &crate::Usage) {
        if usage.take_oom() {
            let event = TaskOOM { container_id: self.id.clone(), ..Default::default() };
            publish(&self.publisher, &self.namespace, topics::TASK_OOM_EVENT_TOPIC, Box::new(event)).await;
        }
    }

    async fn exit(&self, exit_status: u32, exited_at: SystemTime) {
        let event = TaskExit {
            container_id: self.id.clone(),
            id: self.id.clone(),
            pid: pid(),
            exit_status,
            exited_at: MessageField::some(timestamp(exited_at)),
            ..Default::default()
        };
        publish(&self.publisher, &self.namespace, topics::TASK_EXIT_EVENT_TOPIC, Box::new(event)).await;
    }
}

async fn publish(publisher: &RemotePublisher, namespace: &str, topic: &str, event: Box<dyn MessageDyn>) {
    let ctx = containerd_shim_protos::ttrpc::context::Context::default();
    if let Err(err) = publisher.publish(ctx, topic, namespace, event).await {
        log::warn!("publishing {topic} failed: {err}");
    }
}

fn pid() -> u32 {
    std::process::id()
}

/// Opens an output FIFO for reading too, as runc's shim does: while containerd restarts
/// nobody reads it, and a write-only end would fail the guest's writes with EPIPE; this way
/// they wait in the pipe until the new containerd reattaches.
fn open_output(path: &str) -> TtrpcResult<Option<OutputFile>> {
    if path.is_empty() {
        return Ok(None);
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map(|f| Some(OutputFile::new(f)))
        .map_err(|e| status(Code::INTERNAL, format!("cannot open the container's output {path}: {e}")))
}

fn stdio(req: &api::CreateTaskRequest) -> TtrpcResult<Stdio> {
    let io = match (open_output(&req.stdout)?, open_output(&req.stderr)?) {
        (Some(out), Some(err)) => Stdio::new(out, err),
        (Some(out), None) => Stdio::new(out, std::io::empty()),
        (None, Some(err)) => Stdio::new(std::io::empty(), err),
        (None, None) => Stdio::null(),
    };
    Ok(if req.stdin.is_empty() { io } else { io.with_stdin_stream(AsyncStdinStream::new(FifoReader::new(&req.stdin))) })
}

#[async_trait]
impl Task for TaskService {
    async fn create(&self, _ctx: &TtrpcContext, req: api::CreateTaskRequest) -> TtrpcResult<api::CreateTaskResponse> {
        if self.containers.lock().expect("containers lock").contains_key(&req.id) {
            return Err(status(Code::ALREADY_EXISTS, format!("container {} already exists", req.id)));
        }
        let bundle = PathBuf::from(&req.bundle);
        let spec = containerd_shim::asynchronous::util::read_spec(&bundle)
            .await
            .map_err(|e| status(Code::INVALID_ARGUMENT, format!("cannot read the OCI spec in {}: {e}", req.bundle)))?;
        // The rootfs is read where the snapshot lies, never mounted (see `rootfs`).
        let workload = self
            .workload(&req, &spec, &bundle)
            .await
            .map_err(|message| status(Code::FAILED_PRECONDITION, format!("spore: container {}: {message}", req.id)))?;
        let io = [req.stdin.clone(), req.stdout.clone(), req.stderr.clone()];
        let container = Arc::new(Container::new(req.id.clone(), bundle, io, workload));
        self.containers.lock().expect("containers lock").insert(req.id.clone(), container);
        self.publish(
            topics::TASK_CREATE_EVENT_TOPIC,
            Box::new(TaskCreate {
                container_id: req.id.clone(),
                bundle: req.bundle.clone(),
                rootfs: req.rootfs.clone(),
                io: MessageField::some(containerd_shim_protos::events::task::TaskIO {
                    stdin: req.stdin.clone(),
                    stdout: req.stdout.clone(),
                    stderr: req.stderr.clone(),
                    terminal: req.terminal,
                    ..Default::default()
                }),
                pid: pid(),
                ..Default::default()
            }),
        )
        .await;
        Ok(api::CreateTaskResponse { pid: pid(), ..Default::default() })
    }

    async fn start(&self, _ctx: &TtrpcContext, req: api::StartRequest) -> TtrpcResult<api::StartResponse> {
        let container = self.get(&req.id)?;
        if container.status() != Status::Created {
            return Err(status(Code::FAILED_PRECONDITION, format!("container {} was already started", req.id)));
        }
        container.mark_running();
        // Published before the guest runs, so that containerd never sees an exit before its start.
        self.publish(
            topics::TASK_START_EVENT_TOPIC,
            Box::new(TaskStart { container_id: req.id.clone(), pid: pid(), ..Default::default() }),
        )
        .await;
        let events =
            Events { publisher: self.publisher.clone(), namespace: self.namespace.clone(), id: req.id.clone() };
        tokio::spawn(async move {
            let oom_watch = container.usage().cloned().map(|usage| {
                let events = events.clone();
                tokio::spawn(async move {
                    loop {
                        usage.oom_happened().await;
                        events.oom_if_pending(&usage).await;
                    }
                })
            });
            let (exit_status, exited_at) = container.run().await;
            if let (Some(watch), Some(usage)) = (oom_watch, container.usage()) {
                watch.abort();
                events.oom_if_pending(usage).await;
            }
            events.exit(exit_status, exited_at).await;
        });
        Ok(api::StartResponse { pid: pid(), ..Default::default() })
    }

    async fn state(&self, _ctx: &TtrpcContext, req: api::StateRequest) -> TtrpcResult<api::StateResponse> {
        let container = self.get(&req.id)?;
        let mut response = api::StateResponse {
            id: req.id.clone(),
            bundle: container.bundle.display().to_string(),
            pid: pid(),
            stdin: container.stdin.clone(),
            stdout: container.stdout.clone(),
            stderr: container.stderr.clone(),
            ..Default::default()
        };
        let state = match container.status() {
            Status::Created => api::Status::CREATED,
            Status::Running => api::Status::RUNNING,
            Status::Stopped { exit_status, exited_at } => {
                response.exit_status = exit_status;
                response.exited_at = MessageField::some(timestamp(exited_at));
                api::Status::STOPPED
            }
        };
        response.status = state.into();
        Ok(response)
    }

    async fn kill(&self, _ctx: &TtrpcContext, req: api::KillRequest) -> TtrpcResult<Empty> {
        if !req.exec_id.is_empty() {
            return Err(status(
                Code::NOT_FOUND,
                format!("exec {} not found: Wasm containers have no execs", req.exec_id),
            ));
        }
        self.get(&req.id)?.kill(req.signal);
        Ok(Empty::new())
    }

    async fn wait(&self, _ctx: &TtrpcContext, req: api::WaitRequest) -> TtrpcResult<api::WaitResponse> {
        let (exit_status, exited_at) = self.get(&req.id)?.wait().await;
        Ok(api::WaitResponse { exit_status, exited_at: MessageField::some(timestamp(exited_at)), ..Default::default() })
    }

    async fn delete(&self, _ctx: &TtrpcContext, req: api::DeleteRequest) -> TtrpcResult<api::DeleteResponse> {
        let container = self.get(&req.id)?;
        let Status::Stopped { exit_status, exited_at } = container.status() else {
            return Err(status(
                Code::FAILED_PRECONDITION,
                format!("container {} is still running; kill it first", req.id),
            ));
        };
        self.containers.lock().expect("containers lock").remove(&req.id);
        // A restarted component's new container has replaced it by name already.
        self.held.lock().expect("held lock").retain(|_, held| held.container != req.id);
        self.publish(
            topics::TASK_DELETE_EVENT_TOPIC,
            Box::new(TaskDelete {
                container_id: req.id.clone(),
                pid: pid(),
                exit_status,
                exited_at: MessageField::some(timestamp(exited_at)),
                ..Default::default()
            }),
        )
        .await;
        Ok(api::DeleteResponse {
            pid: pid(),
            exit_status,
            exited_at: MessageField::some(timestamp(exited_at)),
            ..Default::default()
        })
    }

    async fn pids(&self, _ctx: &TtrpcContext, req: api::PidsRequest) -> TtrpcResult<api::PidsResponse> {
        self.get(&req.id)?;
        Ok(api::PidsResponse {
            processes: vec![api::ProcessInfo { pid: pid(), ..Default::default() }],
            ..Default::default()
        })
    }

    async fn connect(&self, _ctx: &TtrpcContext, _req: api::ConnectRequest) -> TtrpcResult<api::ConnectResponse> {
        Ok(api::ConnectResponse {
            shim_pid: pid(),
            task_pid: pid(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..Default::default()
        })
    }

    /// The shim leaves once its pod has no containers left.
    async fn shutdown(&self, _ctx: &TtrpcContext, _req: api::ShutdownRequest) -> TtrpcResult<Empty> {
        if self.containers.lock().expect("containers lock").is_empty() {
            self.exit.signal();
        }
        Ok(Empty::new())
    }

    /// Memory and CPU in cgroups v1 metrics form, which containerd (and CRI stats) read.
    async fn stats(&self, _ctx: &TtrpcContext, req: api::StatsRequest) -> TtrpcResult<api::StatsResponse> {
        let container = self.get(&req.id)?;
        let (memory, cpu) = container.usage().map_or((0, 0), |u| (u.memory_bytes(), u.cpu_time().as_nanos() as u64));
        let metrics = Metrics {
            memory: MessageField::some(MemoryStat {
                usage: MessageField::some(MemoryEntry { usage: memory, ..Default::default() }),
                rss: memory,
                ..Default::default()
            }),
            cpu: MessageField::some(CPUStat {
                usage: MessageField::some(CPUUsage { total: cpu, user: cpu, ..Default::default() }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let stats = containerd_shim::util::convert_to_any(Box::new(metrics))
            .map_err(|e| status(Code::INTERNAL, format!("cannot encode stats: {e}")))?;
        Ok(api::StatsResponse { stats: MessageField::some(stats), ..Default::default() })
    }

    async fn exec(&self, _ctx: &TtrpcContext, _req: api::ExecProcessRequest) -> TtrpcResult<Empty> {
        Err(status(Code::UNIMPLEMENTED, "exec is not supported: a Wasm container has no processes to exec into"))
    }

    async fn resize_pty(&self, _ctx: &TtrpcContext, _req: api::ResizePtyRequest) -> TtrpcResult<Empty> {
        Ok(Empty::new())
    }

    /// The client has closed the task's stdin: the guest reads EOF.
    async fn close_io(&self, _ctx: &TtrpcContext, req: api::CloseIORequest) -> TtrpcResult<Empty> {
        let container = self.get(&req.id)?;
        if req.stdin && !container.stdin.is_empty() {
            end_pending_open(Path::new(&container.stdin));
        }
        Ok(Empty::new())
    }
}
