//! The Job of a `job` app: one run to completion. A Job's pod template is immutable, so the
//! name carries a hash of what the app runs: a changed spec gets a new Job, an unchanged one
//! keeps its (maybe finished) Job and never runs again.

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use spore_crds::{DEFAULT_BACKOFF_LIMIT, JobSettings, RunMode, WasmApp};

use super::pod::pod_template;
use super::{app_object_meta, hashed_name, name_of};
use crate::error::{Error, Result};

/// The label the Job controller puts on a Job's pods.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";

/// The Job for `app`, or `None` unless it sets `spec.job`.
pub fn desired_job(app: &WasmApp, runtime_class: &str) -> Result<Option<Job>> {
    let RunMode::Job(settings) = app.spec.run_mode() else { return Ok(None) };
    let mut metadata = app_object_meta(app)?;
    metadata.name = Some(job_name(app, runtime_class)?);
    Ok(Some(Job { metadata, spec: Some(job_spec(app, runtime_class, settings)?), status: None }))
}

/// `<app>-<hash>`: the hash covers the app's uid (a re-created app never meets its
/// predecessor's Job), the RuntimeClass and the spec, not the built template, so an operator
/// upgrade that changes the template does not rerun finished Jobs.
pub fn job_name(app: &WasmApp, runtime_class: &str) -> Result<String> {
    let name = name_of(app, "WasmApp")?;
    let spec = serde_json::to_string(&app.spec).map_err(|source| Error::Encode { what: "spec", source })?;
    let uid = app.metadata.uid.as_deref().unwrap_or_default();
    Ok(hashed_name(&name, format!("{uid}\n{runtime_class}\n{spec}").as_bytes()))
}

/// One run of `app` under `settings`; a CronJob's runs are the same.
pub(crate) fn job_spec(app: &WasmApp, runtime_class: &str, settings: &JobSettings) -> Result<JobSpec> {
    let mut template = pod_template(app, runtime_class)?;
    // Never: every attempt is a new pod that keeps its exit code and termination message
    // (OnFailure restarts in place and shows only the last one), retried with the Job's
    // backoff up to backoffLimit.
    if let Some(pod) = template.spec.as_mut() {
        pod.restart_policy = Some("Never".into());
    }
    Ok(JobSpec {
        backoff_limit: Some(settings.backoff_limit.unwrap_or(DEFAULT_BACKOFF_LIMIT)),
        active_deadline_seconds: settings.active_deadline_seconds,
        ttl_seconds_after_finished: settings.ttl_seconds_after_finished,
        completions: settings.completions,
        parallelism: settings.parallelism,
        template,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::app;
    use crate::resources::pod::CAPABILITIES_ANNOTATION;

    #[test]
    fn only_job_apps_get_a_job() {
        assert!(desired_job(&app(""), "spore").unwrap().is_none());
        assert!(desired_job(&app("  cronJob: {schedule: '@daily'}\n"), "spore").unwrap().is_none());
    }

    #[test]
    fn the_job_runs_the_shared_pod_template_once_per_attempt() {
        let job = desired_job(&app("  args: [exit, '3']\n  job: {}\n"), "spore").unwrap().unwrap();
        let owner = &job.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.controller), ("WasmApp", Some(true)));
        assert_eq!(job.metadata.labels.as_ref().unwrap()["spore.dev/app"], "hello");
        let spec = job.spec.unwrap();
        assert_eq!(spec.backoff_limit, Some(6), "Kubernetes' default, written out");
        let template = spec.template;
        assert_eq!(template.metadata.unwrap().annotations.unwrap()[CAPABILITIES_ANNOTATION], "{}");
        let pod = template.spec.unwrap();
        assert_eq!((pod.runtime_class_name.as_deref(), pod.restart_policy.as_deref()), (Some("spore"), Some("Never")));
        assert_eq!(pod.containers[0].args, Some(vec!["exit".to_string(), "3".into()]));
    }

    #[test]
    fn the_knobs_reach_the_job() {
        let cases = [
            ("{}", (Some(6), None, None, None, None)),
            (
                "{backoffLimit: 0, activeDeadlineSeconds: 600, ttlSecondsAfterFinished: 60, completions: 3, parallelism: 2}",
                (Some(0), Some(600), Some(60), Some(3), Some(2)),
            ),
        ];
        for (job, expected) in cases {
            let spec = desired_job(&app(&format!("  job: {job}\n")), "spore").unwrap().unwrap().spec.unwrap();
            let got = (
                spec.backoff_limit,
                spec.active_deadline_seconds,
                spec.ttl_seconds_after_finished,
                spec.completions,
                spec.parallelism,
            );
            assert_eq!(got, expected, "{job}");
        }
    }

    #[test]
    fn the_name_changes_with_the_spec_and_only_then() {
        let name = |extra: &str, class: &str| job_name(&app(&format!("  job: {{}}\n{extra}")), class).unwrap();
        let base = name("", "spore");
        assert!(base.starts_with("hello-") && base.len() == "hello-".len() + 8, "{base}");
        assert_eq!(base, name("", "spore"), "stable");
        assert_ne!(base, name("  args: [x]\n", "spore"));
        assert_ne!(base, name("", "fast"));
        let mut other = app("  job: {}\n");
        other.metadata.uid = Some("u-2".into());
        assert_ne!(base, job_name(&other, "spore").unwrap(), "a re-created app runs its own Job");
        let mut long = app("  job: {}\n");
        long.metadata.name = Some("a".repeat(100));
        assert!(job_name(&long, "spore").unwrap().len() <= 63);
    }
}
