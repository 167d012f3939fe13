//! Scale to zero on the real cluster: an idle app loses its pods and keeps its Service; a
//! request from a container pod wakes it through the activator; load over the target scales
//! it up and idleness back to zero; a module that never gets ready answers 503 with the
//! reason; an unknown host gets 404; the activator restarted while an app is at zero answers
//! once replaced; so does an operator restart, which moves no route; a warm app's requests go
//! straight to its pods.
//! Run by `make e2e` (one test at a time: one of them restarts the activator).

use std::process::Command;
use std::time::{Duration, Instant};

use spore_e2e::load::{finish_wrk, start_wrk_with};
use spore_e2e::*;

const HELLO: &str = "hello from spore\n";

/// A hello app that scales between 0 and 5 pods at 5 requests per pod, idle after `idle`.
fn idle_app(ns: &Namespace, name: &str, image: &str, idle: &str) -> String {
    format!(
        "apiVersion: spore.dev/v1alpha1\nkind: WasmApp\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  module: {{image: {REGISTRY}/spore/{image}:1}}\n  capabilities: {{network: {{inbound: [{{name: http, port: 8080}}]}}}}\n  scaling: {{autoscale: {{minReplicas: 0, maxReplicas: 5, targetConcurrency: 5, scaleToZeroAfter: {idle}}}}}\n",
        ns = ns.0
    )
}

fn field(ns: &Namespace, what: &str, path: &str) -> String {
    ns.jsonpath(&["get", what], path)
}

fn pod_count(ns: &Namespace, app: &str) -> usize {
    ns.jsonpath(&["get", "pods", "-l", &format!("spore.dev/app={app}")], "{.items[*].metadata.name}")
        .split_whitespace()
        .count()
}

/// Waits until the app is at zero: no pod, Ready with reason Idle.
fn wait_idle(ns: &Namespace, app: &str, timeout: Duration) {
    let wasmapp = format!("wasmapp/{app}");
    wait_until(&format!("{app} is idle at zero"), timeout, || {
        pod_count(ns, app) == 0
            && field(
                ns,
                &wasmapp,
                r#"{.status.conditions[?(@.type=="Ready")].status}/{.status.conditions[?(@.type=="Ready")].reason}"#,
            ) == "True/Idle"
    });
}

/// Spore installed, and in a new namespace `ns` the hello app `app`, idle after 5 s, at zero.
fn hello_at_zero(ns: &str, app: &str) -> Namespace {
    ensure_spore_installed();
    let ns = Namespace::new(ns);
    apply(&idle_app(&ns, app, "hello-http", "5s"));
    wait_ready(&ns, app);
    wait_idle(&ns, app, Duration::from_secs(90));
    ns
}

fn wait_ready(ns: &Namespace, app: &str) {
    let ready = ns.kubectl(&["wait", "--for=condition=Ready", &format!("wasmapp/{app}"), "--timeout=120s"]);
    assert!(ready.status.success(), "{app} not Ready:\n{}", ns.describe(&["wasmapp", app]));
}

fn cluster_ip(ns: &Namespace, app: &str) -> String {
    field(ns, &format!("service/{app}"), "{.spec.clusterIP}")
}

/// Reasons of the app's Events, oldest first.
fn event_reasons(ns: &Namespace, app: &str) -> String {
    ns.jsonpath(
        &["get", "events", "--field-selector", &format!("involvedObject.name={app},involvedObject.kind=WasmApp")],
        "{.items[*].reason}",
    )
}

/// Status code, body and seconds of a GET, waiting up to `max` seconds.
fn get(url: &str, host: Option<&str>, max: u32) -> (u16, String, f64) {
    let mut args = vec![
        "-s".to_string(),
        "--max-time".into(),
        max.to_string(),
        "-w".into(),
        "\n%{http_code} %{time_total}".into(),
    ];
    if let Some(host) = host {
        args.extend(["-H".into(), format!("Host: {host}")]);
    }
    args.push(url.into());
    let out = Command::new("curl").args(&args).output().expect("curl runs");
    let out = text(&out.stdout);
    let (body, tail) = out.rsplit_once('\n').unwrap_or(("", &out));
    let (code, time) = tail.split_once(' ').unwrap_or(("0", "0"));
    (code.parse().unwrap_or(0), body.to_string(), time.parse().unwrap_or(0.0))
}

/// The IPs of the activator's pods.
fn activator_ips() -> Vec<String> {
    let ips = kubectl_ok(&[
        "-n",
        SPORE_NAMESPACE,
        "get",
        "pods",
        "-l",
        "app.kubernetes.io/component=activator",
        "--field-selector=status.phase=Running",
        "-o",
        "jsonpath={.items[*].status.podIP}",
    ]);
    ips.split_whitespace().map(str::to_string).collect()
}

/// `metric{...namespace="ns",app="app"...}` summed over every activator pod.
fn activator_metric(metric: &str, ns: &Namespace, app: &str) -> f64 {
    let labels = [format!("namespace=\"{}\"", ns.0), format!("app=\"{app}\"")];
    activator_ips()
        .iter()
        .filter_map(|ip| curl(&format!("http://{ip}:9090/metrics")))
        .flat_map(|text| {
            text.lines()
                .filter(|l| l.starts_with(&format!("{metric}{{")) && labels.iter().all(|w| l.contains(w.as_str())))
                .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

/// One series' value summed over every activator pod.
fn activator_series(series: &str) -> f64 {
    activator_ips()
        .iter()
        .filter_map(|ip| curl(&format!("http://{ip}:9090/metrics")))
        .filter_map(|text| text.lines().find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok()))
        .sum()
}

const WAKES_SCALED: &str = r#"spore_activator_wakes_total{outcome="scaled"}"#;

#[test]
fn an_idle_app_goes_to_zero_and_a_request_from_a_container_pod_wakes_it() {
    let ns = hello_at_zero("e2e-s2z-wake", "sleepy");
    assert_eq!(field(&ns, "wasmapp/sleepy", "{.status.replicas}"), "0");
    assert!(event_reasons(&ns, "sleepy").contains("ScaledToZero"), "{}", event_reasons(&ns, "sleepy"));
    let colds_before = activator_metric("spore_activator_cold_start_seconds_count", &ns, "sleepy");
    let wakes_before = activator_series(WAKES_SCALED);

    // By the Service's DNS name, from a runc pod on the container node: nothing changes for
    // the client at zero.
    let url = format!("http://sleepy.{}.svc.cluster.local:8080/", ns.0);
    apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: client, namespace: {ns}}}\nspec:\n  nodeSelector: {{spore.dev/node-kind: container}}\n  restartPolicy: Never\n  containers:\n  - name: wget\n    image: {REGISTRY}/spore/busybox:1\n    command: [/bin/busybox, wget, -q, -O, -, '{url}']\n",
        ns = ns.0
    ));
    let mut phase = String::new();
    wait_until("the busybox client finished", Duration::from_secs(120), || {
        phase = field(&ns, "pod/client", "{.status.phase}");
        phase == "Succeeded" || phase == "Failed"
    });
    assert_eq!(phase, "Succeeded", "the client's request failed:\n{}", ns.describe(&["pod/client"]));
    assert_eq!(ns.kubectl_ok(&["logs", "client"]), HELLO);
    assert!(pod_count(&ns, "sleepy") >= 1, "the request woke the app");
    // The activator scaled it itself, at once, rather than leaving it to the autoscaler's
    // next look at the held requests.
    assert!(activator_series(WAKES_SCALED) > wakes_before, "the activator's wake failed; the autoscaler woke it");
    assert!(
        activator_metric("spore_activator_cold_start_seconds_count", &ns, "sleepy") > colds_before,
        "the activator recorded the cold start"
    );
}

#[test]
fn load_over_the_target_scales_up_and_idleness_scales_back_to_zero() {
    ensure_spore_installed();
    let ns = Namespace::new("e2e-s2z-load");
    apply(&idle_app(&ns, "busy", "hello-http", "5s"));
    wait_ready(&ns, "busy");
    let ip = cluster_ip(&ns, "busy");
    // Ready is the app's view; the Service answers once kube-proxy has programmed it (wrk
    // would report a connect timeout and send nothing).
    wait_until("the new Service answers", Duration::from_secs(60), || {
        get(&format!("http://{ip}:8080/"), None, 5).0 == 200
    });
    // 40 connections to requests of 50 ms: about 40 in flight, against 5 per pod.
    let wrk = start_wrk_with(&format!("http://{ip}:8080/sleep?ms=50"), 20, 40);
    let start = Instant::now();
    let mut most = 0;
    while start.elapsed() < Duration::from_secs(20) {
        most = most.max(field(&ns, "wasmapp/busy", "{.spec.scaling.replicas}").parse().unwrap_or(0));
        std::thread::sleep(Duration::from_millis(500));
    }
    let load = finish_wrk(wrk);
    assert!(most >= 3, "load of 40 in flight against a target of 5 reached only {most} replicas");
    assert_eq!(load.failed(), 0, "no request failed while the app scaled up: {load:?}");
    let events = event_reasons(&ns, "busy");
    assert!(events.contains("ScaledUp"), "{events}");
    let note = ns.jsonpath(
        &["get", "events", "--field-selector", "involvedObject.name=busy,reason=ScaledUp"],
        "{.items[0].message}",
    );
    assert!(note.contains("in-flight requests / target 5"), "the event says why: {note}");

    // Idle again: down, then to zero.
    wait_idle(&ns, "busy", Duration::from_secs(120));
    assert!(event_reasons(&ns, "busy").contains("ScaledToZero"));
}

#[test]
fn an_app_whose_pods_never_get_ready_answers_held_requests_with_503_and_the_reason() {
    ensure_spore_installed();
    let ns = Namespace::new("e2e-s2z-corrupt");
    // Not idle for long: the failing pod stays, and with it the reason.
    apply(&idle_app(&ns, "broken", "corrupt", "10m"));
    wait_until("the app is Degraded", Duration::from_secs(90), || {
        field(&ns, "wasmapp/broken", r#"{.status.conditions[?(@.type=="Degraded")].status}"#) == "True"
    });
    let reason = field(&ns, "wasmapp/broken", r#"{.status.conditions[?(@.type=="Degraded")].reason}"#);
    let (code, body, seconds) = get(&format!("http://{}:8080/", cluster_ip(&ns, "broken")), None, 30);
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("did not become ready within 10s") && body.contains(&reason), "{body}");
    assert!((9.0..20.0).contains(&seconds), "answered after the hold timeout (10s), not {seconds}s");
}

#[test]
fn a_request_for_an_unknown_host_gets_404_naming_it() {
    ensure_spore_installed();
    let ip = activator_ips().into_iter().next().expect("an activator runs");
    let (code, body, _) = get(&format!("http://{ip}:8012/"), Some("nothing-here.nowhere"), 5);
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("nothing-here.nowhere"), "{body}");
}

#[test]
fn the_activator_restarted_while_the_app_is_at_zero_answers_once_replaced() {
    let ns = hello_at_zero("e2e-s2z-activator", "patient");
    let before = activator_ips();
    kubectl_ok(&[
        "-n",
        SPORE_NAMESPACE,
        "delete",
        "pods",
        "-l",
        "app.kubernetes.io/component=activator",
        "--grace-period=0",
        "--force",
        "--wait=false",
    ]);
    let url = format!("http://{}:8080/", cluster_ip(&ns, "patient"));
    let mut last = (0, String::new(), 0.0);
    wait_until("a request is answered by the replacement activators", Duration::from_secs(90), || {
        last = get(&url, None, 5);
        last.0 == 200
    });
    assert_eq!(last.1, HELLO);
    let after = activator_ips();
    assert!(after.iter().all(|ip| !before.contains(ip)), "new activator pods: {before:?} -> {after:?}");
}

#[test]
fn an_operator_restart_leaves_an_app_at_zero_routed_to_the_activator_and_its_next_request_wakes_it() {
    let ns = hello_at_zero("e2e-s2z-operator", "dormant");
    let lease =
        || kubectl_ok(&["-n", SPORE_NAMESPACE, "get", "lease/spore-operator", "-o", "jsonpath={.spec.holderIdentity}"]);
    let leader = lease();
    kubectl_ok(&["-n", SPORE_NAMESPACE, "rollout", "restart", "deployment/spore-operator"]);
    // While the replicas are replaced (old ones stopping, new ones starting, the Lease moving)
    // the Service keeps routing to the activator and nothing wakes the app.
    let slice = "endpointslice/dormant-spore-activator";
    wait_until("a new operator replica leads", Duration::from_secs(120), || {
        assert!(!field(&ns, slice, "{.endpoints[*].addresses[0]}").is_empty(), "the Service lost the activator");
        assert_eq!(field(&ns, "wasmapp/dormant", "{.spec.scaling.replicas}"), "0", "the restart woke the app");
        let now = lease();
        now != leader && kubectl(&["-n", SPORE_NAMESPACE, "get", "pod", &now]).status.success()
    });
    let (status, body, _) = get(&format!("http://{}:8080/", cluster_ip(&ns, "dormant")), None, 20);
    assert_eq!((status, body.as_str()), (200, HELLO), "{}", ns.describe(&["wasmapp", "dormant"]));
}

#[test]
fn a_warm_apps_requests_go_straight_to_its_pods() {
    ensure_spore_installed();
    let ns = Namespace::new("e2e-s2z-warm");
    apply(&idle_app(&ns, "warm", "hello-http", "10m"));
    wait_ready(&ns, "warm");
    wait_until("the Service routes to the pod", Duration::from_secs(60), || {
        let slices = ns.jsonpath(
            &["get", "endpointslices", "-l", "spore.dev/app=warm"],
            "{range .items[*]}{.metadata.name}={.endpoints[*].addresses[0]};{end}",
        );
        slices.contains("warm-spore-pods=198.") && slices.contains("warm-spore-activator=;")
    });
    // kube-proxy applies endpoint changes at most once a second.
    std::thread::sleep(Duration::from_secs(3));
    let seen = |metric: &str| activator_metric(metric, &ns, "warm");
    let before = (seen("spore_activator_requests_total"), seen("spore_activator_requests_held"));
    let url = format!("http://{}:8080/", cluster_ip(&ns, "warm"));
    for _ in 0..50 {
        assert_eq!(get(&url, None, 5).0, 200);
    }
    let after = (seen("spore_activator_requests_total"), seen("spore_activator_requests_held"));
    assert_eq!(before, after, "the activator saw none of the warm app's requests");
    let pod_ip = ns.jsonpath(&["get", "pods", "-l", "spore.dev/app=warm"], "{.items[0].status.podIP}");
    let served = curl(&format!("http://{pod_ip}:9464/metrics")).expect("the shim serves metrics");
    let answered: f64 = served
        .lines()
        .filter(|l| l.starts_with("spore_http_requests_total{") && l.contains("code=\"200\""))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .sum();
    assert!(answered >= 50.0, "the pod answered them: {answered}");
}
