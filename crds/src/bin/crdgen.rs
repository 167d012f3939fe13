//! Writes the CRD YAML of every Spore resource: `crdgen [DIR]` (default: the crate dir).

use std::error::Error;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn Error>> {
    let dir =
        std::env::args_os().nth(1).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    for (name, yaml) in spore_crds::crd_yaml()? {
        let path = dir.join(name);
        std::fs::write(&path, yaml).map_err(|e| format!("failed to write {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
