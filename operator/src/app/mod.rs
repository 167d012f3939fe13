//! The WasmApp controller: observe the app's workload, pods and runtime; compute the
//! Deployment (or Job, or CronJob), Service and HPA it should have; server-side apply them;
//! write the status. A failed step shows in the status too, as `Degraded` with its reason.

pub mod status;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::node::v1::RuntimeClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Resource, ResourceExt};
use spore_crds::runtime::{NODE_READY, node_label};
use spore_crds::{RunMode, WasmApp, WasmAppStatus};
use tracing::{info, instrument, warn};

use self::status::{Observed, Summary, summarize, summarize_cron_job, summarize_job};
use crate::apply::{apply, delete_owned};
use crate::conditions::{Cond, changed, to_conditions, without_times};
use crate::context::Context;
use crate::error::{Error, Result, kube_err};
use crate::resources::cron_job::desired_cron_job;
use crate::resources::deployment::desired_deployment;
use crate::resources::endpoint_slice::{self, MANAGED_BY_LABEL, activator_endpoints, desired_endpoint_slices, route};
use crate::resources::hpa::desired_hpa;
use crate::resources::job::desired_job;
use crate::resources::service::desired_service;
use crate::resources::{APP_LABEL, app_selector, name_of, namespace_of, selector_string};

pub const CONTROLLER: &str = "wasmapp";
const REQUEUE_SETTLED: Duration = Duration::from_secs(300);
const REQUEUE_PENDING: Duration = Duration::from_secs(15);

/// Reasons of a failed step: the API server refused to apply (or delete) that object, with
/// any error status (422 an invalid field, 403 forbidden or over quota, 5xx).
pub const DEPLOYMENT_REJECTED: &str = "DeploymentRejected";
pub const SERVICE_REJECTED: &str = "ServiceRejected";
pub const AUTOSCALER_REJECTED: &str = "AutoscalerRejected";
pub const JOB_REJECTED: &str = "JobRejected";
pub const CRON_JOB_REJECTED: &str = "CronJobRejected";
/// The EndpointSlices that route an app that scales to zero (to its pods or the activator).
pub const ROUTING_REJECTED: &str = "RoutingRejected";
/// Any other failure: reading pods, nodes or the RuntimeClass, an unreachable API server.
pub const RECONCILE_FAILED: &str = "ReconcileFailed";

/// Runs the controller and the autoscaler until `shutdown` resolves.
pub async fn run(ctx: Arc<Context>, shutdown: impl Future<Output = ()> + Clone + Send + Sync + 'static) {
    let client = ctx.client.clone();
    let Some(writers) = ctx.take_slice_writers() else {
        warn!("the app controller runs once per process");
        return;
    };
    let (activator_changed, activator_changes) = futures::channel::mpsc::unbounded();
    let slices = futures::future::join(
        routing_slices(ctx.clone(), writers.routing),
        activator_slices(ctx.clone(), writers.activator, activator_changed),
    );
    tokio::pin!(slices);
    // Fill both stores before the first reconcile: whether an app still has routing slices
    // to clean up is read from one, where an app at zero routes from the other. Routing by an
    // activator store not yet listed would leave the app's Service with no endpoint.
    tokio::select! {
        _ = futures::future::join(ctx.routing.wait_until_ready(), ctx.activator.wait_until_ready()) => {}
        _ = &mut slices => return,
    }
    let apps = Api::<WasmApp>::all(client.clone());
    let pods = Api::<Pod>::all(client.clone());
    let controller = Controller::new(apps, watcher::Config::default().any_semantic())
        .owns(Api::<Deployment>::all(client.clone()), watcher::Config::default().labels(APP_LABEL))
        .owns(Api::<Service>::all(client.clone()), watcher::Config::default().labels(APP_LABEL))
        .owns(Api::<HorizontalPodAutoscaler>::all(client.clone()), watcher::Config::default().labels(APP_LABEL))
        .owns(Api::<CronJob>::all(client.clone()), watcher::Config::default().labels(APP_LABEL))
        // Pods belong to ReplicaSets or Jobs, and a CronJob's Jobs to the CronJob: their app
        // is found by label, not owner.
        .watches(Api::<Job>::all(client), watcher::Config::default().labels(APP_LABEL), app_of)
        .watches(pods, watcher::Config::default().labels(APP_LABEL), app_of)
        .reconcile_all_on(activator_changes)
        .graceful_shutdown_on(shutdown.clone());
    let store = controller.store();
    let metrics = ctx.metrics.clone();
    let autoscaler = crate::autoscale::run(ctx.clone(), store.clone(), shutdown.clone());
    let precompile = crate::precompile::run(ctx.clone(), store.clone(), shutdown);
    let controller = controller.run(reconcile, error_policy, ctx).for_each(|result| {
        metrics.set_managed(CONTROLLER, store.len());
        crate::error::log_outcome(CONTROLLER, &result);
        futures::future::ready(())
    });
    tokio::select! {
        _ = futures::future::join3(controller, autoscaler, precompile) => {}
        _ = slices => {}
    }
}

/// Keeps `ctx.routing` filled: the EndpointSlices the operator writes for apps at zero.
async fn routing_slices(ctx: Arc<Context>, writer: reflector::store::Writer<EndpointSlice>) {
    let selector = format!("{MANAGED_BY_LABEL}={}", endpoint_slice::MANAGED_BY);
    let api = Api::<EndpointSlice>::all(ctx.client.clone());
    reflector(writer, watcher(api, watcher::Config::default().labels(&selector)))
        .default_backoff()
        .touched_objects()
        .for_each(|event| {
            if let Err(e) = event {
                warn!(error = %e, "watching the routing EndpointSlices failed; retrying");
            }
            futures::future::ready(())
        })
        .await;
}

/// Keeps `ctx.activator` filled from the activator Service's EndpointSlices, and sends on
/// `changed` whenever its set of ready endpoints changes: every app at zero must then route
/// to the new set.
async fn activator_slices(
    ctx: Arc<Context>,
    writer: reflector::store::Writer<EndpointSlice>,
    changed: futures::channel::mpsc::UnboundedSender<()>,
) {
    let settings = &ctx.settings.activator;
    let api = Api::<EndpointSlice>::namespaced(ctx.client.clone(), &settings.namespace);
    let config =
        watcher::Config::default().labels(&format!("{}={}", endpoint_slice::SERVICE_NAME_LABEL, settings.service));
    let mut last = None;
    reflector(writer, watcher(api, config))
        .default_backoff()
        .touched_objects()
        .for_each(|event| {
            if let Err(e) = event {
                warn!(error = %e, "watching the activator's EndpointSlices failed; retrying");
            }
            let now = activator_endpoints(ctx.activator.state().iter().map(|s| s.as_ref()));
            if last.as_ref() != Some(&now) {
                last = Some(now);
                // Closed only when the controller has stopped.
                let _ = changed.unbounded_send(());
            }
            futures::future::ready(())
        })
        .await;
}

fn app_of<K: Resource>(obj: K) -> Option<ObjectRef<WasmApp>> {
    let app = obj.labels().get(APP_LABEL)?.clone();
    Some(ObjectRef::<WasmApp>::new(&app).within(obj.meta().namespace.as_deref()?))
}

/// A step of the reconcile that failed: the reason the status gives, and the error.
#[derive(Debug)]
struct Failed {
    reason: &'static str,
    error: Error,
}

impl From<Error> for Failed {
    fn from(error: Error) -> Self {
        Self { reason: RECONCILE_FAILED, error }
    }
}

/// Blames a refused write on its object; an API server that did not answer is no refusal.
fn rejected(reason: &'static str) -> impl FnOnce(Error) -> Failed {
    move |error| match &error {
        Error::Kube { source: kube::Error::Api(_), .. } => Failed { reason, error },
        _ => Failed::from(error),
    }
}

#[instrument(skip_all, fields(app = %app.name_any(), namespace = app.namespace().unwrap_or_default()))]
pub async fn reconcile(app: Arc<WasmApp>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile(CONTROLLER);
    if app.metadata.deletion_timestamp.is_some() {
        // Garbage collection removes what the app owns; writing now would only race it.
        return Ok(Action::await_change());
    }
    let (namespace, name) = (namespace_of(&*app, "WasmApp")?, name_of(&*app, "WasmApp")?);
    let summary = match converge(&app, &ctx, &namespace, &name).await {
        Ok(Some(summary)) => summary,
        // A finished run whose Job expired: its outcome is in the status already.
        Ok(None) => return Ok(Action::requeue(REQUEUE_SETTLED)),
        Err(failed) => {
            report_failure(&app, &ctx, &failed).await;
            return Err(failed.error);
        }
    };
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
        last_run: summary.last_run,
    };
    publish_changes(&ctx, &app, &summary.conditions, &previous).await;
    let unchanged = |s: &WasmAppStatus| WasmAppStatus { conditions: without_times(&s.conditions), ..s.clone() };
    if unchanged(&status) != unchanged(&previous) {
        write_status(&ctx, &namespace, &name, &status).await?;
    }
    ctx.succeeded(&format!("{namespace}/{name}"));
    let ready = summary.conditions.iter().any(|c| c.type_ == status::READY && c.status);
    Ok(Action::requeue(if ready { REQUEUE_SETTLED } else { REQUEUE_PENDING }))
}

/// Applies what the app should have, deletes what it no longer should, and observes the
/// result. `None`: nothing to report (a finished run whose Job is gone).
async fn converge(app: &WasmApp, ctx: &Context, namespace: &str, name: &str) -> Result<Option<Summary>, Failed> {
    let uid = app.uid().ok_or(Error::MissingField { kind: "WasmApp", field: "metadata.uid" })?;
    let runtime_class = runtime_class_of(app, ctx);
    let mode = app.spec.run_mode();
    let scales_to_zero = matches!(mode, RunMode::Deployment) && app.spec.scaling.scales_to_zero();
    let announce = if scales_to_zero { ctx.announce_address().await } else { None };
    let deployment = match mode {
        RunMode::Deployment => Some(desired_deployment(app, &runtime_class, announce.as_deref())?),
        RunMode::Job(_) | RunMode::CronJob(_) => None,
    };
    let service = desired_service(app)?;
    let hpa = desired_hpa(app)?;
    let cron_job = desired_cron_job(app, &runtime_class)?;
    let job = desired_job(app, &runtime_class)?;

    let client = &ctx.client;
    let (deployment, pods) = if scales_to_zero {
        // Route first: the activator takes the traffic before a scale to zero removes a pod.
        let pods = list_pods(ctx, namespace, name).await?;
        route_through_activator_at_zero(app, ctx, namespace, &pods).await?;
        apply(
            &Api::<Service>::namespaced(client.clone(), namespace),
            &service.ok_or(Error::MissingField { kind: "WasmApp", field: "spec.capabilities.network.inbound" })?,
        )
        .await
        .map_err(rejected(SERVICE_REJECTED))?;
        let deployment = apply_or_delete(&Api::namespaced(client.clone(), namespace), deployment, name, &uid)
            .await
            .map_err(rejected(DEPLOYMENT_REJECTED))?;
        (deployment, Some(pods))
    } else {
        let deployment = apply_or_delete(&Api::namespaced(client.clone(), namespace), deployment, name, &uid)
            .await
            .map_err(rejected(DEPLOYMENT_REJECTED))?;
        apply_or_delete(&Api::<Service>::namespaced(client.clone(), namespace), service, name, &uid)
            .await
            .map_err(rejected(SERVICE_REJECTED))?;
        // A Service with a selector again: the EndpointSlice controller writes its slices now.
        delete_routing_slices(ctx, namespace, name).await.map_err(rejected(ROUTING_REJECTED))?;
        (deployment, None)
    };
    let autoscaler = apply_or_delete(&Api::namespaced(client.clone(), namespace), hpa, name, &uid)
        .await
        .map_err(rejected(AUTOSCALER_REJECTED))?;
    let cron_job = apply_or_delete(&Api::namespaced(client.clone(), namespace), cron_job, name, &uid)
        .await
        .map_err(rejected(CRON_JOB_REJECTED))?;

    // Every Job of the app: the current run's, older runs' (a changed spec, a mode left
    // behind), and the CronJob's runs.
    let jobs_api = Api::<Job>::namespaced(client.clone(), namespace);
    let jobs = jobs_api
        .list(&ListParams::default().labels(&selector_string(&app_selector(name))))
        .await
        .map_err(kube_err(format!("list Jobs of WasmApp {namespace}/{name}")))?
        .items;
    let wanted = job.as_ref().map(ResourceExt::name_any);
    let controlled_by =
        |j: &Job, uid: &str| j.owner_references().iter().any(|o| o.controller == Some(true) && o.uid == uid);
    for old in jobs.iter().filter(|j| controlled_by(j, &uid) && Some(j.name_any()) != wanted) {
        // Background: the Job's pods go with it (a Job's default is to orphan them).
        jobs_api
            .delete(&old.name_any(), &DeleteParams::background())
            .await
            .map_err(kube_err(format!("delete Job {}", old.name_any())))
            .map_err(rejected(JOB_REJECTED))?;
    }
    let job = match job {
        None => None,
        Some(job) => match jobs.iter().find(|j| Some(j.name_any()) == wanted) {
            // A Job's template is immutable and its name covers the spec: nothing to apply.
            Some(existing) => Some(existing.clone()),
            None if ran_already(app, &job.name_any()) => return Ok(None),
            None => Some(apply(&jobs_api, &job).await.map_err(rejected(JOB_REJECTED))?),
        },
    };
    let runs = match &cron_job {
        Some(cron) => {
            let cron_uid = cron.uid().unwrap_or_default();
            jobs.into_iter().filter(|j| controlled_by(j, &cron_uid)).collect()
        }
        None => Vec::new(),
    };

    let observed = Observed {
        deployment,
        autoscaler,
        job,
        cron_job,
        runs,
        ..observe(ctx, namespace, name, &runtime_class, pods).await?
    };
    Ok(Some(match mode {
        RunMode::Deployment => {
            let desired = app.spec.scaling.deployment_replicas();
            let summary = summarize(&runtime_class, desired, &observed);
            match app.spec.scaling.concurrency_autoscale().filter(|_| scales_to_zero) {
                Some(autoscale) => status::idle_at_zero(summary, autoscale.scale_to_zero_after().unwrap_or_default()),
                None => summary,
            }
        }
        RunMode::Job(_) => summarize_job(&runtime_class, &observed),
        RunMode::CronJob(_) => summarize_cron_job(&runtime_class, &observed),
    }))
}

/// The status already tells how the run `job` ended: its Job was deleted after finishing
/// (`ttlSecondsAfterFinished`), and creating it again would run it again.
fn ran_already(app: &WasmApp, job: &str) -> bool {
    let last = app.status.as_ref().and_then(|s| s.last_run.as_ref());
    last.is_some_and(|run| run.job_name == job && run.finished())
}

/// Applies `desired` under `name`, or deletes `name` if this app controls it.
async fn apply_or_delete<K>(api: &Api<K>, desired: Option<K>, name: &str, uid: &str) -> Result<Option<K>>
where
    K: Resource<DynamicType = ()> + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match desired {
        Some(obj) => Ok(Some(apply(api, &obj).await?)),
        None => delete_owned(api, name, uid).await.map(|()| None),
    }
}

/// Degraded with the failed step's reason and the API server's message; the rest of the
/// status stays as the last good reconcile left it.
async fn report_failure(app: &WasmApp, ctx: &Context, failed: &Failed) {
    let (Some(namespace), Some(name)) = (app.namespace(), app.meta().name.clone()) else { return };
    let message = failed.error.to_string();
    let conditions = [(status::READY, false), (status::PROGRESSING, false), (status::DEGRADED, true)]
        .map(|(type_, status)| Cond::new(type_, status, failed.reason, message.clone()));
    let previous = app.status.clone().unwrap_or_default();
    let status = WasmAppStatus {
        conditions: to_conditions(
            &conditions,
            &previous.conditions,
            app.metadata.generation,
            Time(jiff::Timestamp::now()),
        ),
        observed_generation: app.metadata.generation,
        ..previous.clone()
    };
    publish_changes(ctx, app, &conditions, &previous).await;
    // Compared without messages: an error whose text differs per attempt must not make each
    // retry a status write, which would start the next retry at once instead of backing off.
    let blind = |s: &WasmAppStatus| {
        let conditions = without_times(&s.conditions).into_iter().map(|c| Condition { message: String::new(), ..c });
        WasmAppStatus { conditions: conditions.collect(), ..s.clone() }
    };
    if blind(&status) != blind(&previous)
        && let Err(e) = write_status(ctx, &namespace, &name, &status).await
    {
        warn!(error = %e, "writing the failure into the status failed");
    }
}

async fn write_status(ctx: &Context, namespace: &str, name: &str, status: &WasmAppStatus) -> Result<()> {
    let api = Api::<WasmApp>::namespaced(ctx.client.clone(), namespace);
    let patch = serde_json::json!({"status": status});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(kube_err(format!("update status of WasmApp {namespace}/{name}")))?;
    Ok(())
}

fn runtime_class_of(app: &WasmApp, ctx: &Context) -> String {
    app.spec.runtime_class_name.clone().unwrap_or_else(|| ctx.settings.default_runtime_class.clone())
}

async fn list_pods(ctx: &Context, namespace: &str, name: &str) -> Result<Vec<Pod>> {
    let pods = Api::<Pod>::namespaced(ctx.client.clone(), namespace)
        .list(&ListParams::default().labels(&selector_string(&app_selector(name))))
        .await
        .map_err(kube_err(format!("list pods of WasmApp {namespace}/{name}")))?;
    Ok(pods.items)
}

/// Points the app's Service at its ready pods, or at the activator while it has none.
async fn route_through_activator_at_zero(
    app: &WasmApp,
    ctx: &Context,
    namespace: &str,
    pods: &[Pod],
) -> Result<(), Failed> {
    let replicas = app.spec.scaling.deployment_replicas().unwrap_or(1);
    let activator = activator_endpoints(ctx.activator.state().iter().map(|s| s.as_ref()));
    let route = route(replicas, pods);
    let slices = desired_endpoint_slices(app, route, pods, &activator, ctx.settings.activator.port)?;
    let api = Api::<EndpointSlice>::namespaced(ctx.client.clone(), namespace);
    for slice in &slices {
        apply(&api, slice).await.map_err(rejected(ROUTING_REJECTED))?;
    }
    Ok(())
}

/// Removes the EndpointSlices the operator wrote while the app scaled to zero (found in the
/// store, so an app that never scaled to zero costs no API call).
async fn delete_routing_slices(ctx: &Context, namespace: &str, name: &str) -> Result<()> {
    let api = Api::<EndpointSlice>::namespaced(ctx.client.clone(), namespace);
    for slice in endpoint_slice::slice_names(name) {
        if ctx.routing.get(&ObjectRef::new(&slice).within(namespace)).is_some() {
            match api.delete(&slice, &DeleteParams::background()).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.is_not_found() => {}
                Err(e) => return Err(kube_err(format!("delete EndpointSlice {namespace}/{slice}"))(e)),
            }
        }
    }
    Ok(())
}

/// The app's pods, whether its RuntimeClass exists, and how many nodes serve it. `pods`:
/// already listed by this reconcile.
async fn observe(
    ctx: &Context,
    namespace: &str,
    name: &str,
    runtime_class: &str,
    pods: Option<Vec<Pod>>,
) -> Result<Observed> {
    let pods = match pods {
        Some(pods) => pods,
        None => list_pods(ctx, namespace, name).await?,
    };
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
    Ok(Observed { pods, runtime_class_exists, ready_nodes, ..Observed::default() })
}

/// The Events of what changed since `previous`.
async fn publish_changes(ctx: &Context, app: &WasmApp, conditions: &[Cond], previous: &WasmAppStatus) {
    let was_degraded = previous.conditions.iter().any(|c| c.type_ == status::DEGRADED && c.status == "True");
    for cond in changed(conditions, &previous.conditions) {
        publish(ctx, app, cond, was_degraded).await;
    }
}

/// One Event per state change worth telling: ready (or a run succeeded), degraded (with its
/// reason), recovered, rolling out (or a run started).
async fn publish(ctx: &Context, app: &WasmApp, cond: &Cond, was_degraded: bool) {
    let (type_, reason) = match (cond.type_, cond.status) {
        (status::READY, true) if cond.reason == status::SUCCEEDED => (EventType::Normal, cond.reason.clone()),
        (status::READY, true) => (EventType::Normal, "Ready".to_string()),
        (status::DEGRADED, true) => (EventType::Warning, cond.reason.clone()),
        (status::DEGRADED, false) if was_degraded => (EventType::Normal, "Recovered".to_string()),
        // RollingOut (a Deployment) or Running (a Job).
        (status::PROGRESSING, true) => (EventType::Normal, cond.reason.clone()),
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

    use serde_json::{Value, json};

    use super::*;
    use crate::fixtures::{Call, app, call, mock_context, not_found, refused};
    use crate::resources::job::job_name;

    const NS: &str = "/apis/apps/v1/namespaces/apps";
    const BATCH: &str = "/apis/batch/v1/namespaces/apps";
    const STATUS: &str = "/apis/spore.dev/v1alpha1/namespaces/apps/wasmapps/hello/status";

    fn list(kind: &str, items: Vec<Value>) -> Value {
        json!({"apiVersion": "v1", "kind": kind, "metadata": {}, "items": items})
    }

    /// Observing the pods, the RuntimeClass and the runtime's nodes.
    fn observe(pods: Vec<Value>) -> Vec<Call> {
        vec![
            call("GET", "/api/v1/namespaces/apps/pods", list("PodList", pods)),
            call(
                "GET",
                "/apis/node.k8s.io/v1/runtimeclasses/spore",
                json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "spore"}, "handler": "spore"}),
            ),
            call(
                "GET",
                "/api/v1/nodes",
                json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": {}, "items": [{"metadata": {"name": "node-wasm"}}]}),
            ),
        ]
    }

    fn event() -> Call {
        call(
            "POST",
            "/apis/events.k8s.io/v1/namespaces/apps/events",
            json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"}, "eventTime": null}),
        )
    }

    fn status_patch(app: &WasmApp) -> Call {
        call("PATCH", STATUS, serde_json::to_value(app).unwrap())
    }

    /// What every reconcile ends with: observe, tell the one Event, write the status.
    fn observe_and_report(app: &WasmApp) -> Vec<Call> {
        [observe(vec![]), vec![event(), status_patch(app)]].into_iter().flatten().collect()
    }

    /// A Deployment app has no CronJob and no Jobs to clean up.
    fn no_batch() -> Vec<Call> {
        vec![
            not_found("GET", &format!("{BATCH}/cronjobs/hello")),
            call("GET", &format!("{BATCH}/jobs"), list("JobList", vec![])),
        ]
    }

    /// The Deployment, Service and HPA a job or cronJob app must not have (none there).
    fn no_deployment() -> Vec<Call> {
        vec![
            not_found("GET", &format!("{NS}/deployments/hello")),
            not_found("GET", "/api/v1/namespaces/apps/services/hello"),
            not_found("GET", "/apis/autoscaling/v2/namespaces/apps/horizontalpodautoscalers/hello"),
        ]
    }

    fn echo_deployment() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "hello", "namespace": "apps", "generation": 1},
            "spec": {"replicas": 1, "selector": {}, "template": {}}, "status": {"observedGeneration": 1}})
    }

    fn owned_by(uid: &str) -> Value {
        json!([{"apiVersion": "spore.dev/v1alpha1", "kind": "WasmApp", "name": "hello", "uid": uid, "controller": true}])
    }

    /// A Job of the app named `name`, with `status`.
    fn job(name: &str, status: Value) -> Value {
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": "apps", "uid": format!("j-{name}"),
            "labels": {"spore.dev/app": "hello"}, "ownerReferences": owned_by("u-1")},
            "spec": {"template": {}}, "status": status})
    }

    /// A finished attempt of `job`: its pod, with the app container's terminated state.
    fn attempt(job: &str, exit_code: i32, message: &str) -> Value {
        json!({"metadata": {"name": format!("{job}-x"), "labels": {"spore.dev/app": "hello", "batch.kubernetes.io/job-name": job}},
            "status": {"phase": "Failed", "containerStatuses": [{"name": "app", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": exit_code, "reason": "Error", "message": message, "finishedAt": "2026-01-01T00:00:10Z"}}}]}})
    }

    async fn reconciled(app: WasmApp, calls: Vec<Call>) -> (Result<Action>, Vec<Value>) {
        let (ctx, verifier) = mock_context(calls);
        let result = tokio::time::timeout(Duration::from_secs(5), reconcile(Arc::new(app), ctx))
            .await
            .expect("reconcile finished (a hang means a call nobody expected)");
        (result, tokio::time::timeout(Duration::from_secs(5), verifier).await.unwrap().unwrap())
    }

    async fn run(app: WasmApp, calls: Vec<Call>) -> (Action, Vec<Value>) {
        let (result, bodies) = reconciled(app, calls).await;
        (result.expect("reconcile succeeded"), bodies)
    }

    fn conditions(status_body: &Value) -> Vec<(String, String, String)> {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        status_body["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (text(&c["type"]), text(&c["status"]), text(&c["reason"])))
            .collect()
    }

    fn expect(conds: [(&str, &str, &str); 3]) -> Vec<(String, String, String)> {
        conds.iter().map(|(t, s, r)| (t.to_string(), s.to_string(), r.to_string())).collect()
    }

    #[tokio::test]
    async fn an_http_app_gets_its_deployment_and_service_then_a_status() {
        let app = app("  capabilities: {network: {inbound: [{name: http, port: 8080}]}}\n");
        let mut calls = vec![
            call("PATCH", &format!("{NS}/deployments/hello"), echo_deployment()),
            call(
                "PATCH",
                "/api/v1/namespaces/apps/services/hello",
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hello"}}),
            ),
            not_found("GET", "/apis/autoscaling/v2/namespaces/apps/horizontalpodautoscalers/hello"),
        ];
        calls.extend(no_batch());
        calls.extend(observe_and_report(&app));
        let (action, bodies) = run(app, calls).await;
        assert_eq!(action, Action::requeue(REQUEUE_PENDING));
        assert_eq!(bodies[0]["spec"]["template"]["spec"]["runtimeClassName"], "spore");
        assert_eq!(bodies[8]["reason"], "RollingOut", "the event: {}", bodies[8]);
        let status = &bodies[9]["status"];
        assert_eq!(status["selector"], "spore.dev/app=hello");
        assert_eq!(status["observedGeneration"], 2);
        assert_eq!(status["conditions"][0]["reason"], "ReplicasNotReady");
        assert_eq!(status.get("lastRun"), None);
    }

    #[tokio::test]
    async fn an_app_at_zero_routes_its_service_to_the_activator_before_its_pods_go_and_is_idle() {
        let app = app(
            "  capabilities: {network: {inbound: [{name: http, port: 8080}]}}\n  scaling: {replicas: 0, autoscale: {minReplicas: 0, maxReplicas: 4, targetConcurrency: 10, scaleToZeroAfter: 30s}}\n",
        );
        let ready_pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hello-1", "namespace": "apps", "labels": {"spore.dev/app": "hello"}},
            "spec": {"containers": []}, "status": {"podIP": "198.18.17.5", "conditions": [{"type": "Ready", "status": "True"}]}});
        let slice = |name: &str| json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": name}, "addressType": "IPv4", "endpoints": []});
        let at_zero = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "hello", "namespace": "apps", "generation": 1},
            "spec": {"replicas": 0, "selector": {}, "template": {}}, "status": {"observedGeneration": 1}});
        let activator = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "spore-activator", "namespace": "spore-system"},
            "spec": {"clusterIP": "198.19.0.77"}});
        let mut calls = vec![
            call("GET", "/api/v1/namespaces/spore-system/services/spore-activator", activator),
            call("GET", "/api/v1/namespaces/apps/pods", list("PodList", vec![ready_pod])),
            call(
                "PATCH",
                "/apis/discovery.k8s.io/v1/namespaces/apps/endpointslices/hello-spore-pods",
                slice("hello-spore-pods"),
            ),
            call(
                "PATCH",
                "/apis/discovery.k8s.io/v1/namespaces/apps/endpointslices/hello-spore-activator",
                slice("hello-spore-activator"),
            ),
            call(
                "PATCH",
                "/api/v1/namespaces/apps/services/hello",
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hello"}}),
            ),
            call("PATCH", &format!("{NS}/deployments/hello"), at_zero),
            not_found("GET", "/apis/autoscaling/v2/namespaces/apps/horizontalpodautoscalers/hello"),
        ];
        calls.extend(no_batch());
        calls.extend(observe(vec![]).into_iter().skip(1));
        calls.extend([event(), status_patch(&app)]);
        let (_, bodies) = run(app, calls).await;
        let bodies = &bodies[1..];
        assert_eq!(bodies[1]["endpoints"], json!([]), "zero was decided: no pod gets new connections");
        assert_eq!(bodies[2]["ports"][0]["port"], 8012, "the Service port goes to the activator's");
        assert_eq!(bodies[2]["metadata"]["labels"]["kubernetes.io/service-name"], "hello");
        assert_eq!(bodies[3]["spec"].get("selector"), None, "the operator's slices route it");
        assert_eq!(bodies[4]["spec"]["replicas"], 0);
        let annotations = &bodies[4]["spec"]["template"]["metadata"]["annotations"];
        assert_eq!(annotations["spore.dev/activator-announce"], "198.19.0.77:9090");
        assert_eq!(bodies[10]["reason"], "Ready", "the event: {}", bodies[10]);
        let ready = &bodies[11]["status"]["conditions"][0];
        assert_eq!((&ready["status"], &ready["reason"]), (&json!("True"), &json!("Idle")));
        assert!(ready["message"].as_str().unwrap().contains("after 30s without requests"), "{ready}");
    }

    #[tokio::test]
    async fn an_autoscaled_worker_gets_an_hpa_and_loses_a_service_it_no_longer_needs() {
        let app = app("  scaling: {autoscale: {maxReplicas: 3, targetCpuUtilization: 50}}\n");
        let owned_service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hello", "ownerReferences": owned_by("u-1")}});
        let mut calls = vec![
            call("PATCH", &format!("{NS}/deployments/hello"), echo_deployment()),
            call("GET", "/api/v1/namespaces/apps/services/hello", owned_service.clone()),
            call("DELETE", "/api/v1/namespaces/apps/services/hello", owned_service),
            call(
                "PATCH",
                "/apis/autoscaling/v2/namespaces/apps/horizontalpodautoscalers/hello",
                json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "hello"}, "spec": {"maxReplicas": 3, "scaleTargetRef": {"kind": "Deployment", "name": "hello"}}}),
            ),
        ];
        calls.extend(no_batch());
        calls.extend(observe_and_report(&app));
        let (_, bodies) = run(app, calls).await;
        assert_eq!(bodies[0]["spec"].get("replicas"), None, "the HPA owns the replica count");
        assert_eq!(bodies[3]["spec"]["maxReplicas"], 3);
    }

    #[tokio::test]
    async fn a_service_someone_else_owns_is_left_alone() {
        let app = app("");
        let foreign = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hello"}});
        let mut calls = vec![
            call("PATCH", &format!("{NS}/deployments/hello"), echo_deployment()),
            call("GET", "/api/v1/namespaces/apps/services/hello", foreign),
            not_found("GET", "/apis/autoscaling/v2/namespaces/apps/horizontalpodautoscalers/hello"),
        ];
        calls.extend(no_batch());
        calls.extend(observe_and_report(&app));
        run(app, calls).await;
    }

    #[tokio::test]
    async fn a_rejected_deployment_degrades_the_app_with_the_apiservers_message() {
        let app = app("  podLabels: {team: a b}\n");
        let message = r#"Deployment.apps "hello" is invalid: spec.template.labels: Invalid value: "a b": a valid label must be ..."#;
        let calls = vec![
            refused("PATCH", &format!("{NS}/deployments/hello"), 422, "Invalid", message),
            event(),
            status_patch(&app),
        ];
        let (result, bodies) = reconciled(app, calls).await;
        let error = result.expect_err("the reconcile fails, so it is retried with backoff");
        assert_eq!(error.reason(), "ApiError");
        assert_eq!(bodies[1]["reason"], DEPLOYMENT_REJECTED, "the Warning event: {}", bodies[1]);
        assert_eq!(
            conditions(&bodies[2]),
            expect([
                ("Ready", "False", DEPLOYMENT_REJECTED),
                ("Progressing", "False", DEPLOYMENT_REJECTED),
                ("Degraded", "True", DEPLOYMENT_REJECTED)
            ])
        );
        let status = &bodies[2]["status"];
        assert_eq!(status["observedGeneration"], 2);
        for c in status["conditions"].as_array().unwrap() {
            assert_eq!(c["message"], format!("apply Deployment hello: {message} (Invalid)"));
            assert_eq!(c["observedGeneration"], 2);
        }
    }

    #[tokio::test]
    async fn a_service_the_apiserver_refuses_degrades_the_app() {
        let cases = [
            (500, "InternalError", "Internal error occurred: failed to allocate a serviceIP: range is full"),
            (403, "Forbidden", r#"services "hello" is forbidden: exceeded quota: no-services, requested: services=1"#),
        ];
        for (code, reason, message) in cases {
            let app = app("  capabilities: {network: {inbound: [{name: http, port: 8080}]}}\n");
            let calls = vec![
                call("PATCH", &format!("{NS}/deployments/hello"), echo_deployment()),
                refused("PATCH", "/api/v1/namespaces/apps/services/hello", code, reason, message),
                event(),
                status_patch(&app),
            ];
            let (result, bodies) = reconciled(app, calls).await;
            assert!(result.is_err(), "{code}");
            let degraded = &bodies[3]["status"]["conditions"][2];
            assert_eq!(
                (&degraded["type"], &degraded["status"], &degraded["reason"]),
                (&json!("Degraded"), &json!("True"), &json!(SERVICE_REJECTED))
            );
            let text = degraded["message"].as_str().unwrap();
            assert!(text.contains(message) && text.starts_with("apply Service hello: "), "{code}: {text}");
        }
    }

    #[tokio::test]
    async fn a_failure_already_in_the_status_is_not_written_again() {
        let mut app = app("  podLabels: {team: a b}\n");
        let conds = [("Ready", "False"), ("Progressing", "False"), ("Degraded", "True")].map(|(t, s)| {
            json!({"type": t, "status": s, "reason": DEPLOYMENT_REJECTED, "message": "an older text",
                "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 2})
        });
        app.status = Some(serde_json::from_value(json!({"conditions": conds, "observedGeneration": 2})).unwrap());
        let calls = vec![refused("PATCH", &format!("{NS}/deployments/hello"), 422, "Invalid", "a newer text")];
        let (result, bodies) = reconciled(app, calls).await;
        assert!(result.is_err());
        assert_eq!(bodies.len(), 1, "no Event and no status write: the retry waits for its backoff");
    }

    #[tokio::test]
    async fn a_job_app_runs_as_a_job_and_loses_its_deployment() {
        let app = app("  args: [exit, '0']\n  job: {backoffLimit: 2}\n");
        let name = job_name(&app, "spore").unwrap();
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "hello", "ownerReferences": owned_by("u-1")}});
        let mut calls = vec![
            call("GET", &format!("{NS}/deployments/hello"), deployment.clone()),
            call("DELETE", &format!("{NS}/deployments/hello"), deployment),
            not_found("GET", "/api/v1/namespaces/apps/services/hello"),
            not_found("GET", "/apis/autoscaling/v2/namespaces/apps/horizontalpodautoscalers/hello"),
            not_found("GET", &format!("{BATCH}/cronjobs/hello")),
            call("GET", &format!("{BATCH}/jobs"), list("JobList", vec![])),
            call(
                "PATCH",
                &format!("{BATCH}/jobs/{name}"),
                job(&name, json!({"active": 1, "startTime": "2026-01-01T00:00:00Z"})),
            ),
        ];
        calls.extend(observe_and_report(&app));
        let (action, bodies) = run(app, calls).await;
        assert_eq!(action, Action::requeue(REQUEUE_PENDING));
        assert_eq!(bodies[1]["propagationPolicy"], "Background");
        let created = &bodies[6];
        assert_eq!(created["spec"]["backoffLimit"], 2);
        assert_eq!(created["spec"]["template"]["spec"]["restartPolicy"], "Never");
        assert_eq!(bodies[10]["reason"], "Running", "the event: {}", bodies[10]);
        assert_eq!(
            conditions(&bodies[11]),
            expect([
                ("Ready", "False", "Running"),
                ("Progressing", "True", "Running"),
                ("Degraded", "False", "AsExpected")
            ])
        );
        let status = &bodies[11]["status"];
        assert_eq!((&status["lastRun"]["jobName"], &status["lastRun"]["active"]), (&json!(name), &json!(1)));
        assert_eq!(status["replicas"], 1);
    }

    #[tokio::test]
    async fn a_finished_job_is_not_run_again() {
        let app = app("  job: {}\n");
        let name = job_name(&app, "spore").unwrap();
        let done = json!({"succeeded": 1, "startTime": "2026-01-01T00:00:00Z", "completionTime": "2026-01-01T00:00:05Z",
            "conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": "2026-01-01T00:00:05Z"}]});
        let mut calls = no_deployment();
        calls.extend([
            not_found("GET", &format!("{BATCH}/cronjobs/hello")),
            call("GET", &format!("{BATCH}/jobs"), list("JobList", vec![job(&name, done)])),
        ]);
        calls.extend(observe_and_report(&app));
        let (action, bodies) = run(app, calls).await;
        assert_eq!(action, Action::requeue(REQUEUE_SETTLED));
        assert_eq!(bodies[8]["reason"], "Succeeded");
        assert_eq!(
            conditions(&bodies[9]),
            expect([
                ("Ready", "True", "Succeeded"),
                ("Progressing", "False", "Succeeded"),
                ("Degraded", "False", "AsExpected")
            ])
        );
        assert_eq!(bodies[9]["status"]["lastRun"]["completionTime"], "2026-01-01T00:00:05Z");
    }

    #[tokio::test]
    async fn a_finished_run_whose_job_expired_is_not_run_again() {
        let mut app = app("  job: {ttlSecondsAfterFinished: 0}\n");
        let name = job_name(&app, "spore").unwrap();
        app.status = Some(
            serde_json::from_value(json!({"lastRun": {"jobName": name, "completionTime": "2026-01-01T00:00:05Z"}}))
                .unwrap(),
        );
        let mut calls = no_deployment();
        calls.extend([
            not_found("GET", &format!("{BATCH}/cronjobs/hello")),
            call("GET", &format!("{BATCH}/jobs"), list("JobList", vec![])),
        ]);
        let (action, bodies) = run(app, calls).await;
        assert_eq!(action, Action::requeue(REQUEUE_SETTLED));
        assert_eq!(bodies.len(), 5, "no Job created, nothing written");
    }

    #[tokio::test]
    async fn a_changed_spec_runs_a_new_job_and_deletes_the_old_one() {
        let app = app("  args: [v2]\n  job: {}\n");
        let name = job_name(&app, "spore").unwrap();
        let old = job("hello-0ld0ld00", json!({"active": 1}));
        let foreign = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "hello-theirs", "labels": {"spore.dev/app": "hello"}}, "spec": {"template": {}}});
        let mut calls = no_deployment();
        calls.extend([
            not_found("GET", &format!("{BATCH}/cronjobs/hello")),
            call("GET", &format!("{BATCH}/jobs"), list("JobList", vec![old.clone(), foreign])),
            call("DELETE", &format!("{BATCH}/jobs/hello-0ld0ld00"), old),
            call("PATCH", &format!("{BATCH}/jobs/{name}"), job(&name, json!({}))),
        ]);
        calls.extend(observe_and_report(&app));
        let (_, bodies) = run(app, calls).await;
        assert_eq!(bodies[5]["propagationPolicy"], "Background", "the old run's pods go with it");
        assert_eq!(bodies[6]["spec"]["template"]["spec"]["containers"][0]["args"], json!(["v2"]));
    }

    #[tokio::test]
    async fn a_failed_job_degrades_the_app_with_the_exit_code_and_the_trap() {
        let app = app("  args: [trap]\n  job: {backoffLimit: 1}\n");
        let name = job_name(&app, "spore").unwrap();
        let failed = json!({"failed": 2, "startTime": "2026-01-01T00:00:00Z", "conditions": [{"type": "Failed", "status": "True",
            "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit", "lastTransitionTime": "2026-01-01T00:00:11Z"}]});
        let trap = "wasm trap: wasm `unreachable` instruction executed\n  at main (probe.c)\n";
        let mut calls = no_deployment();
        calls.extend([
            not_found("GET", &format!("{BATCH}/cronjobs/hello")),
            call("GET", &format!("{BATCH}/jobs"), list("JobList", vec![job(&name, failed)])),
        ]);
        calls.extend(observe(vec![attempt(&name, 134, trap), attempt("hello-other", 0, "")]));
        calls.extend([event(), status_patch(&app)]);
        let (_, bodies) = run(app, calls).await;
        assert_eq!(bodies[8]["reason"], "JobFailed", "the Warning event: {}", bodies[8]);
        assert_eq!(
            conditions(&bodies[9]),
            expect([
                ("Ready", "False", "JobFailed"),
                ("Progressing", "False", "JobFailed"),
                ("Degraded", "True", "JobFailed")
            ])
        );
        let status = &bodies[9]["status"];
        let message = status["conditions"][2]["message"].as_str().unwrap();
        assert!(message.contains("BackoffLimitExceeded") && message.contains("exited with code 134"), "{message}");
        assert!(message.contains("wasm `unreachable` instruction executed\n  at main"), "{message}");
        let run = &status["lastRun"];
        assert_eq!((&run["exitCode"], &run["failed"], &run["reason"]), (&json!(134), &json!(2), &json!("Error")));
        assert_eq!(run["message"], trap.trim_end());
        assert_eq!(run["completionTime"], "2026-01-01T00:00:11Z");
    }

    #[tokio::test]
    async fn a_cron_job_app_gets_its_cron_job_and_loses_its_deployment_and_job() {
        let app = app("  cronJob: {schedule: '* * * * *'}\n");
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "hello", "ownerReferences": owned_by("u-1")}});
        let old = job("hello-0ld0ld00", json!({}));
        let cron = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "hello", "uid": "c-1"},
            "spec": {"schedule": "* * * * *", "jobTemplate": {}}, "status": {}});
        let calls = [
            vec![
                call("GET", &format!("{NS}/deployments/hello"), deployment.clone()),
                call("DELETE", &format!("{NS}/deployments/hello"), deployment),
                not_found("GET", "/api/v1/namespaces/apps/services/hello"),
                not_found("GET", "/apis/autoscaling/v2/namespaces/apps/horizontalpodautoscalers/hello"),
                call("PATCH", &format!("{BATCH}/cronjobs/hello"), cron),
                call("GET", &format!("{BATCH}/jobs"), list("JobList", vec![old.clone()])),
                call("DELETE", &format!("{BATCH}/jobs/hello-0ld0ld00"), old),
            ],
            observe(vec![]),
            vec![event(), status_patch(&app)],
        ]
        .into_iter()
        .flatten()
        .collect();
        let (_, bodies) = run(app, calls).await;
        assert_eq!(bodies[4]["spec"]["schedule"], "* * * * *");
        assert_eq!(bodies[4]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"], "Never");
        assert_eq!(
            conditions(&bodies[11]),
            expect([
                ("Ready", "True", "Scheduled"),
                ("Progressing", "False", "Waiting"),
                ("Degraded", "False", "AsExpected")
            ])
        );
    }

    #[tokio::test]
    async fn a_job_app_turned_deployment_loses_its_jobs() {
        let app = app("");
        let old = job("hello-0ld0ld00", json!({"succeeded": 1}));
        let mut calls = vec![
            call("PATCH", &format!("{NS}/deployments/hello"), echo_deployment()),
            not_found("GET", "/api/v1/namespaces/apps/services/hello"),
            not_found("GET", "/apis/autoscaling/v2/namespaces/apps/horizontalpodautoscalers/hello"),
            not_found("GET", &format!("{BATCH}/cronjobs/hello")),
            call("GET", &format!("{BATCH}/jobs"), list("JobList", vec![old.clone()])),
            call("DELETE", &format!("{BATCH}/jobs/hello-0ld0ld00"), old),
        ];
        calls.extend(observe_and_report(&app));
        run(app, calls).await;
    }
}
