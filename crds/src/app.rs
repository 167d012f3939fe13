//! The `WasmApp` custom resource: one Wasm module or component, run as a set of pods by
//! Spore's runtime class, with exactly the capabilities it declares.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, ConfigMapKeySelector, ConfigMapVolumeSource, EmptyDirVolumeSource, HostPathVolumeSource,
    LocalObjectReference, PersistentVolumeClaimVolumeSource, SecretKeySelector, SecretVolumeSource, Toleration,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::ValidationRule;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::batch::{CronJobSettings, JobSettings, LastRun};
use crate::capabilities::Capabilities;
use crate::composition::Component;
use crate::limits::{DURATION_PATTERN, Limits};

/// Most entries in `spec.volumes` (bounds the cost of the CEL rules that search it).
pub const MAX_VOLUMES: usize = 64;
/// Most entries in `spec.env`.
pub const MAX_ENV: usize = 256;
/// Longest `healthChecks.*.path`.
pub const MAX_HEALTH_CHECK_PATH_LEN: usize = 1024;
/// Longest `spec.env[].name` (bounds the cost of the CEL rule that checks it).
pub const MAX_ENV_NAME_LEN: usize = 256;
/// An environment variable name: a C identifier. Stricter than Kubernetes (any printable
/// ASCII but `=`), because guests read names with `getenv` and shells cannot set others.
pub const ENV_NAME: &str = "^[A-Za-z_][A-Za-z0-9_]*$";
/// What a name that breaks [`ENV_NAME`] is told.
pub const ENV_NAME_RULE: &str = "is not a C identifier; use letters, digits and _, not starting with a digit (guests read it with getenv), e.g. LOG_LEVEL";
/// A DNS-1123 label (volume names, RuntimeClass names).
pub const DNS1123_LABEL: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/// A DNS-1123 subdomain (ServiceAccount, ConfigMap and Secret names).
pub const DNS1123_SUBDOMAIN: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// A DNS-1035 label: what `metadata.name` must be, since it names the app's Service and
/// labels its pods.
pub const DNS1035_LABEL: &str = "^[a-z]([-a-z0-9]*[a-z0-9])?$";
/// Longest `metadata.name` of a `cronJob` app: Kubernetes adds 11 characters to a CronJob's
/// name for each run's Job.
pub const MAX_CRON_JOB_APP_NAME: usize = 52;

/// Desired state of a Wasm app: which module to run, with which arguments, environment,
/// capabilities and limits, and how many instances.
// Every `printcolumn(...)` repeats `type_ = "string"`, which clippy takes for a duplicate.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "spore.dev",
    version = "v1alpha1",
    kind = "WasmApp",
    namespaced,
    shortname = "wapp",
    category = "spore",
    status = "WasmAppStatus",
    derive = "PartialEq",
    doc = "A WebAssembly module or component run by Spore, with the capabilities it declares and nothing more.",
    scale(
        spec_replicas_path = ".spec.scaling.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(name = "Ready", type_ = "string", json_path = r#".status.conditions[?(@.type=="Ready")].status"#),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".status.replicas"),
    printcolumn(name = "Available", type_ = "integer", json_path = ".status.readyReplicas"),
    printcolumn(name = "Reason", type_ = "string", json_path = r#".status.conditions[?(@.type=="Ready")].reason"#),
    printcolumn(name = "Module", type_ = "string", json_path = ".spec.module.image"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new(
        "!has(self.capabilities) || !has(self.capabilities.filesystem) || self.capabilities.filesystem.all(m, has(self.volumes) && self.volumes.exists(v, v.name == m.volume))"
    ).message(Message::Expression(
        "'volume \"' + self.capabilities.filesystem.map(m, m.volume).filter(n, !(has(self.volumes) && self.volumes.exists(v, v.name == n)))[0] + '\" is not in spec.volumes; add a volume of that name or fix capabilities.filesystem[].volume'".into()
    )).field_path(".capabilities.filesystem"),
    validation = Rule::new(
        "!has(self.scaling) || !has(self.scaling.autoscale) || self.scaling.autoscale.minReplicas != 0 || (has(self.capabilities) && has(self.capabilities.network) && has(self.capabilities.network.inbound) && size(self.capabilities.network.inbound) == 1 && (!has(self.capabilities.network.inbound[0].protocol) || self.capabilities.network.inbound[0].protocol == 'TCP'))"
    ).message("scale to zero (minReplicas 0) needs exactly one TCP inbound port: the activator wakes the app on an HTTP request to it; a command app keeps minReplicas >= 1")
    .field_path(".scaling.autoscale.minReplicas"),
    validation = Rule::new("!(has(self.job) && has(self.cronJob))").message("set either job (run once to completion) or cronJob (run on a schedule), not both"),
    validation = Rule::new(
        "!(has(self.job) || has(self.cronJob)) || !has(self.scaling) || (!has(self.scaling.replicas) && !has(self.scaling.autoscale))"
    ).message("job and cronJob apps do not scale: remove spec.scaling (job.parallelism runs several pods at once)"),
    validation = Rule::new(
        "!(has(self.job) || has(self.cronJob)) || !has(self.capabilities) || !has(self.capabilities.network) || !has(self.capabilities.network.inbound) || size(self.capabilities.network.inbound) == 0"
    ).message("job and cronJob apps serve no traffic: remove capabilities.network.inbound, or remove job/cronJob to run the app as a Deployment"),
)]
pub struct WasmAppSpec {
    /// Where to get the Wasm module or component.
    pub module: ModuleSource,

    /// Arguments passed to the guest (`argv[1..]`); `argv[0]` is the app name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,

    /// Environment variables visible to the guest, each name once. The guest sees only these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_ENV), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub env: Vec<EnvVar>,

    /// What the app may touch: files, listening ports, outbound destinations. Everything
    /// not declared is denied.
    #[serde(default, skip_serializing_if = "is_default")]
    pub capabilities: Capabilities,

    /// Per-instance resource limits: memory, CPU, timeout, concurrency.
    #[serde(default, skip_serializing_if = "is_default")]
    pub limits: Limits,

    /// How many instances run: a fixed `replicas` count or an `autoscale` range. Neither
    /// means one replica.
    #[serde(default, skip_serializing_if = "is_default")]
    pub scaling: Scaling,

    /// Volumes the pods get; `capabilities.filesystem` chooses which ones the guest sees
    /// and where.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_VOLUMES), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub volumes: Vec<Volume>,

    /// Where the pods may run, in addition to the nodes that have the Spore runtime.
    #[serde(default, skip_serializing_if = "is_default")]
    pub scheduling: Scheduling,

    /// RuntimeClass of the pods: the `runtimeClassName` of a `WasmRuntime`. Unset: the
    /// operator's default (`spore`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 55), regex(pattern = DNS1123_LABEL))]
    pub runtime_class_name: Option<String>,

    /// Service account the pods run as, a DNS-1123 subdomain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS1123_SUBDOMAIN))]
    pub service_account_name: Option<String>,

    /// Secrets used to pull the module from a private registry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,

    /// HTTP readiness and liveness checks against the app's inbound port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_checks: Option<HealthChecks>,

    /// Annotations added to every pod of the app.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_annotations: BTreeMap<String, String>,

    /// Labels added to every pod of the app.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_labels: BTreeMap<String, String>,

    /// Run the module once to completion as a Job instead of a Deployment: for commands
    /// that exit. A changed spec runs a new Job; a finished run is not repeated. Not with
    /// `cronJob`, `scaling` or inbound ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobSettings>,

    /// Run the module on a schedule as a CronJob instead of a Deployment. Not with `job`,
    /// `scaling` or inbound ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron_job: Option<CronJobSettings>,

    /// Further Wasm components linked with the main one (`module`) into one app when the
    /// pod starts: libraries (listed in some component's `plugs`) and HTTP middleware
    /// (listed in `middleware`). Each gets only the env and capabilities of its own entry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = crate::composition::MAX_COMPONENTS), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub components: Vec<Component>,

    /// Components that wrap the HTTP handler, outermost first: a request passes through
    /// each in order before it reaches `module`, and the response comes back through them.
    /// Each imports and exports the handler interface `module` exports: WASI 0.3's
    /// `wasi:http/handler` (the `middleware` world: it may change the request and the
    /// response) or WASI 0.2's `wasi:http/incoming-handler` (it can only answer the
    /// request itself or forward it as it came).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = crate::composition::MAX_PLUGS), inner(length(max = crate::composition::MAX_COMPONENT_NAME_LEN)), extend("x-kubernetes-list-type" = "set"))]
    pub middleware: Vec<String>,
}

/// The CRD's rules on `metadata.name` (see [`crate::wasmapp_crd`]).
pub(crate) fn name_rules() -> Vec<ValidationRule> {
    let rule = |rule: String, message_expression: String| ValidationRule {
        rule,
        message_expression: Some(message_expression),
        field_path: Some(".metadata.name".into()),
        ..Default::default()
    };
    vec![
        rule(
            format!(
                "!has(self.metadata.name) || (size(self.metadata.name) <= 63 && self.metadata.name.matches('{DNS1035_LABEL}'))"
            ),
            format!("'metadata.name \"' + self.metadata.name + '\" {NAME_RULE}'"),
        ),
        rule(
            format!(
                "!has(self.metadata.name) || !has(self.spec.cronJob) || size(self.metadata.name) <= {MAX_CRON_JOB_APP_NAME}"
            ),
            format!(
                "'metadata.name \"%s\" has %d characters, but a cronJob app has at most {MAX_CRON_JOB_APP_NAME} (Kubernetes adds 11 for the Job of each run)'.format([self.metadata.name, size(self.metadata.name)])"
            ),
        ),
    ]
}

/// What a `metadata.name` that breaks [`DNS1035_LABEL`] is told.
pub const NAME_RULE: &str = "is not a DNS-1035 label; use at most 63 lowercase letters, digits and -, starting with a letter and ending with a letter or digit (the name is also the app Service name and a pod label)";

pub(crate) fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// Where the Wasm module or component comes from.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("!self.image.matches('[\\t\\n\\f\\r ]')")
    .message(Message::Expression("'image \"' + self.image + '\" contains whitespace; an OCI reference has none'".into()))
    .field_path(".image"))]
pub struct ModuleSource {
    /// OCI reference of the Wasm module or component, e.g.
    /// `ghcr.io/example/hello-http:1.0` or `localhost:5000/spore/hello-http:latest`.
    #[schemars(length(min = 1))]
    pub image: String,
    /// Components of `spec.components` whose exports satisfy this component's imports, as
    /// `wac plug` does: each export goes to the import of the same interface (and a
    /// compatible version). Spore links them when the pod starts; an import left unmet, met
    /// twice, or met with another type fails the app with `CompositionFailed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = crate::composition::MAX_PLUGS), inner(length(max = crate::composition::MAX_COMPONENT_NAME_LEN)), extend("x-kubernetes-list-type" = "set"))]
    pub plugs: Vec<String>,
}

/// One environment variable, with a literal value or a value read from a ConfigMap or
/// Secret.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("has(self.value) != has(self.valueFrom)").message("set exactly one of value or valueFrom"),
    validation = Rule::new(format!("self.name.matches('{ENV_NAME}')"))
        .message(Message::Expression(format!("'env name \"' + self.name + '\" {ENV_NAME_RULE}'")))
        .field_path(".name"),
)]
pub struct EnvVar {
    /// Variable name, a C identifier (`LOG_LEVEL`): letters, digits and `_`, not starting
    /// with a digit, as guests look it up with `getenv`.
    #[schemars(length(max = MAX_ENV_NAME_LEN))]
    pub name: String,
    /// Literal value. Exactly one of `value` and `valueFrom` must be set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Read the value from a ConfigMap or Secret key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<EnvVarSource>,
}

/// The source of an environment variable's value.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("has(self.configMapKeyRef) != has(self.secretKeyRef)").message("set exactly one of configMapKeyRef or secretKeyRef"),
    validation = Rule::new("!has(self.configMapKeyRef) || (has(self.configMapKeyRef.name) && self.configMapKeyRef.name != '' && self.configMapKeyRef.key != '')")
        .message("configMapKeyRef needs the name of a ConfigMap and one of its keys")
        .field_path(".configMapKeyRef"),
    validation = Rule::new("!has(self.secretKeyRef) || (has(self.secretKeyRef.name) && self.secretKeyRef.name != '' && self.secretKeyRef.key != '')")
        .message("secretKeyRef needs the name of a Secret and one of its keys")
        .field_path(".secretKeyRef"),
)]
pub struct EnvVarSource {
    /// A key of a ConfigMap in the app's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_key_ref: Option<ConfigMapKeySelector>,
    /// A key of a Secret in the app's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeySelector>,
}

/// Instance count: fixed, or autoscaled. `replicas` and `autoscale` are mutually
/// exclusive; with neither, one replica runs.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("!(has(self.replicas) && has(self.autoscale)) || has(self.autoscale.targetConcurrency)").message("set either replicas or autoscale with targetCpuUtilization, not both (with targetConcurrency, replicas is the autoscaler's current count)"),
    validation = Rule::new("!has(self.replicas) || self.replicas >= 0").message("replicas must be 0 or more"),
)]
pub struct Scaling {
    /// Fixed number of replicas. This is the field `kubectl scale` sets. With
    /// `autoscale.targetConcurrency`, Spore's autoscaler (and the activator, waking an app at
    /// zero) sets it through the scale subresource; it starts at `max(minReplicas, 1)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Scale between `minReplicas` and `maxReplicas` on one target metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscale: Option<Autoscale>,
}

impl Scaling {
    /// The replica count to run when not autoscaling (`replicas`, else 1).
    pub fn fixed_replicas(&self) -> i32 {
        self.replicas.unwrap_or(1)
    }

    /// The replicas the app's Deployment gets: fixed, or the concurrency autoscaler's current
    /// count within its range. `None`: an HPA owns the count (`targetCpuUtilization`).
    pub fn deployment_replicas(&self) -> Option<i32> {
        match &self.autoscale {
            None => Some(self.fixed_replicas()),
            Some(a) if a.target_concurrency.is_some() => {
                let min = a.min_replicas.max(0);
                let max = a.max_replicas.max(min);
                Some(self.replicas.unwrap_or(min.max(1)).clamp(min, max))
            }
            Some(_) => None,
        }
    }

    /// The autoscale settings when Spore's own autoscaler scales the app
    /// (`targetConcurrency`), not an HPA.
    pub fn concurrency_autoscale(&self) -> Option<&Autoscale> {
        self.autoscale.as_ref().filter(|a| a.target_concurrency.is_some())
    }

    /// The app may scale to zero: `minReplicas: 0` with `targetConcurrency`.
    pub fn scales_to_zero(&self) -> bool {
        self.concurrency_autoscale().is_some_and(|a| a.min_replicas == 0)
    }
}

/// Autoscaling range and target. Exactly one of `targetConcurrency` and
/// `targetCpuUtilization` must be set.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("self.minReplicas >= 0").message("minReplicas must be 0 or more"),
    validation = Rule::new("self.minReplicas >= 1 || has(self.targetConcurrency)").message("minReplicas 0 (scale to zero) needs targetConcurrency: a CPU autoscaler (an HPA) cannot wake an app at zero; set targetConcurrency or minReplicas >= 1"),
    validation = Rule::new("self.maxReplicas >= 1").message("maxReplicas must be at least 1"),
    validation = Rule::new(format!("!has(self.scaleToZeroAfter) || self.scaleToZeroAfter.matches('{DURATION_PATTERN}')"))
        .message(Message::Expression("'scaleToZeroAfter ' + self.scaleToZeroAfter + ' is not a duration such as 60s, 5m or 1h'".into()))
        .field_path(".scaleToZeroAfter"),
    validation = Rule::new(format!("!has(self.scaleToZeroAfter) || !self.scaleToZeroAfter.matches('{DURATION_PATTERN}') || duration(self.scaleToZeroAfter) > duration('0s')"))
        .message(Message::Expression("'scaleToZeroAfter ' + self.scaleToZeroAfter + ' is not above zero; use e.g. 60s'".into()))
        .field_path(".scaleToZeroAfter"),
    validation = Rule::new("!has(self.scaleToZeroAfter) || self.minReplicas == 0").message("scaleToZeroAfter applies only with minReplicas 0; remove it or set minReplicas: 0"),
    validation = Rule::new("self.minReplicas <= self.maxReplicas").message("minReplicas must not be greater than maxReplicas"),
    validation = Rule::new("has(self.targetConcurrency) != has(self.targetCpuUtilization)").message("set exactly one of targetConcurrency or targetCpuUtilization"),
    validation = Rule::new("!has(self.targetConcurrency) || self.targetConcurrency >= 1").message("targetConcurrency must be at least 1"),
    validation = Rule::new("!has(self.targetCpuUtilization) || self.targetCpuUtilization >= 1").message("targetCpuUtilization must be at least 1 (percent)"),
)]
pub struct Autoscale {
    /// Fewest replicas. Defaults to 1. 0 scales the app to zero after `scaleToZeroAfter`
    /// without requests; the activator wakes it on the next one (needs `targetConcurrency`
    /// and one TCP inbound port).
    #[serde(default = "default_min_replicas")]
    pub min_replicas: i32,
    /// Most replicas.
    pub max_replicas: i32,
    /// Scale so that each replica serves about this many concurrent requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_concurrency: Option<i32>,
    /// Scale so that average CPU use is about this percentage of the CPU limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_cpu_utilization: Option<i32>,
    /// With `minReplicas: 0`: how long the app must go without requests before its last pod
    /// goes, a duration above zero (`60s`, `5m`). Defaults to 60s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub scale_to_zero_after: Option<String>,
}

/// Idle time before an app with `minReplicas: 0` loses its last pod, unless it says otherwise.
pub const DEFAULT_SCALE_TO_ZERO_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

impl Autoscale {
    /// `scaleToZeroAfter` as a duration (default 60s).
    pub fn scale_to_zero_after(&self) -> Result<std::time::Duration, crate::units::UnitError> {
        self.scale_to_zero_after.as_deref().map_or(Ok(DEFAULT_SCALE_TO_ZERO_AFTER), crate::units::parse_duration)
    }
}

fn default_min_replicas() -> i32 {
    1
}

/// A volume of the app's pods. Exactly one source must be set.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new(
        "(has(self.configMap) ? 1 : 0) + (has(self.secret) ? 1 : 0) + (has(self.emptyDir) ? 1 : 0) + (has(self.persistentVolumeClaim) ? 1 : 0) + (has(self.hostPath) ? 1 : 0) == 1"
    ).message("set exactly one volume source: configMap, secret, emptyDir, persistentVolumeClaim or hostPath"),
)]
pub struct Volume {
    /// Volume name, a DNS-1123 label (`data`, `config-files`), unique within the app.
    /// `capabilities.filesystem[].volume` refers to it.
    #[schemars(length(min = 1, max = 63), regex(pattern = DNS1123_LABEL))]
    pub name: String,
    /// Files from a ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapVolumeSource>,
    /// Files from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretVolumeSource>,
    /// A scratch directory that lives as long as the pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_dir: Option<EmptyDirVolumeSource>,
    /// A PersistentVolumeClaim in the app's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim: Option<PersistentVolumeClaimVolumeSource>,
    /// A directory of the node. Use with care: the guest sees host files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<HostPathVolumeSource>,
}

/// The one source of a [`Volume`], for matching on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum VolumeSourceKind<'a> {
    /// `configMap`: files from a ConfigMap.
    ConfigMap(&'a ConfigMapVolumeSource),
    /// `secret`: files from a Secret.
    Secret(&'a SecretVolumeSource),
    /// `emptyDir`: a scratch directory.
    EmptyDir(&'a EmptyDirVolumeSource),
    /// `persistentVolumeClaim`: a claimed persistent volume.
    PersistentVolumeClaim(&'a PersistentVolumeClaimVolumeSource),
    /// `hostPath`: a directory of the node.
    HostPath(&'a HostPathVolumeSource),
}

impl VolumeSourceKind<'_> {
    /// The manifest field of this source: `configMap`, `secret`, `emptyDir`, ...
    pub fn field_name(&self) -> &'static str {
        match self {
            Self::ConfigMap(_) => "configMap",
            Self::Secret(_) => "secret",
            Self::EmptyDir(_) => "emptyDir",
            Self::PersistentVolumeClaim(_) => "persistentVolumeClaim",
            Self::HostPath(_) => "hostPath",
        }
    }
}

impl Volume {
    /// Every source that is set, in field order. A valid volume has exactly one.
    pub fn sources(&self) -> Vec<VolumeSourceKind<'_>> {
        [
            self.config_map.as_ref().map(VolumeSourceKind::ConfigMap),
            self.secret.as_ref().map(VolumeSourceKind::Secret),
            self.empty_dir.as_ref().map(VolumeSourceKind::EmptyDir),
            self.persistent_volume_claim.as_ref().map(VolumeSourceKind::PersistentVolumeClaim),
            self.host_path.as_ref().map(VolumeSourceKind::HostPath),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// The volume's source, or `None` unless exactly one is set.
    pub fn source_kind(&self) -> Option<VolumeSourceKind<'_>> {
        match self.sources().as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }
}

/// Pod placement, beyond the nodes that run the Spore runtime.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scheduling {
    /// Labels the node must have, added to the runtime's own node selector.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Taints the pods tolerate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Node and pod (anti-)affinity of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
}

/// Health checks of an HTTP app.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthChecks {
    /// The pod gets traffic only while this check passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<HttpCheck>,
    /// The pod is restarted when this check keeps failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness: Option<HttpCheck>,
}

/// An HTTP GET against the app; any 2xx or 3xx status passes.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("self.path.startsWith('/')").message("path must start with /, e.g. /healthz"),
    validation = Rule::new("!has(self.port) || (self.port >= 1 && self.port <= 65535)").message("port must be between 1 and 65535"),
    validation = Rule::new("(!has(self.periodSeconds) || self.periodSeconds >= 1) && (!has(self.failureThreshold) || self.failureThreshold >= 1) && (!has(self.initialDelaySeconds) || self.initialDelaySeconds >= 0)").message("periodSeconds and failureThreshold must be at least 1, initialDelaySeconds at least 0"),
)]
pub struct HttpCheck {
    /// Request path, e.g. `/healthz`.
    #[schemars(length(max = MAX_HEALTH_CHECK_PATH_LEN))]
    pub path: String,
    /// Port to probe. Unset: the app's HTTP port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    /// Seconds between checks. Unset: 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_seconds: Option<i32>,
    /// Seconds to wait after start before the first check. Unset: 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay_seconds: Option<i32>,
    /// Consecutive failures before the check counts as failed. Unset: 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<i32>,
}

/// Observed state of a Wasm app, written by the operator.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WasmAppStatus {
    /// Current conditions: `Ready`, `Progressing`, `Degraded`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Pods of the app that exist (for `job` and `cronJob` apps: that run now).
    #[serde(default)]
    pub replicas: i32,
    /// Pods of the app that are ready.
    #[serde(default)]
    pub ready_replicas: i32,
    /// Label selector of the app's pods, in string form (for the scale subresource and HPA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// `job` and `cronJob` apps: the newest run and how its newest attempt ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<LastRun>,
}
