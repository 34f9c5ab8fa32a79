//! FRR: `vtysh -c 'show bgp summary json'`, one object per address family, each with
//! its peers. A peer active in several families is one session.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{normalize_state, read_error, BgpKind, ReadError, Session};

pub struct Frr;

impl BgpKind for Frr {
    fn name(&self) -> &'static str {
        "frr"
    }

    fn sessions_command(&self) -> Vec<String> {
        ["vtysh", "-c", "show bgp summary json"].map(String::from).to_vec()
    }

    /// FRR runs under watchfrr, as it does in production: a killed bgpd is started
    /// again by watchfrr; a stop stops every FRR daemon (zebra removes its routes).
    fn daemon(&self) -> Option<super::Daemon> {
        Some(super::Daemon {
            pid_file: "/var/run/frr/bgpd.pid",
            drain: None,
            stop: "/usr/lib/frr/frrinit.sh stop",
            kill: "kill -KILL \"$(cat /var/run/frr/bgpd.pid)\"",
            start: "/usr/lib/frr/frrinit.sh start",
            log: "/var/log/frr/frr.log",
        })
    }

    fn parse_sessions(&self, out: &str) -> Result<Vec<Session>, ReadError> {
        let v: Value = serde_json::from_str(out).map_err(|e| read_error(self, format!("not JSON: {e}")))?;
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
                    info: p
                        .get("lastNotificationReason")
                        .or_else(|| p.get("lastResetDueTo"))
                        .and_then(Value::as_str)
                        .map(String::from),
                });
                if let Some(n) = received {
                    *s.prefixes_received.get_or_insert(0) += n;
                }
            }
        }
        Ok(by_peer.into_values().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn garbage_is_an_error_naming_the_command() {
        let e = Frr.parse_sessions("% Unknown command").unwrap_err();
        assert!(e.to_string().contains("vtysh -c show bgp summary json"), "{e}");
    }
}
