//! Programming the kernel: learned best routes go in with our protocol number
//! (ECMP as one multipath route), are replaced on change and removed when
//! withdrawn. Only routes of our protocol are ever written or deleted.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use ipnet::IpNet;
use rtnetlink::packet_route::route::{RouteMessage, RouteProtocol};
use rtnetlink::{Handle, RouteMessageBuilder, RouteNextHopBuilder};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::kernel::{self, KernelError, KernelRoute};
use crate::metrics::SharedMetrics;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FibOp {
    Install { prefix: IpNet, next_hops: Vec<IpAddr> },
    Remove { prefix: IpNet },
}

/// What the FIB holds for a prefix, as the API shows it.
pub type FibStates = Arc<Mutex<BTreeMap<IpNet, String>>>;

#[derive(Clone)]
pub struct Fib {
    handle: Handle,
    protocol: u8,
    table: u32,
    states: FibStates,
    metrics: SharedMetrics,
}

impl Fib {
    pub fn new(protocol: u8, table: u32, metrics: SharedMetrics) -> Result<Self, KernelError> {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        Ok(Fib {
            handle,
            protocol,
            table,
            states: FibStates::default(),
            metrics,
        })
    }

    pub fn states(&self) -> FibStates {
        self.states.clone()
    }

    pub fn set_state(&self, prefix: IpNet, state: impl Into<String>) {
        self.states.lock().expect("fib states").insert(prefix, state.into());
    }

    /// Our routes already in the kernel: left by a crash, or by a graceful stop.
    pub async fn own_routes(&self) -> Result<Vec<KernelRoute>, KernelError> {
        kernel::own_routes(&self.handle, self.protocol, self.table).await
    }

    /// Applies operations in order until the sender goes away.
    pub async fn run(self, mut rx: mpsc::UnboundedReceiver<Vec<FibOp>>) {
        while let Some(ops) = rx.recv().await {
            for op in ops {
                self.apply(op).await;
            }
        }
    }

    pub async fn apply(&self, op: FibOp) {
        match op {
            FibOp::Install { prefix, next_hops } => {
                let result = match self.message(prefix, &next_hops) {
                    Ok(msg) => self
                        .handle
                        .route()
                        .add(msg)
                        .replace()
                        .execute()
                        .await
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                };
                match result {
                    Ok(()) => {
                        self.metrics.fib_ok.fetch_add(1, Ordering::Relaxed);
                        debug!(%prefix, ?next_hops, "installed");
                        self.set_state(prefix, "installed");
                    }
                    Err(e) => {
                        self.metrics.fib_failed.fetch_add(1, Ordering::Relaxed);
                        warn!(%prefix, ?next_hops, error = %e, "cannot install route");
                        self.set_state(prefix, format!("failed: {e}"));
                    }
                }
            }
            FibOp::Remove { prefix } => {
                self.states.lock().expect("fib states").remove(&prefix);
                let msg = self.base(prefix);
                // The protocol in the request makes the kernel delete only ours.
                match self.handle.route().del(msg).execute().await {
                    Ok(()) => {
                        self.metrics.fib_ok.fetch_add(1, Ordering::Relaxed);
                        debug!(%prefix, "removed")
                    }
                    Err(e) => debug!(%prefix, error = %e, "remove: not there"),
                }
            }
        }
    }

    fn base(&self, prefix: IpNet) -> RouteMessage {
        let builder = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(prefix.addr(), prefix.prefix_len())
            .expect("a valid prefix");
        builder
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
