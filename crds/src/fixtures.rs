//! Test fixtures: `WasmApp::test().with_replicas(3).with_mount("data", "/data")`. Public with
//! the `test-cases` feature, for [`crate::cases`].

use k8s_openapi::api::core::v1::{ConfigMapKeySelector, ConfigMapVolumeSource, EmptyDirVolumeSource};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::app::{Autoscale, EnvVar, EnvVarSource, HttpCheck, Volume, WasmApp, WasmAppSpec};
use crate::batch::{CronJobSettings, JobSettings};
use crate::capabilities::{FilesystemMount, InboundPort, Protocol, SocketRule};
use crate::composition::Component;

/// A valid app to start from: `WasmApp::test()`.
pub fn app() -> WasmApp {
    WasmApp::test()
}

/// An autoscale range with a concurrency target of 10.
pub fn autoscale(min: i32, max: i32) -> Autoscale {
    Autoscale {
        min_replicas: min,
        max_replicas: max,
        target_concurrency: Some(10),
        target_cpu_utilization: None,
        scale_to_zero_after: None,
    }
}

/// An emptyDir volume.
pub fn empty_dir(name: &str) -> Volume {
    Volume { name: name.into(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Volume::default() }
}

/// An emptyDir volume of at most `size_limit`.
pub fn empty_dir_of(name: &str, size_limit: &str) -> Volume {
    let source = EmptyDirVolumeSource { size_limit: Some(Quantity(size_limit.into())), ..Default::default() };
    Volume { name: name.into(), empty_dir: Some(source), ..Volume::default() }
}

/// A volume of the ConfigMap `config_map`.
pub fn config_map(name: &str, config_map: &str) -> Volume {
    Volume {
        name: name.into(),
        config_map: Some(ConfigMapVolumeSource { name: config_map.into(), ..Default::default() }),
        ..Volume::default()
    }
}

/// An environment variable with a literal value.
pub fn env(name: &str, value: &str) -> EnvVar {
    EnvVar { name: name.into(), value: Some(value.into()), value_from: None }
}

/// An environment variable read from a ConfigMap key.
pub fn env_from_config_map(name: &str, config_map: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(EnvVarSource {
            config_map_key_ref: Some(ConfigMapKeySelector { name: config_map.into(), key: key.into(), optional: None }),
            secret_key_ref: None,
        }),
    }
}

/// A socket rule for `cidr`, all ports.
pub fn socket(cidr: &str) -> SocketRule {
    SocketRule { cidr: cidr.into(), port: None, end_port: None }
}

/// A component of `image` named `name`, with no plugs and no capabilities.
pub fn component(name: &str) -> Component {
    Component { name: name.into(), image: format!("localhost:5000/spore/{name}:latest"), ..Component::default() }
}

impl Component {
    pub fn with_plug(mut self, name: &str) -> Self {
        self.plugs.push(name.into());
        self
    }

    pub fn with_env(mut self, env: EnvVar) -> Self {
        self.env.push(env);
        self
    }

    /// Mounts `volume` read-only at `guest_path` for this component.
    pub fn with_mount(mut self, volume: &str, guest_path: &str) -> Self {
        let mount = FilesystemMount { volume: volume.into(), guest_path: guest_path.into(), read_only: true };
        self.capabilities.filesystem.push(mount);
        self
    }

    pub fn with_outbound_http(mut self, pattern: &str) -> Self {
        self.capabilities.network.outbound.http.push(pattern.into());
        self
    }
}

/// A job with Kubernetes' defaults.
pub fn job() -> JobSettings {
    JobSettings::default()
}

/// A schedule of `schedule` with Kubernetes' defaults.
pub fn cron(schedule: &str) -> CronJobSettings {
    CronJobSettings { schedule: schedule.into(), ..CronJobSettings::default() }
}

/// An HTTP check of `path`.
pub fn http_check(path: &str) -> HttpCheck {
    HttpCheck { path: path.into(), ..HttpCheck::default() }
}

impl Autoscale {
    pub fn with_cpu_target(mut self, percent: i32) -> Self {
        self.target_cpu_utilization = Some(percent);
        self
    }

    pub fn with_concurrency_target(mut self, requests: Option<i32>) -> Self {
        self.target_concurrency = requests;
        self
    }

    pub fn with_scale_to_zero_after(mut self, idle: &str) -> Self {
        self.scale_to_zero_after = Some(idle.into());
        self
    }
}

impl Volume {
    pub fn with_empty_dir(mut self) -> Self {
        self.empty_dir = Some(EmptyDirVolumeSource::default());
        self
    }

    pub fn without_sources(self) -> Self {
        Volume { name: self.name, ..Volume::default() }
    }
}

impl EnvVar {
    pub fn with_value(mut self, value: &str) -> Self {
        self.value = Some(value.into());
        self
    }

    pub fn without_value(mut self) -> Self {
        self.value = None;
        self
    }
}

impl SocketRule {
    pub fn with_ports(mut self, port: i32, end_port: Option<i32>) -> Self {
        self.port = Some(port);
        self.end_port = end_port;
        self
    }

    pub fn with_end_port(mut self, end_port: i32) -> Self {
        self.end_port = Some(end_port);
        self
    }
}

impl HttpCheck {
    pub fn with_port(mut self, port: i32) -> Self {
        self.port = Some(port);
        self
    }

    pub fn with_period_seconds(mut self, seconds: i32) -> Self {
        self.period_seconds = Some(seconds);
        self
    }
}

impl WasmApp {
    /// A valid app named `test` in `default` that runs `localhost:5000/spore/test:latest`.
    pub fn test() -> Self {
        let mut app = WasmApp::new(
            "test",
            WasmAppSpec {
                module: crate::ModuleSource { image: "localhost:5000/spore/test:latest".into(), plugs: Vec::new() },
                ..Default::default()
            },
        );
        app.metadata.namespace = Some("default".into());
        app
    }

    pub fn with_name(mut self, name: &str) -> Self {
        self.metadata.name = Some(name.into());
        self
    }

    pub fn with_service_account(mut self, name: &str) -> Self {
        self.spec.service_account_name = Some(name.into());
        self
    }

    pub fn with_runtime_class(mut self, name: &str) -> Self {
        self.spec.runtime_class_name = Some(name.into());
        self
    }

    pub fn with_image(mut self, image: &str) -> Self {
        self.spec.module.image = image.into();
        self
    }

    pub fn with_replicas(mut self, replicas: i32) -> Self {
        self.spec.scaling.replicas = Some(replicas);
        self
    }

    pub fn with_autoscale(mut self, autoscale: Autoscale) -> Self {
        self.spec.scaling.autoscale = Some(autoscale);
        self
    }

    pub fn with_env(mut self, env: EnvVar) -> Self {
        self.spec.env.push(env);
        self
    }

    pub fn with_volume(mut self, volume: Volume) -> Self {
        self.spec.volumes.push(volume);
        self
    }

    /// Mounts `volume` read-only at `guest_path`.
    pub fn with_mount(self, volume: &str, guest_path: &str) -> Self {
        self.with_mount_rw(volume, guest_path, false)
    }

    pub fn with_mount_rw(mut self, volume: &str, guest_path: &str, writable: bool) -> Self {
        self.spec.capabilities.filesystem.push(FilesystemMount {
            volume: volume.into(),
            guest_path: guest_path.into(),
            read_only: !writable,
        });
        self
    }

    pub fn with_inbound(self, port: i32) -> Self {
        self.with_port(InboundPort { name: None, port, protocol: Protocol::Tcp })
    }

    /// A TCP port named `name`.
    pub fn with_named_inbound(self, name: &str, port: i32) -> Self {
        self.with_port(InboundPort { name: Some(name.into()), port, protocol: Protocol::Tcp })
    }

    pub fn with_udp_inbound(self, port: i32) -> Self {
        self.with_port(InboundPort { name: None, port, protocol: Protocol::Udp })
    }

    pub fn with_port(mut self, port: InboundPort) -> Self {
        self.spec.capabilities.network.inbound.push(port);
        self
    }

    pub fn with_outbound_http(mut self, pattern: &str) -> Self {
        self.spec.capabilities.network.outbound.http.push(pattern.into());
        self
    }

    pub fn with_outbound_tcp(mut self, rule: SocketRule) -> Self {
        self.spec.capabilities.network.outbound.tcp.push(rule);
        self
    }

    pub fn with_outbound_udp(mut self, rule: SocketRule) -> Self {
        self.spec.capabilities.network.outbound.udp.push(rule);
        self
    }

    pub fn with_memory(mut self, memory: &str) -> Self {
        self.spec.limits.memory = Some(Quantity(memory.into()));
        self
    }

    pub fn with_cpu(mut self, cpu: &str) -> Self {
        self.spec.limits.cpu = Some(Quantity(cpu.into()));
        self
    }

    pub fn with_timeout(mut self, timeout: &str) -> Self {
        self.spec.limits.timeout = Some(timeout.into());
        self
    }

    pub fn with_max_concurrency(mut self, n: i32) -> Self {
        self.spec.limits.max_concurrency = Some(n);
        self
    }

    pub fn with_instance_reuse(mut self, max_requests: i32, max_concurrent: Option<i32>) -> Self {
        self.spec.limits.instance_reuse = Some(crate::limits::InstanceReuse { max_requests, max_concurrent });
        self
    }

    pub fn with_readiness(mut self, check: HttpCheck) -> Self {
        self.spec.health_checks.get_or_insert_with(Default::default).readiness = Some(check);
        self
    }

    pub fn with_component(mut self, component: Component) -> Self {
        self.spec.components.push(component);
        self
    }

    /// `spec.module.plugs` gets `name`.
    pub fn with_plug(mut self, name: &str) -> Self {
        self.spec.module.plugs.push(name.into());
        self
    }

    pub fn with_middleware(mut self, name: &str) -> Self {
        self.spec.middleware.push(name.into());
        self
    }

    pub fn with_job(mut self, job: JobSettings) -> Self {
        self.spec.job = Some(job);
        self
    }

    pub fn with_cron_job(mut self, cron: CronJobSettings) -> Self {
        self.spec.cron_job = Some(cron);
        self
    }
}
