//! Where a guest's stdin, stdout and stderr go: sinks chosen by the caller (the terminal
//! for `spore up`, containerd's FIFOs for the shim, memory for tests).

use std::sync::Arc;

use wasmtime_wasi::cli::{IsTerminal, StdinStream, StdoutStream};
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};

type SharedOut = Arc<dyn StdoutStream + Sync>;
type SharedIn = Arc<dyn StdinStream + Sync>;

/// The guest's standard streams. Cloning shares the same sinks, so every HTTP request
/// instance writes to the same place.
#[derive(Clone)]
pub struct Stdio {
    stdin: Option<SharedIn>,
    stdout: SharedOut,
    stderr: SharedOut,
}

/// Output captured in memory by [`Stdio::capture`].
#[derive(Clone)]
pub struct Captured {
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

const CAPTURE_LIMIT: usize = 16 << 20;

impl Stdio {
    /// The host process's own streams.
    pub fn inherit() -> Self {
        Self {
            stdin: Some(Arc::new(std::io::stdin())),
            stdout: Arc::new(std::io::stdout()),
            stderr: Arc::new(std::io::stderr()),
        }
    }

    /// Discards output; stdin is empty.
    pub fn null() -> Self {
        Self { stdin: None, stdout: Arc::new(std::io::empty()), stderr: Arc::new(std::io::empty()) }
    }

    /// Custom sinks, e.g. files opened on containerd's FIFOs.
    pub fn new(stdout: impl StdoutStream + Sync + 'static, stderr: impl StdoutStream + Sync + 'static) -> Self {
        Self { stdin: None, stdout: Arc::new(stdout), stderr: Arc::new(stderr) }
    }

    /// Captures stdout and stderr in memory.
    pub fn capture() -> (Self, Captured) {
        let captured =
            Captured { stdout: MemoryOutputPipe::new(CAPTURE_LIMIT), stderr: MemoryOutputPipe::new(CAPTURE_LIMIT) };
        (Self::new(captured.stdout.clone(), captured.stderr.clone()), captured)
    }

    /// Reads the guest's stdin from `stdin`, e.g. a FIFO containerd gives.
    pub fn with_stdin_stream(mut self, stdin: impl StdinStream + Sync + 'static) -> Self {
        self.stdin = Some(Arc::new(stdin));
        self
    }

    /// Feeds `bytes` as the guest's stdin.
    pub fn with_stdin(mut self, bytes: impl Into<bytes::Bytes>) -> Self {
        self.stdin = Some(Arc::new(MemoryInputPipe::new(bytes)));
        self
    }

    pub(crate) fn apply(&self, builder: &mut wasmtime_wasi::WasiCtxBuilder) {
        if let Some(stdin) = &self.stdin {
            builder.stdin(Shared(stdin.clone()));
        }
        builder.stdout(Shared(self.stdout.clone()));
        builder.stderr(Shared(self.stderr.clone()));
    }
}

impl Captured {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.contents()).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents()).into_owned()
    }
}

/// Lets one `Arc`'d stream back many WASI contexts.
struct Shared<T: ?Sized>(Arc<T>);

impl<T: ?Sized + IsTerminal> IsTerminal for Shared<T> {
    fn is_terminal(&self) -> bool {
        self.0.is_terminal()
    }
}

impl<T: ?Sized + StdoutStream + Sync> StdoutStream for Shared<T> {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        self.0.async_stream()
    }

    fn p2_stream(&self) -> Box<dyn wasmtime_wasi::p2::OutputStream> {
        self.0.p2_stream()
    }
}

impl<T: ?Sized + StdinStream + Sync> StdinStream for Shared<T> {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncRead + Send + Sync> {
        self.0.async_stream()
    }

    fn p2_stream(&self) -> Box<dyn wasmtime_wasi::p2::InputStream> {
        self.0.p2_stream()
    }
}
