//! Every manifest under `examples/` parses as a WasmApp and validates.

use std::path::{Path, PathBuf};

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("failed to read {}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

#[test]
fn every_example_manifest_parses_and_validates() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut files = Vec::new();
    yaml_files(&examples, &mut files);
    files.sort();
    assert!(files.len() >= 3, "expected the example manifests under {}, found {files:?}", examples.display());
    for file in files {
        let yaml = std::fs::read_to_string(&file).unwrap();
        let app = spore_crds::parse_manifest(&yaml).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        if let Err(errors) = app.validate() {
            panic!("{}:\n{errors}", file.display());
        }
        if let Err(errors) = kube::core::cel::validate_cel(&app) {
            panic!("{}: the CRD's CEL rules reject it:\n{errors}", file.display());
        }
    }
}

#[test]
fn hello_http_example_is_what_the_docs_promise() {
    let yaml =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello-http/app.yaml")).unwrap();
    let app = spore_crds::parse_manifest(&yaml).unwrap();
    assert_eq!(app.metadata.name.as_deref(), Some("hello-http"));
    assert_eq!(app.spec.module.image, "localhost:5000/spore/hello-http:latest");
    assert_eq!(app.spec.scaling.replicas, Some(2));
    assert_eq!(app.spec.limits.memory_bytes().unwrap(), Some(64 << 20));
    assert_eq!(app.spec.limits.timeout().unwrap(), Some(std::time::Duration::from_secs(30)));
    assert_eq!(app.spec.limits.max_concurrency, Some(50));
    let inbound = &app.spec.capabilities.network.inbound;
    assert_eq!((inbound[0].name.as_deref(), inbound[0].port), (Some("http"), 8080));
}
