//! Reading the concurrency the autoscaler needs: `spore_http_requests_in_flight` from each
//! pod's shim (its `metrics` port) and `spore_activator_requests_held` from each activator
//! pod. Plain HTTP/1.1 GETs with a short timeout, and a parser for the few lines we read.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

/// In-flight requests of one pod's guest.
pub const IN_FLIGHT_METRIC: &str = "spore_http_requests_in_flight";
/// Requests the activator holds for an app at zero, by `namespace` and `app`.
pub const HELD_METRIC: &str = "spore_activator_requests_held";

/// Why a scrape gave nothing.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error("GET http://{addr}/metrics timed out after {timeout:?}")]
    Timeout { addr: SocketAddr, timeout: Duration },
    #[error("GET http://{addr}/metrics: {source}")]
    Http { addr: SocketAddr, source: hyper::Error },
    #[error("GET http://{addr}/metrics: {source}")]
    Connect { addr: SocketAddr, source: std::io::Error },
    #[error("GET http://{addr}/metrics answered {status}")]
    Status { addr: SocketAddr, status: http::StatusCode },
    #[error("GET http://{addr}/metrics: no {metric} in the answer")]
    Missing { addr: SocketAddr, metric: &'static str },
}

/// The body of `GET http://addr/metrics`, within `timeout`.
pub async fn fetch(addr: SocketAddr, timeout: Duration) -> Result<String, ScrapeError> {
    tokio::time::timeout(timeout, get(addr)).await.map_err(|_| ScrapeError::Timeout { addr, timeout })?
}

async fn get(addr: SocketAddr) -> Result<String, ScrapeError> {
    let stream = tokio::net::TcpStream::connect(addr).await.map_err(|source| ScrapeError::Connect { addr, source })?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|source| ScrapeError::Http { addr, source })?;
    tokio::spawn(connection);
    let request = http::Request::get("/metrics")
        .header(http::header::HOST, addr.to_string())
        .body(Empty::<Bytes>::new())
        .expect("a static request is valid");
    let response = sender.send_request(request).await.map_err(|source| ScrapeError::Http { addr, source })?;
    if !response.status().is_success() {
        return Err(ScrapeError::Status { addr, status: response.status() });
    }
    let body = response.into_body().collect().await.map_err(|source| ScrapeError::Http { addr, source })?;
    Ok(String::from_utf8_lossy(&body.to_bytes()).into_owned())
}

/// A pod's in-flight requests, from its shim's metrics.
pub async fn in_flight(addr: SocketAddr, timeout: Duration) -> Result<f64, ScrapeError> {
    let text = fetch(addr, timeout).await?;
    samples(&text, IN_FLIGHT_METRIC)
        .map(|(_, v)| v)
        .reduce(|a, b| a + b)
        .ok_or(ScrapeError::Missing { addr, metric: IN_FLIGHT_METRIC })
}

/// Held requests per (namespace, app), from one activator's metrics.
pub fn held_by_app(text: &str) -> HashMap<(String, String), f64> {
    let mut held = HashMap::new();
    for (labels, value) in samples(text, HELD_METRIC) {
        if let (Some(ns), Some(app)) = (label(labels, "namespace"), label(labels, "app")) {
            *held.entry((ns.to_string(), app.to_string())).or_insert(0.0) += value;
        }
    }
    held
}

/// `(labels, value)` of every sample of `metric` in Prometheus or OpenMetrics text.
fn samples<'a>(text: &'a str, metric: &'a str) -> impl Iterator<Item = (&'a str, f64)> + 'a {
    text.lines().filter(|l| !l.starts_with('#')).filter_map(move |line| {
        let rest = line.strip_prefix(metric)?;
        let (labels, rest) = match rest.strip_prefix('{') {
            Some(inner) => inner.split_once('}')?,
            None if rest.starts_with(' ') => ("", rest),
            None => return None,
        };
        let value = rest.split_whitespace().next()?.parse::<f64>().ok()?;
        value.is_finite().then_some((labels, value))
    })
}

/// The value of `name` in `k="v",k2="v2"` (our label values never need escapes).
fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    labels.split(',').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key.trim() == name).then(|| value.trim().trim_matches('"'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIM: &str = "# HELP spore_http_requests_in_flight Requests the guest is handling now.\n\
        # TYPE spore_http_requests_in_flight gauge\n\
        spore_http_requests_in_flight 7\n\
        spore_http_requests_in_flight_other 99\n\
        spore_http_requests_total{code=\"200\"} 1234\n# EOF\n";

    const ACTIVATOR: &str = "# TYPE spore_activator_requests_held gauge\n\
        spore_activator_requests_held{namespace=\"apps\",app=\"hello\"} 12\n\
        spore_activator_requests_held{app=\"other\",namespace=\"apps\"} 0\n\
        spore_activator_requests_held{namespace=\"team-b\",app=\"hello\"} 3\n\
        spore_activator_requests_total{namespace=\"apps\",app=\"hello\",outcome=\"held\"} 40\n";

    #[test]
    fn reads_the_in_flight_gauge_and_nothing_that_only_starts_like_it() {
        let found: Vec<_> = samples(SHIM, IN_FLIGHT_METRIC).collect();
        assert_eq!(found, [("", 7.0)]);
    }

    #[test]
    fn reads_held_requests_by_namespace_and_app_whatever_the_label_order() {
        let held = held_by_app(ACTIVATOR);
        let get = |ns: &str, app: &str| held.get(&(ns.to_string(), app.to_string())).copied();
        assert_eq!(
            (get("apps", "hello"), get("apps", "other"), get("team-b", "hello")),
            (Some(12.0), Some(0.0), Some(3.0))
        );
        assert_eq!(held.len(), 3, "requests_total is another metric");
    }

    #[tokio::test]
    async fn fetches_metrics_over_http_and_times_out_on_silence() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await;
            let answer = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{SHIM}", SHIM.len());
            tokio::io::AsyncWriteExt::write_all(&mut stream, answer.as_bytes()).await.unwrap();
            // Then a second connection that never answers.
            let (_silent, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        assert_eq!(in_flight(addr, Duration::from_secs(2)).await.unwrap(), 7.0);
        let err = in_flight(addr, Duration::from_millis(100)).await.unwrap_err();
        assert!(matches!(err, ScrapeError::Timeout { .. }), "{err}");
    }
}
