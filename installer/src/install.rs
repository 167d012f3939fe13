//! `install` and `uninstall`: observe the node, compute the desired shim and drop-in, apply
//! what differs, restart containerd and verify, and put everything back if that fails.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use toml::Table;
use tracing::{info, warn};

use crate::cli::NodeOptions;
use crate::config::{self, MainConfig};
use crate::dropin::{self, DropIn, ShimRuntime};
use crate::error::{Error, Result};
use crate::files::{self, Replacement};
use crate::host::HostRoot;
use crate::labels;
use crate::node;
use crate::process::Containerd;
use crate::verify;

/// The shim's file name: containerd derives it from the runtime type `io.containerd.spore.v1`
/// (containerd 2.x; 1.x drop-ins name the file by its path, see [`ShimRuntime`]).
pub const SHIM_NAME: &str = "containerd-shim-spore-v1";
const SHIM_MODE: u32 = 0o755;
const DROPIN_MODE: u32 = 0o644;

pub fn install(options: &NodeOptions) -> Result<()> {
    check_options(options)?;
    let setup = Setup::observe(options)?;
    let dropin_path = setup.config.dropin_dir()?.join(dropin::file_name(&options.handler));
    let shim_path = options.install_dir.join(SHIM_NAME);
    let shim_runtime = ShimRuntime::new(setup.config.version, &shim_path);

    let replaced = if setup.config.version.imports_replace_plugin_sections() {
        setup.refuse_second_handler(&dropin_path)?;
        setup.cri_section_besides(&dropin_path)?
    } else {
        None
    };
    let dropin = DropIn {
        version: setup.config.version,
        handler: &options.handler,
        shim: &shim_path,
        replaced_cri_section: replaced.as_ref().map(|(path, section)| (path.as_path(), section)),
    }
    .render();
    let shim = fs::read(&options.shim).map_err(Error::io("read the shim binary", &options.shim))?;

    let shim_change = Replacement::plan(&setup.host.path(&shim_path), &shim, SHIM_MODE)?;
    log_plan("shim", &shim_path, shim_change.as_ref(), &format!(" (sha256 {})", files::sha256_hex(&shim)));
    let dropin_change = Replacement::plan(&setup.host.path(&dropin_path), dropin.as_bytes(), DROPIN_MODE)?;
    log_plan("drop-in", &dropin_path, dropin_change.as_ref(), "");
    let changes: Vec<Replacement> = [shim_change, dropin_change].into_iter().flatten().collect();

    if changes.is_empty() {
        info!("nothing changed: containerd not restarted");
        setup.verify(&shim_runtime)?;
    } else {
        if options.restart {
            setup.containerd.find()?; // fail before touching anything
        }
        for dir in [&options.install_dir, dropin_path.parent().expect("a file in the drop-in dir")] {
            files::create_dir_all(&setup.host.path(dir))?;
        }
        apply_all(&changes)?;
        if !options.restart {
            info!(
                "containerd not restarted (restart=false): the handler works after its next restart; \
                 the Node is labelled by an install run after that"
            );
            return Ok(());
        }
        if let Err(failure) = setup.containerd.restart().and_then(|()| setup.verify(&shim_runtime)) {
            return Err(setup.roll_back(failure, &changes));
        }
    }

    if let Some(name) = &options.node_name {
        let patch = node::ready_patch(options.runtime_class(), env!("CARGO_PKG_VERSION"));
        node::patch_node(name, "label", &patch)?;
        info!("node {name}: labelled {}={}", labels::ready_label(options.runtime_class()), labels::READY);
    }
    Ok(())
}

pub fn uninstall(options: &NodeOptions) -> Result<()> {
    check_options(options)?;
    // First, so nothing new is scheduled here while the handler goes away.
    if let Some(name) = &options.node_name {
        node::patch_node(name, "unlabel", &node::removal_patch(options.runtime_class()))?;
        info!("node {name}: removed label {}", labels::ready_label(options.runtime_class()));
    }
    let host = HostRoot::new(&options.host_root);
    if !host.path(&options.config_path).exists() {
        // Install cannot have succeeded without it: there is no drop-in, and no containerd
        // that could still use the shim.
        info!("containerd config {}: does not exist; no drop-in to remove", options.config_path.display());
        let shim = options.install_dir.join(SHIM_NAME);
        let removed = files::remove_if_present(&host.path(&shim))?;
        info!("shim {}: {}", shim.display(), if removed { "removed" } else { "not present" });
        return Ok(());
    }
    let setup = Setup::observe(options)?;
    match setup.config.dropin_dir() {
        Ok(dir) => {
            let path = dir.join(dropin::file_name(&options.handler));
            if !files::remove_if_present(&setup.host.path(&path))? {
                info!("drop-in {}: not present", path.display());
            } else if options.restart {
                info!("drop-in {}: removed", path.display());
                setup.containerd.restart()?;
            } else {
                info!("drop-in {}: removed; containerd not restarted (restart=false)", path.display());
            }
        }
        // install refuses such configs: there is no drop-in of ours.
        Err(Error::NoDropInDir { .. } | Error::RelativeDropInGlob { .. }) => {
            info!("containerd imports no usable drop-in directory: no drop-in to remove")
        }
        Err(e) => return Err(e),
    }
    let shim = options.install_dir.join(SHIM_NAME);
    let users = setup.shim_users(&shim)?;
    if !users.is_empty() {
        info!("shim {}: kept, other runtime handlers use it ({users:?})", shim.display());
        return Ok(());
    }
    let removed = files::remove_if_present(&setup.host.path(&shim))?;
    info!("shim {}: {}", shim.display(), if removed { "removed" } else { "not present" });
    Ok(())
}

/// The names must be valid labels, the install dir absolute: containerd 1.x runs a runtime
/// type as the shim's path only when it is absolute (see [`ShimRuntime`]).
fn check_options(options: &NodeOptions) -> Result<()> {
    let invalid = |what: &'static str, name: &str| {
        let name = name.to_string();
        move |reason| Error::InvalidName { what, name, reason }
    };
    labels::check_handler(&options.handler).map_err(invalid("handler", &options.handler))?;
    labels::check_runtime_class(options.runtime_class()).map_err(invalid("runtime class", options.runtime_class()))?;
    if !options.install_dir.is_absolute() {
        let dir = options.install_dir.to_string_lossy();
        return Err(invalid("install dir", &dir)("not an absolute host path".into()));
    }
    Ok(())
}

fn log_plan(what: &str, path: &Path, change: Option<&Replacement>, detail: &str) {
    let verb = match change {
        None => "unchanged",
        Some(change) if change.creates() => "installing",
        Some(_) => "updating",
    };
    info!("{what} {}: {verb}{detail}", path.display());
}

/// Applies every change, or none: a failure undoes the ones already applied.
fn apply_all(changes: &[Replacement]) -> Result<()> {
    for (done, change) in changes.iter().enumerate() {
        if let Err(failure) = change.apply() {
            if done == 0 {
                return Err(failure);
            }
            let restore_error = undo_all(&changes[..done]).err().map(Box::new);
            return Err(Error::RolledBack { failure: Box::new(failure), restore_error, restart_error: None });
        }
    }
    Ok(())
}

/// Undoes every change (latest first), even after one fails; returns the first failure.
fn undo_all(changes: &[Replacement]) -> Result<()> {
    let results: Vec<Result<()>> = changes.iter().rev().map(Replacement::undo).collect();
    results.into_iter().collect()
}

/// Opens containerd's main config with an exclusive advisory lock (flock: the file is not
/// modified). Installers of several runtime classes on one node take turns this way, so
/// no restart or rollback overlaps another.
fn lock_config(path: &Path) -> Result<fs::File> {
    let file = fs::File::open(path).map_err(Error::io("read containerd config", path))?;
    match file.try_lock() {
        Ok(()) => return Ok(file),
        Err(fs::TryLockError::WouldBlock) => info!("waiting for another installer working on this containerd"),
        Err(fs::TryLockError::Error(e)) => return Err(Error::io("lock", path)(e)),
    }
    file.lock().map_err(Error::io("lock", path))?;
    Ok(file)
}

/// The node as install and uninstall see it.
struct Setup<'a> {
    options: &'a NodeOptions,
    host: HostRoot,
    config: MainConfig,
    containerd: Containerd,
    /// Held until done: see [`lock_config`].
    _lock: fs::File,
}

impl<'a> Setup<'a> {
    fn observe(options: &'a NodeOptions) -> Result<Setup<'a>> {
        let host = HostRoot::new(&options.host_root);
        let file = host.path(&options.config_path);
        let mut lock = lock_config(&file)?;
        let mut text = String::new();
        lock.read_to_string(&mut text).map_err(Error::io("read containerd config", &file))?;
        let config = MainConfig::parse(&options.config_path, &text)?;
        info!(
            "containerd config {}: version {}, socket {}, imports {:?}",
            config.path.display(),
            config.version.number(),
            config.grpc_address.display(),
            config.imports
        );
        let self_exe = std::env::current_exe().map_err(Error::io("locate", "/proc/self/exe"))?;
        let containerd = Containerd {
            proc_root: PathBuf::from("/proc"),
            host: host.clone(),
            config_path: options.config_path.clone(),
            socket: config.grpc_address.clone(),
            self_exe,
        };
        Ok(Setup { options, host, config, containerd, _lock: lock })
    }

    fn verify(&self, shim: &ShimRuntime) -> Result<()> {
        let socket = self.host.path(&self.config.grpc_address);
        verify::verify(&self.options.crictl, &socket, &self.options.handler, shim)?;
        info!("handler {}: verified, `crictl info` lists it with its runtime type and path", self.options.handler);
        Ok(())
    }

    /// Restores the files, restarts containerd on them, and returns the error to report.
    fn roll_back(&self, failure: Error, changes: &[Replacement]) -> Error {
        warn!("{failure}; rolling back");
        // Restart even if a file could not be restored: containerd must run either way.
        let restore_error = undo_all(changes).err().map(Box::new);
        let restart_error = self.containerd.restart().err().map(Box::new);
        Error::RolledBack { failure: Box::new(failure), restore_error, restart_error }
    }

    /// containerd 1.x: the CRI section our drop-in replaces (see [`config::cri_section_besides_ours`]).
    fn cri_section_besides(&self, ours: &Path) -> Result<Option<(PathBuf, Table)>> {
        config::cri_section_besides_ours(self.config.version, &self.config_files(Some(ours))?, ours)
    }

    /// The main config, then the imported files in containerd's order; `ours` (our drop-in,
    /// existing or not) is among them as an empty table.
    fn config_files(&self, ours: Option<&Path>) -> Result<Vec<(PathBuf, Table)>> {
        let mut files = vec![(self.config.path.clone(), self.config.table.clone())];
        for import in &self.config.imports {
            for path in self.expand_import(import, ours)? {
                let table = if Some(path.as_path()) == ours { Table::new() } else { self.read_imported(&path)? };
                files.push((path, table));
            }
        }
        Ok(files)
    }

    /// containerd 1.x: another handler's Spore drop-in would replace ours whole, or ours it.
    fn refuse_second_handler(&self, ours: &Path) -> Result<()> {
        let Some(dir) = ours.parent() else { return Ok(()) };
        let Ok(entries) = fs::read_dir(self.host.path(dir)) else { return Ok(()) };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = dir.join(&name);
            let spore_dropin = config::glob_match(&dropin::file_name("*"), &name) && path != ours;
            if spore_dropin && fs::read_to_string(entry.path()).is_ok_and(|text| dropin::is_managed(&text)) {
                return Err(Error::OneHandlerOnContainerd1 { other: path });
            }
        }
        Ok(())
    }

    /// Config files (the main one and what it imports) whose runtimes still run `shim`.
    fn shim_users(&self, shim: &Path) -> Result<Vec<PathBuf>> {
        let files = self.config_files(None)?;
        let uses = |table: &Table| config::runs_shim(table, self.config.version, shim);
        Ok(files.into_iter().filter(|(_, table)| uses(table)).map(|(path, _)| path).collect())
    }

    /// The files an `imports` entry names, in containerd's order (a glob's matches sorted),
    /// counting `ours` among them even before it exists.
    fn expand_import(&self, import: &Path, ours: Option<&Path>) -> Result<Vec<PathBuf>> {
        if import.is_relative() {
            warn!("import {}: relative glob, its directory is unknown; ignoring it", import.display());
            return Ok(Vec::new());
        }
        if !config::is_glob(import) {
            return Ok(vec![import.into()]);
        }
        let (Some(dir), Some(pattern)) = (import.parent(), import.file_name().and_then(|p| p.to_str())) else {
            return Ok(Vec::new());
        };
        if config::is_glob(dir) {
            warn!("import {}: wildcards in directories are not followed; ignoring it", import.display());
            return Ok(Vec::new());
        }
        let listed = match fs::read_dir(self.host.path(dir)) {
            Ok(entries) => entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io("list", dir)(e)),
        };
        let ours_here = ours.filter(|ours| ours.parent() == Some(dir)).and_then(|ours| ours.file_name()?.to_str());
        let mut names: Vec<String> = listed.into_iter().chain(ours_here.map(str::to_string)).collect();
        names.retain(|name| config::glob_match(pattern, name));
        names.sort();
        names.dedup();
        Ok(names.into_iter().map(|name| dir.join(name)).collect())
    }

    /// An imported file's table; a missing one counts as empty (containerd would not start).
    fn read_imported(&self, path: &Path) -> Result<Table> {
        match fs::read_to_string(self.host.path(path)) {
            Ok(text) => {
                text.parse().map_err(|source| Error::ParseConfig { path: path.into(), source: Box::new(source) })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Table::new()),
            Err(e) => Err(Error::io("read", path)(e)),
        }
    }
}
