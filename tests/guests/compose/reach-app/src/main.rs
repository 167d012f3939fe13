//! A command that prints what it can reach (`app ...`), then what its plugged library can
//! (`lib ...`).

wit_bindgen::generate!({ world: "app", path: "../wit" });

#[path = "../../tries.rs"]
mod tries;

fn main() {
    for line in tries::tries() {
        println!("app {line}");
    }
    for line in spore::reach::probe::try_all() {
        println!("lib {line}");
    }
}
