//! The speaker under faults, against real FRR and BIRD in network namespaces:
//! its own routes reflected back by a route reflector while its block is released
//! and allocated again (RT-09, WD-06), a link flapped under a surviving session
//! (RB-06), a pod's route on a prefix a peer also advertises (RT-08), a peer that
//! restarts without closing its connection (SES-08), and GTSM on the first
//! segment of an accepted connection. After each, every FIB is checked exact:
//! nothing missing, nothing stale, nothing of another owner touched.

mod common;

use std::time::{Duration, Instant};

use common::{run, timing, Frr, Lab, RouteWatch, PEER_AS, PROTO, SPEAKER_AS};
use serde_json::Value;

/// The node `a`: a block with two pods inside it, on cali interfaces.
fn node_with_pods(lab: &Lab) {
    let a = &lab.a;
    run(&format!("ip -n {a} route add blackhole 10.244.1.0/26")).unwrap();
    lab.pod_route(a, "cali0000000001", "10.244.1.1");
    lab.pod_route(a, "cali0000000002", "10.244.1.2");
}

/// An iBGP session (v4) to `b`, graceful restart off.
fn ibgp_client_config(lab: &Lab) -> std::path::PathBuf {
    lab.write(
        "speaker.yaml",
        &format!(
            "asNumber: {SPEAKER_AS}\nrouterID: 10.0.0.1\npools: [10.244.0.0/16]\napiSocket: {}\n\
             gracefulRestart: {{enabled: false}}\npeers:\n\
             - peerIP: 10.0.0.2\n  asNumber: {SPEAKER_AS}\n  holdTime: 9\n  connectRetryTime: 1\n",
            lab.path("speaker.sock").display()
        ),
    )
}

/// Releases the node's block, waits 2 s, allocates it again; after each change
/// every FIB must be exact within 1 s, and the pods' own routes must stay theirs
/// throughout. `peer_has`: whether `b`'s kernel holds a prefix through us.
fn release_and_allocate_again(lab: &Lab, peer_has: &dyn Fn(&str) -> bool) {
    let a = lab.a.clone();
    let own = [("10.244.60.0/26", "10.0.0.2")];
    let watches: Vec<RouteWatch> = ["10.244.1.1/32", "10.244.1.2/32"]
        .iter()
        .map(|p| RouteWatch::start(&a, p, None))
        .collect();
    run(&format!("ip -n {a} route del blackhole 10.244.1.0/26")).unwrap();
    lab.wait(
        "the pods' /32s advertised to the peer, the block withdrawn",
        Duration::from_secs(1),
        || (peer_has("10.244.1.1/32") && peer_has("10.244.1.2/32") && !peer_has("10.244.1.0/26")).then_some(()),
        || lab.speaker_cli("routes").unwrap_or_else(|e| e),
    );
    lab.wait_own_routes(&a, &own, Duration::from_secs(1));
    std::thread::sleep(Duration::from_secs(2));
    lab.wait_own_routes(&a, &own, Duration::from_secs(1));
    run(&format!("ip -n {a} route add blackhole 10.244.1.0/26")).unwrap();
    let (_, t) = lab.wait(
        "the block advertised again, the /32s withdrawn",
        Duration::from_secs(1),
        || (peer_has("10.244.1.0/26") && !peer_has("10.244.1.1/32") && !peer_has("10.244.1.2/32")).then_some(()),
        || lab.speaker_cli("routes").unwrap_or_else(|e| e),
    );
    timing("block allocated again -> peer's FIB exact", t);
    // Anything the reflector sends back has had time to arrive and be ignored.
    std::thread::sleep(Duration::from_millis(500));
    lab.wait_own_routes(&a, &own, Duration::from_secs(1));
    for w in watches {
        w.assert_never_missing(|| lab.log("speaker"));
    }
    for ip in ["10.244.1.1", "10.244.1.2"] {
        let (proto, dev) = lab.pod_route_owner(&a, ip).expect("pod route");
        assert!(
            proto != PROTO && dev.starts_with("cali"),
            "the pod route to {ip} is no longer the pod's own: proto {proto}, dev {dev}"
        );
    }
}

/// RT-09 and WD-06 behind FRR as route reflector: FRR reflects a client's routes
/// to the client itself, with the client's router ID as ORIGINATOR_ID.
#[test]
fn rr_client_of_frr_ignores_its_own_routes_while_its_block_comes_and_goes() {
    let mut lab = Lab::new("flt-frr-rr");
    node_with_pods(&lab);
    let frr = Frr::start(
        &mut lab,
        "flt-frr-rr",
        &format!(
            "frr defaults datacenter\nhostname rr\nrouter bgp {SPEAKER_AS}\n bgp router-id 10.0.0.2\n\
             no bgp network import-check\n timers bgp 3 9\n bgp cluster-id 10.0.0.2\n\
             neighbor 10.0.0.1 remote-as {SPEAKER_AS}\n neighbor 10.0.0.1 timers connect 1\n\
             address-family ipv4 unicast\n  network 10.244.60.0/26\n  neighbor 10.0.0.1 route-reflector-client\n\
             exit-address-family\n"
        ),
    );
    let config = ibgp_client_config(&lab);
    lab.start_speaker(&config);
    let a = lab.a.clone();
    lab.wait(
        "FRR Established and its block in our FIB",
        Duration::from_secs(10),
        || {
            (frr.peer_state(&lab, "10.0.0.1") == "Established"
                && lab.route(&a, "10.244.60.0/26", Some(PROTO)).is_some())
            .then_some(())
        },
        || frr.vtysh(&lab, "-c 'show bgp summary'"),
    );
    let b = lab.b.clone();
    release_and_allocate_again(&lab, &|p| lab.route(&b, p, Some("bgp")).is_some());
    let routes = lab.speaker_cli("routes --json").unwrap_or_default();
    eprintln!(
        "FRR reflected our own routes back: {}",
        routes.contains("ORIGINATOR_ID is ours")
    );
}

/// The same behind BIRD as route reflector.
#[test]
fn rr_client_of_bird_keeps_its_fib_exact_while_its_block_comes_and_goes() {
    let mut lab = Lab::new("flt-bird-rr");
    node_with_pods(&lab);
    lab.start_bird(&format!(
        r#"
router id 10.0.0.2;
log stderr all;
protocol device {{}}
protocol kernel k4 {{ ipv4 {{ import none; export where source = RTS_BGP; }}; }}
protocol static s4 {{ ipv4; route 10.244.60.0/26 blackhole; }}
protocol bgp node1 {{
  local 10.0.0.2 as {SPEAKER_AS}; neighbor 10.0.0.1 as {SPEAKER_AS};
  rr client; rr cluster id 10.0.0.2;
  hold time 9; connect retry time 1;
  ipv4 {{ import all; export all; }};
}}
"#
    ));
    let config = ibgp_client_config(&lab);
    lab.start_speaker(&config);
    let a = lab.a.clone();
    lab.wait(
        "BIRD Established and its block in our FIB",
        Duration::from_secs(10),
        || (lab.bird_established("node1") && lab.route(&a, "10.244.60.0/26", Some(PROTO)).is_some()).then_some(()),
        || lab.birdc("show protocols all node1"),
    );
    let b = lab.b.clone();
    release_and_allocate_again(&lab, &|p| lab.route(&b, p, Some("bird")).is_some());
}

const BIRD_EBGP: &str = r#"
router id 10.0.0.2;
log stderr all;
protocol device {}
protocol kernel k4 { ipv4 { import none; export where source = RTS_BGP; }; }
protocol static s4 { ipv4; route 10.244.50.0/26 blackhole; route 10.244.1.5/32 blackhole; }
protocol bgp spk4 {
  local 10.0.0.2 as 65000; neighbor 10.0.0.1 as 64512;
  hold time 9; connect retry time 1;
  # A direct eBGP session of BIRD ends when its link loses carrier, and a veth
  # cut at our end takes the carrier of BIRD's end too: RB-06 wants a peer that
  # stays, as it does behind a switch.
  check link off;
  ipv4 { import all; export where source = RTS_STATIC; };
}
"#;

fn ebgp_v4_config(lab: &Lab, hold: u16, globals: &str) -> std::path::PathBuf {
    lab.write(
        "speaker.yaml",
        &format!(
            "asNumber: {SPEAKER_AS}\nrouterID: 10.0.0.1\npools: [10.244.0.0/16]\napiSocket: {}\n{globals}\npeers:\n\
             - peerIP: 10.0.0.2\n  asNumber: {PEER_AS}\n  holdTime: {hold}\n  connectRetryTime: 1\n",
            lab.path("speaker.sock").display()
        ),
    )
}

/// The speaker's FIB state for `prefix`, as `speaker routes --json` says it.
fn fib_state(lab: &Lab, prefix: &str) -> String {
    let routes: Value = lab
        .speaker_cli("routes --json")
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null);
    routes["learned"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["prefix"] == prefix)
        .and_then(|r| r["fib"].as_str().map(String::from))
        .unwrap_or_default()
}

/// RB-06: eth1 down for 3 s under a session that survives it (hold 9 s). The
/// kernel flushes the routes through eth1 without telling anyone; they must be
/// back within 2 s of the link's return, and the speaker must never call a route
/// installed that the kernel lacks.
#[test]
fn link_flap_under_a_surviving_session_puts_the_routes_back() {
    let mut lab = Lab::new("flt-flap");
    lab.start_bird(BIRD_EBGP);
    let config = ebgp_v4_config(&lab, 9, "gracefulRestart: {enabled: false}");
    lab.start_speaker(&config);
    let a = lab.a.clone();
    let own = [("10.244.1.5/32", "10.0.0.2"), ("10.244.50.0/26", "10.0.0.2")];
    lab.wait(
        "BIRD Established",
        Duration::from_secs(10),
        || lab.bird_established("spk4").then_some(()),
        || lab.birdc("show protocols all spk4"),
    );
    lab.wait_own_routes(&a, &own, Duration::from_secs(5));
    let transitions = lab.speaker_peer("10.0.0.2")["transitions"].as_u64();

    run(&format!("ip -n {a} link set eth1 down")).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        lab.own_routes(&a).is_empty(),
        "the kernel kept routes through a downed link"
    );
    for (prefix, _) in own {
        let state = fib_state(&lab, prefix);
        assert_ne!(
            state, "installed",
            "{prefix} called installed while the kernel lacks it"
        );
    }
    std::thread::sleep(Duration::from_secs(2));
    run(&format!("ip -n {a} link set eth1 up")).unwrap();
    let t = lab.wait_own_routes(&a, &own, Duration::from_secs(2));
    timing("link up -> FIB exact again", t);
    lab.wait(
        "the speaker calls both routes installed",
        Duration::from_secs(1),
        || own.iter().all(|(p, _)| fib_state(&lab, p) == "installed").then_some(()),
        || lab.speaker_cli("routes").unwrap_or_else(|e| e),
    );
    // What the peer sent while the link was down (a NOTIFICATION, a FIN) comes
    // with TCP's next retransmission, up to a few seconds after the link's return.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        lab.speaker_peer("10.0.0.2")["transitions"].as_u64(),
        transitions,
        "the session did not survive the flap"
    );
}

/// RT-08: a pod's own /32 inside the node's block, and the same /32 learned from
/// a peer. The pod's route is left alone, the status and metrics say why ours is
/// not installed, and ours goes in once the pod's route is gone.
#[test]
fn a_pod_route_on_a_learned_prefix_is_left_alone() {
    let mut lab = Lab::new("flt-held");
    let a = lab.a.clone();
    run(&format!("ip -n {a} route add blackhole 10.244.1.0/26")).unwrap();
    lab.pod_route(&a, "cali0000000005", "10.244.1.5");
    lab.start_bird(BIRD_EBGP);
    let config = ebgp_v4_config(&lab, 9, "gracefulRestart: {enabled: false}");
    lab.start_speaker(&config);
    lab.wait_own_routes(&a, &[("10.244.50.0/26", "10.0.0.2")], Duration::from_secs(10));
    lab.wait(
        "the speaker says another owner holds 10.244.1.5/32",
        Duration::from_secs(2),
        || fib_state(&lab, "10.244.1.5/32").contains("another owner").then_some(()),
        || lab.speaker_cli("routes").unwrap_or_else(|e| e),
    );
    assert_eq!(
        lab.speaker_status()["fib"]["held_by_other"],
        1,
        "{}",
        lab.speaker_status()
    );
    let (proto, dev) = lab.pod_route_owner(&a, "10.244.1.5").expect("the pod's route");
    assert!(
        proto != PROTO && dev == "cali0000000005",
        "pod route changed: {proto} {dev}"
    );
    run(&format!("ip -n {a} route del 10.244.1.5/32 dev cali0000000005")).unwrap();
    let t = lab.wait_own_routes(
        &a,
        &[("10.244.1.5/32", "10.0.0.2"), ("10.244.50.0/26", "10.0.0.2")],
        Duration::from_secs(1),
    );
    timing("pod route gone -> the learned /32 installed", t);
}

/// SES-08: BIRD is killed with its connection to us cut off (its FIN never
/// arrives) and started again: its new connection and OPEN end the old session at
/// once (RFC 4724 4.2), with graceful restart keeping its routes meanwhile; the
/// hold time (90 s) is not waited for.
#[test]
fn a_peer_restarting_without_closing_is_up_again_at_once() {
    let mut lab = Lab::new("flt-restart");
    let bird = BIRD_EBGP
        .replace("hold time 9;", "hold time 90; graceful restart on;")
        .replace(" route 10.244.1.5/32 blackhole;", "");
    lab.start_bird(&bird);
    let config = ebgp_v4_config(&lab, 90, "gracefulRestart: {enabled: true, restartTime: 120}");
    lab.start_speaker(&config);
    let (a, b) = (lab.a.clone(), lab.b.clone());
    lab.wait(
        "BIRD Established",
        Duration::from_secs(10),
        || lab.bird_established("spk4").then_some(()),
        || lab.birdc("show protocols all spk4"),
    );
    lab.wait_own_routes(&a, &[("10.244.50.0/26", "10.0.0.2")], Duration::from_secs(5));
    // The session's connection, from BIRD's side: cut it off in both directions.
    let ss = run(&format!(
        "ip netns exec {b} ss -tnH state established '( sport = :179 or dport = :179 )'"
    ))
    .unwrap();
    let fields: Vec<&str> = ss.split_whitespace().collect();
    let port = |addr: &str| addr.rsplit(':').next().unwrap_or_default().to_string();
    let (local, remote) = (port(fields[2]), port(fields[3]));
    for rule in [
        "add table inet cut".to_string(),
        "add chain inet cut out { type filter hook output priority 0 ; }".into(),
        "add chain inet cut in { type filter hook input priority 0 ; }".into(),
        format!("add rule inet cut out tcp sport {local} tcp dport {remote} drop"),
        format!("add rule inet cut in tcp sport {remote} tcp dport {local} drop"),
    ] {
        run(&format!("ip netns exec {b} nft '{rule}'")).unwrap();
    }
    let before = lab.speaker_peer("10.0.0.2")["transitions"].as_u64().unwrap_or_default();
    let watch = RouteWatch::start(&a, "10.244.50.0/26", Some(PROTO));
    lab.kill("bird");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        lab.speaker_peer_state("10.0.0.2"),
        "Established",
        "the old session noticed the kill"
    );
    let start = Instant::now();
    lab.start_bird_as("bird-2", &bird, &[]);
    lab.wait(
        "a new session with the restarted BIRD",
        Duration::from_secs(10),
        || {
            let p = lab.speaker_peer("10.0.0.2");
            (p["state"] == "Established"
                && p["transitions"].as_u64().unwrap_or_default() > before
                && lab.bird_established("spk4"))
            .then_some(())
        },
        || format!("{}\n{}", lab.birdc("show protocols all spk4"), lab.log("bird-2")),
    );
    timing(
        "BIRD restarted without closing -> new session Established",
        start.elapsed(),
    );
    assert!(start.elapsed() < Duration::from_secs(10));
    lab.wait_own_routes(&a, &[("10.244.50.0/26", "10.0.0.2")], Duration::from_secs(5));
    watch.assert_never_missing(|| lab.log("speaker"));
    assert!(
        lab.log("speaker").contains("the peer restarted"),
        "{}",
        lab.log("speaker")
    );
}

/// GTSM (RFC 5082) on the listener: with `ttlSecurity: 1`, a connection whose
/// SYN arrived with TTL 254 is dropped before we send a byte; one with TTL 255 gets
/// our OPEN.
#[test]
fn ttl_security_drops_a_connection_whose_syn_came_from_too_far() {
    let mut lab = Lab::new("flt-gtsm");
    let config = lab.write(
        "speaker.yaml",
        &format!(
            "asNumber: {SPEAKER_AS}\nrouterID: 10.0.0.1\npools: [10.244.0.0/16]\napiSocket: {}\npeers:\n\
             - peerIP: 10.0.0.2\n  asNumber: {PEER_AS}\n  passive: true\n  ttlSecurity: 1\n",
            lab.path("speaker.sock").display()
        ),
    );
    lab.start_speaker(&config);
    let b = lab.b.clone();
    lab.wait(
        "the speaker's API",
        Duration::from_secs(5),
        || (!lab.speaker_peer_state("10.0.0.2").is_empty()).then_some(()),
        || lab.log("speaker"),
    );
    // What a client with this TTL reads from our port in 2 s: bytes, or how it ended.
    let probe = |ttl: u8| {
        let script = format!(
            "import socket\ns=socket.socket()\ns.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, {ttl})\n\
             s.settimeout(2)\ns.connect(('10.0.0.1', 179))\n\
             try:\n    print(len(s.recv(4096)))\nexcept Exception as e:\n    print(type(e).__name__)\n"
        );
        let path = lab.write(&format!("probe{ttl}.py"), &script);
        run(&format!("ip netns exec {b} python3 {}", path.display())).unwrap_or_else(|e| e)
    };
    let far = probe(254);
    assert!(
        far.trim() == "0" || far.contains("Reset") || far.contains("timeout"),
        "a SYN with TTL 254 got an answer: {far}"
    );
    let info = lab.speaker_peer("10.0.0.2")["info"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(info.contains("TTL 254"), "the status does not say why: {info}");
    let near: usize = probe(255).trim().parse().unwrap_or(0);
    assert!(near >= 29, "a SYN with TTL 255 got no OPEN: {near} bytes");
}
