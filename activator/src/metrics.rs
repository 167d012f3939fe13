//! Prometheus metrics of the activator, served on the admin listener's `/metrics`. The
//! names are a contract: the operator's autoscaler reads `spore_activator_requests_held`
//! from every activator pod. Only apps the index knows get label sets; unknown hosts are
//! one unlabelled counter, announcements one counter per outcome.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::index::AppKey;

/// The exposition format `prometheus_client::encoding::text` writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Cold-start buckets, seconds: 5 ms to 30 s.
const COLD_START_BUCKETS: [f64; 14] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AppLabels {
    namespace: String,
    app: String,
}

impl From<&AppKey> for AppLabels {
    fn from(key: &AppKey) -> Self {
        Self { namespace: key.namespace.clone(), app: key.name.clone() }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    namespace: String,
    app: String,
    outcome: &'static str,
}

/// How a request for a known app ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Forwarded at once to a backend.
    Forwarded,
    /// Forwarded after waiting for a backend.
    Held,
    /// 503 after `--hold-timeout`.
    Timeout,
    /// 503: `--max-held-per-app` requests were already waiting.
    Overflow,
    /// 502: the backend failed after the request was sent.
    UpstreamError,
}

const OUTCOMES: [Outcome; 5] =
    [Outcome::Forwarded, Outcome::Held, Outcome::Timeout, Outcome::Overflow, Outcome::UpstreamError];

/// How a pod's announcement ([`crate::announce`]) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnnounceOutcome {
    /// 204: its address was recorded and is being probed.
    Accepted,
    /// 404: no such pod with that uid.
    UnknownPod,
    /// 403: the token is not the app's uid.
    BadToken,
    /// 409: the pod has another address, or is terminating.
    Conflict,
    /// 400: not an announcement, or the wrong port.
    Invalid,
}

const ANNOUNCE_OUTCOMES: [AnnounceOutcome; 5] = [
    AnnounceOutcome::Accepted,
    AnnounceOutcome::UnknownPod,
    AnnounceOutcome::BadToken,
    AnnounceOutcome::Conflict,
    AnnounceOutcome::Invalid,
];

impl AnnounceOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::UnknownPod => "unknown_pod",
            Self::BadToken => "bad_token",
            Self::Conflict => "conflict",
            Self::Invalid => "invalid",
        }
    }
}

/// How relaying an accepted announcement to one peer replica ([`crate::relay`]) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelayOutcome {
    /// The peer recorded the address.
    Delivered,
    /// The peer refused it (its answer is final).
    Refused,
    /// No answer after every attempt.
    Failed,
}

const RELAY_OUTCOMES: [RelayOutcome; 3] = [RelayOutcome::Delivered, RelayOutcome::Refused, RelayOutcome::Failed];

impl RelayOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Refused => "refused",
            Self::Failed => "failed",
        }
    }
}

/// How one wake of an app at zero ([`crate::wake`]) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WakeOutcome {
    /// This activator scaled it from 0 to 1.
    Scaled,
    /// Its scale was no longer 0.
    AlreadyScaled,
    /// The API call failed (retried while requests wait).
    Failed,
}

const WAKE_OUTCOMES: [WakeOutcome; 3] = [WakeOutcome::Scaled, WakeOutcome::AlreadyScaled, WakeOutcome::Failed];

impl WakeOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scaled => "scaled",
            Self::AlreadyScaled => "already_scaled",
            Self::Failed => "failed",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeOnly {
    outcome: &'static str,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Forwarded => "forwarded",
            Self::Held => "held",
            Self::Timeout => "timeout",
            Self::Overflow => "overflow",
            Self::UpstreamError => "upstream_error",
        }
    }
}

/// The activator's metrics and the registry that encodes them.
pub struct Metrics {
    registry: Registry,
    held: Family<AppLabels, Gauge>,
    cold_start: Family<AppLabels, Histogram>,
    requests: Family<OutcomeLabels, Counter>,
    unknown_host: Counter,
    announcements: Family<OutcomeOnly, Counter>,
    relays: Family<OutcomeOnly, Counter>,
    wakes: Family<OutcomeOnly, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("spore_activator");
        let held = Family::default();
        let cold_start =
            Family::<AppLabels, Histogram>::new_with_constructor(|| Histogram::new(COLD_START_BUCKETS.iter().copied()));
        let requests = Family::default();
        let unknown_host = Counter::default();
        registry.register("requests_held", "Requests waiting for a backend of the app now", held.clone());
        registry.register(
            "cold_start_seconds",
            "Time from a held request's arrival to the response head from a pod",
            cold_start.clone(),
        );
        registry.register("requests", "Requests for the app, by outcome", requests.clone());
        registry.register(
            "unknown_host",
            "Requests whose Host names no app (404, or 400 when missing or ambiguous)",
            unknown_host.clone(),
        );
        let announcements = by_outcome(
            &mut registry,
            "announcements",
            "Pods' announcements that they serve, by outcome",
            ANNOUNCE_OUTCOMES.map(AnnounceOutcome::as_str),
        );
        let relays = by_outcome(
            &mut registry,
            "announcements_relayed",
            "Accepted announcements passed on to a peer replica, by outcome",
            RELAY_OUTCOMES.map(RelayOutcome::as_str),
        );
        let wakes = by_outcome(
            &mut registry,
            "wakes",
            "Scale patches of apps at zero, by outcome",
            WAKE_OUTCOMES.map(WakeOutcome::as_str),
        );
        Self { registry, held, cold_start, requests, unknown_host, announcements, relays, wakes }
    }
}

/// A counter family labelled by outcome, registered as `name` with every outcome's series
/// from the start: a rate over a series that appears late misses its first count.
fn by_outcome<const N: usize>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    outcomes: [&'static str; N],
) -> Family<OutcomeOnly, Counter> {
    let family = Family::<OutcomeOnly, Counter>::default();
    for outcome in outcomes {
        let _ = family.get_or_create(&OutcomeOnly { outcome });
    }
    registry.register(name, help, family.clone());
    family
}

impl Metrics {
    /// The held-requests gauge of `app` (a handle: changes show in the family).
    pub fn held(&self, app: &AppKey) -> Gauge {
        self.held.get_or_create(&app.into()).clone()
    }

    pub fn cold_start(&self, app: &AppKey, took: Duration) {
        self.cold_start.get_or_create(&app.into()).observe(took.as_secs_f64());
    }

    pub fn request(&self, app: &AppKey, outcome: Outcome) {
        let labels =
            OutcomeLabels { namespace: app.namespace.clone(), app: app.name.clone(), outcome: outcome.as_str() };
        self.requests.get_or_create(&labels).inc();
    }

    /// Drops every label set of `app` (deleted: its series end).
    pub fn forget(&self, app: &AppKey) {
        let labels = AppLabels::from(app);
        self.held.remove(&labels);
        self.cold_start.remove(&labels);
        for outcome in OUTCOMES {
            let labels =
                OutcomeLabels { namespace: app.namespace.clone(), app: app.name.clone(), outcome: outcome.as_str() };
            self.requests.remove(&labels);
        }
    }

    pub fn unknown_host(&self) {
        self.unknown_host.inc();
    }

    pub fn announcement(&self, outcome: AnnounceOutcome) {
        self.announcements.get_or_create(&OutcomeOnly { outcome: outcome.as_str() }).inc();
    }

    pub fn relay(&self, outcome: RelayOutcome) {
        self.relays.get_or_create(&OutcomeOnly { outcome: outcome.as_str() }).inc();
    }

    pub fn wake(&self, outcome: WakeOutcome) {
        self.wakes.get_or_create(&OutcomeOnly { outcome: outcome.as_str() }).inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contracted_names_are_exposed() {
        let metrics = Metrics::default();
        let app = AppKey::new("apps", "hello");
        let held = metrics.held(&app);
        held.inc();
        held.inc();
        held.dec();
        metrics.cold_start(&app, Duration::from_millis(40));
        metrics.request(&app, Outcome::Held);
        metrics.request(&app, Outcome::UpstreamError);
        metrics.unknown_host();
        metrics.announcement(AnnounceOutcome::Accepted);
        metrics.relay(RelayOutcome::Delivered);
        metrics.wake(WakeOutcome::Scaled);
        let text = metrics.encode();
        let other = AppKey::new("apps", "other");
        metrics.request(&other, Outcome::Forwarded);
        assert!(metrics.encode().contains(r#"app="other""#));
        metrics.forget(&other);
        assert!(!metrics.encode().contains(r#"app="other""#), "a deleted app's series end");
        for line in [
            r#"spore_activator_requests_held{namespace="apps",app="hello"} 1"#,
            r#"spore_activator_cold_start_seconds_count{namespace="apps",app="hello"} 1"#,
            r#"spore_activator_cold_start_seconds_bucket{le="0.05",namespace="apps",app="hello"} 1"#,
            r#"spore_activator_cold_start_seconds_bucket{le="0.025",namespace="apps",app="hello"} 0"#,
            r#"spore_activator_cold_start_seconds_bucket{le="30.0",namespace="apps",app="hello"} 1"#,
            r#"spore_activator_requests_total{namespace="apps",app="hello",outcome="held"} 1"#,
            r#"spore_activator_requests_total{namespace="apps",app="hello",outcome="upstream_error"} 1"#,
            "spore_activator_unknown_host_total 1",
            r#"spore_activator_announcements_total{outcome="accepted"} 1"#,
            r#"spore_activator_announcements_total{outcome="bad_token"} 0"#,
            r#"spore_activator_announcements_relayed_total{outcome="delivered"} 1"#,
            r#"spore_activator_announcements_relayed_total{outcome="failed"} 0"#,
            r#"spore_activator_wakes_total{outcome="scaled"} 1"#,
            r#"spore_activator_wakes_total{outcome="already_scaled"} 0"#,
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }
}
