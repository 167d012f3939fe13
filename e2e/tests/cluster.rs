//! End to end on the two-node cluster `e2e/cluster.sh up` starts (`make e2e` runs these,
//! one at a time, between `up` and `down`): container pods on runc, Wasm pods through the
//! `spore` RuntimeClass on node-wasm only, Services, Jobs, logs, cleanup, and traffic
//! between container and Wasm pods across nodes.
//!
//! Needs `KUBECONFIG` and `SPORE_E2E_DIR` (the cluster's state directory) from `make e2e`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const REGISTRY: &str = "localhost:5010";
const HELLO: &str = "hello from spore\n";

fn state_dir() -> PathBuf {
    PathBuf::from(std::env::var_os("SPORE_E2E_DIR").expect("SPORE_E2E_DIR is set by `make e2e`"))
}

fn kubectl(args: &[&str]) -> Output {
    assert!(std::env::var_os("KUBECONFIG").is_some(), "KUBECONFIG is set by `make e2e`");
    Command::new("kubectl").args(args).output().expect("kubectl runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn kubectl_ok(args: &[&str]) -> String {
    let out = kubectl(args);
    assert!(out.status.success(), "kubectl {} failed:\n{}{}", args.join(" "), text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

fn apply(yaml: &str) {
    let mut child = Command::new("kubectl")
        .args(["apply", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    child.stdin.take().expect("stdin").write_all(yaml.as_bytes()).expect("write manifest");
    let out = child.wait_with_output().expect("kubectl apply finishes");
    assert!(out.status.success(), "kubectl apply failed: {}\n{yaml}", text(&out.stderr));
}

/// A namespace for one test, deleted (with everything in it) when the test ends.
struct Namespace(String);

impl Namespace {
    fn new(name: &str) -> Self {
        kubectl_ok(&["create", "namespace", name]);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !kubectl(&["-n", name, "get", "serviceaccount", "default"]).status.success() {
            assert!(Instant::now() < deadline, "namespace {name} got no default ServiceAccount");
            std::thread::sleep(Duration::from_millis(200));
        }
        Self(name.to_string())
    }

    fn kubectl_ok(&self, args: &[&str]) -> String {
        kubectl_ok(&[&["-n", self.0.as_str()], args].concat())
    }

    fn jsonpath(&self, args: &[&str], path: &str) -> String {
        let output = format!("jsonpath={path}");
        self.kubectl_ok(&[args, &["-o", &output]].concat())
    }

    /// What `kubectl describe` says, for failure messages.
    fn describe(&self, what: &[&str]) -> String {
        let out = kubectl(&[&["-n", self.0.as_str(), "describe"], what].concat());
        text(&out.stdout)
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = kubectl(&["delete", "namespace", &self.0, "--wait=true", "--timeout=120s"]);
    }
}

/// The `spore` RuntimeClass, as the operator will create it: handler `spore`, scheduled onto
/// nodes labelled as Wasm nodes.
fn ensure_runtime_class() {
    apply(
        r#"
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: spore}
handler: spore
scheduling:
  nodeSelector: {spore.dev/node-kind: wasm}
"#,
    );
}

/// A Deployment of the hello HTTP component under the `spore` RuntimeClass and its Service.
fn deploy_hello(ns: &Namespace, replicas: u32) -> String {
    ensure_runtime_class();
    apply(&format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: hello, namespace: {ns}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: hello}}}}
  template:
    metadata:
      labels: {{app: hello}}
      annotations:
        spore.dev/capabilities: '{{"network":{{"inbound":[{{"name":"http","port":8080}}]}}}}'
    spec:
      runtimeClassName: spore
      containers:
      - name: hello
        image: {REGISTRY}/spore/hello-http:1
        ports: [{{containerPort: 8080}}]
        readinessProbe:
          httpGet: {{path: /, port: 8080}}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {{name: hello, namespace: {ns}}}
spec:
  selector: {{app: hello}}
  ports: [{{port: 80, targetPort: 8080}}]
"#,
        ns = ns.0
    ));
    let rollout = kubectl(&["-n", &ns.0, "rollout", "status", "deployment/hello", "--timeout=120s"]);
    assert!(rollout.status.success(), "hello did not roll out: {}\n{}", text(&rollout.stderr), ns.describe(&["pods"]));
    ns.jsonpath(&["get", "service", "hello"], "{.spec.clusterIP}")
}

fn pod_nodes(ns: &Namespace, selector: &str) -> Vec<String> {
    let nodes = ns.jsonpath(&["get", "pods", "-l", selector], "{.items[*].spec.nodeName}");
    nodes.split_whitespace().map(str::to_string).collect()
}

fn curl(url: &str) -> Option<String> {
    let out = Command::new("curl").args(["-s", "-f", "--max-time", "3", url]).output().ok()?;
    out.status.success().then(|| text(&out.stdout))
}

/// Spore shim processes serving node-wasm's containerd.
fn spore_shims() -> Vec<u32> {
    let address = state_dir().join("node-wasm/containerd/containerd.sock");
    let out = Command::new("pgrep")
        .args(["-f", &format!("containerd-shim-spore-v1 .*-address {}", address.display())])
        .output()
        .expect("pgrep runs");
    text(&out.stdout).split_whitespace().filter_map(|p| p.parse().ok()).collect()
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what} after {timeout:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn both_nodes_are_ready_with_their_labels() {
    let nodes = kubectl_ok(&[
        "get",
        "nodes",
        "-o",
        r#"jsonpath={range .items[*]}{.metadata.name}={.metadata.labels.spore\.dev/node-kind},{.status.conditions[?(@.type=="Ready")].status} {end}"#,
    ]);
    assert_eq!(nodes.trim(), "node-container=container,True node-wasm=wasm,True");
}

#[test]
fn a_busybox_deployment_runs_with_runc() {
    let ns = Namespace::new("e2e-busybox");
    apply(&format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: busybox, namespace: {ns}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: busybox}}}}
  template:
    metadata: {{labels: {{app: busybox}}}}
    spec:
      containers:
      - name: busybox
        image: {REGISTRY}/spore/busybox:1
        command: [/bin/busybox, sleep, "3600"]
"#,
        ns = ns.0
    ));
    let rollout = kubectl(&["-n", &ns.0, "rollout", "status", "deployment/busybox", "--timeout=120s"]);
    assert!(rollout.status.success(), "busybox did not roll out:\n{}", ns.describe(&["pods"]));
    for node in pod_nodes(&ns, "app=busybox") {
        assert!(["node-container", "node-wasm"].contains(&node.as_str()), "unknown node {node}");
    }
    // Container pods run under the default handler, runc, on either kind of node: ask the
    // node's containerd which runtime each container has.
    let containers = ns.jsonpath(
        &["get", "pods", "-l", "app=busybox"],
        "{range .items[*]}{.spec.nodeName} {.status.containerStatuses[0].containerID}{'\\n'}{end}",
    );
    for line in containers.lines() {
        let (node, id) = line.split_once(" containerd://").unwrap_or_else(|| panic!("unexpected status {line:?}"));
        assert_eq!(runtime_of(node, id), "io.containerd.runc.v2", "{node} runs {id} with another runtime");
    }
}

/// The runtime containerd on `node` runs container `id` with.
fn runtime_of(node: &str, id: &str) -> String {
    let socket = state_dir().join(node).join("containerd/containerd.sock");
    let out = Command::new("ctr")
        .arg("--address")
        .arg(&socket)
        .args(["-n", "k8s.io", "containers", "info", id])
        .output()
        .expect("ctr runs");
    let info: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("ctr containers info {id} on {node}: {e}: {}", text(&out.stderr)));
    info["Runtime"]["Name"].as_str().unwrap_or_default().to_string()
}

#[test]
fn a_wasm_deployment_lands_on_the_wasm_node_and_serves_its_service() {
    let ns = Namespace::new("e2e-hello");
    let cluster_ip = deploy_hello(&ns, 2);
    assert_eq!(pod_nodes(&ns, "app=hello"), ["node-wasm", "node-wasm"], "Wasm pods only on node-wasm");
    let ids = ns.jsonpath(&["get", "pods", "-l", "app=hello"], "{.items[*].status.containerStatuses[0].containerID}");
    for id in ids.split_whitespace() {
        assert_eq!(runtime_of("node-wasm", id.trim_start_matches("containerd://")), "io.containerd.spore.v1");
    }

    let url = format!("http://{cluster_ip}/");
    let mut body = None;
    wait_until("the Service answers", Duration::from_secs(30), || {
        body = curl(&url);
        body.is_some()
    });
    assert_eq!(body.as_deref(), Some(HELLO));

    // The guest's stderr is the container log: /trap makes the guest report a panic there.
    let _ = curl(&format!("http://{cluster_ip}/trap"));
    let _ = curl(&format!("http://{cluster_ip}/trap"));
    wait_until("kubectl logs shows the guest's output", Duration::from_secs(20), || {
        ns.kubectl_ok(&["logs", "-l", "app=hello", "--tail=-1", "--prefix"]).contains("trap requested")
    });

    assert!(!spore_shims().is_empty(), "no Spore shim runs the Wasm pods");
    ns.kubectl_ok(&["delete", "deployment", "hello", "--wait=true"]);
    wait_until("the pods are gone", Duration::from_secs(60), || pod_nodes(&ns, "app=hello").is_empty());
    wait_until("no Spore shim is left on node-wasm", Duration::from_secs(30), || spore_shims().is_empty());
}

fn job(ns: &Namespace, name: &str, args: &str) {
    ensure_runtime_class();
    apply(&format!(
        r#"
apiVersion: batch/v1
kind: Job
metadata: {{name: {name}, namespace: {ns}}}
spec:
  backoffLimit: 0
  template:
    spec:
      runtimeClassName: spore
      restartPolicy: Never
      containers:
      - name: probe
        image: {REGISTRY}/spore/probe:1
        args: {args}
"#,
        ns = ns.0
    ));
}

#[test]
fn wasm_jobs_complete_or_fail_with_their_exit_code() {
    let ns = Namespace::new("e2e-jobs");
    job(&ns, "succeeds", r#"[echo, "job done"]"#);
    job(&ns, "fails", "[exit, \"3\"]");

    let complete = kubectl(&["-n", &ns.0, "wait", "--for=condition=complete", "job/succeeds", "--timeout=120s"]);
    assert!(complete.status.success(), "job/succeeds did not complete:\n{}", ns.describe(&["pods"]));
    assert_eq!(ns.kubectl_ok(&["logs", "job/succeeds"]), "job done\n");

    let failed = kubectl(&["-n", &ns.0, "wait", "--for=condition=failed", "job/fails", "--timeout=120s"]);
    assert!(failed.status.success(), "job/fails was not reported Failed:\n{}", ns.describe(&["pods"]));
    let exit_code = ns.jsonpath(
        &["get", "pods", "-l", "job-name=fails"],
        "{.items[0].status.containerStatuses[0].state.terminated.exitCode}",
    );
    assert_eq!(exit_code, "3");
    let described = ns.describe(&["pods", "-l", "job-name=fails"]);
    assert!(described.contains("Exit Code:    3"), "kubectl describe does not show the exit code:\n{described}");
}

#[test]
fn container_pods_reach_wasm_services_across_nodes() {
    let ns = Namespace::new("e2e-cross");
    deploy_hello(&ns, 1);
    // By the Service's name, through cluster DNS.
    let url = format!("http://hello.{}.svc.cluster.local/", ns.0);
    apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: client, namespace: {ns}}}
spec:
  nodeSelector: {{spore.dev/node-kind: container}}
  restartPolicy: Never
  containers:
  - name: wget
    image: {REGISTRY}/spore/busybox:1
    command: [/bin/busybox, wget, -q, -O, -, "{url}"]
"#,
        ns = ns.0
    ));
    let mut phase = String::new();
    wait_until("the busybox client finished", Duration::from_secs(120), || {
        phase = ns.jsonpath(&["get", "pod", "client"], "{.status.phase}");
        phase == "Succeeded" || phase == "Failed"
    });
    assert_eq!(phase, "Succeeded", "the busybox client failed:\n{}", ns.describe(&["pod/client"]));
    assert_eq!(ns.jsonpath(&["get", "pod", "client"], "{.spec.nodeName}"), "node-container");
    assert_eq!(ns.kubectl_ok(&["logs", "client"]), HELLO);
}
