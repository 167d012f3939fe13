//! Reading and validating a WasmApp manifest file.

use std::path::Path;

use spore_crds::WasmApp;

use crate::error::{CliError, Result};

/// Reads, parses and validates; every problem names the file and the field.
pub fn load(path: &Path) -> Result<WasmApp> {
    let text = std::fs::read_to_string(path).map_err(|source| CliError::Read { path: path.into(), source })?;
    let app = spore_crds::validate::parse_manifest(&text)
        .map_err(|source| CliError::Manifest { path: path.into(), source })?;
    app.validate().map_err(|errors| CliError::Invalid { path: path.into(), errors })?;
    Ok(app)
}

pub fn validate_command(path: &Path) -> Result<i32> {
    let app = load(path)?;
    let name = app.metadata.name.as_deref().unwrap_or("(unnamed)");
    println!("{}: WasmApp {name} is valid", path.display());
    Ok(0)
}
