//! A WASI 0.3 command that prints what it can reach (`app ...`), then what its plugged
//! library can (`lib ...`).

wit_bindgen::generate!({ world: "app-async", path: "../wit" });

#[path = "../../tries3.rs"]
mod tries3;

use wasip3::cli::stdout;
use wasip3::wit_stream;

wasip3::cli::command::export!(App);

struct App;

impl wasip3::exports::cli::run::Guest for App {
    async fn run() -> Result<(), ()> {
        let mut text = String::new();
        for line in tries3::tries().await {
            text.push_str(&format!("app {line}\n"));
        }
        for line in spore::reach::probe_async::try_all().await {
            text.push_str(&format!("lib {line}\n"));
        }
        let (mut tx, rx) = wit_stream::new();
        let done = stdout::write_via_stream(rx);
        let _ = tries3::join(async move { tx.write_all(text.into_bytes()).await }, done).await;
        Ok(())
    }
}
