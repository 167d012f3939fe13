//! A containerd with its CRI plugin, driven with crictl as kubelet would: pods on a CNI
//! bridge in 198.18.1.0/24, the `spore` and `runc` handlers, images imported up front.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::{Containerd, ImageBuilder, OutputExt};

pub const SUBNET: &str = "198.18.1.0/24";
const BRIDGE: &str = "sporecri0";

fn crictl_path() -> PathBuf {
    std::env::var_os("SPORE_CRICTL").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| "/root".into());
        home.join(".cache/spore-tools/crictl-v1.34.0/crictl")
    })
}

pub struct Cri {
    pub ctrd: Containerd,
}

impl Cri {
    pub fn start() -> Self {
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
            .file("/http.wasm", crate::common::guest_bytes("http.wasm"), 0o644)
            .entrypoint(["/http.wasm"]);
        ctrd.import_image(&http);
        Self { ctrd }
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

    pub fn write(&self, name: &str, json: serde_json::Value) -> String {
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
        let _ = Command::new("ip").args(["link", "delete", BRIDGE]).output();
    }
}
