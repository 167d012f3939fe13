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
use crate::conditions::{changed, to_conditions};
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
            if let Err(e) = result {
                warn!(controller = CONTROLLER, error = %e, "reconcile failed");
            }
            futures::future::ready(())
        })
        .await;
}

#[instrument(skip_all, fields(app = %app.name_any(), namespace = app.namespace().unwrap_or_default()))]
pub async fn reconcile(app: Arc<WasmApp>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile(CONTROLLER);
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
    match hpa {
        Some(hpa) => drop(apply(&hpas, &hpa).await?),
        None => delete_owned(&hpas, &name, &uid).await?,
    }

    let observed = observe(&ctx, &namespace, &name, &runtime_class, applied).await?;
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
    for cond in changed(&summary.conditions, &previous.conditions) {
        publish(&ctx, &app, cond).await;
    }
    if without_times(&status) != without_times(&previous) {
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
    Ok(Observed { deployment: Some(deployment), pods: pods.items, runtime_class_exists, ready_nodes })
}

/// Status equality that ignores timestamps, so an unchanged app costs no write.
fn without_times(status: &WasmAppStatus) -> WasmAppStatus {
    let mut s = status.clone();
    for c in &mut s.conditions {
        c.last_transition_time = Time(jiff::Timestamp::UNIX_EPOCH);
    }
    s
}

async fn publish(ctx: &Context, app: &WasmApp, cond: &crate::conditions::Cond) {
    let (type_, reason) = match (cond.type_, cond.status) {
        (status::READY, true) => (EventType::Normal, "Ready".to_string()),
        (status::DEGRADED, true) => (EventType::Warning, cond.reason.clone()),
        (status::DEGRADED, false) => (EventType::Normal, "Recovered".to_string()),
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
