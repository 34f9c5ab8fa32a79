//! Replaying inputs against the core ([`Node`]) with a simulated kernel FIB that
//! answers the core's commands as the kernel would, and the core's invariants
//! checked after every step. The replay tests (`tests/replay.rs`) run recorded and
//! hand-written event files through it; a fuzzer can drive it the same way.
//!
//! An event file has one JSON object per line (`#` lines are comments):
//! `{"at_ms": 10, "input": …}` with an [`Input`] as `speaker run --record` writes
//! it, or `{"at_ms": 10, "kernel_drops": ["10.244.1.0/26"]}`: the kernel removes
//! these routes of ours without telling anyone (as it does to routes through a
//! link that goes down). FIB answers in a recorded file are skipped: the simulated
//! FIB gives its own.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::kernel_view::{KernelEvent, KernelRoute, KernelView, RouteKind, ViewConfig};
use crate::messages::{FibCmd, FibError, FibOp, FibReport};
use crate::node::{Input, Node, Output};

/// One line of an event file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Line {
    #[serde(default)]
    pub at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Input>,
    /// Routes of ours the kernel drops silently.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kernel_drops: Vec<IpNet>,
}

/// Reads an event file's text; errors name the line.
pub fn parse(text: &str) -> Result<Vec<Line>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

/// The kernel's table as the harness models it, apart from the core's own view:
/// our routes (what we wrote, less what it dropped) and the routes of others,
/// by (prefix, metric, interface), gone when their interface goes down.
#[derive(Debug, Default)]
struct SimFib {
    ours: BTreeMap<IpNet, Vec<IpAddr>>,
    others: BTreeSet<(IpNet, u32, Option<u32>)>,
}

impl SimFib {
    fn held_by_other(&self, prefix: &IpNet) -> bool {
        self.others
            .range((*prefix, 0, None)..)
            .next()
            .is_some_and(|(p, ..)| p == prefix)
    }
}

pub struct Replay {
    node: Node,
    sim: SimFib,
    /// The kernel seen through a view of the harness's own, to tell which next
    /// hops the kernel takes.
    kernel: KernelView,
}

/// A step's outputs, as the expected files hold them.
pub type Step = Vec<Output>;

impl Replay {
    pub fn new(config: Config) -> Replay {
        let kernel = KernelView::new(ViewConfig {
            pools: config.pools.clone(),
            pod_interface_prefix: config.pod_interface_prefix.clone(),
            protocol: config.fib.protocol,
            table: config.fib.table.0,
        });
        Replay {
            node: Node::new(config),
            sim: SimFib::default(),
            kernel,
        }
    }

    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Why the kernel would refuse `nh` as a gateway now, if it would.
    pub fn unresolvable(&self, nh: IpAddr) -> Option<&'static str> {
        self.kernel.unresolvable(nh)
    }

    /// Our routes in the simulated kernel.
    pub fn kernel_routes(&self) -> &BTreeMap<IpNet, Vec<IpAddr>> {
        &self.sim.ours
    }

    /// Applies one line; answers FIB commands until the core has nothing more to
    /// say; returns what it said, or the invariant it broke.
    pub fn step(&mut self, line: &Line) -> Result<Step, String> {
        let now = Duration::from_millis(line.at_ms);
        for p in &line.kernel_drops {
            self.sim.ours.remove(p);
        }
        let mut outputs = Vec::new();
        match &line.input {
            // The simulated FIB answers instead.
            Some(Input::Fib(_)) | None => {}
            Some(input) => {
                if let Input::Kernel(events) = input {
                    self.kernel.apply(events);
                    self.own_routes_in(events);
                }
                self.node.handle(now, input.clone());
            }
        }
        let mut rounds = 0;
        loop {
            let out = self.node.flush();
            if out.is_empty() {
                break;
            }
            rounds += 1;
            if rounds > 1000 {
                return Err("the core and the FIB keep answering each other: a loop".into());
            }
            let mut reports = Vec::new();
            for o in &out {
                if let Output::Fib(cmd) = o {
                    reports.push(self.fib(cmd)?);
                }
            }
            outputs.extend(out);
            for r in reports {
                self.node.handle(now, Input::Fib(r));
            }
        }
        self.check()?;
        Ok(outputs)
    }

    /// What the kernel events say of the table: our own protocol's routes (a dump
    /// at start holds the ones a previous run left), and everyone else's.
    fn own_routes_in(&mut self, events: &[KernelEvent]) {
        for e in events {
            match e {
                KernelEvent::Dump { routes, .. } => {
                    for r in routes {
                        self.table_route(r, true);
                    }
                }
                KernelEvent::Route { route, present } => self.table_route(route, *present),
                KernelEvent::Link { index, up: false, .. } | KernelEvent::LinkGone { index } => {
                    self.sim.others.retain(|(_, _, oif)| *oif != Some(*index));
                }
                _ => {}
            }
        }
    }

    fn table_route(&mut self, r: &KernelRoute, present: bool) {
        let config = self.node.config();
        if r.table != config.fib.table.0 || r.kind == RouteKind::Other {
            return;
        }
        let key = (r.prefix, r.priority, r.oif);
        match (r.protocol == config.fib.protocol, present) {
            (true, true) => {
                self.sim.ours.insert(r.prefix, r.gateways.clone());
            }
            (true, false) => {
                self.sim.ours.remove(&r.prefix);
            }
            (false, true) => {
                self.sim.others.insert(key);
            }
            (false, false) => {
                self.sim.others.remove(&key);
            }
        }
    }

    fn fib(&mut self, cmd: &FibCmd) -> Result<FibReport, String> {
        let op = match cmd {
            FibCmd::Read => return Ok(FibReport::State(self.sim.ours.clone().into_iter().collect())),
            FibCmd::Apply(op) => op.clone(),
        };
        let held = self.sim.held_by_other(&op.prefix());
        // The kernel takes a gateway only on a link it has a route onto.
        let unreachable = match &op {
            FibOp::Add { next_hops, .. } | FibOp::Replace { next_hops, .. } => {
                next_hops.iter().find_map(|nh| self.kernel.unresolvable(*nh))
            }
            FibOp::Remove { .. } => None,
        };
        let error = match &op {
            FibOp::Add { .. } | FibOp::Replace { .. } if unreachable.is_some() => Some(FibError::Failed(format!(
                "Network is unreachable ({})",
                unreachable.unwrap_or_default()
            ))),
            FibOp::Add { prefix, next_hops } => {
                if held {
                    Some(FibError::HeldByOther)
                } else {
                    self.sim.ours.insert(*prefix, next_hops.clone());
                    None
                }
            }
            FibOp::Replace { prefix, next_hops } => {
                if held && !self.sim.ours.contains_key(prefix) {
                    return Err(format!(
                        "{prefix}: a replace where a route of another owner is and none of ours: it would overwrite theirs"
                    ));
                }
                self.sim.ours.insert(*prefix, next_hops.clone());
                None
            }
            FibOp::Remove { prefix } => {
                self.sim.ours.remove(prefix);
                None
            }
        };
        Ok(FibReport::Done { op, error })
    }

    /// The invariants, once the core and the FIB are quiet: what the core wants in
    /// the kernel is the RIB's best routes; the kernel holds exactly that (less the
    /// prefixes another owner holds, plus ours from a previous run still waiting
    /// for the peers), and the core knows it.
    pub fn check(&self) -> Result<(), String> {
        if !self.node.started() {
            // Before the start the core has not been told of the kernel's routes.
            return Ok(());
        }
        let view = self.node.fib_check_view();
        let mut problems = Vec::new();
        for (prefix, hops) in &view.best {
            match view.wanted.get(prefix) {
                Some(w) if w == hops => {}
                w => problems.push(format!(
                    "{prefix}: the RIB's best is via {hops:?}, the core wants {w:?}"
                )),
            }
        }
        for prefix in view.wanted.keys().filter(|p| !view.best.contains_key(p)) {
            problems.push(format!("{prefix}: wanted in the kernel, not a best route of the RIB"));
        }
        for (prefix, hops) in &self.sim.ours {
            if view.stale.contains(prefix) {
                continue;
            }
            match view.wanted.get(prefix) {
                Some(w) if w == hops => {}
                Some(w) => problems.push(format!("{prefix}: the kernel has {hops:?}, the RIB wants {w:?}")),
                None => problems.push(format!("{prefix}: in the kernel, not wanted (stale)")),
            }
            if self.sim.held_by_other(prefix) {
                problems.push(format!("{prefix}: ours beside a route of another owner"));
            }
        }
        for (prefix, hops) in &view.wanted {
            if !self.sim.ours.contains_key(prefix) && !self.sim.held_by_other(prefix) {
                problems.push(format!("{prefix}: wanted via {hops:?}, missing from the kernel"));
            }
        }
        let believed = view.installed.len() == self.sim.ours.len()
            && self.sim.ours.iter().all(|(p, h)| view.installed.get(p) == Some(h));
        if !believed && problems.is_empty() {
            let installed: BTreeMap<&IpNet, &Vec<IpAddr>> = view.installed.iter().collect();
            problems.push(format!(
                "the core believes the kernel holds {installed:?}, it holds {:?}",
                self.sim.ours
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            problems.sort();
            Err(problems.join("; "))
        }
    }
}
