//! `helm uninstall` (run after every other e2e test): the operator and everything it made
//! go, and each Wasm node's containerd is back to its own config with no Spore drop-in or shim.

use std::time::Duration;

use spore_e2e::*;

#[test]
fn helm_uninstall_removes_spore_and_restores_the_wasm_nodes() {
    ensure_spore_installed();
    let out = helm(&["uninstall", RELEASE, "-n", SPORE_NAMESPACE, "--wait", "--timeout=300s"]);
    assert!(
        out.status.success(),
        "helm uninstall failed:\n{}{}\nthe cleanup hook says:\n{}",
        text(&out.stdout),
        text(&out.stderr),
        text(&kubectl(&["-n", SPORE_NAMESPACE, "logs", "job/spore-cleanup", "--tail=20"]).stdout)
    );

    let left = |args: &[&str]| text(&kubectl(args).stdout).trim().to_string();
    wait_until("the operator's pods are gone", Duration::from_secs(60), || {
        left(&["-n", SPORE_NAMESPACE, "get", "pods", "-o", "name"]).is_empty()
    });
    assert_eq!(left(&["get", "wasmruntimes", "-o", "name"]), "");
    wait_until("the RuntimeClass is gone", Duration::from_secs(30), || {
        left(&["get", "runtimeclass", "-o", "name"]).is_empty()
    });
    for kind in ["deployments", "daemonsets", "jobs", "serviceaccounts", "roles", "rolebindings", "services"] {
        let names = left(&["-n", SPORE_NAMESPACE, "get", kind, "-o", "name"]);
        let ours: Vec<&str> = names.lines().filter(|n| n.contains("spore")).collect();
        assert!(ours.is_empty(), "{kind} left behind: {ours:?}");
    }
    for kind in ["clusterroles", "clusterrolebindings"] {
        let names = left(&["get", kind, "-l", "app.kubernetes.io/instance=spore", "-o", "name"]);
        assert_eq!(names, "", "{kind} left behind");
    }
    for node in WASM_NODES {
        let labels = kubectl_ok(&["get", "node", node, "-o", "jsonpath={.metadata.labels}"]);
        assert!(!labels.contains("runtime.spore.dev"), "{node} keeps the runtime label: {labels}");
        let containerd = state_dir().join(node).join("containerd");
        let config = std::fs::read_to_string(containerd.join("config.toml")).unwrap();
        assert_eq!(config, std::fs::read_to_string(containerd.join("config.toml.at-start")).unwrap(), "{node}");
        let drop_ins: Vec<_> = std::fs::read_dir(containerd.join("conf.d")).unwrap().collect();
        assert!(drop_ins.is_empty(), "drop-ins left on {node}: {drop_ins:?}");
        let shim = install_dir(node).join("containerd-shim-spore-v1");
        assert!(!shim.exists(), "the shim binary is still installed on {node}");
    }
}
