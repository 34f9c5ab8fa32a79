//! Our speaker: `speaker status --json`, read over its local API like any other kind.

use serde_json::Value;

use super::{normalize_state, read_error, Implementation, ReadError, Session};

pub struct Speaker;

impl Implementation for Speaker {
    fn name(&self) -> &'static str {
        "speaker"
    }

    fn sessions_command(&self) -> Vec<String> {
        ["speaker", "status", "--json"].map(String::from).to_vec()
    }

    fn daemon(&self) -> Option<super::Daemon> {
        Some(super::Daemon {
            pid_file: "/run/speaker/speaker.pid",
            reload: "kill -HUP \"$(cat /run/speaker/speaker.pid)\"",
            drain: Some(("speaker drain", "speaker undrain")),
            stop: "kill -TERM \"$(cat /run/speaker/speaker.pid)\"",
            kill: "kill -KILL \"$(cat /run/speaker/speaker.pid)\"",
            // Returns once the daemon answers its API, that is once it has read its
            // configuration: a `restore` right after rewrites that file in place,
            // and a daemon still reading it would find it half written (seen: SES-05
            // "missing field `asNumber`"). A daemon that exits at start fails it.
            start: "kill -0 \"$(cat /run/speaker/speaker.pid 2>/dev/null)\" 2>/dev/null || { \
                speaker run -c /etc/speaker/speaker.yaml >>/var/log/speaker.log 2>&1 & p=$!; echo $p >/run/speaker/speaker.pid; \
                i=0; until speaker status >/dev/null 2>&1; do \
                  kill -0 $p 2>/dev/null || { echo 'speaker exited at start:' >&2; tail -n 3 /var/log/speaker.log >&2; exit 1; }; \
                  [ $i -lt 100 ] || { echo 'speaker: no API answer 10 s after start' >&2; exit 1; }; \
                  sleep 0.1; i=$((i + 1)); \
                done; }",
            log: "/var/log/speaker.log",
        })
    }

    fn settled(&self, out: &str) -> Result<(), String> {
        let v: Value = serde_json::from_str(out).map_err(|e| format!("`speaker status --json`: {e}"))?;
        match v["fib"]["stale_from_previous_run"].as_u64() {
            Some(0) => Ok(()),
            Some(n) => Err(format!(
                "keeps {n} route(s) of its previous run until every peer's End-of-RIB"
            )),
            None => Err("`speaker status --json` has no fib.stale_from_previous_run".into()),
        }
    }

    fn route_command(&self, _prefix: &str) -> Option<Vec<String>> {
        Some(["speaker", "routes", "--json"].map(String::from).to_vec())
    }

    fn parse_reflection(&self, out: &str, prefix: &str) -> Option<(Option<String>, Vec<String>)> {
        let v: Value = serde_json::from_str(out).ok()?;
        let route = v["learned"].as_array()?.iter().find(|r| r["prefix"] == prefix)?;
        let best = route["paths"].as_array()?.iter().find(|p| p["best"] == true)?;
        let attrs = &best["attrs"];
        Some((
            attrs["originator_id"].as_str().map(String::from),
            attrs["cluster_list"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str().map(String::from))
                .collect(),
        ))
    }

    fn parse_communities(&self, out: &str, prefix: &str) -> Option<Vec<String>> {
        let v: Value = serde_json::from_str(out).ok()?;
        let route = v["learned"].as_array()?.iter().find(|r| r["prefix"] == prefix)?;
        let best = route["paths"].as_array()?.iter().find(|p| p["best"] == true)?;
        let words = |attr: &str| -> Vec<String> {
            best["attrs"][attr]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str().map(String::from))
                .collect()
        };
        Some([words("communities"), words("large_communities")].concat())
    }

    fn rib_command(&self) -> Option<Vec<String>> {
        Some(["speaker", "routes", "--json"].map(String::from).to_vec())
    }

    fn parse_rib(&self, out: &str) -> Result<Vec<super::RibRoute>, ReadError> {
        let v: Value =
            serde_json::from_str(out).map_err(|e| read_error(self, format!("`speaker routes --json`: {e}")))?;
        let learned = v["learned"]
            .as_array()
            .ok_or_else(|| read_error(self, "`speaker routes --json` has no `learned` list"))?;
        Ok(learned
            .iter()
            .map(|r| super::RibRoute {
                prefix: r["prefix"].as_str().unwrap_or_default().to_string(),
                paths: r["paths"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["from"] != "local")
                    .map(|p| super::RibPath {
                        from: p["from"].as_str().unwrap_or_default().to_string(),
                        next_hop: p["next_hop"].as_str().map(String::from),
                        as_path_len: p["as_path"].as_str().unwrap_or_default().split_whitespace().count(),
                        best: p["best"] == true || p["multipath"] == true,
                        accepted: p["rejected"].is_null(),
                        stale: p["stale"] == true,
                    })
                    .collect(),
            })
            .collect())
    }

    fn parse_sessions(&self, out: &str) -> Result<Vec<Session>, ReadError> {
        let v: Value = serde_json::from_str(out).map_err(|e| read_error(self, format!("not JSON: {e}")))?;
        let peers = v["peers"]
            .as_array()
            .ok_or_else(|| read_error(self, "expected an object with a `peers` list"))?;
        peers
            .iter()
            .map(|p| {
                Ok(Session {
                    peer: p["address"]
                        .as_str()
                        .ok_or_else(|| read_error(self, "a peer without address"))?
                        .to_string(),
                    remote_as: p["remote_as"].as_u64().map(|a| a as u32),
                    state: normalize_state(p["state"].as_str().unwrap_or("Idle")),
                    uptime_secs: p["uptime_secs"].as_u64(),
                    // Accepted, as BIRD and FRR count: not what the import policy dropped.
                    prefixes_received: p["prefixes_accepted"].as_u64(),
                    info: p["info"].as_str().filter(|s| !s.is_empty()).map(String::from),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn communities_of_the_best_path() {
        let out = include_str!("testdata/speaker-route-communities.json");
        assert_eq!(
            Speaker.parse_communities(out, "10.244.1.0/26").unwrap(),
            ["65000:100", "65000:200", "65000:1:2"]
        );
        assert_eq!(Speaker.parse_communities(out, "10.244.2.0/26"), None);
    }

    #[test]
    fn the_rib_says_which_paths_were_taken() {
        let rib = Speaker
            .parse_rib(include_str!("testdata/speaker-routes-rr.json"))
            .unwrap();
        let own = rib.iter().find(|r| r.prefix == "10.244.1.0/26").unwrap();
        assert_eq!(own.paths.len(), 1, "the local path is not a received one");
        assert!(!own.paths[0].accepted, "its own block reflected back: refused");
        let other = rib.iter().find(|r| r.prefix == "10.244.2.0/26").unwrap();
        let p = &other.paths[0];
        assert_eq!(
            (p.from.as_str(), p.next_hop.as_deref()),
            ("10.0.0.2", Some("10.0.0.12"))
        );
        assert!(p.best && p.accepted && !p.stale);
    }

    #[test]
    fn counts_what_the_speaker_accepted() {
        // Its own block reflected back by FRR: received, ignored.
        let out = r#"{"as":65101,"peers":[{"address":"10.1.1.0","remote_as":65101,"state":"Established",
            "uptime_secs":12,"prefixes_received":4,"prefixes_accepted":3,"info":"Established"}]}"#;
        let s = Speaker.parse_sessions(out).unwrap();
        assert_eq!((s[0].state.as_str(), s[0].prefixes_received), ("Established", Some(3)));
    }

    #[test]
    fn settled_once_nothing_of_the_previous_run_is_kept() {
        let at = |n: u64| format!(r#"{{"fib": {{"stale_from_previous_run": {n}}}, "peers": {{}}}}"#);
        assert!(Speaker.settled(&at(0)).is_ok());
        assert!(Speaker
            .settled(&at(2))
            .unwrap_err()
            .contains("2 route(s) of its previous run"));
        assert!(Speaker.settled("{}").is_err());
    }
}
