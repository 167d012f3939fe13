//! Writes the e2e cluster's images as OCI layout tars into a directory, built locally (no
//! image is downloaded): the pause image, busybox (Debian's busybox-static), CoreDNS (built
//! from the Go module proxy) and the Wasm guests as plain images, whose entrypoint is the
//! module (Debian's containerd 1.6 cannot unpack Wasm artifact layers).
//!
//! Also Spore's own images: the operator, and the node installer (the shim, the installer and
//! crictl), each with the shared libraries its binaries link (found by `ldd`).
//!
//!   e2e-images OUT_DIR GUESTS_DIR PAUSE_BINARY COREDNS_BINARY RELEASE_DIR CRICTL_BINARY
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
    let [out, guests, pause, coredns, release, crictl] = args.as_slice() else {
        eprintln!("usage: e2e-images OUT_DIR GUESTS_DIR PAUSE_BINARY COREDNS_BINARY RELEASE_DIR CRICTL_BINARY");
        std::process::exit(2);
    };
    std::fs::create_dir_all(out).unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", out.display())));
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
            "coredns",
            ImageBuilder::new(&format!("{REGISTRY}/spore/coredns:1"))
                .file("/coredns", read(coredns), 0o755)
                .entrypoint(["/coredns"]),
        ),
        (
            "operator",
            native_image("operator", &[("/spore-operator", release.join("spore-operator"))])
                .entrypoint(["/spore-operator"]),
        ),
        (
            "node-installer",
            native_image(
                "node-installer",
                &[
                    ("/spore/spore-node-installer", release.join("spore-node-installer")),
                    ("/spore/containerd-shim-spore-v1", release.join("containerd-shim-spore-v1")),
                    ("/spore/crictl", crictl.clone()),
                ],
            )
            .entrypoint(["/spore/spore-node-installer"]),
        ),
        ("hello-http", wasm_image("hello-http", &guests.join("http.wasm"))),
        ("probe", wasm_image("probe", &guests.join("probe-c.wasm"))),
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
    for (file, image) in images {
        let path = image.write(out.join(format!("{file}.tar")));
        index.push_str(&format!("{} {}\n", image.name(), path.display()));
    }
    let list = out.join("images.txt");
    std::fs::write(&list, index).unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", list.display())));
}

fn wasm_image(name: &str, module: &Path) -> ImageBuilder {
    ImageBuilder::new(&format!("{REGISTRY}/spore/{name}:1"))
        .file("/app.wasm", read(module), 0o644)
        .entrypoint(["/app.wasm"])
        .wasm()
}

/// An image of native binaries (`(path in image, file)`) and the shared libraries they link.
fn native_image(name: &str, binaries: &[(&str, PathBuf)]) -> ImageBuilder {
    let mut image = ImageBuilder::new(&format!("{REGISTRY}/spore/{name}:1"));
    let mut libraries = std::collections::BTreeSet::new();
    for (dest, binary) in binaries {
        image = image.file(dest, read(binary), 0o755);
        libraries.extend(linked_libraries(binary));
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
