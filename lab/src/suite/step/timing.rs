//! How an action's route change is timed: the route, its budget per node speaker,
//! and the durations case files write.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::render::NodeSpeaker;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    /// The route that changes (placeholders allowed). On a dual-stack cell a block's
    /// or a pod's placeholder (`{n1.block}`, `{pod.web}`) times its IPv6 twin too.
    pub prefix: String,
    /// Timed to its removal (true) or its appearance.
    #[serde(default)]
    pub deleted: bool,
    /// Every follower's kernel must have followed within this: one duration, or one
    /// per node speaker (`{speaker: 4s, bird: 7s, frr: 4s}`) where their timers differ.
    pub budget: Budget,
    /// And not before this: a route flushed too early is as wrong as one too late
    /// (a graceful restart's stale routes kept for the restart time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<String>,
    /// The route must stay as it is: no follower may remove it (`deleted` must be
    /// true) for the budget after the act, as a graceful restart must keep it.
    #[serde(default)]
    pub steady: bool,
    /// Who must follow (`all`, `others:n1`, `n2,n3`); by default every other
    /// container whose daemon programs its kernel and runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub followers: Option<String>,
    /// What the timing is called in the report (default: the case's title).
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Budget {
    All(String),
    ByNode(std::collections::BTreeMap<String, String>),
}

impl Budget {
    /// The budget on a cell of `node`.
    pub fn on(&self, node: NodeSpeaker) -> Result<Duration, String> {
        match self {
            Budget::All(d) => duration(d),
            Budget::ByNode(m) => duration(
                m.get(node.as_str())
                    .ok_or_else(|| format!("time.budget: nothing for {}", node.as_str()))?,
            ),
        }
    }

    pub(super) fn check(&self) -> Result<(), String> {
        for n in NodeSpeaker::ALL {
            self.on(n)?;
        }
        if let Budget::ByNode(m) = self {
            for k in m.keys() {
                k.parse::<NodeSpeaker>()?;
            }
        }
        Ok(())
    }
}

/// `2s`, `500ms`, `1.5s`.
pub fn duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (n, unit) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        return Err(format!("{s:?} is not a duration: write 2s or 500ms"));
    };
    let v: f64 = n.trim().parse().map_err(|_| format!("{s:?} is not a duration"))?;
    if !(0.0..=3600.0).contains(&v) {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(v * unit))
}
