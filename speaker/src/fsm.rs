//! The RFC 4271 section 8 session state machine, as a pure type: events in,
//! actions out. It also owns connection collisions (section 6.8): up to two TCP
//! connections to the peer, one we opened and one we accepted. No sockets and no
//! clocks here, so every transition is a unit test; the session task
//! (`session.rs`) turns actions into I/O and timers.

use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use crate::packet::{AfiSafi, Capability, CeaseSubcode, ErrorCode, Notification, Open, OpenSubcode, SessionCaps};

/// After a lost collision: the retry of the side whose connection would win, and of
/// the other (see `Fsm::collision_retry`).
const COLLISION_RETRY_FIRST: Duration = Duration::from_millis(50);
const COLLISION_RETRY_SECOND: Duration = Duration::from_millis(500);
/// RFC 4271 section 8.2.2: the hold timer while waiting for the peer's OPEN.
pub const LARGE_HOLD_TIME: Duration = Duration::from_secs(240);
/// Ceiling of the connect-retry backoff, so a peer that comes back is retried soon.
const MAX_BACKOFF_FACTOR: u32 = 4;
const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

impl State {
    /// The RFC 4271 name, as BIRD and FRR print it.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Idle => "Idle",
            State::Connect => "Connect",
            State::Active => "Active",
            State::OpenSent => "OpenSent",
            State::OpenConfirm => "OpenConfirm",
            State::Established => "Established",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One of the two TCP connections a peer can have at once: RFC 4271 section 6.8
/// keeps the one opened by the speaker with the higher BGP Identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Conn {
    /// The connection this speaker opened.
    Outgoing,
    /// The connection the peer opened.
    Incoming,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    ConnectRetry,
    Hold,
    Keepalive,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    ManualStart,
    /// Stop the session. With a NOTIFICATION it is sent first; `restart_after`
    /// `None` keeps the peer down until the next ManualStart.
    Stop {
        notification: Option<Notification>,
        restart_after: Option<Duration>,
    },
    ConnectRetryTimerExpires,
    HoldTimerExpires,
    KeepaliveTimerExpires,
    /// A TCP connection is up, ours or accepted.
    TcpConnected(Conn),
    /// Our connect failed, or the connection closed.
    TcpFails(Conn),
    OpenReceived(Conn, Open),
    KeepaliveReceived(Conn),
    UpdateReceived(Conn),
    RouteRefreshReceived(Conn),
    NotificationReceived(Conn, Notification),
    /// The codec could not read a message: answer with this NOTIFICATION.
    MessageError(Conn, Notification),
    /// The peer opened a new connection and sent an OPEN on it while our session
    /// with it is Established: it restarted without closing the old one (RFC 4724
    /// section 4.2). The old session ends at once; the new connection follows.
    PeerRestarted,
}

impl Event {
    /// The connection the event happened on, if any.
    fn conn(&self) -> Option<Conn> {
        match self {
            Event::TcpConnected(c)
            | Event::TcpFails(c)
            | Event::OpenReceived(c, _)
            | Event::KeepaliveReceived(c)
            | Event::UpdateReceived(c)
            | Event::RouteRefreshReceived(c)
            | Event::NotificationReceived(c, _)
            | Event::MessageError(c, _) => Some(*c),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start an outgoing TCP connection.
    Connect,
    SendOpen(Conn, Open),
    /// On the session's connection ([`Fsm::conn`]).
    SendKeepalive,
    SendNotification(Conn, Notification),
    StartTimer(Timer, Duration),
    StopTimer(Timer),
    /// Close the connection once what was queued is written; for
    /// [`Conn::Outgoing`], also give up a connect still in progress.
    DropConnection(Conn),
    SessionUp(Negotiated),
    SessionDown(DownReason),
}

/// What the two OPENs settled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub remote: Open,
    pub hold_time: u16,
    pub keepalive_time: u16,
    pub caps: SessionCaps,
    /// Families both sides announced.
    pub families: Vec<AfiSafi>,
    pub route_refresh: bool,
}

impl Negotiated {
    /// The peer's graceful restart capability (RFC 4724), if it sent one.
    pub fn peer_restart_time(&self) -> Option<Duration> {
        self.remote
            .graceful_restart()
            .map(|gr| Duration::from_secs(u64::from(gr.restart_time)))
    }
}

/// Why an Established session ended. Graceful restart keeps the peer's routes
/// only for the ones that are not an explicit error (RFC 4724 / RFC 8538).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownReason {
    TcpClosed,
    HoldTimerExpired,
    NotificationSent(Notification),
    NotificationReceived(Notification),
    /// A local stop: with a NOTIFICATION, or a silent close (graceful restart).
    Stopped(Option<Notification>),
    /// A new connection from the peer while Established: it restarted.
    PeerRestarted,
}

impl DownReason {
    /// Whether a helper may keep the routes: the connection simply broke, or we
    /// closed it silently. A NOTIFICATION ends graceful restart, unless both
    /// sides set RFC 8538's N bit (`n_bit`) and it is not a Hard Reset.
    pub fn allows_graceful_restart(&self, n_bit: bool) -> bool {
        match self {
            DownReason::TcpClosed
            | DownReason::HoldTimerExpired
            | DownReason::Stopped(None)
            | DownReason::PeerRestarted => true,
            DownReason::NotificationReceived(n) => n_bit && n.cease_subcode() != Some(CeaseSubcode::HardReset),
            DownReason::NotificationSent(n) | DownReason::Stopped(Some(n)) => n_bit && !needs_hard_reset(n),
        }
    }
}

/// RFC 8538 section 5: the NOTIFICATIONs that must end graceful restart, sent
/// as a Hard Reset when the N bit was exchanged, and BFD Down: the forwarding path
/// is gone, so routes kept through it would black-hole. Everything else (hold
/// timer, malformed messages, FSM errors) keeps the routes on both sides.
pub fn needs_hard_reset(n: &Notification) -> bool {
    matches!(
        n.cease_subcode(),
        Some(
            CeaseSubcode::MaxPrefixesReached
                | CeaseSubcode::AdministrativeShutdown
                | CeaseSubcode::PeerDeconfigured
                | CeaseSubcode::AdministrativeReset
                | CeaseSubcode::HardReset
                | CeaseSubcode::BfdDown
        )
    )
}

impl fmt::Display for DownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownReason::TcpClosed => f.write_str("connection closed by peer"),
            DownReason::HoldTimerExpired => f.write_str("hold timer expired"),
            DownReason::NotificationSent(n) => write!(f, "sent NOTIFICATION: {n}"),
            DownReason::NotificationReceived(n) => write!(f, "received NOTIFICATION: {n}"),
            DownReason::Stopped(Some(n)) => write!(f, "stopped: {n}"),
            DownReason::Stopped(None) => f.write_str("stopped"),
            DownReason::PeerRestarted => f.write_str("the peer restarted: a new connection from it while established"),
        }
    }
}

/// What does not change for the life of a peer.
#[derive(Clone, Debug)]
pub struct FsmConfig {
    pub local_as: u32,
    pub remote_as: u32,
    pub router_id: Ipv4Addr,
    pub hold_time: u16,
    pub keepalive_time: u16,
    pub connect_retry: Duration,
    pub passive: bool,
    /// Sent in our OPEN.
    pub capabilities: Vec<Capability>,
}

#[derive(Debug)]
pub struct Fsm {
    config: FsmConfig,
    state: State,
    /// The connection the state is about, from OpenSent on.
    conn: Option<Conn>,
    /// A colliding connection, only ever in OpenSent (our OPEN sent, nothing
    /// received): the first OPEN on either connection tells the peer's
    /// identifier and settles which one stays.
    other: Option<Conn>,
    /// An outgoing connect is in progress. It is never given up for an accepted
    /// connection: the peer may already have accepted it and be sending its OPEN
    /// there, and both sides must agree on which one they close.
    connecting: bool,
    /// Consecutive failures since the last Established, for the backoff.
    failures: u32,
    /// Set by a Stop without restart: incoming connections are refused too.
    admin_down: bool,
    negotiated: Option<Negotiated>,
    /// Why the last session or attempt failed, for the status `info`.
    last_error: Option<String>,
    /// RFC 4724 R bit: set in our OPENs until the first session after our
    /// restart is Established, never again for the daemon's life.
    restarting: bool,
}

impl Fsm {
    pub fn new(config: FsmConfig) -> Self {
        Fsm {
            state: State::Idle,
            conn: None,
            other: None,
            connecting: false,
            failures: 0,
            admin_down: true,
            negotiated: None,
            last_error: None,
            restarting: config
                .capabilities
                .iter()
                .any(|c| matches!(c, Capability::GracefulRestart(gr) if gr.restarting)),
            config,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// The connection the session runs on, from OpenSent on.
    pub fn conn(&self) -> Option<Conn> {
        self.conn
    }

    pub fn local_open(&self) -> Open {
        let mut capabilities = self.config.capabilities.clone();
        for c in &mut capabilities {
            if let Capability::GracefulRestart(gr) = c {
                gr.restarting = self.restarting;
            }
        }
        Open::new(
            self.config.local_as,
            self.config.hold_time,
            self.config.router_id,
            capabilities,
        )
    }

    /// The connect-retry delay after `failures` consecutive failures: the
    /// configured value after the first (a peer that was not listening yet is
    /// tried again within connectRetryTime), then doubled each time, capped at a
    /// few times the configured value.
    pub fn backoff(&self) -> Duration {
        let base = self.config.connect_retry;
        let factor = 1u32 << self.failures.saturating_sub(1).min(2);
        (base * factor.min(MAX_BACKOFF_FACTOR)).min(MAX_BACKOFF.max(base))
    }

    pub fn handle(&mut self, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        match event.conn() {
            Some(c) if self.conn.is_some_and(|current| current != c) => self.second(c, event, &mut out),
            _ => self.session(event, &mut out),
        }
        out
    }

    /// Events on the session's connection, or on none.
    fn session(&mut self, event: Event, out: &mut Vec<Action>) {
        use Action as A;
        use State as S;
        match (self.state, event) {
            (_, Event::ManualStart) if self.admin_down => {
                self.admin_down = false;
                self.start(out);
            }
            (_, Event::ManualStart) => {}
            (
                _,
                Event::Stop {
                    notification,
                    restart_after,
                },
            ) => {
                if let Some(n) = &notification {
                    if matches!(self.state, S::OpenSent | S::OpenConfirm | S::Established) {
                        for c in self.conn.into_iter().chain(self.other) {
                            out.push(A::SendNotification(c, n.clone()));
                        }
                    }
                    self.last_error = Some(format!("stopped: {n}"));
                }
                self.teardown(out, DownReason::Stopped(notification));
                match restart_after {
                    Some(delay) => out.push(A::StartTimer(Timer::ConnectRetry, delay)),
                    None => self.admin_down = true,
                }
            }
            (S::Idle, Event::ConnectRetryTimerExpires) if !self.admin_down => self.start(out),
            (S::Active, Event::ConnectRetryTimerExpires) => {
                out.push(A::StartTimer(Timer::ConnectRetry, self.backoff()));
                if !self.config.passive {
                    self.state = S::Connect;
                    if !self.connecting {
                        self.connect(out);
                    }
                }
            }
            (S::Connect, Event::ConnectRetryTimerExpires) => {
                // The attempt took too long: drop it and try again.
                self.failures += 1;
                out.push(A::DropConnection(Conn::Outgoing));
                out.push(A::StartTimer(Timer::ConnectRetry, self.backoff()));
                self.connect(out);
            }
            // An accepted connection in Connect leaves our connect running: if the
            // peer accepts it too, the collision is settled at the first OPEN.
            (S::Idle | S::Connect | S::Active, Event::TcpConnected(c)) if !self.admin_down => {
                if c == Conn::Outgoing {
                    self.connecting = false;
                }
                out.push(A::StopTimer(Timer::ConnectRetry));
                out.push(A::SendOpen(c, self.local_open()));
                out.push(A::StartTimer(Timer::Hold, LARGE_HOLD_TIME));
                self.conn = Some(c);
                self.state = S::OpenSent;
            }
            (_, Event::TcpConnected(c)) => {
                // Administratively down: refused.
                if c == Conn::Outgoing {
                    self.connecting = false;
                }
                out.push(A::DropConnection(c));
            }
            (S::Connect, Event::TcpFails(Conn::Outgoing)) => {
                self.connecting = false;
                self.failures += 1;
                out.push(A::DropConnection(Conn::Outgoing));
                out.push(A::StartTimer(Timer::ConnectRetry, self.backoff()));
                self.state = S::Active;
            }
            (S::OpenSent, Event::OpenReceived(c, open)) => match self.check_open(&open) {
                Ok(negotiated) => {
                    if let Some(other) = self.other.take() {
                        // RFC 4271 6.8: now that we know the peer's identifier,
                        // both sides close the same one of the two.
                        if resolve_collision(self.config.router_id, open.router_id) != c {
                            self.close_colliding(c, out);
                            self.conn = Some(other);
                            return;
                        }
                        self.close_colliding(other, out);
                    }
                    out.push(A::SendKeepalive);
                    self.arm_session_timers(&negotiated, out);
                    self.negotiated = Some(negotiated);
                    self.state = S::OpenConfirm;
                }
                Err(n) => {
                    let why = match n.subcode {
                        s if s == OpenSubcode::BadPeerAs as u8 => format!(
                            "the peer's OPEN says AS {}, asNumber configured for it is {}",
                            open.asn(),
                            self.config.remote_as
                        ),
                        s if s == OpenSubcode::BadBgpIdentifier as u8 => {
                            format!("the peer's router ID {} is not acceptable", open.router_id)
                        }
                        s if s == OpenSubcode::UnacceptableHoldTime as u8 => {
                            format!("the peer's hold time {} is not acceptable", open.hold_time)
                        }
                        _ => "the peer's OPEN is not acceptable".into(),
                    };
                    self.fail_with(out, n.clone());
                    self.last_error = Some(format!("OPEN refused: {why} (sent NOTIFICATION: {n})"));
                }
            },
            (S::OpenConfirm, Event::KeepaliveReceived(_)) => {
                // A second connection still without the peer's OPEN loses now: a new
                // connection to an Established session is closed (6.8).
                if let Some(other) = self.other.take() {
                    self.close_colliding(other, out);
                }
                let negotiated = self.negotiated.clone().expect("negotiated in OpenSent");
                self.restart_hold(out);
                self.failures = 0;
                self.last_error = None;
                self.restarting = false;
                self.state = S::Established;
                out.push(A::SessionUp(negotiated));
            }
            (
                S::Established,
                Event::KeepaliveReceived(_) | Event::UpdateReceived(_) | Event::RouteRefreshReceived(_),
            ) => {
                self.restart_hold(out);
            }
            (S::OpenConfirm | S::Established, Event::KeepaliveTimerExpires) => {
                out.push(A::SendKeepalive);
                if let Some(n) = &self.negotiated {
                    if n.keepalive_time > 0 {
                        out.push(A::StartTimer(
                            Timer::Keepalive,
                            Duration::from_secs(u64::from(n.keepalive_time)),
                        ));
                    }
                }
            }
            (S::OpenSent | S::OpenConfirm | S::Established, Event::HoldTimerExpires) => {
                self.last_error = Some("hold timer expired".into());
                if let Some(other) = self.other.take() {
                    out.push(A::SendNotification(other, Notification::hold_timer_expired()));
                    out.push(A::DropConnection(other));
                }
                if let Some(c) = self.conn {
                    out.push(A::SendNotification(c, Notification::hold_timer_expired()));
                }
                self.failed(out, DownReason::HoldTimerExpired);
            }
            (S::OpenSent | S::OpenConfirm, Event::NotificationReceived(_, n))
                if self.other.is_none() && n.cease_subcode() == Some(CeaseSubcode::ConnectionCollisionResolution) =>
            {
                self.lost_collision(out);
            }
            // The peer resolved a collision against the connection we had already
            // taken to Established (it saw our second connection's OPEN first; we
            // closed that one as 6.8 says for Established sessions): both are gone.
            // Not a failure of the peer's: try again soon instead of after a backoff.
            (S::Established, Event::NotificationReceived(_, n))
                if self.other.is_none() && n.cease_subcode() == Some(CeaseSubcode::ConnectionCollisionResolution) =>
            {
                let retry = self.collision_retry();
                self.last_error = Some(format!("received NOTIFICATION: {n}"));
                self.teardown(out, DownReason::NotificationReceived(n));
                out.push(A::StartTimer(Timer::ConnectRetry, retry));
            }
            (S::OpenSent | S::OpenConfirm | S::Established, Event::NotificationReceived(_, n)) => {
                self.last_error = Some(format!("received NOTIFICATION: {n}"));
                self.failed(out, DownReason::NotificationReceived(n));
            }
            (S::OpenSent | S::OpenConfirm | S::Established, Event::MessageError(_, n)) => self.fail_with(out, n),
            (S::Established, Event::PeerRestarted) => {
                self.last_error = Some(DownReason::PeerRestarted.to_string());
                self.teardown(out, DownReason::PeerRestarted);
                // The new connection is already here: no failure to back off from.
                out.push(A::StartTimer(Timer::ConnectRetry, self.config.connect_retry));
            }
            (S::OpenSent | S::OpenConfirm | S::Established, Event::TcpFails(_)) => {
                // A collision's second connection closing must not hide why the
                // first one was refused (wrong AS, say).
                self.last_error = Some(match self.last_error.take() {
                    Some(e) if e.starts_with("OPEN refused") => e,
                    _ => "connection closed by peer".into(),
                });
                self.failed(out, DownReason::TcpClosed);
            }
            // RFC 4271 8.2.2: any other message in these states is an FSM error.
            (
                state @ (S::OpenSent | S::OpenConfirm),
                Event::OpenReceived(..)
                | Event::KeepaliveReceived(_)
                | Event::UpdateReceived(_)
                | Event::RouteRefreshReceived(_),
            )
            | (state @ S::Established, Event::OpenReceived(..)) => {
                self.fail_with(out, fsm_error(state));
            }
            (_, Event::TcpFails(c)) => {
                if c == Conn::Outgoing {
                    self.connecting = false;
                }
                out.push(A::DropConnection(c));
            }
            // Stale timers and events for a connection already gone.
            _ => {}
        }
    }

    /// Events on a connection other than the session's: a collision (RFC 4271
    /// section 6.8). While neither has an OPEN from the peer, both go on, our
    /// OPEN sent on each, since the peer may be waiting for it on either; once
    /// one has, we know the peer's identifier and close the loser at once.
    fn second(&mut self, c: Conn, event: Event, out: &mut Vec<Action>) {
        use Action as A;
        use State as S;
        let current = self.conn.expect("called with a session connection");
        let is_other = self.other == Some(c);
        match (self.state, event) {
            (state, Event::TcpConnected(_)) => {
                if c == Conn::Outgoing {
                    self.connecting = false;
                }
                match state {
                    // Settled only when the peer's OPEN arrives on the new connection
                    // (6.8): deciding earlier, in OpenConfirm, could close the
                    // connection the peer has already taken to Established, while
                    // the peer refuses the new one, leaving neither.
                    S::OpenSent | S::OpenConfirm if self.other.is_none() => {
                        self.other = Some(c);
                        out.push(A::SendOpen(c, self.local_open()));
                    }
                    // Always in Established (6.8), and a third connection.
                    _ => self.close_colliding(c, out),
                }
            }
            (S::OpenConfirm, Event::OpenReceived(_, open)) if is_other => {
                self.other = None;
                if resolve_collision(self.config.router_id, open.router_id) == c {
                    // The new connection stays: the one in OpenConfirm goes, and
                    // the session goes on from the OPEN just received.
                    self.close_colliding(current, out);
                    self.conn = Some(c);
                    self.negotiated = None;
                    out.push(A::StopTimer(Timer::Keepalive));
                    self.state = S::OpenSent;
                    self.session(Event::OpenReceived(c, open), out);
                } else {
                    self.close_colliding(c, out);
                }
            }
            // Settled as if the OPEN had come on the session's connection.
            (S::OpenSent, event @ Event::OpenReceived(..)) if is_other => {
                self.other = Some(current);
                self.conn = Some(c);
                self.session(event, out);
            }
            (_, Event::TcpFails(_) | Event::NotificationReceived(..)) if is_other => {
                self.other = None;
                out.push(A::DropConnection(c));
            }
            (state, event) if is_other => {
                self.other = None;
                let n = match event {
                    Event::MessageError(_, n) => n,
                    _ => fsm_error(state),
                };
                out.push(A::SendNotification(c, n));
                out.push(A::DropConnection(c));
            }
            (_, Event::TcpFails(_)) => {
                if c == Conn::Outgoing {
                    self.connecting = false;
                }
                out.push(A::DropConnection(c));
            }
            _ => {}
        }
    }

    /// Closes the losing connection of a collision.
    fn close_colliding(&mut self, c: Conn, out: &mut Vec<Action>) {
        out.push(Action::SendNotification(c, collision_notification()));
        out.push(Action::DropConnection(c));
    }

    /// The peer closed our only connection to keep the other one, which we have
    /// not seen yet (still queued at our listener, or our connect not done):
    /// wait for it, without counting a failure.
    fn lost_collision(&mut self, out: &mut Vec<Action>) {
        self.last_error = Some("connection collision: the peer kept the other connection".into());
        if let Some(c) = self.conn.take() {
            out.push(Action::DropConnection(c));
        }
        out.push(Action::StopTimer(Timer::Hold));
        out.push(Action::StopTimer(Timer::Keepalive));
        out.push(Action::StartTimer(Timer::ConnectRetry, self.collision_retry()));
        self.negotiated = None;
        self.state = if self.connecting { State::Connect } else { State::Active };
    }

    /// How long to wait after losing a collision before connecting again. When the
    /// peer's other connection is on its way it arrives well within this; when both
    /// sides lost theirs (a race 6.8 leaves open), the side with the higher BGP
    /// identifier, whose connection wins a collision, tries first, and the other
    /// waits long enough to accept it instead of colliding again.
    fn collision_retry(&self) -> Duration {
        let higher = self
            .negotiated
            .as_ref()
            .map(|n| resolve_collision(self.config.router_id, n.remote.router_id) == Conn::Outgoing);
        match higher {
            Some(true) => COLLISION_RETRY_FIRST,
            _ => COLLISION_RETRY_SECOND.min(self.config.connect_retry.max(COLLISION_RETRY_FIRST)),
        }
    }

    fn start(&mut self, out: &mut Vec<Action>) {
        out.push(Action::StartTimer(Timer::ConnectRetry, self.backoff()));
        if self.config.passive {
            self.state = State::Active;
        } else {
            self.state = State::Connect;
            self.connect(out);
        }
    }

    fn connect(&mut self, out: &mut Vec<Action>) {
        self.connecting = true;
        out.push(Action::Connect);
    }

    fn check_open(&self, open: &Open) -> Result<Negotiated, Notification> {
        let open_err = |sub: OpenSubcode| Notification::new(ErrorCode::Open, sub as u8, Vec::new());
        if open.asn() != self.config.remote_as {
            return Err(Notification::new(
                ErrorCode::Open,
                OpenSubcode::BadPeerAs as u8,
                u16::try_from(open.asn())
                    .unwrap_or(crate::packet::AS_TRANS as u16)
                    .to_be_bytes()
                    .to_vec(),
            ));
        }
        // RFC 6286: an internal peer must not share our identifier.
        if open.router_id.is_unspecified()
            || (open.router_id == self.config.router_id && open.asn() == self.config.local_as)
        {
            return Err(open_err(OpenSubcode::BadBgpIdentifier));
        }
        if matches!(open.hold_time, 1 | 2) {
            return Err(open_err(OpenSubcode::UnacceptableHoldTime));
        }
        let hold_time = self.config.hold_time.min(open.hold_time);
        let keepalive_time = if hold_time == 0 {
            0
        } else {
            self.config.keepalive_time.clamp(1, (hold_time / 3).max(1))
        };
        let local = self.local_open();
        let remote_families: Vec<AfiSafi> = open.families().collect();
        // RFC 4760: a peer that announces no family speaks IPv4 unicast only.
        let remote_families = if remote_families.is_empty() {
            vec![AfiSafi::IPV4_UNICAST]
        } else {
            remote_families
        };
        let families = local.families().filter(|f| remote_families.contains(f)).collect();
        Ok(Negotiated {
            caps: local.session_caps(open),
            remote: open.clone(),
            hold_time,
            keepalive_time,
            families,
            route_refresh: open.route_refresh(),
        })
    }

    fn arm_session_timers(&self, n: &Negotiated, out: &mut Vec<Action>) {
        if n.hold_time == 0 {
            out.push(Action::StopTimer(Timer::Hold));
            out.push(Action::StopTimer(Timer::Keepalive));
        } else {
            out.push(Action::StartTimer(
                Timer::Hold,
                Duration::from_secs(u64::from(n.hold_time)),
            ));
            out.push(Action::StartTimer(
                Timer::Keepalive,
                Duration::from_secs(u64::from(n.keepalive_time)),
            ));
        }
    }

    fn restart_hold(&self, out: &mut Vec<Action>) {
        if let Some(n) = &self.negotiated {
            if n.hold_time > 0 {
                out.push(Action::StartTimer(
                    Timer::Hold,
                    Duration::from_secs(u64::from(n.hold_time)),
                ));
            }
        }
    }

    /// Sends `n`, closes, and schedules the next attempt.
    fn fail_with(&mut self, out: &mut Vec<Action>, n: Notification) {
        self.last_error = Some(format!("sent NOTIFICATION: {n}"));
        if let Some(c) = self.conn {
            out.push(Action::SendNotification(c, n.clone()));
        }
        self.failed(out, DownReason::NotificationSent(n));
    }

    /// The session's connection failed: a colliding one in OpenSent carries on
    /// alone, or the session goes down.
    fn failed(&mut self, out: &mut Vec<Action>, reason: DownReason) {
        if let Some(other) = self.other.take() {
            if let Some(lost) = self.conn.replace(other) {
                out.push(Action::DropConnection(lost));
            }
            // The other connection has our OPEN and none of the peer's yet: what
            // the lost one had negotiated does not hold on it.
            if self.state == State::OpenConfirm {
                self.negotiated = None;
                self.state = State::OpenSent;
                out.push(Action::StopTimer(Timer::Keepalive));
                out.push(Action::StartTimer(Timer::Hold, LARGE_HOLD_TIME));
            }
            return;
        }
        self.failures += 1;
        self.teardown(out, reason);
        out.push(Action::StartTimer(Timer::ConnectRetry, self.backoff()));
    }

    fn teardown(&mut self, out: &mut Vec<Action>, reason: DownReason) {
        let was_up = self.state == State::Established;
        for c in self.conn.take().into_iter().chain(self.other.take()) {
            out.push(Action::DropConnection(c));
        }
        if std::mem::take(&mut self.connecting) {
            out.push(Action::DropConnection(Conn::Outgoing));
        }
        for t in [Timer::ConnectRetry, Timer::Hold, Timer::Keepalive] {
            out.push(Action::StopTimer(t));
        }
        if was_up {
            out.push(Action::SessionDown(reason));
        }
        self.negotiated = None;
        self.state = State::Idle;
    }
}

/// Which connection survives a collision (RFC 4271 section 6.8): the one
/// opened by the speaker with the higher BGP identifier, so both sides keep the
/// same one.
pub fn resolve_collision(local_id: Ipv4Addr, remote_id: Ipv4Addr) -> Conn {
    if u32::from(local_id) > u32::from(remote_id) {
        Conn::Outgoing
    } else {
        Conn::Incoming
    }
}

/// RFC 4271 8.2.2: an unexpected message in `state`.
fn fsm_error(state: State) -> Notification {
    let sub = match state {
        State::OpenSent => 1,
        State::OpenConfirm => 2,
        _ => 3,
    };
    Notification::new(ErrorCode::Fsm, sub, Vec::new())
}

/// The NOTIFICATION that closes the losing connection of a collision.
pub fn collision_notification() -> Notification {
    Notification::cease(CeaseSubcode::ConnectionCollisionResolution)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::GracefulRestart;

    fn config(passive: bool) -> FsmConfig {
        FsmConfig {
            local_as: 64512,
            remote_as: 65000,
            router_id: Ipv4Addr::new(10, 0, 0, 1),
            hold_time: 9,
            keepalive_time: 3,
            connect_retry: Duration::from_secs(2),
            passive,
            capabilities: vec![
                Capability::Multiprotocol(AfiSafi::IPV4_UNICAST),
                Capability::Multiprotocol(AfiSafi::IPV6_UNICAST),
                Capability::RouteRefresh,
                Capability::FourOctetAs(64512),
            ],
        }
    }

    fn peer_open(asn: u32, hold: u16) -> Open {
        Open::new(
            asn,
            hold,
            Ipv4Addr::new(10, 0, 0, 2),
            vec![
                Capability::Multiprotocol(AfiSafi::IPV4_UNICAST),
                Capability::FourOctetAs(asn),
                Capability::GracefulRestart(GracefulRestart {
                    restart_time: 120,
                    ..Default::default()
                }),
            ],
        )
    }

    #[test]
    fn restart_bit_only_until_the_first_established_session() {
        let mut c = config(false);
        c.capabilities.push(Capability::GracefulRestart(GracefulRestart {
            restarting: true,
            restart_time: 120,
            ..Default::default()
        }));
        let mut fsm = Fsm::new(c);
        let r_bit = |fsm: &Fsm| fsm.local_open().graceful_restart().map(|g| g.restarting);
        assert_eq!(r_bit(&fsm), Some(true));
        // A failed attempt keeps it: the peer has not seen us restarted yet.
        fsm.handle(Event::ManualStart);
        fsm.handle(Event::TcpConnected(Conn::Outgoing));
        fsm.handle(Event::TcpFails(Conn::Outgoing));
        assert_eq!(r_bit(&fsm), Some(true));
        fsm.handle(Event::ConnectRetryTimerExpires);
        fsm.handle(Event::TcpConnected(Conn::Outgoing));
        fsm.handle(Event::OpenReceived(Conn::Outgoing, peer_open(65000, 90)));
        fsm.handle(Event::KeepaliveReceived(Conn::Outgoing));
        assert_eq!(fsm.state(), State::Established);
        fsm.handle(Event::TcpFails(Conn::Outgoing));
        assert_eq!(r_bit(&fsm), Some(false), "R bit in an OPEN after the restart was done");
    }

    #[test]
    fn notification_keeps_routes_only_with_the_n_bit_and_no_hard_reset() {
        let soft = Notification::hold_timer_expired();
        let admin = Notification::cease(CeaseSubcode::AdministrativeReset);
        let hard = Notification::hard_reset(&admin);
        assert!(!DownReason::NotificationReceived(soft.clone()).allows_graceful_restart(false));
        assert!(DownReason::NotificationReceived(soft.clone()).allows_graceful_restart(true));
        assert!(DownReason::NotificationReceived(admin.clone()).allows_graceful_restart(true));
        assert!(!DownReason::NotificationReceived(hard).allows_graceful_restart(true));
        assert!(DownReason::NotificationSent(soft).allows_graceful_restart(true));
        assert!(!DownReason::Stopped(Some(admin)).allows_graceful_restart(true));
        assert!(DownReason::TcpClosed.allows_graceful_restart(false));
    }

    fn established(fsm: &mut Fsm) -> Vec<Action> {
        fsm.handle(Event::ManualStart);
        fsm.handle(Event::TcpConnected(Conn::Outgoing));
        fsm.handle(Event::OpenReceived(Conn::Outgoing, peer_open(65000, 90)));
        fsm.handle(Event::KeepaliveReceived(Conn::Outgoing))
    }

    #[test]
    fn active_start_connects() {
        let mut fsm = Fsm::new(config(false));
        let a = fsm.handle(Event::ManualStart);
        assert_eq!(fsm.state(), State::Connect);
        assert!(a.contains(&Action::Connect));
        assert!(a.contains(&Action::StartTimer(Timer::ConnectRetry, Duration::from_secs(2))));
    }

    #[test]
    fn passive_start_waits() {
        let mut fsm = Fsm::new(config(true));
        let a = fsm.handle(Event::ManualStart);
        assert_eq!(fsm.state(), State::Active);
        assert!(!a.contains(&Action::Connect));
        assert!(!fsm.handle(Event::ConnectRetryTimerExpires).contains(&Action::Connect));
    }

    #[test]
    fn full_handshake_negotiates_hold_and_families() {
        let mut fsm = Fsm::new(config(false));
        fsm.handle(Event::ManualStart);
        let a = fsm.handle(Event::TcpConnected(Conn::Outgoing));
        assert!(matches!(a[1], Action::SendOpen(..)));
        assert_eq!(fsm.state(), State::OpenSent);
        let a = fsm.handle(Event::OpenReceived(Conn::Outgoing, peer_open(65000, 90)));
        assert_eq!(fsm.state(), State::OpenConfirm);
        assert_eq!(a[0], Action::SendKeepalive);
        assert!(a.contains(&Action::StartTimer(Timer::Hold, Duration::from_secs(9))));
        assert!(a.contains(&Action::StartTimer(Timer::Keepalive, Duration::from_secs(3))));
        let a = fsm.handle(Event::KeepaliveReceived(Conn::Outgoing));
        assert_eq!(fsm.state(), State::Established);
        let Some(Action::SessionUp(n)) = a.last() else {
            panic!("{a:?}")
        };
        assert_eq!(n.hold_time, 9);
        assert_eq!(n.families, vec![AfiSafi::IPV4_UNICAST]);
        assert!(n.caps.four_octet_as);
        assert_eq!(n.peer_restart_time(), Some(Duration::from_secs(120)));
    }

    #[test]
    fn hold_time_zero_means_no_keepalives() {
        let mut fsm = Fsm::new(config(false));
        fsm.handle(Event::ManualStart);
        fsm.handle(Event::TcpConnected(Conn::Outgoing));
        let a = fsm.handle(Event::OpenReceived(Conn::Outgoing, peer_open(65000, 0)));
        assert!(a.contains(&Action::StopTimer(Timer::Keepalive)));
        assert!(!a
            .iter()
            .any(|a| matches!(a, Action::StartTimer(Timer::Hold | Timer::Keepalive, _))));
    }

    #[test]
    fn wrong_peer_as_is_rejected() {
        let mut fsm = Fsm::new(config(false));
        fsm.handle(Event::ManualStart);
        fsm.handle(Event::TcpConnected(Conn::Outgoing));
        let a = fsm.handle(Event::OpenReceived(Conn::Outgoing, peer_open(65001, 90)));
        let Action::SendNotification(_, n) = &a[0] else {
            panic!("{a:?}")
        };
        assert_eq!((n.code, n.subcode), (2, OpenSubcode::BadPeerAs as u8));
        assert_eq!(fsm.state(), State::Idle);
        assert!(a.contains(&Action::DropConnection(Conn::Outgoing)));
        assert!(fsm.last_error().unwrap().contains("sent NOTIFICATION"));
        // And it tries again later, by itself.
        assert!(fsm.handle(Event::ConnectRetryTimerExpires).contains(&Action::Connect));
    }

    #[test]
    fn unacceptable_hold_time() {
        let mut fsm = Fsm::new(config(false));
        fsm.handle(Event::ManualStart);
        fsm.handle(Event::TcpConnected(Conn::Outgoing));
        let a = fsm.handle(Event::OpenReceived(Conn::Outgoing, peer_open(65000, 2)));
        let Action::SendNotification(_, n) = &a[0] else {
            panic!("{a:?}")
        };
        assert_eq!((n.code, n.subcode), (2, OpenSubcode::UnacceptableHoldTime as u8));
    }

    #[test]
    fn same_router_id_on_ibgp_is_rejected() {
        let mut c = config(false);
        c.remote_as = 64512;
        let mut fsm = Fsm::new(c);
        fsm.handle(Event::ManualStart);
        fsm.handle(Event::TcpConnected(Conn::Outgoing));
        let mut open = peer_open(64512, 90);
        open.router_id = Ipv4Addr::new(10, 0, 0, 1);
        let a = fsm.handle(Event::OpenReceived(Conn::Outgoing, open));
        let Action::SendNotification(_, n) = &a[0] else {
            panic!("{a:?}")
        };
        assert_eq!(n.subcode, OpenSubcode::BadBgpIdentifier as u8);
    }

    #[test]
    fn hold_timer_expiry_notifies_and_goes_down() {
        let mut fsm = Fsm::new(config(false));
        established(&mut fsm);
        let a = fsm.handle(Event::HoldTimerExpires);
        assert_eq!(
            a[0],
            Action::SendNotification(Conn::Outgoing, Notification::hold_timer_expired())
        );
        assert!(a.contains(&Action::SessionDown(DownReason::HoldTimerExpired)));
        assert_eq!(fsm.state(), State::Idle);
    }

    #[test]
    fn keepalive_timer_sends_and_rearms() {
        let mut fsm = Fsm::new(config(false));
        established(&mut fsm);
        let a = fsm.handle(Event::KeepaliveTimerExpires);
        assert_eq!(
            a,
            vec![
                Action::SendKeepalive,
                Action::StartTimer(Timer::Keepalive, Duration::from_secs(3))
            ]
        );
        let a = fsm.handle(Event::UpdateReceived(Conn::Outgoing));
        assert_eq!(a, vec![Action::StartTimer(Timer::Hold, Duration::from_secs(9))]);
    }

    #[test]
    fn backoff_grows_capped_and_resets_when_established() {
        let mut fsm = Fsm::new(config(false));
        fsm.handle(Event::ManualStart);
        let mut delays = Vec::new();
        for _ in 0..5 {
            for a in fsm.handle(Event::TcpFails(Conn::Outgoing)) {
                if let Action::StartTimer(Timer::ConnectRetry, d) = a {
                    delays.push(d.as_secs());
                }
            }
            fsm.handle(Event::ConnectRetryTimerExpires);
        }
        assert_eq!(delays, vec![2, 4, 8, 8, 8], "the first retry after connectRetryTime");
        fsm.handle(Event::TcpConnected(Conn::Outgoing));
        fsm.handle(Event::OpenReceived(Conn::Outgoing, peer_open(65000, 90)));
        fsm.handle(Event::KeepaliveReceived(Conn::Outgoing));
        assert_eq!(fsm.backoff(), Duration::from_secs(2));
    }

    #[test]
    fn notification_received_brings_session_down() {
        let mut fsm = Fsm::new(config(false));
        established(&mut fsm);
        let n = Notification::cease(CeaseSubcode::AdministrativeShutdown);
        let a = fsm.handle(Event::NotificationReceived(Conn::Outgoing, n.clone()));
        assert!(a.contains(&Action::SessionDown(DownReason::NotificationReceived(n))));
        assert!(!DownReason::NotificationReceived(Notification::hold_timer_expired()).allows_graceful_restart(false));
        assert!(DownReason::TcpClosed.allows_graceful_restart(false));
    }

    #[test]
    fn stop_without_restart_stays_down() {
        let mut fsm = Fsm::new(config(false));
        established(&mut fsm);
        let n = Notification::cease(CeaseSubcode::MaxPrefixesReached);
        let a = fsm.handle(Event::Stop {
            notification: Some(n.clone()),
            restart_after: None,
        });
        assert_eq!(a[0], Action::SendNotification(Conn::Outgoing, n));
        assert_eq!(
            fsm.handle(Event::TcpConnected(Conn::Incoming)),
            vec![Action::DropConnection(Conn::Incoming)],
            "an accepted connection is refused"
        );
        assert!(fsm.handle(Event::ConnectRetryTimerExpires).is_empty());
        // A silent stop (graceful restart) sends nothing.
        let mut fsm = Fsm::new(config(false));
        established(&mut fsm);
        let a = fsm.handle(Event::Stop {
            notification: None,
            restart_after: None,
        });
        assert!(!a.iter().any(|a| matches!(a, Action::SendNotification(..))));
        assert!(a.contains(&Action::SessionDown(DownReason::Stopped(None))));
    }

    #[test]
    fn unexpected_message_in_open_sent_is_fsm_error() {
        let mut fsm = Fsm::new(config(false));
        fsm.handle(Event::ManualStart);
        fsm.handle(Event::TcpConnected(Conn::Outgoing));
        let a = fsm.handle(Event::UpdateReceived(Conn::Outgoing));
        let Action::SendNotification(_, n) = &a[0] else {
            panic!("{a:?}")
        };
        assert_eq!((n.code, n.subcode), (ErrorCode::Fsm as u8, 1));
    }

    const LOWER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const HIGHER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);

    /// An iBGP FSM with `router_id`, facing a peer whose identifier is 10.0.0.2.
    fn ibgp(router_id: Ipv4Addr) -> Fsm {
        let mut c = config(false);
        c.remote_as = 64512;
        c.router_id = router_id;
        Fsm::new(c)
    }

    /// Started, our connection up and the peer's accepted: both in OpenSent.
    fn colliding(router_id: Ipv4Addr) -> Fsm {
        let mut fsm = ibgp(router_id);
        fsm.handle(Event::ManualStart);
        fsm.handle(Event::TcpConnected(Conn::Outgoing));
        let a = fsm.handle(Event::TcpConnected(Conn::Incoming));
        assert_eq!(
            a,
            vec![Action::SendOpen(Conn::Incoming, fsm.local_open())],
            "our OPEN goes out on the second connection too: the peer waits for it there"
        );
        assert_eq!((fsm.state(), fsm.conn()), (State::OpenSent, Some(Conn::Outgoing)));
        fsm
    }

    fn closes(c: Conn) -> [Action; 2] {
        [
            Action::SendNotification(c, collision_notification()),
            Action::DropConnection(c),
        ]
    }

    fn other(c: Conn) -> Conn {
        match c {
            Conn::Outgoing => Conn::Incoming,
            Conn::Incoming => Conn::Outgoing,
        }
    }

    #[test]
    fn collision_in_open_sent_keeps_the_connection_of_the_higher_id() {
        // Lower identifier: the peer's connection stays; higher: ours. Whichever
        // connection the first OPEN comes on.
        for (router_id, winner) in [(LOWER, Conn::Incoming), (HIGHER, Conn::Outgoing)] {
            for open_on in [Conn::Outgoing, Conn::Incoming] {
                let case = format!("local {router_id}, OPEN on {open_on:?}");
                let mut fsm = colliding(router_id);
                let a = fsm.handle(Event::OpenReceived(open_on, peer_open(64512, 90)));
                let loser = other(winner);
                assert!(a.starts_with(&closes(loser)), "{case}: {a:?}");
                assert_eq!(fsm.conn(), Some(winner), "{case}");
                if open_on == winner {
                    assert!(a.contains(&Action::SendKeepalive), "{case}: {a:?}");
                    assert_eq!(fsm.state(), State::OpenConfirm, "{case}");
                } else {
                    // The OPEN came on the loser: the winner still waits for one.
                    assert_eq!(a.len(), 2, "{case}: {a:?}");
                    assert_eq!(fsm.state(), State::OpenSent, "{case}");
                    fsm.handle(Event::OpenReceived(winner, peer_open(64512, 90)));
                }
                // The loser's own end of the story, late: ignored.
                assert_eq!(fsm.handle(Event::TcpFails(loser)), vec![Action::DropConnection(loser)]);
                let a = fsm.handle(Event::KeepaliveReceived(winner));
                assert!(matches!(a.last(), Some(Action::SessionUp(_))), "{case}: {a:?}");
                assert_eq!(fsm.backoff(), Duration::from_secs(2), "{case}: no failure counted");
            }
        }
    }

    #[test]
    fn collision_in_open_confirm_is_settled_when_the_peer_opens_on_the_second_connection() {
        for (router_id, winner) in [(LOWER, Conn::Incoming), (HIGHER, Conn::Outgoing)] {
            for first in [Conn::Outgoing, Conn::Incoming] {
                let case = format!("local {router_id}, {first:?} first");
                let mut fsm = ibgp(router_id);
                fsm.handle(Event::ManualStart);
                fsm.handle(Event::TcpConnected(first));
                fsm.handle(Event::OpenReceived(first, peer_open(64512, 90)));
                assert_eq!(fsm.state(), State::OpenConfirm);
                let second = other(first);
                // Nothing is decided before the peer's OPEN on the new connection.
                let a = fsm.handle(Event::TcpConnected(second));
                assert_eq!(a, vec![Action::SendOpen(second, fsm.local_open())], "{case}");
                assert_eq!((fsm.state(), fsm.conn()), (State::OpenConfirm, Some(first)), "{case}");
                let a = fsm.handle(Event::OpenReceived(second, peer_open(64512, 90)));
                if winner == second {
                    assert!(a.starts_with(&closes(first)), "{case}: {a:?}");
                    assert!(a.contains(&Action::SendKeepalive), "{case}: {a:?}");
                } else {
                    assert_eq!(a, closes(second), "{case}");
                }
                assert_eq!((fsm.state(), fsm.conn()), (State::OpenConfirm, Some(winner)), "{case}");
                let a = fsm.handle(Event::KeepaliveReceived(winner));
                assert!(matches!(a.last(), Some(Action::SessionUp(_))), "{case}: {a:?}");
            }
        }
    }

    #[test]
    fn second_connection_without_an_open_loses_when_the_first_is_established() {
        for router_id in [LOWER, HIGHER] {
            for first in [Conn::Outgoing, Conn::Incoming] {
                let case = format!("local {router_id}, {first:?} first");
                let mut fsm = ibgp(router_id);
                fsm.handle(Event::ManualStart);
                fsm.handle(Event::TcpConnected(first));
                fsm.handle(Event::OpenReceived(first, peer_open(64512, 90)));
                let second = other(first);
                fsm.handle(Event::TcpConnected(second));
                // The peer took the first connection to Established and says so.
                let a = fsm.handle(Event::KeepaliveReceived(first));
                assert!(a.starts_with(&closes(second)), "{case}: {a:?}");
                assert!(matches!(a.last(), Some(Action::SessionUp(_))), "{case}: {a:?}");
                assert_eq!((fsm.state(), fsm.conn()), (State::Established, Some(first)), "{case}");
            }
        }
    }

    #[test]
    fn second_connection_when_established_is_closed() {
        for router_id in [LOWER, HIGHER] {
            let mut fsm = ibgp(router_id);
            fsm.handle(Event::ManualStart);
            fsm.handle(Event::TcpConnected(Conn::Outgoing));
            fsm.handle(Event::OpenReceived(Conn::Outgoing, peer_open(64512, 90)));
            fsm.handle(Event::KeepaliveReceived(Conn::Outgoing));
            let a = fsm.handle(Event::TcpConnected(Conn::Incoming));
            assert_eq!(a, closes(Conn::Incoming), "local {router_id}");
            assert_eq!((fsm.state(), fsm.conn()), (State::Established, Some(Conn::Outgoing)));
        }
    }

    #[test]
    fn accepted_connection_in_connect_keeps_our_connect_running() {
        let mut fsm = ibgp(LOWER);
        fsm.handle(Event::ManualStart);
        let a = fsm.handle(Event::TcpConnected(Conn::Incoming));
        assert!(
            !a.contains(&Action::DropConnection(Conn::Outgoing)),
            "the peer may have accepted our connection already: {a:?}"
        );
        assert_eq!((fsm.state(), fsm.conn()), (State::OpenSent, Some(Conn::Incoming)));
        // Our connect completes: a second connection with our OPEN on it.
        let a = fsm.handle(Event::TcpConnected(Conn::Outgoing));
        assert_eq!(a, vec![Action::SendOpen(Conn::Outgoing, fsm.local_open())]);
        // Or it fails: nothing changes for the session.
        let mut fsm = ibgp(LOWER);
        fsm.handle(Event::ManualStart);
        fsm.handle(Event::TcpConnected(Conn::Incoming));
        assert_eq!(
            fsm.handle(Event::TcpFails(Conn::Outgoing)),
            vec![Action::DropConnection(Conn::Outgoing)]
        );
        assert_eq!(fsm.state(), State::OpenSent);
    }

    #[test]
    fn either_colliding_connection_failing_leaves_the_other() {
        for failing in [Conn::Outgoing, Conn::Incoming] {
            for event in [
                Event::TcpFails(failing),
                Event::NotificationReceived(failing, collision_notification()),
            ] {
                let mut fsm = colliding(LOWER);
                let a = fsm.handle(event.clone());
                assert_eq!(a, vec![Action::DropConnection(failing)], "{event:?}");
                assert_eq!((fsm.state(), fsm.conn()), (State::OpenSent, Some(other(failing))));
            }
        }
        // An unexpected message on the second connection closes that one only.
        let mut fsm = colliding(LOWER);
        let a = fsm.handle(Event::KeepaliveReceived(Conn::Incoming));
        assert_eq!(
            a,
            vec![
                Action::SendNotification(Conn::Incoming, Notification::new(ErrorCode::Fsm, 1, Vec::new())),
                Action::DropConnection(Conn::Incoming)
            ]
        );
        assert_eq!((fsm.state(), fsm.conn()), (State::OpenSent, Some(Conn::Outgoing)));
        // The hold timer ends both.
        let mut fsm = colliding(LOWER);
        let a = fsm.handle(Event::HoldTimerExpires);
        assert!(
            a.contains(&Action::DropConnection(Conn::Outgoing)) && a.contains(&Action::DropConnection(Conn::Incoming))
        );
        assert_eq!(fsm.state(), State::Idle);
    }

    #[test]
    fn cease_collision_on_an_established_session_retries_soon() {
        // We took a connection to Established; the peer had resolved the collision
        // the other way and closes it: both connections are gone.
        for (router_id, retry) in [(HIGHER, COLLISION_RETRY_FIRST), (LOWER, COLLISION_RETRY_SECOND)] {
            let mut fsm = ibgp(router_id);
            fsm.handle(Event::ManualStart);
            fsm.handle(Event::TcpConnected(Conn::Outgoing));
            fsm.handle(Event::OpenReceived(Conn::Outgoing, peer_open(64512, 90)));
            fsm.handle(Event::KeepaliveReceived(Conn::Outgoing));
            assert_eq!(fsm.state(), State::Established);
            let a = fsm.handle(Event::NotificationReceived(Conn::Outgoing, collision_notification()));
            assert!(a.iter().any(|a| matches!(a, Action::SessionDown(_))), "{a:?}");
            assert!(
                a.contains(&Action::StartTimer(Timer::ConnectRetry, retry)),
                "{router_id}: {a:?}"
            );
            assert_eq!(fsm.backoff(), Duration::from_secs(2), "no failure counted");
        }
    }

    #[test]
    fn cease_collision_on_our_only_connection_waits_for_the_other() {
        // The peer settled the collision before we saw its connection (still
        // queued at our listener, or our connect not done yet).
        for (first, state) in [(Conn::Outgoing, State::Active), (Conn::Incoming, State::Connect)] {
            for open_received in [false, true] {
                let mut fsm = ibgp(HIGHER);
                fsm.handle(Event::ManualStart);
                fsm.handle(Event::TcpConnected(first));
                if open_received {
                    fsm.handle(Event::OpenReceived(first, peer_open(64512, 90)));
                }
                let a = fsm.handle(Event::NotificationReceived(first, collision_notification()));
                let case = format!("{first:?}, OPEN received: {open_received}: {a:?}");
                assert!(a.contains(&Action::DropConnection(first)), "{case}");
                assert!(
                    !a.contains(&Action::DropConnection(other(first))),
                    "a connect in progress is kept: {case}"
                );
                // Soon, and sooner for the side whose connection wins (ours, here)
                // once the peer's identifier is known.
                let retry = if open_received {
                    COLLISION_RETRY_FIRST
                } else {
                    COLLISION_RETRY_SECOND
                };
                assert!(a.contains(&Action::StartTimer(Timer::ConnectRetry, retry)), "{case}");
                assert!(!a.iter().any(|a| matches!(a, Action::SessionDown(_))), "{case}");
                assert_eq!(fsm.state(), state, "{case}");
                assert_eq!(fsm.backoff(), Duration::from_secs(2), "no failure counted: {case}");
                // The connection the peer kept arrives.
                let a = fsm.handle(Event::TcpConnected(other(first)));
                assert!(a.contains(&Action::SendOpen(other(first), fsm.local_open())), "{case}");
                assert_eq!(fsm.state(), State::OpenSent);
            }
        }
    }

    #[test]
    fn a_new_connection_of_a_restarted_peer_ends_the_established_session_at_once() {
        let mut fsm = Fsm::new(config(false));
        established(&mut fsm);
        let out = fsm.handle(Event::PeerRestarted);
        assert!(out.contains(&Action::SessionDown(DownReason::PeerRestarted)), "{out:?}");
        assert!(DownReason::PeerRestarted.allows_graceful_restart(false));
        assert_eq!(fsm.state(), State::Idle);
        // The new connection and its OPEN follow, as the session task hands them on.
        let out = fsm.handle(Event::TcpConnected(Conn::Incoming));
        assert!(
            matches!(out[..], [_, Action::SendOpen(Conn::Incoming, _), ..]),
            "{out:?}"
        );
        fsm.handle(Event::OpenReceived(Conn::Incoming, peer_open(65000, 9)));
        let out = fsm.handle(Event::KeepaliveReceived(Conn::Incoming));
        assert!(out.iter().any(|a| matches!(a, Action::SessionUp(_))), "{out:?}");
        // Anywhere else it means nothing.
        assert!(Fsm::new(config(false)).handle(Event::PeerRestarted).is_empty());
    }

    #[test]
    fn losing_the_session_connection_in_open_confirm_goes_on_with_the_other_from_open_sent() {
        // Our OPEN and the peer's crossed on our connection (OpenConfirm); then the
        // peer's connection, which wins (its identifier is higher), came up with
        // our OPEN on it, and the peer closes ours to keep its own.
        let mut fsm = ibgp(Ipv4Addr::new(10, 0, 0, 1));
        fsm.handle(Event::ManualStart);
        fsm.handle(Event::TcpConnected(Conn::Outgoing));
        fsm.handle(Event::OpenReceived(Conn::Outgoing, peer_open(64512, 9)));
        assert_eq!(fsm.state(), State::OpenConfirm);
        fsm.handle(Event::TcpConnected(Conn::Incoming));
        fsm.handle(Event::NotificationReceived(
            Conn::Outgoing,
            Notification::cease(CeaseSubcode::ConnectionCollisionResolution),
        ));
        assert_eq!((fsm.state(), fsm.conn()), (State::OpenSent, Some(Conn::Incoming)));
        // The peer's OPEN on the connection it kept is no FSM error.
        fsm.handle(Event::OpenReceived(Conn::Incoming, peer_open(64512, 9)));
        assert_eq!(fsm.state(), State::OpenConfirm);
        let out = fsm.handle(Event::KeepaliveReceived(Conn::Incoming));
        assert!(out.iter().any(|a| matches!(a, Action::SessionUp(_))), "{out:?}");
    }

    #[test]
    fn collision_keeps_connection_of_higher_id() {
        let low = Ipv4Addr::new(10, 0, 0, 1);
        let high = Ipv4Addr::new(10, 0, 0, 2);
        assert_eq!(resolve_collision(high, low), Conn::Outgoing);
        assert_eq!(resolve_collision(low, high), Conn::Incoming);
    }
}
