//! What can go wrong reading a message, the NOTIFICATION each error answers with,
//! and for UPDATE errors the RFC 7606 action that keeps the session up when it can.

use super::codes::{type_name, AttrType};
use super::notification::{ErrorCode, HeaderSubcode, Notification, OpenSubcode, UpdateSubcode};
use super::prefix::PrefixError;

/// What RFC 7606 says to do about an UPDATE error, least severe first, so the
/// worst of several errors is their maximum (RFC 7606 section 3h).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorAction {
    /// Drop the attribute and use the rest of the UPDATE.
    AttributeDiscard,
    /// Withdraw every prefix the UPDATE carried, keep the session.
    TreatAsWithdraw,
    /// Stop using the AFI/SAFI on this session. Never produced by this decoder: for
    /// MP_REACH/MP_UNREACH errors it asks for the session reset RFC 7606 also allows.
    AfiSafiDisable,
    /// Send the NOTIFICATION and close the session.
    SessionReset,
}

/// Why `Message::decode` could not return a message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not an error on the wire: the buffer holds only part of a message. `needed`
    /// is the total length the message will have, as far as it is known yet.
    #[error("incomplete message: {needed} bytes needed")]
    Incomplete { needed: usize },
    #[error("marker is not all ones: connection not synchronized")]
    ConnectionNotSynchronized,
    #[error("bad message length {length}")]
    BadMessageLength { length: u16 },
    #[error("bad message type {msg_type}")]
    BadMessageType { msg_type: u8 },
    #[error("OPEN: {0}")]
    Open(#[from] OpenError),
    #[error("UPDATE: {0}")]
    Update(#[from] UpdateError),
}

impl DecodeError {
    /// The NOTIFICATION to send before closing, `None` for [`DecodeError::Incomplete`].
    pub fn notification(&self) -> Option<Notification> {
        let header = |sub: HeaderSubcode, data: Vec<u8>| Notification::new(ErrorCode::MessageHeader, sub as u8, data);
        Some(match self {
            DecodeError::Incomplete { .. } => return None,
            DecodeError::ConnectionNotSynchronized => header(HeaderSubcode::ConnectionNotSynchronized, Vec::new()),
            DecodeError::BadMessageLength { length } => {
                header(HeaderSubcode::BadMessageLength, length.to_be_bytes().to_vec())
            }
            DecodeError::BadMessageType { msg_type } => header(HeaderSubcode::BadMessageType, vec![*msg_type]),
            DecodeError::Open(e) => e.notification(),
            DecodeError::Update(e) => e.notification(),
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("unsupported version {version}")]
    UnsupportedVersion { version: u8 },
    #[error("hold time {0} is neither 0 nor at least 3 seconds")]
    UnacceptableHoldTime(u16),
    #[error("BGP identifier 0.0.0.0")]
    BadBgpIdentifier,
    #[error("unsupported optional parameter type {0}")]
    UnsupportedOptionalParameter(u8),
    #[error("malformed: {0}")]
    Malformed(&'static str),
}

impl OpenError {
    pub fn notification(&self) -> Notification {
        let (sub, data) = match self {
            // RFC 4271 6.2: the data is the largest version we support.
            OpenError::UnsupportedVersion { .. } => (OpenSubcode::UnsupportedVersionNumber, vec![0, 4]),
            OpenError::UnacceptableHoldTime(_) => (OpenSubcode::UnacceptableHoldTime, vec![]),
            OpenError::BadBgpIdentifier => (OpenSubcode::BadBgpIdentifier, vec![]),
            OpenError::UnsupportedOptionalParameter(_) => (OpenSubcode::UnsupportedOptionalParameter, vec![]),
            OpenError::Malformed(_) => (OpenSubcode::Unspecific, vec![]),
        };
        Notification::new(ErrorCode::Open, sub as u8, data)
    }
}

/// An error in an UPDATE. `attribute` fields hold the offending attribute as it was
/// on the wire (flags, type, length, value): RFC 4271 6.3 puts it in the data.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    #[error("withdrawn routes length overruns the message")]
    WithdrawnOverrun,
    #[error("total path attribute length overruns the message")]
    AttributesOverrun,
    /// RFC 7606 section 4: an attribute header or length that runs past the
    /// attribute field; the NLRI can still be found, so treat-as-withdraw.
    #[error("path attribute runs past the end of the attribute field")]
    AttributeOverrun,
    #[error("{} appears more than once", type_name(*type_code))]
    Duplicate { type_code: u8 },
    #[error("unrecognized well-known attribute {type_code}")]
    UnrecognizedWellKnown { type_code: u8, attribute: Vec<u8> },
    #[error("missing well-known attribute {}", type_name(*type_code))]
    MissingWellKnown { type_code: u8 },
    #[error("{} has wrong flags {flags:#04x}", type_name(*type_code))]
    AttributeFlags {
        type_code: u8,
        flags: u8,
        attribute: Vec<u8>,
    },
    #[error("{} has wrong length {length}", type_name(*type_code))]
    AttributeLength {
        type_code: u8,
        length: usize,
        attribute: Vec<u8>,
    },
    #[error("invalid ORIGIN")]
    InvalidOrigin { attribute: Vec<u8> },
    #[error("malformed AS_PATH: {reason}")]
    MalformedAsPath { reason: &'static str },
    #[error("malformed {}: {reason}", type_name(*type_code))]
    OptionalAttribute {
        type_code: u8,
        reason: &'static str,
        attribute: Vec<u8>,
    },
    #[error("invalid prefix in NLRI or withdrawn routes: {0}")]
    InvalidNetworkField(PrefixError),
}

/// RFC 7606 section 7 (and RFC 8092 section 6 for LARGE_COMMUNITIES): what a
/// malformed instance of each attribute calls for. Wrong flags get the same answer
/// (section 3c).
pub(crate) fn attribute_action(type_code: u8) -> ErrorAction {
    match AttrType::from_u8(type_code) {
        Some(
            AttrType::Origin
            | AttrType::AsPath
            | AttrType::NextHop
            | AttrType::Med
            | AttrType::LocalPref
            | AttrType::Communities
            | AttrType::OriginatorId
            | AttrType::ClusterList
            | AttrType::LargeCommunities
            // RFC 7606 7.14, and the same rule for RFC 5701's 20-octet values.
            | AttrType::ExtendedCommunities
            | AttrType::Ipv6ExtendedCommunities,
        ) => ErrorAction::TreatAsWithdraw,
        Some(AttrType::AtomicAggregate | AttrType::Aggregator | AttrType::As4Path | AttrType::As4Aggregator) => {
            ErrorAction::AttributeDiscard
        }
        Some(AttrType::MpReachNlri | AttrType::MpUnreachNlri) | None => ErrorAction::SessionReset,
    }
}

fn is_mp(type_code: u8) -> bool {
    matches!(
        AttrType::from_u8(type_code),
        Some(AttrType::MpReachNlri | AttrType::MpUnreachNlri)
    )
}

impl UpdateError {
    /// What to do about this error (RFC 7606).
    pub fn action(&self) -> ErrorAction {
        match self {
            UpdateError::WithdrawnOverrun
            | UpdateError::AttributesOverrun
            | UpdateError::UnrecognizedWellKnown { .. }
            | UpdateError::InvalidNetworkField(_) => ErrorAction::SessionReset,
            UpdateError::AttributeOverrun | UpdateError::MissingWellKnown { .. } => ErrorAction::TreatAsWithdraw,
            // Section 3g: keep the first, except MP_* whose duplicates reset.
            UpdateError::Duplicate { type_code } if is_mp(*type_code) => ErrorAction::SessionReset,
            UpdateError::Duplicate { .. } => ErrorAction::AttributeDiscard,
            UpdateError::InvalidOrigin { .. } | UpdateError::MalformedAsPath { .. } => ErrorAction::TreatAsWithdraw,
            UpdateError::AttributeFlags { type_code, .. }
            | UpdateError::AttributeLength { type_code, .. }
            | UpdateError::OptionalAttribute { type_code, .. } => attribute_action(*type_code),
        }
    }

    /// The NOTIFICATION RFC 4271 section 6.3 assigns to this error; sent only
    /// when [`UpdateError::action`] is a session reset.
    pub fn notification(&self) -> Notification {
        use UpdateSubcode as S;
        let (sub, data) = match self {
            UpdateError::WithdrawnOverrun
            | UpdateError::AttributesOverrun
            | UpdateError::AttributeOverrun
            | UpdateError::Duplicate { .. } => (S::MalformedAttributeList, vec![]),
            UpdateError::UnrecognizedWellKnown { attribute, .. } => {
                (S::UnrecognizedWellKnownAttribute, attribute.clone())
            }
            UpdateError::MissingWellKnown { type_code } => (S::MissingWellKnownAttribute, vec![*type_code]),
            UpdateError::AttributeFlags { attribute, .. } => (S::AttributeFlagsError, attribute.clone()),
            UpdateError::AttributeLength { attribute, .. } => (S::AttributeLengthError, attribute.clone()),
            UpdateError::InvalidOrigin { attribute } => (S::InvalidOriginAttribute, attribute.clone()),
            UpdateError::MalformedAsPath { .. } => (S::MalformedAsPath, vec![]),
            UpdateError::OptionalAttribute { attribute, .. } => (S::OptionalAttributeError, attribute.clone()),
            UpdateError::InvalidNetworkField(_) => (S::InvalidNetworkField, vec![]),
        };
        Notification::new(ErrorCode::Update, sub as u8, data)
    }
}

/// Why a message could not be encoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// Typically an UPDATE from a 2-byte-AS peer whose paths grow when sent as 4-byte.
    #[error("message of {length} bytes exceeds the {max}-byte maximum", max = super::codes::MAX_MESSAGE_LEN)]
    MessageTooLong { length: usize },
    #[error("{prefix} cannot be announced with next hop {next_hop}")]
    NextHopFamily { prefix: ipnet::IpNet, next_hop: String },
}
