//! Resource limits of one app instance, and their parsed forms.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use crate::quantity;
use crate::units::{self, UnitError};

/// The smallest memory limit: one Wasm page. A guest's linear memory grows in pages.
pub const WASM_PAGE: u64 = 64 * 1024;

/// The CEL form of the duration grammar ([`units::parse_duration`]).
pub(crate) const DURATION_PATTERN: &str = "^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$";

/// Per-instance limits. Unset means the runtime default (see each field).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("!has(self.maxConcurrency) || self.maxConcurrency >= 1")
        .message(Message::Expression("'maxConcurrency %d is below 1; set at least 1, or remove it for the default of 100'.format([self.maxConcurrency])".into()))
        .field_path(".maxConcurrency"),
    validation = Rule::new("!has(self.memory) || isQuantity(string(self.memory))")
        .message(Message::Expression("'memory ' + string(self.memory) + ' is not a Kubernetes quantity such as 64Mi or 1Gi'".into()))
        .field_path(".memory"),
    validation = Rule::new("!has(self.memory) || !isQuantity(string(self.memory)) || !quantity(string(self.memory)).isLessThan(quantity('0'))")
        .message(Message::Expression("'memory limit ' + string(self.memory) + ' is negative; use e.g. 64Mi'".into()))
        .field_path(".memory"),
    validation = Rule::new("!has(self.memory) || !isQuantity(string(self.memory)) || quantity(string(self.memory)).isLessThan(quantity('0')) || !quantity(string(self.memory)).isLessThan(quantity('64Ki'))")
        .message(Message::Expression("'memory limit ' + string(self.memory) + ' is below one Wasm page (64Ki), the least a guest can have; use e.g. 64Mi'".into()))
        .field_path(".memory"),
    validation = Rule::new("!has(self.cpu) || isQuantity(string(self.cpu))")
        .message(Message::Expression("'cpu ' + string(self.cpu) + ' is not a Kubernetes quantity such as 500m or 2'".into()))
        .field_path(".cpu"),
    validation = Rule::new("!has(self.cpu) || !isQuantity(string(self.cpu)) || quantity(string(self.cpu)).isGreaterThan(quantity('0'))")
        .message(Message::Expression("'cpu limit ' + string(self.cpu) + ' is not above zero; use e.g. 500m'".into()))
        .field_path(".cpu"),
    validation = Rule::new("!has(self.instanceReuse) || self.instanceReuse.maxRequests >= 1")
        .message(Message::Expression("'instanceReuse.maxRequests %d is below 1; set at least 2 to reuse instances, or remove instanceReuse for a fresh instance per request'.format([self.instanceReuse.maxRequests])".into()))
        .field_path(".instanceReuse.maxRequests"),
    validation = Rule::new("!has(self.instanceReuse) || !has(self.instanceReuse.maxConcurrent) || self.instanceReuse.maxConcurrent >= 1")
        .message(Message::Expression("'instanceReuse.maxConcurrent %d is below 1; set at least 1, or remove it for one request at a time'.format([self.instanceReuse.maxConcurrent])".into()))
        .field_path(".instanceReuse.maxConcurrent"),
    validation = Rule::new(format!("!has(self.timeout) || self.timeout.matches('{DURATION_PATTERN}')"))
        .message(Message::Expression("'timeout ' + self.timeout + ' is not a duration such as 30s, 500ms, 2m or 1h30m'".into()))
        .field_path(".timeout"),
    validation = Rule::new(format!("!has(self.timeout) || !self.timeout.matches('{DURATION_PATTERN}') || duration(self.timeout) > duration('0s')"))
        .message(Message::Expression("'timeout ' + self.timeout + ' is not above zero; use e.g. 30s, or remove it for no deadline'".into()))
        .field_path(".timeout"),
)]
pub struct Limits {
    /// Linear memory cap per instance, a Kubernetes quantity (`64Mi`, or an integer number of
    /// bytes) of at least one Wasm page (64Ki). Growth beyond it fails inside the guest.
    /// Unset: the pod's memory limit, else 4Gi (wasm32's maximum).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "quantity::deserialize_optional")]
    #[schemars(schema_with = "quantity::schema")]
    pub memory: Option<Quantity>,
    /// Wall-clock deadline per run (commands) or per request (HTTP components), a duration
    /// above zero such as `30s`, `500ms` or `2m`. Unset: no deadline for commands, 60s per request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub timeout: Option<String>,
    /// Most HTTP requests one pod serves at once; more get 503. Unset: 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<i32>,
    /// Serve several requests from one instance: WASI 0.3 HTTP services (`wasi:http/service`)
    /// only. Unset: a fresh instance per request, the strongest isolation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_reuse: Option<InstanceReuse>,
    /// CPU limit of the pod, a Kubernetes quantity above zero (`500m`, `2`).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "quantity::deserialize_optional")]
    #[schemars(schema_with = "quantity::schema")]
    pub cpu: Option<Quantity>,
}

/// Instance reuse of a WASI 0.3 HTTP service. Trade-off: requests served by one instance
/// share its memory, so whatever one request leaves behind (globals, caches, a secret it
/// read) is visible to the next, a request that fills memory fails the others, and a trap
/// fails every request in flight on that instance. In return a request skips instantiation
/// and the guest keeps warm caches. `limits.memory` caps each instance, `limits.timeout`
/// each request; an instance idle for 10s is dropped.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstanceReuse {
    /// Requests one instance serves in its life, at least 1; then a fresh one replaces it.
    pub max_requests: i32,
    /// Requests one instance serves at once, at least 1 (more run in other instances).
    /// Unset: 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<i32>,
}

impl Limits {
    /// `memory` in bytes.
    pub fn memory_bytes(&self) -> Result<Option<u64>, UnitError> {
        self.memory.as_ref().map(|q| units::parse_bytes(&q.0)).transpose()
    }

    /// `cpu` in millicores.
    pub fn cpu_millis(&self) -> Result<Option<u64>, UnitError> {
        self.cpu.as_ref().map(|q| units::parse_millicores(&q.0)).transpose()
    }

    /// `timeout` as a duration.
    pub fn timeout(&self) -> Result<Option<Duration>, UnitError> {
        self.timeout.as_deref().map(units::parse_duration).transpose()
    }
}
