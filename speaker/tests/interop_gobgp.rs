//! Our speaker against GoBGP 3.10 as a ToR (GoBGP has no FIB: we read its RIB).

mod common;

use std::time::Duration;

use common::{timing, Lab, PROTO};
use serde_json::Value;

const GOBGP_CONF: &str = r#"
[global.config]
  as = 65000
  router-id = "10.0.0.2"
  port = 179

[[neighbors]]
  [neighbors.config]
    neighbor-address = "10.0.0.1"
    peer-as = 64512
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 9
    keepalive-interval = 3
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"

[[neighbors]]
  [neighbors.config]
    neighbor-address = "fd00::1"
    peer-as = 64512
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 9
    keepalive-interval = 3
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
"#;

struct GoBgp {
    port: u16,
}

impl GoBgp {
    fn cli(&self, lab: &Lab, args: &str) -> String {
        lab.exec(&lab.b, &format!("gobgp -p {} {args}", self.port))
    }

    fn established(&self, lab: &Lab) -> usize {
        let v: Value = serde_json::from_str(&self.cli(lab, "-j neighbor")).unwrap_or(Value::Null);
        v.as_array()
            .into_iter()
            .flatten()
            .filter(|n| {
                let s = &n["state"]["session_state"];
                s == 6 || s == "established" || s == "ESTABLISHED"
            })
            .count()
    }

    /// Whether GoBGP's global RIB holds `prefix` with next hop `nh`; `None`
    /// when the RIB could not be read at all (so absence is never assumed).
    fn has(&self, lab: &Lab, family: &str, prefix: &str, nh: &str) -> Option<bool> {
        let out = self.cli(lab, &format!("-j global rib -a {family}"));
        let v: Value = serde_json::from_str(&out).ok()?;
        // An empty RIB prints `null`; otherwise a map from prefix to paths.
        if !(v.is_object() || v.is_null()) {
            return None;
        }
        let quoted = format!("\"{nh}\"");
        Some(v[prefix].as_array().into_iter().flatten().any(|p| {
            p["attrs"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|a| a["nexthop"] == nh || a.to_string().contains(&quoted))
        }))
    }
}

#[test]
fn session_establishes_and_routes_flow() {
    let mut lab = Lab::new("gobgp");
    let gobgp = GoBgp {
        port: 50051 + (std::process::id() % 10000) as u16,
    };
    let conf = lab.write("gobgpd.toml", GOBGP_CONF).display().to_string();
    let b = lab.b.clone();
    let api = format!("127.0.0.1:{}", gobgp.port);
    lab.spawn(
        "gobgpd",
        &b,
        &[
            "gobgpd",
            "-f",
            &conf,
            "-t",
            "toml",
            "-p",
            "--api-hosts",
            &api,
            "--pprof-disable",
        ],
        &[],
    );
    let config = lab.speaker_config("");
    lab.start_speaker(&config);
    let neighbors = || gobgp.cli(&lab, "neighbor");

    let (_, t) = lab.wait(
        "GoBGP sees both sessions Established",
        Duration::from_secs(10),
        || (gobgp.established(&lab) == 2).then_some(()),
        || format!("{}\n{}", neighbors(), lab.log("gobgpd")),
    );
    timing("GoBGP sessions Established after start", t);

    // GoBGP injects; the routes land in our FIB.
    gobgp.cli(&lab, "global rib add 10.244.70.0/26 -a ipv4");
    gobgp.cli(&lab, "global rib add fd00:244:70::/64 -a ipv6");
    let a = lab.a.clone();
    for (prefix, gw) in [("10.244.70.0/26", "10.0.0.2"), ("fd00:244:70::/64", "fd00::2")] {
        let (r, t) = lab.wait(
            &format!("{prefix} from GoBGP in the speaker's FIB"),
            Duration::from_secs(5),
            || lab.route(&a, prefix, Some(PROTO)),
            neighbors,
        );
        assert_eq!(r["gateway"], gw, "{r}");
        timing(&format!("{prefix} learned into FIB"), t);
    }

    // Our blocks reach GoBGP's RIB with our next hop.
    common::run(&format!("ip -n {a} route add blackhole 10.244.3.0/26")).unwrap();
    common::run(&format!("ip -n {a} route add blackhole fd00:244:3::/64")).unwrap();
    for (family, prefix, nh) in [
        ("ipv4", "10.244.3.0/26", "10.0.0.1"),
        ("ipv6", "fd00:244:3::/64", "fd00::1"),
    ] {
        let (_, t) = lab.wait(
            &format!("{prefix} in GoBGP's RIB via {nh}"),
            Duration::from_secs(5),
            || (gobgp.has(&lab, family, prefix, nh) == Some(true)).then_some(()),
            || gobgp.cli(&lab, &format!("-j global rib -a {family}")),
        );
        timing(&format!("{prefix} advertised to GoBGP"), t);
    }
    common::run(&format!("ip -n {a} route del blackhole 10.244.3.0/26")).unwrap();
    let (_, t) = lab.wait(
        "10.244.3.0/26 withdrawn from GoBGP",
        Duration::from_secs(2),
        || (gobgp.has(&lab, "ipv4", "10.244.3.0/26", "10.0.0.1") == Some(false)).then_some(()),
        || gobgp.cli(&lab, "global rib -a ipv4"),
    );
    timing("block delete -> gone from GoBGP's RIB", t);

    // GoBGP withdrawing removes the route from our FIB.
    gobgp.cli(&lab, "global rib del 10.244.70.0/26 -a ipv4");
    let (_, t) = lab.wait(
        "10.244.70.0/26 removed from our FIB after GoBGP withdrew it",
        Duration::from_secs(2),
        || lab.route(&a, "10.244.70.0/26", Some(PROTO)).is_none().then_some(()),
        neighbors,
    );
    timing("GoBGP withdraw -> gone from our FIB", t);

    lab.kill("gobgpd");
    let (_, t) = lab.wait(
        "GoBGP's routes gone from our FIB after kill -9",
        Duration::from_secs(1),
        || lab.route(&a, "fd00:244:70::/64", Some(PROTO)).is_none().then_some(()),
        String::new,
    );
    timing("gobgpd killed -> its routes gone from our FIB", t);
}
