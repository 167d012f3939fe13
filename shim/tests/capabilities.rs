//! The sandbox with real guests: every capability rule proven both ways, allowed and denied.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::time::Duration;

use common::guest;
use spore_crds::Protocol;

const C: &str = "probe-c.wasm";
const P2: &str = "probe-rs-p2.wasm";

/// The guest failed with one `error:` line naming one of the expected reasons.
fn assert_denied(out: &common::Outcome, reasons: &[&str]) {
    assert_eq!(out.exit.code, 1, "{out:?}");
    assert!(out.stderr.starts_with("error: ") && reasons.iter().any(|r| out.stderr.contains(r)), "{out:?}");
}

const FS_DENIED: &[&str] = &["Capabilities insufficient", "Operation not permitted", "No such file or directory"];
const NET_DENIED: &[&str] = &["Permission denied"];

fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "hi from the host").unwrap();
    dir
}

#[tokio::test]
async fn passes_args_with_the_app_name_as_argv0() {
    let out = guest(C).args(["args"]).run().await;
    assert_eq!(out.stdout, "probe\nargs\n");
    let out = guest(P2).args(["echo", "a", "b c"]).run().await;
    assert_eq!((out.exit.code, out.stdout.as_str()), (0, "a b c\n"));
}

#[tokio::test]
async fn exposes_only_declared_env() {
    let out = guest(C).args(["env", "GREETING"]).env("GREETING", "hello").run().await;
    assert_eq!((out.exit.code, out.stdout.as_str()), (0, "GREETING=hello\n"));
    // The host's own environment never leaks in.
    assert!(std::env::var_os("PATH").is_some());
    let out = guest(C).args(["env", "PATH"]).env("GREETING", "hello").run().await;
    assert_eq!((out.exit.code, out.stdout.as_str()), (3, "PATH is unset\n"));
    let out = guest(C).args(["envall"]).env("A", "1").run().await;
    assert_eq!(out.stdout, "A=1\n");
}

#[tokio::test]
async fn reads_files_only_inside_declared_mounts() {
    let dir = data_dir();
    let allowed = guest(C).args(["read", "/data/hello.txt"]).mount("data", dir.path(), "/data").run().await;
    assert_eq!((allowed.exit.code, allowed.stdout.as_str()), (0, "hi from the host"));

    for path in ["/etc/passwd", "/data/../etc/passwd", "/data/../../etc/hostname"] {
        let denied = guest(C).args(["read", path]).mount("data", dir.path(), "/data").run().await;
        assert_denied(&denied, FS_DENIED);
    }
    let no_mount = guest(C).args(["read", "/data/hello.txt"]).run().await;
    assert_denied(&no_mount, FS_DENIED);
}

#[tokio::test]
async fn read_only_mounts_refuse_writes() {
    let dir = data_dir();
    let denied = guest(C).args(["write", "/data/new.txt", "x"]).mount("data", dir.path(), "/data").run().await;
    assert_denied(&denied, &["Operation not permitted", "Read-only file system"]);
    assert!(!dir.path().join("new.txt").exists());
    let overwrite = guest(C).args(["write", "/data/hello.txt", "x"]).mount("data", dir.path(), "/data").run().await;
    assert_denied(&overwrite, &["Operation not permitted", "Read-only file system"]);
    assert_eq!(std::fs::read_to_string(dir.path().join("hello.txt")).unwrap(), "hi from the host");
}

#[tokio::test]
async fn writable_mounts_accept_writes() {
    let dir = data_dir();
    let out = guest(C)
        .args(["write", "/scratch/new.txt", "written"])
        .mount_writable("scratch", dir.path(), "/scratch")
        .run()
        .await;
    assert_eq!((out.exit.code, out.stdout.as_str()), (0, "wrote /scratch/new.txt\n"));
    assert_eq!(std::fs::read_to_string(dir.path().join("new.txt")).unwrap(), "written");
}

#[tokio::test]
async fn tcp_connects_only_to_declared_destinations() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let target = addr.to_string();
    let accept = std::thread::spawn(move || {
        server.set_nonblocking(false).unwrap();
        let (mut conn, _) = server.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 5];
        conn.read_exact(&mut buf).unwrap();
        conn.write_all(b"pong\n").unwrap();
        buf
    });
    let allowed = guest(P2).args(["connect", &target]).tcp_to("127.0.0.1/32", Some(addr.port())).run().await;
    assert_eq!(
        (allowed.exit.code, allowed.stdout.as_str()),
        (0, format!("connected {target}\n").as_str()),
        "{allowed:?}"
    );
    assert_eq!(&accept.join().unwrap(), b"ping\n");

    let other_port = guest(P2).args(["connect", &target]).tcp_to("127.0.0.1/32", Some(addr.port() ^ 1)).run().await;
    assert_denied(&other_port, NET_DENIED);
    let undeclared = guest(P2).args(["connect", &target]).run().await;
    assert_denied(&undeclared, NET_DENIED);
}

#[tokio::test]
async fn listens_only_on_declared_ports() {
    let port = free_port();
    let allowed = guest(P2).args(["listen", &port.to_string()]).listen(port, Protocol::Tcp).run().await;
    assert_eq!(
        (allowed.exit.code, allowed.stdout.as_str()),
        (0, format!("listening {port}\n").as_str()),
        "{allowed:?}"
    );
    let denied = guest(P2).args(["listen", &free_port().to_string()]).listen(port, Protocol::Tcp).run().await;
    assert_denied(&denied, NET_DENIED);
    let nothing = guest(P2).args(["listen", &port.to_string()]).run().await;
    assert_denied(&nothing, NET_DENIED);
}

#[tokio::test]
async fn udp_sends_only_to_declared_destinations() {
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    receiver.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let target = receiver.local_addr().unwrap();
    let allowed = guest(P2).args(["udp", &target.to_string()]).udp_to("127.0.0.1/32", Some(target.port())).run().await;
    assert_eq!(allowed.exit.code, 0, "{allowed:?}");
    let mut buf = [0u8; 16];
    let (n, _) = receiver.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping");

    let denied = guest(P2).args(["udp", &target.to_string()]).udp_to("127.0.0.2/32", None).run().await;
    assert_denied(&denied, NET_DENIED);
    // No UDP rule at all: the socket opens, the send is denied (and logged, as TCP's are).
    let undeclared = guest(P2).args(["udp", &target.to_string()]).run().await;
    assert_denied(&undeclared, NET_DENIED);
    receiver.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    assert!(receiver.recv_from(&mut buf).is_err(), "a denied datagram arrived");
}

#[tokio::test]
async fn resolves_names_only_when_dns_is_allowed() {
    let allowed = guest(P2).args(["resolve", "localhost"]).dns().run().await;
    assert_eq!(allowed.exit.code, 0, "{allowed:?}");
    assert!(allowed.stdout.lines().any(|l| l == "127.0.0.1" || l == "::1"), "{}", allowed.stdout);
    // Denied (and logged) before any query, like a socket operation.
    let denied = guest(P2).args(["resolve", "localhost"]).run().await;
    assert_denied(&denied, NET_DENIED);
}

#[tokio::test]
async fn names_resolve_with_the_sandboxs_own_resolver_files() {
    // A pod's hosts file: the name exists only there, not in the machine's /etc/hosts.
    let dir = tempfile::tempdir().unwrap();
    let (resolv_conf, hosts) = (dir.path().join("resolv.conf"), dir.path().join("hosts"));
    std::fs::write(&resolv_conf, "nameserver 127.0.0.1\nsearch pod.svc.cluster.local\noptions ndots:5 timeout:1\n")
        .unwrap();
    std::fs::write(&hosts, "198.18.7.7 only-in-the-pod\n").unwrap();
    let files = spore_shim::ResolverFiles { resolv_conf: resolv_conf.clone(), hosts: Some(hosts) };
    let out = guest(P2).args(["resolve", "only-in-the-pod"]).dns().resolver(files).run().await;
    assert_eq!((out.exit.code, out.stdout.as_str()), (0, "198.18.7.7\n"), "{out:?}");

    // An unreadable resolv.conf fails lookups (logged), not the app's start.
    let missing = spore_shim::ResolverFiles { resolv_conf: dir.path().join("absent"), hosts: None };
    let out = guest(P2).args(["resolve", "localhost"]).dns().resolver(missing).run().await;
    assert_denied(&out, &["failed to lookup address"]);
}

#[tokio::test]
async fn p1_modules_get_no_sockets() {
    let out = guest("probe-rs-p1.wasm").args(["connect", "127.0.0.1:9"]).tcp_to("0.0.0.0/0", None).run().await;
    assert_denied(&out, &["not supported"]);
}

#[tokio::test]
async fn stdin_reaches_the_guest() {
    let out = guest(C).args(["stdin"]).stdin(b"piped input").run().await;
    assert_eq!(out.stdout, "piped input");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
