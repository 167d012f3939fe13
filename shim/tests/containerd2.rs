//! Wasm OCI artifact images (config `application/vnd.wasm.config.v0+json`, an
//! `application/wasm` layer, as `spore image build` writes them) on containerd 2.x, which
//! unpacks them (1.6.20 cannot): the shim reads the module from containerd's content store.
//! containerd's own `ctr run` refuses such images ("unknown image config media type"), so
//! they are driven through CRI, as kubelet does. Needs root, `make deps` and `make tools`
//! (containerd 2.x and crictl built from the Go module proxy).

mod common;
mod harness;

use harness::cri::{AnnounceListener, Cri, get, http_container, wait_for};
use harness::registry::Registry;
use harness::{OutputExt, Version, build_artifact};

#[test]
fn an_imported_artifact_serves_http_in_a_pod() {
    let cri = Cri::start_on(Version::V2);
    let tar = build_artifact(cri.ctrd.dir(), "http.wasm", "localhost/spore/http-artifact:1");
    cri.ctrd.import(&tar);
    let pod = cri.run_pod("artifact");
    let activator = AnnounceListener::start();
    // No command: `spore image build` records an entrypoint CRI takes.
    let mut config = http_container("http", "localhost/spore/http-artifact:1", 8080);
    config["annotations"]["spore.dev/activator-announce"] = activator.address(&cri).into();
    config["annotations"]["spore.dev/announce-token"] = "app-uid".into();
    cri.start_container(&pod, config);

    let ip = cri.pod_ip(&pod.0);
    assert!(ip.starts_with("198.18.2."), "pod IP {ip} outside {}", cri.subnet());
    // containerd 2.x puts the pod's metadata on the container's spec too.
    let (peer, announcement) = activator.received();
    assert_eq!(peer.to_string(), ip, "the announcement comes from the pod IP");
    assert_eq!(
        announcement,
        serde_json::json!({"namespace": "default", "pod": "artifact", "uid": "uid-artifact", "port": 8080, "token": "app-uid"})
    );
    let url = format!("http://{ip}:8080/");
    let body = wait_for(&url).unwrap_or_else(|| panic!("no answer from {url}\n{}", cri.ctrd.log()));
    assert_eq!(body, "hello from spore\n");
    assert!(get(&format!("http://{ip}:8080/env")).is_some());

    cri.remove_pod(&pod.0);
    cri.ctrd.assert_clean();
}

#[test]
fn an_artifact_pulled_from_a_registry_runs_to_its_exit_code() {
    let registry = Registry::start();
    let cri = Cri::start_on(Version::V2);
    let reference = format!("{}/spore/probe:1", registry.addr);
    let tar = build_artifact(cri.ctrd.dir(), "probe-c.wasm", &reference);
    std::process::Command::new(harness::spore_cli())
        .args(["image", "push"])
        .arg(&tar)
        .output()
        .expect("spore runs")
        .assert_success("spore image push");
    cri.crictl_ok(&["pull", &reference]);

    let pod = cri.run_pod("pulled");
    for (name, args, code) in [("ok", vec!["echo", "pulled"], 0), ("fails", vec!["exit", "3"], 3)] {
        let id = cri.start_container(
            &pod,
            serde_json::json!({
                "metadata": {"name": name}, "image": {"image": reference}, "args": args,
                "log_path": format!("{name}.log"), "linux": {}
            }),
        );
        let (exit_code, reason) = cri.wait_exited(&id);
        assert_eq!(exit_code, code, "{name}: reason {reason}\n{}", cri.ctrd.log());
        if code == 0 {
            let logs = cri.crictl(&["logs", &id]);
            assert_eq!(logs.stdout_text(), "pulled\n", "{}", logs.stderr_text());
        }
    }
    cri.remove_pod(&pod.0);
    cri.ctrd.assert_clean();
}

#[test]
fn a_non_wasm_image_fails_create_with_the_reason() {
    let cri = Cri::start_on(Version::V2);
    let pod = cri.run_pod("plain");
    // The test pause image: no Wasm layer, and its entrypoint /pause is not Wasm.
    let config = cri.write(
        "container-pause.json",
        serde_json::json!({"metadata": {"name": "pause"}, "image": {"image": "localhost/spore/pause:1"}, "log_path": "p.log", "linux": {}}),
    );
    let id = cri.crictl_ok(&["create", &pod.0, &config, &pod.1]);
    let out = cri.crictl(&["start", &id]);
    assert!(!out.status.success(), "a non-Wasm container started");
    let err = out.stderr_text();
    assert!(err.contains("/pause: not a WebAssembly binary"), "no Spore reason in: {err}");
    cri.remove_pod(&pod.0);
    cri.ctrd.assert_clean();
}
