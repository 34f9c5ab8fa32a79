//! `make bench`'s report: the parts each benchmark wrote into `target/bench-report/`
//! (`p1.json`, `p2.json`, ...) turned into `bench.json`, `bench.md` and one SVG per
//! part. Every figure gets min, median, p95 and max per node daemon, and the ratios
//! speaker/BIRD and speaker/FRR: the median of the ratios taken pair by pair (run i
//! of one against run i of the other, which ran next to it) and the ratio of the
//! p95s. Targets are checked where a part names them.
//!
//! A part: `{"bench": "P2", "title", "method", "runs", "series": [{"figure", "unit",
//! "node", "values": [..], "contended": [..]}], "targets": [{"figure", "against",
//! "stat": "median"|"p95", "max_ratio"}], "notes": [..]}`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Result;

use serde::{Deserialize, Serialize};

/// Writes a benchmark's part, `target/bench-report/<name>.json`, for the report.
pub fn write_part(name: &str, part: &serde_json::Value) -> Result<()> {
    let dir = crate::target_dir().join("bench-report");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(part)?)?;
    println!("{} written to {}", name.to_uppercase(), path.display());
    Ok(())
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Part {
    pub bench: String,
    pub title: String,
    #[serde(default)]
    pub method: String,
    #[serde(default)]
    pub runs: usize,
    pub series: Vec<Series>,
    #[serde(default)]
    pub targets: Vec<Target>,
    #[serde(default)]
    pub notes: Vec<String>,
    /// Whose figures are divided by the others': the speaker, unless a part says
    /// (P4 compares `lab` with `by hand`).
    #[serde(default = "speaker")]
    pub subject: String,
    /// What the subject is divided by: BIRD and FRR, unless a part says.
    #[serde(default = "daemons")]
    pub against: Vec<String>,
}

fn speaker() -> String {
    "speaker".into()
}

fn daemons() -> Vec<String> {
    vec!["bird".into(), "frr".into()]
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Series {
    pub figure: String,
    pub unit: String,
    pub node: String,
    pub values: Vec<f64>,
    #[serde(default)]
    pub contended: Vec<bool>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Target {
    pub figure: String,
    pub against: String,
    /// `median` (of the pairwise ratios) or `p95` (ratio of the p95s).
    pub stat: String,
    pub max_ratio: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stats {
    pub n: usize,
    pub min: f64,
    pub median: f64,
    pub p95: f64,
    pub max: f64,
}

/// Nearest-rank quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

impl Stats {
    pub fn of(values: &[f64]) -> Option<Stats> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        Some(Stats {
            n: v.len(),
            min: v[0],
            median: quantile(&v, 0.5),
            p95: quantile(&v, 0.95),
            max: v[v.len() - 1],
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Ratio {
    pub against: String,
    /// Median of speaker[i] / other[i].
    pub median: f64,
    /// p95(speaker) / p95(other).
    pub p95: f64,
    pub pairs: usize,
}

/// The ratios of `speaker` against `other`, pair by pair.
pub fn ratio(speaker: &[f64], other: &[f64], against: &str) -> Option<Ratio> {
    let pairs: Vec<f64> = speaker
        .iter()
        .zip(other)
        .filter(|(_, o)| **o > 0.0)
        .map(|(s, o)| s / o)
        .collect();
    let ps = Stats::of(speaker)?;
    let po = Stats::of(other)?;
    Some(Ratio {
        against: against.into(),
        median: Stats::of(&pairs)?.median,
        p95: if po.p95 > 0.0 { ps.p95 / po.p95 } else { f64::NAN },
        pairs: pairs.len(),
    })
}

#[derive(Debug, Serialize)]
pub struct Figure {
    pub bench: String,
    pub figure: String,
    pub unit: String,
    pub nodes: BTreeMap<String, Stats>,
    pub contended_runs: BTreeMap<String, usize>,
    pub ratios: Vec<Ratio>,
    pub targets: Vec<TargetResult>,
}

#[derive(Debug, Serialize)]
pub struct TargetResult {
    pub against: String,
    pub stat: String,
    pub max_ratio: f64,
    pub ratio: Option<f64>,
    pub met: bool,
}

/// Every figure of a part, in the order the part lists them.
pub fn figures(part: &Part) -> Vec<Figure> {
    let mut order: Vec<String> = Vec::new();
    let mut by: BTreeMap<String, Vec<&Series>> = BTreeMap::new();
    for s in &part.series {
        if !by.contains_key(&s.figure) {
            order.push(s.figure.clone());
        }
        by.entry(s.figure.clone()).or_default().push(s);
    }
    order
        .into_iter()
        .map(|name| {
            let series = &by[&name];
            let get = |node: &str| series.iter().find(|s| s.node == node);
            let mut ratios = Vec::new();
            if let Some(sp) = get(&part.subject) {
                for other in &part.against {
                    if let Some(o) = get(other) {
                        ratios.extend(ratio(&sp.values, &o.values, other));
                    }
                }
            }
            let targets = part
                .targets
                .iter()
                .filter(|t| t.figure == name)
                .map(|t| {
                    let r = ratios.iter().find(|r| r.against == t.against).map(|r| {
                        if t.stat == "p95" {
                            r.p95
                        } else {
                            r.median
                        }
                    });
                    TargetResult {
                        against: t.against.clone(),
                        stat: t.stat.clone(),
                        max_ratio: t.max_ratio,
                        ratio: r,
                        met: r.is_some_and(|r| r <= t.max_ratio),
                    }
                })
                .collect();
            Figure {
                bench: part.bench.clone(),
                figure: name.clone(),
                unit: series[0].unit.clone(),
                nodes: series
                    .iter()
                    .filter_map(|s| Some((s.node.clone(), Stats::of(&s.values)?)))
                    .collect(),
                contended_runs: series
                    .iter()
                    .map(|s| (s.node.clone(), s.contended.iter().filter(|c| **c).count()))
                    .collect(),
                ratios,
                targets,
            }
        })
        .collect()
}

fn num(v: f64, unit: &str) -> String {
    match unit {
        "ms" if v < 10.0 => format!("{v:.2}"),
        "s" if v < 10.0 => format!("{v:.3}"),
        _ if v < 100.0 => format!("{v:.1}"),
        _ => format!("{v:.0}"),
    }
}

/// The markdown report: a table per part, ratios, targets, notes.
pub fn markdown(parts: &[Part], machine: &str) -> String {
    let mut s = String::from("# Benchmarks: the speaker against BIRD and FRR\n\n");
    let _ = writeln!(s, "{machine}\n");
    s.push_str(
        "Runs of the node daemons are interleaved in one invocation; a ratio is the median of the \
         ratios taken pair by pair (speaker run i against the other's run i), and `p95` the ratio \
         of the p95s. Lower is better for every figure. A run marked contended had more than a \
         fifth of a core busy outside the processes under test.\n\n",
    );
    let mut missed = Vec::new();
    let mut targets = Vec::new();
    for part in parts {
        let _ = writeln!(s, "## {}: {}\n", part.bench, part.title);
        if !part.method.is_empty() {
            let _ = writeln!(s, "{}\n", part.method);
        }
        let _ = writeln!(
            s,
            "| figure | node | n | min | median | p95 | max | {} / others (median / p95) |",
            part.subject
        );
        s.push_str("|---|---|---|---|---|---|---|---|\n");
        for f in figures(part) {
            for (node, st) in &f.nodes {
                let contended = f.contended_runs.get(node).copied().unwrap_or(0);
                let mark = if contended > 0 {
                    format!(" ({contended} contended)")
                } else {
                    String::new()
                };
                let ratios = if *node == part.subject {
                    f.ratios
                        .iter()
                        .map(|r| format!("x{:.2} / x{:.2} vs {}", r.median, r.p95, r.against))
                        .collect::<Vec<_>>()
                        .join("; ")
                } else {
                    String::new()
                };
                let _ = writeln!(
                    s,
                    "| {} ({}) | {node} | {}{mark} | {} | **{}** | {} | {} | {ratios} |",
                    f.figure,
                    f.unit,
                    st.n,
                    num(st.min, &f.unit),
                    num(st.median, &f.unit),
                    num(st.p95, &f.unit),
                    num(st.max, &f.unit),
                );
            }
            for t in &f.targets {
                let line = format!(
                    "{}: {}/{} at the {} {} (target at most {})",
                    f.figure,
                    part.subject,
                    t.against,
                    t.stat,
                    t.ratio
                        .map(|r| format!("x{r:.2}"))
                        .unwrap_or_else(|| "not measured".into()),
                    t.max_ratio
                );
                if !t.met {
                    missed.push(line.clone());
                }
                targets.push(format!("- {}: {line}", if t.met { "met" } else { "**missed**" }));
            }
        }
        s.push('\n');
        if !targets.is_empty() {
            s.push_str("Targets:\n\n");
            for t in targets.drain(..) {
                let _ = writeln!(s, "{t}");
            }
            s.push('\n');
        }
        let _ = writeln!(s, "![{}](./{}.svg)\n", part.bench, part.bench.to_lowercase());
        for n in &part.notes {
            let _ = writeln!(s, "- {n}");
        }
        if !part.notes.is_empty() {
            s.push('\n');
        }
    }
    s.push_str("## Targets missed\n\n");
    if missed.is_empty() {
        s.push_str("None.\n");
    }
    for m in missed {
        let _ = writeln!(s, "- {m}");
    }
    s
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A strip plot per figure: a row per node daemon, a dot per run, the median as a
/// bar, on a linear scale from 0 to the largest value.
pub fn svg(part: &Part) -> String {
    let figs = figures(part);
    let (label_w, plot_w, row_h) = (90.0, 620.0, 18.0);
    let rows: usize = figs.iter().map(|f| f.nodes.len() + 2).sum::<usize>().max(1);
    let height = rows as f64 * row_h + 20.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
        label_w + plot_w + 60.0
    );
    let mut y = 16.0;
    for f in &figs {
        let series: Vec<&Series> = part.series.iter().filter(|s| s.figure == f.figure).collect();
        let max = series
            .iter()
            .flat_map(|s| s.values.iter().copied())
            .fold(0.0_f64, f64::max)
            .max(1e-9);
        let x = |v: f64| label_w + plot_w * (v / max).clamp(0.0, 1.0);
        let _ = writeln!(
            s,
            "<text x=\"4\" y=\"{y}\" font-weight=\"bold\">{} ({}, 0 to {})</text>",
            xml(&f.figure),
            xml(&f.unit),
            num(max, &f.unit)
        );
        y += row_h;
        for sr in series {
            let _ = writeln!(s, "<text x=\"12\" y=\"{}\">{}</text>", y + 4.0, xml(&sr.node));
            let _ = writeln!(
                s,
                "<line x1=\"{label_w}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\" stroke=\"#eee\"/>",
                label_w + plot_w
            );
            for (i, v) in sr.values.iter().enumerate() {
                let contended = sr.contended.get(i).copied().unwrap_or(false);
                let _ = writeln!(
                    s,
                    "<circle cx=\"{:.1}\" cy=\"{y}\" r=\"3\" fill=\"{}\" fill-opacity=\"0.6\"/>",
                    x(*v),
                    if contended { "#cc0000" } else { "#3465a4" }
                );
            }
            if let Some(st) = Stats::of(&sr.values) {
                let _ = writeln!(
                    s,
                    "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1}\" y2=\"{2}\" stroke=\"black\" stroke-width=\"2\"/><text x=\"{3}\" y=\"{4}\" fill=\"#555\">{5}</text>",
                    x(st.median),
                    y - 6.0,
                    y + 6.0,
                    label_w + plot_w + 6.0,
                    y + 4.0,
                    num(st.median, &f.unit)
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

    fn series(figure: &str, node: &str, values: &[f64]) -> Series {
        Series {
            figure: figure.into(),
            unit: "s".into(),
            node: node.into(),
            values: values.to_vec(),
            contended: vec![false; values.len()],
        }
    }

    #[test]
    fn stats_use_nearest_rank() {
        let st = Stats::of(&[5.0, 1.0, 3.0, 2.0, 4.0]).unwrap();
        assert_eq!((st.min, st.median, st.p95, st.max), (1.0, 3.0, 5.0, 5.0));
        let many: Vec<f64> = (1..=100).map(f64::from).collect();
        let st = Stats::of(&many).unwrap();
        assert_eq!((st.median, st.p95), (50.0, 95.0));
        assert_eq!(Stats::of(&[]), None);
    }

    #[test]
    fn ratios_are_pairwise_and_targets_are_checked() {
        let part = Part {
            bench: "P2".into(),
            title: "t".into(),
            method: String::new(),
            runs: 3,
            series: vec![
                series("ingest", "speaker", &[1.0, 4.0, 2.0]),
                series("ingest", "bird", &[2.0, 2.0, 2.0]),
                series("ingest", "frr", &[10.0, 10.0, 10.0]),
            ],
            targets: vec![
                Target {
                    figure: "ingest".into(),
                    against: "bird".into(),
                    stat: "median".into(),
                    max_ratio: 1.0,
                },
                Target {
                    figure: "ingest".into(),
                    against: "frr".into(),
                    stat: "p95".into(),
                    max_ratio: 0.05,
                },
            ],
            notes: vec![],
            subject: speaker(),
            against: daemons(),
        };
        let f = &figures(&part)[0];
        // Pairwise 0.5, 2.0, 1.0: median 1.0; p95 4.0 / 2.0.
        assert_eq!(f.ratios[0].median, 1.0);
        assert_eq!(f.ratios[0].p95, 2.0);
        assert!(f.targets[0].met);
        // Against FRR: 0.4 at the p95, far above 0.05.
        assert!(!f.targets[1].met);
        let md = markdown(std::slice::from_ref(&part), "machine");
        assert!(
            md.contains(
                "| ingest (s) | speaker | 3 | 1.000 | **2.000** | 4.000 | 4.000 | x1.00 / x2.00 vs bird; x0.20 / x0.40 vs frr |"
            ),
            "{md}"
        );
        assert!(
            md.contains("- ingest: speaker/frr at the p95 x0.40 (target at most 0.05)"),
            "{md}"
        );
        assert!(svg(&part).contains("<circle"));
    }
}
