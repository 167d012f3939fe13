//! Resource limits of one app instance, and their parsed forms.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use crate::units::{self, UnitError};

/// Per-instance limits. Unset means the runtime default (see each field).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("!has(self.maxConcurrency) || self.maxConcurrency >= 1").message("maxConcurrency must be at least 1"),
    validation = Rule::new("!has(self.memory) || isQuantity(string(self.memory))").message("memory must be a Kubernetes quantity such as 64Mi or 1Gi"),
    validation = Rule::new("!has(self.cpu) || isQuantity(string(self.cpu))").message("cpu must be a Kubernetes quantity such as 500m or 2"),
    validation = Rule::new("!has(self.timeout) || self.timeout.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$')").message("timeout must be a duration such as 30s, 500ms, 2m or 1h30m"),
)]
pub struct Limits {
    /// Linear memory cap per instance, as a Kubernetes quantity (`64Mi`). Growth beyond it
    /// fails inside the guest. Unset: the pod's memory limit, else 4Gi (wasm32's maximum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Quantity>,
    /// Wall-clock deadline per run (commands) or per request (HTTP components), as a
    /// duration such as `30s`, `500ms` or `2m`. Unset: no deadline for commands, 60s per request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Most HTTP requests one pod serves at once; more get 503. Unset: 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<i32>,
    /// CPU limit of the pod, as a Kubernetes quantity (`500m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Quantity>,
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
