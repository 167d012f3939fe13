//! The CronJob of a `cronJob` app: a run of the app's pod template on every tick of the
//! schedule. Unlike a Job, a CronJob's template may change: later runs use the new one.

use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, JobTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use spore_crds::{RunMode, WasmApp};

use super::job::job_spec;
use super::{app_labels, app_object_meta, name_of};
use crate::error::Result;

/// The CronJob for `app`, or `None` unless it sets `spec.cronJob`.
pub fn desired_cron_job(app: &WasmApp, runtime_class: &str) -> Result<Option<CronJob>> {
    let RunMode::CronJob(cron) = app.spec.run_mode() else { return Ok(None) };
    let name = name_of(app, "WasmApp")?;
    Ok(Some(CronJob {
        metadata: app_object_meta(app)?,
        spec: Some(CronJobSpec {
            schedule: cron.schedule.trim().to_string(),
            time_zone: cron.time_zone.clone(),
            concurrency_policy: cron.concurrency_policy.map(|p| p.as_str().to_string()),
            suspend: Some(cron.suspend),
            successful_jobs_history_limit: cron.successful_jobs_history_limit,
            failed_jobs_history_limit: cron.failed_jobs_history_limit,
            // The runs carry the app's labels, so the controller finds them like its pods.
            job_template: JobTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(app_labels(&name)), ..Default::default() }),
                spec: Some(job_spec(app, runtime_class, &cron.job)?),
            },
            ..Default::default()
        }),
        status: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::app;

    #[test]
    fn only_cron_job_apps_get_a_cron_job() {
        assert!(desired_cron_job(&app(""), "spore").unwrap().is_none());
        assert!(desired_cron_job(&app("  job: {}\n"), "spore").unwrap().is_none());
    }

    #[test]
    fn the_schedule_and_its_knobs_reach_the_cron_job() {
        let app = app(concat!(
            "  cronJob:\n    schedule: ' */5 * * * * '\n    timeZone: Europe/Berlin\n    concurrencyPolicy: Forbid\n",
            "    suspend: true\n    successfulJobsHistoryLimit: 1\n    failedJobsHistoryLimit: 2\n",
            "    job: {backoffLimit: 1, activeDeadlineSeconds: 30}\n",
        ));
        let cron = desired_cron_job(&app, "spore").unwrap().unwrap();
        assert_eq!(cron.metadata.name.as_deref(), Some("hello"));
        let spec = cron.spec.unwrap();
        assert_eq!(
            (spec.schedule.as_str(), spec.time_zone.as_deref(), spec.concurrency_policy.as_deref(), spec.suspend),
            ("*/5 * * * *", Some("Europe/Berlin"), Some("Forbid"), Some(true))
        );
        assert_eq!((spec.successful_jobs_history_limit, spec.failed_jobs_history_limit), (Some(1), Some(2)));
        let template = spec.job_template;
        assert_eq!(template.metadata.unwrap().labels.unwrap()["spore.dev/app"], "hello");
        let job = template.spec.unwrap();
        assert_eq!((job.backoff_limit, job.active_deadline_seconds), (Some(1), Some(30)));
        let pod = job.template.spec.unwrap();
        assert_eq!((pod.runtime_class_name.as_deref(), pod.restart_policy.as_deref()), (Some("spore"), Some("Never")));
    }

    #[test]
    fn an_unset_policy_is_left_to_kubernetes() {
        let spec =
            desired_cron_job(&app("  cronJob: {schedule: '@hourly'}\n"), "spore").unwrap().unwrap().spec.unwrap();
        assert_eq!((spec.concurrency_policy, spec.suspend), (None, Some(false)));
        assert_eq!(spec.job_template.spec.unwrap().backoff_limit, Some(6));
    }
}
