//! Where the Service of an app that scales to zero sends its traffic. Its Service has no
//! selector; the operator writes two EndpointSlices for it: one listing the app's pods, one
//! listing the activator's pods. Exactly one of them has endpoints at a time, so kube-proxy
//! sends every connection to the app's pods while one is ready, and to the activator
//! otherwise (or once the autoscaler decided on zero, before the last pod goes).

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use kube::ResourceExt;
use spore_crds::WasmApp;

use super::{app_object_meta, name_of};
use crate::error::Result;

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Who manages a slice; the EndpointSlice controller leaves slices of other managers alone.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// A label value (no `/`), like the EndpointSlice controller's `endpointslice-controller.k8s.io`.
pub const MANAGED_BY: &str = "operator.spore.dev";

/// Which endpoints the app's Service has now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// The app's ready pods.
    Pods,
    /// The activator: the app is at zero, going there, or has no ready pod.
    Activator,
}

/// The route for an app whose Deployment asks for `replicas`, given its pods.
pub fn route(replicas: i32, pods: &[Pod]) -> Route {
    if replicas > 0 && pods.iter().any(|p| pod_ready(p) && !terminating(p)) { Route::Pods } else { Route::Activator }
}

/// One ready activator pod, as its Service's EndpointSlices list it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActivatorEndpoint {
    pub ip: String,
    pub node: Option<String>,
    pub pod: Option<String>,
    pub namespace: Option<String>,
}

/// The ready endpoints of the activator's Service, from its EndpointSlices.
pub fn activator_endpoints<'a>(slices: impl IntoIterator<Item = &'a EndpointSlice>) -> Vec<ActivatorEndpoint> {
    let mut found: Vec<ActivatorEndpoint> = slices
        .into_iter()
        .flat_map(|s| s.endpoints.iter())
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
        .filter_map(|e| {
            let target = e.target_ref.as_ref();
            Some(ActivatorEndpoint {
                ip: e.addresses.first()?.clone(),
                node: e.node_name.clone(),
                pod: target.and_then(|t| t.name.clone()),
                namespace: target.and_then(|t| t.namespace.clone()),
            })
        })
        .collect();
    found.sort_by(|a, b| a.ip.cmp(&b.ip));
    found.dedup_by(|a, b| a.ip == b.ip);
    found
}

/// The names of the two slices of `app`.
pub fn slice_names(app: &str) -> [String; 2] {
    [format!("{app}-spore-pods"), format!("{app}-spore-activator")]
}

/// The two EndpointSlices of a scale-to-zero app: its pods (port: the app's), the activator
/// (port: `activator_port`); the one not routed to is empty.
pub fn desired_endpoint_slices(
    app: &WasmApp,
    route: Route,
    pods: &[Pod],
    activator: &[ActivatorEndpoint],
    activator_port: i32,
) -> Result<[EndpointSlice; 2]> {
    let name = name_of(app, "WasmApp")?;
    let inbound = app.spec.capabilities.network.inbound.first();
    let port_name = inbound.map(super::service::service_port).and_then(|p| p.name);
    let app_port = inbound.map(|p| p.port);
    let pod_endpoints = match route {
        Route::Pods => pods.iter().filter_map(pod_endpoint).collect(),
        Route::Activator => Vec::new(),
    };
    let activator_endpoints = match route {
        Route::Pods => Vec::new(),
        Route::Activator => activator.iter().map(activator_endpoint).collect(),
    };
    let [pods_name, activator_name] = slice_names(&name);
    Ok([
        slice(app, &name, pods_name, port_name.clone(), app_port, pod_endpoints)?,
        slice(app, &name, activator_name, port_name, Some(activator_port), activator_endpoints)?,
    ])
}

fn slice(
    app: &WasmApp,
    service: &str,
    name: String,
    port_name: Option<String>,
    port: Option<i32>,
    endpoints: Vec<Endpoint>,
) -> Result<EndpointSlice> {
    let mut metadata = app_object_meta(app)?;
    metadata.name = Some(name);
    let labels = metadata.labels.get_or_insert_with(Default::default);
    labels.insert(SERVICE_NAME_LABEL.into(), service.into());
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    Ok(EndpointSlice {
        metadata,
        address_type: "IPv4".into(),
        endpoints,
        ports: Some(vec![EndpointPort { name: port_name, port, protocol: Some("TCP".into()), app_protocol: None }]),
    })
}

fn pod_endpoint(pod: &Pod) -> Option<Endpoint> {
    let status = pod.status.as_ref()?;
    let ip = status.pod_ip.clone().filter(|ip| !ip.is_empty() && !ip.contains(':'))?;
    let ready = pod_ready(pod);
    let terminating = terminating(pod);
    Some(Endpoint {
        addresses: vec![ip],
        conditions: Some(EndpointConditions {
            ready: Some(ready && !terminating),
            serving: Some(ready),
            terminating: Some(terminating),
        }),
        node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            name: Some(pod.name_any()),
            namespace: pod.namespace(),
            uid: pod.uid(),
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn activator_endpoint(a: &ActivatorEndpoint) -> Endpoint {
    Endpoint {
        addresses: vec![a.ip.clone()],
        conditions: Some(EndpointConditions { ready: Some(true), serving: Some(true), terminating: Some(false) }),
        node_name: a.node.clone(),
        target_ref: a.pod.as_ref().map(|name| ObjectReference {
            kind: Some("Pod".into()),
            name: Some(name.clone()),
            namespace: a.namespace.clone(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The pod's Ready condition is True.
pub fn pod_ready(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions.into_iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True")
}

fn terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::fixtures::app;

    fn pod(name: &str, ip: Option<&str>, ready: bool, deleting: bool) -> Pod {
        let mut pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "apps", "uid": format!("uid-{name}")},
            "spec": {"nodeName": "node-wasm", "containers": []},
            "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]},
        }))
        .unwrap();
        if deleting {
            pod.metadata.deletion_timestamp =
                Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH));
        }
        pod
    }

    fn scale_to_zero() -> WasmApp {
        app(
            "  capabilities: {network: {inbound: [{name: http, port: 8080}]}}\n  scaling: {autoscale: {minReplicas: 0, maxReplicas: 5, targetConcurrency: 10}}\n",
        )
    }

    #[test]
    fn traffic_goes_to_the_pods_only_while_one_is_ready_and_replicas_are_wanted() {
        let ready = pod("a", Some("198.18.17.5"), true, false);
        let starting = pod("b", Some("198.18.17.6"), false, false);
        let leaving = pod("c", Some("198.18.17.7"), true, true);
        let cases = [
            (1, vec![ready.clone()], Route::Pods),
            (1, vec![starting.clone()], Route::Activator),
            (1, vec![], Route::Activator),
            (1, vec![leaving.clone()], Route::Activator),
            (2, vec![starting, ready.clone()], Route::Pods),
            // Zero was decided: the activator takes over before the last pod goes.
            (0, vec![ready], Route::Activator),
            (0, vec![leaving], Route::Activator),
        ];
        for (replicas, pods, want) in cases {
            assert_eq!(
                route(replicas, &pods),
                want,
                "{replicas} {:?}",
                pods.iter().map(|p| p.name_any()).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn the_routed_slice_has_the_endpoints_and_the_other_is_empty() {
        let app = scale_to_zero();
        let pods = [
            pod("a", Some("198.18.17.5"), true, false),
            pod("b", None, false, false),
            pod("c", Some("198.18.17.7"), false, true),
        ];
        let activator = [ActivatorEndpoint {
            ip: "198.18.16.9".into(),
            node: Some("node-container".into()),
            pod: Some("spore-activator-x".into()),
            namespace: Some("spore-system".into()),
        }];
        let [to_pods, to_activator] = desired_endpoint_slices(&app, Route::Pods, &pods, &activator, 8012).unwrap();
        assert_eq!(to_pods.metadata.name.as_deref(), Some("hello-spore-pods"));
        let labels = to_pods.metadata.labels.as_ref().unwrap();
        assert_eq!((labels[SERVICE_NAME_LABEL].as_str(), labels[MANAGED_BY_LABEL].as_str()), ("hello", MANAGED_BY));
        assert_eq!(to_pods.metadata.owner_references.as_ref().unwrap()[0].kind, "WasmApp");
        let port = &to_pods.ports.as_ref().unwrap()[0];
        assert_eq!((port.name.as_deref(), port.port), (Some("http"), Some(8080)));
        let seen: Vec<_> = to_pods
            .endpoints
            .iter()
            .map(|e| {
                let c = e.conditions.clone().unwrap();
                (e.addresses[0].as_str(), c.ready.unwrap(), c.serving.unwrap(), c.terminating.unwrap())
            })
            .collect();
        assert_eq!(seen, [("198.18.17.5", true, true, false), ("198.18.17.7", false, false, true)]);
        assert!(to_activator.endpoints.is_empty());
        assert_eq!(to_activator.ports.as_ref().unwrap()[0].port, Some(8012));

        let [to_pods, to_activator] = desired_endpoint_slices(&app, Route::Activator, &pods, &activator, 8012).unwrap();
        assert!(to_pods.endpoints.is_empty());
        assert_eq!(to_activator.endpoints[0].addresses, ["198.18.16.9"]);
        let port = &to_activator.ports.as_ref().unwrap()[0];
        assert_eq!(
            (port.name.as_deref(), port.port),
            (Some("http"), Some(8012)),
            "the Service port maps to the activator's"
        );
    }

    #[test]
    fn only_ready_activator_endpoints_count() {
        let slice: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"name": "spore-activator-abc"},
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": ["198.18.16.9"], "conditions": {"ready": true}, "nodeName": "node-container", "targetRef": {"kind": "Pod", "name": "act-1", "namespace": "spore-system"}},
                {"addresses": ["198.18.16.10"], "conditions": {"ready": false}},
                {"addresses": ["198.18.16.11"]},
            ],
        }))
        .unwrap();
        let ips: Vec<_> = activator_endpoints([&slice, &slice]).into_iter().map(|e| e.ip).collect();
        assert_eq!(ips, ["198.18.16.11", "198.18.16.9"], "ready (or unknown) ones, once each");
    }
}
