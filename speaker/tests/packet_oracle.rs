//! Differential tests against netgauze-bgp-pkt, an independent BGP codec: what we
//! encode, netgauze must read with the same meaning, and the other way round.
//! Meaning is compared through small summaries, since the two models differ.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use netgauze_bgp_pkt::capabilities::{
    BgpCapability, ExtendedNextHopEncoding, ExtendedNextHopEncodingCapability, FourOctetAsCapability,
    GracefulRestartAddressFamily, GracefulRestartCapability, MultiProtocolExtensionsCapability,
};
use netgauze_bgp_pkt::community::Community as NgCommunity;
use netgauze_bgp_pkt::iana::RouteRefreshSubcode;
use netgauze_bgp_pkt::nlri::{Ipv4Unicast, Ipv4UnicastAddress, Ipv6Unicast, Ipv6UnicastAddress};
use netgauze_bgp_pkt::notification::{BgpNotificationMessage, CeaseError, HoldTimerExpiredError};
use netgauze_bgp_pkt::open::{BgpOpenMessage, BgpOpenMessageParameter};
use netgauze_bgp_pkt::path_attribute as ng;
use netgauze_bgp_pkt::route_refresh::BgpRouteRefreshMessage;
use netgauze_bgp_pkt::update::BgpUpdateMessage;
use netgauze_bgp_pkt::wire::deserializer::BgpParsingContext;
use netgauze_bgp_pkt::BgpMessage;
use netgauze_iana::address_family::{AddressFamily, AddressType};
use netgauze_parse_utils::reader::SliceReader;
use netgauze_parse_utils::traits::ParseFromWithOneInput;
use netgauze_parse_utils::WritablePdu;
use speaker::packet::{
    AfiSafi, AsPath, AsSegment, Capability, CeaseSubcode, Community, GracefulRestart, GracefulRestartFamily, Message,
    MpReach, MpUnreach, NextHop, Notification, Open, Origin, PathAttributes, RouteRefresh, SessionCaps, Update,
    AS_TRANS,
};

const FOUR: SessionCaps = SessionCaps { four_octet_as: true };
const TWO: SessionCaps = SessionCaps { four_octet_as: false };

fn ng_decode(bytes: &[u8], asn4: bool) -> BgpMessage {
    let mut ctx = BgpParsingContext::asn2_default();
    ctx.set_asn4(asn4);
    let mut reader = SliceReader::new(bytes);
    BgpMessage::parse(&mut reader, &mut ctx).expect("netgauze reads our bytes")
}

fn ng_encode(msg: &BgpMessage) -> Vec<u8> {
    let mut out = Vec::new();
    msg.write(&mut out).expect("netgauze writes");
    out
}

fn ours_decode(bytes: &[u8], caps: SessionCaps) -> Message {
    let (msg, used) = Message::decode(bytes, &caps).expect("we read netgauze's bytes");
    assert_eq!(used, bytes.len());
    msg
}

fn ours_encode(msg: &Message, caps: SessionCaps) -> Vec<u8> {
    msg.to_bytes(&caps).unwrap()
}

fn afi_safi_of(t: AddressType) -> AfiSafi {
    AfiSafi::new(t.address_family() as u16, t.subsequent_address_family() as u8)
}

fn address_type_of(f: AfiSafi) -> AddressType {
    match f {
        AfiSafi::IPV4_UNICAST => AddressType::Ipv4Unicast,
        AfiSafi::IPV6_UNICAST => AddressType::Ipv6Unicast,
        other => panic!("no netgauze address type for {other}"),
    }
}

// ---- OPEN ---------------------------------------------------------------

/// An OPEN reduced to what both models say: (my AS, hold, id, capabilities).
#[derive(Debug, PartialEq)]
struct OpenMeaning {
    my_as: u16,
    asn: u32,
    hold_time: u16,
    router_id: Ipv4Addr,
    caps: Vec<String>,
}

fn gr_text(r: bool, n: bool, t: u16, fams: Vec<(AfiSafi, bool)>) -> String {
    format!("gr r={r} n={n} t={t} {fams:?}")
}

fn open_meaning_ours(o: &Open) -> OpenMeaning {
    OpenMeaning {
        my_as: o.my_as,
        asn: o.asn(),
        hold_time: o.hold_time,
        router_id: o.router_id,
        caps: o
            .capabilities
            .iter()
            .map(|c| match c {
                Capability::Multiprotocol(f) => format!("mp {f}"),
                Capability::RouteRefresh => "rr".into(),
                Capability::RouteRefreshCisco => "rr-cisco".into(),
                Capability::FourOctetAs(a) => format!("as4 {a}"),
                Capability::GracefulRestart(gr) => gr_text(
                    gr.restarting,
                    gr.notification,
                    gr.restart_time,
                    gr.families
                        .iter()
                        .map(|f| (f.afi_safi, f.forwarding_preserved))
                        .collect(),
                ),
                Capability::Unknown { code, .. } => format!("code {code}"),
            })
            .collect(),
    }
}

fn open_meaning_ng(o: &BgpOpenMessage) -> OpenMeaning {
    OpenMeaning {
        my_as: o.my_as(),
        asn: o.my_asn4(),
        hold_time: o.hold_time(),
        router_id: o.bgp_id(),
        caps: o
            .capabilities()
            .into_iter()
            .map(|c| match c {
                BgpCapability::MultiProtocolExtensions(m) => {
                    format!("mp {}", afi_safi_of(m.address_type()))
                }
                BgpCapability::RouteRefresh => "rr".into(),
                BgpCapability::CiscoRouteRefresh => "rr-cisco".into(),
                BgpCapability::FourOctetAs(a) => format!("as4 {}", a.asn4()),
                BgpCapability::GracefulRestartCapability(gr) => gr_text(
                    gr.restart(),
                    gr.graceful_notification(),
                    gr.time(),
                    gr.address_families()
                        .iter()
                        .map(|f| (afi_safi_of(f.address_type()), f.forwarding_state()))
                        .collect(),
                ),
                other => format!("code {}", other.code().map(u8::from).unwrap_or_else(|c| c)),
            })
            .collect(),
    }
}

#[test]
fn open_ours_to_netgauze() {
    let open = Open::new(
        4_200_000_000,
        90,
        Ipv4Addr::new(10, 0, 0, 1),
        vec![
            Capability::Multiprotocol(AfiSafi::IPV4_UNICAST),
            Capability::Multiprotocol(AfiSafi::IPV6_UNICAST),
            Capability::RouteRefresh,
            Capability::RouteRefreshCisco,
            Capability::FourOctetAs(4_200_000_000),
            Capability::GracefulRestart(GracefulRestart {
                restarting: true,
                notification: true,
                restart_time: 120,
                families: vec![
                    GracefulRestartFamily {
                        afi_safi: AfiSafi::IPV4_UNICAST,
                        forwarding_preserved: true,
                    },
                    GracefulRestartFamily {
                        afi_safi: AfiSafi::IPV6_UNICAST,
                        forwarding_preserved: false,
                    },
                ],
            }),
            // Enhanced route refresh, unknown to us, known to netgauze.
            Capability::Unknown {
                code: 70,
                value: vec![],
            },
        ],
    );
    assert_eq!(open.my_as, AS_TRANS as u16);
    let bytes = ours_encode(&Message::Open(open.clone()), FOUR);
    let BgpMessage::Open(theirs) = ng_decode(&bytes, true) else {
        panic!("not an OPEN")
    };
    assert_eq!(open_meaning_ng(&theirs), open_meaning_ours(&open));
}

#[test]
fn open_netgauze_to_ours() {
    let caps = |c| BgpOpenMessageParameter::new_capabilities([c]);
    let theirs = BgpOpenMessage::new(
        65001,
        180,
        Ipv4Addr::new(5, 5, 5, 5),
        [
            caps(BgpCapability::MultiProtocolExtensions(
                MultiProtocolExtensionsCapability::new(AddressType::Ipv4Unicast),
            )),
            caps(BgpCapability::MultiProtocolExtensions(
                MultiProtocolExtensionsCapability::new(AddressType::Ipv6Unicast),
            )),
            caps(BgpCapability::CiscoRouteRefresh),
            caps(BgpCapability::RouteRefresh),
            caps(BgpCapability::FourOctetAs(FourOctetAsCapability::new(65001))),
            caps(BgpCapability::GracefulRestartCapability(
                GracefulRestartCapability::new(
                    false,
                    true,
                    300,
                    [GracefulRestartAddressFamily::new(true, AddressType::Ipv6Unicast)],
                ),
            )),
            caps(BgpCapability::ExtendedNextHopEncoding(
                ExtendedNextHopEncodingCapability::new(vec![ExtendedNextHopEncoding::new(
                    AddressType::Ipv4Unicast,
                    AddressFamily::IPv6,
                )]),
            )),
        ],
    );
    let bytes = ng_encode(&BgpMessage::Open(theirs.clone()));
    let Message::Open(ours) = ours_decode(&bytes, TWO) else {
        panic!("not an OPEN")
    };
    assert_eq!(open_meaning_ours(&ours), open_meaning_ng(&theirs));
    // Extended next hop stays as bytes: IPv4 unicast over an IPv6 next hop.
    assert!(ours.capabilities.contains(&Capability::Unknown {
        code: 5,
        value: vec![0, 1, 0, 1, 0, 2]
    }));
    // And we write back exactly what netgauze wrote.
    assert_eq!(ours_encode(&Message::Open(ours), TWO), bytes);
}

// ---- UPDATE -------------------------------------------------------------

/// An UPDATE reduced to what both models say.
#[derive(Debug, Default, PartialEq)]
struct UpdateMeaning {
    withdrawn: Vec<IpNet>,
    announced: Vec<IpNet>,
    origin: Option<u8>,
    /// (segment type, ASes)
    as_path: Option<Vec<(u8, Vec<u32>)>>,
    next_hop: Option<String>,
    med: Option<u32>,
    local_pref: Option<u32>,
    communities: Vec<u32>,
    originator_id: Option<Ipv4Addr>,
    cluster_list: Vec<Ipv4Addr>,
    /// (type, value) of attributes one side does not interpret
    other: Vec<(u8, Vec<u8>)>,
}

fn update_meaning_ours(u: &Update) -> UpdateMeaning {
    let a = &u.attrs;
    let mut m = UpdateMeaning {
        withdrawn: u.withdrawn.iter().map(|&p| IpNet::V4(p)).collect(),
        announced: u.nlri.iter().map(|&p| IpNet::V4(p)).collect(),
        origin: a.origin.map(|o| o as u8),
        as_path: a.as_path.as_ref().map(|p| {
            p.segments
                .iter()
                .map(|s| match s {
                    AsSegment::Set(v) => (1, v.clone()),
                    AsSegment::Sequence(v) => (2, v.clone()),
                    other => panic!("no confederations here: {other:?}"),
                })
                .collect()
        }),
        next_hop: a.next_hop.map(|n| n.to_string()),
        med: a.med,
        local_pref: a.local_pref,
        communities: a.communities.iter().map(|c| c.0).collect(),
        originator_id: a.originator_id,
        cluster_list: a.cluster_list.clone(),
        other: a.unknown.iter().map(|r| (r.type_code, r.value.clone())).collect(),
    };
    if let Some(reach) = &a.mp_reach {
        m.announced.extend(&reach.prefixes);
        m.next_hop = Some(reach.next_hop.to_string());
    }
    if let Some(unreach) = &a.mp_unreach {
        m.withdrawn.extend(&unreach.prefixes);
    }
    m
}

fn v4_prefix(p: &Ipv4UnicastAddress) -> IpNet {
    IpNet::V4(p.network().address())
}

fn v6_prefix(p: &Ipv6UnicastAddress) -> IpNet {
    IpNet::V6(p.network().address())
}

fn update_meaning_ng(u: &BgpUpdateMessage) -> UpdateMeaning {
    let mut m = UpdateMeaning {
        withdrawn: u.withdraw_routes().iter().map(v4_prefix).collect(),
        announced: u.nlri().iter().map(v4_prefix).collect(),
        ..UpdateMeaning::default()
    };
    for attr in u.path_attributes() {
        match attr.value() {
            ng::PathAttributeValue::Origin(o) => m.origin = Some(u8::from(*o)),
            ng::PathAttributeValue::AsPath(ng::AsPath::As4PathSegments(segs)) => {
                m.as_path = Some(
                    segs.iter()
                        .map(|s| (s.segment_type() as u8, s.as_numbers().to_vec()))
                        .collect(),
                )
            }
            ng::PathAttributeValue::AsPath(ng::AsPath::As2PathSegments(segs)) => {
                m.as_path = Some(
                    segs.iter()
                        .map(|s| {
                            let asns = s.as_numbers().iter().map(|&a| u32::from(a)).collect();
                            (s.segment_type() as u8, asns)
                        })
                        .collect(),
                )
            }
            ng::PathAttributeValue::NextHop(n) => m.next_hop = Some(n.next_hop().to_string()),
            ng::PathAttributeValue::MultiExitDiscriminator(med) => m.med = Some(med.metric()),
            ng::PathAttributeValue::LocalPreference(lp) => m.local_pref = Some(lp.metric()),
            ng::PathAttributeValue::Communities(c) => {
                m.communities = c.communities().iter().map(|c| c.value()).collect()
            }
            ng::PathAttributeValue::Originator(o) => m.originator_id = Some(o.id()),
            ng::PathAttributeValue::ClusterList(c) => {
                m.cluster_list = c.cluster_list().iter().map(|c| c.id()).collect()
            }
            ng::PathAttributeValue::MpReach(ng::MpReach::Ipv6Unicast {
                next_hop_global,
                next_hop_local,
                nlri,
            }) => {
                m.announced.extend(nlri.iter().map(v6_prefix));
                m.next_hop = Some(
                    NextHop::V6 {
                        global: *next_hop_global,
                        link_local: *next_hop_local,
                    }
                    .to_string(),
                );
            }
            ng::PathAttributeValue::MpUnreach(ng::MpUnreach::Ipv6Unicast { nlri }) => {
                m.withdrawn.extend(nlri.iter().map(v6_prefix))
            }
            ng::PathAttributeValue::UnknownAttribute(u) => m.other.push((u.code(), u.value().to_vec())),
            other => panic!("attribute outside this test's scope: {other:?}"),
        }
    }
    m
}

fn ng_attr(optional: bool, transitive: bool, value: ng::PathAttributeValue) -> ng::PathAttribute {
    ng::PathAttribute::from(optional, transitive, false, false, value).unwrap()
}

fn ng_v4(s: &str) -> Ipv4UnicastAddress {
    Ipv4UnicastAddress::new_no_path_id(Ipv4Unicast::from_net(s.parse().unwrap()).unwrap())
}

fn ng_v6(s: &str) -> Ipv6UnicastAddress {
    Ipv6UnicastAddress::new(None, Ipv6Unicast::from_net(s.parse().unwrap()).unwrap())
}

fn ibgp_attrs() -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath {
            segments: vec![
                AsSegment::Sequence(vec![65001, 4_200_000_000]),
                AsSegment::Set(vec![64512, 64513]),
            ],
        }),
        med: Some(10),
        local_pref: Some(200),
        communities: vec![Community::GRACEFUL_SHUTDOWN, Community::new(65001, 100)],
        originator_id: Some(Ipv4Addr::new(10, 0, 0, 9)),
        cluster_list: vec![Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)],
        ..PathAttributes::default()
    }
}

fn round_trip_to_netgauze(update: &Update, caps: SessionCaps) -> BgpUpdateMessage {
    let bytes = ours_encode(&Message::Update(update.clone()), caps);
    match ng_decode(&bytes, caps.four_octet_as) {
        BgpMessage::Update(u) => u,
        other => panic!("not an UPDATE: {other:?}"),
    }
}

#[test]
fn ipv4_update_ours_to_netgauze() {
    let mut attrs = ibgp_attrs();
    attrs.next_hop = Some(Ipv4Addr::new(192, 0, 2, 1));
    let update = Update {
        withdrawn: vec!["10.244.7.0/26".parse().unwrap()],
        attrs,
        nlri: vec![
            "10.244.1.64/26".parse().unwrap(),
            "0.0.0.0/0".parse().unwrap(),
            "192.0.2.55/32".parse().unwrap(),
        ],
        ..Update::default()
    };
    let theirs = round_trip_to_netgauze(&update, FOUR);
    assert_eq!(update_meaning_ng(&theirs), update_meaning_ours(&update));
}

#[test]
fn ipv6_update_ours_to_netgauze() {
    for link_local in [None, Some("fe80::1".parse().unwrap())] {
        let mut update = Update {
            attrs: ibgp_attrs(),
            ..Update::default()
        };
        update.attrs.mp_reach = Some(MpReach {
            afi_safi: AfiSafi::IPV6_UNICAST,
            next_hop: NextHop::V6 {
                global: "fd00::1".parse().unwrap(),
                link_local,
            },
            prefixes: vec![
                "fd00:10:244:1::/64".parse().unwrap(),
                "2001:db8::/32".parse().unwrap(),
                "fd00::5/128".parse().unwrap(),
            ],
        });
        update.attrs.mp_unreach = Some(MpUnreach {
            afi_safi: AfiSafi::IPV6_UNICAST,
            prefixes: vec!["fd00:10:244:2::/64".parse().unwrap()],
        });
        let theirs = round_trip_to_netgauze(&update, FOUR);
        assert_eq!(update_meaning_ng(&theirs), update_meaning_ours(&update));
    }
}

#[test]
fn two_octet_update_ours_to_netgauze() {
    // A 2-byte peer sees AS_TRANS in AS_PATH and the real path in AS4_PATH.
    let mut update = Update {
        attrs: ibgp_attrs(),
        nlri: vec!["10.0.0.0/8".parse().unwrap()],
        ..Update::default()
    };
    update.attrs.next_hop = Some(Ipv4Addr::new(192, 0, 2, 1));
    let theirs = round_trip_to_netgauze(&update, TWO);
    let mut expected = update_meaning_ours(&update);
    let real_path = expected.as_path.clone().unwrap();
    expected.as_path = Some(
        real_path
            .iter()
            .map(|(t, asns)| {
                let asns = asns.iter().map(|&a| if a > 0xffff { AS_TRANS } else { a });
                (*t, asns.collect())
            })
            .collect(),
    );
    let mut as4_path = None;
    let attrs: Vec<_> = theirs
        .path_attributes()
        .iter()
        .filter(|a| match a.value() {
            ng::PathAttributeValue::As4Path(p) => {
                as4_path = Some(
                    p.segments()
                        .iter()
                        .map(|s| (s.segment_type() as u8, s.as_numbers().to_vec()))
                        .collect::<Vec<_>>(),
                );
                false
            }
            _ => true,
        })
        .cloned()
        .collect();
    let meaning = update_meaning_ng(&BgpUpdateMessage::new(
        theirs.withdraw_routes().to_vec(),
        attrs,
        theirs.nlri().to_vec(),
    ));
    assert_eq!(meaning, expected);
    assert_eq!(as4_path, Some(real_path));
}

#[test]
fn end_of_rib_ours_to_netgauze() {
    for family in [AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST] {
        let theirs = round_trip_to_netgauze(&Update::end_of_rib(family), FOUR);
        assert_eq!(theirs.end_of_rib(), Some(address_type_of(family)));
    }
}

#[test]
fn packed_updates_ours_to_netgauze() {
    let prefixes: Vec<IpNet> = (0..3000u32)
        .map(|i| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + (i << 8)), 24).unwrap()))
        .chain((0..800u128).map(|i| IpNet::V6(Ipv6Net::new(Ipv6Addr::from(0xfd00_u128 << 112 | i << 64), 64).unwrap())))
        .collect();
    let (v4, v6): (Vec<IpNet>, Vec<IpNet>) = prefixes.iter().partition(|p| matches!(p, IpNet::V4(_)));
    let mut announced = Vec::new();
    let v4_updates = Update::announce(&FOUR, &ibgp_attrs(), NextHop::V4(Ipv4Addr::new(10, 0, 0, 1)), &v4).unwrap();
    let v6_updates = Update::announce(
        &FOUR,
        &ibgp_attrs(),
        NextHop::V6 {
            global: "fd00::1".parse().unwrap(),
            link_local: None,
        },
        &v6,
    )
    .unwrap();
    for update in v4_updates.iter().chain(&v6_updates) {
        announced.extend(update_meaning_ng(&round_trip_to_netgauze(update, FOUR)).announced);
    }
    assert_eq!(announced, prefixes);
    let mut withdrawn = Vec::new();
    for update in Update::withdraw(&prefixes) {
        withdrawn.extend(update_meaning_ng(&round_trip_to_netgauze(&update, FOUR)).withdrawn);
    }
    assert_eq!(withdrawn, prefixes);
}

#[test]
fn updates_netgauze_to_ours() {
    let origin = ng_attr(false, true, ng::PathAttributeValue::Origin(ng::Origin::EGP));
    let as_path = ng_attr(
        false,
        true,
        ng::PathAttributeValue::AsPath(ng::AsPath::As4PathSegments(
            vec![
                ng::As4PathSegment::new(ng::AsPathSegmentType::AsSequence, [65010, 4_200_000_001]),
                ng::As4PathSegment::new(ng::AsPathSegmentType::AsSet, [1, 2, 3]),
            ]
            .into(),
        )),
    );
    let rest = [
        ng_attr(
            true,
            false,
            ng::PathAttributeValue::MultiExitDiscriminator(ng::MultiExitDiscriminator::new(7)),
        ),
        ng_attr(
            false,
            true,
            ng::PathAttributeValue::LocalPreference(ng::LocalPreference::new(150)),
        ),
        ng_attr(
            true,
            true,
            ng::PathAttributeValue::Communities(ng::Communities::new(vec![
                NgCommunity::new(0xffff_ff01),
                NgCommunity::new(0xfdea_0001),
            ])),
        ),
        ng_attr(
            true,
            false,
            ng::PathAttributeValue::Originator(ng::Originator::new(Ipv4Addr::new(1, 1, 1, 1))),
        ),
        ng_attr(
            true,
            false,
            ng::PathAttributeValue::ClusterList(ng::ClusterList::new(vec![ng::ClusterId::new(Ipv4Addr::new(
                2, 2, 2, 2,
            ))])),
        ),
        ng_attr(
            true,
            true,
            ng::PathAttributeValue::UnknownAttribute(ng::UnknownAttribute::new(200, vec![1, 2])),
        ),
    ];
    let next_hop = ng_attr(
        false,
        true,
        ng::PathAttributeValue::NextHop(ng::NextHop::new(Ipv4Addr::new(10, 1, 1, 1))),
    );
    let v4 = BgpUpdateMessage::new(
        vec![ng_v4("10.9.0.0/16")],
        [vec![origin.clone(), as_path.clone(), next_hop], rest.to_vec()].concat(),
        vec![ng_v4("10.244.0.0/24"), ng_v4("10.244.3.128/25")],
    );
    let reach = ng_attr(
        true,
        false,
        ng::PathAttributeValue::MpReach(ng::MpReach::Ipv6Unicast {
            next_hop_global: "2001:db8::1".parse().unwrap(),
            next_hop_local: Some("fe80::1".parse().unwrap()),
            nlri: vec![ng_v6("2001:db8:1::/48"), ng_v6("::/0")].into(),
        }),
    );
    let unreach = ng_attr(
        true,
        false,
        ng::PathAttributeValue::MpUnreach(ng::MpUnreach::Ipv6Unicast {
            nlri: vec![ng_v6("2001:db8:2::/64")].into(),
        }),
    );
    let v6 = BgpUpdateMessage::new(
        vec![],
        [vec![origin, as_path, reach, unreach], rest.to_vec()].concat(),
        vec![],
    );
    for theirs in [v4, v6] {
        let bytes = ng_encode(&BgpMessage::Update(theirs.clone()));
        let Message::Update(ours) = ours_decode(&bytes, FOUR) else {
            panic!("not an UPDATE")
        };
        assert_eq!(ours.errors, vec![]);
        assert_eq!(update_meaning_ours(&ours), update_meaning_ng(&theirs));
    }
}

#[test]
fn end_of_rib_netgauze_to_ours() {
    let v6_eor = BgpUpdateMessage::new(
        vec![],
        vec![ng_attr(
            true,
            false,
            ng::PathAttributeValue::MpUnreach(ng::MpUnreach::Ipv6Unicast { nlri: vec![].into() }),
        )],
        vec![],
    );
    for (theirs, family) in [
        (BgpUpdateMessage::new(vec![], vec![], vec![]), AfiSafi::IPV4_UNICAST),
        (v6_eor, AfiSafi::IPV6_UNICAST),
    ] {
        let bytes = ng_encode(&BgpMessage::Update(theirs));
        let Message::Update(ours) = ours_decode(&bytes, FOUR) else {
            panic!("not an UPDATE")
        };
        assert_eq!(ours.end_of_rib_afi_safi(), Some(family));
        assert_eq!(ours_encode(&Message::Update(ours), FOUR), bytes);
    }
}

// ---- NOTIFICATION, KEEPALIVE, ROUTE-REFRESH ------------------------------

#[test]
fn notifications_both_ways() {
    let shutdown = Notification::shutdown(CeaseSubcode::AdministrativeShutdown, "node drain");
    let bytes = ours_encode(&Message::Notification(shutdown.clone()), FOUR);
    let BgpMessage::Notification(BgpNotificationMessage::CeaseError(CeaseError::AdministrativeShutdown { value })) =
        ng_decode(&bytes, true)
    else {
        panic!("netgauze did not see an Administrative Shutdown")
    };
    assert_eq!(&value[..], &shutdown.data[..]);

    let hard = Notification::hard_reset(&Notification::hold_timer_expired());
    let bytes = ours_encode(&Message::Notification(hard.clone()), FOUR);
    assert!(matches!(
        ng_decode(&bytes, true),
        BgpMessage::Notification(BgpNotificationMessage::CeaseError(CeaseError::HardReset { .. }))
    ));

    let theirs = BgpMessage::Notification(BgpNotificationMessage::HoldTimerExpiredError(
        HoldTimerExpiredError::Unspecific {
            sub_code: 0,
            value: vec![].into(),
        },
    ));
    let Message::Notification(ours) = ours_decode(&ng_encode(&theirs), FOUR) else {
        panic!("not a NOTIFICATION")
    };
    assert_eq!(ours, Notification::hold_timer_expired());
}

#[test]
fn keepalive_and_route_refresh_both_ways() {
    assert_eq!(
        ng_encode(&BgpMessage::KeepAlive),
        ours_encode(&Message::Keepalive, FOUR)
    );
    let ours = Message::RouteRefresh(RouteRefresh {
        afi_safi: AfiSafi::IPV6_UNICAST,
        subtype: 0,
    });
    let theirs = BgpMessage::RouteRefresh(BgpRouteRefreshMessage::new(
        AddressType::Ipv6Unicast,
        RouteRefreshSubcode::NormalRequest,
    ));
    assert_eq!(ng_decode(&ours_encode(&ours, FOUR), true), theirs);
    assert_eq!(ours_decode(&ng_encode(&theirs), FOUR), ours);
}
