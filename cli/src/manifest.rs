//! Reading and validating a WasmApp manifest file.

use std::path::{Path, PathBuf};

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

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// The manifest (YAML).
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
    /// With spec.components, where the code to link comes from.
    #[command(flatten)]
    pub sources: crate::link::Sources,
}

/// Checks the manifest and, for an app of several components, that they link.
pub async fn validate_command(args: ValidateArgs) -> Result<i32> {
    let app = load(&args.file)?;
    let spec = &app.spec;
    if !spec.components.is_empty() {
        args.sources.app_bytes(&app, None).await?;
    }
    let name = app.metadata.name.as_deref().unwrap_or("(unnamed)");
    let linked = if spec.components.is_empty() { "" } else { " and its components link" };
    println!("{}: WasmApp {name} is valid{linked}", args.file.display());
    Ok(0)
}
