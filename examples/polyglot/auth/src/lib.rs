//! A bearer-token middleware for WASI 0.3 HTTP apps.
//!
//! A request whose `authorization` header is not `Bearer <token>` is answered 401 here and
//! never reaches the handler. One with the token goes on to the next handler without its
//! `authorization` header, so the handler never sees the credential.
//!
//! The token is the content of the file named by `TOKEN_FILE` (default `/keys/token`), read
//! on every request so that a rotated Secret takes effect without a restart. Only this
//! component is granted that file: the handler behind it cannot read it.

use wit_bindgen::spawn;

wit_bindgen::generate!({ path: "wit", world: "spore:auth/auth", generate_all });

use exports::wasi::http::handler::Guest;
use wasi::http::handler as next;
use wasi::http::types::{ErrorCode, Fields, Request, Response};

const DEFAULT_TOKEN_FILE: &str = "/keys/token";

struct Auth;

impl Guest for Auth {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let token = match expected_token() {
            Ok(token) => token,
            // The middleware cannot decide, so nothing passes: fail closed.
            Err(reason) => return Ok(respond(500, &format!("auth: {reason}\n"))),
        };
        match presented_token(&request) {
            Some(presented) if constant_time_eq(presented.as_bytes(), token.as_bytes()) => {
                next::handle(without_credentials(request)?).await
            }
            Some(_) => Ok(unauthorized("invalid token")),
            None => Ok(unauthorized("missing bearer token")),
        }
    }
}

export!(Auth);

fn expected_token() -> Result<String, String> {
    let path = std::env::var("TOKEN_FILE").unwrap_or_else(|_| DEFAULT_TOKEN_FILE.to_string());
    let token = std::fs::read_to_string(&path).map_err(|e| format!("cannot read the token file {path}: {e}"))?;
    let token = token.trim().to_string();
    if token.is_empty() {
        return Err(format!("the token file {path} is empty"));
    }
    Ok(token)
}

fn presented_token(request: &Request) -> Option<String> {
    let values = request.get_headers().get("authorization");
    let value = std::str::from_utf8(values.first()?).ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string())
}

/// Compares without stopping at the first difference, so the time taken does not tell how
/// much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The same request, minus its `authorization` header (headers of a received request are
/// immutable, so it is rebuilt around the same body stream).
fn without_credentials(request: Request) -> Result<Request, ErrorCode> {
    let headers = request.get_headers().clone();
    let _ = headers.delete("authorization");
    let method = request.get_method();
    let scheme = request.get_scheme();
    let authority = request.get_authority();
    let path = request.get_path_with_query();
    let (done_tx, done_rx) = wit_future::new(|| Ok(()));
    drop(done_tx);
    let (body, trailers) = Request::consume_body(request, done_rx);
    let (forwarded, _sent) = Request::new(headers, Some(body), trailers, None);
    let invalid = |_| ErrorCode::InternalError(Some("cannot rebuild the request".to_string()));
    forwarded.set_method(&method).map_err(invalid)?;
    forwarded.set_scheme(scheme.as_ref()).map_err(invalid)?;
    forwarded.set_authority(authority.as_deref()).map_err(invalid)?;
    forwarded.set_path_with_query(path.as_deref()).map_err(invalid)?;
    Ok(forwarded)
}

fn unauthorized(reason: &str) -> Response {
    respond(401, &format!("unauthorized: {reason}\n"))
}

fn respond(status: u16, text: &str) -> Response {
    let body = text.as_bytes().to_vec();
    let mut fields = vec![
        ("content-type".to_string(), b"text/plain".to_vec()),
        ("content-length".to_string(), body.len().to_string().into_bytes()),
    ];
    if status == 401 {
        fields.push(("www-authenticate".to_string(), b"Bearer realm=\"spore\"".to_vec()));
    }
    let headers = Fields::from_list(&fields).expect("valid headers");
    let (mut tx, rx) = wit_stream::new();
    let (trailers_tx, trailers_rx) = wit_future::new(|| Ok(None));
    drop(trailers_tx);
    let (response, _sent) = Response::new(headers, Some(rx), trailers_rx);
    let _ = response.set_status_code(status);
    spawn(async move {
        // A short write means the client went away.
        let _ = tx.write_all(body).await;
    });
    response
}
