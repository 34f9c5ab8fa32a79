//! The conformance suite and its mutants: test, report, render, mutants.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::args::*;
use crate::EXIT_NOT_HOLDING;
use lab::{images, render};

pub async fn test(a: TestArgs, quiet: bool) -> Result<ExitCode> {
    let TestArgs {
        cases,
        cells,
        shard,
        smoke,
        jobs,
        suites,
        report,
        overwrite,
        json,
        list,
    } = a;
    let mut suite_files = lab::suite::case::load_dir(&suites)?;
    if smoke {
        for s in &mut suite_files {
            s.cases.retain(|c| c.smoke);
        }
    }
    let what_cells = cells.describe();
    let every_cell = cells.is_empty() && shard.is_none();
    let mut cell_list = match cells.cells() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lab: error: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    if let Some(spec) = &shard {
        let (i, n) = spec
            .split_once('/')
            .and_then(|(i, n)| Some((i.parse::<usize>().ok()?, n.parse::<usize>().ok()?)))
            .filter(|(i, n)| *i >= 1 && i <= n)
            .with_context(|| format!("--shard {spec}: write I/N, 1 <= I <= N"))?;
        cell_list = lab::suite::shard(cell_list, i, n);
    }
    let selection = lab::suite::select::Selection {
        cells: cell_list,
        full: every_cell && cases.is_empty() && !smoke,
        terms: cases.clone(),
    };
    if let Err(e) = selection.check(&suite_files, &what_cells) {
        eprintln!("lab: error: {e}");
        return Ok(ExitCode::from(2));
    }
    let cells = selection.cells.clone();
    let filter = |name: &str| selection.takes(name);
    if list {
        // Written, not printed: a reader that stops early (`| head`) ends the
        // listing, not the program with a panic.
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        for cell in &cells {
            for (case, _, applies) in lab::suite::cases_for(&suite_files, cell) {
                let name = lab::suite::test_name(case, cell);
                if filter(&name) {
                    let line = match applies {
                        Ok(()) => writeln!(out, "{name}"),
                        Err(why) => writeln!(out, "{name} (left out: {why})"),
                    };
                    if line.is_err() {
                        return Ok(ExitCode::SUCCESS);
                    }
                }
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let report_dir =
        report.unwrap_or_else(|| lab::suite::select::default_report_dir(Path::new("target"), selection.full));
    let run_info = lab::suite::select::RunInfo {
        scope: if selection.full { "full" } else { "partial" }.into(),
        selection: std::env::args().skip(1).collect::<Vec<_>>().join(" "),
        started: lab::clock::now(),
    };
    if let Err(e) = lab::suite::select::prepare_report_dir(&report_dir, &run_info, overwrite) {
        eprintln!("lab: error: {e}");
        return Ok(ExitCode::from(2));
    }
    let mut runners = Vec::new();
    for _ in 0..jobs {
        let runner = lab::suite::Runner::new(PathBuf::from("target/lab-cells"), report_dir.clone(), quiet)
            .await
            .map_err(anyhow::Error::msg)?;
        runners.push(runner);
    }
    let results = lab::suite::run(&mut runners, &suite_files, &cells, &filter).await;
    lab::suite::report::write_all(&results, &report_dir)
        .with_context(|| format!("writing reports to {}", report_dir.display()))?;
    let failed = results
        .iter()
        .filter(|r| matches!(r.outcome, lab::suite::Outcome::Fail(_)))
        .count();
    let unexplained = lab::suite::unexplained(&results);
    if json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        let passed = results
            .iter()
            .filter(|r| r.outcome == lab::suite::Outcome::Pass)
            .count();
        println!(
            "{passed} passed, {failed} failed ({} of them known findings about BIRD or FRR), {} left out; reports in {}",
            failed - unexplained,
            results.len() - passed - failed,
            report_dir.display()
        );
    }
    // A known finding about a reference row is a result, not a failure of the run.
    Ok(if unexplained == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NOT_HOLDING)
    })
}

pub async fn mutants(a: MutantsArgs, quiet: bool) -> Result<ExitCode> {
    let MutantsArgs {
        names,
        check,
        applies,
        jobs,
        report,
        suites,
        list,
    } = a;
    let check = match (check, applies) {
        (true, _) => Some(CheckDepth::Builds),
        (_, true) => Some(CheckDepth::Applies),
        _ => None,
    };
    run_mutants(names, check, jobs, report, &suites, list, quiet).await
}

pub async fn report(a: ReportArgs) -> Result<ExitCode> {
    let ReportArgs { inputs, report: out } = a;
    let files: Vec<PathBuf> = inputs
        .iter()
        .map(|p| if p.is_dir() { p.join("results.json") } else { p.clone() })
        .collect();
    let refs: Vec<&std::path::Path> = files.iter().map(PathBuf::as_path).collect();
    let results = lab::suite::report::merge(&refs).map_err(anyhow::Error::msg)?;
    lab::suite::report::write_all(&results, &out).with_context(|| format!("writing {}", out.display()))?;
    let failed = results
        .iter()
        .filter(|r| matches!(r.outcome, lab::suite::Outcome::Fail(_)))
        .count();
    let unexplained = lab::suite::unexplained(&results);
    println!(
        "{} case runs from {} file(s), {failed} failed ({} of them known findings about BIRD or FRR); reports in {}",
        results.len(),
        files.len(),
        failed - unexplained,
        out.display()
    );
    Ok(if unexplained == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NOT_HOLDING)
    })
}

pub async fn render(a: RenderArgs) -> Result<ExitCode> {
    let RenderArgs {
        cells,
        out,
        deployer,
        registry,
        namespace,
    } = a;
    let deployer = match deployer.as_str() {
        "clabernetes" => render::Deployer::Clabernetes,
        _ => render::Deployer::Containerlab,
    };
    let registry = registry.as_deref().map(lab::registry::Registry::parse).transpose()?;
    if deployer == render::Deployer::Clabernetes && registry.is_none() {
        anyhow::bail!(
            "--for clabernetes needs --registry: its pods pull the lab's images from one (push them there with `lab images --push REGISTRY`)"
        );
    }
    let dns_label = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !s.starts_with('-')
            && !s.ends_with('-')
    };
    if !dns_label(&namespace) {
        anyhow::bail!(
            "--namespace `{namespace}`: a Kubernetes namespace is lower-case letters, digits and `-`, at most 63"
        );
    }
    let output = render::Output {
        deployer,
        registry,
        namespace,
    };
    let cells = cells.cells()?;
    let written = render::render_all(&cells, &out, &output).map_err(anyhow::Error::msg)?;
    for (cell, path) in written {
        println!("{}  [{cell}]", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `lab mutants`: each mutant built, its cases run, the verdicts reported.
/// How far `lab mutants --check` or `--applies` takes each patch.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum CheckDepth {
    Applies,
    Builds,
}

pub async fn run_mutants(
    names: Vec<String>,
    check: Option<CheckDepth>,
    jobs: u8,
    report_dir: PathBuf,
    suites: &Path,
    list: bool,
    quiet: bool,
) -> Result<ExitCode> {
    use lab::mutants::{self, Build};
    let root = images::find_root(&std::env::current_dir()?)
        .context("no images/base/packages here or above: run `lab mutants` from the workspace")?;
    let all = mutants::load_dir(&suites.join("mutants"))?;
    let mut chosen = Vec::new();
    for n in &names {
        let path = Path::new(n);
        if n.ends_with(".patch") && path.is_file() {
            chosen.push(mutants::load(path)?);
        } else if let Some(m) = all.iter().find(|m| m.name == *n) {
            chosen.push(m.clone());
        } else {
            let known: Vec<&str> = all.iter().map(|m| m.name.as_str()).collect();
            eprintln!(
                "lab: error: no mutant {n:?} in {} (mutants: {}), and no patch file of that name",
                suites.join("mutants").display(),
                known.join(" ")
            );
            return Ok(ExitCode::from(2));
        }
    }
    if names.is_empty() {
        chosen = all;
    }
    let suite_files = lab::suite::case::load_dir(suites)?;
    for m in &chosen {
        for id in &m.header.cases {
            if !suite_files.iter().any(|s| s.cases.iter().any(|c| c.id == *id)) {
                bail!("{}: header: no case {id} in {}", m.file.display(), suites.display());
            }
        }
    }
    if list {
        for m in &chosen {
            let cells: Vec<String> = m.cells().iter().map(|c| format!("[{c}]")).collect();
            println!(
                "{}: {} ({}) - {} on {}",
                m.name,
                m.header.bug,
                m.header.source,
                m.header.cases.join(" "),
                cells.join(" ")
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(depth) = check {
        let work = root.join("target/mutants");
        let mut broken = 0;
        for m in &chosen {
            let t = Instant::now();
            let built = async {
                let tree = mutants::tree(&root, m, &work.join("check-trees"))?;
                if depth == CheckDepth::Builds {
                    mutants::build(&tree, &work.join("check"), Build::Check).await?;
                }
                Ok::<_, mutants::MutantError>(())
            };
            match built.await {
                Ok(()) => {
                    if !quiet {
                        eprintln!(
                            "lab: mutant {} applies{} ({:.1}s)",
                            m.name,
                            if depth == CheckDepth::Builds { " and builds" } else { "" },
                            t.elapsed().as_secs_f64()
                        );
                    }
                }
                Err(e) => {
                    eprintln!("lab: error: mutant {}: {e}", m.name);
                    broken += 1;
                }
            }
        }
        return Ok(if broken == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let run = lab::suite::select::RunInfo {
        scope: "mutants".into(),
        selection: std::env::args().skip(1).collect::<Vec<_>>().join(" "),
        started: lab::clock::now(),
    };
    if let Err(e) = lab::suite::select::prepare_report_dir(&report_dir, &run, false) {
        eprintln!("lab: error: {e}");
        return Ok(ExitCode::from(2));
    }
    let verdicts = mutants::run_all(&root, &chosen, &suite_files, usize::from(jobs), &report_dir, quiet).await;
    std::fs::write(
        report_dir.join("mutants.json"),
        serde_json::to_string_pretty(&verdicts)?,
    )?;
    std::fs::write(report_dir.join("mutants.md"), mutants::report_md(&verdicts))?;
    let caught = verdicts.iter().filter(|v| v.caught).count();
    println!(
        "{caught} of {} mutants caught; reports in {}",
        verdicts.len(),
        report_dir.display()
    );
    for v in verdicts.iter().filter(|v| !v.caught) {
        println!("  {}: {}", v.name, v.error.as_deref().unwrap_or("SURVIVED"));
    }
    Ok(if caught == verdicts.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NOT_HOLDING)
    })
}
