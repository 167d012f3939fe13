//! Nothing lost under faults and rollouts, on the real cluster: node-wasm's containerd
//! restarted under load leaves the Wasm pods running (same pods, sandboxes, shims, no
//! restarts, no failed request), so does a kubelet restart, a SIGKILLed shim is replaced by
//! kubelet without leaks, an apiserver restart is followed by convergence and no reconcile
//! storm, a rolling update or a scale-down under keep-alive load (wrk) fails no request, and
//! a shim upgrade through the WasmRuntime leaves running pods on their shim and rolls over
//! the Wasm nodes one at a time, and a lost Wasm node's pods move to the other one. A
//! composed pod survives a containerd restart and, its shim killed, is linked again.
//! Run by `make e2e` (Spore is installed the way operator.rs installs it).

use std::process::Command;
use std::time::Duration;

use spore_e2e::load::{Load, finish_wrk, start_wrk};
use spore_e2e::*;

/// A hello app with `replicas` pods serving on 8080; its ClusterIP once Ready.
fn hello(ns: &Namespace, name: &str, replicas: u32, greeting: &str) -> String {
    apply(&hello_app(ns, name, replicas, greeting, ""));
    let ready = ns.kubectl(&["wait", "--for=condition=Ready", &format!("wasmapp/{name}"), "--timeout=120s"]);
    assert!(ready.status.success(), "{name} not Ready:\n{}", ns.describe(&["wasmapp", name]));
    let ip = ns.jsonpath(&["get", &format!("service/{name}")], "{.spec.clusterIP}");
    wait_until("the Service answers", Duration::from_secs(30), || curl(&format!("http://{ip}:8080/")).is_some());
    wait_for_precompiles(ns, name);
    ip
}

/// `name uid restarts podIP` of each pod of the app, sorted: what must not change.
fn pods(ns: &Namespace, app: &str) -> Vec<String> {
    let rows = ns.jsonpath(
        &["get", "pods", "-l", &format!("spore.dev/app={app}")],
        "{range .items[*]}{.metadata.name} {.metadata.uid} {.status.containerStatuses[0].restartCount} {.status.podIP}{\"\\n\"}{end}",
    );
    let mut rows: Vec<String> = rows.lines().map(str::to_string).collect();
    rows.sort();
    rows
}

fn assert_nothing_lost(load: &Load, what: &str) {
    assert_eq!(load.failed(), 0, "{what}: {load:?}");
}

fn containerd_pid(node: &str) -> Option<u32> {
    let config = state_dir().join(node).join("containerd/config.toml");
    let out = Command::new("pgrep").args(["-x", "containerd", "-a"]).output().expect("pgrep runs");
    text(&out.stdout)
        .lines()
        .find(|l| l.contains(&config.display().to_string()))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
}

#[test]
fn containerd_restarted_under_load_leaves_the_wasm_pods_running() {
    ensure_spore_installed();
    let ns = Namespace::new("e2e-ctrd-restart");
    let ip = hello(&ns, "steady", 2, "steady");
    let before = pods(&ns, "steady");
    let shims = spore_shims();
    let task_ids = task_ids(&ns, "steady");
    let wrk = start_wrk(&format!("http://{ip}:8080/"), 20);
    std::thread::sleep(Duration::from_secs(3));

    // Every Wasm node's containerd, wherever the pods landed.
    let log_of = |node: &str| state_dir().join(format!("logs/containerd-{node}.log"));
    let log_sizes: Vec<usize> =
        WASM_NODES.iter().map(|n| std::fs::metadata(log_of(n)).map_or(0, |m| m.len() as usize)).collect();
    for node in WASM_NODES {
        restart_containerd(node);
    }
    let load = finish_wrk(wrk);
    assert_nothing_lost(&load, "requests across the containerd restart");

    // kubelet's next sync sees the same pods, running, never restarted.
    std::thread::sleep(Duration::from_secs(15));
    assert_eq!(pods(&ns, "steady"), before, "pods changed after the restart");
    assert_eq!(spore_shims(), shims, "the same shims serve the pods, none left over");
    assert_eq!(
        ns.jsonpath(&["get", "wasmapp", "steady"], "{.status.readyReplicas}"),
        "2",
        "{}",
        ns.describe(&["pods"])
    );
    // containerd 1.6 logs "shim disconnected" for every task that ends, anywhere on the node
    // (another pod's container restarting): only this app's tasks must not appear.
    for (node, size) in WASM_NODES.iter().zip(log_sizes) {
        let log = std::fs::read(log_of(node)).unwrap_or_default();
        let since_restart = String::from_utf8_lossy(&log[size.min(log.len())..]);
        let dropped: Vec<&str> = since_restart
            .lines()
            .filter(|l| l.contains("shim disconnected") && task_ids.iter().any(|id| l.contains(id.as_str())))
            .collect();
        assert!(dropped.is_empty(), "{node}'s containerd took a Spore shim for dead: {dropped:#?}");
    }
}

/// Stops `node`'s containerd and waits for its supervisor to start it again, as systemd
/// does after a crash.
fn restart_containerd(node: &str) {
    let old = containerd_pid(node).unwrap_or_else(|| panic!("{node}'s containerd runs"));
    Command::new("kill").args(["-TERM", &old.to_string()]).status().unwrap();
    wait_until(&format!("{node}'s containerd is back"), Duration::from_secs(30), || {
        containerd_pid(node).is_some_and(|pid| pid != old)
    });
}

/// Each Spore shim with the bundle it runs in (its pod sandbox's) and that bundle's OCI
/// spec, which names the pod and its netns.
fn shim_sandboxes() -> Vec<(u32, std::path::PathBuf, serde_json::Value)> {
    spore_shims()
        .into_iter()
        .filter_map(|pid| {
            let bundle = std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?;
            let spec = serde_json::from_str(&std::fs::read_to_string(bundle.join("config.json")).ok()?).ok()?;
            Some((pid, bundle, spec))
        })
        .collect()
}

/// containerd task IDs of the app's pods: each container's and each pod sandbox's (the
/// bundle a Spore shim runs in is named after its sandbox).
fn task_ids(ns: &Namespace, app: &str) -> Vec<String> {
    let selector = format!("spore.dev/app={app}");
    let containers =
        ns.jsonpath(&["get", "pods", "-l", &selector], "{.items[*].status.containerStatuses[*].containerID}");
    let uids = ns.jsonpath(&["get", "pods", "-l", &selector], "{.items[*].metadata.uid}");
    let uids: Vec<&str> = uids.split_whitespace().collect();
    let sandboxes = shim_sandboxes().into_iter().filter_map(|(_, bundle, spec)| {
        let uid = spec["annotations"]["io.kubernetes.cri.sandbox-uid"].as_str()?;
        uids.contains(&uid).then(|| bundle.file_name()?.to_str().map(str::to_string))?
    });
    let ids: Vec<String> = containers
        .split_whitespace()
        .filter_map(|id| id.strip_prefix("containerd://").map(str::to_string))
        .chain(sandboxes)
        .collect();
    assert!(ids.len() >= uids.len() * 2, "a container and a sandbox per pod of {app}: {ids:?}");
    ids
}

/// The Spore shim of the pod with `uid`, with its bundle and the bundle's OCI spec.
fn shim_of_pod(uid: &str) -> (u32, std::path::PathBuf, serde_json::Value) {
    let shims = shim_sandboxes();
    let pids: Vec<u32> = shims.iter().map(|(pid, _, _)| *pid).collect();
    shims
        .into_iter()
        .find(|(_, _, spec)| spec["annotations"]["io.kubernetes.cri.sandbox-uid"] == uid)
        .unwrap_or_else(|| panic!("no shim for pod {uid} among {pids:?}"))
}

#[test]
fn a_killed_shim_is_replaced_by_kubelet_and_leaves_nothing_behind() {
    ensure_spore_installed();
    let ns = Namespace::new("e2e-shim-kill");
    let ip = hello(&ns, "victim", 1, "victim");
    let shims_before = spore_shims();
    let uid = ns.jsonpath(&["get", "pods", "-l", "spore.dev/app=victim"], "{.items[0].metadata.uid}");
    let (shim, bundle, spec) = shim_of_pod(&uid);
    let netns = spec["linux"]["namespaces"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["type"] == "network")?["path"].as_str().map(str::to_string))
        .unwrap_or_default();
    Command::new("kill").args(["-KILL", &shim.to_string()]).status().unwrap();

    wait_until("the pod serves again", Duration::from_secs(90), || {
        spore_shims().len() == shims_before.len() && curl(&format!("http://{ip}:8080/")).is_some()
    });
    assert!(has_exited(shim), "the killed shim lingers");
    wait_until("the dead sandbox's mounts and netns are gone", Duration::from_secs(30), || {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        !mounts.lines().any(|l| l.contains(&bundle.display().to_string()) || (!netns.is_empty() && l.contains(&netns)))
    });
}

#[test]
fn a_rolling_update_and_a_scale_down_under_load_fail_no_request() {
    ensure_spore_installed();
    let ns = Namespace::new("e2e-rollout");
    let ip = hello(&ns, "rolling", 2, "one");
    let url = format!("http://{ip}:8080/");

    let wrk = start_wrk(&url, 40);
    std::thread::sleep(Duration::from_secs(2));
    let patch = r#"{"spec":{"env":[{"name":"GREETING","value":"two"}]}}"#;
    ns.kubectl_ok(&["patch", "wasmapp", "rolling", "--type=merge", "-p", patch]);
    let rolled = ns.kubectl(&["rollout", "status", "deployment/rolling", "--timeout=120s"]);
    assert!(rolled.status.success(), "rollout: {}", text(&rolled.stderr));
    // Terminating pods drain for the shim's delay (5 s) after SIGTERM: keep loading past it.
    std::thread::sleep(Duration::from_secs(8));
    ns.kubectl_ok(&["scale", "wasmapp/rolling", "--replicas=1"]);
    wait_until("one pod left", Duration::from_secs(60), || pods(&ns, "rolling").len() == 1);
    let load = finish_wrk(wrk);
    assert_nothing_lost(&load, "requests during the rollout and the scale-down");
    eprintln!("rollout and scale-down under load: {load:?}");
}

/// Whether `node`'s installed shim is the upgraded binary of node-installer:2.
fn installed_shim_is_upgraded(node: &str) -> bool {
    let shim = std::fs::read(install_dir(node).join("containerd-shim-spore-v1")).unwrap_or_default();
    shim.ends_with(UPGRADED_SHIM_MARKER)
}

/// Wasm nodes whose installer pod is Ready (installed and holding).
fn nodes_with_a_ready_installer() -> usize {
    let rows = kubectl_ok(&[
        "-n",
        SPORE_NAMESPACE,
        "get",
        "pods",
        "-l",
        "spore.dev/installer=install",
        "-o",
        r#"jsonpath={range .items[*]}{.spec.nodeName} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}"#,
    ]);
    let ready: std::collections::BTreeSet<&str> =
        rows.lines().filter_map(|l| l.strip_suffix(" True")).filter(|n| WASM_NODES.contains(n)).collect();
    ready.len()
}

/// `helm upgrade` to the node installer image `tag`, then waits until every Wasm node runs
/// the shim it carries and the WasmRuntime is Ready again. Returns the fewest Wasm nodes
/// seen with a Ready installer meanwhile (the rollout's `maxUnavailable: 1` at work).
fn upgrade_installer(tag: &str) -> usize {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut fewest = WASM_NODES.len();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                fewest = fewest.min(nodes_with_a_ready_installer());
                std::thread::sleep(Duration::from_millis(200));
            }
            fewest
        })
    };
    let chart = repo_root().join("helm/spore");
    let set = format!("image.installer.tag={tag}");
    let out = helm(&[
        "upgrade",
        RELEASE,
        chart.to_str().expect("utf-8 path"),
        "-n",
        SPORE_NAMESPACE,
        "--reuse-values",
        "--set-string",
        &set,
        "--wait",
        "--timeout=180s",
    ]);
    assert!(out.status.success(), "helm upgrade failed:\n{}{}", text(&out.stdout), text(&out.stderr));
    wait_until(&format!("the Wasm nodes have the shim of node-installer:{tag}"), Duration::from_secs(240), || {
        WASM_NODES.iter().all(|node| installed_shim_is_upgraded(node) == (tag == "2"))
            && kubectl_ok(&[
                "-n",
                SPORE_NAMESPACE,
                "get",
                "pods",
                "--field-selector=status.phase=Running",
                "-o",
                "jsonpath={.items[*].spec.containers[*].image}",
            ])
            .split_whitespace()
            .filter(|image| image.contains("/node-installer:"))
            .all(|image| image.ends_with(&format!(":{tag}")))
    });
    let ready = kubectl(&["wait", "--for=condition=Ready", "wasmruntime/spore", "--timeout=180s"]);
    assert!(ready.status.success(), "{}", text(&kubectl(&["describe", "wasmruntime", "spore"]).stdout));
    wait_until("every Wasm node's installer is Ready", Duration::from_secs(60), || {
        nodes_with_a_ready_installer() == WASM_NODES.len()
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    watcher.join().expect("the rollout watcher")
}

/// Which file a process runs: its path, " (deleted)" once the file was replaced.
fn executable(pid: u32) -> String {
    std::fs::read_link(format!("/proc/{pid}/exe")).map(|p| p.display().to_string()).unwrap_or_default()
}

#[test]
fn a_shim_upgrade_keeps_running_pods_on_their_shim_and_gives_new_pods_the_new_one() {
    ensure_spore_installed();
    let ns = Namespace::new("e2e-shim-upgrade");
    let ip = hello(&ns, "lasting", 2, "lasting");
    let before = pods(&ns, "lasting");
    let old_shims = spore_shims();
    let wrk = start_wrk(&format!("http://{ip}:8080/"), 75);
    std::thread::sleep(Duration::from_secs(2));

    // A platform team upgrades Spore: the WasmRuntime's image changes, the installer
    // replaces the shim binary (a rename) and restarts containerd, one node at a time.
    let fewest_ready = upgrade_installer("2");
    assert_eq!(fewest_ready, WASM_NODES.len() - 1, "maxUnavailable: 1 over the Wasm nodes");
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(pods(&ns, "lasting"), before, "running pods were restarted by the upgrade");
    let running = spore_shims();
    assert!(running.iter().all(|pid| old_shims.contains(pid)), "shims were replaced: {old_shims:?} -> {running:?}");
    for pid in running {
        assert!(executable(pid).ends_with(" (deleted)"), "shim {pid} does not run the old binary: {}", executable(pid));
    }

    ns.kubectl_ok(&["scale", "wasmapp/lasting", "--replicas=3"]);
    wait_until("the third pod is Ready", Duration::from_secs(90), || {
        ns.jsonpath(&["get", "wasmapp", "lasting"], "{.status.readyReplicas}") == "3"
    });
    let new_shims: Vec<u32> = spore_shims().into_iter().filter(|pid| !old_shims.contains(pid)).collect();
    assert_eq!(new_shims.len(), 1, "one new shim for the new pod");
    let installed: Vec<String> =
        WASM_NODES.iter().map(|n| install_dir(n).join("containerd-shim-spore-v1").display().to_string()).collect();
    assert!(installed.contains(&executable(new_shims[0])), "the new pod's shim is not the upgraded binary");
    let load = finish_wrk(wrk);
    assert_nothing_lost(&load, "requests across the shim upgrade");

    // Back to the shim the other tests expect (a downgrade is an upgrade too).
    ns.kubectl_ok(&["delete", "wasmapp", "lasting", "--wait"]);
    assert_eq!(upgrade_installer("1"), WASM_NODES.len() - 1, "maxUnavailable: 1 on the way back");
}

/// Restarts a control-plane or node component (`kubelet-node-wasm`, `kube-apiserver`; they
/// have no supervisor here) with the command line cluster.sh gave it.
fn restart_component(name: &str) {
    let command = stop_component(name);
    start_component(name, &command);
}

/// Stops a component (TERM, then KILL after a minute, as systemd would); its command line.
fn stop_component(name: &str) -> Vec<String> {
    let pidfile = state_dir().join("pids").join(name);
    let pid: u32 = std::fs::read_to_string(&pidfile).expect("the component's pid file").trim().parse().expect("a pid");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("the component runs");
    let args: Vec<String> =
        cmdline.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    // The apiserver drains its watches for up to its request timeout (cluster.sh: 15 s).
    let gone = || has_exited(pid);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !gone() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    if !gone() {
        Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap();
        wait_until(&format!("the old {name} exits"), Duration::from_secs(10), gone);
    }
    args
}

/// Starts a component with `command`, recording its PID where `cluster.sh down` looks.
// Not waited for: the component outlives the test; `cluster.sh down` stops it.
#[allow(clippy::zombie_processes)]
fn start_component(name: &str, command: &[String]) {
    let log = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(state_dir().join("logs").join(format!("{name}.log")))
        .expect("the component's log");
    let child = Command::new("setsid")
        .args(command)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("{name} does not start again: {e}"));
    std::fs::write(state_dir().join("pids").join(name), child.id().to_string()).unwrap();
}

/// Starts the component again when dropped, so a failing test leaves the cluster whole.
struct Restart {
    name: String,
    command: Vec<String>,
}

impl Drop for Restart {
    fn drop(&mut self) {
        start_component(&self.name, &self.command);
    }
}

#[test]
fn an_apiserver_restart_is_survived_without_a_reconcile_storm() {
    ensure_spore_installed();
    let ns = Namespace::new("e2e-apiserver-restart");
    hello(&ns, "patient", 1, "patient");
    restart_component("kube-apiserver");
    wait_until("the apiserver answers again", Duration::from_secs(60), || {
        kubectl(&["get", "--raw", "/readyz"]).status.success()
    });
    // The operator reconnects its watches and acts on a change made after the restart.
    ns.kubectl_ok(&["scale", "wasmapp/patient", "--replicas=2"]);
    // The Deployment's spec is the operator's work; its pods' readiness after an apiserver
    // restart is the controller-manager's and kubelet's, whose watches come back later.
    wait_until("the scale reaches the Deployment", Duration::from_secs(90), || {
        ns.jsonpath(&["get", "deployment", "patient"], "{.spec.replicas}") == "2"
    });
    // Measure only once the app has settled: the second pod's start (scheduled, running,
    // ready) changes the Deployment's status several times, each a legitimate reconcile.
    wait_until("the second pod is ready", Duration::from_secs(120), || {
        ns.jsonpath(&["get", "deployment", "patient"], "{.status.readyReplicas}") == "2"
    });
    // Idle again: no hot loop. A settled app is requeued every 5 minutes; watch events of
    // the few objects here account for a handful more.
    let before = operator_reconciles();
    std::thread::sleep(Duration::from_secs(30));
    let during = operator_reconciles() - before;
    assert!(during <= 20, "{during} reconciles in 30 s of idling after the apiserver restart");
    eprintln!("reconciles in 30 s idle after an apiserver restart: {during}");
}

#[test]
fn a_kubelet_restart_leaves_the_wasm_pods_serving() {
    ensure_spore_installed();
    let ns = Namespace::new("e2e-kubelet-restart");
    let ip = hello(&ns, "calm", 2, "calm");
    let before = pods(&ns, "calm");
    let shims = spore_shims();
    let wrk = start_wrk(&format!("http://{ip}:8080/"), 20);
    std::thread::sleep(Duration::from_secs(2));
    for node in WASM_NODES {
        restart_component(&format!("kubelet-{node}"));
        let ready = kubectl(&["wait", "--for=condition=Ready", &format!("node/{node}"), "--timeout=60s"]);
        assert!(ready.status.success(), "{node} not Ready after its kubelet restarted");
    }
    let load = finish_wrk(wrk);
    assert_nothing_lost(&load, "requests across the kubelet restart");
    std::thread::sleep(Duration::from_secs(10));
    assert_eq!(pods(&ns, "calm"), before, "pods changed after the kubelet restart");
    assert_eq!(spore_shims(), shims, "the same shims serve the pods");
}

/// Ready pods of `app` per node, sorted: `node name` lines.
fn ready_pods_by_node(ns: &Namespace, app: &str) -> Vec<String> {
    let rows = ns.jsonpath(
        &["get", "pods", "-l", &format!("spore.dev/app={app}")],
        r#"{range .items[*]}{.spec.nodeName} {.metadata.name} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}"#,
    );
    let mut ready: Vec<String> = rows.lines().filter_map(|l| l.strip_suffix(" True")).map(str::to_string).collect();
    ready.sort();
    ready
}

#[test]
fn a_lost_wasm_node_has_its_pods_moved_to_the_other_wasm_node() {
    ensure_spore_installed();
    let ns = Namespace::new("e2e-node-loss");
    let ip = hello(&ns, "mobile", 2, "mobile");
    let lost = pod_nodes(&ns, "spore.dev/app=mobile")[0].clone();
    let other = WASM_NODES.iter().find(|n| **n != lost).expect("two Wasm nodes").to_string();

    // The node's kubelet stops for good (its containerd and pods run on, unreachable).
    let kubelet = format!("kubelet-{lost}");
    let back = Restart { command: stop_component(&kubelet), name: kubelet };
    wait_until(&format!("{lost} is NotReady"), Duration::from_secs(90), || {
        kubectl_ok(&["get", "node", &lost, "-o", r#"jsonpath={.status.conditions[?(@.type=="Ready")].status}"#])
            != "True"
    });
    // Evicted past the pods' not-ready toleration; the Deployment replaces them on the other node.
    wait_until(&format!("two Ready pods on {other}"), Duration::from_secs(180), || {
        let ready = ready_pods_by_node(&ns, "mobile");
        ready.len() == 2 && ready.iter().all(|r| r.starts_with(&format!("{other} ")))
    });
    wait_until("the Service answers from the other node", Duration::from_secs(30), || {
        curl(&format!("http://{ip}:8080/")).is_some()
    });

    // The node comes back: its kubelet stops the evicted pods; nothing of them is left.
    drop(back);
    let ready = kubectl(&["wait", "--for=condition=Ready", &format!("node/{lost}"), "--timeout=90s"]);
    assert!(ready.status.success(), "{lost} not Ready after its kubelet started again");
    wait_until(&format!("the evicted pods are gone from {lost}"), Duration::from_secs(120), || {
        pod_nodes(&ns, "spore.dev/app=mobile").iter().all(|n| *n == other)
            && node_shims(&lost, "containerd-shim-spore-v1").is_empty()
    });
    let runtime = kubectl(&["wait", "--for=condition=Ready", "wasmruntime/spore", "--timeout=120s"]);
    assert!(runtime.status.success(), "{}", text(&kubectl(&["describe", "wasmruntime", "spore"]).stdout));
}

#[test]
fn a_composed_pod_survives_a_containerd_restart_and_is_linked_again_after_its_shim_is_killed() {
    ensure_spore_installed();
    let ns = Namespace::new("e2e-compose-faults");
    ns.kubectl_ok(&["create", "secret", "generic", "polyglot-token", "--from-literal=token=s3cret"]);
    apply(&polyglot_app(&ns));
    let ready = ns.kubectl(&["wait", "--for=condition=Ready", "wasmapp/polyglot", "--timeout=240s"]);
    assert!(ready.status.success(), "not Ready:\n{}", ns.describe(&["pods", "-l", "spore.dev/app=polyglot"]));
    let ip = ns.jsonpath(&["get", "service", "polyglot"], "{.spec.clusterIP}");
    let url = format!("http://{ip}:8080/");
    // The whole chain: the middleware's 401, then the handler's answer through it.
    let serves = || ask(&url, "", None).0 == 401 && ask(&url, "s3cret", None) == (200, "hello from Python\n".into());
    wait_until("the Service answers", Duration::from_secs(60), serves);

    let before = pods(&ns, "polyglot");
    let node = pod_nodes(&ns, "spore.dev/app=polyglot").pop().expect("the pod has a node");
    restart_containerd(&node);
    assert!(serves(), "the composed pod stopped serving across the containerd restart");
    std::thread::sleep(Duration::from_secs(15));
    assert_eq!(pods(&ns, "polyglot"), before, "the composed pod changed after the containerd restart");

    // A new sandbox: its component containers are held again and the app's links them.
    let uid = ns.jsonpath(&["get", "pods", "-l", "spore.dev/app=polyglot"], "{.items[0].metadata.uid}");
    let (shim, _, _) = shim_of_pod(&uid);
    Command::new("kill").args(["-KILL", &shim.to_string()]).status().unwrap();
    wait_until("the composed pod is linked and serves again", Duration::from_secs(180), serves);
    assert!(has_exited(shim), "the killed shim lingers");
}
