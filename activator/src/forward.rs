//! Forwarding one request to a pod: a pooled HTTP/1.1 client, the request head kept for
//! another attempt, and a body handed over only when a connection takes it, so a request
//! whose connect failed can go to another pod with its body intact.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName};
use hyper::{Method, Request, Response, Uri, Version};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::app::InFlight;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The pooled client to pods.
pub type Upstream = Client<HttpConnector, HandoffBody>;

/// Idle connections to pods are closed after this long.
const POOL_IDLE: Duration = Duration::from_secs(30);

/// A client with a connection pool; connects give up after `connect_timeout`. For requests
/// to pods ([`Upstream`]) and announcements relayed to peers.
pub fn client<B>(connect_timeout: Duration) -> Client<HttpConnector, B>
where
    B: Body + Send + 'static,
    B::Data: Send,
{
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(connect_timeout));
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).pool_idle_timeout(POOL_IDLE).pool_timer(TokioTimer::new()).build(connector)
}

/// Headers that belong to one connection, not to the request (RFC 9110 section 7.6.1).
const HOP_BY_HOP: [&str; 7] =
    ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"];

/// Removes hop-by-hop headers: the fixed ones and those `Connection` names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// A request's method, path and headers, to send to one pod or, after a failed connect,
/// another.
pub struct RequestHead {
    method: Method,
    path_and_query: String,
    headers: HeaderMap,
}

impl RequestHead {
    pub fn new(parts: &hyper::http::request::Parts) -> Self {
        let mut headers = parts.headers.clone();
        strip_hop_by_hop(&mut headers);
        let path_and_query = parts.uri.path_and_query().map_or_else(|| "/".to_string(), |p| p.as_str().to_string());
        Self { method: parts.method.clone(), path_and_query, headers }
    }

    /// The request to `addr`, with `body`.
    pub fn to(&self, addr: SocketAddr, body: HandoffBody) -> Result<Request<HandoffBody>, hyper::http::Error> {
        let uri: Uri = format!("http://{addr}{}", self.path_and_query).parse()?;
        let mut request =
            Request::builder().method(self.method.clone()).uri(uri).version(Version::HTTP_11).body(body)?;
        *request.headers_mut() = self.headers.clone();
        Ok(request)
    }
}

/// The client's request body, waiting for the first connection that reads it.
#[derive(Clone)]
pub struct BodySlot(Arc<Mutex<Option<Incoming>>>);

impl BodySlot {
    pub fn new(body: Incoming) -> Self {
        Self(Arc::new(Mutex::new(Some(body))))
    }

    /// No connection read the body yet: the request can go to another pod.
    pub fn untouched(&self) -> bool {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).is_some()
    }

    /// A body for one attempt: it takes the client's body when the attempt first reads it.
    pub fn handoff(&self) -> HandoffBody {
        HandoffBody { slot: self.clone(), body: None }
    }
}

/// One attempt's view of the request body (see [`BodySlot`]).
pub struct HandoffBody {
    slot: BodySlot,
    body: Option<Incoming>,
}

impl Body for HandoffBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.body.is_none() {
            this.body = this.slot.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        }
        match this.body.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            None => Poll::Ready(Some(Err("the request body was already sent to another pod".into()))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.body {
            Some(body) => body.is_end_stream(),
            None => {
                self.slot.0.lock().unwrap_or_else(PoisonError::into_inner).as_ref().is_some_and(Body::is_end_stream)
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.body {
            Some(body) => body.size_hint(),
            None => self
                .slot
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .map(Body::size_hint)
                .unwrap_or_default(),
        }
    }
}

/// A pod's response body, counting as in flight to the pod until it is done or dropped.
pub struct Guarded {
    body: Incoming,
    _load: InFlight,
}

impl Guarded {
    pub fn new(body: Incoming, load: InFlight) -> Self {
        Self { body, _load: load }
    }
}

impl Body for Guarded {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The pod's response with its hop-by-hop headers removed.
pub fn clean_response(mut response: Response<Incoming>) -> Response<Incoming> {
    strip_hop_by_hop(response.headers_mut());
    response
}

/// `e` and its causes on one line: `client error (Connect): tcp connect error: Connection refused`.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_dropped_and_the_rest_kept() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, x-private"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("te", "trailers"),
            ("host", "hello.apps"),
            ("x-request-id", "abc"),
            ("content-length", "3"),
        ] {
            headers.append(HeaderName::from_static(name), value.parse().unwrap());
        }
        strip_hop_by_hop(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort();
        assert_eq!(left, ["content-length", "host", "x-request-id"]);
    }

    #[test]
    fn error_chains_fit_on_one_line() {
        let inner = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused\nreally");
        let outer = std::io::Error::other(inner);
        assert_eq!(error_chain(&outer), "refused really");
    }
}
