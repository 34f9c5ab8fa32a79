//! `speaker routes` shows every attribute it keeps for a route, as `birdc show
//! route all` does: routes learned from a real BIRD (iBGP, with ORIGINATOR_ID and
//! CLUSTER_LIST as a reflector sends them) and a real FRR (eBGP, with AGGREGATOR
//! and ATOMIC_AGGREGATE), each with MED, communities, large communities and an
//! extended community (RFC 4360, shown as `rt:65000:100`). The prefix filter is
//! checked on the same routes.

mod common;

use std::time::Duration;

use common::{Frr, Lab, PEER_AS, PROTO, SPEAKER_AS};
use serde_json::{json, Value};

/// A v4 session to `b` of AS `peer_as`, graceful restart off.
fn config(lab: &Lab, peer_as: u32) -> std::path::PathBuf {
    lab.write(
        "speaker.yaml",
        &format!(
            "asNumber: {SPEAKER_AS}\nrouterID: 10.0.0.1\npools: [10.244.0.0/16]\napiSocket: {}\n\
             gracefulRestart: {{enabled: false}}\npeers:\n\
             - peerIP: 10.0.0.2\n  asNumber: {peer_as}\n  holdTime: 9\n  connectRetryTime: 1\n",
            lab.path("speaker.sock").display()
        ),
    )
}

/// `speaker routes [args] --json`, parsed.
fn routes_json(lab: &Lab, args: &str) -> Value {
    let out = lab
        .speaker_cli(&format!("routes {args} --json"))
        .unwrap_or_else(|e| panic!("speaker routes {args}: {e}"));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("speaker routes {args} --json: {e}: {out}"))
}

/// The attributes of the one path to `prefix`.
fn attrs_of(routes: &Value, prefix: &str) -> Value {
    let route = routes["learned"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["prefix"] == prefix)
        .unwrap_or_else(|| panic!("{prefix} not among the learned routes: {routes:#}"));
    route["paths"][0]["attrs"].clone()
}

/// Waits until both prefixes are in `a`'s kernel through us.
fn wait_learned(lab: &Lab, prefixes: &[&str], diag: impl Fn() -> String) {
    let a = lab.a.clone();
    lab.wait(
        "the peer's routes in our FIB",
        Duration::from_secs(15),
        || {
            prefixes
                .iter()
                .all(|p| lab.route(&a, p, Some(PROTO)).is_some())
                .then_some(())
        },
        diag,
    );
}

/// The prefix filter: an address shows the routes that carry it, a prefix the
/// routes inside it or covering it, and text that is neither is refused.
fn check_filter(lab: &Lab) {
    let learned = |v: &Value| -> Vec<String> {
        v["learned"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| r["prefix"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(learned(&routes_json(lab, "10.244.70.5")), ["10.244.70.0/26"]);
    assert_eq!(
        learned(&routes_json(lab, "10.244.64.0/18")),
        ["10.244.70.0/26", "10.244.80.0/26"]
    );
    assert_eq!(learned(&routes_json(lab, "10.244.80.0/26")), ["10.244.80.0/26"]);
    assert_eq!(learned(&routes_json(lab, "10.245.0.0/16")), Vec::<String>::new());
    let err = lab.speaker_cli("routes 10.244.70.0/33").unwrap_err();
    assert!(err.contains("neither a prefix"), "{err}");
    let table = lab.speaker_cli("routes 10.244.80.0/26").unwrap();
    assert!(!table.contains("10.244.70.0/26"), "{table}");
}

#[test]
fn routes_from_bird_show_every_attribute() {
    let mut lab = Lab::new("attr-bird");
    lab.start_bird(&format!(
        r#"
router id 10.0.0.2;
log stderr all;
protocol device {{}}
protocol static s4 {{ ipv4; route 10.244.70.0/26 blackhole; route 10.244.80.0/26 blackhole; }}
filter attrs_out {{
  if net = 10.244.70.0/26 then {{
    bgp_origin = ORIGIN_INCOMPLETE;
    bgp_med = 42;
    bgp_local_pref = 250;
    bgp_community.add((65000, 7));
    bgp_community.add((65535, 65281));
    bgp_large_community.add((65000, 1, 2));
    bgp_ext_community.add((rt, 65000, 100));
    bgp_originator_id = 10.0.0.9;
    bgp_cluster_list.add(10.0.0.77);
  }}
  accept;
}}
protocol bgp spk4 {{
  local 10.0.0.2 as {SPEAKER_AS}; neighbor 10.0.0.1 as {SPEAKER_AS};
  hold time 9; connect retry time 1;
  ipv4 {{ import all; export filter attrs_out; next hop self; }};
}}
"#
    ));
    let config = config(&lab, SPEAKER_AS);
    lab.start_speaker(&config);
    wait_learned(&lab, &["10.244.70.0/26", "10.244.80.0/26"], || {
        lab.birdc("show route all export spk4")
    });
    let routes = routes_json(&lab, "");
    let attrs = attrs_of(&routes, "10.244.70.0/26");
    let expected = json!({
        "origin": "incomplete",
        "as_path": "",
        "med": 42,
        "local_pref": 250,
        "communities": ["65000:7", "65535:65281"],
        "large_communities": ["65000:1:2"],
        "originator_id": "10.0.0.9",
        "cluster_list": ["10.0.0.77"],
        "extended_communities": ["rt:65000:100"],
    });
    assert_eq!(attrs, expected, "BIRD's route as the speaker shows it:\n{routes:#}");
    let table = lab.speaker_cli("routes").unwrap();
    for shown in [
        "origin incomplete",
        "med 42",
        "local-pref 250",
        "communities 65000:7 65535:65281",
        "large-communities 65000:1:2",
        "cluster-list 10.0.0.77",
        "originator 10.0.0.9",
        "ext-communities rt:65000:100",
    ] {
        assert!(table.contains(shown), "`{shown}` missing from the table:\n{table}");
    }
    check_filter(&lab);
}

#[test]
fn routes_from_frr_show_every_attribute() {
    let mut lab = Lab::new("attr-frr");
    let frr = Frr::start(
        &mut lab,
        "attr-frr",
        &format!(
            "frr defaults datacenter\nhostname frr\n\
             ip prefix-list attrs seq 5 permit 10.244.70.0/26\n\
             route-map out permit 10\n match ip address prefix-list attrs\n set origin egp\n set metric 42\n\
             \x20set community 65000:7 no-export\n set large-community 65000:1:2 65000:3:4\n\
             \x20set extcommunity rt 65000:100\n set aggregator as 65010 10.0.0.9\n set atomic-aggregate\n\
             route-map out permit 20\n\
             router bgp {PEER_AS}\n bgp router-id 10.0.0.2\n no bgp network import-check\n timers bgp 3 9\n\
             \x20neighbor 10.0.0.1 remote-as {SPEAKER_AS}\n neighbor 10.0.0.1 timers connect 1\n\
             \x20address-family ipv4 unicast\n  network 10.244.70.0/26\n  network 10.244.80.0/26\n\
             \x20 neighbor 10.0.0.1 route-map out out\n exit-address-family\n"
        ),
    );
    let config = config(&lab, PEER_AS);
    lab.start_speaker(&config);
    wait_learned(&lab, &["10.244.70.0/26", "10.244.80.0/26"], || {
        frr.vtysh(
            &lab,
            "-c 'show bgp summary' -c 'show bgp ipv4 unicast neighbors 10.0.0.1 advertised-routes'",
        )
    });
    let routes = routes_json(&lab, "");
    let attrs = attrs_of(&routes, "10.244.70.0/26");
    let expected = json!({
        "origin": "egp",
        "as_path": PEER_AS.to_string(),
        "med": 42,
        "atomic_aggregate": true,
        "aggregator": {"asn": 65010, "address": "10.0.0.9"},
        "communities": ["65000:7", "65535:65281"],
        "large_communities": ["65000:1:2", "65000:3:4"],
        "extended_communities": ["rt:65000:100"],
    });
    assert_eq!(attrs, expected, "FRR's route as the speaker shows it:\n{routes:#}");
    let plain = attrs_of(&routes, "10.244.80.0/26");
    assert_eq!(
        plain,
        json!({"origin": "igp", "as_path": PEER_AS.to_string(), "med": 0})
    );
    let table = lab.speaker_cli("routes").unwrap();
    for shown in [
        "origin egp",
        "atomic-aggregate",
        "aggregator 65010 10.0.0.9",
        "large-communities 65000:1:2 65000:3:4",
        "ext-communities rt:65000:100",
    ] {
        assert!(table.contains(shown), "`{shown}` missing from the table:\n{table}");
    }
    check_filter(&lab);
}
