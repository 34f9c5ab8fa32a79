//! A case's steps: each one action on the lab (with, where it changes a route, how
//! the change is timed) or one expectation retried until it holds, and the cells it
//! runs on. Case files write a step as a map with one of many optional fields
//! (`RawStep`); it is read into a `Step` once, when the file is read, and a step that
//! holds none or two of them, or a value that cannot be, is an error then.

use std::time::Duration;

use serde::Deserialize;

use crate::render::{Cell, Fabric, Family, Tweak};

mod acts;
mod expects;
mod raw;
mod timing;

pub use acts::*;
pub use expects::*;
use raw::{RawExpect, RawStep};
pub use timing::{duration, Budget, Timing};

/// One step of a case.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawStep")]
pub struct Step {
    pub what: What,
    /// It runs only on cells of these families (all when empty).
    pub families: Vec<Family>,
    /// It runs only on cells of these fabrics (`tor`, `rr/frr`; all when empty).
    pub fabrics: Vec<String>,
    /// As the case file writes it, for messages.
    pub text: String,
}

#[derive(Debug, Clone)]
pub enum What {
    /// An action, and how the route change it makes is timed, if it is.
    Act(Action, Option<Timing>),
    Expect(Expectation),
}

/// What a step does to the lab.
#[derive(Debug, Clone)]
pub enum Action {
    PodAdd(PodAdd),
    PodDel(PodDel),
    Route(RouteChange),
    Link(LinkAct),
    Impair(ImpairAct),
    Pause(String),
    Unpause(String),
    Daemon(DaemonAct),
    CutSessions(String),
    UncutSessions(String),
    Flap(FlapAct),
    Churn(ChurnAct),
    Exec(ExecAct),
    Announce(PrefixAct),
    Withdraw(PrefixAct),
    Reconfigure { node: String, tweaks: Vec<Tweak> },
    Restore(String),
    ServiceAdd(ServiceAdd),
    ServiceDel(String),
    ServiceReady(ServiceReady),
    Traffic(Traffic),
    Wait(Duration),
}

/// `ip route add|del|replace` of one route or several at once in a node.
#[derive(Debug, Clone)]
pub struct RouteChange {
    pub node: String,
    /// `add`, `del` or `replace`.
    pub verb: &'static str,
    pub routes: Vec<String>,
}

/// What must hold, and for how long it may be retried (`None`: the check's default).
#[derive(Debug, Clone)]
pub struct Expectation {
    pub within: Option<Duration>,
    pub check: Check,
}

/// One thing looked at.
#[derive(Debug, Clone)]
pub enum Check {
    Sessions(SessionsExpect),
    Fib(FibExpect),
    Ping(PingExpect),
    /// Every FIB and RIB as the oracle has it (WD-04).
    Model,
    /// The case's traffic lost at most this many packets (connections).
    Loss(u64),
    /// The case's connections to a service went at most this long without an answer.
    Outage(Duration),
    /// Every session Established within this of `lab up`.
    UpWithin(Duration),
    RssGrowth(RssExpect),
    Reflected(ReflectedExpect),
    Communities(CommunitiesExpect),
    Capabilities(CapsExpect),
    Info(InfoExpect),
    Output(OutputExpect),
    UpFor(UpForExpect),
    Session(SessionExpect),
    Advertised(AdvertisedExpect),
    Connect(ConnectExpect),
    Learned(LearnedExpect),
}

impl Check {
    /// Whether it asks a daemon what it says of itself (retried every 300 ms).
    pub fn daemon_view(&self) -> bool {
        matches!(
            self,
            Check::Reflected(_)
                | Check::Communities(_)
                | Check::Capabilities(_)
                | Check::Info(_)
                | Check::Output(_)
                | Check::UpFor(_)
                | Check::Session(_)
                | Check::Advertised(_)
        )
    }
}

impl Action {
    /// Whether it may reset a BGP session on purpose: it stops, pauses or
    /// reconfigures a daemon, takes a link or a session down, sends a peer something
    /// from x1, or floods it with routes.
    pub fn may_reset_sessions(&self) -> bool {
        matches!(
            self,
            Action::Link(_)
                | Action::Impair(_)
                | Action::Pause(_)
                | Action::Unpause(_)
                | Action::Daemon(_)
                | Action::CutSessions(_)
                | Action::UncutSessions(_)
                | Action::Flap(_)
                | Action::Exec(_)
                | Action::Reconfigure { .. }
                | Action::Restore(_)
                | Action::Churn(_)
        )
    }
}

impl Step {
    /// Whether the step runs on `cell` (its families and fabrics, if it names them).
    pub fn runs_on(&self, cell: &Cell) -> bool {
        (self.families.is_empty() || self.families.contains(&cell.family))
            && (self.fabrics.is_empty()
                || self
                    .fabrics
                    .iter()
                    .any(|f| *f == cell.fabric.to_string() || f == cell.fabric.shape()))
    }

    /// What the step says, as written, for messages.
    pub fn describe(&self) -> String {
        self.text.clone()
    }

    /// The step with every node it names passed through `f` (`{peer}` resolved).
    pub fn map_nodes(&self, f: impl Fn(&str) -> String) -> Step {
        let mut s = self.clone();
        let r = |n: &mut String| *n = f(n);
        match &mut s.what {
            What::Act(a, _) => match a {
                Action::PodAdd(x) => r(&mut x.node),
                Action::PodDel(x) => r(&mut x.node),
                Action::Route(x) => r(&mut x.node),
                Action::Link(x) => r(&mut x.node),
                Action::Impair(x) => r(&mut x.node),
                Action::Daemon(x) => r(&mut x.node),
                Action::Flap(x) => r(&mut x.node),
                Action::Churn(x) => r(&mut x.node),
                Action::Exec(x) => r(&mut x.node),
                Action::Announce(x) | Action::Withdraw(x) => r(&mut x.node),
                Action::Reconfigure { node, .. } => r(node),
                Action::Pause(n)
                | Action::Unpause(n)
                | Action::CutSessions(n)
                | Action::UncutSessions(n)
                | Action::Restore(n) => r(n),
                Action::ServiceAdd(x) => {
                    for e in x.endpoints.iter_mut().chain(x.not_ready.iter_mut()) {
                        r(e)
                    }
                }
                Action::ServiceReady(x) => {
                    for e in &mut x.pods {
                        r(e)
                    }
                }
                Action::ServiceDel(_) | Action::Traffic(_) | Action::Wait(_) => {}
            },
            What::Expect(e) => match &mut e.check {
                Check::Capabilities(x) => {
                    r(&mut x.node);
                    r(&mut x.peer);
                }
                Check::Info(x) => {
                    r(&mut x.node);
                    if let Some(p) = x.peer.as_mut() {
                        r(p);
                    }
                }
                Check::Output(x) => r(&mut x.node),
                Check::Communities(x) => r(&mut x.node),
                Check::UpFor(x) => {
                    r(&mut x.node);
                    r(&mut x.peer);
                }
                Check::Session(x) => {
                    r(&mut x.node);
                    r(&mut x.peer);
                }
                Check::Advertised(x) => {
                    r(&mut x.node);
                    r(&mut x.to);
                }
                _ => {}
            },
        }
        s
    }

    /// The node an action happens in (none for traffic, waits and expectations).
    pub fn action_node(&self) -> Option<&str> {
        let What::Act(a, _) = &self.what else { return None };
        Some(match a {
            Action::PodAdd(x) => &x.node,
            Action::PodDel(x) => &x.node,
            Action::Route(x) => &x.node,
            Action::Link(x) => &x.node,
            Action::Impair(x) => &x.node,
            Action::Daemon(x) => &x.node,
            Action::Flap(x) => &x.node,
            Action::Churn(x) => &x.node,
            Action::Exec(x) => &x.node,
            Action::Announce(x) | Action::Withdraw(x) => &x.node,
            Action::Reconfigure { node, .. } => node,
            Action::Pause(n)
            | Action::Unpause(n)
            | Action::CutSessions(n)
            | Action::UncutSessions(n)
            | Action::Restore(n) => n,
            Action::ServiceAdd(_)
            | Action::ServiceDel(_)
            | Action::ServiceReady(_)
            | Action::Traffic(_)
            | Action::Wait(_) => return None,
        })
    }
}

const ACTIONS: &str = "pod_add, pod_del, route, link, impair, pause, unpause, daemon, cut_sessions, uncut_sessions, flap, churn, exec, announce, withdraw, reconfigure, restore, service_add, service_del, service_ready, traffic, wait, expect";
const CHECKS: &str =
    "sessions, fib, ping, model, loss, up_within, rss_growth, reflected, communities, capabilities, info, output, up_for, session, advertised, connect, learned";

/// The one value among `found`, or what is wrong with them.
fn exactly_one<T>(found: Vec<Option<T>>, what: &str) -> Result<T, String> {
    let mut found: Vec<T> = found.into_iter().flatten().collect();
    match found.len() {
        1 => Ok(found.remove(0)),
        n => Err(format!("{what}; this one has {n}")),
    }
}

impl TryFrom<RawStep> for Step {
    type Error = String;

    fn try_from(raw: RawStep) -> Result<Step, String> {
        let text = serde_json::to_string(&raw).unwrap_or_default();
        let families = raw
            .family
            .as_ref()
            .map(|f| {
                f.list()
                    .iter()
                    .map(|f| f.parse::<Family>())
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        for f in &raw.fabric {
            Fabric::check_name(f)?;
        }
        let route = raw
            .route
            .map(|r| {
                let (verb, routes) = match (r.add, r.del, r.replace) {
                    (Some(a), None, None) => ("add", a),
                    (None, Some(d), None) => ("del", d),
                    (None, None, Some(x)) => ("replace", x),
                    _ => return Err("route: give one of add, del, replace".to_string()),
                };
                Ok(Action::Route(RouteChange {
                    node: r.node,
                    verb,
                    routes: routes.list().iter().map(|s| s.to_string()).collect(),
                }))
            })
            .transpose()?;
        let wait = raw.wait.as_deref().map(duration).transpose()?.map(Action::Wait);
        let expect = raw.expect.map(Expectation::try_from).transpose()?;
        let act = exactly_one(
            vec![
                raw.pod_add.map(Action::PodAdd),
                raw.pod_del.map(Action::PodDel),
                route,
                raw.link.map(Action::Link),
                raw.impair.map(|x| x.check().map(|()| Action::Impair(x))).transpose()?,
                raw.pause.map(Action::Pause),
                raw.unpause.map(Action::Unpause),
                raw.daemon.map(Action::Daemon),
                raw.cut_sessions.map(Action::CutSessions),
                raw.uncut_sessions.map(Action::UncutSessions),
                raw.flap.map(Action::Flap),
                raw.churn.map(Action::Churn),
                raw.exec.map(Action::Exec),
                raw.announce.map(Action::Announce),
                raw.withdraw.map(Action::Withdraw),
                raw.reconfigure.map(|x| Action::Reconfigure {
                    node: x.node,
                    tweaks: x.change.list(),
                }),
                raw.restore.map(Action::Restore),
                raw.service_add
                    .map(|x| x.check().map(|()| Action::ServiceAdd(x)))
                    .transpose()?,
                raw.service_del.map(Action::ServiceDel),
                raw.service_ready.map(Action::ServiceReady),
                raw.traffic
                    .map(|t| match (&t.from, &t.to, &t.service) {
                        (Some(_), Some(_), None) | (None, None, Some(_)) => Ok(Action::Traffic(t)),
                        _ => Err("traffic: {from: POD, to: POD} or {service: NAME}".to_string()),
                    })
                    .transpose()?,
                wait,
            ]
            .into_iter()
            .map(|a| a.map(Ok))
            .chain([expect.map(Err)])
            .collect(),
            &format!("a step holds exactly one of {ACTIONS}"),
        )?;
        let what = match (act, raw.time) {
            (Ok(Action::ServiceAdd(_) | Action::ServiceDel(_) | Action::ServiceReady(_)), Some(_)) => {
                return Err("time: goes on the change that moves a service route (a pod, a daemon), not on service_add, service_del or service_ready (their routes change in no node's kernel: check them with `learned` and `within`)".into())
            }
            (Ok(a), Some(t)) if !matches!(a, Action::Wait(_) | Action::Traffic(_)) => {
                t.check()?;
                What::Act(a, Some(t))
            }
            (Ok(a), None) => What::Act(a, None),
            (_, Some(_)) => return Err("time: goes on an action, not on expect, wait or traffic".into()),
            (Err(e), None) => What::Expect(e),
        };
        Ok(Step {
            what,
            families,
            fabrics: raw.fabric,
            text,
        })
    }
}

impl TryFrom<RawExpect> for Expectation {
    type Error = String;

    fn try_from(e: RawExpect) -> Result<Expectation, String> {
        let within = e.within.as_deref().map(duration).transpose()?;
        let model = match e.model {
            Some(true) => Some(Check::Model),
            Some(false) => return Err("expect model: false means nothing; leave it out".into()),
            None => None,
        };
        if let Some(PingExpect::All(s)) = &e.ping {
            if s != "all" {
                return Err(format!("expect ping: {s:?}: write all, or {{from: POD, to: POD}}"));
            }
        }
        if matches!(e.sessions, Some(SessionsExpect::All(false))) {
            return Err("expect sessions: false means nothing; use {down: [NODE]}".into());
        }
        if e.session.as_ref().is_some_and(|x| x.up == SessionState::Up(true)) {
            return Err("expect session: up is false or reset (`sessions: true` says all are up)".into());
        }
        let up_within = e.up_within.as_deref().map(duration).transpose()?;
        let outage = e.outage.as_deref().map(duration).transpose()?;
        let check = exactly_one(
            vec![
                e.sessions.map(Check::Sessions),
                e.fib.map(Check::Fib),
                e.ping.map(Check::Ping),
                model,
                e.loss.map(Check::Loss),
                outage.map(Check::Outage),
                up_within.map(Check::UpWithin),
                e.rss_growth.map(Check::RssGrowth),
                e.reflected.map(Check::Reflected),
                e.communities.map(Check::Communities),
                e.capabilities.map(Check::Capabilities),
                e.info.map(Check::Info),
                e.output.map(Check::Output),
                e.up_for.map(Check::UpFor),
                e.session.map(Check::Session),
                e.advertised.map(Check::Advertised),
                e.connect.map(Check::Connect),
                e.learned.map(Check::Learned),
            ],
            &format!("expect: holds exactly one of {CHECKS}"),
        )?;
        if let Check::UpFor(u) = &check {
            for d in u.min.iter().chain(&u.max) {
                duration(d)?;
            }
        }
        Ok(Expectation { within, check })
    }
}

impl Timing {
    fn check(&self) -> Result<(), String> {
        self.budget.check()?;
        if self.steady && (!self.deleted || self.min.is_some()) {
            return Err("time: steady watches for a removal that must not come: deleted: true, no min".into());
        }
        if let Some(m) = &self.min {
            duration(m)?;
        }
        Ok(())
    }
}
