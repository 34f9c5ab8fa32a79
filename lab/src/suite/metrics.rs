//! Our speaker's Prometheus metrics as evidence: scraped from the host over each
//! node's management address (reqwest) before and after every case, kept with a
//! failed case's evidence, and the counters that say what the case did to the node
//! (UPDATEs in and out, session transitions, FIB failures, routes held by another
//! owner) summed over the nodes for the report.

use std::collections::BTreeMap;
use std::time::Duration;

use super::lab::Lab;
use crate::runtime::Runtime;

/// Where the lab's speakers serve their metrics (`metricsAddress` in their config).
pub const PORT: u16 = 9179;

/// The counters the report shows per case, as (name in the report, metric, labels
/// that must be there); counters are summed over every series and node, as a
/// difference after minus before, gauges read after.
const COUNTERS: [(&str, &str, &str); 5] = [
    ("UPDATEs in", "speaker_updates_received_total", ""),
    ("UPDATEs out", "speaker_updates_sent_total", ""),
    ("session transitions", "speaker_session_transitions_total", ""),
    ("FIB failures", "speaker_fib_operations_total", "result=\"failed\""),
    ("held by another owner", "speaker_fib_routes", "state=\"held_by_other\""),
];

/// The metrics page of every running node of ours, by node (the text, or why not).
pub type Pages = BTreeMap<String, Result<String, String>>;

/// Scrapes every running speaker node of the lab, all at once.
pub async fn scrape(rt: &Runtime, lab: &Lab) -> Pages {
    let client = match reqwest::Client::builder().timeout(Duration::from_secs(3)).build() {
        Ok(c) => c,
        Err(e) => return BTreeMap::from([("*".to_string(), Err(e.to_string()))]),
    };
    let nodes = lab
        .plan
        .nodes
        .iter()
        .filter(|n| n.bgp == Some("speaker") && !lab.down.contains(&n.name));
    let reads = nodes.map(|n| {
        let client = &client;
        async move {
            let page = async {
                let addr = rt
                    .mgmt_address(&lab.topo.container_name(&n.name))
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or("no management address")?;
                let url = format!("http://{addr}:{PORT}/metrics");
                let resp = client.get(&url).send().await.map_err(|e| format!("{url}: {e}"))?;
                if !resp.status().is_success() {
                    return Err(format!("{url}: {}", resp.status()));
                }
                resp.text().await.map_err(|e| format!("{url}: {e}"))
            };
            (n.name.clone(), page.await)
        }
    });
    futures::future::join_all(reads).await.into_iter().collect()
}

/// `name{labels} value` lines, comments left out.
pub fn parse(text: &str) -> Vec<(String, String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let value: f64 = value.trim().parse().ok()?;
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            Some((name.to_string(), labels.to_string(), value))
        })
        .collect()
}

fn total(pages: &Pages, metric: &str, label: &str) -> f64 {
    pages
        .values()
        .filter_map(|p| p.as_ref().ok())
        .flat_map(|text| parse(text))
        .filter(|(name, labels, _)| name == metric && (label.is_empty() || labels.contains(label)))
        .map(|(.., v)| v)
        .sum()
}

/// What the case did, in the report's counters.
pub fn summary(before: &Pages, after: &Pages) -> BTreeMap<String, f64> {
    COUNTERS
        .iter()
        .map(|(shown, metric, label)| {
            let now = total(after, metric, label);
            let value = if metric.ends_with("_total") {
                now - total(before, metric, label)
            } else {
                now
            };
            (shown.to_string(), value)
        })
        .collect()
}

/// The report's columns, in order.
pub fn columns() -> Vec<&'static str> {
    COUNTERS.iter().map(|(shown, ..)| *shown).collect()
}

/// Writes the pages into a failed case's evidence folder.
pub fn write(dir: &std::path::Path, when: &str, pages: &Pages) {
    for (node, page) in pages {
        let text = match page {
            Ok(t) => t.clone(),
            Err(e) => format!("# not scraped: {e}\n"),
        };
        let _ = std::fs::write(dir.join(format!("metrics-{node}-{when}.txt")), text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_summed_as_differences_and_gauges_read() {
        let page = |updates: u32, failed: u32, held: u32| {
            format!(
                "# HELP speaker_updates_received_total x\n# TYPE speaker_updates_received_total counter\nspeaker_updates_received_total{{peer=\"10.0.0.12\"}} {updates}\nspeaker_updates_received_total{{peer=\"10.0.0.13\"}} 1\nspeaker_fib_operations_total{{result=\"ok\"}} 9\nspeaker_fib_operations_total{{result=\"failed\"}} {failed}\nspeaker_fib_routes{{state=\"held_by_other\"}} {held}\n"
            )
        };
        let before: Pages = BTreeMap::from([("n1".into(), Ok(page(3, 0, 0))), ("n2".into(), Ok(page(1, 0, 0)))]);
        let after: Pages = BTreeMap::from([
            ("n1".into(), Ok(page(7, 2, 1))),
            ("n2".into(), Ok(page(1, 0, 0))),
            ("n3".into(), Err("down".into())),
        ]);
        let s = summary(&before, &after);
        assert_eq!(s["UPDATEs in"], 4.0);
        assert_eq!(s["FIB failures"], 2.0);
        assert_eq!(s["held by another owner"], 1.0);
        assert_eq!(s["UPDATEs out"], 0.0);
    }
}
