//! Finding the module bytes: a local file (`.wasm`, or an OCI layout tar), or the
//! manifest's image pulled from its registry.

use std::path::Path;

use crate::error::{CliError, Result};
use crate::oci;

/// Reads `--module` when given, else pulls `image`.
pub async fn module_bytes(local: Option<&Path>, image: &str, plain_http: bool) -> Result<Vec<u8>> {
    let Some(path) = local else {
        return oci::pull(image, plain_http).await;
    };
    let bytes = std::fs::read(path)
        .map_err(|e| CliError::module(path.display().to_string(), format!("cannot read the module: {e}")))?;
    if is_tar(&bytes) {
        let name = path.display().to_string();
        let layout = oci::Layout::read(&bytes).map_err(|m| CliError::module(&name, m))?;
        return layout.image.module().map_err(|e| CliError::module(name, e));
    }
    Ok(bytes)
}

fn is_tar(bytes: &[u8]) -> bool {
    bytes.get(257..262) == Some(b"ustar")
}
