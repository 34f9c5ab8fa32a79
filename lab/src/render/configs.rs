//! BIRD, FRR and GoBGP configurations rendered from intents. A BIRD node speaker is
//! configured as Calico's confd renders `bird.cfg` (aggregation to the node's block,
//! the kernel's routes learned, BGP routes programmed, graceful restart); an FRR node
//! speaker redistributes the kernel's block and borrowed IPs the same way.

use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;

use super::intent::{NodeIntent, RouterIntent, CONNECT_RETRY, HOLD, KEEPALIVE, RESTART_TIME};
use super::{policy, Family};

fn v4(nets: &[IpNet]) -> Option<IpNet> {
    nets.iter().copied().find(|n| matches!(n, IpNet::V4(_)))
}

fn v6(nets: &[IpNet]) -> Option<IpNet> {
    nets.iter().copied().find(|n| matches!(n, IpNet::V6(_)))
}

/// A text of several lines made one comment: every line after the first gets the
/// comment mark (the first follows the one the caller writes).
fn comment_lines(text: &str, mark: &str) -> String {
    text.replace('\n', &format!("\n{mark} "))
}

/// A BIRD protocol name for a peer address, as Calico names them (`Mesh_10_0_0_12`).
fn proto_name(prefix: &str, addr: IpAddr) -> String {
    format!("{prefix}_{}", addr.to_string().replace(['.', ':'], "_"))
}

/// A Kubernetes node running our speaker: its configuration is the intent as it is,
/// but its BGPFilters, named communities and prefix advertisements, which are
/// written as Calico's resource documents after it (BGPFilter and BGPConfiguration
/// `default`, `projectcalico.org/v3`), as an operator copies them from a cluster.
pub fn speaker_node(name: &str, about: &str, n: &NodeIntent) -> String {
    let about = comment_lines(about, "#");
    let mut own = serde_yaml::to_value(n).expect("an intent serializes");
    let mut resources = String::new();
    if let Some(own) = own.as_mapping_mut() {
        if let Some(serde_yaml::Value::Sequence(filters)) = own.remove("filters") {
            for mut f in filters {
                let name = f.as_mapping_mut().and_then(|m| m.remove("name")).unwrap_or_default();
                resources.push_str(&calico_resource("BGPFilter", &name, f));
            }
        }
        let mut spec = serde_yaml::Mapping::new();
        for key in ["communities", "prefixAdvertisements"] {
            if let Some(v) = own.remove(key) {
                spec.insert(key.into(), v);
            }
        }
        if !spec.is_empty() {
            resources.push_str(&calico_resource(
                "BGPConfiguration",
                &"default".into(),
                serde_yaml::Value::Mapping(spec),
            ));
        }
    }
    let body = serde_yaml::to_string(&own).expect("an intent serializes");
    format!(
        "# {name}: {about}\n# Rendered by `lab render` from the node's BGP intent, in Calico's field names.\n{body}{resources}"
    )
}

/// One of Calico's resource documents, `---` before it.
fn calico_resource(kind: &str, name: &serde_yaml::Value, spec: serde_yaml::Value) -> String {
    let mut metadata = serde_yaml::Mapping::new();
    metadata.insert("name".into(), name.clone());
    let mut doc = serde_yaml::Mapping::new();
    doc.insert("apiVersion".into(), "projectcalico.org/v3".into());
    doc.insert("kind".into(), kind.into());
    doc.insert("metadata".into(), serde_yaml::Value::Mapping(metadata));
    doc.insert("spec".into(), spec);
    format!("---\n{}", serde_yaml::to_string(&doc).expect("a resource serializes"))
}

/// A Kubernetes node with BIRD configured as Calico configures it.
pub fn bird_node(name: &str, about: &str, n: &NodeIntent) -> String {
    let about = &comment_lines(about, "#");
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# {name}: {about}\n# BIRD configured as Calico's confd configures it (bird.cfg), rendered by `lab render`\n# from the node's BGP intent.\nrouter id {};\ntimeformat protocol iso long;\nlog \"/var/log/bird.log\" all;\n",
        n.router_id
    );
    s.push_str(
        "# Aggregation of routes on this node: export the block, nothing beneath it.\nfunction calico_aggr() {\n",
    );
    for b in &n.blocks {
        let _ = writeln!(
            s,
            "  if ( net = {b} ) then {{ accept; }}\n  if ( net ~ {b} ) then {{ reject; }}"
        );
    }
    s.push_str("}\n\n");
    let services = n.service_cidrs();
    let mut export_body = String::from("  calico_aggr();\n");
    if !services.is_empty() {
        export_body.push_str("  # Static routes: the service CIDRs, and the /32s of Local services here.\n");
        for c in &services {
            let _ = writeln!(export_body, "  if ( net ~ {c} ) then {{ accept; }}");
        }
    }
    export_body.push_str("  # Routes within the IP pools: borrowed pod IPs from other nodes' blocks.\n");
    for p in &n.pools {
        let _ = writeln!(export_body, "  if ( net ~ {p} ) then {{ accept; }}");
    }
    export_body.push_str("  reject;\n");
    s.push_str(&policy::bird_functions(n));
    let _ = writeln!(
        s,
        "filter calico_export_to_bgp_peers {{\n{}{export_body}}}\n",
        policy::bird_export_head(n)
    );
    s.push_str("filter calico_kernel_programming {\n");
    if !services.is_empty() {
        s.push_str("  # Don't program static routes into kernel (the service CIDRs).\n");
        for c in &services {
            let _ = writeln!(s, "  if ( net ~ {c} ) then {{ reject; }}");
        }
    }
    s.push_str("  # Interface routes are the kernel's own already.\n  if ( source = RTS_DEVICE ) then { reject; }\n  accept;\n}\n\n");
    if !services.is_empty() {
        s.push_str("# Static routes: the service CIDRs, as blackholes.\n");
        s.push_str(&crate::services::confd::bird_blackholes(
            "svc",
            services.iter().copied(),
        ));
        let _ = writeln!(
            s,
            "# The /32s and /128s of Local services with an endpoint here, written by `lab service`.\ninclude \"{}/*.conf\";\n",
            crate::services::confd::BIRD_DIR
        );
    }
    let families: Vec<&str> = [v4(&n.pools).map(|_| "ipv4"), v6(&n.pools).map(|_| "ipv6")]
        .into_iter()
        .flatten()
        .collect();
    for f in &families {
        let k = if *f == "ipv4" { "4" } else { "6" };
        let _ = writeln!(
            s,
            "protocol kernel k{k} {{\n  learn;             # Learn all alternate routes from the kernel\n  persist;           # Don't remove routes on BIRD shutdown\n  scan time 2;       # Scan kernel routing table every 2 seconds\n  {f} {{ import all; export filter calico_kernel_programming; }};\n  graceful restart;\n  merge paths on;    # ECMP\n}}\n"
        );
    }
    s.push_str("protocol device {\n  scan time 2;\n}\n\n");
    if let Some(b) = n.sessions().iter().find_map(|(peer, ..)| n.bfd(*peer)) {
        let _ = writeln!(
            s,
            "protocol bfd {{\n  interface \"*\" {{ min rx interval {} ms; min tx interval {} ms; multiplier {}; }};\n}}\n",
            b.min_rx, b.min_tx, b.multiplier
        );
    }
    for f in &families {
        let k = if *f == "ipv4" { "4" } else { "6" };
        let _ = writeln!(
            s,
            "protocol direct d{k} {{\n  {f};\n  interface -\"cali*\", \"*\";\n}}\n"
        );
    }
    let gr = if n.graceful_restart.enabled { "on" } else { "off" };
    for f in &families {
        let t = if *f == "ipv4" { "bgp_template" } else { "bgp_template6" };
        let _ = writeln!(
            s,
            "template bgp {t} {{\n  description \"Connection to BGP peer\";\n  {f} {{\n    import all;\n    export filter calico_export_to_bgp_peers;\n  }};\n  graceful restart {gr};\n  graceful restart time {restart};\n  connect delay time 2;\n  connect retry time 5;\n  error wait time 5,30;\n  hold time {HOLD};\n  keepalive time {KEEPALIVE};\n}}\n",
            restart = n.graceful_restart.restart_time
        );
    }
    for (peer, asn, passive) in n.sessions() {
        let mesh = asn == n.as_number && n.node_to_node_mesh.peers.contains(&peer);
        let name = proto_name(if mesh { "Mesh" } else { "Node" }, peer);
        let template = if peer.is_ipv4() {
            "bgp_template"
        } else {
            "bgp_template6"
        };
        let (mut channel, defs) = policy::bird_peer(n, peer, &name, &export_body);
        if let Some(max) = n.max_prefixes(peer) {
            channel.insert(0, format!("import limit {max} action disable"));
        }
        s.push_str(&defs);
        let channel = match channel.is_empty() {
            true => String::new(),
            false => format!(
                "\n  {} {{ {} }};",
                if peer.is_ipv4() { "ipv4" } else { "ipv6" },
                channel.iter().map(|l| format!("{l};")).collect::<Vec<_>>().join(" ")
            ),
        };
        // The template's timers, unless the intent changed them for this session.
        let timers = match n.timers(peer) {
            (HOLD, KEEPALIVE) => String::new(),
            (hold, keepalive) => format!("\n  hold time {hold};\n  keepalive time {keepalive};"),
        };
        let password = match n.password(peer) {
            Some(p) => format!("\n  password \"{p}\";"),
            None => String::new(),
        };
        let _ = writeln!(
            s,
            "protocol bgp {name} from {template} {{\n  local as {};\n  neighbor {peer} as {asn};\n  source address {};{timers}{password}{}{}{channel}\n}}\n",
            n.as_number,
            n.address_of(peer),
            if n.bfd(peer).is_some() { "\n  bfd on;" } else { "" },
            if passive {
                "\n  passive on; # Mesh is unidirectional, peer will connect to us."
            } else {
                ""
            }
        );
    }
    s
}

const FRR_HEAD: &str = "frr version 8.4\nfrr defaults datacenter\n";

fn frr_head(name: &str, about: &str) -> String {
    let about = &comment_lines(about, "!");
    format!(
        "! {name}: {about}\n! Rendered by `lab render`.\n{FRR_HEAD}hostname {name}\nlog file /var/log/frr/frr.log informational\nservice integrated-vtysh-config\n!\n"
    )
}

/// One neighbor's lines under `router bgp`.
fn frr_neighbor(s: &mut String, addr: IpAddr, asn: &str, update_source: Option<IpAddr>, timers: (u16, u16)) {
    let (hold, keepalive) = timers;
    let _ = writeln!(s, " neighbor {addr} remote-as {asn}");
    let _ = writeln!(s, " neighbor {addr} timers {keepalive} {hold}");
    let _ = writeln!(s, " neighbor {addr} timers connect {CONNECT_RETRY}");
    let _ = writeln!(s, " neighbor {addr} advertisement-interval 0");
    if let Some(src) = update_source {
        let _ = writeln!(s, " neighbor {addr} update-source {src}");
    }
}

/// Activates each neighbor in the family of its address only.
fn frr_families(s: &mut String, peers: &[IpAddr], v4_extra: &[String], v6_extra: &[String], family: Family) {
    s.push_str(" !\n address-family ipv4 unicast\n");
    for l in v4_extra.iter().filter(|_| family.v4()) {
        let _ = writeln!(s, "  {l}");
    }
    for p in peers {
        let _ = writeln!(s, "  {}neighbor {p} activate", if p.is_ipv4() { "" } else { "no " });
    }
    s.push_str(" exit-address-family\n");
    if family.v6() {
        s.push_str(" !\n address-family ipv6 unicast\n");
        for l in v6_extra {
            let _ = writeln!(s, "  {l}");
        }
        for p in peers.iter().filter(|p| p.is_ipv6()) {
            let _ = writeln!(s, "  neighbor {p} activate");
        }
        s.push_str(" exit-address-family\n");
    }
    s.push_str("!\n");
}

/// A Kubernetes node with FRR: the kernel's block and borrowed IPs redistributed.
pub fn frr_node(name: &str, about: &str, n: &NodeIntent) -> String {
    let mut s = frr_head(name, about);
    // As on the fabric's FRR routers (see `frr_router`): zebra 8.4's kernel nexthop
    // objects lose its IPv6 routes after a link flap.
    s.push_str("no zebra nexthop kernel enable\n!\n");
    s.push_str("! The node's block, not its pods' routes beneath it; borrowed IPs from the pools.\n");
    let (b4, p4) = (v4(&n.blocks), v4(&n.pools));
    let (b6, p6) = (v6(&n.blocks), v6(&n.pools));
    if let (Some(b), Some(p)) = (b4, p4) {
        let _ = writeln!(
            s,
            "ip prefix-list POOL seq 5 permit {b}\nip prefix-list POOL seq 6 deny {b} le 32\nip prefix-list POOL seq 10 permit {p} le 32\n!\nroute-map POD_ROUTES permit 10\n match ip address prefix-list POOL\nexit\n!"
        );
    }
    if let (Some(b), Some(p)) = (b6, p6) {
        let _ = writeln!(
            s,
            "ipv6 prefix-list POOL6 seq 5 permit {b}\nipv6 prefix-list POOL6 seq 6 deny {b} le 128\nipv6 prefix-list POOL6 seq 10 permit {p} le 128\n!\nroute-map POD_ROUTES6 permit 10\n match ipv6 address prefix-list POOL6\nexit\n!"
        );
    }
    let services = n.service_cidrs();
    if !services.is_empty() {
        s.push_str("! Service IPs: the CIDRs, and the Local /32s `lab service` adds within them.\n");
        for (i, c) in services.iter().enumerate() {
            let list = if matches!(c, IpNet::V4(_)) {
                "ip prefix-list SERVICES"
            } else {
                "ipv6 prefix-list SERVICES6"
            };
            let _ = writeln!(s, "{list} seq {} permit {c} le {}", 5 * (i + 1), c.max_prefix_len());
        }
        let rm = crate::services::confd::FRR_ROUTE_MAP;
        let _ = writeln!(
            s,
            "!\nroute-map {rm} permit 10\n match ip address prefix-list SERVICES\nexit\n!\nroute-map {rm} permit 20\n match ipv6 address prefix-list SERVICES6\nexit\n!"
        );
    }
    let sessions = n.sessions();
    let peers: Vec<IpAddr> = sessions.iter().map(|(p, ..)| *p).collect();
    let (maps, map_lines) = policy::frr_policy(n, &peers);
    if !maps.is_empty() {
        s.push_str("! BGPFilters and prefixAdvertisements, per session.\n");
        s.push_str(&maps);
    }
    let _ =
        writeln!(
        s,
        "router bgp {}\n bgp router-id {}\n no bgp ebgp-requires-policy\n{} {}\n bgp bestpath as-path multipath-relax",
        n.as_number,
        n.router_id,
        if services.is_empty() { "" } else { " no bgp network import-check\n" },
        if n.graceful_restart.enabled {
            format!("bgp graceful-restart\n bgp graceful-restart restart-time {}", n.graceful_restart.restart_time)
        } else {
            "no bgp graceful-restart".to_string()
        }
    );
    for (peer, asn, _) in &sessions {
        frr_neighbor(
            &mut s,
            *peer,
            &asn.to_string(),
            Some(n.address_of(*peer)),
            n.timers(*peer),
        );
        // bfdd's defaults are the lab's 300 ms x 3.
        if n.bfd(*peer).is_some() {
            let _ = writeln!(s, " neighbor {peer} bfd");
        }
        if let Some(p) = n.password(*peer) {
            let _ = writeln!(s, " neighbor {peer} password {p}");
        }
    }
    let limits = |v6: bool| -> Vec<String> {
        n.peers
            .iter()
            .filter(|p| p.peer_ip.is_ipv6() == v6)
            .filter_map(|p| Some(format!("neighbor {} maximum-prefix {}", p.peer_ip, p.max_prefixes?)))
            .chain(
                map_lines
                    .iter()
                    .filter(|(p, _)| p.is_ipv6() == v6)
                    .map(|(_, l)| l.clone()),
            )
            .collect()
    };
    let with =
        |first: &str, v6: bool| -> Vec<String> { std::iter::once(first.to_string()).chain(limits(v6)).collect() };
    let networks = |v4: bool| {
        services
            .iter()
            .filter(move |c| matches!(c, IpNet::V4(_)) == v4)
            .map(|c| format!("network {c}"))
    };
    let family = match (b4.is_some(), b6.is_some()) {
        (true, true) => Family::Dual,
        (false, true) => Family::V6,
        _ => Family::V4,
    };
    frr_families(
        &mut s,
        &peers,
        &with("redistribute kernel route-map POD_ROUTES", false)
            .into_iter()
            .chain(networks(true))
            .collect::<Vec<_>>(),
        &with("redistribute kernel route-map POD_ROUTES6", true)
            .into_iter()
            .chain(networks(false))
            .collect::<Vec<_>>(),
        family,
    );
    s
}

/// A fabric router on FRR: eBGP to its neighbors, or a route reflector for clients; a
/// graceful restart speaker as the BIRD and GoBGP ones are (FRR's default is helper
/// only, whose capability lists no family: its peers would flush its routes).
pub fn frr_router(about: &str, r: &RouterIntent, family: Family, forwards: bool) -> String {
    let mut s = frr_head(&r.name, about);
    // zebra 8.4 installs routes through kernel nexthop objects, which the kernel
    // deletes with a link that goes down; after the link's return zebra believes
    // its IPv6 routes installed while the kernel has none (seen: RB-06 on dual-stack
    // ToRs). Plain routes come back.
    s.push_str("no zebra nexthop kernel enable\n!\n");
    if !forwards {
        // A reflector on the nodes' segment only reflects: they reach each other
        // directly. (Installing, FRR 8.4 keeps the routes of a killed bgpd in the
        // kernel for minutes after the next one started: seen in GR-01.)
        s.push_str("bgp no-rib\n!\n");
    }
    let _ = writeln!(
        s,
        "router bgp {}\n bgp router-id {}\n no bgp ebgp-requires-policy\n no bgp network import-check\n bgp bestpath as-path multipath-relax\n bgp graceful-restart\n bgp graceful-restart restart-time {RESTART_TIME}",
        r.as_number, r.router_id
    );
    if let Some(c) = r.cluster_id {
        let _ = writeln!(s, " bgp cluster-id {c}");
    }
    if forwards {
        // A ToR: a node's link that flaps under its session must not end the session
        // (FRR resets eBGP sessions on a link that goes down, by default).
        s.push_str(" no bgp fast-external-failover\n");
    }
    for n in &r.neighbors {
        frr_neighbor(&mut s, n.address, &n.as_number.to_string(), None, (HOLD, KEEPALIVE));
    }
    let peers: Vec<IpAddr> = r.neighbors.iter().map(|n| n.address).collect();
    let clients = |v6: bool| -> Vec<String> {
        let of_family = || r.neighbors.iter().filter(move |n| n.address.is_ipv6() == v6);
        of_family()
            .filter(|n| n.rr_client)
            .map(|n| format!("neighbor {} route-reflector-client", n.address))
            .chain(
                of_family()
                    .filter(|n| n.next_hop_self)
                    .map(|n| format!("neighbor {} next-hop-self force", n.address)),
            )
            .collect()
    };
    frr_families(&mut s, &peers, &clients(false), &clients(true), family);
    s
}

/// A fabric router on BIRD: programs its kernel (a ToR), or only reflects (an RR).
pub fn bird_router(about: &str, r: &RouterIntent, family: Family, program_kernel: bool) -> String {
    let about = &comment_lines(about, "#");
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# {}: {about}\n# Rendered by `lab render`.\nrouter id {};\ntimeformat protocol iso long;\nlog \"/var/log/bird.log\" all;\n\nprotocol device {{ scan time 2; }}\n",
        r.name, r.router_id
    );
    let families: Vec<&str> = [(family.v4(), "ipv4"), (family.v6(), "ipv6")]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, f)| *f)
        .collect();
    // Next hops resolve through the routers' connected routes.
    for f in &families {
        let k = if *f == "ipv4" { "4" } else { "6" };
        let _ = writeln!(s, "protocol direct d{k} {{ {f}; interface \"eth*\"; }}");
        if program_kernel {
            let _ = writeln!(
                s,
                "protocol kernel k{k} {{ {f} {{ import none; export where source = RTS_BGP; }}; merge paths on; }}"
            );
        }
    }
    s.push('\n');
    for n in &r.neighbors {
        let f = if n.address.is_ipv4() { "ipv4" } else { "ipv6" };
        let mut body = format!(
            "  local as {};\n  neighbor {} as {};\n  hold time {HOLD};\n  keepalive time {KEEPALIVE};\n  connect delay time 1;\n  connect retry time {CONNECT_RETRY};\n  # After an error (a hold timer expired), try again soon: BIRD's default waits 60 s.\n  error wait time 1, 10;\n  # A restarting speaker too (run with -R): after a restart it sends its peers\n  # End-of-RIB only once every peer has sent it theirs.\n  graceful restart on;\n  graceful restart time {RESTART_TIME};\n",
            r.as_number, n.address, n.as_number
        );
        if n.as_number != r.as_number {
            // eBGP on a point-to-point link, as multihop: a link that flaps under the
            // session must not end it (a direct session waits "error wait time").
            body.push_str("  multihop 2;\n");
        }
        if let (true, Some(c)) = (n.rr_client, r.cluster_id) {
            let _ = write!(body, "  rr client;\n  rr cluster id {c};\n");
        }
        let nhs = if n.next_hop_self { " next hop self;" } else { "" };
        let _ = writeln!(
            s,
            "protocol bgp {} {{\n{body}  {f} {{ import all; export where source = RTS_BGP;{nhs} }};\n}}\n",
            proto_name(&n.name, n.address)
        );
    }
    s
}

/// A route reflector on GoBGP (control plane only: it programs no kernel), a graceful
/// restart helper for its clients as the other reflectors are.
pub fn gobgp_rr(about: &str, r: &RouterIntent) -> String {
    let about = &comment_lines(about, "#");
    let mut s = format!(
        "# {}: {about}\n# Rendered by `lab render`.\n[global.config]\n  as = {}\n  router-id = \"{}\"\n  port = 179\n",
        r.name, r.as_number, r.router_id
    );
    let locals: Vec<String> = r.addresses.iter().map(|a| format!("\"{a}\"")).collect();
    if !locals.is_empty() {
        let _ = writeln!(s, "  local-address-list = [{}]", locals.join(", "));
    }
    for n in &r.neighbors {
        let family = if n.address.is_ipv4() {
            "ipv4-unicast"
        } else {
            "ipv6-unicast"
        };
        let _ = writeln!(
            s,
            "\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{}\"\n    peer-as = {}\n  [neighbors.timers.config]\n    hold-time = {HOLD}\n    keepalive-interval = {KEEPALIVE}\n    connect-retry = {CONNECT_RETRY}\n  [neighbors.graceful-restart.config]\n    enabled = true\n    restart-time = {RESTART_TIME}\n  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"{family}\"\n    [neighbors.afi-safis.mp-graceful-restart.config]\n      enabled = true",
            n.address, n.as_number
        );
        if let (true, Some(c)) = (n.rr_client, r.cluster_id) {
            let _ = writeln!(
                s,
                "  [neighbors.route-reflector.config]\n    route-reflector-client = true\n    route-reflector-cluster-id = \"{c}\""
            );
        }
    }
    s
}

/// A scripted peer on ExaBGP: one neighbor block per (our address, our AS) towards
/// the node's address of the same family, unicast of that family, no graceful restart
/// (what it announced leaves with it). It announces nothing of itself; cases make it
/// announce through `exabgp-cli`.
pub fn exabgp_peer(about: &str, name: &str, node: &[IpAddr], node_as: u32, locals: &[(IpAddr, u32)]) -> String {
    let about = &comment_lines(about, "#");
    let mut s = format!("# {name}: {about}\n# Rendered by `lab render`.\n");
    for (addr, asn) in locals {
        let Some(peer) = node.iter().find(|a| a.is_ipv4() == addr.is_ipv4()) else {
            continue;
        };
        // ExaBGP needs a 32-bit router ID on an IPv6 session too: the IPv4 address of
        // the same host number (fd00::100 is host 100, as the lab writes it).
        let router_id = match addr {
            IpAddr::V4(a) => *a,
            IpAddr::V6(a) => std::net::Ipv4Addr::new(10, 0, 0, format!("{:x}", a.segments()[7]).parse().unwrap_or(1)),
        };
        let family = if addr.is_ipv4() { "ipv4" } else { "ipv6" };
        let _ = writeln!(
            s,
            "\nneighbor {peer} {{\n    router-id {router_id};\n    local-address {addr};\n    local-as {asn};\n    peer-as {node_as};\n    hold-time {HOLD};\n    family {{ {family} unicast; }}\n    capability {{ route-refresh; }}\n}}"
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::intent::{FilterIntent, NamedCommunity, PrefixAdvertisement, RuleIntent};

    #[test]
    fn a_speakers_filters_and_communities_are_written_as_calicos_resources() {
        let mut n = NodeIntent::new(
            64512,
            "10.0.0.11".parse().unwrap(),
            vec!["10.244.0.0/16".parse().unwrap()],
        );
        n.filters.push(FilterIntent {
            name: "pol01".into(),
            import_v4: vec![RuleIntent {
                action: "Reject",
                match_operator: "Equal",
                cidr: "10.244.222.0/26".parse().unwrap(),
            }],
            import_v6: Vec::new(),
            export_v4: Vec::new(),
            export_v6: Vec::new(),
        });
        n.communities.push(NamedCommunity {
            name: "rack".into(),
            value: "65000:42".into(),
        });
        n.prefix_advertisements.push(PrefixAdvertisement {
            cidr: "10.244.0.0/16".parse().unwrap(),
            communities: vec!["rack".into()],
        });
        let text = speaker_node("n1", "a node", &n);
        let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&text)
            .map(|d| <serde_yaml::Value as serde::Deserialize>::deserialize(d).unwrap())
            .collect();
        assert_eq!(docs.len(), 3, "{text}");
        assert!(
            docs[0].get("filters").is_none() && docs[0].get("communities").is_none(),
            "{text}"
        );
        assert_eq!(docs[1]["kind"], "BGPFilter");
        assert_eq!(docs[1]["metadata"]["name"], "pol01");
        assert_eq!(docs[1]["spec"]["importV4"][0]["cidr"], "10.244.222.0/26");
        assert_eq!(docs[2]["kind"], "BGPConfiguration");
        assert_eq!(docs[2]["metadata"]["name"], "default");
        assert_eq!(docs[2]["spec"]["prefixAdvertisements"][0]["communities"][0], "rack");
        // Without them, one document, as before.
        let plain = speaker_node(
            "n1",
            "a node",
            &NodeIntent::new(64512, "10.0.0.11".parse().unwrap(), vec![]),
        );
        assert_eq!(serde_yaml::Deserializer::from_str(&plain).count(), 1);
    }
}
