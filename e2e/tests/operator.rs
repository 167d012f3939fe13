//! The product path on the three-node cluster: `helm install` the chart, the WasmRuntime puts
//! the shim on the two Wasm nodes only, then WasmApps: the example serves (its pods export request
//! metrics), scales and autoscales, capabilities hold, bad manifests are rejected, a corrupt
//! module is reported, the operator recovers from being killed, and a node leaving the
//! selector is uninstalled, and a new image is precompiled on the Wasm nodes before its first pod.
//! (`helm uninstall` is in uninstall.rs, run last.)

use std::time::Duration;

use spore_e2e::*;

fn node_config(node: &str) -> std::path::PathBuf {
    state_dir().join(node).join("containerd")
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn drop_ins(node: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(node_config(node).join("conf.d"))
        .map(|d| d.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned())).collect())
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn helm_install_puts_the_shim_on_the_wasm_node_only() {
    ensure_spore_installed();
    let labels = kubectl_ok(&[
        "get",
        "nodes",
        "-o",
        r#"jsonpath={range .items[*]}{.metadata.name}={.metadata.labels.runtime\.spore\.dev/spore} {end}"#,
    ]);
    assert_eq!(labels.trim(), "node-container= node-wasm=ready node-wasm2=ready");
    for node in ["node-container", "node-wasm", "node-wasm2"] {
        let dir = node_config(node);
        assert_eq!(
            read(&dir.join("config.toml")),
            read(&dir.join("config.toml.at-start")),
            "{node}'s main config changed"
        );
    }
    assert_eq!(drop_ins("node-container"), Vec::<String>::new(), "node-container got a drop-in");
    for node in WASM_NODES {
        assert_eq!(drop_ins(node), ["spore-spore.toml"], "{node}");
        // Each node's drop-in names its own shim: `$(NODE_NAME)` expanded per node.
        let drop_in = read(&node_config(node).join("conf.d/spore-spore.toml"));
        let shim = install_dir(node).join("containerd-shim-spore-v1");
        assert!(drop_in.contains(&shim.display().to_string()), "{node}: {drop_in}");
        assert!(shim.is_file(), "no shim in {}", shim.display());
    }

    let class = kubectl_ok(&["get", "runtimeclass", "spore", "-o", "jsonpath={.handler} {.scheduling.nodeSelector}"]);
    assert_eq!(class, r#"spore {"runtime.spore.dev/spore":"ready"}"#);
    let nodes = kubectl_ok(&[
        "get",
        "wasmruntime",
        "spore",
        "-o",
        "jsonpath={range .status.nodes[*]}{.name}={.state},{.shimVersion} {end}",
    ]);
    assert_eq!(nodes.trim(), "node-wasm=Ready,0.1.0 node-wasm2=Ready,0.1.0");
    let holder = lease_holder();
    assert!(operator_pods().contains(&holder), "the leader lease is held by {holder:?}, not an operator pod");
    let leader_ip = kubectl_ok(&["-n", SPORE_NAMESPACE, "get", "pod", &holder, "-o", "jsonpath={.status.podIP}"]);
    let metrics = curl(&format!("http://{leader_ip}:8080/metrics")).expect("the operator serves /metrics");
    assert!(metrics.contains(r#"spore_operator_reconciles_total{controller="wasmruntime"}"#), "{metrics}");
    assert_eq!(curl(&format!("http://{leader_ip}:8080/readyz")).as_deref(), Some("ok\n"));
    let table = kubectl_ok(&["get", "wasmruntimes"]);
    let rows: Vec<Vec<&str>> = table.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(
        (&rows[0][..], &rows[1][..3]),
        (&["NAME", "RUNTIMECLASS", "READY", "AGE"][..], &["spore", "spore", "True"][..])
    );
}

/// The hello-http example as a user applies it, with the e2e registry's image.
fn hello_example(ns: &Namespace) -> String {
    let yaml = read(&repo_root().join("examples/hello-http/app.yaml"));
    assert!(yaml.contains("localhost:5000/spore/hello-http:latest") && yaml.contains("  name: hello-http\n"));
    yaml.replace("localhost:5000/spore/hello-http:latest", &format!("{REGISTRY}/spore/hello-http:1"))
        .replace("  name: hello-http\n", &format!("  name: hello-http\n  namespace: {}\n", ns.0))
}

fn wait_ready(ns: &Namespace, app: &str) {
    let out = ns.kubectl(&["wait", "--for=condition=Ready", &format!("wasmapp/{app}"), "--timeout=120s"]);
    assert!(
        out.status.success(),
        "WasmApp {app} not Ready:\n{}\n{}",
        ns.describe(&["wasmapp", app]),
        ns.describe(&["pods", "-l", &format!("spore.dev/app={app}")])
    );
}

fn field(ns: &Namespace, what: &str, path: &str) -> String {
    ns.jsonpath(&["get", what], path)
}

#[test]
fn the_hello_example_serves_from_the_wasm_node_and_scales() {
    ensure_spore_installed();
    let ns = Namespace::new("e2e-example");
    apply(&hello_example(&ns));
    wait_ready(&ns, "hello-http");
    let nodes = pod_nodes(&ns, "spore.dev/app=hello-http");
    assert!(nodes.len() == 2 && nodes.iter().all(|n| WASM_NODES.contains(&n.as_str())), "{nodes:?}");
    let ip = field(&ns, "service/hello-http", "{.spec.clusterIP}");
    let mut body = None;
    wait_until("the Service answers", Duration::from_secs(30), || {
        body = curl(&format!("http://{ip}:8080/"));
        body.is_some()
    });
    assert_eq!(body.as_deref(), Some(HELLO));
    // Each pod's shim exports the request metrics (what targetConcurrency scales on) on the
    // port the operator named `metrics`; the request above is counted on one of them.
    let port = field(
        &ns,
        "deployment/hello-http",
        r#"{.spec.template.spec.containers[0].ports[?(@.name=="metrics")].containerPort}"#,
    );
    assert_eq!(port, "9464");
    let ips =
        ns.kubectl_ok(&["get", "pods", "-l", "spore.dev/app=hello-http", "-o", "jsonpath={.items[*].status.podIP}"]);
    let scrapes: Vec<String> = ips
        .split_whitespace()
        .map(|ip| curl(&format!("http://{ip}:{port}/metrics")).unwrap_or_else(|| panic!("no metrics from pod {ip}")))
        .collect();
    assert!(scrapes.iter().all(|m| m.contains("spore_http_requests_in_flight 0")), "{scrapes:?}");
    assert!(scrapes.iter().any(|m| m.contains(r#"spore_http_requests_total{code="200"} "#)), "{scrapes:?}");

    let table = ns.kubectl_ok(&["get", "wasmapps"]);
    let header: Vec<&str> = table.lines().next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "REPLICAS", "AVAILABLE", "REASON", "MODULE", "AGE"], "{table}");
    let row: Vec<&str> = table.lines().nth(1).unwrap_or_default().split_whitespace().collect();
    assert_eq!(
        row[..6],
        ["hello-http", "True", "2", "2", "ReplicasReady", "localhost:5010/spore/hello-http:1"],
        "{table}"
    );

    for replicas in ["3", "1"] {
        ns.kubectl_ok(&["scale", "wasmapp/hello-http", &format!("--replicas={replicas}")]);
        wait_until(&format!("{replicas} replicas ready"), Duration::from_secs(120), || {
            field(&ns, "wasmapp/hello-http", "{.status.replicas}/{.status.readyReplicas}")
                == format!("{replicas}/{replicas}")
        });
        assert_eq!(field(&ns, "deployment/hello-http", "{.spec.replicas}"), replicas);
    }
    let events = ns.kubectl_ok(&[
        "get",
        "events",
        "--field-selector=involvedObject.kind=WasmApp",
        "-o",
        "jsonpath={.items[*].reason}",
    ]);
    assert!(events.contains("Ready"), "no Ready event on the WasmApp: {events}");
}

#[test]
fn an_autoscaled_app_gets_an_hpa_and_loses_it_when_fixed() {
    ensure_spore_installed();
    let ns = Namespace::new("e2e-autoscale");
    let app = |scaling: &str| {
        format!(
            "apiVersion: spore.dev/v1alpha1\nkind: WasmApp\nmetadata: {{name: auto, namespace: {}}}\nspec:\n  module: {{image: {REGISTRY}/spore/hello-http:1}}\n  capabilities: {{network: {{inbound: [{{name: http, port: 8080}}]}}}}\n  limits: {{cpu: 100m, memory: 32Mi}}\n  scaling: {scaling}\n",
            ns.0
        )
    };
    apply(&app("{autoscale: {minReplicas: 1, maxReplicas: 4, targetCpuUtilization: 50}}"));
    wait_until("the HPA exists", Duration::from_secs(60), || ns.kubectl(&["get", "hpa", "auto"]).status.success());
    assert_eq!(
        field(
            &ns,
            "hpa/auto",
            "{.spec.scaleTargetRef.kind}/{.spec.scaleTargetRef.name} {.spec.minReplicas}-{.spec.maxReplicas} {.spec.metrics[0].resource.target.averageUtilization}"
        ),
        "Deployment/auto 1-4 50"
    );
    wait_ready(&ns, "auto");
    // This cluster has no metrics-server: the app says so instead of silently never scaling.
    let mut degraded = String::new();
    wait_until("the app reports the HPA's missing metrics", Duration::from_secs(90), || {
        degraded = field(&ns, "wasmapp/auto", r#"{.status.conditions[?(@.type=="Degraded")].reason}"#);
        degraded == "AutoscalingInactive"
    });
    let message = field(&ns, "wasmapp/auto", r#"{.status.conditions[?(@.type=="Degraded")].message}"#);
    assert!(message.contains("needs metrics-server"), "{message}");
    let refused = ns.kubectl(&["scale", "wasmapp/auto", "--replicas=3"]);
    assert!(
        !refused.status.success()
            && text(&refused.stderr).contains("set either replicas or autoscale with targetCpuUtilization, not both"),
        "{}",
        text(&refused.stderr)
    );

    apply(&app("{replicas: 2}"));
    wait_until("the HPA is gone", Duration::from_secs(60), || !ns.kubectl(&["get", "hpa", "auto"]).status.success());
    wait_until("2 replicas", Duration::from_secs(120), || field(&ns, "wasmapp/auto", "{.status.readyReplicas}") == "2");
}

/// A plain hello app listening on 8080; its ClusterIP.
fn hello_app(ns: &Namespace, name: &str) -> String {
    apply(&format!(
        "apiVersion: spore.dev/v1alpha1\nkind: WasmApp\nmetadata: {{name: {name}, namespace: {}}}\nspec:\n  module: {{image: {REGISTRY}/spore/hello-http:1}}\n  capabilities: {{network: {{inbound: [{{name: http, port: 8080}}]}}}}\n",
        ns.0
    ));
    wait_ready(ns, name);
    field(ns, &format!("service/{name}"), "{.spec.clusterIP}")
}

#[test]
fn capabilities_hold_as_seen_from_outside_the_pod() {
    ensure_spore_installed();
    let ns = Namespace::new("e2e-caps");
    let allowed = hello_app(&ns, "allowed");
    let denied = hello_app(&ns, "denied");
    ns.kubectl_ok(&["create", "configmap", "greeting", "--from-literal=greeting=hello from a ConfigMap"]);
    apply(&format!(
        r#"apiVersion: spore.dev/v1alpha1
kind: WasmApp
metadata: {{name: caps, namespace: {ns}}}
spec:
  module: {{image: {REGISTRY}/spore/hello-http:1}}
  volumes:
  - {{name: config, configMap: {{name: greeting}}}}
  capabilities:
    filesystem:
    - {{volume: config, guestPath: /config}}
    network:
      inbound: [{{name: http, port: 8080}}]
      outbound:
        http: ["{allowed}:8080"]
"#,
        ns = ns.0
    ));
    wait_ready(&ns, "caps");
    let base = format!("http://{}:8080", field(&ns, "service/caps", "{.spec.clusterIP}"));
    let get = |path: &str| curl_status(&format!("{base}{path}")).unwrap_or_else(|| panic!("no answer for {path}"));
    // Ready pods are not yet routed: kube-proxy programs the Service a moment later.
    wait_until("the Service answers", Duration::from_secs(30), || curl(&format!("{base}/")).is_some());

    assert_eq!(get("/read?path=/config/greeting"), (200, "hello from a ConfigMap".to_string()));
    let (status, body) = get("/write?path=/config/greeting&text=changed");
    assert!(status == 403 && body.starts_with("error: write /config/greeting"), "write allowed: {status} {body}");
    assert_eq!(get("/read?path=/config/greeting").1, "hello from a ConfigMap");
    let (status, body) = get("/read?path=/etc/hostname");
    assert_eq!(status, 403, "a path outside the declared volumes is readable: {body}");

    assert_eq!(get(&format!("/fetch?url=http://{allowed}:8080/")), (200, format!("upstream 200: {HELLO}")));
    let (status, body) = get(&format!("/fetch?url=http://{denied}:8080/"));
    assert!(
        status == 502 && body.contains("HttpRequestDenied"),
        "a host outside outbound.http was reached: {status} {body}"
    );
}

#[test]
fn bad_manifests_are_rejected_by_kubectl_apply() {
    ensure_spore_installed();
    let ns = Namespace::new("e2e-invalid");
    let app = |spec: &str| {
        format!(
            "apiVersion: spore.dev/v1alpha1\nkind: WasmApp\nmetadata: {{name: bad, namespace: {}}}\nspec:\n  module: {{image: {REGISTRY}/spore/hello-http:1}}\n{spec}",
            ns.0
        )
    };
    let cases = [
        (
            "  scaling: {replicas: 2, autoscale: {maxReplicas: 3, targetCpuUtilization: 50}}\n",
            "set either replicas or autoscale with targetCpuUtilization, not both",
        ),
        (
            "  scaling: {autoscale: {minReplicas: 0, maxReplicas: 3, targetConcurrency: 5}}\n",
            "scale to zero (minReplicas 0) needs exactly one TCP inbound port",
        ),
        (
            "  capabilities: {network: {inbound: [{port: 8080}]}}\n  scaling: {autoscale: {minReplicas: 0, maxReplicas: 3, targetCpuUtilization: 50}}\n",
            "minReplicas 0 (scale to zero) needs targetConcurrency",
        ),
        (
            "  volumes: [{name: data, emptyDir: {}}]\n  capabilities: {filesystem: [{volume: data, guestPath: data}]}\n",
            r#"guestPath "data" is not absolute"#,
        ),
        (
            "  capabilities: {filesystem: [{volume: nope, guestPath: /data}]}\n",
            r#"volume "nope" is not in spec.volumes"#,
        ),
        ("  limits: {memory: 64MB}\n", "memory 64MB is not a Kubernetes quantity"),
        ("  limits: {timeout: soon}\n", "timeout soon is not a duration"),
        ("  replicas: 3\n", "unknown field \"spec.replicas\""),
        ("  capabilities: {network: {inbound: [{port: 70000}]}}\n", "port 70000 is out of range"),
        (
            "  capabilities: {network: {outbound: {tcp: [{cidr: 10.0.0.0/33}]}}}\n",
            r#"cidr "10.0.0.0/33" is not an IPv4 or IPv6 CIDR"#,
        ),
        (
            "  scaling: {autoscale: {minReplicas: 5, maxReplicas: 2, targetConcurrency: 5}}\n",
            "minReplicas must not be greater than maxReplicas",
        ),
        (
            "  env: [{name: A, value: x, valueFrom: {configMapKeyRef: {name: c, key: k}}}]\n",
            "set exactly one of value or valueFrom",
        ),
        ("  volumes: [{name: data, emptyDir: {}, configMap: {name: c}}]\n", "set exactly one volume source"),
        ("  healthChecks: {readiness: {path: healthz}}\n", "path must start with /"),
        ("  runtimeClassName: Not_A_Label\n", "spec.runtimeClassName"),
    ];
    for (spec, expected) in cases {
        match try_apply(&app(spec)) {
            Ok(out) => panic!("accepted:\n{spec}{out}"),
            Err(err) => assert!(err.contains(expected), "{spec}: expected {expected:?} in:\n{err}"),
        }
    }
    let missing_image = format!(
        "apiVersion: spore.dev/v1alpha1\nkind: WasmApp\nmetadata: {{name: bad, namespace: {}}}\nspec:\n  module: {{}}\n",
        ns.0
    );
    let err = try_apply(&missing_image).expect_err("a WasmApp without an image was accepted");
    assert!(err.contains("spec.module.image: Required value"), "{err}");
    assert!(!ns.kubectl(&["get", "wasmapp", "bad"]).status.success(), "a bad WasmApp was stored");
}

#[test]
fn a_corrupt_module_degrades_the_app_with_the_engines_message() {
    ensure_spore_installed();
    let ns = Namespace::new("e2e-corrupt");
    apply(&format!(
        "apiVersion: spore.dev/v1alpha1\nkind: WasmApp\nmetadata: {{name: corrupt, namespace: {}}}\nspec:\n  module: {{image: {REGISTRY}/spore/corrupt:1}}\n",
        ns.0
    ));
    let mut reason = String::new();
    wait_until("the app is Degraded", Duration::from_secs(120), || {
        reason = field(&ns, "wasmapp/corrupt", r#"{.status.conditions[?(@.type=="Degraded")].reason}"#);
        reason == "ModuleInvalid"
    });
    let message = field(&ns, "wasmapp/corrupt", r#"{.status.conditions[?(@.type=="Degraded")].message}"#);
    assert!(message.contains("invalid WebAssembly"), "the engine's message is missing: {message}");
    let events = ns.kubectl_ok(&["get", "events", "--field-selector=involvedObject.name=corrupt,reason=ModuleInvalid"]);
    assert!(events.contains("ModuleInvalid"), "no ModuleInvalid event:\n{events}");
}

fn lease_holder() -> String {
    kubectl_ok(&["-n", SPORE_NAMESPACE, "get", "lease", "spore-operator", "-o", "jsonpath={.spec.holderIdentity}"])
}

/// A pod's log so far; empty while its container has not started.
fn pod_log(pod: &str) -> String {
    text(&kubectl(&["-n", SPORE_NAMESPACE, "logs", pod]).stdout)
}

fn operator_pods() -> Vec<String> {
    let names = kubectl_ok(&[
        "-n",
        SPORE_NAMESPACE,
        "get",
        "pods",
        "-l",
        "app.kubernetes.io/component=operator",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    names.split_whitespace().map(str::to_string).collect()
}

#[test]
fn a_killed_operator_leaves_no_duplicates_and_deleting_the_app_cleans_up() {
    ensure_spore_installed();
    let ns = Namespace::new("e2e-restart");
    apply(&hello_example(&ns));
    // Kill the operator while it works on the new app.
    for pod in operator_pods() {
        kubectl_ok(&["-n", SPORE_NAMESPACE, "delete", "pod", &pod, "--grace-period=0", "--force"]);
    }
    let rollout = kubectl(&["-n", SPORE_NAMESPACE, "rollout", "status", "deployment/spore-operator", "--timeout=120s"]);
    assert!(rollout.status.success(), "the operator did not come back: {}", text(&rollout.stderr));
    wait_ready(&ns, "hello-http");
    let owned = |kind: &str| ns.jsonpath(&["get", kind, "-l", "spore.dev/app=hello-http"], "{.items[*].metadata.name}");
    assert_eq!(owned("deployments"), "hello-http");
    assert_eq!(owned("services"), "hello-http");
    assert_eq!(
        owned("replicasets").split_whitespace().count(),
        1,
        "more than one ReplicaSet: the template changed across restarts"
    );
    let precompiles = || {
        let nodes =
            ns.jsonpath(&["get", "pods", "-l", "spore.dev/precompile-of=hello-http"], "{.items[*].spec.nodeName}");
        let mut nodes: Vec<String> = nodes.split_whitespace().map(String::from).collect();
        nodes.sort();
        nodes
    };
    wait_until(
        "one precompile pod per Wasm node, however often the operator restarted",
        Duration::from_secs(60),
        || precompiles() == WASM_NODES,
    );

    ns.kubectl_ok(&["delete", "wasmapp", "hello-http", "--wait=true"]);
    wait_until("everything the app had is gone", Duration::from_secs(90), || {
        owned("deployments").is_empty()
            && owned("services").is_empty()
            && owned("pods").is_empty()
            && precompiles().is_empty()
    });
}

#[test]
fn a_node_that_cannot_install_is_reported_and_left_as_it_was() {
    ensure_spore_installed();
    let node = state_dir().join("node-container");
    let missing = node.join("containerd/missing.toml");
    apply(&format!(
        r#"apiVersion: spore.dev/v1alpha1
kind: WasmRuntime
metadata: {{name: broken}}
spec:
  runtimeClassName: broken
  nodeSelector: {{spore.dev/node-kind: container}}
  shim: {{image: {REGISTRY}/spore/node-installer:1, installDir: {bin}}}
  containerd: {{configPath: {missing}}}
"#,
        bin = node.join("spore-bin").display(),
        missing = missing.display()
    ));
    let mut nodes = String::new();
    wait_until("node-container is reported Failed", Duration::from_secs(120), || {
        nodes = kubectl_ok(&[
            "get",
            "wasmruntime",
            "broken",
            "-o",
            "jsonpath={range .status.nodes[*]}{.name}={.state}: {.message}{end}",
        ]);
        nodes.starts_with("node-container=Failed")
    });
    assert!(nodes.contains("missing.toml"), "the message does not name the config: {nodes}");
    let ready = kubectl_ok(&[
        "get",
        "wasmruntime",
        "broken",
        "-o",
        r#"jsonpath={.status.conditions[?(@.type=="Ready")].reason}"#,
    ]);
    assert_eq!(ready, "InstallFailed");
    let labels = kubectl_ok(&["get", "node", "node-container", "-o", "jsonpath={.metadata.labels}"]);
    assert!(!labels.contains("runtime.spore.dev/broken"), "{labels}");
    assert_eq!(drop_ins("node-container"), Vec::<String>::new());
    assert_eq!(
        read(&node_config("node-container").join("config.toml")),
        read(&node_config("node-container").join("config.toml.at-start"))
    );

    let deleted = kubectl(&["delete", "wasmruntime", "broken", "--wait=true", "--timeout=120s"]);
    assert!(
        deleted.status.success(),
        "deleting the broken runtime hung: {}\n{}",
        text(&deleted.stderr),
        text(&kubectl(&["describe", "wasmruntime", "broken"]).stdout)
    );
    assert!(!kubectl(&["get", "runtimeclass", "broken"]).status.success(), "the RuntimeClass outlived its WasmRuntime");
}

#[test]
fn an_app_for_a_runtime_that_does_not_exist_says_so() {
    ensure_spore_installed();
    let ns = Namespace::new("e2e-noruntime");
    apply(&format!(
        "apiVersion: spore.dev/v1alpha1\nkind: WasmApp\nmetadata: {{name: lost, namespace: {}}}\nspec:\n  runtimeClassName: fast\n  module: {{image: {REGISTRY}/spore/hello-http:1}}\n",
        ns.0
    ));
    let mut reason = String::new();
    wait_until("the app is Degraded", Duration::from_secs(60), || {
        reason = field(&ns, "wasmapp/lost", r#"{.status.conditions[?(@.type=="Degraded")].reason}"#);
        reason == "RuntimeClassNotFound"
    });
    let message = field(&ns, "wasmapp/lost", r#"{.status.conditions[?(@.type=="Ready")].message}"#);
    assert!(message.contains("create a WasmRuntime with runtimeClassName: fast"), "{message}");
}

#[test]
fn leadership_passes_to_another_replica_when_the_leader_stops() {
    ensure_spore_installed();
    let rollout = kubectl(&["-n", SPORE_NAMESPACE, "rollout", "status", "deployment/spore-operator", "--timeout=120s"]);
    assert!(rollout.status.success(), "{}", text(&rollout.stderr));
    let pods = operator_pods();
    assert_eq!(pods.len(), 2, "two operator replicas: {pods:?}");
    let leader = lease_holder();
    let standby = pods.iter().find(|p| **p != leader).expect("a standby").clone();
    let waiting = kubectl_ok(&["-n", SPORE_NAMESPACE, "logs", &standby]);
    assert!(!waiting.contains("became leader"), "both replicas lead:\n{waiting}");

    // A graceful stop releases the Lease: the standby (or the leader's replacement, which
    // races it) takes over at once. Without the release it would take the 30 s grace period
    // plus the 15 s Lease, so 25 s proves the release.
    let stopped = std::time::Instant::now();
    kubectl_ok(&["-n", SPORE_NAMESPACE, "delete", "pod", &leader, "--wait=false"]);
    let mut holder = String::new();
    wait_until(&format!("a replica other than {leader} holds the lease"), Duration::from_secs(25), || {
        holder = lease_holder();
        !holder.is_empty() && holder != leader
    });
    eprintln!("{holder} leads {:?} after {leader} was deleted", stopped.elapsed());
    let live = operator_pods();
    assert!(live.contains(&holder), "the lease holder {holder} is not a running replica: {live:?}");
    wait_until("the new leader reconciles", Duration::from_secs(30), || pod_log(&holder).contains("became leader"));
    // The leader's replacement may still be starting: no log yet is fine.
    for other in live.iter().filter(|p| **p != holder && **p != leader) {
        let log = pod_log(other);
        assert!(!log.contains("became leader"), "{other} leads beside {holder}:\n{log}");
    }
}

/// Puts node-wasm back under the runtime's selector, even when the test fails midway.
struct Reselect;

impl Drop for Reselect {
    fn drop(&mut self) {
        kubectl(&["label", "node", "node-wasm", "spore.dev/node-kind=wasm", "--overwrite"]);
    }
}

fn runtime_label(node: &str) -> String {
    kubectl_ok(&["get", "node", node, "-o", r#"jsonpath={.metadata.labels.runtime\.spore\.dev/spore}"#])
}

#[test]
fn the_wasm_node_leaving_the_selector_is_uninstalled_then_reinstalled() {
    ensure_spore_installed();
    let config = node_config("node-wasm");
    let shim = install_dir("node-wasm").join("containerd-shim-spore-v1");
    assert!(shim.exists() && drop_ins("node-wasm") == ["spore-spore.toml"], "installed at the start");

    let reselect = Reselect;
    kubectl_ok(&["label", "node", "node-wasm", "spore.dev/node-kind-"]);
    wait_until("node-wasm is uninstalled", Duration::from_secs(120), || {
        runtime_label("node-wasm").is_empty() && drop_ins("node-wasm").is_empty() && !shim.exists()
    });
    assert_eq!(read(&config.join("config.toml")), read(&config.join("config.toml.at-start")));
    wait_until("the status forgets node-wasm", Duration::from_secs(60), || {
        kubectl_ok(&["get", "wasmruntime", "spore", "-o", "jsonpath={.status.nodes[*].name}"]).trim() == "node-wasm2"
    });
    assert_eq!(runtime_label("node-wasm2"), "ready", "the other Wasm node keeps the runtime");
    let events = kubectl_ok(&[
        "get",
        "events",
        "-A",
        "--field-selector",
        "involvedObject.kind=WasmRuntime,involvedObject.name=spore",
        "-o",
        "jsonpath={.items[*].reason}",
    ]);
    assert!(events.contains("Uninstalled"), "events: {events}");

    drop(reselect);
    wait_until("node-wasm is installed again", Duration::from_secs(180), || {
        runtime_label("node-wasm") == "ready" && shim.exists() && drop_ins("node-wasm") == ["spore-spore.toml"]
    });
    let ready = kubectl(&["wait", "--for=condition=Ready", "wasmruntime/spore", "--timeout=120s"]);
    assert!(ready.status.success(), "{}", text(&ready.stderr));
}

#[test]
fn objects_the_cluster_rejects_degrade_the_app_with_the_apiservers_message() {
    ensure_spore_installed();
    let ns = Namespace::new("e2e-rejected");
    let app = |name: &str, extra: &str| {
        format!(
            "apiVersion: spore.dev/v1alpha1\nkind: WasmApp\nmetadata: {{name: {name}, namespace: {}}}\nspec:\n  module: {{image: {REGISTRY}/spore/hello-http:1}}\n{extra}",
            ns.0
        )
    };
    let served = "  capabilities: {network: {inbound: [{name: http, port: 8080}]}}\n";
    // The CRD takes any podLabels; the apiserver refuses a label value with a space.
    apply(&app("labels", &format!("  podLabels: {{team: a b}}\n{served}")));
    // A namespace allowed no Services: the cluster refuses the app's Service.
    apply(&format!(
        "apiVersion: v1\nkind: ResourceQuota\nmetadata: {{name: no-services, namespace: {}}}\nspec: {{hard: {{services: '0'}}}}\n",
        ns.0
    ));
    // Until the quota controller has counted the namespace, admission refuses for another reason.
    wait_until("the quota is counted", Duration::from_secs(30), || {
        field(&ns, "resourcequota/no-services", "{.status.hard.services}") == "0"
    });
    apply(&app("served", served));
    for (name, reason, text) in [
        ("labels", "DeploymentRejected", r#"Invalid value: "a b""#),
        ("served", "ServiceRejected", "exceeded quota: no-services"),
    ] {
        let mut now = String::new();
        wait_until(&format!("{name} is {reason}"), Duration::from_secs(60), || {
            now = field(&ns, &format!("wasmapp/{name}"), r#"{.status.conditions[?(@.type=="Degraded")].reason}"#);
            now == reason
        });
        let table = ns.kubectl_ok(&["get", "wasmapp", name]);
        let row: Vec<&str> = table.lines().nth(1).unwrap_or_default().split_whitespace().collect();
        assert_eq!((row[1], row[4]), ("False", reason), "{table}");
        let described = ns.describe(&["wasmapp", name]);
        assert!(described.contains(text), "kubectl describe lacks the apiserver's message {text:?}:\n{described}");
        let generation = field(&ns, &format!("wasmapp/{name}"), "{.metadata.generation}");
        assert_eq!(field(&ns, &format!("wasmapp/{name}"), "{.status.observedGeneration}"), generation);
    }

    // Fixed, both apps recover and the condition clears.
    ns.kubectl_ok(&["delete", "resourcequota", "no-services"]);
    apply(&app("labels", &format!("  podLabels: {{team: web}}\n{served}")));
    for name in ["labels", "served"] {
        wait_ready(&ns, name);
        let degraded = field(&ns, &format!("wasmapp/{name}"), r#"{.status.conditions[?(@.type=="Degraded")].status}"#);
        assert_eq!(degraded, "False", "{name}");
    }
    let events = ns.kubectl_ok(&[
        "get",
        "events",
        "--field-selector=involvedObject.name=labels",
        "-o",
        "jsonpath={.items[*].reason}",
    ]);
    assert!(events.contains("DeploymentRejected") && events.contains("Recovered"), "{events}");
}

/// The `.cwasm` files in `node`'s code cache.
fn cached_code(node: &str) -> std::collections::BTreeSet<String> {
    std::fs::read_dir(state_dir().join(node).join("code-cache"))
        .map(|dir| {
            dir.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
                .filter(|name| name.ends_with(".cwasm"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_new_image_is_precompiled_on_every_wasm_node_and_its_first_pod_starts_on_that_code() {
    ensure_spore_installed();
    let ns = Namespace::new("e2e-precompile");
    let before: Vec<_> = WASM_NODES.iter().map(|node| cached_code(node)).collect();
    // At zero replicas: nothing but the precompile pods can fill the caches.
    apply(&format!(
        "apiVersion: spore.dev/v1alpha1\nkind: WasmApp\nmetadata: {{name: fresh, namespace: {}}}\nspec:\n  module: {{image: {REGISTRY}/spore/hello-precompile:1}}\n  scaling: {{replicas: 0}}\n  capabilities: {{network: {{inbound: [{{name: http, port: 8080}}]}}}}\n",
        ns.0
    ));
    let precompiles = || {
        let listed = ns.jsonpath(
            &["get", "pods", "-l", "spore.dev/precompile-of=fresh"],
            "{range .items[*]}{.spec.nodeName}={.status.phase};{end}",
        );
        let mut pods: Vec<String> = listed.split_terminator(';').map(String::from).collect();
        pods.sort();
        pods
    };
    let mut done: Vec<String> = WASM_NODES.iter().map(|node| format!("{node}=Succeeded")).collect();
    done.sort();
    wait_until("a precompile pod succeeded on each Wasm node", Duration::from_secs(120), || precompiles() == done);
    let added: Vec<_> = WASM_NODES
        .iter()
        .zip(&before)
        .map(|(node, before)| cached_code(node).difference(before).cloned().collect::<Vec<_>>())
        .collect();
    assert!(added.iter().all(|files| files.len() == 1), "one new code file per node: {added:?}");
    assert_eq!(ns.jsonpath(&["get", "pods", "-l", "spore.dev/app=fresh"], "{.items[*].metadata.name}"), "");

    ns.kubectl_ok(&["scale", "wasmapp/fresh", "--replicas=2"]);
    wait_until("both pods are ready", Duration::from_secs(120), || {
        field(&ns, "wasmapp/fresh", "{.status.readyReplicas}") == "2"
    });
    let pod_ip = ns.jsonpath(&["get", "pods", "-l", "spore.dev/app=fresh"], "{.items[0].status.podIP}");
    assert_eq!(curl(&format!("http://{pod_ip}:8080/")).as_deref(), Some(HELLO));
    // The pods loaded the precompiled code: no node compiled anything more (a pod that had
    // compiled would have added its baseline code).
    for ((node, before), added) in WASM_NODES.iter().zip(&before).zip(&added) {
        let now: Vec<_> = cached_code(node).difference(before).cloned().collect();
        assert_eq!(&now, added, "{node} compiled again");
    }
    let served = curl(&format!("http://{pod_ip}:9464/metrics")).expect("the shim serves metrics");
    assert!(served.lines().any(|l| l == "spore_http_code_optimized 1"), "{served}");
}
