//! NLRI prefixes (RFC 4271 section 4.3: a length in bits, then only the bytes that
//! length needs) and the AFI/SAFI pairs that name the address family they belong to.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, BytesMut};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::reader::Reader;

/// An address family as negotiated in capabilities and carried in MP_REACH_NLRI.
/// Kept as raw numbers so families we do not speak still round-trip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AfiSafi {
    pub afi: u16,
    pub safi: u8,
}

impl AfiSafi {
    pub const IPV4_UNICAST: AfiSafi = AfiSafi::new(1, 1);
    pub const IPV6_UNICAST: AfiSafi = AfiSafi::new(2, 1);

    pub const fn new(afi: u16, safi: u8) -> Self {
        AfiSafi { afi, safi }
    }

    /// The unicast family a prefix belongs to.
    pub fn unicast_of(prefix: &IpNet) -> Self {
        match prefix {
            IpNet::V4(_) => AfiSafi::IPV4_UNICAST,
            IpNet::V6(_) => AfiSafi::IPV6_UNICAST,
        }
    }
}

impl fmt::Display for AfiSafi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            AfiSafi::IPV4_UNICAST => f.write_str("ipv4-unicast"),
            AfiSafi::IPV6_UNICAST => f.write_str("ipv6-unicast"),
            AfiSafi { afi, safi } => write!(f, "afi {afi} safi {safi}"),
        }
    }
}

/// Why a prefix in an NLRI field could not be read. Either one makes the whole
/// field unparsable, which RFC 7606 section 5.3 answers with a session reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    #[error("prefix length {length} exceeds {max}")]
    TooLong { length: u8, max: u8 },
    #[error("prefix of length {length} needs {needed} bytes, only {available} left")]
    Truncated {
        length: u8,
        needed: usize,
        available: usize,
    },
}

/// Reads one prefix of the family given by `v6`. Bits past the prefix length are
/// cleared: RFC 4271 calls them irrelevant, and keeping them would make
/// 10.0.0.1/24 and 10.0.0.0/24 two different routes.
fn decode_prefix(r: &mut Reader<'_>, v6: bool) -> Result<IpNet, PrefixError> {
    let max = if v6 { 128 } else { 32 };
    let length = r.u8().ok_or(PrefixError::Truncated {
        length: 0,
        needed: 1,
        available: 0,
    })?;
    if length > max {
        return Err(PrefixError::TooLong { length, max });
    }
    let needed = usize::from(length).div_ceil(8);
    let available = r.remaining();
    let bytes = r.take(needed).ok_or(PrefixError::Truncated {
        length,
        needed,
        available,
    })?;
    let mut addr = [0u8; 16];
    addr[..needed].copy_from_slice(bytes);
    let net = if v6 {
        IpNet::V6(Ipv6Net::new(Ipv6Addr::from(addr), length).expect("length checked"))
    } else {
        let v4: [u8; 4] = addr[..4].try_into().expect("4 bytes");
        IpNet::V4(Ipv4Net::new(Ipv4Addr::from(v4), length).expect("length checked"))
    };
    Ok(net.trunc())
}

/// Reads a whole NLRI field (or withdrawn routes field) of one family.
pub(crate) fn decode_prefixes(buf: &[u8], v6: bool) -> Result<Vec<IpNet>, PrefixError> {
    let mut r = Reader::new(buf);
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(decode_prefix(&mut r, v6)?);
    }
    Ok(out)
}

/// Reads the classic IPv4 NLRI or withdrawn routes field.
pub(crate) fn decode_ipv4_prefixes(buf: &[u8]) -> Result<Vec<Ipv4Net>, PrefixError> {
    Ok(decode_prefixes(buf, false)?
        .into_iter()
        .map(|net| match net {
            IpNet::V4(net) => net,
            IpNet::V6(_) => unreachable!("decoded as IPv4"),
        })
        .collect())
}

/// Bytes `prefix` takes on the wire.
pub(crate) fn encoded_len(prefix: &IpNet) -> usize {
    1 + usize::from(prefix.prefix_len()).div_ceil(8)
}

pub(crate) fn encode_prefix(prefix: &IpNet, out: &mut BytesMut) {
    let len = prefix.prefix_len();
    let n = usize::from(len).div_ceil(8);
    out.put_u8(len);
    // Host bits are masked so what we send is what the peer will store.
    match prefix.trunc() {
        IpNet::V4(net) => out.put_slice(&net.addr().octets()[..n]),
        IpNet::V6(net) => out.put_slice(&net.addr().octets()[..n]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn prefixes_both_directions() {
        let cases: &[(&[u8], &str, bool)] = &[
            (&[0], "0.0.0.0/0", false),
            (&[8, 10], "10.0.0.0/8", false),
            (&[26, 10, 244, 1, 64], "10.244.1.64/26", false),
            (&[32, 192, 0, 2, 1], "192.0.2.1/32", false),
            (&[0], "::/0", true),
            (&[48, 0x20, 0x01, 0x0d, 0xb8, 0, 1], "2001:db8:1::/48", true),
            (
                &[122, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40],
                "fd00::40/122",
                true,
            ),
        ];
        for (bytes, text, v6) in cases {
            assert_eq!(decode_prefixes(bytes, *v6).unwrap(), vec![net(text)]);
            let mut out = BytesMut::new();
            encode_prefix(&net(text), &mut out);
            assert_eq!(&out[..], *bytes, "{text}");
            assert_eq!(encoded_len(&net(text)), bytes.len());
        }
    }

    #[test]
    fn host_bits_are_cleared() {
        assert_eq!(
            decode_prefixes(&[20, 10, 0, 0xff], false).unwrap(),
            vec![net("10.0.240.0/20")]
        );
        // Trailing bits inside the last byte are masked as well.
        assert_eq!(
            decode_prefixes(&[25, 10, 0, 0, 0xff], false).unwrap(),
            vec![net("10.0.0.128/25")]
        );
        let mut out = BytesMut::new();
        encode_prefix(&net("10.1.2.3/16"), &mut out);
        assert_eq!(&out[..], &[16, 10, 1]);
    }

    #[test]
    fn malformed_prefixes() {
        assert_eq!(
            decode_prefixes(&[33, 1, 2, 3, 4, 5], false),
            Err(PrefixError::TooLong { length: 33, max: 32 })
        );
        assert_eq!(
            decode_prefixes(&[129], true),
            Err(PrefixError::TooLong { length: 129, max: 128 })
        );
        assert_eq!(
            decode_prefixes(&[24, 10, 0], false),
            Err(PrefixError::Truncated {
                length: 24,
                needed: 3,
                available: 2
            })
        );
    }
}
