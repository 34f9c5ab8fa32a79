//! The topology as a Mermaid graph: nodes with what runs there, links with endpoints.

use crate::topology::Topology;

pub fn mermaid(t: &Topology) -> String {
    let mut out = format!("---\ntitle: {}\n---\ngraph TD\n", t.name);
    for n in t.nodes.values() {
        let what: Vec<&str> = [n.role(), n.bgp()].into_iter().flatten().collect();
        let label = if what.is_empty() {
            n.name.clone()
        } else {
            format!("{}<br/>{}", n.name, what.join(" / "))
        };
        out += &format!("  {}[\"{}\"]\n", id(&n.name), label);
    }
    for l in &t.links {
        out += &format!(
            "  {} ---|\"{} - {}\"| {}\n",
            id(&l.a.node),
            l.a.iface,
            l.b.iface,
            id(&l.b.node)
        );
    }
    out
}

/// Mermaid node ids cannot hold '-' or '.'.
fn id(name: &str) -> String {
    name.replace(['-', '.'], "_")
}
