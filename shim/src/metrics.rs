//! Prometheus metrics of one HTTP server: requests in flight (what `targetConcurrency`
//! autoscales on), requests answered by status code, and requests refused at the cap.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::engine::Tier;

/// Where the metrics are served, on their own listener.
pub const METRICS_PATH: &str = "/metrics";
/// The exposition format `prometheus_client::encoding::text` writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: u16,
}

/// The counters of one [`crate::HttpServer`] and the registry that encodes them.
pub(crate) struct HttpMetrics {
    registry: Registry,
    in_flight: Gauge,
    requests: Family<CodeLabel, Counter>,
    rejected: Counter,
    optimized: Gauge,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        // The names are a contract: the operator's HPA scales on `spore_http_requests_in_flight`.
        let mut registry = Registry::with_prefix("spore_http");
        let in_flight = Gauge::default();
        let requests = Family::default();
        let rejected = Counter::default();
        registry.register("requests_in_flight", "Requests the guest is handling now", in_flight.clone());
        registry.register("requests", "Requests answered, by HTTP status code", requests.clone());
        registry.register("requests_rejected", "Requests refused with 503 at limits.maxConcurrency", rejected.clone());
        let optimized = Gauge::default();
        registry.register(
            "code_optimized",
            "1 when new requests run on optimized (Cranelift) code, 0 while on baseline (Winch) code",
            optimized.clone(),
        );
        Self { registry, in_flight, requests, rejected, optimized }
    }
}

impl HttpMetrics {
    /// Counts a request as in flight until the returned guard drops.
    pub fn start(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    pub fn answered(&self, status: u16) {
        self.requests.get_or_create(&CodeLabel { code: status }).inc();
    }

    pub fn serving(&self, tier: Tier) {
        self.optimized.set(i64::from(tier == Tier::Optimized));
    }

    pub fn rejected(&self) {
        self.rejected.inc();
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// One request in flight; dropping it (however the guest ends) counts it done.
pub(crate) struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_code_and_in_flight_returns_to_zero() {
        let metrics = HttpMetrics::default();
        let running = metrics.start();
        assert!(metrics.encode().contains("spore_http_requests_in_flight 1\n"));
        drop(running);
        metrics.answered(200);
        metrics.answered(200);
        metrics.answered(503);
        metrics.rejected();
        let text = metrics.encode();
        for line in [
            "spore_http_requests_in_flight 0\n",
            "spore_http_requests_total{code=\"200\"} 2\n",
            "spore_http_requests_total{code=\"503\"} 1\n",
            "spore_http_requests_rejected_total 1\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from:\n{text}");
        }
    }
}
