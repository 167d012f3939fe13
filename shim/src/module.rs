//! Loading a binary: recognise it, compile it (through the code cache), and classify it
//! once into the one kind of guest Spore knows how to run.

use wasmtime::Module;
use wasmtime::component::Component;

use crate::cache::{CodeCache, Miss, hex_sha256};
use crate::engine::{Engine, Tier};
use crate::error::{Error, Result};

/// The kinds of guest Spore runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmKind {
    /// A WASI preview 1 core module with a `_start` export.
    CoreCommand,
    /// A component exporting `wasi:cli/run` (the `wasi:cli/command` world).
    CliCommand,
    /// A component exporting `wasi:http/incoming-handler` (the `wasi:http/proxy` world).
    HttpProxy,
    /// A component exporting `wasi:cli/run@0.3` (WASI 0.3's `wasi:cli/command` world).
    CliCommandP3,
    /// A component exporting `wasi:http/handler@0.3` (WASI 0.3's `wasi:http/service` world).
    HttpServiceP3,
}

impl WasmKind {
    /// Whether the guest serves HTTP requests rather than running to completion.
    pub fn serves_http(self) -> bool {
        matches!(self, WasmKind::HttpProxy | WasmKind::HttpServiceP3)
    }
}

impl std::fmt::Display for WasmKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WasmKind::CoreCommand => "WASI p1 command module",
            WasmKind::CliCommand => "wasi:cli/command component",
            WasmKind::HttpProxy => "wasi:http/proxy component",
            WasmKind::CliCommandP3 => "wasi:cli/command@0.3 component",
            WasmKind::HttpServiceP3 => "wasi:http/service@0.3 component",
        })
    }
}

/// Where the machine code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeOrigin {
    Compiled,
    Cache,
}

/// A compiled, classified guest, bound to the engine that compiled it.
#[derive(Clone)]
pub struct Wasm {
    kind: WasmKind,
    code: Code,
    sha256: String,
    origin: CodeOrigin,
    engine: Engine,
    /// For baseline code: the optimized code being compiled in the background.
    optimizing: Option<Optimizing>,
}

#[derive(Clone)]
pub(crate) enum Code {
    Module(Module),
    Component(Component),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Module,
    Component,
}

impl Engine {
    /// Compiles (or loads from the cache) and classifies a module or component. A tiered
    /// engine ([`Engine::for_requests`]) may return an HTTP component's baseline code and
    /// compile its optimized code in the background.
    pub fn load(&self, bytes: &[u8]) -> Result<Wasm> {
        Wasm::load(self, bytes)
    }

    /// Puts the optimized code of a module or component into the code cache, compiling it
    /// at idle priority unless it is there already: what a node precompile does before any
    /// pod needs the guest. The engine must be the one the guest's pods will load it on
    /// ([`Engine::for_guest`]): the cache keys code by engine settings.
    pub fn precompile(&self, bytes: &[u8]) -> Result<Wasm> {
        let Binary { bytes, encoding, sha256 } = Binary::read(bytes)?;
        let engine = &self.for_binary(&bytes)?;
        match cached(engine, encoding, &sha256) {
            Some(code) => Wasm::classified(engine, code, sha256, CodeOrigin::Cache),
            None => optimize(engine, encoding, &bytes, sha256),
        }
    }
}

/// A module or component in binary form (text, WAT, is parsed), its encoding and digest.
struct Binary<'a> {
    bytes: std::borrow::Cow<'a, [u8]>,
    encoding: Encoding,
    sha256: String,
}

impl<'a> Binary<'a> {
    fn read(bytes: &'a [u8]) -> Result<Self> {
        let bytes = if looks_like_wat(bytes) {
            let binary = wat::parse_bytes(bytes).map_err(|e| Error::Invalid(wasmtime::Error::new(e)))?;
            std::borrow::Cow::Owned(binary.into_owned())
        } else {
            std::borrow::Cow::Borrowed(bytes)
        };
        Ok(Self { encoding: sniff(&bytes)?, sha256: hex_sha256(&bytes), bytes })
    }
}

impl Wasm {
    fn load(engine: &Engine, bytes: &[u8]) -> Result<Self> {
        let Binary { bytes, encoding, sha256 } = Binary::read(bytes)?;
        let bytes = &bytes[..];
        let engine = &engine.for_binary(bytes)?;
        if let Some(code) = cached(engine, encoding, &sha256) {
            return Self::classified(engine, code, sha256, CodeOrigin::Cache);
        }
        if engine.tiered()
            && encoding == Encoding::Component
            && let Some(wasm) = start_on_baseline(engine, bytes, &sha256)?
        {
            return Ok(wasm);
        }
        let code = compile_and_store(engine, encoding, bytes, &sha256)?;
        Self::classified(engine, code, sha256, CodeOrigin::Compiled)
    }

    fn classified(engine: &Engine, code: Code, sha256: String, origin: CodeOrigin) -> Result<Self> {
        let kind = classify(engine, &code)?;
        Ok(Self { kind, code, sha256, origin, engine: engine.clone(), optimizing: None })
    }

    pub fn kind(&self) -> WasmKind {
        self.kind
    }

    /// sha256 of the binary, hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    pub fn origin(&self) -> CodeOrigin {
        self.origin
    }

    /// The compiler that made this code.
    pub fn tier(&self) -> Tier {
        self.engine.tier()
    }

    /// The optimized code of a guest loaded on baseline code, once it is ready; `None` for
    /// optimized code, or if compiling it failed (logged; the baseline code keeps serving).
    pub async fn optimized(&self) -> Option<Wasm> {
        self.optimizing.clone()?.ready().await
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    pub(crate) fn code(&self) -> &Code {
        &self.code
    }
}

/// The baseline code of an HTTP component, with its optimized code compiling on idle
/// threads. `None` when the component should wait for optimized code instead: it is not an
/// HTTP server (a command runs on its first code for life), or Winch cannot compile it (a
/// proposal it lacks, such as tail calls).
fn start_on_baseline(engine: &Engine, bytes: &[u8], sha256: &str) -> Result<Option<Wasm>> {
    let Some(baseline) = engine.baseline() else { return Ok(None) };
    let (code, origin, unstored) = match cached(&baseline, Encoding::Component, sha256) {
        Some(code) => (code, CodeOrigin::Cache, None),
        // Compiled on the serving engine itself, with no round trip through an artifact: the
        // compiler's memory goes when the optimized code replaces this engine.
        None => match Component::new(baseline.wasmtime(), bytes) {
            Ok(component) => {
                let unstored =
                    Unstored { engine: baseline.clone(), sha256: sha256.to_string(), component: component.clone() };
                (Code::Component(component), CodeOrigin::Compiled, Some(unstored))
            }
            Err(err) => {
                tracing::info!("the baseline compiler cannot take this component ({err}); waiting for optimized code");
                return Ok(None);
            }
        },
    };
    let wasm = Wasm::classified(&baseline, code, sha256.to_string(), origin)?;
    if !wasm.kind.serves_http() {
        return Ok(None);
    }
    let optimizing = Optimizing::start(engine.clone(), bytes.to_vec(), sha256.to_string(), unstored);
    Ok(Some(Wasm { optimizing: Some(optimizing), ..wasm }))
}

/// Baseline code that serves before it is cached: serializing and writing it (45 MB for
/// the Python component) took 30-150 ms, and the first request need not wait for that.
struct Unstored {
    engine: Engine,
    sha256: String,
    component: Component,
}

impl Unstored {
    fn store(self) {
        let Some(cache) = self.engine.cache() else { return };
        let stored = self
            .component
            .serialize()
            .map_err(Error::Engine)
            .and_then(|artifact| cache.store(&cache.entry(&self.sha256), &artifact));
        if let Err(err) = stored {
            tracing::warn!("baseline code not cached: {err}");
        }
    }
}

/// Optimized code being compiled in the background, at idle priority: it takes only the
/// CPU that requests leave unused.
#[derive(Clone)]
struct Optimizing(tokio::sync::watch::Receiver<Option<Wasm>>);

impl Optimizing {
    fn start(engine: Engine, bytes: Vec<u8>, sha256: String, unstored: Option<Unstored>) -> Self {
        let (ready, receiver) = tokio::sync::watch::channel(None);
        let compile = move || {
            demote_to_idle();
            if let Some(unstored) = unstored {
                unstored.store();
            }
            let started = std::time::Instant::now();
            let optimized = optimize(&engine, Encoding::Component, &bytes, sha256);
            // The binary and the compiler's threads are gone now: their heap can go too.
            drop(bytes);
            release_compiler_memory();
            match optimized {
                Ok(wasm) => {
                    tracing::info!(seconds = started.elapsed().as_secs_f32(), "optimized code ready");
                    let _ = ready.send(Some(wasm));
                }
                Err(err) => tracing::warn!("optimizing failed; baseline code keeps serving: {err}"),
            }
        };
        if let Err(err) = std::thread::Builder::new().name("spore-optimize".into()).spawn(compile) {
            tracing::warn!("cannot start the optimizing compiler; baseline code keeps serving: {err}");
        }
        Self(receiver)
    }

    async fn ready(mut self) -> Option<Wasm> {
        let ready = self.0.wait_for(Option::is_some).await.ok()?;
        ready.clone()
    }
}

/// Compiles optimized code on a pool of idle-priority threads, and caches it.
fn optimize(engine: &Engine, encoding: Encoding, bytes: &[u8], sha256: String) -> Result<Wasm> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("spore-optimize-{i}"))
        .start_handler(|_| demote_to_idle())
        .build()
        .map_err(|e| Error::Engine(wasmtime::Error::msg(format!("compiler threads: {e}"))))?;
    demote_to_idle();
    // wasmtime compiles functions in parallel on the rayon pool it is called from.
    let code = pool.install(|| compile_and_store(engine, encoding, bytes, &sha256))?;
    Wasm::classified(engine, code, sha256, CodeOrigin::Compiled)
}

/// Moves the calling thread to SCHED_IDLE: it runs only when no other thread wants the CPU.
#[allow(unsafe_code)]
fn demote_to_idle() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `param` outlives the call.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } != 0 {
        tracing::debug!("compiler thread keeps its priority: {}", std::io::Error::last_os_error());
    }
}

fn looks_like_wat(bytes: &[u8]) -> bool {
    let text = bytes.trim_ascii_start();
    text.starts_with(b"(module") || text.starts_with(b"(component")
}

fn sniff(bytes: &[u8]) -> Result<Encoding> {
    let Some(header) = bytes.strip_prefix(b"\0asm") else {
        return Err(Error::NotWasm { found: describe(bytes) });
    };
    match header.get(..4) {
        Some([1, 0, 0, 0]) => Ok(Encoding::Module),
        Some([0x0d, 0, 1, 0]) => Ok(Encoding::Component),
        Some(v) => Err(Error::Unsupported {
            what: "binary format",
            detail: format!(
                "version/layer bytes {v:02x?}; expected a core module (01 00 00 00) or a component (0d 00 01 00)"
            ),
        }),
        None => Err(Error::NotWasm { found: "a truncated file (only the \\0asm magic)".into() }),
    }
}

/// Names what a non-Wasm file looks like, so the user knows what they passed instead.
fn describe(bytes: &[u8]) -> String {
    match bytes {
        [] => "an empty file".into(),
        [0x7f, b'E', b'L', b'F', ..] => "an ELF executable (a native binary, not Wasm)".into(),
        [0x1f, 0x8b, ..] => "gzip data (an image layer? extract the .wasm from it)".into(),
        [b'P', b'K', 3, 4, ..] => "a zip archive".into(),
        [b'#', b'!', ..] => "a script".into(),
        _ if bytes.len() > 262 && &bytes[257..262] == b"ustar" => "a tar archive".into(),
        _ if bytes.iter().take(64).all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace()) => {
            let start: String = String::from_utf8_lossy(&bytes[..bytes.len().min(24)]).into();
            format!("text starting with {start:?}")
        }
        _ => format!("binary data starting with {:02x?}", &bytes[..bytes.len().min(4)]),
    }
}

/// The engine's cached code for the binary with digest `sha256`, if any. Corrupt or stale
/// entries are evicted (and logged): the caller compiles again.
fn cached(engine: &Engine, encoding: Encoding, sha256: &str) -> Option<Code> {
    let cache = engine.cache()?;
    let entry = cache.entry(sha256);
    match cache.verified(&entry) {
        Ok(()) => match deserialize(engine, encoding, &entry.artifact) {
            Ok(code) => return Some(code),
            Err(err) => {
                tracing::warn!(path = %entry.artifact.display(), "stale code cache entry ({err:#}); recompiling");
                cache.evict(&entry);
            }
        },
        Err(Miss::Corrupt) => {
            tracing::warn!(path = %entry.artifact.display(), "corrupt code cache entry (digest mismatch); recompiling");
            cache.evict(&entry);
        }
        Err(Miss::Absent) => {}
    }
    None
}

/// Compiles the binary, storing its machine code in the engine's cache if it has one.
fn compile_and_store(engine: &Engine, encoding: Encoding, bytes: &[u8], sha256: &str) -> Result<Code> {
    let code = match engine.cache() {
        Some(cache) => compile_into(cache, engine, encoding, bytes, sha256),
        None => precompile(engine, encoding, bytes).and_then(|artifact| deserialize_bytes(engine, encoding, &artifact)),
    };
    // Once the compiler's data and the serialized artifact are freed.
    release_compiler_memory();
    code
}

fn compile_into(cache: &CodeCache, engine: &Engine, encoding: Encoding, bytes: &[u8], sha256: &str) -> Result<Code> {
    let entry = cache.entry(sha256);
    let artifact = precompile(engine, encoding, bytes)?;
    if let Err(err) = cache.store(&entry, &artifact) {
        tracing::warn!("code cache not written: {err}");
        return deserialize_bytes(engine, encoding, &artifact);
    }
    // Mapping the cache file (rather than the bytes in hand) lets every process on the node
    // share the code pages.
    deserialize(engine, encoding, &entry.artifact).or_else(|_| deserialize_bytes(engine, encoding, &artifact))
}

fn precompile(engine: &Engine, encoding: Encoding, bytes: &[u8]) -> Result<Vec<u8>> {
    let e = engine.compiler()?;
    match encoding {
        Encoding::Module => e.precompile_module(bytes),
        Encoding::Component => e.precompile_component(bytes),
    }
    .map_err(Error::Invalid)
}

/// Hands freed heap back to the kernel. Compiling a big component allocates
/// hundreds of MB in the malloc arenas of the compiler's threads, and glibc keeps freed
/// arena memory: a server that compiled its Python component once held 500 MB more for
/// the rest of its life.
#[allow(unsafe_code)]
fn release_compiler_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; no pointer changes.
    unsafe {
        libc::malloc_trim(0);
    }
}

// SAFETY (both functions): the artifacts were produced by `precompile` on an engine with
// this fingerprint, and file entries were checked against their sha256 digest just before;
// wasmtime additionally rejects artifacts from another version or configuration.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, encoding: Encoding, path: &std::path::Path) -> wasmtime::Result<Code> {
    let e = engine.wasmtime();
    Ok(match encoding {
        Encoding::Module => Code::Module(unsafe { Module::deserialize_file(e, path)? }),
        Encoding::Component => Code::Component(unsafe { Component::deserialize_file(e, path)? }),
    })
}

#[allow(unsafe_code)]
fn deserialize_bytes(engine: &Engine, encoding: Encoding, artifact: &[u8]) -> Result<Code> {
    let e = engine.wasmtime();
    Ok(match encoding {
        Encoding::Module => Code::Module(unsafe { Module::deserialize(e, artifact) }.map_err(Error::Engine)?),
        Encoding::Component => Code::Component(unsafe { Component::deserialize(e, artifact) }.map_err(Error::Engine)?),
    })
}

const WASI_P1: &str = "wasi_snapshot_preview1";
const CLI_RUN: &str = "wasi:cli/run@0.2";
const HTTP_HANDLER: &str = "wasi:http/incoming-handler@0.2";
const CLI_RUN_P3: &str = "wasi:cli/run@0.3";
const HTTP_HANDLER_P3: &str = "wasi:http/handler@0.3";

fn classify(engine: &Engine, code: &Code) -> Result<WasmKind> {
    match code {
        Code::Module(module) => classify_module(module),
        Code::Component(component) => {
            let ty = component.component_type();
            let exports: Vec<&str> = ty.exports(engine.wasmtime()).map(|(name, _)| name).collect();
            let imports: Vec<&str> = ty.imports(engine.wasmtime()).map(|(name, _)| name).collect();
            classify_component(&exports, &imports)
        }
    }
}

fn classify_module(module: &Module) -> Result<WasmKind> {
    if let Some(import) = module.imports().find(|i| i.module() != WASI_P1) {
        return Err(Error::Unsupported {
            what: "module import",
            detail: format!(
                "the module imports `{}::{}`, but Spore provides only {WASI_P1}; build for wasm32-wasip1 (or wasm32-wasi)",
                import.module(),
                import.name()
            ),
        });
    }
    let has = |name: &str| module.get_export(name).is_some_and(|e| e.func().is_some());
    if has("_start") {
        Ok(WasmKind::CoreCommand)
    } else if has("_initialize") {
        Err(Error::Unsupported {
            what: "module",
            detail: "a reactor module (exports _initialize but no _start entry point); build it as a command".into(),
        })
    } else {
        Err(Error::Unsupported {
            what: "module",
            detail: "the core module exports no _start entry point; build it as a WASI command".into(),
        })
    }
}

fn classify_component(exports: &[&str], imports: &[&str]) -> Result<WasmKind> {
    let exports_any = |prefix: &str| exports.iter().any(|e| e.starts_with(prefix));
    for handler in [HTTP_HANDLER_P3, HTTP_HANDLER] {
        if exports_any(handler) && imports.iter().any(|i| i.starts_with(handler)) {
            return Err(Error::Unsupported {
                what: "component world",
                detail: format!(
                    "the component is a wasi:http middleware (it imports and exports {handler}): it wraps a handler and cannot serve alone; list it in spec.middleware of the app whose handler it wraps"
                ),
            });
        }
    }
    if exports_any(HTTP_HANDLER) {
        Ok(WasmKind::HttpProxy)
    } else if exports_any(HTTP_HANDLER_P3) {
        Ok(WasmKind::HttpServiceP3)
    } else if exports_any(CLI_RUN) {
        Ok(WasmKind::CliCommand)
    } else if exports_any(CLI_RUN_P3) {
        Ok(WasmKind::CliCommandP3)
    } else {
        let found = if exports.is_empty() { "nothing".to_string() } else { exports.join(", ") };
        Err(Error::Unsupported {
            what: "component world",
            detail: format!(
                "the component exports {found}; Spore runs components exporting wasi:cli/run (wasi:cli/command, WASI 0.2 or 0.3), wasi:http/incoming-handler@0.2 (wasi:http/proxy) or wasi:http/handler@0.3 (wasi:http/service)"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniff_recognises_modules_and_components() {
        assert_eq!(sniff(b"\0asm\x01\0\0\0").unwrap(), Encoding::Module);
        assert_eq!(sniff(b"\0asm\x0d\0\x01\0").unwrap(), Encoding::Component);
    }

    #[test]
    fn sniff_names_what_a_non_wasm_file_is() {
        for (bytes, expected) in [
            (&b""[..], "an empty file"),
            (b"\x7fELF\x02\x01", "an ELF executable"),
            (b"\x1f\x8b\x08\x00", "gzip data"),
            (b"#!/bin/sh\necho", "a script"),
            (b"hello world", "text starting with \"hello world\""),
            (b"\x01\x02\x03\x04\xff", "binary data starting with [01, 02, 03, 04]"),
            (b"\0asm", "a truncated file"),
        ] {
            let err = sniff(bytes).unwrap_err().to_string();
            assert!(err.contains(expected), "{bytes:?}: {err}");
        }
        let err = sniff(b"\0asm\x02\0\0\0").unwrap_err().to_string();
        assert!(err.contains("unsupported Wasm binary format"), "{err}");
    }

    #[test]
    fn classifies_components_by_their_exports() {
        for (exports, kind) in [
            ("wasi:http/incoming-handler@0.2.6", WasmKind::HttpProxy),
            ("wasi:cli/run@0.2.0", WasmKind::CliCommand),
            ("wasi:http/handler@0.3.0", WasmKind::HttpServiceP3),
            ("wasi:cli/run@0.3.0", WasmKind::CliCommandP3),
        ] {
            assert_eq!(classify_component(&[exports], &["wasi:cli/environment@0.2.0"]).unwrap(), kind, "{exports}");
        }
        let err = classify_component(&["my:app/thing"], &[]).unwrap_err().to_string();
        assert!(err.contains("exports my:app/thing"), "{err}");
        let err = classify_component(&[], &[]).unwrap_err().to_string();
        assert!(err.contains("exports nothing"), "{err}");
    }

    #[test]
    fn a_middleware_alone_is_refused_with_where_it_belongs() {
        for handler in ["wasi:http/handler@0.3.0", "wasi:http/incoming-handler@0.2.12"] {
            let err = classify_component(&[handler], &[handler]).unwrap_err().to_string();
            assert!(err.contains("middleware") && err.contains("spec.middleware"), "{err}");
        }
    }
}
