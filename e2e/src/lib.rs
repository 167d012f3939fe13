//! Helpers of the e2e tests: kubectl and helm against the cluster `e2e/cluster.sh up`
//! started, per-test namespaces, waiting, and installing Spore with its Helm chart.
//!
//! Needs `KUBECONFIG`, `SPORE_E2E_DIR` (the cluster's state directory) and `SPORE_HELM`
//! from `make e2e`.

pub mod load;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

/// The registry both nodes pull from.
pub const REGISTRY: &str = "localhost:5010";
/// What the hello HTTP component answers on `/`.
pub const HELLO: &str = "hello from spore\n";
/// Namespace and release name of the Helm install.
pub const SPORE_NAMESPACE: &str = "spore-system";
/// The bytes the shim of node-installer:2 ends with: the same code with bytes the loader
/// ignores appended, so that the upgrade test has another binary to install.
pub const UPGRADED_SHIM_MARKER: &[u8] = b"\nspore-e2e-upgraded-shim\n";
pub const RELEASE: &str = "spore";

pub fn state_dir() -> PathBuf {
    PathBuf::from(std::env::var_os("SPORE_E2E_DIR").expect("SPORE_E2E_DIR is set by `make e2e`"))
}

/// The repository's root (for the chart and the examples).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn kubectl(args: &[&str]) -> Output {
    assert!(std::env::var_os("KUBECONFIG").is_some(), "KUBECONFIG is set by `make e2e`");
    Command::new("kubectl").args(args).output().expect("kubectl runs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn kubectl_ok(args: &[&str]) -> String {
    let out = kubectl(args);
    assert!(out.status.success(), "kubectl {} failed:\n{}{}", args.join(" "), text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

/// `kubectl ARGS` with `input` on stdin; the output, or the error text.
pub fn kubectl_stdin(args: &[&str], input: &str) -> Result<String, String> {
    let mut child = Command::new("kubectl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write manifest");
    let out = child.wait_with_output().expect("kubectl finishes");
    if out.status.success() { Ok(text(&out.stdout)) } else { Err(text(&out.stderr)) }
}

/// `kubectl apply -f -` with `yaml`; the output, or the error text.
pub fn try_apply(yaml: &str) -> Result<String, String> {
    kubectl_stdin(&["apply", "-f", "-"], yaml)
}

pub fn apply(yaml: &str) {
    if let Err(e) = try_apply(yaml) {
        panic!("kubectl apply failed: {e}\n{yaml}");
    }
}

/// A namespace for one test, deleted (with everything in it) when the test ends.
pub struct Namespace(pub String);

impl Namespace {
    pub fn new(name: &str) -> Self {
        let _ = kubectl(&["delete", "namespace", name, "--wait=true", "--timeout=120s", "--ignore-not-found"]);
        kubectl_ok(&["create", "namespace", name]);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !kubectl(&["-n", name, "get", "serviceaccount", "default"]).status.success() {
            assert!(Instant::now() < deadline, "namespace {name} got no default ServiceAccount");
            std::thread::sleep(Duration::from_millis(200));
        }
        Self(name.to_string())
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        kubectl(&[&["-n", self.0.as_str()], args].concat())
    }

    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        kubectl_ok(&[&["-n", self.0.as_str()], args].concat())
    }

    pub fn jsonpath(&self, args: &[&str], path: &str) -> String {
        let output = format!("jsonpath={path}");
        self.kubectl_ok(&[args, &["-o", &output]].concat())
    }

    /// What `kubectl describe` says, for failure messages.
    pub fn describe(&self, what: &[&str]) -> String {
        text(&self.kubectl(&[&["describe"], what].concat()).stdout)
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = kubectl(&["delete", "namespace", &self.0, "--wait=true", "--timeout=120s"]);
    }
}

pub fn pod_nodes(ns: &Namespace, selector: &str) -> Vec<String> {
    let nodes = ns.jsonpath(&["get", "pods", "-l", selector], "{.items[*].spec.nodeName}");
    nodes.split_whitespace().map(str::to_string).collect()
}

/// The body of a 2xx answer from `url`, or `None`.
pub fn curl(url: &str) -> Option<String> {
    let out = Command::new("curl").args(["-s", "-f", "--max-time", "3", url]).output().ok()?;
    out.status.success().then(|| text(&out.stdout))
}

/// Status code and body of `url`, whatever the status.
pub fn curl_status(url: &str) -> Option<(u16, String)> {
    let out = Command::new("curl").args(["-s", "--max-time", "5", "-w", "\n%{http_code}", url]).output().ok()?;
    let body = text(&out.stdout);
    let (body, code) = body.rsplit_once('\n')?;
    Some((code.parse().ok()?, body.to_string()))
}

/// examples/polyglot as a user applies it (images from the test registry), in `ns`.
pub fn polyglot_app(ns: &Namespace) -> String {
    let example = std::fs::read_to_string(repo_root().join("examples/polyglot/app.yaml")).unwrap();
    example
        .replace("localhost:5000/", &format!("{REGISTRY}/"))
        .replace(":latest", ":1")
        .replace("  name: polyglot\n", &format!("  name: polyglot\n  namespace: {}\n", ns.0))
}

/// Status and body of a request to `url` with `Authorization: Bearer token` (none if empty).
pub fn ask(url: &str, token: &str, body: Option<&str>) -> (u16, String) {
    let mut curl = Command::new("curl");
    curl.args(["-s", "--max-time", "10", "-w", "\n%{http_code}", url]);
    if !token.is_empty() {
        curl.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    if let Some(body) = body {
        curl.args(["--data-binary", body]);
    }
    let out = text(&curl.output().unwrap().stdout);
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", "0"));
    (code.parse().unwrap_or(0), body.to_string())
}

pub fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what} after {timeout:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A WasmApp `name` of the hello component with `replicas` pods serving on 8080, env
/// `GREETING`, and `extra_spec` (indented spec lines) added.
pub fn hello_app(ns: &Namespace, name: &str, replicas: u32, greeting: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: spore.dev/v1alpha1\nkind: WasmApp\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  module: {{image: {REGISTRY}/spore/hello-http:1}}\n  env: [{{name: GREETING, value: {greeting}}}]\n  scaling: {{replicas: {replicas}}}\n{extra_spec}  capabilities: {{network: {{inbound: [{{name: http, port: 8080}}]}}}}\n",
        ns = ns.0
    )
}

/// The nodes Spore's WasmRuntime selects (label `spore.dev/node-kind=wasm`).
pub const WASM_NODES: [&str; 2] = ["node-wasm", "node-wasm2"];
/// The node of container pods only.
pub const CONTAINER_NODE: &str = "node-container";

/// Spore shim processes serving the Wasm nodes' containerds.
pub fn spore_shims() -> Vec<u32> {
    WASM_NODES.iter().flat_map(|node| node_shims(node, "containerd-shim-spore-v1")).collect()
}

/// Waits until `app`'s precompile pods (one per Wasm node) have succeeded and the shims of
/// their sandboxes have exited: from then on every Spore shim serves a running pod, so tests
/// that count shims count the app's own.
pub fn wait_for_precompiles(ns: &Namespace, app: &str) {
    wait_until(&format!("{app}'s precompile pods done, their shims gone"), Duration::from_secs(120), || {
        let phases =
            ns.jsonpath(&["get", "pods", "-l", &format!("spore.dev/precompile-of={app}")], "{.items[*].status.phase}");
        let succeeded = phases.split_whitespace().filter(|phase| *phase == "Succeeded").count();
        let running = kubectl_ok(&[
            "get",
            "pods",
            "-A",
            "--field-selector=status.phase=Running",
            "-o",
            "jsonpath={.items[?(@.spec.runtimeClassName==\"spore\")].metadata.name}",
        ]);
        succeeded == WASM_NODES.len() && spore_shims().len() == running.split_whitespace().count()
    });
}

/// Whether process `pid` has exited. A zombie has: the test machine's init may never reap
/// the orphans (a killed shim is one) that it inherits.
pub fn has_exited(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.is_empty() || stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with(['Z', 'X']))
}

/// Processes of the shim binary `shim` serving `node`'s containerd.
pub fn node_shims(node: &str, shim: &str) -> Vec<u32> {
    let address = state_dir().join(node).join("containerd/containerd.sock");
    let out = Command::new("pgrep")
        .args(["-f", &format!("{shim} .*-address {}", address.display())])
        .output()
        .expect("pgrep runs");
    text(&out.stdout).split_whitespace().filter_map(|p| p.parse().ok()).collect()
}

pub fn helm(args: &[&str]) -> Output {
    let helm = std::env::var_os("SPORE_HELM").expect("SPORE_HELM is set by `make e2e`");
    Command::new(helm).args(args).output().expect("helm runs")
}

/// Where the WasmRuntime installs the shim on `node` (inside the cluster's state dir, so
/// nothing lands in the machine's /opt).
pub fn install_dir(node: &str) -> PathBuf {
    state_dir().join(node).join("spore-bin")
}

/// The chart's values for this cluster: the locally built images, and a WasmRuntime for
/// the Wasm nodes. All nodes share this machine's file system, so each node's containerd
/// config and install directory are under its state directory: `$(NODE_NAME)` in the
/// paths expands to the node's name in the installer's arguments.
pub fn helm_values() -> Vec<String> {
    let config = state_dir().join("$(NODE_NAME)/containerd/config.toml");
    [
        format!("image.operator.repository={REGISTRY}/spore/operator"),
        "image.operator.tag=1".to_string(),
        format!("image.installer.repository={REGISTRY}/spore/node-installer"),
        "image.installer.tag=1".to_string(),
        format!("image.activator.repository={REGISTRY}/spore/activator"),
        "image.activator.tag=1".to_string(),
        "operator.logFormat=text".to_string(),
        "activator.logFormat=text".to_string(),
        // Short enough for the scale-to-zero tests to see held requests time out and load
        // go away within a minute.
        "activator.holdTimeout=10s".to_string(),
        "operator.autoscaler.stableWindow=10s".to_string(),
        // Two replicas: leader election is part of what the tests check.
        "operator.replicas=2".to_string(),
        "runtime.nodeSelector.spore\\.dev/node-kind=wasm".to_string(),
        format!("runtime.containerd.configPath={}", config.display()),
        format!("runtime.installDir={}", state_dir().join("$(NODE_NAME)/spore-bin").display()),
    ]
    .into_iter()
    .flat_map(|v| [if v.starts_with("operator.replicas") { "--set" } else { "--set-string" }.to_string(), v])
    .collect()
}

/// `helm install` Spore once per test process (tests that need the runtime call this
/// first), then waits until the WasmRuntime reports every selected node ready.
pub fn ensure_spore_installed() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        if !helm(&["status", RELEASE, "-n", SPORE_NAMESPACE]).status.success() {
            let chart = repo_root().join("helm/spore");
            let chart = chart.to_str().expect("utf-8 path");
            let mut args = vec![
                "install",
                RELEASE,
                chart,
                "-n",
                SPORE_NAMESPACE,
                "--create-namespace",
                "--wait",
                "--timeout=180s",
            ];
            let values = helm_values();
            args.extend(values.iter().map(String::as_str));
            let out = helm(&args);
            assert!(out.status.success(), "helm install failed:\n{}{}", text(&out.stdout), text(&out.stderr));
        }
        let ready = kubectl(&["wait", "--for=condition=Ready", "wasmruntime/spore", "--timeout=180s"]);
        assert!(
            ready.status.success(),
            "the WasmRuntime did not become Ready:\n{}\n{}",
            text(&kubectl(&["describe", "wasmruntime", "spore"]).stdout),
            text(
                &kubectl(&["-n", SPORE_NAMESPACE, "logs", "-l", "app.kubernetes.io/component=operator", "--tail=50"])
                    .stdout
            )
        );
    });
}

/// The pod holding the operator's leader Lease.
pub fn operator_leader() -> String {
    kubectl_ok(&["-n", SPORE_NAMESPACE, "get", "lease", "spore-operator", "-o", "jsonpath={.spec.holderIdentity}"])
}

/// The leading operator's `spore_operator_reconciles_total`, summed over controllers.
pub fn operator_reconciles() -> u64 {
    let leader = operator_leader();
    let ip = kubectl_ok(&["-n", SPORE_NAMESPACE, "get", "pod", &leader, "-o", "jsonpath={.status.podIP}"]);
    let metrics = curl(&format!("http://{ip}:8080/metrics")).expect("the operator serves /metrics");
    metrics
        .lines()
        .filter(|l| l.starts_with("spore_operator_reconciles_total{"))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}
