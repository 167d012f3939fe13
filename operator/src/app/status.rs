//! A WasmApp's status from what the cluster shows: its Deployment, its pods, and whether
//! any node serves its RuntimeClass. Pure: classify each pod's trouble, then one match.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

use crate::conditions::Cond;
use crate::resources::hpa::CONCURRENCY_METRIC;

pub const READY: &str = "Ready";
pub const PROGRESSING: &str = "Progressing";
pub const DEGRADED: &str = "Degraded";

/// Messages of the shim that mean the module itself is bad, not the pod around it.
const MODULE_ERRORS: [&str; 4] =
    ["not a WebAssembly binary", "invalid WebAssembly", "unsupported Wasm", "failed to instantiate the guest"];

/// What the reconcile saw of the app's world.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub deployment: Option<Deployment>,
    pub pods: Vec<Pod>,
    /// The RuntimeClass the app uses exists.
    pub runtime_class_exists: bool,
    /// Nodes labelled ready for that RuntimeClass.
    pub ready_nodes: usize,
    /// The app's HorizontalPodAutoscaler, when autoscaled.
    pub autoscaler: Option<HorizontalPodAutoscaler>,
}

/// Why an app cannot reach its desired state, as the reason of its conditions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub reason: &'static str,
    pub message: String,
}

fn problem(reason: &'static str, message: impl Into<String>) -> Problem {
    Problem { reason, message: message.into() }
}

/// The computed status fields of an app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub conditions: Vec<Cond>,
    pub replicas: i32,
    pub ready_replicas: i32,
}

/// The app's conditions for `desired` replicas (`None`: autoscaled, the HPA decides).
pub fn summarize(runtime_class: &str, desired: Option<i32>, observed: &Observed) -> Summary {
    let status = observed.deployment.as_ref().and_then(|d| d.status.clone()).unwrap_or_default();
    let replicas = status.replicas.unwrap_or(0);
    let ready = status.ready_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let wanted = desired.or_else(|| observed.deployment.as_ref().and_then(|d| d.spec.as_ref()?.replicas)).unwrap_or(1);
    let rolled_out = observed
        .deployment
        .as_ref()
        .is_some_and(|d| d.metadata.generation.is_some() && d.metadata.generation == status.observed_generation)
        && updated >= wanted
        && replicas == wanted;
    let trouble = runtime_problem(runtime_class, observed)
        .or_else(|| observed.pods.iter().find_map(pod_problem))
        .or_else(|| observed.autoscaler.as_ref().and_then(autoscaler_problem));

    let ready_cond = match (&trouble, ready >= wanted) {
        (_, true) if wanted == 0 => Cond::new(READY, true, "ScaledToZero", "no replicas requested"),
        (_, true) => Cond::new(READY, true, "ReplicasReady", format!("{ready}/{wanted} replicas ready")),
        (Some(p), false) => Cond::new(READY, false, p.reason, p.message.clone()),
        (None, false) => Cond::new(READY, false, "ReplicasNotReady", format!("{ready}/{wanted} replicas ready")),
    };
    let progressing = match (&trouble, rolled_out && ready >= wanted) {
        (_, true) => Cond::new(PROGRESSING, false, "RolloutComplete", format!("{updated} replicas up to date")),
        (Some(p), false) => Cond::new(PROGRESSING, false, p.reason, p.message.clone()),
        (None, false) => {
            Cond::new(PROGRESSING, true, "RollingOut", format!("{updated}/{wanted} replicas updated, {ready} ready"))
        }
    };
    let degraded = match &trouble {
        Some(p) => Cond::new(DEGRADED, true, p.reason, p.message.clone()),
        None => Cond::new(DEGRADED, false, "AsExpected", ""),
    };
    Summary { conditions: vec![ready_cond, progressing, degraded], replicas, ready_replicas: ready }
}

fn runtime_problem(runtime_class: &str, observed: &Observed) -> Option<Problem> {
    if !observed.runtime_class_exists {
        return Some(problem(
            "RuntimeClassNotFound",
            format!(
                "RuntimeClass {runtime_class} does not exist; create a WasmRuntime with runtimeClassName: {runtime_class}"
            ),
        ));
    }
    (observed.ready_nodes == 0).then(|| {
        problem(
            "NoWasmNodes",
            format!(
                "no node has the Spore runtime {runtime_class} ready (label {}=ready); check the WasmRuntime's status",
                spore_crds::runtime::node_label(runtime_class)
            ),
        )
    })
}

/// Why the HPA cannot scale, with what fixes it: usually a metrics API nobody serves.
pub fn autoscaler_problem(hpa: &HorizontalPodAutoscaler) -> Option<Problem> {
    let conditions = hpa.status.as_ref()?.conditions.as_ref()?;
    let inactive = conditions.iter().find(|c| {
        c.type_ == "ScalingActive" && c.status == "False" && c.reason.as_deref() != Some("ScalingDisabled")
    })?;
    let hint = match inactive.reason.as_deref() {
        Some("FailedGetResourceMetric") => {
            " (targetCpuUtilization needs metrics-server, which serves metrics.k8s.io, in the cluster)".to_string()
        }
        Some("FailedGetPodsMetric") => format!(
            " (targetConcurrency needs a custom-metrics adapter serving {CONCURRENCY_METRIC}, which the pods \
             export on their `metrics` port: e.g. Prometheus scraping them and prometheus-adapter; or use \
             targetCpuUtilization with metrics-server)"
        ),
        _ => String::new(),
    };
    let message = inactive.message.clone().unwrap_or_default();
    Some(problem("AutoscalingInactive", format!("the HorizontalPodAutoscaler cannot scale: {message}{hint}")))
}

/// The first thing keeping `pod` from running, if any.
pub fn pod_problem(pod: &Pod) -> Option<Problem> {
    let status = pod.status.as_ref()?;
    let unschedulable = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable"));
    if let Some(c) = unschedulable {
        return Some(problem("Unschedulable", c.message.clone().unwrap_or_default()));
    }
    status.container_statuses.iter().flatten().find_map(container_problem)
}

fn container_problem(c: &ContainerStatus) -> Option<Problem> {
    let waiting = c.state.as_ref().and_then(|s| s.waiting.as_ref());
    let last = c.last_state.as_ref().and_then(|s| s.terminated.as_ref());
    let current = c.state.as_ref().and_then(|s| s.terminated.as_ref());
    let waiting_reason = waiting.and_then(|w| w.reason.as_deref()).unwrap_or_default();
    let waiting_message = waiting.and_then(|w| w.message.clone()).unwrap_or_default();
    let terminated_message = last.or(current).and_then(|t| t.message.clone()).unwrap_or_default();
    match waiting_reason {
        "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName" | "ErrImageNeverPull" => {
            Some(problem("ImagePullFailed", waiting_message))
        }
        "CreateContainerConfigError" => Some(problem("ConfigError", waiting_message)),
        "CreateContainerError" | "RunContainerError" | "CrashLoopBackOff" | "StartError" => {
            let message = [&waiting_message, &terminated_message].into_iter().find(|m| is_module_error(m));
            match message {
                Some(m) => Some(problem("ModuleInvalid", m.clone())),
                None if waiting_reason == "CrashLoopBackOff" => {
                    Some(problem("CrashLoop", crash_message(c, &terminated_message)))
                }
                None => Some(problem("ContainerFailed", non_empty_or(waiting_message, terminated_message))),
            }
        }
        _ if last.or(current).is_some_and(|t| is_module_error(t.message.as_deref().unwrap_or_default())) => {
            Some(problem("ModuleInvalid", terminated_message))
        }
        _ => None,
    }
}

fn is_module_error(message: &str) -> bool {
    MODULE_ERRORS.iter().any(|m| message.contains(m))
}

fn crash_message(c: &ContainerStatus, terminated_message: &str) -> String {
    let exit = c.last_state.as_ref().and_then(|s| s.terminated.as_ref()).map(|t| t.exit_code);
    match (exit, terminated_message.trim()) {
        (Some(code), "") => format!("the guest keeps exiting (last exit code {code})"),
        (Some(code), m) => format!("the guest keeps exiting (last exit code {code}): {m}"),
        (None, m) => m.to_string(),
    }
}

fn non_empty_or(a: String, b: String) -> String {
    if a.is_empty() { b } else { a }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({"metadata": {"name": "p"}, "status": status})).unwrap()
    }

    fn deployment(generation: i64, observed: i64, replicas: i32, ready: i32, updated: i32) -> Deployment {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "hello", "generation": generation},
            "spec": {"replicas": replicas, "selector": {}, "template": {}},
            "status": {"observedGeneration": observed, "replicas": replicas, "readyReplicas": ready, "updatedReplicas": updated},
        }))
        .unwrap()
    }

    fn healthy(deployment: Option<Deployment>, pods: Vec<Pod>) -> Observed {
        Observed { deployment, pods, runtime_class_exists: true, ready_nodes: 1, autoscaler: None }
    }

    fn hpa(reason: &str, message: &str) -> HorizontalPodAutoscaler {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "hello"},
            "spec": {"maxReplicas": 3, "scaleTargetRef": {"kind": "Deployment", "name": "hello"}},
            "status": {"desiredReplicas": 1, "conditions": [
                {"type": "AbleToScale", "status": "True", "reason": "SucceededGetScale"},
                {"type": "ScalingActive", "status": if reason.is_empty() { "True" } else { "False" },
                 "reason": reason, "message": message},
            ]},
        }))
        .unwrap()
    }

    #[test]
    fn an_hpa_without_its_metric_degrades_the_app_and_names_the_fix() {
        let cases = [
            ("", None),
            ("ScalingDisabled", None),
            ("FailedGetResourceMetric", Some("metrics-server")),
            (
                "FailedGetPodsMetric",
                Some("adapter serving spore_http_requests_in_flight, which the pods export on their `metrics` port"),
            ),
            ("InvalidMetricSourceType", Some("the HorizontalPodAutoscaler cannot scale: boom")),
        ];
        for (reason, expected) in cases {
            let found = autoscaler_problem(&hpa(reason, "boom"));
            match expected {
                None => assert_eq!(found, None, "{reason}"),
                Some(text) => {
                    let p = found.unwrap_or_else(|| panic!("{reason}: no problem"));
                    assert_eq!(p.reason, "AutoscalingInactive");
                    assert!(p.message.contains(text) && p.message.contains("boom"), "{reason}: {}", p.message);
                }
            }
        }
        let observed = Observed {
            autoscaler: Some(hpa("FailedGetResourceMetric", "no metrics")),
            ..healthy(Some(deployment(1, 1, 1, 1, 1)), vec![])
        };
        let summary = summarize("spore", None, &observed);
        assert_eq!(
            reasons(&summary),
            [
                (READY, true, "ReplicasReady"),
                (PROGRESSING, false, "RolloutComplete"),
                (DEGRADED, true, "AutoscalingInactive")
            ]
        );
    }

    fn reasons(s: &Summary) -> Vec<(&str, bool, &str)> {
        s.conditions.iter().map(|c| (c.type_, c.status, c.reason.as_str())).collect()
    }

    #[test]
    fn conditions_follow_the_rollout() {
        let cases = [
            (
                "no deployment yet",
                healthy(None, vec![]),
                Some(2),
                [(false, "ReplicasNotReady"), (true, "RollingOut"), (false, "AsExpected")],
            ),
            (
                "rolling",
                healthy(Some(deployment(3, 3, 2, 1, 2)), vec![]),
                Some(2),
                [(false, "ReplicasNotReady"), (true, "RollingOut"), (false, "AsExpected")],
            ),
            (
                "old generation",
                healthy(Some(deployment(4, 3, 2, 2, 2)), vec![]),
                Some(2),
                [(true, "ReplicasReady"), (true, "RollingOut"), (false, "AsExpected")],
            ),
            (
                "done",
                healthy(Some(deployment(3, 3, 2, 2, 2)), vec![]),
                Some(2),
                [(true, "ReplicasReady"), (false, "RolloutComplete"), (false, "AsExpected")],
            ),
            (
                "zero",
                healthy(Some(deployment(3, 3, 0, 0, 0)), vec![]),
                Some(0),
                [(true, "ScaledToZero"), (false, "RolloutComplete"), (false, "AsExpected")],
            ),
            (
                "autoscaled",
                healthy(Some(deployment(3, 3, 4, 4, 4)), vec![]),
                None,
                [(true, "ReplicasReady"), (false, "RolloutComplete"), (false, "AsExpected")],
            ),
        ];
        for (name, observed, desired, expected) in cases {
            let s = summarize("spore", desired, &observed);
            let expected: Vec<_> =
                [READY, PROGRESSING, DEGRADED].into_iter().zip(expected).map(|(t, (s, r))| (t, s, r)).collect();
            assert_eq!(reasons(&s), expected, "{name}");
        }
    }

    #[test]
    fn counts_come_from_the_deployment() {
        let s = summarize("spore", Some(3), &healthy(Some(deployment(1, 1, 3, 2, 3)), vec![]));
        assert_eq!((s.replicas, s.ready_replicas), (3, 2));
    }

    #[test]
    fn runtime_problems_come_first() {
        let missing = Observed { runtime_class_exists: false, ..healthy(None, vec![]) };
        let s = summarize("wasm", Some(1), &missing);
        assert_eq!(reasons(&s)[2], (DEGRADED, true, "RuntimeClassNotFound"));
        assert!(s.conditions[2].message.contains("runtimeClassName: wasm"), "{}", s.conditions[2].message);
        let no_nodes = Observed { ready_nodes: 0, ..healthy(None, vec![]) };
        let s = summarize("spore", Some(1), &no_nodes);
        assert_eq!(reasons(&s)[0], (READY, false, "NoWasmNodes"));
        assert!(s.conditions[0].message.contains("runtime.spore.dev/spore=ready"));
    }

    #[test]
    fn pod_troubles_are_classified() {
        let waiting = |reason: &str, message: &str| {
            pod(
                serde_json::json!({"containerStatuses": [{"name": "app", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": reason, "message": message}}}]}),
            )
        };
        let crash = |message: &str, code: i32| {
            pod(
                serde_json::json!({"containerStatuses": [{"name": "app", "image": "i", "imageID": "", "ready": false, "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
                "lastState": {"terminated": {"exitCode": code, "reason": "StartError", "message": message}}}]}),
            )
        };
        let cases = [
            (waiting("ErrImagePull", "not found"), Some(("ImagePullFailed", "not found"))),
            (waiting("ImagePullBackOff", "Back-off pulling"), Some(("ImagePullFailed", "Back-off pulling"))),
            (
                waiting("CreateContainerConfigError", "configmap \"x\" not found"),
                Some(("ConfigError", "configmap \"x\" not found")),
            ),
            (
                waiting("RunContainerError", "failed to start: invalid WebAssembly: bad magic"),
                Some(("ModuleInvalid", "failed to start: invalid WebAssembly: bad magic")),
            ),
            (crash("not a WebAssembly binary: text", 128), Some(("ModuleInvalid", "not a WebAssembly binary: text"))),
            (crash("", 3), Some(("CrashLoop", "the guest keeps exiting (last exit code 3)"))),
            (waiting("ContainerCreating", ""), None),
            (
                pod(
                    serde_json::json!({"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/2 nodes are available"}]}),
                ),
                Some(("Unschedulable", "0/2 nodes are available")),
            ),
            (pod(serde_json::json!({})), None),
        ];
        for (pod, expected) in cases {
            let got = pod_problem(&pod);
            assert_eq!(got.as_ref().map(|p| (p.reason, p.message.as_str())), expected, "{:?}", pod.status);
        }
    }

    #[test]
    fn a_failing_pod_degrades_the_app_and_names_the_reason() {
        let bad = pod(
            serde_json::json!({"containerStatuses": [{"name": "app", "image": "i", "imageID": "", "ready": false, "restartCount": 1,
            "state": {"waiting": {"reason": "RunContainerError", "message": "invalid WebAssembly: x"}}}]}),
        );
        let s = summarize("spore", Some(1), &healthy(Some(deployment(1, 1, 1, 0, 1)), vec![bad]));
        assert_eq!(
            reasons(&s),
            [(READY, false, "ModuleInvalid"), (PROGRESSING, false, "ModuleInvalid"), (DEGRADED, true, "ModuleInvalid")]
        );
    }
}
