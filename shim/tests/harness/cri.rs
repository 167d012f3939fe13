//! A containerd with its CRI plugin, driven with crictl as kubelet would: pods on a CNI
//! bridge in 198.18.1.0/24, the `spore` and `runc` handlers, images imported up front.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{Containerd, ImageBuilder, OutputExt, Version, static_binary};

/// Each containerd version gets its own bridge and subnet, so their tests never clash.
fn network(version: Version) -> (&'static str, &'static str) {
    match version {
        Version::Debian => ("sporecri0", "198.18.1.0/24"),
        Version::V2 => ("sporecri1", "198.18.2.0/24"),
    }
}

const PAUSE: &str = "localhost/spore/pause:1";
/// What Kubernetes' pause does: sleep until told to stop (runc pods need a real one).
const PAUSE_SOURCE: &str = include_str!("../../../tests/native/pause.c");

fn crictl_path() -> PathBuf {
    std::env::var_os("SPORE_CRICTL").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| "/root".into());
        home.join(".cache/spore-tools/crictl-v1.34.0/crictl")
    })
}

pub struct Cri {
    pub ctrd: Containerd,
    bridge: &'static str,
    /// One CRI fixture at a time per test binary: they share the bridge and its subnet.
    _exclusive: MutexGuard<'static, ()>,
}

static BRIDGE_LOCK: Mutex<()> = Mutex::new(());

impl Cri {
    /// CRI on Debian's containerd 1.6.
    pub fn start() -> Self {
        Self::start_on(Version::Debian)
    }

    pub fn start_on(version: Version) -> Self {
        assert!(crictl_path().exists(), "crictl missing at {}; run `make tools`", crictl_path().display());
        let exclusive = BRIDGE_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (bridge, subnet) = network(version);
        let mut config = Containerd::configure().with_cri().namespace("k8s.io");
        if version == Version::V2 {
            config = config.containerd2();
        }
        let ctrd = config.config(&cri_toml(version)).file("cni/10-spore.conflist", &conflist(bridge, subnet)).start();
        let pause =
            ImageBuilder::new(PAUSE).file("/pause", static_binary("pause", PAUSE_SOURCE), 0o755).entrypoint(["/pause"]);
        ctrd.import_image(&pause);
        let http = ImageBuilder::new("localhost/spore/http:1")
            .file("/http.wasm", crate::common::guest_bytes("http.wasm"), 0o644)
            .entrypoint(["/http.wasm"]);
        ctrd.import_image(&http);
        let probe = ImageBuilder::new("localhost/spore/probe:1")
            .file("/probe.wasm", crate::common::guest_bytes("probe-c.wasm"), 0o644)
            .entrypoint(["/probe.wasm"]);
        ctrd.import_image(&probe);
        Self { ctrd, bridge, _exclusive: exclusive }
    }

    /// The pods' subnet.
    pub fn subnet(&self) -> &'static str {
        network(self.ctrd.version()).1
    }

    pub fn crictl(&self, args: &[&str]) -> Output {
        let endpoint = format!("unix://{}", self.ctrd.address().display());
        Command::new(crictl_path())
            .args(["--runtime-endpoint", &endpoint, "--image-endpoint", &endpoint, "--timeout", "30s"])
            .args(args)
            .output()
            .expect("crictl runs")
    }

    pub fn crictl_ok(&self, args: &[&str]) -> String {
        let out = self.crictl(args);
        assert!(out.status.success(), "crictl {args:?} failed: {}\n{}", out.stderr_text(), self.ctrd.log());
        out.stdout_text().trim().to_string()
    }

    /// `crictl runp` of a pod named `name` with the `spore` handler; returns the pod id and
    /// the path of its config (which `crictl create` needs again).
    pub fn run_pod(&self, name: &str) -> (String, String) {
        let config = self.write(
            &format!("pod-{name}.json"),
            serde_json::json!({
                "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "attempt": 1},
                "log_directory": self.ctrd.dir().join("logs").join(name).display().to_string(),
                "linux": {}
            }),
        );
        (self.crictl_ok(&["runp", "--runtime", "spore", &config]), config)
    }

    /// `crictl create` + `start` of a container (its config JSON) in a pod; returns its id.
    pub fn start_container(&self, pod: &(String, String), config: serde_json::Value) -> String {
        let name = config["metadata"]["name"].as_str().expect("container name").to_string();
        let path = self.write(&format!("container-{name}.json"), config);
        let id = self.crictl_ok(&["create", &pod.0, &path, &pod.1]);
        self.crictl_ok(&["start", &id]);
        id
    }

    /// The pod's IP on the CNI bridge.
    pub fn pod_ip(&self, pod_id: &str) -> String {
        let inspect: serde_json::Value = serde_json::from_str(&self.crictl_ok(&["inspectp", pod_id])).expect("JSON");
        inspect["status"]["network"]["ip"].as_str().expect("pod IP").to_string()
    }

    /// The most recently assigned pod IP, from the host-local IPAM plugin's state files.
    pub fn newest_pod_ip(&self) -> Option<String> {
        let dir = std::path::Path::new("/var/lib/cni/networks").join(format!("spore-test-{}", self.bridge));
        std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().parse::<std::net::Ipv4Addr>().is_ok())
            .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
    }

    /// Waits until a container has exited; returns its exit code and reason.
    pub fn wait_exited(&self, container_id: &str) -> (i64, String) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let inspect: serde_json::Value =
                serde_json::from_str(&self.crictl_ok(&["inspect", container_id])).expect("JSON");
            let status = &inspect["status"];
            if status["state"] == "CONTAINER_EXITED" {
                return (status["exitCode"].as_i64().unwrap_or(-1), status["reason"].as_str().unwrap_or("").into());
            }
            assert!(Instant::now() < deadline, "container {container_id} still {} after 30s", status["state"]);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops and removes a pod.
    pub fn remove_pod(&self, pod_id: &str) {
        self.crictl_ok(&["stopp", pod_id]);
        self.crictl_ok(&["rmp", pod_id]);
    }

    pub fn write(&self, name: &str, json: serde_json::Value) -> String {
        let path = self.ctrd.dir().join(name);
        std::fs::write(&path, json.to_string()).unwrap();
        path.display().to_string()
    }
}

/// The CRI settings, in each version's layout: pause image, CNI, no streaming port, and
/// OOM scores clamped to containerd's own (this VM lacks CAP_SYS_RESOURCE, so runc cannot
/// lower a pod's oom_score_adj to CRI's -998: "can't get final child's PID from pipe").
/// (Pulls from a loopback registry use plain HTTP without configuration.)
fn cri_toml(version: Version) -> String {
    match version {
        Version::Debian => format!(
            r#"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE}"
  stream_server_port = "0"
  restrict_oom_score_adj = true
[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "{{dir}}/cni"
"#
        ),
        Version::V2 => format!(
            r#"
[plugins.'io.containerd.grpc.v1.cri']
  stream_server_port = "0"
[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = "{PAUSE}"
[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dirs = ["/usr/lib/cni"]
  conf_dir = "{{dir}}/cni"
"#
        ),
    }
}

fn conflist(bridge: &str, subnet: &str) -> String {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": format!("spore-test-{bridge}"),
        "plugins": [
            {"type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": false,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]]}},
            {"type": "loopback"}
        ]
    })
    .to_string()
}

/// The config of a container serving the HTTP guest `image` on `port` (declared inbound).
pub fn http_container(name: &str, image: &str, port: u16) -> serde_json::Value {
    let capabilities = serde_json::json!({"network": {"inbound": [{"name": "http", "port": port}]}});
    serde_json::json!({
        "metadata": {"name": name},
        "image": {"image": image},
        "log_path": format!("{name}.log"),
        "annotations": {"spore.dev/capabilities": capabilities.to_string()},
        "linux": {}
    })
}

/// A stand-in for the activator's admin listener, on the host: a pod reaches it through its
/// bridge's gateway address. It answers one announcement with 204 and keeps what came.
pub struct AnnounceListener {
    port: u16,
    received: std::sync::mpsc::Receiver<(std::net::IpAddr, String)>,
}

impl AnnounceListener {
    pub fn start() -> Self {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("0.0.0.0:0").expect("bind the announce listener");
        let port = listener.local_addr().unwrap().port();
        let (tx, received) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let Ok((mut stream, peer)) = listener.accept() else { return };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut request = Vec::new();
            let mut chunk = [0u8; 1024];
            // Up to the end of the body its Content-Length announces.
            while !complete(&request) {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&chunk[..n]),
                }
            }
            let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\n\r\n");
            let _ = tx.send((peer.ip(), String::from_utf8_lossy(&request).into_owned()));
        });
        Self { port, received }
    }

    /// The `spore.dev/activator-announce` value for a pod of `cri`: its gateway and our port.
    pub fn address(&self, cri: &Cri) -> String {
        let gateway = cri.subnet().trim_end_matches("0/24").to_string() + "1";
        format!("{gateway}:{}", self.port)
    }

    /// The source address and the body of the announcement, once it came.
    pub fn received(&self) -> (std::net::IpAddr, serde_json::Value) {
        let (peer, request) = self.received.recv_timeout(Duration::from_secs(20)).expect("an announcement within 20s");
        let (head, body) = request.split_once("\r\n\r\n").expect("an HTTP request");
        assert!(head.starts_with("POST /v1/announce HTTP/1.1\r\n"), "{head}");
        (peer, serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}")))
    }
}

fn complete(request: &[u8]) -> bool {
    let text = String::from_utf8_lossy(request);
    let Some((head, body)) = text.split_once("\r\n\r\n") else { return false };
    let length = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)));
    body.len() >= length.unwrap_or(0)
}

/// Whether `http://{ip}:{port}/` answers 200 right now (no subprocess: fit for tight polling).
pub fn answers_200(ip: &str, port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(addr) = format!("{ip}:{port}").parse() else { return false };
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if write!(stream, "GET / HTTP/1.1\r\nHost: {ip}\r\nConnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

pub fn get(url: &str) -> Option<String> {
    let out = Command::new("curl").args(["-s", "--max-time", "2", url]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn wait_for(url: &str) -> Option<String> {
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
        let _ = Command::new("ip").args(["link", "delete", self.bridge]).output();
        let _ = std::fs::remove_dir_all(format!("/var/lib/cni/networks/spore-test-{}", self.bridge));
    }
}
