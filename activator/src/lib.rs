//! Spore's activator: the scale-to-zero front door of HTTP WasmApps.
//!
//! While an app has no ready pod, the operator points the app's Service at the activator
//! pods. Each request is routed by its Host header ([`host`], [`index::Index::resolve`]) to
//! an app, then ([`proxy::Activator`]):
//!
//! - if the app has a backend (a pod that is Ready, or that answered the activator's own
//!   probe), it is forwarded at once to the one with the fewest requests in flight, streamed
//!   both ways ([`forward`]);
//! - otherwise it is held: counted in a bounded per-app queue (`--max-held-per-app`, then
//!   503), the app is woken once (its WasmApp's scale patched from 0 to 1, [`wake`],
//!   [`cluster::KubeWaker`]), its pods are probed straight at their IPs every
//!   `--probe-interval` ([`probe`]), and the request waits on the app's watch channel until
//!   a backend appears or `--hold-timeout` passes (503 saying why, from the WasmApp's
//!   conditions or its pods, [`app::timeout_message`]).
//!
//! A connect failure puts the pod back to probing and the request goes to another backend
//! or back to waiting. State comes from watches of WasmApps and of the Services and pods
//! labelled `spore.dev/app` ([`cluster`]), translated into the plain in-memory
//! [`index::Index`] the request path works on, so everything but the watches runs in tests
//! without a cluster: fill the index with [`index::Change`]s through
//! [`proxy::Activator::update`], give it a fake [`wake::AppWaker`], serve it with
//! [`proxy::serve`]. Metrics ([`metrics`]) and health are on the admin listener ([`admin`]).
//!
//! A pod need not wait for kubelet to write its IP into its status (at the next relist, up
//! to a second after it started): its shim announces it the moment the guest serves
//! (`POST /v1/announce` on the admin listener, [`announce`]), the activator takes the
//! connection's source address as the pod's, probes it at once and forwards held requests.
//! The replica the announcement reached relays it to the others ([`relay`]).

pub mod admin;
pub mod announce;
pub mod app;
pub mod cluster;
pub mod error;
pub mod forward;
pub mod host;
pub mod index;
pub mod metrics;
pub mod probe;
pub mod proxy;
pub mod relay;
pub mod run;
pub mod settings;
pub mod wake;

#[cfg(test)]
mod fixtures;

pub use error::{Error, Result};
pub use index::{AppInfo, AppKey, Change, ConditionInfo, Index, PodInfo, PortInfo, ServiceInfo};
pub use proxy::{Activator, serve};
pub use settings::Settings;
pub use wake::{AppWaker, WakeFuture, Woke};
