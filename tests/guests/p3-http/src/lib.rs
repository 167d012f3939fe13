//! Spore test guest: a `wasi:http/service@0.3.0` component (exports
//! `wasi:http/handler@0.3.0`), built with the `wasip3` crate 0.7.1 (wit-bindgen 0.57.1).
//!
//! Routes (query parameters are split on `&` and at the first `=`, and percent-decoded;
//! every response has `content-type: text/plain` and a `content-length`):
//!
//! | route | response |
//! |---|---|
//! | `GET /` | 200 `hello from spore (p3)\n` |
//! | `GET /env?name=X` | 200 `X=value\n`, or 404 `X is unset\n` (`wasi:cli/environment@0.3.0`) |
//! | `GET /read?path=P` | 200 with the bytes; 403 `error: read P: <reason>\n` when no preopen holds P or the host says `access`/`not-permitted`; 500 with the same line for any other error (`wasi:filesystem@0.3.0`) |
//! | `GET /write?path=P&text=T` | 200 `wrote P\n`, or 403/500 as for `/read` |
//! | `GET /fetch?url=U` | outgoing `GET U` via `wasi:http/client@0.3.0`: 200 `upstream STATUS: BODY` (also for upstream 4xx/5xx), or 502 `fetch failed: <ErrorCode Debug>\n` |
//! | `GET /count` | 200 `N\n`, a per-instance counter bumped by every request to this instance (a fresh instance per request always answers 1) |
//! | `GET /sleep?ms=N` | waits with `monotonic-clock.wait-for` (async, no busy loop), then 200 `slept N\n` |
//! | `GET /alloc?mb=N` | 200 `allocated N MiB\n`, or 507 `alloc failed after K MiB\n` |
//! | `GET /loop` | spins forever (the host must stop it) |
//! | `GET /trap` | traps (`unreachable`); no response |
//! | `POST /echo` | 200 with the request body (read through `request.consume-body`); other methods 405 |
//! | anything else | 404 `not found\n` |
//!
//! A missing or malformed parameter gives 400 `bad request: need ...\n`.

use core::future::{poll_fn, Future, IntoFuture};
use core::pin::pin;
use core::sync::atomic::{AtomicU64, Ordering};
use core::task::Poll;

use wasip3::cli::environment;
use wasip3::clocks::monotonic_clock;
use wasip3::filesystem::{preopens, types as fs};
use wasip3::http::client;
use wasip3::http::types::{ErrorCode, Fields, Method, Request, Response, Scheme};
use wasip3::{wit_bindgen, wit_future, wit_stream};

wasip3::http::service::export!(Service);

struct Service;

/// Lives as long as the component instance; `wasmtime serve` reuses WASIp3 instances
/// (up to 128 requests, 16 concurrently, by default), so this shows instance reuse.
static COUNT: AtomicU64 = AtomicU64::new(0);

const MIB: usize = 1 << 20;

impl wasip3::exports::http::handler::Guest for Service {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let count = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
        let pq = request.get_path_with_query().unwrap_or_else(|| "/".to_string());
        let (path, query) = pq.split_once('?').unwrap_or((pq.as_str(), ""));
        let bad = |what: &str| (400, format!("bad request: need {what}\n").into_bytes());
        let (status, body): (u16, Vec<u8>) = match path {
            "/" => (200, b"hello from spore (p3)\n".to_vec()),
            "/count" => (200, format!("{count}\n").into_bytes()),
            "/env" => match param(query, "name") {
                None => bad("name"),
                Some(name) => match environment::get_environment().into_iter().find(|(k, _)| *k == name) {
                    Some((k, v)) => (200, format!("{k}={v}\n").into_bytes()),
                    None => (404, format!("{name} is unset\n").into_bytes()),
                },
            },
            "/read" => match param(query, "path") {
                None => bad("path"),
                Some(p) => match read_file(&p).await {
                    Ok(bytes) => (200, bytes),
                    Err(e) => (e.status(), format!("error: read {p}: {}\n", e.reason).into_bytes()),
                },
            },
            "/write" => match (param(query, "path"), param(query, "text")) {
                (Some(p), Some(t)) => match write_file(&p, t.into_bytes()).await {
                    Ok(()) => (200, format!("wrote {p}\n").into_bytes()),
                    Err(e) => (e.status(), format!("error: write {p}: {}\n", e.reason).into_bytes()),
                },
                _ => bad("path and text"),
            },
            "/fetch" => match param(query, "url") {
                None => bad("url"),
                Some(url) => match fetch(&url).await {
                    Ok((st, mut b)) => {
                        let mut out = format!("upstream {st}: ").into_bytes();
                        out.append(&mut b);
                        (200, out)
                    }
                    Err(e) => (502, format!("fetch failed: {e}\n").into_bytes()),
                },
            },
            "/sleep" => match param(query, "ms").and_then(|v| v.parse::<u64>().ok()) {
                None => bad("ms=N"),
                Some(ms) => {
                    monotonic_clock::wait_for(ms.saturating_mul(1_000_000)).await;
                    (200, format!("slept {ms}\n").into_bytes())
                }
            },
            "/alloc" => match param(query, "mb").and_then(|v| v.parse::<usize>().ok()) {
                None => bad("mb=N"),
                Some(mb) => alloc(mb),
            },
            "/loop" => {
                let mut n: u64 = 0;
                loop {
                    n = core::hint::black_box(n.wrapping_add(1));
                }
            }
            "/trap" => core::arch::wasm32::unreachable(),
            "/echo" => {
                if matches!(request.get_method(), Method::Post) {
                    match read_body(request).await {
                        Ok(b) => (200, b),
                        Err(e) => (500, format!("error: body: {e}\n").into_bytes()),
                    }
                } else {
                    (405, b"method not allowed\n".to_vec())
                }
            }
            _ => (404, b"not found\n".to_vec()),
        };
        Ok(respond(status, body))
    }
}

/// Builds a response whose body is written by a spawned task after `handle` returns
/// (the host only reads the body stream once it has the response).
fn respond(status: u16, body: Vec<u8>) -> Response {
    let headers = Fields::from_list(&[
        ("content-type".to_string(), b"text/plain".to_vec()),
        ("content-length".to_string(), body.len().to_string().into_bytes()),
    ])
    .expect("valid headers");
    let (mut tx, rx) = wit_stream::new();
    // Dropping the writer resolves the trailers future to its default, `ok(none)`.
    let (trailers_tx, trailers_rx) = wit_future::new(|| Ok(None));
    drop(trailers_tx);
    let (response, _sent) = Response::new(headers, Some(rx), trailers_rx);
    let _ = response.set_status_code(status);
    wit_bindgen::spawn(async move {
        // A short write means the client went away; nothing useful to do.
        let _ = tx.write_all(body).await;
    });
    response
}

/// Polls two futures concurrently.
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

/// Returns the percent-decoded value of query parameter `key`.
fn param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (percent_decode(k) == key).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    fn hex(c: u8) -> Option<u8> {
        (c as char).to_digit(16).map(|d| d as u8)
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn alloc(mb: usize) -> (u16, Vec<u8>) {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    for i in 0..mb {
        let mut chunk: Vec<u8> = Vec::new();
        if chunk.try_reserve_exact(MIB).is_err() || chunks.try_reserve(1).is_err() {
            return (507, format!("alloc failed after {i} MiB\n").into_bytes());
        }
        chunk.resize(MIB, 0xA5); // touch every page
        chunks.push(chunk);
    }
    core::hint::black_box(&chunks);
    (200, format!("allocated {mb} MiB\n").into_bytes())
}

// ---------------------------------------------------------------------------
// Files through wasi:filesystem@0.3.0.

struct FsError {
    denied: bool,
    reason: String,
}

impl FsError {
    fn status(&self) -> u16 {
        if self.denied {
            403
        } else {
            500
        }
    }
}

impl From<fs::ErrorCode> for FsError {
    fn from(e: fs::ErrorCode) -> Self {
        FsError {
            denied: matches!(e, fs::ErrorCode::Access | fs::ErrorCode::NotPermitted),
            reason: kebab(&format!("{e:?}")),
        }
    }
}

/// `ErrorCode::NoEntry` -> `no-entry`; a payload is kept after `: `.
fn kebab(debug: &str) -> String {
    let (name, rest) = match debug.find('(') {
        Some(i) => (&debug[..i], Some(&debug[i + 1..debug.len().saturating_sub(1)])),
        None => (debug, None),
    };
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

/// Finds the preopen that contains `path` (longest matching guest name) and returns it
/// with the path relative to it ("." for the preopen itself).
fn resolve(path: &str) -> Result<(fs::Descriptor, String), FsError> {
    let mut best: Option<(usize, fs::Descriptor, String)> = None;
    for (desc, name) in preopens::get_directories() {
        let pre = name.trim_end_matches('/');
        let rel: Option<String> = if pre.is_empty() && name.starts_with('/') {
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
    best.map(|(_, d, rel)| (d, rel)).ok_or_else(|| FsError {
        denied: true,
        reason: "not-permitted: no preopened directory contains this path".into(),
    })
}

async fn read_file(path: &str) -> Result<Vec<u8>, FsError> {
    let (dir, rel) = resolve(path)?;
    let file = dir
        .open_at(fs::PathFlags::SYMLINK_FOLLOW, rel, fs::OpenFlags::empty(), fs::DescriptorFlags::READ)
        .await?;
    let (rx, result) = file.read_via_stream(0);
    let (bytes, result) = join(rx.collect(), result).await;
    result?;
    Ok(bytes)
}

async fn write_file(path: &str, bytes: Vec<u8>) -> Result<(), FsError> {
    let (dir, rel) = resolve(path)?;
    let file = dir
        .open_at(
            fs::PathFlags::SYMLINK_FOLLOW,
            rel,
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
    Ok(result?)
}

// ---------------------------------------------------------------------------
// Bodies and the outgoing client.

/// Reads a whole incoming request body (stream, then the trailers future).
async fn read_body(request: Request) -> Result<Vec<u8>, String> {
    let (_res_tx, res_rx) = wit_future::new(|| Ok(()));
    let (rx, trailers) = Request::consume_body(request, res_rx);
    let (bytes, trailers) = join(rx.collect(), trailers).await;
    trailers.map_err(|e| format!("{e:?}"))?;
    Ok(bytes)
}

/// Outgoing GET via wasi:http/client@0.3.0. Returns (status, body) or the
/// `ErrorCode` Debug text (or a description of why the URL is unusable).
async fn fetch(url: &str) -> Result<(u16, Vec<u8>), String> {
    let (scheme, authority, path) = split_url(url)?;
    let scheme = if scheme == "https" { Scheme::Https } else { Scheme::Http };
    // No body and no trailers: drop the writer now so the host sees `ok(none)` at once.
    let (trailers_tx, trailers_rx) = wit_future::new(|| Ok(None));
    drop(trailers_tx);
    let (req, _sent) = Request::new(Fields::new(), None, trailers_rx, None);
    req.set_method(&Method::Get).map_err(|_| "invalid method".to_string())?;
    req.set_scheme(Some(&scheme)).map_err(|_| "invalid scheme".to_string())?;
    req.set_authority(Some(&authority))
        .map_err(|_| format!("invalid authority {authority:?}"))?;
    req.set_path_with_query(Some(&path))
        .map_err(|_| format!("invalid path {path:?}"))?;
    let resp = client::send(req).await.map_err(|e| format!("{e:?}"))?;
    let status = resp.get_status_code();
    let (_res_tx, res_rx) = wit_future::new(|| Ok(()));
    let (rx, trailers) = Response::consume_body(resp, res_rx);
    let (bytes, trailers) = join(rx.collect(), trailers).await;
    trailers.map_err(|e| format!("{e:?}"))?;
    Ok((status, bytes))
}

/// Splits `http(s)://authority/path?query` into (scheme, authority, path+query).
fn split_url(url: &str) -> Result<(String, String, String), String> {
    let (scheme, rest) = if let Some(r) = url.strip_prefix("http://") {
        ("http", r)
    } else if let Some(r) = url.strip_prefix("https://") {
        ("https", r)
    } else {
        return Err(format!("unsupported url {url:?}"));
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_string()),
    };
    if authority.is_empty() {
        return Err(format!("no host in url {url:?}"));
    }
    Ok((scheme.to_string(), authority.to_string(), path))
}
