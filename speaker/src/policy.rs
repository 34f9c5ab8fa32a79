//! Route policy as Calico configures it: BGPFilter rules (import and export, per
//! address family, first match wins) and the communities BGPConfiguration attaches
//! to advertised prefixes (`communities`, `prefixAdvertisements`). The
//! configuration's types, their checks, and the evaluation the RIB asks for.
//!
//! Calico's confd renders each filter as a BIRD function that accepts or rejects on
//! its first matching rule and returns when none matches; a peer's filters run in the
//! order listed, then Calico's own rules. Here the same: the first matching rule of
//! a peer's filters decides, and with none the speaker's own rules apply (pools and
//! `allowedPrefixes` on import, everything selected on export).

use std::collections::HashMap;
use std::sync::Arc;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::packet::{Community, LargeCommunity, PathAttributes};

/// A `projectcalico.org/v3` BGPFilter's `spec`, with its name.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BgpFilter {
    pub name: String,
    #[serde(default, rename = "exportV4")]
    pub export_v4: Vec<FilterRule>,
    #[serde(default, rename = "importV4")]
    pub import_v4: Vec<FilterRule>,
    #[serde(default, rename = "exportV6")]
    pub export_v6: Vec<FilterRule>,
    #[serde(default, rename = "importV6")]
    pub import_v6: Vec<FilterRule>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FilterRule {
    pub action: Action,
    #[serde(default)]
    pub cidr: Option<IpNet>,
    #[serde(default)]
    pub match_operator: Option<MatchOperator>,
    #[serde(default)]
    pub prefix_length: Option<PrefixLength>,
    #[serde(default)]
    pub source: Option<RouteSource>,
    /// A pattern (`*` and `?`) of the interface a route of this node leaves by.
    #[serde(default)]
    pub interface: Option<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub enum Action {
    #[serde(alias = "accept")]
    Accept,
    #[serde(alias = "reject")]
    Reject,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub enum MatchOperator {
    Equal,
    NotEqual,
    In,
    NotIn,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PrefixLength {
    #[serde(default)]
    pub min: Option<u8>,
    #[serde(default)]
    pub max: Option<u8>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub enum RouteSource {
    /// Routes learned from BGP peers, not this node's own.
    RemotePeers,
}

/// Which of a filter's four lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Import,
    Export,
}

impl BgpFilter {
    fn rules(&self, direction: Direction, v4: bool) -> (&'static str, &[FilterRule]) {
        match (direction, v4) {
            (Direction::Import, true) => ("importV4", &self.import_v4),
            (Direction::Import, false) => ("importV6", &self.import_v6),
            (Direction::Export, true) => ("exportV4", &self.export_v4),
            (Direction::Export, false) => ("exportV6", &self.export_v6),
        }
    }

    /// Checks the filter as Calico's validation does, naming the field at fault
    /// (relative to the filter).
    pub fn check(&self) -> Result<(), (String, String)> {
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err((
                "name".into(),
                format!("{:?}: letters, digits, '.', '_' and '-' only", self.name),
            ));
        }
        for direction in [Direction::Import, Direction::Export] {
            for v4 in [true, false] {
                let (list, rules) = self.rules(direction, v4);
                for (i, rule) in rules.iter().enumerate() {
                    rule.check(direction, v4)
                        .map_err(|(f, m)| (format!("{list}[{i}].{f}"), m))?;
                }
            }
        }
        Ok(())
    }
}

impl FilterRule {
    fn check(&self, direction: Direction, v4: bool) -> Result<(), (&'static str, String)> {
        let max = if v4 { 32 } else { 128 };
        match (self.cidr, self.match_operator) {
            (Some(cidr), Some(_)) => {
                if cidr.addr().is_ipv4() != v4 {
                    return Err(("cidr", format!("{cidr} is not an IPv{} prefix", if v4 { 4 } else { 6 })));
                }
                if cidr != cidr.trunc() {
                    return Err((
                        "cidr",
                        format!("{cidr} has host bits set; did you mean {}?", cidr.trunc()),
                    ));
                }
            }
            (Some(_), None) => return Err(("matchOperator", "a cidr needs a matchOperator".into())),
            (None, Some(_)) => return Err(("cidr", "a matchOperator needs a cidr".into())),
            (None, None) => {}
        }
        if let Some(len) = self.prefix_length {
            if self.cidr.is_none() {
                return Err(("prefixLength", "needs a cidr to apply to".into()));
            }
            for (field, v) in [("prefixLength.min", len.min), ("prefixLength.max", len.max)] {
                if v.is_some_and(|v| v > max) {
                    return Err((field, format!("{} is longer than {max}", v.unwrap_or_default())));
                }
            }
            if let (Some(min), Some(max)) = (len.min, len.max) {
                if min > max {
                    return Err(("prefixLength", format!("min {min} is above max {max}")));
                }
            }
        }
        if direction == Direction::Import {
            // Every imported route comes from a peer and no peer's route has an
            // interface of this node: such a rule would match always or never.
            if self.source.is_some() {
                return Err(("source", "applies to export rules only".into()));
            }
            if self.interface.is_some() {
                return Err(("interface", "applies to export rules only".into()));
            }
        }
        if self.interface.as_deref() == Some("") {
            return Err(("interface", "must not be empty".into()));
        }
        Ok(())
    }

    fn matches(&self, route: &RouteFacts) -> bool {
        if let (Some(cidr), Some(op)) = (self.cidr, self.match_operator) {
            let hit = match op {
                MatchOperator::Equal => route.prefix == cidr,
                MatchOperator::NotEqual => route.prefix != cidr,
                MatchOperator::In => cidr.contains(&route.prefix),
                MatchOperator::NotIn => !cidr.contains(&route.prefix),
            };
            if !hit {
                return false;
            }
        }
        if let Some(len) = self.prefix_length {
            let l = route.prefix.prefix_len();
            if len.min.is_some_and(|m| l < m) || len.max.is_some_and(|m| l > m) {
                return false;
            }
        }
        if self.source == Some(RouteSource::RemotePeers) && !route.from_peer {
            return false;
        }
        if let Some(pattern) = &self.interface {
            if !route.interface.is_some_and(|i| glob(pattern.as_bytes(), i.as_bytes())) {
                return false;
            }
        }
        true
    }
}

/// Shell-style `*` and `?`, as BIRD's `ifname ~ "cali*"`.
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&pattern[1..], name) || (!name.is_empty() && glob(pattern, &name[1..])),
        (Some(b'?'), Some(_)) => glob(&pattern[1..], &name[1..]),
        (Some(p), Some(n)) if p == n => glob(&pattern[1..], &name[1..]),
        _ => false,
    }
}

/// What a rule can ask of a route.
#[derive(Clone, Copy, Debug)]
pub struct RouteFacts<'a> {
    pub prefix: IpNet,
    /// Learned from a BGP peer (not one of this node's own).
    pub from_peer: bool,
    /// The interface a route of this node leaves by (a pod's), when it has one.
    pub interface: Option<&'a str>,
}

/// The filters of one peer, in the order its `filters` lists them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerFilters(pub Vec<Arc<BgpFilter>>);

/// A rule's decision, and which rule decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    /// `BGPFilter <name> importV4[2]`, as `speaker routes` shows a rejection.
    pub rule: Arc<str>,
}

impl PeerFilters {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first matching rule's action, or `None`: the speaker's own rules apply.
    pub fn decide(&self, direction: Direction, route: &RouteFacts) -> Option<Decision> {
        let v4 = route.prefix.addr().is_ipv4();
        for filter in &self.0 {
            let (list, rules) = filter.rules(direction, v4);
            if let Some(i) = rules.iter().position(|r| r.matches(route)) {
                return Some(Decision {
                    action: rules[i].action,
                    rule: format!("BGPFilter {} {list}[{i}]", filter.name).into(),
                });
            }
        }
        None
    }
}

/// A named community of BGPConfiguration's `communities`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NamedCommunity {
    pub name: String,
    pub value: String,
}

/// One of BGPConfiguration's `prefixAdvertisements`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrefixAdvertisement {
    pub cidr: IpNet,
    /// Names from `communities`, or values (`aa:nn` or `aa:nn:mm`).
    #[serde(default)]
    pub communities: Vec<String>,
    /// LOCAL_PREF for iBGP peers, as Cilium's advertisement attributes have it
    /// (not a Calico field).
    #[serde(default)]
    pub local_preference: Option<u32>,
}

/// A community value as Calico writes it: `aa:nn` (standard, 16 bits each) or
/// `aa:nn:mm` (large, 32 bits each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommunityValue {
    Standard(Community),
    Large(LargeCommunity),
}

impl std::str::FromStr for CommunityValue {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let bad = || format!("{s:?} is not a community: write aa:nn (0-65535 each) or aa:nn:mm (0-4294967295 each)");
        match parts[..] {
            [a, n] => {
                let (a, n) = (
                    a.parse::<u16>().map_err(|_| bad())?,
                    n.parse::<u16>().map_err(|_| bad())?,
                );
                Ok(CommunityValue::Standard(Community::new(a, n)))
            }
            [g, l1, l2] => Ok(CommunityValue::Large(LargeCommunity {
                global: g.parse().map_err(|_| bad())?,
                local1: l1.parse().map_err(|_| bad())?,
                local2: l2.parse().map_err(|_| bad())?,
            })),
            _ => Err(bad()),
        }
    }
}

/// What is attached to the advertised prefixes inside one CIDR.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Attach {
    cidr: IpNet,
    communities: Vec<Community>,
    large: Vec<LargeCommunity>,
    local_pref: Option<u32>,
}

/// `prefixAdvertisements` with every community name resolved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Advertisements(Vec<Attach>);

impl Advertisements {
    /// Resolves names against `communities`, naming the field at fault.
    pub fn new(communities: &[NamedCommunity], ads: &[PrefixAdvertisement]) -> Result<Self, (String, String)> {
        let mut named = HashMap::new();
        for (i, c) in communities.iter().enumerate() {
            let value = c
                .value
                .parse::<CommunityValue>()
                .map_err(|m| (format!("communities[{i}].value"), m))?;
            if c.name.is_empty() {
                return Err((format!("communities[{i}].name"), "must not be empty".into()));
            }
            if named.insert(c.name.as_str(), value).is_some() {
                return Err((
                    format!("communities[{i}].name"),
                    format!("{:?} is defined twice", c.name),
                ));
            }
        }
        let mut out = Vec::new();
        for (i, ad) in ads.iter().enumerate() {
            if ad.cidr != ad.cidr.trunc() {
                return Err((
                    format!("prefixAdvertisements[{i}].cidr"),
                    format!("{} has host bits set; did you mean {}?", ad.cidr, ad.cidr.trunc()),
                ));
            }
            let mut attach = Attach {
                cidr: ad.cidr,
                local_pref: ad.local_preference,
                ..Attach::default()
            };
            for (j, c) in ad.communities.iter().enumerate() {
                let value = match named.get(c.as_str()) {
                    Some(v) => *v,
                    None if c.contains(':') => c
                        .parse()
                        .map_err(|m| (format!("prefixAdvertisements[{i}].communities[{j}]"), m))?,
                    None => {
                        return Err((
                            format!("prefixAdvertisements[{i}].communities[{j}]"),
                            format!("{c:?} is neither a name in `communities` nor a value (aa:nn or aa:nn:mm)"),
                        ))
                    }
                };
                match value {
                    CommunityValue::Standard(v) if !attach.communities.contains(&v) => attach.communities.push(v),
                    CommunityValue::Large(v) if !attach.large.contains(&v) => attach.large.push(v),
                    _ => {}
                }
            }
            out.push(attach);
        }
        Ok(Advertisements(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds to `attrs` what every entry whose CIDR holds `prefix` attaches; the
    /// local preference only towards iBGP peers (the last entry that sets one wins).
    pub fn apply(&self, prefix: &IpNet, attrs: &mut PathAttributes, to_ibgp: bool) {
        for a in self.0.iter().filter(|a| a.cidr.contains(prefix)) {
            for c in &a.communities {
                if !attrs.communities.contains(c) {
                    attrs.communities.push(*c);
                }
            }
            for c in &a.large {
                if !attrs.large_communities.contains(c) {
                    attrs.large_communities.push(*c);
                }
            }
            if to_ibgp {
                if let Some(pref) = a.local_pref {
                    attrs.local_pref = Some(pref);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn filter(yaml: &str) -> BgpFilter {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn facts(prefix: &str) -> RouteFacts<'static> {
        RouteFacts {
            prefix: net(prefix),
            from_peer: true,
            interface: None,
        }
    }

    #[test]
    fn first_matching_rule_decides_and_none_leaves_the_default() {
        // Calico's documented example.
        let f = filter(
            "name: my-filter\n\
             importV4:\n\
             - {action: Accept, matchOperator: In, cidr: 55.0.0.0/16, prefixLength: {min: 30}}\n\
             - {action: Reject, matchOperator: NotIn, cidr: 44.0.0.0/16}\n\
             importV6:\n\
             - {action: Accept, matchOperator: Equal, cidr: '5000::/64'}\n\
             - {action: Reject}\n",
        );
        f.check().unwrap();
        let filters = PeerFilters(vec![Arc::new(f)]);
        let decide = |p: &str| {
            filters
                .decide(Direction::Import, &facts(p))
                .map(|d| (d.action, d.rule.to_string()))
        };
        assert_eq!(
            decide("55.0.1.0/30"),
            Some((Action::Accept, "BGPFilter my-filter importV4[0]".into()))
        );
        // Inside 55.0.0.0/16 but too short for rule 0, and outside 44/16: rule 1.
        assert_eq!(
            decide("55.0.1.0/24"),
            Some((Action::Reject, "BGPFilter my-filter importV4[1]".into()))
        );
        assert_eq!(decide("44.0.3.0/24"), None);
        assert_eq!(decide("5000::/64").map(|d| d.0), Some(Action::Accept));
        assert_eq!(decide("5000::/65").map(|d| d.0), Some(Action::Reject));
        assert_eq!(filters.decide(Direction::Export, &facts("55.0.1.0/30")), None);
    }

    #[test]
    fn source_and_interface_match_only_what_they_say() {
        let f = filter(
            "name: f\n\
             exportV4:\n\
             - {action: Accept, matchOperator: In, cidr: 77.0.0.0/16, source: RemotePeers}\n\
             - {action: Reject, interface: 'cali*'}\n",
        );
        f.check().unwrap();
        let filters = PeerFilters(vec![Arc::new(f)]);
        let own = |prefix: &str, interface| RouteFacts {
            prefix: net(prefix),
            from_peer: false,
            interface,
        };
        let action = |r: &RouteFacts| filters.decide(Direction::Export, r).map(|d| d.action);
        assert_eq!(action(&facts("77.0.1.0/24")), Some(Action::Accept));
        assert_eq!(action(&own("77.0.1.0/24", None)), None);
        assert_eq!(action(&own("10.0.0.5/32", Some("cali12ab"))), Some(Action::Reject));
        assert_eq!(action(&own("10.0.0.5/32", Some("eth0"))), None);
        assert_eq!(action(&facts("10.0.0.5/32")), None);
    }

    #[test]
    fn a_second_filter_runs_when_the_first_has_no_match() {
        let a = filter("name: a\nexportV4:\n- {action: Reject, matchOperator: Equal, cidr: 10.0.0.0/26}\n");
        let b = filter("name: b\nexportV4:\n- {action: Reject}\n");
        let filters = PeerFilters(vec![Arc::new(a), Arc::new(b)]);
        let rule = |p: &str| filters.decide(Direction::Export, &facts(p)).unwrap().rule.to_string();
        assert_eq!(rule("10.0.0.0/26"), "BGPFilter a exportV4[0]");
        assert_eq!(rule("10.0.0.64/26"), "BGPFilter b exportV4[0]");
        assert_eq!(filters.decide(Direction::Export, &facts("fd00::/64")), None);
    }

    #[test]
    fn checks_name_the_field_at_fault() {
        let err = |yaml: &str| filter(yaml).check().unwrap_err();
        assert_eq!(
            err("name: f\nimportV4:\n- {action: Reject, cidr: 10.0.0.0/8}\n").0,
            "importV4[0].matchOperator"
        );
        assert_eq!(
            err("name: f\nexportV6:\n- {action: Reject, matchOperator: In, cidr: 10.0.0.0/8}\n").0,
            "exportV6[0].cidr"
        );
        assert_eq!(
            err("name: f\nimportV4:\n- {action: Reject, matchOperator: In, cidr: 10.0.0.1/8}\n").1,
            "10.0.0.1/8 has host bits set; did you mean 10.0.0.0/8?"
        );
        assert_eq!(
            err("name: f\nimportV4:\n- {action: Reject, matchOperator: In, cidr: 10.0.0.0/8, prefixLength: {min: 28, max: 24}}\n").0,
            "importV4[0].prefixLength"
        );
        assert_eq!(
            err("name: f\nimportV4:\n- {action: Reject, prefixLength: {max: 24}}\n").0,
            "importV4[0].prefixLength"
        );
        assert_eq!(
            err("name: f\nimportV6:\n- {action: Reject, source: RemotePeers}\n").0,
            "importV6[0].source"
        );
        assert_eq!(err("name: 'a b'\n").0, "name");
        assert!(serde_yaml::from_str::<BgpFilter>("name: f\nimportV4:\n- {action: Drop}\n").is_err());
    }

    #[test]
    fn glob_is_shell_like() {
        assert!(glob(b"cali*", b"cali1234"));
        assert!(glob(b"*.calico", b"eth0.calico"));
        assert!(glob(b"eth?", b"eth1"));
        assert!(!glob(b"eth?", b"eth10"));
        assert!(!glob(b"cali*", b"eth0"));
        assert!(glob(b"*", b""));
    }

    #[test]
    fn prefix_advertisements_resolve_names_and_attach_inside_their_cidr() {
        let communities: Vec<NamedCommunity> = serde_yaml::from_str(
            "- {name: bgp-large-community, value: '63400:300:100'}\n- {name: nodes, value: '65001:10'}\n",
        )
        .unwrap();
        let ads: Vec<PrefixAdvertisement> = serde_yaml::from_str(
            "- {cidr: 10.244.0.0/16, communities: [bgp-large-community, '63400:120']}\n\
             - {cidr: 10.244.1.0/26, communities: [nodes], localPreference: 200}\n",
        )
        .unwrap();
        let ads = Advertisements::new(&communities, &ads).unwrap();
        let mut attrs = PathAttributes::default();
        ads.apply(&net("10.244.1.0/26"), &mut attrs, false);
        let shown: Vec<String> = attrs.communities.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["63400:120", "65001:10"]);
        assert_eq!(attrs.large_communities[0].to_string(), "63400:300:100");
        assert_eq!(attrs.local_pref, None, "eBGP peers get no LOCAL_PREF");
        let mut attrs = PathAttributes::default();
        ads.apply(&net("10.244.1.0/26"), &mut attrs, true);
        assert_eq!(attrs.local_pref, Some(200));
        let mut attrs = PathAttributes::default();
        ads.apply(&net("10.245.0.0/26"), &mut attrs, true);
        assert_eq!(attrs, PathAttributes::default());
    }

    #[test]
    fn bad_communities_are_refused_with_the_field() {
        let named = |v: &str| {
            vec![NamedCommunity {
                name: "x".into(),
                value: v.into(),
            }]
        };
        assert_eq!(
            Advertisements::new(&named("65536:1"), &[]).unwrap_err().0,
            "communities[0].value"
        );
        assert_eq!(
            Advertisements::new(&named("1:2:3:4"), &[]).unwrap_err().0,
            "communities[0].value"
        );
        let ad = |c: &str| PrefixAdvertisement {
            cidr: net("10.0.0.0/8"),
            communities: vec![c.into()],
            local_preference: None,
        };
        assert_eq!(
            Advertisements::new(&named("1:2"), &[ad("nope")]).unwrap_err().0,
            "prefixAdvertisements[0].communities[0]"
        );
        assert!(Advertisements::new(&named("1:2"), &[ad("x"), ad("4294967295:0:1")]).is_ok());
    }
}
