//! The speaker: a BGP daemon for Kubernetes pod networks.
//!
//! Data flows one way: socket -> codec (`packet`) -> session -> RIB -> FIB, and back
//! out through export. `daemon` owns the RIB and wires the tasks together.

pub mod api;
pub mod config;
pub mod daemon;
pub mod fib;
pub mod fsm;
pub mod kernel;
pub mod listener;
pub mod metrics;
pub mod packet;
pub mod rib;
pub mod session;
pub mod shutdown;
pub mod transport;
