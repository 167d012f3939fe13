//! Node precompile pods: one per app image and node that serves the app's RuntimeClass. The
//! shim compiles the module into that node's code cache and exits (`spore.dev/precompile`),
//! so the app's first pod on the node, a scale from zero included, starts on cached code
//! instead of compiling. Pure builders; `crate::precompile` keeps the pods in place.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Container, Node, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use kube::core::PartialObjectMeta;
use spore_crds::runtime::{NODE_READY, node_label};
use spore_crds::{RunMode, WasmApp};

use super::pod::{CAPABILITIES_ANNOTATION, LIMITS_ANNOTATION, pod_template};
use super::{MANAGED_BY, MANAGER, hashed_name, name_of, namespace_of, owner_ref};
use crate::error::Result;

/// Which app a precompile pod is for. Not `spore.dev/app`: these pods must stay out of the
/// app's Service, its status and its autoscaler.
pub const PRECOMPILE_OF_LABEL: &str = "spore.dev/precompile-of";
/// The shim's switch (see `shim/src/containerd/spec.rs`).
pub const PRECOMPILE_ANNOTATION: &str = "spore.dev/precompile";
const CONTAINER_NAME: &str = "precompile";

/// Whether the app gets precompile pods: long-running apps, whose pods start again and
/// again on new nodes and from zero. A Job or CronJob run compiles once, in its own pod.
pub fn wants_precompile(app: &WasmApp) -> bool {
    matches!(app.spec.run_mode(), RunMode::Deployment) && app.metadata.deletion_timestamp.is_none()
}

/// The nodes the app's pods may start on: those serving `runtime_class`, and matching the
/// app's `scheduling.nodeSelector`. (Affinity is not evaluated: a node it rules out only
/// costs a compile.)
pub fn precompile_nodes(app: &WasmApp, runtime_class: &str, nodes: &[&PartialObjectMeta<Node>]) -> Vec<String> {
    let serving = node_label(runtime_class);
    let wanted = &app.spec.scheduling.node_selector;
    nodes
        .iter()
        .filter(|node| {
            let labels = node.labels();
            labels.get(&serving).map(String::as_str) == Some(NODE_READY)
                && wanted.iter().all(|(k, v)| labels.get(k) == Some(v))
        })
        .map(|node| node.name_any())
        .collect()
}

/// The precompile pods of `app` on `nodes`. A pod's name hashes everything the shim's choice
/// of engine and code depends on (image, node, capabilities, limits): pods are immutable, so
/// a change makes a new pod rather than an update.
pub fn precompile_pods(app: &WasmApp, runtime_class: &str, nodes: &[String]) -> Result<Vec<Pod>> {
    let name = name_of(app, "WasmApp")?;
    let template = pod_template(app, runtime_class)?;
    let app_annotations = template.metadata.and_then(|m| m.annotations).unwrap_or_default();
    let mut annotations: BTreeMap<String, String> = [CAPABILITIES_ANNOTATION, LIMITS_ANNOTATION]
        .into_iter()
        .filter_map(|key| Some((key.to_string(), app_annotations.get(key)?.clone())))
        .collect();
    let key = [app.spec.module.image.as_str(), &annotations[CAPABILITIES_ANNOTATION], &annotations[LIMITS_ANNOTATION]]
        .join("\0");
    annotations.insert(PRECOMPILE_ANNOTATION.into(), "true".into());
    let app_spec = template.spec.unwrap_or_default();
    let pod = Pod {
        metadata: ObjectMeta {
            namespace: Some(namespace_of(app, "WasmApp")?),
            labels: Some(BTreeMap::from([
                (PRECOMPILE_OF_LABEL.to_string(), name.clone()),
                (MANAGED_BY.to_string(), MANAGER.to_string()),
            ])),
            annotations: Some(annotations),
            owner_references: Some(vec![owner_ref(app, "WasmApp")?]),
            ..Default::default()
        },
        spec: Some(PodSpec {
            runtime_class_name: app_spec.runtime_class_name,
            restart_policy: Some("Never".into()),
            containers: vec![Container {
                name: CONTAINER_NAME.into(),
                image: Some(app.spec.module.image.clone()),
                termination_message_policy: Some("FallbackToLogsOnError".into()),
                ..Default::default()
            }],
            tolerations: app_spec.tolerations,
            image_pull_secrets: app_spec.image_pull_secrets,
            service_account_name: app_spec.service_account_name,
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            termination_grace_period_seconds: Some(1),
            ..Default::default()
        }),
        status: None,
    };
    let on_node = |node: &String| {
        let mut pod = pod.clone();
        pod.metadata.name = Some(hashed_name(&format!("{name}-precompile"), format!("{key}\0{node}").as_bytes()));
        // Placed by the operator, not the scheduler: one on each node, whatever its load.
        pod.spec.as_mut().expect("built above").node_name = Some(node.clone());
        pod
    };
    Ok(nodes.iter().map(on_node).collect())
}

/// What to change so that every app has exactly its desired precompile pods.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    pub create: Vec<Pod>,
    /// `(namespace, name)` of pods for an image, node or sandbox the app no longer has.
    pub delete: Vec<(String, String)>,
}

/// Compares the desired precompile pods of `apps` with `existing` ones. Pods of an app not
/// in `apps` are left alone: garbage collection removes those of a deleted app.
pub fn plan(
    apps: &[&WasmApp],
    runtime_class_of: impl Fn(&WasmApp) -> String,
    nodes: &[&PartialObjectMeta<Node>],
    existing: &[&Pod],
) -> Result<Plan> {
    let mut existing_of: HashMap<(String, String), Vec<String>> = HashMap::new();
    for pod in existing {
        if let (Some(namespace), Some(app)) = (pod.namespace(), pod.labels().get(PRECOMPILE_OF_LABEL)) {
            existing_of.entry((namespace, app.clone())).or_default().push(pod.name_any());
        }
    }
    let mut plan = Plan::default();
    for app in apps {
        let (namespace, name) = (namespace_of(*app, "WasmApp")?, name_of(*app, "WasmApp")?);
        let runtime_class = runtime_class_of(app);
        let desired = if wants_precompile(app) {
            precompile_pods(app, &runtime_class, &precompile_nodes(app, &runtime_class, nodes))?
        } else {
            Vec::new()
        };
        let ours = existing_of.remove(&(namespace.clone(), name)).unwrap_or_default();
        let desired_names: Vec<String> = desired.iter().map(|p| p.name_any()).collect();
        plan.delete.extend(ours.iter().filter(|p| !desired_names.contains(p)).map(|p| (namespace.clone(), p.clone())));
        plan.create.extend(desired.into_iter().filter(|p| !ours.contains(&p.name_any())));
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::app;

    fn precompile_pod(app: &WasmApp, runtime_class: &str, node: &str) -> Result<Pod> {
        Ok(precompile_pods(app, runtime_class, &[node.to_string()])?.remove(0))
    }

    fn node(name: &str, labels: &[(&str, &str)]) -> PartialObjectMeta<Node> {
        let mut node = PartialObjectMeta::<Node>::default();
        node.metadata.name = Some(name.into());
        node.metadata.labels = Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        node
    }

    fn nodes() -> Vec<PartialObjectMeta<Node>> {
        vec![
            node("wasm-a", &[("runtime.spore.dev/spore", "ready"), ("zone", "a")]),
            node("wasm-b", &[("runtime.spore.dev/spore", "ready"), ("zone", "b")]),
            node("installing", &[("runtime.spore.dev/spore", "installing")]),
            node("plain", &[]),
        ]
    }

    const HTTP: &str = "  capabilities: {network: {inbound: [{name: http, port: 8080}]}}\n";

    #[test]
    fn a_pod_per_ready_node_of_the_runtime_and_the_apps_node_selector() {
        let plain = app(HTTP);
        let nodes = nodes();
        let nodes: Vec<_> = nodes.iter().collect();
        assert_eq!(precompile_nodes(&plain, "spore", &nodes), ["wasm-a", "wasm-b"]);
        let zoned = app(&format!("{HTTP}  scheduling: {{nodeSelector: {{zone: b}}}}\n"));
        assert_eq!(precompile_nodes(&zoned, "spore", &nodes), ["wasm-b"]);
        assert!(precompile_nodes(&plain, "other", &nodes).is_empty());
    }

    #[test]
    fn the_pod_runs_the_image_once_on_its_node_with_what_chooses_the_engine() {
        let pod = precompile_pod(&app(&format!("{HTTP}  limits: {{maxConcurrency: 8}}\n")), "spore", "wasm-a").unwrap();
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("wasm-a"));
        assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
        assert_eq!(spec.runtime_class_name.as_deref(), Some("spore"));
        assert_eq!(spec.containers[0].image.as_deref(), Some("localhost:5010/spore/hello-http:1"));
        let annotations = pod.metadata.annotations.as_ref().unwrap();
        assert_eq!(annotations[PRECOMPILE_ANNOTATION], "true");
        assert!(annotations[LIMITS_ANNOTATION].contains("\"maxConcurrency\":8"), "{annotations:?}");
        assert!(annotations[CAPABILITIES_ANNOTATION].contains("8080"), "{annotations:?}");
        let labels = pod.metadata.labels.as_ref().unwrap();
        assert_eq!(labels[PRECOMPILE_OF_LABEL], "hello");
        assert!(!labels.contains_key(super::super::APP_LABEL), "out of the app's Service and status");
        assert_eq!(pod.metadata.owner_references.as_ref().unwrap()[0].kind, "WasmApp");
    }

    #[test]
    fn names_change_with_the_image_node_or_limits_and_only_then() {
        let name = |extra: &str, node: &str| {
            precompile_pod(&app(&format!("{HTTP}{extra}")), "spore", node).unwrap().name_any()
        };
        let base = name("", "wasm-a");
        assert!(base.starts_with("hello-precompile-"), "{base}");
        assert_eq!(base, name("", "wasm-a"));
        assert_ne!(base, name("", "wasm-b"));
        assert_ne!(base, name("  limits: {maxConcurrency: 8}\n", "wasm-a"));
        assert_eq!(base, name("  args: [--verbose]\n", "wasm-a"), "args do not change the code");
    }

    #[test]
    fn the_plan_creates_whats_missing_and_deletes_whats_stale() {
        let http = app(HTTP);
        let kept = precompile_pod(&http, "spore", "wasm-a").unwrap();
        let mut stale =
            precompile_pod(&app(&format!("{HTTP}  limits: {{maxConcurrency: 8}}\n")), "spore", "wasm-a").unwrap();
        stale.metadata.name = Some("hello-precompile-old".into());
        let mut other_app = stale.clone();
        other_app.metadata.labels = Some(BTreeMap::from([(PRECOMPILE_OF_LABEL.to_string(), "other".to_string())]));
        let plan =
            plan(&[&http], |_| "spore".into(), &nodes().iter().collect::<Vec<_>>(), &[&kept, &stale, &other_app])
                .unwrap();
        let created: Vec<_> = plan.create.iter().map(|p| p.spec.as_ref().unwrap().node_name.clone().unwrap()).collect();
        assert_eq!(created, ["wasm-b"]);
        assert_eq!(plan.delete, [("apps".to_string(), "hello-precompile-old".to_string())]);
    }

    #[test]
    fn batch_apps_get_none_and_lose_any_they_had() {
        let job = app("  job: {}\n");
        let mut left = precompile_pod(&app(HTTP), "spore", "wasm-a").unwrap();
        left.metadata.name = Some("hello-precompile-x".into());
        let plan = plan(&[&job], |_| "spore".into(), &nodes().iter().collect::<Vec<_>>(), &[&left]).unwrap();
        assert!(plan.create.is_empty());
        assert_eq!(plan.delete.len(), 1);
    }
}
