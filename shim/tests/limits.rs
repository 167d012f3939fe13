//! Limits and exits with real guests: memory cap, deadline, cancellation, exit codes, traps.

mod common;

use std::time::{Duration, Instant};

use common::{engine, guest};
use spore_shim::{AppConfig, DEADLINE_EXIT_CODE, Sandbox, Stdio, TRAP_EXIT_CODE};

const C: &str = "probe-c.wasm";

#[tokio::test]
async fn allocations_within_the_memory_limit_succeed() {
    let out = guest(C).args(["alloc", "16"]).memory(64 << 20).run().await;
    assert_eq!((out.exit.code, out.stdout.as_str()), (0, "allocated 16 MiB\n"), "{out:?}");
}

#[tokio::test]
async fn growth_past_the_memory_limit_fails_inside_the_guest() {
    let out = guest(C).args(["alloc", "100"]).memory(64 << 20).run().await;
    assert_eq!(out.exit.code, 2, "{out:?}");
    assert!(out.stdout.starts_with("alloc failed after "), "{}", out.stdout);
    let rust = guest("probe-rs-p1.wasm").args(["alloc", "100"]).memory(32 << 20).run().await;
    assert_eq!(rust.exit.code, 2, "{rust:?}");
}

#[tokio::test]
async fn a_trap_after_refused_growth_names_the_limit() {
    let wat = r#"(module
        (memory 1)
        (func (export "_start")
            (if (i32.eq (memory.grow (i32.const 100)) (i32.const -1)) (then unreachable))))"#;
    let wasm = engine().load(wat.as_bytes()).unwrap();
    let config = AppConfig {
        limits: spore_shim::RuntimeLimits { memory: Some(1 << 20), ..Default::default() },
        ..AppConfig::default()
    };
    let sandbox = Sandbox::new(config, Stdio::null()).unwrap();
    let exit = spore_shim::run_command(&wasm, &sandbox).await.unwrap();
    assert_eq!(exit.code, TRAP_EXIT_CODE);
    let reason = exit.reason.unwrap();
    assert!(reason.contains("memory limit of 1Mi reached"), "{reason}");
}

#[tokio::test]
async fn an_endless_loop_stops_at_the_deadline() {
    let start = Instant::now();
    let out = guest(C).args(["loop"]).timeout(Duration::from_millis(500)).run().await;
    assert_eq!(out.exit.code, DEADLINE_EXIT_CODE, "{out:?}");
    assert_eq!(out.exit.reason.as_deref(), Some("deadline exceeded after 500ms"));
    assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
}

#[tokio::test]
async fn a_command_within_its_deadline_finishes() {
    let out = guest(C).args(["sleep", "50"]).timeout(Duration::from_secs(10)).run().await;
    assert_eq!((out.exit.code, out.stdout.as_str()), (0, "slept 50\n"));
}

#[tokio::test]
async fn dropping_the_run_stops_a_spinning_guest() {
    let start = Instant::now();
    let run = guest(C).args(["loop"]).run();
    assert!(tokio::time::timeout(Duration::from_millis(300), run).await.is_err());
    assert!(start.elapsed() < Duration::from_secs(3), "cancellation took {:?}", start.elapsed());
}

#[tokio::test]
async fn exit_codes_are_the_guests_own() {
    for code in ["0", "7", "42"] {
        let out = guest(C).args(["exit", code]).run().await;
        assert_eq!(out.exit.code.to_string(), code);
        assert!(out.exit.reason.is_none());
    }
    let rust_p1 = guest("probe-rs-p1.wasm").args(["exit", "9"]).run().await;
    assert_eq!(rust_p1.exit.code, 9);
    // WASI 0.2's exit carries only ok/err.
    let p2 = guest("probe-rs-p2.wasm").args(["exit", "9"]).run().await;
    assert_eq!(p2.exit.code, 1);
    let p2_ok = guest("probe-rs-p2.wasm").args(["echo", "x"]).run().await;
    assert_eq!(p2_ok.exit.code, 0);
}

#[tokio::test]
async fn a_trap_reports_its_reason_and_a_backtrace() {
    for file in [C, "probe-rs-p1.wasm", "probe-rs-p2.wasm"] {
        let out = guest(file).args(["trap"]).run().await;
        assert_eq!(out.exit.code, TRAP_EXIT_CODE, "{file}: {out:?}");
        let reason = out.exit.reason.clone().unwrap();
        assert!(reason.starts_with("guest trapped: ") && reason.contains("unreachable"), "{file}: {reason}");
        assert!(!out.exit.backtrace.is_empty(), "{file}: no backtrace");
        assert!(out.exit.report().contains("\n    at "), "{file}: {}", out.exit.report());
    }
}

#[tokio::test]
async fn hello_prints_and_exits_zero() {
    let out = guest("hello-c.wasm").run().await;
    assert_eq!((out.exit.code, out.stdout.as_str()), (0, "hello from spore (C)\n"));
}

#[tokio::test]
async fn usage_counts_live_memory_and_guest_cpu() {
    let run = guest(C).args(["loop"]).timeout(Duration::from_millis(400));
    let wasm = run.wasm();
    let (sandbox, _) = run.sandbox();
    let exit = spore_shim::run_command(&wasm, &sandbox).await.unwrap();
    assert_eq!(exit.code, DEADLINE_EXIT_CODE);
    let usage = sandbox.usage();
    let cpu = usage.cpu_time();
    assert!(cpu >= Duration::from_millis(40) && cpu <= Duration::from_secs(5), "cpu {cpu:?}");
    assert_eq!(usage.memory_bytes(), 0, "memory of a finished instance is released");
}

#[tokio::test]
async fn usage_shows_the_memory_of_a_running_guest() {
    let run = guest("probe-rs-p1.wasm").args(["sleep", "2000"]);
    let wasm = run.wasm();
    let (sandbox, _) = run.sandbox();
    let running = tokio::spawn({
        let sandbox = sandbox.clone();
        async move { spore_shim::run_command(&wasm, &sandbox).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sandbox.usage().memory_bytes() >= 64 << 10, "memory {}", sandbox.usage().memory_bytes());
    running.abort();
}
