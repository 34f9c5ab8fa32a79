//! Our speaker against FRR 8.4 (bgpd + zebra, started directly with their own
//! path space `-N`, so several instances never collide).

mod common;

use std::time::Duration;

use common::{timing, Lab, PROTO};
use serde_json::Value;

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

struct Frr {
    name: String,
}

impl Frr {
    fn vtysh(&self, lab: &Lab, args: &str) -> String {
        lab.exec(&lab.b, &format!("vtysh -N {} {args}", self.name))
    }

    fn json(&self, lab: &Lab, cmd: &str) -> Value {
        serde_json::from_str(&self.vtysh(lab, &format!("-c '{cmd}'"))).unwrap_or(Value::Null)
    }
}

impl Drop for Frr {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(format!("/var/run/frr/{}", self.name));
    }
}

#[test]
fn session_establishes_and_routes_flow() {
    let mut lab = Lab::new("frr");
    let frr = Frr {
        name: format!("spk-frr-{}", std::process::id()),
    };
    let run_dir = format!("/var/run/frr/{}", frr.name);
    std::fs::create_dir_all(&run_dir).unwrap();
    common::run(&format!("chown frr:frr {run_dir} && chmod 755 {}", lab.dir.display())).unwrap();
    let conf = lab.write("frr.conf", FRR_CONF).display().to_string();
    let b = lab.b.clone();
    lab.spawn("zebra", &b, &["/usr/lib/frr/zebra", "-N", &frr.name, "-f", &conf], &[]);
    lab.wait(
        "zebra's socket",
        Duration::from_secs(5),
        || {
            std::path::Path::new(&format!("{run_dir}/zserv.api"))
                .exists()
                .then_some(())
        },
        || lab.log("zebra"),
    );
    lab.spawn("bgpd", &b, &["/usr/lib/frr/bgpd", "-N", &frr.name, "-f", &conf], &[]);
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
    for (prefix, gw) in [("10.244.2.0/26", "10.0.0.1"), ("fd00:244:2::/64", "fd00::1")] {
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
