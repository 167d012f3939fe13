//! The committed CRD YAML is exactly what the types generate, and has what `kubectl` needs.

use std::path::Path;

#[test]
fn committed_crd_yaml_matches_the_types() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The Helm chart ships the same files (Helm installs `crds/` before the templates).
    for dir in [crate_dir.to_path_buf(), crate_dir.join("../helm/spore/crds")] {
        for (name, generated) in spore_crds::crd_yaml().unwrap() {
            let path = dir.join(name);
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                committed == generated,
                "{} is out of date with the Rust types; run `make crds` and commit the result",
                path.display()
            );
        }
    }
}

#[test]
fn wasmapp_crd_has_scale_subresource_printer_columns_and_cel_rules() {
    let crd = spore_crds::wasmapp_crd();
    assert_eq!(crd.metadata.name.as_deref(), Some("wasmapps.spore.dev"));
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(crd.spec.names.short_names.as_deref(), Some(&["wapp".to_string()][..]));
    assert_eq!(crd.spec.names.categories.as_deref(), Some(&["spore".to_string()][..]));

    let version = &crd.spec.versions[0];
    assert_eq!(version.name, "v1alpha1");
    let subresources = version.subresources.as_ref().unwrap();
    assert!(subresources.status.is_some());
    let scale = subresources.scale.as_ref().expect("scale subresource");
    assert_eq!(scale.spec_replicas_path, ".spec.scaling.replicas");
    assert_eq!(scale.status_replicas_path, ".status.replicas");
    assert_eq!(scale.label_selector_path.as_deref(), Some(".status.selector"));

    let columns: Vec<_> = version
        .additional_printer_columns
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| (c.name.as_str(), c.type_.as_str(), c.json_path.as_str()))
        .collect();
    assert_eq!(
        columns,
        [
            ("Ready", "string", r#".status.conditions[?(@.type=="Ready")].status"#),
            ("Replicas", "integer", ".status.replicas"),
            ("Available", "integer", ".status.readyReplicas"),
            ("Reason", "string", r#".status.conditions[?(@.type=="Ready")].reason"#),
            ("Module", "string", ".spec.module.image"),
            ("Age", "date", ".metadata.creationTimestamp"),
        ]
    );

    let schema = serde_json::to_value(version.schema.as_ref().unwrap()).unwrap();
    let spec = &schema["openAPIV3Schema"]["properties"]["spec"];
    let rules = |v: &serde_json::Value| -> Vec<String> {
        v["x-kubernetes-validations"]
            .as_array()
            .map(|a| a.iter().map(|r| r["rule"].as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    assert!(rules(spec).iter().any(|r| r.contains("self.volumes.exists(v, v.name == m.volume)")), "{:?}", rules(spec));
    assert!(!rules(&spec["properties"]["scaling"]).is_empty());
    assert!(!rules(&spec["properties"]["scaling"]["properties"]["autoscale"]).is_empty());
    assert!(!rules(&spec["properties"]["volumes"]["items"]).is_empty());
    assert!(!rules(&spec["properties"]["env"]["items"]).is_empty());
    // Lists searched by CEL rules are bounded, so the apiserver can bound the rules' cost.
    assert_eq!(spec["properties"]["volumes"]["maxItems"], 64);
    assert_eq!(spec["properties"]["capabilities"]["properties"]["filesystem"]["maxItems"], 64);
    assert_eq!(spec["properties"]["env"]["maxItems"], 256);
}

/// A list whose items carry CEL rules must be bounded, or a real apiserver refuses the CRD
/// because it cannot bound the rules' cost.
#[test]
fn every_list_with_cel_rules_in_its_items_is_bounded() {
    fn contains_rule(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::Object(o) => o.contains_key("x-kubernetes-validations") || o.values().any(contains_rule),
            serde_json::Value::Array(a) => a.iter().any(contains_rule),
            _ => false,
        }
    }
    fn walk(v: &serde_json::Value, path: &str, unbounded: &mut Vec<String>) {
        let Some(obj) = v.as_object() else { return };
        if let Some(items) = obj.get("items") {
            if contains_rule(items) && !obj.contains_key("maxItems") {
                unbounded.push(path.to_string());
            }
            walk(items, &format!("{path}[]"), unbounded);
        }
        if let Some(props) = obj.get("properties").and_then(|p| p.as_object()) {
            for (name, prop) in props {
                walk(prop, &format!("{path}.{name}"), unbounded);
            }
        }
    }
    for crd in [spore_crds::wasmapp_crd(), spore_crds::wasmruntime_crd()] {
        let schema = serde_json::to_value(crd.spec.versions[0].schema.as_ref().unwrap()).unwrap();
        let mut unbounded = Vec::new();
        walk(&schema["openAPIV3Schema"], "", &mut unbounded);
        assert!(
            unbounded.is_empty(),
            "{}: lists without maxItems whose items have CEL rules: {unbounded:?}",
            crd.spec.names.kind
        );
    }
}

#[test]
fn wasmruntime_crd_is_cluster_scoped_with_columns() {
    let crd = spore_crds::wasmruntime_crd();
    assert_eq!(crd.metadata.name.as_deref(), Some("wasmruntimes.spore.dev"));
    assert_eq!(crd.spec.scope, "Cluster");
    let columns: Vec<_> =
        crd.spec.versions[0].additional_printer_columns.as_ref().unwrap().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(columns, ["RuntimeClass", "Ready", "Age"]);
}

/// Quantities have Kubernetes' own int-or-string schema, so that editors and `kubectl` can
/// tell them from objects, and the apiserver reads `64Mi` and `65536` as it does in a pod.
#[test]
fn quantities_are_int_or_string_with_the_quantity_pattern() {
    let schema = |crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition| {
        serde_json::to_value(crd.spec.versions[0].schema.as_ref().unwrap()).unwrap()["openAPIV3Schema"].clone()
    };
    let app = schema(spore_crds::wasmapp_crd());
    let runtime = schema(spore_crds::wasmruntime_crd());
    let limits = &app["properties"]["spec"]["properties"]["limits"]["properties"];
    let volume = &app["properties"]["spec"]["properties"]["volumes"]["items"]["properties"];
    for quantity in [
        &limits["memory"],
        &limits["cpu"],
        &volume["emptyDir"]["properties"]["sizeLimit"],
        &runtime["properties"]["spec"]["properties"]["overhead"]["additionalProperties"],
    ] {
        assert_eq!(quantity["x-kubernetes-int-or-string"], true, "{quantity}");
        assert_eq!(quantity["anyOf"], serde_json::json!([{"type": "integer"}, {"type": "string"}]), "{quantity}");
        assert_eq!(quantity["pattern"], spore_crds::quantity::PATTERN, "{quantity}");
    }
}

/// Lists whose entries have a key are list maps, so that the apiserver refuses a key listed
/// twice and server-side apply merges by key.
#[test]
fn env_inbound_ports_and_volumes_are_list_maps() {
    let crd = serde_json::to_value(spore_crds::wasmapp_crd().spec.versions[0].schema.as_ref().unwrap()).unwrap();
    let spec = &crd["openAPIV3Schema"]["properties"]["spec"]["properties"];
    for (list, keys) in [
        (&spec["env"], serde_json::json!(["name"])),
        (&spec["volumes"], serde_json::json!(["name"])),
        (
            &spec["capabilities"]["properties"]["network"]["properties"]["inbound"],
            serde_json::json!(["port", "protocol"]),
        ),
    ] {
        assert_eq!((&list["x-kubernetes-list-type"], &list["x-kubernetes-list-map-keys"]), (&"map".into(), &keys));
    }
}
