//! The CRI path as kubelet drives it, with crictl against a real containerd 1.6 with the
//! `spore` runtime handler: a pod sandbox on a CNI bridge, a Wasm HTTP container in it that
//! answers on the pod IP, its logs, and a clean stop and removal. Needs root, `make deps`
//! (containerd, CNI plugins) and `make tools` (crictl built from the Go module proxy).

mod common;
mod harness;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use harness::{Containerd, ImageBuilder, OutputExt};

const SUBNET: &str = "198.18.1.0/24";
const BRIDGE: &str = "sporecri0";

fn crictl_path() -> PathBuf {
    std::env::var_os("SPORE_CRICTL").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| "/root".into());
        home.join(".cache/spore-tools/crictl-v1.34.0/crictl")
    })
}

struct Cri {
    ctrd: Containerd,
}

impl Cri {
    fn start() -> Self {
        assert!(crictl_path().exists(), "crictl missing at {}; run `make tools`", crictl_path().display());
        let ctrd = Containerd::configure()
            .with_cri()
            .namespace("k8s.io")
            .config(
                r#"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/spore/pause:1"
  stream_server_port = "0"
[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "{dir}/cni"
"#,
            )
            .file("cni/10-spore.conflist", &conflist())
            .start();
        let pause = ImageBuilder::new("localhost/spore/pause:1")
            .file("/pause", b"unused".to_vec(), 0o755)
            .entrypoint(["/pause"]);
        ctrd.import_image(&pause);
        let http = ImageBuilder::new("localhost/spore/http:1")
            .file("/http.wasm", common::guest_bytes("http.wasm"), 0o644)
            .entrypoint(["/http.wasm"]);
        ctrd.import_image(&http);
        Self { ctrd }
    }

    fn crictl(&self, args: &[&str]) -> Output {
        let endpoint = format!("unix://{}", self.ctrd.address().display());
        Command::new(crictl_path())
            .args(["--runtime-endpoint", &endpoint, "--image-endpoint", &endpoint, "--timeout", "30s"])
            .args(args)
            .output()
            .expect("crictl runs")
    }

    fn crictl_ok(&self, args: &[&str]) -> String {
        let out = self.crictl(args);
        assert!(out.status.success(), "crictl {args:?} failed: {}\n{}", out.stderr_text(), self.ctrd.log());
        out.stdout_text().trim().to_string()
    }

    fn write(&self, name: &str, json: serde_json::Value) -> String {
        let path = self.ctrd.dir().join(name);
        std::fs::write(&path, json.to_string()).unwrap();
        path.display().to_string()
    }
}

fn conflist() -> String {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "spore-test",
        "plugins": [
            {"type": "bridge", "bridge": BRIDGE, "isGateway": true, "ipMasq": false,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": SUBNET}]]}},
            {"type": "loopback"}
        ]
    })
    .to_string()
}

fn get(url: &str) -> Option<String> {
    let out = Command::new("curl").args(["-s", "--max-time", "2", url]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn wait_for(url: &str) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(body) = get(url) {
            return Some(body);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

impl Drop for Cri {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "delete", BRIDGE]).output();
    }
}

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
    assert!(ip.starts_with("198.18.1."), "pod IP {ip} outside {SUBNET}");
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
