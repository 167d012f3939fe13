//! Spore's Kubernetes API (`spore.dev/v1alpha1`): the `WasmApp` and `WasmRuntime` custom
//! resources, their validation, and the CRD YAML generated from them.

pub mod app;
pub mod batch;
pub mod capabilities;
#[cfg(any(test, feature = "test-cases"))]
pub mod cases;
pub mod composition;
pub mod crd;
pub mod host_pattern;
pub mod limits;
pub mod quantity;
pub mod runtime;
pub mod units;
pub mod validate;

#[cfg(any(test, feature = "test-cases"))]
pub mod fixtures;

pub use app::{
    Autoscale, EnvVar, EnvVarSource, HealthChecks, HttpCheck, ModuleSource, Scaling, Scheduling, Volume,
    VolumeSourceKind, WasmApp, WasmAppSpec, WasmAppStatus,
};
pub use batch::{ConcurrencyPolicy, CronJobSettings, DEFAULT_BACKOFF_LIMIT, JobSettings, LastRun, RunMode};
pub use capabilities::{Capabilities, FilesystemMount, InboundPort, Network, Outbound, Protocol, SocketRule};
pub use composition::{COMPOSITION_ANNOTATION, Component, ComponentCapabilities, Wiring};
pub use crd::{crd_yaml, wasmapp_crd, wasmruntime_crd};
pub use host_pattern::HostPattern;
pub use limits::Limits;
pub use runtime::{ContainerdConfig, NodeStatus, Rollout, ShimSource, WasmRuntime, WasmRuntimeSpec, WasmRuntimeStatus};
pub use validate::{ManifestError, ValidationError, ValidationErrors, parse_manifest};

/// The API group of every Spore resource.
pub const GROUP: &str = "spore.dev";
/// The API version of every Spore resource, `spore.dev/v1alpha1`.
pub const API_VERSION: &str = "spore.dev/v1alpha1";
