//! Reading an OCI layout tar (from `spore image build`, or `ctr images export`) back.

use std::collections::HashMap;
use std::io::Read;

use oci_client::client::{Config, ImageLayer};
use oci_client::manifest::{OciDescriptor, OciImageIndex, OciImageManifest};
use spore_shim::image::sha256_digest;

use super::image::{REF_NAME_ANNOTATION, WasmImage};

/// What a layout tar holds: its first image, and the reference recorded for it.
pub struct Layout {
    pub image: WasmImage,
    pub ref_name: Option<String>,
}

impl Layout {
    /// Reads the first image of an OCI layout tar, whatever its format, with its config and
    /// layers as they are (media types, annotations); every blob is checked against its digest.
    pub fn read(tar_bytes: &[u8]) -> Result<Self, String> {
        let files = tar_files(tar_bytes)?;
        let checked = |digest: &str| blob(&files, digest);
        let index = files
            .get("index.json")
            .ok_or("not an OCI image layout (no index.json); build one with `spore image build`")?;
        let index: OciImageIndex = serde_json::from_slice(index).map_err(|e| format!("index.json: {e}"))?;
        let entry = index.manifests.first().ok_or("index.json lists no image")?;
        let manifest: OciImageManifest =
            serde_json::from_slice(checked(&entry.digest)?).map_err(|e| format!("manifest {}: {e}", entry.digest))?;
        let config = Config::new(
            checked(&manifest.config.digest)?.clone(),
            manifest.config.media_type.clone(),
            manifest.config.annotations.clone(),
        );
        let layers =
            manifest.layers.iter().map(|l| Ok(layer(l, checked(&l.digest)?))).collect::<Result<_, String>>()?;
        let ref_name = entry.annotations.as_ref().and_then(|a| a.get(REF_NAME_ANNOTATION)).cloned();
        Ok(Self { image: WasmImage::from_parts(manifest, config, layers), ref_name })
    }
}

fn tar_files(tar_bytes: &[u8]) -> Result<HashMap<String, Vec<u8>>, String> {
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
    Ok(files)
}

fn blob<'a>(files: &'a HashMap<String, Vec<u8>>, digest: &str) -> Result<&'a Vec<u8>, String> {
    let hex = digest.strip_prefix("sha256:").ok_or_else(|| format!("unsupported digest {digest}"))?;
    let data = files.get(&format!("blobs/sha256/{hex}")).ok_or_else(|| format!("blob {digest} is missing"))?;
    if sha256_digest(data) != digest {
        return Err(format!("blob {digest} does not match its digest (corrupt image)"));
    }
    Ok(data)
}

fn layer(descriptor: &OciDescriptor, data: &[u8]) -> ImageLayer {
    ImageLayer::new(data.to_vec(), descriptor.media_type.clone(), descriptor.annotations.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::oci::image::Format;

    const MODULE: &[u8] = b"\0asm\x01\0\0\0";

    fn layout_tar(format: Format) -> Vec<u8> {
        let mut tar = Vec::new();
        WasmImage::build(MODULE.to_vec(), format).write_layout_tar("localhost:5000/t:1", &mut tar).unwrap();
        tar
    }

    #[test]
    fn both_formats_round_trip_through_the_layout_tar() {
        for format in [Format::Plain, Format::Artifact] {
            let built = WasmImage::build(MODULE.to_vec(), format);
            let layout = Layout::read(&layout_tar(format)).unwrap();
            assert_eq!(layout.image.module().unwrap(), MODULE, "{format:?}");
            assert_eq!(layout.ref_name.as_deref(), Some("localhost:5000/t:1"));
            assert_eq!(layout.image.manifest_digest(), built.manifest_digest(), "{format:?}");
            assert_eq!(layout.image.config.media_type, built.config.media_type);
            assert_eq!(layout.image.config.data, built.config.data);
            assert_eq!(layout.image.layers[0].media_type, built.layers[0].media_type);
            assert_eq!(layout.image.layers[0].data, built.layers[0].data);
        }
    }

    #[test]
    fn reading_rejects_non_layouts_and_corrupt_blobs() {
        assert!(Layout::read(b"not a tar").is_err());
        let mut tar = layout_tar(Format::Artifact);
        let wasm_at = tar.windows(8).position(|w| w == MODULE).unwrap();
        tar[wasm_at + 4] = 2;
        let err = Layout::read(&tar).err().unwrap();
        assert!(err.contains("does not match its digest"), "{err}");
    }
}
