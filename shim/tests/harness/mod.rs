//! A private, real containerd for integration tests, driven with `ctr`.
//!
//! ```ignore
//! let ctrd = Containerd::start();
//! let image = ImageBuilder::new("localhost/spore/hello:1").file("/hello", bytes, 0o755).entrypoint(["/hello"]);
//! ctrd.import_image(&image);
//! let out = ctrd.run(image.name(), "hello", RUNC, &[]);
//! assert_eq!(out.stdout_text(), "hello from spore (C)\n");
//! ctrd.assert_clean();
//! ```
//!
//! Every instance owns a fresh `/tmp/spore-ctrd-XXXXXX` holding its config, root, state,
//! gRPC and ttrpc sockets, log, FIFOs and runc root, and a cgroup parent
//! `/spore-test-XXXXXX` (`run` passes `--cgroup`, `--fifo-dir` and, for runc, `--runc-root`),
//! so tests may run in parallel in one process and across test binaries. The one host-wide
//! path is the shim socket in /run/containerd/s, named by a hash of address, namespace and id.
//! A runtime that keeps state keyed by namespace and id alone would clash: prefer ids that
//! name the test.
//!
//! Needs root and Debian's `containerd` and `runc` (`make deps`). The Spore shim is found in
//! `SPORE_SHIM_DIR`, else next to the `containerd-shim-spore-v1` binary cargo built for this
//! test run, else in `target/release`.
//!
//! Images on containerd 1.6.20 (checked with `ctr` 1.6.20): [`ImageBuilder`] writes an OCI
//! layout tar whose `index.json` points straight at one manifest, with no `platform` field.
//! Such an image imports and runs whatever its config's os/architecture says (`linux/amd64`,
//! `wasip1/wasm`, `wasi/wasm`): containerd checks the platform only when it has to pick a
//! manifest out of an index. With a `platform` on the `index.json` entry, a non-linux image
//! is filtered out by `ctr images import` unless `--all-platforms` is given (we always give
//! it); with a nested image index, unpacking needs `ctr run --platform wasi/wasm`. Layers
//! must be tars: `application/wasm` layers fail on containerd < 1.6.25.
#![allow(dead_code)]

pub mod cri;
mod image;
pub mod registry;

pub use image::ImageBuilder;

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// runc's runtime type, for runs that need no Spore shim.
pub const RUNC: &str = "io.containerd.runc.v2";
/// Spore's runtime type: containerd runs `containerd-shim-spore-v1` from its PATH.
pub const SPORE: &str = "io.containerd.spore.v1";
/// The namespace `ctr` uses unless [`ContainerdConfig::namespace`] says otherwise.
pub const NAMESPACE: &str = "spore-test";

const START_TIMEOUT: Duration = Duration::from_secs(20);
const CTR_TIMEOUT: Duration = Duration::from_secs(60);
const SHIM_BINARY: &str = "containerd-shim-spore-v1";

/// The directory holding `containerd-shim-spore-v1`, put first on containerd's PATH.
pub fn shim_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SPORE_SHIM_DIR") {
        return PathBuf::from(dir);
    }
    // Set by cargo when the package has this binary: built fresh, right profile, right target dir.
    if let Some(bin) = option_env!("CARGO_BIN_EXE_containerd-shim-spore-v1") {
        return Path::new(bin).parent().expect("binary has a directory").to_path_buf();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").join("target/release")
}

/// The Spore shim binary; panics with what to do when it has not been built.
pub fn shim_binary() -> PathBuf {
    let path = shim_dir().join(SHIM_BINARY);
    assert!(path.is_file(), "{} missing: build it with `cargo build --release -p spore-shim`", path.display());
    path
}

/// Which containerd a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// Debian's containerd 1.6 (`containerd` and `ctr` from PATH): config version 2.
    Debian,
    /// containerd 2.x built from the Go module proxy by `make tools` (`SPORE_CONTAINERD2_DIR`,
    /// default ~/.cache/spore-tools/containerd-v2.1.4): config version 3.
    V2,
}

impl Version {
    fn binary(self, name: &str) -> PathBuf {
        match self {
            Version::Debian => PathBuf::from(name),
            Version::V2 => containerd2_dir().join(name),
        }
    }
}

fn containerd2_dir() -> PathBuf {
    std::env::var_os("SPORE_CONTAINERD2_DIR").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| "/root".into());
        home.join(".cache/spore-tools/containerd-v2.1.4")
    })
}

/// How to start a containerd; `Containerd::start()` is `Containerd::configure().start()`.
#[derive(Clone, Debug)]
pub struct ContainerdConfig {
    version: Version,
    cri: bool,
    namespace: String,
    extra_toml: String,
    files: Vec<(String, String)>,
}

impl ContainerdConfig {
    /// Run containerd 2.x instead of Debian's 1.6.
    pub fn containerd2(mut self) -> Self {
        self.version = Version::V2;
        self
    }

    /// Keep the CRI plugin (disabled by default).
    pub fn with_cri(mut self) -> Self {
        self.cri = true;
        self
    }

    /// The namespace `ctr` uses (default [`NAMESPACE`]).
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// TOML appended to the generated config (it may use `{dir}`, replaced by the instance's
    /// directory). Tables only (top-level keys would land in the last table), and none the
    /// generated config already has (`grpc`, `ttrpc`, `debug`, the `opt` plugin, the CRI
    /// `runc` and `spore` runtimes): TOML forbids defining a table twice.
    pub fn config(mut self, toml: &str) -> Self {
        self.extra_toml.push_str(toml);
        self.extra_toml.push('\n');
        self
    }

    /// A file written into the instance's directory (at `relative`) before containerd starts,
    /// e.g. a CNI config.
    pub fn file(mut self, relative: &str, contents: &str) -> Self {
        self.files.push((relative.into(), contents.into()));
        self
    }

    pub fn start(self) -> Containerd {
        Containerd::start_with(self)
    }
}

/// A running private containerd; dropping it kills it and cleans up after it.
pub struct Containerd {
    version: Version,
    dir: PathBuf,
    namespace: String,
    cgroup_parent: String,
    child: Option<Child>,
}

/// One row of `ctr tasks ls`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    pub id: String,
    pub pid: u32,
    /// `RUNNING`, `STOPPED`, `CREATED`, `PAUSED`, ...
    pub status: String,
}

impl Containerd {
    /// Start a containerd with the default configuration (CRI disabled).
    pub fn start() -> Containerd {
        Self::configure().start()
    }

    pub fn configure() -> ContainerdConfig {
        ContainerdConfig {
            version: Version::Debian,
            cri: false,
            namespace: NAMESPACE.into(),
            extra_toml: String::new(),
            files: Vec::new(),
        }
    }

    fn start_with(config: ContainerdConfig) -> Containerd {
        require_tools(config.version);
        // Short: unix socket paths are limited to 108 bytes.
        let dir = tempfile::Builder::new().prefix("spore-ctrd-").tempdir_in("/tmp").expect("temp dir").keep();
        let suffix = dir.file_name().unwrap().to_string_lossy().trim_start_matches("spore-ctrd-").to_string();
        let ctrd = Containerd {
            version: config.version,
            cgroup_parent: format!("/spore-test-{suffix}"),
            namespace: config.namespace.clone(),
            dir,
            child: None,
        };
        std::fs::write(ctrd.dir.join("config.toml"), ctrd.config_toml(&config)).expect("write config.toml");
        for (relative, contents) in &config.files {
            let path = ctrd.dir.join(relative);
            std::fs::create_dir_all(path.parent().expect("a file path")).expect("create config dir");
            std::fs::write(&path, contents).expect("write config file");
        }
        ctrd.spawn()
    }

    /// The generated config: config version 2 for Debian's 1.6, 3 for 2.x (CRI split into
    /// image and runtime plugins, no `opt` plugin).
    fn config_toml(&self, config: &ContainerdConfig) -> String {
        let dir = self.dir.display().to_string();
        let (version, cri_plugins, runtimes, opt) = match config.version {
            Version::Debian => (
                2,
                r#""io.containerd.grpc.v1.cri""#,
                r#"plugins."io.containerd.grpc.v1.cri".containerd.runtimes"#,
                format!("[plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{dir}/opt\"\n"),
            ),
            Version::V2 => (
                3,
                r#""io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime""#,
                "plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes",
                String::new(),
            ),
        };
        let disabled = if config.cri { "" } else { cri_plugins };
        let mut toml = format!(
            r#"version = {version}
root = "{dir}/root"
state = "{dir}/state"
disabled_plugins = [{disabled}]

[grpc]
  address = "{dir}/containerd.sock"

[ttrpc]
  address = "{dir}/containerd.sock.ttrpc"

[debug]
  level = "debug"

{opt}
[{runtimes}.runc]
  runtime_type = "{RUNC}"

[{runtimes}.spore]
  runtime_type = "{SPORE}"
  pod_annotations = ["spore.dev/*"]
  container_annotations = ["spore.dev/*"]
"#
        );
        toml.push_str(&config.extra_toml.replace("{dir}", &dir));
        toml
    }

    fn spawn(mut self) -> Containerd {
        self.spawn_process();
        self
    }

    /// Stops containerd the way systemd does (SIGTERM) and starts it again on the same root
    /// and state, as an install or upgrade does. Shims are not containerd's children to
    /// kill: they keep running and the new containerd has to find them again.
    pub fn restart(&mut self) {
        let mut child = self.child.take().expect("containerd is running");
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let _ = child.wait();
        self.spawn_process();
    }

    /// The bundle containerd made for task `id` (config.json, rootfs, address).
    pub fn bundle(&self, id: &str) -> PathBuf {
        self.state().join("io.containerd.runtime.v2.task").join(&self.namespace).join(id)
    }

    fn spawn_process(&mut self) {
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).expect("open containerd.log");
        let path = format!(
            "{}:{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            shim_dir().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let child = Command::new(self.version.binary("containerd"))
            .arg("--config")
            .arg(self.dir.join("config.toml"))
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("failed to start containerd ({e}); `make deps` installs it"));
        self.child = Some(child);

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().expect("wait for containerd") {
                panic!("containerd exited at startup with {status}; its log ends with:\n{}", self.log_tail(40));
            }
            if self.address().exists()
                && self.try_ctr(["version"], Duration::from_secs(5)).is_some_and(|o| o.status.success())
            {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "containerd did not answer on {} within {START_TIMEOUT:?}; its log ends with:\n{}",
                    self.address().display(),
                    self.log_tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// The instance's directory (config, root, state, sockets, log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    pub fn state(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// The gRPC socket (`ctr --address`, the shim's `-address`).
    pub fn address(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The cgroup path `run` gives a container: `/spore-test-XXXXXX/ID`.
    pub fn cgroup_path(&self, id: &str) -> String {
        format!("{}/{id}", self.cgroup_parent)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("containerd.log")
    }

    /// containerd's log so far (debug level; shims' stderr logs end up here too).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn ctr_command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(self.version.binary("ctr"));
        cmd.arg("--address").arg(self.address()).arg("--namespace").arg(&self.namespace).args(args);
        cmd
    }

    fn try_ctr<I, S>(&self, args: I, timeout: Duration) -> Option<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        output_within(self.ctr_command(args), timeout)
    }

    /// `ctr --address SOCK --namespace NS ARGS...`; panics (with containerd's log) if it hangs.
    pub fn ctr<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_os_string()).collect();
        self.try_ctr(&args, CTR_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "`ctr {args:?}` did not finish within {CTR_TIMEOUT:?}; containerd's log ends with:\n{}",
                self.log_tail(40)
            )
        })
    }

    /// Like [`ctr`](Self::ctr), but panics unless it succeeds; returns stdout.
    pub fn ctr_ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_os_string()).collect();
        self.ctr(&args).assert_success(&format!("ctr {args:?}")).stdout_text()
    }

    /// `ctr images import --all-platforms TAR`; panics unless it succeeds.
    pub fn import(&self, tar: impl AsRef<Path>) {
        self.ctr_ok([
            OsStr::new("images"),
            OsStr::new("import"),
            OsStr::new("--all-platforms"),
            tar.as_ref().as_os_str(),
        ]);
    }

    /// Writes the image into this instance's directory and imports it; returns its name.
    pub fn import_image(&self, image: &ImageBuilder) -> String {
        let file = image.name().replace(['/', ':'], "_") + ".tar";
        self.import(image.write(self.dir.join(file)));
        image.name().to_string()
    }

    fn run_args(&self, image: &str, id: &str, runtime: &str, mode: &str, args: &[&str]) -> Vec<String> {
        let mut all = vec!["run".to_string(), mode.into(), "--runtime".into(), runtime.into()];
        all.extend(["--cgroup".into(), self.cgroup_path(id)]);
        all.extend(["--fifo-dir".into(), self.dir.join("fifo").display().to_string()]);
        if runtime == RUNC {
            all.extend(["--runc-root".into(), self.dir.join("runc").display().to_string()]);
        }
        all.extend([image.to_string(), id.to_string()]);
        all.extend(args.iter().map(|a| a.to_string()));
        all
    }

    /// `ctr run --rm --runtime RUNTIME IMAGE ID ARGS...`: waits for the task; ctr's exit code
    /// is the task's, its stdout and stderr the task's. Non-empty `args` replace the whole
    /// command line, entrypoint included (ctr 1.6 semantics), so they start with the program.
    pub fn run(&self, image: &str, id: &str, runtime: &str, args: &[&str]) -> Output {
        self.ctr(self.run_args(image, id, runtime, "--rm", args))
    }

    /// `ctr run --rm FLAGS...`: like [`run`](Self::run) with extra ctr flags (e.g. `--annotation k=v`).
    pub fn run_with_flags(&self, flags: &[&str], image: &str, id: &str, runtime: &str, args: &[&str]) -> Output {
        self.ctr(self.flagged_run_args(flags, image, id, runtime, "--rm", args))
    }

    /// `ctr run --rm ...` with `input` on ctr's stdin (then EOF), which ctr passes to the task.
    pub fn run_with_input(&self, input: &[u8], image: &str, id: &str, runtime: &str, args: &[&str]) -> Output {
        let args = self.run_args(image, id, runtime, "--rm", args);
        output_with_input(self.ctr_command(args), CTR_TIMEOUT, Some(input)).expect("ctr run -i finishes")
    }

    /// `ctr run --detach FLAGS...`.
    pub fn run_detached_with_flags(
        &self,
        flags: &[&str],
        image: &str,
        id: &str,
        runtime: &str,
        args: &[&str],
    ) -> Output {
        self.ctr(self.flagged_run_args(flags, image, id, runtime, "--detach", args))
    }

    fn flagged_run_args(
        &self,
        flags: &[&str],
        image: &str,
        id: &str,
        runtime: &str,
        mode: &str,
        args: &[&str],
    ) -> Vec<String> {
        let mut all = self.run_args(image, id, runtime, mode, args);
        let at = all.len() - args.len() - 2;
        all.splice(at..at, flags.iter().map(|f| f.to_string()));
        all
    }

    /// `ctr run --detach ...`: returns once the task started; the container stays until
    /// [`delete_task`](Self::delete_task) and [`delete_container`](Self::delete_container).
    pub fn run_detached(&self, image: &str, id: &str, runtime: &str, args: &[&str]) -> Output {
        self.ctr(self.run_args(image, id, runtime, "--detach", args))
    }

    /// `ctr run --detach`, asserting it started and waiting until the task runs.
    pub fn start_detached(&self, image: &str, id: &str, runtime: &str, args: &[&str]) {
        let out = self.run_detached(image, id, runtime, args);
        assert!(out.status.success(), "{}\n{}", out.stderr_text(), self.log_tail(20));
        self.wait_for_status(id, "RUNNING", Duration::from_secs(10));
    }

    /// Kills a running task with `signal`, waits for it to stop, deletes it and its container;
    /// returns the task's exit status.
    pub fn stop_and_remove(&self, id: &str, signal: &str) -> i32 {
        self.kill(id, signal).assert_success("ctr tasks kill");
        self.wait_for_status(id, "STOPPED", Duration::from_secs(10));
        let status = self.delete_task(id);
        self.delete_container(id);
        status
    }

    /// `ctr tasks kill --signal SIGNAL ID` (e.g. `SIGKILL`, `SIGTERM`).
    pub fn kill(&self, id: &str, signal: &str) -> Output {
        self.ctr(["tasks", "kill", "--signal", signal, id])
    }

    /// Parsed `ctr tasks ls`.
    pub fn tasks(&self) -> Vec<Task> {
        self.ctr_ok(["tasks", "ls"])
            .lines()
            .skip(1)
            .filter_map(|line| {
                let mut cols = line.split_whitespace();
                Some(Task { id: cols.next()?.into(), pid: cols.next()?.parse().ok()?, status: cols.next()?.into() })
            })
            .collect()
    }

    pub fn task(&self, id: &str) -> Option<Task> {
        self.tasks().into_iter().find(|t| t.id == id)
    }

    /// Polls `ctr tasks ls` until the task has `status`; panics after `timeout`.
    pub fn wait_for_status(&self, id: &str, status: &str, timeout: Duration) -> Task {
        let deadline = Instant::now() + timeout;
        loop {
            let task = self.task(id);
            match task {
                Some(task) if task.status == status => return task,
                _ if Instant::now() > deadline => {
                    panic!(
                        "task {id} not {status} within {timeout:?} (now {task:?}); containerd's log ends with:\n{}",
                        self.log_tail(30)
                    )
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// `ctr tasks delete ID` on a stopped task; returns its exit status. ctr 1.6 exits 0
    /// either way and reports a non-zero status only as a warning on stderr
    /// ("task ID exit with non-zero exit code 137"), which this parses.
    pub fn delete_task(&self, id: &str) -> i32 {
        let out = self.ctr(["tasks", "delete", id]).assert_success(&format!("ctr tasks delete {id}"));
        let stderr = out.stderr_text();
        match stderr.split("exit with non-zero exit code ").nth(1) {
            Some(rest) => rest.trim_start().split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap(),
            None => 0,
        }
    }

    /// `ctr containers delete ID` (also removes its snapshot); panics unless it succeeds.
    pub fn delete_container(&self, id: &str) {
        self.ctr_ok(["containers", "delete", id]);
    }

    /// Container ids (`ctr containers ls -q`).
    pub fn containers(&self) -> Vec<String> {
        self.ctr_ok(["containers", "ls", "-q"]).lines().map(str::to_string).collect()
    }

    /// Image names (`ctr images ls -q`).
    pub fn images(&self) -> Vec<String> {
        self.ctr_ok(["images", "ls", "-q"]).lines().map(str::to_string).collect()
    }

    /// Live processes belonging to this instance, as `PID: COMMAND LINE`: shims whose command
    /// line names this instance's socket, and processes in its cgroups (containers). Zombies
    /// are not counted. containerd itself is not listed.
    pub fn leftover_processes(&self) -> Vec<String> {
        let address = self.address().display().to_string();
        let in_cgroups = self.cgroup_pids();
        let mut found = Vec::new();
        for (pid, cmdline) in processes() {
            let shim = cmdline.contains("containerd-shim") && cmdline.contains(&address);
            if shim || in_cgroups.contains(&pid) {
                found.push(format!("{pid}: {cmdline}"));
            }
        }
        found
    }

    /// Mount points under this instance's directory (root, state: snapshots, rootfs).
    pub fn leftover_mounts(&self) -> Vec<String> {
        mounts_under(&self.dir).into_iter().map(|p| p.display().to_string()).collect()
    }

    /// Cgroups left under this instance's cgroup parent, in any hierarchy.
    pub fn leftover_cgroups(&self) -> Vec<String> {
        let mut found = Vec::new();
        for parent in self.cgroup_parents() {
            for dir in subdirs(&parent) {
                found.push(dir.display().to_string());
            }
        }
        found
    }

    fn cgroup_pids(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        for parent in self.cgroup_parents() {
            for dir in std::iter::once(parent.clone()).chain(subdirs(&parent)) {
                let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
                pids.extend(procs.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
            }
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    fn cgroup_parents(&self) -> Vec<PathBuf> {
        let name = self.cgroup_parent.trim_start_matches('/');
        let mut parents = vec![Path::new("/sys/fs/cgroup").join(name)];
        if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
            parents.extend(entries.flatten().map(|e| e.path().join(name)));
        }
        parents.into_iter().filter(|p| p.is_dir()).collect()
    }

    /// Panics unless no task, container, shim, container process, mount or cgroup of this
    /// instance is left (images may stay). Waits up to 5 s: shims exit just after ctr returns.
    pub fn assert_clean(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let leftovers = [
                ("tasks", self.tasks().into_iter().map(|t| format!("{t:?}")).collect::<Vec<_>>()),
                ("containers", self.containers()),
                ("processes", self.leftover_processes()),
                ("mounts", self.leftover_mounts()),
                ("cgroups", self.leftover_cgroups()),
            ];
            if leftovers.iter().all(|(_, l)| l.is_empty()) {
                return;
            }
            if Instant::now() > deadline {
                let mut msg = String::from("left behind:\n");
                for (what, list) in leftovers.iter().filter(|(_, l)| !l.is_empty()) {
                    writeln!(msg, "  {what}: {list:#?}").unwrap();
                }
                panic!("{msg}containerd's log ends with:\n{}", self.log_tail(30));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kill and delete what tests left running, while containerd is still up.
    fn remove_tasks_and_containers(&self) {
        let quick = Duration::from_secs(10);
        let list = |args: &[&str]| -> Vec<String> {
            self.try_ctr(args, quick).map(|o| o.stdout_text().lines().map(str::to_string).collect()).unwrap_or_default()
        };
        let tasks = list(&["tasks", "ls", "-q"]);
        for id in &tasks {
            self.try_ctr(["tasks", "delete", "--force", id.as_str()], quick);
        }
        let containers = list(&["containers", "ls", "-q"]);
        for id in &containers {
            self.try_ctr(["containers", "delete", id.as_str()], quick);
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("containerd's log ({}) ends with:\n{}", self.log_path().display(), self.log_tail(40));
        }
        if self.child.is_some() {
            self.remove_tasks_and_containers();
        }
        let leftovers: Vec<u32> =
            self.leftover_processes().iter().filter_map(|p| p.split(':').next()?.parse().ok()).collect();
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Shims outlive containerd (they are reparented); these were started by it.
        for pid in leftovers {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).stderr(Stdio::null()).status();
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while !self.cgroup_pids().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        for mount in mounts_under(&self.dir).into_iter().rev() {
            let _ = Command::new("umount").arg("--lazy").arg(&mount).stderr(Stdio::null()).status();
        }
        for parent in self.cgroup_parents() {
            for dir in subdirs(&parent).into_iter().rev() {
                let _ = std::fs::remove_dir(dir);
            }
            let _ = std::fs::remove_dir(parent);
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("warning: could not remove {}: {e}", self.dir.display());
        }
    }
}

/// Panics with what to install when containerd or runc is missing, or when not root.
fn require_tools(version: Version) {
    for tool in ["containerd", "ctr", "runc"] {
        let path = if tool == "runc" { PathBuf::from(tool) } else { version.binary(tool) };
        let found = Command::new(&path).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
        let fix = match version {
            Version::V2 if tool != "runc" => "`make tools` builds containerd 2.x from the Go module proxy",
            _ => "`make deps` installs Debian's containerd and runc",
        };
        assert!(found, "`{}` not found: {fix}", path.display());
    }
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:"))?.split_whitespace().nth(1).map(str::to_string));
    assert_eq!(uid.as_deref(), Some("0"), "the containerd tests need root");
}

/// Runs `cmd` with stdin closed, collecting its output; `None` (child killed) after `timeout`.
fn output_within(cmd: Command, timeout: Duration) -> Option<Output> {
    output_with_input(cmd, timeout, None)
}

/// Like [`output_within`], writing `input` (then EOF) to the child's stdin when given.
fn output_with_input(mut cmd: Command, timeout: Duration, input: Option<&[u8]>) -> Option<Output> {
    let stdin = if input.is_some() { Stdio::piped() } else { Stdio::null() };
    let mut child = cmd.stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn ctr");
    if let (Some(input), Some(mut pipe)) = (input, child.stdin.take()) {
        let input = input.to_vec();
        std::thread::spawn(move || {
            use std::io::Write;
            let _ = pipe.write_all(&input);
        });
    }
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = read(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Some(Output { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() })
}

/// (pid, command line with spaces between arguments) of every process.
fn processes() -> Vec<(u32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            if raw.is_empty() {
                return None; // kernel thread or zombie
            }
            let args: Vec<String> =
                raw.split(|&b| b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into()).collect();
            Some((pid, args.join(" ")))
        })
        .collect()
}

/// Mount points under `dir`, in mount order (unmount in reverse).
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mount_path(p)))
        .filter(|p| p.starts_with(dir))
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\NNN` (octal).
fn unescape_mount_path(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        match u8::from_str_radix(rest.get(i + 1..i + 4).unwrap_or(""), 8) {
            Ok(byte) => {
                out.push(byte as char);
                rest = &rest[i + 4..];
            }
            Err(_) => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out + rest
}

/// All directories below `dir`, parents before children.
fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                found.push(entry.path());
                found.extend(subdirs(&entry.path()));
            }
        }
    }
    found
}

/// Readable views of a command's output.
pub trait OutputExt {
    fn stdout_text(&self) -> String;
    fn stderr_text(&self) -> String;
    /// Panics with the exit status, stdout and stderr unless the command succeeded.
    fn assert_success(self, what: &str) -> Self;
}

impl OutputExt for Output {
    fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    fn assert_success(self, what: &str) -> Self {
        assert!(
            self.status.success(),
            "{what} failed with {}\nstdout: {}\nstderr: {}",
            self.status,
            self.stdout_text(),
            self.stderr_text()
        );
        self
    }
}

/// A static x86-64 binary compiled from C source with `cc -static` (the native side of
/// comparisons with runc).
pub fn static_binary(name: &str, source: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    let (src, bin) = (dir.path().join(format!("{name}.c")), dir.path().join(name));
    std::fs::write(&src, source).expect("write C source");
    let out = Command::new("cc").args(["-O2", "-static", "-o"]).arg(&bin).arg(&src).output().expect("cc (make deps)");
    assert!(out.status.success(), "cc -static failed: {}", out.stderr_text());
    std::fs::read(&bin).expect("read the binary")
}

/// The `spore` CLI built beside the shim (`cargo build --release --workspace`).
pub fn spore_cli() -> PathBuf {
    let path = shim_dir().join("spore");
    assert!(path.is_file(), "{} missing: build it with `cargo build --release -p spore-cli`", path.display());
    path
}

/// `spore image build` of a guest into a Wasm artifact tar in `dir`; returns the tar's path.
pub fn build_artifact(dir: &Path, guest: &str, tag: &str) -> PathBuf {
    let tar = dir.join(format!("{}.tar", guest.trim_end_matches(".wasm")));
    let module = crate::common::guests_dir().join(guest);
    let out = Command::new(spore_cli())
        .args(["image", "build", "--format", "artifact", "--tag", tag, "--module"])
        .arg(&module)
        .arg("-o")
        .arg(&tar)
        .output()
        .expect("spore runs");
    out.assert_success("spore image build");
    tar
}

/// Imports a plain image whose entrypoint is the probe module (default command: `echo hi`);
/// its name.
pub fn probe_image(ctrd: &Containerd) -> String {
    let image = ImageBuilder::new("localhost/spore/probe:1")
        .file("/probe.wasm", crate::common::guest_bytes("probe-c.wasm"), 0o755)
        .entrypoint(["/probe.wasm"])
        .cmd(["echo", "hi"]);
    ctrd.import_image(&image);
    image.name().to_string()
}
