//! The CRI path as kubelet drives it, with crictl against a real containerd 1.6 with the
//! `spore` runtime handler: a pod sandbox on a CNI bridge, a Wasm HTTP container in it that
//! answers on the pod IP (and serves its metrics on the annotated port), its logs, command
//! containers' exit codes, and a clean stop and removal. The HTTP guest's pod announces
//! itself, as it does to Spore's activator. Needs root, `make deps` (containerd,
//! CNI plugins) and `make tools` (crictl).

mod common;
mod harness;

use harness::OutputExt;
use harness::cri::{AnnounceListener, Cri, get, http_container, wait_for};

const HTTP_IMAGE: &str = "localhost/spore/http:1";

#[test]
fn a_wasm_pod_serves_http_on_its_pod_ip() {
    let cri = Cri::start();
    let pod = cri.run_pod("hello");
    let activator = AnnounceListener::start();
    let mut config = http_container("http", HTTP_IMAGE, 8080);
    config["annotations"]["spore.dev/metrics-port"] = "9464".into();
    config["annotations"]["spore.dev/activator-announce"] = activator.address(&cri).into();
    config["annotations"]["spore.dev/announce-token"] = "app-uid".into();
    let container_id = cri.start_container(&pod, config);

    let ip = cri.pod_ip(&pod.0);
    assert!(ip.starts_with("198.18.1."), "pod IP {ip} outside {}", cri.subnet());
    // The shim announced the guest from the pod's network namespace: from the pod IP, with
    // the pod's metadata that containerd 1.6 put on the container's spec.
    let (peer, announcement) = activator.received();
    assert_eq!(peer.to_string(), ip, "the announcement comes from the pod IP");
    assert_eq!(
        announcement,
        serde_json::json!({"namespace": "default", "pod": "hello", "uid": "uid-hello", "port": 8080, "token": "app-uid"})
    );
    let url = format!("http://{ip}:8080/");
    let body = wait_for(&url).unwrap_or_else(|| panic!("no answer from {url}\n{}", cri.ctrd.log()));
    assert_eq!(body, "hello from spore\n");

    // The guest's stderr reaches the container log, as `kubectl logs` reads it.
    assert!(get(&format!("http://{ip}:8080/trap")).is_some());
    let logs = cri.crictl(&["logs", &container_id]);
    assert!(logs.stderr_text().contains("trap requested"), "logs: {}{}", logs.stdout_text(), logs.stderr_text());

    // The shim serves the pod's metrics on the annotated port, as Prometheus scrapes them.
    let metrics = get(&format!("http://{ip}:9464/metrics")).unwrap_or_default();
    for series in ["spore_http_requests_total{code=\"200\"} ", "spore_http_requests_total{code=\"500\"} 1"] {
        assert!(metrics.contains(series), "{series} missing from the pod's metrics:\n{metrics}");
    }

    // A second Wasm container in the pod joins the same shim process.
    cri.start_container(&pod, http_container("echo", HTTP_IMAGE, 8081));
    assert!(wait_for(&format!("http://{ip}:8081/")).is_some(), "the second container does not answer");
    assert_eq!(cri.ctrd.leftover_processes().len(), 1, "one shim per pod: {:?}", cri.ctrd.leftover_processes());

    cri.remove_pod(&pod.0);
    cri.ctrd.assert_clean();
}

#[test]
fn command_containers_report_their_exit_codes_and_output() {
    let cri = Cri::start();
    let pod = cri.run_pod("jobs");
    // Commands ignore the metrics port: nothing to count, and they start all the same.
    let limit = serde_json::json!({"spore.dev/limits": "{\"memory\": \"8Mi\"}", "spore.dev/metrics-port": "9464"});
    for (name, args, code, reason) in [
        ("ok", ["echo", "done"], 0, "Completed"),
        ("fails", ["exit", "3"], 3, "Error"),
        // Past limits.memory the guest's allocation fails (it exits 2): reported as OOMKilled.
        ("oom", ["alloc", "64"], 2, "OOMKilled"),
    ] {
        let config = serde_json::json!({
            "metadata": {"name": name}, "image": {"image": "localhost/spore/probe:1"}, "args": args,
            "log_path": format!("{name}.log"), "annotations": limit, "linux": {}
        });
        let id = cri.start_container(&pod, config);
        let exited = cri.wait_exited(&id);
        assert_eq!(exited, (code, reason.to_string()), "{name}\n{}", cri.ctrd.log());
        if code == 0 {
            assert_eq!(cri.crictl(&["logs", &id]).stdout_text(), "done\n");
        }
    }
    cri.remove_pod(&pod.0);
    cri.ctrd.assert_clean();
}

/// kubelet mounts a file at /dev/termination-log and shows its text as the container's
/// termination message (`kubectl describe pod`, and the WasmApp's status): a trap's report.
#[test]
fn a_trapping_command_leaves_its_report_as_the_termination_message() {
    let cri = Cri::start();
    let pod = cri.run_pod("trapper");
    let (ok_log, trap_log) = (cri.ctrd.dir().join("ok-termination-log"), cri.ctrd.dir().join("trap-termination-log"));
    for (name, args, log) in [("ok", vec!["echo", "fine"], &ok_log), ("trap", vec!["trap"], &trap_log)] {
        std::fs::write(log, "").unwrap();
        let config = serde_json::json!({
            "metadata": {"name": name}, "image": {"image": "localhost/spore/probe:1"}, "args": args,
            "log_path": format!("{name}.log"), "linux": {},
            "mounts": [{"container_path": "/dev/termination-log", "host_path": log.display().to_string()}]
        });
        let id = cri.start_container(&pod, config);
        cri.wait_exited(&id);
    }
    assert_eq!(std::fs::read_to_string(&ok_log).unwrap(), "", "a clean exit leaves no message");
    let report = std::fs::read_to_string(&trap_log).unwrap();
    assert!(report.starts_with("guest trapped: ") && report.contains("\n    at "), "{report}");
    cri.remove_pod(&pod.0);
    cri.ctrd.assert_clean();
}
