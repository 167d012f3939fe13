//! The shim server under a real containerd keeps only what running guests needs: the
//! kernel's view of the running shim (`/proc/PID/status` of each of its threads) shows
//! no_new_privs, the seccomp filters and the reduced capability sets, and the rootfs is read
//! without a mount, from overlayfs and native snapshots alike. That the filter denies mount,
//! ptrace and module loading while guests run is shown by the unit test in
//! `src/containerd/hardening.rs`. Needs root and `make deps`.

mod common;
mod harness;

use harness::{Containerd, OutputExt, SPORE, probe_image};

/// CAP_DAC_OVERRIDE (1), CAP_FOWNER (3), CAP_NET_BIND_SERVICE (10): `hardening::KEPT`.
const KEPT: u64 = 1 << 1 | 1 << 3 | 1 << 10;

fn status_field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {key} in {status}"))
        .trim()
}

#[test]
fn the_shim_server_runs_with_no_new_privs_seccomp_and_only_the_kept_capabilities() {
    let ctrd = Containerd::start();
    let image = probe_image(&ctrd);
    ctrd.start_detached(&image, "hardened", SPORE, &["/probe.wasm", "loop"]);
    let shim = ctrd.task("hardened").expect("task listed").pid;
    let threads: Vec<_> = std::fs::read_dir(format!("/proc/{shim}/task")).unwrap().map(|t| t.unwrap().path()).collect();
    assert!(threads.len() > 2, "the shim runs tokio's and wasmtime's threads: {threads:?}");
    for thread in threads {
        let status = std::fs::read_to_string(thread.join("status")).unwrap();
        let caps = |key| u64::from_str_radix(status_field(&status, key), 16).unwrap();
        assert_eq!(status_field(&status, "NoNewPrivs"), "1", "{}", thread.display());
        assert_eq!(status_field(&status, "Seccomp"), "2", "filter mode on {}", thread.display());
        assert_eq!(status_field(&status, "Seccomp_filters"), "2", "{}", thread.display());
        for key in ["CapEff", "CapPrm", "CapBnd"] {
            assert_eq!(caps(key), KEPT, "{key} of {}: {:#x}", thread.display(), caps(key));
        }
        for key in ["CapInh", "CapAmb"] {
            assert_eq!(caps(key), 0, "{key} of {}", thread.display());
        }
    }
    let log = ctrd.log();
    assert!(log.contains("shim server hardened: no_new_privs, capabilities kept: [CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_NET_BIND_SERVICE], seccomp filter enforcing"), "{log}");
    assert_eq!(ctrd.stop_and_remove("hardened", "SIGKILL"), 137);
    ctrd.assert_clean();
}

#[test]
fn the_entrypoint_is_read_from_overlayfs_and_native_snapshots_without_a_mount() {
    let ctrd = Containerd::start();
    let image = probe_image(&ctrd);
    for snapshotter in ["overlayfs", "native"] {
        let id = format!("from-{snapshotter}");
        let out =
            ctrd.run_detached_with_flags(&["--snapshotter", snapshotter], &image, &id, SPORE, &["/probe.wasm", "loop"]);
        assert!(out.status.success(), "{snapshotter}: {}\n{}", out.stderr_text(), ctrd.log());
        ctrd.wait_for_status(&id, "RUNNING", std::time::Duration::from_secs(10));
        let rootfs = ctrd.bundle(&id).join("rootfs").display().to_string();
        let mounts = ctrd.leftover_mounts();
        assert!(!mounts.iter().any(|m| m.starts_with(&rootfs)), "{snapshotter}: the rootfs is mounted: {mounts:?}");
        assert_eq!(ctrd.stop_and_remove(&id, "SIGKILL"), 137);
    }
    let out = ctrd.run_with_flags(&["--snapshotter", "native"], &image, "native-missing", SPORE, &["/missing.wasm"]);
    assert!(out.stderr_text().contains("/missing.wasm: not found in the image"), "{}", out.stderr_text());
    ctrd.assert_clean();
}
