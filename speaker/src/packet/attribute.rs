//! Path attributes (RFC 4271 sections 4.3 and 5) and what RFC 7606 says to do when
//! one is malformed. AS numbers are always held as 4 bytes here: the 2-byte form and
//! the AS4_PATH/AS4_AGGREGATOR pair of RFC 6793 exist only on the wire.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, BytesMut};
use ipnet::IpNet;

use super::codes::{self, AttrType, SessionCaps, AS_TRANS};
use super::error::{EncodeError, ErrorAction, UpdateError};
use super::ext_community::{ExtendedCommunity, Ipv6ExtendedCommunity};
use super::prefix::{decode_prefixes, encode_prefix, AfiSafi};
use super::reader::Reader;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    Igp = 0,
    Egp = 1,
    Incomplete = 2,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AsSegment {
    Set(Vec<u32>),
    Sequence(Vec<u32>),
    /// RFC 5065 confederation segments; read and kept so such paths are not malformed.
    ConfedSequence(Vec<u32>),
    ConfedSet(Vec<u32>),
}

impl AsSegment {
    fn type_code(&self) -> u8 {
        match self {
            AsSegment::Set(_) => 1,
            AsSegment::Sequence(_) => 2,
            AsSegment::ConfedSequence(_) => 3,
            AsSegment::ConfedSet(_) => 4,
        }
    }

    pub fn asns(&self) -> &[u32] {
        match self {
            AsSegment::Set(a) | AsSegment::Sequence(a) | AsSegment::ConfedSequence(a) | AsSegment::ConfedSet(a) => a,
        }
    }

    fn is_confed(&self) -> bool {
        matches!(self, AsSegment::ConfedSequence(_) | AsSegment::ConfedSet(_))
    }
}

/// AS_PATH. Empty for routes originated inside the AS.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AsPath {
    pub segments: Vec<AsSegment>,
}

impl AsPath {
    pub fn sequence(asns: impl IntoIterator<Item = u32>) -> Self {
        let asns: Vec<u32> = asns.into_iter().collect();
        if asns.is_empty() {
            return AsPath::default();
        }
        AsPath {
            segments: vec![AsSegment::Sequence(asns)],
        }
    }

    /// Length for best-path selection (RFC 4271 9.1.2.2): a set counts one,
    /// confederation segments count nothing.
    pub fn path_len(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s {
                AsSegment::Sequence(a) => a.len(),
                AsSegment::Set(_) => 1,
                AsSegment::ConfedSequence(_) | AsSegment::ConfedSet(_) => 0,
            })
            .sum()
    }

    /// Adds `asn` in front, as a speaker does when sending to an external peer.
    pub fn prepend(&mut self, asn: u32) {
        match self.segments.first_mut() {
            Some(AsSegment::Sequence(asns)) if asns.len() < 255 => asns.insert(0, asn),
            _ => self.segments.insert(0, AsSegment::Sequence(vec![asn])),
        }
    }

    pub fn contains(&self, asn: u32) -> bool {
        self.segments.iter().any(|s| s.asns().contains(&asn))
    }

    /// The neighbouring AS: the first AS of a leading AS_SEQUENCE.
    pub fn first_asn(&self) -> Option<u32> {
        match self.segments.first()? {
            AsSegment::Sequence(asns) => asns.first().copied(),
            _ => None,
        }
    }

    fn decode(value: &[u8], four_octet: bool) -> Result<AsPath, &'static str> {
        let width = if four_octet { 4 } else { 2 };
        let mut r = Reader::new(value);
        let mut segments = Vec::new();
        while !r.is_empty() {
            let (Some(kind), Some(count)) = (r.u8(), r.u8()) else {
                return Err("segment header truncated");
            };
            if count == 0 {
                return Err("empty segment");
            }
            let raw = r
                .take(usize::from(count) * width)
                .ok_or("segment overruns the attribute")?;
            let asns = raw
                .chunks_exact(width)
                .map(|c| match c {
                    [a, b] => u32::from(u16::from_be_bytes([*a, *b])),
                    _ => u32::from_be_bytes(c.try_into().expect("4 bytes")),
                })
                .collect();
            segments.push(match kind {
                1 => AsSegment::Set(asns),
                2 => AsSegment::Sequence(asns),
                3 => AsSegment::ConfedSequence(asns),
                4 => AsSegment::ConfedSet(asns),
                _ => return Err("unknown segment type"),
            });
        }
        Ok(AsPath { segments })
    }

    /// Writes the path; in 2-byte form, AS numbers above 65535 become AS_TRANS.
    /// Segments longer than 255 are split, as the length field is one byte.
    fn encode(&self, four_octet: bool, out: &mut BytesMut) {
        for segment in &self.segments {
            for chunk in segment.asns().chunks(255) {
                out.put_u8(segment.type_code());
                out.put_u8(chunk.len() as u8);
                for &asn in chunk {
                    if four_octet {
                        out.put_u32(asn);
                    } else {
                        out.put_u16(u16::try_from(asn).unwrap_or(AS_TRANS as u16));
                    }
                }
            }
        }
    }

    fn needs_as4(&self) -> bool {
        self.segments.iter().any(|s| s.asns().iter().any(|&a| a > 0xffff))
    }

    /// RFC 6793 section 4.2.3: keep the leading ASes of the 2-byte AS_PATH that
    /// AS4_PATH does not cover, then append AS4_PATH.
    fn merge_as4(&self, as4: &AsPath) -> AsPath {
        let mut keep = self.path_len().saturating_sub(as4.path_len());
        let mut segments: Vec<AsSegment> = Vec::new();
        for segment in &self.segments {
            match segment {
                AsSegment::Sequence(asns) if keep > 0 => {
                    let n = keep.min(asns.len());
                    segments.push(AsSegment::Sequence(asns[..n].to_vec()));
                    keep -= n;
                }
                AsSegment::Set(_) if keep > 0 => {
                    segments.push(segment.clone());
                    keep -= 1;
                }
                AsSegment::ConfedSequence(_) | AsSegment::ConfedSet(_) if keep > 0 => {
                    segments.push(segment.clone());
                }
                _ => break,
            }
        }
        for segment in &as4.segments {
            // A leading sequence of AS_PATH runs on into AS4_PATH's first one.
            if let (Some(AsSegment::Sequence(last)), AsSegment::Sequence(next)) = (segments.last_mut(), segment) {
                if last.len() + next.len() <= 255 {
                    last.extend_from_slice(next);
                    continue;
                }
            }
            segments.push(segment.clone());
        }
        AsPath { segments }
    }
}

impl fmt::Display for AsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |asns: &[u32], sep: &str| asns.iter().map(u32::to_string).collect::<Vec<_>>().join(sep);
        let parts: Vec<String> = self
            .segments
            .iter()
            .map(|s| match s {
                AsSegment::Sequence(a) => join(a, " "),
                AsSegment::Set(a) => format!("{{{}}}", join(a, ",")),
                AsSegment::ConfedSequence(a) => format!("({})", join(a, " ")),
                AsSegment::ConfedSet(a) => format!("[{}]", join(a, ",")),
            })
            .collect();
        f.write_str(&parts.join(" "))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Aggregator {
    pub asn: u32,
    pub address: Ipv4Addr,
}

/// A COMMUNITIES value (RFC 1997): high 16 bits an AS, low 16 bits a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Community(pub u32);

impl Community {
    /// RFC 8326: lower the preference of paths through a peer about to go down.
    pub const GRACEFUL_SHUTDOWN: Community = Community(0xffff_0000);
    pub const ACCEPT_OWN: Community = Community(0xffff_0001);
    pub const BLACKHOLE: Community = Community(0xffff_029a);
    pub const NO_EXPORT: Community = Community(0xffff_ff01);
    pub const NO_ADVERTISE: Community = Community(0xffff_ff02);
    pub const NO_EXPORT_SUBCONFED: Community = Community(0xffff_ff03);
    pub const NO_PEER: Community = Community(0xffff_ff04);

    pub const fn new(asn: u16, value: u16) -> Self {
        Community((asn as u32) << 16 | value as u32)
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0 >> 16, self.0 & 0xffff)
    }
}

/// A LARGE_COMMUNITIES value (RFC 8092): a global administrator (an AS) and two
/// local data parts, written `GLOBAL:LOCAL1:LOCAL2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LargeCommunity {
    pub global: u32,
    pub local1: u32,
    pub local2: u32,
}

impl fmt::Display for LargeCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.global, self.local1, self.local2)
    }
}

/// Next hop of an MP_REACH_NLRI. IPv6 may carry a link-local address after the
/// global one (RFC 2545: 32 bytes instead of 16).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NextHop {
    V4(Ipv4Addr),
    V6 {
        global: Ipv6Addr,
        link_local: Option<Ipv6Addr>,
    },
}

impl NextHop {
    fn encoded_len(&self) -> usize {
        match self {
            NextHop::V4(_) => 4,
            NextHop::V6 { link_local: None, .. } => 16,
            NextHop::V6 {
                link_local: Some(_), ..
            } => 32,
        }
    }
}

impl From<IpAddr> for NextHop {
    fn from(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(a) => NextHop::V4(a),
            IpAddr::V6(global) => NextHop::V6 {
                global,
                link_local: None,
            },
        }
    }
}

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NextHop::V4(a) => write!(f, "{a}"),
            NextHop::V6 {
                global,
                link_local: None,
            } => write!(f, "{global}"),
            NextHop::V6 {
                global,
                link_local: Some(ll),
            } => write!(f, "{global} ({ll})"),
        }
    }
}

/// MP_REACH_NLRI (RFC 4760) for IPv4 or IPv6 unicast. Every prefix is of the
/// family `afi_safi` names; other families are kept as [`RawAttribute`]s.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MpReach {
    pub afi_safi: AfiSafi,
    pub next_hop: NextHop,
    pub prefixes: Vec<IpNet>,
}

/// MP_UNREACH_NLRI (RFC 4760). With no prefixes it is an End-of-RIB marker.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MpUnreach {
    pub afi_safi: AfiSafi,
    pub prefixes: Vec<IpNet>,
}

/// An attribute this codec does not interpret, kept as it came.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RawAttribute {
    /// Flags as received, less Extended Length, which the encoder picks itself.
    pub flags: u8,
    pub type_code: u8,
    pub value: Vec<u8>,
}

impl RawAttribute {
    pub const OPTIONAL: u8 = codes::OPTIONAL;
    pub const TRANSITIVE: u8 = codes::TRANSITIVE;
    pub const PARTIAL: u8 = codes::PARTIAL;
    pub const EXTENDED_LENGTH: u8 = codes::EXTENDED_LENGTH;

    /// The attribute to pass on to other peers, per RFC 4271 section 5: an
    /// unrecognized optional transitive one goes on with Partial set, an optional
    /// non-transitive one goes no further.
    pub fn for_propagation(&self) -> Option<RawAttribute> {
        let both = Self::OPTIONAL | Self::TRANSITIVE;
        (self.flags & both == both).then(|| RawAttribute {
            flags: self.flags | Self::PARTIAL,
            ..self.clone()
        })
    }
}

/// The path attributes of an UPDATE. A `None` or empty field is an attribute that
/// is absent: RFC 7606 makes empty COMMUNITIES and CLUSTER_LIST malformed anyway.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathAttributes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_path: Option<AsPath>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_hop: Option<Ipv4Addr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub med: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_pref: Option<u32>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub atomic_aggregate: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregator: Option<Aggregator>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<Community>,
    /// Without duplicates (RFC 8092 section 5), in the order received.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub large_communities: Vec<LargeCommunity>,
    /// EXTENDED_COMMUNITIES (RFC 4360), in the order received.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extended_communities: Vec<ExtendedCommunity>,
    /// IPV6_ADDRESS_SPECIFIC_EXTENDED_COMMUNITY (RFC 5701), in the order received.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipv6_extended_communities: Vec<Ipv6ExtendedCommunity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub originator_id: Option<Ipv4Addr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_list: Vec<Ipv4Addr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mp_reach: Option<MpReach>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mp_unreach: Option<MpUnreach>,
    /// Attributes we do not interpret, in the order received, encoded last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown: Vec<RawAttribute>,
}

/// How one attribute value was wrong; turned into an [`UpdateError`] by the caller,
/// which knows the type and the raw bytes.
enum Malformed {
    Length,
    Value(&'static str),
}

/// AS4_PATH/AS4_AGGREGATOR as read, waiting to be merged after all attributes.
#[derive(Default)]
struct As4 {
    path: Option<AsPath>,
    aggregator: Option<Aggregator>,
}

impl PathAttributes {
    /// Reads the path attribute field. Errors whose RFC 7606 action is a session
    /// reset are returned; milder ones are pushed on `errors` with the attribute
    /// left out, and reading goes on.
    pub(crate) fn decode(
        buf: &[u8],
        caps: &SessionCaps,
        errors: &mut Vec<UpdateError>,
    ) -> Result<PathAttributes, UpdateError> {
        let mut attrs = PathAttributes::default();
        let mut as4 = As4::default();
        let mut seen = [false; 256];
        let mut r = Reader::new(buf);
        let mut soft = |e: UpdateError| -> Result<(), UpdateError> {
            if e.action() >= ErrorAction::AfiSafiDisable {
                return Err(e);
            }
            errors.push(e);
            Ok(())
        };
        while !r.is_empty() {
            let start = buf.len() - r.remaining();
            let (Some(flags), Some(type_code)) = (r.u8(), r.u8()) else {
                soft(UpdateError::AttributeOverrun)?;
                break;
            };
            let len = if flags & RawAttribute::EXTENDED_LENGTH != 0 {
                r.u16().map(usize::from)
            } else {
                r.u8().map(usize::from)
            };
            let Some(value) = len.and_then(|len| r.take(len)) else {
                soft(UpdateError::AttributeOverrun)?;
                break;
            };
            let tlv = &buf[start..buf.len() - r.remaining()];

            if std::mem::replace(&mut seen[usize::from(type_code)], true) {
                soft(UpdateError::Duplicate { type_code })?;
                continue;
            }
            let Some(kind) = AttrType::from_u8(type_code) else {
                if flags & RawAttribute::OPTIONAL == 0 {
                    return Err(UpdateError::UnrecognizedWellKnown {
                        type_code,
                        attribute: tlv.to_vec(),
                    });
                }
                attrs.unknown.push(RawAttribute {
                    flags: flags & !RawAttribute::EXTENDED_LENGTH,
                    type_code,
                    value: value.to_vec(),
                });
                continue;
            };
            if !kind.flags_ok(flags) {
                soft(UpdateError::AttributeFlags {
                    type_code,
                    flags,
                    attribute: tlv.to_vec(),
                })?;
                continue;
            }
            if let Err(problem) = attrs.decode_one(kind, flags, value, caps, &mut as4) {
                let attribute = tlv.to_vec();
                soft(match (kind, problem) {
                    (AttrType::AsPath, Malformed::Value(reason)) => UpdateError::MalformedAsPath { reason },
                    (_, Malformed::Length) => UpdateError::AttributeLength {
                        type_code,
                        length: value.len(),
                        attribute,
                    },
                    (AttrType::Origin, Malformed::Value(_)) => UpdateError::InvalidOrigin { attribute },
                    (_, Malformed::Value(reason)) => UpdateError::OptionalAttribute {
                        type_code,
                        reason,
                        attribute,
                    },
                })?;
            }
        }
        if !caps.four_octet_as {
            attrs.merge_as4(as4);
        }
        // Between two 4-byte speakers AS4_* must not appear and are dropped
        // (RFC 6793 section 4.1), which leaving `as4` unused does.
        Ok(attrs)
    }

    fn decode_one(
        &mut self,
        kind: AttrType,
        flags: u8,
        value: &[u8],
        caps: &SessionCaps,
        as4: &mut As4,
    ) -> Result<(), Malformed> {
        let u32_of = |v: &[u8]| -> Result<u32, Malformed> {
            Ok(u32::from_be_bytes(v.try_into().map_err(|_| Malformed::Length)?))
        };
        let ipv4_of = |v: &[u8]| u32_of(v).map(Ipv4Addr::from);
        match kind {
            AttrType::Origin => {
                let [o] = value else {
                    return Err(Malformed::Length);
                };
                self.origin = Some(match o {
                    0 => Origin::Igp,
                    1 => Origin::Egp,
                    2 => Origin::Incomplete,
                    _ => return Err(Malformed::Value("unknown origin")),
                });
            }
            AttrType::AsPath => {
                self.as_path = Some(AsPath::decode(value, caps.four_octet_as).map_err(Malformed::Value)?)
            }
            AttrType::NextHop => self.next_hop = Some(ipv4_of(value)?),
            AttrType::Med => self.med = Some(u32_of(value)?),
            AttrType::LocalPref => self.local_pref = Some(u32_of(value)?),
            AttrType::AtomicAggregate => {
                if !value.is_empty() {
                    return Err(Malformed::Length);
                }
                self.atomic_aggregate = true;
            }
            AttrType::Aggregator => {
                let mut r = Reader::new(value);
                let asn = match (value.len(), caps.four_octet_as) {
                    (6, false) => r.u16().map(u32::from),
                    (8, true) => r.u32(),
                    _ => return Err(Malformed::Length),
                };
                self.aggregator = asn.zip(r.ipv4()).map(|(asn, address)| Aggregator { asn, address });
            }
            AttrType::Communities => {
                self.communities = quads(value)?.map(Community).collect();
            }
            AttrType::LargeCommunities => {
                if value.is_empty() || value.len() % 12 != 0 {
                    return Err(Malformed::Length);
                }
                self.large_communities.clear();
                for c in value.chunks_exact(12) {
                    let word = |i: usize| u32::from_be_bytes(c[i..i + 4].try_into().expect("4 bytes"));
                    let community = LargeCommunity {
                        global: word(0),
                        local1: word(4),
                        local2: word(8),
                    };
                    if !self.large_communities.contains(&community) {
                        self.large_communities.push(community);
                    }
                }
            }
            // RFC 7606 7.14: a length that is not a non-zero multiple of the value's
            // size is malformed (treat-as-withdraw).
            AttrType::ExtendedCommunities => {
                if value.is_empty() || value.len() % 8 != 0 {
                    return Err(Malformed::Length);
                }
                self.extended_communities = value
                    .chunks_exact(8)
                    .map(|c| ExtendedCommunity(c.try_into().expect("8 octets")))
                    .collect();
            }
            AttrType::Ipv6ExtendedCommunities => {
                if value.is_empty() || value.len() % 20 != 0 {
                    return Err(Malformed::Length);
                }
                self.ipv6_extended_communities = value
                    .chunks_exact(20)
                    .map(|c| Ipv6ExtendedCommunity(c.try_into().expect("20 octets")))
                    .collect();
            }
            AttrType::OriginatorId => self.originator_id = Some(ipv4_of(value)?),
            AttrType::ClusterList => {
                self.cluster_list = quads(value)?.map(Ipv4Addr::from).collect();
            }
            AttrType::MpReachNlri => match decode_mp_reach(value)? {
                Some(reach) => self.mp_reach = Some(reach),
                None => self.keep_raw(flags, kind, value),
            },
            AttrType::MpUnreachNlri => match decode_mp_unreach(value)? {
                Some(unreach) => self.mp_unreach = Some(unreach),
                None => self.keep_raw(flags, kind, value),
            },
            AttrType::As4Path => {
                let path = AsPath::decode(value, true).map_err(Malformed::Value)?;
                if path.segments.iter().any(AsSegment::is_confed) {
                    return Err(Malformed::Value("confederation segment in AS4_PATH"));
                }
                as4.path = Some(path);
            }
            AttrType::As4Aggregator => {
                if value.len() != 8 {
                    return Err(Malformed::Length);
                }
                let mut r = Reader::new(value);
                as4.aggregator = r.u32().zip(r.ipv4()).map(|(asn, address)| Aggregator { asn, address });
            }
        }
        Ok(())
    }

    fn keep_raw(&mut self, flags: u8, kind: AttrType, value: &[u8]) {
        self.unknown.push(RawAttribute {
            flags: flags & !RawAttribute::EXTENDED_LENGTH,
            type_code: kind as u8,
            value: value.to_vec(),
        });
    }

    /// RFC 6793 section 4.2.3, for a session without 4-byte AS numbers.
    fn merge_as4(&mut self, as4: As4) {
        if let Some(aggregator) = &mut self.aggregator {
            if aggregator.asn != AS_TRANS {
                // A 2-byte speaker aggregated after the path was built: AS4_* are stale.
                return;
            }
            if let Some(real) = as4.aggregator {
                *aggregator = real;
            }
        }
        if let (Some(path), Some(as4_path)) = (&mut self.as_path, as4.path) {
            if path.path_len() >= as4_path.path_len() {
                *path = path.merge_as4(&as4_path);
            }
        }
    }

    /// Writes the attributes in type-code order, then the unknown ones.
    pub(crate) fn encode(&self, caps: &SessionCaps, out: &mut BytesMut) -> Result<(), EncodeError> {
        use AttrType as T;
        let four = caps.four_octet_as;
        let mut v = BytesMut::new();
        if let Some(origin) = self.origin {
            put_attr(out, T::Origin, &[origin as u8])?;
        }
        if let Some(path) = &self.as_path {
            path.encode(four, &mut v);
            put_attr(out, T::AsPath, &v.split())?;
        }
        if let Some(next_hop) = self.next_hop {
            put_attr(out, T::NextHop, &next_hop.octets())?;
        }
        if let Some(med) = self.med {
            put_attr(out, T::Med, &med.to_be_bytes())?;
        }
        if let Some(local_pref) = self.local_pref {
            put_attr(out, T::LocalPref, &local_pref.to_be_bytes())?;
        }
        if self.atomic_aggregate {
            put_attr(out, T::AtomicAggregate, &[])?;
        }
        if let Some(agg) = self.aggregator {
            if four {
                v.put_u32(agg.asn);
            } else {
                v.put_u16(u16::try_from(agg.asn).unwrap_or(AS_TRANS as u16));
            }
            v.put_slice(&agg.address.octets());
            put_attr(out, T::Aggregator, &v.split())?;
        }
        if !self.communities.is_empty() {
            self.communities.iter().for_each(|c| v.put_u32(c.0));
            put_attr(out, T::Communities, &v.split())?;
        }
        if let Some(id) = self.originator_id {
            put_attr(out, T::OriginatorId, &id.octets())?;
        }
        if !self.cluster_list.is_empty() {
            self.cluster_list.iter().for_each(|id| v.put_slice(&id.octets()));
            put_attr(out, T::ClusterList, &v.split())?;
        }
        if let Some(reach) = &self.mp_reach {
            encode_mp_reach(reach, &mut v);
            put_attr(out, T::MpReachNlri, &v.split())?;
        }
        if let Some(unreach) = &self.mp_unreach {
            encode_mp_unreach(unreach.afi_safi, &unreach.prefixes, &mut v);
            put_attr(out, T::MpUnreachNlri, &v.split())?;
        }
        if !self.extended_communities.is_empty() {
            self.extended_communities.iter().for_each(|c| v.put_slice(&c.0));
            put_attr(out, T::ExtendedCommunities, &v.split())?;
        }
        if !four {
            // RFC 6793 section 4.2.2: a 2-byte peer gets AS_TRANS in the old
            // attributes and the real numbers in AS4_*, which it passes on.
            if let Some(path) = self.as_path.as_ref().filter(|p| p.needs_as4()) {
                let as4 = AsPath {
                    segments: path.segments.iter().filter(|s| !s.is_confed()).cloned().collect(),
                };
                as4.encode(true, &mut v);
                put_attr(out, T::As4Path, &v.split())?;
            }
            if let Some(agg) = self.aggregator.filter(|a| a.asn > 0xffff) {
                v.put_u32(agg.asn);
                v.put_slice(&agg.address.octets());
                put_attr(out, T::As4Aggregator, &v.split())?;
            }
        }
        if !self.ipv6_extended_communities.is_empty() {
            self.ipv6_extended_communities.iter().for_each(|c| v.put_slice(&c.0));
            put_attr(out, T::Ipv6ExtendedCommunities, &v.split())?;
        }
        if !self.large_communities.is_empty() {
            for c in &self.large_communities {
                v.put_u32(c.global);
                v.put_u32(c.local1);
                v.put_u32(c.local2);
            }
            put_attr(out, T::LargeCommunities, &v.split())?;
        }
        for raw in &self.unknown {
            put_raw(out, raw.flags, raw.type_code, &raw.value)?;
        }
        Ok(())
    }
}

fn quads(value: &[u8]) -> Result<impl Iterator<Item = u32> + '_, Malformed> {
    if value.is_empty() || value.len() % 4 != 0 {
        return Err(Malformed::Length);
    }
    Ok(value
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes(c.try_into().expect("4 bytes"))))
}

/// `None` when the family is not one we interpret, so the caller keeps it raw.
fn decode_mp_reach(value: &[u8]) -> Result<Option<MpReach>, Malformed> {
    let mut r = Reader::new(value);
    let (Some(afi), Some(safi), Some(nh_len)) = (r.u16(), r.u8(), r.u8()) else {
        return Err(Malformed::Length);
    };
    let afi_safi = AfiSafi::new(afi, safi);
    if afi_safi != AfiSafi::IPV4_UNICAST && afi_safi != AfiSafi::IPV6_UNICAST {
        return Ok(None);
    }
    let nh = r
        .take(usize::from(nh_len))
        .ok_or(Malformed::Value("next hop overruns the attribute"))?;
    let mut nh_r = Reader::new(nh);
    let next_hop = match (nh_len, afi_safi == AfiSafi::IPV4_UNICAST) {
        (4, true) => NextHop::V4(nh_r.ipv4().expect("4 bytes")),
        // 16 or 32 (RFC 2545); IPv4 prefixes with an IPv6 next hop are RFC 8950.
        (16, _) => NextHop::V6 {
            global: nh_r.ipv6().expect("16 bytes"),
            link_local: None,
        },
        (32, _) => NextHop::V6 {
            global: nh_r.ipv6().expect("16 bytes"),
            link_local: nh_r.ipv6(),
        },
        _ => return Err(Malformed::Value("next hop length does not fit the AFI")),
    };
    // The old SNPA count, now reserved: ignored on receipt (RFC 4760 section 3).
    r.u8().ok_or(Malformed::Length)?;
    let prefixes = decode_prefixes(r.rest(), afi_safi == AfiSafi::IPV6_UNICAST)
        .map_err(|_| Malformed::Value("unparsable NLRI"))?;
    Ok(Some(MpReach {
        afi_safi,
        next_hop,
        prefixes,
    }))
}

fn decode_mp_unreach(value: &[u8]) -> Result<Option<MpUnreach>, Malformed> {
    let mut r = Reader::new(value);
    let (Some(afi), Some(safi)) = (r.u16(), r.u8()) else {
        return Err(Malformed::Length);
    };
    let afi_safi = AfiSafi::new(afi, safi);
    let known = afi_safi == AfiSafi::IPV4_UNICAST || afi_safi == AfiSafi::IPV6_UNICAST;
    if !known && !r.is_empty() {
        return Ok(None);
    }
    // An empty one of any family is an End-of-RIB, worth reading even if unknown.
    let prefixes = decode_prefixes(r.rest(), afi_safi == AfiSafi::IPV6_UNICAST)
        .map_err(|_| Malformed::Value("unparsable withdrawn NLRI"))?;
    Ok(Some(MpUnreach { afi_safi, prefixes }))
}

fn encode_mp_reach(reach: &MpReach, out: &mut BytesMut) {
    out.put_u16(reach.afi_safi.afi);
    out.put_u8(reach.afi_safi.safi);
    out.put_u8(reach.next_hop.encoded_len() as u8);
    match reach.next_hop {
        NextHop::V4(a) => out.put_slice(&a.octets()),
        NextHop::V6 { global, link_local } => {
            out.put_slice(&global.octets());
            if let Some(ll) = link_local {
                out.put_slice(&ll.octets());
            }
        }
    }
    out.put_u8(0);
    reach.prefixes.iter().for_each(|p| encode_prefix(p, out));
}

fn encode_mp_unreach(afi_safi: AfiSafi, prefixes: &[IpNet], out: &mut BytesMut) {
    out.put_u16(afi_safi.afi);
    out.put_u8(afi_safi.safi);
    prefixes.iter().for_each(|p| encode_prefix(p, out));
}

/// Bytes MP_REACH_NLRI or MP_UNREACH_NLRI takes for a value of `value_len` bytes.
pub(crate) fn attr_len(value_len: usize) -> usize {
    value_len + if value_len > 255 { 4 } else { 3 }
}

/// The fixed part of an MP_REACH_NLRI value, before its prefixes.
pub(crate) fn mp_reach_fixed_len(next_hop: &NextHop) -> usize {
    5 + next_hop.encoded_len()
}

fn put_attr(out: &mut BytesMut, kind: AttrType, value: &[u8]) -> Result<(), EncodeError> {
    put_raw(out, kind.flags(), kind as u8, value)
}

fn put_raw(out: &mut BytesMut, flags: u8, type_code: u8, value: &[u8]) -> Result<(), EncodeError> {
    let flags = flags & !RawAttribute::EXTENDED_LENGTH;
    if value.len() > 255 {
        let len = u16::try_from(value.len()).map_err(|_| EncodeError::MessageTooLong { length: value.len() })?;
        out.put_u8(flags | RawAttribute::EXTENDED_LENGTH);
        out.put_u8(type_code);
        out.put_u16(len);
    } else {
        out.put_u8(flags);
        out.put_u8(type_code);
        out.put_u8(value.len() as u8);
    }
    out.put_slice(value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: SessionCaps = SessionCaps { four_octet_as: false };
    const FOUR: SessionCaps = SessionCaps { four_octet_as: true };

    /// Bytes and struct side by side: decoding gives the struct without errors,
    /// encoding gives the bytes back.
    fn both_ways(caps: SessionCaps, bytes: &[u8], attrs: PathAttributes) {
        let mut errors = Vec::new();
        let decoded = PathAttributes::decode(bytes, &caps, &mut errors).unwrap();
        assert_eq!(errors, vec![]);
        assert_eq!(decoded, attrs);
        let mut out = BytesMut::new();
        attrs.encode(&caps, &mut out).unwrap();
        assert_eq!(&out[..], bytes);
    }

    /// Decodes bytes that hold one bad attribute; returns what survived and the
    /// errors that did not reset the session.
    fn decode_soft(caps: SessionCaps, bytes: &[u8]) -> (PathAttributes, Vec<UpdateError>) {
        let mut errors = Vec::new();
        let attrs = PathAttributes::decode(bytes, &caps, &mut errors).unwrap();
        (attrs, errors)
    }

    fn decode_hard(caps: SessionCaps, bytes: &[u8]) -> UpdateError {
        PathAttributes::decode(bytes, &caps, &mut Vec::new()).unwrap_err()
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn well_known_attributes_four_octet() {
        #[rustfmt::skip]
        let bytes = [
            0x40, 1, 1, 0,                                  // ORIGIN IGP
            0x40, 2, 14, 2, 3, 0, 0, 0xfd, 0xe9,            // AS_PATH SEQ 65001
                0xfa, 0x56, 0xea, 0x00, 0, 0, 0, 100,       //   4200000000 100
            0x40, 3, 4, 10, 0, 0, 1,                        // NEXT_HOP 10.0.0.1
            0x80, 4, 4, 0, 0, 0, 50,                        // MED 50
            0x40, 5, 4, 0, 0, 0, 100,                       // LOCAL_PREF 100
        ];
        both_ways(
            FOUR,
            &bytes,
            PathAttributes {
                origin: Some(Origin::Igp),
                as_path: Some(AsPath::sequence([65001, 4_200_000_000, 100])),
                next_hop: Some(ip("10.0.0.1")),
                med: Some(50),
                local_pref: Some(100),
                ..PathAttributes::default()
            },
        );
    }

    #[test]
    fn as_path_sets_and_two_octet_form() {
        #[rustfmt::skip]
        let bytes = [
            0x40, 2, 12,
                2, 2, 0xfd, 0xe9, 0xfd, 0xea,               // SEQ 65001 65002
                1, 2, 0, 1, 0, 2,                           // SET {1,2}
        ];
        let path = AsPath {
            segments: vec![AsSegment::Sequence(vec![65001, 65002]), AsSegment::Set(vec![1, 2])],
        };
        assert_eq!(path.path_len(), 3);
        assert_eq!(path.to_string(), "65001 65002 {1,2}");
        both_ways(
            TWO,
            &bytes,
            PathAttributes {
                as_path: Some(path),
                ..PathAttributes::default()
            },
        );
    }

    #[test]
    fn empty_as_path() {
        // iBGP-originated routes carry an AS_PATH of length zero.
        both_ways(
            FOUR,
            &[0x40, 2, 0],
            PathAttributes {
                as_path: Some(AsPath::default()),
                ..PathAttributes::default()
            },
        );
    }

    #[test]
    fn optional_attributes() {
        #[rustfmt::skip]
        let bytes = [
            0x40, 6, 0,                                     // ATOMIC_AGGREGATE
            0xc0, 7, 8, 0, 0, 0xfd, 0xe8, 192, 0, 2, 1,     // AGGREGATOR 65000 192.0.2.1
            0xc0, 8, 12, 0xff, 0xff, 0, 0,                  // COMMUNITIES GRACEFUL_SHUTDOWN
                0xff, 0xff, 0xff, 0x01, 0xfd, 0xe8, 0, 7,   //   NO_EXPORT 65000:7
            0x80, 9, 4, 10, 0, 0, 9,                        // ORIGINATOR_ID 10.0.0.9
            0x80, 10, 8, 1, 1, 1, 1, 2, 2, 2, 2,            // CLUSTER_LIST
        ];
        both_ways(
            FOUR,
            &bytes,
            PathAttributes {
                atomic_aggregate: true,
                aggregator: Some(Aggregator {
                    asn: 65000,
                    address: ip("192.0.2.1"),
                }),
                communities: vec![
                    Community::GRACEFUL_SHUTDOWN,
                    Community::NO_EXPORT,
                    Community::new(65000, 7),
                ],
                originator_id: Some(ip("10.0.0.9")),
                cluster_list: vec![ip("1.1.1.1"), ip("2.2.2.2")],
                ..PathAttributes::default()
            },
        );
        assert_eq!(Community::GRACEFUL_SHUTDOWN.to_string(), "65535:0");
    }

    #[test]
    fn large_communities_both_ways_and_as_text() {
        #[rustfmt::skip]
        let bytes = [
            0xc0, 32, 24,
                0, 0, 0xfd, 0xe8, 0, 0, 0, 1, 0, 0, 0, 2,   // 65000:1:2
                0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 7, // 4294967295:0:7
        ];
        let two = vec![
            LargeCommunity {
                global: 65000,
                local1: 1,
                local2: 2,
            },
            LargeCommunity {
                global: u32::MAX,
                local1: 0,
                local2: 7,
            },
        ];
        both_ways(
            TWO,
            &bytes,
            PathAttributes {
                large_communities: two.clone(),
                ..PathAttributes::default()
            },
        );
        assert_eq!(two[1].to_string(), "4294967295:0:7");
        assert_eq!("65000:1:2".parse::<LargeCommunity>().unwrap(), two[0]);
        for bad in ["65000:1", "65000:1:2:3", "4294967296:0:0", "a:b:c"] {
            assert!(bad.parse::<LargeCommunity>().is_err(), "{bad}");
        }
    }

    #[test]
    fn large_communities_duplicates_go_and_a_bad_length_withdraws() {
        #[rustfmt::skip]
        let bytes = [
            0xc0, 32, 24,
                0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3,
                0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3,
        ];
        let (attrs, errors) = decode_soft(FOUR, &bytes);
        assert_eq!(errors, vec![]);
        assert_eq!(attrs.large_communities.len(), 1);
        for value_len in [0u8, 8, 13] {
            let mut bytes = vec![0xc0, 32, value_len];
            bytes.resize(3 + usize::from(value_len), 0);
            let (attrs, errors) = decode_soft(FOUR, &bytes);
            assert_eq!(attrs.large_communities, vec![], "length {value_len}");
            assert_eq!(errors.len(), 1, "length {value_len}");
            assert_eq!(errors[0].action(), ErrorAction::TreatAsWithdraw, "length {value_len}");
        }
        // Wrong flags (not transitive) are the same error.
        let (_, errors) = decode_soft(FOUR, &[0x80, 32, 12, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]);
        assert_eq!(errors[0].action(), ErrorAction::TreatAsWithdraw);
    }

    #[test]
    fn extended_length_both_ways() {
        // 70 communities: 280 bytes, so the length needs two bytes.
        let communities: Vec<Community> = (0..70).map(|i| Community::new(65000, i)).collect();
        let mut bytes = vec![0xd0, 8, 0x01, 0x18];
        communities
            .iter()
            .for_each(|c| bytes.extend_from_slice(&c.0.to_be_bytes()));
        both_ways(
            FOUR,
            &bytes,
            PathAttributes {
                communities,
                ..PathAttributes::default()
            },
        );
        // A short value sent with Extended Length (FRR does so for some) is read the same.
        let (attrs, errors) = decode_soft(FOUR, &[0x50, 1, 0, 1, 2]);
        assert_eq!(errors, vec![]);
        assert_eq!(attrs.origin, Some(Origin::Incomplete));
    }

    #[test]
    fn extended_communities_are_read_and_written_and_a_wrong_length_is_treat_as_withdraw() {
        #[rustfmt::skip]
        let bytes = [
            0xc0, 16, 16,
            0, 2, 0xfd, 0xe8, 0, 0, 0, 100,                           // rt:65000:100
            0x43, 2, 0, 0, 0, 0, 0, 1,                                // non-transitive
            0xc0, 25, 20,
            0, 2, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 7, // rt:[fd00::1]:7
        ];
        let rt: ExtendedCommunity = "rt:65000:100".parse().unwrap();
        both_ways(
            FOUR,
            &bytes,
            PathAttributes {
                extended_communities: vec![rt, ExtendedCommunity([0x43, 2, 0, 0, 0, 0, 0, 1])],
                ipv6_extended_communities: vec!["rt:[fd00::1]:7".parse().unwrap()],
                ..PathAttributes::default()
            },
        );
        // RFC 7606 7.14: 7 octets is not a non-zero multiple of 8; nor are 0 and 9.
        for value in [&[0u8, 2, 0xfd, 0xe8, 0, 0, 0][..], &[], &[0; 9]] {
            let mut bytes = vec![0xc0, 16, value.len() as u8];
            bytes.extend_from_slice(value);
            let (attrs, errors) = decode_soft(FOUR, &bytes);
            assert!(attrs.extended_communities.is_empty());
            assert_eq!(errors.len(), 1, "{value:?}");
            assert_eq!(errors[0].action(), ErrorAction::TreatAsWithdraw, "{:?}", errors[0]);
        }
        let (_, errors) = decode_soft(FOUR, &[0xc0, 25, 8, 0, 2, 0, 0, 0, 0, 0, 1]);
        assert_eq!(errors[0].action(), ErrorAction::TreatAsWithdraw);
    }

    #[test]
    fn unknown_attributes_are_kept_and_propagated_as_partial() {
        #[rustfmt::skip]
        let bytes = [
            0xc0, 200, 8, 0, 2, 0xfd, 0xe8, 0, 0, 0, 100,             // unassigned, optional transitive
            0x80, 99, 1, 7,                                           // optional non-transitive
        ];
        let extended = RawAttribute {
            flags: 0xc0,
            type_code: 200,
            value: bytes[3..11].to_vec(),
        };
        let private = RawAttribute {
            flags: 0x80,
            type_code: 99,
            value: vec![7],
        };
        both_ways(
            FOUR,
            &bytes,
            PathAttributes {
                unknown: vec![extended.clone(), private.clone()],
                ..PathAttributes::default()
            },
        );
        assert_eq!(
            extended.for_propagation(),
            Some(RawAttribute {
                flags: 0xe0,
                ..extended
            })
        );
        assert_eq!(private.for_propagation(), None);
    }

    #[test]
    fn two_octet_session_carries_as4_path_and_aggregator() {
        #[rustfmt::skip]
        let bytes = [
            0x40, 2, 8, 2, 3, 0xfd, 0xe9, 0x5b, 0xa0, 0x5b, 0xa0, // SEQ 65001 AS_TRANS AS_TRANS
            0xc0, 7, 6, 0x5b, 0xa0, 192, 0, 2, 1,                 // AGGREGATOR AS_TRANS
            0xc0, 17, 14, 2, 3, 0, 0, 0xfd, 0xe9,                 // AS4_PATH SEQ 65001
                0xfa, 0x56, 0xea, 0x00, 0xfa, 0x56, 0xea, 0x01,   //   4200000000 4200000001
            0xc0, 18, 8, 0xfa, 0x56, 0xea, 0x01, 192, 0, 2, 1,    // AS4_AGGREGATOR
        ];
        both_ways(
            TWO,
            &bytes,
            PathAttributes {
                as_path: Some(AsPath::sequence([65001, 4_200_000_000, 4_200_000_001])),
                aggregator: Some(Aggregator {
                    asn: 4_200_000_001,
                    address: ip("192.0.2.1"),
                }),
                ..PathAttributes::default()
            },
        );
    }

    #[test]
    fn as4_path_shorter_than_as_path_is_merged() {
        // An old speaker (65001) prepended itself after the AS4_PATH was made.
        #[rustfmt::skip]
        let bytes = [
            0x40, 2, 8, 2, 3, 0xfd, 0xe9, 0x5b, 0xa0, 0x5b, 0xa0,
            0xc0, 17, 10, 2, 2, 0xfa, 0x56, 0xea, 0x00, 0xfa, 0x56, 0xea, 0x01,
        ];
        let (attrs, errors) = decode_soft(TWO, &bytes);
        assert_eq!(errors, vec![]);
        assert_eq!(
            attrs.as_path,
            Some(AsPath::sequence([65001, 4_200_000_000, 4_200_000_001]))
        );
    }

    #[test]
    fn aggregator_of_an_old_speaker_voids_as4_attributes() {
        #[rustfmt::skip]
        let bytes = [
            0x40, 2, 4, 2, 1, 0x5b, 0xa0,
            0xc0, 7, 6, 0xfd, 0xe9, 192, 0, 2, 1,
            0xc0, 17, 6, 2, 1, 0xfa, 0x56, 0xea, 0x00,
        ];
        let (attrs, _) = decode_soft(TWO, &bytes);
        assert_eq!(attrs.as_path, Some(AsPath::sequence([AS_TRANS])));
        assert_eq!(attrs.aggregator.unwrap().asn, 65001);
    }

    #[test]
    fn as4_path_longer_than_as_path_is_ignored() {
        #[rustfmt::skip]
        let bytes = [
            0x40, 2, 4, 2, 1, 0x5b, 0xa0,
            0xc0, 17, 10, 2, 2, 0, 0, 0, 1, 0, 0, 0, 2,
        ];
        let (attrs, errors) = decode_soft(TWO, &bytes);
        assert_eq!(errors, vec![]);
        assert_eq!(attrs.as_path, Some(AsPath::sequence([AS_TRANS])));
    }

    #[test]
    fn four_octet_session_drops_as4_attributes() {
        let bytes = [0x40, 2, 0, 0xc0, 17, 6, 2, 1, 0, 0, 0, 1];
        let (attrs, errors) = decode_soft(FOUR, &bytes);
        assert_eq!(errors, vec![]);
        assert_eq!(attrs.as_path, Some(AsPath::default()));
        assert_eq!(attrs.unknown, vec![]);
    }

    #[test]
    fn malformed_as_path_is_treat_as_withdraw() {
        for (bytes, reason) in [
            (&[0x40, 2, 6, 2, 3, 0, 1, 0, 2][..], "segment overruns the attribute"),
            (&[0x40, 2, 2, 2, 0], "empty segment"),
            (&[0x40, 2, 3, 2, 1, 0], "segment overruns the attribute"),
            (&[0x40, 2, 5, 2, 1, 0, 1, 2], "segment header truncated"),
            (&[0x40, 2, 4, 9, 1, 0, 1], "unknown segment type"),
        ] {
            let (attrs, errors) = decode_soft(TWO, bytes);
            assert_eq!(attrs.as_path, None);
            assert_eq!(errors, vec![UpdateError::MalformedAsPath { reason }]);
            assert_eq!(errors[0].action(), ErrorAction::TreatAsWithdraw);
            assert_eq!(
                (errors[0].notification().code, errors[0].notification().subcode),
                (3, 11)
            );
        }
    }

    #[test]
    fn bad_flags_follow_the_attribute_rule() {
        // ORIGIN marked optional: treat-as-withdraw, flags error with the attribute.
        let (_, errors) = decode_soft(FOUR, &[0xc0, 1, 1, 0]);
        assert_eq!(errors[0].action(), ErrorAction::TreatAsWithdraw);
        let n = errors[0].notification();
        assert_eq!((n.code, n.subcode, n.data), (3, 4, vec![0xc0, 1, 1, 0]));
        // Partial on a well-known attribute.
        let (_, errors) = decode_soft(FOUR, &[0x60, 5, 4, 0, 0, 0, 1]);
        assert_eq!(errors[0].action(), ErrorAction::TreatAsWithdraw);
        // AGGREGATOR marked well-known: discard it, keep the rest.
        let (attrs, errors) = decode_soft(FOUR, &[0x40, 7, 8, 0, 0, 0, 1, 1, 1, 1, 1, 0x40, 1, 1, 2]);
        assert_eq!(errors[0].action(), ErrorAction::AttributeDiscard);
        assert_eq!(attrs.aggregator, None);
        assert_eq!(attrs.origin, Some(Origin::Incomplete));
        // MP_UNREACH_NLRI marked transitive: session reset.
        let e = decode_hard(FOUR, &[0xc0, 15, 3, 0, 2, 1]);
        assert_eq!(e.action(), ErrorAction::SessionReset);
        assert_eq!(e.notification().subcode, 4);
    }

    #[test]
    fn bad_lengths_follow_the_attribute_rule() {
        let cases: &[(&[u8], ErrorAction, u8)] = &[
            (&[0x40, 1, 2, 0, 0], ErrorAction::TreatAsWithdraw, 5),
            (&[0x40, 3, 3, 10, 0, 0], ErrorAction::TreatAsWithdraw, 5),
            (&[0x80, 4, 2, 0, 1], ErrorAction::TreatAsWithdraw, 5),
            (&[0x40, 5, 0], ErrorAction::TreatAsWithdraw, 5),
            (&[0x40, 6, 1, 0], ErrorAction::AttributeDiscard, 5),
            // A 2-byte AGGREGATOR on a 4-byte session.
            (&[0xc0, 7, 6, 0, 1, 1, 1, 1, 1], ErrorAction::AttributeDiscard, 5),
            (&[0xc0, 8, 3, 0, 0, 1], ErrorAction::TreatAsWithdraw, 5),
            (&[0xc0, 8, 0], ErrorAction::TreatAsWithdraw, 5),
            (&[0x80, 9, 5, 1, 1, 1, 1, 1], ErrorAction::TreatAsWithdraw, 5),
            (&[0x80, 10, 0], ErrorAction::TreatAsWithdraw, 5),
            (&[0x40, 1, 1, 3], ErrorAction::TreatAsWithdraw, 6),
        ];
        for (bytes, action, subcode) in cases {
            let (_, errors) = decode_soft(FOUR, bytes);
            assert_eq!(errors.len(), 1, "{bytes:?}");
            assert_eq!(errors[0].action(), *action, "{bytes:?}");
            let n = errors[0].notification();
            assert_eq!((n.code, n.subcode), (3, *subcode), "{bytes:?}");
            assert_eq!(n.data, bytes.to_vec());
        }
    }

    #[test]
    fn duplicates_keep_the_first_except_mp() {
        let (attrs, errors) = decode_soft(FOUR, &[0x40, 1, 1, 0, 0x40, 1, 1, 2]);
        assert_eq!(attrs.origin, Some(Origin::Igp));
        assert_eq!(errors, vec![UpdateError::Duplicate { type_code: 1 }]);
        assert_eq!(errors[0].action(), ErrorAction::AttributeDiscard);
        let e = decode_hard(FOUR, &[0x80, 15, 3, 0, 2, 1, 0x80, 15, 3, 0, 2, 1]);
        assert_eq!(e, UpdateError::Duplicate { type_code: 15 });
        assert_eq!(e.action(), ErrorAction::SessionReset);
        assert_eq!(e.notification().subcode, 1);
    }

    #[test]
    fn attribute_overrunning_the_field_is_treat_as_withdraw() {
        let (attrs, errors) = decode_soft(FOUR, &[0x40, 1, 1, 0, 0x40, 5, 4, 0, 0]);
        assert_eq!(attrs.origin, Some(Origin::Igp));
        assert_eq!(errors, vec![UpdateError::AttributeOverrun]);
        let (_, errors) = decode_soft(FOUR, &[0x40, 1, 1, 0, 0x40]);
        assert_eq!(errors, vec![UpdateError::AttributeOverrun]);
        assert_eq!(errors[0].action(), ErrorAction::TreatAsWithdraw);
    }

    #[test]
    fn unrecognized_well_known_resets() {
        let e = decode_hard(FOUR, &[0x40, 99, 1, 0]);
        assert_eq!(e.action(), ErrorAction::SessionReset);
        let n = e.notification();
        assert_eq!((n.code, n.subcode, n.data), (3, 2, vec![0x40, 99, 1, 0]));
    }

    #[test]
    fn mp_reach_ipv6_with_link_local() {
        #[rustfmt::skip]
        let bytes = [
            0x80, 14, 46, 0, 2, 1, 32,
                0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,   // 2001:db8::1
                0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,         // fe80::1
                0,
                64, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0,                       // 2001:db8:1::/64
        ];
        both_ways(
            FOUR,
            &bytes,
            PathAttributes {
                mp_reach: Some(MpReach {
                    afi_safi: AfiSafi::IPV6_UNICAST,
                    next_hop: NextHop::V6 {
                        global: "2001:db8::1".parse().unwrap(),
                        link_local: Some("fe80::1".parse().unwrap()),
                    },
                    prefixes: vec!["2001:db8:1::/64".parse().unwrap()],
                }),
                ..PathAttributes::default()
            },
        );
    }

    #[test]
    fn malformed_mp_reach_resets() {
        for bytes in [
            // Next hop of 4 bytes for IPv6.
            &[0x80, 14, 9, 0, 2, 1, 4, 10, 0, 0, 1, 0][..],
            // Prefix length 129.
            &[
                0x80, 14, 22, 0, 2, 1, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 129,
            ],
            // Too short for AFI/SAFI.
            &[0x80, 14, 2, 0, 2],
        ] {
            let e = decode_hard(FOUR, bytes);
            assert_eq!(e.action(), ErrorAction::SessionReset, "{bytes:?}");
            assert_eq!(e.notification().code, 3);
        }
    }

    #[test]
    fn mp_reach_of_another_family_is_kept_raw() {
        // L2VPN EVPN, which we never negotiate.
        let bytes = [0x80, 14, 10, 0, 25, 70, 4, 10, 0, 0, 1, 0, 0];
        let (attrs, errors) = decode_soft(FOUR, &bytes);
        assert_eq!(errors, vec![]);
        assert_eq!(attrs.mp_reach, None);
        assert_eq!(attrs.unknown[0].type_code, 14);
    }

    #[test]
    fn as_path_helpers() {
        let mut path = AsPath::sequence([65002]);
        path.prepend(65001);
        assert_eq!(path, AsPath::sequence([65001, 65002]));
        assert_eq!(path.first_asn(), Some(65001));
        assert!(path.contains(65002));
        let mut set_first = AsPath {
            segments: vec![AsSegment::Set(vec![1])],
        };
        set_first.prepend(7);
        assert_eq!(set_first.first_asn(), Some(7));
        assert_eq!(set_first.path_len(), 2);
    }

    #[test]
    fn long_sequences_are_split_into_255s() {
        let path = AsPath::sequence(1..=300);
        let mut out = BytesMut::new();
        path.encode(true, &mut out);
        assert_eq!(&out[..2], &[2, 255]);
        assert_eq!(&out[2 + 255 * 4..2 + 255 * 4 + 2], &[2, 45]);
        let decoded = AsPath::decode(&out, true).unwrap();
        assert_eq!(decoded.path_len(), 300);
    }
}
