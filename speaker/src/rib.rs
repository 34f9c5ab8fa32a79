//! The routing tables: Adj-RIB-In per peer with the import policy, the Loc-RIB
//! with the RFC 4271 decision process and ECMP, and Adj-RIB-Out with the export
//! rules (iBGP split horizon, route reflection, next hop, AS prepend). Pure logic:
//! each operation returns the [`Changes`] the FIB and the sessions must apply.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use ipnet::IpNet;

use crate::config::{DrainMode, NextHopMode};
use crate::packet::{AfiSafi, AsPath, Community, NextHop, Origin, PathAttributes};
use crate::policy::{Action, Advertisements, Direction, PeerFilters, RouteFacts};

pub const DEFAULT_LOCAL_PREF: u32 = 100;

/// Why a next hop cannot be used in the kernel (RFC 4271 9.1.2.1), or `None`
/// when it resolves. The daemon's core answers it from its view of the kernel.
pub type Resolve<'a> = &'a dyn Fn(IpAddr) -> Option<&'static str>;

/// A next hop some paths use, and whether it resolves.
#[derive(Clone, Copy, Debug)]
struct NextHopState {
    paths: usize,
    unresolved: Option<&'static str>,
}

/// Where a path came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// A block or borrowed IP of this node, seen in the kernel.
    Local,
    Peer(IpAddr),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Path {
    pub source: Source,
    /// Without NEXT_HOP and MP_* fields, shared by every prefix of one UPDATE.
    pub attrs: Arc<PathAttributes>,
    pub next_hop: Option<IpAddr>,
    /// Kept for a peer in graceful restart until it re-sends it or gives up.
    pub stale: bool,
}

/// What the RIB needs to know about a peer; `router_id`, `local_address` and
/// `families` are learned when the session comes up.
#[derive(Clone, Debug)]
pub struct PeerInfo {
    pub address: IpAddr,
    pub remote_as: u32,
    pub router_id: Ipv4Addr,
    pub local_address: Option<IpAddr>,
    /// Ours on the link shared with the peer: sent with our global IPv6 next hop.
    pub local_link_local: Option<std::net::Ipv6Addr>,
    /// Our addresses of each family on the session's interface: the next hop of
    /// that family's routes when the session runs over the other family.
    pub local_v4: Option<Ipv4Addr>,
    pub local_v6: Option<std::net::Ipv6Addr>,
    pub rr_client: bool,
    pub next_hop_mode: NextHopMode,
    /// Our AS on this session (the node's, or the peer's `localASNumber`).
    pub local_as: u32,
    pub allowed_local_as: u8,
    /// Routes from an external peer whose AS_PATH does not start with its AS are
    /// refused (RFC 4271 6.3).
    pub enforce_first_as: bool,
    pub allowed_prefixes: Vec<IpNet>,
    /// BGPFilters on what the peer sends and what it is sent.
    pub filters: PeerFilters,
    pub families: Vec<AfiSafi>,
}

/// Why the import policy refused a path: one of the speaker's own checks, or the
/// BGPFilter rule that rejected it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejected {
    Check(&'static str),
    Filter(Arc<str>),
}

impl Rejected {
    pub fn as_str(&self) -> &str {
        match self {
            Rejected::Check(s) => s,
            Rejected::Filter(s) => s,
        }
    }
}

impl serde::Serialize for Rejected {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[derive(Clone, Debug)]
pub struct RibConfig {
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    /// Set when this speaker is a route reflector.
    pub cluster_id: Option<Ipv4Addr>,
    pub pools: Vec<IpNet>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum FibChange {
    /// Install or replace `prefix` with these next hops (more than one: ECMP).
    Install {
        prefix: IpNet,
        next_hops: Vec<IpAddr>,
    },
    Remove {
        prefix: IpNet,
    },
}

// Announcements are the common case; boxing them would cost an allocation each
// to shrink the rarer withdrawals.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum OutChange {
    Announce {
        prefix: IpNet,
        attrs: PathAttributes,
        next_hop: NextHop,
    },
    Withdraw {
        prefix: IpNet,
    },
}

/// What an operation changed, for the FIB and for each established peer.
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    pub fib: Vec<FibChange>,
    pub out: BTreeMap<IpAddr, Vec<OutChange>>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.fib.is_empty() && self.out.values().all(Vec::is_empty)
    }
}

#[derive(Clone, Debug)]
struct AdjIn {
    path: Path,
    /// What few paths have, out of line: a path costs one word for them.
    extra: Option<Box<AdjExtra>>,
}

#[derive(Clone, Debug, Default)]
struct AdjExtra {
    /// Why the import policy refused it; `None` when accepted.
    rejected: Option<Rejected>,
    /// The next hop as advertised, when it was an IPv4-mapped address taken to mean
    /// the sender (see [`Rib::sender_if_mapped`]).
    mapped: Option<IpAddr>,
}

impl AdjIn {
    fn new(path: Path, rejected: Option<Rejected>, mapped: Option<IpAddr>) -> Self {
        AdjIn {
            path,
            extra: AdjExtra::boxed(rejected, mapped),
        }
    }

    fn rejected(&self) -> Option<&Rejected> {
        self.extra.as_ref().and_then(|e| e.rejected.as_ref())
    }

    fn mapped(&self) -> Option<IpAddr> {
        self.extra.as_ref().and_then(|e| e.mapped)
    }

    fn set_rejected(&mut self, rejected: Option<Rejected>) {
        self.extra = AdjExtra::boxed(rejected, self.mapped());
    }
}

impl AdjExtra {
    /// `None` when there is nothing to keep.
    fn boxed(rejected: Option<Rejected>, mapped: Option<IpAddr>) -> Option<Box<Self>> {
        (rejected.is_some() || mapped.is_some()).then(|| Box::new(AdjExtra { rejected, mapped }))
    }
}

/// The export the peer was last sent for a prefix.
type OutRoute = (PathAttributes, NextHop);

struct PeerState {
    info: PeerInfo,
    established: bool,
    adj_in: HashMap<IpNet, AdjIn>,
    adj_out: HashMap<IpNet, OutRoute>,
}

#[derive(Clone, Debug, PartialEq)]
struct Selected {
    /// Best first; the ones that share the best's rank form the multipath set.
    /// Exactly as long as it is: most prefixes have one path.
    paths: Box<[Path]>,
    multipath: usize,
}

impl Selected {
    fn best(&self) -> &Path {
        &self.paths[0]
    }

    /// The FIB's view: learned next hops, none when the best is local.
    fn fib_next_hops(&self) -> Option<Vec<IpAddr>> {
        if self.best().source == Source::Local {
            return None;
        }
        // Sized for the paths: a collect from a filter would start at four.
        let mut hops = Vec::with_capacity(self.multipath);
        hops.extend(self.paths[..self.multipath].iter().filter_map(|p| p.next_hop));
        hops.sort();
        hops.dedup();
        (!hops.is_empty()).then_some(hops)
    }
}

/// A read-only view for the API.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RouteView {
    pub prefix: IpNet,
    pub local: bool,
    pub paths: Vec<PathView>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct PathView {
    pub from: String,
    pub next_hop: Option<IpAddr>,
    /// The next hop as the peer advertised it, when it was an IPv4-mapped address of
    /// the peer itself, taken as the peer's address on this session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advertised_next_hop: Option<IpAddr>,
    pub as_path: String,
    pub local_pref: u32,
    pub best: bool,
    pub multipath: bool,
    pub stale: bool,
    pub rejected: Option<Rejected>,
    /// Why the next hop cannot be used (RFC 4271 9.1.2.1): the path is not a candidate.
    pub unresolved: Option<&'static str>,
    /// Every attribute the path carries.
    pub attrs: Arc<PathAttributes>,
}

pub struct Rib {
    config: RibConfig,
    peers: BTreeMap<IpAddr, PeerState>,
    /// This node's routes, with the interface a pod's leaves by (for BGPFilter's
    /// `interface`).
    local: BTreeMap<IpNet, Option<Arc<str>>>,
    /// What `prefixAdvertisements` attach to what is advertised.
    advertisements: Arc<Advertisements>,
    loc: BTreeMap<IpNet, Selected>,
    drain: Option<DrainMode>,
    next_hops: HashMap<IpAddr, NextHopState>,
}

impl Rib {
    pub fn new(config: RibConfig) -> Self {
        Rib {
            config,
            peers: BTreeMap::new(),
            local: BTreeMap::new(),
            advertisements: Arc::default(),
            loc: BTreeMap::new(),
            drain: None,
            next_hops: HashMap::new(),
        }
    }

    pub fn drain(&self) -> Option<DrainMode> {
        self.drain
    }

    /// Drains the node (`Some`) or ends a drain (`None`): every established
    /// peer's Adj-RIB-Out is brought in line with the new export rule.
    pub fn set_drain(&mut self, drain: Option<DrainMode>) -> Changes {
        let mut changes = Changes::default();
        if self.drain == drain {
            return changes;
        }
        self.drain = drain;
        self.export_all(&mut changes);
        changes
    }

    /// Registers a configured peer (down).
    pub fn add_peer(&mut self, info: PeerInfo) {
        self.peers.insert(
            info.address,
            PeerState {
                info,
                established: false,
                adj_in: HashMap::new(),
                adj_out: HashMap::new(),
            },
        );
    }

    /// Forgets a peer removed from the configuration, with everything it sent.
    pub fn remove_peer(&mut self, peer: IpAddr) -> Changes {
        let mut changes = Changes::default();
        let Some(state) = self.peers.remove(&peer) else {
            return changes;
        };
        for (prefix, a) in state.adj_in {
            self.release_next_hop(a.path.next_hop);
            self.recompute(prefix, &mut changes);
        }
        changes
    }

    pub fn local_routes(&self) -> impl Iterator<Item = &IpNet> {
        self.local.keys()
    }

    /// New `prefixAdvertisements` (a reload): every peer is sent what changes.
    pub fn set_advertisements(&mut self, advertisements: Advertisements) -> Changes {
        let mut changes = Changes::default();
        if *self.advertisements == advertisements {
            return changes;
        }
        self.advertisements = Arc::new(advertisements);
        self.export_all(&mut changes);
        changes
    }

    /// New BGPFilters for `peer` (a reload), without a new session: what it sent
    /// (kept in its Adj-RIB-In, accepted or not) is judged again, and what it is
    /// sent follows the new export rules.
    pub fn set_filters(&mut self, peer: IpAddr, filters: PeerFilters) -> Changes {
        let mut changes = Changes::default();
        let Some(state) = self.peers.get_mut(&peer) else {
            return changes;
        };
        if state.info.filters == filters {
            return changes;
        }
        state.info.filters = filters;
        let state = &self.peers[&peer];
        let mut verdicts: Vec<(IpNet, Option<Rejected>)> = state
            .adj_in
            .iter()
            .filter_map(|(prefix, a)| {
                let verdict = self.import_reject(&state.info, &a.path.attrs, prefix);
                (verdict.as_ref() != a.rejected()).then_some((*prefix, verdict))
            })
            .collect();
        // In prefix order, so the same inputs give the same outputs (replay).
        verdicts.sort_unstable_by_key(|(prefix, _)| *prefix);
        let state = self.peers.get_mut(&peer).expect("present");
        for (prefix, verdict) in &verdicts {
            if let Some(a) = state.adj_in.get_mut(prefix) {
                a.set_rejected(verdict.clone());
            }
        }
        for (prefix, _) in verdicts {
            self.recompute(prefix, &mut changes);
        }
        self.export_to(&[peer], &mut changes);
        changes
    }

    /// Every established peer's Adj-RIB-Out brought in line with the export rules.
    fn export_all(&mut self, changes: &mut Changes) {
        let peers: Vec<IpAddr> = self.peers.keys().copied().collect();
        self.export_to(&peers, changes);
    }

    /// `peers`' Adj-RIB-Outs brought in line with the export rules, prefix by prefix.
    fn export_to(&mut self, peers: &[IpAddr], changes: &mut Changes) {
        let prefixes: Vec<IpNet> = self.loc.keys().copied().collect();
        for prefix in prefixes {
            for peer in peers {
                self.export_one(*peer, prefix, changes);
            }
        }
    }

    /// Prefixes received from `peer` and how many of them were accepted.
    pub fn counts(&self, peer: IpAddr) -> (usize, usize) {
        self.peers.get(&peer).map_or((0, 0), |p| {
            let accepted = p.adj_in.values().filter(|a| a.rejected().is_none()).count();
            (p.adj_in.len(), accepted)
        })
    }

    /// Prefixes `peer` has been sent and not withdrawn.
    pub fn advertised_count(&self, peer: IpAddr) -> usize {
        self.peers.get(&peer).map_or(0, |p| p.adj_out.len())
    }

    /// Paths from `peer` the RIB still holds: those received (Adj-RIB-In) plus
    /// those selected (Loc-RIB), so a route counts twice. Zero once its session
    /// ended without graceful restart.
    pub fn paths_from(&self, peer: IpAddr) -> usize {
        let received = self.peers.get(&peer).map_or(0, |p| p.adj_in.len());
        let selected = self
            .loc
            .values()
            .flat_map(|s| &s.paths)
            .filter(|p| p.source == Source::Peer(peer))
            .count();
        received + selected
    }

    pub fn has_stale(&self, peer: IpAddr) -> bool {
        self.peers
            .get(&peer)
            .is_some_and(|p| p.adj_in.values().any(|a| a.path.stale))
    }

    /// The session came up: returns the full table to send it.
    pub fn peer_up(&mut self, info: PeerInfo) -> Changes {
        let address = info.address;
        let state = self.peers.entry(address).or_insert_with(|| PeerState {
            info: info.clone(),
            established: false,
            adj_in: HashMap::new(),
            adj_out: HashMap::new(),
        });
        state.info = info;
        state.established = true;
        state.adj_out.clear();
        let mut changes = Changes::default();
        self.export_to(&[address], &mut changes);
        changes
    }

    /// The whole table again, for a ROUTE-REFRESH.
    pub fn resend(&mut self, peer: IpAddr) -> Changes {
        match self.peers.get(&peer) {
            Some(state) if state.established => {
                let info = state.info.clone();
                self.peer_up(info)
            }
            _ => Changes::default(),
        }
    }

    /// The session went down. With `keep_stale` (graceful restart) its paths stay,
    /// marked stale, until [`Rib::flush_stale`]; otherwise they go at once.
    pub fn peer_down(&mut self, peer: IpAddr, keep_stale: bool) -> Changes {
        let prefixes = self.peer_down_prefixes(peer, keep_stale);
        self.recompute_prefixes(&prefixes)
    }

    /// [`Rib::peer_down`] in two steps: the session ends here, and the prefixes
    /// whose best path may have changed are returned, for [`Rib::recompute_prefixes`]
    /// to work through in chunks (so the kernel can start losing the first ones
    /// while the rest of 100k are still being worked out). Nothing else may touch
    /// the RIB until every one of them is recomputed.
    pub fn peer_down_prefixes(&mut self, peer: IpAddr, keep_stale: bool) -> Vec<IpNet> {
        let Some(state) = self.peers.get_mut(&peer) else {
            return Vec::new();
        };
        state.established = false;
        state.adj_out.clear();
        let prefixes: Vec<IpNet> = state.adj_in.keys().copied().collect();
        if keep_stale {
            for a in state.adj_in.values_mut() {
                a.path.stale = true;
            }
        } else {
            let gone: Vec<Option<IpAddr>> = state.adj_in.drain().map(|(_, a)| a.path.next_hop).collect();
            for nh in gone {
                self.release_next_hop(nh);
            }
        }
        prefixes
    }

    /// The best paths of `prefixes` worked out again, and what changed.
    pub fn recompute_prefixes(&mut self, prefixes: &[IpNet]) -> Changes {
        let mut changes = Changes::default();
        for prefix in prefixes {
            self.recompute(*prefix, &mut changes);
        }
        changes
    }

    /// Removes the paths of `peer` still stale: at its End-of-RIB for `family`, or
    /// for every family (`None`) when its restart time ran out.
    pub fn flush_stale(&mut self, peer: IpAddr, family: Option<AfiSafi>) -> Changes {
        let mut changes = Changes::default();
        let Some(state) = self.peers.get_mut(&peer) else {
            return changes;
        };
        let gone: Vec<IpNet> = state
            .adj_in
            .iter()
            .filter(|(p, a)| a.path.stale && family.is_none_or(|f| AfiSafi::unicast_of(p) == f))
            .map(|(p, _)| *p)
            .collect();
        let released: Vec<Option<IpAddr>> = gone
            .iter()
            .filter_map(|p| state.adj_in.remove(p))
            .map(|a| a.path.next_hop)
            .collect();
        for nh in released {
            self.release_next_hop(nh);
        }
        for prefix in gone {
            self.recompute(prefix, &mut changes);
        }
        changes
    }

    /// Applies one UPDATE from `peer`: `attrs` for every announced prefix.
    /// `resolve` says whether a next hop not seen before resolves.
    pub fn update(
        &mut self,
        peer: IpAddr,
        attrs: &PathAttributes,
        announced: &[(IpNet, NextHop)],
        withdrawn: &[IpNet],
        resolve: Resolve,
    ) -> Changes {
        let mut changes = Changes::default();
        let Some(state) = self.peers.get(&peer) else {
            return changes;
        };
        let ebgp = !self.is_ibgp(&state.info);
        let mut touched = Vec::new();
        for prefix in withdrawn {
            let removed = self.peers.get_mut(&peer).and_then(|s| s.adj_in.remove(prefix));
            if let Some(old) = removed {
                self.release_next_hop(old.path.next_hop);
                touched.push(*prefix);
            }
        }
        if !announced.is_empty() {
            let mut stored = attrs.clone();
            stored.next_hop = None;
            stored.mp_reach = None;
            stored.mp_unreach = None;
            // RFC 4271 5.1.5: LOCAL_PREF from an external peer is ignored; RFC 7606
            // 7.9 and 7.10: so are ORIGINATOR_ID and CLUSTER_LIST (attribute discard),
            // which only route reflectors of one AS exchange.
            if ebgp {
                stored.local_pref = None;
                stored.originator_id = None;
                stored.cluster_list.clear();
            }
            let stored = Arc::new(stored);
            for (prefix, next_hop) in announced {
                let rejected = self.import_reject(&self.peers[&peer].info, &stored, prefix);
                let advertised = next_hop_addr(next_hop);
                let nh = self.sender_if_mapped(peer, advertised);
                let mapped = (nh != advertised).then_some(advertised);
                let path = Path {
                    source: Source::Peer(peer),
                    attrs: stored.clone(),
                    next_hop: Some(nh),
                    stale: false,
                };
                self.hold_next_hop(nh, resolve);
                let state = self.peers.get_mut(&peer).expect("checked above");
                if let Some(old) = state.adj_in.insert(*prefix, AdjIn::new(path, rejected, mapped)) {
                    self.release_next_hop(old.path.next_hop);
                }
                touched.push(*prefix);
            }
        }
        for prefix in touched {
            self.recompute(prefix, &mut changes);
        }
        changes
    }

    /// `nh` as the kernel can use it. FRR 8.4 advertises IPv6 routes with the
    /// IPv4-mapped next hop `::ffff:<its IPv4 address>` after a link under a surviving
    /// session flaps (and with `next-hop-self force` on an IPv6 peer group). The kernel
    /// routes no IPv6 prefix through an IPv4 gateway; but where that IPv4 address is the
    /// peer of our IPv4 session with the same router (the same BGP identifier) as the
    /// IPv6 session the route came on, the router meant is the sender itself, and its
    /// address on this session is the next hop. Where the router has no IPv4 address
    /// on the link (an IPv6-only fabric), FRR maps its BGP identifier instead
    /// (`::ffff:<router-id>`, measured with FRR 8.4): the sender's own identifier
    /// names the sender too. Any other mapped address stays as it is, and
    /// unresolvable.
    fn sender_if_mapped(&self, peer: IpAddr, nh: IpAddr) -> IpAddr {
        let IpAddr::V6(v6) = nh else { return nh };
        let Some(v4) = v6.to_ipv4_mapped() else { return nh };
        let Some(from) = self.peers.get(&peer) else { return nh };
        if !peer.is_ipv6() {
            return nh;
        }
        if from.info.router_id == v4 {
            return peer;
        }
        match self.peers.get(&IpAddr::V4(v4)) {
            Some(owner) if owner.established && from.info.router_id == owner.info.router_id => peer,
            _ => nh,
        }
    }

    fn hold_next_hop(&mut self, nh: IpAddr, resolve: Resolve) {
        self.next_hops
            .entry(nh)
            .or_insert_with(|| NextHopState {
                paths: 0,
                unresolved: resolve(nh),
            })
            .paths += 1;
    }

    fn release_next_hop(&mut self, nh: Option<IpAddr>) {
        let Some(nh) = nh else { return };
        if let Some(state) = self.next_hops.get_mut(&nh) {
            state.paths -= 1;
            if state.paths == 0 {
                self.next_hops.remove(&nh);
            }
        }
    }

    /// Why `nh` cannot be used, when it cannot.
    pub fn unresolved(&self, nh: Option<IpAddr>) -> Option<&'static str> {
        nh.and_then(|nh| self.next_hops.get(&nh)).and_then(|s| s.unresolved)
    }

    /// Asks again whether each next hop in use resolves, after the kernel
    /// changed; the prefixes of those that changed run the decision again.
    pub fn refresh_next_hops(&mut self, resolve: Resolve) -> Changes {
        let mut changes = Changes::default();
        let mut changed = HashSet::new();
        for (nh, state) in &mut self.next_hops {
            let now = resolve(*nh);
            if now != state.unresolved {
                state.unresolved = now;
                changed.insert(*nh);
            }
        }
        if changed.is_empty() {
            return changes;
        }
        let prefixes: BTreeSet<IpNet> = self
            .peers
            .values()
            .flat_map(|p| p.adj_in.iter())
            .filter(|(_, a)| a.path.next_hop.is_some_and(|nh| changed.contains(&nh)))
            .map(|(p, _)| *p)
            .collect();
        for prefix in prefixes {
            self.recompute(prefix, &mut changes);
        }
        changes
    }

    /// A route of this node to advertise; `interface` is the one a pod's leaves by.
    pub fn local_add(&mut self, prefix: IpNet, interface: Option<&str>) -> Changes {
        let mut changes = Changes::default();
        let interface: Option<Arc<str>> = interface.map(Arc::from);
        match self.local.insert(prefix, interface.clone()) {
            None => self.recompute(prefix, &mut changes),
            // Only the interface changed, which only BGPFilter's export rules see.
            Some(old) if old != interface => {
                let peers: Vec<IpAddr> = self.peers.keys().copied().collect();
                for peer in peers {
                    self.export_one(peer, prefix, &mut changes);
                }
            }
            Some(_) => {}
        }
        changes
    }

    pub fn local_del(&mut self, prefix: IpNet) -> Changes {
        let mut changes = Changes::default();
        if self.local.remove(&prefix).is_some() {
            self.recompute(prefix, &mut changes);
        }
        changes
    }

    /// Every prefix known, with its paths, for the API; with `filter`, only the
    /// prefixes that cover it or lie inside it.
    pub fn routes(&self, filter: Option<IpNet>) -> Vec<RouteView> {
        self.routes_page(filter, None, usize::MAX).0
    }

    /// At most `limit` of [`Rib::routes`], those after `after` in prefix order, and
    /// whether more follow. Only the page is built: at 100k routes, building all of
    /// them for one answer raised the daemon's memory fivefold.
    pub fn routes_page(&self, filter: Option<IpNet>, after: Option<IpNet>, limit: usize) -> (Vec<RouteView>, bool) {
        let mut prefixes: Vec<IpNet> = self
            .local
            .keys()
            .chain(self.peers.values().flat_map(|p| p.adj_in.keys()))
            .filter(|p| after.is_none_or(|a| **p > a) && filter.is_none_or(|f| overlaps(f, **p)))
            .copied()
            .collect();
        prefixes.sort_unstable();
        prefixes.dedup();
        let more = prefixes.len() > limit;
        prefixes.truncate(limit);
        let page = prefixes
            .into_iter()
            .map(|prefix| {
                let sel = self.loc.get(&prefix);
                let mut paths = Vec::new();
                let rank = |source: Source| {
                    sel.and_then(|s| s.paths.iter().position(|p| p.source == source))
                        .map(|i| (i == 0, i < sel.map_or(0, |s| s.multipath)))
                        .unwrap_or((false, false))
                };
                if self.local.contains_key(&prefix) {
                    let (best, multipath) = rank(Source::Local);
                    paths.push(PathView {
                        from: "local".into(),
                        next_hop: None,
                        advertised_next_hop: None,
                        as_path: String::new(),
                        local_pref: DEFAULT_LOCAL_PREF,
                        best,
                        multipath,
                        stale: false,
                        rejected: None,
                        unresolved: None,
                        attrs: Arc::new(PathAttributes::default()),
                    });
                }
                for (addr, peer) in &self.peers {
                    if let Some(a) = peer.adj_in.get(&prefix) {
                        let (best, multipath) = rank(Source::Peer(*addr));
                        paths.push(PathView {
                            from: addr.to_string(),
                            next_hop: a.path.next_hop,
                            advertised_next_hop: a.mapped(),
                            as_path: as_path_string(a.path.attrs.as_path.as_ref()),
                            local_pref: a.path.attrs.local_pref.unwrap_or(DEFAULT_LOCAL_PREF),
                            best,
                            multipath,
                            stale: a.path.stale,
                            rejected: a.rejected().cloned(),
                            unresolved: self.unresolved(a.path.next_hop),
                            attrs: a.path.attrs.clone(),
                        });
                    }
                }
                RouteView {
                    prefix,
                    local: self.local.contains_key(&prefix),
                    paths,
                }
            })
            .collect();
        (page, more)
    }

    /// The best learned routes as the FIB should hold them.
    pub fn fib_routes(&self) -> Vec<(IpNet, Vec<IpAddr>)> {
        self.loc
            .iter()
            .filter_map(|(p, s)| s.fib_next_hops().map(|h| (*p, h)))
            .collect()
    }

    fn is_ibgp(&self, info: &PeerInfo) -> bool {
        info.remote_as == info.local_as
    }

    /// The import policy's verdict on a path: the speaker's checks of its
    /// attributes (loops, the first AS), then the peer's BGPFilters (the first
    /// matching rule decides), then the pools and `allowedPrefixes`.
    fn import_reject(&self, info: &PeerInfo, attrs: &PathAttributes, prefix: &IpNet) -> Option<Rejected> {
        if let Some(why) = self.attribute_reject(info, attrs) {
            return Some(Rejected::Check(why));
        }
        let facts = RouteFacts {
            prefix: *prefix,
            from_peer: true,
            interface: None,
        };
        match info.filters.decide(Direction::Import, &facts) {
            Some(d) if d.action == Action::Accept => None,
            Some(d) => Some(Rejected::Filter(d.rule)),
            None => self.prefix_reject(info, prefix).map(Rejected::Check),
        }
    }

    /// Import checks that depend on the attributes only.
    fn attribute_reject(&self, info: &PeerInfo, attrs: &PathAttributes) -> Option<&'static str> {
        let own = attrs.as_path.as_ref().map_or(0, |p| {
            p.segments
                .iter()
                .flat_map(|s| s.asns())
                // The session's AS, and the node's where the session has its own: a
                // path through either has been here.
                .filter(|a| **a == info.local_as || **a == self.config.local_as)
                .count()
        });
        if own > usize::from(info.allowed_local_as) {
            return Some("AS path loop");
        }
        // RFC 4271 6.3: the leftmost AS of a route from an external peer must be the
        // peer's (FRR's enforce-first-as); a malformed AS_PATH is treat-as-withdraw
        // (RFC 7606 7.2).
        if info.enforce_first_as
            && !self.is_ibgp(info)
            && attrs.as_path.as_ref().and_then(AsPath::first_asn) != Some(info.remote_as)
        {
            return Some("AS_PATH does not start with the peer's AS (enforceFirstAS)");
        }
        // RFC 4456 section 8: a route that carries our own identifier as its
        // ORIGINATOR_ID is ours, reflected back (FRR reflects a client's routes to
        // the client itself): ignored, whether we reflect or not. Our cluster in
        // CLUSTER_LIST means the route went round through us.
        if attrs.originator_id == Some(self.config.router_id) {
            return Some("ORIGINATOR_ID is ours");
        }
        if let Some(id) = self.config.cluster_id {
            if attrs.cluster_list.contains(&id) {
                return Some("CLUSTER_LIST loop");
            }
        }
        None
    }

    fn prefix_reject(&self, info: &PeerInfo, prefix: &IpNet) -> Option<&'static str> {
        let inside = |nets: &[IpNet]| nets.iter().any(|n| n.contains(prefix));
        if inside(&self.config.pools) || inside(&info.allowed_prefixes) {
            None
        } else {
            Some("outside the pools and allowedPrefixes")
        }
    }

    /// Runs the decision process for `prefix` and records what changed.
    fn recompute(&mut self, prefix: IpNet, changes: &mut Changes) {
        let mut paths = Vec::new();
        if self.local.contains_key(&prefix) {
            paths.push(Path {
                source: Source::Local,
                attrs: Arc::new(PathAttributes {
                    origin: Some(Origin::Igp),
                    as_path: Some(AsPath::default()),
                    ..PathAttributes::default()
                }),
                next_hop: None,
                stale: false,
            });
        }
        for peer in self.peers.values() {
            if let Some(a) = peer.adj_in.get(&prefix) {
                if a.rejected().is_none() && self.unresolved(a.path.next_hop).is_none() {
                    paths.push(a.path.clone());
                }
            }
        }
        paths.sort_by(|a, b| self.compare(a, b));
        let new = (!paths.is_empty()).then(|| {
            let multipath = if paths[0].source == Source::Local {
                1
            } else {
                paths.iter().take_while(|p| self.multipath_equal(&paths[0], p)).count()
            };
            Selected {
                paths: paths.into_boxed_slice(),
                multipath,
            }
        });
        let old = self.loc.get(&prefix);
        if old == new.as_ref() {
            return;
        }
        let old_fib = old.and_then(Selected::fib_next_hops);
        let new_fib = new.as_ref().and_then(Selected::fib_next_hops);
        if old_fib != new_fib {
            changes.fib.push(match new_fib {
                Some(next_hops) => FibChange::Install { prefix, next_hops },
                None => FibChange::Remove { prefix },
            });
        }
        match new {
            Some(sel) => self.loc.insert(prefix, sel),
            None => self.loc.remove(&prefix),
        };
        let peers: Vec<IpAddr> = self.peers.keys().copied().collect();
        for peer in peers {
            self.export_one(peer, prefix, changes);
        }
    }

    /// Brings `peer`'s Adj-RIB-Out for `prefix` up to date.
    fn export_one(&mut self, peer: IpAddr, prefix: IpNet, changes: &mut Changes) {
        let Some(state) = self.peers.get(&peer) else {
            return;
        };
        if !state.established {
            return;
        }
        let want = self
            .loc
            .get(&prefix)
            .and_then(|sel| self.export(&state.info, &prefix, sel.best()));
        let state = self.peers.get_mut(&peer).expect("present");
        let change = match want {
            Some(route) => {
                if state.adj_out.get(&prefix) == Some(&route) {
                    return;
                }
                state.adj_out.insert(prefix, route.clone());
                OutChange::Announce {
                    prefix,
                    attrs: route.0,
                    next_hop: route.1,
                }
            }
            None => {
                if state.adj_out.remove(&prefix).is_none() {
                    return;
                }
                OutChange::Withdraw { prefix }
            }
        };
        changes.out.entry(peer).or_default().push(change);
    }

    /// What `to` should be sent for `prefix` when `best` is the best path.
    fn export(&self, to: &PeerInfo, prefix: &IpNet, best: &Path) -> Option<OutRoute> {
        if self.drain == Some(DrainMode::Withdraw) || !to.families.contains(&AfiSafi::unicast_of(prefix)) {
            return None;
        }
        let to_ibgp = self.is_ibgp(to);
        let mut reflect_from = None;
        if let Source::Peer(from) = best.source {
            if from == to.address {
                return None;
            }
            let from_info = &self.peers.get(&from)?.info;
            if self.is_ibgp(from_info) && to_ibgp {
                // RFC 4456: only a reflector passes iBGP routes on, and only
                // between a client and anyone.
                self.config.cluster_id?;
                if !(from_info.rr_client || to.rr_client) {
                    return None;
                }
                reflect_from = Some(from_info.router_id);
            }
        }
        let communities = &best.attrs.communities;
        if communities.contains(&Community::NO_ADVERTISE) || (!to_ibgp && communities.contains(&Community::NO_EXPORT)) {
            return None;
        }
        if !to.filters.is_empty() {
            let facts = RouteFacts {
                prefix: *prefix,
                from_peer: best.source != Source::Local,
                interface: self.local.get(prefix).and_then(|i| i.as_deref()),
            };
            if to
                .filters
                .decide(Direction::Export, &facts)
                .is_some_and(|d| d.action == Action::Reject)
            {
                return None;
            }
        }
        let mut attrs = PathAttributes {
            origin: Some(best.attrs.origin.unwrap_or(Origin::Igp)),
            as_path: Some(best.attrs.as_path.clone().unwrap_or_default()),
            communities: best.attrs.communities.clone(),
            large_communities: best.attrs.large_communities.clone(),
            // RFC 4360 section 3 (and RFC 5701): a non-transitive extended community
            // stays in the AS.
            extended_communities: best
                .attrs
                .extended_communities
                .iter()
                .filter(|c| to_ibgp || c.is_transitive())
                .copied()
                .collect(),
            ipv6_extended_communities: best
                .attrs
                .ipv6_extended_communities
                .iter()
                .filter(|c| to_ibgp || c.is_transitive())
                .copied()
                .collect(),
            atomic_aggregate: best.attrs.atomic_aggregate,
            aggregator: best.attrs.aggregator,
            unknown: best.attrs.unknown.iter().filter_map(|a| a.for_propagation()).collect(),
            ..PathAttributes::default()
        };
        if to_ibgp {
            attrs.local_pref = Some(best.attrs.local_pref.unwrap_or(DEFAULT_LOCAL_PREF));
            attrs.med = best.attrs.med;
            if let (Some(originator), Some(cluster)) = (reflect_from, self.config.cluster_id) {
                attrs.originator_id = Some(best.attrs.originator_id.unwrap_or(originator));
                attrs.cluster_list = std::iter::once(cluster)
                    .chain(best.attrs.cluster_list.iter().copied())
                    .collect();
            }
        } else {
            attrs.as_path.get_or_insert_with(AsPath::default).prepend(to.local_as);
        }
        self.advertisements.apply(prefix, &mut attrs, to_ibgp);
        if self.drain == Some(DrainMode::GracefulShutdown) {
            if !attrs.communities.contains(&Community::GRACEFUL_SHUTDOWN) {
                attrs.communities.push(Community::GRACEFUL_SHUTDOWN);
            }
            if to_ibgp {
                attrs.local_pref = Some(0);
            }
        }
        let learned = best.next_hop.filter(|nh| nh.is_ipv4() == prefix_is_v4(prefix));
        let self_nh = self_next_hop(to, prefix);
        let next_hop = match (to.next_hop_mode, best.source) {
            (_, Source::Local) | (NextHopMode::SelfAddress, _) => self_nh,
            (NextHopMode::Keep, _) => learned.or(self_nh),
            (NextHopMode::Auto, _) if !to_ibgp => self_nh,
            (NextHopMode::Auto, _) => learned.or(self_nh),
        }?;
        let next_hop = match (NextHop::from(next_hop), to.local_link_local) {
            (NextHop::V6 { global, .. }, Some(ll)) if Some(next_hop) == self_nh => NextHop::V6 {
                global,
                link_local: Some(ll),
            },
            (nh, _) => nh,
        };
        Some((attrs, next_hop))
    }

    /// RFC 4271 9.1.2.2, `Less` meaning `a` is preferred. Local routes come first
    /// whatever a peer says: a peer's copy of our block must never replace our
    /// blackhole.
    fn compare(&self, a: &Path, b: &Path) -> Ordering {
        self.rank(a, b).then_with(|| self.tie_break(a, b))
    }

    /// Everything up to the router-ID tie-break: paths equal here share the FIB
    /// route (ECMP, with AS path multipath-relax: lengths count, not contents).
    fn rank(&self, a: &Path, b: &Path) -> Ordering {
        let local = |p: &Path| p.source != Source::Local;
        let pref = |p: &Path| std::cmp::Reverse(p.attrs.local_pref.unwrap_or(DEFAULT_LOCAL_PREF));
        let len = |p: &Path| p.attrs.as_path.as_ref().map_or(0, AsPath::path_len);
        let origin = |p: &Path| p.attrs.origin.unwrap_or(Origin::Incomplete);
        local(a)
            .cmp(&local(b))
            .then_with(|| pref(a).cmp(&pref(b)))
            .then_with(|| len(a).cmp(&len(b)))
            .then_with(|| origin(a).cmp(&origin(b)))
            .then_with(|| {
                let neighbor = |p: &Path| p.attrs.as_path.as_ref().and_then(AsPath::first_asn);
                if neighbor(a) == neighbor(b) {
                    a.attrs.med.unwrap_or(0).cmp(&b.attrs.med.unwrap_or(0))
                } else {
                    Ordering::Equal
                }
            })
            .then_with(|| self.is_ebgp_path(b).cmp(&self.is_ebgp_path(a)))
    }

    fn tie_break(&self, a: &Path, b: &Path) -> Ordering {
        let router_id = |p: &Path| {
            p.attrs.originator_id.or_else(|| match p.source {
                Source::Peer(addr) => self.peers.get(&addr).map(|s| s.info.router_id),
                Source::Local => Some(self.config.router_id),
            })
        };
        router_id(a)
            .cmp(&router_id(b))
            .then_with(|| a.attrs.cluster_list.len().cmp(&b.attrs.cluster_list.len()))
            .then_with(|| a.source.cmp(&b.source))
    }

    fn multipath_equal(&self, best: &Path, other: &Path) -> bool {
        other.source != Source::Local && self.rank(best, other) == Ordering::Equal
    }

    fn is_ebgp_path(&self, p: &Path) -> bool {
        match p.source {
            Source::Local => false,
            Source::Peer(addr) => self.peers.get(&addr).is_some_and(|s| !self.is_ibgp(&s.info)),
        }
    }
}

/// One prefix covers the other (the same prefix included).
pub fn overlaps(a: IpNet, b: IpNet) -> bool {
    a.contains(&b) || b.contains(&a)
}

fn prefix_is_v4(prefix: &IpNet) -> bool {
    matches!(prefix, IpNet::V4(_))
}

/// Our address to give `to` as the next hop of `prefix`: the session's own when
/// it is of the prefix's family, else our address of that family on the
/// session's interface (IPv6 routes on an IPv4 session, as BIRD and FRR do).
pub fn self_next_hop(to: &PeerInfo, prefix: &IpNet) -> Option<IpAddr> {
    let v4 = prefix_is_v4(prefix);
    to.local_address.filter(|a| a.is_ipv4() == v4).or(if v4 {
        to.local_v4.map(IpAddr::V4)
    } else {
        to.local_v6.map(IpAddr::V6)
    })
}

/// The address to forward to: the global one of an IPv6 pair.
pub fn next_hop_addr(nh: &NextHop) -> IpAddr {
    match nh {
        NextHop::V4(a) => IpAddr::V4(*a),
        NextHop::V6 { global, .. } => IpAddr::V6(*global),
    }
}

fn as_path_string(path: Option<&AsPath>) -> String {
    let Some(path) = path else { return String::new() };
    path.segments
        .iter()
        .map(|s| {
            let asns: Vec<String> = s.asns().iter().map(u32::to_string).collect();
            match s {
                crate::packet::AsSegment::Sequence(_) => asns.join(" "),
                _ => format!("{{{}}}", asns.join(",")),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::ExtendedCommunity as ExtendedCommunityT;

    const LOCAL_AS: u32 = 64512;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn rib(cluster: bool) -> Rib {
        Rib::new(RibConfig {
            local_as: LOCAL_AS,
            router_id: "10.0.0.1".parse().unwrap(),
            cluster_id: cluster.then(|| "10.0.0.1".parse().unwrap()),
            pools: vec![net("10.244.0.0/16"), net("fd00:244::/48")],
        })
    }

    fn peer(addr: &str, asn: u32, rid: &str) -> PeerInfo {
        PeerInfo {
            address: ip(addr),
            remote_as: asn,
            router_id: rid.parse().unwrap(),
            local_address: Some(if addr.contains(':') {
                ip("fd00::1")
            } else {
                ip("192.0.2.1")
            }),
            local_link_local: None,
            local_v4: None,
            local_v6: None,
            rr_client: false,
            next_hop_mode: NextHopMode::Auto,
            local_as: LOCAL_AS,
            allowed_local_as: 0,
            enforce_first_as: true,
            allowed_prefixes: vec![],
            filters: PeerFilters::default(),
            families: vec![AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST],
        }
    }

    fn attrs(path: &[u32]) -> PathAttributes {
        PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence(path.iter().copied())),
            ..Default::default()
        }
    }

    fn nh(s: &str) -> NextHop {
        NextHop::from(ip(s))
    }

    fn up(rib: &mut Rib, info: PeerInfo) {
        rib.add_peer(info.clone());
        rib.peer_up(info);
    }

    #[test]
    fn local_block_is_announced_with_next_hop_self_and_prepend() {
        let mut rib = rib(false);
        up(&mut rib, peer("192.0.2.254", 65000, "10.0.0.254"));
        let c = rib.local_add(net("10.244.1.0/26"), None);
        assert!(c.fib.is_empty(), "local routes are the kernel's already");
        let OutChange::Announce { attrs, next_hop, .. } = &c.out[&ip("192.0.2.254")][0] else {
            panic!("{c:?}")
        };
        assert_eq!(*next_hop, nh("192.0.2.1"));
        assert_eq!(attrs.as_path, Some(AsPath::sequence([LOCAL_AS])));
        assert_eq!(attrs.local_pref, None);
        let c = rib.local_del(net("10.244.1.0/26"));
        assert_eq!(
            c.out[&ip("192.0.2.254")],
            vec![OutChange::Withdraw {
                prefix: net("10.244.1.0/26")
            }]
        );
    }

    #[test]
    fn routes_come_a_page_at_a_time_in_order() {
        let mut rib = rib(false);
        up(&mut rib, peer("192.0.2.254", 65000, "10.0.0.254"));
        let learned: Vec<(IpNet, NextHop)> = (0..5)
            .map(|i| (net(&format!("10.244.{i}.0/26")), nh("192.0.2.254")))
            .collect();
        rib.update(ip("192.0.2.254"), &attrs(&[65000]), &learned, &[], &|_| None);
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let (page, more) = rib.routes_page(None, after, 2);
            assert!(page.len() <= 2);
            seen.extend(page.iter().map(|r| r.prefix));
            after = page.last().map(|r| r.prefix);
            if !more {
                break;
            }
        }
        let all: Vec<IpNet> = rib.routes(None).iter().map(|r| r.prefix).collect();
        assert_eq!(seen, all);
        assert_eq!(seen.len(), 5);
        assert!(seen.windows(2).all(|w| w[0] < w[1]));
        // A filter applies across pages.
        let (page, more) = rib.routes_page(Some(net("10.244.3.0/24")), None, 2);
        assert_eq!((page.len(), more), (1, false));
    }

    #[test]
    fn learned_route_goes_to_fib_and_away_on_peer_down() {
        let mut rib = rib(false);
        up(&mut rib, peer("192.0.2.254", 65000, "10.0.0.254"));
        let c = rib.update(
            ip("192.0.2.254"),
            &attrs(&[65000]),
            &[(net("10.244.2.0/26"), nh("192.0.2.254"))],
            &[],
            &|_| None,
        );
        assert_eq!(
            c.fib,
            vec![FibChange::Install {
                prefix: net("10.244.2.0/26"),
                next_hops: vec![ip("192.0.2.254")]
            }]
        );
        assert!(c.out.is_empty(), "not sent back to where it came from");
        assert_eq!(rib.counts(ip("192.0.2.254")), (1, 1));
        let c = rib.peer_down(ip("192.0.2.254"), false);
        assert_eq!(
            c.fib,
            vec![FibChange::Remove {
                prefix: net("10.244.2.0/26")
            }]
        );
    }

    fn filters(yaml: &str) -> PeerFilters {
        PeerFilters(vec![Arc::new(serde_yaml::from_str(yaml).unwrap())])
    }

    fn announced(c: &Changes, to: &str) -> Vec<IpNet> {
        c.out
            .get(&ip(to))
            .into_iter()
            .flatten()
            .filter_map(|o| match o {
                OutChange::Announce { prefix, .. } => Some(*prefix),
                OutChange::Withdraw { .. } => None,
            })
            .collect()
    }

    #[test]
    fn bgp_filter_import_rules_decide_before_the_pools_and_a_new_filter_judges_again() {
        let mut rib = rib(false);
        let mut tor = peer("192.0.2.254", 65000, "10.0.0.254");
        tor.filters = filters(
            "name: f\nimportV4:\n\
             - {action: Reject, matchOperator: Equal, cidr: 10.244.220.0/26}\n\
             - {action: Accept, matchOperator: In, cidr: 203.0.113.0/24, prefixLength: {max: 24}}\n",
        );
        up(&mut rib, tor.clone());
        let routes = [
            (net("10.244.220.0/26"), nh("192.0.2.254")),
            (net("10.244.221.0/26"), nh("192.0.2.254")),
            (net("203.0.113.0/24"), nh("192.0.2.254")),
            (net("203.0.113.0/25"), nh("192.0.2.254")),
        ];
        let c = rib.update(ip("192.0.2.254"), &attrs(&[65000]), &routes, &[], &|_| None);
        let installed: Vec<IpNet> = c
            .fib
            .iter()
            .filter_map(|f| match f {
                FibChange::Install { prefix, .. } => Some(*prefix),
                FibChange::Remove { .. } => None,
            })
            .collect();
        // Rejected by rule 0; accepted by rule 1 outside the pools; no rule and
        // outside the pools: refused by the speaker's own rule.
        assert_eq!(installed, [net("10.244.221.0/26"), net("203.0.113.0/24")]);
        let why = |p: &str| {
            let routes = rib.routes(Some(net(p)));
            let route = routes.iter().find(|r| r.prefix == net(p)).unwrap();
            route.paths[0].rejected.clone().map(|r| r.as_str().to_string())
        };
        assert_eq!(why("10.244.220.0/26").as_deref(), Some("BGPFilter f importV4[0]"));
        assert_eq!(
            why("203.0.113.0/25").as_deref(),
            Some("outside the pools and allowedPrefixes")
        );
        // A reload takes the filter away: what was kept is accepted, no reset.
        let c = rib.set_filters(ip("192.0.2.254"), PeerFilters::default());
        assert_eq!(
            c.fib.iter().collect::<Vec<_>>(),
            [
                &FibChange::Install {
                    prefix: net("10.244.220.0/26"),
                    next_hops: vec![ip("192.0.2.254")]
                },
                &FibChange::Remove {
                    prefix: net("203.0.113.0/24")
                },
            ]
        );
        assert_eq!(rib.counts(ip("192.0.2.254")), (4, 2));
    }

    #[test]
    fn bgp_filter_export_rules_keep_a_route_from_one_peer_only() {
        let mut rib = rib(false);
        let mut a = peer("192.0.2.254", 65000, "10.0.0.254");
        a.filters = filters(
            "name: f\nexportV4:\n- {action: Reject, matchOperator: Equal, cidr: 10.244.1.0/26}\n\
             - {action: Reject, interface: 'cali*'}\nexportV6:\n- {action: Reject, source: RemotePeers}\n",
        );
        a.local_v6 = Some("fd00::1".parse().unwrap());
        up(&mut rib, a.clone());
        up(&mut rib, peer("192.0.2.253", 65001, "10.0.0.253"));
        let c = rib.local_add(net("10.244.1.0/26"), None);
        assert_eq!(announced(&c, "192.0.2.254"), []);
        assert_eq!(announced(&c, "192.0.2.253"), [net("10.244.1.0/26")]);
        let c = rib.local_add(net("10.244.2.7/32"), Some("cali0123"));
        assert_eq!(announced(&c, "192.0.2.254"), []);
        let c = rib.local_add(net("10.244.2.8/32"), Some("eth0"));
        assert_eq!(announced(&c, "192.0.2.254"), [net("10.244.2.8/32")]);
        // exportV6 rejects what peers sent, not our own.
        let c = rib.update(
            ip("192.0.2.253"),
            &attrs(&[65001]),
            &[(net("fd00:244:0:9::/64"), nh("fd00::253"))],
            &[],
            &|_| None,
        );
        assert_eq!(announced(&c, "192.0.2.254"), []);
        let c = rib.local_add(net("fd00:244:0:1::/64"), None);
        assert_eq!(announced(&c, "192.0.2.254"), [net("fd00:244:0:1::/64")]);
        // The filter goes: what it kept back is sent now.
        let c = rib.set_filters(ip("192.0.2.254"), PeerFilters::default());
        let mut sent = announced(&c, "192.0.2.254");
        sent.sort();
        assert_eq!(
            sent,
            [net("10.244.1.0/26"), net("10.244.2.7/32"), net("fd00:244:0:9::/64")]
        );
    }

    #[test]
    fn prefix_advertisements_attach_communities_and_a_reload_resends() {
        let mut rib = rib(false);
        up(&mut rib, peer("192.0.2.254", 65000, "10.0.0.254"));
        up(&mut rib, peer("192.0.2.2", LOCAL_AS, "10.0.0.2"));
        rib.local_add(net("10.244.1.0/26"), None);
        rib.local_add(net("10.244.9.0/26"), None);
        let named = vec![crate::policy::NamedCommunity {
            name: "a".into(),
            value: "65000:100".into(),
        }];
        let ads = vec![crate::policy::PrefixAdvertisement {
            cidr: net("10.244.1.0/24"),
            communities: vec!["a".into(), "65000:1:2".into()],
            local_preference: Some(300),
        }];
        let c = rib.set_advertisements(Advertisements::new(&named, &ads).unwrap());
        for (to, pref) in [("192.0.2.254", None), ("192.0.2.2", Some(300))] {
            let out = &c.out[&ip(to)];
            assert_eq!(out.len(), 1, "only the prefix inside the CIDR changes: {out:?}");
            let OutChange::Announce { prefix, attrs, .. } = &out[0] else {
                panic!()
            };
            assert_eq!(*prefix, net("10.244.1.0/26"));
            assert_eq!(attrs.communities, [Community::new(65000, 100)]);
            assert_eq!(attrs.large_communities[0].to_string(), "65000:1:2");
            assert_eq!(attrs.local_pref, pref);
        }
        let c = rib.set_advertisements(Advertisements::default());
        let OutChange::Announce { attrs, .. } = &c.out[&ip("192.0.2.254")][0] else {
            panic!()
        };
        assert!(attrs.communities.is_empty() && attrs.large_communities.is_empty());
    }

    #[test]
    fn import_policy_rejects_outside_pools_and_loops() {
        let mut rib = rib(false);
        let mut tor = peer("192.0.2.254", 65000, "10.0.0.254");
        tor.allowed_prefixes = vec![net("0.0.0.0/0")];
        up(&mut rib, tor);
        up(&mut rib, peer("192.0.2.253", 65001, "10.0.0.253"));
        let c = rib.update(
            ip("192.0.2.253"),
            &attrs(&[65001]),
            &[(net("0.0.0.0/0"), nh("192.0.2.253"))],
            &[],
            &|_| None,
        );
        assert!(c.fib.is_empty());
        assert_eq!(rib.counts(ip("192.0.2.253")), (1, 0));
        let c = rib.update(
            ip("192.0.2.254"),
            &attrs(&[65000]),
            &[(net("0.0.0.0/0"), nh("192.0.2.254"))],
            &[],
            &|_| None,
        );
        assert_eq!(c.fib.len(), 1, "allowedPrefixes admits the default route");
        let c = rib.update(
            ip("192.0.2.253"),
            &attrs(&[65001, LOCAL_AS]),
            &[(net("10.244.3.0/26"), nh("192.0.2.253"))],
            &[],
            &|_| None,
        );
        assert!(c.fib.is_empty(), "own AS in path");
        let mut allowed = peer("192.0.2.252", 65002, "10.0.0.252");
        allowed.allowed_local_as = 1;
        up(&mut rib, allowed);
        let c = rib.update(
            ip("192.0.2.252"),
            &attrs(&[65002, LOCAL_AS]),
            &[(net("10.244.3.0/26"), nh("192.0.2.252"))],
            &[],
            &|_| None,
        );
        assert_eq!(c.fib.len(), 1);
    }

    /// A peer's `localASNumber`: the session is internal when the peer's AS is it,
    /// what the peer is sent carries it (not the node's), and a path through it, or
    /// through the node's AS, is a loop.
    #[test]
    fn a_sessions_own_local_as_decides_ibgp_prepend_and_loops() {
        let mut rib = rib(false);
        let mut tor = peer("192.0.2.254", 65000, "10.0.0.254");
        tor.local_as = 65100;
        up(&mut rib, tor);
        let mut same = peer("192.0.2.253", 65100, "10.0.0.253");
        same.local_as = 65100;
        up(&mut rib, same);
        let c = rib.local_add(net("10.244.1.0/26"), None);
        let OutChange::Announce { attrs: sent, .. } = &c.out[&ip("192.0.2.254")][0] else {
            panic!("{c:?}")
        };
        assert_eq!(sent.as_path, Some(AsPath::sequence([65100])));
        let OutChange::Announce { attrs: sent, .. } = &c.out[&ip("192.0.2.253")][0] else {
            panic!("{c:?}")
        };
        assert_eq!(sent.as_path, Some(AsPath::sequence([])), "iBGP: nothing prepended");
        assert_eq!(sent.local_pref, Some(DEFAULT_LOCAL_PREF));
        for looped in [65100, LOCAL_AS] {
            let c = rib.update(
                ip("192.0.2.254"),
                &attrs(&[65000, looped]),
                &[(net("10.244.3.0/26"), nh("192.0.2.254"))],
                &[],
                &|_| None,
            );
            assert!(c.fib.is_empty(), "{looped} in the path");
        }
        let c = rib.update(
            ip("192.0.2.254"),
            &attrs(&[65000]),
            &[(net("10.244.3.0/26"), nh("192.0.2.254"))],
            &[],
            &|_| None,
        );
        assert_eq!(c.fib.len(), 1);
    }

    /// RFC 4271 6.3 (FRR's enforce-first-as, on by default) and RFC 7606 7.9/7.10:
    /// an external peer's route must start with its AS, and its ORIGINATOR_ID and
    /// CLUSTER_LIST are discarded, the route kept.
    #[test]
    fn external_routes_start_with_the_peers_as_and_lose_reflector_attributes() {
        let mut rib = rib(false);
        up(&mut rib, peer("192.0.2.254", 65000, "10.0.0.254"));
        let c = rib.update(
            ip("192.0.2.254"),
            &attrs(&[65099, 65000]),
            &[(net("10.244.3.0/26"), nh("192.0.2.254"))],
            &[],
            &|_| None,
        );
        assert!(c.fib.is_empty(), "first AS is not the peer's");
        assert_eq!(rib.counts(ip("192.0.2.254")), (1, 0));
        let mut reflected = attrs(&[65000]);
        // Our own identifier as ORIGINATOR_ID would make an iBGP route ours, reflected
        // back; from an external peer the attribute is discarded, not believed.
        reflected.originator_id = Some("10.0.0.1".parse().unwrap());
        reflected.cluster_list = vec!["10.0.0.9".parse().unwrap()];
        let c = rib.update(
            ip("192.0.2.254"),
            &reflected,
            &[(net("10.244.3.0/26"), nh("192.0.2.254"))],
            &[],
            &|_| None,
        );
        assert_eq!(c.fib.len(), 1, "{c:?}");
        let paths = &rib.routes(None)[0].paths;
        assert!(paths[0].attrs.originator_id.is_none() && paths[0].attrs.cluster_list.is_empty());
        let mut lenient = peer("192.0.2.253", 65001, "10.0.0.253");
        lenient.enforce_first_as = false;
        up(&mut rib, lenient);
        let c = rib.update(
            ip("192.0.2.253"),
            &attrs(&[65099]),
            &[(net("10.244.4.0/26"), nh("192.0.2.253"))],
            &[],
            &|_| None,
        );
        assert_eq!(c.fib.len(), 1, "enforceFirstAS: false takes it");
    }

    /// RFC 4360 section 3: non-transitive extended communities stay in the AS;
    /// transitive ones go everywhere.
    #[test]
    fn non_transitive_extended_communities_stay_in_the_as() {
        let mut rib = rib(true);
        up(&mut rib, peer("192.0.2.254", 65000, "10.0.0.254"));
        let mut client = peer("192.0.2.12", LOCAL_AS, "10.0.0.12");
        client.rr_client = true;
        up(&mut rib, client);
        let rt: ExtendedCommunityT = "rt:65000:1".parse().unwrap();
        let local = ExtendedCommunityT([0x43, 2, 0, 0, 0, 0, 0, 1]);
        let mut a = attrs(&[]);
        a.extended_communities = vec![rt, local];
        let c = rib.update(
            ip("192.0.2.12"),
            &a,
            &[(net("10.244.5.0/26"), nh("192.0.2.12"))],
            &[],
            &|_| None,
        );
        let OutChange::Announce { attrs: to_tor, .. } = &c.out[&ip("192.0.2.254")][0] else {
            panic!("{c:?}")
        };
        assert_eq!(to_tor.extended_communities, vec![rt]);
        let mut b = attrs(&[65000]);
        b.extended_communities = vec![rt, local];
        let c = rib.update(
            ip("192.0.2.254"),
            &b,
            &[(net("10.244.6.0/26"), nh("192.0.2.254"))],
            &[],
            &|_| None,
        );
        let OutChange::Announce { attrs: to_client, .. } = &c.out[&ip("192.0.2.12")][0] else {
            panic!("{c:?}")
        };
        assert_eq!(to_client.extended_communities, vec![rt, local]);
    }

    #[test]
    fn own_block_from_a_peer_never_replaces_the_blackhole() {
        let mut rib = rib(false);
        up(&mut rib, peer("192.0.2.254", 65000, "10.0.0.254"));
        rib.local_add(net("10.244.1.0/26"), None);
        let c = rib.update(
            ip("192.0.2.254"),
            &attrs(&[65000]),
            &[(net("10.244.1.0/26"), nh("192.0.2.254"))],
            &[],
            &|_| None,
        );
        assert!(c.is_empty(), "{c:?}");
        // When the block goes, the peer's copy takes over.
        let c = rib.local_del(net("10.244.1.0/26"));
        assert_eq!(c.fib.len(), 1);
    }

    #[test]
    fn decision_process_order() {
        let mut rib = rib(false);
        up(&mut rib, peer("192.0.2.10", 65010, "10.0.0.10"));
        up(&mut rib, peer("192.0.2.11", 65011, "10.0.0.11"));
        up(&mut rib, peer("192.0.2.12", LOCAL_AS, "10.0.0.12"));
        let p = net("10.244.5.0/26");
        rib.update(
            ip("192.0.2.10"),
            &attrs(&[65010, 1]),
            &[(p, nh("192.0.2.10"))],
            &[],
            &|_| None,
        );
        rib.update(
            ip("192.0.2.11"),
            &attrs(&[65011]),
            &[(p, nh("192.0.2.11"))],
            &[],
            &|_| None,
        );
        assert_eq!(rib.fib_routes(), vec![(p, vec![ip("192.0.2.11")])], "shorter AS path");
        let mut pref = attrs(&[1, 2, 3]);
        pref.local_pref = Some(200);
        rib.update(ip("192.0.2.12"), &pref, &[(p, nh("192.0.2.12"))], &[], &|_| None);
        assert_eq!(rib.fib_routes(), vec![(p, vec![ip("192.0.2.12")])], "local pref first");
        let mut incomplete = attrs(&[65011]);
        incomplete.origin = Some(Origin::Incomplete);
        rib.update(ip("192.0.2.12"), &attrs(&[]), &[], &[p], &|_| None);
        rib.update(ip("192.0.2.11"), &incomplete, &[(p, nh("192.0.2.11"))], &[], &|_| None);
        rib.update(
            ip("192.0.2.10"),
            &attrs(&[65010]),
            &[(p, nh("192.0.2.10"))],
            &[],
            &|_| None,
        );
        assert_eq!(rib.fib_routes(), vec![(p, vec![ip("192.0.2.10")])], "origin");
    }

    #[test]
    fn equal_paths_make_one_multipath_route() {
        let mut rib = rib(false);
        up(&mut rib, peer("192.0.2.10", 65010, "10.0.0.10"));
        up(&mut rib, peer("192.0.2.11", 65011, "10.0.0.11"));
        let p = net("10.244.5.0/26");
        rib.update(
            ip("192.0.2.11"),
            &attrs(&[65011, 65100]),
            &[(p, nh("192.0.2.11"))],
            &[],
            &|_| None,
        );
        let c = rib.update(
            ip("192.0.2.10"),
            &attrs(&[65010, 65100]),
            &[(p, nh("192.0.2.10"))],
            &[],
            &|_| None,
        );
        assert_eq!(
            c.fib,
            vec![FibChange::Install {
                prefix: p,
                next_hops: vec![ip("192.0.2.10"), ip("192.0.2.11")]
            }]
        );
        let c = rib.peer_down(ip("192.0.2.11"), false);
        assert_eq!(
            c.fib,
            vec![FibChange::Install {
                prefix: p,
                next_hops: vec![ip("192.0.2.10")]
            }]
        );
    }

    #[test]
    fn ibgp_routes_are_not_sent_to_ibgp_peers_without_reflection() {
        let mut rib = rib(false);
        up(&mut rib, peer("10.0.0.2", LOCAL_AS, "10.0.0.2"));
        up(&mut rib, peer("10.0.0.3", LOCAL_AS, "10.0.0.3"));
        up(&mut rib, peer("192.0.2.254", 65000, "10.0.0.254"));
        let c = rib.update(
            ip("10.0.0.2"),
            &attrs(&[]),
            &[(net("10.244.2.0/26"), nh("10.0.0.2"))],
            &[],
            &|_| None,
        );
        assert!(!c.out.contains_key(&ip("10.0.0.3")));
        let OutChange::Announce { attrs: a, next_hop, .. } = &c.out[&ip("192.0.2.254")][0] else {
            panic!()
        };
        assert_eq!(*next_hop, nh("192.0.2.1"), "eBGP: next hop self");
        assert_eq!(a.as_path, Some(AsPath::sequence([LOCAL_AS])));
        // An eBGP route goes to iBGP peers with its next hop kept.
        let c = rib.update(
            ip("192.0.2.254"),
            &attrs(&[65000]),
            &[(net("10.244.9.0/26"), nh("192.0.2.254"))],
            &[],
            &|_| None,
        );
        let OutChange::Announce { attrs: a, next_hop, .. } = &c.out[&ip("10.0.0.3")][0] else {
            panic!()
        };
        assert_eq!(*next_hop, nh("192.0.2.254"));
        assert_eq!(a.local_pref, Some(100));
    }

    #[test]
    fn route_reflector_reflects_between_clients_and_checks_loops() {
        let mut rib = rib(true);
        let mut client = peer("10.0.0.2", LOCAL_AS, "10.0.0.2");
        client.rr_client = true;
        up(&mut rib, client);
        up(&mut rib, peer("10.0.0.3", LOCAL_AS, "10.0.0.3"));
        let c = rib.update(
            ip("10.0.0.2"),
            &attrs(&[]),
            &[(net("10.244.2.0/26"), nh("10.0.0.2"))],
            &[],
            &|_| None,
        );
        let OutChange::Announce { attrs: a, next_hop, .. } = &c.out[&ip("10.0.0.3")][0] else {
            panic!()
        };
        assert_eq!(a.originator_id, Some("10.0.0.2".parse().unwrap()));
        assert_eq!(a.cluster_list, vec!["10.0.0.1".parse::<Ipv4Addr>().unwrap()]);
        assert_eq!(*next_hop, nh("10.0.0.2"));
        // A route that already went through this cluster is refused.
        let mut looped = attrs(&[]);
        looped.cluster_list = vec!["10.0.0.1".parse().unwrap()];
        let c = rib.update(
            ip("10.0.0.3"),
            &looped,
            &[(net("10.244.3.0/26"), nh("10.0.0.3"))],
            &[],
            &|_| None,
        );
        assert!(c.is_empty());
        assert_eq!(rib.counts(ip("10.0.0.3")), (1, 0));
    }

    #[test]
    fn own_routes_reflected_back_are_ignored_without_being_a_reflector() {
        let mut rib = rib(false);
        up(&mut rib, peer("10.0.0.254", LOCAL_AS, "10.0.0.254"));
        let mut reflected = attrs(&[]);
        reflected.originator_id = Some("10.0.0.1".parse().unwrap());
        reflected.cluster_list = vec!["10.0.0.254".parse().unwrap()];
        let c = rib.update(
            ip("10.0.0.254"),
            &reflected,
            &[(net("10.244.1.5/32"), nh("10.0.0.1"))],
            &[],
            &|_| None,
        );
        assert!(c.is_empty(), "{c:?}");
        assert_eq!(rib.counts(ip("10.0.0.254")), (1, 0));
    }

    #[test]
    fn unresolvable_next_hops_are_not_candidates_until_they_resolve() {
        let mut rib = rib(false);
        up(&mut rib, peer("192.0.2.10", 65010, "10.0.0.10"));
        up(&mut rib, peer("192.0.2.11", 65011, "10.0.0.11"));
        let p = net("10.244.5.0/26");
        let down = |nh: IpAddr| (nh == ip("192.0.2.10")).then_some("no route to it");
        rib.update(ip("192.0.2.10"), &attrs(&[65010]), &[(p, nh("192.0.2.10"))], &[], &down);
        assert!(rib.fib_routes().is_empty());
        rib.update(
            ip("192.0.2.11"),
            &attrs(&[65011, 1]),
            &[(p, nh("192.0.2.11"))],
            &[],
            &down,
        );
        assert_eq!(
            rib.fib_routes(),
            vec![(p, vec![ip("192.0.2.11")])],
            "the longer path, but it resolves"
        );
        let c = rib.refresh_next_hops(&|_| None);
        assert_eq!(
            c.fib,
            vec![FibChange::Install {
                prefix: p,
                next_hops: vec![ip("192.0.2.10")]
            }]
        );
        // Withdrawn everywhere: nothing is tracked any more.
        rib.update(ip("192.0.2.10"), &attrs(&[]), &[], &[p], &|_| None);
        rib.update(ip("192.0.2.11"), &attrs(&[]), &[], &[p], &|_| None);
        assert!(rib.next_hops.is_empty());
    }

    /// FRR after a flap under surviving sessions: its IPv6 routes come with the
    /// IPv4-mapped address of its IPv4 session's end. The same router (its BGP
    /// identifier on both sessions): the sender is the next hop; another: refused.
    #[test]
    fn an_ipv4_mapped_next_hop_of_the_sender_is_the_sender() {
        let mut rib = rib(false);
        up(&mut rib, peer("10.1.1.0", 65001, "10.0.255.0"));
        up(&mut rib, peer("fd00:1:1::1", 65001, "10.0.255.0"));
        up(&mut rib, peer("10.1.2.0", 65002, "10.0.255.1"));
        let p = net("fd00:244:0:2::/122");
        let mapped = |v4: &str| NextHop::V6 {
            global: format!("::ffff:{v4}").parse().unwrap(),
            link_local: Some("fe80::1".parse().unwrap()),
        };
        let unresolvable = |nh: IpAddr| match nh {
            IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => Some("an IPv4-mapped IPv6 address"),
            _ => None,
        };
        rib.update(
            ip("fd00:1:1::1"),
            &attrs(&[65001, 65102]),
            &[(p, mapped("10.1.1.0"))],
            &[],
            &unresolvable,
        );
        assert_eq!(rib.fib_routes(), vec![(p, vec![ip("fd00:1:1::1")])]);
        let view = &rib.routes(Some(p))[0].paths[0];
        assert_eq!(view.advertised_next_hop, Some(ip("::ffff:10.1.1.0")));
        // Another router's IPv4 address: not the sender; refused as before.
        rib.update(
            ip("fd00:1:1::1"),
            &attrs(&[65001, 65102]),
            &[(p, mapped("10.1.2.0"))],
            &[],
            &unresolvable,
        );
        assert!(rib.fib_routes().is_empty());
        // An IPv6-only link: FRR maps its BGP identifier, the sender's own.
        rib.update(
            ip("fd00:1:1::1"),
            &attrs(&[65001, 65102]),
            &[(p, mapped("10.0.255.0"))],
            &[],
            &unresolvable,
        );
        assert_eq!(rib.fib_routes(), vec![(p, vec![ip("fd00:1:1::1")])]);
        // Another router's identifier: refused.
        rib.update(
            ip("fd00:1:1::1"),
            &attrs(&[65001, 65102]),
            &[(p, mapped("10.0.255.1"))],
            &[],
            &unresolvable,
        );
        assert!(rib.fib_routes().is_empty());
    }

    #[test]
    fn graceful_restart_keeps_stale_paths_until_flushed() {
        let mut rib = rib(false);
        let info = peer("192.0.2.254", 65000, "10.0.0.254");
        up(&mut rib, info.clone());
        let p = net("10.244.2.0/26");
        rib.update(
            ip("192.0.2.254"),
            &attrs(&[65000]),
            &[(p, nh("192.0.2.254"))],
            &[],
            &|_| None,
        );
        let c = rib.peer_down(ip("192.0.2.254"), true);
        assert!(c.fib.is_empty());
        assert!(rib.has_stale(ip("192.0.2.254")));
        rib.peer_up(info);
        let c = rib.flush_stale(ip("192.0.2.254"), Some(AfiSafi::IPV4_UNICAST));
        assert_eq!(c.fib, vec![FibChange::Remove { prefix: p }]);
    }

    #[test]
    fn drain_withdraws_or_marks_graceful_shutdown() {
        let mut rib = rib(false);
        up(&mut rib, peer("192.0.2.254", 65000, "10.0.0.254"));
        up(&mut rib, peer("10.0.0.2", LOCAL_AS, "10.0.0.2"));
        let block = net("10.244.1.0/26");
        rib.local_add(block, None);
        let c = rib.set_drain(Some(DrainMode::Withdraw));
        for p in ["192.0.2.254", "10.0.0.2"] {
            assert_eq!(c.out[&ip(p)], vec![OutChange::Withdraw { prefix: block }]);
        }
        assert!(rib.set_drain(Some(DrainMode::Withdraw)).is_empty());
        // A peer coming up while drained gets nothing.
        assert!(rib.peer_up(peer("192.0.2.254", 65000, "10.0.0.254")).is_empty());
        let c = rib.set_drain(Some(DrainMode::GracefulShutdown));
        let OutChange::Announce { attrs: ebgp, .. } = &c.out[&ip("192.0.2.254")][0] else {
            panic!("{c:?}")
        };
        assert_eq!(ebgp.communities, vec![Community::GRACEFUL_SHUTDOWN]);
        assert_eq!(ebgp.local_pref, None);
        let OutChange::Announce { attrs: ibgp, .. } = &c.out[&ip("10.0.0.2")][0] else {
            panic!("{c:?}")
        };
        assert_eq!(ibgp.local_pref, Some(0));
        let c = rib.set_drain(None);
        let OutChange::Announce { attrs, .. } = &c.out[&ip("10.0.0.2")][0] else {
            panic!("{c:?}")
        };
        assert_eq!((attrs.local_pref, attrs.communities.len()), (Some(100), 0));
    }

    #[test]
    fn next_hop_modes() {
        let mut rib = rib(false);
        let mut keep = peer("192.0.2.20", 65020, "10.0.0.20");
        keep.next_hop_mode = NextHopMode::Keep;
        up(&mut rib, keep);
        let mut selfish = peer("10.0.0.3", LOCAL_AS, "10.0.0.3");
        selfish.next_hop_mode = NextHopMode::SelfAddress;
        up(&mut rib, selfish);
        up(&mut rib, peer("192.0.2.254", 65000, "10.0.0.254"));
        let c = rib.update(
            ip("192.0.2.254"),
            &attrs(&[65000]),
            &[(net("10.244.9.0/26"), nh("192.0.2.254"))],
            &[],
            &|_| None,
        );
        let hop = |peer: &str| match &c.out[&ip(peer)][0] {
            OutChange::Announce { next_hop, .. } => *next_hop,
            o => panic!("{o:?}"),
        };
        assert_eq!(hop("192.0.2.20"), nh("192.0.2.254"));
        assert_eq!(hop("10.0.0.3"), nh("192.0.2.1"));
    }

    #[test]
    fn ipv6_only_to_peers_with_the_family() {
        let mut rib = rib(false);
        let mut v4only = peer("192.0.2.254", 65000, "10.0.0.254");
        v4only.families = vec![AfiSafi::IPV4_UNICAST];
        up(&mut rib, v4only);
        up(&mut rib, peer("fd00::254", 65000, "10.0.0.254"));
        let c = rib.local_add(net("fd00:244:0:1::/64"), None);
        assert_eq!(c.out.len(), 1);
        let OutChange::Announce { next_hop, .. } = &c.out[&ip("fd00::254")][0] else {
            panic!()
        };
        assert_eq!(*next_hop, nh("fd00::1"));
        // On a shared link the next hop carries our link-local address too.
        let mut shared = peer("fd00::253", 65000, "10.0.0.253");
        shared.local_link_local = Some("fe80::1".parse().unwrap());
        let c = rib.peer_up(shared);
        let OutChange::Announce { next_hop, .. } = &c.out[&ip("fd00::253")][0] else {
            panic!()
        };
        assert_eq!(
            *next_hop,
            NextHop::V6 {
                global: "fd00::1".parse().unwrap(),
                link_local: Some("fe80::1".parse().unwrap())
            }
        );
    }
}
