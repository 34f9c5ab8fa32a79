//! BIRD 2: `birdc show protocols all`, text. A block per protocol; BGP blocks carry
//! `BGP state`, `Neighbor address`, `Neighbor AS`, and per channel a `Routes:` line.
//! With `timeformat protocol iso long` the Since column is a full timestamp, which gives
//! an uptime; other formats leave it unknown.

use super::{normalize_state, read_error, Implementation, ReadError, Session};

pub struct Bird;

impl Implementation for Bird {
    fn name(&self) -> &'static str {
        "bird"
    }

    fn sessions_command(&self) -> Vec<String> {
        ["birdc", "-s", "/run/bird/bird.ctl", "show", "protocols", "all"]
            .map(String::from)
            .to_vec()
    }

    fn daemon(&self) -> Option<super::Daemon> {
        Some(super::Daemon {
            pid_file: "/run/bird/bird.pid",
            reload: "birdc -s /run/bird/bird.ctl configure",
            drain: None,
            stop: "kill -TERM \"$(cat /run/bird/bird.pid)\"",
            kill: "kill -KILL \"$(cat /run/bird/bird.pid)\"",
            // `-R`: a restarted BIRD recovers gracefully (sets the Restart State bit,
            // keeps its kernel routes, waits for its peers' End-of-RIB before it
            // sends its own), as calico-node runs it. Without it, a restarted route
            // reflector sends End-of-RIB to its first client before it has heard the
            // others, and that client flushes their stale routes (seen in GR-01).
            start: "kill -0 \"$(cat /run/bird/bird.pid 2>/dev/null)\" 2>/dev/null || { mkdir -p /run/bird && bird -R -c /etc/bird/bird.conf -s /run/bird/bird.ctl -P /run/bird/bird.pid; }",
            log: "/var/log/bird.log",
        })
    }

    fn route_command(&self, prefix: &str) -> Option<Vec<String>> {
        Some(
            [
                "birdc",
                "-s",
                "/run/bird/bird.ctl",
                "show",
                "route",
                "all",
                "for",
                prefix,
            ]
            .map(String::from)
            .to_vec(),
        )
    }

    /// The first (best) route's `BGP.originator_id` and `BGP.cluster_list` lines.
    fn parse_reflection(&self, out: &str, _prefix: &str) -> Option<(Option<String>, Vec<String>)> {
        if !out.contains("BGP.") {
            return None;
        }
        let mut originator = None;
        let mut clusters = Vec::new();
        for line in out.lines().map(str::trim) {
            if line.contains(" unicast [") && (originator.is_some() || !clusters.is_empty()) {
                break;
            }
            if let Some(v) = line.strip_prefix("BGP.originator_id:") {
                originator = Some(v.trim().to_string());
            } else if let Some(v) = line.strip_prefix("BGP.cluster_list:") {
                clusters = v.split_whitespace().map(String::from).collect();
            }
        }
        Some((originator, clusters))
    }

    /// The first (best) route's `BGP.community` (`(65000,100) (65000,200)`) and
    /// `BGP.large_community` (`(65000, 1, 2)`), where that route is `prefix` itself
    /// (`show route for` answers with the longest match).
    fn parse_communities(&self, out: &str, prefix: &str) -> Option<Vec<String>> {
        let mut lines = out.lines().skip_while(|l| !l.starts_with(prefix));
        let first = lines.next()?;
        if first.split_whitespace().next() != Some(prefix) {
            return None;
        }
        let mut found = Vec::new();
        for line in lines.map(str::trim) {
            if line.contains(" unicast [") {
                break;
            }
            let Some(list) = line
                .strip_prefix("BGP.community:")
                .or_else(|| line.strip_prefix("BGP.large_community:"))
            else {
                continue;
            };
            let list: String = list.chars().filter(|c| !c.is_whitespace()).collect();
            found.extend(
                list.split(')')
                    .map(|c| c.trim_start_matches('('))
                    .filter(|c| !c.is_empty())
                    .map(|c| c.replace(',', ":")),
            );
        }
        Some(found)
    }

    fn capabilities_command(&self, _peer: &str) -> Option<Vec<String>> {
        Some(self.sessions_command())
    }

    /// In the protocol whose `Neighbor address` is `peer`, the capabilities listed both
    /// under `Local capabilities` and `Neighbor capabilities`.
    fn parse_capabilities(&self, out: &str, peer: &str) -> Result<Vec<String>, ReadError> {
        // A protocol's block: its unindented name line and the indented lines after it.
        let mut block = Vec::new();
        let mut found = false;
        for line in out.lines() {
            if !line.starts_with(char::is_whitespace) && !line.trim().is_empty() {
                if found {
                    break;
                }
                block.clear();
            }
            block.push(line);
            found |= line.trim() == format!("Neighbor address: {peer}");
        }
        if !found {
            return Err(read_error(self, format!("no protocol with neighbor {peer}")));
        }
        let block = block.join("\n");
        let section = |title: &str| -> Vec<String> {
            let mut lines = block.lines().skip_while(|l| l.trim() != title);
            let Some(head) = lines.next() else { return Vec::new() };
            let indent = head.len() - head.trim_start().len();
            lines
                .take_while(|l| l.len() - l.trim_start().len() > indent)
                .map(|l| l.trim().to_string())
                .collect()
        };
        let name = |lines: &[String]| -> Vec<&'static str> {
            let mut out = Vec::new();
            for l in lines {
                match l.as_str() {
                    "4-octet AS numbers" => out.push("4-octet-as"),
                    "Route refresh" => out.push("route-refresh"),
                    "Graceful restart" => out.push("graceful-restart"),
                    l if l.starts_with("AF announced:") => {
                        if l.contains("ipv4") {
                            out.push("ipv4-unicast");
                        }
                        if l.contains("ipv6") {
                            out.push("ipv6-unicast");
                        }
                    }
                    _ => {}
                }
            }
            out
        };
        let (local, neighbor) = (section("Local capabilities"), section("Neighbor capabilities"));
        if local.is_empty() || neighbor.is_empty() {
            return Err(read_error(self, format!("no capabilities listed for {peer}")));
        }
        let theirs = name(&neighbor);
        Ok(name(&local)
            .into_iter()
            .filter(|c| theirs.contains(c))
            .map(String::from)
            .collect())
    }

    fn parse_sessions(&self, out: &str) -> Result<Vec<Session>, ReadError> {
        if !out.contains("Name") || !out.contains("Proto") {
            return Err(read_error(self, format!("no protocol table in output: {}", out.trim())));
        }
        let mut sessions = Vec::new();
        let mut cur: Option<(Session, Option<String>)> = None;
        for line in out.lines() {
            if !line.starts_with(char::is_whitespace) && !line.trim().is_empty() {
                if let Some((s, _)) = cur.take() {
                    sessions.push(s);
                }
                let cols: Vec<&str> = line.split_whitespace().collect();
                if cols.get(1) == Some(&"BGP") {
                    // Name Proto Table State Since... Info
                    let proto_up = cols.get(3) == Some(&"up");
                    let since = since_secs(&cols[4..]);
                    cur = Some((
                        Session {
                            peer: String::new(),
                            remote_as: None,
                            state: "Idle".into(),
                            uptime_secs: if proto_up { since } else { None },
                            prefixes_received: None,
                            info: (!proto_up).then(|| cols[4..].join(" ")).filter(|s| !s.is_empty()),
                        },
                        Some(cols[0].to_string()),
                    ));
                }
                continue;
            }
            let Some((s, _)) = cur.as_mut() else { continue };
            let t = line.trim();
            if let Some(v) = t.strip_prefix("BGP state:") {
                s.state = normalize_state(v);
            } else if let Some(v) = t.strip_prefix("Neighbor address:") {
                s.peer = v.trim().split('%').next().unwrap_or("").to_string();
            } else if let Some(v) = t.strip_prefix("Neighbor AS:") {
                s.remote_as = v.trim().parse().ok();
            } else if let Some(v) = t.strip_prefix("Last error:") {
                s.info = Some(v.trim().to_string());
            } else if let Some(v) = t.strip_prefix("Routes:") {
                // "Routes: 3 imported, 0 filtered, 2 exported, 1 preferred"
                if let Some(n) = v.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()) {
                    *s.prefixes_received.get_or_insert(0) += n;
                }
            }
        }
        if let Some((s, _)) = cur.take() {
            sessions.push(s);
        }
        for s in &mut sessions {
            if s.state != "Established" {
                s.uptime_secs = None;
            }
        }
        Ok(sessions)
    }
}

/// Seconds since a `YYYY-MM-DD HH:MM:SS[.fff]` UTC timestamp (BIRD's iso long format).
fn since_secs(cols: &[&str]) -> Option<u64> {
    let then = crate::clock::parse_utc(cols.first()?, cols.get(1)?)?;
    let secs = crate::clock::now() - then;
    (secs >= 0.0).then_some(secs as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn communities_of_the_route_itself() {
        let v4 = include_str!("testdata/bird-route-communities-v4.txt");
        assert_eq!(
            Bird.parse_communities(v4, "10.244.1.0/26").unwrap(),
            ["65000:100", "65000:200", "65000:1:2"]
        );
        let v6 = include_str!("testdata/bird-route-communities-v6.txt");
        assert_eq!(
            Bird.parse_communities(v6, "fd00:244:0:1::/122").unwrap(),
            ["65000:100", "65000:1:2"]
        );
        // `show route for` answers with the longest match: a covering route is not it.
        assert_eq!(Bird.parse_communities(v4, "10.244.1.5/32"), None);
        assert_eq!(
            Bird.parse_communities("BIRD 2.0.12 ready.\nNetwork not found\n", "10.244.1.0/26"),
            None
        );
    }

    #[test]
    fn established_session() {
        let s = Bird
            .parse_sessions(include_str!("testdata/bird-protocols-up.txt"))
            .unwrap();
        assert_eq!(s.len(), 1, "only BGP protocols are sessions: {s:?}");
        assert_eq!(s[0].peer, "10.1.1.0");
        assert_eq!(s[0].remote_as, Some(65001));
        assert_eq!(s[0].state, "Established");
        assert_eq!(s[0].prefixes_received, Some(3));
        assert!(s[0].uptime_secs.is_some());
    }

    #[test]
    fn active_session_says_why() {
        let s = Bird
            .parse_sessions(include_str!("testdata/bird-protocols-down.txt"))
            .unwrap();
        assert_eq!(s[0].state, "Active");
        assert_eq!(s[0].uptime_secs, None);
        assert_eq!(s[0].info.as_deref(), Some("Socket: Connection refused"));
    }

    #[test]
    fn no_table_is_an_error() {
        assert!(Bird
            .parse_sessions("Unable to connect to server control socket")
            .is_err());
    }
}
