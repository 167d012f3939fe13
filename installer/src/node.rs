//! Telling the cluster a runtime class works on this node: a label the operator and the
//! RuntimeClass' node selector use, and an annotation with the installer's version.

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::labels::{READY, ready_label, version_annotation};

/// The field manager of the installer's Node patches.
pub const FIELD_MANAGER: &str = "spore-node-installer";

/// Merge patch setting the ready label and the version annotation.
pub fn ready_patch(runtime_class: &str, version: &str) -> Value {
    json!({"metadata": {
        "labels": {ready_label(runtime_class): READY},
        "annotations": {version_annotation(runtime_class): version},
    }})
}

/// Merge patch removing both (null deletes a key in a merge patch).
pub fn removal_patch(runtime_class: &str) -> Value {
    json!({"metadata": {
        "labels": {ready_label(runtime_class): null},
        "annotations": {version_annotation(runtime_class): null},
    }})
}

/// Merge-patches Node `node` with the in-cluster (or kubeconfig) credentials; `action` names
/// the change in errors.
pub fn patch_node(node: &str, action: &'static str, patch: &Value) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(Error::AsyncRuntime)?;
    runtime.block_on(async {
        let config = kube::Config::infer().await.map_err(|source| Error::KubeConfig { source: Box::new(source) })?;
        let kube_error = |source| Error::Kube { action, node: node.into(), source: Box::new(source) };
        let client = kube::Client::try_from(config).map_err(kube_error)?;
        let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..PatchParams::default() };
        Api::<Node>::all(client).patch(node, &params, &Patch::Merge(patch)).await.map_err(kube_error)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_patch_sets_label_and_version() {
        assert_eq!(
            ready_patch("spore", "0.1.0"),
            json!({"metadata": {
                "labels": {"runtime.spore.dev/spore": "ready"},
                "annotations": {"runtime.spore.dev/spore.version": "0.1.0"},
            }})
        );
    }

    #[test]
    fn removal_patch_nulls_both() {
        let patch = removal_patch("spore");
        assert!(patch["metadata"]["labels"]["runtime.spore.dev/spore"].is_null());
        assert!(patch["metadata"]["annotations"].as_object().unwrap().contains_key("runtime.spore.dev/spore.version"));
    }
}
