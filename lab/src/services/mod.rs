//! Kubernetes services, with the lab playing the cluster's part: a service is an IP
//! (one per family), a TCP port, a type (which of Calico's BGPConfiguration fields
//! covers its IP), a traffic policy and its endpoints, named by pod. The lab keeps the
//! services in every Kubernetes node (`/run/podlab/services.json`) and, from them and
//! the pods that exist, programs each node as kube-proxy does (`kubeproxy.rs`), starts
//! a TCP server in each endpoint pod (`servers.rs`), and writes what the node's BGP
//! agent reads (`manifest.rs`: the speaker's state file, a Kubernetes `List`;
//! `confd.rs`: BIRD's and FRR's static routes, as Calico's confd writes BIRD's). An
//! endpoint whose pod is gone is no endpoint, as an EndpointSlice drops a deleted pod;
//! a pod created again under its name is one again. An endpoint can be not ready (its
//! readiness probe failing): it stays in the EndpointSlice with `ready: false`, and
//! neither kube-proxy nor Calico's route advertisement counts it.

pub mod confd;
mod kubeproxy;
mod manifest;
pub mod probe;
mod servers;
mod sync;
pub mod up;

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::runtime::RuntimeError;
use crate::topology::Topology;

pub use probe::{advertised_by, connect, Answers};
pub use sync::{apply, apply_with, follow_pods, stored};

/// Node labels that declare a service: `lab.service.<name>: "ip=... port=... ..."`.
pub use crate::labels::SERVICE_PREFIX as LABEL_PREFIX;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("{0}")]
    Invalid(String),
    #[error("node {node}: services: `{step}` failed: {output}")]
    Failed { node: String, step: String, output: String },
}

/// Which of Calico's BGPConfiguration fields covers the service's IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Type {
    /// `spec.clusterIPs`: `serviceClusterIPs`.
    ClusterIP,
    /// `status.loadBalancer.ingress`: `serviceLoadBalancerIPs`.
    LoadBalancer,
    /// `spec.externalIPs`: `serviceExternalIPs`.
    External,
}

impl FromStr for Type {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "clusterip" => Ok(Type::ClusterIP),
            "loadbalancer" => Ok(Type::LoadBalancer),
            "external" | "externalip" => Ok(Type::External),
            _ => Err(format!("type {s:?}: ClusterIP, LoadBalancer or External")),
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Type::ClusterIP => "ClusterIP",
            Type::LoadBalancer => "LoadBalancer",
            Type::External => "External",
        })
    }
}

/// The traffic policy: `externalTrafficPolicy` (for a cluster IP,
/// `internalTrafficPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Policy {
    /// Any node takes the traffic and forwards it to any endpoint, masqueraded.
    Cluster,
    /// Only nodes hosting an endpoint take it, for their own endpoints, and the
    /// endpoint sees the client's address.
    Local,
}

impl FromStr for Policy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "cluster" => Ok(Policy::Cluster),
            "local" => Ok(Policy::Local),
            _ => Err(format!("policy {s:?}: Cluster or Local")),
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Policy::Cluster => "Cluster",
            Policy::Local => "Local",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub name: String,
    /// One address per family at most.
    pub ips: Vec<IpAddr>,
    pub port: u16,
    #[serde(rename = "type")]
    pub service_type: Type,
    pub policy: Policy,
    /// Its endpoints, by pod name.
    pub endpoints: Vec<String>,
    /// The endpoints among them that are not ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_ready: Vec<String>,
}

impl Service {
    /// Reads the label form, the `lab service add` flags as `key=value` words:
    /// `ip=198.51.100.10[,fd00::10] port=80 [type=LoadBalancer] [policy=Cluster]
    /// endpoints=n1-pod1,n2-pod1 [not_ready=n2-pod1]`.
    pub fn parse_spec(name: &str, spec: &str) -> Result<Service, String> {
        const KEYS: &str = "keys: ip, port, type, policy, endpoints, not_ready";
        let (mut ips, mut port, mut kind, mut policy, mut endpoints, mut not_ready) =
            (None, None, Type::LoadBalancer, Policy::Cluster, None, Vec::new());
        let pods = |v: &str| v.split(',').filter(|e| !e.is_empty()).map(str::to_string).collect();
        for word in spec.split_whitespace() {
            let (k, v) = word
                .split_once('=')
                .ok_or_else(|| format!("{word:?} is not key=value ({KEYS})"))?;
            match k {
                "ip" => ips = Some(parse_ips(v)?),
                "port" => port = Some(v.parse::<u16>().map_err(|_| format!("port {v:?} is not a TCP port"))?),
                "type" => kind = v.parse()?,
                "policy" => policy = v.parse()?,
                "endpoints" => endpoints = Some(pods(v)),
                "not_ready" => not_ready = pods(v),
                _ => return Err(format!("unknown key {k:?} ({KEYS})")),
            }
        }
        let s = Service {
            name: name.to_string(),
            ips: ips.ok_or("no ip=")?,
            port: port.ok_or("no port=")?,
            service_type: kind,
            policy,
            endpoints: endpoints.unwrap_or_default(),
            not_ready,
        };
        s.check()?;
        Ok(s)
    }

    /// What Kubernetes would refuse: a name that is no DNS label, two IPs of one
    /// family, port 0, an endpoint that is no pod name; and a not-ready pod that is
    /// none of the endpoints.
    pub fn check(&self) -> Result<(), String> {
        let n = &self.name;
        let dns_label = !n.is_empty()
            && n.len() <= 63
            && n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !n.starts_with('-')
            && !n.ends_with('-');
        if !dns_label {
            return Err(format!(
                "service name {n:?}: lower-case letters, digits and '-', at most 63, as Kubernetes has it"
            ));
        }
        if self.ips.is_empty()
            || self.ips.iter().filter(|a| a.is_ipv4()).count() > 1
            || self.ips.iter().filter(|a| a.is_ipv6()).count() > 1
        {
            return Err(format!("service {n}: give one IP, or one of each family"));
        }
        if self.port == 0 {
            return Err(format!("service {n}: port 0"));
        }
        for e in &self.endpoints {
            let ok =
                !e.is_empty() && e.len() <= 40 && e.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
            if !ok {
                return Err(format!("service {n}: endpoint {e:?} is not a pod name"));
            }
        }
        if let Some(e) = self.not_ready.iter().find(|e| !self.endpoints.contains(e)) {
            return Err(format!(
                "service {n}: not-ready {e:?} is not one of its endpoints ({})",
                self.endpoints.join(", ")
            ));
        }
        Ok(())
    }

    /// Whether the endpoint `pod` is ready (an endpoint is, unless said otherwise).
    pub fn is_ready(&self, pod: &str) -> bool {
        !self.not_ready.iter().any(|e| e == pod)
    }

    /// The endpoints that are ready, by pod name.
    pub fn ready_endpoints(&self) -> impl Iterator<Item = &String> {
        self.endpoints.iter().filter(|e| self.is_ready(e))
    }

    /// `pods` made ready (`ready`) or not.
    pub fn set_ready(&mut self, pods: &[String], ready: bool) -> Result<(), String> {
        if let Some(p) = pods.iter().find(|p| !self.endpoints.contains(p)) {
            return Err(format!(
                "service {}: {p} is not one of its endpoints ({})",
                self.name,
                self.endpoints.join(", ")
            ));
        }
        self.not_ready.retain(|e| !pods.contains(e));
        if !ready {
            self.not_ready.extend(pods.iter().cloned());
            self.not_ready.sort();
        }
        Ok(())
    }

    /// `198.51.100.10:80`, `[fd00::10]:80`, joined.
    pub fn addresses(&self) -> String {
        self.ips
            .iter()
            .map(|ip| std::net::SocketAddr::new(*ip, self.port).to_string())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// `198.51.100.10` or `198.51.100.10,fd00::10`.
pub fn parse_ips(v: &str) -> Result<Vec<IpAddr>, String> {
    v.split(',')
        .map(|a| a.trim().parse().map_err(|_| format!("ip {a:?} is not an address")))
        .collect()
}

/// The services a topology declares with `lab.service.<name>` labels (on any node; the
/// outside client is the natural place), sorted by name.
pub fn declared(topo: &Topology) -> Result<Vec<Service>, ServiceError> {
    let mut out: Vec<Service> = Vec::new();
    for node in topo.nodes.values() {
        for (key, spec) in &node.labels {
            let Some(name) = key.strip_prefix(LABEL_PREFIX) else {
                continue;
            };
            let where_ = || format!("{}:{}: node {}: label {key}", topo.file.display(), node.line, node.name);
            let s = Service::parse_spec(name, spec).map_err(|e| ServiceError::Invalid(format!("{}: {e}", where_())))?;
            if out.iter().any(|o| o.name == s.name) {
                return Err(ServiceError::Invalid(format!(
                    "{}: service {name} is declared twice",
                    where_()
                )));
            }
            out.push(s);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_label_form_reads_as_the_flags() {
        let s = Service::parse_spec(
            "web",
            "ip=198.51.100.10,fd00:198::10 port=80 type=LoadBalancer policy=Local endpoints=n1-pod1,n3-pod1",
        )
        .unwrap();
        assert_eq!(s.ips.len(), 2);
        assert_eq!(s.port, 80);
        assert_eq!(s.service_type, Type::LoadBalancer);
        assert_eq!(s.policy, Policy::Local);
        assert_eq!(s.endpoints, ["n1-pod1", "n3-pod1"]);
        assert_eq!(s.addresses(), "198.51.100.10:80 [fd00:198::10]:80");
        assert!(s.not_ready.is_empty() && s.is_ready("n1-pod1"));
    }

    #[test]
    fn readiness_is_per_endpoint_and_only_of_endpoints() {
        let mut s = Service::parse_spec("web", "ip=198.51.100.10 port=80 endpoints=a,b not_ready=b").unwrap();
        assert_eq!(s.ready_endpoints().collect::<Vec<_>>(), ["a"]);
        s.set_ready(&["a".into()], false).unwrap();
        assert_eq!(s.ready_endpoints().count(), 0);
        s.set_ready(&["a".into(), "b".into()], true).unwrap();
        assert_eq!(s.ready_endpoints().collect::<Vec<_>>(), ["a", "b"]);
        let e = s.set_ready(&["c".into()], false).unwrap_err();
        assert!(e.contains("c is not one of its endpoints (a, b)"), "{e}");
        assert!(s.not_ready.is_empty(), "a refused change changes nothing");
    }

    #[test]
    fn what_kubernetes_refuses_is_refused_with_why() {
        let bad = [
            ("Web", "ip=198.51.100.10 port=80", "service name"),
            ("web", "ip=198.51.100.10,198.51.100.11 port=80", "one of each family"),
            ("web", "ip=198.51.100.10", "no port="),
            ("web", "ip=nope port=80", "is not an address"),
            ("web", "ip=198.51.100.10 port=80 policy=Nodes", "Cluster or Local"),
            ("web", "ip=198.51.100.10 port=80 endpoints=$(x)", "not a pod name"),
            ("web", "ip=198.51.100.10 port=80 weight=3", "unknown key"),
            (
                "web",
                "ip=198.51.100.10 port=80 endpoints=a not_ready=b",
                "not one of its endpoints",
            ),
        ];
        for (name, spec, want) in bad {
            let e = Service::parse_spec(name, spec).unwrap_err();
            assert!(e.contains(want), "{spec}: {e}");
        }
    }

    #[test]
    fn topologies_declare_services_with_labels_and_errors_name_the_place() {
        let src = "name: t\ntopology:\n  nodes:\n    client:\n      kind: linux\n      image: x\n      labels:\n        lab.service.web: \"ip=198.51.100.10 port=80 endpoints=n1-pod1\"\n        lab.service.db: \"ip=198.51.100.11 port=5432 policy=Local\"\n";
        let t = Topology::parse(src, std::path::Path::new("/t.clab.yml")).unwrap();
        let s = declared(&t).unwrap();
        assert_eq!(s.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["db", "web"]);
        let src = src.replace("port=5432", "port=99999");
        let t = Topology::parse(&src, std::path::Path::new("/t.clab.yml")).unwrap();
        let e = declared(&t).unwrap_err().to_string();
        assert!(
            e.starts_with("/t.clab.yml:4: node client: label lab.service.db: port"),
            "{e}"
        );
    }
}
