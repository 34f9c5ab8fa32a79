//! The echoes of our own route changes: what the FIB thread is about to change,
//! so that the route watcher can tell the kernel's announcements of our own writes
//! from changes someone else made.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipnet::IpNet;

use crate::kernel_view::KernelRoute;

/// How long an expected echo is waited for: far longer than the kernel takes to
/// announce a change, short enough that an echo that never came (a change the
/// kernel announced differently) cannot hide a later one for long.
const ECHO_WAIT: Duration = Duration::from_secs(2);

/// The changes the FIB thread is making, which the kernel will announce to the
/// route watcher as well: the watcher drops those announcements instead of handing
/// the core an echo of every route it wrote (100k of them at 100k routes, which
/// kept the core busy long after the kernel was done). What the kernel announces
/// under our protocol that we did not do still reaches the core: a route written
/// under our protocol number by someone else, one of ours deleted behind our back.
#[derive(Clone)]
pub struct Echoes {
    protocol: u8,
    table: u32,
    expected: Arc<Mutex<Expected>>,
}

/// (prefix, created rather than deleted) -> how many such changes are awaiting
/// their echo, and when the last was sent. No allocation per entry: at 100k
/// routes in flight, a queue of instants each cost megabytes of peak memory.
type Expected = HashMap<(IpNet, bool), (u32, Instant)>;

impl Echoes {
    pub fn new(protocol: u8, table: u32) -> Echoes {
        Echoes {
            protocol,
            table,
            expected: Arc::default(),
        }
    }

    /// A change about to be sent: `present` for a create or replace, not for a delete.
    pub fn expect(&self, prefix: IpNet, present: bool) {
        let mut e = self.expected.lock().expect("echoes");
        let entry = e.entry((prefix, present)).or_insert((0, Instant::now()));
        *entry = (entry.0 + 1, Instant::now());
    }

    /// A change the kernel refused: no echo will come.
    pub fn cancel(&self, prefix: IpNet, present: bool) {
        let mut e = self.expected.lock().expect("echoes");
        if let Some((n, _)) = e.get_mut(&(prefix, present)) {
            *n -= 1;
            if *n == 0 {
                e.remove(&(prefix, present));
            }
        }
    }

    /// Whether a route event is the echo of a change we made (and consumes it).
    pub fn is_echo(&self, route: &KernelRoute, present: bool) -> bool {
        self.is_echo_of(route.prefix, route.protocol, route.table, present)
    }

    /// [`Echoes::is_echo`] from what the event's header says.
    pub fn is_echo_of(&self, prefix: IpNet, protocol: u8, table: u32, present: bool) -> bool {
        if protocol != self.protocol || table != self.table {
            return false;
        }
        let mut e = self.expected.lock().expect("echoes");
        let key = (prefix, present);
        let Some((n, last)) = e.get_mut(&key) else { return false };
        // Echoes come within milliseconds: when even the last change awaiting one
        // is older than that, none of them will come.
        if last.elapsed() > ECHO_WAIT {
            e.remove(&key);
            return false;
        }
        *n -= 1;
        if *n == 0 {
            e.remove(&key);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel_view::RouteKind;

    fn route(prefix: &str, protocol: u8) -> KernelRoute {
        KernelRoute {
            prefix: prefix.parse().unwrap(),
            table: 254,
            protocol,
            kind: RouteKind::Unicast,
            priority: 0,
            oif: None,
            gateways: vec!["10.0.0.1".parse().unwrap()],
        }
    }

    #[test]
    fn only_the_changes_we_made_are_echoes_and_each_once() {
        let e = Echoes::new(201, 254);
        let p: IpNet = "10.244.1.0/26".parse().unwrap();
        e.expect(p, true);
        // Someone else's route on the prefix, a delete, another table: not ours.
        assert!(!e.is_echo(&route("10.244.1.0/26", 4), true));
        assert!(!e.is_echo(&route("10.244.1.0/26", 201), false));
        assert!(!e.is_echo(
            &KernelRoute {
                table: 100,
                ..route("10.244.1.0/26", 201)
            },
            true
        ));
        assert!(e.is_echo(&route("10.244.1.0/26", 201), true));
        // Once: a second one is a write we did not make.
        assert!(!e.is_echo(&route("10.244.1.0/26", 201), true));
        // A refused change leaves nothing to wait for.
        e.expect(p, false);
        e.cancel(p, false);
        assert!(!e.is_echo(&route("10.244.1.0/26", 201), false));
        assert!(e.expected.lock().unwrap().is_empty());
    }

    #[test]
    fn an_echo_that_never_came_stops_being_waited_for() {
        let e = Echoes::new(201, 254);
        let p: IpNet = "10.244.1.0/26".parse().unwrap();
        e.expected
            .lock()
            .unwrap()
            .insert((p, true), (1, Instant::now() - ECHO_WAIT - Duration::from_millis(1)));
        assert!(!e.is_echo(&route("10.244.1.0/26", 201), true));
    }
}
