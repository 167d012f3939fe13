//! Finding the node's containerd and restarting it. With `hostPID: true` the container's
//! `/proc` lists the host's processes; which /proc is a parameter so tests can fake one.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tracing::info;

use crate::config::DEFAULT_CONFIG_PATH;
use crate::error::{Error, Result};
use crate::host::HostRoot;

/// How long containerd may take to come back after a restart, and then to answer.
pub const RESTART_TIMEOUT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(100);

/// The pids of containerd daemons in `proc` whose config is `config` (a host path).
pub fn containerd_pids(proc: &Path, config: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir(proc) else { return Vec::new() };
    let mut pids: Vec<u32> = entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .filter(|&pid: &u32| {
            let dir = proc.join(pid.to_string());
            let Some(argv) = read_cmdline(&dir.join("cmdline")) else { return false };
            let cwd = std::fs::read_link(dir.join("cwd")).ok();
            runs_config(&argv, cwd.as_deref(), config)
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// NUL-separated arguments; `None` for kernel threads and zombies (empty cmdline).
fn read_cmdline(path: &Path) -> Option<Vec<String>> {
    let raw = std::fs::read(path).ok()?;
    let argv: Vec<String> =
        raw.split(|&b| b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    (!argv.is_empty()).then_some(argv)
}

/// Whether `argv` is a containerd daemon (not a `containerd config dump`-style subcommand)
/// reading `config`. Without `--config` it reads containerd's default path.
fn runs_config(argv: &[String], cwd: Option<&Path>, config: &Path) -> bool {
    let Some((argv0, args)) = argv.split_first() else { return false };
    if Path::new(argv0).file_name().is_none_or(|name| name != "containerd") {
        return false;
    }
    let Some(flag) = daemon_config_flag(args) else { return false };
    let used = match flag {
        None => PathBuf::from(DEFAULT_CONFIG_PATH),
        Some(path) if Path::new(path).is_absolute() => PathBuf::from(path),
        // Relative to containerd's working directory, as the host sees it.
        Some(path) => match cwd {
            Some(cwd) => cwd.join(path),
            None => return false,
        },
    };
    used == config
}

/// The daemon's `--config`/`-c` value (`Some(None)` when absent); `None` when the command
/// line runs a subcommand (a bare word that is no flag's value).
fn daemon_config_flag(args: &[String]) -> Option<Option<&str>> {
    let mut config = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let Some(flag) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            return None; // a subcommand such as `config dump`
        };
        let (name, inline) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (flag, None),
        };
        // containerd's global flags other than --help/--version all take a value.
        let value = match inline {
            Some(value) => Some(value),
            None if matches!(name, "help" | "h" | "version" | "v") => None,
            None => args.next().map(String::as_str),
        };
        if matches!(name, "config" | "c") {
            config = value;
        }
    }
    Some(config)
}

/// The systemd service running a process, from its `/proc/PID/cgroup`: the innermost unit
/// of its systemd cgroup path, when that unit is a system `.service` (not a `.scope`, not
/// under a user manager `user@UID.service`).
pub fn systemd_service(cgroup: &str) -> Option<String> {
    let fields = |line: &'_ str| -> Option<(String, String, String)> {
        let mut parts = line.splitn(3, ':');
        Some((parts.next()?.into(), parts.next()?.into(), parts.next()?.into()))
    };
    let lines: Vec<_> = cgroup.lines().filter_map(fields).collect();
    // cgroup v1 (and hybrid) name the systemd hierarchy; pure v2 has the one "0::" line.
    let path = lines
        .iter()
        .find(|(_, controllers, _)| controllers == "name=systemd")
        .or_else(|| lines.iter().find(|(id, controllers, _)| id == "0" && controllers.is_empty()))
        .map(|(_, _, path)| path)?;
    let units: Vec<&str> = path.split('/').filter(|c| c.ends_with(".service") || c.ends_with(".scope")).collect();
    let innermost = units.last()?;
    let under_user_manager = units.iter().any(|unit| unit.starts_with("user@"));
    (innermost.ends_with(".service") && !under_user_manager).then(|| innermost.to_string())
}

/// The node's containerd, as the installer sees it.
#[derive(Clone, Debug)]
pub struct Containerd {
    /// The host's /proc (the container's own, with hostPID).
    pub proc_root: PathBuf,
    pub host: HostRoot,
    /// Host path of the main config, as given to containerd's `--config`.
    pub config_path: PathBuf,
    /// Host path of the gRPC socket.
    pub socket: PathBuf,
    /// This binary, re-run as `chroot-exec` to call the host's systemctl.
    pub self_exe: PathBuf,
}

impl Containerd {
    /// The one running containerd with our config.
    pub fn find(&self) -> Result<u32> {
        match containerd_pids(&self.proc_root, &self.config_path)[..] {
            [pid] => Ok(pid),
            [] => Err(Error::ContainerdNotFound { config: self.config_path.clone() }),
            ref pids => Err(Error::ContainerdAmbiguous { config: self.config_path.clone(), pids: pids.to_vec() }),
        }
    }

    /// Restarts containerd through its systemd unit, or else by SIGTERM and its supervisor,
    /// then waits until it answers on its socket.
    pub fn restart(&self) -> Result<()> {
        let pid = self.find()?;
        let cgroup = std::fs::read_to_string(self.proc_root.join(pid.to_string()).join("cgroup")).unwrap_or_default();
        match systemd_service(&cgroup) {
            Some(unit) => {
                info!("restarting containerd (pid {pid}): systemctl restart {unit}");
                self.systemctl_restart(&unit)?;
            }
            None => {
                info!("restarting containerd (pid {pid}, no systemd unit): SIGTERM, its supervisor starts it again");
                self.terminate_and_wait(pid)?;
            }
        }
        self.wait_until_answering()?;
        info!("containerd restarted (pid {}) and answers on {}", self.find()?, self.socket.display());
        Ok(())
    }

    /// `systemctl restart UNIT` with the host's systemctl: this binary chroots into the host
    /// root and execs it (no `pre_exec`: unsafe code is denied).
    fn systemctl_restart(&self, unit: &str) -> Result<()> {
        let output = Command::new(&self.self_exe)
            .arg("chroot-exec")
            .arg(self.host.root())
            .args(["--", "systemctl", "restart", unit])
            // systemctl ignores requests when it thinks it runs in a chroot; this is the host's.
            .env("SYSTEMD_IGNORE_CHROOT", "1")
            .output()
            .map_err(Error::io("run", &self.self_exe))?;
        if output.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let detail = format!("{}: {}", output.status, stderr.trim().replace('\n', " "));
        Err(Error::SystemctlFailed { unit: unit.into(), detail })
    }

    fn terminate_and_wait(&self, pid: u32) -> Result<()> {
        let target = Pid::from_raw(i32::try_from(pid).expect("pids fit in i32"));
        kill(target, Signal::SIGTERM).map_err(|source| Error::Signal { pid, source })?;
        let deadline = Instant::now() + RESTART_TIMEOUT;
        loop {
            let pids = containerd_pids(&self.proc_root, &self.config_path);
            if !pids.is_empty() && !pids.contains(&pid) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::NotRestarted { pid, timeout: RESTART_TIMEOUT });
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits until containerd accepts connections on its gRPC socket.
    pub fn wait_until_answering(&self) -> Result<()> {
        let socket = self.host.path(&self.socket);
        let deadline = Instant::now() + RESTART_TIMEOUT;
        while UnixStream::connect(&socket).is_err() {
            if Instant::now() > deadline {
                return Err(Error::SocketTimeout { socket: self.socket.clone(), timeout: RESTART_TIMEOUT });
            }
            std::thread::sleep(POLL);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake /proc: each process is (pid, argv, cwd, cgroup).
    struct FakeProc(tempfile::TempDir);

    impl FakeProc {
        fn new() -> FakeProc {
            let proc = FakeProc(tempfile::tempdir().unwrap());
            std::fs::create_dir(proc.0.path().join("self")).unwrap(); // not a pid: skipped
            proc
        }

        fn process(self, pid: u32, argv: &[&str], cwd: &str, cgroup: &str) -> FakeProc {
            let dir = self.0.path().join(pid.to_string());
            std::fs::create_dir(&dir).unwrap();
            let cmdline: Vec<u8> = argv.iter().flat_map(|a| a.bytes().chain([0])).collect();
            std::fs::write(dir.join("cmdline"), cmdline).unwrap();
            std::os::unix::fs::symlink(cwd, dir.join("cwd")).unwrap();
            std::fs::write(dir.join("cgroup"), cgroup).unwrap();
            self
        }

        fn pids(&self, config: &str) -> Vec<u32> {
            containerd_pids(self.0.path(), Path::new(config))
        }
    }

    const SERVICE: &str = "0::/system.slice/containerd.service\n";

    #[test]
    fn matches_containerd_by_its_config_flag_in_every_spelling() {
        let proc = FakeProc::new()
            .process(10, &["/usr/bin/containerd", "--config", "/a.toml"], "/", SERVICE)
            .process(11, &["containerd", "-c", "/b.toml", "--log-level", "debug"], "/", "")
            .process(12, &["/usr/local/bin/containerd", "--config=/c.toml"], "/", "")
            .process(13, &["containerd", "-l", "info", "-c=/d.toml"], "/", "")
            .process(14, &["containerd", "--config", "e.toml"], "/etc/containerd", "");
        assert_eq!(proc.pids("/a.toml"), [10]);
        assert_eq!(proc.pids("/b.toml"), [11]);
        assert_eq!(proc.pids("/c.toml"), [12]);
        assert_eq!(proc.pids("/d.toml"), [13]);
        assert_eq!(proc.pids("/etc/containerd/e.toml"), [14], "relative to containerd's cwd");
        assert!(proc.pids("/other.toml").is_empty());
    }

    #[test]
    fn containerd_without_config_flag_matches_the_default_path_only() {
        let proc = FakeProc::new().process(20, &["/usr/bin/containerd"], "/", SERVICE).process(
            21,
            &["containerd", "--log-level", "debug"],
            "/",
            "",
        );
        assert_eq!(proc.pids(DEFAULT_CONFIG_PATH), [20, 21]);
        assert!(proc.pids("/etc/k3s/containerd.toml").is_empty());
    }

    #[test]
    fn ignores_shims_subcommands_and_other_programs() {
        let proc = FakeProc::new()
            .process(30, &["containerd-shim-runc-v2", "-namespace", "k8s.io", "-address", "/a.toml"], "/", "")
            .process(31, &["containerd", "--config", "/a.toml", "config", "dump"], "/", "")
            .process(32, &["bash", "-c", "while :; do containerd --config /a.toml; done"], "/", "")
            .process(33, &["/usr/bin/dockerd", "--config", "/a.toml"], "/", "")
            .process(34, &["containerd", "--config", "/a.toml"], "/", "");
        assert_eq!(proc.pids("/a.toml"), [34]);
    }

    fn containerd(proc: &FakeProc, config: &str) -> Containerd {
        Containerd {
            proc_root: proc.0.path().into(),
            host: HostRoot::new("/"),
            config_path: config.into(),
            socket: "/run/containerd/containerd.sock".into(),
            self_exe: "/spore/spore-node-installer".into(),
        }
    }

    #[test]
    fn find_wants_exactly_one_containerd() {
        let proc = FakeProc::new()
            .process(40, &["containerd", "-c", "/one.toml"], "/", "")
            .process(41, &["containerd", "-c", "/two.toml"], "/", "")
            .process(42, &["containerd", "-c", "/two.toml"], "/", "");
        assert_eq!(containerd(&proc, "/one.toml").find().unwrap(), 40);
        let none = containerd(&proc, "/none.toml").find().unwrap_err().to_string();
        assert!(none.starts_with("no containerd process runs with config /none.toml"), "{none}");
        let two = containerd(&proc, "/two.toml").find().unwrap_err().to_string();
        assert!(two.contains("several containerd processes") && two.contains("[41, 42]"), "{two}");
    }

    /// A stand-in for this binary that records its arguments and environment.
    fn recording_exe(dir: &Path, exit_code: u8) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let exe = dir.join("installer");
        let script = format!(
            "#!/bin/sh\necho \"$@ SYSTEMD_IGNORE_CHROOT=$SYSTEMD_IGNORE_CHROOT\" > {}/args\necho 'unit failed' >&2\nexit {exit_code}\n",
            dir.display()
        );
        std::fs::write(&exe, script).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        exe
    }

    #[test]
    fn restarts_a_systemd_service_with_the_hosts_systemctl() {
        let proc = FakeProc::new().process(50, &["/usr/bin/containerd"], "/", SERVICE);
        let host = tempfile::tempdir().unwrap();
        let socket = host.path().join("containerd.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let containerd = Containerd {
            host: HostRoot::new(host.path()),
            config_path: DEFAULT_CONFIG_PATH.into(),
            socket: "/containerd.sock".into(),
            self_exe: recording_exe(host.path(), 0),
            ..containerd(&proc, DEFAULT_CONFIG_PATH)
        };
        containerd.restart().unwrap();
        let args = std::fs::read_to_string(host.path().join("args")).unwrap();
        let expected = format!(
            "chroot-exec {} -- systemctl restart containerd.service SYSTEMD_IGNORE_CHROOT=1\n",
            host.path().display()
        );
        assert_eq!(args, expected);
    }

    #[test]
    fn a_failing_systemctl_is_reported_with_its_stderr() {
        let proc = FakeProc::new().process(51, &["/usr/bin/containerd"], "/", SERVICE);
        let host = tempfile::tempdir().unwrap();
        let containerd =
            Containerd { self_exe: recording_exe(host.path(), 5), ..containerd(&proc, DEFAULT_CONFIG_PATH) };
        let message = containerd.restart().unwrap_err().to_string();
        assert!(message.starts_with("`systemctl restart containerd.service` on the host failed"), "{message}");
        assert!(message.contains("exit status: 5") && message.contains("unit failed"), "{message}");
    }

    #[test]
    fn finds_the_systemd_service_of_a_process() {
        assert_eq!(systemd_service(SERVICE).as_deref(), Some("containerd.service"));
        let v1 = "12:pids:/system.slice/containerd.service\n1:name=systemd:/system.slice/containerd.service\n";
        assert_eq!(systemd_service(v1).as_deref(), Some("containerd.service"));
        let delegated = "0::/system.slice/k3s-agent.service/containerd\n";
        assert_eq!(systemd_service(delegated).as_deref(), Some("k3s-agent.service"));
    }

    #[test]
    fn no_systemd_service_for_scopes_user_managers_and_plain_cgroups() {
        for cgroup in [
            "",
            "0::/\n",
            "0::/user.slice/user-0.slice/session-3.scope\n",
            "0::/user.slice/user-1000.slice/user@1000.service/app.slice/containerd.service\n",
            "0::/user.slice/user-1000.slice/user@1000.service/app.slice/run-r1.scope\n",
            "0::/docker/0123abcd\n",
            "4:memory:/system.slice/containerd.service\n0::/\n",
        ] {
            assert_eq!(systemd_service(cgroup), None, "{cgroup:?}");
        }
    }
}
