//! `spore up`: run a WasmApp locally with the same engine and sandbox as the cluster.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use spore_crds::WasmApp;
use spore_crds::app::{EnvVar, Volume, VolumeSourceKind};
use spore_shim::{
    AppConfig, CodeOrigin, ComponentGrant, Engine, EngineConfig, ResolverFiles, RuntimeLimits, Sandbox, Stdio, Tier,
};

use crate::error::{CliError, Result};
use crate::{link, manifest};

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// The WasmApp manifest (YAML).
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
    #[command(flatten)]
    pub sources: link::Sources,
    /// Map a volume from spec.volumes to a local directory: NAME=DIR (repeatable).
    #[arg(long = "volume", value_name = "NAME=DIR")]
    pub volumes: Vec<String>,
    /// Set an env var declared with valueFrom (ConfigMap/Secret): NAME=VALUE (repeatable).
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// Address HTTP components listen on (the port comes from capabilities.network.inbound).
    #[arg(long, default_value = "127.0.0.1")]
    pub address: IpAddr,
    /// Serve the HTTP component's Prometheus metrics at http://ADDR/metrics, e.g.
    /// 127.0.0.1:9464 (as the cluster's pods do on their `metrics` port).
    #[arg(long, value_name = "ADDR")]
    pub metrics_address: Option<SocketAddr>,
    /// Directory of the precompiled-code cache (default: ~/.cache/spore/code).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Compile every time instead of using the code cache.
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,
}

pub async fn run(args: UpArgs) -> Result<i32> {
    let app = manifest::load(&args.file)?;
    let volume_dirs = parse_pairs(&args.volumes, CliError::VolumeFlag)?;
    let env_overrides = parse_pairs(&args.env, CliError::EnvFlag)?;
    let scratch =
        tempfile::tempdir().map_err(|source| CliError::Io { context: "cannot create a temp dir".into(), source })?;
    let config = app_config(&app, &volume_dirs, &env_overrides, scratch.path())?;
    let sandbox = Sandbox::new(config, Stdio::inherit())?;

    let cache = cache_dir(&args);
    let engine = Engine::new(EngineConfig { cache_dir: cache.clone(), ..EngineConfig::default() })?;
    // Linked through the code cache, as a node links it: once for the same code and wiring.
    let bytes = args.sources.app_bytes(&app, Some(&engine)).await?;
    // Apps that listen (HTTP components) get an instance pool; a one-shot command would only
    // pay for reserving it.
    let engine = engine.for_sandbox(&sandbox)?;
    let name = module_name(&args, &app);
    let wasm = load_reporting(&engine, &bytes, cache.as_deref(), &name).map_err(|e| CliError::module(name, e))?;
    // The loaded code no longer needs them, and a Python component's are 18 MB.
    drop(bytes);

    if wasm.kind().serves_http() {
        let listener = spore_shim::bind(args.address, &sandbox).await?;
        let metrics = match args.metrics_address {
            Some(addr) => Some(spore_shim::bind_metrics(addr, &sandbox).await?),
            None => None,
        };
        eprintln!(
            "spore: serving {} ({}) on http://{}/ — Ctrl-C to stop",
            app_name(&app),
            wasm.kind(),
            local(&listener)?
        );
        if let Some(metrics) = &metrics {
            eprintln!("spore: metrics on http://{}/metrics", local(metrics)?);
        }
        report_optimized_code(&wasm, cache.clone());
        spore_shim::serve_http(
            wasm,
            &sandbox,
            listener,
            metrics,
            spore_shim::Shutdown::immediate(async {
                shutdown_signal().await;
            }),
        )
        .await?;
        eprintln!("spore: stopped");
        return Ok(0);
    }
    if args.metrics_address.is_some() {
        eprintln!("spore: --metrics-address ignored: {} is a command, not an HTTP component", app_name(&app));
    }
    let exit = tokio::select! {
        exit = spore_shim::run_command(&wasm, &sandbox) => exit?,
        code = shutdown_signal() => {
            eprintln!("spore: {}: stopped by signal", app_name(&app));
            return Ok(code);
        }
    };
    if exit.reason.is_some() {
        eprintln!("spore: {}: {}", app_name(&app), exit.report());
    }
    Ok(exit.code)
}

fn local(listener: &tokio::net::TcpListener) -> Result<SocketAddr> {
    listener.local_addr().map_err(|source| CliError::Io { context: "listener".into(), source })
}

/// Resolves the manifest into the engine's terms, with local stand-ins for cluster objects.
fn app_config(
    app: &WasmApp,
    volume_dirs: &BTreeMap<String, String>,
    env_overrides: &BTreeMap<String, String>,
    scratch: &std::path::Path,
) -> Result<AppConfig> {
    let spec = &app.spec;
    for name in volume_dirs.keys() {
        if !spec.volumes.iter().any(|v| &v.name == name) {
            return Err(CliError::UnknownVolume { name: name.clone() });
        }
    }
    let mounted = |volume: &Volume| {
        let mounts =
            spec.capabilities.filesystem.iter().chain(spec.components.iter().flat_map(|c| &c.capabilities.filesystem));
        mounts.into_iter().any(|m| m.volume == volume.name)
    };
    let volumes = spec
        .volumes
        .iter()
        .filter(|v| mounted(v))
        .map(|v| Ok((v.name.clone(), volume_dir(v, volume_dirs, scratch)?)))
        .collect::<Result<_>>()?;
    let env_of = |vars: &[EnvVar]| -> Result<Vec<(String, String)>> {
        vars.iter().map(|e| Ok((e.name.clone(), env_value(e, env_overrides)?))).collect()
    };
    let components = spec
        .components
        .iter()
        .map(|c| {
            Ok(ComponentGrant {
                name: c.name.clone(),
                env: env_of(&c.env)?,
                capabilities: c.capabilities.clone().into(),
            })
        })
        .collect::<Result<_>>()?;
    let env = env_of(&spec.env)?;
    Ok(AppConfig {
        name: app_name(app).to_string(),
        args: spec.args.clone(),
        env,
        capabilities: spec.capabilities.clone(),
        volumes,
        limits: RuntimeLimits::from_spec(&spec.limits)?,
        resolver: ResolverFiles::default(),
        components,
    })
}

fn volume_dir(volume: &Volume, dirs: &BTreeMap<String, String>, scratch: &std::path::Path) -> Result<PathBuf> {
    if let Some(dir) = dirs.get(&volume.name) {
        return Ok(PathBuf::from(dir));
    }
    match volume.source_kind() {
        Some(VolumeSourceKind::EmptyDir(_)) => {
            let dir = scratch.join(&volume.name);
            std::fs::create_dir_all(&dir)
                .map_err(|source| CliError::Io { context: format!("cannot create {}", dir.display()), source })?;
            Ok(dir)
        }
        Some(VolumeSourceKind::HostPath(host)) => Ok(PathBuf::from(&host.path)),
        kind => Err(CliError::VolumeNeedsDir {
            name: volume.name.clone(),
            kind: kind.map_or("no source", |k| k.field_name()),
        }),
    }
}

fn env_value(var: &EnvVar, overrides: &BTreeMap<String, String>) -> Result<String> {
    if let Some(value) = overrides.get(&var.name) {
        return Ok(value.clone());
    }
    if let Some(value) = &var.value {
        return Ok(value.clone());
    }
    let source = var.value_from.as_ref();
    let source_desc =
        match (source.and_then(|s| s.config_map_key_ref.as_ref()), source.and_then(|s| s.secret_key_ref.as_ref())) {
            (Some(cm), _) => format!("ConfigMap {} key {}", cm.name, cm.key),
            (_, Some(secret)) => format!("Secret {} key {}", secret.name, secret.key),
            _ => "nowhere".into(),
        };
    Err(CliError::EnvNeedsValue { name: var.name.clone(), source_desc })
}

pub(crate) fn parse_pairs(flags: &[String], error: fn(String) -> CliError) -> Result<BTreeMap<String, String>> {
    flags
        .iter()
        .map(|flag| match flag.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(error(flag.clone())),
        })
        .collect()
}

/// Modules at least this big announce their load: compiling one takes seconds.
const ANNOUNCED_LOAD_BYTES: usize = 1 << 20;

/// Loads `bytes`, saying what takes long, so a big module's first compile does not look like
/// a hang: what is being loaded, then whether it was compiled (and cached where) or read from
/// the cache.
fn load_reporting(
    engine: &Engine,
    bytes: &[u8],
    cache: Option<&std::path::Path>,
    name: &str,
) -> spore_shim::Result<spore_shim::Wasm> {
    let announced = bytes.len() >= ANNOUNCED_LOAD_BYTES;
    let megabytes = bytes.len() as f64 / 1e6;
    if announced {
        eprintln!("spore: loading {name} ({megabytes:.1} MB); compiling it the first time takes a while");
    }
    let started = std::time::Instant::now();
    let wasm = engine.load(bytes)?;
    let took = started.elapsed();
    if announced || took > std::time::Duration::from_secs(1) {
        let tier = wasm.tier();
        match (wasm.origin(), cache) {
            // Baseline code is written to the cache in the background, off the first request's path.
            (CodeOrigin::Compiled, Some(dir)) => {
                let cached = if tier == Tier::Baseline { "caching in" } else { "cached in" };
                eprintln!("spore: {tier} code compiled in {:.1} s; {cached} {}", took.as_secs_f64(), dir.display())
            }
            (CodeOrigin::Compiled, None) => {
                eprintln!("spore: {tier} code compiled in {:.1} s (not cached)", took.as_secs_f64())
            }
            (CodeOrigin::Cache, _) => eprintln!("spore: cached {tier} code loaded in {} ms", took.as_millis()),
        }
        if tier == Tier::Baseline {
            eprintln!("spore: serving on it while the optimized code compiles in the background");
        }
    }
    Ok(wasm)
}

/// Says when a server that started on baseline code switches to optimized code.
fn report_optimized_code(wasm: &spore_shim::Wasm, cache: Option<PathBuf>) {
    if wasm.tier() != Tier::Baseline {
        return;
    }
    let (wasm, started) = (wasm.clone(), std::time::Instant::now());
    tokio::spawn(async move {
        let Some(optimized) = wasm.optimized().await else { return };
        let cached = cache.map_or_else(|| " (not cached)".to_string(), |dir| format!("; cached in {}", dir.display()));
        eprintln!(
            "spore: {} code ready after {:.1} s{cached}; new requests run on it",
            optimized.tier(),
            started.elapsed().as_secs_f64()
        );
    });
}

fn cache_dir(args: &UpArgs) -> Option<PathBuf> {
    if args.no_cache {
        return None;
    }
    args.cache_dir.clone().or_else(|| {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("spore").join("code"))
    })
}

fn app_name(app: &WasmApp) -> &str {
    app.metadata.name.as_deref().unwrap_or("app")
}

fn module_name(args: &UpArgs, app: &WasmApp) -> String {
    args.sources.module.as_ref().map_or_else(|| app.spec.module.image.clone(), |p| p.display().to_string())
}

/// Waits for Ctrl-C or SIGTERM; returns the exit code a shell reports for it.
async fn shutdown_signal() -> i32 {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    let sigterm = async {
        match term.as_mut() {
            Some(term) => term.recv().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => 130,
        _ = sigterm => 143,
    }
}
