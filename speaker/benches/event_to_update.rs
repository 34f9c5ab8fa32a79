//! Kernel route event to UPDATE on the wire: the speaker in namespace `a`, BIRD in
//! `b`, session Established. Each iteration adds a blackhole route in a pool in `a`
//! through netlink and times the UPDATE carrying it as it leaves `a`'s veth, then
//! deletes it and times the withdrawal the same way.
//!
//! Clocks: t0 is CLOCK_REALTIME read right before the netlink request is sent; t1
//! is the kernel's timestamp of the captured packet (SO_TIMESTAMPNS on an AF_PACKET
//! socket bound to `a`'s eth1, also CLOCK_REALTIME), taken when the packet passes
//! the device, so our own capture loop adds nothing.
//!
//! `SPEAKER_BENCH_ITERS` sets the iterations (default 200). The summary is printed
//! and written to `target/lab-report/bench-event-to-update.json`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{in_netns, target_dir, Lab, PEER_AS, SPEAKER_AS};
use ipnet::{IpNet, Ipv4Net};
use rtnetlink::packet_route::route::RouteType;
use rtnetlink::RouteMessageBuilder;
use serde_json::json;
use speaker::packet::{Message, SessionCaps};

const BIRD_CONF: &str = r#"
router id 10.0.0.2;
log stderr all;
protocol device {}
protocol kernel k4 { ipv4 { import none; export where source = RTS_BGP; }; }
protocol bgp spk4 {
  local 10.0.0.2 as 65000; neighbor 10.0.0.1 as 64512;
  hold time 9; connect retry time 1;
  ipv4 { import all; export none; };
}
"#;

/// What the capture saw in one UPDATE leaving `a`.
struct Seen {
    /// Kernel timestamp, nanoseconds since the epoch.
    at_ns: u128,
    announced: Vec<IpNet>,
    withdrawn: Vec<IpNet>,
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let iters: usize = std::env::var("SPEAKER_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let mut lab = Lab::new("bench");
    lab.start_bird(BIRD_CONF);
    let sock = lab.path("speaker.sock");
    let config = lab.write(
        "speaker.yaml",
        &format!(
            "asNumber: {SPEAKER_AS}\nrouterID: 10.0.0.1\npools: [10.244.0.0/16]\ngracefulRestart: {{enabled: false}}\n\
             apiSocket: {}\npeers:\n  - peerIP: 10.0.0.2\n    asNumber: {PEER_AS}\n    holdTime: 9\n    connectRetryTime: 1\n",
            sock.display()
        ),
    );
    lab.start_speaker(&config);
    lab.wait(
        "BIRD sees the session Established",
        Duration::from_secs(10),
        || lab.bird_established("spk4").then_some(()),
        || lab.birdc("show protocols all"),
    );

    // Both sockets are created inside `a` and then used from here.
    let ns_a = lab.a.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rt = runtime.handle().clone();
    let (capture_fd, nl) = in_netns(&ns_a, move || {
        let _guard = rt.enter();
        let capture = open_capture("eth1");
        let (conn, handle, _) = rtnetlink::new_connection().expect("netlink socket in a");
        (capture, (conn, handle))
    });
    let (conn, handle) = nl;
    runtime.spawn(conn);

    let stop = Arc::new(AtomicBool::new(false));
    let (seen_tx, seen_rx) = mpsc::channel();
    let capture = {
        let stop = stop.clone();
        std::thread::spawn(move || capture_loop(capture_fd, seen_tx, &stop))
    };
    // Let the initial End-of-RIB and keepalives pass.
    std::thread::sleep(Duration::from_millis(300));
    while seen_rx.try_recv().is_ok() {}

    let mut announce = Vec::with_capacity(iters);
    let mut withdraw = Vec::with_capacity(iters);
    for i in 0..iters {
        let prefix = Ipv4Net::new(Ipv4Addr::new(10, 244, (i / 4 % 256) as u8, (i % 4 * 64) as u8), 26).unwrap();
        let msg = || {
            RouteMessageBuilder::<Ipv4Addr>::new()
                .destination_prefix(prefix.addr(), prefix.prefix_len())
                .kind(RouteType::BlackHole)
                .build()
        };
        let t0 = now_ns();
        runtime
            .block_on(handle.route().add(msg()).execute())
            .unwrap_or_else(|e| panic!("adding {prefix}: {e}"));
        announce.push(wait_for(&lab, &seen_rx, prefix, true, t0));
        let t0 = now_ns();
        runtime
            .block_on(handle.route().del(msg()).execute())
            .unwrap_or_else(|e| panic!("deleting {prefix}: {e}"));
        withdraw.push(wait_for(&lab, &seen_rx, prefix, false, t0));
    }
    stop.store(true, Ordering::Relaxed);
    let _ = capture.join();

    let a = Stats::of(&mut announce);
    let w = Stats::of(&mut withdraw);
    println!("event_to_update: {iters} iterations, speaker -> BIRD, kernel packet timestamps");
    println!("  announce: {a}");
    println!("  withdraw: {w}");
    let report = json!({
        "bench": "event_to_update",
        "peer": "bird",
        "iterations": iters,
        "clock": "t0 CLOCK_REALTIME before the netlink request; t1 SO_TIMESTAMPNS of the packet on a's veth",
        "announce_ms": a.json(),
        "withdraw_ms": w.json(),
        "target_median_ms": 5.0,
    });
    let dir = target_dir().join("lab-report");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bench-event-to-update.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("  written to {}", path.display());
    let status = lab.terminate("speaker");
    assert!(status.is_some_and(|s| s.success()), "{}", lab.log("speaker"));
}

/// Waits (bounded) for the UPDATE that announces or withdraws `prefix`; the delay in ms.
fn wait_for(lab: &Lab, rx: &mpsc::Receiver<Seen>, prefix: Ipv4Net, announced: bool, t0: u128) -> f64 {
    let want = IpNet::V4(prefix);
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(seen) => {
                let list = if announced { &seen.announced } else { &seen.withdrawn };
                if list.contains(&want) {
                    return seen.at_ns.saturating_sub(t0) as f64 / 1e6;
                }
            }
            Err(_) => panic!(
                "no UPDATE {} {prefix} left the speaker within 3 s\n--- speaker log ---\n{}",
                if announced { "announcing" } else { "withdrawing" },
                lab.log("speaker")
            ),
        }
    }
}

struct Stats {
    median: f64,
    p90: f64,
    p99: f64,
    max: f64,
    min: f64,
}

impl Stats {
    fn of(v: &mut [f64]) -> Stats {
        v.sort_by(f64::total_cmp);
        let q = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
        Stats {
            median: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            max: v[v.len() - 1],
            min: v[0],
        }
    }

    fn json(&self) -> serde_json::Value {
        json!({ "median": self.median, "p90": self.p90, "p99": self.p99, "max": self.max, "min": self.min })
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "median {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms (min {:.3} ms)",
            self.median, self.p90, self.p99, self.max, self.min
        )
    }
}

fn now_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()
}

/// An AF_PACKET socket on `ifname` (of the calling thread's namespace) with
/// kernel timestamps and a receive timeout, so the loop can notice `stop`.
fn open_capture(ifname: &str) -> OwnedFd {
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket calls on an fd we own; pointers to locals of the right size.
    unsafe {
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto));
        assert!(fd >= 0, "AF_PACKET socket: {}", std::io::Error::last_os_error());
        let fd = OwnedFd::from_raw_fd(fd);
        let name = std::ffi::CString::new(ifname).unwrap();
        let index = libc::if_nametoindex(name.as_ptr());
        assert!(index > 0, "no interface {ifname}");
        let mut sll: libc::sockaddr_ll = std::mem::zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = index as i32;
        let rc = libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        );
        assert_eq!(rc, 0, "bind AF_PACKET: {}", std::io::Error::last_os_error());
        let one: libc::c_int = 1;
        let rc = libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&one as *const libc::c_int).cast(),
            4,
        );
        assert_eq!(rc, 0, "SO_TIMESTAMPNS: {}", std::io::Error::last_os_error());
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

fn capture_loop(fd: OwnedFd, tx: mpsc::Sender<Seen>, stop: &AtomicBool) {
    let mut buf = vec![0u8; 65536];
    let mut control = [0u64; 64];
    let caps = SessionCaps { four_octet_as: true };
    while !stop.load(Ordering::Relaxed) {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        // SAFETY: msghdr points at live locals of the sizes given.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = (&mut from as *mut libc::sockaddr_ll).cast();
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control);
        // SAFETY: as above.
        let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, 0) };
        if n <= 0 {
            continue;
        }
        if from.sll_pkttype != libc::PACKET_OUTGOING {
            continue;
        }
        let Some(at_ns) = timestamp(&msg) else { continue };
        let Some(payload) = bgp_payload(&buf[..n as usize]) else {
            continue;
        };
        let mut seen = Seen {
            at_ns,
            announced: Vec::new(),
            withdrawn: Vec::new(),
        };
        let mut rest = payload;
        // A segment that does not start on a message boundary is skipped: ours are
        // small and sent whole.
        while let Ok((m, len)) = Message::decode(rest, &caps) {
            if let Message::Update(u) = m {
                seen.announced
                    .extend(u.announced_prefixes().into_iter().map(|(p, _)| p));
                seen.withdrawn.extend(u.withdrawn_prefixes());
            }
            rest = &rest[len..];
        }
        if !seen.announced.is_empty() || !seen.withdrawn.is_empty() {
            let _ = tx.send(seen);
        }
    }
}

/// The SCM_TIMESTAMPNS control message, in nanoseconds since the epoch.
fn timestamp(msg: &libc::msghdr) -> Option<u128> {
    // SAFETY: walking the control buffer the kernel filled, with its own macros.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                return Some(ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128);
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    None
}

/// The TCP payload of an Ethernet frame from or to port 179, if it has one.
fn bgp_payload(frame: &[u8]) -> Option<&[u8]> {
    let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    let ip = frame.get(14..)?;
    let (proto, tcp) = match ethertype {
        0x0800 => {
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
            (*ip.get(9)?, ip.get(ihl..total.min(ip.len()))?)
        }
        0x86dd => {
            let len = usize::from(u16::from_be_bytes([*ip.get(4)?, *ip.get(5)?]));
            (*ip.get(6)?, ip.get(40..(40 + len).min(ip.len()))?)
        }
        _ => return None,
    };
    if proto != 6 {
        return None;
    }
    let sport = u16::from_be_bytes([*tcp.first()?, *tcp.get(1)?]);
    let dport = u16::from_be_bytes([*tcp.get(2)?, *tcp.get(3)?]);
    if sport != 179 && dport != 179 {
        return None;
    }
    let offset = usize::from(tcp.get(12)? >> 4) * 4;
    let payload = tcp.get(offset..)?;
    (!payload.is_empty()).then_some(payload)
}
