//! Programming the kernel: the FIB thread carries out the core's [`FibOp`]s in order
//! and says how each went, and reads our routes back when asked. Routes carry our
//! protocol number. A route of another owner is never overwritten (creates are
//! exclusive) nor deleted (deletes name our protocol, and the kernel matches it).
//!
//! It runs on a thread of its own with a blocking netlink socket, and writes the
//! operations queued in batches: up to [`BATCH`] requests in one `send`, only the
//! last one asking for an acknowledgement. The kernel carries a batch out in order
//! within the `send` and answers refusals by sequence number, so one batch costs a
//! system call or two instead of a round trip (and a task wake-up) per route.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use ipnet::IpNet;
use rtnetlink::packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE,
    NLM_F_REQUEST,
};
use rtnetlink::packet_route::route::{RouteMessage, RouteProtocol};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use rtnetlink::{RouteMessageBuilder, RouteNextHopBuilder};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::echoes::Echoes;
use crate::kernel::{self, KernelError};
use crate::kernel_view::KernelRoute;
use crate::messages::{FibCmd, FibError, FibOp, FibReport};
use crate::metrics::SharedMetrics;

const EEXIST: i32 = libc::EEXIST;
const ESRCH: i32 = libc::ESRCH;
/// Requests per `send`. The refusals of a whole batch (each echoing its request,
/// under 200 bytes) fit the receive buffer many times over.
pub const BATCH: usize = 256;
const RECEIVE_BUFFER: usize = 4 << 20;

/// The FIB thread's loop: carries out the commands queued, in order, until the
/// sender goes away, and answers each lot with the number of commands it answers
/// and their reports. It blocks, so it runs on a thread of its own; the core may
/// take the lock itself for a few commands when nothing is queued (no thread to
/// wake, which costs milliseconds in a virtual machine).
pub fn run(
    fib: &Mutex<Fib>,
    mut rx: mpsc::UnboundedReceiver<Vec<FibCmd>>,
    reports: mpsc::UnboundedSender<(usize, Vec<FibReport>)>,
) {
    while let Some(mut cmds) = rx.blocking_recv() {
        // What else is queued goes in the same batches (a bounded lot: the core
        // reads the reports of one lot at a time between other work).
        while cmds.len() < 4 * BATCH {
            match rx.try_recv() {
                Ok(more) => cmds.extend(more),
                Err(_) => break,
            }
        }
        let n = cmds.len();
        let out = fib.lock().unwrap_or_else(|p| p.into_inner()).execute(cmds);
        if reports.send((n, out)).is_err() {
            return;
        }
    }
}

pub struct Fib {
    socket: Socket,
    protocol: u8,
    table: u32,
    metrics: SharedMetrics,
    seq: u32,
    buf: Vec<u8>,
    echoes: Option<Echoes>,
}

/// A request the kernel refused: its errno.
type Refusal = i32;

impl Fib {
    pub fn new(protocol: u8, table: u32, metrics: SharedMetrics) -> Result<Self, KernelError> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        // Refusals carry only the header of the request, not all of it.
        let _ = socket.set_cap_ack(true);
        let _ = socket.set_rx_buf_sz(RECEIVE_BUFFER);
        Ok(Fib {
            socket,
            protocol,
            table,
            metrics,
            seq: 0,
            buf: vec![0; 1 << 16],
            echoes: None,
        })
    }

    /// Tells `echoes` of every change before it is sent.
    pub fn with_echoes(mut self, echoes: Echoes) -> Self {
        self.echoes = Some(echoes);
        self
    }

    fn expect(&self, prefix: IpNet, present: bool) {
        if let Some(e) = &self.echoes {
            e.expect(prefix, present);
        }
    }

    fn cancel(&self, prefix: IpNet, present: bool) {
        if let Some(e) = &self.echoes {
            e.cancel(prefix, present);
        }
    }

    /// Our routes in the kernel: left by a crash or a graceful stop, or read back.
    pub fn own_routes(&mut self) -> Result<Vec<KernelRoute>, KernelError> {
        let mut routes = Vec::new();
        for request in [
            RouteMessageBuilder::<Ipv4Addr>::new().build(),
            RouteMessageBuilder::<Ipv6Addr>::new().build(),
        ] {
            let seq = self.next_seq();
            let mut out = Vec::new();
            emit(
                &mut out,
                RouteNetlinkMessage::GetRoute(request),
                NLM_F_REQUEST | NLM_F_DUMP,
                seq,
            );
            self.socket.send(&out, 0)?;
            'dump: loop {
                let n = self.recv()?;
                for msg in messages(&self.buf[..n]) {
                    let msg = msg?;
                    if msg.header.sequence_number != seq {
                        continue;
                    }
                    match msg.payload {
                        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(r)) => {
                            routes.extend(kernel::parse_route(&r))
                        }
                        NetlinkPayload::Done(_) => break 'dump,
                        NetlinkPayload::Error(e) => {
                            return Err(KernelError::Io(std::io::Error::from_raw_os_error(
                                e.code.map_or(0, |c| -c.get()),
                            )))
                        }
                        _ => {}
                    }
                }
            }
        }
        routes.retain(|r| r.protocol == self.protocol && r.table == self.table);
        Ok(routes)
    }

    /// Removes every route of ours the kernel holds now; how many it removed.
    pub fn remove_own(&mut self) -> Result<usize, KernelError> {
        let ops: Vec<FibOp> = self
            .own_routes()?
            .into_iter()
            .map(|r| FibOp::Remove { prefix: r.prefix })
            .collect();
        for chunk in ops.chunks(BATCH) {
            self.apply_batch(chunk);
        }
        Ok(ops.len())
    }

    /// Carries out `cmds` in order, in batches; a report for each.
    pub fn execute(&mut self, cmds: Vec<FibCmd>) -> Vec<FibReport> {
        let mut out = Vec::with_capacity(cmds.len());
        let mut ops: Vec<FibOp> = Vec::new();
        let mut prefixes = HashSet::new();
        for cmd in cmds {
            match cmd {
                FibCmd::Apply(op) => {
                    // A prefix twice in one batch would see the fallback of an
                    // exclusive create run after a later change to it.
                    if ops.len() == BATCH || !prefixes.insert(op.prefix()) {
                        self.run_batch(&mut ops, &mut out);
                        prefixes.clear();
                        prefixes.insert(op.prefix());
                    }
                    ops.push(op);
                }
                FibCmd::Read => {
                    self.run_batch(&mut ops, &mut out);
                    prefixes.clear();
                    match self.own_routes() {
                        Ok(routes) => {
                            out.push(FibReport::State(
                                routes.into_iter().map(|r| (r.prefix, r.gateways)).collect(),
                            ));
                        }
                        Err(e) => warn!(error = %e, "cannot read our routes back"),
                    }
                }
            }
        }
        self.run_batch(&mut ops, &mut out);
        out
    }

    fn run_batch(&mut self, ops: &mut Vec<FibOp>, out: &mut Vec<FibReport>) {
        if ops.is_empty() {
            return;
        }
        let errors = self.apply_batch(ops);
        out.extend(
            ops.drain(..)
                .zip(errors)
                .map(|(op, error)| FibReport::Done { op, error }),
        );
    }

    /// Applies one operation; `None` when the kernel did it.
    pub fn apply(&mut self, op: &FibOp) -> Option<FibError> {
        self.apply_batch(std::slice::from_ref(op)).pop().flatten()
    }

    /// Applies `ops` (on distinct prefixes) in one batch; for each, `None` when the
    /// kernel did it.
    pub fn apply_batch(&mut self, ops: &[FibOp]) -> Vec<Option<FibError>> {
        let mut results: Vec<Result<(), FibError>> = vec![Ok(()); ops.len()];
        let mut requests = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            let request = match op {
                FibOp::Add { prefix, next_hops } => self
                    .message(*prefix, next_hops)
                    .map(|m| (RouteNetlinkMessage::NewRoute(m), NLM_F_CREATE | NLM_F_EXCL)),
                FibOp::Replace { prefix, next_hops } => self
                    .message(*prefix, next_hops)
                    .map(|m| (RouteNetlinkMessage::NewRoute(m), NLM_F_CREATE | NLM_F_REPLACE)),
                FibOp::Remove { prefix } => Ok((RouteNetlinkMessage::DelRoute(self.ours(*prefix)), 0)),
            };
            match request {
                Ok((msg, flags)) => {
                    self.expect(op.prefix(), !matches!(op, FibOp::Remove { .. }));
                    requests.push((i, msg, flags))
                }
                Err(e) => results[i] = Err(FibError::Failed(e)),
            }
        }
        if !requests.is_empty() {
            // Sequence numbers first + k, for the op at index[k]; only the last
            // request asks for an acknowledgement.
            let first = self.seq.wrapping_add(1);
            let count = requests.len();
            let mut out = Vec::with_capacity(count * 96);
            let mut index = Vec::with_capacity(count);
            for (k, (i, msg, flags)) in requests.into_iter().enumerate() {
                let ack = if k + 1 == count { NLM_F_ACK } else { 0 };
                let seq = self.next_seq();
                emit(&mut out, msg, NLM_F_REQUEST | flags | ack, seq);
                index.push(i);
            }
            match self.exchange(&out, self.seq) {
                Ok(refusals) => {
                    for (seq, errno) in refusals {
                        if let Some(&i) = index.get(seq.wrapping_sub(first) as usize) {
                            self.cancel(ops[i].prefix(), !matches!(ops[i], FibOp::Remove { .. }));
                            results[i] = self.refused(&ops[i], errno);
                        }
                    }
                }
                Err(e) => {
                    for &i in &index {
                        self.cancel(ops[i].prefix(), !matches!(ops[i], FibOp::Remove { .. }));
                        results[i] = Err(FibError::Failed(e.to_string()));
                    }
                }
            }
        }
        let mut errors = Vec::with_capacity(ops.len());
        for (op, result) in ops.iter().zip(results) {
            match &result {
                Ok(()) => {
                    self.metrics.fib_ok.fetch_add(1, Ordering::Relaxed);
                    debug!(?op, "done");
                }
                Err(e) => {
                    self.metrics.fib_failed.fetch_add(1, Ordering::Relaxed);
                    warn!(?op, error = ?e, "route change refused");
                }
            }
            errors.push(result.err());
        }
        errors
    }

    /// What a refusal of `op` means, once followed up: a remove of a route that
    /// is not there is done; an exclusive create over a route of ours (left by a
    /// run before, or missed) deletes it and creates again. Anything else
    /// stands as the kernel said it.
    fn refused(&mut self, op: &FibOp, errno: Refusal) -> Result<(), FibError> {
        match (op, errno) {
            (FibOp::Remove { prefix }, ESRCH) => {
                debug!(%prefix, "remove: not there");
                Ok(())
            }
            (FibOp::Add { prefix, next_hops }, EEXIST) => {
                // Only a delete naming our protocol removes it; otherwise it
                // belongs to someone else and stays.
                self.expect(*prefix, false);
                if self
                    .single(RouteNetlinkMessage::DelRoute(self.ours(*prefix)), 0)
                    .is_err()
                {
                    self.cancel(*prefix, false);
                    return Err(FibError::HeldByOther);
                }
                let msg = self.message(*prefix, next_hops).map_err(FibError::Failed)?;
                self.expect(*prefix, true);
                match self.single(RouteNetlinkMessage::NewRoute(msg), NLM_F_CREATE | NLM_F_EXCL) {
                    Ok(()) => Ok(()),
                    Err(e) => {
                        self.cancel(*prefix, true);
                        Err(if e == EEXIST {
                            FibError::HeldByOther
                        } else {
                            kernel_said(e)
                        })
                    }
                }
            }
            _ => Err(kernel_said(errno)),
        }
    }

    /// One acknowledged request: `Err(errno)` when refused.
    fn single(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<(), Refusal> {
        let seq = self.next_seq();
        let mut out = Vec::new();
        emit(&mut out, msg, NLM_F_REQUEST | NLM_F_ACK | flags, seq);
        match self.exchange(&out, seq) {
            Ok(refusals) => match refusals.first() {
                Some((_, errno)) => Err(*errno),
                None => Ok(()),
            },
            Err(e) => Err(e.raw_os_error().unwrap_or(libc::EIO)),
        }
    }

    /// Sends a batch and reads the answers up to the acknowledgement of `last`:
    /// the (sequence number, errno) of every refusal.
    fn exchange(&mut self, out: &[u8], last: u32) -> std::io::Result<Vec<(u32, Refusal)>> {
        self.socket.send(out, 0)?;
        let mut refusals = Vec::new();
        loop {
            let n = self.recv()?;
            for msg in messages(&self.buf[..n]) {
                let msg = msg.map_err(|e| std::io::Error::other(e.to_string()))?;
                let seq = msg.header.sequence_number;
                if let NetlinkPayload::Error(e) = msg.payload {
                    if let Some(code) = e.code {
                        refusals.push((seq, -code.get()));
                    }
                    if seq == last {
                        return Ok(refusals);
                    }
                }
            }
        }
    }

    fn recv(&mut self) -> std::io::Result<usize> {
        let mut buf = &mut self.buf[..];
        self.socket.recv(&mut buf, 0)
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// A delete that names our protocol: the kernel deletes only ours.
    fn ours(&self, prefix: IpNet) -> RouteMessage {
        RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(prefix.addr(), prefix.prefix_len())
            .expect("a valid prefix")
            .protocol(RouteProtocol::from(self.protocol))
            .table_id(self.table)
            .build()
    }

    fn message(&self, prefix: IpNet, next_hops: &[IpAddr]) -> Result<RouteMessage, String> {
        let mut builder = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(prefix.addr(), prefix.prefix_len())
            .map_err(|e| e.to_string())?
            .protocol(RouteProtocol::from(self.protocol))
            .table_id(self.table);
        match next_hops {
            [] => return Err("no next hop".into()),
            [one] => builder = builder.gateway(*one).map_err(|e| e.to_string())?,
            many => {
                let mut hops = Vec::new();
                for nh in many {
                    let b = if nh.is_ipv4() {
                        RouteNextHopBuilder::new_ipv4()
                    } else {
                        RouteNextHopBuilder::new_ipv6()
                    };
                    hops.push(b.via(*nh).map_err(|e| e.to_string())?.build());
                }
                builder = builder.multipath(hops);
            }
        }
        Ok(builder.build())
    }
}

/// A refusal as the kernel says it ("Network is unreachable").
fn kernel_said(errno: Refusal) -> FibError {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    // Without the "(os error N)" that std adds.
    FibError::Failed(text.split(" (os error").next().unwrap_or(&text).to_string())
}

/// Appends one netlink request.
fn emit(out: &mut Vec<u8>, msg: RouteNetlinkMessage, flags: u16, seq: u32) {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut msg = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
    msg.finalize();
    let start = out.len();
    out.resize(start + msg.buffer_len(), 0);
    msg.serialize(&mut out[start..]);
}

/// The netlink messages of one datagram, decoded.
fn messages(data: &[u8]) -> impl Iterator<Item = Result<NetlinkMessage<RouteNetlinkMessage>, KernelError>> + '_ {
    kernel::netlink_messages(data).map(|msg| {
        NetlinkMessage::<RouteNetlinkMessage>::deserialize(msg?)
            .map_err(|e| KernelError::Io(std::io::Error::other(e.to_string())))
    })
}
