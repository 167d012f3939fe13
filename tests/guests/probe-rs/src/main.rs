//! Spore test probe (Rust). Built for wasm32-wasip1 (core module) and
//! wasm32-wasip2 (`wasi:cli/command` component). See tests/guests/README.md.

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::process::exit;
use std::time::Duration;

const MIB: usize = 1 << 20;

fn die(msg: impl std::fmt::Display) -> ! {
    let _ = io::stdout().flush();
    eprintln!("error: {msg}");
    exit(1);
}

fn arg(args: &[String], i: usize, usage: &str) -> String {
    match args.get(i) {
        Some(a) => a.clone(),
        None => die(format!("usage: {usage}")),
    }
}

fn parse<T: std::str::FromStr>(s: &str, what: &str) -> T {
    s.parse()
        .unwrap_or_else(|_| die(format!("bad {what} argument: {s}")))
}

fn out(s: &str) {
    let mut o = io::stdout().lock();
    if let Err(e) = o.write_all(s.as_bytes()).and_then(|_| o.flush()) {
        die(format!("write stdout: {e}"));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 2 {
        die("usage: probe COMMAND [ARGS...]");
    }
    let code = match args[1].as_str() {
        "echo" => {
            out(&format!("{}\n", args[2..].join(" ")));
            0
        }
        "args" => {
            let mut s = String::new();
            for a in &args {
                s.push_str(a);
                s.push('\n');
            }
            out(&s);
            0
        }
        "env" => {
            let name = arg(&args, 2, "env NAME");
            match std::env::var_os(&name) {
                Some(v) => {
                    out(&format!("{name}={}\n", v.to_string_lossy()));
                    0
                }
                None => {
                    out(&format!("{name} is unset\n"));
                    3
                }
            }
        }
        "envall" => {
            let mut s = String::new();
            for (k, v) in std::env::vars_os() {
                s.push_str(&format!(
                    "{}={}\n",
                    k.to_string_lossy(),
                    v.to_string_lossy()
                ));
            }
            out(&s);
            0
        }
        "read" => {
            let path = arg(&args, 2, "read PATH");
            let data = fs::read(&path).unwrap_or_else(|e| die(format!("read {path}: {e}")));
            let mut o = io::stdout().lock();
            if let Err(e) = o.write_all(&data).and_then(|_| o.flush()) {
                die(format!("write stdout: {e}"));
            }
            0
        }
        "write" => {
            let path = arg(&args, 2, "write PATH TEXT");
            let text = arg(&args, 3, "write PATH TEXT");
            fs::write(&path, text.as_bytes()).unwrap_or_else(|e| die(format!("write {path}: {e}")));
            out(&format!("wrote {path}\n"));
            0
        }
        "ls" => {
            let dir = arg(&args, 2, "ls DIR");
            let rd = fs::read_dir(&dir).unwrap_or_else(|e| die(format!("read_dir {dir}: {e}")));
            let mut names = Vec::new();
            for ent in rd {
                let ent = ent.unwrap_or_else(|e| die(format!("read_dir {dir}: {e}")));
                names.push(ent.file_name().to_string_lossy().into_owned());
            }
            names.sort();
            let mut s = String::new();
            for n in names {
                s.push_str(&n);
                s.push('\n');
            }
            out(&s);
            0
        }
        "alloc" => alloc(parse(&arg(&args, 2, "alloc MB"), "MB")),
        "loop" => {
            let mut counter: u64 = 0;
            loop {
                counter = std::hint::black_box(counter.wrapping_add(1));
            }
        }
        "sleep" => {
            let ms: u64 = parse(&arg(&args, 2, "sleep MS"), "MS");
            std::thread::sleep(Duration::from_millis(ms));
            out(&format!("slept {ms}\n"));
            0
        }
        "exit" => {
            let n: i32 = parse(&arg(&args, 2, "exit N"), "N");
            let _ = io::stdout().flush();
            exit(n);
        }
        "trap" => {
            let _ = io::stdout().flush();
            trap();
        }
        "stdin" => {
            let mut inp = io::stdin().lock();
            let mut o = io::stdout().lock();
            let mut buf = [0u8; 8192];
            loop {
                let n = match inp.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => die(format!("read stdin: {e}")),
                };
                if let Err(e) = o.write_all(&buf[..n]).and_then(|_| o.flush()) {
                    die(format!("write stdout: {e}"));
                }
            }
            0
        }
        "connect" => connect(&arg(&args, 2, "connect HOST:PORT")),
        "listen" => {
            let port: u16 = parse(&arg(&args, 2, "listen PORT"), "PORT");
            let l = TcpListener::bind(("0.0.0.0", port))
                .unwrap_or_else(|e| die(format!("listen 0.0.0.0:{port}: {e}")));
            out(&format!("listening {port}\n"));
            drop(l);
            0
        }
        "resolve" => {
            let name = arg(&args, 2, "resolve NAME");
            let addrs = (name.as_str(), 80u16)
                .to_socket_addrs()
                .unwrap_or_else(|e| die(format!("resolve {name}: {e}")));
            let mut s = String::new();
            for a in addrs {
                s.push_str(&a.ip().to_string());
                s.push('\n');
            }
            out(&s);
            0
        }
        "udp" => {
            let target = arg(&args, 2, "udp HOST:PORT");
            let sock = UdpSocket::bind("0.0.0.0:0")
                .unwrap_or_else(|e| die(format!("udp bind 0.0.0.0:0: {e}")));
            sock.send_to(b"ping", target.as_str())
                .unwrap_or_else(|e| die(format!("udp send_to {target}: {e}")));
            out(&format!("sent {target}\n"));
            0
        }
        other => die(format!("unknown command {other}")),
    };
    let _ = io::stdout().flush();
    exit(code);
}

fn alloc(mb: usize) -> i32 {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    for i in 0..mb {
        let mut chunk: Vec<u8> = Vec::new();
        if chunk.try_reserve_exact(MIB).is_err() || chunks.try_reserve(1).is_err() {
            out(&format!("alloc failed after {i} MiB\n"));
            return 2;
        }
        // Touch every byte so the memory is really committed.
        chunk.resize(MIB, 0xA5);
        chunks.push(chunk);
    }
    std::hint::black_box(&chunks);
    out(&format!("allocated {mb} MiB\n"));
    0
}

fn connect(target: &str) -> i32 {
    let mut s =
        TcpStream::connect(target).unwrap_or_else(|e| die(format!("connect {target}: {e}")));
    s.write_all(b"ping\n")
        .and_then(|_| s.flush())
        .unwrap_or_else(|e| die(format!("write {target}: {e}")));
    // Best effort: read one reply line, waiting at most 2 s. Timeouts (or an
    // unsupported timeout option) are ignored.
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut line = String::new();
    let _ = BufReader::new(&s).read_line(&mut line);
    out(&format!("connected {target}\n"));
    0
}

#[cfg(target_arch = "wasm32")]
fn trap() -> ! {
    core::arch::wasm32::unreachable()
}

#[cfg(not(target_arch = "wasm32"))]
fn trap() -> ! {
    std::process::abort()
}
