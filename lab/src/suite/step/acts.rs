//! What a case's actions take: pods, routes, links, daemons, services, traffic.

use serde::{Deserialize, Serialize};

use crate::render::Tweak;

/// One family, or several.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Families {
    One(String),
    Many(Vec<String>),
}

impl Families {
    pub fn list(&self) -> Vec<&str> {
        match self {
            Families::One(f) => vec![f.as_str()],
            Families::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PodAdd {
    pub node: String,
    pub name: String,
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
}

/// `{node: n1, name: a}`: the pod's routes go first, then its veth;
/// `{node: n1, name: a, teardown: veth}`: its veth at once, as a CNI plugin deletes a
/// pod (the IPv4 /32 leaves the kernel without a route event).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PodDel {
    pub node: String,
    pub name: String,
    #[serde(default)]
    pub teardown: crate::pods::Teardown,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteAct {
    pub node: String,
    /// `ip route replace`: adds, or leaves as it is (for `always` steps).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replace: Option<Routes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub add: Option<Routes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub del: Option<Routes>,
}

/// One route, or several changed at once (one after the other in a single command:
/// two blocks released together, as Calico's IPAM may).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Routes {
    One(String),
    Many(Vec<String>),
}

impl Routes {
    pub fn list(&self) -> Vec<&str> {
        match self {
            Routes::One(r) => vec![r.as_str()],
            Routes::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LinkAct {
    pub node: String,
    #[serde(default = "eth1")]
    pub iface: String,
    pub up: bool,
}

fn eth1() -> String {
    "eth1".into()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ImpairAct {
    pub node: String,
    #[serde(default = "eth1")]
    pub iface: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<u64>,
    #[serde(default)]
    pub clear: bool,
}

impl ImpairAct {
    pub fn impairment(&self) -> crate::impair::Impairment {
        crate::impair::Impairment {
            loss: self.loss,
            delay_ms: self.delay,
            jitter_ms: None,
            rate_kbit: self.rate,
        }
    }

    pub(super) fn check(&self) -> Result<(), String> {
        match (self.clear, self.impairment() == crate::impair::Impairment::default()) {
            (true, false) => Err("impair: clear: true takes nothing else".into()),
            (true, true) => Ok(()),
            (false, _) => self.impairment().check().map_err(|e| format!("impair: {e}")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DaemonOp {
    /// SIGTERM.
    Stop,
    /// SIGKILL.
    Kill,
    /// Started again, as the node's `exec` started it.
    Start,
    /// Withdraw the node's routes before maintenance, where the daemon can.
    Drain,
    Undrain,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExecAct {
    pub node: String,
    pub cmd: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixAct {
    pub node: String,
    pub prefix: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReconfigureAct {
    pub node: String,
    /// One change, or several: `[short_hold, no_graceful_restart]`.
    pub change: Tweaks,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Tweaks {
    One(Tweak),
    Many(Vec<Tweak>),
}

impl Tweaks {
    pub fn list(&self) -> Vec<Tweak> {
        match self {
            Tweaks::One(t) => vec![*t],
            Tweaks::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FlapAct {
    pub node: String,
    #[serde(default = "eth1")]
    pub iface: String,
    pub times: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChurnAct {
    pub node: String,
    pub cycles: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonAct {
    pub node: String,
    #[serde(rename = "do")]
    pub op: DaemonOp,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Traffic {
    /// A ping every millisecond from this pod to `to`.
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    /// Or TCP connections to this service (made by the case) from the client outside
    /// the cluster, one every 20 ms.
    #[serde(default)]
    pub service: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAdd {
    pub name: String,
    /// Host number in the CIDR (198.51.100.N and fd00:198::N for a LoadBalancer).
    pub ip: u16,
    #[serde(default = "port80")]
    pub port: u16,
    #[serde(rename = "type", default = "load_balancer")]
    pub service_type: String,
    #[serde(default = "cluster")]
    pub policy: String,
    pub endpoints: Vec<String>,
    /// Endpoints among them that are not ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_ready: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceReady {
    pub name: String,
    pub pods: Vec<String>,
    pub ready: bool,
}

fn port80() -> u16 {
    80
}
fn load_balancer() -> String {
    "LoadBalancer".into()
}
fn cluster() -> String {
    "Cluster".into()
}

impl ServiceAdd {
    pub(super) fn check(&self) -> Result<(), String> {
        self.service_type.parse::<crate::services::Type>()?;
        self.policy.parse::<crate::services::Policy>()?;
        if self.ip == 0 || self.ip > 254 {
            return Err(format!("service_add: ip {}: a host number, 1 to 254", self.ip));
        }
        Ok(())
    }
}
