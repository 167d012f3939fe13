//! Batch apps on the cluster: a command WasmApp with `job` runs to completion once (again only
//! when its spec changes), one that fails reports the exit code (and the guest's trap report)
//! after its retries, one with `cronJob` runs on its schedule, and name lookups use the pod's
//! cluster DNS when `outbound.dns` allows them, and a command linked with a library component
//! on the node gives each component only its own grant. The tests use their own
//! namespaces and may run in parallel (the schedule's wait overlaps the others).

use std::time::Duration;

use spore_e2e::*;

/// A WasmApp `name` running the probe guest with `args` and `extra` spec lines.
fn probe_app(ns: &Namespace, name: &str, args: &str, extra: &str) -> String {
    format!(
        "apiVersion: spore.dev/v1alpha1\nkind: WasmApp\nmetadata: {{name: {name}, namespace: {}}}\nspec:\n  module: {{image: {REGISTRY}/spore/probe:1}}\n  args: {args}\n{extra}",
        ns.0
    )
}

fn field(ns: &Namespace, what: &str, path: &str) -> String {
    ns.jsonpath(&["get", what], path)
}

fn condition(ns: &Namespace, app: &str, type_: &str, what: &str) -> String {
    field(ns, &format!("wasmapp/{app}"), &format!(r#"{{.status.conditions[?(@.type=="{type_}")].{what}}}"#))
}

fn jobs_of(ns: &Namespace, app: &str) -> Vec<String> {
    let names = ns.jsonpath(&["get", "jobs", "-l", &format!("spore.dev/app={app}")], "{.items[*].metadata.name}");
    names.split_whitespace().map(str::to_string).collect()
}

/// Waits until `app`'s Ready condition has `reason`; explains the app and its pods if not.
fn wait_reason(ns: &Namespace, app: &str, reason: &str, timeout: Duration) {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let now = condition(ns, app, "Ready", "reason");
        if now == reason {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "WasmApp {app} is {now:?}, not {reason}, after {timeout:?}:\n{}\n{}",
            ns.describe(&["wasmapp", app]),
            ns.describe(&["pods", "-l", &format!("spore.dev/app={app}")])
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_command_app_runs_as_a_job_once_and_again_when_its_spec_changes() {
    ensure_spore_installed();
    let ns = Namespace::new("e2e-job");
    apply(&probe_app(&ns, "once", "[echo, done]", "  job: {}\n"));
    wait_reason(&ns, "once", "Succeeded", Duration::from_secs(120));
    assert_eq!(condition(&ns, "once", "Ready", "status"), "True");
    let first = jobs_of(&ns, "once");
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(first[0].starts_with("once-"), "{first:?}");
    assert_eq!(
        field(&ns, "wasmapp/once", "{.status.lastRun.jobName} {.status.lastRun.succeeded} {.status.lastRun.exitCode}"),
        format!("{} 1 0", first[0])
    );
    let pod = ns.jsonpath(&["get", "pods", "-l", "spore.dev/app=once"], "{.items[0].metadata.name}");
    assert_eq!(ns.kubectl_ok(&["logs", &pod]), "done\n");
    assert!(ns.kubectl_ok(&["get", "deployments"]).is_empty(), "a job app got a Deployment");
    let table = ns.kubectl_ok(&["get", "wasmapp", "once"]);
    let row: Vec<&str> = table.lines().nth(1).unwrap_or_default().split_whitespace().collect();
    assert_eq!(row[..5], ["once", "True", "0", "0", "Succeeded"], "{table}");

    // A change outside the spec reconciles the app but must not run it again.
    ns.kubectl_ok(&["annotate", "wasmapp/once", "touched=1"]);
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(jobs_of(&ns, "once"), first, "an unchanged spec ran again");
    assert_eq!(ns.jsonpath(&["get", "pods", "-l", "spore.dev/app=once"], "{.items[*].metadata.name}"), pod);

    // A changed spec runs a new Job and the old one goes.
    apply(&probe_app(&ns, "once", "[echo, again]", "  job: {}\n"));
    let mut jobs = Vec::new();
    wait_until("the new Job replaces the old one", Duration::from_secs(60), || {
        jobs = jobs_of(&ns, "once");
        jobs.len() == 1 && jobs != first
    });
    wait_until("the new run succeeds", Duration::from_secs(120), || {
        field(&ns, "wasmapp/once", "{.status.lastRun.jobName}") == jobs[0]
            && condition(&ns, "once", "Ready", "reason") == "Succeeded"
    });
}

#[test]
fn a_failing_command_reports_its_exit_code_and_trap_after_its_retries() {
    ensure_spore_installed();
    let ns = Namespace::new("e2e-job-fails");
    // The C probe keeps exact exit codes (a p2 component would exit 1).
    apply(&probe_app(&ns, "exits", "[exit, '3']", "  job: {backoffLimit: 1}\n"));
    apply(&probe_app(&ns, "traps", "[trap]", "  job: {backoffLimit: 0}\n"));
    for app in ["exits", "traps"] {
        wait_reason(&ns, app, "JobFailed", Duration::from_secs(150));
        assert_eq!(condition(&ns, app, "Degraded", "status"), "True");
    }
    let message = condition(&ns, "exits", "Degraded", "message");
    assert!(message.contains("BackoffLimitExceeded") && message.contains("exited with code 3"), "{message}");
    assert_eq!(field(&ns, "wasmapp/exits", "{.status.lastRun.exitCode} {.status.lastRun.failed}"), "3 2");
    let attempts = ns.jsonpath(&["get", "pods", "-l", "spore.dev/app=exits"], "{.items[*].status.phase}");
    assert_eq!(attempts, "Failed Failed", "one pod per attempt (restartPolicy Never)");

    assert_eq!(field(&ns, "wasmapp/traps", "{.status.lastRun.exitCode}"), "134");
    let message = condition(&ns, "traps", "Degraded", "message");
    assert!(message.contains("exited with code 134"), "{message}");
    // The trap report reaches the status through the container's termination message, which
    // the shim writes.
    let report = field(&ns, "wasmapp/traps", "{.status.lastRun.message}");
    assert!(report.starts_with("guest trapped: wasm trap"), "{report}");
    assert!(message.contains(&report), "the Degraded message lacks the trap report: {message}");
    let events = ns.kubectl_ok(&["get", "events", "--field-selector=involvedObject.name=traps,reason=JobFailed"]);
    assert!(events.contains("JobFailed"), "no JobFailed event:\n{events}");
}

#[test]
fn a_scheduled_app_runs_on_its_schedule() {
    ensure_spore_installed();
    let ns = Namespace::new("e2e-cron");
    apply(&probe_app(
        &ns,
        "tick",
        "[echo, tick]",
        "  cronJob: {schedule: '* * * * *', successfulJobsHistoryLimit: 1}\n",
    ));
    wait_until("the CronJob exists", Duration::from_secs(30), || {
        ns.kubectl(&["get", "cronjob", "tick"]).status.success()
    });
    assert_eq!(field(&ns, "cronjob/tick", "{.spec.schedule}"), "* * * * *");
    assert_eq!(condition(&ns, "tick", "Ready", "reason"), "Scheduled");
    // The next minute starts a run: at most 60 s, plus the pod's start.
    wait_reason(&ns, "tick", "Succeeded", Duration::from_secs(90));
    let run = field(&ns, "wasmapp/tick", "{.status.lastRun.jobName} {.status.lastRun.exitCode}");
    assert!(run.starts_with("tick-") && run.ends_with(" 0"), "{run}");
    assert!(!field(&ns, "wasmapp/tick", "{.status.lastRun.lastScheduleTime}").is_empty());
}

/// A job app running the component probe (wasi:sockets) with `args` and `network` capabilities.
fn sockets_app(ns: &Namespace, name: &str, args: &str, network: &str) -> String {
    format!(
        "apiVersion: spore.dev/v1alpha1\nkind: WasmApp\nmetadata: {{name: {name}, namespace: {}}}\nspec:\n  module: {{image: {REGISTRY}/spore/probe-p2:1}}\n  args: {args}\n  job: {{backoffLimit: 0}}\n  capabilities:\n    network: {network}\n",
        ns.0
    )
}

fn job_logs(ns: &Namespace, app: &str) -> String {
    let pod = ns.jsonpath(&["get", "pods", "-l", &format!("spore.dev/app={app}")], "{.items[0].metadata.name}");
    ns.kubectl_ok(&["logs", &pod])
}

#[test]
fn a_wasm_pod_resolves_cluster_names_with_its_pods_dns_and_only_when_allowed() {
    ensure_spore_installed();
    let ns = Namespace::new("e2e-dns");
    // A Service of this namespace, found by its short name through the pod's search domains.
    apply(&format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: neighbour, namespace: {}}}\nspec:\n  ports: [{{port: 80}}]\n",
        ns.0
    ));
    let api = kubectl_ok(&["get", "service", "kubernetes", "-n", "default", "-o", "jsonpath={.spec.clusterIP}"]);
    let neighbour = ns.jsonpath(&["get", "service", "neighbour"], "{.spec.clusterIP}");
    let dns = "{outbound: {dns: true}}";
    apply(&sockets_app(&ns, "fqdn", "[resolve, kubernetes.default.svc.cluster.local]", dns));
    apply(&sockets_app(&ns, "short", "[resolve, neighbour]", dns));
    // Connecting by name: resolved (search domains, ndots), then allowed by the tcp rule.
    let connect = format!("{{outbound: {{dns: true, tcp: [{{cidr: {api}/32, port: 443}}]}}}}");
    apply(&sockets_app(&ns, "connects", "[connect, 'kubernetes.default:443']", &connect));
    apply(&sockets_app(&ns, "no-dns", "[resolve, kubernetes.default.svc.cluster.local]", "{}"));
    for app in ["fqdn", "short", "connects"] {
        wait_reason(&ns, app, "Succeeded", Duration::from_secs(120));
    }
    assert_eq!(job_logs(&ns, "fqdn").trim(), api);
    assert_eq!(job_logs(&ns, "short").trim(), neighbour);
    assert_eq!(job_logs(&ns, "connects").trim(), "connected kubernetes.default:443");

    wait_reason(&ns, "no-dns", "JobFailed", Duration::from_secs(120));
    let denied = job_logs(&ns, "no-dns");
    assert!(denied.contains("resolve kubernetes.default.svc.cluster.local: "), "{denied}");
}

/// A job app running `reach-app` with `lib_image` plugged in as its component `lib`.
fn composed_app(ns: &Namespace, name: &str, lib_image: &str) -> String {
    format!(
        r#"apiVersion: spore.dev/v1alpha1
kind: WasmApp
metadata: {{name: {name}, namespace: {ns}}}
spec:
  module: {{image: {REGISTRY}/spore/reach-app:1, plugs: [lib]}}
  env: [{{name: TOKEN, value: t}}]
  job: {{backoffLimit: 0}}
  components:
  - name: lib
    image: {REGISTRY}/spore/{lib_image}:1
    env: [{{name: STYLE, value: dark}}, {{name: MORE, value: x}}]
"#,
        ns = ns.0
    )
}

#[test]
fn a_composed_app_is_linked_on_the_node_and_each_component_reaches_only_its_own_grant() {
    ensure_spore_installed();
    let ns = Namespace::new("e2e-compose");
    apply(&composed_app(&ns, "linked", "reach-lib"));
    wait_reason(&ns, "linked", "Succeeded", Duration::from_secs(180));
    let pod = ns.jsonpath(&["get", "pods", "-l", "spore.dev/app=linked"], "{.items[0].metadata.name}");
    let logs = ns.kubectl_ok(&["logs", &pod, "-c", "app"]);
    let lines: Vec<&str> = logs.lines().collect();
    for expected in ["app env 1", "lib env 2"] {
        assert!(lines.contains(&expected), "{expected:?} in:\n{logs}");
    }
    assert!(lines.iter().any(|l| l.starts_with("lib tcp 127.0.0.1:9 denied")), "{logs}");

    // The command plugged into itself exports nothing it imports.
    apply(&composed_app(&ns, "broken", "reach-app"));
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    while condition(&ns, "broken", "Degraded", "reason") != "CompositionFailed" {
        assert!(
            std::time::Instant::now() < deadline,
            "the broken wiring is not Degraded CompositionFailed after 180s:\n{}\n{}",
            ns.describe(&["wasmapp", "broken"]),
            ns.describe(&["pods", "-l", "spore.dev/app=broken"])
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let message = condition(&ns, "broken", "Degraded", "message");
    assert!(message.contains("\"lib\" is in the plugs of \"app\" but exports nothing it imports"), "{message}");
    let events =
        ns.kubectl_ok(&["get", "events", "--field-selector=involvedObject.name=broken,reason=CompositionFailed"]);
    assert!(events.contains("CompositionFailed"), "no CompositionFailed event:\n{events}");
}

#[test]
fn the_polyglot_example_answers_401_and_200_through_its_service() {
    ensure_spore_installed();
    let ns = Namespace::new("e2e-polyglot");
    ns.kubectl_ok(&["create", "secret", "generic", "polyglot-token", "--from-literal=token=s3cret"]);
    apply(&polyglot_app(&ns));
    let ready = ns.kubectl(&["wait", "--for=condition=Ready", "wasmapp/polyglot", "--timeout=240s"]);
    assert!(
        ready.status.success(),
        "the polyglot app is not Ready:\n{}\n{}",
        ns.describe(&["wasmapp", "polyglot"]),
        ns.describe(&["pods", "-l", "spore.dev/app=polyglot"])
    );
    let ip = ns.jsonpath(&["get", "service", "polyglot"], "{.spec.clusterIP}");
    let url = |path: &str| format!("http://{ip}:8080{path}");
    // kube-proxy programs a new Service's rules on its own time after the pods are ready.
    wait_until("the Service answers", Duration::from_secs(60), || ask(&url("/"), "", None).0 != 0);
    assert_eq!(ask(&url("/"), "", None), (401, "unauthorized: missing bearer token\n".into()));
    assert_eq!(ask(&url("/"), "guess", None), (401, "unauthorized: invalid token\n".into()));
    assert_eq!(ask(&url("/"), "s3cret", None), (200, "hello from Python\n".into()));
    let rendered = ask(&url("/render"), "s3cret", Some("# Hi *there*"));
    assert_eq!(rendered, (200, "<h1>Hi <em>there</em></h1>\n".into()));
    // In the pod too, the key is the middleware's alone and the credential stops there.
    let (status, read) = ask(&url("/read?path=/keys/token"), "s3cret", None);
    assert_eq!(status, 403, "the handler read the middleware's key: {read}");
    let (status, headers) = ask(&url("/headers"), "s3cret", None);
    assert!(status == 200 && !headers.contains("authorization"), "{status} {headers}");
}
