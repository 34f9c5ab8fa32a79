//! Programming the kernel: the FIB task carries out the core's [`FibOp`]s in order
//! and says how each went, and reads our routes back when asked. Routes carry our
//! protocol number. A route of another owner is never overwritten (creates are
//! exclusive) nor deleted (deletes name our protocol, and the kernel matches it).

use std::net::IpAddr;
use std::sync::atomic::Ordering;

use ipnet::IpNet;
use rtnetlink::packet_route::route::{RouteMessage, RouteProtocol};
use rtnetlink::{Handle, RouteMessageBuilder, RouteNextHopBuilder};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::kernel::{self, KernelError};
use crate::kernel_view::KernelRoute;
use crate::messages::{FibCmd, FibError, FibOp, FibReport};
use crate::metrics::SharedMetrics;

const EEXIST: i32 = libc::EEXIST;
const ESRCH: i32 = libc::ESRCH;

#[derive(Clone)]
pub struct Fib {
    handle: Handle,
    protocol: u8,
    table: u32,
    metrics: SharedMetrics,
}

/// The errno of a failed netlink request, if it carried one.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

impl Fib {
    pub fn new(protocol: u8, table: u32, metrics: SharedMetrics) -> Result<Self, KernelError> {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        Ok(Fib {
            handle,
            protocol,
            table,
            metrics,
        })
    }

    /// Our routes in the kernel: left by a crash or a graceful stop, or read back.
    pub async fn own_routes(&self) -> Result<Vec<KernelRoute>, KernelError> {
        kernel::own_routes(&self.handle, self.protocol, self.table).await
    }

    /// Carries out commands in order until the sender goes away, reporting each.
    pub async fn run(self, mut rx: mpsc::UnboundedReceiver<FibCmd>, reports: mpsc::UnboundedSender<FibReport>) {
        while let Some(cmd) = rx.recv().await {
            let report = match cmd {
                FibCmd::Apply(op) => {
                    let error = self.apply(&op).await;
                    FibReport::Done { op, error }
                }
                FibCmd::Read => match self.own_routes().await {
                    Ok(routes) => FibReport::State(routes.into_iter().map(|r| (r.prefix, r.gateways)).collect()),
                    Err(e) => {
                        warn!(error = %e, "cannot read our routes back");
                        continue;
                    }
                },
            };
            if reports.send(report).is_err() {
                return;
            }
        }
    }

    /// Applies one operation; `None` when the kernel did it.
    pub async fn apply(&self, op: &FibOp) -> Option<FibError> {
        let result = match op {
            FibOp::Add { prefix, next_hops } => self.add(*prefix, next_hops).await,
            FibOp::Replace { prefix, next_hops } => match self.message(*prefix, next_hops) {
                Ok(msg) => self
                    .handle
                    .route()
                    .add(msg)
                    .replace()
                    .execute()
                    .await
                    .map_err(|e| FibError::Failed(e.to_string())),
                Err(e) => Err(FibError::Failed(e)),
            },
            FibOp::Remove { prefix } => match self.delete_ours(*prefix).await {
                Ok(()) => Ok(()),
                Err(e) if errno(&e) == Some(ESRCH) => {
                    debug!(%prefix, "remove: not there");
                    Ok(())
                }
                Err(e) => Err(FibError::Failed(e.to_string())),
            },
        };
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
        result.err()
    }

    /// Creates our route, exclusively: a route already on the prefix is ours
    /// (left by a run before, or missed) only if a delete naming our protocol
    /// removes it; otherwise it belongs to someone else and stays.
    async fn add(&self, prefix: IpNet, next_hops: &[IpAddr]) -> Result<(), FibError> {
        let msg = self.message(prefix, next_hops).map_err(FibError::Failed)?;
        match self.handle.route().add(msg.clone()).execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(EEXIST) => match self.delete_ours(prefix).await {
                Ok(()) => self
                    .handle
                    .route()
                    .add(msg)
                    .execute()
                    .await
                    .map_err(|e| match errno(&e) {
                        Some(EEXIST) => FibError::HeldByOther,
                        _ => FibError::Failed(e.to_string()),
                    }),
                Err(_) => Err(FibError::HeldByOther),
            },
            Err(e) => Err(FibError::Failed(e.to_string())),
        }
    }

    /// The protocol in the request makes the kernel delete only ours.
    async fn delete_ours(&self, prefix: IpNet) -> Result<(), rtnetlink::Error> {
        let msg = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(prefix.addr(), prefix.prefix_len())
            .expect("a valid prefix")
            .protocol(RouteProtocol::from(self.protocol))
            .table_id(self.table)
            .build();
        self.handle.route().del(msg).execute().await
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
