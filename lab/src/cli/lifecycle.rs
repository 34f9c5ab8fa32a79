//! A lab's life: validate, graph, up, down.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::args::*;
use crate::print::*;
use crate::{load, open};
use lab::progress::Progress;
use lab::runtime::Runtime;
use lab::{bringup, deploy, graph, report, services};

pub async fn validate(a: ValidateArgs) -> Result<ExitCode> {
    let ValidateArgs { topo } = a;
    let t = load(&topo)?;
    for f in &t.ignored {
        eprintln!("lab: note: {f} is a containerlab setting that lab ignores");
    }
    println!(
        "{}: lab {} is valid: {} nodes, {} links",
        topo.display(),
        t.name,
        t.nodes.len(),
        t.links.len()
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn graph(a: GraphArgs) -> Result<ExitCode> {
    let GraphArgs {
        topo,
        format,
        node_filter,
    } = a;
    let mut t = load(&topo)?;
    if !node_filter.is_empty() {
        t = t.filtered(&node_filter).map_err(anyhow::Error::msg)?;
    }
    match format.as_str() {
        "dot" => print!("{}", graph::dot(&t)),
        _ => print!("{}", graph::mermaid(&t)),
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn up(a: UpArgs, progress: &Progress) -> Result<ExitCode> {
    let UpArgs {
        topo,
        wait,
        reconfigure,
        keep_on_error,
        json,
        node_filter,
    } = a;
    let (mut t, rt) = open(&topo).await?;
    let mut wait = wait;
    if !node_filter.is_empty() {
        t = t.filtered(&node_filter).map_err(anyhow::Error::msg)?;
        if wait > 0 {
            eprintln!("lab: note: with --node-filter, lab up deploys and waits for nothing (sessions to the nodes left out cannot come up)");
            wait = 0;
        }
    }
    let start = Instant::now();
    let opts = deploy::UpOptions {
        reconfigure,
        keep_on_error,
        partial: !node_filter.is_empty(),
    };
    let report = match bringup::up(&rt, &t, &opts, Duration::from_secs(wait), progress).await {
        Ok(r) => r,
        Err(e @ bringup::UpError::Deploy(_)) => {
            return Err(anyhow::Error::new(e).context(format!("deploying lab {} from {}", t.name, topo.display())))
        }
        Err(e) => {
            if let Some(table) = e.table() {
                print_peers(table, json)?;
            }
            if let bringup::UpError::Ping { matrix, .. } = &e {
                if !json {
                    print!("\n{}", report::ping_matrix(matrix));
                }
            }
            if let bringup::UpError::Services { report, .. } = &e {
                if !json {
                    print!("\n{}", services::up::render(report));
                }
            }
            bail!(
                "lab {}: {e}. Look with `lab exec -t {} NODE -- ...`; remove with `lab down -t {}`",
                t.name,
                topo.display(),
                topo.display()
            )
        }
    };
    let Some(report) = report else {
        progress.done(&format!("lab {} deployed", t.name), start);
        return Ok(ExitCode::SUCCESS);
    };
    progress.done(&format!("lab {} up", t.name), start);
    print_peers(&report.table, json)?;
    if let (Some(m), false) = (&report.matrix, json) {
        print!("\n{}", report::ping_matrix(m));
    }
    if let (Some(s), false) = (&report.services, json) {
        print!("\n{}", services::up::render(s));
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn down(a: DownArgs, progress: &Progress) -> Result<ExitCode> {
    let DownArgs { target, node_filter } = a;
    let lab = target.lab()?;
    let nodes = node_set(&target, &node_filter)?;
    let rt = Runtime::connect().await?;
    match (lab, nodes) {
        (Some(lab), Some(nodes)) => deploy::down_nodes(&rt, &lab, &nodes, progress).await?,
        (Some(lab), None) => deploy::down(&rt, &lab, progress).await?,
        (None, _) => deploy::down_all(&rt, progress).await?,
    };
    Ok(ExitCode::SUCCESS)
}
