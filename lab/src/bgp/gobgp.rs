//! GoBGP 3: `gobgp -j neighbor`, a JSON list of peers (protobuf field names; the
//! session state as a number or a name, depending on the version).

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
}
