//! Link impairments (`lab impair`, and the suite's `impair` step): packet loss, a rate
//! limit and delay on what leaves a node's interface, with what the host's kernel
//! offers, as containerlab's `tools netem set` does with netem alone.
//!
//! - Loss is nftables (table `inet podlab_impair`): every IPv4 and IPv6 packet the
//!   node sends or routes out of the interface is dropped with that probability
//!   (`numgen random mod 10000 < N`), so it works where netem is missing, as on this
//!   project's machine (FIELD-NOTES). ARP and frames a bridge forwards are not
//!   impaired. The `netdev` family's egress hook, which would catch those, counts its
//!   drops on this kernel's veths but lets the packets go (measured: 13 of 20 pings
//!   "dropped", 20 answered), so it is not used.
//! - A rate limit is a token bucket (`tbf`) as the interface's root qdisc.
//! - Delay and jitter need netem (`sch_netem`); where the kernel lacks it they are
//!   refused with that reason, and nothing is changed.
//!
//! Everything is in the node's own namespace: it goes with the node, and `--clear`
//! takes it away.

use crate::runtime::{ExecOutput, Runtime, RuntimeError};

const TABLE: &str = "podlab_impair";

/// What to do to an interface's egress.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Impairment {
    /// Percent of packets dropped (0-100, two decimals).
    pub loss: Option<f64>,
    pub delay_ms: Option<u32>,
    pub jitter_ms: Option<u32>,
    pub rate_kbit: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImpairError {
    #[error("{0}")]
    Invalid(String),
    #[error(
        "{what} needs the kernel's netem qdisc (sch_netem), which this host's kernel lacks (tc: {tc}); \
         loss (nftables) and --rate (tbf) work here. Nothing was changed"
    )]
    NoNetem { what: String, tc: String },
    #[error("{node}: {cmd}: {msg}")]
    Command { node: String, cmd: String, msg: String },
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

impl Impairment {
    pub fn check(&self) -> Result<(), ImpairError> {
        if let Some(l) = self.loss {
            if !(0.0..=100.0).contains(&l) {
                return Err(ImpairError::Invalid(format!("--loss {l}: a percentage, 0 to 100")));
            }
        }
        if self.rate_kbit == Some(0) {
            return Err(ImpairError::Invalid("--rate 0: a rate in kbit/s, above 0".into()));
        }
        if self.jitter_ms.is_some() && self.delay_ms.is_none() {
            return Err(ImpairError::Invalid("--jitter needs --delay".into()));
        }
        if *self == Impairment::default() {
            return Err(ImpairError::Invalid(
                "nothing to do: give --loss, --rate or --delay (or --clear)".into(),
            ));
        }
        Ok(())
    }

    /// As `lab impair` prints it.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(l) = self.loss {
            parts.push(format!("loss {l}%"));
        }
        if let Some(d) = self.delay_ms {
            parts.push(match self.jitter_ms {
                Some(j) => format!("delay {d}ms ±{j}ms"),
                None => format!("delay {d}ms"),
            });
        }
        if let Some(r) = self.rate_kbit {
            parts.push(format!("rate {r}kbit"));
        }
        parts.join(", ")
    }
}

/// The nft chain of an interface's loss (names may hold `.` or `-`, which nft
/// identifiers do not).
fn chain(iface: &str) -> String {
    format!(
        "if_{}",
        iface
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect::<String>()
    )
}

/// One nft batch (applied at once, or not at all) that makes `iface` drop `loss`
/// percent of the IP packets leaving it; `jumps`: the base chains do not lead to the
/// interface's chain yet.
fn loss_batch(iface: &str, loss: f64, jumps: bool) -> String {
    let ch = chain(iface);
    let drop = if loss >= 100.0 {
        "counter drop".to_string()
    } else {
        format!(
            "numgen random mod 10000 < {} counter drop",
            (loss * 100.0).round() as u64
        )
    };
    let mut cmds = vec![
        format!("add table inet {TABLE}"),
        format!("add chain inet {TABLE} sent {{ type filter hook output priority 0 ; }}"),
        format!("add chain inet {TABLE} routed {{ type filter hook forward priority 0 ; }}"),
        format!("add chain inet {TABLE} {ch}"),
        format!("flush chain inet {TABLE} {ch}"),
        format!("add rule inet {TABLE} {ch} {drop}"),
    ];
    if jumps {
        for base in ["sent", "routed"] {
            cmds.push(format!("add rule inet {TABLE} {base} oifname \"{iface}\" jump {ch}"));
        }
    }
    cmds.join(" ; ")
}

struct Node<'a> {
    rt: &'a Runtime,
    container: &'a str,
    node: &'a str,
}

impl Node<'_> {
    async fn run(&self, cmd: &[&str]) -> Result<ExecOutput, ImpairError> {
        let argv: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
        Ok(self.rt.exec(self.container, &argv).await?)
    }

    async fn must(&self, cmd: &[&str]) -> Result<String, ImpairError> {
        let out = self.run(cmd).await?;
        if !out.ok() {
            return Err(ImpairError::Command {
                node: self.node.to_string(),
                cmd: cmd.join(" "),
                msg: format!("{}{}", out.stdout, out.stderr).trim().to_string(),
            });
        }
        Ok(out.stdout)
    }

    /// The node's interfaces as `ip -j link show` lists them.
    async fn links(&self) -> Result<Vec<serde_json::Value>, ImpairError> {
        let out = self.must(&["ip", "-j", "link", "show"]).await?;
        let links: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        Ok(links.as_array().cloned().unwrap_or_default())
    }

    /// The interface's MTU; an error naming the node's interfaces when it has no such one.
    async fn mtu(&self, iface: &str) -> Result<u64, ImpairError> {
        let all = self.links().await?;
        match all.iter().find(|l| l["ifname"] == iface) {
            Some(l) => Ok(l["mtu"].as_u64().unwrap_or(1500)),
            None => Err(ImpairError::Invalid(format!(
                "node {} has no interface {iface:?} (it has: {})",
                self.node,
                all.iter()
                    .filter_map(|l| l["ifname"].as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// The kind of the interface's root qdisc, if it is one `lab impair` puts there.
    async fn our_root_qdisc(&self, iface: &str) -> Result<Option<String>, ImpairError> {
        let out = self.must(&["tc", "-j", "qdisc", "show", "dev", iface]).await?;
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        Ok(v.as_array()
            .into_iter()
            .flatten()
            .find(|q| q["root"] == true)
            .and_then(|q| q["kind"].as_str())
            .filter(|k| matches!(*k, "tbf" | "netem"))
            .map(String::from))
    }

    async fn clear(&self, iface: &str) -> Result<(), ImpairError> {
        // An empty chain drops nothing; absent already is fine: clearing twice is not
        // an error.
        let _ = self
            .run(&["nft", "flush", "chain", "inet", TABLE, &chain(iface)])
            .await?;
        if self.our_root_qdisc(iface).await?.is_some() {
            self.must(&["tc", "qdisc", "del", "dev", iface, "root"]).await?;
        }
        Ok(())
    }
}

/// Puts `imp` on the egress of `iface` in `node`, replacing what `lab impair` put
/// there before.
pub async fn apply(
    rt: &Runtime,
    container: &str,
    node: &str,
    iface: &str,
    imp: &Impairment,
) -> Result<(), ImpairError> {
    imp.check()?;
    let n = Node { rt, container, node };
    let mtu = n.mtu(iface).await?;
    if imp.delay_ms.is_some() {
        // Tried first, on nothing else changed: where netem is missing, nothing is.
        let probe = n
            .run(&["tc", "qdisc", "replace", "dev", iface, "root", "netem", "delay", "1ms"])
            .await?;
        if !probe.ok() {
            return Err(ImpairError::NoNetem {
                what: "--delay".into(),
                tc: probe.stderr.trim().to_string(),
            });
        }
    }
    n.clear(iface).await?;
    if let Some(loss) = imp.loss.filter(|l| *l > 0.0) {
        let listed = n.run(&["nft", "list", "chain", "inet", TABLE, "sent"]).await?;
        let jumps = !listed.stdout.contains(&format!("jump {}", chain(iface)));
        n.must(&["nft", &loss_batch(iface, loss, jumps)]).await?;
    }
    match (imp.delay_ms, imp.rate_kbit) {
        (Some(d), rate) => {
            let delay = format!("{d}ms");
            let jitter = imp.jitter_ms.map(|j| format!("{j}ms"));
            let rate = rate.map(|r| format!("{r}kbit"));
            let mut cmd = vec!["tc", "qdisc", "replace", "dev", iface, "root", "netem", "delay", &delay];
            if let Some(j) = &jitter {
                cmd.push(j);
            }
            if let Some(r) = &rate {
                cmd.extend(["rate", r.as_str()]);
            }
            n.must(&cmd).await?;
        }
        (None, Some(r)) => {
            // The bucket holds at least two full frames, or a tenth of a second's worth.
            let burst = (mtu * 2).max(r * 1000 / 8 / 10).to_string();
            let rate = format!("{r}kbit");
            n.must(&[
                "tc", "qdisc", "replace", "dev", iface, "root", "tbf", "rate", &rate, "burst", &burst, "latency",
                "100ms",
            ])
            .await?;
        }
        (None, None) => {}
    }
    Ok(())
}

/// Takes away what `lab impair` put on `iface` (every interface when `None`).
pub async fn clear(rt: &Runtime, container: &str, node: &str, iface: Option<&str>) -> Result<(), ImpairError> {
    let n = Node { rt, container, node };
    match iface {
        Some(i) => {
            n.mtu(i).await?;
            n.clear(i).await
        }
        None => {
            let _ = n.run(&["nft", "delete", "table", "inet", TABLE]).await?;
            for l in n.links().await? {
                if let Some(i) = l["ifname"].as_str() {
                    if n.our_root_qdisc(i).await?.is_some() {
                        n.must(&["tc", "qdisc", "del", "dev", i, "root"]).await?;
                    }
                }
            }
            Ok(())
        }
    }
}

/// `NODE:IF`.
pub fn parse_link_end(s: &str) -> Result<(String, String), String> {
    match s.split_once(':') {
        Some((n, i)) if !n.is_empty() && !i.is_empty() => Ok((n.to_string(), i.to_string())),
        _ => Err(format!("{s:?}: write NODE:INTERFACE (n1:eth1)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impairments_are_checked() {
        let ok = Impairment {
            loss: Some(20.0),
            ..Default::default()
        };
        assert!(ok.check().is_ok());
        assert_eq!(ok.describe(), "loss 20%");
        for bad in [
            Impairment::default(),
            Impairment {
                loss: Some(120.0),
                ..Default::default()
            },
            Impairment {
                jitter_ms: Some(3),
                ..Default::default()
            },
            Impairment {
                rate_kbit: Some(0),
                ..Default::default()
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn chains_are_nft_identifiers() {
        assert_eq!(chain("eth1"), "if_eth1");
        assert_eq!(chain("e1-1.10"), "if_e1_1_10");
        let b = loss_batch("eth1", 12.5, true);
        assert!(
            b.contains("add rule inet podlab_impair if_eth1 numgen random mod 10000 < 1250 counter drop"),
            "{b}"
        );
        assert!(
            b.contains("add rule inet podlab_impair routed oifname \"eth1\" jump if_eth1"),
            "{b}"
        );
        let b = loss_batch("eth1", 100.0, false);
        assert!(b.ends_with("add rule inet podlab_impair if_eth1 counter drop"), "{b}");
        assert_eq!(parse_link_end("n1:eth1").unwrap(), ("n1".into(), "eth1".into()));
        assert!(parse_link_end("n1").is_err() && parse_link_end(":eth1").is_err());
    }
}
