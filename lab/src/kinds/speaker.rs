//! Our speaker: `speaker status --json`, read over its local API like any other kind.

use serde_json::Value;

use super::{normalize_state, read_error, BgpKind, ReadError, Session};

pub struct Speaker;

impl BgpKind for Speaker {
    fn name(&self) -> &'static str {
        "speaker"
    }

    fn sessions_command(&self) -> Vec<String> {
        ["speaker", "status", "--json"].map(String::from).to_vec()
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
                    prefixes_received: p["prefixes_received"].as_u64(),
                    info: p["info"].as_str().filter(|s| !s.is_empty()).map(String::from),
                })
            })
            .collect()
    }
}
