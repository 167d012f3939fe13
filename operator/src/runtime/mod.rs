//! The WasmRuntime controller: publishes the RuntimeClass, runs the installer DaemonSet on
//! the selected nodes, reports each node's state, and on deletion uninstalls from every
//! node (one Job per node) before letting the WasmRuntime go.

pub mod retire;
pub mod status;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::node::v1::RuntimeClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, predicates, watcher};
use kube::{Api, Resource, ResourceExt};
use spore_crds::runtime::{node_label, node_state};
use spore_crds::{NodeStatus, WasmRuntime, WasmRuntimeStatus};
use tracing::{info, instrument, warn};

use self::retire::{job_outcome, node_is_ready, plan_retirement};
use self::status::{node_statuses, ready_condition};
use crate::apply::apply;
use crate::conditions::{to_conditions, truncate, without_times};
use crate::context::Context;
use crate::error::{Error, Result, kube_err};
use crate::resources::daemonset::{daemonset_name, desired_daemonset, installer_labels};
use crate::resources::runtime_class::desired_runtime_class;
use crate::resources::uninstall_job::{desired_uninstall_job, uninstall_job_name};
use crate::resources::{RUNTIME_LABEL, name_of, selector_string};

pub const CONTROLLER: &str = "wasmruntime";
/// Holds a WasmRuntime until every node it was installed on is cleaned up.
pub const FINALIZER: &str = "spore.dev/uninstall";
const REQUEUE_SETTLED: Duration = Duration::from_secs(300);
const REQUEUE_PENDING: Duration = Duration::from_secs(10);

/// Runs the controller until `shutdown` resolves.
pub async fn run(ctx: Arc<Context>, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    let client = ctx.client.clone();
    let namespace = ctx.settings.installer.namespace.clone();
    let controller =
        Controller::new(Api::<WasmRuntime>::all(client.clone()), watcher::Config::default().any_semantic())
            .owns(
                Api::<DaemonSet>::namespaced(client.clone(), &namespace),
                watcher::Config::default().labels(RUNTIME_LABEL),
            )
            .owns(Api::<RuntimeClass>::all(client.clone()), watcher::Config::default().labels(RUNTIME_LABEL))
            .watches(
                Api::<Pod>::namespaced(client.clone(), &namespace),
                watcher::Config::default().labels(RUNTIME_LABEL),
                |p: Pod| owning_runtime(&p),
            )
            .watches(
                Api::<Job>::namespaced(client.clone(), &namespace),
                watcher::Config::default().labels(RUNTIME_LABEL),
                |j: Job| owning_runtime(&j),
            )
            .reconcile_all_on(node_label_changes(client))
            .graceful_shutdown_on(shutdown);
    let store = controller.store();
    let metrics = ctx.metrics.clone();
    controller
        .run(reconcile, error_policy, ctx)
        .for_each(|result| {
            metrics.set_managed(CONTROLLER, store.len());
            crate::error::log_outcome(CONTROLLER, &result);
            futures::future::ready(())
        })
        .await;
}

/// Fires whenever a node's labels change: a node may enter or leave a runtime's selector.
/// Metadata only, and label changes only, so node heartbeats cost nothing.
fn node_label_changes(client: kube::Client) -> impl futures::Stream<Item = ()> + Send + 'static {
    watcher(Api::<PartialObjectMeta<Node>>::all(client), watcher::Config::default().any_semantic())
        .default_backoff()
        .applied_objects()
        .predicate_filter(predicates::labels, Default::default())
        .filter_map(|node| {
            futures::future::ready(match node {
                Ok(_) => Some(()),
                Err(e) => {
                    warn!(error = %e, "watching node labels failed; retrying");
                    None
                }
            })
        })
}

/// The runtime a labelled object (installer pod, uninstall Job) belongs to.
fn owning_runtime<K: ResourceExt>(obj: &K) -> Option<ObjectRef<WasmRuntime>> {
    obj.labels().get(RUNTIME_LABEL).map(|rt| ObjectRef::new(rt))
}

#[instrument(skip_all, fields(runtime = %rt.name_any()))]
pub async fn reconcile(rt: Arc<WasmRuntime>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile(CONTROLLER);
    let api = Api::<WasmRuntime>::all(ctx.client.clone());
    if rt.metadata.deletion_timestamp.is_some() && !still_finalizing(&api, &rt).await? {
        // The cache lags behind our own finalizer removal: cleaning up again would start
        // uninstall Jobs for a runtime that is already gone.
        return Ok(Action::await_change());
    }
    let action = finalizer(&api, FINALIZER, rt, |event| async {
        match event {
            Finalizer::Apply(rt) => install(&rt, &ctx).await,
            Finalizer::Cleanup(rt) => uninstall(&rt, &ctx).await,
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e) | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer(Box::new(other)),
    })?;
    Ok(action)
}

/// Whether the API server (not the cache) still holds `rt` with our finalizer.
async fn still_finalizing(api: &Api<WasmRuntime>, rt: &WasmRuntime) -> Result<bool> {
    let name = rt.name_any();
    let fresh = api.get_opt(&name).await.map_err(kube_err(format!("get WasmRuntime {name}")))?;
    Ok(fresh.is_some_and(|f| f.finalizers().iter().any(|f| f == FINALIZER)))
}

async fn install(rt: &WasmRuntime, ctx: &Context) -> Result<Action> {
    let name = name_of(rt, "WasmRuntime")?;
    let settings = &ctx.settings.installer;
    apply(&Api::<RuntimeClass>::all(ctx.client.clone()), &desired_runtime_class(rt)?).await?;
    apply(&Api::<DaemonSet>::namespaced(ctx.client.clone(), &settings.namespace), &desired_daemonset(rt, settings)?)
        .await?;

    let selected = selected_nodes(ctx, rt).await?;
    let pods = Api::<Pod>::namespaced(ctx.client.clone(), &settings.namespace)
        .list(&ListParams::default().labels(&selector_string(&installer_labels(&name, "install"))))
        .await
        .map_err(kube_err(format!("list installer pods of WasmRuntime {name}")))?;
    let mut nodes = node_statuses(&rt.spec.runtime_class_name, &selected, &pods.items);
    let ready = ready_condition(&nodes);
    let retiring = retire(ctx, rt, &selected, &pods.items).await?;
    let settled = ready.status && retiring.is_empty();
    nodes.extend(retiring);
    let previous = rt.status.clone().unwrap_or_default();
    for node in changed_nodes(&nodes, &previous.nodes) {
        publish_node_event(ctx, rt, node).await;
    }
    for node in uninstalled_nodes(&nodes, &previous.nodes) {
        publish(ctx, rt, EventType::Normal, "Uninstalled", format!("node {node}: no longer selected; runtime removed"))
            .await;
    }
    let status = WasmRuntimeStatus {
        conditions: to_conditions(&[ready], &previous.conditions, rt.metadata.generation, Time(jiff::Timestamp::now())),
        observed_generation: rt.metadata.generation,
        nodes,
    };
    if status.nodes != previous.nodes
        || status.observed_generation != previous.observed_generation
        || without_times(&status.conditions) != without_times(&previous.conditions)
    {
        let mut patch = serde_json::json!({"status": status});
        // Serialization leaves an empty list out, and a merge patch keeps what it leaves out.
        patch["status"]["nodes"] = serde_json::json!(status.nodes);
        Api::<WasmRuntime>::all(ctx.client.clone())
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map_err(kube_err(format!("update status of WasmRuntime {name}")))?;
    }
    ctx.succeeded(&name);
    Ok(Action::requeue(if settled { REQUEUE_SETTLED } else { REQUEUE_PENDING }))
}

/// Starts, and reports on, the uninstall of nodes the selector no longer picks.
async fn retire(ctx: &Context, rt: &WasmRuntime, selected: &[Node], installer_pods: &[Pod]) -> Result<Vec<NodeStatus>> {
    let name = name_of(rt, "WasmRuntime")?;
    let settings = &ctx.settings.installer;
    let jobs = Api::<Job>::namespaced(ctx.client.clone(), &settings.namespace);
    let existing = jobs
        .list(&ListParams::default().labels(&selector_string(&installer_labels(&name, "uninstall"))))
        .await
        .map_err(kube_err(format!("list uninstall Jobs of WasmRuntime {name}")))?;
    let labelled = labelled_nodes(ctx, rt).await?;
    let plan = plan_retirement(&name, &settings.namespace, &labelled, selected, installer_pods, &existing.items);
    for node in &plan.start {
        info!(runtime = %name, %node, "no longer selected: uninstalling");
        apply(&jobs, &desired_uninstall_job(rt, node, settings)?).await?;
    }
    for job in &plan.delete_jobs {
        ignore_missing(jobs.delete(job, &DeleteParams::background()).await)
            .map_err(kube_err(format!("delete finished Job {job}")))?;
    }
    Ok(plan.statuses)
}

/// Nodes labelled as serving the runtime's class.
async fn labelled_nodes(ctx: &Context, rt: &WasmRuntime) -> Result<Vec<Node>> {
    let label = node_label(&rt.spec.runtime_class_name);
    Api::<Node>::all(ctx.client.clone())
        .list(&ListParams::default().labels(&label))
        .await
        .map(|l| l.items)
        .map_err(kube_err(format!("list nodes labelled {label}")))
}

/// Nodes the runtime's node selector picks.
async fn selected_nodes(ctx: &Context, rt: &WasmRuntime) -> Result<Vec<Node>> {
    let selector = selector_string(&rt.spec.node_selector);
    Api::<Node>::all(ctx.client.clone())
        .list(&ListParams::default().labels(&selector))
        .await
        .map(|l| l.items)
        .map_err(kube_err(format!("list nodes matching {selector:?}")))
}

/// Nodes that were being uninstalled and are gone from the status: done.
fn uninstalled_nodes<'a>(nodes: &[NodeStatus], previous: &'a [NodeStatus]) -> impl Iterator<Item = &'a str> {
    previous
        .iter()
        .filter(|p| p.state == node_state::UNINSTALLING && !nodes.iter().any(|n| n.name == p.name))
        .map(|p| p.name.as_str())
}

fn changed_nodes<'a>(nodes: &'a [NodeStatus], previous: &[NodeStatus]) -> impl Iterator<Item = &'a NodeStatus> {
    nodes.iter().filter(move |n| !previous.iter().any(|p| p.name == n.name && p.state == n.state))
}

async fn publish_node_event(ctx: &Context, rt: &WasmRuntime, node: &NodeStatus) {
    let (type_, reason) = match node.state.as_str() {
        node_state::READY => (EventType::Normal, "Installed"),
        node_state::FAILED => (EventType::Warning, "InstallFailed"),
        node_state::INSTALLING => (EventType::Normal, "Installing"),
        node_state::UNINSTALLING => (EventType::Normal, "Uninstalling"),
        node_state::UNINSTALL_FAILED => (EventType::Warning, "UninstallFailed"),
        _ => return,
    };
    let note = match &node.message {
        Some(m) => format!("node {}: {m}", node.name),
        None => format!("node {}", node.name),
    };
    publish(ctx, rt, type_, reason, note).await;
}

async fn publish(ctx: &Context, rt: &WasmRuntime, type_: EventType, reason: &str, note: String) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(truncate(&note, 1000)),
        action: "Install".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &rt.object_ref(&())).await {
        warn!(error = %e, "publishing an event failed");
    }
}

/// Stops installing, then runs an uninstall Job on every node that may have the runtime;
/// the finalizer stays until all of them succeeded.
async fn uninstall(rt: &WasmRuntime, ctx: &Context) -> Result<Action> {
    let name = name_of(rt, "WasmRuntime")?;
    let settings = &ctx.settings.installer;
    let daemonsets = Api::<DaemonSet>::namespaced(ctx.client.clone(), &settings.namespace);
    ignore_missing(daemonsets.delete(&daemonset_name(&name), &DeleteParams::foreground()).await)
        .map_err(kube_err(format!("delete the installer DaemonSet of {name}")))?;

    let jobs = Api::<Job>::namespaced(ctx.client.clone(), &settings.namespace);
    let mut pending = Vec::new();
    let mut failed = Vec::new();
    for node in nodes_to_clean(ctx, rt).await? {
        let job_name = uninstall_job_name(&name, &node);
        match jobs.get_opt(&job_name).await.map_err(kube_err(format!("get Job {job_name}")))? {
            None => {
                apply(&jobs, &desired_uninstall_job(rt, &node, settings)?).await?;
                pending.push(node);
            }
            Some(job) => match job_outcome(&job) {
                Some(true) => {}
                Some(false) => failed.push(format!("{node} (kubectl -n {} logs job/{job_name})", settings.namespace)),
                None => pending.push(node),
            },
        }
    }
    if !failed.is_empty() {
        let message = format!(
            "uninstall failed on {}; fix the node and delete the Job to retry, or remove the finalizer {FINALIZER} to give up",
            failed.join(", ")
        );
        publish(ctx, rt, EventType::Warning, "UninstallFailed", message.clone()).await;
        return Err(Error::UninstallPending(message));
    }
    if !pending.is_empty() {
        return Err(Error::UninstallPending(format!("waiting for uninstall on {}", pending.join(", "))));
    }
    let labels = selector_string(&installer_labels(&name, "uninstall"));
    jobs.delete_collection(&DeleteParams::background(), &ListParams::default().labels(&labels))
        .await
        .map_err(kube_err(format!("delete the uninstall Jobs of {name}")))?;
    // Garbage collection would remove it too, but later: nothing should schedule onto a
    // runtime that is gone.
    let classes = Api::<RuntimeClass>::all(ctx.client.clone());
    ignore_missing(classes.delete(&rt.spec.runtime_class_name, &DeleteParams::background()).await)
        .map_err(kube_err(format!("delete RuntimeClass {}", rt.spec.runtime_class_name)))?;
    info!(runtime = %name, "uninstalled from every node");
    Ok(Action::await_change())
}

/// Nodes the runtime may be installed on: those it selects and those labelled for it.
/// Nodes that are not Ready cannot run a Job and are skipped.
async fn nodes_to_clean(ctx: &Context, rt: &WasmRuntime) -> Result<BTreeSet<String>> {
    let labelled = labelled_nodes(ctx, rt).await?;
    let selected = selected_nodes(ctx, rt).await?;
    Ok(labelled.iter().chain(&selected).filter(|n| node_is_ready(n)).filter_map(|n| n.metadata.name.clone()).collect())
}

fn ignore_missing<T>(result: Result<T, kube::Error>) -> Result<(), kube::Error> {
    match result {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Retries with per-runtime backoff; a pending uninstall is polled, not backed off.
pub fn error_policy(rt: Arc<WasmRuntime>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.error(CONTROLLER, error.reason());
    if let Error::UninstallPending(message) = error {
        info!(runtime = %rt.name_any(), %message, "uninstall in progress");
        return Action::requeue(Duration::from_secs(3));
    }
    let delay = ctx.next_backoff(&rt.name_any());
    warn!(runtime = %rt.name_any(), error = %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::fixtures::{call, mock_context, not_found, runtime};

    const NS: &str = "/apis/apps/v1/namespaces/spore-system";

    async fn run(rt: WasmRuntime, calls: Vec<crate::fixtures::Call>) -> (Result<Action>, Vec<serde_json::Value>) {
        let (ctx, verifier) = mock_context(calls);
        let result = tokio::time::timeout(Duration::from_secs(5), reconcile(Arc::new(rt), ctx))
            .await
            .expect("reconcile finished (a hang means a call nobody expected)");
        (result, tokio::time::timeout(Duration::from_secs(5), verifier).await.unwrap().unwrap())
    }

    fn with_finalizer(mut rt: WasmRuntime) -> WasmRuntime {
        rt.metadata.finalizers = Some(vec![FINALIZER.into()]);
        rt
    }

    fn node_list(labelled: bool) -> serde_json::Value {
        let labels =
            if labelled { serde_json::json!({"runtime.spore.dev/spore": "ready"}) } else { serde_json::json!({}) };
        serde_json::json!({"apiVersion": "v1", "kind": "NodeList", "metadata": {}, "items": [{"metadata": {"name": "node-wasm", "labels": labels},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}]})
    }

    fn job_list() -> serde_json::Value {
        serde_json::json!({"apiVersion": "batch/v1", "kind": "JobList", "metadata": {}, "items": []})
    }

    #[tokio::test]
    async fn a_new_runtime_gets_its_finalizer_before_anything_else() {
        let rt = runtime("");
        let (result, bodies) = run(
            rt.clone(),
            vec![call(
                "PATCH",
                "/apis/spore.dev/v1alpha1/wasmruntimes/spore",
                serde_json::to_value(with_finalizer(rt)).unwrap(),
            )],
        )
        .await;
        assert_eq!(result.unwrap(), Action::await_change());
        assert!(bodies[0].to_string().contains(FINALIZER), "{}", bodies[0]);
    }

    fn empty_node_list() -> serde_json::Value {
        serde_json::json!({"apiVersion": "v1", "kind": "NodeList", "metadata": {}, "items": []})
    }

    /// The calls of an install reconcile up to its status: apply both objects, then list
    /// the selected nodes, installer pods, uninstall Jobs and labelled nodes.
    fn install_calls(selected: serde_json::Value, labelled: serde_json::Value) -> Vec<crate::fixtures::Call> {
        vec![
            call(
                "PATCH",
                "/apis/node.k8s.io/v1/runtimeclasses/spore",
                serde_json::json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "spore"}, "handler": "spore"}),
            ),
            call(
                "PATCH",
                &format!("{NS}/daemonsets/spore-installer-spore"),
                serde_json::json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "spore-installer-spore"}}),
            ),
            call("GET", "/api/v1/nodes", selected),
            call(
                "GET",
                "/api/v1/namespaces/spore-system/pods",
                serde_json::json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": []}),
            ),
            call("GET", "/apis/batch/v1/namespaces/spore-system/jobs", job_list()),
            call("GET", "/api/v1/nodes", labelled),
        ]
    }

    fn event_call() -> crate::fixtures::Call {
        call(
            "POST",
            "/apis/events.k8s.io/v1/namespaces/default/events",
            serde_json::json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"}, "eventTime": null}),
        )
    }

    fn status_call(rt: &WasmRuntime) -> crate::fixtures::Call {
        call("PATCH", "/apis/spore.dev/v1alpha1/wasmruntimes/spore/status", serde_json::to_value(rt).unwrap())
    }

    #[tokio::test]
    async fn an_installed_node_makes_the_runtime_ready() {
        let rt = with_finalizer(runtime("  nodeSelector: {spore.dev/node-kind: wasm}\n"));
        let mut calls = install_calls(node_list(true), node_list(true));
        calls.extend([event_call(), status_call(&rt)]);
        let (result, bodies) = run(rt, calls).await;
        assert_eq!(result.unwrap(), Action::requeue(REQUEUE_SETTLED));
        assert_eq!(bodies[6]["reason"], "Installed");
        let status = &bodies[7]["status"];
        assert_eq!(status["conditions"][0]["reason"], "AllNodesReady");
        assert_eq!(status["nodes"][0]["state"], "Ready");
    }

    #[tokio::test]
    async fn a_node_the_selector_drops_gets_an_uninstall_job() {
        let rt = with_finalizer(runtime("  nodeSelector: {spore.dev/node-kind: none}\n"));
        let mut calls = install_calls(empty_node_list(), node_list(true));
        calls.extend([
            call(
                "PATCH",
                "/apis/batch/v1/namespaces/spore-system/jobs/spore-uninstall-node-wasm",
                serde_json::json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "spore-uninstall-node-wasm"}}),
            ),
            event_call(),
            status_call(&rt),
        ]);
        let (result, bodies) = run(rt, calls).await;
        assert_eq!(result.unwrap(), Action::requeue(REQUEUE_PENDING));
        assert_eq!(bodies[6]["spec"]["template"]["spec"]["nodeName"], "node-wasm");
        assert_eq!(bodies[7]["reason"], "Uninstalling");
        let status = &bodies[8]["status"];
        assert_eq!(status["conditions"][0]["reason"], "NoNodesSelected");
        assert_eq!(status["nodes"][0]["state"], "Uninstalling");
    }

    #[tokio::test]
    async fn a_node_done_uninstalling_leaves_the_status_with_an_event() {
        let mut rt = with_finalizer(runtime("  nodeSelector: {spore.dev/node-kind: none}\n"));
        rt.status = Some(WasmRuntimeStatus {
            nodes: vec![NodeStatus {
                name: "node-wasm".into(),
                state: node_state::UNINSTALLING.into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        let mut calls = install_calls(empty_node_list(), empty_node_list());
        calls.extend([event_call(), status_call(&rt)]);
        let (result, bodies) = run(rt, calls).await;
        assert_eq!(result.unwrap(), Action::requeue(REQUEUE_PENDING));
        assert_eq!(bodies[6]["reason"], "Uninstalled");
        assert_eq!(bodies[7]["status"]["nodes"], serde_json::json!([]), "the merge patch clears the list");
    }

    #[tokio::test]
    async fn deleting_a_runtime_waits_for_the_uninstall_job_of_each_node() {
        let mut rt = with_finalizer(runtime(""));
        rt.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()));
        let calls = vec![
            call("GET", "/apis/spore.dev/v1alpha1/wasmruntimes/spore", serde_json::to_value(&rt).unwrap()),
            not_found("DELETE", &format!("{NS}/daemonsets/spore-installer-spore")),
            call("GET", "/api/v1/nodes", node_list(true)),
            call("GET", "/api/v1/nodes", node_list(true)),
            not_found("GET", "/apis/batch/v1/namespaces/spore-system/jobs/spore-uninstall-node-wasm"),
            call(
                "PATCH",
                "/apis/batch/v1/namespaces/spore-system/jobs/spore-uninstall-node-wasm",
                serde_json::json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "spore-uninstall-node-wasm"}}),
            ),
        ];
        let (result, bodies) = run(rt, calls).await;
        match result {
            Err(Error::UninstallPending(message)) => assert_eq!(message, "waiting for uninstall on node-wasm"),
            other => panic!("expected a pending uninstall, got {other:?}"),
        }
        assert_eq!(bodies[5]["spec"]["template"]["spec"]["nodeName"], "node-wasm");
    }

    #[tokio::test]
    async fn once_every_node_is_clean_the_finalizer_goes() {
        let mut rt = with_finalizer(runtime(""));
        rt.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()));
        let done = serde_json::json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "spore-uninstall-node-wasm"}, "status": {"succeeded": 1}});
        let calls = vec![
            call("GET", "/apis/spore.dev/v1alpha1/wasmruntimes/spore", serde_json::to_value(&rt).unwrap()),
            not_found("DELETE", &format!("{NS}/daemonsets/spore-installer-spore")),
            call("GET", "/api/v1/nodes", node_list(false)),
            call("GET", "/api/v1/nodes", node_list(false)),
            call("GET", "/apis/batch/v1/namespaces/spore-system/jobs/spore-uninstall-node-wasm", done),
            call(
                "DELETE",
                "/apis/batch/v1/namespaces/spore-system/jobs",
                serde_json::json!({"apiVersion": "batch/v1", "kind": "JobList", "metadata": {}, "items": []}),
            ),
            not_found("DELETE", "/apis/node.k8s.io/v1/runtimeclasses/spore"),
            call("PATCH", "/apis/spore.dev/v1alpha1/wasmruntimes/spore", serde_json::to_value(runtime("")).unwrap()),
        ];
        let (result, bodies) = run(rt, calls).await;
        assert_eq!(result.unwrap(), Action::await_change());
        assert!(bodies[7].to_string().contains("remove"), "the finalizer is removed: {}", bodies[7]);
    }

    #[tokio::test]
    async fn a_runtime_already_gone_is_not_cleaned_up_again() {
        let mut rt = runtime("");
        rt.metadata.finalizers = Some(vec![FINALIZER.into()]);
        rt.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()));
        let (ctx, verifier) = mock_context(vec![not_found("GET", "/apis/spore.dev/v1alpha1/wasmruntimes/spore")]);
        let action = tokio::time::timeout(Duration::from_secs(5), reconcile(Arc::new(rt), ctx)).await.unwrap().unwrap();
        assert_eq!(action, Action::await_change());
        verifier.await.unwrap();
    }
}
