//! The conformance reports, written after every run into one folder: `results.json`
//! (everything, and what shards merge), `junit.xml` (a testcase per case and cell),
//! `summary.md` (the interop matrix, the findings, the timing table) and
//! `timings.svg` (each timing's samples per cell). With `GITHUB_STEP_SUMMARY` set, the
//! summary is appended to it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use super::{CaseResult, Outcome};
use crate::render::{Fabric, Family, NodeSpeaker};

/// Writes every report of `results` into `dir`.
pub fn write_all(results: &[CaseResult], dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(results).unwrap_or_default(),
    )?;
    std::fs::write(dir.join("junit.xml"), junit(results))?;
    let summary = summary(results);
    std::fs::write(dir.join("summary.md"), &summary)?;
    std::fs::write(dir.join("timings.svg"), timings_svg(results))?;
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new().append(true).create(true).open(path) {
            let _ = writeln!(f, "{summary}");
        }
    }
    Ok(())
}

/// Reads the `results.json` of several runs (shards) into one list.
pub fn merge(files: &[&Path]) -> Result<Vec<CaseResult>, String> {
    let mut all = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        let mut r: Vec<CaseResult> = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", f.display()))?;
        all.append(&mut r);
    }
    Ok(all)
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn junit(results: &[CaseResult]) -> String {
    let failures = results.iter().filter(|r| matches!(r.outcome, Outcome::Fail(_))).count();
    let skipped = results.iter().filter(|r| matches!(r.outcome, Outcome::Skip(_))).count();
    let time: f64 = results.iter().map(|r| r.secs).sum();
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"conformance\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{time:.1}\">\n<testsuite name=\"conformance\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{time:.1}\">\n",
        results.len(),
        results.len()
    );
    for r in results {
        let _ = write!(
            s,
            "  <testcase classname=\"{}\" name=\"{}\" time=\"{:.1}\"",
            xml(&r.family),
            xml(&r.name()),
            r.secs
        );
        match &r.outcome {
            Outcome::Pass => s.push_str("/>\n"),
            Outcome::Fail(why) => {
                let _ = writeln!(
                    s,
                    ">\n    <failure message=\"{}\">{}</failure>\n  </testcase>",
                    xml(why.lines().next().unwrap_or_default()),
                    xml(why)
                );
            }
            Outcome::Skip(why) => {
                let _ = writeln!(s, ">\n    <skipped message=\"{}\"/>\n  </testcase>", xml(why));
            }
        }
    }
    s.push_str("</testsuite>\n</testsuites>\n");
    s
}

fn mark(o: Option<&Outcome>) -> &'static str {
    match o {
        Some(Outcome::Pass) => "✅",
        Some(Outcome::Fail(_)) => "❌",
        Some(Outcome::Skip(_)) => "➖",
        None => " ",
    }
}

/// `p`-th percentile of sorted `v` (nearest rank).
fn percentile(v: &[f64], p: f64) -> f64 {
    let i = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize - 1;
    v[i.min(v.len() - 1)]
}

pub fn summary(results: &[CaseResult]) -> String {
    let mut s = String::from("# Conformance\n\n");
    let pass = results.iter().filter(|r| r.outcome == Outcome::Pass).count();
    let fail = results.iter().filter(|r| matches!(r.outcome, Outcome::Fail(_))).count();
    let skip = results.len() - pass - fail;
    let _ = writeln!(
        s,
        "{pass} passed, {fail} failed, {skip} left out, of {} case runs. ✅ pass, ❌ fail, ➖ left out (see why below).\n",
        results.len()
    );
    for family in Family::ALL {
        let rows: Vec<&CaseResult> = results.iter().filter(|r| r.ip_family == family.as_str()).collect();
        if rows.is_empty() {
            continue;
        }
        // Ours first, then the reference rows; fabrics in the matrix's order.
        let mut columns: Vec<(String, String)> = rows.iter().map(|r| (r.node.clone(), r.fabric.clone())).collect();
        columns.sort_by_key(|(n, f)| (column_order(n, f), n.clone(), f.clone()));
        columns.dedup();
        let mut cases: Vec<(&str, &str)> = rows.iter().map(|r| (r.id.as_str(), r.title.as_str())).collect();
        cases.sort_by_key(|a| order(a.0));
        cases.dedup();
        let title = match family {
            Family::V4 => "IPv4",
            Family::Dual => "Dual stack",
            Family::V6 => "IPv6 only",
        };
        let _ = writeln!(s, "## {title}\n");
        s.push_str("| case |");
        for (node, fabric) in &columns {
            let _ = write!(s, " {node}<br>{fabric} |");
        }
        s.push_str("\n|---|");
        for _ in &columns {
            s.push_str(":-:|");
        }
        s.push('\n');
        for (id, title) in cases {
            let _ = write!(s, "| {id} {title} |");
            for (node, fabric) in &columns {
                let o = rows
                    .iter()
                    .find(|r| r.id == id && r.node == *node && r.fabric == *fabric)
                    .map(|r| &r.outcome);
                let _ = write!(s, " {} |", mark(o));
            }
            s.push('\n');
        }
        s.push('\n');
    }
    let failures: Vec<&CaseResult> = results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Fail(_)))
        .collect();
    if !failures.is_empty() {
        s.push_str("## Failures and findings\n\nA failure of a reference row (BIRD, FRR) is a finding about it, not a skip.\n\n");
        for r in failures {
            if let Outcome::Fail(why) = &r.outcome {
                let first = why.lines().next().unwrap_or_default();
                let short: String = first.chars().take(400).collect();
                match &r.known {
                    Some(known) => {
                        let _ = writeln!(s, "- **{}**: {known} (seen: {short})", r.name());
                    }
                    None => {
                        let _ = writeln!(s, "- **{}**: {short}", r.name());
                    }
                }
            }
        }
        s.push('\n');
    }
    let skips: BTreeMap<(String, String), Vec<String>> = results.iter().fold(BTreeMap::new(), |mut m, r| {
        if let Outcome::Skip(why) = &r.outcome {
            m.entry((r.id.clone(), why.clone())).or_default().push(r.cell.clone());
        }
        m
    });
    if !skips.is_empty() {
        s.push_str("## Left out\n\n");
        for ((id, why), cells) in skips {
            let _ = writeln!(s, "- **{id}** on {} cell(s): {why}", cells.len());
        }
        s.push('\n');
    }
    s.push_str(&timing_table(results));
    s.push_str(&traffic_table(results));
    s.push_str(&metrics_table(results));
    s
}

/// Per case of our speaker's row, what its metrics say the case did.
fn metrics_table(results: &[CaseResult]) -> String {
    let rows: Vec<&CaseResult> = results.iter().filter(|r| !r.metrics.is_empty()).collect();
    if rows.is_empty() {
        return String::new();
    }
    let columns = super::metrics::columns();
    let mut s = String::from(
        "## Our speaker's counters per case

From its Prometheus metrics, scraped before and after the case and summed over its nodes.

| case | cell |",
    );
    for c in &columns {
        let _ = write!(s, " {c} |");
    }
    s.push_str("\n|---|---|");
    for _ in &columns {
        s.push_str("--:|");
    }
    s.push('\n');
    for r in rows {
        let _ = write!(s, "| {} {} | {} |", r.id, r.title, r.cell);
        for c in &columns {
            let _ = write!(s, " {} |", r.metrics.get(*c).copied().unwrap_or_default());
        }
        s.push('\n');
    }
    s.push('\n');
    s
}

/// The continuous pings cases ran during faults, and the memory they measured.
fn traffic_table(results: &[CaseResult]) -> String {
    let mut s = String::new();
    let with: Vec<&CaseResult> = results.iter().filter(|r| !r.traffic.is_empty()).collect();
    if !with.is_empty() {
        s.push_str(
            "## Traffic during faults

A ping every millisecond between pods, or a TCP connection every 20 ms from the client
outside the cluster to a service (`to` the service), in each address family, while the
case ran; for connections, the longest time without an answer.

| case | cell | family | sent | lost | longest without an answer |
|---|---|---|--:|--:|--:|
",
        );
        for r in with {
            for f in &r.traffic {
                let gap = f.longest_gap_ms.map(|g| format!("{g:.0} ms")).unwrap_or_default();
                let _ = writeln!(
                    s,
                    "| {} {} | {} | {} | {} | {} | {gap} |",
                    r.id, r.title, r.cell, f.family, f.sent, f.lost
                );
            }
        }
        s.push('\n');
    }
    let mem: Vec<&CaseResult> = results.iter().filter(|r| !r.rss.is_empty()).collect();
    if !mem.is_empty() {
        s.push_str(
            "## Memory

Resident memory of the node's BGP daemon, before and after the case (KiB).

| case | cell | node | before | after |
|---|---|---|--:|--:|
",
        );
        for r in mem {
            for (node, before, after) in &r.rss {
                let _ = writeln!(s, "| {} {} | {} | {node} | {before} | {after} |", r.id, r.title, r.cell);
            }
        }
        s.push('\n');
    }
    s
}

fn column_order(node: &str, fabric: &str) -> (usize, usize) {
    let n = NodeSpeaker::ALL.iter().position(|x| x.as_str() == node).unwrap_or(9);
    let f = Fabric::ALL.iter().position(|x| x.to_string() == fabric).unwrap_or(9);
    (n, f)
}

/// Catalogue order: families as CONFORMANCE.md lists them, then the number.
pub fn order(id: &str) -> (usize, String) {
    let families = ["SES", "RT", "DP", "WD", "GR", "RB", "SVC", "POL"];
    let (f, n) = id.split_once('-').unwrap_or((id, ""));
    (families.iter().position(|x| *x == f).unwrap_or(99), format!("{n:>4}"))
}

/// Per timing and cell: samples, p50, p95, max (ms), and the budget.
fn timing_table(results: &[CaseResult]) -> String {
    let mut by: BTreeMap<(String, String), (Vec<f64>, usize, f64)> = BTreeMap::new();
    for r in results {
        for sm in &r.samples {
            let e = by
                .entry((sm.name.clone(), r.cell.clone()))
                .or_insert((Vec::new(), 0, sm.budget_ms));
            match sm.ms {
                Some(ms) => e.0.push(ms),
                None => e.1 += 1,
            }
        }
    }
    if by.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "## Timings\n\nFrom the route event in the node where a change was made (or, for a daemon stopped or a link\ncut, from the act) to the route event in each node that followed (kernel events, not polling),\nin ms.\n\n| timing | cell | samples | p50 | p95 | max | missed | budget |\n|---|---|--:|--:|--:|--:|--:|--:|\n",
    );
    for ((name, cell), (mut v, missed, budget)) in by {
        v.sort_by(|a, b| a.total_cmp(b));
        let (p50, p95, max) = if v.is_empty() {
            ("-".into(), "-".into(), "-".into())
        } else {
            (
                format!("{:.1}", percentile(&v, 50.0)),
                format!("{:.1}", percentile(&v, 95.0)),
                format!("{:.1}", v[v.len() - 1]),
            )
        };
        let _ = writeln!(
            s,
            "| {name} | {cell} | {} | {p50} | {p95} | {max} | {missed} | {budget:.0} |",
            v.len()
        );
    }
    s.push('\n');
    s
}

/// A strip plot per timing: one row per cell, a dot per sample, on a log scale.
pub fn timings_svg(results: &[CaseResult]) -> String {
    let mut by: BTreeMap<String, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    for r in results {
        for sm in &r.samples {
            if let Some(ms) = sm.ms {
                by.entry(sm.name.clone())
                    .or_default()
                    .entry(r.cell.clone())
                    .or_default()
                    .push(ms);
            }
        }
    }
    let (label_w, plot_w, row_h) = (300.0, 560.0, 16.0);
    let rows: usize = by.values().map(|c| c.len() + 2).sum::<usize>().max(1);
    let height = rows as f64 * row_h + 40.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
        label_w + plot_w + 20.0
    );
    // 0.01 ms to 10 s, logarithmic.
    let x = |ms: f64| label_w + plot_w * ((ms.max(0.01).log10() + 2.0) / 6.0).clamp(0.0, 1.0);
    let mut y = 20.0;
    for (name, cells) in &by {
        let _ = writeln!(s, "<text x=\"4\" y=\"{y}\" font-weight=\"bold\">{}</text>", xml(name));
        for ms in [0.1, 1.0, 10.0, 100.0, 1000.0] {
            let _ = writeln!(
                s,
                "<line x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2}\" stroke=\"#ddd\"/><text x=\"{0}\" y=\"{y}\" fill=\"#888\">{ms} ms</text>",
                x(ms),
                y + 4.0,
                y + (cells.len() as f64 + 1.0) * row_h
            );
        }
        y += row_h;
        for (cell, samples) in cells {
            let _ = writeln!(s, "<text x=\"12\" y=\"{}\">{}</text>", y + 4.0, xml(cell));
            for ms in samples {
                let _ = writeln!(
                    s,
                    "<circle cx=\"{:.1}\" cy=\"{y}\" r=\"3\" fill=\"#3465a4\" fill-opacity=\"0.6\"/>",
                    x(*ms)
                );
            }
            y += row_h;
        }
        y += row_h;
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::Sample;

    fn result(id: &str, node: &str, outcome: Outcome) -> CaseResult {
        CaseResult {
            id: id.into(),
            title: "pod delete".into(),
            family: "WD".into(),
            cell: format!("node={node} fabric=tor/frr v4"),
            node: node.into(),
            fabric: "tor/frr".into(),
            ip_family: "v4".into(),
            outcome,
            secs: 1.5,
            samples: vec![Sample {
                name: "pod /32 removed".into(),
                node: "n2".into(),
                ms: Some(52.0),
                budget_ms: 1000.0,
            }],
            traffic: Vec::new(),
            evidence: None,
            rss: Vec::new(),
            reasons: Vec::new(),
            known: None,
            unreproduced: Vec::new(),
            metrics: BTreeMap::new(),
            timeline: Vec::new(),
        }
    }

    #[test]
    fn reports_name_cases_and_cells_and_say_why() {
        let r = vec![
            result("WD-01", "speaker", Outcome::Pass),
            result(
                "WD-01",
                "bird",
                Outcome::Fail("10.244.250.1/32 still in n2 <bgp>".into()),
            ),
            result("WD-03", "frr", Outcome::Skip("FRR has no drain".into())),
        ];
        let j = junit(&r);
        assert!(
            j.contains("name=\"WD-01 pod delete [node=speaker fabric=tor/frr v4]\""),
            "{j}"
        );
        assert!(j.contains("&lt;bgp&gt;"), "{j}");
        assert!(j.contains("<skipped message=\"FRR has no drain\"/>"), "{j}");
        let s = summary(&r);
        assert!(s.contains("| WD-01 pod delete | ✅ | ❌ |   |"), "{s}");
        assert!(
            s.contains("- **WD-01 pod delete [node=bird fabric=tor/frr v4]**: 10.244.250.1/32"),
            "{s}"
        );
        assert!(
            s.contains("| pod /32 removed | node=speaker fabric=tor/frr v4 | 1 | 52.0 | 52.0 | 52.0 | 0 | 1000 |"),
            "{s}"
        );
        assert!(timings_svg(&r).contains("<circle"));
    }
}
