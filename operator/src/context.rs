//! What every reconcile gets: the API client, the event recorder, metrics, settings, and
//! per-object failure counts for backoff. All I/O goes through here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, Store, store::Writer};

use crate::metrics::Metrics;
use crate::resources::daemonset::InstallerSettings;

/// Settings from the command line.
#[derive(Clone, Debug)]
pub struct Settings {
    /// RuntimeClass of WasmApps that name none.
    pub default_runtime_class: String,
    /// Where installer pods and uninstall Jobs run.
    pub installer: InstallerSettings,
    /// Where the activator is, for apps that scale to zero.
    pub activator: ActivatorSettings,
    /// How the concurrency autoscaler samples and decides.
    pub autoscaler: AutoscalerSettings,
}

/// The activator's Service (in the operator's namespace) and its ports.
#[derive(Clone, Debug)]
pub struct ActivatorSettings {
    pub namespace: String,
    pub service: String,
    /// Where it receives the apps' traffic.
    pub port: i32,
    /// Where it serves `/metrics` (held requests per app).
    pub metrics_port: u16,
}

#[derive(Clone, Debug)]
pub struct AutoscalerSettings {
    /// Time between two samples (and decisions).
    pub tick: Duration,
    /// Scale down follows the average concurrency over this long.
    pub stable_window: Duration,
    /// Scale up follows the average over this long.
    pub burst_window: Duration,
}

impl Default for AutoscalerSettings {
    fn default() -> Self {
        Self {
            tick: Duration::from_secs(1),
            stable_window: Duration::from_secs(60),
            burst_window: Duration::from_secs(2),
        }
    }
}

pub struct SliceWriters {
    pub activator: Writer<EndpointSlice>,
    pub routing: Writer<EndpointSlice>,
}

pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub settings: Settings,
    /// The activator Service's EndpointSlices, kept by a reflector the app controller runs.
    pub activator: Store<EndpointSlice>,
    /// The EndpointSlices the operator wrote for apps that scale to zero, likewise.
    pub routing: Store<EndpointSlice>,
    writers: Mutex<Option<SliceWriters>>,
    /// The announce address and when it was read.
    announce: Mutex<Option<(String, Instant)>>,
    /// Per object: failures in a row, and when the current delay began.
    failures: Failures,
}

const BACKOFF_BASE: Duration = Duration::from_secs(2);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// How long the activator's announce address is trusted before it is read again.
pub const ANNOUNCE_REREAD: Duration = Duration::from_secs(60);

impl Context {
    pub fn new(client: Client, reporter: Reporter, metrics: Arc<Metrics>, settings: Settings) -> Self {
        let (activator, activator_writer) = reflector::store();
        let (routing, routing_writer) = reflector::store();
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            settings,
            activator,
            routing,
            writers: Mutex::new(Some(SliceWriters { activator: activator_writer, routing: routing_writer })),
            announce: Mutex::default(),
            failures: Mutex::default(),
        }
    }

    /// `clusterIP:metricsPort` of the activator's Service, where the shims of scale-to-zero
    /// pods announce themselves; `None` while the Service does not exist. Read again after
    /// [`ANNOUNCE_REREAD`]: a Service created anew (a reinstall) has another ClusterIP.
    pub async fn announce_address(&self) -> Option<String> {
        if let Some((known, read)) = self.announce.lock().unwrap_or_else(|e| e.into_inner()).clone()
            && read.elapsed() < ANNOUNCE_REREAD
        {
            return Some(known);
        }
        let settings = &self.settings.activator;
        let api = kube::Api::<Service>::namespaced(self.client.clone(), &settings.namespace);
        let ip = match api.get_opt(&settings.service).await {
            Ok(service) => service?.spec?.cluster_ip.filter(|ip| !ip.is_empty() && ip != "None")?,
            Err(e) => {
                tracing::warn!(error = %e, service = %settings.service, "reading the activator's Service failed");
                return None;
            }
        };
        let address = format!("{ip}:{}", settings.metrics_port);
        *self.announce.lock().unwrap_or_else(|e| e.into_inner()) = Some((address.clone(), Instant::now()));
        Some(address)
    }

    /// The writers of [`Context::activator`] and [`Context::routing`], for the reflectors
    /// that fill them (once).
    pub fn take_slice_writers(&self) -> Option<SliceWriters> {
        self.writers.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// The delay before retrying `key` after another failure: 2s, 4s, 8s ... up to 5 min,
    /// so a broken object never hot-loops.
    ///
    /// Only a failure after the previous delay has run out doubles it: reconciles that watch
    /// events bring in sooner (an object's own status write, the activator's endpoints
    /// changing) would otherwise push a broken app to the 5-minute delay within seconds, and
    /// it would stay broken that long after the user fixed the cause.
    pub fn next_backoff(&self, key: &str) -> Duration {
        next_backoff_in(&self.failures, key)
    }

    /// Forgets `key`'s failures after a successful reconcile.
    pub fn succeeded(&self, key: &str) {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}

type Failures = Mutex<HashMap<String, (u32, Instant)>>;

fn next_backoff_in(failures: &Failures, key: &str) -> Duration {
    let mut failures = failures.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    let (n, since) = failures.entry(key.to_string()).or_insert((0, now));
    if *n == 0 || now.duration_since(*since) >= backoff(*n) {
        *n = n.saturating_add(1);
        *since = now;
    }
    backoff(*n)
}

fn backoff(failures: u32) -> Duration {
    BACKOFF_BASE.saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(16))).min(BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_sooner_than_the_delay_do_not_double_it() {
        let failures = Mutex::new(HashMap::new());
        let ctx_backoff = |key: &str| next_backoff_in(&failures, key);
        assert_eq!(ctx_backoff("a"), Duration::from_secs(2));
        assert_eq!(ctx_backoff("a"), Duration::from_secs(2), "an event-driven failure at once");
        assert_eq!(ctx_backoff("b"), Duration::from_secs(2), "per object");
        failures.lock().unwrap().insert("a".to_string(), (1, Instant::now() - Duration::from_secs(3)));
        assert_eq!(ctx_backoff("a"), Duration::from_secs(4), "the retry after the delay failed too");
    }

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        let secs: Vec<u64> = [1, 2, 3, 4, 8, 9, 100].into_iter().map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [2, 4, 8, 16, 256, 300, 300]);
    }
}
