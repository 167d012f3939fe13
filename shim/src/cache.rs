//! Precompiled machine code on disk, keyed by sha256(module) and the engine's fingerprint.
//!
//! An entry is `<key>.cwasm` plus `<key>.crc32`, the length and CRC-32 of the `.cwasm` bytes.
//! Both are written to temporary files and renamed into place, so concurrent shims on one
//! node never see a half-written entry. A checksum mismatch (a damaged file) or a deserialize
//! failure (an artifact from another wasmtime) makes the entry a miss: it is rebuilt, never
//! trusted. The checksum guards against accidental damage, not tampering (whoever can write
//! the cache can write its checksums too; the directory is root's), and a fast one matters:
//! it is computed on every start, and SHA-256 of a Python component's 35 MB took half of a
//! warm start's load.

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
    checksum: PathBuf,
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
        Entry { artifact: self.dir.join(format!("{stem}.cwasm")), checksum: self.dir.join(format!("{stem}.crc32")) }
    }

    /// Whether the entry exists and its artifact matches its checksum.
    pub fn verified(&self, entry: &Entry) -> std::result::Result<(), Miss> {
        let (Ok(file), Ok(expected)) = (std::fs::File::open(&entry.artifact), std::fs::read_to_string(&entry.checksum))
        else {
            return Err(Miss::Absent);
        };
        match checksum_of(file) {
            Ok(actual) if actual == expected.trim() => Ok(()),
            _ => Err(Miss::Corrupt),
        }
    }

    /// Stores an artifact atomically (temp file + rename): checksum last, so a reader that
    /// sees the checksum sees the whole artifact.
    pub fn store(&self, entry: &Entry, artifact: &[u8]) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|source| self.io_error(source))?;
        self.write_atomic(&entry.artifact, artifact)?;
        self.write_atomic(&entry.checksum, checksum(artifact).as_bytes())
    }

    /// Removes an entry that failed verification or deserialization.
    pub fn evict(&self, entry: &Entry) {
        let _ = std::fs::remove_file(&entry.checksum);
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

/// `<length> <crc32 hex>` of an artifact: the `.crc32` file's contents.
fn checksum(bytes: &[u8]) -> String {
    format!("{} {:08x}", bytes.len(), crc32fast::hash(bytes))
}

/// [`checksum`] of a file, read in chunks rather than into one buffer of its size.
fn checksum_of(mut file: std::fs::File) -> std::io::Result<String> {
    let (mut hasher, mut length, mut chunk) = (crc32fast::Hasher::new(), 0usize, vec![0u8; 1 << 20]);
    loop {
        match std::io::Read::read(&mut file, &mut chunk)? {
            0 => return Ok(format!("{length} {:08x}", hasher.finalize())),
            n => {
                hasher.update(&chunk[..n]);
                length += n;
            }
        }
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
