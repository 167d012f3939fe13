//! Nodes a WasmRuntime's selector no longer picks but that still carry its label: the
//! installer DaemonSet has left them, so an uninstall Job removes the runtime. Pure.

use std::collections::BTreeSet;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, Pod};
use spore_crds::NodeStatus;
use spore_crds::runtime::node_state;

use crate::resources::uninstall_job::uninstall_job_name;

/// What the controller does about de-selected nodes in this reconcile.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Retirement {
    /// Nodes that need an uninstall Job now.
    pub start: Vec<String>,
    /// Finished uninstall Jobs no node needs any more (a stale success would let the
    /// finalizer skip a node installed again since).
    pub delete_jobs: Vec<String>,
    /// One status per de-selected node still carrying the label.
    pub statuses: Vec<NodeStatus>,
}

/// Plans the retirement of nodes labelled for the runtime that its selector does not pick.
/// A node whose installer pod is still there waits for it to go, so an install and an
/// uninstall never run at once on one node; a node that is not Ready cannot run the Job.
pub fn plan_retirement(
    runtime: &str,
    namespace: &str,
    labelled: &[Node],
    selected: &[Node],
    installer_pods: &[Pod],
    uninstall_jobs: &[Job],
) -> Retirement {
    let selected: BTreeSet<&str> = selected.iter().filter_map(|n| n.metadata.name.as_deref()).collect();
    let find_job = |name: &str| uninstall_jobs.iter().find(|j| j.metadata.name.as_deref() == Some(name));
    let mut plan = Retirement::default();
    let mut planned = BTreeSet::new();
    for node in labelled {
        let Some(name) = node.metadata.name.as_deref() else { continue };
        if selected.contains(name) {
            continue;
        }
        let job_name = uninstall_job_name(runtime, name);
        planned.insert(job_name.clone());
        let state = match find_job(&job_name).map(job_outcome) {
            None if installer_pods.iter().any(|p| pod_node(p) == Some(name)) => {
                Some(uninstalling("waiting for its installer pod to stop"))
            }
            None if !node_is_ready(node) => Some(uninstalling("waiting for the node to be Ready")),
            None => {
                plan.start.push(name.to_string());
                Some(uninstalling(REMOVING))
            }
            // Done, yet labelled again (installed anew since): a fresh Job is due.
            Some(Some(true)) => {
                plan.delete_jobs.push(job_name);
                Some(uninstalling(REMOVING))
            }
            Some(outcome) => job_state(outcome, namespace, &job_name),
        };
        plan.statuses.extend(state.map(|(state, message)| node_status(name, state, message)));
    }
    for job in uninstall_jobs {
        let (Some(job_name), Some(node)) = (job.metadata.name.as_deref(), job_node(job)) else { continue };
        if planned.contains(job_name) {
            continue;
        }
        let outcome = job_outcome(job);
        // A finished Job is stale once its node is selected again or it succeeded.
        if outcome.is_some() && (selected.contains(node) || outcome == Some(true)) {
            plan.delete_jobs.push(job_name.to_string());
        } else if !selected.contains(node)
            && let Some((state, message)) = job_state(outcome, namespace, job_name)
        {
            plan.statuses.push(node_status(node, state, message));
        }
    }
    plan.statuses.sort_by(|a, b| a.name.cmp(&b.name));
    plan
}

const REMOVING: &str = "removing the runtime";

fn uninstalling(why: &str) -> (&'static str, String) {
    (node_state::UNINSTALLING, format!("no longer selected; {why}"))
}

/// The state an existing uninstall Job gives its node; `None` once it succeeded.
fn job_state(outcome: Option<bool>, namespace: &str, job_name: &str) -> Option<(&'static str, String)> {
    match outcome {
        None => Some(uninstalling(REMOVING)),
        Some(false) => Some((
            node_state::UNINSTALL_FAILED,
            format!("removing the runtime failed: kubectl -n {namespace} logs job/{job_name}; delete the Job to retry"),
        )),
        Some(true) => None,
    }
}

fn node_status(name: &str, state: &str, message: String) -> NodeStatus {
    NodeStatus { name: name.to_string(), state: state.to_string(), message: Some(message), shim_version: None }
}

fn job_node(job: &Job) -> Option<&str> {
    job.spec.as_ref()?.template.spec.as_ref()?.node_name.as_deref()
}

fn pod_node(pod: &Pod) -> Option<&str> {
    pod.spec.as_ref()?.node_name.as_deref()
}

pub fn node_is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// `Some(true)` once the Job succeeded, `Some(false)` once it gave up, else `None`.
pub fn job_outcome(job: &Job) -> Option<bool> {
    let status = job.status.as_ref()?;
    if status.succeeded.unwrap_or(0) > 0 {
        return Some(true);
    }
    let failed = status.conditions.iter().flatten().any(|c| c.type_ == "Failed" && c.status == "True");
    failed.then_some(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, ready: bool) -> Node {
        let status = if ready { "True" } else { "False" };
        serde_json::from_value(serde_json::json!({"metadata": {"name": name},
            "status": {"conditions": [{"type": "Ready", "status": status}]}}))
        .unwrap()
    }

    fn pod_on(node: &str) -> Pod {
        serde_json::from_value(
            serde_json::json!({"metadata": {"name": "p"}, "spec": {"nodeName": node, "containers": []}}),
        )
        .unwrap()
    }

    fn job(node: &str, status: serde_json::Value) -> Job {
        serde_json::from_value(serde_json::json!({"metadata": {"name": uninstall_job_name("spore", node)},
            "spec": {"template": {"spec": {"nodeName": node, "containers": []}}}, "status": status}))
        .unwrap()
    }

    fn running() -> serde_json::Value {
        serde_json::json!({"active": 1})
    }
    fn succeeded() -> serde_json::Value {
        serde_json::json!({"succeeded": 1})
    }
    fn failed() -> serde_json::Value {
        serde_json::json!({"conditions": [{"type": "Failed", "status": "True"}]})
    }

    fn states(plan: &Retirement) -> Vec<(String, String)> {
        plan.statuses.iter().map(|s| (s.name.clone(), s.state.clone())).collect()
    }

    #[test]
    fn selected_nodes_are_left_to_the_installer() {
        let a = [node("a", true)];
        let plan = plan_retirement("spore", "ns", &a, &a, &[], &[]);
        assert_eq!(plan, Retirement::default());
    }

    struct Case {
        name: &'static str,
        pods: Vec<Pod>,
        jobs: Vec<Job>,
        ready: bool,
        start: &'static [&'static str],
        delete: &'static [&'static str],
        state: &'static str,
    }

    fn case(name: &'static str, pods: Vec<Pod>, jobs: Vec<Job>, ready: bool) -> Case {
        Case { name, pods, jobs, ready, start: &[], delete: &[], state: node_state::UNINSTALLING }
    }

    #[test]
    fn each_de_selected_node_gets_one_uninstall_job() {
        let cases = [
            Case { start: &["a"], ..case("no job yet", vec![], vec![], true) },
            case("installer pod still there", vec![pod_on("a")], vec![], true),
            case("node not Ready", vec![], vec![], false),
            case("job running", vec![], vec![job("a", running())], true),
            Case { state: node_state::UNINSTALL_FAILED, ..case("job failed", vec![], vec![job("a", failed())], true) },
            Case {
                delete: &["spore-uninstall-a"],
                ..case("old success, labelled again", vec![], vec![job("a", succeeded())], true)
            },
        ];
        for c in cases {
            let plan = plan_retirement("spore", "ns", &[node("a", c.ready)], &[node("b", true)], &c.pods, &c.jobs);
            assert_eq!(plan.start, c.start, "{}", c.name);
            assert_eq!(plan.delete_jobs, c.delete, "{}", c.name);
            assert_eq!(states(&plan), vec![("a".to_string(), c.state.to_string())], "{}", c.name);
        }
    }

    #[test]
    fn a_failed_uninstall_names_the_job_to_read_and_delete() {
        let plan = plan_retirement("spore", "spore-system", &[node("a", true)], &[], &[], &[job("a", failed())]);
        let message = plan.statuses[0].message.clone().unwrap();
        assert!(message.contains("kubectl -n spore-system logs job/spore-uninstall-a"), "{message}");
        assert!(message.contains("delete the Job to retry"), "{message}");
    }

    #[test]
    fn jobs_of_unlabelled_nodes_report_until_done_then_go() {
        let jobs = [job("done", succeeded()), job("broken", failed()), job("busy", running()), job("back", failed())];
        let plan = plan_retirement("spore", "ns", &[], &[node("back", true)], &[], &jobs);
        assert_eq!(plan.delete_jobs, vec!["spore-uninstall-done", "spore-uninstall-back"]);
        assert!(plan.start.is_empty());
        let expected = [("broken", node_state::UNINSTALL_FAILED), ("busy", node_state::UNINSTALLING)];
        assert_eq!(states(&plan), expected.map(|(n, s)| (n.to_string(), s.to_string())));
    }
}
