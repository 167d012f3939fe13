//! One app's live state: its pods and which of them are backends (Ready, or answered a
//! probe), the requests held for it, whether a wake is under way, and the channel held
//! requests wait on. Every method is synchronous and quick (one short lock); the proxy and
//! the probes do the waiting.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tracing::warn;

use crate::announce::{self, Announcement, Known, Refusal};
use crate::index::{AppInfo, AppKey, PodInfo, PortInfo};

/// The live state of one app.
pub struct AppState {
    key: AppKey,
    view: Mutex<View>,
    /// Bumped whenever the app gains a backend; held requests wait on it.
    backends: watch::Sender<u64>,
    /// Wakes sleeping probes when a request starts waiting.
    probe_now: Notify,
}

#[derive(Default)]
struct View {
    info: Option<AppInfo>,
    /// The Service's name and ports.
    service: Option<(String, Vec<PortInfo>)>,
    pods: BTreeMap<String, PodEntry>,
    held: usize,
    /// A wake was sent and the app has not been seen above zero since.
    woken: bool,
    /// Where the next tie between equally loaded backends starts.
    rotation: usize,
}

/// A pod and what the activator learned about it.
struct PodEntry {
    pod: PodInfo,
    /// The address the pod announced while its status had none yet.
    announced: Option<IpAddr>,
    /// The pod's Ready condition was True at some point.
    was_ready: bool,
    /// A probe reached it.
    probed_ok: bool,
    /// A connection to it failed since; it must answer a probe again.
    bad: bool,
    /// A probe loop runs for it.
    probing: bool,
    in_flight: Arc<AtomicUsize>,
}

impl PodEntry {
    fn new(pod: PodInfo) -> Self {
        Self {
            was_ready: pod.ready == Some(true),
            pod,
            announced: None,
            probed_ok: false,
            bad: false,
            probing: false,
            in_flight: Arc::default(),
        }
    }

    /// Where the pod is: its status IP, else the address it announced.
    fn ip(&self) -> Option<IpAddr> {
        self.pod.ip.or(self.announced)
    }

    /// Could serve at all: has an IP, is not going away, and did not lose readiness.
    fn eligible(&self) -> bool {
        self.ip().is_some() && !self.pod.terminating && !(self.was_ready && self.pod.ready != Some(true))
    }

    fn is_backend(&self) -> bool {
        self.eligible() && !self.bad && (self.pod.ready == Some(true) || self.probed_ok)
    }

    fn wants_probe(&self) -> bool {
        self.eligible() && !self.is_backend()
    }
}

/// A backend chosen for one request; counts as in flight to it until dropped.
pub struct Backend {
    pub pod: String,
    pub uid: String,
    pub ip: IpAddr,
    pub load: InFlight,
}

/// One request in flight to a backend.
pub struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The request would exceed `--max-held-per-app`.
#[derive(Debug, PartialEq, Eq)]
pub struct Overflow;

/// What a probe loop should try next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeTarget {
    pub uid: String,
    pub addr: SocketAddr,
    /// `spec.healthChecks.readiness.path`, else a TCP connect is enough.
    pub http_path: Option<String>,
    /// Requests are waiting: probe at full rate.
    pub urgent: bool,
}

/// The index of the backend with the fewest requests in flight; ties go to the first one
/// at or after `start` (wrapping), so equal backends take turns.
pub fn fewest_in_flight(loads: &[usize], start: usize) -> Option<usize> {
    let n = loads.len();
    (0..n).map(|i| (start + i) % n).min_by_key(|&i| loads[i])
}

impl AppState {
    pub fn new(key: AppKey) -> Self {
        Self { key, view: Mutex::default(), backends: watch::Sender::new(0), probe_now: Notify::new() }
    }

    pub fn key(&self) -> &AppKey {
        &self.key
    }

    fn view(&self) -> MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(PoisonError::into_inner)
    }

    // --- updates from the index ---

    pub(crate) fn set_info(&self, info: Option<AppInfo>) {
        let mut view = self.view();
        if !info.as_ref().is_some_and(AppInfo::scaled_to_zero) {
            view.woken = false;
        }
        view.info = info;
    }

    pub(crate) fn has_info(&self) -> bool {
        self.view().info.is_some()
    }

    pub(crate) fn set_service(&self, service: Option<(String, Vec<PortInfo>)>) {
        self.view().service = service;
    }

    /// Forgets the Service if it is still `name`.
    pub(crate) fn clear_service(&self, name: &str) {
        let mut view = self.view();
        if view.service.as_ref().is_some_and(|(n, _)| n == name) {
            view.service = None;
        }
    }

    /// Records the pod's latest state. The same pod at the same address (a status IP that
    /// is still none, or equal to what it announced) keeps what the activator learned; a new
    /// pod or address starts afresh.
    pub(crate) fn upsert_pod(&self, pod: PodInfo) {
        let mut view = self.view();
        match view.pods.get_mut(&pod.name) {
            Some(entry) if entry.pod.uid == pod.uid && entry.ip() == pod.ip.or(entry.announced) => {
                entry.was_ready |= pod.ready == Some(true);
                entry.pod = pod;
            }
            Some(entry) => {
                if let (Some(announced), Some(status)) = (entry.announced, pod.ip)
                    && entry.pod.uid == pod.uid
                {
                    warn!(app = %self.key, pod = pod.name, %announced, %status, "the pod's status IP is not the address it announced; using the status IP");
                }
                *entry = PodEntry::new(pod);
            }
            None => {
                view.pods.insert(pod.name.clone(), PodEntry::new(pod));
            }
        }
    }

    /// Checks `announcement` from `peer` ([`announce::check`]) and, if the pod's status has
    /// no IP yet, records the address; the caller probes it. `Ok` with the address.
    pub(crate) fn announce(&self, announcement: &Announcement, peer: IpAddr) -> Result<IpAddr, Refusal> {
        let mut guard = self.view();
        let view = &mut *guard;
        let target_ports: Vec<u16> =
            view.service.as_ref().map(|(_, ports)| ports.iter().map(|p| p.target_port).collect()).unwrap_or_default();
        let entry = view.pods.get_mut(&announcement.pod);
        let known = Known {
            pod: entry.as_ref().map(|e| &e.pod),
            address: entry.as_ref().and_then(|e| e.ip()),
            app: view.info.as_ref(),
            target_ports: &target_ports,
        };
        let ip = announce::check(announcement, peer, &known)?;
        if let Some(entry) = entry
            && entry.pod.ip.is_none()
        {
            entry.announced = Some(ip);
        }
        Ok(ip)
    }

    pub(crate) fn remove_pod(&self, name: &str) {
        self.view().pods.remove(name);
    }

    /// Nothing refers to the app: no WasmApp, Service, pod or held request.
    pub(crate) fn is_unused(&self) -> bool {
        let view = self.view();
        view.info.is_none() && view.service.is_none() && view.pods.is_empty() && view.held == 0
    }

    // --- backends ---

    pub fn has_backend(&self) -> bool {
        self.view().pods.values().any(PodEntry::is_backend)
    }

    /// Tells held requests to look again if there is a backend now.
    pub(crate) fn notify_if_backend(&self) {
        if self.has_backend() {
            self.backends.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// A receiver that sees every later change of the backends.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.backends.subscribe()
    }

    /// The backend with the fewest requests in flight, counted as one more.
    pub(crate) fn pick(&self) -> Option<Backend> {
        let mut view = self.view();
        let backends: Vec<&PodEntry> = view.pods.values().filter(|p| p.is_backend()).collect();
        let loads: Vec<usize> = backends.iter().map(|p| p.in_flight.load(Ordering::Relaxed)).collect();
        let chosen = backends[fewest_in_flight(&loads, view.rotation)?];
        let ip = chosen.ip()?;
        chosen.in_flight.fetch_add(1, Ordering::Relaxed);
        let backend = Backend {
            pod: chosen.pod.name.clone(),
            uid: chosen.pod.uid.clone(),
            ip,
            load: InFlight(chosen.in_flight.clone()),
        };
        view.rotation = view.rotation.wrapping_add(1);
        Some(backend)
    }

    /// A connection to `pod` failed: it is no backend until a probe reaches it again.
    pub(crate) fn connect_failed(&self, pod: &str, uid: &str) {
        if let Some(entry) = self.view().pods.get_mut(pod).filter(|e| e.pod.uid == uid) {
            entry.bad = true;
            entry.probed_ok = false;
        }
    }

    // --- holding and waking ---

    /// Counts one more held request. `Ok(true)`: the caller must wake the app (it is scaled
    /// to zero and no wake is under way).
    pub(crate) fn begin_hold(&self, max: usize) -> Result<bool, Overflow> {
        let mut view = self.view();
        if view.held >= max {
            return Err(Overflow);
        }
        view.held += 1;
        let wake = !view.woken && view.info.as_ref().is_some_and(AppInfo::scaled_to_zero);
        view.woken |= wake;
        Ok(wake)
    }

    pub(crate) fn end_hold(&self) {
        let mut view = self.view();
        view.held = view.held.saturating_sub(1);
        if view.held == 0 {
            // The next request starts a new wake if the app is (still, or again) at zero.
            view.woken = false;
        }
    }

    pub fn held(&self) -> usize {
        self.view().held
    }

    /// Whether a failed wake is worth retrying: requests wait and the app is at zero.
    pub(crate) fn still_needs_wake(&self) -> bool {
        let view = self.view();
        view.held > 0
            && view.info.as_ref().is_some_and(AppInfo::scaled_to_zero)
            && !view.pods.values().any(|p| p.is_backend())
    }

    // --- probing ---

    pub(crate) fn probe_now(&self) -> &Notify {
        &self.probe_now
    }

    /// Pods that need a probe loop and have none; marks them as probed. Empty unless the
    /// app has requests waiting or no backend.
    pub(crate) fn claim_probes(&self) -> Vec<String> {
        let mut view = self.view();
        if !needs_probing(&view) || view.service.is_none() {
            return Vec::new();
        }
        let mut claimed = Vec::new();
        for entry in view.pods.values_mut().filter(|e| e.wants_probe() && !e.probing) {
            entry.probing = true;
            claimed.push(entry.pod.name.clone());
        }
        claimed
    }

    /// What to probe next for `pod`, or `None` (and its loop ends) when it needs no probe:
    /// gone, a backend, not eligible, or the app is warm and has nobody waiting.
    pub(crate) fn probe_target(&self, pod: &str) -> Option<ProbeTarget> {
        let mut view = self.view();
        let target = probe_target(&view, pod);
        if target.is_none()
            && let Some(entry) = view.pods.get_mut(pod)
        {
            entry.probing = false;
        }
        target
    }

    /// A probe of `pod` (with `uid`) succeeded: it is a backend; held requests go to it.
    pub(crate) fn probe_succeeded(&self, pod: &str, uid: &str) {
        {
            let mut view = self.view();
            let Some(entry) = view.pods.get_mut(pod) else { return };
            entry.probing = false;
            if entry.pod.uid != uid {
                return;
            }
            entry.probed_ok = true;
            entry.bad = false;
        }
        self.notify_if_backend();
    }

    /// The body of a held request's 503 after `waited`.
    pub(crate) fn timeout_message(&self, waited: Duration) -> String {
        let view = self.view();
        let pods: Vec<&PodInfo> = view.pods.values().map(|e| &e.pod).collect();
        let port = view.service.as_ref().and_then(|(_, ports)| ports.first()).map(|p| p.target_port);
        timeout_message(&self.key, waited, view.info.as_ref(), &pods, port)
    }
}

fn needs_probing(view: &View) -> bool {
    view.held > 0 || !view.pods.values().any(PodEntry::is_backend)
}

fn probe_target(view: &View, pod: &str) -> Option<ProbeTarget> {
    let entry = view.pods.get(pod).filter(|e| e.wants_probe())?;
    if !needs_probing(view) {
        return None;
    }
    let target_port = view.service.as_ref()?.1.first()?.target_port;
    let check = view.info.as_ref().and_then(|i| i.readiness.as_ref());
    let port = check.and_then(|c| c.port).and_then(|p| u16::try_from(p).ok()).unwrap_or(target_port);
    Some(ProbeTarget {
        uid: entry.pod.uid.clone(),
        addr: SocketAddr::new(entry.ip()?, port),
        http_path: check.map(|c| c.path.clone()),
        urgent: view.held > 0,
    })
}

/// `<ns>/<app> did not become ready within 30s: <why>`: why from the WasmApp's Degraded
/// condition if True, else its Ready condition if not True, else from the pods.
pub fn timeout_message(
    key: &AppKey,
    waited: Duration,
    info: Option<&AppInfo>,
    pods: &[&PodInfo],
    port: Option<u16>,
) -> String {
    let condition = info.and_then(|i| {
        i.degraded
            .as_ref()
            .filter(|c| c.status)
            .or_else(|| i.ready.as_ref().filter(|c| !c.status && !c.reason.is_empty()))
    });
    let why = match condition {
        Some(c) if c.message.is_empty() => c.reason.clone(),
        Some(c) => format!("{}: {}", c.reason, one_line(&c.message)),
        None => no_ready_pod(info, pods, port),
    };
    format!("{key} did not become ready within {}: {why}\n", human(waited))
}

fn no_ready_pod(info: Option<&AppInfo>, pods: &[&PodInfo], port: Option<u16>) -> String {
    let live: Vec<&&PodInfo> = pods.iter().filter(|p| !p.terminating).collect();
    if live.is_empty() {
        let scaled = if info.is_some_and(AppInfo::scaled_to_zero) { " (spec.scaling.replicas is 0)" } else { "" };
        return format!("no pod became ready: the app has no running pods{scaled}");
    }
    if let Some(pod) = live.iter().find(|p| p.waiting.is_some()) {
        return format!("no pod became ready: pod {}: {}", pod.name, one_line(pod.waiting.as_deref().unwrap_or("")));
    }
    let port = port.map_or_else(String::new, |p| format!(" on port {p}"));
    match live.len() {
        1 => format!("no pod became ready: pod {} did not answer{port}", live[0].name),
        n => format!("no pod became ready: {n} pods did not answer{port}"),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `30s`, `1.5s`, `250ms`.
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        ms if ms >= 1000 && ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms if ms >= 1000 => format!("{}s", d.as_secs_f64()),
        ms => format!("{ms}ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{app, condition, pod};
    use crate::index::PortInfo;

    fn state(pods: &[PodInfo]) -> AppState {
        let state = AppState::new(AppKey::new("apps", "hello"));
        state.set_info(Some(app("apps", "hello").scaled_to(0)));
        state.set_service(Some(("hello".into(), vec![PortInfo { port: 80, target_port: 8080 }])));
        for p in pods {
            state.upsert_pod(p.clone());
        }
        state
    }

    #[test]
    fn the_least_loaded_backend_wins_and_ties_take_turns() {
        for (loads, start, want) in [
            (&[][..], 0, None),
            (&[0], 5, Some(0)),
            (&[3, 1, 2], 0, Some(1)),
            (&[1, 1, 1], 0, Some(0)),
            (&[1, 1, 1], 1, Some(1)),
            (&[1, 1, 1], 4, Some(1)),
            (&[2, 0, 0], 0, Some(1)),
            (&[0, 2, 0], 2, Some(2)),
        ] {
            assert_eq!(fewest_in_flight(loads, start), want, "{loads:?} from {start}");
        }
    }

    #[test]
    fn picks_spread_over_backends_by_requests_in_flight() {
        let state = state(&[pod("apps", "hello", "a", "10.0.0.1", true), pod("apps", "hello", "b", "10.0.0.2", true)]);
        let first = state.pick().unwrap();
        let second = state.pick().unwrap();
        assert_ne!(first.pod, second.pod, "the second request goes to the idle pod");
        drop(second);
        assert_ne!(state.pick().unwrap().pod, first.pod, "the first pod is still busy");
    }

    #[test]
    fn which_pods_are_backends() {
        let mut unready = pod("apps", "hello", "unready", "10.0.0.1", false);
        unready.ready = None;
        let mut deleting = pod("apps", "hello", "deleting", "10.0.0.2", true);
        deleting.terminating = true;
        let mut no_ip = pod("apps", "hello", "no-ip", "10.0.0.3", true);
        no_ip.ip = None;
        let state = state(&[unready.clone(), deleting, no_ip]);
        assert!(!state.has_backend());
        assert_eq!(state.claim_probes(), ["unready"], "only the unready pod with an IP is probed");
        assert!(state.claim_probes().is_empty(), "one probe loop per pod");
        state.probe_succeeded("unready", &unready.uid);
        assert!(state.has_backend(), "a probed pod serves before it is Ready");
        assert_eq!(state.pick().unwrap().pod, "unready");

        // Ready, then not Ready: no longer a backend, and not probed either.
        unready.ready = Some(true);
        state.upsert_pod(unready.clone());
        unready.ready = Some(false);
        state.upsert_pod(unready.clone());
        assert!(!state.has_backend());
        assert!(state.claim_probes().is_empty());
        // A new pod under the same name starts afresh.
        unready.uid = "other".into();
        state.upsert_pod(unready);
        assert_eq!(state.claim_probes(), ["unready"]);
    }

    #[test]
    fn a_failed_connect_makes_a_ready_pod_answer_a_probe_again() {
        let ready = pod("apps", "hello", "a", "10.0.0.1", true);
        let state = state(std::slice::from_ref(&ready));
        assert!(state.has_backend());
        state.connect_failed("a", "wrong-uid");
        assert!(state.has_backend(), "a stale failure of an older pod is ignored");
        state.connect_failed("a", &ready.uid);
        assert!(!state.has_backend());
        assert_eq!(state.claim_probes(), ["a"]);
        let target = state.probe_target("a").unwrap();
        assert_eq!(target.addr, "10.0.0.1:8080".parse().unwrap());
        assert_eq!((target.http_path, target.urgent), (None, false));
        state.probe_succeeded("a", &ready.uid);
        assert!(state.has_backend());
        assert_eq!(state.probe_target("a"), None, "a backend needs no probe");
    }

    #[test]
    fn an_announced_address_serves_until_the_status_says_otherwise() {
        use crate::announce::Announcement;
        let mut unseen = pod("apps", "hello", "hello-1", "10.0.0.1", false);
        unseen.ip = None;
        let state = state(std::slice::from_ref(&unseen));
        let mut info = app("apps", "hello").scaled_to(0);
        info.uid = "app-uid".into();
        state.set_info(Some(info));
        assert!(state.claim_probes().is_empty(), "no address, nothing to probe");
        let announcement = Announcement {
            namespace: "apps".into(),
            pod: "hello-1".into(),
            uid: unseen.uid.clone(),
            port: 8080,
            token: "app-uid".into(),
        };
        let peer: IpAddr = "10.0.0.7".parse().unwrap();
        assert_eq!(
            state.announce(&Announcement { token: "nope".into(), ..announcement.clone() }, peer),
            Err(Refusal::BadToken)
        );
        assert!(state.claim_probes().is_empty(), "a refused announcement records nothing");
        assert_eq!(state.announce(&announcement, peer), Ok(peer));
        assert_eq!(state.claim_probes(), ["hello-1"]);
        assert_eq!(state.probe_target("hello-1").unwrap().addr, "10.0.0.7:8080".parse().unwrap());
        state.probe_succeeded("hello-1", &unseen.uid);
        assert_eq!(state.pick().unwrap().ip, peer);
        let other: IpAddr = "10.0.0.8".parse().unwrap();
        assert_eq!(state.announce(&announcement, other), Err(Refusal::Conflict { known: peer, peer: other }));

        // The status agrees: nothing changes.
        let mut seen = unseen.clone();
        seen.ip = Some(peer);
        state.upsert_pod(seen.clone());
        assert!(state.has_backend(), "still the probed backend");
        // The status says otherwise: the announced address goes, the status IP is probed.
        let mut moved = unseen;
        moved.ip = Some("10.0.0.9".parse().unwrap());
        state.upsert_pod(moved);
        assert!(!state.has_backend());
        assert_eq!(state.claim_probes(), ["hello-1"]);
        assert_eq!(state.probe_target("hello-1").unwrap().addr, "10.0.0.9:8080".parse().unwrap());
    }

    #[test]
    fn probes_use_the_readiness_check_and_stop_when_the_app_is_warm() {
        let state =
            state(&[pod("apps", "hello", "a", "10.0.0.1", false), pod("apps", "hello", "b", "10.0.0.2", false)]);
        let mut info = app("apps", "hello").scaled_to(0);
        info.readiness =
            Some(spore_crds::HttpCheck { path: "/healthz".into(), port: Some(9000), ..Default::default() });
        state.set_info(Some(info));
        state.begin_hold(10).unwrap();
        let target = state.probe_target("a").unwrap();
        assert_eq!(target.addr, "10.0.0.1:9000".parse().unwrap());
        assert_eq!((target.http_path.as_deref(), target.urgent), (Some("/healthz"), true));
        state.probe_succeeded("a", &target.uid);
        assert!(state.probe_target("b").is_some(), "requests still wait (until they are forwarded)");
        state.end_hold();
        assert_eq!(state.probe_target("b"), None, "warm and nobody waiting: stop");
        state.remove_pod("a");
        assert!(state.probe_target("b").is_some(), "no backend any more");
        state.remove_pod("b");
        assert_eq!(state.probe_target("b"), None, "gone");
    }

    #[test]
    fn the_hold_queue_is_bounded_and_wakes_once() {
        let state = state(&[]);
        assert_eq!(state.begin_hold(3), Ok(true), "the first held request wakes the app");
        assert_eq!(state.begin_hold(3), Ok(false));
        assert_eq!(state.begin_hold(3), Ok(false));
        assert_eq!(state.begin_hold(3), Err(Overflow));
        assert_eq!(state.held(), 3);
        assert!(state.still_needs_wake());
        state.end_hold();
        assert_eq!(state.begin_hold(3), Ok(false), "still the same wake");
        for _ in 0..3 {
            state.end_hold();
        }
        assert_eq!(state.held(), 0);
        assert_eq!(state.begin_hold(3), Ok(true), "a new wave of requests wakes it again");
        state.set_info(Some(app("apps", "hello").scaled_to(1)));
        state.set_info(Some(app("apps", "hello").scaled_to(0)));
        assert_eq!(state.begin_hold(3), Ok(true), "scaled back to zero meanwhile");
        state.set_info(Some(app("apps", "hello")));
        assert_eq!(state.begin_hold(3), Ok(false), "not at zero: nothing to wake");
        assert!(!state.still_needs_wake());
    }

    #[test]
    fn the_timeout_message_says_why() {
        let key = AppKey::new("apps", "hello");
        let mut degraded = app("apps", "hello");
        degraded.degraded = Some(condition(true, "ModuleInvalid", "not a Wasm module:\n  bad magic"));
        degraded.ready = Some(condition(false, "Degraded", "see Degraded"));
        let mut unready = app("apps", "hello");
        unready.degraded = Some(condition(false, "AsExpected", ""));
        unready.ready = Some(condition(false, "ImagePullFailed", "pull failed: 404"));
        let mut ready_only = app("apps", "hello");
        ready_only.ready = Some(condition(true, "Available", "all replicas available"));
        let mut crashing = pod("apps", "hello", "hello-1", "10.0.0.1", false);
        crashing.waiting = Some("CrashLoopBackOff: back-off 10s".into());
        let silent = pod("apps", "hello", "hello-2", "10.0.0.2", false);
        let mut leaving = pod("apps", "hello", "hello-3", "10.0.0.3", false);
        leaving.terminating = true;
        let zero = app("apps", "hello").scaled_to(0);
        let cases: [(Option<&AppInfo>, Vec<&PodInfo>, &str); 8] = [
            (Some(&degraded), vec![], "ModuleInvalid: not a Wasm module: bad magic"),
            (Some(&unready), vec![], "ImagePullFailed: pull failed: 404"),
            (Some(&ready_only), vec![], "no pod became ready: the app has no running pods"),
            (
                Some(&zero),
                vec![&leaving],
                "no pod became ready: the app has no running pods (spec.scaling.replicas is 0)",
            ),
            (None, vec![&silent, &crashing], "no pod became ready: pod hello-1: CrashLoopBackOff: back-off 10s"),
            (None, vec![&silent], "no pod became ready: pod hello-2 did not answer on port 8080"),
            (None, vec![&silent, &silent], "no pod became ready: 2 pods did not answer on port 8080"),
            (Some(&app("apps", "hello")), vec![], "no pod became ready: the app has no running pods"),
        ];
        for (info, pods, why) in cases {
            assert_eq!(
                timeout_message(&key, Duration::from_secs(30), info, &pods, Some(8080)),
                format!("apps/hello did not become ready within 30s: {why}\n")
            );
        }
    }

    #[test]
    fn durations_read_naturally() {
        for (ms, want) in [(30_000, "30s"), (1_500, "1.5s"), (250, "250ms"), (0, "0ms")] {
            assert_eq!(human(Duration::from_millis(ms)), want);
        }
    }
}
