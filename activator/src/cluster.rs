//! Everything that talks to Kubernetes: watches of WasmApps, of the Services and pods
//! labelled `spore.dev/app` (all namespaces), translated into the index's plain values
//! (pure functions, tested on objects), and the waker that patches a WasmApp's scale.
//!
//! Each watch is kube's `watcher` with its backoff; the index is its store: an initial list
//! (or a relist after the watch lost track) replaces every object of the kind at once, then
//! each event updates one object.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt;
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use spore_crds::WasmApp;
use tracing::{info, warn};

use crate::admin::Readiness;
use crate::error::{Result, kube_err};
use crate::index::{AppInfo, AppKey, Change, ConditionInfo, PodInfo, PortInfo, ServiceInfo};
use crate::proxy::Activator;
use crate::wake::{AppWaker, WakeFuture, Woke};

/// The label on an app's Service and pods; its value is the app's name.
pub const APP_LABEL: &str = "spore.dev/app";
/// The field manager of the scale patch.
pub const FIELD_MANAGER: &str = "spore-activator";

/// The index's view of a WasmApp.
pub fn app_info(app: &WasmApp) -> Option<AppInfo> {
    let key = AppKey::new(app.metadata.namespace.clone()?, app.metadata.name.clone()?);
    let conditions = app.status.as_ref().map_or(&[][..], |s| s.conditions.as_slice());
    Some(AppInfo {
        key,
        uid: app.metadata.uid.clone().unwrap_or_default(),
        replicas: app.spec.scaling.replicas,
        readiness: app.spec.health_checks.as_ref().and_then(|h| h.readiness.clone()),
        ready: condition(conditions, "Ready"),
        degraded: condition(conditions, "Degraded"),
    })
}

fn condition(conditions: &[Condition], type_: &str) -> Option<ConditionInfo> {
    conditions.iter().find(|c| c.type_ == type_).map(|c| ConditionInfo {
        status: c.status == "True",
        reason: c.reason.clone(),
        message: c.message.clone(),
    })
}

/// The index's view of an app's Service: its cluster IPs and TCP ports. A `targetPort`
/// that is missing or named (the operator always writes a number) counts as the port itself.
pub fn service_info(service: &Service) -> Option<ServiceInfo> {
    let app = service.metadata.labels.as_ref()?.get(APP_LABEL)?.clone();
    let spec = service.spec.as_ref()?;
    let ips = spec.cluster_ips.clone().or_else(|| spec.cluster_ip.clone().map(|ip| vec![ip])).unwrap_or_default();
    let ports = spec
        .ports
        .iter()
        .flatten()
        .filter(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP")
        .filter_map(|p| {
            let port = u16::try_from(p.port).ok()?;
            let target_port = match &p.target_port {
                Some(IntOrString::Int(target)) => u16::try_from(*target).ok()?,
                Some(IntOrString::String(_)) | None => port,
            };
            Some(PortInfo { port, target_port })
        })
        .collect();
    Some(ServiceInfo {
        namespace: service.metadata.namespace.clone()?,
        name: service.metadata.name.clone()?,
        app,
        // "None" (headless) does not parse.
        cluster_ips: ips.iter().filter_map(|ip| ip.parse().ok()).collect(),
        ports,
    })
}

/// The index's view of an app's pod.
pub fn pod_info(pod: &Pod) -> Option<PodInfo> {
    let app = pod.metadata.labels.as_ref()?.get(APP_LABEL)?.clone();
    let status = pod.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status == "True");
    let finished = matches!(status.and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"));
    Some(PodInfo {
        namespace: pod.metadata.namespace.clone()?,
        name: pod.metadata.name.clone()?,
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        app,
        ip: status.and_then(|s| s.pod_ip.as_deref()).and_then(|ip| ip.parse().ok()),
        ready,
        terminating: pod.metadata.deletion_timestamp.is_some() || finished,
        waiting: status.and_then(not_running),
    })
}

/// Why the pod's first container that does not run is not running: `CrashLoopBackOff:
/// back-off 10s ...`, `terminated: Error (exit code 1)`.
fn not_running(status: &k8s_openapi::api::core::v1::PodStatus) -> Option<String> {
    status.container_statuses.iter().flatten().find_map(|c| {
        let state = c.state.as_ref()?;
        if let Some(waiting) = &state.waiting {
            let reason = waiting.reason.clone().unwrap_or_else(|| "waiting".into());
            return Some(match waiting.message.as_deref().filter(|m| !m.is_empty()) {
                Some(message) => format!("{reason}: {message}"),
                None => reason,
            });
        }
        let terminated = state.terminated.as_ref()?;
        let reason = terminated.reason.as_deref().unwrap_or("terminated");
        Some(match terminated.message.as_deref().filter(|m| !m.is_empty()) {
            Some(message) => format!("{reason} (exit code {}): {message}", terminated.exit_code),
            None => format!("{reason} (exit code {})", terminated.exit_code),
        })
    })
}

/// A kind the activator watches, and how its objects become index changes.
trait Watched: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static {
    const KIND: &'static str;
    type Info;
    fn info(&self) -> Option<Self::Info>;
    fn replace(all: Vec<Self::Info>) -> Change;
    fn upsert(info: Self::Info) -> Change;
    fn deleted(&self) -> Option<Change>;
}

fn object_key<K: Resource>(object: &K) -> Option<(String, String)> {
    Some((object.meta().namespace.clone()?, object.meta().name.clone()?))
}

impl Watched for WasmApp {
    const KIND: &'static str = "WasmApp";
    type Info = AppInfo;
    fn info(&self) -> Option<AppInfo> {
        app_info(self)
    }
    fn replace(all: Vec<AppInfo>) -> Change {
        Change::Apps(all)
    }
    fn upsert(info: AppInfo) -> Change {
        Change::App(info)
    }
    fn deleted(&self) -> Option<Change> {
        let (namespace, name) = object_key(self)?;
        Some(Change::AppDeleted(AppKey { namespace, name }))
    }
}

impl Watched for Service {
    const KIND: &'static str = "Service";
    type Info = ServiceInfo;
    fn info(&self) -> Option<ServiceInfo> {
        service_info(self)
    }
    fn replace(all: Vec<ServiceInfo>) -> Change {
        Change::Services(all)
    }
    fn upsert(info: ServiceInfo) -> Change {
        Change::Service(info)
    }
    fn deleted(&self) -> Option<Change> {
        let (namespace, name) = object_key(self)?;
        Some(Change::ServiceDeleted { namespace, name })
    }
}

impl Watched for Pod {
    const KIND: &'static str = "Pod";
    type Info = PodInfo;
    fn info(&self) -> Option<PodInfo> {
        pod_info(self)
    }
    fn replace(all: Vec<PodInfo>) -> Change {
        Change::Pods(all)
    }
    fn upsert(info: PodInfo) -> Change {
        Change::Pod(info)
    }
    fn deleted(&self) -> Option<Change> {
        let (namespace, name) = object_key(self)?;
        Some(Change::PodDeleted { namespace, name })
    }
}

/// Watches WasmApps, app Services and app pods in every namespace into `activator`'s index
/// until dropped; `readiness` turns ready once all three have listed.
pub async fn watch(client: Client, activator: Arc<Activator>, readiness: Arc<Readiness>) {
    let synced = Arc::new(Synced { pending: AtomicUsize::new(3), readiness });
    let labelled = watcher::Config::default().labels(APP_LABEL);
    futures::join!(
        follow(Api::<WasmApp>::all(client.clone()), watcher::Config::default(), activator.clone(), synced.clone()),
        follow(Api::<Service>::all(client.clone()), labelled.clone(), activator.clone(), synced.clone()),
        follow(Api::<Pod>::all(client), labelled, activator, synced),
    );
}

/// Counts the watches that have not listed yet.
struct Synced {
    pending: AtomicUsize,
    readiness: Arc<Readiness>,
}

impl Synced {
    fn one_listed(&self, kind: &str) {
        let left = self.pending.fetch_sub(1, Ordering::SeqCst) - 1;
        info!(kind, left, "watch synced");
        if left == 0 {
            self.readiness.set(true);
        }
    }
}

async fn follow<K: Watched>(api: Api<K>, config: watcher::Config, activator: Arc<Activator>, synced: Arc<Synced>) {
    let mut listing: Vec<K::Info> = Vec::new();
    let mut listed = false;
    let events = watcher::watcher(api, config).default_backoff();
    let mut events = std::pin::pin!(events);
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Init) => listing.clear(),
            Ok(Event::InitApply(object)) => listing.extend(object.info()),
            Ok(Event::InitDone) => {
                activator.update(K::replace(std::mem::take(&mut listing)));
                if !std::mem::replace(&mut listed, true) {
                    synced.one_listed(K::KIND);
                }
            }
            Ok(Event::Apply(object)) => match object.info() {
                Some(info) => activator.update(K::upsert(info)),
                // No longer one of ours (the label is gone): as good as deleted.
                None => update(&activator, object.deleted()),
            },
            Ok(Event::Delete(object)) => update(&activator, object.deleted()),
            Err(e) => warn!(kind = K::KIND, error = %e, "watch failed; retrying"),
        }
    }
}

fn update(activator: &Arc<Activator>, change: Option<Change>) {
    if let Some(change) = change {
        activator.update(change);
    }
}

/// Whether a WasmApp's scale is at zero. autoscaling/v1 omits `spec.replicas` when it is 0,
/// so a JSON patch cannot test for it: the wake reads the scale, then writes it back under
/// its resourceVersion.
pub fn at_zero(scale: &Scale) -> bool {
    scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0) == 0
}

/// The merge patch that scales to 1, refused (409) if the app changed since `resource_version`.
pub fn wake_patch(resource_version: Option<&str>) -> serde_json::Value {
    serde_json::json!({"metadata": {"resourceVersion": resource_version}, "spec": {"replicas": 1}})
}

/// A wake reads and writes the scale at most this often when the app keeps changing.
const WAKE_ATTEMPTS: usize = 3;

/// Wakes apps by patching their WasmApp's scale subresource.
pub struct KubeWaker {
    client: Client,
}

impl KubeWaker {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    async fn scale_up(&self, app: &AppKey) -> Result<Woke> {
        let api = Api::<WasmApp>::namespaced(self.client.clone(), &app.namespace);
        let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..PatchParams::default() };
        let action = || format!("scaling {app} from 0 to 1");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let scale = api.get_scale(&app.name).await.map_err(kube_err(action()))?;
            if !at_zero(&scale) {
                return Ok(Woke::AlreadyScaled);
            }
            let patch = wake_patch(scale.metadata.resource_version.as_deref());
            match api.patch_scale(&app.name, &params, &Patch::Merge(&patch)).await {
                Ok(_) => return Ok(Woke::Scaled),
                // Changed since it was read (a status update, or someone else scaled it):
                // read it again.
                Err(kube::Error::Api(status)) if status.code == 409 && attempt < WAKE_ATTEMPTS => continue,
                Err(e) => return Err(kube_err(action())(e)),
            }
        }
    }
}

impl AppWaker for KubeWaker {
    fn wake<'a>(&'a self, app: &'a AppKey) -> WakeFuture<'a> {
        Box::pin(self.scale_up(app))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn from<T: DeserializeOwned>(value: serde_json::Value) -> T {
        serde_json::from_value(value).expect("fixture object")
    }

    #[test]
    fn a_wasmapp_becomes_app_info() {
        let app: WasmApp = from(json!({
            "apiVersion": "spore.dev/v1alpha1", "kind": "WasmApp",
            "metadata": {"name": "hello", "namespace": "apps", "uid": "app-uid"},
            "spec": {"module": {"image": "r/hello:1"}, "scaling": {"replicas": 0},
                     "healthChecks": {"readiness": {"path": "/healthz"}}},
            "status": {"conditions": [
                {"type": "Ready", "status": "False", "reason": "ModuleInvalid", "message": "bad magic", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                {"type": "Degraded", "status": "True", "reason": "ModuleInvalid", "message": "bad magic", "lastTransitionTime": "2026-01-01T00:00:00Z"}
            ]}
        }));
        let info = app_info(&app).unwrap();
        assert_eq!((&info.key, info.uid.as_str()), (&AppKey::new("apps", "hello"), "app-uid"));
        assert!(info.scaled_to_zero());
        assert_eq!(info.readiness.unwrap().path, "/healthz");
        assert_eq!(
            info.ready.unwrap(),
            ConditionInfo { status: false, reason: "ModuleInvalid".into(), message: "bad magic".into() }
        );
        assert!(info.degraded.unwrap().status);
    }

    #[test]
    fn a_service_becomes_service_info() {
        let service: Service = from(json!({
            "metadata": {"name": "hello", "namespace": "apps", "labels": {"spore.dev/app": "hello"}},
            "spec": {"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10", "fd00::10"], "ports": [
                {"name": "http", "port": 80, "targetPort": 8080},
                {"name": "udp-53", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "named", "port": 9000, "targetPort": "admin"},
                {"name": "plain", "port": 9100}
            ]}
        }));
        let info = service_info(&service).unwrap();
        assert_eq!((info.namespace.as_str(), info.name.as_str(), info.app.as_str()), ("apps", "hello", "hello"));
        assert_eq!(info.cluster_ips, ["10.96.0.10".parse::<std::net::IpAddr>().unwrap(), "fd00::10".parse().unwrap()]);
        assert_eq!(
            info.ports,
            [
                PortInfo { port: 80, target_port: 8080 },
                PortInfo { port: 9000, target_port: 9000 },
                PortInfo { port: 9100, target_port: 9100 }
            ]
        );

        let headless: Service = from(json!({
            "metadata": {"name": "h", "namespace": "apps", "labels": {"spore.dev/app": "h"}},
            "spec": {"clusterIP": "None", "ports": [{"port": 80}]}
        }));
        assert!(service_info(&headless).unwrap().cluster_ips.is_empty());
        let unlabelled: Service = from(json!({"metadata": {"name": "x", "namespace": "apps"}, "spec": {}}));
        assert!(service_info(&unlabelled).is_none());
    }

    #[test]
    fn a_pod_becomes_pod_info() {
        let pod = |extra: serde_json::Value| -> Pod {
            let mut pod = json!({
                "metadata": {"name": "hello-1", "namespace": "apps", "uid": "u-1", "labels": {"spore.dev/app": "hello"}},
                "status": {"podIP": "10.0.0.5", "phase": "Running",
                           "conditions": [{"type": "Ready", "status": "False"}],
                           "containerStatuses": [{"name": "app", "image": "i", "imageID": "", "ready": false, "restartCount": 3,
                               "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}}}]}
            });
            json_merge(&mut pod, extra);
            from(pod)
        };
        let info = pod_info(&pod(json!({}))).unwrap();
        assert_eq!(
            info,
            PodInfo {
                namespace: "apps".into(),
                name: "hello-1".into(),
                uid: "u-1".into(),
                app: "hello".into(),
                ip: Some("10.0.0.5".parse().unwrap()),
                ready: Some(false),
                terminating: false,
                waiting: Some("CrashLoopBackOff: back-off 40s".into()),
            }
        );
        let deleting = pod_info(&pod(json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}}))).unwrap();
        assert!(deleting.terminating);
        let failed = pod_info(&pod(json!({"status": {"phase": "Failed"}}))).unwrap();
        assert!(failed.terminating);
        let ready = pod_info(&pod(json!({"status": {"conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "app", "image": "i", "imageID": "", "ready": true, "restartCount": 0, "state": {"running": {}}}]}})))
        .unwrap();
        assert_eq!((ready.ready, ready.waiting), (Some(true), None));
        let exited = pod_info(&pod(
            json!({"status": {"containerStatuses": [{"name": "app", "image": "i", "imageID": "", "ready": false,
            "restartCount": 0, "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}}),
        ))
        .unwrap();
        assert_eq!(exited.waiting.as_deref(), Some("Error (exit code 1)"));
        let pending =
            pod_info(&pod(json!({"status": {"podIP": null, "conditions": null, "containerStatuses": null}}))).unwrap();
        assert_eq!((pending.ip, pending.ready, pending.waiting), (None, None, None));
    }

    /// Merges `patch` into `doc` (objects recursively, anything else replaced).
    fn json_merge(doc: &mut serde_json::Value, patch: serde_json::Value) {
        match (doc, patch) {
            (serde_json::Value::Object(doc), serde_json::Value::Object(patch)) => {
                for (k, v) in patch {
                    json_merge(doc.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
            (doc, patch) => *doc = patch,
        }
    }

    #[test]
    fn the_wake_reads_an_omitted_replicas_as_zero_and_writes_one_under_the_resource_version() {
        // What the apiserver answers for a WasmApp at zero, and at three.
        let zero: Scale = from(json!({"metadata": {"name": "hello", "resourceVersion": "42"}, "spec": {},
            "status": {"replicas": 0, "selector": "spore.dev/app=hello"}}));
        let three: Scale =
            from(json!({"metadata": {"name": "hello"}, "spec": {"replicas": 3}, "status": {"replicas": 3}}));
        let explicit: Scale =
            from(json!({"metadata": {"name": "hello"}, "spec": {"replicas": 0}, "status": {"replicas": 0}}));
        assert!(at_zero(&zero) && at_zero(&explicit) && !at_zero(&three));
        assert_eq!(
            wake_patch(zero.metadata.resource_version.as_deref()),
            json!({"metadata": {"resourceVersion": "42"}, "spec": {"replicas": 1}})
        );
    }
}
