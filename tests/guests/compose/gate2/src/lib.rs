//! A bearer-token gate for WASI 0.2 HTTP apps: a request without `Authorization: Bearer
//! $TOKEN` is answered 401 here; one with it goes on to the next handler as it came (0.2
//! has no way to rebuild a request, so the credential goes on too). `TOKEN` comes from this
//! component's own environment, which the handler behind it does not see.

wit_bindgen::generate!({ path: "wit", world: "spore:gate/gate", generate_all });

use exports::wasi::http::incoming_handler::Guest;
use wasi::http::incoming_handler as next;
use wasi::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

struct Gate;

impl Guest for Gate {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let Some(token) = expected_token() else {
            // The gate cannot decide, so nothing passes: fail closed.
            return respond(out, 500, "gate: TOKEN is not set\n");
        };
        match presented_token(&request) {
            Some(presented) if constant_time_eq(presented.as_bytes(), token.as_bytes()) => next::handle(request, out),
            Some(_) => respond(out, 401, "invalid token\n"),
            None => respond(out, 401, "missing bearer token\n"),
        }
    }
}

export!(Gate);

fn expected_token() -> Option<String> {
    let (_, token) = wasi::cli::environment::get_environment().into_iter().find(|(name, _)| name == "TOKEN")?;
    (!token.is_empty()).then_some(token)
}

fn presented_token(request: &IncomingRequest) -> Option<String> {
    let values = request.headers().get("authorization");
    let value = std::str::from_utf8(values.first()?).ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string())
}

/// Compares without stopping at the first difference, so the time taken does not tell how
/// much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn respond(out: ResponseOutparam, status: u16, text: &str) {
    let mut headers = vec![("content-type".to_string(), b"text/plain".to_vec())];
    if status == 401 {
        headers.push(("www-authenticate".to_string(), b"Bearer".to_vec()));
    }
    let response = OutgoingResponse::new(Fields::from_list(&headers).expect("valid headers"));
    let _ = response.set_status_code(status);
    let body = response.body().expect("the body is taken once");
    ResponseOutparam::set(out, Ok(response));
    let stream = body.write().expect("the stream is taken once");
    // The texts are far below the 4 KiB one call may write.
    let _ = stream.blocking_write_and_flush(text.as_bytes());
    drop(stream);
    let _ = OutgoingBody::finish(body, None);
}
