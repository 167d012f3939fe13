//! Batch apps: a WasmApp whose module is a command that runs and exits runs as a Kubernetes
//! Job (`spec.job`) or on a schedule as a CronJob (`spec.cronJob`) instead of a Deployment.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use crate::app::{WasmAppSpec, is_default};

/// Longest `cronJob.schedule`.
pub const MAX_SCHEDULE_LEN: usize = 256;
/// Longest `cronJob.timeZone`.
pub const MAX_TIME_ZONE_LEN: usize = 64;

/// Retries after a failed attempt when `backoffLimit` is unset (Kubernetes' default).
pub const DEFAULT_BACKOFF_LIMIT: i32 = 6;

/// How one run goes: its retries, deadline and clean-up, as in a Kubernetes Job.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("!has(self.backoffLimit) || self.backoffLimit >= 0").message("backoffLimit must be 0 or more (the retries after a failed attempt)"),
    validation = Rule::new("!has(self.activeDeadlineSeconds) || self.activeDeadlineSeconds >= 1").message("activeDeadlineSeconds must be at least 1"),
    validation = Rule::new("!has(self.ttlSecondsAfterFinished) || self.ttlSecondsAfterFinished >= 0").message("ttlSecondsAfterFinished must be 0 or more"),
    validation = Rule::new("(!has(self.completions) || self.completions >= 1) && (!has(self.parallelism) || self.parallelism >= 1)").message("completions and parallelism must be at least 1"),
)]
pub struct JobSettings {
    /// Retries after a failed attempt before the run counts as failed. Each attempt is a new
    /// pod (with its own exit code), started after a growing delay (10s, 20s, 40s ... 6m).
    /// Unset: 6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_limit: Option<i32>,
    /// Seconds the whole run, every attempt included, may take; then it fails
    /// (`DeadlineExceeded`). Unset: no limit (`limits.timeout` bounds each attempt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<i64>,
    /// Seconds after the run finished until Kubernetes deletes its Job and pods. The outcome
    /// stays in `status.lastRun` and the run is not repeated. Unset: kept until the spec
    /// changes or the app is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds_after_finished: Option<i32>,
    /// Successful pods the run needs. Unset: 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completions: Option<i32>,
    /// Pods that run at the same time. Unset: 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<i32>,
}

/// When and how often a scheduled app runs, as in a Kubernetes CronJob.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new(SCHEDULE_RULE).message("schedule must be five cron fields separated by spaces (minute hour day-of-month month day-of-week, e.g. \"*/5 * * * *\") or one of @yearly, @monthly, @weekly, @daily, @hourly; put a time zone in timeZone, not in the schedule"),
    validation = Rule::new("(!has(self.successfulJobsHistoryLimit) || self.successfulJobsHistoryLimit >= 0) && (!has(self.failedJobsHistoryLimit) || self.failedJobsHistoryLimit >= 0)").message("successfulJobsHistoryLimit and failedJobsHistoryLimit must be 0 or more"),
)]
pub struct CronJobSettings {
    /// When to run, in cron format: `minute hour day-of-month month day-of-week`, e.g.
    /// `*/5 * * * *`, or `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`.
    #[schemars(length(min = 1, max = MAX_SCHEDULE_LEN))]
    pub schedule: String,
    /// IANA time zone of the schedule, e.g. `Europe/Berlin`. Unset: the zone of the
    /// kube-controller-manager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = MAX_TIME_ZONE_LEN))]
    pub time_zone: Option<String>,
    /// What happens when a run is due while the previous one still runs. Unset: `Allow`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_policy: Option<ConcurrencyPolicy>,
    /// No new runs while true; a run in progress goes on.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspend: bool,
    /// Successful runs whose Job and pods are kept. Unset: 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successful_jobs_history_limit: Option<i32>,
    /// Failed runs whose Job and pods are kept. Unset: 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_jobs_history_limit: Option<i32>,
    /// Retries, deadline and clean-up of each run, as in `spec.job`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub job: JobSettings,
}

/// The CEL form of [`is_cron_schedule`].
const SCHEDULE_RULE: &str =
    "self.schedule.matches('^ *(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|[^ ]+( +[^ ]+){4}) *$')";

/// Whether `s` is a schedule the CRD accepts: five space-separated cron fields or a macro.
/// The apiserver checks the fields themselves when the operator applies the CronJob.
pub fn is_cron_schedule(s: &str) -> bool {
    const MACROS: [&str; 7] = ["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"];
    let fields: Vec<&str> = s.split(' ').filter(|f| !f.is_empty()).collect();
    fields.len() == 5 || matches!(fields[..], [one] if MACROS.contains(&one))
}

/// A run due while the previous one still runs: run both, skip the new one, or stop the old.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConcurrencyPolicy {
    Allow,
    Forbid,
    Replace,
}

impl ConcurrencyPolicy {
    /// The CronJob's value of this policy.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "Allow",
            Self::Forbid => "Forbid",
            Self::Replace => "Replace",
        }
    }
}

/// How an app runs, as `spec.job` and `spec.cronJob` choose.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RunMode<'a> {
    /// Neither: a Deployment of long-running pods (servers, and commands that never exit).
    Deployment,
    /// `spec.job`: one run to completion, again only when the spec changes.
    Job(&'a JobSettings),
    /// `spec.cronJob`: a run on every tick of the schedule.
    CronJob(&'a CronJobSettings),
}

impl WasmAppSpec {
    /// How this app runs. A spec with both `job` and `cronJob` is invalid; it counts as a Job.
    pub fn run_mode(&self) -> RunMode<'_> {
        match (&self.job, &self.cron_job) {
            (Some(job), _) => RunMode::Job(job),
            (None, Some(cron)) => RunMode::CronJob(cron),
            (None, None) => RunMode::Deployment,
        }
    }
}

/// The newest run of a `job` or `cronJob` app, and how its newest attempt ended.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LastRun {
    /// The Job of this run.
    pub job_name: String,
    /// When the run started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When the run finished, successfully or not (the `Ready` condition says which).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// Pods of the run that are running.
    #[serde(default)]
    pub active: i32,
    /// Pods of the run that succeeded.
    #[serde(default)]
    pub succeeded: i32,
    /// Pods of the run that failed (attempts).
    #[serde(default)]
    pub failed: i32,
    /// Exit code of the newest finished attempt: the guest's own code; 134 for a trap, 124
    /// for `limits.timeout`, 125 when the host failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Why that attempt ended, as kubelet reports it: `Completed`, `Error`, `OOMKilled`,
    /// `StartError`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// That attempt's termination message: the shim's trap report (the reason and the
    /// innermost guest frames), or the end of its log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `cronJob` apps: when a run was last scheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<Time>,
    /// `cronJob` apps: when a run last succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_time: Option<Time>,
}

impl LastRun {
    /// The run is over, successfully or not.
    pub fn finished(&self) -> bool {
        self.completion_time.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_are_five_fields_or_a_macro() {
        for ok in ["* * * * *", "*/5 * * * *", " 0 3 * * MON-FRI ", "0  0 1 1 *", "@hourly", "@daily", "@annually"] {
            assert!(is_cron_schedule(ok), "{ok}");
        }
        for bad in ["", "* * * *", "* * * * * *", "@often", "TZ=UTC 0 * * * *", "*\t* * * *", "@every 5m"] {
            assert!(!is_cron_schedule(bad), "{bad}");
        }
    }

    #[test]
    fn the_run_mode_follows_job_and_cron_job() {
        let mut spec = WasmAppSpec::default();
        assert_eq!(spec.run_mode(), RunMode::Deployment);
        spec.cron_job = Some(CronJobSettings { schedule: "@daily".into(), ..Default::default() });
        assert!(matches!(spec.run_mode(), RunMode::CronJob(c) if c.schedule == "@daily"));
        spec.job = Some(JobSettings { backoff_limit: Some(1), ..Default::default() });
        assert!(matches!(spec.run_mode(), RunMode::Job(j) if j.backoff_limit == Some(1)));
    }
}
