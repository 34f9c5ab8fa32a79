//! Watching the kernel: netlink route, link and address events, read as they
//! come (never by scanning) and handed to the daemon's core in batches as
//! [`KernelEvent`]s; an overrun of the event socket is answered with a full
//! re-read. What the events mean is `kernel_view`'s business.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;

use futures::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::packet_core::{NetlinkBuffer, NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteType};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use rtnetlink::{Handle, RouteMessageBuilder};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::echoes::Echoes;
use crate::kernel_view::{AddressInfo, KernelEvent, KernelRoute, LinkInfo, RouteKind};
use crate::shutdown::Shutdown;

/// Large enough that a burst of pod churn does not overrun it (BIRD's did).
const RECEIVE_BUFFER: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("netlink: {0}")]
    Io(#[from] std::io::Error),
    #[error("netlink request failed: {0}")]
    Netlink(#[from] rtnetlink::Error),
}

/// Events read from one burst of netlink messages.
#[derive(Clone, Debug)]
pub struct KernelBatch {
    /// When the first message of the burst was read: the start of the
    /// event-to-UPDATE latency.
    pub received: std::time::Instant,
    pub events: Vec<KernelEvent>,
}

fn route_kind(t: RouteType) -> RouteKind {
    match t {
        RouteType::Unicast => RouteKind::Unicast,
        RouteType::BlackHole => RouteKind::Blackhole,
        RouteType::Unreachable => RouteKind::Unreachable,
        RouteType::Prohibit => RouteKind::Prohibit,
        _ => RouteKind::Other,
    }
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
    gateways.sort();
    Some(KernelRoute {
        prefix: IpNet::new(dst, len).ok()?,
        table,
        protocol: u8::from(h.protocol),
        kind: route_kind(h.kind),
        priority,
        oif,
        gateways,
    })
}

fn parse_link(l: &LinkMessage) -> (u32, Option<String>, bool) {
    let name = l.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.clone()),
        _ => None,
    });
    (l.header.index, name, l.header.flags.contains(LinkFlags::Up))
}

fn parse_address(a: &AddressMessage) -> Option<AddressInfo> {
    // IFA_LOCAL is the node's own address on point-to-point links; IFA_ADDRESS elsewhere.
    let local = a.attributes.iter().find_map(|x| match x {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    let address = local.or_else(|| {
        a.attributes.iter().find_map(|x| match x {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        })
    })?;
    Some(AddressInfo {
        index: a.header.index,
        address: IpNet::new(address, a.header.prefix_len).ok()?,
    })
}

/// Runs the watcher until shutdown: sends everything first (a dump), then every
/// batch of events as soon as the messages already queued have been read.
///
/// The event socket is read as raw datagrams: the kernel's echo of each of our own
/// route changes (100k of them when 100k routes arrive) is recognised from its
/// header and destination and dropped before anything is decoded; the rest is
/// decoded in full.
pub async fn watch(
    tx: mpsc::UnboundedSender<KernelBatch>,
    echoes: Option<Echoes>,
    mut shutdown: Shutdown,
) -> Result<(), KernelError> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    let groups = libc::RTMGRP_LINK
        | libc::RTMGRP_IPV4_ROUTE
        | libc::RTMGRP_IPV6_ROUTE
        | libc::RTMGRP_IPV4_IFADDR
        | libc::RTMGRP_IPV6_IFADDR;
    socket.bind(&SocketAddr::new(0, groups as u32))?;
    socket.set_non_blocking(true)?;
    force_receive_buffer(socket.as_raw_fd(), RECEIVE_BUFFER);
    // SAFETY: the Socket owns its descriptor, keeps it open until it is dropped
    // with the AsyncFd, and always answers as_raw_fd with that same one.
    let socket =
        unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) }.map_err(std::io::Error::from)?;
    // Dumps go through their own socket so their replies never mix with events.
    let (conn, handle, _) = rtnetlink::new_connection()?;
    tokio::spawn(conn);

    let initial = dump(&handle).await?;
    if let KernelEvent::Dump { routes, links, .. } = &initial {
        info!(routes = routes.len(), links = links.len(), "kernel read");
    }
    let _ = tx.send(KernelBatch {
        received: std::time::Instant::now(),
        events: vec![initial],
    });

    let mut buf = vec![0u8; 1 << 20];
    loop {
        let mut ready = tokio::select! {
            _ = shutdown.recv() => return Ok(()),
            ready = socket.readable() => ready?,
        };
        let received = std::time::Instant::now();
        let mut events = Vec::new();
        let mut overrun = false;
        // Coalesce what is already queued, without waiting for more.
        loop {
            match ready.try_io(|s| s.get_ref().recv(&mut &mut buf[..], 0)) {
                Ok(Ok(n)) => read_datagram(&buf[..n], &mut events, echoes.as_ref()),
                Ok(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => overrun = true,
                Ok(Err(e)) => return Err(e.into()),
                Err(_would_block) => break,
            }
        }
        if overrun {
            warn!("netlink receive buffer overrun: reading everything again");
            // Whatever is queued now predates the dump's answers.
            while let Ok(Ok(_)) = ready.try_io(|s| s.get_ref().recv(&mut &mut buf[..], 0)) {}
            events.push(dump(&handle).await?);
        }
        if !events.is_empty() {
            debug!(events = events.len(), "kernel events");
            if tx.send(KernelBatch { received, events }).is_err() {
                return Ok(());
            }
        }
    }
}

/// The events of one datagram of the event socket.
fn read_datagram(data: &[u8], events: &mut Vec<KernelEvent>, echoes: Option<&Echoes>) {
    for msg in netlink_messages(data) {
        let Ok(msg) = msg else {
            warn!("a truncated netlink message: the rest of the datagram is skipped");
            return;
        };
        let kind = NetlinkBuffer::new(msg).message_type();
        if let (Some(e), true) = (echoes, kind == libc::RTM_NEWROUTE || kind == libc::RTM_DELROUTE) {
            if let Some((prefix, protocol, table)) = route_key(&msg[16..]) {
                if e.is_echo_of(prefix, protocol, table, kind == libc::RTM_NEWROUTE) {
                    continue;
                }
            }
        }
        match NetlinkMessage::<RouteNetlinkMessage>::deserialize(msg) {
            Ok(m) => read_message(m, events),
            Err(e) => debug!(error = %e, "an event netlink could not decode"),
        }
    }
}

/// The netlink messages of one datagram, each with its header, undecoded; an
/// error (and the end) at a truncated one.
pub fn netlink_messages(data: &[u8]) -> impl Iterator<Item = Result<&[u8], KernelError>> + '_ {
    let mut offset = 0;
    std::iter::from_fn(move || {
        if offset + 16 > data.len() {
            return None;
        }
        let len = NetlinkBuffer::new(&data[offset..]).length() as usize;
        if len < 16 || offset + len > data.len() {
            offset = data.len();
            return Some(Err(KernelError::Io(std::io::Error::other("truncated netlink message"))));
        }
        let msg = &data[offset..offset + len];
        offset += (len + 3) & !3;
        Some(Ok(msg))
    })
}

/// Destination, protocol and table of a route message's payload (an `rtmsg` and
/// its attributes), read without decoding the rest.
fn route_key(payload: &[u8]) -> Option<(IpNet, u8, u32)> {
    let family = i32::from(*payload.first()?);
    let dst_len = *payload.get(1)?;
    let mut table = u32::from(*payload.get(4)?);
    let protocol = *payload.get(5)?;
    let mut dst: Option<IpAddr> = None;
    let mut attrs = payload.get(12..)?;
    while attrs.len() >= 4 {
        let alen = usize::from(u16::from_ne_bytes([attrs[0], attrs[1]]));
        let kind = u16::from_ne_bytes([attrs[2], attrs[3]]);
        if alen < 4 || alen > attrs.len() {
            return None;
        }
        let value = &attrs[4..alen];
        match kind {
            libc::RTA_DST => {
                dst = match (family, value.len()) {
                    (libc::AF_INET, 4) => Some(IpAddr::from(<[u8; 4]>::try_from(value).ok()?)),
                    (libc::AF_INET6, 16) => Some(IpAddr::from(<[u8; 16]>::try_from(value).ok()?)),
                    _ => return None,
                }
            }
            libc::RTA_TABLE if value.len() == 4 => table = u32::from_ne_bytes(value.try_into().ok()?),
            _ => {}
        }
        attrs = attrs.get(((alen + 3) & !3).min(attrs.len())..)?;
    }
    let dst = dst.or(match family {
        libc::AF_INET => Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        libc::AF_INET6 => Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
        _ => None,
    })?;
    Some((IpNet::new(dst, dst_len).ok()?, protocol, table))
}

/// Turns one netlink message into events.
fn read_message(msg: NetlinkMessage<RouteNetlinkMessage>, events: &mut Vec<KernelEvent>) {
    let route = |r: &RouteMessage, present: bool| parse_route(r).map(|route| KernelEvent::Route { route, present });
    if let NetlinkPayload::InnerMessage(inner) = msg.payload {
        match inner {
            RouteNetlinkMessage::NewRoute(r) => events.extend(route(&r, true)),
            RouteNetlinkMessage::DelRoute(r) => events.extend(route(&r, false)),
            RouteNetlinkMessage::NewLink(l) => {
                let (index, name, up) = parse_link(&l);
                events.push(KernelEvent::Link { index, name, up });
            }
            RouteNetlinkMessage::DelLink(l) => events.push(KernelEvent::LinkGone { index: l.header.index }),
            RouteNetlinkMessage::NewAddress(a) => {
                events.extend(parse_address(&a).map(|address| KernelEvent::Address { address, present: true }))
            }
            RouteNetlinkMessage::DelAddress(a) => {
                events.extend(parse_address(&a).map(|address| KernelEvent::Address {
                    address,
                    present: false,
                }))
            }
            _ => {}
        }
    }
}

/// Every link, address and IPv4/IPv6 route, as one [`KernelEvent::Dump`].
pub async fn dump(handle: &Handle) -> Result<KernelEvent, KernelError> {
    let links: Vec<LinkMessage> = handle.link().get().execute().try_collect().await?;
    let links = links
        .iter()
        .filter_map(|l| {
            let (index, name, up) = parse_link(l);
            name.map(|name| LinkInfo { index, name, up })
        })
        .collect();
    let addresses: Vec<AddressMessage> = handle.address().get().execute().try_collect().await?;
    let addresses = addresses.iter().filter_map(parse_address).collect();
    Ok(KernelEvent::Dump {
        links,
        routes: routes(handle).await?,
        addresses,
    })
}

/// Every IPv4 and IPv6 route.
pub async fn routes(handle: &Handle) -> Result<Vec<KernelRoute>, KernelError> {
    let mut routes = Vec::new();
    for msg in [
        RouteMessageBuilder::<Ipv4Addr>::new().build(),
        RouteMessageBuilder::<Ipv6Addr>::new().build(),
    ] {
        let got: Vec<RouteMessage> = handle.route().get(msg).execute().try_collect().await?;
        routes.extend(got.iter().filter_map(parse_route));
    }
    Ok(routes)
}

/// The node's addresses on the interface that holds `local`: the other family's
/// global address (a next hop for that family's routes on this session) and the
/// IPv6 link-local one. Read with getifaddrs.
pub fn addresses_beside(local: IpAddr) -> (Option<Ipv4Addr>, Option<Ipv6Addr>, Option<Ipv6Addr>) {
    let all = interface_addresses();
    let Some(ifname) = all.iter().find(|(_, a)| *a == local).map(|(n, _)| n.clone()) else {
        return (None, None, None);
    };
    let mut v4 = None;
    let mut v6 = None;
    let mut ll = None;
    for (name, a) in &all {
        if *name != ifname {
            continue;
        }
        match a {
            IpAddr::V4(a) if v4.is_none() => v4 = Some(*a),
            IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80 => {
                ll.get_or_insert(*a);
            }
            IpAddr::V6(a) if v6.is_none() && a.to_ipv4_mapped().is_none() => v6 = Some(*a),
            _ => {}
        }
    }
    (v4, v6, ll)
}

/// Every (interface, address) of this network namespace.
fn interface_addresses() -> Vec<(String, IpAddr)> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: ifa_addr points at a sockaddr whose family says its real type.
        let addr = unsafe {
            match i32::from((*ifa.ifa_addr).sa_family) {
                libc::AF_INET => {
                    let sin = &*ifa.ifa_addr.cast::<libc::sockaddr_in>();
                    Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))))
                }
                libc::AF_INET6 => {
                    let sin6 = &*ifa.ifa_addr.cast::<libc::sockaddr_in6>();
                    Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
                }
                _ => None,
            }
        };
        if let Some(addr) = addr {
            out.push((name, addr));
        }
    }
    // SAFETY: the list getifaddrs allocated, freed once.
    unsafe { libc::freeifaddrs(head) };
    out
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

#[cfg(test)]
mod tests {
    use super::*;

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

    /// A route event as the kernel sends it.
    fn route_event(kind: u16, prefix: &str, protocol: u8) -> Vec<u8> {
        use rtnetlink::packet_core::NetlinkHeader;
        use rtnetlink::packet_route::route::RouteProtocol;
        let p: IpNet = prefix.parse().unwrap();
        let route = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(p.addr(), p.prefix_len())
            .unwrap()
            .protocol(RouteProtocol::from(protocol))
            .table_id(254)
            .gateway(if p.addr().is_ipv4() {
                "10.0.0.1".parse().unwrap()
            } else {
                "fd00::1".parse().unwrap()
            })
            .unwrap()
            .build();
        let inner = if kind == libc::RTM_NEWROUTE {
            RouteNetlinkMessage::NewRoute(route)
        } else {
            RouteNetlinkMessage::DelRoute(route)
        };
        let mut msg = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::InnerMessage(inner));
        msg.finalize();
        let mut buf = vec![0; msg.buffer_len()];
        msg.serialize(&mut buf);
        buf
    }

    #[test]
    fn echoes_of_our_changes_are_dropped_unread_and_the_rest_decoded() {
        let echoes = Echoes::new(201, 254);
        let mut datagram = route_event(libc::RTM_NEWROUTE, "10.244.1.0/26", 201);
        datagram.extend(route_event(libc::RTM_NEWROUTE, "10.244.2.0/26", 201));
        datagram.extend(route_event(libc::RTM_DELROUTE, "10.244.1.0/26", 4));
        echoes.expect("10.244.1.0/26".parse().unwrap(), true);
        let mut events = Vec::new();
        read_datagram(&datagram, &mut events, Some(&echoes));
        let seen: Vec<(String, bool, u8)> = events
            .iter()
            .map(|e| match e {
                KernelEvent::Route { route, present } => (route.prefix.to_string(), *present, route.protocol),
                other => panic!("{other:?}"),
            })
            .collect();
        // Ours that we wrote: gone; ours we did not write, and another owner's: kept.
        assert_eq!(
            seen,
            vec![
                ("10.244.2.0/26".to_string(), true, 201),
                ("10.244.1.0/26".to_string(), false, 4)
            ]
        );
        assert_eq!(
            route_key(&route_event(libc::RTM_NEWROUTE, "fd00:244::/64", 201)[16..]),
            Some(("fd00:244::/64".parse().unwrap(), 201, 254))
        );
    }

    #[test]
    fn loopback_addresses_are_found() {
        let (v4, _, _) = addresses_beside("127.0.0.1".parse().unwrap());
        assert_eq!(v4, Some(Ipv4Addr::LOCALHOST));
    }
}
