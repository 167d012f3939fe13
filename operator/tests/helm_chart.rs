//! The Helm chart lints, renders what the operator needs, and its schema rejects bad values.
//! Needs `SPORE_HELM` (a helm binary; `make test` builds one).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../helm/spore")
}

fn helm(args: &[&str]) -> Output {
    let helm = std::env::var_os("SPORE_HELM").expect("SPORE_HELM must name a helm binary; `make test` sets it");
    Command::new(helm).args(args).output().expect("helm runs")
}

fn template(sets: &[&str]) -> Result<Vec<serde_json::Value>, String> {
    let chart = chart();
    let mut args = vec!["template", "spore", chart.to_str().unwrap(), "-n", "spore-system", "--kube-version", "1.34.4"];
    for set in sets {
        args.extend(["--set", set]);
    }
    let out = helm(&args);
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8(out.stdout).unwrap();
    Ok(text
        .split("\n---")
        .filter_map(|doc| serde_yaml::from_str::<serde_json::Value>(doc).ok())
        .filter(|doc| doc.is_object())
        .collect())
}

fn find<'a>(docs: &'a [serde_json::Value], kind: &str, name: &str) -> &'a serde_json::Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in the rendered chart"))
}

#[test]
fn the_chart_lints_clean() {
    let out = helm(&["lint", "--strict", chart().to_str().unwrap(), "--kube-version", "1.34.4"]);
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_default_render_has_the_operator_its_rbac_and_a_runtime() {
    let docs = template(&[]).unwrap();
    let deployment = find(&docs, "Deployment", "spore-operator");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "ghcr.io/spore-dev/spore-operator:0.1.0");
    let env: Vec<(&str, &str)> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| Some((e["name"].as_str()?, e["value"].as_str()?)))
        .collect();
    assert!(env.contains(&("SPORE_LEADER_LEASE", "spore-operator")), "{env:?}");
    assert!(env.contains(&("SPORE_INSTALLER_SERVICE_ACCOUNT", "spore-node-installer")), "{env:?}");
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);

    let runtime = find(&docs, "WasmRuntime", "spore");
    assert_eq!(runtime["spec"]["shim"]["image"], "ghcr.io/spore-dev/spore-node-installer:0.1.0");
    assert_eq!(runtime["spec"]["containerd"]["configPath"], "/etc/containerd/config.toml");

    let installer = find(&docs, "ClusterRole", "spore-node-installer");
    assert_eq!(installer["rules"].as_array().unwrap().len(), 1, "the installer may only touch nodes");
    let operator = find(&docs, "ClusterRole", "spore-operator");
    let verbs = |resource: &str| -> Vec<String> {
        let rules = operator["rules"].as_array().unwrap();
        let rule = rules.iter().find(|r| r["apiGroups"][0] == "batch" && r["resources"][0] == resource);
        let verbs = rule.unwrap_or_else(|| panic!("no rule for batch {resource}"))["verbs"].as_array().unwrap();
        verbs.iter().map(|v| v.as_str().unwrap().to_string()).collect()
    };
    assert_eq!(verbs("jobs"), ["list", "watch", "create", "patch", "delete"]);
    assert_eq!(verbs("cronjobs"), ["get", "list", "watch", "create", "patch", "delete"]);
    let role = find(&docs, "Role", "spore-operator");
    assert!(role["rules"].to_string().contains("leases"));
    let activator = find(&docs, "Deployment", "spore-activator");
    assert_eq!(activator["spec"]["replicas"], 2, "two activators: one can restart while the other holds requests");
    let pod = &activator["spec"]["template"];
    assert_eq!(pod["metadata"]["labels"]["app.kubernetes.io/component"], "activator");
    assert_eq!(pod["spec"]["containers"][0]["image"], "ghcr.io/spore-dev/spore-activator:0.1.0");
    assert_eq!(pod["spec"]["terminationGracePeriodSeconds"], 45, "the hold timeout and the preStop sleep fit in");
    let peers = pod["spec"]["containers"][0]["env"].as_array().unwrap();
    let peer_selector = peers.iter().find(|e| e["name"] == "SPORE_ACTIVATOR_PEER_SELECTOR").unwrap();
    let labels = &pod["metadata"]["labels"];
    for label in peer_selector["value"].as_str().unwrap().split(',') {
        let (key, value) = label.split_once('=').unwrap();
        assert_eq!(labels[key], value, "the peer selector selects the activator's own pods: {label}");
    }
    let selector = &find(&docs, "Service", "spore-operator-metrics")["spec"]["selector"];
    assert_eq!(selector["app.kubernetes.io/component"], "operator", "the operator's Service must not pick activators");
    assert!(env.contains(&("SPORE_ACTIVATOR_SERVICE", "spore-activator")), "{env:?}");
    assert!(operator["rules"].to_string().contains("endpointslices"), "apps at zero are routed by EndpointSlices");
    let hook = find(&docs, "Job", "spore-cleanup");
    assert_eq!(hook["metadata"]["annotations"]["helm.sh/hook"], "pre-delete");
}

#[test]
fn values_turn_parts_off_and_on() {
    let docs = template(&["runtime.create=false", "cleanupOnUninstall.enabled=false", "operator.leaderElection=false"])
        .unwrap();
    assert!(!docs.iter().any(|d| d["kind"] == "WasmRuntime" || d["kind"] == "Job"));
    let deployment = find(&docs, "Deployment", "spore-operator");
    let lease = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "SPORE_LEADER_LEASE")
        .cloned()
        .unwrap();
    assert!(lease.get("value").is_none_or(|v| v.is_null() || v == ""), "{lease}");

    let docs = template(&[
        "runtime.overhead.memory=8Mi",
        "runtime.containerd.runtimeHandler=spore-v1",
        "runtime.maxUnavailable=25%",
    ])
    .unwrap();
    let spec = &find(&docs, "WasmRuntime", "spore")["spec"];
    assert_eq!(
        (spec["overhead"]["memory"].as_str(), spec["containerd"]["runtimeHandler"].as_str()),
        (Some("8Mi"), Some("spore-v1"))
    );
    assert_eq!(spec["rollout"]["maxUnavailable"], "25%");
}

#[test]
fn the_schema_rejects_bad_values_with_the_field_named() {
    for (set, expected) in [
        ("runtime.installDir=opt/spore", "/runtime/installDir"),
        ("runtime.runtimeClassName=Spore_1", "/runtime/runtimeClassName"),
        ("operator.replicas=0", "/operator/replicas"),
        ("operator.logFormat=xml", "/operator/logFormat"),
        ("operator.unknown=1", "additional properties 'unknown' not allowed"),
        ("activator.holdTimeout=soon", "/activator/holdTimeout"),
        ("operator.autoscaler.stableWindow=1 minute", "/operator/autoscaler/stableWindow"),
    ] {
        let err = template(&[set]).expect_err(set);
        assert!(err.contains(expected), "{set}: expected {expected:?} in:\n{err}");
    }
}

#[test]
fn the_chart_ships_the_generated_crds() {
    for name in ["wasmapps.spore.dev.yaml", "wasmruntimes.spore.dev.yaml"] {
        let shipped = std::fs::read_to_string(chart().join("crds").join(name)).unwrap();
        let generated =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds").join(name)).unwrap();
        assert!(shipped == generated, "helm/spore/crds/{name} differs from crds/{name}; run `make crds`");
    }
}
