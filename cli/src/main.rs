//! `spore`: run WasmApp manifests locally, validate them, build and push Wasm images.

use clap::Parser;

fn main() {
    let cli = spore_cli::Cli::parse();
    spore_cli::init_logging();
    std::process::exit(spore_cli::main(cli));
}
