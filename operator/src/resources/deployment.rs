//! The Deployment that runs a long-running WasmApp's pods with Spore's RuntimeClass.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use spore_crds::WasmApp;

use super::pod::pod_template;
use super::{app_object_meta, app_selector, name_of};
use crate::error::Result;

/// Where the shim of a scale-to-zero app's pod tells the activator it listens (the
/// activator Service's ClusterIP and admin port), so a held request need not wait for
/// kubelet to report the pod's IP.
pub const ANNOUNCE_ANNOTATION: &str = "spore.dev/activator-announce";
/// What the announcement carries to prove it comes from this app's pod: the app's UID.
pub const ANNOUNCE_TOKEN_ANNOTATION: &str = "spore.dev/announce-token";

/// The Deployment for `app`, running with `runtime_class`. Replicas are left to the HPA when
/// the app autoscales on CPU; on concurrency they are Spore's autoscaler's count. `announce`:
/// where pods of an app that scales to zero announce themselves to the activator.
pub fn desired_deployment(app: &WasmApp, runtime_class: &str, announce: Option<&str>) -> Result<Deployment> {
    let name = name_of(app, "WasmApp")?;
    let spec = &app.spec;
    let replicas = spec.scaling.deployment_replicas();
    let mut template = pod_template(app, runtime_class)?;
    if let (Some(address), true, Some(uid)) = (announce, spec.scaling.scales_to_zero(), app.metadata.uid.as_ref()) {
        let annotations =
            template.metadata.get_or_insert_with(Default::default).annotations.get_or_insert_with(Default::default);
        annotations.insert(ANNOUNCE_ANNOTATION.into(), address.into());
        annotations.insert(ANNOUNCE_TOKEN_ANNOTATION.into(), uid.clone());
    }
    Ok(Deployment {
        metadata: app_object_meta(app)?,
        spec: Some(DeploymentSpec {
            replicas,
            selector: LabelSelector { match_labels: Some(app_selector(&name)), ..Default::default() },
            template,
            ..Default::default()
        }),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::app;
    use crate::resources::pod::CAPABILITIES_ANNOTATION;

    #[test]
    fn minimal_app_runs_one_replica_with_the_runtime_class_and_deny_all_annotations() {
        let d = desired_deployment(&app(""), "spore", None).unwrap();
        assert_eq!(d.metadata.name.as_deref(), Some("hello"));
        assert_eq!(d.metadata.namespace.as_deref(), Some("apps"));
        let owner = &d.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.controller), ("WasmApp", Some(true)));
        let spec = d.spec.unwrap();
        assert_eq!(spec.replicas, Some(1));
        assert_eq!(spec.selector.match_labels, Some(app_selector("hello")));
        let pod = spec.template.spec.unwrap();
        assert_eq!(pod.runtime_class_name.as_deref(), Some("spore"));
        assert_eq!(pod.restart_policy, None, "Deployments restart in place (Always)");
        assert_eq!(spec.template.metadata.unwrap().annotations.unwrap()[CAPABILITIES_ANNOTATION], "{}");
    }

    #[test]
    fn pods_of_an_app_that_scales_to_zero_know_where_to_announce_themselves() {
        let zero = "  capabilities: {network: {inbound: [{port: 8080}]}}\n  scaling: {autoscale: {minReplicas: 0, maxReplicas: 2, targetConcurrency: 5}}\n";
        let annotations = |extra: &str, announce| {
            let d = desired_deployment(&app(extra), "spore", announce).unwrap();
            d.spec.unwrap().template.metadata.unwrap().annotations.unwrap()
        };
        let a = annotations(zero, Some("198.19.0.77:9090"));
        assert_eq!(a[ANNOUNCE_ANNOTATION], "198.19.0.77:9090");
        assert_eq!(a[ANNOUNCE_TOKEN_ANNOTATION], "u-1", "the app's UID, which the activator checks");
        assert!(!annotations(zero, None).contains_key(ANNOUNCE_ANNOTATION), "no activator Service yet");
        assert!(!annotations("", Some("198.19.0.77:9090")).contains_key(ANNOUNCE_ANNOTATION), "warm apps need none");
    }

    #[test]
    fn replicas_follow_the_scaling_mode() {
        let cases = [
            ("", Some(1)),
            ("  scaling: {replicas: 3}\n", Some(3)),
            ("  scaling: {replicas: 0}\n", Some(0)),
            ("  scaling: {autoscale: {maxReplicas: 5, targetCpuUtilization: 50}}\n", None),
            ("  scaling: {autoscale: {maxReplicas: 5, targetConcurrency: 10}}\n", Some(1)),
            ("  scaling: {autoscale: {minReplicas: 0, maxReplicas: 5, targetConcurrency: 10}}\n", Some(1)),
            ("  scaling: {replicas: 0, autoscale: {minReplicas: 0, maxReplicas: 5, targetConcurrency: 10}}\n", Some(0)),
            ("  scaling: {replicas: 9, autoscale: {minReplicas: 2, maxReplicas: 5, targetConcurrency: 10}}\n", Some(5)),
            ("  scaling: {replicas: 0, autoscale: {minReplicas: 2, maxReplicas: 5, targetConcurrency: 10}}\n", Some(2)),
        ];
        for (extra, replicas) in cases {
            let d = desired_deployment(&app(extra), "spore", None).unwrap();
            assert_eq!(d.spec.unwrap().replicas, replicas, "{extra}");
        }
    }
}
