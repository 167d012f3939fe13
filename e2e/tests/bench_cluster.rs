//! Benchmarks on the e2e cluster, run by `make bench-cluster` (never by `make test`: they
//! are `#[ignore]`d). Each measures one figure side by side with what a user would run
//! instead (runc pods of a static C server on the same kubelet) and appends a Markdown
//! section to `$SPORE_BENCH_OUT` (docs/benchmarks.md), else prints it.

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use spore_e2e::load::{Load, finish_wrk, start_wrk, start_wrk_host};
use spore_e2e::*;

const NATIVE_IMAGE: &str = "localhost:5010/spore/http-native:1";
/// Pods of the density benchmark (the bench cluster's kubelets take 120).
const DENSITY_PODS: u32 = 100;
/// WasmApps of the operator benchmark.
const MANY_APPS: usize = 1000;

fn report(markdown: &str) {
    match std::env::var_os("SPORE_BENCH_OUT") {
        Some(path) => {
            let mut file = std::fs::OpenOptions::new().append(true).open(&path).expect("the benchmark report exists");
            file.write_all(markdown.as_bytes()).expect("append to the benchmark report");
        }
        None => println!("{markdown}"),
    }
}

/// The two kinds of app compared: a WasmApp of the hello component (Spore, on node-wasm),
/// and a Deployment plus Service of the static C server under runc.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Spore,
    Runc,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Spore => "spore (WasmApp, hello component)",
            Kind::Runc => "runc (Deployment, static C server)",
        }
    }

    /// The manifest of app `name` with `replicas` pods on `node` answering on 8080. Both get
    /// a TCP readiness probe every 5 s (the operator's default).
    fn manifest(self, ns: &Namespace, name: &str, replicas: u32, greeting: &str, node: &str) -> String {
        match self {
            Kind::Spore => hello_app(
                ns,
                name,
                replicas,
                greeting,
                &format!("  scheduling: {{nodeSelector: {{kubernetes.io/hostname: {node}}}}}\n"),
            ),
            Kind::Runc => format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{spore.dev/app: {name}}}}}\n  template:\n    metadata: {{labels: {{spore.dev/app: {name}}}}}\n    spec:\n      nodeSelector: {{kubernetes.io/hostname: {node}}}\n      containers:\n      - name: server\n        image: {NATIVE_IMAGE}\n        env: [{{name: GREETING, value: {greeting}}}]\n        ports: [{{containerPort: 8080}}]\n        readinessProbe: {{tcpSocket: {{port: 8080}}, periodSeconds: 5}}\n---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  selector: {{spore.dev/app: {name}}}\n  ports: [{{name: http, port: 8080}}]\n",
                ns = ns.0
            ),
        }
    }

    /// What `kubectl scale` and `kubectl patch` act on.
    fn object(self, name: &str) -> String {
        match self {
            Kind::Spore => format!("wasmapp/{name}"),
            Kind::Runc => format!("deployment/{name}"),
        }
    }

    /// A merge patch for the CRD; a strategic one for the Deployment (it merges the
    /// containers list by name instead of replacing it).
    fn patch_type(self) -> &'static str {
        match self {
            Kind::Spore => "--type=merge",
            Kind::Runc => "--type=strategic",
        }
    }

    fn env_patch(self, greeting: &str) -> String {
        match self {
            Kind::Spore => format!(r#"{{"spec":{{"env":[{{"name":"GREETING","value":"{greeting}"}}]}}}}"#),
            Kind::Runc => format!(
                r#"{{"spec":{{"template":{{"spec":{{"containers":[{{"name":"server","env":[{{"name":"GREETING","value":"{greeting}"}}]}}]}}}}}}}}"#
            ),
        }
    }

    /// The shim binary serving this kind's pods.
    fn shim(self) -> &'static str {
        match self {
            Kind::Spore => "containerd-shim-spore-v1",
            Kind::Runc => "containerd-shim-runc-v2",
        }
    }
}

fn ready_replicas(ns: &Namespace, name: &str) -> u32 {
    ns.jsonpath(&["get", &format!("deployment/{name}")], "{.status.readyReplicas}").parse().unwrap_or(0)
}

fn pod_count(ns: &Namespace, name: &str) -> usize {
    ns.jsonpath(&["get", "pods", "-l", &format!("spore.dev/app={name}")], "{.items[*].metadata.name}")
        .split_whitespace()
        .count()
}

/// Each process's children, from /proc/*/stat.
fn children() -> HashMap<u32, Vec<u32>> {
    let mut map: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // `pid (comm) state ppid ...`: comm may hold spaces, so split after its ')'.
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse().ok());
        if let Some(ppid) = ppid {
            map.entry(ppid).or_default().push(pid);
        }
    }
    map
}

/// PSS of `root` and all its descendants, in kB (/proc/PID/smaps_rollup).
fn tree_pss_kb(root: u32, children: &HashMap<u32, Vec<u32>>) -> u64 {
    let rollup = std::fs::read_to_string(format!("/proc/{root}/smaps_rollup")).unwrap_or_default();
    let own = rollup
        .lines()
        .find(|l| l.starts_with("Pss:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    own + children.get(&root).map_or(0, |kids| kids.iter().map(|k| tree_pss_kb(*k, children)).sum())
}

fn mem_available_kb() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").expect("/proc/meminfo");
    meminfo
        .lines()
        .find(|l| l.starts_with("MemAvailable:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .expect("MemAvailable in /proc/meminfo")
}

/// One side of the density benchmark.
struct Density {
    to_ready: Duration,
    pss_per_pod_mb: f64,
    node_memory_per_pod_mb: f64,
}

/// Starts `DENSITY_PODS` pods of `kind` on node-wasm, times them until all are Ready, and
/// measures what each costs; then removes them.
fn density(ns: &Namespace, kind: Kind) -> Density {
    let name = match kind {
        Kind::Spore => "dense-wasm",
        Kind::Runc => "dense-runc",
    };
    let before: Vec<u32> = node_shims("node-wasm", kind.shim());
    let available_before = mem_available_kb();
    let start = Instant::now();
    apply(&kind.manifest(ns, name, DENSITY_PODS, "dense", "node-wasm"));
    wait_until(&format!("{DENSITY_PODS} {name} pods Ready"), Duration::from_secs(900), || {
        ready_replicas(ns, name) == DENSITY_PODS
    });
    let to_ready = start.elapsed();
    // Let the pods settle (first requests of the probes, lazily touched pages).
    std::thread::sleep(Duration::from_secs(15));
    let tree = children();
    let new: Vec<u32> = node_shims("node-wasm", kind.shim()).into_iter().filter(|p| !before.contains(p)).collect();
    let pss_kb: u64 = new.iter().map(|p| tree_pss_kb(*p, &tree)).sum();
    let used_kb = available_before.saturating_sub(mem_available_kb());
    ns.kubectl_ok(&["delete", &kind.object(name), "--wait"]);
    wait_until(&format!("the {name} pods are gone"), Duration::from_secs(600), || pod_count(ns, name) == 0);
    let per_pod = |kb: u64| kb as f64 / 1024.0 / f64::from(DENSITY_PODS);
    Density { to_ready, pss_per_pod_mb: per_pod(pss_kb), node_memory_per_pod_mb: per_pod(used_kb) }
}

#[test]
#[ignore = "benchmark: run by `make bench-cluster`"]
fn density_100_pods_on_one_node_spore_vs_runc() {
    ensure_spore_installed();
    let ns = Namespace::new("bench-density");
    let spore = density(&ns, Kind::Spore);
    let runc = density(&ns, Kind::Runc);
    let row = |kind: Kind, d: &Density| {
        format!(
            "| {} | {:.1} s | {:.1} MB | {:.1} MB |\n",
            kind.label(),
            d.to_ready.as_secs_f64(),
            d.pss_per_pod_mb,
            d.node_memory_per_pod_mb
        )
    };
    report(&format!(
        "\n## Cluster: {DENSITY_PODS} pods on one node, Spore vs runc\n\n\
         {DENSITY_PODS} replicas on node-wasm (one kubelet, one containerd), created at once: the hello\n\
         component as a WasmApp, then a Deployment of the static C server (`tests/native/http-server.c`)\n\
         under runc; both with a TCP readiness probe every 5 s. Time from `kubectl apply` until the\n\
         Deployment reports all replicas Ready; PSS of each pod's shim and everything under it (runc:\n\
         the shim, pause and the server); the node's MemAvailable drop, which adds kernel memory\n\
         (netns, veth, cgroups) and is noisier. Reproduce: `make bench-cluster`\n\
         (`cargo test --release -p spore-e2e --test bench_cluster -- --ignored density`).\n\n\
         | pods | until all Ready | PSS per pod | node memory per pod |\n|---|---:|---:|---:|\n{}{}\
         | **spore / runc** | **{:.2}x** | **{:.2}x** | **{:.2}x** |\n",
        row(Kind::Spore, &spore),
        row(Kind::Runc, &runc),
        spore.to_ready.as_secs_f64() / runc.to_ready.as_secs_f64(),
        spore.pss_per_pod_mb / runc.pss_per_pod_mb,
        spore.node_memory_per_pod_mb / runc.node_memory_per_pod_mb,
    ));
}

/// A rolling update (an env change) and then a scale-down from 2 to 1 while wrk loads the
/// Service: what wrk saw.
fn rollout_under_load(ns: &Namespace, kind: Kind) -> Load {
    let name = match kind {
        Kind::Spore => "roll-wasm",
        Kind::Runc => "roll-runc",
    };
    let node = if kind == Kind::Spore { "node-wasm" } else { CONTAINER_NODE };
    apply(&kind.manifest(ns, name, 2, "one", node));
    wait_until(&format!("{name} Ready"), Duration::from_secs(120), || ready_replicas(ns, name) == 2);
    let ip = ns.jsonpath(&["get", &format!("service/{name}")], "{.spec.clusterIP}");
    let url = format!("http://{ip}:8080/");
    wait_until("the Service answers", Duration::from_secs(30), || curl(&url).is_some());

    let wrk = start_wrk(&url, 45);
    std::thread::sleep(Duration::from_secs(3));
    ns.kubectl_ok(&["patch", &kind.object(name), kind.patch_type(), "-p", &kind.env_patch("two")]);
    let rolled = ns.kubectl(&["rollout", "status", &format!("deployment/{name}"), "--timeout=120s"]);
    assert!(rolled.status.success(), "rollout: {}", text(&rolled.stderr));
    std::thread::sleep(Duration::from_secs(8));
    ns.kubectl_ok(&["scale", &kind.object(name), "--replicas=1"]);
    wait_until("one pod left", Duration::from_secs(90), || pod_count(ns, name) == 1);
    let load = finish_wrk(wrk);
    ns.kubectl_ok(&["delete", &kind.object(name), "--wait"]);
    load
}

#[test]
#[ignore = "benchmark: run by `make bench-cluster`"]
fn rollout_and_scale_down_under_load_spore_vs_runc() {
    ensure_spore_installed();
    let ns = Namespace::new("bench-rollout");
    let spore = rollout_under_load(&ns, Kind::Spore);
    let runc = rollout_under_load(&ns, Kind::Runc);
    let row =
        |kind: Kind, l: &Load| format!("| {} | {} | {} | {} |\n", kind.label(), l.requests, l.socket_errors, l.non_2xx);
    report(&format!(
        "\n## Cluster: a rolling update and a scale-down under load\n\n\
         Two replicas behind their Service, `wrk -t2 -c4 -d45s` on the ClusterIP; 3 s in, an env\n\
         change rolls the pods, 8 s after the rollout the app is scaled to 1. The hello component\n\
         as a WasmApp (Spore keeps accepting for `spore.dev/drain-delay`, 5 s, after SIGTERM, then\n\
         drains, so kube-proxy has dropped the pod before it stops listening); a plain Deployment\n\
         of the static C server under runc, as most users deploy one (no preStop hook; it answers\n\
         with `connection: close`, so wrk reconnects per request). Goal: 0 failed for Spore.\n\
         Reproduce: `make bench-cluster` (`... --test bench_cluster -- --ignored rollout`).\n\n\
         | app | requests | socket errors | non-2xx |\n|---|---:|---:|---:|\n{}{}",
        row(Kind::Spore, &spore),
        row(Kind::Runc, &runc),
    ));
}

/// The leading operator replica's resident memory in MB (its process, found by the pod
/// name CRI puts in `HOSTNAME`).
fn leader_rss_mb() -> f64 {
    let leader = operator_leader();
    let hostname = format!("HOSTNAME={leader}");
    let pid = std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())))
        .find(|e| {
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let environ = std::fs::read(e.path().join("environ")).unwrap_or_default();
            cmdline.starts_with(b"/spore-operator") && environ.split(|b| *b == 0).any(|v| v == hostname.as_bytes())
        })
        .unwrap_or_else(|| panic!("no spore-operator process of pod {leader}"));
    let status = std::fs::read_to_string(pid.path().join("status")).expect("the operator's status");
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .expect("VmRSS");
    kb / 1024.0
}

/// Requests the apiserver has dispatched for service accounts outside kube-system (its
/// `service-accounts` flow schema): the operator's, while nothing else runs under one.
fn service_account_requests() -> f64 {
    let metrics = kubectl_ok(&["get", "--raw", "/metrics"]);
    metrics
        .lines()
        .filter(|l| l.starts_with("apiserver_flowcontrol_dispatched_requests_total{"))
        .filter(|l| l.contains(r#"flow_schema="service-accounts""#))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .sum()
}

fn apps_with_status(ns: &Namespace) -> usize {
    ns.jsonpath(&["get", "wasmapps"], "{range .items[*]}{.status.observedGeneration}{\"\\n\"}{end}")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

#[test]
#[ignore = "benchmark: run by `make bench-cluster`"]
fn scale_1000_apps_operator_memory_status_time_and_idle_requests() {
    ensure_spore_installed();
    let ns = Namespace::new("bench-many");
    let (rss_before, reconciles_before) = (leader_rss_mb(), operator_reconciles());
    let manifests: String = (0..MANY_APPS)
        .map(|i| {
            format!(
                "---\napiVersion: spore.dev/v1alpha1\nkind: WasmApp\nmetadata: {{name: app-{i:04}, namespace: {}}}\nspec:\n  module: {{image: {REGISTRY}/spore/hello-http:1}}\n  scaling: {{replicas: 0}}\n  capabilities: {{network: {{inbound: [{{name: http, port: 8080}}]}}}}\n",
                ns.0
            )
        })
        .collect();
    let start = Instant::now();
    let mut create = Command::new("kubectl")
        .args(["create", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("kubectl runs");
    create.stdin.take().expect("stdin").write_all(manifests.as_bytes()).expect("write the manifests");
    assert!(create.wait().expect("kubectl create finishes").success(), "kubectl create of {MANY_APPS} apps failed");
    let created = start.elapsed();
    wait_until(&format!("all {MANY_APPS} apps have a status"), Duration::from_secs(1200), || {
        std::thread::sleep(Duration::from_secs(2));
        apps_with_status(&ns) == MANY_APPS
    });
    let to_status = start.elapsed();
    let rss_busy = leader_rss_mb();
    // Each app's own objects changing (Deployment created, then its status) wake it again:
    // the operator is done once its reconcile count stops moving.
    let mut last = operator_reconciles();
    let mut still_since = Instant::now();
    wait_until("the operator goes quiet", Duration::from_secs(900), || {
        std::thread::sleep(Duration::from_secs(2));
        let now = operator_reconciles();
        if now != last {
            (last, still_since) = (now, Instant::now());
        }
        still_since.elapsed() >= Duration::from_secs(20)
    });
    let to_quiet = still_since.duration_since(start);

    // Idle: every app settled. What the operator asks of the apiserver over a minute.
    let (requests, reconciles, idle) = (service_account_requests(), operator_reconciles(), Duration::from_secs(60));
    std::thread::sleep(idle);
    let requests_per_second = (service_account_requests() - requests) / idle.as_secs_f64();
    let idle_reconciles = operator_reconciles() - reconciles;
    let rss_idle = leader_rss_mb();
    report(&format!(
        "\n## Cluster: the operator with {MANY_APPS} WasmApps\n\n\
         {MANY_APPS} WasmApps (`replicas: 0`, one inbound port, so each gets a Deployment and a Service)\n\
         created with one `kubectl create` in one namespace; the leading operator replica reconciles\n\
         them. Memory is the leader's VmRSS; idle requests are what the apiserver dispatched for\n\
         service accounts (its `service-accounts` flow schema: the operator's two replicas, lease\n\
         renewals included) over 60 s, once the operator's reconcile count has stood still for 20 s.\n\
         Goals: <= 64 MiB, no resync storm.\n\
         Reproduce: `make bench-cluster` (`... --test bench_cluster -- --ignored scale_1000`).\n\n\
         | figure | value |\n|---|---:|\n\
         | operator RSS before the apps | {rss_before:.1} MB |\n\
         | operator RSS when every app has its status | {rss_busy:.1} MB |\n\
         | operator RSS idle with {MANY_APPS} apps | {rss_idle:.1} MB |\n\
         | `kubectl create` of {MANY_APPS} apps | {:.1} s |\n\
         | until every app has its status | {:.1} s |\n\
         | until the operator is quiet (last reconcile) | {:.1} s |\n\
         | reconciles per app until quiet | {:.1} |\n\
         | reconciles in the idle minute | {idle_reconciles} |\n\
         | API requests per second, idle | {requests_per_second:.2} |\n",
        created.as_secs_f64(),
        to_status.as_secs_f64(),
        to_quiet.as_secs_f64(),
        (reconciles - reconciles_before) as f64 / MANY_APPS as f64,
    ));
}

/// Cold starts of each app: requests to an app at zero until answered.
const COLD_STARTS: usize = 20;

/// A scale-to-zero WasmApp on node-wasm, idle after 2 s; `runtime_class` runc runs the
/// static C server image as an ordinary container behind the same activator.
fn zero_app(ns: &Namespace, name: &str, image: &str, runtime_class: Option<&str>) -> String {
    let class = runtime_class.map(|c| format!("  runtimeClassName: {c}\n")).unwrap_or_default();
    format!(
        "apiVersion: spore.dev/v1alpha1\nkind: WasmApp\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  module: {{image: {image}}}\n{class}  env: [{{name: GREETING, value: cold}}]\n  capabilities: {{network: {{inbound: [{{name: http, port: 8080}}]}}}}\n  scheduling: {{nodeSelector: {{kubernetes.io/hostname: node-wasm}}}}\n  scaling: {{autoscale: {{minReplicas: 0, maxReplicas: 1, targetConcurrency: 10, scaleToZeroAfter: 2s}}}}\n",
        ns = ns.0
    )
}

/// Seconds from a request to the app at zero until its answer, `COLD_STARTS` times.
fn cold_starts(ns: &Namespace, name: &str, by_hand: bool) -> Vec<f64> {
    let ip = ns.jsonpath(&["get", &format!("service/{name}")], "{.spec.clusterIP}");
    let mut times = Vec::new();
    for _ in 0..COLD_STARTS {
        // Spore's pods go to zero by themselves (idle 2 s after the stable window); runc pods
        // export no concurrency metric, and the autoscaler never scales on missing metrics,
        // so they go by hand. At zero the Service routes to the activator (pods still
        // draining get no new connection); kube-proxy syncs once a second.
        if by_hand {
            // Past the autoscaler's burst window (2 s), which still counts the last request.
            std::thread::sleep(Duration::from_secs(3));
            ns.kubectl_ok(&["scale", &format!("wasmapp/{name}"), "--replicas=0"]);
        }
        wait_until(&format!("{name} at zero"), Duration::from_secs(120), || {
            let replicas = ns.jsonpath(&["get", &format!("wasmapp/{name}")], "{.spec.scaling.replicas}");
            let activator =
                ns.jsonpath(&["get", &format!("endpointslice/{name}-spore-activator")], "{.endpoints[*].addresses[0]}");
            replicas == "0" && !activator.is_empty()
        });
        // From zero means no pod left: a draining one could still answer.
        wait_until(&format!("{name}'s last pod gone"), Duration::from_secs(60), || {
            ns.jsonpath(&["get", "pods", "-l", &format!("spore.dev/app={name}")], "{.items[*].metadata.name}")
                .is_empty()
        });
        std::thread::sleep(Duration::from_secs(2));
        let start = Instant::now();
        let body = curl_for(&format!("http://{ip}:8080/"), 30);
        times.push(start.elapsed().as_secs_f64());
        assert!(body.is_some(), "a cold start of {name} failed");
    }
    times
}

fn curl_for(url: &str, seconds: u32) -> Option<String> {
    let out = Command::new("curl").args(["-s", "-f", "--max-time", &seconds.to_string(), url]).output().ok()?;
    out.status.success().then(|| text(&out.stdout))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[test]
#[ignore = "benchmark: run by `make bench-cluster`"]
fn cold_start_from_zero_through_the_activator_spore_vs_runc() {
    ensure_spore_installed();
    let ns = Namespace::new("bench-cold");
    // runc behind the same activator and autoscaler: a RuntimeClass for containerd's default
    // handler, and the label the operator looks for on nodes serving a class.
    apply("apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: runc}\nhandler: runc\n");
    kubectl_ok(&["label", "node", "node-wasm", "runtime.spore.dev/runc=ready", "--overwrite"]);
    apply(&zero_app(&ns, "cold-spore", &format!("{REGISTRY}/spore/hello-http:1"), None));
    apply(&zero_app(&ns, "cold-runc", NATIVE_IMAGE, Some("runc")));
    let mut rows = Vec::new();
    for (label, name, by_hand) in
        [("Spore (hello component)", "cold-spore", false), ("runc (static C server)", "cold-runc", true)]
    {
        let mut times = cold_starts(&ns, name, by_hand);
        eprintln!("{label}: {times:.3?}");
        times.sort_by(f64::total_cmp);
        rows.push((label, percentile(&times, 50.0), percentile(&times, 99.0), times[0], times[times.len() - 1]));
    }
    let _ = kubectl(&["label", "node", "node-wasm", "runtime.spore.dev/runc-"]);
    let _ = kubectl(&["delete", "runtimeclass", "runc"]);
    let table: String = rows
        .iter()
        .map(|(label, p50, p99, min, max)| {
            format!(
                "| {label} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms |\n",
                p50 * 1e3,
                p99 * 1e3,
                min * 1e3,
                max * 1e3
            )
        })
        .collect();
    report(&format!(
        "\n## Cluster: cold start from zero through the activator, Spore vs runc\n\n\
         `make bench-cluster` (`cargo test -p spore-e2e --test bench_cluster -- --ignored cold_start`): {COLD_STARTS} \
         requests each to an app at zero (`minReplicas: 0`, idle after 2 s; runc scaled to 0 by `kubectl scale`, its pods export no concurrency metric; each request once the \
         last pod is gone) through its Service, from the request to the response; both on node-wasm behind the same activator and autoscaler, runc \
         running the static C server as the app's container. Goal: Spore p50 <= 400 ms, p99 <= 1 s.\n\n\
         | app | p50 | p99 | fastest | slowest |\n|---|---|---|---|---|\n{table}\
         | **spore / runc (p50)** | **{:.2}x** | | | |\n",
        rows[0].1 / rows[1].1
    ));
}

/// Seconds of each warm-path load.
const WARM_SECONDS: u32 = 20;

#[test]
#[ignore = "benchmark: run by `make bench-cluster`"]
fn warm_path_through_the_service_and_through_the_activator() {
    ensure_spore_installed();
    let ns = Namespace::new("bench-warm");
    // A scale-to-zero app held at one warm pod for the whole run.
    let app = zero_app(&ns, "warm", &format!("{REGISTRY}/spore/hello-http:1"), None).replace("2s}", "10m}");
    apply(&app);
    wait_until("warm has a ready pod behind its Service", Duration::from_secs(120), || {
        let pods = ns.jsonpath(&["get", "endpointslice/warm-spore-pods"], "{.endpoints[*].addresses[0]}");
        ns.jsonpath(&["get", "wasmapp/warm"], "{.status.readyReplicas}") == "1" && !pods.is_empty()
    });
    let service = ns.jsonpath(&["get", "service/warm"], "{.spec.clusterIP}");
    let activator =
        kubectl_ok(&["-n", "spore-system", "get", "service/spore-activator", "-o", "jsonpath={.spec.clusterIP}"]);
    let host = format!("warm.{}", ns.0);
    let mut rows = Vec::new();
    for (label, url, host) in [
        ("the app's Service (to its pod: the warm path)", format!("http://{service}:8080/"), None),
        (
            "the activator's Service, by Host (the path at zero)",
            format!("http://{activator}:8012/"),
            Some(host.as_str()),
        ),
    ] {
        let load = finish_wrk(start_wrk_host(&url, host, WARM_SECONDS, 4));
        assert_eq!(load.failed(), 0, "{label}: {load:?}");
        rows.push((label, load.requests as f64 / f64::from(WARM_SECONDS)));
    }
    let table: String = rows.iter().map(|(label, rps)| format!("| {label} | {rps:.0} |\n")).collect();
    report(&format!(
        "\n## Cluster: the warm path, with and without the activator\n\n\
         `make bench-cluster` (`... --test bench_cluster -- --ignored warm_path`): a scale-to-zero app with one \
         ready pod, `wrk -t2 -c4 -d{WARM_SECONDS}s` from the host, once through the app's Service (its \
         EndpointSlice names the pod: the activator is not in the path) and once through the activator's \
         Service with the app's Host (what a request at zero takes, once a pod answers).\n\n\
         | path | requests/s |\n|---|---:|\n{table}\
         | **activator / direct** | **{:.2}x** |\n",
        rows[1].1 / rows[0].1
    ));
}

/// A WasmApp of the Python component image `image` with `replicas` pods, on node-wasm only
/// (so only that node precompiles it).
fn python_app(ns: &Namespace, name: &str, image: &str, replicas: u32) -> String {
    format!(
        "apiVersion: spore.dev/v1alpha1\nkind: WasmApp\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  module: {{image: {REGISTRY}/spore/{image}:1}}\n  capabilities: {{network: {{inbound: [{{name: http, port: 8080}}]}}}}\n  scaling: {{replicas: {replicas}}}\n  scheduling: {{nodeSelector: {{kubernetes.io/hostname: node-wasm}}}}\n",
        ns = ns.0
    )
}

/// Seconds from `start` (which creates or scales the app) until its pod answers a 200.
fn seconds_to_first_200(ns: &Namespace, name: &str, start: impl FnOnce()) -> f64 {
    let began = Instant::now();
    start();
    let selector = format!("spore.dev/app={name}");
    let mut ip = String::new();
    while began.elapsed() < Duration::from_secs(300) {
        if ip.is_empty() {
            ip = ns.jsonpath(&["get", "pods", "-l", &selector], "{.items[0].status.podIP}");
        } else if curl_for(&format!("http://{ip}:8080/"), 1).is_some() {
            return began.elapsed().as_secs_f64();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{name} did not answer within 300 s");
}

#[test]
#[ignore = "benchmark: run by `make bench-cluster` (after `make bench-guests`)"]
fn first_pod_of_a_new_image_with_and_without_node_precompile() {
    let guests = repo_root().join("target/guests/python-http.wasm");
    assert!(guests.is_file(), "{} is missing: run `make bench-guests`, then `make bench-cluster`", guests.display());
    ensure_spore_installed();
    let ns = Namespace::new("bench-first-pod");
    // With: the app exists at zero replicas until its precompile pod is done, then scales to one.
    apply(&python_app(&ns, "py-pre", "python-precompiled", 0));
    let compiled = Instant::now();
    wait_until("py-pre's precompile pod succeeded", Duration::from_secs(600), || {
        ns.jsonpath(&["get", "pods", "-l", "spore.dev/precompile-of=py-pre"], "{.items[*].status.phase}") == "Succeeded"
    });
    let precompile = compiled.elapsed().as_secs_f64();
    let with = seconds_to_first_200(&ns, "py-pre", || {
        ns.kubectl_ok(&["scale", "wasmapp/py-pre", "--replicas=1"]);
    });
    // Without: created with one replica, whose pod starts on baseline code while the node's
    // precompile pod compiles beside it (what a brand-new app gets).
    let without = seconds_to_first_200(&ns, "py-fresh", || apply(&python_app(&ns, "py-fresh", "python-fresh", 1)));
    eprintln!("precompile {precompile:.1} s, first 200 with {with:.2} s, without {without:.2} s");
    report(&format!(
        "\n## Cluster: the first pod of a new image, with and without node precompile\n\n\
         `make bench-guests bench-cluster` (`... --test bench_cluster -- --ignored first_pod`): the Python \
         component (`tests/guests/python-http`, componentize-py, {:.0} MB) under an image digest node-wasm has \
         never compiled, one pod, from `kubectl` to the first 200 on the pod's IP. With precompile: the app \
         was created at zero replicas and scaled to one after its precompile pod finished ({precompile:.1} s \
         from the app's creation, optimized code). Without: the app is created with one replica; its pod \
         starts on baseline code while the node's precompile pod runs beside it.\n\n\
         | first pod | to first 200 |\n|---|---:|\n\
         | with precompile (optimized code cached) | {with:.2} s |\n\
         | without (baseline code, compiled by the pod) | {without:.2} s |\n",
        std::fs::metadata(&guests).map(|m| m.len()).unwrap_or(0) as f64 / 1e6
    ));
}
