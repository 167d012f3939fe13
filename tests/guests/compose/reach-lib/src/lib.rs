//! `spore:reach/probe` as a library: the same tries as the app's, from inside a dependency.

wit_bindgen::generate!({ world: "library", path: "../wit" });

#[path = "../../tries.rs"]
mod tries;

struct Probe;

impl exports::spore::reach::probe::Guest for Probe {
    fn try_all() -> Vec<String> {
        tries::tries()
    }
}

export!(Probe);
