//! The RuntimeClass a WasmRuntime publishes: its handler, and scheduling onto exactly the
//! nodes where the installer reported the runtime ready.

use std::collections::BTreeMap;

use k8s_openapi::api::node::v1::{Overhead, RuntimeClass, Scheduling};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use spore_crds::WasmRuntime;
use spore_crds::runtime::{NODE_READY, node_label};

use super::{name_of, owner_ref, runtime_labels};
use crate::error::Result;

pub fn desired_runtime_class(rt: &WasmRuntime) -> Result<RuntimeClass> {
    let spec = &rt.spec;
    Ok(RuntimeClass {
        metadata: ObjectMeta {
            name: Some(spec.runtime_class_name.clone()),
            labels: Some(runtime_labels(&name_of(rt, "WasmRuntime")?)),
            owner_references: Some(vec![owner_ref(rt, "WasmRuntime")?]),
            ..Default::default()
        },
        handler: spec.handler().to_string(),
        scheduling: Some(Scheduling {
            node_selector: Some(BTreeMap::from([(node_label(&spec.runtime_class_name), NODE_READY.to_string())])),
            tolerations: None,
        }),
        overhead: (!spec.overhead.is_empty()).then(|| Overhead { pod_fixed: Some(spec.overhead.clone()) }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::runtime;

    #[test]
    fn the_runtime_class_selects_ready_nodes_and_names_the_handler() {
        let cases = [
            ("", "spore", "spore", None),
            ("  runtimeClassName: wasm\n", "wasm", "wasm", None),
            ("  runtimeClassName: wasm\n  containerd: {runtimeHandler: spore-v1}\n", "wasm", "spore-v1", None),
            ("  overhead: {memory: 8Mi}\n", "spore", "spore", Some("8Mi")),
        ];
        for (extra, class, handler, overhead) in cases {
            let rc = desired_runtime_class(&runtime(extra)).unwrap();
            assert_eq!(rc.metadata.name.as_deref(), Some(class), "{extra}");
            assert_eq!(rc.handler, handler, "{extra}");
            let selector = rc.scheduling.unwrap().node_selector.unwrap();
            assert_eq!(selector, BTreeMap::from([(format!("runtime.spore.dev/{class}"), "ready".to_string())]));
            let memory = rc.overhead.and_then(|o| o.pod_fixed).map(|m| m["memory"].0.clone());
            assert_eq!(memory.as_deref(), overhead, "{extra}");
            assert_eq!(rc.metadata.owner_references.unwrap()[0].kind, "WasmRuntime");
        }
    }
}
