//! Where an image keeps its module: the Wasm layer of an artifact, or, in a plain image, the
//! file its config's command names, read from the layer tars as a container runtime would
//! stack them. Pure functions over blobs already fetched, shared by the layout reader and
//! the registry pull.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use oci_client::manifest::OciImageManifest;
use serde::Deserialize;
use spore_shim::image::{TAR_LAYER_MEDIA_TYPES, WASM_LAYER_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPES};

/// Symbolic links followed from the entrypoint before giving up (a loop, most likely).
const MAX_LINKS: usize = 16;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const FIX: &str = "build the image with `spore image build`, or make its ENTRYPOINT the .wasm file \
                   (e.g. ENTRYPOINT [\"/app.wasm\"])";

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("unreadable image config: {0}")]
    Config(String),

    #[error("the image has neither a Wasm layer ({WASM_LAYER_MEDIA_TYPE}) nor an entrypoint in its config; {FIX}")]
    NoModule,

    #[error("the image's entrypoint {0:?} is not a .wasm file; {FIX}")]
    NotWasm(String),

    #[error("the image's entrypoint {path} is in none of its {layers} layer(s); {FIX}")]
    NotInLayers { path: String, layers: usize },

    #[error("the image's entrypoint {path} is not a regular file in its layers; {FIX}")]
    NotAFile { path: String },

    #[error("layer {digest} ({media_type}): {reason}")]
    Layer { digest: String, media_type: String, reason: String },
}

/// Where to find the module of an image.
#[derive(Debug, PartialEq, Eq)]
pub enum ModuleSource {
    /// The manifest's layer at this index is the module (a Wasm artifact).
    WasmLayer(usize),
    /// The module is this absolute path in the layers' filesystem (a plain image).
    File(PathBuf),
}

#[derive(Deserialize, Default)]
struct ImageConfig {
    #[serde(default)]
    config: Option<ProcessConfig>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ProcessConfig {
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
    #[serde(default)]
    working_dir: Option<String>,
}

/// A Wasm layer wins (artifacts record an entrypoint that is no file); otherwise the
/// command's first word, as the shim takes it: the entrypoint, else `Cmd`.
pub fn module_source(manifest: &OciImageManifest, config_json: &[u8]) -> Result<ModuleSource, ImageError> {
    if let Some(index) = manifest.layers.iter().position(|l| WASM_LAYER_MEDIA_TYPES.contains(&l.media_type.as_str())) {
        return Ok(ModuleSource::WasmLayer(index));
    }
    let config: ImageConfig = serde_json::from_slice(config_json).map_err(|e| ImageError::Config(e.to_string()))?;
    let process = config.config.unwrap_or_default();
    let command = process.entrypoint.filter(|e| !e.is_empty()).or(process.cmd).unwrap_or_default();
    let program = command.first().filter(|p| !p.is_empty()).ok_or(ImageError::NoModule)?;
    if !program.ends_with(".wasm") {
        return Err(ImageError::NotWasm(program.clone()));
    }
    Ok(ModuleSource::File(absolute(process.working_dir.as_deref().unwrap_or("/"), program)))
}

/// `path` resolved against the working directory, without `.` and `..` (never above `/`).
fn absolute(working_dir: &str, path: &str) -> PathBuf {
    normalize(&Path::new("/").join(working_dir).join(path))
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for part in path.components() {
        match part {
            Component::Normal(name) => out.push(name),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// One filesystem layer as fetched: its descriptor's media type and digest, and its bytes.
pub struct LayerBlob<'a> {
    pub media_type: &'a str,
    pub digest: &'a str,
    pub data: &'a [u8],
}

/// What one layer says about a path.
#[derive(Debug, PartialEq, Eq)]
enum Entry {
    File(Vec<u8>),
    /// A symbolic or hard link to this absolute path.
    Link(PathBuf),
    /// Deleted (a whiteout), or hidden by an opaque directory: lower layers do not count.
    Deleted,
    /// Something other than a file (a directory, a device).
    Other,
}

/// The file at absolute `path` in the filesystem the layers (bottom first) stack up to:
/// the topmost layer that mentions it decides, whiteouts delete, links are followed.
pub fn file_in_layers(path: &Path, layers: &[LayerBlob]) -> Result<Vec<u8>, ImageError> {
    let entrypoint = path.display().to_string();
    let mut path = path.to_path_buf();
    for _ in 0..=MAX_LINKS {
        match topmost_entry(&path, layers)? {
            Some(Entry::File(bytes)) => return Ok(bytes),
            Some(Entry::Link(target)) => path = target,
            Some(Entry::Other) => return Err(ImageError::NotAFile { path: entrypoint }),
            Some(Entry::Deleted) | None => {
                return Err(ImageError::NotInLayers { path: entrypoint, layers: layers.len() });
            }
        }
    }
    Err(ImageError::NotAFile { path: entrypoint })
}

fn topmost_entry(path: &Path, layers: &[LayerBlob]) -> Result<Option<Entry>, ImageError> {
    for layer in layers.iter().rev() {
        let entry = tar_bytes(layer).and_then(|tar| entry_in_tar(&tar, path)).map_err(|reason| ImageError::Layer {
            digest: layer.digest.into(),
            media_type: layer.media_type.into(),
            reason,
        })?;
        if entry.is_some() {
            return Ok(entry);
        }
    }
    Ok(None)
}

/// The layer as an uncompressed tar: gzip is recognized by its magic bytes, whatever the
/// media type claims.
fn tar_bytes(layer: &LayerBlob) -> Result<Vec<u8>, String> {
    if !TAR_LAYER_MEDIA_TYPES.contains(&layer.media_type) {
        return Err(format!("not a filesystem layer spore can read (it reads {})", TAR_LAYER_MEDIA_TYPES.join(", ")));
    }
    if !layer.data.starts_with(&GZIP_MAGIC) {
        return Ok(layer.data.to_vec());
    }
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(layer.data).read_to_end(&mut tar).map_err(|e| format!("corrupt gzip: {e}"))?;
    Ok(tar)
}

/// What one layer tar holds at `path`, if it mentions it (or deletes it).
fn entry_in_tar(tar: &[u8], path: &Path) -> Result<Option<Entry>, String> {
    let wanted = path.strip_prefix("/").unwrap_or(path);
    let whiteout = wanted.with_file_name(format!(".wh.{}", wanted.file_name().unwrap_or_default().to_string_lossy()));
    let mut found = None;
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().map_err(|e| format!("not a tar archive: {e}"))? {
        let mut entry = entry.map_err(|e| format!("corrupt tar archive: {e}"))?;
        let name = normalize(&entry.path().map_err(|e| format!("corrupt tar archive: {e}"))?);
        let name = name.strip_prefix("/").unwrap_or(&name);
        if name == whiteout || is_opaque_marker_above(name, wanted) {
            found = found.or(Some(Entry::Deleted));
        } else if name == wanted {
            found = Some(classify(&mut entry, path)?);
        }
    }
    Ok(found)
}

/// `.wh..wh..opq` in a directory above `wanted`: that directory hides the lower layers'.
fn is_opaque_marker_above(name: &Path, wanted: &Path) -> bool {
    name.file_name().is_some_and(|f| f == ".wh..wh..opq")
        && name.parent().is_some_and(|dir| wanted.starts_with(dir) && wanted != dir)
}

fn classify(entry: &mut tar::Entry<&[u8]>, path: &Path) -> Result<Entry, String> {
    let kind = entry.header().entry_type();
    if kind.is_file() {
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(|e| format!("corrupt tar archive: {e}"))?;
        return Ok(Entry::File(bytes));
    }
    if kind.is_symlink() || kind.is_hard_link() {
        let target = entry.link_name().map_err(|e| format!("corrupt tar archive: {e}"))?.unwrap_or_default();
        let parent = path.parent().unwrap_or(Path::new("/"));
        // A symbolic link is relative to its directory; a hard link names a path in the image.
        let base = if kind.is_symlink() { parent } else { Path::new("/") };
        return Ok(Entry::Link(normalize(&base.join(target))));
    }
    Ok(Entry::Other)
}

#[cfg(test)]
mod tests {
    use super::*;

    use oci_client::client::{Config, ImageLayer};

    fn manifest(media_types: &[&str]) -> OciImageManifest {
        let layers: Vec<ImageLayer> =
            media_types.iter().map(|m| ImageLayer::new(b"x".to_vec(), m.to_string(), None)).collect();
        OciImageManifest::build(&layers, &Config::oci_v1(b"{}".to_vec(), None), None)
    }

    #[test]
    fn the_module_source_comes_from_the_wasm_layer_or_the_command() {
        let tar = "application/vnd.oci.image.layer.v1.tar+gzip";
        for (layers, config, expected) in [
            (vec![WASM_LAYER_MEDIA_TYPE], r#"{"config":{"Entrypoint":["/app.wasm"]}}"#, Ok(ModuleSource::WasmLayer(0))),
            (vec![tar, "application/vnd.wasm.content.layer.v1+wasm"], "{}", Ok(ModuleSource::WasmLayer(1))),
            (
                vec![tar],
                r#"{"config":{"Entrypoint":["/app.wasm","serve"]}}"#,
                Ok(ModuleSource::File("/app.wasm".into())),
            ),
            (vec![tar], r#"{"config":{"Cmd":["/bin/x.wasm"]}}"#, Ok(ModuleSource::File("/bin/x.wasm".into()))),
            (
                vec![tar],
                r#"{"config":{"Entrypoint":["../m.wasm"],"WorkingDir":"/srv/app"}}"#,
                Ok(ModuleSource::File("/srv/m.wasm".into())),
            ),
            (vec![tar], r#"{"config":{"Entrypoint":["/bin/sh","-c"]}}"#, Err("\"/bin/sh\" is not a .wasm file")),
            (vec![tar], r#"{"config":{"Entrypoint":[]}}"#, Err("neither a Wasm layer")),
            (vec![tar], r#"{"architecture":"amd64"}"#, Err("neither a Wasm layer")),
            (vec![tar], "not json", Err("unreadable image config")),
        ] {
            match (module_source(&manifest(&layers), config.as_bytes()), expected) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{config}"),
                (Err(err), Err(part)) => assert!(err.to_string().contains(part), "{err} lacks {part:?}"),
                (got, want) => panic!("{config}: got {got:?}, want {want:?}"),
            }
        }
    }

    /// A layer tar of `(path, kind)` entries: `Ok(contents)` a file, `Err(target)` a symlink.
    fn layer(entries: &[(&str, Result<&str, &str>)]) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for (path, kind) in entries {
            let mut header = tar::Header::new_ustar();
            header.set_mode(0o644);
            match kind {
                Ok(contents) => {
                    header.set_size(contents.len() as u64);
                    tar.append_data(&mut header, path, contents.as_bytes()).unwrap();
                }
                Err(target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_size(0);
                    tar.append_link(&mut header, path, target).unwrap();
                }
            }
        }
        tar.into_inner().unwrap()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut out = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        out.write_all(bytes).unwrap();
        out.finish().unwrap()
    }

    #[test]
    fn the_entrypoint_is_read_from_the_stacked_layers() {
        let base = layer(&[
            ("app.wasm", Ok("base")),
            ("gone.wasm", Ok("deleted above")),
            ("opq/m.wasm", Ok("hidden by an opaque dir")),
            ("opt/lib/real.wasm", Ok("deep")),
        ]);
        let top = gzip(&layer(&[
            ("./app.wasm", Ok("top")),
            (".wh.gone.wasm", Ok("")),
            ("opq/.wh..wh..opq", Ok("")),
            ("link.wasm", Err("opt/lib/real.wasm")),
            ("opt/abs.wasm", Err("/opt/lib/../lib/real.wasm")),
            ("loop.wasm", Err("loop.wasm")),
        ]));
        let blob = |data| LayerBlob { media_type: "application/vnd.oci.image.layer.v1.tar", digest: "sha256:l", data };
        let layers = [blob(&base), blob(&top)];
        for (path, expected) in [
            ("/app.wasm", Ok("top")),
            ("/link.wasm", Ok("deep")),
            ("/opt/abs.wasm", Ok("deep")),
            ("/gone.wasm", Err("in none of its 2 layer(s)")),
            ("/opq/m.wasm", Err("in none of its 2 layer(s)")),
            ("/absent.wasm", Err("in none of its 2 layer(s)")),
            ("/loop.wasm", Err("not a regular file")),
        ] {
            match (file_in_layers(Path::new(path), &layers), expected) {
                (Ok(bytes), Ok(want)) => assert_eq!(String::from_utf8(bytes).unwrap(), want, "{path}"),
                (Err(err), Err(part)) => assert!(err.to_string().contains(part), "{path}: {err} lacks {part:?}"),
                (got, want) => panic!("{path}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn unreadable_layers_are_named() {
        let zstd =
            LayerBlob { media_type: "application/vnd.oci.image.layer.v1.tar+zstd", digest: "sha256:z", data: b"" };
        let err = file_in_layers(Path::new("/app.wasm"), &[zstd]).unwrap_err().to_string();
        assert!(
            err.contains("layer sha256:z (application/vnd.oci.image.layer.v1.tar+zstd): not a filesystem layer"),
            "{err}"
        );
        let broken = [0x1f, 0x8b, 0, 0];
        let gz =
            LayerBlob { media_type: spore_shim::image::OCI_GZIP_LAYER_MEDIA_TYPE, digest: "sha256:g", data: &broken };
        let err = file_in_layers(Path::new("/app.wasm"), &[gz]).unwrap_err().to_string();
        assert!(err.contains("corrupt gzip"), "{err}");
    }
}
