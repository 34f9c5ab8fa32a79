//! Sessions stay up through a case that touches none of them. A speaker whose
//! sessions drop and come back (keepalives not sent, a hold timer misread, a reset on
//! some UPDATE) keeps its routes in its peers' FIBs under graceful restart, and
//! every route check passes while the sessions flap: only the sessions themselves
//! say it. Our speaker counts its sessions' state changes
//! (`speaker_session_transitions_total`), scraped before and after every case; in a
//! case none of whose steps may reset a session ([`Case::touches_sessions`]), any
//! change is a failure.

use super::case::Case;
use super::metrics::{self, Pages};

const METRIC: &str = "speaker_session_transitions_total";

/// Why the case fails, when a session of a case that touches none changed state:
/// each node and peer with how many changes.
pub fn check(case: &Case, before: &Pages, after: &Pages) -> Result<(), String> {
    if case.touches_sessions() {
        return Ok(());
    }
    let changed = changes(before, after);
    if changed.is_empty() {
        return Ok(());
    }
    Err(format!(
        "sessions changed state during a case that touches none (a reset, though routes may have stayed under graceful restart): {}",
        changed.join(", ")
    ))
}

/// `n1 with 10.0.0.12: 4 state changes` for every session whose counter moved.
fn changes(before: &Pages, after: &Pages) -> Vec<String> {
    let per_peer = |pages: &Pages, node: &str| -> Vec<(String, f64)> {
        pages
            .get(node)
            .and_then(|p| p.as_ref().ok())
            .map(|text| {
                metrics::parse(text)
                    .into_iter()
                    .filter(|(name, ..)| name == METRIC)
                    .map(|(_, labels, v)| (labels, v))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for node in after.keys() {
        // A node not read before (it was down) has nothing to compare with.
        if !matches!(before.get(node), Some(Ok(_))) {
            continue;
        }
        let was = per_peer(before, node);
        for (labels, now) in per_peer(after, node) {
            let then = was.iter().find(|(l, _)| *l == labels).map_or(0.0, |(_, v)| *v);
            if now > then {
                let peer = labels.trim_start_matches("peer=\"").trim_end_matches('"').to_string();
                out.push(format!("{node} with {peer}: {} state changes", now - then));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn page(a: u32, b: u32) -> Result<String, String> {
        Ok(format!(
            "# TYPE {METRIC} counter\n{METRIC}{{peer=\"10.0.0.12\"}} {a}\n{METRIC}{{peer=\"fd00::12\"}} {b}\n"
        ))
    }

    fn case(yaml: &str) -> Case {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn a_session_that_changed_state_fails_a_case_that_touches_none() {
        let before: Pages = BTreeMap::from([("n1".into(), page(2, 2)), ("n3".into(), Err("down".into()))]);
        let after: Pages = BTreeMap::from([("n1".into(), page(2, 4)), ("n3".into(), page(9, 9))]);
        let quiet = case("id: X\ntitle: x\nsteps:\n  - pod_add: {node: n1, name: x}\n");
        let e = check(&quiet, &before, &after).unwrap_err();
        assert!(e.ends_with(": n1 with fd00::12: 2 state changes"), "{e}");
        assert!(check(&quiet, &before, &before).is_ok());
        let restarts = case("id: X\ntitle: x\nsteps:\n  - daemon: {node: n1, do: stop}\n");
        assert!(check(&restarts, &before, &after).is_ok());
        let exec = case("id: X\ntitle: x\nsteps: []\nalways:\n  - exec: {node: x1, cmd: \"true\"}\n");
        assert!(check(&exec, &before, &after).is_ok());
    }
}
