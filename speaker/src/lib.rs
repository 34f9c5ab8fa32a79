//! The speaker: a BGP daemon for Kubernetes pod networks.
//!
//! Data flows one way: socket -> codec (`packet`) -> session -> RIB -> FIB, and back
//! out through export. `node` is the core that decides, without I/O; `daemon`
//! wires the tasks around it; `messages` are what the tasks tell each other.

pub mod api;
pub mod bfd;
pub mod bfd_io;
pub mod calico;
pub mod config;
pub mod daemon;
pub mod duration;
pub mod echoes;
pub mod fib;
pub mod fib_table;
pub mod fsm;
pub mod fuzz;
pub mod kernel;
pub mod kernel_view;
pub mod listener;
pub mod messages;
pub mod metrics;
pub mod node;
pub mod packet;
pub mod policy;
pub mod replay;
pub mod rib;
pub mod selector;
pub mod service_watch;
pub mod services;
pub mod session;
pub mod shutdown;
pub mod transport;
