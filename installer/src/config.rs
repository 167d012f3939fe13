//! containerd's main config, read but never written: its layout version, its gRPC socket and
//! the files it imports. Pure: parses text and paths, touches no disk.

use std::path::{Path, PathBuf};

use toml::Table;

use crate::error::{Error, Result};

/// containerd's own default for `--config`.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/containerd/config.toml";
/// containerd's default `[grpc] address`.
pub const DEFAULT_GRPC_ADDRESS: &str = "/run/containerd/containerd.sock";

/// The config layout, which decides where CRI runtimes live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigVersion {
    /// `version = 2`: containerd 1.6/1.7 (2.x reads it too).
    V2,
    /// `version = 3`: containerd 2.x.
    V3,
}

impl ConfigVersion {
    pub fn number(self) -> i64 {
        match self {
            ConfigVersion::V2 => 2,
            ConfigVersion::V3 => 3,
        }
    }

    /// The plugin whose `containerd.runtimes` table holds the CRI runtime handlers.
    pub fn cri_plugin(self) -> &'static str {
        match self {
            ConfigVersion::V2 => "io.containerd.grpc.v1.cri",
            ConfigVersion::V3 => "io.containerd.cri.v1.runtime",
        }
    }

    /// containerd 1.x merges imported files plugin by plugin: the last file that has a
    /// plugin's section replaces it whole (containerd#5837). 2.x merges key by key.
    pub fn imports_replace_plugin_sections(self) -> bool {
        self == ConfigVersion::V2
    }
}

/// What the installer needs from containerd's main config.
#[derive(Clone, Debug)]
pub struct MainConfig {
    /// Host path of the file.
    pub path: PathBuf,
    pub version: ConfigVersion,
    /// Host path of containerd's gRPC socket.
    pub grpc_address: PathBuf,
    /// `imports`, relative entries resolved against the config's directory as containerd does,
    /// except relative globs in version 2 configs (see [`resolve_import`]), kept relative.
    pub imports: Vec<PathBuf>,
    /// The whole parsed file.
    pub table: Table,
}

impl MainConfig {
    /// Parses the config at host path `path`.
    pub fn parse(path: &Path, text: &str) -> Result<MainConfig> {
        let table: Table =
            text.parse().map_err(|source| Error::ParseConfig { path: path.into(), source: Box::new(source) })?;
        let invalid = |reason: &str| Error::InvalidConfig { path: path.into(), reason: reason.into() };
        let version = match table.get("version") {
            Some(toml::Value::Integer(2)) => ConfigVersion::V2,
            Some(toml::Value::Integer(3)) => ConfigVersion::V3,
            None => {
                return Err(Error::UnsupportedVersion { path: path.into(), found: "no `version` (version 1)".into() });
            }
            Some(other) => {
                return Err(Error::UnsupportedVersion { path: path.into(), found: format!("version = {other}") });
            }
        };
        let grpc_address = match table.get("grpc").and_then(|grpc| grpc.get("address")) {
            None => PathBuf::from(DEFAULT_GRPC_ADDRESS),
            Some(toml::Value::String(address)) if Path::new(address).is_absolute() => PathBuf::from(address),
            Some(_) => return Err(invalid("[grpc] address is not an absolute path")),
        };
        let imports = match table.get("imports") {
            None => Vec::new(),
            Some(toml::Value::Array(entries)) => entries
                .iter()
                .map(|entry| entry.as_str().map(|s| resolve_import(path, s, version)))
                .collect::<Option<_>>()
                .ok_or_else(|| invalid("imports is not a list of strings"))?,
            Some(_) => return Err(invalid("imports is not a list of strings")),
        };
        Ok(MainConfig { path: path.into(), version, grpc_address, imports, table })
    }

    /// Host path of the directory of the first `imports` entry of the form `DIR/*.toml`.
    pub fn dropin_dir(&self) -> Result<PathBuf> {
        let import = self.imports.iter().find(|import| dropin_glob_dir(import).is_some());
        match import.and_then(|import| dropin_glob_dir(import)) {
            Some(dir) if dir.is_absolute() => Ok(dir.to_path_buf()),
            Some(_) => Err(Error::RelativeDropInGlob {
                path: self.path.clone(),
                import: import.expect("found above").to_string_lossy().into_owned(),
            }),
            None => Err(Error::NoDropInDir { path: self.path.clone() }),
        }
    }
}

/// containerd resolves a relative import against the importing file's directory, except
/// that containerd 1.6 globs a relative pattern against its working directory
/// (containerd#9745, fixed in 2.0 and later 1.7 releases: 1.7.35 globs against the config's
/// directory). Version 3 configs are 2.x-only; a relative glob in a version 2 config is kept
/// relative: which directory it means depends on the binary.
fn resolve_import(config_path: &Path, import: &str, version: ConfigVersion) -> PathBuf {
    let import = Path::new(import);
    let ambiguous = version == ConfigVersion::V2 && is_glob(import);
    match config_path.parent() {
        Some(dir) if import.is_relative() && !ambiguous => dir.join(import),
        _ => import.to_path_buf(),
    }
}

/// DIR, when `pattern` is `DIR/*.toml` with no wildcard in DIR.
fn dropin_glob_dir(pattern: &Path) -> Option<&Path> {
    let dir = pattern.parent()?;
    let plain_dir = !dir.to_string_lossy().contains(['*', '?', '[']);
    (pattern.file_name()? == "*.toml" && plain_dir).then_some(dir)
}

/// Whether containerd treats an import as a glob (it checks for `*` only).
pub fn is_glob(import: &Path) -> bool {
    import.to_string_lossy().contains('*')
}

/// Shell-style match of a file name against a pattern with `*` and `?` (the wildcards
/// Spore needs from Go's `filepath.Match`; `[...]` classes are taken literally).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (pattern, name): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Classic two-pointer wildcard match: remember the last `*` to backtrack to.
    let (mut p, mut n, mut star, mut resume) = (0, 0, None, 0);
    while n < name.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some(p);
                resume = n;
                p += 1;
            }
            Some(&c) if c == '?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some(s) => {
                    p = s + 1;
                    resume += 1;
                    n = resume;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// `plugins."<CRI plugin>"` of a parsed config file, if it has one.
pub fn cri_section(table: &Table, version: ConfigVersion) -> Option<&Table> {
    table.get("plugins")?.get(version.cri_plugin())?.as_table()
}

/// Whether a runtime in the CRI section of a parsed config file runs the binary at host path
/// `shim`: names it by its `runtime_path` (how version 3 drop-ins do) or by an absolute
/// `runtime_type` (how version 2 drop-ins do, as containerd 1.6 ignores `runtime_path`:
/// containerd#8207). Either form counts whatever the version.
pub fn runs_shim(table: &Table, version: ConfigVersion, shim: &Path) -> bool {
    let runtimes = cri_section(table, version).and_then(|cri| cri.get("containerd")?.get("runtimes")?.as_table());
    let names_shim = |runtime: &toml::Value, key: &str| {
        let path = runtime.get(key).and_then(toml::Value::as_str).map(Path::new);
        path.is_some_and(|path| path.is_absolute() && path == shim)
    };
    runtimes.is_some_and(|runtimes| {
        runtimes.values().any(|runtime| names_shim(runtime, "runtime_path") || names_shim(runtime, "runtime_type"))
    })
}

/// The CRI section containerd 1.x would use if our drop-in were not there: the last one in
/// `files` (the main config, then imported files in containerd's order, our drop-in among
/// them at `ours`) with the source's path. A section after ours would replace ours whole.
pub fn cri_section_besides_ours(
    version: ConfigVersion,
    files: &[(PathBuf, Table)],
    ours: &Path,
) -> Result<Option<(PathBuf, Table)>> {
    let mut found = None;
    let mut after_ours = false;
    for (path, table) in files {
        if path == ours {
            after_ours = true;
            continue;
        }
        if let Some(section) = cri_section(table, version) {
            if after_ours {
                return Err(Error::CriSectionOverridden {
                    plugin: version.cri_plugin(),
                    later: path.clone(),
                    ours: ours.into(),
                });
            }
            found = Some((path.clone(), section.clone()));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<MainConfig> {
        MainConfig::parse(Path::new("/etc/containerd/config.toml"), text)
    }

    fn table(text: &str) -> Table {
        text.parse().unwrap()
    }

    #[test]
    fn reads_version_2_with_socket_and_imports() {
        let config = parse(
            r#"
version = 2
imports = ["/etc/containerd/conf.d/*.toml"]
[grpc]
  address = "/run/k3s/containerd/containerd.sock"
"#,
        )
        .unwrap();
        assert_eq!(config.version, ConfigVersion::V2);
        assert_eq!(config.version.cri_plugin(), "io.containerd.grpc.v1.cri");
        assert_eq!(config.grpc_address, Path::new("/run/k3s/containerd/containerd.sock"));
        assert_eq!(config.imports, [PathBuf::from("/etc/containerd/conf.d/*.toml")]);
        assert_eq!(config.dropin_dir().unwrap(), Path::new("/etc/containerd/conf.d"));
    }

    #[test]
    fn reads_version_3_with_the_default_socket() {
        let config = parse("version = 3\nimports = ['/etc/containerd/conf.d/*.toml']\n").unwrap();
        assert_eq!(config.version, ConfigVersion::V3);
        assert_eq!(config.version.cri_plugin(), "io.containerd.cri.v1.runtime");
        assert_eq!(config.grpc_address, Path::new(DEFAULT_GRPC_ADDRESS));
        let config = parse("version = 3\n[grpc]\n  uid = 0\n").unwrap();
        assert_eq!(config.grpc_address, Path::new(DEFAULT_GRPC_ADDRESS));
    }

    #[test]
    fn rejects_version_1_and_missing_version_naming_the_migration() {
        for text in ["", "[grpc]\naddress = \"/run/c.sock\"\n", "version = 1\n", "version = 4\n", "version = \"2\"\n"] {
            let message = parse(text).unwrap_err().to_string();
            assert!(message.contains("containerd config migrate"), "{text:?}: {message}");
        }
        assert!(parse("").unwrap_err().to_string().contains("has no `version` (version 1)"));
        assert!(parse("version = 1").unwrap_err().to_string().contains("has version = 1;"));
    }

    #[test]
    fn resolves_relative_imports_against_the_config_directory() {
        let config = parse("version = 3\nimports = [\"conf.d/*.toml\", \"/abs/x.toml\", \"../y.toml\"]\n").unwrap();
        assert_eq!(
            config.imports,
            [
                PathBuf::from("/etc/containerd/conf.d/*.toml"),
                PathBuf::from("/abs/x.toml"),
                PathBuf::from("/etc/containerd/../y.toml"),
            ]
        );
        assert_eq!(config.dropin_dir().unwrap(), Path::new("/etc/containerd/conf.d"));
    }

    #[test]
    fn relative_globs_in_version_2_are_refused_as_ambiguous() {
        let config = parse("version = 2\nimports = [\"conf.d/*.toml\", \"../y.toml\"]\n").unwrap();
        assert_eq!(config.imports, [PathBuf::from("conf.d/*.toml"), PathBuf::from("/etc/containerd/../y.toml")]);
        let message = config.dropin_dir().unwrap_err().to_string();
        assert!(message.contains("relative glob \"conf.d/*.toml\""), "{message}");
        assert!(message.contains("\"/etc/containerd/conf.d/*.toml\""), "names the absolute form: {message}");
    }

    #[test]
    fn drop_in_dir_is_the_first_toml_glob() {
        let config =
            parse("version = 2\nimports = [\"/a/b.toml\", \"/x/*.conf\", \"/d1/*.toml\", \"/d2/*.toml\"]\n").unwrap();
        assert_eq!(config.dropin_dir().unwrap(), Path::new("/d1"));
    }

    #[test]
    fn no_drop_in_dir_names_the_line_to_add() {
        for text in [
            "version = 2\n",
            "version = 2\nimports = []\n",
            "version = 3\nimports = [\"/etc/containerd/extra.toml\", \"/etc/*/x/*.conf\"]\n",
            "version = 3\nimports = [\"/etc/*/*.toml\"]\n",
        ] {
            let message = parse(text).unwrap().dropin_dir().unwrap_err().to_string();
            assert_eq!(
                message,
                "containerd config /etc/containerd/config.toml imports no drop-in directory; add imports = \
                 [\"/etc/containerd/conf.d/*.toml\"] to it and restart containerd (Spore never edits the main config)",
                "{text:?}"
            );
        }
    }

    #[test]
    fn rejects_malformed_fields() {
        assert!(parse("version = 2\nimports = \"/x/*.toml\"\n").unwrap_err().to_string().contains("imports"));
        assert!(parse("version = 2\nimports = [1]\n").unwrap_err().to_string().contains("imports"));
        assert!(parse("version = 2\n[grpc]\naddress = 5\n").unwrap_err().to_string().contains("[grpc] address"));
        assert!(parse("version = 2\n[grpc\n").unwrap_err().to_string().contains("is not valid TOML"));
    }

    #[test]
    fn glob_matches_like_filepath_match() {
        assert!(glob_match("*.toml", "spore-spore.toml"));
        assert!(glob_match("*.toml", ".toml"));
        assert!(glob_match("10-*.toml", "10-gpu.toml"));
        assert!(glob_match("a?c*", "abcdef"));
        assert!(glob_match("*a*b", "xaxxab"));
        assert!(!glob_match("*.toml", "spore.toml.bak"));
        assert!(!glob_match("10-*.toml", "20-gpu.toml"));
        assert!(!glob_match("a?c", "ac"));
    }

    #[test]
    fn finds_runtimes_running_the_shim_by_runtime_path() {
        let text = "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.fast]\nruntime_type = \"io.containerd.spore.v1\"\nruntime_path = \"/opt/spore/bin/shim\"\n";
        let v3 = ConfigVersion::V3;
        assert!(runs_shim(&table(text), v3, Path::new("/opt/spore/bin/shim")));
        assert!(!runs_shim(&table(text), v3, Path::new("/opt/other/shim")));
        assert!(!runs_shim(&table(text), ConfigVersion::V2, Path::new("/opt/spore/bin/shim")));
        assert!(!runs_shim(&table("version = 3"), v3, Path::new("/opt/spore/bin/shim")));
    }

    #[test]
    fn finds_runtimes_running_the_shim_by_an_absolute_runtime_type() {
        let text = "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.spore]\nruntime_type = \"/opt/spore/bin/shim\"\n";
        let v2 = ConfigVersion::V2;
        assert!(runs_shim(&table(text), v2, Path::new("/opt/spore/bin/shim")));
        assert!(!runs_shim(&table(text), v2, Path::new("/opt/other/shim")));
        assert!(!runs_shim(&table(text), ConfigVersion::V3, Path::new("/opt/spore/bin/shim")));
        let by_name = "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\nruntime_type = \"io.containerd.runc.v2\"\n";
        assert!(!runs_shim(&table(by_name), v2, Path::new("io.containerd.runc.v2")), "names are no paths");
    }

    #[test]
    fn cri_section_is_the_last_one_before_ours() {
        let v2 = ConfigVersion::V2;
        let main = table("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\nsandbox_image = \"main\"\n");
        let earlier = table("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".cni]\nconf_dir = \"/cni\"\n");
        let unrelated = table("version = 2\n[plugins.\"io.containerd.internal.v1.opt\"]\npath = \"/opt\"\n");
        let ours = PathBuf::from("/d/spore-spore.toml");
        let files = |list: Vec<(&str, &Table)>| -> Vec<(PathBuf, Table)> {
            list.into_iter().map(|(p, t)| (PathBuf::from(p), t.clone())).collect()
        };

        let only_main = files(vec![("/main.toml", &main), ("/d/spore-spore.toml", &earlier)]);
        let (source, section) = cri_section_besides_ours(v2, &only_main, &ours).unwrap().unwrap();
        assert_eq!(source, Path::new("/main.toml"));
        assert_eq!(section["sandbox_image"].as_str(), Some("main"));

        let with_earlier =
            files(vec![("/main.toml", &main), ("/d/10-cni.toml", &earlier), ("/d/spore-spore.toml", &main)]);
        let (source, section) = cri_section_besides_ours(v2, &with_earlier, &ours).unwrap().unwrap();
        assert_eq!(source, Path::new("/d/10-cni.toml"));
        assert!(section.get("sandbox_image").is_none(), "whole sections replace each other");

        let none = files(vec![("/main.toml", &unrelated), ("/d/spore-spore.toml", &main)]);
        assert!(cri_section_besides_ours(v2, &none, &ours).unwrap().is_none());

        let later = files(vec![("/main.toml", &main), ("/d/spore-spore.toml", &main), ("/d/zz.toml", &earlier)]);
        let message = cri_section_besides_ours(v2, &later, &ours).unwrap_err().to_string();
        assert!(message.starts_with("/d/zz.toml configures plugins.\"io.containerd.grpc.v1.cri\""), "{message}");
    }
}
