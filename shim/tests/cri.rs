//! The CRI path as kubelet drives it, with crictl against a real containerd 1.6 with the
//! `spore` runtime handler: a pod sandbox on a CNI bridge, a Wasm HTTP container in it that
//! answers on the pod IP, its logs, and a clean stop and removal. Needs root, `make deps`
//! (containerd, CNI plugins) and `make tools` (crictl built from the Go module proxy).

mod common;
mod harness;

use harness::OutputExt;
use harness::cri::{Cri, get, wait_for};

#[test]
fn a_wasm_pod_serves_http_on_its_pod_ip() {
    let cri = Cri::start();
    let logs = cri.ctrd.dir().join("logs");
    let pod = cri.write(
        "pod.json",
        serde_json::json!({
            "metadata": {"name": "hello", "namespace": "default", "uid": "uid-hello", "attempt": 1},
            "log_directory": logs.display().to_string(),
            "linux": {}
        }),
    );
    let container = cri.write(
        "container.json",
        serde_json::json!({
            "metadata": {"name": "http"},
            "image": {"image": "localhost/spore/http:1"},
            "log_path": "http.log",
            "annotations": {"spore.dev/capabilities": "{\"network\":{\"inbound\":[{\"name\":\"http\",\"port\":8080}]}}"},
            "linux": {}
        }),
    );
    let pod_id = cri.crictl_ok(&["runp", "--runtime", "spore", &pod]);
    let container_id = cri.crictl_ok(&["create", &pod_id, &container, &pod]);
    cri.crictl_ok(&["start", &container_id]);

    let inspect: serde_json::Value = serde_json::from_str(&cri.crictl_ok(&["inspectp", &pod_id])).unwrap();
    let ip = inspect["status"]["network"]["ip"].as_str().expect("pod IP").to_string();
    assert!(ip.starts_with("198.18.1."), "pod IP {ip} outside {}", cri.subnet());
    let url = format!("http://{ip}:8080/");
    let body = wait_for(&url).unwrap_or_else(|| panic!("no answer from {url}\n{}", cri.ctrd.log()));
    assert_eq!(body, "hello from spore\n");

    // The guest's stderr reaches the container log, as `kubectl logs` reads it.
    assert!(get(&format!("http://{ip}:8080/trap")).is_some());
    let logs = cri.crictl(&["logs", &container_id]);
    assert!(logs.stderr_text().contains("trap requested"), "logs: {}{}", logs.stdout_text(), logs.stderr_text());

    // A second Wasm container in the pod joins the same shim process.
    let second = cri.write(
        "second.json",
        serde_json::json!({
            "metadata": {"name": "echo"},
            "image": {"image": "localhost/spore/http:1"},
            "log_path": "echo.log",
            "annotations": {"spore.dev/capabilities": "{\"network\":{\"inbound\":[{\"name\":\"http\",\"port\":8081}]}}"},
            "linux": {}
        }),
    );
    let second_id = cri.crictl_ok(&["create", &pod_id, &second, &pod]);
    cri.crictl_ok(&["start", &second_id]);
    assert!(wait_for(&format!("http://{ip}:8081/")).is_some(), "the second container does not answer");
    assert_eq!(cri.ctrd.leftover_processes().len(), 1, "one shim per pod: {:?}", cri.ctrd.leftover_processes());

    cri.crictl_ok(&["stopp", &pod_id]);
    cri.crictl_ok(&["rmp", &pod_id]);
    cri.ctrd.assert_clean();
}
