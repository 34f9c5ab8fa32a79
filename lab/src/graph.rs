//! The topology as a Mermaid graph: nodes with what runs there, links with endpoints.

use crate::labels::Role;
use crate::topology::Topology;

pub fn mermaid(t: &Topology) -> String {
    let mut out = format!("---\ntitle: {}\n---\ngraph TD\n", t.name);
    for n in t.nodes.values() {
        let what: Vec<&str> = [n.role.map(Role::as_str), n.bgp()].into_iter().flatten().collect();
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

/// The topology as Graphviz dot (`lab graph --format dot | dot -Tsvg`): nodes labelled
/// with what runs there, links with their interfaces.
pub fn dot(t: &Topology) -> String {
    let q = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let mut out = format!("graph {} {{\n  node [shape=box];\n", q(&t.name));
    for n in t.nodes.values() {
        let what: Vec<&str> = [n.role.map(Role::as_str), n.bgp()].into_iter().flatten().collect();
        let label = if what.is_empty() {
            n.name.clone()
        } else {
            format!("{}\\n{}", n.name, what.join(" / "))
        };
        // The label is escaped but for the line break it holds on purpose.
        out += &format!("  {} [label={}];\n", q(&n.name), q(&label).replace("\\\\n", "\\n"));
    }
    for l in &t.links {
        out += &format!(
            "  {} -- {} [taillabel={}, headlabel={}];\n",
            q(&l.a.node),
            q(&l.b.node),
            q(&l.a.iface),
            q(&l.b.iface)
        );
    }
    out + "}\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_has_every_node_and_link() {
        let t = Topology::parse(
            "name: g\ntopology:\n  nodes:\n    a: {kind: linux, image: i, labels: {lab.role: tor}}\n    b: {kind: linux, image: i}\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n",
            std::path::Path::new("/tmp/g.clab.yml"),
        )
        .unwrap();
        let d = dot(&t);
        assert!(d.starts_with("graph \"g\" {"), "{d}");
        assert!(d.contains("\"a\" [label=\"a\\ntor\"];"), "{d}");
        assert!(
            d.contains("\"a\" -- \"b\" [taillabel=\"eth1\", headlabel=\"eth1\"];"),
            "{d}"
        );
        assert!(d.trim_end().ends_with('}'));
    }
}
