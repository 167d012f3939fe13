//! Loading: classification of real guests, clear errors for everything else, and the
//! on-disk code cache (hits, corruption, stale entries).

mod common;

use common::guest_bytes;
use spore_shim::{CodeOrigin, Engine, EngineConfig, WasmKind};

fn engine_with_cache(dir: &std::path::Path) -> Engine {
    Engine::new(EngineConfig { cache_dir: Some(dir.to_path_buf()), ..EngineConfig::default() }).unwrap()
}

#[test]
fn classifies_real_guests() {
    let engine = common::engine();
    for (file, kind) in [
        ("hello-c.wasm", WasmKind::CoreCommand),
        ("probe-rs-p1.wasm", WasmKind::CoreCommand),
        ("probe-rs-p2.wasm", WasmKind::CliCommand),
        ("http.wasm", WasmKind::HttpProxy),
    ] {
        assert_eq!(engine.load(&guest_bytes(file)).unwrap().kind(), kind, "{file}");
    }
}

#[test]
fn rejects_what_it_cannot_run_naming_what_was_found() {
    let engine = common::engine();
    for (bytes, expected) in [
        (&b"\x7fELF\x02\x01\x01\0"[..], "not a WebAssembly binary: an ELF executable"),
        (b"", "not a WebAssembly binary: an empty file"),
        (b"(module (func (export \"_initialize\")))", "a reactor module"),
        (b"(module (func (export \"main\")))", "exports no _start"),
        (b"(module (import \"env\" \"f\" (func)) (func (export \"_start\")))", "imports `env::f`"),
        (b"(component)", "the component exports nothing"),
        (b"\0asm\x01\0\0\0\x01\xff", "invalid WebAssembly"),
    ] {
        let err = engine.load(bytes).err().expect("load fails").to_string();
        assert!(err.contains(expected), "expected {expected:?} in {err:?}");
    }
}

#[test]
fn a_second_engine_reuses_the_cached_code() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = guest_bytes("probe-rs-p2.wasm");
    assert_eq!(engine_with_cache(dir.path()).load(&bytes).unwrap().origin(), CodeOrigin::Compiled);
    assert_eq!(engine_with_cache(dir.path()).load(&bytes).unwrap().origin(), CodeOrigin::Cache);
}

fn cache_file(dir: &std::path::Path, ext: &str) -> std::path::PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == ext))
        .expect("cache entry")
}

#[tokio::test]
async fn a_corrupt_cache_entry_is_rebuilt_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = guest_bytes("hello-c.wasm");
    engine_with_cache(dir.path()).load(&bytes).unwrap();
    let artifact = cache_file(dir.path(), "cwasm");
    let mut code = std::fs::read(&artifact).unwrap();
    let middle = code.len() / 2;
    code[middle] ^= 0xff;
    std::fs::write(&artifact, &code).unwrap();

    let engine = engine_with_cache(dir.path());
    let wasm = engine.load(&bytes).unwrap();
    assert_eq!(wasm.origin(), CodeOrigin::Compiled);
    let sandbox = spore_shim::Sandbox::new(spore_shim::AppConfig::default(), spore_shim::Stdio::null()).unwrap();
    assert_eq!(spore_shim::run_command(&wasm, &sandbox).await.unwrap().code, 0);
    assert_eq!(engine_with_cache(dir.path()).load(&bytes).unwrap().origin(), CodeOrigin::Cache);
}

#[test]
fn a_stale_cache_entry_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = guest_bytes("hello-c.wasm");
    engine_with_cache(dir.path()).load(&bytes).unwrap();
    // An artifact from "another wasmtime": consistent with its checksum, but not loadable.
    let artifact = cache_file(dir.path(), "cwasm");
    let foreign = b"\x7fELF not a wasmtime artifact".to_vec();
    std::fs::write(&artifact, &foreign).unwrap();
    std::fs::write(cache_file(dir.path(), "crc32"), checksum(&foreign)).unwrap();

    assert_eq!(engine_with_cache(dir.path()).load(&bytes).unwrap().origin(), CodeOrigin::Compiled);
    assert_eq!(engine_with_cache(dir.path()).load(&bytes).unwrap().origin(), CodeOrigin::Cache);
}

#[test]
fn a_missing_checksum_makes_the_entry_a_miss() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = guest_bytes("hello-c.wasm");
    engine_with_cache(dir.path()).load(&bytes).unwrap();
    std::fs::remove_file(cache_file(dir.path(), "crc32")).unwrap();
    assert_eq!(engine_with_cache(dir.path()).load(&bytes).unwrap().origin(), CodeOrigin::Compiled);
}

/// The `.crc32` file's format: the artifact's length and CRC-32.
fn checksum(bytes: &[u8]) -> String {
    format!("{} {:08x}", bytes.len(), crc32fast::hash(bytes))
}
