//! The text forms of wire values, as operators read them and as the API and the
//! replay files write them: AS paths (`65001 65002 {1,2}`), communities (`65000:100`),
//! next hops (`fd00::2 (fe80::2)`), families (`ipv4-unicast`), origins (`igp`).
//! Each parses back what it prints, so JSON built from them reads back exactly.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::attribute::{AsPath, AsSegment, Community, LargeCommunity, NextHop, Origin, RawAttribute};
use super::codes::SessionCaps;
use super::ext_community::{ExtendedCommunity, Ipv6ExtendedCommunity};
use super::prefix::AfiSafi;
use super::text_error::bad;
pub use super::text_error::TextError;

impl FromStr for AsPath {
    type Err = TextError;

    /// The form `Display` prints: sequences as numbers, `{…}` a set, `(…)` a
    /// confederation sequence, `[…]` a confederation set.
    fn from_str(s: &str) -> Result<Self, TextError> {
        let err = |why| bad("AS path", s, why);
        let mut segments = Vec::new();
        let mut sequence: Vec<u32> = Vec::new();
        let mut rest = s.trim();
        while !rest.is_empty() {
            let open = rest.chars().next().expect("not empty");
            if let Some(close) = match open {
                '{' => Some('}'),
                '(' => Some(')'),
                '[' => Some(']'),
                _ => None,
            } {
                let end = rest.find(close).ok_or_else(|| err("unclosed bracket"))?;
                let asns = rest[1..end]
                    .split([',', ' '])
                    .filter(|a| !a.is_empty())
                    .map(u32::from_str)
                    .collect::<Result<Vec<u32>, _>>()
                    .map_err(|_| err("not an AS number"))?;
                if asns.is_empty() {
                    return Err(err("empty segment"));
                }
                if !sequence.is_empty() {
                    segments.push(AsSegment::Sequence(std::mem::take(&mut sequence)));
                }
                segments.push(match open {
                    '{' => AsSegment::Set(asns),
                    '(' => AsSegment::ConfedSequence(asns),
                    _ => AsSegment::ConfedSet(asns),
                });
                rest = rest[end + 1..].trim_start();
            } else {
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                sequence.push(rest[..end].parse().map_err(|_| err("not an AS number"))?);
                rest = rest[end..].trim_start();
            }
        }
        if !sequence.is_empty() {
            segments.push(AsSegment::Sequence(sequence));
        }
        Ok(AsPath { segments })
    }
}

impl FromStr for Community {
    type Err = TextError;

    fn from_str(s: &str) -> Result<Self, TextError> {
        let (asn, value) = s
            .split_once(':')
            .ok_or_else(|| bad("community", s, "expected AS:VALUE"))?;
        let asn: u16 = asn
            .parse()
            .map_err(|_| bad("community", s, "AS is not a 16-bit number"))?;
        let value: u16 = value
            .parse()
            .map_err(|_| bad("community", s, "value is not a 16-bit number"))?;
        Ok(Community::new(asn, value))
    }
}

impl FromStr for LargeCommunity {
    type Err = TextError;

    fn from_str(s: &str) -> Result<Self, TextError> {
        let parts: Vec<&str> = s.split(':').collect();
        let [global, local1, local2] = parts.as_slice() else {
            return Err(bad("large community", s, "expected GLOBAL:LOCAL1:LOCAL2"));
        };
        let word = |w: &str| {
            w.parse::<u32>()
                .map_err(|_| bad("large community", s, "each part is a 32-bit number"))
        };
        Ok(LargeCommunity {
            global: word(global)?,
            local1: word(local1)?,
            local2: word(local2)?,
        })
    }
}

impl FromStr for NextHop {
    type Err = TextError;

    /// `10.0.0.1`, `fd00::1`, or `fd00::1 (fe80::1)` with a link-local address.
    fn from_str(s: &str) -> Result<Self, TextError> {
        let err = || bad("next hop", s, "expected an address, or `GLOBAL (LINK-LOCAL)`");
        if let Some((global, ll)) = s.split_once(' ') {
            let ll = ll.trim().trim_start_matches('(').trim_end_matches(')');
            return Ok(NextHop::V6 {
                global: global.parse::<Ipv6Addr>().map_err(|_| err())?,
                link_local: Some(ll.parse::<Ipv6Addr>().map_err(|_| err())?),
            });
        }
        if let Ok(v4) = s.parse::<Ipv4Addr>() {
            return Ok(NextHop::V4(v4));
        }
        Ok(NextHop::V6 {
            global: s.parse().map_err(|_| err())?,
            link_local: None,
        })
    }
}

impl FromStr for AfiSafi {
    type Err = TextError;

    fn from_str(s: &str) -> Result<Self, TextError> {
        match s {
            "ipv4-unicast" => Ok(AfiSafi::IPV4_UNICAST),
            "ipv6-unicast" => Ok(AfiSafi::IPV6_UNICAST),
            _ => {
                let err = || bad("family", s, "expected ipv4-unicast, ipv6-unicast or `afi N safi M`");
                let words: Vec<&str> = s.split_whitespace().collect();
                match words.as_slice() {
                    ["afi", afi, "safi", safi] => Ok(AfiSafi::new(
                        afi.parse().map_err(|_| err())?,
                        safi.parse().map_err(|_| err())?,
                    )),
                    _ => Err(err()),
                }
            }
        }
    }
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Igp => "igp",
            Origin::Egp => "egp",
            Origin::Incomplete => "incomplete",
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Origin {
    type Err = TextError;

    fn from_str(s: &str) -> Result<Self, TextError> {
        match s {
            "igp" => Ok(Origin::Igp),
            "egp" => Ok(Origin::Egp),
            "incomplete" => Ok(Origin::Incomplete),
            _ => Err(bad("origin", s, "expected igp, egp or incomplete")),
        }
    }
}

/// Serialize with `Display`, deserialize with `FromStr` (here and in `config`).
macro_rules! serde_as_text {
    ($($t:ty),*) => {$(
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                // Parsed while the parser is at the value, so that an error names
                // the field and its line.
                struct Text;
                impl serde::de::Visitor<'_> for Text {
                    type Value = $t;

                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("a string")
                    }

                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$t, E> {
                        v.parse().map_err(E::custom)
                    }
                }
                d.deserialize_str(Text)
            }
        }
    )*};
}
pub(crate) use serde_as_text;

serde_as_text!(
    AsPath,
    Community,
    LargeCommunity,
    ExtendedCommunity,
    Ipv6ExtendedCommunity,
    NextHop,
    AfiSafi,
    Origin
);

/// An attribute we do not interpret: its flags, type code and value in hex.
#[derive(Serialize, Deserialize)]
struct RawText {
    flags: u8,
    #[serde(rename = "type")]
    type_code: u8,
    value: String,
}

impl Serialize for RawAttribute {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        RawText {
            flags: self.flags,
            type_code: self.type_code,
            value: self.value.iter().map(|b| format!("{b:02x}")).collect(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for RawAttribute {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawText::deserialize(d)?;
        if raw.value.len() % 2 != 0 {
            return Err(D::Error::custom("attribute value: an odd number of hex digits"));
        }
        let value = (0..raw.value.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&raw.value[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| D::Error::custom("attribute value: not hex"))?;
        Ok(RawAttribute {
            flags: raw.flags,
            type_code: raw.type_code,
            value,
        })
    }
}

impl Serialize for SessionCaps {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Caps {
            four_octet_as: bool,
        }
        Caps {
            four_octet_as: self.four_octet_as,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for SessionCaps {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Caps {
            #[serde(default)]
            four_octet_as: bool,
        }
        let c = Caps::deserialize(d)?;
        Ok(SessionCaps {
            four_octet_as: c.four_octet_as,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::PathAttributes;

    #[test]
    fn text_forms_read_back_what_they_print() {
        for path in ["", "65001", "65001 65002 {1,2} 7", "(64512 64513) [1,2] 65000"] {
            let p: AsPath = path.parse().unwrap();
            assert_eq!(p.to_string(), path);
        }
        assert_eq!(
            "65000 {1,2}".parse::<AsPath>().unwrap().segments,
            vec![AsSegment::Sequence(vec![65000]), AsSegment::Set(vec![1, 2])]
        );
        assert!("65000 {1".parse::<AsPath>().is_err());
        assert!("x".parse::<AsPath>().is_err());
        for nh in ["10.0.0.1", "fd00::1", "fd00::1 (fe80::1)"] {
            assert_eq!(nh.parse::<NextHop>().unwrap().to_string(), nh);
        }
        assert_eq!("65535:0".parse::<Community>().unwrap(), Community::GRACEFUL_SHUTDOWN);
        assert!("65536:0".parse::<Community>().is_err());
        for f in ["ipv4-unicast", "ipv6-unicast", "afi 25 safi 70"] {
            assert_eq!(f.parse::<AfiSafi>().unwrap().to_string(), f);
        }
    }

    #[test]
    fn path_attributes_round_trip_through_json() {
        let attrs = PathAttributes {
            origin: Some(Origin::Incomplete),
            as_path: Some("65001 {7,8}".parse().unwrap()),
            med: Some(5),
            communities: vec![Community::new(65000, 100)],
            originator_id: Some("10.0.0.9".parse().unwrap()),
            cluster_list: vec!["10.0.0.1".parse().unwrap()],
            unknown: vec![RawAttribute {
                flags: 0xc0,
                type_code: 99,
                value: vec![0xde, 0xad],
            }],
            ..Default::default()
        };
        let json = serde_json::to_value(&attrs).unwrap();
        assert_eq!(json["as_path"], "65001 {7,8}");
        assert_eq!(json["unknown"][0]["value"], "dead");
        assert!(
            json.get("local_pref").is_none(),
            "absent attributes are left out: {json}"
        );
        let back: PathAttributes = serde_json::from_value(json).unwrap();
        assert_eq!(back, attrs);
    }
}
