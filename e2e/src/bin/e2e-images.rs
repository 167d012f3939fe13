//! Writes the e2e cluster's images as OCI layout tars into a directory, built locally (no
//! image is downloaded): the pause image, busybox (Debian's busybox-static), CoreDNS (built
//! from the Go module proxy) and the Wasm guests as plain images, whose entrypoint is the
//! module (Debian's containerd 1.6 cannot unpack Wasm artifact layers).
//!
//!   e2e-images OUT_DIR GUESTS_DIR PAUSE_BINARY COREDNS_BINARY
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
    let [out, guests, pause, coredns] = args.as_slice() else {
        eprintln!("usage: e2e-images OUT_DIR GUESTS_DIR PAUSE_BINARY COREDNS_BINARY");
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
        ("hello-http", wasm_image("hello-http", &guests.join("http.wasm"))),
        ("probe", wasm_image("probe", &guests.join("probe-c.wasm"))),
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

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", path.display())))
}

fn fail(message: &str) -> ! {
    eprintln!("e2e-images: {message}");
    std::process::exit(1);
}
