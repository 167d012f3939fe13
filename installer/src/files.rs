//! Replacing files so a crash never leaves half a file (write a temp file beside it, then
//! rename), and remembering what was there before so a failed install can put it back.

use std::fs::{self, Permissions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A file's contents and permission bits.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Contents {
    bytes: Vec<u8>,
    mode: u32,
}

fn read(path: &Path) -> Result<Option<Contents>> {
    match fs::read(path) {
        Ok(bytes) => {
            let mode = fs::metadata(path).map_err(Error::io("stat", path))?.permissions().mode() & 0o7777;
            Ok(Some(Contents { bytes, mode }))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path)(e)),
    }
}

/// A pending change of one file: what it will hold, and what it held (for [`undo`](Self::undo)).
#[derive(Debug)]
pub struct Replacement<'a> {
    path: PathBuf,
    bytes: &'a [u8],
    mode: u32,
    previous: Option<Contents>,
}

impl<'a> Replacement<'a> {
    /// The change that makes `path` hold `bytes` with permissions `mode`; `None` when it
    /// already does (same sha256 and mode).
    pub fn plan(path: &Path, bytes: &'a [u8], mode: u32) -> Result<Option<Replacement<'a>>> {
        let previous = read(path)?;
        let unchanged =
            previous.as_ref().is_some_and(|p| p.mode == mode && Sha256::digest(&p.bytes) == Sha256::digest(bytes));
        Ok((!unchanged).then(|| Replacement { path: path.into(), bytes, mode, previous }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file did not exist before.
    pub fn creates(&self) -> bool {
        self.previous.is_none()
    }

    pub fn apply(&self) -> Result<()> {
        replace_atomically(&self.path, self.bytes, self.mode)
    }

    /// Puts back what the file held before (removes it if it did not exist).
    pub fn undo(&self) -> Result<()> {
        match &self.previous {
            Some(previous) => replace_atomically(&self.path, &previous.bytes, previous.mode),
            None => remove_if_present(&self.path).map(drop),
        }
    }
}

/// Writes `bytes` to a temp file in `path`'s directory, sets `mode`, syncs, and renames it
/// over `path`: readers see the old file or the new one, never a partial one.
pub fn replace_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let mut temp = tempfile::Builder::new()
        .prefix(".spore-")
        .tempfile_in(dir)
        .map_err(Error::io("create a temporary file in", dir))?;
    temp.write_all(bytes).map_err(Error::io("write", temp.path()))?;
    temp.as_file().set_permissions(Permissions::from_mode(mode)).map_err(Error::io("chmod", temp.path()))?;
    temp.as_file().sync_all().map_err(Error::io("sync", temp.path()))?;
    temp.persist(path).map_err(|e| Error::io("rename a temporary file to", path)(e.error))?;
    sync_dir(dir)
}

/// Removes `path`; `Ok(false)` when it was not there.
pub fn remove_if_present(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => {
            sync_dir(path.parent().unwrap_or(Path::new("/")))?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("remove", path)(e)),
    }
}

/// Makes a rename or removal in `dir` survive a power cut.
fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(Error::io("sync directory", dir))
}

pub fn create_dir_all(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(Error::io("create directory", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn plans_nothing_when_contents_and_mode_match() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shim");
        replace_atomically(&path, b"v1", 0o755).unwrap();
        assert!(Replacement::plan(&path, b"v1", 0o755).unwrap().is_none());
        assert!(Replacement::plan(&path, b"v2", 0o755).unwrap().is_some());
        assert!(Replacement::plan(&path, b"v1", 0o644).unwrap().is_some(), "a mode change is a change");
    }

    #[test]
    fn apply_then_undo_restores_the_previous_file_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shim");
        replace_atomically(&path, b"old", 0o700).unwrap();
        let change = Replacement::plan(&path, b"new", 0o755).unwrap().unwrap();
        assert!(!change.creates());
        change.apply().unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(mode(&path), 0o755);
        change.undo().unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(mode(&path), 0o700);
    }

    #[test]
    fn undo_of_a_new_file_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spore-spore.toml");
        let change = Replacement::plan(&path, b"version = 3\n", 0o644).unwrap().unwrap();
        assert!(change.creates());
        change.apply().unwrap();
        assert_eq!(mode(&path), 0o644);
        change.undo().unwrap();
        assert!(!path.exists());
        change.undo().unwrap(); // already gone: fine
    }

    #[test]
    fn replacing_leaves_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        replace_atomically(&path, b"a", 0o644).unwrap();
        replace_atomically(&path, b"b", 0o644).unwrap();
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["f"]);
    }

    #[test]
    fn remove_if_present_reports_whether_it_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, "x").unwrap();
        assert!(remove_if_present(&path).unwrap());
        assert!(!remove_if_present(&path).unwrap());
    }

    #[test]
    fn sha256_is_hex() {
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
