//! The installer against real containerd 1.6 and 1.7 (config version 2) and 2.x (version 3),
//! each restarted by a supervisor loop the way a node's init system would.
//!
//! 1.7 gets the same drop-in as 1.6, and needs it: its imports replace a plugin's section too
//! (containerd#5837). It does honour `runtime_path`, which 1.6 ignores (containerd#8207), but
//! runs the shim named by an absolute runtime type just as well; a config version 2 cannot
//! tell which 1.x reads it. `runtime_path_is_*` show the difference.
//!
//! Most tests install a stand-in shim script: they check files, restarts, rollbacks and what
//! `crictl info` lists, never start the shim. `cri_runs_a_pod_on_the_installed_shim_*` install
//! the real one and run a pod on it through CRI.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use support::{FakeApiServer, HANDLER, OutputExt, TestNode, Version, run, shim_on_containerd_path, write_executable};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// install registers the handler with one restart, leaves the main config alone, keeps the
/// node's CRI settings; a second install is a no-op; uninstall takes it all away again.
fn install_reinstall_uninstall(version: Version) {
    let Some(node) = TestNode::configure(version).start() else { return };
    let main_config = std::fs::read(node.config_path()).unwrap();
    let first_pid = node.pid();
    assert_eq!(node.starts(), 1);

    let api = FakeApiServer::start();
    let with_node = |subcommand: &str| {
        let mut cmd = node.installer(subcommand);
        cmd.args(["--node-name", "node-1"]).env("KUBECONFIG", api.kubeconfig());
        cmd
    };

    let out = run(with_node("install")).assert_success();
    let log = out.stdout_text();
    assert!(log.contains("shim ") && log.contains(": installing (sha256 "), "{log}");
    assert!(log.contains("verified"), "{log}");
    let [label] = &api.take_requests()[..] else { panic!("expected one API request") };
    assert_eq!(label.method, "PATCH");
    assert!(label.path.starts_with("/api/v1/nodes/node-1?"), "{}", label.path);
    assert!(label.path.contains("fieldManager=spore-node-installer"), "{}", label.path);
    assert_eq!(label.content_type, "application/merge-patch+json");
    assert_eq!(label.body["metadata"]["labels"]["runtime.spore.dev/spore"], "ready");
    assert_eq!(label.body["metadata"]["annotations"]["runtime.spore.dev/spore.version"], env!("CARGO_PKG_VERSION"));
    let shim = node.installed_shim().display().to_string();
    // Config version 2 names the shim by its path as the runtime type, as 1.6 ignores
    // runtime_path (containerd#8207); 1.7 gets the same drop-in.
    let (runtime_type, runtime_path) = match version {
        Version::Debian | Version::Containerd17 => (shim.as_str(), ""),
        Version::Containerd2 => ("io.containerd.spore.v1", shim.as_str()),
    };
    let handler = node.handler_info().expect("crictl info lists the handler");
    assert_eq!(handler["runtimeType"], runtime_type);
    assert_eq!(handler["runtimePath"], runtime_path);
    let dump = node.config_dump();
    assert!(dump.contains(&format!("runtimes.{HANDLER}]")), "{dump}");
    assert!(dump.contains(&shim), "the shim's path in dump:\n{dump}");
    assert!(dump.contains(&node.cni_conf_dir()), "the node's CNI conf_dir survives the drop-in:\n{dump}");
    assert!(dump.contains("runtimes.runc]"), "runc is still there:\n{dump}");
    assert_eq!(std::fs::read(node.config_path()).unwrap(), main_config, "main config untouched");
    assert_eq!(std::fs::read(node.installed_shim()).unwrap(), std::fs::read(node.image_shim()).unwrap());
    assert_eq!(mode(&node.installed_shim()), 0o755);
    let dropin = std::fs::read_to_string(node.dropin()).unwrap();
    assert!(dropin.starts_with("# Managed by Spore's node installer"), "{dropin}");
    let second_pid = node.pid();
    assert_ne!(second_pid, first_pid, "containerd restarted");
    assert_eq!(node.starts(), 2, "containerd restarted exactly once");

    let out = run(node.installer("install")).assert_success();
    let log = out.stdout_text();
    assert!(log.contains("nothing changed"), "{log}");
    assert_eq!(node.pid(), second_pid, "no restart when nothing changed");
    assert_eq!(node.starts(), 2);

    let out = run(with_node("uninstall")).assert_success();
    assert!(out.stdout_text().contains("removed"), "{}", out.stdout_text());
    let [unlabel] = &api.take_requests()[..] else { panic!("expected one API request") };
    assert!(unlabel.body["metadata"]["labels"]["runtime.spore.dev/spore"].is_null());
    assert!(
        unlabel.body["metadata"]["annotations"].get("runtime.spore.dev/spore.version").is_some_and(|v| v.is_null())
    );
    assert!(!node.dropin().exists());
    assert!(!node.installed_shim().exists());
    let third_pid = node.pid();
    assert_ne!(third_pid, second_pid, "containerd restarted without the drop-in");
    assert!(!node.config_dump().contains(&format!("runtimes.{HANDLER}]")));
    assert_eq!(node.handler_info(), None);
    assert_eq!(std::fs::read(node.config_path()).unwrap(), main_config);

    run(node.installer("uninstall")).assert_success();
    assert_eq!(node.pid(), third_pid, "uninstalling nothing restarts nothing");
}

#[test]
fn install_reinstall_uninstall_on_containerd_1_6() {
    install_reinstall_uninstall(Version::Debian);
}

#[test]
fn install_reinstall_uninstall_on_containerd_1_7() {
    install_reinstall_uninstall(Version::Containerd17);
}

#[test]
fn install_reinstall_uninstall_on_containerd_2() {
    install_reinstall_uninstall(Version::Containerd2);
}

/// Without a drop-in directory in `imports` the installer refuses, touching nothing.
fn refuses_config_without_imports(version: Version) {
    let Some(node) = TestNode::configure(version).without_imports().start() else { return };
    let main_config = std::fs::read(node.config_path()).unwrap();
    let pid = node.pid();

    let out = run(node.installer("install")).assert_failure();
    let expected = format!(
        "containerd config {} imports no drop-in directory; add imports = [\"{}/conf.d/*.toml\"] to it and \
         restart containerd (Spore never edits the main config)",
        node.config_path().display(),
        node.dir().display()
    );
    assert!(out.stderr_text().contains(&expected), "{}", out.stderr_text());
    assert_eq!(node.termination_message(), format!("{expected}\n"));
    assert_eq!(std::fs::read(node.config_path()).unwrap(), main_config);
    assert!(!node.installed_shim().exists());
    assert_eq!(std::fs::read_dir(node.dir().join("conf.d")).unwrap().count(), 0);
    assert_eq!(node.pid(), pid);
}

#[test]
fn refuses_config_without_imports_on_containerd_1_6() {
    refuses_config_without_imports(Version::Debian);
}

#[test]
fn refuses_config_without_imports_on_containerd_1_7() {
    refuses_config_without_imports(Version::Containerd17);
}

#[test]
fn refuses_config_without_imports_on_containerd_2() {
    refuses_config_without_imports(Version::Containerd2);
}

/// A verification failure after the restart puts the previous shim and drop-in back and
/// restarts containerd on them: the handler keeps working as before.
fn failed_verification_rolls_back(version: Version) {
    let Some(node) = TestNode::configure(version).start() else { return };
    run(node.installer("install")).assert_success();
    let old_shim = std::fs::read(node.installed_shim()).unwrap();
    let old_dropin = std::fs::read(node.dropin()).unwrap();
    let pid = node.pid();

    write_executable(&node.image_shim(), "#!/bin/sh\n# a newer shim\nexit 0\n");
    let failing_crictl = node.dir().join("failing-crictl");
    write_executable(&failing_crictl, "#!/bin/sh\necho 'simulated crictl failure' >&2\nexit 1\n");
    let out = run({
        let mut cmd = node.installer("install");
        cmd.arg("--crictl").arg(&failing_crictl);
        cmd
    })
    .assert_failure();
    let message = out.stderr_text();
    assert!(message.contains("verification failed"), "{message}");
    assert!(message.contains("simulated crictl failure"), "{message}");
    assert!(message.contains("the node was rolled back"), "{message}");
    assert_eq!(std::fs::read(node.installed_shim()).unwrap(), old_shim);
    assert_eq!(std::fs::read(node.dropin()).unwrap(), old_dropin);
    assert_ne!(node.pid(), pid, "restarted for the change and again for the rollback");
    assert_eq!(node.starts(), 4);
    assert!(node.handler_info().is_some(), "the previous install still works");
}

#[test]
fn failed_verification_rolls_back_on_containerd_1_6() {
    failed_verification_rolls_back(Version::Debian);
}

#[test]
fn failed_verification_rolls_back_on_containerd_1_7() {
    failed_verification_rolls_back(Version::Containerd17);
}

#[test]
fn failed_verification_rolls_back_on_containerd_2() {
    failed_verification_rolls_back(Version::Containerd2);
}

/// On a fresh node, rolling back removes the files it had added.
#[test]
fn failed_first_install_leaves_no_files() {
    let Some(node) = TestNode::configure(Version::Debian).start() else { return };
    let failing_crictl = node.dir().join("failing-crictl");
    write_executable(&failing_crictl, "#!/bin/sh\nexit 1\n");
    let mut cmd = node.installer("install");
    cmd.arg("--crictl").arg(&failing_crictl);
    let out = run(cmd).assert_failure();
    assert!(out.stderr_text().contains("rolled back"), "{}", out.stderr_text());
    assert!(!node.dropin().exists());
    assert!(!node.installed_shim().exists());
    assert_eq!(node.starts(), 3);
    assert_eq!(node.handler_info(), None);
}

/// `--restart=false` writes the files but leaves containerd (and the Node) alone.
#[test]
fn restart_false_writes_files_without_restarting() {
    let Some(node) = TestNode::configure(Version::Containerd2).start() else { return };
    let pid = node.pid();
    let mut cmd = node.installer("install");
    cmd.arg("--restart=false");
    let out = run(cmd).assert_success();
    assert!(out.stdout_text().contains("containerd not restarted"), "{}", out.stdout_text());
    assert!(node.dropin().exists() && node.installed_shim().exists());
    assert_eq!(node.pid(), pid);
    assert_eq!(node.handler_info(), None, "containerd loads the drop-in only when restarted");
}

/// containerd 1.x keeps the last imported CRI section whole (1.7 as 1.6): the drop-in repeats
/// the one of an earlier drop-in, and refuses when a later one would hide it.
fn drop_in_follows_other_drop_ins(version: Version) {
    let Some(node) = TestNode::configure(version).start() else { return };
    let conf_d = node.dir().join("conf.d");
    let certs = node.dir().join("certs.d").display().to_string();
    // Its own stream port, as every node's here: containerd 1.x exits when the default is taken.
    let registry = format!(
        "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  stream_server_port = \"0\"\n\
         [plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"{certs}\"\n"
    );
    std::fs::write(conf_d.join("10-registry.toml"), registry).unwrap();
    assert!(
        !node.config_dump().contains(&node.cni_conf_dir()),
        "the imported CRI section replaces the main config's whole (containerd#5837)"
    );
    std::fs::write(conf_d.join("zz-late.toml"), "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\n").unwrap();

    let out = run(node.installer("install")).assert_failure();
    let expected = format!(
        "{} configures plugins.\"io.containerd.grpc.v1.cri\" and is imported after {}",
        conf_d.join("zz-late.toml").display(),
        node.dropin().display()
    );
    assert!(out.stderr_text().contains(&expected), "{}", out.stderr_text());
    assert!(!node.dropin().exists() && !node.installed_shim().exists());
    assert_eq!(node.starts(), 1);

    std::fs::remove_file(conf_d.join("zz-late.toml")).unwrap();
    run(node.installer("install")).assert_success();
    let dropin = std::fs::read_to_string(node.dropin()).unwrap();
    assert!(dropin.contains(&format!("the CRI settings of {}", conf_d.join("10-registry.toml").display())), "{dropin}");
    assert!(node.config_dump().contains(&format!("config_path = \"{certs}\"")), "registry settings kept");
    assert!(node.handler_info().is_some());

    // A second handler's drop-in would replace this one whole (or be replaced by it).
    let mut second = node.installer("install");
    second.args(["--handler", "fast"]);
    let out = run(second).assert_failure();
    let expected = format!("{} already registers another Spore runtime handler", node.dropin().display());
    assert!(out.stderr_text().contains(&expected), "{}", out.stderr_text());
    assert!(!conf_d.join("spore-fast.toml").exists());
}

#[test]
fn drop_in_follows_other_drop_ins_on_containerd_1_6() {
    drop_in_follows_other_drop_ins(Version::Debian);
}

#[test]
fn drop_in_follows_other_drop_ins_on_containerd_1_7() {
    drop_in_follows_other_drop_ins(Version::Containerd17);
}

/// On containerd 2.x handlers add up, and share the shim until the last one goes. Two
/// installers at once take turns (they lock containerd's config).
#[test]
fn containerd_2_serves_two_handlers_sharing_the_shim() {
    let Some(node) = TestNode::configure(Version::Containerd2).start() else { return };
    let with_handler = |subcommand: &str, handler: &str| {
        let mut cmd = node.installer(subcommand);
        cmd.args(["--handler", handler]).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        cmd
    };
    let installs =
        [with_handler("install", HANDLER).spawn().unwrap(), with_handler("install", "fast").spawn().unwrap()];
    for install in installs {
        install.wait_with_output().unwrap().assert_success();
    }
    assert_eq!(node.starts(), 3, "one restart per handler");
    let info = |handler: &str| {
        let out = node.crictl(&["info"]).assert_success();
        let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        info.pointer(&format!("/config/containerd/runtimes/{handler}")).cloned()
    };
    assert!(info(HANDLER).is_some() && info("fast").is_some());

    let out = run(with_handler("uninstall", "fast")).assert_success();
    assert!(out.stdout_text().contains("kept, other runtime handlers use it"), "{}", out.stdout_text());
    assert!(node.installed_shim().exists());
    assert!(info(HANDLER).is_some() && info("fast").is_none());

    run(node.installer("uninstall")).assert_success();
    assert!(!node.installed_shim().exists(), "the last handler takes the shim along");
}

/// After install, CRI starts pods on the handler with the real shim: a host-network pod
/// sandbox (no CNI) becomes ready, held by the installed shim binary, which is not on
/// containerd's PATH; stopping and removing the pod ends the shim.
fn cri_runs_a_pod_on_the_installed_shim(version: Version) {
    let Some(node) = TestNode::configure(version).with_real_shim().start() else { return };
    assert_eq!(shim_on_containerd_path(), None, "containerd could find a shim on its PATH: the test proves nothing");
    run(node.installer("install")).assert_success();
    node.import_sandbox_image();

    let out = node.run_pod("hello");
    assert!(out.status.success(), "crictl runp failed: {}", out.stderr_text());
    let pod = out.stdout_text().trim().to_string();
    let inspect = node.crictl_with_timeout("30s", &["inspectp", &pod]).assert_success();
    let inspect: serde_json::Value = serde_json::from_slice(&inspect.stdout).expect("inspectp prints JSON");
    assert_eq!(inspect["status"]["state"], "SANDBOX_READY", "{inspect}");
    assert_eq!(inspect["status"]["runtimeHandler"], HANDLER, "{inspect}");
    assert!(!node.shim_pids().is_empty(), "no process runs {}", node.installed_shim().display());

    node.crictl_with_timeout("60s", &["stopp", &pod]).assert_success();
    node.crictl_with_timeout("60s", &["rmp", &pod]).assert_success();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !node.shim_pids().is_empty() {
        assert!(Instant::now() < deadline, "the shim still runs 10s after rmp: pids {:?}", node.shim_pids());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn cri_runs_a_pod_on_the_installed_shim_on_containerd_1_6() {
    cri_runs_a_pod_on_the_installed_shim(Version::Debian);
}

#[test]
fn cri_runs_a_pod_on_the_installed_shim_on_containerd_1_7() {
    cri_runs_a_pod_on_the_installed_shim(Version::Containerd17);
}

#[test]
fn cri_runs_a_pod_on_the_installed_shim_on_containerd_2() {
    cri_runs_a_pod_on_the_installed_shim(Version::Containerd2);
}

/// Why version 2 drop-ins name the shim by its path as the runtime type: with the installed
/// drop-in rewritten to `runtime_type = "io.containerd.spore.v1"` plus `runtime_path`, as
/// version 3 ones have it, containerd 1.6 looks the shim up on its PATH (containerd#8207) and
/// fails to start the pod; 1.7 runs the shim at `runtime_path`.
fn runtime_path_in_a_version_2_drop_in(version: Version, honoured: bool) {
    let Some(node) = TestNode::configure(version).with_real_shim().start() else { return };
    assert_eq!(shim_on_containerd_path(), None, "containerd could find a shim on its PATH: the test proves nothing");
    let mut install = node.installer("install");
    install.arg("--restart=false");
    run(install).assert_success();
    let shim = node.installed_shim().display().to_string();
    let dropin = std::fs::read_to_string(node.dropin()).unwrap();
    let by_path = format!("runtime_type = \"{shim}\"\n");
    assert!(dropin.contains(&by_path), "{dropin}");
    let by_name = format!("runtime_type = \"io.containerd.spore.v1\"\nruntime_path = \"{shim}\"\n");
    std::fs::write(node.dropin(), dropin.replace(&by_path, &by_name)).unwrap();
    node.restart();
    let handler = node.handler_info().expect("crictl info lists the handler");
    assert_eq!((&handler["runtimeType"], &handler["runtimePath"]), (&"io.containerd.spore.v1".into(), &shim.into()));
    node.import_sandbox_image();

    let out = node.run_pod("by-name");
    if honoured {
        assert!(out.status.success(), "crictl runp failed: {}", out.stderr_text());
        assert!(!node.shim_pids().is_empty(), "no process runs {}", node.installed_shim().display());
        let pod = out.stdout_text().trim().to_string();
        node.crictl_with_timeout("60s", &["stopp", &pod]).assert_success();
        node.crictl_with_timeout("60s", &["rmp", &pod]).assert_success();
    } else {
        // crictl quotes containerd's error: `binary not installed \"containerd-shim-spore-v1\"`.
        let message = out.stderr_text();
        assert!(!out.status.success() && message.contains("binary not installed"), "{message}");
        assert!(message.contains("containerd-shim-spore-v1"), "{message}");
        assert!(node.shim_pids().is_empty());
    }
}

#[test]
fn runtime_path_is_ignored_by_containerd_1_6() {
    runtime_path_in_a_version_2_drop_in(Version::Debian, false);
}

#[test]
fn runtime_path_is_honoured_by_containerd_1_7() {
    runtime_path_in_a_version_2_drop_in(Version::Containerd17, true);
}
