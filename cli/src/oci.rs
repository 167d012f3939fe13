//! Wasm images in the OCI artifact format (config `application/vnd.wasm.config.v0+json`,
//! one `application/wasm` layer): building OCI layout tars, reading them, and moving
//! images to and from registries with oci-client.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::PathBuf;

use clap::Subcommand;
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::manifest::{ImageIndexEntry, OCI_IMAGE_MEDIA_TYPE, OciImageIndex, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use crate::error::{CliError, Result};

use spore_shim::image::{ARTIFACT_ENTRYPOINT, WASM_LAYER_MEDIA_TYPES};
pub use spore_shim::image::{WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE, sha256_digest};
const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Write a Wasm module or component as an OCI image (OCI layout tar).
    Build {
        /// The .wasm file.
        #[arg(long)]
        module: PathBuf,
        /// Image reference recorded in the tar, e.g. localhost:5000/spore/hello:latest.
        #[arg(long)]
        tag: String,
        /// Output tar file.
        #[arg(short = 'o', long)]
        output: PathBuf,
    },
    /// Push an image tar (from `spore image build`) to a registry.
    Push {
        /// The OCI layout tar.
        image: PathBuf,
        /// Destination reference; defaults to the tag recorded in the tar.
        reference: Option<String>,
        /// Use plain HTTP (default only for localhost registries).
        #[arg(long)]
        plain_http: bool,
    },
}

pub async fn run(cmd: ImageCommand) -> Result<i32> {
    match cmd {
        ImageCommand::Build { module, tag, output } => {
            let wasm = read(&module)?;
            let image = WasmImage::new(wasm);
            let file = std::fs::File::create(&output)
                .map_err(|source| io(format!("cannot create {}", output.display()), source))?;
            image.write_layout_tar(&tag, file)?;
            println!("wrote {} ({tag}, {})", output.display(), image.manifest_digest());
            Ok(0)
        }
        ImageCommand::Push { image, reference, plain_http } => {
            let bytes = read(&image)?;
            let layout = Layout::read(&bytes).map_err(|m| CliError::module(image.display().to_string(), m))?;
            let reference = reference.or(layout.ref_name.clone()).ok_or_else(|| {
                CliError::module(image.display().to_string(), "the tar records no tag; pass the destination reference")
            })?;
            let url = push(&WasmImage::new(layout.wasm), &reference, plain_http).await?;
            println!("pushed {reference} ({url})");
            Ok(0)
        }
    }
}

fn read(path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| CliError::Read { path: path.into(), source })
}

fn io(context: String, source: std::io::Error) -> CliError {
    CliError::Io { context, source }
}

/// A Wasm image in memory.
pub struct WasmImage {
    layer: ImageLayer,
    config: Config,
}

impl WasmImage {
    pub fn new(wasm: Vec<u8>) -> Self {
        let os = if wasm.get(4..8) == Some(&[0x0d, 0, 1, 0]) { "wasip2" } else { "wasip1" };
        let config = serde_json::json!({
            "architecture": "wasm",
            "os": os,
            "layerDigests": [sha256_digest(&wasm)],
            // Not part of the Wasm config format: CRI reads any image config as an OCI one, and
            // this entrypoint spares pods a `command`. The rootfs has no such file, so the shim
            // runs the Wasm layer, with argv[0] "app.wasm".
            "config": {"Entrypoint": [ARTIFACT_ENTRYPOINT]},
        });
        Self {
            layer: ImageLayer::new(wasm, WASM_LAYER_MEDIA_TYPE.to_string(), None),
            config: Config::new(config.to_string().into_bytes(), WASM_CONFIG_MEDIA_TYPE.to_string(), None),
        }
    }

    fn manifest(&self) -> OciImageManifest {
        OciImageManifest::build(std::slice::from_ref(&self.layer), &self.config, None)
    }

    fn manifest_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.manifest()).expect("a manifest always serializes")
    }

    pub fn manifest_digest(&self) -> String {
        sha256_digest(&self.manifest_bytes())
    }

    /// Writes an OCI image layout as a tar, importable by `ctr images import`.
    pub fn write_layout_tar(&self, tag: &str, out: impl Write) -> Result<()> {
        let manifest = self.manifest_bytes();
        let index = OciImageIndex {
            schema_version: 2,
            media_type: Some("application/vnd.oci.image.index.v1+json".into()),
            manifests: vec![ImageIndexEntry {
                media_type: OCI_IMAGE_MEDIA_TYPE.into(),
                digest: sha256_digest(&manifest),
                size: manifest.len() as i64,
                platform: None,
                annotations: Some(BTreeMap::from([(REF_NAME_ANNOTATION.to_string(), tag.to_string())])),
                artifact_type: None,
            }],
            annotations: None,
            artifact_type: None,
        };
        let mut tar = tar::Builder::new(out);
        let mut add = |path: &str, data: &[u8]| {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, path, data).map_err(|e| io(format!("cannot write {path} into the tar"), e))
        };
        add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        add("index.json", &serde_json::to_vec(&index).expect("an index always serializes"))?;
        for blob in [&manifest[..], &self.config.data, &self.layer.data] {
            add(&format!("blobs/sha256/{}", &sha256_digest(blob)["sha256:".len()..]), blob)?;
        }
        tar.into_inner()
            .map_err(|e| io("cannot finish the tar".into(), e))?
            .flush()
            .map_err(|e| io("cannot finish the tar".into(), e))
    }
}

/// What a layout tar holds.
pub struct Layout {
    pub wasm: Vec<u8>,
    pub ref_name: Option<String>,
}

impl Layout {
    /// Reads the Wasm layer of the first image in an OCI layout tar; every blob used is
    /// checked against its digest.
    pub fn read(tar_bytes: &[u8]) -> std::result::Result<Self, String> {
        let mut files = HashMap::new();
        let mut archive = tar::Archive::new(tar_bytes);
        for entry in archive.entries().map_err(|e| format!("not a tar archive: {e}"))? {
            let mut entry = entry.map_err(|e| format!("corrupt tar archive: {e}"))?;
            let path = entry
                .path()
                .map_err(|e| format!("corrupt tar archive: {e}"))?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).map_err(|e| format!("corrupt tar archive: {e}"))?;
            files.insert(path, data);
        }
        let blob = |digest: &str| -> std::result::Result<&Vec<u8>, String> {
            let hex = digest.strip_prefix("sha256:").ok_or_else(|| format!("unsupported digest {digest}"))?;
            let data = files.get(&format!("blobs/sha256/{hex}")).ok_or_else(|| format!("blob {digest} is missing"))?;
            if sha256_digest(data) != digest {
                return Err(format!("blob {digest} does not match its digest (corrupt image)"));
            }
            Ok(data)
        };
        let index = files
            .get("index.json")
            .ok_or("not an OCI image layout (no index.json); build one with `spore image build`")?;
        let index: OciImageIndex = serde_json::from_slice(index).map_err(|e| format!("index.json: {e}"))?;
        let entry = index.manifests.first().ok_or("index.json lists no image")?;
        let manifest: OciImageManifest =
            serde_json::from_slice(blob(&entry.digest)?).map_err(|e| format!("manifest {}: {e}", entry.digest))?;
        let layer = wasm_layer(&manifest)?;
        let ref_name = entry.annotations.as_ref().and_then(|a| a.get(REF_NAME_ANNOTATION)).cloned();
        Ok(Self { wasm: blob(&layer.digest)?.clone(), ref_name })
    }
}

fn wasm_layer(manifest: &OciImageManifest) -> std::result::Result<&oci_client::manifest::OciDescriptor, String> {
    manifest.layers.iter().find(|l| WASM_LAYER_MEDIA_TYPES.contains(&l.media_type.as_str())).ok_or_else(|| {
        let found: Vec<&str> = manifest.layers.iter().map(|l| l.media_type.as_str()).collect();
        format!("the image has no Wasm layer ({WASM_LAYER_MEDIA_TYPE}); its layers are [{}]", found.join(", "))
    })
}

fn client(reference: &Reference, plain_http: bool) -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let registry = reference.resolve_registry().to_string();
    let host = registry.rsplit_once(':').map_or(registry.as_str(), |(h, _)| h);
    let protocol = if plain_http || matches!(host, "localhost" | "127.0.0.1" | "[::1]") {
        ClientProtocol::Http
    } else {
        ClientProtocol::Https
    };
    Client::new(ClientConfig { protocol, ..ClientConfig::default() })
}

fn parse_reference(reference: &str) -> Result<Reference> {
    reference.parse().map_err(|e| {
        CliError::module(reference, format!("not an image reference ({e}); use e.g. localhost:5000/app:latest"))
    })
}

/// Pulls the Wasm layer of `reference`.
pub async fn pull(reference: &str, plain_http: bool) -> Result<Vec<u8>> {
    let parsed = parse_reference(reference)?;
    let image = client(&parsed, plain_http)
        .pull(&parsed, &RegistryAuth::Anonymous, WASM_LAYER_MEDIA_TYPES.to_vec())
        .await
        .map_err(|e| CliError::module(reference, format!("pull failed: {e}")))?;
    image
        .layers
        .into_iter()
        .find(|l| WASM_LAYER_MEDIA_TYPES.contains(&l.media_type.as_str()))
        .map(|l| l.data.to_vec())
        .ok_or_else(|| CliError::module(reference, "the image has no Wasm layer"))
}

/// Pushes an image; returns the manifest URL.
pub async fn push(image: &WasmImage, reference: &str, plain_http: bool) -> Result<String> {
    let parsed = parse_reference(reference)?;
    let response = client(&parsed, plain_http)
        .push(
            &parsed,
            std::slice::from_ref(&image.layer),
            image.config.clone(),
            &RegistryAuth::Anonymous,
            Some(image.manifest()),
        )
        .await
        .map_err(|e| CliError::module(reference, format!("push failed: {e}")))?;
    Ok(response.manifest_url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_tar_round_trips() {
        let wasm = b"\0asm\x01\0\0\0".to_vec();
        let mut tar = Vec::new();
        WasmImage::new(wasm.clone()).write_layout_tar("localhost:5000/t:1", &mut tar).unwrap();
        let layout = Layout::read(&tar).unwrap();
        assert_eq!(layout.wasm, wasm);
        assert_eq!(layout.ref_name.as_deref(), Some("localhost:5000/t:1"));
    }

    #[test]
    fn reading_rejects_non_layouts_and_corrupt_blobs() {
        assert!(Layout::read(b"not a tar").is_err());
        let mut tar = Vec::new();
        WasmImage::new(b"\0asm\x01\0\0\0".to_vec()).write_layout_tar("t", &mut tar).unwrap();
        let wasm_at = tar.windows(8).position(|w| w == b"\0asm\x01\0\0\0").unwrap();
        tar[wasm_at + 4] = 2;
        let err = Layout::read(&tar).err().unwrap();
        assert!(err.contains("does not match its digest"), "{err}");
    }
}
