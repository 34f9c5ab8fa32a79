//! The socket side of BFD (RFC 5881, single hop): one task owns the sockets and
//! every session's state machine ([`crate::bfd`]). Control packets are received
//! on UDP 3784 and kept only with a TTL (hop limit) of 255; they are sent with
//! TTL 255 from a port in 49152-65535. A session going from Up to Down tells its
//! BGP session at once, which ends with Cease/"BFD Down" (RFC 9384).

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};
use tracing::{debug, info, warn};

use crate::bfd::{Action, Packet, Session, State, Timers, CONTROL_PORT};
use crate::messages::SessionCmd;
use crate::shutdown::Shutdown;
use crate::transport::set_int_option;

/// What `speaker status` and the metrics show of one peer's BFD session.
#[derive(Clone, Debug)]
pub struct BfdStatus {
    pub state: State,
    /// Why it last went down, empty while it never did.
    pub diag: &'static str,
    /// The detection time agreed with the peer; zero before its first packet.
    pub detect: Duration,
    pub since: SystemTime,
    pub transitions: u64,
    /// Why the session cannot run (the sockets could not be opened).
    pub error: Option<String>,
}

pub type SharedBfd = Arc<Mutex<BTreeMap<IpAddr, BfdStatus>>>;

enum Cmd {
    Add {
        peer: IpAddr,
        timers: Timers,
        session: mpsc::UnboundedSender<SessionCmd>,
    },
    Remove(IpAddr),
}

/// The daemon's end of the BFD task.
#[derive(Clone)]
pub struct BfdHandle {
    cmds: mpsc::UnboundedSender<Cmd>,
    pub status: SharedBfd,
}

impl BfdHandle {
    /// Starts (or restarts with new timers) the BFD session with `peer`; its
    /// failures go to `session`.
    pub fn add(&self, peer: IpAddr, timers: Timers, session: mpsc::UnboundedSender<SessionCmd>) {
        let _ = self.cmds.send(Cmd::Add { peer, timers, session });
    }

    /// Ends the session with `peer`, telling it so (AdminDown).
    pub fn remove(&self, peer: IpAddr) {
        let _ = self.cmds.send(Cmd::Remove(peer));
    }
}

/// Spawns the BFD task, which ends (after telling its peers) with `shutdown`.
/// Its sockets are opened with the first session, so a speaker without BFD never
/// takes port 3784.
pub fn spawn(shutdown: Shutdown) -> (BfdHandle, tokio::task::JoinHandle<()>) {
    let (cmds, rx) = mpsc::unbounded_channel();
    let status = SharedBfd::default();
    let task = tokio::spawn(run(rx, status.clone(), shutdown));
    (BfdHandle { cmds, status }, task)
}

struct Entry {
    session: Session,
    bgp: mpsc::UnboundedSender<SessionCmd>,
}

/// One family's receiving and sending sockets.
struct Sockets {
    rx: UdpSocket,
    tx: UdpSocket,
}

struct Task {
    started: Instant,
    status: SharedBfd,
    sessions: BTreeMap<IpAddr, Entry>,
    v4: Option<Sockets>,
    v6: Option<Sockets>,
    next_discr: u32,
}

async fn run(mut cmds: mpsc::UnboundedReceiver<Cmd>, status: SharedBfd, mut shutdown: Shutdown) {
    let mut t = Task {
        started: Instant::now(),
        status,
        sessions: BTreeMap::new(),
        v4: None,
        v6: None,
        // Distinct across restarts, so a peer never takes a new session's packets
        // for the old one's.
        next_discr: (std::process::id() << 12) | 1,
    };
    let mut buf4 = [0u8; 128];
    let mut buf6 = [0u8; 128];
    loop {
        let next = t.sessions.values().map(|e| e.session.next_deadline()).min();
        let (v4, v6) = (t.v4.as_ref().map(|s| &s.rx), t.v6.as_ref().map(|s| &s.rx));
        tokio::select! {
            _ = shutdown.recv() => break,
            cmd = cmds.recv() => match cmd {
                Some(Cmd::Add { peer, timers, session }) => t.add(peer, timers, session),
                Some(Cmd::Remove(peer)) => t.remove(peer).await,
                None => break,
            },
            r = recv(v4, &mut buf4), if v4.is_some() => t.received(r, &buf4).await,
            r = recv(v6, &mut buf6), if v6.is_some() => t.received(r, &buf6).await,
            _ = async { sleep_until(t.started + next.expect("guarded")).await }, if next.is_some() => t.tick().await,
        }
    }
    // Peers must not take our stopping for a failure (RFC 5882 3.2).
    let peers: Vec<IpAddr> = t.sessions.keys().copied().collect();
    for peer in peers {
        t.remove(peer).await;
    }
}

impl Task {
    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    fn add(&mut self, peer: IpAddr, timers: Timers, bgp: mpsc::UnboundedSender<SessionCmd>) {
        let error = self.open(peer.is_ipv4()).err();
        if let Some(e) = &error {
            warn!(%peer, error = %e, "BFD cannot run");
        }
        if let Some(e) = self.sessions.get_mut(&peer) {
            if e.session.timers() == timers {
                // A new BGP session under the same BFD session: keep it.
                e.bgp = bgp;
                return;
            }
        }
        let discr = self.next_discr;
        self.next_discr = self.next_discr.wrapping_add(1).max(1);
        let now = self.now();
        self.sessions.insert(
            peer,
            Entry {
                session: Session::new(timers, discr, now),
                bgp,
            },
        );
        self.status.lock().expect("bfd status").insert(
            peer,
            BfdStatus {
                state: State::Down,
                diag: "",
                detect: Duration::ZERO,
                since: SystemTime::now(),
                transitions: 0,
                error: error.map(|e| e.to_string()),
            },
        );
        info!(%peer, min_tx_ms = timers.min_tx / 1000, min_rx_ms = timers.min_rx / 1000, multiplier = timers.multiplier, "BFD session started");
    }

    async fn remove(&mut self, peer: IpAddr) {
        if let Some(mut e) = self.sessions.remove(&peer) {
            let p = e.session.shut_down();
            self.send(peer, &p).await;
            info!(%peer, "BFD session ended");
        }
        self.status.lock().expect("bfd status").remove(&peer);
    }

    /// Opens the family's sockets if they are not yet.
    fn open(&mut self, v4: bool) -> io::Result<()> {
        let slot = if v4 { &mut self.v4 } else { &mut self.v6 };
        if slot.is_none() {
            *slot = Some(Sockets {
                rx: socket(v4, CONTROL_PORT)?,
                tx: tx_socket(v4)?,
            });
        }
        Ok(())
    }

    async fn received(&mut self, r: io::Result<(usize, SocketAddr, Option<u8>)>, buf: &[u8]) {
        let (len, from, ttl) = match r {
            Ok(x) => x,
            Err(e) => {
                warn!(error = %e, "BFD: cannot read from the socket");
                tokio::time::sleep(Duration::from_millis(100)).await;
                return;
            }
        };
        let source = canonical(from.ip());
        if ttl != Some(255) {
            debug!(%source, ?ttl, "BFD packet dropped: TTL is not 255 (RFC 5881 5)");
            return;
        }
        let packet = match Packet::decode(&buf[..len]) {
            Ok(p) => p,
            Err(e) => {
                debug!(%source, error = %e, "BFD packet dropped");
                return;
            }
        };
        let peer = if packet.your_discr != 0 {
            self.sessions
                .iter()
                .find(|(_, e)| e.session.my_discr() == packet.your_discr)
                .map(|(p, _)| *p)
        } else {
            self.sessions.contains_key(&source).then_some(source)
        };
        let Some(peer) = peer.filter(|p| *p == source) else {
            debug!(%source, your_discr = packet.your_discr, "BFD packet for no session of ours");
            return;
        };
        let now = self.now();
        let actions = match self.sessions.get_mut(&peer) {
            Some(e) => e.session.receive(&packet, now),
            None => return,
        };
        self.act(peer, actions).await;
    }

    async fn tick(&mut self) {
        let now = self.now();
        let due: Vec<IpAddr> = self
            .sessions
            .iter()
            .filter(|(_, e)| e.session.next_deadline() <= now)
            .map(|(p, _)| *p)
            .collect();
        for peer in due {
            let actions = match self.sessions.get_mut(&peer) {
                Some(e) => e.session.tick(now),
                None => continue,
            };
            self.act(peer, actions).await;
        }
    }

    async fn act(&mut self, peer: IpAddr, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send(p) => self.send(peer, &p).await,
                Action::Changed { from, to, diag } => {
                    let Some(e) = self.sessions.get(&peer) else { continue };
                    if let Some(s) = self.status.lock().expect("bfd status").get_mut(&peer) {
                        s.state = to;
                        s.since = SystemTime::now();
                        s.transitions += 1;
                        s.detect = e.session.detection_time();
                        if to != State::Up {
                            s.diag = diag.as_str();
                        }
                    }
                    if from == State::Up && to == State::Down {
                        warn!(%peer, diag = diag.as_str(), "BFD session down: taking the BGP session down");
                        let _ = e.bgp.send(SessionCmd::BfdDown(diag.as_str()));
                    } else {
                        info!(%peer, %from, %to, "BFD state");
                    }
                }
            }
        }
    }

    async fn send(&self, peer: IpAddr, p: &Packet) {
        let socket = match peer {
            IpAddr::V4(_) => self.v4.as_ref(),
            IpAddr::V6(_) => self.v6.as_ref(),
        };
        let Some(s) = socket else { return };
        if let Err(e) = s.tx.send_to(&p.encode(), SocketAddr::new(peer, CONTROL_PORT)).await {
            debug!(%peer, error = %e, "BFD: cannot send");
        }
    }
}

/// An IPv4 peer seen on the IPv6 socket as a mapped address is the IPv4 peer.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// A UDP socket of the family on `port`, sending with TTL 255 and reporting the
/// TTL of what it receives. IPv6 sockets are IPv6 only.
fn socket(v4: bool, port: u16) -> io::Result<UdpSocket> {
    let (domain, addr) = if v4 {
        (libc::AF_INET, SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port))
    } else {
        (libc::AF_INET6, SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port))
    };
    // SAFETY: a plain socket(2) call; the descriptor is owned right below.
    let fd = unsafe { libc::socket(domain, libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and nothing else owns it.
    let std = unsafe { <std::net::UdpSocket as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    if v4 {
        set_int_option(fd, libc::IPPROTO_IP, libc::IP_TTL, 255, "IP_TTL")?;
        set_int_option(fd, libc::IPPROTO_IP, libc::IP_RECVTTL, 1, "IP_RECVTTL")?;
    } else {
        set_int_option(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1, "IPV6_V6ONLY")?;
        set_int_option(
            fd,
            libc::IPPROTO_IPV6,
            libc::IPV6_UNICAST_HOPS,
            255,
            "IPV6_UNICAST_HOPS",
        )?;
        set_int_option(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, 1, "IPV6_RECVHOPLIMIT")?;
    }
    bind(&std, addr).map_err(|e| io::Error::new(e.kind(), format!("UDP {addr}: {e}")))?;
    UdpSocket::from_std(std)
}

fn bind(s: &std::net::UdpSocket, addr: SocketAddr) -> io::Result<()> {
    let (storage, len) = sockaddr(addr);
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes.
    let rc = unsafe { libc::bind(s.as_raw_fd(), (&storage as *const libc::sockaddr_storage).cast(), len) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            let sin = unsafe { &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from(*a.ip()).to_be();
            (storage, std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t)
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_scope_id = a.scope_id();
            (storage, std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t)
        }
    }
}

/// The sending socket: a source port in 49152-65535 (RFC 5881 4), the first free
/// one from a place that depends on our PID.
fn tx_socket(v4: bool) -> io::Result<UdpSocket> {
    let start = 49152 + (std::process::id() % 16384) as u16;
    let mut last = None;
    for i in 0..64u16 {
        let port = 49152 + (start - 49152 + i) % 16384;
        match socket(v4, port) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free source port")))
}

/// One datagram, its sender and the TTL (hop limit) it arrived with.
async fn recv(socket: Option<&UdpSocket>, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, Option<u8>)> {
    let socket = socket.expect("guarded");
    socket
        .async_io(Interest::READABLE, || recvmsg(socket.as_raw_fd(), buf))
        .await
}

fn recvmsg(fd: i32, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, Option<u8>)> {
    // SAFETY: all-zero is valid for these C structs; every pointer set below
    // points at a live buffer of the length given with it.
    let mut name: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut control = [0u64; 16];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut name as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: `msg` describes the buffers above.
    let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut ttl = None;
    // SAFETY: the CMSG_* walk stays within `msg_controllen` bytes of `control`,
    // as the kernel filled them.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            let h = &*c;
            if (h.cmsg_level == libc::IPPROTO_IP && h.cmsg_type == libc::IP_TTL)
                || (h.cmsg_level == libc::IPPROTO_IPV6 && h.cmsg_type == libc::IPV6_HOPLIMIT)
            {
                let v = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<i32>());
                ttl = u8::try_from(v).ok();
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    let from = match i32::from(name.ss_family) {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in for an AF_INET socket.
            let sin = unsafe { &*(&name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            SocketAddr::new(
                IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))),
                u16::from_be(sin.sin_port),
            )
        }
        _ => {
            // SAFETY: otherwise an AF_INET6 socket, and a sockaddr_in6.
            let sin6 = unsafe { &*(&name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)),
                u16::from_be(sin6.sin6_port),
            )
        }
    };
    Ok((n as usize, from, ttl))
}
