//! Linking a WasmApp's components locally, as the cluster does when a pod starts: each
//! component from a local file (`--component NAME=FILE`) or pulled from its image.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use spore_crds::WasmApp;
use spore_shim::Engine;
use spore_shim::compose::{MAIN, Part, Plan, compose};

use crate::error::{CliError, Result};
use crate::resolve;

/// Where the app's code comes from: local files, else the manifest's images.
#[derive(Debug, clap::Args)]
pub struct Sources {
    /// Use this local .wasm (or OCI layout tar) as the main component instead of pulling
    /// spec.module.image.
    #[arg(long)]
    pub module: Option<PathBuf>,
    /// Use this local .wasm (or OCI layout tar) as component NAME of spec.components
    /// instead of pulling its image: NAME=FILE (repeatable).
    #[arg(long = "component", value_name = "NAME=FILE")]
    pub components: Vec<String>,
    /// Pull over plain HTTP (default only for localhost registries).
    #[arg(long)]
    pub plain_http: bool,
}

impl Sources {
    /// The app's code: the main component, linked with `spec.components` if it has any;
    /// through `engine`'s code cache when given (`spore up`), else linked anew (`spore
    /// validate`, which is to prove that they link).
    pub async fn app_bytes(&self, app: &WasmApp, engine: Option<&Engine>) -> Result<Vec<u8>> {
        let local = crate::up::parse_pairs(&self.components, CliError::ComponentFlag)?;
        let main = resolve::module_bytes(self.module.as_deref(), &app.spec.module.image, self.plain_http).await?;
        linked(app, main, &local, self.plain_http, engine).await
    }
}

/// `main` alone, or linked with `spec.components`.
async fn linked(
    app: &WasmApp,
    main: Vec<u8>,
    local: &BTreeMap<String, String>,
    plain_http: bool,
    engine: Option<&Engine>,
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
    Ok(match engine {
        Some(engine) => engine.link(&plan)?,
        None => compose(&plan)?.bytes,
    })
}
