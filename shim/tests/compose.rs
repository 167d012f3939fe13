//! Components linked into one app by `spore_shim::compose`, run by the engine: real Rust
//! guests (tests/guests/compose) where a command imports a library, and both try the same
//! capabilities. Each gets only its own grant: the library is denied what the app may do
//! unless its entry grants it, and a grant to the library gives the app nothing.

mod common;

use common::{engine, guest, guest_bytes};
use spore_shim::ComponentGrant;
use spore_shim::compose::{MAIN, Part, Plan, compose};

/// `reach-app` linked with `reach-lib` as its plug `lib`.
fn linked() -> spore_shim::Wasm {
    let (app, lib) = (guest_bytes("reach-app.wasm"), guest_bytes("reach-lib.wasm"));
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
