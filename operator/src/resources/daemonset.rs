//! The installer DaemonSet of a WasmRuntime: on each selected node an init container
//! installs the shim and registers it with containerd, then a tiny container holds the pod
//! so the DaemonSet reports the node as done. Rolling updates honour `maxUnavailable`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetSpec, DaemonSetUpdateStrategy, RollingUpdateDaemonSet};
use k8s_openapi::api::core::v1::{
    Container, EnvVar, EnvVarSource, HostPathVolumeSource, ObjectFieldSelector, PodSpec, PodTemplateSpec,
    ResourceRequirements, SecurityContext, Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use spore_crds::WasmRuntime;

use super::{INSTALLER_ROLE_LABEL, name_of, owner_ref, runtime_labels};
use crate::error::Result;

/// The installer binary inside the shim image.
pub const INSTALLER_BINARY: &str = "/spore/spore-node-installer";
/// Where the installer sees the host's `/`.
const HOST_ROOT: &str = "/host";
/// Name of the init container that installs; its termination message explains failures.
pub const INSTALL_CONTAINER: &str = "install";

/// Where installer pods run and as whom: the operator's namespace and the installer's
/// ServiceAccount (allowed to label nodes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstallerSettings {
    pub namespace: String,
    pub service_account: String,
}

/// The name of a runtime's installer DaemonSet.
pub fn daemonset_name(runtime: &str) -> String {
    format!("spore-installer-{runtime}")
}

/// Labels of a runtime's installer pods for one step (`install` or `uninstall`).
pub fn installer_labels(runtime: &str, role: &str) -> BTreeMap<String, String> {
    let mut labels = runtime_labels(runtime);
    labels.insert(INSTALLER_ROLE_LABEL.to_string(), role.to_string());
    labels
}

pub fn desired_daemonset(rt: &WasmRuntime, settings: &InstallerSettings) -> Result<DaemonSet> {
    let name = name_of(rt, "WasmRuntime")?;
    let labels = installer_labels(&name, "install");
    let mut pod = installer_pod_spec(rt, settings, "install");
    pod.init_containers =
        pod.containers.drain(..).map(|c| Container { name: INSTALL_CONTAINER.into(), ..c }).collect::<Vec<_>>().into();
    pod.containers = vec![Container {
        name: "installed".into(),
        image: Some(rt.spec.shim.image.clone()),
        command: Some(vec![INSTALLER_BINARY.into(), "wait".into()]),
        resources: Some(small_resources()),
        ..Default::default()
    }];
    pod.node_selector = (!rt.spec.node_selector.is_empty()).then(|| rt.spec.node_selector.clone());
    Ok(DaemonSet {
        metadata: ObjectMeta {
            name: Some(daemonset_name(&name)),
            namespace: Some(settings.namespace.clone()),
            labels: Some(labels.clone()),
            owner_references: Some(vec![owner_ref(rt, "WasmRuntime")?]),
            ..Default::default()
        },
        spec: Some(DaemonSetSpec {
            selector: LabelSelector { match_labels: Some(labels.clone()), ..Default::default() },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(labels), ..Default::default() }),
                spec: Some(pod),
            },
            update_strategy: Some(DaemonSetUpdateStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDaemonSet {
                    max_unavailable: Some(rt.spec.rollout.max_unavailable.clone()),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
        status: None,
    })
}

/// A privileged pod spec running the installer step `step` on the node it lands on, with
/// the host's `/` at `/host` and the host's PIDs (to find and restart containerd).
pub fn installer_pod_spec(rt: &WasmRuntime, settings: &InstallerSettings, step: &str) -> PodSpec {
    let spec = &rt.spec;
    // kubelet expands `$(NODE_NAME)` (the env var below) in these, so paths may name the node.
    let args = vec![
        step.to_string(),
        format!("--handler={}", spec.handler()),
        format!("--runtime-class={}", spec.runtime_class_name),
        format!("--config-path={}", spec.containerd.config_path),
        format!("--install-dir={}", spec.shim.install_dir),
        format!("--restart={}", spec.containerd.restart),
        format!("--host-root={HOST_ROOT}"),
    ];
    PodSpec {
        containers: vec![Container {
            name: step.to_string(),
            image: Some(spec.shim.image.clone()),
            command: Some(vec![INSTALLER_BINARY.into()]),
            args: Some(args),
            env: Some(vec![EnvVar {
                name: "NODE_NAME".into(),
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector { field_path: "spec.nodeName".into(), ..Default::default() }),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            security_context: Some(SecurityContext { privileged: Some(true), ..Default::default() }),
            volume_mounts: Some(vec![VolumeMount {
                name: "host-root".into(),
                mount_path: HOST_ROOT.into(),
                ..Default::default()
            }]),
            resources: Some(small_resources()),
            termination_message_policy: Some("FallbackToLogsOnError".into()),
            ..Default::default()
        }],
        volumes: Some(vec![Volume {
            name: "host-root".into(),
            host_path: Some(HostPathVolumeSource { path: "/".into(), type_: Some("Directory".into()) }),
            ..Default::default()
        }]),
        host_pid: Some(true),
        service_account_name: Some(settings.service_account.clone()),
        // Wasm nodes are often tainted for Wasm pods only; the installer must land anyway.
        tolerations: Some(vec![Toleration { operator: Some("Exists".into()), ..Default::default() }]),
        termination_grace_period_seconds: Some(5),
        ..Default::default()
    }
}

fn small_resources() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_string(), Quantity("10m".into())),
            ("memory".to_string(), Quantity("16Mi".into())),
        ])),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    use super::*;
    use crate::fixtures::runtime;

    fn settings() -> InstallerSettings {
        InstallerSettings { namespace: "spore-system".into(), service_account: "spore-node-installer".into() }
    }

    #[test]
    fn the_daemonset_installs_on_the_selected_nodes_then_waits() {
        let rt = runtime(concat!(
            "  nodeSelector: {spore.dev/node-kind: wasm}\n",
            "  containerd: {configPath: /etc/k3s/containerd.toml, runtimeHandler: spore-v1, restart: false}\n",
            "  rollout: {maxUnavailable: 25%}\n",
        ));
        let ds = desired_daemonset(&rt, &settings()).unwrap();
        assert_eq!(ds.metadata.name.as_deref(), Some("spore-installer-spore"));
        assert_eq!(ds.metadata.namespace.as_deref(), Some("spore-system"));
        let spec = ds.spec.unwrap();
        let rolling = spec.update_strategy.unwrap().rolling_update.unwrap();
        assert_eq!(rolling.max_unavailable, Some(IntOrString::String("25%".into())));
        let pod = spec.template.spec.unwrap();
        assert_eq!(pod.node_selector.unwrap()["spore.dev/node-kind"], "wasm");
        assert_eq!(pod.host_pid, Some(true));
        assert_eq!(pod.service_account_name.as_deref(), Some("spore-node-installer"));
        let install = &pod.init_containers.unwrap()[0];
        assert_eq!(install.name, INSTALL_CONTAINER);
        assert_eq!(install.security_context.as_ref().unwrap().privileged, Some(true));
        let args = install.args.clone().unwrap();
        for expected in [
            "install",
            "--handler=spore-v1",
            "--runtime-class=spore",
            "--config-path=/etc/k3s/containerd.toml",
            "--install-dir=/opt/spore/bin",
            "--restart=false",
        ] {
            assert!(args.iter().any(|a| a == expected), "{expected} missing from {args:?}");
        }
        assert_eq!(pod.containers[0].command.as_ref().unwrap()[1], "wait");
    }

    #[test]
    fn no_node_selector_means_every_node() {
        let ds = desired_daemonset(&runtime(""), &settings()).unwrap();
        assert_eq!(ds.spec.unwrap().template.spec.unwrap().node_selector, None);
    }
}
