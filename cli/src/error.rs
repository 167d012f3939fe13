//! The CLI's error type: each variant is one readable line naming the problem and the fix.

use std::path::PathBuf;

/// Exit code when spore itself fails (bad input, missing module), as `docker run` uses.
pub const SPORE_FAILED: i32 = 125;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },

    #[error("{path}: {source}")]
    Manifest { path: PathBuf, source: spore_crds::validate::ManifestError },

    #[error("{path} is not a valid WasmApp:\n{}", indent(.errors))]
    Invalid { path: PathBuf, errors: spore_crds::ValidationErrors },

    #[error("--volume {0:?}: expected NAME=DIR, e.g. --volume data=./data")]
    VolumeFlag(String),

    #[error("--env {0:?}: expected NAME=VALUE")]
    EnvFlag(String),

    #[error("--volume {name}: no volume named {name:?} in spec.volumes")]
    UnknownVolume { name: String },

    #[error("volume {name:?} ({kind}) has no local directory; pass --volume {name}=DIR")]
    VolumeNeedsDir { name: String, kind: &'static str },

    #[error("env {name} comes from {source_desc}, which spore up cannot read; pass --env {name}=VALUE")]
    EnvNeedsValue { name: String, source_desc: String },

    #[error("module {reference}: {message}")]
    Module { reference: String, message: String },

    #[error("--component {0:?}: expected NAME=FILE, e.g. --component auth=auth.wasm")]
    ComponentFlag(String),

    #[error("--component {name}: no component named {name:?} in spec.components")]
    UnknownComponent { name: String },

    #[error("the app's components do not link: {0}")]
    Composition(#[from] spore_shim::compose::CompositionError),

    #[error("{0}")]
    Engine(#[from] spore_shim::Error),

    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

fn indent(errors: &spore_crds::ValidationErrors) -> String {
    errors.to_string().lines().map(|line| format!("  {line}")).collect::<Vec<_>>().join("\n")
}

pub type Result<T, E = CliError> = std::result::Result<T, E>;

impl CliError {
    pub fn module(reference: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Self::Module { reference: reference.into(), message: message.to_string() }
    }
}
