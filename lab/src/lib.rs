//! The lab runner: containerlab topology files deployed through Docker with real FRR,
//! BIRD, GoBGP and speaker nodes, and read back through each implementation's own
//! interface. Data flows one way: topology -> images -> runtime -> links -> probes ->
//! report.

pub mod argv;
pub mod bgp;
pub mod bringup;
pub mod caps;
pub mod clock;
pub mod deploy;
pub mod enter;
pub mod exec;
pub mod graph;
pub mod images;
pub mod impair;
pub mod inspect;
pub mod labels;
pub mod links;
pub mod mutants;
pub mod pods;
pub mod probes;
pub mod progress;
pub mod registry;
pub mod render;
pub mod report;
pub mod runtime;
pub mod services;
pub mod suite;
pub mod topology;
pub mod watch;
