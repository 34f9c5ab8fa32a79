//! The conformance suite: cases as data (`case.rs`) run over the cells of the matrix
//! (`render`), one deployment per cell shared by its cases. Each case's actions and
//! expectations run here (`steps.rs`); after every case the lab is checked against
//! its model, nothing missing and nothing stale (`model.rs`, WD-04), and a lab left
//! dirty is deployed again before the next case. Results go to reports (`report.rs`).
//! `lab test` and the `suites` test harness both drive this runner.

mod actions;
pub mod case;
mod evidence;
mod expectations;
mod lab;
pub mod metrics;
pub mod model;
pub mod oracle;
mod placeholders;
mod record;
pub mod report;
pub mod select;
mod steady;
pub mod step;
mod steps;
mod svc;
mod traffic;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use self::lab::Lab;
use crate::bringup;
use crate::deploy::{self, UpOptions};
use crate::progress::Progress;
use crate::render::{Cell, Plan};
use crate::runtime::Runtime;
use crate::topology::Topology;

pub use case::{Case, SuiteFile};

/// How a case ended on a cell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail(String),
    /// Left out on this cell, and why.
    Skip(String),
}

/// What a case's continuous traffic counted in one address family: pings, or TCP
/// connections to a service from the client outside the cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    /// `IPv4` or `IPv6` (for connections, and the service: `IPv4 to s04`).
    pub family: String,
    pub sent: u64,
    pub lost: u64,
    /// Connections: the longest time without an answer (ms), from the last answer
    /// before a failure to the next one (or to the end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longest_gap_ms: Option<f64>,
}

/// One timing of a case: how long a node's kernel took to follow a change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    pub name: String,
    pub node: String,
    /// Milliseconds; `None` when the node did not follow within the deadline.
    pub ms: Option<f64>,
    pub budget_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseResult {
    pub id: String,
    pub title: String,
    pub family: String,
    pub cell: String,
    pub node: String,
    pub fabric: String,
    pub ip_family: String,
    pub outcome: Outcome,
    pub secs: f64,
    #[serde(default)]
    pub samples: Vec<Sample>,
    /// Packets sent and lost by the case's traffic, per address family.
    #[serde(default)]
    pub traffic: Vec<Flow>,
    /// Where the evidence of a failure was written.
    #[serde(default)]
    pub evidence: Option<String>,
    /// Memory of BGP daemons the case measured: (node, KiB before, KiB after).
    #[serde(default)]
    pub rss: Vec<(String, u64, u64)>,
    /// Why it failed, each reason where it happened.
    #[serde(default)]
    pub reasons: Vec<case::Reason>,
    /// What the case file's findings say of this failure, when they explain every
    /// reason of it.
    #[serde(default)]
    pub known: Option<String>,
    /// The case file's findings about this cell that this run did not see.
    #[serde(default)]
    pub unreproduced: Vec<String>,
    /// What our speaker's metrics say the case did (UPDATEs, session transitions,
    /// FIB failures, routes held by another owner), summed over its nodes.
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    /// Where the case's time went: (phase or step, seconds), in order.
    #[serde(default)]
    pub timeline: Vec<(String, f64)>,
}

impl CaseResult {
    /// As the test is named: `WD-01 pod delete [node=speaker fabric=tor/frr v4]`.
    pub fn name(&self) -> String {
        format!("{} {} [{}]", self.id, self.title, self.cell)
    }
}

/// The name of a case on a cell, as tests and reports carry it.
pub fn test_name(case: &Case, cell: &Cell) -> String {
    format!("{} {} [{cell}]", case.id, case.title)
}

pub struct Runner {
    pub rt: Runtime,
    /// Where cells are rendered.
    pub cells_dir: PathBuf,
    /// Where evidence of failed cases goes.
    pub report_dir: PathBuf,
    pub progress: Progress,
    pub lab: Option<Lab>,
    /// Why the cell is not deployed, when deploying it again after a case failed.
    pub broken: Option<String>,
    /// The image our speaker's nodes run instead of `podlab/speaker:latest` (a
    /// mutant's).
    pub speaker_image: Option<String>,
}

impl Runner {
    pub async fn new(cells_dir: PathBuf, report_dir: PathBuf, quiet: bool) -> Result<Runner, String> {
        let rt = Runtime::connect().await.map_err(|e| e.to_string())?;
        Ok(Runner {
            rt,
            cells_dir,
            report_dir,
            progress: Progress::new(quiet),
            lab: None,
            broken: None,
            speaker_image: None,
        })
    }

    /// Renders and deploys `cell` (replacing whatever was up), and checks it is up as
    /// `lab up` checks: sessions, blocks, pods, ping matrix.
    pub async fn deploy(&mut self, cell: Cell) -> Result<(), String> {
        self.teardown().await;
        self.broken = None;
        let mut plan = Plan::new(cell)?;
        if let Some(image) = &self.speaker_image {
            plan = plan.with_speaker_image(image);
        }
        let dir = self.cells_dir.join(cell.slug());
        let path = plan
            .write(&dir)
            .map_err(|e| format!("{}: {e}", self.cells_dir.display()))?;
        let topo = Topology::load(&path).map_err(|e| e.to_string())?;
        let opts = UpOptions {
            reconfigure: true,
            ..UpOptions::default()
        };
        let up = match bringup::up(&self.rt, &topo, &opts, Duration::from_secs(60), &self.progress).await {
            Ok(Some(up)) => up,
            failed => {
                // Up but not well (a ping that fails): nothing of it is left behind.
                let _ = deploy::down(&self.rt, &topo.name, &self.progress).await;
                return Err(match failed {
                    Err(e) => format!("cell [{cell}] did not come up: {e}"),
                    _ => "no wait".into(),
                });
            }
        };
        let book = match lab::AddressBook::read(&self.rt, &topo).await {
            Ok(b) => b,
            Err(e) => {
                let _ = deploy::down(&self.rt, &topo.name, &self.progress).await;
                return Err(e);
            }
        };
        let addresses = book.globals();
        let blocks = plan.k8s_nodes().map(|n| (n.name.clone(), n.blocks.clone())).collect();
        let topo_name = topo.name.clone();
        let mut lab = Lab {
            cell,
            plan,
            dir,
            topo,
            up,
            addresses,
            pods: BTreeMap::new(),
            pod_ips: BTreeMap::new(),
            pod_ips6: BTreeMap::new(),
            services: Vec::new(),
            blocks,
            down: BTreeSet::new(),
            baseline: lab::Baseline::default(),
            borrowed: 0,
        };
        match lab::Baseline::read(&self.rt, &lab, book).await {
            Ok(b) => lab.baseline = b,
            Err(e) => {
                let _ = deploy::down(&self.rt, &topo_name, &self.progress).await;
                return Err(e);
            }
        }
        self.lab = Some(lab);
        Ok(())
    }

    /// Removes the deployed cell.
    pub async fn teardown(&mut self) {
        if let Some(lab) = self.lab.take() {
            let _ = deploy::down(&self.rt, &lab.topo.name, &self.progress).await;
        }
    }

    /// Runs one case on the deployed cell (`family`: its file's), then checks the lab
    /// against its model; a lab left dirty is deployed again.
    pub async fn run_case(&mut self, case: &Case, family: &str, cell: Cell) -> CaseResult {
        let start = Instant::now();
        let mut result = CaseResult {
            id: case.id.clone(),
            title: case.title.clone(),
            family: family.to_string(),
            cell: cell.to_string(),
            node: cell.node.as_str().into(),
            fabric: cell.fabric.to_string(),
            ip_family: cell.family.as_str().into(),
            outcome: Outcome::Pass,
            secs: 0.0,
            samples: Vec::new(),
            traffic: Vec::new(),
            evidence: None,
            rss: Vec::new(),
            reasons: Vec::new(),
            known: None,
            unreproduced: Vec::new(),
            metrics: BTreeMap::new(),
            timeline: Vec::new(),
        };
        let Some(lab) = self.lab.as_mut() else {
            // An earlier case left the cell dirty and it could not be deployed again.
            let why = self.broken.clone().unwrap_or_else(|| "no cell deployed".into());
            return conclude(case, &cell, result, vec![case::Reason::deploy(why)]);
        };
        let mut clock = Timeline::default();
        let capture = evidence::Capture::start(&self.rt, lab).await;
        let metrics_before = metrics::scrape(&self.rt, lab).await;
        let mut ctx = record::CaseRun::default();
        ctx.measure_start(&self.rt, lab, &case.steps).await;
        clock.lap("before");
        let mut reasons = Vec::new();
        for (i, step) in case.steps.iter().enumerate().filter(|(_, s)| s.runs_on(&cell)) {
            let done = steps::run(&self.rt, lab, &mut ctx, step).await;
            clock.lap(&format!("step {}", i + 1));
            if let Err(e) = done {
                reasons.push(case::Reason {
                    at: case::At::Step(i + 1),
                    step: step.describe(),
                    message: e,
                });
                break;
            }
        }
        for step in case.always.iter().filter(|s| s.runs_on(&cell)) {
            if let Err(e) = steps::run(&self.rt, lab, &mut ctx, step).await {
                reasons.push(case::Reason {
                    at: case::At::Phase(case::Phase::Always),
                    step: step.describe(),
                    message: e,
                });
            }
        }
        // Services a case left behind (its `always` steps failed or forgot them) are
        // deleted before the lab is checked: what they leave is then the case's.
        if !lab.services.is_empty() {
            lab.services.clear();
            if let Err(e) = crate::services::apply(&self.rt, &lab.topo, &[]).await {
                reasons.push(case::Reason {
                    at: case::At::Phase(case::Phase::Always),
                    step: "services deleted".into(),
                    message: e.to_string(),
                });
            }
        }
        clock.lap("always");
        result.traffic = ctx.stop_traffic(&self.rt, lab).await;
        result.samples = std::mem::take(&mut ctx.samples);
        result.rss = std::mem::take(&mut ctx.rss);
        // WD-04 after every case, whatever happened before: nothing missing, nothing
        // stale. A lab left dirty fails the case even when a step failed first.
        let clean = model::wait_exact(&self.rt, lab, Duration::from_secs(10)).await;
        clock.lap("after");
        if let Err(e) = &clean {
            reasons.push(case::Reason {
                at: case::At::Phase(case::Phase::After),
                step: String::new(),
                message: e.clone(),
            });
        }
        let metrics_after = metrics::scrape(&self.rt, lab).await;
        if !metrics_after.is_empty() {
            result.metrics = metrics::summary(&metrics_before, &metrics_after);
        }
        if let Err(e) = steady::check(case, &metrics_before, &metrics_after) {
            reasons.push(case::Reason {
                at: case::At::Phase(case::Phase::Steady),
                step: String::new(),
                message: e,
            });
        }
        if !reasons.is_empty() {
            let dir = self
                .report_dir
                .join("evidence")
                .join(format!("{}-{}", case.id, cell.slug()));
            let summary: Vec<String> = reasons.iter().map(|r| r.to_string()).collect();
            capture.collect(&self.rt, lab, &dir, &summary.join("\n")).await;
            metrics::write(&dir, "before", &metrics_before);
            metrics::write(&dir, "after", &metrics_after);
            result.evidence = Some(dir.display().to_string());
        } else {
            capture.discard(&self.rt, lab).await;
        }
        clock.lap("evidence");
        if clean.is_err() || !lab.down.is_empty() {
            // The next case starts from a clean, re-checked lab.
            if let Err(e) = self.deploy(cell).await {
                tracing::error!("cannot deploy [{cell}] again: {e}");
                self.broken = Some(format!("the cell could not be deployed again after {}: {e}", case.id));
            }
            clock.lap("deployed again");
        }
        result.timeline = clock.laps;
        result.secs = start.elapsed().as_secs_f64();
        conclude(case, &cell, result, reasons)
    }
}

/// Where a case's time went, lap by lap.
struct Timeline {
    last: Instant,
    laps: Vec<(String, f64)>,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            last: Instant::now(),
            laps: Vec::new(),
        }
    }
}

impl Timeline {
    fn lap(&mut self, what: &str) {
        let now = Instant::now();
        let secs = (now - self.last).as_secs_f64();
        self.laps.push((what.to_string(), (secs * 1000.0).round() / 1000.0));
        self.last = now;
    }
}

/// The result's verdict from its reasons, and what the case file's findings make of
/// them.
fn conclude(case: &Case, cell: &Cell, mut result: CaseResult, reasons: Vec<case::Reason>) -> CaseResult {
    let (explained, unused) = case.explain(cell, &reasons);
    result.unreproduced = unused.iter().map(|f| f.why.clone()).collect();
    result.known = explained.map(|fs| fs.iter().map(|f| f.why.as_str()).collect::<Vec<_>>().join(" / "));
    if !reasons.is_empty() {
        let all: Vec<String> = reasons.iter().map(|r| r.to_string()).collect();
        result.outcome = Outcome::Fail(all.join("; then "));
    }
    result.reasons = reasons;
    result
}

/// Every case of `suites` applying to `cell`, with the family it belongs to, or
/// skipped there with why.
pub fn cases_for<'a>(suites: &'a [SuiteFile], cell: &Cell) -> Vec<(&'a Case, &'a str, Result<(), String>)> {
    let mut out = Vec::new();
    for s in suites {
        for c in &s.cases {
            match c.applies(cell) {
                Ok(true) => out.push((c, s.family.as_str(), Ok(()))),
                Ok(false) => {}
                Err(why) => out.push((c, s.family.as_str(), Err(why))),
            }
        }
    }
    out
}

/// The cases of `suites` run over `cells`, a deployment per cell, each case filtered
/// by `filter` (matched against its test name). Each runner takes the next cell
/// not yet taken, so with two runners two cells are up at once (`lab test --jobs`),
/// longest first. Results come back in the order of `cells`.
pub async fn run(
    runners: &mut [Runner],
    suites: &[SuiteFile],
    cells: &[Cell],
    filter: &dyn Fn(&str) -> bool,
) -> Vec<CaseResult> {
    let queue = std::sync::Mutex::new(schedule(suites, cells, filter).into_iter().collect::<VecDeque<_>>());
    let next = || queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
    let work = runners.iter_mut().map(|runner| async {
        let mut done = Vec::new();
        while let Some((k, cell)) = next() {
            done.push((k, run_cell(runner, suites, &cell, filter).await));
        }
        done
    });
    let mut done: Vec<(usize, Vec<CaseResult>)> = futures::future::join_all(work).await.into_iter().flatten().collect();
    done.sort_by_key(|(k, _)| *k);
    done.into_iter().flat_map(|(_, r)| r).collect()
}

/// The order the runners take `cells` in, each with its place in `cells`: the cells
/// with the most cases to run first, the short ones filling the end, so that no runner
/// is left alone with a long cell at the close (ties keep the matrix's order).
pub fn schedule(suites: &[SuiteFile], cells: &[Cell], filter: &dyn Fn(&str) -> bool) -> Vec<(usize, Cell)> {
    let mut order: Vec<(usize, Cell)> = cells.iter().copied().enumerate().collect();
    order.sort_by_cached_key(|(_, cell)| {
        let runs = cases_for(suites, cell)
            .iter()
            .filter(|(c, _, applies)| applies.is_ok() && filter(&test_name(c, cell)))
            .count();
        std::cmp::Reverse(runs)
    });
    order
}

/// One cell: deployed once for its cases in turn, then removed.
async fn run_cell(
    runner: &mut Runner,
    suites: &[SuiteFile],
    cell: &Cell,
    filter: &dyn Fn(&str) -> bool,
) -> Vec<CaseResult> {
    let cases: Vec<_> = cases_for(suites, cell)
        .into_iter()
        .filter(|(c, ..)| filter(&test_name(c, cell)))
        .collect();
    if cases.is_empty() {
        return Vec::new();
    }
    let mut results = Vec::new();
    let deployed = runner.deploy(*cell).await;
    for (case, family, applies) in cases {
        let r = match (&deployed, applies) {
            (_, Err(why)) => skipped(case, family, cell, why),
            (Err(e), Ok(())) => failed(case, family, cell, e.clone()),
            (Ok(()), Ok(())) => runner.run_case(case, family, *cell).await,
        };
        runner.progress.note(&format!("{} {}", verdict(&r.outcome), r.name()));
        results.push(r);
    }
    runner.teardown().await;
    results
}

/// A result for a case that did not run.
pub fn skipped(case: &Case, family: &str, cell: &Cell, why: String) -> CaseResult {
    not_run(case, family, cell, Outcome::Skip(why))
}

/// A result for a case whose cell did not come up.
pub fn failed(case: &Case, family: &str, cell: &Cell, why: String) -> CaseResult {
    let r = not_run(case, family, cell, Outcome::Pass);
    conclude(case, cell, r, vec![case::Reason::deploy(why)])
}

fn not_run(case: &Case, family: &str, cell: &Cell, outcome: Outcome) -> CaseResult {
    CaseResult {
        id: case.id.clone(),
        title: case.title.clone(),
        family: family.to_string(),
        cell: cell.to_string(),
        node: cell.node.as_str().into(),
        fabric: cell.fabric.to_string(),
        ip_family: cell.family.as_str().into(),
        outcome,
        secs: 0.0,
        samples: Vec::new(),
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

/// The failures a run must answer for: any of our speaker's, and those of a reference
/// row (BIRD, FRR) that its case file does not explain as a finding about it.
pub fn unexplained(results: &[CaseResult]) -> usize {
    results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Fail(_)))
        .filter(|r| r.node == "speaker" || r.known.is_none())
        .count()
}

pub fn verdict(o: &Outcome) -> &'static str {
    match o {
        Outcome::Pass => "pass",
        Outcome::Fail(_) => "FAIL",
        Outcome::Skip(_) => "skip",
    }
}

/// Cells `i` of `n` shards takes: every n-th, so each shard gets a mix.
pub fn shard(cells: Vec<Cell>, i: usize, n: usize) -> Vec<Cell> {
    cells
        .into_iter()
        .enumerate()
        .filter(|(k, _)| n == 0 || k % n == i.saturating_sub(1) % n.max(1))
        .map(|(_, c)| c)
        .collect()
}

/// The folder of case files: `suites/` at the workspace root.
pub fn suites_dir(root: &Path) -> PathBuf {
    root.join("suites")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_cells_go_first_and_every_cell_once() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let suites = case::load_dir(&suites_dir(&root)).unwrap();
        let cells = Cell::matrix();
        let runs = |c: &Cell| cases_for(&suites, c).iter().filter(|(.., a)| a.is_ok()).count();
        let order = schedule(&suites, &cells, &|_| true);
        let counts: Vec<usize> = order.iter().map(|(_, c)| runs(c)).collect();
        assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");
        assert!(counts[0] > counts[counts.len() - 1]);
        let mut places: Vec<usize> = order.iter().map(|(k, _)| *k).collect();
        places.sort();
        assert_eq!(places, (0..cells.len()).collect::<Vec<_>>());
        assert!(order.iter().all(|(k, c)| cells[*k] == *c));
        // A filter counts: WD-01 alone does not run on the dual-homed racks (RT-04's
        // alone), so they close the queue.
        let order = schedule(&suites, &cells, &|name| name.starts_with("WD-01 "));
        let dual_homed = cells.iter().filter(|c| c.fabric.opt_in()).count();
        let tail: Vec<String> = order[order.len() - dual_homed..]
            .iter()
            .map(|(_, c)| c.fabric.to_string())
            .collect();
        assert!(tail.iter().all(|f| f.starts_with("dualtor/")), "{tail:?}");
        assert!(!order[0].1.fabric.to_string().starts_with("dualtor/"));
    }
}
