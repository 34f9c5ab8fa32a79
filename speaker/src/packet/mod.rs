//! BGP-4 wire codec: bytes to [`Message`] and back. It owns framing, the RFC 7606
//! verdict on malformed UPDATEs, and the NOTIFICATION each error calls for; what to
//! do with a message is the session's business.

mod attribute;
mod codes;
mod error;
mod ext_community;
mod message;
mod notification;
mod open;
mod prefix;
mod reader;
mod text;
mod text_error;
mod update;

pub use attribute::{
    Aggregator, AsPath, AsSegment, Community, LargeCommunity, MpReach, MpUnreach, NextHop, Origin, PathAttributes,
    RawAttribute,
};
pub use codes::{SessionCaps, AS_TRANS, HEADER_LEN, MAX_MESSAGE_LEN};
pub use error::{DecodeError, EncodeError, ErrorAction, OpenError, UpdateError};
pub use ext_community::{ExtendedCommunity, Ipv6ExtendedCommunity};
pub use message::{Message, RouteRefresh};
pub use notification::{
    CeaseSubcode, ErrorCode, HeaderSubcode, Notification, OpenSubcode, UpdateSubcode, MAX_SHUTDOWN_MESSAGE,
};
pub use open::{Capability, GracefulRestart, GracefulRestartFamily, Open};
pub use prefix::{AfiSafi, PrefixError};
pub(crate) use text::serde_as_text;
pub use text::TextError;
pub use update::Update;
