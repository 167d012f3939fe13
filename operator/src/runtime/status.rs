//! A WasmRuntime's per-node state from its installer pods and the nodes' labels. Pure.

use k8s_openapi::api::core::v1::{ContainerStatus, Node, Pod};
use spore_crds::NodeStatus;
use spore_crds::runtime::{NODE_READY, node_label, node_state, node_version_annotation};

use crate::conditions::Cond;
use crate::resources::daemonset::INSTALL_CONTAINER;

pub const READY: &str = "Ready";

/// Each selected node's state, by name.
pub fn node_statuses(runtime_class: &str, nodes: &[Node], pods: &[Pod]) -> Vec<NodeStatus> {
    let mut statuses: Vec<NodeStatus> = nodes
        .iter()
        .filter_map(|node| {
            let name = node.metadata.name.clone()?;
            let pod = pods.iter().find(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(&name));
            Some(node_status(runtime_class, name, node, pod))
        })
        .collect();
    statuses.sort_by(|a, b| a.name.cmp(&b.name));
    statuses
}

fn node_status(runtime_class: &str, name: String, node: &Node, pod: Option<&Pod>) -> NodeStatus {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let labelled = labels.get(&node_label(runtime_class)).map(String::as_str) == Some(NODE_READY);
    let version =
        node.metadata.annotations.as_ref().and_then(|a| a.get(&node_version_annotation(runtime_class)).cloned());
    let install = pod.and_then(|p| {
        p.status.as_ref()?.init_container_statuses.as_ref()?.iter().find(|c| c.name == INSTALL_CONTAINER)
    });
    let (state, message) = match (pod, install.map(install_state)) {
        (None, _) if labelled => (node_state::READY, None),
        (None, _) => (node_state::PENDING, Some("waiting for the installer pod".to_string())),
        (Some(_), Some(Step::Done)) if labelled => (node_state::READY, None),
        (Some(_), Some(Step::Done)) => (node_state::INSTALLING, Some("installed; waiting for the node label".into())),
        (Some(_), Some(Step::Failed(m))) if labelled => {
            (node_state::FAILED, Some(format!("{m} (the previous installation still serves pods)")))
        }
        (Some(_), Some(Step::Failed(m))) => (node_state::FAILED, Some(m)),
        (Some(_), Some(Step::Running)) => (node_state::INSTALLING, None),
        (Some(_), Some(Step::Waiting(m))) => (node_state::PENDING, Some(m.unwrap_or_else(|| STARTING.to_string()))),
        (Some(_), None) => (node_state::PENDING, Some(STARTING.to_string())),
    };
    NodeStatus { name, state: state.to_string(), message, shim_version: version.filter(|_| labelled) }
}

const STARTING: &str = "installer pod starting";

enum Step {
    Waiting(Option<String>),
    Running,
    Done,
    Failed(String),
}

fn install_state(c: &ContainerStatus) -> Step {
    let state = c.state.clone().unwrap_or_default();
    let last = c.last_state.as_ref().and_then(|s| s.terminated.as_ref());
    let failure = |t: &k8s_openapi::api::core::v1::ContainerStateTerminated| {
        let message = t.message.clone().unwrap_or_default();
        let message = message.trim();
        if message.is_empty() { format!("installer exited with code {}", t.exit_code) } else { message.to_string() }
    };
    if let Some(t) = &state.terminated {
        return if t.exit_code == 0 { Step::Done } else { Step::Failed(failure(t)) };
    }
    if state.running.is_some() {
        return Step::Running;
    }
    let waiting = state.waiting.as_ref();
    match (waiting.and_then(|w| w.reason.as_deref()), last) {
        (Some("ErrImagePull" | "ImagePullBackOff" | "InvalidImageName"), _) => Step::Failed(format!(
            "cannot pull the shim image: {}",
            waiting.and_then(|w| w.message.clone()).unwrap_or_default()
        )),
        (_, Some(t)) if t.exit_code != 0 => Step::Failed(failure(t)),
        _ => Step::Waiting(waiting.and_then(|w| w.message.clone())),
    }
}

/// The runtime's Ready condition over its nodes.
pub fn ready_condition(nodes: &[NodeStatus]) -> Cond {
    let ready = nodes.iter().filter(|n| n.state == node_state::READY).count();
    let failed: Vec<String> = nodes
        .iter()
        .filter(|n| n.state == node_state::FAILED)
        .map(|n| format!("{}: {}", n.name, n.message.clone().unwrap_or_default()))
        .collect();
    match (nodes.len(), ready, failed.is_empty()) {
        (0, _, _) => Cond::new(READY, false, "NoNodesSelected", "no node matches spec.nodeSelector"),
        (_, _, false) => Cond::new(READY, false, "InstallFailed", failed.join("; ")),
        (total, ready, true) if ready == total => {
            Cond::new(READY, true, "AllNodesReady", format!("{ready}/{total} nodes ready"))
        }
        (total, ready, true) => Cond::new(READY, false, "Installing", format!("{ready}/{total} nodes ready")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, labelled: bool) -> Node {
        let labels =
            if labelled { serde_json::json!({"runtime.spore.dev/spore": "ready"}) } else { serde_json::json!({}) };
        serde_json::from_value(serde_json::json!({"metadata": {"name": name, "labels": labels,
            "annotations": {"runtime.spore.dev/spore.version": "0.1.0"}}}))
        .unwrap()
    }

    fn pod(node: &str, install: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({"metadata": {"name": format!("i-{node}")}, "spec": {"nodeName": node, "containers": []},
            "status": {"initContainerStatuses": [serde_json::json!({"name": "install", "image": "i", "imageID": "", "ready": false, "restartCount": 0}).as_object().unwrap().clone().into_iter().chain(install.as_object().unwrap().clone()).collect::<serde_json::Map<_, _>>()]}}))
        .unwrap()
    }

    fn states(nodes: &[Node], pods: &[Pod]) -> Vec<(String, String, Option<String>)> {
        node_statuses("spore", nodes, pods).into_iter().map(|n| (n.name, n.state, n.message)).collect()
    }

    #[test]
    fn node_states_follow_the_installer_pod() {
        let done = serde_json::json!({"state": {"terminated": {"exitCode": 0}}});
        let running = serde_json::json!({"state": {"running": {}}});
        let failed = serde_json::json!({"state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "message": "containerd config /etc/containerd/config.toml imports no drop-in directory"}}});
        let cases = [
            (node("a", false), None, ("Pending", Some("waiting for the installer pod"))),
            (node("a", true), None, ("Ready", None)),
            (node("a", true), Some(done.clone()), ("Ready", None)),
            (node("a", false), Some(done), ("Installing", Some("installed; waiting for the node label"))),
            (node("a", false), Some(running), ("Installing", None)),
            (
                node("a", false),
                Some(failed.clone()),
                ("Failed", Some("containerd config /etc/containerd/config.toml imports no drop-in directory")),
            ),
            (
                node("a", true),
                Some(failed),
                (
                    "Failed",
                    Some(
                        "containerd config /etc/containerd/config.toml imports no drop-in directory (the previous installation still serves pods)",
                    ),
                ),
            ),
        ];
        for (node, install, (state, message)) in cases {
            let pods: Vec<Pod> = install.into_iter().map(|i| pod("a", i)).collect();
            assert_eq!(
                states(&[node], &pods),
                [("a".to_string(), state.to_string(), message.map(String::from))],
                "{pods:?}"
            );
        }
    }

    #[test]
    fn ready_nodes_report_the_installed_version() {
        let statuses = node_statuses("spore", &[node("a", true), node("b", false)], &[]);
        assert_eq!(statuses[0].shim_version.as_deref(), Some("0.1.0"));
        assert_eq!(statuses[1].shim_version, None);
    }

    #[test]
    fn the_runtime_is_ready_when_every_node_is() {
        let status = |name: &str, state: &str| NodeStatus {
            name: name.into(),
            state: state.into(),
            message: Some("boom".into()),
            shim_version: None,
        };
        let cases = [
            (vec![], false, "NoNodesSelected"),
            (vec![status("a", "Ready"), status("b", "Ready")], true, "AllNodesReady"),
            (vec![status("a", "Ready"), status("b", "Installing")], false, "Installing"),
            (vec![status("a", "Failed"), status("b", "Installing")], false, "InstallFailed"),
        ];
        for (nodes, ready, reason) in cases {
            let c = ready_condition(&nodes);
            assert_eq!((c.status, c.reason.as_str()), (ready, reason), "{nodes:?}");
        }
        assert_eq!(ready_condition(&[status("a", "Failed")]).message, "a: boom");
    }
}
