//! The scaling decision, as a pure function of what the autoscaler measured.
//!
//! Like Knative's KPA, two windows of concurrency samples: a long *stable* window that scale
//! down follows, and a short *burst* window that scale up follows at once. Unlike the KPA
//! there is no panic threshold: a Wasm pod starts in milliseconds, so any burst that needs
//! more pods gets them at the next tick, while scale down waits for the whole stable window
//! to agree and then at most halves the count per tick. Missing metrics never scale down;
//! zero needs a full idle period and a ready activator to wake the app again.

use std::time::Duration;

/// How one app scales, from its `scaling.autoscale` and the operator's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// In-flight requests one pod should handle (`targetConcurrency`).
    pub target: f64,
    pub min: u32,
    pub max: u32,
    /// Idle time before the last pod goes, when `min` is 0.
    pub scale_to_zero_after: Duration,
    /// Scale down follows the average over this long.
    pub stable_window: Duration,
    /// Scale up follows the average over this long.
    pub burst_window: Duration,
    /// Scale down divides the replica count by at most this much per decision.
    pub max_scale_down_rate: f64,
}

/// One measurement: the app's concurrency (in-flight requests on its pods plus those the
/// activator holds for it), `None` when some ready pod could not be read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// When, as time since the autoscaler started.
    pub at: Duration,
    pub concurrency: Option<f64>,
}

/// What the decision looks at, besides the samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Now {
    pub at: Duration,
    /// The app's replica count now (its scale subresource).
    pub replicas: u32,
    /// Since when the app has had no request at all (the last sample above zero, or the last
    /// time someone else raised its replicas, e.g. the activator waking it).
    pub idle_since: Duration,
    /// A ready activator can wake the app from zero.
    pub activator_ready: bool,
}

/// Why the replica count changes; `Display` is the text of the Event.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reason {
    /// Load over the target: `concurrency` in flight against `target` per pod.
    Load { concurrency: f64, target: f64 },
    /// The stable window's load is lower.
    LessLoad { concurrency: f64, target: f64 },
    /// No request for `idle` (at least `scaleToZeroAfter`).
    Idle { idle: Duration },
    /// The count was outside `minReplicas..=maxReplicas`.
    Range { min: u32, max: u32 },
    /// At zero with no ready activator, nothing could wake the app: keep one pod.
    NoActivator,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Load { concurrency, target } if *concurrency >= 10.0 => {
                write!(f, "{concurrency:.0} in-flight requests / target {target:.0}")
            }
            Self::Load { concurrency, target } => {
                write!(f, "{concurrency:.1} in-flight requests / target {target:.0}")
            }
            Self::LessLoad { concurrency, target } => {
                write!(f, "{concurrency:.1} in-flight requests on average / target {target:.0}")
            }
            Self::Idle { idle } => write!(f, "no requests for {}s", idle.as_secs()),
            Self::Range { min, max } => write!(f, "replicas kept within minReplicas {min} and maxReplicas {max}"),
            Self::NoActivator => write!(f, "no activator is ready to wake the app from zero"),
        }
    }
}

/// A change of the replica count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decision {
    pub replicas: u32,
    pub reason: Reason,
}

/// The replica count the app should have now, or `None` to leave it as it is. `samples` are
/// oldest first; older ones than the stable window are ignored.
pub fn decide(policy: &Policy, samples: &[Sample], now: Now) -> Option<Decision> {
    let change = |replicas, reason| (replicas != now.replicas).then_some(Decision { replicas, reason });
    if now.replicas < policy.min || now.replicas > policy.max {
        return change(now.replicas.clamp(policy.min, policy.max), Reason::Range { min: policy.min, max: policy.max });
    }
    if now.replicas == 0 && !now.activator_ready {
        return change(1.min(policy.max), Reason::NoActivator);
    }
    let burst = average(samples, now.at, policy.burst_window)?;
    let stable = average(samples, now.at, policy.stable_window)?;
    let wanted = |concurrency: f64| (concurrency / policy.target).ceil() as u32;
    // At zero only new demand (requests the activator holds) wakes the app: the stable
    // window's past load would undo a scale to zero.
    let up = if now.replicas == 0 { wanted(burst) } else { wanted(burst).max(wanted(stable)) };
    if up > now.replicas {
        return change(up.min(policy.max), Reason::Load { concurrency: burst.max(stable), target: policy.target });
    }
    if up > 0 || burst > 0.0 {
        let floor = (f64::from(now.replicas) / policy.max_scale_down_rate).ceil() as u32;
        let down = up.max(floor).max(policy.min).max(1);
        return change(down, Reason::LessLoad { concurrency: stable, target: policy.target });
    }
    let idle = now.at.saturating_sub(now.idle_since);
    if policy.min == 0 && now.activator_ready && idle >= policy.scale_to_zero_after {
        return change(0, Reason::Idle { idle });
    }
    if now.replicas == 0 {
        return None;
    }
    // No load, but not idle long enough (or zero is not allowed): halve towards one pod.
    let floor = (f64::from(now.replicas) / policy.max_scale_down_rate).ceil() as u32;
    change(floor.max(policy.min).max(1), Reason::LessLoad { concurrency: 0.0, target: policy.target })
}

/// The mean concurrency of the samples in the last `window`, or `None` if any of them is
/// missing or there is none: the decision then waits for data.
fn average(samples: &[Sample], now: Duration, window: Duration) -> Option<f64> {
    let recent: Vec<Option<f64>> =
        samples.iter().filter(|s| s.at + window > now && s.at <= now).map(|s| s.concurrency).collect();
    if recent.is_empty() {
        return None;
    }
    let values: Option<Vec<f64>> = recent.into_iter().collect();
    let values = values?;
    Some(values.iter().sum::<f64>() / values.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn policy(min: u32, max: u32) -> Policy {
        Policy {
            target: 20.0,
            min,
            max,
            scale_to_zero_after: 60 * S,
            stable_window: 60 * S,
            burst_window: 2 * S,
            max_scale_down_rate: 2.0,
        }
    }

    /// One sample a second ending at `end` seconds, with these concurrencies (oldest first).
    fn samples(end: u64, values: &[Option<f64>]) -> Vec<Sample> {
        let start = end + 1 - values.len() as u64;
        values.iter().enumerate().map(|(i, &c)| Sample { at: secs(start + i as u64), concurrency: c }).collect()
    }

    fn steady(end: u64, seconds: usize, value: f64) -> Vec<Sample> {
        samples(end, &vec![Some(value); seconds])
    }

    fn now(at: u64, replicas: u32, idle_since: u64) -> Now {
        Now { at: secs(at), replicas, idle_since: secs(idle_since), activator_ready: true }
    }

    fn to(replicas: u32) -> Option<u32> {
        Some(replicas)
    }

    /// (name, policy, samples, now, the replicas it should set).
    type Case = (&'static str, Policy, Vec<Sample>, Now, Option<u32>);

    #[test]
    fn table() {
        let burst_after_calm = [vec![Some(5.0); 58], vec![Some(95.0); 2]].concat();
        let calm_after_burst = [vec![Some(100.0); 10], vec![Some(0.0); 50]].concat();
        let just_after_burst = [vec![Some(100.0); 30], vec![Some(0.0); 3]].concat();
        let flapping: Vec<Option<f64>> = (0..60).map(|i| Some(if i % 2 == 0 { 60.0 } else { 0.0 })).collect();
        let one_missing = [vec![Some(40.0); 59], vec![None]].concat();
        let cases: Vec<Case> = vec![
            ("steady load at the target keeps the count", policy(1, 10), steady(100, 60, 40.0), now(100, 2, 0), None),
            ("steady load over it scales up", policy(1, 10), steady(100, 60, 61.0), now(100, 2, 0), to(4)),
            ("a burst scales up at once", policy(1, 10), samples(100, &burst_after_calm), now(100, 1, 0), to(5)),
            ("up to maxReplicas only", policy(1, 3), steady(100, 60, 500.0), now(100, 1, 0), to(3)),
            (
                "just after a burst the stable window holds the pods",
                policy(1, 10),
                samples(100, &just_after_burst),
                now(100, 5, 97),
                None,
            ),
            (
                "once the burst is a small part of the window, halve",
                policy(1, 10),
                samples(100, &calm_after_burst),
                now(100, 5, 50),
                to(3),
            ),
            (
                "scale down follows the stable window, halving at most",
                policy(1, 10),
                steady(100, 60, 10.0),
                now(100, 8, 0),
                to(4),
            ),
            ("and reaches the need", policy(1, 10), steady(100, 60, 10.0), now(100, 2, 0), to(1)),
            ("flapping load keeps its average", policy(1, 10), samples(100, &flapping), now(100, 2, 0), None),
            ("missing metrics never scale", policy(1, 10), samples(100, &one_missing), now(100, 1, 0), None),
            ("no samples yet never scale", policy(0, 10), vec![], now(100, 3, 0), None),
            ("idle, but not long enough", policy(0, 10), steady(100, 60, 0.0), now(100, 1, 50), None),
            ("idle long enough goes to zero", policy(0, 10), steady(100, 60, 0.0), now(100, 1, 40), to(0)),
            ("idle with minReplicas 1 keeps one", policy(1, 10), steady(100, 60, 0.0), now(100, 1, 0), None),
            ("idle for long, every pod goes at once", policy(0, 10), steady(200, 60, 0.0), now(200, 6, 0), to(0)),
            ("idle for less, several pods halve", policy(0, 10), steady(200, 60, 0.0), now(200, 6, 170), to(3)),
            ("scaled to zero by hand stays there", policy(0, 10), steady(100, 60, 0.0), now(100, 0, 90), None),
            (
                "held requests wake an app at zero",
                policy(0, 10),
                samples(100, &[Some(0.0), Some(45.0)]),
                now(100, 0, 100),
                to(2),
            ),
            ("at zero and idle stays there", policy(0, 10), steady(100, 60, 0.0), now(100, 0, 0), None),
            (
                "at zero, past load does not wake the app",
                policy(0, 10),
                samples(100, &calm_after_burst),
                now(100, 0, 90),
                None,
            ),
            ("below minReplicas", policy(2, 10), steady(100, 60, 0.0), now(100, 1, 0), to(2)),
            ("above maxReplicas", policy(1, 4), steady(100, 60, 0.0), now(100, 9, 0), to(4)),
        ];
        for (name, policy, samples, now, want) in cases {
            let got = decide(&policy, &samples, now).map(|d| d.replicas);
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn zero_needs_a_ready_activator() {
        let mut at_one = now(100, 1, 0);
        at_one.activator_ready = false;
        assert_eq!(decide(&policy(0, 10), &steady(100, 60, 0.0), at_one), None, "no activator: never to zero");
        let mut at_zero = now(100, 0, 0);
        at_zero.activator_ready = false;
        let d = decide(&policy(0, 10), &[], at_zero).unwrap();
        assert_eq!((d.replicas, d.reason), (1, Reason::NoActivator), "at zero without an activator: wake");
    }

    #[test]
    fn reasons_read_like_the_events() {
        let d = decide(&policy(0, 10), &steady(100, 2, 45.0), now(100, 1, 0)).unwrap();
        assert_eq!((d.replicas, d.reason.to_string().as_str()), (3, "45 in-flight requests / target 20"));
        let d = decide(&policy(0, 10), &steady(100, 60, 0.0), now(100, 1, 30)).unwrap();
        assert_eq!(d.reason.to_string(), "no requests for 70s");
    }
}
