//! `wait`: the DaemonSet's main container, idle after the install init container, until
//! the pod is deleted.

use nix::sys::signal::{SigSet, Signal};
use tracing::info;

use crate::error::{Error, Result};

/// Blocks until SIGTERM or SIGINT arrives. The signals are blocked and taken with
/// sigwait, which also works as PID 1 (where default actions are ignored).
pub fn until_terminated() -> Result<()> {
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    signals.thread_block().map_err(|source| Error::WaitSignal { source })?;
    info!("waiting for SIGTERM or SIGINT");
    let signal = signals.wait().map_err(|source| Error::WaitSignal { source })?;
    info!("received {signal}; exiting");
    Ok(())
}
