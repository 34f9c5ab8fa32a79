//! Watching the kernel: which of its routes are ours to advertise (pod blocks as
//! `blackhole` routes inside a pool, borrowed pod IPs as host routes on pod
//! interfaces) and which prefixes other owners hold. It listens to netlink route
//! and link events, never scans; an overrun of its socket triggers a full re-dump.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;

use futures::channel::mpsc::UnboundedReceiver;
use futures::{StreamExt, TryStreamExt};
use ipnet::IpNet;
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteType};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::sys::AsyncSocket;
use rtnetlink::{Handle, MulticastGroup, RouteMessageBuilder};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::shutdown::Shutdown;

/// Large enough that a burst of pod churn does not overrun it (BIRD's did).
const RECEIVE_BUFFER: usize = 8 << 20;

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("netlink: {0}")]
    Io(#[from] std::io::Error),
    #[error("netlink request failed: {0}")]
    Netlink(#[from] rtnetlink::Error),
}

/// A change in what the kernel holds, per prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelChange {
    /// A route of ours to advertise appeared (`true`) or went away.
    Local { prefix: IpNet, present: bool },
    /// Some route of another protocol exists (`true`) or no longer does for the
    /// prefix: the FIB must leave it alone.
    Foreign { prefix: IpNet, present: bool },
}

/// Changes read from one burst of netlink events.
#[derive(Clone, Debug)]
pub struct KernelBatch {
    /// When the first event of the burst was read: the start of the
    /// event-to-UPDATE latency.
    pub received: std::time::Instant,
    pub changes: Vec<KernelChange>,
}

/// What the watcher needs to classify routes.
#[derive(Clone, Debug)]
pub struct WatchConfig {
    pub pools: Vec<IpNet>,
    pub pod_interface_prefix: String,
    /// Our own routes (this protocol) are the FIB's business, not watched.
    pub protocol: u8,
    pub table: u32,
}

/// One kernel route, reduced to what we use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelRoute {
    pub prefix: IpNet,
    pub table: u32,
    pub protocol: u8,
    pub kind: RouteType,
    pub priority: u32,
    pub oif: Option<u32>,
    pub gateways: Vec<IpAddr>,
}

/// Reads a route message; `None` for families other than IPv4/IPv6.
pub fn parse_route(msg: &RouteMessage) -> Option<KernelRoute> {
    let h = &msg.header;
    let mut table = u32::from(h.table);
    let mut dst = None;
    let mut priority = 0;
    let mut oif = None;
    let mut gateways = Vec::new();
    let addr = |a: &RouteAddress| match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    };
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(a) => dst = addr(a),
            RouteAttribute::Priority(p) => priority = *p,
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Gateway(a) => gateways.extend(addr(a)),
            RouteAttribute::MultiPath(hops) => {
                for hop in hops {
                    for a in &hop.attributes {
                        if let RouteAttribute::Gateway(g) = a {
                            gateways.extend(addr(g));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let len = h.destination_prefix_length;
    let dst = match (h.address_family, dst) {
        (_, Some(d)) => d,
        (AddressFamily::Inet, None) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        (AddressFamily::Inet6, None) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        _ => return None,
    };
    Some(KernelRoute {
        prefix: IpNet::new(dst, len).ok()?,
        table,
        protocol: u8::from(h.protocol),
        kind: h.kind,
        priority,
        oif,
        gateways,
    })
}

/// Identity of a kernel route for our bookkeeping.
type RouteKey = (IpNet, u32, Option<u32>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Block,
    /// A host route on a pod interface; advertised unless a local block covers it.
    PodHost,
    Foreign,
}

/// The watcher's model of the kernel: pure, so classification is unit-tested.
#[derive(Debug)]
pub struct KernelView {
    config: WatchConfig,
    links: HashMap<u32, String>,
    routes: HashMap<RouteKey, Class>,
    blocks: BTreeMap<IpNet, usize>,
    pod_hosts: BTreeMap<IpNet, usize>,
    foreign: HashMap<IpNet, usize>,
    advertised: BTreeSet<IpNet>,
}

impl KernelView {
    pub fn new(config: WatchConfig) -> Self {
        KernelView {
            config,
            links: HashMap::new(),
            routes: HashMap::new(),
            blocks: BTreeMap::new(),
            pod_hosts: BTreeMap::new(),
            foreign: HashMap::new(),
            advertised: BTreeSet::new(),
        }
    }

    pub fn advertised(&self) -> &BTreeSet<IpNet> {
        &self.advertised
    }

    fn in_pool(&self, prefix: &IpNet) -> bool {
        self.config.pools.iter().any(|p| p.contains(prefix))
    }

    fn classify(&self, r: &KernelRoute) -> Option<Class> {
        if r.table != self.config.table || r.protocol == self.config.protocol {
            return None;
        }
        if r.kind == RouteType::BlackHole && self.in_pool(&r.prefix) {
            return Some(Class::Block);
        }
        let host = r.prefix.prefix_len() == r.prefix.max_prefix_len();
        let on_pod_if = r
            .oif
            .and_then(|i| self.links.get(&i))
            .is_some_and(|name| name.starts_with(&self.config.pod_interface_prefix));
        if r.kind == RouteType::Unicast && host && on_pod_if && self.in_pool(&r.prefix) {
            return Some(Class::PodHost);
        }
        match r.kind {
            RouteType::Unicast | RouteType::BlackHole | RouteType::Unreachable | RouteType::Prohibit => {
                Some(Class::Foreign)
            }
            _ => None,
        }
    }

    /// Applies a route event; [`KernelView::settle`] turns `dirty` into changes.
    pub fn route(&mut self, r: &KernelRoute, present: bool, dirty: &mut Dirty) {
        let key = (r.prefix, r.priority, r.oif);
        if present {
            let Some(class) = self.classify(r) else { return };
            if let Some(old) = self.routes.insert(key, class) {
                self.count(r.prefix, old, false, dirty);
            }
            self.count(r.prefix, class, true, dirty);
        } else if let Some(old) = self.routes.remove(&key) {
            self.count(r.prefix, old, false, dirty);
        }
    }

    /// A link appeared or changed. A link that is down has lost its routes: the
    /// kernel does not report IPv4 route removals for it.
    pub fn link(&mut self, index: u32, name: Option<String>, up: bool, dirty: &mut Dirty) {
        if let Some(name) = name {
            self.links.insert(index, name);
        }
        if !up {
            self.drop_link_routes(index, dirty);
        }
    }

    pub fn link_gone(&mut self, index: u32, dirty: &mut Dirty) {
        self.drop_link_routes(index, dirty);
        self.links.remove(&index);
    }

    fn drop_link_routes(&mut self, index: u32, dirty: &mut Dirty) {
        let gone: Vec<(RouteKey, Class)> = self
            .routes
            .iter()
            .filter(|((_, _, oif), _)| *oif == Some(index))
            .map(|(k, c)| (*k, *c))
            .collect();
        for (key, class) in gone {
            self.routes.remove(&key);
            self.count(key.0, class, false, dirty);
        }
    }

    fn count(&mut self, prefix: IpNet, class: Class, add: bool, dirty: &mut Dirty) {
        let map = match class {
            Class::Block => &mut self.blocks,
            Class::PodHost => &mut self.pod_hosts,
            Class::Foreign => {
                let n = self.foreign.entry(prefix).or_default();
                let before = *n > 0;
                if add {
                    *n += 1;
                } else {
                    *n = n.saturating_sub(1);
                }
                let after = *n > 0;
                if *n == 0 {
                    self.foreign.remove(&prefix);
                }
                if before != after {
                    dirty.foreign.insert(prefix, after);
                }
                return;
            }
        };
        let n = map.entry(prefix).or_default();
        if add {
            *n += 1;
        } else {
            *n = n.saturating_sub(1);
        }
        if *n == 0 {
            map.remove(&prefix);
        }
        dirty.local.insert(prefix);
        if class == Class::Block {
            // Host routes inside a block change with it.
            let inside: Vec<IpNet> = self.pod_hosts.keys().filter(|h| prefix.contains(*h)).copied().collect();
            dirty.local.extend(inside);
        }
    }

    /// Turns what was touched into the changes to report, in a stable order.
    pub fn settle(&mut self, dirty: Dirty) -> Vec<KernelChange> {
        let mut out = Vec::new();
        for prefix in dirty.local {
            let want = self.blocks.contains_key(&prefix)
                || (self.pod_hosts.contains_key(&prefix) && !self.blocks.keys().any(|b| b.contains(&prefix)));
            let have = self.advertised.contains(&prefix);
            if want != have {
                if want {
                    self.advertised.insert(prefix);
                } else {
                    self.advertised.remove(&prefix);
                }
                out.push(KernelChange::Local { prefix, present: want });
            }
        }
        for (prefix, present) in dirty.foreign {
            out.push(KernelChange::Foreign { prefix, present });
        }
        out
    }

    /// Replaces the whole model with a fresh dump, reporting the differences.
    pub fn resync(&mut self, links: Vec<(u32, String, bool)>, routes: Vec<KernelRoute>) -> Vec<KernelChange> {
        let old_foreign: BTreeSet<IpNet> = self.foreign.keys().copied().collect();
        let old_advertised = self.advertised.clone();
        self.links.clear();
        self.routes.clear();
        self.blocks.clear();
        self.pod_hosts.clear();
        self.foreign.clear();
        let mut dirty = Dirty::default();
        for (index, name, _) in links {
            self.links.insert(index, name);
        }
        for r in &routes {
            self.route(r, true, &mut dirty);
        }
        // Recompute from scratch, then diff against what was reported before.
        self.advertised.clear();
        let mut all = Dirty {
            local: dirty.local,
            foreign: BTreeMap::new(),
        };
        all.local.extend(old_advertised.iter().copied());
        self.settle(all);
        let mut out = Vec::new();
        for p in old_advertised.difference(&self.advertised) {
            out.push(KernelChange::Local {
                prefix: *p,
                present: false,
            });
        }
        for p in self.advertised.difference(&old_advertised) {
            out.push(KernelChange::Local {
                prefix: *p,
                present: true,
            });
        }
        let new_foreign: BTreeSet<IpNet> = self.foreign.keys().copied().collect();
        for p in old_foreign.difference(&new_foreign) {
            out.push(KernelChange::Foreign {
                prefix: *p,
                present: false,
            });
        }
        for p in new_foreign.difference(&old_foreign) {
            out.push(KernelChange::Foreign {
                prefix: *p,
                present: true,
            });
        }
        out
    }
}

/// Prefixes touched by a batch of events.
#[derive(Debug, Default)]
pub struct Dirty {
    local: BTreeSet<IpNet>,
    foreign: BTreeMap<IpNet, bool>,
}

/// Runs the watcher until shutdown: sends the initial state, then every batch of
/// changes as soon as the events already queued have been read.
pub async fn watch(
    config: WatchConfig,
    tx: mpsc::UnboundedSender<KernelBatch>,
    mut shutdown: Shutdown,
) -> Result<(), KernelError> {
    let groups = [
        MulticastGroup::Link,
        MulticastGroup::Ipv4Route,
        MulticastGroup::Ipv6Route,
    ];
    let (mut conn, _, mut events) = rtnetlink::new_multicast_connection(&groups)?;
    force_receive_buffer(conn.socket_mut().socket_mut().as_raw_fd(), RECEIVE_BUFFER);
    tokio::spawn(conn);
    // Dumps go through their own socket so their replies never mix with events.
    let (conn, handle, _) = rtnetlink::new_connection()?;
    tokio::spawn(conn);

    let mut view = KernelView::new(config);
    let (links, routes) = dump(&handle).await?;
    let initial = view.resync(links, routes);
    info!(advertised = view.advertised().len(), "kernel routes read");
    let _ = tx.send(KernelBatch {
        received: std::time::Instant::now(),
        changes: initial,
    });

    loop {
        let first = tokio::select! {
            _ = shutdown.recv() => return Ok(()),
            msg = events.next() => match msg {
                Some((msg, _)) => msg,
                None => {
                    warn!("netlink event socket closed");
                    return Ok(());
                }
            },
        };
        let received = std::time::Instant::now();
        let mut dirty = Dirty::default();
        let mut overrun = handle_event(&mut view, first, &mut dirty);
        // Coalesce what is already queued, without waiting for more.
        while let Ok((msg, _)) = events.try_recv() {
            overrun |= handle_event(&mut view, msg, &mut dirty);
        }
        let mut changes = view.settle(dirty);
        if overrun {
            warn!("netlink receive buffer overrun: re-reading every route");
            let (links, routes) = dump(&handle).await?;
            // Whatever is queued now predates the dump's answers.
            drain(&mut events);
            changes.extend(view.resync(links, routes));
        }
        if !changes.is_empty() {
            debug!(?changes, "kernel changes");
            if tx.send(KernelBatch { received, changes }).is_err() {
                return Ok(());
            }
        }
    }
}

fn drain(events: &mut UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, rtnetlink::sys::SocketAddr)>) {
    while events.try_recv().is_ok() {}
}

/// Applies one netlink message; true on a buffer overrun.
fn handle_event(view: &mut KernelView, msg: NetlinkMessage<RouteNetlinkMessage>, dirty: &mut Dirty) -> bool {
    match msg.payload {
        NetlinkPayload::Overrun(_) => return true,
        NetlinkPayload::InnerMessage(inner) => match inner {
            RouteNetlinkMessage::NewRoute(r) => {
                if let Some(r) = parse_route(&r) {
                    view.route(&r, true, dirty);
                }
            }
            RouteNetlinkMessage::DelRoute(r) => {
                if let Some(r) = parse_route(&r) {
                    view.route(&r, false, dirty);
                }
            }
            RouteNetlinkMessage::NewLink(l) => {
                let (index, name, up) = parse_link(&l);
                view.link(index, name, up, dirty);
            }
            RouteNetlinkMessage::DelLink(l) => view.link_gone(l.header.index, dirty),
            _ => {}
        },
        _ => {}
    }
    false
}

fn parse_link(l: &LinkMessage) -> (u32, Option<String>, bool) {
    let name = l.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.clone()),
        _ => None,
    });
    (l.header.index, name, l.header.flags.contains(LinkFlags::Up))
}

/// Every link and every IPv4/IPv6 route.
pub async fn dump(handle: &Handle) -> Result<(Vec<(u32, String, bool)>, Vec<KernelRoute>), KernelError> {
    let links: Vec<LinkMessage> = handle.link().get().execute().try_collect().await?;
    let links = links
        .iter()
        .filter_map(|l| {
            let (i, n, up) = parse_link(l);
            n.map(|n| (i, n, up))
        })
        .collect();
    let mut routes = Vec::new();
    for msg in [
        RouteMessageBuilder::<Ipv4Addr>::new().build(),
        RouteMessageBuilder::<Ipv6Addr>::new().build(),
    ] {
        let got: Vec<RouteMessage> = handle.route().get(msg).execute().try_collect().await?;
        routes.extend(got.iter().filter_map(parse_route));
    }
    Ok((links, routes))
}

/// Our own routes in `table`, as a crash or restart left them.
pub async fn own_routes(handle: &Handle, protocol: u8, table: u32) -> Result<Vec<KernelRoute>, KernelError> {
    let (_, routes) = dump(handle).await?;
    Ok(routes
        .into_iter()
        .filter(|r| r.protocol == protocol && r.table == table)
        .collect())
}

/// Our link-local address to pair with `local` in an IPv6 next hop (RFC 2545):
/// the one of the interface holding `local`, when `peer` is on that interface's
/// link (inside one of its prefixes). Reads `/proc/net/if_inet6`.
pub fn link_local_for(local: Ipv6Addr, peer: Ipv6Addr) -> Option<Ipv6Addr> {
    let table = std::fs::read_to_string("/proc/net/if_inet6").ok()?;
    link_local_in(&table, local, peer)
}

/// [`link_local_for`] over the text of `/proc/net/if_inet6`.
fn link_local_in(table: &str, local: Ipv6Addr, peer: Ipv6Addr) -> Option<Ipv6Addr> {
    // address, ifindex, prefix length, scope, flags, name
    let rows: Vec<(Ipv6Addr, u8, u8, &str)> = table
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let addr = u128::from_str_radix(f.first()?, 16).ok()?;
            let len = u8::from_str_radix(f.get(2)?, 16).ok()?;
            let scope = u8::from_str_radix(f.get(3)?, 16).ok()?;
            Some((Ipv6Addr::from(addr), len, scope, *f.get(5)?))
        })
        .collect();
    let (_, len, _, ifname) = rows.iter().find(|(a, ..)| *a == local)?;
    let on_link = ipnet::Ipv6Net::new(local, *len).ok()?.trunc().contains(&peer);
    if !on_link {
        return None;
    }
    rows.iter()
        .find(|(a, _, scope, name)| name == ifname && *scope == 0x20 && a.segments()[0] & 0xffc0 == 0xfe80)
        .map(|(a, ..)| *a)
}

/// SO_RCVBUFFORCE goes past `net.core.rmem_max` (we run as root); fall back to
/// SO_RCVBUF, which the kernel caps.
fn force_receive_buffer(fd: i32, size: usize) {
    let size = size as libc::c_int;
    for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: a valid fd and a pointer to a c_int of the length we pass.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            return;
        }
    }
    warn!("could not enlarge the netlink receive buffer");
}

/// Our protocol number as netlink's type.
pub fn protocol(p: u8) -> RouteProtocol {
    RouteProtocol::from(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> KernelView {
        let mut v = KernelView::new(WatchConfig {
            pools: vec!["10.244.0.0/16".parse().unwrap()],
            pod_interface_prefix: "cali".into(),
            protocol: 201,
            table: 254,
        });
        let mut d = Dirty::default();
        v.link(5, Some("cali1234".into()), true, &mut d);
        v.link(2, Some("eth0".into()), true, &mut d);
        v
    }

    fn route(prefix: &str, kind: RouteType, oif: Option<u32>, protocol: u8) -> KernelRoute {
        KernelRoute {
            prefix: prefix.parse().unwrap(),
            table: 254,
            protocol,
            kind,
            priority: 0,
            oif,
            gateways: vec![],
        }
    }

    fn apply(v: &mut KernelView, r: &KernelRoute, present: bool) -> Vec<KernelChange> {
        let mut d = Dirty::default();
        v.route(r, present, &mut d);
        v.settle(d)
    }

    fn local(p: &str, present: bool) -> KernelChange {
        KernelChange::Local {
            prefix: p.parse().unwrap(),
            present,
        }
    }

    #[test]
    fn blackhole_in_pool_is_a_block() {
        let mut v = view();
        let block = route("10.244.1.0/26", RouteType::BlackHole, None, 3);
        let c = apply(&mut v, &block, true);
        assert_eq!(c[0], local("10.244.1.0/26", true));
        let c = apply(&mut v, &block, false);
        assert_eq!(c[0], local("10.244.1.0/26", false));
        // Outside the pools it is just someone else's route.
        let c = apply(&mut v, &route("192.168.0.0/24", RouteType::BlackHole, None, 3), true);
        assert_eq!(
            c,
            vec![KernelChange::Foreign {
                prefix: "192.168.0.0/24".parse().unwrap(),
                present: true
            }]
        );
    }

    #[test]
    fn borrowed_ip_is_advertised_only_outside_local_blocks() {
        let mut v = view();
        let host = route("10.244.2.7/32", RouteType::Unicast, Some(5), 3);
        assert!(apply(&mut v, &host, true).contains(&local("10.244.2.7/32", true)));
        let c = apply(&mut v, &route("10.244.2.0/26", RouteType::BlackHole, None, 3), true);
        assert!(c.contains(&local("10.244.2.7/32", false)), "{c:?}");
        assert!(c.contains(&local("10.244.2.0/26", true)));
        // A host route on a non-pod interface is not ours.
        let other = route("10.244.3.7/32", RouteType::Unicast, Some(2), 3);
        assert!(!apply(&mut v, &other, true).contains(&local("10.244.3.7/32", true)));
    }

    #[test]
    fn own_protocol_is_ignored_and_link_loss_withdraws() {
        let mut v = view();
        assert!(apply(&mut v, &route("10.244.9.0/26", RouteType::Unicast, Some(2), 201), true).is_empty());
        let host = route("10.244.2.7/32", RouteType::Unicast, Some(5), 3);
        apply(&mut v, &host, true);
        let mut d = Dirty::default();
        v.link_gone(5, &mut d);
        assert!(v.settle(d).contains(&local("10.244.2.7/32", false)));
    }

    #[test]
    fn link_local_of_the_shared_link() {
        let table = "fd000000000000000000000000000001 03 40 00 80     eth1\n\
                     fe800000000000000000000000000011 03 40 20 80     eth1\n\
                     fd010000000000000000000000000001 04 40 00 80     eth2\n";
        let ll = link_local_in(table, "fd00::1".parse().unwrap(), "fd00::2".parse().unwrap());
        assert_eq!(ll, Some("fe80::11".parse().unwrap()));
        // A peer behind a router: no link-local.
        assert_eq!(
            link_local_in(table, "fd00::1".parse().unwrap(), "fd99::2".parse().unwrap()),
            None
        );
        assert_eq!(
            link_local_in(table, "fd01::1".parse().unwrap(), "fd01::2".parse().unwrap()),
            None
        );
    }

    #[test]
    fn resync_reports_only_differences() {
        let mut v = view();
        apply(&mut v, &route("10.244.1.0/26", RouteType::BlackHole, None, 3), true);
        apply(&mut v, &route("10.244.4.0/26", RouteType::BlackHole, None, 3), true);
        let c = v.resync(
            vec![(5, "cali1234".into(), true)],
            vec![
                route("10.244.1.0/26", RouteType::BlackHole, None, 3),
                route("10.244.5.0/26", RouteType::BlackHole, None, 3),
            ],
        );
        assert!(c.contains(&local("10.244.4.0/26", false)));
        assert!(c.contains(&local("10.244.5.0/26", true)));
        assert!(!c.contains(&local("10.244.1.0/26", true)));
    }
}
