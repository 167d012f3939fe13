//! HTTP load with wrk (4 kept-alive connections, as a load balancer or a client pool holds
//! them) and what it reports.

use std::process::{Child, Command, Stdio};

use crate::text;

/// What wrk reports: requests completed, socket errors of any kind, non-2xx answers.
#[derive(Debug)]
pub struct Load {
    pub requests: u64,
    pub socket_errors: u64,
    pub non_2xx: u64,
}

impl Load {
    /// Requests that failed, whichever way.
    pub fn failed(&self) -> u64 {
        self.socket_errors + self.non_2xx
    }
}

/// Starts `wrk -t2 -c4` on `url` for `seconds`.
pub fn start_wrk(url: &str, seconds: u32) -> Child {
    start_wrk_with(url, seconds, 4)
}

/// Starts wrk on `url` for `seconds` with `connections` kept-alive connections.
pub fn start_wrk_with(url: &str, seconds: u32, connections: u32) -> Child {
    start_wrk_host(url, None, seconds, connections)
}

/// Like [`start_wrk_with`], with the `Host` header `host` (a proxy routing by Host).
pub fn start_wrk_host(url: &str, host: Option<&str>, seconds: u32, connections: u32) -> Child {
    let mut wrk = Command::new("wrk");
    wrk.args(["-t2", &format!("-c{connections}"), &format!("-d{seconds}s"), "--timeout", "5s"]);
    if let Some(host) = host {
        wrk.args(["-H", &format!("Host: {host}")]);
    }
    wrk.arg(url).stdout(Stdio::piped()).spawn().expect("wrk runs (`make deps` installs it)")
}

/// Waits for wrk and parses its report.
pub fn finish_wrk(child: Child) -> Load {
    let out = child.wait_with_output().expect("wrk finishes");
    let report = text(&out.stdout);
    let load = parse_report(&report);
    assert!(load.requests > 0, "wrk sent nothing:\n{report}");
    load
}

fn parse_report(report: &str) -> Load {
    let number = |line: &str, key: &str| -> u64 {
        line.split(key)
            .nth(1)
            .and_then(|r| r.trim().split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
            .unwrap_or(0)
    };
    let mut load = Load { requests: 0, socket_errors: 0, non_2xx: 0 };
    for line in report.lines().map(str::trim) {
        if line.contains(" requests in ") {
            load.requests = line.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
        } else if line.starts_with("Socket errors:") {
            load.socket_errors = ["connect", "read", "write", "timeout"].iter().map(|k| number(line, k)).sum();
        } else if line.starts_with("Non-2xx") {
            load.non_2xx = number(line, ":");
        }
    }
    load
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_requests_socket_errors_and_non_2xx() {
        let report = "Running 10s test @ http://198.19.0.5:8080/\n  2 threads and 4 connections\n\
                      21186 requests in 25.01s, 2.10MB read\n  Socket errors: connect 0, read 4, write 2, timeout 0\n\
                      \x20 Non-2xx or 3xx responses: 3\nRequests/sec:    847.11\n";
        let load = parse_report(report);
        assert_eq!((load.requests, load.socket_errors, load.non_2xx, load.failed()), (21186, 6, 3, 9));
    }
}
