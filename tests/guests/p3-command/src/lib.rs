//! Spore test guest: a `wasi:cli/command@0.3.0` probe (WASI 0.3, async `run`).
//!
//! `argv[1]` is the command (see the table in `run_probe`). Normal output goes to stdout;
//! an error goes to stderr as one line, `error: <op> <arg>: <reason>`, and the exit code
//! is 1. `<reason>` is the WASI 0.3 error-code name in kebab-case (e.g. `no-entry`,
//! `access-denied`, `connection-refused`), sometimes followed by detail.
//!
//! Every capability is used through WASI 0.3 interfaces directly (no Rust std I/O):
//! arguments/environment via `wasi:cli/environment@0.3.0`, output via
//! `wasi:cli/stdout@0.3.0` / `stderr@0.3.0` streams, files via
//! `wasi:filesystem/preopens@0.3.0` + `types@0.3.0`, TCP via `wasi:sockets/types@0.3.0`,
//! names via `wasi:sockets/ip-name-lookup@0.3.0`, sleep via
//! `wasi:clocks/monotonic-clock@0.3.0`, and exit codes via `wasi:cli/exit@0.3.0`
//! (`exit-with-code`, which carries the real code, unlike WASI 0.2's `exit`).

use core::future::{poll_fn, Future, IntoFuture};
use core::pin::pin;
use core::task::Poll;
use std::net::{IpAddr, SocketAddr};

use wasip3::cli::{environment, exit, stderr, stdin, stdout};
use wasip3::clocks::monotonic_clock;
use wasip3::filesystem::{preopens, types as fs};
use wasip3::sockets::{ip_name_lookup, types as net};
use wasip3::wit_stream;

wasip3::cli::command::export!(Probe);

struct Probe;

impl wasip3::exports::cli::run::Guest for Probe {
    async fn run() -> Result<(), ()> {
        let args = environment::get_arguments();
        let code = run_probe(&args).await;
        match code {
            0 => Ok(()),
            // `exit-with-code` is stable in wasi:cli@0.3.0, so 2, 3, N really reach the host.
            n => {
                exit::exit_with_code(n);
                Err(())
            }
        }
    }
}

/// An error line: `error: <op> <arg>: <reason>`.
struct Fail(String);

fn fail(op: &str, arg: &str, reason: impl Into<String>) -> Fail {
    Fail(format!("error: {op} {arg}: {}", reason.into()))
}

fn usage(text: &str) -> Fail {
    Fail(format!("error: usage: {text}"))
}

async fn run_probe(args: &[String]) -> u8 {
    let cmd = args.get(1).map(String::as_str).unwrap_or("");
    let rest = if args.len() > 2 { &args[2..] } else { &[][..] };
    let result: Result<u8, Fail> = match cmd {
        "echo" => {
            let mut line = rest.join(" ");
            line.push('\n');
            out(line.into_bytes()).await;
            Ok(0)
        }
        "args" => {
            let mut text = String::new();
            for a in args {
                text.push_str(a);
                text.push('\n');
            }
            out(text.into_bytes()).await;
            Ok(0)
        }
        "env" => match rest.first() {
            None => Err(usage("env NAME")),
            Some(name) => {
                let found = environment::get_environment()
                    .into_iter()
                    .find(|(k, _)| k == name);
                match found {
                    Some((k, v)) => {
                        out(format!("{k}={v}\n").into_bytes()).await;
                        Ok(0)
                    }
                    None => {
                        out(format!("{name} is unset\n").into_bytes()).await;
                        Ok(3)
                    }
                }
            }
        },
        "envall" => {
            let mut text = String::new();
            for (k, v) in environment::get_environment() {
                text.push_str(&format!("{k}={v}\n"));
            }
            out(text.into_bytes()).await;
            Ok(0)
        }
        "read" => match rest.first() {
            None => Err(usage("read PATH")),
            Some(path) => match read_file(path).await {
                Ok(bytes) => {
                    out(bytes).await;
                    Ok(0)
                }
                Err(reason) => Err(fail("read", path, reason)),
            },
        },
        "write" => match (rest.first(), rest.get(1)) {
            (Some(path), Some(text)) => match write_file(path, text.as_bytes().to_vec()).await {
                Ok(()) => {
                    out(format!("wrote {path}\n").into_bytes()).await;
                    Ok(0)
                }
                Err(reason) => Err(fail("write", path, reason)),
            },
            _ => Err(usage("write PATH TEXT")),
        },
        "ls" => match rest.first() {
            None => Err(usage("ls DIR")),
            Some(dir) => match list_dir(dir).await {
                Ok(names) => {
                    let mut text = String::new();
                    for n in names {
                        text.push_str(&n);
                        text.push('\n');
                    }
                    out(text.into_bytes()).await;
                    Ok(0)
                }
                Err(reason) => Err(fail("ls", dir, reason)),
            },
        },
        "connect" => match rest.first() {
            None => Err(usage("connect HOST:PORT")),
            Some(target) => match connect(target).await {
                Ok(()) => {
                    out(format!("connected {target}\n").into_bytes()).await;
                    Ok(0)
                }
                Err(reason) => Err(fail("connect", target, reason)),
            },
        },
        "resolve" => match rest.first() {
            None => Err(usage("resolve NAME")),
            Some(name) => match ip_name_lookup::resolve_addresses(name.clone()).await {
                Ok(ips) => {
                    let mut text = String::new();
                    for ip in ips {
                        text.push_str(&from_wasi_ip(ip).to_string());
                        text.push('\n');
                    }
                    out(text.into_bytes()).await;
                    Ok(0)
                }
                Err(e) => Err(fail("resolve", name, kebab(&format!("{e:?}")))),
            },
        },
        "exit" => match rest.first().map(|s| s.parse::<u8>()) {
            None => Err(usage("exit N")),
            Some(Ok(n)) => Ok(n),
            Some(Err(e)) => Err(Fail(format!("error: bad exit argument: {e}"))),
        },
        "sleep" => match rest.first().map(|s| s.parse::<u64>()) {
            None => Err(usage("sleep MS")),
            Some(Ok(ms)) => {
                monotonic_clock::wait_for(ms.saturating_mul(1_000_000)).await;
                out(format!("slept {ms}\n").into_bytes()).await;
                Ok(0)
            }
            Some(Err(e)) => Err(Fail(format!("error: bad sleep argument: {e}"))),
        },
        "loop" => {
            let mut n: u64 = 0;
            loop {
                n = core::hint::black_box(n.wrapping_add(1));
            }
        }
        "alloc" => match rest.first().map(|s| s.parse::<usize>()) {
            None => Err(usage("alloc MB")),
            Some(Ok(mb)) => {
                let mut chunks: Vec<Vec<u8>> = Vec::new();
                let mut failed = None;
                for i in 0..mb {
                    let mut chunk: Vec<u8> = Vec::new();
                    if chunk.try_reserve_exact(1 << 20).is_err() || chunks.try_reserve(1).is_err() {
                        failed = Some(i);
                        break;
                    }
                    chunk.resize(1 << 20, (i as u8) | 1);
                    chunks.push(core::hint::black_box(chunk));
                }
                match failed {
                    None => {
                        out(format!("allocated {mb} MiB\n").into_bytes()).await;
                        Ok(0)
                    }
                    Some(k) => {
                        drop(chunks);
                        out(format!("alloc failed after {k} MiB\n").into_bytes()).await;
                        Ok(2)
                    }
                }
            }
            Some(Err(e)) => Err(Fail(format!("error: bad alloc argument: {e}"))),
        },
        "trap" => core::arch::wasm32::unreachable(),
        "stdin" => {
            let (mut rx, result) = stdin::read_via_stream();
            loop {
                let (_status, buf) = rx.read(Vec::with_capacity(64 * 1024)).await;
                if buf.is_empty() {
                    break;
                }
                out(buf).await;
            }
            drop(rx);
            let _ = result.await;
            Ok(0)
        }
        "" => Err(usage("probe COMMAND [ARG...]")),
        other => Err(Fail(format!("error: unknown command {other}"))),
    };
    match result {
        Ok(code) => code,
        Err(Fail(mut line)) => {
            line.push('\n');
            err(line.into_bytes()).await;
            1
        }
    }
}

// ---------------------------------------------------------------------------
// Output through wasi:cli/stdout@0.3.0 and stderr@0.3.0.

async fn out(bytes: Vec<u8>) {
    let (mut tx, rx) = wit_stream::new();
    let done = stdout::write_via_stream(rx);
    // Nothing useful can be done if stdout/stderr fails.
    let _ = join(
        async move {
            tx.write_all(bytes).await;
        },
        done,
    )
    .await;
}

async fn err(bytes: Vec<u8>) {
    let (mut tx, rx) = wit_stream::new();
    let done = stderr::write_via_stream(rx);
    // Nothing useful can be done if stdout/stderr fails.
    let _ = join(
        async move {
            tx.write_all(bytes).await;
        },
        done,
    )
    .await;
}

/// Polls two futures concurrently (a stream's writer and the host's completion future
/// have to make progress together).
async fn join<A: IntoFuture, B: IntoFuture>(a: A, b: B) -> (A::Output, B::Output) {
    let mut a = pin!(a.into_future());
    let mut b = pin!(b.into_future());
    let mut ra = None;
    let mut rb = None;
    poll_fn(move |cx| {
        if ra.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(cx) {
                rb = Some(v);
            }
        }
        if ra.is_some() && rb.is_some() {
            Poll::Ready((ra.take().unwrap(), rb.take().unwrap()))
        } else {
            Poll::Pending
        }
    })
    .await
}

/// `ErrorCode::AccessDenied` -> `access-denied`; anything with payload is kept as Debug text after
/// its kebab-cased variant name, e.g. `other: Some("...")`.
fn kebab(debug: &str) -> String {
    let (name, rest) = match debug.find('(') {
        Some(i) => (&debug[..i], Some(&debug[i + 1..debug.len().saturating_sub(1)])),
        None => (debug, None),
    };
    // wit-bindgen's Debug prints `ErrorCode::NoEntry`; keep the variant name only.
    let name = name.rsplit("::").next().unwrap_or(name);
    let mut s = String::new();
    for (i, ch) in name.chars().enumerate() {
        if ch.is_ascii_uppercase() {
            if i > 0 {
                s.push('-');
            }
            s.push(ch.to_ascii_lowercase());
        } else {
            s.push(ch);
        }
    }
    if let Some(rest) = rest {
        s.push_str(": ");
        s.push_str(rest);
    }
    s
}

fn fs_err(e: fs::ErrorCode) -> String {
    kebab(&format!("{e:?}"))
}

// ---------------------------------------------------------------------------
// Files through wasi:filesystem@0.3.0.

/// Finds the preopen that contains `path` (longest matching guest name) and returns it
/// with the path relative to it ("." for the preopen itself).
fn resolve(path: &str) -> Result<(fs::Descriptor, String), String> {
    let mut best: Option<(usize, fs::Descriptor, String)> = None;
    for (desc, name) in preopens::get_directories() {
        let pre = name.trim_end_matches('/');
        let rel: Option<String> = if pre.is_empty() && name.starts_with('/') {
            // The preopen is "/".
            path.strip_prefix('/').map(|r| if r.is_empty() { ".".into() } else { r.into() })
        } else if pre == "." || pre.is_empty() {
            (!path.starts_with('/')).then(|| path.strip_prefix("./").unwrap_or(path).to_string())
        } else if path == pre {
            Some(".".into())
        } else {
            path.strip_prefix(pre)
                .and_then(|r| r.strip_prefix('/'))
                .map(|r| if r.is_empty() { ".".into() } else { r.into() })
        };
        if let Some(rel) = rel {
            let score = pre.len() + 1;
            if best.as_ref().map_or(true, |(s, _, _)| score > *s) {
                best = Some((score, desc, rel));
            }
        }
    }
    match best {
        Some((_, d, rel)) => Ok((d, rel)),
        None => Err("not-permitted: no preopened directory contains this path".into()),
    }
}

async fn open(path: &str, oflags: fs::OpenFlags, flags: fs::DescriptorFlags) -> Result<fs::Descriptor, String> {
    let (dir, rel) = resolve(path)?;
    if rel == "." && oflags.contains(fs::OpenFlags::DIRECTORY) {
        return Ok(dir);
    }
    dir.open_at(fs::PathFlags::SYMLINK_FOLLOW, rel, oflags, flags)
        .await
        .map_err(fs_err)
}

async fn read_file(path: &str) -> Result<Vec<u8>, String> {
    let file = open(path, fs::OpenFlags::empty(), fs::DescriptorFlags::READ).await?;
    let (rx, result) = file.read_via_stream(0);
    let (bytes, result) = join(rx.collect(), result).await;
    result.map_err(fs_err)?;
    Ok(bytes)
}

async fn write_file(path: &str, bytes: Vec<u8>) -> Result<(), String> {
    let file = open(
        path,
        fs::OpenFlags::CREATE | fs::OpenFlags::TRUNCATE,
        fs::DescriptorFlags::WRITE,
    )
    .await?;
    let (mut tx, rx) = wit_stream::new();
    let done = file.write_via_stream(rx, 0);
    let (_, result) = join(
        async move {
            tx.write_all(bytes).await;
        },
        done,
    )
    .await;
    result.map_err(fs_err)
}

async fn list_dir(path: &str) -> Result<Vec<String>, String> {
    let dir = open(path, fs::OpenFlags::DIRECTORY, fs::DescriptorFlags::READ).await?;
    let (rx, result) = dir.read_directory();
    let (entries, result) = join(rx.collect(), result).await;
    result.map_err(fs_err)?;
    let mut names: Vec<String> = entries
        .into_iter()
        .map(|e| e.name)
        .filter(|n| n != "." && n != "..")
        .collect();
    names.sort();
    Ok(names)
}

// ---------------------------------------------------------------------------
// TCP through wasi:sockets@0.3.0.

fn to_wasi_addr(addr: SocketAddr) -> net::IpSocketAddress {
    match addr {
        SocketAddr::V4(a) => {
            let o = a.ip().octets();
            net::IpSocketAddress::Ipv4(net::Ipv4SocketAddress {
                port: a.port(),
                address: (o[0], o[1], o[2], o[3]),
            })
        }
        SocketAddr::V6(a) => {
            let s = a.ip().segments();
            net::IpSocketAddress::Ipv6(net::Ipv6SocketAddress {
                port: a.port(),
                flow_info: a.flowinfo(),
                address: (s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]),
                scope_id: a.scope_id(),
            })
        }
    }
}

fn from_wasi_ip(ip: net::IpAddress) -> IpAddr {
    match ip {
        net::IpAddress::Ipv4((a, b, c, d)) => IpAddr::from([a, b, c, d]),
        net::IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => IpAddr::from([a, b, c, d, e, f, g, h]),
    }
}

async fn connect(target: &str) -> Result<(), String> {
    let addr: SocketAddr = match target.parse() {
        Ok(a) => a,
        Err(_) => {
            // HOST:PORT with a name: resolve through wasi:sockets/ip-name-lookup@0.3.0.
            let (host, port) = target
                .rsplit_once(':')
                .ok_or_else(|| "invalid-argument: expected HOST:PORT".to_string())?;
            let port: u16 = port.parse().map_err(|e| format!("invalid-argument: bad port: {e}"))?;
            let ips = ip_name_lookup::resolve_addresses(host.to_string())
                .await
                .map_err(|e| kebab(&format!("{e:?}")))?;
            let ip = ips
                .into_iter()
                .next()
                .ok_or_else(|| "name-unresolvable".to_string())?;
            SocketAddr::new(from_wasi_ip(ip), port)
        }
    };
    let family = if addr.is_ipv4() {
        net::IpAddressFamily::Ipv4
    } else {
        net::IpAddressFamily::Ipv6
    };
    let sock = net::TcpSocket::create(family).map_err(|e| kebab(&format!("{e:?}")))?;
    sock.connect(to_wasi_addr(addr))
        .await
        .map_err(|e| kebab(&format!("{e:?}")))?;
    Ok(())
}
