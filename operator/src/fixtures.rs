//! Test fixtures: custom resources from short YAML, as a user would write them.

use spore_crds::{WasmApp, WasmRuntime};

/// A WasmApp `apps/hello` running `localhost:5010/spore/hello-http:1`, with `extra` (spec
/// lines indented by two spaces) appended to its spec.
pub fn app(extra: &str) -> WasmApp {
    let yaml = format!(
        "apiVersion: spore.dev/v1alpha1\nkind: WasmApp\nmetadata: {{name: hello, namespace: apps, uid: u-1, generation: 2}}\nspec:\n  module: {{image: localhost:5010/spore/hello-http:1}}\n{extra}"
    );
    serde_yaml::from_str(&yaml).unwrap_or_else(|e| panic!("fixture WasmApp: {e}\n{yaml}"))
}

/// A WasmRuntime `spore` installing `localhost:5010/spore/node-installer:1`, with `extra`.
pub fn runtime(extra: &str) -> WasmRuntime {
    let yaml = format!(
        "apiVersion: spore.dev/v1alpha1\nkind: WasmRuntime\nmetadata: {{name: spore, uid: u-2, generation: 1}}\nspec:\n  shim: {{image: localhost:5010/spore/node-installer:1}}\n{extra}"
    );
    serde_yaml::from_str(&yaml).unwrap_or_else(|e| panic!("fixture WasmRuntime: {e}\n{yaml}"))
}
