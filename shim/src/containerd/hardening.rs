//! Defence in depth for the shim server, the process that runs guests: once it has joined the
//! pod's network namespace, while it is the only thread (every later thread inherits all of
//! this), it sets no_new_privs, keeps only the capabilities in [`KEPT`] and installs a seccomp
//! allowlist of the syscalls wasmtime, tokio, hyper, ttrpc and the shim itself make. A guest
//! that escaped wasmtime would find no mount, ptrace, module loading, namespace changes, BPF,
//! keyrings or clock setting to use. docs/shim-security.md tells why each part is there.

use std::collections::BTreeMap;

use caps::{CapSet, Capability, CapsHashSet};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule, TargetArch,
};

/// `off` installs no seccomp filter, `log` one that allows what it would deny but has the
/// kernel log it (dmesg, audit: `type=1326 ... syscall=N`); anything else, or unset: enforce.
/// The shim server inherits containerd's environment, so it is set there.
pub const SECCOMP_ENV: &str = "SPORE_SECCOMP";

/// The capabilities the shim server keeps (bounding, permitted and effective sets; the
/// inheritable and ambient sets are emptied). It runs as root, so file permissions are
/// checked against uid 0 without its usual overrides:
/// - CAP_DAC_OVERRIDE: volumes are host directories kubelet prepared, often owned by the
///   pod's user or fsGroup (PVCs, `fsGroup`-chowned secrets with mode 0440), and the image's
///   files in containerd's snapshots may belong to any uid with any mode; the shim reads and
///   writes them for the guest as before. (It also covers reading and searching, so
///   CAP_DAC_READ_SEARCH is not kept.)
/// - CAP_FOWNER: a guest may set the times (WASI `filestat_set_times`) or the mode of files
///   in a writable volume that another uid owns.
/// - CAP_NET_BIND_SERVICE: an HTTP guest or the metrics listener may use a port below 1024
///   (80 is common) in the pod's network namespace.
///
/// Not kept, among others: CAP_SYS_ADMIN (the rootfs is read, not mounted: see `rootfs`),
/// CAP_CHOWN (WASI has no chown), CAP_KILL (the shim signals no process), CAP_NET_ADMIN and
/// CAP_NET_RAW (CNI set the network up before), CAP_SYS_PTRACE, CAP_SYS_MODULE, CAP_SETUID,
/// CAP_SETGID, CAP_SETPCAP (used once, here, to shrink the bounding set), CAP_MKNOD.
pub const KEPT: [Capability; 3] =
    [Capability::CAP_DAC_OVERRIDE, Capability::CAP_FOWNER, Capability::CAP_NET_BIND_SERVICE];

/// What [`SECCOMP_ENV`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeccompMode {
    Enforce,
    Log,
    Off,
}

impl SeccompMode {
    pub fn from_env(value: Option<&str>) -> Self {
        match value {
            Some("off") => Self::Off,
            Some("log") => Self::Log,
            _ => Self::Enforce,
        }
    }
}

/// Hardens the calling process; call it while it has one thread. Returns what was done,
/// for the log (the shim server's log is not open yet).
pub fn harden(mode: SeccompMode) -> Result<String, String> {
    nix::sys::prctl::set_no_new_privs().map_err(|e| format!("cannot set no_new_privs: {e}"))?;
    let kept = drop_capabilities()?;
    let seccomp = match mode {
        SeccompMode::Off => format!("no seccomp filter ({SECCOMP_ENV}=off)"),
        SeccompMode::Log | SeccompMode::Enforce => {
            apply_seccomp(mode)?;
            match mode {
                SeccompMode::Log => format!("seccomp filter logging, not denying ({SECCOMP_ENV}=log)"),
                _ => "seccomp filter enforcing".to_string(),
            }
        }
    };
    let mut kept: Vec<String> = kept.iter().map(|c| c.to_string()).collect();
    kept.sort();
    Ok(format!("no_new_privs, capabilities kept: [{}], {seccomp}", kept.join(", ")))
}

/// Drops every capability but [`KEPT`] (those the process has) from every set.
fn drop_capabilities() -> Result<CapsHashSet, String> {
    fn error(what: String) -> impl FnOnce(caps::errors::CapsError) -> String {
        move |e| format!("cannot {what}: {e}")
    }
    let permitted = caps::read(None, CapSet::Permitted).map_err(error("read the permitted capabilities".into()))?;
    let keep: CapsHashSet = KEPT.into_iter().filter(|c| permitted.contains(c)).collect();
    // The bounding set first: shrinking it takes CAP_SETPCAP, which goes next.
    if caps::has_cap(None, CapSet::Effective, Capability::CAP_SETPCAP).unwrap_or(false) {
        for cap in caps::read(None, CapSet::Bounding).map_err(error("read the bounding set".into()))? {
            if !keep.contains(&cap) {
                caps::drop(None, CapSet::Bounding, cap).map_err(error(format!("drop {cap} from the bounding set")))?;
            }
        }
    }
    caps::clear(None, CapSet::Ambient).map_err(error("clear the ambient capabilities".into()))?;
    caps::clear(None, CapSet::Inheritable).map_err(error("clear the inheritable capabilities".into()))?;
    caps::set(None, CapSet::Effective, &keep).map_err(error("set the effective capabilities".into()))?;
    caps::set(None, CapSet::Permitted, &keep).map_err(error("set the permitted capabilities".into()))?;
    Ok(keep)
}

fn apply_seccomp(mode: SeccompMode) -> Result<(), String> {
    // TSYNC: the process has one thread now, but the filters must hold for all of them.
    for filter in filters(mode, std::process::id())? {
        seccompiler::apply_filter_all_threads(&filter).map_err(|e| {
            format!("cannot install the seccomp filter: {e} (set {SECCOMP_ENV}=off on a kernel without seccomp)")
        })?;
    }
    Ok(())
}

/// The two programs to install, in this order, for a process whose pid is `pid`.
///
/// 1. The allowlist. A syscall not on it fails with EPERM rather than killing the process:
///    the shim runs every guest of the pod and holds containerd's view of them, so a denied
///    call made by some library path nobody foresaw (a probe, a fallback, a new glibc) must
///    show as an error that code handles and logs, not take every pod's guest down with a
///    SIGSYS. EPERM gives an attacker nothing that killing would have withheld.
/// 2. `clone3` fails with ENOSYS: its flags live in memory, where seccomp cannot look, so
///    it cannot be allowed without namespace flags; glibc then falls back to `clone`, whose
///    flags are filtered (Docker's default profile does the same). Installed last, its errno
///    wins over the allowlist's EPERM (seccomp(2): the most recent filter's value is used
///    among actions of the same precedence).
pub fn filters(mode: SeccompMode, pid: u32) -> Result<Vec<BpfProgram>, String> {
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| format!("seccomp: {e}"))?;
    let denied = match mode {
        SeccompMode::Log => SeccompAction::Log,
        _ => SeccompAction::Errno(libc::EPERM as u32),
    };
    let allowlist = SeccompFilter::new(allowed(pid)?, denied, SeccompAction::Allow, arch);
    let clone3 = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, vec![])]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    );
    [allowlist, clone3]
        .into_iter()
        .map(|filter| filter.and_then(BpfProgram::try_from).map_err(|e| format!("seccomp filter: {e}")))
        .collect()
}

/// Namespace flags of clone(2) (CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID,
/// NEWNET), as in Docker's default profile. CLONE_NEWTIME (0x80) is not a clone(2) flag:
/// that bit is part of the exit signal there.
const CLONE_NAMESPACES: u64 = 0x7E02_0000;

/// Syscalls allowed without condition.
const ALLOWED: &[i64] = &[
    // Files: the code cache, the bundle, the image's layers, FIFOs, volumes (cap-std, WASI).
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_pread64,
    libc::SYS_pwrite64,
    libc::SYS_preadv,
    libc::SYS_pwritev,
    libc::SYS_preadv2,
    libc::SYS_pwritev2,
    libc::SYS_openat,
    libc::SYS_openat2,
    libc::SYS_close,
    libc::SYS_close_range,
    libc::SYS_fstat,
    libc::SYS_newfstatat,
    libc::SYS_statx,
    libc::SYS_statfs,
    libc::SYS_fstatfs,
    libc::SYS_lseek,
    libc::SYS_faccessat,
    libc::SYS_faccessat2,
    libc::SYS_getdents64,
    libc::SYS_mkdirat,
    libc::SYS_unlinkat,
    libc::SYS_renameat,
    libc::SYS_renameat2,
    libc::SYS_linkat,
    libc::SYS_symlinkat,
    libc::SYS_readlinkat,
    libc::SYS_fchmod,
    libc::SYS_fchmodat,
    libc::SYS_fchmodat2,
    libc::SYS_utimensat,
    libc::SYS_fsync,
    libc::SYS_fdatasync,
    libc::SYS_ftruncate,
    libc::SYS_truncate,
    libc::SYS_fallocate,
    libc::SYS_fadvise64,
    libc::SYS_flock,
    libc::SYS_fcntl,
    libc::SYS_dup,
    libc::SYS_dup3,
    libc::SYS_pipe2,
    libc::SYS_getcwd,
    libc::SYS_chdir,
    libc::SYS_fchdir,
    libc::SYS_umask,
    libc::SYS_sendfile,
    libc::SYS_copy_file_range,
    libc::SYS_splice,
    libc::SYS_ppoll,
    libc::SYS_pselect6,
    // Memory: wasmtime maps, protects (JIT code, guard pages), decommits and resets
    // instance memories; glibc's allocator.
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mprotect,
    libc::SYS_madvise,
    libc::SYS_mremap,
    libc::SYS_brk,
    libc::SYS_msync,
    libc::SYS_memfd_create,
    libc::SYS_membarrier,
    libc::SYS_pkey_alloc,
    libc::SYS_pkey_free,
    libc::SYS_pkey_mprotect,
    // Threads and time: tokio's workers, wasmtime's compiler threads and epoch ticker.
    libc::SYS_futex,
    libc::SYS_set_robust_list,
    libc::SYS_get_robust_list,
    libc::SYS_rseq,
    libc::SYS_set_tid_address,
    libc::SYS_sched_yield,
    libc::SYS_sched_getaffinity,
    libc::SYS_nanosleep,
    libc::SYS_clock_nanosleep,
    libc::SYS_clock_gettime,
    libc::SYS_clock_getres,
    libc::SYS_gettimeofday,
    libc::SYS_getrusage,
    libc::SYS_times,
    libc::SYS_exit,
    libc::SYS_exit_group,
    libc::SYS_restart_syscall,
    libc::SYS_prctl,
    // Installs the second filter after the first; more filters can only deny more.
    libc::SYS_seccomp,
    libc::SYS_getrandom,
    libc::SYS_uname,
    libc::SYS_sysinfo,
    libc::SYS_getcpu,
    libc::SYS_gettid,
    libc::SYS_getpid,
    libc::SYS_getppid,
    libc::SYS_getuid,
    libc::SYS_geteuid,
    libc::SYS_getgid,
    libc::SYS_getegid,
    libc::SYS_getgroups,
    libc::SYS_getresuid,
    libc::SYS_getresgid,
    // Signals: wasmtime turns faults into traps with its own handlers on an alternate stack.
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigreturn,
    libc::SYS_sigaltstack,
    // tokio's event loop.
    libc::SYS_epoll_create1,
    libc::SYS_epoll_ctl,
    libc::SYS_epoll_pwait,
    libc::SYS_epoll_pwait2,
    libc::SYS_eventfd2,
    // Sockets: ttrpc (containerd), gRPC (the content store), the guests' listeners,
    // connections and DNS.
    libc::SYS_socketpair,
    libc::SYS_bind,
    libc::SYS_listen,
    libc::SYS_accept4,
    libc::SYS_connect,
    libc::SYS_getsockname,
    libc::SYS_getpeername,
    libc::SYS_getsockopt,
    libc::SYS_setsockopt,
    libc::SYS_sendto,
    libc::SYS_recvfrom,
    libc::SYS_sendmsg,
    libc::SYS_recvmsg,
    libc::SYS_sendmmsg,
    libc::SYS_recvmmsg,
    libc::SYS_shutdown,
];

/// The older x86_64 entry points of the same calls, which glibc and Rust's std still use.
#[cfg(target_arch = "x86_64")]
const ALLOWED_LEGACY: &[i64] = &[
    libc::SYS_open,
    libc::SYS_stat,
    libc::SYS_lstat,
    libc::SYS_access,
    libc::SYS_pipe,
    libc::SYS_poll,
    libc::SYS_select,
    libc::SYS_dup2,
    libc::SYS_mkdir,
    libc::SYS_rmdir,
    libc::SYS_unlink,
    libc::SYS_rename,
    libc::SYS_link,
    libc::SYS_symlink,
    libc::SYS_readlink,
    libc::SYS_chmod,
    libc::SYS_getdents,
    libc::SYS_epoll_create,
    libc::SYS_epoll_wait,
    libc::SYS_eventfd,
    libc::SYS_accept,
    libc::SYS_getrlimit,
    libc::SYS_arch_prctl,
    libc::SYS_time,
];
#[cfg(not(target_arch = "x86_64"))]
const ALLOWED_LEGACY: &[i64] = &[];

/// The ioctls the shim's code makes: non-blocking and close-on-exec flags (std, mio),
/// terminal probes (WASI's isatty), bytes waiting, and PAGEMAP_SCAN on its own
/// /proc/self/pagemap (the instance pool resets only the pages a request dirtied). Any
/// other ioctl is denied: that is most of the kernel's driver surface.
const IOCTLS: &[u64] =
    &[libc::FIONBIO, libc::FIOCLEX, libc::FIONCLEX, libc::FIONREAD, libc::TCGETS, libc::TIOCGWINSZ, PAGEMAP_SCAN];

/// `_IOWR('f', 16, struct pm_scan_arg)` (96 bytes) from linux/fs.h; the libc crate lacks it.
const PAGEMAP_SCAN: u64 = 0xc060_6610;

/// The socket families: unix (containerd), IPv4 and IPv6 (guests), netlink (glibc's
/// getaddrinfo asks the kernel for the interfaces' addresses).
const SOCKET_FAMILIES: &[i32] = &[libc::AF_UNIX, libc::AF_INET, libc::AF_INET6, libc::AF_NETLINK];

/// The allowlist, with argument conditions where a call is safe only in some uses.
pub fn allowed(pid: u32) -> Result<BTreeMap<i64, Vec<SeccompRule>>, String> {
    let condition = |arg: u8, len: SeccompCmpArgLen, op: SeccompCmpOp, value: u64| {
        SeccompCondition::new(arg, len, op, value).map_err(|e| format!("seccomp rule: {e}"))
    };
    let all =
        |conditions: Vec<SeccompCondition>| SeccompRule::new(conditions).map_err(|e| format!("seccomp rule: {e}"));
    let rule =
        |arg: u8, len: SeccompCmpArgLen, op: SeccompCmpOp, value: u64| all(vec![condition(arg, len, op, value)?]);
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        ALLOWED.iter().chain(ALLOWED_LEGACY).map(|nr| (*nr, vec![])).collect();
    // Threads, never new namespaces.
    rules.insert(libc::SYS_clone, vec![rule(0, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(CLONE_NAMESPACES), 0)?]);
    // Signals to this process's own threads only (abort, Rust's std); other root processes
    // are not the shim's to signal, with or without CAP_KILL.
    rules.insert(libc::SYS_tgkill, vec![rule(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, u64::from(pid))?]);
    // Its own limits only (pid 0); another root process's could be lowered without any capability.
    rules.insert(libc::SYS_prlimit64, vec![rule(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, 0)?]);
    // A thread may only demote itself to idle priority (the background compiler's threads).
    rules.insert(
        libc::SYS_sched_setscheduler,
        vec![all(vec![
            condition(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, 0)?,
            condition(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, libc::SCHED_IDLE as u64)?,
        ])?],
    );
    rules.insert(
        libc::SYS_socket,
        SOCKET_FAMILIES
            .iter()
            .map(|family| rule(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, *family as u64))
            .collect::<Result<_, _>>()?,
    );
    rules.insert(
        libc::SYS_ioctl,
        IOCTLS
            .iter()
            .map(|request| rule(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, *request))
            .collect::<Result<_, _>>()?,
    );
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Calls a hardened shim must never make, whatever a guest does.
    const MUST_DENY: &[(&str, i64)] = &[
        ("mount", libc::SYS_mount),
        ("umount2", libc::SYS_umount2),
        ("pivot_root", libc::SYS_pivot_root),
        ("chroot", libc::SYS_chroot),
        ("setns", libc::SYS_setns),
        ("unshare", libc::SYS_unshare),
        ("ptrace", libc::SYS_ptrace),
        ("process_vm_readv", libc::SYS_process_vm_readv),
        ("process_vm_writev", libc::SYS_process_vm_writev),
        ("init_module", libc::SYS_init_module),
        ("finit_module", libc::SYS_finit_module),
        ("delete_module", libc::SYS_delete_module),
        ("kexec_load", libc::SYS_kexec_load),
        ("kexec_file_load", libc::SYS_kexec_file_load),
        ("bpf", libc::SYS_bpf),
        ("perf_event_open", libc::SYS_perf_event_open),
        ("keyctl", libc::SYS_keyctl),
        ("add_key", libc::SYS_add_key),
        ("request_key", libc::SYS_request_key),
        ("reboot", libc::SYS_reboot),
        ("swapon", libc::SYS_swapon),
        ("swapoff", libc::SYS_swapoff),
        ("acct", libc::SYS_acct),
        ("settimeofday", libc::SYS_settimeofday),
        ("clock_settime", libc::SYS_clock_settime),
        ("clock_adjtime", libc::SYS_clock_adjtime),
        ("adjtimex", libc::SYS_adjtimex),
        ("open_by_handle_at", libc::SYS_open_by_handle_at),
        ("name_to_handle_at", libc::SYS_name_to_handle_at),
        #[cfg(target_arch = "x86_64")]
        ("iopl", libc::SYS_iopl),
        #[cfg(target_arch = "x86_64")]
        ("ioperm", libc::SYS_ioperm),
        ("execve", libc::SYS_execve),
        ("execveat", libc::SYS_execveat),
        ("kill", libc::SYS_kill),
        ("tkill", libc::SYS_tkill),
        ("pidfd_open", libc::SYS_pidfd_open),
        ("pidfd_send_signal", libc::SYS_pidfd_send_signal),
        ("capset", libc::SYS_capset),
        ("setuid", libc::SYS_setuid),
        ("mknodat", libc::SYS_mknodat),
        ("fchownat", libc::SYS_fchownat),
        ("io_uring_setup", libc::SYS_io_uring_setup),
        ("userfaultfd", libc::SYS_userfaultfd),
        ("clone3", libc::SYS_clone3),
    ];

    #[test]
    fn the_allowlist_leaves_out_every_dangerous_call() {
        let allowed = allowed(1).unwrap();
        for (name, nr) in MUST_DENY {
            assert!(!allowed.contains_key(nr), "{name} is allowed");
        }
        for (name, nr) in [("clone", libc::SYS_clone), ("socket", libc::SYS_socket), ("ioctl", libc::SYS_ioctl)] {
            assert!(!allowed[&nr].is_empty(), "{name} is allowed without conditions");
        }
    }

    #[test]
    fn the_filters_compile_for_this_machine() {
        for mode in [SeccompMode::Enforce, SeccompMode::Log] {
            let programs = filters(mode, 1).unwrap();
            assert_eq!(programs.len(), 2);
            assert!(programs.iter().all(|p| !p.is_empty() && p.len() < 4096), "BPF programs are at most 4096 long");
        }
    }

    #[test]
    fn the_mode_is_enforcing_unless_told_otherwise() {
        let cases = [(None, SeccompMode::Enforce), (Some("off"), SeccompMode::Off), (Some("log"), SeccompMode::Log)];
        for (value, mode) in
            cases.into_iter().chain([(Some("0"), SeccompMode::Enforce), (Some(""), SeccompMode::Enforce)])
        {
            assert_eq!(SeccompMode::from_env(value), mode, "{value:?}");
        }
    }

    /// Set in the child process [`a_filtered_process_cannot_mount_trace_or_load_modules_but_runs_guests`]
    /// runs: a filter cannot be taken off, so the test binary itself stays unfiltered.
    const CHILD_ENV: &str = "SPORE_TEST_SECCOMP_CHILD";

    #[test]
    fn a_filtered_process_cannot_mount_trace_or_load_modules_but_runs_guests() {
        if std::env::var_os(CHILD_ENV).is_some() {
            return filtered_child();
        }
        let name =
            "containerd::hardening::tests::a_filtered_process_cannot_mount_trace_or_load_modules_but_runs_guests";
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", name, "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, "1")
            .output()
            .unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "the filtered child failed:\n{stdout}\n{stderr}");
        assert!(stdout.contains("filtered child: all checks passed"), "{stdout}\n{stderr}");
    }

    /// Runs as root with every capability: each EPERM below is the filter's.
    fn filtered_child() {
        use nix::errno::Errno;
        let dir = tempfile::tempdir().unwrap();
        nix::sys::prctl::set_no_new_privs().unwrap();
        // A thread made before the filter, to show TSYNC covers it.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let early = std::thread::spawn(move || {
            rx.recv().unwrap();
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        });
        apply_seccomp(SeccompMode::Enforce).unwrap();

        let none: Option<&str> = None;
        let mounted = nix::mount::mount(Some("tmpfs"), dir.path(), Some("tmpfs"), nix::mount::MsFlags::empty(), none);
        assert_eq!(mounted, Err(Errno::EPERM), "mount");
        let parent = nix::unistd::getppid();
        assert_eq!(nix::sys::ptrace::attach(parent), Err(Errno::EPERM), "ptrace");
        assert_eq!(nix::kmod::init_module(b"\0", c""), Err(Errno::EPERM), "init_module");
        assert_eq!(nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER), Err(Errno::EPERM), "unshare");
        let netns = std::fs::File::open("/proc/self/ns/net").unwrap();
        assert_eq!(nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET), Err(Errno::EPERM), "setns");
        assert_eq!(nix::unistd::chroot(dir.path()), Err(Errno::EPERM), "chroot");
        assert_eq!(nix::sys::signal::kill(parent, None), Err(Errno::EPERM), "kill");
        tx.send(()).unwrap();
        assert_eq!(early.join().unwrap(), Err(Errno::EPERM), "unshare on a thread started before the filter");
        let spawned = std::process::Command::new("/bin/true").status();
        assert_eq!(spawned.map_err(|e| e.raw_os_error()).err(), Some(Some(libc::EPERM)), "fork and exec");

        // What the shim does: files, threads (clone3 falls back to clone), tokio, sockets (the
        // announcement too), wasmtime.
        std::fs::write(dir.path().join("f"), b"data").unwrap();
        assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"data");
        let big = vec![7u8; 64 << 20];
        assert_eq!(std::thread::spawn(move || big.iter().map(|b| *b as u64).sum::<u64>()).join().unwrap(), 7 << 26);
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let connect = tokio::net::TcpStream::connect(listener.local_addr().unwrap());
            let (accepted, connected) = tokio::join!(listener.accept(), connect);
            accepted.unwrap();
            connected.unwrap();
            // The announcement to the activator: an outbound TCP connection, write, read.
            let to = listener.local_addr().unwrap();
            let activator = tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut request = [0u8; 512];
                let _ = stream.read(&mut request).await.unwrap();
                stream.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await.unwrap();
            });
            let announce = crate::containerd::announce::Announce {
                to,
                namespace: "apps".into(),
                pod: "p".into(),
                uid: "u".into(),
                token: "t".into(),
            };
            assert_eq!(announce.send(8080).await.unwrap(), "HTTP/1.1 204 No Content");
            activator.await.unwrap();
            let socket = dir.path().join("s");
            let unix = tokio::net::UnixListener::bind(&socket).unwrap();
            let (accepted, connected) = tokio::join!(unix.accept(), tokio::net::UnixStream::connect(&socket));
            accepted.unwrap();
            connected.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;

            let engine = crate::Engine::new(crate::EngineConfig {
                cache_dir: Some(dir.path().join("cache")),
                ..crate::EngineConfig::default()
            })
            .unwrap();
            let wasm = engine
                .load(br#"(module (memory 1) (func (export "_start") (i32.store (i32.const 8) (i32.const 42))) (export "memory" (memory 0)))"#)
                .unwrap();
            let sandbox = crate::Sandbox::new(crate::AppConfig::default(), crate::Stdio::null()).unwrap();
            assert_eq!(crate::run_command(&wasm, &sandbox).await.unwrap().code, 0);
            let trap = engine.load(br#"(module (func (export "_start") unreachable))"#).unwrap();
            let exit = crate::run_command(&trap, &sandbox).await.unwrap();
            assert_eq!(exit.code, crate::TRAP_EXIT_CODE, "a trap is caught by wasmtime's signal handler");

            // An HTTP component starts on baseline code; the optimized code is compiled on
            // threads that demote themselves to idle priority, which the filter allows.
            let http = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/guests/http.wasm"))
                .expect("target/guests/http.wasm (make guests)");
            let wasm = engine.for_requests(2).unwrap().load(&http).unwrap();
            assert_eq!(wasm.tier(), crate::Tier::Baseline);
            assert_eq!(wasm.optimized().await.map(|w| w.tier()), Some(crate::Tier::Optimized));
        });
        std::thread::spawn(scheduling_checks).join().unwrap();
        println!("filtered child: all checks passed");
    }

    /// A thread may demote itself to idle priority, and do nothing else with scheduling.
    #[allow(unsafe_code)]
    fn scheduling_checks() {
        let set = |pid: libc::pid_t, policy: libc::c_int, priority: libc::c_int| {
            let param = libc::sched_param { sched_priority: priority };
            // SAFETY: `param` outlives the call.
            match unsafe { libc::sched_setscheduler(pid, policy, &param) } {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error().raw_os_error()),
            }
        };
        let parent = nix::unistd::getppid().as_raw();
        assert_eq!(set(parent, libc::SCHED_IDLE, 0), Err(Some(libc::EPERM)), "another process's policy");
        assert_eq!(set(0, libc::SCHED_FIFO, 1), Err(Some(libc::EPERM)), "real-time priority");
        assert_eq!(set(0, libc::SCHED_IDLE, 0), Ok(()), "idle priority for itself");
    }
}
