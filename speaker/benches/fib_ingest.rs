//! P2, FIB ingest and withdraw-all: one node daemon in namespace `b` (the speaker,
//! BIRD configured as Calico configures it, or FRR's zebra + bgpd) learns N /32s
//! inside its pool from an injector in `a`, and loses them all when the session ends.
//! In the same run, interleaved (speaker, BIRD, FRR, floor, speaker, ...), the
//! kernel's own floor: the same routes added and deleted over one netlink socket,
//! 1000 requests per send.
//!
//! The injector is this program: it opens the session itself and, as soon as it is
//! Established, writes every UPDATE at once (packed as full as 4096 bytes allow,
//! about 800 /32s each), then End-of-RIB. It has no delays of its own; the time it
//! took to write everything (the node reading it) is reported beside the results,
//! so that it is seen not to be the bottleneck.
//!
//! Times come from a netlink route listener in `b` (events, never polling):
//! - `established_to_all`: from the injector's Established to the last route in
//!   `b`'s kernel (the injector writes its first UPDATE at once);
//! - `withdraw_all`: from the NOTIFICATION (Cease) written to the last route gone;
//! - `peak_rss`: VmHWM of the node's daemon(s), zebra and bgpd added: the larger
//!   of the ingest's (read before the speaker's listing, which is reported on its
//!   own) and the withdrawal's (VmHWM reset through `clear_refs` after the listing).
//!
//! A contention guard: the CPU time the machine spent outside the processes under
//! test during a run, from /proc/stat less their own; a run where it exceeds a
//! fifth of a core is marked `contended`.
//!
//! `BENCH_P2_ROUTES` (default `10000,100000`) and `BENCH_P2_RUNS` (default 3) set
//! the sizes and the rounds; `BENCH_P2_NODES` a subset of `speaker,bird,frr,floor`;
//! `BENCH_P2_SHOW_LOG=1` prints each node's log after its run, and
//! `BENCH_P2_RUST_LOG` sets the speaker's log filter (`speaker=info`), and
//! `BENCH_P2_SPEAKER_WRAP` a profiler to run it under (`heaptrack -o /tmp/p2`).
//! Writes `target/bench-report/p2.json`, read by `make bench`'s report.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use common::{in_netns, Frr, Lab};
use ipnet::{IpNet, Ipv4Net};
use serde_json::json;
use speaker::packet::{
    AfiSafi, AsPath, Capability, Message, NextHop, Open, Origin, PathAttributes, SessionCaps, Update,
};

const NODE_AS: u32 = 64512;
const INJECTOR_AS: u32 = 65000;
/// 2^18 addresses: room for every size asked for.
const POOL: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(10, 64, 0, 0), 14);
/// Protocol number of the floor's routes.
const FLOOR_PROTO: u8 = 250;
const BATCH: usize = 1000;
const DEADLINE: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Node {
    Speaker,
    Bird,
    Frr,
    Floor,
}

impl Node {
    fn name(self) -> &'static str {
        match self {
            Node::Speaker => "speaker",
            Node::Bird => "bird",
            Node::Frr => "frr",
            Node::Floor => "floor",
        }
    }
}

/// One run of one node at one size.
#[derive(Debug)]
struct Sample {
    established_to_all: f64,
    injector_written: f64,
    withdraw_all: f64,
    first_gone: f64,
    peak_rss_mb: f64,
    /// `speaker routes --json`: seconds, MB answered, MB the daemon's peak grew by.
    api: Option<(f64, f64, f64)>,
    other_cpu: f64,
}

fn main() {
    let sizes: Vec<usize> = env_list("BENCH_P2_ROUTES", "10000,100000")
        .iter()
        .map(|s| s.parse().expect("BENCH_P2_ROUTES: numbers"))
        .collect();
    let runs: usize = std::env::var("BENCH_P2_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let nodes: Vec<Node> = env_list("BENCH_P2_NODES", "speaker,bird,frr,floor")
        .iter()
        .map(|s| match s.as_str() {
            "speaker" => Node::Speaker,
            "bird" => Node::Bird,
            "frr" => Node::Frr,
            "floor" => Node::Floor,
            other => panic!("BENCH_P2_NODES: unknown node {other}"),
        })
        .collect();
    for &n in &sizes {
        assert!(n <= 1 << 18, "at most {} routes fit the pool {POOL}", 1 << 18);
    }

    let mut series = Vec::new();
    for &n in &sizes {
        let updates = encode_updates(n);
        let mut results: Vec<(Node, Vec<Sample>)> = nodes.iter().map(|&d| (d, Vec::new())).collect();
        for round in 0..runs {
            for (node, samples) in &mut results {
                let s = run_once(*node, n, &updates, round);
                println!(
                    "P2 {n} routes, {:<7} run {}: established->all {:.3} s, withdraw-all {:.3} s (first gone {:.3} s), peak RSS {:.1} MB, injector wrote all in {:.3} s, other CPU {:.0}%",
                    node.name(),
                    round + 1,
                    s.established_to_all,
                    s.withdraw_all,
                    s.first_gone,
                    s.peak_rss_mb,
                    s.injector_written,
                    s.other_cpu * 100.0
                );
                samples.push(s);
            }
        }
        for (node, samples) in &results {
            let contended: Vec<bool> = samples.iter().map(|s| s.other_cpu > 0.2).collect();
            let mut add = |figure: &str, unit: &str, f: &dyn Fn(&Sample) -> f64| {
                series.push(json!({
                    "figure": format!("{figure}, {}", size_label(n)),
                    "unit": unit,
                    "node": node.name(),
                    "values": samples.iter().map(f).collect::<Vec<_>>(),
                    "contended": contended,
                }));
            };
            add("P2 Established to all in kernel", "s", &|s| s.established_to_all);
            add("P2 withdraw-all", "s", &|s| s.withdraw_all);
            add("P2 session end to first route gone", "s", &|s| s.first_gone);
            if *node == Node::Speaker {
                add("P2 `speaker routes --json` (the whole listing)", "s", &|s| {
                    s.api.map_or(0.0, |a| a.0)
                });
                add("P2 `speaker routes --json`, answer size", "MB", &|s| {
                    s.api.map_or(0.0, |a| a.1)
                });
                add("P2 `speaker routes --json`, daemon's peak RSS growth", "MB", &|s| {
                    s.api.map_or(0.0, |a| a.2)
                });
            }
            if *node != Node::Floor {
                add("P2 peak RSS", "MB", &|s| s.peak_rss_mb);
                add("P2 injector done writing", "s", &|s| s.injector_written);
            }
        }
    }
    let mut targets = Vec::new();
    for &n in &sizes {
        for figure in ["P2 Established to all in kernel", "P2 withdraw-all"] {
            targets.push(json!({"figure": format!("{figure}, {}", size_label(n)), "against": "bird", "stat": "median", "max_ratio": 1.0}));
        }
        if n >= 100_000 {
            targets.push(json!({"figure": format!("P2 peak RSS, {}", size_label(n)), "against": "bird", "stat": "median", "max_ratio": 1.0}));
        }
    }
    let report = json!({
        "targets": targets,
        "notes": [
            "The injector is not the bottleneck: it writes everything within milliseconds of the first UPDATE (\"injector done writing\"), while the nodes take hundreds.",
            "FRR is zebra and bgpd together (peak RSS added); BIRD is configured as Calico's bird.cfg configures it (kernel protocol learn, persist, merge paths, scan time 2).",
            "The floor is the kernel alone: the same routes over one netlink socket, 1000 requests per send, no BGP.",
            "Before this work the speaker wrote one netlink request per route and waited for each acknowledgement: 100k routes took 1.9-2.4 s from Established to all in the kernel and 2.4-2.5 s to withdraw. Now: 256 requests per send from a thread of its own, the kernel's echoes of our own writes dropped before they are decoded, FIB commands handed over as they are decided, a session's end worked through in chunks so the kernel starts losing routes at once.",
            "Withdraw-all at 100k against BIRD has moved between x0.66 and x1.10 from run to run (d2f9684: x1.10; 3e1f2cd: x0.97, then x0.66). What limits it: the core works through 100k withdrawals on one thread at about 4 us a prefix (best path recomputed, FIB bookkeeping in SipHash maps, an allocation or two per prefix) while the kernel deletes in parallel; BIRD does less per route.",
            "What limits memory: about 550 bytes a route (63-69 MB at 100k, 13.9 MB at 10k, 2026-12-07) against BIRD's about 90 (13.8 and 5.5 MB), from 850 (102 and 25.8 MB at 3e1f2cd). heaptrack's peak heap at 100k, 54 MB (from 108): the Adj-RIB-In's map 10.6 MB, the FIB table (wanted, installed, pending: one map since 37245d7, next hops inline) 10.6, the Loc-RIB's B-tree and its paths 13, the echoes awaited by the route watcher 6.4, FIB reports queued for the core 7.1, the session's received set 2.5. The cure that remains is the compact RIB (one table per family, per-peer paths as small entries in it, attributes interned, the FIB's state as bits of the entry). The 7.4 MB the speaker holds with no route is 5.2 MB of its own code pages and 0.5 MB of heap; BIRD's is 4.9 MB. The peak is taken without the speaker's route listing, which is reported on its own (before 2026-12-07 it counted: 9.4 MB at 10k).",
        ],
        "bench": "P2",
        "title": "FIB ingest and withdraw-all",
        "method": "one node daemon in a network namespace learns N /32s from an injector that writes every UPDATE (packed to 4096 bytes) as soon as the session is Established; times from a netlink route listener in the node's namespace; the floor is a bare netlink loop, 1000 requests per send",
        "runs": runs,
        "series": series,
    });
    let path = report_dir().join("p2.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("P2 written to {}", path.display());
}

fn size_label(n: usize) -> String {
    if n % 1000 == 0 {
        format!("{}k routes", n / 1000)
    } else {
        format!("{n} routes")
    }
}

fn env_list(var: &str, default: &str) -> Vec<String> {
    std::env::var(var)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn prefixes(n: usize) -> Vec<IpNet> {
    let base = u32::from(POOL.network());
    (0..n as u32)
        .map(|i| IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::from(base + i), 32)))
        .collect()
}

/// Every UPDATE of the injector and its End-of-RIB, as bytes on the wire.
fn encode_updates(n: usize) -> Vec<u8> {
    let caps = SessionCaps { four_octet_as: true };
    let attrs = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::sequence([INJECTOR_AS])),
        ..PathAttributes::default()
    };
    let mut out = Vec::new();
    let updates = Update::announce(&caps, &attrs, NextHop::V4(Ipv4Addr::new(10, 0, 0, 1)), &prefixes(n)).unwrap();
    for u in updates {
        out.extend(Message::Update(u).to_bytes(&caps).unwrap());
    }
    out.extend(
        Message::Update(Update::end_of_rib(AfiSafi::IPV4_UNICAST))
            .to_bytes(&caps)
            .unwrap(),
    );
    out
}

fn run_once(node: Node, n: usize, updates: &[u8], round: usize) -> Sample {
    let mut lab = Lab::new(&format!("p2{}{round}", &node.name()[..2]));
    let observer = Observer::start(&lab.b, n);
    let cpu_start = CpuClock::now();
    if node == Node::Floor {
        return floor(&lab, &observer, n, cpu_start);
    }
    let (pids, _frr) = start_node(&mut lab, node);
    // What a daemon does as it starts (FRR's zebra and bgpd meeting, BIRD's first
    // scan) is not what is measured.
    std::thread::sleep(Duration::from_secs(1));

    let mut session = Session::connect(&lab.a);
    let established = Instant::now();
    session.stream.write_all(updates).unwrap();
    let written = established.elapsed();
    let all = observer.wait(|s| s.full_at, DEADLINE).unwrap_or_else(|| {
        panic!(
            "{}: not every route reached the kernel: {}",
            node.name(),
            diag(&lab, &observer)
        )
    });
    // The peak of the ingest, before the listing below, which BIRD and FRR are
    // not asked for.
    let ingest_peak_kb: u64 = pids.iter().map(|p| status_kb(*p, "VmHWM")).sum();
    // The speaker's API at N routes: the whole listing, as a user asks for it.
    let api = (node == Node::Speaker).then(|| {
        let before = status_kb(pids[0], "VmHWM");
        let t = Instant::now();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_speaker"))
            .args(["routes", "--json", "--socket"])
            .arg(lab.path("speaker.sock"))
            .output()
            .expect("speaker routes");
        assert!(
            out.status.success(),
            "speaker routes: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            t.elapsed().as_secs_f64(),
            out.stdout.len() as f64 / 1e6,
            (status_kb(pids[0], "VmHWM").saturating_sub(before)) as f64 / 1024.0,
        )
    });
    // The withdrawal's peak from here: writing 5 to clear_refs sets VmHWM to the
    // RSS of now (what the listing freed and malloc kept still counts against us).
    for pid in &pids {
        let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
    }
    let end = session.close();
    let gone = observer
        .wait(|s| s.empty_at.filter(|t| *t > end), DEADLINE)
        .unwrap_or_else(|| panic!("{}: routes left in the kernel: {}", node.name(), diag(&lab, &observer)));
    let first_gone = observer
        .wait(|s| s.first_gone_at, DEADLINE)
        .expect("a first route gone");
    observer.check();
    if std::env::var_os("BENCH_P2_SHOW_LOG").is_some() {
        println!(
            "{}",
            std::fs::read_to_string(lab.path(&format!("{}.log", node.name()))).unwrap_or_default()
        );
    }
    let withdraw_peak_kb: u64 = pids.iter().map(|p| status_kb(*p, "VmHWM")).sum();
    let peak_rss_mb = ingest_peak_kb.max(withdraw_peak_kb) as f64 / 1024.0;
    let ours: u64 = pids.iter().map(|p| cpu_ticks(*p)).sum();
    Sample {
        established_to_all: (all - established).as_secs_f64(),
        injector_written: written.as_secs_f64(),
        withdraw_all: (gone - end).as_secs_f64(),
        first_gone: (first_gone - end).as_secs_f64(),
        peak_rss_mb,
        api,
        other_cpu: cpu_start.other_share(ours),
    }
}

fn diag(lab: &Lab, observer: &Observer) -> String {
    let s = observer.state.0.lock().unwrap();
    format!(
        "{} of {} routes present\n--- node log ---\n{}{}",
        s.count,
        s.target,
        lab.log("speaker"),
        lab.log("bird")
    )
}

/// Starts the node daemon in `b`; the PIDs whose memory counts.
fn start_node(lab: &mut Lab, node: Node) -> (Vec<u32>, Option<Frr>) {
    let b = lab.b.clone();
    match node {
        Node::Speaker => {
            let sock = lab.path("speaker.sock");
            let config = lab.write(
                "speaker.yaml",
                &format!(
                    "asNumber: {NODE_AS}\nrouterID: 10.0.0.2\npools: [{POOL}]\ngracefulRestart: {{enabled: false}}\n\
                     apiSocket: {}\npeers:\n  - peerIP: 10.0.0.1\n    asNumber: {INJECTOR_AS}\n    holdTime: 90\n    connectRetryTime: 1\n",
                    sock.display()
                ),
            );
            let bin = env!("CARGO_BIN_EXE_speaker");
            let config = config.display().to_string();
            let log = std::env::var("BENCH_P2_RUST_LOG").unwrap_or_else(|_| "speaker=info".into());
            // A profiler to run the speaker under (`heaptrack -o FILE`): its figures
            // are then the profiler's, for finding where memory goes, not for the report.
            let wrap = std::env::var("BENCH_P2_SPEAKER_WRAP").unwrap_or_default();
            let mut args: Vec<&str> = wrap.split_whitespace().collect();
            args.extend([bin, "run", "-c", &config]);
            lab.spawn("speaker", &b, &args, &[("RUST_LOG", log.as_str())]);
            (vec![lab.pid("speaker").unwrap()], None)
        }
        Node::Bird => {
            // Calico's bird.cfg, reduced to one eBGP peer: the kernel protocol learns,
            // persists, merges paths and scans every 2 s.
            lab.start_bird(&format!(
                r#"
router id 10.0.0.2;
protocol device {{ scan time 2; }}
protocol kernel {{
  learn; persist; scan time 2; merge paths on; graceful restart;
  ipv4 {{ import all; export all; }};
}}
protocol bgp injector {{
  local 10.0.0.2 as {NODE_AS}; neighbor 10.0.0.1 as {INJECTOR_AS};
  connect retry time 1; error wait time 1, 5;
  ipv4 {{ import all; export none; }};
}}
"#
            ));
            (vec![lab.pid("bird").unwrap()], None)
        }
        Node::Frr => {
            let frr = Frr::start(
                lab,
                &format!("p2{}", std::process::id() % 1000),
                &format!(
                    r#"
frr defaults datacenter
hostname node
router bgp {NODE_AS}
 bgp router-id 10.0.0.2
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor 10.0.0.1 remote-as {INJECTOR_AS}
 neighbor 10.0.0.1 timers connect 1
"#
                ),
            );
            (vec![lab.pid("zebra").unwrap(), lab.pid("bgpd").unwrap()], Some(frr))
        }
        Node::Floor => unreachable!(),
    }
}

/// The kernel's floor: the routes added, then deleted, over one netlink socket in
/// `b`, BATCH requests per send, each batch's acknowledgements read before the next.
fn floor(lab: &Lab, observer: &Observer, n: usize, cpu_start: CpuClock) -> Sample {
    let fd = in_netns(&lab.b, || netlink_socket(0));
    let oif = in_netns(&lab.b, || {
        let name = std::ffi::CString::new("eth1").unwrap();
        // SAFETY: a NUL-terminated name.
        unsafe { libc::if_nametoindex(name.as_ptr()) }
    });
    let targets = prefixes(n);
    let start = Instant::now();
    send_batched(&fd, &targets, true, oif);
    let all = observer
        .wait(|s| s.full_at, DEADLINE)
        .expect("floor: routes in the kernel");
    let end = Instant::now();
    send_batched(&fd, &targets, false, oif);
    let gone = observer
        .wait(|s| s.empty_at.filter(|t| *t > end), DEADLINE)
        .expect("floor: routes gone");
    let first_gone = observer
        .wait(|s| s.first_gone_at, DEADLINE)
        .expect("a first route gone");
    observer.check();
    Sample {
        established_to_all: (all - start).as_secs_f64(),
        injector_written: 0.0,
        withdraw_all: (gone - end).as_secs_f64(),
        first_gone: (first_gone - end).as_secs_f64(),
        peak_rss_mb: 0.0,
        api: None,
        other_cpu: cpu_start.other_share(0),
    }
}

/// The injector's side of one BGP session, Established.
struct Session {
    stream: TcpStream,
}

impl Session {
    /// Connects from `ns` to the node (retrying while it starts) and exchanges
    /// OPEN and KEEPALIVE; returns once the node's KEEPALIVE is read.
    fn connect(ns: &str) -> Session {
        let stream = in_netns(ns, || {
            let peer = SocketAddr::from((Ipv4Addr::new(10, 0, 0, 2), 179));
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                match TcpStream::connect_timeout(&peer, Duration::from_secs(1)) {
                    Ok(s) => return s,
                    Err(e) if Instant::now() > deadline => panic!("the node never accepted: {e}"),
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut s = Session { stream };
        let open = Open::new(
            INJECTOR_AS,
            90,
            Ipv4Addr::new(10, 0, 0, 1),
            vec![
                Capability::Multiprotocol(AfiSafi::IPV4_UNICAST),
                Capability::FourOctetAs(INJECTOR_AS),
            ],
        );
        s.send(&Message::Open(open));
        let mut buf = Vec::new();
        loop {
            match s.read(&mut buf) {
                Message::Open(_) => s.send(&Message::Keepalive),
                Message::Keepalive => return s,
                Message::Notification(n) => panic!("the node refused the session: {n:?}"),
                _ => {}
            }
        }
    }

    fn send(&mut self, m: &Message) {
        let bytes = m.to_bytes(&SessionCaps { four_octet_as: true }).unwrap();
        self.stream.write_all(&bytes).unwrap();
    }

    fn read(&mut self, buf: &mut Vec<u8>) -> Message {
        let caps = SessionCaps { four_octet_as: true };
        loop {
            if let Ok((m, len)) = Message::decode(buf, &caps) {
                buf.drain(..len);
                return m;
            }
            let mut chunk = [0u8; 4096];
            let got = self.stream.read(&mut chunk).expect("reading from the node");
            assert!(got > 0, "the node closed the session");
            buf.extend_from_slice(&chunk[..got]);
        }
    }

    /// Sends a Cease and closes; the instant the NOTIFICATION was written. The
    /// node's last bytes are read to the end in a thread, so the close is a FIN,
    /// not a reset.
    fn close(mut self) -> Instant {
        let cease = speaker::packet::Notification::cease(speaker::packet::CeaseSubcode::AdministrativeShutdown);
        let end = Instant::now();
        self.send(&Message::Notification(cease));
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
        std::thread::spawn(move || {
            let mut sink = [0u8; 4096];
            while matches!(self.stream.read(&mut sink), Ok(n) if n > 0) {}
        });
        end
    }
}

#[derive(Default)]
struct ObserverState {
    present: Vec<bool>,
    count: usize,
    target: usize,
    full_at: Option<Instant>,
    /// The first route gone once all were there.
    first_gone_at: Option<Instant>,
    empty_at: Option<Instant>,
    overrun: bool,
}

/// Listens to IPv4 route events in a namespace and keeps which /32s of the pool
/// are in its main table, noting when all of them are and when none is.
struct Observer {
    state: Arc<(Mutex<ObserverState>, Condvar)>,
    stop: Arc<AtomicBool>,
}

impl Observer {
    fn start(ns: &str, target: usize) -> Observer {
        let fd = in_netns(ns, || netlink_socket(libc::RTMGRP_IPV4_ROUTE as u32));
        let state = Arc::new((
            Mutex::new(ObserverState {
                present: vec![false; 1 << 18],
                target,
                ..ObserverState::default()
            }),
            Condvar::new(),
        ));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, flag) = (state.clone(), stop.clone());
        std::thread::spawn(move || listen(fd, &st, &flag));
        Observer { state, stop }
    }

    /// Waits (bounded) for `f` of the state to give an instant.
    fn wait(&self, f: impl Fn(&ObserverState) -> Option<Instant>, timeout: Duration) -> Option<Instant> {
        let (lock, cv) = &*self.state;
        let deadline = Instant::now() + timeout;
        let mut s = lock.lock().unwrap();
        loop {
            assert!(!s.overrun, "the route listener overran: timings lost");
            if let Some(t) = f(&s) {
                return Some(t);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            s = cv.wait_timeout(s, left.min(Duration::from_millis(100))).unwrap().0;
        }
    }

    fn check(&self) {
        assert!(!self.state.0.lock().unwrap().overrun, "the route listener overran");
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn listen(fd: OwnedFd, state: &(Mutex<ObserverState>, Condvar), stop: &AtomicBool) {
    let mut buf = vec![0u8; 1 << 20];
    let base = u32::from(POOL.network());
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: reading into a buffer we own, of the length given.
        let got = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        let now = Instant::now();
        if got < 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::ENOBUFS) {
                state.0.lock().unwrap().overrun = true;
                state.1.notify_all();
            }
            continue;
        }
        let (lock, cv) = state;
        let mut s = lock.lock().unwrap();
        let mut changed = false;
        for (kind, msg) in netlink_messages(&buf[..got as usize]) {
            let add = match kind {
                libc::RTM_NEWROUTE => true,
                libc::RTM_DELROUTE => false,
                _ => continue,
            };
            let Some((dst, len, table)) = route_dst(msg) else {
                continue;
            };
            let i = u32::from(dst).wrapping_sub(base) as usize;
            if len != 32 || table != libc::RT_TABLE_MAIN as u32 || i >= s.present.len() {
                continue;
            }
            if s.present[i] != add {
                s.present[i] = add;
                if add {
                    s.count += 1;
                } else {
                    s.count -= 1;
                }
                changed = true;
            }
        }
        if changed {
            if s.count == s.target && s.full_at.is_none() {
                s.full_at = Some(now);
            }
            if s.count < s.target && s.full_at.is_some() && s.first_gone_at.is_none() {
                s.first_gone_at = Some(now);
            }
            if s.count == 0 && s.full_at.is_some() {
                s.empty_at = Some(now);
            }
            cv.notify_all();
        }
    }
}

/// (type, payload) of each netlink message in a datagram.
fn netlink_messages(mut data: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while data.len() >= 16 {
        let len = u32::from_ne_bytes(data[0..4].try_into().unwrap()) as usize;
        let kind = u16::from_ne_bytes(data[4..6].try_into().unwrap());
        if len < 16 || len > data.len() {
            break;
        }
        out.push((kind, &data[16..len]));
        data = &data[(len + 3) & !3..];
        if data.len() < 16 {
            break;
        }
    }
    out
}

/// Destination, prefix length and table of an IPv4 route message.
fn route_dst(msg: &[u8]) -> Option<(Ipv4Addr, u8, u32)> {
    if msg.len() < 12 || i32::from(msg[0]) != libc::AF_INET {
        return None;
    }
    let len = msg[1];
    let mut table = u32::from(msg[4]);
    let mut dst = Ipv4Addr::UNSPECIFIED;
    let mut attrs = &msg[12..];
    while attrs.len() >= 4 {
        let alen = usize::from(u16::from_ne_bytes([attrs[0], attrs[1]]));
        let kind = u16::from_ne_bytes([attrs[2], attrs[3]]);
        if alen < 4 || alen > attrs.len() {
            break;
        }
        let value = &attrs[4..alen];
        match kind {
            libc::RTA_DST if value.len() == 4 => dst = Ipv4Addr::new(value[0], value[1], value[2], value[3]),
            libc::RTA_TABLE if value.len() == 4 => table = u32::from_ne_bytes(value.try_into().unwrap()),
            _ => {}
        }
        attrs = &attrs[((alen + 3) & !3).min(attrs.len())..];
    }
    Some((dst, len, table))
}

/// A NETLINK_ROUTE socket of the calling thread's namespace, joined to `groups`,
/// with a receive buffer large enough for a burst of 100k route events.
fn netlink_socket(groups: u32) -> OwnedFd {
    // SAFETY: plain socket calls on an fd we own; pointers to locals of the right size.
    unsafe {
        let fd = libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        );
        assert!(fd >= 0, "netlink socket: {}", std::io::Error::last_os_error());
        let fd = OwnedFd::from_raw_fd(fd);
        let size: libc::c_int = 256 << 20;
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&size as *const libc::c_int).cast(),
            4,
        );
        let mut addr: libc::sockaddr_nl = std::mem::zeroed();
        addr.nl_family = libc::AF_NETLINK as u16;
        addr.nl_groups = groups;
        let rc = libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        );
        assert_eq!(rc, 0, "bind netlink: {}", std::io::Error::last_os_error());
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 100_000,
        };
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as u32,
        );
        fd
    }
}

/// Adds (via 10.0.0.1 on `oif`) or deletes `targets`, BATCH requests per send,
/// reading each batch's acknowledgements before the next; panics on a refusal.
fn send_batched(fd: &OwnedFd, targets: &[IpNet], add: bool, oif: u32) {
    let mut seq = 0u32;
    let mut reply = vec![0u8; 1 << 20];
    for chunk in targets.chunks(BATCH) {
        let mut buf = Vec::with_capacity(chunk.len() * 64);
        for p in chunk {
            let IpNet::V4(p) = p else { unreachable!() };
            seq += 1;
            let mut attrs = Vec::new();
            push_attr(&mut attrs, libc::RTA_DST, &p.addr().octets());
            if add {
                push_attr(&mut attrs, libc::RTA_GATEWAY, &[10, 0, 0, 1]);
                push_attr(&mut attrs, libc::RTA_OIF, &oif.to_ne_bytes());
            }
            let len = 16 + 12 + attrs.len();
            let (kind, flags) = if add {
                (
                    libc::RTM_NEWROUTE,
                    libc::NLM_F_REQUEST | libc::NLM_F_ACK | libc::NLM_F_CREATE | libc::NLM_F_EXCL,
                )
            } else {
                (libc::RTM_DELROUTE, libc::NLM_F_REQUEST | libc::NLM_F_ACK)
            };
            buf.extend((len as u32).to_ne_bytes());
            buf.extend(kind.to_ne_bytes());
            buf.extend((flags as u16).to_ne_bytes());
            buf.extend(seq.to_ne_bytes());
            buf.extend(0u32.to_ne_bytes());
            // rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags
            let scope = if add {
                libc::RT_SCOPE_UNIVERSE
            } else {
                libc::RT_SCOPE_NOWHERE
            };
            buf.extend([
                libc::AF_INET as u8,
                32,
                0,
                0,
                libc::RT_TABLE_MAIN,
                FLOOR_PROTO,
                scope,
                libc::RTN_UNICAST,
            ]);
            buf.extend(0u32.to_ne_bytes());
            buf.extend(attrs);
        }
        // SAFETY: sending a buffer we own.
        let sent = unsafe { libc::send(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), 0) };
        assert_eq!(
            sent as usize,
            buf.len(),
            "netlink send: {}",
            std::io::Error::last_os_error()
        );
        let mut acks = 0;
        while acks < chunk.len() {
            // SAFETY: reading into a buffer we own.
            let got = unsafe { libc::recv(fd.as_raw_fd(), reply.as_mut_ptr().cast(), reply.len(), 0) };
            assert!(got > 0, "netlink acks: {}", std::io::Error::last_os_error());
            for (kind, msg) in netlink_messages(&reply[..got as usize]) {
                if kind == libc::NLMSG_ERROR as u16 {
                    let errno = i32::from_ne_bytes(msg[0..4].try_into().unwrap());
                    assert_eq!(errno, 0, "the kernel refused a floor route: errno {}", -errno);
                    acks += 1;
                }
            }
        }
    }
}

fn push_attr(buf: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let len = 4 + value.len();
    buf.extend((len as u16).to_ne_bytes());
    buf.extend(kind.to_ne_bytes());
    buf.extend(value);
    buf.resize((buf.len() + 3) & !3, 0);
}

/// A field of /proc/PID/status in kB (0 when the process is gone).
fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// User and system clock ticks of a process so far (with its threads).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat: 11 and 12 after the name.
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

/// The contention guard's clock: the machine's busy ticks and ours at the start.
struct CpuClock {
    at: Instant,
    busy: u64,
    own: u64,
}

impl CpuClock {
    fn now() -> CpuClock {
        CpuClock {
            at: Instant::now(),
            busy: machine_busy_ticks(),
            own: cpu_ticks(std::process::id()),
        }
    }

    /// The share of one core the machine spent on anything else than this
    /// program and the processes under test (`theirs` ticks, counted since they started).
    fn other_share(&self, theirs: u64) -> f64 {
        let busy = machine_busy_ticks().saturating_sub(self.busy);
        let own = cpu_ticks(std::process::id()).saturating_sub(self.own);
        let hz = 100.0; // USER_HZ on Linux
        let other = busy.saturating_sub(own + theirs) as f64 / hz;
        other / self.at.elapsed().as_secs_f64()
    }
}

/// Busy ticks of all CPUs: /proc/stat's first line, less idle and iowait.
fn machine_busy_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = f.iter().take(8).sum();
    total - f.get(3).copied().unwrap_or(0) - f.get(4).copied().unwrap_or(0)
}

fn report_dir() -> std::path::PathBuf {
    let dir = common::target_dir().join("bench-report");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
