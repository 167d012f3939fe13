//! The Service in front of a WasmApp's pods: one port per declared inbound port. An app that
//! scales to zero gets a Service without a selector, whose EndpointSlices the operator
//! writes (see `endpoint_slice.rs`): the same ClusterIP and DNS name at zero and warm.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use spore_crds::{InboundPort, WasmApp};

use super::pod::{is_port_name, protocol};
use super::{app_object_meta, app_selector, name_of};
use crate::error::Result;

/// The Service for `app`, or `None` when it listens on no port.
pub fn desired_service(app: &WasmApp) -> Result<Option<Service>> {
    let inbound = &app.spec.capabilities.network.inbound;
    if inbound.is_empty() {
        return Ok(None);
    }
    let name = name_of(app, "WasmApp")?;
    Ok(Some(Service {
        metadata: app_object_meta(app)?,
        spec: Some(ServiceSpec {
            selector: (!app.spec.scaling.scales_to_zero()).then(|| app_selector(&name)),
            ports: Some(inbound.iter().map(service_port).collect()),
            ..Default::default()
        }),
        status: None,
    }))
}

/// Kubernetes needs a name on every port of a multi-port Service: the declared one when it
/// is a valid port name, else `tcp-8080`.
pub(crate) fn service_port(port: &InboundPort) -> ServicePort {
    let protocol = protocol(port.protocol);
    let name = port
        .name
        .clone()
        .filter(|n| is_port_name(n))
        .unwrap_or_else(|| format!("{}-{}", protocol.to_ascii_lowercase(), port.port));
    ServicePort {
        name: Some(name),
        port: port.port,
        target_port: Some(IntOrString::Int(port.port)),
        protocol: Some(protocol.into()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::app;

    #[test]
    fn no_inbound_port_means_no_service() {
        assert!(desired_service(&app("")).unwrap().is_none());
    }

    #[test]
    fn an_app_that_scales_to_zero_gets_a_service_without_selector() {
        let app = app(
            "  capabilities: {network: {inbound: [{name: http, port: 8080}]}}\n  scaling: {autoscale: {minReplicas: 0, maxReplicas: 3, targetConcurrency: 5}}\n",
        );
        let spec = desired_service(&app).unwrap().unwrap().spec.unwrap();
        assert_eq!(spec.selector, None, "the operator writes its EndpointSlices");
        assert_eq!(spec.ports.unwrap()[0].port, 8080);
    }

    #[test]
    fn every_inbound_port_gets_a_named_service_port() {
        let app = app(
            "  capabilities:\n    network:\n      inbound: [{name: http, port: 8080}, {port: 53, protocol: UDP}, {name: Admin_Port, port: 9000}]\n",
        );
        let svc = desired_service(&app).unwrap().unwrap();
        assert_eq!(svc.metadata.owner_references.unwrap()[0].name, "hello");
        let spec = svc.spec.unwrap();
        assert_eq!(spec.selector, Some(app_selector("hello")));
        let ports: Vec<_> =
            spec.ports.unwrap().into_iter().map(|p| (p.name.unwrap(), p.port, p.protocol.unwrap())).collect();
        assert_eq!(
            ports,
            [
                ("http".to_string(), 8080, "TCP".to_string()),
                ("udp-53".into(), 53, "UDP".into()),
                ("tcp-9000".into(), 9000, "TCP".into())
            ]
        );
    }
}
