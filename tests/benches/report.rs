//! The last step of `make bench`: every part the benchmarks wrote into
//! `target/bench-report/` (p1.json, p2.json, ...) into `bench.json`, `bench.md` and
//! one SVG per part, with the machine they ran on. See `e2e::bench_report`.

use anyhow::{Context, Result};
use e2e::bench_report::{figures, markdown, svg, Part};

fn main() -> Result<()> {
    let dir = e2e::target_dir().join("bench-report");
    let mut parts: Vec<Part> = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("{}: no benchmark has written its part", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('p'))
        })
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f)?;
        parts.push(serde_json::from_str(&text).with_context(|| format!("{}", f.display()))?);
    }
    let machine = machine();
    let md = markdown(&parts, &machine);
    std::fs::write(dir.join("bench.md"), &md)?;
    for p in &parts {
        std::fs::write(dir.join(format!("{}.svg", p.bench.to_lowercase())), svg(p))?;
    }
    let all: Vec<_> = parts.iter().flat_map(figures).collect();
    std::fs::write(
        dir.join("bench.json"),
        serde_json::to_string_pretty(&serde_json::json!({ "machine": machine, "parts": parts, "figures": all }))?,
    )?;
    if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).create(true).open(summary)?;
        f.write_all(md.as_bytes())?;
    }
    println!("{md}");
    println!("written to {}/bench.md", dir.display());
    Ok(())
}

/// The machine and the versions compared, in one line.
fn machine() -> String {
    let sh = |cmd: &str| {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    format!(
        "Measured {} on {} ({} cores, {} GiB), kernel {}; speaker at commit {}, {}, {}.",
        sh("date -u +%Y-%m-%d"),
        sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'"),
        sh("nproc"),
        sh("awk '/MemTotal/ {printf \"%d\", $2/1048576}' /proc/meminfo"),
        sh("uname -r"),
        sh("git rev-parse --short HEAD"),
        sh("bird --version 2>&1 | head -1"),
        sh("/usr/lib/frr/zebra --version 2>/dev/null | head -1 | sed 's/^zebra version/FRR/'"),
    )
}
