//! BFD (RFC 5880) in asynchronous mode, single hop (RFC 5881): the control packet
//! codec and one session's state machine, as pure types. Packets and the passing of
//! time go in; packets to send and state changes come out. The socket side is in
//! `bfd_io`. A session that goes from Up to Down takes its BGP session down at
//! once (RFC 9384's Cease "BFD Down"), which is the point: a peer that dies without a
//! word is noticed in a detection time (900 ms by default) instead of a hold time.

use std::fmt;
use std::time::Duration;

/// UDP port of single-hop BFD control packets (RFC 5881).
pub const CONTROL_PORT: u16 = 3784;
/// The mandatory part of a control packet; authentication is not supported.
pub const PACKET_LEN: usize = 24;
/// While a session is not Up it transmits no faster than this (RFC 5880 6.8.3).
pub const SLOW_TX: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    AdminDown = 0,
    Down = 1,
    Init = 2,
    Up = 3,
}

impl State {
    fn from_bits(b: u8) -> State {
        match b & 3 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            State::AdminDown => "admin-down",
            State::Down => "down",
            State::Init => "init",
            State::Up => "up",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a session is down (RFC 5880 4.1, "Diag").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Diag {
    None = 0,
    DetectionTimeExpired = 1,
    NeighborSignaledDown = 3,
    AdministrativelyDown = 7,
}

impl Diag {
    fn from_bits(b: u8) -> Diag {
        match b & 0x1f {
            1 => Diag::DetectionTimeExpired,
            3 => Diag::NeighborSignaledDown,
            7 => Diag::AdministrativelyDown,
            _ => Diag::None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Diag::None => "",
            Diag::DetectionTimeExpired => "control detection time expired",
            Diag::NeighborSignaledDown => "neighbor signaled session down",
            Diag::AdministrativelyDown => "administratively down",
        }
    }
}

/// A BFD control packet (RFC 5880 4.1), without authentication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
    pub diag: Diag,
    pub state: State,
    pub poll: bool,
    pub final_: bool,
    pub demand: bool,
    pub detect_mult: u8,
    pub my_discr: u32,
    pub your_discr: u32,
    /// Microseconds.
    pub desired_min_tx: u32,
    pub required_min_rx: u32,
    pub required_min_echo_rx: u32,
}

/// Why a received packet was discarded (RFC 5880 6.8.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("{0} bytes: shorter than a control packet")]
    Short(usize),
    #[error("version {0}, not 1")]
    Version(u8),
    #[error("length field {0} does not fit")]
    Length(u8),
    #[error("detect multiplier 0")]
    ZeroMult,
    #[error("multipoint bit set")]
    Multipoint,
    #[error("my discriminator 0")]
    ZeroDiscriminator,
    #[error("authentication is not supported")]
    Authentication,
}

impl Packet {
    pub fn decode(b: &[u8]) -> Result<Packet, PacketError> {
        if b.len() < PACKET_LEN {
            return Err(PacketError::Short(b.len()));
        }
        let version = b[0] >> 5;
        if version != 1 {
            return Err(PacketError::Version(version));
        }
        let length = b[3];
        if usize::from(length) < PACKET_LEN || usize::from(length) > b.len() {
            return Err(PacketError::Length(length));
        }
        let flags = b[1];
        if flags & 0x04 != 0 {
            return Err(PacketError::Authentication);
        }
        if flags & 0x01 != 0 {
            return Err(PacketError::Multipoint);
        }
        if b[2] == 0 {
            return Err(PacketError::ZeroMult);
        }
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let p = Packet {
            diag: Diag::from_bits(b[0]),
            state: State::from_bits(flags >> 6),
            poll: flags & 0x20 != 0,
            final_: flags & 0x10 != 0,
            demand: flags & 0x02 != 0,
            detect_mult: b[2],
            my_discr: u32_at(4),
            your_discr: u32_at(8),
            desired_min_tx: u32_at(12),
            required_min_rx: u32_at(16),
            required_min_echo_rx: u32_at(20),
        };
        if p.my_discr == 0 {
            return Err(PacketError::ZeroDiscriminator);
        }
        Ok(p)
    }

    pub fn encode(&self) -> [u8; PACKET_LEN] {
        let mut b = [0u8; PACKET_LEN];
        b[0] = (1 << 5) | (self.diag as u8 & 0x1f);
        b[1] = ((self.state as u8) << 6)
            | if self.poll { 0x20 } else { 0 }
            | if self.final_ { 0x10 } else { 0 }
            | if self.demand { 0x02 } else { 0 };
        b[2] = self.detect_mult;
        b[3] = PACKET_LEN as u8;
        b[4..8].copy_from_slice(&self.my_discr.to_be_bytes());
        b[8..12].copy_from_slice(&self.your_discr.to_be_bytes());
        b[12..16].copy_from_slice(&self.desired_min_tx.to_be_bytes());
        b[16..20].copy_from_slice(&self.required_min_rx.to_be_bytes());
        b[20..24].copy_from_slice(&self.required_min_echo_rx.to_be_bytes());
        b
    }
}

/// A session's timers as configured: what we would like, in microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    pub min_tx: u32,
    pub min_rx: u32,
    pub multiplier: u8,
}

/// What a session asks of its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Send(Packet),
    /// The session's state changed.
    Changed {
        from: State,
        to: State,
        diag: Diag,
    },
}

/// One BFD session with one peer. Time is given (`now`), never read.
#[derive(Clone, Debug)]
pub struct Session {
    timers: Timers,
    state: State,
    diag: Diag,
    my_discr: u32,
    your_discr: u32,
    remote_state: State,
    remote_min_rx: u32,
    remote_desired_tx: u32,
    remote_mult: u8,
    /// What we advertise as DesiredMinTx now: slow until Up (6.8.3).
    desired_tx: u32,
    /// A Poll sequence is under way: timers we advertised wait for the peer's Final.
    polling: bool,
    /// The peer asked (Poll): our next packet carries Final.
    final_due: bool,
    next_tx: Duration,
    /// When the peer is declared down if nothing arrives; none before its first packet.
    detect_at: Option<Duration>,
    /// Counts packets sent, for the jitter.
    sent: u64,
}

impl Session {
    pub fn new(timers: Timers, my_discr: u32, now: Duration) -> Session {
        Session {
            timers,
            state: State::Down,
            diag: Diag::None,
            my_discr: my_discr.max(1),
            your_discr: 0,
            remote_state: State::Down,
            remote_min_rx: 1,
            remote_desired_tx: 0,
            remote_mult: 0,
            desired_tx: SLOW_TX.as_micros() as u32,
            polling: false,
            final_due: false,
            next_tx: now,
            detect_at: None,
            sent: 0,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn diag(&self) -> Diag {
        self.diag
    }

    pub fn my_discr(&self) -> u32 {
        self.my_discr
    }

    pub fn timers(&self) -> Timers {
        self.timers
    }

    /// Ends the session on our side (AdminDown, RFC 5880 6.8.16): the packet to
    /// send says so, and the peer must not take it for a failure.
    pub fn shut_down(&mut self) -> Packet {
        self.state = State::AdminDown;
        self.diag = Diag::AdministrativelyDown;
        self.detect_at = None;
        self.packet()
    }

    /// The detection time now agreed (6.8.4): the peer's multiplier times the slower of
    /// what we can receive and what it sends.
    pub fn detection_time(&self) -> Duration {
        let interval = self.timers.min_rx.max(self.remote_desired_tx);
        Duration::from_micros(u64::from(self.remote_mult.max(1)) * u64::from(interval))
    }

    /// The interval between our packets (6.8.7): the slower of ours and what the
    /// peer can take, less a jitter of up to 25 % (up to 10 % below 90 % with a
    /// multiplier of 1).
    fn tx_interval(&self) -> Duration {
        let base = u64::from(self.desired_tx.max(self.remote_min_rx));
        let spread = if self.timers.multiplier == 1 { 15 } else { 25 };
        // A fixed pseudo-random walk keeps the core free of clocks and RNGs.
        let jitter = (self.sent.wrapping_mul(2_654_435_761) >> 7) % (spread + 1);
        Duration::from_micros(base * (75 + jitter) / 100)
    }

    /// When [`Session::tick`] is next due.
    pub fn next_deadline(&self) -> Duration {
        match self.detect_at {
            Some(d) => d.min(self.next_tx),
            None => self.next_tx,
        }
    }

    fn packet(&mut self) -> Packet {
        let final_ = std::mem::take(&mut self.final_due);
        let p = Packet {
            diag: self.diag,
            state: self.state,
            // Never both (6.8.7): a Final goes alone and our Poll with the next packet.
            poll: self.polling && !final_,
            final_,
            demand: false,
            detect_mult: self.timers.multiplier,
            my_discr: self.my_discr,
            your_discr: self.your_discr,
            desired_min_tx: self.desired_tx,
            required_min_rx: self.timers.min_rx,
            required_min_echo_rx: 0,
        };
        self.sent += 1;
        p
    }

    fn set_state(&mut self, to: State, diag: Diag, out: &mut Vec<Action>) {
        let from = self.state;
        if from == to {
            return;
        }
        self.state = to;
        self.diag = diag;
        // Slow while not Up; the configured rate once Up, announced with a Poll (6.8.3).
        let wanted = if to == State::Up {
            self.timers.min_tx
        } else {
            (SLOW_TX.as_micros() as u32).max(self.timers.min_tx)
        };
        if wanted != self.desired_tx {
            self.desired_tx = wanted;
            self.polling = true;
        }
        out.push(Action::Changed { from, to, diag });
    }

    /// A control packet from the peer (already matched to this session), at `now`.
    pub fn receive(&mut self, p: &Packet, now: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        if p.your_discr != 0 && p.your_discr != self.my_discr {
            return out;
        }
        if p.your_discr == 0 && !matches!(p.state, State::Down | State::AdminDown) {
            return out;
        }
        self.your_discr = p.my_discr;
        self.remote_state = p.state;
        self.remote_min_rx = p.required_min_rx.max(1);
        self.remote_desired_tx = p.desired_min_tx;
        self.remote_mult = p.detect_mult;
        if p.final_ {
            self.polling = false;
        }
        if self.state == State::AdminDown {
            return out;
        }
        match (self.state, p.state) {
            (_, State::AdminDown) if self.state != State::Down => {
                self.set_state(State::Down, Diag::NeighborSignaledDown, &mut out)
            }
            (_, State::AdminDown) => {}
            (State::Down, State::Down) => self.set_state(State::Init, Diag::None, &mut out),
            (State::Down, State::Init) => self.set_state(State::Up, Diag::None, &mut out),
            (State::Init, State::Init | State::Up) => self.set_state(State::Up, Diag::None, &mut out),
            (State::Up, State::Down) => self.set_state(State::Down, Diag::NeighborSignaledDown, &mut out),
            _ => {}
        }
        self.detect_at = Some(now + self.detection_time());
        if p.poll {
            // Answer a Poll at once, with Final (6.8.6).
            self.final_due = true;
            out.push(Action::Send(self.packet()));
            self.next_tx = now + self.tx_interval();
        } else if out.iter().any(|a| matches!(a, Action::Changed { .. })) {
            // A state change goes out at once rather than at the next interval.
            out.push(Action::Send(self.packet()));
            self.next_tx = now + self.tx_interval();
        }
        out
    }

    /// Time passed: sends what is due, declares the peer down when it went quiet.
    pub fn tick(&mut self, now: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        if self.detect_at.is_some_and(|d| now >= d) {
            self.detect_at = None;
            self.your_discr = 0;
            if matches!(self.state, State::Init | State::Up) {
                self.set_state(State::Down, Diag::DetectionTimeExpired, &mut out);
            }
        }
        if now >= self.next_tx {
            out.push(Action::Send(self.packet()));
            self.next_tx = now + self.tx_interval();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u32 = 1000;

    fn timers() -> Timers {
        Timers {
            min_tx: 300 * MS,
            min_rx: 300 * MS,
            multiplier: 3,
        }
    }

    fn sent(actions: &[Action]) -> Vec<Packet> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send(p) => Some(*p),
                _ => None,
            })
            .collect()
    }

    /// `x`'s due packets delivered to `y` at once, and `y`'s answers back to
    /// `x`; every packet sent.
    fn exchange(x: &mut Session, y: &mut Session, now: Duration) -> Vec<Packet> {
        let mut all = Vec::new();
        for p in sent(&x.tick(now)) {
            all.push(p);
            for q in sent(&y.receive(&p, now)) {
                all.push(q);
                x.receive(&q, now);
            }
        }
        all
    }

    #[test]
    fn packets_read_back_what_they_write_and_bad_ones_are_named() {
        let p = Packet {
            diag: Diag::DetectionTimeExpired,
            state: State::Up,
            poll: true,
            final_: false,
            demand: false,
            detect_mult: 3,
            my_discr: 7,
            your_discr: 9,
            desired_min_tx: 300_000,
            required_min_rx: 300_000,
            required_min_echo_rx: 0,
        };
        let b = p.encode();
        assert_eq!(b[0], 0x21, "version 1, diag 1");
        assert_eq!(b[1], 0xe0, "state Up, poll");
        assert_eq!(Packet::decode(&b), Ok(p));
        let mut bad = b;
        bad[0] = 0x41;
        assert_eq!(Packet::decode(&bad), Err(PacketError::Version(2)));
        let mut bad = b;
        bad[2] = 0;
        assert_eq!(Packet::decode(&bad), Err(PacketError::ZeroMult));
        assert_eq!(Packet::decode(&b[..10]), Err(PacketError::Short(10)));
        let mut bad = b;
        bad[4..8].copy_from_slice(&[0; 4]);
        assert_eq!(Packet::decode(&bad), Err(PacketError::ZeroDiscriminator));
    }

    /// Two sessions against each other, packets delivered at once.
    #[test]
    fn two_sessions_come_up_speed_up_and_detect_a_silent_peer() {
        let t0 = Duration::ZERO;
        let mut a = Session::new(timers(), 1, t0);
        let mut b = Session::new(timers(), 2, t0);
        let mut now = t0;
        let mut up_at = None;
        for _ in 0..200 {
            now += Duration::from_millis(50);
            exchange(&mut a, &mut b, now);
            exchange(&mut b, &mut a, now);
            if a.state() == State::Up && b.state() == State::Up && up_at.is_none() {
                up_at = Some(now);
            }
        }
        assert!(up_at.is_some_and(|t| t < Duration::from_secs(3)), "up at {up_at:?}");
        assert_eq!(a.desired_tx, 300 * MS, "the fast rate once Up, after the Poll");
        assert!(!a.polling, "the Poll was answered with Final");
        assert_eq!(a.detection_time(), Duration::from_millis(900));
        // b goes silent: a declares it down within the detection time.
        let quiet = now;
        let mut down_at = None;
        while down_at.is_none() && now < quiet + Duration::from_secs(2) {
            now += Duration::from_millis(10);
            let out = a.tick(now);
            if out.iter().any(|x| matches!(x, Action::Changed { to: State::Down, .. })) {
                down_at = Some(now - quiet);
            }
        }
        let d = down_at.expect("detected");
        assert!(d <= Duration::from_millis(900), "{d:?}");
        assert_eq!(a.diag(), Diag::DetectionTimeExpired);
        // Slow again while Down.
        let p = sent(&a.tick(now + Duration::from_secs(5)))[0];
        assert_eq!((p.state, p.desired_min_tx), (State::Down, 1_000_000));
    }

    /// Seen against BIRD, which drops such packets: answering the peer's Poll
    /// while our own Poll is under way must not set both bits.
    #[test]
    fn poll_and_final_never_go_together() {
        let t0 = Duration::ZERO;
        let mut a = Session::new(timers(), 1, t0);
        let mut b = Session::new(timers(), 2, t0);
        let mut now = t0;
        for _ in 0..400 {
            now += Duration::from_millis(25);
            for p in exchange(&mut a, &mut b, now)
                .iter()
                .chain(&exchange(&mut b, &mut a, now))
            {
                assert!(!(p.poll && p.final_), "{p:?}");
            }
        }
        assert_eq!((a.state(), b.state()), (State::Up, State::Up));
        assert!(!a.polling && !b.polling, "both Polls answered");
    }

    #[test]
    fn a_peer_signalling_down_takes_the_session_down() {
        let mut a = Session::new(timers(), 1, Duration::ZERO);
        let peer = |state, your| Packet {
            diag: Diag::None,
            state,
            poll: false,
            final_: false,
            demand: false,
            detect_mult: 3,
            my_discr: 5,
            your_discr: your,
            desired_min_tx: 300_000,
            required_min_rx: 300_000,
            required_min_echo_rx: 0,
        };
        a.receive(&peer(State::Down, 0), Duration::ZERO);
        assert_eq!(a.state(), State::Init);
        a.receive(&peer(State::Up, 1), Duration::ZERO);
        assert_eq!(a.state(), State::Up);
        // A packet for another session of ours is not this one's.
        assert!(a.receive(&peer(State::Down, 99), Duration::ZERO).is_empty());
        let out = a.receive(&peer(State::Down, 1), Duration::ZERO);
        assert!(out.contains(&Action::Changed {
            from: State::Up,
            to: State::Down,
            diag: Diag::NeighborSignaledDown
        }));
    }
}
