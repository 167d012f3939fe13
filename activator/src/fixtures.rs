//! Test fixtures: `app("apps", "hello").scaled_to(0)`, `pod("apps", "hello", "hello-1", "10.0.0.1", true)`.

use crate::index::{AppInfo, AppKey, ConditionInfo, PodInfo, PortInfo, ServiceInfo};

/// The WasmApp `namespace/name`, with no replica count (one replica).
pub fn app(namespace: &str, name: &str) -> AppInfo {
    AppInfo { key: AppKey::new(namespace, name), ..AppInfo::default() }
}

impl AppInfo {
    pub fn scaled_to(mut self, replicas: i32) -> Self {
        self.replicas = Some(replicas);
        self
    }
}

pub fn condition(status: bool, reason: &str, message: &str) -> ConditionInfo {
    ConditionInfo { status, reason: reason.into(), message: message.into() }
}

/// The app's Service `namespace/name` on `ip`, port `port` to the same target port.
pub fn service(namespace: &str, name: &str, ip: &str, port: u16) -> ServiceInfo {
    ServiceInfo {
        namespace: namespace.into(),
        name: name.into(),
        app: name.into(),
        cluster_ips: vec![ip.parse().expect("fixture IP")],
        ports: vec![PortInfo { port, target_port: port }],
    }
}

/// A running pod `name` of `namespace/app` on `ip`, with uid `uid-<name>`.
pub fn pod(namespace: &str, app: &str, name: &str, ip: &str, ready: bool) -> PodInfo {
    PodInfo {
        namespace: namespace.into(),
        name: name.into(),
        uid: format!("uid-{name}"),
        app: app.into(),
        ip: Some(ip.parse().expect("fixture IP")),
        ready: Some(ready),
        terminating: false,
        waiting: None,
    }
}
