//! The `outbound.http` allowlist for `wasi:http` outgoing requests, and the hooks that
//! enforce it.

use spore_crds::HostPattern;
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

use crate::error::{Error, Result};

/// The parsed `outbound.http` list.
#[derive(Debug, Clone, Default)]
pub(crate) struct HttpAllowlist(Vec<HostPattern>);

impl HttpAllowlist {
    pub fn new(patterns: &[String]) -> Result<Self> {
        patterns
            .iter()
            .enumerate()
            .map(|(i, p)| {
                HostPattern::parse(p).ok_or_else(|| Error::Capability {
                    field: format!("network.outbound.http[{i}]"),
                    message: format!("{p:?} is not a host pattern; use host, host:port, *.example.com or *"),
                })
            })
            .collect::<Result<_>>()
            .map(Self)
    }

    /// Whether a request to `uri` may go out.
    pub fn allows(&self, uri: &http::Uri) -> bool {
        let scheme = uri.scheme_str().unwrap_or("http");
        let Some(host) = uri.host() else { return false };
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(if scheme == "https" { 443 } else { 80 });
        self.0.iter().any(|p| p.allows(scheme, &host, port))
    }
}

/// `wasi:http` hooks: outgoing requests go out only to allowlisted hosts.
pub(crate) struct OutboundHooks {
    allowlist: HttpAllowlist,
}

impl OutboundHooks {
    pub fn new(allowlist: HttpAllowlist) -> Self {
        Self { allowlist }
    }
}

type SendResult = wasmtime_wasi_http::Result<(
    hyper::Response<WasiBody>,
    Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
)>;

/// wasmtime-wasi-http's forbidden headers, built once: its default check builds the list
/// (and an `Arc` around it) on every header a guest sets.
static FORBIDDEN_HEADERS: std::sync::LazyLock<[hyper::header::HeaderName; 9]> =
    std::sync::LazyLock::new(|| wasmtime_wasi_http::DEFAULT_FORBIDDEN_HEADERS);

impl WasiHttpHooks for OutboundHooks {
    fn is_forbidden_header(&mut self, name: &hyper::header::HeaderName) -> bool {
        FORBIDDEN_HEADERS.contains(name)
    }

    fn send_request(
        &mut self,
        request: hyper::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        if self.allowlist.allows(request.uri()) {
            return wasmtime_wasi_http::default_hooks().send_request(request, options, fut);
        }
        tracing::warn!(uri = %request.uri(), "outbound HTTP request denied: host not in capabilities.network.outbound.http");
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(patterns: &[&str]) -> HttpAllowlist {
        HttpAllowlist::new(&patterns.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn matches_requests_against_patterns() {
        let l = list(&["api.example.com", "127.0.0.1:9000", "*.svc.local", "https://secure.example.com", "[::1]:8080"]);
        for (uri, allowed) in [
            ("http://api.example.com/x", true),
            ("https://API.example.com:8443/x", true),
            ("http://example.com/", false),
            ("http://127.0.0.1:9000/", true),
            ("http://127.0.0.1:9001/", false),
            ("http://a.svc.local/", true),
            ("http://svc.local/", false),
            ("https://secure.example.com/", true),
            ("http://secure.example.com/", false),
            ("http://[::1]:8080/", true),
        ] {
            assert_eq!(l.allows(&uri.parse().unwrap()), allowed, "{uri}");
        }
    }

    #[test]
    fn empty_list_denies_and_star_allows_all() {
        assert!(!list(&[]).allows(&"http://127.0.0.1/".parse().unwrap()));
        assert!(list(&["*"]).allows(&"https://anything.example:1234/".parse().unwrap()));
    }

    #[test]
    fn rejects_malformed_patterns() {
        for bad in ["", "ftp://x", "a*b.com", "host:port", "host/path", "*."] {
            let err = HttpAllowlist::new(&[bad.to_string()]).unwrap_err().to_string();
            assert!(err.contains("network.outbound.http[0]"), "{bad}: {err}");
        }
    }
}
