//! Graceful restart (RFC 4724) against BIRD 2: as helper while BIRD restarts
//! (GR-01), the restart timer when it never comes back (GR-03), and as the
//! restarting speaker (GR-02) with routes changed while we were down (WD-05) and
//! a peer that stays down (GR-05).

mod common;

use std::time::{Duration, Instant};

use common::{timing, Lab, RouteWatch, PEER_AS, PROTO, SPEAKER_AS};
use serde_json::Value;

fn bird_conf(routes: &[&str], restart_time: u16) -> String {
    let routes: String = routes.iter().map(|r| format!("route {r} blackhole; ")).collect();
    format!(
        r#"
router id 10.0.0.2;
log stderr all;
protocol device {{}}
protocol kernel k4 {{ ipv4 {{ import none; export where source = RTS_BGP; }}; }}
protocol static s4 {{ ipv4; {routes} }}
protocol bgp spk4 {{
  local 10.0.0.2 as {PEER_AS}; neighbor 10.0.0.1 as {SPEAKER_AS};
  hold time 9; connect retry time 1;
  graceful restart on; graceful restart time {restart_time};
  ipv4 {{ import all; export where source = RTS_STATIC; }};
}}
"#
    )
}

/// One v4 peer (BIRD), graceful restart on; `extra` adds YAML peers.
fn speaker_conf(lab: &Lab, restart_time: u16, extra: &str) -> std::path::PathBuf {
    let text = format!(
        "asNumber: {SPEAKER_AS}\nrouterID: 10.0.0.1\npools: [10.244.0.0/16]\napiSocket: {}\n\
         gracefulRestart: {{enabled: true, restartTime: {restart_time}}}\npeers:\n\
         - peerIP: 10.0.0.2\n  asNumber: {PEER_AS}\n  holdTime: 9\n  connectRetryTime: 1\n{extra}",
        lab.path("speaker.sock").display()
    );
    lab.write("speaker.yaml", &text)
}

fn wait_bird_up(lab: &Lab) {
    lab.wait(
        "BIRD sees the session Established",
        Duration::from_secs(10),
        || lab.bird_established("spk4").then_some(()),
        || lab.birdc("show protocols all spk4"),
    );
}

fn in_fib(lab: &Lab, prefix: &str) -> bool {
    lab.route(&lab.a, prefix, Some(PROTO)).is_some()
}

/// The speaker's view of one learned prefix: its paths.
fn learned(lab: &Lab, prefix: &str) -> Vec<Value> {
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
        .map(|r| r["paths"].as_array().cloned().unwrap_or_default())
        .unwrap_or_default()
}

#[test]
fn gr01_helper_keeps_routes_while_bird_restarts_and_flushes_at_end_of_rib() {
    let mut lab = Lab::new("gr-helper");
    lab.start_bird(&bird_conf(&["10.244.50.0/26", "10.244.51.0/26"], 30));
    let config = speaker_conf(&lab, 120, "");
    lab.start_speaker(&config);
    wait_bird_up(&lab);
    for p in ["10.244.50.0/26", "10.244.51.0/26"] {
        lab.wait(
            &format!("{p} in our FIB"),
            Duration::from_secs(5),
            || in_fib(&lab, p).then_some(()),
            String::new,
        );
    }
    let a = lab.a.clone();
    let watch = RouteWatch::start(&a, "10.244.50.0/26", Some(PROTO));

    lab.birdc("graceful restart");
    lab.wait_exit("bird", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("BIRD did not stop for graceful restart\n{}", lab.log("bird")));
    lab.wait(
        "the speaker keeps BIRD's routes as stale",
        Duration::from_secs(3),
        || {
            learned(&lab, "10.244.51.0/26")
                .iter()
                .any(|p| p["stale"] == true)
                .then_some(())
        },
        || lab.log("bird"),
    );
    assert!(
        in_fib(&lab, "10.244.51.0/26"),
        "stale route left the FIB during the restart"
    );

    // BIRD comes back without 10.244.51.0/26.
    lab.start_bird_as("bird-2", &bird_conf(&["10.244.50.0/26"], 30), &["-R"]);
    let start = Instant::now();
    wait_bird_up(&lab);
    lab.wait(
        "10.244.51.0/26 flushed from our FIB at BIRD's End-of-RIB",
        Duration::from_secs(5),
        || (!in_fib(&lab, "10.244.51.0/26")).then_some(()),
        || lab.birdc("show route all"),
    );
    timing("BIRD restart -> stale route flushed", start.elapsed());
    watch.assert_never_missing(|| lab.log("speaker"));
    assert!(in_fib(&lab, "10.244.50.0/26"));
    let paths = learned(&lab, "10.244.50.0/26");
    assert!(
        paths.iter().all(|p| p["stale"] == false),
        "still stale after End-of-RIB: {paths:?}"
    );
}

#[test]
fn gr03_stale_routes_go_when_the_restart_time_runs_out() {
    let mut lab = Lab::new("gr-expiry");
    lab.start_bird(&bird_conf(&["10.244.50.0/26"], 5));
    let config = speaker_conf(&lab, 120, "");
    lab.start_speaker(&config);
    wait_bird_up(&lab);
    lab.wait(
        "10.244.50.0/26 in our FIB",
        Duration::from_secs(5),
        || in_fib(&lab, "10.244.50.0/26").then_some(()),
        String::new,
    );
    lab.birdc("graceful restart");
    lab.wait_exit("bird", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("BIRD did not stop for graceful restart\n{}", lab.log("bird")));
    let stopped = Instant::now();
    lab.wait(
        "BIRD's stale route removed after its 5 s restart time",
        Duration::from_secs(10),
        || (!in_fib(&lab, "10.244.50.0/26")).then_some(()),
        String::new,
    );
    let took = stopped.elapsed();
    timing("restart time 5 s -> stale route removed", took);
    assert!(
        took >= Duration::from_millis(4500) && took <= Duration::from_millis(6500),
        "removed after {took:?}, expected the restart time (5 s) within budget\n{}",
        lab.log("speaker")
    );
}

#[test]
fn gr02_restarting_speaker_keeps_forwarding_and_replaces_stale_routes() {
    let mut lab = Lab::new("gr-restart");
    lab.start_bird(&bird_conf(&["10.244.50.0/26", "10.244.51.0/26"], 30));
    // A second peer that never answers: the stale routes of our previous run
    // must still go when our restart time (3 s) bounds the wait for it (GR-05).
    let dead = "- peerIP: 10.0.0.3\n  asNumber: 65003\n  holdTime: 9\n  connectRetryTime: 1\n";
    let config = speaker_conf(&lab, 3, dead);
    lab.start_speaker(&config);
    wait_bird_up(&lab);
    let (a, b) = (lab.a.clone(), lab.b.clone());
    common::run(&format!("ip -n {a} route add blackhole 10.244.1.0/26")).unwrap();
    lab.wait(
        "our block in BIRD's kernel",
        Duration::from_secs(5),
        || lab.route(&b, "10.244.1.0/26", Some("bird")),
        || lab.birdc("show route all"),
    );
    for p in ["10.244.50.0/26", "10.244.51.0/26"] {
        lab.wait(
            &format!("{p} in our FIB"),
            Duration::from_secs(5),
            || in_fib(&lab, p).then_some(()),
            String::new,
        );
    }
    let peer_watch = RouteWatch::start(&b, "10.244.1.0/26", Some("bird"));
    let fib_watch = RouteWatch::start(&a, "10.244.50.0/26", Some(PROTO));

    // SIGTERM with graceful restart: no NOTIFICATION, FIB left in place.
    let status = lab.terminate("speaker").expect("speaker was running");
    assert!(status.success(), "{}", lab.log("speaker"));
    lab.wait(
        "BIRD in graceful restart for us, keeping our route",
        Duration::from_secs(3),
        || {
            lab.birdc("show protocols all spk4")
                .contains("Neighbor graceful restart active")
                .then_some(())
        },
        || format!("{}\n{}", lab.birdc("show protocols all spk4"), lab.log("bird")),
    );
    assert!(
        !lab.log("bird").contains("Received: "),
        "BIRD got a NOTIFICATION from a graceful stop:\n{}",
        lab.log("bird")
    );
    assert!(in_fib(&lab, "10.244.51.0/26"), "FIB not kept across a graceful stop");

    // While we are down: BIRD drops .51 and adds .52; a new block appears here.
    lab.write("bird.conf", &bird_conf(&["10.244.50.0/26", "10.244.52.0/26"], 30));
    let out = lab.birdc("configure");
    assert!(out.contains("Reconfigured"), "{out}");
    common::run(&format!("ip -n {a} route add blackhole 10.244.3.0/26")).unwrap();

    lab.start_speaker_as("speaker-2", &config);
    let restarted = Instant::now();
    let diag = || {
        format!(
            "{}\n--- speaker-2 ---\n{}",
            lab.birdc("show protocols all spk4"),
            lab.log("speaker-2")
        )
    };
    lab.wait(
        "BIRD sees our restart (R bit) and the session back",
        Duration::from_secs(10),
        || {
            let out = lab.birdc("show protocols all spk4");
            (out.contains("Established") && out.contains("Restart recovery")).then_some(())
        },
        diag,
    );
    let (_, t) = lab.wait(
        "the new block advertised though peer 10.0.0.3 is down (GR-05)",
        Duration::from_secs(2),
        || lab.route(&b, "10.244.3.0/26", Some("bird")),
        diag,
    );
    timing("restart -> new block in BIRD's kernel", t);
    lab.wait(
        "10.244.52.0/26 (added while we were down) in our FIB",
        Duration::from_secs(3),
        || in_fib(&lab, "10.244.52.0/26").then_some(()),
        diag,
    );
    lab.wait(
        "10.244.51.0/26 (withdrawn while we were down) gone from our FIB",
        Duration::from_secs(6),
        || (!in_fib(&lab, "10.244.51.0/26")).then_some(()),
        diag,
    );
    let took = restarted.elapsed();
    timing("restart -> stale route of the previous run removed", took);
    assert!(
        took <= Duration::from_secs(5),
        "deferral not bounded by the 3 s restart time: {took:?}"
    );
    peer_watch.assert_never_missing(|| lab.log("bird"));
    fib_watch.assert_never_missing(|| lab.log("speaker-2"));

    // The R bit was for the first session only: a reset session does not carry it.
    lab.birdc("restart spk4");
    lab.wait(
        "the session back after a reset, without the R bit",
        Duration::from_secs(10),
        || {
            let out = lab.birdc("show protocols all spk4");
            (out.contains("Established") && !out.contains("Restart recovery")).then_some(())
        },
        diag,
    );
}
