//! UPDATE messages (RFC 4271 section 4.3): IPv4 unicast in the classic fields, other
//! families in MP_REACH_NLRI/MP_UNREACH_NLRI (RFC 4760), End-of-RIB (RFC 4724), and
//! packing many prefixes into as few messages as fit.

use bytes::{BufMut, BytesMut};
use ipnet::{IpNet, Ipv4Net};

use super::attribute::{attr_len, mp_reach_fixed_len, MpReach, MpUnreach, NextHop, PathAttributes};
use super::codes::{AttrType, SessionCaps, HEADER_LEN, MAX_MESSAGE_LEN};
use super::error::{EncodeError, ErrorAction, UpdateError};
use super::prefix::{decode_ipv4_prefixes, encode_prefix, encoded_len, AfiSafi};
use super::reader::Reader;

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Update {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub withdrawn: Vec<Ipv4Net>,
    #[serde(default)]
    pub attrs: PathAttributes,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nlri: Vec<Ipv4Net>,
    /// Errors found while reading that RFC 7606 lets the session survive, with the
    /// attribute at fault already left out of `attrs`. Log them; if any says
    /// treat-as-withdraw, see [`Update::treat_as_withdraw`]. Ignored when encoding.
    #[serde(skip)]
    pub errors: Vec<UpdateError>,
}

impl Update {
    /// True when RFC 7606 says every prefix announced here must be withdrawn instead.
    pub fn treat_as_withdraw(&self) -> bool {
        self.errors.iter().any(|e| e.action() == ErrorAction::TreatAsWithdraw)
    }

    /// Prefixes to remove from the Adj-RIB-In: the withdrawn ones, and the announced
    /// ones too when the UPDATE is to be treated as a withdraw.
    pub fn withdrawn_prefixes(&self) -> Vec<IpNet> {
        let mut out: Vec<IpNet> = self.withdrawn.iter().copied().map(IpNet::V4).collect();
        if let Some(unreach) = &self.attrs.mp_unreach {
            out.extend(&unreach.prefixes);
        }
        if self.treat_as_withdraw() {
            out.extend(self.nlri.iter().copied().map(IpNet::V4));
            if let Some(reach) = &self.attrs.mp_reach {
                out.extend(&reach.prefixes);
            }
        }
        out
    }

    /// Prefixes announced with their next hop; empty when treated as withdraw.
    pub fn announced_prefixes(&self) -> Vec<(IpNet, NextHop)> {
        if self.treat_as_withdraw() {
            return Vec::new();
        }
        let mut out = Vec::new();
        if let Some(nh) = self.attrs.next_hop {
            out.extend(self.nlri.iter().map(|p| (IpNet::V4(*p), NextHop::V4(nh))));
        }
        if let Some(reach) = &self.attrs.mp_reach {
            out.extend(reach.prefixes.iter().map(|p| (*p, reach.next_hop)));
        }
        out
    }

    /// The End-of-RIB marker for a family (RFC 4724 section 2): an empty UPDATE
    /// for IPv4 unicast, an empty MP_UNREACH_NLRI for any other.
    pub fn end_of_rib(afi_safi: AfiSafi) -> Update {
        let mut update = Update::default();
        if afi_safi != AfiSafi::IPV4_UNICAST {
            update.attrs.mp_unreach = Some(MpUnreach {
                afi_safi,
                prefixes: Vec::new(),
            });
        }
        update
    }

    /// The family this UPDATE is the End-of-RIB marker of, if it is one.
    pub fn end_of_rib_afi_safi(&self) -> Option<AfiSafi> {
        if !self.withdrawn.is_empty() || !self.nlri.is_empty() {
            return None;
        }
        let mut rest = self.attrs.clone();
        let afi_safi = match rest.mp_unreach.take() {
            None => AfiSafi::IPV4_UNICAST,
            Some(unreach) if unreach.prefixes.is_empty() => unreach.afi_safi,
            Some(_) => return None,
        };
        (rest == PathAttributes::default()).then_some(afi_safi)
    }

    /// UPDATEs announcing `prefixes` with `attrs`, as few as fit in 4096 bytes each.
    /// IPv4 prefixes with an IPv4 next hop go in the classic NLRI with NEXT_HOP;
    /// everything else in MP_REACH_NLRI. Any NEXT_HOP, MP_REACH_NLRI or
    /// MP_UNREACH_NLRI already in `attrs` is replaced.
    pub fn announce(
        caps: &SessionCaps,
        attrs: &PathAttributes,
        next_hop: NextHop,
        prefixes: &[IpNet],
    ) -> Result<Vec<Update>, EncodeError> {
        let mut base = attrs.clone();
        base.mp_reach = None;
        base.mp_unreach = None;
        base.next_hop = None;
        let mut updates = Vec::new();
        let (v4, v6): (Vec<IpNet>, Vec<IpNet>) = prefixes.iter().partition(|p| matches!(p, IpNet::V4(_)));
        if let (Some(prefix), NextHop::V4(_)) = (v6.first(), next_hop) {
            return Err(EncodeError::NextHopFamily {
                prefix: *prefix,
                next_hop: next_hop.to_string(),
            });
        }
        for (family, prefixes) in [(AfiSafi::IPV4_UNICAST, v4), (AfiSafi::IPV6_UNICAST, v6)] {
            if prefixes.is_empty() {
                continue;
            }
            let mut template = base.clone();
            let mp = match next_hop {
                NextHop::V4(nh) if family == AfiSafi::IPV4_UNICAST => {
                    template.next_hop = Some(nh);
                    None
                }
                _ => Some(mp_reach_fixed_len(&next_hop)),
            };
            let fixed = HEADER_LEN + 4 + encoded_attrs_len(caps, &template)?;
            for chunk in pack(&prefixes, fixed, mp)? {
                let mut update = Update {
                    attrs: template.clone(),
                    ..Update::default()
                };
                if mp.is_some() {
                    update.attrs.mp_reach = Some(MpReach {
                        afi_safi: family,
                        next_hop,
                        prefixes: chunk.to_vec(),
                    });
                } else {
                    update.nlri = chunk.iter().map(v4_of).collect();
                }
                updates.push(update);
            }
        }
        Ok(updates)
    }

    /// UPDATEs withdrawing `prefixes`, as few as fit: IPv4 in the withdrawn routes
    /// field, IPv6 in MP_UNREACH_NLRI, each family in its own messages.
    pub fn withdraw(prefixes: &[IpNet]) -> Vec<Update> {
        let (v4, v6): (Vec<IpNet>, Vec<IpNet>) = prefixes.iter().partition(|p| matches!(p, IpNet::V4(_)));
        let fixed = HEADER_LEN + 4;
        let mut updates = Vec::new();
        // A prefix costs at most 17 bytes, so it always fits and pack cannot fail.
        for chunk in pack(&v4, fixed, None).expect("a prefix fits") {
            updates.push(Update {
                withdrawn: chunk.iter().map(v4_of).collect(),
                ..Update::default()
            });
        }
        for chunk in pack(&v6, fixed, Some(3)).expect("a prefix fits") {
            let mut update = Update::default();
            update.attrs.mp_unreach = Some(MpUnreach {
                afi_safi: AfiSafi::IPV6_UNICAST,
                prefixes: chunk.to_vec(),
            });
            updates.push(update);
        }
        updates
    }

    pub(crate) fn decode(body: &[u8], caps: &SessionCaps) -> Result<Update, UpdateError> {
        let mut r = Reader::new(body);
        let withdrawn_len = r.u16().ok_or(UpdateError::WithdrawnOverrun)?;
        let withdrawn = r
            .take(usize::from(withdrawn_len))
            .ok_or(UpdateError::WithdrawnOverrun)?;
        let attrs_len = r.u16().ok_or(UpdateError::AttributesOverrun)?;
        let attrs = r.take(usize::from(attrs_len)).ok_or(UpdateError::AttributesOverrun)?;
        // RFC 7606 section 5.3: unreadable NLRI cannot be withdrawn, so reset.
        let withdrawn = decode_ipv4_prefixes(withdrawn).map_err(UpdateError::InvalidNetworkField)?;
        let nlri = decode_ipv4_prefixes(r.rest()).map_err(UpdateError::InvalidNetworkField)?;

        let mut errors = Vec::new();
        let attrs = PathAttributes::decode(attrs, caps, &mut errors)?;

        // RFC 7606 section 3d: missing mandatory attributes make it a withdraw.
        // NEXT_HOP is mandatory only with classic NLRI (RFC 4760 section 3).
        let reaches = attrs.mp_reach.as_ref().is_some_and(|r| !r.prefixes.is_empty());
        if !nlri.is_empty() || reaches {
            let mut missing = vec![];
            if attrs.origin.is_none() {
                missing.push(AttrType::Origin);
            }
            if attrs.as_path.is_none() {
                missing.push(AttrType::AsPath);
            }
            if attrs.next_hop.is_none() && !nlri.is_empty() {
                missing.push(AttrType::NextHop);
            }
            for kind in missing {
                let type_code = kind as u8;
                // A malformed one was dropped and reported already.
                let reported = errors.iter().any(|e| match e {
                    UpdateError::AttributeFlags { type_code: t, .. }
                    | UpdateError::AttributeLength { type_code: t, .. } => *t == type_code,
                    UpdateError::InvalidOrigin { .. } => kind == AttrType::Origin,
                    UpdateError::MalformedAsPath { .. } => kind == AttrType::AsPath,
                    _ => false,
                });
                if !reported {
                    errors.push(UpdateError::MissingWellKnown { type_code });
                }
            }
        }
        Ok(Update {
            withdrawn,
            attrs,
            nlri,
            errors,
        })
    }

    pub(crate) fn encode(&self, caps: &SessionCaps, out: &mut BytesMut) -> Result<(), EncodeError> {
        let start = out.len();
        out.put_u16(0);
        self.withdrawn.iter().for_each(|p| encode_prefix(&IpNet::V4(*p), out));
        let withdrawn_len = out.len() - start - 2;
        out.put_u16(0);
        self.attrs.encode(caps, out)?;
        let attrs_len = out.len() - start - 4 - withdrawn_len;
        self.nlri.iter().for_each(|p| encode_prefix(&IpNet::V4(*p), out));
        // Lengths above u16 mean the message is far too long; the caller's size
        // check reports it, so clamping here only avoids a panic.
        let clamp = |n: usize| u16::try_from(n).unwrap_or(u16::MAX).to_be_bytes();
        out[start..start + 2].copy_from_slice(&clamp(withdrawn_len));
        let at = start + 2 + withdrawn_len;
        out[at..at + 2].copy_from_slice(&clamp(attrs_len));
        Ok(())
    }
}

fn v4_of(prefix: &IpNet) -> Ipv4Net {
    match prefix {
        IpNet::V4(p) => *p,
        IpNet::V6(_) => unreachable!("partitioned as IPv4"),
    }
}

fn encoded_attrs_len(caps: &SessionCaps, attrs: &PathAttributes) -> Result<usize, EncodeError> {
    let mut scratch = BytesMut::new();
    attrs.encode(caps, &mut scratch)?;
    Ok(scratch.len())
}

/// Splits `prefixes` into runs that fit a message of `fixed` bytes plus the
/// prefixes, which go either straight in (`mp` is `None`) or in an MP attribute
/// whose value has `mp` bytes before them.
fn pack(prefixes: &[IpNet], fixed: usize, mp: Option<usize>) -> Result<Vec<&[IpNet]>, EncodeError> {
    let size = |bytes: usize| match mp {
        None => fixed + bytes,
        Some(mp_fixed) => fixed + attr_len(mp_fixed + bytes),
    };
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, prefix) in prefixes.iter().enumerate() {
        let cost = encoded_len(prefix);
        if size(bytes + cost) > MAX_MESSAGE_LEN {
            if i > start {
                chunks.push(&prefixes[start..i]);
                (start, bytes) = (i, 0);
            }
            if size(cost) > MAX_MESSAGE_LEN {
                return Err(EncodeError::MessageTooLong { length: size(cost) });
            }
        }
        bytes += cost;
    }
    if start < prefixes.len() {
        chunks.push(&prefixes[start..]);
    }
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use ipnet::Ipv6Net;

    use super::*;
    use crate::packet::message::frame;
    use crate::packet::{AsPath, Community, DecodeError, Message, Origin};

    const CAPS: SessionCaps = SessionCaps { four_octet_as: true };

    fn both_ways(body: &[u8], update: Update) {
        let bytes = frame(2, body);
        assert_eq!(
            Message::decode(&bytes, &CAPS).unwrap(),
            (Message::Update(update.clone()), bytes.len())
        );
        assert_eq!(Message::Update(update).to_bytes(&CAPS).unwrap(), bytes);
    }

    fn decode(body: &[u8]) -> Result<Update, DecodeError> {
        Message::decode(&frame(2, body), &CAPS).map(|(m, _)| match m {
            Message::Update(u) => u,
            other => panic!("not an UPDATE: {other:?}"),
        })
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn v4(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    /// What our export sends to an iBGP route reflector client.
    fn ibgp_attrs() -> PathAttributes {
        PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::default()),
            local_pref: Some(100),
            communities: vec![Community::NO_EXPORT],
            originator_id: Some(Ipv4Addr::new(10, 0, 0, 2)),
            cluster_list: vec![Ipv4Addr::new(10, 0, 0, 1)],
            ..PathAttributes::default()
        }
    }

    #[test]
    fn ipv4_announce_from_frr() {
        // FRR eBGP: ORIGIN, AS_PATH, NEXT_HOP, MED, then NLRI for two pod blocks.
        #[rustfmt::skip]
        let body = [
            0, 0,                                   // no withdrawn routes
            0, 27,                                  // attributes
            0x40, 1, 1, 0,
            0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xe9,
            0x40, 3, 4, 192, 168, 1, 1,
            0x80, 4, 4, 0, 0, 0, 0,
            26, 10, 244, 1, 64,                     // 10.244.1.64/26
            32, 10, 244, 9, 9,                      // 10.244.9.9/32
        ];
        let update = Update {
            attrs: PathAttributes {
                origin: Some(Origin::Igp),
                as_path: Some(AsPath::sequence([65001])),
                next_hop: Some(Ipv4Addr::new(192, 168, 1, 1)),
                med: Some(0),
                ..PathAttributes::default()
            },
            nlri: vec![v4("10.244.1.64/26"), v4("10.244.9.9/32")],
            ..Update::default()
        };
        assert_eq!(
            update.announced_prefixes(),
            vec![
                (net("10.244.1.64/26"), NextHop::V4(Ipv4Addr::new(192, 168, 1, 1))),
                (net("10.244.9.9/32"), NextHop::V4(Ipv4Addr::new(192, 168, 1, 1))),
            ]
        );
        both_ways(&body, update);
    }

    #[test]
    fn ipv4_withdraw() {
        let body = [0, 4, 24, 10, 244, 1, 0, 0];
        let update = Update {
            withdrawn: vec![v4("10.244.1.0/24")],
            ..Update::default()
        };
        assert_eq!(update.withdrawn_prefixes(), vec![net("10.244.1.0/24")]);
        both_ways(&body, update);
    }

    #[test]
    fn ipv6_announce_and_withdraw() {
        #[rustfmt::skip]
        let body = [
            0, 0, 0, 47,
            0x40, 1, 1, 0,
            0x40, 2, 0,
            0x80, 14, 30, 0, 2, 1, 16,
                0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
                0,
                64, 0xfd, 0, 0x0a, 0xf4, 0, 1, 0, 0,
            0x80, 15, 4, 0, 2, 1, 0,                // ::/0 withdrawn
        ];
        let nh = NextHop::V6 {
            global: "fd00::2".parse().unwrap(),
            link_local: None,
        };
        let update = Update {
            attrs: PathAttributes {
                origin: Some(Origin::Igp),
                as_path: Some(AsPath::default()),
                mp_reach: Some(MpReach {
                    afi_safi: AfiSafi::IPV6_UNICAST,
                    next_hop: nh,
                    prefixes: vec![net("fd00:af4:1::/64")],
                }),
                mp_unreach: Some(MpUnreach {
                    afi_safi: AfiSafi::IPV6_UNICAST,
                    prefixes: vec![net("::/0")],
                }),
                ..PathAttributes::default()
            },
            ..Update::default()
        };
        assert_eq!(update.announced_prefixes(), vec![(net("fd00:af4:1::/64"), nh)]);
        assert_eq!(update.withdrawn_prefixes(), vec![net("::/0")]);
        both_ways(&body, update);
    }

    #[test]
    fn end_of_rib_both_families() {
        let v4 = Update::end_of_rib(AfiSafi::IPV4_UNICAST);
        both_ways(&[0, 0, 0, 0], v4.clone());
        assert_eq!(v4.end_of_rib_afi_safi(), Some(AfiSafi::IPV4_UNICAST));
        let v6 = Update::end_of_rib(AfiSafi::IPV6_UNICAST);
        both_ways(&[0, 0, 0, 6, 0x80, 15, 3, 0, 2, 1], v6.clone());
        assert_eq!(v6.end_of_rib_afi_safi(), Some(AfiSafi::IPV6_UNICAST));
        let withdraw = decode(&[0, 0, 0, 7, 0x80, 15, 4, 0, 2, 1, 0]).unwrap();
        assert_eq!(withdraw.end_of_rib_afi_safi(), None);
        let with_attr = decode(&[0, 0, 0, 4, 0x40, 1, 1, 0]).unwrap();
        assert_eq!(with_attr.end_of_rib_afi_safi(), None);
    }

    #[test]
    fn malformed_attribute_is_treat_as_withdraw() {
        // LOCAL_PREF of 3 bytes: the session stays up, the prefix is withdrawn.
        #[rustfmt::skip]
        let body = [
            0, 0, 0, 20,
            0x40, 1, 1, 0,
            0x40, 2, 0,
            0x40, 3, 4, 10, 0, 0, 1,
            0x40, 5, 3, 0, 0, 100,
            24, 10, 244, 1,
        ];
        let update = decode(&body).unwrap();
        assert!(update.treat_as_withdraw());
        assert_eq!(update.attrs.local_pref, None);
        assert_eq!(update.announced_prefixes(), vec![]);
        assert_eq!(update.withdrawn_prefixes(), vec![net("10.244.1.0/24")]);
        assert_eq!(update.errors[0].notification().data, vec![0x40, 5, 3, 0, 0, 100]);
    }

    #[test]
    fn missing_mandatory_attributes_are_treat_as_withdraw() {
        // NLRI with only ORIGIN.
        let update = decode(&[0, 0, 0, 4, 0x40, 1, 1, 0, 8, 10]).unwrap();
        assert_eq!(
            update.errors,
            vec![
                UpdateError::MissingWellKnown { type_code: 2 },
                UpdateError::MissingWellKnown { type_code: 3 },
            ]
        );
        assert!(update.treat_as_withdraw());
        assert_eq!(update.errors[0].notification().data, vec![2]);
        // MP_REACH_NLRI needs no NEXT_HOP, but ORIGIN and AS_PATH all the same.
        #[rustfmt::skip]
        let body = [
            0, 0, 0, 29,
            0x40, 2, 0,
            0x80, 14, 23, 0, 2, 1, 16, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 8, 0xfd,
        ];
        let update = decode(&body).unwrap();
        assert_eq!(update.errors, vec![UpdateError::MissingWellKnown { type_code: 1 }]);
        assert_eq!(update.withdrawn_prefixes(), vec![net("fd00::/8")]);
        // Without NLRI nothing is mandatory.
        assert_eq!(decode(&[0, 0, 0, 0]).unwrap().errors, vec![]);
    }

    #[test]
    fn malformed_as_path_withdraws_but_keeps_the_session() {
        #[rustfmt::skip]
        let body = [
            0, 0, 0, 18,
            0x40, 1, 1, 0,
            0x40, 2, 4, 2, 2, 0xfd, 0xe9,           // 2 ASes announced, 1 present
            0x40, 3, 4, 10, 0, 0, 1,
            16, 10, 244,
        ];
        let update = decode(&body).unwrap();
        assert!(update.treat_as_withdraw());
        assert_eq!(update.withdrawn_prefixes(), vec![net("10.244.0.0/16")]);
    }

    #[test]
    fn unreadable_nlri_resets() {
        // Prefix length 33 in the NLRI field.
        let e = decode(&[0, 0, 0, 0, 33, 10, 0, 0, 0, 0]).unwrap_err();
        assert_eq!(
            e,
            DecodeError::Update(UpdateError::InvalidNetworkField(crate::packet::PrefixError::TooLong {
                length: 33,
                max: 32
            }))
        );
        let n = e.notification().unwrap();
        assert_eq!((n.code, n.subcode), (3, 10));
        // Truncated withdrawn prefix.
        let e = decode(&[0, 2, 24, 10, 0, 0]).unwrap_err();
        assert_eq!(e.notification().unwrap().subcode, 10);
    }

    #[test]
    fn overrunning_lengths_reset() {
        let e = decode(&[0, 9, 24, 10, 0, 0]).unwrap_err();
        assert_eq!(e, DecodeError::Update(UpdateError::WithdrawnOverrun));
        assert_eq!(e.notification().unwrap().subcode, 1);
        let e = decode(&[0, 0, 0, 9, 0x40, 1, 1, 0]).unwrap_err();
        assert_eq!(e, DecodeError::Update(UpdateError::AttributesOverrun));
        assert_eq!(e.notification().unwrap().subcode, 1);
    }

    #[test]
    fn duplicate_attribute_keeps_the_first() {
        #[rustfmt::skip]
        let body = [
            0, 0, 0, 21,
            0x40, 1, 1, 0,
            0x40, 2, 0,
            0x40, 3, 4, 10, 0, 0, 1,
            0x40, 3, 4, 10, 0, 0, 2,
            8, 10,
        ];
        let update = decode(&body).unwrap();
        assert!(!update.treat_as_withdraw());
        assert_eq!(update.attrs.next_hop, Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(update.errors, vec![UpdateError::Duplicate { type_code: 3 }]);
    }

    #[test]
    fn two_octet_session_round_trip() {
        let caps = SessionCaps::default();
        let update = Update {
            attrs: PathAttributes {
                origin: Some(Origin::Incomplete),
                as_path: Some(AsPath::sequence([4_200_000_001, 65001])),
                next_hop: Some(Ipv4Addr::new(10, 0, 0, 1)),
                ..PathAttributes::default()
            },
            nlri: vec![v4("10.0.0.0/8")],
            ..Update::default()
        };
        let bytes = Message::Update(update.clone()).to_bytes(&caps).unwrap();
        // AS_PATH says AS_TRANS, AS4_PATH says the truth.
        assert_eq!(&bytes[27..38], &[0x40, 2, 6, 2, 2, 0x5b, 0xa0, 0xfd, 0xe9, 0x40, 3]);
        assert_eq!(Message::decode(&bytes, &caps).unwrap().0, Message::Update(update));
    }

    #[test]
    fn announce_packs_prefixes_into_few_messages() {
        let attrs = ibgp_attrs();
        let prefixes: Vec<IpNet> = (0..2000u32)
            .map(|i| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0x0af4_0000 + (i << 6)), 26).unwrap()))
            .collect();
        let nh = NextHop::V4(Ipv4Addr::new(10, 0, 0, 2));
        let updates = Update::announce(&CAPS, &attrs, nh, &prefixes).unwrap();
        // Each /26 takes 5 bytes; about 4000 bytes are left per message.
        assert_eq!(updates.len(), 3);
        let mut seen = Vec::new();
        for update in &updates {
            let bytes = Message::Update(update.clone()).to_bytes(&CAPS).unwrap();
            assert!(bytes.len() <= MAX_MESSAGE_LEN);
            assert_eq!(update.attrs.next_hop, Some(Ipv4Addr::new(10, 0, 0, 2)));
            seen.extend(update.announced_prefixes().into_iter().map(|(p, _)| p));
        }
        assert_eq!(seen, prefixes);
        // Full messages are full: the next prefix would not have fitted.
        let first = Message::Update(updates[0].clone()).to_bytes(&CAPS).unwrap();
        assert!(first.len() + 5 > MAX_MESSAGE_LEN);
    }

    #[test]
    fn announce_ipv6_uses_mp_reach() {
        let prefixes: Vec<IpNet> = (0..1000u128)
            .map(|i| IpNet::V6(Ipv6Net::new((0xfd00_u128 << 112 | i << 64).into(), 64).unwrap()))
            .collect();
        let nh = NextHop::V6 {
            global: "fd00::2".parse().unwrap(),
            link_local: Some("fe80::2".parse().unwrap()),
        };
        let updates = Update::announce(&CAPS, &ibgp_attrs(), nh, &prefixes).unwrap();
        assert_eq!(updates.len(), 3);
        let mut seen = Vec::new();
        for update in &updates {
            let bytes = Message::Update(update.clone()).to_bytes(&CAPS).unwrap();
            assert!(bytes.len() <= MAX_MESSAGE_LEN);
            let (back, _) = Message::decode(&bytes, &CAPS).unwrap();
            assert_eq!(back, Message::Update(update.clone()));
            seen.extend(update.announced_prefixes().into_iter().map(|(p, _)| p));
        }
        assert_eq!(seen, prefixes);
        assert!(matches!(
            Update::announce(&CAPS, &ibgp_attrs(), NextHop::V4(Ipv4Addr::LOCALHOST), &prefixes),
            Err(EncodeError::NextHopFamily { .. })
        ));
    }

    #[test]
    fn withdraw_packs_both_families() {
        let mut prefixes: Vec<IpNet> = (0..1500u32)
            .map(|i| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + (i << 8)), 24).unwrap()))
            .collect();
        prefixes.push(net("fd00::/64"));
        let updates = Update::withdraw(&prefixes);
        // 1500 * 4 bytes need two messages; IPv6 goes in a third.
        assert_eq!(updates.len(), 3);
        let all: Vec<IpNet> = updates.iter().flat_map(Update::withdrawn_prefixes).collect();
        assert_eq!(all, prefixes);
        for update in &updates {
            let bytes = Message::Update(update.clone()).to_bytes(&CAPS).unwrap();
            assert!(bytes.len() <= MAX_MESSAGE_LEN);
        }
        assert_eq!(Update::withdraw(&[]), vec![]);
    }
}
