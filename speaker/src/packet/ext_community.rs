//! Extended communities: EXTENDED_COMMUNITIES (RFC 4360, 8 octets each) and
//! IPV6_ADDRESS_SPECIFIC_EXTENDED_COMMUNITY (RFC 5701, 20 octets each), kept as their
//! octets and written as FRR and BIRD write the common ones: `rt:65000:100`,
//! `soo:10.0.0.1:7`, `rt:[fd00::1]:100`; any other as `0x` and its octets in hex.
//! The high-order type octet says whether the community may cross an AS boundary:
//! its bit 0x40 set means non-transitive (RFC 4360 section 3).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::text_error::{bad, TextError};

/// One EXTENDED_COMMUNITIES value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExtendedCommunity(pub [u8; 8]);

/// One IPv6 address specific extended community.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv6ExtendedCommunity(pub [u8; 20]);

/// Type octet bit 0x40: the community must not be passed to another AS.
const NON_TRANSITIVE: u8 = 0x40;
/// Sub-types of the AS and address specific types (RFC 4360 sections 4 and 5).
const ROUTE_TARGET: u8 = 0x02;
const ROUTE_ORIGIN: u8 = 0x03;

impl ExtendedCommunity {
    pub fn is_transitive(&self) -> bool {
        self.0[0] & NON_TRANSITIVE == 0
    }

    /// The readable form, when this community has one that reads back to it.
    fn named(&self) -> Option<String> {
        let b = &self.0;
        let kind = match b[1] {
            ROUTE_TARGET => "rt",
            ROUTE_ORIGIN => "soo",
            _ => return None,
        };
        let u16_at = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let text = match b[0] {
            0x00 => format!("{kind}:{}:{}", u16_at(2), u32_at(4)),
            0x01 => format!("{kind}:{}:{}", Ipv4Addr::new(b[2], b[3], b[4], b[5]), u16_at(6)),
            0x02 => format!("{kind}:{}:{}", u32_at(2), u16_at(6)),
            _ => return None,
        };
        (text.parse::<ExtendedCommunity>().ok() == Some(*self)).then_some(text)
    }
}

impl Ipv6ExtendedCommunity {
    pub fn is_transitive(&self) -> bool {
        self.0[0] & NON_TRANSITIVE == 0
    }
}

impl fmt::Display for ExtendedCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.named() {
            Some(n) => f.write_str(&n),
            None => write!(f, "0x{}", hex(&self.0)),
        }
    }
}

impl fmt::Display for Ipv6ExtendedCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        let kind = match (b[0], b[1]) {
            (0x00, ROUTE_TARGET) => Some("rt"),
            (0x00, ROUTE_ORIGIN) => Some("soo"),
            _ => None,
        };
        match kind {
            Some(k) => {
                let addr = Ipv6Addr::from(<[u8; 16]>::try_from(&b[2..18]).expect("16 octets"));
                write!(f, "{k}:[{addr}]:{}", u16::from_be_bytes([b[18], b[19]]))
            }
            None => write!(f, "0x{}", hex(b)),
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex<const N: usize>(what: &'static str, s: &str) -> Result<[u8; N], TextError> {
    let digits = s.strip_prefix("0x").unwrap_or(s);
    if digits.len() != 2 * N || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad(
            what,
            s,
            "expected rt:ADMIN:VALUE, soo:ADMIN:VALUE or 0x and its octets in hex",
        ));
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).expect("hex digits");
    }
    Ok(out)
}

/// The sub-type a text form names: `rt` or `soo`.
fn sub_type(what: &'static str, s: &str, kind: &str) -> Result<u8, TextError> {
    match kind {
        "rt" => Ok(ROUTE_TARGET),
        "soo" => Ok(ROUTE_ORIGIN),
        _ => Err(bad(what, s, "expected rt: or soo: (or 0x and hex)")),
    }
}

impl FromStr for ExtendedCommunity {
    type Err = TextError;

    /// `rt:65000:100` (2-octet AS, 4-octet value), `rt:4200000000:100` (4-octet AS),
    /// `rt:10.0.0.1:100`, the same with `soo:`, or `0x` and 16 hex digits.
    fn from_str(s: &str) -> Result<Self, TextError> {
        const WHAT: &str = "extended community";
        let Some((kind, rest)) = s.split_once(':') else {
            return unhex::<8>(WHAT, s).map(ExtendedCommunity);
        };
        let sub = sub_type(WHAT, s, kind)?;
        let (admin, value) = rest
            .rsplit_once(':')
            .ok_or_else(|| bad(WHAT, s, "expected KIND:ADMIN:VALUE"))?;
        let mut b = [0u8; 8];
        b[1] = sub;
        if let Ok(ip) = admin.parse::<Ipv4Addr>() {
            let v: u16 = value
                .parse()
                .map_err(|_| bad(WHAT, s, "value is not a 16-bit number"))?;
            b[0] = 0x01;
            b[2..6].copy_from_slice(&ip.octets());
            b[6..8].copy_from_slice(&v.to_be_bytes());
        } else {
            let asn: u32 = admin
                .parse()
                .map_err(|_| bad(WHAT, s, "administrator is not an AS or an IPv4 address"))?;
            match u16::try_from(asn) {
                Ok(asn) => {
                    let v: u32 = value
                        .parse()
                        .map_err(|_| bad(WHAT, s, "value is not a 32-bit number"))?;
                    b[2..4].copy_from_slice(&asn.to_be_bytes());
                    b[4..8].copy_from_slice(&v.to_be_bytes());
                }
                Err(_) => {
                    let v: u16 = value
                        .parse()
                        .map_err(|_| bad(WHAT, s, "value is not a 16-bit number"))?;
                    b[0] = 0x02;
                    b[2..6].copy_from_slice(&asn.to_be_bytes());
                    b[6..8].copy_from_slice(&v.to_be_bytes());
                }
            }
        }
        Ok(ExtendedCommunity(b))
    }
}

impl FromStr for Ipv6ExtendedCommunity {
    type Err = TextError;

    /// `rt:[fd00::1]:100`, `soo:[fd00::1]:100`, or `0x` and 40 hex digits.
    fn from_str(s: &str) -> Result<Self, TextError> {
        const WHAT: &str = "IPv6 extended community";
        let Some((kind, rest)) = s.split_once(":[") else {
            return unhex::<20>(WHAT, s).map(Ipv6ExtendedCommunity);
        };
        let sub = sub_type(WHAT, s, kind)?;
        let (addr, value) = rest
            .split_once("]:")
            .ok_or_else(|| bad(WHAT, s, "expected KIND:[ADDRESS]:VALUE"))?;
        let addr: Ipv6Addr = addr.parse().map_err(|_| bad(WHAT, s, "not an IPv6 address"))?;
        let v: u16 = value
            .parse()
            .map_err(|_| bad(WHAT, s, "value is not a 16-bit number"))?;
        let mut b = [0u8; 20];
        b[1] = sub;
        b[2..18].copy_from_slice(&addr.octets());
        b[18..20].copy_from_slice(&v.to_be_bytes());
        Ok(Ipv6ExtendedCommunity(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_read_back_what_they_print() {
        for s in [
            "rt:65000:100",
            "soo:65000:4000000000",
            "rt:10.0.0.1:7",
            "rt:4200000000:100",
            "0x4302000000000001",
        ] {
            let c: ExtendedCommunity = s.parse().unwrap();
            assert_eq!(c.to_string(), s, "{s}");
        }
        // A 4-octet AS type holding a small AS has no readable form that reads back.
        let c = ExtendedCommunity([0x02, 0x02, 0, 0, 0xfd, 0xe8, 0, 1]);
        assert_eq!(c.to_string(), "0x02020000fde80001");
        assert_eq!(c.to_string().parse::<ExtendedCommunity>().unwrap(), c);
        assert!("rt:65000:100".parse::<ExtendedCommunity>().unwrap().is_transitive());
        assert!(!"0x4302000000000001"
            .parse::<ExtendedCommunity>()
            .unwrap()
            .is_transitive());
        for bad in ["rt:x:1", "rt:10.0.0.1:70000", "0x12", "xx:1:2"] {
            assert!(bad.parse::<ExtendedCommunity>().is_err(), "{bad}");
        }
        for s in ["rt:[fd00::1]:100", "0x4002fd000000000000000000000000000001000a"] {
            let c: Ipv6ExtendedCommunity = s.parse().unwrap();
            assert_eq!(c.to_string(), s, "{s}");
        }
    }
}
