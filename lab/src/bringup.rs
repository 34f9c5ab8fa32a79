//! What `lab up` checks after deploying, as steps the conformance suite reuses: every
//! session Established, every pod block in every node's kernel FIB, the declared pods
//! created, every pod pinging every other, and the declared services answered from
//! outside as their policies say.

use std::time::{Duration, Instant};

use crate::deploy::{self, DeployError, UpOptions};
use crate::pods::{self, PingMatrix, PodError};
use crate::probes::{self, PeerTable};
use crate::progress::Progress;
use crate::runtime::Runtime;
use crate::services::{self, ServiceError};
use crate::topology::Topology;

/// How a lab came up: each step's time from the start of `up`.
#[derive(Debug)]
pub struct UpReport {
    pub table: PeerTable,
    pub sessions_after: Duration,
    pub blocks_after: Duration,
    pub matrix: Option<PingMatrix>,
    pub services: Option<services::up::Report>,
    pub total: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum UpError {
    #[error(transparent)]
    Deploy(#[from] DeployError),
    #[error(transparent)]
    Pods(#[from] PodError),
    #[error("not every session is Established after {:.0}s: {stuck}", waited.as_secs_f64())]
    Sessions {
        table: Box<PeerTable>,
        waited: Duration,
        stuck: String,
    },
    #[error("sessions are Established but pod blocks are missing from kernel FIBs: {}", missing.join("; "))]
    Blocks {
        table: Box<PeerTable>,
        missing: Vec<String>,
    },
    #[error("{} of {} pod pairs cannot ping each other", matrix.pairs() - matrix.ok(), matrix.pairs())]
    Ping {
        table: Box<PeerTable>,
        matrix: Box<PingMatrix>,
    },
    #[error(transparent)]
    ServiceSetup(#[from] ServiceError),
    #[error("services: {}", report.problems.join("; "))]
    Services {
        table: Box<PeerTable>,
        report: Box<services::up::Report>,
    },
}

impl UpError {
    /// The peer table read before the step failed, to show.
    pub fn table(&self) -> Option<&PeerTable> {
        match self {
            UpError::Sessions { table, .. }
            | UpError::Blocks { table, .. }
            | UpError::Ping { table, .. }
            | UpError::Services { table, .. } => Some(table),
            _ => None,
        }
    }
}

/// Deploys `topo` and runs every check of `lab up`; `wait` bounds the sessions and
/// the blocks (0: deploy only).
pub async fn up(
    rt: &Runtime,
    topo: &Topology,
    opts: &UpOptions,
    wait: Duration,
    progress: &Progress,
) -> Result<Option<UpReport>, UpError> {
    let start = Instant::now();
    deploy::up(rt, topo, opts, progress).await?;
    if wait.is_zero() {
        return Ok(None);
    }
    let table = sessions(rt, topo, wait, progress).await?;
    let sessions_after = start.elapsed();
    let left = wait.saturating_sub(start.elapsed()).max(Duration::from_secs(10));
    if let Err(missing) = probes::wait_blocks(rt, topo, left, progress).await {
        return Err(UpError::Blocks {
            table: Box::new(table),
            missing,
        });
    }
    let blocks_after = start.elapsed();
    let matrix = pods_and_ping(rt, topo, progress).await?;
    // Read again: prefix counts have moved since the sessions came up.
    let table = probes::peers(rt, Some(&topo.name)).await.unwrap_or(table);
    if let Some(m) = &matrix {
        if !m.complete() {
            return Err(UpError::Ping {
                table: Box::new(table),
                matrix: Box::new(m.clone()),
            });
        }
    }
    let services = services_up(rt, topo, progress).await?;
    if let Some(report) = &services {
        if !report.problems.is_empty() {
            return Err(UpError::Services {
                table: Box::new(table),
                report: Box::new(report.clone()),
            });
        }
    }
    Ok(Some(UpReport {
        table,
        sessions_after,
        blocks_after,
        matrix,
        services,
        total: start.elapsed(),
    }))
}

/// Applies the services the topology declares (`lab.service.<name>` labels) and checks
/// them from outside; `None` without services.
pub async fn services_up(
    rt: &Runtime,
    topo: &Topology,
    progress: &Progress,
) -> Result<Option<services::up::Report>, UpError> {
    let declared = services::declared(topo)?;
    if declared.is_empty() {
        return Ok(None);
    }
    let t0 = Instant::now();
    services::apply(rt, topo, &declared).await?;
    let pods = pods::list(rt, topo).await?;
    let report = services::up::check(rt, topo, &declared, &pods, Duration::from_secs(20)).await?;
    progress.done(
        &format!(
            "{} services answered from outside, {} problems",
            declared.len(),
            report.problems.len()
        ),
        t0,
    );
    Ok(Some(report))
}

/// Waits for every session of the lab to be Established.
pub async fn sessions(
    rt: &Runtime,
    topo: &Topology,
    wait: Duration,
    progress: &Progress,
) -> Result<PeerTable, UpError> {
    match probes::wait_established(rt, &topo.name, wait, progress).await {
        Ok(table) => Ok(table),
        Err((table, waited)) => {
            let stuck: Vec<String> = table
                .rows
                .iter()
                .filter(|r| r.session.state != "Established")
                .map(|r| format!("{} -> {} ({})", r.node, r.session.peer, r.session.state))
                .chain(table.unreadable.iter().map(|u| format!("{}: {}", u.node, u.error)))
                .collect();
            let stuck = if stuck.is_empty() {
                "no sessions were found".to_string()
            } else {
                stuck.join("; ")
            };
            Err(UpError::Sessions {
                table: Box::new(table),
                waited,
                stuck,
            })
        }
    }
}

/// Creates the pods the topology declares and pings every pair; `None` without pods.
pub async fn pods_and_ping(rt: &Runtime, topo: &Topology, progress: &Progress) -> Result<Option<PingMatrix>, UpError> {
    let declared = pods::declared(topo)?;
    if declared.is_empty() {
        return Ok(None);
    }
    let t0 = Instant::now();
    for p in &declared {
        pods::add(rt, topo, p).await?;
    }
    progress.done(&format!("{} pods created", declared.len()), t0);
    let t0 = Instant::now();
    let m = pods::ping_matrix(rt, topo, declared, Duration::from_secs(10)).await?;
    progress.done(&format!("ping matrix {}/{}", m.ok(), m.pairs()), t0);
    Ok(Some(m))
}
