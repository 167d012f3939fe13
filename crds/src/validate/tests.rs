use super::*;
use crate::app::{Volume, WasmApp};
use crate::cases::{Crd, invalid_apps, valid_apps};
use crate::fixtures::*;

/// The CRD's CEL rules, as the committed CRD states them (the rules on `metadata.name`
/// included), evaluated in-process. The OpenAPI schema checks are left to the e2e suite.
fn crd_cel(app: &WasmApp) -> Result<(), kube::core::cel::ValidationErrors> {
    use kube::core::cel::{CompiledSchema, compile_schema, validate_compiled};
    thread_local! {
        // Compiling the rules takes a while; each test thread does it once.
        static RULES: CompiledSchema = {
            let crd = crate::wasmapp_crd();
            let schema = crd.spec.versions[0].schema.as_ref().and_then(|s| s.open_api_v3_schema.as_ref()).unwrap();
            compile_schema(&serde_json::to_value(schema).unwrap())
        };
    }
    RULES.with(|rules| validate_compiled(rules, &serde_json::to_value(app).unwrap(), None))
}

#[test]
fn rejects_each_invalid_app_blaming_the_right_field() {
    for case in invalid_apps() {
        let errors = case.app.validate().expect_err(&case.name);
        assert!(
            errors.iter().any(|e| e.field == case.field && e.message.contains(case.fragment)),
            "{}: expected `{}: ...{}...`, got:\n{errors}",
            case.name,
            case.field,
            case.fragment,
        );
    }
}

#[test]
fn accepts_valid_apps() {
    for (name, app) in valid_apps() {
        if let Err(errors) = app.validate() {
            panic!("{name}: unexpected errors:\n{errors}");
        }
    }
}

#[test]
fn reports_every_problem_not_just_the_first() {
    let errors = app().with_image("").with_replicas(-1).with_memory("lots").validate().unwrap_err();
    let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["spec.module.image", "spec.scaling.replicas", "spec.limits.memory"]);
}

#[test]
fn displays_one_error_per_line_as_field_colon_message() {
    let errors = app().with_mount("data", "/data").with_replicas(-1).validate().unwrap_err();
    assert_eq!(
        errors.to_string(),
        "spec.scaling.replicas: is -1; set 0 or more\n\
         spec.capabilities.filesystem[0].volume: volume \"data\" is not in spec.volumes; add a volume of that name or fix the name"
    );
}

#[test]
fn every_invalid_case_is_caught_by_the_crd_cel_rules_too() {
    for case in invalid_apps().into_iter().filter(|c| c.crd == Crd::Cel) {
        let errors = crd_cel(&case.app).expect_err(&case.name);
        assert!(
            errors.as_slice().iter().all(|e| e.kind == kube::core::cel::ErrorKind::ValidationFailure),
            "{}: CEL rules failed to evaluate:\n{errors}",
            case.name
        );
        // CEL reports the object that carries the rule (or its fieldPath); `validate()` the
        // field inside it. (kube-cel writes a root rule's fieldPath with its leading dot.)
        assert!(
            errors.as_slice().iter().any(|e| case.field.starts_with(e.field_path.trim_start_matches('.'))),
            "{}: CEL blamed another field than {}:\n{errors}",
            case.name,
            case.field
        );
    }
}

#[test]
fn cel_messages_name_the_offending_value() {
    for (app, fragment) in [
        (app().with_memory("-1Mi"), "memory limit -1Mi is negative"),
        (app().with_memory("1"), "memory limit 1 is below one Wasm page (64Ki)"),
        (app().with_timeout("0s"), "timeout 0s is not above zero"),
        (app().with_env(env("1 BAD", "x")), r#"env name "1 BAD" is not a C identifier"#),
        (app().with_outbound_http("*.*.com"), r#""*.*.com" is not a host pattern"#),
        (app().with_volume(empty_dir("a")).with_mount("a", "/a/../b"), r#"guestPath "/a/../b" is not a clean path"#),
        (app().with_mount("data", "/data"), r#"volume "data" is not in spec.volumes"#),
        (app().with_inbound(0), "port 0 is out of range"),
        (app().with_max_concurrency(0), "maxConcurrency 0 is below 1"),
        (app().with_name("1app"), r#"metadata.name "1app" is not a DNS-1035 label"#),
        (app().with_name(&"c".repeat(60)).with_cron_job(crate::fixtures::cron("@daily")), "has 60 characters"),
    ] {
        let errors = crd_cel(&app).unwrap_err().to_string();
        assert!(errors.contains(fragment), "expected {fragment:?} in:\n{errors}");
    }
}

#[test]
fn valid_apps_pass_the_crd_cel_rules() {
    for (name, app) in valid_apps() {
        if let Err(errors) = crd_cel(&app) {
            panic!("{name}: CEL rejected a valid app:\n{errors}");
        }
    }
}

#[test]
fn parses_cidrs_like_kubernetes() {
    for ok in ["10.0.0.0/8", "10.0.0.1/8", "0.0.0.0/0", "::/0", "::1/128", "fd00::/8", "192.168.1.1/32"] {
        assert!(parse_cidr(ok).is_some(), "{ok}");
    }
    for bad in
        ["10.0.0.0", "10.0.0.0/33", "::1/129", "10.0.0.0/", "10.0.0.0/08", "10.0.0/8", "010.0.0.0/8", "host/8", ""]
    {
        assert!(parse_cidr(bad).is_none(), "{bad}");
    }
}

#[test]
fn source_kind_is_the_only_source_or_none() {
    let volume = config_map("config", "app-config");
    assert!(matches!(volume.source_kind(), Some(VolumeSourceKind::ConfigMap(cm)) if cm.name == "app-config"));
    assert_eq!(volume.clone().without_sources().source_kind(), None);
    assert_eq!(volume.with_empty_dir().source_kind(), None);
}

use crate::app::VolumeSourceKind;

const HELLO: &str = r#"
apiVersion: spore.dev/v1alpha1
kind: WasmApp
metadata:
  name: hello
spec:
  module:
    image: localhost:5000/spore/hello:latest
  volumes:
    - name: data
      emptyDir: {}
  capabilities:
    filesystem:
      - volume: data
        guestPath: /data
  scaling:
    autoscale:
      maxReplicas: 3
      targetConcurrency: 10
"#;

#[test]
fn parses_a_manifest_and_applies_defaults() {
    let app = parse_manifest(HELLO).unwrap();
    assert_eq!(app.metadata.name.as_deref(), Some("hello"));
    assert!(app.spec.capabilities.filesystem[0].read_only, "readOnly defaults to true");
    assert_eq!(app.spec.scaling.autoscale.as_ref().unwrap().min_replicas, 1);
    app.validate().unwrap();
}

#[test]
fn manifest_typos_are_rejected_with_path_and_line() {
    let yaml = HELLO.replace("guestPath: /data", "guestPath: /data\n        readonly: true");
    let err = parse_manifest(&yaml).unwrap_err().to_string();
    assert!(err.contains("unknown field `readonly`"), "{err}");
    assert!(err.contains("spec.capabilities.filesystem[0]"), "{err}");
    assert!(err.contains("line 16"), "{err}");
}

#[test]
fn manifest_of_another_kind_is_rejected_by_kind() {
    let err = parse_manifest(&HELLO.replace("kind: WasmApp", "kind: Deployment")).unwrap_err();
    assert!(matches!(&err, ManifestError::WrongKind { found } if found == "Deployment"), "{err}");
    assert!(err.to_string().contains("must be a WasmApp"), "{err}");

    let err = parse_manifest(&HELLO.replace("spore.dev/v1alpha1", "apps/v1")).unwrap_err();
    assert!(
        err.to_string().contains(r#"apiVersion is "apps/v1", but a WasmApp has `apiVersion: spore.dev/v1alpha1`"#),
        "{err}"
    );

    let err = parse_manifest(&HELLO.replace("apiVersion: spore.dev/v1alpha1\n", "")).unwrap_err();
    assert!(err.to_string().contains("missing `apiVersion`; add `apiVersion: spore.dev/v1alpha1`"), "{err}");
}

#[test]
fn manifest_with_unknown_top_level_field_is_rejected() {
    let err = parse_manifest(&HELLO.replace("spec:", "spce:")).unwrap_err();
    assert!(matches!(&err, ManifestError::UnknownTopLevelField(f) if f == "spce"), "{err}");
}

#[test]
fn manifest_that_is_not_yaml_or_not_a_mapping_is_rejected() {
    assert!(matches!(parse_manifest("a: [1"), Err(ManifestError::Yaml(_))));
    assert!(matches!(parse_manifest("- 1\n- 2\n"), Err(ManifestError::NotAMapping)));
}

#[test]
fn volume_helper_is_what_fixtures_build() {
    let v: Volume = empty_dir("scratch");
    assert_eq!(v.source_kind().map(|s| s.field_name()), Some("emptyDir"));
}

#[test]
fn cases_marked_apiserver_are_left_to_the_apiserver() {
    for case in invalid_apps().into_iter().filter(|c| c.crd == Crd::Apiserver) {
        if let Err(errors) = crd_cel(&case.app) {
            panic!("{}: CEL rejects it after all; drop .by_schema() or the lenient mark:\n{errors}", case.name);
        }
    }
}

#[test]
fn manifests_round_trip_through_yaml() {
    for (name, app) in valid_apps() {
        let yaml = serde_yaml::to_string(&app).unwrap();
        let parsed = parse_manifest(&yaml).unwrap_or_else(|e| panic!("{name}: {e}\n{yaml}"));
        assert_eq!(parsed, app, "{name}");
    }
}
