//! Two of our FSMs started at once against each other, over a simulated network
//! in which every message, connect and accept may come in any order the real one
//! allows (each TCP connection keeps its own order; a closed connection delivers
//! what was sent before it closed). Thousands of seeded random schedules: in every
//! one both sides must reach Established on the same connection without waiting
//! for a connect-retry or hold timer, only for the short retries of a collision.
//! This is the race the mesh test (interop_mesh.rs) met about once in 150 rounds.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::Duration;

use speaker::fsm::{Action, Conn, Event, Fsm, FsmConfig, State, Timer};
use speaker::packet::{AfiSafi, Capability, GracefulRestart, Message};

const CONNECT_RETRY: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    A,
    B,
}

impl Side {
    fn i(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }
    fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// One TCP connection between the two.
#[derive(Debug)]
struct Link {
    initiator: Side,
    /// The initiator has seen the connect complete; the acceptor has accepted it.
    connected: [bool; 2],
    /// Messages in flight, per direction (index: the sender).
    queue: [VecDeque<Message>; 2],
    /// A side closed it: the other gets what was queued, then the close.
    closed_by: [bool; 2],
    /// The close reached each side (or it dropped it itself).
    gone: [bool; 2],
}

impl Link {
    /// What the connection is to `side`.
    fn role(&self, side: Side) -> Conn {
        if self.initiator == side {
            Conn::Outgoing
        } else {
            Conn::Incoming
        }
    }
}

struct Net {
    fsm: [Fsm; 2],
    links: Vec<Link>,
    /// Per side, per Conn: the link index it is on now.
    slot: [[Option<usize>; 2]; 2],
    timers: [[Option<Duration>; 3]; 2],
    now: Duration,
    long_timer_fired: Option<String>,
    log: Vec<String>,
}

fn conn_i(c: Conn) -> usize {
    match c {
        Conn::Outgoing => 0,
        Conn::Incoming => 1,
    }
}

fn timer_i(t: Timer) -> usize {
    match t {
        Timer::ConnectRetry => 0,
        Timer::Hold => 1,
        Timer::Keepalive => 2,
    }
}

fn config(router_id: Ipv4Addr) -> FsmConfig {
    FsmConfig {
        local_as: 64512,
        remote_as: 64512,
        router_id,
        hold_time: 90,
        keepalive_time: 30,
        connect_retry: CONNECT_RETRY,
        passive: false,
        capabilities: vec![
            Capability::Multiprotocol(AfiSafi::IPV4_UNICAST),
            Capability::FourOctetAs(64512),
            Capability::GracefulRestart(GracefulRestart {
                restart_time: 120,
                ..Default::default()
            }),
        ],
    }
}

/// Something that can happen next.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// The initiator sees its connect complete.
    Connected(usize),
    /// The acceptor's listener hands it the connection.
    Accepted(usize),
    /// The first message in flight from `Side` on the link arrives.
    Deliver(usize, Side),
    /// The close reaches the other side (its queue is empty).
    Close(usize, Side),
}

impl Net {
    fn new() -> Net {
        Net {
            fsm: [
                Fsm::new(config(Ipv4Addr::new(10, 0, 0, 2))),
                Fsm::new(config(Ipv4Addr::new(10, 0, 0, 1))),
            ],
            links: Vec::new(),
            slot: [[None; 2]; 2],
            timers: [[None; 3]; 2],
            now: Duration::ZERO,
            long_timer_fired: None,
            log: Vec::new(),
        }
    }

    fn event(&mut self, side: Side, e: Event) {
        self.log.push(format!("{:?} <- {}", side, short(&e)));
        let actions = self.fsm[side.i()].handle(e);
        for a in actions {
            self.act(side, a);
        }
    }

    fn act(&mut self, side: Side, a: Action) {
        let s = side.i();
        match a {
            Action::Connect => {
                self.links.push(Link {
                    initiator: side,
                    connected: [false; 2],
                    queue: [VecDeque::new(), VecDeque::new()],
                    closed_by: [false; 2],
                    gone: [false; 2],
                });
                self.slot[s][conn_i(Conn::Outgoing)] = Some(self.links.len() - 1);
            }
            Action::SendOpen(c, open) => self.send(side, c, Message::Open(open)),
            Action::SendKeepalive => {
                if let Some(c) = self.fsm[s].conn() {
                    self.send(side, c, Message::Keepalive);
                }
            }
            Action::SendNotification(c, n) => self.send(side, c, Message::Notification(n)),
            Action::StartTimer(t, d) => self.timers[s][timer_i(t)] = Some(self.now + d),
            Action::StopTimer(t) => self.timers[s][timer_i(t)] = None,
            Action::DropConnection(c) => {
                if let Some(l) = self.slot[s][conn_i(c)].take() {
                    let link = &mut self.links[l];
                    link.closed_by[s] = true;
                    link.gone[s] = true;
                }
            }
            Action::SessionUp(_) | Action::SessionDown(_) => {}
        }
    }

    fn send(&mut self, side: Side, c: Conn, m: Message) {
        let s = side.i();
        if let Some(l) = self.slot[s][conn_i(c)] {
            let link = &mut self.links[l];
            if link.connected[s] && !link.closed_by[s] {
                link.queue[s].push_back(m);
            }
        }
    }

    fn steps(&self) -> Vec<Step> {
        let mut out = Vec::new();
        for (l, link) in self.links.iter().enumerate() {
            let init = link.initiator;
            let acc = init.other();
            // The handshake completes in the kernels whether or not the initiator
            // still wants the connection; one it gave up is closed at once.
            if !link.connected[init.i()] {
                out.push(Step::Connected(l));
            }
            if link.connected[init.i()] && !link.connected[acc.i()] && !link.gone[acc.i()] {
                out.push(Step::Accepted(l));
            }
            for from in [Side::A, Side::B] {
                let to = from.other();
                if !link.connected[to.i()] || link.gone[to.i()] {
                    continue;
                }
                if !link.queue[from.i()].is_empty() {
                    out.push(Step::Deliver(l, from));
                } else if link.closed_by[from.i()] {
                    out.push(Step::Close(l, from));
                }
            }
        }
        out
    }

    fn take(&mut self, step: Step) {
        match step {
            Step::Connected(l) => {
                let side = self.links[l].initiator;
                self.links[l].connected[side.i()] = true;
                if self.slot[side.i()][conn_i(Conn::Outgoing)] == Some(l) {
                    self.event(side, Event::TcpConnected(Conn::Outgoing));
                } else {
                    self.links[l].closed_by[side.i()] = true;
                    self.links[l].gone[side.i()] = true;
                }
            }
            Step::Accepted(l) => {
                let side = self.links[l].initiator.other();
                self.links[l].connected[side.i()] = true;
                let s = side.i();
                // The session task refuses a second accepted connection with a
                // Cease (collision), without asking the FSM.
                if self.slot[s][conn_i(Conn::Incoming)].is_some() {
                    let link = &mut self.links[l];
                    link.queue[s].push_back(Message::Notification(speaker::fsm::collision_notification()));
                    link.closed_by[s] = true;
                    link.gone[s] = true;
                    return;
                }
                self.slot[s][conn_i(Conn::Incoming)] = Some(l);
                self.event(side, Event::TcpConnected(Conn::Incoming));
            }
            Step::Deliver(l, from) => {
                let to = from.other();
                let m = self.links[l].queue[from.i()].pop_front().expect("enabled");
                let c = self.links[l].role(to);
                if self.slot[to.i()][conn_i(c)] != Some(l) {
                    return;
                }
                let e = match m {
                    Message::Open(o) => Event::OpenReceived(c, o),
                    Message::Keepalive => Event::KeepaliveReceived(c),
                    Message::Notification(n) => Event::NotificationReceived(c, n),
                    _ => return,
                };
                self.event(to, e);
            }
            Step::Close(l, from) => {
                let to = from.other();
                self.links[l].gone[to.i()] = true;
                let c = self.links[l].role(to);
                if self.slot[to.i()][conn_i(c)] == Some(l) {
                    self.slot[to.i()][conn_i(c)] = None;
                    self.event(to, Event::TcpFails(c));
                }
            }
        }
    }

    /// Fires the earliest timer; false when none is set.
    fn fire_timer(&mut self) -> bool {
        let mut best: Option<(Duration, usize, usize)> = None;
        for s in 0..2 {
            for t in 0..3 {
                if let Some(d) = self.timers[s][t] {
                    if best.is_none_or(|(b, ..)| d < b) {
                        best = Some((d, s, t));
                    }
                }
            }
        }
        let Some((at, s, t)) = best else { return false };
        let waited = at.saturating_sub(self.now);
        self.now = at;
        self.timers[s][t] = None;
        let (timer, event) = match t {
            0 => (Timer::ConnectRetry, Event::ConnectRetryTimerExpires),
            1 => (Timer::Hold, Event::HoldTimerExpires),
            _ => (Timer::Keepalive, Event::KeepaliveTimerExpires),
        };
        if timer != Timer::Keepalive && waited >= CONNECT_RETRY && self.long_timer_fired.is_none() {
            self.long_timer_fired = Some(format!("{timer:?} of {} after {waited:?}", ["A", "B"][s]));
        }
        let side = if s == 0 { Side::A } else { Side::B };
        self.event(side, event);
        true
    }

    fn up(&self) -> bool {
        let both = self.fsm.iter().all(|f| f.state() == State::Established);
        let same = |side: Side| self.fsm[side.i()].conn().and_then(|c| self.slot[side.i()][conn_i(c)]);
        both && same(Side::A).is_some() && same(Side::A) == same(Side::B)
    }
}

fn short(e: &Event) -> String {
    match e {
        Event::OpenReceived(c, _) => format!("OPEN on {c:?}"),
        Event::NotificationReceived(c, n) => format!("NOTIFICATION {n} on {c:?}"),
        other => format!("{other:?}"),
    }
}

/// xorshift64*: enough randomness for schedules, and reproducible from a seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

/// Runs one schedule; `Err` with its log when it needed a long timer or never came up.
fn schedule(seed: u64) -> Result<(), String> {
    let mut net = Net::new();
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    net.event(Side::A, Event::ManualStart);
    net.event(Side::B, Event::ManualStart);
    for _ in 0..500 {
        if net.up() && net.steps().is_empty() {
            return match net.long_timer_fired {
                None => Ok(()),
                Some(t) => Err(format!("up only after a {t}:\n{}", net.log.join("\n"))),
            };
        }
        let steps = net.steps();
        if steps.is_empty() {
            if !net.fire_timer() {
                break;
            }
            continue;
        }
        let step = steps[rng.below(steps.len())];
        net.take(step);
    }
    Err(format!(
        "not up: A {:?}, B {:?}\n{}",
        net.fsm[0].state(),
        net.fsm[1].state(),
        net.log.join("\n")
    ))
}

#[test]
fn simultaneous_starts_come_up_without_waiting_for_connect_retry() {
    let mut failures = Vec::new();
    for seed in 0..50_000 {
        if let Err(e) = schedule(seed) {
            failures.push((seed, e));
        }
    }
    if let Some((seed, log)) = failures.first() {
        panic!(
            "{} of 50000 schedules failed; the first, seed {seed}:\n{log}",
            failures.len()
        );
    }
}
