//! Links a WasmApp's components into one component before it runs, with the Bytecode
//! Alliance's composition library (wac-graph): each component's `plugs` satisfy its imports
//! (matched by interface name and a semver-compatible version, as `wac plug` matches them),
//! and `middleware` wraps the main component's HTTP handler (`wasi:http/handler@0.3` or
//! `wasi:http/incoming-handler@0.2`), outermost first.
//!
//! Least privilege per component is built into the linking: a dependency's imports of
//! capability interfaces (files, environment, sockets, outgoing HTTP) are not merged with
//! the main component's. Each goes to a top-level import of its own ([`Routed::label`]),
//! which the host backs with that component's grant alone.

use std::collections::{BTreeMap, HashMap};

use wac_graph::types::{ItemKind, Package, are_semver_compatible};
use wac_graph::{CompositionGraph, EncodeOptions, NodeId, PackageId};

pub(crate) mod host;
#[cfg(test)]
mod tests;

/// The name the main component has in errors and in `plugs` (its container's name).
pub const MAIN: &str = spore_crds::composition::MAIN_COMPONENT;

/// Interfaces that reach outside the sandbox, without their version: a dependency's
/// imports of these are routed to imports of its own.
const CAPABILITY_INTERFACES: &[&str] = &[
    "wasi:filesystem/preopens",
    "wasi:cli/environment",
    "wasi:sockets/ip-name-lookup",
    "wasi:sockets/tcp-create-socket",
    "wasi:sockets/udp-create-socket",
    // WASI 0.3 creates sockets with constructors of `types`.
    "wasi:sockets/types",
    "wasi:http/outgoing-handler",
    "wasi:http/client",
];

/// The interfaces an HTTP middleware imports and exports, with the version prefix of
/// their WASI generation: 0.3's `handler` (the `middleware` world, which may change the
/// request and the response) and 0.2's `incoming-handler` (which can only answer the
/// request itself or forward it as it came).
const HANDLERS: [&str; 2] = ["wasi:http/handler@0.3", "wasi:http/incoming-handler@0.2"];

/// One component to link: its name (`app` for the main one), its binary and the names of
/// the components whose exports satisfy its imports.
#[derive(Debug, Clone, Copy)]
pub struct Part<'a> {
    pub name: &'a str,
    pub bytes: &'a [u8],
    pub plugs: &'a [String],
}

/// What to link: the main component, the others (plugged libraries and middleware), and
/// which of the others wrap the handler, outermost first.
#[derive(Debug, Clone)]
pub struct Plan<'a> {
    pub main: Part<'a>,
    pub others: Vec<Part<'a>>,
    pub middleware: &'a [String],
}

/// The linked app: one component, and the imports that carry a dependency's capabilities.
#[derive(Debug, Clone)]
pub struct Composed {
    pub bytes: Vec<u8>,
    pub routed: Vec<Routed>,
}

/// A capability import of a dependency, moved to a top-level import of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// The composed component's import name, e.g. `spore-c1-filesystem-preopens-p2`.
    pub label: String,
    /// The component that imports it.
    pub component: String,
    /// The interface it stands for, e.g. `wasi:filesystem/preopens@0.2.6`.
    pub interface: String,
}

/// Why components do not link. Each names the component, the interface and what each side
/// has, and says what to change in the WasmApp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompositionError {
    #[error("component {component:?} is not a Wasm component: {detail}")]
    NotAComponent { component: String, detail: String },

    #[error(
        "component {component:?} imports `{interface}`, which none of its plugs ({plugs}) export and the host does not provide; add the component that exports it to {component:?}'s plugs"
    )]
    UnmetImport { component: String, interface: String, plugs: String },

    #[error(
        "component {component:?} imports `{interface}` and several of its plugs export it ({exporters}); keep only one of them in its plugs"
    )]
    AmbiguousPlug { component: String, interface: String, exporters: String },

    #[error(
        "component {component:?} imports `{interface}`, but {plug:?} exports it with another type: {detail}; rebuild one of them against the same WIT"
    )]
    TypeMismatch { component: String, interface: String, plug: String, detail: String },

    #[error(
        "{plug:?} is in the plugs of {component:?} but exports nothing it imports ({plug:?} exports {exports}; {component:?} imports {imports}); remove it from the plugs or plug it where it is needed"
    )]
    UselessPlug { component: String, plug: String, exports: String, imports: String },

    #[error("plugs form a cycle ({path}); a component cannot need itself, directly or through others")]
    Cycle { path: String },

    #[error(
        "{component:?} is in spec.middleware but is not a middleware for the main component's handler: it must import and export `{handler}` as the main component exports it (it imports {imports}; it exports {exports}); build it for the same WASI version as the handler"
    )]
    NotMiddleware { component: String, handler: String, imports: String, exports: String },

    #[error(
        "spec.middleware wraps the main component's HTTP handler, but the main component exports {exports}; build it as a `wasi:http/handler@0.3` (WASI 0.3 `service`) or `wasi:http/incoming-handler@0.2` (WASI 0.2 `proxy`) component"
    )]
    NoHandler { exports: String },

    #[error("the linked app is not valid: {detail}")]
    Invalid { detail: String },
}

type Result<T, E = CompositionError> = std::result::Result<T, E>;

/// Links `plan` into one component; type-checked (the encoding is validated) before any of
/// it runs.
pub fn compose(plan: &Plan) -> Result<Composed> {
    let mut linker = Linker::new(plan)?;
    let order = instantiation_order(plan)?;
    for name in &order {
        linker.instantiate(name);
    }
    linker.wire_middleware(plan.middleware)?;
    for part in std::iter::once(&plan.main).chain(&plan.others) {
        linker.wire_plugs(part)?;
    }
    linker.export_main(plan.middleware)?;
    linker.encode()
}

/// What identifies a link's result: every input's SHA-256, every component's name and
/// plugs, and the middleware order. Each field is length-prefixed, so no two plans share a
/// key by running fields together.
pub fn link_key(plan: &Plan) -> String {
    use sha2::{Digest, Sha256};
    let mut key = Sha256::new();
    let mut field = |bytes: &[u8]| {
        key.update((bytes.len() as u64).to_le_bytes());
        key.update(bytes);
    };
    for part in std::iter::once(&plan.main).chain(&plan.others) {
        field(part.name.as_bytes());
        field(&Sha256::digest(part.bytes));
        field(&(part.plugs.len() as u64).to_le_bytes());
        part.plugs.iter().for_each(|plug| field(plug.as_bytes()));
    }
    plan.middleware.iter().for_each(|m| field(m.as_bytes()));
    key.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The components reachable from the main one and the middleware, dependencies first; a
/// cycle of plugs is an error that shows it.
fn instantiation_order(plan: &Plan) -> Result<Vec<String>> {
    let plugs: HashMap<&str, &[String]> =
        std::iter::once(&plan.main).chain(&plan.others).map(|p| (p.name, p.plugs)).collect();
    let mut order = Vec::new();
    let mut path = Vec::new();
    let roots = std::iter::once(MAIN).chain(plan.middleware.iter().map(String::as_str));
    for root in roots {
        visit(root, &plugs, &mut path, &mut order)?;
    }
    Ok(order)
}

fn visit<'a>(
    name: &'a str,
    plugs: &HashMap<&'a str, &'a [String]>,
    path: &mut Vec<&'a str>,
    order: &mut Vec<String>,
) -> Result<()> {
    if order.iter().any(|done| done == name) {
        return Ok(());
    }
    if let Some(start) = path.iter().position(|on| *on == name) {
        let cycle: Vec<&str> = path[start..].iter().copied().chain([name]).collect();
        return Err(CompositionError::Cycle { path: cycle.join(" -> ") });
    }
    path.push(name);
    for plug in plugs.get(name).copied().unwrap_or_default() {
        visit(plug, plugs, path, order)?;
    }
    path.pop();
    order.push(name.to_string());
    Ok(())
}

/// The graph being built, with each component's package and instance.
struct Linker {
    graph: CompositionGraph,
    packages: BTreeMap<String, PackageId>,
    instances: HashMap<String, NodeId>,
    /// Components in the order they were given (their index names their routed imports).
    names: Vec<String>,
    routed: Vec<Routed>,
}

impl Linker {
    fn new(plan: &Plan) -> Result<Self> {
        let mut graph = CompositionGraph::new();
        let mut packages = BTreeMap::new();
        let mut names = Vec::new();
        for part in std::iter::once(&plan.main).chain(&plan.others) {
            let not_a_component = |e: anyhow::Error| CompositionError::NotAComponent {
                component: part.name.to_string(),
                detail: format!("{e:#}"),
            };
            let package = Package::from_bytes(&format!("spore:{}", part.name), None, part.bytes, graph.types_mut())
                .map_err(not_a_component)?;
            let id =
                graph.register_package(package).map_err(|e| CompositionError::Invalid { detail: e.to_string() })?;
            packages.insert(part.name.to_string(), id);
            names.push(part.name.to_string());
        }
        Ok(Linker { graph, packages, instances: HashMap::new(), names, routed: Vec::new() })
    }

    fn instantiate(&mut self, name: &str) {
        let instance = self.graph.instantiate(self.packages[name]);
        self.instances.insert(name.to_string(), instance);
    }

    fn imports(&self, name: &str) -> Vec<(String, ItemKind)> {
        let world = self.graph[self.packages[name]].ty();
        self.graph.types()[world].imports.iter().map(|(n, k)| (n.clone(), *k)).collect()
    }

    fn exports(&self, name: &str) -> Vec<String> {
        let world = self.graph[self.packages[name]].ty();
        self.graph.types()[world].exports.keys().cloned().collect()
    }

    /// Passes export `export` of `from` as import `import` of `to`.
    fn connect(&mut self, from: &str, export: &str, to: &str, import: &str) -> Result<()> {
        let source = self
            .graph
            .alias_instance_export(self.instances[from], export)
            .map_err(|e| CompositionError::Invalid { detail: e.to_string() })?;
        self.graph.set_instantiation_argument(self.instances[to], import, source).map_err(|e| match e {
            wac_graph::InstantiationArgumentError::ArgumentTypeMismatch { source, .. } => {
                CompositionError::TypeMismatch {
                    component: to.to_string(),
                    interface: import.to_string(),
                    plug: from.to_string(),
                    detail: format!("{source:#}"),
                }
            }
            other => CompositionError::Invalid { detail: format!("{other:#}") },
        })
    }

    /// Satisfies `part`'s imports from its plugs; routes its capability imports (a
    /// dependency's) to imports of their own; every other import must be the host's.
    fn wire_plugs(&mut self, part: &Part) -> Result<()> {
        let Some(&instance) = self.instances.get(part.name) else { return Ok(()) };
        let imports = self.imports(part.name);
        let mut claimed: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for plug in part.plugs {
            let matches: Vec<(String, String)> = self
                .exports(plug)
                .into_iter()
                .filter_map(|export| {
                    let import = imports.iter().find(|(i, _)| *i == export || are_semver_compatible(&export, i))?;
                    Some((export, import.0.clone()))
                })
                .collect();
            if matches.is_empty() {
                return Err(CompositionError::UselessPlug {
                    component: part.name.to_string(),
                    plug: plug.clone(),
                    exports: list(self.exports(plug)),
                    imports: list(imports.iter().map(|(n, _)| n.clone())),
                });
            }
            for (export, import) in matches {
                claimed.entry(import).or_default().push((plug.clone(), export));
            }
        }
        for (import, exporters) in &claimed {
            if let [(plug, export)] = exporters.as_slice() {
                self.connect(plug, export, part.name, import)?;
            } else {
                return Err(CompositionError::AmbiguousPlug {
                    component: part.name.to_string(),
                    interface: import.clone(),
                    exporters: list(exporters.iter().map(|(plug, _)| plug.clone())),
                });
            }
        }
        let wired: Vec<String> = self.graph.get_instantiation_arguments(instance).map(|(n, _)| n.to_string()).collect();
        for (import, kind) in imports.into_iter().filter(|(i, _)| !wired.contains(i)) {
            if !import.starts_with("wasi:") {
                return Err(CompositionError::UnmetImport {
                    component: part.name.to_string(),
                    interface: import,
                    plugs: if part.plugs.is_empty() { "it has none".into() } else { part.plugs.join(", ") },
                });
            }
            if part.name != MAIN && is_capability(&import) {
                self.route(part.name, &import, kind)?;
            }
        }
        Ok(())
    }

    /// Gives `component`'s import of capability `interface` a top-level import of its own.
    fn route(&mut self, component: &str, interface: &str, kind: ItemKind) -> Result<()> {
        let index = self.names.iter().position(|n| n == component).unwrap_or_default();
        let label = routed_label(index, interface);
        let import =
            self.graph.import(&label, kind).map_err(|e| CompositionError::Invalid { detail: format!("{e:#}") })?;
        self.graph
            .set_instantiation_argument(self.instances[component], interface, import)
            .map_err(|e| CompositionError::Invalid { detail: format!("{e:#}") })?;
        self.routed.push(Routed { label, component: component.to_string(), interface: interface.to_string() });
        Ok(())
    }

    /// Chains the middleware in front of the main component's handler: each imports the
    /// handler of the next one inward, the innermost the main component's.
    fn wire_middleware(&mut self, middleware: &[String]) -> Result<()> {
        if middleware.is_empty() {
            return Ok(());
        }
        let exports = self.exports(MAIN);
        let generation = HANDLERS
            .into_iter()
            .find(|h| handler_in(&exports, h).is_some())
            .ok_or_else(|| CompositionError::NoHandler { exports: list(exports.clone()) })?;
        let mut inner = (MAIN.to_string(), handler_in(&exports, generation).unwrap_or_default());
        for outer in middleware.iter().rev() {
            let not_middleware = || CompositionError::NotMiddleware {
                component: outer.clone(),
                handler: generation.to_string(),
                imports: list(self.imports(outer).into_iter().map(|(n, _)| n)),
                exports: list(self.exports(outer)),
            };
            let imports: Vec<String> = self.imports(outer).into_iter().map(|(n, _)| n).collect();
            let import = handler_in(&imports, generation).ok_or_else(not_middleware)?;
            let export = handler_in(&self.exports(outer), generation).ok_or_else(not_middleware)?;
            self.connect(&inner.0, &inner.1, outer, &import)?;
            inner = (outer.clone(), export);
        }
        Ok(())
    }

    /// The app exports what the main component exports; with middleware, its handler is the
    /// outermost middleware's.
    fn export_main(&mut self, middleware: &[String]) -> Result<()> {
        for name in self.exports(MAIN) {
            let from = match middleware.first() {
                Some(outer) if is_handler(&name) => outer.clone(),
                _ => MAIN.to_string(),
            };
            let export = if from == MAIN {
                name.clone()
            } else {
                let generation = HANDLERS.into_iter().find(|h| name.starts_with(h)).unwrap_or_default();
                handler_in(&self.exports(&from), generation).unwrap_or_else(|| name.clone())
            };
            let node = self
                .graph
                .alias_instance_export(self.instances[&from], &export)
                .map_err(|e| CompositionError::Invalid { detail: e.to_string() })?;
            self.graph.export(node, &name).map_err(|e| CompositionError::Invalid { detail: e.to_string() })?;
        }
        Ok(())
    }

    fn encode(self) -> Result<Composed> {
        let bytes = self
            .graph
            .encode(EncodeOptions::default())
            .map_err(|e| CompositionError::Invalid { detail: format!("{e:#}") })?;
        Ok(Composed { bytes, routed: self.routed })
    }
}

/// The interface of an import or export name, without its version.
fn unversioned(name: &str) -> &str {
    name.split_once('@').map_or(name, |(interface, _)| interface)
}

fn is_capability(name: &str) -> bool {
    CAPABILITY_INTERFACES.contains(&unversioned(name))
}

fn is_handler(name: &str) -> bool {
    HANDLERS.iter().any(|h| name.starts_with(h))
}

/// The name in `names` of handler interface `generation` (one of [`HANDLERS`]).
fn handler_in(names: &[String], generation: &str) -> Option<String> {
    names.iter().find(|n| n.starts_with(generation)).cloned()
}

/// A plain kebab-case import name for `interface` of component number `index`, e.g.
/// `spore-c1-filesystem-preopens-p2`: not interface-shaped, so that no tool merges it with
/// the main component's import of the same interface.
fn routed_label(index: usize, interface: &str) -> String {
    let (path, version) = interface.split_once('@').unwrap_or((interface, ""));
    let path = path.trim_start_matches("wasi:").replace([':', '/'], "-");
    let generation = if version.starts_with("0.3") { "p3" } else { "p2" };
    format!("spore-c{index}-{path}-{generation}")
}

fn list(names: impl IntoIterator<Item = String>) -> String {
    let names: Vec<String> = names.into_iter().map(|n| format!("`{n}`")).collect();
    if names.is_empty() { "nothing".into() } else { names.join(", ") }
}
