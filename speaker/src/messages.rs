//! The messages between the daemon's tasks, in one place so that no module imports
//! the daemon back: what a session reports and is told, what the FIB thread is asked
//! and answers, and the questions of the local API. What a session reports is data
//! (serde), since the daemon's core records and replays it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::config::DrainMode;
use crate::fsm::State;
use crate::packet::{AfiSafi, EncodeError, NextHop, Notification, PathAttributes, SessionCaps, Update};

/// A session reached Established: what the RIB needs to export to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUp {
    pub peer: IpAddr,
    /// Counts the sessions of this peer; what is sent names the one it is for.
    pub generation: u64,
    pub router_id: Ipv4Addr,
    #[serde(default)]
    pub caps: SessionCaps,
    /// Families both sides announced.
    pub families: Vec<AfiSafi>,
    /// The peer's graceful restart time, when it offered graceful restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_restart_time: Option<u16>,
    /// Our address on the session's connection.
    pub local_address: IpAddr,
    /// Our addresses of each family on the interface that holds `local_address`:
    /// next hops for that family's routes on this session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_v4: Option<Ipv4Addr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_v6: Option<Ipv6Addr>,
    /// Our link-local address on the link shared with the peer (RFC 2545).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_local: Option<Ipv6Addr>,
}

/// What a session tells the daemon.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerEvent {
    Up(SessionUp),
    Down {
        peer: IpAddr,
        /// Keep the peer's routes as stale (graceful restart helper).
        graceful: bool,
    },
    /// One UPDATE's routes: `attrs` (without next hop and MP fields) for every
    /// announced prefix. RFC 7606's treat-as-withdraw is already applied.
    Routes {
        peer: IpAddr,
        /// Boxed: the other events are a fraction of its size.
        #[serde(default)]
        attrs: Box<PathAttributes>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        announced: Vec<(IpNet, NextHop)>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        withdrawn: Vec<IpNet>,
    },
    EndOfRib {
        peer: IpAddr,
        family: AfiSafi,
    },
    RouteRefresh {
        peer: IpAddr,
    },
}

impl PeerEvent {
    /// The routes of a received UPDATE.
    pub fn routes(peer: IpAddr, update: &Update) -> PeerEvent {
        let mut attrs = Box::new(update.attrs.clone());
        attrs.next_hop = None;
        attrs.mp_reach = None;
        attrs.mp_unreach = None;
        PeerEvent::Routes {
            peer,
            attrs,
            announced: update.announced_prefixes(),
            withdrawn: update.withdrawn_prefixes(),
        }
    }
}

/// Prefixes announced with the same attributes and next hop.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announcement {
    pub attrs: PathAttributes,
    pub next_hop: NextHop,
    pub prefixes: Vec<IpNet>,
}

/// What one peer is to be sent now: withdrawals first, then announcements, then
/// End-of-RIB after a first full table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutBatch {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub withdraw: Vec<IpNet>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub announce: Vec<Announcement>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub end_of_rib: Vec<AfiSafi>,
}

impl OutBatch {
    pub fn is_empty(&self) -> bool {
        self.withdraw.is_empty() && self.announce.is_empty() && self.end_of_rib.is_empty()
    }

    /// The UPDATEs, packed as full as they go.
    pub fn encode(&self, caps: &SessionCaps) -> Result<Vec<Update>, EncodeError> {
        let mut updates = Update::withdraw(&self.withdraw);
        for a in &self.announce {
            updates.extend(Update::announce(caps, &a.attrs, a.next_hop, &a.prefixes)?);
        }
        updates.extend(self.end_of_rib.iter().map(|f| Update::end_of_rib(*f)));
        Ok(updates)
    }
}

/// Commands from the daemon to a session.
#[derive(Debug)]
pub enum SessionCmd {
    /// Routes for the session numbered `generation`; dropped if that session is
    /// gone, since the next one gets a full table anyway. `kernel_event`: when
    /// the kernel change they carry was read, for the latency histogram.
    Send {
        generation: u64,
        batch: OutBatch,
        kernel_event: Option<Instant>,
    },
    /// Stop for good (the peer was removed or changed by a reload), telling the
    /// peer why; the task ends.
    Stop(Notification),
    /// The BFD session protecting this one went from Up to Down (its diagnostic):
    /// end the session now with Cease/BFD Down and connect again later.
    BfdDown(&'static str),
    /// Answer once everything queued before this has been written and the peer
    /// has acknowledged it (the socket's send queue is empty), or `timeout` passed.
    Sync {
        timeout: Duration,
        reply: oneshot::Sender<SyncResult>,
    },
}

/// How a [`SessionCmd::Sync`] ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncResult {
    /// Written and acknowledged by the peer's TCP.
    Delivered,
    /// No session: the peer holds nothing from us that a session would carry.
    NotEstablished(State),
    /// Bytes still unacknowledged when the time ran out.
    Pending { unacked: usize },
    /// The connection broke before it could be confirmed.
    Failed(String),
}

/// A change to our routes in the kernel. Routes are always written with our
/// protocol number; only a route of ours is ever replaced or deleted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FibOp {
    /// Create: we have no route on the prefix. Never overwrites one of another owner.
    Add {
        prefix: IpNet,
        next_hops: Vec<IpAddr>,
    },
    /// Change our route on the prefix.
    Replace {
        prefix: IpNet,
        next_hops: Vec<IpAddr>,
    },
    Remove {
        prefix: IpNet,
    },
}

impl FibOp {
    pub fn prefix(&self) -> IpNet {
        match self {
            FibOp::Add { prefix, .. } | FibOp::Replace { prefix, .. } | FibOp::Remove { prefix } => *prefix,
        }
    }
}

/// What the FIB thread is asked, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FibCmd {
    Apply(FibOp),
    /// Read our routes back from the kernel: answered with [`FibReport::State`].
    Read,
}

/// Why the kernel refused an operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FibError {
    /// A route of another owner is on the prefix (EEXIST on create).
    HeldByOther,
    /// Anything else, as the kernel said it (e.g. "Network is unreachable").
    Failed(String),
}

/// What the FIB thread answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FibReport {
    Done {
        op: FibOp,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<FibError>,
    },
    /// Our routes in the kernel (prefix and next hops), after every operation
    /// asked before the [`FibCmd::Read`].
    State(Vec<(IpNet, Vec<IpAddr>)>),
}

/// A question from the API, answered with JSON.
#[derive(Debug)]
pub enum ApiRequest {
    Status(oneshot::Sender<Value>),
    /// The routes, or only those that cover or lie inside `filter`: a page of at
    /// most `limit` prefixes after `after`.
    Routes {
        filter: Option<ipnet::IpNet>,
        after: Option<ipnet::IpNet>,
        limit: usize,
        reply: oneshot::Sender<Value>,
    },
    /// The Prometheus page.
    Metrics(oneshot::Sender<String>),
    /// Drain (`drain: true`) or undrain the node; `timeout` overrides the
    /// configured wait for the peers' acknowledgements.
    Drain {
        drain: bool,
        timeout: Option<Duration>,
        reply: oneshot::Sender<DrainPlan>,
    },
}

/// What a drain or undrain changed, and how to learn when each peer has it.
#[derive(Debug)]
pub struct DrainPlan {
    pub mode: Option<DrainMode>,
    pub timeout: Duration,
    pub peers: Vec<DrainPeer>,
}

#[derive(Debug)]
pub struct DrainPeer {
    pub address: IpAddr,
    /// What was sent, e.g. "withdrew 3 prefixes".
    pub action: String,
    pub delivered: oneshot::Receiver<SyncResult>,
}
