//! The `WasmRuntime` custom resource: installs Spore's containerd shim on a set of nodes and
//! publishes the RuntimeClass that `WasmApp` pods run with.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// The default RuntimeClass name.
pub const DEFAULT_RUNTIME_CLASS: &str = "spore";
/// Prefix of the node label the installer sets once a node serves a runtime class:
/// `runtime.spore.dev/<runtimeClassName>: ready`. The RuntimeClass selects nodes by it.
pub const NODE_LABEL_PREFIX: &str = "runtime.spore.dev/";
/// Value of the node label while the runtime is installed and answering.
pub const NODE_READY: &str = "ready";

/// The node label key for a runtime class, `runtime.spore.dev/<runtimeClassName>`.
pub fn node_label(runtime_class: &str) -> String {
    format!("{NODE_LABEL_PREFIX}{runtime_class}")
}

/// The node annotation holding the installed shim's version,
/// `runtime.spore.dev/<runtimeClassName>.version`.
pub fn node_version_annotation(runtime_class: &str) -> String {
    format!("{NODE_LABEL_PREFIX}{runtime_class}.version")
}

/// The default containerd configuration file.
pub const DEFAULT_CONTAINERD_CONFIG: &str = "/etc/containerd/config.toml";

/// Desired state of the Spore runtime on a set of nodes.
// Every `printcolumn(...)` repeats `type_ = "string"`, which clippy takes for a duplicate.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "spore.dev",
    version = "v1alpha1",
    kind = "WasmRuntime",
    shortname = "wrt",
    category = "spore",
    status = "WasmRuntimeStatus",
    derive = "PartialEq",
    doc = "Installs Spore's containerd shim on matching nodes and publishes its RuntimeClass.",
    printcolumn(name = "RuntimeClass", type_ = "string", json_path = ".spec.runtimeClassName"),
    printcolumn(name = "Ready", type_ = "string", json_path = r#".status.conditions[?(@.type=="Ready")].status"#),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WasmRuntimeSpec {
    /// Nodes to install the runtime on. Empty: every node. The RuntimeClass schedules
    /// WasmApp pods onto exactly these nodes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,

    /// Name of the RuntimeClass to create, a DNS label of at most 55 characters (it is also
    /// part of the node label `runtime.spore.dev/<name>`). Defaults to `spore`.
    #[serde(default = "default_runtime_class_name")]
    #[schemars(length(min = 1, max = 55), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub runtime_class_name: String,

    /// Fixed resources each pod of the RuntimeClass costs beyond its containers (the
    /// RuntimeClass `overhead.podFixed`), as Kubernetes quantities, e.g. `{memory: 8Mi, cpu: 10m}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "crate::quantity::map_schema")]
    pub overhead: BTreeMap<String, Quantity>,

    /// The shim to install.
    pub shim: ShimSource,

    /// How to register the shim with containerd.
    #[serde(default)]
    pub containerd: ContainerdConfig,

    /// How fast to roll the runtime out over the nodes.
    #[serde(default)]
    pub rollout: Rollout,
}

fn default_runtime_class_name() -> String {
    DEFAULT_RUNTIME_CLASS.to_string()
}

/// Where the shim binary comes from.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShimSource {
    /// OCI image holding the `containerd-shim-spore-v1` binary and Spore's node installer.
    #[schemars(length(min = 1))]
    pub image: String,
    /// Version expected from the installed shim; nodes reporting another version are
    /// reinstalled. Unset: the image's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Directory of the node the shim binary is copied to. Defaults to `/opt/spore/bin`.
    /// `$(NODE_NAME)` in it is the node's name (for nodes that share a file system).
    #[serde(default = "default_install_dir")]
    #[x_kube(validation = Rule::new("self.startsWith('/')").message("installDir must be an absolute path, e.g. /opt/spore/bin"))]
    pub install_dir: String,
}

impl Default for ShimSource {
    fn default() -> Self {
        Self { image: String::new(), version: None, install_dir: default_install_dir() }
    }
}

/// The default directory of the node the shim is installed to.
pub const DEFAULT_INSTALL_DIR: &str = "/opt/spore/bin";

fn default_install_dir() -> String {
    DEFAULT_INSTALL_DIR.to_string()
}

/// containerd registration of the shim.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerdConfig {
    /// containerd configuration file on the node. Defaults to `/etc/containerd/config.toml`.
    /// `$(NODE_NAME)` in it is the node's name (for nodes that share a file system).
    #[serde(default = "default_containerd_config_path")]
    pub config_path: String,
    /// Runtime handler name registered with containerd, a DNS label. Unset: the
    /// RuntimeClass name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub runtime_handler: Option<String>,
    /// Restart containerd after changing its configuration. Defaults to true.
    #[serde(default = "default_true")]
    pub restart: bool,
}

impl WasmRuntimeSpec {
    /// The CRI runtime handler: `containerd.runtimeHandler`, else the RuntimeClass name.
    pub fn handler(&self) -> &str {
        self.containerd.runtime_handler.as_deref().unwrap_or(&self.runtime_class_name)
    }
}

impl Default for ContainerdConfig {
    fn default() -> Self {
        Self { config_path: default_containerd_config_path(), runtime_handler: None, restart: true }
    }
}

fn default_containerd_config_path() -> String {
    DEFAULT_CONTAINERD_CONFIG.to_string()
}

fn default_true() -> bool {
    true
}

/// Rollout of the runtime over the nodes.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rollout {
    /// Most nodes installing at once, as a number or a percentage (`25%`). Defaults to 1.
    #[serde(default = "default_max_unavailable")]
    pub max_unavailable: IntOrString,
}

impl Default for Rollout {
    fn default() -> Self {
        Self { max_unavailable: default_max_unavailable() }
    }
}

fn default_max_unavailable() -> IntOrString {
    IntOrString::Int(1)
}

/// Observed state of the runtime, written by the operator.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WasmRuntimeStatus {
    /// Current conditions: `Ready` when every selected node is `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Per-node installation state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub nodes: Vec<NodeStatus>,
}

/// Installation state of the runtime on one node.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    /// Node name.
    pub name: String,
    /// `Pending`, `Installing`, `Ready` or `Failed` on selected nodes; `Uninstalling` or
    /// `UninstallFailed` on nodes the selector no longer picks.
    pub state: String,
    /// Why the node is in this state, e.g. the installation error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Version the installed shim reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shim_version: Option<String>,
}

/// The states of [`NodeStatus::state`].
pub mod node_state {
    /// Selected, not started yet.
    pub const PENDING: &str = "Pending";
    /// The shim is being copied and containerd reconfigured.
    pub const INSTALLING: &str = "Installing";
    /// The shim is installed and containerd serves the runtime handler.
    pub const READY: &str = "Ready";
    /// Installation failed; `message` says why.
    pub const FAILED: &str = "Failed";
    /// No longer selected: the runtime is being removed from the node.
    pub const UNINSTALLING: &str = "Uninstalling";
    /// No longer selected, and removing the runtime failed; `message` says where to look.
    pub const UNINSTALL_FAILED: &str = "UninstallFailed";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_runtime_gets_the_documented_defaults() {
        let rt: WasmRuntime = serde_yaml::from_str(
            "apiVersion: spore.dev/v1alpha1\nkind: WasmRuntime\nmetadata:\n  name: spore\nspec:\n  shim:\n    image: ghcr.io/spore/shim:0.1.0\n",
        )
        .unwrap();
        assert_eq!(rt.spec.runtime_class_name, "spore");
        assert_eq!(rt.spec.containerd, ContainerdConfig::default());
        assert_eq!(rt.spec.containerd.config_path, "/etc/containerd/config.toml");
        assert!(rt.spec.containerd.restart);
        assert_eq!(rt.spec.rollout.max_unavailable, IntOrString::Int(1));
        kube::core::cel::validate_cel(&rt).unwrap();
    }

    #[test]
    fn runtime_spec_rejects_unknown_fields() {
        let err =
            serde_yaml::from_str::<WasmRuntimeSpec>("shim: {image: x}\ncontainerd: {configpath: /x}\n").unwrap_err();
        assert!(err.to_string().contains("unknown field `configpath`"), "{err}");
    }

    #[test]
    fn max_unavailable_takes_a_percentage() {
        let spec: WasmRuntimeSpec = serde_yaml::from_str("shim: {image: x}\nrollout: {maxUnavailable: 25%}\n").unwrap();
        assert_eq!(spec.rollout.max_unavailable, IntOrString::String("25%".into()));
    }
}
