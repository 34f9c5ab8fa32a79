//! Kubernetes services, as Calico advertises them: which service routes this node
//! announces, and why. The services and their endpoints come from a state file in
//! Kubernetes' own shape (what `kubectl get services,endpointslices -A -o yaml`
//! prints: a `List` of `Service` and `EndpointSlice` objects, YAML or JSON); only the
//! fields that decide an advertisement are read, the rest of each object is ignored.
//!
//! What is advertised follows Calico's BGPConfiguration: every node advertises each
//! CIDR of `serviceClusterIPs`, `serviceExternalIPs` and `serviceLoadBalancerIPs`
//! (traffic policy Cluster: any node forwards); a service IP inside one of them whose
//! service has `externalTrafficPolicy: Local` (or, for a cluster IP,
//! `internalTrafficPolicy: Local`) is advertised as a /32 or /128 only by the nodes
//! that host a ready endpoint of it, and withdrawn when the last one goes.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_yaml::Value;

/// The configured service CIDRs, by the BGPConfiguration field that lists them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceCidrs {
    pub cluster: Vec<IpNet>,
    pub external: Vec<IpNet>,
    pub load_balancer: Vec<IpNet>,
}

impl ServiceCidrs {
    pub fn is_empty(&self) -> bool {
        self.cluster.is_empty() && self.external.is_empty() && self.load_balancer.is_empty()
    }

    fn of(&self, kind: IpKind) -> &[IpNet] {
        match kind {
            IpKind::Cluster => &self.cluster,
            IpKind::External => &self.external,
            IpKind::LoadBalancer => &self.load_balancer,
        }
    }
}

/// Which of a service's addresses, named by the field that configures its CIDRs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum IpKind {
    #[serde(rename = "serviceClusterIPs")]
    Cluster,
    #[serde(rename = "serviceExternalIPs")]
    External,
    #[serde(rename = "serviceLoadBalancerIPs")]
    LoadBalancer,
}

impl IpKind {
    pub fn field(self) -> &'static str {
        match self {
            IpKind::Cluster => "serviceClusterIPs",
            IpKind::External => "serviceExternalIPs",
            IpKind::LoadBalancer => "serviceLoadBalancerIPs",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Policy {
    #[default]
    Cluster,
    Local,
}

/// One endpoint of a service: where it runs and whether it takes traffic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The pod's name (`targetRef.name`), or its first address.
    pub name: String,
    pub addresses: Vec<IpAddr>,
    pub node: Option<String>,
    pub ready: bool,
}

/// A service, with the endpoints of its EndpointSlices.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// `namespace/name`.
    pub name: String,
    pub cluster_ips: Vec<IpAddr>,
    pub external_ips: Vec<IpAddr>,
    pub load_balancer_ips: Vec<IpAddr>,
    pub external_policy: Policy,
    pub internal_policy: Policy,
    pub endpoints: Vec<Endpoint>,
}

impl Service {
    /// The policy that decides where `kind` addresses are advertised from.
    fn policy(&self, kind: IpKind) -> Policy {
        match kind {
            IpKind::Cluster => self.external_policy.max(self.internal_policy),
            IpKind::External | IpKind::LoadBalancer => self.external_policy,
        }
    }

    fn ips(&self, kind: IpKind) -> &[IpAddr] {
        match kind {
            IpKind::Cluster => &self.cluster_ips,
            IpKind::External => &self.external_ips,
            IpKind::LoadBalancer => &self.load_balancer_ips,
        }
    }
}

/// Every service the state file holds, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceState {
    pub services: Vec<Service>,
}

/// Why a service route is advertised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Why {
    /// The BGPConfiguration field whose CIDR holds the route.
    pub field: &'static str,
    /// Cluster for a configured CIDR (every node), Local for a service's /32 or /128.
    pub policy: Policy,
    /// For a CIDR, the services with policy Cluster whose addresses it carries; for a
    /// Local route, the services of that address, each with its endpoints on this node.
    pub services: Vec<ServiceWhy>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServiceWhy {
    pub service: String,
    pub ip: IpAddr,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub local_endpoints: Vec<String>,
}

/// The routes `node` advertises for `state` under `cidrs`, each with why.
pub fn routes(cidrs: &ServiceCidrs, node: &str, state: &ServiceState) -> BTreeMap<IpNet, Why> {
    let kinds = [IpKind::Cluster, IpKind::External, IpKind::LoadBalancer];
    let mut out: BTreeMap<IpNet, Why> = BTreeMap::new();
    for kind in kinds {
        for cidr in cidrs.of(kind) {
            out.entry(*cidr).or_insert_with(|| Why {
                field: kind.field(),
                policy: Policy::Cluster,
                services: Vec::new(),
            });
        }
    }
    for svc in &state.services {
        for kind in kinds {
            for ip in svc.ips(kind) {
                let Some(cidr) = cidrs.of(kind).iter().find(|c| c.contains(ip)) else {
                    continue;
                };
                let (prefix, local_endpoints) = match svc.policy(kind) {
                    Policy::Cluster => (*cidr, Vec::new()),
                    Policy::Local => {
                        let here: Vec<String> = svc
                            .endpoints
                            .iter()
                            .filter(|e| e.ready && e.node.as_deref() == Some(node))
                            .map(|e| e.name.clone())
                            .collect();
                        if here.is_empty() {
                            continue;
                        }
                        (IpNet::from(*ip), here)
                    }
                };
                let why = out.entry(prefix).or_insert_with(|| Why {
                    field: kind.field(),
                    policy: Policy::Local,
                    services: Vec::new(),
                });
                why.services.push(ServiceWhy {
                    service: svc.name.clone(),
                    ip: *ip,
                    local_endpoints,
                });
            }
        }
    }
    out
}

/// Reads a state file's text: a Kubernetes `List` (`items:`), or a plain sequence,
/// of objects; `Service` and `EndpointSlice` are read, any other kind skipped.
/// Errors name the item and the field.
pub fn parse(text: &str) -> Result<ServiceState, String> {
    let doc: Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    let items = match &doc {
        Value::Sequence(items) => items.as_slice(),
        Value::Mapping(m) => match m.get("items") {
            Some(Value::Sequence(items)) => items.as_slice(),
            Some(Value::Null) => &[],
            Some(_) => return Err("items: not a list".into()),
            None => match m.get("kind").and_then(Value::as_str) {
                Some("Service" | "EndpointSlice") => std::slice::from_ref(&doc),
                _ => return Err("a Kubernetes List (items: [...]) of Services and EndpointSlices".into()),
            },
        },
        Value::Null => &[],
        _ => return Err("a Kubernetes List (items: [...]) of Services and EndpointSlices".into()),
    };
    let mut services: BTreeMap<String, Service> = BTreeMap::new();
    let mut slices: Vec<(String, Vec<Endpoint>)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let kind = item.get("kind").and_then(Value::as_str).unwrap_or("");
        let meta = |key: &str| item.get("metadata").and_then(|m| m.get(key)).and_then(Value::as_str);
        let named = match (meta("namespace"), meta("name")) {
            (ns, Some(name)) => format!(" {}/{name}", ns.unwrap_or("default")),
            (_, None) => String::new(),
        };
        let at = format!("items[{i}] ({kind}{named})");
        match kind {
            "Service" => {
                let raw: K8sService = typed(item).map_err(|e| format!("{at}: {e}"))?;
                let name = raw.metadata.full_name();
                let svc = raw.into_service().map_err(|e| format!("{at}: {e}"))?;
                if services.insert(name.clone(), svc).is_some() {
                    return Err(format!("{at}: service {name} is listed twice"));
                }
            }
            "EndpointSlice" => {
                let raw: K8sSlice = typed(item).map_err(|e| format!("{at}: {e}"))?;
                let (service, endpoints) = raw.into_endpoints().map_err(|e| format!("{at}: {e}"))?;
                slices.push((service, endpoints));
            }
            "" => return Err(format!("items[{i}]: no kind (Service or EndpointSlice)")),
            _ => {}
        }
    }
    for (service, endpoints) in slices {
        // A slice whose service is not (yet) listed: nothing to advertise for it.
        if let Some(svc) = services.get_mut(&service) {
            svc.endpoints.extend(endpoints);
        }
    }
    Ok(ServiceState {
        services: services.into_values().collect(),
    })
}

/// One item as a typed object, its errors naming the field (`spec.clusterIPs: invalid
/// type ...`): through text, as `from_value` names no path; the line numbers of that
/// text would mislead, so they are cut.
fn typed<T: serde::de::DeserializeOwned>(item: &Value) -> Result<T, String> {
    let text = serde_yaml::to_string(item).map_err(|e| e.to_string())?;
    serde_yaml::from_str(&text).map_err(|e| {
        let e = e.to_string();
        match e.rfind(" at line ") {
            Some(at) => e[..at].to_string(),
            None => e,
        }
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Metadata {
    name: String,
    namespace: Option<String>,
    labels: BTreeMap<String, String>,
}

impl Metadata {
    /// `namespace/name` of an object of this namespace (Kubernetes' `default` when
    /// none is given).
    fn qualify(&self, name: &str) -> String {
        format!("{}/{name}", self.namespace.as_deref().unwrap_or("default"))
    }

    fn full_name(&self) -> String {
        self.qualify(&self.name)
    }
}

#[derive(Deserialize)]
struct K8sService {
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    spec: ServiceSpec,
    #[serde(default)]
    status: ServiceStatus,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ServiceSpec {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(rename = "clusterIP")]
    cluster_ip: Option<String>,
    #[serde(rename = "clusterIPs")]
    cluster_ips: Vec<String>,
    #[serde(rename = "externalIPs")]
    external_ips: Vec<String>,
    external_traffic_policy: Option<String>,
    internal_traffic_policy: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ServiceStatus {
    load_balancer: LoadBalancerStatus,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoadBalancerStatus {
    ingress: Vec<Ingress>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Ingress {
    ip: Option<String>,
}

fn policy(field: &str, value: Option<&str>) -> Result<Policy, String> {
    match value {
        None | Some("Cluster") => Ok(Policy::Cluster),
        Some("Local") => Ok(Policy::Local),
        Some(other) => Err(format!("spec.{field}: `{other}` is not Cluster or Local")),
    }
}

fn ip(field: &str, s: &str) -> Result<IpAddr, String> {
    s.parse().map_err(|_| format!("{field}: `{s}` is not an IP address"))
}

/// Every address of the list `field`, each error naming its place (`field[2]`).
fn ips(field: &str, list: &[String]) -> Result<Vec<IpAddr>, String> {
    list.iter()
        .enumerate()
        .map(|(k, s)| ip(&format!("{field}[{k}]"), s))
        .collect()
}

impl K8sService {
    fn into_service(self) -> Result<Service, String> {
        if self.metadata.name.is_empty() {
            return Err("metadata.name: missing".into());
        }
        let name = self.metadata.full_name();
        let spec = self.spec;
        let external_policy = policy("externalTrafficPolicy", spec.external_traffic_policy.as_deref())?;
        let internal_policy = policy("internalTrafficPolicy", spec.internal_traffic_policy.as_deref())?;
        if spec.kind.as_deref() == Some("ExternalName") {
            return Ok(Service {
                name,
                cluster_ips: Vec::new(),
                external_ips: Vec::new(),
                load_balancer_ips: Vec::new(),
                external_policy,
                internal_policy,
                endpoints: Vec::new(),
            });
        }
        // clusterIPs holds clusterIP first when both are set; a headless service
        // says `None`.
        let mut cluster_ips = Vec::new();
        let listed = match spec.cluster_ips.is_empty() {
            true => spec.cluster_ip.into_iter().collect::<Vec<_>>(),
            false => spec.cluster_ips,
        };
        for (k, s) in listed.iter().enumerate() {
            if s.is_empty() || s == "None" {
                continue;
            }
            let a = ip(&format!("spec.clusterIPs[{k}]"), s)?;
            if !cluster_ips.contains(&a) {
                cluster_ips.push(a);
            }
        }
        let external_ips = ips("spec.externalIPs", &spec.external_ips)?;
        let mut load_balancer_ips = Vec::new();
        for (k, ing) in self.status.load_balancer.ingress.iter().enumerate() {
            // An ingress may name a host instead of an address: nothing to route.
            if let Some(s) = &ing.ip {
                load_balancer_ips.push(ip(&format!("status.loadBalancer.ingress[{k}].ip"), s)?);
            }
        }
        Ok(Service {
            name,
            cluster_ips,
            external_ips,
            load_balancer_ips,
            external_policy,
            internal_policy,
            endpoints: Vec::new(),
        })
    }
}

#[derive(Deserialize)]
struct K8sSlice {
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    endpoints: Vec<K8sEndpoint>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct K8sEndpoint {
    addresses: Vec<String>,
    conditions: Conditions,
    node_name: Option<String>,
    target_ref: Option<TargetRef>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Conditions {
    ready: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TargetRef {
    name: Option<String>,
}

const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

impl K8sSlice {
    fn into_endpoints(self) -> Result<(String, Vec<Endpoint>), String> {
        let Some(service) = self.metadata.labels.get(SERVICE_NAME_LABEL) else {
            return Err(format!(
                "metadata.labels: no `{SERVICE_NAME_LABEL}`: whose endpoints are these?"
            ));
        };
        let service = self.metadata.qualify(service);
        let mut out = Vec::new();
        for (k, e) in self.endpoints.into_iter().enumerate() {
            let addresses = ips(&format!("endpoints[{k}].addresses"), &e.addresses)?;
            let name = e
                .target_ref
                .and_then(|t| t.name)
                .or_else(|| addresses.first().map(IpAddr::to_string))
                .unwrap_or_default();
            out.push(Endpoint {
                name,
                addresses,
                node: e.node_name,
                // Kubernetes: an unknown readiness is to be taken as ready.
                ready: e.conditions.ready.unwrap_or(true),
            });
        }
        Ok((service, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATE: &str = r#"
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: web, namespace: shop, uid: 1234}
  spec:
    type: LoadBalancer
    clusterIP: 10.96.0.10
    clusterIPs: [10.96.0.10, "fd00:96::10"]
    externalIPs: [192.0.2.10]
    externalTrafficPolicy: Local
    ports: [{port: 80, protocol: TCP}]
  status:
    loadBalancer:
      ingress: [{ip: 198.51.100.10}, {hostname: lb.example.com}]
- apiVersion: v1
  kind: Service
  metadata: {name: api, namespace: shop}
  spec: {clusterIP: 10.96.0.11, externalIPs: [192.0.2.11]}
- apiVersion: v1
  kind: Service
  metadata: {name: headless, namespace: shop}
  spec: {clusterIP: None}
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata:
    name: web-abc
    namespace: shop
    labels: {kubernetes.io/service-name: web}
  addressType: IPv4
  endpoints:
  - {addresses: [10.244.1.5], conditions: {ready: true}, nodeName: n1, targetRef: {kind: Pod, name: web-1}}
  - {addresses: [10.244.2.5], conditions: {ready: false}, nodeName: n2, targetRef: {kind: Pod, name: web-2}}
  - {addresses: [10.244.3.5], nodeName: n3}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: other}
"#;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn cidrs() -> ServiceCidrs {
        ServiceCidrs {
            cluster: vec![net("10.96.0.0/12"), net("fd00:96::/112")],
            external: vec![net("192.0.2.0/24")],
            load_balancer: vec![net("198.51.100.0/24")],
        }
    }

    #[test]
    fn a_kubectl_list_is_read() {
        let s = parse(STATE).unwrap();
        let names: Vec<&str> = s.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["shop/api", "shop/headless", "shop/web"]);
        let web = &s.services[2];
        assert_eq!(web.cluster_ips.len(), 2);
        assert_eq!(web.load_balancer_ips, vec!["198.51.100.10".parse::<IpAddr>().unwrap()]);
        assert_eq!(web.external_policy, Policy::Local);
        assert_eq!(web.endpoints.len(), 3);
        assert!(web.endpoints[2].ready, "no readiness is ready");
        assert_eq!(web.endpoints[2].name, "10.244.3.5");
        assert!(s.services[1].cluster_ips.is_empty(), "headless");
    }

    #[test]
    fn cidrs_from_every_node_and_local_ips_from_endpoint_nodes_only() {
        let s = parse(STATE).unwrap();
        let on_n1 = routes(&cidrs(), "n1", &s);
        let keys: Vec<String> = on_n1.keys().map(ToString::to_string).collect();
        assert_eq!(
            keys,
            [
                "10.96.0.0/12",
                "10.96.0.10/32",
                "192.0.2.0/24",
                "192.0.2.10/32",
                "198.51.100.0/24",
                "198.51.100.10/32",
                "fd00:96::/112",
                "fd00:96::10/128"
            ]
        );
        let lb = &on_n1[&net("198.51.100.10/32")];
        assert_eq!((lb.field, lb.policy), ("serviceLoadBalancerIPs", Policy::Local));
        assert_eq!(lb.services[0].local_endpoints, ["web-1"]);
        // The Cluster service's addresses ride on the CIDRs, which say so.
        let ext = &on_n1[&net("192.0.2.0/24")];
        assert_eq!(ext.services[0].service, "shop/api");
        // n2's endpoint is not ready: n2 advertises the CIDRs only.
        assert_eq!(routes(&cidrs(), "n2", &s).len(), 4);
        // n3's has no readiness, which is ready.
        assert_eq!(routes(&cidrs(), "n3", &s).len(), 8);
        // An address outside the configured CIDRs is not advertised.
        let mut narrow = cidrs();
        narrow.load_balancer.clear();
        assert!(!routes(&narrow, "n1", &s).contains_key(&net("198.51.100.10/32")));
    }

    #[test]
    fn internal_policy_local_makes_the_cluster_ip_local() {
        let text = "items:\n- kind: Service\n  metadata: {name: dns}\n  spec: {clusterIP: 10.96.0.53, internalTrafficPolicy: Local, externalIPs: [192.0.2.53]}\n- kind: EndpointSlice\n  metadata: {name: dns-1, labels: {kubernetes.io/service-name: dns}}\n  endpoints: [{addresses: [10.244.1.9], nodeName: n1}]\n";
        let s = parse(text).unwrap();
        let r = routes(&cidrs(), "n1", &s);
        assert!(r.contains_key(&net("10.96.0.53/32")));
        assert!(
            !r.contains_key(&net("192.0.2.53/32")),
            "external IPs follow externalTrafficPolicy"
        );
        assert!(!routes(&cidrs(), "n2", &s).contains_key(&net("10.96.0.53/32")));
    }

    #[test]
    fn bad_files_are_refused_saying_where() {
        let cases = [
            (
                "items: [{kind: Service, metadata: {name: a}, spec: {clusterIP: 10.96.0.300}}]",
                "items[0] (Service default/a): spec.clusterIPs[0]: `10.96.0.300` is not an IP address",
            ),
            (
                "items: [{kind: Service, metadata: {name: a}, spec: {externalTrafficPolicy: Locale}}]",
                "spec.externalTrafficPolicy: `Locale` is not Cluster or Local",
            ),
            (
                "items: [{kind: Service, metadata: {name: a}}, {kind: Service, metadata: {name: a}}]",
                "items[1] (Service default/a): service default/a is listed twice",
            ),
            (
                "items: [{kind: EndpointSlice, metadata: {name: s}, endpoints: []}]",
                "no `kubernetes.io/service-name`",
            ),
            ("items: [{metadata: {name: a}}]", "items[0]: no kind"),
            (
                "items: [{kind: Service, spec: {clusterIPs: 3}}]",
                "items[0] (Service): spec.clusterIPs: invalid type",
            ),
            (
                "- {kind: Service, metadata: {name: a}, spec: [",
                "did not find expected",
            ),
            ("just words", "a Kubernetes List"),
        ];
        for (text, want) in cases {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
        assert_eq!(parse("").unwrap(), ServiceState::default());
        assert_eq!(parse("items: []").unwrap(), ServiceState::default());
    }
}
