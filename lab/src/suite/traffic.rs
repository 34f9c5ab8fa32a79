//! A case's continuous traffic: a ping every millisecond between two pods in each
//! family they have, counted when it stops.

use super::lab::{exec_ok, sh, Lab};
use super::record::CaseRun;
use super::Flow;
use crate::pods;
use crate::runtime::Runtime;

impl CaseRun {
    /// A ping every millisecond from one pod to another, in each family both have:
    /// a gap of 50 ms costs 50 packets.
    pub(super) async fn start_traffic(&mut self, rt: &Runtime, lab: &Lab, from: &str, to: &str) -> Result<(), String> {
        let list = pods::list(rt, &lab.topo).await.map_err(|e| e.to_string())?;
        let find = |name: &str| {
            list.iter()
                .find(|p| p.name == name)
                .cloned()
                .ok_or_else(|| format!("traffic: no pod {name}"))
        };
        let (src, dst) = (find(from)?, find(to)?);
        let pairs = [(src.ip, dst.ip), (src.ip6.unwrap_or(src.ip), dst.ip6.unwrap_or(dst.ip))];
        for (k, (a, b)) in pairs.iter().enumerate() {
            if k == 1 && (src.ip6.is_none() || dst.ip6.is_none()) {
                break;
            }
            let family = if a.is_ipv4() { "IPv4" } else { "IPv6" };
            let log = format!("/tmp/lab-traffic-{family}.log");
            // ip netns exec becomes ping: the PID we print is ping's.
            let cmd = format!(
                "ip netns exec pod-{} ping -n -q -i 0.001 -W 1 {b} >{log} 2>&1 & echo $!",
                src.name
            );
            let out = exec_ok(rt, lab, &src.node, &sh(&cmd)).await?;
            let pid: u32 = out.trim().parse().map_err(|_| format!("traffic: no PID in {out:?}"))?;
            self.traffic.push((src.node.clone(), pid, family.to_string(), log));
        }
        Ok(())
    }

    /// Stops the traffic (if any) and says what it sent and lost in each family.
    pub async fn stop_traffic(&mut self, rt: &Runtime, lab: &Lab) -> Vec<Flow> {
        if self.traffic.is_empty() {
            return self.last_traffic.clone();
        }
        let mut flows = Vec::new();
        for (node, pid, family, log) in std::mem::take(&mut self.traffic) {
            let cmd = format!(
                "kill -INT {pid}; while kill -0 {pid} 2>/dev/null; do sleep 0.05; done; cat {log}; rm -f {log}"
            );
            let counted = exec_ok(rt, lab, &node, &sh(&cmd))
                .await
                .ok()
                .and_then(|out| parse_ping_summary(&out));
            // A ping that printed no summary counts as all lost: it cannot pass.
            let (sent, lost) = counted.unwrap_or((0, u64::MAX));
            flows.push(Flow { family, sent, lost });
        }
        flows
    }

    /// Stops the traffic to count it; a later `loss` sees the same count.
    pub(super) async fn peek_traffic(&mut self, rt: &Runtime, lab: &Lab) -> Vec<Flow> {
        let counted = self.stop_traffic(rt, lab).await;
        if !counted.is_empty() {
            self.last_traffic = counted;
        }
        self.last_traffic.clone()
    }
}

/// `20 packets transmitted, 19 received, 5% packet loss` -> (20, 1).
fn parse_ping_summary(out: &str) -> Option<(u64, u64)> {
    let line = out.lines().find(|l| l.contains("packets transmitted"))?;
    let nums: Vec<u64> = line
        .split(',')
        .filter_map(|part| part.split_whitespace().next()?.parse().ok())
        .collect();
    match nums[..] {
        [sent, received, ..] => Some((sent, sent.saturating_sub(received))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_summaries_read() {
        let out = "PING 10.244.2.1\n\n--- 10.244.2.1 ping statistics ---\n40 packets transmitted, 37 received, 7.5% packet loss, time 1950ms\n";
        assert_eq!(parse_ping_summary(out), Some((40, 3)));
        assert_eq!(parse_ping_summary("nothing"), None);
    }
}
