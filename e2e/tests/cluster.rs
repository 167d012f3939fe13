//! End to end on the three-node cluster `e2e/cluster.sh up` starts (`make e2e` runs these,
//! one at a time, between `up` and `down`): container pods on runc, Wasm pods through the
//! `spore` RuntimeClass on the Wasm nodes only, Services, Jobs, logs, cleanup, and traffic
//! between container and Wasm pods across nodes.
//!
//! Needs `KUBECONFIG` and `SPORE_E2E_DIR` (the cluster's state directory) from `make e2e`.

use std::process::Command;
use std::time::Duration;

use spore_e2e::*;

/// A Deployment of the hello HTTP component under the `spore` RuntimeClass and its Service.
fn deploy_hello(ns: &Namespace, replicas: u32) -> String {
    ensure_spore_installed();
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

#[test]
fn every_node_is_ready_with_its_label() {
    let nodes = kubectl_ok(&[
        "get",
        "nodes",
        "-o",
        r#"jsonpath={range .items[*]}{.metadata.name}={.metadata.labels.spore\.dev/node-kind},{.status.conditions[?(@.type=="Ready")].status} {end}"#,
    ]);
    assert_eq!(nodes.trim(), "node-container=container,True node-wasm=wasm,True node-wasm2=wasm,True");
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
        assert!(node == CONTAINER_NODE || WASM_NODES.contains(&node.as_str()), "unknown node {node}");
    }
    // Container pods run under the default handler, runc, on either kind of node: ask the
    // node's containerd which runtime each container has.
    for (node, id) in containers(&ns, "app=busybox") {
        assert_eq!(runtime_of(&node, &id), "io.containerd.runc.v2", "{node} runs {id} with another runtime");
    }
}

/// `(node, container ID)` of the first container of each pod `selector` picks.
fn containers(ns: &Namespace, selector: &str) -> Vec<(String, String)> {
    let rows = ns.jsonpath(
        &["get", "pods", "-l", selector],
        "{range .items[*]}{.spec.nodeName} {.status.containerStatuses[0].containerID}{'\\n'}{end}",
    );
    rows.lines()
        .map(|line| {
            let (node, id) = line.split_once(" containerd://").unwrap_or_else(|| panic!("unexpected status {line:?}"));
            (node.to_string(), id.to_string())
        })
        .collect()
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
    let nodes = pod_nodes(&ns, "app=hello");
    assert!(nodes.iter().all(|n| WASM_NODES.contains(&n.as_str())), "Wasm pods only on the Wasm nodes: {nodes:?}");
    for (node, id) in containers(&ns, "app=hello") {
        let runtime = runtime_of(&node, &id);
        // containerd 1.x names the shim by its path (the installer's workaround for containerd#8207).
        assert!(
            runtime == "io.containerd.spore.v1" || runtime.ends_with("/containerd-shim-spore-v1"),
            "runtime {runtime}"
        );
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
    wait_until("no Spore shim is left on the Wasm nodes", Duration::from_secs(30), || spore_shims().is_empty());
}

fn job(ns: &Namespace, name: &str, args: &str) {
    ensure_spore_installed();
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
    # kube-proxy programs a new Service's rules on its own time after the pods are ready:
    # retry for a while, and show the last error only if every try failed.
    command: [/bin/busybox, sh, -c, 'b=/bin/busybox; for i in $($b seq 30); do $b wget -q -O - "{url}" 2>/err && exit 0; $b sleep 1; done; $b cat /err >&2; exit 1']
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
