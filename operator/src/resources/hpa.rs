//! The HorizontalPodAutoscaler (autoscaling/v2) of a WasmApp that autoscales on CPU. Apps
//! that autoscale on concurrency are scaled by Spore's own autoscaler (`autoscale/`).

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec, MetricTarget,
    ResourceMetricSource,
};
use spore_crds::{Autoscale, WasmApp};

use super::{app_object_meta, name_of};
use crate::error::Result;

/// The HPA for `app`, or `None` unless it autoscales on `targetCpuUtilization`. It scales the
/// app's Deployment; the operator leaves that Deployment's replica count alone.
pub fn desired_hpa(app: &WasmApp) -> Result<Option<HorizontalPodAutoscaler>> {
    let Some(autoscale) = app.spec.scaling.autoscale.as_ref().filter(|a| a.target_cpu_utilization.is_some()) else {
        return Ok(None);
    };
    let name = name_of(app, "WasmApp")?;
    Ok(Some(HorizontalPodAutoscaler {
        metadata: app_object_meta(app)?,
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name,
            },
            min_replicas: Some(autoscale.min_replicas),
            max_replicas: autoscale.max_replicas,
            metrics: Some(vec![metric(autoscale)]),
            behavior: None,
        }),
        status: None,
    }))
}

fn metric(autoscale: &Autoscale) -> MetricSpec {
    MetricSpec {
        type_: "Resource".into(),
        resource: Some(ResourceMetricSource {
            name: "cpu".into(),
            target: MetricTarget {
                type_: "Utilization".into(),
                average_utilization: autoscale.target_cpu_utilization,
                ..Default::default()
            },
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::app;

    #[test]
    fn only_apps_autoscaled_on_cpu_get_an_hpa() {
        assert!(desired_hpa(&app("")).unwrap().is_none());
        assert!(desired_hpa(&app("  scaling: {replicas: 3}\n")).unwrap().is_none());
        let concurrency = app("  scaling: {autoscale: {maxReplicas: 10, targetConcurrency: 20}}\n");
        assert!(desired_hpa(&concurrency).unwrap().is_none(), "Spore's autoscaler scales on concurrency");
    }

    #[test]
    fn the_hpa_scales_the_deployment_on_cpu() {
        let hpa =
            desired_hpa(&app("  scaling: {autoscale: {minReplicas: 2, maxReplicas: 5, targetCpuUtilization: 70}}\n"))
                .unwrap()
                .unwrap();
        let spec = hpa.spec.unwrap();
        assert_eq!((spec.scale_target_ref.kind.as_str(), spec.scale_target_ref.name.as_str()), ("Deployment", "hello"));
        assert_eq!((spec.min_replicas, spec.max_replicas), (Some(2), 5));
        let m = &spec.metrics.unwrap()[0];
        let resource = m.resource.as_ref().unwrap();
        assert_eq!((m.type_.as_str(), resource.name.as_str()), ("Resource", "cpu"));
        assert_eq!(resource.target.average_utilization, Some(70));
    }
}
