//! The proxy's settings (from the command line) and the duration syntax of its flags.

use std::time::Duration;

/// How the proxy holds, probes and forwards.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The cluster's DNS domain, for `<svc>.<ns>.svc.<domain>` hosts.
    pub cluster_domain: String,
    /// How long a request waits for a backend before its 503.
    pub hold_timeout: Duration,
    /// Most requests held per app; more get 503 at once.
    pub max_held_per_app: usize,
    /// Pause between probes of a pod while requests wait.
    pub probe_interval: Duration,
    /// How long one probe may take.
    pub probe_timeout: Duration,
    /// How long a connect to a backend may take before it counts as failed.
    pub connect_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            cluster_domain: "cluster.local".into(),
            hold_timeout: Duration::from_secs(30),
            max_held_per_app: 1000,
            probe_interval: Duration::from_millis(25),
            probe_timeout: Duration::from_millis(250),
            connect_timeout: Duration::from_secs(1),
        }
    }
}

/// Parses `250ms`, `30s`, `2m` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("{s:?} is not a duration; use e.g. 250ms, 30s or 2m"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n.saturating_mul(60))),
        _ => Err(format!("{s:?}: unknown unit {unit:?}; use ms, s or m")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        let ok = |d: Duration| Ok::<_, String>(d);
        for (text, want) in [
            ("25ms", ok(Duration::from_millis(25))),
            ("30s", ok(Duration::from_secs(30))),
            ("20", ok(Duration::from_secs(20))),
            ("2m", ok(Duration::from_secs(120))),
            (" 1s ", ok(Duration::from_secs(1))),
        ] {
            assert_eq!(parse_duration(text), want, "{text}");
        }
        for bad in ["", "ms", "1h", "1.5s", "-1s", "fast"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
