//! Prometheus metrics of the operator, served on `/metrics`: reconciles, their duration,
//! errors by reason, and how many objects each controller manages.

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabel {
    controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    controller: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScaleLabels {
    namespace: String,
    app: String,
    /// ScaledUp, ScaledDown or ScaledToZero.
    direction: &'static str,
    /// load, less_load, idle, range or no_activator.
    reason: &'static str,
}

/// The operator's metrics and the registry that encodes them.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ControllerLabel, Counter>,
    errors: Family<ErrorLabels, Counter>,
    duration: Family<ControllerLabel, Histogram>,
    managed: Family<ControllerLabel, Gauge>,
    scalings: Family<ScaleLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("spore_operator");
        let reconciles = Family::default();
        let errors = Family::default();
        let duration = Family::<ControllerLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 12))
        });
        let managed = Family::default();
        registry.register("reconciles", "Reconciles run", reconciles.clone());
        registry.register("reconcile_errors", "Reconciles that failed, by reason", errors.clone());
        registry.register("reconcile_duration_seconds", "Time a reconcile takes", duration.clone());
        registry.register("managed_objects", "Custom resources each controller manages", managed.clone());
        let scalings = Family::default();
        registry.register(
            "autoscaler_scalings",
            "Replica changes the autoscaler made, by app, direction and reason",
            scalings.clone(),
        );
        Self { registry, reconciles, errors, duration, managed, scalings }
    }
}

impl Metrics {
    /// Counts a reconcile of `controller` and times it until the returned guard drops.
    pub fn reconcile(self: &Arc<Self>, controller: &'static str) -> ReconcileTimer {
        self.reconciles.get_or_create(&ControllerLabel { controller }).inc();
        ReconcileTimer { metrics: self.clone(), controller, start: Instant::now() }
    }

    pub fn error(&self, controller: &'static str, reason: &'static str) {
        self.errors.get_or_create(&ErrorLabels { controller, reason }).inc();
    }

    pub fn scaled(&self, namespace: &str, app: &str, direction: &'static str, reason: &'static str) {
        let labels = ScaleLabels { namespace: namespace.into(), app: app.into(), direction, reason };
        self.scalings.get_or_create(&labels).inc();
    }

    pub fn set_managed(&self, controller: &'static str, count: usize) {
        self.managed.get_or_create(&ControllerLabel { controller }).set(count as i64);
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Records a reconcile's duration when dropped, however the reconcile ends.
pub struct ReconcileTimer {
    metrics: Arc<Metrics>,
    controller: &'static str,
    start: Instant,
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        let label = ControllerLabel { controller: self.controller };
        self.metrics.duration.get_or_create(&label).observe(self.start.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconciles_errors_and_durations_are_exposed() {
        let metrics = Arc::new(Metrics::default());
        drop(metrics.reconcile("wasmapp"));
        metrics.error("wasmapp", "ApiError");
        metrics.set_managed("wasmapp", 3);
        metrics.scaled("apps", "hello", "ScaledUp", "load");
        let text = metrics.encode();
        for line in [
            r#"spore_operator_reconciles_total{controller="wasmapp"} 1"#,
            r#"spore_operator_reconcile_errors_total{controller="wasmapp",reason="ApiError"} 1"#,
            r#"spore_operator_reconcile_duration_seconds_count{controller="wasmapp"} 1"#,
            r#"spore_operator_managed_objects{controller="wasmapp"} 3"#,
            r#"spore_operator_autoscaler_scalings_total{namespace="apps",app="hello",direction="ScaledUp",reason="load"} 1"#,
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }
}
