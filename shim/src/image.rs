//! The two image formats `spore image build` writes, as far as finding the module goes: the
//! Wasm OCI artifact format (config `application/vnd.wasm.config.v0+json`, one
//! `application/wasm` layer) and plain images (an ordinary tar layer holding the module at
//! the entrypoint). Media types and pure functions over the manifest and index JSON, shared
//! by the shim (containerd's content store) and the CLI.

use serde::Deserialize;

pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// Layer media types other Wasm tooling publishes; accepted when reading.
pub const WASM_LAYER_MEDIA_TYPES: [&str; 3] = [
    WASM_LAYER_MEDIA_TYPE,
    "application/vnd.wasm.content.layer.v1+wasm",
    "application/vnd.module.wasm.content.layer.v1+wasm",
];
/// The entrypoint `spore image build` records. In a plain image it is the module's path in
/// the layer; an artifact's config records it for CRI's sake (CRI wants a command) with no
/// such file, so the shim falls back to the Wasm layer.
pub const MODULE_ENTRYPOINT: &str = "/app.wasm";
/// A plain image's config and the layer `spore image build` writes for one.
pub const OCI_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_GZIP_LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Filesystem layers (tar, or gzip of a tar) of plain OCI and Docker images; accepted when
/// reading.
pub const TAR_LAYER_MEDIA_TYPES: [&str; 4] = [
    "application/vnd.oci.image.layer.v1.tar",
    OCI_GZIP_LAYER_MEDIA_TYPE,
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
];
const INDEX_MEDIA_TYPES: [&str; 2] =
    ["application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"];

/// A content descriptor: what to fetch and how to check it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: i64,
    #[serde(default)]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Index {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

pub fn is_index(media_type: &str) -> bool {
    INDEX_MEDIA_TYPES.contains(&media_type)
}

/// The manifest of an index to run: a Wasm platform if one is listed, else the only entry.
pub fn pick_manifest(index_json: &[u8]) -> Result<Descriptor, String> {
    let index: Index = serde_json::from_slice(index_json).map_err(|e| format!("unreadable image index: {e}"))?;
    let wasm = index.manifests.iter().find(|m| m.platform.as_ref().is_some_and(|p| p.architecture == "wasm"));
    match (wasm, index.manifests.as_slice()) {
        (Some(m), _) | (None, [m]) => Ok(m.clone()),
        (None, []) => Err("the image index lists no manifest".into()),
        (None, _) => {
            Err(format!("the image index lists {} manifests and none for architecture wasm", index.manifests.len()))
        }
    }
}

/// The Wasm layer of an image manifest, or an error listing what the image has instead.
pub fn wasm_layer(manifest_json: &[u8]) -> Result<Descriptor, String> {
    let manifest: Manifest =
        serde_json::from_slice(manifest_json).map_err(|e| format!("unreadable image manifest: {e}"))?;
    manifest.layers.iter().find(|l| WASM_LAYER_MEDIA_TYPES.contains(&l.media_type.as_str())).cloned().ok_or_else(|| {
        let found: Vec<&str> = manifest.layers.iter().map(|l| l.media_type.as_str()).collect();
        format!("the image has no Wasm layer ({WASM_LAYER_MEDIA_TYPE}); its layers are [{}]", found.join(", "))
    })
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", crate::cache::hex_sha256(bytes))
}

/// Checks fetched content against the digest it was asked for.
pub fn verify(descriptor: &Descriptor, bytes: &[u8]) -> Result<(), String> {
    let actual = sha256_digest(bytes);
    if actual == descriptor.digest {
        Ok(())
    } else {
        Err(format!("blob {} does not match its digest (got {actual}): corrupt content", descriptor.digest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn descriptor(media_type: &str, digest: &str) -> serde_json::Value {
        serde_json::json!({"mediaType": media_type, "digest": digest, "size": 1})
    }

    #[test]
    fn the_wasm_layer_is_found_by_media_type() {
        for (layers, expected) in [
            (vec![descriptor(WASM_LAYER_MEDIA_TYPE, "sha256:a")], Ok("sha256:a")),
            (
                vec![
                    descriptor("application/vnd.oci.image.layer.v1.tar+gzip", "sha256:t"),
                    descriptor("application/vnd.wasm.content.layer.v1+wasm", "sha256:b"),
                ],
                Ok("sha256:b"),
            ),
            (
                vec![descriptor("application/vnd.oci.image.layer.v1.tar+gzip", "sha256:t")],
                Err("its layers are [application/vnd.oci.image.layer.v1.tar+gzip]"),
            ),
            (vec![], Err("has no Wasm layer")),
        ] {
            let manifest = serde_json::json!({"schemaVersion": 2, "layers": layers}).to_string();
            match (wasm_layer(manifest.as_bytes()), expected) {
                (Ok(layer), Ok(digest)) => assert_eq!(layer.digest, digest),
                (Err(err), Err(part)) => assert!(err.contains(part), "{err:?} lacks {part:?}"),
                (got, want) => panic!("got {got:?}, want {want:?}"),
            }
        }
        assert!(wasm_layer(b"{not json").unwrap_err().contains("unreadable image manifest"));
    }

    #[test]
    fn an_index_resolves_to_its_wasm_or_only_manifest() {
        let entry = |digest: &str, platform: Option<(&str, &str)>| {
            let mut d = descriptor("application/vnd.oci.image.manifest.v1+json", digest);
            if let Some((arch, os)) = platform {
                d["platform"] = serde_json::json!({"architecture": arch, "os": os});
            }
            d
        };
        for (manifests, expected) in [
            (vec![entry("sha256:only", None)], Ok("sha256:only")),
            (
                vec![entry("sha256:l", Some(("amd64", "linux"))), entry("sha256:w", Some(("wasm", "wasip1")))],
                Ok("sha256:w"),
            ),
            (
                vec![entry("sha256:l", Some(("amd64", "linux"))), entry("sha256:a", Some(("arm64", "linux")))],
                Err("none for architecture wasm"),
            ),
            (vec![], Err("lists no manifest")),
        ] {
            let index = serde_json::json!({"schemaVersion": 2, "manifests": manifests}).to_string();
            match (pick_manifest(index.as_bytes()), expected) {
                (Ok(m), Ok(digest)) => assert_eq!(m.digest, digest),
                (Err(err), Err(part)) => assert!(err.contains(part), "{err:?} lacks {part:?}"),
                (got, want) => panic!("got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn content_is_checked_against_its_digest() {
        let layer = Descriptor {
            media_type: WASM_LAYER_MEDIA_TYPE.into(),
            digest: sha256_digest(b"x"),
            size: 1,
            platform: None,
        };
        assert!(verify(&layer, b"x").is_ok());
        assert!(verify(&layer, b"y").unwrap_err().contains("corrupt content"));
    }
}
