//! The BGP message and its 19-byte header (RFC 4271 section 4.1): framing a byte
//! stream into messages, the length checks per type, and the negotiated session
//! capabilities that change how the rest is read and written.

use bytes::{BufMut, BytesMut};

use super::codes::{SessionCaps, HEADER_LEN, MAX_MESSAGE_LEN};
use super::error::{DecodeError, EncodeError};
use super::notification::Notification;
use super::open::Open;
use super::prefix::AfiSafi;
use super::update::Update;

const MARKER: [u8; 16] = [0xff; 16];

// UPDATE is both the largest and by far the most frequent message: boxing it would
// add an allocation per UPDATE to save stack space on rare KEEPALIVEs.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

/// ROUTE-REFRESH (RFC 2918), with the RFC 7313 subtype in the old reserved byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteRefresh {
    pub afi_safi: AfiSafi,
    /// 0 is a plain request; 1 and 2 mark the beginning and end of an enhanced refresh.
    pub subtype: u8,
}

impl Message {
    fn type_code(&self) -> u8 {
        match self {
            Message::Open(_) => 1,
            Message::Update(_) => 2,
            Message::Notification(_) => 3,
            Message::Keepalive => 4,
            Message::RouteRefresh(_) => 5,
        }
    }

    /// Reads the message at the start of `buf` and says how many bytes it took.
    /// [`DecodeError::Incomplete`] asks for more bytes; any other error should be
    /// answered with its [`DecodeError::notification`] and a closed session.
    pub fn decode(buf: &[u8], caps: &SessionCaps) -> Result<(Message, usize), DecodeError> {
        // Checking what marker bytes we have catches a desynchronized stream early.
        if buf.iter().take(MARKER.len()).any(|&b| b != 0xff) {
            return Err(DecodeError::ConnectionNotSynchronized);
        }
        if buf.len() < HEADER_LEN {
            return Err(DecodeError::Incomplete { needed: HEADER_LEN });
        }
        let length = u16::from_be_bytes([buf[16], buf[17]]);
        let msg_type = buf[18];
        let len = usize::from(length);
        if !(HEADER_LEN..=MAX_MESSAGE_LEN).contains(&len) {
            return Err(DecodeError::BadMessageLength { length });
        }
        // RFC 4271 6.1: each type has its own bounds, reported as a bad length.
        let fits = match msg_type {
            1 => len >= 29,
            2 => len >= 23,
            3 => len >= 21,
            4 => len == 19,
            5 => len == 23,
            _ => return Err(DecodeError::BadMessageType { msg_type }),
        };
        if !fits {
            return Err(DecodeError::BadMessageLength { length });
        }
        if buf.len() < len {
            return Err(DecodeError::Incomplete { needed: len });
        }
        let body = &buf[HEADER_LEN..len];
        let msg = match msg_type {
            1 => Message::Open(Open::decode(body)?),
            2 => Message::Update(Update::decode(body, caps)?),
            3 => Message::Notification(Notification::decode(body)),
            4 => Message::Keepalive,
            _ => Message::RouteRefresh(RouteRefresh {
                afi_safi: AfiSafi::new(u16::from_be_bytes([body[0], body[1]]), body[3]),
                subtype: body[2],
            }),
        };
        Ok((msg, len))
    }

    /// Appends the message to `out`. On error `out` is left as it was.
    pub fn encode(&self, caps: &SessionCaps, out: &mut BytesMut) -> Result<(), EncodeError> {
        let start = out.len();
        out.put_slice(&MARKER);
        out.put_u16(0);
        out.put_u8(self.type_code());
        let body = match self {
            Message::Open(open) => {
                open.encode(out);
                Ok(())
            }
            Message::Update(update) => update.encode(caps, out),
            Message::Notification(n) => {
                n.encode(out);
                Ok(())
            }
            Message::Keepalive => Ok(()),
            Message::RouteRefresh(rr) => {
                out.put_u16(rr.afi_safi.afi);
                out.put_u8(rr.subtype);
                out.put_u8(rr.afi_safi.safi);
                Ok(())
            }
        };
        let length = out.len() - start;
        if let Err(e) = body {
            out.truncate(start);
            return Err(e);
        }
        if length > MAX_MESSAGE_LEN {
            out.truncate(start);
            return Err(EncodeError::MessageTooLong { length });
        }
        out[start + 16..start + 18].copy_from_slice(&(length as u16).to_be_bytes());
        Ok(())
    }

    /// The message as bytes; for tests and one-off sends.
    pub fn to_bytes(&self, caps: &SessionCaps) -> Result<Vec<u8>, EncodeError> {
        let mut out = BytesMut::new();
        self.encode(caps, &mut out)?;
        Ok(out.to_vec())
    }
}

/// A message with its header, for tests that write only the body by hand.
#[cfg(test)]
pub(crate) fn frame(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let mut out = MARKER.to_vec();
    out.extend_from_slice(&((HEADER_LEN + body.len()) as u16).to_be_bytes());
    out.push(msg_type);
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: SessionCaps = SessionCaps { four_octet_as: true };

    fn header_error(bytes: &[u8]) -> (DecodeError, (u8, u8, Vec<u8>)) {
        let e = Message::decode(bytes, &CAPS).unwrap_err();
        let n = e.notification().unwrap();
        (e, (n.code, n.subcode, n.data))
    }

    #[test]
    fn keepalive_both_ways() {
        let bytes = frame(4, &[]);
        assert_eq!(bytes.len(), 19);
        assert_eq!(Message::decode(&bytes, &CAPS), Ok((Message::Keepalive, 19)));
        assert_eq!(Message::Keepalive.to_bytes(&CAPS).unwrap(), bytes);
    }

    #[test]
    fn route_refresh_both_ways() {
        let bytes = frame(5, &[0, 2, 0, 1]);
        let msg = Message::RouteRefresh(RouteRefresh {
            afi_safi: AfiSafi::IPV6_UNICAST,
            subtype: 0,
        });
        assert_eq!(Message::decode(&bytes, &CAPS), Ok((msg.clone(), 23)));
        assert_eq!(msg.to_bytes(&CAPS).unwrap(), bytes);
    }

    #[test]
    fn frames_a_stream() {
        let mut stream = frame(4, &[]);
        stream.extend(frame(5, &[0, 1, 0, 1]));
        let (first, used) = Message::decode(&stream, &CAPS).unwrap();
        assert_eq!((first, used), (Message::Keepalive, 19));
        let (second, used) = Message::decode(&stream[19..], &CAPS).unwrap();
        assert!(matches!(second, Message::RouteRefresh(_)));
        assert_eq!(used, 23);
    }

    #[test]
    fn asks_for_more_bytes() {
        let bytes = frame(5, &[0, 1, 0, 1]);
        for cut in 0..19 {
            assert_eq!(
                Message::decode(&bytes[..cut], &CAPS),
                Err(DecodeError::Incomplete { needed: 19 }),
            );
        }
        assert_eq!(
            Message::decode(&bytes[..22], &CAPS),
            Err(DecodeError::Incomplete { needed: 23 }),
        );
        assert_eq!(DecodeError::Incomplete { needed: 23 }.notification(), None);
    }

    #[test]
    fn bad_marker() {
        let mut bytes = frame(4, &[]);
        bytes[3] = 0;
        assert_eq!(header_error(&bytes).1, (1, 1, vec![]));
        // Seen before the whole header is in.
        assert_eq!(
            Message::decode(&bytes[..5], &CAPS),
            Err(DecodeError::ConnectionNotSynchronized)
        );
    }

    #[test]
    fn bad_lengths_per_type() {
        let cases: &[(u8, u16)] = &[
            (4, 18),   // below the header
            (4, 4097), // above the maximum
            (4, 20),   // KEEPALIVE is exactly 19
            (1, 28),   // OPEN at least 29
            (2, 22),   // UPDATE at least 23
            (3, 20),   // NOTIFICATION at least 21
            (5, 24),   // ROUTE-REFRESH exactly 23
        ];
        for &(msg_type, length) in cases {
            let mut bytes = vec![0xff; 16];
            bytes.extend_from_slice(&length.to_be_bytes());
            bytes.push(msg_type);
            bytes.resize(usize::from(length).max(19), 0);
            let (e, n) = header_error(&bytes);
            assert_eq!(e, DecodeError::BadMessageLength { length });
            assert_eq!(n, (1, 2, length.to_be_bytes().to_vec()), "type {msg_type}");
        }
    }

    #[test]
    fn bad_type() {
        let (e, n) = header_error(&frame(6, &[]));
        assert_eq!(e, DecodeError::BadMessageType { msg_type: 6 });
        assert_eq!(n, (1, 3, vec![6]));
    }

    #[test]
    fn refuses_to_encode_past_4096() {
        let msg = Message::Notification(Notification {
            code: 6,
            subcode: 0,
            data: vec![0; 4096],
        });
        let mut out = BytesMut::from(&b"kept"[..]);
        assert_eq!(
            msg.encode(&CAPS, &mut out),
            Err(EncodeError::MessageTooLong { length: 4117 })
        );
        assert_eq!(&out[..], b"kept");
    }

    #[test]
    fn negotiates_four_octet_as() {
        let with = Open::new(
            65001,
            90,
            [1, 1, 1, 1].into(),
            vec![crate::packet::Capability::FourOctetAs(65001)],
        );
        let without = Open::new(65002, 90, [2, 2, 2, 2].into(), vec![]);
        assert!(with.session_caps(&with).four_octet_as);
        assert!(!with.session_caps(&without).four_octet_as);
    }
}
