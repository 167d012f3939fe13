//! What both WASI 0.3 composition guests try, through 0.3 interfaces only: the
//! environment, a file, an outbound connection and a name lookup.

use core::future::{poll_fn, Future, IntoFuture};
use core::pin::pin;
use core::task::Poll;

use wasip3::cli::environment;
use wasip3::filesystem::{preopens, types as fs};
use wasip3::sockets::{ip_name_lookup, types as net};

/// The capability tries both guests make.
pub async fn tries() -> Vec<String> {
    let mut lines = vec![format!("env {}", environment::get_environment().len())];
    let path = "/data/secret.txt";
    lines.push(match read("/data", "secret.txt").await {
        Ok(text) => format!("file {path} ok {}", text.trim()),
        Err(e) => format!("file {path} denied {e}"),
    });
    // Port 9 (discard) has no listener here: an allowed connect is refused by the peer,
    // a denied one never leaves the sandbox.
    let addr = "127.0.0.1:9";
    lines.push(match connect().await {
        Ok(()) => format!("tcp {addr} connected"),
        Err(net::ErrorCode::ConnectionRefused) => format!("tcp {addr} refused"),
        Err(e) => format!("tcp {addr} denied {e:?}"),
    });
    let name = "reach.test";
    lines.push(match ip_name_lookup::resolve_addresses(name.to_string()).await {
        Ok(ips) => format!("dns {name} {}", ips.len()),
        Err(e) => format!("dns {name} denied {e:?}"),
    });
    lines
}

async fn read(dir: &str, file: &str) -> Result<String, String> {
    let (dir, _) = preopens::get_directories()
        .into_iter()
        .find(|(_, name)| name == dir)
        .ok_or_else(|| format!("no preopen {dir}"))?;
    let file = dir
        .open_at(fs::PathFlags::empty(), file.to_string(), fs::OpenFlags::empty(), fs::DescriptorFlags::READ)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let (rx, result) = file.read_via_stream(0);
    let (bytes, result) = join(rx.collect(), result).await;
    result.map_err(|e| format!("{e:?}"))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

async fn connect() -> Result<(), net::ErrorCode> {
    let socket = net::TcpSocket::create(net::IpAddressFamily::Ipv4)?;
    let to = net::IpSocketAddress::Ipv4(net::Ipv4SocketAddress { port: 9, address: (127, 0, 0, 1) });
    socket.connect(to).await
}

/// Polls a stream's reader and the host's completion future together.
pub async fn join<A: IntoFuture, B: IntoFuture>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (pin!(a.into_future()), pin!(b.into_future()));
    let (mut ra, mut rb) = (None, None);
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
