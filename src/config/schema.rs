//! The JSON Schema of a scenario file (`ionfield schema`, `docs/config.schema.json`),
//! generated from the raw config types by schemars, so editors (VS Code, Taplo, Helix)
//! complete the keys, show their doc comments and flag a key ionfield would refuse.
//!
//! A scenario file is a layer: `include` merges other files first (`compose`), so a file
//! on its own may lack keys the merged scenario needs (`name`, `grid`, a species'
//! diffusivity). The schema therefore requires no key; `ionfield check` validates the
//! merged scenario. Unknown keys are refused at every level (`additionalProperties:
//! false`, as `deny_unknown_fields` does), and values have their types.

use serde_json::{json, Value};

use super::validate::RawScenario;

/// The schema, JSON Schema draft 2020-12.
pub fn scenario_schema() -> Value {
    let mut schema = schemars::schema_for!(RawScenario).to_value();
    drop_required(&mut schema);
    schema["title"] = json!("ionfield scenario file");
    schema["description"] = json!(
        "A scenario (or a layer of one: `include` merges other files first). Units in every key name or doc: µm, s, mM. `ionfield check FILE` validates the merged scenario."
    );
    schema["properties"]["include"] = json!({
        "description": "Files merged before this one, in order; paths relative to this file (or `<built-in>` catalogue paths).",
        "type": "array",
        "items": {"type": "string"}
    });
    schema
}

/// Removes every `required` list (see the module doc).
fn drop_required(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.remove("required");
            map.values_mut().for_each(drop_required);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_required),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_knows_the_tables_refuses_unknown_keys_and_requires_nothing() {
        let s = scenario_schema();
        let text = s.to_string();
        assert!(!text.contains("\"required\""));
        assert_eq!(s["additionalProperties"], json!(false));
        for key in [
            "grid",
            "time",
            "species",
            "dosing",
            "output",
            "include",
            "vessel_network",
        ] {
            assert!(s["properties"].get(key).is_some(), "no {key}");
        }
        // Doc comments become descriptions.
        assert!(text.contains("OME-Zarr store"), "field docs missing");
    }
}
