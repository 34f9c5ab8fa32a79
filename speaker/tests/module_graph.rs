//! No two modules import each other, directly or round a circle: when one seems to
//! need it, a type is in the wrong place (see STYLE). Reads the sources of the speaker
//! and of the lab (read, not linked) for `crate::` and `super::` paths, grouped ones
//! (`crate::{a, b}`) with them, and looks for a cycle. A folder's `mod.rs` is the
//! package as a whole, not a node of the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Every `.rs` file under `src` as a module path (`suite::case`), with its text up to
/// its tests (tests may name anything). Folders are packages (`suite`).
fn modules(src: &Path) -> (BTreeMap<String, String>, BTreeSet<String>) {
    let mut files = BTreeMap::new();
    let mut packages = BTreeSet::new();
    let mut todo = vec![(src.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()).map(str::to_string) else {
                continue;
            };
            if path.is_dir() {
                if path.join("mod.rs").exists() {
                    packages.insert(format!("{prefix}{stem}"));
                    todo.push((path.clone(), format!("{prefix}{stem}::")));
                }
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") || ["lib", "main", "mod"].contains(&stem.as_str()) {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default().to_string();
            files.insert(format!("{prefix}{stem}"), code);
        }
    }
    (files, packages)
}

/// The paths a `use` or an expression names after `marker`: `a::b`, or each of a
/// group `{a::b, c}` (nested groups flattened to their heads).
fn paths_after(rest: &str) -> Vec<Vec<String>> {
    let ident = |s: &str| -> String { s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect() };
    let chain = |s: &str| -> Vec<String> {
        let mut out = Vec::new();
        let mut s = s;
        loop {
            let id = ident(s);
            if id.is_empty() {
                break;
            }
            s = &s[id.len()..];
            out.push(id);
            match s.strip_prefix("::") {
                Some(r) => s = r,
                None => break,
            }
        }
        out
    };
    let Some(group) = rest.strip_prefix('{') else {
        return vec![chain(rest)];
    };
    // The group up to its closing brace, split at its top-level commas.
    let (mut depth, mut items, mut start) = (0usize, Vec::new(), 0usize);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..i]);
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.into_iter().map(|i| chain(i.trim())).collect()
}

/// Module path -> the modules its code names.
fn graph(src: &Path) -> Graph {
    let (files, packages) = modules(src);
    let mut graph = Graph::new();
    for (me, code) in &files {
        let parent = me.rsplit_once("::").map_or("", |(p, _)| p);
        let mut uses = BTreeSet::new();
        for (marker, base) in [("crate::", ""), ("super::", parent)] {
            for part in code.split(marker).skip(1) {
                for path in paths_after(part) {
                    // The deepest module the path names: `crate::suite::case::Case`
                    // is suite::case, `super::Flow` from suite/x.rs is suite.
                    let mut at = base.to_string();
                    for seg in &path {
                        let next = if at.is_empty() {
                            seg.clone()
                        } else {
                            format!("{at}::{seg}")
                        };
                        if files.contains_key(&next) || packages.contains(&next) {
                            at = next;
                        } else {
                            break;
                        }
                    }
                    if !at.is_empty() && at != *me {
                        uses.insert(at);
                    }
                }
            }
        }
        graph.insert(me.clone(), uses);
    }
    graph
}

fn cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(node: &str, graph: &Graph, path: &mut Vec<String>, done: &mut BTreeSet<String>) -> Option<Vec<String>> {
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
            // A package named from outside is its `mod.rs`: not a node.
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

fn src(crate_dir: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(crate_dir)
        .join("src")
}

#[test]
fn no_module_of_the_speaker_imports_another_round_a_circle() {
    let g = graph(&src("speaker"));
    assert!(g.contains_key("node") && g.contains_key("packet::codes"), "{g:?}");
    assert!(
        g["api"].contains("messages"),
        "the reader misses imports: {:?}",
        g["api"]
    );
    // A grouped import: `use crate::{api, listener, transport}`.
    assert!(
        g["daemon"].contains("listener"),
        "the reader misses groups: {:?}",
        g["daemon"]
    );
    if let Some(c) = cycle(&g) {
        panic!("modules of the speaker import each other: {}", c.join(" -> "));
    }
}

#[test]
fn no_module_of_the_lab_imports_another_round_a_circle() {
    let g = graph(&src("lab"));
    assert!(
        g.contains_key("suite::case") && g.contains_key("render::intent"),
        "{g:?}"
    );
    assert!(
        g["suite::steps"].contains("suite::actions") && g["suite::steps"].contains("watch"),
        "the reader misses imports: {:?}",
        g["suite::steps"]
    );
    if let Some(c) = cycle(&g) {
        panic!("modules of the lab import each other: {}", c.join(" -> "));
    }
}

#[test]
fn a_circle_is_found_and_groups_are_read() {
    let g: Graph = [
        ("a".to_string(), BTreeSet::from(["b".to_string()])),
        ("b".to_string(), BTreeSet::from(["a".to_string()])),
    ]
    .into();
    assert_eq!(cycle(&g), Some(vec!["a".into(), "b".into(), "a".into()]));
    assert_eq!(
        paths_after("{api, listener::{self, X}, y::Z};"),
        vec![
            vec!["api".to_string()],
            vec!["listener".into()],
            vec!["y".into(), "Z".into()]
        ]
    );
    assert_eq!(
        paths_after("suite::case::Case;"),
        vec![vec!["suite".to_string(), "case".into(), "Case".into()]]
    );
}
