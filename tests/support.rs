//! What the end-to-end tests share: the `lab` binary built as a user builds it, the
//! images it needs, copies of topologies renamed so a test never touches a user's lab,
//! and checks made with tools other than our own (the docker CLI, iproute2).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use anyhow::{bail, ensure, Context, Result};

pub mod bench_report;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Builds the release `lab` binary and the images the topologies use (the speaker's
/// from this tree), once per run;
/// returns the binary.
pub fn lab_bin() -> Result<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| {
        let build = || -> Result<PathBuf> {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let st = Command::new(cargo)
                .args(["build", "--release", "--quiet", "--workspace", "--bin", "lab"])
                .current_dir(root())
                .status()?;
            ensure!(st.success(), "cargo build of lab failed");
            let bin = target_dir().join("release/lab");
            // Both images: the speaker's nodes must run the speaker of this tree.
            let out = Command::new(&bin).args(["images", "--root"]).arg(root()).output()?;
            ensure!(
                out.status.success(),
                "lab images failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(bin)
        };
        build().map_err(|e| format!("{e:#}"))
    })
    .clone()
    .map_err(|e| anyhow::anyhow!(e))
}

/// Writes a JSON file into `target/lab-report/`, which CI uploads.
pub fn write_report(name: &str, value: &serde_json::Value) -> Result<()> {
    let dir = target_dir().join("lab-report");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(name), serde_json::to_string_pretty(value)?)?;
    Ok(())
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// Runs `lab` with arguments; the output whatever the exit code.
pub fn lab(args: &[&str]) -> Result<Output> {
    Ok(Command::new(lab_bin()?).args(args).env("LAB_LOG", "warn").output()?)
}

/// Runs `lab` and requires exit 0; returns standard output.
pub fn lab_ok(args: &[&str]) -> Result<String> {
    let out = lab(args)?;
    ensure!(
        out.status.success(),
        "`lab {}` exited with {}:\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// Runs a command and returns its standard output, requiring success.
pub fn sh(cmd: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .with_context(|| format!("running {cmd}"))?;
    ensure!(
        out.status.success(),
        "`{cmd} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// A copy of `topologies/` in a temporary folder with one topology renamed to
/// `e2e-<name>` (lab name, management network, subnet 172.2x -> 172.29.x), so tests
/// never collide with a lab a user has up. Returns the copied topology file.
pub fn renamed_copy(name: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("lab-e2e-{}", std::process::id()));
    copy_dir(&root().join("topologies"), &dir.join("topologies"))?;
    let file = dir.join(format!("topologies/{name}/{name}.clab.yml"));
    let mut v: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&file)?)?;
    v["name"] = format!("e2e-{name}").into();
    let subnet = v["mgmt"]["ipv4-subnet"]
        .as_str()
        .context("mgmt.ipv4-subnet")?
        .to_string();
    let third = subnet.split('.').nth(2).context("subnet")?;
    v["mgmt"]["network"] = format!("e2e-{name}-mgmt").into();
    v["mgmt"]["ipv4-subnet"] = format!("172.29.{third}.0/24").into();
    std::fs::write(&file, serde_yaml::to_string(&v)?)?;
    Ok(file)
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let dest = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &dest)?;
        } else {
            std::fs::copy(e.path(), dest)?;
        }
    }
    Ok(())
}

/// What a lab may leave on the host, read with docker's and iproute2's own tools.
#[derive(Debug, PartialEq, Eq)]
pub struct HostState {
    pub containers: BTreeSet<String>,
    pub networks: BTreeSet<String>,
    pub veths: BTreeSet<String>,
    pub netns: BTreeSet<String>,
}

pub fn host_state(lab: &str, network: &str) -> Result<HostState> {
    let lines = |s: String| {
        s.lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    };
    let links = sh("ip", &["-o", "link", "show"])?;
    Ok(HostState {
        containers: lines(sh(
            "docker",
            &["ps", "-aq", "--filter", &format!("label=containerlab={lab}")],
        )?),
        networks: lines(sh(
            "docker",
            &["network", "ls", "-q", "--filter", &format!("name=^{network}$")],
        )?),
        // The runner's temporary veth names: lb + 6 hex (pid) + 4 hex (link) + a|b.
        veths: links
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .filter(|n| n.len() == 13 && n.starts_with("lb") && n[2..12].chars().all(|c| c.is_ascii_hexdigit()))
            .collect(),
        // Namespaces the lab would make on the host carry its name; others (another
        // test's) are not ours to judge.
        netns: sh("ip", &["netns", "list"])?
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| n.contains(lab))
            .map(String::from)
            .collect(),
    })
}

/// Requires that nothing of the lab remains on the host, against a state read before.
pub fn assert_clean(lab: &str, network: &str, before: &HostState) -> Result<()> {
    let now = host_state(lab, network)?;
    ensure!(
        now.containers.is_empty(),
        "containers of lab {lab} remain: {:?}",
        now.containers
    );
    ensure!(now.networks.is_empty(), "network {network} remains");
    ensure!(
        now.veths.is_empty(),
        "temporary veths remain on the host: {:?}",
        now.veths
    );
    if now.netns != before.netns {
        bail!(
            "network namespaces changed: before {:?}, after {:?}",
            before.netns,
            now.netns
        );
    }
    Ok(())
}
