//! ExaBGP 4.2 (Debian's `python3-exabgp`): a scripted peer that sends what a case
//! says (a malformed or unknown attribute, more prefixes than a limit) and shows what
//! it received. Read with `exabgp-cli show neighbor extensive`, one block per
//! neighbor; the CLI talks to the daemon over the named pipes
//! `/run/exabgp/exabgp.{in,out}`, which `exabgp-start` (the base image's) makes.

use super::{normalize_state, read_error, Implementation, ReadError, Session};

pub struct Exabgp;

impl Implementation for Exabgp {
    fn name(&self) -> &'static str {
        "exabgp"
    }

    fn sessions_command(&self) -> Vec<String> {
        ["exabgp-cli", "show", "neighbor", "extensive"]
            .map(String::from)
            .to_vec()
    }

    fn daemon(&self) -> Option<super::Daemon> {
        Some(super::Daemon {
            pid_file: "/run/exabgp/exabgp.pid",
            reload: "kill -USR1 \"$(cat /run/exabgp/exabgp.pid)\"",
            drain: None,
            stop: "kill -TERM \"$(cat /run/exabgp/exabgp.pid)\"",
            kill: "kill -KILL \"$(cat /run/exabgp/exabgp.pid)\"",
            // The base image's starter (images/base/customize.sh).
            start: "exabgp-start",
            log: "/var/log/exabgp.log",
        })
    }

    /// One block per neighbor:
    ///
    /// ```text
    /// Neighbor 10.0.0.11
    ///
    ///   Session                         Local
    ///    local                     10.0.0.100
    ///    state                    ESTABLISHED
    ///    up for                       0:00:06
    ///
    ///   Setup                           Local          Remote
    ///    AS                             65000           64512
    /// ...
    ///   Message Statistic                Sent        Received
    ///    update:                            1               3
    /// ```
    fn parse_sessions(&self, out: &str) -> Result<Vec<Session>, ReadError> {
        let mut sessions = Vec::new();
        let mut cur: Option<Session> = None;
        for line in out.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["Neighbor", addr] => {
                    sessions.extend(cur.take());
                    cur = Some(Session {
                        peer: addr.to_string(),
                        remote_as: None,
                        state: "Idle".into(),
                        uptime_secs: None,
                        prefixes_received: None,
                        info: None,
                    });
                }
                _ => {
                    let Some(s) = cur.as_mut() else {
                        if !line.trim().is_empty() {
                            return Err(read_error(self, format!("a line before any `Neighbor`: {line:?}")));
                        }
                        continue;
                    };
                    match words.as_slice() {
                        ["local", addr] => s.info = Some(format!("from {addr}")),
                        ["state", state] => s.state = normalize_state(state),
                        ["up", "for", t] => s.uptime_secs = duration(t),
                        ["AS", _local, remote] => s.remote_as = remote.parse().ok(),
                        _ => {}
                    }
                }
            }
        }
        sessions.extend(cur);
        Ok(sessions)
    }
}

/// `H:MM:SS` (or `N days, H:MM:SS`, Python's timedelta) in seconds.
fn duration(t: &str) -> Option<u64> {
    let mut secs = 0;
    for part in t.split(':') {
        secs = secs * 60 + part.parse::<u64>().ok()?;
    }
    Some(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_neighbors_one_up() {
        let s = Exabgp
            .parse_sessions(include_str!("testdata/exabgp-neighbors.txt"))
            .unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].peer, "10.0.0.11");
        assert_eq!(s[0].state, "Established");
        assert_eq!(s[0].remote_as, Some(64512));
        assert_eq!(s[0].uptime_secs, Some(6));
        assert_eq!(s[0].info.as_deref(), Some("from 10.0.0.100"));
        assert_eq!(s[1].state, "Idle");
        assert_eq!(s[1].uptime_secs, None);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(Exabgp.parse_sessions("Traceback (most recent call last):").is_err());
        assert!(Exabgp.parse_sessions("").unwrap().is_empty());
    }
}
