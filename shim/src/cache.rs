//! Precompiled machine code on disk, keyed by sha256(module) and the engine's fingerprint.
//!
//! An entry is `<key>.cwasm` plus `<key>.sha256`, the digest of the `.cwasm` bytes. Both are
//! written to temporary files and renamed into place, so concurrent shims on one node never
//! see a half-written entry. A digest mismatch (corruption) or a deserialize failure (an
//! artifact from another wasmtime) makes the entry a miss: it is rebuilt, never trusted.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The on-disk code cache of one engine.
pub(crate) struct CodeCache {
    dir: PathBuf,
    fingerprint: String,
}

/// Where an entry lives.
pub(crate) struct Entry {
    pub artifact: PathBuf,
    digest: PathBuf,
}

/// Why a lookup missed; logged so operators can see rebuilds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Miss {
    Absent,
    Corrupt,
}

impl CodeCache {
    pub fn new(dir: PathBuf, engine: &wasmtime::Engine) -> Self {
        Self { dir, fingerprint: fingerprint(engine) }
    }

    pub fn entry(&self, module_sha256: &str) -> Entry {
        let stem = format!("{module_sha256}-{}", self.fingerprint);
        Entry { artifact: self.dir.join(format!("{stem}.cwasm")), digest: self.dir.join(format!("{stem}.sha256")) }
    }

    /// Returns the artifact path when the entry exists and its bytes match its digest.
    pub fn verified(&self, entry: &Entry) -> std::result::Result<(), Miss> {
        let (Ok(bytes), Ok(expected)) = (std::fs::read(&entry.artifact), std::fs::read_to_string(&entry.digest)) else {
            return Err(Miss::Absent);
        };
        if hex_sha256(&bytes) == expected.trim() { Ok(()) } else { Err(Miss::Corrupt) }
    }

    /// Stores an artifact atomically (temp file + rename): digest last, so a reader that
    /// sees the digest sees the whole artifact.
    pub fn store(&self, entry: &Entry, artifact: &[u8]) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|source| self.io_error(source))?;
        self.write_atomic(&entry.artifact, artifact)?;
        self.write_atomic(&entry.digest, hex_sha256(artifact).as_bytes())
    }

    /// Removes an entry that failed verification or deserialization.
    pub fn evict(&self, entry: &Entry) {
        let _ = std::fs::remove_file(&entry.digest);
        let _ = std::fs::remove_file(&entry.artifact);
    }

    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(|source| self.io_error(source))?;
        tmp.write_all(bytes).map_err(|source| self.io_error(source))?;
        tmp.persist(path).map_err(|e| self.io_error(e.error))?;
        Ok(())
    }

    fn io_error(&self, source: std::io::Error) -> Error {
        Error::Cache { path: self.dir.clone(), source }
    }
}

pub(crate) fn hex_sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Identifies machine code compatible with this engine: the wasmtime version and every
/// setting that changes generated code.
fn fingerprint(engine: &wasmtime::Engine) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    env!("CARGO_PKG_VERSION").hash(&mut hasher);
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}
