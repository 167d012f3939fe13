//! `spore:reach/probe-async` as a WASI 0.3 library: the app's tries, from a dependency.

wit_bindgen::generate!({ world: "library-async", path: "../wit" });

#[path = "../../tries3.rs"]
mod tries3;

struct Probe;

impl exports::spore::reach::probe_async::Guest for Probe {
    async fn try_all() -> Vec<String> {
        tries3::tries().await
    }
}

export!(Probe);
