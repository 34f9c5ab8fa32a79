//! Route events in nodes, as their kernels report them: `ip -ts monitor route` runs in
//! each node and its lines are read as they come. A route's propagation is timed from
//! the event in the node where it changed to the event in each node that followed,
//! not by polling, so the numbers are the fabric's and not the prober's.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

use crate::runtime::{Runtime, RuntimeError};
use crate::topology::Topology;

/// One line of `ip -ts monitor route`.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteEvent {
    /// Unix seconds.
    pub at: f64,
    pub deleted: bool,
    /// The destination with its prefix length (`10.244.0.1/32`).
    pub dst: String,
}

/// Route types `ip` prints before the destination.
const TYPES: [&str; 8] = [
    "unicast",
    "local",
    "broadcast",
    "anycast",
    "blackhole",
    "unreachable",
    "prohibit",
    "multicast",
];

/// Parses `[2026-11-22T05:15:35.676329] Deleted 10.244.1.100 via 10.0.0.11 dev eth1 ...`.
pub fn parse_event(line: &str) -> Option<RouteEvent> {
    let rest = line.strip_prefix('[')?;
    let (ts, rest) = rest.split_once("] ")?;
    let at = crate::clock::parse_iso(ts)?;
    let mut words = rest.split_whitespace().peekable();
    let deleted = words.next_if_eq(&"Deleted").is_some();
    words.next_if(|w| TYPES.contains(w));
    let dst = words.next()?;
    if dst == "default" || dst.starts_with("table") {
        return None;
    }
    let dst = if dst.contains('/') {
        dst.to_string()
    } else if dst.contains(':') {
        format!("{dst}/128")
    } else {
        format!("{dst}/32")
    };
    Some(RouteEvent { at, deleted, dst })
}

/// `ip -ts monitor route` running in one node.
pub struct RouteWatch {
    pub node: String,
    container: String,
    pid: u32,
    lines: UnboundedReceiver<String>,
}

impl RouteWatch {
    pub async fn start(rt: &Runtime, topo: &Topology, node: &str) -> Result<RouteWatch, RuntimeError> {
        let container = topo.container_name(node);
        // The shell says its PID, then becomes `ip`: that PID is how we stop it. `ip -ts`
        // prints local time: UTC here, whatever the container's zone, as it is read.
        let cmd: Vec<String> = ["sh", "-c", "echo $$; TZ=UTC exec ip -ts monitor route"]
            .map(String::from)
            .to_vec();
        let mut lines = rt.exec_lines(&container, &cmd).await?;
        let pid = tokio::time::timeout(Duration::from_secs(5), lines.recv())
            .await
            .ok()
            .flatten()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| RuntimeError::Other(format!("{container}: `ip monitor` did not start")))?;
        Ok(RouteWatch {
            node: node.to_string(),
            container,
            pid,
            lines,
        })
    }

    /// Reads events until `until`, or until every prefix of `track` is in its target
    /// state when `stop_when_done`, keeping in `track` when each last got there.
    async fn follow(&mut self, track: &mut [Tracked], until: Instant, stop_when_done: bool) {
        while !(stop_when_done && track.iter().all(|t| t.at.is_some())) {
            let Ok(Some(line)) = tokio::time::timeout_at(until, self.lines.recv()).await else {
                return;
            };
            if let Some(e) = parse_event(&line) {
                for t in track.iter_mut().filter(|t| t.prefix == e.dst) {
                    t.see(&e);
                }
            }
        }
    }

    /// The time of the first event for `dst` (added, or deleted) before `until`.
    pub async fn wait(&mut self, dst: &str, deleted: bool, until: Instant) -> Option<f64> {
        let mut track = [Tracked::new(dst, deleted)];
        self.follow(&mut track, until, true).await;
        track[0].at
    }

    pub async fn stop(self, rt: &Runtime) {
        let cmd: Vec<String> = vec!["kill".into(), self.pid.to_string()];
        let _ = rt.exec(&self.container, &cmd).await;
    }
}

/// A prefix watched in one node: when it last got to the state wanted (added, or
/// deleted) and stayed so; `None` while it is not there.
struct Tracked {
    prefix: String,
    deleted: bool,
    at: Option<f64>,
    /// When it first got there, even if it went back.
    first: Option<f64>,
}

impl Tracked {
    fn new(prefix: &str, deleted: bool) -> Tracked {
        Tracked {
            prefix: prefix.to_string(),
            deleted,
            at: None,
            first: None,
        }
    }

    fn see(&mut self, e: &RouteEvent) {
        if e.deleted == self.deleted {
            // A route replaced is added again: the first time counts.
            self.at.get_or_insert(e.at);
            self.first.get_or_insert(e.at);
        } else {
            // It came back (or went again): what came before was not followed.
            self.at = None;
        }
    }
}

/// How a route change spread: when it happened in the origin node, and how many
/// milliseconds later each other node's kernel followed (None: not by the deadline,
/// or not for good; negative: before the change, which is a clock or a stale route).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Propagation {
    pub prefix: String,
    pub deleted: bool,
    pub origin: String,
    /// Unix seconds of the change in the origin node.
    pub origin_at: Option<f64>,
    pub after_ms: BTreeMap<String, Option<f64>>,
    /// When each follower first got there, even if the route came back after.
    #[serde(default)]
    pub first_ms: BTreeMap<String, Option<f64>>,
}

impl Propagation {
    pub fn complete(&self) -> bool {
        self.origin_at.is_some() && self.after_ms.values().all(|ms| ms.is_some_and(|ms| ms >= 0.0))
    }
    pub fn max_ms(&self) -> Option<f64> {
        self.after_ms.values().flatten().copied().reduce(f64::max)
    }
}

/// A route change to time: the prefixes that change (an IPv4 one and its IPv6 twin,
/// say), whether they are added or deleted, the node where it happens, and the nodes
/// expected to follow.
pub struct Change<'a> {
    pub prefixes: &'a [String],
    pub deleted: bool,
    pub origin: &'a str,
    pub followers: &'a [String],
    /// How long the followers get.
    pub deadline: Duration,
    /// Timed from the route's own change in the origin's kernel (a pod, a block), or,
    /// when the act changes no route there (a daemon stopped, a link cut), from the
    /// moment the act starts.
    pub from_origin_event: bool,
    /// Once every follower has followed, how long the routes must stay so: a route
    /// that comes back (or goes again) meanwhile was not followed.
    pub settle: Duration,
}

/// Watches the change's prefixes in its origin and followers, runs `act` (which makes
/// the change), and times how it reached each follower's kernel: one propagation per
/// prefix.
pub async fn time_change<F, E>(rt: &Runtime, topo: &Topology, c: Change<'_>, act: F) -> Result<Vec<Propagation>, E>
where
    F: std::future::Future<Output = Result<(), E>>,
    E: From<RuntimeError>,
{
    let origin = c.from_origin_event.then_some(c.origin);
    let starts = origin
        .into_iter()
        .chain(c.followers.iter().map(String::as_str))
        .map(|node| RouteWatch::start(rt, topo, node));
    let mut watches = Vec::new();
    let mut failed = None;
    for w in futures::future::join_all(starts).await {
        match w {
            Ok(w) => watches.push(w),
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    if let Some(e) = failed {
        for w in watches {
            w.stop(rt).await;
        }
        return Err(e.into());
    }
    // `ip` subscribes right after it starts; give it that moment.
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The containers share the host's kernel and clock: their events' stamps (UTC)
    // and this one compare.
    let act_at = crate::clock::now();
    let result = act.await;
    let until = Instant::now() + c.deadline;
    let mut tracks: Vec<Vec<Tracked>> = watches
        .iter()
        .map(|_| c.prefixes.iter().map(|p| Tracked::new(p, c.deleted)).collect())
        .collect();
    for (w, track) in watches.iter_mut().zip(&mut tracks) {
        w.follow(track, until, true).await;
    }
    // What came after: a follower whose route came back did not follow.
    let settled = Instant::now() + c.settle;
    for (w, track) in watches.iter_mut().zip(&mut tracks) {
        w.follow(track, settled, false).await;
    }
    for w in watches {
        w.stop(rt).await;
    }
    result?;
    let (origin_tracks, follower_tracks) = if c.from_origin_event {
        (Some(&tracks[0]), &tracks[1..])
    } else {
        (None, &tracks[..])
    };
    Ok(c.prefixes
        .iter()
        .enumerate()
        .map(|(k, prefix)| {
            let origin_at = match origin_tracks {
                Some(t) => t[k].at,
                None => Some(act_at),
            };
            // `ip -ts` stamps an event when it reads it: on a loaded machine the origin's
            // watcher may read its own a few milliseconds after a follower read its. A
            // follower's event after the act began but before the origin's stamp is
            // that noise, and counts as 0; one before the act is before the change,
            // and stays negative. Microseconds are noise at this scale: tenths of a ms.
            let ms = |at: Option<f64>| {
                at.zip(origin_at).map(|(t, o)| {
                    let d = if t < o && t >= act_at { 0.0 } else { t - o };
                    (d * 10_000.0).round() / 10.0
                })
            };
            let after_ms = c
                .followers
                .iter()
                .zip(follower_tracks)
                .map(|(n, t)| (n.clone(), ms(t[k].at)))
                .collect();
            let first_ms = c
                .followers
                .iter()
                .zip(follower_tracks)
                .map(|(n, t)| (n.clone(), ms(t[k].first)))
                .collect();
            Propagation {
                prefix: prefix.clone(),
                deleted: c.deleted,
                origin: c.origin.to_string(),
                origin_at,
                after_ms,
                first_ms,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_parse() {
        let e = parse_event(
            "[2026-11-22T05:15:35.676329] Deleted 10.244.1.100 via 10.0.0.11 dev eth1 proto bird metric 32 ",
        )
        .unwrap();
        assert!(e.deleted);
        assert_eq!(e.dst, "10.244.1.100/32");
        let e = parse_event("[2026-11-22T05:15:35.282725] blackhole 10.244.0.0/26 proto boot").unwrap();
        assert!(!e.deleted);
        assert_eq!(e.dst, "10.244.0.0/26");
        let e = parse_event("[2026-11-22T05:15:35.267098] local fe80::8c8f:caff:fe31:5992 dev cali4e0 table local")
            .unwrap();
        assert_eq!(e.dst, "fe80::8c8f:caff:fe31:5992/128");
        assert!(parse_event("[2026-11-22T05:15:35.2] default via 10.0.0.1 dev eth0").is_none());
        assert!(parse_event("garbage").is_none());
    }

    #[test]
    fn a_deletion_counts_only_if_the_route_stays_gone() {
        let ev = |at, deleted| RouteEvent {
            at,
            deleted,
            dst: "10.244.250.1/32".into(),
        };
        let mut t = Tracked::new("10.244.250.1/32", true);
        t.see(&ev(1.0, true));
        assert_eq!(t.at, Some(1.0));
        t.see(&ev(1.5, false));
        assert_eq!(t.at, None, "it came back");
        t.see(&ev(2.0, true));
        t.see(&ev(2.5, true));
        assert_eq!(t.at, Some(2.0));
        let mut added = Tracked::new("10.244.250.1/32", false);
        added.see(&ev(1.0, false));
        added.see(&ev(1.2, false));
        assert_eq!(added.at, Some(1.0), "replaced: still there since the first");
    }
}
