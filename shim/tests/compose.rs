//! Components linked into one app by `spore_shim::compose`, run by the engine: real Rust
//! guests (tests/guests/compose) where a command imports a library, and both try the same
//! capabilities. Each gets only its own grant: the library is denied what the app may do
//! unless its entry grants it, and a grant to the library gives the app nothing. The
//! same pair is built for WASI 0.2 and for 0.3, whose library import is async.

mod common;

use common::serve::serve_wasm;
use common::{engine, guest, guest_bytes, http_get, http_get_with};
use spore_shim::ComponentGrant;
use spore_shim::compose::{MAIN, Part, Plan, compose};

/// `reach-app` linked with `reach-lib` as its plug `lib`.
fn linked() -> spore_shim::Wasm {
    linked_pair("reach-app.wasm", "reach-lib.wasm")
}

/// The same pair built for WASI 0.3.
fn linked_p3() -> spore_shim::Wasm {
    linked_pair("reach3-app.wasm", "reach3-lib.wasm")
}

/// `http.wasm` (a WASI 0.2 proxy) behind the 0.2 middleware `gate2.wasm`.
fn gated() -> spore_shim::Wasm {
    let (app, gate) = (guest_bytes("http.wasm"), guest_bytes("gate2.wasm"));
    let middleware = vec!["gate".to_string()];
    let plan = Plan {
        main: Part { name: MAIN, bytes: &app, plugs: &[] },
        others: vec![Part { name: "gate", bytes: &gate, plugs: &[] }],
        middleware: &middleware,
    };
    engine().load(&compose(&plan).expect("the guests link").bytes).expect("the linked app loads")
}

fn linked_pair(app: &str, lib: &str) -> spore_shim::Wasm {
    let (app, lib) = (guest_bytes(app), guest_bytes(lib));
    let plugs = vec!["lib".to_string()];
    let plan = Plan {
        main: Part { name: MAIN, bytes: &app, plugs: &plugs },
        others: vec![Part { name: "lib", bytes: &lib, plugs: &[] }],
        middleware: &[],
    };
    engine().load(&compose(&plan).expect("the guests link").bytes).expect("the linked app loads")
}

fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.txt"), "s3cret\n").unwrap();
    dir
}

/// A pod's resolver files, where `reach.test` is a name of its hosts file only.
fn resolver(dir: &std::path::Path) -> spore_shim::ResolverFiles {
    let (resolv_conf, hosts) = (dir.join("resolv.conf"), dir.join("hosts"));
    std::fs::write(&resolv_conf, "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n").unwrap();
    std::fs::write(&hosts, "127.0.0.1 reach.test\n").unwrap();
    spore_shim::ResolverFiles { resolv_conf, hosts: Some(hosts) }
}

fn lines(stdout: &str, who: &str) -> Vec<String> {
    stdout.lines().filter_map(|l| l.strip_prefix(&format!("{who} "))).map(str::to_string).collect()
}

fn granting(grant: impl FnOnce(&mut ComponentGrant)) -> ComponentGrant {
    let mut lib = ComponentGrant { name: "lib".into(), ..Default::default() };
    grant(&mut lib);
    lib
}

fn mount(volume: &str, guest_path: &str) -> spore_crds::FilesystemMount {
    spore_crds::FilesystemMount { volume: volume.into(), guest_path: guest_path.into(), read_only: true }
}

#[tokio::test]
async fn a_library_gets_none_of_the_apps_capabilities() {
    let data = data_dir();
    let out = guest("reach-app.wasm")
        .env("TOKEN", "t")
        .env("LOG", "debug")
        .mount("data", data.path(), "/data")
        .tcp_to("127.0.0.1/32", Some(9))
        .component(granting(|_| {}))
        .run_wasm(&linked())
        .await;
    assert_eq!(out.exit.code, 0, "{}", out.stderr);
    let (app, lib) = (lines(&out.stdout, "app"), lines(&out.stdout, "lib"));
    assert_eq!(app[0], "env 2");
    assert_eq!(app[1], "file /data/secret.txt ok s3cret");
    assert_eq!(app[2], "tcp 127.0.0.1:9 refused", "the app may connect");
    assert_eq!(lib[0], "env 0", "{}", out.stdout);
    assert!(lib[1].starts_with("file /data/secret.txt denied"), "{}", out.stdout);
    assert!(lib[2].starts_with("tcp 127.0.0.1:9 denied"), "{}", out.stdout);
}

#[tokio::test]
async fn a_library_gets_exactly_its_own_grant() {
    let data = data_dir();
    let lib_grant = granting(|lib| {
        lib.env.push(("STYLE".into(), "dark".into()));
        lib.capabilities.filesystem.push(mount("data", "/data"));
        lib.capabilities.network.outbound.tcp.push(spore_crds::SocketRule {
            cidr: "127.0.0.1/32".into(),
            port: Some(9),
            end_port: None,
        });
    });
    let mut run = guest("reach-app.wasm").component(lib_grant);
    // The volume is the pod's; only the library mounts it.
    run = run.volume("data", data.path());
    let out = run.run_wasm(&linked()).await;
    assert_eq!(out.exit.code, 0, "{}", out.stderr);
    let (app, lib) = (lines(&out.stdout, "app"), lines(&out.stdout, "lib"));
    assert_eq!(lib, ["env 1", "file /data/secret.txt ok s3cret", "tcp 127.0.0.1:9 refused"], "{}", out.stdout);
    assert_eq!(app[0], "env 0", "the library's grant is not the app's");
    assert!(app[1].starts_with("file /data/secret.txt denied"), "{}", out.stdout);
    assert!(app[2].starts_with("tcp 127.0.0.1:9 denied"), "{}", out.stdout);
}

#[tokio::test]
async fn a_wasi_p3_library_gets_none_of_the_apps_capabilities() {
    let data = data_dir();
    let out = guest("reach3-app.wasm")
        .env("TOKEN", "t")
        .mount("data", data.path(), "/data")
        .tcp_to("127.0.0.1/32", Some(9))
        .dns()
        .resolver(resolver(data.path()))
        .component(granting(|_| {}))
        .run_wasm(&linked_p3())
        .await;
    assert_eq!(out.exit.code, 0, "{}", out.stderr);
    let (app, lib) = (lines(&out.stdout, "app"), lines(&out.stdout, "lib"));
    assert_eq!(app, ["env 1", "file /data/secret.txt ok s3cret", "tcp 127.0.0.1:9 refused", "dns reach.test 1"]);
    assert_eq!(lib[0], "env 0", "{}", out.stdout);
    assert!(lib[1].starts_with("file /data/secret.txt denied"), "{}", out.stdout);
    assert!(lib[2].starts_with("tcp 127.0.0.1:9 denied"), "{}", out.stdout);
    assert!(lib[3].starts_with("dns reach.test denied"), "{}", out.stdout);
}

#[tokio::test]
async fn a_wasi_p3_library_gets_exactly_its_own_grant() {
    let data = data_dir();
    let lib_grant = granting(|lib| {
        lib.env.push(("STYLE".into(), "dark".into()));
        lib.capabilities.filesystem.push(mount("data", "/data"));
        lib.capabilities.network.outbound.tcp.push(spore_crds::SocketRule {
            cidr: "127.0.0.1/32".into(),
            port: Some(9),
            end_port: None,
        });
        lib.capabilities.network.outbound.dns = true;
    });
    let run = guest("reach3-app.wasm").component(lib_grant).volume("data", data.path());
    let out = run.resolver(resolver(data.path())).run_wasm(&linked_p3()).await;
    assert_eq!(out.exit.code, 0, "{}", out.stderr);
    let (app, lib) = (lines(&out.stdout, "app"), lines(&out.stdout, "lib"));
    let granted = ["env 1", "file /data/secret.txt ok s3cret", "tcp 127.0.0.1:9 refused", "dns reach.test 1"];
    assert_eq!(lib, granted, "{}", out.stdout);
    assert_eq!(app[0], "env 0", "the library's grant is not the app's");
    assert!(app[1].starts_with("file /data/secret.txt denied"), "{}", out.stdout);
    assert!(app[2].starts_with("tcp 127.0.0.1:9 denied"), "{}", out.stdout);
    assert!(app[3].starts_with("dns reach.test denied"), "{}", out.stdout);
}

#[tokio::test]
async fn a_wasi_p2_gate_answers_without_the_token_and_forwards_the_request_with_it() {
    let gate =
        ComponentGrant { name: "gate".into(), env: vec![("TOKEN".into(), "s3cret".into())], ..Default::default() };
    let served = serve_wasm(gated(), guest("http.wasm").component(gate), std::time::Duration::ZERO).await;
    // Answers are chunked: the text is in the body, between chunk sizes.
    let answered = |response: &str, status: &str, text: &str| {
        response.starts_with(&format!("HTTP/1.1 {status}")) && response.contains(text)
    };
    let missing = http_get_with(served.addr, "/", &[]).await;
    assert!(answered(&missing, "401", "missing bearer token\n"), "{missing}");
    assert!(missing.contains("www-authenticate: Bearer"), "{missing}");
    let wrong = http_get_with(served.addr, "/", &[("authorization", "Bearer guess")]).await;
    assert!(answered(&wrong, "401", "invalid token\n"), "{wrong}");
    let right = http_get_with(served.addr, "/", &[("authorization", "Bearer s3cret")]).await;
    assert!(answered(&right, "200", "hello from spore\n"), "{right}");
    // The token is the gate's: the handler behind it does not have it.
    let env = http_get_with(served.addr, "/env?name=TOKEN", &[("authorization", "Bearer s3cret")]).await;
    assert!(answered(&env, "404", "TOKEN is unset\n"), "{env}");
    assert_eq!(http_get(served.addr, "/env?name=TOKEN").await.0, 401);
    served.shutdown().await;
}
