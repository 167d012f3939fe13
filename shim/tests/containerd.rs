//! The Spore shim under a real containerd (Debian's 1.6): `ctr run` of Wasm images, exit
//! codes, kill semantics, bad input failing Create with a reason, and recovery from a shim
//! crash. Needs root and `make deps` (containerd, runc).

mod common;
mod harness;

use std::time::Duration;

use harness::registry::Registry;
use harness::{Containerd, ImageBuilder, OutputExt, SPORE, probe_image};

#[test]
fn runs_a_wasm_command_and_shows_its_output() {
    let ctrd = Containerd::start();
    let image = probe_image(&ctrd);
    let out = ctrd.run(&image, "hello", SPORE, &[]);
    assert!(out.status.success(), "{}\n{}", out.stderr_text(), ctrd.log());
    assert_eq!(out.stdout_text(), "hi\n");
    ctrd.assert_clean();
}

#[test]
fn propagates_the_guests_exit_code() {
    let ctrd = Containerd::start();
    let image = probe_image(&ctrd);
    for code in [0, 3, 42] {
        let out = ctrd.run(&image, &format!("exit-{code}"), SPORE, &["/probe.wasm", "exit", &code.to_string()]);
        assert_eq!(out.status.code(), Some(code), "{}", out.stderr_text());
    }
    let trap = ctrd.run(&image, "trap", SPORE, &["/probe.wasm", "trap"]);
    assert_eq!(trap.status.code(), Some(134), "{}", trap.stderr_text());
    ctrd.assert_clean();
}

#[test]
fn kill_stops_a_spinning_guest_like_a_container() {
    let ctrd = Containerd::start();
    let image = probe_image(&ctrd);
    for (signal, status) in [("SIGTERM", 143), ("SIGKILL", 137)] {
        let id = format!("spin-{}", signal.to_lowercase());
        ctrd.start_detached(&image, &id, SPORE, &["/probe.wasm", "loop"]);
        assert_eq!(ctrd.stop_and_remove(&id, signal), status);
    }
    ctrd.assert_clean();
}

#[test]
fn capabilities_come_from_annotations() {
    let ctrd = Containerd::start();
    let image = probe_image(&ctrd);
    let env = ["--env", "GREETING=hello", "--env", "SECRET=x"];
    let declared = [&env[..], &["--annotation", r#"spore.dev/env=["GREETING"]"#]].concat();
    let out = ctrd.run_with_flags(&declared, &image, "env-ok", SPORE, &["/probe.wasm", "env", "GREETING"]);
    assert_eq!(out.stdout_text(), "GREETING=hello\n", "{}", out.stderr_text());
    let out = ctrd.run_with_flags(&declared, &image, "env-denied", SPORE, &["/probe.wasm", "env", "SECRET"]);
    assert_eq!((out.status.code(), out.stdout_text().as_str()), (Some(3), "SECRET is unset\n"));
    let out = ctrd.run(&image, "file-denied", SPORE, &["/probe.wasm", "read", "/probe.wasm"]);
    assert_eq!(out.status.code(), Some(1), "the image's own files are not granted: {}", out.stdout_text());
    ctrd.assert_clean();
}

#[test]
fn bad_containers_fail_create_with_a_reason_and_leave_nothing() {
    let ctrd = Containerd::start();
    let image = probe_image(&ctrd);
    let corrupt = ImageBuilder::new("localhost/spore/corrupt:1")
        .file("/app.wasm", b"\0asm\x01\0\0\0\x01\xff".to_vec(), 0o644)
        .entrypoint(["/app.wasm"]);
    let native = ImageBuilder::new("localhost/spore/native:1")
        .file("/hello", common::guest_bytes("hello-c-native"), 0o755)
        .entrypoint(["/hello"]);
    ctrd.import_image(&corrupt);
    ctrd.import_image(&native);

    let cases: [(&[&str], &str, &str, &[&str]); 4] = [
        (&[], corrupt.name(), "invalid WebAssembly", &[]),
        (&[], native.name(), "not a WebAssembly binary: an ELF executable", &[]),
        (&[], &image, "/missing.wasm: not found in the image", &["/missing.wasm"]),
        (
            &["--annotation", "spore.dev/capabilities={oops"],
            &image,
            "annotation spore.dev/capabilities: invalid JSON",
            &[],
        ),
    ];
    for (i, (flags, image, expected, args)) in cases.into_iter().enumerate() {
        let out = ctrd.run_with_flags(flags, image, &format!("bad-{i}"), SPORE, args);
        assert!(!out.status.success(), "case {i} ran");
        let err = out.stderr_text();
        assert!(err.contains(expected), "case {i}: expected {expected:?} in {err:?}");
    }
    ctrd.assert_clean();
}

#[test]
fn a_killed_shim_is_reported_and_the_next_task_starts_cleanly() {
    let ctrd = Containerd::start();
    let image = probe_image(&ctrd);
    ctrd.start_detached(&image, "doomed", SPORE, &["/probe.wasm", "loop"]);
    let shim = ctrd.task("doomed").expect("task listed").pid;
    std::process::Command::new("kill").args(["-KILL", &shim.to_string()]).status().unwrap();
    // containerd notices the dead shim, runs its `delete` action and drops the task.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while ctrd.task("doomed").is_some_and(|t| t.status == "RUNNING") {
        assert!(std::time::Instant::now() < deadline, "the task still runs after its shim died");
        std::thread::sleep(Duration::from_millis(100));
    }
    while !ctrd.log().contains("topic=/tasks/exit") {
        assert!(std::time::Instant::now() < deadline, "no exit event after the shim died");
        std::thread::sleep(Duration::from_millis(100));
    }
    if ctrd.task("doomed").is_some() {
        ctrd.delete_task("doomed");
    }
    ctrd.delete_container("doomed");

    let out = ctrd.run(&image, "after", SPORE, &[]);
    assert_eq!(out.stdout_text(), "hi\n", "{}", out.stderr_text());
    ctrd.assert_clean();
}

#[test]
fn metrics_report_the_guests_memory_and_cpu() {
    let ctrd = Containerd::start();
    let image = probe_image(&ctrd);
    ctrd.start_detached(&image, "busy", SPORE, &["/probe.wasm", "loop"]);
    std::thread::sleep(Duration::from_millis(500));
    let metrics = ctrd.ctr_ok(["tasks", "metrics", "busy"]);
    let value = |name: &str| -> u64 {
        let line = metrics.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name} in {metrics}"));
        line.split_whitespace().last().unwrap().parse().unwrap()
    };
    assert!(value("memory.usage_in_bytes") >= 64 << 10, "{metrics}");
    assert!(value("cpuacct.usage") >= 10_000_000, "{metrics}");
    ctrd.stop_and_remove("busy", "SIGKILL");
    ctrd.assert_clean();
}

#[test]
fn a_container_gets_its_own_network_unless_it_asks_for_the_hosts() {
    let ctrd = Containerd::start();
    let image = ImageBuilder::new("localhost/spore/probe-p2:1")
        .file("/probe.wasm", common::guest_bytes("probe-rs-p2.wasm"), 0o644)
        .entrypoint(["/probe.wasm"]);
    ctrd.import_image(&image);
    let host = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = host.local_addr().unwrap().to_string();
    let caps = format!(
        r#"spore.dev/capabilities={{"network":{{"outbound":{{"tcp":[{{"cidr":"127.0.0.1/32","port":{}}}]}}}}}}"#,
        host.local_addr().unwrap().port()
    );
    // Allowed by the capability, but the host's loopback is not the container's.
    let isolated = ctrd.run_with_flags(
        &["--annotation", &caps],
        image.name(),
        "isolated",
        SPORE,
        &["/probe.wasm", "connect", &target],
    );
    assert_eq!(isolated.status.code(), Some(1), "{}", isolated.stdout_text());
    assert!(isolated.stderr_text().contains("refused"), "{}", isolated.stderr_text());
    let shared = ctrd.run_with_flags(
        &["--net-host", "--annotation", &caps],
        image.name(),
        "host-net",
        SPORE,
        &["/probe.wasm", "connect", &target],
    );
    assert_eq!(shared.stdout_text(), format!("connected {target}\n"), "{}", shared.stderr_text());
    ctrd.assert_clean();
}

#[test]
fn a_wasm_image_pulled_from_a_registry_runs() {
    let registry = Registry::start();
    let ctrd = Containerd::start();
    let reference = format!("{}/spore/probe:1", registry.addr);
    let image = ImageBuilder::new(&reference)
        .file("/probe.wasm", common::guest_bytes("probe-c.wasm"), 0o755)
        .entrypoint(["/probe.wasm"])
        .cmd(["echo", "pulled"]);
    ctrd.import_image(&image);
    ctrd.ctr_ok(["images", "push", "--plain-http", &reference]);
    ctrd.ctr_ok(["images", "rm", &reference]);
    ctrd.ctr_ok(["images", "pull", "--plain-http", &reference]);

    let out = ctrd.run(&reference, "pulled", SPORE, &[]);
    assert_eq!(out.stdout_text(), "pulled\n", "{}\n{}", out.stderr_text(), ctrd.log());
    ctrd.assert_clean();
}

/// `spore image build`'s default (plain) format is an ordinary image: Debian's containerd
/// imports, pushes, pulls and `ctr run`s it (the artifact format it can do none of).
#[test]
fn an_image_from_spore_image_build_runs_with_ctr_run_imported_or_pulled() {
    let registry = Registry::start();
    let ctrd = Containerd::start();
    let reference = format!("{}/spore/built:1", registry.addr);
    let tar = ctrd.dir().join("built.tar");
    let spore = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(harness::spore_cli()).args(args).output().expect("spore runs");
        out.assert_success(&format!("spore {args:?}"));
    };
    let module = common::guests_dir().join("probe-c.wasm");
    spore(&[
        "image".as_ref(),
        "build".as_ref(),
        "--tag".as_ref(),
        reference.as_ref(),
        "--module".as_ref(),
        module.as_os_str(),
        "-o".as_ref(),
        tar.as_os_str(),
    ]);
    ctrd.import(&tar);
    let out = ctrd.run(&reference, "imported", SPORE, &["/app.wasm", "echo", "imported"]);
    assert_eq!(out.stdout_text(), "imported\n", "{}\n{}", out.stderr_text(), ctrd.log());

    spore(&["image".as_ref(), "push".as_ref(), tar.as_os_str()]);
    ctrd.ctr_ok(["images", "rm", &reference]);
    ctrd.ctr_ok(["images", "pull", "--plain-http", &reference]);
    let out = ctrd.run(&reference, "pulled", SPORE, &["/app.wasm", "exit", "7"]);
    assert_eq!(out.status.code(), Some(7), "{}\n{}", out.stderr_text(), ctrd.log());
    ctrd.assert_clean();
}

#[test]
fn the_guest_reads_its_stdin_from_ctr() {
    let ctrd = Containerd::start();
    let image = probe_image(&ctrd);
    let out = ctrd.run_with_input(b"line one\nline two\n", &image, "stdin", SPORE, &["/probe.wasm", "stdin"]);
    assert_eq!(out.stdout_text(), "line one\nline two\n", "{}", out.stderr_text());
    assert_eq!(out.status.code(), Some(0));
    ctrd.assert_clean();
}
