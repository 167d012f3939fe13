//! Reading the entrypoint out of a container's snapshot without mounting it. The shim server
//! runs without CAP_SYS_ADMIN and may not call mount (see `hardening`), and the guest never
//! sees the image's files anyway: its files are the volumes of its spec. containerd describes
//! the snapshot as mounts; the kinds its overlayfs and native snapshotters give are stacks of
//! plain directories, read here the way overlayfs merges them.

use std::ffi::OsString;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use containerd_shim_protos::api::Mount;

/// Symbolic links followed in one lookup before giving up, as the kernel does (ELOOP).
const MAX_SYMLINKS: usize = 40;

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error(
        "the rootfs is a {kind:?} mount, which Spore reads no image file from; \
         use containerd's overlayfs (the default) or native snapshotter for Spore's runtime"
    )]
    UnsupportedMount { kind: String },
    #[error("the rootfs's overlay mount names no lowerdir or upperdir")]
    NoLayers,
    #[error("cannot read {path} from the image: {source}")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// The image's files as directories, the top one first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rootfs {
    layers: Vec<PathBuf>,
}

impl Rootfs {
    /// The directories behind containerd's rootfs mounts: `bind` gives its source, `overlay`
    /// its `upperdir` and then each `lowerdir` (already top first); no mount means the bundle's
    /// rootfs directory as containerd prepared it. A later mount at the same target hides the
    /// earlier ones, so only the last counts.
    pub fn from_mounts(mounts: &[Mount], bundle_rootfs: &Path) -> Result<Self, RootfsError> {
        let Some(mount) = mounts.last() else {
            return Ok(Self { layers: vec![bundle_rootfs.to_path_buf()] });
        };
        let is_bind = mount.type_ == "bind" || mount.options.iter().any(|o| o == "bind" || o == "rbind");
        if is_bind {
            return Ok(Self { layers: vec![PathBuf::from(&mount.source)] });
        }
        if mount.type_ != "overlay" {
            return Err(RootfsError::UnsupportedMount { kind: mount.type_.clone() });
        }
        let option = |key: &str| mount.options.iter().find_map(|o| o.strip_prefix(key)?.strip_prefix('='));
        let upper = option("upperdir").map(PathBuf::from);
        let lower =
            option("lowerdir").into_iter().flat_map(|l| l.split(':')).filter(|l| !l.is_empty()).map(PathBuf::from);
        let layers: Vec<PathBuf> = upper.into_iter().chain(lower).collect();
        if layers.is_empty() {
            return Err(RootfsError::NoLayers);
        }
        Ok(Self { layers })
    }

    /// The bytes of the regular file at `path` in the image; `Ok(None)` when there is none
    /// (missing, deleted by a whiteout, or a directory). Symbolic links resolve inside the
    /// image, never on the host.
    pub fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, RootfsError> {
        let read_error = |source| RootfsError::Read { path: path.display().to_string(), source };
        match self.lookup(path).map_err(read_error)? {
            Some(host) => std::fs::read(host).map(Some).map_err(read_error),
            None => Ok(None),
        }
    }

    /// The host path of the file `path` names in the merged image.
    fn lookup(&self, path: &Path) -> io::Result<Option<PathBuf>> {
        let mut pending: Vec<OsString> = components(path);
        // The directories walked so far, each with the layers in which it is a live directory.
        let mut walked: Vec<(OsString, Vec<&Path>)> = Vec::new();
        let all: Vec<&Path> = self.layers.iter().map(PathBuf::as_path).collect();
        let mut links = 0;
        while let Some(name) = pending.pop() {
            if name == ".." {
                walked.pop();
                continue;
            }
            let relative: PathBuf = walked.iter().map(|(n, _)| n.as_os_str()).chain([name.as_os_str()]).collect();
            let layers = walked.last().map_or(&all, |(_, layers)| layers);
            match entry(layers, &relative)? {
                Entry::Missing => return Ok(None),
                Entry::Directory(layers) => walked.push((name, layers)),
                Entry::File(host) => return Ok(pending.is_empty().then_some(host)),
                Entry::Symlink(target) => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(io::Error::from_raw_os_error(nix::errno::Errno::ELOOP as i32));
                    }
                    if target.is_absolute() {
                        walked.clear();
                    }
                    pending.extend(components(&target));
                }
            }
        }
        Ok(None)
    }
}

/// The path's names, last first (a stack to pop), with `.` and the root left out.
fn components(path: &Path) -> Vec<OsString> {
    let mut names: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_os_string()),
            Component::ParentDir => Some("..".into()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    names.reverse();
    names
}

/// What one name is in the merged view of `layers` (the layers of its parent directory).
#[derive(Debug)]
enum Entry<'a> {
    Missing,
    /// The layers, top first, in which it is a directory that merges.
    Directory(Vec<&'a Path>),
    File(PathBuf),
    Symlink(PathBuf),
}

fn entry<'a>(layers: &[&'a Path], relative: &Path) -> io::Result<Entry<'a>> {
    for (i, layer) in layers.iter().enumerate() {
        let host = layer.join(relative);
        let meta = match std::fs::symlink_metadata(&host) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let kind = meta.file_type();
        if is_whiteout(&meta) {
            return Ok(Entry::Missing);
        }
        if kind.is_symlink() {
            return std::fs::read_link(&host).map(Entry::Symlink);
        }
        if !kind.is_dir() {
            return Ok(if kind.is_file() { Entry::File(host) } else { Entry::Missing });
        }
        // A directory merges with the same directory below, down to a layer where the
        // name is something else (or deleted), which the directory hides.
        let mut merged = vec![*layer];
        for below in &layers[i + 1..] {
            match std::fs::symlink_metadata(below.join(relative)) {
                Ok(meta) if meta.is_dir() => merged.push(below),
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        return Ok(Entry::Directory(merged));
    }
    Ok(Entry::Missing)
}

/// overlayfs marks a name deleted in an upper layer with a 0/0 character device.
fn is_whiteout(meta: &std::fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// A shim of an earlier Spore mounted the rootfs at `bundle/rootfs`; `delete` for such a
/// shim (one that died after an upgrade) unmounts what it left. Nothing to do otherwise.
pub fn unmount_legacy(bundle: &Path) {
    let target = bundle.join("rootfs");
    let detach = nix::mount::MntFlags::MNT_DETACH.bits();
    if let Err(err) = containerd_shim::mount::umount_recursive(target.to_str(), detach) {
        log::warn!("unmounting {}: {err}", target.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::stat::{Mode, SFlag, mknod};

    fn mount(kind: &str, source: &str, options: &[&str]) -> Mount {
        Mount {
            type_: kind.into(),
            source: source.into(),
            options: options.iter().map(|o| o.to_string()).collect(),
            ..Default::default()
        }
    }

    fn layers(paths: &[&str]) -> Rootfs {
        Rootfs { layers: paths.iter().map(PathBuf::from).collect() }
    }

    #[test]
    fn the_layers_come_from_containerds_mount_description() {
        let bundle = Path::new("/b/rootfs");
        let overlay = |options: &[&str]| vec![mount("overlay", "overlay", options)];
        let cases: [(&str, Vec<Mount>, Result<Rootfs, &str>); 8] = [
            ("no mount: the bundle's rootfs", vec![], Ok(layers(&["/b/rootfs"]))),
            ("native snapshotter", vec![mount("bind", "/s/1/fs", &["rbind", "rw"])], Ok(layers(&["/s/1/fs"]))),
            ("a read-only view", vec![mount("none", "/s/1/fs", &["ro", "rbind"])], Ok(layers(&["/s/1/fs"]))),
            (
                "overlay: upper, then lowers top first",
                overlay(&["index=off", "workdir=/s/3/work", "upperdir=/s/3/fs", "lowerdir=/s/2/fs:/s/1/fs"]),
                Ok(layers(&["/s/3/fs", "/s/2/fs", "/s/1/fs"])),
            ),
            (
                "a read-only overlay view",
                overlay(&["ro", "lowerdir=/s/2/fs:/s/1/fs"]),
                Ok(layers(&["/s/2/fs", "/s/1/fs"])),
            ),
            (
                "the last mount wins",
                vec![mount("bind", "/old", &["rbind"]), mount("bind", "/new", &["rbind"])],
                Ok(layers(&["/new"])),
            ),
            ("an overlay without layers", overlay(&["ro"]), Err("names no lowerdir or upperdir")),
            (
                "another snapshotter",
                vec![mount("ext4", "/dev/mapper/snap-1", &[])],
                Err("a \"ext4\" mount, which Spore reads no image file from; use containerd's overlayfs"),
            ),
        ];
        for (name, mounts, expected) in cases {
            let got = Rootfs::from_mounts(&mounts, bundle).map_err(|e| e.to_string());
            match (got, expected) {
                (Ok(got), Ok(expected)) => assert_eq!(got, expected, "{name}"),
                (Err(err), Err(expected)) => assert!(err.contains(expected), "{name}: {err}"),
                (got, expected) => panic!("{name}: got {got:?}, expected {expected:?}"),
            }
        }
    }

    /// Three layers, top first: `upper`, `mid`, `base`.
    fn image() -> (tempfile::TempDir, Rootfs) {
        let dir = tempfile::tempdir().unwrap();
        let [upper, mid, base] = ["upper", "mid", "base"].map(|l| dir.path().join(l));
        let file = |layer: &Path, path: &str, text: &str| {
            let path = layer.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        let whiteout = |layer: &Path, path: &str| {
            let path = layer.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            mknod(&path, SFlag::S_IFCHR, Mode::empty(), 0).unwrap();
        };
        let link = |layer: &Path, path: &str, target: &str| {
            let path = layer.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(target, path).unwrap();
        };
        file(&base, "app.wasm", "base app");
        file(&mid, "app.wasm", "mid app");
        file(&base, "only-base.wasm", "base only");
        file(&base, "deleted.wasm", "deleted");
        whiteout(&upper, "deleted.wasm");
        file(&base, "gone/app.wasm", "in a deleted dir");
        whiteout(&mid, "gone");
        file(&base, "opt/lib/app.wasm", "deep");
        file(&upper, "opt/other", "merges with base's opt");
        link(&mid, "current", "opt/lib");
        link(&upper, "abs.wasm", "/opt/lib/app.wasm");
        link(&upper, "up.wasm", "../../opt/./lib/../lib/app.wasm");
        link(&upper, "escape.wasm", "/etc/hostname");
        link(&upper, "loop.wasm", "loop.wasm");
        file(&mid, "hidden/app.wasm", "under a file");
        file(&upper, "hidden", "a file now");
        file(&base, "shadowed/app.wasm", "below a file");
        file(&mid, "shadowed", "a file in the middle");
        std::fs::create_dir_all(upper.join("shadowed")).unwrap();
        let rootfs = Rootfs { layers: vec![upper, mid, base] };
        (dir, rootfs)
    }

    #[test]
    fn the_entrypoint_is_read_as_overlayfs_would_show_it() {
        let (_dir, rootfs) = image();
        let cases: [(&str, Option<&str>); 13] = [
            ("/app.wasm", Some("mid app")),
            ("/only-base.wasm", Some("base only")),
            ("/deleted.wasm", None),
            ("/gone/app.wasm", None),
            ("/opt/lib/app.wasm", Some("deep")),
            ("/current/app.wasm", Some("deep")),
            ("/abs.wasm", Some("deep")),
            ("/up.wasm", Some("deep")),
            ("/escape.wasm", None),
            ("/hidden/app.wasm", None),
            ("/shadowed/app.wasm", None),
            ("/opt", None),
            ("/missing.wasm", None),
        ];
        for (path, expected) in cases {
            let got = rootfs.read(Path::new(path)).unwrap();
            assert_eq!(got.as_deref(), expected.map(str::as_bytes), "{path}");
        }
        let err = rootfs.read(Path::new("/loop.wasm")).unwrap_err().to_string();
        assert!(err.starts_with("cannot read /loop.wasm from the image: "), "{err}");
    }
}
