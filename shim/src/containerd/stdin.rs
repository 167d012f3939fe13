//! containerd's stdin FIFO as the guest's stdin. Opening a FIFO for reading blocks until a
//! writer (ctr, CRI attach) opens it, so the open runs on a thread of its own at the first
//! read: a guest reading stdin simply waits, and sees EOF when the writer closes.

use std::future::Future;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::unix::pipe::Receiver;
use tokio::sync::oneshot;

pub struct FifoReader {
    path: PathBuf,
    state: State,
}

enum State {
    Unopened,
    Opening(oneshot::Receiver<io::Result<std::fs::File>>),
    Open(Receiver),
}

impl FifoReader {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), state: State::Unopened }
    }
}

impl AsyncRead for FifoReader {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            match &mut self.state {
                State::Unopened => {
                    // A thread of its own, not tokio's blocking pool: an open that never
                    // completes (the client closed stdin before we opened it) must not hold
                    // up the runtime's shutdown, and so the shim's exit.
                    let (done, opened) = oneshot::channel();
                    let path = self.path.clone();
                    std::thread::Builder::new()
                        .name("stdin-fifo".into())
                        .spawn(move || done.send(std::fs::File::open(path)))?;
                    self.state = State::Opening(opened);
                }
                State::Opening(opened) => {
                    let file = ready!(Pin::new(opened).poll(cx)).map_err(io::Error::other)??;
                    self.state = State::Open(Receiver::from_file(file)?);
                }
                State::Open(fifo) => return Pin::new(fifo).poll_read(cx, buf),
            }
        }
    }
}

impl Drop for FifoReader {
    /// A pending open would hold its thread until some writer came.
    fn drop(&mut self) {
        if let State::Opening(_) = self.state {
            end_pending_open(&self.path);
        }
    }
}

/// Opens and closes the FIFO's write end without blocking: a reader still waiting in its
/// open gets through and then reads EOF. For CloseIO (the client is done with stdin, maybe
/// before we ever saw it connect) and for dropping a reader that never connected.
pub fn end_pending_open(path: &Path) {
    let _ = std::fs::OpenOptions::new().write(true).custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits()).open(path);
}
