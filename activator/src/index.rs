//! The in-memory index the proxy works on: WasmApps, their Services and pods as plain
//! values (the [`crate::cluster`] module translates Kubernetes objects into them), and Host
//! lookup. Tests fill it by hand with [`Change`]s.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, PoisonError, RwLock};

use spore_crds::HttpCheck;

use crate::app::AppState;
use crate::host::{HostName, parse_host};

/// An app: its namespace and name (the WasmApp's, the Service's and the pods' `spore.dev/app`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppKey {
    pub namespace: String,
    pub name: String,
}

impl AppKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self { namespace: namespace.into(), name: name.into() }
    }
}

impl fmt::Display for AppKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// One status condition of a WasmApp, as a timed-out request's 503 reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConditionInfo {
    /// `status == "True"`.
    pub status: bool,
    pub reason: String,
    pub message: String,
}

/// What the activator needs of a WasmApp.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppInfo {
    pub key: AppKey,
    /// `metadata.uid`: the token its pods announce themselves with.
    pub uid: String,
    /// `spec.scaling.replicas`: `Some(0)` is scaled to zero, which a held request wakes.
    pub replicas: Option<i32>,
    /// `spec.healthChecks.readiness`: probes of unready pods GET its path.
    pub readiness: Option<HttpCheck>,
    /// The `Ready` condition.
    pub ready: Option<ConditionInfo>,
    /// The `Degraded` condition.
    pub degraded: Option<ConditionInfo>,
}

impl AppInfo {
    /// Whether the app is scaled to zero (a held request must wake it).
    pub fn scaled_to_zero(&self) -> bool {
        self.replicas == Some(0)
    }
}

/// A TCP port of a Service and the pod port it forwards to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortInfo {
    pub port: u16,
    pub target_port: u16,
}

/// What the activator needs of an app's Service.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceInfo {
    pub namespace: String,
    pub name: String,
    /// The `spore.dev/app` label: the app whose pods serve it.
    pub app: String,
    /// `spec.clusterIPs` (none for a headless Service).
    pub cluster_ips: Vec<IpAddr>,
    /// Its TCP ports, in order; the first is the default.
    pub ports: Vec<PortInfo>,
}

impl ServiceInfo {
    fn app_key(&self) -> AppKey {
        AppKey::new(&self.namespace, &self.app)
    }

    /// The pod port for a request that named `port` (the default port if it named none or
    /// one the Service does not have).
    pub fn target_port(&self, port: Option<u16>) -> Option<u16> {
        let named = port.and_then(|port| self.ports.iter().find(|p| p.port == port));
        named.or(self.ports.first()).map(|p| p.target_port)
    }
}

/// What the activator needs of one pod of an app.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// The `spore.dev/app` label.
    pub app: String,
    /// `status.podIP` (an announced address is the app state's, not the pod's).
    pub ip: Option<IpAddr>,
    /// The `Ready` condition: `None` until the kubelet reports one.
    pub ready: Option<bool>,
    /// Being deleted (`deletionTimestamp`) or finished (phase Succeeded/Failed): never a
    /// backend.
    pub terminating: bool,
    /// Why its container does not run, e.g. `CrashLoopBackOff: back-off 10s ...`, for the
    /// 503 of a request that timed out.
    pub waiting: Option<String>,
}

impl PodInfo {
    fn app_key(&self) -> AppKey {
        AppKey::new(&self.namespace, &self.app)
    }
}

/// One update of the index. The plural forms replace every object of their kind (a
/// watch's initial list, or a relist after it lost track).
#[derive(Clone, Debug)]
pub enum Change {
    Apps(Vec<AppInfo>),
    App(AppInfo),
    AppDeleted(AppKey),
    Services(Vec<ServiceInfo>),
    Service(ServiceInfo),
    ServiceDeleted { namespace: String, name: String },
    Pods(Vec<PodInfo>),
    Pod(PodInfo),
    PodDeleted { namespace: String, name: String },
}

/// What [`Index::apply`] changed.
pub struct Applied {
    /// Apps whose state changed.
    pub touched: Vec<Arc<AppState>>,
    /// Apps the index forgot: no WasmApp, Service, pod or held request refers to them.
    pub removed: Vec<AppKey>,
}

/// Where a request goes: the app and the pod port.
#[derive(Clone)]
pub struct Route {
    pub app: Arc<AppState>,
    pub port: u16,
}

/// Why a request's Host names no app: each is answered right away.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unroutable {
    /// No Host header (400).
    Missing,
    /// No app has this host (404).
    Unknown { host: String, cluster_domain: String },
    /// A bare name that several namespaces have (400).
    Ambiguous { host: String, service: String, namespaces: Vec<String> },
}

impl Unroutable {
    pub fn status(&self) -> u16 {
        match self {
            Self::Missing | Self::Ambiguous { .. } => 400,
            Self::Unknown { .. } => 404,
        }
    }

    /// The one-line text/plain body.
    pub fn message(&self) -> String {
        match self {
            Self::Missing => {
                "missing Host header: the activator tells apps apart by Host, e.g. Host: <app>.<namespace>\n".into()
            }
            Self::Unknown { host, cluster_domain } => format!(
                "no Spore app serves host {host:?}; use <app>.<namespace>, <app>.<namespace>.svc, \
                 <app>.<namespace>.svc.{cluster_domain} or the app Service's cluster IP, each with an optional :port\n"
            ),
            Self::Ambiguous { host, service, namespaces } => {
                let candidates: Vec<String> = namespaces.iter().map(|ns| format!("{ns}/{service}")).collect();
                format!(
                    "host {host:?} is ambiguous: apps {} have that name; use {service}.<namespace>, e.g. {service}.{}\n",
                    candidates.join(", "),
                    namespaces.first().map_or("default", String::as_str),
                )
            }
        }
    }
}

type ObjectKey = (String, String);

#[derive(Default)]
struct Tables {
    apps: HashMap<AppKey, Arc<AppState>>,
    services: HashMap<ObjectKey, ServiceInfo>,
    by_ip: HashMap<IpAddr, ObjectKey>,
    /// Service name -> the namespaces that have one.
    by_name: HashMap<String, BTreeSet<String>>,
    /// Pod -> the app it was filed under.
    pod_apps: HashMap<ObjectKey, AppKey>,
}

/// Apps, Services and pods, by app and by Host.
pub struct Index {
    cluster_domain: String,
    tables: RwLock<Tables>,
}

impl Index {
    pub fn new(cluster_domain: impl Into<String>) -> Self {
        Self { cluster_domain: cluster_domain.into(), tables: RwLock::default() }
    }

    pub fn cluster_domain(&self) -> &str {
        &self.cluster_domain
    }

    /// The app's state, if the index knows it.
    pub fn app(&self, key: &AppKey) -> Option<Arc<AppState>> {
        self.tables.read().unwrap_or_else(PoisonError::into_inner).apps.get(key).cloned()
    }

    /// The state of the app the pod `namespace/name` belongs to.
    pub fn pod_app(&self, namespace: &str, name: &str) -> Option<Arc<AppState>> {
        let tables = self.tables.read().unwrap_or_else(PoisonError::into_inner);
        let app = tables.pod_apps.get(&(namespace.to_string(), name.to_string()))?;
        tables.apps.get(app).cloned()
    }

    /// Applies `change`: returns the apps it touched (whose waiting requests and probes
    /// the caller revisits) and those it forgot (nothing refers to them any more).
    pub fn apply(&self, change: Change) -> Applied {
        let mut tables = self.tables.write().unwrap_or_else(PoisonError::into_inner);
        let touched = tables.apply(change);
        let removed = tables.prune();
        Applied { touched, removed }
    }

    /// The app and port `host` (a Host header) names.
    pub fn resolve(&self, host: Option<&str>) -> Result<Route, Unroutable> {
        let host = host.map(str::trim).filter(|h| !h.is_empty()).ok_or(Unroutable::Missing)?;
        let unknown = || Unroutable::Unknown { host: host.to_string(), cluster_domain: self.cluster_domain.clone() };
        let name = parse_host(host, &self.cluster_domain).ok_or_else(unknown)?;
        let tables = self.tables.read().unwrap_or_else(PoisonError::into_inner);
        let service = match &name {
            HostName::Qualified { service, namespace, .. } => {
                tables.services.get(&(namespace.clone(), service.clone()))
            }
            HostName::Ip { ip, .. } => tables.by_ip.get(ip).and_then(|key| tables.services.get(key)),
            HostName::Bare { service, .. } => match tables.by_name.get(service) {
                Some(namespaces) if namespaces.len() > 1 => {
                    return Err(Unroutable::Ambiguous {
                        host: host.to_string(),
                        service: service.clone(),
                        namespaces: namespaces.iter().cloned().collect(),
                    });
                }
                Some(namespaces) => {
                    namespaces.first().and_then(|ns| tables.services.get(&(ns.clone(), service.clone())))
                }
                None => None,
            },
        };
        let service = service.ok_or_else(unknown)?;
        let port = service.target_port(name.port()).ok_or_else(unknown)?;
        let app = tables.apps.get(&service.app_key()).cloned().ok_or_else(unknown)?;
        Ok(Route { app, port })
    }
}

impl Tables {
    fn state(&mut self, key: &AppKey) -> Arc<AppState> {
        self.apps.entry(key.clone()).or_insert_with(|| Arc::new(AppState::new(key.clone()))).clone()
    }

    fn apply(&mut self, change: Change) -> Vec<Arc<AppState>> {
        match change {
            Change::App(info) => vec![self.upsert_app(info)],
            Change::AppDeleted(key) => self.delete_app(&key).into_iter().collect(),
            Change::Apps(infos) => {
                let keep: HashSet<AppKey> = infos.iter().map(|i| i.key.clone()).collect();
                let gone: Vec<AppKey> = self
                    .apps
                    .iter()
                    .filter(|(k, s)| !keep.contains(*k) && s.has_info())
                    .map(|(k, _)| k.clone())
                    .collect();
                let mut touched: Vec<_> = gone.iter().filter_map(|k| self.delete_app(k)).collect();
                touched.extend(infos.into_iter().map(|info| self.upsert_app(info)));
                touched
            }
            Change::Service(info) => self.upsert_service(info),
            Change::ServiceDeleted { namespace, name } => self.delete_service(&(namespace, name)),
            Change::Services(infos) => {
                let keep: HashSet<ObjectKey> = infos.iter().map(|s| (s.namespace.clone(), s.name.clone())).collect();
                let gone: Vec<ObjectKey> = self.services.keys().filter(|k| !keep.contains(*k)).cloned().collect();
                let mut touched: Vec<_> = gone.iter().flat_map(|k| self.delete_service(k)).collect();
                touched.extend(infos.into_iter().flat_map(|info| self.upsert_service(info)));
                touched
            }
            Change::Pod(info) => self.upsert_pod(info),
            Change::PodDeleted { namespace, name } => self.delete_pod(&(namespace, name)).into_iter().collect(),
            Change::Pods(infos) => {
                let keep: HashSet<ObjectKey> = infos.iter().map(|p| (p.namespace.clone(), p.name.clone())).collect();
                let gone: Vec<ObjectKey> = self.pod_apps.keys().filter(|k| !keep.contains(*k)).cloned().collect();
                let mut touched: Vec<_> = gone.iter().filter_map(|k| self.delete_pod(k)).collect();
                touched.extend(infos.into_iter().flat_map(|info| self.upsert_pod(info)));
                touched
            }
        }
    }

    fn upsert_app(&mut self, info: AppInfo) -> Arc<AppState> {
        let state = self.state(&info.key);
        state.set_info(Some(info));
        state
    }

    fn delete_app(&mut self, key: &AppKey) -> Option<Arc<AppState>> {
        let state = self.apps.get(key)?.clone();
        state.set_info(None);
        Some(state)
    }

    fn upsert_service(&mut self, info: ServiceInfo) -> Vec<Arc<AppState>> {
        let key = (info.namespace.clone(), info.name.clone());
        let mut touched = self.delete_service(&key);
        for ip in &info.cluster_ips {
            self.by_ip.insert(*ip, key.clone());
        }
        self.by_name.entry(info.name.clone()).or_default().insert(info.namespace.clone());
        let state = self.state(&info.app_key());
        state.set_service(Some((info.name.clone(), info.ports.clone())));
        self.services.insert(key, info);
        touched.push(state);
        touched
    }

    fn delete_service(&mut self, key: &ObjectKey) -> Vec<Arc<AppState>> {
        let Some(old) = self.services.remove(key) else { return Vec::new() };
        for ip in &old.cluster_ips {
            if self.by_ip.get(ip) == Some(key) {
                self.by_ip.remove(ip);
            }
        }
        if let Some(namespaces) = self.by_name.get_mut(&old.name) {
            namespaces.remove(&old.namespace);
            if namespaces.is_empty() {
                self.by_name.remove(&old.name);
            }
        }
        let Some(state) = self.apps.get(&old.app_key()).cloned() else { return Vec::new() };
        state.clear_service(&old.name);
        vec![state]
    }

    fn upsert_pod(&mut self, info: PodInfo) -> Vec<Arc<AppState>> {
        let key = (info.namespace.clone(), info.name.clone());
        let app = info.app_key();
        let mut touched = Vec::new();
        if self.pod_apps.get(&key).is_some_and(|filed| *filed != app) {
            touched.extend(self.delete_pod(&key));
        }
        let state = self.state(&app);
        state.upsert_pod(info);
        self.pod_apps.insert(key, app);
        touched.push(state);
        touched
    }

    fn delete_pod(&mut self, key: &ObjectKey) -> Option<Arc<AppState>> {
        let app = self.pod_apps.remove(key)?;
        let state = self.apps.get(&app)?.clone();
        state.remove_pod(&key.1);
        Some(state)
    }

    /// Forgets apps nothing refers to any more; returns them.
    fn prune(&mut self) -> Vec<AppKey> {
        let unused: Vec<AppKey> = self.apps.iter().filter(|(_, s)| s.is_unused()).map(|(k, _)| k.clone()).collect();
        for key in &unused {
            self.apps.remove(key);
        }
        unused
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{app, pod, service};

    fn index() -> Index {
        let index = Index::new("cluster.local");
        index.apply(Change::Apps(vec![app("apps", "hello"), app("other", "hello"), app("apps", "solo")]));
        index.apply(Change::Services(vec![
            service("apps", "hello", "10.96.0.10", 8080),
            service("other", "hello", "10.96.0.11", 8080),
            service("apps", "solo", "fd00::12", 80),
        ]));
        index
    }

    fn route(index: &Index, host: &str) -> Result<(String, u16), Unroutable> {
        index.resolve(Some(host)).map(|r| (r.app.key().to_string(), r.port))
    }

    #[test]
    fn hosts_resolve_to_apps() {
        let index = index();
        let ok = |key: &str, port| Ok((key.to_string(), port));
        for (host, want) in [
            ("hello.apps", ok("apps/hello", 8080)),
            ("hello.other:8080", ok("other/hello", 8080)),
            ("HELLO.APPS.SVC", ok("apps/hello", 8080)),
            ("hello.apps.svc.cluster.local.", ok("apps/hello", 8080)),
            ("10.96.0.11", ok("other/hello", 8080)),
            ("10.96.0.10:8080", ok("apps/hello", 8080)),
            ("[fd00::12]:80", ok("apps/solo", 80)),
            ("solo", ok("apps/solo", 80)),
            ("solo:80", ok("apps/solo", 80)),
        ] {
            assert_eq!(route(&index, host), want, "{host}");
        }
    }

    #[test]
    fn a_named_service_port_picks_its_target_port() {
        let index = Index::new("cluster.local");
        let mut svc = service("apps", "two", "10.96.0.20", 80);
        svc.ports = vec![PortInfo { port: 80, target_port: 8080 }, PortInfo { port: 9000, target_port: 9001 }];
        index.apply(Change::Service(svc));
        assert_eq!(route(&index, "two.apps:9000"), Ok(("apps/two".into(), 9001)));
        assert_eq!(route(&index, "two.apps:80"), Ok(("apps/two".into(), 8080)));
        assert_eq!(route(&index, "two.apps:1234"), Ok(("apps/two".into(), 8080)));
        assert_eq!(route(&index, "two.apps"), Ok(("apps/two".into(), 8080)));
    }

    #[test]
    fn a_bare_name_in_two_namespaces_is_ambiguous() {
        let err = route(&index(), "hello:8080").unwrap_err();
        assert_eq!(err.status(), 400);
        let message = err.message();
        assert!(message.contains("apps/hello, other/hello") && message.contains("use hello.<namespace>"), "{message}");
    }

    #[test]
    fn unknown_and_missing_hosts_are_refused() {
        let index = index();
        for host in ["nope.apps", "hello.elsewhere", "10.96.0.99", "nope", "www.example.com", "[fd00::99]:80"] {
            let err = route(&index, host).unwrap_err();
            assert_eq!(err.status(), 404, "{host}");
            let message = err.message();
            assert!(message.contains(&format!("{host:?}")) && message.contains("<app>.<namespace>"), "{message}");
            assert!(message.ends_with('\n') && message.lines().count() == 1, "{message}");
        }
        for host in [None, Some(""), Some("  ")] {
            assert_eq!(index.resolve(host).err(), Some(Unroutable::Missing));
        }
        assert_eq!(Unroutable::Missing.status(), 400);
    }

    #[test]
    fn deleted_and_relisted_objects_leave_the_index() {
        let index = index();
        index.apply(Change::Pod(pod("apps", "hello", "hello-1", "10.0.0.1", true)));
        index.apply(Change::ServiceDeleted { namespace: "other".into(), name: "hello".into() });
        assert!(route(&index, "10.96.0.11").is_err());
        assert_eq!(route(&index, "hello"), Ok(("apps/hello".into(), 8080)), "no longer ambiguous");
        // A relist without apps/solo's Service and with no pods.
        index.apply(Change::Services(vec![service("apps", "hello", "10.96.0.10", 8080)]));
        index.apply(Change::Pods(vec![]));
        assert!(route(&index, "solo.apps").is_err());
        assert!(!index.app(&AppKey::new("apps", "hello")).unwrap().has_backend());
        let applied = index.apply(Change::AppDeleted(AppKey::new("other", "hello")));
        assert_eq!(applied.removed, [AppKey::new("other", "hello")], "nothing refers to it any more");
        assert!(index.app(&AppKey::new("other", "hello")).is_none());
    }

    #[test]
    fn a_relabelled_pod_moves_to_its_new_app() {
        let index = index();
        index.apply(Change::Pod(pod("apps", "hello", "p-1", "10.0.0.1", true)));
        index.apply(Change::Pod(pod("apps", "solo", "p-1", "10.0.0.1", true)));
        assert!(!index.app(&AppKey::new("apps", "hello")).unwrap().has_backend());
        assert!(index.app(&AppKey::new("apps", "solo")).unwrap().has_backend());
    }
}
