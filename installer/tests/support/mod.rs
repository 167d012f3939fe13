//! A fake node for the installer: a private, real containerd kept alive by a restart loop
//! (the supervisor the installer relies on when there is no systemd unit).
//!
//! ```ignore
//! let Some(node) = TestNode::configure(Version::Containerd2).start() else { return };
//! node.installer("install").assert_success();
//! assert!(node.handler_info().is_some());
//! ```
//!
//! Every node owns a fresh `/tmp/spore-inst-XXXXXX` with containerd's main config, root,
//! state, sockets, CNI dirs, drop-in dir (`conf.d`), install dir and log: nothing global is
//! touched (NRI is disabled, it would take `/var/run/nri/nri.sock`), so tests run in
//! parallel. The installer runs with host root `/` and these absolute paths. Needs root,
//! Debian's containerd 1.6 and `make tools` (crictl, containerd 1.7 and 2.x).
//!
//! The "image" shim the installer copies is a stand-in script unless the node is configured
//! [`with_real_shim`](NodeConfig::with_real_shim) (`target/release/containerd-shim-spore-v1`),
//! which pods can run on: [`TestNode::run_pod`] starts a host-network pod sandbox through
//! CRI (no CNI needed) on the node's sandbox image, [`SANDBOX_IMAGE`], imported by
//! [`TestNode::import_sandbox_image`]. Running a shim, containerd puts its socket in
//! `/run/containerd/s`, named by a hash of the node's socket, pod namespace and id.
#![allow(dead_code)]

#[path = "../../../shim/tests/harness/image.rs"]
mod image;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use image::ImageBuilder;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use spore_node_installer::process::containerd_pids;

pub const HANDLER: &str = "spore";
/// The sandbox ("pause") image every node's CRI config names; imported on demand.
pub const SANDBOX_IMAGE: &str = "localhost/spore/pause:1";
/// containerd's PATH, as a node's init system would set it: without Spore's shim on it, so
/// only the drop-in can lead containerd to the shim.
const CONTAINERD_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// What Kubernetes' pause does: sleep until told to stop.
const PAUSE_SOURCE: &str = include_str!("../../../tests/native/pause.c");

/// Which containerd the node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// Debian's /usr/bin/containerd 1.6.20: config version 2.
    Debian,
    /// containerd 1.7.35 from `make tools` (`SPORE_CONTAINERD17_DIR`): config version 2.
    Containerd17,
    /// containerd 2.1.4 from `make tools` (`SPORE_CONTAINERD2_DIR`): config version 3.
    Containerd2,
}

impl Version {
    fn binary(self) -> PathBuf {
        self.tool("containerd")
    }

    /// `containerd` or `ctr` of this version.
    fn tool(self, name: &str) -> PathBuf {
        match self {
            Version::Debian => Path::new("/usr/bin").join(name),
            Version::Containerd17 => tools_dir("SPORE_CONTAINERD17_DIR", "containerd-v1.7.35").join(name),
            Version::Containerd2 => tools_dir("SPORE_CONTAINERD2_DIR", "containerd-v2.1.4").join(name),
        }
    }

    /// Whether `make test` named this version's directory: then it must be there.
    fn required(self) -> bool {
        match self {
            Version::Debian => true,
            Version::Containerd17 => std::env::var_os("SPORE_CONTAINERD17_DIR").is_some(),
            Version::Containerd2 => std::env::var_os("SPORE_CONTAINERD2_DIR").is_some(),
        }
    }
}

fn tools_dir(env: &str, default: &str) -> PathBuf {
    std::env::var_os(env).map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| "/root".into());
        home.join(".cache/spore-tools").join(default)
    })
}

/// crictl (`SPORE_CRICTL`, default from `make tools`).
pub fn crictl() -> PathBuf {
    let path = std::env::var_os("SPORE_CRICTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| tools_dir("SPORE_CRICTL_DIR", "crictl-v1.34.0").join("crictl"));
    assert!(path.is_file(), "crictl missing at {}: run `make tools`", path.display());
    path
}

/// The `containerd-shim-spore-v1` containerd would find on its PATH, if any.
pub fn shim_on_containerd_path() -> Option<PathBuf> {
    CONTAINERD_PATH.split(':').map(|dir| Path::new(dir).join("containerd-shim-spore-v1")).find(|path| path.exists())
}

/// Spore's real shim, `target/release/containerd-shim-spore-v1`; panics with how to build it
/// when it is missing.
pub fn real_shim() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/containerd-shim-spore-v1");
    assert!(path.is_file(), "{} missing: build it with `cargo build --release -p spore-shim`", path.display());
    path
}

pub struct NodeConfig {
    version: Version,
    imports: bool,
    real_shim: bool,
}

impl NodeConfig {
    /// A main config without `imports` (the installer must refuse it).
    pub fn without_imports(mut self) -> Self {
        self.imports = false;
        self
    }

    /// The installer copies Spore's real shim ([`real_shim`]) instead of a stand-in script.
    pub fn with_real_shim(mut self) -> Self {
        self.real_shim = true;
        self
    }

    /// Starts containerd under its restart loop; `None` (after saying why) when a containerd
    /// from `make tools` (1.7, 2.x) is not installed and `make test` did not ask for it.
    pub fn start(self) -> Option<TestNode> {
        if !self.version.binary().is_file() {
            assert!(
                !self.version.required(),
                "{} not found: `make deps` installs Debian's containerd, `make tools` builds the others",
                self.version.binary().display()
            );
            eprintln!("SKIPPED: {} not found; `make tools` builds it", self.version.binary().display());
            return None;
        }
        // Short: unix socket paths are limited to 108 bytes.
        let dir = tempfile::Builder::new().prefix("spore-inst-").tempdir_in("/tmp").expect("temp dir").keep();
        for sub in ["conf.d", "cni/bin", "cni/conf", "image"] {
            std::fs::create_dir_all(dir.join(sub)).expect("create node dirs");
        }
        std::fs::write(dir.join("config.toml"), main_config(self.version, &dir, self.imports)).expect("config");
        let image_shim = if self.real_shim {
            real_shim()
        } else {
            let stand_in = dir.join("image/containerd-shim-spore-v1");
            write_executable(&stand_in, "#!/bin/sh\n# a stand-in shim\nexit 0\n");
            stand_in
        };
        let mut node = TestNode { version: self.version, dir, image_shim, supervisor: None };
        node.supervisor = Some(node.spawn_supervisor());
        node.wait_until_serving();
        Some(node)
    }
}

/// containerd's main config for the node in `dir`, in the version's layout, with CRI on and
/// the sandbox image [`SANDBOX_IMAGE`].
fn main_config(version: Version, dir: &Path, imports: bool) -> String {
    let dir = dir.display();
    let imports = if imports { format!("imports = [\"{dir}/conf.d/*.toml\"]\n") } else { String::new() };
    let common = format!(
        r#"root = "{dir}/root"
state = "{dir}/state"
{imports}
[grpc]
  address = "{dir}/containerd.sock"

[ttrpc]
  address = "{dir}/containerd.sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{dir}/opt"
"#
    );
    match version {
        // No runc runtime on purpose: the drop-in must keep containerd 1.x's default one. No
        // need to disable NRI: 1.6 has none, 1.7 has it off by default.
        Version::Debian | Version::Containerd17 => format!(
            r#"version = 2
{common}
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{SANDBOX_IMAGE}"
  stream_server_port = "0"
  restrict_oom_score_adj = true

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "{dir}/cni/bin"
  conf_dir = "{dir}/cni/conf"
"#
        ),
        Version::Containerd2 => format!(
            r#"version = 3
disabled_plugins = ["io.containerd.nri.v1.nri"]
{common}
[plugins.'io.containerd.grpc.v1.cri']
  stream_server_port = "0"

[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = "{SANDBOX_IMAGE}"

[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true

[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dirs = ["{dir}/cni/bin"]
  conf_dir = "{dir}/cni/conf"
"#
        ),
    }
}

pub fn write_executable(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod script");
}

/// A running node; dropping it kills containerd and its loop and removes the directory.
pub struct TestNode {
    pub version: Version,
    dir: PathBuf,
    /// The shim the installer copies (`--shim`).
    image_shim: PathBuf,
    supervisor: Option<Child>,
}

impl TestNode {
    pub fn configure(version: Version) -> NodeConfig {
        NodeConfig { version, imports: true, real_shim: false }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.toml")
    }

    pub fn dropin(&self) -> PathBuf {
        self.dir.join("conf.d").join(format!("spore-{HANDLER}.toml"))
    }

    pub fn install_dir(&self) -> PathBuf {
        self.dir.join("opt/spore/bin")
    }

    /// Where the installer puts the shim.
    pub fn installed_shim(&self) -> PathBuf {
        self.install_dir().join("containerd-shim-spore-v1")
    }

    /// The shim in the "image", which the installer copies.
    pub fn image_shim(&self) -> PathBuf {
        self.image_shim.clone()
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }

    pub fn cni_conf_dir(&self) -> String {
        self.dir.join("cni/conf").display().to_string()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("containerd.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// How many times containerd has started (the loop appends every run to one log).
    pub fn starts(&self) -> usize {
        self.log().matches("msg=\"starting containerd\"").count()
    }

    /// `bash` restarting containerd whenever it exits, in its own process group so Drop can
    /// kill both at once.
    fn spawn_supervisor(&self) -> Child {
        let script = r#"while :; do "$0" --config "$1" >>"$2" 2>&1; sleep 0.2; done"#;
        Command::new("bash")
            .arg("-c")
            .arg(script)
            .arg(self.version.binary())
            .arg(self.config_path())
            .arg(self.log_path())
            .env("PATH", CONTAINERD_PATH)
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start bash")
    }

    /// Waits until CRI answers (`crictl info` succeeds).
    fn wait_until_serving(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        while UnixStream::connect(self.socket()).is_err() || !self.crictl(&["info"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "containerd did not serve CRI within {START_TIMEOUT:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Restarts containerd as the installer does without systemd (SIGTERM, the loop starts it
    /// again) and waits until the new one serves CRI.
    pub fn restart(&self) {
        let starts = self.starts();
        nix::sys::signal::kill(Pid::from_raw(self.pid() as i32), Signal::SIGTERM).expect("SIGTERM containerd");
        let deadline = Instant::now() + START_TIMEOUT;
        while self.starts() == starts {
            assert!(Instant::now() < deadline, "containerd did not start again within {START_TIMEOUT:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
        self.wait_until_serving();
    }

    /// The pid of the node's one containerd.
    pub fn pid(&self) -> u32 {
        let pids = containerd_pids(Path::new("/proc"), &self.config_path());
        assert_eq!(pids.len(), 1, "expected one containerd, found {pids:?}");
        pids[0]
    }

    pub fn crictl(&self, args: &[&str]) -> Output {
        let endpoint = format!("unix://{}", self.socket().display());
        Command::new(crictl())
            .args(["--runtime-endpoint", &endpoint, "--timeout", "5s"])
            .args(args)
            .stderr(Stdio::piped())
            .output()
            .expect("crictl runs")
    }

    /// `crictl info`'s entry for the handler, if containerd has it.
    pub fn handler_info(&self) -> Option<serde_json::Value> {
        let out = self.crictl(&["info"]);
        assert!(out.status.success(), "crictl info: {}", String::from_utf8_lossy(&out.stderr));
        let info: serde_json::Value = serde_json::from_slice(&out.stdout).expect("crictl info prints JSON");
        info.pointer(&format!("/config/containerd/runtimes/{HANDLER}")).cloned()
    }

    /// `containerd --config CONFIG config dump`: the merged config containerd would load.
    pub fn config_dump(&self) -> String {
        let out = Command::new(self.version.binary())
            .arg("--config")
            .arg(self.config_path())
            .args(["config", "dump"])
            .output()
            .expect("containerd config dump");
        assert!(out.status.success(), "config dump: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("UTF-8 dump")
    }

    /// The installer with this node's paths (host root `/`), the real crictl and a
    /// termination log inside the node's directory.
    pub fn installer(&self, subcommand: &str) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_spore-node-installer"));
        cmd.arg(subcommand)
            .args(["--host-root", "/", "--handler", HANDLER])
            .arg("--config-path")
            .arg(self.config_path())
            .arg("--install-dir")
            .arg(self.install_dir())
            .arg("--shim")
            .arg(self.image_shim())
            .arg("--crictl")
            .arg(crictl())
            .arg("--termination-log")
            .arg(self.dir.join("termination-log"))
            .env_remove("NODE_NAME");
        cmd
    }

    /// Builds the sandbox image [`SANDBOX_IMAGE`] (a static pause, compiled with `cc`) and
    /// imports it with this version's `ctr` into CRI's namespace.
    pub fn import_sandbox_image(&self) {
        let pause = ImageBuilder::new(SANDBOX_IMAGE)
            .file("/pause", static_binary(&self.dir, "pause", PAUSE_SOURCE), 0o755)
            .entrypoint(["/pause"]);
        let tar = pause.write(self.dir.join("pause.tar"));
        let out = run({
            let mut ctr = Command::new(self.version.tool("ctr"));
            ctr.arg("--address").arg(self.socket()).args(["--namespace", "k8s.io", "images", "import"]).arg(tar);
            ctr
        });
        out.assert_success();
    }

    /// `crictl runp --runtime HANDLER` of a host-network pod named `name` (no CNI involved);
    /// returns crictl's output, the pod id on stdout when it worked.
    pub fn run_pod(&self, name: &str) -> Output {
        let config = serde_json::json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "attempt": 1},
            "log_directory": self.dir.join("logs").join(name).display().to_string(),
            "linux": {"security_context": {"namespace_options": {"network": 2}}},
        });
        let path = self.dir.join(format!("pod-{name}.json"));
        std::fs::write(&path, config.to_string()).expect("write the pod config");
        let path = path.display().to_string();
        self.crictl_with_timeout("60s", &["runp", "--runtime", HANDLER, &path])
    }

    /// crictl with a longer timeout than [`crictl`](Self::crictl)'s 5s, for pod operations.
    pub fn crictl_with_timeout(&self, timeout: &str, args: &[&str]) -> Output {
        let endpoint = format!("unix://{}", self.socket().display());
        Command::new(crictl())
            .args(["--runtime-endpoint", &endpoint, "--image-endpoint", &endpoint, "--timeout", timeout])
            .args(args)
            .stderr(Stdio::piped())
            .output()
            .expect("crictl runs")
    }

    /// The pids of processes running the installed shim (as `/proc/PID/exe` names it).
    pub fn shim_pids(&self) -> Vec<u32> {
        let shim = self.installed_shim();
        let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
        entries
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
            .filter(|pid: &u32| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == shim))
            .collect()
    }

    /// The termination message the last failing installer run left.
    pub fn termination_message(&self) -> String {
        std::fs::read_to_string(self.dir.join("termination-log")).unwrap_or_default()
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!("containerd's log ends with:\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
        // A test that failed with a pod running: remove it through CRI, so containerd stops
        // the shim, unmounts the pod's rootfs and removes the shim's socket.
        if !self.shim_pids().is_empty() {
            let pods = self.crictl_with_timeout("10s", &["pods", "--quiet"]);
            for pod in String::from_utf8_lossy(&pods.stdout).split_whitespace() {
                let _ = self.crictl_with_timeout("30s", &["stopp", pod]);
                let _ = self.crictl_with_timeout("30s", &["rmp", "--force", pod]);
            }
        }
        if let Some(mut supervisor) = self.supervisor.take() {
            let group = Pid::from_raw(supervisor.id() as i32);
            let _ = killpg(group, Signal::SIGKILL);
            let _ = supervisor.wait();
        }
        // A containerd the installer restarted is still in the loop's group; make sure.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let pids = containerd_pids(Path::new("/proc"), &self.config_path());
            if pids.is_empty() || Instant::now() > deadline {
                break;
            }
            for pid in pids {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // What CRI could not clean up: shims (in process groups of their own) and mounts.
        for pid in self.shim_pids() {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
        for mount in mounts_under(&self.dir) {
            let _ = Command::new("umount").arg("--lazy").arg(&mount).output();
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("warning: could not remove {}: {e}", self.dir.display());
        }
    }
}

/// Mount points below `dir`, deepest first.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut mounts: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4).map(PathBuf::from))
        .filter(|mount| mount.starts_with(dir))
        .collect();
    mounts.sort_by_key(|mount| std::cmp::Reverse(mount.components().count()));
    mounts
}

/// `source` (C) compiled with `cc -static` in `dir`; the binary's bytes.
fn static_binary(dir: &Path, name: &str, source: &str) -> Vec<u8> {
    let (src, bin) = (dir.join(format!("{name}.c")), dir.join(name));
    std::fs::write(&src, source).expect("write C source");
    let out = Command::new("cc").args(["-O2", "-static", "-o"]).arg(&bin).arg(&src).output().expect("cc (make deps)");
    assert!(out.status.success(), "cc -static failed: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read(&bin).expect("read the binary")
}

/// Readable views of a command's output.
pub trait OutputExt {
    fn stdout_text(&self) -> String;
    fn stderr_text(&self) -> String;
    /// Panics with status, stdout and stderr unless the command succeeded.
    fn assert_success(self) -> Self;
    /// Panics unless the command failed with exit code 1.
    fn assert_failure(self) -> Self;
}

impl OutputExt for Output {
    fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    fn assert_success(self) -> Self {
        assert!(
            self.status.success(),
            "failed with {}\nstdout: {}\nstderr: {}",
            self.status,
            self.stdout_text(),
            self.stderr_text()
        );
        self
    }

    fn assert_failure(self) -> Self {
        assert_eq!(
            self.status.code(),
            Some(1),
            "expected exit 1\nstdout: {}\nstderr: {}",
            self.stdout_text(),
            self.stderr_text()
        );
        self
    }
}

/// Runs a command to completion, capturing its output.
pub fn run(mut cmd: Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("command runs")
}

/// One request the fake API server received.
#[derive(Clone, Debug)]
pub struct ApiRequest {
    pub method: String,
    pub path: String,
    pub content_type: String,
    pub body: serde_json::Value,
}

/// A stand-in Kubernetes API server on 127.0.0.1 that records requests and answers each with
/// a Node; [`kubeconfig`](Self::kubeconfig) points the installer at it (via `KUBECONFIG`).
pub struct FakeApiServer {
    requests: std::sync::Arc<std::sync::Mutex<Vec<ApiRequest>>>,
    kubeconfig: tempfile::NamedTempFile,
}

impl FakeApiServer {
    pub fn start() -> FakeApiServer {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let recorded = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream);
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let (mut length, mut content_type) = (0, String::new());
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
                        break;
                    }
                    let (name, value) = header.split_once(':').unwrap_or((&header, ""));
                    match name.to_ascii_lowercase().as_str() {
                        "content-length" => length = value.trim().parse().unwrap_or(0),
                        "content-type" => content_type = value.trim().to_string(),
                        _ => {}
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let mut parts = request_line.split_whitespace();
                recorded.lock().unwrap().push(ApiRequest {
                    method: parts.next().unwrap_or("").into(),
                    path: parts.next().unwrap_or("").into(),
                    content_type,
                    body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
                });
                let node = r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"node-1"}}"#;
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{node}",
                    node.len()
                );
                let _ = reader.get_mut().write_all(response.as_bytes());
            }
        });
        let mut kubeconfig = tempfile::NamedTempFile::new().expect("kubeconfig");
        let yaml = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\n\
             clusters: [{{name: fake, cluster: {{server: \"http://127.0.0.1:{port}\"}}}}]\n\
             users: [{{name: fake, user: {{token: fake-token}}}}]\n\
             contexts: [{{name: fake, context: {{cluster: fake, user: fake}}}}]\n"
        );
        std::io::Write::write_all(&mut kubeconfig, yaml.as_bytes()).expect("write kubeconfig");
        FakeApiServer { requests, kubeconfig }
    }

    pub fn kubeconfig(&self) -> &Path {
        self.kubeconfig.path()
    }

    /// The requests so far, taken out.
    pub fn take_requests(&self) -> Vec<ApiRequest> {
        std::mem::take(&mut self.requests.lock().unwrap())
    }
}
