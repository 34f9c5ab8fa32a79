//! The speaker's YAML configuration, shaped after Calico's BGPConfiguration and
//! BGPPeer resources (camelCase field names), and its validation. Errors name the
//! file and the field path, and the line where the YAML parser knows it.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::bfd::Timers;
use crate::duration;
use crate::policy::{Advertisements, BgpFilter, NamedCommunity, PeerFilters, PrefixAdvertisement};

/// Kernel routing protocol number of our routes (`ip route ... proto 201`): BIRD
/// uses 12 and FRR 186-196, so 201 keeps us apart from both.
pub const DEFAULT_FIB_PROTOCOL: u8 = 201;
const MAIN_TABLE: u32 = 254;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read { file: String, source: std::io::Error },
    /// A YAML or type error; serde_yaml puts the field path and line in `message`.
    #[error("{file}: {message}{hint}")]
    Parse {
        file: String,
        message: String,
        hint: String,
    },
    #[error("{file}: {field}: {message}")]
    Invalid {
        file: String,
        field: String,
        message: String,
    },
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    pub as_number: u32,
    #[serde(rename = "routerID")]
    pub router_id: Ipv4Addr,
    #[serde(default = "default_listen_port")]
    pub listen_port: u16,
    #[serde(default)]
    pub listen_address: Option<IpAddr>,
    /// Pod IP pools: only prefixes inside them are advertised or accepted.
    #[serde(default)]
    pub pools: Vec<IpNet>,
    #[serde(default = "default_pod_prefix")]
    pub pod_interface_prefix: String,
    #[serde(default)]
    pub node_to_node_mesh: Mesh,
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
    #[serde(default)]
    pub graceful_restart: GracefulRestartConfig,
    #[serde(default)]
    pub route_reflector: Option<RouteReflectorConfig>,
    #[serde(default)]
    pub fib: FibConfig,
    #[serde(default = "default_api_socket")]
    pub api_socket: PathBuf,
    #[serde(default)]
    pub metrics_address: Option<SocketAddr>,
    #[serde(default)]
    pub drain: DrainConfig,
    /// Service CIDRs, as Calico's BGPConfiguration lists them (`- cidr: ...`): each
    /// advertised by every node, and the /32 or /128 of a service with traffic policy
    /// Local inside one by the nodes that host its endpoints (`services.rs`).
    #[serde(default, rename = "serviceClusterIPs")]
    pub service_cluster_ips: Vec<ServiceCidr>,
    #[serde(default, rename = "serviceExternalIPs")]
    pub service_external_ips: Vec<ServiceCidr>,
    #[serde(default, rename = "serviceLoadBalancerIPs")]
    pub service_load_balancer_ips: Vec<ServiceCidr>,
    /// Where the services and their endpoints are read from (a Kubernetes List of
    /// Services and EndpointSlices), watched for changes.
    #[serde(default = "default_service_state_file")]
    pub service_state_file: PathBuf,
    /// This node's Kubernetes name, as EndpointSlices name it (`nodeName`): the
    /// host name when absent.
    #[serde(default)]
    pub node_name: Option<String>,
    /// The node's addresses, as Calico's Node resource has them (`bgp.ipv4Address`):
    /// the source address of the peers whose `sourceAddress` is `UseNodeIP`.
    #[serde(default, rename = "nodeIPv4")]
    pub node_ipv4: Option<Ipv4Addr>,
    #[serde(default, rename = "nodeIPv6")]
    pub node_ipv6: Option<std::net::Ipv6Addr>,
    /// BGPConfiguration's graceful restart time of the mesh sessions (`120s`).
    #[serde(default, deserialize_with = "duration::opt_seconds")]
    pub node_mesh_max_restart_time: Option<u16>,
    /// Where `password: {secretKeyRef: {name, key}}` is read from: the file `key` in
    /// the folder `name`, as Kubernetes mounts a Secret.
    #[serde(default = "default_secrets_directory")]
    pub secrets_directory: PathBuf,
    /// Calico's BGPFilters by name, for peers' `filters` (`policy.rs`).
    #[serde(default)]
    pub filters: Vec<BgpFilter>,
    /// BGPConfiguration's named communities, for `prefixAdvertisements`.
    #[serde(default)]
    pub communities: Vec<NamedCommunity>,
    /// Communities (and LOCAL_PREF) attached to the advertised prefixes inside a CIDR.
    #[serde(default)]
    pub prefix_advertisements: Vec<PrefixAdvertisement>,
    /// This node's labels, as its Kubernetes Node has them: what the `nodeSelector`
    /// and `peerSelector` of Calico's BGPPeer resources are matched against (with
    /// the labels of its Calico Node resource, when the file holds one).
    #[serde(default)]
    pub node_labels: std::collections::BTreeMap<String, String>,
    /// What became of each Calico resource the file holds (`calico.rs`).
    #[serde(skip)]
    pub resources: Vec<crate::calico::Use>,
}

/// One service CIDR, as Calico writes it.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ServiceCidr {
    pub cidr: IpNet,
}

/// What `speaker drain` does to the node's advertisements.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DrainConfig {
    #[serde(default)]
    pub mode: DrainMode,
    /// How long the command waits for every peer to have received the change.
    #[serde(default = "default_drain_timeout")]
    pub timeout_seconds: u16,
}

impl Default for DrainConfig {
    fn default() -> Self {
        DrainConfig {
            mode: DrainMode::default(),
            timeout_seconds: default_drain_timeout(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum DrainMode {
    /// Withdraw every route from every peer.
    #[default]
    Withdraw,
    /// Keep the routes but mark them with GRACEFUL_SHUTDOWN (RFC 8326), and
    /// LOCAL_PREF 0 towards iBGP peers, so the fabric moves traffic away first.
    GracefulShutdown,
}

impl DrainMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DrainMode::Withdraw => "withdraw",
            DrainMode::GracefulShutdown => "gracefulShutdown",
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Mesh {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub peers: Vec<IpAddr>,
    #[serde(default)]
    pub password: Option<Password>,
    /// The mesh sessions' timers (Calico's BIRD template sets them for every
    /// session); the defaults of a peer when absent.
    #[serde(default = "default_hold_time", deserialize_with = "duration::seconds")]
    pub hold_time: u16,
    #[serde(default, deserialize_with = "duration::opt_seconds")]
    pub keepalive_time: Option<u16>,
    #[serde(default = "default_connect_retry", deserialize_with = "duration::seconds")]
    pub connect_retry_time: u16,
    /// BFD on every mesh session, as a peer's `bfd`.
    #[serde(default)]
    pub bfd: Option<BfdConfig>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PeerConfig {
    /// The address, with a port where it is not 179 (`10.0.0.1:1790`,
    /// `[fd00::1]:1790`), as Calico writes it.
    #[serde(rename = "peerIP")]
    pub peer_ip: PeerIp,
    pub as_number: u32,
    /// Our AS on this session, where it is not the node's (`asNumber`): what the
    /// OPEN carries, what is prepended on what the peer is sent, and what decides
    /// whether the session is internal. BIRD's `local as`.
    #[serde(default, rename = "localASNumber")]
    pub local_as_number: Option<u32>,
    #[serde(default)]
    pub password: Option<Password>,
    /// Local address to connect from: an address, `UseNodeIP` (`nodeIPv4` or
    /// `nodeIPv6`, as Calico's default has it) or `None`; the kernel picks one when
    /// absent or `None`.
    #[serde(default)]
    pub source_address: Option<SourceAddress>,
    #[serde(default = "default_hold_time", deserialize_with = "duration::seconds")]
    pub hold_time: u16,
    #[serde(default, deserialize_with = "duration::opt_seconds")]
    pub keepalive_time: Option<u16>,
    #[serde(default = "default_connect_retry", deserialize_with = "duration::seconds")]
    pub connect_retry_time: u16,
    #[serde(default)]
    pub passive: bool,
    #[serde(default)]
    pub graceful_restart: Option<GracefulRestartConfig>,
    /// Calico's name for this peer's graceful restart time (`120s`).
    #[serde(default, deserialize_with = "duration::opt_seconds")]
    pub max_restart_time: Option<u16>,
    #[serde(default)]
    pub route_reflector_client: bool,
    #[serde(default)]
    pub next_hop_mode: NextHopMode,
    #[serde(default)]
    pub max_prefixes: Option<u32>,
    #[serde(default)]
    pub ttl_security: Option<u8>,
    #[serde(default, rename = "numAllowedLocalASNumbers")]
    pub num_allowed_local_as_numbers: u8,
    /// Refuse routes from this external peer whose AS_PATH does not start with its
    /// AS (RFC 4271 6.3; FRR's `enforce-first-as`). On by default.
    #[serde(default = "yes", rename = "enforceFirstAS")]
    pub enforce_first_as: bool,
    /// Prefixes accepted from this peer beyond the pools, e.g. `0.0.0.0/0`.
    #[serde(default)]
    pub allowed_prefixes: Vec<IpNet>,
    /// BFD (RFC 5880/5881) protecting the session: `bfd: {}` turns it on with
    /// 300 ms x 3.
    #[serde(default)]
    pub bfd: Option<BfdConfig>,
    /// Names of BGPFilters (`filters`), run in this order on what the peer sends
    /// and what it is sent.
    #[serde(default)]
    pub filters: Vec<String>,
}

/// A peer's BFD session, in milliseconds.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BfdConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The fastest we take the peer's packets (RequiredMinRxInterval).
    #[serde(default = "default_bfd_interval")]
    pub min_rx: u32,
    /// The fastest we send ours once Up (DesiredMinTxInterval).
    #[serde(default = "default_bfd_interval")]
    pub min_tx: u32,
    /// Packets missed before the peer is declared down.
    #[serde(default = "default_bfd_multiplier")]
    pub multiplier: u8,
}

fn default_bfd_interval() -> u32 {
    300
}

fn default_bfd_multiplier() -> u8 {
    3
}

impl BfdConfig {
    /// The session's timers, when it is on.
    pub fn timers(&self) -> Option<Timers> {
        self.enabled.then(|| Timers {
            min_tx: self.min_tx * 1000,
            min_rx: self.min_rx * 1000,
            multiplier: self.multiplier,
        })
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub enum NextHopMode {
    /// Next hop self towards eBGP peers and for our own routes, kept otherwise.
    #[default]
    Auto,
    #[serde(rename = "Self")]
    SelfAddress,
    Keep,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GracefulRestartConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "default_restart_time", deserialize_with = "duration::seconds")]
    pub restart_time: u16,
}

impl Default for GracefulRestartConfig {
    fn default() -> Self {
        GracefulRestartConfig {
            enabled: true,
            restart_time: default_restart_time(),
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteReflectorConfig {
    #[serde(rename = "clusterID")]
    pub cluster_id: Ipv4Addr,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FibConfig {
    #[serde(default = "default_fib_protocol")]
    pub protocol: u8,
    #[serde(default)]
    pub table: Table,
}

impl Default for FibConfig {
    fn default() -> Self {
        FibConfig {
            protocol: DEFAULT_FIB_PROTOCOL,
            table: Table::default(),
        }
    }
}

/// A kernel routing table: `main` or a number, as `ip route ... table` takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Table(pub u32);

impl Default for Table {
    fn default() -> Self {
        Table(MAIN_TABLE)
    }
}

impl Serialize for Table {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.0)
    }
}

impl<'de> Deserialize<'de> for Table {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Id(u32),
            Name(String),
        }
        match Raw::deserialize(d)? {
            Raw::Id(0) => Err(serde::de::Error::custom("table 0 is not a routing table")),
            Raw::Id(id) => Ok(Table(id)),
            Raw::Name(name) if name == "main" => Ok(Table(MAIN_TABLE)),
            Raw::Name(name) => Err(serde::de::Error::custom(format!(
                "unknown table `{name}`: use `main` or a table number"
            ))),
        }
    }
}

/// holdTime 0 or at least 3, keepaliveTime below it (0 when it is 0), connectRetryTime
/// at least 1: the field at fault and why.
fn check_timers(hold: u16, keepalive: Option<u16>, connect_retry: u16) -> Result<(), (&'static str, String)> {
    if matches!(hold, 1 | 2) {
        return Err(("holdTime", format!("{hold} is not allowed (0 or at least 3)")));
    }
    if let Some(keepalive) = keepalive {
        if hold == 0 && keepalive != 0 {
            return Err((
                "keepaliveTime",
                format!("{keepalive} with holdTime 0: keepalives are off when the hold time is 0"),
            ));
        }
        if hold != 0 && (keepalive == 0 || keepalive >= hold) {
            return Err((
                "keepaliveTime",
                format!("{keepalive} must be at least 1 and less than holdTime ({hold})"),
            ));
        }
    }
    if connect_retry == 0 {
        return Err(("connectRetryTime", "0 is not allowed (at least 1)".into()));
    }
    Ok(())
}

fn yes() -> bool {
    true
}
fn default_listen_port() -> u16 {
    179
}
fn default_pod_prefix() -> String {
    "cali".into()
}
/// BGPPeer's `sourceAddress`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceAddress {
    /// The node's address of the peer's family (`nodeIPv4`, `nodeIPv6`).
    UseNodeIP,
    /// The kernel picks.
    None,
    Address(IpAddr),
}

impl std::str::FromStr for SourceAddress {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "UseNodeIP" => Ok(SourceAddress::UseNodeIP),
            "None" => Ok(SourceAddress::None),
            a => a
                .parse()
                .map(SourceAddress::Address)
                .map_err(|_| format!("{a:?} is not an address, UseNodeIP or None")),
        }
    }
}

impl std::fmt::Display for SourceAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            SourceAddress::UseNodeIP => f.write_str("UseNodeIP"),
            SourceAddress::None => f.write_str("None"),
            SourceAddress::Address(a) => write!(f, "{a}"),
        }
    }
}

/// `peerIP`: an address, or an address and a port as Calico writes them
/// (`10.0.0.1:1790`, `[fd00::1]:1790`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerIp {
    pub ip: IpAddr,
    pub port: Option<u16>,
}

impl std::str::FromStr for PeerIp {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(PeerIp { ip, port: None });
        }
        match s.parse::<SocketAddr>() {
            Ok(a) if a.port() != 0 => Ok(PeerIp {
                ip: a.ip(),
                port: Some(a.port()),
            }),
            _ => Err(format!(
                "{s:?} is not an address, or an address and a port (10.0.0.1:1790, [fd00::1]:1790)"
            )),
        }
    }
}

impl std::fmt::Display for PeerIp {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}", SocketAddr::new(self.ip, port)),
            None => write!(f, "{}", self.ip),
        }
    }
}

crate::packet::serde_as_text!(PeerIp, SourceAddress);

fn default_secrets_directory() -> PathBuf {
    PathBuf::from("/etc/speaker/secrets")
}

/// A TCP-MD5 password: the value, or Calico's reference to a Kubernetes Secret.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Password {
    Value(String),
    Secret {
        #[serde(rename = "secretKeyRef")]
        secret_key_ref: SecretKeyRef,
    },
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SecretKeyRef {
    pub name: String,
    pub key: String,
}

impl<'de> Deserialize<'de> for Password {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Password;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a password, or {secretKeyRef: {name, key}}")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Password, E> {
                Ok(Password::Value(v.to_string()))
            }

            // `password: 12345` is a password of digits.
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Password, E> {
                Ok(Password::Value(v.to_string()))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Password, A::Error> {
                let mut found = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key != "secretKeyRef" || found.is_some() {
                        return Err(serde::de::Error::unknown_field(&key, &["secretKeyRef"]));
                    }
                    found = Some(map.next_value::<SecretKeyRef>()?);
                }
                found
                    .map(|secret_key_ref| Password::Secret { secret_key_ref })
                    .ok_or_else(|| serde::de::Error::missing_field("secretKeyRef"))
            }
        }
        d.deserialize_any(V)
    }
}

impl Password {
    /// The value; a reference is read from `dir` (`dir/name/key`, the file's bytes as
    /// they are). `Err` says what could not be read.
    fn resolve(&self, dir: &Path) -> Result<String, String> {
        match self {
            Password::Value(v) => Ok(v.clone()),
            Password::Secret { secret_key_ref: r } => {
                let plain = |s: &str| !s.is_empty() && !s.contains(['/', '\\']) && s != "." && s != "..";
                if !plain(&r.name) || !plain(&r.key) {
                    return Err(format!(
                        "{:?}/{:?}: a Secret's name and key are plain names",
                        r.name, r.key
                    ));
                }
                let path = dir.join(&r.name).join(&r.key);
                std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
            }
        }
    }

    /// The value, once [`Config::parse`] has read every reference.
    pub fn value(&self) -> Option<&str> {
        match self {
            Password::Value(v) => Some(v),
            Password::Secret { .. } => None,
        }
    }
}

fn default_api_socket() -> PathBuf {
    PathBuf::from("/run/speaker/speaker.sock")
}
fn default_hold_time() -> u16 {
    90
}
fn default_connect_retry() -> u16 {
    5
}
fn default_restart_time() -> u16 {
    120
}
fn default_service_state_file() -> PathBuf {
    PathBuf::from("/run/speaker/services.yaml")
}
fn default_drain_timeout() -> u16 {
    10
}
fn default_fib_protocol() -> u8 {
    DEFAULT_FIB_PROTOCOL
}

impl Default for Mesh {
    fn default() -> Self {
        Mesh {
            enabled: false,
            peers: Vec::new(),
            password: None,
            hold_time: default_hold_time(),
            keepalive_time: None,
            connect_retry_time: default_connect_retry(),
            bfd: None,
        }
    }
}

/// What kind of session a peer is, as `calicoctl node status` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerType {
    Mesh,
    Global,
    RrClient,
}

impl PeerType {
    pub fn as_str(self) -> &'static str {
        match self {
            PeerType::Mesh => "node-to-node mesh",
            PeerType::Global => "global",
            PeerType::RrClient => "rr client",
        }
    }
}

/// One session to run, with every default filled in: what the session and the
/// RIB need, whether it came from `peers` or from the node-to-node mesh.
#[derive(Clone, Debug, PartialEq)]
pub struct Neighbor {
    pub address: IpAddr,
    pub remote_as: u32,
    /// Ours on this session: the node's AS, or the peer's `localASNumber`.
    pub local_as: u32,
    pub peer_type: PeerType,
    pub password: Option<String>,
    pub source_address: Option<IpAddr>,
    pub hold_time: u16,
    pub keepalive_time: u16,
    pub connect_retry: Duration,
    pub passive: bool,
    pub graceful_restart: GracefulRestartConfig,
    pub rr_client: bool,
    pub next_hop_mode: NextHopMode,
    pub max_prefixes: Option<u32>,
    pub ttl_security: Option<u8>,
    pub allowed_local_as: u8,
    pub enforce_first_as: bool,
    pub allowed_prefixes: Vec<IpNet>,
    /// BFD's timers, when BFD protects the session.
    pub bfd: Option<Timers>,
    /// The peer's BGPFilters; a change needs no new session.
    pub filters: PeerFilters,
    /// The port to connect to, where not our `listenPort`.
    pub port: Option<u16>,
}

impl Neighbor {
    /// Whether `other` runs the same session: everything but the filters equal.
    pub fn same_session(&self, other: &Neighbor) -> bool {
        Neighbor {
            filters: other.filters.clone(),
            ..self.clone()
        } == *other
    }
}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = file_label(path);
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty());
        let mut config = Config::parse_on(&file, &text, hostname.as_deref())?;
        if config.node_name.is_none() {
            config.node_name = hostname;
        }
        Ok(config)
    }

    /// Parses and validates `text`; `file` is how errors name it.
    pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
        Config::parse_on(file, text, None)
    }

    /// Parses and validates `text` on the node named `hostname` where the text does
    /// not name it (`nodeName`): a file of Calico resources beside the own document
    /// (or instead of it) gives this node what applies to it (`calico.rs`).
    pub fn parse_on(file: &str, text: &str, hostname: Option<&str>) -> Result<Config, ConfigError> {
        let parse_error = |message: String| {
            let hint = unknown_field_hint(&message);
            ConfigError::Parse {
                file: file.to_string(),
                message,
                hint,
            }
        };
        let resources_error = |message: String| ConfigError::Parse {
            file: file.to_string(),
            message,
            hint: String::new(),
        };
        let mut config: Config = match crate::calico::documents(text).map_err(resources_error)? {
            None => serde_yaml::from_str(text).map_err(|e| parse_error(e.to_string()))?,
            Some(docs) => {
                let (fields, uses) = docs.merge(hostname).map_err(resources_error)?;
                let mut c: Config = serde_yaml::from_value(serde_yaml::Value::Mapping(fields))
                    .map_err(|e| parse_error(format!("with what the Calico resources give: {e}")))?;
                c.resources = uses;
                c
            }
        };
        config.read_secrets(file)?;
        config.validate(file)?;
        Ok(config)
    }

    /// Every password given as a Secret's reference, read (a reload reads them again).
    fn read_secrets(&mut self, file: &str) -> Result<(), ConfigError> {
        let dir = self.secrets_directory.clone();
        let fields = std::iter::once((
            "nodeToNodeMesh.password.secretKeyRef".to_string(),
            &mut self.node_to_node_mesh.password,
        ))
        .chain(
            self.peers
                .iter_mut()
                .enumerate()
                .map(|(i, p)| (format!("peers[{i}].password.secretKeyRef"), &mut p.password)),
        );
        for (field, pw) in fields {
            if let Some(p) = pw.as_mut() {
                let value = p.resolve(&dir).map_err(|message| ConfigError::Invalid {
                    file: file.to_string(),
                    field: field.clone(),
                    message,
                })?;
                *p = Password::Value(value);
            }
        }
        Ok(())
    }

    fn validate(&self, file: &str) -> Result<(), ConfigError> {
        let invalid = |field: String, message: String| ConfigError::Invalid {
            file: file.to_string(),
            field,
            message,
        };
        if self.as_number == 0 {
            return Err(invalid("asNumber".into(), "0 is not an AS number".into()));
        }
        if self.router_id.is_unspecified() {
            return Err(invalid("routerID".into(), "0.0.0.0 is not a router ID".into()));
        }
        if self.pod_interface_prefix.is_empty() {
            return Err(invalid(
                "podInterfacePrefix".into(),
                "must not be empty: every interface would be a pod interface".into(),
            ));
        }
        for (i, pool) in self.pools.iter().enumerate() {
            if *pool != pool.trunc() {
                return Err(invalid(
                    format!("pools[{i}]"),
                    format!("{pool} has host bits set; did you mean {}?", pool.trunc()),
                ));
            }
        }
        for (field, list) in [
            ("serviceClusterIPs", &self.service_cluster_ips),
            ("serviceExternalIPs", &self.service_external_ips),
            ("serviceLoadBalancerIPs", &self.service_load_balancer_ips),
        ] {
            for (i, ServiceCidr { cidr }) in list.iter().enumerate() {
                let field = format!("{field}[{i}].cidr");
                if *cidr != cidr.trunc() {
                    return Err(invalid(
                        field,
                        format!("{cidr} has host bits set; did you mean {}?", cidr.trunc()),
                    ));
                }
                if let Some(pool) = self.pools.iter().find(|p| p.contains(cidr) || cidr.contains(*p)) {
                    return Err(invalid(
                        field,
                        format!("{cidr} overlaps the pod pool {pool}: service and pod addresses must not meet"),
                    ));
                }
            }
        }
        if self.node_name.as_deref() == Some("") {
            return Err(invalid("nodeName".into(), "must not be empty".into()));
        }
        if let Some(pw) = self.node_to_node_mesh.password.as_ref().and_then(Password::value) {
            check_password(pw).map_err(|m| invalid("nodeToNodeMesh.password".into(), m))?;
        }
        let mesh = &self.node_to_node_mesh;
        check_timers(mesh.hold_time, mesh.keepalive_time, mesh.connect_retry_time)
            .map_err(|(field, m)| invalid(format!("nodeToNodeMesh.{field}"), m))?;
        if let Some(bfd) = &mesh.bfd {
            check_bfd(bfd).map_err(|(f, m)| invalid(format!("nodeToNodeMesh.bfd.{f}"), m))?;
        }
        let mut seen = HashSet::new();
        for (i, addr) in self.node_to_node_mesh.peers.iter().enumerate() {
            if !seen.insert(*addr) {
                return Err(invalid(
                    format!("nodeToNodeMesh.peers[{i}]"),
                    format!("{addr} is listed twice"),
                ));
            }
        }
        for (i, peer) in self.peers.iter().enumerate() {
            let field = |name: &str| format!("peers[{i}].{name}");
            if !seen.insert(peer.peer_ip.ip) {
                return Err(invalid(
                    field("peerIP"),
                    format!("{} is configured twice (as a peer or a mesh peer)", peer.peer_ip.ip),
                ));
            }
            if peer.as_number == 0 {
                return Err(invalid(field("asNumber"), "0 is not an AS number".into()));
            }
            if peer.local_as_number == Some(0) {
                return Err(invalid(field("localASNumber"), "0 is not an AS number".into()));
            }
            check_timers(peer.hold_time, peer.keepalive_time, peer.connect_retry_time)
                .map_err(|(f, m)| invalid(field(f), m))?;
            if let Some(gr) = &peer.graceful_restart {
                check_restart_time(gr).map_err(|m| invalid(field("gracefulRestart.restartTime"), m))?;
            }
            if let (Some(t), Some(gr)) = (peer.max_restart_time, peer.graceful_restart) {
                if t != gr.restart_time {
                    return Err(invalid(
                        field("maxRestartTime"),
                        format!(
                            "{t} s, where gracefulRestart.restartTime says {} s: give one",
                            gr.restart_time
                        ),
                    ));
                }
            }
            if peer.source_address == Some(SourceAddress::UseNodeIP) && self.node_ip(peer.peer_ip.ip).is_none() {
                return Err(invalid(
                    field("sourceAddress"),
                    format!(
                        "UseNodeIP needs the node's address: give nodeIPv{}",
                        if peer.peer_ip.ip.is_ipv4() { 4 } else { 6 }
                    ),
                ));
            }
            if let Some(src) = self.source_address_of(peer) {
                if src.is_ipv4() != peer.peer_ip.ip.is_ipv4() {
                    return Err(invalid(
                        field("sourceAddress"),
                        format!("{src} is not of the family of peerIP {}", peer.peer_ip.ip),
                    ));
                }
            }
            if let Some(pw) = peer.password.as_ref().and_then(Password::value) {
                check_password(pw).map_err(|m| invalid(field("password"), m))?;
            }
            if peer.ttl_security == Some(0) {
                return Err(invalid(field("ttlSecurity"), "0 hops is not allowed (1 to 254)".into()));
            }
            if let Some(bfd) = &peer.bfd {
                check_bfd(bfd).map_err(|(f, m)| invalid(field(&format!("bfd.{f}")), m))?;
            }
            if peer.route_reflector_client
                && (self.route_reflector.is_none() || peer.as_number != peer.local_as_number.unwrap_or(self.as_number))
            {
                return Err(invalid(
                    field("routeReflectorClient"),
                    "needs routeReflector.clusterID and an iBGP peer (asNumber equal to ours)".into(),
                ));
            }
            for (j, name) in peer.filters.iter().enumerate() {
                if !self.filters.iter().any(|f| f.name == *name) {
                    return Err(invalid(
                        field(&format!("filters[{j}]")),
                        format!("no BGPFilter named {name:?} in `filters`"),
                    ));
                }
            }
        }
        let mut names = HashSet::new();
        for (i, filter) in self.filters.iter().enumerate() {
            filter
                .check()
                .map_err(|(f, m)| invalid(format!("filters[{i}].{f}"), m))?;
            if !names.insert(filter.name.as_str()) {
                return Err(invalid(
                    format!("filters[{i}].name"),
                    format!("{:?} is defined twice", filter.name),
                ));
            }
        }
        Advertisements::new(&self.communities, &self.prefix_advertisements).map_err(|(f, m)| invalid(f, m))?;
        if self.drain.timeout_seconds == 0 {
            return Err(invalid(
                "drain.timeoutSeconds".into(),
                "0 is not allowed (at least 1)".into(),
            ));
        }
        check_restart_time(&self.graceful_restart).map_err(|m| invalid("gracefulRestart.restartTime".into(), m))?;
        if self.fib.protocol <= 4 || self.fib.protocol == 255 {
            return Err(invalid(
                "fib.protocol".into(),
                format!(
                    "{} is reserved by the kernel; use a number from 5 to 254",
                    self.fib.protocol
                ),
            ));
        }
        Ok(())
    }

    /// This node's address of `peer`'s family (`nodeIPv4`, `nodeIPv6`).
    fn node_ip(&self, peer: IpAddr) -> Option<IpAddr> {
        match peer {
            IpAddr::V4(_) => self.node_ipv4.map(IpAddr::V4),
            IpAddr::V6(_) => self.node_ipv6.map(IpAddr::V6),
        }
    }

    /// The address `peer`'s session connects from, `None` for the kernel's choice.
    fn source_address_of(&self, peer: &PeerConfig) -> Option<IpAddr> {
        match peer.source_address? {
            SourceAddress::UseNodeIP => self.node_ip(peer.peer_ip.ip),
            SourceAddress::Address(a) => Some(a),
            SourceAddress::None => None,
        }
    }

    /// `prefixAdvertisements` with their community names resolved.
    pub fn advertisements(&self) -> Advertisements {
        Advertisements::new(&self.communities, &self.prefix_advertisements).unwrap_or_default()
    }

    /// The service CIDRs, by kind.
    pub fn service_cidrs(&self) -> crate::services::ServiceCidrs {
        let cidrs = |l: &[ServiceCidr]| l.iter().map(|c| c.cidr).collect();
        crate::services::ServiceCidrs {
            cluster: cidrs(&self.service_cluster_ips),
            external: cidrs(&self.service_external_ips),
            load_balancer: cidrs(&self.service_load_balancer_ips),
        }
    }

    /// This node's name as EndpointSlices give it: `nodeName`, which [`Config::load`]
    /// fills with the host name when the file leaves it out.
    pub fn node_name(&self) -> &str {
        self.node_name.as_deref().unwrap_or("")
    }

    /// Every session to run: mesh peers first, then explicit peers.
    pub fn neighbors(&self) -> Vec<Neighbor> {
        let mut out = Vec::new();
        if self.node_to_node_mesh.enabled {
            for addr in &self.node_to_node_mesh.peers {
                out.push(Neighbor {
                    address: *addr,
                    remote_as: self.as_number,
                    local_as: self.as_number,
                    peer_type: PeerType::Mesh,
                    password: self
                        .node_to_node_mesh
                        .password
                        .as_ref()
                        .and_then(Password::value)
                        .map(String::from),
                    source_address: None,
                    hold_time: self.node_to_node_mesh.hold_time,
                    keepalive_time: self
                        .node_to_node_mesh
                        .keepalive_time
                        .unwrap_or(self.node_to_node_mesh.hold_time / 3),
                    connect_retry: Duration::from_secs(u64::from(self.node_to_node_mesh.connect_retry_time)),
                    passive: false,
                    graceful_restart: GracefulRestartConfig {
                        restart_time: self
                            .node_mesh_max_restart_time
                            .unwrap_or(self.graceful_restart.restart_time),
                        ..self.graceful_restart
                    },
                    rr_client: false,
                    next_hop_mode: NextHopMode::Auto,
                    max_prefixes: None,
                    ttl_security: None,
                    allowed_local_as: 0,
                    enforce_first_as: true,
                    allowed_prefixes: Vec::new(),
                    bfd: self.node_to_node_mesh.bfd.and_then(|b| b.timers()),
                    filters: PeerFilters::default(),
                    port: None,
                });
            }
        }
        for p in &self.peers {
            out.push(Neighbor {
                address: p.peer_ip.ip,
                port: p.peer_ip.port,
                remote_as: p.as_number,
                local_as: p.local_as_number.unwrap_or(self.as_number),
                peer_type: if p.route_reflector_client {
                    PeerType::RrClient
                } else {
                    PeerType::Global
                },
                password: p.password.as_ref().and_then(Password::value).map(String::from),
                source_address: self.source_address_of(p),
                hold_time: p.hold_time,
                keepalive_time: p.keepalive_time.unwrap_or(p.hold_time / 3),
                connect_retry: Duration::from_secs(u64::from(p.connect_retry_time)),
                passive: p.passive,
                graceful_restart: {
                    let gr = p.graceful_restart.unwrap_or(self.graceful_restart);
                    GracefulRestartConfig {
                        restart_time: p.max_restart_time.unwrap_or(gr.restart_time),
                        ..gr
                    }
                },
                rr_client: p.route_reflector_client,
                next_hop_mode: p.next_hop_mode,
                max_prefixes: p.max_prefixes,
                ttl_security: p.ttl_security,
                allowed_local_as: p.num_allowed_local_as_numbers,
                enforce_first_as: p.enforce_first_as,
                allowed_prefixes: p.allowed_prefixes.clone(),
                bfd: p.bfd.and_then(|b| b.timers()),
                filters: PeerFilters(
                    p.filters
                        .iter()
                        .filter_map(|name| self.filters.iter().find(|f| f.name == *name))
                        .map(|f| Arc::new(f.clone()))
                        .collect(),
                ),
            });
        }
        out
    }
}

/// The field at fault and why.
fn check_bfd(bfd: &BfdConfig) -> Result<(), (&'static str, String)> {
    for (name, ms) in [("minRx", bfd.min_rx), ("minTx", bfd.min_tx)] {
        if !(10..=60_000).contains(&ms) {
            return Err((name, format!("{ms} ms is outside 10 to 60000 ms")));
        }
    }
    if bfd.multiplier == 0 {
        return Err(("multiplier", "0 is not allowed (1 to 255)".into()));
    }
    Ok(())
}

fn check_password(pw: &str) -> Result<(), String> {
    if pw.is_empty() {
        return Err("empty: leave the field out for no TCP-MD5 signature".into());
    }
    if pw.len() > crate::transport::MAX_MD5_KEY {
        return Err(format!(
            "{} bytes; TCP-MD5 keys are at most {} bytes",
            pw.len(),
            crate::transport::MAX_MD5_KEY
        ));
    }
    Ok(())
}

fn check_restart_time(gr: &GracefulRestartConfig) -> Result<(), String> {
    // The capability carries 12 bits.
    if gr.restart_time > 4095 {
        return Err(format!("{} is more than 4095 seconds", gr.restart_time));
    }
    Ok(())
}

/// For serde's "unknown field `x`, expected one of `a`, `b`": the field that
/// differs only in case, or a reminder of the naming convention.
fn unknown_field_hint(message: &str) -> String {
    let Some(rest) = message.split("unknown field `").nth(1) else {
        return String::new();
    };
    let unknown = rest.split('`').next().unwrap_or_default();
    let expected: Vec<&str> = rest.split('`').skip(2).step_by(2).collect();
    match expected.iter().find(|f| f.eq_ignore_ascii_case(unknown)) {
        Some(f) => format!(" (did you mean `{f}`?)"),
        None => " (field names are camelCase as in Calico's BGPConfiguration and BGPPeer)".into(),
    }
}

fn file_label(path: &Path) -> String {
    path.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
asNumber: 64512
routerID: 10.0.0.1
pools: [10.244.0.0/16, "fd00:10:244::/56"]
nodeToNodeMesh:
  enabled: true
  peers: [10.0.0.2, 10.0.0.3]
peers:
  - peerIP: 10.0.0.254
    asNumber: 65000
    holdTime: 9
    gracefulRestart: {enabled: false}
    nextHopMode: Self
    allowedPrefixes: [0.0.0.0/0]
  - peerIP: "fd00::254"
    asNumber: 65000
    holdTime: 0
    passive: true
fib: {protocol: 201, table: main}
drain: {mode: gracefulShutdown}
"#;

    fn err(text: &str) -> String {
        Config::parse("speaker.yaml", text).unwrap_err().to_string()
    }

    #[test]
    fn good_config_with_defaults() {
        let c = Config::parse("speaker.yaml", GOOD).unwrap();
        assert_eq!(c.listen_port, 179);
        assert_eq!(c.pod_interface_prefix, "cali");
        assert_eq!(c.api_socket, PathBuf::from("/run/speaker/speaker.sock"));
        assert_eq!(c.fib.table, Table(254));
        assert!(c.graceful_restart.enabled);
        assert_eq!(c.drain.mode, DrainMode::GracefulShutdown);
        assert_eq!(c.drain.timeout_seconds, 10);
        let n = c.neighbors();
        assert_eq!(n.len(), 4);
        assert_eq!(n[0].peer_type, PeerType::Mesh);
        assert_eq!(n[0].remote_as, 64512);
        assert_eq!(n[2].keepalive_time, 3);
        assert_eq!(n[2].next_hop_mode, NextHopMode::SelfAddress);
        assert!(!n[2].graceful_restart.enabled);
        assert_eq!(n[2].graceful_restart.restart_time, 120);
        assert_eq!(n[3].keepalive_time, 0);
        assert!(n[3].passive);
        assert!(n[3].graceful_restart.enabled);
    }

    #[test]
    fn hold_time_of_two_is_rejected_with_its_path() {
        let text = GOOD.replace("holdTime: 0", "holdTime: 2");
        assert_eq!(
            err(&text),
            "speaker.yaml: peers[1].holdTime: 2 is not allowed (0 or at least 3)"
        );
    }

    #[test]
    fn bgp_filters_and_communities_are_calicos_and_checked() {
        // The BGPFilter spec and communities of Calico's documentation.
        let policy = r#"filters:
  - name: my-filter
    exportV4:
      - {action: Accept, matchOperator: In, cidr: 77.0.0.0/16, source: RemotePeers}
      - {action: Reject, interface: '*.calico'}
    importV4:
      - {action: Accept, matchOperator: In, cidr: 55.0.0.0/16, prefixLength: {min: 30}}
      - {action: Reject, matchOperator: NotIn, cidr: 44.0.0.0/16}
    importV6:
      - {action: Accept, matchOperator: Equal, cidr: "5000::0/64"}
      - {action: Reject}
communities:
  - {name: bgp-large-community, value: "63400:300:100"}
prefixAdvertisements:
  - cidr: 172.218.4.0/26
    communities: [bgp-large-community, "63400:120"]
"#;
        let with_filter = GOOD.replace(
            "    allowedPrefixes: [0.0.0.0/0]\n",
            "    allowedPrefixes: [0.0.0.0/0]\n    filters: [my-filter]\n",
        );
        let c = Config::parse("speaker.yaml", &format!("{with_filter}{policy}")).unwrap();
        let tor = c
            .neighbors()
            .into_iter()
            .find(|n| n.address.to_string() == "10.0.0.254")
            .unwrap();
        assert_eq!(tor.filters.0.len(), 1);
        assert!(!c.advertisements().is_empty());
        assert_eq!(
            err(&format!(
                "{}{policy}",
                GOOD.replace(
                    "    allowedPrefixes: [0.0.0.0/0]\n",
                    "    allowedPrefixes: [0.0.0.0/0]\n    filters: [other]\n"
                )
            )),
            "speaker.yaml: peers[0].filters[0]: no BGPFilter named \"other\" in `filters`"
        );
        assert_eq!(
            err(&format!(
                "{GOOD}{}",
                policy.replace("cidr: 44.0.0.0/16", "cidr: 44.0.0.0/16, interface: eth0")
            )),
            "speaker.yaml: filters[0].importV4[1].interface: applies to export rules only"
        );
        assert_eq!(
            err(&format!("{GOOD}{}", policy.replace("63400:300:100", "63400:300"))
                .replace("[bgp-large-community, \"63400:120\"]", "[bgp-large, \"63400:120\"]")),
            "speaker.yaml: prefixAdvertisements[0].communities[0]: \"bgp-large\" is neither a name in `communities` nor a value (aa:nn or aa:nn:mm)"
        );
        let e = err(&format!("{GOOD}{}", policy.replace("action: Reject}", "action: Drop}")));
        assert!(e.contains("unknown variant `Drop`"), "{e}");
    }

    #[test]
    fn timers_are_read_as_calico_writes_them() {
        let text = GOOD
            .replace(
                "holdTime: 9",
                "holdTime: 9s\n    keepaliveTime: 3s\n    maxRestartTime: 2m",
            )
            .replace(
                "nodeToNodeMesh:\n",
                "nodeMeshMaxRestartTime: 1m30s\nnodeToNodeMesh:\n  keepaliveTime: 20s\n",
            );
        let c = Config::parse("speaker.yaml", &text).unwrap();
        let tor = c
            .neighbors()
            .into_iter()
            .find(|n| n.address.to_string() == "10.0.0.254")
            .unwrap();
        assert_eq!((tor.hold_time, tor.keepalive_time), (9, 3));
        assert_eq!(tor.graceful_restart.restart_time, 120);
        let mesh = c
            .neighbors()
            .into_iter()
            .find(|n| n.address.to_string() == "10.0.0.2")
            .unwrap();
        assert_eq!((mesh.keepalive_time, mesh.graceful_restart.restart_time), (20, 90));
        let e = err(&GOOD.replace("holdTime: 9", "holdTime: 9x"));
        assert!(
            e.starts_with("speaker.yaml: peers[0].holdTime: \"9x\" is not a duration: unknown unit \"x\""),
            "{e}"
        );
        assert!(e.contains("line 11"), "{e}");
    }

    #[test]
    fn a_password_is_read_from_a_kubernetes_secret() {
        let dir = std::env::temp_dir().join(format!("speaker-secrets-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("bgp-secrets")).unwrap();
        std::fs::write(dir.join("bgp-secrets/rr-password"), "very-secret").unwrap();
        let with = |pw: &str| {
            GOOD.replace("    holdTime: 9\n", &format!("    holdTime: 9\n    password: {pw}\n"))
                + &format!("secretsDirectory: {}\n", dir.display())
        };
        let c = Config::parse(
            "speaker.yaml",
            &with("{secretKeyRef: {name: bgp-secrets, key: rr-password}}"),
        )
        .unwrap();
        let tor = c
            .neighbors()
            .into_iter()
            .find(|n| n.address.to_string() == "10.0.0.254")
            .unwrap();
        assert_eq!(tor.password.as_deref(), Some("very-secret"));
        let e = err(&with("{secretKeyRef: {name: bgp-secrets, key: other}}"));
        assert!(
            e.starts_with("speaker.yaml: peers[0].password.secretKeyRef: cannot read ")
                && e.contains("bgp-secrets/other"),
            "{e}"
        );
        let e = err(&with("{secretKeyRef: {name: ../etc, key: passwd}}"));
        assert!(e.contains("plain names"), "{e}");
        let e = err(&with("{secretRef: x}"));
        assert!(e.starts_with("speaker.yaml: peers[0].password: "), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_peer_ip_may_carry_its_port() {
        let c = Config::parse(
            "speaker.yaml",
            &GOOD
                .replace("peerIP: 10.0.0.254", "peerIP: 10.0.0.254:1790")
                .replace("peerIP: \"fd00::254\"", "peerIP: \"[fd00::254]:1791\""),
        )
        .unwrap();
        let ports: Vec<(String, Option<u16>)> = c
            .neighbors()
            .iter()
            .skip(2)
            .map(|n| (n.address.to_string(), n.port))
            .collect();
        assert_eq!(
            ports,
            [("10.0.0.254".into(), Some(1790)), ("fd00::254".into(), Some(1791))]
        );
        assert_eq!(c.peers[0].peer_ip.to_string(), "10.0.0.254:1790");
        let e = err(&GOOD.replace("peerIP: 10.0.0.254", "peerIP: 10.0.0.254:0"));
        assert!(
            e.starts_with("speaker.yaml: peers[0].peerIP: \"10.0.0.254:0\" is not an address"),
            "{e}"
        );
    }

    #[test]
    fn source_address_takes_calicos_forms() {
        let with = |src: &str, extra: &str| {
            GOOD.replace(
                "    holdTime: 9\n",
                &format!("    holdTime: 9\n    sourceAddress: {src}\n"),
            ) + extra
        };
        let tor = |c: Config| {
            c.neighbors()
                .into_iter()
                .find(|n| n.address.to_string() == "10.0.0.254")
                .unwrap()
        };
        let c = Config::parse("speaker.yaml", &with("UseNodeIP", "nodeIPv4: 10.0.0.1\n")).unwrap();
        assert_eq!(tor(c).source_address, Some("10.0.0.1".parse().unwrap()));
        let c = Config::parse("speaker.yaml", &with("None", "")).unwrap();
        assert_eq!(tor(c).source_address, None);
        let c = Config::parse("speaker.yaml", &with("10.0.0.7", "")).unwrap();
        assert_eq!(tor(c).source_address, Some("10.0.0.7".parse().unwrap()));
        assert_eq!(
            err(&with("UseNodeIP", "")),
            "speaker.yaml: peers[0].sourceAddress: UseNodeIP needs the node's address: give nodeIPv4"
        );
        let e = err(&with("UseNodeAddress", ""));
        assert!(
            e.starts_with(
                "speaker.yaml: peers[0].sourceAddress: \"UseNodeAddress\" is not an address, UseNodeIP or None"
            ),
            "{e}"
        );
    }

    #[test]
    fn unknown_field_names_path_and_line() {
        let text = GOOD.replace("holdTime: 9", "holdtime: 9");
        let e = err(&text);
        assert!(e.starts_with("speaker.yaml: peers[0]: unknown field `holdtime`"), "{e}");
        assert!(e.contains("line 11"), "{e}");
        assert!(e.ends_with("(did you mean `holdTime`?)"), "{e}");
        let e = err(&GOOD.replace("holdTime: 9", "holdTimer: 9"));
        assert!(e.contains("camelCase"), "{e}");
    }

    #[test]
    fn service_cidrs_are_calicos_and_checked() {
        let with = |extra: &str| format!("{GOOD}{extra}");
        let c = Config::parse(
            "speaker.yaml",
            &with("serviceClusterIPs: [{cidr: 10.96.0.0/12}, {cidr: \"fd00:96::/112\"}]\nserviceLoadBalancerIPs: [{cidr: 198.51.100.0/24}]\nnodeName: n1\n"),
        )
        .unwrap();
        let cidrs = c.service_cidrs();
        assert_eq!(cidrs.cluster.len(), 2);
        assert_eq!(cidrs.load_balancer, vec!["198.51.100.0/24".parse::<IpNet>().unwrap()]);
        assert!(cidrs.external.is_empty());
        assert_eq!(c.node_name(), "n1");
        assert_eq!(c.service_state_file, PathBuf::from("/run/speaker/services.yaml"));
        assert_eq!(
            err(&with("serviceExternalIPs: [{cidr: 192.0.2.1/24}]\n")),
            "speaker.yaml: serviceExternalIPs[0].cidr: 192.0.2.1/24 has host bits set; did you mean 192.0.2.0/24?"
        );
        assert!(err(&with("serviceClusterIPs: [{cidr: 10.244.0.0/24}]\n"))
            .contains("serviceClusterIPs[0].cidr: 10.244.0.0/24 overlaps the pod pool 10.244.0.0/16"));
        assert!(err(&with("serviceClusterIPs: [10.96.0.0/12]\n")).contains("serviceClusterIPs[0]"));
        assert!(err(&with("nodeName: \"\"\n")).contains("nodeName: must not be empty"));
    }

    #[test]
    fn bad_values() {
        assert!(
            err(&GOOD.replace("10.244.0.0/16", "10.244.0.1/16")).contains("pools[0]: 10.244.0.1/16 has host bits set")
        );
        assert!(err(&GOOD.replace("table: main", "table: mian")).contains("unknown table `mian`"));
        assert!(err(&GOOD.replace("protocol: 201", "protocol: 2")).contains("fib.protocol: 2 is reserved"));
        assert!(err(&GOOD.replace("peerIP: \"fd00::254\"", "peerIP: 10.0.0.2"))
            .contains("peers[1].peerIP: 10.0.0.2 is configured twice"));
        assert!(
            err(&GOOD.replace("holdTime: 9", "holdTime: 9\n    keepaliveTime: 9")).contains("peers[0].keepaliveTime")
        );
        assert!(err(&GOOD.replace("routerID: 10.0.0.1", "routerID: 10.0.0")).contains("routerID"));
        assert!(err("asNumber: 1\n").contains("missing field `routerID`"));
        assert!(
            err(&GOOD.replace("passive: true", "passive: true\n    routeReflectorClient: true"))
                .contains("peers[1].routeReflectorClient")
        );
    }

    #[test]
    fn bfd_defaults_and_bounds() {
        let on = |bfd: &str| GOOD.replace("holdTime: 9", &format!("holdTime: 9\n    bfd: {bfd}"));
        let n = Config::parse("speaker.yaml", &on("{}")).unwrap().neighbors();
        let timers = Timers {
            min_tx: 300_000,
            min_rx: 300_000,
            multiplier: 3,
        };
        assert_eq!(n[2].bfd, Some(timers), "300 ms x 3 by default");
        assert_eq!(n[3].bfd, None);
        let n = Config::parse("speaker.yaml", &on("{minRx: 50, multiplier: 5}"))
            .unwrap()
            .neighbors();
        assert_eq!(
            n[2].bfd.map(|t| (t.min_rx, t.min_tx, t.multiplier)),
            Some((50_000, 300_000, 5))
        );
        let n = Config::parse("speaker.yaml", &on("{enabled: false}"))
            .unwrap()
            .neighbors();
        assert_eq!(n[2].bfd, None);
        assert!(err(&on("{minTx: 5}")).contains("peers[0].bfd.minTx: 5 ms is outside 10 to 60000 ms"));
        assert!(err(&on("{multiplier: 0}")).contains("peers[0].bfd.multiplier"));
        assert!(err(&on("{minrx: 50}")).contains("minrx"));
        let mesh = GOOD.replace("peers: [10.0.0.2, 10.0.0.3]", "peers: [10.0.0.2, 10.0.0.3]\n  bfd: {}");
        let n = Config::parse("speaker.yaml", &mesh).unwrap().neighbors();
        assert_eq!((n[0].bfd, n[1].bfd, n[2].bfd), (Some(timers), Some(timers), None));
        assert!(err(&mesh.replace("bfd: {}", "bfd: {multiplier: 0}")).contains("nodeToNodeMesh.bfd.multiplier"));
    }
}
