//! The pod template every WasmApp's pods share, whichever object runs them (Deployment,
//! Job, CronJob): Spore's RuntimeClass, the sandbox as `spore.dev/*` annotations, volumes,
//! probes and resources.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, TCPSocketAction, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use spore_crds::{COMPOSITION_ANNOTATION, Component, HttpCheck, InboundPort, Protocol, WasmApp, Wiring};

use super::{app_labels, name_of};
use crate::error::{Error, Result};

/// The pod annotations the shim reads (see `shim/src/containerd/spec.rs`).
pub const CAPABILITIES_ANNOTATION: &str = "spore.dev/capabilities";
pub const LIMITS_ANNOTATION: &str = "spore.dev/limits";
pub const ENV_ANNOTATION: &str = "spore.dev/env";
/// The port the shim serves an HTTP app's metrics on (`GET /metrics`, Prometheus text).
pub const METRICS_PORT_ANNOTATION: &str = "spore.dev/metrics-port";
/// The app's one container.
pub const CONTAINER_NAME: &str = "app";
/// The metrics port unless an inbound port uses it: OpenTelemetry's Prometheus exporter's.
const DEFAULT_METRICS_PORT: i32 = 9464;
const METRICS_PORT_NAME: &str = "metrics";
const METRICS_PATH: &str = "/metrics";

const DEFAULT_PROBE_PERIOD_SECONDS: i32 = 5;

/// The pod template of `app`'s pods, running with `runtime_class`. The restart policy is left
/// to the object that runs them (a Job's pods must not restart in place).
pub fn pod_template(app: &WasmApp, runtime_class: &str) -> Result<PodTemplateSpec> {
    let name = name_of(app, "WasmApp")?;
    Ok(PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(app.spec.pod_labels.clone().into_iter().chain(app_labels(&name)).collect()),
            annotations: Some(pod_annotations(app)?),
            ..Default::default()
        }),
        spec: Some(pod_spec(app, runtime_class)),
    })
}
/// The user's annotations plus the sandbox the shim enforces: capabilities, limits and the
/// names of the declared environment variables, as JSON; for HTTP apps, where the shim serves
/// their metrics and the conventional annotations telling Prometheus to scrape them.
fn pod_annotations(app: &WasmApp) -> Result<BTreeMap<String, String>> {
    let spec = &app.spec;
    let env_names: Vec<&str> = spec.env.iter().map(|e| e.name.as_str()).collect();
    let mut annotations = spec.pod_annotations.clone();
    annotations.insert(CAPABILITIES_ANNOTATION.into(), json("capabilities", &spec.capabilities)?);
    annotations.insert(LIMITS_ANNOTATION.into(), json("limits", &spec.limits)?);
    annotations.insert(ENV_ANNOTATION.into(), json("env names", &env_names)?);
    let wiring = Wiring::of(spec);
    if !wiring.is_empty() {
        annotations.insert(COMPOSITION_ANNOTATION.into(), json("components", &wiring)?);
    }
    if let Some(port) = metrics_port(&spec.capabilities.network.inbound) {
        annotations.insert(METRICS_PORT_ANNOTATION.into(), port.to_string());
        // A convention, not a contract: the user's own podAnnotations (e.g. scrape "false") win.
        for (key, value) in [
            ("prometheus.io/scrape", "true".to_string()),
            ("prometheus.io/port", port.to_string()),
            ("prometheus.io/path", METRICS_PATH.into()),
        ] {
            annotations.entry(key.into()).or_insert(value);
        }
    }
    Ok(annotations)
}

fn json(what: &'static str, value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(value).map_err(|source| Error::Encode { what, source })
}

fn pod_spec(app: &WasmApp, runtime_class: &str) -> PodSpec {
    let spec = &app.spec;
    PodSpec {
        runtime_class_name: Some(runtime_class.to_string()),
        // Components are sidecars (init containers that keep running): kubelet starts them
        // before the app's container, which the shim links them into, and stops them when
        // the app's container has exited (so a job's pod completes).
        init_containers: non_empty(spec.components.iter().map(component_container).collect()),
        containers: vec![container(app)],
        volumes: non_empty(spec.volumes.iter().map(volume).collect()),
        node_selector: non_empty_map(spec.scheduling.node_selector.clone()),
        tolerations: non_empty(spec.scheduling.tolerations.clone()),
        affinity: spec.scheduling.affinity.clone(),
        service_account_name: spec.service_account_name.clone(),
        image_pull_secrets: non_empty(spec.image_pull_secrets.clone()),
        // The guest sees only declared volumes; a token mount would be work for nothing.
        automount_service_account_token: Some(false),
        // Service links would be filtered out by the shim anyway (only declared env passes).
        enable_service_links: Some(false),
        ..Default::default()
    }
}

fn container(app: &WasmApp) -> Container {
    let spec = &app.spec;
    let http_port = http_port(&spec.capabilities.network.inbound);
    let checks = spec.health_checks.clone().unwrap_or_default();
    Container {
        name: CONTAINER_NAME.into(),
        image: Some(spec.module.image.clone()),
        // No command: plain images run their entrypoint (the .wasm file), Wasm artifacts
        // the entrypoint `spore image build` records.
        args: non_empty(spec.args.clone()),
        env: non_empty(spec.env.iter().map(env_var).collect()),
        ports: non_empty(
            spec.capabilities.network.inbound.iter().map(container_port).chain(metrics_container_port(app)).collect(),
        ),
        volume_mounts: non_empty(spec.capabilities.filesystem.iter().map(volume_mount).collect()),
        resources: resources(app),
        readiness_probe: match (&checks.readiness, http_port) {
            (Some(check), _) => Some(http_probe(check, http_port)),
            (None, Some(port)) => Some(tcp_probe(port)),
            (None, None) => None,
        },
        liveness_probe: checks.liveness.as_ref().map(|check| http_probe(check, http_port)),
        // A guest that fails before writing a termination message still explains itself.
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Default::default()
    }
}

/// A component's container, a sidecar: its image for kubelet to pull, its env for kubelet
/// to resolve and its mounts; the shim holds it without running it and links its code into
/// the app's.
fn component_container(component: &Component) -> Container {
    Container {
        name: component.name.clone(),
        restart_policy: Some("Always".into()),
        image: Some(component.image.clone()),
        env: non_empty(component.env.iter().map(env_var).collect()),
        volume_mounts: non_empty(component.capabilities.filesystem.iter().map(volume_mount).collect()),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Default::default()
    }
}

fn volume_mount(mount: &spore_crds::FilesystemMount) -> VolumeMount {
    VolumeMount {
        name: mount.volume.clone(),
        mount_path: mount.guest_path.clone(),
        read_only: Some(mount.read_only),
        ..Default::default()
    }
}

/// The port HTTP components are served on: the one named `http`, else the first TCP port
/// (the shim's rule).
pub fn http_port(inbound: &[InboundPort]) -> Option<i32> {
    let tcp = || inbound.iter().filter(|p| p.protocol == Protocol::Tcp);
    tcp().find(|p| p.name.as_deref() == Some("http")).or_else(|| tcp().next()).map(|p| p.port)
}

/// Where the shim serves an HTTP app's metrics: 9464, or the first port above it that no
/// inbound port uses. `None` without an inbound TCP port (no HTTP to count).
fn metrics_port(inbound: &[InboundPort]) -> Option<i32> {
    http_port(inbound)?;
    (DEFAULT_METRICS_PORT..=i32::from(u16::MAX)).find(|port| inbound.iter().all(|p| p.port != *port))
}

/// The metrics port, named `metrics` unless a declared port took the name (names are unique).
fn metrics_container_port(app: &WasmApp) -> Option<ContainerPort> {
    let inbound = &app.spec.capabilities.network.inbound;
    let name_taken = inbound.iter().any(|p| p.name.as_deref() == Some(METRICS_PORT_NAME));
    Some(ContainerPort {
        container_port: metrics_port(inbound)?,
        name: (!name_taken).then(|| METRICS_PORT_NAME.into()),
        protocol: Some(protocol(Protocol::Tcp).into()),
        ..Default::default()
    })
}

fn container_port(port: &InboundPort) -> ContainerPort {
    ContainerPort {
        container_port: port.port,
        name: port.name.clone().filter(|n| is_port_name(n)),
        protocol: Some(protocol(port.protocol).into()),
        ..Default::default()
    }
}

pub(crate) fn protocol(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
    }
}

/// Kubernetes port names are IANA service names: at most 15 lowercase letters, digits and
/// dashes, with a letter. Other names still name the port for Spore, not for Kubernetes.
pub(crate) fn is_port_name(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name.bytes().any(|b| b.is_ascii_lowercase())
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

fn env_var(var: &spore_crds::EnvVar) -> EnvVar {
    EnvVar {
        name: var.name.clone(),
        value: var.value.clone(),
        value_from: var.value_from.as_ref().map(|from| EnvVarSource {
            config_map_key_ref: from.config_map_key_ref.clone(),
            secret_key_ref: from.secret_key_ref.clone(),
            ..Default::default()
        }),
    }
}

fn volume(v: &spore_crds::Volume) -> Volume {
    Volume {
        name: v.name.clone(),
        config_map: v.config_map.clone(),
        secret: v.secret.clone(),
        empty_dir: v.empty_dir.clone(),
        persistent_volume_claim: v.persistent_volume_claim.clone(),
        host_path: v.host_path.clone(),
        ..Default::default()
    }
}

/// `limits.memory` and `limits.cpu` become the pod's requests and limits, so the scheduler
/// packs Wasm pods by what they may use.
fn resources(app: &WasmApp) -> Option<ResourceRequirements> {
    let limits = &app.spec.limits;
    let quantities: BTreeMap<String, Quantity> = [("memory", &limits.memory), ("cpu", &limits.cpu)]
        .into_iter()
        .filter_map(|(k, q)| q.clone().map(|q| (k.to_string(), q)))
        .collect();
    (!quantities.is_empty()).then(|| ResourceRequirements {
        limits: Some(quantities.clone()),
        requests: Some(quantities),
        ..Default::default()
    })
}

fn http_probe(check: &HttpCheck, http_port: Option<i32>) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(check.path.clone()),
            port: IntOrString::Int(check.port.or(http_port).unwrap_or(80)),
            ..Default::default()
        }),
        period_seconds: Some(check.period_seconds.unwrap_or(10)),
        initial_delay_seconds: check.initial_delay_seconds,
        failure_threshold: Some(check.failure_threshold.unwrap_or(3)),
        ..Default::default()
    }
}

/// Without a declared readiness check an HTTP app is ready once it accepts connections.
fn tcp_probe(port: i32) -> Probe {
    Probe {
        tcp_socket: Some(TCPSocketAction { port: IntOrString::Int(port), ..Default::default() }),
        period_seconds: Some(DEFAULT_PROBE_PERIOD_SECONDS),
        ..Default::default()
    }
}

fn non_empty<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}

fn non_empty_map(map: BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    (!map.is_empty()).then_some(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::app;

    fn pod(app: &WasmApp) -> PodSpec {
        pod_template(app, "spore").unwrap().spec.unwrap()
    }

    fn annotations(app: &WasmApp) -> BTreeMap<String, String> {
        pod_template(app, "spore").unwrap().metadata.unwrap().annotations.unwrap()
    }

    #[test]
    fn a_minimal_app_gets_the_runtime_class_and_deny_all_annotations() {
        let pod = pod(&app(""));
        assert_eq!(pod.runtime_class_name.as_deref(), Some("spore"));
        assert_eq!((pod.automount_service_account_token, pod.restart_policy.as_deref()), (Some(false), None));
        let c = &pod.containers[0];
        assert_eq!(c.image.as_deref(), Some("localhost:5010/spore/hello-http:1"));
        assert_eq!((c.command.as_ref(), c.args.as_ref(), c.readiness_probe.as_ref()), (None, None, None));
        let annotations = annotations(&app(""));
        assert_eq!(annotations[CAPABILITIES_ANNOTATION], "{}");
        assert_eq!(annotations[LIMITS_ANNOTATION], "{}");
        assert_eq!(annotations[ENV_ANNOTATION], "[]");
    }

    #[test]
    fn args_env_and_mounts_reach_the_container() {
        let app = app(concat!(
            "  args: [serve, --fast]\n",
            "  env:\n  - {name: MODE, value: prod}\n  - name: TOKEN\n    valueFrom: {secretKeyRef: {name: s, key: token}}\n",
            "  volumes:\n  - {name: config, configMap: {name: cfg}}\n  - {name: scratch, emptyDir: {}}\n",
            "  capabilities:\n    filesystem:\n    - {volume: config, guestPath: /config}\n",
            "    - {volume: scratch, guestPath: /tmp, readOnly: false}\n",
        ));
        let pod = pod(&app);
        let c = &pod.containers[0];
        assert_eq!(c.args, Some(vec!["serve".to_string(), "--fast".into()]));
        let env = c.env.as_ref().unwrap();
        assert_eq!((env[0].name.as_str(), env[0].value.as_deref()), ("MODE", Some("prod")));
        assert_eq!(env[1].value_from.as_ref().unwrap().secret_key_ref.as_ref().unwrap().key, "token");
        let mounts: Vec<_> = c
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| (m.name.as_str(), m.mount_path.as_str(), m.read_only))
            .collect();
        assert_eq!(mounts, [("config", "/config", Some(true)), ("scratch", "/tmp", Some(false))]);
        let volumes: Vec<_> = pod.volumes.unwrap().into_iter().map(|v| (v.name, v.config_map.is_some())).collect();
        assert_eq!(volumes, [("config".to_string(), true), ("scratch".into(), false)]);
        assert_eq!(annotations(&app)[ENV_ANNOTATION], r#"["MODE","TOKEN"]"#);
    }

    #[test]
    fn components_get_sidecars_started_before_the_app_and_their_wiring_an_annotation() {
        let app = app(concat!(
            "  capabilities:\n    network:\n      inbound: [{port: 8080}]\n",
            "  volumes: [{name: keys, secret: {secretName: keys}}]\n",
            "  components:\n  - name: auth\n    image: localhost:5010/auth:1\n",
            "    env: [{name: KEY_FILE, value: /keys/key}]\n",
            "    capabilities: {filesystem: [{volume: keys, guestPath: /keys}]}\n",
            "  middleware: [auth]\n",
        ));
        let pod = pod(&app);
        let names: Vec<&str> = pod.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, [CONTAINER_NAME]);
        let sidecars = pod.init_containers.as_ref().unwrap();
        let auth = &sidecars[0];
        assert_eq!((auth.name.as_str(), auth.restart_policy.as_deref()), ("auth", Some("Always")));
        assert_eq!(auth.image.as_deref(), Some("localhost:5010/auth:1"));
        assert_eq!(auth.env.as_ref().unwrap()[0].name, "KEY_FILE");
        let mount = &auth.volume_mounts.as_ref().unwrap()[0];
        assert_eq!((mount.name.as_str(), mount.mount_path.as_str(), mount.read_only), ("keys", "/keys", Some(true)));
        assert_eq!((auth.ports.as_ref(), auth.readiness_probe.as_ref()), (None, None), "a component serves nothing");
        assert!(pod.containers[0].volume_mounts.is_none(), "the app does not get the component's mount");
        let wiring: Wiring = serde_json::from_str(&annotations(&app)[COMPOSITION_ANNOTATION]).unwrap();
        assert_eq!(wiring, Wiring::of(&app.spec));
        assert_eq!(
            (wiring.middleware, wiring.components[0].env.clone()),
            (vec!["auth".to_string()], vec!["KEY_FILE".into()])
        );
        assert!(!annotations(&crate::fixtures::app("")).contains_key(COMPOSITION_ANNOTATION));
    }

    #[test]
    fn capabilities_and_limits_become_the_shims_annotations() {
        let app = app(concat!(
            "  capabilities:\n    network:\n      inbound: [{name: http, port: 8080}]\n",
            "      outbound: {http: [api.example.com], dns: true}\n",
            "  limits: {memory: 64Mi, timeout: 30s, cpu: 500m}\n",
        ));
        let annotations = annotations(&app);
        let caps: spore_crds::Capabilities = serde_json::from_str(&annotations[CAPABILITIES_ANNOTATION]).unwrap();
        assert_eq!(caps, app.spec.capabilities);
        let limits: spore_crds::Limits = serde_json::from_str(&annotations[LIMITS_ANNOTATION]).unwrap();
        assert_eq!(limits, app.spec.limits);
        let resources = pod(&app).containers[0].resources.clone().unwrap();
        let expected =
            BTreeMap::from([("cpu".to_string(), Quantity("500m".into())), ("memory".into(), Quantity("64Mi".into()))]);
        assert_eq!((resources.limits.as_ref(), resources.requests.as_ref()), (Some(&expected), Some(&expected)));
    }

    #[test]
    fn probes_follow_health_checks_or_default_to_the_http_port() {
        let http =
            "  capabilities:\n    network:\n      inbound: [{name: admin, port: 9000}, {name: http, port: 8080}]\n";
        // (spec lines, readiness, liveness): a probe as (HTTP path or "tcp", port).
        type Expected = Option<(&'static str, i32)>;
        let cases: [(String, Expected, Expected); 4] = [
            (String::new(), None, None),
            (http.to_string(), Some(("tcp", 8080)), None),
            (
                format!(
                    "{http}  healthChecks: {{readiness: {{path: /ready}}, liveness: {{path: /live, port: 9000}}}}\n"
                ),
                Some(("/ready", 8080)),
                Some(("/live", 9000)),
            ),
            ("  healthChecks: {readiness: {path: /ready, port: 7000}}\n".to_string(), Some(("/ready", 7000)), None),
        ];
        for (extra, readiness, liveness) in cases {
            let c = pod(&app(&extra)).containers.remove(0);
            let describe = |p: Option<Probe>| {
                p.map(|p| match (p.http_get, p.tcp_socket) {
                    (Some(get), _) => (get.path.unwrap().leak() as &str, int(get.port)),
                    (None, Some(tcp)) => ("tcp", int(tcp.port)),
                    _ => panic!("probe without action"),
                })
            };
            assert_eq!(describe(c.readiness_probe), readiness, "{extra}");
            assert_eq!(describe(c.liveness_probe), liveness, "{extra}");
        }
    }

    fn int(port: IntOrString) -> i32 {
        match port {
            IntOrString::Int(p) => p,
            IntOrString::String(s) => panic!("named port {s}"),
        }
    }

    #[test]
    fn http_apps_get_a_metrics_port_prometheus_is_told_to_scrape() {
        // (inbound ports, the metrics port, its container port name)
        let cases = [
            ("[]", None, None),
            ("[{port: 53, protocol: UDP}]", None, None),
            ("[{name: http, port: 8080}]", Some(9464), Some("metrics")),
            ("[{name: http, port: 9464}]", Some(9465), Some("metrics")),
            ("[{name: http, port: 8080}, {port: 9465}, {port: 9464, protocol: UDP}]", Some(9466), Some("metrics")),
            ("[{name: http, port: 8080}, {name: metrics, port: 9000}]", Some(9464), None),
        ];
        for (inbound, port, name) in cases {
            let app = app(&format!("  capabilities:\n    network:\n      inbound: {inbound}\n"));
            let annotations = annotations(&app);
            let scraped = [METRICS_PORT_ANNOTATION, "prometheus.io/port", "prometheus.io/scrape", "prometheus.io/path"]
                .map(|key| annotations.get(key).map(String::as_str));
            let expected = port.map(|p| p.to_string());
            assert_eq!(
                scraped,
                [expected.as_deref(), expected.as_deref(), port.and(Some("true")), port.and(Some("/metrics"))],
                "{inbound}"
            );
            let ports = pod(&app).containers.remove(0).ports.unwrap_or_default();
            let metrics = ports.iter().find(|p| Some(p.container_port) == port && p.protocol.as_deref() == Some("TCP"));
            assert_eq!(metrics.map(|p| p.name.as_deref()), port.map(|_| name), "{inbound}");
            assert_eq!(ports.len(), app.spec.capabilities.network.inbound.len() + usize::from(port.is_some()));
        }
    }

    #[test]
    fn the_users_prometheus_annotations_win_but_not_over_the_shims_port() {
        let app = app(concat!(
            "  capabilities:\n    network:\n      inbound: [{name: http, port: 8080}]\n",
            "  podAnnotations: {prometheus.io/scrape: \"false\", spore.dev/metrics-port: \"1\"}\n",
        ));
        let annotations = annotations(&app);
        assert_eq!(annotations["prometheus.io/scrape"], "false");
        assert_eq!(annotations[METRICS_PORT_ANNOTATION], "9464");
    }

    #[test]
    fn scheduling_and_pod_metadata_pass_through() {
        let app = app(concat!(
            "  scheduling:\n    nodeSelector: {zone: a}\n    tolerations: [{key: wasm, operator: Exists}]\n",
            "  podLabels: {team: web}\n  podAnnotations: {note: hi}\n  serviceAccountName: runner\n",
            "  imagePullSecrets: [{name: regcred}]\n",
        ));
        let template = pod_template(&app, "spore").unwrap();
        let meta = template.metadata.unwrap();
        assert_eq!(meta.labels.unwrap()["team"], "web");
        assert_eq!(meta.annotations.unwrap()["note"], "hi");
        let pod = template.spec.unwrap();
        assert_eq!(pod.node_selector.unwrap()["zone"], "a");
        assert_eq!(pod.tolerations.unwrap()[0].key.as_deref(), Some("wasm"));
        assert_eq!(pod.service_account_name.as_deref(), Some("runner"));
        assert_eq!(pod.image_pull_secrets.unwrap()[0].name, "regcred");
    }

    #[test]
    fn user_labels_cannot_override_the_selector_label() {
        let app = app("  podLabels: {spore.dev/app: other}\n");
        let template = pod_template(&app, "spore").unwrap();
        assert_eq!(template.metadata.unwrap().labels.unwrap()["spore.dev/app"], "hello");
    }

    #[test]
    fn port_names_outside_kubernetes_rules_are_dropped_from_the_pod() {
        for (name, ok) in [
            ("http", true),
            ("metrics-2", true),
            ("HTTP", false),
            ("a-very-long-port-name", false),
            ("123", false),
            ("-x", false),
        ] {
            assert_eq!(is_port_name(name), ok, "{name}");
        }
    }

    #[test]
    fn http_port_prefers_the_port_named_http() {
        let port = |name: Option<&str>, port, protocol| InboundPort { name: name.map(Into::into), port, protocol };
        let cases = [
            (vec![], None),
            (vec![port(Some("dns"), 53, Protocol::Udp)], None),
            (vec![port(None, 9000, Protocol::Tcp), port(Some("http"), 8080, Protocol::Tcp)], Some(8080)),
            (vec![port(None, 9000, Protocol::Tcp)], Some(9000)),
        ];
        for (inbound, expected) in cases {
            assert_eq!(http_port(&inbound), expected, "{inbound:?}");
        }
    }
}
