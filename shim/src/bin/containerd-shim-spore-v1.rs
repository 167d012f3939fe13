//! containerd-shim-spore-v1: the containerd runtime `io.containerd.spore.v1`.

fn main() {
    spore_shim::containerd::main();
}
