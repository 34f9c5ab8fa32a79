//! The passive side: one TCP listener on the BGP port hands each accepted
//! connection to the session of its remote address. Connections from addresses
//! that are not configured peers are closed at once.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, RwLock};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::shutdown::Shutdown;

/// Binds `address` (all addresses, both families, when `None`), keeping each
/// SYN's headers for the GTSM check of accepted connections.
pub async fn bind(address: Option<IpAddr>, port: u16) -> io::Result<TcpListener> {
    let listener = bind_any(address, port).await?;
    if let Err(e) = crate::transport::save_syn(std::os::fd::AsRawFd::as_raw_fd(&listener)) {
        warn!(error = %e, "cannot keep SYN headers: ttlSecurity is checked from the first segment after the SYN");
    }
    Ok(listener)
}

async fn bind_any(address: Option<IpAddr>, port: u16) -> io::Result<TcpListener> {
    match address {
        Some(a) => TcpListener::bind(SocketAddr::new(a, port)).await,
        // An IPv6 socket takes IPv4 too (as mapped addresses) unless IPv6 is off.
        None => match TcpListener::bind(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port)).await {
            Ok(l) => Ok(l),
            Err(e) => {
                debug!(error = %e, "no IPv6 listener; IPv4 only");
                TcpListener::bind(SocketAddr::new(IpAddr::from([0, 0, 0, 0]), port)).await
            }
        },
    }
}

/// Where each peer's accepted connections go; the daemon edits it on reload.
pub type Peers = Arc<RwLock<HashMap<IpAddr, mpsc::UnboundedSender<TcpStream>>>>;

/// Accepts until shutdown.
pub async fn serve(listener: TcpListener, peers: Peers, mut shutdown: Shutdown) {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "listening for BGP");
    }
    loop {
        let accepted = tokio::select! {
            _ = shutdown.recv() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, remote)) => {
                let ip = remote.ip().to_canonical();
                let tx = peers.read().expect("listener peers").get(&ip).cloned();
                match tx {
                    Some(tx) => {
                        let _ = tx.send(stream);
                    }
                    None => {
                        info!(%remote, "connection from an address that is not a peer: closed");
                        drop(stream);
                    }
                }
            }
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}
