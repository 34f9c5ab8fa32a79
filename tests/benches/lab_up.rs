//! How long `lab up` takes, as a user sees it: the default topology (racks) deployed
//! and torn down N times (LAB_BENCH_RUNS, default 3) with images built; the median
//! time to "every session Established and every block in every FIB" (what `lab up`
//! waits for) and of `lab down`. FIELD-NOTES puts the floor at 4.9 s for a
//! hand-wired 7-node topology. Writes target/lab-report/bench-lab-up.json.

use std::time::Instant;

use anyhow::{ensure, Result};
use e2e::{lab, lab_ok, renamed_copy, write_report};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<()> {
    // `cargo bench` passes --bench; nothing else to parse.
    let runs: usize = std::env::var("LAB_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    e2e::lab_bin()?; // build before timing
    let file = renamed_copy("racks")?;
    let path = file.to_string_lossy().to_string();
    let (mut up, mut down) = (Vec::new(), Vec::new());
    for i in 0..runs {
        let t = Instant::now();
        let out = lab(&["up", "-q", "-t", &path, "--wait", "60"])?;
        ensure!(
            out.status.success(),
            "lab up failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        up.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        lab_ok(&["down", "-q", "-t", &path])?;
        down.push(t.elapsed().as_secs_f64());
        println!("run {}: up {:.2} s, down {:.2} s", i + 1, up[i], down[i]);
    }
    let (up_median, down_median) = (median(up.clone()), median(down.clone()));
    println!("lab up (racks: 6 containers, 5 links, 10 sessions, 4 blocks): median {up_median:.2} s over {runs} runs");
    println!("lab down: median {down_median:.2} s");
    write_report(
        "bench-lab-up.json",
        &serde_json::json!({"topology": "racks", "runs": runs, "up_secs": up, "down_secs": down,
            "up_median_secs": up_median, "down_median_secs": down_median}),
    )
}
