//! Replay tests of the daemon's core: each folder under `tests/replay/` holds a
//! speaker configuration (`config.yaml`), a sequence of inputs (`events.jsonl`,
//! hand-written or recorded with `speaker run --record`) and what the core must
//! answer to each (`expected.jsonl`). The core's invariants (the kernel holds
//! exactly the RIB's best routes, no route of another owner is touched) are
//! checked after every input. When a behaviour changes on purpose, regenerate the
//! expected files with `SPEAKER_REPLAY_BLESS=1 cargo test -p speaker --test replay`
//! and read the diff.

use std::fs;
use std::path::{Path, PathBuf};

use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::json;
use speaker::config::Config;
use speaker::replay::{self, Replay};

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/replay");
    let mut dirs: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("events.jsonl").exists())
        .collect();
    dirs.sort();
    dirs
}

/// Runs one case: what the core said at each input, one JSON line each, then
/// the FIB as the core sees it at the end.
fn run(dir: &Path) -> Result<String, String> {
    let read = |name: &str| fs::read_to_string(dir.join(name)).map_err(|e| format!("{name}: {e}"));
    let config = Config::parse("config.yaml", &read("config.yaml")?).map_err(|e| e.to_string())?;
    let lines = replay::parse(&read("events.jsonl")?).map_err(|e| format!("events.jsonl: {e}"))?;
    let mut r = Replay::new(config);
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        let outputs = r
            .step(line)
            .map_err(|e| format!("after input {} (at {} ms): {e}", i + 1, line.at_ms))?;
        out.push_str(&json!({ "input": i + 1, "at_ms": line.at_ms, "outputs": outputs }).to_string());
        out.push('\n');
    }
    let end = json!({
        "fib": r.node().fib_view(),
        "kernel": r.kernel_routes(),
        "routes": r.node().routes(None),
        "status": r.node().status(),
    });
    out.push_str(&end.to_string());
    out.push('\n');
    Ok(out)
}

fn check(dir: &Path) -> Result<(), Failed> {
    let actual = run(dir)?;
    let path = dir.join("expected.jsonl");
    if std::env::var_os("SPEAKER_REPLAY_BLESS").is_some() {
        fs::write(&path, &actual).map_err(|e| format!("{}: {e}", path.display()))?;
        return Ok(());
    }
    let expected = fs::read_to_string(&path).map_err(|e| {
        format!(
            "{}: {e} (create it with SPEAKER_REPLAY_BLESS=1 and read it)",
            path.display()
        )
    })?;
    for (i, (e, a)) in expected.lines().zip(actual.lines()).enumerate() {
        if e != a {
            return Err(format!(
                "expected.jsonl line {} differs\n expected: {e}\n   actual: {a}\n(SPEAKER_REPLAY_BLESS=1 regenerates it when the change is intended)",
                i + 1
            )
            .into());
        }
    }
    if expected.lines().count() != actual.lines().count() {
        return Err(format!(
            "expected.jsonl has {} lines, the run gave {}",
            expected.lines().count(),
            actual.lines().count()
        )
        .into());
    }
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    let trials = cases()
        .into_iter()
        .map(|dir| {
            let name = dir.file_name().unwrap_or_default().to_string_lossy().into_owned();
            Trial::test(name, move || check(&dir))
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
