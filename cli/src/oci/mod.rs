//! Wasm images in two formats, plain (an ordinary container image whose entrypoint is the
//! module) and the Wasm OCI artifact format: building OCI layout tars, reading them, and
//! moving images to and from registries with oci-client.

mod image;
mod layout;
mod module;

use std::path::{Path, PathBuf};

use clap::Subcommand;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::{ImageIndexEntry, OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use spore_shim::image::pick_manifest;

use crate::error::{CliError, Result};

pub use image::{Format, WasmImage};
pub use layout::Layout;
pub use module::ImageError;
use module::{LayerBlob, ModuleSource, file_in_layers, module_source};

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Write a Wasm module or component as an OCI image (OCI layout tar).
    ///
    /// Pick `--format plain` (the default) unless a tool needs the Wasm OCI artifact format:
    /// plain images run on any containerd (Debian's 1.6.20 too), through CRI and `ctr run`,
    /// and every registry stores them. `artifact` follows the Wasm OCI artifact spec, for
    /// registries and tools that understand it; containerd unpacks it only from 1.6.25/1.7 on
    /// and `ctr run` refuses it. Spore's shim runs both: a plain image from the unpacked rootfs
    /// (containerd's overlayfs or native snapshotter), an artifact from containerd's content
    /// store (any snapshotter).
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
        /// Image format: plain runs everywhere; artifact is the Wasm OCI artifact format.
        #[arg(long, value_enum, default_value_t = Format::Plain)]
        format: Format,
    },
    /// Push an image tar (from `spore image build`, either format) to a registry.
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
        ImageCommand::Build { module, tag, output, format } => {
            let image = WasmImage::build(read(&module)?, format);
            let file = std::fs::File::create(&output)
                .map_err(|source| CliError::Io { context: format!("cannot create {}", output.display()), source })?;
            image.write_layout_tar(&tag, file)?;
            println!("wrote {} ({tag}, {format:?} image, {})", output.display(), image.manifest_digest());
            Ok(0)
        }
        ImageCommand::Push { image, reference, plain_http } => {
            let name = image.display().to_string();
            let layout = Layout::read(&read(&image)?).map_err(|m| CliError::module(&name, m))?;
            // Refuse what neither spore up nor the shim could run, before it reaches a registry.
            layout.image.module().map_err(|e| CliError::module(&name, e))?;
            let reference = reference
                .or(layout.ref_name)
                .ok_or_else(|| CliError::module(&name, "the tar records no tag; pass the destination reference"))?;
            let url = push(&layout.image, &reference, plain_http).await?;
            println!("pushed {reference} ({url})");
            Ok(0)
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| CliError::Read { path: path.into(), source })
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
    Client::new(ClientConfig { protocol, platform_resolver: Some(Box::new(wasm_manifest)), ..ClientConfig::default() })
}

/// The manifest of an image index to pull, by the shim's rule: a wasm platform if one is
/// listed, else the only entry (not the host's platform, oci-client's default).
fn wasm_manifest(manifests: &[ImageIndexEntry]) -> Option<String> {
    let index = serde_json::json!({ "manifests": manifests });
    pick_manifest(index.to_string().as_bytes()).ok().map(|m| m.digest)
}

fn parse_reference(reference: &str) -> Result<Reference> {
    reference.parse().map_err(|e| {
        CliError::module(reference, format!("not an image reference ({e}); use e.g. localhost:5000/app:latest"))
    })
}

/// Pulls the module of `reference`: its Wasm layer, or the entrypoint's file in its layers.
pub async fn pull(reference: &str, plain_http: bool) -> Result<Vec<u8>> {
    let parsed = parse_reference(reference)?;
    let client = client(&parsed, plain_http);
    let failed = |e: oci_client::errors::OciDistributionError| CliError::module(reference, format!("pull failed: {e}"));
    let (manifest, _digest, config) =
        client.pull_manifest_and_config(&parsed, &RegistryAuth::Anonymous).await.map_err(failed)?;
    let source = module_source(&manifest, config.as_bytes()).map_err(|e| CliError::module(reference, e))?;
    match source {
        ModuleSource::WasmLayer(index) => pull_blob(&client, &parsed, &manifest.layers[index]).await.map_err(failed),
        ModuleSource::File(path) => {
            let blobs = pull_layers(&client, &parsed, &manifest).await.map_err(failed)?;
            let layers: Vec<LayerBlob> = manifest
                .layers
                .iter()
                .zip(&blobs)
                .map(|(l, data)| LayerBlob { media_type: &l.media_type, digest: &l.digest, data })
                .collect();
            file_in_layers(&path, &layers).map_err(|e| CliError::module(reference, e))
        }
    }
}

/// Every layer, bottom first (a plain image's entrypoint may be in any of them).
async fn pull_layers(
    client: &Client,
    reference: &Reference,
    manifest: &OciImageManifest,
) -> Result<Vec<Vec<u8>>, oci_client::errors::OciDistributionError> {
    let mut blobs = Vec::with_capacity(manifest.layers.len());
    for layer in &manifest.layers {
        blobs.push(pull_blob(client, reference, layer).await?);
    }
    Ok(blobs)
}

/// One blob; oci-client checks it against its digest.
async fn pull_blob(
    client: &Client,
    reference: &Reference,
    descriptor: &OciDescriptor,
) -> Result<Vec<u8>, oci_client::errors::OciDistributionError> {
    let mut out = Vec::new();
    client.pull_blob(reference, descriptor, &mut out).await?;
    Ok(out)
}

/// Pushes an image as it is (its manifest, config and layers); returns the manifest URL.
pub async fn push(image: &WasmImage, reference: &str, plain_http: bool) -> Result<String> {
    let parsed = parse_reference(reference)?;
    let response = client(&parsed, plain_http)
        .push(&parsed, &image.layers, image.config.clone(), &RegistryAuth::Anonymous, Some(image.manifest.clone()))
        .await
        .map_err(|e| CliError::module(reference, format!("push failed: {e}")))?;
    Ok(response.manifest_url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_resolves_to_its_wasm_manifest_as_the_shim_does() {
        let entry = |digest: &str, architecture: &str, os: &str| {
            serde_json::json!({"mediaType": oci_client::manifest::OCI_IMAGE_MEDIA_TYPE, "digest": digest, "size": 1,
                "platform": {"architecture": architecture, "os": os}})
        };
        let entries: Vec<ImageIndexEntry> = serde_json::from_value(serde_json::json!([
            entry("sha256:l", "amd64", "linux"),
            entry("sha256:w", "wasm", "wasip1"),
            entry("sha256:a", "arm64", "linux"),
        ]))
        .unwrap();
        assert_eq!(wasm_manifest(&entries).as_deref(), Some("sha256:w"));
        assert_eq!(wasm_manifest(&entries[..1]).as_deref(), Some("sha256:l"));
        assert_eq!(wasm_manifest(&[entries[0].clone(), entries[2].clone()]), None);
    }
}
