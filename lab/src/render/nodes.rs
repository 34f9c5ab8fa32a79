//! The nodes a fabric is made of: a switch, a Kubernetes node with its node speaker,
//! and the files and commands of each daemon.

use ipnet::IpNet;

use super::intent::{NodeIntent, RouterIntent};
use super::*;
use crate::labels::Role;

pub(super) fn speaker_files(
    node: &str,
    about: &str,
    n: &NodeIntent,
    speaker: NodeSpeaker,
) -> Vec<(String, String, String)> {
    match speaker {
        NodeSpeaker::Speaker => vec![(
            "speaker.yaml".into(),
            configs::speaker_node(node, about, n),
            "/etc/speaker/speaker.yaml".into(),
        )],
        NodeSpeaker::Bird => vec![(
            "bird.conf".into(),
            configs::bird_node(node, about, n),
            "/etc/bird/bird.conf".into(),
        )],
        NodeSpeaker::Frr => vec![(
            "frr.conf".into(),
            configs::frr_node(node, about, n),
            "/etc/frr/frr.conf".into(),
        )],
    }
}

/// How a node speaker is started, after its block's blackhole routes exist.
pub(super) fn node_exec(speaker: NodeSpeaker, addrs: &[String], blocks: &[IpNet]) -> Vec<String> {
    let mut exec: Vec<String> = addrs.to_vec();
    for b in blocks {
        let f = if matches!(b, IpNet::V4(_)) { "" } else { "-6 " };
        exec.push(format!("ip {f}route add blackhole {b}"));
    }
    exec.extend(daemon_exec(speaker.as_str()));
    exec
}

pub(super) fn daemon_exec(bgp: &str) -> Vec<String> {
    match bgp {
        // The PID file is how the lab stops, kills and restarts it (never by name).
        "speaker" => vec![
            "sh -c \"mkdir -p /run/speaker; speaker run -c /etc/speaker/speaker.yaml >/var/log/speaker.log 2>&1 & echo $! >/run/speaker/speaker.pid\"".into(),
        ],
        "bird" => vec![
            "mkdir -p /run/bird /run/podlab/bird".into(),
            "bird -c /etc/bird/bird.conf -s /run/bird/bird.ctl -P /run/bird/bird.pid".into(),
        ],
        "frr" => vec!["/usr/lib/frr/frrinit.sh start".into()],
        "gobgp" => vec![
            "sh -c \"mkdir -p /run/gobgp; gobgpd -f /etc/gobgp/gobgpd.toml -t toml --log-plain >/var/log/gobgpd.log 2>&1 & echo $! >/run/gobgp/gobgpd.pid\"".into(),
        ],
        "exabgp" => vec!["exabgp-start".into()],
        _ => vec![],
    }
}

pub(super) fn image(speaker: NodeSpeaker) -> &'static str {
    match speaker {
        NodeSpeaker::Speaker => "podlab/speaker:latest",
        _ => "podlab/base:latest",
    }
}

pub(super) fn switch(ports: usize) -> PlanNode {
    let mut exec = vec!["ip link add br0 type bridge".to_string(), "ip link set br0 up".into()];
    for p in 1..=ports {
        exec.push(format!("ip link set eth{p} master br0"));
    }
    PlanNode {
        name: "sw".into(),
        role: Role::Switch,
        bgp: None,
        image: "podlab/base:latest".into(),
        blocks: vec![],
        pods: 0,
        files: vec![],
        exec,
        intent: None,
        router: None,
        addrs: vec![],
        about: String::new(),
    }
}

pub(super) fn node(name: &str, about: &str, cell: &Cell, n: &NodeIntent, addrs: &[String]) -> PlanNode {
    PlanNode {
        name: name.into(),
        role: Role::Node,
        bgp: Some(cell.node.as_str()),
        image: image(cell.node).into(),
        blocks: n.blocks.clone(),
        pods: 2,
        files: speaker_files(name, about, n, cell.node),
        exec: node_exec(cell.node, addrs, &n.blocks),
        intent: Some(n.clone()),
        router: None,
        addrs: vec![],
        about: about.to_string(),
    }
}

pub(super) fn router_files(
    r: Router,
    about: &str,
    ri: &RouterIntent,
    family: Family,
    tor: bool,
) -> Vec<(String, String, String)> {
    match r {
        Router::Frr => vec![(
            "frr.conf".into(),
            configs::frr_router(about, ri, family, tor),
            "/etc/frr/frr.conf".into(),
        )],
        Router::Bird => vec![(
            "bird.conf".into(),
            configs::bird_router(about, ri, family, tor),
            "/etc/bird/bird.conf".into(),
        )],
        Router::Gobgp => vec![(
            "gobgpd.toml".into(),
            configs::gobgp_rr(about, ri),
            "/etc/gobgp/gobgpd.toml".into(),
        )],
    }
}
