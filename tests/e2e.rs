//! End-to-end tests, run as a user runs the lab: the `lab` binary against the real
//! Docker engine with real FRR, BIRD and GoBGP daemons. Each deployment test brings a
//! topology up, asserts every session Established and every pod block in every node's
//! kernel with a next hop that leads to its owner, tears it down, and asserts nothing
//! is left. Tests run one at a time: they share the host's interfaces and two cores.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use e2e::{assert_clean, host_state, lab, lab_ok, renamed_copy, root, sh};
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::Value;

mod registry;

fn main() {
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    let mut tests = vec![
        trial("topologies-valid-for-lab-and-containerlab-schema", topologies_valid),
        trial(
            "broken-topologies-refused-before-anything-is-created",
            broken_topologies_refused,
        ),
        trial("missing-docker-engine-is-a-clear-error", missing_docker),
        trial("variables-node-filter-and-link-impairments", node_filter),
        trial("mutant-speakers-still-apply", mutants_apply),
        trial(
            "cells-rendered-for-clabernetes-keep-their-addressing",
            registry::clabernetes_render,
        ),
    ];
    // (topology, sessions its daemons report in all)
    for (topo, sessions) in [
        ("racks", 10),
        ("mesh3", 6),
        ("rr", 16),
        ("racks-speaker", 10),
        ("mesh3-speaker", 6),
        ("rr-speaker", 16),
        ("rack-rr-speaker", 12),
    ] {
        tests.push(trial(
            &format!("deploy-{topo}-sessions-fib-and-clean-teardown"),
            move || deploy(topo, sessions),
        ));
    }
    tests.push(trial(
        "images-pushed-to-a-registry-are-the-engines",
        registry::images_pushed,
    ));
    tests.push(trial(
        "services-answered-from-outside-and-withdrawn-with-their-last-local-endpoint",
        services,
    ));
    libtest_mimic::run(&args, tests).exit();
}

fn trial(name: &str, f: impl FnOnce() -> Result<()> + Send + 'static) -> Trial {
    Trial::test(name, move || f().map_err(|e| Failed::from(format!("{e:#}"))))
}

fn topology_files() -> Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    for dir in std::fs::read_dir(root().join("topologies"))? {
        for f in std::fs::read_dir(dir?.path())? {
            let p = f?.path();
            if p.to_string_lossy().ends_with(".clab.yml") {
                files.push(p);
            }
        }
    }
    files.sort();
    ensure!(files.len() >= 3, "expected at least three topologies, found {files:?}");
    Ok(files)
}

/// Every mutant of `suites/mutants` still applies to the speaker of this tree (`lab
/// mutants --applies`: building them all takes minutes, which `lab mutants --check`
/// and `make mutants` spend), and one that does not apply is refused.
fn mutants_apply() -> Result<()> {
    let suites = root().join("suites");
    let suites = suites.to_str().context("a UTF-8 path")?;
    let listed = lab_ok(&["mutants", "--list", "--suites", suites])?;
    ensure!(listed.lines().count() >= 8, "too few mutants:\n{listed}");
    let out = lab(&["mutants", "--applies", "--suites", suites])?;
    ensure!(
        out.status.success(),
        "a mutant no longer applies:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = std::env::temp_dir().join(format!("lab-e2e-mutant-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let stale = dir.join("stale.patch");
    std::fs::write(
        &stale,
        "# bug: b\n# source: s\n# cases: [WD-01]\ndiff --git a/speaker/src/node.rs b/speaker/src/node.rs\n--- a/speaker/src/node.rs\n+++ b/speaker/src/node.rs\n@@ -1,1 +1,1 @@\n-no such line in node.rs\n+x\n",
    )?;
    let out = lab(&[
        "mutants",
        "--applies",
        "--suites",
        suites,
        stale.to_str().context("UTF-8")?,
    ])?;
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success() && err.contains("no longer applies"), "{err}");
    Ok(())
}

/// Every shipped topology validates with `lab` and against containerlab's own schema.
fn topologies_valid() -> Result<()> {
    let checker = root().join(".lab/venv/bin/check-jsonschema");
    ensure!(
        checker.exists(),
        "{} is missing: run `make deps` (or `make test`)",
        checker.display()
    );
    let schema = root().join("lab/schema/clab.schema.json");
    for f in topology_files()? {
        let path = f.to_string_lossy().to_string();
        let out = lab_ok(&["validate", "-t", &path])?;
        ensure!(out.contains("is valid"), "{out}");
        sh(
            checker.to_str().unwrap(),
            &["--schemafile", schema.to_str().unwrap(), &path],
        )
        .with_context(|| format!("{path} is not valid for containerlab's schema"))?;
    }
    Ok(())
}

/// Broken files fail with file, line and field, and nothing is created.
fn broken_topologies_refused() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("lab-e2e-broken-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let base = "name: e2e-broken\nmgmt:\n  network: e2e-broken-mgmt\n  ipv4-subnet: 172.29.99.0/24\ntopology:\n  defaults:\n    kind: linux\n    image: podlab/base:latest\n  nodes:\n    a:\n    b:\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n";
    let cases = [
        (
            "unknown-node",
            base.replace("\"b:eth1\"]", "\"c:eth1\"]"),
            ":13: topology.links[0].endpoints[1]",
            "names node \"c\"",
        ),
        (
            "duplicate-endpoint",
            format!("{base}    - endpoints: [\"a:eth1\", \"b:eth2\"]\n"),
            ":14: topology.links[1].endpoints[0]",
            "already used",
        ),
        (
            "missing-bind",
            base.replace(
                "    a:\n",
                "    a:\n      binds:\n        - nowhere/bird.conf:/etc/bird/bird.conf\n",
            ),
            ":12: topology.nodes.a.binds[0]",
            "does not exist",
        ),
        ("bad-yaml", base.replace("    b:\n", "    b: [\n"), ":", "topology"),
        (
            "node-twice",
            base.replace("  links:\n", "    a:\n  links:\n"),
            ":12: topology.nodes",
            "a is defined twice (first at line 10)",
        ),
        (
            "one-address-for-two-ends",
            format!("{base}      ipv4: [10.0.0.0/31]\n"),
            ":14: topology.links[0].ipv4",
            "1 address(es) for 2 endpoints",
        ),
        (
            "unset-variable",
            base.replace("image: podlab/base:latest", "image: ${E2E_UNSET_IMAGE}"),
            ":8: ${E2E_UNSET_IMAGE}",
            "E2E_UNSET_IMAGE is not set and has no default",
        ),
        (
            "misspelt-field",
            base.replace("    a:\n", "    a:\n      exce: [\"true\"]\n"),
            ":11: topology.nodes.a.exce",
            "did you mean `exec`",
        ),
    ];
    for (name, text, place, msg) in cases {
        let file = dir.join(format!("{name}.clab.yml"));
        std::fs::write(&file, text)?;
        let path = file.to_string_lossy().to_string();
        let out = lab(&["up", "-t", &path])?;
        let err = String::from_utf8_lossy(&out.stderr);
        ensure!(
            out.status.code() == Some(1),
            "{name}: exit {:?}, stderr: {err}",
            out.status.code()
        );
        ensure!(
            err.contains(&format!("{path}{place}")),
            "{name}: no `{path}{place}` in: {err}"
        );
        ensure!(err.contains(msg), "{name}: no `{msg}` in: {err}");
        let left = host_state("e2e-broken", "e2e-broken-mgmt")?;
        ensure!(
            left.containers.is_empty() && left.networks.is_empty(),
            "{name}: something was created: {left:?}"
        );
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// A topology with `${VAR:=default}`s (valid for containerlab's schema as written)
/// deployed part by part with `--node-filter`, as containerlab users do: two nodes and
/// their link, then the third, which is then removed alone; a node already up is not
/// deployed twice; `lab down` leaves nothing.
fn node_filter() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("lab-e2e-filter-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("filter.clab.yml");
    std::fs::write(
        &file,
        "name: e2e-filter\nmgmt:\n  network: e2e-filter-mgmt\n  ipv4-subnet: 172.29.98.0/24\ntopology:\n  defaults:\n    kind: linux\n    image: ${E2E_FILTER_IMAGE:-podlab/base:latest}\n  nodes:\n    a:\n    b:\n    c:\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n      ipv4: [10.9.0.0/31, 10.9.0.1/31]\n    - endpoints: [\"b:eth2\", \"c:eth1\"]\n",
    )?;
    let path = file.to_string_lossy().to_string();
    let checker = root().join(".lab/venv/bin/check-jsonschema");
    let schema = root().join("lab/schema/clab.schema.json");
    sh(
        checker.to_str().context("UTF-8")?,
        &["--schemafile", schema.to_str().context("UTF-8")?, &path],
    )
    .context("the topology with variables is not valid for containerlab's schema")?;
    let dot = lab_ok(&["graph", "-t", &path, "-f", "dot", "--node-filter", "a,b"])?;
    ensure!(dot.contains("\"a\" -- \"b\"") && !dot.contains("\"c\""), "{dot}");
    let before = host_state("e2e-filter", "e2e-filter-mgmt")?;
    ensure!(
        before.containers.is_empty(),
        "lab e2e-filter is already up: `lab down -t {path}`"
    );
    let nodes = || -> Result<Vec<String>> {
        let labs: BTreeMap<String, Vec<Value>> =
            serde_json::from_str(&lab_ok(&["inspect", "-t", &path, "-f", "json"])?)?;
        let mut n: Vec<String> = labs
            .get("e2e-filter")
            .into_iter()
            .flatten()
            .filter_map(|n| n["podlab"]["node"].as_str().map(String::from))
            .collect();
        n.sort();
        Ok(n)
    };
    let result = (|| -> Result<()> {
        lab_ok(&["up", "-t", &path, "--node-filter", "a,b"])?;
        ensure!(nodes()? == ["a", "b"], "after up a,b: {:?}", nodes()?);
        lab_ok(&["exec", "-t", &path, "a", "--", "ping", "-c1", "-W2", "10.9.0.1"])?;
        impairments(&path)?;
        lab_ok(&["up", "-t", &path, "--node-filter", "c"])?;
        ensure!(nodes()? == ["a", "b", "c"], "after up c: {:?}", nodes()?);
        let again = lab(&["up", "-t", &path, "--node-filter", "a"])?;
        let err = String::from_utf8_lossy(&again.stderr);
        ensure!(!again.status.success() && err.contains("already deployed"), "{err}");
        lab_ok(&["down", "-t", &path, "--node-filter", "c"])?;
        ensure!(nodes()? == ["a", "b"], "after down c: {:?}", nodes()?);
        let bad = lab(&["up", "-t", &path, "--node-filter", "x"])?;
        ensure!(
            String::from_utf8_lossy(&bad.stderr).contains("no node \"x\""),
            "{bad:?}"
        );
        Ok(())
    })();
    let down = lab_ok(&["down", "-t", &path]);
    result?;
    down?;
    std::fs::remove_dir_all(&dir)?;
    assert_clean("e2e-filter", "e2e-filter-mgmt", &before)
}

/// `lab impair` drops the share of packets it says, measured with ping across the
/// link a:eth1 - b:eth1 (10.9.0.1 is b), says what it cannot do, and clears.
fn impairments(path: &str) -> Result<()> {
    let loss = |count: &str| -> Result<f64> {
        let out = lab(&[
            "exec", "-t", path, "a", "--", "ping", "-q", "-c", count, "-i", "0.01", "-W", "1", "10.9.0.1",
        ])?;
        let text = String::from_utf8_lossy(&out.stdout);
        let pct = text
            .split(", ")
            .find_map(|p| p.strip_suffix("% packet loss"))
            .with_context(|| format!("no loss in ping's summary: {text}"))?;
        Ok(pct.parse()?)
    };
    lab_ok(&["impair", "-t", path, "a:eth1", "--loss", "50"])?;
    // 400 echo requests, half dropped on the way out: 50% +- 12.5 is five standard
    // deviations of the binomial either side.
    let measured = loss("400")?;
    eprintln!("  impair a:eth1 --loss 50: ping lost {measured}%");
    ensure!((37.5..=62.5).contains(&measured), "--loss 50 lost {measured}% of pings");
    lab_ok(&["impair", "-t", path, "a:eth1", "--loss", "100"])?;
    ensure!(loss("20")? == 100.0, "--loss 100 let pings through");
    // Delay: done where the kernel has netem, refused with the reason where it has not.
    let delay = lab(&["impair", "-t", path, "a:eth1", "--delay", "20"])?;
    let err = String::from_utf8_lossy(&delay.stderr);
    ensure!(
        delay.status.success() || (err.contains("netem") && err.contains("Nothing was changed")),
        "--delay: {err}"
    );
    if !delay.status.success() {
        ensure!(loss("20")? == 100.0, "a refused --delay changed the link");
    }
    let bad = lab(&["impair", "-t", path, "a:eth9", "--loss", "5"])?;
    ensure!(
        String::from_utf8_lossy(&bad.stderr).contains("no interface \"eth9\""),
        "{bad:?}"
    );
    lab_ok(&["impair", "-t", path, "a:eth1", "--clear"])?;
    ensure!(loss("50")? == 0.0, "pings lost after --clear");
    Ok(())
}

fn missing_docker() -> Result<()> {
    let out = std::process::Command::new(e2e::lab_bin()?)
        .args(["peers", "--all"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.code() == Some(1), "exit {:?}: {err}", out.status.code());
    ensure!(
        err.contains("cannot reach the Docker engine") && err.contains("dockerd"),
        "{err}"
    );
    Ok(())
}

fn deploy(name: &str, sessions: usize) -> Result<()> {
    let file = renamed_copy(name)?;
    let path = file.to_string_lossy().to_string();
    let lab_name = format!("e2e-{name}");
    let network = format!("e2e-{name}-mgmt");
    let before = host_state(&lab_name, &network)?;
    ensure!(
        before.containers.is_empty(),
        "lab {lab_name} is already up: `lab down -t {path}`"
    );
    let result = (|| -> Result<()> {
        let t = Instant::now();
        let up = lab(&["up", "-t", &path, "--wait", "30", "--json"])?;
        ensure!(
            up.status.success(),
            "lab up failed ({}):\n{}{}",
            up.status,
            String::from_utf8_lossy(&up.stdout),
            String::from_utf8_lossy(&up.stderr)
        );
        eprintln!("  {lab_name}: up in {:.1}s", t.elapsed().as_secs_f64());
        let peers: Vec<Value> = serde_json::from_str(&lab_ok(&["peers", "-t", &path, "--json"])?)?;
        ensure!(
            peers.len() == sessions,
            "expected {sessions} sessions, found {}: {peers:#?}",
            peers.len()
        );
        for p in &peers {
            ensure!(p["lab"] == lab_name.as_str(), "{p}");
            ensure!(p["state"] == "Established", "not Established: {p}");
            ensure!(p["remote_as"].as_u64().is_some(), "no remote AS: {p}");
        }
        let up_secs = t.elapsed().as_secs_f64();
        check_fibs(&path, &peers, Duration::from_secs(20))?;
        clab_script(&path, blocks(&path)?.len())?;
        let converged_secs = t.elapsed().as_secs_f64();
        eprintln!("  {lab_name}: every block in every node's FIB {converged_secs:.1}s after up");
        if name == "mesh3-speaker" {
            exec_entered_as_docker_places_it(&path)?;
        }
        let (added, removed) = borrowed_ip(&path)?;
        eprintln!("  {lab_name}: borrowed /32 added {}", added["after_ms"]);
        eprintln!("  {lab_name}: borrowed /32 removed {}", removed["after_ms"]);
        e2e::write_report(
            &format!("{lab_name}.json"),
            &serde_json::json!({
                "lab": lab_name,
                "up_secs": up_secs,
                "fib_converged_secs": converged_secs,
                "borrowed_ip_added": added,
                "borrowed_ip_removed": removed,
                "peers": peers,
            }),
        )
    })();
    let down = lab_ok(&["down", "-t", &path]);
    result?;
    down?;
    assert_clean(&lab_name, &network, &before)
}

/// A command `lab` runs in a node by entering its namespaces (`nsenter`, without the
/// engine) sees what it sees through `docker exec` (`LAB_EXEC=docker`): the same
/// namespaces, cgroups (the freezer's too: a daemon started so stops with a paused
/// node), environment, directory, user, output and exit code. And a daemon it starts
/// in the background does not hold the command open.
fn exec_entered_as_docker_places_it(path: &str) -> Result<()> {
    let probe = "echo \"$HOSTNAME $HOME $PATH\"; pwd; id -u; \
                 for n in net mnt pid uts ipc; do readlink /proc/self/ns/$n; done; \
                 sort /proc/self/cgroup; echo to-stderr >&2; exit 3";
    let run = |how: &str| -> Result<(String, Option<i32>)> {
        let out = Command::new(e2e::lab_bin()?)
            .args(["exec", "-t", path, "n1", "--", "sh", "-c", probe])
            .env("LAB_LOG", "warn")
            .env("LAB_EXEC", how)
            .output()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok((text, out.status.code()))
    };
    let (entered, entered_code) = run("enter")?;
    let (docker, docker_code) = run("docker")?;
    ensure!(
        entered == docker && entered_code == docker_code,
        "entered (exit {entered_code:?}):\n{entered}\nthrough docker exec (exit {docker_code:?}):\n{docker}"
    );
    ensure!(
        entered.contains("freezer:/") && entered.contains("to-stderr") && entered_code == Some(3),
        "{entered}"
    );
    let t = Instant::now();
    lab_ok(&["exec", "-t", path, "n1", "--", "sh", "-c", "sleep 30 & echo started"])?;
    ensure!(
        t.elapsed() < Duration::from_secs(5),
        "a command that left a daemon behind took {:?}",
        t.elapsed()
    );
    Ok(())
}

/// `tests/clab_script.py`, written for containerlab's `inspect -f json` and `exec
/// --label ... -f json`, reads `lab`'s output unchanged: one line per node speaker,
/// with its management address and its routes (at least one per block).
fn clab_script(path: &str, nodes: usize) -> Result<()> {
    let bin = e2e::lab_bin()?;
    let script = root().join("tests/clab_script.py");
    let out = sh(
        "python3",
        &[
            script.to_str().context("UTF-8")?,
            bin.to_str().context("UTF-8")?,
            path,
            "lab.role=node",
        ],
    )?;
    let lines: Vec<&str> = out.lines().collect();
    ensure!(
        lines.len() == nodes,
        "the script saw {} nodes, not {nodes}:\n{out}",
        lines.len()
    );
    for l in &lines {
        let f: Vec<&str> = l.split(' ').collect();
        ensure!(
            f.len() == 3 && f[1].parse::<std::net::Ipv4Addr>().is_ok() && f[2].parse::<usize>()? >= nodes,
            "the script's line {l:?}"
        );
    }
    Ok(())
}

/// The nodes of a topology that own pod blocks, with their blocks.
fn blocks(path: &str) -> Result<BTreeMap<String, String>> {
    let topo: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(path)?)?;
    let mut blocks = BTreeMap::new();
    for (name, n) in topo["topology"]["nodes"].as_mapping().context("nodes")? {
        if n["labels"]["lab.role"].as_str() == Some("node") {
            let block = n["labels"]["lab.block"].as_str().context("a node without lab.block")?;
            blocks.insert(name.as_str().context("node name")?.to_string(), block.to_string());
        }
    }
    ensure!(blocks.len() >= 2, "fewer than two nodes with blocks");
    Ok(blocks)
}

/// RT-03 and WD-01 in small: a pod on the first node with an IP from the last node's
/// block (a borrowed IP) reaches every other node's kernel and every pod pings it;
/// deleted, its /32 leaves every kernel that had it within WD-01's budget, timed from
/// kernel route events by `lab pod ... --timing`. Returns both propagations.
fn borrowed_ip(path: &str) -> Result<(Value, Value)> {
    let blocks = blocks(path)?;
    let (first, last) = (blocks.keys().next().unwrap(), blocks.keys().last().unwrap());
    let block: std::net::Ipv4Addr = blocks[last].split('/').next().unwrap().parse()?;
    let ip = std::net::Ipv4Addr::from(u32::from(block) + 62).to_string();
    let added: Value = serde_json::from_str(&lab_ok(&[
        "pod", "add", "-t", path, first, "--ip", &ip, "--name", "borrowed", "--timing", "--json",
    ])?)?;
    for node in blocks.keys().filter(|n| *n != first) {
        ensure!(
            added["after_ms"][node].is_number(),
            "{ip}/32 never reached {node}: {added}"
        );
    }
    let ping = lab(&["ping", "-t", path, "--wait", "10"])?;
    ensure!(
        ping.status.success(),
        "ping matrix with the borrowed IP:\n{}",
        String::from_utf8_lossy(&ping.stdout)
    );
    let removed: Value = serde_json::from_str(&lab_ok(&[
        "pod", "del", "-t", path, first, "borrowed", "--timing", "--json",
    ])?)?;
    let after = removed["after_ms"].as_object().context("after_ms")?;
    for node in blocks.keys().filter(|n| *n != first) {
        ensure!(
            after.contains_key(node.as_str()),
            "{node} did not route to {ip} before the delete: {removed}"
        );
    }
    for (node, ms) in after {
        // WD-01's budget: gone from every FIB within 1 s of the deletion.
        let ms = ms
            .as_f64()
            .with_context(|| format!("{ip}/32 still in {node}'s kernel 10 s after the delete"))?;
        ensure!(
            ms <= 1000.0,
            "{ip}/32 left {node}'s kernel {ms:.1} ms after the delete (budget 1000 ms)"
        );
    }
    Ok((added, removed))
}

/// Every node's kernel holds its own block as a blackhole and every other node's block
/// with next hops that are its BGP peers or addresses of the block's owner.
fn check_fibs(path: &str, peers: &[Value], deadline: Duration) -> Result<()> {
    // containerlab's document: {"<lab>": [nodes]}, what lab adds under "podlab".
    let labs: BTreeMap<String, Vec<Value>> = serde_json::from_str(&lab_ok(&["inspect", "-t", path, "-f", "json"])?)?;
    ensure!(labs.len() == 1, "inspect -t shows one lab: {:?}", labs.keys());
    let nodes: Vec<Value> = labs.into_values().flatten().collect();
    let container = |node: &str| -> Result<String> {
        nodes
            .iter()
            .find(|n| n["podlab"]["node"] == node)
            .and_then(|n| n["name"].as_str().map(String::from))
            .with_context(|| format!("inspect has no node {node}"))
    };
    let blocks = blocks(path)?;
    let addrs = |node: &str| -> BTreeSet<String> {
        nodes
            .iter()
            .filter(|n| n["podlab"]["node"] == node)
            .flat_map(|n| n["podlab"]["interfaces"].as_array().cloned().unwrap_or_default())
            .flat_map(|i| i["addresses"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a.as_str().and_then(|a| a.split('/').next()).map(String::from))
            .collect()
    };
    let peer_addrs = |node: &str| -> BTreeSet<String> {
        peers
            .iter()
            .filter(|p| p["node"] == node)
            .filter_map(|p| p["peer"].as_str().map(String::from))
            .collect()
    };
    let start = Instant::now();
    loop {
        let mut problems = Vec::new();
        // Every node's routes in one call, as containerlab's `exec --label -f json` has them.
        let all: BTreeMap<String, Vec<Value>> = serde_json::from_str(&lab_ok(&[
            "exec",
            "-t",
            path,
            "--label",
            "lab.role=node",
            "--cmd",
            "ip -j route",
            "-f",
            "json",
        ])?)?;
        ensure!(
            all.len() == blocks.len(),
            "exec --label lab.role=node ran on {:?}",
            all.keys()
        );
        for (node, own) in &blocks {
            let run = all
                .get(&container(node)?)
                .and_then(|r| r.first())
                .context("no result")?;
            ensure!(run["return-code"] == 0, "{node}: {run}");
            let routes: Vec<Value> = serde_json::from_str(run["stdout"].as_str().context("stdout")?)?;
            let find = |dst: &str| routes.iter().find(|r| r["dst"] == dst);
            match find(own) {
                Some(r) if r["type"] == "blackhole" => {}
                other => problems.push(format!("{node}: own block {own} is not a blackhole: {other:?}")),
            }
            for (owner, block) in blocks.iter().filter(|(o, _)| *o != node) {
                let Some(r) = find(block) else {
                    problems.push(format!("{node}: no route to {owner}'s block {block}"));
                    continue;
                };
                let mut gws: Vec<String> = r["gateway"].as_str().map(String::from).into_iter().collect();
                for h in r["nexthops"].as_array().into_iter().flatten() {
                    gws.extend(h["gateway"].as_str().map(String::from));
                }
                let allowed: BTreeSet<String> = peer_addrs(node).union(&addrs(owner)).cloned().collect();
                if gws.is_empty() || !gws.iter().all(|g| allowed.contains(g)) {
                    problems.push(format!("{node}: {block} via {gws:?}, expected one of {allowed:?}"));
                }
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        if start.elapsed() > deadline {
            bail!("after {:?}:\n  {}", deadline, problems.join("\n  "));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The services topology as a user runs it: `lab up` applies its two services and
/// checks them from the outside client (every connection answered, the Cluster one by
/// every endpoint, the Local one learned from its endpoints' nodes only, with the
/// client's own address seen); then the Local service's endpoint on n1 is deleted and
/// n1 must withdraw its /32 (tor1 reaches it through tor2 and n3 answers alone), and
/// the service deleted leaves no /32 in any ToR.
fn services() -> Result<()> {
    let name = "services";
    let file = renamed_copy(name)?;
    let path = file.to_string_lossy().to_string();
    let lab_name = format!("e2e-{name}");
    let network = format!("e2e-{name}-mgmt");
    let before = host_state(&lab_name, &network)?;
    ensure!(
        before.containers.is_empty(),
        "lab {lab_name} is already up: `lab down -t {path}`"
    );
    let result = (|| -> Result<()> {
        let t = Instant::now();
        let up = lab(&["up", "-t", &path, "--wait", "30"])?;
        let out = String::from_utf8_lossy(&up.stdout).to_string();
        ensure!(
            up.status.success(),
            "lab up failed ({}):\n{out}{}",
            up.status,
            String::from_utf8_lossy(&up.stderr)
        );
        ensure!(
            out.contains("tor1 routes it by 198.51.100.20/32, learned from n1")
                && out.contains("tor2 routes it by 198.51.100.20/32, learned from n3"),
            "the Local service's /32 is not learned from n1 and n3 alone:\n{out}"
        );
        eprintln!(
            "  {lab_name}: up, services answered, in {:.1}s",
            t.elapsed().as_secs_f64()
        );
        let tor1_route = |prefix: &str| -> Result<String> {
            lab_ok(&[
                "exec", "-t", &path, "tor1", "--", "ip", "route", "show", "exact", prefix,
            ])
        };
        ensure!(
            tor1_route("198.51.100.20/32")?.contains("via 10.1.1.1 "),
            "tor1 does not reach shop through n1"
        );
        lab_ok(&["pod", "del", "-t", &path, "n1", "n1-pod2"])?;
        let t = Instant::now();
        loop {
            let route = tor1_route("198.51.100.20/32")?;
            if route.contains("via 10.0.255.1 ") {
                break;
            }
            ensure!(
                t.elapsed() < Duration::from_secs(3),
                "n1's /32 for shop still in tor1 3 s after its last local endpoint went: {route}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let answers: Value = serde_json::from_str(&lab_ok(&[
            "service", "connect", "-t", &path, "shop", "--count", "10", "--json",
        ])?)?;
        let by_pod = &answers[0][1]["by_pod"];
        ensure!(
            by_pod.as_object().map(|m| m.len()) == Some(1) && by_pod["n3-pod2"] == 10,
            "shop after n1-pod2 went: {answers}"
        );
        ensure!(
            answers[0][1]["seen_as"]["n3-pod2"] == serde_json::json!(["10.1.9.1"]),
            "policy Local, but n3-pod2 did not see the client's address: {answers}"
        );
        lab_ok(&["service", "del", "-t", &path, "shop"])?;
        let t = Instant::now();
        while !tor1_route("198.51.100.20/32")?.trim().is_empty() {
            ensure!(
                t.elapsed() < Duration::from_secs(3),
                "shop's /32 still in tor1 3 s after the service went"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let list = lab_ok(&["service", "list", "-t", &path])?;
        ensure!(list.contains("web") && !list.contains("shop"), "{list}");
        Ok(())
    })();
    let down = lab_ok(&["down", "-t", &path]);
    result?;
    down?;
    assert_clean(&lab_name, &network, &before)
}
