//! The conformance suite as a test target: one test per case of `suites/*.yaml` and
//! cell of the matrix, named as the reports name it (`WD-01 pod delete [node=speaker
//! fabric=tor/frr v4]`), so `cargo test -p suites -- WD-01` or `-- fabric=tor/bird`
//! picks cases and cells. The lab's runner does the work, as for `lab test`: each
//! cell is rendered and deployed once, for its cases in turn.
//!
//! By default the smoke subset runs (the cases marked `smoke`, on a few cells), as
//! `make test` wants; `LAB_SUITE=full` runs every case on every cell (`make
//! conformance`), and `LAB_SHARD=I/N` takes every N-th cell from the I-th. Reports go
//! to `target/lab-report/conformance/`. Needs root and a Docker engine.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use lab::render::{Cell, Fabric, Family, NodeSpeaker, Router};
use lab::suite::{self, CaseResult, Outcome, Runner};
use libtest_mimic::{Arguments, Failed, Trial};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("suites/ has a parent")
        .to_path_buf()
}

fn target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// The cells of the smoke subset: ours, on a ToR fabric and a route reflector.
fn smoke_cells() -> Vec<Cell> {
    vec![
        Cell {
            node: NodeSpeaker::Speaker,
            fabric: Fabric::Tor(Router::Frr),
            family: Family::V4,
        },
        Cell {
            node: NodeSpeaker::Speaker,
            fabric: Fabric::Rr(Router::Bird),
            family: Family::V4,
        },
    ]
}

struct State {
    rt: tokio::runtime::Runtime,
    runner: Option<Runner>,
    /// Why the runner could not start (no engine, no images), for every test.
    broken: Option<String>,
    results: Vec<CaseResult>,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

fn with_state<T>(f: impl FnOnce(&mut State) -> T) -> T {
    let mut guard = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let state = guard.get_or_insert_with(|| {
        let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
        let started = rt.block_on(async {
            let runner = Runner::new(target().join("lab-cells"), report_dir(), true).await?;
            let images = [
                lab::images::build_base(&runner.rt, &root(), false).await,
                lab::images::build_speaker(&runner.rt, &root(), false).await,
            ];
            for i in images {
                i.map_err(|e| format!("building the images: {e}"))?;
            }
            Ok::<_, String>(runner)
        });
        let (runner, broken) = match started {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(e)),
        };
        State {
            rt,
            runner,
            broken,
            results: Vec::new(),
        }
    });
    f(state)
}

/// The whole matrix's reports in `conformance/`, anything less in `partial/`, as `lab
/// test` writes them.
fn report_dir() -> PathBuf {
    let full = std::env::var("LAB_SUITE").is_ok_and(|v| v == "full")
        && std::env::var_os("LAB_SHARD").is_none()
        && Arguments::from_args().filter.is_none();
    suite::select::default_report_dir(&target(), full)
}

fn main() {
    let mut args = Arguments::from_args();
    // One lab at a time: the cases of a cell share its deployment.
    args.test_threads = Some(1);
    let suites = match suite::case::load_dir(&root().join("suites")) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let full = std::env::var("LAB_SUITE").is_ok_and(|v| v == "full");
    let mut cells = if full { Cell::matrix() } else { smoke_cells() };
    if let Ok(spec) = std::env::var("LAB_SHARD") {
        let (i, n) = spec
            .split_once('/')
            .and_then(|(i, n)| Some((i.parse().ok()?, n.parse().ok()?)))
            .unwrap_or_else(|| panic!("LAB_SHARD={spec}: write I/N"));
        cells = suite::shard(cells, i, n);
    }
    let mut trials = Vec::new();
    for cell in cells {
        for (case, family, applies) in suite::cases_for(&suites, &cell) {
            if !full && !case.smoke {
                continue;
            }
            let name = suite::test_name(case, &cell);
            let (case, family) = (case.clone(), family.to_string());
            match applies {
                Err(why) => {
                    let r = suite::skipped(&case, &family, &cell, why);
                    trials.push(Trial::test(name, move || {
                        with_state(|s| s.results.push(r));
                        Ok(())
                    }));
                }
                Ok(()) => trials.push(Trial::test(name, move || run(&case, &family, cell))),
            }
        }
    }
    let run = suite::select::RunInfo {
        scope: if report_dir().ends_with("conformance") {
            "full"
        } else {
            "partial"
        }
        .into(),
        selection: std::env::args().skip(1).collect::<Vec<_>>().join(" "),
        started: lab::clock::now(),
    };
    if !args.list {
        if let Err(e) = suite::select::prepare_report_dir(&report_dir(), &run, false) {
            eprintln!("{e}");
            std::process::exit(2);
        }
    }
    let conclusion = libtest_mimic::run(&args, trials);
    with_state(|s| {
        if let Some(runner) = s.runner.as_mut() {
            s.rt.block_on(runner.teardown());
        }
        if !s.results.is_empty() {
            if let Err(e) = suite::report::write_all(&s.results, &report_dir()) {
                eprintln!("cannot write the reports: {e}");
            }
        }
    });
    conclusion.exit();
}

fn run(case: &suite::Case, family: &str, cell: Cell) -> Result<(), Failed> {
    with_state(|s| {
        let Some(runner) = s.runner.as_mut() else {
            return Err(Failed::from(s.broken.clone().unwrap_or_default()));
        };
        let deployed = runner.lab.as_ref().map(|l| l.cell) == Some(cell);
        if !deployed {
            if let Err(e) = s.rt.block_on(runner.deploy(cell)) {
                let r = suite::failed(case, family, &cell, e.clone());
                s.results.push(r);
                return Err(Failed::from(e));
            }
        }
        let r = s.rt.block_on(runner.run_case(case, family, cell));
        let verdict = match (&r.outcome, &r.known) {
            // As `lab test` counts it: a finding the case file explains by its symptom
            // is a result about BIRD or FRR, not a failure of the suite.
            (Outcome::Fail(why), Some(known)) => {
                eprintln!("{}: a known finding: {known}\n  seen: {why}", r.name());
                Ok(())
            }
            (Outcome::Fail(why), None) => Err(Failed::from(why.clone())),
            _ => Ok(()),
        };
        s.results.push(r);
        verdict
    })
}
