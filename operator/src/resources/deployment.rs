//! The Deployment that runs a long-running WasmApp's pods with Spore's RuntimeClass.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use spore_crds::WasmApp;

use super::pod::pod_template;
use super::{app_object_meta, app_selector, name_of};
use crate::error::Result;

/// The Deployment for `app`, running with `runtime_class`. Replicas are left to the HPA
/// when the app autoscales.
pub fn desired_deployment(app: &WasmApp, runtime_class: &str) -> Result<Deployment> {
    let name = name_of(app, "WasmApp")?;
    let spec = &app.spec;
    let replicas = spec.scaling.autoscale.is_none().then(|| spec.scaling.fixed_replicas());
    Ok(Deployment {
        metadata: app_object_meta(app)?,
        spec: Some(DeploymentSpec {
            replicas,
            selector: LabelSelector { match_labels: Some(app_selector(&name)), ..Default::default() },
            template: pod_template(app, runtime_class)?,
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
        let d = desired_deployment(&app(""), "spore").unwrap();
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
    fn replicas_follow_the_scaling_mode() {
        let cases = [
            ("", Some(1)),
            ("  scaling: {replicas: 3}\n", Some(3)),
            ("  scaling: {replicas: 0}\n", Some(0)),
            ("  scaling: {autoscale: {maxReplicas: 5, targetConcurrency: 10}}\n", None),
        ];
        for (extra, replicas) in cases {
            let d = desired_deployment(&app(extra), "spore").unwrap();
            assert_eq!(d.spec.unwrap().replicas, replicas, "{extra}");
        }
    }
}
