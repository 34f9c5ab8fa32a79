//! GoBGP 3: `gobgp -j neighbor`, a JSON list of peers (protobuf field names; the
//! session state as a number or a name, depending on the version), and `gobgp global
//! rib -j`, an object of prefixes, each a list of paths with their attributes by type
//! code (RFC 4271's numbers: 2 AS_PATH, 3 NEXT_HOP, 8 COMMUNITIES, 9 ORIGINATOR_ID,
//! 10 CLUSTER_LIST, 32 LARGE_COMMUNITY).

use serde_json::Value;

use super::{normalize_state, read_error, Implementation, ReadError, Session};

pub struct Gobgp;

impl Implementation for Gobgp {
    fn name(&self) -> &'static str {
        "gobgp"
    }

    fn sessions_command(&self) -> Vec<String> {
        ["gobgp", "-j", "neighbor"].map(String::from).to_vec()
    }

    fn daemon(&self) -> Option<super::Daemon> {
        Some(super::Daemon {
            pid_file: "/run/gobgp/gobgpd.pid",
            // gobgpd reads its configuration file again on SIGHUP.
            reload: "kill -HUP \"$(cat /run/gobgp/gobgpd.pid)\"",
            drain: None,
            stop: "kill -TERM \"$(cat /run/gobgp/gobgpd.pid)\"",
            kill: "kill -KILL \"$(cat /run/gobgp/gobgpd.pid)\"",
            // `-r`: a restarted gobgpd recovers gracefully (sets the Restart State bit
            // and defers its End-of-RIB until its peers have sent theirs), as BIRD's
            // `-R`: a reflector that sent End-of-RIB to its first client before it
            // heard the others would have that client flush their stale routes.
            start: "kill -0 \"$(cat /run/gobgp/gobgpd.pid 2>/dev/null)\" 2>/dev/null || { mkdir -p /run/gobgp; gobgpd -r -f /etc/gobgp/gobgpd.toml -t toml --log-plain >>/var/log/gobgpd.log 2>&1 & echo $! >/run/gobgp/gobgpd.pid; }",
            log: "/var/log/gobgpd.log",
        })
    }

    fn announce(&self, prefix: &str) -> Option<(String, String)> {
        let family = if prefix.contains(':') { "-a ipv6" } else { "-a ipv4" };
        Some((
            format!("gobgp global rib {family} add {prefix}"),
            format!("gobgp global rib {family} del {prefix}"),
        ))
    }

    fn advertised_command(&self, peer: &str) -> Option<Vec<String>> {
        let family = if peer.contains(':') { "ipv6" } else { "ipv4" };
        Some(
            ["gobgp", "neighbor", peer, "adj-out", "-a", family, "-j"]
                .map(String::from)
                .to_vec(),
        )
    }

    /// A JSON object keyed by prefix, or a list of destinations with their prefix.
    fn parse_advertised(&self, out: &str) -> Result<Vec<String>, ReadError> {
        if out.trim().is_empty() {
            return Ok(Vec::new());
        }
        let v: Value = serde_json::from_str(out).map_err(|e| read_error(self, format!("adj-out: {e}")))?;
        Ok(match &v {
            Value::Object(m) => m.keys().cloned().collect(),
            Value::Array(list) => list
                .iter()
                .filter_map(|d| d["prefix"].as_str().or(d["nlri"]["prefix"].as_str()).map(String::from))
                .collect(),
            _ => Vec::new(),
        })
    }

    fn route_command(&self, prefix: &str) -> Option<Vec<String>> {
        let family = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        Some(
            ["gobgp", "-j", "global", "rib", "-a", family, prefix]
                .map(String::from)
                .to_vec(),
        )
    }

    fn parse_reflection(&self, out: &str, prefix: &str) -> Option<(Option<String>, Vec<String>)> {
        let best = best_path(out, prefix)?;
        let originator = attr(&best, 9).and_then(|a| a["value"].as_str()).map(String::from);
        let clusters = attr(&best, 10)
            .and_then(|a| a["value"].as_array())
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str().map(String::from))
            .collect();
        Some((originator, clusters))
    }

    /// Standard communities come as 32-bit numbers, written `a:b` here as BIRD's are.
    fn parse_communities(&self, out: &str, prefix: &str) -> Option<Vec<String>> {
        let best = best_path(out, prefix)?;
        let standard = attr(&best, 8)
            .and_then(|a| a["communities"].as_array())
            .into_iter()
            .flatten()
            .filter_map(Value::as_u64)
            .map(|c| format!("{}:{}", c >> 16, c & 0xffff))
            .collect::<Vec<_>>();
        let large = attr(&best, 32)
            .and_then(|a| a["value"].as_array())
            .into_iter()
            .flatten()
            .map(|l| format!("{}:{}:{}", l["ASN"], l["LocalData1"], l["LocalData2"]))
            .collect::<Vec<_>>();
        Some([standard, large].concat())
    }

    fn capabilities_command(&self, peer: &str) -> Option<Vec<String>> {
        Some(["gobgp", "-j", "neighbor", peer].map(String::from).to_vec())
    }

    /// The capabilities in both `local_cap` and `remote_cap`: protobuf `Any`s, named by
    /// their type; a multiprotocol one's family is its value, `Family{afi, safi}`
    /// encoded (deterministically: the same bytes, so the same base64, each time).
    fn parse_capabilities(&self, out: &str, peer: &str) -> Result<Vec<String>, ReadError> {
        let v: Value = serde_json::from_str(out).map_err(|e| read_error(self, format!("not JSON: {e}")))?;
        let state = &v["state"];
        if state["neighbor_address"].as_str() != Some(peer) {
            return Err(read_error(
                self,
                format!("no neighbor {peer} in `gobgp -j neighbor {peer}`"),
            ));
        }
        let caps = |side: &str| -> Vec<(String, String)> {
            state[side]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    let kind = c["type_url"].as_str().unwrap_or_default();
                    let kind = kind.rsplit('.').next().unwrap_or_default().to_string();
                    (kind, c["value"].as_str().unwrap_or_default().to_string())
                })
                .collect()
        };
        let (local, remote) = (caps("local_cap"), caps("remote_cap"));
        let both = |kind: &str, value: Option<&str>| {
            let has = |list: &[(String, String)]| {
                list.iter()
                    .any(|(k, v)| k == kind && value.is_none_or(|want| v == want))
            };
            has(&local) && has(&remote)
        };
        let mut found = Vec::new();
        for (name, kind, value) in [
            ("4-octet-as", "FourOctetASNCapability", None),
            ("route-refresh", "RouteRefreshCapability", None),
            ("graceful-restart", "GracefulRestartCapability", None),
            // Family{afi: 1 or 2, safi: 1}: 0a 04 08 AFI 10 01.
            ("ipv4-unicast", "MultiProtocolCapability", Some("CgQIARAB")),
            ("ipv6-unicast", "MultiProtocolCapability", Some("CgQIAhAB")),
        ] {
            if both(kind, value) {
                found.push(name.to_string());
            }
        }
        Ok(found)
    }

    fn rib_command(&self) -> Option<Vec<String>> {
        Some(
            ["sh", "-c", "gobgp -j global rib -a ipv4 && gobgp -j global rib -a ipv6"]
                .map(String::from)
                .to_vec(),
        )
    }

    /// The paths received from peers (its own have no `neighbor-ip`). GoBGP lists
    /// what its import policy took; `best` marks one path.
    fn parse_rib(&self, out: &str) -> Result<Vec<super::RibRoute>, ReadError> {
        super::rib_of_json_documents(
            self,
            out,
            "gobgp -j global rib",
            |doc| doc,
            |p| {
                let as_path_len = attr(p, 2)
                    .and_then(|a| a["as_paths"].as_array())
                    .into_iter()
                    .flatten()
                    .map(|seg| seg["asns"].as_array().map_or(0, Vec::len))
                    .sum();
                Some(super::RibPath {
                    from: p["neighbor-ip"].as_str()?.to_string(),
                    next_hop: attr(p, 3)
                        .or_else(|| attr(p, 14))
                        .and_then(|a| a["nexthop"].as_str())
                        .map(String::from),
                    as_path_len,
                    best: p["best"] == true,
                    accepted: true,
                    stale: p["stale"] == true,
                })
            },
        )
    }

    fn parse_sessions(&self, out: &str) -> Result<Vec<Session>, ReadError> {
        let v: Value = serde_json::from_str(out).map_err(|e| read_error(self, format!("not JSON: {e}")))?;
        let peers = v.as_array().ok_or_else(|| read_error(self, "expected a JSON list"))?;
        let mut out = Vec::new();
        for p in peers {
            let conf = &p["conf"];
            let state = &p["state"];
            let addr = conf["neighbor_address"]
                .as_str()
                .or_else(|| state["neighbor_address"].as_str())
                .ok_or_else(|| read_error(self, "a peer without neighbor_address"))?;
            let st = match &state["session_state"] {
                Value::Number(n) => normalize_state(&n.to_string()),
                Value::String(s) => normalize_state(s),
                _ => "Idle".to_string(),
            };
            let uptime = p["timers"]["state"]["uptime"]["seconds"]
                .as_i64()
                .filter(|_| st == "Established")
                .and_then(|t| {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .ok()?;
                    u64::try_from(now.as_secs() as i64 - t).ok()
                });
            let received = p["afi_safis"]
                .as_array()
                .map(|fams| fams.iter().filter_map(|f| f["state"]["received"].as_u64()).sum::<u64>());
            out.push(Session {
                peer: addr.to_string(),
                remote_as: conf["peer_asn"]
                    .as_u64()
                    .or_else(|| state["peer_asn"].as_u64())
                    .map(|a| a as u32),
                state: st,
                uptime_secs: uptime,
                prefixes_received: received,
                info: None,
            });
        }
        Ok(out)
    }
}

/// The best path to exactly `prefix` in `gobgp -j global rib ... PREFIX`'s output,
/// or its first; `None` when there is none.
fn best_path(out: &str, prefix: &str) -> Option<Value> {
    let v: Value = serde_json::from_str(out).ok()?;
    let paths = v.get(prefix)?.as_array()?;
    paths.iter().find(|p| p["best"] == true).or(paths.first()).cloned()
}

/// A path's attribute of type code `code`.
fn attr(path: &Value, code: u64) -> Option<&Value> {
    path["attrs"]
        .as_array()?
        .iter()
        .find(|a| a["type"].as_u64() == Some(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflector_clients() {
        let up = Gobgp
            .parse_sessions(include_str!("testdata/gobgp-neighbor-up.json"))
            .unwrap();
        assert_eq!(up.len(), 4);
        assert!(
            up.iter()
                .all(|s| s.state == "Established" && s.remote_as == Some(64512)),
            "{up:?}"
        );
        assert_eq!(up[0].peer, "10.0.0.11");
        assert_eq!(up[0].prefixes_received, Some(1));

        let down = Gobgp
            .parse_sessions(include_str!("testdata/gobgp-neighbor-down.json"))
            .unwrap();
        let n1 = down.iter().find(|s| s.peer == "10.0.0.11").unwrap();
        assert_eq!(n1.state, "Idle");
        assert_eq!(n1.uptime_secs, None);
    }

    #[test]
    fn communities_and_reflection_of_the_best_path() {
        let out = include_str!("testdata/gobgp-rib-prefix.json");
        assert_eq!(
            Gobgp.parse_communities(out, "10.42.0.0/26").unwrap(),
            ["64512:100", "65535:65281", "64512:1:2"]
        );
        assert_eq!(Gobgp.parse_communities(out, "10.42.9.0/26"), None);
        assert_eq!(Gobgp.parse_communities("{}", "10.42.0.0/26"), None);
        let reflected = include_str!("testdata/gobgp-rib-reflected.json");
        assert_eq!(
            Gobgp.parse_reflection(reflected, "10.42.0.64/26").unwrap(),
            (Some("10.99.0.1".into()), vec!["10.99.0.2".to_string()])
        );
        assert_eq!(Gobgp.parse_reflection(out, "10.42.0.0/26").unwrap(), (None, vec![]));
    }

    #[test]
    fn rib_of_both_families_with_sources_and_path_lengths() {
        // A reflector's RIB (ipv4), then an empty ipv6 one, as the command prints them.
        let out = format!("{}\n{{}}\n", include_str!("testdata/gobgp-rib.json").trim());
        let rib = Gobgp.parse_rib(&out).unwrap();
        assert_eq!(rib.len(), 2);
        let p = &rib.iter().find(|r| r.prefix == "10.42.0.0/26").unwrap().paths[0];
        assert_eq!(p.from, "10.99.0.1");
        assert_eq!(p.next_hop.as_deref(), Some("10.99.0.1"));
        assert!(p.best && p.accepted && !p.stale);
        assert_eq!(p.as_path_len, 0);
        let two = r#"{"10.42.1.0/26":[{"nlri":{"prefix":"10.42.1.0/26"},"best":true,"attrs":[{"type":2,"as_paths":[{"segment_type":2,"num":2,"asns":[65001,65002]}]},{"type":3,"nexthop":"10.99.0.1"}],"stale":true,"neighbor-ip":"10.99.0.1"}]}"#;
        let p = &Gobgp.parse_rib(two).unwrap()[0].paths[0];
        assert_eq!((p.as_path_len, p.stale), (2, true));
        // Its own routes are not received from anyone.
        let own = include_str!("testdata/gobgp-rib-prefix.json").replace("\"neighbor-ip\":\"10.99.0.1\"", "\"x\":1");
        assert!(Gobgp.parse_rib(&own).unwrap()[0].paths.is_empty());
        assert!(Gobgp.parse_rib("not json").is_err());
    }

    #[test]
    fn capabilities_both_sides_have() {
        let out = include_str!("testdata/gobgp-neighbor-caps.json");
        assert_eq!(
            Gobgp.parse_capabilities(out, "10.99.0.1").unwrap(),
            ["4-octet-as", "route-refresh", "graceful-restart", "ipv4-unicast"]
        );
        // A capability one side lacks is not the session's.
        let one_sided = out.replacen("type.googleapis.com/apipb.GracefulRestartCapability", "x.Other", 1);
        assert_eq!(
            Gobgp.parse_capabilities(&one_sided, "10.99.0.1").unwrap(),
            ["4-octet-as", "route-refresh", "ipv4-unicast"]
        );
        assert!(Gobgp.parse_capabilities(out, "10.99.0.9").is_err());
    }
}
