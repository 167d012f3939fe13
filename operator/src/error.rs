//! The operator's one error type. Reconcilers return it; `error_policy` turns it into a
//! backoff, a metric label and (where the user can act) a condition and an Event.

/// Everything a reconcile can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("{action}: {}", api_message(source))]
    Kube {
        action: String,
        #[source]
        source: kube::Error,
    },
    /// The object lacks something every stored object has (name, namespace, uid).
    #[error("{kind} has no {field}")]
    MissingField { kind: &'static str, field: &'static str },
    /// A value could not be encoded (a pod annotation's JSON).
    #[error("encoding {what}: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// Adding or removing the WasmRuntime's finalizer, or its cleanup, failed.
    #[error("{0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// Uninstalling the runtime from the nodes has not finished yet; retried.
    #[error("uninstall pending: {0}")]
    UninstallPending(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The apiserver's own message for API errors (kube's Display adds the whole Status).
fn api_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => format!("{} ({})", status.message, status.reason),
        other => other.to_string(),
    }
}

impl Error {
    /// A short label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Kube { source: kube::Error::Api(status), .. } if status.code == 409 => "Conflict",
            Self::Kube { source: kube::Error::Api(status), .. } if status.code == 403 => "Forbidden",
            Self::Kube { source: kube::Error::Api(_), .. } => "ApiError",
            Self::Kube { .. } => "ApiUnavailable",
            Self::MissingField { .. } => "MissingField",
            Self::Encode { .. } => "Encode",
            Self::Finalizer(_) => "Finalizer",
            Self::UninstallPending(_) => "UninstallPending",
        }
    }
}

/// Wraps a kube error with what was being done: `kube_err("apply Deployment ns/app")`.
pub fn kube_err(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let action = action.into();
    move |source| Error::Kube { action, source }
}

/// Logs one reconcile's outcome as the controller stream reports it: objects deleted before
/// their turn are normal (debug), anything else failed (warn).
pub fn log_outcome<T, E: std::fmt::Display>(
    controller: &str,
    result: &Result<T, kube::runtime::controller::Error<E, kube::runtime::watcher::Error>>,
) {
    match result {
        Err(kube::runtime::controller::Error::ObjectNotFound(obj)) => {
            tracing::debug!(controller, object = %obj, "deleted before its reconcile")
        }
        Err(e) => tracing::warn!(controller, error = %e, "reconcile failed"),
        Ok(_) => {}
    }
}
