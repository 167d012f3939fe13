//! Linking a WasmApp's components locally, as the cluster does when a pod starts: each
//! component from a local file (`--component NAME=FILE`) or pulled from its image.

use std::collections::BTreeMap;
use std::path::Path;

use spore_crds::WasmApp;
use spore_shim::compose::{MAIN, Part, Plan, compose};

use crate::error::{CliError, Result};
use crate::resolve;

/// The app's code: `main` alone, or linked with `spec.components`.
pub async fn app_bytes(
    app: &WasmApp,
    main: Vec<u8>,
    local: &BTreeMap<String, String>,
    plain_http: bool,
) -> Result<Vec<u8>> {
    let spec = &app.spec;
    if let Some(name) = local.keys().find(|name| !spec.components.iter().any(|c| &c.name == *name)) {
        return Err(CliError::UnknownComponent { name: name.clone() });
    }
    if spec.components.is_empty() {
        return Ok(main);
    }
    let mut others = Vec::new();
    for component in &spec.components {
        let file = local.get(&component.name).map(Path::new);
        others.push(resolve::module_bytes(file, &component.image, plain_http).await?);
    }
    let plan = Plan {
        main: Part { name: MAIN, bytes: &main, plugs: &spec.module.plugs },
        others: spec
            .components
            .iter()
            .zip(&others)
            .map(|(c, bytes)| Part { name: &c.name, bytes, plugs: &c.plugs })
            .collect(),
        middleware: &spec.middleware,
    };
    Ok(compose(&plan)?.bytes)
}
