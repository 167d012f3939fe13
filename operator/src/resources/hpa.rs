//! The HorizontalPodAutoscaler (autoscaling/v2) of an autoscaled WasmApp.

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricIdentifier, MetricSpec,
    MetricTarget, PodsMetricSource, ResourceMetricSource,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use spore_crds::{Autoscale, WasmApp};

use super::{app_object_meta, name_of};
use crate::error::Result;

/// The per-pod metric `targetConcurrency` scales on: in-flight HTTP requests. Each pod's shim
/// exports it on the pod's `metrics` port (`spore.dev/metrics-port`, `GET /metrics`); a
/// custom-metrics adapter (e.g. Prometheus + prometheus-adapter) serves it to the HPA.
pub const CONCURRENCY_METRIC: &str = "spore_http_requests_in_flight";

/// The HPA for `app`, or `None` unless `scaling.autoscale` is set. It scales the app's
/// Deployment; the operator leaves that Deployment's replica count alone.
pub fn desired_hpa(app: &WasmApp) -> Result<Option<HorizontalPodAutoscaler>> {
    let Some(autoscale) = &app.spec.scaling.autoscale else { return Ok(None) };
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
    match (autoscale.target_cpu_utilization, autoscale.target_concurrency) {
        (Some(percent), _) => MetricSpec {
            type_: "Resource".into(),
            resource: Some(ResourceMetricSource {
                name: "cpu".into(),
                target: MetricTarget {
                    type_: "Utilization".into(),
                    average_utilization: Some(percent),
                    ..Default::default()
                },
            }),
            ..Default::default()
        },
        (None, concurrency) => MetricSpec {
            type_: "Pods".into(),
            pods: Some(PodsMetricSource {
                metric: MetricIdentifier { name: CONCURRENCY_METRIC.into(), selector: None },
                target: MetricTarget {
                    type_: "AverageValue".into(),
                    average_value: Some(Quantity(concurrency.unwrap_or(1).to_string())),
                    ..Default::default()
                },
            }),
            ..Default::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::app;

    #[test]
    fn only_autoscaled_apps_get_an_hpa() {
        assert!(desired_hpa(&app("")).unwrap().is_none());
        assert!(desired_hpa(&app("  scaling: {replicas: 3}\n")).unwrap().is_none());
    }

    #[test]
    fn the_hpa_scales_the_deployment_on_the_declared_target() {
        let cases = [
            ("{minReplicas: 2, maxReplicas: 5, targetCpuUtilization: 70}", 2, "Resource", "cpu", "70"),
            ("{maxReplicas: 10, targetConcurrency: 20}", 1, "Pods", CONCURRENCY_METRIC, "20"),
        ];
        for (autoscale, min, type_, metric, target) in cases {
            let hpa = desired_hpa(&app(&format!("  scaling: {{autoscale: {autoscale}}}\n"))).unwrap().unwrap();
            let spec = hpa.spec.unwrap();
            assert_eq!(
                (spec.scale_target_ref.kind.as_str(), spec.scale_target_ref.name.as_str()),
                ("Deployment", "hello")
            );
            assert_eq!(spec.min_replicas, Some(min), "{autoscale}");
            let m = &spec.metrics.unwrap()[0];
            assert_eq!(m.type_, type_);
            let (name, value) = match (&m.resource, &m.pods) {
                (Some(r), _) => (r.name.clone(), r.target.average_utilization.unwrap().to_string()),
                (None, Some(p)) => (p.metric.name.clone(), p.target.average_value.clone().unwrap().0),
                _ => panic!("no metric source"),
            };
            assert_eq!((name.as_str(), value.as_str()), (metric, target), "{autoscale}");
        }
    }
}
