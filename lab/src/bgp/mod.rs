//! What differs per BGP implementation: the command that reads a node's sessions and
//! the parser that turns its own output into one [`Session`] shape. One file per kind,
//! as containerlab has one per node kind.

use serde::{Deserialize, Serialize};

mod bird;
mod exabgp;
mod frr;
mod gobgp;
mod speaker;

/// Values of the `lab.bgp` node label.
pub const IMPLEMENTATIONS: [&str; 5] = ["frr", "bird", "gobgp", "speaker", "exabgp"];

/// One BGP session as the implementation itself reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Peer address (or interface, for unnumbered peers).
    pub peer: String,
    pub remote_as: Option<u32>,
    /// RFC 4271 state name: Idle, Connect, Active, OpenSent, OpenConfirm, Established.
    pub state: String,
    /// Seconds in the current state, where the implementation reports it.
    pub uptime_secs: Option<u64>,
    /// Prefixes received and accepted by the import policy: BIRD's "imported",
    /// FRR's PfxRcd, GoBGP's accepted count, the speaker's `prefixes_accepted`
    /// (routes it must ignore, such as its own reflected back, do not count).
    pub prefixes_received: Option<u64>,
    /// Why a session is not up, where the implementation says (last error, admin down).
    pub info: Option<String>,
}

/// A prefix in a daemon's RIB, with every path it received for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RibRoute {
    pub prefix: String,
    pub paths: Vec<RibPath>,
}

/// A path as the daemon holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RibPath {
    /// The peer it came from (its address).
    pub from: String,
    pub next_hop: Option<String>,
    pub as_path_len: usize,
    /// Best, or in the best's multipath set.
    pub best: bool,
    /// Taken by the import policy (and, for FRR, valid).
    pub accepted: bool,
    /// Kept for a peer in graceful restart.
    pub stale: bool,
}

/// A parse failure of an implementation's output: it names the implementation and the
/// command so a user can run it by hand.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {implementation} sessions from `{command}`: {msg}")]
pub struct ReadError {
    pub implementation: &'static str,
    pub command: String,
    pub msg: String,
}

/// How to read one BGP implementation's sessions, and how its daemon is stopped,
/// killed and started again in a node (by the PID it wrote, never by name).
pub trait Implementation {
    fn name(&self) -> &'static str;
    /// The command run inside the node to list its sessions.
    fn sessions_command(&self) -> Vec<String>;
    /// Turns the command's standard output into sessions.
    fn parse_sessions(&self, out: &str) -> Result<Vec<Session>, ReadError>;
    /// Shell commands (run with `sh -c` in the node) that stop the daemon with
    /// SIGTERM, kill it with SIGKILL, and start it as the node's `exec` did (doing
    /// nothing when it runs); `None` where the lab cannot.
    fn daemon(&self) -> Option<Daemon> {
        None
    }
    /// The command that shows the daemon's best path to `prefix`, and what it says of
    /// route reflection: (ORIGINATOR_ID, CLUSTER_LIST).
    fn route_command(&self, _prefix: &str) -> Option<Vec<String>> {
        None
    }
    fn parse_reflection(&self, _out: &str, _prefix: &str) -> Option<(Option<String>, Vec<String>)> {
        None
    }
    /// The standard and large communities of the daemon's best path to exactly
    /// `prefix`, read from [`Implementation::route_command`]'s output and written
    /// `a:b` and `a:b:c`; `None` when it has no path to `prefix`.
    fn parse_communities(&self, _out: &str, _prefix: &str) -> Option<Vec<String>> {
        None
    }
    /// The command that prints the daemon's RIB (every path received, both
    /// families), and its parser; `None` where the lab does not read it.
    fn rib_command(&self) -> Option<Vec<String>> {
        None
    }
    fn parse_rib(&self, _out: &str) -> Result<Vec<RibRoute>, ReadError> {
        Ok(Vec::new())
    }
    /// The command that lists the prefixes the daemon advertises to `peer` (its
    /// Adj-RIB-Out for that session), and its parser; `None` where the lab cannot.
    fn advertised_command(&self, _peer: &str) -> Option<Vec<String>> {
        None
    }
    fn parse_advertised(&self, _out: &str) -> Result<Vec<String>, ReadError> {
        Ok(Vec::new())
    }
    /// The command that shows a session's capabilities as the daemon negotiated them,
    /// and the ones both sides have, named as [`CAPABILITIES`] names them.
    fn capabilities_command(&self, _peer: &str) -> Option<Vec<String>> {
        None
    }
    fn parse_capabilities(&self, _out: &str, _peer: &str) -> Result<Vec<String>, ReadError> {
        Err(ReadError {
            implementation: self.name(),
            command: String::new(),
            msg: "the lab cannot read this daemon's capabilities".into(),
        })
    }
    /// Whether the daemon has settled after a restart, read from its sessions
    /// command's output: `Err` says what it still holds, such as routes a previous
    /// run left in the kernel that it keeps until its peers' End-of-RIB. `Ok` where
    /// the daemon does not say.
    fn settled(&self, _sessions_out: &str) -> Result<(), String> {
        Ok(())
    }
    /// Shell commands that make the daemon announce `prefix` to its peers, and stop;
    /// `None` where the lab cannot inject a route through it.
    fn announce(&self, _prefix: &str) -> Option<(String, String)> {
        None
    }
}

/// Capability names as the lab reports them.
pub const CAPABILITIES: [&str; 5] = [
    "4-octet-as",
    "route-refresh",
    "graceful-restart",
    "ipv4-unicast",
    "ipv6-unicast",
];

/// A daemon's lifecycle in a node, as shell commands.
#[derive(Debug, Clone, Copy)]
pub struct Daemon {
    /// Where its PID is (the one whose memory is measured).
    pub pid_file: &'static str,
    /// Asks the daemon to end; [`Daemon::stop_and_wait`] is what the lab runs.
    pub stop: &'static str,
    pub kill: &'static str,
    pub start: &'static str,
    /// Withdraws the node's routes and returns when its peers have them (and the
    /// undoing of it), where the daemon has such a command.
    pub drain: Option<(&'static str, &'static str)>,
    /// Makes the running daemon read its configuration file again.
    pub reload: &'static str,
    /// Where its log is, for the evidence of a failed case.
    pub log: &'static str,
}

/// The reader for a `lab.bgp` label value.
impl Daemon {
    /// `stop`, returning once the daemon whose PID `pid_file` held is gone (10 s at
    /// most, else it fails): a start right after it must not find the old daemon
    /// still shutting down and leave it at that.
    pub fn stop_and_wait(&self) -> String {
        format!(
            "p=\"$(cat {} 2>/dev/null)\"; {} && {{ i=0; while kill -0 \"$p\" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done; ! kill -0 \"$p\" 2>/dev/null; }}",
            self.pid_file, self.stop
        )
    }
}

pub fn for_label(label: &str) -> Option<&'static dyn Implementation> {
    match label {
        "frr" => Some(&frr::Frr),
        "bird" => Some(&bird::Bird),
        "gobgp" => Some(&gobgp::Gobgp),
        "speaker" => Some(&speaker::Speaker),
        "exabgp" => Some(&exabgp::Exabgp),
        _ => None,
    }
}

/// Maps the many spellings of FSM states onto RFC 4271's names.
pub fn normalize_state(s: &str) -> String {
    let lower = s.trim().to_ascii_lowercase().replace(['_', ' '], "");
    let name = match lower.as_str() {
        "idle" | "close" | "down" | "1" | "sessionstateidle" => "Idle",
        "connect" | "2" | "sessionstateconnect" => "Connect",
        "active" | "3" | "sessionstateactive" => "Active",
        "opensent" | "4" | "sessionstateopensent" => "OpenSent",
        "openconfirm" | "5" | "sessionstateopenconfirm" => "OpenConfirm",
        "established" | "6" | "sessionstateestablished" => "Established",
        _ => return s.trim().to_string(),
    };
    name.to_string()
}

/// The RIB in `out`, a stream of JSON documents (one per family, as the RIB command
/// prints them): `routes` picks a document's object of prefixes to lists of paths,
/// and `path` reads one path, `None` for one not received from a peer (its own).
/// `command` names the command in a parse error.
fn rib_of_json_documents(
    imp: &dyn Implementation,
    out: &str,
    command: &str,
    routes: impl Fn(&serde_json::Value) -> &serde_json::Value,
    path: impl Fn(&serde_json::Value) -> Option<RibPath>,
) -> Result<Vec<RibRoute>, ReadError> {
    let mut rib = Vec::new();
    for doc in serde_json::Deserializer::from_str(out).into_iter::<serde_json::Value>() {
        let doc = doc.map_err(|e| read_error(imp, format!("`{command}`: {e}")))?;
        for (prefix, paths) in routes(&doc).as_object().into_iter().flatten() {
            rib.push(RibRoute {
                prefix: prefix.clone(),
                paths: paths.as_array().into_iter().flatten().filter_map(&path).collect(),
            });
        }
    }
    Ok(rib)
}

fn read_error(imp: &dyn Implementation, msg: impl Into<String>) -> ReadError {
    ReadError {
        implementation: imp.name(),
        command: imp.sessions_command().join(" "),
        msg: msg.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_normalize() {
        assert_eq!(normalize_state("ESTABLISHED"), "Established");
        assert_eq!(normalize_state("6"), "Established");
        assert_eq!(normalize_state("OpenSent"), "OpenSent");
        assert_eq!(normalize_state("Close"), "Idle");
        assert_eq!(normalize_state("weird"), "weird");
    }
}
