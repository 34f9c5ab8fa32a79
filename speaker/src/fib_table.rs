//! The FIB as the core sees it, one entry per prefix: what the RIB wants in the
//! kernel, what the kernel holds of ours to our knowledge, and how many changes
//! to it are on their way. One map rather than one per question: at 100k routes
//! each map cost 4 to 7 MB, and each next-hop list a heap block of its own.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

/// The next hops of one route, sorted. One next hop (the common case) is held
/// inline; an ECMP set shares one allocation between the entry's copies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NextHops(Inner);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Inner {
    One(IpAddr),
    Many(Arc<[IpAddr]>),
}

impl NextHops {
    /// From a sorted list.
    pub fn new(hops: &[IpAddr]) -> Self {
        match hops {
            [one] => NextHops(Inner::One(*one)),
            many => NextHops(Inner::Many(many.into())),
        }
    }

    pub fn as_slice(&self) -> &[IpAddr] {
        match &self.0 {
            Inner::One(one) => std::slice::from_ref(one),
            Inner::Many(many) => many,
        }
    }

    pub fn to_vec(&self) -> Vec<IpAddr> {
        self.as_slice().to_vec()
    }
}

impl PartialEq<[IpAddr]> for NextHops {
    fn eq(&self, other: &[IpAddr]) -> bool {
        self.as_slice() == other
    }
}

impl PartialEq<Vec<IpAddr>> for NextHops {
    fn eq(&self, other: &Vec<IpAddr>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

#[derive(Clone, Debug, Default)]
struct Entry {
    /// What the RIB's best paths want in the kernel.
    wanted: Option<NextHops>,
    /// Ours in the kernel, to our knowledge.
    installed: Option<NextHops>,
    /// The kernel acknowledged `installed`, or a read showed it.
    confirmed: bool,
    /// Changes sent to the kernel and not answered yet.
    pending: u32,
}

impl Entry {
    fn is_empty(&self) -> bool {
        self.wanted.is_none() && self.installed.is_none() && self.pending == 0
    }
}

#[derive(Debug, Default)]
pub struct FibTable {
    entries: HashMap<IpNet, Entry>,
    wanted: usize,
}

impl FibTable {
    pub fn wanted(&self, prefix: &IpNet) -> Option<&NextHops> {
        self.entries.get(prefix).and_then(|e| e.wanted.as_ref())
    }

    pub fn installed(&self, prefix: &IpNet) -> Option<&NextHops> {
        self.entries.get(prefix).and_then(|e| e.installed.as_ref())
    }

    /// Whether ours is installed and the kernel has said so.
    pub fn confirmed(&self, prefix: &IpNet) -> bool {
        self.entries
            .get(prefix)
            .is_some_and(|e| e.installed.is_some() && e.confirmed)
    }

    /// How many prefixes the RIB wants in the kernel.
    pub fn wanted_len(&self) -> usize {
        self.wanted
    }

    /// How many of ours the kernel has confirmed.
    pub fn confirmed_len(&self) -> usize {
        self.entries
            .values()
            .filter(|e| e.installed.is_some() && e.confirmed)
            .count()
    }

    pub fn wanted_prefixes(&self) -> impl Iterator<Item = (&IpNet, &NextHops)> {
        self.entries
            .iter()
            .filter_map(|(p, e)| e.wanted.as_ref().map(|w| (p, w)))
    }

    pub fn installed_prefixes(&self) -> impl Iterator<Item = (&IpNet, &NextHops)> {
        self.entries
            .iter()
            .filter_map(|(p, e)| e.installed.as_ref().map(|i| (p, i)))
    }

    /// Sets (sorted next hops) or clears what the RIB wants for `prefix`.
    pub fn set_wanted(&mut self, prefix: IpNet, hops: Option<&[IpAddr]>) {
        let hops = hops.map(NextHops::new);
        let entry = self.entries.entry(prefix).or_default();
        self.wanted = self.wanted + usize::from(hops.is_some()) - usize::from(entry.wanted.is_some());
        entry.wanted = hops;
        self.tidy(prefix);
    }

    /// Records what the kernel holds of ours for `prefix` (`None`: nothing).
    pub fn set_installed(&mut self, prefix: IpNet, hops: Option<NextHops>, confirmed: bool) {
        let entry = self.entries.entry(prefix).or_default();
        entry.installed = hops;
        entry.confirmed = confirmed;
        self.tidy(prefix);
    }

    /// The kernel did install `hops` for `prefix`: confirmed, if it is still what
    /// we hold as installed.
    pub fn confirm(&mut self, prefix: &IpNet, hops: &[IpAddr]) {
        if let Some(e) = self.entries.get_mut(prefix) {
            if e.installed.as_ref().is_some_and(|i| *i == *hops) {
                e.confirmed = true;
            }
        }
    }

    /// A change of `prefix` sent to the kernel.
    pub fn sent(&mut self, prefix: IpNet) {
        self.entries.entry(prefix).or_default().pending += 1;
    }

    /// Counts an answer for `prefix`; says whether it answers the latest change.
    /// The FIB thread answers in order, so an answer is for the latest change of
    /// its prefix when it is the last one outstanding.
    pub fn answered(&mut self, prefix: IpNet) -> bool {
        let Some(e) = self.entries.get_mut(&prefix) else {
            return true;
        };
        if e.pending > 1 {
            e.pending -= 1;
            return false;
        }
        e.pending = 0;
        self.tidy(prefix);
        true
    }

    fn tidy(&mut self, prefix: IpNet) {
        if self.entries.get(&prefix).is_some_and(Entry::is_empty) {
            self.entries.remove(&prefix);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn a(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn one_next_hop_is_inline_and_a_set_is_shared() {
        assert_eq!(NextHops::new(&[a("10.0.0.1")]).as_slice(), &[a("10.0.0.1")]);
        let two = NextHops::new(&[a("10.0.0.1"), a("10.0.0.2")]);
        assert_eq!(two, vec![a("10.0.0.1"), a("10.0.0.2")]);
        assert!(std::mem::size_of::<Option<NextHops>>() <= 24);
    }

    #[test]
    fn an_entry_goes_when_nothing_is_left_of_it() {
        let mut t = FibTable::default();
        let x = p("10.244.1.0/26");
        t.set_wanted(x, Some(&[a("10.0.0.1")]));
        t.set_installed(x, t.wanted(&x).cloned(), false);
        t.sent(x);
        t.sent(x);
        assert_eq!(t.wanted_len(), 1);
        assert!(!t.answered(x), "the first of two answers is not the latest");
        t.confirm(&x, &[a("10.0.0.1")]);
        assert!(t.confirmed(&x));
        t.set_wanted(x, None);
        t.set_installed(x, None, false);
        assert_eq!(t.wanted_len(), 0);
        assert!(!t.entries.is_empty(), "an answer is still awaited");
        assert!(t.answered(x));
        assert!(t.entries.is_empty());
    }

    #[test]
    fn a_confirmation_of_what_was_replaced_since_does_not_count() {
        let mut t = FibTable::default();
        let x = p("10.244.1.0/26");
        t.set_installed(x, Some(NextHops::new(&[a("10.0.0.2")])), false);
        t.confirm(&x, &[a("10.0.0.1")]);
        assert!(!t.confirmed(&x));
        assert_eq!(t.confirmed_len(), 0);
    }
}
