//! NOTIFICATION messages (RFC 4271 section 4.5): the error codes and subcodes we send
//! and read, the Cease subcodes of RFC 4486, the shutdown communication of RFC 9003
//! and the Hard Reset wrapper of RFC 8538.

use std::fmt;

/// A NOTIFICATION. Code and subcode stay raw so that ones we do not know still
/// reach the log intact; [`ErrorCode`] and [`CeaseSubcode`] name the known ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ErrorCode {
    MessageHeader = 1,
    Open = 2,
    Update = 3,
    HoldTimerExpired = 4,
    Fsm = 5,
    Cease = 6,
    RouteRefresh = 7,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum HeaderSubcode {
    ConnectionNotSynchronized = 1,
    BadMessageLength = 2,
    BadMessageType = 3,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum OpenSubcode {
    Unspecific = 0,
    UnsupportedVersionNumber = 1,
    BadPeerAs = 2,
    BadBgpIdentifier = 3,
    UnsupportedOptionalParameter = 4,
    UnacceptableHoldTime = 6,
    UnsupportedCapability = 7,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum UpdateSubcode {
    MalformedAttributeList = 1,
    UnrecognizedWellKnownAttribute = 2,
    MissingWellKnownAttribute = 3,
    AttributeFlagsError = 4,
    AttributeLengthError = 5,
    InvalidOriginAttribute = 6,
    InvalidNextHopAttribute = 8,
    OptionalAttributeError = 9,
    InvalidNetworkField = 10,
    MalformedAsPath = 11,
}

/// Cease subcodes, RFC 4486 and RFC 8538.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[repr(u8)]
pub enum CeaseSubcode {
    MaxPrefixesReached = 1,
    AdministrativeShutdown = 2,
    PeerDeconfigured = 3,
    AdministrativeReset = 4,
    ConnectionRejected = 5,
    OtherConfigurationChange = 6,
    ConnectionCollisionResolution = 7,
    OutOfResources = 8,
    HardReset = 9,
    /// RFC 9384: the BFD session protecting this one went down.
    BfdDown = 10,
}

impl ErrorCode {
    pub fn from_u8(code: u8) -> Option<Self> {
        use ErrorCode::*;
        [MessageHeader, Open, Update, HoldTimerExpired, Fsm, Cease, RouteRefresh]
            .into_iter()
            .find(|c| *c as u8 == code)
    }
}

impl CeaseSubcode {
    pub fn from_u8(subcode: u8) -> Option<Self> {
        use CeaseSubcode::*;
        [
            MaxPrefixesReached,
            AdministrativeShutdown,
            PeerDeconfigured,
            AdministrativeReset,
            ConnectionRejected,
            OtherConfigurationChange,
            ConnectionCollisionResolution,
            OutOfResources,
            HardReset,
            BfdDown,
        ]
        .into_iter()
        .find(|c| *c as u8 == subcode)
    }
}

/// RFC 9003 raised the shutdown communication limit from 128 to 255 bytes.
pub const MAX_SHUTDOWN_MESSAGE: usize = 255;

impl Notification {
    pub fn new(code: ErrorCode, subcode: u8, data: Vec<u8>) -> Self {
        Notification {
            code: code as u8,
            subcode,
            data,
        }
    }

    pub fn cease(subcode: CeaseSubcode) -> Self {
        Notification::new(ErrorCode::Cease, subcode as u8, Vec::new())
    }

    pub fn hold_timer_expired() -> Self {
        Notification::new(ErrorCode::HoldTimerExpired, 0, Vec::new())
    }

    /// Administrative Shutdown or Reset carrying a shutdown communication (RFC 9003).
    /// The text is cut at [`MAX_SHUTDOWN_MESSAGE`] bytes, on a character boundary.
    pub fn shutdown(subcode: CeaseSubcode, message: &str) -> Self {
        let mut end = message.len().min(MAX_SHUTDOWN_MESSAGE);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let mut data = Vec::with_capacity(end + 1);
        data.push(end as u8);
        data.extend_from_slice(&message.as_bytes()[..end]);
        Notification::new(ErrorCode::Cease, subcode as u8, data)
    }

    /// Wraps `cause` in a Cease/Hard Reset (RFC 8538 section 3): with the N bit
    /// negotiated, only this NOTIFICATION skips graceful restart.
    pub fn hard_reset(cause: &Notification) -> Self {
        let mut data = Vec::with_capacity(cause.data.len() + 2);
        data.push(cause.code);
        data.push(cause.subcode);
        data.extend_from_slice(&cause.data);
        Notification::new(ErrorCode::Cease, CeaseSubcode::HardReset as u8, data)
    }

    pub fn error_code(&self) -> Option<ErrorCode> {
        ErrorCode::from_u8(self.code)
    }

    pub fn cease_subcode(&self) -> Option<CeaseSubcode> {
        (self.code == ErrorCode::Cease as u8)
            .then(|| CeaseSubcode::from_u8(self.subcode))
            .flatten()
    }

    /// The shutdown communication of an Administrative Shutdown or Reset, if the
    /// peer sent a well-formed one. RFC 9003 says a malformed one must not be an
    /// error, so it is simply `None`.
    pub fn shutdown_message(&self) -> Option<&str> {
        match self.cease_subcode()? {
            CeaseSubcode::AdministrativeShutdown | CeaseSubcode::AdministrativeReset => {}
            _ => return None,
        }
        let (&len, rest) = self.data.split_first()?;
        let text = rest.get(..usize::from(len))?;
        if text.is_empty() {
            return None;
        }
        std::str::from_utf8(text).ok()
    }

    /// The NOTIFICATION a Hard Reset carries (RFC 8538 section 3).
    pub fn hard_reset_cause(&self) -> Option<Notification> {
        if self.cease_subcode()? != CeaseSubcode::HardReset {
            return None;
        }
        match self.data.as_slice() {
            [code, subcode, data @ ..] => Some(Notification {
                code: *code,
                subcode: *subcode,
                data: data.to_vec(),
            }),
            _ => None,
        }
    }

    pub(crate) fn decode(body: &[u8]) -> Self {
        // The header check guarantees at least the two code bytes.
        Notification {
            code: body[0],
            subcode: body[1],
            data: body[2..].to_vec(),
        }
    }

    pub(crate) fn encode(&self, out: &mut bytes::BytesMut) {
        use bytes::BufMut;
        out.put_u8(self.code);
        out.put_u8(self.subcode);
        out.put_slice(&self.data);
    }
}

impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = match self.error_code() {
            Some(code) => format!("{code:?}"),
            None => format!("code {}", self.code),
        };
        match self.cease_subcode() {
            Some(sub) => write!(f, "{code}/{sub:?}")?,
            None => write!(f, "{code}/subcode {}", self.subcode)?,
        }
        if let Some(text) = self.shutdown_message() {
            write!(f, ": {text:?}")?;
        } else if let Some(cause) = self.hard_reset_cause() {
            write!(f, " ({cause})")?;
        } else if !self.data.is_empty() {
            write!(f, " data {:02x?}", self.data)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{Message, SessionCaps};

    fn round_trip(bytes: &[u8], msg: Notification) {
        let caps = SessionCaps::default();
        assert_eq!(
            Message::decode(bytes, &caps).unwrap(),
            (Message::Notification(msg.clone()), bytes.len())
        );
        assert_eq!(Message::Notification(msg).to_bytes(&caps).unwrap(), bytes);
    }

    const MARKER: [u8; 16] = [0xff; 16];

    #[test]
    fn hold_timer_expired() {
        let mut bytes = MARKER.to_vec();
        bytes.extend_from_slice(&[0, 21, 3, 4, 0]);
        round_trip(&bytes, Notification::hold_timer_expired());
    }

    #[test]
    fn shutdown_communication() {
        // FRR's "neighbor X shutdown message maintenance".
        let mut bytes = MARKER.to_vec();
        bytes.extend_from_slice(&[0, 33, 3, 6, 2, 11]);
        bytes.extend_from_slice(b"maintenance");
        let n = Notification::shutdown(CeaseSubcode::AdministrativeShutdown, "maintenance");
        assert_eq!(n.shutdown_message(), Some("maintenance"));
        assert_eq!(n.to_string(), "Cease/AdministrativeShutdown: \"maintenance\"");
        round_trip(&bytes, n);
    }

    #[test]
    fn shutdown_communication_is_cut_on_a_char_boundary() {
        let long = "é".repeat(200); // 400 bytes
        let n = Notification::shutdown(CeaseSubcode::AdministrativeReset, &long);
        assert_eq!(n.data[0], 254);
        assert_eq!(n.shutdown_message().unwrap().chars().count(), 127);
    }

    #[test]
    fn malformed_shutdown_communication_is_not_an_error() {
        let n = Notification {
            code: 6,
            subcode: 2,
            data: vec![10, b'a'],
        };
        assert_eq!(n.shutdown_message(), None);
        let n = Notification {
            code: 6,
            subcode: 2,
            data: vec![2, 0xff, 0xfe],
        };
        assert_eq!(n.shutdown_message(), None);
    }

    #[test]
    fn hard_reset_wraps_the_cause() {
        let mut bytes = MARKER.to_vec();
        bytes.extend_from_slice(&[0, 23, 3, 6, 9, 4, 0]);
        let n = Notification::hard_reset(&Notification::hold_timer_expired());
        assert_eq!(n.hard_reset_cause(), Some(Notification::hold_timer_expired()));
        assert_eq!(n.cease_subcode(), Some(CeaseSubcode::HardReset));
        round_trip(&bytes, n);
    }

    #[test]
    fn unknown_codes_survive() {
        let mut bytes = MARKER.to_vec();
        bytes.extend_from_slice(&[0, 22, 3, 42, 7, 1]);
        let n = Notification {
            code: 42,
            subcode: 7,
            data: vec![1],
        };
        assert_eq!(n.to_string(), "code 42/subcode 7 data [01]");
        round_trip(&bytes, n);
    }
}
