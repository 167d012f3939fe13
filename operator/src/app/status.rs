//! A WasmApp's status from what the cluster shows: its Deployment (or its Job or CronJob and
//! their runs), its pods, and whether any node serves its RuntimeClass. Pure: classify each
//! pod's trouble and each run's state, then one match.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job, JobCondition};
use k8s_openapi::api::core::v1::{ContainerStateTerminated, ContainerStatus, Pod};
use kube::ResourceExt;
use spore_crds::LastRun;

use crate::conditions::{Cond, truncate};
use crate::resources::job::JOB_NAME_LABEL;
use crate::resources::pod::CONTAINER_NAME;

pub const READY: &str = "Ready";
pub const PROGRESSING: &str = "Progressing";
pub const DEGRADED: &str = "Degraded";

/// Messages of the shim that mean the module itself is bad, not the pod around it.
const MODULE_ERRORS: [&str; 4] =
    ["not a WebAssembly binary", "invalid WebAssembly", "unsupported Wasm", "failed to instantiate the guest"];

/// What the shim's error says when an app's components do not link (`spore_shim::compose`).
const COMPOSITION_ERROR: &str = "components do not link";

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
    /// `job` apps: the Job of the current spec.
    pub job: Option<Job>,
    /// `cronJob` apps: the CronJob, and the Jobs it made (its runs).
    pub cron_job: Option<CronJob>,
    pub runs: Vec<Job>,
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
    pub last_run: Option<LastRun>,
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
    // Pods of a Job the app ran before it became a Deployment are not its trouble.
    let pods = observed.pods.iter().filter(|p| !p.labels().contains_key(JOB_NAME_LABEL));
    let trouble = runtime_problem(runtime_class, observed)
        .or_else(|| pods.into_iter().find_map(pod_problem))
        .or_else(|| observed.autoscaler.as_ref().and_then(autoscaler_problem));

    let ready_cond = match (&trouble, ready >= wanted) {
        (_, true) if wanted == 0 => Cond::new(READY, true, SCALED_TO_ZERO, "no replicas requested"),
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
    Summary { conditions: vec![ready_cond, progressing, degraded], replicas, ready_replicas: ready, last_run: None }
}

/// Reason of Ready when the autoscaler took the app to zero: healthy, waiting for a request.
pub const IDLE: &str = "Idle";

/// An app its autoscaler took to zero is Ready with reason Idle, not merely "no replicas".
pub fn idle_at_zero(summary: Summary, idle_after: std::time::Duration) -> Summary {
    let conditions = summary
        .conditions
        .into_iter()
        .map(|c| match (c.type_, c.reason.as_str()) {
            (READY, SCALED_TO_ZERO) => Cond::new(
                READY,
                true,
                IDLE,
                format!("scaled to zero after {}s without requests; the next request wakes it", idle_after.as_secs()),
            ),
            _ => c,
        })
        .collect();
    Summary { conditions, ..summary }
}

const SCALED_TO_ZERO: &str = "ScaledToZero";

/// Where a run is, from its Job's conditions.
#[derive(Clone, Debug, PartialEq)]
pub enum RunState<'a> {
    Running,
    Succeeded,
    Failed(&'a JobCondition),
}

impl<'a> RunState<'a> {
    pub fn of(job: &'a Job) -> Self {
        let conditions = job.status.as_ref().and_then(|s| s.conditions.as_ref());
        let holds = |type_: &str| conditions.into_iter().flatten().find(|c| c.type_ == type_ && c.status == "True");
        match (holds("Complete"), holds("Failed")) {
            (Some(_), _) => Self::Succeeded,
            (None, Some(failed)) => Self::Failed(failed),
            (None, None) => Self::Running,
        }
    }
}

/// A `job` app's conditions: running, then succeeded or failed; a pod's trouble (a bad
/// module, no Wasm node, ...) outranks everything but success.
pub fn summarize_job(runtime_class: &str, observed: &Observed) -> Summary {
    let Some(job) = &observed.job else {
        let waiting = Cond::new(READY, false, RUNNING, "the Job is not created yet");
        return batch_summary(waiting, Cond::new(PROGRESSING, true, RUNNING, ""), None, None);
    };
    let pods = pods_of(&observed.pods, &job.name_any());
    let run = last_run(job, &pods);
    let trouble = runtime_problem(runtime_class, observed).or_else(|| pods.iter().copied().find_map(pod_problem));
    let summary = match (RunState::of(job), trouble) {
        (RunState::Succeeded, _) => {
            let done = Cond::new(READY, true, SUCCEEDED, run_summary(&run, "succeeded"));
            batch_summary(done.clone(), Cond { type_: PROGRESSING, status: false, ..done }, None, Some(run))
        }
        (_, Some(p)) => troubled(&p, Some(run)),
        (RunState::Failed(failed), None) => job_failed(failed, run),
        (RunState::Running, None) => {
            let running = Cond::new(READY, false, RUNNING, run_summary(&run, "is running"));
            batch_summary(running.clone(), Cond { type_: PROGRESSING, status: true, ..running }, None, Some(run))
        }
    };
    Summary { ready_replicas: ready_pods(Some(job)), ..summary }
}

/// Pods of the run that are ready (what the Available column shows).
fn ready_pods(job: Option<&Job>) -> i32 {
    job.and_then(|j| j.status.as_ref()?.ready).unwrap_or(0)
}

/// A `cronJob` app's conditions: Ready while its schedule runs and its newest finished run
/// did not fail; Progressing while a run is active.
pub fn summarize_cron_job(runtime_class: &str, observed: &Observed) -> Summary {
    let cron = observed.cron_job.as_ref();
    let status = cron.and_then(|c| c.status.clone()).unwrap_or_default();
    let newest = observed.runs.iter().max_by_key(|j| j.creation_timestamp().map(|t| t.0));
    let pods = newest.map(|j| pods_of(&observed.pods, &j.name_any())).unwrap_or_default();
    let run = newest.map(|job| LastRun {
        last_schedule_time: status.last_schedule_time.clone(),
        last_successful_time: status.last_successful_time.clone(),
        ..last_run(job, &pods)
    });
    let active = status.active.as_ref().is_some_and(|a| !a.is_empty());
    let trouble = runtime_problem(runtime_class, observed).or_else(|| pods.iter().copied().find_map(pod_problem));
    let summary = match trouble {
        Some(p) => troubled(&p, run),
        None => scheduled(cron, newest, active, &observed.pods, &observed.runs, run),
    };
    Summary { ready_replicas: ready_pods(newest.filter(|_| active)), ..summary }
}

/// A healthy schedule's conditions: how its newest finished run went, and whether one runs.
fn scheduled(
    cron: Option<&CronJob>,
    newest: Option<&Job>,
    active: bool,
    pods: &[Pod],
    runs: &[Job],
    run: Option<LastRun>,
) -> Summary {
    let suspended = cron.and_then(|c| c.spec.as_ref()?.suspend).unwrap_or(false);
    let newest_finished = runs
        .iter()
        .filter(|j| RunState::of(j) != RunState::Running)
        .max_by_key(|j| j.creation_timestamp().map(|t| t.0));
    let progressing = match (active, newest) {
        (true, Some(job)) => Cond::new(PROGRESSING, true, RUNNING, format!("run {} is running", job.name_any())),
        _ => Cond::new(PROGRESSING, false, "Waiting", "waiting for the next run of the schedule"),
    };
    let schedule = cron.and_then(|c| Some(c.spec.as_ref()?.schedule.clone())).unwrap_or_default();
    let ready = match newest_finished.map(|j| (j, RunState::of(j))) {
        Some((job, RunState::Failed(failed))) => {
            let failed = job_failed(failed, last_run(job, &pods_of(pods, &job.name_any())));
            return Summary { last_run: run, ..failed_while(failed, progressing) };
        }
        _ if suspended => Cond::new(READY, true, "Suspended", format!("schedule {schedule:?} is suspended")),
        Some((job, _)) => Cond::new(READY, true, SUCCEEDED, format!("run {} succeeded", job.name_any())),
        None => Cond::new(READY, true, "Scheduled", format!("runs on schedule {schedule:?}")),
    };
    batch_summary(ready, progressing, None, run)
}

pub const RUNNING: &str = "Running";
pub const SUCCEEDED: &str = "Succeeded";
pub const JOB_FAILED: &str = "JobFailed";

/// The pods of the Job `job`.
fn pods_of<'a>(pods: &'a [Pod], job: &str) -> Vec<&'a Pod> {
    pods.iter().filter(|p| p.labels().get(JOB_NAME_LABEL).map(String::as_str) == Some(job)).collect()
}

fn batch_summary(ready: Cond, progressing: Cond, degraded: Option<Cond>, run: Option<LastRun>) -> Summary {
    let degraded = degraded.unwrap_or_else(|| Cond::new(DEGRADED, false, "AsExpected", ""));
    let (replicas, ready_replicas) = (run.as_ref().map_or(0, |r| r.active), 0);
    Summary { conditions: vec![ready, progressing, degraded], replicas, ready_replicas, last_run: run }
}

fn troubled(p: &Problem, run: Option<LastRun>) -> Summary {
    let [ready, progressing, degraded] = [(READY, false), (PROGRESSING, false), (DEGRADED, true)]
        .map(|(t, s)| Cond::new(t, s, p.reason, p.message.clone()));
    batch_summary(ready, progressing, Some(degraded), run)
}

/// A run past its backoff limit or deadline: the Job's reason, and how the last attempt ended
/// (exit code, trap report).
fn job_failed(failed: &JobCondition, run: LastRun) -> Summary {
    let why = match (failed.reason.as_deref(), failed.message.as_deref()) {
        (Some(r), Some(m)) => format!("{r}: {m}"),
        (Some(r), None) => r.to_string(),
        (None, m) => m.unwrap_or_default().to_string(),
    };
    let attempt = match (run.exit_code, run.message.as_deref().map(str::trim)) {
        (Some(code), Some(m)) if !m.is_empty() => format!("; the last attempt exited with code {code}: {m}"),
        (Some(code), _) => format!("; the last attempt exited with code {code}"),
        (None, _) => String::new(),
    };
    let attempts = if run.failed == 1 { "attempt" } else { "attempts" };
    let message = format!("run {} failed after {} {attempts} ({why}){attempt}", run.job_name, run.failed);
    let cond = |type_, status| Cond::new(type_, status, JOB_FAILED, message.clone());
    batch_summary(cond(READY, false), cond(PROGRESSING, false), Some(cond(DEGRADED, true)), Some(run))
}

/// `failed` with `progressing` in place of its own: a CronJob's next run may be under way.
fn failed_while(failed: Summary, progressing: Cond) -> Summary {
    let conditions =
        failed.conditions.into_iter().map(|c| if c.type_ == PROGRESSING { progressing.clone() } else { c });
    Summary { conditions: conditions.collect(), ..failed }
}

fn run_summary(run: &LastRun, state: &str) -> String {
    let mut text = format!(
        "run {} {state}: {} active, {} succeeded, {} failed",
        run.job_name, run.active, run.succeeded, run.failed
    );
    if let Some(code) = run.exit_code.filter(|_| run.failed > 0) {
        text.push_str(&format!(" (last exit code {code})"));
    }
    text
}

/// The most an attempt's termination message adds to the status.
const MAX_RUN_MESSAGE: usize = 4096;

/// The run of `job` as the status shows it, with how its newest attempt (of `pods`) ended.
pub fn last_run(job: &Job, pods: &[&Pod]) -> LastRun {
    let status = job.status.clone().unwrap_or_default();
    let finished = match RunState::of(job) {
        RunState::Running => None,
        RunState::Failed(c) => c.last_transition_time.clone(),
        RunState::Succeeded => status.completion_time.clone(),
    };
    let attempt = last_attempt(pods);
    LastRun {
        job_name: job.name_any(),
        start_time: status.start_time,
        completion_time: finished,
        active: status.active.unwrap_or(0),
        succeeded: status.succeeded.unwrap_or(0),
        failed: status.failed.unwrap_or(0),
        exit_code: attempt.map(|t| t.exit_code),
        reason: attempt.and_then(|t| t.reason.clone()),
        message: attempt
            .and_then(|t| t.message.as_deref())
            .map(|m| truncate(m.trim_end(), MAX_RUN_MESSAGE))
            .filter(|m| !m.is_empty()),
        ..LastRun::default()
    }
}

/// The newest terminated state of the app's container in `pods`: the attempt that ended last.
fn last_attempt<'a>(pods: &[&'a Pod]) -> Option<&'a ContainerStateTerminated> {
    pods.iter()
        .filter_map(|p| p.status.as_ref()?.container_statuses.as_ref())
        .flatten()
        .filter(|c| c.name == CONTAINER_NAME)
        .filter_map(|c| {
            let terminated =
                |s: &'a Option<k8s_openapi::api::core::v1::ContainerState>| s.as_ref()?.terminated.as_ref();
            terminated(&c.state).or_else(|| terminated(&c.last_state))
        })
        .max_by_key(|t| t.finished_at.as_ref().map(|f| f.0))
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
    // A component's sidecar (an init container) fails before the app's container exists.
    let sidecars = status.init_container_statuses.iter().flatten();
    sidecars.chain(status.container_statuses.iter().flatten()).find_map(container_problem)
}

fn container_problem(c: &ContainerStatus) -> Option<Problem> {
    let waiting = c.state.as_ref().and_then(|s| s.waiting.as_ref());
    let last = c.last_state.as_ref().and_then(|s| s.terminated.as_ref());
    let current = c.state.as_ref().and_then(|s| s.terminated.as_ref());
    let waiting_reason = waiting.and_then(|w| w.reason.as_deref()).unwrap_or_default();
    let waiting_message = waiting.and_then(|w| w.message.clone()).unwrap_or_default();
    let terminated_message = last.or(current).and_then(|t| t.message.clone()).unwrap_or_default();
    // Waiting (a Deployment's pod retries) or terminated (a job's pod does not): the same error.
    if let Some(m) = [&waiting_message, &terminated_message].into_iter().find(|m| m.contains(COMPOSITION_ERROR)) {
        return Some(problem("CompositionFailed", m.clone()));
    }
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
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

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
        Observed { deployment, pods, runtime_class_exists: true, ready_nodes: 1, ..Observed::default() }
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
            if name == "zero" {
                let idle = idle_at_zero(s.clone(), std::time::Duration::from_secs(60));
                assert_eq!((idle.conditions[0].status, idle.conditions[0].reason.as_str()), (true, IDLE));
                assert!(idle.conditions[0].message.contains("after 60s without requests"), "{:?}", idle.conditions[0]);
                assert_eq!(idle.conditions[1..], s.conditions[1..]);
            }
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
            (
                waiting("CreateContainerError", "the app's components do not link: component \"app\" imports `x`"),
                Some(("CompositionFailed", "the app's components do not link: component \"app\" imports `x`")),
            ),
            (
                crash("the app's components do not link: a cycle", 128),
                Some(("CompositionFailed", "the app's components do not link: a cycle")),
            ),
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

    fn batch_job(name: &str, status: serde_json::Value) -> Job {
        serde_json::from_value(
            serde_json::json!({"metadata": {"name": name, "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"template": {}}, "status": status}),
        )
        .unwrap()
    }

    fn finished(type_: &str, reason: &str) -> serde_json::Value {
        serde_json::json!({"failed": 1, "conditions": [{"type": type_, "status": "True", "reason": reason, "message": "m",
            "lastTransitionTime": "2026-01-01T00:01:00Z"}]})
    }

    /// A pod of Job `job` whose app container ended with `terminated`.
    fn run_pod(job: &str, terminated: serde_json::Value) -> Pod {
        let mut p =
            pod(serde_json::json!({"containerStatuses": [{"name": "app", "image": "i", "imageID": "", "ready": false,
            "restartCount": 0, "state": {"terminated": terminated}}]}));
        p.metadata.labels = Some([(JOB_NAME_LABEL.to_string(), job.to_string())].into());
        p
    }

    #[test]
    fn a_job_apps_conditions_follow_its_run() {
        let exited = |code: i32, message: &str| serde_json::json!({"exitCode": code, "reason": "Error", "message": message, "finishedAt": "2026-01-01T00:00:30Z"});
        let cases = [
            (
                "running",
                serde_json::json!({"active": 1}),
                vec![],
                [(false, RUNNING), (true, RUNNING), (false, "AsExpected")],
            ),
            (
                "retrying",
                serde_json::json!({"active": 1, "failed": 1}),
                vec![run_pod("run", exited(3, ""))],
                [(false, RUNNING), (true, RUNNING), (false, "AsExpected")],
            ),
            (
                "succeeded",
                finished("Complete", "CompletionsReached"),
                vec![],
                [(true, SUCCEEDED), (false, SUCCEEDED), (false, "AsExpected")],
            ),
            (
                "failed",
                finished("Failed", "BackoffLimitExceeded"),
                vec![run_pod("run", exited(134, "wasm trap: unreachable"))],
                [(false, JOB_FAILED), (false, JOB_FAILED), (true, JOB_FAILED)],
            ),
            (
                "a bad module outranks the failure",
                finished("Failed", "BackoffLimitExceeded"),
                vec![run_pod("run", exited(128, "invalid WebAssembly: bad magic"))],
                [(false, "ModuleInvalid"), (false, "ModuleInvalid"), (true, "ModuleInvalid")],
            ),
            (
                "another run's pods do not count",
                serde_json::json!({"active": 1}),
                vec![run_pod("old", exited(128, "invalid WebAssembly: bad magic"))],
                [(false, RUNNING), (true, RUNNING), (false, "AsExpected")],
            ),
        ];
        for (name, status, pods, expected) in cases {
            let observed = Observed { job: Some(batch_job("run", status)), ..healthy(None, pods) };
            let s = summarize_job("spore", &observed);
            let expected: Vec<_> =
                [READY, PROGRESSING, DEGRADED].into_iter().zip(expected).map(|(t, (s, r))| (t, s, r)).collect();
            assert_eq!(reasons(&s), expected, "{name}");
            assert_eq!(s.last_run.as_ref().map(|r| r.job_name.as_str()), Some("run"), "{name}");
        }
        let observed = Observed {
            runtime_class_exists: false,
            job: Some(batch_job("run", serde_json::json!({}))),
            ..healthy(None, vec![])
        };
        assert_eq!(reasons(&summarize_job("spore", &observed))[2], (DEGRADED, true, "RuntimeClassNotFound"));
    }

    #[test]
    fn a_failed_run_names_its_reason_exit_code_and_trap() {
        let trap = "wasm trap: integer divide by zero\n  at divide (guest.c:3)\n";
        let pods = vec![
            run_pod("run", serde_json::json!({"exitCode": 1, "finishedAt": "2026-01-01T00:00:10Z"})),
            run_pod(
                "run",
                serde_json::json!({"exitCode": 134, "reason": "Error", "message": trap, "finishedAt": "2026-01-01T00:00:40Z"}),
            ),
        ];
        let observed =
            Observed { job: Some(batch_job("run", finished("Failed", "BackoffLimitExceeded"))), ..healthy(None, pods) };
        let s = summarize_job("spore", &observed);
        assert_eq!(
            s.conditions[2].message,
            "run run failed after 1 attempt (BackoffLimitExceeded: m); the last attempt exited with code 134: \
             wasm trap: integer divide by zero\n  at divide (guest.c:3)"
        );
        let run = s.last_run.unwrap();
        assert_eq!((run.exit_code, run.reason.as_deref(), run.failed), (Some(134), Some("Error"), 1));
        assert_eq!(run.message.as_deref(), Some(trap.trim_end()));
        assert_eq!(run.completion_time.map(|t| t.0.to_string()).as_deref(), Some("2026-01-01T00:01:00Z"));
        let long = "x".repeat(10_000);
        let pod = run_pod("run", serde_json::json!({"exitCode": 134, "message": long}));
        let run = last_run(&batch_job("run", serde_json::json!({})), &[&pod]);
        assert_eq!(run.message.map(|m| m.len()), Some(4096 + 3), "cut like condition messages");
    }

    fn cron(suspend: bool, active: bool) -> CronJob {
        serde_json::from_value(serde_json::json!({"metadata": {"name": "tick"},
            "spec": {"schedule": "* * * * *", "suspend": suspend, "jobTemplate": {}},
            "status": {"active": if active { serde_json::json!([{"name": "tick-2"}]) } else { serde_json::json!([]) },
                "lastScheduleTime": "2026-01-01T00:02:00Z"}}))
        .unwrap()
    }

    #[test]
    fn a_scheduled_apps_conditions_follow_its_newest_runs() {
        let at = |name: &str, minute: u32, status: serde_json::Value| {
            let mut job = batch_job(name, status);
            job.metadata.creation_timestamp = Some(Time(format!("2026-01-01T00:0{minute}:00Z").parse().unwrap()));
            job
        };
        let ok = || finished("Complete", "CompletionsReached");
        let failed = || finished("Failed", "BackoffLimitExceeded");
        let running = || serde_json::json!({"active": 1});
        let cases = [
            (
                "no run yet",
                cron(false, false),
                vec![],
                [(true, "Scheduled"), (false, "Waiting"), (false, "AsExpected")],
            ),
            (
                "suspended",
                cron(true, false),
                vec![at("tick-1", 1, ok())],
                [(true, "Suspended"), (false, "Waiting"), (false, "AsExpected")],
            ),
            (
                "succeeded, next one running",
                cron(false, true),
                vec![at("tick-1", 1, ok()), at("tick-2", 2, running())],
                [(true, SUCCEEDED), (true, RUNNING), (false, "AsExpected")],
            ),
            (
                "failed, next one running",
                cron(false, true),
                vec![at("tick-1", 1, failed()), at("tick-2", 2, running())],
                [(false, JOB_FAILED), (true, RUNNING), (true, JOB_FAILED)],
            ),
            (
                "failed, then succeeded",
                cron(false, false),
                vec![at("tick-2", 2, ok()), at("tick-1", 1, failed())],
                [(true, SUCCEEDED), (false, "Waiting"), (false, "AsExpected")],
            ),
        ];
        for (name, cron_job, runs, expected) in cases {
            let newest = runs.iter().map(|j| j.metadata.name.clone().unwrap()).max();
            let observed = Observed { cron_job: Some(cron_job), runs, ..healthy(None, vec![]) };
            let s = summarize_cron_job("spore", &observed);
            let expected: Vec<_> =
                [READY, PROGRESSING, DEGRADED].into_iter().zip(expected).map(|(t, (s, r))| (t, s, r)).collect();
            assert_eq!(reasons(&s), expected, "{name}");
            let run = s.last_run.as_ref();
            assert_eq!(run.map(|r| r.job_name.clone()), newest, "{name}");
            assert!(run.is_none_or(|r| r.last_schedule_time.is_some()), "{name}");
        }
    }
}
