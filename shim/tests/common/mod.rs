//! A guest harness for the engine's integration tests: real guests built by
//! `tests/guests/build.sh` (`make guests`), run through the public engine API.
#![allow(dead_code)]

pub mod serve;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use spore_crds::{FilesystemMount, InboundPort, Protocol, SocketRule};
use spore_shim::{AppConfig, Engine, EngineConfig, Exit, Sandbox, Stdio, Wasm};

/// Directory of the built guests (`SPORE_GUESTS`, default `target/guests`).
pub fn guests_dir() -> PathBuf {
    std::env::var_os("SPORE_GUESTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/guests"))
}

pub fn guest_bytes(file: &str) -> Vec<u8> {
    let path = guests_dir().join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("guest {} missing ({e}); run `make guests`", path.display()))
}

/// One engine for the whole test binary, without a disk cache.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::new(EngineConfig::default()).expect("engine"))
}

/// Guests compiled once per test binary.
pub fn load(file: &str) -> Wasm {
    static LOADED: OnceLock<Mutex<HashMap<String, Wasm>>> = OnceLock::new();
    let mut loaded = LOADED.get_or_init(Default::default).lock().unwrap();
    loaded.entry(file.to_string()).or_insert_with(|| engine().load(&guest_bytes(file)).expect("guest loads")).clone()
}

/// What a run produced.
#[derive(Debug)]
pub struct Outcome {
    pub exit: Exit,
    pub stdout: String,
    pub stderr: String,
}

/// A run of one guest, configured like a sentence:
/// `guest("probe-c.wasm").args(["read", "/data/x"]).mount("data", dir, "/data").run()`.
pub struct Run {
    file: String,
    config: AppConfig,
    stdin: Option<Vec<u8>>,
}

pub fn guest(file: &str) -> Run {
    Run { file: file.into(), config: AppConfig { name: "probe".into(), ..AppConfig::default() }, stdin: None }
}

impl Run {
    pub fn args<const N: usize>(mut self, args: [&str; N]) -> Self {
        self.config.args = args.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.config.env.push((name.into(), value.into()));
        self
    }

    pub fn stdin(mut self, bytes: &[u8]) -> Self {
        self.stdin = Some(bytes.to_vec());
        self
    }

    fn mount_with(mut self, volume: &str, host: &Path, guest_path: &str, read_only: bool) -> Self {
        self.config.volumes.insert(volume.into(), host.to_path_buf());
        self.config.capabilities.filesystem.push(FilesystemMount {
            volume: volume.into(),
            guest_path: guest_path.into(),
            read_only,
        });
        self
    }

    /// A volume of the pod that no mount of the main component uses.
    pub fn volume(mut self, volume: &str, host: &Path) -> Self {
        self.config.volumes.insert(volume.into(), host.to_path_buf());
        self
    }

    /// A read-only mount (the default a manifest gets).
    pub fn mount(self, volume: &str, host: &Path, guest_path: &str) -> Self {
        self.mount_with(volume, host, guest_path, true)
    }

    pub fn mount_writable(self, volume: &str, host: &Path, guest_path: &str) -> Self {
        self.mount_with(volume, host, guest_path, false)
    }

    pub fn listen(mut self, port: u16, protocol: Protocol) -> Self {
        self.config.capabilities.network.inbound.push(InboundPort { name: None, port: port.into(), protocol });
        self
    }

    pub fn tcp_to(mut self, cidr: &str, port: Option<u16>) -> Self {
        self.config.capabilities.network.outbound.tcp.push(rule(cidr, port));
        self
    }

    pub fn udp_to(mut self, cidr: &str, port: Option<u16>) -> Self {
        self.config.capabilities.network.outbound.udp.push(rule(cidr, port));
        self
    }

    pub fn http_to(mut self, pattern: &str) -> Self {
        self.config.capabilities.network.outbound.http.push(pattern.into());
        self
    }

    pub fn dns(mut self) -> Self {
        self.config.capabilities.network.outbound.dns = true;
        self
    }

    /// Resolves with these files rather than the machine's (as the shim does with a pod's).
    pub fn resolver(mut self, files: spore_shim::ResolverFiles) -> Self {
        self.config.resolver = files;
        self
    }

    pub fn memory(mut self, bytes: u64) -> Self {
        self.config.limits.memory = Some(bytes);
        self
    }

    pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
        self.config.limits.timeout = Some(timeout);
        self
    }

    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.config.limits.max_concurrency = n;
        self
    }

    pub fn reuse(mut self, max_requests: usize, max_concurrent: usize) -> Self {
        self.config.limits.instance_reuse = Some(spore_shim::InstanceReuse { max_requests, max_concurrent });
        self
    }

    /// Grants linked component `grant.name` its own env and capabilities.
    pub fn component(mut self, grant: spore_shim::ComponentGrant) -> Self {
        self.config.components.push(grant);
        self
    }

    pub fn wasm(&self) -> Wasm {
        load(&self.file)
    }

    /// Runs `wasm` (e.g. linked from several guests) in this run's sandbox.
    pub async fn run_wasm(self, wasm: &Wasm) -> Outcome {
        let (sandbox, captured) = self.sandbox();
        let exit = spore_shim::run_command(wasm, &sandbox).await.expect("guest runs");
        Outcome { exit, stdout: captured.stdout(), stderr: captured.stderr() }
    }

    pub fn sandbox(self) -> (Sandbox, spore_shim::Captured) {
        let (stdio, captured) = Stdio::capture();
        let stdio = match self.stdin {
            Some(bytes) => stdio.with_stdin(bytes),
            None => stdio,
        };
        (Sandbox::new(self.config, stdio).expect("valid sandbox"), captured)
    }

    pub async fn run(self) -> Outcome {
        let wasm = self.wasm();
        let (sandbox, captured) = self.sandbox();
        let exit = spore_shim::run_command(&wasm, &sandbox).await.expect("guest runs");
        Outcome { exit, stdout: captured.stdout(), stderr: captured.stderr() }
    }
}

fn rule(cidr: &str, port: Option<u16>) -> SocketRule {
    SocketRule { cidr: cidr.into(), port: port.map(i32::from), end_port: None }
}

/// A GET over a fresh connection; returns status and body.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let response = http_get_raw(addr, path).await;
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// A GET over a fresh connection; returns the response as sent, head and body.
pub async fn http_get_raw(addr: std::net::SocketAddr, path: &str) -> String {
    http_get_with(addr, path, &[]).await
}

/// [`http_get_raw`] with more request headers.
pub async fn http_get_with(addr: std::net::SocketAddr, path: &str, headers: &[(&str, &str)]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let extra: String = headers.iter().map(|(name, value)| format!("{name}: {value}\r\n")).collect();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read response");
    String::from_utf8_lossy(&response).into_owned()
}
