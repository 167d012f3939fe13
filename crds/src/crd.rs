//! The CRDs as installed: what kube-derive generates from the types, finished with what it
//! cannot express.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use kube::CustomResourceExt;

use crate::{WasmApp, WasmRuntime, app, composition, quantity};

/// The CRD manifests, as `(file name, YAML)` pairs: `wasmapps.spore.dev.yaml` and
/// `wasmruntimes.spore.dev.yaml`. `crdgen` writes them; a test checks the committed copies.
pub fn crd_yaml() -> Result<Vec<(&'static str, String)>, serde_yaml::Error> {
    Ok(vec![
        ("wasmapps.spore.dev.yaml", serde_yaml::to_string(&wasmapp_crd())?),
        ("wasmruntimes.spore.dev.yaml", serde_yaml::to_string(&wasmruntime_crd())?),
    ])
}

/// The WasmApp CRD: `WasmApp::crd()`, the rules on `metadata.name` and those tying
/// components together, and int-or-string quantities. kube-derive leaves the root `metadata` out of the schema; the apiserver lets a
/// CRD constrain `name` there, and a rule may only name (`fieldPath`) a field the schema has.
pub fn wasmapp_crd() -> CustomResourceDefinition {
    let mut crd = finish(WasmApp::crd());
    for root in root_schemas(&mut crd) {
        // k8s-openapi's schema of `emptyDir.sizeLimit` does not say it is a quantity.
        let volumes = root.properties.as_mut().and_then(|p| p.get_mut("spec")).and_then(|s| property(s, "volumes"));
        let empty_dir = volumes.and_then(|v| match v.items.as_mut() {
            Some(JSONSchemaPropsOrArray::Schema(volume)) => property(volume, "emptyDir"),
            _ => None,
        });
        if let Some(size_limit) = empty_dir.and_then(|e| property(e, "sizeLimit")) {
            size_limit.pattern = Some(quantity::PATTERN.into());
        }
        if let Some(spec) = root.properties.as_mut().and_then(|p| p.get_mut("spec")) {
            spec.x_kubernetes_validations.get_or_insert_default().extend(composition::spec_rules());
        }
        let name = JSONSchemaProps { type_: Some("string".into()), ..Default::default() };
        let metadata = JSONSchemaProps {
            type_: Some("object".into()),
            properties: Some([("name".to_string(), name)].into()),
            ..Default::default()
        };
        root.properties.get_or_insert_default().insert("metadata".into(), metadata);
        root.x_kubernetes_validations.get_or_insert_default().extend(app::name_rules());
    }
    crd
}

/// The WasmRuntime CRD: `WasmRuntime::crd()` with int-or-string quantities.
pub fn wasmruntime_crd() -> CustomResourceDefinition {
    finish(WasmRuntime::crd())
}

fn finish(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    for root in root_schemas(&mut crd) {
        restore_int_or_string(root);
    }
    crd
}

fn property<'a>(schema: &'a mut JSONSchemaProps, name: &str) -> Option<&'a mut JSONSchemaProps> {
    schema.properties.as_mut()?.get_mut(name)
}

fn root_schemas(crd: &mut CustomResourceDefinition) -> impl Iterator<Item = &mut JSONSchemaProps> {
    crd.spec.versions.iter_mut().filter_map(|v| v.schema.as_mut()?.open_api_v3_schema.as_mut())
}

/// kube-derive drops `type` from `anyOf` branches; this puts back Kubernetes' own form of an
/// int-or-string (`anyOf: [{type: integer}, {type: string}]`) wherever one is declared, so
/// that tools reading the schema see what the value may be.
fn restore_int_or_string(schema: &mut JSONSchemaProps) {
    if schema.x_kubernetes_int_or_string == Some(true) {
        let typed = |t: &str| JSONSchemaProps { type_: Some(t.into()), ..Default::default() };
        schema.any_of = Some(vec![typed("integer"), typed("string")]);
    }
    for child in schema.properties.iter_mut().flat_map(|p| p.values_mut()) {
        restore_int_or_string(child);
    }
    match schema.items.as_mut() {
        Some(JSONSchemaPropsOrArray::Schema(item)) => restore_int_or_string(item),
        Some(JSONSchemaPropsOrArray::Schemas(items)) => items.iter_mut().for_each(restore_int_or_string),
        None => {}
    }
    if let Some(JSONSchemaPropsOrBool::Schema(value)) = schema.additional_properties.as_mut() {
        restore_int_or_string(value);
    }
}
