//! The binary's behaviour that needs no running containerd: errors, the termination log,
//! `chroot-exec` and `wait`.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{OutputExt, run, write_executable};

fn installer() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spore-node-installer"));
    cmd.env_remove("NODE_NAME");
    cmd
}

/// An install against `config` (in `dir`, host root `/`), its termination log in `dir`.
fn install(dir: &Path, config: &str) -> Command {
    std::fs::write(dir.join("config.toml"), config).unwrap();
    write_executable(&dir.join("shim"), "#!/bin/sh\n");
    let mut cmd = installer();
    cmd.args(["install", "--host-root", "/", "--handler", "spore"])
        .arg("--config-path")
        .arg(dir.join("config.toml"))
        .arg("--install-dir")
        .arg(dir.join("bin"))
        .arg("--shim")
        .arg(dir.join("shim"))
        .arg("--termination-log")
        .arg(dir.join("termination-log"));
    cmd
}

#[test]
fn version_1_config_fails_naming_the_migration_in_the_termination_log() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(install(dir.path(), "[grpc]\naddress = \"/run/x.sock\"\n")).assert_failure();
    let message = std::fs::read_to_string(dir.path().join("termination-log")).unwrap();
    assert!(message.contains("has no `version` (version 1)"), "{message}");
    assert!(message.contains("containerd config migrate"), "{message}");
    assert_eq!(message.lines().count(), 1, "one line: {message}");
    assert!(out.stderr_text().contains(message.trim_end()), "stderr too: {}", out.stderr_text());
}

#[test]
fn missing_containerd_fails_before_touching_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!("version = 3\nimports = [\"{}/conf.d/*.toml\"]\n", dir.path().display());
    let out = run(install(dir.path(), &config)).assert_failure();
    let config_path = dir.path().join("config.toml");
    let expected = format!("no containerd process runs with config {}", config_path.display());
    assert!(out.stderr_text().contains(&expected), "{}", out.stderr_text());
    assert!(!dir.path().join("bin").exists(), "no shim installed");
    assert!(!dir.path().join("conf.d").exists(), "no drop-in written");
}

#[test]
fn termination_log_is_skipped_when_its_directory_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = install(dir.path(), "version = 1\n");
    cmd.arg("--termination-log").arg(dir.path().join("missing/termination-log"));
    run(cmd).assert_failure();
    assert!(!dir.path().join("missing").exists());
}

#[test]
fn invalid_handler_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = install(dir.path(), "version = 3\n");
    cmd.args(["--handler", "Spore_1"]);
    let out = run(cmd).assert_failure();
    assert!(out.stderr_text().contains("invalid handler \"Spore_1\""), "{}", out.stderr_text());
}

#[test]
fn relative_install_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = install(dir.path(), "version = 2\n");
    cmd.args(["--install-dir", "opt/spore/bin"]);
    let out = run(cmd).assert_failure();
    let expected = "invalid install dir \"opt/spore/bin\": not an absolute host path";
    assert!(out.stderr_text().contains(expected), "{}", out.stderr_text());
}

#[test]
fn chroot_exec_runs_the_command_inside_the_new_root() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("bin")).unwrap();
    // busybox-static needs no libraries inside the new root.
    std::fs::copy("/bin/busybox", root.path().join("bin/busybox")).expect("busybox-static (make deps)");
    std::fs::write(root.path().join("marker"), "").unwrap();
    let mut cmd = installer();
    cmd.arg("chroot-exec").arg(root.path()).args(["--", "/bin/busybox", "sh", "-c", "pwd; ls /"]);
    let out = run(cmd).assert_success();
    assert_eq!(out.stdout_text(), "/\nbin\nmarker\n");
}

#[test]
fn chroot_exec_reports_a_missing_command() {
    let root = tempfile::tempdir().unwrap();
    let mut cmd = installer();
    cmd.arg("chroot-exec").arg(root.path()).args(["--", "/no/such/program"]);
    let out = run(cmd).assert_failure();
    assert!(out.stderr_text().contains("failed to run \"/no/such/program\""), "{}", out.stderr_text());
}

#[test]
fn wait_exits_zero_on_sigterm() {
    let mut child = installer().arg("wait").stdout(Stdio::piped()).spawn().unwrap();
    // The first line comes once the signals are blocked: no race with the kill below.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.contains("waiting for SIGTERM"), "{line}");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "still running 5s after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    line.clear();
    stdout.read_line(&mut line).unwrap();
    assert!(line.contains("received SIGTERM"), "{line}");
}

#[test]
fn uninstall_without_a_containerd_config_removes_only_the_shim() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("bin")).unwrap();
    write_executable(&dir.path().join("bin/containerd-shim-spore-v1"), "#!/bin/sh\n");
    let mut cmd = installer();
    cmd.args(["uninstall", "--host-root", "/", "--handler", "spore"])
        .arg("--config-path")
        .arg(dir.path().join("missing.toml"))
        .arg("--install-dir")
        .arg(dir.path().join("bin"));
    let out = run(cmd);
    assert!(out.status.success(), "{}", out.stderr_text());
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), out.stderr_text());
    assert!(log.contains("does not exist; no drop-in to remove"), "{log}");
    assert!(!dir.path().join("bin/containerd-shim-spore-v1").exists());
}
