//! Looking at and into a lab's nodes: peers, inspect, exec, impair, ping.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::args::*;
use crate::print::*;
use crate::{open, EXIT_NOT_HOLDING};
use lab::probes;
use lab::runtime::Runtime;
use lab::{pods, report};

pub async fn peers(a: PeersArgs) -> Result<ExitCode> {
    let PeersArgs { target, json } = a;
    let lab = target.lab()?;
    let rt = Runtime::connect().await?;
    let table = probes::peers(&rt, lab.as_deref()).await?;
    print_peers(&table, json)?;
    Ok(if table.all_established() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NOT_HOLDING)
    })
}

pub async fn inspect(a: InspectArgs) -> Result<ExitCode> {
    let InspectArgs {
        target,
        format,
        json,
        node_filter,
    } = a;
    let lab = target.lab()?;
    let nodes = node_set(&target, &node_filter)?;
    let rt = Runtime::connect().await?;
    let rows = lab::inspect::rows(&rt, lab.as_deref(), nodes.as_ref()).await?;
    if json || format == "json" {
        println!("{}", lab::inspect::json(&rows)?);
    } else {
        print!("{}", lab::inspect::table(&rows, lab.is_none()));
    }
    Ok(if rows.is_empty() && lab.is_some() {
        ExitCode::from(EXIT_NOT_HOLDING)
    } else {
        ExitCode::SUCCESS
    })
}

pub async fn exec(a: ExecArgs) -> Result<ExitCode> {
    let ExecArgs {
        target,
        nodes,
        labels,
        command,
        format,
        argv,
    } = a;
    let cmd = match command {
        Some(c) => lab::exec::split_words(&c).map_err(anyhow::Error::msg)?,
        None => argv,
    };
    if cmd.is_empty() {
        bail!("no command: `lab exec -t FILE NODE -- CMD...`, or --cmd \"CMD\"");
    }
    let lab = target.lab()?;
    let rt = Runtime::connect().await?;
    let targets = lab::exec::targets(&rt, &lab, &nodes, &labels).await?;
    if targets.is_empty() {
        bail!("lab {lab}: no running node is selected (is the lab up? do the labels match?)");
    }
    let results = lab::exec::run(&rt, &targets, &cmd).await?;
    let code = results
        .values()
        .flatten()
        .map(|r| r.return_code)
        .find(|c| *c != 0)
        .unwrap_or(0);
    if format == "json" {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else if let [only] = targets.as_slice() {
        // One node: its output as it printed it, as `docker exec` does.
        let r = &results[&only.container][0];
        print!("{}", r.stdout);
        eprint!("{}", r.stderr);
    } else {
        for t in &targets {
            let r = &results[&t.container][0];
            println!("== {} ({}): exit {}", t.node, t.container, r.return_code);
            print!("{}", r.stdout);
            eprint!("{}", r.stderr);
        }
    }
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

pub async fn impair(a: ImpairArgs) -> Result<ExitCode> {
    let ImpairArgs {
        target,
        link,
        loss,
        delay,
        jitter,
        rate,
        clear,
    } = a;
    let lab = target.lab()?;
    let rt = Runtime::connect().await?;
    let nodes: Vec<String> = link.iter().map(|(n, _)| n.clone()).collect();
    if link.is_none() && !clear {
        bail!("which interface? `lab impair -t FILE NODE:IF --loss PCT` (or --clear for all)");
    }
    let targets = lab::exec::targets(&rt, &lab, &nodes, &[]).await?;
    if clear {
        for t in &targets {
            let iface = link.as_ref().map(|(_, i)| i.as_str());
            lab::impair::clear(&rt, &t.container, &t.node, iface).await?;
        }
        println!(
            "lab {lab}: impairments cleared on {}",
            match &link {
                Some((n, i)) => format!("{n}:{i}"),
                None => format!("{} node(s)", targets.len()),
            }
        );
        return Ok(ExitCode::SUCCESS);
    }
    let (node, iface) = link.expect("checked above");
    let t = targets
        .first()
        .with_context(|| format!("lab {lab}: node {node} is not running"))?;
    let imp = lab::impair::Impairment {
        loss,
        delay_ms: delay,
        jitter_ms: jitter,
        rate_kbit: rate,
    };
    lab::impair::apply(&rt, &t.container, &node, &iface, &imp).await?;
    println!("lab {lab}: {node}:{iface} egress: {}", imp.describe());
    Ok(ExitCode::SUCCESS)
}

pub async fn ping(a: PingArgs) -> Result<ExitCode> {
    let PingArgs { topo, wait, json } = a;
    let (t, rt) = open(&topo).await?;
    let list = pods::list(&rt, &t).await?;
    if list.len() < 2 {
        bail!(
            "lab {} has {} pods: nothing to ping (`lab pod add`, or lab.pods labels)",
            t.name,
            list.len()
        );
    }
    let m = pods::ping_matrix(&rt, &t, list, Duration::from_secs(wait)).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&m)?);
    } else {
        print!("{}", report::ping_matrix(&m));
    }
    Ok(if m.complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NOT_HOLDING)
    })
}
