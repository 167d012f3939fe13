//! The activator's one error type: what can fail outside a single request (binding a
//! listener, talking to the Kubernetes API). A request's own failures are answers (404, 503,
//! 502), not errors.

use std::net::SocketAddr;

/// Everything the activator can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// Some other local I/O failed (installing the signal handler).
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A Kubernetes API call failed.
    #[error("{action}: {}", api_message(source))]
    Kube {
        action: String,
        #[source]
        source: kube::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The apiserver's own message for API errors (kube's Display adds the whole Status).
fn api_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => format!("{} ({})", status.message, status.reason),
        other => other.to_string(),
    }
}

/// Wraps a kube error with what was being done: `kube_err("scale apps/hello to 1")`.
pub fn kube_err(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let action = action.into();
    move |source| Error::Kube { action, source }
}
