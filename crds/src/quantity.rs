//! Kubernetes quantities (`64Mi`, `500m`, `2`) in the CRDs: the int-or-string schema the
//! apiserver checks them with, and a reader that takes exactly what that schema admits.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use schemars::{Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, Unexpected, Visitor};

/// `resource.Quantity`'s grammar, as Kubernetes' own OpenAPI schemas state it.
pub const PATTERN: &str = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$";

/// The schema of one quantity: a string of the quantity grammar, or an integer.
pub fn schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "pattern": PATTERN,
        "x-kubernetes-int-or-string": true,
    })
}

/// The schema of a map of quantities (`{memory: 8Mi, cpu: 10m}`).
pub fn map_schema(generator: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "additionalProperties": schema(generator),
    })
}

/// A quantity as the schema admits it. A YAML float is refused, as the apiserver refuses it
/// (`cpu: 0.5` must be written `"500m"` or `"0.5"`); a whole one (`1e6`) is an integer.
struct IntOrString(String);

impl<'de> de::Deserialize<'de> for IntOrString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(IntOrStringVisitor)
    }
}

struct IntOrStringVisitor;

impl Visitor<'_> for IntOrStringVisitor {
    type Value = IntOrString;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a quantity: a string such as \"64Mi\" or \"500m\", or an integer")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(IntOrString(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(IntOrString(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(IntOrString(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        let whole = v.fract() == 0.0 && v.abs() < i64::MAX as f64;
        if whole { Ok(IntOrString((v as i64).to_string())) } else { Err(E::invalid_type(Unexpected::Float(v), &self)) }
    }
}

/// `#[serde(deserialize_with)]` for an `Option<Quantity>` field.
pub fn deserialize_optional<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Quantity>, D::Error> {
    Ok(<Option<IntOrString> as de::Deserialize>::deserialize(deserializer)?.map(|q| Quantity(q.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct Limits {
        #[serde(default, deserialize_with = "deserialize_optional")]
        cpu: Option<Quantity>,
    }

    fn cpu(yaml: &str) -> Result<Option<String>, String> {
        serde_yaml::from_str::<Limits>(yaml).map(|l| l.cpu.map(|q| q.0)).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_strings_integers_and_whole_floats_but_not_fractions() {
        for (yaml, want) in [
            ("cpu: 500m", Some("500m")),
            ("cpu: \"0.5\"", Some("0.5")),
            ("cpu: 2", Some("2")),
            ("cpu: 1e3", Some("1000")),
        ] {
            assert_eq!(cpu(yaml), Ok(want.map(str::to_string)), "{yaml}");
        }
        assert_eq!(cpu("{}"), Ok(None));
        assert_eq!(cpu("cpu: null"), Ok(None));
        let err = cpu("cpu: 0.5").unwrap_err();
        assert!(err.contains("invalid type: floating point `0.5`, expected a quantity"), "{err}");
    }
}
