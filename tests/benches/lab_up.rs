//! P4, the lab itself: warm `lab up` and `lab down` of the racks topology (6
//! containers, 5 links, 10 sessions, 4 blocks) against `racks-by-hand.sh`, which
//! deploys the same with the docker CLI and iproute2 and waits for the same thing
//! (every block in every node's kernel), interleaved in one run; then a cold build
//! of the images (`lab images` with them removed first).
//!
//! `BENCH_P4_RUNS` (default 3) sets the rounds; `BENCH_P4_COLD=0` skips the cold
//! build (it takes minutes, and removes the images while it runs). Writes
//! `target/bench-report/p4.json` for `make bench`'s report.

use std::process::Command;
use std::time::Instant;

use anyhow::{ensure, Result};
use e2e::{lab, lab_ok, renamed_copy, root};
use serde_json::json;

fn script(verb: &str) -> Result<()> {
    let out = Command::new(root().join("tests/benches/racks-by-hand.sh"))
        .arg(verb)
        .output()?;
    ensure!(
        out.status.success(),
        "racks-by-hand.sh {verb}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

fn main() -> Result<()> {
    // `cargo bench` passes --bench; nothing else to parse.
    let runs: usize = std::env::var("BENCH_P4_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    e2e::lab_bin()?; // build before timing
    let file = renamed_copy("racks")?;
    let path = file.to_string_lossy().to_string();
    let (mut lab_up, mut lab_down, mut hand_up, mut hand_down) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let _ = script("down");
    for i in 0..runs {
        let t = Instant::now();
        let out = lab(&["up", "-q", "-t", &path, "--wait", "60"])?;
        ensure!(
            out.status.success(),
            "lab up failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        lab_up.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        lab_ok(&["down", "-q", "-t", &path])?;
        lab_down.push(t.elapsed().as_secs_f64());

        let t = Instant::now();
        let up = script("up");
        hand_up.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        script("down")?;
        hand_down.push(t.elapsed().as_secs_f64());
        up?;
        println!(
            "run {}: lab up {:.2} s, down {:.2} s; by hand up {:.2} s, down {:.2} s",
            i + 1,
            lab_up[i],
            lab_down[i],
            hand_up[i],
            hand_down[i]
        );
    }
    let mut series = vec![
        json!({"figure": "P4 racks up (every block in every FIB)", "unit": "s", "node": "lab", "values": lab_up}),
        json!({"figure": "P4 racks up (every block in every FIB)", "unit": "s", "node": "by hand", "values": hand_up}),
        json!({"figure": "P4 racks down", "unit": "s", "node": "lab", "values": lab_down}),
        json!({"figure": "P4 racks down", "unit": "s", "node": "by hand", "values": hand_down}),
    ];
    let mut notes = vec![
        "\"by hand\" is tests/benches/racks-by-hand.sh: docker run, veth pairs moved with ip link and nsenter, the daemons started with docker exec, the FIBs polled every 50 ms.".to_string(),
        "`lab up` also reads every session back from each daemon and checks the blocks from route events; the script checks only the FIBs.".to_string(),
    ];
    if std::env::var("BENCH_P4_COLD").as_deref() != Ok("0") {
        let images = ["podlab/speaker:latest", "podlab/base:latest"];
        let rm = Command::new("docker").arg("rmi").args(images).output()?;
        if rm.status.success() {
            let t = Instant::now();
            let out = lab(&["images", "-q", "--root", &root().display().to_string()])?;
            ensure!(
                out.status.success(),
                "cold lab images failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let secs = t.elapsed().as_secs_f64();
            println!("cold image build (base and speaker): {secs:.1} s");
            series.push(
                json!({"figure": "P4 cold image build (base + speaker)", "unit": "s", "node": "lab", "values": [secs]}),
            );
        } else {
            notes.push(format!(
                "No cold build: the images could not be removed ({}).",
                String::from_utf8_lossy(&rm.stderr).trim()
            ));
        }
    }
    let report = json!({
        "bench": "P4",
        "title": "the lab itself",
        "method": format!("warm `lab up` and `lab down` of topologies/racks (6 containers, 5 links, 10 sessions, 4 blocks) against the same by hand, interleaved, {runs} rounds"),
        "runs": runs,
        "series": series,
        "notes": notes,
        "subject": "lab",
        "against": ["by hand"],
    });
    e2e::bench_report::write_part("p4", &report)?;
    Ok(())
}
