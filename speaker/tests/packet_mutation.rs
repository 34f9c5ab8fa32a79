//! A poor man's fuzzer that runs in CI: mutates valid messages and checks the
//! decoder neither panics nor reads a message it cannot write back the same.
//! The cargo-fuzz target in `speaker/fuzz/` does the same with coverage guidance.

use std::net::Ipv4Addr;

use ipnet::IpNet;
use speaker::packet::{
    AfiSafi, AsPath, Capability, CeaseSubcode, Community, GracefulRestart, Message, NextHop, Notification, Open,
    Origin, PathAttributes, RouteRefresh, SessionCaps, Update,
};

const CAPS: SessionCaps = SessionCaps { four_octet_as: true };

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let attrs = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::sequence([65001, 4_200_000_000])),
        local_pref: Some(100),
        med: Some(5),
        atomic_aggregate: true,
        communities: vec![Community::NO_EXPORT],
        originator_id: Some(Ipv4Addr::new(1, 1, 1, 1)),
        cluster_list: vec![Ipv4Addr::new(2, 2, 2, 2)],
        ..PathAttributes::default()
    };
    let v4: Vec<IpNet> = ["10.244.0.0/26", "10.0.0.0/8", "192.0.2.1/32"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let v6: Vec<IpNet> = ["fd00::/64", "2001:db8::/32"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let mut messages = vec![
        Message::Keepalive,
        Message::RouteRefresh(RouteRefresh {
            afi_safi: AfiSafi::IPV4_UNICAST,
            subtype: 0,
        }),
        Message::Notification(Notification::shutdown(CeaseSubcode::AdministrativeShutdown, "bye")),
        Message::Open(Open::new(
            65001,
            90,
            Ipv4Addr::new(10, 0, 0, 1),
            vec![
                Capability::Multiprotocol(AfiSafi::IPV6_UNICAST),
                Capability::RouteRefresh,
                Capability::FourOctetAs(65001),
                Capability::GracefulRestart(GracefulRestart {
                    restart_time: 120,
                    ..GracefulRestart::default()
                }),
            ],
        )),
        Message::Update(Update::end_of_rib(AfiSafi::IPV6_UNICAST)),
    ];
    let nh4 = NextHop::V4(Ipv4Addr::new(10, 0, 0, 1));
    let nh6 = NextHop::V6 {
        global: "fd00::1".parse().unwrap(),
        link_local: Some("fe80::1".parse().unwrap()),
    };
    for update in Update::announce(&CAPS, &attrs, nh4, &v4)
        .unwrap()
        .into_iter()
        .chain(Update::announce(&CAPS, &attrs, nh6, &v6).unwrap())
        .chain(Update::withdraw(&[v4, v6].concat()))
    {
        messages.push(Message::Update(update));
    }
    messages.iter().map(|m| m.to_bytes(&CAPS).unwrap()).collect()
}

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let at = 19 + rng.below(bytes.len().saturating_sub(19).max(1));
        match rng.below(5) {
            0 if at < bytes.len() => bytes[at] = rng.next() as u8,
            1 if at < bytes.len() => bytes[at] ^= 1 << rng.below(8),
            2 if at < bytes.len() => {
                bytes.remove(at);
            }
            3 => bytes.insert(at.min(bytes.len()), rng.next() as u8),
            _ => bytes.truncate(at),
        }
    }
    // Mostly keep the header length honest so the body parsers get exercised.
    if rng.below(4) != 0 && bytes.len() >= 19 {
        let len = bytes.len() as u16;
        bytes[16..18].copy_from_slice(&len.to_be_bytes());
    }
    bytes
}

fn without_errors(msg: Message) -> Message {
    match msg {
        Message::Update(mut update) => {
            update.errors.clear();
            Message::Update(update)
        }
        other => other,
    }
}

#[test]
fn mutated_messages_never_panic_and_round_trip() {
    let seeds = seeds();
    let mut rng = Rng(0x5eed_b9b0_cafe_f00d);
    let (mut decoded, mut rejected) = (0, 0);
    for _ in 0..50_000 {
        let seed = &seeds[rng.below(seeds.len())];
        let bytes = mutate(&mut rng, seed);
        for caps in [CAPS, SessionCaps::default()] {
            match Message::decode(&bytes, &caps) {
                Ok((msg, used)) => {
                    decoded += 1;
                    assert!(used <= bytes.len());
                    if caps.four_octet_as {
                        let again = msg.to_bytes(&caps).expect("re-encodes");
                        let (back, _) = Message::decode(&again, &caps).expect("re-decodes");
                        assert_eq!(without_errors(back), without_errors(msg), "input {bytes:02x?}");
                    }
                }
                Err(e) => {
                    rejected += 1;
                    // Every error but Incomplete has a NOTIFICATION to send.
                    let _ = e.notification();
                }
            }
        }
    }
    // Both paths should be well exercised, or the mutations are too tame or too wild.
    assert!(decoded > 10_000 && rejected > 10_000, "{decoded} {rejected}");
}
