//! The native baseline for the HTTP benchmark: a hyper server answering what the hello
//! component answers, on the same runtime setup `spore up` uses.

use std::convert::Infallible;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8090".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("native-hello listening on http://{addr}/");
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let service = service_fn(|_req| async {
                Ok::<_, Infallible>(
                    hyper::Response::builder()
                        .header("content-type", "text/plain")
                        .body(Full::new(Bytes::from_static(b"hello from spore\n")))
                        .expect("static response"),
                )
            });
            let _ = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), service).await;
        });
    }
}
