//! Placeholders in case files: `{n1.block}`, `{n1.addr6}`, `{pod.web}` replaced with
//! what the deployed cell has, a route's IPv6 twin on a dual-stack cell, and node sets
//! (`all`, `others:n1`, `n2,n3`).

use std::net::IpAddr;

use ipnet::IpNet;

use super::lab::{k8s_nodes, label_blocks, resolve_node, Lab};

/// Replaces `{n1.block}`, `{n1.block6}` and `{pod.NAME}` in `s`.
pub fn subst(lab: &Lab, s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').ok_or_else(|| format!("{s:?}: an unclosed {{"))? + i;
        let key = &rest[i + 1..end];
        let value = match key.split_once('.') {
            Some(("pod", name)) => lab
                .pod_ips
                .get(name)
                .map(|ip| ip.to_string())
                .ok_or_else(|| format!("{s:?}: no pod {name} made by this case"))?,
            // On an IPv6-only cell a pod's one address is its IPv6 one.
            Some(("pod6", name)) => lab
                .pod_ips6
                .get(name)
                .or_else(|| lab.pod_ips.get(name).filter(|ip| ip.is_ipv6()))
                .map(|ip| ip.to_string())
                .ok_or_else(|| format!("{s:?}: no IPv6 pod {name} made by this case (an IPv4 cell?)"))?,
            // A service's address: IPv4 (IPv6 on an IPv6-only cell), or IPv6.
            Some(("svc", name)) | Some(("svc6", name)) => {
                let v6 = key.starts_with("svc6") || !lab.cell.v4();
                lab.services
                    .iter()
                    .find(|x| x.name == name)
                    .ok_or_else(|| format!("{s:?}: no service {name} made by this case"))?
                    .ips
                    .iter()
                    .find(|a| a.is_ipv6() == v6)
                    .map(|a| a.to_string())
                    .ok_or_else(|| format!("{s:?}: service {name} has no such address"))?
            }
            // `addr` and `block`: the IPv4 one, or the IPv6 one on an IPv6-only cell;
            // `addr6` and `block6`: the IPv6 one.
            Some((node, "addr")) | Some((node, "addr6")) => {
                let v6 = key.ends_with('6') || !lab.cell.v4();
                let node = resolve_node(lab, node);
                lab.addresses
                    .get(&node)
                    .and_then(|a| a.iter().find(|a| a.is_ipv6() == v6))
                    .map(|a| a.to_string())
                    .ok_or_else(|| format!("{s:?}: node {node} has no such address"))?
            }
            // `id`: its BGP router ID, as its intent has it.
            Some((node, "id")) => {
                let node = resolve_node(lab, node);
                lab.plan
                    .nodes
                    .iter()
                    .find(|n| n.name == node)
                    .and_then(|n| n.router_id())
                    .map(|id| id.to_string())
                    .ok_or_else(|| format!("{s:?}: node {node} has no router ID in this cell"))?
            }
            Some((node, "block")) | Some((node, "block6")) => {
                let v6 = key.ends_with('6') || !lab.cell.v4();
                label_blocks(lab, node)
                    .into_iter()
                    .find(|b| matches!(b, IpNet::V6(_)) == v6)
                    .map(|b| b.to_string())
                    .ok_or_else(|| format!("{s:?}: node {node} has no such block in this cell"))?
            }
            _ => return Err(format!("{s:?}: unknown placeholder {{{key}}}")),
        };
        out.push_str(&value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `s` with its placeholders replaced, and on a dual-stack cell its IPv6 twin too when
/// it names a block, a pod or a service (`{n1.block}` and `{n1.block6}`, `{pod.x}`
/// and `{pod6.x}`, `{svc.x}` and `{svc6.x}`): every expectation of a route holds for both families.
pub fn twins(lab: &Lab, s: &str) -> Result<Vec<String>, String> {
    let mut out = vec![subst(lab, s)?];
    if lab.cell.dual() {
        let six = s
            .replace(".block}", ".block6}")
            .replace("{pod.", "{pod6.")
            .replace("{svc.", "{svc6.");
        if six != s {
            out.push(subst(lab, &six)?);
        }
    }
    Ok(out)
}

/// The nodes a node set names: `all`, `others:n1`, or `n2,n3`.
pub fn node_set(lab: &Lab, spec: &str) -> Result<Vec<String>, String> {
    let all = k8s_nodes(lab);
    let set: Vec<String> = match spec {
        "all" => all,
        s if s.starts_with("others:") => {
            let me = &s["others:".len()..];
            all.into_iter().filter(|n| n != me).collect()
        }
        s => s.split(',').map(|n| n.trim().to_string()).collect(),
    };
    for n in &set {
        if !lab.topo.nodes.contains_key(n) {
            return Err(format!("no node {n} in this cell"));
        }
    }
    Ok(set)
}

/// `10.244.1.5` and `10.244.1.5/32` alike.
pub fn host_prefix(s: &str) -> String {
    match s.parse::<IpAddr>() {
        Ok(ip) => format!("{ip}/{}", if ip.is_ipv4() { 32 } else { 128 }),
        Err(_) => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_prefixes_read() {
        assert_eq!(host_prefix("10.244.1.5"), "10.244.1.5/32");
        assert_eq!(host_prefix("fd00::5"), "fd00::5/128");
        assert_eq!(host_prefix("10.244.1.0/26"), "10.244.1.0/26");
    }
}
