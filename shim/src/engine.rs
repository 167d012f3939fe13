//! The shared wasmtime engine: one per process, with its epoch ticker, code cache and
//! linkers built once so that each run pays only for instantiation.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::component::Linker as ComponentLinker;

use crate::cache::CodeCache;
use crate::error::{Error, Result};
use crate::state::{P1State, P2State};

/// How often the epoch advances: the granularity of deadlines and of cancellation.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Engine settings.
#[derive(Debug, Clone, Default)]
pub struct EngineConfig {
    /// Directory for precompiled machine code; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Instances kept ready in a pool (memories, tables and stacks reserved up front and
    /// reused): fast per-request instantiation for HTTP servers. `None` allocates on demand.
    pub pooled_instances: Option<u32>,
    /// Components linked into each pooled instance (0 or 1 for a single component): the
    /// pool reserves each one's core instances, memories and tables.
    pub pooled_components: u32,
}

/// Which compiler makes an engine's machine code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Winch, wasmtime's baseline compiler: a single pass, several times faster to compile
    /// and slower to run. What a server answers its first requests with while the optimized
    /// code is compiled.
    Baseline,
    /// Cranelift, wasmtime's optimizing compiler.
    Optimized,
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Tier::Baseline => "baseline (Winch)",
            Tier::Optimized => "optimized (Cranelift)",
        })
    }
}

/// A wasmtime engine configured for Spore, cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    engine: wasmtime::Engine,
    config: EngineConfig,
    tier: Tier,
    /// Whether loading an HTTP component whose optimized code is not cached yet starts it on
    /// baseline code (see [`Engine::for_requests`]).
    tiered: bool,
    /// Whether stores support the component model's async ABI (WASI 0.3). Off for 0.2
    /// guests: it made every fresh instance 60% dearer (16 -> 25 us per hello request).
    concurrent: bool,
    cache: Option<CodeCache>,
    // Built on first use: a process running one p1 module never pays for the p2 linker.
    p1_linker: OnceLock<wasmtime::Linker<P1State>>,
    p2_linker: OnceLock<ComponentLinker<P2State>>,
    ticker: Ticker,
}

impl Engine {
    pub fn new(config: EngineConfig) -> Result<Self> {
        Self::build(config, Tier::Optimized, false, false)
    }

    fn build(config: EngineConfig, tier: Tier, tiered: bool, concurrent: bool) -> Result<Self> {
        let engine =
            wasmtime::Engine::new(&wasmtime_config(pool_of(&config), tier, concurrent)).map_err(Error::Engine)?;
        let cache = config.cache_dir.clone().map(|dir| CodeCache::new(dir, &engine));
        let ticker = Ticker::start(engine.clone());
        let (p1_linker, p2_linker) = (OnceLock::new(), OnceLock::new());
        let inner = Inner { engine, config, tier, tiered, concurrent, cache, p1_linker, p2_linker, ticker };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// This engine, or for a component using WASI 0.3 (itself or any component linked into
    /// it) its twin with the async ABI: same cache directory, pool and tiering.
    pub(crate) fn for_binary(&self, bytes: &[u8]) -> Result<Self> {
        if self.inner.concurrent || !uses_component_async(bytes) {
            return Ok(self.clone());
        }
        Self::build(self.inner.config.clone(), self.inner.tier, self.inner.tiered, true)
    }

    /// An engine sharing this one's code cache whose instances come from a pool sized for
    /// `max_concurrency` requests in flight. HTTP servers instantiate once per request, and
    /// the pool makes that 2-3x cheaper than allocating each instance on demand.
    ///
    /// It is tiered: an HTTP component whose optimized code is not cached yet starts at
    /// once on baseline code, and the server swaps in the optimized code when the compiler,
    /// running at idle priority, has it (a Python component: seconds rather than tens of
    /// seconds to its first response).
    pub fn for_requests(&self, max_concurrency: usize) -> Result<Self> {
        self.for_composed_requests(max_concurrency, 1)
    }

    /// [`Engine::for_requests`] for an app of `components` linked components.
    pub fn for_composed_requests(&self, max_concurrency: usize, components: usize) -> Result<Self> {
        // One slot more than the cap: a finished request's instance may still be releasing
        // its slot when the next request is admitted.
        let instances = u32::try_from(max_concurrency.saturating_add(1)).unwrap_or(u32::MAX);
        let config = EngineConfig {
            pooled_instances: Some(instances),
            pooled_components: u32::try_from(components).unwrap_or(u32::MAX),
            ..self.inner.config.clone()
        };
        Self::build(config, Tier::Optimized, BASELINE_AVAILABLE, self.inner.concurrent)
    }

    /// The engine to load `sandbox`'s guest with: what listens serves HTTP, one instance per
    /// request, from a pool ([`Engine::for_requests`]); anything else runs on this one.
    pub fn for_sandbox(&self, sandbox: &crate::Sandbox) -> Result<Self> {
        let components = 1 + sandbox.components().len();
        self.for_linked_guest(sandbox.listens(), sandbox.limits().max_concurrency, components)
    }

    /// [`Engine::for_sandbox`] for a guest of one component, from whether it listens
    /// and how many requests it serves at once.
    pub fn for_guest(&self, listens: bool, max_concurrency: usize) -> Result<Self> {
        self.for_linked_guest(listens, max_concurrency, 1)
    }

    fn for_linked_guest(&self, listens: bool, max_concurrency: usize, components: usize) -> Result<Self> {
        if listens { self.for_composed_requests(max_concurrency, components) } else { Ok(self.clone()) }
    }

    pub fn tier(&self) -> Tier {
        self.inner.tier
    }

    pub(crate) fn tiered(&self) -> bool {
        self.inner.tiered
    }

    /// A baseline engine beside this tiered one: same cache directory and pool size. Built
    /// per load and owned by the baseline code alone, so that once the optimized code
    /// replaces it and its last request ends, its pool and code are freed (a Python
    /// component's: tens of MB).
    pub(crate) fn baseline(&self) -> Option<Engine> {
        match Self::build(self.inner.config.clone(), Tier::Baseline, false, self.inner.concurrent) {
            Ok(engine) => Some(engine),
            Err(err) => {
                tracing::warn!("no baseline compiler; first requests wait for optimized code: {err}");
                None
            }
        }
    }

    /// Whether this engine is still alive, asked later without keeping it alive.
    #[cfg(test)]
    pub(crate) fn liveness(&self) -> impl Fn() -> bool + use<> {
        let weak = Arc::downgrade(&self.inner);
        move || weak.strong_count() > 0
    }

    /// A wasmtime engine with this one's settings, to compile with and drop: Cranelift keeps
    /// scratch buffers per compiling thread, sized for the largest function it compiled (for
    /// a Python interpreter: 60 MB in all), and they live as long as their engine. Code it
    /// compiles loads on this engine, which has the same settings.
    pub(crate) fn compiler(&self) -> Result<wasmtime::Engine> {
        let config = wasmtime_config(pool_of(&self.inner.config), self.inner.tier, self.inner.concurrent);
        wasmtime::Engine::new(&config).map_err(Error::Engine)
    }

    pub(crate) fn wasmtime(&self) -> &wasmtime::Engine {
        &self.inner.engine
    }

    /// Links `plan` ([`crate::compose::compose`]), once per node when the engine has a code
    /// cache: the linked app is kept there under its [`crate::compose::link_key`].
    pub fn link(&self, plan: &crate::compose::Plan) -> std::result::Result<Vec<u8>, crate::compose::CompositionError> {
        let Some(cache) = self.cache() else { return Ok(crate::compose::compose(plan)?.bytes) };
        let entry = cache.linked_entry(&crate::compose::link_key(plan));
        if let Some(bytes) = cache.read(&entry) {
            return Ok(bytes);
        }
        let bytes = crate::compose::compose(plan)?.bytes;
        if let Err(err) = cache.store(&entry, &bytes) {
            tracing::warn!("linked app not cached: {err}");
        }
        Ok(bytes)
    }

    pub(crate) fn cache(&self) -> Option<&CodeCache> {
        self.inner.cache.as_ref()
    }

    pub(crate) fn p1_linker(&self) -> &wasmtime::Linker<P1State> {
        self.inner.p1_linker.get_or_init(|| p1_linker(&self.inner.engine))
    }

    pub(crate) fn p2_linker(&self) -> &ComponentLinker<P2State> {
        self.inner.p2_linker.get_or_init(|| p2_linker(&self.inner.engine, self.inner.concurrent))
    }
}

/// Winch generates code for x86_64 only (its aarch64 backend is incomplete).
const BASELINE_AVAILABLE: bool = cfg!(target_arch = "x86_64");

impl Drop for Inner {
    fn drop(&mut self) {
        self.ticker.stop();
    }
}

/// The pool's size, if it has one: instances, and components per instance.
fn pool_of(config: &EngineConfig) -> Option<(u32, u32)> {
    config.pooled_instances.map(|instances| (instances, config.pooled_components.max(1)))
}

fn wasmtime_config(pool: Option<(u32, u32)>, tier: Tier, concurrent: bool) -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config.epoch_interruption(true).wasm_component_model(true).concurrency_support(concurrent);
    // A composed app imports each dependency's capabilities under a label of its own that
    // `implements` the interface.
    config.wasm_component_model_implements(true);
    match tier {
        Tier::Optimized => {
            config.strategy(wasmtime::Strategy::Cranelift).cranelift_opt_level(wasmtime::OptLevel::Speed)
        }
        // Winch compiles functions; Cranelift still compiles one trampoline per function
        // the host can call (every function in a table: 8,700 for the Python component),
        // and those were half of the compile time. A trampoline gains nothing from
        // optimization or a careful allocator, and without them the first response of the
        // Python component comes 25% sooner.
        Tier::Baseline => config
            .strategy(wasmtime::Strategy::Winch)
            .cranelift_opt_level(wasmtime::OptLevel::None)
            .cranelift_regalloc_algorithm(wasmtime::RegallocAlgorithm::SinglePass),
    };
    if let Some((instances, components)) = pool {
        config.allocation_strategy(pooling(instances, components));
    }
    config
}

/// Per component: the core modules and adapters a toolchain emits (a linked app reserves
/// this for each of its components).
const CORE_INSTANCES_PER_COMPONENT: u32 = 16;
const MEMORIES_PER_COMPONENT: u32 = 4;
const KEEP_RESIDENT: usize = 2 << 20;

fn pooling(instances: u32, components: u32) -> wasmtime::PoolingAllocationConfig {
    let core_instances = CORE_INSTANCES_PER_COMPONENT.saturating_mul(components);
    let memories = MEMORIES_PER_COMPONENT.saturating_mul(components);
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    pool.total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(core_instances))
        .total_memories(instances.saturating_mul(memories))
        .total_tables(instances.saturating_mul(memories))
        .total_stacks(instances)
        .max_memories_per_component(memories)
        .max_core_instances_per_component(core_instances)
        // Resetting small, reused state with memset beats madvise: every decommit is a TLB
        // shootdown across the process's threads, which dominated per-request cost.
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT)
        .async_stack_keep_resident(KEEP_RESIDENT)
        // Decommit what a finished instance dirtied beyond that at once: a batch would keep
        // every queued slot's pages resident, so memory would follow the pool's size rather
        // than the requests in flight (a Python component: 65 MB at any pool size with 1,
        // 150 MB and growing with 32). Small instances fit in KEEP_RESIDENT and never wait.
        .decommit_batch_size(1)
        // Where the kernel has PAGEMAP_SCAN (6.7+), reset only the pages a request dirtied.
        .pagemap_scan(wasmtime::Enabled::Auto);
    pool
}

// Adding WASI's own definitions to an empty linker cannot clash, so failure is a bug.
fn p1_linker(engine: &wasmtime::Engine) -> wasmtime::Linker<P1State> {
    let mut linker = wasmtime::Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s: &mut P1State| &mut s.wasi).expect("WASI p1 links");
    linker
}

/// One linker for every component world, WASI 0.2 and 0.3 side by side: HTTP components
/// built by ordinary toolchains also import `wasi:cli` and friends, so the proxy world
/// alone would reject them, and 0.3 components built with a 0.2 standard library import
/// some of both.
fn p2_linker(engine: &wasmtime::Engine, concurrent: bool) -> ComponentLinker<P2State> {
    let mut linker = ComponentLinker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("WASI p2 links");
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).expect("wasi:http links");
    crate::policy::add_dns_to_linker(&mut linker, dns_view).expect("Spore's name lookup replaces wasmtime-wasi's");
    crate::compose::host::add_to_linker(&mut linker, concurrent).expect("linked components' own imports link");
    if !concurrent {
        return linker;
    }
    wasmtime_wasi::p3::add_to_linker(&mut linker).expect("WASI 0.3 links");
    wasmtime_wasi_http::p3::add_to_linker(&mut linker).expect("wasi:http 0.3 links");
    crate::policy::add_p3_dns_to_linker(&mut linker, p3_dns).expect("Spore's name lookup replaces wasmtime-wasi's");
    linker
}

/// Whether the binary uses the component model's async ABI anywhere, in a nested
/// component too: a WASI 0.3 component, or a 0.2 one linked with a 0.3 dependency.
fn uses_component_async(bytes: &[u8]) -> bool {
    use wasmparser::{CanonicalFunction as F, CanonicalOption, Parser, Payload};
    let is_async = |function: &F| match function {
        F::Lift { options, .. } | F::Lower { options, .. } => {
            options.iter().any(|o| matches!(o, CanonicalOption::Async | CanonicalOption::Callback(_)))
        }
        F::ResourceNew { .. } | F::ResourceDrop { .. } | F::ResourceRep { .. } => false,
        F::ThreadSpawnRef { .. } | F::ThreadSpawnIndirect { .. } | F::ThreadAvailableParallelism => false,
        // Tasks, streams, futures, waitables, backpressure: only async components have them.
        _ => true,
    };
    for payload in Parser::new(0).parse_all(bytes) {
        match payload {
            Ok(Payload::ComponentCanonicalSection(functions)) => {
                if functions.into_iter().flatten().any(|f| is_async(&f)) {
                    return true;
                }
            }
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

fn p3_dns(state: &mut P2State) -> &crate::policy::Dns {
    &state.dns
}

fn dns_view(state: &mut P2State) -> crate::policy::DnsView<'_> {
    crate::policy::DnsView { table: &mut state.table, dns: &state.dns }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on a small dedicated thread.
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    fn start(engine: wasmtime::Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("spore-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    // Parked rather than asleep, so `stop` need not wait out a tick.
                    std::thread::park_timeout(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .ok();
        Self { stop, thread }
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_links_the_same_plan_once() {
        let guests = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/guests/");
        let read = |file: &str| std::fs::read(format!("{guests}{file}")).expect("target/guests (make guests)");
        let (app, lib, plugs) = (read("reach-app.wasm"), read("reach-lib.wasm"), ["lib".to_string()]);
        let plan = crate::compose::Plan {
            main: crate::compose::Part { name: crate::compose::MAIN, bytes: &app, plugs: &plugs },
            others: vec![crate::compose::Part { name: "lib", bytes: &lib, plugs: &[] }],
            middleware: &[],
        };
        let dir = tempfile::tempdir().unwrap();
        let engine =
            Engine::new(EngineConfig { cache_dir: Some(dir.path().into()), ..EngineConfig::default() }).unwrap();
        let linked = engine.link(&plan).unwrap();
        assert_eq!(linked, crate::compose::compose(&plan).unwrap().bytes);
        // What the cache holds is what a second link answers: it does not link again.
        let cache = engine.cache().unwrap();
        let entry = cache.linked_entry(&crate::compose::link_key(&plan));
        cache.store(&entry, b"from the cache").unwrap();
        assert_eq!(engine.link(&plan).unwrap(), b"from the cache");
        // Without a cache every link is done anew.
        assert_eq!(Engine::new(EngineConfig::default()).unwrap().link(&plan).unwrap(), linked);
    }

    #[test]
    fn only_components_using_wasi_0_3_need_the_async_abi() {
        let guests = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/guests/");
        for (file, p3) in [
            ("p3-http.wasm", true),
            ("p3-command.wasm", true),
            ("http.wasm", false),
            ("probe-rs-p2.wasm", false),
            ("hello-c.wasm", false),
        ] {
            let bytes = std::fs::read(format!("{guests}{file}")).expect("target/guests (make guests)");
            assert_eq!(uses_component_async(&bytes), p3, "{file}");
        }
        assert!(!uses_component_async(b"not wasm"));
        // A composed app nests its components: the async ones are found inside.
        let read = |file: &str| std::fs::read(format!("{guests}{file}")).expect("target/guests");
        let linked = |app: &str, lib: &str| {
            let (app, lib, plugs) = (read(app), read(lib), ["lib".to_string()]);
            let plan = crate::compose::Plan {
                main: crate::compose::Part { name: crate::compose::MAIN, bytes: &app, plugs: &plugs },
                others: vec![crate::compose::Part { name: "lib", bytes: &lib, plugs: &[] }],
                middleware: &[],
            };
            crate::compose::compose(&plan).expect("the guests link").bytes
        };
        assert!(uses_component_async(&linked("reach3-app.wasm", "reach3-lib.wasm")));
        assert!(!uses_component_async(&linked("reach-app.wasm", "reach-lib.wasm")));
    }
}
