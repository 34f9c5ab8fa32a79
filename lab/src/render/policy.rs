//! A node's route policy (Calico's BGPFilters, `communities` and
//! `prefixAdvertisements`) rendered for BIRD as Calico's confd renders it (a function
//! per filter and direction that accepts or rejects on its first matching rule, and
//! `apply_communities()` at the head of the export filter), and for FRR as the same
//! decisions in prefix-lists and route-maps. The speaker reads the intent as it is.

use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;

use super::intent::{FilterIntent, NodeIntent, RuleIntent};

/// A name BIRD and FRR both take: letters, digits and `_`.
fn ident(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn family_suffix(v4: bool) -> &'static str {
    if v4 {
        "V4"
    } else {
        "V6"
    }
}

/// Confd's name of a filter's function: `bgp_<name>_importFilterV4`.
fn bird_function(f: &FilterIntent, import: bool, v4: bool) -> String {
    let dir = if import { "import" } else { "export" };
    format!("bgp_{}_{dir}Filter{}", ident(&f.name), family_suffix(v4))
}

/// BIRD's test of a rule's operator.
fn bird_test(r: &RuleIntent) -> String {
    let op = match r.match_operator {
        "Equal" => "=",
        "NotEqual" => "!=",
        "In" => "~",
        _ => "!~",
    };
    format!("net {op} {}", r.cidr)
}

/// A community value as BIRD writes it: `(65000,100)` or `(65000,1,2)`.
fn bird_community(value: &str) -> String {
    format!("({})", value.replace(':', ","))
}

/// The values of `prefixAdvertisements`' communities, names resolved: (standard, large).
fn values(n: &NodeIntent, communities: &[String]) -> (Vec<String>, Vec<String>) {
    let resolved = communities.iter().map(|c| {
        n.communities
            .iter()
            .find(|named| named.name == *c)
            .map_or(c.clone(), |named| named.value.clone())
    });
    resolved.partition(|v| v.matches(':').count() == 1)
}

/// BIRD's functions of the node's filters and, with `prefixAdvertisements`,
/// `apply_communities()`; empty when it has neither.
pub fn bird_functions(n: &NodeIntent) -> String {
    let mut s = String::new();
    for f in &n.filters {
        for (import, v4) in [(true, true), (false, true), (true, false), (false, false)] {
            let rules = f.rules(import, v4);
            if rules.is_empty() {
                continue;
            }
            let _ = writeln!(s, "function {}() {{", bird_function(f, import, v4));
            for r in rules {
                let verb = if r.action == "Accept" { "accept" } else { "reject" };
                let _ = writeln!(s, "  if (({})) then {{ {verb}; }}", bird_test(r));
            }
            s.push_str("}\n\n");
        }
    }
    if !n.prefix_advertisements.is_empty() {
        s.push_str("# prefixAdvertisements: communities on what is advertised within a CIDR.\nfunction apply_communities() {\n");
        for a in &n.prefix_advertisements {
            let (standard, large) = values(n, &a.communities);
            let _ = write!(s, "  if ( net ~ {} ) then {{", a.cidr);
            for c in standard {
                let _ = write!(s, " bgp_community.add({});", bird_community(&c));
            }
            for c in large {
                let _ = write!(s, " bgp_large_community.add({});", bird_community(&c));
            }
            s.push_str(" }\n");
        }
        s.push_str("}\n\n");
    }
    s
}

/// The first line of every export filter: `apply_communities();` where there are
/// `prefixAdvertisements`.
pub fn bird_export_head(n: &NodeIntent) -> &'static str {
    if n.prefix_advertisements.is_empty() {
        ""
    } else {
        "  apply_communities();\n"
    }
}

/// The calls of `peer`'s filter functions of one direction, in order.
fn bird_calls(n: &NodeIntent, peer: IpAddr, import: bool) -> String {
    n.filters_of(peer)
        .into_iter()
        .filter(|f| !f.rules(import, peer.is_ipv4()).is_empty())
        .map(|f| format!("  {}();\n", bird_function(f, import, peer.is_ipv4())))
        .collect()
}

/// The channel settings `peer`'s filters need (`import filter {...}`, `export
/// filter X`), and the export filters to define for it: `export_body` is the
/// node's export filter's body.
pub fn bird_peer(n: &NodeIntent, peer: IpAddr, proto: &str, export_body: &str) -> (Vec<String>, String) {
    let mut channel = Vec::new();
    let mut defs = String::new();
    let import = bird_calls(n, peer, true);
    if !import.is_empty() {
        channel.push(format!("import filter {{\n{import}  accept;\n  }}"));
    }
    let export = bird_calls(n, peer, false);
    if !export.is_empty() {
        let name = format!("export_{proto}");
        let _ = writeln!(
            defs,
            "filter {name} {{\n{export}{}{export_body}}}\n",
            bird_export_head(n)
        );
        channel.push(format!("export filter {name}"));
    }
    (channel, defs)
}

/// The operators as prefix-list lines (`permit`/`deny`, after `seq N`): a match of
/// the list is a match of the rule.
fn frr_list_lines(r: &RuleIntent) -> Vec<String> {
    let cidr = r.cidr;
    let all = match cidr {
        IpNet::V4(_) => "0.0.0.0/0 le 32",
        IpNet::V6(_) => "::/0 le 128",
    };
    let max = cidr.max_prefix_len();
    match r.match_operator {
        "Equal" => vec![format!("permit {cidr}")],
        "In" => vec![format!("permit {cidr} le {max}")],
        "NotEqual" => vec![format!("deny {cidr}"), format!("permit {all}")],
        _ => vec![format!("deny {cidr} le {max}"), format!("permit {all}")],
    }
}

fn frr_list(s: &mut String, name: &str, v4: bool, lines: &[String]) {
    let kind = if v4 { "ip" } else { "ipv6" };
    for (i, l) in lines.iter().enumerate() {
        let _ = writeln!(s, "{kind} prefix-list {name} seq {} {l}", 5 * (i + 1));
    }
}

fn frr_match(name: &str, v4: bool) -> String {
    format!(" match {} address prefix-list {name}", if v4 { "ip" } else { "ipv6" })
}

/// A route-map's name for one session and direction.
pub fn frr_map(peer: IpAddr, import: bool) -> String {
    format!("POL_{}_{}", ident(&peer.to_string()), if import { "IN" } else { "OUT" })
}

/// FRR's prefix-lists and route-maps of the node's policy, for every session in
/// `peers`, and the lines to put under each session's address family
/// (`neighbor X route-map ... in|out`).
pub fn frr_policy(n: &NodeIntent, peers: &[IpAddr]) -> (String, Vec<(IpAddr, String)>) {
    let mut s = String::new();
    let mut lines = Vec::new();
    let ads = !n.prefix_advertisements.is_empty();
    for (i, a) in n.prefix_advertisements.iter().enumerate() {
        let v4 = a.cidr.addr().is_ipv4();
        frr_list(
            &mut s,
            &format!("POL_ADV_{i}"),
            v4,
            &[format!("permit {} le {}", a.cidr, a.cidr.max_prefix_len())],
        );
    }
    for peer in peers {
        let v4 = peer.is_ipv4();
        let filters = n.filters_of(*peer);
        for import in [true, false] {
            let rules: Vec<(&FilterIntent, usize, &RuleIntent)> = filters
                .iter()
                .flat_map(|f| f.rules(import, v4).iter().enumerate().map(move |(i, r)| (*f, i, r)))
                .collect();
            if rules.is_empty() && (import || !ads) {
                continue;
            }
            let map = frr_map(*peer, import);
            let mut seq = 10;
            for (f, i, r) in rules {
                let list = format!("{map}_{}_{i}", ident(&f.name));
                frr_list(&mut s, &list, v4, &frr_list_lines(r));
                let verb = if r.action == "Accept" { "permit" } else { "deny" };
                let _ = writeln!(s, "route-map {map} {verb} {seq}\n{}\nexit", frr_match(&list, v4));
                seq += 10;
            }
            if !import {
                for (i, a) in n.prefix_advertisements.iter().enumerate() {
                    if a.cidr.addr().is_ipv4() != v4 {
                        continue;
                    }
                    let (standard, large) = values(n, &a.communities);
                    let _ = writeln!(
                        s,
                        "route-map {map} permit {seq}\n{}",
                        frr_match(&format!("POL_ADV_{i}"), v4)
                    );
                    if !standard.is_empty() {
                        let _ = writeln!(s, " set community {} additive", standard.join(" "));
                    }
                    if !large.is_empty() {
                        let _ = writeln!(s, " set large-community {} additive", large.join(" "));
                    }
                    // Every entry that holds the prefix adds its communities.
                    s.push_str(" on-match next\nexit\n");
                    seq += 10;
                }
            }
            // No rule matched: what the node does without filters.
            let _ = writeln!(s, "route-map {map} permit 65000\nexit\n!");
            let dir = if import { "in" } else { "out" };
            lines.push((*peer, format!("neighbor {peer} route-map {map} {dir}")));
        }
    }
    (s, lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::intent::{NamedCommunity, PrefixAdvertisement};

    fn node() -> NodeIntent {
        let mut n = NodeIntent::new(
            64512,
            "10.0.0.11".parse().unwrap(),
            vec!["10.244.0.0/16".parse().unwrap()],
        );
        n.addresses = vec!["10.0.0.11".parse().unwrap()];
        n.blocks = vec!["10.244.1.0/26".parse().unwrap()];
        n.peer("10.0.0.100".parse().unwrap(), 65000);
        n.peer("10.0.0.101".parse().unwrap(), 65001);
        n.filters.push(FilterIntent {
            name: "pol-x".into(),
            import_v4: vec![RuleIntent {
                action: "Reject",
                match_operator: "NotIn",
                cidr: "10.244.0.0/16".parse().unwrap(),
            }],
            import_v6: Vec::new(),
            export_v4: vec![RuleIntent {
                action: "Reject",
                match_operator: "Equal",
                cidr: "10.244.1.0/26".parse().unwrap(),
            }],
            export_v6: Vec::new(),
        });
        n.peers[0].filters.push("pol-x".into());
        n.communities.push(NamedCommunity {
            name: "a".into(),
            value: "65000:100".into(),
        });
        n.prefix_advertisements.push(PrefixAdvertisement {
            cidr: "10.244.1.0/26".parse().unwrap(),
            communities: vec!["a".into(), "65000:1:2".into()],
        });
        n
    }

    #[test]
    fn bird_gets_confds_functions_and_a_filter_per_filtered_peer() {
        let n = node();
        let f = bird_functions(&n);
        assert!(
            f.contains("function bgp_pol_x_importFilterV4() {\n  if ((net !~ 10.244.0.0/16)) then { reject; }\n}"),
            "{f}"
        );
        assert!(f.contains("if ( net ~ 10.244.1.0/26 ) then { bgp_community.add((65000,100)); bgp_large_community.add((65000,1,2)); }"), "{f}");
        let (channel, defs) = bird_peer(&n, "10.0.0.100".parse().unwrap(), "Node_10_0_0_100", "  reject;\n");
        assert_eq!(
            channel[0],
            "import filter {\n  bgp_pol_x_importFilterV4();\n  accept;\n  }"
        );
        assert_eq!(channel[1], "export filter export_Node_10_0_0_100");
        assert_eq!(
            defs,
            "filter export_Node_10_0_0_100 {\n  bgp_pol_x_exportFilterV4();\n  apply_communities();\n  reject;\n}\n\n"
        );
        let (channel, defs) = bird_peer(&n, "10.0.0.101".parse().unwrap(), "Node_10_0_0_101", "");
        assert!(channel.is_empty() && defs.is_empty());
    }

    #[test]
    fn frr_gets_route_maps_that_decide_as_the_rules_do() {
        let n = node();
        let peers: Vec<IpAddr> = vec!["10.0.0.100".parse().unwrap(), "10.0.0.101".parse().unwrap()];
        let (s, lines) = frr_policy(&n, &peers);
        assert!(s.contains("ip prefix-list POL_10_0_0_100_IN_pol_x_0 seq 5 deny 10.244.0.0/16 le 32\nip prefix-list POL_10_0_0_100_IN_pol_x_0 seq 10 permit 0.0.0.0/0 le 32"), "{s}");
        assert!(
            s.contains(
                "route-map POL_10_0_0_100_OUT deny 10\n match ip address prefix-list POL_10_0_0_100_OUT_pol_x_0"
            ),
            "{s}"
        );
        assert!(s.contains("route-map POL_10_0_0_101_OUT permit 10\n match ip address prefix-list POL_ADV_0\n set community 65000:100 additive\n set large-community 65000:1:2 additive\n on-match next"), "{s}");
        let lines: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(
            lines,
            [
                "neighbor 10.0.0.100 route-map POL_10_0_0_100_IN in",
                "neighbor 10.0.0.100 route-map POL_10_0_0_100_OUT out",
                "neighbor 10.0.0.101 route-map POL_10_0_0_101_OUT out",
            ]
        );
    }
}
