//! The services as Kubernetes' API server would list them (`kubectl get
//! services,endpointslices -o json`): a `List` of `Service` and `EndpointSlice`
//! objects, which is what the speaker's state file holds. An EndpointSlice lists the
//! endpoint pods that exist, each with its node and whether it is ready (a pod whose
//! readiness probe fails is neither ready nor serving, and not terminating), one slice
//! per family.

use serde_json::{json, Value};

use super::{Policy, Service, Type};
use crate::pods::Pod;

/// Where the speaker reads it (its `serviceStateFile` default).
pub const SPEAKER_STATE: &str = "/run/speaker/services.yaml";
const NAMESPACE: &str = "default";

pub fn list(services: &[Service], pods: &[Pod]) -> Value {
    let mut items = Vec::new();
    for s in services {
        items.push(service(s));
        for v4 in [true, false] {
            let Some(ip) = s.ips.iter().find(|a| a.is_ipv4() == v4) else {
                continue;
            };
            let endpoints: Vec<Value> = s
                .endpoints
                .iter()
                .filter_map(|e| pods.iter().find(|p| &p.name == e))
                .filter_map(|p| {
                    let addr = p.addresses().into_iter().find(|a| a.is_ipv4() == ip.is_ipv4())?;
                    let ready = s.is_ready(&p.name);
                    Some(json!({
                        "addresses": [addr.to_string()],
                        "conditions": {"ready": ready, "serving": ready, "terminating": false},
                        "nodeName": p.node,
                        "targetRef": {"kind": "Pod", "name": p.name, "namespace": NAMESPACE},
                    }))
                })
                .collect();
            let family = if v4 { "IPv4" } else { "IPv6" };
            items.push(json!({
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": format!("{}-{}", s.name, family.to_ascii_lowercase()),
                    "namespace": NAMESPACE,
                    "labels": {"kubernetes.io/service-name": s.name},
                },
                "addressType": family,
                "endpoints": endpoints,
                "ports": [{"port": s.port, "protocol": "TCP"}],
            }));
        }
    }
    json!({"apiVersion": "v1", "kind": "List", "items": items})
}

fn service(s: &Service) -> Value {
    let ips: Vec<String> = s.ips.iter().map(|a| a.to_string()).collect();
    let policy = match s.policy {
        Policy::Cluster => "Cluster",
        Policy::Local => "Local",
    };
    let mut spec = json!({
        "ports": [{"port": s.port, "protocol": "TCP", "targetPort": s.port}],
        "externalTrafficPolicy": policy,
        "internalTrafficPolicy": "Cluster",
    });
    let mut status = json!({});
    match s.service_type {
        Type::ClusterIP => {
            spec["type"] = json!("ClusterIP");
            spec["clusterIP"] = json!(ips[0]);
            spec["clusterIPs"] = json!(ips);
            spec["internalTrafficPolicy"] = json!(policy);
        }
        Type::External => {
            spec["type"] = json!("ClusterIP");
            spec["externalIPs"] = json!(ips);
        }
        Type::LoadBalancer => {
            spec["type"] = json!("LoadBalancer");
            status = json!({"loadBalancer": {"ingress": ips.iter().map(|ip| json!({"ip": ip})).collect::<Vec<_>>()}});
        }
    }
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": s.name, "namespace": NAMESPACE},
        "spec": spec,
        "status": status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_load_balancer_lists_its_existing_endpoints_with_their_nodes() {
        let pods = [Pod {
            node: "n3".into(),
            name: "n3-pod1".into(),
            ip: "10.244.0.129".parse().unwrap(),
            ip6: None,
            iface: "cali0".into(),
        }];
        let s = Service::parse_spec("shop", "ip=198.51.100.20 port=80 policy=Local endpoints=n3-pod1,gone").unwrap();
        let l = list(&[s], &pods);
        let items = l["items"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["status"]["loadBalancer"]["ingress"][0]["ip"], "198.51.100.20");
        assert_eq!(items[0]["spec"]["externalTrafficPolicy"], "Local");
        let eps = items[1]["endpoints"].as_array().unwrap();
        assert_eq!(eps.len(), 1, "the pod that is gone is no endpoint");
        assert_eq!(eps[0]["nodeName"], "n3");
        assert_eq!(items[1]["metadata"]["labels"]["kubernetes.io/service-name"], "shop");
    }
}
