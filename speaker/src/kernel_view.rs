//! The kernel's routing table as the speaker knows it from netlink events: which
//! routes are ours to advertise (pod blocks as `blackhole` routes inside a pool,
//! borrowed pod IPs as host routes on pod interfaces), which prefixes hold a route
//! of another owner (the FIB must leave those alone), and whether a next hop
//! resolves (RFC 4271 9.1.2.1) through a route of another owner. Pure: events in,
//! changes out, so the daemon's core and its replay tests own it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The route types the speaker tells apart (`rtm_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteKind {
    Unicast,
    Blackhole,
    Unreachable,
    Prohibit,
    /// Local, broadcast, multicast, ...: never ours, never a way to a next hop.
    Other,
}

/// One kernel route, reduced to what we use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelRoute {
    pub prefix: IpNet,
    #[serde(default = "main_table")]
    pub table: u32,
    pub protocol: u8,
    pub kind: RouteKind,
    #[serde(default)]
    pub priority: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oif: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<IpAddr>,
}

fn main_table() -> u32 {
    254
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkInfo {
    pub index: u32,
    pub name: String,
    pub up: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressInfo {
    pub index: u32,
    /// The address with its prefix length, as `ip addr` shows it.
    pub address: IpNet,
}

/// What the kernel watcher read, in the order it read it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KernelEvent {
    Route {
        route: KernelRoute,
        present: bool,
    },
    /// A link appeared or changed; `name` when the message carried it.
    Link {
        index: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        up: bool,
    },
    LinkGone {
        index: u32,
    },
    Address {
        #[serde(flatten)]
        address: AddressInfo,
        present: bool,
    },
    /// Everything, read again (at start, and after the event socket overran):
    /// replaces what was known.
    Dump {
        links: Vec<LinkInfo>,
        routes: Vec<KernelRoute>,
        #[serde(default)]
        addresses: Vec<AddressInfo>,
    },
}

/// What the watcher needs to classify routes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewConfig {
    pub pools: Vec<IpNet>,
    pub pod_interface_prefix: String,
    /// Our own routes (this protocol) are the FIB's business, not watched here.
    pub protocol: u8,
    pub table: u32,
}

/// What a batch of events changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ViewChanges {
    /// A route of ours to advertise appeared (`true`) or went away.
    pub local: Vec<(IpNet, bool)>,
    /// A route of another owner now holds the prefix (`true`), or none does any more.
    pub others: Vec<(IpNet, bool)>,
    /// Something next hops resolve through changed: routes, links or addresses.
    pub reach: bool,
    /// The kernel may have changed our routes without telling us: a link went down
    /// or up, an address changed, or events were lost. Time to read them back.
    pub fib_suspect: bool,
    /// Routes of ours (our protocol, our table) the kernel reports deleted, with their
    /// next hops: ours, or someone else's `ip route del` behind our back.
    pub own_deleted: Vec<(IpNet, Vec<IpAddr>)>,
    /// Routes of our protocol that appeared (prefix, gateways): our own writes
    /// coming back, or someone else's under our protocol number.
    pub own_added: Vec<(IpNet, Vec<IpAddr>)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Block,
    /// A host route on a pod interface; advertised unless a local block covers it.
    PodHost,
    Other,
}

#[derive(Clone, Copy, Debug)]
struct Stored {
    class: Class,
    kind: RouteKind,
    /// Through a router (the route has gateways), not straight onto a link.
    via_gateway: bool,
}

/// Identity of a kernel route for our bookkeeping.
type RouteKey = (IpNet, u32, Option<u32>);

/// Counts of the routes of other owners on one prefix, by what they do to a next hop.
#[derive(Clone, Copy, Debug, Default)]
struct Reach {
    /// Onto a link (connected, or `dev X`): the kernel takes a gateway there.
    direct: usize,
    /// Through a router: a gateway there would need recursion.
    via_gateway: usize,
    blocking: usize,
}

#[derive(Debug)]
pub struct KernelView {
    config: ViewConfig,
    links: HashMap<u32, (String, bool)>,
    routes: HashMap<RouteKey, Stored>,
    blocks: BTreeMap<IpNet, usize>,
    pod_hosts: BTreeMap<IpNet, usize>,
    /// Routes of another owner per prefix, of any class.
    others: HashMap<IpNet, usize>,
    reach: HashMap<IpNet, Reach>,
    addresses: HashSet<(u32, IpNet)>,
    advertised: BTreeSet<IpNet>,
}

#[derive(Debug, Default)]
struct Dirty {
    local: BTreeSet<IpNet>,
    others: BTreeMap<IpNet, bool>,
}

impl KernelView {
    pub fn new(config: ViewConfig) -> Self {
        KernelView {
            config,
            links: HashMap::new(),
            routes: HashMap::new(),
            blocks: BTreeMap::new(),
            pod_hosts: BTreeMap::new(),
            others: HashMap::new(),
            reach: HashMap::new(),
            addresses: HashSet::new(),
            advertised: BTreeSet::new(),
        }
    }

    /// Our routes to advertise.
    pub fn advertised(&self) -> &BTreeSet<IpNet> {
        &self.advertised
    }

    /// The pod interface a pod route of ours leaves by (BGPFilter's `interface`
    /// asks): `None` for a block, or when no pod route holds `prefix`.
    pub fn pod_interface(&self, prefix: &IpNet) -> Option<&str> {
        self.routes
            .iter()
            .filter(|((p, _, _), stored)| p == prefix && stored.class == Class::PodHost)
            .find_map(|((_, _, oif), _)| oif.and_then(|i| self.links.get(&i)))
            .map(|(name, _)| name.as_str())
    }

    /// Whether a route of another owner is on `prefix` in our table.
    pub fn held_by_other(&self, prefix: &IpNet) -> bool {
        self.others.contains_key(prefix)
    }

    /// Why `nh` cannot be a next hop in the kernel, or `None` when it can. As the
    /// kernel wants a gateway on a link, the most specific route of another owner
    /// covering it must go straight onto a link (a connected or `dev` route), and
    /// it must not be one of our own addresses. Next hops reachable only through a
    /// router would need recursive resolution, which the speaker does not do; our
    /// own routes never resolve a next hop.
    pub fn unresolvable(&self, nh: IpAddr) -> Option<&'static str> {
        match nh {
            IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => return Some("an IPv4-mapped IPv6 address"),
            IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80 => {
                return Some("a link-local address without an interface")
            }
            a if a.is_unspecified() || a.is_loopback() || a.is_multicast() => return Some("not a unicast address"),
            _ => {}
        }
        if self.addresses.iter().any(|(_, a)| a.addr() == nh) {
            return Some("one of this node's own addresses");
        }
        let max = if nh.is_ipv4() { 32 } else { 128 };
        for len in (0..=max).rev() {
            let Ok(net) = IpNet::new(nh, len) else { continue };
            if let Some(r) = self.reach.get(&net.trunc()) {
                return if r.direct > 0 {
                    None
                } else if r.via_gateway > 0 {
                    Some("reachable only through a router (no recursive next hops)")
                } else {
                    Some("a blackhole or unreachable route covers it")
                };
            }
        }
        Some("no route to it")
    }

    fn in_pool(&self, prefix: &IpNet) -> bool {
        self.config.pools.iter().any(|p| p.contains(prefix))
    }

    fn is_pod_link(&self, index: u32) -> bool {
        self.links
            .get(&index)
            .is_some_and(|(name, _)| name.starts_with(&self.config.pod_interface_prefix))
    }

    fn classify(&self, r: &KernelRoute) -> Option<Class> {
        if r.table != self.config.table || r.protocol == self.config.protocol || r.kind == RouteKind::Other {
            return None;
        }
        if r.kind == RouteKind::Blackhole && self.in_pool(&r.prefix) {
            return Some(Class::Block);
        }
        let host = r.prefix.prefix_len() == r.prefix.max_prefix_len();
        let on_pod_if = r.oif.is_some_and(|i| self.is_pod_link(i));
        if r.kind == RouteKind::Unicast && host && on_pod_if && self.in_pool(&r.prefix) {
            return Some(Class::PodHost);
        }
        Some(Class::Other)
    }

    /// Applies what the watcher read, in order, and says what changed.
    pub fn apply(&mut self, events: &[KernelEvent]) -> ViewChanges {
        let mut dirty = Dirty::default();
        let mut changes = ViewChanges::default();
        for event in events {
            match event {
                KernelEvent::Route { route, present } => {
                    if route.protocol == self.config.protocol && route.table == self.config.table {
                        let own = (route.prefix, route.gateways.clone());
                        match present {
                            true => changes.own_added.push(own),
                            false => changes.own_deleted.push(own),
                        }
                    }
                    if self.route(route, *present, &mut dirty) {
                        changes.reach = true;
                    }
                }
                KernelEvent::Link { index, name, up } => {
                    let was = self.links.get(index).map(|(_, up)| *up);
                    if let Some(name) = name {
                        let up_before = was.unwrap_or(*up);
                        self.links.insert(*index, (name.clone(), up_before));
                    }
                    if let Some((_, state)) = self.links.get_mut(index) {
                        *state = *up;
                    }
                    if !up {
                        // The kernel removes the routes through a link that goes down
                        // without a notification for each (IPv4).
                        if self.drop_link_routes(*index, &mut dirty) {
                            changes.reach = true;
                        }
                    }
                    if was != Some(*up) && !self.is_pod_link(*index) {
                        changes.reach = true;
                        changes.fib_suspect = true;
                    }
                }
                KernelEvent::LinkGone { index } => {
                    let pod = self.is_pod_link(*index);
                    if self.drop_link_routes(*index, &mut dirty) {
                        changes.reach = true;
                    }
                    self.addresses.retain(|(i, _)| i != index);
                    self.links.remove(index);
                    if !pod {
                        changes.reach = true;
                        changes.fib_suspect = true;
                    }
                }
                KernelEvent::Address { address, present } => {
                    let key = (address.index, address.address);
                    let changed = if *present {
                        self.addresses.insert(key)
                    } else {
                        self.addresses.remove(&key)
                    };
                    if changed && !self.is_pod_link(address.index) {
                        changes.reach = true;
                        changes.fib_suspect = true;
                    }
                }
                KernelEvent::Dump {
                    links,
                    routes,
                    addresses,
                } => {
                    self.reload(links, routes, addresses, &mut dirty);
                    changes.reach = true;
                    changes.fib_suspect = true;
                }
            }
        }
        self.settle(dirty, &mut changes);
        changes
    }

    /// Applies a route event; true when it changed how next hops resolve.
    fn route(&mut self, r: &KernelRoute, present: bool, dirty: &mut Dirty) -> bool {
        let key = (r.prefix, r.priority, r.oif);
        if present {
            let Some(class) = self.classify(r) else { return false };
            let stored = Stored {
                class,
                kind: r.kind,
                via_gateway: !r.gateways.is_empty(),
            };
            if let Some(old) = self.routes.insert(key, stored) {
                self.count(r.prefix, old, false, dirty);
            }
            self.count(r.prefix, stored, true, dirty);
            true
        } else if self.classify(r).is_none() {
            // Not one we keep (ours, another table's, another kind): its key may
            // be the same as one we keep, which must stay.
            false
        } else if let Some(old) = self.routes.remove(&key) {
            self.count(r.prefix, old, false, dirty);
            true
        } else {
            false
        }
    }

    /// Forgets the routes through a link gone down or away; says whether there
    /// were any (next hops may not resolve any more).
    fn drop_link_routes(&mut self, index: u32, dirty: &mut Dirty) -> bool {
        let gone: Vec<(RouteKey, Stored)> = self
            .routes
            .iter()
            .filter(|((_, _, oif), _)| *oif == Some(index))
            .map(|(k, s)| (*k, *s))
            .collect();
        let any = !gone.is_empty();
        for (key, stored) in gone {
            self.routes.remove(&key);
            self.count(key.0, stored, false, dirty);
        }
        any
    }

    fn count(&mut self, prefix: IpNet, stored: Stored, add: bool, dirty: &mut Dirty) {
        let bump = |n: &mut usize| {
            if add {
                *n += 1
            } else {
                *n = n.saturating_sub(1)
            }
        };
        let others = self.others.entry(prefix).or_default();
        let before = *others > 0;
        bump(others);
        let after = *others > 0;
        if !after {
            self.others.remove(&prefix);
        }
        if before != after {
            dirty.others.insert(prefix, after);
        }
        let reach = self.reach.entry(prefix).or_default();
        match stored.kind {
            RouteKind::Unicast if stored.via_gateway => bump(&mut reach.via_gateway),
            RouteKind::Unicast => bump(&mut reach.direct),
            RouteKind::Blackhole | RouteKind::Unreachable | RouteKind::Prohibit => bump(&mut reach.blocking),
            RouteKind::Other => {}
        }
        if reach.direct == 0 && reach.via_gateway == 0 && reach.blocking == 0 {
            self.reach.remove(&prefix);
        }
        let map = match stored.class {
            Class::Block => &mut self.blocks,
            Class::PodHost => &mut self.pod_hosts,
            Class::Other => return,
        };
        let n = map.entry(prefix).or_default();
        bump(n);
        if *n == 0 {
            map.remove(&prefix);
        }
        dirty.local.insert(prefix);
        if stored.class == Class::Block {
            // Host routes inside a block change with it.
            let inside: Vec<IpNet> = self.pod_hosts.keys().filter(|h| prefix.contains(*h)).copied().collect();
            dirty.local.extend(inside);
        }
    }

    /// Turns what was touched into the changes to report, in a stable order.
    fn settle(&mut self, dirty: Dirty, changes: &mut ViewChanges) {
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
                changes.local.push((prefix, want));
            }
        }
        changes.others.extend(dirty.others);
    }

    /// Replaces the whole model with a fresh dump; what differs from before is
    /// reported like any other change.
    fn reload(&mut self, links: &[LinkInfo], routes: &[KernelRoute], addresses: &[AddressInfo], dirty: &mut Dirty) {
        let old_others: BTreeSet<IpNet> = self.others.keys().copied().collect();
        dirty.local.extend(self.advertised.iter().copied());
        self.links = links.iter().map(|l| (l.index, (l.name.clone(), l.up))).collect();
        self.routes.clear();
        self.blocks.clear();
        self.pod_hosts.clear();
        self.others.clear();
        self.reach.clear();
        self.addresses = addresses.iter().map(|a| (a.index, a.address)).collect();
        let mut fresh = Dirty::default();
        for r in routes {
            self.route(r, true, &mut fresh);
        }
        dirty.local.extend(fresh.local);
        let new_others: BTreeSet<IpNet> = self.others.keys().copied().collect();
        for p in old_others.symmetric_difference(&new_others) {
            dirty.others.insert(*p, new_others.contains(p));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> KernelView {
        let mut v = KernelView::new(ViewConfig {
            pools: vec!["10.244.0.0/16".parse().unwrap()],
            pod_interface_prefix: "cali".into(),
            protocol: 201,
            table: 254,
        });
        v.apply(&[
            KernelEvent::Link {
                index: 5,
                name: Some("cali1234".into()),
                up: true,
            },
            KernelEvent::Link {
                index: 2,
                name: Some("eth1".into()),
                up: true,
            },
        ]);
        v
    }

    fn route(prefix: &str, kind: RouteKind, oif: Option<u32>, protocol: u8) -> KernelRoute {
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

    fn apply(v: &mut KernelView, r: &KernelRoute, present: bool) -> ViewChanges {
        v.apply(&[KernelEvent::Route {
            route: r.clone(),
            present,
        }])
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn blackhole_in_pool_is_a_block() {
        let mut v = view();
        let block = route("10.244.1.0/26", RouteKind::Blackhole, None, 3);
        let c = apply(&mut v, &block, true);
        assert_eq!(c.local, vec![(net("10.244.1.0/26"), true)]);
        assert_eq!(
            c.others,
            vec![(net("10.244.1.0/26"), true)],
            "a block is held by its owner"
        );
        let c = apply(&mut v, &block, false);
        assert_eq!(c.local, vec![(net("10.244.1.0/26"), false)]);
        // Outside the pools it is just someone else's route.
        let c = apply(&mut v, &route("192.168.0.0/24", RouteKind::Blackhole, None, 3), true);
        assert!(c.local.is_empty());
        assert_eq!(c.others, vec![(net("192.168.0.0/24"), true)]);
    }

    #[test]
    fn borrowed_ip_is_advertised_only_outside_local_blocks() {
        let mut v = view();
        let host = route("10.244.2.7/32", RouteKind::Unicast, Some(5), 3);
        assert!(apply(&mut v, &host, true).local.contains(&(net("10.244.2.7/32"), true)));
        assert!(
            v.held_by_other(&net("10.244.2.7/32")),
            "the pod's own route holds its /32"
        );
        let c = apply(&mut v, &route("10.244.2.0/26", RouteKind::Blackhole, None, 3), true);
        assert!(c.local.contains(&(net("10.244.2.7/32"), false)), "{c:?}");
        assert!(c.local.contains(&(net("10.244.2.0/26"), true)));
        // A host route on a non-pod interface is not ours.
        let other = route("10.244.3.7/32", RouteKind::Unicast, Some(2), 3);
        assert!(apply(&mut v, &other, true).local.is_empty());
    }

    #[test]
    fn own_protocol_is_ignored_and_link_loss_withdraws() {
        let mut v = view();
        let c = apply(&mut v, &route("10.244.9.0/26", RouteKind::Unicast, Some(2), 201), true);
        assert_eq!(
            c,
            ViewChanges {
                own_added: vec![(net("10.244.9.0/26"), vec![])],
                ..ViewChanges::default()
            },
            "our own routes are only reported, for the core to tell its echoes from others'"
        );
        let host = route("10.244.2.7/32", RouteKind::Unicast, Some(5), 3);
        apply(&mut v, &host, true);
        let c = v.apply(&[KernelEvent::LinkGone { index: 5 }]);
        assert!(c.local.contains(&(net("10.244.2.7/32"), false)));
        assert!(!c.fib_suspect, "a pod interface going away changes none of our routes");
    }

    /// Found by the core fuzz target: deleting a route with the same prefix,
    /// metric and interface as one the view keeps, but in another table or of our
    /// own protocol, made the view forget the one it keeps.
    #[test]
    fn deleting_a_route_it_does_not_keep_leaves_the_one_it_keeps() {
        let mut v = view();
        let block = route("10.244.1.0/26", RouteKind::Blackhole, None, 3);
        apply(&mut v, &block, true);
        let mut elsewhere = block.clone();
        elsewhere.table = 100;
        let ours = route("10.244.1.0/26", RouteKind::Unicast, None, 201);
        for gone in [elsewhere, ours] {
            let c = apply(&mut v, &gone, false);
            assert!(c.local.is_empty() && c.others.is_empty() && !c.reach, "{gone:?}: {c:?}");
            assert!(v.held_by_other(&net("10.244.1.0/26")));
        }
    }

    /// Found by the core fuzz target: a pod interface going down takes the routes
    /// through it, and a next hop they made reachable is no longer.
    #[test]
    fn routes_a_link_takes_down_with_it_change_reachability() {
        let mut v = view();
        let nh: IpAddr = "10.9.0.1".parse().unwrap();
        apply(&mut v, &route("10.9.0.0/24", RouteKind::Unicast, Some(5), 3), true);
        assert_eq!(v.unresolvable(nh), None);
        let c = v.apply(&[KernelEvent::Link {
            index: 5,
            name: None,
            up: false,
        }]);
        assert!(c.reach, "{c:?}");
        assert_eq!(v.unresolvable(nh), Some("no route to it"));
    }

    #[test]
    fn next_hops_resolve_through_routes_of_others_on_links_that_are_up() {
        let mut v = view();
        let nh: IpAddr = "10.1.1.0".parse().unwrap();
        assert_eq!(v.unresolvable(nh), Some("no route to it"));
        apply(&mut v, &route("10.1.1.0/31", RouteKind::Unicast, Some(2), 2), true);
        assert_eq!(v.unresolvable(nh), None);
        // A default route through a router does not make a gateway on a link.
        let mut default = route("0.0.0.0/0", RouteKind::Unicast, Some(2), 3);
        default.gateways = vec!["10.1.1.0".parse().unwrap()];
        apply(&mut v, &default, true);
        assert_eq!(
            v.unresolvable("10.7.0.1".parse().unwrap()),
            Some("reachable only through a router (no recursive next hops)")
        );
        // Our own routes never count.
        apply(&mut v, &route("10.9.0.0/16", RouteKind::Unicast, Some(2), 201), true);
        assert!(v.unresolvable("10.9.0.1".parse().unwrap()).is_some());
        // The link goes down: the kernel flushes its routes without a word.
        let c = v.apply(&[KernelEvent::Link {
            index: 2,
            name: None,
            up: false,
        }]);
        assert!(c.reach && c.fib_suspect);
        assert!(v.unresolvable(nh).is_some());
        assert!(v.unresolvable("::ffff:10.1.1.0".parse().unwrap()).is_some());
        v.apply(&[KernelEvent::Address {
            address: AddressInfo {
                index: 2,
                address: "10.1.1.1/31".parse().unwrap(),
            },
            present: true,
        }]);
        apply(&mut v, &route("10.1.1.0/31", RouteKind::Unicast, Some(2), 2), true);
        assert_eq!(v.unresolvable(nh), None);
        assert_eq!(
            v.unresolvable("10.1.1.1".parse().unwrap()),
            Some("one of this node's own addresses")
        );
        // A more specific blackhole wins over the connected route.
        apply(&mut v, &route("10.1.1.0/32", RouteKind::Blackhole, None, 4), true);
        assert!(v.unresolvable(nh).is_some());
    }

    #[test]
    fn dump_reports_only_differences() {
        let mut v = view();
        apply(&mut v, &route("10.244.1.0/26", RouteKind::Blackhole, None, 3), true);
        apply(&mut v, &route("10.244.4.0/26", RouteKind::Blackhole, None, 3), true);
        let c = v.apply(&[KernelEvent::Dump {
            links: vec![LinkInfo {
                index: 5,
                name: "cali1234".into(),
                up: true,
            }],
            routes: vec![
                route("10.244.1.0/26", RouteKind::Blackhole, None, 3),
                route("10.244.5.0/26", RouteKind::Blackhole, None, 3),
            ],
            addresses: vec![],
        }]);
        assert!(c.local.contains(&(net("10.244.4.0/26"), false)));
        assert!(c.local.contains(&(net("10.244.5.0/26"), true)));
        assert!(!c.local.contains(&(net("10.244.1.0/26"), true)));
        assert!(c.fib_suspect);
    }

    #[test]
    fn events_read_back_from_json() {
        let e: KernelEvent = serde_json::from_str(
            r#"{"route":{"route":{"prefix":"10.244.1.0/26","protocol":3,"kind":"blackhole"},"present":true}}"#,
        )
        .unwrap();
        assert_eq!(
            e,
            KernelEvent::Route {
                route: route("10.244.1.0/26", RouteKind::Blackhole, None, 3),
                present: true
            }
        );
    }
}
