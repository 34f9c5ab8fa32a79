//! One task per peer: the TCP connection (ours or accepted), framing with the
//! codec, the timers, and the FSM's actions turned into I/O. It reports to the
//! daemon what the peer sent and when the session goes up or down; it never
//! touches the RIB itself.

use std::collections::HashSet;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::{Buf, BytesMut};
use ipnet::IpNet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::sleep_until;
use tracing::{debug, info, info_span, warn, Instrument};

use crate::config::Neighbor;
use crate::fsm::{collision_notification, needs_hard_reset, Action, Conn, Event, Fsm, FsmConfig, State, Timer};
use crate::messages::{PeerEvent, SessionCmd, SessionUp, SyncResult};
use crate::metrics::SharedMetrics;
use crate::packet::{
    AfiSafi, Capability, CeaseSubcode, DecodeError, GracefulRestart, GracefulRestartFamily, Message, Notification,
    SessionCaps, Update,
};
use crate::shutdown::{Shutdown, StopMode};
use crate::transport;

/// A peer's state as the API shows it.
#[derive(Clone, Debug)]
pub struct PeerStatus {
    pub state: State,
    pub since: SystemTime,
    pub established_at: Option<Instant>,
    pub prefixes_received: usize,
    pub info: String,
    /// FSM state changes since the daemon started.
    pub transitions: u64,
    pub updates_in: u64,
    pub updates_out: u64,
}

pub type SharedStatus = Arc<Mutex<PeerStatus>>;

/// Our side of the session: fixed for the daemon's life.
#[derive(Clone, Debug)]
pub struct LocalSide {
    pub router_id: std::net::Ipv4Addr,
    pub port: u16,
    /// Set in the first OPEN after a restart that kept the FIB (RFC 4724 R bit).
    pub restarting: bool,
    pub metrics: SharedMetrics,
}

/// The daemon's handles on a running session.
pub struct SessionHandle {
    pub neighbor: Neighbor,
    pub cmd: mpsc::UnboundedSender<SessionCmd>,
    pub incoming: mpsc::UnboundedSender<TcpStream>,
    pub status: SharedStatus,
    pub task: JoinHandle<()>,
}

/// Starts the task of one peer.
pub fn spawn(
    neighbor: Neighbor,
    local: LocalSide,
    events: mpsc::UnboundedSender<PeerEvent>,
    shutdown: Shutdown,
) -> SessionHandle {
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (in_tx, in_rx) = mpsc::unbounded_channel();
    let status = Arc::new(Mutex::new(PeerStatus {
        state: State::Idle,
        since: SystemTime::now(),
        established_at: None,
        prefixes_received: 0,
        info: String::new(),
        transitions: 0,
        updates_in: 0,
        updates_out: 0,
    }));
    let session = Session::new(neighbor.clone(), local, events, status.clone());
    let span = info_span!("peer", addr = %neighbor.address, asn = neighbor.remote_as);
    let task = tokio::spawn(session.run(cmd_rx, in_rx, shutdown).instrument(span));
    SessionHandle {
        neighbor,
        cmd: cmd_tx,
        incoming: in_tx,
        status,
        task,
    }
}

/// Capabilities of our OPEN.
pub fn capabilities(local: &LocalSide, neighbor: &Neighbor) -> Vec<Capability> {
    let mut caps = vec![
        Capability::Multiprotocol(AfiSafi::IPV4_UNICAST),
        Capability::Multiprotocol(AfiSafi::IPV6_UNICAST),
        Capability::RouteRefresh,
        Capability::FourOctetAs(neighbor.local_as),
    ];
    if neighbor.graceful_restart.enabled {
        caps.push(Capability::GracefulRestart(GracefulRestart {
            restarting: local.restarting,
            // RFC 8538: NOTIFICATIONs other than Hard Reset keep routes too.
            notification: true,
            restart_time: neighbor.graceful_restart.restart_time,
            // We leave the FIB in place across a graceful stop: forwarding is kept.
            families: [AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST]
                .into_iter()
                .map(|afi_safi| GracefulRestartFamily {
                    afi_safi,
                    forwarding_preserved: true,
                })
                .collect(),
        }));
    }
    caps
}

type ConnectFuture = Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send>>;

/// What the writer task is given.
enum Outgoing {
    /// With the kernel event they answer, observed once written.
    Bytes(BytesMut, Option<(Instant, SharedMetrics)>),
    Sync {
        timeout: Duration,
        reply: oneshot::Sender<SyncResult>,
    },
}

/// A live TCP connection: we read here, a writer task writes, so a peer that
/// is slow to read never stops us from reading.
struct Connection {
    reader: OwnedReadHalf,
    writer: mpsc::UnboundedSender<Outgoing>,
    writer_task: JoinHandle<()>,
    buf: BytesMut,
    local: SocketAddr,
}

impl Connection {
    fn new(stream: TcpStream) -> io::Result<Self> {
        stream.set_nodelay(true)?;
        let local = stream.local_addr()?;
        let (reader, mut write_half) = stream.into_split();
        let (writer, mut rx) = mpsc::unbounded_channel::<Outgoing>();
        let writer_task = tokio::spawn(async move {
            while let Some(out) = rx.recv().await {
                match out {
                    Outgoing::Bytes(bytes, observe) => {
                        if let Err(e) = write_half.write_all(&bytes).await {
                            debug!(error = %e, "write failed");
                            return;
                        }
                        if let Some((since, metrics)) = observe {
                            metrics.event_to_update.observe(since.elapsed());
                        }
                    }
                    Outgoing::Sync { timeout, reply } => {
                        let fd = write_half.as_ref().as_raw_fd();
                        let _ = reply.send(wait_send_queue_empty(fd, timeout).await);
                    }
                }
            }
            let _ = write_half.shutdown().await;
        });
        Ok(Connection {
            reader,
            writer,
            writer_task,
            buf: BytesMut::with_capacity(65536),
            local,
        })
    }

    fn send(&self, msg: &Message, caps: &SessionCaps) {
        self.send_observed(std::slice::from_ref(msg), caps, None);
    }

    /// Encodes `msgs` into one write; `observe` times it from a kernel event.
    fn send_observed(&self, msgs: &[Message], caps: &SessionCaps, observe: Option<(Instant, SharedMetrics)>) {
        let mut out = BytesMut::new();
        for msg in msgs {
            if let Err(e) = msg.encode(caps, &mut out) {
                warn!(error = %e, "cannot encode message");
            }
        }
        if !out.is_empty() {
            let _ = self.writer.send(Outgoing::Bytes(out, observe));
        }
    }

    /// Closes after what was queued is written, within a bound.
    async fn close(self) {
        drop(self.writer);
        let _ = tokio::time::timeout(Duration::from_secs(1), self.writer_task).await;
    }
}

struct Session {
    neighbor: Neighbor,
    fsm: Fsm,
    events: mpsc::UnboundedSender<PeerEvent>,
    status: SharedStatus,
    /// Ours and the accepted one, by [`conn_index`]: two at once while a
    /// collision is being settled; the FSM says which one the session is on.
    conns: [Option<Connection>; 2],
    connecting: Option<ConnectFuture>,
    timers: [Option<tokio::time::Instant>; 3],
    generation: u64,
    caps: SessionCaps,
    received: HashSet<IpNet>,
    port: u16,
    /// Connections being closed: awaited on the way out, else closed in the background.
    closing: Vec<Connection>,
    /// The peer offered graceful restart in the current session; the FSM has
    /// forgotten its OPEN by the time the session goes down.
    peer_gr: bool,
    /// Both sides set the RFC 8538 N bit in the current session.
    n_bit: bool,
    /// The namespace's TCP-MD5 drop count when last looked at.
    md5_seen: Option<u64>,
    /// A new connection from the peer while Established, waiting for its first
    /// message: an OPEN means the peer restarted (RFC 4724 section 4.2).
    parked: Option<(Connection, tokio::time::Instant)>,
    metrics: SharedMetrics,
}

fn timer_index(t: Timer) -> usize {
    match t {
        Timer::ConnectRetry => 0,
        Timer::Hold => 1,
        Timer::Keepalive => 2,
    }
}

const TIMERS: [Timer; 3] = [Timer::ConnectRetry, Timer::Hold, Timer::Keepalive];

fn conn_index(c: Conn) -> usize {
    match c {
        Conn::Outgoing => 0,
        Conn::Incoming => 1,
    }
}

/// Reads more of `conn` into its buffer (only polled when it is there).
async fn read_some(conn: &mut Option<Connection>) -> io::Result<usize> {
    let c = conn.as_mut().expect("guarded");
    c.reader.read_buf(&mut c.buf).await
}

async fn read_parked(parked: &mut Option<(Connection, tokio::time::Instant)>) -> io::Result<usize> {
    let (c, _) = parked.as_mut().expect("guarded");
    c.reader.read_buf(&mut c.buf).await
}

/// How long a second connection from an established peer may take to send its OPEN.
const PARKED_WAIT: Duration = Duration::from_secs(10);

impl Session {
    fn new(
        neighbor: Neighbor,
        local: LocalSide,
        events: mpsc::UnboundedSender<PeerEvent>,
        status: SharedStatus,
    ) -> Self {
        let fsm = Fsm::new(FsmConfig {
            local_as: neighbor.local_as,
            remote_as: neighbor.remote_as,
            router_id: local.router_id,
            hold_time: neighbor.hold_time,
            keepalive_time: neighbor.keepalive_time,
            connect_retry: neighbor.connect_retry,
            passive: neighbor.passive,
            capabilities: capabilities(&local, &neighbor),
        });
        Session {
            port: local.port,
            neighbor,
            fsm,
            events,
            status,
            conns: [None, None],
            connecting: None,
            timers: [None; 3],
            generation: 0,
            caps: SessionCaps::default(),
            received: HashSet::new(),
            closing: Vec::new(),
            peer_gr: false,
            n_bit: false,
            md5_seen: None,
            parked: None,
            metrics: local.metrics.clone(),
        }
    }

    async fn run(
        mut self,
        mut cmds: mpsc::UnboundedReceiver<SessionCmd>,
        mut incoming: mpsc::UnboundedReceiver<TcpStream>,
        mut shutdown: Shutdown,
    ) {
        self.md5_seen = self.neighbor.password.as_ref().and_then(|_| transport::md5_failures());
        self.event(Event::ManualStart);
        loop {
            for conn in self.closing.drain(..) {
                tokio::spawn(conn.close());
            }
            let next_timer = self.timers.iter().flatten().min().copied();
            let has_connecting = self.connecting.is_some();
            let (has_out, has_in) = (self.conns[0].is_some(), self.conns[1].is_some());
            let connecting = &mut self.connecting;
            let [out_conn, in_conn] = &mut self.conns;
            let parked_until = self.parked.as_ref().map(|(_, t)| *t);
            let parked = &mut self.parked;
            tokio::select! {
                mode = shutdown.recv() => {
                    let notification = match mode {
                        StopMode::Graceful => None,
                        StopMode::Hard => Some(Notification::shutdown(
                            CeaseSubcode::AdministrativeShutdown,
                            "speaker stopping",
                        )),
                    };
                    self.event(Event::Stop { notification, restart_after: None });
                    break;
                }
                Some(cmd) = cmds.recv() => {
                    if let SessionCmd::Stop(n) = cmd {
                        info!(notification = %n, "stopping: removed or changed by a reload");
                        self.event(Event::Stop { notification: Some(n), restart_after: None });
                        break;
                    }
                    self.command(cmd);
                }
                Some(stream) = incoming.recv() => self.incoming(stream),
                result = async { connecting.as_mut().expect("guarded").await }, if has_connecting => {
                    self.connecting = None;
                    match result.and_then(Connection::new) {
                        Ok(conn) => {
                            debug!(local = %conn.local, "connected");
                            self.conns[conn_index(Conn::Outgoing)] = Some(conn);
                            self.event(Event::TcpConnected(Conn::Outgoing));
                        }
                        Err(e) => {
                            debug!(error = %e, "connect failed");
                            if self.fsm.state() == State::Connect {
                                self.connect_failed(format!("connect: {e}"));
                            }
                            self.event(Event::TcpFails(Conn::Outgoing));
                        }
                    }
                }
                read = read_some(out_conn), if has_out => self.read(Conn::Outgoing, read),
                read = read_some(in_conn), if has_in => self.read(Conn::Incoming, read),
                read = read_parked(parked), if parked_until.is_some() => self.read_parked(read),
                _ = async { sleep_until(parked_until.expect("guarded")).await }, if parked_until.is_some() => {
                    debug!("a second connection sent no OPEN in time: closed");
                    self.parked = None;
                }
                _ = async { sleep_until(next_timer.expect("guarded")).await }, if next_timer.is_some() => {
                    let now = tokio::time::Instant::now();
                    for t in TIMERS {
                        let i = timer_index(t);
                        if self.timers[i].is_some_and(|d| d <= now) {
                            self.timers[i] = None;
                            if t == Timer::ConnectRetry && self.fsm.state() == State::Connect {
                                self.connect_failed("connect: no answer".into());
                            }
                            self.event(match t {
                                Timer::ConnectRetry => Event::ConnectRetryTimerExpires,
                                Timer::Hold => Event::HoldTimerExpires,
                                Timer::Keepalive => Event::KeepaliveTimerExpires,
                            });
                        }
                    }
                }
            }
        }
        for conn in self.closing.drain(..) {
            conn.close().await;
        }
    }

    fn command(&mut self, cmd: SessionCmd) {
        match cmd {
            SessionCmd::Send {
                generation,
                batch,
                kernel_event,
            } => {
                if generation != self.generation || self.fsm.state() != State::Established {
                    return;
                }
                let updates = match batch.encode(&self.caps) {
                    Ok(u) => u,
                    Err(e) => {
                        warn!(error = %e, "cannot encode an UPDATE");
                        return;
                    }
                };
                if let Some(conn) = self.conn() {
                    self.status.lock().expect("status").updates_out += updates.len() as u64;
                    let msgs: Vec<Message> = updates.into_iter().map(Message::Update).collect();
                    let observe = kernel_event.map(|t| (t, self.metrics.clone()));
                    conn.send_observed(&msgs, &self.caps, observe);
                }
            }
            SessionCmd::Stop(_) => unreachable!("handled by the run loop"),
            SessionCmd::BfdDown(diag) => {
                // Only a session with a connection has something to end; one that
                // is still connecting goes on trying.
                if matches!(
                    self.fsm.state(),
                    State::OpenSent | State::OpenConfirm | State::Established
                ) {
                    self.event(Event::Stop {
                        notification: Some(Notification::cease(CeaseSubcode::BfdDown)),
                        restart_after: Some(self.neighbor.connect_retry),
                    });
                    self.set_info(format!("BFD down ({diag}): session ended, connecting again"));
                }
            }
            SessionCmd::Sync { timeout, reply } => match (self.conn(), self.fsm.state()) {
                (Some(conn), State::Established) => {
                    if let Err(e) = conn.writer.send(Outgoing::Sync { timeout, reply }) {
                        if let Outgoing::Sync { reply, .. } = e.0 {
                            let _ = reply.send(SyncResult::Failed("connection closing".into()));
                        }
                    }
                }
                (_, state) => {
                    let _ = reply.send(SyncResult::NotEstablished(state));
                }
            },
        }
    }

    /// An accepted connection from this peer's address.
    fn incoming(&mut self, stream: TcpStream) {
        if let Some(hops) = self.neighbor.ttl_security {
            let peer = stream.peer_addr().map(|a| a.ip()).unwrap_or(self.neighbor.address);
            // GTSM (RFC 5082) from the first segment: the SYN the listener kept.
            let min = 256 - u16::from(hops.max(1));
            match transport::syn_ttl(stream.as_raw_fd()) {
                Ok(Some(ttl)) if u16::from(ttl) < min => {
                    let why = format!(
                        "ttlSecurity: a connection from {peer} arrived with TTL {ttl}, more than {hops} hop(s) away: dropped"
                    );
                    warn!("{why}");
                    self.set_info(why);
                    return;
                }
                Ok(_) => {}
                Err(e) => debug!(error = %e, "no saved SYN: checked from the next segment on"),
            }
            if let Err(e) = transport::set_ttl_security(stream.as_raw_fd(), peer, hops) {
                warn!(error = %e, "cannot apply ttlSecurity to an accepted connection: refused");
                return;
            }
        }
        // A peer that restarted without closing our session connects again: wait
        // for its OPEN before ending the session (RFC 4724 section 4.2); without
        // graceful restart, RFC 4271 6.8 closes the new connection (below).
        if self.fsm.state() == State::Established
            && self.peer_gr
            && self.neighbor.graceful_restart.enabled
            && self.parked.is_none()
        {
            match Connection::new(stream) {
                Ok(conn) => {
                    debug!("a new connection while established: waiting for its OPEN");
                    self.parked = Some((conn, tokio::time::Instant::now() + PARKED_WAIT));
                }
                Err(e) => debug!(error = %e, "accepted connection unusable"),
            }
            return;
        }
        let slot = conn_index(Conn::Incoming);
        if self.conns[slot].is_some() {
            debug!(state = %self.fsm.state(), "refusing a second accepted connection");
            reject(stream, collision_notification());
            return;
        }
        match Connection::new(stream) {
            Ok(conn) => {
                debug!(local = %conn.local, "accepted");
                self.conns[slot] = Some(conn);
                self.event(Event::TcpConnected(Conn::Incoming));
            }
            Err(e) => debug!(error = %e, "accepted connection unusable"),
        }
    }

    /// The parked connection's first bytes: an OPEN ends the old session and the
    /// connection takes over; anything else closes it.
    fn read_parked(&mut self, read: io::Result<usize>) {
        if !matches!(read, Ok(n) if n > 0) {
            self.parked = None;
            return;
        }
        let decoded = {
            let (conn, _) = self.parked.as_ref().expect("read from it");
            Message::decode(&conn.buf, &SessionCaps::default())
        };
        match decoded {
            Err(DecodeError::Incomplete { .. }) => {}
            Ok((Message::Open(open), len)) if self.fsm.state() == State::Established => {
                let (mut conn, _) = self.parked.take().expect("read from it");
                conn.buf.advance(len);
                info!(router_id = %open.router_id, "the peer restarted: an OPEN on a new connection while established");
                self.event(Event::PeerRestarted);
                if let Some(old) = self.conns[conn_index(Conn::Incoming)].take() {
                    self.closing.push(old);
                }
                self.conns[conn_index(Conn::Incoming)] = Some(conn);
                self.event(Event::TcpConnected(Conn::Incoming));
                self.event(Event::OpenReceived(Conn::Incoming, open));
                self.read_messages(Conn::Incoming);
            }
            _ => {
                debug!("a second connection did not start with an OPEN: closed");
                self.parked = None;
            }
        }
    }

    fn read(&mut self, c: Conn, read: io::Result<usize>) {
        match read {
            Ok(0) | Err(_) => self.event(Event::TcpFails(c)),
            Ok(_) => self.read_messages(c),
        }
    }

    /// The capabilities to encode and decode with on `c`: the session's once
    /// negotiated, the defaults on a colliding connection.
    fn caps_on(&self, c: Conn) -> SessionCaps {
        if self.fsm.conn() == Some(c) {
            self.fsm.negotiated().map(|n| n.caps).unwrap_or(self.caps)
        } else {
            SessionCaps::default()
        }
    }

    fn read_messages(&mut self, c: Conn) {
        loop {
            let caps = self.caps_on(c);
            let Some(conn) = self.conns[conn_index(c)].as_mut() else {
                return;
            };
            match Message::decode(&conn.buf, &caps) {
                Ok((msg, len)) => {
                    conn.buf.advance(len);
                    self.message(c, msg);
                }
                Err(DecodeError::Incomplete { .. }) => return,
                Err(e) => {
                    warn!(error = %e, conn = ?c, "bad message");
                    let n = e.notification().expect("not incomplete");
                    self.event(Event::MessageError(c, n));
                    return;
                }
            }
        }
    }

    fn message(&mut self, c: Conn, msg: Message) {
        // Routes come only from an Established session's own connection.
        let established = |s: &Self| s.fsm.state() == State::Established && s.fsm.conn() == Some(c);
        match msg {
            Message::Open(open) => {
                debug!(conn = ?c, asn = open.asn(), router_id = %open.router_id, hold = open.hold_time, "OPEN");
                self.event(Event::OpenReceived(c, open));
            }
            Message::Keepalive => self.event(Event::KeepaliveReceived(c)),
            Message::Notification(n) => {
                if n.cease_subcode() == Some(CeaseSubcode::ConnectionCollisionResolution) {
                    info!(conn = ?c, notification = %n, "connection collision: the peer closed this connection");
                } else {
                    warn!(conn = ?c, notification = %n, "NOTIFICATION received");
                }
                self.event(Event::NotificationReceived(c, n));
            }
            Message::RouteRefresh(_) => {
                self.event(Event::RouteRefreshReceived(c));
                if established(self) {
                    let _ = self.events.send(PeerEvent::RouteRefresh {
                        peer: self.neighbor.address,
                    });
                }
            }
            Message::Update(update) => {
                self.status.lock().expect("status").updates_in += 1;
                self.event(Event::UpdateReceived(c));
                if established(self) {
                    self.update(update);
                }
            }
        }
    }

    fn update(&mut self, update: Update) {
        let peer = self.neighbor.address;
        for e in &update.errors {
            warn!(error = %e, action = ?e.action(), "malformed UPDATE (RFC 7606)");
        }
        if let Some(family) = update.end_of_rib_afi_safi() {
            debug!(?family, "End-of-RIB received");
            let _ = self.events.send(PeerEvent::EndOfRib { peer, family });
            return;
        }
        for p in update.withdrawn_prefixes() {
            self.received.remove(&p);
        }
        for (p, _) in update.announced_prefixes() {
            self.received.insert(p);
        }
        let count = self.received.len();
        self.status.lock().expect("status").prefixes_received = count;
        if let Some(max) = self.neighbor.max_prefixes {
            if count > max as usize {
                let reason = format!("maximum prefixes reached: {count} received, limit {max}");
                warn!("{reason}: stopping the session");
                self.event(Event::Stop {
                    notification: Some(Notification::cease(CeaseSubcode::MaxPrefixesReached)),
                    restart_after: None,
                });
                self.set_info(reason);
                return;
            }
        }
        let _ = self.events.send(PeerEvent::routes(peer, &update));
    }

    /// Feeds the FSM and carries out what it asks.
    fn event(&mut self, event: Event) {
        let before = self.fsm.state();
        let actions = self.fsm.handle(event);
        for action in actions {
            self.act(action);
        }
        let after = self.fsm.state();
        if before != after {
            debug!(from = %before, to = %after, "state");
            let mut s = self.status.lock().expect("status");
            s.state = after;
            s.transitions += 1;
            s.since = SystemTime::now();
            if after == State::Established {
                s.info = "Established".into();
            } else if let Some(e) = self.fsm.last_error() {
                s.info = e.to_string();
            }
        }
    }

    fn act(&mut self, action: Action) {
        match action {
            Action::Connect => self.connect(),
            Action::SendOpen(c, open) => self.send(c, Message::Open(open)),
            Action::SendKeepalive => {
                if let Some(c) = self.fsm.conn() {
                    self.send(c, Message::Keepalive);
                }
            }
            Action::SendNotification(c, n) => {
                // RFC 8538: with the N bit exchanged, the ones that must end
                // graceful restart go out wrapped in a Hard Reset.
                let n = if self.n_bit && needs_hard_reset(&n) && n.cease_subcode() != Some(CeaseSubcode::HardReset) {
                    Notification::hard_reset(&n)
                } else {
                    n
                };
                if n.cease_subcode() == Some(CeaseSubcode::ConnectionCollisionResolution) {
                    info!(conn = ?c, "connection collision: closing this connection, keeping the other");
                } else {
                    info!(conn = ?c, notification = %n, "sending NOTIFICATION");
                }
                self.send(c, Message::Notification(n));
            }
            Action::StartTimer(t, d) => self.timers[timer_index(t)] = Some(tokio::time::Instant::now() + d),
            Action::StopTimer(t) => self.timers[timer_index(t)] = None,
            Action::DropConnection(c) => {
                if c == Conn::Outgoing {
                    self.connecting = None;
                }
                if let Some(conn) = self.conns[conn_index(c)].take() {
                    // Closed once the writer has flushed a final NOTIFICATION.
                    self.closing.push(conn);
                }
            }
            Action::SessionUp(negotiated) => {
                self.generation += 1;
                self.caps = negotiated.caps;
                self.received.clear();
                let peer_gr = negotiated.remote.graceful_restart();
                self.peer_gr = peer_gr.is_some();
                self.n_bit = self.neighbor.graceful_restart.enabled && peer_gr.is_some_and(|g| g.notification);
                let local_address = self
                    .fsm
                    .conn()
                    .and_then(|c| self.conns[conn_index(c)].as_ref())
                    .map(|c| c.local.ip().to_canonical())
                    .unwrap_or(IpAddr::from([0, 0, 0, 0]));
                info!(
                    hold = negotiated.hold_time,
                    families = ?negotiated.families,
                    graceful_restart = negotiated.remote.graceful_restart().is_some(),
                    "session established"
                );
                {
                    let mut s = self.status.lock().expect("status");
                    s.established_at = Some(Instant::now());
                    s.prefixes_received = 0;
                }
                let (local_v4, local_v6, beside_ll) = crate::kernel::addresses_beside(local_address);
                let link_local = match (local_address, self.neighbor.address) {
                    (IpAddr::V6(local), IpAddr::V6(peer)) => crate::kernel::link_local_for(local, peer),
                    // IPv6 routes on an IPv4 session: our link-local on its interface.
                    (IpAddr::V4(_), _) if local_v6.is_some() => beside_ll,
                    _ => None,
                };
                let _ = self.events.send(PeerEvent::Up(SessionUp {
                    peer: self.neighbor.address,
                    generation: self.generation,
                    router_id: negotiated.remote.router_id,
                    caps: negotiated.caps,
                    families: negotiated.families.clone(),
                    peer_restart_time: negotiated.remote.graceful_restart().map(|g| g.restart_time),
                    local_address,
                    local_v4,
                    local_v6,
                    link_local,
                }));
            }
            Action::SessionDown(reason) => {
                let graceful = reason.allows_graceful_restart(self.n_bit)
                    && self.neighbor.graceful_restart.enabled
                    && self.peer_gr;
                info!(%reason, graceful, "session down");
                self.caps = SessionCaps::default();
                self.set_info(reason.to_string());
                self.status.lock().expect("status").established_at = None;
                let _ = self.events.send(PeerEvent::Down {
                    peer: self.neighbor.address,
                    graceful,
                });
            }
        }
    }

    fn send(&mut self, c: Conn, msg: Message) {
        if let Some(conn) = &self.conns[conn_index(c)] {
            conn.send(&msg, &self.caps_on(c));
        }
    }

    /// The connection the session runs on.
    fn conn(&self) -> Option<&Connection> {
        self.fsm.conn().and_then(|c| self.conns[conn_index(c)].as_ref())
    }

    fn set_info(&self, info: String) {
        self.status.lock().expect("status").info = info;
    }

    /// Records why no connection came up; with a TCP-MD5 password, says so when
    /// the kernel has been dropping segments for a bad signature meanwhile.
    fn connect_failed(&mut self, mut info: String) {
        if self.neighbor.password.is_some() {
            if let Some(now) = transport::md5_failures() {
                match self.md5_seen.filter(|b| now > *b) {
                    Some(before) => {
                        info = format!(
                            "{info}; the kernel dropped {} segment(s) with a wrong or missing TCP-MD5 signature: check the password on both sides",
                            now - before
                        )
                    }
                    None if info.ends_with("no answer") => {
                        info.push_str(" (TCP-MD5 password set: a peer with another password drops our SYNs silently)")
                    }
                    None => {}
                }
                self.md5_seen = Some(now);
            }
        }
        self.set_info(info);
    }

    fn connect(&mut self) {
        let remote = SocketAddr::new(self.neighbor.address, self.neighbor.port.unwrap_or(self.port));
        let source = self.neighbor.source_address;
        let password = self.neighbor.password.clone();
        let ttl_security = self.neighbor.ttl_security;
        self.connecting = Some(Box::pin(async move {
            let socket = if remote.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            // Both before connect: the SYN must be signed and leave with TTL 255.
            if let Some(pw) = &password {
                transport::set_md5_key(socket.as_raw_fd(), remote.is_ipv6(), remote.ip(), Some(pw.as_bytes()))?;
            }
            if let Some(hops) = ttl_security {
                transport::set_ttl_security(socket.as_raw_fd(), remote.ip(), hops)?;
            }
            if let Some(src) = source {
                socket.bind(SocketAddr::new(src, 0))?;
            }
            socket.connect(remote).await
        }));
    }
}

/// Bytes written to `fd` that the peer has not acknowledged yet (SIOCOUTQ).
fn unacked(fd: RawFd) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ for sockets) writes one c_int through the pointer.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Polls the send queue until the peer has acknowledged everything, bounded.
async fn wait_send_queue_empty(fd: RawFd, timeout: Duration) -> SyncResult {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match unacked(fd) {
            Ok(0) => return SyncResult::Delivered,
            Ok(n) if tokio::time::Instant::now() >= deadline => return SyncResult::Pending { unacked: n },
            Ok(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            Err(e) => return SyncResult::Failed(e.to_string()),
        }
    }
}

/// Closes a connection we do not want, telling the peer why.
fn reject(stream: TcpStream, n: Notification) {
    tokio::spawn(async move {
        let mut stream = stream;
        if let Ok(bytes) = Message::Notification(n).to_bytes(&SessionCaps::default()) {
            let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&bytes)).await;
        }
        let _ = stream.shutdown().await;
    });
}
