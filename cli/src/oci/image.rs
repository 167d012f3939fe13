//! A Wasm image in memory, in either format `spore image build` writes, and its OCI layout
//! tar (importable by `ctr images import`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use oci_client::client::{Config, ImageLayer};
use oci_client::manifest::{ImageIndexEntry, OCI_IMAGE_MEDIA_TYPE, OciImageIndex, OciImageManifest};
use spore_shim::image::{
    MODULE_ENTRYPOINT, OCI_CONFIG_MEDIA_TYPE, OCI_GZIP_LAYER_MEDIA_TYPE, WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE,
    sha256_digest,
};

use super::module::{ImageError, LayerBlob, ModuleSource, file_in_layers, module_source};
use crate::error::{CliError, Result};

pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
const MODULE_MODE: u32 = 0o644;

/// The two shapes of a Wasm image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An ordinary container image: one gzip tar layer holding the module at /app.wasm, which
    /// is the entrypoint. Runs on any containerd (1.6 too) through CRI and `ctr run`, and
    /// every registry stores it.
    Plain,
    /// The Wasm OCI artifact format: config application/vnd.wasm.config.v0+json and the
    /// module itself as the one application/wasm layer. For registries and tools that know
    /// the format; containerd unpacks it from 1.6.25/1.7 on, and `ctr run` refuses it.
    Artifact,
}

/// An image: its manifest, config and layers, as built or as read from a layout tar.
pub struct WasmImage {
    pub(super) manifest: OciImageManifest,
    pub(super) config: Config,
    pub(super) layers: Vec<ImageLayer>,
}

impl WasmImage {
    pub fn build(wasm: Vec<u8>, format: Format) -> Self {
        let (config, layer) = match format {
            Format::Plain => plain(&wasm),
            Format::Artifact => artifact(wasm),
        };
        let manifest = OciImageManifest::build(std::slice::from_ref(&layer), &config, None);
        Self { manifest, config, layers: vec![layer] }
    }

    pub fn from_parts(manifest: OciImageManifest, config: Config, layers: Vec<ImageLayer>) -> Self {
        Self { manifest, config, layers }
    }

    fn manifest_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.manifest).expect("a manifest always serializes")
    }

    pub fn manifest_digest(&self) -> String {
        sha256_digest(&self.manifest_bytes())
    }

    /// The module's bytes: the Wasm layer, or the entrypoint's file in the layers.
    pub fn module(&self) -> Result<Vec<u8>, ImageError> {
        match module_source(&self.manifest, &self.config.data)? {
            ModuleSource::WasmLayer(index) => Ok(self.layers[index].data.to_vec()),
            ModuleSource::File(path) => file_in_layers(&path, &self.layer_blobs()),
        }
    }

    fn layer_blobs(&self) -> Vec<LayerBlob<'_>> {
        self.manifest
            .layers
            .iter()
            .zip(&self.layers)
            .map(|(descriptor, layer)| LayerBlob {
                media_type: &descriptor.media_type,
                digest: &descriptor.digest,
                data: &layer.data,
            })
            .collect()
    }

    /// Writes an OCI image layout as a tar, importable by `ctr images import`.
    pub fn write_layout_tar(&self, tag: &str, out: impl Write) -> Result<()> {
        let manifest = self.manifest_bytes();
        let index = index(tag, &manifest);
        let mut tar = tar::Builder::new(out);
        let mut add = |path: &str, data: &[u8]| {
            tar.append_data(&mut file_header(data.len(), 0o644), path, data)
                .map_err(|e| io(format!("cannot write {path} into the tar"), e))
        };
        add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        add("index.json", &serde_json::to_vec(&index).expect("an index always serializes"))?;
        let layers = self.layers.iter().map(|l| &l.data[..]);
        for blob in [&manifest[..], &self.config.data].into_iter().chain(layers) {
            add(&format!("blobs/sha256/{}", &sha256_digest(blob)["sha256:".len()..]), blob)?;
        }
        tar.into_inner()
            .map_err(|e| io("cannot finish the tar".into(), e))?
            .flush()
            .map_err(|e| io("cannot finish the tar".into(), e))
    }
}

fn io(context: String, source: std::io::Error) -> CliError {
    CliError::Io { context, source }
}

fn index(tag: &str, manifest: &[u8]) -> OciImageIndex {
    OciImageIndex {
        schema_version: 2,
        media_type: Some("application/vnd.oci.image.index.v1+json".into()),
        manifests: vec![ImageIndexEntry {
            media_type: OCI_IMAGE_MEDIA_TYPE.into(),
            digest: sha256_digest(manifest),
            size: manifest.len() as i64,
            platform: None,
            annotations: Some(BTreeMap::from([(REF_NAME_ANNOTATION.to_string(), tag.to_string())])),
            artifact_type: None,
        }],
        annotations: None,
        artifact_type: None,
    }
}

/// A regular file owned by root with mtime 0, so that the same module builds the same image.
fn file_header(size: usize, mode: u32) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(size as u64);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_cksum();
    header
}

/// WASI's preview: components are p2, core modules p1 (the version field after `\0asm`).
fn wasi_os(wasm: &[u8]) -> &'static str {
    if wasm.get(4..8) == Some(&[0x0d, 0, 1, 0]) { "wasip2" } else { "wasip1" }
}

fn artifact(wasm: Vec<u8>) -> (Config, ImageLayer) {
    let config = serde_json::json!({
        "architecture": "wasm",
        "os": wasi_os(&wasm),
        "layerDigests": [sha256_digest(&wasm)],
        // Not part of the Wasm config format: CRI reads any image config as an OCI one, and
        // this entrypoint spares pods a `command`. The rootfs has no such file, so the shim
        // runs the Wasm layer, with argv[0] "app.wasm".
        "config": {"Entrypoint": [MODULE_ENTRYPOINT]},
    });
    (
        Config::new(config.to_string().into_bytes(), WASM_CONFIG_MEDIA_TYPE.to_string(), None),
        ImageLayer::new(wasm, WASM_LAYER_MEDIA_TYPE.to_string(), None),
    )
}

/// The shape of the e2e cluster's Wasm images (shim/tests/harness/image.rs), which the shim
/// runs on Debian's containerd 1.6: platform wasm, the module's path as the entrypoint.
/// Single-manifest images are not matched against the host platform, so `wasm` is safe and
/// tells tools what the image holds.
fn plain(wasm: &[u8]) -> (Config, ImageLayer) {
    let layer_tar = module_tar(wasm);
    let config = serde_json::json!({
        "architecture": "wasm",
        "os": wasi_os(wasm),
        "config": {"Entrypoint": [MODULE_ENTRYPOINT]},
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(&layer_tar)]},
    });
    (
        Config::new(config.to_string().into_bytes(), OCI_CONFIG_MEDIA_TYPE.to_string(), None),
        ImageLayer::new(gzip(&layer_tar), OCI_GZIP_LAYER_MEDIA_TYPE.to_string(), None),
    )
}

/// The uncompressed layer: the module alone at MODULE_ENTRYPOINT.
fn module_tar(wasm: &[u8]) -> Vec<u8> {
    let path = Path::new(MODULE_ENTRYPOINT.trim_start_matches('/'));
    let mut tar = tar::Builder::new(Vec::new());
    tar.append_data(&mut file_header(wasm.len(), MODULE_MODE), path, wasm).expect("writing to memory cannot fail");
    tar.into_inner().expect("writing to memory cannot fail")
}

/// Gzip with mtime 0 (reproducible). Modules shrink to a third or so, and gzip is the layer
/// compression every registry, containerd and Docker has always read.
fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::best());
    out.write_all(bytes).expect("writing to memory cannot fail");
    out.finish().expect("writing to memory cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::Read;

    const MODULE: &[u8] = b"\0asm\x01\0\0\0 a core module";
    const COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0 a component";

    fn config_json(image: &WasmImage) -> serde_json::Value {
        serde_json::from_slice(&image.config.data).unwrap()
    }

    #[test]
    fn both_formats_record_the_platform_and_entrypoint() {
        for (format, wasm, config_type, layer_type, os) in [
            (Format::Plain, MODULE, OCI_CONFIG_MEDIA_TYPE, OCI_GZIP_LAYER_MEDIA_TYPE, "wasip1"),
            (Format::Plain, COMPONENT, OCI_CONFIG_MEDIA_TYPE, OCI_GZIP_LAYER_MEDIA_TYPE, "wasip2"),
            (Format::Artifact, MODULE, WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE, "wasip1"),
            (Format::Artifact, COMPONENT, WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE, "wasip2"),
        ] {
            let image = WasmImage::build(wasm.to_vec(), format);
            let config = config_json(&image);
            assert_eq!(image.manifest.config.media_type, config_type, "{format:?}");
            assert_eq!(image.manifest.layers.len(), 1, "{format:?}");
            assert_eq!(image.manifest.layers[0].media_type, layer_type, "{format:?}");
            assert_eq!((config["architecture"].as_str(), config["os"].as_str()), (Some("wasm"), Some(os)));
            assert_eq!(config["config"]["Entrypoint"], serde_json::json!(["/app.wasm"]), "{format:?}");
            assert_eq!(image.module().unwrap(), wasm, "{format:?}");
        }
    }

    #[test]
    fn a_plain_layer_holds_the_module_at_app_wasm_and_its_diff_id() {
        let image = WasmImage::build(MODULE.to_vec(), Format::Plain);
        let mut layer_tar = Vec::new();
        flate2::read::GzDecoder::new(&image.layers[0].data[..]).read_to_end(&mut layer_tar).unwrap();
        assert_eq!(
            config_json(&image)["rootfs"],
            serde_json::json!({"type": "layers", "diff_ids": [sha256_digest(&layer_tar)]})
        );
        // Entries are read as the archive streams by, so each one is taken apart in turn.
        let entries: Vec<_> = tar::Archive::new(&layer_tar[..])
            .entries()
            .unwrap()
            .map(|entry| {
                let mut entry = entry.unwrap();
                let header = entry.header().clone();
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).unwrap();
                let path = entry.path().unwrap().display().to_string();
                (path, header.mode().unwrap(), header.uid().unwrap(), header.entry_type().is_file(), bytes)
            })
            .collect();
        assert_eq!(entries, [("app.wasm".to_string(), 0o644, 0, true, MODULE.to_vec())]);
    }

    #[test]
    fn the_same_module_builds_the_same_image() {
        for format in [Format::Plain, Format::Artifact] {
            let digest = || WasmImage::build(MODULE.to_vec(), format).manifest_digest();
            assert_eq!(digest(), digest(), "{format:?}");
        }
    }

    #[test]
    fn a_plain_image_without_a_wasm_entrypoint_says_how_to_fix_it() {
        let mut image = WasmImage::build(MODULE.to_vec(), Format::Plain);
        let mut config: serde_json::Value = serde_json::from_slice(&image.config.data).unwrap();
        config["config"]["Entrypoint"] = serde_json::json!(["/bin/server"]);
        image.config.data = serde_json::to_vec(&config).unwrap().into();
        let err = image.module().unwrap_err().to_string();
        assert!(err.contains("\"/bin/server\" is not a .wasm file") && err.contains("spore image build"), "{err}");

        config["config"]["Entrypoint"] = serde_json::json!(["/other.wasm"]);
        image.config.data = serde_json::to_vec(&config).unwrap().into();
        let err = image.module().unwrap_err().to_string();
        assert!(err.contains("/other.wasm is in none of its 1 layer(s)"), "{err}");
    }
}
