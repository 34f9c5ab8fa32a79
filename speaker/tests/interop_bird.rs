//! Our speaker against BIRD 2 over eBGP, IPv4 and IPv6 sessions side by side.

mod common;

use std::time::Duration;

use common::{timing, Lab, PROTO};

const BIRD_CONF: &str = r#"
router id 10.0.0.2;
log stderr all;
protocol device {}
protocol kernel k4 { ipv4 { import none; export where source = RTS_BGP; }; }
protocol kernel k6 { ipv6 { import none; export where source = RTS_BGP; }; }
protocol static s4 { ipv4; route 10.244.50.0/26 blackhole; route 192.168.77.0/24 blackhole; }
protocol static s6 { ipv6; route fd00:244:50::/64 blackhole; }
protocol bgp spk4 {
  local 10.0.0.2 as 65000; neighbor 10.0.0.1 as 64512;
  hold time 9; connect retry time 1;
  ipv4 { import all; export where source = RTS_STATIC; };
}
protocol bgp spk6 {
  local fd00::2 as 65000; neighbor fd00::1 as 64512;
  hold time 9; connect retry time 1;
  ipv6 { import all; export where source = RTS_STATIC; };
}
"#;

fn birdc(lab: &Lab, cmd: &str) -> String {
    let sock = lab.path("bird.ctl");
    lab.exec(&lab.b, &format!("birdc -s {} {cmd}", sock.display()))
}

#[test]
fn session_establishes_and_routes_flow() {
    let mut lab = Lab::new("bird");
    let conf = lab.write("bird.conf", BIRD_CONF);
    let (sock, pid) = (lab.path("bird.ctl"), lab.path("bird.pid"));
    let b = lab.b.clone();
    lab.spawn(
        "bird",
        &b,
        &[
            "bird",
            "-f",
            "-c",
            &conf.display().to_string(),
            "-s",
            &sock.display().to_string(),
            "-P",
            &pid.display().to_string(),
        ],
        &[],
    );
    let config = lab.speaker_config("");
    lab.start_speaker(&config);
    let protocols = || birdc(&lab, "show protocols all");

    // Sessions, read from BIRD's own CLI and from ours.
    let (_, t) = lab.wait(
        "BIRD sees both sessions Established",
        Duration::from_secs(10),
        || {
            let out = birdc(&lab, "show protocols");
            let up = out
                .lines()
                .filter(|l| l.starts_with("spk") && l.contains("Established"))
                .count();
            (up == 2).then_some(())
        },
        protocols,
    );
    timing("BIRD sessions Established after start", t);
    lab.wait(
        "speaker reports both peers Established",
        Duration::from_secs(5),
        || {
            (lab.speaker_peer_state("10.0.0.2") == "Established" && lab.speaker_peer_state("fd00::2") == "Established")
                .then_some(())
        },
        protocols,
    );

    // BIRD's routes land in our kernel with our protocol; 192.168.77.0/24 is
    // outside the pools and must not.
    for prefix in ["10.244.50.0/26", "fd00:244:50::/64"] {
        let (r, t) = lab.wait(
            &format!("{prefix} from BIRD in the speaker's FIB"),
            Duration::from_secs(5),
            || lab.route(&lab.a, prefix, Some(PROTO)),
            protocols,
        );
        let gw = if prefix.contains(':') { "fd00::2" } else { "10.0.0.2" };
        assert_eq!(r["gateway"], gw, "{r}");
        timing(&format!("{prefix} learned into FIB"), t);
    }
    assert!(
        lab.route(&lab.a, "192.168.77.0/24", None).is_none(),
        "a prefix outside the pools was installed"
    );

    // A block (blackhole) and a borrowed pod IP in our namespace reach BIRD's kernel.
    let a = lab.a.clone();
    common::run(&format!("ip -n {a} route add blackhole 10.244.1.0/26")).unwrap();
    common::run(&format!("ip -n {a} route add blackhole fd00:244:1::/64")).unwrap();
    common::run(&format!("ip -n {a} link add cali1234 type veth peer name pod0")).unwrap();
    common::run(&format!("ip -n {a} link set cali1234 up")).unwrap();
    common::run(&format!("ip -n {a} link set pod0 up")).unwrap();
    common::run(&format!("ip -n {a} route add 10.244.99.5/32 dev cali1234")).unwrap();
    for (prefix, gw) in [
        ("10.244.1.0/26", "10.0.0.1"),
        ("fd00:244:1::/64", "fd00::1"),
        ("10.244.99.5/32", "10.0.0.1"),
    ] {
        let (r, t) = lab.wait(
            &format!("{prefix} in BIRD's kernel"),
            Duration::from_secs(5),
            || lab.route(&b, prefix, Some("bird")),
            || birdc(&lab, "show route all"),
        );
        assert_eq!(r["gateway"], gw, "{r}");
        timing(&format!("{prefix} advertised to BIRD's kernel"), t);
    }

    // Withdrawals: deleting the block, deleting the pod interface.
    common::run(&format!("ip -n {a} route del blackhole 10.244.1.0/26")).unwrap();
    let (_, t) = lab.wait(
        "10.244.1.0/26 withdrawn from BIRD",
        Duration::from_secs(2),
        || lab.route(&b, "10.244.1.0/26", None).is_none().then_some(()),
        || birdc(&lab, "show route all"),
    );
    timing("block delete -> gone from BIRD's kernel", t);
    common::run(&format!("ip -n {a} link del cali1234")).unwrap();
    let (_, t) = lab.wait(
        "10.244.99.5/32 withdrawn from BIRD after its interface went",
        Duration::from_secs(2),
        || lab.route(&b, "10.244.99.5/32", None).is_none().then_some(()),
        || birdc(&lab, "show route all"),
    );
    timing("pod interface delete -> /32 gone from BIRD's kernel", t);

    // BIRD withdrawing removes the route from our FIB.
    birdc(&lab, "disable s4");
    let (_, t) = lab.wait(
        "10.244.50.0/26 removed from our FIB after BIRD withdrew it",
        Duration::from_secs(2),
        || lab.route(&a, "10.244.50.0/26", Some(PROTO)).is_none().then_some(()),
        protocols,
    );
    timing("BIRD withdraw -> gone from our FIB", t);
    birdc(&lab, "enable s4");
    lab.wait(
        "10.244.50.0/26 back in our FIB",
        Duration::from_secs(3),
        || lab.route(&a, "10.244.50.0/26", Some(PROTO)),
        protocols,
    );

    // BIRD killed: without graceful restart its routes leave our FIB within 1 s.
    lab.kill("bird");
    let (_, t) = lab.wait(
        "BIRD's routes gone from our FIB after kill -9",
        Duration::from_secs(1),
        || {
            (lab.route(&a, "10.244.50.0/26", Some(PROTO)).is_none()
                && lab.route(&a, "fd00:244:50::/64", Some(PROTO)).is_none())
            .then_some(())
        },
        String::new,
    );
    timing("BIRD killed -> its routes gone from our FIB", t);

    // A clean stop without graceful restart: exit 0, FIB cleaned.
    let status = lab.terminate("speaker").expect("speaker was running");
    assert!(status.success(), "speaker exited with {status}\n{}", lab.log("speaker"));
    assert!(
        lab.routes(&a, "-4", Some(PROTO)).is_empty(),
        "routes of ours left after a hard stop"
    );
}
