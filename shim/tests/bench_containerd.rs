//! Benchmarks on a real containerd, Spore next to runc in the same run (ignored by
//! `cargo test`; `make bench` runs them and adds their Markdown to docs/benchmarks.md).

mod common;
mod harness;

use std::io::Write;
use std::time::{Duration, Instant};

use harness::cri::{Cri, answers_200};
use harness::{Containerd, ImageBuilder, OutputExt, RUNC, SPORE, static_binary};

const RUNS: usize = 100;
const STREAMS: usize = 4;
const IDLE_PODS: usize = 4;

fn report(markdown: &str) {
    print!("{markdown}");
    if let Some(path) = std::env::var_os("SPORE_BENCH_OUT") {
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("bench output");
        file.write_all(markdown.as_bytes()).expect("write bench output");
    }
}

/// The hello program as Wasm (spore) and as a static binary (runc).
fn hello_images(ctrd: &Containerd) -> (String, String) {
    let wasm = ImageBuilder::new("localhost/bench/hello-wasm:1")
        .file("/hello.wasm", common::guest_bytes("hello-c.wasm"), 0o644)
        .entrypoint(["/hello.wasm"]);
    let native = ImageBuilder::new("localhost/bench/hello-native:1")
        .file("/hello", common::guest_bytes("hello-c-native"), 0o755)
        .entrypoint(["/hello"]);
    ctrd.import_image(&wasm);
    ctrd.import_image(&native);
    (wasm.name().to_string(), native.name().to_string())
}

/// `runs` sequential `ctr run --rm` in each of `streams` threads; total wall time.
fn run_many(ctrd: &Containerd, image: &str, runtime: &str, streams: usize, runs: usize) -> Duration {
    let start = Instant::now();
    std::thread::scope(|scope| {
        for stream in 0..streams {
            scope.spawn(move || {
                for i in 0..runs / streams {
                    let out = ctrd.run(
                        image,
                        &format!("b-{runtime_tag}-{stream}-{i}", runtime_tag = tag(runtime)),
                        runtime,
                        &[],
                    );
                    assert!(out.status.success(), "{}", out.stderr_text());
                }
            });
        }
    });
    start.elapsed()
}

fn tag(runtime: &str) -> &'static str {
    if runtime == SPORE { "spore" } else { "runc" }
}

#[test]
#[ignore = "benchmark: run by `make bench`"]
fn short_tasks_spore_vs_runc() {
    let ctrd = Containerd::start();
    let (wasm, native) = hello_images(&ctrd);
    // Warm both paths (code cache, page cache) before measuring.
    run_many(&ctrd, &wasm, SPORE, 1, 3);
    run_many(&ctrd, &native, RUNC, 1, 3);
    let mut rows = String::new();
    for streams in [1, STREAMS] {
        let spore = run_many(&ctrd, &wasm, SPORE, streams, RUNS);
        let runc = run_many(&ctrd, &native, RUNC, streams, RUNS);
        rows.push_str(&format!(
            "| {streams} | {:.1} ms | {:.1} ms | **{:.2}x** |\n",
            spore.as_secs_f64() * 1000.0 / RUNS as f64,
            runc.as_secs_f64() * 1000.0 / RUNS as f64,
            spore.as_secs_f64() / runc.as_secs_f64()
        ));
    }
    report(&format!(
        "\n## containerd: short tasks, Spore vs runc\n\n\
         {RUNS} `ctr run --rm` of the C hello on one private containerd (Debian's 1.6): as Wasm under\n\
         `io.containerd.spore.v1` and as the same program built natively (static) under runc. Time per\n\
         run (wall time of all runs / {RUNS}); with {STREAMS} streams, {STREAMS} threads share the {RUNS} runs.\n\
         Goal: spore <= 0.6x runc. Reproduce: `cargo test --release -p spore-shim --test bench_containerd -- --ignored short_tasks`.\n\n\
         | streams | spore | runc | spore / runc |\n|---:|---:|---:|---:|\n{rows}"
    ));
    ctrd.assert_clean();
}

/// PSS and RSS (kB) of a process, from smaps_rollup.
fn memory_kb(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("Pss:"), field("Rss:"))
}

fn pids(ctrd: &Containerd) -> Vec<u32> {
    ctrd.leftover_processes().iter().filter_map(|p| p.split(':').next()?.trim().parse().ok()).collect()
}

/// Per-pod PSS and RSS (MB) of `IDLE_PODS` idle containers, each started by `start(id, i)`:
/// every process they cost.
fn idle_memory(ctrd: &Containerd, runtime: &str, start: impl Fn(&str, usize)) -> (f64, f64) {
    let before = pids(ctrd);
    let ids: Vec<String> = (0..IDLE_PODS).map(|i| format!("idle-{}-{i}", tag(runtime))).collect();
    for (i, id) in ids.iter().enumerate() {
        start(id, i);
        ctrd.wait_for_status(id, "RUNNING", Duration::from_secs(10));
    }
    std::thread::sleep(Duration::from_secs(2));
    let pods: Vec<u32> = pids(ctrd).into_iter().filter(|p| !before.contains(p)).collect();
    let (pss, rss) = pods.iter().map(|p| memory_kb(*p)).fold((0, 0), |a, m| (a.0 + m.0, a.1 + m.1));
    for id in &ids {
        ctrd.stop_and_remove(id, "SIGKILL");
    }
    let per_pod = |kb: u64| kb as f64 / 1024.0 / IDLE_PODS as f64;
    (per_pod(pss), per_pod(rss))
}

/// The runc side's server (tests/native/http-server.c).
const NATIVE_SERVER: &str = include_str!("../../tests/native/http-server.c");

#[test]
#[ignore = "benchmark: run by `make bench`"]
fn idle_memory_per_pod_spore_vs_runc() {
    let ctrd = Containerd::start();
    let wasm = ImageBuilder::new("localhost/bench/http-wasm:1")
        .file("/http.wasm", common::guest_bytes("http.wasm"), 0o644)
        .entrypoint(["/http.wasm"]);
    let native = ImageBuilder::new("localhost/bench/http-native:1")
        .file("/server", static_binary("server", NATIVE_SERVER), 0o755)
        .entrypoint(["/server"]);
    ctrd.import_image(&wasm);
    ctrd.import_image(&native);
    let caps = r#"spore.dev/capabilities={"network":{"inbound":[{"name":"http","port":8080}]}}"#;
    let spore = idle_memory(&ctrd, SPORE, |id, _| {
        let out = ctrd.run_detached_with_flags(&["--annotation", caps], wasm.name(), id, SPORE, &[]);
        assert!(out.status.success(), "{}", out.stderr_text());
    });
    let runc = idle_memory(&ctrd, RUNC, |id, _| {
        let out = ctrd.run_detached(native.name(), id, RUNC, &[]);
        assert!(out.status.success(), "{}", out.stderr_text());
    });
    report(&format!(
        "\n## containerd: idle memory per pod\n\n\
         {IDLE_PODS} idle HTTP containers each, started with `ctr run -d`: the hello component under Spore,\n\
         a static C server under runc. Every process a pod costs is counted (Spore: its shim; runc: its\n\
         shim and the server), PSS and RSS from /proc/PID/smaps_rollup, divided by {IDLE_PODS}.\n\
         Goal: <= 6 MB PSS per Wasm pod. Reproduce: `cargo test --release -p spore-shim --test bench_containerd -- --ignored idle_memory`.\n\n\
         | runtime | PSS per pod | RSS per pod |\n|---|---:|---:|\n\
         | spore | {:.1} MB | {:.1} MB |\n| runc | {:.1} MB | {:.1} MB |\n",
        spore.0, spore.1, runc.0, runc.1
    ));
    ctrd.assert_clean();
}

const POD_STARTS: usize = 7;

/// Time from `crictl run` (pod sandbox, container create and start in one CRI client, as
/// kubelet holds one connection) to the first HTTP 200 on the pod IP, median of
/// [`POD_STARTS`]; the error of the first pod that did not start.
fn pod_start_ms(cri: &Cri, handler: &str, image: &str, annotations: serde_json::Value) -> Result<f64, String> {
    let mut times: Vec<f64> = (0..POD_STARTS)
        .map(|i| -> Result<f64, String> {
            let name = format!("bench-{handler}-{i}");
            let pod = cri.write(
                &format!("{name}-pod.json"),
                serde_json::json!({
                    "metadata": {"name": name, "namespace": "default", "uid": name, "attempt": 1},
                    "log_directory": cri.ctrd.dir().join("logs").display().to_string(),
                    "linux": {}
                }),
            );
            let container = cri.write(
                &format!("{name}-container.json"),
                serde_json::json!({
                    "metadata": {"name": "server"}, "image": {"image": image},
                    "log_path": format!("{name}.log"), "annotations": annotations, "linux": {}
                }),
            );
            let start = Instant::now();
            let run = cri.crictl(&["run", "--no-pull", "--runtime", handler, &container, &pod]);
            if !run.status.success() {
                let err = run.stderr_text();
                return Err(err.lines().find(|l| l.contains("failed")).unwrap_or(&err).trim().to_string());
            }
            // The pod's address from the CNI plugin's own record: no further CRI round trip.
            let ip = cri.newest_pod_ip().expect("the CNI plugin recorded the pod's IP");
            while !answers_200(&ip, 8080) {
                assert!(start.elapsed() < Duration::from_secs(30), "{handler} pod never answered");
                std::thread::sleep(Duration::from_millis(1));
            }
            let elapsed = start.elapsed().as_secs_f64() * 1000.0;
            let pod_id = cri.crictl_ok(&["pods", "-q", "--name", &name]);
            cri.remove_pod(&pod_id);
            Ok(elapsed)
        })
        .collect::<Result<_, _>>()?;
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

#[test]
#[ignore = "benchmark: run by `make bench`"]
fn pod_start_to_first_response_spore_vs_runc() {
    let cri = Cri::start();
    let native = ImageBuilder::new("localhost/bench/http-native:1")
        .file("/server", static_binary("server", NATIVE_SERVER), 0o755)
        .entrypoint(["/server"]);
    cri.ctrd.import_image(&native);
    let caps =
        serde_json::json!({"spore.dev/capabilities": r#"{"network":{"inbound":[{"name":"http","port":8080}]}}"#});
    let spore = pod_start_ms(&cri, "spore", "localhost/spore/http:1", caps).expect("spore pods start");
    let runc = pod_start_ms(&cri, "runc", native.name(), serde_json::json!({}));
    let (runc_cell, ratio) = match &runc {
        Ok(ms) => (format!("{ms:.0} ms"), format!("**{:.2}x**", spore / ms)),
        Err(err) => (format!("did not start: `{}`", err.replace('`', "'")), "n/a".to_string()),
    };
    report(&format!(
        "\n## CRI: pod create to first HTTP 200\n\n\
         One `crictl run` (pod sandbox on the CNI bridge, container create and start over one CRI\n\
         connection, as kubelet drives it) until the first 200 on the pod IP: the hello component under\n\
         the `spore` handler, a static C server under `runc`. Median of {POD_STARTS}. Both include crictl's\n\
         own process start (~13 ms here), which kubelet does not pay.\n\
         Goal: spore <= 0.5x runc. Reproduce: `cargo test --release -p spore-shim --test bench_containerd -- --ignored pod_start`.\n\n\
         | handler | pod start to first 200 |\n|---|---:|\n| spore | {spore:.0} ms |\n| runc | {runc_cell} |\n\
         | **spore / runc** | {ratio} |\n"
    ));
}
