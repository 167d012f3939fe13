//! Spore test guest: a `wasi:http/proxy` component. Routes are documented in
//! tests/guests/README.md.

use std::io::{Read, Write};

use wasi::exports::http::incoming_handler::Guest;
use wasi::http::outgoing_handler;
use wasi::http::types::{
    ErrorCode, Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingRequest,
    OutgoingResponse, ResponseOutparam, Scheme,
};

const MIB: usize = 1 << 20;

struct Component;

wasi::http::proxy::export!(Component);

impl Guest for Component {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let pq = request.path_with_query().unwrap_or_else(|| "/".to_string());
        let (path, query) = match pq.split_once('?') {
            Some((p, q)) => (p.to_string(), q.to_string()),
            None => (pq.clone(), String::new()),
        };
        let method = request.method();
        let (status, body): (u16, Vec<u8>) = match path.as_str() {
            "/" => (200, b"hello from spore\n".to_vec()),
            "/sleep" => match param(&query, "ms").and_then(|v| v.parse::<u64>().ok()) {
                Some(ms) => {
                    wasi::clocks::monotonic_clock::subscribe_duration(ms.saturating_mul(1_000_000))
                        .block();
                    (200, format!("slept {ms}\n").into_bytes())
                }
                None => (400, b"bad request: need ms=N\n".to_vec()),
            },
            "/fetch" => match param(&query, "url") {
                Some(url) => match fetch(&url) {
                    Ok((st, b)) => {
                        let mut v = format!("upstream {st}: ").into_bytes();
                        v.extend_from_slice(&b);
                        (200, v)
                    }
                    Err(e) => (502, format!("fetch failed: {e}\n").into_bytes()),
                },
                None => (400, b"bad request: need url=URL\n".to_vec()),
            },
            "/alloc" => match param(&query, "mb").and_then(|v| v.parse::<usize>().ok()) {
                Some(mb) => alloc(mb),
                None => (400, b"bad request: need mb=N\n".to_vec()),
            },
            "/loop" => {
                let mut counter: u64 = 0;
                loop {
                    counter = std::hint::black_box(counter.wrapping_add(1));
                }
            }
            "/env" => match param(&query, "name") {
                Some(name) => {
                    let found = wasi::cli::environment::get_environment()
                        .into_iter()
                        .find(|(k, _)| *k == name);
                    match found {
                        Some((_, v)) => (200, format!("{name}={v}\n").into_bytes()),
                        None => (404, format!("{name} is unset\n").into_bytes()),
                    }
                }
                None => (400, b"bad request: need name=X\n".to_vec()),
            },
            "/read" => match param(&query, "path") {
                Some(p) => match std::fs::read(&p) {
                    Ok(data) => (200, data),
                    Err(e) => (403, format!("error: read {p}: {e}\n").into_bytes()),
                },
                None => (400, b"bad request: need path=P\n".to_vec()),
            },
            "/write" => match (param(&query, "path"), param(&query, "text")) {
                (Some(p), Some(text)) => match std::fs::write(&p, text) {
                    Ok(()) => (200, format!("wrote {p}\n").into_bytes()),
                    Err(e) => (403, format!("error: write {p}: {e}\n").into_bytes()),
                },
                _ => (400, b"bad request: need path=P&text=T\n".to_vec()),
            },
            "/trap" => panic!("trap requested"),
            "/echo" => {
                if !matches!(method, Method::Post) {
                    (405, b"method not allowed\n".to_vec())
                } else {
                    match read_request_body(&request) {
                        Ok(b) => (200, b),
                        Err(e) => (400, format!("error: reading body: {e}\n").into_bytes()),
                    }
                }
            }
            _ => (404, b"not found\n".to_vec()),
        };
        respond(out, status, &body);
    }
}

fn respond(out: ResponseOutparam, status: u16, body: &[u8]) {
    let headers = Fields::new();
    let _ = headers.set("content-type", &[b"text/plain".to_vec()]);
    let _ = headers.set("content-length", &[body.len().to_string().into_bytes()]);
    let resp = OutgoingResponse::new(headers);
    let _ = resp.set_status_code(status);
    let ob = resp.body().expect("outgoing response body");
    ResponseOutparam::set(out, Ok(resp));
    {
        let mut stream = ob.write().expect("outgoing body stream");
        // A write failure means the client went away; nothing useful to do.
        let _ = stream
            .write_all(body)
            .and_then(|_| Write::flush(&mut stream));
    }
    let _ = OutgoingBody::finish(ob, None);
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
    std::hint::black_box(&chunks);
    (200, format!("allocated {mb} MiB\n").into_bytes())
}

fn read_request_body(req: &IncomingRequest) -> Result<Vec<u8>, String> {
    let body = req
        .consume()
        .map_err(|_| "body already consumed".to_string())?;
    let data = read_incoming(&body)?;
    drop(IncomingBody::finish(body));
    Ok(data)
}

fn read_incoming(body: &IncomingBody) -> Result<Vec<u8>, String> {
    let mut stream = body
        .stream()
        .map_err(|_| "body stream unavailable".to_string())?;
    let mut data = Vec::new();
    stream.read_to_end(&mut data).map_err(|e| e.to_string())?;
    Ok(data)
}

/// Outgoing GET via wasi:http/outgoing-handler. Returns (status, body) or an
/// error description (the `ErrorCode` debug text where the host gave one).
fn fetch(url: &str) -> Result<(u16, Vec<u8>), String> {
    let (scheme, authority, path) = split_url(url)?;
    let scheme = if scheme == "https" {
        Scheme::Https
    } else {
        Scheme::Http
    };
    let authority = authority.as_str();
    let req = OutgoingRequest::new(Fields::new());
    req.set_method(&Method::Get)
        .map_err(|_| "invalid method".to_string())?;
    req.set_scheme(Some(&scheme))
        .map_err(|_| "invalid scheme".to_string())?;
    req.set_authority(Some(authority))
        .map_err(|_| format!("invalid authority {authority:?}"))?;
    req.set_path_with_query(Some(&path))
        .map_err(|_| format!("invalid path {path:?}"))?;
    // No body: the host sends an empty one when `body()` is never taken.
    let fut = outgoing_handler::handle(req, None).map_err(|e| code(&e))?;
    let resp = loop {
        match fut.get() {
            Some(r) => break r,
            None => fut.subscribe().block(),
        }
    };
    let resp = resp
        .map_err(|_| "response already taken".to_string())?
        .map_err(|e| code(&e))?;
    let status = resp.status();
    let body = resp
        .consume()
        .map_err(|_| "response body unavailable".to_string())?;
    let data = read_incoming(&body)?;
    drop(IncomingBody::finish(body));
    Ok((status, data))
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

fn code(e: &ErrorCode) -> String {
    format!("{e:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params() {
        let q = "a=1&url=http%3A%2F%2Fx%3A8%2Fy%3Fz%3D1&b&bad=%zz%4";
        assert_eq!(param(q, "a").as_deref(), Some("1"));
        assert_eq!(param(q, "url").as_deref(), Some("http://x:8/y?z=1"));
        assert_eq!(param(q, "b").as_deref(), Some(""));
        assert_eq!(param(q, "bad").as_deref(), Some("%zz%4"));
        assert_eq!(param(q, "c"), None);
        assert_eq!(
            param("url=http://h:1/p", "url").as_deref(),
            Some("http://h:1/p")
        );
    }

    #[test]
    fn urls() {
        let s = |a: &str, b: &str, c: &str| Ok((a.to_string(), b.to_string(), c.to_string()));
        assert_eq!(
            split_url("http://h:8080/a/b?c=d"),
            s("http", "h:8080", "/a/b?c=d")
        );
        assert_eq!(
            split_url("https://example.com"),
            s("https", "example.com", "/")
        );
        assert_eq!(split_url("http://h?x=1"), s("http", "h", "/?x=1"));
        assert!(split_url("ftp://h/").is_err());
        assert!(split_url("http:///x").is_err());
    }
}
