//! What every reconcile gets: the API client, the event recorder, metrics, settings, and
//! per-object failure counts for backoff. All I/O goes through here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

use crate::metrics::Metrics;
use crate::resources::daemonset::InstallerSettings;

/// Settings from the command line.
#[derive(Clone, Debug)]
pub struct Settings {
    /// RuntimeClass of WasmApps that name none.
    pub default_runtime_class: String,
    /// Where installer pods and uninstall Jobs run.
    pub installer: InstallerSettings,
}

pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub settings: Settings,
    failures: Mutex<HashMap<String, u32>>,
}

const BACKOFF_BASE: Duration = Duration::from_secs(2);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

impl Context {
    pub fn new(client: Client, reporter: Reporter, metrics: Arc<Metrics>, settings: Settings) -> Self {
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            settings,
            failures: Mutex::default(),
        }
    }

    /// The delay before retrying `key` after another failure: 2s, 4s, 8s ... up to 5 min,
    /// so a broken object never hot-loops.
    pub fn next_backoff(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = failures.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        backoff(*n)
    }

    /// Forgets `key`'s failures after a successful reconcile.
    pub fn succeeded(&self, key: &str) {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}

fn backoff(failures: u32) -> Duration {
    BACKOFF_BASE.saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(16))).min(BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        let secs: Vec<u64> = [1, 2, 3, 4, 8, 9, 100].into_iter().map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [2, 4, 8, 16, 256, 300, 300]);
    }
}
