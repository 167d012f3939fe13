//! Reading a container's OCI spec: what kind of container it is, where its Wasm is, and
//! the sandbox it gets from the `spore.dev/*` annotations. Pure functions over the spec.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::Spec;
use spore_crds::{COMPOSITION_ANNOTATION, Capabilities, Limits, Wiring};

use super::announce::Announce;
use crate::policy::{AppConfig, ComponentGrant, ResolverFiles, RuntimeLimits};

/// The JSON of the WasmApp's `capabilities`.
pub const CAPABILITIES_ANNOTATION: &str = "spore.dev/capabilities";
/// The JSON of the WasmApp's `limits`.
pub const LIMITS_ANNOTATION: &str = "spore.dev/limits";
/// A JSON list of the environment variable names the app declares; only these pass.
pub const ENV_ANNOTATION: &str = "spore.dev/env";
/// The port the shim serves the pod's HTTP metrics on (`GET /metrics`); none without it.
pub const METRICS_PORT_ANNOTATION: &str = "spore.dev/metrics-port";
/// How long an HTTP guest keeps accepting after SIGTERM (a duration such as `5s`).
pub const DRAIN_DELAY_ANNOTATION: &str = "spore.dev/drain-delay";
/// Without the annotation: long enough for kube-proxy and load balancers to stop sending
/// new connections to a terminating pod, short against the default 30 s grace period.
pub const DEFAULT_DRAIN_DELAY: Duration = Duration::from_secs(5);
/// `<ip>:<port>` of the activator an HTTP guest's pod announces itself to once it serves
/// (the operator sets it on apps that scale to zero); no announcement without it.
pub const ANNOUNCE_ANNOTATION: &str = "spore.dev/activator-announce";
/// The opaque token the announcement carries (the WasmApp's uid, which the activator checks).
pub const ANNOUNCE_TOKEN_ANNOTATION: &str = "spore.dev/announce-token";
/// `"true"`: the container only puts the guest's optimized code into the node's code cache
/// and exits, so that the app's first pod on the node starts on cached code. The operator
/// runs such a pod on each node when it sees a new image.
pub const PRECOMPILE_ANNOTATION: &str = "spore.dev/precompile";
/// Where kubelet mounts the file whose text becomes the container's termination message.
const TERMINATION_LOG: &str = "/dev/termination-log";

/// The guest's argv[0] when the spec has no entrypoint (a Wasm artifact image run as is).
const DEFAULT_GUEST_NAME: &str = "app.wasm";

const CONTAINER_TYPE_ANNOTATION: &str = "io.kubernetes.cri.container-type";
const CONTAINER_NAME_ANNOTATION: &str = "io.kubernetes.cri.container-name";
const SANDBOX_ID_ANNOTATION: &str = "io.kubernetes.cri.sandbox-id";
/// The pod's metadata CRI puts on every container's spec (containerd 1.6, 1.7 and 2.x).
const SANDBOX_NAMESPACE_ANNOTATION: &str = "io.kubernetes.cri.sandbox-namespace";
const SANDBOX_NAME_ANNOTATION: &str = "io.kubernetes.cri.sandbox-name";
const SANDBOX_UID_ANNOTATION: &str = "io.kubernetes.cri.sandbox-uid";

/// A spec that cannot run, with the field to blame.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SpecError {
    pub field: String,
    pub message: String,
}

fn spec_error(field: impl Into<String>, message: impl Into<String>) -> SpecError {
    SpecError { field: field.into(), message: message.into() }
}

/// What a container is, decided once from its spec.
#[derive(Debug, Clone, PartialEq)]
pub enum ContainerKind {
    /// The CRI pod sandbox ("pause") container: the shim holds it without running anything.
    Sandbox,
    /// A Wasm guest with its sandbox. `module` is the entrypoint's path in the image;
    /// `None` (no entrypoint) means the image's Wasm layer, as Wasm artifact images have.
    Wasm { module: Option<PathBuf>, config: Box<AppConfig>, hosting: Hosting },
    /// A component of a composed app ([`COMPOSITION_ANNOTATION`]): held like the sandbox
    /// container, its code linked into the app's when the app's container is created. Its
    /// grant: its own declared env and capabilities, and the host directories of its mounts.
    Component { module: Option<PathBuf>, grant: ComponentGrant, volumes: BTreeMap<String, PathBuf> },
    /// A node precompile ([`PRECOMPILE_ANNOTATION`]): the app's module, and what its pods'
    /// engine depends on; the rest of the sandbox is not built, since nothing runs.
    Precompile { module: Option<PathBuf>, listens: bool, max_concurrency: usize, termination_log: Option<PathBuf> },
}

/// What the shim does for a guest outside its sandbox: the guest's capabilities never
/// include these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hosting {
    /// Where an HTTP guest's metrics are served, if anywhere.
    pub metrics_port: Option<u16>,
    /// How long an HTTP guest keeps accepting after SIGTERM, answering `Connection: close`.
    pub drain_delay: Duration,
    /// The host file (kubelet's) that gets a command's trap report when it fails.
    pub termination_log: Option<PathBuf>,
    /// Whom an HTTP guest's pod tells that it serves, if anyone.
    pub announce: Option<Box<Announce>>,
    /// How the app's components link (empty: the app is one component).
    pub wiring: Wiring,
}

impl Default for Hosting {
    fn default() -> Self {
        Self {
            metrics_port: None,
            drain_delay: DEFAULT_DRAIN_DELAY,
            termination_log: None,
            announce: None,
            wiring: Wiring::default(),
        }
    }
}

impl ContainerKind {
    pub fn from_spec(spec: &Spec) -> Result<Self, SpecError> {
        let annotations = spec.annotations().clone().unwrap_or_default();
        if annotations.get(CONTAINER_TYPE_ANNOTATION).map(String::as_str) == Some("sandbox") {
            return Ok(Self::Sandbox);
        }
        let process = spec.process().as_ref().ok_or_else(|| spec_error("process", "the spec has no process"))?;
        let args = process.args().clone().unwrap_or_default();
        let entry = args.first();
        let module = entry.map(|e| Path::new("/").join(e.trim_start_matches('/')));
        let wiring: Wiring = annotation_json(&annotations, COMPOSITION_ANNOTATION)?;
        let name = annotations.get(CONTAINER_NAME_ANNOTATION);
        if let Some(component) = name.and_then(|n| wiring.components.iter().find(|c| &c.name == n)) {
            let capabilities: Capabilities = component.capabilities.clone().into();
            let env = process.env().as_deref().unwrap_or_default();
            let grant = ComponentGrant {
                name: component.name.clone(),
                env: only_declared(env, &component.env),
                capabilities: capabilities.clone(),
            };
            return Ok(Self::Component { module, volumes: volumes(spec, &capabilities)?, grant });
        }
        if precompile(&annotations)? {
            return Ok(Self::Precompile {
                module,
                listens: !capabilities(&annotations)?.network.inbound.is_empty(),
                max_concurrency: limits(spec, &annotations)?.max_concurrency,
                termination_log: termination_log(spec),
            });
        }
        let config = AppConfig {
            name: entry.map_or(DEFAULT_GUEST_NAME.into(), |e| {
                Path::new(e).file_name().map_or_else(|| e.clone(), |n| n.to_string_lossy().into_owned())
            }),
            args: args.iter().skip(1).cloned().collect(),
            env: declared_env(process.env().as_deref().unwrap_or_default(), &annotations)?,
            capabilities: capabilities(&annotations)?,
            volumes: BTreeMap::new(),
            limits: limits(spec, &annotations)?,
            resolver: resolver_files(spec),
            // Granted when the app's container links its components (`TaskService::link`).
            components: Vec::new(),
        };
        let volumes = volumes(spec, &config.capabilities)?;
        let hosting = Hosting {
            metrics_port: metrics_port(&annotations)?,
            drain_delay: drain_delay(&annotations)?,
            termination_log: termination_log(spec),
            announce: announce(&annotations)?,
            wiring,
        };
        Ok(Self::Wasm { module, config: Box::new(AppConfig { volumes, ..config }), hosting })
    }
}

fn precompile(annotations: &HashMap<String, String>) -> Result<bool, SpecError> {
    match annotations.get(PRECOMPILE_ANNOTATION).map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(spec_error(
            format!("annotation {PRECOMPILE_ANNOTATION}"),
            format!("{other:?} is neither \"true\" nor \"false\""),
        )),
    }
}

fn drain_delay(annotations: &HashMap<String, String>) -> Result<Duration, SpecError> {
    let Some(value) = annotations.get(DRAIN_DELAY_ANNOTATION) else { return Ok(DEFAULT_DRAIN_DELAY) };
    // parse_duration refuses zero (a zero timeout is a mistake); a zero delay is a choice.
    let number = value.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    if value.starts_with('0') && number.chars().all(|c| c == '0' || c == '.') {
        return Ok(Duration::ZERO);
    }
    spore_crds::units::parse_duration(value)
        .map_err(|e| spec_error(format!("annotation {DRAIN_DELAY_ANNOTATION}"), e.to_string()))
}

/// The bind mount kubelet gives every container for its termination message.
fn termination_log(spec: &Spec) -> Option<PathBuf> {
    spec.mounts()
        .as_ref()?
        .iter()
        .find(|m| m.destination() == Path::new(TERMINATION_LOG))
        .and_then(|m| m.source().clone())
}

/// The pod's resolv.conf and hosts file, which kubelet bind-mounts into each container (as
/// their source paths on the node); outside a pod, the node's own.
fn resolver_files(spec: &Spec) -> ResolverFiles {
    let source = |destination: &str| {
        spec.mounts().as_ref()?.iter().find(|m| m.destination() == Path::new(destination))?.source().clone()
    };
    let node = ResolverFiles::default();
    ResolverFiles {
        resolv_conf: source("/etc/resolv.conf").unwrap_or(node.resolv_conf),
        hosts: source("/etc/hosts").or(node.hosts),
    }
}

/// The pod a container belongs to: the sandbox id under CRI, else the container's own id.
pub fn pod_id(spec: &Spec, container_id: &str) -> String {
    spec.annotations()
        .as_ref()
        .and_then(|a| a.get(SANDBOX_ID_ANNOTATION))
        .cloned()
        .unwrap_or_else(|| container_id.to_string())
}

fn annotation_json<T: serde::de::DeserializeOwned + Default>(
    annotations: &HashMap<String, String>,
    key: &str,
) -> Result<T, SpecError> {
    match annotations.get(key) {
        None => Ok(T::default()),
        Some(json) => serde_json::from_str(json)
            .map_err(|e| spec_error(format!("annotation {key}"), format!("invalid JSON for {key}: {e}"))),
    }
}

fn capabilities(annotations: &HashMap<String, String>) -> Result<Capabilities, SpecError> {
    annotation_json(annotations, CAPABILITIES_ANNOTATION)
}

fn metrics_port(annotations: &HashMap<String, String>) -> Result<Option<u16>, SpecError> {
    let Some(value) = annotations.get(METRICS_PORT_ANNOTATION) else { return Ok(None) };
    match value.parse::<u16>() {
        Ok(port) if port > 0 => Ok(Some(port)),
        _ => Err(spec_error(
            format!("annotation {METRICS_PORT_ANNOTATION}"),
            format!("{value:?} is not a port number (1-65535)"),
        )),
    }
}

/// The announcement the annotations ask for. A bad address or a missing token is the
/// operator's mistake and fails the container like any bad annotation; missing CRI pod
/// metadata (not a Kubernetes pod) only means there is nobody to announce.
fn announce(annotations: &HashMap<String, String>) -> Result<Option<Box<Announce>>, SpecError> {
    let Some(value) = annotations.get(ANNOUNCE_ANNOTATION) else { return Ok(None) };
    let to = match value.parse::<SocketAddr>() {
        Ok(to) if to.port() > 0 && !to.ip().is_unspecified() => to,
        _ => {
            return Err(spec_error(
                format!("annotation {ANNOUNCE_ANNOTATION}"),
                format!("{value:?} is not an address <ip>:<port> (e.g. 198.19.0.77:9090 or [fd00::77]:9090)"),
            ));
        }
    };
    let token = annotations.get(ANNOUNCE_TOKEN_ANNOTATION).filter(|t| !t.is_empty()).ok_or_else(|| {
        spec_error(
            format!("annotation {ANNOUNCE_TOKEN_ANNOTATION}"),
            format!("missing or empty; {ANNOUNCE_ANNOTATION} needs it"),
        )
    })?;
    let cri = |key| annotations.get(key).filter(|v| !v.is_empty()).cloned();
    let (Some(namespace), Some(pod), Some(uid)) =
        (cri(SANDBOX_NAMESPACE_ANNOTATION), cri(SANDBOX_NAME_ANNOTATION), cri(SANDBOX_UID_ANNOTATION))
    else {
        return Ok(None);
    };
    Ok(Some(Box::new(Announce { to, namespace, pod, uid, token: token.clone() })))
}

/// Only the names the app declared pass; containerd's own additions (PATH, HOSTNAME,
/// Kubernetes service links) never reach the guest.
fn declared_env(env: &[String], annotations: &HashMap<String, String>) -> Result<Vec<(String, String)>, SpecError> {
    let declared: Vec<String> = annotation_json(annotations, ENV_ANNOTATION)?;
    Ok(only_declared(env, &declared))
}

fn only_declared(env: &[String], declared: &[String]) -> Vec<(String, String)> {
    env.iter()
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| declared.iter().any(|d| d == k))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The annotation's limits; the pod's memory limit caps memory too (the lower wins).
fn limits(spec: &Spec, annotations: &HashMap<String, String>) -> Result<RuntimeLimits, SpecError> {
    let declared: Limits = annotation_json(annotations, LIMITS_ANNOTATION)?;
    let mut limits = RuntimeLimits::from_spec(&declared)
        .map_err(|e| spec_error(format!("annotation {LIMITS_ANNOTATION}"), e.to_string()))?;
    let pod_memory = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.memory().as_ref())
        .and_then(|m| m.limit())
        .and_then(|l| u64::try_from(l).ok())
        .filter(|l| *l > 0);
    limits.memory = match (limits.memory, pod_memory) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok(limits)
}

/// Maps each declared mount to the host directory the container has at its guest path.
fn volumes(spec: &Spec, caps: &Capabilities) -> Result<BTreeMap<String, PathBuf>, SpecError> {
    let mounts = spec.mounts().clone().unwrap_or_default();
    caps.filesystem
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mount = mounts.iter().find(|mnt| mnt.destination() == Path::new(&m.guest_path)).ok_or_else(|| {
                spec_error(
                    format!("annotation {CAPABILITIES_ANNOTATION}: filesystem[{i}]"),
                    format!(
                        "guestPath {} has no mount in the container; mount volume {:?} there",
                        m.guest_path, m.volume
                    ),
                )
            })?;
            let source = mount
                .source()
                .clone()
                .ok_or_else(|| spec_error(format!("mounts {}", m.guest_path), "the mount has no source directory"))?;
            Ok((m.volume.clone(), source))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> Spec {
        serde_json::from_value(json).expect("valid spec")
    }

    fn wasm(json: serde_json::Value) -> Result<(Option<PathBuf>, AppConfig), SpecError> {
        match ContainerKind::from_spec(&spec(json))? {
            ContainerKind::Wasm { module, config, .. } => Ok((module, *config)),
            _ => panic!("not a Wasm container"),
        }
    }

    #[test]
    fn a_precompile_reads_only_what_chooses_the_engine() {
        // A volume the container does not mount would fail a guest; a precompile never reads it.
        let caps = r#"{"network": {"inbound": [{"name": "http", "port": 8080}]}, "filesystem": [{"volume": "data", "guestPath": "/data"}]}"#;
        let kind = ContainerKind::from_spec(&spec(serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"args": ["/app.wasm"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "annotations": {"spore.dev/precompile": "true", "spore.dev/capabilities": caps, "spore.dev/limits": r#"{"maxConcurrency": 7}"#},
        })))
        .unwrap();
        let ContainerKind::Precompile { module, listens, max_concurrency, .. } = kind else {
            panic!("not a precompile")
        };
        assert_eq!((module.as_deref(), listens, max_concurrency), (Some(Path::new("/app.wasm")), true, 7));
        let bad = ContainerKind::from_spec(&spec(serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"args": ["/app.wasm"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "annotations": {"spore.dev/precompile": "yes"},
        })));
        let Err(err) = bad.map_err(|e| e.to_string()) else { panic!("a bad value is refused") };
        assert!(err.contains("spore.dev/precompile") && err.contains("\"yes\""), "{err}");
    }

    #[test]
    fn a_components_container_is_held_with_its_own_grant_and_the_apps_gets_the_wiring() {
        let wiring = r#"{"plugs": ["lib"], "components": [{"name": "lib", "env": ["STYLE"], "capabilities": {"filesystem": [{"volume": "data", "guestPath": "/data"}]}}]}"#;
        let container = |name: &str, args: &str| {
            spec(serde_json::json!({
                "ociVersion": "1.0.2",
                "process": {"args": [args], "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["STYLE=dark", "PATH=/bin", "TOKEN=t"]},
                "mounts": [{"destination": "/data", "source": "/var/lib/kubelet/pods/p/volumes/data", "type": "bind"}],
                "annotations": {"io.kubernetes.cri.container-name": name, "spore.dev/composition": wiring, "spore.dev/env": r#"["TOKEN"]"#},
            }))
        };
        let ContainerKind::Component { module, grant, volumes } =
            ContainerKind::from_spec(&container("lib", "/lib.wasm")).unwrap()
        else {
            panic!("not a component")
        };
        assert_eq!(module.as_deref(), Some(Path::new("/lib.wasm")));
        assert_eq!((grant.name.as_str(), grant.env), ("lib", vec![("STYLE".to_string(), "dark".to_string())]));
        assert_eq!(volumes["data"], Path::new("/var/lib/kubelet/pods/p/volumes/data"));
        let ContainerKind::Wasm { config, hosting, .. } =
            ContainerKind::from_spec(&container("app", "/app.wasm")).unwrap()
        else {
            panic!("not the app")
        };
        assert_eq!(config.env, [("TOKEN".to_string(), "t".to_string())], "the app's own declared env only");
        assert_eq!(
            (hosting.wiring.plugs, hosting.wiring.components[0].name.as_str()),
            (vec!["lib".to_string()], "lib")
        );
    }

    #[test]
    fn the_entrypoint_names_the_module_and_args_follow() {
        let (module, config) = wasm(serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"args": ["/app.wasm", "serve", "--fast"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        }))
        .unwrap();
        assert_eq!(module.as_deref(), Some(Path::new("/app.wasm")));
        assert_eq!((config.name.as_str(), config.args), ("app.wasm", vec!["serve".to_string(), "--fast".into()]));
    }

    #[test]
    fn without_an_entrypoint_the_image_layer_is_the_module() {
        let (module, config) =
            wasm(serde_json::json!({"ociVersion": "1.0.2", "process": {"cwd": "/", "user": {"uid": 0, "gid": 0}}}))
                .unwrap();
        assert_eq!((module, config.name.as_str(), config.args.len()), (None, "app.wasm", 0));
    }

    #[test]
    fn only_declared_env_passes() {
        let (_, config) = wasm(serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"args": ["/a.wasm"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin", "GREETING=hi", "HOSTNAME=x"]},
            "annotations": {"spore.dev/env": "[\"GREETING\"]"},
        }))
        .unwrap();
        assert_eq!(config.env, vec![("GREETING".to_string(), "hi".to_string())]);
        let (_, undeclared) =
            wasm(serde_json::json!({"ociVersion": "1.0.2", "process": {"args": ["/a.wasm"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["A=1"]}}))
                .unwrap();
        assert!(undeclared.env.is_empty());
    }

    #[test]
    fn the_lower_memory_limit_wins() {
        let (_, config) = wasm(serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"args": ["/a.wasm"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "linux": {"resources": {"memory": {"limit": 33554432}}},
            "annotations": {"spore.dev/limits": "{\"memory\": \"64Mi\", \"timeout\": \"5s\"}"},
        }))
        .unwrap();
        assert_eq!(config.limits.memory, Some(32 << 20));
        assert_eq!(config.limits.timeout, Some(std::time::Duration::from_secs(5)));
    }

    #[test]
    fn declared_mounts_map_to_the_containers_mount_sources() {
        let (_, config) = wasm(serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"args": ["/a.wasm"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "mounts": [{"destination": "/data", "source": "/var/lib/kubelet/pods/x/volumes/data", "type": "bind"}],
            "annotations": {"spore.dev/capabilities": "{\"filesystem\": [{\"volume\": \"data\", \"guestPath\": \"/data\"}]}"},
        }))
        .unwrap();
        assert_eq!(config.volumes.get("data").unwrap(), Path::new("/var/lib/kubelet/pods/x/volumes/data"));
        assert!(config.capabilities.filesystem[0].read_only);
    }

    #[test]
    fn bad_annotations_name_the_annotation_and_the_problem() {
        for (annotations, expected) in [
            (
                serde_json::json!({"spore.dev/capabilities": "{not json"}),
                "annotation spore.dev/capabilities: invalid JSON",
            ),
            (serde_json::json!({"spore.dev/capabilities": "{\"files\": []}"}), "unknown field `files`"),
            (serde_json::json!({"spore.dev/limits": "{\"memory\": \"lots\"}"}), "invalid memory quantity"),
            (
                serde_json::json!({"spore.dev/capabilities": "{\"filesystem\": [{\"volume\": \"d\", \"guestPath\": \"/d\"}]}"}),
                "guestPath /d has no mount in the container",
            ),
        ] {
            let err = wasm(serde_json::json!({
                "ociVersion": "1.0.2", "process": {"args": ["/a.wasm"], "cwd": "/", "user": {"uid": 0, "gid": 0}}, "annotations": annotations,
            }))
            .unwrap_err()
            .to_string();
            assert!(err.contains(expected), "expected {expected:?} in {err:?}");
        }
    }

    #[test]
    fn the_metrics_port_annotation_is_a_port_number_or_absent() {
        let not_a_port =
            |v: &str| Err(format!("annotation spore.dev/metrics-port: {v:?} is not a port number (1-65535)"));
        type Expected = Result<Option<u16>, String>;
        let cases: [(Option<&str>, Expected); 8] = [
            (None, Ok(None)),
            (Some("9464"), Ok(Some(9464))),
            (Some("65535"), Ok(Some(65535))),
            (Some("abc"), not_a_port("abc")),
            (Some("0"), not_a_port("0")),
            (Some("65536"), not_a_port("65536")),
            (Some(" 9464"), not_a_port(" 9464")),
            (Some(""), not_a_port("")),
        ];
        for (value, expected) in cases {
            let annotations =
                value.map_or_else(|| serde_json::json!({}), |v| serde_json::json!({"spore.dev/metrics-port": v}));
            let kind = ContainerKind::from_spec(&spec(serde_json::json!({
                "ociVersion": "1.0.2", "process": {"args": ["/a.wasm"], "cwd": "/", "user": {"uid": 0, "gid": 0}}, "annotations": annotations,
            })));
            let port = kind.map_err(|e| e.to_string()).map(|kind| match kind {
                ContainerKind::Wasm { hosting, .. } => hosting.metrics_port,
                _ => panic!("not a Wasm container"),
            });
            assert_eq!(port, expected, "{value:?}");
        }
    }

    fn hosting(json: serde_json::Value) -> Result<Hosting, String> {
        match ContainerKind::from_spec(&spec(json)).map_err(|e| e.to_string())? {
            ContainerKind::Wasm { hosting, .. } => Ok(hosting),
            _ => panic!("not a Wasm container"),
        }
    }

    #[test]
    fn the_drain_delay_is_a_duration_defaulting_to_five_seconds() {
        let cases: [(Option<&str>, Result<Duration, &str>); 5] = [
            (None, Ok(DEFAULT_DRAIN_DELAY)),
            (Some("0s"), Ok(Duration::ZERO)),
            (Some("12s"), Ok(Duration::from_secs(12))),
            (Some("1m30s"), Ok(Duration::from_secs(90))),
            (Some("soon"), Err("annotation spore.dev/drain-delay: invalid duration \"soon\"")),
        ];
        for (value, expected) in cases {
            let annotations =
                value.map_or_else(|| serde_json::json!({}), |v| serde_json::json!({DRAIN_DELAY_ANNOTATION: v}));
            let got = hosting(serde_json::json!({
                "ociVersion": "1.0.2", "process": {"args": ["/a.wasm"], "cwd": "/", "user": {"uid": 0, "gid": 0}}, "annotations": annotations,
            }))
            .map(|h| h.drain_delay);
            match (got, expected) {
                (Ok(got), Ok(expected)) => assert_eq!(got, expected, "{value:?}"),
                (Err(err), Err(expected)) => assert!(err.starts_with(expected), "{value:?}: {err}"),
                (got, expected) => panic!("{value:?}: got {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn the_announcement_needs_an_address_a_token_and_the_cri_pod() {
        let cri = serde_json::json!({
            "io.kubernetes.cri.sandbox-namespace": "apps",
            "io.kubernetes.cri.sandbox-name": "hello-1",
            "io.kubernetes.cri.sandbox-uid": "pod-uid",
        });
        let with = |extra: serde_json::Value, cri_keys: &[&str]| {
            let mut annotations = serde_json::json!({});
            for key in cri_keys {
                annotations[*key] = cri[*key].clone();
            }
            for (k, v) in extra.as_object().unwrap() {
                annotations[k] = v.clone();
            }
            hosting(serde_json::json!({
                "ociVersion": "1.0.2", "process": {"args": ["/a.wasm"], "cwd": "/", "user": {"uid": 0, "gid": 0}}, "annotations": annotations,
            }))
            .map(|h| h.announce)
        };
        let all =
            ["io.kubernetes.cri.sandbox-namespace", "io.kubernetes.cri.sandbox-name", "io.kubernetes.cri.sandbox-uid"];
        let to = |addr: &str, token: &str| serde_json::json!({"spore.dev/activator-announce": addr, "spore.dev/announce-token": token});
        let announce = |addr: &str| {
            Ok(Some(Box::new(Announce {
                to: addr.parse().unwrap(),
                namespace: "apps".into(),
                pod: "hello-1".into(),
                uid: "pod-uid".into(),
                token: "app-uid".into(),
            })))
        };
        let not_an_address = |v: &str| {
            Err(format!(
                "annotation spore.dev/activator-announce: {v:?} is not an address <ip>:<port> (e.g. 198.19.0.77:9090 or [fd00::77]:9090)"
            ))
        };
        type Case<'a> = (serde_json::Value, &'a [&'a str], Result<Option<Box<Announce>>, String>);
        let cases: [Case; 13] = [
            (serde_json::json!({}), &all, Ok(None)),
            (serde_json::json!({"spore.dev/announce-token": "app-uid"}), &all, Ok(None)),
            (to("198.19.0.77:9090", "app-uid"), &all, announce("198.19.0.77:9090")),
            (to("[fd00::77]:9090", "app-uid"), &all, announce("[fd00::77]:9090")),
            (to("198.19.0.77", "app-uid"), &all, not_an_address("198.19.0.77")),
            (to("activator.spore-system:9090", "app-uid"), &all, not_an_address("activator.spore-system:9090")),
            (to("198.19.0.77:0", "app-uid"), &all, not_an_address("198.19.0.77:0")),
            (to("0.0.0.0:9090", "app-uid"), &all, not_an_address("0.0.0.0:9090")),
            (to("", "app-uid"), &all, not_an_address("")),
            (
                serde_json::json!({"spore.dev/activator-announce": "198.19.0.77:9090"}),
                &all,
                Err("annotation spore.dev/announce-token: missing or empty; spore.dev/activator-announce needs it"
                    .into()),
            ),
            (
                to("198.19.0.77:9090", ""),
                &all,
                Err("annotation spore.dev/announce-token: missing or empty; spore.dev/activator-announce needs it"
                    .into()),
            ),
            // Not a CRI pod (ctr run), or a containerd that left one out: nobody to announce.
            (to("198.19.0.77:9090", "app-uid"), &[], Ok(None)),
            (to("198.19.0.77:9090", "app-uid"), &all[..2], Ok(None)),
        ];
        for (annotations, cri_keys, expected) in cases {
            assert_eq!(with(annotations.clone(), cri_keys), expected, "{annotations} with {cri_keys:?}");
        }
    }

    #[test]
    fn the_termination_log_is_kubelets_mount_at_dev_termination_log() {
        let with_mounts = |mounts: serde_json::Value| {
            hosting(serde_json::json!({
                "ociVersion": "1.0.2", "process": {"args": ["/a.wasm"], "cwd": "/", "user": {"uid": 0, "gid": 0}}, "mounts": mounts,
            }))
            .unwrap()
            .termination_log
        };
        let kubelets = serde_json::json!([
            {"destination": "/etc/hosts", "source": "/var/lib/kubelet/pods/u/etc-hosts", "type": "bind"},
            {"destination": "/dev/termination-log", "source": "/var/lib/kubelet/pods/u/containers/app/abc", "type": "bind"},
        ]);
        assert_eq!(with_mounts(kubelets), Some(PathBuf::from("/var/lib/kubelet/pods/u/containers/app/abc")));
        assert_eq!(with_mounts(serde_json::json!([])), None);
    }

    #[test]
    fn lookups_use_the_pods_resolv_conf_and_hosts_else_the_nodes() {
        let with_mounts = |mounts: serde_json::Value| {
            let process = serde_json::json!({"args": ["/a.wasm"], "cwd": "/", "user": {"uid": 0, "gid": 0}});
            wasm(serde_json::json!({"ociVersion": "1.0.2", "process": process, "mounts": mounts})).unwrap().1.resolver
        };
        let cri = serde_json::json!([
            {"destination": "/etc/hosts", "source": "/var/lib/kubelet/pods/u/etc-hosts", "type": "bind"},
            {"destination": "/etc/resolv.conf", "source": "/var/lib/containerd/sandboxes/s/resolv.conf", "type": "bind"},
        ]);
        let pod = ResolverFiles {
            resolv_conf: "/var/lib/containerd/sandboxes/s/resolv.conf".into(),
            hosts: Some("/var/lib/kubelet/pods/u/etc-hosts".into()),
        };
        assert_eq!(with_mounts(cri), pod);
        assert_eq!(with_mounts(serde_json::json!([])), ResolverFiles::default());
    }

    #[test]
    fn the_cri_sandbox_is_recognised_and_grouped() {
        let sandbox = spec(serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"args": ["/pause"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "annotations": {"io.kubernetes.cri.container-type": "sandbox", "io.kubernetes.cri.sandbox-id": "pod1"},
        }));
        assert_eq!(ContainerKind::from_spec(&sandbox).unwrap(), ContainerKind::Sandbox);
        assert_eq!(pod_id(&sandbox, "c1"), "pod1");
        let plain = spec(serde_json::json!({"ociVersion": "1.0.2"}));
        assert_eq!(pod_id(&plain, "c1"), "c1");
    }
}
