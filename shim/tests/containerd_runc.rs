//! The containerd harness, proven with runc: real containerd, real images, no Spore shim.
//! Needs root and Debian's containerd and runc (`make deps`).

mod common;
mod harness;

use harness::{Containerd, ImageBuilder, OutputExt, RUNC, static_binary};

#[test]
fn runs_a_native_image_with_runc() {
    let ctrd = Containerd::start();
    let image = ImageBuilder::new("localhost/spore/hello-native:1")
        .file("/hello", common::guest_bytes("hello-c-native"), 0o755)
        .entrypoint(["/hello"]);
    ctrd.import_image(&image);

    let out = ctrd.run(image.name(), "runc-hello", RUNC, &[]);

    assert!(out.status.success(), "{out:?}\n{}", out.stderr_text());
    assert_eq!(out.stdout_text(), "hello from spore (C)\n");
    ctrd.assert_clean();
}

#[test]
fn propagates_exit_codes() {
    let ctrd = Containerd::start();
    let program = static_binary("exit", "#include <stdlib.h>\nint main(int c, char **v) { return atoi(v[1]); }\n");
    let image = ImageBuilder::new("localhost/spore/exit:1").file("/bin/exit", program, 0o755).entrypoint(["/bin/exit"]);
    ctrd.import_image(&image);

    for code in [0, 3, 42] {
        let out = ctrd.run(image.name(), &format!("runc-exit-{code}"), RUNC, &["/bin/exit", &code.to_string()]);
        assert_eq!(out.status.code(), Some(code), "{}", out.stderr_text());
    }
    ctrd.assert_clean();
}

#[test]
fn kills_a_long_running_task() {
    let ctrd = Containerd::start();
    let program = static_binary("sleep", "#include <unistd.h>\nint main(void) { for (;;) pause(); }\n");
    let image = ImageBuilder::new("localhost/spore/sleep:1").file("/sleep", program, 0o755).entrypoint(["/sleep"]);
    ctrd.import_image(&image);
    let id = "runc-sleeper";

    ctrd.start_detached(image.name(), id, RUNC, &[]);
    assert_eq!(ctrd.stop_and_remove(id, "SIGKILL"), 137);
    ctrd.assert_clean();
}

/// ctr 1.6 imports and unpacks a `wasip1/wasm` image without `--platform` (see the harness's
/// module docs); runc then fails to exec the module, which proves the rootfs got that far.
#[test]
fn unpacks_a_wasm_image_for_any_runtime() {
    let ctrd = Containerd::start();
    let image = ImageBuilder::new("localhost/spore/hello-wasm:1")
        .wasm()
        .file("/hello.wasm", common::guest_bytes("hello-c.wasm"), 0o755)
        .entrypoint(["/hello.wasm"]);
    ctrd.import_image(&image);

    let out = ctrd.run(image.name(), "runc-wasm", RUNC, &[]);

    assert!(out.stderr_text().contains("exec /hello.wasm: exec format error"), "{}", out.stderr_text());
    ctrd.assert_clean();
}
