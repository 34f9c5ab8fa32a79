//! `lab service`: Kubernetes services played by the lab.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use crate::args::*;
use crate::{open, EXIT_NOT_HOLDING};
use lab::labels::Role;
use lab::{pods, report, services};

pub async fn service(verb: ServiceVerb) -> Result<ExitCode> {
    match verb {
        ServiceVerb::Add {
            topo,
            name,
            ip,
            port,
            service_type,
            policy,
            endpoints,
            not_ready,
        } => {
            let (t, rt) = open(&topo).await?;
            let s = services::Service {
                name,
                ips: services::parse_ips(&ip).map_err(anyhow::Error::msg)?,
                port,
                service_type: service_type.parse().map_err(anyhow::Error::msg)?,
                policy: policy.parse().map_err(anyhow::Error::msg)?,
                endpoints,
                not_ready,
            };
            s.check().map_err(anyhow::Error::msg)?;
            let mut list = services::stored(&rt, &t).await?;
            if list.iter().any(|o| o.name == s.name) {
                bail!(
                    "lab {} already has a service {}: `lab service del` it first",
                    t.name,
                    s.name
                );
            }
            let pods = pods::list(&rt, &t).await?;
            let absent: Vec<&str> = s
                .endpoints
                .iter()
                .filter(|e| !pods.iter().any(|p| &p.name == *e))
                .map(String::as_str)
                .collect();
            list.push(s.clone());
            list.sort_by(|a, b| a.name.cmp(&b.name));
            services::apply(&rt, &t, &list).await?;
            println!(
                "service {} ({}, {} {}) on {}",
                s.name,
                s.addresses(),
                s.service_type,
                s.policy,
                t.name
            );
            if !absent.is_empty() {
                println!(
                    "no pod yet for endpoint(s) {}: they join when created",
                    absent.join(", ")
                );
            }
        }
        ServiceVerb::Ready { topo, name, pods, not } => {
            let (t, rt) = open(&topo).await?;
            let mut list = services::stored(&rt, &t).await?;
            let s = list
                .iter_mut()
                .find(|s| s.name == name)
                .with_context(|| format!("lab {} has no service {name} (`lab service list`)", t.name))?;
            s.set_ready(&pods, !not).map_err(anyhow::Error::msg)?;
            services::apply(&rt, &t, &list).await?;
            let state = if not { "not ready" } else { "ready" };
            println!("service {name}: {} {state} on {}", pods.join(", "), t.name);
        }
        ServiceVerb::Del { topo, name } => {
            let (t, rt) = open(&topo).await?;
            let mut list = services::stored(&rt, &t).await?;
            let before = list.len();
            list.retain(|s| s.name != name);
            if list.len() == before {
                bail!("lab {} has no service {name} (`lab service list`)", t.name);
            }
            services::apply(&rt, &t, &list).await?;
            println!("service {name} deleted from {}", t.name);
        }
        ServiceVerb::List { topo, json } => {
            let (t, rt) = open(&topo).await?;
            let list = services::stored(&rt, &t).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(ExitCode::SUCCESS);
            }
            let pods = pods::list(&rt, &t).await?;
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|s| {
                    let eps: Vec<String> = s
                        .endpoints
                        .iter()
                        .map(|e| {
                            let at = match pods.iter().find(|p| &p.name == e) {
                                Some(p) => format!("{e}@{}", p.node),
                                None => format!("{e}@(no pod)"),
                            };
                            match s.is_ready(e) {
                                true => at,
                                false => format!("{at}(not ready)"),
                            }
                        })
                        .collect();
                    vec![
                        s.name.clone(),
                        s.service_type.to_string(),
                        s.addresses(),
                        s.policy.to_string(),
                        eps.join(" "),
                    ]
                })
                .collect();
            print!(
                "{}",
                report::table(&["SERVICE", "TYPE", "ADDRESS", "POLICY", "ENDPOINTS"], &rows)
            );
        }
        ServiceVerb::Connect {
            topo,
            name,
            from,
            count,
            json,
        } => {
            let (t, rt) = open(&topo).await?;
            let from = match from {
                Some(f) => f,
                None => t
                    .nodes
                    .values()
                    .find(|n| n.role == Some(Role::Client))
                    .map(|n| n.name.clone())
                    .with_context(|| {
                        format!(
                            "lab {} has no node with lab.role: client; say which with --from",
                            t.name
                        )
                    })?,
            };
            if !t.nodes.contains_key(&from) {
                bail!("no node {from:?} in lab {}", t.name);
            }
            let list = services::stored(&rt, &t).await?;
            let s = list
                .iter()
                .find(|s| s.name == name)
                .with_context(|| format!("lab {} has no service {name} (`lab service list`)", t.name))?;
            let mut all = Vec::new();
            for ip in &s.ips {
                let a = services::connect(&rt, &t, &from, *ip, s.port, count).await?;
                if !json {
                    println!("{} {} port {} from {from}: {}", s.name, ip, s.port, a.line());
                }
                all.push((ip.to_string(), a));
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            }
            if all.iter().any(|(_, a)| a.failed > 0) {
                return Ok(ExitCode::from(EXIT_NOT_HOLDING));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
