//! `chroot-exec DIR -- COMMAND...`: the installer re-runs itself this way to start a host
//! program (systemctl) with the host's root, as unsafe `pre_exec` hooks are not allowed.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use crate::error::Error;

/// chroot to `dir`, chdir to `/`, exec `command`; returns only the error if any step fails.
pub fn exec(dir: &Path, command: &[OsString]) -> Error {
    let failed = |source| Error::ChrootExec { dir: dir.into(), command: display(command), source };
    if let Err(e) = std::os::unix::fs::chroot(dir) {
        return failed(e);
    }
    if let Err(e) = std::env::set_current_dir("/") {
        return failed(e);
    }
    let Some((program, args)) = command.split_first() else {
        return failed(std::io::Error::new(std::io::ErrorKind::InvalidInput, "no command given"));
    };
    failed(Command::new(program).args(args).exec())
}

fn display(command: &[OsString]) -> String {
    command.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ")
}
