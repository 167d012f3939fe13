//! The Job that removes a WasmRuntime from one node when the WasmRuntime is deleted.

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use spore_crds::WasmRuntime;

use super::daemonset::{InstallerSettings, installer_labels, installer_pod_spec};
use super::{MAX_LABEL_NAME, hashed_name, name_of};
use crate::error::Result;

/// The uninstall Job's name for a node: `<runtime>-uninstall-<node>`, shortened with a
/// stable hash when longer than a label value may be.
pub fn uninstall_job_name(runtime: &str, node: &str) -> String {
    let full = format!("{runtime}-uninstall-{node}");
    if full.len() <= MAX_LABEL_NAME {
        return full;
    }
    hashed_name(&full, full.as_bytes())
}

/// A Job pinned to `node` (no scheduler, so it runs even where nothing else may) that
/// unregisters the runtime and removes the shim. Not owned by the WasmRuntime: it must
/// outlive the WasmRuntime's deletion, which it completes.
pub fn desired_uninstall_job(rt: &WasmRuntime, node: &str, settings: &InstallerSettings) -> Result<Job> {
    let runtime = name_of(rt, "WasmRuntime")?;
    let labels = installer_labels(&runtime, "uninstall");
    let mut pod = installer_pod_spec(rt, settings, "uninstall");
    pod.node_name = Some(node.to_string());
    pod.restart_policy = Some("Never".into());
    Ok(Job {
        metadata: ObjectMeta {
            name: Some(uninstall_job_name(&runtime, node)),
            namespace: Some(settings.namespace.clone()),
            labels: Some(labels.clone()),
            ..Default::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(3),
            // The operator deletes them once every node is clean; this catches any it missed.
            ttl_seconds_after_finished: Some(600),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(labels), ..Default::default() }),
                spec: Some(pod),
            },
            ..Default::default()
        }),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::runtime;

    #[test]
    fn job_names_fit_in_a_label_and_stay_distinct() {
        assert_eq!(uninstall_job_name("spore", "node-wasm"), "spore-uninstall-node-wasm");
        let long_a = uninstall_job_name("spore", &"n".repeat(80));
        let long_b = uninstall_job_name("spore", &format!("{}x", "n".repeat(79)));
        assert!(long_a.len() <= 63 && long_b.len() <= 63, "{long_a} {long_b}");
        assert_ne!(long_a, long_b);
        assert_eq!(long_a, uninstall_job_name("spore", &"n".repeat(80)));
    }

    #[test]
    fn the_job_runs_uninstall_on_its_node() {
        let settings = InstallerSettings { namespace: "spore-system".into(), service_account: "installer".into() };
        let job = desired_uninstall_job(&runtime(""), "node-wasm", &settings).unwrap();
        assert_eq!(job.metadata.owner_references, None);
        let pod = job.spec.unwrap().template.spec.unwrap();
        assert_eq!(pod.node_name.as_deref(), Some("node-wasm"));
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        assert_eq!(pod.containers[0].args.as_ref().unwrap()[0], "uninstall");
    }
}
