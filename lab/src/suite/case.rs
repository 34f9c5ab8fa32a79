//! Conformance cases as data: `suites/<family>.yaml` files hold the cases of one
//! family of the catalogue (`SES`, `RT`, ...), each with an ID, a title, the cells
//! it applies to (and the ones left out, with why), and its steps: actions on the
//! lab and expectations retried until they hold or a deadline passes. Errors name
//! the file, the line where YAML knows it, and the field.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::step::{Step, What};
use crate::render::{Cell, Fabric, Family, NodeSpeaker};

#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error("{file}: cannot read: {source}")]
    Read { file: PathBuf, source: std::io::Error },
    #[error("{file}: {msg}")]
    Invalid { file: PathBuf, msg: String },
}

/// Why a case failed: where, and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub at: At,
    /// The step as the case file writes it, when a step failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub step: String,
    pub message: String,
}

impl Reason {
    pub fn deploy(message: String) -> Reason {
        Reason {
            at: At::Phase(Phase::Deploy),
            step: String::new(),
            message,
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.step.is_empty() {
            write!(f, "{}: {}", self.at, self.message)
        } else {
            write!(f, "{} {}: {}", self.at, self.step, self.message)
        }
    }
}

/// One file of cases.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteFile {
    /// The catalogue's family: SES, RT, DP, WD, GR, RB.
    pub family: String,
    pub title: String,
    pub cases: Vec<Case>,
    #[serde(skip)]
    pub file: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub id: String,
    pub title: String,
    /// The cells it runs on; empty lists mean every value.
    #[serde(default)]
    pub cells: CellFilter,
    /// Cells left out, each with why: a case that does not make sense there.
    #[serde(default)]
    pub skip: Vec<Skip>,
    /// What is known of failures of the reference rows on some cells, by symptom: the
    /// step that fails and what it says. A failure every reason of which a finding
    /// matches is explained (a result about BIRD or FRR, not a skip); any other is not.
    #[serde(default)]
    pub findings: Vec<Finding>,
    /// Part of the smoke subset `make test` runs.
    #[serde(default)]
    pub smoke: bool,
    pub steps: Vec<Step>,
    /// Run after the steps whatever happened, to give the lab back as it was.
    #[serde(default)]
    pub always: Vec<Step>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CellFilter {
    #[serde(default)]
    pub node: Vec<String>,
    /// `mesh`, `tor`, `rr` (any implementation), or `tor/frr` and the like.
    #[serde(default)]
    pub fabric: Vec<String>,
    #[serde(default)]
    pub family: Vec<String>,
}

impl CellFilter {
    /// Whether a case with these cells runs on `cell`. A fabric that only the cases
    /// naming it run on (`Fabric::opt_in`) matches only when named.
    pub fn matches(&self, cell: &Cell) -> bool {
        self.matches_any_fabric(cell) && (!cell.fabric.opt_in() || !self.fabric.is_empty())
    }

    /// Any fabric matches an empty list: a `skip` or a finding without `fabric`
    /// applies on every fabric.
    fn matches_any_fabric(&self, cell: &Cell) -> bool {
        (self.node.is_empty() || self.node.iter().any(|n| n == cell.node.as_str()))
            && (self.fabric.is_empty()
                || self
                    .fabric
                    .iter()
                    .any(|f| *f == cell.fabric.to_string() || f == cell.fabric.shape()))
            && (self.family.is_empty() || self.family.iter().any(|f| f == cell.family.as_str()))
    }

    fn check(&self) -> Result<(), String> {
        for n in &self.node {
            n.parse::<NodeSpeaker>()?;
        }
        for f in &self.fabric {
            Fabric::check_name(f)?;
        }
        for f in &self.family {
            f.parse::<Family>()?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Skip {
    #[serde(flatten)]
    pub cells: CellFilter,
    pub why: String,
}

/// A failure of a reference row the suite knows, by symptom.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    /// The node speakers, the fabrics and the families it is seen on: all three named
    /// (never our speaker: its failures are failures).
    #[serde(flatten)]
    pub cells: CellFilter,
    /// The step that fails: its number in `steps` (from 1), `always` (putting the
    /// lab back), or `after` (WD-04 after the case).
    pub step: At,
    /// What the failure says, `*` standing for any text: one pattern, or several. A
    /// message that lists several things wrong (`; ` between them) is explained only
    /// if each of them matches one.
    pub message: Patterns,
    pub why: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Patterns {
    One(String),
    Many(Vec<String>),
}

impl Patterns {
    pub fn list(&self) -> Vec<&str> {
        match self {
            Patterns::One(p) => vec![p.as_str()],
            Patterns::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// The things wrong a failure's message lists, without the deadline it says first
/// (`not within 2.0 s: a; b` is `a` and `b`).
fn items(message: &str) -> Vec<&str> {
    let rest = match message.strip_prefix("not within ") {
        Some(r) => r.split_once(" s: ").map_or(message, |(_, r)| r),
        None => message,
    };
    // `; ` between things wrong, not inside a command quoted in backticks (an
    // `output` check's shell line has its own).
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (k, c) in rest.char_indices() {
        match c {
            '`' => quoted = !quoted,
            ';' if !quoted && rest[k..].starts_with("; ") => {
                out.push(&rest[start..k]);
                start = k + 2;
            }
            _ => {}
        }
    }
    out.push(&rest[start..]);
    out
}

/// Where in a case a failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", untagged)]
pub enum At {
    /// A step of `steps`, counted from 1.
    Step(usize),
    /// One of the others, by name: `always`, `after`, `steady`, `deploy`.
    Phase(Phase),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// A step of `always`, putting the lab back.
    Always,
    /// WD-04 after the case.
    After,
    /// Sessions a case touches none of stayed up (`steady.rs`).
    Steady,
    /// The cell did not come up (or back up after an earlier case).
    Deploy,
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            At::Step(n) => write!(f, "step {n}"),
            At::Phase(Phase::Always) => f.write_str("putting the lab back"),
            At::Phase(Phase::After) => f.write_str("WD-04 nothing lingers, after the case"),
            At::Phase(Phase::Steady) => f.write_str("sessions stayed up, after the case"),
            At::Phase(Phase::Deploy) => f.write_str("the cell did not come up"),
        }
    }
}

/// Whether `text` is `pattern`, each `*` of which stands for any text.
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return pattern == text;
    };
    if text.len() < first.len() + last.len() || !text.starts_with(first) || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for piece in middle {
        match rest.find(piece) {
            Some(k) => rest = &rest[k + piece.len()..],
            None => return false,
        }
    }
    true
}

/// Reads and checks one file of cases.
pub fn load(path: &Path) -> Result<SuiteFile, CaseError> {
    let text = std::fs::read_to_string(path).map_err(|source| CaseError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

pub fn parse(text: &str, path: &Path) -> Result<SuiteFile, CaseError> {
    let invalid = |msg: String| CaseError::Invalid {
        file: path.to_path_buf(),
        msg,
    };
    let mut suite: SuiteFile = serde_yaml::from_str(text).map_err(|e| invalid(e.to_string()))?;
    suite.file = path.to_path_buf();
    let mut ids = std::collections::HashSet::new();
    for (i, c) in suite.cases.iter().enumerate() {
        let at = |field: &str| format!("cases[{i}] ({}).{field}", c.id);
        if !c.id.starts_with(&format!("{}-", suite.family)) {
            return Err(invalid(format!(
                "{}: {} is not of family {}",
                at("id"),
                c.id,
                suite.family
            )));
        }
        if !ids.insert(c.id.clone()) {
            return Err(invalid(format!("{}: {} appears twice", at("id"), c.id)));
        }
        c.cells.check().map_err(|m| invalid(format!("{}: {m}", at("cells"))))?;
        for (j, s) in c.skip.iter().enumerate() {
            s.cells
                .check()
                .map_err(|m| invalid(format!("{}: {m}", at(&format!("skip[{j}]")))))?;
        }
        for (j, f) in c.findings.iter().enumerate() {
            let at = at(&format!("findings[{j}]"));
            f.cells.check().map_err(|m| invalid(format!("{at}: {m}")))?;
            if f.cells.node.is_empty() || f.cells.fabric.is_empty() || f.cells.family.is_empty() {
                return Err(invalid(format!(
                    "{at}: a finding names its node speakers, fabrics and families (node, fabric, family)"
                )));
            }
            if f.cells.node.iter().any(|n| n == "speaker") {
                return Err(invalid(format!(
                    "{at}: a finding about our speaker is a failure, not a finding: fix the speaker, or the case"
                )));
            }
            match f.step {
                At::Step(n) if n == 0 || n > c.steps.len() => {
                    return Err(invalid(format!("{at}.step: the case has steps 1 to {}", c.steps.len())))
                }
                At::Phase(Phase::Always) if c.always.is_empty() => {
                    return Err(invalid(format!("{at}.step: the case has no always steps")))
                }
                _ => {}
            }
            if f.message.list().iter().any(|m| m.trim_matches('*').trim().is_empty()) {
                return Err(invalid(format!(
                    "{at}.message: say what the failure says, not only `*`"
                )));
            }
        }
    }
    Ok(suite)
}

/// Every `*.yaml` file of a folder, in name order.
pub fn load_dir(dir: &Path) -> Result<Vec<SuiteFile>, CaseError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| CaseError::Read {
            file: dir.to_path_buf(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut suites: Vec<SuiteFile> = files.iter().map(|f| load(f)).collect::<Result<_, _>>()?;
    // The catalogue's order.
    let order = |f: &str| {
        ["SES", "RT", "DP", "WD", "GR", "RB", "SVC", "POL"]
            .iter()
            .position(|x| *x == f)
            .unwrap_or(99)
    };
    suites.sort_by_key(|s| order(&s.family));
    Ok(suites)
}

impl Case {
    /// Whether a step of the case may reset a BGP session on purpose
    /// ([`super::step::Action::may_reset_sessions`]). Where none does, every
    /// session must stay up through the case (`steady.rs`).
    pub fn touches_sessions(&self) -> bool {
        self.steps
            .iter()
            .chain(&self.always)
            .any(|s| matches!(&s.what, What::Act(a, _) if a.may_reset_sessions()))
    }

    /// The findings about `cell`.
    pub fn findings_on(&self, cell: &Cell) -> impl Iterator<Item = &Finding> {
        let cell = *cell;
        self.findings.iter().filter(move |f| f.cells.matches_any_fabric(&cell))
    }

    /// What explains a failure on `cell` with these reasons: the findings matching
    /// them, when every thing wrong that each says is matched by one (`None`: it is
    /// unexplained). Also the findings about the cell that matched nothing.
    pub fn explain<'a>(&'a self, cell: &Cell, reasons: &[Reason]) -> (Option<Vec<&'a Finding>>, Vec<&'a Finding>) {
        let mut used: Vec<&Finding> = Vec::new();
        let mut all_matched = !reasons.is_empty();
        for r in reasons {
            for item in items(&r.message) {
                let found = self.findings_on(cell).find(|f| {
                    let step = match (f.step, r.at) {
                        (At::Phase(Phase::Always), At::Phase(Phase::Always)) => true,
                        (a, b) => a == b,
                    };
                    step && f.message.list().iter().any(|p| glob(p, item))
                });
                match found {
                    Some(f) => {
                        if !used.iter().any(|u| std::ptr::eq(*u, f)) {
                            used.push(f);
                        }
                    }
                    None => all_matched = false,
                }
            }
        }
        let unused = self
            .findings_on(cell)
            .filter(|f| !used.iter().any(|u| std::ptr::eq(*u, *f)))
            .collect();
        (all_matched.then_some(used), unused)
    }

    /// Whether the case runs on `cell`: `Err` with why when it is left out there.
    pub fn applies(&self, cell: &Cell) -> Result<bool, String> {
        if !self.cells.matches(cell) {
            return Ok(false);
        }
        match self.skip.iter().find(|s| s.cells.matches_any_fabric(cell)) {
            Some(s) => Err(s.why.clone()),
            None => Ok(true),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::suite::step::{duration, Action};

    fn parse_str(s: &str) -> Result<SuiteFile, CaseError> {
        parse(s, Path::new("suites/x.yaml"))
    }

    #[test]
    fn a_case_reads_and_applies_to_its_cells() {
        let s = parse_str(
            r#"
family: WD
title: Withdrawal
cases:
  - id: WD-01
    title: pod delete
    cells: {fabric: [tor]}
    skip: [{node: [frr], why: "FRR has no borrowed IPs"}]
    steps:
      - pod_add: {node: n1, name: wd01, ip: borrowed}
      - pod_del: {node: n1, name: wd01}
        time: {prefix: "{pod.wd01}/32", deleted: true, budget: 1s}
      - expect: {fib: {nodes: "others:n1", lacks: ["{pod.wd01}/32"]}, within: 2s}
"#,
        )
        .unwrap();
        let c = &s.cases[0];
        let cell = |node, fabric: &str| Cell {
            node,
            fabric: fabric.parse().unwrap(),
            family: Family::V4,
        };
        assert_eq!(c.applies(&cell(NodeSpeaker::Speaker, "tor/bird")), Ok(true));
        assert_eq!(c.applies(&cell(NodeSpeaker::Speaker, "mesh")), Ok(false));
        assert!(c.applies(&cell(NodeSpeaker::Frr, "tor/frr")).is_err());
        assert_eq!(duration("500ms").unwrap(), Duration::from_millis(500));
    }

    #[test]
    fn only_cases_that_name_it_run_on_the_dual_tor_rack() {
        let s = parse_str(
            r#"
family: RT
title: Routes
cases:
  - id: RT-01
    title: everywhere
    skip: [{node: [frr], why: "not FRR"}]
    steps: [{wait: 1s}]
  - id: RT-04
    title: ECMP
    cells: {fabric: [dualtor]}
    skip: [{node: [frr], why: "not FRR"}]
    steps:
      - wait: 1s
      - expect: {fib: {has: ["{n1.block6}"], next_hops: 2}}
        family: dual
"#,
        )
        .unwrap();
        let cell = |node, fabric: &str, family| Cell {
            node,
            fabric: fabric.parse().unwrap(),
            family,
        };
        let (everywhere, ecmp) = (&s.cases[0], &s.cases[1]);
        let dual_tor = cell(NodeSpeaker::Speaker, "dualtor/frr", Family::V4);
        assert_eq!(everywhere.applies(&dual_tor), Ok(false));
        assert_eq!(
            everywhere.applies(&cell(NodeSpeaker::Speaker, "tor/frr", Family::V4)),
            Ok(true)
        );
        assert_eq!(ecmp.applies(&dual_tor), Ok(true));
        assert_eq!(
            ecmp.applies(&cell(NodeSpeaker::Speaker, "tor/frr", Family::V4)),
            Ok(false)
        );
        // A skip that names no fabric holds on the opt-in fabric too.
        assert!(ecmp
            .applies(&cell(NodeSpeaker::Frr, "dualtor/bird", Family::V4))
            .is_err());
        let v6 = &ecmp.steps[1];
        assert!(!v6.runs_on(&dual_tor));
        assert!(v6.runs_on(&cell(NodeSpeaker::Speaker, "dualtor/frr", Family::Dual)));
        assert!(ecmp.steps[0].runs_on(&dual_tor));
        let e = parse_str(
            "family: RT\ntitle: t\ncases:\n  - id: RT-04\n    title: x\n    steps: [{wait: 1s, family: v6only}]\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("v6only"), "{e}");
    }

    #[test]
    fn mistakes_are_named() {
        let e = parse_str("family: WD\ntitle: t\ncases:\n  - id: RT-01\n    title: x\n    steps: []\n").unwrap_err();
        assert!(
            e.to_string().contains("cases[0] (RT-01).id: RT-01 is not of family WD"),
            "{e}"
        );
        let e = parse_str(
            "family: WD\ntitle: t\ncases:\n  - id: WD-01\n    title: x\n    steps: [{wait: 2s, pause: n1}]\n",
        )
        .unwrap_err();
        // Read into a step once: the error says where, by line.
        assert!(
            e.to_string().contains("steps: a step holds exactly one") && e.to_string().contains("line 6"),
            "{e}"
        );
        let e = parse_str(
            "family: WD\ntitle: t\ncases:\n  - id: WD-01\n    title: x\n    steps:\n      - wait: 1s\n        time: {prefix: x, budget: 1s}\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("time: goes on an action"), "{e}");
        let e = parse_str(
            "family: WD\ntitle: t\ncases:\n  - id: WD-01\n    title: x\n    steps:\n      - expect: {fib: {has: [x]}, ping: all}\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("expect: holds exactly one of"), "{e}");
        let e = parse_str("family: WD\ntitle: t\ncases:\n  - id: WD-01\n    title: x\n    steps: [{wiat: 2s}]\n")
            .unwrap_err();
        assert!(e.to_string().contains("unknown field `wiat`"), "{e}");
        assert!(e.to_string().contains("line"), "{e}");
        let e = parse_str(
            "family: WD\ntitle: t\ncases:\n  - id: WD-01\n    title: x\n    cells: {fabric: [ring]}\n    steps: []\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown fabric"), "{e}");
    }

    #[test]
    fn a_message_splits_into_things_wrong_but_not_inside_a_quoted_command() {
        assert_eq!(
            items("not within 10.0 s: a still in n1; b still in n2"),
            ["a still in n1", "b still in n2"]
        );
        assert_eq!(
            items("x1: no line of `n=$(cmd | wc -l); echo \"$n\"` holds all of [\"0\"]; it printed:\n1"),
            [
                "x1: no line of `n=$(cmd | wc -l); echo \"$n\"` holds all of [\"0\"]",
                "it printed:\n1"
            ]
        );
    }

    #[test]
    fn readiness_and_a_pods_teardown_read_as_steps() {
        let case = |step: &str| {
            parse_str(&format!(
                "family: SVC\ntitle: t\ncases:\n  - id: SVC-03\n    title: x\n    steps:\n      - {step}\n"
            ))
        };
        // The one step of a case that parsed, as an action.
        let act = |step: &str| match case(step).unwrap().cases.remove(0).steps.remove(0).what {
            crate::suite::step::What::Act(a, None) => a,
            other => panic!("{other:?}"),
        };
        let Action::ServiceReady(r) = act("service_ready: {name: web, pods: [a], ready: false}") else {
            panic!("not service_ready")
        };
        assert_eq!(
            (r.name.as_str(), r.pods.as_slice(), r.ready),
            ("web", &["a".to_string()][..], false)
        );
        // Readiness changes a route in no kernel: nothing to time from.
        let e = case("service_ready: {name: web, pods: [a], ready: true}\n        time: {prefix: x, budget: 1s}")
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("not on service_add, service_del or service_ready"),
            "{e}"
        );
        let e = case("service_ready: {name: web, pods: [a]}").unwrap_err();
        assert!(e.to_string().contains("missing field `ready`"), "{e}");
        for (step, teardown) in [
            (
                "pod_del: {node: n1, name: a, teardown: veth}",
                crate::pods::Teardown::Veth,
            ),
            ("pod_del: {node: n1, name: a}", crate::pods::Teardown::Routes),
        ] {
            let Action::PodDel(p) = act(step) else {
                panic!("not pod_del: {step}")
            };
            assert_eq!(p.teardown, teardown, "{step}");
        }
        let e = case("pod_del: {node: n1, name: a, teardown: cni}").unwrap_err();
        assert!(e.to_string().contains("unknown variant `cni`"), "{e}");
    }

    #[test]
    fn impair_steps_read_as_lab_impair_takes_them() {
        let case = |step: &str| {
            parse_str(&format!(
                "family: SES\ntitle: t\ncases:\n  - id: SES-01\n    title: x\n    steps:\n      - {step}\n"
            ))
        };
        let s = case("impair: {node: n1, iface: eth1, loss: 30}").unwrap();
        let What::Act(Action::Impair(i), None) = &s.cases[0].steps[0].what else {
            panic!("{:?}", s.cases[0].steps[0].what)
        };
        assert_eq!((i.impairment().loss, i.clear), (Some(30.0), false));
        assert!(case("impair: {node: n1, clear: true}").is_ok());
        for (bad, why) in [
            ("impair: {node: n1, loss: 130}", "a percentage"),
            ("impair: {node: n1}", "nothing to do"),
            ("impair: {node: n1, loss: 5, clear: true}", "takes nothing else"),
        ] {
            let e = case(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
