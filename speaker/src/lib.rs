//! The speaker: a BGP daemon for Kubernetes pod networks.
//!
//! Data flows one way: socket -> codec (`packet`) -> session -> RIB -> FIB, and back
//! out through export.

pub mod packet;
