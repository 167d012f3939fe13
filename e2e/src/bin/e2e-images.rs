//! Writes the e2e cluster's images as OCI layout tars into a directory, built locally (no
//! image is downloaded): the pause image, busybox (Debian's busybox-static), CoreDNS (built
//! from the Go module proxy) and the Wasm guests as plain images, whose entrypoint is the
//! module (Debian's containerd 1.6 cannot unpack Wasm artifact layers).
//!
//! Also Spore's own images: the operator, the activator, and the node installer (the shim, the installer and
//! crictl), each with the shared libraries its binaries link (found by `ldd`), stripped of
//! debug sections; and node-installer:2, whose shim is another binary, for the upgrade test.
//!
//! And http-native, the static C server of tests/native/http-server.c, the runc side of the
//! cluster benchmarks.
//!
//!   e2e-images OUT_DIR GUESTS_DIR PAUSE_BINARY COREDNS_BINARY RELEASE_DIR CRICTL_BINARY HTTP_SERVER_BINARY
//!
//! It writes OUT_DIR/NAME.tar and OUT_DIR/images.txt.

#[path = "../../../shim/tests/harness/image.rs"]
#[allow(dead_code)]
mod image;

use std::path::{Path, PathBuf};

use image::ImageBuilder;

/// The registry both nodes pull from (Debian's docker-registry on loopback).
const REGISTRY: &str = "localhost:5010";

fn main() {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [out, guests, pause, coredns, release, crictl, http_server] = args.as_slice() else {
        eprintln!(
            "usage: e2e-images OUT_DIR GUESTS_DIR PAUSE_BINARY COREDNS_BINARY RELEASE_DIR CRICTL_BINARY HTTP_SERVER_BINARY"
        );
        std::process::exit(2);
    };
    std::fs::create_dir_all(out).unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", out.display())));
    let operator = release.join("spore-operator");
    let activator = release.join("spore-activator");
    let images = [
        (
            "pause",
            ImageBuilder::new(&format!("{REGISTRY}/spore/pause:1"))
                .file("/pause", read(pause), 0o755)
                .entrypoint(["/pause"]),
        ),
        (
            "busybox",
            ImageBuilder::new(&format!("{REGISTRY}/spore/busybox:1"))
                .file("/bin/busybox", read(Path::new("/bin/busybox")), 0o755)
                .entrypoint(["/bin/busybox"]),
        ),
        (
            "http-native",
            ImageBuilder::new(&format!("{REGISTRY}/spore/http-native:1"))
                .file("/server", read(http_server), 0o755)
                .entrypoint(["/server"]),
        ),
        (
            "coredns",
            ImageBuilder::new(&format!("{REGISTRY}/spore/coredns:1"))
                .file("/coredns", read(coredns), 0o755)
                .entrypoint(["/coredns"]),
        ),
        (
            "operator",
            native_image("operator:1", &[("/spore-operator", stripped(&operator), &operator)])
                .entrypoint(["/spore-operator"]),
        ),
        (
            "activator",
            native_image("activator:1", &[("/spore-activator", stripped(&activator), &activator)])
                .entrypoint(["/spore-activator"]),
        ),
        ("node-installer", installer_image("1", stripped(&release.join("containerd-shim-spore-v1")), release, crictl)),
        // The shim upgrade test's "new" shim: another binary (the same code with bytes the
        // loader ignores appended), so the installer replaces the file and restarts containerd.
        (
            "node-installer-2",
            installer_image("2", upgraded_shim(&release.join("containerd-shim-spore-v1")), release, crictl),
        ),
        ("hello-http", wasm_image("hello-http", &guests.join("http.wasm"))),
        // The hello component with a custom section appended: code no node has cached, for
        // the node precompile test.
        (
            "hello-precompile",
            ImageBuilder::new(&format!("{REGISTRY}/spore/hello-precompile:1"))
                .file(
                    "/app.wasm",
                    [read(&guests.join("http.wasm")), custom_section(b"spore-e2e", b"precompile")].concat(),
                    0o644,
                )
                .entrypoint(["/app.wasm"])
                .wasm(),
        ),
        ("probe", wasm_image("probe", &guests.join("probe-c.wasm"))),
        // The Rust probe as a component: wasi:sockets (name lookups, TCP).
        ("probe-p2", wasm_image("probe-p2", &guests.join("probe-rs-p2.wasm"))),
        // A command and the library component it imports, for composition.
        ("reach-app", wasm_image("reach-app", &guests.join("reach-app.wasm"))),
        ("reach-lib", wasm_image("reach-lib", &guests.join("reach-lib.wasm"))),
        // examples/polyglot: a Rust middleware, a Python handler and a JavaScript library.
        ("polyglot-auth", wasm_image("polyglot-auth", &guests.join("polyglot-auth.wasm"))),
        ("polyglot-handler", wasm_image("polyglot-handler", &guests.join("polyglot-handler.wasm"))),
        ("polyglot-markdown", wasm_image("polyglot-markdown", &guests.join("polyglot-markdown.wasm"))),
        // A module that starts like Wasm and then is not: the engine must reject it.
        (
            "corrupt",
            ImageBuilder::new(&format!("{REGISTRY}/spore/corrupt:1"))
                .file("/app.wasm", b"\0asm\x01\0\0\0\x7fthis is not a section".to_vec(), 0o644)
                .entrypoint(["/app.wasm"])
                .wasm(),
        ),
    ];
    // images.txt: one `NAME FILE` line per image, for cluster.sh to import and push.
    let mut index = String::new();
    for (file, image) in images.into_iter().chain(bench_images(guests)) {
        let path = image.write(out.join(format!("{file}.tar")));
        index.push_str(&format!("{} {}\n", image.name(), path.display()));
    }
    let list = out.join("images.txt");
    std::fs::write(&list, index).unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", list.display())));
}

/// The Python component (built by `make bench-guests`, so absent from `make test`) twice,
/// under two digests no node has compiled: the first-pod benchmark's with and without
/// precompile.
fn bench_images(guests: &Path) -> Vec<(&'static str, ImageBuilder)> {
    let python = guests.join("python-http.wasm");
    if !python.is_file() {
        return Vec::new();
    }
    let module = read(&python);
    ["python-precompiled", "python-fresh"]
        .into_iter()
        .map(|name| {
            let image = ImageBuilder::new(&format!("{REGISTRY}/spore/{name}:1"))
                .file("/app.wasm", [module.clone(), custom_section(b"spore-e2e", name.as_bytes())].concat(), 0o644)
                .entrypoint(["/app.wasm"])
                .wasm();
            (name, image)
        })
        .collect()
}

fn wasm_image(name: &str, module: &Path) -> ImageBuilder {
    ImageBuilder::new(&format!("{REGISTRY}/spore/{name}:1"))
        .file("/app.wasm", read(module), 0o644)
        .entrypoint(["/app.wasm"])
        .wasm()
}

/// The node installer image `tag`: the installer, `shim` (the built shim's bytes, or
/// another version of them) and crictl.
fn installer_image(tag: &str, shim: Vec<u8>, release: &Path, crictl: &Path) -> ImageBuilder {
    let installer = release.join("spore-node-installer");
    let shim_binary = release.join("containerd-shim-spore-v1");
    native_image(
        &format!("node-installer:{tag}"),
        &[
            ("/spore/spore-node-installer", stripped(&installer), &installer),
            ("/spore/containerd-shim-spore-v1", shim, &shim_binary),
            ("/spore/crictl", read(crictl), crictl),
        ],
    )
    .entrypoint(["/spore/spore-node-installer"])
}

/// A custom section (id 0), which every engine ignores; sizes under 128 fit one LEB128 byte.
fn custom_section(name: &[u8], payload: &[u8]) -> Vec<u8> {
    let size = 1 + name.len() + payload.len();
    assert!(size < 128 && name.len() < 128);
    [&[0u8, size as u8, name.len() as u8][..], name, payload].concat()
}

fn upgraded_shim(shim: &Path) -> Vec<u8> {
    [stripped(shim), spore_e2e::UPGRADED_SHIM_MARKER.to_vec()].concat()
}

/// `binary` without its debug sections (symbols stay, for backtraces): a fifth of the size,
/// which every image import, push, pull and install copies.
fn stripped(binary: &Path) -> Vec<u8> {
    let out = std::env::temp_dir().join(format!(
        "e2e-images-{}-{}",
        std::process::id(),
        binary.display().to_string().replace('/', "_")
    ));
    let status = std::process::Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&out)
        .arg(binary)
        .status()
        .unwrap_or_else(|e| fail(&format!("cannot run strip (binutils) on {}: {e}", binary.display())));
    if !status.success() {
        fail(&format!("strip --strip-debug {} failed: {status}", binary.display()));
    }
    let bytes = read(&out);
    let _ = std::fs::remove_file(&out);
    bytes
}

/// An image `name:tag` of native binaries (path in the image, contents, the built file) and
/// the shared libraries the built files link.
fn native_image(name_tag: &str, binaries: &[(&str, Vec<u8>, &Path)]) -> ImageBuilder {
    let mut image = ImageBuilder::new(&format!("{REGISTRY}/spore/{name_tag}"));
    let mut libraries = std::collections::BTreeSet::new();
    for (dest, bytes, built) in binaries {
        image = image.file(dest, bytes.clone(), 0o755);
        libraries.extend(linked_libraries(built));
    }
    for library in libraries {
        image = image.file(&library, read(Path::new(&library)), 0o755);
    }
    image
}

/// The absolute paths `ldd` lists for `binary` (none for a static binary).
fn linked_libraries(binary: &Path) -> Vec<String> {
    let output = std::process::Command::new("ldd")
        .arg(binary)
        .output()
        .unwrap_or_else(|e| fail(&format!("cannot run ldd on {}: {e}", binary.display())));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().find(|word| word.starts_with('/')).map(str::to_string))
        .collect()
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", path.display())))
}

fn fail(message: &str) -> ! {
    eprintln!("e2e-images: {message}");
    std::process::exit(1);
}
