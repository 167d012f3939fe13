//! Telling Spore's activator that a pod's HTTP guest serves, the moment it does: kubelet
//! writes the pod IP into the pod's status only at its next relist (up to a second later),
//! and a request held for a scaled-to-zero app waits for that IP. The shim server runs in
//! the pod's network namespace, so the activator takes the connection's source address as
//! the pod IP. One `POST /v1/announce`, in the background, bounded: the guest never waits
//! for it and never fails because of it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The path the activator's admin listener answers announcements on.
pub const ANNOUNCE_PATH: &str = "/v1/announce";
/// The whole announcement (connect, send, answer) gives up after this long.
pub const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(1);

/// Where and as what a pod announces itself, from the container spec's annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    /// The activator's admin address (`spore.dev/activator-announce`).
    pub to: SocketAddr,
    /// The pod, from CRI's `io.kubernetes.cri.sandbox-*` annotations.
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    /// `spore.dev/announce-token`: the activator checks it against the app.
    pub token: String,
}

/// Why an announcement did not get its 204.
#[derive(Debug, thiserror::Error)]
pub enum AnnounceError {
    #[error("cannot reach the activator at {to}: {source}")]
    Io {
        to: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("no answer from the activator at {to} within {ANNOUNCE_TIMEOUT:?}")]
    Timeout { to: SocketAddr },
    #[error("the activator at {to} answered {status_line:?}")]
    Refused { to: SocketAddr, status_line: String },
}

impl Announce {
    /// The JSON body for a guest serving on `port`.
    pub fn body(&self, port: u16) -> String {
        serde_json::json!({
            "namespace": self.namespace,
            "pod": self.pod,
            "uid": self.uid,
            "port": port,
            "token": self.token,
        })
        .to_string()
    }

    /// The whole HTTP/1.1 request: one short request needs no client library.
    pub fn request(&self, port: u16) -> String {
        let body = self.body(port);
        format!(
            "POST {ANNOUNCE_PATH} HTTP/1.1\r\nHost: {}\r\nUser-Agent: spore-shim\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.to,
            body.len()
        )
    }

    /// Sends the announcement; `Ok` with the status line of a 2xx answer.
    pub async fn send(&self, port: u16) -> Result<String, AnnounceError> {
        let to = self.to;
        let attempt = async {
            let io = |source| AnnounceError::Io { to, source };
            let mut stream = TcpStream::connect(to).await.map_err(io)?;
            stream.set_nodelay(true).map_err(io)?;
            stream.write_all(self.request(port).as_bytes()).await.map_err(io)?;
            let status_line = read_status_line(&mut stream).await.map_err(io)?;
            if is_success(&status_line) { Ok(status_line) } else { Err(AnnounceError::Refused { to, status_line }) }
        };
        tokio::time::timeout(ANNOUNCE_TIMEOUT, attempt).await.unwrap_or(Err(AnnounceError::Timeout { to }))
    }
}

/// A failed announcement is worth one warning per shim process (one per pod): after that
/// the same misconfiguration would only repeat itself at every container restart.
static WARNED: AtomicBool = AtomicBool::new(false);

/// Announces `container`'s guest serving on `port` in the background.
pub fn spawn(announce: Announce, container: String, port: u16) {
    tokio::spawn(async move {
        match announce.send(port).await {
            Ok(status) => log::debug!("container {container}: announced port {port} to {}: {status}", announce.to),
            Err(err) if !WARNED.swap(true, Ordering::Relaxed) => {
                log::warn!("container {container}: announcing port {port} failed (requests wait for the pod IP): {err}")
            }
            Err(err) => log::debug!("container {container}: announcing port {port} failed: {err}"),
        }
    });
}

/// Reads up to the end of the first line (the answer is small; anything after is ignored).
async fn read_status_line(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut buf = Vec::with_capacity(128);
    let mut chunk = [0u8; 256];
    while !buf.contains(&b'\n') && buf.len() < 4096 {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = buf.split(|b| *b == b'\n').next().unwrap_or_default();
    Ok(String::from_utf8_lossy(line).trim_end().to_string())
}

/// `HTTP/1.1 204 No Content` and every other 2xx.
fn is_success(status_line: &str) -> bool {
    let mut parts = status_line.split(' ');
    parts.next().is_some_and(|v| v.starts_with("HTTP/1.")) && parts.next().is_some_and(|code| code.starts_with('2'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn announce(to: SocketAddr) -> Announce {
        Announce {
            to,
            namespace: "apps".into(),
            pod: "hello-7d9f-x2x".into(),
            uid: "pod-uid".into(),
            token: "app-uid".into(),
        }
    }

    #[test]
    fn the_request_carries_the_pod_the_port_and_the_token() {
        let announce = announce("198.19.0.77:9090".parse().unwrap());
        let body: serde_json::Value = serde_json::from_str(&announce.body(8080)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"namespace": "apps", "pod": "hello-7d9f-x2x", "uid": "pod-uid", "port": 8080, "token": "app-uid"})
        );
        let request = announce.request(8080);
        let (head, sent_body) = request.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("POST /v1/announce HTTP/1.1\r\nHost: 198.19.0.77:9090\r\n"), "{head}");
        assert!(head.contains(&format!("\r\nContent-Length: {}\r\n", sent_body.len())), "{head}");
        assert!(head.contains("\r\nContent-Type: application/json\r\n") && head.ends_with("Connection: close"));
        assert_eq!(sent_body, announce.body(8080));
    }

    #[test]
    fn only_a_2xx_answer_is_success() {
        for (line, ok) in [
            ("HTTP/1.1 204 No Content", true),
            ("HTTP/1.0 200 OK", true),
            ("HTTP/1.1 403 Forbidden", false),
            ("HTTP/1.1 409 Conflict", false),
            ("", false),
            ("SSH-2.0-OpenSSH", false),
            ("HTTP/1.1", false),
        ] {
            assert_eq!(is_success(line), ok, "{line:?}");
        }
    }

    #[tokio::test]
    async fn an_announcement_reaches_a_listener_and_reads_its_answer() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let to = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut answers = Vec::new();
            for answer in
                ["HTTP/1.1 204 No Content\r\n\r\n", "HTTP/1.1 403 Forbidden\r\nContent-Length: 10\r\n\r\nbad token\n"]
            {
                let (mut stream, peer) = listener.accept().await.unwrap();
                let mut request = Vec::new();
                let mut chunk = [0u8; 1024];
                while !String::from_utf8_lossy(&request).contains("\"token\"") {
                    let n = stream.read(&mut chunk).await.unwrap();
                    request.extend_from_slice(&chunk[..n]);
                }
                stream.write_all(answer.as_bytes()).await.unwrap();
                answers.push((peer.ip(), String::from_utf8(request).unwrap()));
            }
            answers
        });
        let announce = announce(to);
        assert_eq!(announce.send(8080).await.unwrap(), "HTTP/1.1 204 No Content");
        let refused = announce.send(8080).await.unwrap_err().to_string();
        assert!(refused.contains("answered \"HTTP/1.1 403 Forbidden\""), "{refused}");
        let received = server.await.unwrap();
        assert_eq!(received[0].0, std::net::IpAddr::from([127, 0, 0, 1]));
        assert!(received[0].1.ends_with(&announce.body(8080)), "{}", received[0].1);

        // Nobody listening, or nobody answering: an error within the timeout, never a hang.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let started = std::time::Instant::now();
        let err = Announce { to: silent.local_addr().unwrap(), ..announce.clone() }.send(8080).await.unwrap_err();
        assert!(matches!(err, AnnounceError::Timeout { .. }), "{err}");
        assert!(started.elapsed() < ANNOUNCE_TIMEOUT + Duration::from_millis(500));
        drop(silent);
    }
}
