//! Checking, the way kubelet would see it, that containerd serves the handler: `crictl info`
//! prints the CRI plugin's config, runtimes included, on containerd 1.6, 1.7 and 2.x alike
//! (`.config.containerd.runtimes.<handler>.runtimeType` and `.runtimePath`). It shows that
//! containerd loaded the drop-in, not that the shim starts (which would need a pod).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::dropin::ShimRuntime;
use crate::error::{Error, Result};

/// containerd may answer on its socket a moment before its CRI plugin is ready.
pub const VERIFY_TIMEOUT: Duration = Duration::from_secs(15);
const RETRY: Duration = Duration::from_millis(500);

/// What is wrong with `crictl info`'s output for `handler`, expected to name the shim as
/// `expected` says, if anything.
pub fn check_info(info: &Value, handler: &str, expected: &ShimRuntime) -> Result<(), String> {
    let runtimes = info.pointer("/config/containerd/runtimes").and_then(Value::as_object).ok_or(
        "`crictl info` has no .config.containerd.runtimes (is the CRI plugin enabled in containerd's config?)",
    )?;
    let Some(runtime) = runtimes.get(handler) else {
        let known: Vec<&str> = runtimes.keys().map(String::as_str).collect();
        return Err(format!(
            "containerd has no runtime handler \"{handler}\" (it has {known:?}): it did not load the drop-in"
        ));
    };
    let runtime_type = runtime.get("runtimeType").and_then(Value::as_str).unwrap_or("");
    if runtime_type != expected.runtime_type {
        let expected = &expected.runtime_type;
        return Err(format!("handler \"{handler}\" has runtimeType {runtime_type:?}, expected {expected:?}"));
    }
    // containerd 1.6, 1.7 and 2.x report it, empty when unset; an absent one is not checked.
    if let Some(path) = runtime.get("runtimePath").and_then(Value::as_str) {
        let matches = match &expected.runtime_path {
            Some(expected) => Path::new(path) == expected,
            None => path.is_empty(),
        };
        if !matches {
            let expected = expected.runtime_path.as_ref().map_or(String::new(), |p| p.display().to_string());
            return Err(format!("handler \"{handler}\" has runtimePath {path:?}, expected {expected:?}"));
        }
    }
    Ok(())
}

/// Runs `crictl info` against `socket` (as the installer reaches it) until it shows the
/// handler, for up to [`VERIFY_TIMEOUT`]; the error says what was missing last.
pub fn verify(crictl: &Path, socket: &Path, handler: &str, expected: &ShimRuntime) -> Result<()> {
    let endpoint = format!("unix://{}", socket.display());
    let deadline = Instant::now() + VERIFY_TIMEOUT;
    loop {
        let problem = match crictl_info(crictl, &endpoint) {
            Ok(info) => match check_info(&info, handler, expected) {
                Ok(()) => return Ok(()),
                Err(problem) => problem,
            },
            Err(problem) => problem,
        };
        if Instant::now() > deadline {
            let detail = format!("after {}s, {problem}", VERIFY_TIMEOUT.as_secs());
            return Err(Error::Verify { detail });
        }
        std::thread::sleep(RETRY);
    }
}

fn crictl_info(crictl: &Path, endpoint: &str) -> Result<Value, String> {
    let output = Command::new(crictl)
        .args(["--runtime-endpoint", endpoint, "--timeout", "5s", "info"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", crictl.display()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        // crictl logs config-file warnings first; the last line is the error.
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
        return Err(format!("`crictl --runtime-endpoint {endpoint} info` failed ({}): {last}", output.status));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("`crictl info` printed no JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigVersion;
    use serde_json::json;

    const SHIM: &str = "/opt/spore/bin/containerd-shim-spore-v1";

    /// The relevant part of `crictl info` on containerd 1.6.20, 1.7.35 and 2.1.4 (same shape).
    fn info(spore: Value) -> Value {
        json!({"config": {"containerd": {"defaultRuntimeName": "runc", "runtimes": {
            "runc": {"runtimeType": "io.containerd.runc.v2", "runtimePath": ""},
            "spore": spore,
        }}}})
    }

    fn expected(version: ConfigVersion) -> ShimRuntime {
        ShimRuntime::new(version, Path::new(SHIM))
    }

    #[test]
    fn accepts_the_version_2_runtime_named_by_its_path() {
        let spore = json!({"runtimeType": SHIM, "runtimePath": "", "PodAnnotations": ["spore.dev/*"]});
        assert_eq!(check_info(&info(spore), "spore", &expected(ConfigVersion::V2)), Ok(()));
        let without_path = json!({"runtimeType": SHIM});
        assert_eq!(check_info(&info(without_path), "spore", &expected(ConfigVersion::V2)), Ok(()));
    }

    #[test]
    fn accepts_the_version_3_runtime_with_its_path() {
        let spore =
            json!({"runtimeType": "io.containerd.spore.v1", "runtimePath": SHIM, "PodAnnotations": ["spore.dev/*"]});
        assert_eq!(check_info(&info(spore), "spore", &expected(ConfigVersion::V3)), Ok(()));
        let without_path = json!({"runtimeType": "io.containerd.spore.v1"});
        assert_eq!(check_info(&info(without_path), "spore", &expected(ConfigVersion::V3)), Ok(()));
    }

    #[test]
    fn names_what_is_missing() {
        let v3 = expected(ConfigVersion::V3);
        let spore = json!({"runtimeType": "io.containerd.spore.v1", "runtimePath": SHIM});
        let missing = check_info(&info(spore.clone()), "fast", &v3).unwrap_err();
        assert!(missing.contains("no runtime handler \"fast\"") && missing.contains("\"runc\""), "{missing}");

        let wrong_type = info(json!({"runtimeType": "io.containerd.runc.v2", "runtimePath": SHIM}));
        assert!(check_info(&wrong_type, "spore", &v3).unwrap_err().contains("runtimeType"));

        let elsewhere = ShimRuntime::new(ConfigVersion::V3, Path::new("/usr/bin/shim"));
        let wrong_path = check_info(&info(spore), "spore", &elsewhere).unwrap_err();
        assert!(wrong_path.contains("runtimePath \"/opt/spore/bin/containerd-shim-spore-v1\""), "{wrong_path}");

        let no_cri = check_info(&json!({"status": {}}), "spore", &v3).unwrap_err();
        assert!(no_cri.contains("CRI plugin"), "{no_cri}");
    }

    /// A version 2 runtime named by `runtime_path` is not the one the drop-in sets: containerd
    /// 1.6 would look its type up on its PATH (containerd#8207).
    #[test]
    fn refuses_the_runtime_type_containerd_1_6_looks_up_on_its_path() {
        let v2 = expected(ConfigVersion::V2);
        let by_name = info(json!({"runtimeType": "io.containerd.spore.v1", "runtimePath": SHIM}));
        let message = check_info(&by_name, "spore", &v2).unwrap_err();
        assert_eq!(
            message,
            "handler \"spore\" has runtimeType \"io.containerd.spore.v1\", expected \"/opt/spore/bin/containerd-shim-spore-v1\""
        );
        let with_path = info(json!({"runtimeType": SHIM, "runtimePath": SHIM}));
        let message = check_info(&with_path, "spore", &v2).unwrap_err();
        assert!(message.contains("expected \"\""), "{message}");
    }
}
