//! One table of WasmApps, valid and invalid, that `validate()` and the CRD must judge alike.
//! The crate's tests run it through `validate()` and the CRD's CEL rules in-process; the e2e
//! suite (feature `test-cases`) runs it through a real apiserver, which adds the OpenAPI
//! schema checks the in-process CEL evaluation does not make.

use crate::app::{EnvVar, WasmApp};
use crate::batch::{CronJobSettings, JobSettings};
use crate::composition::Component;
use crate::fixtures::*;

/// What in the apiserver rejects an invalid app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crd {
    /// An `x-kubernetes-validations` (CEL) rule, which the crate's tests also evaluate
    /// in-process with kube-cel.
    Cel,
    /// The OpenAPI schema (pattern, minLength/maxLength, maxItems, list-map keys), or a CEL
    /// function that kube-cel implements more leniently than the apiserver: only a real
    /// apiserver (the e2e suite) tells.
    Apiserver,
}

/// An app `validate()` and the CRD must reject: the field `validate()` blames, a fragment of
/// its message, and what in the apiserver rejects it. The apiserver blames the same field or
/// one that contains it (a CEL rule reports the object that carries it).
pub struct Invalid {
    pub name: String,
    pub app: WasmApp,
    pub field: &'static str,
    pub fragment: &'static str,
    pub crd: Crd,
}

fn invalid(name: &str, app: WasmApp, field: &'static str, fragment: &'static str) -> Invalid {
    Invalid { name: name.to_string(), app, field, fragment, crd: Crd::Cel }
}

impl Invalid {
    /// Rejected by the CRD's OpenAPI schema (or a CEL function kube-cel is lenient about).
    fn by_schema(mut self) -> Self {
        self.crd = Crd::Apiserver;
        self
    }
}

/// Values of one field whose rule is a grammar, each valid or not, and how to put one into
/// an app. `lenient` are invalid values that kube-cel's `isCIDR` or `isQuantity` take but the
/// apiserver's do not.
struct Grammar {
    field: &'static str,
    build: fn(&str) -> WasmApp,
    valid: &'static [&'static str],
    invalid: &'static [&'static str],
    lenient: &'static [&'static str],
}

fn grammars() -> Vec<Grammar> {
    vec![
        Grammar {
            field: "spec.capabilities.network.outbound.http[0]",
            build: |v| app().with_outbound_http(v),
            valid: &[
                "*",
                "*.example.com",
                "example.com",
                "example.com.",
                "EXAMPLE.com",
                "example.com:8443",
                "example.com:65535",
                "https://example.com/",
                "http://*",
                "*:80",
                "[fe80::1]",
                "[::1.2.3.4]",
                "localhost",
                "xn--bcher-kva.example",
            ],
            invalid: &[
                "",
                "https:///",
                "example.com//",
                "*example.com",
                "**",
                "ex ample.com",
                "example.com:",
                "example.com:65536",
                "example.com:99999",
                "ftp://example.com",
                "-bad.com",
                "bad-.com",
                "a..b",
                "*.",
                "[::1",
                "[::1]x",
                "[fe80::1%eth0]",
                "user@example.com",
            ],
            lenient: &[],
        },
        Grammar {
            field: "spec.env[0].name",
            build: |v| app().with_env(env(v, "x")),
            valid: &["A", "_", "_A1", "lower"],
            invalid: &["1A", "a-b", "ÄB", "A\tB"],
            lenient: &[],
        },
        Grammar {
            field: "spec.capabilities.filesystem[0].guestPath",
            build: |v| app().with_volume(empty_dir("v")).with_mount("v", v),
            valid: &["/data", "/a/b/c", "/.hidden", "/a..b", "/a/...", "/data.d/x"],
            invalid: &["", "./data", "/../x", "/a/..", "/.", "//", "/a//b"],
            lenient: &[],
        },
        Grammar {
            field: "spec.limits.memory",
            build: |v| app().with_memory(v),
            valid: &["65536", "1Mi", "+1Gi", ".5Gi", "5.Gi", "1e6", "1E6", "100k", "1Ei", "65537"],
            invalid: &["", "-0", "63Ki", "65535.9", "64mi", "0x10", "1e1.5", "Mi", "1Gi "],
            lenient: &["1Gi "],
        },
        Grammar {
            field: "spec.limits.cpu",
            build: |v| app().with_cpu(v),
            valid: &["1", "0.5", "1u", "0.1m", "2k"],
            invalid: &["", "-1", "0m", "500 m", "1mm"],
            lenient: &[],
        },
        Grammar {
            field: "spec.limits.timeout",
            build: |v| app().with_timeout(v),
            // kube-cel's `duration()` cannot read `µs`, so the table leaves it out.
            valid: &["1ns", "1.5s", "1h30m", "500ms", "10us"],
            invalid: &["", "0.5ns", "1.s", "1S", " 30s", "1h.5m", "1d"],
            lenient: &[],
        },
        Grammar {
            field: "spec.capabilities.network.outbound.tcp[0].cidr",
            build: |v| app().with_outbound_tcp(socket(v)),
            valid: &["10.0.0.1/8", "0.0.0.0/0", "::1/128"],
            invalid: &["::1/129", "010.0.0.0/8", "10.0.0.0/08", "fe80::1%eth0/64", "1.2.3.4/32 "],
            lenient: &["010.0.0.0/8", "10.0.0.0/08"],
        },
        Grammar {
            field: "metadata.name",
            build: |v| app().with_name(v),
            valid: &["a", "hello-http", "a-1-b"],
            invalid: &["-app", "app-", "App", "a b"],
            lenient: &[],
        },
    ]
}

fn grammar_invalid_apps() -> Vec<Invalid> {
    let mut cases = Vec::new();
    for g in grammars() {
        for value in g.invalid {
            let crd = if g.lenient.contains(value) { Crd::Apiserver } else { Crd::Cel };
            let name = format!("{} = {value:?}", g.field);
            cases.push(Invalid { name, app: (g.build)(value), field: g.field, fragment: "", crd });
        }
    }
    cases
}

fn grammar_valid_apps() -> Vec<(String, WasmApp)> {
    grammars()
        .into_iter()
        .flat_map(|g| g.valid.iter().map(move |value| (format!("{} = {value:?}", g.field), (g.build)(value))))
        .collect()
}

/// `n` characters of `c`.
fn long(c: char, n: usize) -> String {
    std::iter::repeat_n(c, n).collect()
}

/// Every invalid app of the table.
pub fn invalid_apps() -> Vec<Invalid> {
    [
        metadata_and_module(),
        scaling(),
        volumes_and_mounts(),
        network(),
        env_vars(),
        limits(),
        health_checks(),
        run_modes(),
        composition(),
        grammar_invalid_apps(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn metadata_and_module() -> Vec<Invalid> {
    vec![
        invalid("a name with capitals and _", app().with_name("Bad_Name"), "metadata.name", "not a DNS-1035 label"),
        invalid("a name starting with a digit", app().with_name("1app"), "metadata.name", "not a DNS-1035 label"),
        invalid("a name with a dot", app().with_name("my.app"), "metadata.name", "not a DNS-1035 label"),
        invalid("a name of 64 characters", app().with_name(&long('a', 64)), "metadata.name", "DNS-1035"),
        invalid(
            "a cronJob app with a name of 53 characters",
            app().with_name(&long('a', 53)).with_cron_job(cron("@daily")),
            "metadata.name",
            "has 53 characters, but a cronJob app has at most 52",
        ),
        invalid("empty image", app().with_image(""), "spec.module.image", "is empty").by_schema(),
        invalid(
            "an image with a space",
            app().with_image("localhost:5000/spore/x:1 "),
            "spec.module.image",
            r#"image "localhost:5000/spore/x:1 " contains whitespace"#,
        ),
        invalid(
            "a RuntimeClass that is not a DNS label",
            app().with_runtime_class("Not_A_Label"),
            "spec.runtimeClassName",
            r#""Not_A_Label" is not a RuntimeClass name"#,
        )
        .by_schema(),
        invalid(
            "a ServiceAccount name with capitals",
            app().with_service_account("Builder"),
            "spec.serviceAccountName",
            r#""Builder" is not a ServiceAccount name"#,
        )
        .by_schema(),
    ]
}

fn scaling() -> Vec<Invalid> {
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
            "idle time of zero",
            app().with_inbound(8080).with_autoscale(autoscale(0, 2).with_scale_to_zero_after("0s")),
            "spec.scaling.autoscale.scaleToZeroAfter",
            r#"invalid duration "0s": must be greater than zero"#,
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
    ]
}

fn volumes_and_mounts() -> Vec<Invalid> {
    let mut too_many_volumes = app();
    for i in 0..65 {
        too_many_volumes = too_many_volumes.with_volume(empty_dir(&format!("v{i}")));
    }
    let mount_at = |path: &str| app().with_volume(empty_dir("data")).with_mount("data", path);
    let guest_path = "spec.capabilities.filesystem[0].guestPath";
    vec![
        invalid(
            "mount of a missing volume",
            app().with_mount("data", "/data"),
            "spec.capabilities.filesystem[0].volume",
            r#"volume "data" is not in spec.volumes; add a volume of that name or fix the name"#,
        ),
        invalid("relative guest path", mount_at("data"), guest_path, r#"guestPath "data" is not absolute"#),
        invalid("a guest path with ..", mount_at("/data/../etc"), guest_path, r#""/data/../etc" is not a clean path"#),
        invalid("a guest path that is ..", mount_at("/.."), guest_path, "not a clean path"),
        invalid("a guest path with .", mount_at("/./data"), guest_path, "not a clean path"),
        invalid("a guest path with //", mount_at("//data"), guest_path, "not a clean path"),
        invalid("a guest path ending in /", mount_at("/data/"), guest_path, "not a clean path"),
        invalid(
            "a guest path of 1025 characters",
            mount_at(&format!("/{}", long('a', 1024))),
            guest_path,
            "has 1025 characters, but at most 1024",
        )
        .by_schema(),
        invalid(
            "two mounts at one guest path",
            app()
                .with_volume(empty_dir("a"))
                .with_volume(empty_dir("b"))
                .with_mount("a", "/data")
                .with_mount("b", "/data"),
            "spec.capabilities.filesystem[1].guestPath",
            r#"guestPath "/data" is already mounted by spec.capabilities.filesystem[0]"#,
        ),
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
            "an emptyDir size that is no quantity",
            app().with_volume(empty_dir_of("data", "lots")),
            "spec.volumes[0].emptyDir.sizeLimit",
            r#"invalid quantity "lots""#,
        )
        .by_schema(),
        invalid(
            "volume name not a DNS label",
            app().with_volume(empty_dir("Data_1")),
            "spec.volumes[0].name",
            "not a DNS-1123 label",
        )
        .by_schema(),
        invalid(
            "duplicate volume names",
            app().with_volume(empty_dir("data")).with_volume(empty_dir("data")),
            "spec.volumes[1].name",
            "already used by spec.volumes[0]",
        )
        .by_schema(),
        invalid("too many volumes", too_many_volumes, "spec.volumes", "has 65 entries, but at most 64").by_schema(),
    ]
}

fn network() -> Vec<Invalid> {
    let http = |pattern: &str| app().with_outbound_http(pattern);
    let http_field = "spec.capabilities.network.outbound.http[0]";
    vec![
        invalid(
            "inbound port zero",
            app().with_inbound(0),
            "spec.capabilities.network.inbound[0].port",
            "port 0 is out of range",
        ),
        invalid(
            "inbound port too high",
            app().with_inbound(70000),
            "spec.capabilities.network.inbound[0].port",
            "between 1 and 65535",
        ),
        invalid(
            "one TCP port listed twice",
            app().with_inbound(8080).with_inbound(8080),
            "spec.capabilities.network.inbound[1]",
            "port 8080/TCP is listed twice (also spec.capabilities.network.inbound[0])",
        )
        .by_schema(),
        invalid(
            "two ports of one name",
            app().with_named_inbound("http", 8080).with_named_inbound("http", 9090),
            "spec.capabilities.network.inbound[1].name",
            r#"port name "http" is used twice"#,
        ),
        invalid(
            "a port name of 64 characters",
            app().with_named_inbound(&long('p', 64), 8080),
            "spec.capabilities.network.inbound[0].name",
            "has 64 characters, but at most 63",
        )
        .by_schema(),
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
            "an IPv4-mapped IPv6 cidr",
            app().with_outbound_tcp(socket("::ffff:10.0.0.0/104")),
            "spec.capabilities.network.outbound.tcp[0].cidr",
            "not a valid CIDR",
        ),
        invalid("http pattern with a path", http("https://example.com/api"), http_field, "not a host pattern"),
        invalid(
            "http pattern that is only a scheme",
            http("http://"),
            http_field,
            r#""http://" is not a host pattern"#,
        ),
        invalid("http pattern with two wildcards", http("*.*.com"), http_field, r#""*.*.com" is not a host pattern"#),
        invalid("http pattern with a bad wildcard", http("api.*.com"), http_field, "not a host pattern"),
        invalid("http pattern with port zero", http("example.com:0"), http_field, "not a host pattern"),
        invalid("http pattern with a padded port", http("example.com:080"), http_field, "not a host pattern"),
        invalid("http pattern of an IPv6 address without brackets", http("::1"), http_field, "not a host pattern"),
        invalid("http pattern of IPv4 in brackets", http("[10.0.0.1]:80"), http_field, "not a host pattern"),
        invalid("http pattern of an IPv4-mapped address", http("[::ffff:10.0.0.1]"), http_field, "not a host pattern"),
        invalid("http pattern in capitals", http("HTTPS://example.com"), http_field, "not a host pattern"),
        invalid(
            "http pattern of 254 characters",
            http(&format!("{}.{}.{}.{}", long('a', 63), long('b', 63), long('c', 63), long('d', 62))),
            http_field,
            "has 254 characters, but at most 253",
        )
        .by_schema(),
    ]
}

fn env_vars() -> Vec<Invalid> {
    let name_field = "spec.env[0].name";
    vec![
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
        invalid(
            "env from a ConfigMap without a name",
            app().with_env(env_from_config_map("A", "", "a")),
            "spec.env[0].valueFrom.configMapKeyRef.name",
            "is empty",
        ),
        invalid(
            "env from a ConfigMap without a key",
            app().with_env(env_from_config_map("A", "cm", "")),
            "spec.env[0].valueFrom.configMapKeyRef.key",
            "is empty",
        ),
        invalid("env name with =", app().with_env(env("A=B", "x")), name_field, "is not a C identifier"),
        invalid(
            "env name with a space, starting with a digit",
            app().with_env(env("1 BAD", "x")),
            name_field,
            r#"env name "1 BAD" is not a C identifier"#,
        ),
        invalid("env name with a dot", app().with_env(env("app.mode", "x")), name_field, "not a C identifier"),
        invalid("empty env name", app().with_env(env("", "x")), name_field, "not a C identifier"),
        invalid(
            "env name of 257 characters",
            app().with_env(env(&long('A', 257), "x")),
            name_field,
            "has 257 characters, but at most 256",
        )
        .by_schema(),
        invalid(
            "one env name twice",
            app().with_env(env("LOG", "debug")).with_env(env("LOG", "info")),
            "spec.env[1].name",
            r#"env "LOG" is listed twice (also spec.env[0])"#,
        )
        .by_schema(),
    ]
}

fn limits() -> Vec<Invalid> {
    vec![
        invalid(
            "memory in the wrong unit",
            app().with_memory("64MB"),
            "spec.limits.memory",
            "invalid memory quantity \"64MB\"",
        ),
        invalid("negative memory", app().with_memory("-1Mi"), "spec.limits.memory", "memory limit -1Mi is negative"),
        invalid(
            "one byte of memory",
            app().with_memory("1"),
            "spec.limits.memory",
            "memory limit 1 is below one Wasm page (64Ki)",
        ),
        invalid(
            "memory a byte short of a page",
            app().with_memory("65535"),
            "spec.limits.memory",
            "below one Wasm page",
        ),
        invalid("memory of zero", app().with_memory("0"), "spec.limits.memory", "below one Wasm page"),
        // The schema's pattern and the apiserver's `isQuantity` refuse it; kube-cel's
        // in-process `isQuantity` is more lenient, so the crate's own tests cannot tell.
        invalid("memory with a space", app().with_memory(" 64Mi"), "spec.limits.memory", "invalid memory quantity")
            .by_schema(),
        invalid("cpu that is not a quantity", app().with_cpu("lots"), "spec.limits.cpu", "invalid cpu quantity"),
        invalid("cpu of zero", app().with_cpu("0"), "spec.limits.cpu", "cpu limit 0 is not above zero"),
        invalid("negative cpu", app().with_cpu("-500m"), "spec.limits.cpu", "cpu limit -500m is not above zero"),
        invalid("timeout without unit", app().with_timeout("30"), "spec.limits.timeout", "invalid duration \"30\""),
        invalid(
            "timeout of zero",
            app().with_timeout("0s"),
            "spec.limits.timeout",
            r#"invalid duration "0s": must be greater than zero"#,
        ),
        invalid(
            "timeout of zero hours",
            app().with_timeout("0h0m"),
            "spec.limits.timeout",
            "must be greater than zero",
        ),
        invalid("timeout with a bare fraction", app().with_timeout(".5s"), "spec.limits.timeout", "invalid duration"),
        invalid("negative timeout", app().with_timeout("-1s"), "spec.limits.timeout", "invalid duration"),
        invalid(
            "maxConcurrency zero",
            app().with_max_concurrency(0),
            "spec.limits.maxConcurrency",
            "maxConcurrency 0 is below 1",
        ),
        invalid(
            "instanceReuse of no requests",
            app().with_instance_reuse(0, None),
            "spec.limits.instanceReuse.maxRequests",
            "instanceReuse.maxRequests 0 is below 1",
        ),
        invalid(
            "instanceReuse of no concurrency",
            app().with_instance_reuse(100, Some(0)),
            "spec.limits.instanceReuse.maxConcurrent",
            "instanceReuse.maxConcurrent 0 is below 1",
        ),
    ]
}

/// A library `lib` plugged into the main component, and an HTTP app to put middleware on.
fn composed() -> WasmApp {
    app().with_inbound(8080).with_component(component("lib")).with_plug("lib")
}

fn composition() -> Vec<Invalid> {
    vec![
        invalid(
            "a component named like the main one",
            app().with_component(component("app")).with_plug("app"),
            "spec.components[0].name",
            "is the main component's",
        ),
        invalid(
            "a component name with capitals",
            app().with_component(component("Auth")).with_plug("Auth"),
            "spec.components[0].name",
            "not a DNS-1123 label",
        )
        .by_schema(),
        invalid(
            "a component listed twice",
            composed().with_component(component("lib")),
            "spec.components[1].name",
            "is listed twice",
        )
        .by_schema(),
        invalid(
            "a component image with a space",
            app().with_component(Component { image: "lib :1".into(), ..component("lib") }).with_plug("lib"),
            "spec.components[0].image",
            "contains whitespace",
        ),
        invalid(
            "a plug of no component",
            composed().with_plug("markdown"),
            "spec.module.plugs[1]",
            "not in spec.components",
        ),
        invalid(
            "a component plugging an unknown one",
            app().with_component(component("lib").with_plug("nope")).with_plug("lib"),
            "spec.components[0].plugs[0]",
            "not in spec.components",
        ),
        invalid(
            "a component plugging itself",
            app().with_component(component("lib").with_plug("lib")).with_plug("lib"),
            "spec.components[0].plugs",
            "plugs itself",
        ),
        invalid("a plug listed twice", composed().with_plug("lib"), "spec.module.plugs[1]", "is listed twice")
            .by_schema(),
        invalid(
            "a component nobody uses",
            app().with_component(component("lib")),
            "spec.components[0].name",
            "is not used",
        ),
        invalid(
            "middleware of no component",
            composed().with_middleware("auth"),
            "spec.middleware[0]",
            "not in spec.components",
        ),
        invalid(
            "a component both middleware and plug",
            composed().with_middleware("lib"),
            "spec.middleware[0]",
            "both middleware and a plug",
        ),
        invalid(
            "middleware listed twice",
            composed().with_component(component("auth")).with_middleware("auth").with_middleware("auth"),
            "spec.middleware[1]",
            "is listed twice",
        )
        .by_schema(),
        invalid(
            "middleware without an inbound port",
            app().with_component(component("auth")).with_middleware("auth"),
            "spec.middleware",
            "has no inbound port",
        ),
        invalid(
            "a component mounting an unknown volume",
            app().with_component(component("lib").with_mount("keys", "/keys")).with_plug("lib"),
            "spec.components[0].capabilities.filesystem[0].volume",
            "not in spec.volumes",
        ),
        invalid(
            "a component env name with a dash",
            app().with_component(component("lib").with_env(env("API-KEY", "x"))).with_plug("lib"),
            "spec.components[0].env[0].name",
            "not a C identifier",
        ),
        invalid(
            "a component outbound host with a path",
            app().with_component(component("lib").with_outbound_http("example.com/api")).with_plug("lib"),
            "spec.components[0].capabilities.network.outbound.http[0]",
            "not a host pattern",
        ),
    ]
}

fn health_checks() -> Vec<Invalid> {
    vec![
        invalid(
            "relative readiness path",
            app().with_readiness(http_check("healthz")),
            "spec.healthChecks.readiness.path",
            "does not start with /",
        ),
        invalid(
            "readiness path of 1025 characters",
            app().with_readiness(http_check(&format!("/{}", long('h', 1024)))),
            "spec.healthChecks.readiness.path",
            "has 1025 characters, but at most 1024",
        )
        .by_schema(),
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
    ]
}

fn run_modes() -> Vec<Invalid> {
    vec![
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
            "a schedule of 257 characters",
            app().with_cron_job(cron(&format!("0 0 * * {}", long('1', 249)))),
            "spec.cronJob.schedule",
            "has 257 characters, but at most 256",
        )
        .by_schema(),
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
        .by_schema(),
        invalid(
            "a time zone of 65 characters",
            app().with_cron_job(CronJobSettings { time_zone: Some(long('z', 65)), ..cron("@daily") }),
            "spec.cronJob.timeZone",
            "has 65 characters, but at most 64",
        )
        .by_schema(),
    ]
}

/// Every valid app of the table, by name.
pub fn valid_apps() -> Vec<(String, WasmApp)> {
    let apps: Vec<(&str, WasmApp)> = vec![
        ("the default test app", app()),
        ("a name of 63 characters", app().with_name(&long('a', 63))),
        ("a cronJob app with a name of 52 characters", app().with_name(&long('c', 52)).with_cron_job(cron("@daily"))),
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
        ("one port over TCP and UDP", app().with_inbound(53).with_udp_inbound(53)),
        ("memory of exactly one Wasm page", app().with_memory("64Ki")),
        ("memory as a plain number", app().with_memory("1048576")),
        ("the longest duration", app().with_timeout("2562047h")),
        ("cpu of a millicore and a nanocore", app().with_cpu("1000000n")),
        ("a mount at the guest root", app().with_volume(empty_dir("root")).with_mount("root", "/")),
        ("an emptyDir of 1Gi", app().with_volume(empty_dir_of("scratch", "1Gi"))),
        (
            "env names that are C identifiers",
            app().with_env(env("_X", "1")).with_env(env("a1", "2")).with_env(env("LOG_LEVEL", "3")),
        ),
        ("a ServiceAccount name with dots", app().with_service_account("builder.ci")),
        (
            "a composed app: middleware, a plugged library and the library's own library",
            app()
                .with_inbound(8080)
                .with_volume(empty_dir("keys"))
                .with_component(
                    component("auth").with_mount("keys", "/keys").with_env(env("TOKEN_FILE", "/keys/token")),
                )
                .with_component(component("markdown").with_plug("escape").with_outbound_http("api.example.com"))
                .with_component(component("escape"))
                .with_middleware("auth")
                .with_plug("markdown"),
        ),
        (
            "everything at once",
            app()
                .with_replicas(2)
                .with_env(env("LOG_LEVEL", "debug"))
                .with_env(env_from_config_map("GREETING", "app-config", "greeting"))
                .with_volume(config_map("config", "app-config"))
                .with_volume(empty_dir("scratch"))
                .with_mount("config", "/config")
                .with_mount_rw("scratch", "/scratch/tmp", true)
                .with_named_inbound("http", 8080)
                .with_named_inbound("admin", 9090)
                .with_outbound_http("*")
                .with_outbound_http("*.example.com")
                .with_outbound_http("*.Example.com.")
                .with_outbound_http("api.example.com:443")
                .with_outbound_http("https://example.com")
                .with_outbound_http("http://*:8080")
                .with_outbound_http("example.com/")
                .with_outbound_http("http://[::1]:8080")
                .with_outbound_http("[2001:db8::1.2.3.4]")
                .with_outbound_http("10.0.0.1:80")
                .with_outbound_http("localhost:65535")
                .with_outbound_tcp(socket("10.0.0.0/8").with_ports(5432, None))
                .with_outbound_tcp(socket("192.168.1.10/32").with_ports(8000, Some(8100)))
                .with_outbound_udp(socket("fd00::/8").with_ports(53, None))
                .with_outbound_udp(socket("::/0"))
                .with_memory("64Mi")
                .with_cpu("500m")
                .with_timeout("1m30.5s")
                .with_max_concurrency(50)
                .with_instance_reuse(1000, Some(8))
                .with_runtime_class("spore")
                .with_service_account("app")
                .with_readiness(http_check("/healthz").with_port(8080).with_period_seconds(5)),
        ),
    ];
    apps.into_iter().map(|(name, app)| (name.to_string(), app)).chain(grammar_valid_apps()).collect()
}
