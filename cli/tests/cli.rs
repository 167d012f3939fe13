//! The `spore` binary end to end: every bad input is one readable error line, commands run
//! real guests with their exit codes, HTTP components serve until interrupted, and modules
//! come from files, OCI layout tars and a real registry on loopback.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

#[path = "../../shim/tests/harness/registry.rs"]
mod registry;
use registry::Registry;

const SPORE_FAILED: i32 = 125;

fn guests() -> PathBuf {
    std::env::var_os("SPORE_GUESTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/guests"))
}

fn guest(file: &str) -> String {
    let path = guests().join(file);
    assert!(path.exists(), "guest {} missing; run `make guests`", path.display());
    path.display().to_string()
}

fn spore(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spore"))
        .args(args)
        .env("XDG_CACHE_HOME", cache_home())
        .output()
        .expect("spore runs")
}

fn cache_home() -> PathBuf {
    std::env::temp_dir().join("spore-cli-test-cache")
}

/// A manifest file holding `spec` (YAML, indented under `spec:`).
struct Manifest {
    dir: tempfile::TempDir,
}

impl Manifest {
    fn new(spec: &str) -> Self {
        Self::raw(&format!("apiVersion: spore.dev/v1alpha1\nkind: WasmApp\nmetadata:\n  name: t\nspec:\n{spec}"))
    }

    fn raw(text: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.yaml"), text).unwrap();
        Self { dir }
    }

    fn path(&self) -> String {
        self.dir.path().join("app.yaml").display().to_string()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Fails unless spore failed with exactly one `error:` line containing `expected`.
fn assert_one_error(out: &Output, expected: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(SPORE_FAILED), "{err}");
    assert!(err.starts_with("error: ") && err.contains(expected), "expected {expected:?} in {err:?}");
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "{err}");
}

#[test]
fn validate_accepts_the_examples() {
    for example in ["hello-http", "hello-c", "files-and-env"] {
        let path = format!("{}/../examples/{example}/app.yaml", env!("CARGO_MANIFEST_DIR"));
        let out = spore(&["validate", "-f", &path]);
        assert_eq!(out.status.code(), Some(0), "{example}: {}", stderr(&out));
        assert!(stdout(&out).contains("is valid"));
    }
    // Its components link, from the files the test run builds.
    let path = format!("{}/../examples/polyglot/app.yaml", env!("CARGO_MANIFEST_DIR"));
    let (auth, markdown) = (guest("polyglot-auth.wasm"), guest("polyglot-markdown.wasm"));
    let out = spore(&[
        "validate",
        "-f",
        &path,
        "--module",
        &guest("polyglot-handler.wasm"),
        "--component",
        &format!("auth={auth}"),
        "--component",
        &format!("markdown={markdown}"),
    ]);
    assert_eq!(out.status.code(), Some(0), "polyglot: {}", stderr(&out));
    assert!(stdout(&out).contains("is valid and its components link"), "{}", stdout(&out));
}

#[test]
fn bad_manifests_get_one_clear_error() {
    let image = "  module:\n    image: localhost:5000/x:1\n";
    for (manifest, expected) in [
        (Manifest::raw("apiVersion: spore.dev/v1alpha1\nkind: WasmApp\n  spec: [unclosed"), "line"),
        (Manifest::new(&format!("{image}  replicas: 3\n")), "unknown field `replicas`"),
        (Manifest::new(&format!("{image}  limits:\n    memory: 64MB\n")), "invalid memory quantity \"64MB\""),
        (Manifest::new(&format!("{image}  limits:\n    timeout: soon\n")), "invalid duration"),
        (
            Manifest::new(&format!(
                "{image}  capabilities:\n    filesystem:\n    - volume: data\n      guestPath: /data\n"
            )),
            "spec.capabilities.filesystem[0].volume",
        ),
        (
            Manifest::new(&format!(
                "{image}  capabilities:\n    network:\n      inbound: [{{port: 8080}}, {{port: 8080}}]\n"
            )),
            "spec.capabilities.network.inbound[1]: port 8080/TCP is listed twice",
        ),
        (
            Manifest::raw(&format!(
                "apiVersion: spore.dev/v1alpha1\nkind: WasmApp\nmetadata:\n  name: Bad_Name\nspec:\n{image}"
            )),
            r#"metadata.name: "Bad_Name" is not a DNS-1035 label"#,
        ),
        (Manifest::new(&format!("{image}  limits:\n    memory: -1Mi\n")), "memory limit -1Mi is negative"),
        (Manifest::new(&format!("{image}  limits:\n    cpu: 0.5\n")), "expected a quantity"),
        (
            Manifest::new(&format!("{image}  env: [{{name: 1 BAD, value: x}}]\n")),
            r#"env name "1 BAD" is not a C identifier"#,
        ),
        (Manifest::raw("apiVersion: apps/v1\nkind: Deployment\n"), "apps/v1"),
        (Manifest::raw("apiVersion: spore.dev/v1alpha1\nkind: Pod\n"), "Pod"),
    ] {
        for command in ["validate", "up"] {
            let out = spore(&[command, "-f", &manifest.path()]);
            assert_one_error(&out, expected);
        }
    }
    assert_one_error(&spore(&["validate", "-f", "/nonexistent/app.yaml"]), "cannot read /nonexistent/app.yaml");
}

fn command_app(args: &str) -> Manifest {
    Manifest::new(&format!("  module:\n    image: localhost:5000/x:1\n  args: {args}\n"))
}

#[test]
fn bad_modules_get_one_clear_error() {
    let app = command_app("[]");
    assert_one_error(&spore(&["up", "-f", &app.path(), "--module", "/nonexistent.wasm"]), "cannot read the module");
    let text = app.dir.path().join("notes.txt");
    std::fs::write(&text, "just some text").unwrap();
    assert_one_error(
        &spore(&["up", "-f", &app.path(), "--module", &text.display().to_string()]),
        "not a WebAssembly binary: text starting with \"just some text\"",
    );
    assert_one_error(&spore(&["up", "-f", &app.path(), "--volume", "nope"]), "expected NAME=DIR");
    assert_one_error(&spore(&["up", "-f", &app.path(), "--volume", "other=/tmp"]), "no volume named \"other\"");
}

#[test]
fn up_runs_commands_with_the_guests_exit_code() {
    let out = spore(&["up", "-f", &command_app("[echo, hi]").path(), "--module", &guest("probe-c.wasm")]);
    assert_eq!((out.status.code(), stdout(&out).as_str()), (Some(0), "hi\n"));
    let out = spore(&["up", "-f", &command_app("[exit, \"7\"]").path(), "--module", &guest("probe-c.wasm")]);
    assert_eq!(out.status.code(), Some(7));
    let out = spore(&["up", "-f", &command_app("[trap]").path(), "--module", &guest("probe-rs-p1.wasm")]);
    assert_eq!(out.status.code(), Some(134));
    let err = stderr(&out);
    assert!(err.contains("guest trapped") && err.contains("\n    at "), "{err}");
}

#[test]
fn up_maps_volumes_and_env() {
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("greeting"), "hello from a volume").unwrap();
    let app = Manifest::new(
        "  module:\n    image: localhost:5000/x:1\n  args: [read, /config/greeting]\n  volumes:\n  - name: config\n    configMap:\n      name: cfg\n  capabilities:\n    filesystem:\n    - volume: config\n      guestPath: /config\n",
    );
    assert_one_error(
        &spore(&["up", "-f", &app.path(), "--module", &guest("probe-c.wasm")]),
        "pass --volume config=DIR",
    );
    let volume = format!("config={}", host.path().display());
    let out = spore(&["up", "-f", &app.path(), "--module", &guest("probe-c.wasm"), "--volume", &volume]);
    assert_eq!((out.status.code(), stdout(&out).as_str()), (Some(0), "hello from a volume"), "{}", stderr(&out));

    let scratch = Manifest::new(
        "  module:\n    image: localhost:5000/x:1\n  args: [write, /tmp/x, y]\n  volumes:\n  - name: scratch\n    emptyDir: {}\n  capabilities:\n    filesystem:\n    - volume: scratch\n      guestPath: /tmp\n      readOnly: false\n",
    );
    let out = spore(&["up", "-f", &scratch.path(), "--module", &guest("probe-c.wasm")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let env = Manifest::new(
        "  module:\n    image: localhost:5000/x:1\n  args: [env, TOKEN]\n  env:\n  - name: TOKEN\n    valueFrom:\n      secretKeyRef:\n        name: creds\n        key: token\n",
    );
    assert_one_error(&spore(&["up", "-f", &env.path(), "--module", &guest("probe-c.wasm")]), "pass --env TOKEN=VALUE");
    let out = spore(&["up", "-f", &env.path(), "--module", &guest("probe-c.wasm"), "--env", "TOKEN=s3cret"]);
    assert_eq!(stdout(&out), "TOKEN=s3cret\n");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn get(addr: SocketAddr, path: &str) -> Option<String> {
    send(addr, "GET", path, "", "")
}

/// One HTTP/1.1 request; `headers` are whole lines, each ending in `\r\n`.
fn send(addr: SocketAddr, method: &str, path: &str, headers: &str, body: &str) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let length = body.len();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: {length}\r\nConnection: close\r\n\r\n{body}"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

fn wait_for(addr: SocketAddr, child: &mut Child) -> String {
    wait_for_within(addr, child, Duration::from_secs(30))
}

fn wait_for_within(addr: SocketAddr, child: &mut Child, patience: Duration) -> String {
    let deadline = Instant::now() + patience;
    loop {
        if let Some(response) = get(addr, "/") {
            return response;
        }
        assert!(child.try_wait().unwrap().is_none(), "spore up exited early");
        assert!(Instant::now() < deadline, "spore up did not serve within {patience:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn http_app(port: u16) -> Manifest {
    Manifest::new(&format!(
        "  module:\n    image: localhost:5000/x:1\n  capabilities:\n    network:\n      inbound:\n      - name: http\n        port: {port}\n"
    ))
}

#[test]
fn up_serves_http_and_its_metrics_until_interrupted() {
    let (port, metrics_port) = (free_port(), free_port());
    let app = http_app(port);
    let metrics = format!("127.0.0.1:{metrics_port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_spore"))
        .args(["up", "-f", &app.path(), "--module", &guest("http.wasm"), "--metrics-address", &metrics])
        .env("XDG_CACHE_HOME", cache_home())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let response = wait_for(addr, &mut child);
    assert!(response.starts_with("HTTP/1.1 200") && response.ends_with("hello from spore\n"), "{response}");
    let scraped = get(metrics.parse().unwrap(), "/metrics").unwrap_or_default();
    assert!(scraped.contains("spore_http_requests_total{code=\"200\"} 1\n"), "{scraped}");
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains(&format!("on http://127.0.0.1:{port}/")) && err.contains("stopped"), "{err}");
    assert!(err.contains(&format!("metrics on http://{metrics}/metrics")), "{err}");
}

#[test]
fn up_refuses_metrics_on_the_apps_own_port() {
    let port = free_port();
    let out = spore(&[
        "up",
        "-f",
        &http_app(port).path(),
        "--module",
        &guest("http.wasm"),
        "--metrics-address",
        &format!("127.0.0.1:{port}"),
    ]);
    assert_one_error(&out, &format!("metrics port {port} is also the guest's HTTP port"));
}

const FORMATS: [&str; 2] = ["plain", "artifact"];

/// `spore image build --format FORMAT` of a guest into `dir`; returns the tar's path.
fn build_image(dir: &Path, module: &str, tag: &str, format: &str) -> String {
    let tar = dir.join(format!("image-{format}.tar")).display().to_string();
    let out = spore(&["image", "build", "--format", format, "--module", &guest(module), "--tag", tag, "-o", &tar]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    tar
}

#[test]
fn image_build_says_which_format_to_pick() {
    let help = stdout(&spore(&["image", "build", "--help"]));
    for part in ["--format", "plain", "artifact", "ctr run", "Wasm OCI artifact"] {
        assert!(help.contains(part), "{part:?} missing from\n{help}");
    }
    let out = spore(&["image", "build", "--module", &guest("probe-c.wasm"), "--tag", "t", "-o", "/dev/null"]);
    assert!(stdout(&out).contains("Plain image"), "plain is the default: {}", stdout(&out));
}

#[test]
fn up_runs_a_module_from_an_oci_layout_tar() {
    let app = command_app("[echo, from-a-tar]");
    for format in FORMATS {
        let tar = build_image(app.dir.path(), "probe-c.wasm", "localhost:5000/spore/probe:1", format);
        let out = spore(&["up", "-f", &app.path(), "--module", &tar]);
        assert_eq!((out.status.code(), stdout(&out).as_str()), (Some(0), "from-a-tar\n"), "{format}: {}", stderr(&out));
    }
}

/// The manifest the registry serves for `repository:tag`, as JSON.
fn registry_manifest(addr: SocketAddr, repository: &str, tag: &str) -> serde_json::Value {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        stream,
        "GET /v2/{repository}/manifests/{tag} HTTP/1.1\r\nHost: {addr}\r\n\
         Accept: application/vnd.oci.image.manifest.v1+json\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{response}");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[test]
fn up_pulls_the_module_from_a_registry() {
    let registry = Registry::start();
    for (format, config_type, layer_type) in [
        ("plain", "application/vnd.oci.image.config.v1+json", "application/vnd.oci.image.layer.v1.tar+gzip"),
        ("artifact", "application/vnd.wasm.config.v0+json", "application/wasm"),
    ] {
        let reference = format!("{}/spore/probe-{format}:1", registry.addr);
        let app = Manifest::new(&format!("  module:\n    image: {reference}\n  args: [echo, pulled]\n"));
        let tar = build_image(app.dir.path(), "probe-c.wasm", &reference, format);
        let out = spore(&["image", "push", &tar]);
        assert_eq!(out.status.code(), Some(0), "{format}: {}", stderr(&out));

        let manifest = registry_manifest(registry.addr, &format!("spore/probe-{format}"), "1");
        assert_eq!(manifest["config"]["mediaType"], config_type, "{manifest}");
        assert_eq!(manifest["layers"][0]["mediaType"], layer_type, "{manifest}");

        let out = spore(&["up", "-f", &app.path()]);
        assert_eq!((out.status.code(), stdout(&out).as_str()), (Some(0), "pulled\n"), "{format}: {}", stderr(&out));
    }

    let missing = Manifest::new(&format!("  module:\n    image: {}/spore/absent:1\n", registry.addr));
    assert_one_error(&spore(&["up", "-f", &missing.path()]), "pull failed");
}

#[test]
fn up_stops_a_spinning_command_on_sigterm() {
    let app = command_app("[loop]");
    let child = Command::new(env!("CARGO_BIN_EXE_spore"))
        .args(["up", "-f", &app.path(), "--module", &guest("probe-c.wasm")])
        .env("XDG_CACHE_HOME", cache_home())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let sent = Instant::now();
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", stderr(&out));
    assert!(sent.elapsed() < Duration::from_secs(3), "took {:?} to stop", sent.elapsed());
    assert!(stderr(&out).contains("stopped by signal"), "{}", stderr(&out));
}

/// An app of `reach-app` with `reach-lib` plugged in as `lib`, the library granted the
/// `data` volume; `extra` is more YAML under `spec:`.
fn composed_app(data: &Path, extra: &str) -> Manifest {
    let spec = r#"  module:
    image: localhost:5000/reach-app:1
    plugs: [lib]
  components:
  - name: lib
    image: localhost:5000/reach-lib:1
    env: [{name: STYLE, value: dark}]
    capabilities:
      filesystem: [{volume: data, guestPath: /data}]
  env: [{name: TOKEN, value: t}]
  volumes: [{name: data, hostPath: {path: DATA}}]
"#;
    Manifest::new(&format!("{}{extra}", spec.replace("DATA", &data.display().to_string())))
}

#[test]
fn up_links_components_and_grants_each_its_own_capabilities() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("secret.txt"), "s3cret").unwrap();
    let app = composed_app(data.path(), "");
    let (main, lib) = (guest("reach-app.wasm"), guest("reach-lib.wasm"));
    let out = spore(&["validate", "-f", &app.path(), "--module", &main, "--component", &format!("lib={lib}")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("is valid and its components link"), "{}", stdout(&out));

    let out = spore(&["up", "-f", &app.path(), "--module", &main, "--component", &format!("lib={lib}")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed = stdout(&out);
    for line in ["app env 1", "lib env 1", "lib file /data/secret.txt ok s3cret"] {
        assert!(printed.lines().any(|l| l == line), "{line:?} in\n{printed}");
    }
    assert!(printed.contains("app file /data/secret.txt denied"), "the app has no mount:\n{printed}");
}

#[test]
fn a_broken_wiring_is_one_clear_error() {
    let data = tempfile::tempdir().unwrap();
    let app = composed_app(data.path(), "");
    let main = guest("reach-app.wasm");
    let component = |file: &str| format!("lib={}", guest(file));
    // The command as its own plug: it exports nothing the app imports.
    for command in ["validate", "up"] {
        let out = spore(&[command, "-f", &app.path(), "--module", &main, "--component", &component("reach-app.wasm")]);
        assert_one_error(
            &out,
            "the app's components do not link: \"lib\" is in the plugs of \"app\" but exports nothing it imports",
        );
    }
    let out = spore(&["up", "-f", &app.path(), "--module", &main, "--component", &component("probe-c.wasm")]);
    assert_one_error(&out, "component \"lib\" is not a Wasm component");
    let out = spore(&["up", "-f", &app.path(), "--module", &main, "--component", "auth=x.wasm"]);
    assert_one_error(&out, "--component auth: no component named \"auth\" in spec.components");
    let out = spore(&["up", "-f", &app.path(), "--module", &main, "--component", "lib"]);
    assert_one_error(&out, "expected NAME=FILE");
    let unused = composed_app(data.path(), "  middleware: [lib]\n");
    let out = spore(&["validate", "-f", &unused.path()]);
    assert_one_error(&out, "spec.middleware[0]: component \"lib\" is both middleware and a plug");
}

/// examples/polyglot: a Rust middleware in front of a Python handler that calls a JavaScript
/// library, each built from source by its own toolchain (tests/guests/build.sh).
#[test]
fn up_serves_the_polyglot_example_with_each_component_in_its_place() {
    let keys = tempfile::tempdir().unwrap();
    std::fs::write(keys.path().join("token"), "s3cret\n").unwrap();
    let port = free_port();
    let example =
        std::fs::read_to_string(format!("{}/../examples/polyglot/app.yaml", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let body = example.split_once("spec:\n").unwrap().1.replace("port: 8080", &format!("port: {port}"));
    let app = Manifest::new(&body);
    let mut child = Command::new(env!("CARGO_BIN_EXE_spore"))
        .args(["up", "-f", &app.path(), "--module", &guest("polyglot-handler.wasm")])
        .args(["--component", &format!("auth={}", guest("polyglot-auth.wasm"))])
        .args(["--component", &format!("markdown={}", guest("polyglot-markdown.wasm"))])
        .args(["--volume", &format!("token={}", keys.path().display())])
        .env("XDG_CACHE_HOME", cache_home())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // A 34 MB app compiled the first time: more patience than a small guest needs.
    let anonymous = wait_for_within(addr, &mut child, Duration::from_secs(180));
    let bearer = |token: &str| format!("Authorization: Bearer {token}\r\n");
    let asked = |method, path, token: &str, body| send(addr, method, path, &bearer(token), body).unwrap_or_default();
    let cases = [
        (anonymous, "HTTP/1.1 401", "unauthorized: missing bearer token\n"),
        (asked("GET", "/", "wrong", ""), "HTTP/1.1 401", "unauthorized: invalid token\n"),
        (asked("GET", "/", "s3cret", ""), "HTTP/1.1 200", "hello from Python\n"),
        (asked("POST", "/render", "s3cret", "# Hi *there*"), "HTTP/1.1 200", "<h1>Hi <em>there</em></h1>\n"),
        // The handler cannot read the key the middleware reads.
        (
            asked("GET", "/read?path=/keys/token", "s3cret", ""),
            "HTTP/1.1 403",
            "error: read /keys/token: No such file or directory\n",
        ),
    ];
    // Nor does it see the credential: the middleware forwards the request without it.
    let headers = asked("GET", "/headers", "s3cret", "");
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    let body = headers.split_once("\r\n\r\n").map(|(_, body)| body).unwrap_or_default();
    assert!(headers.starts_with("HTTP/1.1 200") && body.contains("content-length\n"), "{headers}");
    assert!(!body.contains("authorization"), "the handler saw the credential:\n{headers}");
    for (response, status, end) in cases {
        assert!(
            response.starts_with(status) && response.ends_with(end),
            "{status} ... {end:?} in\n{response}\n{}",
            stderr(&out)
        );
    }
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}
