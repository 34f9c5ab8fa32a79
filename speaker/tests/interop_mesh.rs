//! Three of our speakers in an iBGP full mesh on one L2 segment (a bridge in its
//! own namespace), with the default timers, as Calico's node-to-node mesh runs:
//! all started at once, every pair's connections collide (RFC 4271 section 6.8)
//! and must still come up at once; a node started late is reached within
//! connectRetryTime.

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{run, timing, PROTO, SPEAKER_AS};
use serde_json::Value;

const NODES: [&str; 3] = ["n1", "n2", "n3"];
/// The speaker's default connectRetryTime.
const CONNECT_RETRY: Duration = Duration::from_secs(5);

fn address(node: usize) -> String {
    format!("10.0.0.{}", 11 + node)
}

/// The pod block each node holds as a blackhole route.
fn block(node: usize) -> String {
    format!("10.244.{}.0/26", node + 1)
}

/// A bridge namespace and one namespace per node, each with `eth1` on the bridge.
struct Mesh {
    bridge: String,
    nodes: Vec<String>,
    dir: PathBuf,
    /// One speaker per node while running.
    procs: Vec<Option<Child>>,
}

impl Mesh {
    fn new(test: &str) -> Mesh {
        assert!(
            run("id -u").is_ok_and(|s| s.trim() == "0"),
            "interop tests need root (network namespaces); run `cargo test -p speaker` as root"
        );
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("spk-{test}-{pid}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let mesh = Mesh {
            bridge: format!("spk-{test}-{pid}-br"),
            nodes: NODES.iter().map(|n| format!("spk-{test}-{pid}-{n}")).collect(),
            dir,
            procs: NODES.iter().map(|_| None).collect(),
        };
        let br = &mesh.bridge;
        must(&format!("ip netns add {br}"));
        must(&format!(
            "ip -n {br} link add br0 type bridge stp_state 0 forward_delay 0"
        ));
        must(&format!("ip -n {br} link set br0 up"));
        for (i, ns) in mesh.nodes.iter().enumerate() {
            must(&format!("ip netns add {ns}"));
            must(&format!("ip -n {ns} link set lo up"));
            must(&format!("ip -n {br} link add v{i} type veth peer name eth1 netns {ns}"));
            must(&format!("ip -n {br} link set v{i} master br0 up"));
            must(&format!("ip -n {ns} addr add {}/24 dev eth1", address(i)));
            must(&format!("ip -n {ns} link set eth1 up"));
            must(&format!("ip -n {ns} route add blackhole {}", block(i)));
            let peers: Vec<String> = (0..NODES.len()).filter(|j| *j != i).map(address).collect();
            let config = format!(
                "asNumber: {SPEAKER_AS}\nrouterID: {}\npools: [10.244.0.0/16]\napiSocket: {}\n\
                 nodeToNodeMesh: {{enabled: true, peers: [{}]}}\n",
                address(i),
                mesh.socket(i).display(),
                peers.join(", ")
            );
            fs::write(mesh.config(i), config).unwrap();
        }
        // The segment must carry frames before the speakers start: every bridge
        // port forwarding and every node's link up.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !mesh.segment_up() {
            assert!(Instant::now() < deadline, "bridge ports not forwarding within 5 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        mesh
    }

    fn segment_up(&self) -> bool {
        let ports: Vec<Value> = run(&format!("bridge -n {} -j link show", self.bridge))
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        let forwarding = ports.iter().filter(|p| p["state"] == "forwarding").count() == NODES.len();
        forwarding
            && self.nodes.iter().all(|ns| {
                run(&format!("ip -n {ns} -j link show eth1")).is_ok_and(|s| s.contains("\"operstate\":\"UP\""))
            })
    }

    fn config(&self, node: usize) -> PathBuf {
        self.dir.join(format!("{}.yaml", NODES[node]))
    }

    fn socket(&self, node: usize) -> PathBuf {
        self.dir.join(format!("{}.sock", NODES[node]))
    }

    fn log_path(&self, node: usize) -> PathBuf {
        self.dir.join(format!("{}.log", NODES[node]))
    }

    fn start(&mut self, node: usize) {
        let log = fs::File::create(self.log_path(node)).unwrap();
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.nodes[node],
                env!("CARGO_BIN_EXE_speaker"),
                "run",
                "-c",
            ])
            .arg(self.config(node))
            .env("RUST_LOG", "speaker=debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the speaker of {}: {e}", NODES[node]));
        self.procs[node] = Some(child);
    }

    /// kill -9 of every speaker (by PID), and their routes flushed, so the next
    /// start is a first start.
    fn stop_all(&mut self) {
        for child in self.procs.iter_mut().filter_map(Option::take) {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in &self.nodes {
            let _ = run(&format!("ip -n {ns} route flush proto {PROTO}"));
        }
    }

    /// Each peer's state as `node` reports it, by peer address.
    fn states(&self, node: usize) -> Vec<(String, String)> {
        let out = run(&format!(
            "{} status --json --socket {}",
            env!("CARGO_BIN_EXE_speaker"),
            self.socket(node).display()
        ))
        .unwrap_or_default();
        let status: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
        status["peers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    p["address"].as_str().unwrap_or_default().to_string(),
                    p["state"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// The sessions of `nodes` not Established yet, as "n1->10.0.0.12 OpenSent".
    fn not_established(&self, nodes: &[usize]) -> Vec<String> {
        let mut missing = Vec::new();
        for &i in nodes {
            let states = self.states(i);
            for j in (0..NODES.len()).filter(|j| *j != i) {
                let state = states
                    .iter()
                    .find(|(a, _)| *a == address(j))
                    .map_or("unknown", |(_, s)| s.as_str());
                if state != "Established" {
                    missing.push(format!("{}->{} {state}", NODES[i], address(j)));
                }
            }
        }
        missing
    }

    /// The blocks of `nodes` missing from another node's kernel with our protocol.
    fn routes_missing(&self, nodes: &[usize]) -> Vec<String> {
        let mut missing = Vec::new();
        for (i, ns) in self.nodes.iter().enumerate() {
            let out = run(&format!("ip -n {ns} -4 -j route show table main proto {PROTO}")).unwrap_or_default();
            let routes: Vec<Value> = serde_json::from_str(&out).unwrap_or_default();
            for &j in nodes.iter().filter(|j| **j != i) {
                if !routes.iter().any(|r| r["dst"] == block(j)) {
                    missing.push(format!("{} not in {}", block(j), NODES[i]));
                }
            }
        }
        missing
    }

    /// Polls until every session of `nodes` is Established and their blocks are
    /// installed everywhere, or `timeout`; how long it took, or what was missing.
    fn wait_mesh(&self, nodes: &[usize], timeout: Duration) -> Result<Duration, String> {
        let start = Instant::now();
        loop {
            let mut missing = self.not_established(nodes);
            if missing.is_empty() {
                missing = self.routes_missing(nodes);
                if missing.is_empty() {
                    return Ok(start.elapsed());
                }
            }
            if start.elapsed() > timeout {
                return Err(missing.join(", "));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Connections closed by a collision, as the speakers logged them.
    fn collisions(&self) -> usize {
        (0..NODES.len())
            .map(|i| fs::read_to_string(self.log_path(i)).unwrap_or_default())
            .map(|log| log.matches("connection collision: closing").count())
            .sum()
    }

    fn logs(&self) -> String {
        (0..NODES.len())
            .map(|i| {
                let text = fs::read_to_string(self.log_path(i)).unwrap_or_default();
                let start = text.len().saturating_sub(4000);
                let start = (start..text.len()).find(|c| text.is_char_boundary(*c)).unwrap_or(0);
                format!("--- {} log (tail) ---\n{}", NODES[i], &text[start..])
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        self.stop_all();
        for ns in self.nodes.iter().chain([&self.bridge]) {
            let _ = run(&format!("ip netns del {ns}"));
        }
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("test files kept in {}", self.dir.display());
        }
    }
}

fn must(cmd: &str) -> String {
    run(cmd).unwrap_or_else(|e| panic!("{e}"))
}

/// All three started within a few ms, thirty times over (a round races in about one of ten): every round, all six
/// sessions Established and every block in the other two kernels within one connect-retry and 2 s. Nearly every
/// round is up in under 100 ms; in about one round of 150 both speakers of a pair still lose their connections
/// to a collision (one side took its connection to Established before the other resolved the collision against
/// it) and meet again at the next connect retry, 5 s later: a known imperfection, inside SES-01's 15 s. The bugs
/// this test was written for fail it: OpenSent for 240 s, and 10 s after a doubled backoff.
#[test]
fn mesh_of_three_started_at_once_comes_up_at_once() {
    const ROUNDS: usize = 30;
    const DEADLINE: Duration = Duration::from_secs(7);
    let all = [0, 1, 2];
    let mut mesh = Mesh::new("mesh-race");
    let mut failures = Vec::new();
    for round in 1..=ROUNDS {
        for node in all {
            mesh.start(node);
        }
        // Waited for well past the deadline, so a slow round says how slow.
        let outcome = mesh.wait_mesh(&all, Duration::from_secs(15));
        match &outcome {
            Ok(t) => timing(
                &format!("round {round} ({} collisions): start -> mesh up", mesh.collisions()),
                *t,
            ),
            Err(missing) => eprintln!("round {round}: not up after 15 s: {missing}"),
        }
        match outcome {
            Ok(t) if t <= DEADLINE => {}
            Ok(t) => failures.push(format!("round {round}: {} ms", t.as_millis())),
            Err(missing) => failures.push(format!("round {round}: still missing after 15 s: {missing}")),
        }
        if failures.len() == 1 && failures[0].starts_with(&format!("round {round}:")) {
            eprintln!("logs of the first slow round:\n{}", mesh.logs());
        }
        mesh.stop_all();
    }
    assert!(
        failures.is_empty(),
        "{} of {ROUNDS} rounds not up within {DEADLINE:?}:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// n3 starts 2 s after the other two, whose connects to it were refused: its
/// sessions are up within connectRetryTime + 1 s of its start.
#[test]
fn mesh_node_started_late_is_reached_within_connect_retry() {
    let mut mesh = Mesh::new("mesh-late");
    let start = Instant::now();
    mesh.start(0);
    mesh.start(1);
    // Only the sessions to n3 (not running) may be down.
    let late = address(2);
    while mesh.not_established(&[0, 1]).iter().any(|s| !s.contains(&late)) {
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "n1<->n2 not up within 2 s: {:?}\n{}",
            mesh.not_established(&[0, 1]),
            mesh.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_secs(2).saturating_sub(start.elapsed()));
    mesh.start(2);
    let limit = CONNECT_RETRY + Duration::from_secs(1);
    match mesh.wait_mesh(&[0, 1, 2], limit) {
        Ok(t) => timing("late node start -> mesh up", t),
        Err(missing) => panic!("not up within {limit:?} of n3's start: {missing}\n{}", mesh.logs()),
    }
}
