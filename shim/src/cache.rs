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

    /// Where the linked app of link key `key` ([`crate::compose::link_key`]) lives: linking
    /// a Python handler's 40 MB takes long enough to do once per node, not at every start.
    pub fn linked_entry(&self, key: &str) -> Entry {
        let stem = format!("linked-{key}-{}", self.fingerprint);
        Entry { artifact: self.dir.join(format!("{stem}.wasm")), checksum: self.dir.join(format!("{stem}.crc32")) }
    }

    /// The entry's artifact, if it is there and intact; a damaged one is evicted.
    pub fn read(&self, entry: &Entry) -> Option<Vec<u8>> {
        match self.verified(entry) {
            Ok(()) => std::fs::read(&entry.artifact).ok(),
            Err(Miss::Absent) => None,
            Err(Miss::Corrupt) => {
                tracing::warn!(path = %entry.artifact.display(), "corrupt cache entry (checksum mismatch); rebuilding it");
                self.evict(entry);
                None
            }
        }
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
        self.remove_abandoned_writes();
        self.write_atomic(&entry.artifact, artifact)?;
        self.write_atomic(&entry.checksum, checksum(artifact).as_bytes())
    }

    /// Removes an entry that failed verification or deserialization.
    pub fn evict(&self, entry: &Entry) {
        let _ = std::fs::remove_file(&entry.checksum);
        let _ = std::fs::remove_file(&entry.artifact);
    }

    /// Temporary files of writers that died mid-write (a pod stopped while its baseline code
    /// was being cached): tens of MB each, which nothing else would ever remove. Writes in
    /// progress are younger than [`ABANDONED_AFTER`].
    fn remove_abandoned_writes(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return };
        for entry in entries.flatten() {
            let abandoned = entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX)
                && entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|modified| modified.elapsed().is_ok_and(|age| age > ABANDONED_AFTER));
            if abandoned {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let mut tmp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempfile_in(&self.dir)
            .map_err(|source| self.io_error(source))?;
        tmp.write_all(bytes).map_err(|source| self.io_error(source))?;
        tmp.persist(path).map_err(|e| self.io_error(e.error))?;
        Ok(())
    }

    fn io_error(&self, source: std::io::Error) -> Error {
        Error::Cache { path: self.dir.clone(), source }
    }
}

const TEMP_PREFIX: &str = ".tmp";
/// Writing an artifact takes well under a second; a temporary file this old lost its writer.
const ABANDONED_AFTER: std::time::Duration = std::time::Duration::from_secs(600);

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storing_removes_temporary_files_of_dead_writers_but_not_of_live_ones() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CodeCache { dir: dir.path().into(), fingerprint: "f".into() };
        let (dead, live) = (dir.path().join(".tmpDEAD01"), dir.path().join(".tmpLIVE01"));
        let old = std::time::SystemTime::now() - ABANDONED_AFTER * 2;
        std::fs::File::create(&dead).unwrap().set_modified(old).unwrap();
        std::fs::File::create(&live).unwrap();
        cache.store(&cache.entry("abc"), b"code").unwrap();
        assert!(!dead.exists(), "an abandoned write stayed");
        assert!(live.exists(), "a write in progress was removed");
        assert_eq!(cache.verified(&cache.entry("abc")), Ok(()));
    }

    #[test]
    fn a_damaged_linked_app_is_a_miss_and_is_evicted() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CodeCache { dir: dir.path().into(), fingerprint: "f".into() };
        let entry = cache.linked_entry("k");
        assert_eq!(cache.read(&entry), None);
        cache.store(&entry, b"linked").unwrap();
        assert_eq!(cache.read(&entry).as_deref(), Some(&b"linked"[..]));
        std::fs::write(&entry.artifact, b"linkeX").unwrap();
        assert_eq!(cache.read(&entry), None);
        assert!(!entry.artifact.exists(), "the damaged entry stayed");
    }
}
