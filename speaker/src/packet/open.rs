//! OPEN messages (RFC 4271 section 4.2) and the capabilities we negotiate (RFC 5492):
//! multiprotocol, route refresh, 4-byte AS and graceful restart. Others are kept as
//! bytes so they can be logged and compared.

use std::net::Ipv4Addr;

use bytes::{BufMut, BytesMut};

use super::codes::{SessionCaps, AS_TRANS};
use super::error::OpenError;
use super::prefix::AfiSafi;
use super::reader::Reader;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Open {
    /// The 2-byte My Autonomous System field; AS_TRANS when the AS needs 4 bytes.
    /// [`Open::asn`] gives the real AS.
    pub my_as: u16,
    pub hold_time: u16,
    pub router_id: Ipv4Addr,
    pub capabilities: Vec<Capability>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Capability {
    /// RFC 4760, code 1.
    Multiprotocol(AfiSafi),
    /// RFC 2918, code 2.
    RouteRefresh,
    /// Code 128, Cisco's pre-standard route refresh; same meaning as code 2.
    RouteRefreshCisco,
    /// RFC 4724 and RFC 8538, code 64.
    GracefulRestart(GracefulRestart),
    /// RFC 6793, code 65.
    FourOctetAs(u32),
    /// Any other capability (extended next hop, add-path, FQDN, ...), as received.
    Unknown { code: u8, value: Vec<u8> },
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GracefulRestart {
    /// R bit: the sender has just restarted.
    pub restarting: bool,
    /// N bit (RFC 8538): NOTIFICATIONs other than Hard Reset keep routes too.
    pub notification: bool,
    /// Seconds, 12 bits on the wire.
    pub restart_time: u16,
    pub families: Vec<GracefulRestartFamily>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GracefulRestartFamily {
    pub afi_safi: AfiSafi,
    /// F bit: forwarding state was kept across the restart.
    pub forwarding_preserved: bool,
}

const PARAM_CAPABILITIES: u8 = 2;
/// RFC 9072: this Non-Ext OP Type means extended (2-byte) parameter lengths follow.
const PARAM_EXTENDED: u8 = 255;

impl Open {
    /// An OPEN for `asn`, with My AS set to AS_TRANS when `asn` needs 4 bytes. The
    /// capabilities should include [`Capability::FourOctetAs`] with the same AS.
    pub fn new(asn: u32, hold_time: u16, router_id: Ipv4Addr, capabilities: Vec<Capability>) -> Self {
        Open {
            my_as: u16::try_from(asn).unwrap_or(AS_TRANS as u16),
            hold_time,
            router_id,
            capabilities,
        }
    }

    /// The sender's AS: from the 4-byte AS capability if there is one.
    pub fn asn(&self) -> u32 {
        self.four_octet_as().unwrap_or(u32::from(self.my_as))
    }

    /// What this OPEN (ours) and the peer's settle for the wire format.
    pub fn session_caps(&self, remote: &Open) -> SessionCaps {
        SessionCaps {
            four_octet_as: self.four_octet_as().is_some() && remote.four_octet_as().is_some(),
        }
    }

    pub fn four_octet_as(&self) -> Option<u32> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::FourOctetAs(asn) => Some(*asn),
            _ => None,
        })
    }

    pub fn route_refresh(&self) -> bool {
        self.capabilities
            .iter()
            .any(|c| matches!(c, Capability::RouteRefresh | Capability::RouteRefreshCisco))
    }

    pub fn graceful_restart(&self) -> Option<&GracefulRestart> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::GracefulRestart(gr) => Some(gr),
            _ => None,
        })
    }

    /// Families announced with the multiprotocol capability.
    pub fn families(&self) -> impl Iterator<Item = AfiSafi> + '_ {
        self.capabilities.iter().filter_map(|c| match c {
            Capability::Multiprotocol(f) => Some(*f),
            _ => None,
        })
    }

    pub(crate) fn decode(body: &[u8]) -> Result<Open, OpenError> {
        let malformed = OpenError::Malformed;
        let mut r = Reader::new(body);
        let version = r.u8().ok_or(malformed("truncated"))?;
        if version != 4 {
            return Err(OpenError::UnsupportedVersion { version });
        }
        let (Some(my_as), Some(hold_time), Some(router_id), Some(opt_len)) = (r.u16(), r.u16(), r.ipv4(), r.u8())
        else {
            return Err(malformed("truncated"));
        };
        if hold_time == 1 || hold_time == 2 {
            return Err(OpenError::UnacceptableHoldTime(hold_time));
        }
        // RFC 6286 allows any identifier but zero.
        if router_id.is_unspecified() {
            return Err(OpenError::BadBgpIdentifier);
        }
        let mut opt = r;
        let extended = opt_len == 255 && opt.peek_all().first() == Some(&PARAM_EXTENDED);
        let params = if extended {
            opt.u8();
            let len = opt.u16().ok_or(malformed("truncated"))?;
            opt.take(usize::from(len))
        } else {
            opt.take(usize::from(opt_len))
        }
        .ok_or(malformed("optional parameters overrun the message"))?;
        if !opt.is_empty() {
            return Err(malformed("bytes after the optional parameters"));
        }
        let mut capabilities = Vec::new();
        let mut r = Reader::new(params);
        while !r.is_empty() {
            let kind = r.u8().ok_or(malformed("truncated parameter"))?;
            let len = if extended {
                r.u16().map(usize::from)
            } else {
                r.u8().map(usize::from)
            };
            let value = len
                .and_then(|len| r.take(len))
                .ok_or(malformed("parameter overruns the optional parameters"))?;
            if kind != PARAM_CAPABILITIES {
                return Err(OpenError::UnsupportedOptionalParameter(kind));
            }
            decode_capabilities(value, &mut capabilities)?;
        }
        Ok(Open {
            my_as,
            hold_time,
            router_id,
            capabilities,
        })
    }

    /// Each capability in an optional parameter of its own, as FRR and GoBGP send
    /// them; RFC 9072 extended lengths only when they would not fit otherwise.
    pub(crate) fn encode(&self, out: &mut BytesMut) {
        out.put_u8(4);
        out.put_u16(self.my_as);
        out.put_u16(self.hold_time);
        out.put_slice(&self.router_id.octets());
        let caps: Vec<BytesMut> = self.capabilities.iter().map(encode_capability).collect();
        let short_len: usize = caps.iter().map(|c| c.len() + 2).sum();
        if short_len <= 255 {
            out.put_u8(short_len as u8);
            for cap in caps {
                out.put_u8(PARAM_CAPABILITIES);
                out.put_u8(cap.len() as u8);
                out.put_slice(&cap);
            }
        } else {
            out.put_u8(255);
            out.put_u8(PARAM_EXTENDED);
            let long_len: usize = caps.iter().map(|c| c.len() + 3).sum();
            // Over 64 KiB the message length check refuses it anyway.
            out.put_u16(u16::try_from(long_len).unwrap_or(u16::MAX));
            for cap in caps {
                out.put_u8(PARAM_CAPABILITIES);
                out.put_u16(cap.len() as u16);
                out.put_slice(&cap);
            }
        }
    }
}

fn decode_capabilities(buf: &[u8], out: &mut Vec<Capability>) -> Result<(), OpenError> {
    let malformed = OpenError::Malformed;
    let mut r = Reader::new(buf);
    while !r.is_empty() {
        let (Some(code), Some(len)) = (r.u8(), r.u8()) else {
            return Err(malformed("truncated capability"));
        };
        let value = r
            .take(usize::from(len))
            .ok_or(malformed("capability overruns its parameter"))?;
        let mut v = Reader::new(value);
        out.push(match (code, value.len()) {
            (1, 4) => {
                let afi = v.u16().expect("4 bytes");
                v.u8(); // reserved
                Capability::Multiprotocol(AfiSafi::new(afi, v.u8().expect("4 bytes")))
            }
            (1, _) => return Err(malformed("multiprotocol capability length")),
            (2, 0) => Capability::RouteRefresh,
            (128, 0) => Capability::RouteRefreshCisco,
            (2 | 128, _) => return Err(malformed("route refresh capability length")),
            (64, n) if n >= 2 && (n - 2) % 4 == 0 => {
                let head = v.u16().expect("2 bytes");
                let mut families = Vec::new();
                while let (Some(afi), Some(safi), Some(flags)) = (v.u16(), v.u8(), v.u8()) {
                    families.push(GracefulRestartFamily {
                        afi_safi: AfiSafi::new(afi, safi),
                        forwarding_preserved: flags & 0x80 != 0,
                    });
                }
                Capability::GracefulRestart(GracefulRestart {
                    restarting: head & 0x8000 != 0,
                    notification: head & 0x4000 != 0,
                    restart_time: head & 0x0fff,
                    families,
                })
            }
            (64, _) => return Err(malformed("graceful restart capability length")),
            (65, 4) => Capability::FourOctetAs(v.u32().expect("4 bytes")),
            (65, _) => return Err(malformed("4-byte AS capability length")),
            _ => Capability::Unknown {
                code,
                value: value.to_vec(),
            },
        });
    }
    Ok(())
}

fn encode_capability(cap: &Capability) -> BytesMut {
    let mut v = BytesMut::new();
    let code = match cap {
        Capability::Multiprotocol(f) => {
            v.put_u16(f.afi);
            v.put_u8(0);
            v.put_u8(f.safi);
            1
        }
        Capability::RouteRefresh => 2,
        Capability::RouteRefreshCisco => 128,
        Capability::GracefulRestart(gr) => {
            let mut head = gr.restart_time.min(0x0fff);
            if gr.restarting {
                head |= 0x8000;
            }
            if gr.notification {
                head |= 0x4000;
            }
            v.put_u16(head);
            for f in &gr.families {
                v.put_u16(f.afi_safi.afi);
                v.put_u8(f.afi_safi.safi);
                v.put_u8(if f.forwarding_preserved { 0x80 } else { 0 });
            }
            64
        }
        Capability::FourOctetAs(asn) => {
            v.put_u32(*asn);
            65
        }
        Capability::Unknown { code, value } => {
            v.put_slice(value);
            *code
        }
    };
    let mut out = BytesMut::with_capacity(v.len() + 2);
    out.put_u8(code);
    out.put_u8(v.len() as u8);
    out.put_slice(&v);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::message::frame;
    use crate::packet::{DecodeError, Message, SessionCaps};

    fn both_ways(bytes: &[u8], open: Open) {
        let caps = SessionCaps::default();
        assert_eq!(
            Message::decode(bytes, &caps).unwrap(),
            (Message::Open(open.clone()), bytes.len())
        );
        assert_eq!(Message::Open(open).to_bytes(&caps).unwrap(), bytes);
    }

    fn open_error(body: &[u8]) -> (OpenError, u8, Vec<u8>) {
        match Message::decode(&frame(1, body), &SessionCaps::default()) {
            Err(DecodeError::Open(e)) => {
                let n = e.notification();
                assert_eq!(n.code, 2);
                (e, n.subcode, n.data)
            }
            other => panic!("expected an OPEN error, got {other:?}"),
        }
    }

    #[test]
    fn frr_open() {
        // FRR 8/9 with its usual capabilities, each in its own parameter.
        #[rustfmt::skip]
        let body = [
            4, 0xfd, 0xe8, 0, 180, 10, 0, 0, 1, 54,      // v4, AS 65000, hold 180, id, opt len
            2, 6, 1, 4, 0, 1, 0, 1,                      // multiprotocol IPv4 unicast
            2, 2, 128, 0,                                // route refresh (Cisco)
            2, 2, 2, 0,                                  // route refresh
            2, 2, 70, 0,                                 // enhanced route refresh
            2, 6, 65, 4, 0, 0, 0xfd, 0xe8,               // 4-byte AS 65000
            2, 6, 69, 4, 0, 1, 1, 1,                     // add-path IPv4 unicast receive
            2, 6, 73, 4, 2, b'r', b'1', 0,               // FQDN "r1"
            2, 4, 64, 2, 0x40, 0x78,                     // graceful restart N, 120 s
            2, 2, 71, 0,                                 // long-lived graceful restart
        ];
        let open = Open {
            my_as: 65000,
            hold_time: 180,
            router_id: Ipv4Addr::new(10, 0, 0, 1),
            capabilities: vec![
                Capability::Multiprotocol(AfiSafi::IPV4_UNICAST),
                Capability::RouteRefreshCisco,
                Capability::RouteRefresh,
                Capability::Unknown {
                    code: 70,
                    value: vec![],
                },
                Capability::FourOctetAs(65000),
                Capability::Unknown {
                    code: 69,
                    value: vec![0, 1, 1, 1],
                },
                Capability::Unknown {
                    code: 73,
                    value: vec![2, b'r', b'1', 0],
                },
                Capability::GracefulRestart(GracefulRestart {
                    restarting: false,
                    notification: true,
                    restart_time: 120,
                    families: vec![],
                }),
                Capability::Unknown {
                    code: 71,
                    value: vec![],
                },
            ],
        };
        assert!(open.route_refresh());
        assert_eq!(open.asn(), 65000);
        assert_eq!(open.families().collect::<Vec<_>>(), vec![AfiSafi::IPV4_UNICAST]);
        both_ways(&frame(1, &body), open);
    }

    #[test]
    fn bird_open_with_all_capabilities_in_one_parameter() {
        #[rustfmt::skip]
        let body = [
            4, 0x5b, 0xa0, 0, 240, 192, 0, 2, 7, 30,    // AS_TRANS, hold 240
            2, 28,
                1, 4, 0, 1, 0, 1,
                1, 4, 0, 2, 0, 1,
                2, 0,
                64, 6, 0x80, 0x78, 0, 2, 1, 0x80,       // GR: R, 120 s, IPv6 unicast F
                65, 4, 0xfa, 0x56, 0xea, 0x00,          // 4-byte AS 4200000000
        ];
        let bytes = frame(1, &body);
        let (msg, _) = Message::decode(&bytes, &SessionCaps::default()).unwrap();
        let Message::Open(open) = msg else {
            panic!("not an OPEN")
        };
        assert_eq!(open.my_as, AS_TRANS as u16);
        assert_eq!(open.asn(), 4_200_000_000);
        assert_eq!(
            open.graceful_restart(),
            Some(&GracefulRestart {
                restarting: true,
                notification: false,
                restart_time: 120,
                families: vec![GracefulRestartFamily {
                    afi_safi: AfiSafi::IPV6_UNICAST,
                    forwarding_preserved: true,
                }],
            })
        );
        assert_eq!(
            open,
            Open::new(
                4_200_000_000,
                240,
                Ipv4Addr::new(192, 0, 2, 7),
                open.capabilities.clone()
            )
        );
        // Re-encoded one capability per parameter, it reads back the same.
        let again = Message::Open(open.clone()).to_bytes(&SessionCaps::default()).unwrap();
        assert_eq!(
            Message::decode(&again, &SessionCaps::default()).unwrap().0,
            Message::Open(open)
        );
    }

    #[test]
    fn extended_optional_parameters() {
        // RFC 9072 kicks in past 255 bytes of parameters.
        let caps: Vec<Capability> = (0..20)
            .map(|i| Capability::Unknown {
                code: 200 + i,
                value: vec![i; 12],
            })
            .collect();
        let open = Open::new(65001, 90, Ipv4Addr::new(1, 2, 3, 4), caps);
        let bytes = Message::Open(open.clone()).to_bytes(&SessionCaps::default()).unwrap();
        assert_eq!(&bytes[28..32], &[255, 255, 0x01, 0x54]);
        assert_eq!(bytes.len(), 29 + 3 + 20 * 17);
        both_ways(&bytes, open);
    }

    #[test]
    fn malformed_opens() {
        let ok = [4, 0xfd, 0xe8, 0, 90, 1, 1, 1, 1, 0];
        let mut body = ok;
        body[0] = 3;
        assert_eq!(
            open_error(&body),
            (OpenError::UnsupportedVersion { version: 3 }, 1, vec![0, 4])
        );
        let mut body = ok;
        body[4] = 2;
        assert_eq!(open_error(&body).1, 6);
        let mut body = ok;
        body[5..9].copy_from_slice(&[0, 0, 0, 0]);
        assert_eq!(open_error(&body).1, 3);
        // Authentication parameter (type 1), long gone.
        assert_eq!(
            open_error(&[4, 0xfd, 0xe8, 0, 90, 1, 1, 1, 1, 3, 1, 1, 0]).0,
            OpenError::UnsupportedOptionalParameter(1)
        );
        // Optional parameter length past the end.
        assert_eq!(open_error(&[4, 0xfd, 0xe8, 0, 90, 1, 1, 1, 1, 4, 2, 2]).1, 0);
        // Capability overrunning its parameter.
        assert_eq!(open_error(&[4, 0xfd, 0xe8, 0, 90, 1, 1, 1, 1, 4, 2, 2, 65, 4]).1, 0);
        // 4-byte AS capability of the wrong length.
        assert_eq!(
            open_error(&[4, 0xfd, 0xe8, 0, 90, 1, 1, 1, 1, 5, 2, 3, 65, 1, 0]).0,
            OpenError::Malformed("4-byte AS capability length")
        );
    }
}
