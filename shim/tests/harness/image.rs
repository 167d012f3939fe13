//! OCI image layout tars built without docker, for `ctr images import` (and pushing on to a
//! registry). Shared by the shim's tests and the e2e harness (which includes it by path).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// An OCI image layout tar for `ctr images import`, with one uncompressed tar layer, built
/// without docker: `ImageBuilder::new("localhost/spore/hello:1").file("/hello", bytes,
/// 0o755).entrypoint(["/hello"]).write(path)`. Platform `linux/amd64` unless
/// [`platform`](Self::platform) or [`wasm`](Self::wasm) says otherwise.
#[derive(Clone, Debug)]
pub struct ImageBuilder {
    name: String,
    files: Vec<(String, Vec<u8>, u32)>,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    env: Vec<String>,
    labels: Vec<(String, String)>,
    os: String,
    architecture: String,
}

impl ImageBuilder {
    /// `name` is the full reference, e.g. `localhost/spore/hello:1`.
    pub fn new(name: &str) -> ImageBuilder {
        ImageBuilder {
            name: name.into(),
            files: Vec::new(),
            entrypoint: Vec::new(),
            cmd: Vec::new(),
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            labels: Vec::new(),
            os: "linux".into(),
            architecture: "amd64".into(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A regular file at absolute `path`; parent directories are added (mode 0755).
    pub fn file(mut self, path: &str, contents: impl Into<Vec<u8>>, mode: u32) -> Self {
        assert!(path.starts_with('/'), "image paths are absolute: {path}");
        self.files.push((path.trim_start_matches('/').into(), contents.into(), mode));
        self
    }

    pub fn entrypoint<const N: usize>(mut self, args: [&str; N]) -> Self {
        self.entrypoint = args.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn cmd<const N: usize>(mut self, args: [&str; N]) -> Self {
        self.cmd = args.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Adds `KEY=VALUE` to the config's `Env`.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push(format!("{key}={value}"));
        self
    }

    /// A label in the image config (`config.Labels`).
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.push((key.into(), value.into()));
        self
    }

    pub fn platform(mut self, os: &str, architecture: &str) -> Self {
        self.os = os.into();
        self.architecture = architecture.into();
        self
    }

    /// Platform `wasip1/wasm`, as the Wasm OCI artifact convention names it (ctr 1.6 runs it
    /// without `--platform`, see the module docs).
    pub fn wasm(self) -> Self {
        self.platform("wasip1", "wasm")
    }

    /// Writes the OCI layout tar to `path`; returns `path`.
    pub fn write(&self, path: impl AsRef<Path>) -> PathBuf {
        let path = path.as_ref();
        std::fs::write(path, self.layout_tar()).unwrap_or_else(|e| panic!("failed to write {}: {e}", path.display()));
        path.to_path_buf()
    }

    fn layer_tar(&self) -> Vec<u8> {
        let mut tar = TarWriter::default();
        let mut dirs: Vec<String> = Vec::new();
        for (path, contents, mode) in &self.files {
            let mut parent = String::new();
            for part in path.split('/').collect::<Vec<_>>().split_last().unwrap().1 {
                parent = format!("{parent}{part}/");
                if !dirs.contains(&parent) {
                    tar.dir(&parent, 0o755);
                    dirs.push(parent.clone());
                }
            }
            tar.file(path, contents, *mode);
        }
        tar.finish()
    }

    fn config_json(&self, diff_id: &str) -> String {
        let mut config = format!("\"Env\":{}", json_strings(&self.env));
        if !self.entrypoint.is_empty() {
            write!(config, ",\"Entrypoint\":{}", json_strings(&self.entrypoint)).unwrap();
        }
        if !self.cmd.is_empty() {
            write!(config, ",\"Cmd\":{}", json_strings(&self.cmd)).unwrap();
        }
        if !self.labels.is_empty() {
            let labels: Vec<String> =
                self.labels.iter().map(|(k, v)| format!("{}:{}", json_string(k), json_string(v))).collect();
            write!(config, ",\"Labels\":{{{}}}", labels.join(",")).unwrap();
        }
        format!(
            r#"{{"architecture":{},"os":{},"config":{{{config}}},"rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#,
            json_string(&self.architecture),
            json_string(&self.os)
        )
    }

    fn layout_tar(&self) -> Vec<u8> {
        let mut out = TarWriter::default();
        out.dir("blobs/", 0o755);
        out.dir("blobs/sha256/", 0o755);
        let mut blob = |bytes: &[u8]| {
            let digest = format!("sha256:{:x}", Sha256::digest(bytes));
            out.file(&format!("blobs/sha256/{}", &digest[7..]), bytes, 0o644);
            format!(r#""digest":"{digest}","size":{}"#, bytes.len())
        };
        let layer = self.layer_tar();
        let layer_desc = blob(&layer);
        let diff_id = format!("sha256:{:x}", Sha256::digest(&layer)); // uncompressed: digest == diff id
        let config_desc = blob(self.config_json(&diff_id).as_bytes());
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json",{config_desc}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar",{layer_desc}}}]}}"#
        );
        let manifest_desc = blob(manifest.as_bytes());
        let tag = self.name.rsplit_once(':').filter(|(_, t)| !t.contains('/')).map_or("latest", |(_, t)| t);
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json",{manifest_desc},"annotations":{{"io.containerd.image.name":{},"org.opencontainers.image.ref.name":{}}}}}]}}"#,
            json_string(&self.name),
            json_string(tag)
        );
        out.file("index.json", index.as_bytes(), 0o644);
        out.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#, 0o644);
        out.finish()
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => write!(out, "\\u{:04x}", c as u32).unwrap(),
            c => out.push(c),
        }
    }
    out + "\""
}

fn json_strings(items: &[String]) -> String {
    format!("[{}]", items.iter().map(|s| json_string(s)).collect::<Vec<_>>().join(","))
}

/// A minimal ustar writer: regular files and directories, owned by root, mtime 0.
#[derive(Default)]
struct TarWriter {
    bytes: Vec<u8>,
}

impl TarWriter {
    fn header(&mut self, name: &str, mode: u32, size: usize, kind: u8) {
        assert!(name.len() <= 100, "tar path longer than 100 bytes: {name}");
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let mut octal = |at: usize, width: usize, value: u64| {
            let text = format!("{value:0w$o}", w = width - 1);
            h[at..at + width - 1].copy_from_slice(text.as_bytes());
        };
        octal(100, 8, mode as u64); // mode
        octal(108, 8, 0); // uid
        octal(116, 8, 0); // gid
        octal(124, 12, size as u64); // size
        octal(136, 12, 0); // mtime
        h[156] = kind;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        "); // checksum is computed with spaces here
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        self.bytes.extend_from_slice(&h);
    }

    fn file(&mut self, name: &str, contents: &[u8], mode: u32) {
        self.header(name, mode, contents.len(), b'0');
        self.bytes.extend_from_slice(contents);
        self.bytes.resize(self.bytes.len().next_multiple_of(512), 0);
    }

    fn dir(&mut self, name: &str, mode: u32) {
        self.header(name, mode, 0, b'5');
    }

    fn finish(mut self) -> Vec<u8> {
        self.bytes.extend_from_slice(&[0u8; 1024]);
        self.bytes
    }
}
