//! Apps made of several components, linked by Spore at deploy time into one sandboxed app:
//! libraries plugged into the imports of the components that need them, and HTTP middleware
//! in front of the handler. Each component gets only the capabilities its own entry grants.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::ValidationRule;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use crate::app::{DNS1123_LABEL, EnvVar, MAX_ENV};
use crate::capabilities::{
    Capabilities, FilesystemMount, Network, Outbound, SocketRule, guest_paths_unique_rule, http_patterns_rule,
};
use crate::host_pattern::MAX_PATTERN_LEN;

/// Most entries in `spec.components`.
pub const MAX_COMPONENTS: usize = 16;
/// Most entries in a `plugs` list and in `spec.middleware`.
pub const MAX_PLUGS: usize = 16;
/// The name the main component (`spec.module`) has: its container's, so no component may
/// take it.
pub const MAIN_COMPONENT: &str = "app";
/// Most entries in each list of a component's capabilities.
pub const MAX_GRANTS: usize = 16;
/// Longest component image reference.
pub const MAX_IMAGE_LEN: usize = 512;
/// Longest component name: a container name (a DNS-1123 label).
pub const MAX_COMPONENT_NAME_LEN: usize = 63;

/// A component linked into the app: a library whose exports satisfy the imports of the
/// components that list it in `plugs`, or an HTTP middleware listed in `spec.middleware`.
/// It gets none of the app's capabilities: only the `env` and `capabilities` of its entry.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new(format!("self.name != '{MAIN_COMPONENT}'"))
        .message("component name \"app\" is the main component's (spec.module); choose another")
        .field_path(".name"),
    validation = Rule::new("!self.image.matches('[\\t\\n\\f\\r ]')")
        .message(Message::Expression("'image \"' + self.image + '\" contains whitespace; an OCI reference has none'".into()))
        .field_path(".image"),
    validation = Rule::new("!has(self.plugs) || !(self.name in self.plugs)")
        .message(Message::Expression("'component \"' + self.name + '\" plugs itself; a component cannot satisfy its own imports'".into()))
        .field_path(".plugs"),
)]
pub struct Component {
    /// Name, unique among the components: a DNS-1123 label other than `app` (the main
    /// component's). It names the component's container in the pod.
    #[schemars(length(min = 1, max = MAX_COMPONENT_NAME_LEN), regex(pattern = DNS1123_LABEL))]
    pub name: String,
    /// OCI reference of the Wasm component, pulled by kubelet like any image.
    #[schemars(length(min = 1, max = MAX_IMAGE_LEN))]
    pub image: String,
    /// Components whose exports satisfy this component's imports (see `spec.module.plugs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_PLUGS), inner(length(max = MAX_COMPONENT_NAME_LEN)), extend("x-kubernetes-list-type" = "set"))]
    pub plugs: Vec<String>,
    /// Environment variables this component sees (and no other component does).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_ENV), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub env: Vec<EnvVar>,
    /// What this component may touch: files from `spec.volumes` and outbound destinations.
    /// Nothing by default, whatever the main component may do.
    #[serde(default, skip_serializing_if = "crate::app::is_default")]
    pub capabilities: ComponentCapabilities,
}

/// A component's capabilities: `spec.capabilities` without inbound ports (only the main
/// component serves), with fewer entries per list (the CRD's rules are costed per entry).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = guest_paths_unique_rule())]
pub struct ComponentCapabilities {
    /// Directories from `spec.volumes` this component sees (its WASI preopens).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_GRANTS))]
    pub filesystem: Vec<FilesystemMount>,
    /// Destinations this component may reach.
    #[serde(default, skip_serializing_if = "ComponentNetwork::is_empty")]
    pub network: ComponentNetwork,
}

/// A component's network capabilities: outbound only.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ComponentNetwork {
    /// Destinations this component may reach, as in `spec.capabilities.network.outbound`.
    #[serde(default, skip_serializing_if = "ComponentOutbound::is_empty")]
    pub outbound: ComponentOutbound,
}

impl ComponentNetwork {
    pub fn is_empty(&self) -> bool {
        self.outbound.is_empty()
    }
}

/// `spec.capabilities.network.outbound` with at most [`MAX_GRANTS`] entries per list.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ComponentOutbound {
    /// Hosts `wasi:http` outgoing requests may go to (the app's host patterns).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_GRANTS), inner(length(max = MAX_PATTERN_LEN)))]
    #[x_kube(validation = http_patterns_rule())]
    pub http: Vec<String>,
    /// Addresses `wasi:sockets` TCP connections may go to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_GRANTS))]
    pub tcp: Vec<SocketRule>,
    /// Addresses `wasi:sockets` UDP datagrams may go to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_GRANTS))]
    pub udp: Vec<SocketRule>,
    /// Allow name resolution through `wasi:sockets/ip-name-lookup`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dns: bool,
}

impl ComponentOutbound {
    pub fn is_empty(&self) -> bool {
        self.http.is_empty() && self.tcp.is_empty() && self.udp.is_empty() && !self.dns
    }
}

/// The grant in the app's own form, for the code that enforces capabilities.
impl From<ComponentCapabilities> for Capabilities {
    fn from(granted: ComponentCapabilities) -> Self {
        let ComponentOutbound { http, tcp, udp, dns } = granted.network.outbound;
        Capabilities {
            filesystem: granted.filesystem,
            network: Network { inbound: Vec::new(), outbound: Outbound { http, tcp, udp, dns } },
        }
    }
}

/// The CEL rules of `spec` that tie components, plugs and middleware together (added to the
/// CRD by [`crate::wasmapp_crd`]: they span fields of several types).
pub(crate) fn spec_rules() -> Vec<ValidationRule> {
    let exists = |name: &str| format!("(has(self.components) && self.components.exists(c, c.name == {name}))");
    let by_module = |name: &str| format!("(has(self.module.plugs) && {name} in self.module.plugs)");
    let by_component =
        |name: &str| format!("(has(self.components) && self.components.exists(d, has(d.plugs) && {name} in d.plugs))");
    let in_middleware = |name: &str| format!("(has(self.middleware) && {name} in self.middleware)");
    let used = format!("({} || {} || {})", in_middleware("c.name"), by_module("c.name"), by_component("c.name"));
    let used_name = format!("({} || {} || {})", in_middleware("n"), by_module("n"), by_component("n"));
    let mounts_missing =
        "c.capabilities.filesystem.exists(m, !(has(self.volumes) && self.volumes.exists(v, v.name == m.volume)))";
    vec![
        rule(
            format!("!has(self.module.plugs) || self.module.plugs.all(p, {})", exists("p")),
            format!(
                "'spec.module.plugs names \"' + self.module.plugs.filter(p, !{})[0] + '\", which is not in spec.components; add the component or fix the name'",
                exists("p")
            ),
            ".module.plugs",
        ),
        rule(
            "!has(self.components) || self.components.all(c, !has(c.plugs) || c.plugs.all(p, self.components.exists(d, d.name == p)))".into(),
            "'component \"' + self.components.map(c, c.name).filter(n, self.components.exists(c, c.name == n && has(c.plugs) && c.plugs.exists(p, !self.components.exists(d, d.name == p))))[0] + '\" plugs a component that is not in spec.components; add it or fix the name'".into(),
            ".components",
        ),
        rule(
            format!("!has(self.middleware) || self.middleware.all(m, {})", exists("m")),
            format!(
                "'spec.middleware names \"' + self.middleware.filter(m, !{})[0] + '\", which is not in spec.components; add the component or fix the name'",
                exists("m")
            ),
            ".middleware",
        ),
        rule(
            format!("!has(self.components) || self.components.all(c, {used})"),
            format!(
                "'component \"' + self.components.map(c, c.name).filter(n, !{used_name})[0] + '\" is not used; list it in spec.middleware or in the plugs of the component that imports it'"
            ),
            ".components",
        ),
        rule(
            format!("!has(self.middleware) || self.middleware.all(m, !{} && !{})", by_module("m"), by_component("m")),
            format!(
                "'component \"' + self.middleware.filter(m, {} || {})[0] + '\" is both middleware and a plug; a middleware wraps the handler, a plug satisfies imports: use a component for each role'",
                by_module("m"),
                by_component("m")
            ),
            ".middleware",
        ),
        rule(
            "!has(self.middleware) || size(self.middleware) == 0 || (has(self.capabilities) && has(self.capabilities.network) && has(self.capabilities.network.inbound) && size(self.capabilities.network.inbound) > 0)".into(),
            "'spec.middleware wraps an HTTP handler, but the app has no inbound port; add capabilities.network.inbound or remove spec.middleware'".into(),
            ".middleware",
        ),
        rule(
            format!("!has(self.components) || self.components.all(c, !has(c.capabilities) || !has(c.capabilities.filesystem) || !{mounts_missing})"),
            "'a component\\'s capabilities.filesystem names a volume that is not in spec.volumes; add the volume or fix the name'".into(),
            ".components",
        ),
    ]
}

fn rule(rule: String, message_expression: String, field_path: &str) -> ValidationRule {
    ValidationRule {
        rule,
        message_expression: Some(message_expression),
        field_path: Some(field_path.into()),
        ..Default::default()
    }
}

/// What the operator tells the node about an app's components (the pod annotation
/// [`COMPOSITION_ANNOTATION`]): how they link, and what each may touch. Their images and
/// env values come with their containers, as kubelet resolves them.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Wiring {
    /// `spec.module.plugs`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<WiredComponent>,
    /// `spec.middleware`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub middleware: Vec<String>,
}

/// One component of a [`Wiring`], in `spec.components` order.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WiredComponent {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugs: Vec<String>,
    /// The names of its env vars: only these of its container's environment pass.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "crate::app::is_default")]
    pub capabilities: ComponentCapabilities,
}

/// The pod annotation that carries an app's [`Wiring`] as JSON.
pub const COMPOSITION_ANNOTATION: &str = "spore.dev/composition";

impl Wiring {
    /// The wiring of `spec`; empty for an app of one component.
    pub fn of(spec: &crate::WasmAppSpec) -> Self {
        let components = spec
            .components
            .iter()
            .map(|c| WiredComponent {
                name: c.name.clone(),
                plugs: c.plugs.clone(),
                env: c.env.iter().map(|e| e.name.clone()).collect(),
                capabilities: c.capabilities.clone(),
            })
            .collect();
        Self { plugs: spec.module.plugs.clone(), components, middleware: spec.middleware.clone() }
    }

    pub fn is_empty(&self) -> bool {
        self.components.is_empty()
    }
}
