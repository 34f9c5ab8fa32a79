//! What a failed case leaves as evidence: a pcap of TCP port 179 in every node taken
//! during the case, the daemons' logs, and the peers and FIBs as JSON.

use std::path::Path;

use super::lab::{exec_ok, sh, Lab};
use crate::probes;
use crate::runtime::Runtime;

/// A pcap of TCP port 179 in every BGP node, for the length of a case.
pub struct Capture {
    nodes: Vec<(String, u32)>,
}

const PCAP: &str = "/tmp/lab-case.pcap";

impl Capture {
    pub async fn start(rt: &Runtime, lab: &Lab) -> Capture {
        // One exec per node, all at once: this runs before every case of the matrix.
        let cmd = sh(&format!(
            "tcpdump -i any -U -s 256 -w {PCAP} 'tcp port 179' >/dev/null 2>&1 & echo $!"
        ));
        let started = lab.topo.nodes.values().filter(|n| n.bgp().is_some()).map(|n| async {
            let out = exec_ok(rt, lab, &n.name, &cmd).await.ok()?;
            Some((n.name.clone(), out.trim().parse().ok()?))
        });
        let nodes = futures::future::join_all(started).await.into_iter().flatten().collect();
        Capture { nodes }
    }

    /// Stops every node's capture and runs `then` after it in the same exec.
    async fn stop(&self, rt: &Runtime, lab: &Lab, then: &str) {
        let stops = self.nodes.iter().map(|(node, pid)| async move {
            let _ = exec_ok(rt, lab, node, &sh(&format!("kill -INT {pid} 2>/dev/null; {then}"))).await;
        });
        futures::future::join_all(stops).await;
    }

    pub async fn discard(self, rt: &Runtime, lab: &Lab) {
        self.stop(rt, lab, &format!("rm -f {PCAP}")).await;
    }

    /// Writes the case's evidence into `dir`.
    pub async fn collect(self, rt: &Runtime, lab: &Lab, dir: &Path, why: &str) {
        // tcpdump flushes its last packets on SIGINT: give it a moment before reading.
        self.stop(rt, lab, "sleep 0.1").await;
        let _ = std::fs::create_dir_all(dir);
        let _ = std::fs::write(dir.join("failure.txt"), format!("{why}\n"));
        if let Ok(t) = probes::peers(rt, Some(&lab.topo.name)).await {
            let _ = std::fs::write(
                dir.join("peers.json"),
                serde_json::to_string_pretty(&t.rows).unwrap_or_default(),
            );
        }
        for n in lab.topo.nodes.values() {
            let container = lab.topo.container_name(&n.name);
            if let Ok(routes) = probes::fib(rt, &container).await {
                let _ = std::fs::write(
                    dir.join(format!("fib-{}.json", n.name)),
                    serde_json::to_string_pretty(&routes).unwrap_or_default(),
                );
            }
            if let Some(d) = n.bgp().and_then(crate::bgp::for_label).and_then(|k| k.daemon()) {
                if let Ok(log) = exec_ok(rt, lab, &n.name, &sh(&format!("tail -c 300000 {}", d.log))).await {
                    let _ = std::fs::write(dir.join(format!("{}.log", n.name)), log);
                }
            }
            if self.nodes.iter().any(|(node, _)| *node == n.name) {
                if let Ok(b64) = exec_ok(rt, lab, &n.name, &sh(&format!("base64 -w0 {PCAP}; rm -f {PCAP}"))).await {
                    if let Some(bytes) = base64_decode(b64.trim()) {
                        let _ = std::fs::write(dir.join(format!("{}.pcap", n.name)), bytes);
                    }
                }
            }
        }
    }
}

/// Standard base64, as coreutils writes it.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    };
    let bytes: Vec<u8> = s.bytes().filter(|b| *b != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, b) in chunk.iter().enumerate() {
            n |= val(*b)? << (18 - 6 * i);
        }
        let take = chunk.len().saturating_sub(1);
        for i in 0..take {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_reads() {
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("aGk=").unwrap(), b"hi");
    }
}
