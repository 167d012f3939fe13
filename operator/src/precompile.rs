//! Keeps every long-running app's node precompile pods in place (see
//! [`crate::resources::precompile`]): one per image and node, created when an app, its image
//! or a node serving its runtime appears, deleted when stale. Observes nodes and precompile
//! pods through reflectors, plans, and writes only the difference.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, PostParams};
use kube::core::PartialObjectMeta;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Resource, ResourceExt};
use spore_crds::WasmApp;
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::context::Context;
use crate::resources::precompile::{PRECOMPILE_OF_LABEL, plan};

/// Apps change through the app controller's store, which has no hook here: re-planned this
/// often, and at once when a node or a precompile pod changes.
const REPLAN: Duration = Duration::from_secs(5);
/// A pod the API server refused is tried again after this long, not on every round.
const RETRY_REFUSED: Duration = Duration::from_secs(300);

/// Pods whose create was refused, and when.
type Refused = std::collections::HashMap<String, std::time::Instant>;

/// Runs until `shutdown` resolves. `apps` is the app controller's store.
pub async fn run(ctx: Arc<Context>, apps: Store<WasmApp>, shutdown: impl Future<Output = ()>) {
    let changed = Arc::new(Notify::new());
    let (nodes, node_writer) = reflector::store();
    let (pods, pod_writer) = reflector::store();
    // Metadata only: the labels are all the plan reads of a node.
    let node_api = Api::<PartialObjectMeta<Node>>::all(ctx.client.clone());
    let pod_api = Api::<Pod>::all(ctx.client.clone());
    let watches = futures::future::join(
        watch("nodes", reflector(node_writer, watcher(node_api, watcher::Config::default())), &changed),
        watch(
            "precompile pods",
            reflector(pod_writer, watcher(pod_api, watcher::Config::default().labels(PRECOMPILE_OF_LABEL))),
            &changed,
        ),
    );
    tokio::pin!(shutdown);
    tokio::pin!(watches);
    tokio::select! {
        _ = &mut shutdown => return,
        _ = &mut watches => return,
        _ = futures::future::join3(nodes.wait_until_ready(), pods.wait_until_ready(), apps.wait_until_ready()) => {}
    }
    let mut refused = Refused::new();
    loop {
        converge(&ctx, &apps, &nodes, &pods, &mut refused).await;
        tokio::select! {
            _ = &mut shutdown => return,
            _ = &mut watches => return,
            _ = changed.notified() => {}
            _ = tokio::time::sleep(REPLAN) => {}
        }
    }
}

/// Drives a reflector, waking the planner on every event.
async fn watch<K, S>(what: &'static str, stream: S, changed: &Notify)
where
    S: futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
    K: Resource + Clone + std::fmt::Debug + Send + 'static,
{
    stream
        .default_backoff()
        .touched_objects()
        .for_each(|event| {
            if let Err(e) = event {
                warn!(error = %e, "watching {what} failed; retrying");
            }
            changed.notify_one();
            futures::future::ready(())
        })
        .await;
}

/// One round: plan from the stores and write the difference.
async fn converge(
    ctx: &Context,
    apps: &Store<WasmApp>,
    nodes: &Store<PartialObjectMeta<Node>>,
    pods: &Store<Pod>,
    refused: &mut Refused,
) {
    let (apps, nodes, pods) = (apps.state(), nodes.state(), pods.state());
    let apps: Vec<&WasmApp> = apps.iter().map(Arc::as_ref).collect();
    let nodes: Vec<&PartialObjectMeta<Node>> = nodes.iter().map(Arc::as_ref).collect();
    let pods: Vec<&Pod> = pods.iter().map(Arc::as_ref).collect();
    let default_class = &ctx.settings.default_runtime_class;
    let runtime_class = |app: &WasmApp| app.spec.runtime_class_name.clone().unwrap_or_else(|| default_class.clone());
    let plan = match plan(&apps, runtime_class, &nodes, &pods) {
        Ok(plan) => plan,
        Err(e) => return warn!(error = %e, "planning precompile pods failed"),
    };
    refused.retain(|_, at| at.elapsed() < RETRY_REFUSED);
    for pod in plan.create {
        let key = format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any());
        if !refused.contains_key(&key) && !create(ctx, &apps, pod).await {
            refused.insert(key, std::time::Instant::now());
        }
    }
    for (namespace, name) in plan.delete {
        match Api::<Pod>::namespaced(ctx.client.clone(), &namespace).delete(&name, &DeleteParams::background()).await {
            Ok(_) => info!(pod = %format!("{namespace}/{name}"), "stale precompile pod deleted"),
            Err(kube::Error::Api(status)) if status.is_not_found() => {}
            Err(e) => warn!(error = %e, pod = %format!("{namespace}/{name}"), "deleting a stale precompile pod failed"),
        }
    }
}

/// Creates a precompile pod. A refusal (a quota, a policy) is told on the app as a Warning
/// Event: the app still runs, its first pod on that node just compiles for itself. Returns
/// whether the pod exists now.
async fn create(ctx: &Context, apps: &[&WasmApp], pod: Pod) -> bool {
    let (namespace, name) = (pod.namespace().unwrap_or_default(), pod.name_any());
    let node = pod.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
    match Api::<Pod>::namespaced(ctx.client.clone(), &namespace).create(&PostParams::default(), &pod).await {
        Ok(_) => info!(pod = %format!("{namespace}/{name}"), node, "precompile pod created"),
        Err(kube::Error::Api(status)) if status.is_already_exists() => {}
        // The API server unreachable: the next round tries again.
        Err(e @ kube::Error::Api(_)) => {
            warn!(error = %e, pod = %format!("{namespace}/{name}"), "creating a precompile pod failed");
            let app = pod.labels().get(PRECOMPILE_OF_LABEL).cloned().unwrap_or_default();
            let key = ObjectRef::<WasmApp>::new(&app).within(&namespace);
            let Some(app) = apps.iter().find(|a| ObjectRef::from_obj(**a) == key) else { return false };
            let event = Event {
                type_: EventType::Warning,
                reason: "PrecompileNotCreated".into(),
                note: Some(crate::conditions::truncate(
                    &format!("node {node} compiles the module at the app's first pod there instead: {e}"),
                    1000,
                )),
                action: "Precompile".into(),
                secondary: None,
            };
            let _ = ctx.recorder.publish(&event, &app.object_ref(&())).await;
            return false;
        }
        Err(e) => warn!(error = %e, pod = %format!("{namespace}/{name}"), "creating a precompile pod failed"),
    }
    true
}
