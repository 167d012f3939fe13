use super::*;
use crate::app::{Volume, WasmApp};
use crate::batch::{CronJobSettings, JobSettings};
use crate::fixtures::*;

/// An app `validate()` must reject, the field it must blame, a fragment of the message, and
/// whether the CRD's CEL rules reject it too (the rest is caught by the OpenAPI schema —
/// pattern, minLength, maxItems, list-map keys — or only client-side).
struct Invalid {
    name: &'static str,
    app: WasmApp,
    field: &'static str,
    fragment: &'static str,
    cel: bool,
}

fn invalid(name: &'static str, app: WasmApp, field: &'static str, fragment: &'static str) -> Invalid {
    Invalid { name, app, field, fragment, cel: true }
}

impl Invalid {
    /// Not expressible in CEL: only `validate()` (and maybe the OpenAPI schema) catches it.
    fn not_in_cel(mut self) -> Self {
        self.cel = false;
        self
    }
}

fn invalid_apps() -> Vec<Invalid> {
    let mut too_many_volumes = app();
    for i in 0..65 {
        too_many_volumes = too_many_volumes.with_volume(empty_dir(&format!("v{i}")));
    }
    vec![
        invalid("negative replicas", app().with_replicas(-1), "spec.scaling.replicas", "set 0 or more"),
        invalid(
            "autoscale min above max",
            app().with_autoscale(autoscale(5, 2)),
            "spec.scaling.autoscale",
            "minReplicas (5) is greater than maxReplicas (2)",
        ),
        invalid(
            "replicas and a cpu autoscaler together",
            app().with_replicas(3).with_autoscale(autoscale(1, 5).with_concurrency_target(None).with_cpu_target(50)),
            "spec.scaling",
            "sets both replicas and autoscale",
        ),
        invalid(
            "scale to zero without a port",
            app().with_autoscale(autoscale(0, 2)),
            "spec.scaling.autoscale.minReplicas",
            "needs exactly one TCP inbound port, but the app declares none",
        ),
        invalid(
            "scale to zero with two ports",
            app().with_inbound(8080).with_inbound(9000).with_autoscale(autoscale(0, 2)),
            "spec.scaling.autoscale.minReplicas",
            "declares 8080/TCP, 9000/TCP",
        ),
        invalid(
            "scale to zero on cpu",
            app().with_inbound(8080).with_autoscale(autoscale(0, 2).with_concurrency_target(None).with_cpu_target(50)),
            "spec.scaling.autoscale.minReplicas",
            "needs targetConcurrency",
        ),
        invalid(
            "negative autoscale min",
            app().with_autoscale(autoscale(-1, 2)),
            "spec.scaling.autoscale.minReplicas",
            "set 0 or more",
        ),
        invalid(
            "idle time without scale to zero",
            app().with_inbound(8080).with_autoscale(autoscale(1, 2).with_scale_to_zero_after("30s")),
            "spec.scaling.autoscale.scaleToZeroAfter",
            "applies only with minReplicas 0",
        ),
        invalid(
            "idle time that is no duration",
            app().with_inbound(8080).with_autoscale(autoscale(0, 2).with_scale_to_zero_after("a minute")),
            "spec.scaling.autoscale.scaleToZeroAfter",
            "use a duration such as 60s",
        ),
        invalid(
            "autoscale without target",
            app().with_autoscale(autoscale(1, 3).with_concurrency_target(None)),
            "spec.scaling.autoscale",
            "sets no target",
        ),
        invalid(
            "autoscale with two targets",
            app().with_autoscale(autoscale(1, 3).with_cpu_target(80)),
            "spec.scaling.autoscale",
            "both targetConcurrency and targetCpuUtilization",
        ),
        invalid(
            "autoscale cpu target zero",
            app().with_autoscale(autoscale(1, 3).with_concurrency_target(None).with_cpu_target(0)),
            "spec.scaling.autoscale.targetCpuUtilization",
            "at least 1",
        ),
        invalid(
            "mount of a missing volume",
            app().with_mount("data", "/data"),
            "spec.capabilities.filesystem[0].volume",
            r#"names volume "data", which is not in spec.volumes; add a volume named "data" or fix the name"#,
        ),
        invalid(
            "relative guest path",
            app().with_volume(empty_dir("data")).with_mount("data", "data"),
            "spec.capabilities.filesystem[0].guestPath",
            "is not absolute",
        ),
        invalid(
            "two mounts at one guest path",
            app()
                .with_volume(empty_dir("a"))
                .with_volume(empty_dir("b"))
                .with_mount("a", "/data")
                .with_mount("b", "/data"),
            "spec.capabilities.filesystem[1].guestPath",
            "already mounted by spec.capabilities.filesystem[0]",
        ),
        invalid(
            "inbound port zero",
            app().with_inbound(0),
            "spec.capabilities.network.inbound[0].port",
            "between 1 and 65535",
        ),
        invalid(
            "inbound port too high",
            app().with_inbound(70000),
            "spec.capabilities.network.inbound[0].port",
            "between 1 and 65535",
        ),
        invalid(
            "tcp endPort below port",
            app().with_outbound_tcp(socket("10.0.0.0/8").with_ports(8080, Some(80))),
            "spec.capabilities.network.outbound.tcp[0].endPort",
            "below port 8080",
        ),
        invalid(
            "tcp endPort without port",
            app().with_outbound_tcp(socket("10.0.0.0/8").with_end_port(80)),
            "spec.capabilities.network.outbound.tcp[0].endPort",
            "without port",
        ),
        invalid(
            "udp port too high",
            app().with_outbound_udp(socket("10.0.0.0/8").with_ports(70000, None)),
            "spec.capabilities.network.outbound.udp[0].port",
            "between 1 and 65535",
        ),
        invalid(
            "cidr prefix too long",
            app().with_outbound_tcp(socket("10.0.0.0/33")),
            "spec.capabilities.network.outbound.tcp[0].cidr",
            "not a valid CIDR",
        ),
        invalid(
            "cidr without prefix",
            app().with_outbound_tcp(socket("10.0.0.1")),
            "spec.capabilities.network.outbound.tcp[0].cidr",
            "add a prefix length",
        ),
        invalid(
            "cidr that is a name",
            app().with_outbound_udp(socket("example.com/32")),
            "spec.capabilities.network.outbound.udp[0].cidr",
            "not a valid CIDR",
        ),
        invalid(
            "env with value and valueFrom",
            app().with_env(env_from_config_map("A", "cm", "a").with_value("x")),
            "spec.env[0]",
            "both value and valueFrom",
        ),
        invalid(
            "env without value",
            app().with_env(env("A", "x").without_value()),
            "spec.env[0]",
            "neither value nor valueFrom",
        ),
        invalid(
            "env valueFrom without ref",
            app().with_env(EnvVar { value_from: Some(Default::default()), ..env("A", "x").without_value() }),
            "spec.env[0].valueFrom",
            "neither configMapKeyRef nor secretKeyRef",
        ),
        invalid("env name with =", app().with_env(env("A=B", "x")), "spec.env[0].name", "not a valid variable name")
            .not_in_cel(),
        invalid(
            "volume without source",
            app().with_volume(empty_dir("data").without_sources()),
            "spec.volumes[0]",
            "has no source",
        ),
        invalid(
            "volume with two sources",
            app().with_volume(config_map("data", "cm").with_empty_dir()),
            "spec.volumes[0]",
            "sets 2 sources (configMap, emptyDir)",
        ),
        invalid(
            "volume name not a DNS label",
            app().with_volume(empty_dir("Data_1")),
            "spec.volumes[0].name",
            "not a DNS-1123 label",
        )
        .not_in_cel(),
        invalid(
            "duplicate volume names",
            app().with_volume(empty_dir("data")).with_volume(empty_dir("data")),
            "spec.volumes[1].name",
            "already used by spec.volumes[0]",
        )
        .not_in_cel(),
        invalid("too many volumes", too_many_volumes, "spec.volumes", "has 65 entries, but at most 64").not_in_cel(),
        invalid("empty image", app().with_image(""), "spec.module.image", "is empty").not_in_cel(),
        invalid(
            "memory in the wrong unit",
            app().with_memory("64MB"),
            "spec.limits.memory",
            "invalid memory quantity \"64MB\"",
        ),
        invalid("cpu that is not a quantity", app().with_cpu("lots"), "spec.limits.cpu", "invalid cpu quantity"),
        invalid("timeout without unit", app().with_timeout("30"), "spec.limits.timeout", "invalid duration \"30\""),
        invalid("maxConcurrency zero", app().with_max_concurrency(0), "spec.limits.maxConcurrency", "at least 1"),
        invalid(
            "http pattern with a path",
            app().with_outbound_http("https://example.com/api"),
            "spec.capabilities.network.outbound.http[0]",
            "not a host pattern",
        )
        .not_in_cel(),
        invalid(
            "http pattern with a bad wildcard",
            app().with_outbound_http("api.*.com"),
            "spec.capabilities.network.outbound.http[0]",
            "not a host pattern",
        )
        .not_in_cel(),
        invalid(
            "http pattern with port zero",
            app().with_outbound_http("example.com:0"),
            "spec.capabilities.network.outbound.http[0]",
            "not a host pattern",
        )
        .not_in_cel(),
        invalid(
            "relative readiness path",
            app().with_readiness(http_check("healthz")),
            "spec.healthChecks.readiness.path",
            "does not start with /",
        ),
        invalid(
            "readiness port zero",
            app().with_readiness(http_check("/healthz").with_port(0)),
            "spec.healthChecks.readiness.port",
            "between 1 and 65535",
        ),
        invalid(
            "readiness period zero",
            app().with_readiness(http_check("/healthz").with_period_seconds(0)),
            "spec.healthChecks.readiness.periodSeconds",
            "at least 1",
        ),
        invalid(
            "job and cronJob together",
            app().with_job(job()).with_cron_job(cron("@daily")),
            "spec",
            "sets both job and cronJob",
        ),
        invalid(
            "a job that scales",
            app().with_job(job()).with_replicas(2),
            "spec.scaling",
            "which does not scale; remove it",
        ),
        invalid(
            "a cronJob that autoscales",
            app().with_cron_job(cron("@daily")).with_autoscale(autoscale(1, 3)),
            "spec.scaling",
            "which does not scale",
        ),
        invalid(
            "a job that listens",
            app().with_job(job()).with_inbound(8080),
            "spec.capabilities.network.inbound",
            "which serves no traffic; remove it, or remove job/cronJob",
        ),
        invalid(
            "negative backoffLimit",
            app().with_job(JobSettings { backoff_limit: Some(-1), ..job() }),
            "spec.job.backoffLimit",
            "is -1; set it to at least 0",
        ),
        invalid(
            "zero activeDeadlineSeconds",
            app().with_job(JobSettings { active_deadline_seconds: Some(0), ..job() }),
            "spec.job.activeDeadlineSeconds",
            "at least 1",
        ),
        invalid(
            "negative ttlSecondsAfterFinished",
            app().with_job(JobSettings { ttl_seconds_after_finished: Some(-5), ..job() }),
            "spec.job.ttlSecondsAfterFinished",
            "at least 0",
        ),
        invalid(
            "zero completions",
            app().with_job(JobSettings { completions: Some(0), ..job() }),
            "spec.job.completions",
            "at least 1",
        ),
        invalid(
            "zero parallelism in a schedule's job",
            app().with_cron_job(CronJobSettings {
                job: JobSettings { parallelism: Some(0), ..job() },
                ..cron("@daily")
            }),
            "spec.cronJob.job.parallelism",
            "at least 1",
        ),
        invalid(
            "a schedule with six fields",
            app().with_cron_job(cron("0 * * * * *")),
            "spec.cronJob.schedule",
            "is not a cron schedule",
        ),
        invalid(
            "a schedule with a TZ prefix",
            app().with_cron_job(cron("TZ=UTC 0 3 * * *")),
            "spec.cronJob.schedule",
            "put a time zone in timeZone",
        ),
        invalid("an unknown macro", app().with_cron_job(cron("@often")), "spec.cronJob.schedule", "@hourly"),
        invalid(
            "a negative history limit",
            app().with_cron_job(CronJobSettings { failed_jobs_history_limit: Some(-1), ..cron("@daily") }),
            "spec.cronJob.failedJobsHistoryLimit",
            "set 0 or more",
        ),
        invalid(
            "an empty time zone",
            app().with_cron_job(CronJobSettings { time_zone: Some(String::new()), ..cron("@daily") }),
            "spec.cronJob.timeZone",
            "is empty",
        )
        .not_in_cel(),
    ]
}

fn valid_apps() -> Vec<(&'static str, WasmApp)> {
    vec![
        ("the default test app", app()),
        ("zero replicas", app().with_replicas(0)),
        ("autoscale on concurrency", app().with_autoscale(autoscale(1, 5))),
        ("scale to zero", app().with_inbound(8080).with_autoscale(autoscale(0, 10).with_scale_to_zero_after("90s"))),
        (
            "the autoscaler's count beside its range",
            app().with_inbound(8080).with_autoscale(autoscale(0, 3)).with_replicas(2),
        ),
        ("a job with defaults", app().with_job(job())),
        (
            "a job with every knob",
            app().with_job(JobSettings {
                backoff_limit: Some(0),
                active_deadline_seconds: Some(600),
                ttl_seconds_after_finished: Some(0),
                completions: Some(3),
                parallelism: Some(2),
            }),
        ),
        ("a schedule every minute", app().with_cron_job(cron("* * * * *")).with_timeout("30s")),
        (
            "a schedule with every knob",
            app().with_cron_job(CronJobSettings {
                time_zone: Some("Europe/Berlin".into()),
                concurrency_policy: Some(crate::ConcurrencyPolicy::Forbid),
                suspend: true,
                successful_jobs_history_limit: Some(0),
                failed_jobs_history_limit: Some(5),
                job: JobSettings { backoff_limit: Some(2), ..job() },
                ..cron(" @hourly ")
            }),
        ),
        ("autoscale on cpu", app().with_autoscale(autoscale(2, 2).with_concurrency_target(None).with_cpu_target(80))),
        (
            "everything at once",
            app()
                .with_replicas(2)
                .with_env(env("LOG_LEVEL", "debug"))
                .with_env(env_from_config_map("GREETING", "app-config", "greeting"))
                .with_volume(config_map("config", "app-config"))
                .with_volume(empty_dir("scratch"))
                .with_mount("config", "/config")
                .with_mount_rw("scratch", "/scratch", true)
                .with_inbound(8080)
                .with_outbound_http("*")
                .with_outbound_http("*.example.com")
                .with_outbound_http("api.example.com:443")
                .with_outbound_http("https://example.com")
                .with_outbound_http("http://[::1]:8080")
                .with_outbound_http("10.0.0.1:80")
                .with_outbound_tcp(socket("10.0.0.0/8").with_ports(5432, None))
                .with_outbound_tcp(socket("192.168.1.10/32").with_ports(8000, Some(8100)))
                .with_outbound_udp(socket("fd00::/8").with_ports(53, None))
                .with_outbound_udp(socket("::/0"))
                .with_memory("64Mi")
                .with_cpu("500m")
                .with_timeout("30s")
                .with_max_concurrency(50)
                .with_readiness(http_check("/healthz").with_port(8080).with_period_seconds(5)),
        ),
    ]
}

#[test]
fn rejects_each_invalid_app_blaming_the_right_field() {
    for case in invalid_apps() {
        let errors = case.app.validate().expect_err(case.name);
        assert!(
            errors.iter().any(|e| e.field == case.field && e.message.contains(case.fragment)),
            "{}: expected `{}: ...{}...`, got:\n{errors}",
            case.name,
            case.field,
            case.fragment,
        );
    }
}

#[test]
fn accepts_valid_apps() {
    for (name, app) in valid_apps() {
        if let Err(errors) = app.validate() {
            panic!("{name}: unexpected errors:\n{errors}");
        }
    }
}

#[test]
fn reports_every_problem_not_just_the_first() {
    let errors = app().with_image("").with_replicas(-1).with_memory("lots").validate().unwrap_err();
    let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["spec.module.image", "spec.scaling.replicas", "spec.limits.memory"]);
}

#[test]
fn displays_one_error_per_line_as_field_colon_message() {
    let errors = app().with_mount("data", "/data").with_replicas(-1).validate().unwrap_err();
    assert_eq!(
        errors.to_string(),
        "spec.scaling.replicas: is -1; set 0 or more\n\
         spec.capabilities.filesystem[0].volume: names volume \"data\", which is not in spec.volumes; add a volume named \"data\" or fix the name"
    );
}

#[test]
fn every_invalid_case_is_caught_by_the_crd_cel_rules_too() {
    for case in invalid_apps().into_iter().filter(|c| c.cel) {
        let errors = kube::core::cel::validate_cel(&case.app).expect_err(case.name);
        assert!(
            errors.as_slice().iter().all(|e| e.kind == kube::core::cel::ErrorKind::ValidationFailure),
            "{}: CEL rules failed to evaluate:\n{errors}",
            case.name
        );
        // CEL reports the object that carries the rule; `validate()` the field inside it.
        assert!(
            errors.as_slice().iter().any(|e| case.field.starts_with(&e.field_path)),
            "{}: CEL blamed another field than {}:\n{errors}",
            case.name,
            case.field
        );
    }
}

#[test]
fn valid_apps_pass_the_crd_cel_rules() {
    for (name, app) in valid_apps() {
        if let Err(errors) = kube::core::cel::validate_cel(&app) {
            panic!("{name}: CEL rejected a valid app:\n{errors}");
        }
    }
}

#[test]
fn parses_cidrs_like_kubernetes() {
    for ok in ["10.0.0.0/8", "10.0.0.1/8", "0.0.0.0/0", "::/0", "::1/128", "fd00::/8", "192.168.1.1/32"] {
        assert!(parse_cidr(ok).is_some(), "{ok}");
    }
    for bad in
        ["10.0.0.0", "10.0.0.0/33", "::1/129", "10.0.0.0/", "10.0.0.0/08", "10.0.0/8", "010.0.0.0/8", "host/8", ""]
    {
        assert!(parse_cidr(bad).is_none(), "{bad}");
    }
}

#[test]
fn accepts_only_host_patterns_for_outbound_http() {
    for ok in [
        "*",
        "*.example.com",
        "example.com",
        "example.com:8443",
        "https://example.com",
        "http://*",
        "10.0.0.1:80",
        "[::1]:8080",
        "localhost",
    ] {
        assert!(is_valid_http_pattern(ok), "{ok}");
    }
    for bad in [
        "",
        "https://",
        "example.com/path",
        "*example.com",
        "ex ample.com",
        "example.com:",
        "example.com:99999",
        "ftp://example.com",
        "-bad.com",
        "[::1",
        "*.",
        "a..b",
    ] {
        assert!(!is_valid_http_pattern(bad), "{bad}");
    }
}

#[test]
fn source_kind_is_the_only_source_or_none() {
    let volume = config_map("config", "app-config");
    assert!(matches!(volume.source_kind(), Some(VolumeSourceKind::ConfigMap(cm)) if cm.name == "app-config"));
    assert_eq!(volume.clone().without_sources().source_kind(), None);
    assert_eq!(volume.with_empty_dir().source_kind(), None);
}

use crate::app::{EnvVar, VolumeSourceKind};

const HELLO: &str = r#"
apiVersion: spore.dev/v1alpha1
kind: WasmApp
metadata:
  name: hello
spec:
  module:
    image: localhost:5000/spore/hello:latest
  volumes:
    - name: data
      emptyDir: {}
  capabilities:
    filesystem:
      - volume: data
        guestPath: /data
  scaling:
    autoscale:
      maxReplicas: 3
      targetConcurrency: 10
"#;

#[test]
fn parses_a_manifest_and_applies_defaults() {
    let app = parse_manifest(HELLO).unwrap();
    assert_eq!(app.metadata.name.as_deref(), Some("hello"));
    assert!(app.spec.capabilities.filesystem[0].read_only, "readOnly defaults to true");
    assert_eq!(app.spec.scaling.autoscale.as_ref().unwrap().min_replicas, 1);
    app.validate().unwrap();
}

#[test]
fn manifest_typos_are_rejected_with_path_and_line() {
    let yaml = HELLO.replace("guestPath: /data", "guestPath: /data\n        readonly: true");
    let err = parse_manifest(&yaml).unwrap_err().to_string();
    assert!(err.contains("unknown field `readonly`"), "{err}");
    assert!(err.contains("spec.capabilities.filesystem[0]"), "{err}");
    assert!(err.contains("line 16"), "{err}");
}

#[test]
fn manifest_of_another_kind_is_rejected_by_kind() {
    let err = parse_manifest(&HELLO.replace("kind: WasmApp", "kind: Deployment")).unwrap_err();
    assert!(matches!(&err, ManifestError::WrongKind { found } if found == "Deployment"), "{err}");
    assert!(err.to_string().contains("must be a WasmApp"), "{err}");

    let err = parse_manifest(&HELLO.replace("spore.dev/v1alpha1", "apps/v1")).unwrap_err();
    assert!(
        err.to_string().contains(r#"apiVersion is "apps/v1", but a WasmApp has `apiVersion: spore.dev/v1alpha1`"#),
        "{err}"
    );

    let err = parse_manifest(&HELLO.replace("apiVersion: spore.dev/v1alpha1\n", "")).unwrap_err();
    assert!(err.to_string().contains("missing `apiVersion`; add `apiVersion: spore.dev/v1alpha1`"), "{err}");
}

#[test]
fn manifest_with_unknown_top_level_field_is_rejected() {
    let err = parse_manifest(&HELLO.replace("spec:", "spce:")).unwrap_err();
    assert!(matches!(&err, ManifestError::UnknownTopLevelField(f) if f == "spce"), "{err}");
}

#[test]
fn manifest_that_is_not_yaml_or_not_a_mapping_is_rejected() {
    assert!(matches!(parse_manifest("a: [1"), Err(ManifestError::Yaml(_))));
    assert!(matches!(parse_manifest("- 1\n- 2\n"), Err(ManifestError::NotAMapping)));
}

#[test]
fn volume_helper_is_what_fixtures_build() {
    let v: Volume = empty_dir("scratch");
    assert_eq!(v.source_kind().map(|s| s.field_name()), Some("emptyDir"));
}

#[test]
fn cases_marked_not_in_cel_are_left_to_the_schema_or_the_client() {
    for case in invalid_apps().into_iter().filter(|c| !c.cel) {
        if let Err(errors) = kube::core::cel::validate_cel(&case.app) {
            panic!("{}: CEL rejects it after all; drop .not_in_cel():\n{errors}", case.name);
        }
    }
}

#[test]
fn manifests_round_trip_through_yaml() {
    for (name, app) in valid_apps() {
        let yaml = serde_yaml::to_string(&app).unwrap();
        let parsed = parse_manifest(&yaml).unwrap_or_else(|e| panic!("{name}: {e}\n{yaml}"));
        assert_eq!(parsed, app, "{name}");
    }
}
