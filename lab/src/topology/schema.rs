//! Which keys containerlab's schema has: those lab ignores with a note, the rest refused.

use std::collections::BTreeSet;
use std::sync::OnceLock;

/// containerlab's own JSON schema (BSD-3, Nokia), vendored so the runner knows which
/// keys containerlab accepts that it does not implement (ignored with a warning) and
/// which keys are simply wrong (refused).
const CLAB_SCHEMA: &str = include_str!("../../schema/clab.schema.json");

pub(super) struct SchemaKeys {
    node: BTreeSet<String>,
    mgmt: BTreeSet<String>,
    kinds: BTreeSet<String>,
}

pub(super) fn schema() -> &'static SchemaKeys {
    static KEYS: OnceLock<SchemaKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let s: serde_json::Value = serde_json::from_str(CLAB_SCHEMA).expect("vendored schema is JSON");
        let keys = |v: &serde_json::Value| -> BTreeSet<String> {
            v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
        };
        SchemaKeys {
            node: keys(&s["definitions"]["node-config"]["properties"]),
            mgmt: keys(&s["properties"]["mgmt"]["properties"]),
            kinds: keys(&s["properties"]["topology"]["properties"]["kinds"]["properties"]),
        }
    })
}

pub(super) fn schema_keys(which: &str) -> &'static BTreeSet<String> {
    match which {
        "mgmt" => &schema().mgmt,
        _ => &schema().node,
    }
}

pub(super) fn schema_kinds() -> &'static BTreeSet<String> {
    &schema().kinds
}
