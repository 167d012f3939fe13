//! Leader election on a coordination.k8s.io Lease, so two operator replicas never
//! reconcile at once: one holds the Lease and renews it; the other waits for it to expire.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use tracing::{info, warn};

use crate::error::{Result, kube_err};

/// How long a Lease stays valid without renewal.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
const RETRY_PERIOD: Duration = Duration::from_secs(2);

pub struct LeaderElection {
    api: Api<Lease>,
    name: String,
    identity: String,
}

/// What the holder of a Lease may do with it now.
#[derive(Debug, PartialEq, Eq)]
enum Claim {
    /// Nobody holds it, it expired, or we hold it: take or renew it.
    Take { transitions: i32 },
    /// Someone else holds a valid Lease.
    Wait { holder: String },
}

fn claim(spec: &LeaseSpec, identity: &str, now: Timestamp) -> Claim {
    let transitions = spec.lease_transitions.unwrap_or(0);
    let holder = spec.holder_identity.clone().unwrap_or_default();
    if holder.is_empty() || holder == identity {
        return Claim::Take { transitions };
    }
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(0));
    let expires = spec.renew_time.as_ref().map(|t| t.0.as_second() + duration).unwrap_or(0);
    if now.as_second() > expires { Claim::Take { transitions: transitions + 1 } } else { Claim::Wait { holder } }
}

impl LeaderElection {
    pub fn new(api: Api<Lease>, name: impl Into<String>, identity: impl Into<String>) -> Self {
        Self { api, name: name.into(), identity: identity.into() }
    }

    /// Returns once this process holds the Lease.
    pub async fn acquire(&self) -> Result<()> {
        let mut last_holder = String::new();
        loop {
            match self.try_take().await {
                Ok(Claim::Take { .. }) => {
                    info!(lease = %self.name, identity = %self.identity, "became leader");
                    return Ok(());
                }
                Ok(Claim::Wait { holder }) => {
                    if holder != last_holder {
                        info!(lease = %self.name, %holder, "waiting for the leader's lease to expire");
                        last_holder = holder;
                    }
                }
                Err(e) => warn!(lease = %self.name, error = %e, "leader election attempt failed"),
            }
            tokio::time::sleep(RETRY_PERIOD).await;
        }
    }

    /// Renews the Lease until renewal fails for a whole lease duration; then returns, and
    /// the caller must stop reconciling (another replica may take over).
    pub async fn hold(&self) {
        let mut last_renewed = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(LEASE_DURATION / 3).await;
            match self.try_take().await {
                Ok(Claim::Take { .. }) => last_renewed = tokio::time::Instant::now(),
                Ok(Claim::Wait { holder }) => {
                    warn!(lease = %self.name, %holder, "lost the lease");
                    return;
                }
                Err(e) => warn!(lease = %self.name, error = %e, "renewing the lease failed"),
            }
            if last_renewed.elapsed() > LEASE_DURATION {
                warn!(lease = %self.name, "could not renew the lease in time");
                return;
            }
        }
    }

    /// Gives the Lease up so a standby replica takes over at once, not after expiry.
    pub async fn release(&self) {
        let patch = serde_json::json!({"spec": {"holderIdentity": null, "leaseDurationSeconds": 1}});
        match self.api.get_opt(&self.name).await {
            Ok(Some(lease))
                if lease.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) == Some(&self.identity) =>
            {
                if let Err(e) = self.api.patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                    warn!(error = %e, "releasing the lease failed");
                }
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "reading the lease to release it failed"),
        }
    }

    /// One attempt to create, take over or renew the Lease. Replace carries the observed
    /// resourceVersion, so two replicas racing cannot both win.
    async fn try_take(&self) -> Result<Claim> {
        let now = Timestamp::now();
        let existing = self.api.get_opt(&self.name).await.map_err(kube_err(format!("get Lease {}", self.name)))?;
        let Some(mut lease) = existing else {
            let lease = Lease {
                metadata: ObjectMeta { name: Some(self.name.clone()), ..Default::default() },
                spec: Some(self.spec(now, now, 0)),
            };
            self.api
                .create(&PostParams::default(), &lease)
                .await
                .map_err(kube_err(format!("create Lease {}", self.name)))?;
            return Ok(Claim::Take { transitions: 0 });
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let decision = claim(&spec, &self.identity, now);
        if let Claim::Take { transitions } = decision {
            let held = spec.holder_identity.as_deref() == Some(&self.identity);
            let acquired = if held { spec.acquire_time.map_or(now, |t| t.0) } else { now };
            lease.spec = Some(self.spec(acquired, now, transitions));
            self.api
                .replace(&self.name, &PostParams::default(), &lease)
                .await
                .map_err(kube_err(format!("update Lease {}", self.name)))?;
        }
        Ok(decision)
    }

    fn spec(&self, acquired: Timestamp, now: Timestamp, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(LEASE_DURATION.as_secs() as i32),
            acquire_time: Some(MicroTime(acquired)),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: Option<&str>, renewed: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(Into::into),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(Timestamp::from_second(renewed).unwrap())),
            lease_transitions: Some(4),
            ..Default::default()
        }
    }

    #[test]
    fn a_valid_lease_of_another_holder_is_respected() {
        let now = Timestamp::from_second(1000).unwrap();
        let cases = [
            (lease(None, 0), Claim::Take { transitions: 4 }),
            (lease(Some("me"), 995), Claim::Take { transitions: 4 }),
            (lease(Some("other"), 995), Claim::Wait { holder: "other".into() }),
            (lease(Some("other"), 980), Claim::Take { transitions: 5 }),
        ];
        for (spec, expected) in cases {
            assert_eq!(claim(&spec, "me", now), expected, "{spec:?}");
        }
    }
}
