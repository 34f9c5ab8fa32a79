//! Our speaker against FRR 8.4 (bgpd + zebra, started directly with their own
//! path space `-N`, so several instances never collide).

mod common;

use std::time::Duration;

use common::{timing, Frr, Lab, RouteWatch, PEER_AS, PROTO, SPEAKER_AS};

const FRR_CONF: &str = r#"
frr defaults datacenter
hostname tor
router bgp 65000
 bgp router-id 10.0.0.2
 no bgp ebgp-requires-policy
 no bgp network import-check
 timers bgp 3 9
 neighbor 10.0.0.1 remote-as 64512
 neighbor 10.0.0.1 timers connect 1
 neighbor fd00::1 remote-as 64512
 neighbor fd00::1 timers connect 1
 address-family ipv4 unicast
  network 10.244.60.0/26
  network 0.0.0.0/0
  no neighbor fd00::1 activate
 exit-address-family
 address-family ipv6 unicast
  neighbor fd00::1 activate
  network fd00:244:60::/64
 exit-address-family
"#;

#[test]
fn session_establishes_and_routes_flow() {
    let mut lab = Lab::new("frr");
    let frr = Frr::start(&mut lab, "frr", FRR_CONF);
    let b = lab.b.clone();
    let config = lab.speaker_config("");
    lab.start_speaker(&config);
    let summary = || frr.vtysh(&lab, "-c 'show bgp summary'");

    let (_, t) = lab.wait(
        "FRR sees both sessions Established",
        Duration::from_secs(10),
        || {
            let s = frr.json(&lab, "show bgp summary json");
            let v4 = &s["ipv4Unicast"]["peers"]["10.0.0.1"]["state"];
            let v6 = &s["ipv6Unicast"]["peers"]["fd00::1"]["state"];
            (v4 == "Established" && v6 == "Established").then_some(())
        },
        summary,
    );
    timing("FRR sessions Established after start", t);
    lab.wait(
        "speaker reports both peers Established",
        Duration::from_secs(5),
        || {
            (lab.speaker_peer_state("10.0.0.2") == "Established" && lab.speaker_peer_state("fd00::2") == "Established")
                .then_some(())
        },
        summary,
    );
    // Capabilities, as FRR saw them.
    let n = frr.json(&lab, "show bgp neighbors 10.0.0.1 json");
    let caps = &n["10.0.0.1"]["neighborCapabilities"];
    assert_eq!(caps["4byteAs"], "advertisedAndReceived", "{caps}");
    assert!(
        caps["routeRefresh"].as_str().unwrap_or_default().contains("Received"),
        "{caps}"
    );

    // FRR's routes in our FIB; its default route is outside the pools: not installed.
    let a = lab.a.clone();
    for (prefix, gw) in [("10.244.60.0/26", "10.0.0.2"), ("fd00:244:60::/64", "fd00::2")] {
        let (r, t) = lab.wait(
            &format!("{prefix} from FRR in the speaker's FIB"),
            Duration::from_secs(5),
            || lab.route(&a, prefix, Some(PROTO)),
            summary,
        );
        assert_eq!(r["gateway"], gw, "{r}");
        timing(&format!("{prefix} learned into FIB"), t);
    }
    assert!(
        lab.route(&a, "default", None).is_none(),
        "the ToR's default route was installed"
    );

    // Our block reaches FRR's kernel through zebra.
    common::run(&format!("ip -n {a} route add blackhole 10.244.2.0/26")).unwrap();
    common::run(&format!("ip -n {a} route add blackhole fd00:244:2::/64")).unwrap();
    // FRR forwards to the link-local half of our IPv6 next hop (RFC 2545).
    let ll = lab.link_local(&a, "eth1");
    for (prefix, gw) in [("10.244.2.0/26", "10.0.0.1"), ("fd00:244:2::/64", ll.as_str())] {
        let (r, t) = lab.wait(
            &format!("{prefix} in FRR's kernel"),
            Duration::from_secs(5),
            || lab.route(&b, prefix, Some("bgp")),
            || frr.vtysh(&lab, "-c 'show bgp ipv4 unicast' -c 'show bgp ipv6 unicast'"),
        );
        assert_eq!(r["gateway"], gw, "{r}");
        timing(&format!("{prefix} advertised to FRR's kernel"), t);
    }
    common::run(&format!("ip -n {a} route del blackhole 10.244.2.0/26")).unwrap();
    let (_, t) = lab.wait(
        "10.244.2.0/26 withdrawn from FRR's kernel",
        Duration::from_secs(2),
        || lab.route(&b, "10.244.2.0/26", None).is_none().then_some(()),
        summary,
    );
    timing("block delete -> gone from FRR's kernel", t);

    // FRR withdrawing removes the route from our FIB.
    frr.vtysh(
        &lab,
        "-c 'configure terminal' -c 'router bgp 65000' -c 'address-family ipv4 unicast' -c 'no network 10.244.60.0/26'",
    );
    let (_, t) = lab.wait(
        "10.244.60.0/26 removed from our FIB after FRR withdrew it",
        Duration::from_secs(3),
        || lab.route(&a, "10.244.60.0/26", Some(PROTO)).is_none().then_some(()),
        summary,
    );
    timing("FRR withdraw -> gone from our FIB", t);

    // bgpd killed: its routes leave our FIB within 1 s.
    lab.kill("bgpd");
    let (_, t) = lab.wait(
        "FRR's routes gone from our FIB after kill -9 of bgpd",
        Duration::from_secs(1),
        || lab.route(&a, "fd00:244:60::/64", Some(PROTO)).is_none().then_some(()),
        String::new,
    );
    timing("bgpd killed -> its routes gone from our FIB", t);
}

fn frr_gr_conf(networks: &[&str], hard_reset: bool) -> String {
    let networks: String = networks.iter().map(|n| format!("  network {n}\n")).collect();
    let hard = if hard_reset { "" } else { "no " };
    format!(
        "frr defaults datacenter\nhostname tor\nrouter bgp {PEER_AS}\n bgp router-id 10.0.0.2\n no bgp ebgp-requires-policy\n\
         no bgp network import-check\n bgp graceful-restart\n bgp graceful-restart preserve-fw-state\n\
         bgp graceful-restart restart-time 30\n bgp graceful-restart notification\n {hard}bgp hard-administrative-reset\n\
         timers bgp 3 9\n neighbor 10.0.0.1 remote-as {SPEAKER_AS}\n neighbor 10.0.0.1 timers connect 1\n\
         address-family ipv4 unicast\n{networks} exit-address-family\n"
    )
}

/// GR-04 (RFC 8538) and GR-01 against FRR: a soft NOTIFICATION keeps FRR's
/// routes, a Hard Reset flushes them at once; bgpd killed and restarted with
/// graceful restart: routes kept, the one it no longer has flushed at End-of-RIB.
#[test]
fn graceful_restart_and_notifications_with_frr() {
    let mut lab = Lab::new("frr-gr");
    let frr = Frr::start(
        &mut lab,
        "frr-gr",
        &frr_gr_conf(&["10.244.60.0/26", "10.244.61.0/26"], false),
    );
    let config = lab.write(
        "speaker.yaml",
        &format!(
            "asNumber: {SPEAKER_AS}\nrouterID: 10.0.0.1\npools: [10.244.0.0/16]\napiSocket: {}\n\
             gracefulRestart: {{enabled: true, restartTime: 30}}\npeers:\n\
             - peerIP: 10.0.0.2\n  asNumber: {PEER_AS}\n  holdTime: 9\n  connectRetryTime: 1\n",
            lab.path("speaker.sock").display()
        ),
    );
    lab.start_speaker(&config);
    let a = lab.a.clone();
    let in_fib = |lab: &Lab, p: &str| lab.route(&a, p, Some(PROTO)).is_some();
    let summary_of = |lab: &Lab| frr.vtysh(lab, "-c 'show bgp neighbors 10.0.0.1'");
    let up = |lab: &Lab| {
        lab.wait(
            "FRR Established with both routes in our FIB",
            Duration::from_secs(10),
            || (frr.peer_state(lab, "10.0.0.1") == "Established" && in_fib(lab, "10.244.60.0/26")).then_some(()),
            || frr.vtysh(lab, "-c 'show bgp neighbors 10.0.0.1'"),
        )
    };
    up(&lab);
    let n = frr.json(&lab, "show bgp neighbors 10.0.0.1 json");
    let gr = n["10.0.0.1"]["gracefulRestartInfo"].to_string();
    assert!(gr.contains("\"nBit\":true"), "FRR did not see our N bit: {gr}");

    // Soft NOTIFICATION (Cease/Administrative Reset, N bit exchanged): kept.
    let watch = RouteWatch::start(&a, "10.244.60.0/26", Some(PROTO));
    let before = lab.speaker_peer("10.0.0.2")["transitions"].as_u64().unwrap_or_default();
    frr.vtysh(&lab, "-c 'clear bgp 10.0.0.1'");
    lab.wait(
        "the session reset and back",
        Duration::from_secs(10),
        || {
            let p = lab.speaker_peer("10.0.0.2");
            (p["state"] == "Established" && p["transitions"].as_u64() > Some(before)).then_some(())
        },
        || summary_of(&lab),
    );
    std::thread::sleep(Duration::from_millis(300));
    watch.assert_never_missing(|| lab.log("speaker"));
    assert!(
        lab.log("speaker").contains("NOTIFICATION received"),
        "{}",
        lab.log("speaker")
    );

    // Hard Reset: flushed at once.
    frr.vtysh(
        &lab,
        "-c 'configure terminal' -c 'router bgp 65000' -c 'bgp hard-administrative-reset'",
    );
    frr.vtysh(&lab, "-c 'clear bgp 10.0.0.1'");
    let (_, t) = lab.wait(
        "FRR's routes flushed at its Hard Reset",
        Duration::from_secs(1),
        || (!in_fib(&lab, "10.244.60.0/26")).then_some(()),
        || lab.log("speaker"),
    );
    timing("Hard Reset -> routes flushed", t);
    up(&lab);

    // bgpd killed and restarted without 10.244.61.0/26: GR-01 as helper.
    lab.wait(
        "10.244.61.0/26 in our FIB",
        Duration::from_secs(5),
        || in_fib(&lab, "10.244.61.0/26").then_some(()),
        || summary_of(&lab),
    );
    let watch = RouteWatch::start(&a, "10.244.60.0/26", Some(PROTO));
    lab.kill("bgpd");
    std::thread::sleep(Duration::from_millis(500));
    assert!(in_fib(&lab, "10.244.61.0/26"), "routes not kept after bgpd died");
    lab.write("frr.conf", &frr_gr_conf(&["10.244.60.0/26"], false));
    frr.start_bgpd(&mut lab, "bgpd-2");
    let start = std::time::Instant::now();
    lab.wait(
        "10.244.61.0/26 flushed at FRR's End-of-RIB",
        Duration::from_secs(10),
        || (!in_fib(&lab, "10.244.61.0/26")).then_some(()),
        || summary_of(&lab),
    );
    timing("bgpd restart -> stale route flushed", start.elapsed());
    assert_eq!(frr.peer_state(&lab, "10.0.0.1"), "Established");
    watch.assert_never_missing(|| lab.log("speaker"));
}

/// SES-03 and GTSM against FRR: TCP-MD5 and `ttl-security hops 1` on FRR's side,
/// `password` and `ttlSecurity: 1` on ours: the session establishes and routes flow.
#[test]
fn md5_and_ttl_security_establish_with_frr() {
    let mut lab = Lab::new("frr-sec");
    let conf = FRR_CONF
        .replace(
            " neighbor 10.0.0.1 timers connect 1\n",
            " neighbor 10.0.0.1 timers connect 1\n neighbor 10.0.0.1 password s3cret\n neighbor 10.0.0.1 ttl-security hops 1\n",
        )
        .replace(
            " neighbor fd00::1 timers connect 1\n",
            " neighbor fd00::1 timers connect 1\n neighbor fd00::1 password s3cret\n neighbor fd00::1 ttl-security hops 1\n",
        );
    assert!(conf.contains("ttl-security"));
    let frr = Frr::start(&mut lab, "frr-sec", &conf);
    let config = lab.speaker_config("    password: s3cret\n    ttlSecurity: 1");
    lab.start_speaker(&config);
    lab.wait(
        "FRR Established with MD5 and GTSM on both sessions",
        Duration::from_secs(10),
        || {
            (frr.peer_state(&lab, "10.0.0.1") == "Established" && frr.peer_state(&lab, "fd00::1") == "Established")
                .then_some(())
        },
        || frr.vtysh(&lab, "-c 'show bgp neighbors'"),
    );
    let a = lab.a.clone();
    for prefix in ["10.244.60.0/26", "fd00:244:60::/64"] {
        lab.wait(
            &format!("{prefix} from FRR in our FIB"),
            Duration::from_secs(5),
            || lab.route(&a, prefix, Some(PROTO)),
            || frr.vtysh(&lab, "-c 'show bgp summary'"),
        );
    }
    let n = frr.vtysh(&lab, "-c 'show bgp neighbors 10.0.0.1'");
    assert!(
        n.contains("ttl-security") || n.contains("GTSM") || n.contains("hops"),
        "{n}"
    );
}

/// A peer's `localASNumber` (Calico's BGPPeer field, BIRD's `local as`): FRR,
/// configured for AS 65100 on that session, establishes with a node of AS 64512,
/// reads our block with the AS_PATH "65100" (not the node's AS), and its routes reach
/// our FIB. Without the field the session never comes up (FRR refuses the OPEN's AS:
/// Bad Peer AS), the negative control.
#[test]
fn local_as_number_is_the_sessions_as_with_frr() {
    let mut lab = Lab::new("frr-las");
    let frr = Frr::start(
        &mut lab,
        "frr-las",
        &format!(
            "frr defaults datacenter\nhostname tor\nrouter bgp {PEER_AS}\n bgp router-id 10.0.0.2\n no bgp ebgp-requires-policy\n\
             no bgp network import-check\n timers bgp 3 9\n neighbor 10.0.0.1 remote-as 65100\n neighbor 10.0.0.1 timers connect 1\n\
             address-family ipv4 unicast\n  network 10.244.60.0/26\n exit-address-family\n"
        ),
    );
    let text = |local: &str| {
        format!(
            "asNumber: {SPEAKER_AS}\nrouterID: 10.0.0.1\npools: [10.244.0.0/16]\napiSocket: {}\n\
             gracefulRestart: {{enabled: false}}\npeers:\n\
             - peerIP: 10.0.0.2\n  asNumber: {PEER_AS}\n  holdTime: 9\n  connectRetryTime: 1\n{local}",
            lab.path("speaker.sock").display()
        )
    };
    let (plain, with) = (text(""), text("  localASNumber: 65100\n"));
    let a = lab.a.clone();
    let b = lab.b.clone();
    common::run(&format!("ip -n {a} route add blackhole 10.244.2.0/26")).unwrap();

    // The control: the node's own AS, which FRR does not expect.
    let plain = lab.write("speaker-plain.yaml", &plain);
    lab.start_speaker_as("speaker-plain", &plain);
    std::thread::sleep(Duration::from_secs(4));
    assert_ne!(
        frr.peer_state(&lab, "10.0.0.1"),
        "Established",
        "FRR took AS {SPEAKER_AS}"
    );
    lab.kill("speaker-plain");

    let with = lab.write("speaker.yaml", &with);
    lab.start_speaker(&with);
    lab.wait(
        "FRR Established with the session's AS",
        Duration::from_secs(10),
        || (frr.peer_state(&lab, "10.0.0.1") == "Established").then_some(()),
        || frr.vtysh(&lab, "-c 'show bgp neighbors 10.0.0.1'"),
    );
    let (path, _) = lab.wait(
        "our block in FRR's RIB",
        Duration::from_secs(5),
        || {
            let r = frr.json(&lab, "show bgp ipv4 unicast 10.244.2.0/26 json");
            r["paths"][0]["aspath"]["string"].as_str().map(String::from)
        },
        || frr.vtysh(&lab, "-c 'show bgp ipv4 unicast'"),
    );
    assert_eq!(path, "65100", "the AS_PATH FRR got");
    lab.wait(
        "FRR's block in our FIB",
        Duration::from_secs(5),
        || lab.route(&a, "10.244.60.0/26", Some(PROTO)),
        || frr.vtysh(&lab, "-c 'show bgp ipv4 unicast'"),
    );
    assert!(
        lab.route(&b, "10.244.2.0/26", Some("bgp")).is_some(),
        "our block in FRR's kernel"
    );
}
