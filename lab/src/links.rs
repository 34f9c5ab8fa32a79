//! Data links, wired as containerlab wires them: one veth pair per link, created on the
//! host under temporary names, then each end moved into its node's network namespace,
//! renamed to the endpoint's exact name and brought up in one RTM_SETLINK (the kernel
//! refuses a veth created up, and a moved link comes down unless raised in the same
//! message). A pair left on the host by a failure half way is deleted at once.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::TryStreamExt;
use rtnetlink::{Handle, LinkUnspec, LinkVeth};

use crate::topology::Link;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("cannot open a netlink socket on the host: {0} (wiring links needs root)")]
    Netlink(std::io::Error),
    #[error("link {a} <-> {b}: node {node} has no running container")]
    NotRunning { a: String, b: String, node: String },
    #[error("link {a} <-> {b} (topology line {line}): {step}: {source}")]
    Create {
        a: String,
        b: String,
        line: usize,
        step: &'static str,
        source: Box<rtnetlink::Error>,
    },
}

static NEXT_TMP: AtomicUsize = AtomicUsize::new(0);

/// Creates every link between running containers, given each node's init PID.
pub async fn wire(links: &[Link], pids: &BTreeMap<String, u32>) -> Result<(), LinkError> {
    let (conn, handle, _) = rtnetlink::new_connection().map_err(LinkError::Netlink)?;
    let task = tokio::spawn(conn);
    let mut result = Ok(());
    for l in links {
        if let Err(e) = wire_one(&handle, l, pids).await {
            result = Err(e);
            break;
        }
    }
    task.abort();
    result
}

async fn wire_one(handle: &Handle, l: &Link, pids: &BTreeMap<String, u32>) -> Result<(), LinkError> {
    let (a, b) = (
        format!("{}:{}", l.a.node, l.a.iface),
        format!("{}:{}", l.b.node, l.b.iface),
    );
    let pid = |node: &str| {
        pids.get(node).copied().ok_or_else(|| LinkError::NotRunning {
            a: a.clone(),
            b: b.clone(),
            node: node.to_string(),
        })
    };
    let (pa, pb) = (pid(&l.a.node)?, pid(&l.b.node)?);
    let err = |step: &'static str| {
        let (a, b, line) = (a.clone(), b.clone(), l.line);
        move |source: rtnetlink::Error| LinkError::Create {
            a,
            b,
            line,
            step,
            source: Box::new(source),
        }
    };
    // Temporary host names, at most 15 characters: unique to this process, and within
    // it to this link of all the labs it wires (`lab test --jobs` wires two at once).
    let n = NEXT_TMP.fetch_add(1, Ordering::Relaxed);
    let tmp = |end: char| format!("lb{:06x}{:04x}{end}", std::process::id() & 0xff_ffff, n & 0xffff);
    let (ta, tb) = (tmp('a'), tmp('b'));
    handle
        .link()
        .add(LinkVeth::new(&ta, &tb).mtu(l.mtu).build())
        .execute()
        .await
        .map_err(err("create veth pair"))?;
    let moved = async {
        let ia = index(handle, &ta).await.map_err(err("find new veth"))?;
        let ib = index(handle, &tb).await.map_err(err("find new veth"))?;
        for (idx, pid, name, mtu) in [(ia, pa, &l.a.iface, l.mtu), (ib, pb, &l.b.iface, l.mtu)] {
            let msg = LinkUnspec::new_with_index(idx)
                .setns_by_pid(pid)
                .name(name.clone())
                .mtu(mtu)
                .up()
                .build();
            handle
                .link()
                .change(msg)
                .execute()
                .await
                .map_err(err("move into the node"))?;
        }
        Ok(())
    }
    .await;
    if moved.is_err() {
        // Deleting the end still on the host deletes the pair.
        for t in [&ta, &tb] {
            if let Ok(idx) = index(handle, t).await {
                let _ = handle.link().del(idx).execute().await;
            }
        }
    }
    moved
}

async fn index(handle: &Handle, name: &str) -> Result<u32, rtnetlink::Error> {
    let link = handle
        .link()
        .get()
        .match_name(name.to_string())
        .execute()
        .try_next()
        .await?;
    link.map(|l| l.header.index).ok_or(rtnetlink::Error::RequestFailed)
}
