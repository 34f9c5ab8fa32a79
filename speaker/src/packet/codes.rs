//! The numbers and small types every part of the codec shares, so that no two of
//! its files need each other: message framing sizes, path attribute type codes and
//! flags, AS_TRANS, and the session capabilities that change the wire format.

pub const HEADER_LEN: usize = 19;
/// No extended messages (RFC 8654) are negotiated, so 4096 is the limit both ways.
pub const MAX_MESSAGE_LEN: usize = 4096;

/// Path attribute flags (RFC 4271 section 4.3).
pub const OPTIONAL: u8 = 0x80;
pub const TRANSITIVE: u8 = 0x40;
pub const PARTIAL: u8 = 0x20;
pub const EXTENDED_LENGTH: u8 = 0x10;

/// Stands in for a 4-byte AS number in 2-byte fields (RFC 6793).
pub const AS_TRANS: u32 = 23456;

/// The attribute type codes this codec understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum AttrType {
    Origin = 1,
    AsPath = 2,
    NextHop = 3,
    Med = 4,
    LocalPref = 5,
    AtomicAggregate = 6,
    Aggregator = 7,
    Communities = 8,
    OriginatorId = 9,
    ClusterList = 10,
    MpReachNlri = 14,
    MpUnreachNlri = 15,
    ExtendedCommunities = 16,
    As4Path = 17,
    As4Aggregator = 18,
    Ipv6ExtendedCommunities = 25,
    LargeCommunities = 32,
}

impl AttrType {
    pub(crate) fn from_u8(code: u8) -> Option<Self> {
        use AttrType::*;
        [
            Origin,
            AsPath,
            NextHop,
            Med,
            LocalPref,
            AtomicAggregate,
            Aggregator,
            Communities,
            OriginatorId,
            ClusterList,
            MpReachNlri,
            MpUnreachNlri,
            ExtendedCommunities,
            As4Path,
            As4Aggregator,
            Ipv6ExtendedCommunities,
            LargeCommunities,
        ]
        .into_iter()
        .find(|t| *t as u8 == code)
    }

    /// The Optional and Transitive bits RFC 4271 and the attribute's RFC require.
    pub(crate) fn flags(self) -> u8 {
        use AttrType::*;
        match self {
            Origin | AsPath | NextHop | LocalPref | AtomicAggregate => TRANSITIVE,
            Med | OriginatorId | ClusterList | MpReachNlri | MpUnreachNlri => OPTIONAL,
            Aggregator
            | Communities
            | ExtendedCommunities
            | As4Path
            | As4Aggregator
            | Ipv6ExtendedCommunities
            | LargeCommunities => OPTIONAL | TRANSITIVE,
        }
    }

    /// RFC 7606 section 3c: Optional/Transitive must match, and Partial may only be
    /// set on optional transitive attributes. Extended Length is free.
    pub(crate) fn flags_ok(self, flags: u8) -> bool {
        let expected = self.flags();
        let both = OPTIONAL | TRANSITIVE;
        flags & both == expected && (flags & PARTIAL == 0 || expected == both)
    }
}

/// Name of an attribute type for logs and error messages.
pub(crate) fn type_name(code: u8) -> String {
    match AttrType::from_u8(code) {
        Some(t) => {
            let name = format!("{t:?}");
            match t {
                AttrType::MpReachNlri => "MP_REACH_NLRI".into(),
                AttrType::MpUnreachNlri => "MP_UNREACH_NLRI".into(),
                AttrType::As4Path => "AS4_PATH".into(),
                AttrType::As4Aggregator => "AS4_AGGREGATOR".into(),
                AttrType::Med => "MULTI_EXIT_DISC".into(),
                AttrType::Ipv6ExtendedCommunities => "IPV6_ADDRESS_SPECIFIC_EXTENDED_COMMUNITY".into(),
                _ => upper_snake(&name),
            }
        }
        None => format!("attribute {code}"),
    }
}

fn upper_snake(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// What the two OPENs settled that changes the wire format. Before the OPENs are
/// exchanged the default (2-byte AS) applies; OPEN itself does not depend on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionCaps {
    /// Both sides sent the 4-byte AS capability: AS_PATH and AGGREGATOR carry
    /// 4-byte AS numbers and AS4_PATH/AS4_AGGREGATOR are not used (RFC 6793).
    pub four_octet_as: bool,
}
