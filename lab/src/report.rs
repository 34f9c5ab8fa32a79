//! Tables for people: the peer table and the node table, aligned columns, one row per
//! session or node. Machines get `--json` instead.

use crate::probes::PeerTable;

/// Renders rows as left-aligned columns under a header.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out += &line(r.iter().map(String::as_str).collect());
    }
    out
}

pub fn uptime(secs: Option<u64>) -> String {
    match secs {
        None => "-".into(),
        Some(s) if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        Some(s) => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

pub fn peer_table(t: &PeerTable) -> String {
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let rows: Vec<Vec<String>> = t
        .rows
        .iter()
        .map(|r| {
            let s = &r.session;
            vec![
                r.lab.clone(),
                r.node.clone(),
                r.bgp.clone(),
                s.peer.clone(),
                opt(s.remote_as.map(|a| a.to_string())),
                s.state.clone(),
                uptime(s.uptime_secs),
                opt(s.prefixes_received.map(|n| n.to_string())),
                s.info.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "LAB",
            "NODE",
            "BGP",
            "PEER",
            "REMOTE AS",
            "STATE",
            "UPTIME",
            "PFX RCVD",
            "INFO",
        ],
        &rows,
    );
    for u in &t.unreadable {
        out += &format!("{}/{}: cannot read sessions: {}\n", u.lab, u.node, u.error);
    }
    out
}

/// The ping matrix: a row per source pod, a column per destination.
pub fn ping_matrix(m: &crate::pods::PingMatrix) -> String {
    let names: Vec<&str> = m.pods.iter().map(|p| p.name.as_str()).collect();
    let mut header = vec!["FROM \\ TO"];
    header.extend(names.iter().copied());
    let rows: Vec<Vec<String>> = names
        .iter()
        .map(|from| {
            let mut row = vec![from.to_string()];
            row.extend(
                names
                    .iter()
                    .map(|to| match m.reached.get(*from).and_then(|r| r.get(*to)) {
                        None => "-".to_string(),
                        Some(true) => "ok".to_string(),
                        Some(false) => "FAIL".to_string(),
                    }),
            );
            row
        })
        .collect();
    let pct = if m.pairs() == 0 {
        100.0
    } else {
        100.0 * m.ok() as f64 / m.pairs() as f64
    };
    format!(
        "{}ping matrix: {}/{} pairs ({pct:.0}%)\n",
        table(&header, &rows),
        m.ok(),
        m.pairs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align() {
        let t = table(&["A", "BB"], &[vec!["xxx".into(), "y".into()]]);
        assert_eq!(t, "A    BB\nxxx  y\n");
        assert_eq!(uptime(Some(75)), "1m15s");
        assert_eq!(uptime(Some(7260)), "2h01m");
    }
}
