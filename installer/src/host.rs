//! Host paths seen from inside the installer's container, where the host's `/` is mounted at
//! the host root (`/host`).

use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct HostRoot(PathBuf);

impl HostRoot {
    pub fn new(root: impl Into<PathBuf>) -> HostRoot {
        HostRoot(root.into())
    }

    pub fn root(&self) -> &Path {
        &self.0
    }

    /// Where the host's absolute path `host_path` is visible to the installer.
    pub fn path(&self, host_path: &Path) -> PathBuf {
        self.0.join(host_path.strip_prefix("/").unwrap_or(host_path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_host_paths_under_the_root() {
        let host = HostRoot::new("/host");
        assert_eq!(host.path(Path::new("/etc/containerd/config.toml")), Path::new("/host/etc/containerd/config.toml"));
        assert_eq!(HostRoot::new("/").path(Path::new("/run/c.sock")), Path::new("/run/c.sock"));
    }
}
