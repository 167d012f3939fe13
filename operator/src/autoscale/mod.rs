//! Spore's concurrency autoscaler: no Prometheus, no metrics adapter. Every tick it reads the
//! in-flight requests of each running pod of every app with `targetConcurrency` (and the
//! requests the activator holds for it), keeps a window of samples per app, and sets the
//! app's replicas through its scale subresource when [`decide`] says so, with an Event and a
//! metric saying why. Runs in the leader only; after a restart it starts with empty windows,
//! which never scale down or to zero before a full window of data.

pub mod decide;
pub mod scrape;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Resource, ResourceExt};
use spore_crds::WasmApp;
use tracing::{debug, info, warn};

use self::decide::{Decision, Now, Policy, Reason, Sample, decide};
use crate::context::{AutoscalerSettings, Context};
use crate::resources::APP_LABEL;
use crate::resources::endpoint_slice::{activator_endpoints, pod_ready};
use crate::resources::pod::METRICS_PORT_ANNOTATION;

/// How long one metrics read may take: well under a tick.
const SCRAPE_TIMEOUT: Duration = Duration::from_millis(500);
/// Apps sampled at once.
const PARALLEL_APPS: usize = 64;
/// Scale down divides the count by at most this much per decision (Knative's default).
const MAX_SCALE_DOWN_RATE: f64 = 2.0;

/// What the autoscaler remembers of one app between ticks.
#[derive(Debug, Default)]
struct History {
    samples: VecDeque<Sample>,
    idle_since: Duration,
    /// The replica count at the last tick, to notice someone else (the activator) raising it.
    replicas: Option<u32>,
}

/// Runs the autoscaler until `shutdown` resolves. `apps` is the app controller's store.
pub async fn run(ctx: Arc<Context>, apps: Store<WasmApp>, shutdown: impl Future<Output = ()>) {
    let (pods, writer) = reflector::store();
    let pod_watch = reflector(
        writer,
        watcher(Api::<Pod>::all(ctx.client.clone()), watcher::Config::default().labels(APP_LABEL).any_semantic()),
    )
    .default_backoff()
    .touched_objects()
    .for_each(|event| {
        if let Err(e) = event {
            warn!(error = %e, "watching the apps' pods failed; retrying");
        }
        futures::future::ready(())
    });
    tokio::pin!(shutdown);
    tokio::pin!(pod_watch);
    // Until the first list an empty store would read as apps without pods, idle.
    tokio::select! {
        _ = &mut shutdown => return,
        _ = &mut pod_watch => return,
        _ = futures::future::join(pods.wait_until_ready(), apps.wait_until_ready()) => {}
    }
    let started = Instant::now();
    let mut histories: HashMap<ObjectRef<WasmApp>, History> = HashMap::new();
    let mut ticks = tokio::time::interval(ctx.settings.autoscaler.tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = &mut pod_watch => return,
            _ = ticks.tick() => {}
        }
        let now = started.elapsed();
        tick(&ctx, &apps, &pods, &mut histories, now).await;
    }
}

/// One round: sample every autoscaled app, decide, write what changed.
async fn tick(
    ctx: &Context,
    apps: &Store<WasmApp>,
    pods: &Store<Pod>,
    histories: &mut HashMap<ObjectRef<WasmApp>, History>,
    now: Duration,
) {
    let autoscaled: Vec<Arc<WasmApp>> = apps
        .state()
        .into_iter()
        .filter(|a| a.spec.scaling.concurrency_autoscale().is_some() && a.meta().deletion_timestamp.is_none())
        .collect();
    histories.retain(|key, _| autoscaled.iter().any(|a| &ObjectRef::from_obj(a.as_ref()) == key));
    if autoscaled.is_empty() {
        return;
    }
    let activators = activator_endpoints(ctx.activator.state().iter().map(|s| s.as_ref()));
    let held = held_requests(ctx, &activators).await;
    let mut pods_of: HashMap<(String, String), Vec<Arc<Pod>>> = HashMap::new();
    for pod in pods.state() {
        if let (Some(ns), Some(app)) = (pod.namespace(), pod.labels().get(APP_LABEL)) {
            pods_of.entry((ns, app.clone())).or_default().push(pod);
        }
    }
    let samples: Vec<(Arc<WasmApp>, Option<f64>)> = stream::iter(autoscaled)
        .map(|app| {
            let key = (app.namespace().unwrap_or_default(), app.name_any());
            let held = held.get(&key).copied().unwrap_or(0.0);
            let pods = pods_of.remove(&key).unwrap_or_default();
            async move {
                let in_flight = in_flight(&pods).await;
                (app, in_flight.map(|c| c + held))
            }
        })
        .buffer_unordered(PARALLEL_APPS)
        .collect()
        .await;
    let settings = &ctx.settings.autoscaler;
    for (app, concurrency) in samples {
        let history = histories
            .entry(ObjectRef::from_obj(app.as_ref()))
            .or_insert_with(|| History { idle_since: now, ..History::default() });
        let Some((policy, current)) = policy_of(&app, settings) else { continue };
        record(history, settings, Sample { at: now, concurrency }, current);
        let at =
            Now { at: now, replicas: current, idle_since: history.idle_since, activator_ready: !activators.is_empty() };
        let Some(decision) = decide(&policy, history.samples.make_contiguous(), at) else { continue };
        if scale(ctx, &app, current, decision).await {
            history.replicas = Some(decision.replicas);
        }
    }
}

/// Adds a sample and forgets the ones older than the stable window; a request, or someone
/// else raising the count, ends the idle time.
fn record(history: &mut History, settings: &AutoscalerSettings, sample: Sample, replicas: u32) {
    let raised_by_someone_else = history.replicas.is_some_and(|before| replicas > before);
    if sample.concurrency.is_some_and(|c| c > 0.0) || raised_by_someone_else {
        history.idle_since = sample.at;
    }
    history.replicas = Some(replicas);
    history.samples.push_back(sample);
    while history.samples.front().is_some_and(|s| s.at + settings.stable_window < sample.at) {
        history.samples.pop_front();
    }
}

/// The decision's inputs from the app's spec: its policy, and its replica count now.
fn policy_of(app: &WasmApp, settings: &AutoscalerSettings) -> Option<(Policy, u32)> {
    let autoscale = app.spec.scaling.concurrency_autoscale()?;
    let min = u32::try_from(autoscale.min_replicas).unwrap_or(0);
    let max = u32::try_from(autoscale.max_replicas).unwrap_or(1).max(min).max(1);
    let policy = Policy {
        target: f64::from(autoscale.target_concurrency?.max(1)),
        min,
        max,
        scale_to_zero_after: autoscale.scale_to_zero_after().unwrap_or(spore_crds::app::DEFAULT_SCALE_TO_ZERO_AFTER),
        stable_window: settings.stable_window,
        burst_window: settings.burst_window,
        max_scale_down_rate: MAX_SCALE_DOWN_RATE,
    };
    let current = app.spec.scaling.replicas.map_or(min.max(1), |r| u32::try_from(r).unwrap_or(0));
    Some((policy, current))
}

/// The summed in-flight requests of the app's running pods; `None` when a ready pod could
/// not be read (a pod still starting that does not answer yet counts as zero).
async fn in_flight(pods: &[Arc<Pod>]) -> Option<f64> {
    let reads = pods.iter().filter_map(|pod| Some((metrics_addr(pod)?, pod_ready(pod))));
    let results = futures::future::join_all(reads.map(|(addr, ready)| async move {
        match scrape::in_flight(addr, SCRAPE_TIMEOUT).await {
            Ok(value) => Some(value),
            Err(e) if ready => {
                debug!(error = %e, "reading a ready pod's concurrency failed");
                None
            }
            Err(_) => Some(0.0),
        }
    }))
    .await;
    results.into_iter().sum()
}

/// Where a running pod's shim serves its metrics.
fn metrics_addr(pod: &Pod) -> Option<SocketAddr> {
    if pod.meta().deletion_timestamp.is_some() {
        return None;
    }
    let status = pod.status.as_ref()?;
    if status.phase.as_deref() != Some("Running") {
        return None;
    }
    let ip: IpAddr = status.pod_ip.as_deref()?.parse().ok()?;
    let port: u16 = pod.annotations().get(METRICS_PORT_ANNOTATION)?.parse().ok()?;
    Some(SocketAddr::new(ip, port))
}

/// Requests every ready activator holds, per app. An activator that does not answer counts
/// as holding none: it cannot be forwarding requests either.
async fn held_requests(
    ctx: &Context,
    activators: &[crate::resources::endpoint_slice::ActivatorEndpoint],
) -> HashMap<(String, String), f64> {
    let port = ctx.settings.activator.metrics_port;
    let reads = activators.iter().filter_map(|a| Some(SocketAddr::new(a.ip.parse().ok()?, port)));
    let mut held = HashMap::new();
    for text in futures::future::join_all(reads.map(|addr| scrape::fetch(addr, SCRAPE_TIMEOUT))).await {
        match text {
            Ok(text) => {
                for (key, value) in scrape::held_by_app(&text) {
                    *held.entry(key).or_insert(0.0) += value;
                }
            }
            Err(e) => debug!(error = %e, "reading the activator's held requests failed"),
        }
    }
    held
}

/// Writes the decision through the scale subresource, then tells it as an Event and a metric.
async fn scale(ctx: &Context, app: &WasmApp, from: u32, decision: Decision) -> bool {
    let (Some(namespace), name) = (app.namespace(), app.name_any()) else { return false };
    let api = Api::<WasmApp>::namespaced(ctx.client.clone(), &namespace);
    let patch = serde_json::json!({"spec": {"replicas": decision.replicas}});
    if let Err(e) = api.patch_scale(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        warn!(app = %format!("{namespace}/{name}"), error = %e, "setting the replicas failed");
        return false;
    }
    let reason = event_reason(from, decision);
    let note = format!("{from} -> {} replicas: {}", decision.replicas, decision.reason);
    info!(app = %format!("{namespace}/{name}"), from, to = decision.replicas, why = %decision.reason, "{reason}");
    ctx.metrics.scaled(&namespace, &name, reason, decision.reason.kind());
    let event = Event {
        type_: EventType::Normal,
        reason: reason.into(),
        note: Some(note),
        action: "Scale".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &app.object_ref(&())).await {
        warn!(error = %e, "publishing a scaling event failed");
    }
    true
}

fn event_reason(from: u32, decision: Decision) -> &'static str {
    match (decision.replicas, decision.replicas > from) {
        (0, _) => "ScaledToZero",
        (_, true) => "ScaledUp",
        (_, false) => "ScaledDown",
    }
}

impl Reason {
    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Load { .. } => "load",
            Self::LessLoad { .. } => "less_load",
            Self::Idle { .. } => "idle",
            Self::Range { .. } => "range",
            Self::NoActivator => "no_activator",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_or_a_wake_by_someone_else_ends_the_idle_time() {
        let settings = AutoscalerSettings::default();
        let mut history = History::default();
        let at = |s: u64| Duration::from_secs(s);
        record(&mut history, &settings, Sample { at: at(1), concurrency: Some(0.0) }, 1);
        assert_eq!(history.idle_since, at(0));
        record(&mut history, &settings, Sample { at: at(2), concurrency: Some(3.0) }, 1);
        assert_eq!(history.idle_since, at(2), "a request");
        record(&mut history, &settings, Sample { at: at(3), concurrency: Some(0.0) }, 0);
        assert_eq!(history.idle_since, at(2), "scaled to zero: still idle since the last request");
        record(&mut history, &settings, Sample { at: at(9), concurrency: Some(0.0) }, 1);
        assert_eq!(history.idle_since, at(9), "the activator woke it");
        record(&mut history, &settings, Sample { at: at(100), concurrency: None }, 1);
        assert_eq!(history.samples.len(), 1, "samples older than the stable window are gone");
    }

    #[test]
    fn events_say_which_way_the_app_scaled() {
        let d = |replicas| Decision { replicas, reason: Reason::NoActivator };
        assert_eq!(event_reason(1, d(3)), "ScaledUp");
        assert_eq!(event_reason(3, d(2)), "ScaledDown");
        assert_eq!(event_reason(1, d(0)), "ScaledToZero");
    }
}
