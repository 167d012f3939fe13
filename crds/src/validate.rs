//! Client-side validation of a `WasmApp`: every rule of the CRD (its CEL rules, its OpenAPI
//! schema and the apiserver's check of `metadata.name`), with messages that name the offending
//! value and say how to fix the manifest. `spore validate` and `spore up` run this before
//! anything else; `crate::cases` is the table both must agree on.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

use serde::Deserialize;

use crate::API_VERSION;
use crate::app::{
    Autoscale, ENV_NAME_RULE, EnvVar, HttpCheck, MAX_CRON_JOB_APP_NAME, MAX_ENV, MAX_ENV_NAME_LEN,
    MAX_HEALTH_CHECK_PATH_LEN, MAX_VOLUMES, NAME_RULE, Volume, WasmApp, WasmAppSpec,
};
use crate::batch::{CronJobSettings, JobSettings, MAX_SCHEDULE_LEN, MAX_TIME_ZONE_LEN, is_cron_schedule};
use crate::capabilities::{
    Capabilities, FilesystemMount, MAX_FILESYSTEM_MOUNTS, MAX_GUEST_PATH_LEN, MAX_INBOUND_PORTS, MAX_OUTBOUND_HTTP,
    MAX_PORT_NAME_LEN, MAX_SOCKET_RULES, Network, Outbound, Protocol, SocketRule,
};
use crate::composition::{
    MAIN_COMPONENT, MAX_COMPONENT_NAME_LEN, MAX_COMPONENTS, MAX_GRANTS, MAX_IMAGE_LEN, MAX_PLUGS,
};
use crate::host_pattern::MAX_PATTERN_LEN;
use crate::limits::{Limits, WASM_PAGE};
use crate::units;

/// One problem in a manifest: where (`spec.volumes[0].name`) and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// Path of the offending field, e.g. `spec.capabilities.filesystem[0].volume`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ValidationError {}

/// Every problem found in a manifest, in field order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl ValidationErrors {
    pub fn iter(&self) -> std::slice::Iter<'_, ValidationError> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

impl<'a> IntoIterator for &'a ValidationErrors {
    type Item = &'a ValidationError;
    type IntoIter = std::slice::Iter<'a, ValidationError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// A manifest that is not a well-formed `WasmApp`.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("not valid YAML: {0}")]
    Yaml(#[source] serde_yaml::Error),
    #[error(
        "the manifest is not a YAML mapping; a WasmApp starts with `apiVersion: {API_VERSION}` and `kind: WasmApp`"
    )]
    NotAMapping,
    #[error("missing `{field}`; add `{field}: {expected}` at the top of the manifest")]
    Missing { field: &'static str, expected: &'static str },
    #[error("apiVersion is {found:?}, but a WasmApp has `apiVersion: {API_VERSION}`")]
    WrongApiVersion { found: String },
    #[error("kind is {found:?}, but this manifest must be a WasmApp (`kind: WasmApp`)")]
    WrongKind { found: String },
    #[error("unknown top-level field `{0}`; a WasmApp has apiVersion, kind, metadata, spec and status")]
    UnknownTopLevelField(String),
    #[error("invalid WasmApp: {0}")]
    Schema(#[source] serde_yaml::Error),
}

/// Parses one WasmApp manifest. Checks `apiVersion` and `kind` first, so a wrong kind gets a
/// clear message rather than a schema error; schema errors keep serde's field path and
/// line/column (`spec.capabilities: unknown field `filesytem` ... at line 7 column 5`).
pub fn parse_manifest(yaml: &str) -> Result<WasmApp, ManifestError> {
    #[derive(Deserialize)]
    struct TypeMeta {
        #[serde(rename = "apiVersion")]
        api_version: Option<serde_yaml::Value>,
        kind: Option<serde_yaml::Value>,
    }

    let value: serde_yaml::Value = serde_yaml::from_str(yaml).map_err(ManifestError::Yaml)?;
    let serde_yaml::Value::Mapping(mapping) = &value else {
        return Err(ManifestError::NotAMapping);
    };
    let type_meta: TypeMeta = serde_yaml::from_value(value.clone()).map_err(ManifestError::Schema)?;
    let as_text = |v: &serde_yaml::Value| match v {
        serde_yaml::Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other).unwrap_or_default().trim().to_string(),
    };
    match type_meta.api_version.as_ref().map(as_text) {
        None => return Err(ManifestError::Missing { field: "apiVersion", expected: API_VERSION }),
        Some(v) if v != API_VERSION => return Err(ManifestError::WrongApiVersion { found: v }),
        Some(_) => {}
    }
    match type_meta.kind.as_ref().map(as_text) {
        None => return Err(ManifestError::Missing { field: "kind", expected: "WasmApp" }),
        Some(k) if k != "WasmApp" => return Err(ManifestError::WrongKind { found: k }),
        Some(_) => {}
    }
    for key in mapping.keys() {
        let key = as_text(key);
        if !matches!(key.as_str(), "apiVersion" | "kind" | "metadata" | "spec" | "status") {
            return Err(ManifestError::UnknownTopLevelField(key));
        }
    }
    // Deserialize from the text again (not from `value`) so errors carry line and column.
    serde_yaml::from_str(yaml).map_err(ManifestError::Schema)
}

/// Parses a CIDR (`10.0.0.0/8`, `::1/128`) into its address and prefix length. The address
/// may have host bits set (`10.0.0.1/8`) but may not be IPv4-mapped (`::ffff:10.0.0.0/104`),
/// as Kubernetes' `isCIDR` has it.
pub fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, prefix) = s.split_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    if let IpAddr::V6(v6) = addr
        && v6.to_ipv4_mapped().is_some()
    {
        return None;
    }
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) || (prefix.len() > 1 && prefix.starts_with('0'))
    {
        return None;
    }
    let prefix: u8 = prefix.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (prefix <= max).then_some((addr, prefix))
}

/// Whether `s` is an outbound HTTP host pattern: `host`, `host:port`, `*.suffix`, `*`, or
/// any of these after `http://` or `https://`.
pub fn is_valid_http_pattern(s: &str) -> bool {
    crate::host_pattern::HostPattern::parse(s).is_some()
}

/// A DNS-1123 label: lowercase alphanumerics and `-`, at most 63, starting and ending with an
/// alphanumeric.
pub fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A DNS-1035 label: a DNS-1123 label that starts with a letter (a Service name).
pub fn is_dns1035_label(s: &str) -> bool {
    is_dns1123_label(s) && s.starts_with(|c: char| c.is_ascii_lowercase())
}

/// A DNS-1123 subdomain: DNS-1123 labels joined by `.`, at most 253 characters.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

/// An environment variable name the guest can read: a C identifier (`LOG_LEVEL`).
pub fn is_valid_env_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().enumerate().all(|(i, b)| b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()))
}

/// A guest path with no empty, `.` or `..` segment (`/` alone is clean).
pub fn is_clean_path(path: &str) -> bool {
    path == "/" || path.strip_prefix('/').is_some_and(|p| p.split('/').all(|seg| !matches!(seg, "" | "." | "..")))
}

/// Collects errors with their field paths.
#[derive(Default)]
struct Errors(Vec<ValidationError>);

impl Errors {
    fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(ValidationError { field: field.into(), message: message.into() });
    }

    fn at_most(&mut self, field: &str, len: usize, max: usize) {
        if len > max {
            self.add(field, format!("has {len} entries, but at most {max} are allowed; remove {}", len - max));
        }
    }

    fn port(&mut self, field: String, port: i32) {
        if !(1..=65535).contains(&port) {
            self.add(field, format!("port {port} is out of range; use a port between 1 and 65535"));
        }
    }

    fn longest(&mut self, field: impl Into<String>, value: &str, max: usize) {
        if value.len() > max {
            self.add(field, format!("has {} characters, but at most {max} are allowed; shorten it", value.len()));
        }
    }
}

/// Each key seen again, as `(its index, the index where it was first)`.
fn duplicates<K: std::hash::Hash + Eq>(keys: impl IntoIterator<Item = K>) -> Vec<(usize, usize)> {
    let mut seen: HashMap<K, usize> = HashMap::new();
    keys.into_iter()
        .enumerate()
        .filter_map(|(i, key)| match seen.get(&key) {
            Some(&first) => Some((i, first)),
            None => {
                seen.insert(key, i);
                None
            }
        })
        .collect()
}

impl WasmApp {
    /// Checks the app against every rule of the CRD: its CEL rules, its OpenAPI schema and the
    /// name rules. Returns all problems, not just the first.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = Errors::default();
        let spec = &self.spec;

        validate_name(&mut errors, self);
        validate_image(&mut errors, "spec.module.image", &spec.module.image);

        validate_env_list(&mut errors, "spec.env", &spec.env);

        validate_scaling(&mut errors, self);
        validate_volumes_and_mounts(&mut errors, self);
        validate_network(&mut errors, "spec.capabilities.network", &spec.capabilities.network);
        validate_run_mode(&mut errors, self);
        validate_limits(&mut errors, &spec.limits);
        validate_pod_names(&mut errors, self);
        validate_components(&mut errors, spec);

        if let Some(checks) = &spec.health_checks {
            for (name, check) in [("readiness", &checks.readiness), ("liveness", &checks.liveness)] {
                if let Some(check) = check {
                    validate_http_check(&mut errors, &format!("spec.healthChecks.{name}"), check);
                }
            }
        }

        if errors.0.is_empty() { Ok(()) } else { Err(ValidationErrors(errors.0)) }
    }
}

/// `metadata.name` names the app's Service (a DNS-1035 label) and, for a `cronJob` app, its
/// CronJob (at most 52 characters). With only `generateName`, the apiserver picks the name.
fn validate_name(errors: &mut Errors, app: &WasmApp) {
    const FIELD: &str = "metadata.name";
    let Some(name) = app.metadata.name.as_deref() else {
        if app.metadata.generate_name.is_none() {
            errors.add(FIELD, "is missing; name the app, e.g. metadata: {name: hello}");
        }
        return;
    };
    if !is_dns1035_label(name) {
        errors.add(FIELD, format!("{name:?} {NAME_RULE}"));
    } else if app.spec.cron_job.is_some() && name.len() > MAX_CRON_JOB_APP_NAME {
        errors.add(
            FIELD,
            format!(
                "{name:?} has {} characters, but a cronJob app has at most {MAX_CRON_JOB_APP_NAME} (Kubernetes adds 11 for the Job of each run)",
                name.len()
            ),
        );
    }
}

fn validate_image(errors: &mut Errors, field: &str, image: &str) {
    if image.trim_ascii().is_empty() {
        errors.add(
            field,
            "is empty; set it to the OCI reference of the Wasm module, e.g. localhost:5000/spore/hello-http:latest",
        );
    } else if image.bytes().any(|b| b.is_ascii_whitespace()) {
        errors.add(field, format!("image {image:?} contains whitespace; an OCI reference has none"));
    }
}

/// `runtimeClassName` and `serviceAccountName` name Kubernetes objects of the pods.
fn validate_pod_names(errors: &mut Errors, app: &WasmApp) {
    if let Some(class) = app.spec.runtime_class_name.as_deref()
        && !(is_dns1123_label(class) && class.len() <= 55)
    {
        errors.add(
            "spec.runtimeClassName",
            format!(
                "{class:?} is not a RuntimeClass name: a DNS-1123 label of at most 55 lowercase letters, digits and -, e.g. spore"
            ),
        );
    }
    if let Some(account) = app.spec.service_account_name.as_deref()
        && !is_dns1123_subdomain(account)
    {
        errors.add(
            "spec.serviceAccountName",
            format!(
                "{account:?} is not a ServiceAccount name: lowercase letters, digits, - and ., starting and ending with a letter or digit"
            ),
        );
    }
}

fn validate_limits(errors: &mut Errors, limits: &Limits) {
    if let Some(memory) = &limits.memory {
        let memory = memory.0.as_str();
        match units::quantity_value("memory quantity", memory) {
            Err(e) => errors.add("spec.limits.memory", format!("{e}; e.g. memory: 64Mi")),
            Ok(v) if v < 0.0 => {
                errors.add("spec.limits.memory", format!("memory limit {memory} is negative; use e.g. 64Mi"))
            }
            Ok(v) if v < WASM_PAGE as f64 => errors.add(
                "spec.limits.memory",
                format!(
                    "memory limit {memory} is below one Wasm page (64Ki), the least a guest can have; use e.g. 64Mi"
                ),
            ),
            Ok(_) => {}
        }
    }
    if let Some(cpu) = &limits.cpu {
        let cpu = cpu.0.as_str();
        match units::quantity_value("cpu quantity", cpu) {
            Err(e) => errors.add("spec.limits.cpu", format!("{e}; e.g. cpu: 500m")),
            Ok(v) if v <= 0.0 => {
                errors.add("spec.limits.cpu", format!("cpu limit {cpu} is not above zero; use e.g. 500m"))
            }
            Ok(_) => {}
        }
    }
    if let Err(e) = limits.timeout() {
        errors.add("spec.limits.timeout", format!("{e}; e.g. timeout: 30s"));
    }
    if let Some(n) = limits.max_concurrency
        && n < 1
    {
        errors.add(
            "spec.limits.maxConcurrency",
            format!("maxConcurrency {n} is below 1; set at least 1, or remove it for the default of 100"),
        );
    }
    if let Some(reuse) = &limits.instance_reuse {
        if reuse.max_requests < 1 {
            errors.add(
                "spec.limits.instanceReuse.maxRequests",
                format!(
                    "instanceReuse.maxRequests {} is below 1; set at least 2 to reuse instances, or remove instanceReuse for a fresh instance per request",
                    reuse.max_requests
                ),
            );
        }
        if let Some(n) = reuse.max_concurrent
            && n < 1
        {
            errors.add(
                "spec.limits.instanceReuse.maxConcurrent",
                format!(
                    "instanceReuse.maxConcurrent {n} is below 1; set at least 1, or remove it for one request at a time"
                ),
            );
        }
    }
}

fn validate_env_list(errors: &mut Errors, field: &str, env: &[EnvVar]) {
    errors.at_most(field, env.len(), MAX_ENV);
    for (i, var) in env.iter().enumerate() {
        validate_env(errors, &format!("{field}[{i}]"), var);
    }
    for (i, first) in duplicates(env.iter().map(|e| e.name.as_str())) {
        errors.add(
            format!("{field}[{i}].name"),
            format!("env {:?} is listed twice (also {field}[{first}]); keep one", env[i].name),
        );
    }
}

fn validate_env(errors: &mut Errors, field: &str, env: &EnvVar) {
    if env.name.len() > MAX_ENV_NAME_LEN {
        errors.longest(format!("{field}.name"), &env.name, MAX_ENV_NAME_LEN);
    } else if !is_valid_env_name(&env.name) {
        errors.add(format!("{field}.name"), format!("env name {:?} {ENV_NAME_RULE}", env.name));
    }
    match (&env.value, &env.value_from) {
        (Some(_), Some(_)) => errors.add(field, "sets both value and valueFrom; keep only one"),
        (None, None) => errors.add(field, format!("sets neither value nor valueFrom; give {} a value", env.name)),
        (None, Some(from)) => match (&from.config_map_key_ref, &from.secret_key_ref) {
            (Some(_), Some(_)) => {
                errors.add(format!("{field}.valueFrom"), "sets both configMapKeyRef and secretKeyRef; keep only one")
            }
            (None, None) => errors.add(
                format!("{field}.valueFrom"),
                "sets neither configMapKeyRef nor secretKeyRef; add one, e.g. configMapKeyRef: {name: app-config, key: LOG_LEVEL}",
            ),
            (Some(r), None) => check_key_ref(errors, &format!("{field}.valueFrom.configMapKeyRef"), &r.name, &r.key),
            (None, Some(r)) => check_key_ref(errors, &format!("{field}.valueFrom.secretKeyRef"), &r.name, &r.key),
        },
        (Some(_), None) => {}
    }
}

fn check_key_ref(errors: &mut Errors, field: &str, name: &str, key: &str) {
    if name.is_empty() {
        errors.add(format!("{field}.name"), "is empty; name the object to read the value from");
    }
    if key.is_empty() {
        errors.add(format!("{field}.key"), "is empty; name the key to read the value from");
    }
}

fn validate_scaling(errors: &mut Errors, app: &WasmApp) {
    let scaling = &app.spec.scaling;
    if scaling.replicas.is_some() && scaling.autoscale.is_some() && scaling.concurrency_autoscale().is_none() {
        errors.add(
            "spec.scaling",
            "sets both replicas and autoscale; keep replicas for a fixed count or autoscale for a range",
        );
    }
    if let Some(n) = scaling.replicas
        && n < 0
    {
        errors.add("spec.scaling.replicas", format!("is {n}; set 0 or more"));
    }
    if let Some(auto) = &scaling.autoscale {
        validate_autoscale(errors, auto);
    }
    if scaling.autoscale.as_ref().is_some_and(|a| a.min_replicas == 0) {
        validate_scale_to_zero(errors, app);
    }
}

/// An app at zero is woken by an HTTP request on its one port: what the activator receives.
fn validate_scale_to_zero(errors: &mut Errors, app: &WasmApp) {
    let inbound = &app.spec.capabilities.network.inbound;
    if inbound.len() != 1 || inbound[0].protocol != crate::Protocol::Tcp {
        errors.add(
            "spec.scaling.autoscale.minReplicas",
            format!(
                "is 0 (scale to zero), which needs exactly one TCP inbound port, but the app declares {}: the activator wakes the app on an HTTP request to that port; a command app keeps minReplicas >= 1",
                describe_ports(inbound)
            ),
        );
    }
}

fn describe_ports(inbound: &[crate::InboundPort]) -> String {
    match inbound {
        [] => "none".into(),
        ports => {
            ports.iter().map(|p| format!("{}/{}", p.port, protocol_name(p.protocol))).collect::<Vec<_>>().join(", ")
        }
    }
}

fn protocol_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
    }
}

fn validate_autoscale(errors: &mut Errors, auto: &Autoscale) {
    const FIELD: &str = "spec.scaling.autoscale";
    if auto.min_replicas < 0 {
        errors.add(format!("{FIELD}.minReplicas"), format!("is {}; set 0 or more", auto.min_replicas));
    }
    if auto.min_replicas == 0 && auto.target_concurrency.is_none() {
        errors.add(
            format!("{FIELD}.minReplicas"),
            "is 0 (scale to zero), which needs targetConcurrency: a CPU autoscaler (an HPA) cannot wake an app at zero; set targetConcurrency or minReplicas >= 1",
        );
    }
    if auto.max_replicas < 1 {
        errors.add(format!("{FIELD}.maxReplicas"), format!("is {}; set it to at least 1", auto.max_replicas));
    }
    if let Some(idle) = &auto.scale_to_zero_after {
        if let Err(e) = crate::units::parse_duration(idle) {
            errors.add(format!("{FIELD}.scaleToZeroAfter"), format!("{e}; use a duration such as 60s or 5m"));
        }
        if auto.min_replicas != 0 {
            errors.add(
                format!("{FIELD}.scaleToZeroAfter"),
                "applies only with minReplicas 0; remove it or set minReplicas: 0",
            );
        }
    }
    if auto.min_replicas > auto.max_replicas {
        errors.add(
            FIELD,
            format!(
                "minReplicas ({}) is greater than maxReplicas ({}); raise maxReplicas or lower minReplicas",
                auto.min_replicas, auto.max_replicas
            ),
        );
    }
    match (auto.target_concurrency, auto.target_cpu_utilization) {
        (Some(_), Some(_)) => errors.add(FIELD, "sets both targetConcurrency and targetCpuUtilization; keep only one"),
        (None, None) => errors.add(
            FIELD,
            "sets no target; add targetConcurrency (requests per replica) or targetCpuUtilization (percent)",
        ),
        _ => {}
    }
    if let Some(n) = auto.target_concurrency
        && n < 1
    {
        errors.add(format!("{FIELD}.targetConcurrency"), format!("is {n}; set it to at least 1"));
    }
    if let Some(n) = auto.target_cpu_utilization
        && n < 1
    {
        errors.add(format!("{FIELD}.targetCpuUtilization"), format!("is {n}; set a percentage of at least 1"));
    }
}

fn validate_volumes_and_mounts(errors: &mut Errors, app: &WasmApp) {
    let spec = &app.spec;
    errors.at_most("spec.volumes", spec.volumes.len(), MAX_VOLUMES);
    for (i, volume) in spec.volumes.iter().enumerate() {
        let field = format!("spec.volumes[{i}]");
        if !is_dns1123_label(&volume.name) {
            errors.add(
                format!("{field}.name"),
                format!(
                    "{:?} is not a DNS-1123 label; use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit, e.g. data",
                    volume.name
                ),
            );
        }
        // The schema's quantity pattern; the sign is Kubernetes' to check when the operator
        // applies the Deployment (a CEL rule on it would cost more than the CRD may spend).
        if let Some(size) = volume.empty_dir.as_ref().and_then(|e| e.size_limit.as_ref())
            && let Err(e) = units::quantity_value("quantity", &size.0)
        {
            errors.add(format!("{field}.emptyDir.sizeLimit"), format!("{e}; e.g. sizeLimit: 1Gi"));
        }
        match volume.sources().as_slice() {
            [_] => {}
            [] => errors.add(
                &field,
                "has no source; set exactly one of configMap, secret, emptyDir, persistentVolumeClaim or hostPath",
            ),
            many => errors.add(
                &field,
                format!(
                    "sets {} sources ({}); keep exactly one",
                    many.len(),
                    many.iter().map(|s| s.field_name()).collect::<Vec<_>>().join(", ")
                ),
            ),
        }
    }

    for (i, first) in duplicates(spec.volumes.iter().map(|v| v.name.as_str())) {
        errors.add(
            format!("spec.volumes[{i}].name"),
            format!(
                "volume name {:?} is already used by spec.volumes[{first}]; give each volume its own name",
                spec.volumes[i].name
            ),
        );
    }

    validate_mounts(
        errors,
        "spec.capabilities.filesystem",
        &spec.capabilities.filesystem,
        &spec.volumes,
        MAX_FILESYSTEM_MOUNTS,
    );
}

/// Mounts of volumes in `spec.volumes`, each at its own clean path.
fn validate_mounts(errors: &mut Errors, field: &str, mounts: &[FilesystemMount], volumes: &[Volume], max: usize) {
    errors.at_most(field, mounts.len(), max);
    for (i, mount) in mounts.iter().enumerate() {
        if !volumes.iter().any(|v| v.name == mount.volume) {
            errors.add(
                format!("{field}[{i}].volume"),
                format!("volume {:?} is not in spec.volumes; add a volume of that name or fix the name", mount.volume),
            );
        }
        validate_guest_path(errors, &format!("{field}[{i}].guestPath"), &mount.guest_path);
    }
    for (i, first) in duplicates(mounts.iter().map(|m| m.guest_path.as_str())) {
        errors.add(
            format!("{field}[{i}].guestPath"),
            format!(
                "guestPath {:?} is already mounted by {field}[{first}]; mount each volume at its own path",
                mounts[i].guest_path
            ),
        );
    }
}

/// A guest path is absolute and clean, so that the guest's path resolution (WASI preopens
/// are matched by prefix) cannot be steered by `..`, and two spellings are not one path.
fn validate_guest_path(errors: &mut Errors, field: &str, path: &str) {
    if path.len() > MAX_GUEST_PATH_LEN {
        errors.longest(field, path, MAX_GUEST_PATH_LEN);
    } else if !path.starts_with('/') {
        errors.add(field, format!("guestPath {path:?} is not absolute; start it with /, e.g. /data"));
    } else if !is_clean_path(path) {
        errors.add(
            field,
            format!(
                "guestPath {path:?} is not a clean path: no .. or . segments, no // and no / at the end; e.g. /data"
            ),
        );
    }
}

fn validate_network(errors: &mut Errors, net: &str, network: &Network) {
    let inbound = &network.inbound;
    errors.at_most(&format!("{net}.inbound"), inbound.len(), MAX_INBOUND_PORTS);
    for (i, port) in inbound.iter().enumerate() {
        errors.port(format!("{net}.inbound[{i}].port"), port.port);
        if let Some(name) = &port.name {
            errors.longest(format!("{net}.inbound[{i}].name"), name, MAX_PORT_NAME_LEN);
        }
    }
    for (i, first) in duplicates(inbound.iter().map(|p| (p.port, p.protocol))) {
        errors.add(
            format!("{net}.inbound[{i}]"),
            format!(
                "port {}/{} is listed twice (also {net}.inbound[{first}]); list each port once",
                inbound[i].port,
                protocol_name(inbound[i].protocol)
            ),
        );
    }
    let named: Vec<(usize, &str)> =
        inbound.iter().enumerate().filter_map(|(i, p)| Some((i, p.name.as_deref()?))).collect();
    for (j, first) in duplicates(named.iter().map(|&(_, name)| name)) {
        let ((i, name), (first, _)) = (named[j], named[first]);
        errors.add(
            format!("{net}.inbound[{i}].name"),
            format!("port name {name:?} is used twice (also {net}.inbound[{first}]); name each port once"),
        );
    }

    validate_outbound(errors, &format!("{net}.outbound"), &network.outbound, [MAX_OUTBOUND_HTTP, MAX_SOCKET_RULES]);
}

/// Outbound rules, at most `max_http` host patterns and `max_sockets` rules per protocol.
fn validate_outbound(errors: &mut Errors, field: &str, outbound: &Outbound, [max_http, max_sockets]: [usize; 2]) {
    errors.at_most(&format!("{field}.http"), outbound.http.len(), max_http);
    for (i, pattern) in outbound.http.iter().enumerate() {
        if pattern.len() > MAX_PATTERN_LEN {
            errors.longest(format!("{field}.http[{i}]"), pattern, MAX_PATTERN_LEN);
        } else if !is_valid_http_pattern(pattern) {
            errors.add(
                format!("{field}.http[{i}]"),
                format!(
                    "{pattern:?} is not a host pattern; use host, host:port, *.example.com, * or [IPv6], optionally after http:// or https://, without a path"
                ),
            );
        }
    }
    for (list, rules) in [("tcp", &outbound.tcp), ("udp", &outbound.udp)] {
        errors.at_most(&format!("{field}.{list}"), rules.len(), max_sockets);
        for (i, rule) in rules.iter().enumerate() {
            validate_socket_rule(errors, &format!("{field}.{list}[{i}]"), rule);
        }
    }
}

fn validate_socket_rule(errors: &mut Errors, field: &str, rule: &SocketRule) {
    if parse_cidr(&rule.cidr).is_none() {
        let hint = if rule.cidr.contains('/') {
            "use an IPv4 or IPv6 address block such as 10.0.0.0/8 or fd00::/8"
        } else {
            "add a prefix length, e.g. 10.0.0.1/32 for one address or 10.0.0.0/8 for a block"
        };
        errors.add(format!("{field}.cidr"), format!("{:?} is not a valid CIDR; {hint}", rule.cidr));
    }
    if let Some(port) = rule.port {
        errors.port(format!("{field}.port"), port);
    }
    if let Some(end) = rule.end_port {
        match rule.port {
            None => {
                errors.add(format!("{field}.endPort"), "is set without port; set port to the first port of the range")
            }
            Some(port) if end < port => errors.add(
                format!("{field}.endPort"),
                format!("{end} is below port {port}; endPort is the last port of the range"),
            ),
            Some(_) if end > 65535 => errors
                .add(format!("{field}.endPort"), format!("port {end} is out of range; use a port between 1 and 65535")),
            Some(_) => {}
        }
    }
}

/// `job` and `cronJob`: one of them at most, for a command that neither scales nor listens.
fn validate_run_mode(errors: &mut Errors, app: &WasmApp) {
    let spec = &app.spec;
    if spec.job.is_none() && spec.cron_job.is_none() {
        return;
    }
    if spec.job.is_some() && spec.cron_job.is_some() {
        errors.add(
            "spec",
            "sets both job and cronJob; keep job to run once to completion or cronJob to run on a schedule",
        );
    }
    if spec.scaling != Default::default() {
        errors.add(
            "spec.scaling",
            "is set on a job or cronJob app, which does not scale; remove it (job.parallelism runs several pods at once)",
        );
    }
    if !spec.capabilities.network.inbound.is_empty() {
        errors.add(
            "spec.capabilities.network.inbound",
            "is set on a job or cronJob app, which serves no traffic; remove it, or remove job/cronJob to run the app as a Deployment",
        );
    }
    if let Some(job) = &spec.job {
        validate_job(errors, "spec.job", job);
    }
    if let Some(cron) = &spec.cron_job {
        validate_cron_job(errors, cron);
    }
}

fn validate_job(errors: &mut Errors, field: &str, job: &JobSettings) {
    let bounds = [
        ("backoffLimit", job.backoff_limit.map(i64::from), 0),
        ("activeDeadlineSeconds", job.active_deadline_seconds, 1),
        ("ttlSecondsAfterFinished", job.ttl_seconds_after_finished.map(i64::from), 0),
        ("completions", job.completions.map(i64::from), 1),
        ("parallelism", job.parallelism.map(i64::from), 1),
    ];
    for (name, value, min) in bounds {
        if let Some(v) = value
            && v < min
        {
            errors.add(format!("{field}.{name}"), format!("is {v}; set it to at least {min}"));
        }
    }
}

fn validate_cron_job(errors: &mut Errors, cron: &CronJobSettings) {
    const FIELD: &str = "spec.cronJob";
    if cron.schedule.len() > MAX_SCHEDULE_LEN {
        errors.longest(format!("{FIELD}.schedule"), &cron.schedule, MAX_SCHEDULE_LEN);
    } else if !is_cron_schedule(&cron.schedule) {
        errors.add(
            format!("{FIELD}.schedule"),
            format!(
                "{:?} is not a cron schedule; use five fields separated by spaces (minute hour day-of-month month day-of-week, e.g. \"*/5 * * * *\") or @hourly, @daily, @weekly, @monthly, @yearly, and put a time zone in timeZone",
                cron.schedule
            ),
        );
    }
    for (name, value) in [
        ("successfulJobsHistoryLimit", cron.successful_jobs_history_limit),
        ("failedJobsHistoryLimit", cron.failed_jobs_history_limit),
    ] {
        if let Some(v) = value
            && v < 0
        {
            errors.add(format!("{FIELD}.{name}"), format!("is {v}; set 0 or more"));
        }
    }
    match cron.time_zone.as_deref() {
        Some("") => errors
            .add(format!("{FIELD}.timeZone"), "is empty; name an IANA time zone such as Europe/Berlin, or remove it"),
        Some(zone) => errors.longest(format!("{FIELD}.timeZone"), zone, MAX_TIME_ZONE_LEN),
        None => {}
    }
    validate_job(errors, &format!("{FIELD}.job"), &cron.job);
}

fn validate_http_check(errors: &mut Errors, field: &str, check: &HttpCheck) {
    if check.path.len() > MAX_HEALTH_CHECK_PATH_LEN {
        errors.longest(format!("{field}.path"), &check.path, MAX_HEALTH_CHECK_PATH_LEN);
    } else if !check.path.starts_with('/') {
        errors.add(format!("{field}.path"), format!("{:?} does not start with /; use e.g. /healthz", check.path));
    }
    if let Some(port) = check.port {
        errors.port(format!("{field}.port"), port);
    }
    for (name, value, min) in [
        ("periodSeconds", check.period_seconds, 1),
        ("failureThreshold", check.failure_threshold, 1),
        ("initialDelaySeconds", check.initial_delay_seconds, 0),
    ] {
        if let Some(v) = value
            && v < min
        {
            errors.add(format!("{field}.{name}"), format!("is {v}; set it to at least {min}"));
        }
    }
}

#[cfg(test)]
mod tests;

/// `spec.components`, the `plugs` that use them and `spec.middleware`: every name refers to
/// a component, each component has one role, and each gets only capabilities of its own
/// (never inbound ports). Whether the plugs fit is for composition to say.
fn validate_components(errors: &mut Errors, spec: &WasmAppSpec) {
    let components = &spec.components;
    let known = |name: &str| components.iter().any(|c| c.name == name);
    errors.at_most("spec.components", components.len(), MAX_COMPONENTS);
    validate_plugs(errors, "spec.module.plugs", &spec.module.plugs, &known);
    for (i, component) in components.iter().enumerate() {
        let field = format!("spec.components[{i}]");
        validate_component_name(errors, &format!("{field}.name"), &component.name);
        validate_image(errors, &format!("{field}.image"), &component.image);
        errors.longest(format!("{field}.image"), &component.image, MAX_IMAGE_LEN);
        validate_plugs(errors, &format!("{field}.plugs"), &component.plugs, &known);
        if component.plugs.contains(&component.name) {
            errors.add(
                format!("{field}.plugs"),
                format!("component {:?} plugs itself; a component cannot satisfy its own imports", component.name),
            );
        }
        validate_env_list(errors, &format!("{field}.env"), &component.env);
        let granted = Capabilities::from(component.capabilities.clone());
        let grants = format!("{field}.capabilities");
        validate_mounts(errors, &format!("{grants}.filesystem"), &granted.filesystem, &spec.volumes, MAX_GRANTS);
        validate_outbound(errors, &format!("{grants}.network.outbound"), &granted.network.outbound, [MAX_GRANTS; 2]);
        let plugged =
            spec.module.plugs.contains(&component.name) || components.iter().any(|c| c.plugs.contains(&component.name));
        if !plugged && !spec.middleware.contains(&component.name) {
            errors.add(
                format!("{field}.name"),
                format!(
                    "component {:?} is not used; list it in spec.middleware or in the plugs of the component that imports it",
                    component.name
                ),
            );
        }
    }
    for (i, first) in duplicates(components.iter().map(|c| c.name.as_str())) {
        errors.add(
            format!("spec.components[{i}].name"),
            format!(
                "component {:?} is listed twice (also spec.components[{first}]); name each once",
                components[i].name
            ),
        );
    }
    validate_middleware(errors, spec, &known);
}

fn validate_component_name(errors: &mut Errors, field: &str, name: &str) {
    if name == MAIN_COMPONENT {
        errors.add(field, format!("component name {name:?} is the main component's (spec.module); choose another"));
    } else if !is_dns1123_label(name) || name.len() > MAX_COMPONENT_NAME_LEN {
        errors.add(
            field,
            format!(
                "{name:?} is not a DNS-1123 label; use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit, e.g. auth (it names the component's container)"
            ),
        );
    }
}

/// A `plugs` list: components of `spec.components`, each once.
fn validate_plugs(errors: &mut Errors, field: &str, plugs: &[String], known: &impl Fn(&str) -> bool) {
    errors.at_most(field, plugs.len(), MAX_PLUGS);
    for (i, plug) in plugs.iter().enumerate() {
        if !known(plug) {
            errors.add(
                format!("{field}[{i}]"),
                format!("names {plug:?}, which is not in spec.components; add the component or fix the name"),
            );
        }
    }
    for (i, first) in duplicates(plugs.iter()) {
        errors
            .add(format!("{field}[{i}]"), format!("{:?} is listed twice (also {field}[{first}]); keep one", plugs[i]));
    }
}

fn validate_middleware(errors: &mut Errors, spec: &WasmAppSpec, known: &impl Fn(&str) -> bool) {
    const FIELD: &str = "spec.middleware";
    let middleware = &spec.middleware;
    errors.at_most(FIELD, middleware.len(), MAX_PLUGS);
    if !middleware.is_empty() && spec.capabilities.network.inbound.is_empty() {
        errors.add(
            FIELD,
            "spec.middleware wraps an HTTP handler, but the app has no inbound port; add capabilities.network.inbound or remove spec.middleware",
        );
    }
    for (i, name) in middleware.iter().enumerate() {
        if !known(name) {
            errors.add(
                format!("{FIELD}[{i}]"),
                format!("names {name:?}, which is not in spec.components; add the component or fix the name"),
            );
        } else if spec.module.plugs.contains(name) || spec.components.iter().any(|c| c.plugs.contains(name)) {
            errors.add(
                format!("{FIELD}[{i}]"),
                format!(
                    "component {name:?} is both middleware and a plug; a middleware wraps the handler, a plug satisfies imports: use a component for each role"
                ),
            );
        }
    }
    for (i, first) in duplicates(middleware.iter()) {
        errors.add(
            format!("{FIELD}[{i}]"),
            format!("{:?} is listed twice (also {FIELD}[{first}]); a middleware wraps the handler once", middleware[i]),
        );
    }
}
