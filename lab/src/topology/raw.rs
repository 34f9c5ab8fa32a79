//! The topology file as serde reads it, before inheritance and checks.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_yaml::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    pub(super) name: String,
    pub(super) prefix: Option<String>,
    pub(super) mgmt: Option<RawMgmt>,
    pub(super) topology: RawTopology,
    pub(super) settings: Option<Value>,
    pub(super) debug: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct RawMgmt {
    pub(super) network: Option<String>,
    pub(super) ipv4_subnet: Option<String>,
    pub(super) ipv6_subnet: Option<String>,
    #[serde(flatten)]
    pub(super) other: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTopology {
    #[serde(default)]
    pub(super) nodes: BTreeMap<String, Option<RawNode>>,
    #[serde(default)]
    pub(super) kinds: BTreeMap<String, RawNode>,
    pub(super) defaults: Option<RawNode>,
    pub(super) groups: Option<Value>,
    #[serde(default)]
    pub(super) links: Vec<RawLink>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(rename_all = "kebab-case")]
pub(super) struct RawNode {
    pub(super) kind: Option<String>,
    pub(super) image: Option<String>,
    #[serde(default)]
    pub(super) binds: Vec<String>,
    #[serde(default)]
    pub(super) env: BTreeMap<String, ScalarString>,
    pub(super) exec: Option<Vec<String>>,
    pub(super) cmd: Option<String>,
    pub(super) entrypoint: Option<String>,
    #[serde(default)]
    pub(super) labels: BTreeMap<String, ScalarString>,
    #[serde(default)]
    pub(super) sysctls: BTreeMap<String, ScalarString>,
    pub(super) mgmt_ipv4: Option<String>,
    pub(super) mgmt_ipv6: Option<String>,
    #[serde(flatten)]
    pub(super) other: BTreeMap<String, Value>,
}

/// YAML scalars that containerlab reads as strings (`1`, `true`, `x`).
#[derive(Clone)]
pub(super) struct ScalarString(pub(super) String);

impl<'de> Deserialize<'de> for ScalarString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(ScalarString(s)),
            Value::Number(n) => Ok(ScalarString(n.to_string())),
            Value::Bool(b) => Ok(ScalarString(b.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "expected a string, number or boolean, found {}",
                value_kind(&other)
            ))),
        }
    }
}

#[derive(Deserialize)]
pub(super) struct RawLink {
    pub(super) endpoints: Option<Vec<String>>,
    pub(super) mtu: Option<u32>,
    #[serde(default)]
    pub(super) ipv4: Vec<String>,
    #[serde(default)]
    pub(super) ipv6: Vec<String>,
    #[serde(flatten)]
    pub(super) other: BTreeMap<String, Value>,
}

pub(super) fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a map",
        Value::Tagged(_) => "a tagged value",
    }
}
