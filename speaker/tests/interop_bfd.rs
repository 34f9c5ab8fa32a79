//! BFD (RFC 5880/5881) against FRR's bfdd and BIRD's BFD protocol in network
//! namespaces: the sessions come up (over IPv4 and IPv6 with BIRD); a peer frozen
//! with SIGSTOP, which closes nothing, is detected within the detection time
//! (300 ms x 3) plus a small margin, its BGP session ends with Cease/BFD Down
//! and its routes leave our FIB in under a second; after SIGCONT everything comes
//! back. Without BFD the same freeze would hold the routes for the hold time.

mod common;

use std::time::{Duration, Instant};

use common::{timing, Frr, Lab, PEER_AS, PROTO, SPEAKER_AS};
use serde_json::Value;

/// The speaker with BFD on its peers (default timers) and graceful restart off.
fn config(lab: &Lab, peers: &[&str]) -> std::path::PathBuf {
    let mut text = format!(
        "asNumber: {SPEAKER_AS}\nrouterID: 10.0.0.1\npools: [10.244.0.0/16, \"fd00:244::/32\"]\napiSocket: {}\n\
         gracefulRestart: {{enabled: false}}\npeers:\n",
        lab.path("speaker.sock").display()
    );
    for p in peers {
        text.push_str(&format!(
            "  - peerIP: \"{p}\"\n    asNumber: {PEER_AS}\n    holdTime: 9\n    connectRetryTime: 1\n    bfd: {{}}\n"
        ));
    }
    lab.write("speaker.yaml", &text)
}

fn peer_bfd(lab: &Lab, addr: &str) -> Value {
    lab.speaker_peer(addr)["bfd"].clone()
}

/// Waits for BGP Established and BFD up with `addr`.
fn wait_up(lab: &Lab, addr: &str, within: Duration, diag: impl Fn() -> String) {
    lab.wait(
        &format!("BGP Established and BFD up with {addr}"),
        within,
        || {
            let p = lab.speaker_peer(addr);
            (p["state"] == "Established" && p["bfd"]["state"] == "up").then_some(())
        },
        diag,
    );
}

/// Freezes the peer's processes `names`, times the loss of `prefix` from our
/// FIB, checks how the speaker says it, thaws the peer and waits for it all to
/// come back.
fn freeze_and_thaw(lab: &Lab, names: &[&str], peer: &str, prefix: &str, diag: impl Fn() -> String) {
    let a = lab.a.clone();
    let before = peer_bfd(lab, peer);
    let transitions = before["transitions"].as_u64().unwrap_or(0);
    let detect = Duration::from_millis(before["detect_ms"].as_u64().unwrap_or(0));
    let frozen = Instant::now();
    for n in names {
        lab.signal(n, "STOP");
    }
    // Polled every few milliseconds: the figure is the point of the test.
    let gone = loop {
        if lab.route(&a, prefix, Some(PROTO)).is_none() {
            break frozen.elapsed();
        }
        assert!(
            frozen.elapsed() < Duration::from_secs(3),
            "{prefix} still in our FIB 3 s after the peer froze:\n{}",
            lab.log("speaker")
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    timing("peer frozen -> its route out of our FIB", gone);
    // The detection time counts from the peer's last packet, which came before
    // the freeze; the margin is for a loaded CI machine (measured here: 0.8-0.9 s).
    assert!(
        gone < detect + Duration::from_millis(300),
        "{prefix} left our FIB {gone:?} after the freeze, detection time {detect:?}"
    );
    let p = lab.speaker_peer(peer);
    assert_eq!(p["bfd"]["state"], "down", "{p:#}");
    assert_eq!(p["bfd"]["diag"], "control detection time expired", "{p:#}");
    assert!(p["info"].as_str().unwrap_or_default().contains("BFD down"), "{p:#}");
    assert!(
        p["warnings"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|w| w.as_str().unwrap_or_default().starts_with("BFD is configured but down")),
        "{p:#}"
    );
    assert!(
        lab.log("speaker").contains("BFD session down"),
        "the speaker's log does not say why"
    );
    let table = lab.speaker_cli("status").unwrap();
    assert!(table.contains("down (control detection time expired)"), "{table}");
    // Frozen for a while longer, then thawed.
    std::thread::sleep(Duration::from_millis(1500).saturating_sub(frozen.elapsed()));
    for n in names {
        lab.signal(n, "CONT");
    }
    wait_up(lab, peer, Duration::from_secs(20), &diag);
    lab.wait(
        &format!("{prefix} back in our FIB"),
        Duration::from_secs(5),
        || lab.route(&a, prefix, Some(PROTO)).is_some().then_some(()),
        &diag,
    );
    assert!(peer_bfd(lab, peer)["transitions"].as_u64().unwrap_or(0) > transitions);
}

#[test]
fn frr_bfdd_frozen_peer_is_detected_and_comes_back() {
    let mut lab = Lab::new("bfd-frr");
    let frr = Frr::start(
        &mut lab,
        "bfd-frr",
        &format!(
            // Every daemon reads the whole file: bfdd's section comes last, since
            // its `exit` would end bgpd's configuration mode.
            // bgpd logs the NOTIFICATION it receives on stdout (bgpd.log here).
            "frr defaults datacenter\nhostname frr\nlog stdout informational\n\
             router bgp {PEER_AS}\n bgp router-id 10.0.0.2\n no bgp network import-check\n timers bgp 3 9\n\
             \x20neighbor 10.0.0.1 remote-as {SPEAKER_AS}\n neighbor 10.0.0.1 timers connect 1\n neighbor 10.0.0.1 bfd\n\
             \x20address-family ipv4 unicast\n  network 10.244.50.0/26\n exit-address-family\nexit\n\
             bfd\n peer 10.0.0.1\n  receive-interval 300\n  transmit-interval 300\n  detect-multiplier 3\n exit\nexit\n"
        ),
    );
    let b = lab.b.clone();
    let conf = frr.conf.clone();
    let name = frr.name.clone();
    lab.spawn("bfdd", &b, &["/usr/lib/frr/bfdd", "-N", &name, "-f", &conf], &[]);
    let config = config(&lab, &["10.0.0.2"]);
    lab.start_speaker(&config);
    let diag = || {
        frr.vtysh(
            &lab,
            "-c 'show bfd peers' -c 'show bgp summary' -c 'show bgp neighbors 10.0.0.1'",
        )
    };
    wait_up(&lab, "10.0.0.2", Duration::from_secs(15), diag);
    let a = lab.a.clone();
    lab.wait(
        "FRR's block in our FIB",
        Duration::from_secs(5),
        || lab.route(&a, "10.244.50.0/26", Some(PROTO)).is_some().then_some(()),
        diag,
    );
    let bfd = peer_bfd(&lab, "10.0.0.2");
    assert_eq!(bfd["detect_ms"], 900, "{bfd:#}");
    let peers = frr.vtysh(&lab, "-c 'show bfd peers'");
    assert!(peers.contains("Status: up"), "FRR's view of the BFD session:\n{peers}");
    freeze_and_thaw(&lab, &["bfdd", "bgpd", "zebra"], "10.0.0.2", "10.244.50.0/26", diag);
    // FRR heard why: Cease subcode 10. Its log, not its last reset, which a
    // connection collision after the thaw may overwrite (seen once in CI: FRR closed
    // the new session again a second later, "No AFI/SAFI activated for peer").
    let log = lab.log("bgpd");
    assert!(
        log.contains("received from neighbor 10.0.0.1 6/10"),
        "FRR's log does not say it received Cease/BFD Down:\n{log}"
    );
}

#[test]
fn bird_bfd_frozen_peer_is_detected_over_both_families() {
    let mut lab = Lab::new("bfd-bird");
    lab.start_bird(&format!(
        r#"
router id 10.0.0.2;
log stderr all;
protocol device {{}}
protocol kernel k4 {{ ipv4 {{ import none; export none; }}; }}
protocol static s4 {{ ipv4; route 10.244.50.0/26 blackhole; }}
protocol static s6 {{ ipv6; route fd00:244:50::/64 blackhole; }}
protocol bfd {{ interface "eth1" {{ interval 300 ms; multiplier 3; }}; }}
protocol bgp spk4 {{
  local 10.0.0.2 as {PEER_AS}; neighbor 10.0.0.1 as {SPEAKER_AS};
  hold time 9; connect retry time 1; error wait time 1, 5; bfd on;
  ipv4 {{ import all; export where source = RTS_STATIC; }};
}}
protocol bgp spk6 {{
  local fd00::2 as {PEER_AS}; neighbor fd00::1 as {SPEAKER_AS};
  hold time 9; connect retry time 1; error wait time 1, 5; bfd on;
  ipv6 {{ import all; export where source = RTS_STATIC; }};
}}
"#
    ));
    // BIRD waits its `error wait time` (60 s by default) after a session ended in
    // an error before it connects again: 1 s here, as the connect retry is.
    let config = config(&lab, &["10.0.0.2", "fd00::2"]);
    lab.start_speaker(&config);
    let diag = || lab.birdc("show bfd sessions") + &lab.birdc("show protocols");
    for peer in ["10.0.0.2", "fd00::2"] {
        wait_up(&lab, peer, Duration::from_secs(15), diag);
    }
    let a = lab.a.clone();
    lab.wait(
        "BIRD's blocks in our FIB",
        Duration::from_secs(5),
        || {
            (lab.route(&a, "10.244.50.0/26", Some(PROTO)).is_some()
                && lab.route(&a, "fd00:244:50::/64", Some(PROTO)).is_some())
            .then_some(())
        },
        diag,
    );
    let sessions = lab.birdc("show bfd sessions");
    assert_eq!(
        sessions.matches(" Up ").count(),
        2,
        "BIRD's view of the BFD sessions:\n{sessions}"
    );
    freeze_and_thaw(&lab, &["bird"], "10.0.0.2", "10.244.50.0/26", diag);
    // The IPv6 session went down with the frozen BIRD too and comes back on its own
    // timers: waited for as the IPv4 one was (it was asserted at once, and CI saw it
    // still in Init).
    wait_up(&lab, "fd00::2", Duration::from_secs(20), diag);
    assert_eq!(peer_bfd(&lab, "fd00::2")["state"], "up");
}
