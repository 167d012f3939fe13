//! WASI 0.3 guests (`wasi:cli/command@0.3.0`, `wasi:http/service@0.3.0`) in the same sandbox
//! as 0.2 ones: each capability allowed and denied, exit codes, deadline, fresh instances.

mod common;

use std::time::Duration;

use common::serve::serve;
use common::{guest, http_get, load};
use spore_shim::WasmKind;

const CMD: &str = "p3-command.wasm";
const HTTP: &str = "p3-http.wasm";

#[test]
fn classifies_0_3_commands_and_services() {
    assert_eq!(load(CMD).kind(), WasmKind::CliCommandP3);
    assert_eq!(load(HTTP).kind(), WasmKind::HttpServiceP3);
}

#[tokio::test]
async fn a_0_3_command_runs_with_its_args_and_exit_code() {
    let out = guest(CMD).args(["echo", "a", "b"]).run().await;
    assert_eq!((out.exit.code, out.stdout.as_str()), (0, "a b\n"), "{out:?}");
    assert_eq!(guest(CMD).args(["exit", "7"]).run().await.exit.code, 7);
}

#[tokio::test]
async fn a_0_3_command_sees_only_declared_env_and_mounts() {
    let out = guest(CMD).args(["env", "GREETING"]).env("GREETING", "hi").run().await;
    assert_eq!((out.exit.code, out.stdout.as_str()), (0, "GREETING=hi\n"), "{out:?}");
    let out = guest(CMD).args(["env", "PATH"]).run().await;
    assert_eq!(out.exit.code, 3, "{out:?}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "hi from the host").unwrap();
    let out = guest(CMD).args(["read", "/data/hello.txt"]).mount("data", dir.path(), "/data").run().await;
    assert_eq!((out.exit.code, out.stdout.as_str()), (0, "hi from the host"), "{out:?}");
    for path in ["/data/../etc/passwd", "/etc/passwd"] {
        let out = guest(CMD).args(["read", path]).mount("data", dir.path(), "/data").run().await;
        assert!(out.exit.code == 1 && out.stderr.contains("not-permitted"), "{path}: {out:?}");
    }
    let out = guest(CMD).args(["write", "/data/new.txt", "x"]).mount("data", dir.path(), "/data").run().await;
    assert_eq!(out.exit.code, 1, "{out:?}");
    assert!(!dir.path().join("new.txt").exists());
}

#[tokio::test]
async fn a_0_3_command_connects_only_to_declared_destinations_and_resolves_only_with_dns() {
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let target = addr.to_string();
    let allowed = guest(CMD).args(["connect", &target]).tcp_to("127.0.0.1/32", Some(addr.port())).run().await;
    assert_eq!(allowed.exit.code, 0, "{allowed:?}");
    let denied = guest(CMD).args(["connect", &target]).run().await;
    assert!(denied.exit.code == 1 && denied.stderr.contains("access-denied"), "{denied:?}");

    let resolved = guest(CMD).args(["resolve", "localhost"]).dns().run().await;
    assert_eq!(resolved.exit.code, 0, "{resolved:?}");
    assert!(resolved.stdout.lines().any(|l| l == "127.0.0.1" || l == "::1"), "{resolved:?}");
    let no_dns = guest(CMD).args(["resolve", "localhost"]).run().await;
    assert!(no_dns.exit.code == 1 && no_dns.stderr.contains("access-denied"), "{no_dns:?}");
}

#[tokio::test]
async fn a_0_3_command_is_held_to_its_memory_limit_and_deadline() {
    let out = guest(CMD).args(["alloc", "64"]).memory(32 << 20).run().await;
    assert_eq!(out.exit.code, 2, "{out:?}");
    let out = guest(CMD).args(["loop"]).timeout(Duration::from_millis(300)).run().await;
    assert_eq!(out.exit.code, spore_shim::DEADLINE_EXIT_CODE, "{out:?}");
}

#[tokio::test]
async fn a_0_3_service_answers_each_request_from_a_fresh_instance() {
    let served = serve(guest(HTTP)).await;
    assert_eq!(http_get(served.addr, "/").await, (200, "hello from spore (p3)\n".into()));
    for _ in 0..3 {
        assert_eq!(http_get(served.addr, "/count").await, (200, "1\n".into()));
    }
    assert_eq!(http_get(served.addr, "/sleep?ms=50").await.0, 200);
    served.shutdown().await;
}

#[tokio::test]
async fn a_0_3_service_sees_only_declared_env_and_mounts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "hi from the host").unwrap();
    let served = serve(guest(HTTP).env("GREETING", "hi").mount("data", dir.path(), "/data")).await;
    assert_eq!(http_get(served.addr, "/env?name=GREETING").await.0, 200);
    assert_eq!(http_get(served.addr, "/env?name=PATH").await.0, 404);
    assert_eq!(http_get(served.addr, "/read?path=/data/hello.txt").await, (200, "hi from the host".into()));
    assert_eq!(http_get(served.addr, "/read?path=/etc/passwd").await.0, 403);
    served.shutdown().await;
}

#[tokio::test]
async fn a_0_3_service_fetches_only_from_allowlisted_hosts() {
    common::serve::outbound_reaches_only_allowlisted_hosts(HTTP).await;
}

#[tokio::test]
async fn a_0_3_request_past_its_deadline_gets_504() {
    let served = serve(guest(HTTP).timeout(Duration::from_millis(300))).await;
    let (status, body) = http_get(served.addr, "/sleep?ms=3000").await;
    assert_eq!(status, 504, "{body}");
    assert!(body.contains("deadline exceeded"), "{body}");
    served.shutdown().await;
}

#[tokio::test]
async fn a_reused_0_3_instance_serves_up_to_max_requests_then_a_fresh_one_takes_over() {
    let served = serve(guest(HTTP).reuse(3, 1)).await;
    let mut counts = Vec::new();
    for _ in 0..7 {
        let (status, body) = http_get(served.addr, "/count").await;
        assert_eq!(status, 200, "{body}");
        counts.push(body.trim().parse::<u32>().unwrap());
    }
    assert_eq!(counts, [1, 2, 3, 1, 2, 3, 1]);
    served.shutdown().await;
}

#[tokio::test]
async fn a_reused_0_3_instance_serves_max_concurrent_requests_at_once() {
    let served = serve(guest(HTTP).reuse(100, 4)).await;
    // Three waiting requests and one more fit one instance, which counts all four. They
    // are spaced out, as a request arriving while the instance starts gets another one.
    let mut sleepers = Vec::new();
    for _ in 0..3 {
        sleepers.push(tokio::spawn(http_get(served.addr, "/sleep?ms=1000")));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(http_get(served.addr, "/count").await, (200, "4\n".into()));
    // Four in flight fill it: a fifth concurrent request gets a fresh instance.
    sleepers.push(tokio::spawn(http_get(served.addr, "/sleep?ms=1000")));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(http_get(served.addr, "/count").await, (200, "1\n".into()));
    for sleeper in sleepers {
        assert_eq!(sleeper.await.unwrap().0, 200);
    }
    served.shutdown().await;
}

#[tokio::test]
async fn reused_0_3_instances_keep_the_sandbox_and_the_limits() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "hi from the host").unwrap();
    let run = guest(HTTP).reuse(100, 2).mount("data", dir.path(), "/data").timeout(Duration::from_millis(500));
    let served = serve(run.memory(32 << 20)).await;
    assert_eq!(http_get(served.addr, "/read?path=/data/hello.txt").await, (200, "hi from the host".into()));
    assert_eq!(http_get(served.addr, "/read?path=/etc/passwd").await.0, 403);
    assert_eq!(http_get(served.addr, "/env?name=PATH").await.0, 404);
    assert_eq!(http_get(served.addr, "/alloc?mb=64").await.0, 507);
    for path in ["/sleep?ms=3000", "/loop"] {
        let (status, body) = http_get(served.addr, path).await;
        assert_eq!(status, 504, "{path}: {body}");
        assert!(body.contains("deadline exceeded"), "{path}: {body}");
    }
    // A fresh instance replaces the one that was stuck.
    assert_eq!(http_get(served.addr, "/").await.0, 200);
    served.shutdown().await;
}

#[tokio::test]
async fn instance_reuse_is_refused_for_a_0_2_proxy() {
    let run = guest("http.wasm").reuse(10, 1);
    let wasm = run.wasm();
    let (sandbox, _) = run.sandbox();
    let err = spore_shim::HttpServer::new(&wasm, &sandbox).err().expect("refused").to_string();
    assert!(err.contains("limits.instanceReuse") && err.contains("WASI 0.3"), "{err}");
}
