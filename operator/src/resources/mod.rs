//! Pure desired-state builders: each turns a custom resource into the Kubernetes objects
//! that should exist for it, with no API call, so they are table-tested without a cluster.

pub mod cron_job;
pub mod daemonset;
pub mod deployment;
pub mod endpoint_slice;
pub mod hpa;
pub mod job;
pub mod pod;
pub mod precompile;
pub mod runtime_class;
pub mod service;
pub mod uninstall_job;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;

use crate::error::{Error, Result};

/// The one field manager of every server-side apply the operator does.
pub const FIELD_MANAGER: &str = "spore-operator";
/// Label on every object made for a WasmApp, and the selector of its pods.
pub const APP_LABEL: &str = "spore.dev/app";
/// Label on every object made for a WasmRuntime (installer pods, uninstall Jobs).
pub const RUNTIME_LABEL: &str = "spore.dev/runtime";
/// Label on installer pods and Jobs saying which step they run: `install` or `uninstall`.
pub const INSTALLER_ROLE_LABEL: &str = "spore.dev/installer";
pub(crate) const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub(crate) const MANAGER: &str = "spore-operator";
const NAME_LABEL: &str = "app.kubernetes.io/name";

/// Labels every object of an app carries; `selector` is the part that selects its pods.
pub fn app_labels(app: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (APP_LABEL.to_string(), app.to_string()),
        (NAME_LABEL.to_string(), app.to_string()),
        (MANAGED_BY.to_string(), MANAGER.to_string()),
    ])
}

/// The label selector of an app's pods.
pub fn app_selector(app: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(APP_LABEL.to_string(), app.to_string())])
}

/// `key=value,...` form of a selector, as the scale subresource and HPA want it.
pub fn selector_string(selector: &BTreeMap<String, String>) -> String {
    selector.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// Labels every object of a runtime carries.
pub fn runtime_labels(runtime: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(RUNTIME_LABEL.to_string(), runtime.to_string()), (MANAGED_BY.to_string(), MANAGER.to_string())])
}

/// Name, namespace, labels and owner of an object made for `app`: every app object has them.
pub fn app_object_meta(
    app: &spore_crds::WasmApp,
) -> Result<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta> {
    let name = name_of(app, "WasmApp")?;
    Ok(k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        labels: Some(app_labels(&name)),
        name: Some(name),
        namespace: Some(namespace_of(app, "WasmApp")?),
        owner_references: Some(vec![owner_ref(app, "WasmApp")?]),
        ..Default::default()
    })
}

/// The controller owner reference to `owner`, so garbage collection removes what we made.
pub fn owner_ref<K: Resource<DynamicType = ()>>(owner: &K, kind: &'static str) -> Result<OwnerReference> {
    owner.controller_owner_ref(&()).ok_or(Error::MissingField { kind, field: "metadata.uid" })
}

/// The longest name an object whose name becomes a label value may have (Jobs: `job-name`).
pub const MAX_LABEL_NAME: usize = 63;

/// `base-<hash of key>` in at most [`MAX_LABEL_NAME`] characters: `base` is cut (at an
/// alphanumeric) to make room, the hash keeps names distinct and stable.
pub fn hashed_name(base: &str, key: &[u8]) -> String {
    let hash = format!("{:08x}", fnv1a(key) as u32);
    let room = MAX_LABEL_NAME - hash.len() - 1;
    let cut = base.char_indices().nth(room).map_or(base, |(i, _)| &base[..i]);
    format!("{}-{hash}", cut.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()))
}

/// FNV-1a: stable across Rust releases (unlike `DefaultHasher`), so names survive upgrades.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// `metadata.name`, or the error every builder returns without it.
pub fn name_of<K: Resource>(obj: &K, kind: &'static str) -> Result<String> {
    obj.meta().name.clone().ok_or(Error::MissingField { kind, field: "metadata.name" })
}

/// `metadata.namespace`, or the error every builder returns without it.
pub fn namespace_of<K: Resource>(obj: &K, kind: &'static str) -> Result<String> {
    obj.meta().namespace.clone().ok_or(Error::MissingField { kind, field: "metadata.namespace" })
}
