//! The installer's one error type. Every message names what failed and, where there is one,
//! the fix: `main` prints it as the pod's termination message.

use std::path::PathBuf;
use std::time::Duration;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid {what} {name:?}: {reason}")]
    InvalidName { what: &'static str, name: String, reason: String },

    #[error("failed to {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("containerd config {} is not valid TOML: {source}", path.display())]
    ParseConfig {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },

    #[error("containerd config {} is invalid: {reason}", path.display())]
    InvalidConfig { path: PathBuf, reason: String },

    #[error(
        "containerd config {} has {found}; Spore supports version 2 (containerd 1.6/1.7) and version 3 \
         (containerd 2.x): on containerd 2.x convert it with `containerd config migrate`, on 1.x rewrite it \
         in the version 2 layout (`containerd config default` prints one)",
        path.display()
    )]
    UnsupportedVersion { path: PathBuf, found: String },

    #[error(
        "containerd config {} imports no drop-in directory; add imports = [\"{}/conf.d/*.toml\"] to it and \
         restart containerd (Spore never edits the main config)",
        path.display(),
        path.parent().unwrap_or(std::path::Path::new("/etc/containerd")).display()
    )]
    NoDropInDir { path: PathBuf },

    #[error(
        "containerd config {} imports the relative glob {import:?}: containerd 1.6 resolves it against its \
         working directory, 2.x and recent 1.7 against the config's directory (containerd#9745); make it absolute, \
         e.g. \"{}\", and restart containerd",
        path.display(),
        path.parent().unwrap_or(std::path::Path::new("/")).join(import).display()
    )]
    RelativeDropInGlob { path: PathBuf, import: String },

    #[error(
        "{} configures plugins.\"{plugin}\" and is imported after {}: containerd 1.x keeps only the last \
         imported section of a plugin, so it would hide the Spore runtime; move its settings into the main \
         config or a drop-in that sorts before {}",
        later.display(),
        ours.display(),
        ours.display()
    )]
    CriSectionOverridden { plugin: &'static str, later: PathBuf, ours: PathBuf },

    #[error(
        "{} already registers another Spore runtime handler: with a version 2 config (containerd 1.x) the last \
         imported CRI section replaces all others, so Spore registers one handler per containerd there; \
         uninstall that runtime first, or move the node to containerd 2.x with a version 3 config",
        other.display()
    )]
    OneHandlerOnContainerd1 { other: PathBuf },

    #[error("no containerd process runs with config {}; is containerd running on this node, and is --config-path right?", config.display())]
    ContainerdNotFound { config: PathBuf },

    #[error("several containerd processes run with config {} (pids {pids:?}); cannot tell which one to restart", config.display())]
    ContainerdAmbiguous { config: PathBuf, pids: Vec<u32> },

    #[error("`systemctl restart {unit}` on the host failed: {detail}")]
    SystemctlFailed { unit: String, detail: String },

    #[error("failed to send SIGTERM to containerd (pid {pid}): {source}")]
    Signal {
        pid: u32,
        #[source]
        source: nix::Error,
    },

    #[error(
        "containerd (pid {pid}) did not come back after SIGTERM within {}s; run it under a supervisor \
         (systemd, or a restart loop) or set containerd.restart=false",
        timeout.as_secs()
    )]
    NotRestarted { pid: u32, timeout: Duration },

    #[error("containerd does not answer on {} within {}s after its restart", socket.display(), timeout.as_secs())]
    SocketTimeout { socket: PathBuf, timeout: Duration },

    #[error("verification failed: {detail}")]
    Verify { detail: String },

    #[error("{failure}; {}", rollback_outcome(.restore_error, .restart_error))]
    RolledBack { failure: Box<Error>, restore_error: Option<Box<Error>>, restart_error: Option<Box<Error>> },

    #[error("failed to {action} Node {node}: {source}")]
    Kube {
        action: &'static str,
        node: String,
        #[source]
        source: Box<kube::Error>,
    },

    #[error("no Kubernetes client configuration (in-cluster service account or kubeconfig): {source}")]
    KubeConfig {
        #[source]
        source: Box<kube::config::InferConfigError>,
    },

    #[error("failed to start the Kubernetes client's async runtime: {0}")]
    AsyncRuntime(#[source] std::io::Error),

    #[error("failed to wait for SIGTERM: {source}")]
    WaitSignal {
        #[source]
        source: nix::Error,
    },

    #[error("failed to run {command:?} in {}: {source}", dir.display())]
    ChrootExec {
        dir: PathBuf,
        command: String,
        #[source]
        source: std::io::Error,
    },
}

fn rollback_outcome(restore_error: &Option<Box<Error>>, restart_error: &Option<Box<Error>>) -> String {
    match (restore_error, restart_error) {
        (None, None) => "the node was rolled back to its previous shim and containerd drop-in".into(),
        (None, Some(e)) => {
            format!("the previous shim and containerd drop-in are back, but restarting containerd on them failed: {e}")
        }
        (Some(e), _) => format!("rolling back failed too ({e}): check the shim, the drop-in and containerd by hand"),
    }
}

impl Error {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { action, path, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verify_failed() -> Box<Error> {
        Box::new(Error::Verify { detail: "no handler".into() })
    }

    #[test]
    fn rollback_messages_say_what_was_restored() {
        let not_found = || Some(Box::new(Error::ContainerdNotFound { config: "/c.toml".into() }));
        let clean = Error::RolledBack { failure: verify_failed(), restore_error: None, restart_error: None };
        assert_eq!(
            clean.to_string(),
            "verification failed: no handler; the node was rolled back to its previous shim and containerd drop-in"
        );
        let restart = Error::RolledBack { failure: verify_failed(), restore_error: None, restart_error: not_found() };
        assert!(restart.to_string().contains("are back, but restarting containerd on them failed: no containerd"));
        let restore = Error::RolledBack { failure: verify_failed(), restore_error: not_found(), restart_error: None };
        assert!(restore.to_string().contains("rolling back failed too"));
    }
}
