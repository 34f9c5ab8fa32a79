//! What several verbs print the same way.

use std::process::ExitCode;

use anyhow::Result;

use crate::EXIT_NOT_HOLDING;
use lab::probes::PeerTable;
use lab::{images, report, watch};

pub fn print_propagation(p: &watch::Propagation, json: bool) -> Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(p)?);
    } else {
        let what = if p.deleted { "removed" } else { "added" };
        match p.origin_at {
            None => println!("{} was not seen {what} on {}", p.prefix, p.origin),
            Some(_) => {
                let each: Vec<String> = p
                    .after_ms
                    .iter()
                    .map(|(n, ms)| match ms {
                        Some(ms) => format!("{n} +{ms:.1} ms"),
                        None => format!("{n} not within 10 s"),
                    })
                    .collect();
                println!("{} {what} on {}; followed by: {}", p.prefix, p.origin, each.join(", "));
            }
        }
    }
    Ok(if p.complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NOT_HOLDING)
    })
}

pub fn outcome(o: &images::Outcome) -> &'static str {
    match o {
        images::Outcome::UpToDate => "up to date",
        images::Outcome::Built => "built",
    }
}

pub fn print_peers(table: &PeerTable, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(&table.rows)?);
        for u in &table.unreadable {
            eprintln!("lab: {}/{}: cannot read sessions: {}", u.lab, u.node, u.error);
        }
    } else {
        print!("{}", report::peer_table(table));
    }
    Ok(())
}
