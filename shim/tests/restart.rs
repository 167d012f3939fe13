//! containerd restarts (every install, upgrade and crash does one) leave Wasm pods alone,
//! as they leave runc containers: the new containerd finds each running shim again, the
//! pod keeps its sandbox, IP and container and keeps serving throughout, its logs still
//! reach the log file, and stopping it afterwards leaves nothing behind. A shim containerd
//! cannot find (one that recorded no address) is stopped, not leaked. Needs root, `make
//! deps` and `make tools` (crictl, containerd 2.x).

mod common;
mod harness;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use harness::cri::{Cri, answers_200, get, http_container, wait_for};
use harness::{Containerd, ImageBuilder, OutputExt, SPORE, Version};

fn inspect(cri: &Cri, what: &str, id: &str) -> serde_json::Value {
    serde_json::from_str(&cri.crictl_ok(&[what, id])).expect("crictl prints JSON")
}

/// Requests to the pod in a loop until stopped; counts the ones that failed.
struct Load {
    stop: Arc<AtomicBool>,
    failed: Arc<AtomicUsize>,
    sent: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(ip: String, port: u16) -> Self {
        let (stop, failed, sent) =
            (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (s, f, n) = (stop.clone(), failed.clone(), sent.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                n.fetch_add(1, Ordering::Relaxed);
                if !answers_200(&ip, port) {
                    f.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Self { stop, failed, sent, thread: Some(thread) }
    }

    /// Stops the load; returns (requests sent, requests failed).
    fn finish(mut self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        (self.sent.load(Ordering::Relaxed), self.failed.load(Ordering::Relaxed))
    }
}

fn a_wasm_pod_survives_a_containerd_restart(version: Version) {
    let mut cri = Cri::start_on(version);
    let pod = cri.run_pod("survivor");
    let container = cri.start_container(&pod, http_container("http", "localhost/spore/http:1", 8080));
    let ip = cri.pod_ip(&pod.0);
    assert!(wait_for(&format!("http://{ip}:8080/")).is_some(), "the pod does not answer\n{}", cri.ctrd.log());
    let shims_before = cri.ctrd.leftover_processes();
    assert_eq!(shims_before.len(), 1, "{shims_before:?}");

    let load = Load::start(ip.clone(), 8080);
    std::thread::sleep(Duration::from_millis(300));
    cri.ctrd.restart();
    // containerd answers before its CRI plugin has finished recovering the pods.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !cri.crictl(&["pods"]).status.success() {
        assert!(std::time::Instant::now() < deadline, "CRI not serving 20 s after the restart");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    let (sent, failed) = load.finish();
    assert!(sent > 20, "only {sent} requests sent");
    assert_eq!(failed, 0, "{failed} of {sent} requests failed across the restart");

    let log = cri.ctrd.log();
    assert!(!log.contains("cleaning up dead shim"), "containerd took the shim for dead:\n{log}");
    assert_eq!(cri.ctrd.leftover_processes(), shims_before, "the same shim serves the pod");
    let sandbox = inspect(&cri, "inspectp", &pod.0);
    assert_eq!(sandbox["status"]["state"], "SANDBOX_READY", "{sandbox}");
    assert_eq!(sandbox["status"]["network"]["ip"], ip.as_str(), "the pod keeps its IP");
    let status = &inspect(&cri, "inspect", &container)["status"];
    assert_eq!(status["state"], "CONTAINER_RUNNING", "{status}");

    // The new containerd reads the guest's output again, and gets its exit when stopped.
    assert!(get(&format!("http://{ip}:8080/trap")).is_some());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let logs = cri.crictl(&["logs", &container]);
        if logs.stderr_text().contains("trap requested") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no log after the restart: {}", logs.stderr_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    cri.remove_pod(&pod.0);
    cri.ctrd.assert_clean();
}

#[test]
fn a_wasm_pod_survives_a_restart_of_containerd_1_6() {
    a_wasm_pod_survives_a_containerd_restart(Version::Debian);
}

#[test]
fn a_wasm_pod_survives_a_restart_of_containerd_2() {
    a_wasm_pod_survives_a_containerd_restart(Version::V2);
}

/// Side by side with runc on the same containerd: both tasks RUNNING with their PIDs.
#[test]
fn tasks_keep_running_across_a_restart_like_runc_tasks() {
    let mut ctrd = Containerd::start();
    let probe = ImageBuilder::new("localhost/spore/probe:1")
        .file("/probe.wasm", common::guest_bytes("probe-c.wasm"), 0o755)
        .entrypoint(["/probe.wasm"]);
    let busybox = ImageBuilder::new("localhost/spore/busybox:1")
        .file("/bin/busybox", std::fs::read("/bin/busybox").expect("busybox-static"), 0o755)
        .entrypoint(["/bin/busybox"]);
    ctrd.import_image(&probe);
    ctrd.import_image(&busybox);
    ctrd.start_detached(probe.name(), "wasm", SPORE, &["/probe.wasm", "loop"]);
    ctrd.start_detached(busybox.name(), "native", harness::RUNC, &["/bin/busybox", "sleep", "600"]);
    let sorted = |mut tasks: Vec<harness::Task>| {
        tasks.sort_by(|a, b| a.id.cmp(&b.id));
        tasks
    };
    let before = sorted(ctrd.tasks());

    ctrd.restart();
    assert_eq!(sorted(ctrd.tasks()), before, "containerd's log:\n{}", ctrd.log());
    assert_eq!(ctrd.stop_and_remove("wasm", "SIGKILL"), 137);
    assert_eq!(ctrd.stop_and_remove("native", "SIGKILL"), 137);
    ctrd.assert_clean();
}

/// A shim started before shims recorded their address (an upgrade from an older Spore):
/// containerd cannot find it, cleans the task up, and the shim must not live on.
#[test]
fn a_shim_containerd_cannot_find_is_stopped_not_leaked() {
    let mut ctrd = Containerd::start();
    let probe = ImageBuilder::new("localhost/spore/probe:1")
        .file("/probe.wasm", common::guest_bytes("probe-c.wasm"), 0o755)
        .entrypoint(["/probe.wasm"]);
    ctrd.import_image(&probe);
    ctrd.start_detached(probe.name(), "lost", SPORE, &["/probe.wasm", "loop"]);
    std::fs::remove_file(ctrd.bundle("lost").join("address")).expect("the shim recorded its address");

    ctrd.restart();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while ctrd.task("lost").is_some_and(|t| t.status == "RUNNING") {
        assert!(std::time::Instant::now() < deadline, "the lost task still runs\n{}", ctrd.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    if ctrd.task("lost").is_some() {
        ctrd.delete_task("lost");
    }
    ctrd.delete_container("lost");
    ctrd.assert_clean();
}
