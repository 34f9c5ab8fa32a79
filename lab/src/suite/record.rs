//! What a case makes along the way, kept for its checks and its result: its
//! traffic, its timings, the memory of the daemons it measures.

use std::collections::BTreeMap;

use super::{Flow, Sample};

/// What a case made along the way: its traffic, its timings, the memory of the
/// daemons it measures.
pub struct CaseRun {
    /// When the case started: `up_for` without a minimum asks for a session up since.
    pub(super) started: std::time::Instant,
    /// Each node's daemon's resident memory (KiB) when the case first looked.
    pub(super) rss_at_start: BTreeMap<String, u64>,
    /// The traffic running: pings between pods, connections to services.
    pub(super) traffic: Vec<Running>,
    /// What the traffic counted when it was stopped.
    pub(super) last_traffic: Vec<Flow>,
    /// Memory measured: (node, KiB at the start, KiB at the check).
    pub rss: Vec<(String, u64, u64)>,
    pub samples: Vec<Sample>,
}

/// One flow of traffic running in a node, in one address family.
pub(super) struct Running {
    pub node: String,
    pub pid: u32,
    /// `IPv4` or `IPv6`, and for connections the service: `IPv4 to s04`.
    pub family: String,
    pub log: String,
    /// TCP connections to a service (else a ping).
    pub connections: bool,
}

impl Default for CaseRun {
    fn default() -> CaseRun {
        CaseRun {
            started: std::time::Instant::now(),
            rss_at_start: BTreeMap::new(),
            traffic: Vec::new(),
            last_traffic: Vec::new(),
            rss: Vec::new(),
            samples: Vec::new(),
        }
    }
}
