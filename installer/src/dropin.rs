//! The drop-in file that registers the Spore runtime handler with containerd's CRI plugin.
//! Pure: renders text from its inputs.
//!
//! containerd 2.x (config version 3) merges imported files key by key, so the drop-in holds
//! just the runtime table. containerd 1.x (version 2) lets an imported plugin section replace
//! the node's whole CRI section (CNI dirs, sandbox image, runc options...), so there the
//! drop-in repeats the CRI section it would otherwise hide and adds the runtime to it.
//!
//! The shim is not on containerd's PATH (it lives in the install dir): each version names it
//! by its host path in the way that version honours, see [`ShimRuntime`].

use std::path::{Path, PathBuf};

use toml::{Table, Value};

use crate::config::ConfigVersion;

/// The runtime type containerd turns into the shim binary name `containerd-shim-spore-v1`.
pub const RUNTIME_TYPE: &str = "io.containerd.spore.v1";
/// Pod and container annotations containerd passes through to the shim.
pub const ANNOTATIONS: &str = "spore.dev/*";
/// The runtime containerd 1.x uses by default (`default_runtime_name`) and its type.
const DEFAULT_RUNTIME: &str = "runc";
const RUNC_RUNTIME_TYPE: &str = "io.containerd.runc.v2";

/// How every drop-in the installer writes begins: marks the files it manages.
pub const MANAGED_MARKER: &str = "# Managed by Spore's node installer";

/// Whether a drop-in's text was written by the installer.
pub fn is_managed(text: &str) -> bool {
    text.starts_with(MANAGED_MARKER)
}

/// `spore-<handler>.toml`, the drop-in's name in the drop-in directory.
pub fn file_name(handler: &str) -> String {
    format!("spore-{handler}.toml")
}

/// How a runtime handler leads containerd to the shim binary at a host path: the drop-in's
/// `runtime_type` and `runtime_path`, and what `crictl info` reports back for them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShimRuntime {
    pub runtime_type: String,
    /// `None`: the drop-in sets no `runtime_path` (`crictl info` reports it empty).
    pub runtime_path: Option<PathBuf>,
}

impl ShimRuntime {
    /// Version 2 (containerd 1.6/1.7): the shim's absolute path as the runtime type, and no
    /// `runtime_path`. containerd 1.6 ignores the CRI `runtime_path` and looks
    /// `containerd-shim-spore-v1` up on its PATH (containerd#8207); 1.7 honours it, but a
    /// version 2 config does not say which of them reads it. The shim manager of both runs an
    /// absolute runtime type as the binary itself.
    ///
    /// Version 3 (containerd 2.x): the type [`RUNTIME_TYPE`] with `runtime_path`, which 2.x
    /// honours (the installer's tests start a pod this way on containerd 2.1.4).
    pub fn new(version: ConfigVersion, shim: &Path) -> ShimRuntime {
        match version {
            ConfigVersion::V2 => ShimRuntime { runtime_type: shim.display().to_string(), runtime_path: None },
            ConfigVersion::V3 => ShimRuntime { runtime_type: RUNTIME_TYPE.into(), runtime_path: Some(shim.into()) },
        }
    }
}

/// The drop-in for one runtime handler.
#[derive(Clone, Debug)]
pub struct DropIn<'a> {
    pub version: ConfigVersion,
    pub handler: &'a str,
    /// Host path of the installed shim binary.
    pub shim: &'a Path,
    /// Version 2 only: the CRI section the drop-in replaces, and the file it comes from
    /// (`None`: no file sets one, containerd's defaults apply).
    pub replaced_cri_section: Option<(&'a Path, &'a Table)>,
}

impl DropIn<'_> {
    /// The file's text: a header comment, `version = N`, then the CRI plugin section.
    pub fn render(&self) -> String {
        let mut cri = match (self.version.imports_replace_plugin_sections(), self.replaced_cri_section) {
            (true, Some((_, section))) => section.clone(),
            _ => Table::new(),
        };
        if self.version.imports_replace_plugin_sections() {
            keep_default_runtime(&mut cri);
        }
        table_at(&mut cri, &["containerd", "runtimes"]).insert(self.handler.into(), self.runtime_table().into());

        let mut plugins = Table::new();
        plugins.insert(self.version.cri_plugin().into(), cri.into());
        let mut file = Table::new();
        file.insert("version".into(), self.version.number().into());
        file.insert("plugins".into(), plugins.into());
        let body = toml::to_string(&file).expect("a TOML table always serializes");
        format!("{}{body}", self.header())
    }

    fn runtime_table(&self) -> Table {
        let ShimRuntime { runtime_type, runtime_path } = ShimRuntime::new(self.version, self.shim);
        let annotations = Value::Array(vec![ANNOTATIONS.into()]);
        let mut runtime = Table::new();
        runtime.insert("runtime_type".into(), runtime_type.into());
        if let Some(path) = runtime_path {
            runtime.insert("runtime_path".into(), path.display().to_string().into());
        }
        runtime.insert("pod_annotations".into(), annotations.clone());
        runtime.insert("container_annotations".into(), annotations);
        runtime
    }

    fn header(&self) -> String {
        let mut header = format!(
            "{MANAGED_MARKER} (spore-node-installer): registers the CRI runtime handler\n\
             # \"{}\". Rewritten on install and removed on uninstall; do not edit.\n",
            self.handler
        );
        if self.version.imports_replace_plugin_sections() {
            let source = match self.replaced_cri_section {
                Some((path, _)) => format!("the CRI settings of {}", path.display()),
                None => "containerd's default CRI settings".into(),
            };
            header.push_str(&format!(
                "# containerd 1.x keeps only the last imported section of a plugin, so this file repeats\n\
                 # {source}; after changing them, run the installer again.\n\
                 # The runtime type is the shim's path: containerd 1.6 ignores runtime_path (containerd#8207).\n"
            ));
        }
        header
    }
}

/// containerd 1.x drops its built-in `runc` runtime once any file lists runtimes: keep it
/// when it is the default runtime and nothing else defines it.
fn keep_default_runtime(cri: &mut Table) {
    let default = cri.get("containerd").and_then(|c| c.get("default_runtime_name")).and_then(Value::as_str);
    if default.is_some_and(|name| name != DEFAULT_RUNTIME) {
        return;
    }
    let runtimes = table_at(cri, &["containerd", "runtimes"]);
    if !runtimes.contains_key(DEFAULT_RUNTIME) {
        let mut runc = Table::new();
        runc.insert("runtime_type".into(), RUNC_RUNTIME_TYPE.into());
        runtimes.insert(DEFAULT_RUNTIME.into(), runc.into());
    }
}

/// The table at `keys` below `table`, created (replacing any non-table value) as needed.
fn table_at<'t>(table: &'t mut Table, keys: &[&str]) -> &'t mut Table {
    keys.iter().fold(table, |table, key| {
        let entry = table.entry(*key).or_insert_with(|| Table::new().into());
        if !entry.is_table() {
            *entry = Table::new().into();
        }
        entry.as_table_mut().expect("made a table above")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIM: &str = "/opt/spore/bin/containerd-shim-spore-v1";

    fn render(version: ConfigVersion, replaced: Option<(&str, &str)>) -> String {
        let replaced = replaced.map(|(path, text)| (Path::new(path), text.parse::<Table>().unwrap()));
        DropIn {
            version,
            handler: "spore",
            shim: Path::new(SHIM),
            replaced_cri_section: replaced.as_ref().map(|(p, t)| (*p, t)),
        }
        .render()
    }

    #[test]
    fn version_3_holds_only_the_runtime() {
        let expected = r#"# Managed by Spore's node installer (spore-node-installer): registers the CRI runtime handler
# "spore". Rewritten on install and removed on uninstall; do not edit.
version = 3

[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.spore]
runtime_type = "io.containerd.spore.v1"
runtime_path = "/opt/spore/bin/containerd-shim-spore-v1"
pod_annotations = ["spore.dev/*"]
container_annotations = ["spore.dev/*"]
"#;
        assert_eq!(render(ConfigVersion::V3, None), expected);
        // A section elsewhere does not matter: 2.x merges key by key.
        assert_eq!(render(ConfigVersion::V3, Some(("/etc/containerd/config.toml", "x = 1"))), expected);
    }

    #[test]
    fn version_2_without_cri_settings_keeps_the_default_runc() {
        let expected = r#"# Managed by Spore's node installer (spore-node-installer): registers the CRI runtime handler
# "spore". Rewritten on install and removed on uninstall; do not edit.
# containerd 1.x keeps only the last imported section of a plugin, so this file repeats
# containerd's default CRI settings; after changing them, run the installer again.
# The runtime type is the shim's path: containerd 1.6 ignores runtime_path (containerd#8207).
version = 2

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.spore]
runtime_type = "/opt/spore/bin/containerd-shim-spore-v1"
pod_annotations = ["spore.dev/*"]
container_annotations = ["spore.dev/*"]
"#;
        assert_eq!(render(ConfigVersion::V2, None), expected);
    }

    #[test]
    fn version_2_repeats_the_replaced_cri_section_in_its_order() {
        let section = r#"
sandbox_image = "registry.k8s.io/pause:3.9"
[cni]
bin_dir = "/opt/cni/bin"
[containerd]
default_runtime_name = "runc"
[containerd.runtimes.runc]
runtime_type = "io.containerd.runc.v2"
[containerd.runtimes.runc.options]
SystemdCgroup = true
[containerd.runtimes.spore]
runtime_type = "io.containerd.old.v1"
"#;
        let expected = r#"# Managed by Spore's node installer (spore-node-installer): registers the CRI runtime handler
# "spore". Rewritten on install and removed on uninstall; do not edit.
# containerd 1.x keeps only the last imported section of a plugin, so this file repeats
# the CRI settings of /etc/containerd/config.toml; after changing them, run the installer again.
# The runtime type is the shim's path: containerd 1.6 ignores runtime_path (containerd#8207).
version = 2

[plugins."io.containerd.grpc.v1.cri"]
sandbox_image = "registry.k8s.io/pause:3.9"

[plugins."io.containerd.grpc.v1.cri".cni]
bin_dir = "/opt/cni/bin"

[plugins."io.containerd.grpc.v1.cri".containerd]
default_runtime_name = "runc"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
SystemdCgroup = true

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.spore]
runtime_type = "/opt/spore/bin/containerd-shim-spore-v1"
pod_annotations = ["spore.dev/*"]
container_annotations = ["spore.dev/*"]
"#;
        assert_eq!(render(ConfigVersion::V2, Some(("/etc/containerd/config.toml", section))), expected);
    }

    #[test]
    fn version_2_adds_no_runc_when_another_runtime_is_the_default() {
        let section =
            "[containerd]\ndefault_runtime_name = \"crun\"\n[containerd.runtimes.crun]\nruntime_type = \"x\"\n";
        let text = render(ConfigVersion::V2, Some(("/c.toml", section)));
        assert!(!text.contains("runtimes.runc]"), "{text}");
        assert!(text.contains("runtimes.crun]"), "{text}");
    }

    #[test]
    fn version_2_names_the_shim_by_path_as_its_runtime_type() {
        let runtime = ShimRuntime::new(ConfigVersion::V2, Path::new(SHIM));
        assert_eq!(runtime, ShimRuntime { runtime_type: SHIM.into(), runtime_path: None });
    }

    #[test]
    fn version_3_names_the_runtime_type_and_its_path() {
        let runtime = ShimRuntime::new(ConfigVersion::V3, Path::new(SHIM));
        assert_eq!(runtime, ShimRuntime { runtime_type: RUNTIME_TYPE.into(), runtime_path: Some(SHIM.into()) });
    }

    #[test]
    fn rendered_drop_ins_parse_back() {
        for version in [ConfigVersion::V2, ConfigVersion::V3] {
            let table: Table = render(version, None).parse().unwrap();
            let runtime = &table["plugins"][version.cri_plugin()]["containerd"]["runtimes"]["spore"];
            let expected = ShimRuntime::new(version, Path::new(SHIM));
            assert_eq!(runtime["runtime_type"].as_str(), Some(expected.runtime_type.as_str()));
            let path = expected.runtime_path.as_ref().map(|p| p.to_str().unwrap());
            assert_eq!(runtime.get("runtime_path").and_then(Value::as_str), path);
            assert_eq!(table["version"].as_integer(), Some(version.number()));
        }
    }

    #[test]
    fn rendered_drop_ins_are_marked_managed() {
        assert!(is_managed(&render(ConfigVersion::V3, None)));
        assert!(!is_managed("version = 2\n"));
    }

    #[test]
    fn file_name_carries_the_handler() {
        assert_eq!(file_name("spore"), "spore-spore.toml");
    }
}
