//! No two modules of the speaker import each other, directly or round a circle:
//! when one seems to need it, a type is in the wrong place (see STYLE). Reads the
//! sources for `crate::x` and `super::x` paths and looks for a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module name -> the modules its code names, for `src/*.rs` and `src/packet/*.rs`.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = BTreeMap::new();
    for (dir, prefix) in [(src.clone(), ""), (src.join("packet"), "packet::")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if path.extension().is_none_or(|e| e != "rs") || ["lib", "main", "mod"].contains(&stem) {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // Tests may name anything.
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let mut uses = BTreeSet::new();
            for (marker, base) in [("crate::", ""), ("super::", prefix)] {
                for part in code.split(marker).skip(1) {
                    let name: String = part.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    let name = match (base, name.as_str()) {
                        ("", "packet") if prefix.is_empty() => "packet".to_string(),
                        // `crate::packet::x` from inside packet names a sibling.
                        ("", "packet") => {
                            let rest = &part["packet::".len().min(part.len())..];
                            let sub: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                            if sub.is_empty() || sub.chars().next().is_some_and(char::is_uppercase) {
                                continue;
                            }
                            format!("packet::{sub}")
                        }
                        (_, n) if n.is_empty() || n.chars().next().is_some_and(char::is_uppercase) => continue,
                        (b, n) => format!("{b}{n}"),
                    };
                    let me = format!("{prefix}{stem}");
                    if name != me {
                        uses.insert(name);
                    }
                }
            }
            graph.insert(format!("{prefix}{stem}"), uses);
        }
    }
    graph
}

fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|n| n == node) {
            let mut c = path[i..].to_vec();
            c.push(node.to_string());
            return Some(c);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            // `packet` from outside means the package as a whole.
            if graph.contains_key(next) {
                if let Some(c) = visit(next, graph, path, done) {
                    return Some(c);
                }
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_imports_another_round_a_circle() {
    let g = graph();
    assert!(g.contains_key("node") && g.contains_key("packet::codes"), "{g:?}");
    assert!(
        g["api"].contains("messages"),
        "the reader misses imports: {:?}",
        g["api"]
    );
    if let Some(c) = cycle(&g) {
        panic!("modules import each other: {}", c.join(" -> "));
    }
}

#[test]
fn a_circle_is_found() {
    let g: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_string(), BTreeSet::from(["b".to_string()])),
        ("b".to_string(), BTreeSet::from(["a".to_string()])),
    ]
    .into();
    assert_eq!(cycle(&g), Some(vec!["a".into(), "b".into(), "a".into()]));
}
