//! FRR: `vtysh -c 'show bgp summary json'`, one object per address family, each with
//! its peers. A peer active in several families is one session.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{normalize_state, read_error, Implementation, ReadError, Session};

pub struct Frr;

impl Implementation for Frr {
    fn name(&self) -> &'static str {
        "frr"
    }

    fn sessions_command(&self) -> Vec<String> {
        // The summary, then every neighbor: why a session is down (a NOTIFICATION, a
        // prefix limit) is only in the second.
        ["vtysh", "-c", "show bgp summary json", "-c", "show bgp neighbors json"]
            .map(String::from)
            .to_vec()
    }

    /// FRR runs under watchfrr, as it does in production. A killed bgpd is started
    /// again at once through watchfrr's own script (watchfrr alone would take its
    /// time, 10-20 s here); a stop stops every FRR daemon (zebra removes its routes).
    /// A reload that changes graceful restart makes frr-reload.py fail with "reset all
    /// peers to take effect": the reload does so.
    fn daemon(&self) -> Option<super::Daemon> {
        Some(super::Daemon {
            pid_file: "/var/run/frr/bgpd.pid",
            reload: "out=$(/usr/lib/frr/frr-reload.py --reload /etc/frr/frr.conf 2>&1) || { echo \"$out\" | grep -q 'reset all peers' && vtysh -c 'clear bgp *'; } || { echo \"$out\" >&2; exit 1; }",
            drain: None,
            stop: "/usr/lib/frr/frrinit.sh stop",
            kill: "kill -KILL \"$(cat /var/run/frr/bgpd.pid)\"",
            start: "kill -0 \"$(cat /var/run/frr/bgpd.pid 2>/dev/null)\" 2>/dev/null || if kill -0 \"$(cat /var/run/frr/watchfrr.pid 2>/dev/null)\" 2>/dev/null; then /usr/lib/frr/watchfrr.sh start bgpd; else /usr/lib/frr/frrinit.sh start; fi",
            log: "/var/log/frr/frr.log",
        })
    }

    fn route_command(&self, prefix: &str) -> Option<Vec<String>> {
        let family = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        Some(vec![
            "vtysh".into(),
            "-c".into(),
            format!("show bgp {family} unicast {prefix} json"),
        ])
    }

    fn parse_reflection(&self, out: &str, _prefix: &str) -> Option<(Option<String>, Vec<String>)> {
        let v: Value = serde_json::from_str(out).ok()?;
        let paths = v["paths"].as_array()?;
        let best = paths
            .iter()
            .find(|p| p["bestpath"]["overall"] == true)
            .or_else(|| paths.first())?;
        Some((
            best["originatorId"].as_str().map(String::from),
            best["clusterList"]["list"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str().map(String::from))
                .collect(),
        ))
    }

    fn parse_communities(&self, out: &str, prefix: &str) -> Option<Vec<String>> {
        let v: Value = serde_json::from_str(out).ok()?;
        if v["prefix"].as_str() != Some(prefix) {
            return None;
        }
        let paths = v["paths"].as_array()?;
        let best = paths
            .iter()
            .find(|p| p["bestpath"]["overall"] == true)
            .or_else(|| paths.first())?;
        let words = |attr: &str| {
            best[attr]["string"]
                .as_str()
                .unwrap_or_default()
                .split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>()
        };
        Some([words("community"), words("largeCommunity")].concat())
    }

    fn capabilities_command(&self, peer: &str) -> Option<Vec<String>> {
        Some(vec![
            "vtysh".into(),
            "-c".into(),
            format!("show bgp neighbors {peer} json"),
        ])
    }

    fn parse_capabilities(&self, out: &str, peer: &str) -> Result<Vec<String>, ReadError> {
        let v: Value = serde_json::from_str(out).map_err(|e| read_error(self, format!("not JSON: {e}")))?;
        let caps = &v[peer]["neighborCapabilities"];
        if caps.is_null() {
            return Err(read_error(self, format!("no neighborCapabilities for {peer}")));
        }
        let both = |k: &str| caps[k].as_str().is_some_and(|s| s.starts_with("advertisedAndReceived"));
        let mut out = Vec::new();
        if both("4byteAs") {
            out.push("4-octet-as".to_string());
        }
        if both("routeRefresh") {
            out.push("route-refresh".into());
        }
        if both("gracefulRestart")
            || caps["gracefulRestartCapability"]
                .as_str()
                .is_some_and(|s| s.starts_with("advertisedAndReceived"))
        {
            out.push("graceful-restart".into());
        }
        for (k, name) in [("ipv4Unicast", "ipv4-unicast"), ("ipv6Unicast", "ipv6-unicast")] {
            if caps["multiprotocolExtensions"][k]["advertisedAndReceived"] == true {
                out.push(name.into());
            }
        }
        Ok(out)
    }

    /// `network`, with no route of its own in the kernel: the lab's FRR routers have
    /// `no bgp network import-check` (a blackhole added for it would take the place of
    /// what the router routes there, such as its default route).
    fn announce(&self, prefix: &str) -> Option<(String, String)> {
        let family = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        let bgp = |no: &str| {
            format!(
                "vtysh -c 'configure terminal' -c \"router bgp $(awk '/^router bgp/{{print $3}}' /etc/frr/frr.conf)\" -c 'address-family {family} unicast' -c '{no}network {prefix}'"
            )
        };
        Some((bgp(""), bgp("no ")))
    }

    fn advertised_command(&self, peer: &str) -> Option<Vec<String>> {
        let family = if peer.contains(':') { "ipv6" } else { "ipv4" };
        Some(vec![
            "vtysh".into(),
            "-c".into(),
            format!("show bgp {family} unicast neighbors {peer} advertised-routes json"),
        ])
    }

    fn parse_advertised(&self, out: &str) -> Result<Vec<String>, ReadError> {
        let v: Value = serde_json::from_str(out).map_err(|e| read_error(self, format!("advertised-routes: {e}")))?;
        Ok(v["advertisedRoutes"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default())
    }

    fn rib_command(&self) -> Option<Vec<String>> {
        Some(
            [
                "vtysh",
                "-c",
                "show bgp ipv4 unicast json",
                "-c",
                "show bgp ipv6 unicast json",
            ]
            .map(String::from)
            .to_vec(),
        )
    }

    /// Two JSON documents, one per family; a family not configured prints `{}`.
    fn parse_rib(&self, out: &str) -> Result<Vec<super::RibRoute>, ReadError> {
        super::rib_of_json_documents(
            self,
            out,
            "show bgp ... json",
            |doc| &doc["routes"],
            |p| {
                // Its own (redistributed, `network`) have no peer address.
                let from = p["peerId"].as_str().filter(|a| a.parse::<std::net::IpAddr>().is_ok())?;
                let hops = p["nexthops"].as_array().cloned().unwrap_or_default();
                let global = hops
                    .iter()
                    .find(|h| h["scope"].as_str().is_none_or(|s| s == "global"))
                    .or(hops.first());
                Some(super::RibPath {
                    from: from.to_string(),
                    next_hop: global.and_then(|h| h["ip"].as_str()).map(String::from),
                    as_path_len: p["path"].as_str().unwrap_or_default().split_whitespace().count(),
                    best: p["bestpath"] == true || p["multipath"] == true,
                    // FRR lists what its import took, usable or not.
                    accepted: true,
                    stale: p["stale"] == true,
                })
            },
        )
    }

    fn parse_sessions(&self, out: &str) -> Result<Vec<Session>, ReadError> {
        let mut docs = serde_json::Deserializer::from_str(out).into_iter::<Value>();
        let v = docs
            .next()
            .ok_or_else(|| read_error(self, "no output"))?
            .map_err(|e| read_error(self, format!("not JSON: {e}")))?;
        let neighbors = docs.next().and_then(Result::ok).unwrap_or(Value::Null);
        let families = v
            .as_object()
            .ok_or_else(|| read_error(self, "expected a JSON object"))?;
        let mut by_peer: BTreeMap<String, Session> = BTreeMap::new();
        for family in families.values() {
            let Some(peers) = family.get("peers").and_then(Value::as_object) else {
                continue;
            };
            for (addr, p) in peers {
                let state = p.get("state").and_then(Value::as_str).unwrap_or("Idle");
                let received = p.get("pfxRcd").and_then(Value::as_u64);
                let s = by_peer.entry(addr.clone()).or_insert_with(|| Session {
                    peer: addr.clone(),
                    remote_as: p
                        .get("remoteAs")
                        .and_then(Value::as_u64)
                        .filter(|a| *a != 0)
                        .map(|a| a as u32),
                    state: normalize_state(state),
                    uptime_secs: (state == "Established")
                        .then(|| p.get("peerUptimeMsec").and_then(Value::as_u64).map(|ms| ms / 1000))
                        .flatten(),
                    prefixes_received: None,
                    info: why_down(p, &neighbors[addr.as_str()]),
                });
                if let Some(n) = received {
                    *s.prefixes_received.get_or_insert(0) += n;
                }
            }
        }
        Ok(by_peer.into_values().collect())
    }
}

/// Why a session is down, as FRR says it: the last NOTIFICATION, the last reset's
/// cause, or the state's own note ("Idle (PfxCt)").
fn why_down(summary: &Value, neighbor: &Value) -> Option<String> {
    if summary.get("state").and_then(Value::as_str) == Some("Established") {
        return None;
    }
    let mut parts: Vec<String> = Vec::new();
    for v in [
        summary.get("state"),
        neighbor.get("lastNotificationReason"),
        neighbor.get("lastResetDueTo"),
    ]
    .into_iter()
    .flatten()
    .filter_map(Value::as_str)
    {
        if v.contains('(') || !matches!(v, "Idle" | "Active" | "Connect" | "OpenSent" | "OpenConfirm") {
            parts.push(v.to_string());
        }
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rib_reads_every_path_of_both_families() {
        let out = include_str!("testdata/frr-bgp-routes-rr.json");
        let rib = Frr.parse_rib(out).unwrap();
        assert_eq!(rib.len(), 6);
        let v6 = rib.iter().find(|r| r.prefix == "fd00:244:0:2::/122").unwrap();
        assert_eq!(v6.paths[0].from, "fd00::12");
        assert_eq!(v6.paths[0].next_hop.as_deref(), Some("fd00::12"), "the global next hop");
        assert!(v6.paths[0].best && v6.paths[0].accepted && !v6.paths[0].stale);
        assert_eq!(v6.paths[0].as_path_len, 0);
    }

    #[test]
    fn communities_of_the_best_path() {
        let out = include_str!("testdata/frr-route-communities.json");
        assert_eq!(
            Frr.parse_communities(out, "10.244.1.0/26").unwrap(),
            ["65000:100", "65000:200", "65000:1:2"]
        );
        assert_eq!(Frr.parse_communities("{\n}\n", "10.244.1.0/26"), None);
    }

    #[test]
    fn established_and_active_peers() {
        let up = Frr
            .parse_sessions(include_str!("testdata/frr-summary-up.json"))
            .unwrap();
        assert_eq!(up.len(), 3);
        let n1 = up.iter().find(|s| s.peer == "10.1.1.1").unwrap();
        assert_eq!(n1.remote_as, Some(65101));
        assert_eq!(n1.state, "Established");
        assert_eq!(n1.prefixes_received, Some(1));
        assert!(n1.uptime_secs.is_some());

        let down = Frr
            .parse_sessions(include_str!("testdata/frr-summary-down.json"))
            .unwrap();
        let tor2 = down.iter().find(|s| s.peer == "10.0.255.1").unwrap();
        assert_eq!(tor2.state, "Active");
        assert_eq!(tor2.uptime_secs, None);
        assert_eq!(tor2.remote_as, Some(65002));
    }

    #[test]
    fn why_a_session_is_down_comes_from_the_neighbors() {
        // Read on a lab node after x1 sent 16 prefixes over a session limited to 10.
        let s = Frr
            .parse_sessions(include_str!("testdata/frr-summary-neighbors-pfxct.json"))
            .unwrap();
        let x1 = s.iter().find(|s| s.peer == "10.0.0.100").unwrap();
        let info = x1.info.as_deref().unwrap();
        assert!(
            info.contains("PfxCt") && info.contains("Maximum Number of Prefixes"),
            "{info}"
        );
        let n2 = s.iter().find(|s| s.peer == "10.0.0.12").unwrap();
        assert_eq!(n2.state, "Established");
        assert_eq!(n2.info, None);
    }

    #[test]
    fn garbage_is_an_error_naming_the_command() {
        let e = Frr.parse_sessions("% Unknown command").unwrap_err();
        assert!(e.to_string().contains("vtysh -c show bgp summary json"), "{e}");
    }
}
