//! The WasmApp controller: observe the app's Deployment, pods and runtime; compute the
//! Deployment, Service and HPA it should have; server-side apply them; write the status.

pub mod status;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::node::v1::RuntimeClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};
use spore_crds::runtime::{NODE_READY, node_label};
use spore_crds::{WasmApp, WasmAppStatus};
use tracing::{info, instrument, warn};

use self::status::{Observed, summarize};
use crate::apply::{apply, delete_owned};
use crate::conditions::{changed, to_conditions, without_times};
use crate::context::Context;
use crate::error::{Error, Result, kube_err};
use crate::resources::deployment::desired_deployment;
use crate::resources::hpa::desired_hpa;
use crate::resources::service::desired_service;
use crate::resources::{APP_LABEL, app_selector, name_of, namespace_of, selector_string};

pub const CONTROLLER: &str = "wasmapp";
const REQUEUE_SETTLED: Duration = Duration::from_secs(300);
const REQUEUE_PENDING: Duration = Duration::from_secs(15);

/// Runs the controller until `shutdown` resolves.
pub async fn run(ctx: Arc<Context>, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    let client = ctx.client.clone();
    let apps = Api::<WasmApp>::all(client.clone());
    let pods = Api::<Pod>::all(client.clone());
    let controller = Controller::new(apps, watcher::Config::default().any_semantic())
        .owns(Api::<Deployment>::all(client.clone()), watcher::Config::default().labels(APP_LABEL))
        .owns(Api::<Service>::all(client.clone()), watcher::Config::default().labels(APP_LABEL))
        .owns(Api::<HorizontalPodAutoscaler>::all(client), watcher::Config::default().labels(APP_LABEL))
        // Pods belong to ReplicaSets, so their app is found by label, not owner.
        .watches(pods, watcher::Config::default().labels(APP_LABEL), |pod: Pod| {
            let app = pod.labels().get(APP_LABEL)?.clone();
            Some(ObjectRef::<WasmApp>::new(&app).within(&pod.namespace()?))
        })
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

#[instrument(skip_all, fields(app = %app.name_any(), namespace = app.namespace().unwrap_or_default()))]
pub async fn reconcile(app: Arc<WasmApp>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile(CONTROLLER);
    if app.metadata.deletion_timestamp.is_some() {
        // Garbage collection removes what the app owns; writing now would only race it.
        return Ok(Action::await_change());
    }
    let (namespace, name) = (namespace_of(&*app, "WasmApp")?, name_of(&*app, "WasmApp")?);
    let uid = app.uid().ok_or(Error::MissingField { kind: "WasmApp", field: "metadata.uid" })?;
    let runtime_class = runtime_class_of(&app, &ctx);

    let deployment = desired_deployment(&app, &runtime_class)?;
    let service = desired_service(&app)?;
    let hpa = desired_hpa(&app)?;

    let deployments = Api::<Deployment>::namespaced(ctx.client.clone(), &namespace);
    let applied = apply(&deployments, &deployment).await?;
    let services = Api::<Service>::namespaced(ctx.client.clone(), &namespace);
    match service {
        Some(service) => drop(apply(&services, &service).await?),
        None => delete_owned(&services, &name, &uid).await?,
    }
    let hpas = Api::<HorizontalPodAutoscaler>::namespaced(ctx.client.clone(), &namespace);
    let autoscaler = match hpa {
        Some(hpa) => Some(apply(&hpas, &hpa).await?),
        None => {
            delete_owned(&hpas, &name, &uid).await?;
            None
        }
    };

    let mut observed = observe(&ctx, &namespace, &name, &runtime_class, applied).await?;
    observed.autoscaler = autoscaler;
    let desired = app.spec.scaling.autoscale.is_none().then(|| app.spec.scaling.fixed_replicas());
    let summary = summarize(&runtime_class, desired, &observed);
    let previous = app.status.clone().unwrap_or_default();
    let status = WasmAppStatus {
        conditions: to_conditions(
            &summary.conditions,
            &previous.conditions,
            app.metadata.generation,
            Time(jiff::Timestamp::now()),
        ),
        observed_generation: app.metadata.generation,
        replicas: summary.replicas,
        ready_replicas: summary.ready_replicas,
        selector: Some(selector_string(&app_selector(&name))),
    };
    let was_degraded = previous.conditions.iter().any(|c| c.type_ == status::DEGRADED && c.status == "True");
    for cond in changed(&summary.conditions, &previous.conditions) {
        publish(&ctx, &app, cond, was_degraded).await;
    }
    let unchanged = |s: &WasmAppStatus| WasmAppStatus { conditions: without_times(&s.conditions), ..s.clone() };
    if unchanged(&status) != unchanged(&previous) {
        let api = Api::<WasmApp>::namespaced(ctx.client.clone(), &namespace);
        let patch = serde_json::json!({"status": status});
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(kube_err(format!("update status of WasmApp {namespace}/{name}")))?;
    }
    ctx.succeeded(&format!("{namespace}/{name}"));
    let ready = summary.conditions.iter().any(|c| c.type_ == status::READY && c.status);
    Ok(Action::requeue(if ready { REQUEUE_SETTLED } else { REQUEUE_PENDING }))
}

fn runtime_class_of(app: &WasmApp, ctx: &Context) -> String {
    app.spec.runtime_class_name.clone().unwrap_or_else(|| ctx.settings.default_runtime_class.clone())
}

async fn observe(
    ctx: &Context,
    namespace: &str,
    name: &str,
    runtime_class: &str,
    deployment: Deployment,
) -> Result<Observed> {
    let pods = Api::<Pod>::namespaced(ctx.client.clone(), namespace)
        .list(&ListParams::default().labels(&selector_string(&app_selector(name))))
        .await
        .map_err(kube_err(format!("list pods of WasmApp {namespace}/{name}")))?;
    let runtime_class_exists = Api::<RuntimeClass>::all(ctx.client.clone())
        .get_opt(runtime_class)
        .await
        .map_err(kube_err(format!("get RuntimeClass {runtime_class}")))?
        .is_some();
    let ready_nodes = Api::<Node>::all(ctx.client.clone())
        .list_metadata(&ListParams::default().labels(&format!("{}={NODE_READY}", node_label(runtime_class))).limit(1))
        .await
        .map_err(kube_err("list nodes of the runtime"))?
        .items
        .len();
    Ok(Observed { deployment: Some(deployment), pods: pods.items, runtime_class_exists, ready_nodes, autoscaler: None })
}

/// One Event per state change worth telling: ready, degraded (with its reason), recovered,
/// rolling out.
async fn publish(ctx: &Context, app: &WasmApp, cond: &crate::conditions::Cond, was_degraded: bool) {
    let (type_, reason) = match (cond.type_, cond.status) {
        (status::READY, true) => (EventType::Normal, "Ready".to_string()),
        (status::DEGRADED, true) => (EventType::Warning, cond.reason.clone()),
        (status::DEGRADED, false) if was_degraded => (EventType::Normal, "Recovered".to_string()),
        (status::PROGRESSING, true) => (EventType::Normal, "RollingOut".to_string()),
        _ => return,
    };
    let note = if cond.message.is_empty() { None } else { Some(crate::conditions::truncate(&cond.message, 1000)) };
    let event = Event { type_, reason, note, action: "Reconcile".into(), secondary: None };
    if let Err(e) = ctx.recorder.publish(&event, &app.object_ref(&())).await {
        warn!(error = %e, "publishing an event failed");
    }
}

/// Retries with per-app exponential backoff and tells the user through an Event.
pub fn error_policy(app: Arc<WasmApp>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.error(CONTROLLER, error.reason());
    let key = format!("{}/{}", app.namespace().unwrap_or_default(), app.name_any());
    let delay = ctx.next_backoff(&key);
    info!(app = %key, error = %error, retry_in = ?delay, "reconcile failed");
    let event = Event {
        type_: EventType::Warning,
        reason: "ReconcileFailed".into(),
        note: Some(crate::conditions::truncate(&error.to_string(), 1000)),
        action: "Reconcile".into(),
        secondary: None,
    };
    let reference = app.object_ref(&());
    tokio::spawn(async move {
        let _ = ctx.recorder.publish(&event, &reference).await;
    });
    Action::requeue(delay)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::fixtures::{app, call, mock_context, not_found};

    const NS: &str = "/apis/apps/v1/namespaces/apps";

    /// What every reconcile ends with: observe pods, RuntimeClass and nodes, tell the
    /// rollout Event, write the status.
    fn observe_and_report(app: &WasmApp) -> Vec<crate::fixtures::Call> {
        let empty = |kind: &str| serde_json::json!({"apiVersion": "v1", "kind": kind, "metadata": {}, "items": []});
        vec![
            call("GET", "/api/v1/namespaces/apps/pods", empty("PodList")),
            call(
                "GET",
                "/apis/node.k8s.io/v1/runtimeclasses/spore",
                serde_json::json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "spore"}, "handler": "spore"}),
            ),
            call(
                "GET",
                "/api/v1/nodes",
                serde_json::json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": {}, "items": [{"metadata": {"name": "node-wasm"}}]}),
            ),
            call(
                "POST",
                "/apis/events.k8s.io/v1/namespaces/apps/events",
                serde_json::json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"}, "eventTime": null}),
            ),
            call(
                "PATCH",
                "/apis/spore.dev/v1alpha1/namespaces/apps/wasmapps/hello/status",
                serde_json::to_value(app).unwrap(),
            ),
        ]
    }

    fn echo_deployment() -> serde_json::Value {
        serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "hello", "namespace": "apps", "generation": 1},
            "spec": {"replicas": 1, "selector": {}, "template": {}}, "status": {"observedGeneration": 1}})
    }

    async fn run(app: WasmApp, calls: Vec<crate::fixtures::Call>) -> (Action, Vec<serde_json::Value>) {
        let (ctx, verifier) = mock_context(calls);
        let action = tokio::time::timeout(Duration::from_secs(5), reconcile(Arc::new(app), ctx))
            .await
            .expect("reconcile finished (a hang means a call nobody expected)")
            .expect("reconcile succeeded");
        (action, tokio::time::timeout(Duration::from_secs(5), verifier).await.unwrap().unwrap())
    }

    #[tokio::test]
    async fn an_http_app_gets_its_deployment_and_service_then_a_status() {
        let app = app("  capabilities: {network: {inbound: [{name: http, port: 8080}]}}\n");
        let mut calls = vec![
            call("PATCH", &format!("{NS}/deployments/hello"), echo_deployment()),
            call(
                "PATCH",
                "/api/v1/namespaces/apps/services/hello",
                serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hello"}}),
            ),
            not_found("GET", "/apis/autoscaling/v2/namespaces/apps/horizontalpodautoscalers/hello"),
        ];
        calls.extend(observe_and_report(&app));
        let (action, bodies) = run(app, calls).await;
        assert_eq!(action, Action::requeue(REQUEUE_PENDING));
        assert_eq!(bodies[0]["spec"]["template"]["spec"]["runtimeClassName"], "spore");
        assert_eq!(bodies[6]["reason"], "RollingOut", "the event: {}", bodies[6]);
        let status = &bodies[7]["status"];
        assert_eq!(status["selector"], "spore.dev/app=hello");
        assert_eq!(status["observedGeneration"], 2);
        assert_eq!(status["conditions"][0]["reason"], "ReplicasNotReady");
    }

    #[tokio::test]
    async fn an_autoscaled_worker_gets_an_hpa_and_loses_a_service_it_no_longer_needs() {
        let app = app("  scaling: {autoscale: {maxReplicas: 3, targetConcurrency: 5}}\n");
        let owned_service = serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hello",
            "ownerReferences": [{"apiVersion": "spore.dev/v1alpha1", "kind": "WasmApp", "name": "hello", "uid": "u-1", "controller": true}]}});
        let mut calls = vec![
            call("PATCH", &format!("{NS}/deployments/hello"), echo_deployment()),
            call("GET", "/api/v1/namespaces/apps/services/hello", owned_service.clone()),
            call("DELETE", "/api/v1/namespaces/apps/services/hello", owned_service),
            call(
                "PATCH",
                "/apis/autoscaling/v2/namespaces/apps/horizontalpodautoscalers/hello",
                serde_json::json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "hello"}, "spec": {"maxReplicas": 3, "scaleTargetRef": {"kind": "Deployment", "name": "hello"}}}),
            ),
        ];
        calls.extend(observe_and_report(&app));
        let (_, bodies) = run(app, calls).await;
        assert_eq!(bodies[0]["spec"].get("replicas"), None, "the HPA owns the replica count");
        assert_eq!(bodies[3]["spec"]["maxReplicas"], 3);
    }

    #[tokio::test]
    async fn a_service_someone_else_owns_is_left_alone() {
        let app = app("");
        let foreign = serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hello"}});
        let mut calls = vec![
            call("PATCH", &format!("{NS}/deployments/hello"), echo_deployment()),
            call("GET", "/api/v1/namespaces/apps/services/hello", foreign),
            not_found("GET", "/apis/autoscaling/v2/namespaces/apps/horizontalpodautoscalers/hello"),
        ];
        calls.extend(observe_and_report(&app));
        run(app, calls).await;
    }
}
