//! A case's continuous traffic: a ping every millisecond between two pods in each
//! family they have, or a TCP connection every 20 ms from the client outside the
//! cluster to a service's address in each family, counted when it stops.

use super::lab::{exec_ok, sh, Lab};
use super::record::{CaseRun, Running};
use super::step::Traffic;
use super::Flow;
use crate::pods;
use crate::runtime::Runtime;

/// The connection loop: one connection at a time, 20 ms apart, each given 200 ms to
/// connect and 500 ms to answer (socat: nc's timeouts are whole seconds, and a lost
/// SYN would hide a second of the outage behind it); on SIGTERM (a background job of a shell ignores SIGINT, and bash cannot
/// trap what it was started ignoring) it prints what it counted, the longest gap between answers in
/// microseconds (bash's own clock: no process per reading).
const CONNECT_LOOP: &str = r#"addr="$1"; port="$2"
sent=0; answered=0; worst=0; last=${EPOCHREALTIME/./}
gap() { local now=${EPOCHREALTIME/./}; [ $((now - last)) -gt $worst ] && worst=$((now - last)); last=$now; }
trap 'gap; echo "connections $sent answered $answered longest_gap_us $worst"; exit 0' TERM
while :; do
  sent=$((sent + 1))
  if [ -n "$(socat -T 0.5 - "TCP:$addr:$port,connect-timeout=0.2" </dev/null 2>/dev/null | head -n 1)" ]; then
    answered=$((answered + 1)); gap
  fi
  sleep 0.02
done"#;

impl CaseRun {
    pub(super) async fn start_traffic(&mut self, rt: &Runtime, lab: &Lab, t: &Traffic) -> Result<(), String> {
        match (&t.from, &t.to, &t.service) {
            (Some(from), Some(to), None) => self.start_pings(rt, lab, from, to).await,
            (None, None, Some(service)) => self.start_connections(rt, lab, service).await,
            _ => Err("traffic: {from: POD, to: POD} or {service: NAME}".into()),
        }
    }

    /// A ping every millisecond from one pod to another, in each family both have:
    /// a gap of 50 ms costs 50 packets.
    async fn start_pings(&mut self, rt: &Runtime, lab: &Lab, from: &str, to: &str) -> Result<(), String> {
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
            self.traffic.push(Running {
                node: src.node.clone(),
                pid,
                family: family.to_string(),
                log,
                connections: false,
            });
        }
        Ok(())
    }

    /// From the client outside the cluster, connections to each address of a service
    /// the case made: what its users see while a node or an endpoint goes.
    async fn start_connections(&mut self, rt: &Runtime, lab: &Lab, service: &str) -> Result<(), String> {
        let s = super::svc::service(lab, service)?;
        let client = super::svc::client(lab)?;
        for ip in &s.ips {
            let family = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
            let log = format!("/tmp/lab-connections-{}-{family}.log", s.name);
            let addr = match ip {
                std::net::IpAddr::V4(a) => a.to_string(),
                std::net::IpAddr::V6(a) => format!("[{a}]"),
            };
            let cmd = format!(
                "bash -c '{}' loop {addr} {} >{log} 2>&1 & echo $!",
                CONNECT_LOOP.replace('\'', r#"'\''"#),
                s.port
            );
            let out = exec_ok(rt, lab, &client, &sh(&cmd)).await?;
            let pid: u32 = out.trim().parse().map_err(|_| format!("traffic: no PID in {out:?}"))?;
            self.traffic.push(Running {
                node: client.clone(),
                pid,
                family: format!("{family} to {}", s.name),
                log,
                connections: true,
            });
        }
        Ok(())
    }

    /// Stops the traffic (if any) and says what it sent and lost in each family.
    pub async fn stop_traffic(&mut self, rt: &Runtime, lab: &Lab) -> Vec<Flow> {
        if self.traffic.is_empty() {
            return self.last_traffic.clone();
        }
        let mut flows = Vec::new();
        for r in std::mem::take(&mut self.traffic) {
            let (pid, log) = (r.pid, &r.log);
            // ping prints its summary on SIGINT, the connection loop on SIGTERM.
            let signal = if r.connections { "TERM" } else { "INT" };
            let cmd = format!(
                "kill -{signal} {pid}; while kill -0 {pid} 2>/dev/null; do sleep 0.05; done; cat {log}; rm -f {log}"
            );
            let out = exec_ok(rt, lab, &r.node, &sh(&cmd)).await.ok();
            // Traffic that printed no summary counts as all lost: it cannot pass.
            let flow = match r.connections {
                false => out.as_deref().and_then(parse_ping_summary).map(|(sent, lost)| Flow {
                    family: r.family.clone(),
                    sent,
                    lost,
                    longest_gap_ms: None,
                }),
                true => out.as_deref().and_then(|o| parse_connections(&r.family, o)),
            };
            flows.push(flow.unwrap_or(Flow {
                family: r.family,
                sent: 0,
                lost: u64::MAX,
                longest_gap_ms: None,
            }));
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

/// `connections 120 answered 104 longest_gap_us 532113` -> a Flow.
fn parse_connections(family: &str, out: &str) -> Option<Flow> {
    let line = out.lines().rev().find(|l| l.starts_with("connections "))?;
    let w: Vec<&str> = line.split_whitespace().collect();
    match w[..] {
        ["connections", sent, "answered", answered, "longest_gap_us", gap] => {
            let (sent, answered, gap): (u64, u64, u64) =
                (sent.parse().ok()?, answered.parse().ok()?, gap.parse().ok()?);
            Some(Flow {
                family: family.to_string(),
                sent,
                lost: sent.saturating_sub(answered),
                longest_gap_ms: Some(gap as f64 / 1000.0),
            })
        }
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

    #[test]
    fn connection_counts_read() {
        let f = parse_connections("IPv4 to s04", "connections 120 answered 104 longest_gap_us 532113\n").unwrap();
        assert_eq!((f.sent, f.lost), (120, 16));
        assert_eq!(f.longest_gap_ms, Some(532.113));
        assert!(parse_connections("IPv4", "bash: nc: not found").is_none());
    }
}
